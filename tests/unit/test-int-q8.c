/* test-int-q8.c — the integer path of the INT formats (kernels' int_tile_q8: weight codes times
 * 8-bit activations, fmt_int_q8_*.c):
 *   - the scalar spec against the real arithmetic: dequantized weights (qb_dequantize_row) times
 *     dequantized Q8_0 activations, summed in double, within 1e-5 of the sum of |terms|;
 *   - every vector table this CPU runs against the spec, nr = 1..4 weight rows × nc = 1..4
 *     tokens, rows an odd number of bytes apart, n = 32·k for k = 1, 2, 3, 5, 7, 15, 17, 31,
 *     33, 63, 65, 127 (groups 32..256 where they divide n), bits 2..8, sym and asym, per
 *     tensor / channel / group, rows with extreme values (one huge outlier, all zeros, all
 *     positive, all negative), nothing outside the tile written;
 *   - the activation layout: qb_int_act_from_q8_0 keeps the Q8_0 numbers and sums of 4;
 *   - the one-token kernel (int_gemv: 4-bit groups of 128/256 or per row, 8-bit) against the
 *     spec at its shapes, on the same extreme rows. */
#include "testutil.h"
#include <math.h>

#include "core/qb.h"
#include "core/quant/format.h"
#include "kernels.h"
#include "fmt.h"
#include "blocks.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void) { return qbt_frand(&rng); }

static const char *isas[] = {"avx2", "avx512", "avx512vnni"};
#define NISA (int)(sizeof isas / sizeof isas[0])
static const int nblocks[] = {1, 2, 3, 5, 7, 15, 17, 31, 33, 63, 65, 127};
#define NLEN (int)(sizeof nblocks / sizeof nblocks[0])

/* Weight row r of 4 (n values): r = 0 plain random, 1 random with one huge outlier and a zero
 * group, 2 all positive, 3 all negative (asym zero points at both ends of the grid). */
static void weight_rows(float *w, int n)
{
    for (int i = 0; i < n; i++) {
        w[i] = frand();
        w[n + i] = i < 32 ? 0.0f : 0.1f * frand();
        w[2 * n + i] = 0.5f + 0.5f * frand();
        w[3 * n + i] = -1.0f - frand() * frand();
    }
    w[n + n - 1] = 300.0f;
}

/* Token c of 4: random, with a huge outlier, all zeros in the first block, tiny values. */
static void act_rows(float *x, int n)
{
    for (int i = 0; i < n; i++) {
        x[i] = frand();
        x[n + i] = 0.01f * frand();
        x[2 * n + i] = i < 32 ? 0.0f : 3.0f * frand();
        x[3 * n + i] = 1e-3f * frand();
    }
    x[n + n / 2] = -1000.0f;
}

static int gemv_calls; /* int_gemv calls checked by check_format */

/* Check the tile (and the one-token kernel) of one format at one length; returns the number of
 * vector calls checked. */
