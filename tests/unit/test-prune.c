/* test-prune.c — pruning: exact per-row sparsity with the smallest magnitudes removed, the 2:4
 * pattern (exactly two zeros in every group of four, the two largest kept), deterministic ties,
 * spec parsing and bad input; on stories260K: a pruned tensor stored in F32 and in Q8_0 has its
 * zeros where pruning put them, restores to the original, cancel leaves it unchanged; a pruned
 * view leaves the base as it was. */
#include "testutil.h"
#include <math.h>

#include "core/model/model.h"
#include "core/quant/view.h"
#include "core/method/prune.h"
#include "core/quant/apply.h"

/* Deterministic values with distinct magnitudes and both signs. */
static void fill(float *w, int64_t n, unsigned seed)
{
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        float u = (float)((seed >> 8) & 0xFFFF) / 65536.0f + 1e-3f;
        w[i] = (seed & 1) ? u : -u;
    }
}

static void test_magnitude_exact(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    const int64_t lens[] = {1, 7, 64, 172, 512};
    const double ratios[] = {0.0, 0.25, 0.5, 0.9};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
        for (size_t ri = 0; ri < sizeof ratios / sizeof ratios[0]; ri++) {
            int64_t n = lens[li], rows = 5;
            float *w = malloc((size_t)(n * rows) * sizeof *w), *orig = malloc((size_t)(n * rows) * sizeof *orig);
            fill(orig, n * rows, (unsigned)(n * 31 + ri));
            memcpy(w, orig, (size_t)(n * rows) * sizeof *w);
            qb_prune p = {.kind = QB_PRUNE_MAGNITUDE, .sparsity = ratios[ri]};
            assert_int_equal(qb_prune_matrix(&ctx, &p, w, rows, n), QB_OK);
            int64_t want = (int64_t)floor(ratios[ri] * (double)n + 0.5);
            for (int64_t r = 0; r < rows; r++) {
                int64_t z = 0;
                float max_pruned = 0, min_kept = INFINITY;
                for (int64_t i = 0; i < n; i++) {
                    float a = fabsf(orig[r * n + i]);
                    if (w[r * n + i] == 0.0f) {
                        z++;
                        if (a > max_pruned) max_pruned = a;
                    } else {
                        assert_true(w[r * n + i] == orig[r * n + i]); /* kept values untouched */
                        if (a < min_kept) min_kept = a;
                    }
                }
                assert_int_equal(z, want);
                assert_true(max_pruned <= min_kept);
            }
            assert_true(fabs(qb_prune_zero_fraction(w, n * rows) - (double)want / (double)n) < 1e-12);
            free(w);
            free(orig);
        }
}

static void test_nm_pattern(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int64_t n = 172, rows = 9; /* 172 = 43 groups of 4 */
    float *w = malloc((size_t)(n * rows) * sizeof *w), *orig = malloc((size_t)(n * rows) * sizeof *orig);
    fill(orig, n * rows, 7);
    memcpy(w, orig, (size_t)(n * rows) * sizeof *w);
    qb_prune p;
    assert_int_equal(qb_prune_parse(&ctx, "2:4", &p), QB_OK);
    assert_int_equal(p.kind, QB_PRUNE_NM);
    assert_int_equal(qb_prune_matrix(&ctx, &p, w, rows, n), QB_OK);
    for (int64_t g = 0; g < n * rows; g += 4) {
        int z = 0;
        float max_pruned = 0, min_kept = INFINITY;
        for (int k = 0; k < 4; k++) {
            float a = fabsf(orig[g + k]);
            if (w[g + k] == 0.0f) z++, max_pruned = a > max_pruned ? a : max_pruned;
            else min_kept = a < min_kept ? a : min_kept;
        }
        assert_int_equal(z, 2);
        assert_true(max_pruned <= min_kept);
    }
    assert_true(fabs(qb_prune_zero_fraction(w, n * rows) - 0.5) < 1e-12);
    /* ties: all equal, the earlier ones go first */
    float t[8] = {1, 1, 1, 1, -1, -1, -1, -1};
    assert_int_equal(qb_prune_matrix(&ctx, &p, t, 1, 8), QB_OK);
    const float want[8] = {0, 0, 1, 1, 0, 0, -1, -1};
    for (int i = 0; i < 8; i++) assert_true(t[i] == want[i]);
    /* M must divide the row */
    assert_int_equal(qb_prune_matrix(&ctx, &p, w, 1, 6), QB_ERR_UNSUPPORTED);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "row length 6"));
    free(w);
    free(orig);
}

static void test_parse(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_prune p;
    char name[32];
    assert_int_equal(qb_prune_parse(&ctx, "0.5", &p), QB_OK);
    assert_true(p.kind == QB_PRUNE_MAGNITUDE && p.sparsity == 0.5);
    assert_int_equal(qb_prune_parse(&ctx, "25%", &p), QB_OK);
    assert_true(p.sparsity == 0.25);
    qb_prune_name(&p, name, sizeof name);
    assert_string_equal(name, "magnitude-25%");
    assert_int_equal(qb_prune_parse(&ctx, "magnitude:0.75", &p), QB_OK);
    assert_true(p.sparsity == 0.75);
    assert_int_equal(qb_prune_parse(&ctx, "1:8", &p), QB_OK);
    qb_prune_name(&p, name, sizeof name);
    assert_string_equal(name, "1:8");
    const char *bad[] = {"", "1.5", "-0.1", "100%", "4:2", "0:4", "2:4x", "abc", "2:128", "magnitude:2:4"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (qb_prune_parse(&ctx, bad[i], &p) != QB_ERR_ARG) fail_msg("'%s' accepted", bad[i]);
        assert_true(strlen(qb_ctx_errmsg(&ctx)) > 0);
    }
}

