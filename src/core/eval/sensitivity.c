/* sensitivity.c — the sensitivity scan: one model view per unit (tensor or layer) with only
 * that unit quantized, all compared with the base on the same chunks by the engine of
 * scan_engine.c; the ranked table and its CSV / JSON. */
#include "sensitivity.h"
#include "eval_internal.h"
#include "scan_internal.h"
#include "../quant/view.h"
#include "../quant/apply.h"
#include "../util/atomic_file.h"
#include "../util/json_out.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int qb_scan_layer_of(const char *name)
{
    int l;
    return sscanf(name, "blk.%d.", &l) == 1 ? l : -1;
}

/* ---- the scan ---------------------------------------------------------------------------- */

typedef qb_scan_unit_set unit;

qb_status qb_scan_make_units(qb_ctx *ctx, const qb_model *m, const qb_scan_opts *o, qb_scan_unit_set **out,
                             int *n_units)
{
    *out = NULL;
    *n_units = 0;
    unit *us = calloc((size_t)m->n_tensors + 1, sizeof *us);
    if (!us) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    int n = 0;
    bool per_layer = o && o->per == QB_SCAN_LAYER;
    for (int i = 0; i < m->n_tensors; i++) {
        const qb_tensor *t = &m->tensors[i];
        if (!qb_tensor_quantizable(t)) continue;
        int l = qb_scan_layer_of(t->name);
        if (l < 0 && o && o->blocks_only) continue;
        if (o && o->layers_only && (l < o->layer_first || l > o->layer_last)) continue;
        int k = n;
        if (per_layer && l >= 0)
            for (k = 0; k < n; k++)
                if (us[k].row.layer == l) break;
        if (k == n) {
            us[n].row.layer = l;
            if (per_layer && l >= 0)
                snprintf(us[n].row.name, sizeof us[n].row.name, "blk.%d", l);
            else
                snprintf(us[n].row.name, sizeof us[n].row.name, "%s", t->name);
            n++;
        }
        int *grown = realloc(us[k].tensors, (size_t)(us[k].n + 1) * sizeof *grown);
        if (!grown) {
            for (int j = 0; j < n; j++) free(us[j].tensors);
            free(us);
            return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
        }
        us[k].tensors = grown;
        us[k].tensors[us[k].n++] = i;
    }
    if (n == 0) {
        free(us);
        return qb_fail(ctx, QB_ERR_ARG, "%s: no quantizable weight matrix to scan", m->path);
    }
    *out = us;
    *n_units = n;
    return QB_OK;
}

/* Quantize unit u's tensors in view v with fmt (each after llama-quantize's fallback); fills
 * the row's sizes and format. QB_ERR_UNSUPPORTED when a tensor cannot be stored in fmt. */
static qb_status quantize_unit(qb_ctx *ctx, const qb_model *m, qb_model *v, unit *u, const qb_format *fmt,
                               const volatile int *cancel)
{
    qb_scan_row *r = &u->row;
    char asked[32];
    qb_format_name(fmt, asked, sizeof asked);
    snprintf(r->format, sizeof r->format, "%s", asked);
    r->n_tensors = u->n;
    for (int k = 0; k < u->n; k++) {
        const qb_tensor *t = &m->tensors[u->tensors[k]];
        qb_format f = qb_format_fallback(fmt, t->ne[0]);
        qb_status st = qb_view_quantize(ctx, v, u->tensors[k], &f, cancel);
        if (st != QB_OK) return st;
        if (!qb_format_equal(&f, fmt)) {
            char got[32];
            qb_format_name(&f, got, sizeof got);
            snprintf(r->format, sizeof r->format, "%s", u->n == 1 ? got : "mixed");
            if (u->n > 1) snprintf(r->format, sizeof r->format, "%.20s+fallback", asked);
        }
        r->params += qb_tensor_nelements(t);
        r->bytes += v->tensors[u->tensors[k]].nbytes;
        r->bytes_base += t->nbytes;
    }
    r->bpw = r->params > 0 ? 8.0 * (double)r->bytes / (double)r->params : 0;
    return QB_OK;
}

static int cmp_rows(const void *a, const void *b)
{
    const qb_scan_row *x = a, *y = b;
    if (x->kld.kld_mean != y->kld.kld_mean) return x->kld.kld_mean < y->kld.kld_mean ? 1 : -1;
    return strcmp(x->name, y->name);
}

void qb_scan_result_free(qb_scan_result *r)
{
    if (!r) return;
    free(r->rows);
    memset(r, 0, sizeof *r);
}

qb_status qb_scan_check_args(qb_ctx *ctx, const qb_model *m, const qb_format *fmt, const qb_scan_opts *o)
{
    qb_status st = qb_format_check(ctx, fmt, 256); /* the format value itself (bits, group…) */
    if (st == QB_ERR_ARG) return st;
    if (o && o->layers_only && (o->layer_first < 0 || o->layer_last < o->layer_first ||
                                o->layer_last >= m->cfg.n_layers))
        return qb_fail(ctx, QB_ERR_ARG, "layers %d-%d: %s has blocks 0-%d", o->layer_first, o->layer_last, m->path,
                       m->cfg.n_layers - 1);
    return QB_OK;
}

