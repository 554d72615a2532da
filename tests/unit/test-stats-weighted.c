/* test-stats-weighted.c — the importance-weighted error statistics of the analysis
 * (core/quant/stats.h: wstats, hist_werr): small cases computed by hand, uniform weights giving
 * the plain numbers bit for bit, a zero weight removing its column's error, expert tensors
 * (each expert's rows weighted by its own importance row, through qb_importance_lookup too),
 * a direct double-precision computation on a larger matrix, bad importance refused, and
 * llama.cpp's ggml: for the K-quants and IQ4_XS, what ggml_quantize_chunk writes with an
 * importance has no larger weighted error than what it writes without (the weighting's
 * purpose), dequantized by ggml's own dequantize_row_*; and the analysis that quantizes with
 * the importance itself (quantize_weighted, per expert too) measures exactly ggml's result. */
#include "testutil.h"
#include "ggml_peer.h"

#include "core/qb.h"
#include "core/quant/importance.h"
#include "core/quant/stats.h"

#include <math.h>

static uint64_t rng_next(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double uni(uint64_t *s) { return ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0; }

static float gauss(uint64_t *s) { return (float)(sqrt(-2.0 * log(uni(s))) * cos(6.283185307179586 * uni(s))); }

static float *gauss_matrix(uint64_t seed, int64_t count)
{
    float *x = malloc((size_t)count * sizeof *x);
    assert_non_null(x);
    uint64_t s = seed;
    for (int64_t i = 0; i < count; i++) {
        x[i] = gauss(&s) * 0.02f;
        if (rng_next(&s) % 300 == 0) x[i] *= 10; /* outliers */
    }
    return x;
}

/* llama-imatrix-like importance: log-normal over a few decades. */
static float *importance(uint64_t seed, int64_t n)
{
    float *w = malloc((size_t)n * sizeof *w);
    assert_non_null(w);
    uint64_t s = seed;
    for (int64_t j = 0; j < n; j++) w[j] = expf(1.5f * gauss(&s));
    return w;
}

static qb_format fmt(const char *name)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_format f;
    if (qb_format_parse(&ctx, name, &f) != QB_OK) fail_msg("parse '%s': %s", name, qb_ctx_errmsg(&ctx));
    return f;
}

static void given(const float *x, const float *y, int64_t rows, int64_t n, const float *w, int64_t mats, qb_analysis *a)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    ctx.n_threads = 2;
    qb_format f = fmt("f32");
    qb_analysis_opts o = {.bins = 16, .auto_range = true, .importance = w, .imp_mats = mats};
    if (qb_quant_analyze_given(&ctx, &f, x, y, rows, n, &o, a) != QB_OK) fail_msg("analyze: %s", qb_ctx_errmsg(&ctx));
}

static void near(double got, double want, double rel, const char *what)
{
    if (!(fabs(got - want) <= rel * fabs(want) + 1e-300))
        fail_msg("%s: %.12g, expected %.12g (relative %.1e allowed)", what, got, want, rel);
}

static uint64_t hist_total(const qb_histogram *h)
{
    uint64_t t = h->under + h->over;
    for (int i = 0; i < h->bins; i++) t += h->counts[i];
    return t;
}

/* 2 rows of 4 with weights {1, 2, 0, 1}: every number by hand.
 *   e = x − x̂ = {−0.5, 0, 1, 0 | 0, −0.5, 0, 1}
 *   Σ w e² = 0.25 + (2·0.25 + 1) = 1.75, rows · Σw = 8  → weighted MSE 0.21875
 *   Σ w x² = (1 + 8 + 0 + 16) + (1 + 0 + 0 + 4) = 30   → relative error 1.75 / 30
 *   s = sqrt(w / w̄) = {1, √2, 0, 1}: max |s e| = 1 (row 1, column 3)
 * and the plain MSE (0.25 + 1 + 0.25 + 1) / 8 = 0.3125 keeps column 2's error. */
