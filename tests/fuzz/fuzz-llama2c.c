/* fuzz-llama2c.c — libFuzzer target for the llama2.c loaders. Each input is written to a
 * temp file (under $QB_FUZZ_TMP, else /dev/shm, else $TMPDIR) and used twice:
 *  - as a checkpoint: qb_model_open with skip_tokenizer (legacy 7-int header or "ak42" v1),
 *    through qb_model_bind's shape checks;
 *  - as a tokenizer.bin: qb_tokenizer_from_llama2c with the vocabulary size taken from the
 *    input's first two bytes (little-endian u16; the loader ignores the max_token_length field
 *    they belong to, so seeds set them to the real vocabulary size), then a short tokenize /
 *    detokenize with whatever vocabulary that gives.
 * Inputs starting with "GGUF" are skipped (qb_model_open would take them as GGUF: that is
 * fuzz-gguf's job). Built and run by scripts/fuzz.sh. */
#include "core/model/model.h"
#include "core/tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_tmpdir.h"

static const char *tmp_path;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_tmpdir_make("llama2c");
    tmp_path = fuzz_tmpdir_file(0, "model.bin");
    return 0;
}

static void write_temp(const uint8_t *data, size_t size)
{
    FILE *f = fopen(tmp_path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
}

static void check_tokenizer(qb_ctx *ctx, const qb_tokenizer *tok, const uint8_t *data, size_t size)
{
    static const char sample[] = "Once upon a time, \xc3\xbc\xe2\x96\x81 <0x41> 12\n";
    int nv = qb_tokenizer_vocab_size(tok);
    const char *texts[2] = {sample, (const char *)data};
    size_t lens[2] = {sizeof sample - 1, size < 64 ? size : 64};
    for (int k = 0; k < 2; k++) {
        int32_t *ids = NULL;
        int n = 0;
        if (qb_tokenize(ctx, tok, texts[k], lens[k], k == 0 && qb_tokenizer_bos(tok) >= 0, &ids, &n) == QB_OK) {
            for (int i = 0; i < n; i++)
                if (ids[i] < 0 || ids[i] >= nv) __builtin_trap();
            free(qb_detokenize(tok, ids, n));
        }
        free(ids);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 4 && memcmp(data, "GGUF", 4) == 0) return 0;
    write_temp(data, size);
    qb_ctx ctx;
    qb_ctx_init(&ctx);

    qb_model_opts opts = {.skip_tokenizer = true};
    qb_model *m = NULL;
    if (qb_model_open(&ctx, tmp_path, &opts, &m) == QB_OK) {
        if (!m || m->kind != QB_FILE_LLAMA2C || !m->tok_embd || !m->output || !m->layers) __builtin_trap();
        (void)qb_model_params(m);
        (void)qb_model_bytes(m);
        qb_model_close(m);
    } else if (m) {
        __builtin_trap();
    }

    if (size >= 2) {
        int vocab = data[0] | data[1] << 8;
        qb_tokenizer *tok = NULL;
        if (vocab > 0 && qb_tokenizer_from_llama2c(&ctx, tmp_path, vocab, &tok) == QB_OK) {
            if (qb_tokenizer_vocab_size(tok) != vocab) __builtin_trap();
            check_tokenizer(&ctx, tok, data, size);
            qb_tokenizer_free(tok);
        }
    }
    unlink(tmp_path);
    return 0;
}
