/* llm_int8.c — switching a model to LLM.int8() and reading its outlier counters
 * (llm_int8.h); the multiplication itself is infer/matmul_w8a8.c. */
#include "llm_int8.h"
#include "smoothquant.h"
#include "../quant/apply.h"

#include <math.h>
#include <stdio.h>

qb_status qb_llm_int8_apply(qb_ctx *ctx, qb_model *m, float threshold)
{
    if (!(threshold >= 0.0f))
        return qb_fail(ctx, QB_ERR_ARG, "LLM.int8 outlier threshold %g must be >= 0", (double)threshold);
    qb_format int8ch = {.kind = QB_FMT_INT, .bits = 8, .group = QB_GROUP_CHANNEL};
    for (int l = 0; l < m->cfg.n_layers; l++) {
        qb_layer_weights *L = &m->layers[l];
        qb_status st = qb_tensor_restore(ctx, L->attn_norm);
        if (st == QB_OK) st = qb_tensor_restore(ctx, L->ffn_norm);
        qb_tensor *ts[] = {L->wq, L->wk, L->wv, L->wo, L->w_gate, L->w_up, L->w_down};
        for (int i = 0; i < 7 && st == QB_OK; i++) {
            st = qb_tensor_quantize(ctx, ts[i], &int8ch, NULL);
            ts[i]->act_mode = QB_ACT_INT8_OUTLIER;
            ts[i]->act_threshold = threshold;
            ts[i]->act_scale = 0;
            ts[i]->act_cols_seen = ts[i]->act_cols_outlier = 0;
        }
        if (st != QB_OK) {
            qb_status keep = st;
            char why[sizeof ctx->errmsg];
            snprintf(why, sizeof why, "%s", ctx->errmsg);
            qb_w8a8_clear(ctx, m);
            return qb_fail(ctx, keep, "%s", why);
        }
    }
    return QB_OK;
}

void qb_llm_int8_fractions(const qb_model *m, int l, double out[4])
{
    const qb_layer_weights *L = &m->layers[l];
    const qb_tensor *ts[4] = {L->wq, L->wo, L->w_gate, L->w_down};
    for (int i = 0; i < 4; i++)
        out[i] = ts[i]->act_mode == QB_ACT_INT8_OUTLIER && ts[i]->act_cols_seen > 0
                     ? (double)ts[i]->act_cols_outlier / (double)ts[i]->act_cols_seen
                     : -1.0;
}

void qb_llm_int8_reset(qb_model *m)
{
    for (int l = 0; l < m->cfg.n_layers; l++) {
        qb_layer_weights *L = &m->layers[l];
        qb_tensor *ts[] = {L->wq, L->wk, L->wv, L->wo, L->w_gate, L->w_up, L->w_down};
        for (int i = 0; i < 7; i++) ts[i]->act_cols_seen = ts[i]->act_cols_outlier = 0;
    }
}
