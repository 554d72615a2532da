/* kernels.h — the hot loops: dot products, small GEMM tiles, row conversions and
 * dequantization. Each op has a scalar reference (*_ref.c, the spec) and AVX2 / AVX-512
 * versions (plus AVX-512 VNNI for the packed dot products); qb_kernels() returns the table
 * chosen once from cpuid (QB_ISA=ref|avx2|avx512|avx512vnni overrides). Kernels are single-threaded; callers parallelise over rows. */
#ifndef QB_KERNELS_H
#define QB_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

struct qb_fmt_params;

/* Instruction-set levels, lowest first: a table of level L runs kernels of any level <= L. */
enum { QB_ISA_REF, QB_ISA_AVX2, QB_ISA_AVX512, QB_ISA_AVX512VNNI, QB_ISA_COUNT };

/* Rows of one non-ggml format (fmt.h, layouts in fmt_*_ref.c) times f32 activations, decoded in
 * registers: y[c*ldy + r] = row r of w (rows wst bytes apart, r < nr <= 4) · x + c*ldx
 * (c < nc <= 4), summed in f32. Each format lists its entries per level in its row of the
 * format table (core/quant/format_traits.h); the spec is the format's dequantize_row_ref
 * followed by tile_f32. */
typedef void (*qb_fmt_tile_fn)(const struct qb_fmt_params *f, int n, const void *w, size_t wst, int nr,
                               const float *x, size_t ldx, int nc, float *y, size_t ldy);

/* Running error sums of one row, as the analysis (core/quant/stats.c) keeps them: Σx², Σe²,
 * Σx·x̂, Σx̂², Σ|e| and max |e| in double (e = x − x̂ in double), and the ranges of x, x̂ and
 * the f32 error x − x̂ (NaNs ignored). Start a row from qb_err_acc_init. */
typedef struct {
    double sxx, see, sxy, syy, sae, maxe;
    float xlo, xhi, ylo, yhi, elo, ehi;
} qb_err_acc;

/* Rows one err_rows call takes at most. */
#define QB_ERR_ROWS 8

/* A histogram's grid: bins equal bins over [lo, hi], k = bins / (hi − lo) (lo < hi finite). */
typedef struct {
    double lo, hi, k;
    int bins;
} qb_bin_grid;