static int check_format(const char *name, int n)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_format f;
    assert_int_equal(qb_format_parse(&ctx, name, &f), QB_OK);
    const qb_fmt_params p = {.bits = f.bits, .group = f.group, .asym = f.asym};
    assert_true(qb_int_q8_supported(&p, n));
    const size_t rb = qb_format_row_bytes(&f, n), wst = rb + 3;
    float *src = malloc((size_t)4 * n * sizeof *src), *x = malloc((size_t)4 * n * sizeof *x);
    float *wf = malloc((size_t)n * sizeof *wf);
    uint8_t *packed = malloc(4 * rb), *w = malloc(4 * wst);
    const size_t ab = qb_int_act_row_bytes(n);
    uint8_t *act = malloc(4 * ab);
    qb_block_q8_0 *q8 = malloc((size_t)n / 32 * sizeof *q8);
    weight_rows(src, n);
    act_rows(x, n);
    assert_int_equal(qb_quantize_matrix(&ctx, &f, src, 4, n, packed, NULL), QB_OK);
    for (int r = 0; r < 4; r++) memcpy(w + r * wst, packed + r * rb, rb);
    const qb_kernel_table *kref = qb_kernels_for("ref");
    for (int c = 0; c < 4; c++) {
        kref->quantize_act[QB_TYPE_Q8_0](x + (size_t)c * n, q8, n);
        qb_int_act_from_q8_0(n, q8, act + c * ab);
    }
    /* the real arithmetic in double, and the size of its terms */
    double want[4][4], scale[4][4];
    for (int r = 0; r < 4; r++) {
        qb_dequantize_row(&f, w + r * wst, wf, n);
        for (int c = 0; c < 4; c++) {
            const int8_t *q = qb_int_act_q(act + c * ab);
            const float *d = qb_int_act_d(act + c * ab, n);
            double e = 0, s = 0;
            for (int i = 0; i < n; i++) {
                const double t = (double)wf[i] * ((double)d[i / 32] * q[i]);
                e += t;
                s += fabs(t);
            }
            want[r][c] = e;
            scale[r][c] = s;
        }
    }
    float yref[4 * 4];
    qb_int_tile_q8_ref(&p, n, w, wst, 4, act, ab, 4, yref, 4);
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) {
            const double tol = 1e-5 * scale[r][c] + 1e-30;
            if (!(fabs((double)yref[c * 4 + r] - want[r][c]) <= tol))
                fail_msg("ref %s n=%d (%d,%d): %.9g vs double %.9g (tol %.3g)", name, n, r, c, yref[c * 4 + r], want[r][c], tol);
        }
    int calls = 0;
    for (int s = 0; s < NISA; s++) {
        const qb_kernel_table *k = qb_kernels_for(isas[s]);
        if (!k || !k->int_tile_q8) continue;
        for (int nr = 1; nr <= 4; nr++)
            for (int nc = 1; nc <= 4; nc++) {
                float y[5 * 6];
                for (int i = 0; i < 30; i++) y[i] = -12345.0f;
                k->int_tile_q8(&p, n, w, wst, nr, act, ab, nc, y, 6);
                for (int c = 0; c < 5; c++)
                    for (int r = 0; r < 6; r++) {
                        const float got = y[c * 6 + r];
                        if (r >= nr || c >= nc) {
                            if (got != -12345.0f) fail_msg("%s %s: wrote outside the %dx%d tile", isas[s], name, nr, nc);
                            continue;
                        }
                        const double tol = 1e-5 * scale[r][c] + 1e-30;
                        if (!(fabs((double)got - yref[c * 4 + r]) <= tol))
                            fail_msg("%s int_tile_q8 %s n=%d nr=%d nc=%d (%d,%d): %.9g vs spec %.9g (tol %.3g)", isas[s], name,
                                     n, nr, nc, r, c, got, yref[c * 4 + r], tol);
                    }
                calls++;
            }
    }
    /* the one-token kernel (int_gemv) where a table has it and the shape fits: each row and
     * token against the spec's tile */
    for (int s = 0; s < NISA; s++) {
        const qb_kernel_table *k = qb_kernels_for(isas[s]);
        if (!k || !k->int_gemv || !qb_int_gemv_supported(&p, n)) continue;
        uint8_t *xg = malloc(qb_int_gemv_act_bytes(p.bits, n));
        for (int c = 0; c < 4; c++) {
            kref->quantize_act[QB_TYPE_Q8_0](x + (size_t)c * n, q8, n);
            qb_int_gemv_act(p.bits, q8, n, xg);
            for (int r = 0; r < 4; r++) {
                const float got = k->int_gemv(&p, n, w + r * wst, xg);
                const double tol = 1e-5 * scale[r][c] + 1e-30;
                if (!(fabs((double)got - yref[c * 4 + r]) <= tol))
                    fail_msg("%s int_gemv %s n=%d row %d token %d: %.9g vs spec %.9g (tol %.3g)", isas[s], name, n, r, c, got,
                             yref[c * 4 + r], tol);
                calls++;
                gemv_calls++;
            }
        }
        free(xg);
    }
    free(src);
    free(x);
    free(wf);
    free(packed);
    free(w);
    free(act);
    free(q8);
    return calls;
}

