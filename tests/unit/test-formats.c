/* test-formats.c — quantization formats as values (core/quant/format.h) and the row kernels of
 * the non-ggml formats (kernels/fmt.h): every spelling parses and names back, bad names and
 * shapes fail with the right message, llama-quantize's fallback table, sizes in bits per
 * weight, exact FP8 / NF4 / E2M1 tables, the GPTQ reference quantizer reproduced bit for bit,
 * per-format round-trip RMSE budgets on Gaussian data with outliers, and the orderings that
 * must hold (finer granularity → lower error, asym beats sym on shifted data). */
#include "testutil.h"

#include "core/qb.h"
#include "core/quant/format.h"
#include "fmt.h"
#include "kernels.h"

#include <math.h>

/* ---- helpers -------------------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s) /* (0, 1) */
{
    return ((double)(rng_next(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static float rng_gauss(uint64_t *s)
{
    double u = rng_unit(s), v = rng_unit(s);
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

/* rows × n Gaussian values, std sigma·(row factor between 0.5 and 2 when row_scales), plus
 * about 1 in 200 outliers of 6..10 sigma. Caller frees. */
static float *gauss_matrix(uint64_t seed, int64_t rows, int64_t n, float sigma, bool row_scales, bool outliers)
{
    float *x = malloc((size_t)(rows * n) * sizeof *x);
    assert_non_null(x);
    uint64_t s = seed;
    for (int64_t r = 0; r < rows; r++) {
        float rs = row_scales ? (float)(0.5 + 1.5 * rng_unit(&s)) : 1.0f;
        for (int64_t i = 0; i < n; i++) {
            float v = rng_gauss(&s) * sigma * rs;
            if (outliers && rng_next(&s) % 200 == 0) v = (float)((rng_next(&s) & 1) ? 1 : -1) * sigma * rs * (float)(6 + 4 * rng_unit(&s));
            x[r * n + i] = v;
        }
    }
    return x;
}

static qb_format fmt(const char *name)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_format f;
    if (qb_format_parse(&ctx, name, &f) != QB_OK) fail_msg("parse '%s': %s", name, qb_ctx_errmsg(&ctx));
    return f;
}

/* Quantize and dequantize rows × n through f; returns the dequantized matrix (caller frees). */
static float *roundtrip(const qb_format *f, const float *x, int64_t rows, int64_t n)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    size_t rb = qb_format_row_bytes(f, n);
    assert_true(rb > 0);
    uint8_t *q = malloc((size_t)rows * rb);
    float *y = malloc((size_t)(rows * n) * sizeof *y);
    assert_non_null(q);
    assert_non_null(y);
    if (qb_quantize_matrix(&ctx, f, x, rows, n, q, NULL) != QB_OK) fail_msg("quantize: %s", qb_ctx_errmsg(&ctx));
    for (int64_t r = 0; r < rows; r++) qb_dequantize_row(f, q + (size_t)r * rb, y + r * n, n);
    free(q);
    return y;
}

static double mse_of(const float *x, const float *y, int64_t count)
{
    double s = 0;
    for (int64_t i = 0; i < count; i++) s += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
    return s / (double)count;
}

static double rms_of(const float *x, int64_t count)
{
    double s = 0;
    for (int64_t i = 0; i < count; i++) s += (double)x[i] * x[i];
    return sqrt(s / (double)count);
}

static double fmt_mse(const char *name, const float *x, int64_t rows, int64_t n)
{
    qb_format f = fmt(name);
    float *y = roundtrip(&f, x, rows, n);
    double m = mse_of(x, y, rows * n);
    free(y);
    return m;
}

/* ---- parse / name --------------------------------------------------------------------- */

static void test_parse_names(void **state)
{
    (void)state;
    static const struct {
        const char *in, *canon;
    } cases[] = {
        {"f32", "f32"}, {"F16", "f16"}, {"bf16", "bf16"}, {"q8_0", "q8_0"}, {"Q4_0", "q4_0"}, {"q4_1", "q4_1"},
        {"q5_0", "q5_0"}, {"Q5_1", "q5_1"}, {"q2_k", "q2_k"}, {"Q3_K", "q3_k"}, {"q4_K", "q4_k"},
        {"q5_k", "q5_k"}, {"Q6_K", "q6_k"}, {"iq4_nl", "iq4_nl"}, {"IQ4_XS", "iq4_xs"},
        {"int4", "int4-channel"}, {"int8-channel", "int8-channel"}, {"int4-sym", "int4-channel"},
        {"int4-asym", "int4-channel-asym"}, {"int4-g128-asym", "int4-g128-asym"},
        {"INT4-ASYM-G128", "int4-g128-asym"}, {"int3-g64-sym", "int3-g64"}, {"int2-tensor", "int2-tensor"},
        {"int5-g32", "int5-g32"}, {"int6-g256-asym", "int6-g256-asym"}, {"int7-tensor-asym", "int7-tensor-asym"},
        {"nf4", "nf4"}, {"NF4-DQ", "nf4-dq"}, {"fp8-e4m3", "fp8-e4m3"}, {"fp8-e4m3-tensor", "fp8-e4m3"},
        {"FP8-E5M2", "fp8-e5m2"}, {"fp8-e4m3-channel", "fp8-e4m3-channel"}, {"fp8-e5m2-channel", "fp8-e5m2-channel"},
        {"mxfp4", "mxfp4"}, {"MXFP4", "mxfp4"},
    };
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        qb_format f, g;
        if (qb_format_parse(&ctx, cases[i].in, &f) != QB_OK) fail_msg("'%s': %s", cases[i].in, qb_ctx_errmsg(&ctx));
        char buf[64];
        qb_format_name(&f, buf, sizeof buf);
        if (strcmp(buf, cases[i].canon)) fail_msg("'%s' names as '%s', want '%s'", cases[i].in, buf, cases[i].canon);
        assert_int_equal(qb_format_parse(&ctx, buf, &g), QB_OK);
        assert_true(qb_format_equal(&f, &g));
    }
    /* every integer format round-trips and differs from its neighbours */
    static const int groups[] = {QB_GROUP_TENSOR, QB_GROUP_CHANNEL, 32, 64, 128, 256};
    for (int bits = 2; bits <= 8; bits++)
        for (int gi = 0; gi < 6; gi++)
            for (int asym = 0; asym < 2; asym++) {
                qb_format f = {.kind = QB_FMT_INT, .bits = bits, .group = groups[gi], .asym = asym}, g;
                char buf[64];
                qb_format_name(&f, buf, sizeof buf);
                assert_int_equal(qb_format_parse(&ctx, buf, &g), QB_OK);
                assert_true(qb_format_equal(&f, &g));
                qb_format h = f;
                h.asym = !asym;
                assert_false(qb_format_equal(&f, &h));
                h = f;
                h.bits = bits == 8 ? 7 : bits + 1;
                assert_false(qb_format_equal(&f, &h));
            }
    qb_format a = qb_format_ggml(QB_TYPE_Q4_K), b = fmt("q4_k"), c = fmt("nf4"), d = fmt("nf4-dq");
    assert_true(qb_format_equal(&a, &b));
    assert_false(qb_format_equal(&a, &c));
    assert_false(qb_format_equal(&c, &d));
    qb_format e1 = fmt("fp8-e4m3"), e2 = fmt("fp8-e4m3-channel"), e3 = fmt("fp8-e5m2");
    assert_false(qb_format_equal(&e1, &e2));
    assert_false(qb_format_equal(&e1, &e3));
    /* a short buffer truncates, NUL-terminated */
    char tiny[5];
    qb_format_name(&b, tiny, sizeof tiny);
    assert_string_equal(tiny, "q4_k");
    qb_format f4 = fmt("int4-g128-asym");
    qb_format_name(&f4, tiny, sizeof tiny);
    assert_string_equal(tiny, "int4");
}

static void test_parse_errors(void **state)
{
    (void)state;
    static const struct {
        const char *in, *msg;
    } cases[] = {
        {"foo", "unknown format 'foo'"},
        {"", "empty format name"},
        {"q8_1", "unknown format 'q8_1'"},
        {"q8_k", "unknown format 'q8_k'"},
        {"int", "format 'int': missing bits after 'int'"},
        {"int1", "format 'int1': bits 1 out of range 2..8"},
        {"int9", "format 'int9': bits 9 out of range 2..8"},
        {"int16-g128", "format 'int16-g128': bits 16 out of range 2..8"},
        {"int4x", "unknown format 'int4x'"},
        {"int4-g48", "format 'int4-g48': group 48 not one of 32, 64, 128, 256"},
        {"int4-g512", "format 'int4-g512': group 512 not one of 32, 64, 128, 256"},
        {"int4-g12x", "format 'int4-g12x': unknown option 'g12x'"},
        {"int4-foo", "format 'int4-foo': unknown option 'foo' (expected tensor, channel, g32, g64, g128, g256, sym "
                     "or asym)"},
        {"int4-g128-channel", "format 'int4-g128-channel': granularity given twice"},
        {"int4-sym-asym", "format 'int4-sym-asym': sym/asym given twice"},
        {"int4-", "format 'int4-': empty or overlong option"},
        {"int4--asym", "format 'int4--asym': empty or overlong option"},
        {"nf4-x", "unknown format 'nf4-x'"},
        {"fp8-e4m3-g128", "format 'fp8-e4m3-g128': unknown option 'g128' (expected tensor or channel)"},
        {"fp8", "unknown format 'fp8'"},
        {"mxfp8", "unknown format 'mxfp8'"},
    };
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        qb_format f;
        qb_status st = qb_format_parse(&ctx, cases[i].in, &f);
        if (st != QB_ERR_ARG) fail_msg("'%s' gave status %d", cases[i].in, st);
        if (strcmp(qb_ctx_errmsg(&ctx), cases[i].msg))
            fail_msg("'%s': message '%s', want '%s'", cases[i].in, qb_ctx_errmsg(&ctx), cases[i].msg);
    }
    qb_format f;
    assert_int_equal(qb_format_parse(&ctx, NULL, &f), QB_ERR_ARG);
    assert_string_equal(qb_ctx_errmsg(&ctx), "empty format name");
    char longname[200];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    assert_int_equal(qb_format_parse(&ctx, longname, &f), QB_ERR_ARG);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "unknown format 'xxxx"));
}

