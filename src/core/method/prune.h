/* prune.h — pruning as a method that combines with quantization: weights set to zero before a
 * format quantizes them. Magnitude pruning (unstructured: in every row, the given fraction of
 * the weights with the smallest |w| become 0) and N:M structured sparsity (in every group of M
 * consecutive weights of a row, only the N largest |w| are kept: 2:4 as sparse tensor cores
 * use). Pruning works on a tensor's original values, so a pruned tensor is restored like any
 * quantized one (qb_tensor_restore) and can be pruned or quantized again differently. */
#ifndef QB_PRUNE_H
#define QB_PRUNE_H

#include "../model/model.h"

typedef enum {
    QB_PRUNE_NONE = 0,
    QB_PRUNE_MAGNITUDE, /* unstructured, per row: round(sparsity * row length) zeros */
    QB_PRUNE_NM,        /* n kept of every m */
} qb_prune_kind;

typedef struct {
    qb_prune_kind kind;
    double sparsity; /* MAGNITUDE: fraction of each row set to zero, in [0, 1) */
    int n, m;        /* NM: keep n of every m consecutive weights, 0 < n < m <= 64 */
} qb_prune;

/* Parse "0.5" / "50%" / "magnitude:0.5" (unstructured) or "2:4" (N:M). Errors name the spec. */
qb_status qb_prune_parse(qb_ctx *ctx, const char *spec, qb_prune *out);
/* "magnitude-50%" / "2:4" into buf. */
void qb_prune_name(const qb_prune *p, char *buf, size_t cap);
/* Check p against rows of length n: sparsity range, n:m values, m dividing the row. */
qb_status qb_prune_check(qb_ctx *ctx, const qb_prune *p, int64_t n);

/* Prune a rows × n row-major f32 matrix in place (OpenMP over rows). Ties in |w| are broken
 * by position (the earlier weight is pruned first), so the result is deterministic. */
qb_status qb_prune_matrix(qb_ctx *ctx, const qb_prune *p, float *w, int64_t rows, int64_t n);

/* Give tensor t its original values pruned by p, then stored in fmt (NULL: the tensor's
 * original type when it is F32/F16/BF16, else F32; ggml types fall back as llama-quantize
 * does for rows that do not fit their blocks), into a new buffer t owns (the previous one is
 * freed). qb_tensor_restore undoes it. Errors: those of qb_prune_check and
 * qb_format_check naming the tensor, a tensor that is not a weight matrix, QB_ERR_CANCELLED
 * (t unchanged). */
qb_status qb_tensor_prune(qb_ctx *ctx, qb_tensor *t, const qb_prune *p, const qb_format *fmt,
                          const volatile int *cancel);

/* Prune every weight matrix of m's blocks (blk.*: attention and FFN, not token_embd or output,
 * as SparseGPT and Wanda do) and store each in fmt (NULL as above). Stops at the first error;
 * tensors already done stay pruned (restore them with qb_tensor_restore). Works on views. */
qb_status qb_prune_apply(qb_ctx *ctx, qb_model *m, const qb_prune *p, const qb_format *fmt,
                         const volatile int *cancel);

/* Fraction of exact zeros among the n values of w. */
double qb_prune_zero_fraction(const float *w, int64_t n);

#endif
