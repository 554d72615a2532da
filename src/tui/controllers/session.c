/* session.c — the workbench state (session.h): model, selection, method choice, status, and
 * the message pump that routes job results to the parts of the state they belong to. */
#include "tui/controllers/session.h"
#include "tui/panels/browser.h"
#include "core/quant/demo_model.h"
#include "tui/controllers/methods.h"
#include "tui/controllers/analysis.h"
#include "tui/controllers/script.h"
#include "tui/controllers/tasks.h"
#include "tui/controllers/planjob.h"
#include "core/method/plan_apply.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void tui_status(tui_session *s, bool err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->status, sizeof s->status, fmt, ap);
    va_end(ap);
    for (char *p = s->status; *p; p++)
        if (*p == '\n' || *p == '\t') *p = ' ';
    s->status_err = err;
}

qb_tensor *tui_sel(const tui_session *s) { return &s->m->tensors[s->sel]; }

int tui_tensor_layer(const char *name)
{
    if (strncmp(name, "blk.", 4) || !isdigit((unsigned char)name[4])) return -1;
    return atoi(name + 4);
}

static int n_layer_slots(const qb_model *m)
{
    int n = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        int l = tui_tensor_layer(m->tensors[i].name);
        if (l + 1 > n) n = l + 1;
    }
    return n + 1;
}