static void test_by_hand(void **state)
{
    (void)state;
    const float x[8] = {1, 2, 3, 4, -1, 0, 1, 2}, y[8] = {1.5f, 2, 2, 4, -1, 0.5f, 1, 1};
    const float w[4] = {1, 2, 0, 1};
    qb_analysis a;
    given(x, y, 2, 4, w, 1, &a);
    assert_true(a.weighted);
    near(a.stats.mse, 0.3125, 1e-15, "plain MSE");
    near(a.wstats.mse, 0.21875, 1e-7, "weighted MSE");
    near(a.wstats.rmse, sqrt(0.21875), 1e-7, "weighted RMSE");
    near(a.wstats.rel_err, 1.75 / 30, 1e-7, "weighted relative error");
    near(a.wstats.sqnr_db, 10 * log10(30 / 1.75), 1e-7, "weighted SQNR");
    near(a.wstats.max_abs_err, 1.0, 1e-7, "weighted max error");
    near(a.wstats.mean_abs_err, (0.5 + sqrt(2) * 0.5 + 1) / 8, 1e-7, "weighted mean |error|");
    assert_int_equal(a.wstats.n, 8);
    assert_int_equal(hist_total(&a.hist_werr), 8);
    assert_int_equal(a.hist_werr.bins, 16);
    qb_analysis_free(&a);

    /* without importance nothing weighted is filled */
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_format f = fmt("f32");
    assert_int_equal(qb_quant_analyze_given(&ctx, &f, x, y, 2, 4, NULL, &a), QB_OK);
    assert_false(a.weighted);
    assert_null(a.hist_werr.counts);
    qb_analysis_free(&a);
}

static void same_stats(const qb_error_stats *g, const qb_error_stats *p)
{
    const double gv[8] = {g->mse, g->rmse, g->max_abs_err, g->mean_abs_err, g->sqnr_db, g->rel_err, g->cosine, g->bpw};
    const double pv[8] = {p->mse, p->rmse, p->max_abs_err, p->mean_abs_err, p->sqnr_db, p->rel_err, p->cosine, p->bpw};
    for (int i = 0; i < 8; i++)
        if (memcmp(&gv[i], &pv[i], sizeof gv[i])) fail_msg("uniform weights: statistic %d is %.17g, plain %.17g", i, gv[i], pv[i]);
    assert_int_equal(g->n, p->n);
    assert_int_equal(g->bytes_quant, p->bytes_quant);
}

/* Uniform weights (any value, any row count, through qb_quant_analyze): scales of exactly 1,
 * so the weighted statistics and error histogram are the plain ones bit for bit. */
static void test_uniform_is_plain(void **state)
{
    (void)state;
    const int64_t rows = 37, n = 768;
    float *x = gauss_matrix(3, rows * n);
    const float values[3] = {0.37f, 1.0f, 1234.5f};
    const char *formats[3] = {"q4_k", "int4-g128-asym", "q8_0"};
    for (int k = 0; k < 3; k++) {
        float *w = malloc((size_t)n * sizeof *w);
        for (int64_t j = 0; j < n; j++) w[j] = values[k];
        qb_ctx ctx;
        qb_ctx_init(&ctx);
        ctx.n_threads = 2;
        qb_format f = fmt(formats[k]);
        qb_analysis_opts o = {.bins = 64, .auto_range = true, .map_points = 64, .importance = w};
        qb_analysis a;
        assert_int_equal(qb_quant_analyze(&ctx, &f, x, rows, n, &o, &a), QB_OK);
        assert_true(a.weighted);
        same_stats(&a.wstats, &a.stats);
        assert_true(a.hist_werr.lo == a.hist_err.lo && a.hist_werr.hi == a.hist_err.hi);
        assert_memory_equal(a.hist_werr.counts, a.hist_err.counts, (size_t)a.hist_err.bins * sizeof(uint64_t));
        assert_true(a.stats.mse > 0);
        qb_analysis_free(&a);
        free(w);
    }
    free(x);
}