static void want_check(const qb_format *f, int64_t n, qb_status want, const char *msg)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_status st = qb_format_check(&ctx, f, n);
    char nm[64];
    qb_format_name(f, nm, sizeof nm);
    if (st != want) fail_msg("check %s n=%lld: status %d, want %d (%s)", nm, (long long)n, st, want, qb_ctx_errmsg(&ctx));
    if (msg && strcmp(qb_ctx_errmsg(&ctx), msg))
        fail_msg("check %s n=%lld: message '%s', want '%s'", nm, (long long)n, qb_ctx_errmsg(&ctx), msg);
    if (st == QB_OK) assert_true(qb_format_row_bytes(f, n) > 0);
    else assert_int_equal(qb_format_row_bytes(f, n), 0);
}

static void test_check(void **state)
{
    (void)state;
    qb_format f = fmt("int4-g128");
    want_check(&f, 172, QB_ERR_UNSUPPORTED, "int4-g128: group 128 does not divide the row length 172");
    want_check(&f, 384, QB_OK, NULL);
    f = fmt("int4-g32-asym");
    want_check(&f, 48, QB_ERR_UNSUPPORTED, "int4-g32-asym: group 32 does not divide the row length 48");
    f = fmt("int3-channel");
    want_check(&f, 172, QB_OK, NULL);
    want_check(&f, 1, QB_OK, NULL);
    want_check(&f, 0, QB_ERR_ARG, "int3-channel: row length 0 is not positive");
    f = fmt("q4_k");
    want_check(&f, 172, QB_ERR_UNSUPPORTED, "q4_k: row length 172 is not a multiple of the block size 256");
    want_check(&f, 512, QB_OK, NULL);
    f = fmt("q8_0");
    want_check(&f, 100, QB_ERR_UNSUPPORTED, "q8_0: row length 100 is not a multiple of the block size 32");
    f = fmt("f16");
    want_check(&f, 7, QB_OK, NULL);
    f = fmt("nf4");
    want_check(&f, 96, QB_ERR_UNSUPPORTED, "nf4: row length 96 is not a multiple of the block size 64");
    f = fmt("mxfp4");
    want_check(&f, 48, QB_ERR_UNSUPPORTED, "mxfp4: row length 48 is not a multiple of the block size 32");
    f = fmt("fp8-e5m2-channel");
    want_check(&f, 3, QB_OK, NULL);

    /* hand-built values the parser would refuse */
    qb_format bad = {.kind = QB_FMT_INT, .bits = 9, .group = 128};
    want_check(&bad, 256, QB_ERR_ARG, "format 'int9-g128': bits 9 out of range 2..8");
    bad.bits = 1;
    want_check(&bad, 256, QB_ERR_ARG, "format 'int1-g128': bits 1 out of range 2..8");
    bad = (qb_format){.kind = QB_FMT_INT, .bits = 4, .group = 48};
    want_check(&bad, 96, QB_ERR_ARG, "format 'int4-g48': group 48 not one of 32, 64, 128, 256");
    bad = (qb_format){.kind = QB_FMT_FP8_E4M3, .group = 32};
    want_check(&bad, 64, QB_ERR_ARG, "format 'fp8-e4m3': fp8 scales are per tensor or per channel, not groups of 32");
    bad = qb_format_ggml(QB_TYPE_Q8_K);
    want_check(&bad, 256, QB_ERR_UNSUPPORTED, "q8_k is not a weight storage format");
    bad = qb_format_ggml((qb_type)5);
    want_check(&bad, 256, QB_ERR_ARG, "unknown ggml type 5");
    bad = (qb_format){.kind = QB_FMT_KIND_COUNT}; /* one past the table's last row */
    char unknown[48];
    snprintf(unknown, sizeof unknown, "unknown format kind %d", (int)QB_FMT_KIND_COUNT);
    want_check(&bad, 256, QB_ERR_ARG, unknown);
}

