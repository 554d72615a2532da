/* ctx.c — the error-carrying context and thread-count plumbing shared by all of core. */
#include "qb.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#include <unistd.h>
#endif

void qb_ctx_init(qb_ctx *ctx)
{
    memset(ctx, 0, sizeof *ctx);
    const char *s = getenv("QB_THREADS");
    if (!s || !*s) s = getenv("OMP_NUM_THREADS");
    if (s && *s) {
        int n = atoi(s);
        if (n > 0 && n <= 1024) ctx->n_threads = n;
    }
}

const char *qb_ctx_errmsg(const qb_ctx *ctx)
{
    return ctx->errmsg[0] ? ctx->errmsg : "no error";
}

qb_status qb_fail(qb_ctx *ctx, qb_status st, const char *fmt, ...)
{
    if (!ctx) return st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->errmsg, sizeof ctx->errmsg, fmt, ap);
    va_end(ap);
    /* one line, whatever a file put into the names it quotes: control bytes become '?' */
    for (char *p = ctx->errmsg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    return st;
}

const char *qb_status_name(qb_status st)
{
    switch (st) {
    case QB_OK: return "ok";
    case QB_ERR_IO: return "i/o error";
    case QB_ERR_FORMAT: return "format error";
    case QB_ERR_UNSUPPORTED: return "unsupported";
    case QB_ERR_ARG: return "invalid argument";
    case QB_ERR_NOMEM: return "out of memory";
    case QB_ERR_CANCELLED: return "cancelled";
    }
    return "unknown status";
}

void qb_ctx_apply_threads(const qb_ctx *ctx)
{
#ifdef _OPENMP
    if (ctx && ctx->n_threads > 0) omp_set_num_threads(ctx->n_threads);
#else
    (void)ctx;
#endif
}

bool qb_work_is_small(size_t tokens, int dim, int hidden)
{
    return tokens * (size_t)dim * (size_t)(dim + hidden) < ((size_t)1 << 24);
}

int qb_ctx_one_thread(const qb_ctx *ctx, qb_ctx *one)
{
    *one = *ctx;
    one->n_threads = 1;
#ifdef _OPENMP
    const int saved = omp_get_max_threads();
#else
    const int saved = 1;
#endif
    qb_ctx_apply_threads(one);
    return saved;
}

void qb_threads_restore(int saved)
{
#ifdef _OPENMP
    omp_set_num_threads(saved);
#else
    (void)saved;
#endif
}

double qb_physical_memory(void)
{
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (double)pages * (double)page : 0;
}
