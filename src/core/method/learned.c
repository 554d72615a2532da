/* learned.c — SignRound block by block (learned.h) over the training pass's block forward and
 * backward and the learnable quantizations of fakequant.h (INT formats) and fakequant_kquant.h
 * (k-quants). */
#include "learned.h"
#include "learnable.h"
#include "fakequant.h"
#include "../infer/train.h"
#include "../infer/matmul.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

struct qb_learned {
    const qb_model *m;
    qb_learned_params p;
    int nw, T, dim, next;  /* windows, tokens per window, width; the block expected next */
    float *x_fp, *x_q;     /* (nw, T, dim) inputs of block `next`: full precision / quantized path */
    float *y, *dy;         /* (T, dim) scratch */
    qb_train_pass *tp;
    uint64_t rng;
};

/* the seven matrices of a block in qb_learned_block's order */
static float **mat_slot(qb_train_layer *P, int i)
{
    float **s[7] = {&P->wq, &P->wk, &P->wv, &P->wo, &P->w_gate, &P->w_up, &P->w_down};
    return s[i];
}

static const qb_tensor *mat_tensor(const qb_layer_weights *L, int i)
{
    const qb_tensor *t[7] = {L->wq, L->wk, L->wv, L->wo, L->w_gate, L->w_up, L->w_down};
    return t[i];
}

void qb_learned_end(qb_learned *lr)
{
    if (!lr) return;
    free(lr->x_fp);
    free(lr->x_q);
    free(lr->y);
    free(lr->dy);
    qb_train_pass_free(lr->tp);
    free(lr);
}

qb_status qb_learned_begin(qb_ctx *ctx, const qb_model *m, const qb_calib *cal, const qb_learned_params *p,
                           qb_learned **out)
{
    *out = NULL;
    if (!cal || !cal->windows || cal->n_windows < 1)
        return qb_fail(ctx, QB_ERR_ARG, "learned rounding needs the calibration's token windows");
    qb_learned *lr = calloc(1, sizeof *lr);
    if (!lr) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    lr->m = m;
    lr->p = *p;
    if (lr->p.iters <= 0) lr->p.iters = 200;
    /* lr 0: each format family's default, chosen per matrix (step_size) */
    if (lr->p.batch <= 0) lr->p.batch = 8;
    if (lr->p.batch > cal->n_windows) lr->p.batch = cal->n_windows;
    lr->nw = cal->n_windows;
    lr->T = cal->n_ctx;
    lr->dim = m->cfg.dim;
    lr->rng = 0x9e3779b97f4a7c15ull;
    qb_status st = qb_train_pass_new(ctx, m, lr->T, &lr->tp);
    if (st != QB_OK) {
        qb_learned_end(lr);
        return st;
    }
    const size_t n = (size_t)lr->nw * lr->T * lr->dim;
    lr->x_fp = malloc(n * sizeof(float));
    lr->x_q = malloc(n * sizeof(float));
    lr->y = malloc((size_t)lr->T * lr->dim * sizeof(float));
    lr->dy = malloc((size_t)lr->T * lr->dim * sizeof(float));
    if (!lr->x_fp || !lr->x_q || !lr->y || !lr->dy) {
        qb_learned_end(lr);
        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory for %d calibration windows' activations", cal->n_windows);
    }
    for (size_t t = 0; t < (size_t)lr->nw * lr->T; t++) {
        float *row = lr->x_fp + t * lr->dim;
        qb_tensor_get_row(m->tok_embd, cal->windows[t], row);
        for (int i = 0; i < lr->dim; i++) row[i] *= m->cfg.embed_scale;
    }
    memcpy(lr->x_q, lr->x_fp, n * sizeof(float));
    *out = lr;
    return QB_OK;
}

bool qb_learned_supports(const qb_format *f, const qb_tensor *t)
{
    return qb_fq_groups(f, qb_tensor_rows(t), t->ne[0]) > 0 || qb_fqk_supports(f, t->ne[0]);
}

static uint64_t next_rand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

/* Mean squared error of block l (parameters P) on windows idx[0..k) of the quantized path
 * against the full-precision outputs yfp; with G, its gradient is added to G. */
static qb_status block_loss(qb_ctx *ctx, qb_learned *lr, int l, const qb_train_layer *P, const float *yfp,
                            const int *idx, int k, qb_train_layer *G, double *loss)
{
    const size_t td = (size_t)lr->T * lr->dim;
    const double scale = 1.0 / ((double)k * td);
    double sum = 0;
    for (int j = 0; j < k; j++) {
        const size_t w = (size_t)idx[j];
        memcpy(lr->y, lr->x_q + w * td, td * sizeof(float));
        qb_status st = qb_train_block_forward(ctx, lr->tp, l, P, lr->y, lr->T);
        if (st != QB_OK) return st;
        const float *target = yfp + w * td;
        for (size_t i = 0; i < td; i++) {
            const double d = (double)lr->y[i] - target[i];
            sum += d * d;
            lr->dy[i] = (float)(2.0 * d * scale);
        }
        if (G && (st = qb_train_block_backward(ctx, lr->tp, l, P, lr->dy, G)) != QB_OK) return st;
    }
    *loss = sum * scale;
    return QB_OK;
}