/* llama.cpp src/llama-quant.cpp: ne0 % block != 0 → this type; then ne0 % 32 != 0 → F16. */
static void test_fallback(void **state)
{
    (void)state;
    static const struct {
        qb_type t;
        int64_t n;
        qb_type want;
    } cases[] = {
        {QB_TYPE_Q2_K, 288, QB_TYPE_IQ4_NL},  {QB_TYPE_Q3_K, 288, QB_TYPE_IQ4_NL}, {QB_TYPE_IQ4_XS, 288, QB_TYPE_IQ4_NL},
        {QB_TYPE_Q4_K, 288, QB_TYPE_Q5_0},    {QB_TYPE_Q5_K, 288, QB_TYPE_Q5_1},   {QB_TYPE_Q6_K, 288, QB_TYPE_Q8_0},
        {QB_TYPE_Q2_K, 172, QB_TYPE_F16},     {QB_TYPE_Q4_K, 100, QB_TYPE_F16},    {QB_TYPE_Q6_K, 48 + 1, QB_TYPE_F16},
        {QB_TYPE_Q4_0, 100, QB_TYPE_F16},     {QB_TYPE_Q8_0, 17, QB_TYPE_F16},     {QB_TYPE_IQ4_NL, 40, QB_TYPE_F16},
        {QB_TYPE_Q4_K, 512, QB_TYPE_Q4_K},    {QB_TYPE_Q4_0, 96, QB_TYPE_Q4_0},    {QB_TYPE_F16, 7, QB_TYPE_F16},
        {QB_TYPE_F32, 3, QB_TYPE_F32},        {QB_TYPE_IQ4_XS, 1536, QB_TYPE_IQ4_XS},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        qb_format f = qb_format_ggml(cases[i].t);
        qb_format g = qb_format_fallback(&f, cases[i].n);
        assert_int_equal(g.kind, QB_FMT_GGML);
        if (g.type != (int)cases[i].want)
            fail_msg("fallback of %s at n=%lld: %s, want %s", qb_type_get(cases[i].t)->name, (long long)cases[i].n,
                     qb_type_get(g.type)->name, qb_type_get(cases[i].want)->name);
        qb_ctx ctx;
        qb_ctx_init(&ctx);
        assert_int_equal(qb_format_check(&ctx, &g, cases[i].n), QB_OK);
    }
    /* other kinds have no fallback: returned as they are */
    qb_format f = fmt("int4-g128"), g = qb_format_fallback(&f, 172);
    assert_true(qb_format_equal(&f, &g));
    f = fmt("nf4");
    g = qb_format_fallback(&f, 100);
    assert_true(qb_format_equal(&f, &g));
}

