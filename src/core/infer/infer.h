/* infer.h — the forward pass over a model of any architecture quantbench runs (model.h's
 * description): a KV cache plus scratch buffers for a batch of tokens. RMSNorm, RoPE
 * (interleaved or rotate-half pairs, scaled), grouped-query attention (sliding windows,
 * soft-caps), gated FFN or experts, fp32 compute; OpenMP across rows and heads. */
#ifndef QB_INFER_H
#define QB_INFER_H

#include "../model/model.h"
#include "runcfg.h"

typedef struct qb_infer qb_infer;

/* A run state for m holding up to n_ctx positions (0 = the model's context length) and
 * evaluating up to n_batch tokens per internal step (0 = 512), with float activations and an
 * f32 KV cache. Borrows m, which must outlive it; m is only read, so any number of run states
 * may evaluate one model on as many threads at once. Free with qb_infer_free. */
qb_status qb_infer_new(qb_ctx *ctx, const qb_model *m, int n_ctx, int n_batch, qb_infer **out);
/* The same, run as rc says (runcfg.h: activation settings per tensor, KV type; NULL = as
 * qb_infer_new). rc, made for m (or the model m is a view of), is borrowed and must outlive
 * the run state; evaluations read its settings and add to its counters atomically. */
qb_status qb_infer_new_run(qb_ctx *ctx, const qb_model *m, qb_run_config *rc, int n_ctx, int n_batch, qb_infer **out);
void qb_infer_free(qb_infer *s);

/* Feed n tokens at positions pos .. pos+n-1 (pos must equal the number of positions already
 * in the cache for this sequence; pass 0 to start over). logits (may be NULL) receives
 * n_logits rows of vocab floats: those of the last n_logits tokens (1 for generation, n for
 * perplexity). */
qb_status qb_infer_eval(qb_ctx *ctx, qb_infer *s, const int32_t *tokens, int n, int pos, float *logits,
                        int n_logits);

int qb_infer_n_ctx(const qb_infer *s);

/* Where in a layer an observer sees the activations: the inputs of the linear layers. */
typedef enum {
    QB_OBS_ATTN_IN = 0,  /* attn_norm output, input of wq/wk/wv: width dim */
    QB_OBS_ATTN_OUT,     /* attention output, input of wo: width n_heads*head_dim */
    QB_OBS_FFN_IN,       /* ffn_norm output, input of w_gate/w_up: width dim */
    QB_OBS_FFN_DOWN_IN,  /* silu(gate)*up, input of w_down: width hidden_dim */
    QB_OBS_OUTPUT_IN,    /* output_norm output, input of the output matrix (layer = n_layers;
                            only the rows whose logits were asked for) */
    QB_OBS_COUNT
} qb_obs_point;
/* Called during qb_infer_eval, on the calling thread and outside parallel regions, with the
 * n_tokens × width row-major activations x that the linear layers at point pt of layer are
 * about to multiply. The observer may read x (calibration statistics) and may change it in
 * place (fake-quantized activations, outlier experiments): the linear layers then use the
 * changed values. It must not keep x. */
typedef void (*qb_infer_observer)(void *ud, int layer, qb_obs_point pt, float *x, int n_tokens, int width);
/* Install (fn non-NULL) or remove (fn NULL) the observer of s. */
void qb_infer_set_observer(qb_infer *s, qb_infer_observer fn, void *ud);
/* The experts' inputs, which the point observer does not see: called during qb_infer_eval, on
 * the calling thread, once per expert that received tokens in a step, with the n_tokens × width
 * rows routed to it (in token order) that its matrices are about to multiply: pt is
 * QB_OBS_FFN_IN (input of ffn_gate_exps / ffn_up_exps, width dim) or QB_OBS_FFN_DOWN_IN (input of
 * ffn_down_exps, width expert_hidden_dim). Read-only; the observer must not keep x. */
typedef void (*qb_infer_expert_observer)(void *ud, int layer, int expert, qb_obs_point pt, const float *x,
                                         int n_tokens, int width);
/* Install (fn non-NULL) or remove (fn NULL) the expert observer of s. */
void qb_infer_set_expert_observer(qb_infer *s, qb_infer_expert_observer fn, void *ud);
const qb_model *qb_infer_model(const qb_infer *s);

/* Prefix reuse (sensitivity scans): models that differ only from layer l0 on compute the same
 * residual stream before it. While buf (borrowed; (n_layers + 1) × n_batch × dim floats) is set,
 * qb_infer_eval stores the residual entering every layer (slot n_layers: entering the head) of
 * its last step; NULL stops. */
void qb_infer_capture_residuals(qb_infer *s, float *buf);

/* Tokens each expert received in the evaluations of s so far: (n_layers × n_experts) counts,
 * a token counted once per expert it was routed to; NULL for a model without experts. */
const int64_t *qb_infer_expert_counts(const qb_infer *s);
/* Evaluate n ≤ n_batch tokens at positions 0..n-1 from layer l0 (0..n_layers) on x0, the n × dim
 * residual a model with the same embedding and layers before l0 captured there; logits as in
 * qb_infer_eval. Only the KV caches of layers ≥ l0 are filled. */
qb_status qb_infer_eval_from(qb_ctx *ctx, qb_infer *s, int l0, const float *x0, int n, float *logits, int n_logits);

#endif
