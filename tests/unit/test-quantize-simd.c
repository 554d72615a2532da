/* test-quantize-simd.c — the vector row quantizers (qb_quant_row_avx2: the scale searches of
 * Q2_K..Q6_K, IQ4_NL, IQ4_XS in AVX2 lanes; qb_quant_row_avx512: the 32-element blocks Q8_0,
 * Q4_0, Q5_0, Q4_1, Q5_1 in AVX-512, the rest as _avx2) against llama-quantize and the scalar
 * spec (and F16 / BF16 rows in AVX-512):
 *  - zoo: the tensors llama-quantize --pure wrote into qb-docs-26m-zoo.gguf, re-made from their
 *    F16 originals: every byte must match;
 *  - random and awkward rows (Gaussian with outliers, constant and all-zero sub-blocks next to
 *    normal ones, subnormal and huge values, infinities and NaNs): every byte must equal
 *    qb_quant_row_ref's.
 * Skipped when the CPU has no AVX2 (or the zoo when the model folder is missing). */
#include "testutil.h"

#include "core/util/gguf.h"
#include "core/qb.h"
#include "kernels.h"
#include "blocks.h"
#include "quant_k.h"

#include <math.h>
#include <string.h>

/* the types compared: the searches and the 32-element blocks */
static const int row_types[] = {QB_TYPE_Q2_K, QB_TYPE_Q3_K, QB_TYPE_Q4_K, QB_TYPE_Q5_K, QB_TYPE_Q6_K,
                                QB_TYPE_IQ4_NL, QB_TYPE_IQ4_XS, QB_TYPE_Q8_0, QB_TYPE_Q4_0, QB_TYPE_Q5_0,
                                QB_TYPE_Q4_1, QB_TYPE_Q5_1, QB_TYPE_F16, QB_TYPE_BF16};
enum { N_ROW_TYPES = sizeof row_types / sizeof row_types[0] };

static bool have_avx2(void) { return qb_kernels_for("avx2") != NULL; }
static bool have_avx512(void) { return qb_kernels_for("avx512") != NULL; }

static uint64_t rng_next(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float rng_gauss(uint64_t *s)
{
    const float u = ((float)(rng_next(s) >> 40) + 0.5f) / 16777216.0f;
    const float v = ((float)(rng_next(s) >> 40) + 0.5f) / 16777216.0f;
    return sqrtf(-2.0f * logf(u)) * cosf(6.2831853f * v);
}

static size_t row_bytes(int t, int64_t n) { return qb_type_row_bytes((qb_type)t, n); }

/* ref, avx2 and (where the CPU has it) avx512 bytes of x (n values) in type t must be the same */
static void expect_same(int t, const float *x, int64_t n, const char *what)
{
    const size_t rb = row_bytes(t, n);
    uint8_t *a = malloc(rb), *b = malloc(rb);
    assert_true(a && b);
    memset(a, 0xa5, rb);
    assert_true(qb_quant_row_ref(t, x, a, n));
    for (int isa = 0; isa < 2; isa++) {
        if (isa == 1 && !have_avx512()) break;
        memset(b, 0x5a, rb);
        assert_true(isa == 0 ? qb_quant_row_avx2(t, x, b, n) : qb_quant_row_avx512(t, x, b, n));
        for (size_t i = 0; i < rb; i++)
            if (a[i] != b[i])
                fail_msg("%s, %s: byte %zu: %s 0x%02x, ref 0x%02x", qb_type_get(t)->name, what, i,
                         isa ? "avx512" : "avx2", b[i], a[i]);
    }
    free(a);
    free(b);
}

static void test_zoo(void **state)
{
    (void)state;
    if (!have_avx2()) skip();
    const char *path = qbt_model_path("qb-docs-26m/qb-docs-26m-zoo.gguf");
    qbt_need(path);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_gguf *g = NULL;
    if (qb_gguf_open(&ctx, path, &g)) fail_msg("%s", qb_ctx_errmsg(&ctx));
    int checked[N_ROW_TYPES] = {0};
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const qb_gguf_tensor *t = &g->tensors[i];
        const char *at = strchr(t->name, '@');
        int k = 0;
        while (k < N_ROW_TYPES && row_types[k] != (int)t->type) k++;
        if (!at || k == N_ROW_TYPES) continue;
        char base[256];
        snprintf(base, sizeof base, "%.*s", (int)(at - t->name), t->name);
        const qb_gguf_tensor *src = qb_gguf_find_tensor(g, base);
        assert_non_null(src);
        assert_int_equal(src->type, QB_TYPE_F16);
        const int64_t n = t->ne[0], rows = t->ne[1];
        const size_t rb = row_bytes(t->type, n);
        float *x = malloc((size_t)n * sizeof *x);
        uint8_t *q = malloc(rb);
        assert_true(x && q);
        for (int64_t r = 0; r < rows; r++) {
            const uint8_t *h = (const uint8_t *)src->data + (size_t)(r * n) * 2;
            for (int64_t j = 0; j < n; j++) x[j] = qb_f16_to_f32((uint16_t)(h[2 * j] | h[2 * j + 1] << 8));
            for (int isa = 0; isa < 2; isa++) {
                if (isa == 1 && !have_avx512()) break;
                assert_true(isa == 0 ? qb_quant_row_avx2(t->type, x, q, n) : qb_quant_row_avx512(t->type, x, q, n));
                const uint8_t *want = (const uint8_t *)t->data + (size_t)r * rb;
                for (size_t b = 0; b < rb; b++)
                    if (q[b] != want[b])
                        fail_msg("%s row %lld byte %zu: %s 0x%02x, llama-quantize 0x%02x", t->name, (long long)r, b,
                                 isa ? "avx512" : "avx2", q[b], want[b]);
            }
        }
        free(x);
        free(q);
        checked[k]++;
    }
    for (int k = 0; k < N_ROW_TYPES; k++) /* the zoo quantizes to every block type, F16 / BF16 only as sources */
        if (checked[k] == 0 && row_types[k] != QB_TYPE_F16 && row_types[k] != QB_TYPE_BF16)
            fail_msg("zoo: no %s tensor", qb_type_get(row_types[k])->name);
    qb_gguf_close(g);
}

