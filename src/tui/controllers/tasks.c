/* tasks.c — long jobs (tasks.h): plan application, generation, perplexity/KLD and export,
 * each on a worker thread through core/jobs, with results coming back as messages. */
#include "tui/controllers/tasks.h"
#include "tui/controllers/trainjob.h"
#include "tui/controllers/analysis.h"
#include "tui/controllers/methods.h"
#include "tui/controllers/planjob.h"
#include "tui/controllers/script.h"

#include "core/eval/eval.h"
#include "core/eval/tasks.h"
#include "core/infer/generate.h"
#include "core/method/plan_apply.h"
#include "core/tokenizer/tokenizer.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

bool tui_task_idle(tui_session *s, const char *what)
{
    if (!s->job) return true;
    tui_status(s, true, "%s: the %s job is still running (Ctrl-C cancels it)", what, qb_job_name(s->job));
    return false;
}

bool tui_task_start(tui_session *s, tui_job_kind kind, const char *name, qb_job_fn fn, void *arg,
                    void (*free_arg)(void *))
{
    if (tui_script_holds_model(s)) {
        tui_status(s, true, "%s: a script is using the model (wait, or Ctrl-C it)", name);
        free_arg(arg);
        return false;
    }
    int id = -(++s->next_job_id);
    if (qb_job_start(&s->ctx, s->q, id, name, fn, arg, free_arg, &s->job) != QB_OK) {
        tui_status(s, true, "%s", qb_ctx_errmsg(&s->ctx));
        return false;
    }
    s->job_kind = kind;
    return true;
}

static void progress_cb(void *ud, int done, int total) { qb_job_progress(ud, done, total); }

/* ---- plan changes (applied by planjob.c) ---- */

bool tui_scope_pattern(const char *name, char scope, char *buf, size_t cap)
{
    int layer = tui_tensor_layer(name);
    switch (scope) {
    case 't': snprintf(buf, cap, "%s", name); return true;
    case 'm': snprintf(buf, cap, "*"); return true;
    case 'l':
        if (layer < 0) return false;
        snprintf(buf, cap, "blk.%d.*", layer);
        return true;
    case 'k':
        if (layer < 0) snprintf(buf, cap, "%s", name);
        else snprintf(buf, cap, "blk.*.%s", strchr(name + 4, '.') + 1);
        return true;
    }
    return false;
}

static void push(char **stack, int *n, char *text)
{
    if (*n == TUI_UNDO_MAX) {
        free(stack[0]);
        memmove(stack, stack + 1, (TUI_UNDO_MAX - 1) * sizeof *stack);
        (*n)--;
    }
    stack[(*n)++] = text;
}

/* Plan changes are refused while an activation method owns the block matrices. */
static bool act_off(tui_session *s, const char *what)
{
    if (!s->act_desc[0]) return true;
    tui_status(s, true, "%s: %s is on (:act off first)", what, s->act_desc);
    return false;
}

bool tui_apply(tui_session *s, char scope)
{
    if (!tui_task_idle(s, "apply") || !act_off(s, "apply")) return false;
    const qb_tensor *sel = tui_sel(s);
    char pat[200], fname[64];
    if (!tui_scope_pattern(sel->name, scope, pat, sizeof pat)) {
        tui_status(s, true, "apply: %s is not in a layer", sel->name);
        return false;
    }
    int nm;
    const tui_method *mt = &tui_methods(&nm)[s->method];
    const char *job = s->custom ? NULL : mt->job; /* a calibration method, or RTN */
    if (job && !s->calib) {
        tui_status(s, true, "apply: %s needs calibration data: :calib FILE", mt->name);
        return false;
    }
    qb_format_name(&s->fmt, fname, sizeof fname);
    /* refuse before touching anything when a matching tensor cannot take the format */
    int n = 0;
    for (int i = 0; i < s->m->n_tensors; i++) {
        const qb_tensor *t = &s->m->tensors[i];
        if (!qb_tensor_quantizable(t) || fnmatch(pat, t->name, 0) != 0) continue;
        if (qb_format_check(&s->ctx, &s->fmt, t->ne[0]) != QB_OK) {
            tui_status(s, true, "apply %s: %s: %s", fname, t->name, qb_ctx_errmsg(&s->ctx));
            return false;
        }
        n++;
    }
    if (n == 0) {
        tui_status(s, true, "apply: no quantizable tensor matches %s", pat);
        return false;
    }
    char *before = tui_plan_snapshot(s);
    if (!before || !tui_plan_add_rule(s, pat, &s->fmt, job)) {
        free(before);
        return false;
    }
    push(s->undo, &s->n_undo, before);
    while (s->n_redo) free(s->redo[--s->n_redo]);
    tui_status(s, false, "applying %s%s%s to %s (%d tensor%s)", job ? mt->name : "", job ? " " : "", fname, pat, n,
               n == 1 ? "" : "s");
    return tui_plan_run(s);
}

