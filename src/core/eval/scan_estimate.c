/* scan_estimate.c — the sensitivity scan estimated from an importance matrix: each unit's
 * matrices quantized once and their output error weighted by the columns' importance, no
 * forward pass (sensitivity.h: qb_scan_estimate; the same machinery with other weights serves
 * the Fisher estimate, fisher.h); and Spearman's rank correlation, which says
 * how well such an estimate ranks the units the exact scan measures. */
#include "sensitivity.h"
#include "eval_internal.h"
#include "scan_internal.h"
#include "../calib/imatrix.h"
#include "../quant/format.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

qb_status qb_scan_weighted_error(qb_ctx *ctx, const qb_tensor *t, const qb_format *f, const void *q,
                                 const float *w, int64_t ld, double *err, double *ref)
{
    int64_t rows = qb_tensor_rows(t), n = t->ne[0];
    size_t rb = qb_format_row_bytes(f, n);
    double e = 0, s = 0;
    bool oom = false;
#pragma omp parallel num_threads(ctx->n_threads > 0 ? ctx->n_threads : 1) reduction(+ : e, s) reduction(|| : oom)
    {
        float *d = malloc((size_t)n * sizeof *d), *x = malloc((size_t)n * sizeof *x);
        oom = d == NULL || x == NULL;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            if (oom) continue;
            qb_tensor_source_rows(t, r, 1, x);
            qb_dequantize_row(f, (const unsigned char *)q + (size_t)r * rb, d, n);
            const float *wr = w ? w + r * ld : NULL;
            double er = 0, sr = 0;
            for (int64_t c = 0; c < n; c++) {
                double wc = wr ? wr[c] : 1.0, dv = (double)d[c] - x[c];
                er += wc * dv * dv;
                sr += wc * (double)x[c] * x[c];
            }
            e += er;
            s += sr;
        }
        free(d);
        free(x);
    }
    *err = e;
    *ref = s;
    return oom ? qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", t->name) : QB_OK;
}

qb_status qb_scan_tensor_error(qb_ctx *ctx, const qb_tensor *t, const qb_format *f, const float *w, int64_t ld,
                               const volatile int *cancel, double *err, double *ref, size_t *bytes)
{
    int64_t rows = qb_tensor_rows(t), n = t->ne[0];
    size_t rb = qb_format_row_bytes(f, n);
    float *src = malloc((size_t)(rows * n) * sizeof *src);
    unsigned char *q = malloc((size_t)rows * rb);
    qb_status st = src && q ? QB_OK
                            : qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory (%lld values)", t->name, (long long)(rows * n));
    if (st == QB_OK) {
        qb_tensor_source_rows(t, 0, rows, src);
        st = qb_quantize_matrix(ctx, f, src, rows, n, q, cancel);
    }
    free(src);
    *err = *ref = 0;
    if (st == QB_OK) st = qb_scan_weighted_error(ctx, t, f, q, w, ld, err, ref);
    free(q);
    *bytes = (size_t)rows * rb;
    return st;
}

static int cmp_est(const void *a, const void *b)
{
    const qb_scan_row *x = a, *y = b;
    if (x->est_err != y->est_err) return x->est_err < y->est_err ? 1 : -1;
    return strcmp(x->name, y->name);
}

/* Fill unit u's row from its tensors; QB_ERR_UNSUPPORTED (message set, not fatal) when a
 * tensor has no importance or cannot be stored in fmt. */
static qb_status estimate_unit(qb_ctx *ctx, const qb_model *m, const qb_format *fmt, qb_scan_cost_fn cost,
                               void *ud, double scale, qb_scan_unit_set *u, const volatile int *cancel)
{
    qb_scan_row *r = &u->row;
    char asked[32];
    qb_format_name(fmt, asked, sizeof asked);
    snprintf(r->format, sizeof r->format, "%s", asked);
    r->n_tensors = u->n;
    double err = 0, ref = 0;
    for (int k = 0; k < u->n; k++) {
        const qb_tensor *t = &m->tensors[u->tensors[k]];
        qb_format f = qb_format_fallback(fmt, t->ne[0]);
        qb_status st = qb_format_check(ctx, &f, t->ne[0]);
        if (st != QB_OK) return st == QB_ERR_ARG ? st : QB_ERR_UNSUPPORTED;
        if (!qb_format_equal(&f, fmt)) {
            char got[32];
            qb_format_name(&f, got, sizeof got);
            if (u->n == 1) snprintf(r->format, sizeof r->format, "%s", got);
            else snprintf(r->format, sizeof r->format, "%.20s+fallback", asked);
        }
        double e = 0, s = 0;
        size_t bytes = 0;
        /* QB_ERR_UNSUPPORTED: the cost's message, the unit skipped */
        if ((st = cost(ud, ctx, t, &f, cancel, &e, &s, &bytes)) != QB_OK) return st;
        err += e;
        ref += s;
    r->params += qb_tensor_nelements(t);
        r->bytes += bytes;
        r->bytes_base += t->nbytes;
    }
    r->bpw = r->params > 0 ? 8.0 * (double)r->bytes / (double)r->params : 0;
    r->est_err = scale * err;
    r->est_rel = ref > 0 ? err / ref : 0;
    r->has_est = true;
    return QB_OK;
}

typedef struct {
    qb_ctx *ctx;
    const qb_imatrix *im;
} imatrix_lookup;

static qb_status imatrix_cost(void *ud, qb_ctx *ctx, const qb_tensor *t, const qb_format *f,
                               const volatile int *cancel, double *err, double *ref, size_t *bytes)
{
    imatrix_lookup *l = ud;
    const float *w = qb_imatrix_weights(l->im, t->name, t->ne[0]);
    if (!w) return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: no entry in the importance matrix", t->name);
    return qb_scan_tensor_error(ctx, t, f, w, 0, cancel, err, ref, bytes);
}

