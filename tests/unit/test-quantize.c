/* test-quantize.c — qb_quant_row_ref, the scalar quantizers for every ggml block format.
 *
 * Four groups:
 *  - zoo: the tensors llama-quantize --pure wrote into qb-docs-26m-zoo.gguf (12 formats × 4
 *    tensors), re-made here from their F16 originals row by row: every byte must match;
 *  - props: round trip quantize → dequantize of random rows within each format's relative
 *    RMSE budget; awkward rows (zeros, constants, one huge outlier, subnormals, negative-only,
 *    a single block) give finite values and what the algorithm should give; F16 / BF16 rows
 *    round to nearest even; unknown types and partial blocks are refused;
 *  - ggml: optional, against llama.cpp's own quantizers on random and awkward rows, byte for
 *    byte. llama.cpp is not part of this project: libggml-base.so is opened at run time from
 *    $QB_GGML_LIB (default ../peer/llama.cpp/build/bin/libggml-base.so) and skipped when
 *    absent;
 *  - speed: quantization time of the 1536-column zoo tensor in Q4_K and Q6_K (ours, and
 *    ggml's when loaded), printed with QB_TEST_VERBOSE=1; nothing asserted.
 * QB_TEST_VERBOSE=1 also prints the measured RMSE figures. */
#include "testutil.h"
#include "ggml_peer.h"

#include "core/util/gguf.h"
#include "core/qb.h"
#include "kernels.h"
#include "blocks.h"

#include <dlfcn.h>
#include <math.h>
#include <time.h>

/* ---- helpers ----------------------------------------------------------------------------- */

static bool verbose(void)
{
    const char *v = getenv("QB_TEST_VERBOSE");
    return v && *v && strcmp(v, "0") != 0;
}

static uint64_t rng_next(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float rng_uniform(uint64_t *s) /* in (0, 1) */
{
    return ((float)(rng_next(s) >> 40) + 0.5f) / 16777216.0f;
}

static float rng_gauss(uint64_t *s) /* Box-Muller */
{
    const float u = rng_uniform(s), v = rng_uniform(s);
    return sqrtf(-2.0f * logf(u)) * cosf(6.2831853f * v);
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The quantized formats under test, in ggml id order. */
static const int quant_types[] = {
    QB_TYPE_Q4_0, QB_TYPE_Q4_1, QB_TYPE_Q5_0, QB_TYPE_Q5_1, QB_TYPE_Q8_0,
    QB_TYPE_Q8_1, QB_TYPE_Q2_K, QB_TYPE_Q3_K, QB_TYPE_Q4_K, QB_TYPE_Q5_K,
    QB_TYPE_Q6_K, QB_TYPE_Q8_K, QB_TYPE_IQ4_NL, QB_TYPE_IQ4_XS,
};
enum { N_QUANT_TYPES = sizeof quant_types / sizeof quant_types[0] };

static const char *type_name(int t)
{
    const qb_type_info *ti = qb_type_get(t);
    return ti ? ti->name : "?";
}

static size_t row_bytes(int t, int64_t n)
{
    return qb_type_row_bytes((qb_type)t, n);
}

/* Fail with the first differing block and byte of two quantized rows. */
static void expect_bytes(const char *what, int type, const uint8_t *got, const uint8_t *want,
                         size_t nbytes)
{
    if (memcmp(got, want, nbytes) == 0) return;
    const size_t bs = (size_t)qb_type_get(type)->size;
    for (size_t i = 0; i < nbytes; i++)
        if (got[i] != want[i])
            fail_msg("%s (%s): block %zu byte %zu differs: got 0x%02x, want 0x%02x", what,
                     type_name(type), i / bs, i % bs, got[i], want[i]);
}

/* Quantize x (n elements) into a fresh buffer (zeroed first) and return it. */
static uint8_t *quantize_new(int type, const float *x, int64_t n)
{
    const size_t nb = row_bytes(type, n);
    uint8_t *q = calloc(1, nb ? nb : 1);
    assert_non_null(q);
    assert_true(qb_quant_row_ref(type, x, q, n));
    return q;
}

/* Dequantize what qb_quant_row_ref made of x; Q8_1 (no ggml dequantizer) is decoded here:
 * d * q, with s checked against d * sum(q). */
static void round_trip(int type, const float *x, float *y, int64_t n)
{
    uint8_t *q = quantize_new(type, x, n);
    if (type == QB_TYPE_Q8_1) {
        const qb_block_q8_1 *b = (const qb_block_q8_1 *)q;
        for (int64_t i = 0; i < n / 32; i++) {
            const float d = qb_f16_to_f32(b[i].d);
            int sum = 0;
            for (int j = 0; j < 32; j++) {
                y[32 * i + j] = d * (float)b[i].qs[j];
                sum += b[i].qs[j];
            }
            /* s was rounded from the f32 d, before d itself went to f16 */
            const float sv = qb_f16_to_f32(b[i].s), want = (float)sum * d;
            if (fabsf(sv - want) > ldexpf(fabsf(want), -8) + 1e-30f)
                fail_msg("q8_1 block %lld: s = %g, d * sum = %g", (long long)i, (double)sv,
                         (double)want);
        }
    } else {
        assert_true(qb_dequant_row_ref(type, q, y, n));
    }
    free(q);
}

static double rel_rmse(const float *x, const float *y, int64_t n)
{
    double e = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = (double)x[i] - (double)y[i];
        e += d * d;
        s += (double)x[i] * (double)x[i];
    }
    return s > 0 ? sqrt(e / s) : sqrt(e);
}

static void expect_finite(const char *what, int type, const float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(y[i]))
            fail_msg("%s (%s): element %lld is %g", what, type_name(type), (long long)i,
                     (double)y[i]);
}

