/* dist.c — the ranks of an MPI job (dist.h): rank and size, gathering divided results, the
 * same-model check and the end of a run. Built with QB_MPI=1 it talks MPI; without it every rank
 * question answers "one process" and nothing here touches MPI. */
#include "dist.h"
#include "sha256.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef QB_MPI
#define QB_MPI 0 /* the default build: no MPI anywhere */
#endif
#if QB_MPI
#include <mpi.h>
#endif

/* Process-wide and set once by qb_dist_init (MPI's own state is process-wide too); `agreed`
 * records that the last collective ended in a failure every rank saw. */
static int g_rank = 0, g_size = 1;
static bool g_mpi = false, g_agreed = false;
static int g_alone = 0; /* depth of qb_dist_alone_begin */

int qb_dist_rank(void) { return g_alone ? 0 : g_rank; }
int qb_dist_size(void) { return g_alone ? 1 : g_size; }
void qb_dist_alone_begin(void) { g_alone++; }
void qb_dist_alone_end(void)
{
    if (g_alone > 0) g_alone--;
}
bool qb_dist_built(void) { return QB_MPI; }

int qb_dist_share(int n, int r)
{
    int size = qb_dist_size();
    if (n <= 0 || r < 0 || r >= size) return 0;
    return n / size + (r < n % size);
}

/* ---- the identity of a file: size and a digest of samples ------------------------------------ */

#define SAMPLE_EDGE (1u << 20)
#define SAMPLE_BLOCK (1u << 16)
#define SAMPLE_BLOCKS 64

typedef struct {
    uint64_t size;
    uint8_t digest[32];
} file_id;

/* Read n bytes at off into buf (short files: fewer); false on a read error. */
static bool read_at(int fd, uint64_t off, uint8_t *buf, size_t n, size_t *got)
{
    *got = 0;
    while (*got < n) {
        ssize_t k = pread(fd, buf + *got, n - *got, (off_t)(off + *got));
        if (k < 0) return false;
        if (k == 0) break;
        *got += (size_t)k;
    }
    return true;
}

/* One regular file's size and digest of its name (as given), size and samples. */
static qb_status file_identity(qb_ctx *ctx, const char *path, const char *name, file_id *id)
{
    int fd = open(path, O_RDONLY);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        if (fd >= 0) close(fd);
        return qb_fail(ctx, QB_ERR_IO, "%s: cannot read it to compare it across ranks", path);
    }
    size_t nlen = strlen(name), cap = nlen + 8 + 2 * SAMPLE_EDGE + SAMPLE_BLOCKS * SAMPLE_BLOCK, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    }
    uint64_t size = (uint64_t)sb.st_size;
    memcpy(buf, name, nlen);
    memcpy(buf + nlen, &size, 8);
    len = nlen + 8;
    bool ok = true;
    size_t got;
    /* the first and last MiB (headers, tensor tables, the tail) and blocks spread between */
    ok = ok && read_at(fd, 0, buf + len, SAMPLE_EDGE, &got), len += got;
    if (ok && size > 2 * SAMPLE_EDGE) {
        ok = read_at(fd, size - SAMPLE_EDGE, buf + len, SAMPLE_EDGE, &got), len += got;
        for (int b = 0; ok && b < SAMPLE_BLOCKS; b++) {
            uint64_t off = SAMPLE_EDGE + (size - 2 * SAMPLE_EDGE) / SAMPLE_BLOCKS * (uint64_t)b;
            ok = read_at(fd, off, buf + len, SAMPLE_BLOCK, &got), len += got;
        }
    }
    close(fd);
    if (ok) {
        id->size = size;
        qb_sha256(buf, len, id->digest);
    }
    free(buf);
    return ok ? QB_OK : qb_fail(ctx, QB_ERR_IO, "%s: read error while comparing it across ranks", path);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* path's identity: a regular file's, or a directory's regular files' in name order. */
