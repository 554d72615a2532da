/* plot_cairo.c — a plot drawn by cairo: axes with nice ticks and a grid, each series in its
 * own colour (antialiased lines, steps, markers or translucent bars, clipped to the plot
 * area), a legend in the emptiest corner, title and axis labels in a real sans-serif font.
 * One drawing routine serves every surface: PNG (image), SVG and PDF (vector), each written
 * through an atomic file. A series is one cairo path (all its bars in one fill), plus one
 * path of markers for points and short solid lines; a legend swatch is one more. */
#include "plot.h"

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <cairo.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../util/atomic_file.h"

static const double colours[8][3] = {{31, 119, 180}, {214, 39, 40}, {44, 160, 44},  {255, 127, 14},
                                     {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127}};

typedef struct {
    double l, r, t, bot; /* plot area in device units (pixels for PNG and SVG, points for PDF) */
    qb_plot_bounds d;
} frame;

static double px(const frame *f, double x) { return f->l + (x - f->d.x0) / (f->d.x1 - f->d.x0) * (f->r - f->l); }
static double py(const frame *f, double y) { return f->bot - (y - f->d.y0) / (f->d.y1 - f->d.y0) * (f->bot - f->t); }

static void rgb(cairo_t *cr, const double *c, double a)
{
    cairo_set_source_rgba(cr, c[0] / 255, c[1] / 255, c[2] / 255, a);
}

static void grey(cairo_t *cr, double v) { cairo_set_source_rgb(cr, v / 255, v / 255, v / 255); }

