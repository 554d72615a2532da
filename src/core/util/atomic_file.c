/* atomic_file.c — temp file + fsync + rename, the only way core writes user-visible files. */
#include "atomic_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

qb_status qb_atomic_begin(qb_ctx *ctx, const char *path, qb_atomic_file *f)
{
    size_t plen = strlen(path);
    f->path = path;
    f->fd = -1;
    if (!(f->tmp = malloc(plen + 16))) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    /* "<path>.tmp-" and six placeholder letters that mkstemp replaces */
    snprintf(f->tmp, plen + 16, "%s.tmp-", path);
    memset(f->tmp + plen + 5, 'X', 6);
    f->tmp[plen + 11] = 0;
    if ((f->fd = mkstemp(f->tmp)) < 0) {
        qb_status st = qb_fail(ctx, QB_ERR_IO, "%s: cannot create a temporary file beside it: %s", path, strerror(errno));
        free(f->tmp);
        f->tmp = NULL;
        return st;
    }
    return QB_OK;
}

bool qb_atomic_write(qb_atomic_file *f, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t k = write(f->fd, c, n > (1u << 30) ? (1u << 30) : n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        c += k;
        n -= (size_t)k;
    }
    return true;
}

void qb_atomic_abort(qb_atomic_file *f)
{
    if (f->fd >= 0) close(f->fd);
    if (f->tmp) unlink(f->tmp);
    free(f->tmp);
    f->fd = -1;
    f->tmp = NULL;
}

qb_status qb_atomic_commit(qb_ctx *ctx, qb_atomic_file *f)
{
    bool ok = fsync(f->fd) == 0;
    ok = close(f->fd) == 0 && ok;
    f->fd = -1;
    if (!ok || rename(f->tmp, f->path) != 0) {
        qb_status st = qb_fail(ctx, QB_ERR_IO, "%s: write failed: %s; the file was not changed", f->path, strerror(errno));
        qb_atomic_abort(f);
        return st;
    }
    free(f->tmp);
    f->tmp = NULL;
    return QB_OK;
}
