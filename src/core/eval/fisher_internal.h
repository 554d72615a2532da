/* fisher_internal.h — what the in-memory Fisher pass (fisher.c), the streaming one
 * (fisher_stream.c) and the estimate built on them (scan_fisher.c) share: the result's layout,
 * the label draws and the prices a streamed pass leaves instead of the diagonal (not public API). */
#ifndef QB_FISHER_INTERNAL_H
#define QB_FISHER_INTERNAL_H

#include "fisher.h"
#include "../infer/train.h"

/* One matrix in one format, priced with its diagonal while the streaming pass held it. */
typedef struct {
    int tensor;       /* index into the model's table */
    qb_format fmt;    /* as stored (the fallback of an asked format) */
    qb_status st;     /* QB_OK, or why the matrix cannot be stored in fmt (why) */
    double err, ref;  /* Σ F·(Q(W) − W)², Σ F·W² */
    size_t bytes;     /* the packed rows */
    char why[160];
} qb_fisher_price;

struct qb_fisher {
    const qb_model *m;
    qb_train_params *diag;   /* the diagonal, shaped like the parameters; NULL when streamed */
    qb_fisher_price *prices; /* streamed: every quantizable matrix × format asked for */
    int n_prices, cap_prices;
    bool streamed;
    bool recomputed;         /* streamed with each block's forward run again (not kept) */
    long n_positions;
    int n_chunks, n_ctx;
    double seconds;
};

/* dlogits (T, V) of −Σ_t log p_t(y_t) over positions [first, last) of a chunk: softmax −
 * one-hot(y), y drawn from the softmax (sampled; rng per position, in order) or the next token
 * of buf. Rows outside are 0. */
void qb_fisher_chunk_dlogits(const float *logits, const int32_t *buf, int T, int V, int first, int last, bool sampled,
                             uint64_t *rng, float *dlog);
#define QB_FISHER_DEFAULT_SEED 0x5eedf15e7ULL /* opts.seed 0 */
/* The state of the label draws of chunk c, draw k. */
uint64_t qb_fisher_draw_seed(uint64_t seed, int c, int k);

/* Prices tensor t (of f's model) in each of the n formats (their fallbacks for t, each once)
 * with its diagonal w (t's shape, already divided by the positions), appended to f->prices. A
 * format t cannot be stored in is kept as such (st, why), not an error. Errors: QB_ERR_NOMEM,
 * QB_ERR_CANCELLED. */
qb_status qb_fisher_price_tensor(qb_ctx *ctx, qb_fisher *f, const qb_tensor *t, const float *w, const qb_format *fmts,
                                 int n, const volatile int *cancel);

/* The streaming pass (fisher_stream.c) over n_chunks chunks of n_ctx tokens, positions
 * [first, last) scored: fills f->prices (o->price formats) and f->n_positions. */
qb_status qb_fisher_stream(qb_ctx *ctx, qb_fisher *f, const int32_t *tokens, const qb_fisher_opts *o, int n_ctx,
                           int n_chunks, int first, int last);

#endif
