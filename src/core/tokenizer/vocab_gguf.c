/* vocab_gguf.c — building a tokenizer from a GGUF's tokenizer.ggml.* metadata: "llama"
 * (SentencePiece-style: tokens with '▁', scores, token types, add_space_prefix) or "gpt2"
 * (byte-level BPE: tokens, "a b" merges whose index is the rank, the pre-tokenizer named by
 * tokenizer.ggml.pre). Defaults follow llama.cpp (c392e50, src/llama-vocab.cpp); user-defined,
 * control and unknown tokens are its "special tokens" matched in the text. */
#include "tok_internal.h"

#include "../util/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How llama.cpp treats each tokenizer.ggml.pre name we know. */
static const struct {
    const char *name;
    const char *preset;   /* regex preset in pretok.c */
    bool ignore_merges;   /* whole-word tokens bypass the merges */
    bool add_bos;         /* default when tokenizer.ggml.add_bos_token is absent */
} pre_names[] = {
    {"gpt-2", "gpt-2", false, false},     {"gpt2", "gpt-2", false, false},
    {"mpt", "gpt-2", false, false},       {"olmo", "gpt-2", false, false},
    {"jais", "gpt-2", false, false},      {"llama-bpe", "llama-bpe", true, true},
    {"llama3", "llama-bpe", true, true},  {"llama-v3", "llama-bpe", true, true},
    {"falcon3", "llama-bpe", true, true}, {"dbrx", "llama-bpe", false, false},
    {"smaug-bpe", "llama-bpe", false, false},
    /* LLAMA_VOCAB_PRE_TYPE_QWEN2 (and STABLELM2, which runs the same regex) */
    {"qwen2", "qwen2", false, false},     {"deepseek-r1-qwen", "qwen2", false, false},
    {"megrez", "qwen2", false, false},    {"stablelm2", "qwen2", false, false},
};

/* llama.cpp makes these end-of-generation tokens control tokens whatever the file says (so a
 * user-defined "<end_of_turn>" is not matched in plain text). */
static const char *const eog_names[] = {"<|eot_id|>", "<|im_end|>",    "<|end|>", "<end_of_turn>",
                                        "<|endoftext|>", "<|eom_id|>", "<EOT>"};

/* (before tok_finish, which decodes each token by its type) */
static void force_eog_control(qb_tokenizer *t)
{
    for (int id = 0; id < t->n_vocab; id++) {
        if (t->len[id] < 5 || t->pool[t->off[id]] != '<') continue;
        for (size_t k = 0; k < sizeof eog_names / sizeof eog_names[0]; k++)
            if (t->len[id] == strlen(eog_names[k]) && memcmp(t->pool + t->off[id], eog_names[k], t->len[id]) == 0)
                t->type[id] = TOK_CONTROL;
    }
}

/* A special-token id key, or dflt when absent; ids outside the vocabulary mean "none". */
static int32_t special_id(const qb_gguf *g, const char *key, int32_t dflt, int n_vocab)
{
    const qb_gguf_kv *kv = qb_gguf_find(g, key);
    if (!kv || kv->type == QB_GGUF_STRING || kv->type == QB_GGUF_ARRAY) return dflt;
    return kv->i64 >= 0 && kv->i64 < n_vocab ? (int32_t)kv->i64 : -1;
}

static bool is_int_type(uint32_t type)
{
    return type <= QB_GGUF_INT32 || type == QB_GGUF_UINT64 || type == QB_GGUF_INT64;
}

/* An optional per-token array: absent is fine; present, it must be numeric and as long as
 * the token list. */
static qb_status per_token_array(qb_ctx *ctx, const qb_gguf *g, const char *key, uint64_t n_tok,
                                 const qb_gguf_kv **out)
{
    const qb_gguf_kv *kv = qb_gguf_find(g, key);
    *out = NULL;
    if (!kv) return QB_OK;
    if (kv->type != QB_GGUF_ARRAY || kv->arr_type == QB_GGUF_STRING || kv->arr_type == QB_GGUF_BOOL)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: %s is not a numeric array", g->path, key);
    if (kv->arr_n != n_tok)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: %s has %llu entries but tokenizer.ggml.tokens has %llu", g->path,
                       key, (unsigned long long)kv->arr_n, (unsigned long long)n_tok);
    *out = kv;
    return QB_OK;
}

static qb_status load_merges(qb_ctx *ctx, const qb_gguf *g, qb_tokenizer *t)
{
    const qb_gguf_kv *kv = qb_gguf_find(g, "tokenizer.ggml.merges");
    if (!kv) return qb_fail(ctx, QB_ERR_FORMAT, "%s: gpt2 vocabulary without tokenizer.ggml.merges", g->path);
    if (kv->type != QB_GGUF_ARRAY || kv->arr_type != QB_GGUF_STRING)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: tokenizer.ggml.merges is not an array of strings", g->path);
    if (kv->arr_n > (uint64_t)INT32_MAX)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: too many merges", g->path);
    qb_status st = tok_reserve_merges(ctx, t, (size_t)kv->arr_n);
    for (uint64_t i = 0; i < kv->arr_n && st == QB_OK; i++) {
        const char *s = kv->arr_str[i].ptr;
        size_t n = (size_t)kv->arr_str[i].len;
        /* "a b": split at the first space after the first byte */
        const char *sp = n > 1 ? memchr(s + 1, ' ', n - 1) : NULL;
        if (!sp) continue; /* malformed: skipped */
        bool kept;
        st = tok_add_merge_text(ctx, t, s, (size_t)(sp - s), sp + 1, n - (size_t)(sp - s) - 1, (int32_t)i, &kept);
        t->n_merges += kept;
    }
    return st;
}

