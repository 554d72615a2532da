/* planjob.c — the workbench's plan and the apply job: a thin caller of core's qb_plan_apply
 * (planjob.h). */
#include "tui/controllers/planjob.h"
#include "tui/controllers/tasks.h"
#include "tui/controllers/analysis.h"

#include "core/method/plan_apply.h"
#include "core/calib/imatrix.h"

#include <stdlib.h>
#include <string.h>

char *tui_plan_snapshot(const tui_session *s) { return qb_plan_to_string(&s->plan); }

void tui_plan_replace(tui_session *s, qb_plan *p)
{
    qb_plan_free(&s->plan);
    s->plan = *p;
    qb_plan_init(p);
}

bool tui_plan_restore(tui_session *s, const char *text, const char *what)
{
    qb_plan p;
    if (qb_plan_parse(&s->ctx, what, text, &p) != QB_OK) {
        tui_status(s, true, "%s: %s", what, qb_ctx_errmsg(&s->ctx));
        return false;
    }
    tui_plan_replace(s, &p);
    return true;
}

bool tui_plan_add_rule(tui_session *s, const char *pattern, const qb_format *f, const char *method)
{
    qb_method_spec ms = {0};
    if ((method && qb_method_spec_init(&s->ctx, method, &ms) != QB_OK) ||
        qb_plan_add_rule(&s->ctx, &s->plan, pattern, f, &ms, 0) != QB_OK) {
        tui_status(s, true, "apply: %s", qb_ctx_errmsg(&s->ctx));
        return false;
    }
    return true;
}

bool tui_plan_has_calib_rules(const tui_session *s) { return qb_plan_needs_calib(&s->plan); }

bool tui_plan_unmatched(const tui_session *s, char *msg, size_t cap)
{
    return qb_plan_unmatched(&s->plan, s->m, 0, msg, cap) >= 0;
}

/* ---- the importance matrix ---- */

void tui_imatrix_drop(tui_session *s)
{
    qb_imatrix_free(s->imatrix);
    s->imatrix = NULL;
    s->imatrix_desc[0] = 0;
}

void tui_imatrix(tui_session *s, const char *arg)
{
    if (!*arg) {
        if (s->imatrix) tui_status(s, false, "imatrix: %s (:imatrix off drops it)", s->imatrix_desc);
        else tui_status(s, true, "imatrix: which file? (:imatrix FILE, a .dat or GGUF importance matrix)");
        return;
    }
    if (!tui_task_idle(s, "imatrix")) return;
    if (!strcmp(arg, "off")) {
        tui_imatrix_drop(s);
        tui_analysis_importance_changed(s);
        tui_status(s, false, "imatrix off: applies quantize without importance");
        return;
    }
    qb_imatrix *im = NULL;
    qb_importance imp;
    if (qb_imatrix_load(&s->ctx, arg, &im) != QB_OK || qb_imatrix_match(&s->ctx, im, s->m) != QB_OK ||
        qb_imatrix_importance(&s->ctx, im, &imp) != QB_OK) {
        tui_status(s, true, "imatrix: %s", qb_ctx_errmsg(&s->ctx));
        qb_imatrix_free(im);
        return;
    }
    tui_imatrix_drop(s);
    s->imatrix = im;
    s->importance = imp;
    const char *base = strrchr(arg, '/');
    snprintf(s->imatrix_desc, sizeof s->imatrix_desc, "%.120s, %d entries", base ? base + 1 : arg, im->n_entries);
    tui_analysis_importance_changed(s);
    tui_status(s, false, "imatrix %s: applies of ggml types are now weighted (as llama-quantize --imatrix); "
               "w: importance-weighted error", s->imatrix_desc);
}

/* ---- the job ---- */

typedef struct {
    qb_model *m;
    const qb_calib *cal;     /* borrowed: :calib waits for this job */
    const qb_importance *imp; /* borrowed: :imatrix waits for this job */
    qb_plan plan;            /* copy */
    qb_apply_state *state;   /* the session's; read by the UI only after the join */
} plan_arg;

static void plan_arg_free(void *p)
{
    plan_arg *a = p;
    qb_plan_free(&a->plan);
    free(a);
}

static void job_progress(void *ud, int done, int total) { qb_job_progress(ud, done, total); }

static qb_status plan_run(qb_job *j, qb_ctx *ctx, void *p)
{
    plan_arg *a = p;
    qb_plan_apply_opts o = {.progress = job_progress, .ud = j, .cancel = qb_job_cancel_flag(j),
                            .allow_unmatched = true, .state = a->state, .imatrix = a->imp};
    return qb_plan_apply(ctx, a->m, &a->plan, a->cal, &o);
}

bool tui_plan_run(tui_session *s)
{
    if (tui_plan_has_calib_rules(s) && !s->calib) {
        tui_status(s, true, "apply: the plan has GPTQ/AWQ rules and there is no calibration (:calib FILE)");
        return false;
    }
    plan_arg *a = calloc(1, sizeof *a);
    if (!a || qb_plan_copy(&s->ctx, &s->plan, &a->plan) != QB_OK) {
        free(a);
        tui_status(s, true, "apply: out of memory");
        return false;
    }
    a->m = s->m;
    a->cal = s->calib;
    a->imp = s->imatrix ? &s->importance : NULL;
    a->state = s->apply_state;
    return tui_task_start(s, JOB_APPLY, "apply", plan_run, a, plan_arg_free);
}
