/* fakequant.h — integer quantization with learnable rounding and clipping, differentiable by
 * the straight-through estimator, in SignRound's parametrisation (Cheng et al. 2023, "Optimize
 * Weight Rounding via Signed Gradient Descent for the Quantization of LLMs"): every weight has
 * a rounding offset v ∈ [−0.5, 0.5] added before rounding, every group clip factors α (on its
 * maximum) and β (on its minimum) in [0.5, 1] that shrink the range its grid covers. With v = 0
 * and α = β = 1 it is the format's own round-to-nearest.
 *
 * For a group with minimum mn and maximum mx of the original weights, the grid is the one the
 * INT format stores for the range (β·mn, α·mx) (qb_int_grid: scale d, f16-rounded for groups,
 * zero point z), and w quantizes to d·(clamp(rint(w/d + v) + z, 0, 2^b − 1) − z): exactly the
 * values qb_fq_pack's bytes dequantize to. Gradients treat rint and the f16 rounding of d as the
 * identity (the STE), and clamp as passing the gradient only inside its range, as PyTorch
 * autograd does for the same expression (checked against it: tests/unit/test-fakequant.c). */
#ifndef QB_METHOD_FAKEQUANT_H
#define QB_METHOD_FAKEQUANT_H

#include "../quant/format.h"

/* Groups of a rows × n matrix in INT format f: rows · n / group (per channel: rows); 0 when f
 * is not an INT format with groups or per channel. */
int64_t qb_fq_groups(const qb_format *f, int64_t rows, int64_t n);

/* wq (rows × n) from w with offsets v (rows × n; NULL: all 0) and clip factors alpha, beta (one per
 * group). v may be NULL in the two functions below too. */
void qb_fq_forward(const qb_format *f, const float *w, int64_t rows, int64_t n, const float *v, const float *alpha,
                   const float *beta, float *wq);

/* From dwq (the loss's gradient with respect to wq): dv (rows × n), dalpha, dbeta (per group)
 * are ADDED to; any of them may be NULL. */
void qb_fq_backward(const qb_format *f, const float *w, int64_t rows, int64_t n, const float *v, const float *alpha,
                    const float *beta, const float *dwq, float *dv, float *dalpha, float *dbeta);

/* The format's packed rows (rows × qb_format_row_bytes(f, n) bytes) for the same values.
 * Errors: f not an INT format with groups or per channel (QB_ERR_UNSUPPORTED), bad sizes. */
qb_status qb_fq_pack(qb_ctx *ctx, const qb_format *f, const float *w, int64_t rows, int64_t n, const float *v,
                     const float *alpha, const float *beta, void *dst);

#endif
