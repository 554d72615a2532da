/* analysis.c — analysis jobs for the selected tensor (analysis.h). The tensor's original
 * values are converted to f32 once per selection, by the first job, into a buffer shared by
 * reference count with the later jobs of the same selection, which also lends them warm
 * working buffers (qb_analysis_scratch). Full results are kept in a small cache on the UI
 * thread, keyed by tensor, format and bins: a setting seen before shows without a job. With
 * an imatrix loaded every job quantizes with the tensor's importance, as an apply then does,
 * and also computes the importance-weighted view (the job gets its own copy of the
 * importance), so the w key only switches what is drawn. */
#include "tui/controllers/analysis.h"
#include "tui/controllers/methodan.h"
#include "tui/controllers/trainjob.h"

#include "core/method/method.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct tui_srcbuf {
    pthread_mutex_t mu;
    atomic_int refs;
    const qb_tensor *t; /* borrowed: its source stays mapped until the model closes, and the
                           session reaps every job before it closes a model */
    float *x;           /* rows × n, filled under mu by the first job */
    int64_t rows, n;
    float *sample;      /* sample_rows evenly spaced rows of x (preview), filled under mu */
    int64_t sample_rows;
    qb_analysis_scratch *spare; /* working buffers lent to one job at a time, under mu */
};

typedef struct {
    int tensor, bins;
    qb_format f;
    int method;             /* qb_method_kind: GPTQ/AWQ results differ from RTN's */
    double oerr, oerr_rtn;  /* their output errors (methodan.h) */
    float alpha;
    qb_analysis an;
    unsigned stamp; /* 0: empty slot */
} an_entry;

struct tui_an_cache {
    an_entry e[TUI_AN_CACHE];
    unsigned clock;
    bool off;
};

static tui_srcbuf *srcbuf_new(const qb_tensor *t)
{
    tui_srcbuf *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    pthread_mutex_init(&b->mu, NULL);
    atomic_init(&b->refs, 1);
    b->t = t;
    b->rows = qb_tensor_rows(t);
    b->n = t->ne[0];
    return b;
}

static void srcbuf_unref(tui_srcbuf *b)
{
    if (!b || atomic_fetch_sub(&b->refs, 1) != 1) return;
    pthread_mutex_destroy(&b->mu);
    qb_analysis_scratch_free(b->spare);
    free(b->spare);
    free(b->x);
    free(b->sample);
    free(b);
}

typedef struct {
    tui_srcbuf *b;
    qb_format f;
    int bins, map_points;
    float *imp; /* the tensor's importance (n values, owned), or NULL */
} an_arg;

static void an_arg_free(void *p)
{
    an_arg *a = p;
    srcbuf_unref(a->b);
    free(a->imp);
    free(a);
}

void tui_analysis_msg_free(void *p)
{
    qb_analysis_free(p);
    free(p);
}

static qb_status an_pass(qb_job *j, qb_ctx *ctx, an_arg *a, bool preview, qb_analysis_scratch *scratch);

/* The preview first (when the tensor is large: evenly spaced rows read from the source, so a
 * newly selected tensor shows before its whole conversion to f32), then the full analysis,
 * each posted as it is done. */
