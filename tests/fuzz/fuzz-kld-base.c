/* fuzz-kld-base.c — libFuzzer target for the KL-divergence base file reader
 * (qb_kld_base_open_memory: llama-perplexity's --kl-divergence-base layout) and, for inputs it
 * accepts, what trusts its result: every row read and compared with logits made from the
 * row's own bytes (llama-perplexity's per-position statistics, its quantiles), the rows
 * re-encoded from the decoded log-probabilities, and a write and re-read that must give the
 * input back byte for byte. Built and run by scripts/fuzz.sh. */
#include "core/eval/kld_base.h"
#include "core/eval/kld_base_stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_tmpdir.h"

static const char *out_path;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_tmpdir_make("kld-base");
    out_path = fuzz_tmpdir_file(0, "out.kld");
    return 0;
}

/* Compare at most 4096 rows with logits derived from each row (bounded work per input). */
static void compare_rows(const qb_kld_base *b)
{
    long n_rows = (long)b->n_chunk * b->rows;
    if (n_rows > 4096 || (long)b->n_vocab * n_rows > (1L << 22)) return;
    float *logits = malloc((size_t)b->n_vocab * sizeof *logits);
    float *klds = malloc((size_t)n_rows * sizeof *klds), *dps = malloc((size_t)n_rows * sizeof *dps);
    uint16_t *enc = malloc((size_t)b->nv * sizeof *enc);
    if (!logits || !klds || !dps || !enc) abort();
    qb_kldb_sums s = {0};
    for (int c = 0; c < b->n_chunk; c++)
        for (int r = 0; r < b->rows; r++) {
            const uint16_t *row = qb_kld_base_row(b, c, r);
            float scale, mn;
            memcpy(&scale, row, 4);
            memcpy(&mn, row + 2, 4);
            for (int i = 0; i < b->n_vocab; i++) logits[i] = scale * row[4 + i] + mn;
            int tok = b->tokens[(long)c * b->n_ctx + b->n_ctx / 2 + r + 1];
            long at = (long)c * b->rows + r;
            qb_kldb_row(logits, b->n_vocab, row, tok, &s, &klds[at], &dps[at]);
            qb_kld_base_encode_row(logits, b->n_vocab, enc, tok);
        }
    qb_kld_stats st;
    memset(&st, 0, sizeof st);
    qb_kldb_finish(&s, klds, dps, &st);
    if (st.n_scored != n_rows) __builtin_trap();
    free(logits);
    free(klds);
    free(dps);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_kld_base *b = NULL;
    if (qb_kld_base_open_memory(&ctx, "fuzz.kld", data, size, &b) != QB_OK) {
        if (b || !qb_ctx_errmsg(&ctx)[0] || strchr(qb_ctx_errmsg(&ctx), '\n')) __builtin_trap();
        return 0;
    }
    if (b->size != size || b->rows != b->n_ctx - 1 - b->n_ctx / 2) __builtin_trap();
    compare_rows(b);
    if (qb_kld_base_write(&ctx, b, out_path) == QB_OK) {
        FILE *f = fopen(out_path, "rb");
        if (!f) abort();
        uint8_t *back = malloc(size + 1);
        size_t n = fread(back, 1, size + 1, f);
        fclose(f);
        if (n != size || memcmp(back, data, size)) __builtin_trap(); /* the byte-identical round trip */
        free(back);
        unlink(out_path);
    }
    qb_kld_base_close(b);
    return 0;
}