static void font(cairo_t *cr, double size, bool bold)
{
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

static double text_w(cairo_t *cr, const char *s)
{
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    return e.x_advance;
}

/* s with its baseline at y; align 0 left, 0.5 centred, 1 right of x. */
static void text_at(cairo_t *cr, double x, double y, const char *s, double align)
{
    cairo_move_to(cr, x - align * text_w(cr, s), y);
    cairo_show_text(cr, s);
}

static void dash(cairo_t *cr, bool on)
{
    static const double d[2] = {6, 4};
    cairo_set_dash(cr, d, on ? 2 : 0, 0);
}

/* One series as one path: bars filled, lines and steps stroked (points: nothing here). */
static void draw_series(cairo_t *cr, const qb_plot *p, const frame *f, int i)
{
    const qb_plot_series *s = &p->series[i];
    const double *col = colours[i % 8];
    cairo_new_path(cr);
    if (s->style == QB_PLOT_BARS) {
        double half = qb_plot_bar_half(s), base = py(f, p->log_y ? f->d.y0 : fmax(f->d.y0, 0));
        for (int k = 0; k < s->n; k++) {
            double y = qb_plot_y(p, s->y[k]);
            if (!isfinite(s->x[k]) || !isfinite(y)) continue;
            double x0 = px(f, s->x[k] - half), x1 = px(f, s->x[k] + half), yy = py(f, y);
            cairo_rectangle(cr, x0, fmin(yy, base), fmax(x1 - x0, 0.5), fabs(base - yy));
        }
        rgb(cr, col, 0.55);
        cairo_fill(cr);
        return;
    }
    if (s->style != QB_PLOT_POINTS) {
        bool have = false;
        double ly = 0;
        for (int k = 0; k < s->n; k++) {
            double y = qb_plot_y(p, s->y[k]);
            if (!isfinite(s->x[k]) || !isfinite(y)) continue;
            if (!have) cairo_move_to(cr, px(f, s->x[k]), py(f, y));
            else {
                if (s->style == QB_PLOT_STEPS) cairo_line_to(cr, px(f, s->x[k]), py(f, ly));
                cairo_line_to(cr, px(f, s->x[k]), py(f, y));
            }
            have = true;
            ly = y;
        }
        rgb(cr, col, 1);
        cairo_set_line_width(cr, 2);
        cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
        dash(cr, s->dashed);
        cairo_stroke(cr);
        dash(cr, false);
    }
}

/* The markers of a series (points, and short solid lines) as one filled path; drawn outside
 * the plot area's clip so a marker on the frame stays round. */
static void draw_markers(cairo_t *cr, const qb_plot *p, const frame *f, int i)
{
    const qb_plot_series *s = &p->series[i];
    const double *col = colours[i % 8];
    if (s->style == QB_PLOT_POINTS || (s->style == QB_PLOT_LINES && s->n <= 24 && !s->dashed)) {
        double r = s->style == QB_PLOT_POINTS ? 2.5 : 3.5;
        cairo_new_path(cr);
        for (int k = 0; k < s->n; k++) {
            double y = qb_plot_y(p, s->y[k]);
            if (!isfinite(s->x[k]) || !isfinite(y)) continue;
            cairo_new_sub_path(cr);
            cairo_arc(cr, px(f, s->x[k]), py(f, y), r, 0, 2 * M_PI);
        }
        rgb(cr, col, 1);
        cairo_fill(cr);
    }
}

/* Grid lines and tick labels on both axes. */
static void draw_axes(cairo_t *cr, const qb_plot *p, const frame *f)
{
    double t[16];
    char lab[32];
    font(cr, 13, false);
    cairo_set_line_width(cr, 1);
    int nx = qb_plot_ticks(f->d.x0, f->d.x1, 8, t);
    for (int i = 0; i < nx; i++) {
        double x = round(px(f, t[i])) + 0.5;
        grey(cr, 229);
        cairo_move_to(cr, x, f->t);
        cairo_line_to(cr, x, f->bot);
        cairo_stroke(cr);
        qb_plot_tick_label(t[i], false, lab, sizeof lab);
        grey(cr, 40);
        text_at(cr, x, f->bot + 19, lab, 0.5);
    }
    int ny = qb_plot_ticks(f->d.y0, f->d.y1, 7, t);
    for (int i = 0; i < ny; i++) {
        double y = round(py(f, t[i])) + 0.5;
        grey(cr, 229);
        cairo_move_to(cr, f->l, y);
        cairo_line_to(cr, f->r, y);
        cairo_stroke(cr);
        qb_plot_tick_label(t[i], p->log_y, lab, sizeof lab);
        grey(cr, 40);
        text_at(cr, f->l - 8, y + 4, lab, 1);
    }
}

static void draw_legend(cairo_t *cr, const qb_plot *p, const frame *f)
{
    int n_lab = 0;
    double max_w = 0;
    font(cr, 13, false);
    for (int i = 0; i < p->n_series; i++)
        if (p->series[i].label) n_lab++, max_w = fmax(max_w, text_w(cr, p->series[i].label));
    if (n_lab == 0) return;
    double bw = max_w + 42, bh = n_lab * 19 + 8;
    int corner = qb_plot_legend_corner(p, &f->d, bw / (f->r - f->l), bh / (f->bot - f->t));
    double bx = round((corner & 1) ? f->l + 8 : f->r - bw - 8) + 0.5;
    double by = round((corner & 2) ? f->bot - bh - 8 : f->t + 8) + 0.5;
    cairo_rectangle(cr, bx, by, bw, bh);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_fill_preserve(cr);
    grey(cr, 190);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
    double ly = by + 17;
    for (int i = 0; i < p->n_series; i++) {
        const qb_plot_series *s = &p->series[i];
        if (!s->label) continue;
        if (s->style == QB_PLOT_BARS) {
            cairo_rectangle(cr, bx + 6, ly - 10, 20, 10);
            rgb(cr, colours[i % 8], 0.55);
            cairo_fill(cr);
        } else {
            cairo_move_to(cr, bx + 6, ly - 4);
            cairo_line_to(cr, bx + 26, ly - 4);
            rgb(cr, colours[i % 8], 1);
            cairo_set_line_width(cr, 2);
            dash(cr, s->dashed);
            cairo_stroke(cr);
            dash(cr, false);
        }
        grey(cr, 40);
        text_at(cr, bx + 32, ly, s->label, 0);
        ly += 19;
    }
}

/* The whole plot on cr, W × H device units. */
static void draw(cairo_t *cr, const qb_plot *p, int W, int H)
{
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    frame f = {76, W - 20.0, p->title ? 42 : 20, H - 52.0, {0, 0, 0, 0}};
    qb_plot_bounds_compute(p, &f.d);
    draw_axes(cr, p, &f);
    cairo_save(cr);
    cairo_rectangle(cr, f.l, f.t, f.r - f.l, f.bot - f.t);
    cairo_clip(cr);
    for (int i = 0; i < p->n_series; i++) draw_series(cr, p, &f, i);
    cairo_restore(cr);
    grey(cr, 51);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, round(f.l) + 0.5, round(f.t) + 0.5, round(f.r - f.l), round(f.bot - f.t));
    cairo_stroke(cr);
    for (int i = 0; i < p->n_series; i++) draw_markers(cr, p, &f, i);
    grey(cr, 40);
    if (p->title) {
        font(cr, 17, true);
        text_at(cr, W / 2.0, 27, p->title, 0.5);
    }
    font(cr, 14, false);
    if (p->xlabel) text_at(cr, (f.l + f.r) / 2, H - 12, p->xlabel, 0.5);
    if (p->ylabel) {
        cairo_save(cr);
        cairo_translate(cr, 18, (f.t + f.bot) / 2);
        cairo_rotate(cr, -M_PI / 2);
        text_at(cr, 0, 0, p->ylabel, 0.5);
        cairo_restore(cr);
    }
    draw_legend(cr, p, &f);
}

static void size_of(const qb_plot *p, int *W, int *H)
{
    *W = p->width ? p->width : 800;
    *H = p->height ? p->height : 480;
}

