/* test-w8a8.c — W8A8: the int8 GEMM tile of every vector table this CPU runs against the
 * scalar reference (bit for bit) at awkward lengths, row counts, token counts and strides;
 * the activation quantizer; the matmul path against a double-precision product of the
 * dequantized operands; a whole model in W8A8 (dynamic and static) close to float; bad
 * input (a weight format W8A8 cannot run, an unknown activation mode or name). */
#include "outlier_util.h"

#include "kernels.h"
#include "core/infer/matmul.h"
#include "core/infer/matmul_w8a8.h"
#include "core/method/smoothquant.h"
#include "core/calib/calib.h"
#include "core/method/act_quant.h"
#include "core/quant/format.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next_u64(void) { return qbt_xorshift(&rng); }
static float frand(void) { return qbt_frand(&rng); }

static void test_gemm_simd_vs_ref(void **state)
{
    (void)state;
    static const int lens[] = {1, 2, 3, 5, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 129, 255, 513, 1023, 1536};
    const char *isas[] = {"avx2", "avx512", "avx512vnni"};
    int tested = 0;
    for (int ii = 0; ii < 3; ii++) {
        const qb_kernel_table *k = qb_kernels_for(isas[ii]);
        if (!k) continue;
        tested++;
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            int n = lens[li];
            size_t ldw = (size_t)n + 3, ldx = (size_t)n + 5; /* odd strides: unaligned rows */
            uint8_t *w = malloc(4 * ldw + 1);
            int8_t *x = malloc(4 * ldx + 1);
            for (size_t i = 0; i < 4 * ldw + 1; i++) w[i] = (uint8_t)next_u64();
            for (size_t i = 0; i < 4 * ldx + 1; i++) x[i] = (int8_t)((int)(next_u64() % 255) - 127);
            if (li % 3 == 0) /* extremes: codes 0 and 255, activations ±127 */
                for (int i = 0; i < n; i++) w[1 + i] = i & 1 ? 255 : 0, x[1 + i] = i & 2 ? 127 : -127;
            for (int nr = 1; nr <= 4; nr++)
                for (int nc = 1; nc <= 4; nc++) {
                    int32_t yr[16], yv[16];
                    memset(yr, 0, sizeof yr), memset(yv, 0x55, sizeof yv);
                    qb_gemm_i8_ref(n, w + 1, ldw, nr, x + 1, ldx, nc, yr, 4);
                    k->gemm_i8(n, w + 1, ldw, nr, x + 1, ldx, nc, yv, 4);
                    for (int c = 0; c < nc; c++)
                        for (int r = 0; r < nr; r++)
                            if (yr[c * 4 + r] != yv[c * 4 + r])
                                fail_msg("%s n=%d nr=%d nc=%d r=%d c=%d: %d vs ref %d", isas[ii], n, nr, nc, r, c,
                                         yv[c * 4 + r], yr[c * 4 + r]);
                }
            free(w);
            free(x);
        }
    }
    if (!tested) fprintf(stderr, "no vector ISA on this CPU: only the reference ran\n");
}

static void test_quantize_row(void **state)
{
    (void)state;
    float x[7] = {0.5f, -1.0f, 2.54f, -2.54f, 0.0f, 1.27f, -0.01f};
    int8_t q[7];
    float d = qb_w8a8_quantize_row(x, q, 7, 0);
    assert_float_equal(d, 2.54f / 127.0f, 1e-9);
    assert_int_equal(q[2], 127);
    assert_int_equal(q[3], -127);
    assert_int_equal(q[5], 64); /* 1.27 / 0.02 = 63.5 → ties to even */
    assert_int_equal(q[4], 0);
    /* static scale: values beyond clamp, never -128 */
    d = qb_w8a8_quantize_row(x, q, 7, 0.01f);
    assert_float_equal(d, 0.01f, 0);
    assert_int_equal(q[2], 127);
    assert_int_equal(q[3], -127);
    assert_int_equal(q[1], -100);
    float z[3] = {0, 0, 0};
    assert_float_equal(qb_w8a8_quantize_row(z, q, 3, 0), 0, 0);
    assert_int_equal(q[0] | q[1] | q[2], 0);
}