qb_status qb_sensitivity_scan(qb_ctx *ctx, const qb_model *m, const qb_format *fmt, const int32_t *tokens,
                              int n_tokens, const qb_scan_opts *o, qb_scan_result *out)
{
    memset(out, 0, sizeof *out);
    qb_format_name(fmt, out->format, sizeof out->format);
    qb_status st = qb_scan_check_args(ctx, m, fmt, o);
    if (st != QB_OK) return st;
    unit *us;
    int n_units;
    if ((st = qb_scan_make_units(ctx, m, o, &us, &n_units)) != QB_OK) return st;
    qb_model **views = calloc((size_t)n_units, sizeof *views);
    const qb_model **kept = calloc((size_t)n_units, sizeof *kept);
    qb_kld_result *res = calloc((size_t)n_units, sizeof *res);
    int *keep_idx = calloc((size_t)n_units, sizeof *keep_idx);
    double t0 = qb_eval_now();
    if (!views || !kept || !res || !keep_idx) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
        goto done;
    }
    int n_kept = 0;
    for (int u = 0; u < n_units; u++) {
        if ((st = qb_model_view_new(ctx, m, &views[u])) != QB_OK) goto done;
        const volatile int *cancel = o ? o->cancel : NULL;
        st = quantize_unit(ctx, m, views[u], &us[u], fmt, cancel);
        if (st == QB_ERR_UNSUPPORTED) { /* rows this format cannot store: reported, not fatal */
            if (out->n_skipped++ == 0) snprintf(out->skipped_why, sizeof out->skipped_why, "%.180s", ctx->errmsg);
            continue;
        }
        if (st != QB_OK) goto done;
        keep_idx[n_kept] = u;
        kept[n_kept++] = views[u];
    }
    if (n_kept == 0) {
        st = qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: the format %s cannot store any tensor (%s)", m->path, out->format,
                     out->skipped_why);
        goto done;
    }
    qb_scan_opts so = o ? *o : (qb_scan_opts){0};
    so.stats = &out->stats;
    if ((st = qb_sensitivity_kld(ctx, m, kept, n_kept, tokens, n_tokens, &so, res, &out->base)) != QB_OK) goto done;
    if (o && o->stats) *o->stats = out->stats;
    if (!(out->rows = calloc((size_t)n_kept, sizeof *out->rows))) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int k = 0; k < n_kept; k++) {
        out->rows[k] = us[keep_idx[k]].row;
        out->rows[k].kld = res[k];
    }
    out->n_rows = n_kept;
    qsort(out->rows, (size_t)n_kept, sizeof *out->rows, cmp_rows);
    out->seconds = qb_eval_now() - t0;
done:
    for (int u = 0; u < n_units; u++) {
        if (views) qb_model_view_free(views[u]);
        free(us[u].tensors);
    }
    free(us);
    free(views);
    free(kept);
    free(res);
    free(keep_idx);
    if (st != QB_OK) qb_scan_result_free(out);
    return st;
}

/* ---- saving ------------------------------------------------------------------------------ */

/* A growing string. */
typedef struct {
    char *s;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = true;
            return;
        }
        if (b->s && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)k;
        char *g = realloc(b->s, cap);
        if (!g) {
            b->oom = true;
            return;
        }
        b->s = g;
        b->cap = cap;
    }
}

static qb_status write_all(qb_ctx *ctx, sbuf *b, const char *path)
{
    if (b->oom) {
        free(b->s);
        return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", path);
    }
    qb_atomic_file f;
    qb_status st = qb_atomic_begin(ctx, path, &f);
    if (st == QB_OK) {
        if (qb_atomic_write(&f, b->s, b->n))
            st = qb_atomic_commit(ctx, &f);
        else {
            qb_atomic_abort(&f);
            st = qb_fail(ctx, QB_ERR_IO, "%s: write failed", path);
        }
    }
    free(b->s);
    return st;
}

qb_status qb_scan_save_csv(qb_ctx *ctx, const qb_scan_result *r, const char *path)
{
    sbuf b = {0};
    sb_printf(&b, "rank,unit,layer,format,n_tensors,params,bytes,bytes_base,bpw,kld_mean,kld_err,kld_median,kld_p99,"
                  "kld_max,top1_pct,ppl,ppl_base,dppl,cost,est_err,est_rel\n");
    for (int i = 0; i < r->n_rows; i++) {
        const qb_scan_row *w = &r->rows[i];
        sb_printf(&b, "%d,%s,%d,%s,%d,%lld,%zu,%zu,%.4f,%.6g,%.3g,%.6g,%.6g,%.6g,%.3f,%.5f,%.5f,%.5f", i + 1, w->name,
                  w->layer, w->format, w->n_tensors, (long long)w->params, w->bytes, w->bytes_base, w->bpw,
                  w->kld.kld_mean, w->kld.kld_err, w->kld.kld_median, w->kld.kld_p99, w->kld.kld_max, w->kld.top1_pct,
                  w->kld.other.ppl, w->kld.base.ppl, w->kld.dppl);
        if (w->kld.cost > 0) sb_printf(&b, ",%.4f", w->kld.cost);
        else sb_printf(&b, ",");
        if (w->has_est) sb_printf(&b, ",%.6g,%.6g\n", w->est_err, w->est_rel);
        else sb_printf(&b, ",,\n");
    }
    return write_all(ctx, &b, path);
}

