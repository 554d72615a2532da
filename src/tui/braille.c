/* braille.c — the braille dot canvas (braille.h). */
#include "braille.h"
#include "crt.h"

#include <stdlib.h>
#include <wchar.h>

bool tui_canvas_init(tui_canvas *c, int w, int h)
{
    c->w = w < 1 ? 1 : w;
    c->h = h < 1 ? 1 : h;
    c->bits = calloc((size_t)c->w * c->h, 1);
    c->color = calloc((size_t)c->w * c->h, 1);
    if (!c->bits || !c->color) {
        tui_canvas_free(c);
        return false;
    }
    return true;
}

void tui_canvas_free(tui_canvas *c)
{
    free(c->bits);
    free(c->color);
    c->bits = c->color = NULL;
    c->w = c->h = 0;
}

void tui_canvas_dot(tui_canvas *c, int x, int y, int color)
{
    if (!c->bits || x < 0 || y < 0 || x >= 2 * c->w || y >= 4 * c->h) return;
    int row = 4 * c->h - 1 - y; /* from the top */
    int cx = x / 2, cy = row / 4, dx = x % 2, dy = row % 4;
    static const uint8_t bit[4][2] = {{0x01, 0x08}, {0x02, 0x10}, {0x04, 0x20}, {0x40, 0x80}};
    c->bits[cy * c->w + cx] |= bit[dy][dx];
    c->color[cy * c->w + cx] = (uint8_t)color;
}

void tui_canvas_line(tui_canvas *c, int x0, int y0, int x1, int y1, int color, int dash)
{
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx + dy;
    for (int k = 0;; k++) {
        if (dash <= 0 || (k / dash) % 2 == 0) tui_canvas_dot(c, x0, y0, color);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * err;
        if (e2 >= dy) err += dy, x0 += sx;
        if (e2 <= dx) err += dx, y0 += sy;
        if (k > 100000) break;
    }
}

void tui_canvas_render(const tui_canvas *c, WINDOW *win, int y, int x)
{
    for (int cy = 0; cy < c->h; cy++)
        for (int cx = 0; cx < c->w; cx++) {
            uint8_t b = c->bits[cy * c->w + cx];
            if (!b) continue;
            wchar_t wc[2] = {(wchar_t)(0x2800 + b), 0};
            cchar_t cc;
            int pair = has_colors() ? c->color[cy * c->w + cx] : 0;
            setcchar(&cc, wc, 0, (short)pair, NULL);
            mvwadd_wch(win, y + cy, x + cx, &cc);
        }
}