uint8_t *qb_plot_raster(const qb_plot *p, int *width, int *height)
{
    int W, H;
    size_of(p, &W, &H);
    cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
    uint8_t *out = malloc((size_t)W * H * 3);
    if (!out || cairo_surface_status(sf) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(sf);
        free(out);
        return NULL;
    }
    cairo_t *cr = cairo_create(sf);
    draw(cr, p, W, H);
    cairo_destroy(cr);
    cairo_surface_flush(sf);
    const uint8_t *data = cairo_image_surface_get_data(sf);
    int stride = cairo_image_surface_get_stride(sf);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) { /* native-endian 0x00RRGGBB words */
            uint32_t v;
            memcpy(&v, data + (size_t)y * stride + 4 * (size_t)x, 4);
            uint8_t *o = out + ((size_t)y * W + x) * 3;
            o[0] = (uint8_t)(v >> 16), o[1] = (uint8_t)(v >> 8), o[2] = (uint8_t)v;
        }
    cairo_surface_destroy(sf);
    *width = W;
    *height = H;
    return out;
}

/* ---- output ---------------------------------------------------------------------------- */

typedef struct {
    qb_atomic_file *f; /* NULL: into buf */
    char *buf;
    size_t n, cap;
    bool failed;
} sink;

static cairo_status_t sink_write(void *ud, const unsigned char *data, unsigned int len)
{
    sink *s = ud;
    if (s->failed) return CAIRO_STATUS_WRITE_ERROR;
    if (s->f) {
        if (!qb_atomic_write(s->f, data, len)) s->failed = true;
    } else {
        if (s->n + len + 1 > s->cap) {
            size_t cap = s->cap ? s->cap : 16384;
            while (cap < s->n + len + 1) cap *= 2;
            char *g = realloc(s->buf, cap);
            if (!g) s->failed = true;
            else s->buf = g, s->cap = cap;
        }
        if (!s->failed) memcpy(s->buf + s->n, data, len), s->n += len, s->buf[s->n] = 0;
    }
    return s->failed ? CAIRO_STATUS_WRITE_ERROR : CAIRO_STATUS_SUCCESS;
}

typedef enum { OUT_PNG, OUT_SVG, OUT_PDF } out_kind;

/* Draw p onto a surface of kind k that streams into s; false when cairo or the sink failed. */
static bool render(const qb_plot *p, out_kind k, sink *s)
{
    int W, H;
    size_of(p, &W, &H);
    cairo_surface_t *sf;
    if (k == OUT_SVG) sf = cairo_svg_surface_create_for_stream(sink_write, s, W, H);
    else if (k == OUT_PDF) sf = cairo_pdf_surface_create_for_stream(sink_write, s, W, H);
    else sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
    if (k == OUT_SVG) { /* width="800px", as asked: cairo's default unit is the point */
        cairo_svg_surface_restrict_to_version(sf, CAIRO_SVG_VERSION_1_1);
        cairo_svg_surface_set_document_unit(sf, CAIRO_SVG_UNIT_PX);
    }
    cairo_t *cr = cairo_create(sf);
    draw(cr, p, W, H);
    bool ok = cairo_status(cr) == CAIRO_STATUS_SUCCESS;
    cairo_destroy(cr);
    if (k == OUT_PNG && ok) ok = cairo_surface_write_to_png_stream(sf, sink_write, s) == CAIRO_STATUS_SUCCESS;
    cairo_surface_finish(sf); /* vector surfaces write their trailer here */
    ok = ok && cairo_surface_status(sf) == CAIRO_STATUS_SUCCESS && !s->failed;
    cairo_surface_destroy(sf);
    return ok;
}

char *qb_plot_svg(const qb_plot *p)
{
    sink s = {0};
    if (!render(p, OUT_SVG, &s)) {
        free(s.buf);
        return NULL;
    }
    return s.buf;
}

static qb_status write_kind(qb_ctx *ctx, const qb_plot *p, const char *path, out_kind k)
{
    qb_status st = qb_plot_check(ctx, p);
    if (st != QB_OK) return st;
    qb_atomic_file f;
    if ((st = qb_atomic_begin(ctx, path, &f)) != QB_OK) return st;
    sink s = {.f = &f};
    if (!render(p, k, &s)) {
        qb_atomic_abort(&f);
        return qb_fail(ctx, s.failed ? QB_ERR_IO : QB_ERR_NOMEM, "%s: %s", path,
                       s.failed ? "write failed" : "drawing the plot failed (out of memory?)");
    }
    return qb_atomic_commit(ctx, &f);
}

qb_status qb_plot_write_png(qb_ctx *ctx, const qb_plot *p, const char *path) { return write_kind(ctx, p, path, OUT_PNG); }
qb_status qb_plot_write_svg(qb_ctx *ctx, const qb_plot *p, const char *path) { return write_kind(ctx, p, path, OUT_SVG); }
qb_status qb_plot_write_pdf(qb_ctx *ctx, const qb_plot *p, const char *path) { return write_kind(ctx, p, path, OUT_PDF); }
