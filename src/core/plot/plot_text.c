/* plot_text.c — a plot for a terminal: series drawn with braille dots (each character cell
 * holds 2 × 4 dots, U+2800 + dot bits), y tick labels on the left, x range below, a title
 * and a legend. Bars fill their column from the baseline up. */
#include "plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t *bits; /* cols × rows cells of braille dot bits */
    int cols, rows;
    int w, h;      /* dots: 2·cols × 4·rows */
} dots;

static void set_dot(dots *d, int x, int y)
{
    static const uint8_t bit[4][2] = {{0x01, 0x08}, {0x02, 0x10}, {0x04, 0x20}, {0x40, 0x80}};
    if (x < 0 || y < 0 || x >= d->w || y >= d->h) return;
    d->bits[(y / 4) * d->cols + x / 2] |= bit[y % 4][x % 2];
}

static void dot_line(dots *d, int x0, int y0, int x1, int y1, int skip)
{
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx + dy, k = 0;
    for (;;) {
        if (!skip || (k++ % (skip + 1)) == 0) set_dot(d, x0, y0);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * err;
        if (e2 >= dy) err += dy, x0 += sx;
        if (e2 <= dx) err += dx, y0 += sy;
    }
}

static void put_utf8(char **o, unsigned cp)
{
    char *p = *o;
    if (cp < 0x80) *p++ = (char)cp;
    else if (cp < 0x800) *p++ = (char)(0xC0 | cp >> 6), *p++ = (char)(0x80 | (cp & 0x3F));
    else *p++ = (char)(0xE0 | cp >> 12), *p++ = (char)(0x80 | ((cp >> 6) & 0x3F)), *p++ = (char)(0x80 | (cp & 0x3F));
    *o = p;
}

char *qb_plot_text(const qb_plot *p, int cols, int rows)
{
    if (cols < 20) cols = 20;
    if (rows < 4) rows = 4;
    enum { LW = 10 }; /* y label width */
    int pc = cols - LW - 1;
    dots d = {calloc((size_t)pc * rows, 1), pc, rows, pc * 2, rows * 4};
    if (!d.bits) return NULL;
    qb_plot_bounds b;
    qb_plot_bounds_compute(p, &b);
    double sx = (d.w - 1) / (b.x1 - b.x0), sy = (d.h - 1) / (b.y1 - b.y0);
#define DX(x) ((int)lround(((x) - b.x0) * sx))
#define DY(y) ((d.h - 1) - (int)lround(((y) - b.y0) * sy))
    for (int i = 0; i < p->n_series; i++) {
        const qb_plot_series *s = &p->series[i];
        int skip = s->dashed ? 2 : i > 0 ? 1 : 0; /* later series dotted, so they differ */
        if (s->style == QB_PLOT_BARS) {
            double half = qb_plot_bar_half(s);
            int base = DY(p->log_y ? b.y0 : fmax(b.y0, 0));
            for (int k = 0; k < s->n; k++) {
                double y = qb_plot_y(p, s->y[k]);
                if (!isfinite(s->x[k]) || !isfinite(y)) continue;
                int xa = DX(s->x[k] - half), xb = DX(s->x[k] + half) - 1, yy = DY(y);
                if (xb < xa) xb = xa;
                for (int x = xa; x <= xb; x++) dot_line(&d, x, base, x, yy, 0);
            }
            continue;
        }
        bool have = false;
        int lx = 0, ly = 0;
        for (int k = 0; k < s->n; k++) {
            double y = qb_plot_y(p, s->y[k]);
            if (!isfinite(s->x[k]) || !isfinite(y)) continue;
            int x1 = DX(s->x[k]), y1 = DY(y);
            if (s->style == QB_PLOT_POINTS || !have) set_dot(&d, x1, y1);
            if (have && s->style == QB_PLOT_LINES) dot_line(&d, lx, ly, x1, y1, skip);
            if (have && s->style == QB_PLOT_STEPS) {
                dot_line(&d, lx, ly, x1, ly, skip);
                dot_line(&d, x1, ly, x1, y1, skip);
            }
            have = true;
            lx = x1;
            ly = y1;
        }
    }
#undef DX
#undef DY
    size_t cap = (size_t)(rows + 4 + p->n_series) * (size_t)(cols * 3 + 256) + 1024;
    char *out = malloc(cap), *o = out;
    if (!out) {
        free(d.bits);
        return NULL;
    }
    if (p->title) o += snprintf(o, 200, "%.*s\n", 190, p->title);
    char lab[32];
    for (int r = 0; r < rows; r++) {
        /* label the top, middle and bottom rows with the y value at the row's centre */
        if (r == 0 || r == rows - 1 || r == rows / 2) {
            double yv = b.y1 - (r * 4 + 1.5) / (d.h - 1) * (b.y1 - b.y0);
            if (r == 0) yv = b.y1;
            if (r == rows - 1) yv = b.y0;
            qb_plot_tick_label(yv, p->log_y, lab, sizeof lab);
            o += sprintf(o, "%*.*s ", LW - 1, LW - 1, lab);
        } else {
            o += sprintf(o, "%*s ", LW - 1, "");
        }
        put_utf8(&o, 0x2502); /* │ */
        for (int c = 0; c < pc; c++) put_utf8(&o, 0x2800 + d.bits[r * pc + c]);
        *o++ = '\n';
    }
    o += sprintf(o, "%*s ", LW - 1, "");
    put_utf8(&o, 0x2514); /* └ */
    for (int c = 0; c < pc; c++) put_utf8(&o, 0x2500);
    *o++ = '\n';
    char l0[32], l1[32];
    qb_plot_tick_label(b.x0, false, l0, sizeof l0);
    qb_plot_tick_label(b.x1, false, l1, sizeof l1);
    int gap = pc - (int)strlen(l0) - (int)strlen(l1);
    o += sprintf(o, "%*s %s%*s%s", LW, "", l0, gap > 1 ? gap : 1, "", l1);
    if (p->xlabel) o += snprintf(o, 200, "\n%*s %.*s", LW, "", 180, p->xlabel);
    for (int i = 0; i < p->n_series; i++)
        if (p->series[i].label && p->n_series > 1)
            o += snprintf(o, 220, "\n%*s %s %.*s", LW, "", i == 0 ? "━━" : p->series[i].dashed ? "╌╌" : "··", 180,
                          p->series[i].label);
    *o = 0;
    free(d.bits);
    return out;
}
