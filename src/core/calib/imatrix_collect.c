/* imatrix_collect.c — collecting an importance matrix as llama-imatrix does (imatrix.h gives
 * the protocol): chunks of the text through the forward pass in llama.cpp's batches and calls,
 * the observers adding x² per column at each capture point (in double), the experts' inputs
 * per expert; the entries are made at the end, one per weight matrix, from the points. */
#include "imatrix.h"
#include "../infer/infer.h"
#include "../tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_DENSE_TOKENS 16 /* llama-imatrix skips MUL_MAT calls of fewer tokens */
#define CTX_PAD 32          /* llama.cpp rounds its context up to this (its KV cache padding) */

/* Sums at one capture point: n_mat matrices (experts) of width columns. */
typedef struct {
    double *sum;    /* (n_mat, width) Σx² */
    int64_t *count; /* (n_mat) tokens */
    int32_t ncall;  /* calls that reached it */
    int width, n_mat;
} acc;

enum { P_ATTN_IN, P_ATTN_OUT, P_FFN_IN, P_FFN_DOWN_IN, P_EXP_IN, P_EXP_DOWN_IN, P_COUNT };

typedef struct {
    const qb_model *m;
    acc *a;      /* (n_layers, P_COUNT) */
    acc out;     /* output.weight's input (width 0: not collected) */
} collector;

static bool acc_init(acc *a, int width, int n_mat)
{
    a->width = width;
    a->n_mat = n_mat;
    a->sum = calloc((size_t)width * n_mat, sizeof *a->sum);
    a->count = calloc((size_t)n_mat, sizeof *a->count);
    return a->sum && a->count;
}

static void acc_add(acc *a, int mat, const float *x, int n)
{
    double *s = a->sum + (size_t)mat * a->width;
    for (int t = 0; t < n; t++) {
        const float *r = x + (size_t)t * a->width;
        for (int i = 0; i < a->width; i++) s[i] += (double)r[i] * r[i];
    }
    a->count[mat] += n;
}

static void observer(void *ud, int layer, qb_obs_point pt, float *x, int n, int width)
{
    collector *c = ud;
    if (pt == QB_OBS_OUTPUT_IN) {
        if (c->out.width == width && n >= MIN_DENSE_TOKENS) {
            c->out.ncall++;
            acc_add(&c->out, 0, x, n);
        }
        return;
    }
    if (layer < 0 || layer >= c->m->cfg.n_layers || pt > QB_OBS_FFN_DOWN_IN) return;
    acc *a = &c->a[layer * P_COUNT];
    if (pt == QB_OBS_FFN_IN && c->m->layers[layer].router) { /* every call reaches the experts */
        a[P_EXP_IN].ncall++;
        a[P_EXP_DOWN_IN].ncall++;
    }
    acc *p = &a[pt]; /* P_ATTN_IN .. P_FFN_DOWN_IN are the observer's points in order */
    if (p->width != width || n < MIN_DENSE_TOKENS) return;
    p->ncall++;
    acc_add(p, 0, x, n);
}

static void expert_observer(void *ud, int layer, int expert, qb_obs_point pt, const float *x, int n, int width)
{
    collector *c = ud;
    if (layer < 0 || layer >= c->m->cfg.n_layers) return;
    acc *p = &c->a[layer * P_COUNT + (pt == QB_OBS_FFN_IN ? P_EXP_IN : P_EXP_DOWN_IN)];
    if (p->width == width && expert >= 0 && expert < p->n_mat) acc_add(p, expert, x, n);
}

static void collector_free(collector *c)
{
    for (int i = 0; c->a && i < c->m->cfg.n_layers * P_COUNT; i++) {
        free(c->a[i].sum);
        free(c->a[i].count);
    }
    free(c->a);
    free(c->out.sum);
    free(c->out.count);
}

