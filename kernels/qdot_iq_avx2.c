/* qdot_iq_avx2.c — AVX2 dot products of the grid i-quants (IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S,
 * IQ1_M) with Q8_K activation rows. Built with the AVX2 flags; the spec is qdot_iq_ref.c
 * (integer parts exact, only the float summation order differs).
 *
 * A sub-block of 32 weights becomes one register of magnitudes (grid bytes; for IQ1,
 * |8·g ± 1|) and one of signs; the activations take the signs (vpsignb), vpmaddubsw makes
 * int16 pair sums (at most 2·43·127 or 2·9·127) and vpmaddwd multiplies them by the halves'
 * odd scales into int32. nc (1..4) activation rows share each unpacked sub-block. IQ2_XXS and
 * IQ1_S unpack one sub-block at a time (qdot_iq_unpack.h); IQ2_XS, IQ2_S and IQ1_M take a
 * block's scales and signs at once (qdot_iq_block.h). */
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

#include "qdot_iq_unpack.h"

static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

#include "qdot_iq_block.h"

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
    for (int c = 0; c < nc; c++) out[c] = 0.125f * hsum8(acc[c]);
}

#define IQ_ENTRY(name, BODY, T, BS)                                                                           \
    void qb_qdot_##name##_avx2(int n, const void *w, const void *xq, size_t st, int nc, float *out)      \
    {                                                                                                   \
        for (int c0 = 0; c0 < nc; c0 += 4) {                                                            \
            const uint8_t *x = (const uint8_t *)xq + (size_t)c0 * st;                                   \
            switch (nc - c0) {                                                                          \
            case 1: BODY(n, w, x, st, 1, out + c0, T, BS); break;                                    \
            case 2: BODY(n, w, x, st, 2, out + c0, T, BS); break;                                    \
            case 3: BODY(n, w, x, st, 3, out + c0, T, BS); break;                                    \
            default: BODY(n, w, x, st, 4, out + c0, T, BS); break;                                   \
            }                                                                                           \
        }                                                                                               \
    }

#define IQB_BODY(n, w, x, st, NC, out, T, BS) iqb_body(n, w, x, st, NC, out, T, BS, 0)
IQ_ENTRY(iq2_xxs, iq_body, QB_TYPE_IQ2_XXS, 66)
IQ_ENTRY(iq2_xs, IQB_BODY, QB_TYPE_IQ2_XS, 74)
IQ_ENTRY(iq2_s, IQB_BODY, QB_TYPE_IQ2_S, 82)
IQ_ENTRY(iq1_s, iq_body, QB_TYPE_IQ1_S, 50)
IQ_ENTRY(iq1_m, IQB_BODY, QB_TYPE_IQ1_M, 56)
