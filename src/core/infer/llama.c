/* llama.c — the forward pass of every architecture quantbench runs (llama2.c's run.c
 * generalised: batches of tokens, GQA, both RoPE pairings, any weight storage type that
 * qb_matmul runs), following the model's description (model.h): attention biases, q/k norms,
 * post-norms, GELU-tanh or SiLU gates, fused qkv / gate-up matrices, experts with top-k
 * routing, sliding-window layers with their own RoPE base, RoPE scaling, soft-caps. */
#include "infer_internal.h"
#include "matmul.h"
#include "matmul_w8a8.h"
#include "rope.h"
#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

qb_status qb_infer_new(qb_ctx *ctx, const qb_model *m, int n_ctx, int n_batch, qb_infer **out)
{
    return qb_infer_new_run(ctx, m, NULL, n_ctx, n_batch, out);
}

qb_status qb_infer_new_run(qb_ctx *ctx, const qb_model *m, qb_run_config *rc, int n_ctx, int n_batch, qb_infer **out)
{
    const qb_config *c = &m->cfg;
    *out = NULL;
    if (n_ctx <= 0) n_ctx = c->seq_len;
    if (n_batch <= 0) n_batch = 512;
    if (n_batch > n_ctx) n_batch = n_ctx;
    qb_infer *s = calloc(1, sizeof *s);
    if (!s) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    s->m = m;
    s->rc = rc;
    s->n_ctx = n_ctx;
    s->n_batch = n_batch;
    s->q_dim = c->n_heads * c->head_dim;
    s->kv_dim = c->n_kv_heads * c->head_dim;
    int half = c->head_dim / 2;
    int xbw = c->dim > s->q_dim ? c->dim : s->q_dim;
    qb_status st = qb_kvcache_new(ctx, c, n_ctx, rc ? rc->kv_type : QB_KV_F32, &s->kv);
    if (st != QB_OK) {
        qb_infer_free(s);
        return st;
    }
    s->rope_cos = malloc((size_t)n_ctx * half * sizeof(float));
    s->rope_sin = malloc((size_t)n_ctx * half * sizeof(float));
    s->x = malloc((size_t)n_batch * c->dim * sizeof(float));
    s->xb = malloc((size_t)n_batch * xbw * sizeof(float));
    s->q = malloc((size_t)n_batch * s->q_dim * sizeof(float));
    s->k = malloc((size_t)n_batch * s->kv_dim * sizeof(float));
    s->v = malloc((size_t)n_batch * s->kv_dim * sizeof(float));
    s->hb = malloc((size_t)n_batch * c->hidden_dim * sizeof(float));
    s->hb2 = malloc((size_t)n_batch * c->hidden_dim * sizeof(float));
    s->tmp = malloc((size_t)n_batch * c->dim * sizeof(float));
    bool ok = s->rope_cos && s->rope_sin && s->x && s->xb && s->q && s->k && s->v && s->hb && s->hb2 && s->tmp;
    bool fused_qkv = false, fused_gu = false;
    for (int l = 0; l < c->n_layers; l++) {
        fused_qkv = fused_qkv || m->layers[l].wqkv;
        fused_gu = fused_gu || m->layers[l].w_gate_up;
    }
    if (ok && fused_qkv) ok = (s->qkv = malloc((size_t)n_batch * (s->q_dim + 2 * s->kv_dim) * sizeof(float)));
    if (ok && fused_gu) ok = (s->gu = malloc((size_t)n_batch * 2 * c->hidden_dim * sizeof(float)));
    if (ok && c->n_experts > 0) {
        size_t nb = (size_t)n_batch, eh = (size_t)c->expert_hidden_dim;
        s->route = malloc(nb * c->n_experts * sizeof(float));
        s->sel = malloc(nb * c->n_experts_used * sizeof(int));
        s->selw = malloc(nb * c->n_experts_used * sizeof(float));
        s->rows = malloc(nb * sizeof(int));
        s->ex = malloc(nb * c->dim * sizeof(float));
        s->eh = malloc(nb * eh * sizeof(float));
        s->eh2 = malloc(nb * eh * sizeof(float));
        s->ey = malloc(nb * c->dim * sizeof(float));
        s->expert_counts = calloc((size_t)c->n_layers * c->n_experts, sizeof(int64_t));
        ok = s->route && s->sel && s->selw && s->rows && s->ex && s->eh && s->eh2 && s->ey && s->expert_counts;
    }
    if (ok && c->rope_theta_swa > 0 && c->swa_window > 0) {
        s->rope_cos_swa = malloc((size_t)n_ctx * half * sizeof(float));
        s->rope_sin_swa = malloc((size_t)n_ctx * half * sizeof(float));
        ok = s->rope_cos_swa && s->rope_sin_swa;
    }
    if (!ok) {
        qb_infer_free(s);
        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory for a %d-token context", n_ctx);
    }
    qb_rope_tables(m, c->rope_theta, true, n_ctx, s->rope_cos, s->rope_sin);
    if (s->rope_cos_swa) {
        qb_rope_tables(m, c->rope_theta_swa, false, n_ctx, s->rope_cos_swa, s->rope_sin_swa);
    } else {
        s->rope_cos_swa = s->rope_cos;
        s->rope_sin_swa = s->rope_sin;
    }
    *out = s;
    return QB_OK;
}

