/* mapfile.h — read-only memory mapping of whole files (model weights are mapped, never copied). */
#ifndef QB_MAPFILE_H
#define QB_MAPFILE_H

#include "../qb.h"

typedef struct {
    void *data;   /* start of the mapping (NULL for an empty file) */
    size_t size;  /* file size in bytes */
} qb_mapfile;

/* Map path read-only. An empty file maps to {NULL, 0} with QB_OK; callers check sizes.
 * Release with qb_mapfile_close. */
qb_status qb_mapfile_open(qb_ctx *ctx, const char *path, qb_mapfile *out);
void qb_mapfile_close(qb_mapfile *m);

/* Drop the pages of [p, p+len) of a read-only file mapping from this process's resident set
 * (they are read back from the file if touched again). Used after a tensor's original has
 * been quantized, so memory really shrinks to the packed size. */
void qb_mapfile_release(const void *p, size_t len);

/* Read a whole small file (JSON, tokenizer) into a NUL-terminated heap buffer.
 * Caller frees *out with free(). Fails on files over max_bytes. */
qb_status qb_read_file(qb_ctx *ctx, const char *path, size_t max_bytes, char **out, size_t *len);

#endif
