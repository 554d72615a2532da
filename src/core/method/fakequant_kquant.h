/* fakequant_kquant.h — learnable rounding on the grids of ggml's k-quants (Q2_K, Q3_K, Q4_K,
 * Q5_K, Q6_K), differentiable by the straight-through estimator: the counterpart of
 * fakequant.h (INT formats) for the formats llama.cpp runs, so learned rounding writes GGUF
 * blocks. The design is SignRound's GGUF export (intel/auto-round) as its paper describes it:
 * start from the format's own quantization and learn the rounding against its scales.
 *
 * A matrix starts from the format's own round-to-nearest (qb_quantize_matrix_w: with an
 * importance it is llama-quantize --imatrix's): that fixes each super-block's f16 d (and
 * dmin) and each sub-block's integer scale sc (Q2_K 4 bits, Q4_K/Q5_K 6 bits, Q3_K 6 bits
 * signed, Q6_K 8 bits signed) and min mn (Q2_K, Q4_K, Q5_K). What is learned:
 *   - an offset v ∈ [−0.5, 0.5] per weight, added before rounding;
 *   - per sub-block a scale factor φ and (formats with mins) a min factor ψ, both in
 *     [QB_FQK_FACTOR_MIN, QB_FQK_FACTOR_MAX], re-quantized to the format's integers:
 *     S = clamp(rint(sc·φ), 1, max) (sc < 0: (min, −1); sc = 0 stays 0) and
 *     M = clamp(rint(mn·ψ), 0, max); d and dmin stay the format's.
 * With a = d·S and m = dmin·M (0 without mins) each weight quantizes to
 *     wq = a·c − m,  c = clamp(rint((w + m)/a + v), lo, hi)
 * (codes lo..hi: Q2_K 0..3, Q3_K −4..3, Q4_K 0..15, Q5_K 0..31, Q6_K −32..31), computed with
 * the format's dequantizer's float operations, so qb_fqk_pack's bytes dequantize to exactly
 * these values; rint is the quantizer's own (halves to even). A sub-block whose a is 0 keeps
 * the round-to-nearest codes (its value is −m whatever they are). With v = 0, φ = ψ = 1 the
 * packed bytes are the format's own quantization, byte for byte.
 *
 * Gradients treat rint as the identity (the STE, also on S and M) and clamp as passing the
 * gradient only inside its range, as PyTorch autograd does for the same expression (checked
 * against it: tests/unit/test-fakequant.c, tests/fixtures/train/fakequant). */
#ifndef QB_METHOD_FAKEQUANT_KQUANT_H
#define QB_METHOD_FAKEQUANT_KQUANT_H

#include "../quant/format.h"

#define QB_FQK_FACTOR_MIN 0.5f
#define QB_FQK_FACTOR_MAX 1.5f

typedef struct qb_fqk qb_fqk;

/* Whether rows of n elements in f are learned here (a k-quant and n a multiple of 256). */
bool qb_fqk_supports(const qb_format *f, int64_t n);

/* The format's own quantization of w (rows × n, borrowed: it must outlive *out and stay
 * unchanged), weighted by imp (n floats, one per column, or NULL) as llama-quantize --imatrix
 * weights it. Errors: a format or row length qb_fqk_supports refuses (QB_ERR_UNSUPPORTED),
 * QB_ERR_NOMEM. */
qb_status qb_fqk_new(qb_ctx *ctx, const qb_format *f, const float *w, int64_t rows, int64_t n, const float *imp,
                     qb_fqk **out);
void qb_fqk_free(qb_fqk *q);

/* Sub-blocks of the matrix: the length of the factor arrays (rows · n / 16 or / 32). */
int64_t qb_fqk_subblocks(const qb_fqk *q);
/* Whether the format has mins (Q2_K, Q4_K, Q5_K): without, ψ is ignored and gets no gradient. */
bool qb_fqk_has_mins(const qb_fqk *q);

/* wq (rows × n) for offsets v (rows × n) and factors phi, psi (one per sub-block each). */
void qb_fqk_forward(const qb_fqk *q, const float *v, const float *phi, const float *psi, float *wq);

/* From dwq (the loss's gradient with respect to wq): dv (rows × n), dphi, dpsi (per sub-block)
 * are ADDED to; any of them may be NULL. */
void qb_fqk_backward(const qb_fqk *q, const float *v, const float *phi, const float *psi, const float *dwq, float *dv,
                     float *dphi, float *dpsi);

/* The format's packed rows (rows × qb_format_row_bytes bytes) for the same values. */
void qb_fqk_pack(const qb_fqk *q, const float *v, const float *phi, const float *psi, void *dst);

#endif