void qb_infer_free(qb_infer *s)
{
    if (!s) return;
    qb_kvcache_free(s->kv);
    if (s->rope_cos_swa != s->rope_cos) {
        free(s->rope_cos_swa);
        free(s->rope_sin_swa);
    }
    free(s->rope_cos);
    free(s->rope_sin);
    free(s->qkv);
    free(s->gu);
    free(s->route);
    free(s->sel);
    free(s->selw);
    free(s->rows);
    free(s->ex);
    free(s->eh);
    free(s->eh2);
    free(s->ey);
    free(s->expert_counts);
    free(s->x);
    free(s->xb);
    free(s->q);
    free(s->k);
    free(s->v);
    free(s->hb);
    free(s->hb2);
    free(s->tmp);
    free(s);
}

int qb_infer_n_ctx(const qb_infer *s) { return s->n_ctx; }
const qb_model *qb_infer_model(const qb_infer *s) { return s->m; }

void qb_infer_set_observer(qb_infer *s, qb_infer_observer fn, void *ud)
{
    s->observer = fn;
    s->observer_ud = fn ? ud : NULL;
}

void qb_infer_set_expert_observer(qb_infer *s, qb_infer_expert_observer fn, void *ud)
{
    s->expert_observer = fn;
    s->expert_observer_ud = fn ? ud : NULL;
}

static void observe(qb_infer *s, int layer, qb_obs_point pt, float *x, int n, int width)
{
    if (s->observer) s->observer(s->observer_ud, layer, pt, x, n, width);
}

static void rmsnorm(float *o, const float *x, const float *w, int n, float eps)
{
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float scale = (float)(1.0 / sqrt(ss / n + eps));
    for (int i = 0; i < n; i++) o[i] = w[i] * (scale * x[i]);
}

/* Rotate each head of vec (n_heads heads of head_dim) for position pos, with the tables of a
 * sliding or a full-attention layer. */
static void rope(const qb_infer *s, bool sliding, float *vec, int n_heads, int pos)
{
    const qb_config *c = &s->m->cfg;
    int hd = c->head_dim, half = hd / 2;
    const float *cs = (sliding ? s->rope_cos_swa : s->rope_cos) + (size_t)pos * half;
    const float *sn = (sliding ? s->rope_sin_swa : s->rope_sin) + (size_t)pos * half;
    for (int h = 0; h < n_heads; h++) {
        float *v = vec + (size_t)h * hd;
        for (int i = 0; i < half; i++) {
            int a = c->rope_layout == QB_ROPE_HALF ? i : 2 * i;
            int b = c->rope_layout == QB_ROPE_HALF ? i + half : 2 * i + 1;
            float v0 = v[a], v1 = v[b];
            v[a] = v0 * cs[i] - v1 * sn[i];
            v[b] = v0 * sn[i] + v1 * cs[i];
        }
    }
}

/* y = x · wᵀ for n rows: with int8 activations when the run config asks for them and w's
 * format runs them (its LLM.int8() counters added to the config), else through qb_matmul. */
