/* script.c — the command line's Lua (script.h). Until the Lua module is linked in, lines
 * that are not built-in commands are reported as unknown. */
#include "script.h"

void tui_script_run(tui_session *s, const char *code)
{
    tui_status(s, true, "unknown command '%.60s' (:help lists the commands)", code);
}

void tui_script_close(tui_session *s) { (void)s; }
