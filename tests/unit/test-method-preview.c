/* test-method-preview.c — qb_method_preview on a synthetic layer (inputs with a few large,
 * correlated channels): GPTQ gives exactly qb_gptq_quantize's values and a lower output error
 * than RTN; AWQ does no worse than RTN; RTN reports equal errors; missing XᵀX is an error;
 * qb_quant_analyze_given on RTN's values matches qb_quant_analyze; learned rounding of the matrix
 * alone watched step by step, below RTN, on the grid; a k-quant from the weighted start too. */
#include "testutil.h"
#include "core/method/preview.h"
#include "core/quant/stats.h"

#include <math.h>

enum { ROWS = 48, N = 128, TOKENS = 512 };

typedef struct {
    float w[ROWS * N];
    double xtx[N * N], sumabs[N], sumsq[N];
    float absmax[N];
    qb_calib_stat cs;
} layer;

static uint32_t rng = 12345;
static float urand(void)
{
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) * (1.0 / 16777216.0)) - 0.5f;
}

static void make_layer(layer *L)
{
    memset(L, 0, sizeof *L);
    for (int i = 0; i < ROWS * N; i++) L->w[i] = urand() * 0.2f;
    float x[N];
    for (int t = 0; t < TOKENS; t++) {
        float common = urand();
        for (int i = 0; i < N; i++) {
            x[i] = urand() + (i % 16 == 0 ? 8.0f * common : 0.5f * common);
            L->sumabs[i] += fabsf(x[i]);
            L->sumsq[i] += (double)x[i] * x[i];
            if (fabsf(x[i]) > L->absmax[i]) L->absmax[i] = fabsf(x[i]);
        }
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) L->xtx[i * N + j] += (double)x[i] * x[j];
    }
    L->cs = (qb_calib_stat){.width = N, .n = TOKENS, .absmax = L->absmax, .sumsq = L->sumsq, .sumabs = L->sumabs,
                            .xtx = L->xtx};
}

static void gptq_beats_rtn(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    static layer L;
    make_layer(&L);
    qb_format f;
    assert_int_equal(qb_format_parse(&ctx, "int3-g32-asym", &f), QB_OK);
    qb_method meth;
    assert_int_equal(qb_method_parse(&ctx, "gptq", &meth), QB_OK);
    static float deq[ROWS * N], ref[ROWS * N];
    qb_method_preview_result r;
    assert_int_equal(qb_method_preview(&ctx, &meth, &f, L.w, ROWS, N, &L.cs, deq, &r, NULL), QB_OK);
    assert_int_equal(qb_gptq_quantize(&ctx, &f, L.w, ROWS, N, L.xtx, &meth.gptq, NULL, ref, NULL), QB_OK);
    assert_memory_equal(deq, ref, sizeof deq);
    assert_true(r.out_err > 0 && r.out_err_rtn > 0);
    assert_true(r.out_err < r.out_err_rtn);
    assert_true(isnan(r.alpha));
    assert_true(fabs(r.out_err - qb_gptq_output_error(L.w, deq, ROWS, N, L.xtx)) < 1e-12);
}

static void awq_no_worse(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    static layer L;
    make_layer(&L);
    qb_format f;
    assert_int_equal(qb_format_parse(&ctx, "int4-g32-asym", &f), QB_OK);
    qb_method meth;
    assert_int_equal(qb_method_parse(&ctx, "awq", &meth), QB_OK);
    meth.awq.clip = false; /* the search alone: α = 0 (plain RTN) is on its grid */
    static float deq[ROWS * N];
    qb_method_preview_result r;
    assert_int_equal(qb_method_preview(&ctx, &meth, &f, L.w, ROWS, N, &L.cs, deq, &r, NULL), QB_OK);
    assert_true(r.alpha >= 0 && r.alpha <= 1);
    assert_true(r.out_err <= r.out_err_rtn * (1 + 1e-6));
    meth.awq.clip = true;
    assert_int_equal(qb_method_preview(&ctx, &meth, &f, L.w, ROWS, N, &L.cs, deq, &r, NULL), QB_OK);
    assert_true(r.out_err < r.out_err_rtn);
}

