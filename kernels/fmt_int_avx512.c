/* fmt_int_avx512.c — AVX-512 quantization and dequantization of INT rows (layout and spec:
 * fmt_int_ref.c).
 *
 * Quantizing: each group's extremes in lanes (a zero extreme, whose sign the reference takes
 * from the first zero it meets, goes back to the reference's scan: whether that sign can
 * reach the bytes through find_params' fminf / fmaxf is the C library's choice), the grid from
 * qb_int_grid, then 16 codes at a time with the reference's operations (a true division,
 * round to nearest even, the same clamp), packed as two little-endian words of `bits` bytes
 * (4 and 8 bits by byte shuffles) and stored with a byte mask, never past the codes: the same
 * bytes as qb_quant_row_int_ref.
 *
 * Dequantizing: 16 codes of b bits are 2b <= 16 bytes starting on a byte boundary: the bytes are
 * broadcast to every 128-bit lane, one byte shuffle gives lane i the two bytes holding code i
 * (bit offset i·b), a variable shift and a mask leave the code. Each element is then
 * d · ((float)q − z) with the reference's two operations, so rows are bit-identical to
 * qb_dequant_row_int_ref. Loads are masked to the bytes the row has. */
#include "fmt.h"

#include "qb_types.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

/* Shuffle, shifts and mask that pull 16 codes of `bits` bits out of 2·bits bytes. */
typedef struct {
    __m512i shuf, shift, mask;
} unpacker;

static unpacker make_unpacker(int bits)
{
    uint8_t sh[64];
    int32_t s[16];
    for (int i = 0; i < 16; i++) {
        const int bit = i * bits, off = bit >> 3;
        sh[4 * i] = (uint8_t)off;
        sh[4 * i + 1] = off + 1 < 16 ? (uint8_t)(off + 1) : 0x80; /* past byte 15 only for 8 bits: unused */
        sh[4 * i + 2] = sh[4 * i + 3] = 0x80;
        s[i] = bit & 7;
    }
    unpacker u;
    u.shuf = _mm512_loadu_si512(sh);
    u.shift = _mm512_loadu_si512(s);
    u.mask = _mm512_set1_epi32((1 << bits) - 1);
    return u;
}

/* Codes of 16 elements from `bytes` (<= 16) bytes at p. */
AI __m512i codes16(const unpacker *u, const uint8_t *p, int bytes)
{
    const __m128i raw = _mm_maskz_loadu_epi8((__mmask16)((1u << bytes) - 1), p);
    const __m512i w = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(raw), u->shuf);
    return _mm512_and_si512(_mm512_srlv_epi32(w, u->shift), u->mask);
}

/* cnt elements (a multiple of 16, or the row's last piece) of one group or row. */
static const uint8_t *get_codes(const unpacker *u, const uint8_t *in, int64_t cnt, int bits, float d, float z,
                                float *y)
{
    const __m512 vd = _mm512_set1_ps(d), vz = _mm512_set1_ps(z);
    int64_t i = 0;
    for (; i + 16 <= cnt; i += 16, in += 2 * bits) {
        const __m512 q = _mm512_cvtepi32_ps(codes16(u, in, 2 * bits));
        _mm512_storeu_ps(y + i, _mm512_mul_ps(vd, _mm512_sub_ps(q, vz)));
    }
    if (i < cnt) {
        const int rest = (int)(cnt - i), bytes = (rest * bits + 7) / 8;
        const __m512 q = _mm512_cvtepi32_ps(codes16(u, in, bytes));
        _mm512_mask_storeu_ps(y + i, (__mmask16)((1u << rest) - 1), _mm512_mul_ps(vd, _mm512_sub_ps(q, vz)));
        in += bytes;
    }
    return in;
}

void qb_dequant_row_int_avx512(int bits, int group, bool asym, const void *src, float *y, int64_t n)
{
    const unpacker u = make_unpacker(bits);
    const uint8_t *in = src;
    if (group <= 0) { /* f32 scale [, f32 zero], then the codes of the row */
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
    for (int64_t g = 0; g < n; g += group) { /* f16 scale [, f16 zero], group codes */
        uint16_t h[2];
        memcpy(h, in, asym ? 4 : 2);
        in += asym ? 4 : 2;
        const float d = _cvtsh_ss(h[0]), z = asym ? _cvtsh_ss(h[1]) : (float)(1 << (bits - 1));
        in = get_codes(&u, in, group, bits, d, z, y + g);
    }
}

/* ---- quantization (qb_quant_row_int_ref's bytes) ------------------------------------------ */

/* Smallest and largest of n values as qb_int_min_max gives them: in lanes, or by the
 * reference's own scan when an extreme is a zero (its sign is that of the first zero met). */
static void min_max(const float *x, int64_t n, float *mn, float *mx)
{
    const __m512 inf = _mm512_set1_ps(INFINITY), ninf = _mm512_set1_ps(-INFINITY);
    __m512 lo = inf, hi = ninf;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(x + i);
        lo = _mm512_min_ps(v, lo); /* v < lo ? v : lo: NaNs never enter */
        hi = _mm512_max_ps(v, hi);
    }
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        lo = _mm512_min_ps(_mm512_mask_loadu_ps(inf, m, x + i), lo);
        hi = _mm512_max_ps(_mm512_mask_loadu_ps(ninf, m, x + i), hi);
    }
    float l = _mm512_reduce_min_ps(lo), h = _mm512_reduce_max_ps(hi);
    if (l == 0.0f || h == 0.0f) {
        qb_int_min_max(x, n, mn, mx);
        return;
    }
    if (l > h) l = h = 0.0f; /* no number */
    *mn = l;
    *mx = h;
}

