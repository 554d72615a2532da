/* bench_fmt_model.c — prompt-processing and generation tokens/s of a model whose layer
 * matrices (blk.*) are quantized in memory to each given format: the way to time formats
 * that GGUF cannot hold (INT-N, NF4, FP8, MXFP4), which `quantbench bench` (files only) and
 * llama-bench cannot run. Measured like `quantbench bench`: pp = P random tokens in one batch
 * from an empty cache, tg = N tokens one at a time; one warm-up, then the mean of R runs.
 * Token embeddings and the output matrix keep their stored type (F16 for the benchmark
 * models), so compare formats with each other, not with a fully quantized GGUF.
 *
 *   bench_fmt_model MODEL FORMAT... [-p 128] [-n 64] [-t 2] [-r 3]
 * prints one CSV line per format: format,bpw,pp t/s,tg t/s ("-" when P or N is 0).
 * Exit status 1 when the model or a format fails (with a message on stderr). */
#include "core/qb.h"
#include "core/model/model.h"
#include "core/quant/format.h"
#include "core/quant/plan.h"
#include "core/quant/apply.h"
#include "core/infer/infer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    const char *path = NULL, *fmts[64];
    int nf = 0, P = 128, N = 64, threads = 2, reps = 3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 < argc && (!strcmp(a, "-p") || !strcmp(a, "-n") || !strcmp(a, "-t") || !strcmp(a, "-r"))) {
            const int v = atoi(argv[++i]);
            if (a[1] == 'p') P = v;
            else if (a[1] == 'n') N = v;
            else if (a[1] == 't') threads = v;
            else reps = v > 0 ? v : 1;
        } else if (!path) {
            path = a;
        } else if (nf < 64) {
            fmts[nf++] = a;
        }
    }
    if (!path || !nf) {
        fprintf(stderr, "usage: bench_fmt_model MODEL FORMAT... [-p 128] [-n 64] [-t 2] [-r 3]\n");
        return 2;
    }
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    ctx.n_threads = threads;
    qb_model *m = NULL;
    if (qb_model_open(&ctx, path, NULL, &m) != QB_OK) {
        fprintf(stderr, "bench_fmt_model: %s: %s\n", path, qb_ctx_errmsg(&ctx));
        return 1;
    }
    const int n_ctx = P > N ? P : N > 0 ? N : 1;
    int32_t *toks = malloc((size_t)n_ctx * sizeof *toks);
    float *logits = malloc((size_t)m->cfg.vocab_size * sizeof *logits);
    uint64_t r = 12345;
    for (int i = 0; i < n_ctx; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        toks[i] = (int32_t)((r >> 33) % (uint64_t)m->cfg.vocab_size);
    }
    int rc = 0;
    for (int k = 0; k < nf; k++) {
        qb_plan p;
        qb_format f;
        qb_plan_init(&p);
        if (qb_format_parse(&ctx, fmts[k], &f) != QB_OK || qb_plan_add(&ctx, &p, "blk.*", &f) != QB_OK ||
            qb_plan_apply_rtn(&ctx, m, &p, NULL) != QB_OK) {
            fprintf(stderr, "bench_fmt_model: %s: %s\n", fmts[k], qb_ctx_errmsg(&ctx));
            qb_plan_free(&p);
            rc = 1;
            continue;
        }
        qb_plan_free(&p);
        qb_infer *s = NULL;
        if (qb_infer_new(&ctx, m, n_ctx, n_ctx, &s) != QB_OK) {
            fprintf(stderr, "bench_fmt_model: %s\n", qb_ctx_errmsg(&ctx));
            rc = 1;
            break;
        }
        double pp = 0, tg = 0;
        if (P > 0) {
            qb_infer_eval(&ctx, s, toks, P, 0, logits, 1);
            for (int i = 0; i < reps; i++) {
                const double t0 = now();
                qb_infer_eval(&ctx, s, toks, P, 0, logits, 1);
                pp += P / (now() - t0) / reps;
            }
        }
        if (N > 0) {
            qb_infer_eval(&ctx, s, toks, 1, 0, logits, 1);
            for (int i = 0; i < reps; i++) {
                const double t0 = now();
                for (int j = 0; j < N; j++) qb_infer_eval(&ctx, s, &toks[j], 1, j, logits, 1);
                tg += N / (now() - t0) / reps;
            }
        }
        qb_infer_free(s);
        char pps[32] = "-", tgs[32] = "-";
        if (P > 0) snprintf(pps, sizeof pps, "%.1f", pp);
        if (N > 0) snprintf(tgs, sizeof tgs, "%.1f", tg);
        printf("%s,%.3f,%s,%s\n", fmts[k], qb_format_bpw(&f, m->cfg.dim), pps, tgs);
        fflush(stdout);
    }
    free(toks);
    free(logits);
    qb_model_close(m);
    return rc;
}
