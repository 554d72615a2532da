/* fuzz-safetensors.c — libFuzzer target for the safetensors header parser
 * (qb_safetensors_parse). On success the documented contract is checked: every tensor's
 * bytes lie inside the input and match shape x dtype size, no two non-empty tensors overlap,
 * lookups by name work; each tensor's first and last byte is read so ASan sees any range that
 * is not really there. Built and run by scripts/fuzz.sh. */
#include "core/model/safetensors.h"

#include <stdlib.h>
#include <string.h>

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
    if (qb_safetensors_parse(&ctx, "fuzz.safetensors", data, size, &f) == QB_OK) {
        check(&f, data, size);
    } else if (f.n_tensors != 0 || f.tensors != NULL) {
        __builtin_trap(); /* on failure *out is left empty */
    }
    qb_safetensors_free(&f);
    return 0;
}
