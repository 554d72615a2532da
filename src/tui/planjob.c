/* planjob.c — plan + methods, their snapshots, and the apply job (planjob.h). */
#include "planjob.h"
#include "tasks.h"

#include "core/method/fold.h"
#include "core/method/method.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#define METHODS_TAG "# tui methods: "

static qb_method_kind kind_of(char c) { return c == 'g' ? QB_METHOD_GPTQ : c == 'a' ? QB_METHOD_AWQ : QB_METHOD_RTN; }
static char rule_method(const tui_session *s, int k) { return s->rule_method ? s->rule_method[k] : 'r'; }

char *tui_plan_snapshot(const tui_session *s)
{
    char *plan = qb_plan_to_string(&s->plan);
    if (!plan) return NULL;
    size_t n = (size_t)s->plan.n_rules, len = strlen(plan);
    char *out = malloc(sizeof METHODS_TAG + n + 1 + len + 1);
    if (out) {
        memcpy(out, METHODS_TAG, sizeof METHODS_TAG - 1);
        char *p = out + sizeof METHODS_TAG - 1;
        for (size_t k = 0; k < n; k++) *p++ = rule_method(s, (int)k);
        *p++ = '\n';
        memcpy(p, plan, len + 1);
    }
    free(plan);
    return out;
}

void tui_plan_replace(tui_session *s, qb_plan *p)
{
    qb_plan_free(&s->plan);
    s->plan = *p;
    free(s->rule_method);
    s->rule_method = NULL;
}

bool tui_plan_restore(tui_session *s, const char *text, const char *what)
{
    qb_plan p;
    if (qb_plan_parse(&s->ctx, what, text, &p) != QB_OK) {
        tui_status(s, true, "%s: %s", what, qb_ctx_errmsg(&s->ctx));
        return false;
    }
    char *meth = NULL;
    const char *tag = strstr(text, METHODS_TAG);
    if (tag && p.n_rules > 0 && (meth = malloc((size_t)p.n_rules))) {
        tag += sizeof METHODS_TAG - 1;
        for (int k = 0; k < p.n_rules; k++) meth[k] = tag[k] == 'g' || tag[k] == 'a' ? tag[k] : 'r';
    }
    tui_plan_replace(s, &p);
    s->rule_method = meth;
    return true;
}

bool tui_plan_add_rule(tui_session *s, const char *pattern, const qb_format *f, char method)
{
    int n = s->plan.n_rules;
    char *meth = realloc(s->rule_method, (size_t)n + 1);
    if (!meth) {
        tui_status(s, true, "apply: out of memory");
        return false;
    }
    if (!s->rule_method) memset(meth, 'r', (size_t)n);
    s->rule_method = meth;
    if (qb_plan_add(&s->ctx, &s->plan, pattern, f) != QB_OK) {
        tui_status(s, true, "apply: %s", qb_ctx_errmsg(&s->ctx));
        return false;
    }
    meth[n] = method;
    return true;
}

bool tui_plan_has_calib_rules(const tui_session *s)
{
    for (int k = 0; k < s->plan.n_rules; k++)
        if (rule_method(s, k) != 'r') return true;
    return false;
}

/* ---- the job ---- */

typedef struct {
    qb_model *m;
    const qb_calib *cal;     /* borrowed: :calib waits for this job */
    qb_plan plan;            /* copy */
    char *meth;              /* per rule (copy) */
    unsigned char *tmethod;  /* the session's, written here; read by the UI only after the join */
    bool *awq;               /* likewise */
    qb_job *job;
    int done, total;         /* tensors redone so far / to redo */
} plan_arg;

static void plan_arg_free(void *p)
{
    plan_arg *a = p;
    qb_plan_free(&a->plan);
    free(a->meth);
    free(a);
}

static int last_rule(const qb_plan *p, const char *name)
{
    for (int k = p->n_rules - 1; k >= 0; k--)
        if (fnmatch(p->rules[k].pattern, name, 0) == 0) return k;
    return -1;
}

static void method_progress(void *ud, int done, int total)
{
    plan_arg *a = ud;
    (void)total;
    qb_job_progress(a->job, a->done + done, a->total);
}

/* One core call for the tensors marked redo[] whose target method is kind. */
static qb_status run_method(qb_ctx *ctx, plan_arg *a, const int *rule, const bool *redo, qb_method_kind kind)
{
    qb_plan sub;
    qb_plan_init(&sub);
    qb_status st = QB_OK;
    int n = 0;
    for (int i = 0; i < a->m->n_tensors && st == QB_OK; i++)
        if (redo[i] && rule[i] >= 0 && kind_of(a->meth[rule[i]]) == kind) {
            st = qb_plan_add(ctx, &sub, a->m->tensors[i].name, &a->plan.rules[rule[i]].fmt);
            n++;
        }
    if (st == QB_OK && n > 0) {
        qb_method meth;
        qb_method_parse(ctx, qb_method_name(kind), &meth);
        qb_method_opts o = {method_progress, a, qb_job_cancel_flag(a->job), NULL};
        st = qb_model_apply_method(ctx, a->m, &sub, &meth, a->cal, &o);
        if (st == QB_OK) {
            for (int i = 0; i < a->m->n_tensors; i++)
                if (redo[i] && rule[i] >= 0 && kind_of(a->meth[rule[i]]) == kind) a->tmethod[i] = (unsigned char)kind;
            if (kind == QB_METHOD_AWQ) *a->awq = true;
            a->done += n;
        }
    }
    qb_plan_free(&sub);
    return st;
}

