/* test-export-repack.c — formats without a ggml type written as ggml types by the GGUF export
 * (core/quant/export_repack.h): for every integer grid the target type is the one the header
 * promises, and the repacked blocks, dequantized by ggml's rules, give back exactly the values
 * the tensor had (group scales) or the values to f16 rounding of the scale (per row / tensor,
 * asymmetric Q4_1/Q5_1 offsets); NF4/FP8/MXFP4 come back as F16 of the dequantized values;
 * the description lists each converted tensor; a model exported with int4-g128 reopens with
 * the same weights and its perplexity. */
#include "testmodel.h"
#include <math.h>

#include "core/quant/apply.h"
#include "core/quant/export_repack.h"
#include "core/quant/format.h"

#define ROWS 6
#define N 256

/* A tensor quantized in memory to `name` from a fixed heavy-tailed matrix. */
static void make_tensor(const char *name, qb_tensor *t, float *orig)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    uint32_t s = 12345;
    for (int i = 0; i < ROWS * N; i++) {
        s = s * 1664525u + 1013904223u;
        float u = ((s >> 8) & 0xffff) / 65536.0f - 0.5f;
        orig[i] = u * 0.2f + (i % 97 == 0 ? 1.5f * u : 0.0f) + (i % 7 == 3 ? 0.01f : 0.0f);
    }
    memset(t, 0, sizeof *t);
    t->name = "blk.0.ffn_up.weight";
    t->n_dims = 2;
    t->ne[0] = N;
    t->ne[1] = ROWS;
    t->ne[2] = t->ne[3] = 1;
    assert_int_equal(qb_format_parse(&ctx, name, &t->fmt), QB_OK);
    t->type = QB_TYPE_CUSTOM;
    t->nbytes = qb_format_row_bytes(&t->fmt, N) * ROWS;
    t->owned = malloc(t->nbytes);
    t->data = t->owned;
    assert_int_equal(qb_quantize_matrix(&ctx, &t->fmt, orig, ROWS, N, t->owned, NULL), QB_OK);
}

/* Max |a-b| / max|a| over the tensor after export (both dequantized). */
static double export_error(const char *name, qb_type want, qb_export_kind kind)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    static float orig[ROWS * N], mine[N], theirs[N];
    qb_tensor t;
    make_tensor(name, &t, orig);
    qb_export_target tg = qb_export_target_for(&t.fmt, N);
    assert_int_equal(tg.type, want);
    assert_int_equal(tg.kind, kind);
    qb_type type;
    void *out;
    size_t nbytes;
    assert_int_equal(qb_export_repack(&ctx, &t, &type, &out, &nbytes), QB_OK);
    assert_int_equal(type, want);
    assert_int_equal(nbytes, qb_type_row_bytes(want, N) * ROWS);
    qb_format gf = qb_format_ggml(want);
    double worst = 0, amax = 0;
    for (int r = 0; r < ROWS; r++) {
        qb_dequantize_row(&t.fmt, (const uint8_t *)t.data + (size_t)r * qb_format_row_bytes(&t.fmt, N), mine, N);
        qb_dequantize_row(&gf, (const uint8_t *)out + (size_t)r * qb_type_row_bytes(want, N), theirs, N);
        for (int i = 0; i < N; i++) {
            worst = fmax(worst, fabs((double)mine[i] - theirs[i]));
            amax = fmax(amax, fabs(mine[i]));
        }
    }
    free(out);
    free(t.owned);
    print_message("%-16s -> %-5s max |diff| / max|x| = %.3g\n", name, qb_type_get(want)->name, worst / amax);
    return worst / amax;
}

static void test_group_grids_exact(void **state)
{
    (void)state;
    assert_true(export_error("int4-g128", QB_TYPE_Q4_0, QB_EXPORT_EXACT) == 0);
    assert_true(export_error("int4-g32", QB_TYPE_Q4_0, QB_EXPORT_EXACT) == 0);
    assert_true(export_error("int3-g64", QB_TYPE_Q4_0, QB_EXPORT_EXACT) == 0);
    assert_true(export_error("int2-g256", QB_TYPE_Q4_0, QB_EXPORT_EXACT) == 0);
    assert_true(export_error("int5-g32", QB_TYPE_Q5_0, QB_EXPORT_EXACT) == 0);
    assert_true(export_error("int8-g128", QB_TYPE_Q8_0, QB_EXPORT_EXACT) == 0);
    assert_true(export_error("int6-g64", QB_TYPE_Q8_0, QB_EXPORT_EXACT) == 0);
    assert_true(export_error("int7-g32-asym", QB_TYPE_Q8_0, QB_EXPORT_EXACT) == 0);
    assert_true(export_error("int6-g128-asym", QB_TYPE_Q8_0, QB_EXPORT_EXACT) == 0);
}

