/* vocab.c — the vocabulary table every loader fills: token texts in one pool, their types
 * and scores, the text -> id hash map, the merge map (id pair -> rank, result) and what each
 * token decodes to. */
#include "tok_internal.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then a final mix */
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

static uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

qb_status tok_alloc(qb_ctx *ctx, qb_tok_kind kind, int n_vocab, bool with_scores, qb_tokenizer **out)
{
    *out = NULL;
    if (n_vocab <= 0 || n_vocab > TOK_MAX_VOCAB)
        return qb_fail(ctx, QB_ERR_ARG, "tokenizer: vocabulary size %d out of range", n_vocab);
    qb_tokenizer *t = calloc(1, sizeof *t);
    if (!t) goto nomem;
    t->kind = kind;
    t->n_vocab = n_vocab;
    t->bos = t->eos = t->unk = -1;
    t->pool_cap = (size_t)n_vocab * 8 + 64;
    t->pool = malloc(t->pool_cap);
    t->off = calloc((size_t)n_vocab, sizeof *t->off);
    t->len = calloc((size_t)n_vocab, sizeof *t->len);
    t->type = malloc((size_t)n_vocab);
    if (with_scores) t->score = calloc((size_t)n_vocab, sizeof *t->score);
    if (!t->pool || !t->off || !t->len || !t->type || (with_scores && !t->score)) goto nomem;
    memset(t->type, TOK_NORMAL, (size_t)n_vocab);
    t->pool[0] = 0; /* offset 0 is the empty text every unset token points at */
    t->pool_len = 1;
    for (int b = 0; b < 256; b++) t->byte_id[b] = t->bytesym_id[b] = -1;
    *out = t;
    return QB_OK;
nomem:
    qb_tokenizer_free(t);
    return qb_fail(ctx, QB_ERR_NOMEM, "tokenizer: out of memory");
}

qb_status tok_set_text(qb_ctx *ctx, qb_tokenizer *t, int id, const char *s, size_t n)
{
    if (id < 0 || id >= t->n_vocab) return qb_fail(ctx, QB_ERR_ARG, "tokenizer: token id %d out of range", id);
    if (n > (1u << 20)) return qb_fail(ctx, QB_ERR_FORMAT, "tokenizer: token %d is %zu bytes long", id, n);
    if (t->pool_len + n + 1 > UINT32_MAX) return qb_fail(ctx, QB_ERR_FORMAT, "tokenizer: token texts too large");
    if (t->pool_len + n + 1 > t->pool_cap) {
        size_t cap = t->pool_cap * 2;
        while (cap < t->pool_len + n + 1) cap *= 2;
        char *p = realloc(t->pool, cap);
        if (!p) return qb_fail(ctx, QB_ERR_NOMEM, "tokenizer: out of memory");
        t->pool = p;
        t->pool_cap = cap;
    }
    if (n) memcpy(t->pool + t->pool_len, s, n);
    t->pool[t->pool_len + n] = 0;
    t->off[id] = (uint32_t)t->pool_len;
    t->len[id] = (uint32_t)n;
    t->pool_len += n + 1;
    return QB_OK;
}

int32_t tok_lookup(const qb_tokenizer *t, const char *s, size_t n)
{
    if (!t->map.slot || n > (size_t)t->max_len) return -1;
    size_t i = hash_bytes(s, n) & t->map.mask;
    for (;;) {
        int32_t id = t->map.slot[i];
        if (id < 0) return -1;
        if (t->len[id] == n && memcmp(t->pool + t->off[id], s, n) == 0) return id;
        i = (i + 1) & t->map.mask;
    }
}