static bool swap_plan(tui_session *s, char **from, int *n_from, char **to, int *n_to, const char *what)
{
    if (!tui_task_idle(s, what) || !act_off(s, what)) return false;
    if (*n_from == 0) {
        tui_status(s, true, "nothing to %s", what);
        return false;
    }
    char *text = from[*n_from - 1];
    char *now = tui_plan_snapshot(s);
    if (!now) return false;
    if (!tui_plan_restore(s, text, what)) {
        free(now);
        return false;
    }
    (*n_from)--;
    free(text);
    push(to, n_to, now);
    tui_status(s, false, "%s: plan has %d rule%s", what, s->plan.n_rules, s->plan.n_rules == 1 ? "" : "s");
    return tui_plan_run(s);
}

bool tui_undo(tui_session *s) { return swap_plan(s, s->undo, &s->n_undo, s->redo, &s->n_redo, "undo"); }
bool tui_redo(tui_session *s) { return swap_plan(s, s->redo, &s->n_redo, s->undo, &s->n_undo, "redo"); }

bool tui_plan_save(tui_session *s, const char *path)
{
    if (qb_plan_save(&s->ctx, &s->plan, path) != QB_OK) {
        tui_status(s, true, "%s", qb_ctx_errmsg(&s->ctx));
        return false;
    }
    tui_status(s, false, "plan saved to %s (%d rules%s)", path, s->plan.n_rules,
               tui_plan_has_calib_rules(s) ? ", with their GPTQ/AWQ methods" : "");
    return true;
}

bool tui_plan_load(tui_session *s, const char *path)
{
    if (!tui_task_idle(s, "load plan") || !act_off(s, "load plan")) return false;
    qb_plan p;
    if (qb_plan_load(&s->ctx, path, &p) != QB_OK) {
        tui_status(s, true, "%s", qb_ctx_errmsg(&s->ctx));
        return false;
    }
    char *before = tui_plan_snapshot(s);
    if (!before) {
        qb_plan_free(&p);
        return false;
    }
    push(s->undo, &s->n_undo, before);
    tui_plan_replace(s, &p);
    tui_status(s, false, "plan %s: %d rules", path, s->plan.n_rules);
    return tui_plan_run(s);
}

/* ---- base model (the same file opened a second time: the OS shares the mapping) ---- */

static bool need_base(tui_session *s, const char *what)
{
    if (s->demo || !s->m->tok || !s->m->layers) {
        tui_status(s, true, "%s needs a real model: the built-in demo has only synthetic tensors (:open PATH)", what);
        return false;
    }
    if (!s->base && qb_model_open(&s->ctx, s->m->path, NULL, &s->base) != QB_OK) {
        tui_status(s, true, "%s: %s", what, qb_ctx_errmsg(&s->ctx));
        return false;
    }
    return true;
}

/* ---- generation ---- */

typedef struct {
    const qb_model *model[2];
    qb_run_config *run; /* the plan side's (session's; NULL = float) */
    char *prompt; /* the text; each side tokenizes it through core's prompt pipeline */
    int n_predict;
    qb_job *job;
    int side;
} gen_arg;

static void gen_free(void *p)
{
    gen_arg *a = p;
    free(a->prompt);
    free(a);
}

static bool on_token(void *ud, int32_t prev, int32_t id)
{
    gen_arg *a = ud;
    char buf[128];
    size_t n = qb_token_to_bytes(a->model[a->side]->tok, prev, id, buf, sizeof buf - 1);
    if (n >= sizeof buf) n = sizeof buf - 1;
    buf[n] = 0;
    qb_msg m = {.tag = TUI_MSG_TOKEN, .i0 = a->side, .i1 = id, .text = strdup(buf)};
    qb_job_post(a->job, &m);
    return true;
}

