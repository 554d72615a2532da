/* test-fmt-rows-simd.c — the kernel table's row functions of the non-ggml formats against
 * their scalar specs, byte for byte and bit for bit, never a byte past the row:
 *  - quant_int (AVX2, AVX-512) against qb_quant_row_int_ref: 2..8 bits, per tensor / per row /
 *    groups of 32..256, sym and asym, awkward row lengths, and rows that are Gaussian with
 *    outliers, non-negative with zeros (the sign of a zero extreme comes from the first zero),
 *    all zero, constant, NaN-bearing, infinite, subnormal, huge;
 *  - quant_nf4 / dequant_nf4 (AVX-512) against the NF4 references, with and without double
 *    quantization, on the same kinds of rows and values on the decision thresholds;
 *  - FP8 E4M3 / E5M2 (per row and with a tensor's absmax) and MXFP4 rows (AVX-512) against their
 *    references, on the same rows plus values on and next to every code and midpoint; decoding
 *    every code, any exponent byte.
 * (The INT dequantizers are in test-stats-kernels.c.) */
#include "testutil.h"

#include "core/qb.h"
#include "kernels.h"
#include "fmt.h"
#include "fmt_nf4.h"

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

static void test_nf4(void **state)
{
    (void)state;
    int tested = 0;
    for (size_t t = 0; t < sizeof isas / sizeof isas[0]; t++) {
        const qb_kernel_table *k = qb_kernels_for(isas[t]);
        if (!k) continue;
        tested++;
        for (int dq = 0; dq < 2; dq++)
            for (int nb = 1; nb <= 600; nb += nb < 8 ? 1 : 97) /* 600 blocks: three dq groups */
                for (int kind = 0; kind <= 9; kind++) {
                    const int64_t n = (int64_t)nb * QB_NF4_BLOCK;
                    const size_t rb = qb_nf4_row_bytes(dq, n);
                    float *x = malloc((size_t)n * sizeof *x);
                    fill(x, n, kind < 9 ? kind : 0);
                    if (kind == 9) /* on the thresholds, next to them, on the levels; block absmax 1 */
                        for (int64_t i = 0; i < n; i++) {
                            const float t = qb_nf4_thresholds[next() % 15];
                            x[i] = i % 64 == 0 ? 1.0f
                                   : next() % 4 == 0 ? qb_nf4_levels[next() % 16]
                                   : next() % 2      ? t
                                                     : nextafterf(t, next() % 2 ? 1.0f : -1.0f);
                        }
                    uint8_t *want = malloc(rb + 16), *got = malloc(rb + 16);
                    memset(want, 0xa5, rb + 16);
                    memset(got, 0xa5, rb + 16);
                    qb_quant_row_nf4_ref(dq, x, want, n);
                    k->quant_nf4(dq, x, got, n);
                    for (size_t i = 0; i < rb + 16; i++)
                        if (got[i] != want[i])
                            fail_msg("%s nf4%s nb=%d kind %d: byte %zu of %zu: 0x%02x, ref 0x%02x", isas[t],
                                     dq ? "-dq" : "", nb, kind, i, rb, got[i], want[i]);
                    float *yw = malloc((size_t)n * sizeof *yw), *yg = malloc((size_t)n * sizeof *yg);
                    for (size_t i = 0; i < rb; i++) want[i] = (uint8_t)(kind == 4 ? next() : want[i]); /* any bytes */
                    qb_dequant_row_nf4_ref(dq, want, yw, n);
                    k->dequant_nf4(dq, want, yg, n);
                    for (int64_t i = 0; i < n; i++)
                        if (memcmp(&yg[i], &yw[i], 4) && !(yg[i] != yg[i] && yw[i] != yw[i]))
                            fail_msg("%s nf4%s nb=%d kind %d: y[%lld] %.9g, ref %.9g", isas[t], dq ? "-dq" : "", nb, kind,
                                     (long long)i, yg[i], yw[i]);
                    free(x);
                    free(want);
                    free(got);
                    free(yw);
                    free(yg);
                }
    }
    if (!tested) skip();
}

/* bytes of got against want (rb of them and 16 guard bytes) */
static void same_bytes(const uint8_t *got, const uint8_t *want, size_t rb, const char *what, int kind)
{
    for (size_t i = 0; i < rb + 16; i++)
        if (got[i] != want[i]) fail_msg("%s kind %d: byte %zu of %zu: 0x%02x, ref 0x%02x", what, kind, i, rb, got[i], want[i]);
}

static void same_floats(const float *got, const float *want, int64_t n, const char *what)
{
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&got[i], &want[i], 4) && !(got[i] != got[i] && want[i] != want[i]))
            fail_msg("%s: y[%lld] %.9g, ref %.9g", what, (long long)i, got[i], want[i]);
}

/* Values on and next to every point where a code changes: the codes' own values and the
 * midpoints between neighbours, times scale, of either sign. */
static void fill_edges(float *x, int64_t n, const float *points, int np, float scale)
{
    for (int64_t i = 0; i < n; i++) {
        const int k = (int)(next() % (uint64_t)np);
        float v = points[k] * scale;
        if (next() % 3 == 0) v = nextafterf(v, next() % 2 ? INFINITY : -INFINITY);
        x[i] = next() % 2 ? v : -v;
    }
}

