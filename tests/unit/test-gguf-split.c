/* test-gguf-split.c — models split over several GGUF files (llama-gguf-split's layout,
 * NAME-0000K-of-0000N.gguf with split.no / split.count / split.tensors.count): opened from the
 * first part as one model, and each kind of broken split (a part missing, a part opened
 * directly, a renamed first part, counts that disagree, a tensor in two parts, a part that
 * claims another place) refused with one line naming the file. The parts of a real model made
 * by llama-gguf-split itself are read in test-arch (gemma2, llama31). */
#include "testutil.h"
#include <sys/stat.h>

#include "core/util/gguf.h"
#include "core/util/gguf_write.h"

static float data_a[64], data_b[32];
static char dir[512];

/* Write part no (0-based) of count as DIR/<stem>-0000K-of-0000N.gguf holding the named
 * tensors (a: 64 floats, b: 32). split_no / tensors_count < 0: that key left out. */
static void write_part(const char *stem, int no, int count, int split_no, int tensors_count, const char *tensors)
{
    for (int i = 0; i < 64; i++) data_a[i] = (float)i * 0.25f;
    for (int i = 0; i < 32; i++) data_b[i] = -(float)i;
    qb_gguf_writer *w = qb_gguf_writer_new();
    if (no == 0) {
        assert_true(qb_gguf_set_str(w, "general.architecture", "llama"));
        assert_true(qb_gguf_set_u32(w, "llama.block_count", 1));
    }
    if (split_no >= 0) assert_true(qb_gguf_set_u32(w, "split.no", (uint32_t)split_no));
    assert_true(qb_gguf_set_u32(w, "split.count", (uint32_t)count));
    if (tensors_count >= 0) assert_true(qb_gguf_set_i32(w, "split.tensors.count", tensors_count));
    int64_t ne_a[2] = {16, 4}, ne_b[1] = {32};
    for (const char *t = tensors; *t; t++) {
        if (*t == 'a') assert_true(qb_gguf_add_tensor(w, "a.weight", QB_TYPE_F32, 2, ne_a, data_a));
        if (*t == 'b') assert_true(qb_gguf_add_tensor(w, "b.weight", QB_TYPE_F32, 1, ne_b, data_b));
    }
    char path[600];
    snprintf(path, sizeof path, "%s/%s-%05d-of-%05d.gguf", dir, stem, no + 1, count);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    assert_int_equal(qb_gguf_write_file(&ctx, w, path, NULL), QB_OK);
    qb_gguf_writer_free(w);
}

static const char *part_path(const char *stem, int no, int count)
{
    static char path[600];
    snprintf(path, sizeof path, "%s/%s-%05d-of-%05d.gguf", dir, stem, no + 1, count);
    return path;
}

/* Opening path fails with want, and the message holds needle and names a file of the split. */
static void expect_refused(const char *path, qb_status want, const char *needle)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_gguf *g = (qb_gguf *)1;
    assert_int_equal(qb_gguf_open(&ctx, path, &g), want);
    assert_null(g);
    if (!strstr(ctx.errmsg, needle) || !strstr(ctx.errmsg, dir))
        fail_msg("'%s' lacks '%s' or the file name", ctx.errmsg, needle);
    assert_null(strchr(ctx.errmsg, '\n'));
}

static int setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/qbtest-split-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_joined(void **state)
{
    (void)state;
    write_part("m", 0, 2, 0, 2, "a");
    write_part("m", 1, 2, 1, 0, "b");
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_gguf *g;
    if (qb_gguf_open(&ctx, part_path("m", 0, 2), &g) != QB_OK) fail_msg("%s", ctx.errmsg);
    assert_int_equal(g->n_parts, 2);
    assert_int_equal(g->n_tensors, 2);
    const qb_gguf_tensor *a = qb_gguf_find_tensor(g, "a.weight"), *b = qb_gguf_find_tensor(g, "b.weight");
    assert_non_null(a);
    assert_non_null(b);
    assert_memory_equal(a->data, data_a, sizeof data_a);
    assert_memory_equal(b->data, data_b, sizeof data_b);
    assert_int_equal(qb_gguf_get_int(g, "llama.block_count", 0), 1);
    assert_null(qb_gguf_find(g, "split.count")); /* a file written from it is one file */
    assert_null(qb_gguf_find(g, "split.no"));
    qb_gguf_close(g);

    /* one part only (split.count 1) is an ordinary file */
    write_part("one", 0, 1, 0, 2, "ab");
    assert_int_equal(qb_gguf_open(&ctx, part_path("one", 0, 1), &g), QB_OK);
    assert_int_equal(g->n_parts, 1);
    assert_int_equal(g->n_tensors, 2);
    qb_gguf_close(g);
}

static void test_broken_splits(void **state)
{
    (void)state;
    /* the second part is missing */
    write_part("miss", 0, 2, 0, 2, "a");
    expect_refused(part_path("miss", 0, 2), QB_ERR_IO, "part 2 of 2");
    /* a later part opened directly */
    write_part("later", 0, 2, 0, 2, "a");
    write_part("later", 1, 2, 1, 0, "b");
    expect_refused(part_path("later", 1, 2), QB_ERR_ARG, "open the first part");
    /* the first part renamed: the others cannot be found */
    char renamed[700];
    snprintf(renamed, sizeof renamed, "%s/renamed.gguf", dir);
    assert_int_equal(rename(part_path("later", 0, 2), renamed), 0);
    expect_refused(renamed, QB_ERR_ARG, "cannot be found");
    /* split.tensors.count disagrees with the parts */
    write_part("count", 0, 2, 0, 3, "a");
    write_part("count", 1, 2, 1, 0, "b");
    expect_refused(part_path("count", 0, 2), QB_ERR_FORMAT, "split.tensors.count is 3");
    /* one tensor in two parts */
    write_part("dup", 0, 2, 0, 2, "a");
    write_part("dup", 1, 2, 1, 0, "a");
    expect_refused(part_path("dup", 0, 2), QB_ERR_FORMAT, "a.weight is in two parts");
    /* a part whose split.no says it is another part */
    write_part("place", 0, 3, 0, 3, "a");
    write_part("place", 1, 3, 2, 0, "b");
    write_part("place", 2, 3, 2, 0, "");
    expect_refused(part_path("place", 0, 3), QB_ERR_FORMAT, "named as part 2 of 3");
    /* keys out of range, or split.no missing */
    write_part("bad", 0, 2, 5, 2, "a");
    expect_refused(part_path("bad", 0, 2), QB_ERR_FORMAT, "bad split keys");
    write_part("nono", 0, 2, -1, 2, "a");
    expect_refused(part_path("nono", 0, 2), QB_ERR_FORMAT, "bad split keys");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_joined),
        cmocka_unit_test(test_broken_splits),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
