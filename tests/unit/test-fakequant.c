/* test-fakequant.c — learnable quantization for learned rounding:
 * INT formats (core/method/fakequant.h):
 * - with v = 0, α = β = 1 it gives the format's round-to-nearest values, bit for bit;
 * - its packed bytes dequantize to exactly the values its forward gives (any v, α, β);
 * - forward values and straight-through gradients (dv, dα, dβ) equal PyTorch autograd's for
 *   five INT formats (tests/fixtures/train/fakequant, scripts/make-train-fixtures.py):
 *   values bit for bit, gradients within 1e-5 relative;
 * - formats it cannot learn (ggml types, per-tensor scales) are refused.
 * ggml k-quants Q2_K..Q6_K (core/method/fakequant_kquant.h):
 * - with v = 0, φ = ψ = 1 the packed bytes are the format's own quantization (plain and with
 *   an importance, llama-quantize --imatrix's), and the forward gives their values;
 * - for any v, φ, ψ the packed bytes dequantize (the ggml-identical reference dequantizer and
 *   the dispatched one) to exactly the forward's values, zero and quiet sub-blocks included;
 * - forward values and gradients (dv, dφ, dψ) equal PyTorch autograd's
 *   (tests/fixtures/train/fakequant-kquant, starting from ggml_quantize_chunk's own bytes,
 *   which our start must equal): values bit for bit, gradients within 1e-5 relative;
 * - other formats and row lengths are refused. */
#include "testutil.h"
#include "core/method/fakequant.h"
#include "core/method/fakequant_kquant.h"
#include "kernels.h"

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

/* rows of n: random values with an outlier, an all-zero sub-block, a quiet sub-block and
 * (Q6_K's own path) an all-zero super-block */
static void kquant_matrix(float *w, int64_t rows, int64_t n, uint32_t *s)
{
    fill(w, (size_t)(rows * n), s, -0.1f, 0.1f);
    w[3] = 0.9f;
    w[n + 7] = -0.7f;
    for (int i = 32; i < 48; i++) w[n + i] = 0.0f;
    for (int i = 64; i < 96; i++) w[2 * n + i] *= 1e-3f;
    for (int i = 256; i < 512; i++) w[3 * n + i] = 0.0f;
}

static void test_kquant_identity_and_pack(void **state)
{
    (void)state;
    const char *fmts[] = {"q2_k", "q3_k", "q4_k", "q5_k", "q6_k"};
    const int64_t rows = 4, n = 512;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    uint32_t s = 11;
    float *w = malloc(sizeof(float) * rows * n), *imp = malloc(sizeof(float) * n);
    float *v = malloc(sizeof(float) * rows * n), *a = malloc(sizeof(float) * rows * n);
    float *b = malloc(sizeof(float) * rows * n), *c = malloc(sizeof(float) * rows * n);
    kquant_matrix(w, rows, n, &s);
    fill(imp, (size_t)n, &s, 0.01f, 2.0f);
    imp[9] = 50.0f;
    for (size_t k = 0; k < sizeof fmts / sizeof *fmts; k++) {
        qb_format f;
        assert_int_equal(qb_format_parse(&ctx, fmts[k], &f), QB_OK);
        const size_t rb = qb_format_row_bytes(&f, n);
        uint8_t *own = malloc(rb * rows), *ours = malloc(rb * rows);
        for (int weighted = 0; weighted < 2; weighted++) {
            const float *im = weighted ? imp : NULL;
            qb_fqk *q;
            assert_int_equal(qb_fqk_new(&ctx, &f, w, rows, n, im, &q), QB_OK);
            const int64_t ns = qb_fqk_subblocks(q);
            assert_int_equal(ns, rows * n / (f.type == QB_TYPE_Q4_K || f.type == QB_TYPE_Q5_K ? 32 : 16));
            float *phi = malloc(sizeof(float) * ns), *psi = malloc(sizeof(float) * ns);
            for (int64_t i = 0; i < ns; i++) phi[i] = psi[i] = 1.0f;
            memset(v, 0, sizeof(float) * rows * n);
            /* identity: the format's own bytes and their values */
            assert_int_equal(qb_quantize_matrix_w(&ctx, &f, w, rows, n, own, im, NULL), QB_OK);
            qb_fqk_pack(q, v, phi, psi, ours);
            assert_memory_equal(ours, own, rb * rows);
            qb_fqk_forward(q, v, phi, psi, a);
            for (int64_t r = 0; r < rows; r++) qb_dequantize_row(&f, own + rb * r, b + r * n, n);
            assert_memory_equal(a, b, sizeof(float) * rows * n);
            /* any offsets and factors (past the clamps too): packed = forward */
            fill(v, (size_t)(rows * n), &s, -0.5f, 0.5f);
            fill(phi, (size_t)ns, &s, 0.4f, 1.6f);
            fill(psi, (size_t)ns, &s, 0.4f, 1.6f);
            qb_fqk_forward(q, v, phi, psi, a);
            qb_fqk_pack(q, v, phi, psi, ours);
            assert_memory_not_equal(ours, own, rb * rows);
            for (int64_t r = 0; r < rows; r++) {
                qb_dequantize_row(&f, ours + rb * r, b + r * n, n);
                assert_true(qb_dequant_row_ref(f.type, ours + rb * r, c + r * n, n));
            }
            assert_memory_equal(a, b, sizeof(float) * rows * n);
            assert_memory_equal(a, c, sizeof(float) * rows * n);
            /* the offsets and factors did change values (the test above compared something) */
            size_t moved = 0;
            for (int64_t r = 0; r < rows; r++) qb_dequantize_row(&f, own + rb * r, c + r * n, n);
            for (int64_t i = 0; i < rows * n; i++) moved += a[i] != c[i];
            assert_true(moved > (size_t)(rows * n / 20));
            print_message("%s%s: identity = the format's bytes; packed = forward for random v, phi, psi (%zu of %lld "
                          "values moved, %lld sub-blocks)\n", fmts[k], weighted ? " (imatrix)" : "", moved,
                          (long long)(rows * n), (long long)ns);
            free(phi), free(psi);
            qb_fqk_free(q);
        }
        free(own), free(ours);
    }
    /* refused: other formats, rows not of whole super-blocks */
    const char *no[] = {"q4_0", "int4-g128", "iq4_xs", "q8_0"};
    for (int k = 0; k < 4; k++) {
        qb_format f;
        assert_int_equal(qb_format_parse(&ctx, no[k], &f), QB_OK);
        assert_false(qb_fqk_supports(&f, n));
        qb_fqk *q = (qb_fqk *)&ctx;
        assert_int_equal(qb_fqk_new(&ctx, &f, w, rows, n, NULL, &q), QB_ERR_UNSUPPORTED);
        assert_null(q);
    }
    qb_format f;
    assert_int_equal(qb_format_parse(&ctx, "q3_k", &f), QB_OK);
    assert_false(qb_fqk_supports(&f, 384));
    qb_fqk *q;
    assert_int_equal(qb_fqk_new(&ctx, &f, w, 1, 384, NULL, &q), QB_ERR_UNSUPPORTED);
    assert_non_null(strstr(ctx.errmsg, "q3_k"));
    free(w), free(imp), free(v), free(a), free(b), free(c);
}

