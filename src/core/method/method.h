/* method.h — quantization methods applied to a loaded model: how values and scales are
 * chosen (RTN, GPTQ, AWQ), separate from the storage format a plan gives each tensor. GPTQ
 * and AWQ read a calibration result (calib.h); every method produces the tensor's format's
 * packed bytes, so the model runs packed and exports to GGUF as with plain plans.
 *
 * Calibration is one-shot: every layer's inputs come from the unquantized model (the
 * protocol of the GPTQ reference fixture). Matrices without a calibration point (token
 * embeddings, output) get RTN of their format. */
#ifndef QB_METHOD_H
#define QB_METHOD_H

#include "../model/model.h"
#include "../quant/plan.h"
#include "../quant/importance.h"
#include "../calib/calib.h"
#include "gptq.h"
#include "awq.h"
#include "learned.h"

/* qb_method_kind (RTN, GPTQ, AWQ) and the method specifications plans carry are in plan.h. */

typedef struct {
    qb_method_kind kind;
    qb_gptq_params gptq; /* kind GPTQ */
    qb_awq_params awq;   /* kind AWQ */
    qb_learned_params learned; /* kind LEARNED */
} qb_method;

/* "rtn", "gptq" or "awq" (case-insensitive) with default parameters (GPTQ: block 128, damp
 * 0.01, no act-order; AWQ: α searched on 20 points, then the clipping search on every
 * matrix but wq and wk, as the authors' code runs it). */
qb_status qb_method_parse(qb_ctx *ctx, const char *name, qb_method *out);
const char *qb_method_name(qb_method_kind k); /* static storage */
/* The method a plan rule names, its parameters over the defaults of qb_method_parse (a GPTQ
 * damp of 0 means none). */
qb_status qb_method_from_spec(qb_ctx *ctx, const qb_method_spec *spec, qb_method *out);
/* Whether the method reads calibration data (and then wants XᵀX: calib opts.hessian). */
bool qb_method_needs_calib(const qb_method *m);

/* A plan for "TYPE_OR_FORMAT": a format name ("int4-g128-asym", "q4_k", "q8_0") for every
 * quantizable tensor (ggml types fall back as llama-quantize does where rows do not fit), or
 * else a llama-quantize file type ("Q4_K_M": its mix of types unless pure). *out is initialised here; caller
 * frees with qb_plan_free. */
qb_status qb_method_plan(qb_ctx *ctx, const qb_model *m, const char *type_or_format, bool pure, qb_plan *out);
/* The same with llama-quantize's choices for a quantization with an importance matrix
 * (has_imatrix: the mixes' qs.has_imatrix rules, ftype.h). */
qb_status qb_method_plan_im(qb_ctx *ctx, const qb_model *m, const char *type_or_format, bool pure, bool has_imatrix,
                            qb_plan *out);

typedef struct {
    void (*progress)(void *ud, int done, int total); /* after each tensor, calling thread */
    void *ud;
    const volatile int *cancel;
    /* filled in when non-NULL: the α AWQ chose per layer and point ((n_layers, QB_OBS_COUNT)) */
    float *awq_alpha;
    /* optional: importance weights for RTN's ggml types (llama-quantize --imatrix's bytes;
     * quant/importance.h's rules: a tensor without an entry is quantized without, one of the
     * wrong size is an error); GPTQ's group scales and AWQ's rounding take it too. */
    const qb_importance *imatrix;
    /* filled in when non-NULL, learned rounding: per block the mean squared error of its output
     * with RTN and with the learned values ((n_layers, 2)) */
    double *learned_loss;
} qb_method_opts;

/* Quantize every quantizable tensor the plan matches with method meth, calibration cal (may
 * be NULL for RTN; it must come from this model, with XᵀX for GPTQ and AWQ). Everything is
 * computed before anything is installed: on any error or cancel the model is exactly as it
 * was. AWQ also rewrites the layers' RMSNorm weights (owned copies; qb_fold_reset restores
 * them); other methods restore norms an earlier AWQ changed. Errors: a method asked for a
 * format it cannot produce (GPTQ: formats without a per-group grid), missing calibration. */
qb_status qb_method_apply(qb_ctx *ctx, qb_model *m, const qb_plan *plan, const qb_method *meth,
                                const qb_calib *cal, const qb_method_opts *o);

#endif