/* Reset everything that depends on the model (m is taken). */
static qb_status adopt(tui_session *s, qb_model *m)
{
    if (m->n_tensors <= 0) return qb_fail(&s->ctx, QB_ERR_FORMAT, "%s: the model has no tensors", m->path);
    bool *unf = calloc((size_t)n_layer_slots(m), sizeof *unf);
    double *heat = malloc((size_t)m->n_tensors * sizeof *heat);
    tui_tensor_state *ts = calloc((size_t)m->n_tensors, sizeof *ts);
    qb_apply_state *as = NULL;
    if (!unf || !heat || !ts || qb_apply_state_new(&s->ctx, m, &as) != QB_OK) {
        free(unf);
        free(heat);
        free(ts);
        return qb_fail(&s->ctx, QB_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < m->n_tensors; i++) heat[i] = NAN;
    tui_analysis_reset(s);
    qb_model_close(s->base);
    s->base = NULL;
    qb_model_close(s->m);
    qb_run_config_free(s->run);
    s->run = NULL;
    free(s->unfolded);
    free(s->heat);
    free(s->tstate);
    s->tstate = ts;
    s->m = m;
    s->demo = !m->tok && !strcmp(m->path, "built-in demo");
    s->unfolded = unf;
    s->unfolded[0] = true;
    s->heat = heat;
    s->heat_label[0] = 0;
    qb_plan_free(&s->plan);
    qb_plan_init(&s->plan);
    qb_apply_state_free(s->apply_state);
    s->apply_state = as; /* every tensor as loaded */
    s->act_desc[0] = 0;
    tui_imatrix_drop(s); /* it was made for the old model */
    qb_calib_free(s->calib); /* it was run on the old model */
    s->calib = NULL;
    s->train_n = 0; /* its loss curve was the old model's */
    s->train_show = false;
    s->calib_desc[0] = 0;
    for (int i = 0; i < s->n_undo; i++) free(s->undo[i]);
    for (int i = 0; i < s->n_redo; i++) free(s->redo[i]);
    s->n_undo = s->n_redo = 0;
    memset(s->gen, 0, sizeof s->gen);
    s->gen_shown = false;
    s->eval_line[0] = 0;
    s->have_eval = false;
    s->top = s->cursor = 0;
    /* start on the largest quantizable matrix: the interesting one */
    int best = 0;
    for (int i = 0; i < m->n_tensors; i++)
        if (qb_tensor_quantizable(&m->tensors[i]) &&
            (!qb_tensor_quantizable(&m->tensors[best]) ||
             qb_tensor_nelements(&m->tensors[i]) > qb_tensor_nelements(&m->tensors[best])))
            best = i;
    tui_session_sync(s);
    tui_select(s, best);
    return QB_OK;
}

void tui_session_sync(tui_session *s)
{
    if ((s->job && (s->job_kind == JOB_APPLY || s->job_kind == JOB_ACT || s->job_kind == JOB_TRAIN)) ||
        tui_script_holds_model(s))
        return;
    for (int i = 0; i < s->m->n_tensors; i++)
        s->tstate[i] = (tui_tensor_state){s->m->tensors[i].fmt, s->m->tensors[i].nbytes};
    qb_quant_size_compute(s->m, &s->size);
}

qb_status tui_session_init(tui_session *s, qb_model *m)
{
    memset(s, 0, sizeof *s);
    qb_ctx_init(&s->ctx);
    qb_plan_init(&s->plan);
    s->src_tensor = -1;
    s->method = 0;
    s->bits = 4;
    s->group = QB_GROUP_CHANNEL;
    s->hist_bins = 96;
    s->n_predict = 32;
    s->eval_chunks = 4;
    snprintf(s->prompt, sizeof s->prompt, "The function returns");
    const char *data = getenv("QB_DATA");
    snprintf(s->eval_text, sizeof s->eval_text, "%s/eval-docs.txt", data && *data ? data : "../shared/data");
    qb_status st = qb_msg_queue_new(&s->ctx, &s->q);
    if (st != QB_OK) {
        qb_model_close(m);
        return st;
    }
    if (!m && (st = qb_demo_model(&s->ctx, &m)) != QB_OK) return st;
    tui_choice_changed(s);
    st = adopt(s, m);
    if (st != QB_OK) qb_model_close(m);
    return st;
}

void tui_session_free(tui_session *s)
{
    if (s->job) {
        qb_job_cancel(s->job);
        qb_job_join(s->job, NULL, 0);
        s->job = NULL;
    }
    tui_analysis_reset(s);
    qb_model_close(s->base);
    qb_model_close(s->m);
    qb_run_config_free(s->run);
    s->run = NULL;
    qb_msg_queue_free(s->q);
    qb_plan_free(&s->plan);
    for (int i = 0; i < s->n_undo; i++) free(s->undo[i]);
    for (int i = 0; i < s->n_redo; i++) free(s->redo[i]);
    free(s->unfolded);
    free(s->heat);
    free(s->tstate);
    qb_apply_state_free(s->apply_state);
    qb_calib_free(s->calib);
    free(s->train_loss);
    tui_imatrix_drop(s);
    if (s->trace) fclose(s->trace);
    memset(s, 0, sizeof *s);
}

bool tui_session_open(tui_session *s, const char *path)
{
    if (tui_script_running(s, NULL)) {
        tui_status(s, true, "open: a script is running (Ctrl-C stops it first)");
        return false;
    }
    if (s->job) {
        tui_status(s, true, "open: a %s job is running (Ctrl-C cancels it first)", qb_job_name(s->job));
        return false;
    }
    qb_model *m = NULL;
    if (qb_model_open(&s->ctx, path, NULL, &m) != QB_OK) {
        tui_status(s, true, "open failed, kept the current model: %s", qb_ctx_errmsg(&s->ctx));
        return false;
    }
    tui_script_close(s); /* Lua may hold the old model: a fresh state for the new one */
    if (adopt(s, m) != QB_OK) {
        qb_model_close(m);
        tui_status(s, true, "open: %s", qb_ctx_errmsg(&s->ctx));
        return false;
    }
    tui_status(s, false, "opened %s: %d tensors, %.1fM parameters", path, m->n_tensors, qb_model_params(m) / 1e6);
    return true;
}

void tui_select(tui_session *s, int i)
{
    if (i < 0 || i >= s->m->n_tensors) return;
    s->sel = i;
    int l = tui_tensor_layer(s->m->tensors[i].name);
    if (l >= 0) s->unfolded[l] = true;
    tui_browser_cursor_to_sel(s);
    tui_request_analysis(s);
}

bool tui_select_name(tui_session *s, const char *name, bool substring)
{
    char want[160];
    const qb_model *m = s->m;
    for (int pass = 0; pass < 2; pass++) {
        snprintf(want, sizeof want, pass ? "%s.weight" : "%s", name);
        for (int i = 0; i < m->n_tensors; i++)
            if (!strcmp(m->tensors[i].name, want)) {
                tui_select(s, i);
                return true;
            }
    }
    if (substring)
        for (int k = 1; k <= m->n_tensors; k++) {
            int i = (s->sel + k) % m->n_tensors;
            if (strstr(m->tensors[i].name, name)) {
                tui_select(s, i);
                return true;
            }
        }
    return false;
}

void tui_choice_changed(tui_session *s)
{
    if (!s->custom) {
        s->bits = tui_method_nearest_bits(s->method, s->bits);
        s->group = tui_method_nearest_group(s->method, s->group);
        tui_method_format(s->method, s->bits, s->group, &s->fmt);
    }
    if (s->m) tui_request_analysis(s);
}

bool tui_set_choice(tui_session *s, const char *method, int bits, int group, bool group_given, const char *format)
{
    if (format) {
        qb_format f;
        if (qb_format_parse(&s->ctx, format, &f) != QB_OK) {
            tui_status(s, true, "%s", qb_ctx_errmsg(&s->ctx));
            return false;
        }
        s->custom = true;
        s->fmt = f;
        tui_choice_changed(s);
        return true;
    }
    if (method) {
        int mi = tui_method_find(method);
        if (mi < 0) {
            tui_status(s, true, "unknown method '%s'", method);
            return false;
        }
        s->method = mi;
    }
    if (bits) {
        if (bits < 2 || bits > 8) {
            tui_status(s, true, "bits %d out of range 2..8", bits);
            return false;
        }
        s->bits = bits;
    }
    if (group_given) s->group = group;
    s->custom = false;
    tui_choice_changed(s);
    return true;
}

bool tui_drain(tui_session *s)
{
    bool changed = false;
    qb_msg msg;
    while (qb_msg_queue_pop(s->q, &msg)) {
        changed = true;
        if (tui_script_message(s, &msg)) { /* the script thread's requests and output */
        } else if (msg.job_id > 0) {
            tui_analysis_message(s, &msg);
        } else {
            tui_task_message(s, &msg);
        }
        qb_msg_free(&msg);
    }
    return changed;
}
