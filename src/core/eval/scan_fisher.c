/* scan_fisher.c — the scan estimated from a Fisher diagonal (fisher.h): the estimate of each
 * unit through scan_estimate.c's machinery with per-weight weights ½·F, the cost of one
 * quantized matrix for the search, and the refinement that measures the top units exactly. */
#include "fisher_internal.h"
#include "scan_internal.h"
#include "../quant/format.h"
#include "../quant/view.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The price a streamed pass left for t in f, or QB_ERR_UNSUPPORTED (not priced, or not
 * storable: the message says which). */
static qb_status priced(qb_ctx *ctx, const qb_fisher *fi, const qb_tensor *t, const qb_format *f, double *err,
                        double *ref, size_t *bytes)
{
    const int ti = (int)(t - fi->m->tensors);
    for (int i = 0; i < fi->n_prices; i++) {
        const qb_fisher_price *p = &fi->prices[i];
        if (p->tensor != ti || !qb_format_equal(&p->fmt, f)) continue;
        if (p->st != QB_OK) return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s", p->why);
        *err = p->err;
        *ref = p->ref;
        *bytes = p->bytes;
        return QB_OK;
    }
    char name[32];
    qb_format_name(f, name, sizeof name);
    return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: not priced in %s by the streaming Fisher pass (it prices the formats "
                   "it is given before it runs)", t->name, name);
}

static qb_status fisher_cost(void *ud, qb_ctx *ctx, const qb_tensor *t, const qb_format *f,
                             const volatile int *cancel, double *err, double *ref, size_t *bytes)
{
    const qb_fisher *fi = ud;
    if (fi->streamed) return priced(ctx, fi, t, f, err, ref, bytes);
    const float *w = qb_fisher_of(fi, t);
    if (!w) return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: no Fisher diagonal for this tensor", t->name);
    return qb_scan_tensor_error(ctx, t, f, w, t->ne[0], cancel, err, ref, bytes);
}

qb_status qb_scan_estimate_fisher(qb_ctx *ctx, const qb_model *m, const qb_format *fmt, const qb_fisher *f,
                                  const qb_scan_opts *o, qb_scan_result *out)
{
    return qb_scan_estimate_with(ctx, m, fmt, fisher_cost, (void *)f, 0.5, o, out);
}

qb_status qb_fisher_tensor_cost(qb_ctx *ctx, const qb_fisher *f, const qb_tensor *t, const qb_format *fmt,
                                const void *q, double *cost)
{
    *cost = 0;
    double err, ref;
    size_t bytes;
    qb_status st;
    if (f->streamed) {
        if ((st = priced(ctx, f, t, fmt, &err, &ref, &bytes)) != QB_OK) return QB_ERR_ARG;
    } else {
        const float *w = qb_fisher_of(f, t);
        if (!w) return qb_fail(ctx, QB_ERR_ARG, "%s: no Fisher diagonal for this tensor", t->name);
        if ((st = qb_scan_weighted_error(ctx, t, fmt, q, w, t->ne[0], &err, &ref)) != QB_OK) return st;
    }
    *cost = 0.5 * err;
    return QB_OK;
}

/* ---- refinement -------------------------------------------------------------------------- */

/* A row and the value the refined ranking sorts it by. */
typedef struct {
    qb_scan_row row;
    double key;
} keyed;

static int cmp_key(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? 1 : -1;
    return strcmp(x->row.name, y->row.name);
}

/* A view of m with unit u's tensors in fmt (llama-quantize's fallback per tensor). */
static qb_status unit_view(qb_ctx *ctx, const qb_model *m, const qb_scan_unit_set *u, const qb_format *fmt,
                           const volatile int *cancel, qb_model **out)
{
    qb_status st = qb_model_view_new(ctx, m, out);
    for (int k = 0; st == QB_OK && k < u->n; k++) {
        qb_format f = qb_format_fallback(fmt, m->tensors[u->tensors[k]].ne[0]);
        st = qb_view_quantize(ctx, *out, u->tensors[k], &f, cancel);
    }
    if (st != QB_OK) {
        qb_model_view_free(*out);
        *out = NULL;
    }
    return st;
}

qb_status qb_scan_refine(qb_ctx *ctx, const qb_model *m, const qb_format *fmt, qb_scan_result *est, int top_k,
                         const int32_t *tokens, int n_tokens, const qb_scan_opts *o)
{
    if (top_k <= 0 || est->n_rows == 0) return QB_OK;
    if (top_k > est->n_rows) top_k = est->n_rows;
    qb_scan_unit_set *us = NULL;
    int n_units = 0;
    qb_status st = qb_scan_make_units(ctx, m, o, &us, &n_units);
    if (st != QB_OK) return st;
    qb_model **vs = calloc((size_t)top_k, sizeof *vs);
    qb_kld_result *res = calloc((size_t)top_k, sizeof *res);
    keyed *kr = calloc((size_t)est->n_rows, sizeof *kr);
    if (!vs || !res || !kr) st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    /* est is ranked by est_err: its first top_k rows are the ones to measure */
    for (int i = 0; st == QB_OK && i < top_k; i++) {
        int u = 0;
        while (u < n_units && strcmp(us[u].row.name, est->rows[i].name)) u++;
        if (u == n_units) st = qb_fail(ctx, QB_ERR_ARG, "%s: not a unit of this scan", est->rows[i].name);
        else st = unit_view(ctx, m, &us[u], fmt, o ? o->cancel : NULL, &vs[i]);
    }
    if (st == QB_OK)
        st = qb_sensitivity_kld(ctx, m, (const qb_model *const *)vs, top_k, tokens, n_tokens, o, res, NULL);
    if (st == QB_OK) {
        double log_ratio = 0;
        int n_ratio = 0;
        for (int i = 0; i < top_k; i++) {
            est->rows[i].kld = res[i];
            est->rows[i].refined = true;
            if (res[i].kld_mean > 0 && est->rows[i].est_err > 0)
                log_ratio += log(res[i].kld_mean / est->rows[i].est_err), n_ratio++;
        }
        const double scale = n_ratio ? exp(log_ratio / n_ratio) : 1.0;
        for (int i = 0; i < est->n_rows; i++)
            kr[i] = (keyed){est->rows[i], est->rows[i].refined ? est->rows[i].kld.kld_mean : scale * est->rows[i].est_err};
        qsort(kr, (size_t)est->n_rows, sizeof *kr, cmp_key);
        for (int i = 0; i < est->n_rows; i++) est->rows[i] = kr[i].row;
    }
    for (int i = 0; vs && i < top_k; i++) qb_model_view_free(vs[i]);
    for (int u = 0; u < n_units; u++) free(us[u].tensors);
    free(us);
    free(vs);
    free(res);
    free(kr);
    return st;
}

double qb_scan_rank_rho(const qb_scan_result *exact, const qb_scan_result *ranked, int *n_joined)
{
    size_t cap = exact->n_rows > 0 ? (size_t)exact->n_rows : 1;
    double *x = malloc(cap * sizeof *x), *y = malloc(cap * sizeof *y);
    int n = 0;
    for (int i = 0; x && y && i < exact->n_rows; i++)
        for (int j = 0; j < ranked->n_rows; j++)
            if (!strcmp(ranked->rows[j].name, exact->rows[i].name)) {
                x[n] = -(double)j;
                y[n++] = exact->rows[i].kld.kld_mean;
                break;
            }
    double rho = qb_spearman(x, y, n);
    free(x);
    free(y);
    *n_joined = n;
    return rho;
}
