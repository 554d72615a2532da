/* avx512_h8.h — gathering the f16 scales of 8 consecutive packed blocks into 8 floats with
 * two pairs of 64-byte windows and word permutes (no per-block inserts). For the AVX-512
 * kernels only (include after immintrin.h, in files built with the AVX-512 flags). */
#ifndef QB_AVX512_H8_H
#define QB_AVX512_H8_H

#include <immintrin.h>
#include <stdint.h>

/* The f16 values at p, p + bs, …, p + 7*bs (bs even, 16 <= bs <= 42, all inside the
 * 8*bs bytes from p) as 8 floats: two 128-byte windows and one word permute each. */
static inline __attribute__((always_inline)) __m256 load_h8(const uint8_t *p, const int bs)
{
    const int o2 = bs >= 32 ? 4 * bs : 8 * bs - 128; /* second window: within the 8 blocks */
    const __m512i a0 = _mm512_loadu_si512(p), a1 = _mm512_loadu_si512(p + 64);
    const __m512i b0 = _mm512_loadu_si512(p + o2), b1 = _mm512_loadu_si512(p + o2 + 64);
    const int h = bs / 2, g = (4 * bs - o2) / 2;
    const __m512i ia = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                        0, 0, 0, 0, 3 * h, 2 * h, h, 0);
    const __m512i ib = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                        g + 3 * h, g + 2 * h, g + h, g, 0, 0, 0, 0);
    const __m512i r = _mm512_mask_blend_epi16(0xF0, _mm512_permutex2var_epi16(a0, ia, a1), _mm512_permutex2var_epi16(b0, ib, b1));
    return _mm256_cvtph_ps(_mm512_castsi512_si128(r));
}

#endif