/* ---- zoo: byte-exact against llama-quantize ---------------------------------------------- */

enum { ZOO_TENSORS = 4 };

static int zoo_setup(void **state)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_gguf *g = NULL;
    if (qb_gguf_open(&ctx, qbt_model_path("qb-docs-26m/qb-docs-26m-zoo.gguf"), &g)) {
        fprintf(stderr, "zoo: %s\n", qb_ctx_errmsg(&ctx));
        return -1;
    }
    *state = g;
    return 0;
}

static int zoo_teardown(void **state)
{
    qb_gguf_close(*state);
    return 0;
}

/* The four "<tensor>@<TYPE>" tensors of one format, each re-made from "<tensor>" (F16). */
static void zoo_check_type(const qb_gguf *g, int type)
{
    int checked = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const qb_gguf_tensor *t = &g->tensors[i];
        const char *at = strchr(t->name, '@');
        if (!at || (int)t->type != type) continue;
        char base[256];
        snprintf(base, sizeof base, "%.*s", (int)(at - t->name), t->name);
        const qb_gguf_tensor *src = qb_gguf_find_tensor(g, base);
        if (!src) fail_msg("%s: no source tensor %s", t->name, base);
        assert_int_equal(src->type, QB_TYPE_F16);
        assert_int_equal(src->ne[0], t->ne[0]);
        assert_int_equal(src->ne[1], t->ne[1]);
        const int64_t n = t->ne[0], rows = t->ne[1];
        const size_t rb = row_bytes(type, n);
        assert_int_equal(rb * (size_t)rows, t->nbytes);
        float *x = malloc((size_t)n * sizeof(float));
        uint8_t *q = malloc(rb);
        assert_true(x && q);
        for (int64_t r = 0; r < rows; r++) {
            const uint8_t *h = (const uint8_t *)src->data + (size_t)r * (size_t)n * 2;
            for (int64_t j = 0; j < n; j++)
                x[j] = qb_f16_to_f32((uint16_t)(h[2 * j] | h[2 * j + 1] << 8));
            assert_true(qb_quant_row_ref(type, x, q, n));
            const uint8_t *want = (const uint8_t *)t->data + (size_t)r * rb;
            if (memcmp(q, want, rb) != 0) {
                char what[300];
                snprintf(what, sizeof what, "%s row %lld", t->name, (long long)r);
                expect_bytes(what, type, q, want, rb);
            }
        }
        free(x);
        free(q);
        checked++;
    }
    assert_int_equal(checked, ZOO_TENSORS);
}

#define ZOO_TEST(fmt)                                                                          \
    static void test_zoo_##fmt(void **state) { zoo_check_type(*state, QB_TYPE_##fmt); }
ZOO_TEST(Q8_0)
ZOO_TEST(Q4_0)
ZOO_TEST(Q4_1)
ZOO_TEST(Q5_0)
ZOO_TEST(Q5_1)
ZOO_TEST(Q2_K)
ZOO_TEST(Q3_K)
ZOO_TEST(Q4_K)
ZOO_TEST(Q5_K)
ZOO_TEST(Q6_K)
ZOO_TEST(IQ4_NL)
ZOO_TEST(IQ4_XS)

/* The zoo holds exactly these 12 formats × 4 tensors (and the 4 F16 sources). */
static void test_zoo_inventory(void **state)
{
    const qb_gguf *g = *state;
    int quantized = 0, sources = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        if (strchr(g->tensors[i].name, '@')) quantized++;
        else if (g->tensors[i].type == QB_TYPE_F16) sources++;
    }
    assert_int_equal(quantized, 12 * ZOO_TENSORS);
    assert_int_equal(sources, ZOO_TENSORS);
}

/* ---- props: round trip, awkward rows, conversions, refusals ------------------------------- */

/* Relative RMSE budget of each format on N(0,1) rows (about 1.15× what the algorithms give;
 * a search that stopped searching would blow through them). */
