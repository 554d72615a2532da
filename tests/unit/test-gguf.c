/* test-gguf.c — the GGUF reader and writer: round trip, the real fixture files, and every
 * kind of malformed file (truncated at every offset, bad magic, unsupported version, absurd
 * counts and dims, unknown types, misaligned / overlapping / out-of-file tensor data), each
 * giving a clear error; atomic writes (unwritable path, cancelled write leave files as they were). */
#include "testutil.h"
#include <math.h>
#include <sys/stat.h>

#include "core/util/gguf.h"
#include "core/util/gguf_write.h"

static float data_a[64], data_b[32];

static void *build(size_t *len)
{
    qb_gguf_writer *w = qb_gguf_writer_new();
    assert_non_null(w);
    for (int i = 0; i < 64; i++) data_a[i] = (float)i * 0.5f;
    for (int i = 0; i < 32; i++) data_b[i] = -(float)i;
    assert_true(qb_gguf_set_str(w, "general.architecture", "llama"));
    assert_true(qb_gguf_set_u32(w, "llama.block_count", 6));
    assert_true(qb_gguf_set_f32(w, "llama.rope.freq_base", 10000.0f));
    assert_true(qb_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", true));
    const char *toks[] = {"a", "bb", "ccc"};
    assert_true(qb_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, 3));
    float scores[3] = {1, 2, 3};
    assert_true(qb_gguf_set_arr(w, "tokenizer.ggml.scores", QB_GGUF_FLOAT32, scores, 3));
    int64_t ne_a[2] = {16, 4}, ne_b[1] = {32};
    assert_true(qb_gguf_add_tensor(w, "a.weight", QB_TYPE_F32, 2, ne_a, data_a));
    assert_true(qb_gguf_add_tensor(w, "b.weight", QB_TYPE_F32, 1, ne_b, data_b));
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    void *buf;
    assert_int_equal(qb_gguf_write_memory(&ctx, w, &buf, len), QB_OK);
    qb_gguf_writer_free(w);
    return buf;
}

static void test_roundtrip(void **state)
{
    (void)state;
    size_t len;
    void *buf = build(&len);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_gguf *g;
    assert_int_equal(qb_gguf_open_memory(&ctx, "mem", buf, len, &g), QB_OK);
    assert_int_equal(g->version, 3);
    assert_string_equal(qb_gguf_get_str(g, "general.architecture"), "llama");
    assert_int_equal(qb_gguf_get_int(g, "llama.block_count", -1), 6);
    assert_true(qb_gguf_get_float(g, "llama.rope.freq_base", 0) == 10000.0);
    assert_true(qb_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", false));
    const qb_gguf_kv *kv = qb_gguf_find(g, "tokenizer.ggml.tokens");
    assert_non_null(kv);
    assert_int_equal(kv->arr_n, 3);
    assert_int_equal(kv->arr_str[2].len, 3);
    assert_memory_equal(kv->arr_str[1].ptr, "bb", 2);
    kv = qb_gguf_find(g, "tokenizer.ggml.scores");
    assert_true(qb_gguf_arr_float(kv, 2) == 3.0);
    const qb_gguf_tensor *t = qb_gguf_find_tensor(g, "a.weight");
    assert_non_null(t);
    assert_int_equal(t->ne[0], 16);
    assert_int_equal(t->ne[1], 4);
    assert_memory_equal(t->data, data_a, sizeof data_a);
    assert_int_equal(((uintptr_t)t->data - (uintptr_t)buf - g->data_offset) % 32, 0);
    t = qb_gguf_find_tensor(g, "b.weight");
    assert_memory_equal(t->data, data_b, sizeof data_b);
    assert_null(qb_gguf_find_tensor(g, "nope"));
    assert_int_equal(qb_gguf_get_int(g, "missing", 42), 42);
    qb_gguf_close(g);
    free(buf);
}

/* Every proper prefix of a valid file is rejected with a message, never a crash. */
static void test_truncated_everywhere(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = build(&len);
    for (size_t cut = 0; cut < len; cut++) {
        qb_ctx ctx;
        qb_ctx_init(&ctx);
        qb_gguf *g = NULL;
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, buf, cut);
        qb_status st = qb_gguf_open_memory(&ctx, "cut.gguf", copy, cut, &g);
        if (st == QB_OK) fail_msg("prefix of %zu/%zu bytes accepted", cut, len);
        assert_null(g);
        assert_non_null(strstr(ctx.errmsg, "cut.gguf"));
        free(copy);
    }
    free(buf);
}