static qb_status gen_run(qb_job *j, qb_ctx *ctx, void *p)
{
    gen_arg *a = p;
    a->job = j;
    for (a->side = 0; a->side < 2; a->side++) {
        qb_generate_opts o;
        qb_generate_defaults(&o);
        o.n_predict = a->n_predict;
        o.sampling = (qb_sampler_params){0.0f, 0, 1.0f, 42}; /* greedy, same seed: comparable */
        o.on_token = on_token;
        o.ud = a;
        o.cancel = qb_job_cancel_flag(j);
        o.run = a->side ? a->run : NULL;
        qb_generate_result r;
        qb_status st = qb_generate_text(ctx, a->model[a->side], a->prompt, strlen(a->prompt), &o, &r);
        qb_msg m = {.tag = TUI_MSG_GEN_SIDE_DONE, .i0 = a->side, .i1 = r.n_generated,
                    .d0 = r.gen_seconds > 0 ? r.n_generated / r.gen_seconds : 0};
        qb_generate_result_free(&r);
        if (st != QB_OK) return st;
        qb_job_post(j, &m);
        qb_job_progress(j, a->side + 1, 2);
    }
    return QB_OK;
}

bool tui_generate(tui_session *s, const char *prompt)
{
    if (!tui_task_idle(s, "generate") || !need_base(s, "generation")) return false;
    if (prompt && *prompt) snprintf(s->prompt, sizeof s->prompt, "%s", prompt);
    gen_arg *a = calloc(1, sizeof *a);
    if (!a || !(a->prompt = strdup(s->prompt))) {
        free(a);
        return false;
    }
    /* the prompt is checked here for an early message; the job feeds the same text to
       qb_generate_text (tokenize with the tokenizer's BOS policy, then sample) per side */
    int32_t *ids;
    int n_ids;
    if (qb_generate_prompt(&s->ctx, s->m, s->prompt, strlen(s->prompt), &ids, &n_ids) != QB_OK) {
        tui_status(s, true, "generate: %s", qb_ctx_errmsg(&s->ctx));
        gen_free(a);
        return false;
    }
    free(ids);
    a->model[0] = s->base;
    a->model[1] = s->m;
    a->run = s->run;
    a->n_predict = s->n_predict < TUI_GEN_MAX ? s->n_predict : TUI_GEN_MAX;
    memset(s->gen, 0, sizeof s->gen);
    s->gen[0].div_byte = s->gen[1].div_byte = -1;
    s->gen_shown = true;
    tui_status(s, false, "generating %d tokens after \"%s\" (base, then plan)", a->n_predict, s->prompt);
    return tui_task_start(s, JOB_GEN, "generate", gen_run, a, gen_free);
}

/* Record a streamed token; find the first position where the two continuations differ. */
static void gen_token(tui_session *s, int side, int32_t id, const char *text)
{
    tui_gen_side *g = &s->gen[side];
    if (g->n_ids >= TUI_GEN_MAX) return;
    int at = g->n_ids;
    size_t len = strlen(g->text), add = strlen(text);
    g->off[at] = (int)len;
    g->ids[g->n_ids++] = id;
    if (len + add < sizeof g->text) memcpy(g->text + len, text, add + 1);
    tui_gen_side *o = &s->gen[!side];
    if (g->div_byte < 0 && o->div_byte < 0 && at < o->n_ids && o->ids[at] != id) {
        g->div_byte = g->off[at];
        o->div_byte = o->off[at];
    }
}

/* ---- perplexity / KLD ---- */

typedef struct {
    const qb_model *base, *m;
    qb_run_config *run; /* m's (the session's; NULL = float) */
    char path[512];
    int chunks;
    char task_file[512]; /* "" = no task accuracy */
    int task_kind, task_n;
} ppl_arg;

/* What the job posts: the KLD result and, when a task file was set, the task accuracy. */
typedef struct {
    qb_kld_result kld;
    bool have_tasks;
    qb_tasks_result tasks;
} ppl_msg;

/* The task accuracy of a->m on its task file, as llama-perplexity scores it. */
static qb_status tasks_run(qb_job *j, qb_ctx *ctx, const ppl_arg *a, qb_tasks_result *out)
{
    qb_task_set ts;
    qb_status st = qb_tasks_read(ctx, (qb_tasks_kind)a->task_kind, a->task_file, &ts);
    if (st != QB_OK) return st;
    if ((st = qb_tasks_select(ctx, &ts, a->task_n)) == QB_OK) {
        qb_tasks_opts o = {.progress = progress_cb, .ud = j, .cancel = qb_job_cancel_flag(j), .run = a->run};
        st = qb_tasks_score(ctx, a->m, &ts, &o, out);
    }
    qb_tasks_free(&ts);
    return st;
}