static double rmse_budget(int type)
{
    switch (type) {
    case QB_TYPE_Q4_0: return 0.099;
    case QB_TYPE_Q4_1: return 0.090;
    case QB_TYPE_Q5_0: return 0.049;
    case QB_TYPE_Q5_1: return 0.044;
    case QB_TYPE_Q8_0: return 0.0062;
    case QB_TYPE_Q8_1: return 0.0062;
    case QB_TYPE_Q2_K: return 0.34;
    case QB_TYPE_Q3_K: return 0.175;
    case QB_TYPE_Q4_K: return 0.082;
    case QB_TYPE_Q5_K: return 0.042;
    case QB_TYPE_Q6_K: return 0.0205;
    case QB_TYPE_Q8_K: return 0.0079;
    case QB_TYPE_IQ4_NL: return 0.088;
    case QB_TYPE_IQ4_XS: return 0.089;
    default: return 0;
    }
}

static void test_round_trip_rmse(void **state)
{
    (void)state;
    enum { N = 256 * 64 };
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
    assert_true(x && y);
    uint64_t s = 1234;
    for (int i = 0; i < N; i++) x[i] = rng_gauss(&s);
    double prev_k = 1.0; /* K formats: more bits, less error */
    for (int k = 0; k < N_QUANT_TYPES; k++) {
        const int t = quant_types[k];
        round_trip(t, x, y, N);
        expect_finite("gauss", t, y, N);
        const double e = rel_rmse(x, y, N);
        if (verbose())
            printf("    %-7s rel RMSE %.5f (budget %.4f)\n", type_name(t), e, rmse_budget(t));
        if (e > rmse_budget(t))
            fail_msg("%s: rel RMSE %.5f over budget %.4f", type_name(t), e, rmse_budget(t));
        if (e < rmse_budget(t) * 0.5)
            fail_msg("%s: rel RMSE %.5f suspiciously below budget %.4f", type_name(t), e,
                     rmse_budget(t));
        if (t >= QB_TYPE_Q2_K && t <= QB_TYPE_Q8_K) {
            assert_true(e < prev_k);
            prev_k = e;
        }
    }
    free(x);
    free(y);
}

/* All-zero rows: every format decodes exact zeros, with the bytes the algorithms give. */
static void test_zero_rows(void **state)
{
    (void)state;
    enum { N = 512 };
    float x[N] = {0}, y[N];
    for (int k = 0; k < N_QUANT_TYPES; k++) {
        const int t = quant_types[k];
        round_trip(t, x, y, N);
        for (int i = 0; i < N; i++)
            if (y[i] != 0.0f) fail_msg("%s: element %d is %g", type_name(t), i, (double)y[i]);
    }
    /* the code that means zero, per format */
    qb_block_q4_0 *q4 = (qb_block_q4_0 *)quantize_new(QB_TYPE_Q4_0, x, 32);
    assert_int_equal(q4->d, 0x8000); /* d = 0 / -8 = -0 */
    for (int j = 0; j < 16; j++) assert_int_equal(q4->qs[j], 0x88);
    free(q4);
    qb_block_iq4_nl *nl = (qb_block_iq4_nl *)quantize_new(QB_TYPE_IQ4_NL, x, 32);
    assert_int_equal(nl->d, 0);
    for (int j = 0; j < 16; j++) assert_int_equal(nl->qs[j], 0x88); /* kvalues[8] = 1 */
    free(nl);
    /* IQ4_XS: d = -0/32 is -0 (0x8000); every sub-block scale 0 is stored as 32 */
    qb_block_iq4_xs *xs = (qb_block_iq4_xs *)quantize_new(QB_TYPE_IQ4_XS, x, 256);
    assert_int_equal(xs->d, 0x8000);
    assert_int_equal(xs->scales_h, 0xaaaa);
    for (int j = 0; j < 4; j++) assert_int_equal(xs->scales_l[j], 0);
    for (int j = 0; j < 128; j++) assert_int_equal(xs->qs[j], 0x88);
    free(xs);
    /* Q6_K, Q8_K, Q8_0: all bytes zero; Q5_0: codes 16 */
    static const int all_zero[] = {QB_TYPE_Q6_K, QB_TYPE_Q8_K, QB_TYPE_Q8_0, QB_TYPE_Q4_K,
                                   QB_TYPE_Q5_K, QB_TYPE_Q2_K};
    for (size_t k = 0; k < sizeof all_zero / sizeof all_zero[0]; k++) {
        uint8_t *q = quantize_new(all_zero[k], x, 256);
        for (size_t i = 0; i < row_bytes(all_zero[k], 256); i++)
            if (q[i]) fail_msg("%s: byte %zu is 0x%02x", type_name(all_zero[k]), i, q[i]);
        free(q);
    }
    qb_block_q5_0 *q5 = (qb_block_q5_0 *)quantize_new(QB_TYPE_Q5_0, x, 32);
    for (int j = 0; j < 4; j++) assert_int_equal(q5->qh[j], 0xff);
    for (int j = 0; j < 16; j++) assert_int_equal(q5->qs[j], 0x00);
    free(q5);
}

/* Constant rows. The symmetric 32-blocks map c onto their extreme code exactly (d = c/-8 or
 * c/-16 is exact in f16 for these c); the affine ones store c as the min with d = 0; the
 * others land within their step. */
