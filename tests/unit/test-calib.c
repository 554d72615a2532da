/* test-calib.c — calibration windows and statistics on stories260K, and exact scale folding
 * (the model computes the same logits after a fold; reset gives the original back). */
#include "testutil.h"
#include "core/calib/calib.h"
#include "core/method/fold.h"
#include "core/eval/eval.h"
#include "core/tokenizer/tokenizer.h"

#include <math.h>

static qb_model *open260(qb_ctx *ctx)
{
    const char *p = qbt_model_path("stories260K/stories260K.bin");
    qbt_need(p);
    qb_model *m;
    assert_int_equal(qb_model_open(ctx, p, NULL, &m), QB_OK);
    return m;
}

static void windows_bad_input(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int32_t toks[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    int32_t *w;
    int nw;
    assert_int_equal(qb_calib_windows(&ctx, toks, 10, 16, 0, 1, &w, &nw), QB_ERR_ARG);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "shorter than one 16-token window"));
    assert_int_equal(qb_calib_windows(&ctx, toks, 10, 4, 0, 99, &w, &nw), QB_OK);
    assert_int_equal(nw, 2);
    assert_int_equal(w[0], 99);
    assert_int_equal(w[1], 2);
    assert_int_equal(w[4], 99);
    assert_int_equal(w[5], 6);
    free(w);
    /* a text file shorter than one window: the error names the file */
    qb_model *m = open260(&ctx);
    char *path = qbt_write_temp("calib-short", "Once upon a time.", 17);
    qb_calib *c;
    qb_calib_opts o = {.n_ctx = 64};
    assert_int_equal(qb_calib_run_file(&ctx, m, path, &o, &c), QB_ERR_ARG);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), path));
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "shorter than one 64-token window"));
    unlink(path);
    free(path);
    qb_model_close(m);
}

/* Reference statistics gathered by the test's own observer on a separate run. */
typedef struct {
    int layer;
    qb_obs_point pt;
    float absmax[256];
    double sumsq[256], h01, h_last;
    long n;
} ref_stats;

static void ref_obs(void *ud, int layer, qb_obs_point pt, float *x, int n, int width)
{
    ref_stats *r = ud;
    if (layer != r->layer || pt != r->pt) return;
    for (int t = 0; t < n; t++) {
        for (int i = 0; i < width; i++) {
            float v = x[(size_t)t * width + i];
            if (fabsf(v) > r->absmax[i]) r->absmax[i] = fabsf(v);
            r->sumsq[i] += (double)v * v;
        }
        r->h01 += (double)x[(size_t)t * width] * x[(size_t)t * width + 1];
        r->h_last += (double)x[(size_t)t * width + width - 1] * x[(size_t)t * width + 3];
    }
    r->n += n;
}

static void stats_match_direct_capture(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = open260(&ctx);
    qb_calib *c;
    qb_calib_opts o = {.n_ctx = 64, .n_samples = 4, .hessian = true};
    assert_int_equal(qb_calib_run_file(&ctx, m, qbt_model_path("stories260K/ppl-sample.txt"), &o, &c), QB_OK);
    assert_int_equal(c->n_windows, 4);
    assert_int_equal(c->n_tokens, 256);
    /* same windows, captured directly */
    int32_t *tokens, *win;
    int nt, nw;
    assert_int_equal(qb_eval_load_text(&ctx, m, qbt_model_path("stories260K/ppl-sample.txt"), &tokens, &nt), QB_OK);
    assert_int_equal(qb_calib_windows(&ctx, tokens, nt, 64, 4, qb_tokenizer_bos(m->tok), &win, &nw), QB_OK);
    qb_obs_point pts[2] = {QB_OBS_FFN_DOWN_IN, QB_OBS_ATTN_OUT};
    for (int k = 0; k < 2; k++) {
        ref_stats *r = calloc(1, sizeof *r);
        r->layer = 2;
        r->pt = pts[k];
        qb_infer *inf;
        assert_int_equal(qb_infer_new(&ctx, m, 64, 64, &inf), QB_OK);
        qb_infer_set_observer(inf, ref_obs, r);
        for (int w = 0; w < nw; w++) assert_int_equal(qb_infer_eval(&ctx, inf, win + w * 64, 64, 0, NULL, 0), QB_OK);
        qb_infer_free(inf);
        const qb_calib_stat *s = qb_calib_get(c, 2, pts[k]);
        assert_non_null(s);
        assert_int_equal(s->n, r->n);
        assert_int_equal(s->width, k == 0 ? 172 : 64);
        for (int i = 0; i < s->width; i++) {
            assert_true(s->absmax[i] == r->absmax[i]);
            assert_true(fabs(s->sumsq[i] - r->sumsq[i]) <= 1e-9 * r->sumsq[i] + 1e-12);
            /* XᵀX diagonal = Σx² (f32 partial sums per window) */
            assert_true(fabs(s->xtx[(size_t)i * s->width + i] - r->sumsq[i]) <= 1e-5 * r->sumsq[i] + 1e-9);
        }
        int w = s->width;
        assert_true(fabs(s->xtx[1] - r->h01) <= 1e-5 * fabs(r->h01) + 1e-6);
        assert_true(s->xtx[w] == s->xtx[1]); /* symmetric */
        assert_true(fabs(s->xtx[(size_t)(w - 1) * w + 3] - r->h_last) <= 1e-5 * fabs(r->h_last) + 1e-6);
        free(r);
    }
    free(tokens);
    free(win);
    qb_calib_free(c);
    qb_model_close(m);
}

