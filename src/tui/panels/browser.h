/* browser.h — the tensor browser panel: layers folding open to their tensors, each row with
 * its current format, bits per weight, bytes and (once a scan exists) a heat mark. */
#ifndef QB_TUI_BROWSER_H
#define QB_TUI_BROWSER_H

#include "tui/controllers/session.h"

#include <curses.h>

typedef struct {
    int tensor; /* >= 0: a tensor row; -1: the header of layer `layer` */
    int layer;  /* layer of the tensor, or -1 outside the layers */
} tui_row;

/* The visible rows into rows (cap >= n_tensors + n_layers); returns their count. */
int tui_browser_rows(const tui_session *s, tui_row *rows, int cap);
/* Put the cursor on the selected tensor's row. */
void tui_browser_cursor_to_sel(tui_session *s);
/* Move the cursor by delta rows; landing on a tensor selects it. */
void tui_browser_move(tui_session *s, int delta);
/* Fold (open = 0), unfold (1) or toggle (-1) the layer under the cursor. */
void tui_browser_fold(tui_session *s, int open);
/* Draw into win (scrolls so the cursor stays visible). */
void tui_browser_draw(WINDOW *win, tui_session *s);

#endif
