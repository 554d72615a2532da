/* train.c — the training pass (train.h): a forward that keeps its activations, written as
 * llama.c's forward is, over f32 parameter arrays, and the backward through the same steps in
 * reverse with backward.h's operations. */
#include "train.h"
#include "backward.h"
#include "matmul.h"
#include "rope.h"
#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* activations of one layer for the last forward, (T, width) rows unless said */
typedef struct {
    float *x_in;         /* (dim) residual entering the layer */
    float *xn1;          /* (dim) attn_norm(x_in) */
    float *q_lin, *k_lin; /* (q_dim), (kv_dim) projections (+ bias), before q/k norms; only with them */
    float *q, *k, *v;    /* (q_dim), (kv_dim), (kv_dim) as attention reads them (normed, rotated) */
    float *p;            /* (n_heads, T, T) attention probabilities */
    float *att;          /* (q_dim) attention output */
    float *o;            /* (dim) att·woᵀ, before a post-norm */
    float *x_mid;        /* (dim) residual after attention */
    float *xn2;          /* (dim) ffn_norm(x_mid) */
    float *g, *u, *h;    /* (hidden) gate, up, act(gate)·up */
    float *f;            /* (dim) h·w_downᵀ, before a post-norm */
} layer_acts;

struct qb_train_pass {
    const qb_model *m;
    int max_T, T;        /* capacity; tokens of the last forward (0: none yet) */
    int block;           /* the block the last forward ran alone, -1: the whole model, HEAD_ALONE */
    int kept;            /* without recomputation: blocks 0..kept−1 ran alone in order since the
                            last whole-model forward, each one's activations kept */
    int dim, hid, q_dim, kv_dim, vocab, half;
    float *cs, *sn, *cs_swa, *sn_swa; /* (max_T, head_dim/2) RoPE tables, the sliding ones may alias */
    int32_t *tokens;     /* (max_T) */
    layer_acts *la;      /* (n_la); recomputing: every layer's x_in its own, the rest la[0]'s */
    bool recompute;      /* blocks' activations recomputed in the backward from their inputs */
    float *xr;           /* recomputing: (T, dim) the residual a recomputed block runs on */
    int n_la;            /* the model's blocks when the pass was made (freeing never reads the
                            model, which may be closed first) */
    float *x_fin, *xn_out; /* (dim) residual after the last layer, output_norm of it */
    float *logits;       /* (vocab) the capped logits, kept when the model soft-caps them */
    float *wt;           /* a group of a weight's rows transposed (linear()); NULL: tokens too few to use it */
    /* backward scratch */
    float *dx, *dmid, *dbr, *dbr2, *dxn;  /* (dim) */
    float *dh, *dg, *du;                  /* (hidden) */
    float *datt, *dq, *dql;               /* (q_dim) */
    float *dk, *dkl, *dv;                 /* (kv_dim) */
    float *dlog;                          /* (vocab) */
};

#define HEAD_ALONE (-2) /* tp->block after qb_train_head_forward */

/* ---- parameters -------------------------------------------------------------------------- */

/* Why the training pass cannot run m, or NULL. */
static const char *refusal(const qb_model *m)
{
    if (m->cfg.n_experts > 0) return "experts";
    for (int l = 0; l < m->cfg.n_layers; l++) {
        if (m->layers[l].wqkv || m->layers[l].w_gate_up) return "fused qkv / gate-up matrices";
        if (!m->layers[l].wq || !m->layers[l].w_gate) return "a block without q/k/v and gate/up/down matrices";
    }
    return NULL;
}

/* t's values into a (matrices: the original; 1-D tensors: what runs now). */
static void values_of(const qb_tensor *t, float *a)
{
    if (t->n_dims <= 1) qb_tensor_get_row(t, 0, a);
    else qb_tensor_source_rows(t, 0, qb_tensor_rows(t), a);
}

/* A copy of t's values, or zeros. */
static float *param_of(const qb_tensor *t, bool values)
{
    int64_t n = qb_tensor_nelements(t);
    float *a = values ? malloc((size_t)n * sizeof *a) : calloc((size_t)n, sizeof *a);
    if (a && values) values_of(t, a);
    return a;
}

qb_status qb_train_params_new(qb_ctx *ctx, const qb_model *m, bool values, qb_train_params **out)
{
    *out = NULL;
    const char *why = refusal(m);
    if (why) return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: training is not supported for models with %s yet", m->path, why);
    const qb_config *c = &m->cfg;
    qb_train_params *p = calloc(1, sizeof *p);
    bool ok = p && (p->layers = calloc((size_t)c->n_layers, sizeof *p->layers));
    if (ok) {
        p->n_layers = c->n_layers;
        p->model = m;
        ok = (p->tok_embd = param_of(m->tok_embd, values)) && (p->output_norm = param_of(m->output_norm, values));
    }
    if (ok) ok = (p->output = m->output == m->tok_embd ? p->tok_embd : param_of(m->output, values)) != NULL;
    qb_status st = ok ? QB_OK : qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory for the training parameters", m->path);
    for (int l = 0; st == QB_OK && l < c->n_layers; l++) st = qb_train_layer_init(ctx, m, l, values, &p->layers[l]);
    if (st != QB_OK) {
        qb_train_params_free(p);
        return st;
    }
    *out = p;
    return QB_OK;
}