/* A standalone tensor of rows × n int8-channel weights from random floats. */
static void make_tensor(qb_tensor *t, float *wf, int rows, int n, void **buf)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    memset(t, 0, sizeof *t);
    t->name = "test";
    t->n_dims = 2;
    t->ne[0] = n, t->ne[1] = rows, t->ne[2] = t->ne[3] = 1;
    t->fmt = (qb_format){.kind = QB_FMT_INT, .bits = 8, .group = QB_GROUP_CHANNEL};
    t->type = QB_TYPE_CUSTOM;
    size_t rb = qb_format_row_bytes(&t->fmt, n);
    *buf = malloc(rb * rows);
    assert_int_equal(qb_quantize_matrix(&ctx, &t->fmt, wf, rows, n, *buf, NULL), QB_OK);
    t->data = *buf;
    t->nbytes = rb * rows;
    t->src_type = QB_TYPE_F32;
    t->src_data = wf;
    t->src_nbytes = (size_t)rows * n * sizeof(float);
}

static void test_matmul_matches_dequantized_product(void **state)
{
    (void)state;
    const int rows = 13, n = 97, T = 6;
    float *wf = malloc(sizeof(float) * rows * n), *x = malloc(sizeof(float) * T * n);
    for (int i = 0; i < rows * n; i++) wf[i] = frand();
    for (int i = 0; i < T * n; i++) x[i] = frand() * (i % 31 == 0 ? 20.0f : 1.0f);
    qb_tensor t;
    void *buf;
    make_tensor(&t, wf, rows, n, &buf);
    float *wd = malloc(sizeof(float) * rows * n), *y = malloc(sizeof(float) * T * rows);
    for (int r = 0; r < rows; r++)
        qb_dequantize_row(&t.fmt, (const uint8_t *)buf + (size_t)r * qb_format_row_bytes(&t.fmt, n), wd + r * n, n);
    for (int mode = QB_ACT_INT8; mode <= QB_ACT_INT8_STATIC; mode++) {
        qb_act_setting as = {.mode = mode, .scale = 21.0f / 127.0f};
        assert_true(qb_matmul_w8a8(&t, &as, NULL, x, T, y));
        for (int tk = 0; tk < T; tk++) {
            int8_t q[97];
            float d = qb_w8a8_quantize_row(x + tk * n, q, n, mode == QB_ACT_INT8_STATIC ? as.scale : 0);
            for (int r = 0; r < rows; r++) {
                double ref = 0, exact = 0, bound = 0, dw = 0;
                for (int i = 0; i < n; i++) dw = fmax(dw, fabs(wd[r * n + i] - wf[r * n + i]));
                for (int i = 0; i < n; i++) {
                    ref += (double)wd[r * n + i] * d * q[i];
                    exact += (double)wf[r * n + i] * x[tk * n + i];
                    /* rounding of both operands (half a step each), plus clamping (static) */
                    double dx = fabs(x[tk * n + i] - d * q[i]);
                    bound += fabs(wf[r * n + i]) * dx + dw * fabs(x[tk * n + i]) + dw * dx;
                }
                assert_float_equal(y[tk * rows + r], ref, 1e-4 * (1 + fabs(ref)));
                assert_true(fabs(y[tk * rows + r] - exact) <= bound + 1e-4);
                if (mode == QB_ACT_INT8) assert_true(bound < 0.6 * n * d); /* a real bound, not a blank cheque */
            }
        }
    }
    /* float activations (or none given) are not W8A8's: the caller takes qb_matmul */
    float *y2 = malloc(sizeof(float) * T * rows);
    qb_act_setting fl = {.mode = QB_ACT_FLOAT};
    assert_false(qb_matmul_w8a8(&t, &fl, NULL, x, T, y2));
    assert_false(qb_matmul_w8a8(&t, NULL, NULL, x, T, y2));
    free(wf), free(x), free(wd), free(y), free(y2), free(buf);
}

