/* gguf.h — reading GGUF files (v2 and v3, little-endian): metadata key/values and the tensor
 * directory, validated, with tensor data left in the read-only mapping.
 * Spec: ggml docs/gguf.md. Dims are listed fastest-first (ne[0] = row length). */
#ifndef QB_GGUF_H
#define QB_GGUF_H

#include "../qb.h"
#include "mapfile.h"

enum {
    QB_GGUF_UINT8 = 0, QB_GGUF_INT8, QB_GGUF_UINT16, QB_GGUF_INT16, QB_GGUF_UINT32,
    QB_GGUF_INT32, QB_GGUF_FLOAT32, QB_GGUF_BOOL, QB_GGUF_STRING, QB_GGUF_ARRAY,
    QB_GGUF_UINT64, QB_GGUF_INT64, QB_GGUF_FLOAT64, QB_GGUF_NTYPES
};

typedef struct {
    const char *ptr; /* into the mapping, NOT NUL-terminated */
    uint64_t len;
} qb_gguf_strref;

typedef struct {
    char *key;            /* owned, NUL-terminated */
    uint32_t type;        /* QB_GGUF_* */
    /* scalars (numeric and bool), widened: */
    int64_t i64;
    uint64_t u64;
    double f64;
    char *str;            /* STRING: owned NUL-terminated copy */
    /* ARRAY: */
    uint32_t arr_type;
    uint64_t arr_n;
    const void *arr_data;     /* numeric arrays: the raw little-endian elements in the map */
    qb_gguf_strref *arr_str;  /* string arrays: owned table of references into the map */
} qb_gguf_kv;

typedef struct {
    char *name;       /* owned */
    int n_dims;
    int64_t ne[4];    /* ne[0] = row length; unused dims are 1 */
    int type;         /* qb_type / ggml type id */
    uint64_t offset;  /* relative to its file's data section (a split model: its part's) */
    size_t nbytes;
    const void *data; /* into the mapping */
} qb_gguf_tensor;

typedef struct qb_gguf {
    char *path;
    qb_mapfile map;
    uint32_t version;
    uint64_t n_kv;
    qb_gguf_kv *kv;
    uint64_t n_tensors;
    qb_gguf_tensor *tensors;
    size_t alignment;
    size_t data_offset;  /* file offset of the data section */
    bool borrowed;       /* opened from caller's memory: the map is not ours to unmap */
    struct qb_gguf **parts; /* a split model: parts 2..n_parts, owned; their tensors are in tensors */
    int n_parts;            /* files the model is in (1 unless split) */
} qb_gguf;

/* Open and validate path. On success *out owns the mapping; close with qb_gguf_close.
 * Errors (truncation, bad magic, absurd counts, unknown types, tensor data past the end,
 * misaligned or overlapping tensors) name the file and the problem. A model split by
 * llama-gguf-split is opened from its first file, NAME-00001-of-0000N.gguf: the other parts are
 * opened too and their tensors joined into one directory (gguf_split.c); the split.* keys are
 * dropped, n_parts says how many files there were. */
qb_status qb_gguf_open(qb_ctx *ctx, const char *path, qb_gguf **out);
/* Same, over bytes already in memory (borrowed; used by the fuzzer). name is for messages. */
qb_status qb_gguf_open_memory(qb_ctx *ctx, const char *name, const void *data, size_t size,
                              qb_gguf **out);
void qb_gguf_close(qb_gguf *g);

/* Internal to the reader: open one file without looking for other parts (gguf_read.c); join
 * the parts of a split model into g, its first file, if g's split.* keys say it is one
 * (gguf_split.c). */
qb_status qb_gguf_open_one(qb_ctx *ctx, const char *path, qb_gguf **out);
qb_status qb_gguf_join_splits(qb_ctx *ctx, qb_gguf *g);

/* Lookups: NULL / default when absent or of an incompatible type. */
const qb_gguf_kv *qb_gguf_find(const qb_gguf *g, const char *key);
int64_t qb_gguf_get_int(const qb_gguf *g, const char *key, int64_t dflt);
double qb_gguf_get_float(const qb_gguf *g, const char *key, double dflt);
const char *qb_gguf_get_str(const qb_gguf *g, const char *key); /* borrowed */
bool qb_gguf_get_bool(const qb_gguf *g, const char *key, bool dflt);
const qb_gguf_tensor *qb_gguf_find_tensor(const qb_gguf *g, const char *name);
/* Element i of a numeric array as double / int64 (bounds and type checked by caller). */
double qb_gguf_arr_float(const qb_gguf_kv *kv, uint64_t i);
int64_t qb_gguf_arr_int(const qb_gguf_kv *kv, uint64_t i);
/* Size in bytes of one element of a scalar GGUF value type, 0 for string/array. */
size_t qb_gguf_type_size(uint32_t type);

#endif
