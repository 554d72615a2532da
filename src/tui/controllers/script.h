/* script.h — Lua on the command line: a `:` line that is not a built-in command runs as Lua
 * with the qb module bound to the live session, on a script thread with its own state (the
 * UI keeps drawing and taking keys meanwhile; what the script asks of the session is done on
 * the UI thread). */
#ifndef QB_TUI_SCRIPT_H
#define QB_TUI_SCRIPT_H

#include "tui/controllers/session.h"

/* Start code (a line) or the recipe at path on the script thread (started on first use);
 * refused with a status message while another one runs. Its printed lines, its error (syntax,
 * runtime, "cancelled") and its end come back through the session's queue
 * (tui_script_message); errors never end the session. */
void tui_script_run(tui_session *s, const char *code);
void tui_script_run_file(tui_session *s, const char *path);
/* Whether a script runs now (and for how long, into *elapsed when not NULL). */
bool tui_script_running(const tui_session *s, double *elapsed);
/* Whether the running script was handed the model (qb.model()): until it ends, nothing else
 * may change or read the model's tensors (jobs are refused, the browser keeps its snapshot). */
bool tui_script_holds_model(const tui_session *s);
/* Ctrl-C: ask the running script to stop (its next Lua instruction raises "cancelled").
 * False when none runs. */
bool tui_script_cancel(tui_session *s);
/* Handle a message of the script thread (a request, a printed line, its end); false when m
 * is not one. UI thread. */
bool tui_script_message(tui_session *s, const qb_msg *m);
/* Stop the script (cancel, wait for its thread) and release its state: at exit, and before
 * another model is opened. */
void tui_script_close(tui_session *s);

#endif
