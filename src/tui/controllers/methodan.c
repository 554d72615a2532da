/* methodan.c — GPTQ / AWQ / learned-rounding analyses of the selected tensor (methodan.h). */
#include "tui/controllers/methodan.h"
#include "tui/controllers/analysis.h"
#include "tui/controllers/methods.h"

#include "core/method/preview.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int tui_choice_method(const tui_session *s)
{
    int n;
    const tui_method *mt = &tui_methods(&n)[s->method];
    if (s->custom || !mt->job) return QB_METHOD_RTN;
    qb_method meth;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    return qb_method_parse(&ctx, mt->job, &meth) == QB_OK ? (int)meth.kind : QB_METHOD_RTN;
}

const char *tui_method_display(int kind)
{
    return kind == QB_METHOD_GPTQ ? "GPTQ" : kind == QB_METHOD_AWQ ? "AWQ" : kind == QB_METHOD_LEARNED ? "Learned" : "RTN";
}

bool tui_method_hint(const tui_session *s, int kind, char *buf, size_t cap)
{
    const qb_tensor *t = tui_sel(s);
    int layer;
    qb_obs_point pt;
    if (!s->calib) {
        snprintf(buf, cap, "%s needs calibration data: :calib FILE%s", tui_method_display(kind),
                 s->demo ? " (on a real model: the built-in demo has no forward pass)" : "");
        return true;
    }
    if (!qb_calib_point_of(s->m, t, &layer, &pt) || !qb_calib_get(s->calib, layer, pt) ||
        !qb_calib_get(s->calib, layer, pt)->xtx) {
        snprintf(buf, cap, "%s has no calibration point (no layer input): %s applies RTN to it", t->name,
                 tui_method_display(kind));
        return true;
    }
    return false;
}

typedef struct {
    const qb_tensor *t;         /* borrowed: sources stay mapped; jobs are reaped before a close */
    const qb_calib_stat *cs;    /* borrowed: the session reaps analysis jobs before it frees a
                                   calibration */
    qb_method meth;
    qb_format f;
    int bins, map_points;
    float *imp; /* the tensor's importance (owned), or NULL: no weighted view */
} job_arg;

static void job_arg_free(void *p)
{
    job_arg *a = p;
    free(a->imp);
    free(a);
}

void tui_method_an_free(void *p)
{
    tui_method_an *r = p;
    qb_analysis_free(&r->an);
    free(r);
}

/* Learned rounding's steps, as they happen: each step's error for the live curve, and every
 * LIVE_EVERY seconds the analysis of the values it has reached so far (a partial result: the
 * session shows it, dimmed, and neither caches it nor counts the analysis as done). */
#define LIVE_EVERY 0.3

typedef struct {
    qb_job *j;
    const job_arg *a;
    const float *w;
    int64_t rows, n;
    double e0, last;
} watch_ctx;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void watch_step(void *ud, int it, int iters, double e, const float *wq)
{
    watch_ctx *wc = ud;
    if (it == 0) wc->e0 = e;
    qb_msg m = {.tag = TUI_MSG_LEARN_STEP, .i0 = it, .i1 = iters, .d0 = e};
    qb_job_post(wc->j, &m);
    const double t = now_s();
    if (it == iters || t - wc->last < LIVE_EVERY) return;
    wc->last = t;
    tui_method_an *r = calloc(1, sizeof *r);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_analysis_opts o = {.bins = wc->a->bins, .auto_range = true, .map_points = wc->a->map_points,
                          .importance = wc->a->imp};
    if (!r || qb_quant_analyze_given(&ctx, &wc->a->f, wc->w, wq, wc->rows, wc->n, &o, &r->an) != QB_OK) {
        free(r);
        return;
    }
    *r = (tui_method_an){r->an, QB_METHOD_LEARNED, e, wc->e0, NAN};
    qb_msg am = {.tag = TUI_MSG_METHOD_AN, .i1 = 1, .data = r, .free_data = tui_method_an_free};
    qb_job_post(wc->j, &am);
}

static qb_status run(qb_job *j, qb_ctx *ctx, void *p)
{
    job_arg *a = p;
    int64_t rows = qb_tensor_rows(a->t), n = a->t->ne[0];
    float *w = malloc((size_t)(rows * n) * sizeof *w), *deq = malloc((size_t)(rows * n) * sizeof *deq);
    tui_method_an *r = calloc(1, sizeof *r);
    qb_status st = QB_OK;
    if (!w || !deq || !r) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
        goto done;
    }
    qb_ctx_apply_threads(ctx);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < rows; i += 32) qb_tensor_source_rows(a->t, i, rows - i < 32 ? rows - i : 32, w + i * n);
    qb_method_preview_result pr;
    watch_ctx wc = {j, a, w, rows, n, NAN, now_s()};
    st = qb_method_preview_watch(ctx, &a->meth, &a->f, w, rows, n, a->cs, deq, &pr, watch_step, &wc,
                                 qb_job_cancel_flag(j));
    if (st != QB_OK) goto done;
    qb_analysis_opts o = {.bins = a->bins, .auto_range = true, .map_points = a->map_points,
                          .cancel = qb_job_cancel_flag(j), .importance = a->imp};
    if ((st = qb_quant_analyze_given(ctx, &a->f, w, deq, rows, n, &o, &r->an)) != QB_OK) goto done;
    r->method = a->meth.kind;
    r->oerr = pr.out_err;
    r->oerr_rtn = pr.out_err_rtn;
    r->alpha = pr.alpha;
    qb_msg m = {.tag = TUI_MSG_METHOD_AN, .data = r, .free_data = tui_method_an_free};
    qb_job_post(j, &m);
    r = NULL;
done:
    free(w);
    free(deq);
    free(r);
    return st;
}

qb_job *tui_method_analysis_start(tui_session *s, int kind)
{
    int layer;
    qb_obs_point pt;
    const qb_tensor *t = tui_sel(s);
    if (!s->calib || !qb_calib_point_of(s->m, t, &layer, &pt)) return NULL;
    job_arg *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->t = t;
    a->cs = qb_calib_get(s->calib, layer, pt);
    qb_method_parse(&s->ctx, qb_method_name((qb_method_kind)kind), &a->meth);
    if (kind == QB_METHOD_LEARNED) a->meth.learned.iters = TUI_LEARNED_ITERS;
    a->f = s->fmt;
    a->bins = s->hist_bins;
    a->map_points = TUI_MAP_POINTS;
    const float *imp = tui_importance_of(s, t);
    if (imp && (a->imp = malloc((size_t)t->ne[0] * sizeof *a->imp)))
        memcpy(a->imp, imp, (size_t)t->ne[0] * sizeof *a->imp);
    qb_job *j;
    if (qb_job_start(&s->ctx, s->q, s->serial, "analysis", run, a, job_arg_free, &j) != QB_OK) {
        snprintf(s->an_err, sizeof s->an_err, "%s", qb_ctx_errmsg(&s->ctx));
        return NULL;
    }
    return j;
}
