/* genpane.h — the generation pane: the prompt, then the full-precision model's and the
 * quantized model's continuations side by side (same seed), streaming, with tokens/s each and
 * the first diverging token highlighted. */
#ifndef QB_TUI_GENPANE_H
#define QB_TUI_GENPANE_H

#include "tui/controllers/session.h"

#include <curses.h>

void tui_genpane_draw(WINDOW *win, const tui_session *s);

#endif
