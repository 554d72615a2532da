/* act_quant.h — one entry point for the front ends (CLI, Lua, TUI) to the activation-side
 * settings of a loaded model: W8A8 with dynamic or static int8 activations, SmoothQuant,
 * LLM.int8() and the KV-cache type, described as plain data and applied in one call. The
 * weights they change live in the model; how activations and the KV cache run lives in a
 * run configuration (infer/runcfg.h) the caller owns and passes to the evaluations. */
#ifndef QB_ACT_QUANT_H
#define QB_ACT_QUANT_H

#include "../model/model.h"
#include "../infer/runcfg.h"

typedef struct {
    const char *act;        /* NULL or "" (leave activations float), "int8" (dynamic per
                               token), "int8-static" (per-tensor scales from calibration) */
    bool smooth;            /* SmoothQuant before W8A8 (needs act) */
    float alpha;            /* its migration strength, 0..1 */
    bool smooth_out;        /* also smooth wo / w_down inputs through wv / w_up */
    bool int8_outlier;      /* LLM.int8() instead (act must be NULL, "" or "int8") */
    float threshold;        /* its outlier threshold (>= 0; INFINITY = none) */
    const char *kv;         /* NULL, "f32", "int8", "int4": KV cache of run states made later */
    const char *calib_path; /* calibration text (needed by smooth and int8-static) ... */
    const struct qb_calib *calib; /* ... or a calibration already run on this model (e.g. the
                                     one GPTQ/AWQ used): reused, no second pass; wins over
                                     calib_path */
    int calib_ctx;          /* window length (0 = 256) */
    int calib_windows;      /* windows (0 = 32) */
    const volatile int *cancel;
} qb_act_opts;

/* Defaults: nothing changed, alpha 0.5, threshold 6.0, calibration 32 windows of 256. */
void qb_act_opts_init(qb_act_opts *o);

/* Apply o to m and rc, a run configuration made for m (qb_run_config_new): weights and norms
 * in m, activation settings and the KV type in rc (calibrating on o->calib_path first when
 * needed and o->calib is NULL: one qb_calib_run without XᵀX). Errors, with the model left
 * as loaded: rc NULL or made for another model, unknown act / kv names, smoothing or static scales without a calibration (text or result),
 * LLM.int8 together with static activations or smoothing, alpha / threshold out of range,
 * and those of calibration (unreadable or too short text). */
qb_status qb_act_apply(qb_ctx *ctx, qb_model *m, qb_run_config *rc, const qb_act_opts *o);

#endif