/* RTN targets and tensors no rule names any more, one at a time. */
static qb_status run_rtn(qb_ctx *ctx, plan_arg *a, const int *rule, const bool *redo)
{
    for (int i = 0; i < a->m->n_tensors; i++) {
        if (!redo[i] || (rule[i] >= 0 && kind_of(a->meth[rule[i]]) != QB_METHOD_RTN)) continue;
        if (qb_job_cancelled(a->job)) return qb_fail(ctx, QB_ERR_CANCELLED, "quantization cancelled");
        qb_tensor *t = &a->m->tensors[i];
        qb_format orig = qb_format_ggml(t->src_type);
        qb_status st = QB_OK;
        if (a->tmethod[i] != QB_METHOD_RTN || rule[i] < 0) st = qb_tensor_restore(ctx, t);
        a->tmethod[i] = QB_METHOD_RTN;
        const qb_format *f = rule[i] >= 0 ? &a->plan.rules[rule[i]].fmt : &orig;
        if (st == QB_OK && !qb_format_equal(f, &t->fmt)) st = qb_tensor_quantize(ctx, t, f, qb_job_cancel_flag(a->job));
        if (st != QB_OK) return st;
        qb_job_progress(a->job, ++a->done, a->total);
    }
    return QB_OK;
}

static qb_status plan_run(qb_job *j, qb_ctx *ctx, void *p)
{
    plan_arg *a = p;
    a->job = j;
    qb_model *m = a->m;
    int *rule = malloc((size_t)m->n_tensors * sizeof *rule);
    bool *redo = calloc((size_t)m->n_tensors, sizeof *redo);
    if (!rule || !redo) {
        free(rule);
        free(redo);
        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    }
    bool awq_change = false, other_change = false;
    for (int i = 0; i < m->n_tensors; i++) {
        qb_tensor *t = &m->tensors[i];
        rule[i] = qb_tensor_quantizable(t) ? last_rule(&a->plan, t->name) : -1;
        if (!qb_tensor_quantizable(t)) continue;
        if (rule[i] < 0) {
            qb_format orig = qb_format_ggml(t->src_type);
            redo[i] = !qb_format_equal(&t->fmt, &orig) || a->tmethod[i] != QB_METHOD_RTN;
        } else {
            redo[i] = !qb_format_equal(&t->fmt, &a->plan.rules[rule[i]].fmt) ||
                      a->tmethod[i] != kind_of(a->meth[rule[i]]);
        }
        if (redo[i] && rule[i] >= 0 && a->meth[rule[i]] == 'a') awq_change = true;
        else if (redo[i]) other_change = true;
    }
    qb_status st = QB_OK;
    if ((awq_change || other_change) && (*a->awq || (awq_change && other_change))) {
        /* AWQ's folds reach beyond its tensors: rebuild everything from the originals */
        st = qb_fold_reset(ctx, m);
        *a->awq = false;
        for (int i = 0; i < m->n_tensors; i++) {
            a->tmethod[i] = QB_METHOD_RTN;
            redo[i] = rule[i] >= 0;
        }
    }
    a->total = 0;
    for (int i = 0; i < m->n_tensors; i++) a->total += redo[i];
    if (st == QB_OK) st = run_rtn(ctx, a, rule, redo);
    if (st == QB_OK) st = run_method(ctx, a, rule, redo, QB_METHOD_GPTQ);
    if (st == QB_OK) st = run_method(ctx, a, rule, redo, QB_METHOD_AWQ);
    free(rule);
    free(redo);
    return st;
}

bool tui_plan_run(tui_session *s)
{
    plan_arg *a = calloc(1, sizeof *a);
    char *text = qb_plan_to_string(&s->plan);
    int n = s->plan.n_rules;
    if (!a || !text || !(a->meth = malloc((size_t)n + 1)) || qb_plan_parse(&s->ctx, "plan", text, &a->plan) != QB_OK) {
        if (a) free(a->meth);
        free(a);
        free(text);
        tui_status(s, true, "apply: %s", s->ctx.errmsg[0] ? qb_ctx_errmsg(&s->ctx) : "out of memory");
        return false;
    }
    free(text);
    for (int k = 0; k < n; k++) a->meth[k] = rule_method(s, k);
    if (tui_plan_has_calib_rules(s) && !s->calib) {
        plan_arg_free(a);
        tui_status(s, true, "apply: the plan has GPTQ/AWQ rules and there is no calibration (:calib FILE)");
        return false;
    }
    a->m = s->m;
    a->cal = s->calib;
    a->tmethod = s->tmethod;
    a->awq = &s->awq_folded;
    return tui_task_start(s, JOB_APPLY, "apply", plan_run, a, plan_arg_free);
}
