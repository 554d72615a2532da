/* test-smoothquant.c — SmoothQuant: with α = 1 and unit activation absmax every scale is 1,
 * so the result equals plain W8A8 bit for bit; smoothing alone (weights kept f32, float
 * activations) leaves the logits unchanged up to float rounding, for the norm folds and the
 * wv→wo / w_up→w_down folds; smoothing really moves the outliers (the static activation
 * scale of a smoothed matrix shrinks); α out of range, NaN, missing or mismatched statistics
 * are errors that leave the model as it was; and the paper's ordering on stories260K:
 * SmoothQuant W8A8 below plain W8A8 in KLD. Statistics come from the shared calibration
 * module (calib.h), as every front end now gets them. */
#include "outlier_util.h"

#include "core/method/smoothquant.h"
#include "core/quant/format.h"
#include "core/calib/calib.h"
#include "core/infer/matmul_w8a8.h"
#include "core/method/act_quant.h"
#include "core/eval/eval.h"

enum { N = 64 };

/* the shared calibration module: 4 windows of N tokens, absmax only (no XᵀX) */
static qb_calib *calibrate(qb_model *m, const int32_t *t)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_calib *a = NULL;
    qb_calib_opts o = {.n_ctx = N};
    if (qb_calib_run(&ctx, m, t, 4, &o, &a) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    assert_int_equal(a->n_tokens, 4 * N);
    return a;
}

static void test_unit_scales_equal_plain_w8a8(void **state)
{
    (void)state;
    qb_model *m = ou_open("stories260K/stories260K.bin");
    if (!m) skip();
    int32_t t[4 * N];
    ou_tokens(m, t, 4 * N);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_calib *a = calibrate(m, t);
    for (int l = 0; l < a->n_layers; l++)
        for (int p = 0; p < QB_OBS_OUTPUT_IN; p++) {
            qb_calib_stat *st = &a->stat[l * QB_OBS_COUNT + p];
            for (int i = 0; i < st->width; i++) st->absmax[i] = 1.0f;
        }
    qb_run_config *rc = ou_run(m);
    qb_smoothquant_opts plain = {.act_mode = QB_ACT_INT8};
    assert_int_equal(qb_smoothquant_apply(&ctx, m, rc, NULL, &plain), QB_OK);
    float *p = ou_logits_run(m, rc, t, N, N);
    qb_smoothquant_opts sm = {.smooth = true, .alpha = 1.0f, .smooth_out = true, .act_mode = QB_ACT_INT8};
    assert_int_equal(qb_smoothquant_apply(&ctx, m, rc, a, &sm), QB_OK);
    float *s = ou_logits_run(m, rc, t, N, N);
    assert_memory_equal(p, s, sizeof(float) * N * m->cfg.vocab_size);
    qb_calib_free(a);
    free(p), free(s);
    qb_run_config_free(rc);
    qb_model_close(m);
}

