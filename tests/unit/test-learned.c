/* test-learned.c — learned rounding (core/method/learned.h) as a method on stories260K:
 * - at int3-channel, every block's output error after learning is below round-to-nearest's
 *   (where it starts), and the whole model's KL divergence from the unquantized one on held-out
 *   text is below RTN's and below GPTQ's (the same calibration: the first 60% of
 *   ppl-sample.txt, windows of 64; evaluated on the last 40%);
 * - the bytes are the format's own: the model runs packed and exports to GGUF that reopens
 *   with the same logits;
 * - a format it cannot learn, a calibration without windows, and blocks out of order are
 *   refused; the same run twice gives the same bytes;
 * - ggml k-quants, on qb-docs-26m (stories260K's rows of 64 and 172 hold no 256-element
 *   super-block): a short Q3_K run lowers every block's output error below the format's own
 *   quantization's (where it starts), the tensors are Q3_K blocks and the model exported to
 *   GGUF reopens with the same logits; one step keeps the start, which is the format's own
 *   bytes, or with `weighted` llama-quantize --imatrix's with the calibration's mean squares. */
#include "testutil.h"
#include "core/method/method.h"
#include "core/eval/eval.h"
#include "core/quant/apply.h"
#include "core/infer/infer.h"
#include "core/method/fold.h"

#include <math.h>

static qb_model *open_model(void)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = NULL;
    if (qb_model_open(&ctx, qbt_model_path("stories260K/stories260K.bin"), NULL, &m) != QB_OK)
        fail_msg("%s", qb_ctx_errmsg(&ctx));
    return m;
}

/* the text split as test-awq splits it: tokens [0, 60%) calibrate, [60%, 100%) evaluate */
static void split_text(const qb_model *m, int32_t **cal, int *n_cal, int32_t **ev, int *n_ev)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int32_t *all;
    int n;
    assert_int_equal(qb_eval_load_text(&ctx, m, qbt_model_path("stories260K/ppl-sample.txt"), &all, &n), QB_OK);
    *n_cal = n * 6 / 10;
    *n_ev = n - *n_cal;
    *cal = all;
    *ev = malloc((size_t)*n_ev * sizeof **ev);
    memcpy(*ev, all + *n_cal, (size_t)*n_ev * sizeof **ev);
}

static qb_calib *calibrate(qb_model *m, const int32_t *tok, int n)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int32_t *win;
    int nw;
    assert_int_equal(qb_calib_windows(&ctx, tok, n, 64, 0, 1, &win, &nw), QB_OK);
    qb_calib_opts co = {.n_ctx = 64, .hessian = true};
    qb_calib *c;
    assert_int_equal(qb_calib_run(&ctx, m, win, nw, &co, &c), QB_OK);
    free(win);
    return c;
}

static double kld_of(const qb_model *base, const qb_model *m, const int32_t *ev, int n_ev)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_eval_opts eo = {.n_ctx = 64};
    qb_kld_result r;
    assert_int_equal(qb_eval_kld(&ctx, base, m, ev, n_ev, &eo, &r), QB_OK);
    return r.kld_mean;
}

static void apply_method(qb_model *m, const char *meth_name, const char *fmt, const qb_calib *cal, double *losses,
                         int iters)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_plan p;
    assert_int_equal(qb_method_plan(&ctx, m, fmt, false, &p), QB_OK);
    qb_method meth;
    assert_int_equal(qb_method_parse(&ctx, meth_name, &meth), QB_OK);
    if (meth.kind == QB_METHOD_LEARNED) meth.learned.iters = iters;
    qb_method_opts o = {.learned_loss = losses};
    if (qb_method_apply(&ctx, m, &p, &meth, cal, &o) != QB_OK) fail_msg("%s: %s", meth_name, qb_ctx_errmsg(&ctx));
    qb_plan_free(&p);
}

