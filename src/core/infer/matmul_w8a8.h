/* matmul_w8a8.h — Y = X · Wᵀ with int8 activations as well as int8 weights (W8A8): the path
 * the forward pass takes for a tensor whose activation setting (runcfg.h) is not float and
 * whose weights are stored per channel
 * (or per tensor) in "int8" (kernels/fmt_int_ref.c rows: an f32 scale, then codes with zero
 * point 128). Activations are quantized symmetrically to −127..127:
 *   QB_ACT_INT8          per token, at run time (scale = that token's absmax / 127)
 *   QB_ACT_INT8_STATIC   one scale per tensor from calibration (setting->scale), clamped
 *   QB_ACT_INT8_OUTLIER  LLM.int8(): feature columns where any token of the batch has
 *                        |x| >= setting->threshold are multiplied in float with the
 *                        original (source) weights; the rest per token in int8
 * and the int32 products of the kernels' gemm_i8 tile are scaled back to float. */
#ifndef QB_MATMUL_W8A8_H
#define QB_MATMUL_W8A8_H

#include "runcfg.h"

/* Whether a weight format can run W8A8 (int8, symmetric, per channel or per tensor). */
bool qb_w8a8_format_ok(const qb_format *f);

/* Multiply as described above when a is non-NULL, a->mode is not float and w's format passes
 * qb_w8a8_format_ok; returns false (and does nothing) otherwise, so the caller takes the float
 * path (qb_matmul). x: T rows of w->ne[0] floats; y: T rows of w->ne[1]. Parallel over weight
 * rows (OpenMP); call outside parallel regions. QB_ACT_INT8_OUTLIER adds the columns seen and
 * taken as outliers to *cnt (the caller's; may be NULL). Neither w nor a is written, so any
 * number of threads may multiply by one tensor at once. Out of memory: falls back to the
 * float path (returns false). */
bool qb_matmul_w8a8(const qb_tensor *w, const qb_act_setting *a, qb_act_counts *cnt, const float *x, int T, float *y);

/* Quantize n floats symmetrically to int8 with scale d (d <= 0: the row's absmax / 127);
 * returns the scale used. Values beyond ±127·d clamp; codes are never −128. */
float qb_w8a8_quantize_row(const float *x, int8_t *q, int n, float d);

#endif
