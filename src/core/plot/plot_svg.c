/* plot_svg.c — a plot as an SVG document: axes with nice ticks and a grid, each series as a
 * polyline, staircase, markers or bars in its own colour, a legend, title and axis labels. */
#include "plot.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/atomic_file.h"

typedef struct {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void addf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void addf(sbuf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (b->p && b->n + (size_t)n < b->cap) {
            b->n += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->n + (size_t)n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

static void add_text(sbuf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '<') addf(b, "&lt;");
        else if (*s == '>') addf(b, "&gt;");
        else if (*s == '&') addf(b, "&amp;");
        else if (*s == '"') addf(b, "&quot;");
        else addf(b, "%c", *s);
    }
}

static const char *colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};

typedef struct {
    double l, r, t, bot; /* plot area in pixels */
    qb_plot_bounds d;
} frame;

static double px(const frame *f, double x) { return f->l + (x - f->d.x0) / (f->d.x1 - f->d.x0) * (f->r - f->l); }
static double py(const frame *f, double y) { return f->bot - (y - f->d.y0) / (f->d.y1 - f->d.y0) * (f->bot - f->t); }

static void series_svg(sbuf *b, const qb_plot *p, const frame *f, int i)
{
    const qb_plot_series *s = &p->series[i];
    const char *col = colours[i % 8];
    const char *dash = s->dashed ? " stroke-dasharray=\"6,4\"" : "";
    if (s->style == QB_PLOT_BARS) {
        double half = qb_plot_bar_half(s), base = py(f, p->log_y ? f->d.y0 : fmax(f->d.y0, 0));
        for (int k = 0; k < s->n; k++) {
            double y = qb_plot_y(p, s->y[k]);
            if (!isfinite(s->x[k]) || !isfinite(y)) continue;
            double x0 = px(f, s->x[k] - half), x1 = px(f, s->x[k] + half), yy = py(f, y);
            addf(b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\" fill-opacity=\"0.55\"/>\n",
                 x0, fmin(yy, base), fmax(x1 - x0, 0.5), fabs(base - yy), col);
        }
        return;
    }
    if (s->style == QB_PLOT_POINTS || (s->style == QB_PLOT_LINES && s->n <= 24 && !s->dashed)) {
        for (int k = 0; k < s->n; k++) {
            double y = qb_plot_y(p, s->y[k]);
            if (!isfinite(s->x[k]) || !isfinite(y)) continue;
            addf(b, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%s\" fill=\"%s\"/>\n", px(f, s->x[k]), py(f, y),
                 s->style == QB_PLOT_POINTS ? "2.5" : "3.5", col);
        }
        if (s->style == QB_PLOT_POINTS) return;
    }
    addf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", col, dash);
    bool have = false;
    double lasty = 0;
    for (int k = 0; k < s->n; k++) {
        double y = qb_plot_y(p, s->y[k]);
        if (!isfinite(s->x[k]) || !isfinite(y)) continue;
        if (s->style == QB_PLOT_STEPS && have) addf(b, "%.2f,%.2f ", px(f, s->x[k]), py(f, lasty));
        addf(b, "%.2f,%.2f ", px(f, s->x[k]), py(f, y));
        have = true;
        lasty = y;
    }
    addf(b, "\"/>\n");
}