static qb_status an_run(qb_job *j, qb_ctx *ctx, void *p)
{
    an_arg *a = p;
    tui_srcbuf *b = a->b;
    pthread_mutex_lock(&b->mu);
    int64_t want = TUI_PREVIEW_VALUES / b->n;
    if (want >= 1 && want * 4 <= b->rows && !b->sample && (b->sample = malloc((size_t)(want * b->n) * sizeof(float)))) {
        for (int64_t i = 0; i < want; i++) qb_tensor_source_rows(b->t, i * b->rows / want, 1, b->sample + i * b->n);
        b->sample_rows = want;
    }
    pthread_mutex_unlock(&b->mu);
    qb_status st = QB_OK;
    if (b->sample && (st = an_pass(j, ctx, a, true, NULL)) != QB_OK) return st;
    pthread_mutex_lock(&b->mu);
    if (!b->x) {
        float *x = malloc((size_t)(b->rows * b->n) * sizeof *x);
        if (!x) {
            pthread_mutex_unlock(&b->mu);
            return qb_fail(ctx, QB_ERR_NOMEM, "out of memory reading %s", b->t->name);
        }
        qb_ctx_apply_threads(ctx);
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < b->rows; r += 32)
            qb_tensor_source_rows(b->t, r, b->rows - r < 32 ? b->rows - r : 32, x + r * b->n);
        b->x = x;
    }
    qb_analysis_scratch *scratch = b->spare; /* borrowed until the end of this job */
    b->spare = NULL;
    pthread_mutex_unlock(&b->mu);
    if (!scratch) scratch = calloc(1, sizeof *scratch); /* NULL: qb_quant_analyze allocates */
    st = an_pass(j, ctx, a, false, scratch);
    pthread_mutex_lock(&b->mu);
    if (!b->spare) {
        b->spare = scratch;
        scratch = NULL;
    }
    pthread_mutex_unlock(&b->mu);
    qb_analysis_scratch_free(scratch);
    free(scratch);
    return st;
}

/* One analysis (the preview on the sample rows, or the full tensor), posted when done. */
static qb_status an_pass(qb_job *j, qb_ctx *ctx, an_arg *a, bool preview, qb_analysis_scratch *scratch)
{
    tui_srcbuf *b = a->b;
    if (qb_job_cancelled(j)) return qb_fail(ctx, QB_ERR_CANCELLED, "analysis cancelled");
    qb_analysis *an = calloc(1, sizeof *an);
    if (!an) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    qb_analysis_opts o = {.bins = a->bins, .auto_range = true, .map_points = a->map_points,
                          .cancel = qb_job_cancel_flag(j), .scratch = scratch, .importance = a->imp,
                          .quantize_weighted = true}; /* as an apply with the imatrix quantizes */
    /* the preview is small: one thread, no barriers to wait at on a busy machine */
    int threads = ctx->n_threads;
    if (preview) ctx->n_threads = 1;
    qb_status st = preview ? qb_quant_analyze(ctx, &a->f, b->sample, b->sample_rows, b->n, &o, an)
                           : qb_quant_analyze(ctx, &a->f, b->x, b->rows, b->n, &o, an);
    ctx->n_threads = threads;
    if (st != QB_OK) {
        free(an);
        return st;
    }
    qb_msg m = {.tag = TUI_MSG_ANALYSIS, .i1 = preview, .data = an, .free_data = tui_analysis_msg_free,
                .d0 = preview ? (double)b->rows / (double)b->sample_rows : 1.0};
    qb_job_post(j, &m);
    return QB_OK;
}

/* A deep copy of a (histograms and mapping); false when out of memory (dst zeroed). */
static bool analysis_copy(qb_analysis *dst, const qb_analysis *src)
{
    *dst = *src;
    const qb_histogram *hs[4] = {&src->hist_orig, &src->hist_deq, &src->hist_err, &src->hist_werr};
    qb_histogram *hd[4] = {&dst->hist_orig, &dst->hist_deq, &dst->hist_err, &dst->hist_werr};
    for (int k = 0; k < 4; k++) hd[k]->counts = NULL;
    dst->map_x = dst->map_y = NULL;
    bool ok = true;
    for (int k = 0; k < 4; k++)
        if (hs[k]->counts && (hd[k]->counts = malloc((size_t)hs[k]->bins * sizeof(uint64_t))))
            memcpy(hd[k]->counts, hs[k]->counts, (size_t)hs[k]->bins * sizeof(uint64_t));
        else if (hs[k]->counts)
            ok = false;
    if (src->n_map > 0) {
        dst->map_x = malloc((size_t)src->n_map * sizeof(float));
        dst->map_y = malloc((size_t)src->n_map * sizeof(float));
        if (dst->map_x && dst->map_y) {
            memcpy(dst->map_x, src->map_x, (size_t)src->n_map * sizeof(float));
            memcpy(dst->map_y, src->map_y, (size_t)src->n_map * sizeof(float));
        } else {
            ok = false;
        }
    }
    if (!ok) {
        qb_analysis_free(dst);
        memset(dst, 0, sizeof *dst);
    }
    return ok;
}

