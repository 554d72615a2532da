/* plot_png.c — a plot rasterised to RGB pixels (lines with a round pen, dashes, bars,
 * markers, a grid, text in the built-in 5×7 font scaled 2×) and written as PNG with libpng
 * through an atomic file. */
#include "plot.h"
#include "plot_font.h"

#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "../util/atomic_file.h"

typedef struct {
    uint8_t *px;
    int w, h;
} canvas;

static const uint8_t colours[8][3] = {{31, 119, 180}, {214, 39, 40}, {44, 160, 44}, {255, 127, 14},
                                      {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127}};

static void blend(canvas *c, int x, int y, const uint8_t *rgb, double a)
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h) return;
    uint8_t *p = c->px + ((size_t)y * c->w + x) * 3;
    for (int k = 0; k < 3; k++) p[k] = (uint8_t)lround(p[k] * (1 - a) + rgb[k] * a);
}

static void fill_rect(canvas *c, double x0, double y0, double x1, double y1, const uint8_t *rgb, double a)
{
    int ix0 = (int)floor(fmin(x0, x1)), ix1 = (int)ceil(fmax(x0, x1)), iy0 = (int)floor(fmin(y0, y1)),
        iy1 = (int)ceil(fmax(y0, y1));
    if (ix1 == ix0) ix1++;
    if (iy1 == iy0) iy1++;
    for (int y = iy0; y < iy1; y++)
        for (int x = ix0; x < ix1; x++) blend(c, x, y, rgb, a);
}

/* A line of width w (round pen); dash > 0 draws dash pixels on, dash off. */
static void line(canvas *c, double x0, double y0, double x1, double y1, double w, const uint8_t *rgb, int dash)
{
    double len = hypot(x1 - x0, y1 - y0);
    int steps = (int)ceil(len * 2) + 1;
    double r = w / 2;
    for (int i = 0; i <= steps; i++) {
        double t = (double)i / steps, x = x0 + (x1 - x0) * t, y = y0 + (y1 - y0) * t;
        if (dash > 0 && ((int)(t * len) / dash) % 2 == 1) continue;
        for (int dy = (int)floor(-r); dy <= (int)ceil(r); dy++)
            for (int dx = (int)floor(-r); dx <= (int)ceil(r); dx++)
                if (dx * dx + dy * dy <= r * r + 0.25) blend(c, (int)lround(x) + dx, (int)lround(y) + dy, rgb, 1);
    }
}

static void disc(canvas *c, double x, double y, double r, const uint8_t *rgb)
{
    for (int dy = (int)floor(-r); dy <= (int)ceil(r); dy++)
        for (int dx = (int)floor(-r); dx <= (int)ceil(r); dx++)
            if (dx * dx + dy * dy <= r * r) blend(c, (int)lround(x) + dx, (int)lround(y) + dy, rgb, 1);
}

/* Text width in pixels at scale s (UTF-8 sequences count as one character). */
static int text_w(const char *s, int sc)
{
    int n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n * (QB_GLYPH_W + 1) * sc;
}

/* Draw text with its top-left at (x, y); vertical draws it rotated 90° counter-clockwise
 * (reading upwards) with (x, y) its bottom-left. */
static void text(canvas *c, int x, int y, const char *s, int sc, const uint8_t *rgb, bool vertical)
{
    int pos = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned ch = *p;
        if ((ch & 0xC0) == 0x80) continue;
        if (ch >= 0x80) { /* a few common symbols, the rest as '?' */
            if (p[0] == 0xE2 && p[1] == 0x88 && p[2] == 0x92) ch = '-';      /* minus sign */
            else if (p[0] == 0xC2 && p[1] == 0xB7) ch = '.';                 /* middle dot */
            else if (p[0] == 0xE2 && p[1] == 0x86 && p[2] == 0x92) ch = '>'; /* arrow */
            else ch = '?';
        }
        const unsigned char *g = qb_plot_glyph(ch);
        for (int r = 0; r < QB_GLYPH_H; r++)
            for (int k = 0; k < QB_GLYPH_W; k++) {
                if (!(g[r] & (0x10 >> k))) continue;
                for (int a = 0; a < sc; a++)
                    for (int b = 0; b < sc; b++) {
                        int gx = pos * (QB_GLYPH_W + 1) * sc + k * sc + a, gy = r * sc + b;
                        if (vertical) blend(c, x + gy, y - gx, rgb, 1);
                        else blend(c, x + gx, y + gy, rgb, 1);
                    }
            }
        pos++;
    }
}

typedef struct {
    double l, r, t, bot;
    qb_plot_bounds d;
} frame;