static qb_status build_map(qb_ctx *ctx, qb_tokenizer *t)
{
    size_t cap = pow2_at_least((size_t)t->n_vocab * 2);
    t->map.slot = malloc(cap * sizeof *t->map.slot);
    if (!t->map.slot) return qb_fail(ctx, QB_ERR_NOMEM, "tokenizer: out of memory");
    memset(t->map.slot, 0xff, cap * sizeof *t->map.slot);
    t->map.mask = cap - 1;
    t->max_len = 0;
    for (int id = 0; id < t->n_vocab; id++)
        if ((int)t->len[id] > t->max_len) t->max_len = (int)t->len[id];
    for (int id = 0; id < t->n_vocab; id++) {
        if (t->len[id] == 0) continue; /* unset or empty texts cannot be looked up */
        const char *s = t->pool + t->off[id];
        size_t i = hash_bytes(s, t->len[id]) & t->map.mask;
        while (t->map.slot[i] >= 0) {
            int32_t o = t->map.slot[i];
            if (t->len[o] == t->len[id] && memcmp(t->pool + t->off[o], s, t->len[id]) == 0) break;
            i = (i + 1) & t->map.mask;
        }
        t->map.slot[i] = id; /* a later duplicate replaces the earlier one */
    }
    return QB_OK;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int tok_byte_value(const char *s, size_t n)
{
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int hi = hexval(s[3]), lo = hexval(s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/* Write what token id decodes to into dst (capacity >= its text length + 1); returns length. */
static size_t decode_piece(const qb_tokenizer *t, int id, char *dst)
{
    const char *s = t->pool + t->off[id];
    size_t n = t->len[id], o = 0;
    switch (t->type[id]) {
    case TOK_CONTROL:
    case TOK_UNKNOWN:
    case TOK_UNUSED:
        return 0;
    case TOK_USER:
        memcpy(dst, s, n);
        return n;
    case TOK_BYTE: {
        int b = tok_byte_value(s, n);
        if (b >= 0) {
            dst[0] = (char)b;
            return 1;
        }
        memcpy(dst, s, n);
        return n;
    }
    default:
        break;
    }
    if (t->kind == QB_TOK_SPM) {
        for (size_t i = 0; i < n;) {
            if (!t->llama2c && n - i >= 3 && memcmp(s + i, "\xe2\x96\x81", 3) == 0) {
                dst[o++] = ' ';
                i += 3;
            } else {
                dst[o++] = s[i++];
            }
        }
        return o;
    }
    for (size_t i = 0; i < n;) { /* byte-level symbols back to bytes */
        int l;
        int32_t cp = tok_utf8_get(s + i, n - i, &l);
        int b = cp >= 0 ? tok_cp_to_byte((uint32_t)cp) : -1;
        if (b >= 0) {
            dst[o++] = (char)b;
        } else {
            memcpy(dst + o, s + i, (size_t)l);
            o += (size_t)l;
        }
        i += (size_t)l;
    }
    return o;
}

static qb_status build_pieces(qb_ctx *ctx, qb_tokenizer *t)
{
    t->piece = malloc(t->pool_len);
    t->poff = malloc((size_t)t->n_vocab * sizeof *t->poff);
    t->plen = malloc((size_t)t->n_vocab * sizeof *t->plen);
    if (!t->piece || !t->poff || !t->plen) return qb_fail(ctx, QB_ERR_NOMEM, "tokenizer: out of memory");
    size_t o = 0; /* a decoded piece is never longer than its text */
    for (int id = 0; id < t->n_vocab; id++) {
        size_t n = decode_piece(t, id, t->piece + o);
        t->poff[id] = (uint32_t)o;
        t->plen[id] = (uint32_t)n;
        o += n;
    }
    return QB_OK;
}

qb_status tok_finish(qb_ctx *ctx, qb_tokenizer *t)
{
    qb_status st = build_map(ctx, t);
    if (st != QB_OK) return st;
    if (t->kind == QB_TOK_SPM) {
        for (int b = 0; b < 256; b++) {
            char txt[8];
            static const char hex[] = "0123456789ABCDEF";
            memcpy(txt, "<0x", 3);
            txt[3] = hex[b >> 4];
            txt[4] = hex[b & 15];
            txt[5] = '>';
            t->byte_id[b] = tok_lookup(t, txt, 6);
        }
    } else {
        for (int b = 0; b < 256; b++) {
            char u[4];
            int n = tok_utf8_put(tok_byte_to_cp((uint8_t)b), u);
            t->bytesym_id[b] = tok_lookup(t, u, (size_t)n);
        }
    }
    if (t->bos >= t->n_vocab) t->bos = -1;
    if (t->eos >= t->n_vocab) t->eos = -1;
    if (t->unk >= t->n_vocab) t->unk = -1;
    return build_pieces(ctx, t);
}

qb_status tok_reserve_merges(qb_ctx *ctx, qb_tokenizer *t, size_t n)
{
    tok_pairmap *m = &t->merges;
    if (m->key) return QB_OK;
    size_t cap = pow2_at_least(n * 2 + 16);
    m->key = calloc(cap, sizeof *m->key);
    m->rank = malloc(cap * sizeof *m->rank);
    m->res = malloc(cap * sizeof *m->res);
    if (!m->key || !m->rank || !m->res) return qb_fail(ctx, QB_ERR_NOMEM, "tokenizer: out of memory");
    m->mask = cap - 1;
    return QB_OK;
}

static qb_status grow_merges(qb_ctx *ctx, tok_pairmap *m)
{
    tok_pairmap g = {0};
    size_t cap = (m->mask + 1) * 2;
    g.key = calloc(cap, sizeof *g.key);
    g.rank = malloc(cap * sizeof *g.rank);
    g.res = malloc(cap * sizeof *g.res);
    if (!g.key || !g.rank || !g.res) {
        free(g.key);
        free(g.rank);
        free(g.res);
        return qb_fail(ctx, QB_ERR_NOMEM, "tokenizer: out of memory");
    }
    g.mask = cap - 1;
    g.n = m->n;
    for (size_t i = 0; i <= m->mask; i++) {
        if (!m->key[i]) continue;
        size_t j = hash_u64(m->key[i]) & g.mask;
        while (g.key[j]) j = (j + 1) & g.mask;
        g.key[j] = m->key[i];
        g.rank[j] = m->rank[i];
        g.res[j] = m->res[i];
    }
    free(m->key);
    free(m->rank);
    free(m->res);
    *m = g;
    return QB_OK;
}

qb_status tok_add_merge(qb_ctx *ctx, qb_tokenizer *t, int32_t a, int32_t b, int32_t res, int32_t rank)
{
    qb_status st = tok_reserve_merges(ctx, t, 1024);
    if (st != QB_OK) return st;
    tok_pairmap *m = &t->merges;
    if ((m->n + 1) * 2 > m->mask + 1 && (st = grow_merges(ctx, m)) != QB_OK) return st;
    uint64_t k = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1;
    size_t i = hash_u64(k) & m->mask;
    while (m->key[i]) {
        if (m->key[i] == k) return QB_OK; /* the first (lowest-rank) occurrence wins */
        i = (i + 1) & m->mask;
    }
    m->key[i] = k;
    m->rank[i] = rank;
    m->res[i] = res;
    m->n++;
    return QB_OK;
}

bool tok_find_merge(const qb_tokenizer *t, int32_t a, int32_t b, int32_t *rank, int32_t *res)
{
    const tok_pairmap *m = &t->merges;
    if (!m->key) return false;
    uint64_t k = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1;
    size_t i = hash_u64(k) & m->mask;
    while (m->key[i]) {
        if (m->key[i] == k) {
            *rank = m->rank[i];
            *res = m->res[i];
            return true;
        }
        i = (i + 1) & m->mask;
    }
    return false;
}

qb_status tok_add_merge_text(qb_ctx *ctx, qb_tokenizer *t, const char *a, size_t na, const char *b,
                             size_t nb, int32_t rank, bool *kept)
{
    *kept = false;
    int32_t ia = tok_lookup(t, a, na), ib = tok_lookup(t, b, nb);
    if (ia < 0 || ib < 0 || na + nb > (size_t)t->max_len) return QB_OK;
    char buf[512];
    char *cat = na + nb <= sizeof buf ? buf : malloc(na + nb);
    if (!cat) return qb_fail(ctx, QB_ERR_NOMEM, "tokenizer: out of memory");
    memcpy(cat, a, na);
    memcpy(cat + na, b, nb);
    int32_t ir = tok_lookup(t, cat, na + nb);
    if (cat != buf) free(cat);
    if (ir < 0) return QB_OK;
    *kept = true;
    return tok_add_merge(ctx, t, ia, ib, ir, rank);
}

qb_status tok_ids_push(qb_ctx *ctx, tok_ids *ids, int32_t id)
{
    if (ids->n == ids->cap) {
        int cap = ids->cap ? ids->cap * 2 : 64;
        int32_t *v = realloc(ids->v, (size_t)cap * sizeof *v);
        if (!v) return qb_fail(ctx, QB_ERR_NOMEM, "tokenize: out of memory");
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return QB_OK;
}