static void test_sizes(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int64_t n;
        size_t row_bytes;
        double bpw;
    } cases[] = {
        {"q4_0", 512, 288, 4.5},
        {"q4_1", 512, 320, 5.0},
        {"q5_0", 512, 352, 5.5},
        {"q5_1", 512, 384, 6.0},
        {"q8_0", 512, 544, 8.5},
        {"q2_k", 512, 168, 2.625},
        {"q3_k", 512, 220, 3.4375},
        {"q4_k", 512, 288, 4.5},
        {"q5_k", 512, 352, 5.5},
        {"q6_k", 512, 420, 6.5625},
        {"iq4_nl", 512, 288, 4.5},
        {"iq4_xs", 512, 272, 4.25},
        {"f16", 512, 1024, 16.0},
        {"bf16", 512, 1024, 16.0},
        {"f32", 3, 12, 32.0},
        {"int4-g128-asym", 512, 272, 4.0 + 32.0 / 128},
        {"int4-g128", 512, 264, 4.0 + 16.0 / 128},
        {"int3-g64", 512, 8 * 26, 3.0 + 16.0 / 64},
        {"int2-g32-asym", 512, 16 * 12, 2.0 + 32.0 / 32},
        {"int5-g256", 512, 2 * 162, 5.0 + 16.0 / 256},
        {"int7-g32-asym", 64, 2 * 32, 7.0 + 32.0 / 32},
        {"int8-channel", 512, 516, 8.0 + 32.0 / 512},
        {"int4-channel-asym", 512, 264, 4.0 + 64.0 / 512},
        {"int4-tensor", 512, 260, 4.0 + 32.0 / 512},
        {"int3-channel", 100, 4 + 38, (4 + 38) * 8.0 / 100},
        {"int5-channel-asym", 3, 8 + 2, (8 + 2) * 8.0 / 3},
        {"nf4", 512, 288, 4.5},
        {"nf4-dq", 512, 8 + 8 * 33, 4.25},
        {"nf4-dq", 64 * 300, 4 + 8 + 300 * 33, (4 + 8 + 300 * 33) * 8.0 / (64 * 300)},
        {"fp8-e4m3", 512, 516, 8.0625},
        {"fp8-e5m2-channel", 512, 516, 8.0625},
        {"mxfp4", 512, 272, 4.25},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        qb_format f = fmt(cases[i].name);
        size_t rb = qb_format_row_bytes(&f, cases[i].n);
        double bpw = qb_format_bpw(&f, cases[i].n);
        if (rb != cases[i].row_bytes || fabs(bpw - cases[i].bpw) > 1e-12)
            fail_msg("%s n=%lld: %zu bytes %.6f bpw, want %zu bytes %.6f bpw", cases[i].name, (long long)cases[i].n, rb,
                     bpw, cases[i].row_bytes, cases[i].bpw);
    }
    qb_format f = fmt("q4_k");
    assert_int_equal(qb_format_row_bytes(&f, 100), 0);
    assert_true(qb_format_bpw(&f, 100) == 0.0);
}

/* ---- exact tables --------------------------------------------------------------------- */

/* The value of an fp8 code computed independently from the definition. */
static double fp8_value(uint8_t c, int ebits, int mbits, int bias)
{
    int s = c >> 7, e = (c >> mbits) & ((1 << ebits) - 1), m = c & ((1 << mbits) - 1);
    double v = e == 0 ? ldexp((double)m, 1 - bias - mbits) : ldexp(1.0 + (double)m / (1 << mbits), e - bias);
    return s ? -v : v;
}

static void test_fp8_tables(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        /* E4M3: 0x7f / 0xff NaN, everything else finite */
        float v = qb_fp8_e4m3_to_f32((uint8_t)c);
        if ((c & 0x7f) == 0x7f) {
            assert_true(isnan(v));
            assert_int_equal(qb_fp8_e4m3_from_f32(v) & 0x7f, 0x7f);
        } else {
            if ((double)v != fp8_value((uint8_t)c, 4, 3, 7)) fail_msg("e4m3 0x%02x decodes to %g", c, (double)v);
            if (qb_fp8_e4m3_from_f32(v) != c) fail_msg("e4m3 0x%02x: %g encodes to 0x%02x", c, (double)v, qb_fp8_e4m3_from_f32(v));
        }
        /* E5M2: exponent 31 is inf (mantissa 0) or NaN */
        float w = qb_fp8_e5m2_to_f32((uint8_t)c);
        if ((c & 0x7c) == 0x7c) {
            if (c & 3) {
                assert_true(isnan(w));
                assert_int_equal(qb_fp8_e5m2_from_f32(w) & 0x7f, 0x7f);
            } else {
                assert_true(isinf(w));
                assert_int_equal(qb_fp8_e5m2_from_f32(w), (c & 0x80) | 0x7b); /* saturates */
            }
        } else {
            if ((double)w != fp8_value((uint8_t)c, 5, 2, 15)) fail_msg("e5m2 0x%02x decodes to %g", c, (double)w);
            if (qb_fp8_e5m2_from_f32(w) != c) fail_msg("e5m2 0x%02x: %g encodes to 0x%02x", c, (double)w, qb_fp8_e5m2_from_f32(w));
        }
    }
    /* landmarks */
    assert_true(qb_fp8_e4m3_to_f32(0x7e) == 448.0f);
    assert_true(qb_fp8_e4m3_to_f32(0x01) == 0x1p-9f);
    assert_true(qb_fp8_e4m3_to_f32(0x08) == 0x1p-6f);
    assert_true(qb_fp8_e4m3_to_f32(0x38) == 1.0f);
    assert_true(qb_fp8_e5m2_to_f32(0x7b) == 57344.0f);
    assert_true(qb_fp8_e5m2_to_f32(0x01) == 0x1p-16f);
    assert_true(qb_fp8_e5m2_to_f32(0x3c) == 1.0f);
    assert_int_equal(qb_fp8_e4m3_from_f32(-0.0f), 0x80);
    /* saturation */
    assert_int_equal(qb_fp8_e4m3_from_f32(449.0f), 0x7e);
    assert_int_equal(qb_fp8_e4m3_from_f32(1e30f), 0x7e);
    assert_int_equal(qb_fp8_e4m3_from_f32(-INFINITY), 0xfe);
    assert_int_equal(qb_fp8_e5m2_from_f32(60000.0f), 0x7b);
    assert_int_equal(qb_fp8_e5m2_from_f32(INFINITY), 0x7b);
    /* round to nearest, ties to even: midpoints between neighbouring positive codes */
    for (int c = 0; c < 0x7e; c++) {
        double lo = fp8_value((uint8_t)c, 4, 3, 7), hi = fp8_value((uint8_t)(c + 1), 4, 3, 7);
        float mid = (float)((lo + hi) / 2);
        int want = (c & 1) ? c + 1 : c;
        if (qb_fp8_e4m3_from_f32(mid) != want) fail_msg("e4m3 tie %g → 0x%02x, want 0x%02x", (double)mid, qb_fp8_e4m3_from_f32(mid), want);
        assert_int_equal(qb_fp8_e4m3_from_f32(nextafterf(mid, 0)), c);
        assert_int_equal(qb_fp8_e4m3_from_f32(nextafterf(mid, 1e9f)), c + 1);
        assert_int_equal(qb_fp8_e4m3_from_f32(-mid), 0x80 | want);
    }
    for (int c = 0; c < 0x7b; c++) {
        double lo = fp8_value((uint8_t)c, 5, 2, 15), hi = fp8_value((uint8_t)(c + 1), 5, 2, 15);
        float mid = (float)((lo + hi) / 2);
        int want = (c & 1) ? c + 1 : c;
        assert_int_equal(qb_fp8_e5m2_from_f32(mid), want);
        assert_int_equal(qb_fp8_e5m2_from_f32(nextafterf(mid, 0)), c);
        assert_int_equal(qb_fp8_e5m2_from_f32(nextafterf(mid, 1e9f)), c + 1);
    }
    /* below half the smallest subnormal: zero */
    assert_int_equal(qb_fp8_e4m3_from_f32(0x1p-11f), 0);
    assert_int_equal(qb_fp8_e4m3_from_f32(0x1p-10f), 0);   /* tie with 0x01: even (0) */
    assert_int_equal(qb_fp8_e4m3_from_f32(0x1.8p-10f), 1);
}

