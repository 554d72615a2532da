/* fisher_stream.c — the Fisher pass for models whose three f32 copies of the parameters do not
 * fit (fisher.h): the sums fisher.c gathers chunk by chunk, gathered block by block, so one
 * block's parameters, gradient and diagonal are held at a time; each diagonal prices the
 * formats asked for as soon as it is complete and is then dropped.
 *
 *   forward     the chunks' residuals through block 0, 1, … (each block's f32 copy made once),
 *               every block's activations kept per chunk when they take at most a third of the
 *               RAM, else only its input (n_layers × chunks × n_ctx × dim floats);
 *   head        per chunk the logits, the labels drawn as fisher.c draws them, per draw the
 *               head's backward: the residual's gradient, the classifier's diagonal;
 *   backward    block n_layers−1 … 0: per chunk (its forward again from the kept input when
 *               only that was kept) a backward per draw, the gradient squared into the block's
 *               diagonal;
 *   embeddings  per draw the gradient rows of the chunk's tokens (a tied classifier: its head
 *               gradient rows of those tokens first, as the in-memory pass's one array), squared.
 *
 * Every gradient is the in-memory pass's arithmetic, so each price equals what the estimate
 * computes from the in-memory diagonal (a tied array's squares are summed in another order).
 * Cost: the in-memory pass's 1 + 2·draws forward passes per chunk, one more when recomputing. */
#include "fisher_internal.h"
#include "eval_internal.h"
#include "../quant/apply.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    qb_ctx *ctx;
    qb_fisher *f;
    const qb_model *m;
    const qb_fisher_opts *o;
    int T, C, K, L, dim, V;
    float w;          /* the weight of one draw's squares */
    float inv;        /* 1 / the scored positions */
    qb_train_pass **tps; /* per chunk, keeping every block's activations; or one recomputing */
    int n_tps;
    qb_train_pass *tp;   /* the pass of the head and, recomputing, of every block */
    int32_t *toks;    /* (C, T) */
    float *xs;        /* (L, C, T, dim) every block's inputs */
    float *x;         /* (C, T, dim) the residuals */
    float *dx;        /* (C·K, T, dim) the residuals' gradients, per chunk × draw */
    float *keep;      /* tied classifier: (C·K, T, dim) its gradient rows of each chunk's tokens */
    int done, total;  /* progress */
    qb_train_layer P, G, D; /* one block's values, gradient, diagonal: made once, reloaded per block */
    int shaped;       /* the block P (and G, D when with_grads) were made for (-1: none) */
    bool with_grads;
} stream;

/* s->P (values), and with grads s->G and s->D (zeros), for block l: reloaded in place when its
 * shapes are the last block's (no new pages to fault in for every block of a large model). */
static qb_status layer_arrays(stream *s, int l, bool grads)
{
    if (s->shaped >= 0 && grads == s->with_grads && qb_train_layer_reload(s->m, s->shaped, l, true, &s->P) &&
        (!grads || (qb_train_layer_reload(s->m, s->shaped, l, false, &s->G) &&
                    qb_train_layer_reload(s->m, s->shaped, l, false, &s->D))))
        return QB_OK;
    qb_train_layer_release(&s->P);
    qb_train_layer_release(&s->G);
    qb_train_layer_release(&s->D);
    s->shaped = -1;
    qb_status st = qb_train_layer_init(s->ctx, s->m, l, true, &s->P);
    if (st == QB_OK && grads) st = qb_train_layer_init(s->ctx, s->m, l, false, &s->G);
    if (st == QB_OK && grads) st = qb_train_layer_init(s->ctx, s->m, l, false, &s->D);
    if (st == QB_OK) s->shaped = l, s->with_grads = grads;
    return st;
}

static qb_status step(stream *s)
{
    if (s->o->progress) s->o->progress(s->o->ud, ++s->done, s->total);
    if (s->o->cancel && *s->o->cancel)
        return qb_fail(s->ctx, QB_ERR_CANCELLED, "Fisher pass cancelled (%d of %d steps)", s->done, s->total);
    return QB_OK;
}

/* d += w · g² over n values. */
static void add_squares(float *d, const float *g, size_t n, float w)
{
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) d[i] += w * g[i] * g[i];
}

static void scale(float *d, size_t n, float k)
{
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) d[i] *= k;
}

