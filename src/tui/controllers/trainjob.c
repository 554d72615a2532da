/* trainjob.c — the workbench's fine-tuning job (trainjob.h): a thin caller of core's
 * qb_finetune_* on a worker thread, its per-step reports posted to the UI. */
#include "tui/controllers/trainjob.h"
#include "tui/controllers/analysis.h"
#include "tui/controllers/tasks.h"

#include "core/method/finetune.h"
#include "core/method/plan_apply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_STEPS 50

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    qb_model *m;
    const qb_model *teacher;
    char path[1024];
    qb_finetune_params p;
    const _Atomic int *watch; /* the selected tensor (session's), whose plots follow the training */
    int bins;
} train_arg;

/* Every LIVE_EVERY seconds and at the end: the analysis of the watched tensor as the run holds
 * it — its latent weights (the "original" side of the plots: they move) against the values
 * their format gives them now (what the student runs) — posted for the plots. Nothing for a
 * tensor that does not train. */
#define LIVE_EVERY 1.0

static void post_tensor(qb_job *j, const train_arg *a, const qb_finetune *ft, int step)
{
    const int i = atomic_load(a->watch);
    if (i < 0 || i >= a->m->n_tensors) return;
    const qb_tensor *t = &a->m->tensors[i];
    char name[128];
    snprintf(name, sizeof name, "%s#run", t->name);
    size_t n = 0, nr = 0;
    const float *lat = qb_finetune_latent(ft, t->name, &n), *run = qb_finetune_latent(ft, name, &nr);
    if (!lat || !run || t->n_dims < 2) return;
    qb_analysis *an = calloc(1, sizeof *an);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_analysis_opts o = {.bins = a->bins, .auto_range = true, .map_points = TUI_MAP_POINTS};
    if (!an || qb_quant_analyze_given(&ctx, &t->fmt, lat, run, qb_tensor_rows(t), t->ne[0], &o, an) != QB_OK) {
        free(an);
        return;
    }
    qb_msg m = {.tag = TUI_MSG_TRAIN_AN, .i0 = i, .i1 = step, .data = an, .free_data = tui_analysis_msg_free};
    qb_job_post(j, &m);
}

static qb_status train_run(qb_job *j, qb_ctx *ctx, void *p)
{
    train_arg *a = p;
    int32_t *tok = NULL;
    int n = 0;
    qb_finetune *ft = NULL;
    qb_status st = qb_eval_load_text(ctx, a->m, a->path, &tok, &n);
    if (st == QB_OK) st = qb_finetune_begin(ctx, a->m, a->teacher, tok, n, &a->p, &ft);
    double spent = 0, shown = now();
    long tokens = 0;
    while (st == QB_OK && qb_finetune_steps_done(ft) < a->p.steps) {
        qb_finetune_report r;
        st = qb_finetune_step(ctx, ft, &r, qb_job_cancel_flag(j));
        if (st != QB_OK) break;
        spent += r.seconds;
        tokens += r.tokens;
        qb_msg m = {.tag = TUI_MSG_TRAIN, .i0 = r.step, .i1 = a->p.steps, .d0 = r.loss, .d1 = tokens / spent};
        qb_job_post(j, &m);
        qb_job_progress(j, r.step, a->p.steps);
        if (now() - shown >= LIVE_EVERY || r.step == a->p.steps) {
            post_tensor(j, a, ft, r.step);
            shown = now();
        }
    }
    /* only a finished run changes the model */
    if (st == QB_OK) st = qb_finetune_finish(ctx, ft);
    qb_finetune_end(ft);
    free(tok);
    return st;
}

