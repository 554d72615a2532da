/* test-scan-estimate.c — the scan estimated from an importance matrix (qb_scan_estimate) and
 * Spearman's rank correlation (qb_spearman): the correlation against values worked by hand
 * and a textbook example, ties, degenerate input; the estimate on stories260K with an
 * importance matrix collected there: every block matrix estimated, token_embd left out (no
 * entry), ffn_down's 172-wide rows in llama-quantize's fallback, a finer format always estimated below a coarser one, per-layer units summing their
 * tensors, bad arguments refused. (How well the estimate ranks the measured KLDs is a figure,
 * measured by `quantbench scan MODEL TEXT --imatrix FILE`, in the README.) */
#include "testutil.h"
#include <math.h>

#include "core/calib/imatrix.h"
#include "core/eval/sensitivity.h"
#include "core/quant/format.h"

static void test_spearman(void **state)
{
    (void)state;
    /* Wikipedia, "Spearman's rank correlation coefficient", worked example: IQ against hours of
     * TV a week; rho = -29/165 */
    const double iq[10] = {106, 100, 86, 101, 99, 103, 97, 113, 112, 110};
    const double tv[10] = {7, 27, 2, 50, 28, 29, 20, 12, 6, 17};
    assert_true(fabs(qb_spearman(iq, tv, 10) - (-29.0 / 165.0)) < 1e-12);
    /* ties take the mean rank: ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4): 4.5 / sqrt(22.5) */
    const double a[4] = {1, 2, 2, 3}, b[4] = {10, 20, 30, 40};
    assert_true(fabs(qb_spearman(a, b, 4) - 4.5 / sqrt(22.5)) < 1e-12);
    /* monotone maps do not change it; reversing flips it */
    const double c[5] = {0.1, 5, 2, 9, 3}, d[5] = {exp(0.1), exp(5), exp(2), exp(9), exp(3)}, e[5] = {-1, -50, -20, -90, -30};
    assert_true(fabs(qb_spearman(c, d, 5) - 1) < 1e-12);
    assert_true(fabs(qb_spearman(c, e, 5) + 1) < 1e-12);
    const double k[3] = {2, 2, 2};
    assert_true(isnan(qb_spearman(k, b, 3)));
    assert_true(isnan(qb_spearman(a, b, 1)));
}

static void test_estimate(void **state)
{
    (void)state;
    const char *mp = qbt_model_path("stories260K/stories260K.bin"), *text = qbt_model_path("stories260K/ppl-sample.txt");
    qbt_need(mp);
    qbt_need(text);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m;
    assert_int_equal(qb_model_open(&ctx, mp, NULL, &m), QB_OK);
    qb_imatrix *im;
    qb_imatrix_opts io = {.n_ctx = 64, .n_chunks = 3};
    assert_int_equal(qb_imatrix_collect_file(&ctx, m, text, &io, &im), QB_OK);

    qb_format q4, q8;
    assert_int_equal(qb_format_parse(&ctx, "q4_0", &q4), QB_OK);
    assert_int_equal(qb_format_parse(&ctx, "q8_0", &q8), QB_OK);
    qb_scan_result r4, r8;
    assert_int_equal(qb_scan_estimate(&ctx, m, &q4, im, NULL, &r4), QB_OK);
    assert_int_equal(qb_scan_estimate(&ctx, m, &q8, im, NULL, &r8), QB_OK);
    assert_int_equal(r4.n_rows, 7 * m->cfg.n_layers);
    assert_int_equal(r4.n_skipped, 1);
    assert_non_null(strstr(r4.skipped_why, "token_embd.weight: no entry"));
    for (int i = 0; i < r4.n_rows; i++) {
        const qb_scan_row *w = &r4.rows[i];
        assert_true(w->has_est && w->est_err > 0 && w->est_rel > 0 && w->est_rel < 1);
        if (i) assert_true(w->est_err <= r4.rows[i - 1].est_err); /* ranked */
        const qb_scan_row *w8 = NULL;
        for (int j = 0; j < r8.n_rows; j++)
            if (!strcmp(r8.rows[j].name, w->name)) w8 = &r8.rows[j];
        assert_non_null(w8);
        if (!strcmp(w->format, "q4_0"))
            assert_true(w8->est_err < w->est_err / 50); /* 4 more bits: ~256x less squared error */
        else /* a row width neither fits: both the same fallback */
            assert_true(!strcmp(w->format, w8->format) && w8->est_err == w->est_err);
    }
    /* per layer: a block's row is the sum of its matrices' */
    qb_scan_opts so = {.per = QB_SCAN_LAYER, .blocks_only = true};
    qb_scan_result rl;
    assert_int_equal(qb_scan_estimate(&ctx, m, &q4, im, &so, &rl), QB_OK);
    assert_int_equal(rl.n_rows, m->cfg.n_layers);
    for (int i = 0; i < rl.n_rows; i++) {
        double sum = 0;
        char pre[128];
        snprintf(pre, sizeof pre, "%s.", rl.rows[i].name);
        for (int j = 0; j < r4.n_rows; j++)
            if (!strncmp(r4.rows[j].name, pre, strlen(pre))) sum += r4.rows[j].est_err;
        assert_true(fabs(rl.rows[i].est_err - sum) <= 1e-9 * sum);
        assert_int_equal(rl.rows[i].n_tensors, 7);
    }
    /* bad arguments */
    so = (qb_scan_opts){.layers_only = true, .layer_first = 3, .layer_last = 99};
    qb_scan_result bad;
    assert_int_equal(qb_scan_estimate(&ctx, m, &q4, im, &so, &bad), QB_ERR_ARG);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "layers 3-99"));
    qb_scan_result_free(&r4);
    qb_scan_result_free(&r8);
    qb_scan_result_free(&rl);
    qb_imatrix_free(im);
    qb_model_close(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_spearman), cmocka_unit_test(test_estimate)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
