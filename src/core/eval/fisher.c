/* fisher.c — the Fisher diagonal of a model's parameters from one calibration pass (fisher.h):
 * per chunk, the training pass's forward, labels drawn from the model's distribution (or the
 * text's), one backward of the chunk's summed log-likelihood, the gradient squared into the
 * diagonal. */
#include "fisher_internal.h"
#include "eval_internal.h"
#include "scan_internal.h"
#include "../quant/format.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One parameter array: its diagonal, its gradient, its size. */
typedef struct {
    float *diag, *grad;
    size_t n;
} slot;

/* The arrays of d and g side by side (a tied classifier once); *n_slots set. */
static slot *make_slots(const qb_model *m, qb_train_params *d, qb_train_params *g, int *n_slots)
{
    int cap = 3 + 32 * m->cfg.n_layers, n = 0;
    slot *s = calloc((size_t)cap, sizeof *s);
    if (!s) return NULL;
#define ADD(t, a)                                                                                                 \
    if ((t) && d->a && n < cap) s[n++] = (slot){d->a, g->a, (size_t)qb_tensor_nelements(t)};
    ADD(m->tok_embd, tok_embd)
    ADD(m->output_norm, output_norm)
    if (d->output != d->tok_embd) ADD(m->output, output)
    for (int l = 0; l < m->cfg.n_layers; l++) {
#define LAYER(f) ADD(m->layers[l].f, layers[l].f)
        QB_LAYER_TENSORS(LAYER)
#undef LAYER
    }
#undef ADD
    *n_slots = n;
    return s;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t qb_fisher_draw_seed(uint64_t seed, int c, int k)
{
    return seed ^ ((uint64_t)c * 0x100000001b3ULL + (uint64_t)k * 0x9e3779b9ULL);
}

void qb_fisher_chunk_dlogits(const float *logits, const int32_t *buf, int T, int V, int first, int last, bool sampled,
                          uint64_t *rng, float *dlog)
{
    memset(dlog, 0, (size_t)T * V * sizeof *dlog);
    for (int t = first; t < last; t++) {
        const float *z = logits + (size_t)t * V;
        float *d = dlog + (size_t)t * V;
        float mx = z[0];
        for (int v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
        double sum = 0;
        for (int v = 0; v < V; v++) sum += exp((double)z[v] - mx);
        int y = buf[t + 1];
        double u = sampled ? (double)(splitmix(rng) >> 11) * 0x1.0p-53 * sum : 0, acc = 0;
        if (sampled) y = V - 1;
        for (int v = 0; v < V; v++) {
            const double e = exp((double)z[v] - mx);
            d[v] = (float)(e / sum);
            if (sampled && acc <= u && u < acc + e) y = v;
            acc += e;
        }
        d[y] -= 1.0f;
    }
}

/* diag += w · grad² over every slot. */
static void add_squares(const slot *sl, int n_sl, float w)
{
    for (int s = 0; s < n_sl; s++) {
        float *d = sl[s].diag;
        const float *gr = sl[s].grad;
#pragma omp parallel for schedule(static) if (sl[s].n > 65536)
        for (size_t i = 0; i < sl[s].n; i++) d[i] += w * gr[i] * gr[i];
    }
}

void qb_fisher_free(qb_fisher *f)
{
    if (!f) return;
    qb_train_params_free(f->diag);
    free(f->prices);
    free(f);
}

qb_status qb_fisher_price_tensor(qb_ctx *ctx, qb_fisher *f, const qb_tensor *t, const float *w, const qb_format *fmts,
                                 int n, const volatile int *cancel)
{
    const int ti = (int)(t - f->m->tensors);
    for (int i = 0; i < n; i++) {
        qb_fisher_price pr = {.tensor = ti, .fmt = qb_format_fallback(&fmts[i], t->ne[0])};
        bool seen = false;
        for (int j = 0; j < f->n_prices && !seen; j++)
            seen = f->prices[j].tensor == ti && qb_format_equal(&f->prices[j].fmt, &pr.fmt);
        if (seen) continue;
        if (cancel && *cancel) return qb_fail(ctx, QB_ERR_CANCELLED, "Fisher pass cancelled");
        if ((pr.st = qb_format_check(ctx, &pr.fmt, t->ne[0])) == QB_OK)
            pr.st = qb_scan_tensor_error(ctx, t, &pr.fmt, w, t->ne[0], cancel, &pr.err, &pr.ref, &pr.bytes);
        if (pr.st == QB_ERR_NOMEM || pr.st == QB_ERR_CANCELLED) return pr.st;
        if (pr.st != QB_OK) snprintf(pr.why, sizeof pr.why, "%.159s", ctx->errmsg);
        if (f->n_prices == f->cap_prices) {
            int cap = f->cap_prices ? 2 * f->cap_prices : 64;
            qb_fisher_price *np = realloc(f->prices, (size_t)cap * sizeof *np);
            if (!np) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
            f->prices = np;
            f->cap_prices = cap;
        }
        f->prices[f->n_prices++] = pr;
    }
    return QB_OK;
}

/* Whether the three f32 copies of m's parameters would take more than half of the RAM. */
static bool too_big_for_memory(const qb_model *m)
{
    double params = 0;
    for (int i = 0; i < m->n_tensors; i++) params += (double)qb_tensor_nelements(&m->tensors[i]);
    const double mem = qb_physical_memory();
    return mem > 0 && 12.0 * params > 0.5 * mem;
}

qb_status qb_fisher_compute(qb_ctx *ctx, const qb_model *m, const int32_t *tokens, int n_tokens,
                            const qb_fisher_opts *o, qb_fisher **out)
{
    *out = NULL;
    const double t0 = qb_eval_now();
    const int len = o && o->n_ctx > 0 ? o->n_ctx : 256, want = o && o->n_tokens > 0 ? o->n_tokens / len : 0;
    qb_eval_opts eo = {.n_ctx = len, .n_chunks = o && o->n_tokens > 0 ? (want > 0 ? want : 1) : 0};
    int n_ctx, n_chunks;
    qb_status st = qb_eval_plan_chunks(ctx, m, n_tokens, &eo, &n_ctx, &n_chunks);
    if (st != QB_OK && n_tokens < 2 * len)
        return qb_fail(ctx, st, "the calibration text has %d tokens; the Fisher pass with %d-token chunks needs at "
                       "least %d (use a longer text or a smaller --ctx)", n_tokens, len, 2 * len);
    if (st != QB_OK) return st;
    const int V = m->cfg.vocab_size, first = o && o->all_positions ? 0 : n_ctx / 2, last = n_ctx - 1;
    const int samples = o && o->samples > 0 ? o->samples : 1;
    const bool sampled = !o || o->labels == QB_FISHER_SAMPLED;
    const qb_fisher_stream_mode mode = o ? o->stream : QB_FISHER_STREAM_AUTO;
    if (mode == QB_FISHER_STREAM_ON || mode == QB_FISHER_STREAM_RECOMPUTE ||
        (mode == QB_FISHER_STREAM_AUTO && too_big_for_memory(m))) {
        if (!o || !o->price || o->n_price <= 0)
            return qb_fail(ctx, QB_ERR_ARG, "%s: the streaming Fisher pass prices the formats it is given as it goes; "
                           "it was given none", m->path);
        qb_fisher *f = calloc(1, sizeof *f);
        if (!f) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
        f->m = m;
        f->streamed = true;
        if ((st = qb_fisher_stream(ctx, f, tokens, o, n_ctx, n_chunks, first, last)) != QB_OK) {
            qb_fisher_free(f);
            return st;
        }
        f->n_chunks = n_chunks;
        f->n_ctx = n_ctx;
        f->seconds = qb_eval_now() - t0;
        *out = f;
        return QB_OK;
    }
    qb_fisher *f = calloc(1, sizeof *f);
    qb_train_params *p = NULL, *g = NULL;
    qb_train_pass *tp = NULL;
    slot *sl = NULL;
    int n_sl = 0;
    int32_t *buf = malloc((size_t)n_ctx * sizeof *buf);
    float *logits = malloc((size_t)n_ctx * V * sizeof *logits), *dlog = malloc((size_t)n_ctx * V * sizeof *dlog);
    if (!f || !buf || !logits || !dlog) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
        goto done;
    }
    f->m = m;
    if ((st = qb_train_params_new(ctx, m, true, &p)) == QB_ERR_UNSUPPORTED) {
        char why[sizeof ctx->errmsg];
        snprintf(why, sizeof why, "%s", ctx->errmsg);
        st = qb_fail(ctx, st, "%.400s (the Fisher estimate runs the training pass)", why);
        goto done;
    }
    if (st != QB_OK || (st = qb_train_params_new(ctx, m, false, &g)) != QB_OK ||
        (st = qb_train_params_new(ctx, m, false, &f->diag)) != QB_OK ||
        (st = qb_train_pass_new(ctx, m, n_ctx, &tp)) != QB_OK)
        goto done;
    if (!(sl = make_slots(m, f->diag, g, &n_sl))) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
        goto done;
    }
    uint64_t seed = o && o->seed ? o->seed : QB_FISHER_DEFAULT_SEED;
    for (int c = 0; c < n_chunks; c++) {
        if (o && o->cancel && *o->cancel) {
            st = qb_fail(ctx, QB_ERR_CANCELLED, "Fisher pass cancelled after %d of %d chunks", c, n_chunks);
            goto done;
        }
        qb_eval_chunk_tokens(m, tokens, c, n_ctx, buf);
        if ((st = qb_train_forward(ctx, tp, p, buf, n_ctx, logits)) != QB_OK) goto done;
        for (int k = 0; k < (sampled ? samples : 1); k++) { /* the text's labels: one draw */
            uint64_t rng = qb_fisher_draw_seed(seed, c, k);
            qb_fisher_chunk_dlogits(logits, buf, n_ctx, V, first, last, sampled, &rng, dlog);
            qb_train_params_zero(g);
            if ((st = qb_train_backward(ctx, tp, p, dlog, g)) != QB_OK) goto done;
            add_squares(sl, n_sl, sampled ? 1.0f / (float)samples : 1.0f);
        }
        f->n_positions += last - first;
        if (o && o->progress) o->progress(o->ud, c + 1, n_chunks);
    }
    const float inv = 1.0f / (float)f->n_positions;
    for (int s = 0; s < n_sl; s++)
#pragma omp parallel for schedule(static) if (sl[s].n > 65536)
        for (size_t i = 0; i < sl[s].n; i++) sl[s].diag[i] *= inv;
    f->n_chunks = n_chunks;
    f->n_ctx = n_ctx;
    f->seconds = qb_eval_now() - t0;
done:
    free(sl);
    free(buf);
    free(logits);
    free(dlog);
    qb_train_pass_free(tp);
    qb_train_params_free(p);
    qb_train_params_free(g);
    if (st != QB_OK) qb_fisher_free(f);
    else *out = f;
    return st;
}

const float *qb_fisher_of(const qb_fisher *f, const qb_tensor *t)
{
    const qb_model *m = f->m;
    if (!t || !f->diag) return NULL;
    if (t == m->tok_embd) return f->diag->tok_embd;
    if (t == m->output) return f->diag->output;
    if (t == m->output_norm) return f->diag->output_norm;
    for (int l = 0; l < m->cfg.n_layers; l++) {
#define FIND(x)                                                                                                   \
    if (m->layers[l].x == t) return f->diag->layers[l].x;
        QB_LAYER_TENSORS(FIND)
#undef FIND
    }
    return NULL;
}

void qb_fisher_info(const qb_fisher *f, long *n_positions, int *n_chunks, int *n_ctx, double *seconds)
{
    if (n_positions) *n_positions = f->n_positions;
    if (n_chunks) *n_chunks = f->n_chunks;
    if (n_ctx) *n_ctx = f->n_ctx;
    if (seconds) *seconds = f->seconds;
}

bool qb_fisher_streamed(const qb_fisher *f) { return f->streamed; }

int qb_fisher_forwards(const qb_fisher *f) { return f->recomputed ? 2 : 1; }