bool tui_finetune(tui_session *s, const char *args)
{
    char w[4][1024] = {{0}};
    int nw = sscanf(args, "%1023s %1023s %1023s %1023s", w[0], w[1], w[2], w[3]);
    const bool heal = nw > 0 && !strcmp(w[0], "heal");
    const char *path = heal ? w[1] : w[0];
    const char *steps_s = heal ? w[2] : w[1], *lr_s = heal ? w[3] : w[2];
    if (!*path) {
        tui_status(s, true, "finetune: which text? (:finetune [heal] FILE [STEPS] [LR])");
        return false;
    }
    if (!tui_task_idle(s, "finetune")) return false;
    if (s->demo || !s->m->tok || !s->m->layers) {
        tui_status(s, true, "finetune needs a real model: the built-in demo has no forward pass (:open PATH)");
        return false;
    }
    if (access(path, R_OK) != 0) {
        tui_status(s, true, "finetune: cannot read %s", path);
        return false;
    }
    const int steps = *steps_s ? atoi(steps_s) : DEFAULT_STEPS;
    const double lr = *lr_s ? atof(lr_s) : 0;
    if (steps < 1 || steps > 1000000 || lr < 0 || lr > 1) {
        tui_status(s, true, "finetune: steps 1..1000000 and a learning rate in (0, 1], got '%s' '%s'", steps_s, lr_s);
        return false;
    }
    if (!s->base && qb_model_open(&s->ctx, s->m->path, NULL, &s->base) != QB_OK) {
        tui_status(s, true, "finetune: %s", qb_ctx_errmsg(&s->ctx));
        return false;
    }
    train_arg *a = calloc(1, sizeof *a);
    double *loss = realloc(s->train_loss, (size_t)steps * sizeof *loss);
    if (!a || !loss) {
        free(a);
        tui_status(s, true, "finetune: out of memory");
        return false;
    }
    s->train_loss = loss;
    s->train_n = 0;
    s->train_steps = steps;
    s->train_show = true;
    s->train_tps = 0;
    s->train_t0 = now();
    a->m = s->m;
    a->teacher = s->base;
    a->watch = &s->train_watch;
    a->bins = s->hist_bins;
    atomic_store(&s->train_watch, s->sel);
    s->train_legend = "KL from the full-precision model (per step)";
    snprintf(a->path, sizeof a->path, "%s", path);
    a->p = (qb_finetune_params){.steps = steps, .lr = (float)lr, .min_lr_ratio = -1, .warmup = -1, .kd = -1,
                                .heal = heal};
    const char *base = strrchr(path, '/');
    snprintf(s->train_desc, sizeof s->train_desc, "%s on %.100s", heal ? "healing" : "QAT + distillation",
             base ? base + 1 : path);
    tui_status(s, false, "finetune: %s, %d steps (Ctrl-C stops; the model changes only at the end)", s->train_desc,
               steps);
    return tui_task_start(s, JOB_TRAIN, "finetune", train_run, a, free);
}

void tui_train_step(tui_session *s, const qb_msg *m)
{
    if (!s->train_loss || m->i0 < 1 || m->i0 > s->train_steps) return;
    s->train_loss[m->i0 - 1] = m->d0;
    if (m->i0 > s->train_n) s->train_n = m->i0;
    s->train_tps = m->d1;
    const double eta = (now() - s->train_t0) / m->i0 * (m->i1 - m->i0);
    tui_status(s, false, "finetune step %d/%d  loss %.5f  %.0f tok/s  ETA %.0f s (Ctrl-C stops)", m->i0, m->i1, m->d0,
               m->d1, eta);
}

void tui_train_analysis(tui_session *s, const qb_msg *m)
{
    if (m->i0 != s->sel || !m->data) return; /* the selection moved on: its own analysis shows */
    qb_analysis_free(&s->an);
    s->an = *(qb_analysis *)m->data;
    memset(m->data, 0, sizeof s->an); /* moved */
    s->have_an = true;
    s->an_method = QB_METHOD_RTN;
    s->an_preview = false;
    s->an_hint = false;
    s->an_err[0] = 0;
    s->train_an_step = m->i1;
}

void tui_learn_curve_step(tui_session *s, int it, int iters, double err)
{
    if (s->job && s->job_kind == JOB_TRAIN) return; /* the curve is the fine-tuning's */
    if (it == 0) {
        double *v = realloc(s->train_loss, (size_t)(iters + 1) * sizeof *v);
        if (!v) return;
        s->train_loss = v;
        s->train_steps = iters + 1;
        s->train_n = 0;
        s->train_show = true;
        s->train_legend = "output error \u2016(W\u2212Q)X\u2016\u00b2/\u2016WX\u2016\u00b2 (per step)";
        /* the tensor and the format are in the plots' header */
        snprintf(s->train_desc, sizeof s->train_desc, "learned rounding");
    }
    if (!s->train_loss || it < 0 || it >= s->train_steps || it > s->train_n) return;
    s->train_loss[it] = err;
    s->train_n = it + 1;
}

void tui_train_done(tui_session *s, qb_status st, const char *err)
{
    if (st == QB_ERR_CANCELLED) {
        tui_status(s, false, "finetune cancelled at step %d: the model is as it was", s->train_n);
        return;
    }
    if (st != QB_OK) {
        tui_status(s, true, "finetune: %s", err);
        return;
    }
    /* every tensor's representation now comes from the training, not from an apply */
    for (int i = 0; s->apply_state && i < s->m->n_tensors; i++) qb_apply_state_forget(s->apply_state, i);
    tui_status(s, false, "finetune: %s, %d steps, loss %.5f -> %.5f; the model holds the result", s->train_desc,
               s->train_n, s->train_n ? s->train_loss[0] : 0.0, s->train_n ? s->train_loss[s->train_n - 1] : 0.0);
    tui_request_analysis(s);
}