static void matmul(qb_infer *s, const qb_tensor *w, const float *x, int n, float *y)
{
    const qb_act_setting *a = qb_run_config_act(s->rc, s->m, w);
    qb_act_counts cnt = {0, 0};
    s->work += (int64_t)n * w->ne[0] * w->ne[1];
    if (a && a->mode != QB_ACT_FLOAT && qb_matmul_w8a8(w, a, &cnt, x, n, y)) {
        if (cnt.seen) qb_run_config_count(s->rc, (int)(w - s->m->tensors), cnt.seen, cnt.outlier);
        return;
    }
    qb_matmul(w, x, n, y);
}

/* Several matrices on one input: fused by qb_matmul_multi unless one of them runs int8
 * activations, then one by one. */
static void matmul_multi(qb_infer *s, const qb_tensor *const *ws, int nw, const float *x, int n, float *const *ys)
{
    bool act = false;
    for (int i = 0; i < nw; i++) {
        const qb_act_setting *a = qb_run_config_act(s->rc, s->m, ws[i]);
        act = act || (a && a->mode != QB_ACT_FLOAT);
    }
    if (!act) {
        for (int i = 0; i < nw; i++) s->work += (int64_t)n * ws[i]->ne[0] * ws[i]->ne[1];
        qb_matmul_multi(ws, nw, x, n, ys);
        return;
    }
    for (int i = 0; i < nw; i++) matmul(s, ws[i], x, n, ys[i]);
}

/* x (n rows of width) += b (width) */
static void add_bias(float *x, const qb_tensor *b, int n, int width)
{
    const float *bv = b->data;
    for (int t = 0; t < n; t++)
        for (int i = 0; i < width; i++) x[(size_t)t * width + i] += bv[i];
}

/* RMSNorm of every head (head_dim wide) of n rows of n_heads heads, in place. */
static void head_norm(float *x, const qb_tensor *w, int n, int n_heads, int hd, float eps)
{
    for (size_t h = 0; h < (size_t)n * n_heads; h++) rmsnorm(x + h * hd, x + h * hd, w->data, hd, eps);
}

/* y = act(gate) * up over n values (gate in g, result in g). */
static void glu(qb_glu_act act, float *g, const float *u, size_t n)
{
    if (act == QB_GLU_GELU_TANH) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) {
            float x = g[i];
            g[i] = 0.5f * x * (1.0f + tanhf(0.7978845608f * (x + 0.044715f * x * x * x))) * u[i];
        }
        return;
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float x = g[i];
        g[i] = x / (1.0f + expf(-x)) * u[i];
    }
}

/* Split n rows of a fused (a | b | c) output into three row-major buffers. */
static void split3(const float *src, int n, int wa, int wb, int wc, float *a, float *b, float *c)
{
    size_t w = (size_t)wa + wb + wc;
    for (int t = 0; t < n; t++) {
        const float *r = src + (size_t)t * w;
        memcpy(a + (size_t)t * wa, r, (size_t)wa * sizeof(float));
        memcpy(b + (size_t)t * wb, r + wa, (size_t)wb * sizeof(float));
        memcpy(c + (size_t)t * wc, r + wa + wb, (size_t)wc * sizeof(float));
    }
}

/* The experts' FFN of n normed rows xb into out (n × dim): router logits, softmax over the
 * experts, the top k (ties to the lower index), their weights renormalised when the model
 * says, then each expert on the rows routed to it (gathered, so one matmul per expert). */