qb_status qb_train_layer_init(qb_ctx *ctx, const qb_model *m, int l, bool values, qb_train_layer *out)
{
    memset(out, 0, sizeof *out);
    const char *why = refusal(m);
    if (why) return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: training is not supported for models with %s yet", m->path, why);
    if (l < 0 || l >= m->cfg.n_layers) return qb_fail(ctx, QB_ERR_ARG, "block %d of a %d-block model", l, m->cfg.n_layers);
    const qb_layer_weights *L = &m->layers[l];
    bool ok = true;
#define INIT_FIELD(f)                                                                                                 \
    if (ok && L->f) ok = (out->f = param_of(L->f, values)) != NULL;
    QB_LAYER_TENSORS(INIT_FIELD)
#undef INIT_FIELD
    if (!ok) {
        qb_train_layer_release(out);
        return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory for block %d's parameters", m->path, l);
    }
    return QB_OK;
}

bool qb_train_layer_reload(const qb_model *m, int from, int l, bool values, qb_train_layer *P)
{
    const qb_layer_weights *A = &m->layers[from], *B = &m->layers[l];
#define SAME(f)                                                                                                   \
    if ((A->f == NULL) != (B->f == NULL) || (A->f && qb_tensor_nelements(A->f) != qb_tensor_nelements(B->f)))      \
        return false;
    QB_LAYER_TENSORS(SAME)
#undef SAME
#define LOAD(f)                                                                                                   \
    if (B->f) {                                                                                                   \
        if (values) values_of(B->f, P->f);                                                                        \
        else memset(P->f, 0, (size_t)qb_tensor_nelements(B->f) * sizeof *P->f);                                   \
    }
    QB_LAYER_TENSORS(LOAD)
#undef LOAD
    return true;
}

void qb_train_layer_release(qb_train_layer *P)
{
#define RELEASE_FIELD(f) free(P->f);
    QB_LAYER_TENSORS(RELEASE_FIELD)
#undef RELEASE_FIELD
    memset(P, 0, sizeof *P);
}

/* Call fn on every array of p with its length in floats (a tied output once). */
static void each_array(qb_train_params *p, void (*fn)(float *a, size_t n))
{
    const qb_model *m = p->model;
    if (p->tok_embd) fn(p->tok_embd, (size_t)qb_tensor_nelements(m->tok_embd));
    if (p->output_norm) fn(p->output_norm, (size_t)qb_tensor_nelements(m->output_norm));
    if (p->output && p->output != p->tok_embd) fn(p->output, (size_t)qb_tensor_nelements(m->output));
    for (int l = 0; l < p->n_layers; l++) {
#define VISIT(f)                                                                                                      \
    if (p->layers[l].f) fn(p->layers[l].f, (size_t)qb_tensor_nelements(m->layers[l].f));
        QB_LAYER_TENSORS(VISIT)
#undef VISIT
    }
}

static void zero_array(float *a, size_t n) { memset(a, 0, n * sizeof *a); }

void qb_train_params_zero(qb_train_params *p) { each_array(p, zero_array); }

void qb_train_params_free(qb_train_params *p)
{
    if (!p) return;
    if (p->output != p->tok_embd) free(p->output);
    free(p->tok_embd);
    free(p->output_norm);
    for (int l = 0; p->layers && l < p->n_layers; l++) qb_train_layer_release(&p->layers[l]);
    free(p->layers);
    free(p);
}

/* ---- the pass ---------------------------------------------------------------------------- */

/* The forward's products y = x·wᵀ run as x times wᵀ (gemm_f32's row-major B), transposed a
 * group of w's rows at a time into tp->wt: at most WT_FLOATS floats, at least 64 rows. */
#define WT_FLOATS ((size_t)1 << 20)
static int wt_rows(int n)
{
    const int r = (int)(WT_FLOATS / (size_t)n) & ~63;
    return r < 64 ? 64 : r;
}