static qb_status ppl_run(qb_job *j, qb_ctx *ctx, void *p)
{
    ppl_arg *a = p;
    int32_t *tok = NULL;
    int n = 0;
    qb_status st = qb_eval_load_text(ctx, a->m, a->path, &tok, &n);
    if (st != QB_OK) return st;
    ppl_msg *r = calloc(1, sizeof *r);
    if (!r) {
        free(tok);
        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    }
    qb_eval_opts o = {.n_ctx = 256, .n_chunks = a->chunks, .progress = progress_cb, .ud = j,
                      .cancel = qb_job_cancel_flag(j), .run = a->run};
    st = qb_eval_kld(ctx, a->base, a->m, tok, n, &o, &r->kld);
    free(tok);
    if (st == QB_OK && a->task_file[0]) {
        st = tasks_run(j, ctx, a, &r->tasks);
        r->have_tasks = st == QB_OK;
    }
    if (st != QB_OK) {
        free(r);
        return st;
    }
    qb_msg m = {.tag = TUI_MSG_PPL, .data = r, .free_data = free};
    qb_job_post(j, &m);
    return QB_OK;
}

bool tui_perplexity(tui_session *s, int chunks)
{
    if (!tui_task_idle(s, "perplexity") || !need_base(s, "perplexity")) return false;
    ppl_arg *a = calloc(1, sizeof *a);
    if (!a) return false;
    a->base = s->base;
    a->m = s->m;
    a->run = s->run;
    a->chunks = chunks > 0 ? chunks : s->eval_chunks;
    snprintf(a->path, sizeof a->path, "%s", s->eval_text);
    snprintf(a->task_file, sizeof a->task_file, "%s", s->task_file);
    a->task_kind = s->task_kind;
    a->task_n = s->task_n;
    tui_status(s, false, "perplexity + KLD against the base on %s (%d chunks of 256)%s%s", a->path, a->chunks,
               a->task_file[0] ? ", then tasks " : "", a->task_file);
    return tui_task_start(s, JOB_PPL, "ppl", ppl_run, a, free);
}

void tui_set_tasks(tui_session *s, const char *arg)
{
    char path[512] = "";
    int n = -1;
    if (sscanf(arg, "%511s %d", path, &n) < 1) {
        tui_status(s, true, "tasks: which file? (:tasks FILE [N], :tasks off)");
        return;
    }
    if (!strcmp(path, "off")) {
        s->task_file[0] = 0;
        tui_status(s, false, "tasks: off");
        return;
    }
    size_t len = strlen(path);
    bool csv = len > 4 && !strcmp(path + len - 4, ".csv"), bin = len > 4 && !strcmp(path + len - 4, ".bin");
    s->task_kind = csv ? QB_TASKS_WINOGRANDE : bin ? QB_TASKS_MC : QB_TASKS_HELLASWAG;
    s->task_n = n >= 0 ? n : qb_tasks_default_count((qb_tasks_kind)s->task_kind);
    snprintf(s->task_file, sizeof s->task_file, "%s", path);
    tui_status(s, false, "tasks: %s%s, scored after each :ppl: %s", qb_tasks_kind_name((qb_tasks_kind)s->task_kind),
               s->task_n > 0 ? " (drawn as llama-perplexity)" : "", path);
}

/* ---- export ---- */

typedef struct {
    const qb_model *m;
    qb_plan plan;
    qb_recipe recipe; /* plan + the session's calibration text, when a rule reads it */
    char path[1024];
} export_arg;

static void export_free(void *p)
{
    export_arg *a = p;
    qb_plan_free(&a->plan);
    free(a);
}

static qb_status export_run(qb_job *j, qb_ctx *ctx, void *p)
{
    export_arg *a = p;
    a->recipe.plan = &a->plan;
    return qb_export_gguf_recipe(ctx, a->m, a->path, &a->recipe, qb_job_cancel_flag(j));
}

bool tui_export(tui_session *s, const char *path)
{
    if (!tui_task_idle(s, "export")) return false;
    export_arg *a = calloc(1, sizeof *a);
    char *text = qb_plan_to_string(&s->plan);
    if (!a || !text || qb_plan_parse(&s->ctx, "plan", text, &a->plan) != QB_OK) {
        free(a);
        free(text);
        return false;
    }
    free(text);
    a->m = s->m;
    qb_recipe_from(&a->recipe, &a->plan, tui_plan_has_calib_rules(s) ? s->calib : NULL);
    qb_recipe_set_imatrix(&a->recipe, s->imatrix ? &s->importance : NULL); /* copied: the job may outlive it */
    snprintf(a->path, sizeof a->path, "%s", path);
    tui_status(s, false, "exporting to %s", path);
    return tui_task_start(s, JOB_EXPORT, "export", export_run, a, export_free);
}

