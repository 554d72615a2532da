/* llama.c — the Llama forward pass (llama2.c's run.c generalised: batches of tokens, GQA,
 * both RoPE pairings, any weight storage type that qb_matmul runs). */
#include "infer.h"
#include "matmul.h"
#include "matmul_w8a8.h"
#include "kvcache.h"
#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

struct qb_infer {
    const qb_model *m;
    qb_run_config *rc;  /* the caller's activation settings, KV type and counters; or NULL */
    int n_ctx, n_batch;
    int q_dim, kv_dim;
    qb_kvcache *kv;     /* keys and values of every layer (f32 or quantized: kvcache.h) */
    float *rope_cos;    /* (n_ctx, head_dim/2) */
    float *rope_sin;    /* (n_ctx, head_dim/2) */
    /* per-batch activations, n_batch rows each */
    float *x;     /* (n_batch, dim) residual stream */
    float *xb;    /* (n_batch, max(dim, q_dim)) normed input / attention output */
    float *q;     /* (n_batch, q_dim) */
    float *k;     /* (n_batch, kv_dim) */
    float *v;     /* (n_batch, kv_dim) */
    float *hb;    /* (n_batch, hidden_dim) */
    float *hb2;   /* (n_batch, hidden_dim) */
    float *tmp;   /* (n_batch, dim) */
    qb_infer_observer observer; /* may be NULL */
    void *observer_ud;
    float *capture; /* (n_layers + 1, n_batch, dim): residual entering each layer and the head; or NULL */
};

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
    if (!s->rope_cos || !s->rope_sin || !s->x || !s->xb || !s->q || !s->k ||
        !s->v || !s->hb || !s->hb2 || !s->tmp) {
        qb_infer_free(s);
        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory for a %d-token context", n_ctx);
    }
    /* RoPE angles: pair i rotates by pos * theta^(-2i/head_dim), in float as the references do */
    for (int p = 0; p < n_ctx; p++)
        for (int i = 0; i < half; i++) {
            float freq = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)c->head_dim);
            float val = (float)p * freq;
            s->rope_cos[(size_t)p * half + i] = cosf(val);
            s->rope_sin[(size_t)p * half + i] = sinf(val);
        }
    *out = s;
    return QB_OK;
}

void qb_infer_free(qb_infer *s)
{
    if (!s) return;
    qb_kvcache_free(s->kv);
    free(s->rope_cos);
    free(s->rope_sin);
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

/* Rotate each head of vec (n_heads heads of head_dim) for position pos. */
static void rope(const qb_infer *s, float *vec, int n_heads, int pos)
{
    const qb_config *c = &s->m->cfg;
    int hd = c->head_dim, half = hd / 2;
    const float *cs = s->rope_cos + (size_t)pos * half, *sn = s->rope_sin + (size_t)pos * half;
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
        qb_matmul_multi(ws, nw, x, n, ys);
        return;
    }
    for (int i = 0; i < nw; i++) matmul(s, ws[i], x, n, ys[i]);
}

static void layer_forward(qb_infer *s, int l, int n, int pos)
{
    const qb_config *c = &s->m->cfg;
    const qb_layer_weights *L = &s->m->layers[l];
    int dim = c->dim, hid = c->hidden_dim;
    for (int t = 0; t < n; t++)
        rmsnorm(s->xb + (size_t)t * dim, s->x + (size_t)t * dim, L->attn_norm->data, dim, c->norm_eps);
    observe(s, l, QB_OBS_ATTN_IN, s->xb, n, dim);
    matmul_multi(s, (const qb_tensor *[]){L->wq, L->wk, L->wv}, 3, s->xb, n, (float *[]){s->q, s->k, s->v});
    for (int t = 0; t < n; t++) {
        rope(s, s->q + (size_t)t * s->q_dim, c->n_heads, pos + t);
        rope(s, s->k + (size_t)t * s->kv_dim, c->n_kv_heads, pos + t);
    }
    qb_kvcache_store(s->kv, l, pos, n, s->k, s->v);
    qb_kvcache_attention(s->kv, l, s->q, (size_t)s->q_dim, n, pos, s->xb);
    observe(s, l, QB_OBS_ATTN_OUT, s->xb, n, s->q_dim);
    matmul(s, L->wo, s->xb, n, s->tmp);
    for (size_t i = 0; i < (size_t)n * dim; i++) s->x[i] += s->tmp[i];
    for (int t = 0; t < n; t++)
        rmsnorm(s->xb + (size_t)t * dim, s->x + (size_t)t * dim, L->ffn_norm->data, dim, c->norm_eps);
    observe(s, l, QB_OBS_FFN_IN, s->xb, n, dim);
    matmul_multi(s, (const qb_tensor *[]){L->w_gate, L->w_up}, 2, s->xb, n, (float *[]){s->hb, s->hb2});
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < (size_t)n * hid; i++) {
        float g = s->hb[i];
        s->hb[i] = g / (1.0f + expf(-g)) * s->hb2[i];
    }
    observe(s, l, QB_OBS_FFN_DOWN_IN, s->hb, n, hid);
    matmul(s, L->w_down, s->hb, n, s->tmp);
    for (size_t i = 0; i < (size_t)n * dim; i++) s->x[i] += s->tmp[i];
}

static void run_from(qb_infer *s, int l0, int n, int pos, float *logits, int n_logits);

/* One step of at most n_batch tokens. */
static void eval_batch(qb_infer *s, const int32_t *tokens, int n, int pos, float *logits, int n_logits)
{
    const qb_config *c = &s->m->cfg;
    int dim = c->dim;
    for (int t = 0; t < n; t++) qb_tensor_get_row(s->m->tok_embd, tokens[t], s->x + (size_t)t * dim);
    run_from(s, 0, n, pos, logits, n_logits);
}

/* Layers l0.. on the residual in s->x, then the head (capturing the residuals when asked). */
static void run_from(qb_infer *s, int l0, int n, int pos, float *logits, int n_logits)
{
    const qb_config *c = &s->m->cfg;
    int dim = c->dim;
    for (int l = l0; l <= c->n_layers; l++) {
        if (s->capture) memcpy(s->capture + (size_t)l * s->n_batch * dim, s->x, (size_t)n * dim * sizeof(float));
        if (l < c->n_layers) layer_forward(s, l, n, pos);
    }
    if (!logits || n_logits <= 0) return;
    int first = n - n_logits;
    for (int t = first; t < n; t++)
        rmsnorm(s->xb + (size_t)(t - first) * dim, s->x + (size_t)t * dim, s->m->output_norm->data, dim, c->norm_eps);
    observe(s, c->n_layers, QB_OBS_OUTPUT_IN, s->xb, n_logits, dim);
    matmul(s, s->m->output, s->xb, n_logits, logits);
}

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
    run_from(s, l0, n, 0, logits, n_logits);
    return QB_OK;
}
