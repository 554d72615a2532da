/* apply.h — changing a loaded model's weights in memory: quantize one tensor, or every tensor
 * a plan names, from the original values (which stay mapped, so a tensor can be re-quantized
 * again and again); size of the model at its current plan and projected to larger models;
 * export of the model as it now is to a GGUF file llama.cpp runs. */
#ifndef QB_APPLY_H
#define QB_APPLY_H

#include "../model/model.h"
#include "plan.h"
#include "recipe.h"

/* Give tensor t format fmt: quantized from its original values into a new owned buffer (the
 * previous one is freed). fmt equal to the original ggml type restores the original. The
 * forward pass runs the result packed. */
qb_status qb_tensor_quantize(qb_ctx *ctx, qb_tensor *t, const qb_format *fmt, const volatile int *cancel);
/* The bytes t's original values take in fmt, without changing t: *out (caller frees) holds
 * *nbytes bytes. Errors name the tensor (format check, memory, cancel). Used by
 * qb_tensor_quantize and by model views. */
qb_status qb_tensor_quantize_source(qb_ctx *ctx, const qb_tensor *t, const qb_format *fmt, const volatile int *cancel,
                                    void **out, size_t *nbytes);
/* Back to the original representation (as loaded). */
qb_status qb_tensor_restore(qb_ctx *ctx, qb_tensor *t);
/* Whether t is a weight matrix a plan may change (not a norm). */
bool qb_tensor_quantizable(const qb_tensor *t);

typedef struct {
    void (*progress)(void *ud, int done, int total);
    void *ud;
    const volatile int *cancel;
} qb_apply_opts;

/* Quantize every quantizable tensor the plan matches by RTN (others keep their format), one
 * tensor at a time. Rules with another method are refused (QB_ERR_ARG): plans with methods
 * go through qb_plan_apply (src/core/method/plan_apply.h), which also stages. */
qb_status qb_plan_apply_rtn(qb_ctx *ctx, qb_model *m, const qb_plan *p, const qb_apply_opts *o);

/* The first rule at index >= from that matches no tensor a plan can change (a typo, or a
 * pattern naming only norms): its index, with the message "plan rule N 'PATTERN' matches no
 * tensor" (or "... matches only tensors a plan does not change (norms)") in msg; -1 when
 * there is none. */
int qb_plan_unmatched(const qb_plan *p, const qb_model *m, int from, char *msg, size_t cap);
/* llama-quantize's mix for file type name ("Q4_K_M") applied to the loaded model. */
qb_status qb_ftype_apply(qb_ctx *ctx, qb_model *m, const char *ftype, bool pure, const qb_apply_opts *o);

typedef struct {
    size_t bytes;        /* all tensors as they are now */
    size_t bytes_f16;    /* the same model with every matrix in F16 (norms F32) */
    size_t bytes_f32;
    int64_t params;
    double bpw;          /* bits per weight over the quantizable matrices */
    double proj_gib[3];  /* projected size of 7B / 13B / 70B models at this bpw (GiB) */
} qb_model_size;
void qb_quant_size_compute(const qb_model *m, qb_model_size *out);

/* Write the model as it is now (current formats) as GGUF, atomically. Models opened from
 * GGUF keep all their metadata; llama2.c / Hugging Face models get llama.* keys and their
 * tokenizer written, and HF's rotate-half q/k rows are permuted to GGUF's interleaved order.
 * Tensors in formats ggml has no type for are written as export_repack.h says (integer grids
 * repacked into Q4_0/Q5_0/Q8_0/Q4_1/Q5_1, others dequantized to F16), the list of those
 * conversions recorded under quantbench.export.conversions. plan (may be NULL) is recorded
 * in the metadata with the version (recipe.h). cancel leaves the target untouched. */
qb_status qb_export_gguf(qb_ctx *ctx, const qb_model *m, const char *path, const qb_plan *plan,
                               const volatile int *cancel);
/* The same, recording recipe r (recipe.h: the plan with its methods, the calibration text's
 * name, size and sha256, the version) under quantbench.*; an earlier recipe the source file
 * held is dropped. qb_export_gguf records qb_recipe_init(plan). */
qb_status qb_export_gguf_recipe(qb_ctx *ctx, const qb_model *m, const char *path, const qb_recipe *r,
                                      const volatile int *cancel);

#endif
