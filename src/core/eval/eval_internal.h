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

/* Running sums for one model compared with a base (kld.c, sensitivity.c). */
typedef struct {
    double nb, nb2, no, no2, k, k2; /* base NLL, other NLL, KLD: sums and sums of squares */
    long agree;                     /* positions whose argmax agrees */
    double *klds;                   /* one KLD per scored position (sorted by the finisher) */
} qb_kld_acc;
/* out from a's sums over count scored positions (sorts a->klds). */
void qb_eval_kld_finish(qb_kld_result *out, qb_kld_acc *a, long count, int n_chunks, int n_ctx, double seconds);

#endif
