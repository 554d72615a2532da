/* test-train-kernels.c — the training pass's kernels (kernels.h): gemm_f32, attn_softmax_row,
 * attn_dscore_row, glu and glu_bw. Each scalar reference against the same arithmetic in double; every SIMD
 * table against the reference at awkward sizes: products of 1..13, 24, 25 rows by 1..129
 * columns over k = 0..300 (past the vector kernels' 256-step chunks), A read as a matrix and as
 * a transpose, rows an odd number of floats apart, written and accumulated; softmax rows of
 * 1..67, 130 and 300 scores, flat and peaked, soft-capped or not; score gradients with and
 * without the cap's derivative, in place and not; the gate (SiLU, GELU-tanh) and its gradients
 * over 1..67 and 1000 elements, saturated and beyond exp's range too. Nothing past a product's
 * m × n corner or a row's n values is written. */
#include "testutil.h"
#include <math.h>

#include "core/qb.h"
#include "kernels.h"

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static float frand(void) /* uniform in [-1, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static const char *const simd_isas[] = {"avx2", "avx512", "avx512vnni"};
#define N_SIMD 3
#define SENTINEL -7.25f

/* ---- gemm_f32 ----------------------------------------------------------------------------- */

static const int gm_m[] = {1, 2, 3, 5, 6, 7, 11, 13, 24, 25};
static const int gm_n[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 48, 63, 64, 65, 80, 100, 128, 129};
static const int gm_k[] = {0, 1, 2, 5, 16, 64, 127, 128, 129, 255, 256, 257, 300};
#define LEN(a) (int)(sizeof a / sizeof a[0])

static void test_gemm(void **state)
{
    (void)state;
    const qb_kernel_table *ref = qb_kernels_for("ref");
    assert_non_null(ref->gemm_f32);
    int checked = 0;
    for (int mi = 0; mi < LEN(gm_m); mi++)
        for (int ni = 0; ni < LEN(gm_n); ni++)
            for (int ki = 0; ki < LEN(gm_k); ki++)
                for (int form = 0; form < 4; form++) {
                    const int m = gm_m[mi], n = gm_n[ni], k = gm_k[ki];
                    const bool transposed = form & 1, accumulate = form & 2;
                    /* A: m × k as rows (m, k + 3) or its transpose stored (k, m + 2); B (k, n + 5);
                     * C (m + 1, n + 4), the extra row and columns sentinels */
                    const size_t ars = transposed ? 1 : (size_t)k + 3, acs = transposed ? (size_t)m + 2 : 1;
                    const size_t asz = transposed ? (size_t)(k ? k : 1) * acs : (size_t)m * ars;
                    const size_t ldb = (size_t)n + 5, ldc = (size_t)n + 4, csz = (size_t)(m + 1) * ldc;
                    float *a = malloc(asz * sizeof *a), *b = malloc(((size_t)k + 1) * ldb * sizeof *b);
                    float *c0 = malloc(csz * sizeof *c0), *want = malloc(csz * sizeof *want), *got = malloc(csz * sizeof *got);
                    double *bound = malloc((size_t)m * n * sizeof *bound);
                    for (size_t i = 0; i < asz; i++) a[i] = frand();
                    for (size_t i = 0; i < ((size_t)k + 1) * ldb; i++) b[i] = frand();
                    for (size_t i = 0; i < csz; i++) c0[i] = SENTINEL;
                    for (int r = 0; r < m; r++)
                        for (int j = 0; j < n; j++) c0[(size_t)r * ldc + j] = frand();
                    /* the reference against double: each element within k roundings of Σ|a·b| */
                    memcpy(want, c0, csz * sizeof *want);
                    ref->gemm_f32(m, n, k, a, ars, acs, b, ldb, want, ldc, accumulate);
                    for (int r = 0; r < m; r++)
                        for (int j = 0; j < n; j++) {
                            double s = accumulate ? c0[(size_t)r * ldc + j] : 0, mag = fabs(s);
                            for (int p = 0; p < k; p++) {
                                const double t = (double)a[r * ars + p * acs] * b[(size_t)p * ldb + j];
                                s += t;
                                mag += fabs(t);
                            }
                            bound[(size_t)r * n + j] = 1.2e-7 * (k + 1) * mag + 1e-30;
                            if (fabs(want[(size_t)r * ldc + j] - s) > bound[(size_t)r * n + j])
                                fail_msg("ref gemm m=%d n=%d k=%d form=%d C[%d][%d]: %.9g vs double %.9g", m, n, k, form, r,
                                         j, want[(size_t)r * ldc + j], s);
                        }
                    for (int s = 0; s < N_SIMD; s++) {
                        const qb_kernel_table *t = qb_kernels_for(simd_isas[s]);
                        if (!t) continue;
                        assert_non_null(t->gemm_f32);
                        memcpy(got, c0, csz * sizeof *got);
                        t->gemm_f32(m, n, k, a, ars, acs, b, ldb, got, ldc, accumulate);
                        for (int r = 0; r <= m; r++)
                            for (int j = 0; j < (int)ldc; j++) {
                                const size_t at = (size_t)r * ldc + j;
                                if (r == m || j >= n) {
                                    if (got[at] != SENTINEL)
                                        fail_msg("%s gemm m=%d n=%d k=%d form=%d wrote C[%d][%d]", simd_isas[s], m, n, k,
                                                 form, r, j);
                                } else if (fabs(got[at] - want[at]) > 2 * bound[(size_t)r * n + j])
                                    fail_msg("%s gemm m=%d n=%d k=%d form=%d C[%d][%d]: %.9g vs reference %.9g",
                                             simd_isas[s], m, n, k, form, r, j, got[at], want[at]);
                            }
                        checked++;
                    }
                    free(a), free(b), free(c0), free(want), free(got), free(bound);
                }
    print_message("gemm_f32: %d products matched the reference\n", checked);
}

