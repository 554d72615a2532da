/* test-eval.c — perplexity and KL divergence against llama.cpp's and transformers' figures
 * (the fixtures' JSON and README), following llama-perplexity's protocol. */
#include "testmodel.h"
#include <math.h>

#include "core/model/model.h"
#include "core/eval/eval.h"

static qb_ppl_result ppl_of(const char *rel, const char *text, int n_ctx, int chunks)
{
    qb_model *m = qbt_open_model(rel, NULL);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int32_t *toks;
    int n;
    if (qb_eval_load_text(&ctx, m, text, &toks, &n) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    qb_eval_opts o = {.n_ctx = n_ctx, .n_chunks = chunks};
    qb_ppl_result r;
    if (qb_eval_perplexity(&ctx, m, toks, n, &o, &r) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    print_message("%s: PPL %.4f +/- %.5f (%d chunks, %ld scored)\n", rel, r.ppl, r.ppl_err, r.n_chunks, r.n_scored);
    free(toks);
    qb_model_close(m);
    return r;
}

static void assert_close_rel(double got, double want, double rel, const char *what)
{
    if (fabs(got - want) > rel * fabs(want)) fail_msg("%s: %.6f vs reference %.6f (tolerance %.3f%%)", what, got, want, rel * 100);
}

/* qb-docs-26m F16: transformers 33.8871, llama.cpp 33.8866 (fixtures/perplexity-*.json);
 * 40 chunks of 256 = 5080 scored tokens. */
static void test_docs_f16_perplexity(void **state)
{
    (void)state;
    qb_ppl_result r = ppl_of("qb-docs-26m/qb-docs-26m-f16.gguf", qbt_data_path("eval-docs.txt"), 256, 40);
    assert_int_equal(r.n_scored, 5080);
    assert_close_rel(r.ppl, 33.88707936558168, 0.001, "PPL vs transformers");
    assert_close_rel(r.ppl, 33.8866, 0.001, "PPL vs llama.cpp");
    assert_close_rel(r.ppl_err, 1.49371, 0.01, "PPL error vs llama.cpp");
}

/* The llama.cpp-quantized Q4_K_M file: llama.cpp measured 34.350361. */
static void test_docs_q4_k_m_perplexity(void **state)
{
    (void)state;
    qb_ppl_result r = ppl_of("qb-docs-26m/qb-docs-26m-q4_k_m.gguf", qbt_data_path("eval-docs.txt"), 256, 40);
    assert_close_rel(r.ppl, 34.350361, 0.01, "Q4_K_M PPL vs llama.cpp");
}

/* stories260K with ctx 128 on ppl-sample.txt (9 chunks): llama.cpp f32 4.0584 ± 0.30085,
 * q8_0 4.0601, q4_0 4.4504 (stories260K/README.md). The llama2.c file is the same model. */
static void test_260k_perplexity(void **state)
{
    (void)state;
    const char *text = qbt_model_path("stories260K/ppl-sample.txt");
    qb_ppl_result r = ppl_of("stories260K/stories260K-f32.gguf", text, 128, 0);
    assert_int_equal(r.n_chunks, 9);
    assert_close_rel(r.ppl, 4.0584, 0.001, "f32 GGUF PPL");
    assert_close_rel(r.ppl_err, 0.30085, 0.01, "f32 GGUF PPL error");
    r = ppl_of("stories260K/stories260K.bin", text, 128, 0);
    assert_close_rel(r.ppl, 4.0584, 0.001, "llama2.c PPL");
    r = ppl_of("stories260K/stories260K-q8_0.gguf", text, 128, 0);
    assert_close_rel(r.ppl, 4.0601, 0.01, "q8_0 PPL");
    r = ppl_of("stories260K/stories260K-q4_0.gguf", text, 128, 0);
    assert_close_rel(r.ppl, 4.4504, 0.01, "q4_0 PPL");
}

/* KLD of Q4_K_M against F16 on the same chunks: llama.cpp reports mean 0.027733, p99 0.136911,
 * top-1 agreement 90.295%, base PPL 33.86765 (kld mode). llama.cpp multiplies Q4_K/Q6_K with
 * 8-bit activations where we dequantize to f32, so allow a few percent. */
static void test_docs_kld(void **state)
{
    (void)state;
    qb_model *base = qbt_open_model("qb-docs-26m/qb-docs-26m-f16.gguf", NULL);
    qb_model *q = qbt_open_model("qb-docs-26m/qb-docs-26m-q4_k_m.gguf", NULL);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int32_t *toks;
    int n;
    assert_int_equal(qb_eval_load_text(&ctx, base, qbt_data_path("eval-docs.txt"), &toks, &n), QB_OK);
    qb_eval_opts o = {.n_ctx = 256, .n_chunks = 40};
    qb_kld_result r;
    if (qb_eval_kld(&ctx, base, q, toks, n, &o, &r) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    print_message("KLD mean %.6f median %.6f p99 %.6f max %.4f top1 %.3f%% dPPL %.4f\n", r.kld_mean, r.kld_median,
                  r.kld_p99, r.kld_max, r.top1_pct, r.dppl);
    assert_close_rel(r.kld_mean, 0.027733, 0.08, "KLD mean");
    assert_close_rel(r.kld_p99, 0.136911, 0.10, "KLD p99");
    if (fabs(r.top1_pct - 90.295) > 1.0) fail_msg("top-1 agreement %.3f%% vs llama.cpp 90.295%%", r.top1_pct);
    assert_close_rel(r.other.ppl, 34.350361, 0.01, "PPL(Q4_K_M)");
    assert_true(r.kld_median <= r.kld_mean && r.kld_p99 <= r.kld_max);
    /* the same model against itself: zero divergence, full agreement */
    qb_eval_opts o1 = {.n_ctx = 256, .n_chunks = 2};
    assert_int_equal(qb_eval_kld(&ctx, base, base, toks, n, &o1, &r), QB_OK);
    assert_true(r.kld_mean < 1e-9);
    assert_true(r.top1_pct == 100.0);
    free(toks);
    qb_model_close(base);
    qb_model_close(q);
}

static void test_eval_errors(void **state)
{
    (void)state;
    qb_model *m = qbt_open_model("stories260K/stories260K.bin", NULL);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int32_t toks[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    qb_eval_opts o = {.n_ctx = 64};
    qb_ppl_result r;
    assert_int_equal(qb_eval_perplexity(&ctx, m, toks, 10, &o, &r), QB_ERR_ARG);
    assert_non_null(strstr(ctx.errmsg, "needs at least 128"));
    volatile int cancel = 1;
    int32_t *many = calloc(1024, sizeof *many);
    qb_eval_opts oc = {.n_ctx = 64, .cancel = &cancel};
    assert_int_equal(qb_eval_perplexity(&ctx, m, many, 1024, &oc, &r), QB_ERR_CANCELLED);
    free(many);
    qb_model_close(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_260k_perplexity),      cmocka_unit_test(test_eval_errors),
        cmocka_unit_test(test_docs_f16_perplexity),  cmocka_unit_test(test_docs_q4_k_m_perplexity),
        cmocka_unit_test(test_docs_kld),
    };
    return cmocka_run_group_tests_name("eval", tests, NULL, NULL);
}