static void test_smoothing_is_exact_in_float(void **state)
{
    (void)state;
    const char *models[] = {"stories260K/stories260K.bin", "qb-docs-26m/qb-docs-26m-f16.gguf"};
    for (int mi = 0; mi < 2; mi++) {
        qb_model *m = ou_open(models[mi]);
        if (!m) continue;
        int32_t t[4 * N];
        ou_tokens(m, t, 4 * N);
        int V = m->cfg.vocab_size;
        float *ref = ou_logits(m, t, N, N);
        qb_calib *a = calibrate(m, t);
        qb_ctx ctx;
        qb_ctx_init(&ctx);
        qb_format f32 = qb_format_ggml(QB_TYPE_F32);
        for (int out = 0; out < 2; out++) {
            qb_smoothquant_opts o = {.smooth = true, .alpha = 0.5f, .smooth_out = out, .act_mode = QB_ACT_FLOAT,
                                     .wfmt = &f32};
            if (qb_smoothquant_apply(&ctx, m, NULL, a, &o) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
            /* the fold really changed weights and norms */
            const float *nw = m->layers[0].attn_norm->data;
            float *orig = malloc(sizeof(float) * m->cfg.dim);
            qb_tensor_source_rows(m->layers[0].attn_norm, 0, 1, orig);
            int changed = 0;
            for (int j = 0; j < m->cfg.dim; j++) changed += nw[j] != orig[j];
            assert_true(changed > m->cfg.dim / 2);
            free(orig);
            float *s = ou_logits(m, t, N, N);
            double d = ou_rel_maxdiff(ref, s, (size_t)N * V);
            fprintf(stderr, "%s smoothing%s in f32: max logit diff %.2e of max\n", models[mi], out ? " (+out)" : "", d);
            assert_true(d < 2e-4);
            free(s);
        }
        assert_int_equal(qb_w8a8_clear(&ctx, m, NULL), QB_OK);
        qb_calib_free(a);
        free(ref);
        qb_model_close(m);
    }
}

static void test_smoothing_shrinks_activation_range(void **state)
{
    (void)state;
    qb_model *m = ou_open("stories260K/stories260K.bin");
    if (!m) skip();
    int32_t t[4 * N];
    ou_tokens(m, t, 4 * N);
    qb_calib *a = calibrate(m, t);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_run_config *rc = ou_run(m);
    qb_smoothquant_opts o = {.act_mode = QB_ACT_INT8_STATIC};
    assert_int_equal(qb_smoothquant_apply(&ctx, m, rc, a, &o), QB_OK);
    float before = qb_run_config_act(rc, m, m->layers[0].wq)->scale;
    o.smooth = true;
    o.alpha = 0.8f;
    assert_int_equal(qb_smoothquant_apply(&ctx, m, rc, a, &o), QB_OK);
    float after = qb_run_config_act(rc, m, m->layers[0].wq)->scale;
    /* with s_j = ax^0.8 / aw^0.2 the smoothed absmax is ax^0.2 · aw^0.2: far below ax when ax is large */
    fprintf(stderr, "attn input static scale: %.4f plain, %.4f smoothed\n", before, after);
    assert_true(after < before);
    qb_calib_free(a);
    qb_run_config_free(rc);
    qb_model_close(m);
}

static void test_bad_input(void **state)
{
    (void)state;
    qb_model *m = ou_open("stories260K/stories260K.bin");
    if (!m) skip();
    int32_t t[4 * N];
    ou_tokens(m, t, 4 * N);
    qb_calib *a = calibrate(m, t);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    const void *wq = m->layers[0].wq->data, *norm = m->layers[0].attn_norm->data;
    qb_run_config *rc = ou_run(m);
    float bad[] = {-0.1f, 1.5f, NAN};
    for (int i = 0; i < 3; i++) {
        qb_smoothquant_opts o = {.smooth = true, .alpha = bad[i], .act_mode = QB_ACT_INT8};
        assert_int_equal(qb_smoothquant_apply(&ctx, m, rc, a, &o), QB_ERR_ARG);
        assert_non_null(strstr(qb_ctx_errmsg(&ctx), "alpha"));
    }
    qb_smoothquant_opts o = {.smooth = true, .alpha = 0.5f, .act_mode = QB_ACT_INT8};
    assert_int_equal(qb_smoothquant_apply(&ctx, m, rc, NULL, &o), QB_ERR_ARG); /* no statistics */
    a->n_layers--;
    assert_int_equal(qb_smoothquant_apply(&ctx, m, rc, a, &o), QB_ERR_ARG); /* another model's */
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "another model"));
    a->n_layers++;
    /* a calibration that captured only some points (GPTQ on a few layers, say) */
    uint8_t want[64 * QB_OBS_COUNT] = {0};
    want[0 * QB_OBS_COUNT + QB_OBS_ATTN_IN] = 1;
    qb_calib *part = NULL;
    qb_calib_opts po = {.n_ctx = N, .want = want};
    assert_int_equal(qb_calib_run(&ctx, m, t, 1, &po, &part), QB_OK);
    assert_int_equal(qb_smoothquant_apply(&ctx, m, rc, part, &o), QB_ERR_ARG);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "did not capture"));
    qb_calib_free(part);
    assert_ptr_equal(m->layers[0].wq->data, wq);
    assert_ptr_equal(m->layers[0].attn_norm->data, norm);
    assert_false(qb_run_config_any_act(rc));
    qb_run_config_free(rc);
    /* calibration text shorter than one window */
    int32_t *w = NULL;
    int nw = 0;
    assert_int_equal(qb_calib_windows(&ctx, t, N - 1, N, 4, -1, &w, &nw), QB_ERR_ARG);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "shorter than one"));
    assert_null(w);
    qb_calib_free(a);
    qb_model_close(m);
}