static void moe_ffn(qb_infer *s, int l, const float *xb, int n, float *out)
{
    const qb_config *c = &s->m->cfg;
    const qb_layer_weights *L = &s->m->layers[l];
    int E = c->n_experts, K = c->n_experts_used, dim = c->dim, eh = c->expert_hidden_dim;
    matmul(s, L->router, xb, n, s->route);
    for (int t = 0; t < n; t++) {
        float *r = s->route + (size_t)t * E, mx = -INFINITY, sum = 0;
        for (int e = 0; e < E; e++) mx = r[e] > mx ? r[e] : mx;
        for (int e = 0; e < E; e++) sum += (r[e] = expf(r[e] - mx));
        for (int e = 0; e < E; e++) r[e] /= sum;
        int *sel = s->sel + (size_t)t * K;
        float *w = s->selw + (size_t)t * K, wsum = 0;
        for (int k = 0; k < K; k++) {
            int best = -1;
            for (int e = 0; e < E; e++) {
                bool taken = false;
                for (int j = 0; j < k; j++) taken = taken || sel[j] == e;
                if (!taken && (best < 0 || r[e] > r[best])) best = e;
            }
            sel[k] = best;
            wsum += (w[k] = r[best]);
        }
        if (c->expert_norm_topk)
            for (int k = 0; k < K; k++) w[k] /= wsum;
    }
    memset(out, 0, (size_t)n * dim * sizeof(float));
    for (int e = 0; e < E; e++) {
        int nr = 0;
        for (int t = 0; t < n; t++)
            for (int k = 0; k < K; k++)
                if (s->sel[(size_t)t * K + k] == e) s->rows[nr++] = t * K + k;
        if (nr == 0) continue;
        s->expert_counts[(size_t)l * E + e] += nr;
        for (int i = 0; i < nr; i++)
            memcpy(s->ex + (size_t)i * dim, xb + (size_t)(s->rows[i] / K) * dim, (size_t)dim * sizeof(float));
        if (s->expert_observer) s->expert_observer(s->expert_observer_ud, l, e, QB_OBS_FFN_IN, s->ex, nr, dim);
        matmul_multi(s, (const qb_tensor *[]){L->exp_gate[e], L->exp_up[e]}, 2, s->ex, nr,
                     (float *[]){s->eh, s->eh2});
        glu(c->act, s->eh, s->eh2, (size_t)nr * eh);
        if (s->expert_observer) s->expert_observer(s->expert_observer_ud, l, e, QB_OBS_FFN_DOWN_IN, s->eh, nr, eh);
        matmul(s, L->exp_down[e], s->eh, nr, s->ey);
        for (int i = 0; i < nr; i++) {
            float w = s->selw[s->rows[i]], *o = out + (size_t)(s->rows[i] / K) * dim;
            const float *y = s->ey + (size_t)i * dim;
            for (int j = 0; j < dim; j++) o[j] += w * y[j];
        }
    }
}

/* Norm and Q/K/V of n rows of s->x at pos..: q (unless kv_only), k, v with biases, head norms
 * and RoPE; keys and values stored in the cache. */
static void qkv_part(qb_infer *s, int l, int n, int pos, bool kv_only)
{
    const qb_config *c = &s->m->cfg;
    const qb_layer_weights *L = &s->m->layers[l];
    int dim = c->dim;
    bool sliding = qb_config_layer_slides(c, l);
    for (int t = 0; t < n; t++)
        rmsnorm(s->xb + (size_t)t * dim, s->x + (size_t)t * dim, L->attn_norm->data, dim, c->norm_eps);
    if (!kv_only) observe(s, l, QB_OBS_ATTN_IN, s->xb, n, dim);
    if (L->wqkv) {
        matmul(s, L->wqkv, s->xb, n, s->qkv);
        split3(s->qkv, n, s->q_dim, s->kv_dim, s->kv_dim, s->q, s->k, s->v);
    } else if (kv_only) {
        matmul_multi(s, (const qb_tensor *[]){L->wk, L->wv}, 2, s->xb, n, (float *[]){s->k, s->v});
    } else {
        matmul_multi(s, (const qb_tensor *[]){L->wq, L->wk, L->wv}, 3, s->xb, n, (float *[]){s->q, s->k, s->v});
    }
    if (L->bq) {
        if (!kv_only) add_bias(s->q, L->bq, n, s->q_dim);
        add_bias(s->k, L->bk, n, s->kv_dim);
        add_bias(s->v, L->bv, n, s->kv_dim);
    }
    if (L->q_norm) {
        if (!kv_only) head_norm(s->q, L->q_norm, n, c->n_heads, c->head_dim, c->norm_eps);
        head_norm(s->k, L->k_norm, n, c->n_kv_heads, c->head_dim, c->norm_eps);
    }
    for (int t = 0; t < n; t++) {
        if (!kv_only) rope(s, sliding, s->q + (size_t)t * s->q_dim, c->n_heads, pos + t);
        rope(s, sliding, s->k + (size_t)t * s->kv_dim, c->n_kv_heads, pos + t);
    }
    qb_kvcache_store(s->kv, l, pos, n, s->k, s->v);
}