/* A column of weight 0 removes its error: x̂ = x but in column 5, which is far off; with column
 * 5's weight 0 the weighted error is zero (SQNR exact), the plain one is not. With column 5's
 * weight raised instead, its error dominates. */
static void test_zero_weight_removes_column(void **state)
{
    (void)state;
    const int64_t rows = 9, n = 32;
    float *x = gauss_matrix(5, rows * n), *y = malloc((size_t)(rows * n) * sizeof *y), w[32];
    memcpy(y, x, (size_t)(rows * n) * sizeof *y);
    for (int64_t r = 0; r < rows; r++) y[r * n + 5] += 0.5f;
    for (int j = 0; j < n; j++) w[j] = 1.0f + (float)j;
    w[5] = 0;
    qb_analysis a;
    given(x, y, rows, n, w, 1, &a);
    near(a.stats.mse, 0.25 / 32, 1e-6, "plain MSE: column 5's error");
    assert_true(a.wstats.mse == 0 && a.wstats.max_abs_err == 0 && a.wstats.rel_err == 0);
    assert_true(isinf(a.wstats.sqnr_db));
    qb_analysis_free(&a);
    w[5] = 100;
    given(x, y, rows, n, w, 1, &a);
    /* Σw = Σ_{j≠5}(1 + j) + 100 = 528 + 100 − 6 = 622; error 0.25 per row in column 5 only */
    near(a.wstats.mse, 100.0 * 0.25 * (double)rows / ((double)rows * 622), 1e-5, "column 5 weighted");
    qb_analysis_free(&a);
    free(x);
    free(y);
}

/* Direct double-precision weighted statistics of rows × n against x̂, rows in mats blocks. */
static void direct(const float *x, const float *y, int64_t rows, int64_t n, const float *w, int64_t mats, double *mse,
                   double *rel, double *maxe)
{
    double see = 0, sxx = 0, count = 0;
    *maxe = 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *wm = w + (r / (rows / mats)) * n;
        double sw = 0;
        for (int64_t j = 0; j < n; j++) sw += wm[j];
        for (int64_t j = 0; j < n; j++) {
            const double e = (double)x[r * n + j] - y[r * n + j];
            see += wm[j] * e * e / sw * (double)n; /* Σ (w / w̄) e² */
            sxx += wm[j] * (double)x[r * n + j] * x[r * n + j] / sw * (double)n;
            const double se = sqrt(wm[j] / sw * (double)n) * fabs(e);
            if (se > *maxe) *maxe = se;
            count++;
        }
    }
    *mse = see / count;
    *rel = see / sxx;
}

/* A 3-D expert tensor (4 experts × 6 rows of 96): each expert's rows weighted by its own row of
 * the importance, against the direct computation; the same rows with the experts' importance
 * rows swapped score differently. Then our per-expert tensor names: qb_importance_lookup gives
 * expert 2's row for "blk.0.ffn_up_exps.2.weight", and that one expert's analysis equals the
 * direct computation with that row. */
typedef struct {
    const float *v;
    int64_t count;
} fake_imp;

static const float *fake_entry(const void *src, const char *name, int64_t *count)
{
    const fake_imp *f = src;
    if (strcmp(name, "blk.0.ffn_up_exps.weight")) return NULL;
    *count = f->count;
    return f->v;
}