static qb_status price(stream *s, const qb_tensor *t, float *d)
{
    scale(d, (size_t)qb_tensor_nelements(t), s->inv);
    if (!qb_tensor_quantizable(t)) return QB_OK;
    return qb_fisher_price_tensor(s->ctx, s->f, t, d, s->o->price, s->o->n_price, s->o->cancel);
}

/* The chunks' embeddings into s->x, then every block forward, inputs kept. */
static qb_status forward(stream *s)
{
    const qb_config *c = &s->m->cfg;
    const size_t td = (size_t)s->T * s->dim;
    for (int i = 0; i < s->C * s->T; i++) {
        const int32_t tok = s->toks[i];
        if (tok < 0 || tok >= s->V)
            return qb_fail(s->ctx, QB_ERR_ARG, "token id %d out of range (vocab %d)", tok, s->V);
        float *x = s->x + (size_t)i * s->dim;
        qb_tensor_source_rows(s->m->tok_embd, tok, 1, x);
        for (int j = 0; j < s->dim; j++) x[j] *= c->embed_scale;
    }
    qb_status st = QB_OK;
    for (int l = 0; st == QB_OK && l < s->L; l++) {
        if ((st = layer_arrays(s, l, false)) != QB_OK) break;
        for (int ch = 0; st == QB_OK && ch < s->C; ch++) {
            float *x = s->x + (size_t)ch * td;
            if (s->xs) memcpy(s->xs + ((size_t)l * s->C + ch) * td, x, td * sizeof *x);
            qb_train_pass *tp = s->xs ? s->tp : s->tps[ch];
            if ((st = qb_train_block_forward(s->ctx, tp, l, &s->P, x, s->T)) == QB_OK) st = step(s);
        }
    }
    return st;
}

/* The head per chunk and draw: labels, the residual's gradient into s->dx, the classifier's
 * diagonal (priced here, or kept in *tied_diag for the embeddings when tied). */
static qb_status head(stream *s, uint64_t seed, int first, int last, bool sampled, float **tied_diag)
{
    const qb_model *m = s->m;
    const bool tied = m->output == m->tok_embd;
    const size_t T = (size_t)s->T, dim = (size_t)s->dim, V = (size_t)s->V, nw = V * dim;
    float *norm = qb_train_param_copy(m->output_norm, true), *W = qb_train_param_copy(m->output, true);
    float *gn = calloc(dim, sizeof *gn), *dn = calloc(dim, sizeof *dn), *go = malloc(nw * sizeof *go);
    float *dw = calloc(nw, sizeof *dw), *logits = malloc(T * V * sizeof *logits), *dlog = malloc(T * V * sizeof *dlog);
    qb_status st = norm && W && gn && dn && go && dw && logits && dlog
                       ? QB_OK
                       : qb_fail(s->ctx, QB_ERR_NOMEM, "%s: out of memory for the classifier's Fisher pass", m->path);
    for (int ch = 0; st == QB_OK && ch < s->C; ch++) {
        const int32_t *buf = s->toks + (size_t)ch * T;
        st = qb_train_head_forward(s->ctx, s->tp, norm, W, s->x + (size_t)ch * T * dim, s->T, logits);
        for (int k = 0; st == QB_OK && k < s->K; k++) {
            uint64_t rng = qb_fisher_draw_seed(seed, ch, k);
            qb_fisher_chunk_dlogits(logits, buf, s->T, s->V, first, last, sampled, &rng, dlog);
            memset(go, 0, nw * sizeof *go);
            memset(gn, 0, dim * sizeof *gn);
            const int seq = ch * s->K + k;
            float *dx = s->dx + (size_t)seq * T * dim;
            if ((st = qb_train_head_backward(s->ctx, s->tp, norm, W, dlog, dx, gn, go)) != QB_OK) break;
            if (tied) /* these rows are squared with the embeddings' gradient added (embeddings()) */
                for (size_t t = 0; t < T; t++) {
                    float *row = go + (size_t)buf[t] * dim;
                    memcpy(s->keep + ((size_t)seq * T + t) * dim, row, dim * sizeof *row);
                    memset(row, 0, dim * sizeof *row); /* a token seen twice: its row kept at its first */
                }
            add_squares(dw, go, nw, s->w);
            add_squares(dn, gn, dim, s->w);
        }
        if (st == QB_OK) st = step(s);
    }
    free(W); /* before pricing, which makes its own copy of the classifier */
    free(go);
    free(logits);
    free(dlog);
    W = go = logits = dlog = NULL;
    if (st == QB_OK && m->output_norm) st = price(s, m->output_norm, dn);
    if (st == QB_OK && !tied) st = price(s, m->output, dw);
    if (st == QB_OK && tied) {
        *tied_diag = dw;
        dw = NULL;
    }
    free(norm);
    free(W);
    free(gn);
    free(dn);
    free(go);
    free(dw);
    free(logits);
    free(dlog);
    return st;
}

