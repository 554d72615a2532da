/* fmt_int_avx2.c — AVX2 quantization and dequantization of INT rows (layout and spec:
 * fmt_int_ref.c), as fmt_int_avx512.c does them with 8 codes (b bytes) per register.
 * Quantizing: extremes in lanes (a zero extreme goes back to the reference's scan), the grid
 * from qb_int_grid, codes with the reference's division, rounding and clamp, packed into one
 * little-endian word of b bytes per 8 codes, stored without touching the bytes after. Dequantizing: the bytes broadcast to both
 * 128-bit lanes, a byte shuffle giving lane i the two bytes that hold code i, a variable
 * shift and a mask; then d · ((float)q − z) as the reference computes it, bit for bit. */
#include "fmt.h"

#include "qb_types.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

typedef struct {
    __m256i shuf, shift, mask;
} unpacker;

static unpacker make_unpacker(int bits)
{
    uint8_t sh[32];
    int32_t s[8];
    for (int i = 0; i < 8; i++) {
        const int bit = i * bits, off = bit >> 3;
        sh[4 * i] = (uint8_t)off;
        sh[4 * i + 1] = (uint8_t)(off + 1); /* <= 8: inside the 16 loaded bytes (zero past the codes) */
        sh[4 * i + 2] = sh[4 * i + 3] = 0x80;
        s[i] = bit & 7;
    }
    unpacker u;
    u.shuf = _mm256_loadu_si256((const __m256i *)sh);
    u.shift = _mm256_loadu_si256((const __m256i *)s);
    u.mask = _mm256_set1_epi32((1 << bits) - 1);
    return u;
}

/* Codes of 8 elements from the 16 bytes at raw. */
AI __m256i codes8(const unpacker *u, __m128i raw)
{
    const __m256i w = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(raw), u->shuf);
    return _mm256_and_si256(_mm256_srlv_epi32(w, u->shift), u->mask);
}

/* cnt elements of one group or row; returns the byte after the codes. */
static const uint8_t *get_codes(const unpacker *u, const uint8_t *in, int64_t cnt, int bits, float d, float z,
                                float *y)
{
    const __m256 vd = _mm256_set1_ps(d), vz = _mm256_set1_ps(z);
    const uint8_t *end = in + (cnt * bits + 7) / 8;
    int64_t i = 0;
    for (; i + 8 <= cnt; i += 8, in += bits) {
        __m128i raw;
        if (end - in >= 8) {
            raw = _mm_loadl_epi64((const __m128i *)in); /* 8 bytes: this chunk and what follows it */
        } else {
            uint8_t t[16] = {0};
            memcpy(t, in, (size_t)(end - in));
            raw = _mm_loadu_si128((const __m128i *)t);
        }
        const __m256 q = _mm256_cvtepi32_ps(codes8(u, raw));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(vd, _mm256_sub_ps(q, vz)));
    }
    if (i < cnt) {
        uint8_t t[16] = {0};
        float o[8];
        memcpy(t, in, (size_t)(end - in));
        const __m256 q = _mm256_cvtepi32_ps(codes8(u, _mm_loadu_si128((const __m128i *)t)));
        _mm256_storeu_ps(o, _mm256_mul_ps(vd, _mm256_sub_ps(q, vz)));
        memcpy(y + i, o, (size_t)(cnt - i) * sizeof(float));
    }
    return end;
}

void qb_dequant_row_int_avx2(int bits, int group, bool asym, const void *src, float *y, int64_t n)
{
    const unpacker u = make_unpacker(bits);
    const uint8_t *in = src;
    if (group <= 0) {
        float d, z = (float)(1 << (bits - 1));
        memcpy(&d, in, 4);
        in += 4;
        if (asym) {
            memcpy(&z, in, 4);
            in += 4;
        }
        get_codes(&u, in, n, bits, d, z, y);
        return;
    }
    for (int64_t g = 0; g < n; g += group) {
        uint16_t h[2];
        memcpy(h, in, asym ? 4 : 2);
        in += asym ? 4 : 2;
        const float d = _cvtsh_ss(h[0]), z = asym ? _cvtsh_ss(h[1]) : (float)(1 << (bits - 1));
        in = get_codes(&u, in, group, bits, d, z, y + g);
    }
}

/* ---- quantization (qb_quant_row_int_ref's bytes) ------------------------------------------ */