static void test_experts(void **state)
{
    (void)state;
    enum { E = 4, R = 6, N = 96 };
    float *x = gauss_matrix(7, E * R * N), *y = malloc(E * R * N * sizeof *y);
    uint64_t s = 11;
    for (int i = 0; i < E * R * N; i++) y[i] = x[i] + 0.01f * gauss(&s);
    float *w = importance(13, E * N);
    qb_analysis a;
    given(x, y, E * R, N, w, E, &a);
    double mse, rel, maxe;
    direct(x, y, E * R, N, w, E, &mse, &rel, &maxe);
    near(a.wstats.mse, mse, 1e-5, "experts: weighted MSE");
    near(a.wstats.rel_err, rel, 1e-5, "experts: weighted relative error");
    near(a.wstats.max_abs_err, maxe, 1e-5, "experts: weighted max error");
    /* swapped: expert 0 takes expert 1's importance and the other way round */
    float *sw = malloc(E * N * sizeof *sw);
    memcpy(sw, w, E * N * sizeof *sw);
    memcpy(sw, w + N, N * sizeof *sw);
    memcpy(sw + N, w, N * sizeof *sw);
    qb_analysis b;
    given(x, y, E * R, N, sw, E, &b);
    assert_true(fabs(b.wstats.mse - a.wstats.mse) > 1e-3 * a.wstats.mse);
    qb_analysis_free(&b);
    qb_analysis_free(&a);

    /* per-expert tensor of the model: expert 2 alone, importance through the lookup */
    fake_imp fi = {w, E * N};
    qb_importance imp = {.path = "fake.dat", .src = &fi, .entry = fake_entry};
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    const float *w2 = NULL;
    bool missing = true;
    assert_int_equal(qb_importance_lookup(&ctx, &imp, "blk.0.ffn_up_exps.2.weight", N, 1, E, &w2, &missing), QB_OK);
    assert_false(missing);
    assert_ptr_equal(w2, w + 2 * N);
    given(x + 2 * R * N, y + 2 * R * N, R, N, w2, 1, &a);
    direct(x + 2 * R * N, y + 2 * R * N, R, N, w + 2 * N, 1, &mse, &rel, &maxe);
    near(a.wstats.mse, mse, 1e-5, "expert 2: weighted MSE");
    direct(x + 2 * R * N, y + 2 * R * N, R, N, w, 1, &mse, &rel, &maxe); /* expert 0's row: not this */
    assert_true(fabs(a.wstats.mse - mse) > 1e-3 * mse);
    qb_analysis_free(&a);
    free(sw);
    free(w);
    free(x);
    free(y);
}

/* A larger quantized matrix: the weighted numbers against the direct computation on the
 * dequantized rows, histogram totals, results independent of the thread count. */
static void test_direct_quantized(void **state)
{
    (void)state;
    const int64_t rows = 64, n = 512;
    float *x = gauss_matrix(17, rows * n), *w = importance(19, n), *y = malloc((size_t)(rows * n) * sizeof *y);
    qb_format f = fmt("q4_k");
    uint8_t *q = malloc((size_t)rows * qb_format_row_bytes(&f, n));
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    assert_int_equal(qb_quantize_matrix(&ctx, &f, x, rows, n, q, NULL), QB_OK);
    for (int64_t r = 0; r < rows; r++) qb_dequantize_row(&f, q + (size_t)r * qb_format_row_bytes(&f, n), y + r * n, n);
    qb_analysis a[2];
    for (int t = 0; t < 2; t++) {
        ctx.n_threads = t ? 3 : 1;
        qb_analysis_opts o = {.bins = 40, .auto_range = true, .map_points = 16, .importance = w, .imp_mats = 1};
        assert_int_equal(qb_quant_analyze(&ctx, &f, x, rows, n, &o, &a[t]), QB_OK);
    }
    double mse, rel, maxe;
    direct(x, y, rows, n, w, 1, &mse, &rel, &maxe);
    near(a[0].wstats.mse, mse, 1e-5, "weighted MSE");
    near(a[0].wstats.rel_err, rel, 1e-5, "weighted relative error");
    near(a[0].wstats.max_abs_err, maxe, 1e-5, "weighted max error");
    assert_int_equal(hist_total(&a[0].hist_werr), rows * n);
    assert_true(a[0].hist_werr.under == 0 && a[0].hist_werr.over == 0);
    assert_memory_equal(&a[0].wstats, &a[1].wstats, sizeof a[0].wstats);
    assert_memory_equal(a[0].hist_werr.counts, a[1].hist_werr.counts, 40 * sizeof(uint64_t));
    qb_analysis_free(&a[0]);
    qb_analysis_free(&a[1]);
    free(q);
    free(x);
    free(y);
    free(w);
}

