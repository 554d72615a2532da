/* actmode.c — `:act smoothquant [ALPHA]`, `:act int8 [THRESHOLD]`, `:act off`: the model-level
 * activation methods (core act_quant.h) as jobs. SmoothQuant reuses the session's calibration
 * (:calib); LLM.int8() needs none. Both rewrite every block matrix to int8 per channel from
 * its original values (and SmoothQuant the norms), replacing what the plan put there, so
 * while one is on, plan changes (apply, undo, redo, load) are refused; `:act off` restores
 * the originals (qb_w8a8_clear) and re-applies the plan with its methods. */
#include "tui/controllers/planjob.h"
#include "tui/controllers/tasks.h"

#include "core/method/act_quant.h"
#include "core/method/plan_apply.h"
#include "core/method/smoothquant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    qb_model *m;
    qb_run_config *run; /* the session's (no other job runs while this one does) */
    const qb_calib *cal; /* borrowed (no :calib while a job runs) */
    qb_act_opts o;
    bool off;
} act_arg;

static qb_status act_run(qb_job *j, qb_ctx *ctx, void *p)
{
    act_arg *a = p;
    qb_job_progress(j, 0, 1);
    qb_status st = a->off ? qb_w8a8_clear(ctx, a->m, a->run) : qb_act_apply(ctx, a->m, a->run, &a->o);
    if (st == QB_OK) qb_job_progress(j, 1, 1);
    return st;
}

bool tui_act(tui_session *s, const char *args)
{
    if (!tui_task_idle(s, "act")) return false;
    if (s->demo || !s->m->layers) {
        tui_status(s, true, "act needs a real model: the built-in demo has no forward pass (:open PATH)");
        return false;
    }
    char name[32] = "";
    double v = NAN;
    if (sscanf(args, "%31s %lf", name, &v) < 1) {
        tui_status(s, true, "act: smoothquant [ALPHA], int8 [THRESHOLD] or off");
        return false;
    }
    if (!s->run && qb_run_config_new(&s->ctx, s->m, &s->run) != QB_OK) {
        tui_status(s, true, "act: %s", qb_ctx_errmsg(&s->ctx));
        return false;
    }
    act_arg *a = calloc(1, sizeof *a);
    if (!a) return false;
    a->m = s->m;
    a->run = s->run;
    qb_act_opts_init(&a->o);
    if (!strcasecmp(name, "off")) {
        if (!s->act_desc[0]) {
            free(a);
            tui_status(s, true, "act: no activation method is on");
            return false;
        }
        a->off = true;
        s->act_pending[0] = 0;
    } else if (!strcasecmp(name, "smoothquant") || !strcasecmp(name, "sq")) {
        if (!s->calib) {
            free(a);
            tui_status(s, true, "act smoothquant needs calibration data: :calib FILE");
            return false;
        }
        a->o.act = "int8";
        a->o.smooth = true;
        if (!isnan(v)) a->o.alpha = (float)v;
        a->o.calib = s->calib;
        snprintf(s->act_pending, sizeof s->act_pending, "SmoothQuant W8A8, alpha %.2f", (double)a->o.alpha);
    } else if (!strcasecmp(name, "int8") || !strcasecmp(name, "llm.int8")) {
        a->o.int8_outlier = true;
        if (!isnan(v)) a->o.threshold = (float)v;
        snprintf(s->act_pending, sizeof s->act_pending, "LLM.int8, threshold %g", (double)a->o.threshold);
    } else {
        free(a);
        tui_status(s, true, "act: unknown '%s' (smoothquant [ALPHA], int8 [THRESHOLD], off)", name);
        return false;
    }
    tui_status(s, false, "%s", a->off ? "act off: restoring the originals" : s->act_pending);
    return tui_task_start(s, JOB_ACT, "act", act_run, a, free);
}

void tui_act_done(tui_session *s, bool ok)
{
    if (!ok) return;
    bool off = !s->act_pending[0];
    snprintf(s->act_desc, sizeof s->act_desc, "%s", s->act_pending);
    /* the block matrices hold int8 (on) or their originals (off), no longer the plan's */
    for (int i = 0; i < s->m->n_tensors; i++) {
        int layer;
        qb_obs_point pt;
        if (qb_calib_point_of(s->m, &s->m->tensors[i], &layer, &pt)) qb_apply_state_forget(s->apply_state, i);
    }
    if (off) {
        tui_status(s, false, "act off: re-applying the plan");
        tui_plan_run(s);
    } else {
        tui_status(s, false, "act: %s on every block matrix (:act off restores the plan)", s->act_desc);
    }
}
