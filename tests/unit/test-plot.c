/* test-plot.c — the plot renderers (core/plot): nice tick values; cairo's pictures checked
 * for what they hold (an SVG that is well-formed XML with one path per series in the series'
 * colour, a PNG with its signature and asked size whose plot area has the first series'
 * blue along the line, a PDF with its header and trailer); terminal plots of the asked size
 * on the braille canvas; the canvas itself; legends away from the data; bad input refused
 * and failed writes leaving nothing behind. */
#include "testutil.h"

#include "core/plot/canvas.h"
#include "core/plot/plot.h"

#include <cairo.h>
#include <math.h>

static const double xs[5] = {1, 2, 3, 4, 5}, ys[5] = {1, 4, 9, 16, 25};

static char *tmp_path(const char *ext)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/qb-plot-test-%d.%s", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid(),
             ext);
    return path;
}

/* Well-formed XML: every element closed in order, quoted attributes, entities terminated.
 * Returns the number of elements, -1 when malformed. */
static int xml_elements(const char *s)
{
    const char *stack[64];
    size_t len[64];
    int depth = 0, n = 0;
    while ((s = strchr(s, '<'))) {
        if (!strncmp(s, "<?", 2) || !strncmp(s, "<!--", 4)) {
            const char *e = strstr(s, s[1] == '?' ? "?>" : "-->");
            if (!e) return -1;
            s = e + 2;
            continue;
        }
        bool close = s[1] == '/';
        const char *name = s + 1 + close, *p = name;
        while (*p && !strchr(" \t\n/>", *p)) p++;
        size_t nl = (size_t)(p - name);
        char q = 0;
        for (; *p && (q || *p != '>'); p++) /* to the end of the tag, '>' inside quotes allowed */
            if (q ? *p == q : (*p == '"' || *p == '\'')) q = q ? 0 : *p;
        if (!*p || nl == 0) return -1;
        bool self = p[-1] == '/';
        if (close) {
            if (depth == 0 || len[depth - 1] != nl || strncmp(stack[depth - 1], name, nl)) return -1;
            depth--;
        } else {
            n++;
            if (!self) {
                if (depth == 64) return -1;
                stack[depth] = name, len[depth++] = nl;
            }
        }
        s = p + 1;
    }
    return depth == 0 ? n : -1;
}

/* <path> elements whose attributes name the colour (r, g, b) as cairo writes it. */
static int paths_in(const char *svg, int r, int g, int b)
{
    char want[96];
    snprintf(want, sizeof want, "rgb(%f%%,%f%%,%f%%)", r / 2.55, g / 2.55, b / 2.55);
    int n = 0;
    for (const char *c = svg; (c = strstr(c, "<path")); c++) {
        const char *end = strchr(c, '>'), *hit = strstr(c, want);
        n += hit && end && hit < end;
    }
    return n;
}

static void test_ticks(void **state)
{
    (void)state;
    double t[16];
    int n = qb_plot_ticks(0, 1, 6, t);
    assert_int_equal(n, 6);
    assert_float_equal(t[0], 0, 1e-12);
    assert_float_equal(t[1], 0.2, 1e-12);
    assert_float_equal(t[5], 1, 1e-12);
    n = qb_plot_ticks(-0.013, 0.027, 8, t);
    assert_true(n >= 4 && n <= 9);
    double step = t[1] - t[0];
    assert_true(fabs(step - 0.005) < 1e-12 || fabs(step - 0.01) < 1e-12);
    for (int i = 1; i < n; i++) assert_float_equal(t[i] - t[i - 1], step, 1e-12);
    assert_true(t[0] >= -0.013 && t[n - 1] <= 0.027);
    char b[32];
    qb_plot_tick_label(2, true, b, sizeof b);
    assert_string_equal(b, "100");
    qb_plot_tick_label(1.5e-6, false, b, sizeof b);
    assert_string_equal(b, "2e-06");
}