static void test_nf4_levels(void **state)
{
    (void)state;
    /* QLoRA / bitsandbytes NF4 table */
    static const double published[16] = {
        -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
        -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
        0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
        0.7229568362236023, 1.0,
    };
    for (int i = 0; i < 16; i++) {
        assert_true(qb_nf4_levels[i] == (float)published[i]);
        assert_int_equal(qb_nf4_code(qb_nf4_levels[i]), i);
        if (i < 15) {
            /* nearest level on either side of the midpoint */
            double mid = (published[i] + published[i + 1]) / 2;
            assert_int_equal(qb_nf4_code((float)(mid - 1e-6)), i);
            assert_int_equal(qb_nf4_code((float)(mid + 1e-6)), i + 1);
        }
    }
    assert_int_equal(qb_nf4_code(2.0f), 15);
    assert_int_equal(qb_nf4_code(-2.0f), 0);
    assert_int_equal(qb_nf4_code(NAN), 7);
    /* nearest-level search agrees with brute force on a fine sweep */
    for (int k = -1100; k <= 1100; k++) {
        float v = (float)k / 1000.0f;
        int best = 0;
        for (int i = 1; i < 16; i++)
            if (fabsf(v - qb_nf4_levels[i]) < fabsf(v - qb_nf4_levels[best])) best = i;
        int got = qb_nf4_code(v);
        if (got != best && fabsf(v - qb_nf4_levels[got]) != fabsf(v - qb_nf4_levels[best]))
            fail_msg("nf4 code of %g: %d, nearest is %d", (double)v, got, best);
    }
    /* a block whose values are levels × absmax round-trips exactly */
    float x[64], y[64];
    uint8_t q[36];
    for (int i = 0; i < 64; i++) x[i] = qb_nf4_levels[(i * 7) % 16] * 0.5f;
    qb_quant_row_nf4_ref(false, x, q, 64);
    qb_dequant_row_nf4_ref(false, q, y, 64);
    for (int i = 0; i < 64; i++) assert_true(x[i] == y[i]);
    float a;
    memcpy(&a, q, 4);
    assert_true(a == 0.5f);
    assert_int_equal(q[4] & 15, 0);       /* element 0: level 0 in the low nibble */
    assert_int_equal(q[4] >> 4, 7);       /* element 1: level 7 */
}

