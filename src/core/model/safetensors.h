/* safetensors.h — parsing and validating one .safetensors file held in memory (normally a
 * read-only mapping): the tensor directory with each tensor's dtype, shape and a pointer to
 * its bytes. Tensor data is never copied.
 *
 * Format: u64 little-endian header length N, N bytes of JSON
 *   {"name": {"dtype": "BF16", "shape": [rows, cols], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {...}}   (optional, ignored)
 * then the data section; offsets are relative to its first byte (file offset 8 + N).
 * Shapes are listed slowest-first, as in PyTorch: a Linear weight is [out_features, in_features]. */
#ifndef QB_SAFETENSORS_H
#define QB_SAFETENSORS_H

#include "../qb.h"

#define QB_ST_MAX_DIMS 8
#define QB_ST_MAX_HEADER 100000000ull /* the reference implementation's limit */

typedef struct {
    char *name;                     /* owned, NUL-terminated */
    char dtype[12];                 /* as written in the file: "BF16", "I8", ... */
    int type;                       /* qb_type for F32/F16/BF16, -1 for other dtypes */
    int n_dims;                     /* 0 (scalar) .. QB_ST_MAX_DIMS */
    int64_t shape[QB_ST_MAX_DIMS];  /* slowest-first, as in the file */
    uint64_t begin, end;            /* data_offsets, relative to the data section */
    const void *data;               /* borrowed: points into the caller's buffer */
    size_t nbytes;                  /* end - begin */
} qb_st_tensor;

typedef struct {
    qb_st_tensor *tensors;          /* n_tensors entries, in header order; owned */
    int n_tensors;
    size_t data_offset;             /* file offset of the data section (8 + N) */
} qb_st_file;

/* Parse and validate the safetensors bytes data[0..size). name is used in messages (the
 * file's path). Checks: the header length fits in the file, the header is a JSON object
 * (Jansson's line/column/text are reported otherwise) without duplicate names, every entry
 * has a known dtype, a shape of at most QB_ST_MAX_DIMS sane dimensions (each <= 2^40) and
 * data_offsets [begin, end] with begin <= end, end inside the file, end - begin equal to
 * the element count times the dtype size, and no two tensors overlap.
 * Known dtypes are BOOL, U8, I8, F8_E4M3, F8_E5M2, I16, U16, F16, BF16, I32, U32, F32, I64,
 * U64, F64; only F32/F16/BF16 get a qb_type (others keep type = -1 so that a loader can
 * ignore them or say which tensor it cannot use). A dtype outside that list is
 * QB_ERR_UNSUPPORTED; every other problem is QB_ERR_FORMAT.
 * On success *out holds the directory (pointers into data, which must outlive it); release
 * with qb_safetensors_free. On failure *out is left empty (nothing to free, but freeing is
 * harmless). */
qb_status qb_safetensors_parse(qb_ctx *ctx, const char *name, const void *data, size_t size, qb_st_file *out);
void qb_safetensors_free(qb_st_file *f);

/* The entry called name, or NULL. Linear search. */
const qb_st_tensor *qb_safetensors_find(const qb_st_file *f, const char *name);

/* Bytes per element of a safetensors dtype name ("BF16" -> 2), 0 if unknown. */
size_t qb_safetensors_dtype_size(const char *dtype);

#endif
