/* qdot_iq_avx2.c — AVX2 dot products of the grid i-quants (IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S,
 * IQ1_M) with Q8_K activation rows. Built with the AVX2 flags; the spec is qdot_iq_ref.c
 * (integer parts exact, only the float summation order differs).
 *
 * A sub-block of 32 weights becomes one register of magnitudes (grid bytes; for IQ1,
 * |8·g ± 1|) and one of signs; the activations take the signs (vpsignb), vpmaddubsw makes
 * int16 pair sums (at most 2·43·127 or 2·9·127) and vpmaddwd multiplies them by the halves'
 * odd scales into int32. nc (1..4) activation rows share each unpacked sub-block. */
#include "kernels.h"
#include "blocks.h"
#include "iq_grids.h"
#include "qb_types.h"
#include "unaligned.h"

#include <immintrin.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

#define Q8K_D(y) rdf32(y)
#define Q8K_QS(y) ((const uint8_t *)(y) + 4)
#define Q8K_BYTES 292

AI float f16(uint16_t h) { return _cvtsh_ss(h); }

static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

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

AI long long shift8(unsigned neg) { return neg ? -1LL : 0x0101010101010101LL; }

/* Sub-block s of block p of type T: magnitudes, sign register and the halves' scales. */
AI void unpack(const int T, const uint8_t *p, int s, __m256i *u, __m256i *sg, __m256i *sc)
{
    switch (T) {
    case QB_TYPE_IQ2_XXS: {
        const uint32_t w0 = rd32(p + 2 + 8 * s), w1 = rd32(p + 6 + 8 * s);
        *u = points4(qb_iq2xxs_grid, w0 & 255, (w0 >> 8) & 255, (w0 >> 16) & 255, w0 >> 24);
        *sg = signs_from_bits(qb_iq2_signs[w1 & 127] | (uint32_t)qb_iq2_signs[(w1 >> 7) & 127] << 8 |
                              (uint32_t)qb_iq2_signs[(w1 >> 14) & 127] << 16 | (uint32_t)qb_iq2_signs[(w1 >> 21) & 127] << 24);
        *sc = _mm256_set1_epi16((short)(2 * (w1 >> 28) + 1));
        break;
    }
    case QB_TYPE_IQ2_XS: {
        const uint8_t *q = p + 2 + 8 * s;
        const int v0 = rd16(q), v1 = rd16(q + 2), v2 = rd16(q + 4), v3 = rd16(q + 6);
        *u = points4(qb_iq2xs_grid, v0 & 511, v1 & 511, v2 & 511, v3 & 511);
        *sg = signs_from_bits(qb_iq2_signs[v0 >> 9] | (uint32_t)qb_iq2_signs[v1 >> 9] << 8 |
                              (uint32_t)qb_iq2_signs[v2 >> 9] << 16 | (uint32_t)qb_iq2_signs[v3 >> 9] << 24);
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

AI void iq_body(int n, const uint8_t *w, const uint8_t *xq, size_t st, const int nc, float *out, const int T, const int bs)
{
    __m256 acc[4];
    #pragma GCC unroll 8
    for (int c = 0; c < nc; c++) acc[c] = _mm256_setzero_ps();
    for (int b = 0; b < n / 256; b++) {
        const uint8_t *p = w + (size_t)b * bs;
        __m256i isum[4];
        #pragma GCC unroll 8
        for (int c = 0; c < nc; c++) isum[c] = _mm256_setzero_si256();
        #pragma GCC unroll 8
        for (int s = 0; s < 8; s++) {
            __m256i u, sg, sc;
            unpack(T, p, s, &u, &sg, &sc);
            #pragma GCC unroll 8
            for (int c = 0; c < nc; c++) {
                const __m256i y = _mm256_loadu_si256((const __m256i *)(Q8K_QS(xq + c * st + (size_t)b * Q8K_BYTES) + 32 * s));
                isum[c] = _mm256_add_epi32(isum[c], _mm256_madd_epi16(_mm256_maddubs_epi16(u, _mm256_sign_epi8(y, sg)), sc));
            }
        }
        const float d = block_d(T, p);
        #pragma GCC unroll 8
        for (int c = 0; c < nc; c++)
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), _mm256_set1_ps(d * Q8K_D(xq + c * st + (size_t)b * Q8K_BYTES)), acc[c]);
    }
    #pragma GCC unroll 8
    for (int c = 0; c < nc; c++) out[c] = 0.125f * hsum(acc[c]);
}

#define IQ_ENTRY(name, T, BS)                                                                           \
    void qb_qdot_##name##_avx2(int n, const void *w, const void *xq, size_t st, int nc, float *out)      \
    {                                                                                                   \
        for (int c0 = 0; c0 < nc; c0 += 4) {                                                            \
            const uint8_t *x = (const uint8_t *)xq + (size_t)c0 * st;                                   \
            switch (nc - c0) {                                                                          \
            case 1: iq_body(n, w, x, st, 1, out + c0, T, BS); break;                                    \
            case 2: iq_body(n, w, x, st, 2, out + c0, T, BS); break;                                    \
            case 3: iq_body(n, w, x, st, 3, out + c0, T, BS); break;                                    \
            default: iq_body(n, w, x, st, 4, out + c0, T, BS); break;                                   \
            }                                                                                           \
        }                                                                                               \
    }

IQ_ENTRY(iq2_xxs, QB_TYPE_IQ2_XXS, 66)
IQ_ENTRY(iq2_xs, QB_TYPE_IQ2_XS, 74)
IQ_ENTRY(iq2_s, QB_TYPE_IQ2_S, 82)
IQ_ENTRY(iq1_s, QB_TYPE_IQ1_S, 50)
IQ_ENTRY(iq1_m, QB_TYPE_IQ1_M, 56)