static void test_mxfp4_values(void **state)
{
    (void)state;
    static const float mags[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
    for (int c = 0; c < 16; c++) {
        float v = qb_e2m1_to_f32((uint8_t)c);
        assert_true(fabsf(v) == mags[c & 7]);
        if (c & 8) assert_true(signbit(v));
        int back = qb_e2m1_from_f32(v);
        assert_int_equal(back, c == 8 ? 0 : c); /* -0 stores +0 */
    }
    static const struct {
        float v;
        int code;
    } ties[] = {
        {0.25f, 0}, {0.75f, 2}, {1.25f, 2}, {1.75f, 4}, {2.5f, 4}, {3.5f, 6}, {5.0f, 6},
        {0.26f, 1}, {0.74f, 1}, {5.01f, 7}, {7.0f, 7}, {1e9f, 7}, {-0.75f, 10}, {-7.0f, 15}, {-0.1f, 0},
    };
    for (size_t i = 0; i < sizeof ties / sizeof ties[0]; i++)
        if (qb_e2m1_from_f32(ties[i].v) != ties[i].code)
            fail_msg("e2m1(%g) = %d, want %d", (double)ties[i].v, qb_e2m1_from_f32(ties[i].v), ties[i].code);

    /* a block of representable values (absmax 1.5 → X = floor(log2 1.5) − 2 = −2) is exact */
    float x[32], y[32];
    uint8_t q[17];
    for (int i = 0; i < 32; i++) x[i] = qb_e2m1_to_f32((uint8_t)((i * 5) % 16)) * 0.25f;
    x[3] = 1.5f;
    qb_quant_row_mxfp4_ref(x, q, 32);
    assert_int_equal(q[0], 127 - 2);
    qb_dequant_row_mxfp4_ref(q, y, 32);
    for (int i = 0; i < 32; i++)
        if (x[i] != y[i]) fail_msg("mxfp4 element %d: %g → %g", i, (double)x[i], (double)y[i]);
    /* nibble layout: element j low nibble of qs[j], element j + 16 high nibble */
    assert_int_equal(q[1 + 3] & 15, qb_e2m1_from_f32(1.5f / 0.25f));
    assert_int_equal(q[1 + 0] >> 4, qb_e2m1_from_f32(x[16] / 0.25f));
    /* absmax 7 → X = 0: 7 clips to 6 (the spec's scale rule), 0.25 ties to 0 */
    for (int i = 0; i < 32; i++) x[i] = 0;
    x[0] = 7.0f;
    x[1] = -5.0f;
    x[2] = 0.25f;
    qb_quant_row_mxfp4_ref(x, q, 32);
    assert_int_equal(q[0], 127);
    qb_dequant_row_mxfp4_ref(q, y, 32);
    assert_true(y[0] == 6.0f && y[1] == -4.0f && y[2] == 0.0f);
    /* all zero: scale byte 0, zeros back */
    memset(x, 0, sizeof x);
    qb_quant_row_mxfp4_ref(x, q, 32);
    assert_int_equal(q[0], 0);
    qb_dequant_row_mxfp4_ref(q, y, 32);
    for (int i = 0; i < 32; i++) assert_true(y[i] == 0.0f && !signbit(y[i]));
}

/* ---- the GPTQ reference quantizer, written out as quant.py computes it ---------------- */

/* IST-DASLab/gptq quant.py find_params + quantize over one group, in f32 like torch. */
static void gptq_ref_group(const float *x, int64_t n, int bits, bool sym, float *y)
{
    float maxq = (float)((1 << bits) - 1);
    float xmin = 0, xmax = 0;
    float mn = x[0], mx = x[0];
    for (int64_t i = 1; i < n; i++) {
        if (x[i] < mn) mn = x[i];
        if (x[i] > mx) mx = x[i];
    }
    xmin = mn < 0 ? mn : 0; /* torch.minimum(x.min(1), 0) */
    xmax = mx > 0 ? mx : 0;
    if (sym) {
        xmax = fabsf(xmin) > xmax ? fabsf(xmin) : xmax;
        if (xmin < 0) xmin = -xmax;
    }
    if (xmin == 0 && xmax == 0) xmin = -1, xmax = 1;
    float scale = (xmax - xmin) / maxq;
    float zero = sym ? (maxq + 1) / 2 : nearbyintf(-xmin / scale);
    for (int64_t i = 0; i < n; i++) {
        float q = nearbyintf(x[i] / scale) + zero;
        q = q < 0 ? 0 : q > maxq ? maxq : q;
        y[i] = scale * (q - zero);
    }
}

static void test_gptq_reference(void **state)
{
    (void)state;
    const int64_t rows = 24, n = 512;
    float *x = gauss_matrix(7, rows, n, 0.02f, true, true);
    /* one row all positive, one all zero: the reference's corner cases */
    for (int64_t i = 0; i < n; i++) x[3 * n + i] = fabsf(x[3 * n + i]);
    for (int64_t i = 0; i < n; i++) x[5 * n + i] = 0;
    float *want = malloc((size_t)(rows * n) * sizeof *want);
    for (int bits = 2; bits <= 8; bits++)
        for (int sym = 0; sym < 2; sym++) {
            /* per channel (f32 scale): bit-identical to the reference */
            qb_format f = {.kind = QB_FMT_INT, .bits = bits, .group = QB_GROUP_CHANNEL, .asym = !sym};
            float *y = roundtrip(&f, x, rows, n);
            for (int64_t r = 0; r < rows; r++) gptq_ref_group(x + r * n, n, bits, sym, want + r * n);
            for (int64_t i = 0; i < rows * n; i++)
                if (memcmp(&y[i], &want[i], 4))
                    fail_msg("int%d-channel%s element %lld: %.9g, reference %.9g", bits, sym ? "" : "-asym",
                             (long long)i, (double)y[i], (double)want[i]);
            free(y);
            /* per tensor (f32 scale): the same over the flattened tensor */
            f.group = QB_GROUP_TENSOR;
            y = roundtrip(&f, x, rows, n);
            gptq_ref_group(x, rows * n, bits, sym, want);
            assert_memory_equal(y, want, (size_t)(rows * n) * sizeof *y);
            free(y);
            /* groups of 128 (f16 scale): same error within 0.5% */
            f.group = 128;
            y = roundtrip(&f, x, rows, n);
            for (int64_t g = 0; g < rows * n; g += 128) gptq_ref_group(x + g, 128, bits, sym, want + g);
            double e_ours = mse_of(x, y, rows * n), e_ref = mse_of(x, want, rows * n);
            if (fabs(e_ours / e_ref - 1) > 0.005)
                fail_msg("int%d-g128%s: mse %.6g, reference %.6g", bits, sym ? "" : "-asym", e_ours, e_ref);
            free(y);
        }
    free(want);
    free(x);
}

/* The reference's symmetric quirk, kept on purpose: a group with no negative value keeps
 * xmin = 0, so scale = xmax / 15 with zero 8 and values above 7/15 · xmax clip. */
static void test_sym_positive_group(void **state)
{
    (void)state;
    const float x[4] = {1, 2, 3, 4};
    float y[4], want[4], d, z;
    qb_int_params(4, false, 1, 4, &d, &z);
    assert_true(d == 4.0f / 15 && z == 8);
    qb_format f = fmt("int4-channel");
    float *r = roundtrip(&f, x, 1, 4);
    gptq_ref_group(x, 4, 4, true, want);
    memcpy(y, r, sizeof y);
    free(r);
    assert_memory_equal(y, want, sizeof y);
    assert_true(y[0] == 4 * d && y[1] == 7 * d && y[3] == 7 * d);
    /* with one negative value the range is symmetric as usual */
    const float x2[4] = {-0.5f, 2, 3, 4};
    r = roundtrip(&f, x2, 1, 4);
    assert_true(fabsf(r[3] - 4) <= 4.0f / 15);
    free(r);
}

/* ---- round trips ---------------------------------------------------------------------- */

/* Relative RMSE (rmse / rms) budgets on N(0, 1)-like rows with 0.5% outliers of 6..10σ;
 * budgets are the measured values + 10% (the data are seeded: a change of quantizer shows). */
static void test_rmse_budgets(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        double budget;
    } cases[] = {
        /* name, budget (measured: budget / 1.1) */
        {"f32", 0.0}, {"f16", 0.000231}, {"bf16", 0.001826},
        {"q8_0", 0.008096}, {"q6_k", 0.02499}, {"q5_0", 0.06417},
        {"q5_1", 0.0472}, {"q5_k", 0.04608}, {"q4_0", 0.129},
        {"q4_1", 0.09845}, {"q4_k", 0.09122}, {"iq4_nl", 0.1036},
        {"iq4_xs", 0.1052}, {"q3_k", 0.2023}, {"q2_k", 0.367},
        {"int8-channel", 0.0206}, {"int8-tensor", 0.02926}, {"int8-g128-asym", 0.009372},
        {"int4-g128-asym", 0.1598}, {"int4-g32", 0.1434}, {"int4-channel", 0.3497},
        {"int3-g64-asym", 0.2712}, {"int2-g32-asym", 0.4816}, {"int6-g256", 0.06608},
        {"int5-g64-asym", 0.06104}, {"int7-channel-asym", 0.03758}, {"nf4", 0.1268},
        {"nf4-dq", 0.1269}, {"fp8-e4m3", 0.02912}, {"fp8-e4m3-channel", 0.02775},
        {"fp8-e5m2", 0.05878}, {"fp8-e5m2-channel", 0.05576}, {"mxfp4", 0.1464},
    };
    const int64_t rows = 48, n = 1024;
    float *x = gauss_matrix(42, rows, n, 1.0f, true, true);
    const double rms = rms_of(x, rows * n);
    int over = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        qb_format f = fmt(cases[i].name);
        float *y = roundtrip(&f, x, rows, n);
        for (int64_t k = 0; k < rows * n; k++)
            if (!isfinite(y[k])) fail_msg("%s: element %lld is %g", cases[i].name, (long long)k, (double)y[k]);
        double rel = sqrt(mse_of(x, y, rows * n)) / rms;
        if (getenv("QB_TEST_VERBOSE")) print_message("%-20s rel rmse %.5f (budget %.4f)\n", cases[i].name, rel, cases[i].budget);
        if (rel > cases[i].budget) {
            print_error("%s: relative RMSE %.5f over budget %.4f\n", cases[i].name, rel, cases[i].budget);
            over++;
        }
        free(y);
    }
    free(x);
    assert_int_equal(over, 0);
}

