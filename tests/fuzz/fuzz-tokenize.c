/* fuzz-tokenize.c — libFuzzer target for encoding arbitrary bytes with real vocabularies
 * (qb_tokenize, qb_detokenize, qb_token_to_bytes), loaded once in LLVMFuzzerInitialize:
 *   QB_FUZZ_BPE_JSON   byte-level BPE tokenizer.json  (default <models>/qb-docs-26m/hf/tokenizer.json)
 *   QB_FUZZ_SPM_GGUF   SentencePiece-style GGUF vocab (default <models>/tokenizer-vectors/ggml-vocab-llama-spm.gguf)
 *   QB_FUZZ_GPT2_GGUF  byte-level BPE GGUF vocab, optional (default <models>/tokenizer-vectors/ggml-vocab-gpt-2.gguf)
 *   QB_FUZZ_LLAMA2C_TOK llama2.c tokenizer.bin of 32000 tokens, optional
 *                       (default <models>/llama2-tokenizer/tokenizer.bin)
 * where <models> is $QB_MODELS or ../shared/models (run from the project root). The first two
 * are required; an optional one whose file is missing is skipped.
 * Every input is encoded as plain text; those whose first byte has bit 1 set also with special
 * tokens matched (qb_tokenize_special).
 * Checks: every id is inside the vocabulary; for the byte-level BPE vocabularies, decoding the
 * ids gives back the input bytes exactly whenever the input is valid UTF-8 (__builtin_trap on
 * a mismatch; with QB_FUZZ_STRICT_BPE=1 for any input: byte-level BPE is lossless by design);
 * for SentencePiece-style ones, no crash. The input is also read as a sequence of
 * int32 ids (out-of-range ones included) and decoded. Built and run by scripts/fuzz.sh. */
#include "core/util/gguf.h"
#include "core/tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *label;
    qb_tokenizer *tok;
    bool exact; /* byte-level BPE: lossless for valid UTF-8 */
} vocab;

static vocab vocabs[4];
static int n_vocabs;
static bool strict_bpe; /* QB_FUZZ_STRICT_BPE=1: BPE must round-trip invalid UTF-8 too */

static const char *model_path(const char *env, const char *rel, char *buf, size_t cap)
{
    const char *p = getenv(env);
    if (p && *p) return p;
    const char *base = getenv("QB_MODELS");
    snprintf(buf, cap, "%s/%s", base && *base ? base : "../shared/models", rel);
    return buf;
}

static void fail_init(const char *what, const char *path, const qb_ctx *ctx)
{
    fprintf(stderr, "fuzz-tokenize: cannot load %s %s: %s (set %s)\n", what, path, qb_ctx_errmsg(ctx),
            "QB_MODELS or the QB_FUZZ_* variables");
    exit(2);
}

static qb_tokenizer *load_gguf_vocab(qb_ctx *ctx, const char *path)
{
    qb_gguf *g;
    qb_tokenizer *t = NULL;
    if (qb_gguf_open(ctx, path, &g) != QB_OK) return NULL;
    if (qb_tokenizer_from_gguf(ctx, g, &t) != QB_OK) t = NULL;
    qb_gguf_close(g); /* the tokenizer keeps copies of its texts */
    return t;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    char buf[1024];
    const char *p;
    qb_tokenizer *t;

    p = model_path("QB_FUZZ_BPE_JSON", "qb-docs-26m/hf/tokenizer.json", buf, sizeof buf);
    if (qb_tokenizer_from_hf(&ctx, p, &t) != QB_OK) fail_init("BPE tokenizer", p, &ctx);
    vocabs[n_vocabs++] = (vocab){"qb-docs-26m BPE", t, true};

    p = model_path("QB_FUZZ_SPM_GGUF", "tokenizer-vectors/ggml-vocab-llama-spm.gguf", buf, sizeof buf);
    if (!(t = load_gguf_vocab(&ctx, p))) fail_init("SPM vocabulary", p, &ctx);
    vocabs[n_vocabs++] = (vocab){"llama SPM (GGUF)", t, false};

    p = model_path("QB_FUZZ_GPT2_GGUF", "tokenizer-vectors/ggml-vocab-gpt-2.gguf", buf, sizeof buf);
    if (access(p, R_OK) == 0) {
        if (!(t = load_gguf_vocab(&ctx, p))) fail_init("GPT-2 vocabulary", p, &ctx);
        vocabs[n_vocabs++] = (vocab){"gpt-2 BPE (GGUF)", t, true};
    }

    p = model_path("QB_FUZZ_LLAMA2C_TOK", "llama2-tokenizer/tokenizer.bin", buf, sizeof buf);
    if (access(p, R_OK) == 0) {
        if (qb_tokenizer_from_llama2c(&ctx, p, 32000, &t) != QB_OK) fail_init("llama2.c tokenizer", p, &ctx);
        vocabs[n_vocabs++] = (vocab){"llama2.c SPM", t, false};
    }
    const char *strict = getenv("QB_FUZZ_STRICT_BPE");
    strict_bpe = strict && *strict == '1';
    for (int i = 0; i < n_vocabs; i++)
        fprintf(stderr, "fuzz-tokenize: %s: %s\n", vocabs[i].label, qb_tokenizer_describe(vocabs[i].tok));
    return 0;
}

