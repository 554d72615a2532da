/* test-dist.c — the one-rank side of core/util/dist.h, which every engine calls whether or not
 * MPI is built in: one rank owns every item, merging and the same-file check pass the caller's
 * status through untouched, qb_dist_finish returns the caller's exit status, and "alone" scopes
 * nest. The MPI side (two ranks under mpirun) is tests/cli/test-mpi.sh. */
#include "testutil.h"

#include "core/util/dist.h"

static void test_one_rank(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int argc = 1;
    char *args[] = {"test-dist", NULL}, **argv = args;
    assert_true(qb_dist_init(&ctx, &argc, &argv)); /* no launcher in the environment: one rank */
    assert_int_equal(qb_dist_rank(), 0);
    assert_int_equal(qb_dist_size(), 1);
    for (int i = 0; i < 10; i++) assert_true(qb_dist_owns(i));
    assert_int_equal(qb_dist_share(7, 0), 7);
    assert_int_equal(qb_dist_share(7, 1), 0);
    assert_int_equal(qb_dist_share(0, 0), 0);
    double items[3] = {1, 2, 3};
    assert_int_equal(qb_dist_merge(&ctx, QB_OK, items, sizeof *items, 3), QB_OK);
    assert_true(items[0] == 1 && items[1] == 2 && items[2] == 3);
    qb_fail(&ctx, QB_ERR_IO, "mine");
    assert_int_equal(qb_dist_merge(&ctx, QB_ERR_IO, items, sizeof *items, 3), QB_ERR_IO);
    assert_string_equal(qb_ctx_errmsg(&ctx), "mine");
    /* one rank reads nothing: even a missing path passes */
    assert_int_equal(qb_dist_same_file(&ctx, QB_OK, "/nonexistent/model.gguf"), QB_OK);
    assert_int_equal(qb_dist_same_file(&ctx, QB_ERR_ARG, "/nonexistent/model.gguf"), QB_ERR_ARG);
    qb_dist_alone_begin();
    qb_dist_alone_begin();
    assert_int_equal(qb_dist_size(), 1);
    qb_dist_alone_end();
    qb_dist_alone_end();
    qb_dist_alone_end(); /* one end too many is harmless */
    assert_int_equal(qb_dist_size(), 1);
    int from = 7;
    assert_int_equal(qb_dist_finish(&ctx, 0, NULL, &from), 0);
    assert_int_equal(from, -1);
    assert_int_equal(qb_dist_finish(&ctx, 130, "cancelled", &from), 130);
    assert_int_equal(from, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_rank),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
