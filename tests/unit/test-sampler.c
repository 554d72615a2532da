/* test-sampler.c — sampling: greedy is argmax, seeds repeat, top-k / top-p restrict the
 * candidates, temperature sampling follows the softmax; generation stops at EOS and on cancel. */
#include "testutil.h"
#include <math.h>

#include "core/infer/sampler.h"
#include "core/infer/generate.h"
#include "core/model/model.h"
#include "core/tokenizer/tokenizer.h"

static qb_sampler *make(float temp, int top_k, float top_p, uint64_t seed)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_sampler_params p = {temp, top_k, top_p, seed};
    qb_sampler *s;
    assert_int_equal(qb_sampler_new(&ctx, 5, &p, &s), QB_OK);
    return s;
}

static void test_greedy_and_filters(void **state)
{
    (void)state;
    float base[5] = {0.1f, 2.0f, 1.9f, -1.0f, 0.5f};
    float l[5];
    qb_sampler *s = make(0, 0, 1, 1);
    memcpy(l, base, sizeof l);
    assert_int_equal(qb_sampler_sample(s, l), 1);
    qb_sampler_free(s);
    s = make(1.0f, 1, 1, 7); /* top-k 1 is greedy whatever the seed */
    for (int i = 0; i < 50; i++) {
        memcpy(l, base, sizeof l);
        assert_int_equal(qb_sampler_sample(s, l), 1);
    }
    qb_sampler_free(s);
    s = make(1.0f, 2, 1, 3); /* top-k 2: only ids 1 and 2 */
    for (int i = 0; i < 200; i++) {
        memcpy(l, base, sizeof l);
        int id = qb_sampler_sample(s, l);
        assert_true(id == 1 || id == 2);
    }
    qb_sampler_free(s);
    s = make(1.0f, 0, 0.3f, 3); /* p(1) ≈ 0.42 > 0.3: nucleus is {1} */
    for (int i = 0; i < 100; i++) {
        memcpy(l, base, sizeof l);
        assert_int_equal(qb_sampler_sample(s, l), 1);
    }
    qb_sampler_free(s);
}

static void test_seed_and_distribution(void **state)
{
    (void)state;
    float base[5] = {0.1f, 2.0f, 1.9f, -1.0f, 0.5f};
    int a[300], b[300], counts[5] = {0};
    qb_sampler *s1 = make(1.0f, 0, 1, 42), *s2 = make(1.0f, 0, 1, 42);
    for (int i = 0; i < 300; i++) {
        float l[5];
        memcpy(l, base, sizeof l);
        a[i] = qb_sampler_sample(s1, l);
        memcpy(l, base, sizeof l);
        b[i] = qb_sampler_sample(s2, l);
    }
    assert_memory_equal(a, b, sizeof a);
    qb_sampler_free(s1);
    qb_sampler_free(s2);
    qb_sampler *s = make(1.0f, 0, 1, 9);
    int n = 20000;
    for (int i = 0; i < n; i++) {
        float l[5];
        memcpy(l, base, sizeof l);
        counts[qb_sampler_sample(s, l)]++;
    }
    qb_sampler_free(s);
    double z = 0;
    for (int i = 0; i < 5; i++) z += exp(base[i]);
    for (int i = 0; i < 5; i++) {
        double p = exp(base[i]) / z, f = (double)counts[i] / n;
        if (fabs(f - p) > 0.015) fail_msg("id %d: frequency %.4f vs softmax %.4f", i, f, p);
    }
}

static void test_bad_params(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_sampler *s;
    qb_sampler_params p = {-1, 0, 1, 1};
    assert_int_equal(qb_sampler_new(&ctx, 5, &p, &s), QB_ERR_ARG);
    p = (qb_sampler_params){1, 0, 0, 1};
    assert_int_equal(qb_sampler_new(&ctx, 5, &p, &s), QB_ERR_ARG);
}

typedef struct {
    int calls, stop_after;
} counter;

static bool count_tokens(void *ud, int32_t prev, int32_t id)
{
    (void)prev;
    (void)id;
    counter *c = ud;
    return ++c->calls < c->stop_after;
}

static void test_generate(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m;
    assert_int_equal(qb_model_open(&ctx, qbt_model_path("stories260K/stories260K.bin"), NULL, &m), QB_OK);
    int32_t prompt[5] = {1, 403, 407, 261, 378};
    qb_generate_opts o;
    qb_generate_defaults(&o);
    o.n_predict = 400;
    qb_generate_result r;
    assert_int_equal(qb_generate(&ctx, m, prompt, 5, &o, &r), QB_OK);
    /* the story ends (the model emits BOS to start the next one, where run.c stops too) after
     * llama2.c's 96-token reference text and before 400 tokens */
    print_message("generated %d tokens, hit_eos=%d\n", r.n_generated, r.hit_eos);
    assert_true(r.n_generated > 96 && r.n_generated < 400);
    assert_true(r.hit_eos);
    for (int i = 0; i < r.n_generated; i++) {
        assert_int_not_equal(r.ids[i], qb_tokenizer_eos(m->tok));
        assert_int_not_equal(r.ids[i], qb_tokenizer_bos(m->tok));
    }
    free(r.ids);
    counter c = {0, 10};
    o.on_token = count_tokens;
    o.ud = &c;
    assert_int_equal(qb_generate(&ctx, m, prompt, 5, &o, &r), QB_OK);
    assert_int_equal(r.n_generated, 10);
    free(r.ids);
    volatile int cancel = 1;
    o.on_token = NULL;
    o.cancel = &cancel;
    assert_int_equal(qb_generate(&ctx, m, prompt, 5, &o, &r), QB_ERR_CANCELLED);
    free(r.ids);
    assert_int_equal(qb_generate(&ctx, m, prompt, 0, &o, &r), QB_ERR_ARG);
    qb_model_close(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_and_filters), cmocka_unit_test(test_seed_and_distribution),
        cmocka_unit_test(test_bad_params), cmocka_unit_test(test_generate),
    };
    return cmocka_run_group_tests_name("sampler", tests, NULL, NULL);
}