/* Strict UTF-8 (RFC 3629): no overlongs, no surrogates, nothing past U+10FFFF. */
static bool valid_utf8(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t l;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) l = 2, cp = c & 0x1F, min = 0x80;
        else if ((c & 0xF0) == 0xE0) l = 3, cp = c & 0x0F, min = 0x800;
        else if ((c & 0xF8) == 0xF0) l = 4, cp = c & 0x07, min = 0x10000;
        else return false;
        if (l > n - i) return false;
        for (size_t k = 1; k < l; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += l;
    }
    return true;
}

static void run(const vocab *v, const uint8_t *data, size_t size, bool utf8, bool bos, bool special)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    const qb_tokenizer *t = v->tok;
    int nv = qb_tokenizer_vocab_size(t);
    int32_t *ids = NULL;
    int n = 0;
    bos = bos && qb_tokenizer_bos(t) >= 0;
    qb_status st = special ? qb_tokenize_special(&ctx, t, (const char *)data, size, bos, &ids, &n)
                           : qb_tokenize(&ctx, t, (const char *)data, size, bos, &ids, &n);
    if (st != QB_OK) {
        /* real vocabularies encode any bytes: a failure here is a bug too */
        fprintf(stderr, "%s: qb_tokenize failed: %s\n", v->label, qb_ctx_errmsg(&ctx));
        __builtin_trap();
    }
    if (!ids || n < 0 || (bos && (n < 1 || ids[0] != qb_tokenizer_bos(t)))) __builtin_trap();
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= nv) __builtin_trap();
    /* the decoded bytes, token by token (binary-exact), and qb_detokenize's C string */
    size_t total = 0;
    for (int i = 0; i < n; i++) total += qb_token_to_bytes(t, i ? ids[i - 1] : -1, ids[i], NULL, 0);
    char *bytes = malloc(total + 1);
    if (!bytes) abort();
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        char small[3]; /* also exercise the truncating path */
        size_t k = qb_token_to_bytes(t, i ? ids[i - 1] : -1, ids[i], small, sizeof small);
        size_t k2 = qb_token_to_bytes(t, i ? ids[i - 1] : -1, ids[i], bytes + o, total - o);
        if (k != k2 || k > total - o || memcmp(small, bytes + o, k < sizeof small ? k : sizeof small) != 0)
            __builtin_trap();
        o += k;
    }
    char *s = qb_detokenize(t, ids, n);
    if (!s || o != total) __builtin_trap();
    size_t len = strlen(s); /* ends early at a decoded NUL */
    if (len > total || memcmp(s, bytes, len) != 0) __builtin_trap();
    /* (special tokens written in the text decode to nothing: not a round trip) */
    if (v->exact && (utf8 || strict_bpe) && !bos && !special && (total != size || memcmp(bytes, data, size) != 0)) {
        fprintf(stderr, "%s: round trip differs: %zu bytes in, %zu bytes out, %d ids\n", v->label, size, total, n);
        __builtin_trap();
    }
    free(bytes);
    free(s);
    free(ids);
}

/* The input read as little-endian int32 ids, in range or not: decoding must cope. */
static void decode_ids(const vocab *v, const uint8_t *data, size_t size)
{
    int n = (int)(size / 4);
    int32_t *ids = malloc((size_t)(n ? n : 1) * sizeof *ids);
    if (!ids) abort();
    for (int i = 0; i < n; i++) {
        uint32_t u = (uint32_t)data[4 * i] | (uint32_t)data[4 * i + 1] << 8 | (uint32_t)data[4 * i + 2] << 16 |
                     (uint32_t)data[4 * i + 3] << 24;
        /* mostly ids near the vocabulary, sometimes anything */
        ids[i] = (u >> 31) ? (int32_t)u : (int32_t)(u % (uint32_t)(qb_tokenizer_vocab_size(v->tok) + 2)) - 1;
    }
    size_t total = 0;
    for (int i = 0; i < n; i++) total += qb_token_to_bytes(v->tok, i ? ids[i - 1] : -1, ids[i], NULL, 0);
    char *s = qb_detokenize(v->tok, ids, n);
    if (!s || strlen(s) > total) __builtin_trap();
    free(s);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool utf8 = valid_utf8(data, size);
    for (int i = 0; i < n_vocabs; i++) {
        run(&vocabs[i], data, size, utf8, false, false);
        if (size && (data[0] & 1)) run(&vocabs[i], data, size, utf8, true, false); /* with BOS, for half the inputs */
        if (size && (data[0] & 2)) run(&vocabs[i], data, size, utf8, false, true); /* special tokens matched */
        decode_ids(&vocabs[i], data, size);
    }
    return 0;
}
