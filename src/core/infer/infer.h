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

/* ---- checkpoints and resumption (sensitivity scans: variants that differ from a base only
 * from some point on compute the same activations before it) ---- */

/* Points in a layer where a pass can be checkpointed and resumed. */
typedef enum {
    QB_STAGE_IN = 0,   /* the residual entering the layer (attn_norm, wq/wk/wv/wqkv read here) */
    QB_STAGE_ATTN_OUT, /* the attention output, input of attn_output (wo, post_attn_norm) */
    QB_STAGE_FFN_IN,   /* the residual after attention (ffn_norm, gate/up, router, experts) */
    QB_STAGE_DOWN_IN,  /* act(gate)*up, input of ffn_down (w_down, post_ffn_norm); dense FFN only */
    QB_STAGE_COUNT
} qb_stage;

/* What a pass needs to resume at a point: res, the residual stream there (rows × dim: at
 * QB_STAGE_IN and QB_STAGE_ATTN_OUT the residual entering the layer, at QB_STAGE_FFN_IN and
 * QB_STAGE_DOWN_IN the one after attention), and act, the activations there (ATTN_OUT: rows ×
 * n_heads*head_dim; DOWN_IN: rows × hidden_dim; NULL at IN and FFN_IN). The head is point
 * (n_layers, QB_STAGE_IN), its res the residual after the last layer. */
typedef struct {
    float *res;
    float *act;
} qb_checkpoint;

/* Index of point (layer, stage) in a checkpoint table: layer * QB_STAGE_COUNT + stage; the
 * head is QB_STAGE_COUNT * n_layers; a table has QB_STAGE_COUNT * n_layers + 1 entries. */
static inline int qb_checkpoint_index(int layer, qb_stage stage) { return layer * QB_STAGE_COUNT + (int)stage; }

/* The first point of a forward pass of m that reads tensor i: (layer, stage), or (n_layers,
 * QB_STAGE_IN) for output / output_norm (the head), (0, QB_STAGE_IN) for the embedding and
 * anything else (a tied embedding is read first at the start). */
void qb_infer_point_of(const qb_model *m, int i, int *layer, qb_stage *stage);

/* Rows that pass through point (layer, stage) in an evaluation of n tokens with n_logits
 * logits: n, except the head (n_logits rows: those whose logits are asked for) and, with
 * trimming on (qb_infer_set_trim), the stages after QB_STAGE_IN of the last layer (n_logits). */
int qb_infer_point_rows(const qb_infer *s, int layer, qb_stage stage, int n, int n_logits);

/* While table (borrowed; QB_STAGE_COUNT * n_layers + 1 entries) is set, qb_infer_eval and
 * qb_infer_resume store, at every point whose entry has res non-NULL, the residual (and act,
 * when non-NULL) of the rows passing there (qb_infer_point_rows) in the last step of the
 * evaluation. Entries may share buffers where the contents are the same (the res of IN and
 * ATTN_OUT of a layer; of FFN_IN and DOWN_IN). NULL stops. */
void qb_infer_set_checkpoints(qb_infer *s, const qb_checkpoint *table);

/* Trimming (off by default): the rows whose logits are not asked for only need the last
 * layer's keys and values, so in the last layer they go through attn_norm, wk/wv (or wqkv),
 * RoPE and the KV cache and stop there. Every logit is computed as without trimming, but the
 * observers then see the last layer's later points with the kept rows only (do not combine
 * with calibration). For bit-identical logits keep at least 2 rows on each side (one token
 * takes the kernels' matrix-vector paths). */
void qb_infer_set_trim(qb_infer *s, bool on);

/* Evaluate n ≤ n_batch tokens at positions 0..n-1 from point (layer, stage) (layer ≤ n_layers;
 * the head: layer n_layers, stage QB_STAGE_IN) on cp, which holds what a model with the same
 * weights before that point had there (qb_infer_point_rows rows, as qb_infer_set_checkpoints
 * stores them); logits as in qb_infer_eval. Only the KV caches of layers after the point (and of
 * its own layer when stage is QB_STAGE_IN) are filled. QB_STAGE_DOWN_IN of a layer with experts
 * is QB_ERR_ARG. */
qb_status qb_infer_resume(qb_ctx *ctx, qb_infer *s, int layer, qb_stage stage, const qb_checkpoint *cp, int n,
                          float *logits, int n_logits);

/* Point s at m instead of its model: m must be the same model or a view of the same base (the
 * buffers fit). For running many model views with one run state per thread. QB_ERR_ARG else. */
qb_status qb_infer_rebind(qb_ctx *ctx, qb_infer *s, const qb_model *m);

/* The work s has done so far, in multiply-adds: every matrix product (rows × columns × tokens)
 * and attention (query rows × keys attended × head_dim × 2 per head). Reset sets it to 0. */
int64_t qb_infer_work(const qb_infer *s);
void qb_infer_reset_work(qb_infer *s);

#endif