static int want_bins(const tui_session *s) { return s->hist_bins > 0 ? s->hist_bins : 64; }

/* The cache entry for the selection at the current choice, or NULL. */
static an_entry *cache_find(tui_session *s)
{
    struct tui_an_cache *c = s->an_cache;
    if (!c) return NULL;
    for (int i = 0; i < TUI_AN_CACHE; i++) {
        an_entry *e = &c->e[i];
        if (e->stamp && e->tensor == s->sel && e->bins == want_bins(s) && qb_format_equal(&e->f, &s->fmt) &&
            e->method == tui_choice_method(s)) {
            e->stamp = ++c->clock;
            return e;
        }
    }
    return NULL;
}

/* Keep a copy of the full analysis just shown (tensor s->src_tensor), replacing the least
 * recently used entry. */
static void cache_put(tui_session *s)
{
    if (!s->an_cache) {
        if (!(s->an_cache = calloc(1, sizeof *s->an_cache))) return;
        const char *off = getenv("QB_TUI_NO_CACHE");
        s->an_cache->off = off && *off && strcmp(off, "0") != 0;
    }
    struct tui_an_cache *c = s->an_cache;
    if (c->off) return;
    an_entry *slot = &c->e[0];
    for (int i = 0; i < TUI_AN_CACHE; i++) {
        an_entry *e = &c->e[i];
        if (e->stamp && e->tensor == s->src_tensor && e->bins == s->an.hist_orig.bins &&
            qb_format_equal(&e->f, &s->an.fmt) && e->method == s->an_method)
            return; /* already there */
        if (e->stamp < slot->stamp) slot = e;
    }
    qb_analysis copy;
    if (!analysis_copy(&copy, &s->an)) return;
    qb_analysis_free(&slot->an);
    *slot = (an_entry){s->src_tensor, s->an.hist_orig.bins, s->an.fmt, s->an_method, s->an_oerr, s->an_oerr_rtn,
                       s->an_alpha, copy, ++c->clock};
}

static void cache_free(tui_session *s)
{
    if (!s->an_cache) return;
    for (int i = 0; i < TUI_AN_CACHE; i++) qb_analysis_free(&s->an_cache->e[i].an);
    free(s->an_cache);
    s->an_cache = NULL;
}

static void reap(tui_session *s, int k)
{
    qb_job_join(s->an_jobs[k], NULL, 0);
    memmove(&s->an_jobs[k], &s->an_jobs[k + 1], (size_t)(s->n_an_jobs - k - 1) * sizeof s->an_jobs[0]);
    s->n_an_jobs--;
}

