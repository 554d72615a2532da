/* cli_dist.c — the command line in a job of several MPI ranks (core: util/dist.h): starting
 * the ranks with rank 0 the only one that prints, which commands divide their work, the line
 * saying how it was divided, and the end of the run that turns one rank's failure into the
 * job's. */
#include "cli.h"
#include "core/util/dist.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

extern char cli_last_error[512]; /* cli.c */

bool cli_dist_start(int *argc, char ***argv)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    if (!qb_dist_init(&ctx, argc, argv)) return !cli_error("%s", qb_ctx_errmsg(&ctx));
    if (qb_dist_rank() != 0) { /* rank 0 speaks for the job; the others' errors reach it */
        fflush(NULL);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, STDOUT_FILENO);
            dup2(null, STDERR_FILENO);
            close(null);
        }
    }
    return true;
}

bool cli_dist_allows(const char *name)
{
    static const char *divided[] = {"scan", "search", "prune", "methods", "ppl", "kld", "tasks"};
    if (qb_dist_size() == 1) return true;
    for (size_t i = 0; i < sizeof divided / sizeof *divided; i++)
        if (!strcmp(name, divided[i])) return true;
    cli_error("'%s' does not divide its work over MPI ranks (each of the %d would do all of it); run it as one "
              "process. Divided: scan, search, prune, methods, ppl, kld, tasks",
              name, qb_dist_size());
    return false;
}

int cli_dist_end(int rc)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int from = -1;
    int out = qb_dist_finish(&ctx, rc, cli_last_error, &from);
    if (from >= 0) fprintf(stderr, "quantbench: rank %d: %s\n", from, qb_ctx_errmsg(&ctx));
    return out;
}

void cli_divided_cb(void *ud, int n)
{
    const cli_progress *p = ud;
    int size = qb_dist_size();
    if (qb_dist_rank() != 0 || size < 2) return;
    const char *items = p && p->items ? p->items : "items";
    fprintf(stderr, "%s: %d ranks: ", p && p->label ? p->label : "run", size);
    if (size <= 8) {
        for (int r = 0; r < size; r++) fprintf(stderr, "%s%d", r ? " + " : "", qb_dist_share(n, r));
        fprintf(stderr, " %s\n", items);
    } else {
        int lo = qb_dist_share(n, size - 1), hi = qb_dist_share(n, 0);
        if (lo == hi) fprintf(stderr, "%d %s each (%d)\n", hi, items, n);
        else fprintf(stderr, "%d or %d %s each (%d)\n", lo, hi, items, n);
    }
}

bool cli_writes(void) { return qb_dist_rank() == 0; }