void qb_train_pass_free(qb_train_pass *tp)
{
    if (!tp) return;
    if (tp->cs_swa != tp->cs) free(tp->cs_swa);
    if (tp->sn_swa != tp->sn) free(tp->sn_swa);
    free(tp->cs);
    free(tp->sn);
    free(tp->tokens);
    for (int l = 0; tp->la && l < tp->n_la; l++) {
        layer_acts *a = &tp->la[l];
        free(a->x_in);
        if (l > 0 && tp->recompute) continue; /* the rest is la[0]'s */
        float *bufs[] = {a->xn1, a->q_lin, a->k_lin, a->q, a->k, a->v, a->p, a->att,
                         a->o, a->x_mid, a->xn2, a->g, a->u, a->h, a->f};
        for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
    }
    free(tp->la);
    float *more[] = {tp->xr, tp->wt, tp->x_fin, tp->xn_out, tp->logits, tp->dx, tp->dmid, tp->dbr, tp->dbr2, tp->dxn, tp->dh,
                     tp->dg, tp->du, tp->datt, tp->dq, tp->dql, tp->dk, tp->dkl, tp->dv, tp->dlog};
    for (size_t i = 0; i < sizeof more / sizeof *more; i++) free(more[i]);
    free(tp);
}

qb_status qb_train_pass_new(qb_ctx *ctx, const qb_model *m, int max_tokens, qb_train_pass **out)
{
    return qb_train_pass_new_ex(ctx, m, max_tokens, false, out);
}

size_t qb_train_acts_bytes(const qb_model *m, int T, bool recompute)
{
    const qb_config *c = &m->cfg;
    const size_t dim = (size_t)c->dim, qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    const size_t per_layer = (size_t)T * (6 * dim + 2 * qd + 2 * kvd + 3 * (size_t)c->hidden_dim +
                                          (c->qk_norm ? qd + kvd : 0)) +
                             (size_t)c->n_heads * T * T;
    const size_t layers = recompute ? per_layer + (size_t)(c->n_layers - 1) * T * dim + (size_t)T * dim
                                    : per_layer * (size_t)c->n_layers;
    return layers * sizeof(float);
}

qb_status qb_train_pass_new_ex(qb_ctx *ctx, const qb_model *m, int max_tokens, bool recompute, qb_train_pass **out)
{
    *out = NULL;
    const char *why = refusal(m);
    if (why) return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: training is not supported for models with %s yet", m->path, why);
    const qb_config *c = &m->cfg;
    if (max_tokens <= 0 || max_tokens > c->seq_len)
        return qb_fail(ctx, QB_ERR_ARG, "training sequences of %d tokens: 1 to the model's context (%d)", max_tokens,
                       c->seq_len);
    qb_train_pass *tp = calloc(1, sizeof *tp);
    if (!tp) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    tp->m = m;
    tp->max_T = max_tokens;
    tp->block = -1;
    tp->dim = c->dim;
    tp->hid = c->hidden_dim;
    tp->q_dim = c->n_heads * c->head_dim;
    tp->kv_dim = c->n_kv_heads * c->head_dim;
    tp->vocab = c->vocab_size;
    tp->half = c->head_dim / 2;
    tp->n_la = c->n_layers;
    tp->recompute = recompute && c->n_layers > 1;
    const size_t T = (size_t)max_tokens, dim = (size_t)tp->dim, hid = (size_t)tp->hid, qd = (size_t)tp->q_dim,
                 kvd = (size_t)tp->kv_dim, V = (size_t)tp->vocab;
    bool ok = (tp->cs = malloc(T * tp->half * sizeof(float))) && (tp->sn = malloc(T * tp->half * sizeof(float))) &&
              (tp->tokens = malloc(T * sizeof(int32_t))) && (tp->la = calloc((size_t)c->n_layers, sizeof *tp->la));
#define ALLOC(p, n) ok = ok && ((p) = malloc((n) * sizeof(float))) != NULL
    for (int l = 0; ok && l < c->n_layers; l++) {
        layer_acts *a = &tp->la[l];
        if (l > 0 && tp->recompute) { /* only the input is kept; the rest is recomputed into la[0]'s */
            *a = tp->la[0];
            a->x_in = NULL;
            ALLOC(a->x_in, T * dim);
            continue;
        }
        ALLOC(a->x_in, T * dim);
        ALLOC(a->xn1, T * dim);
        if (c->qk_norm) {
            ALLOC(a->q_lin, T * qd);
            ALLOC(a->k_lin, T * kvd);
        }
        ALLOC(a->q, T * qd);
        ALLOC(a->k, T * kvd);
        ALLOC(a->v, T * kvd);
        ALLOC(a->p, (size_t)c->n_heads * T * T);
        ALLOC(a->att, T * qd);
        ALLOC(a->o, T * dim);
        ALLOC(a->x_mid, T * dim);
        ALLOC(a->xn2, T * dim);
        ALLOC(a->g, T * hid);
        ALLOC(a->u, T * hid);
        ALLOC(a->h, T * hid);
        ALLOC(a->f, T * dim);
    }
    ALLOC(tp->x_fin, T * dim);
    ALLOC(tp->xn_out, T * dim);
    if (tp->recompute) ALLOC(tp->xr, T * dim);
    if (c->final_softcap > 0) ALLOC(tp->logits, T * V);
    ALLOC(tp->dx, T * dim);
    ALLOC(tp->dmid, T * dim);
    ALLOC(tp->dbr, T * dim);
    ALLOC(tp->dbr2, T * dim);
    ALLOC(tp->dxn, T * dim);
    ALLOC(tp->dh, T * hid);
    ALLOC(tp->dg, T * hid);
    ALLOC(tp->du, T * hid);
    ALLOC(tp->datt, T * qd);
    ALLOC(tp->dq, T * qd);
    ALLOC(tp->dql, T * qd);
    ALLOC(tp->dk, T * kvd);
    ALLOC(tp->dkl, T * kvd);
    ALLOC(tp->dv, T * kvd);
    ALLOC(tp->dlog, T * V);
    if (max_tokens >= 32) { /* linear()'s transposed rows: the most any of the products takes */
        const int ns[3] = {tp->dim, tp->q_dim, tp->hid}; /* the products' inputs */
        const int ms[5] = {tp->q_dim, tp->kv_dim, tp->dim, tp->hid, tp->vocab}; /* and outputs */
        int mmax = 0;
        for (int i = 0; i < 5; i++) mmax = ms[i] > mmax ? ms[i] : mmax;
        size_t need = 0;
        for (int i = 0; i < 3; i++) {
            const size_t rows = (size_t)(wt_rows(ns[i]) < mmax ? wt_rows(ns[i]) : mmax);
            if ((size_t)ns[i] * rows > need) need = (size_t)ns[i] * rows;
        }
        ALLOC(tp->wt, need);
    }
#undef ALLOC
    if (ok && c->rope_theta_swa > 0 && c->swa_window > 0) {
        ok = (tp->cs_swa = malloc(T * tp->half * sizeof(float))) && (tp->sn_swa = malloc(T * tp->half * sizeof(float)));
        if (ok) qb_rope_tables(m, c->rope_theta_swa, false, max_tokens, tp->cs_swa, tp->sn_swa);
    }
    if (!ok) {
        qb_train_pass_free(tp);
        return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory for the activations of %d tokens", m->path, max_tokens);
    }
    qb_rope_tables(m, c->rope_theta, true, max_tokens, tp->cs, tp->sn);
    if (!tp->cs_swa) {
        tp->cs_swa = tp->cs;
        tp->sn_swa = tp->sn;
    }
    *out = tp;
    return QB_OK;
}

