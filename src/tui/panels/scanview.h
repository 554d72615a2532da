/* scanview.h — the sensitivity view: tensors, or layers, sorted by their scan value (the heat
 * marks: KLD or another score a scan delivered through qb.heat or the scan module) as a bar
 * chart; moving the cursor and pressing Enter jumps to that tensor (or the layer's most
 * sensitive tensor) in the browser; l cycles per tensor → per layer (sum) → per layer (max). */
#ifndef QB_TUI_SCANVIEW_H
#define QB_TUI_SCANVIEW_H

#include "tui/controllers/session.h"

#include <curses.h>

/* How the view groups the heat values (s->scan_agg). */
enum { TUI_SCAN_TENSOR, TUI_SCAN_LAYER_SUM, TUI_SCAN_LAYER_MAX, TUI_SCAN_MODES };

/* One bar: a tensor (layer = -1 for tensors outside the layers in the per-layer modes, or any
 * tensor in the per-tensor mode) or a layer (tensor = -1). */
typedef struct {
    int tensor, layer;
    double value;
} tui_scan_row;

/* The rows of the view in s->scan_agg's grouping, largest value first (ties: lower index
 * first), into out (n_tensors entries); returns their count. Tensors without a heat value
 * are left out; a layer's value is the sum or the maximum over its tensors that have one. */
int tui_scan_rows(const tui_session *s, tui_scan_row *out);
/* The tensor a row jumps to: its own, or the layer's most sensitive one. */
int tui_scan_target(const tui_session *s, const tui_scan_row *r);
/* First row drawn when the cursor is on row cursor in a window of H lines. */
int tui_scanview_top(int H, int cursor);
/* Draw the view into win with the cursor on row cursor. */
void tui_scanview_draw(WINDOW *win, const tui_session *s, int cursor);

#endif