qb_status qb_learned_block(qb_ctx *ctx, qb_learned *lr, int l, const qb_format *const fmts[7],
                           const float *const imps[7], void *const dst[7], double *loss_rtn, double *loss_learned,
                           const volatile int *cancel)
{
    const qb_model *m = lr->m;
    if (l != lr->next) return qb_fail(ctx, QB_ERR_ARG, "learned rounding: block %d asked, block %d is next", l, lr->next);
    const qb_layer_weights *L = &m->layers[l];
    for (int i = 0; i < 7; i++)
        if (fmts[i] && !qb_learned_supports(fmts[i], mat_tensor(L, i)))
            return qb_fail(ctx, QB_ERR_UNSUPPORTED, "method learned, tensor %s: only integer formats with groups or "
                           "per channel (int4-g128, int3-g128-asym, int4-channel, ...) and the k-quants q2_k, q3_k, "
                           "q4_k, q5_k, q6_k (rows a multiple of 256) are learned", mat_tensor(L, i)->name);
#ifdef _OPENMP
    /* a small block's operations are too short for a thread team (qb_work_is_small): run it on
     * this thread; large blocks use the team inside each operation */
    const int threads = omp_get_max_threads();
    const bool small = qb_work_is_small((size_t)lr->T, lr->dim, m->cfg.hidden_dim);
    if (small) omp_set_num_threads(1);
#endif
    const size_t td = (size_t)lr->T * lr->dim, all = (size_t)lr->nw * td;
    qb_train_layer Pfp, Pq, G;
    memset(&G, 0, sizeof G);
    qb_learnable x[7];
    memset(x, 0, sizeof x);
    int *idx = malloc((size_t)(lr->nw > lr->p.batch ? lr->nw : lr->p.batch) * sizeof *idx);
    float *yfp = malloc(all * sizeof(float));
    qb_status st = idx && yfp ? qb_train_layer_init(ctx, m, l, true, &Pfp) : qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    if (st != QB_OK) {
#ifdef _OPENMP
        if (small) omp_set_num_threads(threads);
#endif
        free(idx);
        free(yfp);
        return st;
    }
    /* targets: the full-precision block on the full-precision inputs */
    for (int w = 0; w < lr->nw && st == QB_OK; w++) {
        memcpy(yfp + (size_t)w * td, lr->x_fp + (size_t)w * td, td * sizeof(float));
        st = qb_train_block_forward(ctx, lr->tp, l, &Pfp, yfp + (size_t)w * td, lr->T);
    }
    Pq = Pfp;
    for (int i = 0; i < 7 && st == QB_OK; i++) {
        if (!fmts[i]) continue;
        const qb_tensor *t = mat_tensor(L, i);
        if ((st = qb_lrn_init(ctx, &x[i], fmts[i], *mat_slot(&Pfp, i), qb_tensor_rows(t), t->ne[0],
                              imps ? imps[i] : NULL)) != QB_OK)
            break;
        *mat_slot(&Pq, i) = x[i].wq;
        *mat_slot(&G, i) = x[i].gw;
    }
    for (int w = 0; w < lr->nw; w++) idx[w] = w;
    double l0 = 0, best = INFINITY;
    if (st == QB_OK) st = block_loss(ctx, lr, l, &Pq, yfp, idx, lr->nw, NULL, &l0);
    bool any = false; /* a block with nothing to learn only moves the inputs past it */
    for (int i = 0; i < 7; i++) any = any || fmts[i];
    for (int it = 0; any && it < lr->p.iters && st == QB_OK; it++) {
        if (cancel && *cancel) {
            st = qb_fail(ctx, QB_ERR_CANCELLED, "quantization cancelled");
            break;
        }
        for (int j = 0; j < lr->p.batch; j++) idx[j] = (int)(next_rand(&lr->rng) % (uint64_t)lr->nw);
        for (int i = 0; i < 7; i++)
            if (fmts[i]) memset(x[i].gw, 0, (size_t)(x[i].rows * x[i].n) * sizeof(float));
        double loss;
        if ((st = block_loss(ctx, lr, l, &Pq, yfp, idx, lr->p.batch, &G, &loss)) != QB_OK) break;
        const bool better = loss < best;
        if (better) best = loss;
        const float decay = 1.0f - (float)it / (float)lr->p.iters;
        for (int i = 0; i < 7; i++) {
            if (!fmts[i]) continue;
            if (better) qb_lrn_keep_best(&x[i]); /* the values this loss was measured with */
            qb_lrn_step(&x[i], &lr->p, decay);
        }
    }
    /* the best values, packed; the quantized path moves past the block with them */
    for (int i = 0; i < 7 && st == QB_OK; i++) {
        if (!fmts[i]) continue;
        if (best < INFINITY) qb_lrn_use_best(&x[i]);
        st = qb_lrn_pack(ctx, &x[i], dst[i]);
    }
    double l1 = 0;
    for (int w = 0; w < lr->nw; w++) idx[w] = w;
    if (st == QB_OK) st = block_loss(ctx, lr, l, &Pq, yfp, idx, lr->nw, NULL, &l1);
    for (int w = 0; w < lr->nw && st == QB_OK; w++)
        st = qb_train_block_forward(ctx, lr->tp, l, &Pq, lr->x_q + (size_t)w * td, lr->T);
    if (st == QB_OK) {
        memcpy(lr->x_fp, yfp, all * sizeof(float));
        lr->next = l + 1;
        if (loss_rtn) *loss_rtn = l0;
        if (loss_learned) *loss_learned = l1;
    }
#ifdef _OPENMP
    if (small) omp_set_num_threads(threads);
#endif
    for (int i = 0; i < 7; i++) qb_lrn_free(&x[i]);
    qb_train_layer_release(&Pfp);
    free(idx);
    free(yfp);
    return st;
}
