/* cmd_tui.c — `quantbench [MODEL] [--present]` and `quantbench tui ...`: parse the arguments,
 * open the model with a one-line error, and hand it to the workbench (src/tui/tui.h). */
#include "cli.h"
#include "tui/tui.h"

#include <stdlib.h>
#include <string.h>

int cmd_tui(int argc, char **argv)
{
    const char *path = NULL;
    tui_opts o = {.present = false, .trace_path = getenv("QB_TUI_TRACE")};
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--present")) o.present = true;
        else if (argv[i][0] == '-' && argv[i][1]) return cli_error("tui: unknown option '%s' (usage: quantbench [MODEL] [--present])", argv[i]);
        else if (!path) path = argv[i];
        else return cli_error("tui: unexpected argument '%s'", argv[i]);
    }
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = NULL;
    if (path && !(m = cli_open_model(&ctx, path, NULL, false))) return 1;
    if (tui_run(&ctx, m, &o) != QB_OK) return cli_error("%s", qb_ctx_errmsg(&ctx));
    return 0;
}