static void min_max(const float *x, int64_t n, float *mn, float *mx)
{
    __m256 lo = _mm256_set1_ps(INFINITY), hi = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        lo = _mm256_min_ps(v, lo);
        hi = _mm256_max_ps(v, hi);
    }
    float l[8], h[8];
    _mm256_storeu_ps(l, lo);
    _mm256_storeu_ps(h, hi);
    float a = l[0], b = h[0];
    for (int j = 1; j < 8; j++) {
        if (l[j] < a) a = l[j];
        if (h[j] > b) b = h[j];
    }
    for (; i < n; i++) {
        if (x[i] < a) a = x[i];
        if (x[i] > b) b = x[i];
    }
    if (a == 0.0f || b == 0.0f) { /* a zero's sign is the first zero's: the reference's scan */
        qb_int_min_max(x, n, mn, mx);
        return;
    }
    if (a > b) a = b = 0.0f;
    *mn = a;
    *mx = b;
}

/* Codes of 8 values: clamp(rint(x / d) + z, 0, maxq), NaN → 0; z alone where d is 0. */
AI __m256i quant8(__m256 v, __m256 vd, __m256 vz, __m256 maxq, bool dz)
{
    __m256 t = dz ? vz : _mm256_add_ps(_mm256_round_ps(_mm256_div_ps(v, vd), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), vz);
    t = _mm256_max_ps(t, _mm256_setzero_ps());
    t = _mm256_min_ps(t, maxq);
    return _mm256_cvttps_epi32(t);
}

/* 8 codes (< 2^bits) as one little-endian word of `bits` bytes. */
AI uint64_t pack8(__m256i c, __m256i sh_lo, __m256i sh_hi)
{
    const __m256i a = _mm256_sllv_epi64(_mm256_cvtepu32_epi64(_mm256_castsi256_si128(c)), sh_lo);
    const __m256i b = _mm256_sllv_epi64(_mm256_cvtepu32_epi64(_mm256_extracti128_si256(c, 1)), sh_hi);
    const __m256i o = _mm256_or_si256(a, b);
    __m128i r = _mm_or_si128(_mm256_castsi256_si128(o), _mm256_extracti128_si256(o, 1));
    r = _mm_or_si128(r, _mm_unpackhi_epi64(r, r));
    return (uint64_t)_mm_cvtsi128_si64(r);
}

/* The low `bytes` (1..8) bytes of w at out: stores of constant size, never past them. */
AI void store_bytes(uint8_t *out, uint64_t w, int bytes)
{
    switch (bytes) {
    case 1: memcpy(out, &w, 1); break;
    case 2: memcpy(out, &w, 2); break;
    case 3: memcpy(out, &w, 3); break;
    case 4: memcpy(out, &w, 4); break;
    case 5: memcpy(out, &w, 5); break;
    case 6: memcpy(out, &w, 6); break;
    case 7: memcpy(out, &w, 7); break;
    default: memcpy(out, &w, 8); break;
    }
}

static uint8_t *put_codes(const float *x, int64_t n, int bits, float d, float z, uint8_t *out)
{
    const __m256 vd = _mm256_set1_ps(d), vz = _mm256_set1_ps(z), maxq = _mm256_set1_ps((float)((1 << bits) - 1));
    const __m256i sh_lo = _mm256_setr_epi64x(0, bits, 2 * bits, 3 * bits);
    const __m256i sh_hi = _mm256_setr_epi64x(4 * bits, 5 * bits, 6 * bits, 7 * bits);
    const bool dz = d == 0.0f;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8, out += bits) {
        const uint64_t w = pack8(quant8(_mm256_loadu_ps(x + i), vd, vz, maxq, dz), sh_lo, sh_hi);
        store_bytes(out, w, bits);
    }
    for (; i < n; i += 8) {
        const int cnt = n - i < 8 ? (int)(n - i) : 8, bytes = (cnt * bits + 7) / 8;
        float t[8] = {0};
        memcpy(t, x + i, (size_t)cnt * sizeof(float));
        const __m256i keep = _mm256_cmpgt_epi32(_mm256_set1_epi32(cnt), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        const __m256i c = _mm256_and_si256(quant8(_mm256_loadu_ps(t), vd, vz, maxq, dz), keep);
        store_bytes(out, pack8(c, sh_lo, sh_hi), bytes);
        out += bytes;
    }
    return out;
}

/* Contract: qb_quant_row_int_ref's (fmt.h), the same bytes. */
void qb_quant_row_int_avx2(int bits, int group, bool asym, const float *x, void *dst, int64_t n, const float *range)
{
    uint8_t *out = dst;
    float mn, mx, d, z;
    if (group <= 0) {
        if (range) {
            mn = range[0];
            mx = range[1];
        } else {
            min_max(x, n, &mn, &mx);
        }
        out += qb_int_grid(bits, group, asym, mn, mx, &d, &z, out);
        put_codes(x, n, bits, d, z, out);
        return;
    }
    for (int64_t g = 0; g < n; g += group) {
        min_max(x + g, group, &mn, &mx);
        out += qb_int_grid(bits, group, asym, mn, mx, &d, &z, out);
        out = put_codes(x + g, group, bits, d, z, out);
    }
}
