/* commands.h — what a `:` line does: built-in commands (open, w, load, export, gen, ppl,
 * select, set, method, bits, group, apply, undo, redo, plot, present, help, quit); anything
 * else is Lua run against the live session when the Lua module is built in. Errors go to the
 * status line; the session continues. */
#ifndef QB_TUI_COMMANDS_H
#define QB_TUI_COMMANDS_H

#include "tui/controllers/session.h"

typedef struct {
    const char *usage; /* "open PATH" */
    const char *help;
} tui_command_doc;

/* The built-in commands' documentation (static table). */
const tui_command_doc *tui_commands(int *count);
/* Run one command line (without the leading ':'). */
void tui_command_run(tui_session *s, const char *line);
/* Run the `/` search: select the next tensor whose name contains text. */
void tui_search(tui_session *s, const char *text);

#endif
