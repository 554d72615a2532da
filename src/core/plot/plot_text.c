/* plot_text.c — a plot for a terminal: series drawn on the braille canvas (canvas.h), y tick
 * labels on the left, x range below, a title and a legend. Bars fill their column from the
 * baseline up. */
#include "plot.h"
#include "canvas.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    qb_canvas d;
    if (!qb_canvas_init(&d, pc, rows)) return NULL;
    int dw = 2 * pc, dh = 4 * rows; /* dots */
    qb_plot_bounds b;
    qb_plot_bounds_compute(p, &b);
    double sx = (dw - 1) / (b.x1 - b.x0), sy = (dh - 1) / (b.y1 - b.y0);
#define DX(x) ((int)lround(((x) - b.x0) * sx))
#define DY(y) ((int)lround(((y) - b.y0) * sy))
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
                for (int x = xa; x <= xb; x++) qb_canvas_line(&d, x, base, x, yy, i, 1, 0);
            }
            continue;
        }
        bool have = false;
        int lx = 0, ly = 0;
        for (int k = 0; k < s->n; k++) {
            double y = qb_plot_y(p, s->y[k]);
            if (!isfinite(s->x[k]) || !isfinite(y)) continue;
            int x1 = DX(s->x[k]), y1 = DY(y);
            if (s->style == QB_PLOT_POINTS || !have) qb_canvas_dot(&d, x1, y1, i);
            if (have && s->style == QB_PLOT_LINES) qb_canvas_line(&d, lx, ly, x1, y1, i, 1, skip);
            if (have && s->style == QB_PLOT_STEPS) {
                qb_canvas_line(&d, lx, ly, x1, ly, i, 1, skip);
                qb_canvas_line(&d, x1, ly, x1, y1, i, 1, skip);
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
        qb_canvas_free(&d);
        return NULL;
    }
    if (p->title) o += snprintf(o, 200, "%.*s\n", 190, p->title);
    char lab[32];
    for (int r = 0; r < rows; r++) {
        /* label the top, middle and bottom rows with the y value at the row's centre */
        if (r == 0 || r == rows - 1 || r == rows / 2) {
            double yv = b.y1 - (r * 4 + 1.5) / (dh - 1) * (b.y1 - b.y0);
            if (r == 0) yv = b.y1;
            if (r == rows - 1) yv = b.y0;
            qb_plot_tick_label(yv, p->log_y, lab, sizeof lab);
            o += sprintf(o, "%*.*s ", LW - 1, LW - 1, lab);
        } else {
            o += sprintf(o, "%*s ", LW - 1, "");
        }
        put_utf8(&o, 0x2502); /* │ */
        o += qb_canvas_row_utf8(&d, r, o);
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
    qb_canvas_free(&d);
    return out;
}
