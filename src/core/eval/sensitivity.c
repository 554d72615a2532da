/* sensitivity.c — the sensitivity scan: one model view per unit (tensor or layer) with only
 * that unit quantized, all compared with the base on the same chunks; the base's pass and
 * log-softmax computed once per chunk, the variants of a chunk run in parallel. */
#include "sensitivity.h"
#include "eval_internal.h"
#include "scan_internal.h"
#include "../infer/infer.h"
#include "../infer/sampler.h"
#include "../quant/view.h"
#include "../quant/apply.h"
#include "../util/atomic_file.h"
#include "../util/dist.h"
#include "../util/json_out.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* The base's view of one chunk: its logits, log Σ exp per row, argmax, NLL of the next token. */
typedef struct {
    float *logits; /* (n_logits, vocab) */
    double *lse;   /* (rows) */
    int32_t *top;  /* (rows) */
    double *nll;   /* (rows) */
    float *resid;  /* (n_layers + 1, n_ctx, dim): the base's residual entering each layer and the head */
} base_chunk;

int qb_scan_layer_of(const char *name)
{
    int l;
    return sscanf(name, "blk.%d.", &l) == 1 ? l : -1;
}

/* The first layer where variant v computes something else than base: views share the base's
 * embedding and layers before their first changed tensor (n_layers: only the head differs). */
static int first_changed_layer(const qb_model *base, const qb_model *v)
{
    if (qb_model_view_base(v) != base) return 0;
    int l0 = base->cfg.n_layers;
    for (int i = 0; i < v->n_tensors && l0 > 0; i++) {
        if (!qb_model_view_changed(v, i)) continue;
        const char *name = v->tensors[i].name;
        int l = qb_scan_layer_of(name);
        if (l < 0) l = !strcmp(name, "output.weight") || !strcmp(name, "output_norm.weight") ? base->cfg.n_layers : 0;
        if (l < l0) l0 = l;
    }
    return l0;
}

/* One variant's logits for a chunk against the base's: sums into a, KLDs at a->klds + off. */
static void score_variant(const base_chunk *bc, const float *lo, int rows, int vocab, const int32_t *next, qb_kld_acc *a,
                          long off)
{
    for (int r = 0; r < rows; r++) {
        const float *b = bc->logits + (size_t)r * vocab, *o = lo + (size_t)r * vocab;
        double lse_o, lse_b = bc->lse[r];
        double nll_o = -qb_eval_log_prob(o, vocab, next[r], &lse_o);
        double kl = 0;
        for (int i = 0; i < vocab; i++) {
            double lb = b[i] - lse_b;
            kl += exp(lb) * (lb - (o[i] - lse_o));
        }
        if (kl < 0) kl = 0;
        a->klds[off + r] = kl;
        a->nb += bc->nll[r];
        a->nb2 += bc->nll[r] * bc->nll[r];
        a->no += nll_o;
        a->no2 += nll_o * nll_o;
        a->k += kl;
        a->k2 += kl * kl;
        a->agree += qb_argmax(o, vocab) == bc->top[r];
    }
}

/* Run the base on chunk buf and fill bc (the base's own perplexity sums too). */
static qb_status base_pass(qb_ctx *ctx, qb_infer *sb, const int32_t *buf, int n_ctx, int vocab, base_chunk *bc,
                           double *nll, double *nll2)
{
    int first = n_ctx / 2, rows = n_ctx - 1 - first;
    qb_status st = qb_infer_eval(ctx, sb, buf, n_ctx, 0, bc->logits, n_ctx - first);
    if (st != QB_OK) return st;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *b = bc->logits + (size_t)r * vocab;
        bc->nll[r] = -qb_eval_log_prob(b, vocab, buf[first + r + 1], &bc->lse[r]);
        bc->top[r] = qb_argmax(b, vocab);
    }
    for (int r = 0; r < rows; r++) {
        *nll += bc->nll[r];
        *nll2 += bc->nll[r] * bc->nll[r];
    }
    return QB_OK;
}