/* Block l's diagonal from every chunk × draw, the residual's gradients carried below it. */
static qb_status block(stream *s, int l, float *xr)
{
    const size_t td = (size_t)s->T * s->dim;
    qb_status st = layer_arrays(s, l, true);
    qb_train_layer *P = &s->P, *G = &s->G, *D = &s->D;
    const qb_layer_weights *Lw = &s->m->layers[l];
    for (int ch = 0; st == QB_OK && ch < s->C; ch++) {
        qb_train_pass *tp = s->xs ? s->tp : s->tps[ch];
        if (s->xs) { /* recomputing: the block's forward again from its input */
            memcpy(xr, s->xs + ((size_t)l * s->C + ch) * td, td * sizeof *xr);
            st = qb_train_block_forward(s->ctx, tp, l, P, xr, s->T);
        }
        for (int k = 0; st == QB_OK && k < s->K; k++) {
#define ZERO(f)                                                                                                   \
    if (G->f) memset(G->f, 0, (size_t)qb_tensor_nelements(Lw->f) * sizeof *G->f);
            QB_LAYER_TENSORS(ZERO)
#undef ZERO
            if ((st = qb_train_block_backward(s->ctx, tp, l, P, s->dx + (size_t)(ch * s->K + k) * td, G)) != QB_OK)
                break;
#define SQUARE(f)                                                                                                 \
    if (G->f) add_squares(D->f, G->f, (size_t)qb_tensor_nelements(Lw->f), s->w);
            QB_LAYER_TENSORS(SQUARE)
#undef SQUARE
        }
        if (st == QB_OK) st = step(s);
    }
#define PRICE(f)                                                                                                  \
    if (st == QB_OK && D->f) st = price(s, Lw->f, D->f);
    QB_LAYER_TENSORS(PRICE)
#undef PRICE
    return st;
}

/* The embeddings' diagonal: per chunk × draw, the gradient rows of its tokens (starting from
 * the classifier's when tied), squared; then priced. */
static qb_status embeddings(stream *s, float *tied_diag)
{
    const qb_model *m = s->m;
    const size_t T = (size_t)s->T, dim = (size_t)s->dim, V = (size_t)s->V;
    float *d = tied_diag ? tied_diag : calloc(V * dim, sizeof *d), *rows = malloc(T * dim * sizeof *rows);
    int *slot = malloc(T * sizeof *slot), *first = malloc(T * sizeof *first);
    qb_status st = d && rows && slot && first ? QB_OK : qb_fail(s->ctx, QB_ERR_NOMEM, "out of memory");
    for (int seq = 0; st == QB_OK && seq < s->C * s->K; seq++) {
        const int32_t *buf = s->toks + (size_t)(seq / s->K) * T;
        int n = 0; /* the chunk's distinct tokens, in order of first appearance */
        for (size_t t = 0; t < T; t++) {
            int j = 0;
            while (j < n && buf[first[j]] != buf[t]) j++;
            if (j == n) first[n++] = (int)t;
            slot[t] = j;
        }
        for (int j = 0; j < n; j++) {
            float *r = rows + (size_t)j * dim;
            if (tied_diag) memcpy(r, s->keep + ((size_t)seq * T + first[j]) * dim, dim * sizeof *r);
            else memset(r, 0, dim * sizeof *r);
        }
        const float *g = s->dx + (size_t)seq * T * dim;
        for (size_t t = 0; t < T; t++) {
            float *r = rows + (size_t)slot[t] * dim;
            for (size_t i = 0; i < dim; i++) r[i] += g[t * dim + i] * m->cfg.embed_scale;
        }
        for (int j = 0; j < n; j++) add_squares(d + (size_t)buf[first[j]] * dim, rows + (size_t)j * dim, dim, s->w);
    }
    if (st == QB_OK) st = price(s, m->tok_embd, d);
    if (st == QB_OK) st = step(s);
    free(d);
    free(rows);
    free(slot);
    free(first);
    return st;
}