static void test_constant_rows(void **state)
{
    (void)state;
    enum { N = 256 };
    static const float cs[] = {0.5f, -3.0f, 1.0f / 3.0f, 1000.0f};
    float x[N], y[N];
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        for (int i = 0; i < N; i++) x[i] = cs[c];
        for (int k = 0; k < N_QUANT_TYPES; k++) {
            const int t = quant_types[k];
            round_trip(t, x, y, N);
            expect_finite("constant", t, y, N);
            const bool exact = (t == QB_TYPE_Q4_0 || t == QB_TYPE_Q5_0) && cs[c] != 1.0f / 3.0f;
            const bool as_min = t == QB_TYPE_Q4_1 || t == QB_TYPE_Q5_1;
            for (int i = 0; i < N; i++) {
                const float want = as_min ? qb_f16_to_f32(qb_f32_to_f16(cs[c])) : cs[c];
                const double tol = exact || as_min ? 0.0 : 0.02 * fabs((double)cs[c]);
                if (fabs((double)y[i] - (double)want) > tol)
                    fail_msg("%s: constant %g decodes to %g at %d", type_name(t), (double)cs[c],
                             (double)y[i], i);
            }
        }
    }
}

/* One huge outlier among N(0, 1) values: decoded finite, the outlier itself kept within a
 * few percent (every format reserves its largest code, or its scale, for it). */
static void test_huge_outlier(void **state)
{
    (void)state;
    enum { N = 512 };
    float x[N], y[N];
    uint64_t s = 99;
    for (int pos = 0; pos < N; pos += 77) {
        for (int i = 0; i < N; i++) x[i] = rng_gauss(&s);
        x[pos] = (pos & 1) ? -30000.0f : 30000.0f;
        for (int k = 0; k < N_QUANT_TYPES; k++) {
            const int t = quant_types[k];
            round_trip(t, x, y, N);
            expect_finite("outlier", t, y, N);
            if (fabsf(y[pos] - x[pos]) > 0.03f * fabsf(x[pos]))
                fail_msg("%s: outlier %g at %d decodes to %g", type_name(t), (double)x[pos], pos,
                         (double)y[pos]);
        }
    }
}

/* Subnormal and tiny rows: every scale underflows in f16, so everything decodes to (signed)
 * zero: no NaN from 0/0, no inf from 1/subnormal. */
static void test_tiny_values(void **state)
{
    (void)state;
    enum { N = 256 };
    float x[N], y[N];
    uint64_t s = 5;
    static const float mags[] = {1e-45f, 1e-40f, 1e-38f, 1e-30f, 1e-20f, 1e-12f};
    for (size_t m = 0; m < sizeof mags / sizeof mags[0]; m++) {
        for (int i = 0; i < N; i++) x[i] = mags[m] * rng_gauss(&s);
        for (int k = 0; k < N_QUANT_TYPES; k++) {
            const int t = quant_types[k];
            if (t == QB_TYPE_Q8_K) continue; /* an f32 scale: checked below */
            round_trip(t, x, y, N);
            expect_finite("tiny", t, y, N);
            for (int i = 0; i < N; i++)
                if (y[i] != 0.0f)
                    fail_msg("%s: tiny %g decodes to %g", type_name(t), (double)x[i], (double)y[i]);
        }
        round_trip(QB_TYPE_Q8_K, x, y, N); /* f32 scale: keeps tiny values unless subnormal */
        expect_finite("tiny", QB_TYPE_Q8_K, y, N);
        if (mags[m] >= 1e-30f && rel_rmse(x, y, N) >= rmse_budget(QB_TYPE_Q8_K))
            fail_msg("Q8_K: tiny %g rows: rel RMSE %g", (double)mags[m], rel_rmse(x, y, N));
    }
}

/* Rows of negative values only: within budget, and the largest magnitude is represented. */
static void test_negative_rows(void **state)
{
    (void)state;
    enum { N = 256 * 16 };
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
    assert_true(x && y);
    uint64_t s = 77;
    for (int i = 0; i < N; i++) x[i] = -fabsf(rng_gauss(&s)) - 0.5f;
    for (int k = 0; k < N_QUANT_TYPES; k++) {
        const int t = quant_types[k];
        round_trip(t, x, y, N);
        expect_finite("negative", t, y, N);
        const double e = rel_rmse(x, y, N);
        if (e > rmse_budget(t))
            fail_msg("%s: negative rows rel RMSE %.5f over %.4f", type_name(t), e, rmse_budget(t));
        for (int i = 0; i < N; i++)
            if (y[i] > 0.5f)
                fail_msg("%s: %g decodes to %g", type_name(t), (double)x[i], (double)y[i]);
    }
    free(x);
    free(y);
}

/* n = one block: the same bytes as the first block of a longer row (rows are independent and
 * blocks too), and nothing written past the block. */