/* ---- forward ----------------------------------------------------------------------------- */

/* wt (n, rows) = the rows × n matrix w transposed, 16 rows at a time (16 read streams, one
 * 64-byte write per column) */
static void transpose_rows(const float *w, int rows, int n, float *wt)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * n > 65536)
    for (int r0 = 0; r0 < rows; r0 += 16) {
        const int rn = rows - r0 < 16 ? rows - r0 : 16;
        for (int p = 0; p < n; p++)
            for (int r = 0; r < rn; r++) wt[(size_t)p * rows + r0 + r] = w[(size_t)(r0 + r) * n + p];
    }
}

/* y (T, m) = x (T, n) · wᵀ for an f32 array w (m, n): on this thread for small products
 * (blocks of tiny models, run thousands of times by learned rounding: starting a thread team
 * there costs more than the product), through the forward pass's matrix kernels for a few
 * tokens (the transpose would cost more than it saves), else as x·(wᵀ) in parallel */
static void linear(qb_train_pass *tp, const float *w, const float *x, int T, int n, int m, float *y)
{
    if ((size_t)T * n * m <= (1u << 20)) {
        float (*dot)(int, const float *, const float *) = qb_kernels()->dot_f32;
        for (int t = 0; t < T; t++)
            for (int i = 0; i < m; i++) y[(size_t)t * m + i] = dot(n, w + (size_t)i * n, x + (size_t)t * n);
        return;
    }
    if (T < 32 || !tp->wt) {
        qb_tensor t = {.n_dims = 2, .ne = {n, m, 1, 1}, .type = QB_TYPE_F32, .data = w,
                       .nbytes = (size_t)n * m * sizeof(float)};
        t.fmt = qb_format_ggml(QB_TYPE_F32);
        qb_matmul(&t, x, T, y);
        return;
    }
    const int group = wt_rows(n);
    for (int r0 = 0; r0 < m; r0 += group) {
        const int rows = m - r0 < group ? m - r0 : group;
        transpose_rows(w + (size_t)r0 * n, rows, n, tp->wt);
        qb_product_f32(T, rows, n, x, (size_t)n, 1, tp->wt, (size_t)rows, y + r0, (size_t)m, false, true);
    }
}

/* rows of width n, each normalised: o = x ⊙ w / √(mean(x²) + eps) (o may be x) */
static void rmsnorm_rows(float *o, const float *x, const float *w, int rows, int n, float eps)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * n > 65536)
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * n;
        double ss = 0;
        for (int i = 0; i < n; i++) ss += (double)xr[i] * xr[i];
        const float s = (float)(1.0 / sqrt(ss / n + eps));
        float *or = o + (size_t)r * n;
        for (int i = 0; i < n; i++) or[i] = w[i] * (s * xr[i]);
    }
}

