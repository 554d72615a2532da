/* canvas.h — the braille dot canvas every text plot draws on: the terminal plots of
 * qb_plot_text and the TUI's charts (which only copy its cells to the screen with curses).
 * Each character cell holds 2 × 4 dots (Unicode braille, U+2800 + the dot bits), so a 60 × 10
 * cell canvas is a 120 × 40 dot picture. Dot (0, 0) is the bottom-left corner; each cell
 * remembers the colour of the last dot set in it (a small index the caller interprets). */
#ifndef QB_PLOT_CANVAS_H
#define QB_PLOT_CANVAS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int w, h;       /* size in cells; dots are 2w × 4h */
    uint8_t *bits;  /* (h, w) braille dot patterns, row 0 at the top; owned */
    uint8_t *color; /* (h, w) colour of the last dot set in each cell; owned */
} qb_canvas;

/* A cleared canvas of w × h cells (values below 1 count as 1); false when out of memory (the
 * canvas is then empty and safe to free). Free with qb_canvas_free (idempotent). */
bool qb_canvas_init(qb_canvas *c, int w, int h);
void qb_canvas_free(qb_canvas *c);

/* Set dot (x, y), x to the right and y up from the bottom-left; dots outside are ignored. */
void qb_canvas_dot(qb_canvas *c, int x, int y, int color);

/* A straight line of dots from (x0, y0) to (x1, y1), both ends included (Bresenham). A
 * pattern of on dots drawn then off dots skipped repeats along it; off = 0 draws it solid
 * (on 3, off 3: dashes; on 1, off 2: dotted). */
void qb_canvas_line(qb_canvas *c, int x0, int y0, int x1, int y1, int color, int on, int off);

/* The code point of cell (cx, cy), cy counted from the top row: U+2800 + its dot bits (a
 * blank braille cell when no dot is set). */
unsigned qb_canvas_cell(const qb_canvas *c, int cx, int cy);

/* Row cy (from the top) as UTF-8, w braille characters (3 bytes each), at out (3w bytes of
 * room). Returns the bytes written; no terminating NUL. */
size_t qb_canvas_row_utf8(const qb_canvas *c, int cy, char *out);

#endif
