/* qdot_avx512.h — what the two AVX-512 qdot files share (qdot_avx512.c: 32-element blocks and
 * the activation quantizers; qdot_k_avx512.c: 256-element super-blocks): the VNNI-or-not dot
 * steps, weight loaders, f16 helpers and the entry-point macro that instantiates a body per
 * nc. Included only by files built with the AVX-512 flags. The dot products are split over
 * two files so that neither takes long to compile (each body is inlined 8 times: nc 1..4,
 * with and without VNNI), under ASan too.
 *
 * See qdot_avx512.c for the layout tricks and the VNNI note. */
#ifndef QB_QDOT_AVX512_H
#define QB_QDOT_AVX512_H

#include "kernels.h"
#include "blocks.h"
#include "unaligned.h"
#include "avx512_h8.h"

#include <immintrin.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))


AI float f16(uint16_t h) { return _cvtsh_ss(h); }

/* per-word shift counts for vpsrlvw, four words at a time */
#define W2 0x0002000200020002LL
#define W4 0x0004000400040004LL

/* The f16 pairs at p + k*bs and p + k*bs + 2 (k < 8; scale and min, or scale and sum) as 16
 * floats: the first of each pair in lanes 0-7, the second in lanes 8-15. Same windows as
 * load_h8. */
AI __m512 load_h16(const uint8_t *p, const int bs)
{
    const int o2 = bs >= 32 ? 4 * bs : 8 * bs - 128;
    const __m512i a0 = _mm512_loadu_si512(p), a1 = _mm512_loadu_si512(p + 64);
    const __m512i b0 = _mm512_loadu_si512(p + o2), b1 = _mm512_loadu_si512(p + o2 + 64);
    const int h = bs / 2, g = (4 * bs - o2) / 2;
    const __m512i ia = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3 * h + 1, 2 * h + 1,
                                        h + 1, 1, 0, 0, 0, 0, 3 * h, 2 * h, h, 0);
    const __m512i ib = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, g + 3 * h + 1, g + 2 * h + 1, g + h + 1,
                                        g + 1, 0, 0, 0, 0, g + 3 * h, g + 2 * h, g + h, g, 0, 0, 0, 0);
    const __m512i r = _mm512_mask_blend_epi16(0xF0F0, _mm512_permutex2var_epi16(a0, ia, a1), _mm512_permutex2var_epi16(b0, ib, b1));
    return _mm512_cvtph_ps(_mm512_castsi512_si256(r));
}

/* acc + sums of four u8*s8 products per int32 lane. BW path: u*s pair sums must fit int16
 * (true for every caller: u <= 128 with |s| <= 127, or u <= 63). */
AI __m512i dp_u8s8(__m512i acc, __m512i u, __m512i s, const int vnni)
{
    if (vnni) {
        __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "vm"(s));
        return acc;
    }
    return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
}

/* acc + sums of two i16*i16 products per int32 lane (vpmaddwd + add). */
AI __m512i dp_s16(__m512i acc, __m512i a, __m512i b, const int vnni)
{
    if (vnni) {
        __asm__("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(a), "vm"(b));
        return acc;
    }
    return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
}

/* y negated in the bytes where v is negative (the sign half of the sign trick). */
AI __m512i neg_where(__m512i y, __m512i v)
{
    return _mm512_mask_sub_epi8(y, _mm512_movepi8_mask(v), _mm512_setzero_si512(), y);
}

/* 16 bytes at p and at q as [p, p, q, q] split into nibbles: [p & 15, p >> 4, q & 15, q >> 4],
 * i.e. two 32-element blocks in element order. */
AI __m512i nibbles2(const uint8_t *p, const uint8_t *q)
{
    const __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p))),
                                         _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)q)), 1);
    const __m512i sh = _mm512_set_epi64(W4, W4, 0, 0, W4, W4, 0, 0);
    return _mm512_and_si512(_mm512_srlv_epi16(v, sh), _mm512_set1_epi8(15));
}

/* 32 bytes at p and q as one register. */
AI __m512i load2x32(const uint8_t *p, const uint8_t *q)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)p)),
                              _mm256_loadu_si256((const __m256i *)q), 1);
}

AI __m512i iq4nl_table(void)
{
    return _mm512_broadcast_i32x4(_mm_setr_epi8(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113));
}

static inline float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* ---- entry points --------------------------------------------------------------------- */

/* Calls BODY(n, w, x, st, NC, out, ARGS...) with NC a constant, four rows at a time. */
#define QDOT_ENTRY(fname, BODY, ...)                                                                        \
    void fname(int n, const void *w, const void *xq, size_t st, int nc, float *out)                         \
    {                                                                                                       \
        for (int c0 = 0; c0 < nc; c0 += 4) {                                                                \
            const uint8_t *x = (const uint8_t *)xq + (size_t)c0 * st;                                       \
            switch (nc - c0) {                                                                              \
            case 1: BODY(n, w, x, st, 1, out + c0, __VA_ARGS__); break;                                     \
            case 2: BODY(n, w, x, st, 2, out + c0, __VA_ARGS__); break;                                     \
            case 3: BODY(n, w, x, st, 3, out + c0, __VA_ARGS__); break;                                     \
            default: BODY(n, w, x, st, 4, out + c0, __VA_ARGS__); break;                                    \
            }                                                                                               \
        }                                                                                                   \
    }

#define QDOT_BOTH(name, BODY, ...)                                   \
    QDOT_ENTRY(qb_qdot_##name##_avx512, BODY, __VA_ARGS__, 0)        \
    QDOT_ENTRY(qb_qdot_##name##_avx512vnni, BODY, __VA_ARGS__, 1)

#endif