static void test_svg(void **state)
{
    (void)state;
    qb_plot_series s[2] = {{"a<b", QB_PLOT_LINES, false, 5, xs, ys}, {"bars", QB_PLOT_BARS, false, 5, xs, ys}};
    qb_plot p = {.title = "x & y", .xlabel = "bits", .series = s, .n_series = 2};
    char *svg = qb_plot_svg(&p);
    assert_non_null(svg);
    assert_true(!strncmp(svg, "<?xml", 5));
    assert_non_null(strstr(svg, "width=\"800px\" height=\"480px\" viewBox=\"0 0 800 480\""));
    assert_int_equal(xml_elements("<a x=\"1>2\"><b/></a>"), 2); /* the checker itself */
    assert_int_equal(xml_elements("<a><b></a></b>"), -1);
    assert_int_equal(xml_elements("<a>"), -1);
    assert_true(xml_elements(svg) > 20); /* labels with < and & did not break it */
    /* the line: its stroke, its markers (5 points: drawn) and its legend swatch */
    assert_int_equal(paths_in(svg, 31, 119, 180), 3);
    /* the bars: one fill holding all five, and the swatch */
    assert_int_equal(paths_in(svg, 214, 39, 40), 2);
    assert_int_equal(paths_in(svg, 44, 160, 44), 0);
    free(svg);
    /* three series of lines, one dashed with many points: one path each plus a swatch */
    static double lx[30], ly[30];
    for (int i = 0; i < 30; i++) lx[i] = i, ly[i] = i * i;
    qb_plot_series t[3] = {{"l", QB_PLOT_LINES, true, 30, lx, ly}, {"s", QB_PLOT_STEPS, false, 30, lx, ly},
                           {NULL, QB_PLOT_POINTS, false, 30, lx, ly}};
    qb_plot q = {.series = t, .n_series = 3, .log_y = true};
    svg = qb_plot_svg(&q);
    assert_non_null(svg);
    assert_true(xml_elements(svg) > 0);
    assert_int_equal(paths_in(svg, 31, 119, 180), 2);
    assert_int_equal(paths_in(svg, 214, 39, 40), 2);
    assert_int_equal(paths_in(svg, 44, 160, 44), 1); /* points, no label: no swatch */
    free(svg);
}

static void test_png(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    static const double lx[2] = {0, 1}, ly[2] = {0, 1};
    qb_plot_series s = {"diag", QB_PLOT_LINES, false, 2, lx, ly};
    qb_plot p = {.title = "diagonal", .series = &s, .n_series = 1, .width = 320, .height = 200};
    const char *path = tmp_path("png");
    assert_int_equal(qb_plot_write(&ctx, &p, path), QB_OK);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char h[24];
    assert_int_equal(fread(h, 1, 24, f), 24);
    fclose(f);
    assert_memory_equal(h, "\x89PNG\r\n\x1a\n", 8);
    assert_memory_equal(h + 12, "IHDR", 4);
    assert_int_equal(h[16] << 24 | h[17] << 16 | h[18] << 8 | h[19], 320);
    assert_int_equal(h[20] << 24 | h[21] << 16 | h[22] << 8 | h[23], 200);
    cairo_surface_t *img = cairo_image_surface_create_from_png(path);
    assert_int_equal(cairo_surface_status(img), CAIRO_STATUS_SUCCESS);
    assert_int_equal(cairo_image_surface_get_width(img), 320);
    const unsigned char *px = cairo_image_surface_get_data(img);
    int stride = cairo_image_surface_get_stride(img);
    uint32_t corner, v;
    memcpy(&corner, px, 4);
    assert_int_equal(corner & 0xFFFFFF, 0xFFFFFF); /* background */
    /* around the middle of the diagonal: the first series' blue (antialiased edges aside) */
    int blue = 0, ink = 0;
    for (int y = 90; y < 130; y++)
        for (int x = 140; x < 220; x++) {
            memcpy(&v, px + y * stride + 4 * x, 4);
            int r = v >> 16 & 255, g = v >> 8 & 255, b = v & 255;
            blue += abs(r - 31) < 12 && abs(g - 119) < 12 && abs(b - 180) < 12;
            ink += (v & 0xFFFFFF) != 0xFFFFFF;
        }
    assert_true(blue > 20);
    assert_true(ink > blue); /* antialiasing: blended pixels beside the solid ones */
    cairo_surface_destroy(img);
    unlink(path);
    /* the raster the same drawing gives in memory */
    int w, hh;
    uint8_t *rgb = qb_plot_raster(&p, &w, &hh);
    assert_non_null(rgb);
    assert_int_equal(w, 320);
    assert_int_equal(hh, 200);
    const uint8_t *mid = rgb + (110 * 320 + 180) * 3;
    int near = 0;
    for (int d = -30; d <= 30; d++) near += mid[d * 3 + 2] > mid[d * 3] + 60; /* bluish along the row */
    assert_true(near > 0);
    free(rgb);
    /* a folder that does not exist: an error naming the file, nothing written */
    assert_int_equal(qb_plot_write(&ctx, &p, "/nonexistent-dir/x.png"), QB_ERR_IO);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "/nonexistent-dir/x.png"));
    assert_int_equal(qb_plot_write(&ctx, &p, "x.jpg"), QB_ERR_ARG);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), ".pdf"));
    qb_plot empty = {0};
    assert_int_equal(qb_plot_check(&ctx, &empty), QB_ERR_ARG);
    qb_plot big = p;
    big.width = 9000;
    assert_int_equal(qb_plot_check(&ctx, &big), QB_ERR_ARG);
}

