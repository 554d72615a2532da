/* plots.h — the three live plots of the selected tensor at the current choice, as in the
 * classic quantization demo: the histogram of the original values with the dequantized ones
 * overlaid, the mapping original → quantized (a staircase beside a dashed y = x), and the
 * histogram of the error. Draws core's analysis (histograms, mapping points); computes nothing. */
#ifndef QB_TUI_PLOTS_H
#define QB_TUI_PLOTS_H

#include "tui/controllers/session.h"

#include <curses.h>

/* The choice as one line: "RTN asym · 4 bit · group 64 (int4-g64-asym)". */
const char *tui_choice_text(const tui_session *s, char *buf, size_t cap);
/* Draw the header and the three plots into win. */
void tui_plots_draw(WINDOW *win, const tui_session *s);
/* The three plots stacked (or side by side when wide) in the area of win. */
void tui_plots_area(WINDOW *win, const tui_session *s, int y, int x, int h, int w);
/* Histogram bins that fill a plot of w columns (two dots per column). */
int tui_plots_bins(int w);

#endif
