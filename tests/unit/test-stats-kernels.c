/* test-stats-kernels.c — the analysis kernels (err_rows, hist_slots, hist_slots2, map_filter, mul_f32) and the row dequantizers
 * of the kernel table (dequant_row for ggml block types, dequant_int for INT rows) on every
 * ISA this CPU runs, bit for bit against their scalar references, at awkward lengths, row
 * counts and strides, with NaNs, infinities, signed zeros and values on the bin edges. */
#include "testutil.h"

#include "core/qb.h"
#include "kernels.h"
#include "blocks.h"
#include "fmt.h"

#include <math.h>
#include <stddef.h>

static const int lengths[] = {1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 255, 1023, 4099};
#define NLEN (int)(sizeof lengths / sizeof lengths[0])
static const char *isas[] = {"avx2", "avx512"};
#define NISA (int)(sizeof isas / sizeof isas[0])

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static float frand(void) { return (float)((next() >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f; }

/* A value for the statistics: mostly small, sometimes zero of either sign, NaN, huge. */
static float odd_value(void)
{
    switch (next() % 64) {
    case 0: return 0.0f;
    case 1: return -0.0f;
    case 2: return NAN;
    case 3: return frand() * 1e30f;
    case 4: return frand() * 1e-30f;
    default: return frand();
    }
}

/* Bitwise equal, or both NaN (NaN payloads may travel differently through vector sums). */
static bool same_d(double a, double b) { return memcmp(&a, &b, sizeof a) == 0 || (a != a && b != b); }
static bool same_f(float a, float b) { return memcmp(&a, &b, sizeof a) == 0 || (a != a && b != b); }

static void expect_acc(const qb_err_acc *got, const qb_err_acc *want, const char *isa, int n, int r)
{
    const double gd[6] = {got->sxx, got->see, got->sxy, got->syy, got->sae, got->maxe};
    const double wd[6] = {want->sxx, want->see, want->sxy, want->syy, want->sae, want->maxe};
    const float gf[6] = {got->xlo, got->xhi, got->ylo, got->yhi, got->elo, got->ehi};
    const float wf[6] = {want->xlo, want->xhi, want->ylo, want->yhi, want->elo, want->ehi};
    for (int i = 0; i < 6; i++) {
        if (!same_d(gd[i], wd[i])) fail_msg("%s err_rows n=%d row %d: sum %d %.17g vs %.17g", isa, n, r, i, gd[i], wd[i]);
        if (!same_f(gf[i], wf[i])) fail_msg("%s err_rows n=%d row %d: range %d %.9g vs %.9g", isa, n, r, i, gf[i], wf[i]);
    }
}

static void test_err_rows(void **state)
{
    (void)state;
    for (int k = 0; k < NISA; k++) {
        const qb_kernel_table *t = qb_kernels_for(isas[k]);
        if (!t) continue;
        for (int li = 0; li < NLEN; li++) {
            const int n = lengths[li];
            const size_t ld = (size_t)n + 3; /* rows apart by more than their length */
            float *x = malloc(ld * QB_ERR_ROWS * sizeof *x), *y = malloc(ld * QB_ERR_ROWS * sizeof *y);
            for (size_t i = 0; i < ld * QB_ERR_ROWS; i++) {
                x[i] = odd_value();
                switch (next() % 4) {
                case 0: y[i] = x[i]; break;                      /* exact: zero errors */
                case 1: y[i] = x[i] * 1e-9f * frand(); break;    /* e = x − y not exact in double, */
                default: y[i] = odd_value(); break;              /* so e·e is rounded: no fma */
                }
            }
            for (int nr = 1; nr <= QB_ERR_ROWS; nr++) {
                qb_err_acc want[QB_ERR_ROWS], got[QB_ERR_ROWS];
                for (int r = 0; r < nr; r++) {
                    qb_err_acc_init(&want[r]);
                    if (r == 1) want[r].sxx = 0.25, want[r].maxe = 3.0, want[r].xlo = -2.0f; /* continued */
                    got[r] = want[r];
                }
                qb_err_rows_ref(n, x + 1, ld, y + 2, ld, nr, want);
                t->err_rows(n, x + 1, ld, y + 2, ld, nr, got);
                for (int r = 0; r < nr; r++) expect_acc(&got[r], &want[r], isas[k], n, r);
            }
            free(x);
            free(y);
        }
    }
}

/* Values for a grid: on and next to the edges, NaN, infinities, inside. */
static float grid_value(const qb_bin_grid *g)
{
    const float lo = (float)g->lo, hi = (float)g->hi;
    switch (next() % 16) {
    case 0: return lo;
    case 1: return hi;
    case 2: return nextafterf(lo, -INFINITY);
    case 3: return nextafterf(hi, INFINITY);
    case 4: return nextafterf(lo, INFINITY);
    case 5: return NAN;
    case 6: return next() % 2 ? INFINITY : -INFINITY;
    case 7: { /* an interior bin edge */
        const int b = (int)(next() % (uint64_t)g->bins);
        return (float)(g->lo + b / g->k);
    }
    default: return (float)(g->lo + (g->hi - g->lo) * (frand() * 0.6 + 0.5));
    }
}

static void test_hist_slots(void **state)
{
    (void)state;
    const qb_bin_grid grids[] = {
        {-1.0, 1.0, 64 / 2.0, 64},
        {0.1, 0.7, 50 / 0.6, 50},            /* edges no f32 holds */
        {-3e-5, 2.5e-5, 7 / 5.5e-5, 7},
        {-1e300, 1e300, 1 / 2e300 * 3, 3},   /* beyond f32 */
        {0.0, 1e-30, (1 << 20) / 1e-30, 1 << 20},
        {0.0, 1e-40, 1e300, 1 << 20},        /* products beyond int: the last bin */
        {-2.0, -1.0, 1.0, 1},
    };
    for (int k = 0; k < NISA; k++) {
        const qb_kernel_table *t = qb_kernels_for(isas[k]);
        if (!t) continue;
        for (size_t gi = 0; gi < sizeof grids / sizeof grids[0]; gi++) {
            const qb_bin_grid *g = &grids[gi];
            for (int li = 0; li < NLEN; li++) {
                const int n = lengths[li];
                float *a = malloc(((size_t)n + 1) * sizeof *a), *b = malloc(((size_t)n + 1) * sizeof *b);
                uint32_t *want = malloc((size_t)n * sizeof *want), *got = malloc((size_t)n * sizeof *got);
                for (int i = 0; i <= n; i++) {
                    a[i] = grid_value(g);
                    b[i] = next() % 2 ? 0.0f : a[i] - grid_value(g); /* a − b: another grid value */
                }
                for (int diff = 0; diff < 2; diff++) {
                    const float *bb = diff ? b + 1 : NULL;
                    qb_hist_slots_ref(n, a + 1, bb, g, want);
                    t->hist_slots(n, a + 1, bb, g, got);
                    for (int i = 0; i < n; i++)
                        if (got[i] != want[i])
                            fail_msg("%s hist_slots grid %zu n=%d diff=%d: v[%d]=%.9g slot %u vs %u", isas[k], gi, n,
                                     diff, i, diff ? (double)(a[i + 1] - b[i + 1]) : (double)a[i + 1], got[i], want[i]);
                }
                free(a);
                free(b);
                free(want);
                free(got);
            }
        }
    }
}

/* mul_f32 (the weighted analysis's row scaling): bit for bit the reference at every length and
 * offset (unaligned starts), with odd values on both sides; nothing written past n. */
static void test_mul_f32(void **state)
{
    (void)state;
    for (int k = 0; k < NISA; k++) {
        const qb_kernel_table *t = qb_kernels_for(isas[k]);
        if (!t) continue;
        for (int li = 0; li < NLEN; li++) {
            const int n = lengths[li];
            float *a = malloc(((size_t)n + 2) * sizeof *a), *b = malloc(((size_t)n + 2) * sizeof *b);
            float *want = malloc(((size_t)n + 1) * sizeof *want), *got = malloc(((size_t)n + 1) * sizeof *got);
            assert_true(a && b && want && got);
            for (int i = 0; i < n + 2; i++) {
                a[i] = odd_value();
                b[i] = next() % 4 ? frand() * 2 : odd_value();
            }
            for (int off = 0; off < 2; off++) {
                got[n] = 12345.0f;
                qb_mul_f32_ref(n, a + off, b + 1, want);
                t->mul_f32(n, a + off, b + 1, got);
                for (int i = 0; i < n; i++)
                    if (!same_f(got[i], want[i]))
                        fail_msg("%s mul_f32 n=%d off=%d: [%d] %.9g vs %.9g", isas[k], n, off, i, got[i], want[i]);
                if (got[n] != 12345.0f) fail_msg("%s mul_f32 n=%d wrote past the end", isas[k], n);
            }
            free(a);
            free(b);
            free(want);
            free(got);
        }
    }
}

static void test_hist_slots2_and_map(void **state)
{
    (void)state;
    const qb_bin_grid g = {0.1, 0.7, 50 / 0.6, 50}, ge = {-0.05, 0.03, 64 / 0.08, 64};
    const qb_bin_grid gm = {0.1, 0.7, 511 / 0.6, 511};
    for (int k = 0; k < NISA; k++) {
        const qb_kernel_table *t = qb_kernels_for(isas[k]);
        if (!t) continue;
        for (int li = 0; li < NLEN; li++) {
            const int n = lengths[li];
            float *x = malloc(((size_t)n + 1) * sizeof *x), *y = malloc(((size_t)n + 1) * sizeof *y);
            for (int i = 0; i <= n; i++) {
                x[i] = grid_value(&g);
                y[i] = next() % 3 ? x[i] + grid_value(&ge) * 0.5f : grid_value(&g);
            }
            uint32_t *w1 = malloc((size_t)n * 4), *w2 = malloc((size_t)n * 4), *g1 = malloc((size_t)n * 4),
                     *g2 = malloc((size_t)n * 4);
            qb_hist_slots2_ref(n, x + 1, y + 1, &g, &ge, w1, w2);
            t->hist_slots2(n, x + 1, y + 1, &g, &ge, g1, g2);
            for (int i = 0; i < n; i++)
                if (g1[i] != w1[i] || g2[i] != w2[i])
                    fail_msg("%s hist_slots2 n=%d: [%d] %u,%u vs %u,%u", isas[k], n, i, g1[i], g2[i], w1[i], w2[i]);
            /* bucket minima: empty (+inf), at a bucket's edge, some value of the data */
            float bx[511];
            for (int b = 0; b < 511; b++) {
                switch (next() % 3) {
                case 0: bx[b] = INFINITY; break;
                case 1: bx[b] = (float)(gm.lo + b / gm.k); break;
                default: bx[b] = x[1 + next() % (uint64_t)n]; break;
                }
            }
            int32_t *wi = malloc((size_t)n * 4), *gi = malloc((size_t)n * 4);
            const int wn = qb_map_filter_ref(n, x + 1, &gm, bx, wi), gn = t->map_filter(n, x + 1, &gm, bx, gi);
            if (gn != wn) fail_msg("%s map_filter n=%d: %d candidates vs %d", isas[k], n, gn, wn);
            for (int i = 0; i < wn; i++)
                if (gi[i] != wi[i]) fail_msg("%s map_filter n=%d: candidate %d is %d vs %d", isas[k], n, i, gi[i], wi[i]);
            free(x);
            free(y);
            free(w1);
            free(w2);
            free(g1);
            free(g2);
            free(wi);
            free(gi);
        }
    }
}

/* A random finite f16 scale of either sign. */
static uint16_t f16_scale(void) { return qb_f32_to_f16(frand() * 0.01f); }

typedef struct {
    int type;
    size_t d[2]; /* offsets of the f16 scale fields (SIZE_MAX: none) */
} type_case;

static void test_dequant_ggml(void **state)
{
    (void)state;
    const type_case cases[] = {
        {QB_TYPE_Q4_0, {offsetof(qb_block_q4_0, d), SIZE_MAX}},
        {QB_TYPE_Q4_1, {offsetof(qb_block_q4_1, d), offsetof(qb_block_q4_1, m)}},
        {QB_TYPE_Q5_0, {offsetof(qb_block_q5_0, d), SIZE_MAX}},
        {QB_TYPE_Q5_1, {offsetof(qb_block_q5_1, d), offsetof(qb_block_q5_1, m)}},
        {QB_TYPE_Q8_0, {offsetof(qb_block_q8_0, d), SIZE_MAX}},
        {QB_TYPE_IQ4_NL, {offsetof(qb_block_iq4_nl, d), SIZE_MAX}},
        {QB_TYPE_Q2_K, {offsetof(qb_block_q2_K, d), offsetof(qb_block_q2_K, dmin)}},
        {QB_TYPE_Q3_K, {offsetof(qb_block_q3_K, d), SIZE_MAX}},
        {QB_TYPE_Q4_K, {offsetof(qb_block_q4_K, d), offsetof(qb_block_q4_K, dmin)}},
        {QB_TYPE_Q5_K, {offsetof(qb_block_q5_K, d), offsetof(qb_block_q5_K, dmin)}},
        {QB_TYPE_Q6_K, {offsetof(qb_block_q6_K, d), SIZE_MAX}},
        {QB_TYPE_IQ4_XS, {offsetof(qb_block_iq4_xs, d), SIZE_MAX}},
        {QB_TYPE_IQ2_XXS, {offsetof(qb_block_iq2_xxs, d), SIZE_MAX}},
        {QB_TYPE_IQ2_XS, {offsetof(qb_block_iq2_xs, d), SIZE_MAX}},
        {QB_TYPE_IQ2_S, {offsetof(qb_block_iq2_s, d), SIZE_MAX}},
        {QB_TYPE_IQ1_S, {offsetof(qb_block_iq1_s, d), SIZE_MAX}},
        {QB_TYPE_IQ1_M, {SIZE_MAX, SIZE_MAX}}, /* its scale is spread over four words: random bytes */
        {QB_TYPE_Q8_K, {SIZE_MAX, SIZE_MAX}},
        {QB_TYPE_F16, {SIZE_MAX, SIZE_MAX}}, /* random bytes: signaling NaN halves too */
        {QB_TYPE_BF16, {SIZE_MAX, SIZE_MAX}},
    };
    static const int nblocks[] = {1, 2, 3, 5, 7, 17, 33};
    for (int k = 0; k < NISA; k++) {
        const qb_kernel_table *t = qb_kernels_for(isas[k]);
        if (!t) continue;
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            const qb_type_info *ti = qb_type_get(cases[c].type);
            for (size_t bi = 0; bi < sizeof nblocks / sizeof nblocks[0]; bi++) {
                const int64_t nb = nblocks[bi], n = nb * ti->blck;
                const size_t bytes = (size_t)nb * (size_t)ti->size;
                uint8_t *q = malloc(bytes + 1);
                for (size_t i = 0; i <= bytes; i++) q[i] = (uint8_t)next();
                for (int64_t b = 0; b < nb; b++)
                    for (int f = 0; f < 2; f++)
                        if (cases[c].d[f] != SIZE_MAX) {
                            const uint16_t h = f16_scale();
                            memcpy(q + 1 + (size_t)b * (size_t)ti->size + cases[c].d[f], &h, 2);
                        }
                if (cases[c].type == QB_TYPE_Q8_K)
                    for (int64_t b = 0; b < nb; b++) {
                        const float d = frand();
                        memcpy(q + 1 + (size_t)b * (size_t)ti->size, &d, 4);
                    }
                float *want = malloc((size_t)n * sizeof *want), *got = malloc((size_t)n * sizeof *got);
                assert_true(qb_dequant_row_ref(cases[c].type, q + 1, want, n));
                assert_true(t->dequant_row(cases[c].type, q + 1, got, n));
                for (int64_t i = 0; i < n; i++)
                    if (!same_f(got[i], want[i]))
                        fail_msg("%s dequant %s nb=%lld: y[%lld] %.9g vs %.9g", isas[k], ti->name, (long long)nb,
                                 (long long)i, got[i], want[i]);
                free(q);
                free(want);
                free(got);
            }
        }
        { /* every half, signaling NaNs included */
            uint16_t *h = malloc(65536 * sizeof *h);
            float *want = malloc(65536 * sizeof *want), *got = malloc(65536 * sizeof *got);
            for (int i = 0; i < 65536; i++) h[i] = (uint16_t)i;
            for (int ty = 0; ty < 2; ty++) {
                const int type = ty ? QB_TYPE_BF16 : QB_TYPE_F16;
                assert_true(qb_dequant_row_ref(type, h, want, 65536));
                assert_true(t->dequant_row(type, h, got, 65535)); /* an odd length: the tail too */
                got[65535] = want[65535];
                if (memcmp(got, want, 65536 * sizeof *got) != 0) fail_msg("%s dequant %s: all halves", isas[k], ty ? "BF16" : "F16");
            }
            free(h);
            free(want);
            free(got);
        }
        float y[32];
        assert_false(t->dequant_row(QB_TYPE_Q4_0, NULL, y, 31)); /* not a whole block */
        assert_false(t->dequant_row(QB_TYPE_Q8_1, NULL, y, 32)); /* no dequantizer */
    }
}

static void test_dequant_int(void **state)
{
    (void)state;
    static const int groups[] = {QB_GROUP_TENSOR, QB_GROUP_CHANNEL, 32, 64, 128, 256};
    for (int k = 0; k < NISA; k++) {
        const qb_kernel_table *t = qb_kernels_for(isas[k]);
        if (!t) continue;
        for (int bits = 2; bits <= 8; bits++)
            for (size_t gi = 0; gi < sizeof groups / sizeof groups[0]; gi++)
                for (int asym = 0; asym < 2; asym++)
                    for (int li = 0; li < NLEN; li++) {
                        const int group = groups[gi];
                        const int64_t n = group > 0 ? (int64_t)group * (1 + li % 5) : lengths[li];
                        const size_t rb = qb_int_row_bytes(bits, group, asym, n);
                        float *x = malloc((size_t)n * sizeof *x);
                        for (int64_t i = 0; i < n; i++) x[i] = frand() * (i % 7 == 0 ? 4.0f : 1.0f);
                        /* the row exactly as long as it is: a read past it would show in ASan */
                        uint8_t *q = malloc(rb);
                        const float range[2] = {-4.0f, 3.0f};
                        qb_quant_row_int_ref(bits, group, asym, x, q, n, group == QB_GROUP_TENSOR ? range : NULL);
                        float *want = malloc((size_t)n * sizeof *want), *got = malloc((size_t)n * sizeof *got);
                        qb_dequant_row_int_ref(bits, group, asym, q, want, n);
                        t->dequant_int(bits, group, asym, q, got, n);
                        for (int64_t i = 0; i < n; i++)
                            if (!same_f(got[i], want[i]))
                                fail_msg("%s dequant int%d g%d %s n=%lld: y[%lld] %.9g vs %.9g", isas[k], bits, group,
                                         asym ? "asym" : "sym", (long long)n, (long long)i, got[i], want[i]);
                        free(x);
                        free(q);
                        free(want);
                        free(got);
                    }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_rows),
        cmocka_unit_test(test_hist_slots),
        cmocka_unit_test(test_hist_slots2_and_map),
        cmocka_unit_test(test_mul_f32),
        cmocka_unit_test(test_dequant_ggml),
        cmocka_unit_test(test_dequant_int),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
