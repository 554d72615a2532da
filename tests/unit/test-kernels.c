/* test-kernels.c — every SIMD kernel against its scalar reference at awkward lengths
 * (1, 2, 3, 5, 7, 15, 17, 31, 33, …, 1023, 4099), on every ISA this CPU runs. */
#include "testutil.h"
#include <math.h>

#include "core/qb.h"
#include "kernels.h"

static const int lengths[] = {1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 129, 255, 511, 1023, 1536, 4099};
#define NLEN (int)(sizeof lengths / sizeof lengths[0])

static uint64_t rng = 88172645463325252ull;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* |a - b| within a tolerance scaled by the sum of |terms| (summation order differs). */
static void near(float got, float want, double scale, const char *what, int n)
{
    if (fabs((double)got - want) > 1e-5 * scale + 1e-6) fail_msg("%s n=%d: %.9g vs reference %.9g", what, n, got, want);
}

static const char *isas[] = {"avx2", "avx512"};

static void test_dots(void **state)
{
    (void)state;
    int tested = 0;
    for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++) {
        const qb_kernel_table *t = qb_kernels_for(isas[k]);
        if (!t) continue;
        tested++;
        for (int li = 0; li < NLEN; li++) {
            int n = lengths[li];
            /* +1 offsets make the vectors unaligned */
            float *w = malloc((n + 1) * sizeof(float)), *x = malloc((n + 1) * sizeof(float));
            uint16_t *h = malloc((n + 1) * sizeof(uint16_t)), *b = malloc((n + 1) * sizeof(uint16_t));
            double scale = 0;
            for (int i = 0; i < n + 1; i++) {
                w[i] = frand();
                x[i] = frand();
                h[i] = qb_f32_to_f16(w[i]);
                uint32_t u;
                memcpy(&u, &w[i], 4);
                b[i] = (uint16_t)(u >> 16);
                scale += fabs(w[i] * x[i]);
            }
            near(t->dot_f32(n, w + 1, x + 1), qb_dot_f32_ref(n, w + 1, x + 1), scale, "dot_f32", n);
            near(t->dot_f16(n, h + 1, x + 1), qb_dot_f16_ref(n, h + 1, x + 1), scale, "dot_f16", n);
            near(t->dot_bf16(n, b + 1, x + 1), qb_dot_bf16_ref(n, b + 1, x + 1), scale, "dot_bf16", n);
            float *o1 = malloc(n * sizeof(float)), *o2 = malloc(n * sizeof(float));
            t->f16_to_f32(n, h + 1, o1);
            qb_f16_to_f32_row_ref(n, h + 1, o2);
            assert_memory_equal(o1, o2, n * sizeof(float));
            t->bf16_to_f32(n, b + 1, o1);
            qb_bf16_to_f32_row_ref(n, b + 1, o2);
            assert_memory_equal(o1, o2, n * sizeof(float));
            free(o1);
            free(o2);
            free(w);
            free(x);
            free(h);
            free(b);
        }
    }
    print_message("dot kernels checked on %d vector ISA(s)\n", tested);
}

static void test_tiles(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++) {
        const qb_kernel_table *t = qb_kernels_for(isas[k]);
        if (!t) continue;
        for (int li = 0; li < NLEN; li++) {
            int n = lengths[li];
            size_t ld = (size_t)n + 3; /* strides longer than rows */
            float *w = malloc(4 * ld * sizeof(float)), *x = malloc(9 * ld * sizeof(float));
            uint16_t *wh = malloc(4 * ld * sizeof(uint16_t));
            for (size_t i = 0; i < 4 * ld; i++) wh[i] = qb_f32_to_f16(w[i] = frand());
            for (size_t i = 0; i < 9 * ld; i++) x[i] = frand();
            for (int nr = 1; nr <= 4; nr++)
                for (int nc = 1; nc <= 9; nc++) {
                    float y1[9 * 5], y2[9 * 5];
                    memset(y1, 0, sizeof y1);
                    memset(y2, 0, sizeof y2);
                    t->tile_f32(n, w, ld, nr, x, ld, nc, y1, 5);
                    qb_tile_f32_ref(n, w, ld, nr, x, ld, nc, y2, 5);
                    for (int c = 0; c < nc; c++)
                        for (int r = 0; r < 5; r++) {
                            if (r >= nr) {
                                assert_true(y1[c * 5 + r] == 0); /* nothing written outside the tile */
                                continue;
                            }
                            near(y1[c * 5 + r], y2[c * 5 + r], (double)n, "tile_f32", n);
                        }
                    memset(y1, 0, sizeof y1);
                    memset(y2, 0, sizeof y2);
                    t->tile_f16(n, wh, ld, nr, x, ld, nc, y1, 5);
                    qb_tile_f16_ref(n, wh, ld, nr, x, ld, nc, y2, 5);
                    for (int c = 0; c < nc; c++)
                        for (int r = 0; r < 5; r++) {
                            if (r >= nr) {
                                assert_true(y1[c * 5 + r] == 0);
                                continue;
                            }
                            near(y1[c * 5 + r], y2[c * 5 + r], (double)n, "tile_f16", n);
                        }
                }
            free(w);
            free(wh);
            free(x);
        }
    }
}

static void test_dispatch(void **state)
{
    (void)state;
    const qb_kernel_table *t = qb_kernels();
    assert_non_null(t);
    assert_non_null(qb_kernels_for("ref"));
    assert_null(qb_kernels_for("sse9"));
    print_message("dispatch chose %s\n", t->isa);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dots), cmocka_unit_test(test_tiles), cmocka_unit_test(test_dispatch),
    };
    return cmocka_run_group_tests_name("kernels", tests, NULL, NULL);
}