static void test_random_rows(void **state)
{
    (void)state;
    if (!have_avx2()) skip();
    enum { N = 4096 };
    static float x[N];
    uint64_t s = 42;
    for (int rep = 0; rep < 40; rep++) {
        const float sigma = rep % 4 == 0 ? 1e-3f : rep % 4 == 1 ? 0.02f : rep % 4 == 2 ? 1.0f : 300.0f;
        for (int i = 0; i < N; i++) {
            x[i] = sigma * rng_gauss(&s);
            if (rng_next(&s) % 50 == 0) x[i] *= 8.0f; /* outliers */
            if (rep % 5 == 4) x[i] = fabsf(x[i]);     /* one-sided rows (min > 0) */
        }
        for (int k = 0; k < N_ROW_TYPES; k++) {
            char what[32];
            snprintf(what, sizeof what, "random row %d", rep);
            expect_same(row_types[k], x, N, what);
            /* three super-blocks: Q4_K / Q5_K fit two blocks per call, then one alone */
            snprintf(what, sizeof what, "random row %d, 768", rep);
            expect_same(row_types[k], x, 768, what);
        }
    }
}

static void test_awkward_rows(void **state)
{
    (void)state;
    if (!have_avx2()) skip();
    enum { N = 1024 };
    static float x[N];
    uint64_t s = 7;
    for (int kind = 0; kind < 10; kind++) {
        for (int i = 0; i < N; i++) x[i] = 0.05f * rng_gauss(&s);
        for (int i = 0; i < N; i++) {
            const int sub = i / 16;
            switch (kind) {
            case 0: x[i] = 0.0f; break;                                          /* all zero */
            case 1: if (sub % 3 == 0) x[i] = 0.25f; break;                       /* constant sub-blocks */
            case 2: if (sub % 2 == 0) x[i] = 0.0f; break;                        /* zero sub-blocks */
            case 3: x[i] *= 1e-39f; break;                                       /* subnormals */
            case 4: if (i % 97 == 0) x[i] = 1e30f; break;                        /* huge */
            case 5: if (i % 300 == 0) x[i] = INFINITY; break;                    /* infinities */
            case 6: if (i % 333 == 0) x[i] = NAN; break;                         /* NaN */
            case 7: x[i] = sub % 2 ? -fabsf(x[i]) : 1e-20f * x[i]; break;        /* negative, tiny */
            case 8: if (i % 16 == 3) x[i] = -3e38f; break;                       /* range overflows */
            case 9: /* one-signed 32-blocks holding zeros of both signs: a zero extreme */
                x[i] = i % 7 ? (i / 32 % 2 ? fabsf(x[i]) : -fabsf(x[i])) : i % 3 ? 0.0f : -0.0f;
                break;
            }
        }
        for (int k = 0; k < N_ROW_TYPES; k++) {
            char what[32];
            snprintf(what, sizeof what, "awkward row %d", kind);
            expect_same(row_types[k], x, N, what);
        }
    }
}

/* The other types go to the reference unchanged; partial blocks are refused like it. */
static void test_other_types(void **state)
{
    (void)state;
    if (!have_avx2()) skip();
    enum { N = 512 };
    static float x[N];
    uint64_t s = 3;
    for (int i = 0; i < N; i++) x[i] = rng_gauss(&s);
    const int others[] = {QB_TYPE_Q4_0, QB_TYPE_Q5_1, QB_TYPE_Q8_0, QB_TYPE_Q8_K, QB_TYPE_F16};
    for (size_t k = 0; k < sizeof others / sizeof others[0]; k++) expect_same(others[k], x, N, "gaussian");
    uint8_t buf[1024];
    assert_false(qb_quant_row_avx2(QB_TYPE_Q4_K, x, buf, 100));
    assert_false(qb_quant_row_avx2(QB_TYPE_IQ4_NL, x, buf, 40));
    assert_false(qb_quant_row_avx2(-1, x, buf, 256));
    if (have_avx512()) {
        assert_false(qb_quant_row_avx512(QB_TYPE_Q8_0, x, buf, 33));
        assert_false(qb_quant_row_avx512(QB_TYPE_Q4_K, x, buf, 100));
        assert_false(qb_quant_row_avx512(-1, x, buf, 256));
    }
}