static void test_single_block(void **state)
{
    (void)state;
    enum { N = 1024 };
    float x[N];
    uint64_t s = 31;
    for (int i = 0; i < N; i++) x[i] = rng_gauss(&s) * 0.02f;
    for (int k = 0; k < N_QUANT_TYPES; k++) {
        const int t = quant_types[k];
        const int64_t bl = qb_type_get(t)->blck;
        const size_t bs = (size_t)qb_type_get(t)->size;
        uint8_t *all = quantize_new(t, x, N);
        uint8_t one[300 + 16];
        memset(one, 0xa5, sizeof one);
        assert_true(qb_quant_row_ref(t, x, one, bl));
        expect_bytes("single block", t, one, all, bs);
        for (size_t i = bs; i < sizeof one; i++) assert_int_equal(one[i], 0xa5);
        free(all);
    }
}

/* F16 / BF16 rows: ties to even, NaN kept, overflow to inf, unaligned output. */
static void test_f16_bf16_rows(void **state)
{
    (void)state;
    const float x[] = {
        1.0f + ldexpf(1, -11),     /* f16 tie between 1 and 1+2^-10: even is 1 */
        1.0f + 3 * ldexpf(1, -11), /* tie: even is 1+2^-9 */
        1.0f + ldexpf(1, -8),      /* bf16 tie: even is 1 */
        1.0f + 3 * ldexpf(1, -8),  /* bf16 tie: even is 1+2^-6 */
        65520.0f, -1e9f, ldexpf(1, -25), -0.0f, NAN, INFINITY,
    };
    enum { N = sizeof x / sizeof x[0] };
    static const uint16_t want_h[N] = {0x3c00, 0x3c02, 0x3c04, 0x3c0c, 0x7c00,
                                       0xfc00, 0x0000, 0x8000, 0,      0x7c00};
    static const uint16_t want_b[N] = {0x3f80, 0x3f80, 0x3f80, 0x3f82, 0x4780,
                                       0xce6e, 0x3300, 0x8000, 0,      0x7f80};
    uint8_t buf[1 + 2 * N];
    assert_true(qb_quant_row_ref(QB_TYPE_F16, x, buf + 1, N));
    for (int i = 0; i < N; i++) {
        const uint16_t h = (uint16_t)(buf[1 + 2 * i] | buf[2 + 2 * i] << 8);
        if (isnan(x[i])) assert_true((h & 0x7c00) == 0x7c00 && (h & 0x3ff));
        else if (h != want_h[i])
            fail_msg("f16 of %.9g: 0x%04x, want 0x%04x", (double)x[i], h, want_h[i]);
    }
    assert_true(qb_quant_row_ref(QB_TYPE_BF16, x, buf + 1, N));
    for (int i = 0; i < N; i++) {
        const uint16_t h = (uint16_t)(buf[1 + 2 * i] | buf[2 + 2 * i] << 8);
        if (isnan(x[i])) assert_true((h & 0x7f80) == 0x7f80 && (h & 0x7f));
        else if (h != want_b[i])
            fail_msg("bf16 of %.9g: 0x%04x, want 0x%04x", (double)x[i], h, want_b[i]);
    }
    /* random: bf16 is the nearest-even truncation, checked by the neighbours' distances */
    uint64_t s = 3;
    for (int i = 0; i < 100000; i++) {
        const float v = bits_f32((uint32_t)rng_next(&s) & 0xbfffffffu); /* finite */
        uint8_t b2[2];
        assert_true(qb_quant_row_ref(QB_TYPE_BF16, &v, b2, 1));
        const uint16_t h = (uint16_t)(b2[0] | b2[1] << 8);
        const double got = (double)qb_bf16_to_f32(h);
        const uint16_t down = (uint16_t)(f32_bits(v) >> 16);
        const double lo = (double)qb_bf16_to_f32(down);
        const double hi = (double)qb_bf16_to_f32((uint16_t)(down + 1));
        const double dl = fabs((double)v - lo), dh = fabs(hi - (double)v);
        const double want = dl < dh ? lo : dh < dl ? hi : (down & 1) ? hi : lo;
        if (got != want) fail_msg("bf16 of %.9g: %.9g, want %.9g", (double)v, got, want);
        float back;
        assert_true(qb_quant_row_ref(QB_TYPE_F32, &v, &back, 1));
        assert_true(f32_bits(back) == f32_bits(v));
    }
}

/* The IQ4 code book lookup: each entry maps to itself, a midpoint to the upper neighbour,
 * anything just off a midpoint to the nearer one; the ends and NaN as ggml's bisection. */
static void test_iq4_index(void **state)
{
    (void)state;
    const int8_t *k = qb_iq4nl_values;
    for (int i = 0; i < 16; i++) {
        assert_int_equal(qb_iq4nl_index((float)k[i]), i);
        if (i == 15) break;
        const float mid = ((float)k[i] + (float)k[i + 1]) / 2; /* exact: small integers */
        assert_int_equal(qb_iq4nl_index(mid), i + 1);
        assert_int_equal(qb_iq4nl_index(nextafterf(mid, -INFINITY)), i);
        assert_int_equal(qb_iq4nl_index(nextafterf(mid, INFINITY)), i + 1);
    }
    assert_int_equal(qb_iq4nl_index(-1e30f), 0);
    assert_int_equal(qb_iq4nl_index(-INFINITY), 0);
    assert_int_equal(qb_iq4nl_index(1e30f), 15);
    assert_int_equal(qb_iq4nl_index(INFINITY), 15);
    assert_int_equal(qb_iq4nl_index(NAN), 15);
    assert_int_equal(qb_iq4nl_index(0.0f), 8);
    assert_int_equal(qb_iq4nl_index(-0.0f), 8);
}

