/* test-fakequant.c — learnable INT quantization (core/method/fakequant.h):
 * - with v = 0, α = β = 1 it gives the format's round-to-nearest values, bit for bit;
 * - its packed bytes dequantize to exactly the values its forward gives (any v, α, β);
 * - forward values and straight-through gradients (dv, dα, dβ) equal PyTorch autograd's for
 *   five INT formats (tests/fixtures/train/fakequant, scripts/make-train-fixtures.py):
 *   values bit for bit, gradients within 1e-5 relative;
 * - formats it cannot learn (ggml types, per-tensor scales) are refused. */
#include "testutil.h"
#include "core/method/fakequant.h"

#include <jansson.h>
#include <math.h>

static void fill(float *a, size_t n, uint32_t *s, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) {
        *s = *s * 1664525u + 1013904223u;
        a[i] = lo + (hi - lo) * (float)((*s >> 8) / 16777216.0);
    }
}

static void test_identity_is_rtn_and_pack_roundtrip(void **state)
{
    (void)state;
    const char *fmts[] = {"int3-g32-asym", "int4-g64", "int4-channel", "int2-g32-asym", "int8-g128", "int4-channel-asym"};
    const int64_t rows = 5, n = 256;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    uint32_t s = 7;
    float *w = malloc(sizeof(float) * rows * n), *v = calloc((size_t)(rows * n), sizeof(float));
    float *a = malloc(sizeof(float) * rows * n), *b = malloc(sizeof(float) * rows * n);
    fill(w, (size_t)(rows * n), &s, -0.1f, 0.1f);
    w[3] = 0.9f;
    w[n + 7] = -0.7f;
    for (size_t k = 0; k < sizeof fmts / sizeof *fmts; k++) {
        qb_format f;
        assert_int_equal(qb_format_parse(&ctx, fmts[k], &f), QB_OK);
        const int64_t ng = qb_fq_groups(&f, rows, n);
        assert_true(ng > 0);
        float *al = malloc(sizeof(float) * ng), *be = malloc(sizeof(float) * ng);
        for (int64_t i = 0; i < ng; i++) al[i] = be[i] = 1.0f;
        memset(v, 0, sizeof(float) * rows * n);
        const size_t rb = qb_format_row_bytes(&f, n);
        uint8_t *q = malloc(rb * rows);
        /* identity: the format's own RTN */
        qb_fq_forward(&f, w, rows, n, v, al, be, a);
        assert_int_equal(qb_quantize_matrix(&ctx, &f, w, rows, n, q, NULL), QB_OK);
        for (int64_t r = 0; r < rows; r++) qb_dequantize_row(&f, q + rb * r, b + r * n, n);
        assert_memory_equal(a, b, sizeof(float) * rows * n);
        /* any v, α, β: the packed bytes hold the forward's values */
        fill(v, (size_t)(rows * n), &s, -0.5f, 0.5f);
        fill(al, (size_t)ng, &s, 0.5f, 1.0f);
        fill(be, (size_t)ng, &s, 0.5f, 1.0f);
        qb_fq_forward(&f, w, rows, n, v, al, be, a);
        assert_int_equal(qb_fq_pack(&ctx, &f, w, rows, n, v, al, be, q), QB_OK);
        for (int64_t r = 0; r < rows; r++) qb_dequantize_row(&f, q + rb * r, b + r * n, n);
        assert_memory_equal(a, b, sizeof(float) * rows * n);
        print_message("%-18s identity = RTN, packed = forward (%lld groups)\n", fmts[k], (long long)ng);
        free(al), free(be), free(q);
    }
    /* formats without integer groups are not learned here */
    const char *no[] = {"q4_k", "int4-tensor", "nf4"};
    for (int k = 0; k < 3; k++) {
        qb_format f;
        assert_int_equal(qb_format_parse(&ctx, no[k], &f), QB_OK);
        assert_int_equal(qb_fq_groups(&f, rows, n), 0);
        assert_int_equal(qb_fq_pack(&ctx, &f, w, rows, n, v, v, v, a), QB_ERR_UNSUPPORTED);
    }
    free(w), free(v), free(a), free(b);
}

static double rel_err(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

static void test_matches_pytorch(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *ix = json_load_file("tests/fixtures/train/fakequant/index.json", 0, &jerr);
    if (!ix) fail_msg("tests/fixtures/train/fakequant/index.json: %s", jerr.text);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(ix, "formats"), i, e) {
        const char *name = json_string_value(json_object_get(e, "name"));
        const int64_t rows = json_integer_value(json_object_get(e, "rows")), n = json_integer_value(json_object_get(e, "n"));
        const int64_t ng = json_integer_value(json_object_get(e, "groups"));
        qb_format f;
        assert_int_equal(qb_format_parse(&ctx, name, &f), QB_OK);
        assert_int_equal(qb_fq_groups(&f, rows, n), ng);
        char path[256];
        snprintf(path, sizeof path, "tests/fixtures/train/fakequant/%s.f32", name);
        size_t len;
        float *blob = (float *)qbt_slurp(path, &len);
        const size_t rn = (size_t)(rows * n);
        assert_int_equal(len, sizeof(float) * (5 * rn + 4 * (size_t)ng));
        const float *w = blob, *v = w + rn, *al = v + rn, *be = al + ng, *r = be + ng, *wq_ref = r + rn;
        const float *dv_ref = wq_ref + rn, *da_ref = dv_ref + rn, *db_ref = da_ref + ng;
        float *wq = malloc(sizeof(float) * rn), *dv = calloc(rn, sizeof(float));
        float *da = calloc((size_t)ng, sizeof(float)), *db = calloc((size_t)ng, sizeof(float));
        qb_fq_forward(&f, w, rows, n, v, al, be, wq);
        assert_memory_equal(wq, wq_ref, sizeof(float) * rn);
        qb_fq_backward(&f, w, rows, n, v, al, be, r, dv, da, db);
        const double ev = rel_err(dv, dv_ref, rn), ea = rel_err(da, da_ref, (size_t)ng), eb = rel_err(db, db_ref, (size_t)ng);
        print_message("%-16s values equal PyTorch's; gradients dv %.1e  dalpha %.1e  dbeta %.1e (relative)\n", name, ev,
                      ea, eb);
        if (!(ev < 1e-5 && ea < 1e-5 && eb < 1e-5)) fail_msg("%s: gradients differ from PyTorch autograd's", name);
        free(wq), free(dv), free(da), free(db), free(blob);
    }
    assert_true(i >= 5);
    json_decref(ix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity_is_rtn_and_pack_roundtrip),
        cmocka_unit_test(test_matches_pytorch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
