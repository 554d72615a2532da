/* cmd_tui.c — `quantbench [MODEL] [--present]`: the command line of the workbench. Parses the
 * arguments, opens the model (none: the built-in demo), makes the session, opens the
 * QB_TUI_TRACE file, and hands over to the TUI (src/tui/tui.h). */
#include "cli.h"
#include "tui/tui.h"

#include <stdlib.h>
#include <string.h>

int cmd_tui(int argc, char **argv)
{
    const char *path = NULL;
    bool present = false;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--present")) present = true;
        else if (argv[i][0] == '-' && argv[i][1]) return cli_error("tui: unknown option '%s' (usage: quantbench [MODEL] [--present])", argv[i]);
        else if (!path) path = argv[i];
        else return cli_error("tui: unexpected argument '%s'", argv[i]);
    }
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = NULL;
    if (path && !(m = cli_open_model(&ctx, path, NULL))) return 1;
    tui_session *s = calloc(1, sizeof *s);
    if (!s) return cli_error("out of memory");
    if (tui_session_init(s, m) != QB_OK) {
        cli_error("%s", qb_ctx_errmsg(&s->ctx));
        free(s);
        return 1;
    }
    s->present = present;
    const char *tp = getenv("QB_TUI_TRACE");
    if (tp && *tp && !(s->trace = fopen(tp, "w"))) {
        tui_session_free(s);
        free(s);
        return cli_error("QB_TUI_TRACE: cannot write %s", tp);
    }
    if (tui_run(s) != 0) return cli_error("cannot initialise the terminal (is TERM set?)");
    return 0;
}