static qb_status path_identity(qb_ctx *ctx, const char *path, file_id *id)
{
    struct stat sb;
    if (stat(path, &sb) != 0) return qb_fail(ctx, QB_ERR_IO, "%s: cannot read it to compare it across ranks", path);
    if (!S_ISDIR(sb.st_mode)) return file_identity(ctx, path, "", id);
    DIR *d = opendir(path);
    if (!d) return qb_fail(ctx, QB_ERR_IO, "%s: cannot list it to compare it across ranks", path);
    char **names = NULL;
    int n = 0;
    qb_status st = QB_OK;
    for (struct dirent *e; st == QB_OK && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char **g = realloc(names, (size_t)(n + 1) * sizeof *names);
        if (!g || !(g[n] = strdup(e->d_name))) st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
        if (g) names = g;
        if (st == QB_OK) n++;
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    file_id *ids = calloc((size_t)n + 1, sizeof *ids);
    if (!ids && st == QB_OK) st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    int k = 0;
    id->size = 0;
    for (int i = 0; st == QB_OK && i < n; i++) {
        char *full = malloc(strlen(path) + strlen(names[i]) + 2);
        if (!full) {
            st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
            break;
        }
        sprintf(full, "%s/%s", path, names[i]);
        if (stat(full, &sb) == 0 && S_ISREG(sb.st_mode) && (st = file_identity(ctx, full, names[i], &ids[k])) == QB_OK)
            id->size += ids[k++].size;
        free(full);
    }
    if (st == QB_OK) qb_sha256(ids, (size_t)k * sizeof *ids, id->digest);
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    free(ids);
    return st;
}

/* ---- without MPI: one rank ------------------------------------------------------------------- */
#if !QB_MPI

bool qb_dist_init(qb_ctx *ctx, int *argc, char ***argv)
{
    (void)ctx, (void)argc, (void)argv;
    return true;
}

qb_status qb_dist_merge(qb_ctx *ctx, qb_status st, void *items, size_t item_size, int n)
{
    (void)ctx, (void)items, (void)item_size, (void)n;
    return st;
}

qb_status qb_dist_same_file(qb_ctx *ctx, qb_status st, const char *path)
{
    (void)ctx, (void)path, (void)g_mpi, (void)g_agreed, (void)path_identity;
    return st;
}

int qb_dist_finish(qb_ctx *ctx, int rc, const char *msg, int *from_rank)
{
    (void)ctx, (void)msg;
    *from_rank = -1;
    return rc;
}

/* ---- with MPI -------------------------------------------------------------------------------- */
#else

/* What every collective exchanges first: where the rank is, its status and message. */
enum { AT_MERGE = 1, AT_SAME_FILE, AT_FINISH };
typedef struct {
    int32_t at;       /* AT_* */
    int32_t st;       /* qb_status */
    int64_t bytes;    /* the payload the rank brings */
    char msg[496];
} hdr;

bool qb_dist_init(qb_ctx *ctx, int *argc, char ***argv)
{
    const char *launched[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"};
    bool any = false;
    for (size_t i = 0; i < sizeof launched / sizeof *launched; i++) any |= getenv(launched[i]) != NULL;
    if (!any) return true; /* started by hand: one process, MPI never started */
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        qb_fail(ctx, QB_ERR_IO, "MPI could not start");
        return false;
    }
    /* errors come back as codes, and every code path ends in qb_dist_finish or the launcher */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    g_mpi = true;
    return true;
}

/* The headers of every rank for this rank's (at, st, bytes, ctx's message). Returns QB_OK when
 * every rank is OK and at the same place with the same payload size; otherwise the lowest
 * failing rank's status with its message in ctx (prefixed with its rank when not this one). */
static qb_status exchange(qb_ctx *ctx, int at, qb_status st, int64_t bytes)
{
    hdr me = {.at = at, .st = st, .bytes = bytes}, *all = calloc((size_t)g_size, sizeof *all);
    if (st != QB_OK) snprintf(me.msg, sizeof me.msg, "%.*s", (int)sizeof me.msg - 1, qb_ctx_errmsg(ctx));
    if (!all) MPI_Abort(MPI_COMM_WORLD, 1); /* cannot even agree: end the job rather than hang */
    if (MPI_Allgather(&me, sizeof me, MPI_BYTE, all, sizeof me, MPI_BYTE, MPI_COMM_WORLD) != MPI_SUCCESS) {
        free(all);
        g_agreed = true;
        return qb_fail(ctx, QB_ERR_IO, "MPI: exchanging statuses between ranks failed");
    }
    qb_status out = QB_OK;
    for (int r = 0; r < g_size && out == QB_OK; r++) {
        if (all[r].st != QB_OK) {
            out = (qb_status)all[r].st;
            if (r != g_rank) qb_fail(ctx, out, "rank %d: %s", r, all[r].msg);
        }
    }
    for (int r = 1; r < g_size && out == QB_OK; r++)
        if (all[r].at != all[0].at || all[r].bytes != all[0].bytes)
            out = qb_fail(ctx, QB_ERR_ARG, "ranks out of step: rank %d is at step %d (%lld bytes), rank 0 at %d (%lld)",
                          r, all[r].at, (long long)all[r].bytes, all[0].at, (long long)all[0].bytes);
    free(all);
    g_agreed = out != QB_OK;
    return out;
}

qb_status qb_dist_merge(qb_ctx *ctx, qb_status st, void *items, size_t item_size, int n)
{
    if (!g_mpi || qb_dist_size() == 1) return st;
    if ((st = exchange(ctx, AT_MERGE, st, (int64_t)item_size * n)) != QB_OK) return st;
    int *counts = calloc((size_t)g_size, sizeof *counts), *displs = calloc((size_t)g_size, sizeof *displs);
    size_t mine = (size_t)qb_dist_share(n, g_rank) * item_size;
    char *send = malloc(mine + 1), *recv = malloc((size_t)n * item_size + 1);
    bool ok = counts && displs && send && recv && (size_t)n * item_size / (size_t)g_size < (size_t)1 << 30;
    for (int r = 0, off = 0; ok && r < g_size; r++) {
        counts[r] = (int)((size_t)qb_dist_share(n, r) * item_size);
        displs[r] = off;
        off += counts[r];
    }
    char *it = items;
    for (int i = g_rank, k = 0; ok && i < n; i += g_size, k++) memcpy(send + (size_t)k * item_size, it + (size_t)i * item_size, item_size);
    /* every rank learns whether every rank could allocate, then the items travel */
    int bad = !ok, any_bad = 1;
    MPI_Allreduce(&bad, &any_bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (any_bad) st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory gathering results from the ranks");
    else if (MPI_Allgatherv(send, (int)mine, MPI_BYTE, recv, counts, displs, MPI_BYTE, MPI_COMM_WORLD) != MPI_SUCCESS)
        st = qb_fail(ctx, QB_ERR_IO, "MPI: gathering results from the ranks failed");
    else /* rank r's k-th item is item r + k·size */
        for (int r = 0; r < g_size; r++)
            for (int i = r, k = 0; i < n; i += g_size, k++)
                memcpy(it + (size_t)i * item_size, recv + displs[r] + (size_t)k * item_size, item_size);
    g_agreed = st != QB_OK;
    free(counts);
    free(displs);
    free(send);
    free(recv);
    return st;
}

qb_status qb_dist_same_file(qb_ctx *ctx, qb_status st, const char *path)
{
    if (!g_mpi || qb_dist_size() == 1) return st;
    file_id me = {0}, *all = calloc((size_t)g_size, sizeof *all);
    if (st == QB_OK) st = all ? path_identity(ctx, path, &me) : qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    if ((st = exchange(ctx, AT_SAME_FILE, st, sizeof me)) != QB_OK) {
        free(all);
        return st;
    }
    if (MPI_Allgather(&me, sizeof me, MPI_BYTE, all, sizeof me, MPI_BYTE, MPI_COMM_WORLD) != MPI_SUCCESS)
        st = qb_fail(ctx, QB_ERR_IO, "MPI: comparing %s across ranks failed", path);
    for (int r = 1; st == QB_OK && r < g_size; r++) {
        if (!memcmp(&all[r], &all[0], sizeof me)) continue;
        char h0[17], hr[17];
        for (int i = 0; i < 8; i++) {
            sprintf(h0 + 2 * i, "%02x", all[0].digest[i]);
            sprintf(hr + 2 * i, "%02x", all[r].digest[i]);
        }
        st = qb_fail(ctx, QB_ERR_ARG,
                     "%s: rank %d sees a different file than rank 0 (%llu bytes, sha256 of samples %s… vs %llu "
                     "bytes, %s…): every rank must map the same model",
                     path, r, (unsigned long long)all[r].size, hr, (unsigned long long)all[0].size, h0);
    }
    g_agreed = st != QB_OK;
    free(all);
    return st;
}

int qb_dist_finish(qb_ctx *ctx, int rc, const char *msg, int *from_rank)
{
    *from_rank = -1;
    if (!g_mpi) return rc;
    if (g_size > 1 && !(rc != 0 && g_agreed)) {
        if (rc != 0) qb_fail(ctx, QB_ERR_ARG, "%s", msg && *msg ? msg : "failed");
        char own[sizeof ctx->errmsg];
        snprintf(own, sizeof own, "%s", qb_ctx_errmsg(ctx));
        /* find which rank failed first, to name it */
        hdr me = {.at = AT_FINISH, .st = rc != 0 ? QB_ERR_ARG : QB_OK}, *all = calloc((size_t)g_size, sizeof *all);
        snprintf(me.msg, sizeof me.msg, "%.*s", (int)sizeof me.msg - 1, rc != 0 ? own : "");
        if (all && MPI_Allgather(&me, sizeof me, MPI_BYTE, all, sizeof me, MPI_BYTE, MPI_COMM_WORLD) == MPI_SUCCESS) {
            for (int r = 0; r < g_size; r++) {
                bool bad = all[r].st != QB_OK || all[r].at != AT_FINISH;
                if (!bad) continue;
                if (rc == 0 && r != g_rank) {
                    *from_rank = r;
                    rc = 1;
                    if (all[r].at != AT_FINISH && all[r].st == QB_OK)
                        qb_fail(ctx, QB_ERR_ARG, "rank %d: ranks out of step (it was at step %d, not the end)", r,
                                all[r].at);
                    else
                        qb_fail(ctx, (qb_status)all[r].st, "%s", all[r].msg);
                }
                break;
            }
        }
        free(all);
    }
    MPI_Finalize();
    return rc;
}

#endif
