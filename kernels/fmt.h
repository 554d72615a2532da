/* fmt.h — the row functions of the storage formats that are not ggml block types: integer RTN
 * grids (fmt_int_ref.c), NF4 (fmt_nf4_ref.c), FP8 E4M3 / E5M2 (fmt_fp8_ref.c) and MXFP4
 * (fmt_mxfp4_ref.c). Private to libqb: core/quant/format.c dispatches to them by format kind
 * and validates every parameter first, so these functions trust their arguments (n a multiple
 * of the block or group, bits in range). Byte layouts are documented at the top of each file.
 *
 * Like the other *_ref kernels they are scalar, single-threaded and pure (no state, no
 * allocation): callers run them on many rows at once. Rows may start at any address. */
#ifndef QB_FMT_H
#define QB_FMT_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* ---- INT: round-to-nearest on an integer grid (GPTQ reference quantizer) ---------------- */

/* Scale and zero point the GPTQ reference (IST-DASLab/gptq quant.py, find_params) gives a
 * group whose smallest and largest values are xmin and xmax, for a grid of `bits` bits:
 * xmin = min(xmin, 0), xmax = max(xmax, 0); sym: xmax = max(|xmin|, xmax), xmin = -xmax if
 * xmin < 0; both 0 → (-1, +1); scale = (xmax - xmin) / (2^bits - 1); zero = 2^(bits-1) (sym)
 * or round-half-even(-xmin / scale) (asym). All in f32, as the reference computes. */
void qb_int_params(int bits, bool asym, float xmin, float xmax, float *scale, float *zero);

/* Bytes of a row of n elements. group > 0: groups of `group` elements (must divide n), each
 * with an f16 scale (and f16 zero); group <= 0: one f32 scale (and f32 zero) for the row. */
size_t qb_int_row_bytes(int bits, int group, bool asym, int64_t n);
/* Quantize one row. group as above. range: NULL, or {min, max} of the whole tensor to use
 * instead of the row's own (per-tensor scale, only with group <= 0). */
void qb_quant_row_int_ref(int bits, int group, bool asym, const float *x, void *dst, int64_t n,
                          const float *range);
void qb_dequant_row_int_ref(int bits, int group, bool asym, const void *src, float *y, int64_t n);
/* The pieces of qb_quant_row_int_ref that vector versions share with it. qb_int_min_max: the
 * smallest and largest of n values as the reference scans them (element order, NaNs ignored,
 * 0, 0 when there is no number; the first of equal zeros is kept). qb_int_grid: the grid a
 * group (group > 0) or row whose extremes are mn, mx is quantized on: scale *d and zero point
 * *z as the codes are chosen with them (q = clamp(rint(x / d) + z, 0, 2^bits − 1), z alone
 * where d is 0), and the header bytes written to hdr; returns the header's size. */
void qb_int_min_max(const float *x, int64_t n, float *mn, float *mx);
size_t qb_int_grid(int bits, int group, bool asym, float mn, float mx, float *d, float *z, uint8_t *hdr);
/* The stored row as numbers: q[i] the code of element i (0..2^bits-1), and for each group
 * (group <= 0: the one row) its scale and zero point, so element i is
 * scale[i/g] * (q[i] - zero[i/g]) exactly as qb_dequant_row_int_ref computes it (group
 * scales and zeros come from their f16 fields exactly; the symmetric zero is 2^(bits-1)).
 * scale and zero hold n/group entries (1 when group <= 0). */
void qb_int_row_unpack(int bits, int group, bool asym, const void *src, int64_t n, uint8_t *q, float *scale,
                       float *zero);

/* ---- NF4: QLoRA's 4-bit NormalFloat, 64-element blocks -------------------------------------- */

#define QB_NF4_BLOCK 64
/* The 16 NormalFloat levels (bitsandbytes' table, ascending, code = index). */
extern const float qb_nf4_levels[16];
/* Nearest level's code for a value already divided by the block absmax (bitsandbytes'
 * decision tree: ties go to the lower code; NaN → the zero level, code 7). */
uint8_t qb_nf4_code(float v);

/* n must be a multiple of 64. dq: absmax values quantized to int8 (double quantization). */
size_t qb_nf4_row_bytes(bool dq, int64_t n);
void qb_quant_row_nf4_ref(bool dq, const float *x, void *dst, int64_t n);
void qb_dequant_row_nf4_ref(bool dq, const void *src, float *y, int64_t n);

/* ---- FP8: OCP E4M3 ("fn": max 448, no inf, NaN 0x7f/0xff) and E5M2 (IEEE-like, max 57344) -- */

#define QB_FP8_E4M3_MAX 448.0f
#define QB_FP8_E5M2_MAX 57344.0f
/* Exact conversions. f32 → fp8 rounds to nearest, ties to even, and saturates: |x| beyond the
 * largest finite value (infinities included) gives ±max; NaN gives a NaN code (0x7f | sign). */
uint8_t qb_fp8_e4m3_from_f32(float x);
float qb_fp8_e4m3_to_f32(uint8_t c);
uint8_t qb_fp8_e5m2_from_f32(float x);
float qb_fp8_e5m2_to_f32(uint8_t c);

/* A row: an f32 scale then n codes. absmax < 0: the row's own absmax (per channel); else the
 * tensor's (per tensor). */
size_t qb_fp8_row_bytes(int64_t n);
void qb_quant_row_fp8_ref(bool e5m2, const float *x, void *dst, int64_t n, float absmax);
void qb_dequant_row_fp8_ref(bool e5m2, const void *src, float *y, int64_t n);

/* ---- MXFP4: OCP Microscaling FP4, 32 E2M1 elements sharing one E8M0 scale ----------------- */

