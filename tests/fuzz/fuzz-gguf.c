/* fuzz-gguf.c — libFuzzer target for the GGUF reader (qb_gguf_open_memory) and, for inputs it
 * accepts, the code that trusts what it validated: every metadata lookup and numeric array
 * element, every tensor's bytes, the tokenizer built from tokenizer.ggml.* (then a short
 * tokenize / detokenize), and for small files the whole model path (qb_model_open on a temp
 * copy under $QB_FUZZ_TMP, else /dev/shm, else $TMPDIR; tokenizer included; split.* keys are
 * checked there, the copy not being named as a split's first part). Built and run by
 * scripts/fuzz.sh. */
#include "core/util/gguf.h"
#include "core/model/model.h"
#include "core/tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_tmpdir.h"

#define MODEL_MAX_BYTES (1u << 20) /* qb_model_open only on inputs this small: it stays cheap */

static const char *tmp_path;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_tmpdir_make("gguf");
    tmp_path = fuzz_tmpdir_file(0, "model.gguf");
    return 0;
}

static volatile uint8_t sink;

/* Read the first and last byte of [p, p+n): ASan flags a range that is not really there. */
static void touch(const void *p, size_t n)
{
    if (!n) return;
    sink ^= ((const volatile uint8_t *)p)[0];
    sink ^= ((const volatile uint8_t *)p)[n - 1];
}

static void check_gguf(const qb_gguf *g, const uint8_t *data, size_t size)
{
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const qb_gguf_kv *kv = &g->kv[i];
        if (qb_gguf_find(g, kv->key) == NULL) __builtin_trap();
        (void)qb_gguf_get_int(g, kv->key, 0);
        (void)qb_gguf_get_float(g, kv->key, 0);
        (void)qb_gguf_get_bool(g, kv->key, false);
        (void)qb_gguf_get_str(g, kv->key);
        if (kv->type != QB_GGUF_ARRAY) continue;
        if (kv->arr_type == QB_GGUF_STRING) {
            for (uint64_t j = 0; j < kv->arr_n; j++) {
                const qb_gguf_strref *s = &kv->arr_str[j];
                if ((const uint8_t *)s->ptr < data || s->len > size ||
                    (const uint8_t *)s->ptr + s->len > data + size)
                    __builtin_trap();
                touch(s->ptr, (size_t)s->len);
            }
        } else {
            size_t es = qb_gguf_type_size(kv->arr_type);
            if (es == 0 || kv->arr_n > size / es) __builtin_trap();
            uint64_t n = kv->arr_n < 4096 ? kv->arr_n : 4096;
            for (uint64_t j = 0; j < n; j++) {
                (void)qb_gguf_arr_float(kv, j);
                (void)qb_gguf_arr_int(kv, j);
            }
            if (kv->arr_n) {
                (void)qb_gguf_arr_float(kv, kv->arr_n - 1);
                (void)qb_gguf_arr_int(kv, kv->arr_n - 1);
            }
        }
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const qb_gguf_tensor *t = &g->tensors[i];
        if (!qb_gguf_find_tensor(g, t->name)) __builtin_trap();
        if (t->offset % g->alignment != 0) __builtin_trap();
        const uint8_t *p = t->data;
        if (t->nbytes && (p < data || t->nbytes > size || p + t->nbytes > data + size)) __builtin_trap();
        touch(t->data, t->nbytes);
    }
}

static void check_tokenizer(qb_ctx *ctx, const qb_tokenizer *tok)
{
    static const char sample[] = "Hello world! \xc3\xbc" "n\xc3\xaf" "c\xc3\xb6" "d\xc3\xa9 123 <s>\n\tx";
    int32_t *ids = NULL;
    int n = 0;
    int nv = qb_tokenizer_vocab_size(tok);
    (void)qb_tokenizer_describe(tok);
    if (qb_tokenize(ctx, tok, sample, sizeof sample - 1, qb_tokenizer_bos(tok) >= 0, &ids, &n) == QB_OK) {
        for (int i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= nv) __builtin_trap();
        free(qb_detokenize(tok, ids, n));
    }
    free(ids);
    for (int32_t id = -1; id <= nv && id < 300; id++) {
        char buf[8];
        (void)qb_token_to_bytes(tok, id - 1, id, buf, sizeof buf);
        size_t len;
        (void)qb_tokenizer_token_text(tok, id, &len);
    }
}

static void try_model(const uint8_t *data, size_t size)
{
    FILE *f = fopen(tmp_path, "wb");
    if (!f) abort();
    if (fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model_opts opts = {.skip_tokenizer = false};
    qb_model *m = NULL;
    if (qb_model_open(&ctx, tmp_path, &opts, &m) == QB_OK) {
        (void)qb_model_bytes(m);
        (void)qb_model_params(m);
        if (m->tok) check_tokenizer(&ctx, m->tok);
        qb_model_close(m);
    }
    unlink(tmp_path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_gguf *g = NULL;
    if (qb_gguf_open_memory(&ctx, "fuzz.gguf", data, size, &g) != QB_OK) {
        if (g) __builtin_trap(); /* failure must leave *out NULL */
        return 0;
    }
    check_gguf(g, data, size);
    /* the tokenizer straight from the metadata, whatever the hyperparameters say */
    qb_tokenizer *tok = NULL;
    if (qb_tokenizer_from_gguf(&ctx, g, &tok) == QB_OK) {
        check_tokenizer(&ctx, tok);
        qb_tokenizer_free(tok);
    }
    qb_gguf_close(g);
    if (size < MODEL_MAX_BYTES) try_model(data, size);
    return 0;
}
