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
#include "format_kinds.h"

/* ---- the format descriptor: what a quantized tensor's bytes are. The functions that parse,
 * name, check and size formats, and the table of their traits, are src/core/quant/format.h. */

/* One constant per row of the format table (format_kinds.h; the table: quant/format_traits.h). */
typedef enum {
#define QB_FORMAT_KIND_ENUM(K, id) QB_FMT_##K,
    QB_FORMAT_KINDS(QB_FORMAT_KIND_ENUM)
#undef QB_FORMAT_KIND_ENUM
    QB_FMT_KIND_COUNT
} qb_format_kind;

#define QB_GROUP_TENSOR 0     /* one scale (and zero point) for the whole tensor */
#define QB_GROUP_CHANNEL (-1) /* one per output channel (row) */

typedef struct {
    qb_format_kind kind;
    int type;          /* GGML: the ggml type id (qb_type) */
    int bits;          /* INT: 2..8 (GPTQ reference quantizer conventions: kernels/fmt_int_ref.c) */
    int group;         /* INT: QB_GROUP_TENSOR, QB_GROUP_CHANNEL or 32/64/128/256;
                          FP8: QB_GROUP_TENSOR or QB_GROUP_CHANNEL; block formats: their block
                          (NF4 64, MXFP4 32; see each row's file) */
    bool asym;         /* INT: asymmetric (zero point) instead of symmetric */
    bool double_quant; /* NF4: absmax values themselves quantized to 8 bits (QLoRA's DQ) */
} qb_format;

/* The element type a tensor holding rows of f is stored as: f's ggml type, or QB_TYPE_CUSTOM
 * (the tensor's qb_format then says what its bytes are). */
static inline qb_type qb_format_storage_type(const qb_format *f)
{
    return f->kind == QB_FMT_GGML ? (qb_type)f->type : QB_TYPE_CUSTOM;
}

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
 * `return qb_fail(ctx, QB_ERR_FORMAT, "%s: bad magic", path);`. The message is kept on one
 * line: control bytes (a newline in a tensor name a file gave) become '?'. */
qb_status qb_fail(qb_ctx *ctx, qb_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Short name of a status ("format error", …), static storage. */
const char *qb_status_name(qb_status st);
/* Set OpenMP's thread count for the calling thread from ctx->n_threads (if > 0). */
void qb_ctx_apply_threads(const qb_ctx *ctx);
/* This machine's physical memory in bytes, 0 when it cannot be read: what the memory-bounded
 * choices (caches kept, activations recomputed, passes streamed) measure themselves against. */
double qb_physical_memory(void);

/* Whether passes of `tokens` tokens through layers of width dim and FFN width hidden are too
 * small for a thread team: its start and its idle threads' waits cost more than the work
 * (10× slower on a busy machine, measured with learned rounding and fine-tuning of the tiny
 * models). Such work runs on one thread: */
bool qb_work_is_small(size_t tokens, int dim, int hidden);
/* *one becomes a copy of ctx whose work runs on one thread, applied to the calling thread at
 * once; returns the caller's OpenMP thread count, to give back to qb_threads_restore. */
int qb_ctx_one_thread(const qb_ctx *ctx, qb_ctx *one);
void qb_threads_restore(int saved);

#endif
