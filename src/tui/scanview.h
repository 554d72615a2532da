/* scanview.h — the sensitivity view: tensors sorted by their scan value (the heat marks:
 * KLD or another score a scan delivered through qb.heat or the scan module) as a bar chart;
 * moving the cursor and pressing Enter jumps to that tensor in the browser. */
#ifndef QB_TUI_SCANVIEW_H
#define QB_TUI_SCANVIEW_H

#include "session.h"

#include <curses.h>

/* Tensor indices with a heat value, most sensitive first, into out (n_tensors entries);
 * returns the count. */
int tui_scan_order(const tui_session *s, int *out);
/* Draw the view into win with the cursor on row cursor. */
void tui_scanview_draw(WINDOW *win, const tui_session *s, int cursor);

#endif
