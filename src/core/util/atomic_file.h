/* atomic_file.h — writing a file so that a failure, a cancel or a crash never leaves the
 * target half-written: write to "<path>.tmp-<random>" beside it, fsync, rename over the target. */
#ifndef QB_ATOMIC_FILE_H
#define QB_ATOMIC_FILE_H

#include "../qb.h"

typedef struct {
    int fd;
    char *tmp;        /* temp file path; owned */
    const char *path; /* the target (borrowed) */
} qb_atomic_file;

/* Create the temp file beside path, with the mode the target will keep: an existing target's
 * permissions, else 0666 less the umask (as cp or llama-quantize would give a new file). On
 * failure nothing exists and the error names path. */
qb_status qb_atomic_begin(qb_ctx *ctx, const char *path, qb_atomic_file *f);
/* Append n bytes; false on a write error (errno set). */
bool qb_atomic_write(qb_atomic_file *f, const void *p, size_t n);
/* fsync, close and rename over the target; on failure the temp file is removed and the target
 * is left as it was. */
qb_status qb_atomic_commit(qb_ctx *ctx, qb_atomic_file *f);
/* Give up: close and remove the temp file (the target is untouched). */
void qb_atomic_abort(qb_atomic_file *f);

#endif
