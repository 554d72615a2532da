/* fuzz-imatrix.c — libFuzzer target for the importance-matrix reader (qb_imatrix_load_memory:
 * llama.cpp's legacy .dat and, for inputs starting with "GGUF", the GGUF imatrix) and, for
 * inputs it accepts, what trusts its result: every entry's lookups by name (llama.cpp's and our
 * per-expert names), a comparison with itself, and a write and re-read: an accepted .dat
 * written back as .dat must be the input byte for byte, and any accepted file written as GGUF
 * must read back with the same entries; and the quantizers' view of it (qb_imatrix_importance:
 * every value finite, or an error) with each entry's importance weighting a Q4_K / Q4_0 row.
 * Built and run by scripts/fuzz.sh. */
#include "core/calib/imatrix.h"
#include "kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_tmpdir.h"

static const char *dat_path, *gguf_path;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_tmpdir_make("imatrix");
    dat_path = fuzz_tmpdir_file(0, "out.dat");
    gguf_path = fuzz_tmpdir_file(1, "out.gguf");
    return 0;
}

static void check_entries(const qb_imatrix *im)
{
    for (int i = 0; i < im->n_entries; i++) {
        const qb_imatrix_entry *e = &im->entries[i];
        if (qb_imatrix_find(im, e->name) != e) __builtin_trap();
        size_t n = (size_t)e->n_cols * e->n_mat;
        const float *w = qb_imatrix_weights(im, e->name, (int64_t)n);
        if (e->n_mat == 1 && w != e->w) __builtin_trap();
        volatile float sink = e->w[n - 1] + e->sum2[n - 1] + e->counts[e->n_mat - 1];
        (void)sink;
        /* our per-expert names, in and out of range */
        char name[200];
        int l, len = 0;
        char kind[8];
        if (sscanf(e->name, "blk.%d.ffn_%7[a-z]_exps.weight%n", &l, kind, &len) == 2 && !e->name[len])
            for (int x = 0; x < 3; x++) {
                snprintf(name, sizeof name, "blk.%d.ffn_%s_exps.%d.weight", l, kind, x);
                (void)qb_imatrix_weights(im, name, e->n_cols);
                (void)qb_imatrix_weights(im, name, 1);
            }
    }
    qb_imatrix_diff d;
    if (!qb_imatrix_compare(im, im, &d)) return;
    if (d.n_common != im->n_entries || d.max_rel != 0 || d.n_only_a || d.n_only_b) __builtin_trap();
    free(d.entry_rel);
}

/* The importance as quantize --imatrix takes it: lookups by llama-quantize's rules, and rows
 * quantized with each entry's weights (finite by then, any magnitude). */
static void check_importance(qb_ctx *ctx, qb_imatrix *im)
{
    char *path = im->path; /* from memory: no file to digest */
    im->path = NULL;
    qb_importance imp;
    qb_status st = qb_imatrix_importance(ctx, im, &imp);
    im->path = path;
    if (st != QB_OK) {
        if (!qb_ctx_errmsg(ctx)[0] || strchr(qb_ctx_errmsg(ctx), '\n')) __builtin_trap();
        return;
    }
    for (int i = 0; i < im->n_entries && i < 8; i++) {
        const qb_imatrix_entry *e = &im->entries[i];
        const float *w = NULL;
        if (qb_importance_lookup(ctx, &imp, e->name, e->n_cols, e->n_mat, 0, &w, NULL) != QB_OK || !w) __builtin_trap();
        const int64_t n = e->n_cols;
        const int type = n % 256 == 0 ? QB_TYPE_Q4_K : n % 32 == 0 ? QB_TYPE_Q4_0 : -1;
        if (type < 0 || n > 4096) continue;
        float *x = malloc((size_t)n * sizeof *x);
        uint8_t *y = malloc((size_t)n * 2);
        if (!x || !y) abort();
        for (int64_t j = 0; j < n; j++) x[j] = (float)((j * 7919) % 257) - 128.f;
        if (!qb_kernels()->quant_row_w(type, x, y, n, w)) __builtin_trap();
        free(x);
        free(y);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_imatrix *im = NULL;
    if (qb_imatrix_load_memory(&ctx, "fuzz.imatrix", data, size, &im) != QB_OK) {
        if (im || !qb_ctx_errmsg(&ctx)[0] || strchr(qb_ctx_errmsg(&ctx), '\n')) __builtin_trap();
        return 0;
    }
    check_entries(im);
    check_importance(&ctx, im);
    if (im->legacy && qb_imatrix_save(&ctx, im, dat_path, QB_IMATRIX_DAT, NULL) == QB_OK) {
        FILE *f = fopen(dat_path, "rb");
        if (!f) abort();
        uint8_t *back = malloc(size + 1);
        size_t n = fread(back, 1, size + 1, f);
        fclose(f);
        if (n != size || memcmp(back, data, size)) __builtin_trap(); /* the .dat round trip */
        free(back);
    }
    if (qb_imatrix_save(&ctx, im, gguf_path, QB_IMATRIX_GGUF, NULL) == QB_OK) {
        qb_imatrix *g = NULL;
        if (qb_imatrix_load(&ctx, gguf_path, &g) != QB_OK || g->n_entries != im->n_entries) __builtin_trap();
        check_entries(g);
        qb_imatrix_free(g);
    }
    unlink(dat_path);
    unlink(gguf_path);
    qb_imatrix_free(im);
    return 0;
}
