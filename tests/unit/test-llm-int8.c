/* test-llm-int8.c — LLM.int8(): threshold ∞ is plain vector-wise int8 (bit-identical logits
 * to W8A8 dynamic), threshold 0 multiplies every feature in float against the original
 * weights (logits equal the float model's up to summation order); outlier counters follow
 * the threshold (0 → every column, ∞ → none, 6 → in between on qb-docs-26m, whose ffn_down
 * inputs are known to exceed 6 in every layer); a negative or NaN threshold is an error. */
#include "outlier_util.h"

#include "core/method/llm_int8.h"
#include "core/method/smoothquant.h"
#include "core/infer/matmul_w8a8.h"

enum { N = 40 };

static void test_infinite_threshold_is_plain_int8(void **state)
{
    (void)state;
    qb_model *m = ou_open("stories260K/stories260K.bin");
    int32_t t[N];
    ou_tokens(m, t, N);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_run_config *rc = ou_run(m);
    qb_smoothquant_opts plain = {.act_mode = QB_ACT_INT8};
    assert_int_equal(qb_smoothquant_apply(&ctx, m, rc, NULL, &plain), QB_OK);
    float *p = ou_logits_run(m, rc, t, N, N);
    assert_int_equal(qb_llm_int8_apply(&ctx, m, rc, INFINITY), QB_OK);
    float *o = ou_logits_run(m, rc, t, N, N);
    assert_memory_equal(p, o, sizeof(float) * N * m->cfg.vocab_size);
    double fr[4];
    qb_llm_int8_fractions(rc, m, 0, fr);
    for (int i = 0; i < 4; i++) assert_float_equal(fr[i], 0.0, 0);
    free(p), free(o);
    qb_run_config_free(rc);
    qb_model_close(m);
}

static void test_zero_threshold_is_float(void **state)
{
    (void)state;
    const char *models[] = {"stories260K/stories260K.bin", "qb-docs-26m/qb-docs-26m-f16.gguf"};
    for (int mi = 0; mi < 2; mi++) {
        qb_model *m = ou_open(models[mi]);
        if (!m) continue;
        int32_t t[N];
        ou_tokens(m, t, N);
        int V = m->cfg.vocab_size;
        float *ref = ou_logits(m, t, N, N);
        qb_ctx ctx;
        qb_ctx_init(&ctx);
        qb_run_config *rc = ou_run(m);
        assert_int_equal(qb_llm_int8_apply(&ctx, m, rc, 0.0f), QB_OK);
        assert_int_equal(qb_run_config_act(rc, m, m->layers[1].w_down)->mode, QB_ACT_INT8_OUTLIER);
        float *o = ou_logits_run(m, rc, t, N, N);
        double d = ou_rel_maxdiff(ref, o, (size_t)N * V);
        fprintf(stderr, "%s LLM.int8 threshold 0: max logit diff %.2e of max\n", models[mi], d);
        assert_true(d < 1e-4);
        double fr[4];
        qb_llm_int8_fractions(rc, m, m->cfg.n_layers - 1, fr);
        for (int i = 0; i < 4; i++) assert_float_equal(fr[i], 1.0, 0);
        free(ref), free(o);
        qb_run_config_free(rc);
        qb_model_close(m);
    }
}

static void test_default_threshold_on_docs_model(void **state)
{
    (void)state;
    qb_model *m = ou_open("qb-docs-26m/qb-docs-26m-f16.gguf");
    int32_t t[N];
    ou_tokens(m, t, N);
    int V = m->cfg.vocab_size;
    float *ref = ou_logits(m, t, N, N);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_run_config *rc = ou_run(m);
    assert_int_equal(qb_llm_int8_apply(&ctx, m, rc, QB_LLM_INT8_DEFAULT_THRESHOLD), QB_OK);
    float *o = ou_logits_run(m, rc, t, N, N);
    int with_outliers = 0;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        double fr[4];
        qb_llm_int8_fractions(rc, m, l, fr);
        for (int i = 0; i < 4; i++) assert_true(fr[i] >= 0 && fr[i] < 1);
        with_outliers += fr[3] > 0;
    }
    assert_int_equal(with_outliers, m->cfg.n_layers); /* the README: every layer has features above 6 */
    double agree = ou_top1(ref, o, N, V);
    fprintf(stderr, "qb-docs-26m LLM.int8 threshold 6: top-1 %.3f\n", agree);
    assert_true(agree >= 0.9);
    qb_llm_int8_reset(rc);
    double fr[4];
    qb_llm_int8_fractions(rc, m, 0, fr);
    assert_float_equal(fr[0], -1.0, 0); /* counters at zero: not run yet */
    free(ref), free(o);
    qb_run_config_free(rc);
    qb_model_close(m);
}

static void test_bad_threshold(void **state)
{
    (void)state;
    qb_model *m = ou_open("stories260K/stories260K.bin");
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_run_config *rc = ou_run(m);
    assert_int_equal(qb_llm_int8_apply(&ctx, m, rc, -1.0f), QB_ERR_ARG);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "threshold"));
    assert_int_equal(qb_llm_int8_apply(&ctx, m, rc, NAN), QB_ERR_ARG);
    assert_int_equal(qb_llm_int8_apply(&ctx, m, NULL, 6.0f), QB_ERR_ARG); /* no run configuration */
    assert_int_equal(qb_run_config_act(rc, m, m->layers[0].wq)->mode, QB_ACT_FLOAT);
    assert_int_equal(m->layers[0].wq->type, QB_TYPE_F32);
    qb_run_config_free(rc);
    qb_model_close(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_infinite_threshold_is_plain_int8),
        cmocka_unit_test(test_zero_threshold_is_float),
        cmocka_unit_test(test_default_threshold_on_docs_model),
        cmocka_unit_test(test_bad_threshold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