static void test_kquant_matches_pytorch(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *ix = json_load_file("tests/fixtures/train/fakequant-kquant/index.json", 0, &jerr);
    if (!ix) fail_msg("tests/fixtures/train/fakequant-kquant/index.json: %s", jerr.text);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(ix, "formats"), i, e) {
        const char *name = json_string_value(json_object_get(e, "name"));
        const int64_t rows = json_integer_value(json_object_get(e, "rows")), n = json_integer_value(json_object_get(e, "n"));
        const int64_t ns = json_integer_value(json_object_get(e, "subblocks"));
        qb_format f;
        assert_int_equal(qb_format_parse(&ctx, name, &f), QB_OK);
        char path[256];
        snprintf(path, sizeof path, "tests/fixtures/train/fakequant-kquant/%s.f32", name);
        size_t len, glen;
        float *blob = (float *)qbt_slurp(path, &len);
        snprintf(path, sizeof path, "tests/fixtures/train/fakequant-kquant/%s.ggml", name);
        uint8_t *ggml = (uint8_t *)qbt_slurp(path, &glen);
        const size_t rn = (size_t)(rows * n);
        assert_int_equal(len, sizeof(float) * (5 * rn + 4 * (size_t)ns));
        assert_int_equal(glen, qb_format_row_bytes(&f, n) * (size_t)rows);
        const float *w = blob, *v = w + rn, *phi = v + rn, *psi = phi + ns, *r = psi + ns, *wq_ref = r + rn;
        const float *dv_ref = wq_ref + rn, *dphi_ref = dv_ref + rn, *dpsi_ref = dphi_ref + ns;
        qb_fqk *q;
        assert_int_equal(qb_fqk_new(&ctx, &f, w, rows, n, NULL, &q), QB_OK);
        assert_int_equal(qb_fqk_subblocks(q), ns);
        /* the start is ggml's own quantization */
        float *ones = malloc(sizeof(float) * ns), *zero = calloc(rn, sizeof(float));
        uint8_t *bytes = malloc(glen);
        for (int64_t k = 0; k < ns; k++) ones[k] = 1.0f;
        qb_fqk_pack(q, zero, ones, ones, bytes);
        assert_memory_equal(bytes, ggml, glen);
        float *wq = malloc(sizeof(float) * rn), *dv = calloc(rn, sizeof(float));
        float *dphi = calloc((size_t)ns, sizeof(float)), *dpsi = calloc((size_t)ns, sizeof(float));
        qb_fqk_forward(q, v, phi, psi, wq);
        assert_memory_equal(wq, wq_ref, sizeof(float) * rn);
        qb_fqk_backward(q, v, phi, psi, r, dv, dphi, dpsi);
        const double ev = rel_err(dv, dv_ref, rn), ep = rel_err(dphi, dphi_ref, (size_t)ns);
        const double em = rel_err(dpsi, dpsi_ref, (size_t)ns);
        print_message("%-5s start = ggml's bytes; values equal PyTorch's; gradients dv %.1e  dphi %.1e  dpsi %.1e%s\n",
                      name, ev, ep, em, qb_fqk_has_mins(q) ? "" : " (no mins)");
        if (!(ev < 1e-5 && ep < 1e-5 && em < 1e-5)) fail_msg("%s: gradients differ from PyTorch autograd's", name);
        /* something to compare: gradients are not all zero */
        assert_true(rel_err(dv, zero, rn) > 0 && rel_err(dphi, zero, (size_t)ns) > 0);
        free(wq), free(dv), free(dphi), free(dpsi), free(blob), free(ggml), free(ones), free(zero), free(bytes);
        qb_fqk_free(q);
    }
    assert_true(i >= 5);
    json_decref(ix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity_is_rtn_and_pack_roundtrip),
        cmocka_unit_test(test_matches_pytorch),
        cmocka_unit_test(test_kquant_identity_and_pack),
        cmocka_unit_test(test_kquant_matches_pytorch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
