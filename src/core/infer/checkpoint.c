/* checkpoint.c — resuming a forward pass part-way (infer.h: checkpoints and resumption): which
 * point of the pass first reads a tensor, the rows that pass each point, a pass resumed from a
 * stored point, a run state moved to another view of the same model, and the work counter. */
#include "infer_internal.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* The stage of layer L that first reads t (IN for anything of the attention's input side). */
static qb_stage stage_in_layer(const qb_layer_weights *L, const qb_tensor *t, int n_experts)
{
    if (t == L->wo || t == L->post_attn_norm) return QB_STAGE_ATTN_OUT;
    if (t == L->w_down || t == L->post_ffn_norm) return L->router ? QB_STAGE_FFN_IN : QB_STAGE_DOWN_IN;
    if (t == L->ffn_norm || t == L->w_gate || t == L->w_up || t == L->w_gate_up || t == L->router)
        return QB_STAGE_FFN_IN;
    for (int e = 0; L->router && e < n_experts; e++)
        if (t == L->exp_gate[e] || t == L->exp_up[e] || t == L->exp_down[e]) return QB_STAGE_FFN_IN;
    return QB_STAGE_IN;
}

void qb_infer_point_of(const qb_model *m, int i, int *layer, qb_stage *stage)
{
    const qb_tensor *t = &m->tensors[i];
    *layer = 0;
    *stage = QB_STAGE_IN;
    if (t == m->tok_embd) return; /* also a tied output */
    if (t == m->output || t == m->output_norm) {
        *layer = m->cfg.n_layers;
        return;
    }
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const qb_layer_weights *L = &m->layers[l];
        bool here = false;
#define QB_IS_SLOT(f) here = here || L->f == t;
        QB_LAYER_TENSORS(QB_IS_SLOT)
#undef QB_IS_SLOT
        for (int e = 0; !here && L->router && e < m->cfg.n_experts; e++)
            here = L->exp_gate[e] == t || L->exp_up[e] == t || L->exp_down[e] == t;
        if (here) {
            *layer = l;
            *stage = stage_in_layer(L, t, m->cfg.n_experts);
            return;
        }
    }
}

int qb_infer_point_rows(const qb_infer *s, int layer, qb_stage stage, int n, int n_logits)
{
    int L = s->m->cfg.n_layers;
    if (n_logits > n) n_logits = n;
    if (layer >= L) return n_logits;
    if (s->trim && layer == L - 1 && stage > QB_STAGE_IN && n_logits < n) return n_logits;
    return n;
}

void qb_infer_set_checkpoints(qb_infer *s, const qb_checkpoint *table) { s->ckpt = table; }
void qb_infer_set_trim(qb_infer *s, bool on) { s->trim = on; }
int64_t qb_infer_work(const qb_infer *s) { return s->work; }
void qb_infer_reset_work(qb_infer *s) { s->work = 0; }

qb_status qb_infer_resume(qb_ctx *ctx, qb_infer *s, int layer, qb_stage stage, const qb_checkpoint *cp, int n,
                          float *logits, int n_logits)
{
    const qb_config *c = &s->m->cfg;
    if (layer < 0 || layer > c->n_layers || (layer == c->n_layers && stage != QB_STAGE_IN) || stage < 0 ||
        stage >= QB_STAGE_COUNT || n <= 0 || n > s->n_batch)
        return qb_fail(ctx, QB_ERR_ARG, "evaluation from layer %d stage %d of %d tokens: out of range", layer,
                       (int)stage, n);
    if (stage == QB_STAGE_DOWN_IN && s->m->layers[layer].router)
        return qb_fail(ctx, QB_ERR_ARG, "layer %d has experts: no ffn_down input to resume from", layer);
    if ((stage == QB_STAGE_ATTN_OUT || stage == QB_STAGE_DOWN_IN) && !cp->act)
        return qb_fail(ctx, QB_ERR_ARG, "resuming at layer %d stage %d needs its activations", layer, (int)stage);
    if (!logits || n_logits < 0) n_logits = 0;
    if (n_logits > n) n_logits = n;
    qb_ctx_apply_threads(ctx);
#ifdef _OPENMP
    if (qb_kvcache_reserve(ctx, s->kv, omp_get_max_threads()) != QB_OK) return QB_ERR_NOMEM;
#else
    if (qb_kvcache_reserve(ctx, s->kv, 1) != QB_OK) return QB_ERR_NOMEM;
#endif
    int rows = qb_infer_point_rows(s, layer, stage, n, n_logits), dim = c->dim;
    /* without trimming the head reads the last n_logits rows of n */
    size_t off = layer == c->n_layers && !s->trim ? (size_t)(n - n_logits) * dim : 0;
    memcpy(s->x + off, cp->res, (size_t)rows * dim * sizeof(float));
    if (stage == QB_STAGE_ATTN_OUT) memcpy(s->xb, cp->act, (size_t)rows * s->q_dim * sizeof(float));
    if (stage == QB_STAGE_DOWN_IN) memcpy(s->hb, cp->act, (size_t)rows * c->hidden_dim * sizeof(float));
    qb_infer_run_from(s, layer, stage, n, 0, logits, n_logits);
    return QB_OK;
}

/* The model m borrows its weights from (itself when it is not a view). */
static const qb_model *root_of(const qb_model *m) { return qb_model_is_view(m) ? qb_model_view_base(m) : m; }

qb_status qb_infer_rebind(qb_ctx *ctx, qb_infer *s, const qb_model *m)
{
    if (root_of(m) != root_of(s->m))
        return qb_fail(ctx, QB_ERR_ARG, "%s is not a view of the model this run state was made for", m->path);
    s->m = m;
    return QB_OK;
}
