/* cli_act.h — the activation / KV-cache options shared by `ppl`, `kld`, `generate` and
 * `bench`: --act int8|int8-static, --smooth ALPHA, --smooth-out, --int8-outlier THRESHOLD,
 * --kv f32|int8|int4, --calib FILE, --calib-windows N, --calib-ctx N. Parsed into a
 * qb_act_opts and applied to a model with qb_act_apply (core/method/act_quant.h). */
#ifndef QB_CLI_ACT_H
#define QB_CLI_ACT_H

#include "cli.h"
#include "core/method/act_quant.h"

#include <stdio.h>

typedef struct {
    qb_act_opts o;
    bool any;           /* some option was given */
    qb_run_config *run; /* made by cli_act_apply when any: pass to the evaluations; else NULL */
} cli_act;

void cli_act_init(cli_act *a);
/* If argv[*i] is one of the options above, consume it (and its value: *i advances) and
 * return 1; return 0 if it is not one; print a one-line error naming cmd and return -1 for a
 * bad or missing value. */
int cli_act_option(cli_act *a, const char *cmd, int argc, char **argv, int *i);
/* Apply to m and a new a->run (no-op when no option was given); prints the error and returns
 * false on failure, else prints one line about what changed on stderr. */
bool cli_act_apply(qb_ctx *ctx, qb_model *m, cli_act *a);
/* Free a->run. */
void cli_act_free(cli_act *a);
/* For LLM.int8: the outlier fraction of each layer's four input points, to f. */
void cli_act_report(const qb_model *m, const cli_act *a, FILE *f);

#endif