/* Bad importance: a negative or non-finite weight, matrices that do not divide the rows. */
static void test_bad_importance(void **state)
{
    (void)state;
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, w[4] = {1, 1, -1, 1};
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_format f = fmt("f32");
    qb_analysis a;
    qb_analysis_opts o = {.auto_range = true, .importance = w};
    assert_int_equal(qb_quant_analyze_given(&ctx, &f, x, x, 2, 4, &o, &a), QB_ERR_ARG);
    if (!strstr(qb_ctx_errmsg(&ctx), "importance of column 2")) fail_msg("message: %s", qb_ctx_errmsg(&ctx));
    w[2] = NAN;
    assert_int_equal(qb_quant_analyze(&ctx, &f, x, 2, 4, &o, &a), QB_ERR_ARG);
    w[2] = 1;
    o.imp_mats = 3;
    assert_int_equal(qb_quant_analyze_given(&ctx, &f, x, x, 2, 4, &o, &a), QB_ERR_ARG);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "do not split into 3"));
    qb_analysis_free(&a);
}

/* ---- llama.cpp's ggml ---- */

typedef size_t (*chunk_fn)(int type, const float *src, void *dst, int64_t start, int64_t nrows, int64_t n_per_row,
                           const float *imatrix);
typedef void (*deq_fn)(const void *src, float *dst, int64_t k);

static const struct {
    int type;
    const char *deq;
} ggml_types[] = {
    {QB_TYPE_Q2_K, "dequantize_row_q2_K"}, {QB_TYPE_Q3_K, "dequantize_row_q3_K"},
    {QB_TYPE_Q4_K, "dequantize_row_q4_K"}, {QB_TYPE_Q5_K, "dequantize_row_q5_K"},
    {QB_TYPE_Q6_K, "dequantize_row_q6_K"}, {QB_TYPE_IQ4_XS, "dequantize_row_iq4_xs"},
};
enum { N_GGML = sizeof ggml_types / sizeof ggml_types[0] };

/* For each type: ggml quantizes a 64 × 2048 matrix with a log-normal importance and without;
 * both dequantized by ggml; the weighted MSE of the first must not exceed the second's (it is
 * what ggml's weighted searches minimise), while the plain MSE may go either way. */
