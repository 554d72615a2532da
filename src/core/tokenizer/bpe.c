/* bpe.c — byte-level BPE encoding (GPT-2 / Llama-3 style): the regex pre-tokenizer cuts the
 * text into words; each byte of a word becomes the token of its byte-level symbol (GPT-2's
 * bytes_to_unicode alphabet); adjacent tokens merge by rank, lowest first, leftmost on ties.
 * Also the byte-level alphabet and small UTF-8 helpers the decoder shares. */
#include "tok_internal.h"

#include <stdlib.h>
#include <string.h>

/* bytes_to_unicode: printable Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for
 * themselves; the other 68 bytes (0x00-0x20, 0x7F-0xA0, 0xAD) take the codepoints 256, 257, …
 * in byte order. */
uint32_t tok_byte_to_cp(uint8_t b)
{
    if (b <= 0x20) return 256u + b;          /* 256 .. 288 */
    if (b >= 0x7F && b <= 0xA0) return b + 162u; /* 289 .. 322 */
    if (b == 0xAD) return 323;
    return b;
}

int tok_cp_to_byte(uint32_t cp)
{
    if (cp < 256) return (cp <= 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0xAD) ? -1 : (int)cp;
    if (cp <= 288) return (int)(cp - 256);
    if (cp <= 322) return (int)(cp - 162);
    if (cp == 323) return 0xAD;
    return -1;
}

int tok_utf8_put(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int32_t tok_utf8_get(const char *s, size_t n, int *len)
{
    const uint8_t *u = (const uint8_t *)s;
    int l = u[0] < 0x80 ? 1 : (u[0] >> 5) == 6 ? 2 : (u[0] >> 4) == 14 ? 3 : (u[0] >> 3) == 30 ? 4 : 0;
    if (l == 0 || (size_t)l > n) {
        *len = 1;
        return -1;
    }
    uint32_t cp = l == 1 ? u[0] : l == 2 ? (u[0] & 0x1Fu) : l == 3 ? (u[0] & 0x0Fu) : (u[0] & 0x07u);
    for (int i = 1; i < l; i++) {
        if ((u[i] & 0xC0) != 0x80) {
            *len = 1;
            return -1;
        }
        cp = cp << 6 | (u[i] & 0x3Fu);
    }
    *len = l;
    return (int32_t)cp;
}

typedef struct {
    const qb_tokenizer *t;
    tok_merger m;
    char *enc;        /* byte-level form of the current word */
    size_t enc_cap;
    tok_ids *out;
} bpe_state;

static qb_status push_id(qb_ctx *ctx, bpe_state *s, int32_t id)
{
    if (id < 0) id = s->t->unk; /* a byte with no symbol token: only in broken vocabularies */
    return id < 0 ? QB_OK : tok_ids_push(ctx, s->out, id);
}

/* Is the whole word a token? (Only asked when the vocabulary ignores merges for such words.) */
static qb_status whole_word(qb_ctx *ctx, bpe_state *s, const char *w, size_t n, int32_t *id)
{
    *id = -1;
    if (n * 2 > (size_t)s->t->max_len) return QB_OK; /* too long to be a token */
    if (n * 2 > s->enc_cap) {
        char *e = realloc(s->enc, n * 2);
        if (!e) return qb_fail(ctx, QB_ERR_NOMEM, "tokenize: out of memory");
        s->enc = e;
        s->enc_cap = n * 2;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) o += (size_t)tok_utf8_put(tok_byte_to_cp((uint8_t)w[i]), s->enc + o);
    *id = tok_lookup(s->t, s->enc, o);
    return QB_OK;
}

static qb_status bpe_word(qb_ctx *ctx, void *ud, const char *w, size_t n)
{
    bpe_state *s = ud;
    const qb_tokenizer *t = s->t;
    qb_status st;
    if (n == 0) return QB_OK;
    if (n == 1) return push_id(ctx, s, t->bytesym_id[(uint8_t)w[0]]);
    if (t->ignore_merges) {
        int32_t id;
        if ((st = whole_word(ctx, s, w, n, &id)) != QB_OK) return st;
        if (id >= 0) return tok_ids_push(ctx, s->out, id);
    }
    s->m.n = 0;
    for (size_t i = 0; i < n; i++)
        if ((st = tok_merger_add(ctx, &s->m, w + i, 1, t->bytesym_id[(uint8_t)w[i]])) != QB_OK) return st;
    if ((st = tok_merger_run(ctx, &s->m, t, tok_pair_by_rank)) != QB_OK) return st;
    for (int i = 0; i >= 0; i = s->m.sym[i].next)
        if ((st = push_id(ctx, s, s->m.sym[i].id)) != QB_OK) return st;
    return QB_OK;
}

/* One pre-tokenized, normalized piece of text (encode.c): ByteLevel's prefix space, the regex
 * split, then each word's merges. */
qb_status tok_bpe_encode(qb_ctx *ctx, const qb_tokenizer *t, const char *text, size_t len, tok_ids *out)
{
    if (len == 0) return QB_OK;
    bpe_state s = {.t = t, .out = out};
    char *pref = NULL;
    qb_status st = tok_merger_init(ctx, &s.m, t);
    if (st != QB_OK) goto fail;
    if (t->prefix_space && text[0] != ' ') {
        if (!(pref = malloc(len + 1))) {
            st = qb_fail(ctx, QB_ERR_NOMEM, "tokenize: out of memory");
            goto fail;
        }
        pref[0] = ' ';
        memcpy(pref + 1, text, len);
        text = pref;
        len++;
    }
    st = tok_pretok_split(ctx, t->pre, text, len, bpe_word, &s);
fail:
    tok_merger_free(&s.m);
    free(s.enc);
    free(pref);
    return st;
}
