/* qb.h — the few things every part of libqb shares: status codes, the context that carries
 * the last error message and the thread count, and the tensor element types.
 *
 * Conventions: public functions return qb_status and deliver results through out-parameters;
 * on failure the one-line message naming the file and the problem is kept on the context
 * (qb_ctx_errmsg). Core never prints and never exits. */
#ifndef QB_H
#define QB_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

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

/* Tensor element types. The numbers are ggml's type ids, so GGUF files map directly. */
typedef enum {
    QB_TYPE_F32 = 0,
    QB_TYPE_F16 = 1,
    QB_TYPE_Q4_0 = 2,
    QB_TYPE_Q4_1 = 3,
    QB_TYPE_Q5_0 = 6,
    QB_TYPE_Q5_1 = 7,
    QB_TYPE_Q8_0 = 8,
    QB_TYPE_Q8_1 = 9,
    QB_TYPE_Q2_K = 10,
    QB_TYPE_Q3_K = 11,
    QB_TYPE_Q4_K = 12,
    QB_TYPE_Q5_K = 13,
    QB_TYPE_Q6_K = 14,
    QB_TYPE_Q8_K = 15,
    QB_TYPE_IQ4_NL = 20,
    QB_TYPE_IQ4_XS = 23,
    QB_TYPE_BF16 = 30,
    QB_TYPE_CUSTOM = 39, /* not a ggml type: the tensor's qb_format says what the bytes are */
    QB_TYPE_COUNT = 40,  /* upper bound for tables indexed by type */
} qb_type;

/* Facts about a storage type. blck = elements per block, size = bytes per block.
 * name is NULL for ids we do not know. */
typedef struct {
    const char *name;
    int blck;
    int size;
} qb_type_info;

/* Info for type t, or NULL if t is unknown. Static storage. */
const qb_type_info *qb_type_get(int t);
/* Bytes taken by n elements of type t (n must be a multiple of the block size). */
size_t qb_type_row_bytes(qb_type t, int64_t n);
/* Type id for a name like "Q4_K" or "f16" (case-insensitive), or -1. */
int qb_type_from_name(const char *name);

/* Half-precision conversions (scalar; kernels have vector versions). */
float qb_f16_to_f32(uint16_t h);
uint16_t qb_f32_to_f16(float f);
float qb_bf16_to_f32(uint16_t h);

#endif
