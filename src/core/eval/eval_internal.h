/* eval_internal.h — helpers shared by perplexity.c and kld.c (not public API). */
#ifndef QB_EVAL_INTERNAL_H
#define QB_EVAL_INTERNAL_H

#include "eval.h"

double qb_eval_now(void);
/* Chunk length and count for n_tokens under o; errors for texts too short. */
qb_status qb_eval_plan_chunks(qb_ctx *ctx, const qb_model *m, int n_tokens, const qb_eval_opts *o, int *n_ctx,
                              int *n_chunks);
/* log p(tok) under the softmax of logits (double); *lse_out gets log Σ exp when not NULL. */
double qb_eval_log_prob(const float *logits, int n, int tok, double *lse_out);
/* Chunk c's tokens with its first replaced by BOS (when the model adds one). */
void qb_eval_chunk_tokens(const qb_model *m, const int32_t *tokens, int c, int n_ctx, int32_t *buf);
void qb_eval_finish_ppl(qb_ppl_result *r, double nll, double nll2, long count);

#endif