typedef struct {
    const char *isa; /* "ref", "avx2", "avx512", "avx512vnni" */
    int level;       /* QB_ISA_* */
    /* dot products of one weight row with one activation vector, n elements */
    float (*dot_f32)(int n, const float *w, const float *x);
    float (*dot_f16)(int n, const uint16_t *w, const float *x);
    float (*dot_bf16)(int n, const uint16_t *w, const float *x);
    /* y[c*ldy + r] = dot(w + r*ldw, x + c*ldx) for r < nr (<= 4), c < nc (<= 4): the register
     * tile behind batched matmul (prompt processing). */
    void (*tile_f32)(int n, const float *w, size_t ldw, int nr, const float *x, size_t ldx, int nc,
                     float *y, size_t ldy);
    /* the same tile with F16 weights, converted in registers (no f32 copy of the rows) */
    void (*tile_f16)(int n, const uint16_t *w, size_t ldw, int nr, const float *x, size_t ldx, int nc,
                     float *y, size_t ldy);
    /* row conversions to f32 */
    void (*f16_to_f32)(int n, const uint16_t *src, float *dst);
    void (*bf16_to_f32)(int n, const uint16_t *src, float *dst);
    /* Packed weights (index: ggml type id of the weight row). qdot[t] computes nc (1..4) dot
     * products of one weight row of n elements with nc activation rows already quantized to
     * qb_act_type(t), each act_stride bytes apart: out[c] = w · x_c. NULL: no kernel. */
    void (*qdot[40])(int n, const void *w, const void *xq, size_t act_stride, int nc, float *out);
    /* Activation quantizers (index: Q8_0, Q8_1 or Q8_K): n floats → blocks. NULL: none. */
    void (*quantize_act[40])(const float *x, void *xq, int n);
    /* Prompt-processing GEMM tile for packed weights that meet Q8_0 activations (index: weight
     * type; NULL: none, qb_matmul then uses qdot 4 tokens at a time). quantize_act_tile writes
     * one token's n floats (n a multiple of 32) as qb_act_tile_row_bytes(n) bytes in the
     * tile's own layout (the Q8_0 quants and scales, rearranged); gemm_q computes
     * y[c*ldy + r] = row r of w (rows wst bytes apart, r < nr <= QB_GEMM_ROWS, 15·wst < 2^31)
     * · token c (tiles xst bytes apart, c < nc <= QB_GEMM_TOKENS). */
    void (*quantize_act_tile)(const float *x, void *xa, int n);
    void (*gemm_q[40])(int n, const void *w, size_t wst, int nr, const void *xa, size_t xst, int nc, float *y,
                       size_t ldy);
    /* Generation (one token) for packed weights, where the CPU has a kernel for the type (index:
     * weight type; NULL: none, qb_matmul then uses qdot): quantize_act_gemv writes one token's
     * n floats (n a multiple of 32) as qb_act_gemv_row_bytes(n) bytes in the kernel's own
     * layout (the quants and scales qb_quantize_q8_0 gives, laid out to match the weight row's
     * bytes); gemv_q returns one weight row of n elements · that token. */
    void (*quantize_act_gemv[40])(const float *x, void *xg, int n);
    float (*gemv_q[40])(int n, const void *w, const void *xg);
    /* INT rows (fmt_int_ref.c; only where qb_int_q8_supported) times activations quantized to
     * 8 bits once per matmul (quantize_act[Q8_0], rearranged by qb_int_act_from_q8_0):
     * y[c*ldy + r] = row r of w (rows wst bytes apart, r < nr <= 4) · token c (act + c*ast,
     * c < nc <= 4), exact int32 per 32-element block. Spec and scalar entry:
     * qb_int_tile_q8_ref (fmt.h). */
    void (*int_tile_q8)(const struct qb_fmt_params *f, int n, const void *w, size_t wst, int nr, const void *act,
                        size_t ast, int nc, float *y, size_t ldy);
    /* One INT row (qb_int_gemv_supported) times one token laid out by qb_int_gemv_act: the
     * generation kernel where the CPU has one (NULL: none, int_tile_q8 serves). */
    float (*int_gemv)(const struct qb_fmt_params *f, int n, const void *w, const void *xg);
    /* int8 GEMM tile (W8A8): y[c*ldy + r] = sum_i (w_r[i] - 128) * x_c[i] for r < nr (<= 4),
     * c < nc (<= 4); weights are int8 codes with zero point 128 (kernels/fmt_int_ref.c rows),
     * activations signed in -127..127; exact int32 (gemm_i8_ref.c). */
    void (*gemm_i8)(int n, const uint8_t *w, size_t ldw, int nr, const int8_t *x, size_t ldx, int nc, int32_t *y,
                    size_t ldy);
    /* Quantize a row of ggml type `type`: qb_quant_row_ref's contract and bytes (the vector
     * tables run the scale searches of Q2_K..Q6_K, IQ4_NL, IQ4_XS in lanes). */
    bool (*quant_row)(int type, const float *src, void *dst, int64_t n);
    /* Quantize one row of n elements with importance weights qw (n, one per column):
     * qb_quant_row_w_ref's contract and bytes (vector tables run the searches in lanes). */
    bool (*quant_row_w)(int type, const float *src, void *dst, int64_t n, const float *qw);
    /* One query head's attention over f32 keys and values (len positions, rows kst / vst
     * floats apart, head_dim hd): att (len floats, scratch) gets the scores q·k_j · scale,
     * softmax'd with the maximum subtracted and libm's expf; out (hd floats) = sum over j of
     * (att_j / sum) · v_j. The spec is qb_attn_f32_ref. */
    void (*attn_f32)(int hd, int len, const float *q, const float *k, size_t kst, const float *v, size_t vst,
                     float scale, float *att, float *out);
    /* f32 matrix product, the training pass's building block (attention's tiles, the linear
     * layers' gradients): C (m × n, rows ldc floats apart) = A·B, or C += A·B when accumulate.
     * A's element (r, p), r < m, p < k, is a[r·ars + p·acs] (a row-major matrix with acs = 1,
     * the transpose of one with ars = 1); B (k × n) is row-major, rows ldb floats apart. Each
     * element of C sums its k products in order of p, starting from 0 or C's value (vector
     * versions differ only by fused multiply-adds). Single-threaded; callers split C. The
     * spec is qb_gemm_f32_ref. */
    void (*gemm_f32)(int m, int n, int k, const float *a, size_t ars, size_t acs, const float *b, size_t ldb,
                     float *c, size_t ldc, bool accumulate);
    /* One query row of the training attention's softmax, in place: s[0..n) holds the dot
     * products q·k_j of the keys the row attends to and becomes their probabilities:
     * z_j = s_j·scale, capped to softcap·tanh(z_j / softcap) when softcap > 0, then
     * exp(z_j − max z) (libm's expf) over their sum (in double). n >= 1. The spec is
     * qb_attn_softmax_row_ref. */
    void (*attn_softmax_row)(int n, float *s, float scale, float softcap);
    /* The gradient of one such row's dot products from the gradient dp of its probabilities p:
     * ds_j = p_j·(dp_j − Σ_l p_l·dp_l)·scale (the sum in double), times the cap's derivative
     * 1 − tanh²(s_j·scale / softcap) when softcap > 0 (s: the row's dot products, read only
     * then, may be NULL otherwise). ds may be dp. The spec is qb_attn_dscore_row_ref. */
    void (*attn_dscore_row)(int n, const float *p, const float *dp, const float *s, float scale, float softcap,
                            float *ds);
    /* The feed-forward's gate over n elements, act(g)·u with act SiLU (x·σ(x)) or, with gelu,
     * GELU-tanh (0.5·x·(1 + tanh(0.7978845608·(x + 0.044715·x³)))): h = act(g)·u; and its
     * backward: dg += dh·u·act'(g), du += dh·act(g) (either may be NULL). The references use
     * libm's expf / tanhf; the vector versions a polynomial exp (a few ulps) and, for GELU,
     * 1 + tanh(y) as 2·σ(2y). Specs: qb_glu_ref, qb_glu_bw_ref. */
    void (*glu)(bool gelu, size_t n, const float *g, const float *u, float *h);
    void (*glu_bw)(bool gelu, size_t n, const float *g, const float *u, const float *dh, float *dg, float *du);
    /* Dequantize a row of ggml type `type`: qb_dequant_row_ref's contract and bits (types
     * without a vector version go to the reference). */
    bool (*dequant_row)(int type, const void *src, float *dst, int64_t n);
    /* Dequantize an INT row (fmt.h): qb_dequant_row_int_ref's contract and bits. */
    void (*dequant_int)(int bits, int group, bool asym, const void *src, float *y, int64_t n);
    /* Quantize an INT row (fmt.h): qb_quant_row_int_ref's contract and bytes. */
    void (*quant_int)(int bits, int group, bool asym, const float *x, void *dst, int64_t n, const float *range);
    /* NF4 rows (fmt.h): qb_quant_row_nf4_ref's bytes and qb_dequant_row_nf4_ref's bits (the
     * AVX2 table runs the references). */
    void (*quant_nf4)(bool dq, const float *x, void *dst, int64_t n);
    void (*dequant_nf4)(bool dq, const void *src, float *y, int64_t n);
    /* FP8 and MXFP4 rows (fmt.h): the references' bytes and bits (the AVX2 table runs them). */
    void (*quant_fp8)(bool e5m2, const float *x, void *dst, int64_t n, float absmax);
    void (*dequant_fp8)(bool e5m2, const void *src, float *y, int64_t n);
    void (*quant_mxfp4)(const float *x, void *dst, int64_t n);
    void (*dequant_mxfp4)(const void *src, float *y, int64_t n);
    /* Error statistics of nr (1..QB_ERR_ROWS) rows of n elements: row r is x + r·ldx against
     * y + r·ldy, continuing acc[r]. Exactly qb_err_rows_ref's numbers: every sum runs through
     * its row in element order with the same double operations (vector versions put rows,
     * not elements, in lanes), so results are bit-identical. */
    void (*err_rows)(int n, const float *x, size_t ldx, const float *y, size_t ldy, int nr, qb_err_acc *acc);
    /* Histogram slots of n values v_i = a[i] (b NULL) or the f32 difference a[i] − b[i]:
     * slot[i] = 0 when v < lo, bins + 1 when v > hi, bins + 2 when v is NaN, else
     * 1 + min((int)((v − lo)·k), bins − 1) (v in double; a product that is NaN or beyond int
     * counts as the last bin). Exactly qb_hist_slots_ref's. */
    void (*hist_slots)(int n, const float *a, const float *b, const qb_bin_grid *g, uint32_t *slot);
    /* The three histograms of the analysis at once: sxy[i] = s(x[i])·(g.bins + 3) + s(y[i]) with
     * s the slot on g, se[i] the slot of the f32 difference x[i] − y[i] on ge (slots as
     * hist_slots). Exactly qb_hist_slots2_ref's. */
    void (*hist_slots2)(int n, const float *x, const float *y, const qb_bin_grid *g, const qb_bin_grid *ge,
                        uint32_t *sxy, uint32_t *se);
    /* Mapping candidates: writes to idx, ascending, every i whose x[i] has a slot s in 1..bins on
     * g (hist_slots) and x[i] < bx[s − 1]; returns how many. Exactly qb_map_filter_ref's. */
    int (*map_filter)(int n, const float *x, const qb_bin_grid *g, const float *bx, int32_t *idx);
    /* out[i] = a[i] · b[i] in f32 (one rounding each), i < n: the analysis's importance-scaled
     * rows (a row times its columns' scales). Exactly qb_mul_f32_ref's. */
    void (*mul_f32)(int n, const float *a, const float *b, float *out);
} qb_kernel_table;

