/* bench_stats_weighted.c — what the importance-weighted view costs the analysis
 * (qb_quant_analyze, core/quant/stats.h): a ROWS × 512 Gaussian matrix (ROWS 8192: the shape
 * of qb-docs-26m's output.weight, the workbench benchmark's tensor; 512: its preview) with a
 * log-uniform importance, per format three ways, best of REPS each, interleaved: plain; with
 * the importance (weighted statistics and error histogram, the same quantization); and
 * quantized with the importance too (quantize_weighted, what the workbench does with an
 * imatrix, as an apply does). THREADS as the workbench gives its full analysis (2) or its
 * preview (1). Build and run from the project root (after make):
 *     cc -std=c11 -D_GNU_SOURCE -O2 -fopenmp -Isrc -Ikernels tests/bench/bench_stats_weighted.c \
 *        build/libqb.a -fopenmp -ljansson -lpcre2-8 -lunistring -lcairo -lm -lpthread -o build/bench_stats_weighted
 *     build/bench_stats_weighted [ROWS [THREADS [REPS]]]     (defaults 8192 2 9) */
#include "core/qb.h"
#include "core/quant/stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double uni(uint64_t *s) /* splitmix64, (0, 1) */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return ((double)((z ^ (z >> 31)) >> 11) + 0.5) / 9007199254740992.0;
}

int main(int argc, char **argv)
{
    const int64_t rows = argc > 1 ? atoll(argv[1]) : 8192, n = 512;
    const int threads = argc > 2 ? atoi(argv[2]) : 2, reps = argc > 3 ? atoi(argv[3]) : 9;
    if (rows < 1 || threads < 1 || reps < 1) {
        fprintf(stderr, "usage: bench_stats_weighted [ROWS [THREADS [REPS]]]\n");
        return 2;
    }
    float *x = malloc((size_t)(rows * n) * sizeof *x), *w = malloc((size_t)n * sizeof *w);
    if (!x || !w) return 1;
    uint64_t s = 1;
    for (int64_t i = 0; i < rows * n; i++) x[i] = (float)(0.02 * sqrt(-2 * log(uni(&s))) * cos(6.283185307179586 * uni(&s)));
    for (int64_t j = 0; j < n; j++) w[j] = (float)exp(6.0 * uni(&s)); /* 1 .. 400 */
    static const char *formats[] = {"q4_k", "q6_k", "q3_k", "q4_0", "q5_1", "iq4_xs", "int4-channel", "int4-g128-asym"};
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    ctx.n_threads = threads;
    qb_analysis_scratch sc = {0};
    printf("analysis of %lld x %lld, %d thread(s), best of %d: ms\n", (long long)rows, (long long)n, threads, reps);
    printf("%-16s %8s %10s %10s %12s %10s\n", "format", "plain", "+weighted", "(x plain)", "+quant w.", "(x plain)");
    for (size_t k = 0; k < sizeof formats / sizeof formats[0]; k++) {
        qb_format f;
        if (qb_format_parse(&ctx, formats[k], &f) != QB_OK) return 1;
        double best[3] = {INFINITY, INFINITY, INFINITY};
        for (int r = 0; r < reps; r++)
            for (int m = 0; m < 3; m++) {
                qb_analysis_opts o = {.bins = 220, .auto_range = true, .map_points = 4096, .scratch = &sc,
                                      .importance = m ? w : NULL, .quantize_weighted = m == 2};
                qb_analysis a;
                const double t0 = now();
                if (qb_quant_analyze(&ctx, &f, x, rows, n, &o, &a) != QB_OK) {
                    fprintf(stderr, "%s: %s\n", formats[k], qb_ctx_errmsg(&ctx));
                    return 1;
                }
                const double t = now() - t0;
                if (t < best[m]) best[m] = t;
                qb_analysis_free(&a);
            }
        printf("%-16s %8.1f %10.1f %9.2fx %12.1f %9.2fx\n", formats[k], 1e3 * best[0], 1e3 * best[1], best[1] / best[0],
               1e3 * best[2], best[2] / best[0]);
    }
    qb_analysis_scratch_free(&sc);
    free(x);
    free(w);
    return 0;
}
