/* test-formats-ppl.c — every llama.cpp format, quantized by us in memory from the F16 model
 * (`--pure`, as the fixtures were made) and run packed, gives llama.cpp's perplexity and KL
 * divergence on the evaluation text (fixtures/perplexity-llamacpp.json, llama-perplexity
 * ctx 256, 40 chunks). */
#include "testutil.h"
#include <math.h>
#include <jansson.h>

#include "core/model/model.h"
#include "core/quant/apply.h"
#include "core/eval/eval.h"

static void test_every_format(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *root = json_load_file(qbt_model_path("qb-docs-26m/fixtures/perplexity-llamacpp.json"), 0, &jerr);
    if (!root) fail_msg("fixture: %s", jerr.text);
    json_t *results = json_object_get(root, "results");
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *base = NULL, *m = NULL;
    const char *f16 = qbt_model_path("qb-docs-26m/qb-docs-26m-f16.gguf");
    assert_int_equal(qb_model_open(&ctx, f16, NULL, &base), QB_OK);
    int32_t *toks;
    int n;
    assert_int_equal(qb_eval_load_text(&ctx, base, qbt_data_path("eval-docs.txt"), &toks, &n), QB_OK);
    /* every format's model, quantized in memory, then one pass over the chunks for all */
    const char *key;
    json_t *r;
    const char *names[32];
    qb_model *models[32];
    int nm = 0;
    json_object_foreach(results, key, r) {
        if (!strcmp(key, "F16") || !strncmp(key, "qb-docs", 7) || nm == 32) continue;
        assert_int_equal(qb_model_open(&ctx, f16, NULL, &m), QB_OK);
        if (qb_ftype_apply(&ctx, m, key, true, NULL) != QB_OK) fail_msg("%s: %s", key, qb_ctx_errmsg(&ctx));
        names[nm] = key;
        models[nm++] = m;
    }
    qb_eval_opts o = {.n_ctx = 256, .n_chunks = 40};
    qb_kld_result k[32];
    if (qb_eval_kld_many(&ctx, base, (const qb_model *const *)models, nm, toks, n, &o, k) != QB_OK)
        fail_msg("%s", qb_ctx_errmsg(&ctx));
    int checked = 0;
    for (int j = 0; j < nm; j++) {
        r = json_object_get(results, names[j]);
        double want_ppl = json_number_value(json_object_get(r, "ppl"));
        double want_kld = json_number_value(json_object_get(r, "kld_mean"));
        double want_top1 = json_number_value(json_object_get(r, "top1_pct"));
        print_message("%-7s PPL %8.4f (llama.cpp %8.4f, %+.3f%%)  KLD %.6f (llama.cpp %.6f)  top-1 %.2f%% (%.2f%%)\n",
                      names[j], k[j].other.ppl, want_ppl, 100 * (k[j].other.ppl / want_ppl - 1), k[j].kld_mean, want_kld,
                      k[j].top1_pct, want_top1);
        if (fabs(k[j].other.ppl / want_ppl - 1) > 0.005)
            fail_msg("%s: PPL %.4f vs llama.cpp %.4f", names[j], k[j].other.ppl, want_ppl);
        /* llama.cpp's F16 path rounds activations to f16, ours keeps f32: KLD is measured
         * against slightly different base logits, so allow 10% (plus a floor for tiny KLDs) */
        if (fabs(k[j].kld_mean - want_kld) > 0.10 * want_kld + 2e-4)
            fail_msg("%s: KLD %.6f vs llama.cpp %.6f", names[j], k[j].kld_mean, want_kld);
        if (fabs(k[j].top1_pct - want_top1) > 1.0)
            fail_msg("%s: top-1 %.2f%% vs llama.cpp %.2f%%", names[j], k[j].top1_pct, want_top1);
        qb_model_close(models[j]);
        checked++;
    }
    assert_true(checked >= 12);
    free(toks);
    qb_model_close(base);
    json_decref(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_every_format)};
    return cmocka_run_group_tests_name("formats-ppl", tests, NULL, NULL);
}