static void test_pdf(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_plot_series s = {"squares", QB_PLOT_LINES, false, 5, xs, ys};
    qb_plot p = {.title = "squares", .xlabel = "x", .ylabel = "x\xc2\xb2", .series = &s, .n_series = 1};
    const char *path = tmp_path("PDF"); /* the extension in any case */
    assert_int_equal(qb_plot_write(&ctx, &p, path), QB_OK);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    assert_true(n > 1000);
    assert_memory_equal(buf, "%PDF-1.", 7);
    assert_non_null(strstr(buf + n - 8, "%%EOF"));
    unlink(path);
}

static void test_canvas(void **state)
{
    (void)state;
    qb_canvas c;
    assert_true(qb_canvas_init(&c, 3, 2)); /* 6 × 8 dots */
    qb_canvas_dot(&c, 0, 0, 1);            /* bottom-left dot: bottom row of cell (0, 1) */
    assert_int_equal(qb_canvas_cell(&c, 0, 1), 0x2840);
    assert_int_equal(qb_canvas_cell(&c, 0, 0), 0x2800);
    qb_canvas_dot(&c, 5, 7, 2); /* top-right dot */
    assert_int_equal(qb_canvas_cell(&c, 2, 0), 0x2808);
    assert_int_equal(c.color[2], 2);
    qb_canvas_dot(&c, 6, 0, 1); /* outside: ignored */
    qb_canvas_dot(&c, -1, 0, 1);
    /* a solid column fills both dots rows of cell column 1's left side; dashed 1 on 1 off half */
    qb_canvas_line(&c, 2, 0, 2, 7, 3, 1, 0);
    assert_int_equal(qb_canvas_cell(&c, 1, 0), 0x2847);
    assert_int_equal(qb_canvas_cell(&c, 1, 1), 0x2847);
    qb_canvas_line(&c, 3, 0, 3, 7, 3, 1, 1);
    assert_int_equal(qb_canvas_cell(&c, 1, 1) - 0x2847, 0x10 | 0x80); /* dots y = 0, 2 of the column */
    char row[16];
    assert_int_equal(qb_canvas_row_utf8(&c, 0, row), 9);
    assert_memory_equal(row, "\xe2\xa0\x80", 3); /* U+2800 */
    qb_canvas_free(&c);
    qb_canvas_free(&c); /* idempotent */
    assert_null(c.bits);
}

static void test_text(void **state)
{
    (void)state;
    qb_plot_series s = {NULL, QB_PLOT_LINES, false, 5, xs, ys};
    qb_plot p = {.title = "squares", .series = &s, .n_series = 1};
    char *t = qb_plot_text(&p, 40, 6);
    assert_non_null(t);
    int lines = 1;
    for (char *c = t; *c; c++) lines += *c == '\n';
    assert_int_equal(lines, 1 + 6 + 1 + 1); /* title, rows, axis, x labels */
    assert_non_null(strstr(t, "squares\n"));
    assert_non_null(strstr(t, "\xe2\x94\x82")); /* │ */
    /* the top row is labelled with the padded maximum (25 + 5% of the range 24) */
    assert_non_null(strstr(t, "26.2 \xe2\x94\x82"));
    free(t);
}

static void test_legend_corner(void **state)
{
    (void)state;
    /* rising data fills the top right and bottom left: the legend goes top left */
    static const double x[4] = {0, 0.05, 0.95, 1}, y[4] = {0, 0.05, 0.95, 1};
    qb_plot_series s = {"s", QB_PLOT_POINTS, false, 4, x, y};
    qb_plot p = {.series = &s, .n_series = 1};
    qb_plot_bounds b;
    qb_plot_bounds_compute(&p, &b);
    assert_int_equal(qb_plot_legend_corner(&p, &b, 0.3, 0.2), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ticks), cmocka_unit_test(test_svg),    cmocka_unit_test(test_png),
        cmocka_unit_test(test_pdf),   cmocka_unit_test(test_canvas), cmocka_unit_test(test_text),
        cmocka_unit_test(test_legend_corner),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