static void cancel_cb(void *ud, int done, int total)
{
    (void)total;
    if (done == 2) *(int *)ud = 1;
}

static void calib_cancel(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = open260(&ctx);
    int flag = 0;
    qb_calib *c = (qb_calib *)1;
    qb_calib_opts o = {.n_ctx = 32, .progress = cancel_cb, .ud = &flag, .cancel = &flag};
    assert_int_equal(qb_calib_run_file(&ctx, m, qbt_model_path("stories260K/ppl-sample.txt"), &o, &c),
                     QB_ERR_CANCELLED);
    assert_null(c);
    qb_model_close(m);
}

static void logits_of(qb_ctx *ctx, const qb_model *m, const int32_t *toks, int n, float *out)
{
    qb_infer *inf;
    assert_int_equal(qb_infer_new(ctx, m, n, n, &inf), QB_OK);
    assert_int_equal(qb_infer_eval(ctx, inf, toks, n, 0, out, n), QB_OK);
    qb_infer_free(inf);
}

static void fold_is_exact_and_restorable(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = open260(&ctx);
    int32_t toks[24];
    for (int i = 0; i < 24; i++) toks[i] = i == 0 ? 1 : 260 + (i * 37) % 250;
    int V = m->cfg.vocab_size;
    float *base = malloc(sizeof(float) * 24 * V), *got = malloc(sizeof(float) * 24 * V);
    logits_of(&ctx, m, toks, 24, base);
    float s[256];
    for (int i = 0; i < 256; i++) s[i] = 0.25f + (float)((i * 7919) % 101) / 25.0f;
    assert_int_equal(qb_fold_scales(&ctx, m, 0, QB_OBS_ATTN_IN, s), QB_OK);
    assert_int_equal(qb_fold_scales(&ctx, m, 1, QB_OBS_FFN_IN, s), QB_OK);
    assert_int_equal(qb_fold_scales(&ctx, m, 1, QB_OBS_FFN_DOWN_IN, s + 3), QB_OK);
    assert_int_equal(qb_fold_scales(&ctx, m, 4, QB_OBS_FFN_IN, s + 5), QB_OK); /* composes with the next */
    assert_int_equal(qb_fold_scales(&ctx, m, 4, QB_OBS_FFN_DOWN_IN, s + 9), QB_OK);
    assert_true(m->layers[0].attn_norm->data != m->layers[0].attn_norm->src_data);
    /* GQA (2 query heads per kv head): v→o exact only with equal scales per shared row */
    assert_int_equal(qb_fold_scales(&ctx, m, 2, QB_OBS_ATTN_OUT, s), QB_ERR_UNSUPPORTED);
    float so[64];
    for (int h = 0; h < 8; h++)
        for (int i = 0; i < 8; i++) so[h * 8 + i] = s[(h / 2) * 8 + i];
    assert_int_equal(qb_fold_scales(&ctx, m, 2, QB_OBS_ATTN_OUT, so), QB_OK);
    float bad[256];
    memcpy(bad, s, sizeof bad);
    bad[5] = 0.0f;
    assert_int_equal(qb_fold_scales(&ctx, m, 3, QB_OBS_ATTN_IN, bad), QB_ERR_ARG);
    logits_of(&ctx, m, toks, 24, got);
    double maxd = 0;
    for (int i = 0; i < 24 * V; i++) maxd = fmax(maxd, fabs(got[i] - base[i]));
    assert_true(maxd < 2e-4);
    assert_int_equal(qb_fold_reset(&ctx, m), QB_OK);
    logits_of(&ctx, m, toks, 24, got);
    for (int i = 0; i < 24 * V; i++) assert_true(got[i] == base[i]);
    free(base);
    free(got);
    qb_model_close(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(windows_bad_input),
        cmocka_unit_test(stats_match_direct_capture),
        cmocka_unit_test(calib_cancel),
        cmocka_unit_test(fold_is_exact_and_restorable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
