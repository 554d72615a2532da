/* fmt_int_avx2.c — AVX2 dequantization of INT rows (layout and spec: fmt_int_ref.c), as
 * fmt_int_avx512.c does it with 8 codes (b bytes) per register: the bytes broadcast to both
 * 128-bit lanes, a byte shuffle giving lane i the two bytes that hold code i, a variable
 * shift and a mask; then d · ((float)q − z) as the reference computes it, bit for bit. */
#include "fmt.h"

#include "qb_types.h"

#include <immintrin.h>
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
