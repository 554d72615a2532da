/* test-quant-int-simd.c — the kernel table's INT row quantizer (quant_int: AVX2, AVX-512)
 * against the scalar spec qb_quant_row_int_ref, byte for byte, and never a byte past the row:
 * 2..8 bits, per tensor / per row / groups of 32..256, sym and asym, awkward row lengths, and
 * rows that are Gaussian with outliers, non-negative with zeros (the sign of a zero extreme
 * comes from the first zero), all zero, constant, NaN-bearing, infinite, subnormal, huge. */
#include "testutil.h"

#include "core/qb.h"
#include "kernels.h"
#include "fmt.h"

#include <math.h>

static const char *isas[] = {"avx2", "avx512"};
static const int lengths[] = {1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 63, 100, 255, 257, 1023, 4099};

static uint64_t rng = 0x853c49e6748fea9bull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static float frand(void) { return (float)((next() >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f; }

/* Row kind k of n values. */
static void fill(float *x, int64_t n, int k)
{
    for (int64_t i = 0; i < n; i++) {
        float v = frand() * 0.05f;
        if (next() % 64 == 0) v *= 30;
        switch (k) {
        case 1: v = next() % 5 ? fabsf(v) : (next() % 2 ? 0.0f : -0.0f); break; /* min is a zero */
        case 2: v = next() % 5 ? -fabsf(v) : (next() % 2 ? 0.0f : -0.0f); break; /* max is a zero */
        case 3: v = 0.0f; break;
        case 4: v = 0.75f; break;
        case 5: if (next() % 7 == 0) v = NAN; break;
        case 6: if (next() % 97 == 0) v = next() % 2 ? INFINITY : -INFINITY; break;
        case 7: v *= 1e-39f; break;
        case 8: v *= 1e35f; break;
        default: break;
        }
        x[i] = v;
    }
}

static void test_quant_int(void **state)
{
    (void)state;
    static const int groups[] = {QB_GROUP_TENSOR, QB_GROUP_CHANNEL, 32, 64, 128, 256};
    int tested = 0;
    for (size_t t = 0; t < sizeof isas / sizeof isas[0]; t++) {
        const qb_kernel_table *k = qb_kernels_for(isas[t]);
        if (!k) continue;
        tested++;
        for (int bits = 2; bits <= 8; bits++)
            for (size_t gi = 0; gi < sizeof groups / sizeof groups[0]; gi++)
                for (int asym = 0; asym < 2; asym++)
                    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++)
                        for (int kind = 0; kind <= 8; kind++) {
                            const int group = groups[gi];
                            const int64_t n = group > 0 ? (int64_t)group * (1 + (int64_t)li % 3) : lengths[li];
                            const size_t rb = qb_int_row_bytes(bits, group, asym, n);
                            float *x = malloc((size_t)n * sizeof *x);
                            fill(x, n, kind);
                            const float range[2] = {-1.5f, 0.5f};
                            const float *rp = group == QB_GROUP_TENSOR ? range : NULL;
                            uint8_t *want = malloc(rb + 16), *got = malloc(rb + 16);
                            memset(want, 0xa5, rb + 16);
                            memset(got, 0xa5, rb + 16);
                            qb_quant_row_int_ref(bits, group, asym, x, want, n, rp);
                            k->quant_int(bits, group, asym, x, got, n, rp);
                            for (size_t i = 0; i < rb + 16; i++)
                                if (got[i] != want[i])
                                    fail_msg("%s int%d g%d %s n=%lld kind %d: byte %zu of %zu: 0x%02x, ref 0x%02x",
                                             isas[t], bits, group, asym ? "asym" : "sym", (long long)n, kind, i, rb,
                                             got[i], want[i]);
                            free(x);
                            free(want);
                            free(got);
                        }
    }
    if (!tested) skip();
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_quant_int)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