static double px(const frame *f, double x) { return f->l + (x - f->d.x0) / (f->d.x1 - f->d.x0) * (f->r - f->l); }
static double py(const frame *f, double y) { return f->bot - (y - f->d.y0) / (f->d.y1 - f->d.y0) * (f->bot - f->t); }

static void clip_line(canvas *c, const frame *f, double x0, double y0, double x1, double y1, const uint8_t *rgb,
                      int dash)
{
    /* Liang–Barsky clip to the plot area */
    double t0 = 0, t1 = 1, dx = x1 - x0, dy = y1 - y0;
    double pp[4] = {-dx, dx, -dy, dy}, qq[4] = {x0 - f->l, f->r - x0, y0 - f->t, f->bot - y0};
    for (int i = 0; i < 4; i++) {
        if (pp[i] == 0) {
            if (qq[i] < 0) return;
            continue;
        }
        double t = qq[i] / pp[i];
        if (pp[i] < 0) t0 = fmax(t0, t);
        else t1 = fmin(t1, t);
    }
    if (t0 > t1) return;
    line(c, x0 + dx * t0, y0 + dy * t0, x0 + dx * t1, y0 + dy * t1, 2.2, rgb, dash);
}

static void draw_series(canvas *c, const qb_plot *p, const frame *f, int i)
{
    const qb_plot_series *s = &p->series[i];
    const uint8_t *col = colours[i % 8];
    if (s->style == QB_PLOT_BARS) {
        double half = qb_plot_bar_half(s), base = py(f, p->log_y ? f->d.y0 : fmax(f->d.y0, 0));
        for (int k = 0; k < s->n; k++) {
            double y = qb_plot_y(p, s->y[k]);
            if (!isfinite(s->x[k]) || !isfinite(y)) continue;
            double x0 = fmax(px(f, s->x[k] - half), f->l), x1 = fmin(px(f, s->x[k] + half), f->r);
            double yy = fmax(py(f, y), f->t);
            if (x1 > x0) fill_rect(c, x0, yy, x1, base, col, 0.55);
        }
        return;
    }
    bool have = false;
    double lx = 0, ly = 0;
    for (int k = 0; k < s->n; k++) {
        double y = qb_plot_y(p, s->y[k]);
        if (!isfinite(s->x[k]) || !isfinite(y)) continue;
        double x1 = px(f, s->x[k]), y1 = py(f, y);
        if (s->style == QB_PLOT_POINTS || (s->style == QB_PLOT_LINES && s->n <= 24 && !s->dashed)) {
            if (x1 >= f->l && x1 <= f->r && y1 >= f->t && y1 <= f->bot)
                disc(c, x1, y1, s->style == QB_PLOT_POINTS ? 2.5 : 3.5, col);
        }
        if (have && s->style == QB_PLOT_LINES) clip_line(c, f, lx, ly, x1, y1, col, s->dashed ? 6 : 0);
        if (have && s->style == QB_PLOT_STEPS) {
            clip_line(c, f, lx, ly, x1, ly, col, s->dashed ? 6 : 0);
            clip_line(c, f, x1, ly, x1, y1, col, s->dashed ? 6 : 0);
        }
        have = true;
        lx = x1;
        ly = y1;
    }
}