static void test_model_w8a8_close_to_float(void **state)
{
    (void)state;
    qb_model *m = ou_open("stories260K/stories260K.bin");
    enum { N = 48 };
    int32_t t[N];
    ou_tokens(m, t, N);
    int V = m->cfg.vocab_size;
    float *ref = ou_logits(m, t, N, N);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_run_config *rc = ou_run(m);
    qb_smoothquant_opts o = {.act_mode = QB_ACT_INT8};
    assert_int_equal(qb_smoothquant_apply(&ctx, m, NULL, NULL, &o), QB_ERR_ARG); /* no run configuration */
    assert_int_equal(qb_smoothquant_apply(&ctx, m, rc, NULL, &o), QB_OK);
    assert_int_equal(qb_run_config_act(rc, m, m->layers[0].wq)->mode, QB_ACT_INT8);
    float *q = ou_logits_run(m, rc, t, N, N);
    /* the model alone runs float: the settings are the run configuration's */
    float *f = ou_logits(m, t, N, N);
    assert_true(ou_rel_maxdiff(q, f, (size_t)N * V) > 0);
    free(f);
    double d = ou_rel_maxdiff(ref, q, (size_t)N * V), agree = ou_top1(ref, q, N, V);
    fprintf(stderr, "stories260K W8A8 dynamic: max logit diff %.4f of max, top-1 %.3f\n", d, agree);
    assert_true(d < 0.1);
    assert_true(agree >= 0.9);
    /* one token at a time gives the same logits as the batch (per-token scales) */
    float *q1 = ou_logits_run(m, rc, t, N, 1);
    assert_true(ou_rel_maxdiff(q, q1, (size_t)N * V) < 1e-5);
    /* clearing restores the float model exactly */
    assert_int_equal(qb_w8a8_clear(&ctx, m, rc), QB_OK);
    assert_false(qb_run_config_any_act(rc));
    float *back = ou_logits_run(m, rc, t, N, N);
    assert_memory_equal(ref, back, sizeof(float) * N * V);
    free(ref), free(q), free(q1), free(back);
    qb_run_config_free(rc);
    qb_model_close(m);
}

static void test_static_scales_from_calibration(void **state)
{
    (void)state;
    qb_model *m = ou_open("stories260K/stories260K.bin");
    enum { N = 64 };
    int32_t t[4 * N];
    ou_tokens(m, t, 4 * N);
    int V = m->cfg.vocab_size;
    float *ref = ou_logits(m, t, N, N);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_calib *a = NULL;
    qb_calib_opts co = {.n_ctx = N};
    assert_int_equal(qb_calib_run(&ctx, m, t, 4, &co, &a), QB_OK);
    assert_int_equal(a->n_tokens, 4 * N);
    qb_run_config *rc = ou_run(m);
    qb_smoothquant_opts o = {.act_mode = QB_ACT_INT8_STATIC};
    assert_int_equal(qb_smoothquant_apply(&ctx, m, rc, a, &o), QB_OK);
    /* the scale is the calibrated absmax / 127 */
    float mx = 0;
    for (int j = 0; j < m->cfg.dim; j++) mx = fmaxf(mx, qb_calib_get(a, 0, QB_OBS_ATTN_IN)->absmax[j]);
    assert_float_equal(qb_run_config_act(rc, m, m->layers[0].wq)->scale, mx / 127.0f, 1e-9);
    float *q = ou_logits_run(m, rc, t, N, N);
    double agree = ou_top1(ref, q, N, V);
    fprintf(stderr, "stories260K W8A8 static: top-1 %.3f\n", agree);
    assert_true(agree >= 0.8);
    /* static needs statistics */
    assert_int_equal(qb_smoothquant_apply(&ctx, m, rc, NULL, &o), QB_ERR_ARG);
    qb_calib_free(a);
    free(ref), free(q);
    qb_run_config_free(rc);
    qb_model_close(m);
}