/* ---- attn_softmax_row --------------------------------------------------------------------- */

/* the softmax of z_j = s_j·scale (capped) in double; tol[j]: how far the f32 arithmetic may
 * be from it, relative: roundings of z_j and the maximum (an absolute error of a few ulps of
 * each, which exp turns into a relative one) and of the sum */
static void softmax_double(int n, const float *s, float scale, float softcap, double *out, double *tol)
{
    double mx = -INFINITY, sum = 0;
    for (int j = 0; j < n; j++) {
        double z = (double)s[j] * scale;
        if (softcap > 0) z = softcap * tanh(z / softcap);
        out[j] = z;
        mx = fmax(mx, z);
    }
    for (int j = 0; j < n; j++) {
        tol[j] = 1e-6 + 3e-7 * (fabs(out[j]) + fabs(mx));
        sum += out[j] = exp(out[j] - mx);
    }
    for (int j = 0; j < n; j++) out[j] /= sum;
}

static void test_softmax_row(void **state)
{
    (void)state;
    const qb_kernel_table *ref = qb_kernels_for("ref");
    assert_non_null(ref->attn_softmax_row);
    int checked = 0;
    for (int n = 1; n <= 300; n = n < 67 ? n + 1 : n == 67 ? 130 : 300 + (n == 300))
        for (int variant = 0; variant < 4; variant++) {
            const bool peaked = variant & 1;
            const float softcap = variant & 2 ? 3.0f : 0.0f, scale = peaked ? 6.0f : 0.125f;
            float *s = malloc((size_t)(n + 4) * sizeof *s), *want = malloc((size_t)(n + 4) * sizeof *want);
            float *got = malloc((size_t)(n + 4) * sizeof *got);
            double *exact = malloc((size_t)n * sizeof *exact), *tol = malloc((size_t)n * sizeof *tol);
            for (int j = 0; j < n; j++) s[j] = 4.0f * frand();
            for (int j = n; j < n + 4; j++) s[j] = SENTINEL;
            softmax_double(n, s, scale, softcap, exact, tol);
            memcpy(want, s, (size_t)(n + 4) * sizeof *want);
            ref->attn_softmax_row(n, want, scale, softcap);
            for (int j = 0; j < n; j++)
                if (fabs(want[j] - exact[j]) > tol[j] * exact[j] + 1e-38)
                    fail_msg("ref softmax n=%d scale=%g cap=%g p[%d]: %.9g vs double %.9g", n, scale, softcap, j, want[j],
                             exact[j]);
            for (int t = 0; t < N_SIMD; t++) {
                const qb_kernel_table *k = qb_kernels_for(simd_isas[t]);
                if (!k) continue;
                assert_non_null(k->attn_softmax_row);
                memcpy(got, s, (size_t)(n + 4) * sizeof *got);
                k->attn_softmax_row(n, got, scale, softcap);
                for (int j = n; j < n + 4; j++)
                    if (got[j] != SENTINEL) fail_msg("%s softmax n=%d wrote s[%d]", simd_isas[t], n, j);
                for (int j = 0; j < n; j++) /* the sum's order only: a rounding of each quotient */
                    if (fabs(got[j] - want[j]) > 2.4e-7 * want[j] + 1e-38)
                        fail_msg("%s softmax n=%d scale=%g cap=%g p[%d]: %.9g vs reference %.9g", simd_isas[t], n, scale,
                                 softcap, j, got[j], want[j]);
                checked++;
            }
            free(s), free(want), free(got), free(exact), free(tol);
        }
    print_message("attn_softmax_row: %d rows matched the reference\n", checked);
}

