/* qdot_iq_unpack.h — one sub-block (32 weights) of an IQ2_XXS or IQ1_S block as 256-bit
 * registers: magnitudes, a sign register for vpsignb, and the two half sub-blocks' odd scales
 * as int16 lanes (IQ2_XS, IQ2_S and IQ1_M unpack a whole block at a time: qdot_iq_block.h,
 * which uses the helpers here too). Shared by qdot_iq_avx2.c and qdot_iq_avx512.c (which pairs two sub-blocks per
 * register); included only by files built with AVX2 (or AVX-512) flags. Needs AI, rd16, rd32
 * and f16 from the includer. */
#ifndef QB_QDOT_IQ_UNPACK_H
#define QB_QDOT_IQ_UNPACK_H

#include "blocks.h"
#include "iq_grids.h"
#include "qb_types.h"

#include <immintrin.h>

AI __m256i points4(const uint64_t *grid, int a, int b, int c, int d)
{
    return _mm256_set_epi64x((long long)grid[d], (long long)grid[c], (long long)grid[b], (long long)grid[a]);
}

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
    default: { /* IQ1_S */
        const uint8_t *qs = p + 2 + 4 * s;
        const unsigned h = rd16(p + 34 + 2 * s);
        const __m256i g = points4(qb_iq1s_grid, qs[0] | (h & 7) << 8, qs[1] | ((h >> 3) & 7) << 8,
                                  qs[2] | ((h >> 6) & 7) << 8, qs[3] | ((h >> 9) & 7) << 8);
        iq1_weights(g, _mm256_set1_epi64x(shift8(h & 0x8000)), u, sg);
        *sc = _mm256_set1_epi16((short)(2 * ((h >> 12) & 7) + 1));
        break;
    }
    }
}

AI float block_d(const int T, const uint8_t *p)
{
    (void)T; /* both types start with their f16 scale */
    return f16(rd16(p));
}

#endif