static void test_bad_input(void **state)
{
    (void)state;
    qb_model *m = ou_open("stories260K/stories260K.bin");
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_format q4 = qb_format_ggml(QB_TYPE_Q4_0), i4 = {.kind = QB_FMT_INT, .bits = 4, .group = QB_GROUP_CHANNEL};
    qb_run_config *rc = ou_run(m);
    qb_smoothquant_opts o = {.act_mode = QB_ACT_INT8, .wfmt = &q4};
    assert_int_equal(qb_smoothquant_apply(&ctx, m, rc, NULL, &o), QB_ERR_UNSUPPORTED);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "q4_0"));
    o.wfmt = &i4;
    assert_int_equal(qb_smoothquant_apply(&ctx, m, rc, NULL, &o), QB_ERR_UNSUPPORTED);
    o.wfmt = NULL;
    o.act_mode = 9;
    assert_int_equal(qb_smoothquant_apply(&ctx, m, rc, NULL, &o), QB_ERR_ARG);
    assert_int_equal(m->layers[0].wq->type, QB_TYPE_F32); /* unchanged */
    qb_act_opts ao;
    qb_act_opts_init(&ao);
    ao.act = "int3";
    assert_int_equal(qb_act_apply(&ctx, m, rc, &ao), QB_ERR_ARG);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "int3"));
    ao.act = "int8-static"; /* no calibration text */
    assert_int_equal(qb_act_apply(&ctx, m, rc, &ao), QB_ERR_ARG);
    ao.act = "int8";
    assert_int_equal(qb_act_apply(&ctx, m, NULL, &ao), QB_ERR_ARG); /* no run configuration */
    ao.calib_path = "/nonexistent/calib.txt";
    ao.smooth = true;
    assert_int_not_equal(qb_act_apply(&ctx, m, rc, &ao), QB_OK);
    assert_false(qb_run_config_any_act(rc));
    qb_run_config_free(rc);
    qb_model_close(m);
}

/* One calibration serves every method: SmoothQuant with static scales given a calibration
 * result (the kind GPTQ / AWQ use, here with XᵀX too) gives the same model as SmoothQuant
 * calibrating the same text itself. */
static void test_act_reuses_calibration(void **state)
{
    (void)state;
    const char *path = qbt_model_path("stories260K/stories260K.bin");
    qbt_need(path);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = NULL;
    assert_int_equal(qb_model_open(&ctx, path, NULL, &m), QB_OK); /* with its tokenizer */
    const char *text = qbt_model_path("stories260K/ppl-sample.txt");
    qb_act_opts ao;
    qb_act_opts_init(&ao);
    ao.act = "int8-static";
    ao.smooth = true;
    ao.smooth_out = true;
    ao.calib_path = text;
    ao.calib_ctx = 64;
    ao.calib_windows = 4;
    qb_run_config *rc = ou_run(m);
    if (qb_act_apply(&ctx, m, rc, &ao) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    qb_layer_weights *L = &m->layers[1];
    const qb_tensor *ts[] = {L->attn_norm, L->wq, L->wv, L->wo, L->w_up, L->w_down};
    void *bytes[6];
    float scales[6];
    for (int i = 0; i < 6; i++) {
        bytes[i] = malloc(ts[i]->nbytes);
        memcpy(bytes[i], ts[i]->data, ts[i]->nbytes);
        scales[i] = qb_run_config_act(rc, m, ts[i])->scale;
    }
    assert_int_equal(qb_w8a8_clear(&ctx, m, rc), QB_OK);
    qb_calib *cal = NULL;
    qb_calib_opts co = {.n_ctx = 64, .n_samples = 4, .hessian = true};
    assert_int_equal(qb_calib_run_file(&ctx, m, text, &co, &cal), QB_OK);
    ao.calib_path = NULL;
    ao.calib = cal;
    assert_int_equal(qb_act_apply(&ctx, m, rc, &ao), QB_OK);
    for (int i = 0; i < 6; i++) {
        assert_memory_equal(bytes[i], ts[i]->data, ts[i]->nbytes);
        assert_true(scales[i] == qb_run_config_act(rc, m, ts[i])->scale);
        free(bytes[i]);
    }
    qb_calib_free(cal);
    qb_run_config_free(rc);
    qb_model_close(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_simd_vs_ref),
        cmocka_unit_test(test_quantize_row),
        cmocka_unit_test(test_matmul_matches_dequantized_product),
        cmocka_unit_test(test_model_w8a8_close_to_float),
        cmocka_unit_test(test_static_scales_from_calibration),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_act_reuses_calibration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
