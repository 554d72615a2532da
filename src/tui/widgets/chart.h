/* chart.h — a framed plot for the panels: a box with a title and a legend on its top edge,
 * tick labels on the y axis (left) and x axis (bottom), and core's braille canvas inside on which
 * values are placed through the chart's ranges (linear, or log10(1 + y) for counts). */
#ifndef QB_TUI_CHART_H
#define QB_TUI_CHART_H

#include "tui/widgets/braille.h"

typedef struct {
    double xlo, xhi, ylo, yhi;
    bool logy;
    qb_canvas cv;
    int py, px; /* window position of the canvas' top-left cell */
} tui_chart;

typedef struct {
    const char *label;
    int color;
} tui_legend;

/* Frame the area (y, x, h rows, w columns) of win; false (nothing to draw) when it is too
 * small or out of memory. Call tui_chart_end after drawing. */
bool tui_chart_begin(tui_chart *c, WINDOW *win, int y, int x, int h, int w, const char *title, const tui_legend *legend,
                     int n_legend, double xlo, double xhi, double ylo, double yhi, bool logy);
/* Dot coordinates of a value (clamped to the canvas). */
int tui_chart_dx(const tui_chart *c, double v);
int tui_chart_dy(const tui_chart *c, double v);
/* Render the canvas into win and free it. */
void tui_chart_end(tui_chart *c, WINDOW *win);
/* Compact number for ticks and tables: "0.125", "-1.5e-03", "12k", "3.4M". */
const char *tui_num(double v, char *buf, size_t cap);

#endif