/* The one-token kernel's shapes: 4-bit groups of 128 / 256 or per row (n a multiple of 128),
 * 8-bit groups of 64..256 or per row (n a multiple of 64), sym and asym, lengths of 1 to 17
 * chunks and qb-docs-26m's / TinyLlama's row lengths. */
static void test_gemv_vs_spec(void **state)
{
    (void)state;
    const char *fmts[] = {"int4-tensor", "int4-channel", "int4-g128", "int4-g256", "int8-tensor",
                          "int8-channel", "int8-g64", "int8-g128", "int8-g256"};
    const int lens[] = {64, 128, 256, 384, 512, 1536, 2048, 2176, 5632};
    int cases = 0;
    gemv_calls = 0;
    for (size_t fi = 0; fi < sizeof fmts / sizeof fmts[0]; fi++)
        for (int a = 0; a < 2; a++)
            for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
                char name[32];
                snprintf(name, sizeof name, "%s%s", fmts[fi], a ? "-asym" : "");
                const int g = strstr(name, "-g256") ? 256 : strstr(name, "-g128") ? 128 : strstr(name, "-g64") ? 64 : 0;
                if (g && lens[li] % g) continue;
                check_format(name, lens[li]);
                cases++;
            }
    print_message("int_gemv: %d format x length cases, %d calls matched the spec\n", cases, gemv_calls);
    if (qb_kernels_for("avx512vnni")) assert_true(gemv_calls > 1000);
}

static void test_tile_vs_spec(void **state)
{
    (void)state;
    const char *gran[] = {"tensor", "channel", "g32", "g64", "g128", "g256"};
    const int gsize[] = {0, 0, 32, 64, 128, 256};
    int calls = 0, cases = 0;
    for (int b = 2; b <= 8; b++)
        for (int g = 0; g < 6; g++)
            for (int a = 0; a < 2; a++)
                for (int l = 0; l < NLEN; l++) {
                    const int n = 32 * nblocks[l];
                    if (gsize[g] && n % gsize[g]) continue;
                    char name[32];
                    snprintf(name, sizeof name, "int%d-%s%s", b, gran[g], a ? "-asym" : "");
                    calls += check_format(name, n);
                    cases++;
                }
    print_message("int_tile_q8: %d format x length cases, %d vector calls matched the spec\n", cases, calls);
    assert_true(cases > 400);
}

static void test_act_layout(void **state)
{
    (void)state;
    const int n = 96;
    float x[96];
    for (int i = 0; i < n; i++) x[i] = 4.0f * frand();
    qb_block_q8_0 q8[3];
    qb_kernels_for("ref")->quantize_act[QB_TYPE_Q8_0](x, q8, n);
    uint8_t act[256];
    assert_true(qb_int_act_row_bytes(n) <= sizeof act && qb_int_act_row_bytes(n) % 64 == 0);
    qb_int_act_from_q8_0(n, q8, act);
    for (int b = 0; b < 3; b++) {
        for (int j = 0; j < 32; j++) assert_int_equal(qb_int_act_q(act)[32 * b + j], q8[b].qs[j]);
        for (int j = 0; j < 8; j++)
            assert_int_equal(qb_int_act_s4(act, n)[8 * b + j],
                             q8[b].qs[4 * j] + q8[b].qs[4 * j + 1] + q8[b].qs[4 * j + 2] + q8[b].qs[4 * j + 3]);
        assert_true(qb_int_act_d(act, n)[b] == qb_f16_to_f32(q8[b].d));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_act_layout),
        cmocka_unit_test(test_gemv_vs_spec),
        cmocka_unit_test(test_tile_vs_spec),
    };
    return cmocka_run_group_tests_name("int-q8", tests, NULL, NULL);
}