uint8_t *qb_plot_raster(const qb_plot *p, int *width, int *height)
{
    int W = p->width ? p->width : 800, H = p->height ? p->height : 480;
    canvas c = {malloc((size_t)W * H * 3), W, H};
    if (!c.px) return NULL;
    memset(c.px, 255, (size_t)W * H * 3);
    static const uint8_t grid[3] = {229, 229, 229}, ink[3] = {40, 40, 40};
    frame f = {80, W - 20.0, p->title ? 44 : 20, H - 56.0, {0, 0, 0, 0}};
    qb_plot_bounds_compute(p, &f.d);
    double t[16];
    char lab[32];
    int nt = qb_plot_ticks(f.d.x0, f.d.x1, 8, t);
    for (int i = 0; i < nt; i++) {
        double x = px(&f, t[i]);
        line(&c, x, f.t, x, f.bot, 1, grid, 0);
        qb_plot_tick_label(t[i], false, lab, sizeof lab);
        text(&c, (int)(x - text_w(lab, 2) / 2), (int)f.bot + 8, lab, 2, ink, false);
    }
    nt = qb_plot_ticks(f.d.y0, f.d.y1, 7, t);
    for (int i = 0; i < nt; i++) {
        double y = py(&f, t[i]);
        line(&c, f.l, y, f.r, y, 1, grid, 0);
        qb_plot_tick_label(t[i], p->log_y, lab, sizeof lab);
        text(&c, (int)f.l - 8 - text_w(lab, 2), (int)y - 7, lab, 2, ink, false);
    }
    for (int i = 0; i < p->n_series; i++) draw_series(&c, p, &f, i);
    line(&c, f.l, f.t, f.r, f.t, 1, ink, 0);
    line(&c, f.l, f.bot, f.r, f.bot, 1, ink, 0);
    line(&c, f.l, f.t, f.l, f.bot, 1, ink, 0);
    line(&c, f.r, f.t, f.r, f.bot, 1, ink, 0);
    if (p->title) {
        int sc = text_w(p->title, 3) <= W - 20 ? 3 : 2;
        text(&c, W / 2 - text_w(p->title, sc) / 2, sc == 3 ? 12 : 16, p->title, sc, ink, false);
    }
    if (p->xlabel) text(&c, (int)((f.l + f.r) / 2) - text_w(p->xlabel, 2) / 2, H - 22, p->xlabel, 2, ink, false);
    if (p->ylabel) text(&c, 6, (int)((f.t + f.bot) / 2) + text_w(p->ylabel, 2) / 2, p->ylabel, 2, ink, true);
    int n_lab = 0, max_w = 0;
    for (int i = 0; i < p->n_series; i++)
        if (p->series[i].label) {
            n_lab++;
            int w = text_w(p->series[i].label, 2);
            max_w = w > max_w ? w : max_w;
        }
    if (n_lab > 0) {
        int bw = max_w + 40, bh = n_lab * 22 + 8;
        int corner = qb_plot_legend_corner(p, &f.d, (double)bw / (f.r - f.l), (double)bh / (f.bot - f.t));
        int bx = (corner & 1) ? (int)f.l + 8 : (int)f.r - bw - 8, by = (corner & 2) ? (int)f.bot - bh - 8 : (int)f.t + 8;
        static const uint8_t white[3] = {255, 255, 255}, edge[3] = {190, 190, 190};
        fill_rect(&c, bx, by, bx + bw, by + bh, white, 1);
        line(&c, bx, by, bx + bw, by, 1, edge, 0);
        line(&c, bx, by + bh, bx + bw, by + bh, 1, edge, 0);
        line(&c, bx, by, bx, by + bh, 1, edge, 0);
        line(&c, bx + bw, by, bx + bw, by + bh, 1, edge, 0);
        int ly = by + 6;
        for (int i = 0; i < p->n_series; i++) {
            if (!p->series[i].label) continue;
            if (p->series[i].style == QB_PLOT_BARS) fill_rect(&c, bx + 6, ly + 1, bx + 24, ly + 13, colours[i % 8], 0.55);
            else line(&c, bx + 6, ly + 7, bx + 24, ly + 7, 2.2, colours[i % 8], p->series[i].dashed ? 6 : 0);
            text(&c, bx + 32, ly, p->series[i].label, 2, ink, false);
            ly += 22;
        }
    }
    *width = W;
    *height = H;
    return c.px;
}

typedef struct {
    qb_atomic_file *f;
    bool failed;
} png_sink;

static void png_write_cb(png_structp png, png_bytep data, png_size_t n)
{
    png_sink *s = png_get_io_ptr(png);
    if (!s->failed && !qb_atomic_write(s->f, data, n)) s->failed = true;
}

static void png_flush_cb(png_structp png)
{
    (void)png;
}

qb_status qb_plot_write_png(qb_ctx *ctx, const qb_plot *p, const char *path)
{
    qb_status st = qb_plot_check(ctx, p);
    if (st != QB_OK) return st;
    int W, H;
    uint8_t *px = qb_plot_raster(p, &W, &H);
    if (!px) return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory rendering the plot", path);
    qb_atomic_file f;
    if ((st = qb_atomic_begin(ctx, path, &f)) != QB_OK) {
        free(px);
        return st;
    }
    qb_plot_file_mode(f.fd);
    png_sink sink = {&f, false};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytep *rows = malloc(sizeof *rows * (size_t)H);
    if (!png || !info || !rows) {
        png_destroy_write_struct(&png, &info);
        free(rows);
        free(px);
        qb_atomic_abort(&f);
        return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory writing PNG", path);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(rows);
        free(px);
        qb_atomic_abort(&f);
        return qb_fail(ctx, QB_ERR_IO, "%s: PNG encoding failed", path);
    }
    png_set_write_fn(png, &sink, png_write_cb, png_flush_cb);
    png_set_IHDR(png, info, (png_uint_32)W, (png_uint_32)H, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    for (int y = 0; y < H; y++) rows[y] = px + (size_t)y * W * 3;
    png_set_rows(png, info, rows);
    png_write_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    free(px);
    if (sink.failed) {
        qb_atomic_abort(&f);
        return qb_fail(ctx, QB_ERR_IO, "%s: write failed", path);
    }
    return qb_atomic_commit(ctx, &f);
}
