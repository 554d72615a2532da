/* cli.c — helpers shared by the subcommands: errors, option values, model opening, the
 * stderr progress bar and Ctrl-C handling. */
#include "cli.h"
#include "core/util/dist.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

volatile int cli_cancel;
/* the last message cli_error printed: what a rank reports to rank 0 when it fails alone */
char cli_last_error[512];

int cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cli_last_error, sizeof cli_last_error, fmt, ap);
    va_end(ap);
    fprintf(stderr, "quantbench: %s\n", cli_last_error);
    return 1;
}

qb_model *cli_open_model(qb_ctx *ctx, const char *path, const char *tokenizer_path, bool no_mmap)
{
    qb_model_opts o = {.tokenizer_path = tokenizer_path, .no_mmap = no_mmap};
    qb_model *m = NULL;
    qb_status st = qb_model_open(ctx, path, &o, &m);
    /* in a job of several ranks every rank must map the same model (a no-op otherwise) */
    if ((st = qb_dist_same_file(ctx, st, path)) != QB_OK) {
        cli_error("%s", qb_ctx_errmsg(ctx));
        qb_model_close(m);
        return NULL;
    }
    return m;
}

bool cli_int(const char *opt, const char *val, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = val ? strtol(val, &end, 10) : 0;
    if (!val || errno || *end || end == val || v < lo || v > hi) {
        cli_error("%s expects an integer in [%ld, %ld], got '%s'", opt, lo, hi, val ? val : "(nothing)");
        return false;
    }
    *out = v;
    return true;
}

bool cli_float(const char *opt, const char *val, double lo, double hi, double *out)
{
    char *end;
    double v = val ? strtod(val, &end) : 0;
    if (!val || *end || end == val || !(v >= lo && v <= hi)) {
        cli_error("%s expects a number in [%g, %g], got '%s'", opt, lo, hi, val ? val : "(nothing)");
        return false;
    }
    *out = v;
    return true;
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void cli_progress_start(cli_progress *p, const char *label)
{
    p->label = label;
    p->t0 = cli_now();
    p->tty = isatty(STDERR_FILENO);
    p->items = NULL;
}

void cli_progress_cb(void *ud, int done, int total)
{
    cli_progress *p = ud;
    if (!p->tty || total <= 0) return;
    int width = 30, fill = (int)((long)width * done / total);
    double el = cli_now() - p->t0, eta = done > 0 ? el * (total - done) / done : 0;
    fprintf(stderr, "\r%s [", p->label);
    for (int i = 0; i < width; i++) fputs(i < fill ? "#" : "-", stderr);
    fprintf(stderr, "] %d/%d  %.1fs  ETA %.1fs ", done, total, el, eta);
    fflush(stderr);
}

void cli_progress_end(cli_progress *p)
{
    if (p->tty) fputs("\r\033[K", stderr);
}

static void on_sigint(int sig)
{
    (void)sig;
    if (cli_cancel) {
        signal(SIGINT, SIG_DFL);
        raise(SIGINT);
    }
    cli_cancel = 1;
}

void cli_install_sigint(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
}