void tui_request_analysis(tui_session *s)
{
    qb_tensor *t = tui_sel(s);
    atomic_store(&s->train_watch, s->sel); /* a running fine-tuning's plots follow the selection */
    s->serial++;
    for (int k = 0; k < s->n_an_jobs; k++) qb_job_cancel(s->an_jobs[k]);
    if (s->n_an_jobs == (int)(sizeof s->an_jobs / sizeof s->an_jobs[0])) reap(s, 0);
    if (s->src_tensor != s->sel || !s->src) {
        srcbuf_unref(s->src);
        s->src = srcbuf_new(t);
        s->src_tensor = s->src ? s->sel : -1;
        if (!s->src) {
            snprintf(s->an_err, sizeof s->an_err, "out of memory");
            return;
        }
    }
    s->an_hint = false;
    if (qb_format_check(&s->ctx, &s->fmt, t->ne[0]) != QB_OK) {
        /* not computable: say why at once, no job */
        snprintf(s->an_err, sizeof s->an_err, "%s", qb_ctx_errmsg(&s->ctx));
        s->shown_serial = s->serial;
        s->an_preview = false;
        return;
    }
    an_entry *hit = cache_find(s);
    qb_analysis copy;
    if (hit && analysis_copy(&copy, &hit->an)) { /* seen before: show it now, no job */
        qb_analysis_free(&s->an);
        s->an = copy;
        s->have_an = true;
        s->an_preview = false;
        s->an_err[0] = 0;
        s->an_hint = false;
        s->an_method = hit->method;
        s->an_oerr = hit->oerr;
        s->an_oerr_rtn = hit->oerr_rtn;
        s->an_alpha = hit->alpha;
        s->shown_serial = s->serial;
        return;
    }
    int kind = tui_choice_method(s);
    if (kind != QB_METHOD_RTN) { /* a calibration method: a hint, or its own job */
        qb_job *j = NULL;
        if (tui_method_hint(s, kind, s->an_err, sizeof s->an_err)) {
            qb_analysis_free(&s->an);
            memset(&s->an, 0, sizeof s->an);
            s->have_an = false;
            s->an_hint = true;
            s->shown_serial = s->serial;
            s->an_preview = false;
        } else if ((j = tui_method_analysis_start(s, kind))) {
            s->an_jobs[s->n_an_jobs++] = j;
        }
        return;
    }
    an_arg *a = malloc(sizeof *a);
    if (!a) return;
    *a = (an_arg){s->src, s->fmt, s->hist_bins, TUI_MAP_POINTS, NULL};
    const float *imp = tui_importance_of(s, t);
    if (imp && (a->imp = malloc((size_t)t->ne[0] * sizeof *a->imp))) /* copied: :imatrix off may free it */
        memcpy(a->imp, imp, (size_t)t->ne[0] * sizeof *a->imp);
    atomic_fetch_add(&s->src->refs, 1);
    qb_job *j;
    if (qb_job_start(&s->ctx, s->q, s->serial, "analysis", an_run, a, an_arg_free, &j) != QB_OK) {
        snprintf(s->an_err, sizeof s->an_err, "%s", qb_ctx_errmsg(&s->ctx));
        return;
    }
    s->an_jobs[s->n_an_jobs++] = j;
}

void tui_analysis_message(tui_session *s, const qb_msg *m)
{
    if (m->tag == TUI_MSG_LEARN_STEP) {
        if (m->job_id == s->serial) tui_learn_curve_step(s, m->i0, m->i1, m->d0);
        return;
    }
    if (m->tag == TUI_MSG_METHOD_AN) {
        if (m->job_id != s->serial) return;
        tui_method_an *r = m->data;
        if (m->i1) { /* learned rounding on its way: shown, neither done nor cached */
            qb_analysis_free(&s->an);
            s->an = r->an;
            memset(&r->an, 0, sizeof r->an);
            s->an_method = r->method;
            s->an_oerr = r->oerr;
            s->an_oerr_rtn = r->oerr_rtn;
            s->an_alpha = r->alpha;
            s->have_an = true;
            s->an_err[0] = 0;
            s->an_hint = false;
            return;
        }
        qb_analysis_free(&s->an);
        s->an = r->an;
        memset(&r->an, 0, sizeof r->an); /* moved */
        s->an_method = r->method;
        s->an_oerr = r->oerr;
        s->an_oerr_rtn = r->oerr_rtn;
        s->an_alpha = r->alpha;
        s->have_an = true;
        s->train_an_step = 0;
        s->an_preview = false;
        s->an_err[0] = 0;
        s->an_hint = false;
        s->shown_serial = m->job_id;
        cache_put(s);
        return;
    }
    if (m->tag == TUI_MSG_ANALYSIS) {
        if (m->job_id != s->serial) return; /* a stale result: a newer request is on its way */
        qb_analysis_free(&s->an);
        s->an = *(qb_analysis *)m->data;
        memset(m->data, 0, sizeof s->an); /* moved: the message frees an empty shell */
        s->have_an = true;
        s->train_an_step = 0;
        s->an_method = QB_METHOD_RTN;
        s->an_hint = false;
        s->an_preview = m->i1 != 0;
        if (s->an_preview) { /* sizes and counts of the sample, scaled to the whole tensor */
            qb_error_stats *es[2] = {&s->an.stats, &s->an.wstats};
            for (int k = 0; k < 2; k++) {
                qb_error_stats *e = es[k];
                e->bytes_src = (size_t)((double)e->bytes_src * m->d0);
                e->bytes_quant = (size_t)((double)e->bytes_quant * m->d0);
                e->n = (int64_t)((double)e->n * m->d0);
            }
            qb_histogram *h[4] = {&s->an.hist_orig, &s->an.hist_deq, &s->an.hist_err, &s->an.hist_werr};
            for (int k = 0; k < 4; k++)
                for (int i = 0; i < h[k]->bins; i++) h[k]->counts[i] = (uint64_t)((double)h[k]->counts[i] * m->d0);
        }
        s->an_err[0] = 0;
        s->shown_serial = m->job_id;
        if (!s->an_preview) cache_put(s);
        return;
    }
    if (m->tag != QB_MSG_DONE) return;
    for (int k = 0; k < s->n_an_jobs; k++)
        if (qb_job_id(s->an_jobs[k]) == m->job_id) {
            reap(s, k);
            break;
        }
    if (m->job_id == s->serial && m->i0 != QB_OK && m->i0 != QB_ERR_CANCELLED) {
        snprintf(s->an_err, sizeof s->an_err, "%s", m->text ? m->text : "analysis failed");
        s->shown_serial = m->job_id;
        s->an_preview = false;
    }
}