/* Stage IN -> ATTN_OUT: Q/K/V of n rows and their attention into s->xb. */
static void attn_part(qb_infer *s, int l, int n, int pos)
{
    const qb_config *c = &s->m->cfg;
    bool sliding = qb_config_layer_slides(c, l);
    qkv_part(s, l, n, pos, false);
    qb_attn_params ap = {.scale = c->query_scale, .softcap = c->attn_softcap, .window = sliding ? c->swa_window : 0};
    qb_kvcache_attention(s->kv, l, s->q, (size_t)s->q_dim, n, pos, &ap, s->xb);
    for (int t = 0; t < n; t++) { /* keys attended, for the work count */
        int end = pos + t + 1, lo = ap.window > 0 && end > ap.window ? end - ap.window : 0;
        s->work += (int64_t)(end - lo) * 2 * c->head_dim * c->n_heads;
    }
    observe(s, l, QB_OBS_ATTN_OUT, s->xb, n, s->q_dim);
}

/* Stage ATTN_OUT -> FFN_IN: x += post_attn_norm(wo · xb). */
static void attn_out_part(qb_infer *s, int l, int n)
{
    const qb_config *c = &s->m->cfg;
    const qb_layer_weights *L = &s->m->layers[l];
    int dim = c->dim;
    matmul(s, L->wo, s->xb, n, s->tmp);
    if (L->post_attn_norm)
        for (int t = 0; t < n; t++)
            rmsnorm(s->tmp + (size_t)t * dim, s->tmp + (size_t)t * dim, L->post_attn_norm->data, dim, c->norm_eps);
    for (size_t i = 0; i < (size_t)n * dim; i++) s->x[i] += s->tmp[i];
}

/* Stage FFN_IN -> DOWN_IN: xb = ffn_norm(x), then act(gate)*up into s->hb (dense), or the
 * experts' whole output into s->tmp (MoE: no DOWN_IN point). */
static void ffn_in_part(qb_infer *s, int l, int n)
{
    const qb_config *c = &s->m->cfg;
    const qb_layer_weights *L = &s->m->layers[l];
    int dim = c->dim, hid = c->hidden_dim;
    for (int t = 0; t < n; t++)
        rmsnorm(s->xb + (size_t)t * dim, s->x + (size_t)t * dim, L->ffn_norm->data, dim, c->norm_eps);
    observe(s, l, QB_OBS_FFN_IN, s->xb, n, dim);
    if (L->router) {
        moe_ffn(s, l, s->xb, n, s->tmp);
        return;
    }
    if (L->w_gate_up) { /* Phi-3: gate rows, then up rows */
        matmul(s, L->w_gate_up, s->xb, n, s->gu);
        for (int t = 0; t < n; t++) {
            memcpy(s->hb + (size_t)t * hid, s->gu + (size_t)t * 2 * hid, (size_t)hid * sizeof(float));
            memcpy(s->hb2 + (size_t)t * hid, s->gu + (size_t)t * 2 * hid + hid, (size_t)hid * sizeof(float));
        }
    } else {
        matmul_multi(s, (const qb_tensor *[]){L->w_gate, L->w_up}, 2, s->xb, n, (float *[]){s->hb, s->hb2});
    }
    glu(c->act, s->hb, s->hb2, (size_t)n * hid);
    observe(s, l, QB_OBS_FFN_DOWN_IN, s->hb, n, hid);
}

/* Stage DOWN_IN -> the next layer: x += post_ffn_norm(w_down · hb) (MoE: of s->tmp). */
static void ffn_out_part(qb_infer *s, int l, int n)
{
    const qb_config *c = &s->m->cfg;
    const qb_layer_weights *L = &s->m->layers[l];
    int dim = c->dim;
    if (!L->router) matmul(s, L->w_down, s->hb, n, s->tmp);
    if (L->post_ffn_norm)
        for (int t = 0; t < n; t++)
            rmsnorm(s->tmp + (size_t)t * dim, s->tmp + (size_t)t * dim, L->post_ffn_norm->data, dim, c->norm_eps);
    for (size_t i = 0; i < (size_t)n * dim; i++) s->x[i] += s->tmp[i];
}

