/* gptq.h — GPTQ (Frantar, Ashkboos, Hoefler, Alistarh 2022, "GPTQ: Accurate Post-Training
 * Quantization for Generative Pre-trained Transformers"), written from the paper: the
 * columns of a weight matrix are quantized one at a time and each one's rounding error is
 * spread over the columns not yet quantized, weighted by the inverse Hessian of the layer's
 * squared output error, H = 2/n·XᵀX (X: the layer's calibration inputs).
 *
 * Details as in the paper: dampening λ = damp · mean(diag H) added to the diagonal, the
 * upper Cholesky factor of H⁻¹ in place of H⁻¹ (numerically stable), lazy batch updates of
 * `block` columns, optional act-order (columns by decreasing diag H). A group's scales are
 * found on the error-updated weights when the group starts, then each column is rounded with
 * them, so the result is written directly in the target format's packed bytes (integer
 * groups or per channel, and the ggml block formats grid.h lists): it runs packed and exports.
 * With act-order, packed formats keep groups of consecutive columns, so their scales are
 * chosen from the original weights before the pass ("static groups"); perm_groups instead
 * forms groups in processing order as the authors' reference code does (integer formats,
 * dequantized output only: no packed layout can store it). */
#ifndef QB_GPTQ_H
#define QB_GPTQ_H

#include "../quant/format.h"

typedef struct {
    int block;        /* lazy-update block (0 = 128) */
    float damp;       /* fraction of the mean Hessian diagonal added to it (0 = 0.01; < 0: none) */
    bool act_order;   /* columns in decreasing diag(H) order */
    bool perm_groups; /* with act_order: groups in processing order (reference behaviour) */
    /* Importance-weighted group scales, for the ggml types llama-quantize weights with an
     * imatrix (K-quants, Q4_0..Q5_1): each group's scales minimise the error weighted by its
     * columns' importance, as --imatrix quantization does, before GPTQ rounds its columns.
     * importance (n floats, column order): an imatrix's E[x²] for the matrix; NULL with
     * weighted: diag(XᵀX) of the Hessian given, which is the imatrix of the calibration text
     * (the same data). Neither: the format's plain RTN scales. */
    bool weighted;
    const float *importance;
} qb_gptq_params;

/* Quantize w (rows × n, row-major f32; not changed) to format f with GPTQ against the
 * accumulated xtx (n × n, XᵀX summed over calibration rows; any positive multiple works).
 * dst (rows × qb_format_row_bytes(f, n) bytes, may be NULL) receives the packed rows; deq
 * (rows × n, may be NULL) the values they stand for. Parallel over rows (OpenMP, ctx's thread
 * count); the result does not depend on the thread count. cancel (may be NULL) stops the run
 * with QB_ERR_CANCELLED (outputs then partial). Errors: QB_ERR_UNSUPPORTED for formats
 * without a per-group grid (message names it) and for perm_groups with a packed dst;
 * QB_ERR_ARG for a Hessian that is not positive definite after dampening, bad sizes. */
qb_status qb_gptq_quantize(qb_ctx *ctx, const qb_format *f, const float *w, int64_t rows, int64_t n, const double *xtx,
                           const qb_gptq_params *p, void *dst, float *deq, const volatile int *cancel);

/* The expensive part of GPTQ for one Hessian, computed once and reusable across formats,
 * group sizes, blocks and matrices that share the input: XᵀX dampened (damp as in
 * qb_gptq_params), columns in act-order or not, and the upper Cholesky factor of its inverse.
 * *out is owned by the caller (qb_gptq_factor_free). Errors: QB_ERR_ARG for a Hessian that is
 * not positive definite after dampening; QB_ERR_NOMEM. */
typedef struct qb_gptq_factor qb_gptq_factor;
qb_status qb_gptq_factor_new(qb_ctx *ctx, const double *xtx, int64_t n, float damp, bool act_order,
                             qb_gptq_factor **out);
void qb_gptq_factor_free(qb_gptq_factor *fc);

/* qb_gptq_quantize with a factor made by qb_gptq_factor_new (its n columns, damp and column
 * order; p's damp and act_order are not read). Gives the same bytes as qb_gptq_quantize with
 * the same settings. */
qb_status qb_gptq_quantize_factored(qb_ctx *ctx, const qb_format *f, const float *w, int64_t rows,
                                    const qb_gptq_factor *fc, const qb_gptq_params *p, void *dst, float *deq,
                                    const volatile int *cancel);

/* Relative output error tr(D·H·Dᵀ) / tr(W·H·Wᵀ), D = w − q, for a Hessian xtx (n × n):
 * ‖XWᵀ − XQᵀ‖²_F / ‖XWᵀ‖²_F without the inputs themselves. Parallel over rows. */
double qb_gptq_output_error(const float *w, const float *q, int64_t rows, int64_t n, const double *xtx);

/* tr(D·H·Dᵀ) = ‖X·Dᵀ‖²_F with D = a − b (b NULL: D = a) and H given in f32 (hf, n × n,
 * row-major), for callers that measure many candidates against one Hessian. NAN when out of
 * memory. */
double qb_gptq_output_sq(const float *hf, const float *a, const float *b, int64_t rows, int64_t n);

#endif
