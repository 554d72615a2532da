/* llm_int8.h — LLM.int8() (Dettmers et al., 2022): vector-wise int8 matrix multiplication
 * (a scale per weight row, a scale per activation token) with mixed-precision decomposition:
 * the feature dimensions where any token of the batch has |x| >= threshold (default 6.0) are
 * taken out of the int8 product and multiplied in float against the original weights. The
 * outlier dimensions are decided per matmul call at run time (infer/matmul_w8a8.c); this
 * module switches a model's block matrices to that mode (int8 weights in the model, the mode
 * in a run configuration, runcfg.h) and reads the counters the runs add to the configuration. */
#ifndef QB_LLM_INT8_H
#define QB_LLM_INT8_H

#include "../model/model.h"
#include "../infer/runcfg.h"

#define QB_LLM_INT8_DEFAULT_THRESHOLD 6.0f

/* Every linear matrix of m's blocks (not the output matrix) gets int8 per-channel weights
 * (from its original values) and, in rc (made for m), LLM.int8() activations with this
 * threshold; INFINITY gives plain vector-wise int8, 0 puts every column in float. Norms go
 * back to their original values (undoing SmoothQuant). Errors: threshold negative or NaN, rc
 * NULL or made for another model (QB_ERR_ARG; model unchanged), out of memory. rc's counters
 * start at zero. */
qb_status qb_llm_int8_apply(qb_ctx *ctx, qb_model *m, qb_run_config *rc, float threshold);

/* Outlier fraction seen so far, by the runs made with rc, at the four input points of m's layer
 * l (wq's input, wo's, w_gate's, w_down's, in this order): outlier feature columns / columns,
 * over all matmul calls; −1 where the matrix is not in LLM.int8() mode in rc or has not run. */
void qb_llm_int8_fractions(const qb_run_config *rc, const qb_model *m, int l, double out[4]);
/* Set every counter of rc back to zero. */
void qb_llm_int8_reset(qb_run_config *rc);

#endif
