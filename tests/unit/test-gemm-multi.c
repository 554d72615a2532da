/* test-gemm-multi.c — qb_matmul_multi (Q, K, V or gate, up in one parallel region, the
 * activations quantized once) gives exactly the numbers of one qb_matmul per matrix: packed
 * types with and without a GEMM tile, one token (generation) and several (prompt), odd row
 * counts (a last unpaired row), 1..4 matrices; mixed types or row lengths fall back to
 * separate calls. Run under every QB_ISA in make test's loops via the dispatch table. */
#include "testutil.h"
#include <math.h>
#include <string.h>

#include "core/qb.h"
#include "core/quant/format.h"
#include "core/infer/matmul.h"
#include "kernels.h"

static uint64_t rng = 0xD1B54A32D192ED03ull;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* A rows × n matrix of type t quantized from random floats (buffer owned by the tensor). */
static qb_tensor make(int t, int64_t n, int64_t rows)
{
    qb_tensor w;
    memset(&w, 0, sizeof w);
    w.n_dims = 2;
    w.ne[0] = n;
    w.ne[1] = rows;
    w.ne[2] = w.ne[3] = 1;
    w.type = t;
    w.fmt = qb_format_ggml(t);
    const size_t rb = qb_format_row_bytes(&w.fmt, n);
    w.owned = malloc(rb * (size_t)rows);
    float *row = malloc((size_t)n * sizeof *row);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t i = 0; i < n; i++) row[i] = frand() * (1.0f + (float)(r % 3));
        assert_true(qb_quant_row_ref(t, row, (uint8_t *)w.owned + (size_t)r * rb, n));
    }
    free(row);
    w.data = w.owned;
    w.nbytes = rb * (size_t)rows;
    return w;
}

static void check(const qb_tensor *ws, int nw, int T)
{
    const qb_tensor *wp[4];
    float *ys[4], *want[4];
    const int64_t n = ws[0].ne[0];
    float *x = malloc((size_t)T * (size_t)n * sizeof *x);
    for (int64_t i = 0; i < T * n; i++) x[i] = frand();
    for (int i = 0; i < nw; i++) {
        wp[i] = &ws[i];
        const size_t cnt = (size_t)T * (size_t)ws[i].ne[1];
        ys[i] = malloc((cnt + 1) * sizeof(float));
        want[i] = malloc(cnt * sizeof(float));
        ys[i][cnt] = -5.0f;
        qb_matmul(&ws[i], x, T, want[i]);
    }
    qb_matmul_multi(wp, nw, x, T, ys);
    for (int i = 0; i < nw; i++) {
        const size_t cnt = (size_t)T * (size_t)ws[i].ne[1];
        for (size_t j = 0; j < cnt; j++)
            if (memcmp(&ys[i][j], &want[i][j], sizeof(float)))
                fail_msg("%s multi (%d matrices) T=%d matrix %d out %zu: %.9g, alone %.9g", qb_type_get(ws[i].type)->name, nw,
                         T, i, j, ys[i][j], want[i][j]);
        if (ys[i][cnt] != -5.0f) fail_msg("multi wrote past matrix %d's output", i);
        free(ys[i]);
        free(want[i]);
    }
    free(x);
}

static void test_multi_same_as_separate(void **state)
{
    (void)state;
    const int types[] = {QB_TYPE_Q4_0, QB_TYPE_Q8_0, QB_TYPE_IQ4_NL, QB_TYPE_Q4_K, QB_TYPE_Q6_K, QB_TYPE_Q5_1};
    const int Ts[] = {1, 2, 3, 9, 17};
    const int64_t rows[4] = {7, 2, 5, 1};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const int t = types[ti];
        if (!qb_matmul_runs_packed(t)) continue;
        const int64_t n = qb_type_get(t)->blck == 256 ? 512 : 96;
        qb_tensor ws[4];
        for (int i = 0; i < 4; i++) ws[i] = make(t, n, rows[i]);
        for (int nw = 1; nw <= 4; nw++)
            for (size_t k = 0; k < sizeof Ts / sizeof Ts[0]; k++) check(ws, nw, Ts[k]);
        for (int i = 0; i < 4; i++) free(ws[i].owned);
    }
}

/* Matrices that cannot share activations (another packed type, F16) still get
 * each its own correct product. */
static void test_multi_mixed_falls_back(void **state)
{
    (void)state;
    qb_tensor ws[3] = {make(QB_TYPE_Q4_0, 64, 3), make(QB_TYPE_Q8_0, 64, 4), make(QB_TYPE_F16, 64, 5)};
    for (int T = 1; T <= 5; T += 4) check(ws, 3, T);
    for (int i = 0; i < 3; i++) free(ws[i].owned);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_multi_same_as_separate), cmocka_unit_test(test_multi_mixed_falls_back)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