static void add_bias_rows(float *y, const float *b, int T, int n)
{
    for (int t = 0; t < T; t++)
        for (int i = 0; i < n; i++) y[(size_t)t * n + i] += b[i];
}

/* rotate each head of rows t = 0..T−1 by position t */
static void rope_rows(float *v, int T, int n_heads, int hd, const float *cs, const float *sn, qb_rope_layout layout)
{
    const int half = hd / 2;
    for (int t = 0; t < T; t++)
        for (int h = 0; h < n_heads; h++) {
            float *x = v + ((size_t)t * n_heads + h) * hd;
            const float *c = cs + (size_t)t * half, *s = sn + (size_t)t * half;
            for (int i = 0; i < half; i++) {
                const int a = layout == QB_ROPE_HALF ? i : 2 * i, b = layout == QB_ROPE_HALF ? i + half : 2 * i + 1;
                const float x0 = x[a], x1 = x[b];
                x[a] = x0 * c[i] - x1 * s[i];
                x[b] = x0 * s[i] + x1 * c[i];
            }
        }
}

/* h = act(g)·u over n elements, through the kernels' glu in parallel chunks */
static void gate(qb_glu_act act, const float *g, const float *u, float *h, size_t n)
{
    enum { CHUNK = 4096 };
    const qb_kernel_table *kt = qb_kernels();
    const size_t chunks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t c = 0; c < chunks; c++) {
        const size_t i = c * CHUNK;
        kt->glu(act == QB_GLU_GELU_TANH, n - i < CHUNK ? n - i : CHUNK, g + i, u + i, h + i);
    }
}

static qb_attn_shape attn_shape(const qb_config *c, int l, int T)
{
    return (qb_attn_shape){.T = T, .n_heads = c->n_heads, .n_kv_heads = c->n_kv_heads, .head_dim = c->head_dim,
                           .scale = c->query_scale, .softcap = c->attn_softcap,
                           .window = qb_config_layer_slides(c, l) ? c->swa_window : 0};
}

/* Block l on the residual x (T, dim), in place, keeping its activations in tp->la[l]. False:
 * no memory for the attention's working copy (x is then partly updated). */
static bool block_forward(qb_train_pass *tp, int l, const qb_train_layer *P, float *x, int T)
{
    const qb_config *c = &tp->m->cfg;
    const int dim = tp->dim, hid = tp->hid, qd = tp->q_dim, kvd = tp->kv_dim;
    const size_t td = (size_t)T * dim;
    layer_acts *a = &tp->la[l];
    const bool slides = qb_config_layer_slides(c, l);
    memcpy(a->x_in, x, td * sizeof *x);
    rmsnorm_rows(a->xn1, x, P->attn_norm, T, dim, c->norm_eps);
    float *ql = a->q_lin ? a->q_lin : a->q, *kl = a->k_lin ? a->k_lin : a->k;
    linear(tp, P->wq, a->xn1, T, dim, qd, ql);
    linear(tp, P->wk, a->xn1, T, dim, kvd, kl);
    linear(tp, P->wv, a->xn1, T, dim, kvd, a->v);
    if (P->bq) {
        add_bias_rows(ql, P->bq, T, qd);
        add_bias_rows(kl, P->bk, T, kvd);
        add_bias_rows(a->v, P->bv, T, kvd);
    }
    if (a->q_lin) {
        rmsnorm_rows(a->q, a->q_lin, P->q_norm, T * c->n_heads, c->head_dim, c->norm_eps);
        rmsnorm_rows(a->k, a->k_lin, P->k_norm, T * c->n_kv_heads, c->head_dim, c->norm_eps);
    }
    rope_rows(a->q, T, c->n_heads, c->head_dim, slides ? tp->cs_swa : tp->cs, slides ? tp->sn_swa : tp->sn,
              c->rope_layout);
    rope_rows(a->k, T, c->n_kv_heads, c->head_dim, slides ? tp->cs_swa : tp->cs, slides ? tp->sn_swa : tp->sn,
              c->rope_layout);
    qb_attn_shape as = attn_shape(c, l, T);
    if (!qb_attn_forward(&as, a->q, a->k, a->v, a->p, a->att)) return false;
    linear(tp, P->wo, a->att, T, qd, dim, a->o);
    const float *br = a->o;
    if (P->post_attn_norm) {
        rmsnorm_rows(tp->dbr, a->o, P->post_attn_norm, T, dim, c->norm_eps); /* dbr: scratch here */
        br = tp->dbr;
    }
    for (size_t i = 0; i < td; i++) x[i] += br[i];
    memcpy(a->x_mid, x, td * sizeof *x);
    rmsnorm_rows(a->xn2, x, P->ffn_norm, T, dim, c->norm_eps);
    linear(tp, P->w_gate, a->xn2, T, dim, hid, a->g);
    linear(tp, P->w_up, a->xn2, T, dim, hid, a->u);
    gate(c->act, a->g, a->u, a->h, (size_t)T * hid);
    linear(tp, P->w_down, a->h, T, hid, dim, a->f);
    br = a->f;
    if (P->post_ffn_norm) {
        rmsnorm_rows(tp->dbr, a->f, P->post_ffn_norm, T, dim, c->norm_eps);
        br = tp->dbr;
    }
    for (size_t i = 0; i < td; i++) x[i] += br[i];
    return true;
}

