/* tokenizer.c — the public face of the tokenizers: accessors, encoding (the pipeline is in
 * encode.c), decoding of ids back to bytes, and freeing. Loaders live in vocab_*.c. */
#include "tok_internal.h"

#include <stdlib.h>
#include <string.h>

void qb_tokenizer_free(qb_tokenizer *t)
{
    if (!t) return;
    free(t->pool);
    free(t->off);
    free(t->len);
    free(t->type);
    free(t->score);
    free(t->piece);
    free(t->poff);
    free(t->plen);
    free(t->map.slot);
    free(t->merges.key);
    free(t->merges.rank);
    free(t->merges.res);
    tok_pretok_free(t->pre);
    free(t->added.v);
    free(t->added.pool);
    free(t);
}

qb_tok_kind qb_tokenizer_kind(const qb_tokenizer *t) { return t->kind; }
const char *qb_tokenizer_describe(const qb_tokenizer *t) { return t->desc; }
int qb_tokenizer_vocab_size(const qb_tokenizer *t) { return t->n_vocab; }
int32_t qb_tokenizer_bos(const qb_tokenizer *t) { return t->bos; }
int32_t qb_tokenizer_eos(const qb_tokenizer *t) { return t->eos; }
bool qb_tokenizer_add_bos(const qb_tokenizer *t) { return t->add_bos; }

const char *qb_tokenizer_token_text(const qb_tokenizer *t, int32_t id, size_t *len)
{
    if (id < 0 || id >= t->n_vocab) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = t->len[id];
    return t->pool + t->off[id];
}

int32_t qb_tokenizer_find(const qb_tokenizer *t, const char *text, size_t len)
{
    return tok_lookup(t, text, len);
}

static qb_status tokenize(qb_ctx *ctx, const qb_tokenizer *t, const char *text, size_t len, bool add_bos,
                          bool parse_special, int32_t **ids, int *n_ids)
{
    *ids = NULL;
    *n_ids = 0;
    if (!t || (!text && len > 0)) return qb_fail(ctx, QB_ERR_ARG, "tokenize: no tokenizer or no text");
    if (len > (size_t)(INT32_MAX / 4)) return qb_fail(ctx, QB_ERR_ARG, "tokenize: text too long (%zu bytes)", len);
    tok_ids out = {0};
    qb_status st = tok_ids_push(ctx, &out, 0); /* guarantees a non-NULL array even when empty */
    if (st != QB_OK) goto fail;
    out.n = 0;
    if (add_bos) {
        if (t->bos < 0) {
            st = qb_fail(ctx, QB_ERR_ARG, "tokenize: BOS requested but the vocabulary has no BOS token");
            goto fail;
        }
        if ((st = tok_ids_push(ctx, &out, t->bos)) != QB_OK) goto fail;
    }
    if ((st = tok_encode(ctx, t, text, len, parse_special, &out)) != QB_OK) goto fail;
    *ids = out.v;
    *n_ids = out.n;
    return QB_OK;
fail:
    free(out.v);
    return st;
}

qb_status qb_tokenize(qb_ctx *ctx, const qb_tokenizer *t, const char *text, size_t len, bool add_bos,
                      int32_t **ids, int *n_ids)
{
    return tokenize(ctx, t, text, len, add_bos, false, ids, n_ids);
}

qb_status qb_tokenize_special(qb_ctx *ctx, const qb_tokenizer *t, const char *text, size_t len, bool add_bos,
                              int32_t **ids, int *n_ids)
{
    return tokenize(ctx, t, text, len, add_bos, true, ids, n_ids);
}

size_t qb_token_to_bytes(const qb_tokenizer *t, int32_t prev, int32_t id, char *buf, size_t cap)
{
    if (!t || id < 0 || id >= t->n_vocab) return 0;
    const char *p = t->piece + t->poff[id];
    size_t n = t->plen[id];
    /* SPM: the dummy-prefix space of the first word after BOS is not part of the text */
    if (t->kind == QB_TOK_SPM && t->add_space_prefix && prev >= 0 && prev == t->bos && n > 0 && p[0] == ' ') {
        p++;
        n--;
    }
    if (buf && cap) memcpy(buf, p, n < cap ? n : cap);
    return n;
}

char *qb_detokenize(const qb_tokenizer *t, const int32_t *ids, int n)
{
    if (!ids || n < 0) n = 0;
    size_t total = 0;
    for (int i = 0; i < n; i++) total += qb_token_to_bytes(t, i ? ids[i - 1] : -1, ids[i], NULL, 0);
    char *s = malloc(total + 1);
    if (!s) return NULL;
    size_t o = 0;
    for (int i = 0; i < n; i++) o += qb_token_to_bytes(t, i ? ids[i - 1] : -1, ids[i], s + o, total - o);
    s[o] = 0;
    return s;
}