bool tui_analysis_cancel(tui_session *s)
{
    int kind = tui_choice_method(s);
    if (kind == QB_METHOD_RTN || s->shown_serial == s->serial || s->n_an_jobs == 0) return false;
    for (int k = 0; k < s->n_an_jobs; k++) qb_job_cancel(s->an_jobs[k]);
    snprintf(s->an_err, sizeof s->an_err, "%s analysis cancelled (change the choice or reselect to run it again)",
             tui_method_display(kind));
    qb_analysis_free(&s->an);
    memset(&s->an, 0, sizeof s->an);
    s->have_an = false;
    s->an_hint = true;
    s->an_preview = false;
    s->shown_serial = ++s->serial; /* the cancelled job's messages are stale now */
    tui_status(s, false, "analysis cancelled");
    return true;
}

const float *tui_importance_of(tui_session *s, const qb_tensor *t)
{
    if (!s->imatrix) return NULL;
    const float *w = NULL;
    /* sizes were checked when the file was loaded (qb_imatrix_match); an error here leaves the
     * tensor unweighted, as llama-quantize leaves a token_embd entry of the wrong size */
    if (qb_importance_lookup(&s->ctx, &s->importance, t->name, t->ne[0], 1, s->m->cfg.n_experts, &w, NULL) != QB_OK)
        return NULL;
    return w;
}

void tui_analysis_importance_changed(tui_session *s)
{
    cache_free(s);
    if (!s->imatrix) s->weighted_view = false;
    tui_request_analysis(s);
}

void tui_weighted_toggle(tui_session *s)
{
    if (!s->imatrix) {
        tui_status(s, true, "importance-weighted view: no importance matrix loaded; :imatrix FILE loads one");
        return;
    }
    s->weighted_view = !s->weighted_view;
    if (!s->weighted_view) tui_status(s, false, "plain error view (w: importance-weighted)");
    else if (!tui_importance_of(s, tui_sel(s)))
        tui_status(s, false, "importance-weighted view on; %s has no entry in %s, so it shows plain", tui_sel(s)->name,
                   s->imatrix_desc);
    else
        tui_status(s, false, "importance-weighted view: errors scaled by sqrt(w/mean w) of %s (w: plain)",
                   s->imatrix_desc);
}

bool tui_weighted_shown(const tui_session *s) { return s->weighted_view && s->have_an && s->an.weighted; }

bool tui_analysis_pending(const tui_session *s) { return s->shown_serial != s->serial || s->an_preview; }

void tui_analysis_reset(tui_session *s)
{
    for (int k = 0; k < s->n_an_jobs; k++) qb_job_cancel(s->an_jobs[k]);
    while (s->n_an_jobs) reap(s, 0);
    /* drop their messages too (analysis results of the old selection) */
    srcbuf_unref(s->src);
    s->src = NULL;
    s->src_tensor = -1;
    qb_analysis_free(&s->an);
    memset(&s->an, 0, sizeof s->an);
    s->have_an = false;
    s->an_err[0] = 0;
    cache_free(s);
}
