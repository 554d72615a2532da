/* plan_apply.c — bringing a model to a plan whose rules carry methods, in one staged call
 * (plan_apply.h): targets per tensor, groups by (method, parameters), every group computed
 * into one staging area, installed only when all succeeded. */
#include "plan_apply.h"
#include "method_stage.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct qb_apply_state {
    int n_tensors;
    qb_method_spec *spec; /* (n_tensors) the method that made each tensor's representation */
    bool *known;          /* (n_tensors) false: made by something else, redo it */
    bool awq;             /* AWQ scales are folded into the model */
    char imatrix[330];    /* the importance the tensors were made with (path and sha256), "" none */
};

qb_status qb_apply_state_new(qb_ctx *ctx, const qb_model *m, qb_apply_state **out)
{
    qb_apply_state *s = calloc(1, sizeof *s);
    if (s) {
        s->n_tensors = m->n_tensors;
        s->spec = calloc((size_t)m->n_tensors + 1, sizeof *s->spec);
        s->known = malloc(((size_t)m->n_tensors + 1) * sizeof *s->known);
    }
    if (!s || !s->spec || !s->known) {
        qb_apply_state_free(s);
        *out = NULL;
        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < m->n_tensors; i++) s->known[i] = true; /* as loaded: RTN of the original */
    *out = s;
    return QB_OK;
}

void qb_apply_state_free(qb_apply_state *s)
{
    if (!s) return;
    free(s->spec);
    free(s->known);
    free(s);
}

void qb_apply_state_forget(qb_apply_state *s, int i)
{
    if (s && i >= 0 && i < s->n_tensors) s->known[i] = false;
    if (s) s->awq = false; /* whatever replaced the tensor also replaced AWQ's folds there */
}

bool qb_apply_state_awq(const qb_apply_state *s) { return s && s->awq; }

void qb_recipe_from(qb_recipe *r, const qb_plan *p, const qb_calib *cal)
{
    qb_recipe_init(r, p);
    if (!cal || !cal->text_name[0]) return;
    snprintf(r->info.calib_file, sizeof r->info.calib_file, "%s", cal->text_name);
    r->info.calib_bytes = cal->text_bytes;
    snprintf(r->info.calib_sha256, sizeof r->info.calib_sha256, "%s", cal->text_sha256);
    r->info.calib_windows = cal->n_windows;
    r->info.calib_ctx = cal->n_ctx;
}

/* ---- one apply ---- */

typedef struct {
    qb_ctx *ctx;
    qb_model *m;
    const qb_plan *p;
    qb_plan_apply_opts *o;
    int *rule;       /* (n_tensors) target rule, -1: none */
    bool *redo;      /* (n_tensors) computed by this call */
    qb_staged *stg;  /* (n_tensors) */
    int done, total;
    bool awq_staged;
    bool imatrix_changed; /* the state's tensors were made with another importance (or none) */
    char imatrix[330];    /* this call's importance: path and sha256, "" none */
} apply_job;

static const qb_method_spec RTN_SPEC = {QB_METHOD_RTN, 0, {0}};

static bool is_original(const qb_tensor *t)
{
    qb_format orig = qb_format_ggml(t->src_type);
    return qb_format_equal(&t->fmt, &orig);
}

/* Which tensors this call computes; true when the state asks for a rebuild. */
static bool choose(apply_job *A)
{
    const qb_model *m = A->m;
    const qb_apply_state *S = A->o->state;
    bool awq_redo = false, other_redo = false;
    for (int i = 0; i < m->n_tensors; i++) {
        const qb_tensor *t = &m->tensors[i];
        A->rule[i] = qb_tensor_quantizable(t) ? qb_plan_lookup_rule(A->p, t->name) : -1;
        if (!qb_tensor_quantizable(t)) continue;
        if (A->rule[i] < 0) {
            A->redo[i] = S && (!S->known[i] || !is_original(t) || !qb_method_spec_equal(&S->spec[i], &RTN_SPEC));
        } else {
            const qb_plan_rule *r = &A->p->rules[A->rule[i]];
            A->redo[i] = !S || !S->known[i] || !qb_format_equal(&r->fmt, &t->fmt) ||
                         !qb_method_spec_equal(&r->method, &S->spec[i]);
        }
        if (A->imatrix_changed && A->rule[i] >= 0) A->redo[i] = true; /* weighted with another importance */
        if (A->redo[i] && A->rule[i] >= 0 && A->p->rules[A->rule[i]].method.kind == QB_METHOD_AWQ) awq_redo = true;
        else if (A->redo[i]) other_redo = true;
    }
    if (!S || !(awq_redo || other_redo) || !(S->awq || (awq_redo && other_redo))) return false;
    for (int i = 0; i < m->n_tensors; i++) A->redo[i] = qb_tensor_quantizable(&m->tensors[i]);
    return true;
}

/* Tensors going back to their originals: no rule (state mode), or RTN to the type they were
 * loaded in (the original bytes, as qb_tensor_quantize gives them). */
static void stage_restores(apply_job *A)
{
    for (int i = 0; i < A->m->n_tensors; i++) {
        if (!A->redo[i]) continue;
        const qb_tensor *t = &A->m->tensors[i];
        const qb_plan_rule *r = A->rule[i] >= 0 ? &A->p->rules[A->rule[i]] : NULL;
        qb_format orig = qb_format_ggml(t->src_type);
        if (r && (r->method.kind != QB_METHOD_RTN || !qb_format_equal(&r->fmt, &orig))) continue;
        A->stg[i] = (qb_staged){.fmt = orig, .set = true, .restore = true};
        A->done++;
    }
}

