/* bench_quant.c — how long quantize + full analysis (what one TUI redraw of the plots needs)
 * takes for every RTN and block format on one real tensor: by default qb-docs-26m's
 * blk.0.ffn_down.weight (512 rows of 1536, F16 in the GGUF, converted to f32 once), with 64
 * histogram bins and 512 mapping points, 2 threads, median of 5 runs after one warm-up.
 * The target is < 100 ms per format; the exit status is 1 when some format misses it.
 *
 *   bench_quant [--model FILE.gguf] [--tensor NAME] [--threads T] [--reps R] [--limit-ms M]
 *               [--formats a,b,c]
 *
 * Build (from the project root, after make):
 *   cc -std=c11 -D_GNU_SOURCE -O2 -fopenmp -Isrc -Ikernels tests/bench/bench_quant.c \
 *      build/libqb.a $(pkg-config --libs cairo jansson libpcre2-8 lua5.4 ncursesw readline) -lm -lpthread
 * The model folder is $QB_MODELS (default ../shared/models). */
#include "core/util/gguf.h"
#include "core/qb.h"
#include "core/quant/stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The tensor as f32 rows (caller frees), or NULL with a message printed. */
static float *load_tensor(const char *path, const char *name, int64_t *rows, int64_t *n)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_gguf *g;
    if (qb_gguf_open(&ctx, path, &g) != QB_OK) {
        fprintf(stderr, "bench_quant: %s\n", qb_ctx_errmsg(&ctx));
        return NULL;
    }
    const qb_gguf_tensor *t = qb_gguf_find_tensor(g, name);
    float *x = NULL;
    if (!t || (t->type != QB_TYPE_F16 && t->type != QB_TYPE_F32)) {
        fprintf(stderr, "bench_quant: %s: no F16/F32 tensor '%s'\n", path, name);
    } else {
        *n = t->ne[0];
        *rows = t->ne[1] * t->ne[2] * t->ne[3];
        x = malloc((size_t)(*rows * *n) * sizeof *x);
        const uint8_t *p = t->data;
        for (int64_t i = 0; x && i < *rows * *n; i++) {
            if (t->type == QB_TYPE_F16) x[i] = qb_f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
            else memcpy(&x[i], p + 4 * i, 4);
        }
    }
    qb_gguf_close(g);
    return x;
}

/* Every RTN format (bits 2..8 × tensor/channel/g32..g256 × sym/asym) and every block format,
 * as names, into names (caller frees each and the array). */
static int default_formats(char ***out)
{
    static const char *blocks[] = {"q8_0", "q6_k", "q5_k", "q5_1", "q5_0", "q4_k", "q4_1", "q4_0", "iq4_xs", "iq4_nl",
                                   "q3_k", "q2_k", "nf4", "nf4-dq", "mxfp4", "fp8-e4m3", "fp8-e4m3-channel",
                                   "fp8-e5m2", "fp8-e5m2-channel"};
    static const char *grans[] = {"tensor", "channel", "g256", "g128", "g64", "g32"};
    const int nb = (int)(sizeof blocks / sizeof blocks[0]);
    char **names = malloc((size_t)(nb + 7 * 6 * 2) * sizeof *names);
    int k = 0;
    for (int i = 0; i < nb; i++) names[k++] = strdup(blocks[i]);
    for (int bits = 8; bits >= 2; bits--)
        for (int g = 0; g < 6; g++)
            for (int asym = 0; asym < 2; asym++) {
                char buf[40];
                snprintf(buf, sizeof buf, "int%d-%s%s", bits, grans[g], asym ? "-asym" : "");
                names[k++] = strdup(buf);
            }
    *out = names;
    return k;
}

static int split_formats(const char *list, char ***out)
{
    int cap = 8, k = 0;
    char **names = malloc((size_t)cap * sizeof *names);
    char *copy = strdup(list), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (k == cap) names = realloc(names, (size_t)(cap *= 2) * sizeof *names);
        names[k++] = strdup(tok);
    }
    free(copy);
    *out = names;
    return k;
}

int main(int argc, char **argv)
{
    const char *models = getenv("QB_MODELS");
    char model[1024];
    snprintf(model, sizeof model, "%s/qb-docs-26m/qb-docs-26m-f16.gguf", models && *models ? models : "../shared/models");
    const char *tensor = "blk.0.ffn_down.weight", *formats = NULL;
    int threads = 2, reps = 5;
    double limit = 100.0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "usage: bench_quant [--model F] [--tensor N] [--threads T] [--reps R] [--limit-ms M] [--formats a,b]\n");
            return 2;
        }
        if (!strcmp(a, "--model")) snprintf(model, sizeof model, "%s", v);
        else if (!strcmp(a, "--tensor")) tensor = v;
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--reps")) reps = atoi(v);
        else if (!strcmp(a, "--limit-ms")) limit = atof(v);
        else if (!strcmp(a, "--formats")) formats = v;
        else {
            fprintf(stderr, "bench_quant: unknown option %s\n", a);
            return 2;
        }
        i++;
    }
    if (threads < 1 || reps < 1) {
        fprintf(stderr, "bench_quant: --threads and --reps must be positive\n");
        return 2;
    }
    int64_t rows = 0, n = 0;
    float *x = load_tensor(model, tensor, &rows, &n);
    if (!x) return 2;
    char **names;
    const int nf = formats ? split_formats(formats, &names) : default_formats(&names);

    qb_ctx ctx;
    qb_ctx_init(&ctx);
    ctx.n_threads = threads;
    const qb_analysis_opts opts = {.bins = 64, .auto_range = true, .map_points = 512};
    double *t = malloc((size_t)reps * sizeof *t);
    printf("tensor %s (%lld rows x %lld), %d threads, median of %d runs, quantize + analysis (64 bins, 512 map points)\n",
           tensor, (long long)rows, (long long)n, threads, reps);
    printf("%-20s %8s %8s %9s %9s\n", "format", "bpw", "ms", "SQNR dB", "status");
    int slow = 0, failed = 0;
    for (int k = 0; k < nf; k++) {
        qb_format f;
        qb_analysis a;
        if (qb_format_parse(&ctx, names[k], &f) != QB_OK ||
            qb_quant_analyze(&ctx, &f, x, rows, n, &opts, &a) != QB_OK) { /* also the warm-up */
            printf("%-20s %s\n", names[k], qb_ctx_errmsg(&ctx));
            failed++;
            continue;
        }
        const double sqnr = a.stats.sqnr_db, bpw = a.stats.bpw;
        qb_analysis_free(&a);
        for (int r = 0; r < reps; r++) {
            double t0 = now_ms();
            qb_status st = qb_quant_analyze(&ctx, &f, x, rows, n, &opts, &a);
            t[r] = now_ms() - t0;
            if (st == QB_OK) qb_analysis_free(&a);
        }
        qsort(t, (size_t)reps, sizeof *t, cmp_double);
        const double med = t[reps / 2];
        slow += med >= limit;
        printf("%-20s %8.4f %8.1f %9.2f %9s\n", names[k], bpw, med, sqnr, med < limit ? "ok" : "SLOW");
    }
    printf("%d formats, %d at or over %.0f ms, %d failed\n", nf, slow, limit, failed);
    for (int k = 0; k < nf; k++) free(names[k]);
    free(names);
    free(t);
    free(x);
    return slow || failed ? 1 : 0;
}