/* The head on the residual in tp->x_fin (T, dim): output_norm, the classifier, the final
 * soft-cap (the capped logits kept for the backward). */
static void head_forward(qb_train_pass *tp, const float *output_norm, const float *output, int T, float *logits)
{
    const qb_config *c = &tp->m->cfg;
    rmsnorm_rows(tp->xn_out, tp->x_fin, output_norm, T, tp->dim, c->norm_eps);
    linear(tp, output, tp->xn_out, T, tp->dim, tp->vocab, logits);
    if (c->final_softcap > 0) {
        const float cap = c->final_softcap;
        for (size_t i = 0; i < (size_t)T * tp->vocab; i++) logits[i] = cap * tanhf(logits[i] / cap);
        memcpy(tp->logits, logits, (size_t)T * tp->vocab * sizeof *logits);
    }
}

qb_status qb_train_forward(qb_ctx *ctx, qb_train_pass *tp, const qb_train_params *p, const int32_t *tokens, int T,
                           float *logits)
{
    const qb_model *m = tp->m;
    const qb_config *c = &m->cfg;
    if (T <= 0 || T > tp->max_T)
        return qb_fail(ctx, QB_ERR_ARG, "a training sequence of %d tokens (this pass holds 1 to %d)", T, tp->max_T);
    for (int t = 0; t < T; t++)
        if (tokens[t] < 0 || tokens[t] >= c->vocab_size)
            return qb_fail(ctx, QB_ERR_ARG, "token id %d out of range (vocab %d)", tokens[t], c->vocab_size);
    qb_ctx_apply_threads(ctx);
    const int dim = tp->dim;
    memcpy(tp->tokens, tokens, (size_t)T * sizeof *tokens);
    float *x = tp->x_fin; /* the residual stream, left in x_fin after the last layer */
    for (int t = 0; t < T; t++)
        for (int i = 0; i < dim; i++) x[(size_t)t * dim + i] = p->tok_embd[(size_t)tokens[t] * dim + i] * c->embed_scale;
    for (int l = 0; l < c->n_layers; l++)
        if (!block_forward(tp, l, &p->layers[l], x, T)) {
            tp->T = 0;
            return qb_fail(ctx, QB_ERR_NOMEM, "out of memory in the training forward");
        }
    head_forward(tp, p->output_norm, p->output, T, logits);
    tp->T = T;
    tp->block = -1;
    tp->kept = 0;
    return QB_OK;
}

qb_status qb_train_head_forward(qb_ctx *ctx, qb_train_pass *tp, const float *output_norm, const float *output,
                                const float *x, int T, float *logits)
{
    if (T <= 0 || T > tp->max_T)
        return qb_fail(ctx, QB_ERR_ARG, "a training sequence of %d tokens (this pass holds 1 to %d)", T, tp->max_T);
    qb_ctx_apply_threads(ctx);
    memcpy(tp->x_fin, x, (size_t)T * tp->dim * sizeof *x);
    head_forward(tp, output_norm, output, T, logits);
    tp->T = T;
    tp->block = HEAD_ALONE;
    return QB_OK;
}

qb_status qb_train_block_forward(qb_ctx *ctx, qb_train_pass *tp, int l, const qb_train_layer *P, float *x, int T)
{
    if (T <= 0 || T > tp->max_T)
        return qb_fail(ctx, QB_ERR_ARG, "a training sequence of %d tokens (this pass holds 1 to %d)", T, tp->max_T);
    if (l < 0 || l >= tp->m->cfg.n_layers)
        return qb_fail(ctx, QB_ERR_ARG, "block %d of a %d-block model", l, tp->m->cfg.n_layers);
    qb_ctx_apply_threads(ctx);
    if (!block_forward(tp, l, P, x, T)) {
        tp->T = 0;
        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory in the training forward");
    }
    tp->kept = tp->recompute ? 0 : l == 0 ? 1 : tp->kept == l && tp->T == T ? l + 1 : 0;
    tp->T = T;
    tp->block = l;
    return QB_OK;
}

/* ---- backward ---------------------------------------------------------------------------- */

