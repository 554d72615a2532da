/* ckpt_file.h — the container training checkpoints are written in: a JSON description and
 * named float32 arrays, closed by a SHA-256 of everything before it, so a torn or altered file
 * is recognised instead of resumed from. Layout (little-endian):
 *
 *   "QBCKPT\0\0"  u32 version (1)  u32 n_arrays  u64 meta_len  meta (JSON text, meta_len bytes)
 *   n_arrays × { u32 name_len  name (name_len bytes, 1..255, no NUL)  u64 count  count × f32 }
 *   sha256 (32 bytes) of all the bytes above
 *
 * What the description and the arrays mean is the writer's (method/finetune.c). */
#ifndef QB_CKPT_FILE_H
#define QB_CKPT_FILE_H

#include "../qb.h"

typedef struct {
    char *name;        /* owned */
    const float *data; /* into the checkpoint's values (read) or the caller's arrays (write) */
    uint64_t count;
} qb_ckpt_array;

typedef struct {
    char *meta;          /* NUL-terminated JSON text; owned */
    qb_ckpt_array *arrays;
    uint32_t n_arrays;
    float *values;       /* every array's values, decoded (arrays point into it); owned */
} qb_ckpt;

/* Write meta and the arrays to path atomically (temp file + rename; on any error the target is
 * untouched). Errors name the file. */
qb_status qb_ckpt_write(qb_ctx *ctx, const char *path, const char *meta, const qb_ckpt_array *arrays, uint32_t n);

/* Read a checkpoint from memory (name is for messages). Every length is checked against the
 * size before it is used; errors, one line naming the file: not a checkpoint, another version,
 * truncated, trailing bytes, a bad name, corrupted (digest mismatch). The values are decoded
 * into *out's own memory (qb_ckpt_free). */
qb_status qb_ckpt_read_memory(qb_ctx *ctx, const char *name, const void *data, size_t size, qb_ckpt **out);
/* The same from a file. */
qb_status qb_ckpt_read(qb_ctx *ctx, const char *path, qb_ckpt **out);
/* The array named name, or NULL. */
const qb_ckpt_array *qb_ckpt_find(const qb_ckpt *c, const char *name);
void qb_ckpt_free(qb_ckpt *c);

#endif
