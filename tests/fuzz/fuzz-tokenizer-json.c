/* fuzz-tokenizer-json.c — libFuzzer target for the Hugging Face tokenizer.json loader
 * (qb_tokenizer_from_hf): byte-level BPE (with or without NFC) and SentencePiece-style BPE
 * (Prepend / Replace normalizers, Metaspace, byte fallback, added-token flags). The input is
 * written to tokenizer.json in a private temp directory (under $QB_FUZZ_TMP, else /dev/shm,
 * else $TMPDIR); if it contains the separator line CONFIG_SEP, what follows it becomes
 * tokenizer_config.json beside it (else there is none), so both files are fuzzed. A tokenizer
 * that loads then encodes a fixed sample and a slice of the input, with and without special
 * tokens matched; every id must be in the vocabulary, and decoding must not crash. Built and
 * run by scripts/fuzz.sh. */
#include "core/tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_tmpdir.h"

#define CONFIG_SEP "\n@@tokenizer_config.json@@\n"

static const char *tok_path, *cfg_path;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_tmpdir_make("tokjson");
    tok_path = fuzz_tmpdir_file(0, "tokenizer.json");
    cfg_path = fuzz_tmpdir_file(1, "tokenizer_config.json");
    return 0;
}

static void write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
}

static void encode(qb_ctx *ctx, const qb_tokenizer *tok, const char *text, size_t len, bool bos, bool special)
{
    int nv = qb_tokenizer_vocab_size(tok);
    int32_t *ids = NULL;
    int n = 0;
    qb_status st = special ? qb_tokenize_special(ctx, tok, text, len, bos, &ids, &n)
                           : qb_tokenize(ctx, tok, text, len, bos, &ids, &n);
    if (st == QB_OK) {
        for (int i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= nv) __builtin_trap();
        free(qb_detokenize(tok, ids, n));
    }
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char sample[] = "Hello, world! It's 2024: \xc3\xbc\xc3\xb1\xc3\xaf\xe2\x82\xac  \n\n\tdone. "
                                 "e\xcc\x81 <s>a</s> <|endoftext|> \xe2\x96\x81x \xff";
    const uint8_t *sep = memmem(data, size, CONFIG_SEP, sizeof CONFIG_SEP - 1);
    size_t tok_len = sep ? (size_t)(sep - data) : size;
    write_file(tok_path, data, tok_len);
    if (sep) {
        const uint8_t *cfg = sep + sizeof CONFIG_SEP - 1;
        write_file(cfg_path, cfg, size - (size_t)(cfg - data));
    } else {
        unlink(cfg_path);
    }
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_tokenizer *tok = NULL;
    if (qb_tokenizer_from_hf(&ctx, tok_path, &tok) == QB_OK) {
        qb_tok_kind kind = tok ? qb_tokenizer_kind(tok) : (qb_tok_kind)-1;
        if (!tok || (kind != QB_TOK_BPE && kind != QB_TOK_SPM) || qb_tokenizer_vocab_size(tok) <= 0) __builtin_trap();
        int nv = qb_tokenizer_vocab_size(tok);
        int32_t bos = qb_tokenizer_bos(tok), eos = qb_tokenizer_eos(tok);
        if (bos < -1 || bos >= nv || eos < -1 || eos >= nv) __builtin_trap();
        (void)qb_tokenizer_describe(tok);
        encode(&ctx, tok, sample, sizeof sample - 1, bos >= 0, false);
        encode(&ctx, tok, sample, sizeof sample - 1, false, true);
        encode(&ctx, tok, (const char *)data, tok_len < 256 ? tok_len : 256, false, false);
        encode(&ctx, tok, (const char *)data, tok_len < 256 ? tok_len : 256, false, true);
        for (int32_t id = 0; id < nv && id < 512; id++) {
            size_t len;
            const char *s = qb_tokenizer_token_text(tok, id, &len);
            if (!s) __builtin_trap();
            if (len && qb_tokenizer_find(tok, s, len) < 0) __builtin_trap(); /* every text can be found */
        }
        qb_tokenizer_free(tok);
    } else if (tok) {
        __builtin_trap();
    }
    return 0;
}
