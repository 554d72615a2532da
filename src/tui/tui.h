/* tui.h — the workbench's one entry point for the application layer (src/app/cmd_tui.c
 * parses the command line, opens the model and makes the session; the TUI runs it). */
#ifndef QB_TUI_H
#define QB_TUI_H

#include "session.h"

/* Open the terminal and run the workbench on s (a session from tui_session_init, its trace
 * file already set) until the user quits; takes ownership of s and frees it on every path.
 * Returns 0, or -1 when the terminal cannot be initialised (nothing drawn). */
int tui_run(tui_session *s);

#endif
