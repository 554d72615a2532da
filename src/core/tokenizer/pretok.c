/* pretok.c — regex pre-tokenizers for byte-level BPE: PCRE2 with UTF and Unicode properties
 * (\p{L}, \p{N}, Unicode \s) cuts text into the words BPE merges within. Every match is a
 * word, and so is every stretch the regex skips (as Hugging Face's "Isolated" split and
 * llama.cpp do). Compiled patterns are shared read-only; match data is per call, so one
 * pre-tokenizer serves several threads. Invalid UTF-8 never matches and ends up in the
 * skipped stretches. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tok_internal.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STAGES 8

struct tok_pretok {
    int n;
    pcre2_code *code[MAX_STAGES];
};

/* The regexes llama.cpp (c392e50) runs for the pre-tokenizers we know, and the form the same
 * regex takes in the models' tokenizer.json (llama.cpp spells out the case-insensitive
 * contractions; PCRE2 reads both), so a tokenizer.json can be recognised by name. */
static const struct {
    const char *name;
    const char *regex;
    const char *hf_regex; /* as tokenizer.json writes it, or NULL */
} presets[] = {
    {"gpt-2", "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+", NULL},
    {"llama-bpe",
     "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
     "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
     "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    /* Qwen2: Llama 3's regex with single digits (\p{N} instead of \p{N}{1,3}) */
    {"qwen2",
     "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
     "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
     "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
};

const char *tok_pretok_regex(const char *name)
{
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (strcmp(presets[i].name, name) == 0) return presets[i].regex;
    return NULL;
}

const char *tok_pretok_name(const char *regex)
{
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (strcmp(presets[i].regex, regex) == 0 || (presets[i].hf_regex && strcmp(presets[i].hf_regex, regex) == 0))
            return presets[i].name;
    return NULL;
}

void tok_pretok_free(tok_pretok *p)
{
    if (!p) return;
    for (int i = 0; i < p->n; i++) pcre2_code_free(p->code[i]);
    free(p);
}

qb_status tok_pretok_new(qb_ctx *ctx, const char *const *regex, int n, const char *what, tok_pretok **out)
{
    *out = NULL;
    if (n < 1 || n > MAX_STAGES)
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: %d pre-tokenizer regexes (1 to %d supported)", what, n,
                       MAX_STAGES);
    tok_pretok *p = calloc(1, sizeof *p);
    if (!p) return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", what);
    for (int i = 0; i < n; i++) {
        int err;
        PCRE2_SIZE at;
        p->code[i] = pcre2_compile((PCRE2_SPTR)regex[i], PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &at, NULL);
        if (!p->code[i]) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(err, msg, sizeof msg);
            tok_pretok_free(p);
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: pre-tokenizer regex does not compile at offset %zu: %s", what,
                           (size_t)at, (const char *)msg);
        }
        p->n = i + 1;
        pcre2_jit_compile(p->code[i], PCRE2_JIT_COMPLETE); /* optional: falls back to the interpreter */
    }
    *out = p;
    return QB_OK;
}

typedef struct {
    const tok_pretok *p;
    pcre2_match_data *md[MAX_STAGES];
    tok_piece_fn fn;
    void *ud;
} split_state;

static qb_status split(qb_ctx *ctx, split_state *s, int stage, const char *text, size_t n)
{
    if (n == 0) return QB_OK;
    if (stage == s->p->n) return s->fn(ctx, s->ud, text, n);
    qb_status st;
    size_t pos = 0, gap = 0;
    while (pos < n) {
        int rc = pcre2_match(s->p->code[stage], (PCRE2_SPTR)text, n, pos, 0, s->md[stage], NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return qb_fail(ctx, QB_ERR_FORMAT, "tokenize: pre-tokenizer regex failed: %s", (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md[stage]);
        size_t ms = ov[0], me = ov[1];
        if (ms > gap && (st = split(ctx, s, stage + 1, text + gap, ms - gap)) != QB_OK) return st;
        if (me > ms) {
            if ((st = split(ctx, s, stage + 1, text + ms, me - ms)) != QB_OK) return st;
            gap = pos = me;
        } else { /* empty match: step over one character, which stays in the gap */
            int l;
            tok_utf8_get(text + me, n - me, &l);
            gap = me;
            pos = me + (size_t)l;
        }
    }
    return gap < n ? split(ctx, s, stage + 1, text + gap, n - gap) : QB_OK;
}

qb_status tok_pretok_split(qb_ctx *ctx, const tok_pretok *p, const char *text, size_t len,
                           tok_piece_fn fn, void *ud)
{
    if (!p) return fn(ctx, ud, text, len);
    split_state s = {.p = p, .fn = fn, .ud = ud};
    qb_status st = QB_OK;
    for (int i = 0; i < p->n; i++) {
        if (!(s.md[i] = pcre2_match_data_create_from_pattern(p->code[i], NULL))) {
            st = qb_fail(ctx, QB_ERR_NOMEM, "tokenize: out of memory");
            goto fail;
        }
    }
    st = split(ctx, &s, 0, text, len);
fail:
    for (int i = 0; i < p->n; i++) pcre2_match_data_free(s.md[i]);
    return st;
}
