/* atomic_file.c — temp file + fsync + rename, the only way core writes user-visible files. */
#include "atomic_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The process's umask. umask(2) can only be read by setting it, which races with other threads
 * creating files meanwhile, so it is read from /proc/self/status ("Umask:", Linux >= 4.7); the
 * set-and-restore read is the fallback. */
static mode_t current_umask(void)
{
    FILE *fp = fopen("/proc/self/status", "r");
    if (fp) {
        char line[128];
        unsigned m;
        while (fgets(line, sizeof line, fp))
            if (sscanf(line, "Umask: %o", &m) == 1) {
                fclose(fp);
                return (mode_t)(m & 0777);
            }
        fclose(fp);
    }
    const mode_t m = umask(022);
    umask(m);
    return m;
}

/* mkstemp creates the temp file 0600 and rename keeps that mode: give it the mode the target
 * would get from cp or an ordinary open(O_CREAT, 0666): an existing target's own permissions,
 * else 0666 less the umask. Failing leaves the file private, which is harmless. */
static void set_target_mode(int fd, const char *path)
{
    struct stat st;
    const mode_t mode = stat(path, &st) == 0 && S_ISREG(st.st_mode) ? (st.st_mode & 07777) : (0666 & ~current_umask());
    if (fchmod(fd, mode) != 0) return;
}

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
    set_target_mode(f->fd, path);
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