static void expect_error(const void *bytes, size_t len, qb_status want, const char *needle)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_gguf *g = NULL;
    qb_status st = qb_gguf_open_memory(&ctx, "bad.gguf", bytes, len, &g);
    if (st == QB_OK) fail_msg("accepted a bad file (expected '%s')", needle);
    assert_int_equal(st, want);
    if (!strstr(ctx.errmsg, needle)) fail_msg("message '%s' lacks '%s'", ctx.errmsg, needle);
    assert_non_null(strstr(ctx.errmsg, "bad.gguf"));
}

/* Offsets of fields inside the file built above, found by scanning for the tensor names. */
static size_t find(const uint8_t *buf, size_t len, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i + n <= len; i++)
        if (!memcmp(buf + i, s, n)) return i;
    fail_msg("'%s' not in buffer", s);
    return 0;
}

static void test_malformed(void **state)
{
    (void)state;
    size_t len;
    uint8_t *good = build(&len);
    uint8_t *b = malloc(len);
#define FRESH() memcpy(b, good, len)
    FRESH();
    memcpy(b, "GGUX", 4);
    expect_error(b, len, QB_ERR_FORMAT, "bad magic");
    FRESH();
    b[4] = 9;
    expect_error(b, len, QB_ERR_UNSUPPORTED, "version 9");
    FRESH();
    uint64_t huge = 1ull << 40;
    memcpy(b + 8, &huge, 8); /* tensor count */
    expect_error(b, len, QB_ERR_FORMAT, "absurd counts");
    FRESH();
    memcpy(b + 16, &huge, 8); /* kv count */
    expect_error(b, len, QB_ERR_FORMAT, "absurd counts");
    /* tensor a: name, then n_dims u32, dims, type u32, offset u64 */
    size_t ta = find(good, len, "a.weight") + 8;
    FRESH();
    uint32_t nd = 7;
    memcpy(b + ta, &nd, 4);
    expect_error(b, len, QB_ERR_FORMAT, "dimensions");
    FRESH();
    uint64_t zero = 0;
    memcpy(b + ta + 4, &zero, 8);
    expect_error(b, len, QB_ERR_FORMAT, "absurd dimension");
    FRESH();
    uint32_t badtype = 99;
    memcpy(b + ta + 4 + 16, &badtype, 4);
    expect_error(b, len, QB_ERR_UNSUPPORTED, "unsupported type 99");
    FRESH();
    uint32_t q4 = QB_TYPE_Q4_0; /* 16 is not a multiple of Q4_0's 32-element block */
    memcpy(b + ta + 4 + 16, &q4, 4);
    expect_error(b, len, QB_ERR_FORMAT, "block size");
    size_t tb = find(good, len, "b.weight") + 8;
    FRESH();
    uint64_t off = 8; /* misaligned */
    memcpy(b + tb + 4 + 8 + 4, &off, 8);
    expect_error(b, len, QB_ERR_FORMAT, "not aligned");
    FRESH();
    off = 0; /* overlaps a.weight */
    memcpy(b + tb + 4 + 8 + 4, &off, 8);
    expect_error(b, len, QB_ERR_FORMAT, "overlap");
    FRESH();
    off = 1 << 20; /* past the end */
    memcpy(b + tb + 4 + 8 + 4, &off, 8);
    expect_error(b, len, QB_ERR_FORMAT, "past the end");
    /* absurd string length in the first key */
    FRESH();
    memcpy(b + 24, &huge, 8);
    expect_error(b, len, QB_ERR_FORMAT, "absurd string length");
    /* unknown metadata value type */
    FRESH();
    size_t k0 = 24 + 8 + strlen("general.architecture");
    uint32_t vt = 77;
    memcpy(b + k0, &vt, 4);
    expect_error(b, len, QB_ERR_FORMAT, "unknown value type");
    expect_error(b, 0, QB_ERR_FORMAT, "too short");
    free(b);
    free(good);
}

static void test_real_files(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_gguf *g;
    assert_int_equal(qb_gguf_open(&ctx, qbt_model_path("qb-docs-26m/qb-docs-26m-f16.gguf"), &g), QB_OK);
    assert_string_equal(qb_gguf_get_str(g, "general.architecture"), "llama");
    assert_int_equal(qb_gguf_get_int(g, "llama.block_count", 0), 6);
    assert_string_equal(qb_gguf_get_str(g, "tokenizer.ggml.pre"), "llama-bpe");
    const qb_gguf_tensor *t = qb_gguf_find_tensor(g, "blk.0.ffn_down.weight");
    assert_non_null(t);
    assert_int_equal(t->ne[0], 1536);
    assert_int_equal(t->ne[1], 512);
    assert_int_equal(t->type, QB_TYPE_F16);
    qb_gguf_close(g);
    assert_int_equal(qb_gguf_open(&ctx, qbt_model_path("qb-docs-26m/qb-docs-26m-q4_k_m.gguf"), &g), QB_OK);
    int kinds[QB_TYPE_COUNT] = {0};
    for (uint64_t i = 0; i < g->n_tensors; i++) kinds[g->tensors[i].type]++;
    assert_true(kinds[QB_TYPE_Q4_K] > 0 && kinds[QB_TYPE_Q6_K] > 0);
    qb_gguf_close(g);
    assert_int_equal(qb_gguf_open(&ctx, "/nonexistent/x.gguf", &g), QB_ERR_IO);
    assert_non_null(strstr(ctx.errmsg, "/nonexistent/x.gguf"));
}