/* The AVX-512 IQ4 code-book index (a halving search over the midpoints between entries)
 * against the reference's nearest-entry rule at every float within 64 steps of each midpoint
 * and each entry (ties, and the float differences the reference compares), at zeros, tiny,
 * huge, infinite and NaN values. A midpoint or entry off by one step fails it. */
static void test_iq4_index(void **state)
{
    (void)state;
    if (!have_avx512()) skip();
    static float v[64 * 129 * 31 + 32];
    int n = 0;
    for (int k = 0; k < 31; k++) { /* entries (even k) and midpoints (odd k) */
        const int a = qb_iq4nl_values[k / 2], b = qb_iq4nl_values[(k + 1) / 2 < 16 ? (k + 1) / 2 : 15];
        const float c = 0.5f * (float)(a + b);
        for (int u = -64 * 64; u <= 64 * 64; u += 64) { /* every step within 64 of c, ±0 */
            float x = c;
            for (int st = 0; st < (u < 0 ? -u : u) / 64; st++) x = nextafterf(x, u < 0 ? -INFINITY : INFINITY);
            v[n++] = x;
        }
    }
    const float special[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-45f, 3e38f, -3e38f, INFINITY, -INFINITY, NAN, -NAN, 0.5f, -0.5f, 1e6f, -1e6f};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) v[n++] = special[i];
    while (n % 32) v[n++] = 0.0f;
    for (int i = 0; i < n; i += 32) {
        uint8_t got[16], want[16];
        qb_iq4_codes_avx512(v + i, 1.0f, got);
        qb_iq4nl_codes_ref(v + i, 1.0f, want);
        for (int j = 0; j < 16; j++)
            if (got[j] != want[j]) fail_msg("iq4 index of %.9g / %.9g: %02x, the reference %02x", v[i + j], v[i + j + 16], got[j], want[j]);
    }
}

/* The midpoint tables the vector searches use, from the code book; and both vector IQ4 scale
 * searches against the scalar one on blocks whose values sit on and next to the midpoints
 * between entries once scaled (the last lane of the candidates, id = -127 / max, maps x to
 * itself when max = -127), and on random blocks: every returned scale bit for bit. */
static void test_iq4_scale_search(void **state)
{
    (void)state;
    if (!have_avx2()) skip();
    for (int st = 0; st < 4; st++)
        for (int i = 0; i < 16; i++) {
            const int k = i + (int[]){0, 1, 3, 7}[st];
            const float want = k < 15 ? 0.5f * (float)(qb_iq4nl_values[k] + qb_iq4nl_values[k + 1]) : INFINITY;
            if (qb_iq4nl_mid_at[st][i] != want) fail_msg("midpoint table [%d][%d]: %g, want %g", st, i, qb_iq4nl_mid_at[st][i], want);
        }
    uint64_t s = 11;
    float x[32], w[32];
    for (int blk = 0; blk < 20000; blk++) {
        for (int j = 0; j < 32; j++) {
            w[j] = (float)(rng_next(&s) % 1000) / 100.0f;
            if (blk % 2) { /* on or beside a midpoint, the largest magnitude -127 */
                const int k = (int)(rng_next(&s) % 15), u = (int)(rng_next(&s) % 5) - 2;
                float v = qb_iq4nl_mid_at[0][k];
                for (int t = 0; t < (u < 0 ? -u : u); t++) v = nextafterf(v, u < 0 ? -INFINITY : INFINITY);
                x[j] = v;
            } else {
                x[j] = rng_gauss(&s);
            }
        }
        if (blk % 2) x[rng_next(&s) % 32] = -127.0f;
        const float want = qb_iq4nl_group_scale_w_ref(x, w);
        const float got2 = qb_iq4_scale_w_avx2(x, w);
        if (memcmp(&got2, &want, sizeof want)) fail_msg("block %d: avx2 scale %.9g, the reference %.9g", blk, got2, want);
        if (have_avx512()) {
            const float got5 = qb_iq4_scale_w_avx512(x, w);
            if (memcmp(&got5, &want, sizeof want)) fail_msg("block %d: avx512 scale %.9g, the reference %.9g", blk, got5, want);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zoo),
        cmocka_unit_test(test_random_rows),
        cmocka_unit_test(test_awkward_rows),
        cmocka_unit_test(test_other_types),
        cmocka_unit_test(test_iq4_index),
        cmocka_unit_test(test_iq4_scale_search),
    };
    return cmocka_run_group_tests_name("quantize-simd", tests, NULL, NULL);
}