static void test_rounded_and_dequantized(void **state)
{
    (void)state;
    /* f16 has 11 significant bits: a rounded scale or offset moves a value by <= 2^-11 of
     * the group's range */
    const double f16_step = 1.0 / 1024;
    assert_true(export_error("int4-g128-asym", QB_TYPE_Q4_1, QB_EXPORT_ROUNDED) <= f16_step);
    assert_true(export_error("int5-g64-asym", QB_TYPE_Q5_1, QB_EXPORT_ROUNDED) <= f16_step);
    assert_true(export_error("int2-g32-asym", QB_TYPE_Q4_1, QB_EXPORT_ROUNDED) <= f16_step);
    assert_true(export_error("int4-channel", QB_TYPE_Q4_0, QB_EXPORT_ROUNDED) <= f16_step);
    assert_true(export_error("int8-tensor", QB_TYPE_Q8_0, QB_EXPORT_ROUNDED) <= f16_step);
    assert_true(export_error("int3-channel-asym", QB_TYPE_Q4_1, QB_EXPORT_ROUNDED) <= f16_step);
    assert_true(export_error("int8-g32-asym", QB_TYPE_F16, QB_EXPORT_DEQUANT) <= f16_step);
    assert_true(export_error("nf4", QB_TYPE_F16, QB_EXPORT_DEQUANT) <= f16_step);
    assert_true(export_error("nf4-dq", QB_TYPE_F16, QB_EXPORT_DEQUANT) <= f16_step);
    assert_true(export_error("fp8-e4m3", QB_TYPE_F16, QB_EXPORT_DEQUANT) <= f16_step);
    assert_true(export_error("fp8-e5m2-channel", QB_TYPE_F16, QB_EXPORT_DEQUANT) <= f16_step);
    assert_true(export_error("mxfp4", QB_TYPE_F16, QB_EXPORT_DEQUANT) <= f16_step);
}

static void test_targets(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_format f;
    /* a row that is not whole 32-blocks cannot be repacked: dequantized */
    assert_int_equal(qb_format_parse(&ctx, "int4-channel", &f), QB_OK);
    assert_int_equal(qb_export_target_for(&f, 172).kind, QB_EXPORT_DEQUANT);
    assert_int_equal(qb_export_target_for(&f, 64).type, QB_TYPE_Q4_0);
    /* ggml types are written as they are */
    f = qb_format_ggml(QB_TYPE_Q6_K);
    assert_int_equal(qb_export_target_for(&f, 256).kind, QB_EXPORT_AS_IS);
    assert_int_equal(qb_export_target_for(&f, 256).type, QB_TYPE_Q6_K);
    /* a ggml tensor is not repacked */
    qb_tensor t = {.name = "x", .type = QB_TYPE_Q8_0, .fmt = f};
    qb_type ty;
    void *out;
    size_t nb;
    assert_int_equal(qb_export_repack(&ctx, &t, &ty, &out, &nb), QB_ERR_ARG);
}

/* qb-docs-26m with every layer matrix int4-g128: the description names them, the exported
 * file holds Q4_0 blocks with the same values and gives the same perplexity. */
static void test_model_roundtrip(void **state)
{
    (void)state;
    qb_model *m = qbt_open_model_or_skip("qb-docs-26m/qb-docs-26m-f16.gguf");
    if (!m) return;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_plan p;
    qb_format f;
    qb_plan_init(&p);
    assert_int_equal(qb_format_parse(&ctx, "int4-g128", &f), QB_OK);
    assert_int_equal(qb_plan_add(&ctx, &p, "blk.*", &f), QB_OK);
    assert_int_equal(qb_plan_apply_rtn(&ctx, m, &p, NULL), QB_OK);
    char *d = qb_export_describe(m);
    assert_non_null(d);
    assert_non_null(strstr(d, "blk.0.ffn_down.weight int4-g128 -> Q4_0 (exact)"));
    free(d);
    char *out = qbt_write_temp("repack", "", 0);
    assert_int_equal(qb_export_gguf(&ctx, m, out, &p, NULL), QB_OK);
    qb_model *back = qbt_open_model(out, NULL);
    assert_int_equal(back->layers[3].wq->type, QB_TYPE_Q4_0);
    /* every layer matrix holds exactly the values it had in memory */
    int64_t n = m->cfg.dim;
    float *x = malloc((size_t)m->cfg.hidden_dim * sizeof *x), *y = malloc((size_t)m->cfg.hidden_dim * sizeof *y);
    for (int i = 0; i < m->n_tensors; i++) {
        const qb_tensor *t = &m->tensors[i], *u = &back->tensors[i];
        if (t->type != QB_TYPE_CUSTOM) continue;
        assert_string_equal(t->name, u->name);
        assert_int_equal(u->type, QB_TYPE_Q4_0);
        n = t->ne[0];
        for (int64_t r = 0; r < qb_tensor_rows(t); r += 37) {
            qb_dequantize_row(&t->fmt, (const uint8_t *)t->data + (size_t)r * (t->nbytes / (size_t)qb_tensor_rows(t)), x, n);
            qb_dequantize_row(&u->fmt, (const uint8_t *)u->data + (size_t)r * (u->nbytes / (size_t)qb_tensor_rows(u)), y, n);
            assert_memory_equal(x, y, (size_t)n * sizeof *x);
        }
    }
    free(x);
    free(y);
    /* the forward pass differs only in how activations meet the weights (Q4_0 quantizes them
     * to 8 bits, as llama.cpp does): perplexity agrees closely */
    int nt;
    int32_t *toks = qbt_load_tokens(m, qbt_data_path("eval-docs.txt"), &nt);
    qb_eval_opts eo = {.n_ctx = 256, .n_chunks = 3};
    qb_ppl_result ra, rb;
    assert_int_equal(qb_eval_perplexity(&ctx, m, toks, nt, &eo, &ra), QB_OK);
    assert_int_equal(qb_eval_perplexity(&ctx, back, toks, nt, &eo, &rb), QB_OK);
    print_message("int4-g128: PPL in memory %.4f, exported Q4_0 %.4f\n", ra.ppl, rb.ppl);
    assert_true(fabs(rb.ppl / ra.ppl - 1) < 0.005);
    free(toks);
    qb_model_close(back);
    unlink(out);
    free(out);
    qb_plan_free(&p);
    qb_model_close(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_grids_exact),
        cmocka_unit_test(test_rounded_and_dequantized),
        cmocka_unit_test(test_targets),
        cmocka_unit_test(test_model_roundtrip),
    };
    return cmocka_run_group_tests_name("export-repack", tests, NULL, NULL);
}