static void test_beats_rtn_and_gptq(void **state)
{
    (void)state;
    qbt_need(qbt_model_path("stories260K/stories260K.bin"));
    qb_model *base = open_model(), *m = open_model();
    int32_t *cal_tok, *ev;
    int n_cal, n_ev;
    split_text(base, &cal_tok, &n_cal, &ev, &n_ev);
    qb_calib *cal = calibrate(m, cal_tok, n_cal);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    apply_method(m, "rtn", "int3-channel", NULL, NULL, 0);
    const double k_rtn = kld_of(base, m, ev, n_ev);
    assert_int_equal(qb_fold_reset(&ctx, m), QB_OK);
    apply_method(m, "gptq", "int3-channel", cal, NULL, 0);
    const double k_gptq = kld_of(base, m, ev, n_ev);
    assert_int_equal(qb_fold_reset(&ctx, m), QB_OK);
    double *loss = calloc(2 * (size_t)m->cfg.n_layers, sizeof *loss);
    apply_method(m, "learned", "int3-channel", cal, loss, 30);
    const double k_learned = kld_of(base, m, ev, n_ev);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        print_message("block %d: output MSE with RTN %.4e, learned %.4e\n", l, loss[2 * l], loss[2 * l + 1]);
        assert_true(loss[2 * l + 1] < loss[2 * l]);
    }
    print_message("int3-channel KLD on held-out text: RTN %.4f, GPTQ %.4f, learned %.4f\n", k_rtn, k_gptq, k_learned);
    assert_true(k_learned < k_rtn);
    assert_true(k_learned < k_gptq);
    /* packed and exported: the GGUF reopens with the logits the model gives */
    char *out = qbt_write_temp("learned", "", 0);
    strcat(out, ".gguf");
    assert_int_equal(qb_export_gguf(&ctx, m, out, NULL, NULL), QB_OK);
    qb_model *back = NULL;
    assert_int_equal(qb_model_open(&ctx, out, NULL, &back), QB_OK);
    const double k_back = kld_of(base, back, ev, n_ev);
    print_message("exported GGUF: KLD %.4f\n", k_back);
    assert_true(fabs(k_back - k_learned) < 0.05 * k_learned);
    qb_model_close(back);
    unlink(out);
    out[strlen(out) - 5] = 0;
    unlink(out);
    free(out);
    /* deterministic (a short run twice) */
    assert_int_equal(qb_fold_reset(&ctx, m), QB_OK);
    apply_method(m, "learned", "int4-channel-asym", cal, NULL, 4);
    size_t nb = m->layers[4].w_down->nbytes;
    uint8_t *first = malloc(nb);
    memcpy(first, m->layers[4].w_down->data, nb);
    assert_int_equal(qb_fold_reset(&ctx, m), QB_OK);
    apply_method(m, "learned", "int4-channel-asym", cal, NULL, 4);
    assert_memory_equal(first, m->layers[4].w_down->data, nb);
    free(first);
    free(loss);
    free(cal_tok);
    free(ev);
    qb_calib_free(cal);
    qb_model_close(m);
    qb_model_close(base);
}

static void test_refusals(void **state)
{
    (void)state;
    qbt_need(qbt_model_path("stories260K/stories260K.bin"));
    qb_model *m = open_model();
    int32_t *cal_tok, *ev;
    int n_cal, n_ev;
    split_text(m, &cal_tok, &n_cal, &ev, &n_ev);
    qb_calib *cal = calibrate(m, cal_tok, n_cal);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_plan p;
    assert_int_equal(qb_method_plan(&ctx, m, "q4_0", false, &p), QB_OK);
    qb_method meth;
    assert_int_equal(qb_method_parse(&ctx, "learned", &meth), QB_OK);
    assert_int_equal(qb_method_apply(&ctx, m, &p, &meth, cal, NULL), QB_ERR_UNSUPPORTED);
    assert_non_null(strstr(ctx.errmsg, "method learned"));
    assert_non_null(strstr(ctx.errmsg, "q4_0"));
    qb_plan_free(&p);
    assert_int_equal(qb_method_plan(&ctx, m, "int4-g32", false, &p), QB_OK);
    assert_int_equal(qb_method_apply(&ctx, m, &p, &meth, NULL, NULL), QB_ERR_ARG);
    assert_non_null(strstr(ctx.errmsg, "calibration"));
    qb_plan_free(&p);
    /* blocks in order only */
    qb_learned *lr;
    qb_learned_params lp = {.iters = 2};
    assert_int_equal(qb_learned_begin(&ctx, m, cal, &lp, &lr), QB_OK);
    const qb_format *none[7] = {0};
    void *dst[7] = {0};
    assert_int_equal(qb_learned_block(&ctx, lr, 1, none, NULL, dst, NULL, NULL, NULL), QB_ERR_ARG);
    assert_int_equal(qb_learned_block(&ctx, lr, 0, none, NULL, dst, NULL, NULL, NULL), QB_OK);
    qb_learned_end(lr);
    /* a calibration without its windows */
    int32_t *keep = cal->windows;
    cal->windows = NULL;
    assert_int_equal(qb_learned_begin(&ctx, m, cal, &lp, &lr), QB_ERR_ARG);
    cal->windows = keep;
    free(cal_tok);
    free(ev);
    qb_calib_free(cal);
    qb_model_close(m);
}

