/* test-attn-kernel.c — the kernels' attn_f32 (one query head over f32 keys / values): the
 * scalar reference against attention computed in double, and every SIMD table against the
 * reference at awkward head sizes and lengths, keys and values in rows an odd number of
 * floats apart, softmax both flat and peaked (large scale: the maximum must be subtracted);
 * nothing past the head's hd outputs or the len scores is written. */
#include "testutil.h"
#include <math.h>

#include "core/qb.h"
#include "kernels.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static const int hds[] = {1, 3, 8, 15, 16, 17, 31, 33, 48, 64, 80, 100, 128, 129, 200, 256, 257, 300};
static const int lens[] = {1, 2, 3, 4, 5, 7, 8, 9, 31, 130};
#define NHD (int)(sizeof hds / sizeof hds[0])
#define NLN (int)(sizeof lens / sizeof lens[0])

/* attention in double: the meaning the reference must have */
static void attn_double(int hd, int len, const float *q, const float *k, size_t kst, const float *v, size_t vst, float scale,
                        double *out)
{
    double *s = malloc((size_t)len * sizeof *s), mx = -INFINITY, sum = 0;
    for (int j = 0; j < len; j++) {
        double d = 0;
        for (int i = 0; i < hd; i++) d += (double)q[i] * k[(size_t)j * kst + i];
        s[j] = d * scale;
        if (s[j] > mx) mx = s[j];
    }
    for (int j = 0; j < len; j++) sum += s[j] = exp(s[j] - mx);
    for (int i = 0; i < hd; i++) {
        double o = 0;
        for (int j = 0; j < len; j++) o += s[j] / sum * v[(size_t)j * vst + i];
        out[i] = o;
    }
    free(s);
}

static void test_attn(void **state)
{
    (void)state;
    const qb_kernel_table *ref = qb_kernels_for("ref");
    const char *isas[] = {"avx2", "avx512", "avx512vnni"};
    int checked = 0;
    assert_non_null(ref->attn_f32);
    for (int hi = 0; hi < NHD; hi++)
        for (int li = 0; li < NLN; li++)
            for (int peaked = 0; peaked < 2; peaked++) {
                const int hd = hds[hi], len = lens[li];
                const size_t kst = (size_t)hd + 3, vst = (size_t)hd + 5;
                const float scale = peaked ? 40.0f / sqrtf((float)hd) : 1.0f / sqrtf((float)hd);
                float *q = malloc((size_t)hd * sizeof *q), *k = malloc((size_t)len * kst * sizeof *k);
                float *v = malloc((size_t)len * vst * sizeof *v), *att = malloc((size_t)(len + 4) * sizeof *att);
                float *want = malloc((size_t)(hd + 4) * sizeof *want), *got = malloc((size_t)(hd + 4) * sizeof *got);
                double *exact = malloc((size_t)hd * sizeof *exact);
                for (int i = 0; i < hd; i++) q[i] = frand();
                for (size_t i = 0; i < (size_t)len * kst; i++) k[i] = frand();
                for (size_t i = 0; i < (size_t)len * vst; i++) v[i] = frand();
                attn_double(hd, len, q, k, kst, v, vst, scale, exact);
                ref->attn_f32(hd, len, q, k, kst, v, vst, scale, att, want);
                for (int i = 0; i < hd; i++)
                    if (fabs(want[i] - exact[i]) > 2e-5 * (1 + fabs(scale) * hd / 8))
                        fail_msg("ref attn hd=%d len=%d out[%d]: %.9g vs double %.9g", hd, len, i, want[i], exact[i]);
                for (int s = 0; s < 3; s++) {
                    const qb_kernel_table *t = qb_kernels_for(isas[s]);
                    if (!t) continue;
                    assert_non_null(t->attn_f32);
                    for (int i = 0; i < hd + 4; i++) got[i] = -7.0f;
                    for (int j = 0; j < len + 4; j++) att[j] = -9.0f;
                    t->attn_f32(hd, len, q, k, kst, v, vst, scale, att, got);
                    for (int i = hd; i < hd + 4; i++)
                        if (got[i] != -7.0f) fail_msg("%s attn hd=%d len=%d wrote out[%d]", isas[s], hd, len, i);
                    for (int j = len; j < len + 4; j++)
                        if (att[j] != -9.0f) fail_msg("%s attn hd=%d len=%d wrote att[%d]", isas[s], hd, len, j);
                    for (int i = 0; i < hd; i++)
                        if (fabs(got[i] - want[i]) > 1e-5 * (1 + fabs(scale) * hd / 8))
                            fail_msg("%s attn hd=%d len=%d scale=%g out[%d]: %.9g vs reference %.9g", isas[s], hd, len, scale,
                                     i, got[i], want[i]);
                    checked++;
                }
                free(q);
                free(k);
                free(v);
                free(att);
                free(want);
                free(got);
                free(exact);
            }
    print_message("attn_f32: %d calls matched the reference\n", checked);
}

/* A head whose scores are all equal: exactly the mean of the values, in every table. */
static void test_attn_uniform(void **state)
{
    (void)state;
    const char *isas[] = {"ref", "avx2", "avx512"};
    enum { HD = 20, LEN = 6 };
    float q[HD] = {0}, k[LEN * HD], v[LEN * HD], att[LEN], out[HD];
    for (int i = 0; i < LEN * HD; i++) k[i] = frand(), v[i] = (float)(i % 7) - 3.0f;
    for (int s = 0; s < 3; s++) {
        const qb_kernel_table *t = qb_kernels_for(isas[s]);
        if (!t) continue;
        t->attn_f32(HD, LEN, q, k, HD, v, HD, 0.125f, att, out);
        for (int i = 0; i < HD; i++) {
            double m = 0;
            for (int j = 0; j < LEN; j++) m += v[j * HD + i];
            m /= LEN;
            if (fabs(out[i] - m) > 1e-6) fail_msg("%s uniform attn out[%d]: %.9g, mean %.9g", isas[s], i, out[i], m);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_attn), cmocka_unit_test(test_attn_uniform)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
