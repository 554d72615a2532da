/* qdot_iq_unpack.h — one sub-block (32 weights) of a grid i-quant block as 256-bit registers:
 * magnitudes, a sign register for vpsignb, and the two half sub-blocks' odd scales as int16
 * lanes. Shared by qdot_iq_avx2.c and qdot_iq_avx512.c (which pairs two sub-blocks per
 * register); included only by files built with AVX2 (or AVX-512) flags. Needs AI, rd16, rd32
 * and f16 from the includer. */
#ifndef QB_QDOT_IQ_UNPACK_H
#define QB_QDOT_IQ_UNPACK_H

#include "blocks.h"
#include "iq_grids.h"
#include "qb_types.h"

#include <immintrin.h>

/* Bytes -1 where bit e of bits is set, else +1 (a sign register for vpsignb). */
AI __m256i signs_from_bits(uint32_t bits)
{
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits),
                                               _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL, 0x0303030303030303LL));
    const __m256i sel = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    return _mm256_or_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, sel), sel), _mm256_set1_epi8(1));
}

AI __m256i points4(const uint64_t *grid, int a, int b, int c, int d)
{
    return _mm256_set_epi64x((long long)grid[d], (long long)grid[c], (long long)grid[b], (long long)grid[a]);
}

AI __m256i halves16(int lo, int hi) { return _mm256_set_m128i(_mm_set1_epi16((short)hi), _mm_set1_epi16((short)lo)); }

/* IQ1 weights 8·g + shift (shift bytes ±1 per group of 8): magnitudes into *u, the weights
 * themselves (never 0) as the sign register. */
AI void iq1_weights(__m256i g, __m256i shift, __m256i *u, __m256i *sg)
{
    const __m256i w = _mm256_add_epi8(_mm256_sign_epi8(_mm256_set1_epi8(8), g), shift);
    *u = _mm256_sign_epi8(w, w);
    *sg = w;
}

/* Bytes -1 (neg set) or +1, without a branch (the flags are data: a branch mispredicts). */
AI long long shift8(unsigned neg)
{
    const long long m = -(long long)(neg != 0);
    return m | (~m & 0x0101010101010101LL);
}

/* Sub-block s of block p of type T: magnitudes, sign register and the halves' scales. */
AI void unpack(const int T, const uint8_t *p, int s, __m256i *u, __m256i *sg, __m256i *sc)
{
    switch (T) {
    case QB_TYPE_IQ2_XXS: {
        const uint32_t w0 = rd32(p + 2 + 8 * s), w1 = rd32(p + 6 + 8 * s);
        *u = points4(qb_iq2xxs_grid, w0 & 255, (w0 >> 8) & 255, (w0 >> 16) & 255, w0 >> 24);
        *sg = points4(qb_iq2_sign_bytes, w1 & 127, (w1 >> 7) & 127, (w1 >> 14) & 127, (w1 >> 21) & 127);
        *sc = _mm256_set1_epi16((short)(2 * (w1 >> 28) + 1));
        break;
    }
    case QB_TYPE_IQ2_XS: {
        const uint8_t *q = p + 2 + 8 * s;
        const int v0 = rd16(q), v1 = rd16(q + 2), v2 = rd16(q + 4), v3 = rd16(q + 6);
        *u = points4(qb_iq2xs_grid, v0 & 511, v1 & 511, v2 & 511, v3 & 511);
        *sg = points4(qb_iq2_sign_bytes, v0 >> 9, v1 >> 9, v2 >> 9, v3 >> 9);
        const int sc8 = p[66 + s];
        *sc = halves16(2 * (sc8 & 15) + 1, 2 * (sc8 >> 4) + 1);
        break;
    }
    case QB_TYPE_IQ2_S: {
        const uint8_t *qs = p + 2 + 4 * s;
        const int h = p[66 + s];
        *u = points4(qb_iq2s_grid, qs[0] | (h & 3) << 8, qs[1] | (h & 12) << 6, qs[2] | (h & 48) << 4, qs[3] | (h & 192) << 2);
        *sg = signs_from_bits(rd32(p + 34 + 4 * s));
        const int sc8 = p[74 + s];
        *sc = halves16(2 * (sc8 & 15) + 1, 2 * (sc8 >> 4) + 1);
        break;
    }
    case QB_TYPE_IQ1_S: {
        const uint8_t *qs = p + 2 + 4 * s;
        const unsigned h = rd16(p + 34 + 2 * s);
        const __m256i g = points4(qb_iq1s_grid, qs[0] | (h & 7) << 8, qs[1] | ((h >> 3) & 7) << 8,
                                  qs[2] | ((h >> 6) & 7) << 8, qs[3] | ((h >> 9) & 7) << 8);
        iq1_weights(g, _mm256_set1_epi64x(shift8(h & 0x8000)), u, sg);
        *sc = _mm256_set1_epi16((short)(2 * ((h >> 12) & 7) + 1));
        break;
    }
    default: { /* IQ1_M */
        const uint8_t *qs = p + 4 * s, *qh = p + 32 + 2 * s;
        const __m256i g = points4(qb_iq1s_grid, qs[0] | (qh[0] & 7) << 8, qs[1] | (qh[0] & 0x70) << 4,
                                  qs[2] | (qh[1] & 7) << 8, qs[3] | (qh[1] & 0x70) << 4);
        const __m256i shift = _mm256_set_epi64x(shift8(qh[1] & 0x80), shift8(qh[1] & 8), shift8(qh[0] & 0x80), shift8(qh[0] & 8));
        iq1_weights(g, shift, u, sg);
        const unsigned sc16 = rd16(p + 48 + 2 * (s / 2)) >> (6 * (s % 2));
        *sc = halves16(2 * (sc16 & 7) + 1, 2 * ((sc16 >> 3) & 7) + 1);
        break;
    }
    }
}

AI float block_d(const int T, const uint8_t *p)
{
    if (T == QB_TYPE_IQ1_M) return f16(qb_iq1m_scale_bits((const qb_block_iq1_m *)p));
    return f16(rd16(p));
}

#endif