static void sum_rows(const float *d, int T, int n, float *g)
{
    if (!g) return;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < n; i++) g[i] += d[(size_t)t * n + i];
}

/* The backward of block l's last forward: tp->dx (T, dim), the gradient with respect to the
 * block's output, becomes the one with respect to its input; G += its parameters' gradients.
 * False: out of memory. */
static bool block_backward(qb_train_pass *tp, int l, const qb_train_layer *P, qb_train_layer *G)
{
    const qb_config *c = &tp->m->cfg;
    const int T = tp->T, dim = tp->dim, hid = tp->hid, qd = tp->q_dim, kvd = tp->kv_dim;
    const size_t td = (size_t)T * dim;
    bool ok = true;
    const layer_acts *a = &tp->la[l];
    const bool slides = qb_config_layer_slides(c, l);
    /* FFN branch: x = x_mid + post(f) */
    const float *df = tp->dx;
    if (P->post_ffn_norm) {
        memset(tp->dbr, 0, td * sizeof(float));
        ok = ok && qb_bw_rmsnorm(a->f, P->post_ffn_norm, tp->dx, T, dim, c->norm_eps, tp->dbr, G->post_ffn_norm);
        df = tp->dbr;
    }
    memset(tp->dh, 0, (size_t)T * hid * sizeof(float));
    qb_bw_linear(a->h, P->w_down, df, T, hid, dim, tp->dh, G->w_down);
    memset(tp->dg, 0, (size_t)T * hid * sizeof(float));
    memset(tp->du, 0, (size_t)T * hid * sizeof(float));
    qb_bw_glu(c->act, a->g, a->u, tp->dh, (size_t)T * hid, tp->dg, tp->du);
    memset(tp->dxn, 0, td * sizeof(float));
    qb_bw_linear(a->xn2, P->w_gate, tp->dg, T, dim, hid, tp->dxn, G->w_gate);
    qb_bw_linear(a->xn2, P->w_up, tp->du, T, dim, hid, tp->dxn, G->w_up);
    memcpy(tp->dmid, tp->dx, td * sizeof(float));
    ok = ok && qb_bw_rmsnorm(a->x_mid, P->ffn_norm, tp->dxn, T, dim, c->norm_eps, tp->dmid, G->ffn_norm);
    /* attention branch: x_mid = x_in + post(o) */
    const float *dout = tp->dmid;
    if (P->post_attn_norm) {
        memset(tp->dbr2, 0, td * sizeof(float));
        ok = ok && qb_bw_rmsnorm(a->o, P->post_attn_norm, tp->dmid, T, dim, c->norm_eps, tp->dbr2,
                                 G->post_attn_norm);
        dout = tp->dbr2;
    }
    memset(tp->datt, 0, (size_t)T * qd * sizeof(float));
    qb_bw_linear(a->att, P->wo, dout, T, qd, dim, tp->datt, G->wo);
    memset(tp->dq, 0, (size_t)T * qd * sizeof(float));
    memset(tp->dk, 0, (size_t)T * kvd * sizeof(float));
    memset(tp->dv, 0, (size_t)T * kvd * sizeof(float));
    qb_attn_shape as = attn_shape(c, l, T);
    ok = ok && qb_bw_attention(&as, a->q, a->k, a->v, a->p, tp->datt, tp->dq, tp->dk, tp->dv);
    qb_bw_rope(tp->dq, T, c->n_heads, c->head_dim, slides ? tp->cs_swa : tp->cs, slides ? tp->sn_swa : tp->sn,
               c->rope_layout);
    qb_bw_rope(tp->dk, T, c->n_kv_heads, c->head_dim, slides ? tp->cs_swa : tp->cs, slides ? tp->sn_swa : tp->sn,
               c->rope_layout);
    const float *dql = tp->dq, *dkl = tp->dk;
    if (a->q_lin) {
        memset(tp->dql, 0, (size_t)T * qd * sizeof(float));
        memset(tp->dkl, 0, (size_t)T * kvd * sizeof(float));
        ok = ok && qb_bw_rmsnorm(a->q_lin, P->q_norm, tp->dq, T * c->n_heads, c->head_dim, c->norm_eps, tp->dql,
                                 G->q_norm);
        ok = ok && qb_bw_rmsnorm(a->k_lin, P->k_norm, tp->dk, T * c->n_kv_heads, c->head_dim, c->norm_eps,
                                 tp->dkl, G->k_norm);
        dql = tp->dql;
        dkl = tp->dkl;
    }
    if (P->bq) {
        sum_rows(dql, T, qd, G->bq);
        sum_rows(dkl, T, kvd, G->bk);
        sum_rows(tp->dv, T, kvd, G->bv);
    }
    memset(tp->dxn, 0, td * sizeof(float));
    qb_bw_linear(a->xn1, P->wq, dql, T, dim, qd, tp->dxn, G->wq);
    qb_bw_linear(a->xn1, P->wk, dkl, T, dim, kvd, tp->dxn, G->wk);
    qb_bw_linear(a->xn1, P->wv, tp->dv, T, dim, kvd, tp->dxn, G->wv);
    memcpy(tp->dx, tp->dmid, td * sizeof(float));
    ok = ok && qb_bw_rmsnorm(a->x_in, P->attn_norm, tp->dxn, T, dim, c->norm_eps, tp->dx, G->attn_norm);
    return ok;
}