#define QB_MXFP4_BLOCK 32
/* E2M1 code (s·eem: sign bit 3) of a value already divided by the block scale: round to
 * nearest, ties to even, saturating at ±6; NaN → 0. And the value of a code. */
uint8_t qb_e2m1_from_f32(float v);
float qb_e2m1_to_f32(uint8_t c);

/* n must be a multiple of 32. */
size_t qb_mxfp4_row_bytes(int64_t n);
void qb_quant_row_mxfp4_ref(const float *x, void *dst, int64_t n);
void qb_dequant_row_mxfp4_ref(const void *src, float *y, int64_t n);

/* ---- dot products straight from the packed bytes (fmt_dot_*.c) --------------------------- */


/* The parameters a format's kernels read (the format table's params hook fills them from a
 * qb_format; each kernel entry belongs to one format, so no kind is needed here). */
typedef struct qb_fmt_params {
    int bits;  /* INT: 2..8 */
    int group; /* INT: 32/64/128/256, or <= 0 for one scale per row (per channel or tensor) */
    bool asym; /* INT: zero point */
    bool dq;   /* NF4: double-quantized absmax */
} qb_fmt_params;

/* qb_fmt_tile_fn entries (kernels.h), one per format and ISA, listed in the formats' rows of
 * the format table. fp8 rows: e4m3 / e5m2. */
#define QB_FMT_TILE_DECL(fmt, isa)                                                                                  \
    void qb_fmt_tile_##fmt##_##isa(const struct qb_fmt_params *f, int n, const void *w, size_t wst, int nr,          \
                                   const float *x, size_t ldx, int nc, float *y, size_t ldy);
QB_FMT_TILE_DECL(int, avx2) QB_FMT_TILE_DECL(nf4, avx2) QB_FMT_TILE_DECL(e4m3, avx2) QB_FMT_TILE_DECL(e5m2, avx2)
QB_FMT_TILE_DECL(mxfp4, avx2) QB_FMT_TILE_DECL(int, avx512) QB_FMT_TILE_DECL(nf4, avx512)
QB_FMT_TILE_DECL(e4m3, avx512) QB_FMT_TILE_DECL(e5m2, avx512) QB_FMT_TILE_DECL(mxfp4, avx512)

/* ---- INT rows times 8-bit activations (fmt_int_q8_*.c) ------------------------------------ */

/* Whether the integer path takes INT rows (f an INT format's parameters) of n elements with these parameters: bits 2..8 and
 * 32-element activation blocks that never straddle a weight group (group a multiple of 32, or
 * one scale per row with n a multiple of 32). */
static inline bool qb_int_q8_supported(const qb_fmt_params *f, int n)
{
    return f->bits >= 2 && f->bits <= 8 && n > 0 && n % 32 == 0 &&
           (f->group <= 0 || f->group % 32 == 0);
}

/* One token's activations for the integer path, built from its Q8_0 row (the kernel table's
 * quantize_act[Q8_0], so the numbers are llama.cpp's 8-bit activations) and laid out planar
 * so the kernels load them plainly: int8 q[n] (element order), f32 d[n/32] (the block
 * scales, exactly the f16 values), int32 s4[n/4] (the sums of each 4 consecutive q: the zero
 * point term of an int32 lane of 4 products, so each lane holds sum (code - zero) · q and
 * never a large difference of large numbers). qb_int_act_row_bytes(n) bytes (a multiple of
 * 64) per token. */
static inline size_t qb_int_act_row_bytes(int n) { return ((size_t)n * 2 + (size_t)n / 8 + 63) & ~(size_t)63; }
void qb_int_act_from_q8_0(int n, const void *q8_0, void *act);
static inline const int8_t *qb_int_act_q(const void *act) { return act; }
static inline const float *qb_int_act_d(const void *act, int n) { return (const float *)((const char *)act + n); }
static inline const int32_t *qb_int_act_s4(const void *act, int n)
{
    return (const int32_t *)((const char *)act + n + (size_t)n / 8);
}

/* The spec of qb_kernel_table.int_tile_q8: rows of an INT format (qb_int_q8_supported) times
 * activations in the layout above. For each weight row r (< nr <= 4, wst bytes apart) and
 * token c (< nc <= 4, ast bytes apart), over the 32-element blocks b of the row, in order:
 *     y[c*ldy + r] += (d_w(group of b) * d_x(b)) * (float)(sum_i code_i * q_i  -  zero * s(b))
 * the bracket an exact int32 (codes 0..2^bits-1; zero the group's integer zero point,
 * 2^(bits-1) when symmetric; s(b) the sum of the block's 32 q), the sum in f32 from 0. Vector
 * versions split each bracket into lanes of 4 products and differ only in float summation. */
void qb_int_tile_q8_ref(const qb_fmt_params *f, int n, const void *w, size_t wst, int nr, const void *act, size_t ast,
                        int nc, float *y, size_t ldy);

/* One token (generation) through the kernel table's int_gemv (gemv_int_avx512.c): INT rows of
 * 4 bits in groups of 128 / 256 (or per row, n a multiple of 128) and of 8 bits in groups of
 * 64 / 128 / 256 (or per row, n a multiple of 64). qb_int_gemv_act lays out a token's Q8_0 row
 * (the same quants as qb_int_act_from_q8_0) for it in qb_int_gemv_act_bytes(bits, n) bytes;
 * the layout is described in gemv_int_avx512.c. int_gemv computes what qb_int_tile_q8_ref
 * does for one row and one token, in another float order. */
bool qb_int_gemv_supported(const qb_fmt_params *f, int n);
size_t qb_int_gemv_act_bytes(int bits, int n);
void qb_int_gemv_act(int bits, const void *q8_0, int n, void *xg);

#endif