/* Whether one token of weight type `type` should go through gemv_q rather than qdot (nc = 1):
 * the table has one and, measured once per process on a 16 MiB matrix (a few ms), it streams
 * weights at least as fast as qdot on this CPU. QB_GEMV=on|off overrides the measurement. */
bool qb_gemv_preferred(int type);

/* Bytes of one token's activations in the gemv_q layout (groups of 32 Q8_0 blocks, 1856 bytes
 * each, the last one padded). */
size_t qb_act_gemv_row_bytes(int n);

/* Bytes of one token's activations in the GEMM tile layout (the n quants, then per block of
 * 32 its scale and two offsets: 12 bytes). */
static inline size_t qb_act_tile_row_bytes(int n) { return (size_t)n + (size_t)(n / 32) * 12; }

/* The GEMM tile's size: weight rows and tokens per gemm_q call at most. */
enum { QB_GEMM_ROWS = 16, QB_GEMM_TOKENS = 16 };

/* The activation type a packed weight type multiplies against (as in ggml's vec_dot_type):
 * Q8_0 for Q4_0, Q5_0, Q8_0, IQ4_NL; Q8_1 for Q4_1, Q5_1; Q8_K for the K formats, IQ4_XS,
 * IQ3_XXS, IQ3_S, TQ1_0 and TQ2_0;
 * -1 for types without a packed dot product (F32, F16, BF16 use the float kernels above). */