static qb_status setup_bpe(qb_ctx *ctx, const qb_gguf *g, qb_tokenizer *t)
{
    const char *pre = qb_gguf_get_str(g, "tokenizer.ggml.pre");
    const char *preset = "gpt-2";
    char label[160];
    bool add_bos = false;
    size_t k = 0, nk = sizeof pre_names / sizeof pre_names[0];
    while (pre && k < nk && strcmp(pre_names[k].name, pre) != 0) k++;
    if (pre && k < nk) {
        preset = pre_names[k].preset;
        t->ignore_merges = pre_names[k].ignore_merges;
        add_bos = pre_names[k].add_bos;
        snprintf(label, sizeof label, "%s", pre);
    } else if (pre) {
        snprintf(label, sizeof label, "gpt-2 (fallback for unknown '%.80s')", pre);
    } else {
        snprintf(label, sizeof label, "gpt-2 (fallback: no tokenizer.ggml.pre)");
    }
    snprintf(t->pre_name, sizeof t->pre_name, "%s", pre && k < nk ? pre : "gpt-2");
    const char *rx = tok_pretok_regex(preset);
    qb_status st = tok_pretok_new(ctx, &rx, 1, g->path, &t->pre);
    if (st != QB_OK) return st;
    t->add_bos = qb_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", add_bos);
    if ((st = load_merges(ctx, g, t)) != QB_OK) return st;
    snprintf(t->desc, sizeof t->desc, "byte-level BPE, pre-tokenizer %s (%d tokens, %d merges)", label,
             t->n_vocab, t->n_merges);
    return QB_OK;
}

qb_status qb_tokenizer_from_gguf(qb_ctx *ctx, const void *gv, qb_tokenizer **out)
{
    const qb_gguf *g = gv;
    qb_tokenizer *t = NULL;
    qb_status st;
    *out = NULL;
    if (!g) return qb_fail(ctx, QB_ERR_ARG, "tokenizer: no GGUF");
    const char *model = qb_gguf_get_str(g, "tokenizer.ggml.model");
    const qb_gguf_kv *tok = qb_gguf_find(g, "tokenizer.ggml.tokens");
    if (!tok) return qb_fail(ctx, QB_ERR_FORMAT, "%s: no tokenizer.ggml.tokens (the file has no vocabulary)", g->path);
    if (tok->type != QB_GGUF_ARRAY || tok->arr_type != QB_GGUF_STRING)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: tokenizer.ggml.tokens is not an array of strings", g->path);
    if (tok->arr_n == 0 || tok->arr_n > TOK_MAX_VOCAB)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %llu entries", g->path,
                       (unsigned long long)tok->arr_n);
    if (!model) return qb_fail(ctx, QB_ERR_FORMAT, "%s: no tokenizer.ggml.model", g->path);
    bool spm = strcmp(model, "llama") == 0;
    if (!spm && strcmp(model, "gpt2") != 0)
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: unsupported tokenizer.ggml.model '%s' (llama and gpt2 are)",
                       g->path, model);
    int n = (int)tok->arr_n;
    const qb_gguf_kv *scores, *types;
    if ((st = per_token_array(ctx, g, "tokenizer.ggml.scores", tok->arr_n, &scores)) != QB_OK) return st;
    if ((st = per_token_array(ctx, g, "tokenizer.ggml.token_type", tok->arr_n, &types)) != QB_OK) return st;
    if (types && !is_int_type(types->arr_type))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: tokenizer.ggml.token_type is not an integer array", g->path);
    if ((st = tok_alloc(ctx, spm ? QB_TOK_SPM : QB_TOK_BPE, n, spm, &t)) != QB_OK) return st;
    for (int i = 0; i < n; i++) {
        if ((st = tok_set_text(ctx, t, i, tok->arr_str[i].ptr, (size_t)tok->arr_str[i].len)) != QB_OK) goto fail;
        if (spm && scores) t->score[i] = (float)qb_gguf_arr_float(scores, (uint64_t)i);
        if (types) {
            int64_t ty = qb_gguf_arr_int(types, (uint64_t)i);
            t->type[i] = ty >= TOK_NORMAL && ty <= TOK_BYTE ? (uint8_t)ty : TOK_UNUSED;
        } else if (spm && tok->arr_str[i].len == 6 && memcmp(tok->arr_str[i].ptr, "<0x", 3) == 0) {
            t->type[i] = TOK_BYTE; /* no types stored: recognise byte tokens by their text */
        }
    }
    t->bos = special_id(g, "tokenizer.ggml.bos_token_id", spm ? 1 : -1, n);
    t->eos = special_id(g, "tokenizer.ggml.eos_token_id", spm ? 2 : -1, n);
    t->unk = special_id(g, "tokenizer.ggml.unknown_token_id", spm ? 0 : -1, n);
    force_eog_control(t);
    if ((st = tok_finish(ctx, t)) != QB_OK) goto fail;
    if (spm) {
        /* llama.cpp: ' ' in front of each stretch of text (if add_space_prefix), then ' ' -> "▁" */
        t->add_space_prefix = qb_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", true);
        t->norm_prepend = t->add_space_prefix;
        t->norm_spaces = true;
        t->add_bos = qb_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", true);
        snprintf(t->desc, sizeof t->desc, "SentencePiece-style (%d tokens%s)", n,
                 t->add_space_prefix ? "" : ", no space prefix");
    } else if ((st = setup_bpe(ctx, g, t)) != QB_OK) {
        goto fail;
    }
    if ((st = tok_added_from_types(ctx, t)) != QB_OK || (st = tok_added_finish(ctx, t)) != QB_OK) goto fail;
    *out = t;
    return QB_OK;
fail:
    qb_tokenizer_free(t);
    return st;
}
