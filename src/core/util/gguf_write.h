/* gguf_write.h — building GGUF v3 files: metadata key/values and tensors, written with the
 * data section aligned (general.alignment, default 32) through a temp file + fsync + rename,
 * so a failed write leaves the target untouched. */
#ifndef QB_GGUF_WRITE_H
#define QB_GGUF_WRITE_H

#include "../qb.h"

typedef struct qb_gguf_writer qb_gguf_writer;

/* New empty writer (NULL when out of memory). Free with qb_gguf_writer_free. */
qb_gguf_writer *qb_gguf_writer_new(void);
void qb_gguf_writer_free(qb_gguf_writer *w);

/* Metadata, in the order added. Strings and arrays are copied. Return false on OOM. */
bool qb_gguf_set_str(qb_gguf_writer *w, const char *key, const char *val);
bool qb_gguf_set_u32(qb_gguf_writer *w, const char *key, uint32_t val);
bool qb_gguf_set_u64(qb_gguf_writer *w, const char *key, uint64_t val);
bool qb_gguf_set_i32(qb_gguf_writer *w, const char *key, int32_t val);
bool qb_gguf_set_f32(qb_gguf_writer *w, const char *key, float val);
bool qb_gguf_set_bool(qb_gguf_writer *w, const char *key, bool val);
/* Array of n strings (each NUL-terminated). */
bool qb_gguf_set_arr_str(qb_gguf_writer *w, const char *key, const char *const *vals, size_t n);
/* Array of n numeric elements of GGUF type elem_type (QB_GGUF_FLOAT32, QB_GGUF_INT32, ...). */
bool qb_gguf_set_arr(qb_gguf_writer *w, const char *key, uint32_t elem_type, const void *vals, size_t n);

/* Copy one key/value read by the GGUF reader (any type, arrays included). When a key is set
 * twice the later value replaces the earlier one in place. */
bool qb_gguf_copy_kv(qb_gguf_writer *w, const void *kv /* const qb_gguf_kv * */);
/* Remove a key if present. */
void qb_gguf_remove_kv(qb_gguf_writer *w, const char *key);

/* Add a tensor; ne[0] is the row length. data is BORROWED until the write call; NULL data
 * writes zeros. Returns false for unknown types, bad dims or rows not a multiple of the block. */
bool qb_gguf_add_tensor(qb_gguf_writer *w, const char *name, int type, int n_dims, const int64_t *ne,
                        const void *data);

/* A tensor whose bytes are produced while the file is written, one tensor at a time, so a
 * whole model never has to sit in memory: produce(ud, index, dst, nbytes) fills dst and
 * returns QB_OK (or an error that aborts the write). index counts these tensors from 0. */
typedef qb_status (*qb_gguf_produce_fn)(void *ud, int index, void *dst, size_t nbytes);
bool qb_gguf_add_tensor_lazy(qb_gguf_writer *w, const char *name, int type, int n_dims, const int64_t *ne,
                             qb_gguf_produce_fn produce, void *ud, int index);

/* Write the file atomically (temp file in the same directory, fsync, rename).
 * cancel (may be NULL): when it becomes non-zero the write stops, the temp file is removed
 * and QB_ERR_CANCELLED is returned. */
qb_status qb_gguf_write_file(qb_ctx *ctx, const qb_gguf_writer *w, const char *path, const volatile int *cancel);
/* Serialise into a malloc'd buffer (caller frees). */
qb_status qb_gguf_write_memory(qb_ctx *ctx, const qb_gguf_writer *w, void **buf, size_t *len);

#endif
