/* test-jobs.c — core/jobs: a job runs on its own thread, reports progress, posts messages in
 * order followed by its DONE message carrying the status and error; cancel stops a job that
 * polls the flag (also inside a real core call); the queue grows past its first capacity and
 * frees what is left in it. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/jobs/job.h"
#include "core/quant/format.h"

static qb_msg wait_msg(qb_msg_queue *q)
{
    qb_msg m;
    for (int i = 0; i < 20000; i++) {
        if (qb_msg_queue_pop(q, &m)) return m;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    fail_msg("no message within 20 s");
    return m;
}

static qb_status counting(qb_job *j, qb_ctx *ctx, void *arg)
{
    int n = *(int *)arg;
    for (int i = 0; i < n; i++) {
        qb_msg m = {.tag = QB_MSG_USER, .i0 = i, .text = strdup("tick")};
        assert_true(qb_job_post(j, &m));
        qb_job_progress(j, i + 1, n);
    }
    if (n == 3) return qb_fail(ctx, QB_ERR_FORMAT, "three is a bad number");
    return QB_OK;
}

static void test_messages_and_status(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_msg_queue *q;
    assert_int_equal(qb_msg_queue_new(&ctx, &q), QB_OK);
    int n = 200; /* more than the queue's first capacity */
    qb_job *j;
    assert_int_equal(qb_job_start(&ctx, q, 7, "count", counting, &n, NULL, &j), QB_OK);
    assert_string_equal(qb_job_name(j), "count");
    for (int i = 0; i < n; i++) {
        qb_msg m = wait_msg(q);
        assert_int_equal(m.job_id, 7);
        assert_int_equal(m.tag, QB_MSG_USER);
        assert_int_equal(m.i0, i);
        assert_string_equal(m.text, "tick");
        qb_msg_free(&m);
    }
    qb_msg done = wait_msg(q);
    assert_int_equal(done.tag, QB_MSG_DONE);
    assert_int_equal(done.i0, QB_OK);
    assert_null(done.text);
    assert_true(qb_job_finished(j));
    int d, t;
    qb_job_get_progress(j, &d, &t);
    assert_int_equal(d, n);
    assert_int_equal(t, n);
    char err[128];
    assert_int_equal(qb_job_join(j, err, sizeof err), QB_OK);
    assert_string_equal(err, "");

    n = 3;
    assert_int_equal(qb_job_start(&ctx, q, 8, "bad", counting, &n, NULL, &j), QB_OK);
    for (;;) {
        qb_msg m = wait_msg(q);
        int tag = m.tag;
        if (tag == QB_MSG_DONE) {
            assert_int_equal(m.i0, QB_ERR_FORMAT);
            assert_string_equal(m.text, "three is a bad number");
        }
        qb_msg_free(&m);
        if (tag == QB_MSG_DONE) break;
    }
    assert_int_equal(qb_job_join(j, err, sizeof err), QB_ERR_FORMAT);
    assert_string_equal(err, "three is a bad number");
    /* messages left in the queue are freed with it (ASan/valgrind would see a leak) */
    qb_msg m = {.tag = QB_MSG_USER, .text = strdup("left"), .data = malloc(16), .free_data = free};
    assert_true(qb_msg_queue_post(q, &m));
    qb_msg_queue_free(q);
}

static qb_status spin(qb_job *j, qb_ctx *ctx, void *arg)
{
    (void)arg;
    while (!qb_job_cancelled(j)) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return qb_fail(ctx, QB_ERR_CANCELLED, "stopped");
}

typedef struct {
    float *x;
    int64_t rows, n;
    void *dst;
} quant_arg;

static qb_status quantize_big(qb_job *j, qb_ctx *ctx, void *arg)
{
    quant_arg *a = arg;
    qb_format f;
    qb_format_parse(ctx, "q4_k", &f);
    /* many passes, so the cancel lands inside a core call */
    for (int k = 0; k < 1000; k++) {
        qb_status st = qb_quantize_matrix(ctx, &f, a->x, a->rows, a->n, a->dst, qb_job_cancel_flag(j));
        if (st != QB_OK) return st;
    }
    return QB_OK;
}

static void test_cancel(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_msg_queue *q;
    assert_int_equal(qb_msg_queue_new(&ctx, &q), QB_OK);
    qb_job *j;
    assert_int_equal(qb_job_start(&ctx, q, 1, "spin", spin, NULL, NULL, &j), QB_OK);
    assert_false(qb_job_cancelled(j));
    qb_job_cancel(j);
    qb_msg m = wait_msg(q);
    assert_int_equal(m.tag, QB_MSG_DONE);
    assert_int_equal(m.i0, QB_ERR_CANCELLED);
    qb_msg_free(&m);
    assert_int_equal(qb_job_join(j, NULL, 0), QB_ERR_CANCELLED);

    quant_arg *a = calloc(1, sizeof *a);
    a->rows = 512, a->n = 1024;
    a->x = malloc((size_t)(a->rows * a->n) * sizeof(float));
    for (int64_t i = 0; i < a->rows * a->n; i++) a->x[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    a->dst = malloc((size_t)(a->rows * a->n)); /* q4_k needs less than a byte a weight */
    assert_int_equal(qb_job_start(&ctx, q, 2, "quantize", quantize_big, a, NULL, &j), QB_OK);
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, NULL);
    qb_job_cancel(j);
    m = wait_msg(q);
    assert_int_equal(m.tag, QB_MSG_DONE);
    assert_int_equal(m.i0, QB_ERR_CANCELLED);
    qb_msg_free(&m);
    assert_true(qb_job_elapsed(j) < 15.0);
    assert_int_equal(qb_job_join(j, NULL, 0), QB_ERR_CANCELLED);
    free(a->x);
    free(a->dst);
    free(a);
    qb_msg_queue_free(q);
}

static void free_counter(void *p) { ++*(int *)p; }

static qb_status noop(qb_job *j, qb_ctx *ctx, void *arg)
{
    (void)j, (void)ctx, (void)arg;
    return QB_OK;
}

static void test_free_arg_and_null_join(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_msg_queue *q;
    assert_int_equal(qb_msg_queue_new(&ctx, &q), QB_OK);
    int freed = 0;
    qb_job *j;
    assert_int_equal(qb_job_start(&ctx, q, 3, "noop", noop, &freed, free_counter, &j), QB_OK);
    assert_int_equal(qb_job_join(j, NULL, 0), QB_OK); /* join waits even before DONE is read */
    assert_int_equal(freed, 1);
    assert_int_equal(qb_job_join(NULL, NULL, 0), QB_OK);
    qb_msg_queue_free(q); /* the DONE message is still queued: freed here */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_messages_and_status),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_free_arg_and_null_join),
    };
    return cmocka_run_group_tests_name("jobs", tests, NULL, NULL);
}