/* ---- attn_dscore_row ---------------------------------------------------------------------- */

static void test_dscore_row(void **state)
{
    (void)state;
    const qb_kernel_table *ref = qb_kernels_for("ref");
    assert_non_null(ref->attn_dscore_row);
    int checked = 0;
    for (int n = 1; n <= 130; n = n < 67 ? n + 1 : 130 + (n == 130))
        for (int variant = 0; variant < 4; variant++) {
            const float softcap = variant & 1 ? 2.5f : 0.0f, scale = 0.3f;
            const bool in_place = variant & 2;
            float *p = malloc((size_t)n * sizeof *p), *dp = malloc((size_t)(n + 4) * sizeof *dp);
            float *s = malloc((size_t)n * sizeof *s), *want = malloc((size_t)(n + 4) * sizeof *want);
            float *got = malloc((size_t)(n + 4) * sizeof *got);
            double psum = 0;
            for (int j = 0; j < n; j++) psum += p[j] = 0.05f + fabsf(frand());
            for (int j = 0; j < n; j++) p[j] = (float)(p[j] / psum);
            for (int j = 0; j < n; j++) dp[j] = 3.0f * frand(), s[j] = 8.0f * frand();
            for (int j = n; j < n + 4; j++) dp[j] = SENTINEL;
            double row = 0, mag = 0;
            for (int j = 0; j < n; j++) row += (double)p[j] * dp[j], mag += fabs((double)p[j] * dp[j]);
            /* the reference against double */
            for (int j = 0; j < n + 4; j++) want[j] = SENTINEL;
            ref->attn_dscore_row(n, p, dp, softcap > 0 ? s : NULL, scale, softcap, want);
            for (int j = 0; j < n; j++) {
                double g = p[j] * (dp[j] - row) * scale;
                if (softcap > 0) {
                    const double t = tanh((double)s[j] * scale / softcap);
                    g *= 1 - t * t;
                }
                if (fabs(want[j] - g) > 3e-7 * p[j] * scale * (fabs(dp[j]) + mag) + 1e-30)
                    fail_msg("ref dscore n=%d cap=%g ds[%d]: %.9g vs double %.9g", n, softcap, j, want[j], g);
            }
            for (int t = 0; t < N_SIMD; t++) {
                const qb_kernel_table *k = qb_kernels_for(simd_isas[t]);
                if (!k) continue;
                assert_non_null(k->attn_dscore_row);
                float *out = got;
                if (in_place) memcpy(got, dp, (size_t)(n + 4) * sizeof *got);
                else
                    for (int j = 0; j < n + 4; j++) got[j] = SENTINEL;
                k->attn_dscore_row(n, p, in_place ? got : dp, softcap > 0 ? s : NULL, scale, softcap, out);
                for (int j = n; j < n + 4; j++)
                    if (got[j] != SENTINEL) fail_msg("%s dscore n=%d wrote ds[%d]", simd_isas[t], n, j);
                for (int j = 0; j < n; j++) /* the double sum's order only */
                    if (fabs(got[j] - want[j]) > 1.2e-7 * p[j] * scale * (fabs(dp[j]) + mag) + 1e-30)
                        fail_msg("%s dscore n=%d cap=%g%s ds[%d]: %.9g vs reference %.9g", simd_isas[t], n, softcap,
                                 in_place ? " in place" : "", j, got[j], want[j]);
                checked++;
            }
            free(p), free(dp), free(s), free(want), free(got);
        }
    print_message("attn_dscore_row: %d rows matched the reference\n", checked);
}

