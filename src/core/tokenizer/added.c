/* added.c — added tokens: tokens matched in the text before the model sees it, as Hugging Face
 * tokenizers' AddedVocabulary and llama.cpp's special-token partition do. Matching is leftmost
 * and then longest (tokenizers' Aho-Corasick LeftmostLongest; llama.cpp takes the longest token
 * first over the whole text, which differs only where two added tokens overlap). An added
 * token may swallow the whitespace on its left (lstrip) or right (rstrip), or match only as a
 * single word; those flags come from tokenizer.json. */
#include "tok_internal.h"

#include <stdlib.h>
#include <string.h>

qb_status tok_added_add(qb_ctx *ctx, qb_tokenizer *t, int32_t id, const char *text, size_t n, uint8_t flags)
{
    tok_addedset *a = &t->added;
    if (n == 0) return QB_OK;
    if (n > (1u << 20) || a->pool_len + n > UINT32_MAX)
        return qb_fail(ctx, QB_ERR_FORMAT, "tokenizer: added token %d is too long", (int)id);
    if (a->n == a->cap) {
        int cap = a->cap ? a->cap * 2 : 16;
        tok_added *v = realloc(a->v, (size_t)cap * sizeof *v);
        if (!v) goto nomem;
        a->v = v;
        a->cap = cap;
    }
    if (a->pool_len + n > a->pool_cap) {
        size_t cap = a->pool_cap ? a->pool_cap : 256;
        while (cap < a->pool_len + n) cap *= 2;
        char *p = realloc(a->pool, cap);
        if (!p) goto nomem;
        a->pool = p;
        a->pool_cap = cap;
    }
    memcpy(a->pool + a->pool_len, text, n);
    a->v[a->n++] = (tok_added){.id = id, .off = (uint32_t)a->pool_len, .len = (uint32_t)n, .flags = flags};
    a->pool_len += n;
    a->any_normalized |= (flags & TOK_ADDED_NORMALIZED) != 0;
    return QB_OK;
nomem:
    return qb_fail(ctx, QB_ERR_NOMEM, "tokenizer: out of memory");
}

qb_status tok_added_from_types(qb_ctx *ctx, qb_tokenizer *t)
{
    for (int id = 0; id < t->n_vocab; id++) {
        uint8_t ty = t->type[id];
        if (ty != TOK_USER && ty != TOK_CONTROL && ty != TOK_UNKNOWN) continue;
        qb_status st = tok_added_add(ctx, t, id, t->pool + t->off[id], t->len[id], 0);
        if (st != QB_OK) return st;
    }
    return QB_OK;
}

/* Entries are sorted through an index with precomputed keys: first byte, then longest first,
 * then the order they were added. */
typedef struct {
    uint64_t key; /* first byte << 32 | (UINT32_MAX - length) */
    int idx;
} sort_item;

static int cmp_item(const void *x, const void *y)
{
    const sort_item *a = x, *b = y;
    if (a->key != b->key) return a->key < b->key ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx); /* stable: the order tokens were added */
}

qb_status tok_added_finish(qb_ctx *ctx, qb_tokenizer *t)
{
    tok_addedset *a = &t->added;
    memset(a->first, 0, sizeof a->first);
    if (a->n == 0) return QB_OK;
    sort_item *it = malloc((size_t)a->n * sizeof *it);
    tok_added *v = malloc((size_t)a->n * sizeof *v);
    if (!it || !v) {
        free(it);
        free(v);
        return qb_fail(ctx, QB_ERR_NOMEM, "tokenizer: out of memory");
    }
    for (int i = 0; i < a->n; i++) {
        uint64_t b = (uint8_t)a->pool[a->v[i].off];
        it[i].key = b << 32 | (uint64_t)(UINT32_MAX - a->v[i].len); /* first byte, then longest first */
        it[i].idx = i;
    }
    qsort(it, (size_t)a->n, sizeof *it, cmp_item);
    for (int i = 0; i < a->n; i++) v[i] = a->v[it[i].idx];
    free(it);
    free(a->v);
    a->v = v;
    a->cap = a->n;
    /* first[b] = index of the first entry whose first byte is >= b */
    int k = 0;
    for (int b = 0; b <= 256; b++) {
        while (k < a->n && (uint8_t)a->pool[a->v[k].off] < b) k++;
        a->first[b] = k;
    }
    return QB_OK;
}

