/* smoothquant.h — SmoothQuant (Xiao et al., 2022) and plain W8A8: per-input-channel scales
 * s_j = max|X_j|^α / max|W_j|^(1−α) migrate activation outliers into the weights, folded
 * exactly into the preceding RMSNorm (attn_norm → wq/wk/wv, ffn_norm → w_gate/w_up) and,
 * optionally, into wv's rows for wo's input and w_up's rows for w_down's input (exact too:
 * attention is linear in V, SwiGLU in up). Then every linear matrix of the blocks gets
 * per-channel int8 weights and int8 activations (dynamic per token, or static per tensor from
 * calibration) through the int8 GEMM (infer/matmul_w8a8.h). The output matrix and the
 * embeddings stay as they are.
 *
 * The statistic it needs, per-channel absmax of each linear layer's input, comes from a
 * calibration run (calib.h: qb_calib_run, with or without XᵀX), so one calibration serves
 * SmoothQuant, static activation scales, GPTQ and AWQ alike. */
#ifndef QB_SMOOTHQUANT_H
#define QB_SMOOTHQUANT_H

#include "../model/model.h"
#include "../infer/infer.h"
#include "../infer/matmul_w8a8.h"
#include "../calib/calib.h"

typedef struct {
    bool smooth;          /* false: plain W8A8 (alpha ignored) */
    float alpha;          /* migration strength, 0..1 (the paper's default 0.5) */
    bool smooth_out;      /* also smooth wo (via wv) and w_down (via w_up) */
    int act_mode;         /* QB_ACT_INT8 (dynamic), QB_ACT_INT8_STATIC, or QB_ACT_FLOAT */
    const qb_format *wfmt; /* weight format: NULL = "int8-channel"; "f32" keeps weights float
                              (smoothing alone, exact up to rounding) */
} qb_smoothquant_opts;

/* Apply to every layer of m, from the original weights and norms (so applying again replaces
 * the previous result); the activation settings of the block matrices go to rc (made for m
 * with qb_run_config_new; may be NULL only when act_mode is float), the weights and norms to
 * m. stats (a calibration of this model, run on the unmodified model, that
 * captured every layer's four inputs) is needed when smoothing or for static activation
 * scales, else may be NULL. Errors (model unchanged): alpha outside [0, 1] or NaN, stats
 * missing, incomplete or of another shape, act_mode unknown, no rc for int8 activations, activation quantization with a weight format that is not
 * int8 per channel / per tensor (QB_ERR_UNSUPPORTED, naming it); out of memory. */
qb_status qb_smoothquant_apply(qb_ctx *ctx, qb_model *m, qb_run_config *rc, const qb_calib *stats,
                               const qb_smoothquant_opts *o);

/* Replace t's representation with the rows × ne[0] float matrix w stored in fmt (quantized
 * into a new owned buffer; w is not kept). Used by the methods that change weights. */
qb_status qb_method_set_tensor(qb_ctx *ctx, qb_tensor *t, const float *w, const qb_format *fmt);

/* Undo every method of this family on m: original norms and weights, and float activations in
 * rc (may be NULL; its KV type stays). */
qb_status qb_w8a8_clear(qb_ctx *ctx, qb_model *m, qb_run_config *rc);

#endif