static void test_refusals(void **state)
{
    (void)state;
    float x[512] = {0};
    uint8_t dst[4096];
    static const int unknown[] = {-1, 4, 5, 24, 25, 31, 36, 39, QB_TYPE_COUNT, 1000, -1000};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        if (qb_quant_row_ref(unknown[i], x, dst, 256)) fail_msg("type %d accepted", unknown[i]);
    /* IQ3_XXS, IQ3_S, TQ1_0, TQ2_0 are ggml types we quantize (kernels/quant_tq_iq3_ref.c) */
    static const int known[] = {QB_TYPE_IQ3_XXS, QB_TYPE_IQ3_S, QB_TYPE_TQ1_0, QB_TYPE_TQ2_0};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (!qb_quant_row_ref(known[i], x, dst, 256)) fail_msg("type %d refused", known[i]);
        assert_false(qb_quant_row_ref(known[i], x, dst, 288));
    }
    memset(dst, 0x5a, sizeof dst);
    assert_false(qb_quant_row_ref(QB_TYPE_Q4_0, x, dst, 31));
    assert_false(qb_quant_row_ref(QB_TYPE_Q8_1, x, dst, 48));
    assert_false(qb_quant_row_ref(QB_TYPE_Q4_K, x, dst, 128));
    assert_false(qb_quant_row_ref(QB_TYPE_IQ4_XS, x, dst, 288));
    assert_false(qb_quant_row_ref(QB_TYPE_IQ4_NL, x, dst, 33));
    assert_false(qb_quant_row_ref(QB_TYPE_F16, x, dst, -2));
    assert_false(qb_quant_row_ref(QB_TYPE_Q6_K, x, dst, -256));
    for (size_t i = 0; i < sizeof dst; i++) assert_int_equal(dst[i], 0x5a); /* nothing written */
    assert_true(qb_quant_row_ref(QB_TYPE_Q6_K, x, dst, 0)); /* empty row: nothing written */
    assert_int_equal(dst[0], 0x5a);
    for (int k = 0; k < N_QUANT_TYPES; k++)
        if (!qb_quant_row_ref(quant_types[k], x, dst, 512))
            fail_msg("type %s refused", type_name(quant_types[k]));
}

/* ---- ggml: byte-exact against llama.cpp's own quantizers ---------------------------------- */

typedef void (*ggml_row_fn)(const float *x, void *y, int64_t n);
typedef size_t (*ggml_chunk_fn)(const float *src, void *dst, int64_t nrow, int64_t n_per_row,
                                const float *imatrix);

/* The function llama-quantize's path ends in for each format (no importance matrix):
 * quantize_row_*_ref, except IQ4_NL / IQ4_XS which go through quantize_iq4_nl / _xs. */
static struct {
    int type;
    const char *sym;
    bool chunk; /* (src, dst, nrow, n_per_row, imatrix) signature */
} const ggml_syms[] = {
    {QB_TYPE_F16, "ggml_fp32_to_fp16_row", false},
    {QB_TYPE_BF16, "ggml_fp32_to_bf16_row_ref", false},
    {QB_TYPE_Q4_0, "quantize_row_q4_0_ref", false},
    {QB_TYPE_Q4_1, "quantize_row_q4_1_ref", false},
    {QB_TYPE_Q5_0, "quantize_row_q5_0_ref", false},
    {QB_TYPE_Q5_1, "quantize_row_q5_1_ref", false},
    {QB_TYPE_Q8_0, "quantize_row_q8_0_ref", false},
    {QB_TYPE_Q8_1, "quantize_row_q8_1_ref", false},
    {QB_TYPE_Q2_K, "quantize_row_q2_K_ref", false},
    {QB_TYPE_Q3_K, "quantize_row_q3_K_ref", false},
    {QB_TYPE_Q4_K, "quantize_row_q4_K_ref", false},
    {QB_TYPE_Q5_K, "quantize_row_q5_K_ref", false},
    {QB_TYPE_Q6_K, "quantize_row_q6_K_ref", false},
    {QB_TYPE_Q8_K, "quantize_row_q8_K_ref", false},
    {QB_TYPE_IQ4_NL, "quantize_iq4_nl", true},
    {QB_TYPE_IQ4_XS, "quantize_iq4_xs", true},
};
enum { GGML_NSYMS = sizeof ggml_syms / sizeof ggml_syms[0] };

typedef struct {
    void *lib;
    void *fn[GGML_NSYMS];
} ggml_state;