/* Every format at row lengths that are not powers of two (per-row formats at any length):
 * error within the format's resolution and nothing read or written outside the row. */
static void test_awkward_lengths(void **state)
{
    (void)state;
    static const int64_t lens[] = {1, 2, 3, 5, 7, 15, 17, 31, 33, 63, 65, 127, 129, 255, 257, 1023};
    static const char *names[] = {"int2-channel", "int3-channel-asym", "int4-tensor", "int5-channel", "int6-tensor-asym",
                                  "int7-channel", "int8-channel-asym", "fp8-e4m3-channel", "fp8-e5m2", "f16"};
    for (size_t fi = 0; fi < sizeof names / sizeof names[0]; fi++)
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            const int64_t n = lens[li], rows = 3;
            qb_format f = fmt(names[fi]);
            float *x = gauss_matrix(100 + li, rows, n, 1.0f, true, false);
            for (int64_t r = 0; r < rows; r++) x[r * n] = -fabsf(x[r * n]); /* see test_sym_positive_group */
            float *y = roundtrip(&f, x, rows, n);
            double amax = 0;
            for (int64_t k = 0; k < rows * n; k++) amax = fmax(amax, fabs(x[k]));
            double tol = f.kind == QB_FMT_INT ? 2.0 * amax / ((1 << f.bits) - 1) : 0.13 * amax;
            for (int64_t k = 0; k < rows * n; k++)
                if (fabs((double)x[k] - y[k]) > tol)
                    fail_msg("%s n=%lld element %lld: %g → %g", names[fi], (long long)n, (long long)k, (double)x[k],
                             (double)y[k]);
            free(x);
            free(y);
        }
    /* exact: a code stream that ends mid-byte keeps its last codes */
    qb_format f = fmt("int3-channel-asym");
    float x[5] = {0, 1, 2, 3, 7}, y[5];
    uint8_t q[16];
    memset(q, 0xee, sizeof q);
    qb_quant_row_int_ref(3, -1, true, x, q, 5, NULL);
    assert_int_equal(qb_format_row_bytes(&f, 5), 8 + 2);
    assert_int_equal(q[10], 0xee); /* untouched past the row */
    qb_dequant_row_int_ref(3, -1, true, q, y, 5);
    for (int i = 0; i < 5; i++) assert_true(x[i] == y[i]);
}

static void test_granularity_order(void **state)
{
    (void)state;
    const int64_t rows = 64, n = 1024;
    float *x = gauss_matrix(9, rows, n, 0.03f, true, true);
    for (int bits = 3; bits <= 5; bits++)
        for (int asym = 0; asym < 2; asym++) {
            static const char *grans[] = {"tensor", "channel", "g256", "g128", "g64", "g32"};
            double prev = INFINITY;
            for (int g = 0; g < 6; g++) {
                char name[40];
                snprintf(name, sizeof name, "int%d-%s%s", bits, grans[g], asym ? "-asym" : "");
                double m = fmt_mse(name, x, rows, n);
                if (!(m < prev)) fail_msg("%s: mse %.4g not below the coarser granularity's %.4g", name, m, prev);
                prev = m;
            }
        }
    /* fp8 per channel beats per tensor when rows differ in scale */
    assert_true(fmt_mse("fp8-e4m3-channel", x, rows, n) < fmt_mse("fp8-e4m3", x, rows, n));
    free(x);
}

