/* plot.h — small charts as plain data, rendered as pictures by cairo (PNG, SVG, PDF:
 * antialiased lines, a sans-serif font; plot_cairo.c) and as terminal text on the braille
 * canvas (canvas.h; plot_text.c). Used by Lua recipes (qb.plot.*) and the TUI; no curses,
 * no Lua here. A plot is one or more series of (x, y)
 * points, each drawn as lines, points, steps (a staircase) or bars (a histogram). */
#ifndef QB_PLOT_H
#define QB_PLOT_H

#include "../qb.h"

typedef enum {
    QB_PLOT_LINES = 0,  /* points joined by straight lines, with markers when few */
    QB_PLOT_POINTS,     /* markers only (scatter) */
    QB_PLOT_STEPS,      /* staircase: horizontal to the next x, then vertical */
    QB_PLOT_BARS,       /* one bar per point from 0 to y, centred on x, as wide as the spacing */
} qb_plot_style;

typedef struct {
    const char *label;    /* legend text (NULL: none); borrowed */
    qb_plot_style style;
    bool dashed;          /* lines/steps drawn dashed (e.g. the y = x reference) */
    int n;                /* points */
    const double *x, *y;  /* n values each, borrowed; non-finite points are skipped */
} qb_plot_series;

typedef struct {
    const char *title, *xlabel, *ylabel;  /* may be NULL; borrowed */
    const qb_plot_series *series;
    int n_series;
    bool log_y;           /* logarithmic y axis (non-positive values are skipped) */
    int width, height;    /* image size in pixels (0: 800 × 480) */
} qb_plot;

/* Check a plot: at least one series, n >= 0, x/y non-NULL when n > 0, sizes 100..8000.
 * QB_ERR_ARG with a message naming the series otherwise. */
qb_status qb_plot_check(qb_ctx *ctx, const qb_plot *p);

/* The plot as an SVG document (malloc'd, NUL-terminated; caller frees), or NULL when out of
 * memory. p must pass qb_plot_check. Text is drawn as glyph outlines; each series is one
 * <path> (plus one for its markers, see plot_cairo.c). */
char *qb_plot_svg(const qb_plot *p);

/* The plot as 8-bit RGB pixels (width × height × 3, row-major; malloc'd, caller frees), or NULL
 * when out of memory. p must pass qb_plot_check. */
uint8_t *qb_plot_raster(const qb_plot *p, int *width, int *height);

/* Write the plot to path atomically, as SVG, PNG or PDF (qb_plot_write picks by the
 * extension ".svg" / ".png" / ".pdf", any case; others are QB_ERR_ARG). The picture is
 * width × height pixels (PNG, SVG) or points (PDF). On failure the target is left as it was
 * and the message names path. */
qb_status qb_plot_write_svg(qb_ctx *ctx, const qb_plot *p, const char *path);
qb_status qb_plot_write_png(qb_ctx *ctx, const qb_plot *p, const char *path);
qb_status qb_plot_write_pdf(qb_ctx *ctx, const qb_plot *p, const char *path);
qb_status qb_plot_write(qb_ctx *ctx, const qb_plot *p, const char *path);

/* The plot for a terminal: rows lines of cols columns of braille cells (2 × 4 dots each)
 * framed by y-axis labels on the left and x-axis labels below, plus a title line and a
 * legend when there are labels. UTF-8, lines separated by '\n', no trailing newline.
 * malloc'd (caller frees); NULL when out of memory. cols >= 20 and rows >= 4 are enforced by
 * clamping. Series are told apart by their order in the legend ("⠿ label" markers are not
 * distinguishable in one colour, so each series after the first is drawn sparser). */
char *qb_plot_text(const qb_plot *p, int cols, int rows);

/* Shared layout helpers (plot.c). */
typedef struct {
    double x0, x1, y0, y1;   /* data range after padding; y in log10 units when log_y */
} qb_plot_bounds;
void qb_plot_bounds_compute(const qb_plot *p, qb_plot_bounds *b);
/* Up to max "nice" tick values in [lo, hi] (steps of 1, 2, 5 × 10^k); returns the count. */
int qb_plot_ticks(double lo, double hi, int max, double *out);
/* A short tick label ("0.5", "1e-05", "120") into buf. */
void qb_plot_tick_label(double v, bool log, char *buf, size_t cap);
/* The y value as drawn (log10 when log_y; NAN when it cannot be drawn). */
double qb_plot_y(const qb_plot *p, double y);
/* Where the legend goes: the corner (0 top-right, 1 top-left, 2 bottom-right, 3 bottom-left)
 * whose box of fw × fh (fractions of the plot area) covers the fewest data points. */
int qb_plot_legend_corner(const qb_plot *p, const qb_plot_bounds *b, double fw, double fh);
/* Bar half-width of a BARS series (half the mean spacing of its x values; 0.5 for one bar). */
double qb_plot_bar_half(const qb_plot_series *s);

#endif