qb_status qb_fisher_stream(qb_ctx *ctx, qb_fisher *f, const int32_t *tokens, const qb_fisher_opts *o, int n_ctx,
                           int n_chunks, int first, int last)
{
    const qb_model *m = f->m;
    const qb_config *c = &m->cfg;
    const bool sampled = o->labels == QB_FISHER_SAMPLED;
    stream s = {.ctx = ctx, .f = f, .m = m, .o = o, .T = n_ctx, .C = n_chunks, .L = c->n_layers, .dim = c->dim,
                .V = c->vocab_size, .shaped = -1};
    s.K = sampled && o->samples > 0 ? o->samples : 1;
    s.w = sampled ? 1.0f / (float)s.K : 1.0f;
    f->n_positions = (long)n_chunks * (last - first);
    s.inv = 1.0f / (float)f->n_positions;
    s.total = s.C * (2 * s.L + 1) + 1;
    const size_t td = (size_t)s.T * s.dim;
    const double mem = qb_physical_memory();
    const bool keep = o->stream != QB_FISHER_STREAM_RECOMPUTE && mem > 0 &&
                      (double)s.C * (double)qb_train_acts_bytes(m, s.T, false) <= mem / 3;
    qb_status st = qb_train_pass_new_ex(ctx, m, n_ctx, true, &s.tp);
    if (st == QB_OK && keep && !(s.tps = calloc((size_t)s.C, sizeof *s.tps)))
        st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    for (int ch = 0; st == QB_OK && keep && ch < s.C; ch++, s.n_tps++)
        st = qb_train_pass_new_ex(ctx, m, n_ctx, false, &s.tps[ch]);
    if (st != QB_OK) {
        for (int ch = 0; ch < s.n_tps; ch++) qb_train_pass_free(s.tps[ch]);
        free(s.tps);
        qb_train_pass_free(s.tp);
        return st;
    }
    float *xr = malloc(td * sizeof *xr), *tied_diag = NULL;
    s.toks = malloc((size_t)s.C * s.T * sizeof *s.toks);
    if (!keep) s.xs = malloc((size_t)s.L * s.C * td * sizeof *s.xs);
    s.x = malloc((size_t)s.C * td * sizeof *s.x);
    s.dx = malloc((size_t)s.C * s.K * td * sizeof *s.dx);
    if (m->output == m->tok_embd) s.keep = malloc((size_t)s.C * s.K * td * sizeof *s.keep);
    if (!xr || !s.toks || (!keep && !s.xs) || !s.x || !s.dx || (m->output == m->tok_embd && !s.keep))
        st = qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory for the streaming Fisher pass's %d × %d-token residuals",
                     m->path, s.C, s.T);
    for (int ch = 0; st == QB_OK && ch < s.C; ch++) qb_eval_chunk_tokens(m, tokens, ch, s.T, s.toks + (size_t)ch * s.T);
    if (st == QB_OK) st = forward(&s);
    if (st == QB_OK) { /* the forward's block arrays are not needed while the head's are held */
        qb_train_layer_release(&s.P);
        s.shaped = -1;
    }
    if (st == QB_OK) st = head(&s, o->seed ? o->seed : QB_FISHER_DEFAULT_SEED, first, last, sampled, &tied_diag);
    for (int l = s.L - 1; st == QB_OK && l >= 0; l--) st = block(&s, l, xr);
    if (st == QB_OK) st = embeddings(&s, tied_diag);
    else free(tied_diag);
    qb_train_pass_free(s.tp);
    for (int ch = 0; ch < s.n_tps; ch++) qb_train_pass_free(s.tps[ch]);
    free(s.tps);
    f->recomputed = !keep;
    qb_train_layer_release(&s.P);
    qb_train_layer_release(&s.G);
    qb_train_layer_release(&s.D);
    free(xr);
    free(s.toks);
    free(s.xs);
    free(s.x);
    free(s.dx);
    free(s.keep);
    return st;
}