int qb_act_type(int weight_type);

/* The table for this CPU (initialised on first call, thread-safe). */
const qb_kernel_table *qb_kernels(void);
/* A specific table: "ref", "avx2", "avx512", "avx512vnni"; NULL if this CPU cannot run it. */
const qb_kernel_table *qb_kernels_for(const char *isa);
/* The entry of per_isa (indexed by QB_ISA_*, NULL where a format has none) that table k runs:
 * its own level's, else the nearest lower level's; NULL when there is none (callers then take
 * the scalar path: dequantize rows, tile_f32). */
qb_fmt_tile_fn qb_kernels_pick_tile(const qb_kernel_table *k, const qb_fmt_tile_fn per_isa[QB_ISA_COUNT]);

/* Scalar references (the spec every vector path is tested against). */
float qb_dot_f32_ref(int n, const float *w, const float *x);
float qb_dot_f16_ref(int n, const uint16_t *w, const float *x);
float qb_dot_bf16_ref(int n, const uint16_t *w, const float *x);
void qb_tile_f32_ref(int n, const float *w, size_t ldw, int nr, const float *x, size_t ldx, int nc,
                     float *y, size_t ldy);
void qb_tile_f16_ref(int n, const uint16_t *w, size_t ldw, int nr, const float *x, size_t ldx, int nc,
                     float *y, size_t ldy);
void qb_f16_to_f32_row_ref(int n, const uint16_t *src, float *dst);
void qb_bf16_to_f32_row_ref(int n, const uint16_t *src, float *dst);
void qb_attn_f32_ref(int hd, int len, const float *q, const float *k, size_t kst, const float *v, size_t vst,
                     float scale, float *att, float *out);
void qb_gemm_i8_ref(int n, const uint8_t *w, size_t ldw, int nr, const int8_t *x, size_t ldx, int nc, int32_t *y,
                    size_t ldy);
void qb_gemm_f32_ref(int m, int n, int k, const float *a, size_t ars, size_t acs, const float *b, size_t ldb, float *c,
                     size_t ldc, bool accumulate);
