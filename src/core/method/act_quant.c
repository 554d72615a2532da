/* act_quant.c — the front ends' one call for activation / KV-cache settings (act_quant.h). */
#include "act_quant.h"
#include "smoothquant.h"
#include "llm_int8.h"
#include "../infer/kvcache.h"
#include "../calib/calib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void qb_act_opts_init(qb_act_opts *o)
{
    memset(o, 0, sizeof *o);
    o->alpha = 0.5f;
    o->threshold = QB_LLM_INT8_DEFAULT_THRESHOLD;
}

qb_status qb_act_apply(qb_ctx *ctx, qb_model *m, qb_run_config *rc, const qb_act_opts *o)
{
    if (!rc || rc->n_tensors != m->n_tensors)
        return qb_fail(ctx, QB_ERR_ARG, "activation settings need a run configuration made for this model");
    int kv = rc->kv_type, mode = QB_ACT_FLOAT;
    if (o->kv && *o->kv && qb_kv_type_parse(ctx, o->kv, &kv) != QB_OK) return QB_ERR_ARG;
    if (o->act && *o->act) {
        if (!strcmp(o->act, "int8")) mode = QB_ACT_INT8;
        else if (!strcmp(o->act, "int8-static")) mode = QB_ACT_INT8_STATIC;
        else return qb_fail(ctx, QB_ERR_ARG, "unknown activation type '%s' (int8, int8-static)", o->act);
    }
    if (o->int8_outlier && (mode == QB_ACT_INT8_STATIC || o->smooth))
        return qb_fail(ctx, QB_ERR_ARG, "LLM.int8 decides outliers per batch: not with static scales or SmoothQuant");
    if (o->int8_outlier && !(o->threshold >= 0))
        return qb_fail(ctx, QB_ERR_ARG, "LLM.int8 outlier threshold %g must be >= 0", (double)o->threshold);
    if (o->smooth && !(o->alpha >= 0 && o->alpha <= 1))
        return qb_fail(ctx, QB_ERR_ARG, "SmoothQuant alpha %g out of range [0, 1]", (double)o->alpha);
    if (o->smooth && mode == QB_ACT_FLOAT && !o->int8_outlier) mode = QB_ACT_INT8;
    bool need_calib = !o->int8_outlier && (o->smooth || mode == QB_ACT_INT8_STATIC);
    if (need_calib && !o->calib && !(o->calib_path && *o->calib_path))
        return qb_fail(ctx, QB_ERR_ARG, "%s needs a calibration text", o->smooth ? "SmoothQuant" : "int8-static");
    qb_status st = QB_OK;
    if (o->int8_outlier) {
        st = qb_llm_int8_apply(ctx, m, rc, o->threshold);
    } else if (mode != QB_ACT_FLOAT) {
        qb_calib *own = NULL;
        const qb_calib *cal = o->calib;
        if (need_calib && !cal) {
            /* absmax only: no XᵀX */
            qb_calib_opts co = {.n_ctx = o->calib_ctx > 0 ? o->calib_ctx : 256,
                                .n_samples = o->calib_windows > 0 ? o->calib_windows : 32,
                                .cancel = o->cancel};
            st = qb_calib_run_file(ctx, m, o->calib_path, &co, &own);
            cal = own;
        }
        qb_smoothquant_opts so = {.smooth = o->smooth, .alpha = o->alpha, .smooth_out = o->smooth_out, .act_mode = mode};
        if (st == QB_OK) st = qb_smoothquant_apply(ctx, m, rc, need_calib ? cal : NULL, &so);
        qb_calib_free(own);
    }
    if (st == QB_OK) rc->kv_type = kv;
    return st;
}