static void test_sym_vs_asym(void **state)
{
    (void)state;
    const int64_t rows = 16, n = 512;
    float *x = gauss_matrix(11, rows, n, 1.0f, false, false);
    for (int64_t i = 0; i < rows * n; i++) x[i] += 4.0f; /* shifted: nearly all positive */
    for (int bits = 2; bits <= 8; bits++) {
        char s[32], a[32];
        snprintf(s, sizeof s, "int%d-g128", bits);
        snprintf(a, sizeof a, "int%d-g128-asym", bits);
        double ms = fmt_mse(s, x, rows, n), ma = fmt_mse(a, x, rows, n);
        if (!(ma < 0.5 * ms)) fail_msg("bits %d on shifted data: asym mse %.4g, sym %.4g", bits, ma, ms);
    }
    /* the q4_1 / q4_0 pair agrees */
    assert_true(fmt_mse("q4_1", x, rows, n) < fmt_mse("q4_0", x, rows, n));
    free(x);
}

static void test_zero_rows(void **state)
{
    (void)state;
    static const char *names[] = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k",
                                  "q4_k", "q5_k", "q6_k", "iq4_nl", "iq4_xs", "int2-tensor", "int3-channel",
                                  "int4-g128-asym", "int8-g32", "int5-tensor-asym", "nf4", "nf4-dq", "fp8-e4m3",
                                  "fp8-e5m2-channel", "mxfp4"};
    const int64_t rows = 3, n = 512;
    float *x = calloc((size_t)(rows * n), sizeof *x);
    for (int64_t i = 0; i < n; i++) x[2 * n + i] = (float)(i % 7) - 3.0f; /* a non-zero row too */
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        qb_format f = fmt(names[k]);
        float *y = roundtrip(&f, x, 2, n); /* the zero rows alone (per-tensor: an all-zero tensor) */
        for (int64_t i = 0; i < 2 * n; i++)
            if (y[i] != 0.0f) fail_msg("%s: zero row element %lld → %g", names[k], (long long)i, (double)y[i]);
        free(y);
        y = roundtrip(&f, x, rows, n); /* and next to a non-zero row */
        for (int64_t i = 0; i < 2 * n; i++)
            if (y[i] != 0.0f) fail_msg("%s: zero row (mixed) element %lld → %g", names[k], (long long)i, (double)y[i]);
        for (int64_t i = 2 * n; i < 3 * n; i++) assert_true(isfinite(y[i]));
        free(y);
    }
    free(x);
}

/* qb_quantize_matrix writes exactly what the row kernels write, for every kind. */
static void test_matrix_dispatch(void **state)
{
    (void)state;
    const int64_t rows = 5, n = 512;
    float *x = gauss_matrix(5, rows, n, 1.0f, true, true);
    static const char *names[] = {"q4_k", "q8_0", "iq4_xs", "f16", "int4-g64-asym", "int6-channel", "nf4",
                                  "nf4-dq", "fp8-e5m2-channel", "mxfp4"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        qb_format f = fmt(names[k]);
        size_t rb = qb_format_row_bytes(&f, n);
        uint8_t *a = malloc(rows * rb), *b = malloc(rows * rb);
        qb_ctx ctx;
        qb_ctx_init(&ctx);
        ctx.n_threads = 3;
        assert_int_equal(qb_quantize_matrix(&ctx, &f, x, rows, n, a, NULL), QB_OK);
        for (int64_t r = 0; r < rows; r++) {
            uint8_t *d = b + r * rb;
            switch (f.kind) {
            case QB_FMT_GGML: assert_true(qb_quant_row_ref(f.type, x + r * n, d, n)); break;
            case QB_FMT_INT: qb_quant_row_int_ref(f.bits, f.group, f.asym, x + r * n, d, n, NULL); break;
            case QB_FMT_NF4: qb_quant_row_nf4_ref(f.double_quant, x + r * n, d, n); break;
            case QB_FMT_FP8_E5M2: qb_quant_row_fp8_ref(true, x + r * n, d, n, -1); break;
            case QB_FMT_MXFP4: qb_quant_row_mxfp4_ref(x + r * n, d, n); break;
            default: fail();
            }
        }
        if (memcmp(a, b, rows * rb)) fail_msg("%s: matrix and row quantizers differ", names[k]);
        free(a);
        free(b);
    }
    free(x);
}

static void test_quantize_errors(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    float x[256] = {0};
    uint8_t q[1024];
    qb_format f = fmt("int4-g128");
    assert_int_equal(qb_quantize_matrix(&ctx, &f, x, 1, 172, q, NULL), QB_ERR_UNSUPPORTED);
    assert_string_equal(qb_ctx_errmsg(&ctx), "int4-g128: group 128 does not divide the row length 172");
    assert_int_equal(qb_quantize_matrix(&ctx, &f, x, -1, 128, q, NULL), QB_ERR_ARG);
    assert_int_equal(qb_quantize_matrix(&ctx, &f, x, 0, 128, q, NULL), QB_OK);
    assert_int_equal(qb_quantize_matrix(&ctx, &f, NULL, 1, 128, q, NULL), QB_ERR_ARG);
    volatile int cancel = 1;
    assert_int_equal(qb_quantize_matrix(&ctx, &f, x, 2, 128, q, (const volatile int *)&cancel), QB_ERR_CANCELLED);
    assert_string_equal(qb_ctx_errmsg(&ctx), "quantization cancelled");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_names),     cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_check),           cmocka_unit_test(test_fallback),
        cmocka_unit_test(test_sizes),           cmocka_unit_test(test_fp8_tables),
        cmocka_unit_test(test_nf4_levels),      cmocka_unit_test(test_mxfp4_values),
        cmocka_unit_test(test_gptq_reference),  cmocka_unit_test(test_sym_positive_group),
        cmocka_unit_test(test_rmse_budgets),
        cmocka_unit_test(test_awkward_lengths), cmocka_unit_test(test_granularity_order),
        cmocka_unit_test(test_sym_vs_asym),     cmocka_unit_test(test_zero_rows),
        cmocka_unit_test(test_matrix_dispatch), cmocka_unit_test(test_quantize_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
