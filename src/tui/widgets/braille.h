/* braille.h — the TUI's side of the braille canvas: core draws the dots (core/plot/canvas.h,
 * shared with the text plots); the TUI only copies the canvas's cells to a curses window,
 * each in its colour pair. */
#ifndef QB_TUI_BRAILLE_H
#define QB_TUI_BRAILLE_H

#include <curses.h>

#include "core/plot/canvas.h"

/* The non-empty cells of c into window win with the canvas's top-left cell at (y, x); a
 * cell's colour index is a curses colour pair (ignored without colours). */
void tui_canvas_render(const qb_canvas *c, WINDOW *win, int y, int x);

#endif
