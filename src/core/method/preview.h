/* preview.h — one weight matrix quantized by a method on its own, for per-tensor analyses
 * (the workbench's plots and metrics): the values the method would give it, and the layer's
 * relative output error ‖(W − Q)X‖² / ‖WX‖² (through XᵀX) for the method and for RTN of the
 * same format, so a caller can show what the method buys on that matrix.
 *
 * Learned rounding learns the matrix against its own output error (qb_learned_matrix).
 * GPTQ is exactly what qb_method_apply installs for the matrix. AWQ searches the scales
 * on this matrix alone (the model-level apply searches them over every matrix sharing the
 * input) and reports W's values as the model computes them after the fold: Q(W·diag(s))·
 * diag(1/s); nothing is folded anywhere. */
#ifndef QB_METHOD_PREVIEW_H
#define QB_METHOD_PREVIEW_H

#include "method.h"

typedef struct {
    double out_err;     /* ‖(W − Q)X‖² / ‖WX‖² of the method */
    double out_err_rtn; /* the same for round-to-nearest of the format */
    float alpha;        /* AWQ: the α chosen (NAN for other methods) */
} qb_method_preview_result;

/* Quantize w (rows × n f32, row-major; not changed) to format f with method meth, given the
 * matrix input's calibration statistics cs (width n, with XᵀX; qb_calib_get). deq (rows × n)
 * receives the values the result stands for. RTN needs no cs (out_err then NAN). Parallel
 * (ctx's thread count). cancel stops with QB_ERR_CANCELLED. Errors: missing XᵀX or a width
 * other than n (QB_ERR_ARG), those of the method (GPTQ: QB_ERR_UNSUPPORTED for formats
 * without a per-group grid), QB_ERR_NOMEM. */
qb_status qb_method_preview(qb_ctx *ctx, const qb_method *meth, const qb_format *f, const float *w, int64_t rows,
                            int64_t n, const qb_calib_stat *cs, float *deq, qb_method_preview_result *out,
                            const volatile int *cancel);
/* The same, and learned rounding (qb_learned_matrix: the matrix against its own output error
 * through XᵀX, not the block objective the model-level apply learns) shows each step to watch
 * (may be NULL; other methods never call it). */
qb_status qb_method_preview_watch(qb_ctx *ctx, const qb_method *meth, const qb_format *f, const float *w,
                                  int64_t rows, int64_t n, const qb_calib_stat *cs, float *deq,
                                  qb_method_preview_result *out, qb_learned_watch watch, void *ud,
                                  const volatile int *cancel);

#endif
