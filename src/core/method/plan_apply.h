/* plan_apply.h — one call that brings a loaded model to a plan whose rules carry methods
 * (plan.h: pattern → format, method, parameters). The CLI (`quantize --plan`), Lua
 * (`model:apply`) and the workbench all apply plans through it.
 *
 * The tensors are grouped by their rule's method and parameters; each group is computed by its
 * method (RTN first, then GPTQ, then AWQ: AWQ rescales neighbouring matrices, and a neighbour
 * another rule names is then quantized by RTN of its rescaled values in that rule's format)
 * into one staging area, and installed only when every group succeeded: on any error or
 * cancel the model is exactly as it was.
 *
 * The recipe (the plan with its methods, the calibration text's name, size and sha256, the
 * quantbench version) is what export records (apply.h, qb_recipe). */
#ifndef QB_PLAN_APPLY_H
#define QB_PLAN_APPLY_H

#include "method.h"
#include "../quant/apply.h"

/* What a caller that applies plans again and again (the workbench) keeps between calls: which
 * method and parameters produced each tensor's current representation, so a later apply
 * redoes only the tensors whose target changed. Opaque; one per model. */
typedef struct qb_apply_state qb_apply_state;

/* A state for m as loaded (every tensor its original, by RTN). *out: free with
 * qb_apply_state_free. */
qb_status qb_apply_state_new(qb_ctx *ctx, const qb_model *m, qb_apply_state **out);
void qb_apply_state_free(qb_apply_state *s);
/* Tensor i's representation no longer came from an apply (another tool changed it, e.g. an
 * activation method, which also undoes AWQ's folds): the next apply redoes it, and the state
 * no longer counts AWQ folds. */
void qb_apply_state_forget(qb_apply_state *s, int tensor_index);
/* Whether AWQ scales are folded into the model by an apply. */
bool qb_apply_state_awq(const qb_apply_state *s);

typedef struct {
    void (*progress)(void *ud, int done, int total); /* after each tensor, calling thread */
    void *ud;
    const volatile int *cancel;
    /* false: a rule that matches no quantizable tensor is an error (the message is
     * qb_plan_unmatched's); true: such rules are skipped (warn with qb_plan_unmatched) */
    bool allow_unmatched;
    /* NULL: every tensor a rule matches is computed again, the others keep what they hold.
     * Non-NULL: the model is brought to the plan exactly (tensors no rule matches go back to
     * their originals) and only tensors whose target (format, method, parameters) differs from
     * what state says they hold are redone; once AWQ is involved any change rebuilds every
     * tensor from its originals (its folds reach beyond its tensors). Updated on success. */
    qb_apply_state *state;
    int n_redone; /* out: tensors computed (and installed) by the call */
    /* optional: importance weights for the RTN rules' ggml types (qb_method_opts.imatrix).
     * With a state, tensors are redone when the importance they were made with changes
     * (another imatrix, or none). */
    const qb_importance *imatrix;
} qb_plan_apply_opts;

/* Apply plan p to m, taking calibration from cal where a rule's method needs it (it must come
 * from this model, with XᵀX: calib opts.hessian; may be NULL when no rule needs it). Errors: a
 * rule matching no tensor (unless allowed), a method that needs calibration without one, a
 * format a method cannot produce or a tensor cannot take (the message names the tensor), a
 * layer whose AWQ folds would be left half-restored, memory, cancel — with the model
 * unchanged. */
qb_status qb_plan_apply(qb_ctx *ctx, qb_model *m, const qb_plan *p, const qb_calib *cal, qb_plan_apply_opts *o);

/* The recipe an export records for a model brought to p with calibration cal (either may be
 * NULL): plain pointers into p and cal, valid while they are. */
void qb_recipe_from(qb_recipe *r, const qb_plan *p, const qb_calib *cal);

#endif
