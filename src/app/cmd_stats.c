/* cmd_stats.c — `quantbench stats MODEL FORMAT`: the workbench's error statistics of every
 * weight matrix (or those a glob names) quantized to FORMAT, one line per tensor (MSE, SQNR,
 * max error, bits per weight); with --imatrix FILE the importance-weighted statistics beside
 * them (core/quant/stats.h: the squared error weighted by each column's importance, what
 * llama.cpp's quantizers minimise with an imatrix), the tensors quantized with their
 * importance as llama-quantize --imatrix does (--plain-quant: without). */
#include "cli.h"

#include "core/calib/imatrix.h"
#include "core/quant/apply.h"
#include "core/quant/stats.h"

#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USAGE                                                                                                          \
    "stats: usage: quantbench stats MODEL FORMAT [--tensor GLOB] [--imatrix FILE] [--plain-quant] [-t N]   "      \
    "(FORMAT: q4_k, int4-g128, nf4, ...; ggml types that do not fit a row fall back as llama-quantize does)"

static void print_db(double db)
{
    if (isinf(db)) printf(" %9s", "exact");
    else printf(" %9.2f", db);
}

/* One tensor's line; false (message on ctx) when the analysis failed. */
static bool one(qb_ctx *ctx, const qb_tensor *t, const qb_format *want, const qb_importance *imp, int n_experts,
                bool plain_quant, int *n_weighted)
{
    const int64_t rows = qb_tensor_rows(t), n = t->ne[0];
    const qb_format f = qb_format_fallback(want, n);
    char fname[64], shape[48];
    qb_format_name(&f, fname, sizeof fname);
    snprintf(shape, sizeof shape, "%lldx%lld", (long long)rows, (long long)n);
    if (qb_format_check(ctx, &f, n) != QB_OK) {
        printf("%-32s %-12s %-14s  (%s)\n", t->name, shape, fname, qb_ctx_errmsg(ctx));
        return true;
    }
    qb_analysis_opts o = {.bins = 16, .auto_range = true, .cancel = &cli_cancel, .quantize_weighted = !plain_quant};
    if (imp && qb_importance_lookup(ctx, imp, t->name, n, 1, n_experts, &o.importance, NULL) != QB_OK) return false;
    float *x = malloc((size_t)(rows * n) * sizeof *x);
    if (!x) {
        qb_fail(ctx, QB_ERR_NOMEM, "out of memory reading %s", t->name);
        return false;
    }
    qb_tensor_source_rows(t, 0, rows, x);
    qb_analysis a;
    qb_status st = qb_quant_analyze(ctx, &f, x, rows, n, &o, &a);
    free(x);
    if (st != QB_OK) return false;
    const qb_error_stats *e = &a.stats;
    printf("%-32s %-12s %-14s %6.3f %11.4e", t->name, shape, fname, e->bpw, e->mse);
    print_db(e->sqnr_db);
    printf(" %10.4g", e->max_abs_err);
    if (imp && a.weighted) {
        printf(" %11.4e", a.wstats.mse);
        print_db(a.wstats.sqnr_db);
        printf(" %10.4g", a.wstats.max_abs_err);
        (*n_weighted)++;
    } else if (imp) {
        printf(" %11s %9s %10s", "-", "-", "-"); /* no entry: llama-quantize quantizes it without */
    }
    printf("\n");
    qb_analysis_free(&a);
    return true;
}

int cmd_stats(int argc, char **argv)
{
    const char *pos[2] = {0}, *glob = NULL, *imx = NULL, *tok = NULL;
    int n_pos = 0;
    long threads = 0;
    bool plain_quant = false;
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (!strcmp(o, "--tensor")) ok = (glob = v) != NULL, i++;
        else if (!strcmp(o, "--imatrix")) ok = (imx = v) != NULL, i++;
        else if (!strcmp(o, "--plain-quant")) plain_quant = true;
        else if (!strcmp(o, "-t") || !strcmp(o, "--threads")) ok = cli_int(o, v, 1, 1024, &threads), i++;
        else if (!strcmp(o, "--tokenizer")) ok = (tok = v) != NULL, i++;
        else if (o[0] == '-' && o[1]) return cli_error("stats: unknown option '%s'", o);
        else if (n_pos < 2) pos[n_pos++] = o;
        else return cli_error("stats: unexpected argument '%s'", o);
        if (!ok) return v ? 1 : cli_error("stats: %s needs a value", o);
    }
    if (n_pos != 2) return cli_error(USAGE);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    if (threads) ctx.n_threads = (int)threads;
    qb_format fmt;
    if (qb_format_parse(&ctx, pos[1], &fmt) != QB_OK) return cli_error("stats: %s", qb_ctx_errmsg(&ctx));
    qb_model *m = cli_open_model(&ctx, pos[0], tok, false);
    if (!m) return 1;
    int rc = 1;
    qb_imatrix *im = NULL;
    qb_importance imp;
    if (imx && (qb_imatrix_load(&ctx, imx, &im) != QB_OK || qb_imatrix_match(&ctx, im, m) != QB_OK ||
                qb_imatrix_importance(&ctx, im, &imp) != QB_OK)) {
        cli_error("%s", qb_ctx_errmsg(&ctx));
        goto out;
    }
    cli_install_sigint();
    printf("model    %s\nformat   %s%s\n", m->path, pos[1], imx ? "" : " (no importance: plain statistics)");
    if (imx)
        printf("imatrix  %s: weighted columns are w_j·e² / (rows·Σw) (wMSE), Σw·e² / Σw·x² (wSQNR), max sqrt(w_j/w̄)|e|; "
               "%s\n",
               imx, plain_quant ? "quantized without importance (--plain-quant)" : "quantized with importance, as llama-quantize --imatrix");
    printf("%-32s %-12s %-14s %6s %11s %9s %10s", "tensor", "rows x cols", "format", "bpw", "MSE", "SQNR dB", "max err");
    if (imx) printf(" %11s %9s %10s", "wMSE", "wSQNR dB", "w max err");
    printf("\n");
    int shown = 0, weighted = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const qb_tensor *t = &m->tensors[i];
        if (!qb_tensor_quantizable(t) || (glob && fnmatch(glob, t->name, 0) != 0)) continue;
        if (!one(&ctx, t, &fmt, im ? &imp : NULL, m->cfg.n_experts, plain_quant, &weighted)) {
            cli_error("stats: %s: %s", t->name, qb_ctx_errmsg(&ctx));
            rc = cli_cancel ? 130 : 1;
            goto out;
        }
        shown++;
    }
    if (!shown) {
        cli_error("stats: no weight matrix of %s matches '%s'", m->path, glob ? glob : "*");
        goto out;
    }
    if (imx) printf("%d of %d tensors weighted (the others have no entry in %s)\n", weighted, shown, imx);
    rc = 0;
out:
    qb_imatrix_free(im);
    qb_model_close(m);
    return rc;
}