/* The codepoint that ends at s[end), not starting before lo (lo < end): -1 for a malformed
 * tail; *start where it begins. */
static int32_t cp_before(const char *s, size_t lo, size_t end, size_t *start)
{
    size_t b = end - 1;
    while (b > lo && end - b < 4 && ((uint8_t)s[b] & 0xC0) == 0x80) b--;
    int l;
    int32_t cp = tok_utf8_get(s + b, end - b, &l);
    *start = b;
    return (size_t)l == end - b ? cp : -1;
}

static bool word_before(const char *s, size_t at)
{
    size_t b;
    int32_t cp = at > 0 ? cp_before(s, 0, at, &b) : -1;
    return cp >= 0 && tok_cp_is_word((uint32_t)cp);
}

static bool word_after(const char *s, size_t n, size_t at)
{
    if (at >= n) return false;
    int l;
    int32_t cp = tok_utf8_get(s + at, n - at, &l);
    return cp >= 0 && tok_cp_is_word((uint32_t)cp);
}

/* Start of the run of whitespace that ends at s[end), not before lo. */
static size_t space_run_before(const char *s, size_t end, size_t lo)
{
    while (end > lo) {
        size_t b;
        int32_t cp = cp_before(s, lo, end, &b);
        if (cp < 0 || !tok_cp_is_space((uint32_t)cp)) break;
        end = b;
    }
    return end;
}

/* End of the run of whitespace that starts at s[at). */
static size_t space_run_after(const char *s, size_t n, size_t at)
{
    while (at < n) {
        int l;
        int32_t cp = tok_utf8_get(s + at, n - at, &l);
        if (cp < 0 || !tok_cp_is_space((uint32_t)cp)) break;
        at += (size_t)l;
    }
    return at;
}

static bool usable(const qb_tokenizer *t, const tok_added *e, bool normalized, bool parse_special)
{
    if (((e->flags & TOK_ADDED_NORMALIZED) != 0) != normalized) return false;
    uint8_t ty = t->type[e->id];
    return parse_special || (ty != TOK_CONTROL && ty != TOK_UNKNOWN);
}

bool tok_added_next(const qb_tokenizer *t, const char *s, size_t n, size_t from, bool normalized,
                    bool parse_special, size_t *ms, size_t *me, int32_t *id)
{
    const tok_addedset *a = &t->added;
    if (a->n == 0) return false;
    for (size_t i = from; i < n; i++) {
        uint8_t b = (uint8_t)s[i];
        const tok_added *hit = NULL;
        for (int k = a->first[b]; k < a->first[b + 1] && !hit; k++) {
            const tok_added *e = &a->v[k];
            if (e->len <= n - i && memcmp(s + i, a->pool + e->off, e->len) == 0 &&
                usable(t, e, normalized, parse_special))
                hit = e;
        }
        if (!hit) continue;
        size_t start = i, stop = i + hit->len;
        /* a match that is not a single word is skipped whole, as the matcher moves past it */
        if ((hit->flags & TOK_ADDED_SINGLE_WORD) && (word_before(s, start) || word_after(s, n, stop))) {
            i = stop - 1;
            continue;
        }
        if (hit->flags & TOK_ADDED_LSTRIP) start = space_run_before(s, start, from);
        if (hit->flags & TOK_ADDED_RSTRIP) stop = space_run_after(s, n, stop);
        *ms = start;
        *me = stop;
        *id = hit->id;
        return true;
    }
    return false;
}
