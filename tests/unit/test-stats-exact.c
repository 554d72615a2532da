/* test-stats-exact.c — qb_quant_analyze and qb_quant_analyze_given against a plain scalar
 * oracle written here (each row summed element by element in double, rows added in order;
 * every value's histogram bin computed in double; the mapping's bucket minima by a linear
 * scan): statistics, histogram counts and mapping points must be identical, bit for bit, for
 * several formats, bin counts (up to 512 take the joint orig × deq table, more the
 * separate counts), thread counts, with repeated values (an f16-valued tensor has many), NaNs
 * and manual ranges. */
#include "testutil.h"

#include "core/qb.h"
#include "core/quant/stats.h"

#include <math.h>

static uint64_t rng = 0x2545f4914f6cdd1dull;
static double urand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

/* the oracle ------------------------------------------------------------------------------ */

typedef struct {
    double sxx, see, sxy, syy, sae, maxe;
    float xlo, xhi, ylo, yhi, elo, ehi;
} sums;

static int bin_of(double v, double lo, double hi, int bins)
{
    if (v < lo) return -1;
    if (v > hi) return bins;
    if (v != v) return bins + 1;
    const int b = (int)((v - lo) * ((double)bins / (hi - lo)));
    return b < bins ? b : bins - 1;
}

static void count(qb_histogram *h, double v)
{
    const int b = bin_of(v, h->lo, h->hi, h->bins);
    if (b < 0) h->under++;
    else if (b == h->bins) h->over++;
    else if (b < h->bins) h->counts[b]++;
}

static void widen(double *lo, double *hi)
{
    if (!(*lo < *hi)) {
        const double c = isfinite(*lo) ? *lo : 0.0, w = fabs(c) > 0 ? fabs(c) * 0.5 : 0.5;
        *lo = c - w;
        *hi = c + w;
    }
}

static void oracle(const float *x, const float *y, int64_t rows, int64_t n, const qb_analysis_opts *o, qb_analysis *a)
{
    memset(a, 0, sizeof *a);
    sums t = {0, 0, 0, 0, 0, 0, INFINITY, -INFINITY, INFINITY, -INFINITY, INFINITY, -INFINITY};
    for (int64_t r = 0; r < rows; r++) {
        double sxx = 0, see = 0, sxy = 0, syy = 0, sae = 0;
        for (int64_t i = r * n; i < (r + 1) * n; i++) {
            const double xv = x[i], yv = y[i], e = xv - yv;
            sxx += xv * xv, see += e * e, sxy += xv * yv, syy += yv * yv, sae += fabs(e);
            if (fabs(e) > t.maxe) t.maxe = fabs(e);
            const float ef = x[i] - y[i];
            if (x[i] < t.xlo) t.xlo = x[i];
            if (x[i] > t.xhi) t.xhi = x[i];
            if (y[i] < t.ylo) t.ylo = y[i];
            if (y[i] > t.yhi) t.yhi = y[i];
            if (ef < t.elo) t.elo = ef;
            if (ef > t.ehi) t.ehi = ef;
        }
        t.sxx += sxx, t.see += see, t.sxy += sxy, t.syy += syy, t.sae += sae;
    }
    const double cnt = (double)(rows * n);
    a->stats.mse = t.see / cnt;
    a->stats.max_abs_err = t.maxe;
    a->stats.mean_abs_err = t.sae / cnt;
    a->stats.cosine = t.sxx > 0 && t.syy > 0 ? t.sxy / sqrt(t.sxx * t.syy) : 0;
    a->stats.sqnr_db = t.see > 0 ? 10.0 * log10(t.sxx / t.see) : INFINITY;
    double lo = o->lo, hi = o->hi, elo = o->err_lo, ehi = o->err_hi;
    if (o->auto_range) {
        lo = fmin(t.xlo, t.ylo), hi = fmax(t.xhi, t.yhi), elo = t.elo, ehi = t.ehi;
        widen(&lo, &hi);
        widen(&elo, &ehi);
    }
    qb_histogram *h[3] = {&a->hist_orig, &a->hist_deq, &a->hist_err};
    const double los[3] = {lo, lo, elo}, his[3] = {hi, hi, ehi};
    for (int k = 0; k < 3; k++) {
        h[k]->bins = o->bins, h[k]->lo = los[k], h[k]->hi = his[k];
        h[k]->counts = calloc((size_t)o->bins, sizeof *h[k]->counts);
    }
    for (int64_t i = 0; i < rows * n; i++) {
        count(h[0], x[i]);
        count(h[1], y[i]);
        count(h[2], (float)(x[i] - y[i]));
    }
    /* mapping: the smallest original (first index among equals) per bucket, plus the largest */
    const int nmap = o->map_points;
    a->map_x = malloc((size_t)nmap * sizeof(float));
    a->map_y = malloc((size_t)nmap * sizeof(float));
    double mlo = t.xlo, mhi = t.xhi;
    if (!(mlo <= mhi)) return;
    if (!(mlo < mhi)) mhi = mlo + 1.0;
    int64_t *best = malloc((size_t)nmap * sizeof *best);
    for (int b = 0; b < nmap; b++) best[b] = -1;
    for (int64_t i = 0; nmap > 1 && i < rows * n; i++) {
        const int b = bin_of(x[i], mlo, mhi, nmap - 1);
        if (b < 0 || b >= nmap - 1) continue;
        if (best[b] < 0 || x[i] < x[best[b]]) best[b] = i;
    }
    int64_t last = -1;
    for (int64_t i = 0; i < rows * n && last < 0; i++)
        if (x[i] == t.xhi) last = i;
    for (int b = 0; b < nmap - 1; b++)
        if (best[b] >= 0) a->map_x[a->n_map] = x[best[b]], a->map_y[a->n_map++] = y[best[b]];
    if (last >= 0 && (a->n_map == 0 || x[last] > a->map_x[a->n_map - 1]))
        a->map_x[a->n_map] = x[last], a->map_y[a->n_map++] = y[last];
    free(best);
}