static bool collector_init(collector *c, const qb_model *m, bool process_output)
{
    const qb_config *cf = &m->cfg;
    memset(c, 0, sizeof *c);
    c->m = m;
    if (!(c->a = calloc((size_t)cf->n_layers * P_COUNT, sizeof *c->a))) return false;
    for (int l = 0; l < cf->n_layers; l++) {
        acc *a = &c->a[l * P_COUNT];
        bool moe = m->layers[l].router != NULL;
        if (!acc_init(&a[P_ATTN_IN], cf->dim, 1) || !acc_init(&a[P_ATTN_OUT], cf->n_heads * cf->head_dim, 1) ||
            !acc_init(&a[P_FFN_IN], cf->dim, 1) || (!moe && !acc_init(&a[P_FFN_DOWN_IN], cf->hidden_dim, 1)) ||
            (moe && (!acc_init(&a[P_EXP_IN], cf->dim, cf->n_experts) ||
                     !acc_init(&a[P_EXP_DOWN_IN], cf->expert_hidden_dim, cf->n_experts))))
            return false;
    }
    /* a tied output multiplies token_embd.weight, which llama-imatrix never collects */
    if (process_output && m->output && !strcmp(m->output->name, "output.weight"))
        return acc_init(&c->out, cf->dim, 1);
    return true;
}

/* One entry from the sums of a point (none when no call reached it). */
static bool put_entry(qb_imatrix *im, const char *name, const acc *a)
{
    if (!a->sum || a->ncall == 0) return true;
    qb_imatrix_entry *e = qb_imatrix_add(im, name, strlen(name), a->width, a->n_mat);
    if (!e) return false;
    e->ncall = a->ncall;
    for (size_t i = 0; i < (size_t)a->width * a->n_mat; i++) e->sum2[i] = (float)a->sum[i];
    for (int j = 0; j < a->n_mat; j++) e->counts[j] = (float)a->count[j];
    return true;
}

static bool make_entries(qb_imatrix *im, const collector *c)
{
    const qb_model *m = c->m;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const qb_layer_weights *L = &m->layers[l];
        const acc *a = &c->a[l * P_COUNT];
        const struct { const qb_tensor *t; int p; } mats[] = {
            {L->wq, P_ATTN_IN}, {L->wk, P_ATTN_IN}, {L->wv, P_ATTN_IN}, {L->wqkv, P_ATTN_IN}, {L->wo, P_ATTN_OUT},
            {L->router, P_FFN_IN}, {L->w_gate, P_FFN_IN}, {L->w_up, P_FFN_IN}, {L->w_gate_up, P_FFN_IN},
            {L->w_down, P_FFN_DOWN_IN}};
        for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++)
            if (mats[i].t && !put_entry(im, mats[i].t->name, &a[mats[i].p])) return false;
        if (!L->router) continue;
        static const char *const kinds[] = {"gate", "up", "down"};
        for (int k = 0; k < 3; k++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%d.ffn_%s_exps.weight", l, kinds[k]);
            if (!put_entry(im, name, &a[k < 2 ? P_EXP_IN : P_EXP_DOWN_IN])) return false;
        }
    }
    return c->out.width == 0 || put_entry(im, "output.weight", &c->out);
}

/* Run the chunks: each from an empty cache, BOS first when the model adds one, in batches of
 * n_batch tokens split into calls of n_ubatch (one forward-pass step each). */