/* Evaluate variant v on chunk buf into a (its own single-threaded forward pass). */
static qb_status variant_pass(qb_ctx *tctx, const qb_model *v, int l0, const int32_t *buf, int n_ctx, int vocab,
                              const base_chunk *bc, float *lo, qb_kld_acc *a, long off)
{
    int first = n_ctx / 2, rows = n_ctx - 1 - first;
    qb_infer *s = NULL;
    qb_status st = qb_infer_new(tctx, v, n_ctx, n_ctx, &s);
    if (st == QB_OK && l0 > 0) /* the base's residual where this variant starts to differ */
        st = qb_infer_eval_from(tctx, s, l0, bc->resid + (size_t)l0 * n_ctx * v->cfg.dim, n_ctx, lo, n_ctx - first);
    else if (st == QB_OK)
        st = qb_infer_eval(tctx, s, buf, n_ctx, 0, lo, n_ctx - first);
    qb_infer_free(s);
    if (st == QB_OK) score_variant(bc, lo, rows, vocab, buf + first + 1, a, off);
    return st;
}

qb_status qb_sensitivity_kld(qb_ctx *ctx, const qb_model *base, const qb_model *const *variants, int n_variants,
                             const int32_t *tokens, int n_tokens, const qb_scan_opts *o, qb_kld_result *out,
                             qb_ppl_result *base_out)
{
    if (n_variants <= 0) return qb_fail(ctx, QB_ERR_ARG, "no model variants to evaluate");
    memset(out, 0, (size_t)n_variants * sizeof *out);
    if (base_out) memset(base_out, 0, sizeof *base_out);
    for (int j = 0; j < n_variants; j++)
        if (base->cfg.vocab_size != variants[j]->cfg.vocab_size)
            return qb_fail(ctx, QB_ERR_ARG, "%s and %s have different vocabularies (%d vs %d tokens)", base->path,
                           variants[j]->path, base->cfg.vocab_size, variants[j]->cfg.vocab_size);
    qb_eval_opts eo = {.n_ctx = o ? o->n_ctx : 0};
    int n_ctx0 = eo.n_ctx > 0 ? eo.n_ctx : 256;
    if (o && o->n_tokens > 0) eo.n_chunks = o->n_tokens / n_ctx0 > 0 ? o->n_tokens / n_ctx0 : 1;
    int n_ctx, n_chunks;
    qb_status st = qb_eval_plan_chunks(ctx, base, n_tokens, &eo, &n_ctx, &n_chunks);
    if (st != QB_OK) return st;
    int vocab = base->cfg.vocab_size, first = n_ctx / 2, n_logits = n_ctx - first, rows = n_ctx - 1 - first;
    int nt = 1;
#ifdef _OPENMP
    nt = ctx->n_threads > 0 ? ctx->n_threads : omp_get_max_threads();
#endif
    /* in a job of several ranks each evaluates its share of the variants (dist.h), then all
     * results are gathered */
    int n_own = qb_dist_share(n_variants, qb_dist_rank());
    if (nt > n_own) nt = n_own > 0 ? n_own : 1;
    qb_infer *sb = NULL;
    int32_t *buf = malloc((size_t)n_ctx * sizeof *buf);
    base_chunk bc = {malloc((size_t)n_logits * vocab * sizeof(float)), malloc((size_t)rows * sizeof(double)),
                     malloc((size_t)rows * sizeof(int32_t)), malloc((size_t)rows * sizeof(double)),
                     malloc((size_t)(base->cfg.n_layers + 1) * n_ctx * base->cfg.dim * sizeof(float))};
    int *l0 = calloc((size_t)n_variants, sizeof *l0);
    float **lo = calloc((size_t)nt, sizeof *lo);
    qb_kld_acc *accs = calloc((size_t)n_variants, sizeof *accs);
    bool ok = buf && bc.logits && bc.lse && bc.top && bc.nll && bc.resid && l0 && lo && accs;
    for (int t = 0; ok && t < nt; t++) ok = (lo[t] = malloc((size_t)n_logits * vocab * sizeof(float))) != NULL;
    for (int j = 0; ok && j < n_variants; j++)
        if (qb_dist_owns(j)) ok = (accs[j].klds = malloc((size_t)n_chunks * rows * sizeof(double))) != NULL;
    if (!ok) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory for %d model variants", n_variants);
        goto gather;
    }
    if ((st = qb_infer_new(ctx, base, n_ctx, n_ctx, &sb)) != QB_OK) goto gather;
    qb_infer_capture_residuals(sb, bc.resid);
    for (int j = 0; j < n_variants; j++) l0[j] = first_changed_layer(base, variants[j]);
    double t0 = qb_eval_now(), nll = 0, nll2 = 0;
    int total = n_chunks * n_own, done_count = 0;
    if (qb_dist_size() > 1 && o && o->divided) o->divided(o->ud, n_variants);
    for (int c = 0; c < n_chunks && st == QB_OK; c++) {
        if (o && o->cancel && *o->cancel) {
            st = qb_fail(ctx, QB_ERR_CANCELLED, "sensitivity evaluation cancelled after %d of %d chunks", c, n_chunks);
            break;
        }
        qb_eval_chunk_tokens(base, tokens, c, n_ctx, buf);
        qb_ctx_apply_threads(ctx);
        if ((st = base_pass(ctx, sb, buf, n_ctx, vocab, &bc, &nll, &nll2)) != QB_OK) break;
        qb_status first_err = QB_OK;
        char errmsg[sizeof ctx->errmsg] = "";
#pragma omp parallel num_threads(nt)
        {
            int tid = 0;
#ifdef _OPENMP
            tid = omp_get_thread_num();
#endif
            qb_ctx tctx = *ctx;
            tctx.n_threads = 1; /* one single-threaded forward pass per thread */
#pragma omp for schedule(dynamic, 1)
            for (int j = 0; j < n_variants; j++) {
                if ((o && o->cancel && *o->cancel) || first_err != QB_OK || !qb_dist_owns(j)) continue;
                qb_status s = variant_pass(&tctx, variants[j], l0[j], buf, n_ctx, vocab, &bc, lo[tid], &accs[j], (long)c * rows);
                if (s != QB_OK) {
#pragma omp critical(qb_sens_err)
                    if (first_err == QB_OK) {
                        first_err = s;
                        snprintf(errmsg, sizeof errmsg, "%s", tctx.errmsg);
                    }
                }
                int d;
#pragma omp atomic capture
                d = ++done_count;
                if (tid == 0 && o && o->progress) o->progress(o->ud, d, total);
            }
        }
        if (first_err != QB_OK) st = qb_fail(ctx, first_err, "%s", errmsg);
    }
    if (st == QB_OK && o && o->cancel && *o->cancel)
        st = qb_fail(ctx, QB_ERR_CANCELLED, "sensitivity evaluation cancelled");
    if (st == QB_OK) {
        long count = (long)n_chunks * rows;
        double secs = qb_eval_now() - t0;
        for (int j = 0; j < n_variants; j++)
            if (qb_dist_owns(j)) qb_eval_kld_finish(&out[j], &accs[j], count, n_chunks, n_ctx, secs);
        if (base_out) {
            qb_eval_finish_ppl(base_out, nll, nll2, count);
            base_out->n_chunks = n_chunks;
            base_out->n_ctx = n_ctx;
            base_out->seconds = secs;
        }
        if (o && o->progress) o->progress(o->ud, total, total);
    }