static void rtn_and_errors(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    static layer L;
    make_layer(&L);
    qb_format f;
    assert_int_equal(qb_format_parse(&ctx, "int4-g64-asym", &f), QB_OK);
    qb_method meth;
    assert_int_equal(qb_method_parse(&ctx, "rtn", &meth), QB_OK);
    static float deq[ROWS * N];
    qb_method_preview_result r;
    assert_int_equal(qb_method_preview(&ctx, &meth, &f, L.w, ROWS, N, &L.cs, deq, &r, NULL), QB_OK);
    assert_true(r.out_err == r.out_err_rtn);
    assert_int_equal(qb_method_preview(&ctx, &meth, &f, L.w, ROWS, N, NULL, deq, &r, NULL), QB_OK);
    assert_true(isnan(r.out_err));
    /* the analysis of given values is the analysis RTN would do */
    qb_analysis_opts o = {.bins = 32, .auto_range = true, .map_points = 64};
    qb_analysis a, b;
    assert_int_equal(qb_quant_analyze(&ctx, &f, L.w, ROWS, N, &o, &a), QB_OK);
    assert_int_equal(qb_quant_analyze_given(&ctx, &f, L.w, deq, ROWS, N, &o, &b), QB_OK);
    assert_true(a.stats.mse == b.stats.mse && a.stats.bpw == b.stats.bpw && a.stats.bytes_quant == b.stats.bytes_quant);
    assert_int_equal(a.n_map, b.n_map);
    assert_memory_equal(a.hist_err.counts, b.hist_err.counts, 32 * sizeof(uint64_t));
    qb_analysis_free(&a);
    qb_analysis_free(&b);
    /* GPTQ without XᵀX, or with another width: an error that says so */
    assert_int_equal(qb_method_parse(&ctx, "gptq", &meth), QB_OK);
    assert_int_equal(qb_method_preview(&ctx, &meth, &f, L.w, ROWS, N, NULL, deq, &r, NULL), QB_ERR_ARG);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "gptq"));
    L.cs.width = N / 2;
    assert_int_equal(qb_method_preview(&ctx, &meth, &f, L.w, ROWS, N, &L.cs, deq, &r, NULL), QB_ERR_ARG);
    /* cancelled */
    L.cs.width = N;
    volatile int stop = 1;
    assert_int_equal(qb_method_preview(&ctx, &meth, &f, L.w, ROWS, N, &L.cs, deq, &r, &stop), QB_ERR_CANCELLED);
}

typedef struct {
    double err[64];
    int n;
} watched;

static void watch_step(void *ud, int it, int iters, double e, const float *wq)
{
    watched *w = ud;
    assert_int_equal(it, w->n);
    assert_int_equal(iters, 40);
    assert_non_null(wq);
    if (w->n < 64) w->err[w->n++] = e;
}

/* Learned rounding on one matrix: every step is watched with the error of its values, the
 * start is round-to-nearest's error, the result is the best step's and beats RTN; the values
 * sit on the format's grid (at most 2^3 distinct values per group of 32); formats it cannot
 * learn are refused. */
