/* runcfg.c — the caller-owned run configuration: per-tensor activation settings, KV type and
 * atomic LLM.int8() counters (runcfg.h). */
#include "runcfg.h"

#include <stdlib.h>
#include <string.h>

qb_status qb_run_config_new(qb_ctx *ctx, const qb_model *m, qb_run_config **out)
{
    *out = NULL;
    qb_run_config *rc = calloc(1, sizeof *rc);
    int n = m->n_tensors > 0 ? m->n_tensors : 1;
    if (rc) {
        rc->act = calloc((size_t)n, sizeof *rc->act);
        rc->counts = calloc((size_t)n, sizeof *rc->counts);
    }
    if (!rc || !rc->act || !rc->counts) {
        qb_run_config_free(rc);
        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory for a run configuration");
    }
    rc->n_tensors = m->n_tensors;
    *out = rc;
    return QB_OK;
}

void qb_run_config_free(qb_run_config *rc)
{
    if (!rc) return;
    free(rc->act);
    free(rc->counts);
    free(rc);
}

static int index_of(const qb_run_config *rc, const qb_model *m, const qb_tensor *t)
{
    if (!rc || !t || t < m->tensors || t >= m->tensors + m->n_tensors) return -1;
    int i = (int)(t - m->tensors);
    return i < rc->n_tensors ? i : -1;
}

const qb_act_setting *qb_run_config_act(const qb_run_config *rc, const qb_model *m, const qb_tensor *t)
{
    int i = index_of(rc, m, t);
    return i < 0 ? NULL : &rc->act[i];
}

qb_act_setting *qb_run_config_act_mut(qb_run_config *rc, const qb_model *m, const qb_tensor *t)
{
    int i = index_of(rc, m, t);
    return i < 0 ? NULL : &rc->act[i];
}

bool qb_run_config_any_act(const qb_run_config *rc)
{
    if (!rc) return false;
    for (int i = 0; i < rc->n_tensors; i++)
        if (rc->act[i].mode != QB_ACT_FLOAT) return true;
    return false;
}

void qb_run_config_clear_act(qb_run_config *rc)
{
    if (!rc) return;
    memset(rc->act, 0, (size_t)rc->n_tensors * sizeof *rc->act);
    qb_run_config_reset_counts(rc);
}

void qb_run_config_count(qb_run_config *rc, int i, int64_t seen, int64_t outlier)
{
    if (!rc || i < 0 || i >= rc->n_tensors) return;
    __atomic_fetch_add(&rc->counts[i].seen, seen, __ATOMIC_RELAXED);
    __atomic_fetch_add(&rc->counts[i].outlier, outlier, __ATOMIC_RELAXED);
}

qb_act_counts qb_run_config_counts(const qb_run_config *rc, int i)
{
    qb_act_counts c = {0, 0};
    if (!rc || i < 0 || i >= rc->n_tensors) return c;
    c.seen = __atomic_load_n(&rc->counts[i].seen, __ATOMIC_RELAXED);
    c.outlier = __atomic_load_n(&rc->counts[i].outlier, __ATOMIC_RELAXED);
    return c;
}

void qb_run_config_reset_counts(qb_run_config *rc)
{
    if (!rc) return;
    memset(rc->counts, 0, (size_t)rc->n_tensors * sizeof *rc->counts);
}
