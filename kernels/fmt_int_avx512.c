/* fmt_int_avx512.c — AVX-512 dequantization of INT rows (layout and spec: fmt_int_ref.c).
 *
 * 16 codes of b bits are 2b <= 16 bytes starting on a byte boundary (16 codes are a whole
 * number of bytes): the bytes are broadcast to every 128-bit lane, one byte shuffle gives lane
 * i the two bytes holding code i (bit offset i·b), a variable shift and a mask leave the code.
 * Each element is then d · ((float)q − z) with the reference's two operations, so rows are
 * bit-identical to qb_dequant_row_int_ref. Loads are masked to the bytes the row has. */
#include "fmt.h"

#include "qb_types.h"

#include <immintrin.h>
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