static void learned_beats_rtn(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    static layer L;
    make_layer(&L);
    qb_format f;
    assert_int_equal(qb_format_parse(&ctx, "int3-g32-asym", &f), QB_OK);
    qb_method meth;
    assert_int_equal(qb_method_parse(&ctx, "learned", &meth), QB_OK);
    meth.learned.iters = 40;
    static float deq[ROWS * N];
    qb_method_preview_result r;
    watched w = {.n = 0};
    assert_int_equal(qb_method_preview_watch(&ctx, &meth, &f, L.w, ROWS, N, &L.cs, deq, &r, watch_step, &w, NULL),
                     QB_OK);
    assert_int_equal(w.n, 41);
    assert_true(fabs(w.err[0] - r.out_err_rtn) < 1e-4 * r.out_err_rtn);
    double best = w.err[0];
    for (int i = 1; i < w.n; i++) best = fmin(best, w.err[i]);
    assert_true(fabs(best - r.out_err) < 1e-4 * r.out_err);
    assert_true(r.out_err < 0.9 * r.out_err_rtn);
    for (int g = 0; g < ROWS * N / 32; g++) {
        float vals[32];
        int nv = 0;
        for (int i = 0; i < 32; i++) {
            int k = 0;
            while (k < nv && vals[k] != deq[g * 32 + i]) k++;
            if (k == nv) vals[nv++] = deq[g * 32 + i];
        }
        assert_true(nv <= 8);
    }
    assert_int_equal(qb_format_parse(&ctx, "q4_0", &f), QB_OK);
    assert_int_equal(qb_method_preview(&ctx, &meth, &f, L.w, ROWS, N, &L.cs, deq, &r, NULL), QB_ERR_UNSUPPORTED);
    volatile int stop = 1;
    assert_int_equal(qb_format_parse(&ctx, "int3-g32-asym", &f), QB_OK);
    assert_int_equal(qb_method_preview(&ctx, &meth, &f, L.w, ROWS, N, &L.cs, deq, &r, &stop), QB_ERR_CANCELLED);
}

/* A k-quant (rows of 256) learned from the importance-weighted start (weighted=1, the calibration's
 * mean squares, as the model-level method starts) and from the plain one: both below RTN. */
static void learned_kquant_weighted(void **state)
{
    (void)state;
    enum { R = 16, K = 256, TOK = 384 };
    static float w[R * K], deq[R * K], absmax[K];
    static double xtx[K * K], sumsq[K], sumabs[K];
    memset(xtx, 0, sizeof xtx), memset(sumsq, 0, sizeof sumsq), memset(sumabs, 0, sizeof sumabs);
    for (int i = 0; i < R * K; i++) w[i] = urand() * 0.2f;
    float x[K];
    for (int t = 0; t < TOK; t++) {
        float common = urand();
        for (int i = 0; i < K; i++) {
            x[i] = urand() + (i % 32 == 0 ? 6.0f * common : 0.3f * common);
            sumsq[i] += (double)x[i] * x[i];
            sumabs[i] += fabsf(x[i]);
            if (fabsf(x[i]) > absmax[i]) absmax[i] = fabsf(x[i]);
        }
        for (int i = 0; i < K; i++)
            for (int j = 0; j < K; j++) xtx[i * K + j] += (double)x[i] * x[j];
    }
    qb_calib_stat cs = {.width = K, .n = TOK, .absmax = absmax, .sumsq = sumsq, .sumabs = sumabs, .xtx = xtx};
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_format f;
    assert_int_equal(qb_format_parse(&ctx, "q4_k", &f), QB_OK);
    qb_method meth;
    assert_int_equal(qb_method_parse(&ctx, "learned", &meth), QB_OK);
    meth.learned.iters = 30;
    for (int weighted = 0; weighted < 2; weighted++) {
        meth.learned.weighted = weighted;
        qb_method_preview_result r;
        assert_int_equal(qb_method_preview(&ctx, &meth, &f, w, R, K, &cs, deq, &r, NULL), QB_OK);
        print_message("q4_k learned%s: output error %.4e, RTN %.4e\n", weighted ? " (weighted start)" : "", r.out_err,
                      r.out_err_rtn);
        assert_true(r.out_err > 0 && r.out_err < r.out_err_rtn);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gptq_beats_rtn),
        cmocka_unit_test(awq_no_worse),
        cmocka_unit_test(rtn_and_errors),
        cmocka_unit_test(learned_beats_rtn),
        cmocka_unit_test(learned_kquant_weighted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
