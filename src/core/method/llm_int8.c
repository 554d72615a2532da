/* llm_int8.c — switching a model to LLM.int8() and reading its outlier counters
 * (llm_int8.h); the multiplication itself is infer/matmul_w8a8.c. */
#include "llm_int8.h"
#include "smoothquant.h"
#include "../quant/apply.h"

#include <math.h>
#include <stdio.h>

qb_status qb_llm_int8_apply(qb_ctx *ctx, qb_model *m, qb_run_config *rc, float threshold)
{
    if (!(threshold >= 0.0f))
        return qb_fail(ctx, QB_ERR_ARG, "LLM.int8 outlier threshold %g must be >= 0", (double)threshold);
    if (!rc || rc->n_tensors != m->n_tensors)
        return qb_fail(ctx, QB_ERR_ARG, "LLM.int8 needs a run configuration made for this model");
    if (!qb_model_blocks_plain(m))
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: LLM.int8 needs separate q/k/v and gate/up/down matrices in "
                       "every block; this %s model has %s", m->path, qb_arch_get(m->cfg.arch)->gguf,
                       m->cfg.n_experts ? "experts" : "fused matrices");
    qb_run_config_reset_counts(rc);
    qb_format int8ch = {.kind = QB_FMT_INT, .bits = 8, .group = QB_GROUP_CHANNEL};
    for (int l = 0; l < m->cfg.n_layers; l++) {
        qb_layer_weights *L = &m->layers[l];
        qb_status st = qb_tensor_restore(ctx, L->attn_norm);
        if (st == QB_OK) st = qb_tensor_restore(ctx, L->ffn_norm);
        qb_tensor *ts[] = {L->wq, L->wk, L->wv, L->wo, L->w_gate, L->w_up, L->w_down};
        for (int i = 0; i < 7 && st == QB_OK; i++) {
            st = qb_tensor_quantize(ctx, ts[i], &int8ch, NULL);
            *qb_run_config_act_mut(rc, m, ts[i]) = (qb_act_setting){.mode = QB_ACT_INT8_OUTLIER, .threshold = threshold};
        }
        if (st != QB_OK) {
            qb_status keep = st;
            char why[sizeof ctx->errmsg];
            snprintf(why, sizeof why, "%s", ctx->errmsg);
            qb_w8a8_clear(ctx, m, rc);
            return qb_fail(ctx, keep, "%s", why);
        }
    }
    return QB_OK;
}

void qb_llm_int8_fractions(const qb_run_config *rc, const qb_model *m, int l, double out[4])
{
    const qb_layer_weights *L = &m->layers[l];
    const qb_tensor *ts[4] = {L->wq, L->wo, L->w_gate, L->w_down};
    for (int i = 0; i < 4; i++) {
        const qb_act_setting *a = qb_run_config_act(rc, m, ts[i]);
        qb_act_counts c = a ? qb_run_config_counts(rc, (int)(ts[i] - m->tensors)) : (qb_act_counts){0, 0};
        out[i] = a && a->mode == QB_ACT_INT8_OUTLIER && c.seen > 0 ? (double)c.outlier / (double)c.seen : -1.0;
    }
}

void qb_llm_int8_reset(qb_run_config *rc) { qb_run_config_reset_counts(rc); }