static void test_ggml_weighted_not_worse(void **state)
{
    (void)state;
    const char *syms[1 + N_GGML];
    void *fn[1 + N_GGML];
    syms[0] = "ggml_quantize_chunk";
    for (int t = 0; t < N_GGML; t++) syms[1 + t] = ggml_types[t].deq;
    void *lib = qbt_ggml_open(syms, 1 + N_GGML, fn);
    if (!lib) {
        print_message("skip: libggml-base.so not found ($QB_GGML_LIB or ../peer/llama.cpp/build/bin)\n");
        skip();
    }
    chunk_fn chunk = (chunk_fn)fn[0];
    const int64_t rows = 64, n = 2048;
    float *x = gauss_matrix(23, rows * n), *w = importance(29, n);
    float *yw = malloc((size_t)(rows * n) * sizeof *yw), *yp = malloc((size_t)(rows * n) * sizeof *yp);
    for (int t = 0; t < N_GGML; t++) {
        const int type = ggml_types[t].type;
        deq_fn deq = (deq_fn)fn[1 + t];
        const size_t rb = qb_type_row_bytes((qb_type)type, n);
        uint8_t *q = malloc(rb * (size_t)rows);
        assert_int_equal(chunk(type, x, q, 0, rows, n, w), rb * (size_t)rows);
        for (int64_t r = 0; r < rows; r++) deq(q + rb * (size_t)r, yw + r * n, n);
        assert_int_equal(chunk(type, x, q, 0, rows, n, NULL), rb * (size_t)rows);
        for (int64_t r = 0; r < rows; r++) deq(q + rb * (size_t)r, yp + r * n, n);
        qb_analysis aw, ap;
        given(x, yw, rows, n, w, 1, &aw);
        given(x, yp, rows, n, w, 1, &ap);
        print_message("%-7s weighted MSE %.4e with importance, %.4e without (plain MSE %.4e / %.4e)\n",
                      qb_type_get(type)->name, aw.wstats.mse, ap.wstats.mse, aw.stats.mse, ap.stats.mse);
        if (!(aw.wstats.mse <= ap.wstats.mse))
            fail_msg("%s: ggml's quantization with importance has weighted MSE %.6e, without %.6e", qb_type_get(type)->name,
                     aw.wstats.mse, ap.wstats.mse);
        assert_true(aw.wstats.sqnr_db >= ap.wstats.sqnr_db);
        /* the analysis quantizing with the importance itself (quantize_weighted, as the
         * workbench does with an imatrix) measures exactly ggml's weighted result */
        qb_ctx ctx;
        qb_ctx_init(&ctx);
        ctx.n_threads = 2;
        qb_format f = qb_format_ggml((qb_type)type);
        qb_analysis_opts o = {.bins = 16, .auto_range = true, .importance = w, .quantize_weighted = true};
        qb_analysis aq;
        assert_int_equal(qb_quant_analyze(&ctx, &f, x, rows, n, &o, &aq), QB_OK);
        if (aq.wstats.mse != aw.wstats.mse || aq.stats.mse != aw.stats.mse || aq.wstats.max_abs_err != aw.wstats.max_abs_err)
            fail_msg("%s: quantize_weighted measures %.9e (plain %.9e), ggml's weighted bytes %.9e (%.9e)",
                     qb_type_get(type)->name, aq.wstats.mse, aq.stats.mse, aw.wstats.mse, aw.stats.mse);
        qb_analysis_free(&aq);
        qb_analysis_free(&aw);
        qb_analysis_free(&ap);
        free(q);
    }
    /* two experts of 32 rows, each quantized by ggml with its own importance row, against the
     * analysis with imp_mats = 2 */
    float *w2 = importance(31, 2 * n);
    const size_t rb = qb_type_row_bytes(QB_TYPE_Q4_K, n);
    uint8_t *q = malloc(rb * (size_t)rows);
    for (int e = 0; e < 2; e++) assert_int_equal(chunk(QB_TYPE_Q4_K, x + e * 32 * n, q + rb * 32 * (size_t)e, 0, 32, n, w2 + e * n), rb * 32);
    for (int64_t r = 0; r < rows; r++) ((deq_fn)fn[1 + 2])(q + rb * (size_t)r, yw + r * n, n);
    qb_analysis ae, aq;
    given(x, yw, rows, n, w2, 2, &ae);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_format f = qb_format_ggml(QB_TYPE_Q4_K);
    qb_analysis_opts o = {.bins = 16, .auto_range = true, .importance = w2, .imp_mats = 2, .quantize_weighted = true};
    assert_int_equal(qb_quant_analyze(&ctx, &f, x, rows, n, &o, &aq), QB_OK);
    if (aq.wstats.mse != ae.wstats.mse || aq.stats.mse != ae.stats.mse)
        fail_msg("experts: quantize_weighted measures %.9e, ggml per expert %.9e", aq.wstats.mse, ae.wstats.mse);
    qb_analysis_free(&ae);
    qb_analysis_free(&aq);
    free(q);
    free(w2);
    free(x);
    free(w);
    free(yw);
    free(yp);
    dlclose(lib);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_by_hand),
        cmocka_unit_test(test_uniform_is_plain),
        cmocka_unit_test(test_zero_weight_removes_column),
        cmocka_unit_test(test_experts),
        cmocka_unit_test(test_direct_quantized),
        cmocka_unit_test(test_bad_importance),
        cmocka_unit_test(test_ggml_weighted_not_worse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
