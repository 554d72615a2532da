/* test-plot.c — the plot renderers (core/plot): nice tick values, SVG text with escaped labels
 * and one element per point, PNG files that libpng reads back at the asked size with the
 * series' colour where the line runs, terminal plots of the asked size in braille, legends
 * away from the data, bad input refused and failed writes leaving nothing behind. */
#include "testutil.h"

#include "core/plot/plot.h"

#include <math.h>
#include <png.h>

static const double xs[5] = {1, 2, 3, 4, 5}, ys[5] = {1, 4, 9, 16, 25};

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
    assert_non_null(strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"800\" height=\"480\""));
    assert_non_null(strstr(svg, ">x &amp; y</text>"));
    assert_non_null(strstr(svg, ">a&lt;b</text>"));
    assert_non_null(strstr(svg, "<polyline"));
    int rects = 0, circles = 0;
    for (const char *c = svg; (c = strstr(c, "fill-opacity=\"0.55\"")); c++) rects++;
    for (const char *c = svg; (c = strstr(c, "<circle")); c++) circles++;
    assert_int_equal(rects, 5);
    assert_int_equal(circles, 5);
    assert_non_null(strstr(svg, "</svg>\n"));
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
    char path[256];
    snprintf(path, sizeof path, "%s/qb-plot-test-%d.png", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    assert_int_equal(qb_plot_write(&ctx, &p, path), QB_OK);
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    assert_true(png_image_begin_read_from_file(&img, path));
    assert_int_equal(img.width, 320);
    assert_int_equal(img.height, 200);
    img.format = PNG_FORMAT_RGB;
    uint8_t *px = malloc(PNG_IMAGE_SIZE(img));
    assert_true(png_image_finish_read(&img, NULL, px, 0, NULL));
    /* the corner is background; the middle of the diagonal is the first series' blue */
    assert_int_equal(px[0] + px[1] + px[2], 3 * 255);
    int blue = 0;
    for (int y = 90; y < 130; y++)
        for (int x = 140; x < 220; x++) {
            const uint8_t *q = px + (y * 320 + x) * 3;
            blue += q[0] == 31 && q[1] == 119 && q[2] == 180;
        }
    assert_true(blue > 20);
    free(px);
    unlink(path);
    /* a folder that does not exist: an error naming the file, nothing written */
    assert_int_equal(qb_plot_write(&ctx, &p, "/nonexistent-dir/x.png"), QB_ERR_IO);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "/nonexistent-dir/x.png"));
    assert_int_equal(qb_plot_write(&ctx, &p, "x.jpg"), QB_ERR_ARG);
    qb_plot empty = {0};
    assert_int_equal(qb_plot_check(&ctx, &empty), QB_ERR_ARG);
    qb_plot big = p;
    big.width = 9000;
    assert_int_equal(qb_plot_check(&ctx, &big), QB_ERR_ARG);
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
        cmocka_unit_test(test_ticks), cmocka_unit_test(test_svg), cmocka_unit_test(test_png),
        cmocka_unit_test(test_text), cmocka_unit_test(test_legend_corner),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
