/* encode.c — the encoding pipeline, as Hugging Face tokenizers runs it (llama.cpp's is the same
 * with fewer steps):
 *   1. added tokens matched in the raw text (those not marked normalized);
 *   2. each stretch between them normalized (normalize.c: NFC, "▁" prepended, ' ' -> "▁");
 *   3. added tokens marked normalized matched in the normalized stretch;
 *   4. the Metaspace pre-tokenizer: ' ' -> "▁", a "▁" in front (always, never, or only on the
 *      piece that starts the text), and optionally a split before every "▁";
 *   5. the model: SentencePiece-style (spm.c) or byte-level BPE with its regex split (bpe.c). */
#include "tok_internal.h"

#include <stdlib.h>
#include <string.h>

static const char META[] = "\xe2\x96\x81"; /* U+2581 */

typedef struct {
    const qb_tokenizer *t;
    bool parse_special;
    tok_ids *out;
} encoder;

static qb_status run_model(qb_ctx *ctx, const encoder *e, const char *s, size_t n)
{
    if (n == 0) return QB_OK;
    return e->t->kind == QB_TOK_SPM ? tok_spm_encode(ctx, e->t, s, n, e->out) : tok_bpe_encode(ctx, e->t, s, n, e->out);
}

/* Step 4 and 5 for one piece; first: it starts the text (Metaspace "first"). */
static qb_status metaspace(qb_ctx *ctx, const encoder *e, const char *s, size_t n, bool first)
{
    const qb_tokenizer *t = e->t;
    if (t->meta == TOK_META_NONE) return run_model(ctx, e, s, n);
    bool starts_meta = (n >= 1 && s[0] == ' ') || (n >= 3 && memcmp(s, META, 3) == 0); /* after ' ' -> "▁" */
    bool prepend = !starts_meta && (t->meta == TOK_META_ALWAYS || (t->meta == TOK_META_FIRST && first));
    size_t spaces = 0;
    for (size_t i = 0; i < n; i++) spaces += s[i] == ' ';
    char *r = malloc(n + 2 * spaces + 4), *o = r;
    if (!r) return qb_fail(ctx, QB_ERR_NOMEM, "tokenize: out of memory");
    if (prepend) {
        memcpy(o, META, 3);
        o += 3;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            memcpy(o, META, 3);
            o += 3;
        } else {
            *o++ = s[i];
        }
    }
    size_t len = (size_t)(o - r);
    qb_status st = QB_OK;
    if (!t->meta_split) {
        st = run_model(ctx, e, r, len);
    } else { /* each "▁" starts a new word */
        size_t w = 0;
        for (size_t i = 1; i + 3 <= len && st == QB_OK; i++) {
            if (memcmp(r + i, META, 3) != 0) continue;
            st = run_model(ctx, e, r + w, i - w);
            w = i;
            i += 2;
        }
        if (st == QB_OK) st = run_model(ctx, e, r + w, len - w);
    }
    free(r);
    return st;
}

/* Steps 2 to 5 for the stretch s[0..n) between raw-text added tokens. */
static qb_status stretch(qb_ctx *ctx, const encoder *e, const char *s, size_t n, bool first)
{
    char *buf;
    const char *ns;
    size_t nn;
    qb_status st = tok_normalize(ctx, e->t, s, n, &buf, &ns, &nn);
    if (st != QB_OK) return st;
    if (!e->t->added.any_normalized) {
        st = metaspace(ctx, e, ns, nn, first);
    } else {
        size_t pos = 0, ms, me;
        int32_t id;
        while (st == QB_OK && pos < nn) {
            bool hit = tok_added_next(e->t, ns, nn, pos, true, e->parse_special, &ms, &me, &id);
            size_t end = hit ? ms : nn;
            if (end > pos) st = metaspace(ctx, e, ns + pos, end - pos, first && pos == 0);
            if (!hit || st != QB_OK) break;
            st = tok_ids_push(ctx, e->out, id);
            pos = me;
        }
    }
    free(buf);
    return st;
}

qb_status tok_encode(qb_ctx *ctx, const qb_tokenizer *t, const char *text, size_t len, bool parse_special,
                     tok_ids *out)
{
    encoder e = {.t = t, .parse_special = parse_special, .out = out};
    size_t pos = 0, ms, me;
    int32_t id;
    qb_status st = QB_OK;
    while (st == QB_OK && pos < len) {
        bool hit = tok_added_next(t, text, len, pos, false, parse_special, &ms, &me, &id);
        size_t end = hit ? ms : len;
        if (end > pos) st = stretch(ctx, &e, text + pos, end - pos, pos == 0);
        if (!hit || st != QB_OK) break;
        st = tok_ids_push(ctx, out, id);
        pos = me;
    }
    return st;
}
