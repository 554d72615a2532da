/* spm.c — SentencePiece-style encoding of one normalized piece of text (encode.c has put "▁"
 * for spaces and the dummy prefix in place), with byte fallback.
 *
 * Three flavours share the merge engine:
 *  - GGUF "llama" vocab (llama.cpp's behaviour): the text is split into UTF-8 characters (even
 *    ones the vocabulary lacks), pairs whose concatenation is a token merge highest score
 *    first, and pieces that are still not tokens at the end are written as their <0xNN> byte
 *    tokens.
 *  - tokenizer.json BPE with byte_fallback (tokenizers' BPE model): each character is its
 *    token, or its <0xNN> byte tokens when the vocabulary lacks it (or <unk>, consecutive ones
 *    fused), and then pairs that have a merge merge lowest rank first.
 *  - llama2.c tokenizer.bin (run.c's encode): the dummy prefix is the token " ", characters not
 *    in the vocabulary become byte tokens (byte + 3) before merging, and merges concatenate
 *    token texts. */
#include "tok_internal.h"

#include <stdlib.h>
#include <string.h>

/* Merge a and b when the concatenation of their texts is a token; priority is its score. */
static bool spm_pair(const qb_tokenizer *t, const tok_sym *a, const tok_sym *b, char *scratch, double *prio,
                     int32_t *id)
{
    size_t n = (size_t)a->n + b->n;
    if (n > (size_t)t->max_len) return false;
    memcpy(scratch, a->text, a->n);
    memcpy(scratch + a->n, b->text, b->n);
    int32_t r = tok_lookup(t, scratch, n);
    if (r < 0) return false;
    *prio = t->score[r];
    *id = r;
    return true;
}

/* Bytes in the UTF-8 sequence that starts with lead byte c, as llama.cpp counts them. */
static size_t lead_len(uint8_t c)
{
    static const uint8_t len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return len[c >> 4];
}

static qb_status push_bytes(qb_ctx *ctx, const qb_tokenizer *t, const char *s, size_t n, tok_ids *out)
{
    for (size_t i = 0; i < n; i++) {
        int32_t id = t->byte_id[(uint8_t)s[i]];
        if (id < 0) id = t->unk;
        if (id < 0) continue;
        qb_status st = tok_ids_push(ctx, out, id);
        if (st != QB_OK) return st;
    }
    return QB_OK;
}

/* llama.cpp flavour: symbols are the characters of the text. */
static qb_status split_gguf(qb_ctx *ctx, const qb_tokenizer *t, const char *s, size_t n, tok_merger *m)
{
    for (size_t i = 0; i < n;) {
        size_t l = lead_len((uint8_t)s[i]);
        if (l > n - i) l = n - i;
        qb_status st = tok_merger_add(ctx, m, s + i, (uint32_t)l, tok_lookup(t, s + i, l));
        if (st != QB_OK) return st;
        i += l;
    }
    return QB_OK;
}

/* tokenizers flavour: symbols are tokens from the start. A character the vocabulary lacks
 * becomes its byte tokens when all of them exist, else <unk> (none without one). */
static qb_status split_ranked(qb_ctx *ctx, const qb_tokenizer *t, const char *s, size_t n, tok_merger *m)
{
    qb_status st = QB_OK;
    bool prev_unk = false;
    for (size_t i = 0; i < n && st == QB_OK;) {
        int l;
        tok_utf8_get(s + i, n - i, &l);
        int32_t id = tok_lookup(t, s + i, (size_t)l);
        bool bytes = id < 0 && t->byte_fallback;
        for (int k = 0; bytes && k < l; k++) bytes = t->byte_id[(uint8_t)s[i + k]] >= 0;
        if (id >= 0) {
            st = tok_merger_add(ctx, m, s + i, (uint32_t)l, id);
        } else if (bytes) {
            for (int k = 0; k < l && st == QB_OK; k++) {
                int32_t b = t->byte_id[(uint8_t)s[i + k]];
                st = tok_merger_add(ctx, m, t->pool + t->off[b], t->len[b], b);
            }
        } else if (t->unk >= 0 && t->fuse_unk && prev_unk) {
            m->sym[m->n - 1].n += (uint32_t)l; /* one <unk> for the run */
        } else if (t->unk >= 0) {
            st = tok_merger_add(ctx, m, s + i, (uint32_t)l, t->unk);
        }
        prev_unk = id < 0 && !bytes && t->unk >= 0;
        i += (size_t)l;
    }
    return st;
}

static qb_status add_token(qb_ctx *ctx, const qb_tokenizer *t, tok_merger *m, int32_t id)
{
    if (id < 0 || id >= t->n_vocab || t->len[id] == 0) return QB_OK;
    return tok_merger_add(ctx, m, t->pool + t->off[id], t->len[id], id);
}

/* llama2.c flavour: symbols are tokens from the start (codepoint or byte fallback). */
static qb_status split_llama2c(qb_ctx *ctx, const qb_tokenizer *t, const char *text, size_t len, tok_merger *m)
{
    qb_status st = QB_OK;
    if (t->add_space_prefix && (st = add_token(ctx, t, m, tok_lookup(t, " ", 1))) != QB_OK) return st;
    for (size_t i = 0; i < len && st == QB_OK;) {
        /* a byte and the continuation bytes after it, at most 4 in all */
        size_t l = 1;
        while (l < 4 && i + l < len && ((uint8_t)text[i + l] & 0xC0) == 0x80) l++;
        int32_t id = tok_lookup(t, text + i, l);
        if (id >= 0) {
            st = add_token(ctx, t, m, id);
        } else {
            for (size_t k = 0; k < l && st == QB_OK; k++)
                st = add_token(ctx, t, m, (int32_t)(uint8_t)text[i + k] + 3);
        }
        i += l;
    }
    return st;
}

qb_status tok_spm_encode(qb_ctx *ctx, const qb_tokenizer *t, const char *text, size_t len, tok_ids *out)
{
    if (len == 0) return QB_OK;
    if (t->spm_ranked && t->ignore_merges) { /* a piece that is a token is taken whole */
        int32_t id = tok_lookup(t, text, len);
        if (id >= 0) return tok_ids_push(ctx, out, id);
    }
    tok_merger m;
    qb_status st = tok_merger_init(ctx, &m, t);
    if (st != QB_OK) goto fail;
    st = t->llama2c      ? split_llama2c(ctx, t, text, len, &m)
         : t->spm_ranked ? split_ranked(ctx, t, text, len, &m)
                         : split_gguf(ctx, t, text, len, &m);
    if (st != QB_OK || m.n == 0) goto fail;
    if ((st = tok_merger_run(ctx, &m, t, t->spm_ranked ? tok_pair_by_rank : spm_pair)) != QB_OK) goto fail;
    for (int i = 0; i >= 0 && st == QB_OK; i = m.sym[i].next) {
        const tok_sym *s = &m.sym[i];
        st = s->id >= 0 ? tok_ids_push(ctx, out, s->id) : push_bytes(ctx, t, s->text, s->n, out);
    }
fail:
    tok_merger_free(&m);
    return st;
}
