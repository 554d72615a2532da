/* fmt_fp8_ref.c — 8-bit floats with a per-tensor or per-row scale: the scalar spec.
 *
 * Encodings (OCP 8-bit Floating Point Specification, "OFP8"):
 *   E4M3 ("fn"): sign, 4 exponent bits (bias 7), 3 mantissa bits; subnormals (exponent 0,
 *       value m/8 · 2^-6); no infinities; S.1111.111 (0x7f / 0xff) is NaN, so the largest
 *       finite value is S.1111.110 = 448.
 *   E5M2: sign, 5 exponent bits (bias 15), 2 mantissa bits, IEEE-like: subnormals (m/4 ·
 *       2^-14), S.11111.00 = ±inf, S.11111.{01,10,11} NaN; largest finite 0x7b = 57344.
 * f32 → fp8 rounds to nearest, ties to even, and saturates (OCP's "SAT" mode): any |x| above
 * the largest finite value, infinities included, becomes ±max; NaN becomes 0x7f | sign.
 *
 * Scaling: scale = absmax / max_finite (absmax of the tensor, or of the row for per-channel),
 * codes = fp8(x / scale), x' = fp8_value(code) · scale. A scale of 0 (an all-zero tensor or row)
 * stores code 0 everywhere.
 *
 * Storage of one row of n elements: f32 scale (the tensor's scale repeated in every row for
 * per-tensor), then n code bytes: 8 + 32/n bits per weight. No alignment assumed. */
#include "fmt.h"

#include <math.h>
#include <string.h>

/* Parameters of one encoding: mantissa bits, exponent bias, largest finite code (no sign). */
typedef struct {
    int mbits, bias;
    uint8_t max_code;
    float max_val;
    float min_normal; /* 2^(1 - bias) */
} fp8_kind;

static const fp8_kind E4M3 = {3, 7, 0x7e, 448.0f, 0x1p-6f};
static const fp8_kind E5M2 = {2, 15, 0x7b, 57344.0f, 0x1p-14f};

/* max ignoring a NaN in b (fmaxf is a libm call in a hot loop without -ffast-math) */
static inline float max_f(float a, float b) { return b > a ? b : a; }

static uint8_t encode(const fp8_kind *k, float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    const uint8_t sign = (uint8_t)(u >> 24 & 0x80);
    u &= 0x7fffffffu;
    if (u > 0x7f800000u) return (uint8_t)(sign | 0x7f); /* NaN */
    float a;
    memcpy(&a, &u, 4);
    uint32_t q;
    if (a >= k->max_val) {
        q = k->max_code;
    } else if (a < k->min_normal) {
        /* subnormal range: an integer number of steps of 2^(1 - bias - mbits); the value
         * 2^mbits (the smallest normal) encodes itself correctly as exponent 1, mantissa 0 */
        q = (uint32_t)rintf(ldexpf(a, k->bias - 1 + k->mbits));
    } else {
        /* normal: round the f32 mantissa to mbits bits, ties to even; a carry moves into the
         * exponent by itself. Then rebias the exponent from 127 to k->bias. */
        const int drop = 23 - k->mbits;
        u += (1u << (drop - 1)) - 1 + (u >> drop & 1);
        q = (u >> drop) - ((uint32_t)(127 - k->bias) << k->mbits);
        if (q > k->max_code) q = k->max_code;
    }
    return (uint8_t)(sign | q);
}

static float decode(const fp8_kind *k, uint8_t c)
{
    const uint32_t sign = (uint32_t)(c & 0x80) << 24;
    const uint32_t mag = c & 0x7f;
    const uint32_t e = mag >> k->mbits, m = mag & ((1u << k->mbits) - 1);
    const uint32_t emax = (0x7fu >> k->mbits);
    float v;
    if (k == &E4M3 && mag == 0x7f) {
        v = NAN;
    } else if (k == &E5M2 && e == emax) {
        v = m ? NAN : INFINITY;
    } else if (e == 0) {
        v = ldexpf((float)m, 1 - k->bias - k->mbits);
    } else {
        uint32_t bits = (e + 127 - (uint32_t)k->bias) << 23 | m << (23 - k->mbits);
        memcpy(&v, &bits, 4);
    }
    uint32_t vb;
    memcpy(&vb, &v, 4);
    vb |= sign;
    memcpy(&v, &vb, 4);
    return v;
}

uint8_t qb_fp8_e4m3_from_f32(float x) { return encode(&E4M3, x); }
float qb_fp8_e4m3_to_f32(uint8_t c) { return decode(&E4M3, c); }
uint8_t qb_fp8_e5m2_from_f32(float x) { return encode(&E5M2, x); }
float qb_fp8_e5m2_to_f32(uint8_t c) { return decode(&E5M2, c); }

size_t qb_fp8_row_bytes(int64_t n)
{
    return sizeof(float) + (size_t)n;
}

void qb_quant_row_fp8_ref(bool e5m2, const float *x, void *dst, int64_t n, float absmax)
{
    const fp8_kind *k = e5m2 ? &E5M2 : &E4M3;
    uint8_t *out = dst;
    if (absmax < 0) {
        absmax = 0.0f;
        for (int64_t i = 0; i < n; i++) absmax = max_f(absmax, fabsf(x[i]));
    }
    float scale = absmax / k->max_val;
    if (!isfinite(scale)) scale = 0.0f;
    memcpy(out, &scale, sizeof scale);
    out += sizeof scale;
    if (scale == 0.0f) {
        memset(out, 0, (size_t)n);
        return;
    }
    for (int64_t i = 0; i < n; i++) out[i] = encode(k, x[i] / scale);
}

void qb_dequant_row_fp8_ref(bool e5m2, const void *src, float *y, int64_t n)
{
    const fp8_kind *k = e5m2 ? &E5M2 : &E4M3;
    const uint8_t *in = src;
    float scale;
    memcpy(&scale, in, sizeof scale);
    in += sizeof scale;
    /* 256 codes: decode once per row */
    float table[256];
    for (int c = 0; c < 256; c++) table[c] = decode(k, (uint8_t)c) * scale;
    for (int64_t i = 0; i < n; i++) y[i] = table[in[i]];
}