/* comparison ------------------------------------------------------------------------------- */

static void same_double(double got, double want, const char *what, const char *ctx)
{
    if (memcmp(&got, &want, sizeof got) != 0 && !(got != got && want != want))
        fail_msg("%s: %s %.17g, oracle %.17g", ctx, what, got, want);
}

static void expect_same(const qb_analysis *got, const qb_analysis *want, const char *ctx)
{
    same_double(got->stats.mse, want->stats.mse, "mse", ctx);
    same_double(got->stats.max_abs_err, want->stats.max_abs_err, "max |e|", ctx);
    same_double(got->stats.mean_abs_err, want->stats.mean_abs_err, "mean |e|", ctx);
    same_double(got->stats.sqnr_db, want->stats.sqnr_db, "sqnr", ctx);
    same_double(got->stats.cosine, want->stats.cosine, "cosine", ctx);
    const qb_histogram *g[3] = {&got->hist_orig, &got->hist_deq, &got->hist_err};
    const qb_histogram *w[3] = {&want->hist_orig, &want->hist_deq, &want->hist_err};
    for (int k = 0; k < 3; k++) {
        same_double(g[k]->lo, w[k]->lo, "histogram lo", ctx);
        same_double(g[k]->hi, w[k]->hi, "histogram hi", ctx);
        assert_int_equal(g[k]->bins, w[k]->bins);
        if (g[k]->under != w[k]->under || g[k]->over != w[k]->over)
            fail_msg("%s: histogram %d under/over %llu/%llu, oracle %llu/%llu", ctx, k, (unsigned long long)g[k]->under,
                     (unsigned long long)g[k]->over, (unsigned long long)w[k]->under, (unsigned long long)w[k]->over);
        for (int i = 0; i < g[k]->bins; i++)
            if (g[k]->counts[i] != w[k]->counts[i])
                fail_msg("%s: histogram %d bin %d: %llu, oracle %llu", ctx, k, i, (unsigned long long)g[k]->counts[i],
                         (unsigned long long)w[k]->counts[i]);
    }
    if (got->n_map != want->n_map) fail_msg("%s: %d mapping points, oracle %d", ctx, got->n_map, want->n_map);
    for (int i = 0; i < got->n_map; i++)
        if (memcmp(&got->map_x[i], &want->map_x[i], 4) || memcmp(&got->map_y[i], &want->map_y[i], 4))
            fail_msg("%s: mapping point %d (%.9g, %.9g), oracle (%.9g, %.9g)", ctx, i, got->map_x[i], got->map_y[i],
                     want->map_x[i], want->map_y[i]);
}

/* x quantized to f and dequantized again (rows × n floats, malloc'd). */
static float *dequantized(qb_ctx *ctx, const qb_format *f, const float *x, int64_t rows, int64_t n)
{
    const size_t rb = qb_format_row_bytes(f, n);
    uint8_t *q = malloc((size_t)rows * rb);
    float *y = malloc((size_t)(rows * n) * sizeof *y);
    assert_non_null(q);
    assert_non_null(y);
    assert_int_equal(qb_quantize_matrix(ctx, f, x, rows, n, q, NULL), QB_OK);
    for (int64_t r = 0; r < rows; r++) qb_dequantize_row(f, q + (size_t)r * rb, y + r * n, n);
    free(q);
    return y;
}

static void check(const char *name, const float *x, int64_t rows, int64_t n, const qb_analysis_opts *o)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_format f;
    assert_int_equal(qb_format_parse(&ctx, name, &f), QB_OK);
    float *y = dequantized(&ctx, &f, x, rows, n);
    qb_analysis want, got;
    oracle(x, y, rows, n, o, &want);
    for (int threads = 1; threads <= 3; threads++) {
        char c[96];
        ctx.n_threads = threads;
        snprintf(c, sizeof c, "%s, %d bins, %d points, %d threads", name, o->bins, o->map_points, threads);
        assert_int_equal(qb_quant_analyze(&ctx, &f, x, rows, n, o, &got), QB_OK);
        expect_same(&got, &want, c);
        qb_analysis_free(&got);
        assert_int_equal(qb_quant_analyze_given(&ctx, &f, x, y, rows, n, o, &got), QB_OK);
        expect_same(&got, &want, c);
        qb_analysis_free(&got);
    }
    qb_analysis_free(&want);
    free(y);
}