/* Codes of 16 values on the grid (d, z): clamp(rint(x / d) + z, 0, maxq), NaN → 0; z alone
 * where d is 0 — put_codes' operations. */
AI __m512i quant16(__m512 v, __m512 vd, __m512 vz, __m512 maxq, bool dz)
{
    __m512 t = dz ? vz
                  : _mm512_add_ps(_mm512_roundscale_ps(_mm512_div_ps(v, vd), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
                                  vz);
    t = _mm512_max_ps(t, _mm512_setzero_ps()); /* t > 0 ? t : 0: NaN and -0 give 0 */
    t = _mm512_min_ps(t, maxq);
    return _mm512_cvttps_epi32(t);
}

/* OR of the 8 lanes. */
AI uint64_t or8(__m512i v)
{
    __m256i a = _mm256_or_si256(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
    __m128i b = _mm_or_si128(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    b = _mm_or_si128(b, _mm_unpackhi_epi64(b, b));
    return (uint64_t)_mm_cvtsi128_si64(b);
}

/* The 16 codes c (< 2^bits) as the bit stream's first `bytes` (<= 2·bits) bytes at out. */
AI void put16(__m512i c, int bits, __m512i sh, uint8_t *out, int bytes)
{
    const __mmask16 m = (__mmask16)((1u << bytes) - 1);
    if (bits == 8) {
        _mm_mask_storeu_epi8(out, m, _mm512_cvtepi32_epi8(c));
        return;
    }
    if (bits == 4) { /* element 2i in the low nibble of byte i */
        const __m128i w = _mm_maddubs_epi16(_mm512_cvtepi32_epi8(c), _mm_set1_epi16(0x1001));
        _mm_mask_storeu_epi8(out, m, _mm_packus_epi16(w, w));
        return;
    }
    /* codes 0..7 and 8..15 each fill a little-endian word of `bits` bytes; the two words
     * back to back are 2·bits bytes of one 128-bit value */
    const uint64_t a = or8(_mm512_sllv_epi64(_mm512_cvtepu32_epi64(_mm512_castsi512_si256(c)), sh));
    const uint64_t b = or8(_mm512_sllv_epi64(_mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(c, 1)), sh));
    const int s = 8 * bits; /* 16..56 */
    _mm_mask_storeu_epi8(out, m, _mm_set_epi64x((long long)(b >> (64 - s)), (long long)(a | b << s)));
}

/* put_codes for n values: returns the byte after the codes (a partial last byte zero-padded). */
static uint8_t *put_codes(const float *x, int64_t n, int bits, float d, float z, uint8_t *out)
{
    const __m512 vd = _mm512_set1_ps(d), vz = _mm512_set1_ps(z), maxq = _mm512_set1_ps((float)((1 << bits) - 1));
    const __m512i sh = _mm512_mullo_epi64(_mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7), _mm512_set1_epi64(bits));
    const bool dz = d == 0.0f;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16, out += 2 * bits)
        put16(quant16(_mm512_loadu_ps(x + i), vd, vz, maxq, dz), bits, sh, out, 2 * bits);
    if (i < n) {
        const int cnt = (int)(n - i), bytes = (cnt * bits + 7) / 8;
        const __mmask16 m = (__mmask16)((1u << cnt) - 1);
        const __m512i c = _mm512_maskz_mov_epi32(m, quant16(_mm512_maskz_loadu_ps(m, x + i), vd, vz, maxq, dz));
        put16(c, bits, sh, out, bytes);
        out += bytes;
    }
    return out;
}

/* Contract: qb_quant_row_int_ref's (fmt.h), the same bytes. */
void qb_quant_row_int_avx512(int bits, int group, bool asym, const float *x, void *dst, int64_t n, const float *range)
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
