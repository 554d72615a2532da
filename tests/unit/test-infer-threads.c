/* test-infer-threads.c — one model, two forward passes at once: two pthreads each evaluate
 * their own token sequence through their own qb_infer over the same qb_model, sharing one
 * run configuration with LLM.int8() activations (so the outlier counters are bumped from both
 * threads) and an int8 KV cache, and each must get exactly the logits a single-threaded run
 * gives; the counters must then hold the sum of both runs. The model is only read during a
 * forward pass: no run state lives in it. Part of `make tsan` (TSAN_TESTS), where
 * ThreadSanitizer checks that nothing the two passes share is written unsynchronised. */
#include "outlier_util.h"

#include <pthread.h>

#include "core/infer/kvcache.h"
#include "core/method/llm_int8.h"

enum { N = 24, ROUNDS = 3 };

typedef struct {
    qb_model *m;
    qb_run_config *rc;
    const int32_t *tokens;
    float *logits;            /* (N, vocab): the last round's */
    pthread_barrier_t *start;
    qb_status st;
    char err[256];
} pass_arg;

/* Evaluate the tokens ROUNDS times in batches of 8, keeping the last round's logits. No
 * cmocka asserts here: they may not run off the main thread. */
static void *pass(void *p)
{
    pass_arg *a = p;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int V = a->m->cfg.vocab_size;
    qb_infer *s = NULL;
    a->st = qb_infer_new_run(&ctx, a->m, a->rc, N, 8, &s);
    if (a->start) pthread_barrier_wait(a->start);
    for (int r = 0; r < ROUNDS && a->st == QB_OK; r++)
        for (int pos = 0; pos < N && a->st == QB_OK; pos += 8)
            a->st = qb_infer_eval(&ctx, s, a->tokens + pos, 8, pos, a->logits + (size_t)pos * V, 8);
    if (a->st != QB_OK) snprintf(a->err, sizeof a->err, "%s", qb_ctx_errmsg(&ctx));
    qb_infer_free(s);
    return NULL;
}

/* Columns seen by every matrix of the config, summed. */
static int64_t seen_total(const qb_run_config *rc)
{
    int64_t n = 0;
    for (int i = 0; i < rc->n_tensors; i++) n += qb_run_config_counts(rc, i).seen;
    return n;
}

static void run_pass(pass_arg *a)
{
    pass(a);
    if (a->st != QB_OK) fail_msg("single-threaded pass: %s", a->err);
}

static void test_two_passes_one_model(void **state)
{
    (void)state;
    qb_model *m = ou_open("stories260K/stories260K.bin");
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_run_config *rc = ou_run(m);
    /* a low threshold, so stories260K's activations have outlier columns at every point */
    assert_int_equal(qb_llm_int8_apply(&ctx, m, rc, 1.0f), QB_OK);
    rc->kv_type = QB_KV_INT8;
    int V = m->cfg.vocab_size;
    int32_t t[2][N];
    ou_tokens(m, t[0], N);
    for (int i = 0; i < N; i++) t[1][i] = i == 0 ? 1 : (t[0][N - i] + 7 * i) % V;
    float *ref[2], *got[2];
    pass_arg a[2];
    for (int k = 0; k < 2; k++) {
        ref[k] = malloc(sizeof(float) * N * V);
        got[k] = malloc(sizeof(float) * N * V);
        assert_non_null(ref[k]);
        assert_non_null(got[k]);
        a[k] = (pass_arg){.m = m, .rc = rc, .tokens = t[k], .logits = ref[k]};
        run_pass(&a[k]); /* the references, one after the other */
    }
    int64_t seen_single = seen_total(rc);
    assert_true(seen_single > 0);
    double fr[4];
    qb_llm_int8_fractions(rc, m, 0, fr);
    assert_true(fr[0] > 0 && fr[0] < 1); /* the outlier path really ran */
    qb_run_config_reset_counts(rc);

    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    pthread_t th[2];
    for (int k = 0; k < 2; k++) {
        a[k] = (pass_arg){.m = m, .rc = rc, .tokens = t[k], .logits = got[k], .start = &start};
        assert_int_equal(pthread_create(&th[k], NULL, pass, &a[k]), 0);
    }
    for (int k = 0; k < 2; k++) assert_int_equal(pthread_join(th[k], NULL), 0);
    pthread_barrier_destroy(&start);
    for (int k = 0; k < 2; k++) {
        if (a[k].st != QB_OK) fail_msg("thread %d: %s", k, a[k].err);
        assert_memory_equal(ref[k], got[k], sizeof(float) * N * V);
    }
    /* both threads' counts arrived, none lost to a race */
    assert_true(seen_total(rc) == seen_single);
    for (int k = 0; k < 2; k++) free(ref[k]), free(got[k]);
    qb_run_config_free(rc);
    qb_model_close(m);
}

/* A configuration changes the runs made with it, never the model: a run state made without one
 * afterwards gives the float model's logits again. */
static void test_config_is_not_in_the_model(void **state)
{
    (void)state;
    qb_model *m = ou_open("stories260K/stories260K.bin");
    int32_t t[N];
    ou_tokens(m, t, N);
    int V = m->cfg.vocab_size;
    qb_run_config *rc = ou_run(m);
    float *f = ou_logits(m, t, N, N);
    rc->kv_type = QB_KV_INT4;
    float *q = ou_logits_run(m, rc, t, N, N);
    float *f2 = ou_logits(m, t, N, N);
    assert_true(ou_rel_maxdiff(f, q, (size_t)N * V) > 0); /* the config changed the run ... */
    assert_memory_equal(f, f2, sizeof(float) * N * V); /* ... and not the model */
    free(f), free(q), free(f2);
    qb_run_config_free(rc);
    qb_model_close(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_passes_one_model),
        cmocka_unit_test(test_config_is_not_in_the_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
