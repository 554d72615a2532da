/* export_gguf.c — write a tokenizer as GGUF tokenizer.ggml.* metadata, the way llama.cpp's
 * converters store it: model "llama" (SentencePiece-style: texts with "▁" for space, scores,
 * token types, add_space_prefix; a tokenizer.json's merge ranks become scores)
 * or "gpt2" (byte-level BPE: texts, types, "a b" merges in rank order, pre). */
#include "tok_internal.h"
#include "../util/gguf.h"
#include "../util/gguf_write.h"

#include <stdlib.h>
#include <string.h>

/* llama2.c vocabularies store spaces as ' '; GGUF SPM vocabularies use U+2581. */
static char *spm_text(const qb_tokenizer *t, int id)
{
    const char *s = t->pool + t->off[id];
    size_t n = t->len[id], spaces = 0;
    if (t->llama2c && t->type[id] == TOK_NORMAL)
        for (size_t i = 0; i < n; i++) spaces += s[i] == ' ';
    char *out = malloc(n + spaces * 2 + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (spaces && s[i] == ' ') {
            memcpy(o, "\xe2\x96\x81", 3);
            o += 3;
        } else {
            *o++ = s[i];
        }
    }
    *o = 0;
    /* llama2.c stores BOS/EOS as "\n<s>\n" / "\n</s>\n": write the SentencePiece names */
    if (t->llama2c && id == t->bos) strcpy(out, "<s>");
    if (t->llama2c && id == t->eos) strcpy(out, "</s>");
    if (t->llama2c && id == t->unk) strcpy(out, "<unk>");
    return out;
}

static int cmp_rank(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    return (x[0] > y[0]) - (x[0] < y[0]);
}

qb_status qb_tokenizer_export_gguf(qb_ctx *ctx, const qb_tokenizer *t, void *writer)
{
    qb_gguf_writer *w = writer;
    int n = t->n_vocab;
    char **texts = calloc((size_t)n, sizeof *texts);
    int32_t *types = malloc((size_t)n * sizeof *types);
    char **merges = NULL;
    int64_t *order = NULL;
    qb_status st = QB_OK;
    bool ok = texts && types;
    for (int i = 0; ok && i < n; i++) {
        types[i] = t->type[i];
        if (t->kind == QB_TOK_SPM) {
            ok = (texts[i] = spm_text(t, i)) != NULL;
        } else {
            ok = (texts[i] = malloc(t->len[i] + 1)) != NULL;
            if (ok) {
                memcpy(texts[i], t->pool + t->off[i], t->len[i]);
                texts[i][t->len[i]] = 0;
            }
        }
    }
    if (!ok) goto oom;
    ok = qb_gguf_set_str(w, "tokenizer.ggml.model", t->kind == QB_TOK_SPM ? "llama" : "gpt2") &&
         qb_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)texts, (size_t)n) &&
         qb_gguf_set_arr(w, "tokenizer.ggml.token_type", QB_GGUF_INT32, types, (size_t)n);
    if (ok && t->kind == QB_TOK_SPM && t->score)
        ok = qb_gguf_set_arr(w, "tokenizer.ggml.scores", QB_GGUF_FLOAT32, t->score, (size_t)n);
    if (ok && t->kind == QB_TOK_SPM) /* false for Gemma-style vocabularies */
        ok = qb_gguf_set_bool(w, "tokenizer.ggml.add_space_prefix", t->add_space_prefix);
    if (ok && t->kind == QB_TOK_BPE) {
        /* merges in rank order, from the pair map */
        size_t cap = t->merges.mask + 1, m = 0;
        order = malloc((t->merges.n ? t->merges.n : 1) * 2 * sizeof *order);
        merges = calloc(t->merges.n ? t->merges.n : 1, sizeof *merges);
        if (!order || !merges) goto oom;
        for (size_t i = 0; t->merges.key && i < cap; i++)
            if (t->merges.key[i]) {
                order[2 * m] = t->merges.rank[i];
                order[2 * m + 1] = (int64_t)(t->merges.key[i] - 1);
                m++;
            }
        qsort(order, m, 2 * sizeof *order, cmp_rank);
        for (size_t i = 0; i < m; i++) {
            uint64_t key = (uint64_t)order[2 * i + 1];
            int32_t a = (int32_t)(key >> 32), b = (int32_t)(key & 0xffffffffu);
            merges[i] = malloc(t->len[a] + t->len[b] + 2);
            if (!merges[i]) goto oom;
            memcpy(merges[i], t->pool + t->off[a], t->len[a]);
            merges[i][t->len[a]] = ' ';
            memcpy(merges[i] + t->len[a] + 1, t->pool + t->off[b], t->len[b]);
            merges[i][t->len[a] + 1 + t->len[b]] = 0;
        }
        ok = qb_gguf_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)merges, m) &&
             qb_gguf_set_str(w, "tokenizer.ggml.pre", t->pre_name[0] ? t->pre_name : "gpt-2");
        for (size_t i = 0; i < m; i++) free(merges[i]);
    }
    if (ok && t->bos >= 0) ok = qb_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)t->bos);
    if (ok && t->eos >= 0) ok = qb_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)t->eos);
    if (ok && t->unk >= 0) ok = qb_gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)t->unk);
    if (ok) ok = qb_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", t->add_bos);
    if (ok) ok = qb_gguf_set_bool(w, "tokenizer.ggml.add_eos_token", false);
    if (!ok) goto oom;
    goto done;
oom:
    st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory writing the tokenizer");
done:
    for (int i = 0; texts && i < n; i++) free(texts[i]);
    free(texts);
    free(types);
    free(merges);
    free(order);
    return st;
}