static void test_tensor_prune_restore(void **state)
{
    (void)state;
    const char *path = qbt_model_path("stories260K/stories260K.bin");
    qbt_need(path);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m;
    assert_int_equal(qb_model_open(&ctx, path, NULL, &m), QB_OK);
    qb_tensor *t = qb_model_find_tensor(m, "blk.1.ffn_up.weight"); /* 172 rows of 64 */
    int64_t n = t->ne[0], rows = qb_tensor_rows(t);
    float *orig = malloc((size_t)(n * rows) * sizeof *orig), *got = malloc((size_t)(n * rows) * sizeof *got);
    qb_tensor_source_rows(t, 0, rows, orig);
    const void *data0 = t->data;
    qb_prune p = {.kind = QB_PRUNE_NM, .n = 2, .m = 4};
    /* NULL format: the source type (F32 here), values exactly the pruned originals */
    assert_int_equal(qb_tensor_prune(&ctx, t, &p, NULL, NULL), QB_OK);
    assert_int_equal(t->type, QB_TYPE_F32);
    memcpy(got, t->data, (size_t)(n * rows) * sizeof *got);
    for (int64_t i = 0; i < n * rows; i++) assert_true(got[i] == 0.0f || got[i] == orig[i]);
    assert_true(fabs(qb_prune_zero_fraction(got, n * rows) - 0.5) < 1e-12);
    /* then Q8_0: zeros stay zeros after quantization */
    qb_format q8 = qb_format_ggml(QB_TYPE_Q8_0);
    assert_int_equal(qb_tensor_prune(&ctx, t, &p, &q8, NULL), QB_OK);
    assert_int_equal(t->type, QB_TYPE_Q8_0);
    size_t rb = qb_format_row_bytes(&q8, n);
    float *deq = malloc((size_t)n * sizeof *deq);
    for (int64_t r = 0; r < rows; r++) {
        qb_dequantize_row(&q8, (const uint8_t *)t->data + r * rb, deq, n);
        for (int64_t i = 0; i < n; i++)
            if (got[r * n + i] == 0.0f) assert_true(deq[i] == 0.0f);
    }
    /* cancel: unchanged */
    volatile int cancel = 1;
    const void *before = t->data;
    assert_int_equal(qb_tensor_prune(&ctx, t, &p, NULL, &cancel), QB_ERR_CANCELLED);
    assert_ptr_equal(t->data, before);
    /* restore gives the original back */
    assert_int_equal(qb_tensor_restore(&ctx, t), QB_OK);
    assert_ptr_equal(t->data, t->src_data);
    (void)data0;
    float *back = malloc((size_t)(n * rows) * sizeof *back);
    qb_tensor_source_rows(t, 0, rows, back);
    assert_memory_equal(back, orig, (size_t)(n * rows) * sizeof *back);
    /* a norm is refused; N:M that does not divide the row names the tensor */
    assert_int_equal(qb_tensor_prune(&ctx, qb_model_find_tensor(m, "blk.0.ffn_norm.weight"), &p, NULL, NULL), QB_ERR_ARG);
    qb_prune p8 = {.kind = QB_PRUNE_NM, .n = 4, .m = 8};
    assert_int_equal(qb_tensor_prune(&ctx, qb_model_find_tensor(m, "blk.0.ffn_down.weight"), &p8, NULL, NULL),
                     QB_ERR_UNSUPPORTED);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "blk.0.ffn_down.weight"));
    /* whole model through a view: the base keeps its data */
    qb_model *v;
    assert_int_equal(qb_model_view_new(&ctx, m, &v), QB_OK);
    qb_prune half = {.kind = QB_PRUNE_MAGNITUDE, .sparsity = 0.5};
    assert_int_equal(qb_prune_apply(&ctx, v, &half, NULL, NULL), QB_OK);
    for (int i = 0; i < m->n_tensors; i++) {
        bool blk = !strncmp(m->tensors[i].name, "blk.", 4) && qb_tensor_quantizable(&m->tensors[i]);
        assert_int_equal(qb_model_view_changed(v, i), blk);
        if (blk) {
            const qb_tensor *vt = &v->tensors[i];
            assert_true(fabs(qb_prune_zero_fraction(vt->data, qb_tensor_nelements(vt)) - 0.5) < 0.01);
        }
    }
    qb_model_view_free(v);
    qb_tensor_source_rows(t, 0, rows, back);
    assert_memory_equal(back, orig, (size_t)(n * rows) * sizeof *back);
    free(orig);
    free(got);
    free(deq);
    free(back);
    qb_model_close(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_magnitude_exact),
        cmocka_unit_test(test_nm_pattern),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_tensor_prune_restore),
    };
    return cmocka_run_group_tests_name("prune", tests, NULL, NULL);
}
