/* fuzz-safetensors.c — libFuzzer target for the safetensors header parser
 * (qb_safetensors_parse). On success the documented contract is checked: every tensor's
 * bytes lie inside the input and match shape x dtype size, no two non-empty tensors overlap,
 * lookups by name work; each tensor's first and last byte is read so ASan sees any range that
 * is not really there. Then the input goes through the Hugging Face model loader: written as
 * model.safetensors beside a fixed tiny config.json (TINY_CONFIG) in a temp directory (under
 * $QB_FUZZ_TMP, else /dev/shm, else $TMPDIR), opened with qb_model_open (weights only), so
 * name mapping, per-tensor checks and qb_model_bind see fuzzed shapes and dtypes.
 * Built and run by scripts/fuzz.sh. */
#include "core/model/model.h"
#include "core/model/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_tmpdir.h"

/* The shapes scripts/fuzz.sh's tiny-llama.safetensors seed has. */
#define TINY_CONFIG                                                                                        \
    "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 8, \"intermediate_size\": 16,"           \
    " \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"vocab_size\": 16,"  \
    " \"max_position_embeddings\": 32, \"rms_norm_eps\": 1e-5, \"tie_word_embeddings\": false}"

static const char *tmp_dir;
static const char *st_path, *cfg_path;

static void write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    tmp_dir = fuzz_tmpdir_make("st");
    st_path = fuzz_tmpdir_file(0, "model.safetensors");
    cfg_path = fuzz_tmpdir_file(1, "config.json");
    write_file(cfg_path, TINY_CONFIG, sizeof TINY_CONFIG - 1);
    return 0;
}

static void try_model(const uint8_t *data, size_t size)
{
    write_file(st_path, data, size);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model_opts opts = {.skip_tokenizer = true};
    qb_model *m = NULL;
    if (qb_model_open(&ctx, tmp_dir, &opts, &m) == QB_OK) {
        if (!m || m->kind != QB_FILE_SAFETENSORS || !m->tok_embd || !m->output || !m->layers) __builtin_trap();
        (void)qb_model_params(m);
        qb_model_close(m);
    } else if (m) {
        __builtin_trap();
    }
    unlink(st_path);
}

static volatile uint8_t sink;

static void check(const qb_st_file *f, const uint8_t *data, size_t size)
{
    if (f->n_tensors < 0 || f->data_offset < 8 || f->data_offset > size) __builtin_trap();
    for (int i = 0; i < f->n_tensors; i++) {
        const qb_st_tensor *t = &f->tensors[i];
        if (!t->name || t->n_dims < 0 || t->n_dims > QB_ST_MAX_DIMS) __builtin_trap();
        size_t es = qb_safetensors_dtype_size(t->dtype);
        if (es == 0) __builtin_trap();
        uint64_t nel = 1;
        for (int d = 0; d < t->n_dims; d++) {
            if (t->shape[d] < 0) __builtin_trap();
            nel *= (uint64_t)t->shape[d]; /* cannot overflow: the parser bounded it */
        }
        if (nel * es != t->nbytes || t->end - t->begin != t->nbytes) __builtin_trap();
        const uint8_t *p = t->data;
        if (p < data + f->data_offset || t->nbytes > size || p + t->nbytes > data + size) __builtin_trap();
        if (t->nbytes) {
            sink ^= ((const volatile uint8_t *)p)[0];
            sink ^= ((const volatile uint8_t *)p)[t->nbytes - 1];
        }
        const qb_st_tensor *found = qb_safetensors_find(f, t->name);
        if (!found || strcmp(found->name, t->name) != 0) __builtin_trap();
        for (int j = 0; j < i && i < 256; j++) { /* quadratic: the first 256 are enough */
            const qb_st_tensor *u = &f->tensors[j];
            if (t->nbytes && u->nbytes && t->begin < u->end && u->begin < t->end) __builtin_trap();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_st_file f;
    bool ok = qb_safetensors_parse(&ctx, "fuzz.safetensors", data, size, &f) == QB_OK;
    if (ok) check(&f, data, size);
    else if (f.n_tensors != 0 || f.tensors != NULL) __builtin_trap(); /* on failure *out is left empty */
    qb_safetensors_free(&f);
    if (ok) try_model(data, size);
    return 0;
}
