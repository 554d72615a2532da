/* fold.h — exact, restorable rewrites of a loaded model's weights that methods share:
 * per-input-channel scales s folded into a model (x/s into the preceding RMSNorm weight or
 * linear layer, W·diag(s) into the following linear layers), reading and replacing a tensor's
 * current values, and resetting a model to its originals.
 *
 * Nothing here touches the original (mapped) values: a changed tensor gets an owned buffer as
 * its current representation (norms: an F32 copy; matrices: F32 values until a method
 * quantizes them), so qb_tensor_restore / qb_fold_reset give the original back and GGUF
 * export writes what the model now holds. */
#ifndef QB_FOLD_H
#define QB_FOLD_H

#include "../model/model.h"
#include "../infer/infer.h"

/* The current values of rows [r0, r0+nr) of t as f32 (its current representation
 * dequantized: after a fold or a method, not the source). */
void qb_tensor_current_rows(const qb_tensor *t, int64_t r0, int64_t nr, float *out);

/* Make buf (rows × row_bytes of format fmt, malloc'd) t's current representation; t takes
 * ownership of buf (freed with the model or on the next change). The source stays. */
void qb_tensor_install(qb_tensor *t, void *buf, size_t nbytes, const qb_format *fmt);

/* Replace t's current values with the f32 matrix vals (rows × ne[0], copied). */
qb_status qb_tensor_set_f32(qb_ctx *ctx, qb_tensor *t, const float *vals);

/* Fold per-channel scales s (width of the capture point, all > 0 and finite) at point pt of
 * layer l, so the model computes the same function with the point's activations divided by s:
 *   QB_OBS_ATTN_IN:     attn_norm ← attn_norm / s;   wq, wk, wv ← W·diag(s)
 *   QB_OBS_FFN_IN:      ffn_norm ← ffn_norm / s;     w_gate, w_up ← W·diag(s)
 *   QB_OBS_FFN_DOWN_IN: w_up rows ← diag(1/s)·w_up;  w_down ← w_down·diag(s)   (SwiGLU: exact)
 *   QB_OBS_ATTN_OUT:    wv rows ← 1/s, wo ← wo·diag(s): exact only when every wo input
 *                       channel sharing a v row (grouped-query attention) has the same scale;
 *                       otherwise QB_ERR_UNSUPPORTED and nothing changes.
 * Works on the tensors' current values (folds compose). Errors (bad scale, bad point) change
 * nothing. */
qb_status qb_fold_scales(qb_ctx *ctx, qb_model *m, int layer, qb_obs_point pt, const float *s);

/* Every tensor back to its original representation (norms included). */
qb_status qb_fold_reset(qb_ctx *ctx, qb_model *m);

#endif