/* One row of the scan as a JSON object, keys in the order of the CSV columns. */
static json_t *row_json(const qb_scan_row *w, int rank)
{
    json_t *o = json_object();
    bool ok = o != NULL;
    ok = ok && qb_json_set(o, "rank", json_integer(rank));
    ok = ok && qb_json_set(o, "unit", qb_json_text(w->name, strlen(w->name)));
    ok = ok && qb_json_set(o, "layer", json_integer(w->layer));
    ok = ok && qb_json_set(o, "format", qb_json_text(w->format, strlen(w->format)));
    ok = ok && qb_json_set(o, "n_tensors", json_integer(w->n_tensors));
    ok = ok && qb_json_set(o, "params", json_integer((json_int_t)w->params));
    ok = ok && qb_json_set(o, "bytes", json_integer((json_int_t)w->bytes));
    ok = ok && qb_json_set(o, "bytes_base", json_integer((json_int_t)w->bytes_base));
    ok = ok && qb_json_set(o, "bpw", qb_json_num(w->bpw, "%.4f"));
    ok = ok && qb_json_set(o, "kld_mean", qb_json_num(w->kld.kld_mean, "%.6g"));
    ok = ok && qb_json_set(o, "kld_err", qb_json_num(w->kld.kld_err, "%.3g"));
    ok = ok && qb_json_set(o, "kld_median", qb_json_num(w->kld.kld_median, "%.6g"));
    ok = ok && qb_json_set(o, "kld_p99", qb_json_num(w->kld.kld_p99, "%.6g"));
    ok = ok && qb_json_set(o, "kld_max", qb_json_num(w->kld.kld_max, "%.6g"));
    ok = ok && qb_json_set(o, "top1_pct", qb_json_num(w->kld.top1_pct, "%.3f"));
    ok = ok && qb_json_set(o, "ppl", qb_json_num(w->kld.other.ppl, "%.5f"));
    ok = ok && qb_json_set(o, "dppl", qb_json_num(w->kld.dppl, "%.5f"));
    if (w->kld.cost > 0) ok = ok && qb_json_set(o, "cost", qb_json_num(w->kld.cost, "%.4f"));
    if (w->has_est) {
        ok = ok && qb_json_set(o, "est_err", qb_json_num(w->est_err, "%.6g"));
        ok = ok && qb_json_set(o, "est_rel", qb_json_num(w->est_rel, "%.6g"));
    }
    if (!ok) json_decref(o);
    return ok ? o : NULL;
}

qb_status qb_scan_save_json(qb_ctx *ctx, const qb_scan_result *r, const char *model_path, const char *path)
{
    const char *mp = model_path ? model_path : "";
    json_t *o = json_object(), *rows = json_array();
    bool ok = o && rows;
    ok = ok && qb_json_set(o, "model", qb_json_text(mp, strlen(mp)));
    ok = ok && qb_json_set(o, "format", qb_json_text(r->format, strlen(r->format)));
    ok = ok && qb_json_set(o, "n_ctx", json_integer(r->base.n_ctx));
    ok = ok && qb_json_set(o, "n_chunks", json_integer(r->base.n_chunks));
    ok = ok && qb_json_set(o, "tokens_scored", json_integer(r->base.n_scored));
    ok = ok && qb_json_set(o, "ppl_base", qb_json_num(r->base.ppl, "%.6f"));
    ok = ok && qb_json_set(o, "ppl_base_err", qb_json_num(r->base.ppl_err, "%.6f"));
    ok = ok && qb_json_set(o, "seconds", qb_json_num(r->seconds, "%.3f"));
    ok = ok && qb_json_set(o, "skipped", json_integer(r->n_skipped));
    if (r->stats.cost_mean > 0) {
        ok = ok && qb_json_set(o, "cost_mean", qb_json_num(r->stats.cost_mean, "%.4f"));
        ok = ok && qb_json_set(o, "cost_all", qb_json_num(r->stats.cost_all, "%.4f"));
        ok = ok && qb_json_set(o, "cache_bytes", json_integer((json_int_t)r->stats.cache_used));
    }
    for (int i = 0; ok && i < r->n_rows; i++) ok = json_array_append_new(rows, row_json(&r->rows[i], i + 1)) == 0;
    ok = ok && qb_json_set(o, "rows", json_incref(rows));
    qb_status st = ok ? qb_json_save(ctx, o, QB_JSON_FLAGS | JSON_INDENT(2), path)
                      : qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", path);
    json_decref(rows);
    json_decref(o);
    return st;
}