/* ---- glu, glu_bw -------------------------------------------------------------------------- */

/* act(x) and act'(x) in double */
static void act_double(bool gelu, double x, double *a, double *da)
{
    if (gelu) {
        const double k = 0.7978845608, c = 0.044715, th = tanh(k * (x + c * x * x * x));
        *a = 0.5 * x * (1 + th);
        *da = 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * k * (1 + 3 * c * x * x);
    } else {
        const double s = 1 / (1 + exp(-x));
        *a = x * s;
        *da = s * (1 + x * (1 - s));
    }
}

static void test_glu(void **state)
{
    (void)state;
    const qb_kernel_table *ref = qb_kernels_for("ref");
    assert_non_null(ref->glu);
    assert_non_null(ref->glu_bw);
    int checked = 0;
    for (int n = 1; n <= 1000; n = n < 67 ? n + 1 : 1000 + (n == 1000))
        for (int variant = 0; variant < 6; variant++) {
            /* SiLU / GELU; both gradients, dg only, du only */
            const bool gelu = variant & 1;
            const int which = variant / 2;
            const size_t sz = (size_t)n + 4;
            float *g = malloc(sz * sizeof *g), *u = malloc(sz * sizeof *u), *dh = malloc(sz * sizeof *dh);
            float *h_ref = malloc(sz * sizeof *h_ref), *h = malloc(sz * sizeof *h);
            float *dg0 = malloc(sz * sizeof *dg0), *du0 = malloc(sz * sizeof *du0);
            float *dg_ref = malloc(sz * sizeof *dg_ref), *du_ref = malloc(sz * sizeof *du_ref);
            float *dg = malloc(sz * sizeof *dg), *du = malloc(sz * sizeof *du);
            for (int i = 0; i < n; i++) {
                /* mostly the gate's range, and the saturated ends and beyond exp's range */
                static const float edge[] = {0.0f, -0.0f, 1e-30f, -1e-20f, 30.0f, -30.0f, 87.5f, -87.5f, 95.0f, -95.0f, 300.0f, -300.0f};
                g[i] = i % 17 == 16 ? edge[(i / 17) % 12] : 6.0f * frand();
                u[i] = frand(), dh[i] = frand(), dg0[i] = frand(), du0[i] = frand();
            }
            for (int i = n; i < n + 4; i++) g[i] = u[i] = dh[i] = dg0[i] = du0[i] = h_ref[i] = SENTINEL;
            memcpy(dg_ref, dg0, sz * sizeof *dg_ref);
            memcpy(du_ref, du0, sz * sizeof *du_ref);
            ref->glu(gelu, (size_t)n, g, u, h_ref);
            ref->glu_bw(gelu, (size_t)n, g, u, dh, which != 2 ? dg_ref : NULL, which != 1 ? du_ref : NULL);
            /* the reference against double, and where the vector versions may differ from it:
             * 6 ulps of act (libm's exp against the polynomial, both within about 2; measured 4)
             * and of act', with absolute terms where the arithmetic cancels (GELU's 1 + tanh
             * near −1 in the reference; act' near its zeros) */
            double *tol_a = malloc((size_t)n * sizeof *tol_a), *tol_d = malloc((size_t)n * sizeof *tol_d);
            for (int i = 0; i < n; i++) {
                double a, da;
                act_double(gelu, g[i], &a, &da);
                tol_a[i] = 3.6e-7 * fabs(a) + (gelu ? 1.2e-7 * fabs((double)g[i]) : 0) + 1e-30;
                tol_d[i] = 3.6e-7 * fabs(da) + 1.2e-7 * (1 + fabs((double)g[i]) * (gelu ? 1 + 0.2 * g[i] * g[i] : 1));
                const double want_h = a * u[i];
                if (fabs(h_ref[i] - want_h) > 3 * tol_a[i] * fabs(u[i]) + 1e-30)
                    fail_msg("ref glu %s n=%d h[%d] (g=%g): %.9g vs double %.9g", gelu ? "gelu" : "silu", n, i, g[i], h_ref[i], want_h);
                if (which != 2 && fabs(dg_ref[i] - (dg0[i] + dh[i] * u[i] * da)) > 3 * tol_d[i] * fabs(dh[i] * u[i]) + 2.4e-7 * fabs(dg0[i]) + 1e-30)
                    fail_msg("ref glu_bw %s n=%d dg[%d] (g=%g): %.9g vs double %.9g", gelu ? "gelu" : "silu", n, i, g[i],
                             dg_ref[i], dg0[i] + dh[i] * u[i] * da);
                if (which != 1 && fabs(du_ref[i] - (du0[i] + dh[i] * a)) > 3 * tol_a[i] * fabs(dh[i]) + 2.4e-7 * fabs(du0[i]) + 1e-30)
                    fail_msg("ref glu_bw %s n=%d du[%d] (g=%g): %.9g vs double %.9g", gelu ? "gelu" : "silu", n, i, g[i],
                             du_ref[i], du0[i] + dh[i] * a);
            }
            for (int t = 0; t < N_SIMD; t++) {
                const qb_kernel_table *k = qb_kernels_for(simd_isas[t]);
                if (!k) continue;
                assert_non_null(k->glu);
                assert_non_null(k->glu_bw);
                for (size_t i = 0; i < sz; i++) h[i] = SENTINEL;
                memcpy(dg, dg0, sz * sizeof *dg);
                memcpy(du, du0, sz * sizeof *du);
                k->glu(gelu, (size_t)n, g, u, h);
                k->glu_bw(gelu, (size_t)n, g, u, dh, which != 2 ? dg : NULL, which != 1 ? du : NULL);
                for (int i = n; i < n + 4; i++)
                    if (h[i] != SENTINEL || dg[i] != SENTINEL || du[i] != SENTINEL)
                        fail_msg("%s glu n=%d wrote past n at %d", simd_isas[t], n, i);
                for (int i = 0; i < n; i++) {
                    const char *act = gelu ? "gelu" : "silu";
                    if (fabs(h[i] - h_ref[i]) > tol_a[i] * fabs(u[i]) + 1e-30)
                        fail_msg("%s glu %s n=%d h[%d] (g=%g): %.9g vs reference %.9g", simd_isas[t], act, n, i, g[i], h[i], h_ref[i]);
                    if (fabs(dg[i] - dg_ref[i]) > tol_d[i] * fabs(dh[i] * u[i]) + 2.4e-7 * fabs(dg0[i]) + 1e-30)
                        fail_msg("%s glu_bw %s n=%d dg[%d] (g=%g): %.9g vs reference %.9g", simd_isas[t], act, n, i, g[i], dg[i],
                                 dg_ref[i]);
                    if (fabs(du[i] - du_ref[i]) > tol_a[i] * fabs(dh[i]) + 2.4e-7 * fabs(du0[i]) + 1e-30)
                        fail_msg("%s glu_bw %s n=%d du[%d] (g=%g): %.9g vs reference %.9g", simd_isas[t], act, n, i, g[i], du[i],
                                 du_ref[i]);
                }
                checked++;
            }
            free(g), free(u), free(dh), free(h_ref), free(h), free(dg0), free(du0), free(dg_ref), free(du_ref), free(dg), free(du);
            free(tol_a), free(tol_d);
        }
    print_message("glu / glu_bw: %d calls matched the reference\n", checked);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_gemm), cmocka_unit_test(test_softmax_row),
                                       cmocka_unit_test(test_dscore_row), cmocka_unit_test(test_glu)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