/* Store point (l, st) of n rows when the checkpoint table asks for it. */
static void checkpoint(qb_infer *s, int l, qb_stage st, int n)
{
    if (!s->ckpt || n <= 0) return;
    const qb_checkpoint *cp = &s->ckpt[qb_checkpoint_index(l, st)];
    int dim = s->m->cfg.dim;
    if (!cp->res) return;
    if (cp->res != s->x) memcpy(cp->res, s->x, (size_t)n * dim * sizeof(float));
    if (cp->act && st == QB_STAGE_ATTN_OUT) memcpy(cp->act, s->xb, (size_t)n * s->q_dim * sizeof(float));
    if (cp->act && st == QB_STAGE_DOWN_IN && s->m->layers[l].router == NULL)
        memcpy(cp->act, s->hb, (size_t)n * s->m->cfg.hidden_dim * sizeof(float));
}

/* One step of at most n_batch tokens. */
static void eval_batch(qb_infer *s, const int32_t *tokens, int n, int pos, float *logits, int n_logits)
{
    const qb_config *c = &s->m->cfg;
    int dim = c->dim;
    for (int t = 0; t < n; t++) qb_tensor_get_row(s->m->tok_embd, tokens[t], s->x + (size_t)t * dim);
    if (c->embed_scale != 1.0f)
        for (size_t i = 0; i < (size_t)n * dim; i++) s->x[i] *= c->embed_scale;
    qb_infer_run_from(s, 0, QB_STAGE_IN, n, pos, logits, n_logits);
}

void qb_infer_run_from(qb_infer *s, int l0, qb_stage st0, int n, int pos, float *logits, int n_logits)
{
    const qb_config *c = &s->m->cfg;
    int dim = c->dim, last = c->n_layers - 1;
    if (!logits || n_logits < 0) n_logits = 0;
    bool trimmed = false; /* s->x holds only the last n_logits rows (at positions pos + n - n_logits ..) */
    for (int l = l0; l < c->n_layers; l++) {
        qb_stage st = l == l0 ? st0 : QB_STAGE_IN;
        int rows = n, at = pos;
        if (s->trim && l == last && n_logits < n) {
            if (st == QB_STAGE_IN) { /* the dropped rows: keys and values only, then the kept rows to the front */
                if (s->capture) memcpy(s->capture + (size_t)l * s->n_batch * dim, s->x, (size_t)n * dim * sizeof(float));
                checkpoint(s, l, QB_STAGE_IN, n);
                if (n - n_logits > 0) qkv_part(s, l, n - n_logits, pos, true);
                memmove(s->x, s->x + (size_t)(n - n_logits) * dim, (size_t)n_logits * dim * sizeof(float));
            }
            rows = n_logits;
            at = pos + n - n_logits;
            trimmed = true;
            if (rows == 0) break;
        } else if (st == QB_STAGE_IN) {
            if (s->capture) memcpy(s->capture + (size_t)l * s->n_batch * dim, s->x, (size_t)n * dim * sizeof(float));
            checkpoint(s, l, QB_STAGE_IN, n);
        }
        if (st <= QB_STAGE_IN) {
            attn_part(s, l, rows, at);
            checkpoint(s, l, QB_STAGE_ATTN_OUT, rows);
        }
        if (st <= QB_STAGE_ATTN_OUT) {
            attn_out_part(s, l, rows);
            checkpoint(s, l, QB_STAGE_FFN_IN, rows);
        }
        if (st <= QB_STAGE_FFN_IN) {
            ffn_in_part(s, l, rows);
            checkpoint(s, l, QB_STAGE_DOWN_IN, rows);
        }
        ffn_out_part(s, l, rows);
    }
    if (l0 == c->n_layers && s->trim) trimmed = true; /* resumed at the head: the n_logits rows given */
    if (s->capture && !trimmed)
        memcpy(s->capture + (size_t)c->n_layers * s->n_batch * dim, s->x, (size_t)n * dim * sizeof(float));
    if (n_logits <= 0) return;
    const float *xh = s->x + (size_t)(trimmed ? 0 : n - n_logits) * dim; /* the rows whose logits are asked for */
    if (s->ckpt && s->ckpt[qb_checkpoint_index(c->n_layers, QB_STAGE_IN)].res)
        memcpy(s->ckpt[qb_checkpoint_index(c->n_layers, QB_STAGE_IN)].res, xh, (size_t)n_logits * dim * sizeof(float));
    for (int t = 0; t < n_logits; t++)
        rmsnorm(s->xb + (size_t)t * dim, xh + (size_t)t * dim, s->m->output_norm->data, dim, c->norm_eps);
    observe(s, c->n_layers, QB_OBS_OUTPUT_IN, s->xb, n_logits, dim);
    matmul(s, s->m->output, s->xb, n_logits, logits);
    if (c->final_softcap > 0) {
        float cap = c->final_softcap;
        for (size_t i = 0; i < (size_t)n_logits * c->vocab_size; i++) logits[i] = cap * tanhf(logits[i] / cap);
    }
}