qb_status qb_scan_estimate(qb_ctx *ctx, const qb_model *m, const qb_format *fmt, const qb_imatrix *im,
                           const qb_scan_opts *o, qb_scan_result *out)
{
    imatrix_lookup l = {ctx, im};
    return qb_scan_estimate_with(ctx, m, fmt, imatrix_cost, &l, 1.0, o, out);
}

qb_status qb_scan_estimate_with(qb_ctx *ctx, const qb_model *m, const qb_format *fmt, qb_scan_cost_fn cost,
                                void *ud, double scale, const qb_scan_opts *o, qb_scan_result *out)
{
    memset(out, 0, sizeof *out);
    qb_format_name(fmt, out->format, sizeof out->format);
    qb_status st = qb_scan_check_args(ctx, m, fmt, o);
    if (st != QB_OK) return st;
    qb_scan_unit_set *us;
    int n_units;
    if ((st = qb_scan_make_units(ctx, m, o, &us, &n_units)) != QB_OK) return st;
    double t0 = qb_eval_now();
    if (!(out->rows = calloc((size_t)n_units, sizeof *out->rows))) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
        goto done;
    }
    const volatile int *cancel = o ? o->cancel : NULL;
    for (int u = 0; u < n_units; u++) {
        if (cancel && *cancel) {
            st = qb_fail(ctx, QB_ERR_CANCELLED, "cancelled");
            goto done;
        }
        st = estimate_unit(ctx, m, fmt, cost, ud, scale, &us[u], cancel);
        if (o && o->progress) o->progress(o->ud, u + 1, n_units);
        if (st == QB_ERR_UNSUPPORTED) {
            if (out->n_skipped++ == 0) snprintf(out->skipped_why, sizeof out->skipped_why, "%.180s", ctx->errmsg);
            st = QB_OK;
            continue;
        }
        if (st != QB_OK) goto done;
        out->rows[out->n_rows++] = us[u].row;
    }
    if (out->n_rows == 0)
        st = qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: no unit to estimate with %s (%s)", m->path, out->format,
                     out->skipped_why);
    else
        qsort(out->rows, (size_t)out->n_rows, sizeof *out->rows, cmp_est);
    out->seconds = qb_eval_now() - t0;
done:
    for (int u = 0; u < n_units; u++) free(us[u].tensors);
    free(us);
    if (st != QB_OK) qb_scan_result_free(out);
    return st;
}

void qb_scan_join_estimate(qb_scan_result *exact, const qb_scan_result *est, int *n_joined, double *rho_err,
                           double *rho_rel)
{
    int n = 0;
    size_t cap = exact->n_rows > 0 ? (size_t)exact->n_rows : 1;
    double *kld = malloc(cap * sizeof *kld), *ea = malloc(cap * sizeof *ea), *er = malloc(cap * sizeof *er);
    for (int i = 0; i < exact->n_rows; i++) {
        qb_scan_row *w = &exact->rows[i];
        for (int j = 0; j < est->n_rows; j++) {
            if (strcmp(est->rows[j].name, w->name)) continue;
            w->est_err = est->rows[j].est_err;
            w->est_rel = est->rows[j].est_rel;
            w->has_est = true;
            w->refined = est->rows[j].refined;
            if (kld && ea && er) {
                kld[n] = w->kld.kld_mean;
                ea[n] = w->est_err;
                er[n++] = w->est_rel;
            }
            break;
        }
    }
    *n_joined = n;
    *rho_err = qb_spearman(ea, kld, n);
    *rho_rel = qb_spearman(er, kld, n);
    free(kld);
    free(ea);
    free(er);
}

/* ---- Spearman ------------------------------------------------------------------------- */

typedef struct {
    double v;
    int i;
} ranked;

static int cmp_ranked(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    return x->v < y->v ? -1 : x->v > y->v;
}

/* rank[i] of v[i] among v (1-based, ties the mean of the ranks they span); false on OOM. */
static bool ranks_of(const double *v, int n, double *rank)
{
    ranked *s = malloc((size_t)n * sizeof *s);
    if (!s) return false;
    for (int i = 0; i < n; i++) s[i] = (ranked){v[i], i};
    qsort(s, (size_t)n, sizeof *s, cmp_ranked);
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && s[j + 1].v == s[i].v) j++;
        double mean = 0.5 * (i + j) + 1.0;
        for (int k = i; k <= j; k++) rank[s[k].i] = mean;
        i = j + 1;
    }
    free(s);
    return true;
}

double qb_spearman(const double *x, const double *y, int n)
{
    if (n < 2) return NAN;
    double *rx = malloc((size_t)n * sizeof *rx), *ry = malloc((size_t)n * sizeof *ry);
    double rho = NAN;
    if (rx && ry && ranks_of(x, n, rx) && ranks_of(y, n, ry)) {
        double mx = 0, my = 0;
        for (int i = 0; i < n; i++) mx += rx[i], my += ry[i];
        mx /= n;
        my /= n;
        double sxy = 0, sxx = 0, syy = 0;
        for (int i = 0; i < n; i++) {
            sxy += (rx[i] - mx) * (ry[i] - my);
            sxx += (rx[i] - mx) * (rx[i] - mx);
            syy += (ry[i] - my) * (ry[i] - my);
        }
        if (sxx > 0 && syy > 0) rho = sxy / sqrt(sxx * syy);
    }
    free(rx);
    free(ry);
    return rho;
}
