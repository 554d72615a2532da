/* cmd_bench.c — `quantbench bench MODEL`: prompt-processing and generation tokens/s, measured
 * like llama-bench (pp: P tokens in one batch from an empty cache; tg: N tokens one at a
 * time), after a warm-up, repeated R times; prints mean ± standard deviation. */
#include "cli.h"
#include "cli_act.h"
#include "core/infer/infer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static void report(const char *model, const char *test, int threads, const double *tps, int reps, bool csv)
{
    double mean = 0, var = 0;
    for (int i = 0; i < reps; i++) mean += tps[i];
    mean /= reps;
    for (int i = 0; i < reps; i++) var += (tps[i] - mean) * (tps[i] - mean);
    double sd = reps > 1 ? sqrt(var / (reps - 1)) : 0;
    if (csv) printf("%s,%s,%d,%.2f,%.2f\n", model, test, threads, mean, sd);
    else printf("| %-40s | %6s | %7d | %10.2f ± %-8.2f |\n", model, test, threads, mean, sd);
}

int cmd_bench(int argc, char **argv)
{
    const char *path = NULL, *tok = NULL;
    long p = 128, n = 64, threads = 0, reps = 5;
    bool csv = false, no_mmap = false;
    cli_act act;
    cli_act_init(&act);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        int r = cli_act_option(&act, "bench", argc, argv, &i);
        if (r) {
            if (r < 0) return 1;
            continue;
        }
        if (!strcmp(a, "-p")) ok = cli_int(a, v, 0, 1 << 16, &p), i++;
        else if (!strcmp(a, "-n")) ok = cli_int(a, v, 0, 1 << 16, &n), i++;
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) ok = cli_int(a, v, 1, 1024, &threads), i++;
        else if (!strcmp(a, "-r")) ok = cli_int(a, v, 1, 1000, &reps), i++;
        else if (!strcmp(a, "--csv")) csv = true;
        else if (!strcmp(a, "--no-mmap")) no_mmap = true;
        else if (!strcmp(a, "--tokenizer")) tok = v, i++, ok = v != NULL;
        else if (a[0] == '-') return cli_error("bench: unknown option '%s'", a);
        else if (!path) path = a;
        else return cli_error("bench: unexpected argument '%s'", a);
        if (!ok) return 1;
    }
    if (!path) return cli_error("bench: usage: quantbench bench MODEL [-p N] [-n N] [-t THREADS] [-r REPS] [--csv] [--no-mmap]");
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    if (threads) ctx.n_threads = (int)threads;
    qb_model *m = cli_open_model(&ctx, path, tok, no_mmap);
    if (!m) return 1;
    if (!cli_act_apply(&ctx, m, &act)) {
        qb_model_close(m);
        return 1;
    }
    int n_ctx = (int)(p > n ? p : n);
    if (n_ctx < 1) n_ctx = 1;
    qb_infer *s = NULL;
    int32_t *toks = malloc((size_t)n_ctx * sizeof *toks);
    float *logits = malloc((size_t)m->cfg.vocab_size * sizeof(float));
    double *tps = malloc((size_t)reps * sizeof(double));
    int rc = 1;
    if (!toks || !logits || !tps || qb_infer_new_run(&ctx, m, act.run, n_ctx, n_ctx, &s) != QB_OK) {
        cli_error("bench: %s", qb_ctx_errmsg(&ctx));
        goto out;
    }
    uint64_t r = 12345;
    for (int i = 0; i < n_ctx; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        toks[i] = (int32_t)((r >> 33) % (uint64_t)m->cfg.vocab_size);
    }
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    int nthr = threads ? (int)threads : 0;
#ifdef _OPENMP
    if (!nthr) nthr = ctx.n_threads ? ctx.n_threads : omp_get_max_threads();
#endif
    if (!csv) {
        printf("| %-40s | %6s | %7s | %21s |\n", "model", "test", "threads", "t/s");
        printf("| %.40s | ------ | ------- | --------------------- |\n", "----------------------------------------");
    }
    char label[32];
    if (p > 0) {
        qb_infer_eval(&ctx, s, toks, (int)p, 0, logits, 1); /* warm-up */
        for (int k = 0; k < reps; k++) {
            double t0 = cli_now();
            qb_infer_eval(&ctx, s, toks, (int)p, 0, logits, 1);
            tps[k] = p / (cli_now() - t0);
        }
        snprintf(label, sizeof label, "pp%ld", p);
        report(name, label, nthr, tps, (int)reps, csv);
    }
    if (n > 0) {
        qb_infer_eval(&ctx, s, toks, 1, 0, logits, 1); /* warm-up */
        for (int k = 0; k < reps; k++) {
            double t0 = cli_now();
            for (int i = 0; i < n; i++) qb_infer_eval(&ctx, s, &toks[i], 1, i, logits, 1);
            tps[k] = n / (cli_now() - t0);
        }
        snprintf(label, sizeof label, "tg%ld", n);
        report(name, label, nthr, tps, (int)reps, csv);
    }
    rc = 0;
out:
    qb_infer_free(s);
    free(toks);
    free(logits);
    free(tps);
    cli_act_free(&act);
    qb_model_close(m);
    return rc;
}