char *qb_plot_svg(const qb_plot *p)
{
    int W = p->width ? p->width : 800, H = p->height ? p->height : 480;
    frame f = {70, W - 20.0, p->title ? 40 : 20, H - 50.0, {0, 0, 0, 0}};
    qb_plot_bounds_compute(p, &f.d);
    sbuf b = {0};
    addf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
             "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
             "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
         W, H, W, H);
    if (p->title) {
        addf(&b, "<text x=\"%d\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">", W / 2);
        add_text(&b, p->title);
        addf(&b, "</text>\n");
    }
    double t[16];
    char lab[32];
    int nt = qb_plot_ticks(f.d.x0, f.d.x1, 8, t);
    for (int i = 0; i < nt; i++) {
        qb_plot_tick_label(t[i], false, lab, sizeof lab);
        addf(&b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#e5e5e5\"/>\n", px(&f, t[i]), f.t,
             px(&f, t[i]), f.bot);
        addf(&b, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">%s</text>\n", px(&f, t[i]), f.bot + 16, lab);
    }
    nt = qb_plot_ticks(f.d.y0, f.d.y1, 7, t);
    for (int i = 0; i < nt; i++) {
        qb_plot_tick_label(t[i], p->log_y, lab, sizeof lab);
        addf(&b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#e5e5e5\"/>\n", f.l, py(&f, t[i]), f.r,
             py(&f, t[i]));
        addf(&b, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">%s</text>\n", f.l - 6, py(&f, t[i]) + 4, lab);
    }
    addf(&b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" stroke=\"#333\"/>\n", f.l, f.t,
         f.r - f.l, f.bot - f.t);
    addf(&b, "<clipPath id=\"area\"><rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"/></clipPath>\n<g "
             "clip-path=\"url(#area)\">\n",
         f.l, f.t, f.r - f.l, f.bot - f.t);
    for (int i = 0; i < p->n_series; i++) series_svg(&b, p, &f, i);
    addf(&b, "</g>\n");
    if (p->xlabel) {
        addf(&b, "<text x=\"%.2f\" y=\"%d\" text-anchor=\"middle\">", (f.l + f.r) / 2, H - 12);
        add_text(&b, p->xlabel);
        addf(&b, "</text>\n");
    }
    if (p->ylabel) {
        addf(&b, "<text transform=\"translate(16,%.2f) rotate(-90)\" text-anchor=\"middle\">", (f.t + f.bot) / 2);
        add_text(&b, p->ylabel);
        addf(&b, "</text>\n");
    }
    int n_lab = 0;
    size_t max_len = 0;
    for (int i = 0; i < p->n_series; i++)
        if (p->series[i].label) {
            n_lab++;
            max_len = strlen(p->series[i].label) > max_len ? strlen(p->series[i].label) : max_len;
        }
    if (n_lab > 0) {
        double bw = (double)max_len * 7 + 36, bh = n_lab * 18 + 8;
        int corner = qb_plot_legend_corner(p, &f.d, bw / (f.r - f.l), bh / (f.bot - f.t));
        double bx = (corner & 1) ? f.l + 8 : f.r - bw - 8, by = (corner & 2) ? f.bot - bh - 8 : f.t + 8;
        addf(&b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"white\" stroke=\"#bbb\"/>\n", bx, by,
             bw, bh);
        double ly = by + 17;
        for (int i = 0; i < p->n_series; i++) {
            if (!p->series[i].label) continue;
            addf(&b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" stroke-width=\"%s\"%s/>\n", bx + 6,
                 ly - 4, bx + 24, ly - 4, colours[i % 8], p->series[i].style == QB_PLOT_BARS ? "8" : "2",
                 p->series[i].dashed ? " stroke-dasharray=\"6,4\"" : "");
            addf(&b, "<text x=\"%.2f\" y=\"%.2f\">", bx + 30, ly);
            add_text(&b, p->series[i].label);
            addf(&b, "</text>\n");
            ly += 18;
        }
    }
    addf(&b, "</svg>\n");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

qb_status qb_plot_write_svg(qb_ctx *ctx, const qb_plot *p, const char *path)
{
    qb_status st = qb_plot_check(ctx, p);
    if (st != QB_OK) return st;
    char *svg = qb_plot_svg(p);
    if (!svg) return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory rendering the plot", path);
    qb_atomic_file f;
    st = qb_atomic_begin(ctx, path, &f);
    if (st == QB_OK) {
        qb_plot_file_mode(f.fd);
        if (qb_atomic_write(&f, svg, strlen(svg))) st = qb_atomic_commit(ctx, &f);
        else {
            qb_atomic_abort(&f);
            st = qb_fail(ctx, QB_ERR_IO, "%s: write failed", path);
        }
    }
    free(svg);
    return st;
}