static void test_atomic_write(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_gguf_writer *w = qb_gguf_writer_new();
    int64_t ne[1] = {64};
    assert_true(qb_gguf_add_tensor(w, "x", QB_TYPE_F32, 1, ne, data_a));
    assert_false(qb_gguf_add_tensor(w, "y", QB_TYPE_Q4_0, 1, ne + 0, NULL) && false);
    /* unwritable directory */
    assert_int_equal(qb_gguf_write_file(&ctx, w, "/nonexistent-dir/out.gguf", NULL), QB_ERR_IO);
    assert_non_null(strstr(ctx.errmsg, "/nonexistent-dir/out.gguf"));
    /* a cancelled write leaves an existing file exactly as it was, and no temp file */
    const char *old = "previous contents";
    char *path = qbt_write_temp("atomic", old, strlen(old));
    volatile int cancel = 1;
    assert_int_equal(qb_gguf_write_file(&ctx, w, path, &cancel), QB_ERR_CANCELLED);
    size_t n;
    char *now = qbt_slurp(path, &n);
    assert_int_equal(n, strlen(old));
    assert_memory_equal(now, old, n);
    free(now);
    /* a real write replaces it and reads back */
    assert_int_equal(qb_gguf_write_file(&ctx, w, path, NULL), QB_OK);
    qb_gguf *g;
    assert_int_equal(qb_gguf_open(&ctx, path, &g), QB_OK);
    assert_memory_equal(qb_gguf_find_tensor(g, "x")->data, data_a, sizeof data_a);
    qb_gguf_close(g);
    unlink(path);
    free(path);
    qb_gguf_writer_free(w);
}

/* Float metadata read as integers: out-of-range values saturate and NaN gives 0 (fuzz-gguf
 * found the bare (int64_t) cast, undefined behaviour for a file storing 1e30 or NaN). */
static void test_float_metadata_as_int(void **state)
{
    (void)state;
    qb_gguf_writer *w = qb_gguf_writer_new();
    assert_non_null(w);
    assert_true(qb_gguf_set_f32(w, "big", 1e30f));
    assert_true(qb_gguf_set_f32(w, "small", -1e30f));
    assert_true(qb_gguf_set_f32(w, "nan", NAN));
    assert_true(qb_gguf_set_f32(w, "x", 2.75f));
    float arr[3] = {-1.7e38f, NAN, 42.5f};
    assert_true(qb_gguf_set_arr(w, "arr", QB_GGUF_FLOAT32, arr, 3));
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    void *buf;
    size_t len;
    assert_int_equal(qb_gguf_write_memory(&ctx, w, &buf, &len), QB_OK);
    qb_gguf *g;
    assert_int_equal(qb_gguf_open_memory(&ctx, "mem", buf, len, &g), QB_OK);
    assert_true(qb_gguf_get_int(g, "big", 0) == INT64_MAX);
    assert_true(qb_gguf_get_int(g, "small", 0) == INT64_MIN);
    assert_int_equal(qb_gguf_get_int(g, "nan", 7), 0);
    assert_int_equal(qb_gguf_get_int(g, "x", 0), 2);
    const qb_gguf_kv *kv = qb_gguf_find(g, "arr");
    assert_non_null(kv);
    assert_true(qb_gguf_arr_int(kv, 0) == INT64_MIN);
    assert_int_equal(qb_gguf_arr_int(kv, 1), 0);
    assert_int_equal(qb_gguf_arr_int(kv, 2), 42);
    qb_gguf_close(g);
    free(buf);
    /* the same value where the reader itself needs an integer: a clear error */
    assert_true(qb_gguf_set_f32(w, "general.alignment", 1e30f));
    assert_int_equal(qb_gguf_write_memory(&ctx, w, &buf, &len), QB_OK);
    qb_gguf_writer_free(w);
    g = NULL;
    assert_int_equal(qb_gguf_open_memory(&ctx, "bad.gguf", buf, len, &g), QB_ERR_FORMAT);
    assert_null(g);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "general.alignment must be a power of two"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),  cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_malformed),  cmocka_unit_test(test_real_files),
        cmocka_unit_test(test_atomic_write), cmocka_unit_test(test_float_metadata_as_int),
    };
    return cmocka_run_group_tests_name("gguf", tests, NULL, NULL);
}