static void test_fp8(void **state)
{
    (void)state;
    for (size_t t = 0; t < sizeof isas / sizeof isas[0]; t++) {
        const qb_kernel_table *k = qb_kernels_for(isas[t]);
        if (!k) continue;
        for (int e5m2 = 0; e5m2 < 2; e5m2++) {
            /* every code's value and the midpoints between neighbours */
            float pts[512];
            int np = 0;
            for (int c = 0; c < 128; c++) {
                const float v = e5m2 ? qb_fp8_e5m2_to_f32((uint8_t)c) : qb_fp8_e4m3_to_f32((uint8_t)c);
                const float w = e5m2 ? qb_fp8_e5m2_to_f32((uint8_t)(c + 1)) : qb_fp8_e4m3_to_f32((uint8_t)(c + 1));
                if (isfinite(v)) pts[np++] = v;
                if (isfinite(v) && isfinite(w)) pts[np++] = (v + w) / 2; /* exact: a midpoint of two close floats */
            }
            const float maxv = e5m2 ? QB_FP8_E5M2_MAX : QB_FP8_E4M3_MAX;
            for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++)
                for (int kind = 0; kind <= 9; kind++)
                    for (int per_tensor = 0; per_tensor < 2; per_tensor++) {
                        const int64_t n = lengths[li];
                        const size_t rb = qb_fp8_row_bytes(n);
                        float *x = malloc((size_t)n * sizeof *x);
                        if (kind < 9) fill(x, n, kind);
                        else fill_edges(x, n, pts, np, 1.0f);
                        /* kind 9: scale 1 (absmax = max) so the edges land on the codes' own grid */
                        const float absmax = kind == 9 ? maxv : per_tensor ? 3.0f : -1.0f;
                        uint8_t *want = malloc(rb + 16), *got = malloc(rb + 16);
                        memset(want, 0xa5, rb + 16);
                        memset(got, 0xa5, rb + 16);
                        qb_quant_row_fp8_ref(e5m2, x, want, n, absmax);
                        k->quant_fp8(e5m2, x, got, n, absmax);
                        char what[64];
                        snprintf(what, sizeof what, "%s fp8-%s n=%lld", isas[t], e5m2 ? "e5m2" : "e4m3", (long long)n);
                        same_bytes(got, want, rb, what, kind);
                        /* decoding: any code bytes, a random scale */
                        for (size_t i = 4; i < rb; i++) want[i] = (uint8_t)next();
                        const float sc = frand() * 4.0f;
                        memcpy(want, &sc, 4);
                        float *yw = malloc((size_t)n * sizeof *yw), *yg = malloc((size_t)n * sizeof *yg);
                        qb_dequant_row_fp8_ref(e5m2, want, yw, n);
                        k->dequant_fp8(e5m2, want, yg, n);
                        same_floats(yg, yw, n, what);
                        free(x);
                        free(want);
                        free(got);
                        free(yw);
                        free(yg);
                    }
            /* all 256 codes, scale 1 */
            uint8_t row[4 + 256];
            const float one = 1.0f;
            memcpy(row, &one, 4);
            for (int c = 0; c < 256; c++) row[4 + c] = (uint8_t)c;
            float yw[256], yg[256];
            qb_dequant_row_fp8_ref(e5m2, row, yw, 256);
            k->dequant_fp8(e5m2, row, yg, 256);
            same_floats(yg, yw, 256, e5m2 ? "fp8-e5m2 all codes" : "fp8-e4m3 all codes");
        }
    }
}

static void test_mxfp4(void **state)
{
    (void)state;
    static const float pts[] = {0.0f, 0.25f, 0.5f, 0.75f, 1.0f, 1.25f, 1.5f, 1.75f, 2.0f, 2.5f, 3.0f, 3.5f, 4.0f, 5.0f, 6.0f};
    for (size_t t = 0; t < sizeof isas / sizeof isas[0]; t++) {
        const qb_kernel_table *k = qb_kernels_for(isas[t]);
        if (!k) continue;
        for (int nb = 1; nb <= 40; nb += nb < 4 ? 1 : 9)
            for (int kind = 0; kind <= 9; kind++) {
                const int64_t n = (int64_t)nb * QB_MXFP4_BLOCK;
                const size_t rb = qb_mxfp4_row_bytes(n);
                float *x = malloc((size_t)n * sizeof *x);
                if (kind < 9) {
                    fill(x, n, kind);
                } else { /* blocks with absmax 4..8 (exponent 0): values on the E2M1 grid and midpoints */
                    fill_edges(x, n, pts, (int)(sizeof pts / sizeof pts[0]), 1.0f);
                    for (int64_t b = 0; b < n; b += 32) x[b] = 4.0f + (float)(next() % 4);
                }
                uint8_t *want = malloc(rb + 16), *got = malloc(rb + 16);
                memset(want, 0xa5, rb + 16);
                memset(got, 0xa5, rb + 16);
                qb_quant_row_mxfp4_ref(x, want, n);
                k->quant_mxfp4(x, got, n);
                char what[48];
                snprintf(what, sizeof what, "%s mxfp4 nb=%d", isas[t], nb);
                same_bytes(got, want, rb, what, kind);
                for (size_t i = 0; i < rb; i++) want[i] = (uint8_t)next(); /* any bytes: every exponent, 0 and 255 */
                want[0] = 0;
                if (rb > 17) want[17] = 255;
                float *yw = malloc((size_t)n * sizeof *yw), *yg = malloc((size_t)n * sizeof *yg);
                qb_dequant_row_mxfp4_ref(want, yw, n);
                k->dequant_mxfp4(want, yg, n);
                same_floats(yg, yw, n, what);
                free(x);
                free(want);
                free(got);
                free(yw);
                free(yg);
            }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_quant_int), cmocka_unit_test(test_nf4),
                                       cmocka_unit_test(test_fp8), cmocka_unit_test(test_mxfp4)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
