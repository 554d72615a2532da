/* cli.h — shared pieces of the command-line front end: subcommand entry points, option
 * parsing helpers, opening a model with a one-line error, a stderr progress bar, Ctrl-C. */
#ifndef QB_CLI_H
#define QB_CLI_H

#include "core/qb.h"
#include "core/model/model.h"

/* Each subcommand gets argv after the subcommand name and returns the exit status. */
int cmd_info(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_ppl(int argc, char **argv);
int cmd_kld(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_methods(int argc, char **argv);
int cmd_tui(int argc, char **argv);
int cmd_run(int argc, char **argv); /* cmd_run.c: Lua recipes */
int cmd_scan(int argc, char **argv);   /* cmd_scan.c */
int cmd_search(int argc, char **argv); /* cmd_scan.c */
int cmd_prune(int argc, char **argv);  /* cmd_scan.c */
int cmd_imatrix(int argc, char **argv);
int cmd_tasks(int argc, char **argv); /* cmd_tasks.c */
int cmd_stats(int argc, char **argv); /* cmd_stats.c */
int cmd_finetune(int argc, char **argv); /* cmd_finetune.c */
int cmd_shrink(int argc, char **argv);   /* cmd_shrink.c */

/* Print "quantbench: <message>" to stderr; returns 1 for `return cli_error(...)`. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Open a model (tokenizer_path may be NULL; no_mmap: weights read into private memory, qb_model_opts);
 * prints the error and returns NULL on failure. */
qb_model *cli_open_model(qb_ctx *ctx, const char *path, const char *tokenizer_path, bool no_mmap);
/* Parse an integer / float option value; print an error naming opt and return false if bad. */
bool cli_int(const char *opt, const char *val, long lo, long hi, long *out);
bool cli_float(const char *opt, const char *val, double lo, double hi, double *out);

/* Progress bar on stderr when stderr is a terminal (else silent). */
typedef struct {
    const char *label;
    double t0;
    bool tty;
    const char *items;  /* what a divided job divides ("tensors", "chunks"; cli_divided_cb) */
} cli_progress;
void cli_progress_start(cli_progress *p, const char *label);
void cli_progress_cb(void *ud, int done, int total); /* ud = cli_progress* */
void cli_progress_end(cli_progress *p);
double cli_now(void);

/* ---- a job of several MPI ranks (cli_dist.c; core: util/dist.h) ---- */
/* Start the ranks (a no-op in the default build or without a launcher); on ranks other than 0
 * stdout and stderr go to /dev/null: rank 0 speaks for the job. false: MPI failed to start
 * (message printed). */
bool cli_dist_start(int *argc, char ***argv);
/* Whether command `name` may run in a job of several ranks (it divides its work); when not,
 * prints why and returns false. */
bool cli_dist_allows(const char *name);
/* The end of the run on every rank (rc: this rank's exit status); returns the exit status,
 * having printed on rank 0 the error of another rank that failed when this one did not. */
int cli_dist_end(int rc);
/* The divided() callback of the scan / eval / tasks options (ud: a cli_progress): rank 0 says
 * on stderr how the work was divided, "scan: 2 ranks: 22 + 22 tensors" (p->items). */
void cli_divided_cb(void *ud, int n);
/* Whether this process writes the run's files (only rank 0 of a job does). */
bool cli_writes(void);

/* SIGINT sets this flag (first Ctrl-C cancels the job; a second one exits). */
extern volatile int cli_cancel;
void cli_install_sigint(void);

#endif