static int ggml_setup(void **state)
{
    ggml_state *gs = calloc(1, sizeof *gs);
    if (!gs) return -1;
    const char *syms[GGML_NSYMS];
    void *fn[GGML_NSYMS];
    for (int i = 0; i < GGML_NSYMS; i++) syms[i] = ggml_syms[i].sym;
    if ((gs->lib = qbt_ggml_open(syms, GGML_NSYMS, fn)))
        for (int i = 0; i < GGML_NSYMS; i++) gs->fn[i] = fn[i];
    *state = gs;
    return 0;
}

static int ggml_teardown(void **state)
{
    ggml_state *gs = *state;
    if (gs && gs->lib) dlclose(gs->lib);
    free(gs);
    return 0;
}

/* Run ggml's quantizer for `type` on one row of n (into a zeroed dst). */
static void ggml_quantize(const ggml_state *gs, int type, const float *x, void *dst, int64_t n)
{
    for (int i = 0; i < GGML_NSYMS; i++) {
        if (ggml_syms[i].type != type) continue;
        if (ggml_syms[i].chunk) ((ggml_chunk_fn)gs->fn[i])(x, dst, 1, n, NULL);
        else ((ggml_row_fn)gs->fn[i])(x, dst, n);
        return;
    }
    fail_msg("no ggml quantizer for %s", type_name(type));
}

/* Ours and ggml's bytes for x, which must agree. */
static void ggml_compare(const ggml_state *gs, const char *what, int type, const float *x,
                         int64_t n)
{
    const size_t nb = row_bytes(type, n);
    uint8_t *want = calloc(1, nb);
    assert_non_null(want);
    uint8_t *got = quantize_new(type, x, n);
    ggml_quantize(gs, type, x, want, n);
    expect_bytes(what, type, got, want, nb);
    free(got);
    free(want);
}

/* Rows drawn from several shapes a weight or activation can take. Block-sized stretches get
 * their own scale so the searches see every regime. */
static void fill_row(uint64_t *s, int kind, float *x, int n)
{
    for (int i = 0; i < n; i++) {
        switch (kind) {
        case 0: x[i] = rng_gauss(s); break;                                  /* N(0,1) */
        case 1: x[i] = (rng_uniform(s) - 0.5f) * 0.1f; break;                /* uniform */
        case 2: x[i] = rng_gauss(s) * ldexpf(1.0f, (int)(rng_next(s) % 40) - 20); break;
        case 3: x[i] = -fabsf(rng_gauss(s)); break;                          /* negative */
        case 4: x[i] = fabsf(rng_gauss(s)) + 1.0f; break;                    /* offset */
        case 5: x[i] = (rng_next(s) % 50 == 0) ? rng_gauss(s) * 300 : rng_gauss(s); break;
        case 6: x[i] = (float)((int)(rng_next(s) % 9) - 4) * 0.25f; break;  /* on a grid */
        case 7: x[i] = (rng_next(s) % 3 == 0) ? 0.0f : rng_gauss(s) * 1e-3f; break;
        default: x[i] = bits_f32((uint32_t)rng_next(s) & 0x807fffffu); break; /* subnormal */
        }
    }
    if (kind == 2 || kind == 5) /* now and then a whole block of zeros or a constant */
        for (int b = 0; b + 32 <= n; b += 32) {
            const uint64_t r = rng_next(s) % 16;
            if (r == 0) memset(x + b, 0, 32 * sizeof(float));
            if (r == 1) for (int j = 0; j < 32; j++) x[b + j] = x[b];
        }
}

enum { GGML_KINDS = 9 };

static void test_ggml_random_rows(void **state)
{
    const ggml_state *gs = *state;
    if (!gs->lib) skip();
    enum { N = 256 * 32 };
    float *x = malloc(N * sizeof(float));
    assert_non_null(x);
    uint64_t s = 2024;
    for (int kind = 0; kind < GGML_KINDS; kind++) {
        for (int rep = 0; rep < 4; rep++) {
            fill_row(&s, kind, x, N);
            for (int i = 0; i < GGML_NSYMS; i++) {
                char what[64];
                snprintf(what, sizeof what, "kind %d rep %d", kind, rep);
                ggml_compare(gs, what, ggml_syms[i].type, x, N);
            }
        }
    }
    free(x);
}

/* The awkward rows of the props group, through ggml too. */
static void test_ggml_awkward_rows(void **state)
{
    const ggml_state *gs = *state;
    if (!gs->lib) skip();
    enum { N = 512 };
    float x[N];
    uint64_t s = 11;
    for (int c = 0; c < 8; c++) {
        switch (c) {
        case 0: memset(x, 0, sizeof x); break;
        case 1: for (int i = 0; i < N; i++) x[i] = 0.5f; break;
        case 2: for (int i = 0; i < N; i++) x[i] = -1.0f / 3.0f; break;
        case 3:
            for (int i = 0; i < N; i++) x[i] = rng_gauss(&s);
            x[100] = 30000.0f;
            x[400] = -1e6f;
            break;
        case 4: for (int i = 0; i < N; i++) x[i] = 1e-40f * rng_gauss(&s); break;
        case 5: for (int i = 0; i < N; i++) x[i] = 1e-20f * rng_gauss(&s); break;
        case 6: for (int i = 0; i < N; i++) x[i] = -fabsf(rng_gauss(&s)) - 0.5f; break;
        default: for (int i = 0; i < N; i++) x[i] = (i % 32 == 7) ? 1.0f : 0.0f; break;
        }
        for (int i = 0; i < GGML_NSYMS; i++) {
            char what[64];
            snprintf(what, sizeof what, "awkward case %d", c);
            ggml_compare(gs, what, ggml_syms[i].type, x, N);
            /* and one block alone */
            snprintf(what, sizeof what, "awkward case %d, one block", c);
            ggml_compare(gs, what, ggml_syms[i].type, x, qb_type_get(ggml_syms[i].type)->blck);
        }
    }
}

