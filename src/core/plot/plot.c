/* plot.c — what every plot renderer shares: checking a plot, the data bounds, nice tick
 * values and labels, and writing a rendering to a file by its extension. */
#include "plot.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

qb_status qb_plot_check(qb_ctx *ctx, const qb_plot *p)
{
    if (!p || p->n_series < 1 || !p->series) return qb_fail(ctx, QB_ERR_ARG, "plot: no series to draw");
    if ((p->width && (p->width < 100 || p->width > 8000)) || (p->height && (p->height < 100 || p->height > 8000)))
        return qb_fail(ctx, QB_ERR_ARG, "plot: size %dx%d out of range 100..8000", p->width, p->height);
    for (int i = 0; i < p->n_series; i++) {
        const qb_plot_series *s = &p->series[i];
        if (s->n < 0 || (s->n > 0 && (!s->x || !s->y)))
            return qb_fail(ctx, QB_ERR_ARG, "plot: series %d (%s) has no points array", i + 1, s->label ? s->label : "");
        if ((unsigned)s->style > QB_PLOT_BARS) return qb_fail(ctx, QB_ERR_ARG, "plot: series %d has an unknown style", i + 1);
    }
    return QB_OK;
}

double qb_plot_y(const qb_plot *p, double y)
{
    if (!isfinite(y)) return NAN;
    if (p->log_y) return y > 0 ? log10(y) : NAN;
    return y;
}

double qb_plot_bar_half(const qb_plot_series *s)
{
    if (s->n < 2) return 0.5;
    double w = (s->x[s->n - 1] - s->x[0]) / (s->n - 1);
    return fabs(w) > 0 ? fabs(w) / 2 : 0.5;
}

void qb_plot_bounds_compute(const qb_plot *p, qb_plot_bounds *b)
{
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int i = 0; i < p->n_series; i++) {
        const qb_plot_series *s = &p->series[i];
        double half = s->style == QB_PLOT_BARS ? qb_plot_bar_half(s) : 0;
        for (int k = 0; k < s->n; k++) {
            double y = qb_plot_y(p, s->y[k]);
            if (!isfinite(s->x[k]) || !isfinite(y)) continue;
            x0 = fmin(x0, s->x[k] - half);
            x1 = fmax(x1, s->x[k] + half);
            y0 = fmin(y0, y);
            y1 = fmax(y1, y);
        }
        if (s->style == QB_PLOT_BARS && !p->log_y && s->n > 0) {
            y0 = fmin(y0, 0);
            y1 = fmax(y1, 0);
        }
    }
    if (!isfinite(x0)) x0 = 0, x1 = 1;
    if (!isfinite(y0)) y0 = 0, y1 = 1;
    if (x1 - x0 <= 0) x0 -= 0.5, x1 += 0.5;
    if (y1 - y0 <= 0) y0 -= 0.5, y1 += 0.5;
    double pad = (y1 - y0) * 0.05;
    bool bars_from_zero = false;
    for (int i = 0; i < p->n_series; i++) bars_from_zero |= p->series[i].style == QB_PLOT_BARS;
    b->x0 = x0;
    b->x1 = x1;
    b->y0 = bars_from_zero && !p->log_y && y0 == 0 ? 0 : y0 - pad;
    b->y1 = y1 + pad;
}

int qb_plot_ticks(double lo, double hi, int max, double *out)
{
    if (!(hi > lo) || max < 2) return 0;
    double raw = (hi - lo) / (max - 1), mag = pow(10, floor(log10(raw))), step = mag;
    for (int k = 0; k < 3; k++) {
        static const double mult[] = {1, 2, 5};
        step = mult[k] * mag;
        if ((hi - lo) / step <= max - 1) break;
        step = 10 * mag;
    }
    int n = 0;
    for (double v = ceil(lo / step) * step; v <= hi + step * 1e-9 && n < max + 1; v += step) {
        if (fabs(v) < step * 1e-9) v = 0;
        out[n++] = v;
    }
    return n;
}

void qb_plot_tick_label(double v, bool log, char *buf, size_t cap)
{
    if (log) v = pow(10, v);
    double a = fabs(v);
    if (a != 0 && (a < 1e-3 || a >= 1e5)) snprintf(buf, cap, "%.0e", v);
    else snprintf(buf, cap, "%.4g", v);
}

int qb_plot_legend_corner(const qb_plot *p, const qb_plot_bounds *b, double fw, double fh)
{
    int best = 0;
    long best_n = -1;
    for (int c = 0; c < 4; c++) {
        double fx0 = (c & 1) ? 0 : 1 - fw, fy0 = (c & 2) ? 0 : 1 - fh; /* fractions from the bottom-left */
        long n = 0;
        for (int i = 0; i < p->n_series; i++) {
            const qb_plot_series *s = &p->series[i];
            for (int k = 0; k < s->n; k++) {
                double y = qb_plot_y(p, s->y[k]);
                if (!isfinite(y) || !isfinite(s->x[k])) continue;
                double fx = (s->x[k] - b->x0) / (b->x1 - b->x0), fy = (y - b->y0) / (b->y1 - b->y0);
                if (s->style == QB_PLOT_BARS) fy = fy > fy0 ? fy0 + fh / 2 : fy; /* a bar covers below its top */
                n += fx >= fx0 && fx <= fx0 + fw && fy >= fy0 && fy <= fy0 + fh;
            }
        }
        if (best_n < 0 || n < best_n) best = c, best_n = n;
    }
    return best;
}

qb_status qb_plot_write(qb_ctx *ctx, const qb_plot *p, const char *path)
{
    const char *dot = strrchr(path, '.');
    if (dot && !strcasecmp(dot, ".svg")) return qb_plot_write_svg(ctx, p, path);
    if (dot && !strcasecmp(dot, ".png")) return qb_plot_write_png(ctx, p, path);
    if (dot && !strcasecmp(dot, ".pdf")) return qb_plot_write_pdf(ctx, p, path);
    return qb_fail(ctx, QB_ERR_ARG, "%s: plot files must end in .svg, .png or .pdf", path);
}
