/* learnable.h — one matrix's learnable quantization for learned rounding (not public API): the
 * rounding offsets and per-group factors of fakequant.h (INT formats: clip factors α, β of each
 * group's max and min) or fakequant_kquant.h (k-quants: each sub-block's scale and min factors),
 * the fake-quantized values they give, their gradients from the values' gradient, SignRound's
 * signed step, the best step's values kept, and the format's packed bytes at the end. Shared by
 * the block-by-block method (learned.c) and the one-matrix preview (learned_matrix.c). */
#ifndef QB_METHOD_LEARNABLE_H
#define QB_METHOD_LEARNABLE_H

#include "learned.h"
#include "fakequant_kquant.h"

typedef struct {
    const qb_format *f;
    const float *w;        /* the original values (borrowed) */
    int64_t rows, n, ng;
    qb_fqk *kq;            /* the k-quant's start, or NULL */
    float lo, hi;          /* the factors' range */
    float *wq;             /* the fake-quantized values */
    float *v, *a, *b;      /* offsets (rows × n), factors (ng each) */
    float *bv, *ba, *bb;   /* the best step's */
    float *gw;             /* gradient with respect to wq: the caller fills it before qb_lrn_step */
    float *gv, *ga, *gb;
} qb_learnable;

/* x for w (rows × n, borrowed) in format f, which qb_learned_supports accepts; imp (may be
 * NULL): the columns' importance a k-quant's starting quantization is weighted with. wq holds
 * the starting (round-to-nearest) values. Errors: QB_ERR_NOMEM, the k-quant's. Free with
 * qb_lrn_free (also after a failed init). */
qb_status qb_lrn_init(qb_ctx *ctx, qb_learnable *x, const qb_format *f, const float *w, int64_t rows, int64_t n,
                      const float *imp);
void qb_lrn_free(qb_learnable *x);
/* wq from the current offsets and factors. */
void qb_lrn_refresh(qb_learnable *x);
/* Remember the current offsets and factors as the best (before stepping away from them). */
void qb_lrn_keep_best(qb_learnable *x);
/* Back to the best remembered values (wq refreshed). */
void qb_lrn_use_best(qb_learnable *x);
/* One signed-gradient step from gw, at the first step's size for p (p->lr, else 1/iters; the
 * k-quants at most 1/50) times decay; factors move too unless x is a k-quant and p->scales is
 * off. wq refreshed. */
void qb_lrn_step(qb_learnable *x, const qb_learned_params *p, float decay);
/* The format's packed rows for the current values. */
qb_status qb_lrn_pack(qb_ctx *ctx, const qb_learnable *x, void *dst);

#endif
