/* qb.h — the few things every part of libqb shares: status codes, the context that carries
 * the last error message and the thread count, and (from kernels/qb_types.h, the one header
 * kernels and core share, so the arrow points from core down to the kernels) the tensor
 * storage types and the format descriptor.
 *
 * Conventions: public functions return qb_status and deliver results through out-parameters;
 * on failure the one-line message naming the file and the problem is kept on the context
 * (qb_ctx_errmsg). Core never prints and never exits. */
#ifndef QB_H
#define QB_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "qb_types.h"

typedef enum {
    QB_OK = 0,
    QB_ERR_IO,          /* could not open / read / write / map a file */
    QB_ERR_FORMAT,      /* the bytes do not follow the format (truncated, bad magic, bad offsets) */
    QB_ERR_UNSUPPORTED, /* well-formed but not something we handle (dtype, architecture) */
    QB_ERR_ARG,         /* the caller passed something invalid */
    QB_ERR_NOMEM,
    QB_ERR_CANCELLED,
} qb_status;

typedef struct qb_ctx {
    char errmsg[512];   /* last error, one line */
    int n_threads;      /* OpenMP threads for core work; 0 = OpenMP's default */
} qb_ctx;

/* Initialise a context: empty message, n_threads from QB_THREADS/OMP_NUM_THREADS or 0. */
void qb_ctx_init(qb_ctx *ctx);
/* The last error message (borrowed, valid until the next failing call on ctx). */
const char *qb_ctx_errmsg(const qb_ctx *ctx);
/* Record an error (printf-style) and return st, so callers can write
 * `return qb_fail(ctx, QB_ERR_FORMAT, "%s: bad magic", path);`. */
qb_status qb_fail(qb_ctx *ctx, qb_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Short name of a status ("format error", …), static storage. */
const char *qb_status_name(qb_status st);
/* Set OpenMP's thread count for the calling thread from ctx->n_threads (if > 0). */
void qb_ctx_apply_threads(const qb_ctx *ctx);

#endif