bool tui_cancel(tui_session *s)
{
    if (!s->job) return false;
    qb_job_cancel(s->job);
    tui_status(s, false, "cancelling %s…", qb_job_name(s->job));
    return true;
}

static void job_done(tui_session *s, const qb_msg *m)
{
    char err[512];
    tui_job_kind kind = s->job_kind;
    const char *name = qb_job_name(s->job);
    char nm[48];
    snprintf(nm, sizeof nm, "%s", name);
    qb_status st = qb_job_join(s->job, err, sizeof err);
    s->job = NULL;
    s->job_kind = JOB_NONE;
    (void)m;
    if (kind == JOB_APPLY || kind == JOB_ACT || kind == JOB_TRAIN) tui_session_sync(s); /* joined: the model is ours again */
    if (kind == JOB_TRAIN) {
        tui_train_done(s, st, err);
        return;
    }
    if (kind == JOB_ACT) {
        if (st != QB_OK) tui_status(s, true, "act: %s", st == QB_ERR_CANCELLED ? "cancelled" : err);
        tui_act_done(s, st == QB_OK);
        return;
    }
    if (st == QB_ERR_CANCELLED) {
        if (kind == JOB_APPLY)
            tui_status(s, true, "apply cancelled: the model is as it was before (u undoes the plan change)");
        else if (kind == JOB_CALIB)
            tui_status(s, false, "calib cancelled; %s",
                       s->calib ? "the previous calibration stays" : "no calibration loaded");
        else tui_status(s, false, "%s cancelled", nm);
        return;
    }
    if (st != QB_OK) {
        tui_status(s, true, "%s: %s", nm, err);
        return;
    }
    switch (kind) {
    case JOB_APPLY:
    {
        char warn[300] = "";
        if (tui_plan_unmatched(s, warn + 11, sizeof warn - 11)) memcpy(warn, "; warning: ", 11);
        tui_status(s, false, "applied: model %.2f MiB at %.2f bpw (F16 %.2f MiB)%s", s->size.bytes / 1048576.0,
                   s->size.bpw, s->size.bytes_f16 / 1048576.0, warn);
        break;
    }
    case JOB_EXPORT: tui_status(s, false, "export finished"); break;
    case JOB_CALIB: tui_status(s, false, "calibrated: %s", s->calib_desc); break;
    case JOB_GEN: tui_status(s, false, "generation finished"); break;
    default: break;
    }
}

void tui_task_message(tui_session *s, const qb_msg *m)
{
    if (!s->job || m->job_id != qb_job_id(s->job)) return;
    switch (m->tag) {
    case QB_MSG_DONE: job_done(s, m); break;
    case TUI_MSG_TOKEN: gen_token(s, m->i0, m->i1, m->text ? m->text : ""); break;
    case TUI_MSG_GEN_SIDE_DONE:
        s->gen[m->i0].tps = m->d0;
        s->gen[m->i0].done = true;
        break;
    case TUI_MSG_PPL: {
        const ppl_msg *pm = m->data;
        const qb_kld_result *r = &pm->kld;
        s->eval = *r;
        s->have_eval = true;
        int len = snprintf(s->eval_line, sizeof s->eval_line,
                           "PPL base %.3f  plan %.3f (%+.3f)  KLD %.5f  top-1 %.1f%%  (%d chunks)", r->base.ppl,
                           r->other.ppl, r->dppl, r->kld_mean, r->top1_pct, r->other.n_chunks);
        if (pm->have_tasks && len > 0 && (size_t)len < sizeof s->eval_line)
            snprintf(s->eval_line + len, sizeof s->eval_line - (size_t)len, "  %s %.2f ± %.2f (%d tasks)",
                     qb_tasks_kind_name(pm->tasks.kind), pm->tasks.acc, pm->tasks.acc_err, pm->tasks.n_done);
        tui_status(s, false, "%s", s->eval_line);
        break;
    }
    case TUI_MSG_NOTE: tui_status(s, false, "%s", m->text ? m->text : ""); break;
    case TUI_MSG_CALIB: tui_calib_adopt(s, m); break;
    case TUI_MSG_TRAIN: tui_train_step(s, m); break;
    case TUI_MSG_TRAIN_AN: tui_train_analysis(s, m); break;
    }
}