static float *tensor(int64_t count, bool nans)
{
    float *x = malloc((size_t)count * sizeof *x);
    for (int64_t i = 0; i < count; i++) {
        const double u = urand();
        float v = (float)((urand() - 0.5) * 0.08);
        if (u < 0.01) v *= 20;                /* outliers: sparse tail buckets */
        v = qb_f16_to_f32(qb_f32_to_f16(v));  /* f16 values: many exact repeats */
        if (u > 0.995) v = 0.0f;
        if (nans && u > 0.5 && u < 0.502) v = NAN;
        x[i] = v;
    }
    return x;
}

static void test_exact(void **state)
{
    (void)state;
    const int64_t rows = 45, n = 512;
    float *x = tensor(rows * n, false), *xn = tensor(rows * n, true);
    const qb_analysis_opts small = {.bins = 64, .auto_range = true, .map_points = 512};
    const qb_analysis_opts large = {.bins = 300, .auto_range = true, .map_points = 37};
    const qb_analysis_opts huge = {.bins = 700, .auto_range = true, .map_points = 64}; /* separate counts */
    const qb_analysis_opts tui = {.bins = 64, .auto_range = true, .map_points = 4096}; /* buckets in groups */
    const qb_analysis_opts manual = {.bins = 40, .lo = -0.02, .hi = 0.03, .err_lo = -1e-3, .err_hi = 5e-4,
                                     .map_points = 2};
    static const char *names[] = {"int4-g128", "int3-channel-asym", "q4_k", "q8_0", "q6_k", "nf4", "int8-tensor"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        check(names[k], x, rows, n, &small);
        check(names[k], x, rows, n, &large);
        check(names[k], xn, rows, n, &huge);
        check(names[k], xn, rows, n, &manual);
    }
    check("q4_0", xn, rows, n, &small);
    check("int4-g128", x, rows, n, &tui);
    check("q4_k", xn, rows, n, &tui);
    check("int5-channel", x, 7, 101, &small); /* rows not a multiple of the row group */
    free(x);
    free(xn);
}

/* One scratch through a run of analyses, as the workbench lends it: the mapping's originals
 * remembered from the first format serve the later ones (and the given-matrix entry point),
 * another point count, another range (manual) or another source is filtered afresh; every
 * result still the oracle's, bit for bit. */
static void test_scratch_reuse(void **state)
{
    (void)state;
    const int64_t rows = 45, n = 512;
    float *x = tensor(rows * n, false), *xn = tensor(rows * n, true);
    const qb_analysis_opts tui = {.bins = 64, .auto_range = true, .map_points = 4096};
    const qb_analysis_opts small = {.bins = 64, .auto_range = true, .map_points = 512};
    const qb_analysis_opts manual = {.bins = 40, .lo = -0.02, .hi = 0.03, .err_lo = -1e-3, .err_hi = 5e-4,
                                     .map_points = 512};
    const struct {
        const char *fmt;
        int src; /* 0: x, 1: xn */
        const qb_analysis_opts *o;
        bool given;
    } runs[] = {{"int4-g128", 0, &tui, false}, {"q4_k", 0, &tui, false}, {"q4_k", 0, &tui, true},
                {"nf4", 0, &tui, false},       {"q6_k", 0, &small, false}, {"q8_0", 0, &small, true},
                {"q4_0", 1, &small, false},    {"int3-channel-asym", 1, &small, false},
                {"q4_k", 1, &manual, false},   {"int4-g128", 0, &tui, false}};
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    ctx.n_threads = 2;
    qb_analysis_scratch sc = {0};
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        const float *src = runs[i].src ? xn : x;
        qb_format f;
        assert_int_equal(qb_format_parse(&ctx, runs[i].fmt, &f), QB_OK);
        float *y = dequantized(&ctx, &f, src, rows, n);
        qb_analysis want, got;
        oracle(src, y, rows, n, runs[i].o, &want);
        qb_analysis_opts o = *runs[i].o;
        o.scratch = &sc;
        char c[96];
        snprintf(c, sizeof c, "scratch run %zu: %s%s", i, runs[i].fmt, runs[i].given ? " (given)" : "");
        if (runs[i].given) assert_int_equal(qb_quant_analyze_given(&ctx, &f, src, y, rows, n, &o, &got), QB_OK);
        else assert_int_equal(qb_quant_analyze(&ctx, &f, src, rows, n, &o, &got), QB_OK);
        expect_same(&got, &want, c);
        assert_non_null(sc.map.map_idx); /* remembered for the next run */
        assert_ptr_equal(sc.map.src, src);
        assert_int_equal(sc.map.points, o.map_points);
        qb_analysis_free(&got);
        qb_analysis_free(&want);
        free(y);
    }
    qb_analysis_scratch_free(&sc);
    assert_null(sc.map.map_idx);
    free(x);
    free(xn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_exact), cmocka_unit_test(test_scratch_reuse)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
