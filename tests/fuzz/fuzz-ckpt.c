/* fuzz-ckpt.c — libFuzzer target for the training checkpoint reader (qb_ckpt_read_memory,
 * core/util/ckpt_file.h) and what trusts its result: every array's values read, lookups by
 * name, and for inputs it accepts a write and re-read that must give the same description and
 * arrays. Rejections must carry a one-line message. Built and run by scripts/fuzz.sh. */
#include "core/util/ckpt_file.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_tmpdir.h"

static const char *out_path;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_tmpdir_make("ckpt");
    out_path = fuzz_tmpdir_file(0, "out.qbckpt");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_ckpt *c = NULL;
    if (qb_ckpt_read_memory(&ctx, "fuzz.qbckpt", data, size, &c) != QB_OK) {
        if (c || !qb_ctx_errmsg(&ctx)[0] || strchr(qb_ctx_errmsg(&ctx), '\n')) __builtin_trap();
        return 0;
    }
    volatile float sink = 0;
    for (uint32_t i = 0; i < c->n_arrays; i++) {
        const qb_ckpt_array *a = &c->arrays[i];
        if (!a->name[0] || strlen(a->name) > 255) __builtin_trap();
        for (uint64_t k = 0; k < a->count; k++) sink += a->data[k];
        const qb_ckpt_array *f = qb_ckpt_find(c, a->name);
        if (!f || strcmp(f->name, a->name)) __builtin_trap();
    }
    (void)sink;
    if (qb_ckpt_write(&ctx, out_path, c->meta, c->arrays, c->n_arrays) == QB_OK) {
        qb_ckpt *b = NULL;
        if (qb_ckpt_read(&ctx, out_path, &b) != QB_OK || strcmp(b->meta, c->meta) || b->n_arrays != c->n_arrays)
            __builtin_trap();
        for (uint32_t i = 0; i < c->n_arrays; i++)
            if (strcmp(b->arrays[i].name, c->arrays[i].name) || b->arrays[i].count != c->arrays[i].count ||
                memcmp(b->arrays[i].data, c->arrays[i].data, (size_t)c->arrays[i].count * 4))
                __builtin_trap();
        qb_ckpt_free(b);
        unlink(out_path);
    }
    qb_ckpt_free(c);
    return 0;
}