const int64_t *qb_infer_expert_counts(const qb_infer *s) { return s->expert_counts; }

qb_status qb_infer_eval(qb_ctx *ctx, qb_infer *s, const int32_t *tokens, int n, int pos, float *logits, int n_logits)
{
    const qb_config *c = &s->m->cfg;
    if (n <= 0) return qb_fail(ctx, QB_ERR_ARG, "no tokens to evaluate");
    if (pos < 0 || pos + n > s->n_ctx)
        return qb_fail(ctx, QB_ERR_ARG, "context full: %d + %d tokens exceed the %d-token context", pos, n, s->n_ctx);
    if (n_logits > n) n_logits = n;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            return qb_fail(ctx, QB_ERR_ARG, "token id %d out of range (vocab %d)", tokens[i], c->vocab_size);
    qb_ctx_apply_threads(ctx);
#ifdef _OPENMP
    if (qb_kvcache_reserve(ctx, s->kv, omp_get_max_threads()) != QB_OK) return QB_ERR_NOMEM;
#else
    if (qb_kvcache_reserve(ctx, s->kv, 1) != QB_OK) return QB_ERR_NOMEM;
#endif
    for (int done = 0; done < n;) {
        int step = n - done < s->n_batch ? n - done : s->n_batch;
        /* logits wanted from this step: the overlap of [done, done+step) with [n-n_logits, n) */
        int lo = n - n_logits > done ? n - n_logits : done;
        int want = done + step - lo;
        float *dst = logits && want > 0 ? logits + (size_t)(lo - (n - n_logits)) * c->vocab_size : NULL;
        eval_batch(s, tokens + done, step, pos + done, dst, want > 0 ? want : 0);
        done += step;
    }
    return QB_OK;
}

void qb_infer_capture_residuals(qb_infer *s, float *buf) { s->capture = buf; }

qb_status qb_infer_eval_from(qb_ctx *ctx, qb_infer *s, int l0, const float *x0, int n, float *logits, int n_logits)
{
    const qb_config *c = &s->m->cfg;
    if (l0 < 0 || l0 > c->n_layers || n <= 0 || n > s->n_batch)
        return qb_fail(ctx, QB_ERR_ARG, "evaluation from layer %d of %d tokens: out of range", l0, n);
    if (n_logits > n) n_logits = n;
    qb_ctx_apply_threads(ctx);
#ifdef _OPENMP /* attention scratch, as qb_infer_eval reserves it (merge of the scan and outlier branches) */
    if (qb_kvcache_reserve(ctx, s->kv, omp_get_max_threads()) != QB_OK) return QB_ERR_NOMEM;
#else
    if (qb_kvcache_reserve(ctx, s->kv, 1) != QB_OK) return QB_ERR_NOMEM;
#endif
    memcpy(s->x, x0, (size_t)n * c->dim * sizeof(float));
    bool trim = s->trim;
    s->trim = false; /* x0 holds all n rows, also at the head */
    qb_infer_run_from(s, l0, QB_STAGE_IN, n, 0, logits, n_logits);
    s->trim = trim;
    return QB_OK;
}
