/* calibrate.c — `:calib FILE [SAMPLES] [CTX]`: the open model run on a text as a long job
 * (progress, Ctrl-C), capturing every linear layer's input statistics with XᵀX; the result
 * becomes the session's calibration, which GPTQ and AWQ analyses and applies read. The model
 * is only read; a failed or cancelled run keeps the previous calibration. */
#include "tui/controllers/analysis.h"
#include "tui/controllers/tasks.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_SAMPLES 32
#define DEFAULT_CTX 256

typedef struct {
    const qb_model *m;
    char path[1024];
    int samples, n_ctx;
} calib_arg;

static void progress_cb(void *ud, int done, int total) { qb_job_progress(ud, done, total); }
static void calib_free(void *p) { qb_calib_free(p); }

static qb_status calib_run(qb_job *j, qb_ctx *ctx, void *p)
{
    calib_arg *a = p;
    qb_calib_opts o = {.n_samples = a->samples, .n_ctx = a->n_ctx, .hessian = true, .progress = progress_cb, .ud = j,
                       .cancel = qb_job_cancel_flag(j)};
    qb_calib *cal = NULL;
    qb_status st = qb_calib_run_file(ctx, a->m, a->path, &o, &cal);
    if (st != QB_OK) return st;
    qb_msg m = {.tag = TUI_MSG_CALIB, .data = cal, .free_data = calib_free, .text = strdup(a->path)};
    qb_job_post(j, &m);
    return QB_OK;
}

bool tui_calibrate(tui_session *s, const char *path, int samples, int n_ctx)
{
    if (!tui_task_idle(s, "calib")) return false;
    if (s->demo || !s->m->tok || !s->m->layers) {
        tui_status(s, true, "calib needs a real model: the built-in demo has no forward pass (:open PATH)");
        return false;
    }
    if (!path || !*path) {
        tui_status(s, true, "calib: which text? (:calib FILE [SAMPLES] [CTX])");
        return false;
    }
    if (access(path, R_OK) != 0) {
        tui_status(s, true, "calib: cannot read %s", path);
        return false;
    }
    calib_arg *a = calloc(1, sizeof *a);
    if (!a) return false;
    a->m = s->m;
    snprintf(a->path, sizeof a->path, "%s", path);
    a->samples = samples > 0 ? samples : DEFAULT_SAMPLES;
    a->n_ctx = n_ctx > 0 ? n_ctx : DEFAULT_CTX;
    tui_status(s, false, "calibrating on %s: %d windows of %d tokens (Ctrl-C cancels)", path, a->samples, a->n_ctx);
    return tui_task_start(s, JOB_CALIB, "calib", calib_run, a, free);
}

void tui_calib_adopt(tui_session *s, const qb_msg *m)
{
    qb_calib *c = malloc(sizeof *c);
    if (!c) return;
    *c = *(qb_calib *)m->data;
    memset(m->data, 0, sizeof *c); /* moved: the message frees an empty shell */
    /* analysis jobs may read the old calibration: reap them before it goes */
    tui_analysis_reset(s);
    qb_calib_free(s->calib);
    s->calib = c;
    const char *path = m->text ? m->text : "?", *base = strrchr(path, '/');
    snprintf(s->calib_desc, sizeof s->calib_desc, "%.120s, %d windows x %d tokens", base ? base + 1 : path,
             c->n_windows, c->n_ctx);
    tui_request_analysis(s);
}
