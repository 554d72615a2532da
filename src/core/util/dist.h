/* dist.h — dividing independent work over the ranks of an MPI job (`make MPI=1`, started by
 * mpirun or srun), and gathering the results so every rank holds what one process would have
 * computed. In the default build (and in an MPI build started without a launcher) there is one
 * rank and every call here is a cheap no-op, so core code calls it unconditionally.
 *
 * The rules the engines follow:
 *  - item i of a divided range belongs to rank i % size (qb_dist_owns); equal-cost items (chunks,
 *    tasks) and items ordered by layer (scan units, whose cost falls with their first layer)
 *    both balance that way;
 *  - each rank computes its own items into its copy of the full result array, then
 *    qb_dist_merge fills in the others' items, so the result is laid out and summed in the
 *    single-process order: the outputs are byte for byte a single process's;
 *  - every collective call carries the caller's status: a rank that failed still calls it (or
 *    qb_dist_finish) and every rank gets that failure back (the lowest failing rank's message,
 *    "rank N: …" when it is not the caller's own), so nobody waits for a rank that gave up.
 *    A rank that dies (signal, exit without qb_dist_finish) is the launcher's to notice:
 *    mpirun and `srun --kill-on-bad-exit` end the whole job.
 * Collectives must be called by every rank in the same order, from the thread that called
 * qb_dist_init. The rank and size are process-wide (MPI's own state): set once by
 * qb_dist_init, read-only afterwards. */
#ifndef QB_DIST_H
#define QB_DIST_H

#include "../qb.h"

/* Start MPI when this process was started by a launcher (mpirun / srun set OMPI_COMM_WORLD_SIZE,
 * PMIX_RANK or PMI_RANK); otherwise, or in a build without MPI, one rank. Call once, first thing
 * in main. Returns false (message in ctx) when MPI is asked for and fails to start. */
bool qb_dist_init(qb_ctx *ctx, int *argc, char ***argv);
int qb_dist_rank(void);
int qb_dist_size(void);
/* Work this rank does alone, inside work already divided (a cell of the methods table, each
 * measured by one rank): between qb_dist_alone_begin and _end the engines see one rank (rank 0
 * of 1) and divide nothing. Nests; the thread that called qb_dist_init only. */
void qb_dist_alone_begin(void);
void qb_dist_alone_end(void);
/* Whether this build can divide work at all (built with MPI=1). */
bool qb_dist_built(void);

/* Whether item i of a divided range is this rank's, and how many of n items rank r gets. */
static inline bool qb_dist_owns(int i) { return i % qb_dist_size() == qb_dist_rank(); }
int qb_dist_share(int n, int r);

/* Gather: items (n of item_size bytes, a full-size array) hold this rank's own items
 * (qb_dist_owns); afterwards every rank holds every item. st is this rank's status so far (its
 * message in ctx): when any rank's is not QB_OK nothing is exchanged and every rank returns the
 * lowest failing rank's status and message. One rank: returns st. */
qb_status qb_dist_merge(qb_ctx *ctx, qb_status st, void *items, size_t item_size, int n);

/* Every rank must see the same file (or directory of files) at path: compares the size and a
 * SHA-256 of its first and last MiB and 64 blocks of 64 KiB spread over it (a directory: of each
 * regular file in it, names included). QB_ERR_ARG naming path and the ranks that differ;
 * QB_ERR_IO when it cannot be read (on any rank). st as in qb_dist_merge. One rank: returns st
 * without reading anything. */
qb_status qb_dist_same_file(qb_ctx *ctx, qb_status st, const char *path);

/* The end of a run, on every rank: rc is this rank's exit status (0 = success) and msg its error
 * message (may be NULL). Ranks whose failure was already agreed in a collective just stop;
 * otherwise the statuses are exchanged once more. Returns the exit status this rank should
 * use; when another rank failed and this one did not, *from_rank gets that rank (else -1) and
 * ctx its message. Ends MPI. */
int qb_dist_finish(qb_ctx *ctx, int rc, const char *msg, int *from_rank);

#endif
