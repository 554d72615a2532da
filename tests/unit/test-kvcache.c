/* test-kvcache.c — the KV cache: f32 keeps the forward pass's logits bit for bit whatever the
 * thread count (per-thread attention scratch) and batch split; int8 logits stay close to
 * float and int4 further but still near, over enough positions that keys are quantized in
 * complete per-channel groups; rewinding into a quantized group gives the same logits as a
 * fresh run; memory figures; unknown type names are errors. */
#include "outlier_util.h"

#include "core/infer/kvcache.h"
#ifdef _OPENMP
#include <omp.h>
#endif

enum { N = 100 }; /* three complete key groups of 32 and a partial one */

static void test_f32_threads_and_batches(void **state)
{
    (void)state;
    qb_model *m = ou_open("stories260K/stories260K.bin");
    int32_t t[N];
    ou_tokens(m, t, N);
    size_t nb = sizeof(float) * N * m->cfg.vocab_size;
    float *a = ou_logits(m, t, N, N);
#ifdef _OPENMP
    int keep = omp_get_max_threads();
    omp_set_num_threads(keep > 1 ? 1 : 2);
#endif
    float *b = ou_logits(m, t, N, N);
#ifdef _OPENMP
    omp_set_num_threads(keep);
#endif
    assert_memory_equal(a, b, nb);
    float *c = ou_logits(m, t, N, 7);
    assert_true(ou_rel_maxdiff(a, c, (size_t)N * m->cfg.vocab_size) < 1e-5);
    free(a), free(b), free(c);
    qb_model_close(m);
}

static void check_quantized(const char *rel)
{
    qb_model *m = ou_open(rel);
    if (!m) return;
    int32_t t[N];
    ou_tokens(m, t, N);
    int V = m->cfg.vocab_size;
    float *ref = ou_logits(m, t, N, N);
    double d[3];
    qb_run_config *rc = ou_run(m);
    for (int ty = QB_KV_INT8; ty <= QB_KV_INT4; ty++) {
        rc->kv_type = ty;
        float *q = ou_logits_run(m, rc, t, N, N);
        float *q1 = ou_logits_run(m, rc, t, N, 1); /* token by token: the residual group path */
        d[ty] = ou_rel_maxdiff(ref, q, (size_t)N * V);
        double d1 = ou_rel_maxdiff(ref, q1, (size_t)N * V), agree = ou_top1(ref, q, N, V);
        fprintf(stderr, "%s KV %s: max logit diff %.2e of max (token by token %.2e), top-1 %.3f\n", rel,
                qb_kv_type_name(ty), d[ty], d1, agree);
        assert_true(d[ty] > 0); /* really quantized */
        assert_true(agree >= (ty == QB_KV_INT8 ? 0.97 : 0.7)); /* random tokens: flat distributions */
        assert_true(d1 < (ty == QB_KV_INT8 ? 0.02 : 0.2));
        free(q), free(q1);
    }
    assert_true(d[QB_KV_INT8] < 0.02);
    assert_true(d[QB_KV_INT8] < d[QB_KV_INT4]);
    qb_run_config_free(rc);
    free(ref);
    qb_model_close(m);
}

static void test_quantized_close_to_float(void **state)
{
    (void)state;
    check_quantized("stories260K/stories260K.bin");
    check_quantized("qb-docs-26m/qb-docs-26m-f16.gguf");
}

static void test_rewind(void **state)
{
    (void)state;
    qb_model *m = ou_open("stories260K/stories260K.bin");
    qb_run_config *rc = ou_run(m);
    rc->kv_type = QB_KV_INT8;
    int32_t t[N];
    ou_tokens(m, t, N);
    int V = m->cfg.vocab_size;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_infer *s = NULL;
    assert_int_equal(qb_infer_new_run(&ctx, m, rc, N, N, &s), QB_OK);
    float *a = malloc(sizeof(float) * V), *b = malloc(sizeof(float) * V);
    assert_int_equal(qb_infer_eval(&ctx, s, t, N, 0, a, 1), QB_OK);
    /* back to position 40 (inside the second key group, already quantized), same tokens */
    assert_int_equal(qb_infer_eval(&ctx, s, t + 40, N - 40, 40, b, 1), QB_OK);
    assert_true(ou_rel_maxdiff(a, b, (size_t)V) < 5e-3);
    free(a), free(b);
    qb_infer_free(s);
    qb_run_config_free(rc);
    qb_model_close(m);
}

static void test_memory_and_names(void **state)
{
    (void)state;
    qb_config c = {.n_layers = 32, .n_kv_heads = 8, .head_dim = 128, .dim = 4096}; /* a Llama-3-8B-like cache */
    size_t f32 = qb_kv_bytes(&c, 8192, QB_KV_F32), i8 = qb_kv_bytes(&c, 8192, QB_KV_INT8);
    size_t i4 = qb_kv_bytes(&c, 8192, QB_KV_INT4), f16 = qb_kv_bytes_f16(&c, 8192);
    assert_int_equal(f32, (size_t)2 * 32 * 8192 * 1024 * 4);
    assert_int_equal(f16 * 2, f32);
    assert_true(i8 < f16 * 0.65 && i8 > f16 / 2);
    assert_true(i4 < f16 * 0.4 && i4 > f16 / 4);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int ty = -1;
    assert_int_equal(qb_kv_type_parse(&ctx, "int4", &ty), QB_OK);
    assert_int_equal(ty, QB_KV_INT4);
    assert_int_equal(qb_kv_type_parse(&ctx, "int3", &ty), QB_ERR_ARG);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "int3"));
    qb_kvcache *kv = NULL;
    assert_int_equal(qb_kvcache_new(&ctx, &c, 16, 7, &kv), QB_ERR_ARG);
    assert_null(kv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f32_threads_and_batches),
        cmocka_unit_test(test_quantized_close_to_float),
        cmocka_unit_test(test_rewind),
        cmocka_unit_test(test_memory_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
