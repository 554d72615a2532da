/* cmd_imatrix.c — `quantbench imatrix`: collect an importance matrix as llama-imatrix does and
 * write it in llama.cpp's format (.dat, or GGUF for a *.gguf name), or read one of either
 * format, summarise it, check it against a model and write it again (a conversion). */
#include "cli.h"
#include "core/calib/imatrix.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USAGE                                                                                                   \
    "imatrix: usage: quantbench imatrix MODEL TEXT -o FILE [--ctx N] [--chunks N] [--ubatch N] "               \
    "[--process-output]\n"                                                                                      \
    "                quantbench imatrix --in FILE [MODEL] [-o FILE] [--compare FILE [--tolerance R]] [--entries]"

typedef struct {
    const char *pos[2];
    int n_pos;
    const char *out, *in, *tok, *compare;
    long n_ctx, chunks, ubatch, threads;
    double tolerance; /* < 0: none */
    bool process_output, entries;
} imatrix_args;

static bool parse(int argc, char **argv, imatrix_args *a)
{
    memset(a, 0, sizeof *a);
    a->tolerance = -1;
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (!strcmp(o, "--ctx") || !strcmp(o, "-c")) ok = cli_int(o, v, 2, 1 << 20, &a->n_ctx), i++;
        else if (!strcmp(o, "--chunks")) ok = cli_int(o, v, 1, 1 << 30, &a->chunks), i++;
        else if (!strcmp(o, "--ubatch") || !strcmp(o, "-ub")) ok = cli_int(o, v, 1, 1 << 20, &a->ubatch), i++;
        else if (!strcmp(o, "-t") || !strcmp(o, "--threads")) ok = cli_int(o, v, 1, 1024, &a->threads), i++;
        else if (!strcmp(o, "-o") || !strcmp(o, "--output")) ok = (a->out = v) != NULL, i++;
        else if (!strcmp(o, "--in")) ok = (a->in = v) != NULL, i++;
        else if (!strcmp(o, "--compare")) ok = (a->compare = v) != NULL, i++;
        else if (!strcmp(o, "--tolerance")) ok = cli_float(o, v, 0, 1e30, &a->tolerance), i++;
        else if (!strcmp(o, "--tokenizer")) ok = (a->tok = v) != NULL, i++;
        else if (!strcmp(o, "--process-output")) a->process_output = true;
        else if (!strcmp(o, "--entries")) a->entries = true;
        else if (o[0] == '-' && o[1]) return !cli_error("imatrix: unknown option '%s'", o);
        else if (a->n_pos < 2) a->pos[a->n_pos++] = o;
        else return !cli_error("imatrix: unexpected argument '%s'", o);
        if (!ok) return v ? false : !cli_error("imatrix: %s needs a value", o);
    }
    if (a->in ? a->n_pos > 1 : a->n_pos != 2 || !a->out || a->compare) return !cli_error("%s", USAGE);
    if (a->tolerance >= 0 && !a->compare) return !cli_error("imatrix: --tolerance goes with --compare");
    return true;
}

/* Write im to path in the format its name asks for, saying what was left out. */
static bool save(qb_ctx *ctx, const qb_imatrix *im, const char *path)
{
    int skipped;
    qb_imatrix_format fmt = qb_imatrix_format_of(path);
    if (qb_imatrix_save(ctx, im, path, fmt, &skipped) != QB_OK) return !cli_error("%s", qb_ctx_errmsg(ctx));
    if (skipped)
        fprintf(stderr, "quantbench: %s: %d entr%s left out: experts that received no token cannot be written to a "
                "legacy .dat (llama-imatrix leaves them out too; a .gguf keeps them)\n",
                path, skipped, skipped == 1 ? "y" : "ies");
    printf("wrote %s (%s, %d entries)\n", path, fmt == QB_IMATRIX_GGUF ? "GGUF" : "legacy .dat",
           im->n_entries - skipped);
    return true;
}

static void summary(const qb_imatrix *im, bool entries, const double *rel)
{
    printf("imatrix    %s: %d entries, %d %s", im->path ? im->path : "collected", im->n_entries,
           (int)im->chunk_count, im->legacy ? "calls (c392e50's last_call)" : "chunks");
    if (im->chunk_size) printf(" of %d tokens", (int)im->chunk_size);
    if (im->path) printf(", %s", im->legacy ? "legacy .dat" : "GGUF");
    putchar('\n');
    for (int i = 0; i < im->n_datasets; i++) printf("dataset    %s\n", im->datasets[i]);
    if (!entries) return;
    printf("%-34s %11s %6s %12s %12s%s\n", "entry", "matrices", "ncall", "mean", "max", rel ? "     rel.diff" : "");
    for (int i = 0; i < im->n_entries; i++) {
        const qb_imatrix_entry *e = &im->entries[i];
        double sum = 0, mx = 0;
        size_t n = (size_t)e->n_cols * e->n_mat;
        for (size_t k = 0; k < n; k++) {
            sum += e->w[k];
            if (e->w[k] > mx) mx = e->w[k];
        }
        char shape[32];
        snprintf(shape, sizeof shape, "%dx%d", e->n_mat, e->n_cols);
        printf("%-34s %11s %6d %12.5g %12.5g", e->name, shape, (int)e->ncall, sum / (double)n, mx);
        if (rel && rel[i] >= 0) printf(" %12.3e", rel[i]);
        else if (rel) printf(" %12s", "-");
        putchar('\n');
    }
}

