/* learnable.c — one matrix's learnable quantization (learnable.h): offsets and factors over
 * fakequant.h's INT grids or fakequant_kquant.h's k-quant blocks, SignRound's signed steps. */
#include "learnable.h"
#include "fakequant.h"

#include <stdlib.h>
#include <string.h>

void qb_lrn_free(qb_learnable *x)
{
    float *all[] = {x->wq, x->v, x->a, x->b, x->bv, x->ba, x->bb, x->gw, x->gv, x->ga, x->gb};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]);
    qb_fqk_free(x->kq);
    memset(x, 0, sizeof *x);
}

qb_status qb_lrn_init(qb_ctx *ctx, qb_learnable *x, const qb_format *f, const float *w, int64_t rows, int64_t n,
                      const float *imp)
{
    memset(x, 0, sizeof *x);
    x->f = f;
    x->w = w;
    x->rows = rows;
    x->n = n;
    x->ng = qb_fq_groups(f, rows, n);
    x->lo = 0.5f;
    x->hi = 1.0f;
    if (!x->ng) {
        qb_status st = qb_fqk_new(ctx, f, w, rows, n, imp, &x->kq);
        if (st != QB_OK) return st;
        x->ng = qb_fqk_subblocks(x->kq);
        x->lo = QB_FQK_FACTOR_MIN;
        x->hi = QB_FQK_FACTOR_MAX;
    }
    const size_t rn = (size_t)(rows * n), ng = (size_t)x->ng;
    x->wq = malloc(rn * sizeof(float));
    x->v = calloc(rn, sizeof(float));
    x->bv = calloc(rn, sizeof(float));
    x->gw = malloc(rn * sizeof(float));
    x->gv = malloc(rn * sizeof(float));
    x->a = malloc(ng * sizeof(float));
    x->b = malloc(ng * sizeof(float));
    x->ba = malloc(ng * sizeof(float));
    x->bb = malloc(ng * sizeof(float));
    x->ga = malloc(ng * sizeof(float));
    x->gb = malloc(ng * sizeof(float));
    if (!x->wq || !x->v || !x->bv || !x->gw || !x->gv || !x->a || !x->b || !x->ba || !x->bb || !x->ga || !x->gb)
        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < ng; k++) x->a[k] = x->b[k] = x->ba[k] = x->bb[k] = 1.0f;
    qb_lrn_refresh(x);
    return QB_OK;
}

void qb_lrn_refresh(qb_learnable *x)
{
    if (x->kq) qb_fqk_forward(x->kq, x->v, x->a, x->b, x->wq);
    else qb_fq_forward(x->f, x->w, x->rows, x->n, x->v, x->a, x->b, x->wq);
}

void qb_lrn_keep_best(qb_learnable *x)
{
    memcpy(x->bv, x->v, (size_t)(x->rows * x->n) * sizeof(float));
    memcpy(x->ba, x->a, (size_t)x->ng * sizeof(float));
    memcpy(x->bb, x->b, (size_t)x->ng * sizeof(float));
}

void qb_lrn_use_best(qb_learnable *x)
{
    memcpy(x->v, x->bv, (size_t)(x->rows * x->n) * sizeof(float));
    memcpy(x->a, x->ba, (size_t)x->ng * sizeof(float));
    memcpy(x->b, x->bb, (size_t)x->ng * sizeof(float));
    qb_lrn_refresh(x);
}

/* one signed step of size s, clamped to the parameters' ranges */
static void signed_step(float *p, const float *g, size_t n, float s, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) {
        const float d = g[i] > 0 ? s : g[i] < 0 ? -s : 0.0f;
        float v = p[i] - d;
        p[i] = v < lo ? lo : v > hi ? hi : v;
    }
}

/* The first step's size for matrix x: the given lr, else 1/iters (SignRound's), and for the
 * k-quants no more than 1/50: they start from the format's own searched quantization and
 * learn offsets alone, where large early steps flip too many codes at once (qb-docs-26m, 20
 * steps of 4 windows, weighted start, KLD: Q3_K 0.0991 / 0.0936 / 0.0920 / 0.0985 at lr
 * 0.05 / 0.02 / 0.01 / 0.005, Q2_K 0.389 / 0.350 / 0.367 at 0.05 / 0.02 / 0.01; int2-g64's
 * clip factors want the larger steps: 1.151 at 0.05, 1.285 at 0.01). */
static float step_size(const qb_learned_params *p, const qb_learnable *x)
{
    if (p->lr > 0) return p->lr;
    const int n = x->kq && p->iters < 50 ? 50 : p->iters;
    return 1.0f / (float)n;
}

void qb_lrn_step(qb_learnable *x, const qb_learned_params *p, float decay)
{
    const size_t rn = (size_t)(x->rows * x->n), ng = (size_t)x->ng;
    const bool factors = !x->kq || p->scales; /* k-quants: the format's scales unless asked */
    memset(x->gv, 0, rn * sizeof(float));
    memset(x->ga, 0, ng * sizeof(float));
    memset(x->gb, 0, ng * sizeof(float));
    if (x->kq) qb_fqk_backward(x->kq, x->v, x->a, x->b, x->gw, x->gv, factors ? x->ga : NULL, factors ? x->gb : NULL);
    else qb_fq_backward(x->f, x->w, x->rows, x->n, x->v, x->a, x->b, x->gw, x->gv, x->ga, x->gb);
    const float step = step_size(p, x) * decay;
    signed_step(x->v, x->gv, rn, step, -0.5f, 0.5f);
    if (factors) {
        signed_step(x->a, x->ga, ng, step, x->lo, x->hi);
        signed_step(x->b, x->gb, ng, step, x->lo, x->hi);
    }
    qb_lrn_refresh(x);
}

qb_status qb_lrn_pack(qb_ctx *ctx, const qb_learnable *x, void *dst)
{
    if (!x->kq) return qb_fq_pack(ctx, x->f, x->w, x->rows, x->n, x->v, x->a, x->b, dst);
    qb_fqk_pack(x->kq, x->v, x->a, x->b, dst);
    return QB_OK;
}
