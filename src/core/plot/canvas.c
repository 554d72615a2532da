/* canvas.c — the braille dot canvas (canvas.h). */
#include "canvas.h"

#include <stdlib.h>

bool qb_canvas_init(qb_canvas *c, int w, int h)
{
    c->w = w < 1 ? 1 : w;
    c->h = h < 1 ? 1 : h;
    c->bits = calloc((size_t)c->w * c->h, 1);
    c->color = calloc((size_t)c->w * c->h, 1);
    if (!c->bits || !c->color) {
        qb_canvas_free(c);
        return false;
    }
    return true;
}

void qb_canvas_free(qb_canvas *c)
{
    free(c->bits);
    free(c->color);
    c->bits = c->color = NULL;
    c->w = c->h = 0;
}

void qb_canvas_dot(qb_canvas *c, int x, int y, int color)
{
    if (!c->bits || x < 0 || y < 0 || x >= 2 * c->w || y >= 4 * c->h) return;
    static const uint8_t bit[4][2] = {{0x01, 0x08}, {0x02, 0x10}, {0x04, 0x20}, {0x40, 0x80}};
    int row = 4 * c->h - 1 - y; /* dot rows from the top */
    size_t cell = (size_t)(row / 4) * c->w + x / 2;
    c->bits[cell] |= bit[row % 4][x % 2];
    c->color[cell] = (uint8_t)color;
}

void qb_canvas_line(qb_canvas *c, int x0, int y0, int x1, int y1, int color, int on, int off)
{
    if (on < 1) on = 1;
    if (off < 0) off = 0;
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx + dy;
    for (long k = 0;; k++) {
        if (off == 0 || k % (on + off) < on) qb_canvas_dot(c, x0, y0, color);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * err;
        if (e2 >= dy) err += dy, x0 += sx;
        if (e2 <= dx) err += dx, y0 += sy;
    }
}

unsigned qb_canvas_cell(const qb_canvas *c, int cx, int cy)
{
    if (!c->bits || cx < 0 || cy < 0 || cx >= c->w || cy >= c->h) return 0x2800;
    return 0x2800u + c->bits[(size_t)cy * c->w + cx];
}

size_t qb_canvas_row_utf8(const qb_canvas *c, int cy, char *out)
{
    char *o = out;
    for (int cx = 0; cx < c->w; cx++) {
        unsigned cp = qb_canvas_cell(c, cx, cy); /* U+2800..U+28FF: three bytes */
        *o++ = (char)(0xE0 | cp >> 12);
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return (size_t)(o - out);
}