/* The head's backward from dlogits (T, vocab): tp->dx (T, dim) = the gradient with respect to
 * the residual after the last block; g_norm, g_out += the head's gradients. False: out of
 * memory. */
static bool head_backward(qb_train_pass *tp, const float *output_norm, const float *output, const float *dlogits,
                          float *g_norm, float *g_out)
{
    const qb_config *c = &tp->m->cfg;
    const int T = tp->T, dim = tp->dim, V = tp->vocab;
    const size_t td = (size_t)T * dim;
    float *dlog = tp->dlog;
    memcpy(dlog, dlogits, (size_t)T * V * sizeof *dlog);
    if (c->final_softcap > 0) /* y = cap·tanh(z/cap): dz = dy (1 − (y/cap)²) */
        for (size_t i = 0; i < (size_t)T * V; i++) {
            const float y = tp->logits[i] / c->final_softcap;
            dlog[i] *= 1.0f - y * y;
        }
    memset(tp->dxn, 0, td * sizeof(float));
    qb_bw_linear(tp->xn_out, output, dlog, T, dim, V, tp->dxn, g_out);
    memset(tp->dx, 0, td * sizeof(float));
    /* x_fin holds the residual after the last layer */
    return qb_bw_rmsnorm(tp->x_fin, output_norm, tp->dxn, T, dim, c->norm_eps, tp->dx, g_norm);
}

qb_status qb_train_backward(qb_ctx *ctx, qb_train_pass *tp, const qb_train_params *p, const float *dlogits,
                            qb_train_params *g)
{
    const qb_model *m = tp->m;
    const qb_config *c = &m->cfg;
    const int T = tp->T, dim = tp->dim;
    if (T <= 0 || tp->block != -1) return qb_fail(ctx, QB_ERR_ARG, "backward without a forward of the whole model");
    if (g->model != m || p->model != m) return qb_fail(ctx, QB_ERR_ARG, "parameters of another model");
    qb_ctx_apply_threads(ctx);
    const size_t td = (size_t)T * dim;
    bool ok = head_backward(tp, p->output_norm, p->output, dlogits, g->output_norm, g->output);
    for (int l = c->n_layers - 1; ok && l >= 0; l--) {
        if (tp->recompute && l < c->n_layers - 1) { /* the shared activations hold the last block's */
            memcpy(tp->xr, tp->la[l].x_in, td * sizeof(float));
            ok = block_forward(tp, l, &p->layers[l], tp->xr, T);
        }
        ok = ok && block_backward(tp, l, &p->layers[l], &g->layers[l]);
    }
    if (!ok) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory in the backward pass");
    for (int t = 0; g->tok_embd && t < T; t++) {
        float *ge = g->tok_embd + (size_t)tp->tokens[t] * dim;
        for (int i = 0; i < dim; i++) ge[i] += tp->dx[(size_t)t * dim + i] * c->embed_scale;
    }
    return QB_OK;
}

qb_status qb_train_block_backward(qb_ctx *ctx, qb_train_pass *tp, int l, const qb_train_layer *P, float *dx,
                                  qb_train_layer *G)
{
    if (tp->T <= 0 || (tp->block != l && l >= tp->kept))
        return qb_fail(ctx, QB_ERR_ARG, "backward of block %d without its forward", l);
    qb_ctx_apply_threads(ctx);
    const size_t td = (size_t)tp->T * tp->dim;
    memcpy(tp->dx, dx, td * sizeof *dx);
    if (!block_backward(tp, l, P, G)) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory in the backward pass");
    memcpy(dx, tp->dx, td * sizeof *dx);
    return QB_OK;
}

qb_status qb_train_head_backward(qb_ctx *ctx, qb_train_pass *tp, const float *output_norm, const float *output,
                                 const float *dlogits, float *dx, float *g_output_norm, float *g_output)
{
    if (tp->T <= 0 || tp->block != HEAD_ALONE)
        return qb_fail(ctx, QB_ERR_ARG, "backward of the head without its forward");
    qb_ctx_apply_threads(ctx);
    if (!head_backward(tp, output_norm, output, dlogits, g_output_norm, g_output))
        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory in the backward pass");
    memcpy(dx, tp->dx, (size_t)tp->T * tp->dim * sizeof *dx);
    return QB_OK;
}

float *qb_train_param_copy(const qb_tensor *t, bool values) { return t ? param_of(t, values) : NULL; }
