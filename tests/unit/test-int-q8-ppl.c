/* test-int-q8-ppl.c — 8-bit activations for INT weights cost (almost) nothing in quality: the
 * perplexity of models quantized to int8-channel / int4-channel (stories260K: 64-wide rows;
 * its 172-wide ffn_down keeps f32 activations) and int4-g128 / int8-channel (qb-docs-26m), run
 * through the integer path (kernels' int_tile_q8 / int_gemv), stays within 0.5% of the
 * perplexity of the very same weight values times f32 activations: a view of the model whose
 * quantized tensors hold their dequantized values as F32, computed here in the same run
 * (llama.cpp's own 8-bit activations move PPL by about that little). Run with QB_ISA=ref it
 * checks the scalar spec the same way. */
#include "testutil.h"
#include <math.h>

#include "core/model/model.h"
#include "core/quant/view.h"
#include "core/quant/format.h"
#include "core/quant/plan.h"
#include "core/quant/apply.h"
#include "core/eval/eval.h"
#include "core/infer/matmul.h"

typedef struct {
    const char *model, *text, *format;
    int n_ctx, n_chunks;
} ppl_case;

static const ppl_case cases[] = {
    {"stories260K/stories260K-f32.gguf", "stories260K/ppl-sample.txt", "int8-channel", 64, 0},
    {"stories260K/stories260K-f32.gguf", "stories260K/ppl-sample.txt", "int4-channel", 64, 0},
    {"qb-docs-26m/qb-docs-26m-f16.gguf", "eval-docs.txt", "int4-g128", 256, 8},
    {"qb-docs-26m/qb-docs-26m-f16.gguf", "eval-docs.txt", "int8-channel", 256, 8},
};

static double ppl(qb_ctx *ctx, const qb_model *m, const int32_t *toks, int n, const ppl_case *c)
{
    qb_eval_opts o = {.n_ctx = c->n_ctx, .n_chunks = c->n_chunks};
    qb_ppl_result r;
    if (qb_eval_perplexity(ctx, m, toks, n, &o, &r) != QB_OK) fail_msg("%s", qb_ctx_errmsg(ctx));
    return r.ppl;
}

/* A view of m in which every tensor of format f holds its dequantized values as F32. */
static qb_model *dequantized_view(qb_ctx *ctx, const qb_model *m, const qb_format *f)
{
    qb_model *v = NULL;
    assert_int_equal(qb_model_view_new(ctx, m, &v), QB_OK);
    const qb_format f32 = qb_format_ggml(QB_TYPE_F32);
    int changed = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const qb_tensor *t = &m->tensors[i];
        if (!qb_format_equal(&t->fmt, f)) continue;
        const int64_t rows = qb_tensor_rows(t), cols = t->ne[0];
        float *buf = malloc((size_t)rows * (size_t)cols * sizeof *buf);
        assert_non_null(buf);
        for (int64_t r = 0; r < rows; r++) qb_tensor_get_row(t, r, buf + r * cols);
        assert_int_equal(qb_view_set(ctx, v, i, &f32, buf, (size_t)rows * (size_t)cols * sizeof *buf), QB_OK);
        changed++;
    }
    assert_true(changed > 0);
    return v;
}

static void test_ppl_close_to_f32_activations(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const ppl_case *c = &cases[i];
        qbt_need(qbt_model_path(c->model));
        qb_ctx ctx;
        qb_ctx_init(&ctx);
        qb_model *m = NULL;
        assert_int_equal(qb_model_open(&ctx, qbt_model_path(c->model), NULL, &m), QB_OK);
        qb_plan p;
        qb_format f;
        qb_plan_init(&p);
        assert_int_equal(qb_format_parse(&ctx, c->format, &f), QB_OK);
        assert_int_equal(qb_plan_add(&ctx, &p, "blk.*", &f), QB_OK);
        if (qb_plan_apply_rtn(&ctx, m, &p, NULL) != QB_OK) fail_msg("%s: %s", c->format, qb_ctx_errmsg(&ctx));
        qb_plan_free(&p);
        int32_t *toks;
        int n;
        const char *text = strchr(c->text, '/') ? qbt_model_path(c->text) : qbt_data_path(c->text);
        assert_int_equal(qb_eval_load_text(&ctx, m, text, &toks, &n), QB_OK);
        qb_model *v = dequantized_view(&ctx, m, &f);
        const double q8 = ppl(&ctx, m, toks, n, c), f32 = ppl(&ctx, v, toks, n, c), rel = q8 / f32 - 1;
        print_message("%-36s %-13s PPL %.4f (same weights, f32 activations %.4f, %+.3f%%)\n", c->model, c->format, q8, f32,
                      100 * rel);
        assert_true(q8 != f32); /* the two paths really differ */
        if (!(fabs(rel) < 0.005)) fail_msg("%s %s: PPL %.4f, with f32 activations %.4f", c->model, c->format, q8, f32);
        qb_model_view_free(v);
        free(toks);
        qb_model_close(m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_ppl_close_to_f32_activations)};
    return cmocka_run_group_tests_name("int-q8-ppl", tests, NULL, NULL);
}
