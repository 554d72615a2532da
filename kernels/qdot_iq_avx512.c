/* qdot_iq_avx512.c — AVX-512 dot products of the grid i-quants (IQ2_XXS, IQ2_XS, IQ2_S,
 * IQ1_S, IQ1_M) with Q8_K activation rows, with and without AVX512-VNNI (vpdpwssd for the
 * scale step). Built with the AVX-512 flags; the spec is qdot_iq_ref.c (integer parts exact,
 * only the float summation order differs).
 *
 * IQ2_XS, IQ2_S and IQ1_M run the 256-bit whole-block bodies of qdot_iq_block.h (the paired
 * 512-bit form below was slower for them on this Zen 4 and on the Xeon measured before).
 * IQ2_XXS and IQ1_S: two sub-blocks (64 weights) per register, each unpacked as for AVX2 (qdot_iq_unpack.h):
 * magnitudes (grid bytes; for IQ1, |8·g ± 1|) and a 64-bit mask of negative weights, which
 * negates the activation bytes (masked subtract);
 * vpmaddubsw gives int16 pair sums, multiplied by the four half sub-blocks' odd scales into
 * int32 (vpmaddwd, or vpdpwssd with VNNI). nc (1..4) activation rows share each unpacked pair. */
#include "qdot_avx512.h"
#include "iq_grids.h"
#include "qb_types.h"

#define Q8K_D(y) rdf32(y)
#define Q8K_QS(y) ((const uint8_t *)(y) + 4)
#define Q8K_BYTES 292

#include "qdot_iq_unpack.h"
#define hsum8 hsum256
#include "qdot_iq_block.h"

AI void iq_body(int n, const uint8_t *w, const uint8_t *xq, size_t st, const int nc, float *out, const int T, const int bs,
                const int vnni)
{
    __m512 acc[4];
    #pragma GCC unroll 8
    for (int c = 0; c < nc; c++) acc[c] = _mm512_setzero_ps();
    for (int b = 0; b < n / 256; b++) {
        const uint8_t *p = w + (size_t)b * bs;
        __m512i isum[4];
        #pragma GCC unroll 8
        for (int c = 0; c < nc; c++) isum[c] = _mm512_setzero_si512();
        #pragma GCC unroll 4
        for (int s = 0; s < 8; s += 2) {
            __m256i u0, g0, c0, u1, g1, c1;
            unpack(T, p, s, &u0, &g0, &c0);
            unpack(T, p, s + 1, &u1, &g1, &c1);
            const __m512i u = _mm512_inserti64x4(_mm512_castsi256_si512(u0), u1, 1);
            const __m512i sc = _mm512_inserti64x4(_mm512_castsi256_si512(c0), c1, 1);
            const __mmask64 m = _mm512_movepi8_mask(_mm512_inserti64x4(_mm512_castsi256_si512(g0), g1, 1));
            #pragma GCC unroll 8
            for (int c = 0; c < nc; c++) {
                const __m512i y = _mm512_loadu_si512(Q8K_QS(xq + c * st + (size_t)b * Q8K_BYTES) + 32 * s);
                const __m512i ys = _mm512_mask_sub_epi8(y, m, _mm512_setzero_si512(), y);
                isum[c] = dp_s16(isum[c], _mm512_maddubs_epi16(u, ys), sc, vnni);
            }
        }
        const float d = block_d(T, p);
        #pragma GCC unroll 8
        for (int c = 0; c < nc; c++)
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[c]), _mm512_set1_ps(d * Q8K_D(xq + c * st + (size_t)b * Q8K_BYTES)), acc[c]);
    }
    #pragma GCC unroll 8
    for (int c = 0; c < nc; c++) out[c] = 0.125f * _mm512_reduce_add_ps(acc[c]);
}

#define IQ_BODY(n, w, x, st, NC, out, T, BS, vnni) iq_body(n, w, x, st, NC, out, T, BS, vnni)
QDOT_BOTH(iq2_xxs, IQ_BODY, QB_TYPE_IQ2_XXS, 66)
/* IQ2_XS, IQ2_S, IQ1_M: the 256-bit whole-block bodies of qdot_iq_block.h (signs through mask
 * registers), with and without VNNI alike. */
#define IQB_ENTRY(name, T, BS)                                                                            \
    QDOT_ENTRY(qb_qdot_##name##_avx512, iqb_body, T, BS)                                                  \
    void qb_qdot_##name##_avx512vnni(int n, const void *w, const void *xq, size_t st, int nc, float *out) \
    {                                                                                                     \
        qb_qdot_##name##_avx512(n, w, xq, st, nc, out);                                                   \
    }
IQB_ENTRY(iq2_xs, QB_TYPE_IQ2_XS, 74)
IQB_ENTRY(iq2_s, QB_TYPE_IQ2_S, 82)
QDOT_BOTH(iq1_s, IQ_BODY, QB_TYPE_IQ1_S, 50)
IQB_ENTRY(iq1_m, QB_TYPE_IQ1_M, 56)