/* ---- speed ------------------------------------------------------------------------------- */

static void test_speed_zoo(void **state)
{
    const ggml_state *gs = *state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_gguf *g = NULL;
    if (qb_gguf_open(&ctx, qbt_model_path("qb-docs-26m/qb-docs-26m-zoo.gguf"), &g))
        fail_msg("%s", qb_ctx_errmsg(&ctx));
    const qb_gguf_tensor *t = qb_gguf_find_tensor(g, "blk.0.ffn_down.weight");
    assert_non_null(t);
    const int64_t n = t->ne[0], rows = t->ne[1], total = n * rows;
    float *x = malloc((size_t)total * sizeof(float));
    assert_non_null(x);
    const uint8_t *h = t->data;
    for (int64_t i = 0; i < total; i++)
        x[i] = qb_f16_to_f32((uint16_t)(h[2 * i] | h[2 * i + 1] << 8));
    static const int types[] = {QB_TYPE_Q4_K, QB_TYPE_Q6_K};
    for (int k = 0; k < 2; k++) {
        const int ty = types[k];
        uint8_t *q = malloc(row_bytes(ty, n) * (size_t)rows);
        assert_non_null(q);
        double best = 1e30, best_ggml = 1e30;
        for (int rep = 0; rep < 3; rep++) {
            double t0 = now_ms();
            for (int64_t r = 0; r < rows; r++)
                qb_quant_row_ref(ty, x + r * n, q + (size_t)r * row_bytes(ty, n), n);
            const double ms = now_ms() - t0;
            if (ms < best) best = ms;
            if (gs->lib) {
                t0 = now_ms();
                for (int64_t r = 0; r < rows; r++)
                    ggml_quantize(gs, ty, x + r * n, q + (size_t)r * row_bytes(ty, n), n);
                const double mg = now_ms() - t0;
                if (mg < best_ggml) best_ggml = mg;
            }
        }
        if (verbose()) {
            printf("    %s %lldx%lld: %.1f ms", type_name(ty), (long long)rows, (long long)n, best);
            if (gs->lib) printf(" (ggml's reference: %.1f ms)", best_ggml);
            printf("\n");
        }
        free(q);
    }
    free(x);
    qb_gguf_close(g);
}

int main(void)
{
    const struct CMUnitTest zoo[] = {
        cmocka_unit_test(test_zoo_inventory),
        cmocka_unit_test(test_zoo_Q8_0),  cmocka_unit_test(test_zoo_Q4_0),
        cmocka_unit_test(test_zoo_Q4_1),  cmocka_unit_test(test_zoo_Q5_0),
        cmocka_unit_test(test_zoo_Q5_1),  cmocka_unit_test(test_zoo_Q2_K),
        cmocka_unit_test(test_zoo_Q3_K),  cmocka_unit_test(test_zoo_Q4_K),
        cmocka_unit_test(test_zoo_Q5_K),  cmocka_unit_test(test_zoo_Q6_K),
        cmocka_unit_test(test_zoo_IQ4_NL), cmocka_unit_test(test_zoo_IQ4_XS),
    };
    const struct CMUnitTest props[] = {
        cmocka_unit_test(test_round_trip_rmse), cmocka_unit_test(test_zero_rows),
        cmocka_unit_test(test_constant_rows),   cmocka_unit_test(test_huge_outlier),
        cmocka_unit_test(test_tiny_values),     cmocka_unit_test(test_negative_rows),
        cmocka_unit_test(test_single_block),    cmocka_unit_test(test_f16_bf16_rows),
        cmocka_unit_test(test_iq4_index),       cmocka_unit_test(test_refusals),
    };
    const struct CMUnitTest ggml[] = {
        cmocka_unit_test(test_ggml_random_rows),
        cmocka_unit_test(test_ggml_awkward_rows),
        cmocka_unit_test(test_speed_zoo),
    };
    int fails = 0;
    fails += cmocka_run_group_tests_name("zoo", zoo, zoo_setup, zoo_teardown);
    fails += cmocka_run_group_tests_name("props", props, NULL, NULL);
    fails += cmocka_run_group_tests_name("ggml", ggml, ggml_setup, ggml_teardown);
    return fails ? 1 : 0;
}
