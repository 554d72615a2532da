/* learned_matrix.c — learned rounding of one matrix against its own output error through XᵀX
 * (learned.h: qb_learned_matrix), the workbench's per-matrix preview of the method. */
#include "learnable.h"
#include "fakequant.h"
#include "../infer/backward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Σ D ⊙ (D·H) = ‖X·Dᵀ‖² for D (rows × n) and H = XᵀX (n × n); g ← D·H */
static double quad(const float *dm, int64_t rows, int64_t n, const float *h, float *g)
{
    qb_product_f32((int)rows, (int)n, (int)n, dm, (size_t)n, 1, h, (size_t)n, g, (size_t)n, false, true);
    double e = 0;
#pragma omp parallel for reduction(+ : e) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        double s = 0;
        for (int64_t c = 0; c < n; c++) s += (double)dm[r * n + c] * g[r * n + c];
        e += s;
    }
    return e;
}

qb_status qb_learned_matrix(qb_ctx *ctx, const qb_learned_params *p, const qb_format *f, const float *w, int64_t rows,
                            int64_t n, const double *xtx, const float *imp, float *deq, double *err_rtn,
                            double *err_learned, qb_learned_watch watch, void *ud, const volatile int *cancel)
{
    if (qb_fq_groups(f, rows, n) <= 0 && !qb_fqk_supports(f, n)) {
        char name[64];
        qb_format_name(f, name, sizeof name);
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "learned rounding: only integer formats with groups or per channel and "
                       "the k-quants q2_k..q6_k (rows a multiple of 256) are learned, not %s", name);
    }
    qb_learned_params pp = *p;
    if (pp.iters <= 0) pp.iters = 200;
    const size_t rn = (size_t)(rows * n);
    float *h = malloc((size_t)(n * n) * sizeof *h), *d = malloc(rn * sizeof *d);
    qb_learnable x;
    memset(&x, 0, sizeof x);
    qb_status st = h && d ? qb_lrn_init(ctx, &x, f, w, rows, n, imp) : qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    if (st != QB_OK) goto done;
    for (size_t i = 0; i < (size_t)(n * n); i++) h[i] = (float)xtx[i];
    double ref = quad(w, rows, n, h, x.gw); /* the output's own size */
    if (!(ref > 0)) ref = 1;
    double best = INFINITY, first = NAN;
    /* iteration it measures the current values, then (it < iters) steps away from them */
    for (int it = 0; it <= pp.iters; it++) {
        if (cancel && *cancel) {
            st = qb_fail(ctx, QB_ERR_CANCELLED, "cancelled");
            goto done;
        }
        for (size_t i = 0; i < rn; i++) d[i] = x.wq[i] - w[i];
        const double e = quad(d, rows, n, h, x.gw) / ref; /* gw ← D·H: the gradient up to 2/ref */
        if (it == 0) first = e;
        if (e < best) {
            best = e;
            qb_lrn_keep_best(&x);
        }
        if (watch) watch(ud, it, pp.iters, e, x.wq);
        if (it < pp.iters) qb_lrn_step(&x, &pp, 1.0f - (float)it / (float)pp.iters);
    }
    qb_lrn_use_best(&x);
    memcpy(deq, x.wq, rn * sizeof *deq);
    if (err_rtn) *err_rtn = first;
    if (err_learned) *err_learned = best;
done:
    qb_lrn_free(&x);
    free(h);
    free(d);
    return st;
}