static qb_status check_calib(apply_job *A, const qb_calib *cal)
{
    if (cal) return QB_OK;
    for (int i = 0; i < A->m->n_tensors; i++)
        if (A->redo[i] && A->rule[i] >= 0 && qb_method_spec_needs_calib(&A->p->rules[A->rule[i]].method)) {
            const qb_plan_rule *r = &A->p->rules[A->rule[i]];
            return qb_fail(A->ctx, QB_ERR_ARG, "plan rule %d '%s' uses %s, which needs calibration data, and none "
                           "was given", A->rule[i] + 1, r->pattern, qb_plan_method_name(r->method.kind));
        }
    return QB_OK;
}

/* One group: the tensors still to compute whose rule has method spec, through its method. */
static qb_status run_group(apply_job *A, const qb_method_spec *spec, const qb_calib *cal)
{
    qb_plan sub;
    qb_plan_init(&sub);
    qb_status st = QB_OK;
    for (int i = 0; i < A->m->n_tensors && st == QB_OK; i++) {
        if (!A->redo[i] || A->stg[i].restore || A->rule[i] < 0) continue;
        const qb_plan_rule *r = &A->p->rules[A->rule[i]];
        if (qb_method_spec_equal(&r->method, spec))
            st = qb_plan_add(A->ctx, &sub, A->m->tensors[i].name, &r->fmt);
    }
    if (st == QB_OK && sub.n_rules > 0) {
        qb_method meth;
        st = qb_method_from_spec(A->ctx, spec, &meth);
        qb_method_opts mo = {A->o->progress, A->o->ud, A->o->cancel, NULL, A->o->imatrix, NULL};
        if (st == QB_OK) st = qb_method_stage(A->ctx, A->m, &sub, A->p, &meth, cal, &mo, A->stg, &A->done, A->total);
        if (st == QB_OK && spec->kind == QB_METHOD_AWQ) A->awq_staged = true;
    }
    qb_plan_free(&sub);
    return st;
}

/* Every distinct (method, parameters) among the rules, RTN first, then GPTQ, then AWQ. */
static qb_status run_groups(apply_job *A, const qb_calib *cal)
{
    const qb_plan *p = A->p;
    for (int kind = 0; kind < QB_METHOD_COUNT; kind++)
        for (int k = 0; k < p->n_rules; k++) {
            const qb_method_spec *spec = &p->rules[k].method;
            if ((int)spec->kind != kind) continue;
            bool seen = false;
            for (int j = 0; j < k && !seen; j++) seen = qb_method_spec_equal(&p->rules[j].method, spec);
            if (seen) continue;
            if (A->o->cancel && *A->o->cancel) return qb_fail(A->ctx, QB_ERR_CANCELLED, "quantization cancelled");
            qb_status st = run_group(A, spec, cal);
            if (st != QB_OK) return st;
        }
    return QB_OK;
}

static void update_state(apply_job *A, bool rebuild)
{
    qb_apply_state *S = A->o->state;
    if (!S) return;
    for (int i = 0; i < A->m->n_tensors; i++) {
        if (!A->stg[i].set || !qb_tensor_quantizable(&A->m->tensors[i])) continue;
        S->spec[i] = A->rule[i] >= 0 ? A->p->rules[A->rule[i]].method : RTN_SPEC;
        S->known[i] = true;
    }
    S->awq = A->awq_staged || (!rebuild && S->awq);
    memcpy(S->imatrix, A->imatrix, sizeof S->imatrix);
}

qb_status qb_plan_apply(qb_ctx *ctx, qb_model *m, const qb_plan *p, const qb_calib *cal, qb_plan_apply_opts *o)
{
    qb_plan_apply_opts none = {0};
    if (!o) o = &none;
    o->n_redone = 0;
    if (o->state && o->state->n_tensors != m->n_tensors)
        return qb_fail(ctx, QB_ERR_ARG, "apply: the state was made for another model");
    char msg[400];
    if (!o->allow_unmatched && qb_plan_unmatched(p, m, 0, msg, sizeof msg) >= 0)
        return qb_fail(ctx, QB_ERR_ARG, "%s", msg);
    size_t n = (size_t)m->n_tensors + 1;
    apply_job A = {.ctx = ctx, .m = m, .p = p, .o = o, .rule = malloc(n * sizeof *A.rule),
                   .redo = calloc(n, sizeof *A.redo), .stg = calloc(n, sizeof *A.stg)};
    qb_status st = A.rule && A.redo && A.stg ? QB_OK : qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    bool rebuild = false;
    if (o->imatrix) snprintf(A.imatrix, sizeof A.imatrix, "%s %s", o->imatrix->path ? o->imatrix->path : "", o->imatrix->sha256);
    A.imatrix_changed = o->state && strcmp(o->state->imatrix, A.imatrix) != 0;
    if (st == QB_OK) {
        rebuild = choose(&A);
        for (int i = 0; i < m->n_tensors; i++) A.total += A.redo[i];
        st = check_calib(&A, cal);
    }
    if (st == QB_OK) {
        stage_restores(&A);
        st = run_groups(&A, cal);
    }
    if (st == QB_OK && o->cancel && *o->cancel) st = qb_fail(ctx, QB_ERR_CANCELLED, "quantization cancelled");
    if (st == QB_OK) st = qb_staged_install(ctx, m, A.stg);
    if (st == QB_OK) {
        update_state(&A, rebuild);
        for (int i = 0; i < m->n_tensors; i++) o->n_redone += A.stg[i].set && qb_tensor_quantizable(&m->tensors[i]);
    }
    if (A.stg) qb_staged_free(m, A.stg);
    free(A.rule);
    free(A.redo);
    free(A.stg);
#ifdef __GLIBC__
    malloc_trim(0); /* hand the f32 scratch back to the system: memory should show the packed size */
#endif
    return st;
}