static qb_status run_chunks(qb_ctx *ctx, const qb_model *m, const int32_t *tokens, int n_chunks, int n_ctx,
                            int n_batch, int n_ubatch, bool logits, const qb_imatrix_opts *o, collector *c)
{
    qb_infer *inf;
    qb_status st = qb_infer_new(ctx, m, n_ctx, n_ubatch, &inf);
    if (st != QB_OK) return st;
    qb_infer_set_observer(inf, observer, c);
    qb_infer_set_expert_observer(inf, expert_observer, c);
    int32_t *chunk = malloc((size_t)n_ctx * sizeof *chunk);
    float *lg = logits ? malloc((size_t)n_ubatch * m->cfg.vocab_size * sizeof *lg) : NULL;
    if (!chunk || (logits && !lg)) st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory for a %d-token chunk", n_ctx);
    bool add_bos = m->tok && qb_tokenizer_add_bos(m->tok) && qb_tokenizer_bos(m->tok) >= 0;
    for (int i = 0; i < n_chunks && st == QB_OK; i++) {
        memcpy(chunk, tokens + (size_t)i * n_ctx, (size_t)n_ctx * sizeof *chunk);
        if (add_bos) chunk[0] = qb_tokenizer_bos(m->tok);
        for (int b = 0; b < n_ctx && st == QB_OK; b += n_batch) {
            if (o && o->cancel && *o->cancel) {
                st = qb_fail(ctx, QB_ERR_CANCELLED, "imatrix cancelled");
                break;
            }
            int bs = n_ctx - b < n_batch ? n_ctx - b : n_batch;
            for (int u = 0; u < bs && st == QB_OK; u += n_ubatch) {
                int us = bs - u < n_ubatch ? bs - u : n_ubatch;
                st = qb_infer_eval(ctx, inf, chunk + b + u, us, b + u, lg, lg ? us : 0);
            }
        }
        if (st == QB_OK && o && o->progress) o->progress(o->ud, i + 1, n_chunks);
    }
    free(lg);
    free(chunk);
    qb_infer_free(inf);
    return st;
}

qb_status qb_imatrix_collect(qb_ctx *ctx, const qb_model *m, const int32_t *tokens, int n_tokens, const char *dataset,
                             const qb_imatrix_opts *o, qb_imatrix **out)
{
    *out = NULL;
    int asked = o && o->n_ctx > 0 ? o->n_ctx : 512;
    if (asked > (1 << 24)) return qb_fail(ctx, QB_ERR_ARG, "imatrix: a %d-token context is too long", asked);
    int n_ctx = (asked + CTX_PAD - 1) / CTX_PAD * CTX_PAD;
    int n_batch = o && o->n_batch > 0 ? o->n_batch : 2048;
    int n_ubatch = o && o->n_ubatch > 0 ? o->n_ubatch : 512;
    if (n_batch > asked) n_batch = asked; /* llama-imatrix: the context asked for, not the padded one */
    if (n_ubatch > n_batch) n_ubatch = n_batch;
    if (n_tokens < 2 * n_ctx) /* llama-imatrix's requirement */
        return qb_fail(ctx, QB_ERR_ARG, "the text has %d tokens; a %d-token context needs at least %d", n_tokens,
                       n_ctx, 2 * n_ctx);
    int n_chunks = n_tokens / n_ctx;
    if (o && o->n_chunks > 0 && o->n_chunks < n_chunks) n_chunks = o->n_chunks;
    collector c = {0};
    qb_imatrix *im = qb_imatrix_new();
    qb_status st = QB_OK;
    if (!im || !collector_init(&c, m, o && o->process_output)) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory for the imatrix sums");
        goto done;
    }
    st = run_chunks(ctx, m, tokens, n_chunks, n_ctx, n_batch, n_ubatch, c.out.width > 0, o, &c);
    if (st != QB_OK) goto done;
    if (!make_entries(im, &c) || (dataset && !qb_imatrix_add_dataset(im, dataset, strlen(dataset)))) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory for the imatrix");
        goto done;
    }
    im->chunk_count = n_chunks;
    im->chunk_size = n_ctx;
    st = qb_imatrix_finish(ctx, im);
done:
    if (c.m) collector_free(&c);
    if (st != QB_OK) {
        qb_imatrix_free(im);
        return st;
    }
    *out = im;
    return QB_OK;
}

qb_status qb_imatrix_collect_file(qb_ctx *ctx, const qb_model *m, const char *path, const qb_imatrix_opts *o,
                                  qb_imatrix **out)
{
    *out = NULL;
    int32_t *tokens;
    int n;
    qb_status st = qb_model_tokenize_file(ctx, m, path, &tokens, &n);
    if (st != QB_OK) return st;
    st = qb_imatrix_collect(ctx, m, tokens, n, path, o, out);
    free(tokens);
    if (st == QB_ERR_ARG) {
        char why[sizeof ctx->errmsg];
        memcpy(why, ctx->errmsg, sizeof why);
        return qb_fail(ctx, st, "%s: %s", path, why);
    }
    return st;
}
