/* braille.h — a dot canvas drawn with Unicode braille characters (U+2800–U+28FF): each
 * terminal cell holds 2×4 dots, so a 60×10 cell area is a 120×40 dot plot. Dot (0, 0) is the
 * bottom-left corner; each cell takes the colour of the last dot drawn in it. */
#ifndef QB_TUI_BRAILLE_H
#define QB_TUI_BRAILLE_H

#include <curses.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    int w, h;         /* size in cells; dots are 2w × 4h */
    uint8_t *bits;    /* w*h braille patterns; owned */
    uint8_t *color;   /* w*h colour pairs; owned */
} tui_canvas;

/* A cleared canvas of w × h cells (both >= 1); false when out of memory. Free with
 * tui_canvas_free (idempotent). */
bool tui_canvas_init(tui_canvas *c, int w, int h);
void tui_canvas_free(tui_canvas *c);
/* Set one dot (outside the canvas: ignored). */
void tui_canvas_dot(tui_canvas *c, int x, int y, int color);
/* A line between two dots; dash > 0 draws dash dots on, dash off. */
void tui_canvas_line(tui_canvas *c, int x0, int y0, int x1, int y1, int color, int dash);
/* The canvas into window win with its top-left cell at (y, x). */
void tui_canvas_render(const tui_canvas *c, WINDOW *win, int y, int x);

#endif
