/* help.h — the help overlay (`?`, `:help`): every key from the key table and every command. */
#ifndef QB_TUI_HELP_H
#define QB_TUI_HELP_H

#include "session.h"

/* Draw the help in a window centred over the screen (rows × cols). */
void tui_help_draw(const tui_session *s, int rows, int cols);

#endif
