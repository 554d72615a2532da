/* help.h — the help overlay (`?`, `:help`): every key from the key table and every command. */
#ifndef QB_TUI_HELP_H
#define QB_TUI_HELP_H

#include "tui/controllers/session.h"

/* Draw the help in a window centred over the screen (rows × cols), scrolled by s->help_top
 * (clamped to 0 .. tui_help_max_top). */
void tui_help_draw(const tui_session *s, int rows, int cols);
/* How far the help scrolls on a screen of rows × cols (0: it fits). */
int tui_help_max_top(int rows, int cols);

#endif