static void test_kquant_blocks_beat_rtn(void **state)
{
    (void)state;
    const char *dir = qbt_model_path("qb-docs-26m/hf");
    qbt_need(dir);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *base = NULL, *m = NULL;
    assert_int_equal(qb_model_open(&ctx, dir, NULL, &base), QB_OK);
    assert_int_equal(qb_model_open(&ctx, dir, NULL, &m), QB_OK);
    qb_calib_opts co = {.n_ctx = 64, .n_samples = 4};
    qb_calib *cal;
    assert_int_equal(qb_calib_run_file(&ctx, m, qbt_data_path("calib-docs.txt"), &co, &cal), QB_OK);
    double *loss = calloc(2 * (size_t)m->cfg.n_layers, sizeof *loss);
    qb_plan p;
    assert_int_equal(qb_method_plan(&ctx, m, "q3_k", false, &p), QB_OK);
    qb_method meth;
    assert_int_equal(qb_method_parse(&ctx, "learned", &meth), QB_OK);
    meth.learned.iters = 6;
    meth.learned.batch = 2;
    qb_method_opts o = {.learned_loss = loss};
    if (qb_method_apply(&ctx, m, &p, &meth, cal, &o) != QB_OK) fail_msg("learned q3_k: %s", qb_ctx_errmsg(&ctx));
    for (int l = 0; l < m->cfg.n_layers; l++) {
        print_message("q3_k block %d: output MSE with the format's quantization %.4e, learned %.4e\n", l, loss[2 * l],
                      loss[2 * l + 1]);
        assert_true(loss[2 * l + 1] < loss[2 * l]);
    }
    const qb_tensor *t = m->layers[2].w_down;
    assert_true(t->fmt.kind == QB_FMT_GGML && t->fmt.type == QB_TYPE_Q3_K);
    /* exported: the GGUF reopens with the same blocks (attn_q / attn_k excepted: an HF model's
     * rows of those are reordered for GGUF's RoPE pairing) and about the same KLD */
    int32_t *ev;
    int n_ev;
    assert_int_equal(qb_eval_load_text(&ctx, m, qbt_data_path("eval-docs.txt"), &ev, &n_ev), QB_OK);
    if (n_ev > 512) n_ev = 512;
    const double k_mem = kld_of(base, m, ev, n_ev);
    char *out = qbt_write_temp("learned-q3k", "", 0);
    strcat(out, ".gguf");
    assert_int_equal(qb_export_gguf(&ctx, m, out, NULL, NULL), QB_OK);
    qb_model *back = NULL;
    assert_int_equal(qb_model_open(&ctx, out, NULL, &back), QB_OK);
    int same = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const qb_tensor *a = &m->tensors[i];
        for (int j = 0; j < back->n_tensors; j++) {
            const qb_tensor *b = &back->tensors[j];
            if (strcmp(a->name, b->name) || !qb_format_equal(&a->fmt, &b->fmt) || a->fmt.kind != QB_FMT_GGML ||
                a->fmt.type != QB_TYPE_Q3_K || strstr(a->name, "attn_q.") || strstr(a->name, "attn_k."))
                continue;
            assert_int_equal(a->nbytes, b->nbytes);
            if (memcmp(a->data, b->data, a->nbytes)) fail_msg("%s: exported bytes differ", a->name);
            same++;
        }
    }
    assert_int_equal(same, 5 * m->cfg.n_layers + 2); /* the other matrices, the embeddings and the output */
    const double k_back = kld_of(base, back, ev, n_ev);
    print_message("q3_k learned: KLD %.4f in memory, %.4f from the exported GGUF (%d Q3_K tensors identical)\n", k_mem,
                  k_back, same);
    assert_true(k_mem > 0 && fabs(k_back - k_mem) < 0.02 * k_mem);
    qb_model_close(back);
    unlink(out);
    out[strlen(out) - 5] = 0;
    unlink(out);
    free(out);
    /* one step keeps the start: the format's own quantization of the original values, and
     * weighted, llama-quantize --imatrix's with the calibration's mean squares as importance */
    const int64_t rows = qb_tensor_rows(t), n = t->ne[0];
    const size_t nb = qb_format_row_bytes(&t->fmt, n) * (size_t)rows;
    float *src = malloc(sizeof(float) * (size_t)(rows * n)), *imp = malloc(sizeof(float) * (size_t)n);
    uint8_t *want = malloc(nb), *want_w = malloc(nb);
    qb_tensor_source_rows(t, 0, rows, src);
    qb_calib_mean_square(qb_calib_get(cal, 2, QB_OBS_FFN_DOWN_IN), imp);
    const qb_format q3 = qb_format_ggml(QB_TYPE_Q3_K);
    assert_int_equal(qb_quantize_matrix(&ctx, &q3, src, rows, n, want, NULL), QB_OK);
    assert_int_equal(qb_quantize_matrix_w(&ctx, &q3, src, rows, n, want_w, imp, NULL), QB_OK);
    assert_memory_not_equal(want, want_w, nb);
    meth.learned.iters = 1;
    for (int weighted = 0; weighted < 2; weighted++) {
        assert_int_equal(qb_fold_reset(&ctx, m), QB_OK);
        meth.learned.weighted = weighted;
        assert_int_equal(qb_method_apply(&ctx, m, &p, &meth, cal, NULL), QB_OK);
        assert_int_equal(m->layers[2].w_down->nbytes, nb);
        assert_memory_equal(m->layers[2].w_down->data, weighted ? want_w : want, nb);
    }
    free(src), free(imp), free(want), free(want_w);
    qb_plan_free(&p);
    free(ev);
    free(loss);
    qb_calib_free(cal);
    qb_model_close(m);
    qb_model_close(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_beats_rtn_and_gptq),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_kquant_blocks_beat_rtn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
