/* cmd_scan.h — private to `quantbench scan` and `search` (cmd_scan.c, cmd_scan_fisher.c): the
 * Fisher estimate's options and the pieces both commands share. */
#ifndef QB_CMD_SCAN_H
#define QB_CMD_SCAN_H

#include "core/eval/fisher.h"

typedef struct {
    bool fisher;           /* --estimate fisher */
    const char *calib;     /* --calib FILE (scan; search uses its own text) */
    long calib_tokens;     /* --calib-tokens (0: the command's default) */
    long refine;           /* --refine K: measure the top K units exactly (scan) */
    long samples, seed;    /* --samples K label draws per chunk, --seed */
    bool data_labels;      /* --labels data (default: sampled) */
    bool all_positions;    /* --positions all (default: half, as the scan scores) */
    qb_fisher_stream_mode stream; /* --stream auto|on|off */
} fisher_args;

/* Take option o (value v) when it is one of the Fisher options: true, *i advanced past a value,
 * *ok false (message printed) when the value is bad. False: not one of them. */
bool fisher_parse_opt(const char *o, const char *v, int *i, fisher_args *a, bool *ok);

/* The Fisher diagonal of m from the text at path (n_tokens, chunks of n_ctx), with a progress
 * bar and a line on stdout saying its cost; streamed (a --stream decision), the prices of every
 * matrix in the n formats of price instead. NULL when it fails (message printed). */
qb_fisher *fisher_gather(qb_ctx *ctx, const qb_model *m, const fisher_args *a, const char *path, long n_tokens,
                         long n_ctx, const qb_format *price, int n_price);

/* `scan MODEL [EVAL.txt] --estimate fisher --calib CALIB.txt --format F[,F…]`: the estimate per
 * format (refined when asked), and with EVAL.txt the exact scan and Spearman's rho. so holds
 * the unit options; csv / json only with one format. Returns the exit status. */
int scan_fisher(qb_ctx *ctx, const qb_model *m, const char *formats, const char *eval, const fisher_args *fa,
                qb_scan_opts *so, long n_tokens, long n_ctx, const char *csv, const char *json);

#endif