/* What --compare found; false (with a one-line error) when --tolerance is given and exceeded
 * or the entries differ in names, ncall or size. */
static bool report(const imatrix_args *a, const qb_imatrix_diff *d)
{
    printf("compare    %s: %d entries in both, %d only in %s, %d only in %s\n", a->compare, d->n_common, d->n_only_a,
           a->in, d->n_only_b, a->compare);
    if (d->n_only_a) printf("compare    first only in %s: %s\n", a->in, d->only_a);
    if (d->n_only_b) printf("compare    first only in %s: %s\n", a->compare, d->only_b);
    printf("compare    ncall differs in %d, size in %d", d->n_ncall_differ, d->n_size_differ);
    if (d->n_ncall_differ) printf(" (first: %s)", d->ncall_differs);
    if (d->n_size_differ) printf(" (%s)", d->size_differs);
    printf("\ncompare    max relative difference %.3e (%s, value %lld)\n", d->max_rel, d->worst,
           (long long)d->worst_index);
    if (a->tolerance < 0) return true;
    if (d->n_only_a || d->n_only_b || d->n_ncall_differ || d->n_size_differ)
        return !cli_error("%s and %s differ in their entries (names, ncall or sizes)", a->in, a->compare);
    if (d->max_rel > a->tolerance)
        return !cli_error("%s and %s differ by %.3e in %s (tolerance %.3e)", a->in, a->compare, d->max_rel, d->worst,
                          a->tolerance);
    return true;
}

/* quantbench imatrix --in FILE [MODEL] [-o FILE] [--compare FILE] */
static int read_mode(qb_ctx *ctx, const imatrix_args *a)
{
    qb_imatrix *im = NULL, *other = NULL;
    qb_model *m = NULL;
    qb_imatrix_diff d = {0};
    int rc = 1;
    if (qb_imatrix_load(ctx, a->in, &im) != QB_OK) {
        cli_error("%s", qb_ctx_errmsg(ctx));
        return 1;
    }
    if (a->n_pos == 1) {
        if (!(m = cli_open_model(ctx, a->pos[0], a->tok, false))) goto out;
        if (qb_imatrix_match(ctx, im, m) != QB_OK) {
            cli_error("%s", qb_ctx_errmsg(ctx));
            goto out;
        }
    }
    if (a->compare) {
        if (qb_imatrix_load(ctx, a->compare, &other) != QB_OK) {
            cli_error("%s", qb_ctx_errmsg(ctx));
            goto out;
        }
        if (m && qb_imatrix_match(ctx, other, m) != QB_OK) {
            cli_error("%s", qb_ctx_errmsg(ctx));
            goto out;
        }
        if (!qb_imatrix_compare(im, other, &d)) {
            cli_error("out of memory");
            goto out;
        }
    }
    summary(im, a->entries, a->compare ? d.entry_rel : NULL);
    if (m) printf("model      %s: every entry names one of its matrices with its width\n", m->path);
    if (a->compare && !report(a, &d)) goto out;
    if (a->out && !save(ctx, im, a->out)) goto out;
    rc = 0;
out:
    free(d.entry_rel);
    qb_imatrix_free(other);
    qb_imatrix_free(im);
    qb_model_close(m);
    return rc;
}

int cmd_imatrix(int argc, char **argv)
{
    imatrix_args a;
    if (!parse(argc, argv, &a)) return 1;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    if (a.threads) ctx.n_threads = (int)a.threads;
    if (a.in) return read_mode(&ctx, &a);
    qb_model *m = cli_open_model(&ctx, a.pos[0], a.tok, false);
    if (!m) return 1;
    cli_progress pr;
    cli_progress_start(&pr, "imatrix");
    cli_install_sigint();
    qb_imatrix_opts o = {.n_ctx = (int)a.n_ctx, .n_chunks = (int)a.chunks, .n_ubatch = (int)a.ubatch,
                         .process_output = a.process_output, .progress = cli_progress_cb, .ud = &pr,
                         .cancel = &cli_cancel};
    qb_imatrix *im = NULL;
    double t0 = cli_now();
    qb_status st = qb_imatrix_collect_file(&ctx, m, a.pos[1], &o, &im);
    cli_progress_end(&pr);
    int rc = 1;
    if (st != QB_OK) {
        cli_error("%s", qb_ctx_errmsg(&ctx));
        rc = st == QB_ERR_CANCELLED ? 130 : 1;
        goto out;
    }
    printf("model      %s\n", m->path);
    summary(im, a.entries, NULL);
    fprintf(stderr, "%.2f s\n", cli_now() - t0);
    if (save(&ctx, im, a.out)) rc = 0;
out:
    qb_imatrix_free(im);
    qb_model_close(m);
    return rc;
}
