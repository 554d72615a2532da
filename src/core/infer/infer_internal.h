/* infer_internal.h — the run state of the forward pass, shared by llama.c (the pass) and
 * checkpoint.c (checkpoints, resumption, rebinding): not public API. */
#ifndef QB_INFER_INTERNAL_H
#define QB_INFER_INTERNAL_H

#include "infer.h"
#include "kvcache.h"

struct qb_infer {
    const qb_model *m;
    qb_run_config *rc;  /* the caller's activation settings, KV type and counters; or NULL */
    int n_ctx, n_batch;
    int q_dim, kv_dim;
    qb_kvcache *kv;     /* keys and values of every layer (f32 or quantized: kvcache.h) */
    float *rope_cos;    /* (n_ctx, head_dim/2): full-attention layers */
    float *rope_sin;    /* (n_ctx, head_dim/2) */
    float *rope_cos_swa; /* the same for sliding layers with their own base, or == rope_cos */
    float *rope_sin_swa;
    /* per-batch activations, n_batch rows each */
    float *x;     /* (n_batch, dim) residual stream */
    float *xb;    /* (n_batch, max(dim, q_dim)) normed input / attention output */
    float *q;     /* (n_batch, q_dim) */
    float *k;     /* (n_batch, kv_dim) */
    float *v;     /* (n_batch, kv_dim) */
    float *hb;    /* (n_batch, hidden_dim) */
    float *hb2;   /* (n_batch, hidden_dim) */
    float *tmp;   /* (n_batch, dim) */
    float *qkv;   /* (n_batch, q_dim + 2 kv_dim) fused qkv output, or NULL */
    float *gu;    /* (n_batch, 2 hidden_dim) fused gate-up output, or NULL */
    /* experts: router logits, the chosen experts and weights per token, and one expert's rows */
    float *route;     /* (n_batch, n_experts) */
    int *sel;         /* (n_batch, n_experts_used) */
    float *selw;      /* (n_batch, n_experts_used) */
    int *rows;        /* (n_batch) tokens routed to the expert at hand */
    float *ex, *eh, *eh2, *ey; /* (n_batch, dim / eh / eh / dim) */
    int64_t *expert_counts; /* (n_layers, n_experts) tokens each expert received */
    qb_infer_observer observer; /* may be NULL */
    void *observer_ud;
    qb_infer_expert_observer expert_observer; /* may be NULL */
    void *expert_observer_ud;
    float *capture; /* (n_layers + 1, n_batch, dim): residual entering each layer and the head; or NULL */
    const qb_checkpoint *ckpt; /* (QB_STAGE_COUNT * n_layers + 1) points to store, or NULL */
    bool trim;      /* the last layer only for the rows whose logits are asked for (K/V for the rest) */
    int64_t work;   /* multiply-adds so far (qb_infer_work) */
};

/* Layers l0.. (layer l0 from stage st0) on the rows in s->x (and s->xb / s->hb for the stages
 * that start from activations), then the head: n tokens at positions pos.., n_logits logits. */
void qb_infer_run_from(qb_infer *s, int l0, qb_stage st0, int n, int pos, float *logits, int n_logits);

#endif
