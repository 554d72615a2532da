/* script.h — Lua on the command line: a `:` line that is not a built-in command runs as Lua
 * with the qb module bound to the live session. */
#ifndef QB_TUI_SCRIPT_H
#define QB_TUI_SCRIPT_H

#include "session.h"

/* Run code; errors (syntax, runtime) go to the status line, never end the session. */
void tui_script_run(tui_session *s, const char *code);
/* Release the Lua state (at exit). */
void tui_script_close(tui_session *s);

#endif