void qb_attn_softmax_row_ref(int n, float *s, float scale, float softcap);
void qb_glu_ref(bool gelu, size_t n, const float *g, const float *u, float *h);
void qb_glu_bw_ref(bool gelu, size_t n, const float *g, const float *u, const float *dh, float *dg, float *du);
void qb_attn_dscore_row_ref(int n, const float *p, const float *dp, const float *s, float scale, float softcap,
                            float *ds);

void qb_err_acc_init(qb_err_acc *a);
void qb_err_rows_ref(int n, const float *x, size_t ldx, const float *y, size_t ldy, int nr, qb_err_acc *acc);
void qb_hist_slots_ref(int n, const float *a, const float *b, const qb_bin_grid *g, uint32_t *slot);
void qb_hist_slots2_ref(int n, const float *x, const float *y, const qb_bin_grid *g, const qb_bin_grid *ge,
                        uint32_t *sxy, uint32_t *se);
int qb_map_filter_ref(int n, const float *x, const qb_bin_grid *g, const float *bx, int32_t *idx);
void qb_mul_f32_ref(int n, const float *a, const float *b, float *out);

/* Dequantize n elements (a multiple of the type's block size) of ggml type `type` (qb_type id)
 * from src into dst. Returns false for types it does not know. Scalar; follows ggml's
 * dequantize_row_* exactly. */
bool qb_dequant_row_ref(int type, const void *src, float *dst, int64_t n);

/* Quantize n floats (a multiple of the type's block size) into ggml block type `type`,
 * byte for byte as llama-quantize does without an importance matrix (ggml's
 * quantize_row_*_ref; for IQ4_NL / IQ4_XS its quantize_iq4_nl / quantize_iq4_xs searches; for
 * TQ1_0, TQ2_0, IQ3_XXS, IQ3_S its quantize_* without importance, kernels/tq_iq3.h). Covers Q8_0,
 * Q8_1, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, IQ4_NL, IQ4_XS, IQ3_XXS,
 * IQ3_S, TQ1_0, TQ2_0, F16, BF16, F32. Returns false for other types or bad n. */
bool qb_quant_row_ref(int type, const float *src, void *dst, int64_t n);
/* Quantize ONE row of n elements (a multiple of the type's block) with the importance qw[0..n)
 * of its columns, byte for byte as llama-quantize --imatrix does (ggml's quantize_<type> with
 * quant_weights; quant_weighted_ref.c lists what the weights change per type). A row, not
 * rows: Q4_0..Q5_1 weight by the whole row's mean square. qw NULL, or a type ggml quantizes
 * without weights (F32, F16, BF16, Q8_0), gives qb_quant_row_ref's bytes. False as there. */
bool qb_quant_row_w_ref(int type, const float *src, void *dst, int64_t n, const float *qw);
/* Whether importance weights change type's quantization (Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K,
 * IQ4_NL, IQ4_XS, IQ3_XXS, IQ3_S). */
bool qb_quant_weighted(int type);
bool qb_quant_row_w_avx2(int type, const float *src, void *dst, int64_t n, const float *qw);
bool qb_quant_row_w_avx512(int type, const float *src, void *dst, int64_t n, const float *qw);
/* Quantize n floats (a multiple of 256) into a grid i-quant type (IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S,
 * IQ1_M) with the importance imatrix (n floats, one per column of the row), byte for byte as
 * ggml's quantize_iq2_xxs / _iq2_xs / _iq2_s / _iq1_s / _iq1_m with that importance
 * (llama-quantize --imatrix) — except for sub-blocks of 32 (IQ1_S) or 16 (IQ1_M) values that
 * are all below 1e-12 / 1e-7 in magnitude, whose shift bit ggml takes from whatever its buffer
 * last held (here: from an earlier block of the same row, else +). imatrix NULL: IQ2_S and
 * IQ1_M use ggml's own weights for that case; IQ2_XXS, IQ2_XS and IQ1_S (which ggml refuses
 * without one) quantize as with uniform importance (all ones). False for other types, bad n,
 * out of memory, or NaN input. qb_quant_row_ref(type, …) is this with imatrix NULL.
 * quant_iq_ref.c. */
bool qb_quant_row_iq_ref(int type, const float *src, void *dst, int64_t n, const float *imatrix);
/* The same bytes, scale searches in AVX2 lanes (quant_kquants_avx2.c). */
bool qb_quant_row_avx2(int type, const float *src, void *dst, int64_t n);
/* The same bytes, the 32-element blocks in AVX-512 (quant_avx512.c), the rest as _avx2. */
bool qb_quant_row_avx512(int type, const float *src, void *dst, int64_t n);

#endif