gather: /* every rank gets every variant's result (or the first failing rank's error) */
    st = qb_dist_merge(ctx, st, out, sizeof *out, n_variants);
    qb_infer_free(sb);
    for (int t = 0; lo && t < nt; t++) free(lo[t]);
    free(lo);
    for (int j = 0; accs && j < n_variants; j++) free(accs[j].klds);
    free(accs);
    free(buf);
    free(bc.logits);
    free(bc.lse);
    free(bc.top);
    free(bc.nll);
    free(bc.resid);
    free(l0);
    return st;
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
    if ((st = qb_sensitivity_kld(ctx, m, kept, n_kept, tokens, n_tokens, o, res, &out->base)) != QB_OK) goto done;
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
                  "kld_max,top1_pct,ppl,ppl_base,dppl,est_err,est_rel\n");
    for (int i = 0; i < r->n_rows; i++) {
        const qb_scan_row *w = &r->rows[i];
        sb_printf(&b, "%d,%s,%d,%s,%d,%lld,%zu,%zu,%.4f,%.6g,%.3g,%.6g,%.6g,%.6g,%.3f,%.5f,%.5f,%.5f", i + 1, w->name,
                  w->layer, w->format, w->n_tensors, (long long)w->params, w->bytes, w->bytes_base, w->bpw,
                  w->kld.kld_mean, w->kld.kld_err, w->kld.kld_median, w->kld.kld_p99, w->kld.kld_max, w->kld.top1_pct,
                  w->kld.other.ppl, w->kld.base.ppl, w->kld.dppl);
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
    for (int i = 0; ok && i < r->n_rows; i++) ok = json_array_append_new(rows, row_json(&r->rows[i], i + 1)) == 0;
    ok = ok && qb_json_set(o, "rows", json_incref(rows));
    qb_status st = ok ? qb_json_save(ctx, o, QB_JSON_FLAGS | JSON_INDENT(2), path)
                      : qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", path);
    json_decref(rows);
    json_decref(o);
    return st;
}