/* stories260K with its tokenizer (calibration and evaluation read text), or NULL. */
static qb_model *open_with_tokenizer(void)
{
    const char *p = qbt_model_path("stories260K/stories260K.bin");
    if (access(p, R_OK) != 0) return NULL;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = NULL;
    if (qb_model_open(&ctx, p, NULL, &m) != QB_OK) fail_msg("open %s: %s", p, qb_ctx_errmsg(&ctx));
    return m;
}

/* KLD against the float model of stories260K with activation options o (a fresh model each
 * time), on its sample text at ctx 64, calibrated on the same text. */
static double kld_with(const qb_model *base, const int32_t *tok, int n, const char *act, bool smooth, bool out)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = open_with_tokenizer();
    assert_non_null(m);
    qb_act_opts o;
    qb_act_opts_init(&o);
    o.act = act;
    o.smooth = smooth;
    o.smooth_out = out;
    o.calib_path = qbt_model_path("stories260K/ppl-sample.txt");
    o.calib_ctx = 64;
    qb_run_config *rc = ou_run(m);
    if (qb_act_apply(&ctx, m, rc, &o) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    qb_eval_opts eo = {.n_ctx = 64, .run = rc};
    qb_kld_result r;
    assert_int_equal(qb_eval_kld(&ctx, base, m, tok, n, &eo, &r), QB_OK);
    qb_run_config_free(rc);
    qb_model_close(m);
    print_message("%-12s smooth %d out %d: KLD %.6f\n", act, smooth, out, r.kld_mean);
    return r.kld_mean;
}

/* The paper's claim where activations have outliers: SmoothQuant W8A8 has a lower KLD than
 * plain W8A8. On stories260K, with per-token dynamic activations (KLD 0.00113 vs 0.00118: a
 * small margin, but the computation is deterministic) and with static per-tensor scales once
 * w_down's inputs are smoothed too (0.0038 vs 0.0066; the paper's norm folds alone do not help
 * there, as on qb-docs-26m: README, Outliers). */
static void test_smoothquant_beats_plain_w8a8(void **state)
{
    (void)state;
    qb_model *base = open_with_tokenizer();
    if (!base) skip();
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int32_t *tok = NULL;
    int n = 0;
    if (qb_eval_load_text(&ctx, base, qbt_model_path("stories260K/ppl-sample.txt"), &tok, &n) != QB_OK)
        fail_msg("%s", qb_ctx_errmsg(&ctx));
    const double dyn = kld_with(base, tok, n, "int8", false, false), dyn_sq = kld_with(base, tok, n, "int8", true, false);
    const double st = kld_with(base, tok, n, "int8-static", false, false),
                 st_sq = kld_with(base, tok, n, "int8-static", true, true);
    assert_true(dyn > 0 && st > 0);
    assert_true(dyn_sq < dyn);
    assert_true(st_sq < 0.8 * st);
    free(tok);
    qb_model_close(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unit_scales_equal_plain_w8a8),
        cmocka_unit_test(test_smoothing_is_exact_in_float),
        cmocka_unit_test(test_smoothing_shrinks_activation_range),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_smoothquant_beats_plain_w8a8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
