/* qdot_iq_avx512.c — AVX-512 dot products of the grid i-quants (IQ2_XXS, IQ2_XS, IQ2_S,
 * IQ1_S, IQ1_M) with Q8_K activation rows, with and without AVX512-VNNI (vpdpwssd for the
 * scale step). Built with the AVX-512 flags; the spec is qdot_iq_ref.c (integer parts exact,
 * only the float summation order differs).
 *
 * IQ2_XS, IQ2_S and IQ1_M unpack a whole block's side data at once (qdot_iq_block.h): IQ2_XS
 * and IQ2_S two sub-blocks per 512-bit register (iqb_body512 below), IQ1_M in the 256-bit body
 * shared with AVX2 (AVX-512 has no vpsignb, which its weights 8·g ± 1 use twice). On this AMD
 * EPYC (Zen 5), bench_qdot nc = 1, VNNI table: IQ2_XS about 7.5 GB/s, IQ2_S 8.4, IQ1_M 3.5 against
 * 4.5, 4.4 and 1.7 with the per-sub-block form below.
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
/* IQ2_XS, IQ2_S: qdot_iq_block.h's whole-block unpacking, two sub-blocks per 512-bit register:
 * the scale register S broadcast to [first halves, second halves, first, second] so that one
 * vpshufb gives both sub-blocks' scales, and a 64-bit mask of negative weights (IQ2_S: the
 * stored sign bytes as they are; IQ2_XS: the completed sign bytes packed by vpmovwb). IQ2_S's
 * grid indices are built 16 at a time in vector lanes (points_w): with the vector work halved
 * by the wide registers, its scalar index arithmetic had become the bottleneck. */
AI void iqb_body512(int n, const uint8_t *w, const uint8_t *xq, size_t st, const int nc, float *out, const int T, const int bs,
                    const int vnni)
{
    __m512 acc[4];
    #pragma GCC unroll 8
    for (int c = 0; c < nc; c++) acc[c] = _mm512_setzero_ps();
    for (int b = 0; b < n / 256; b++) {
        const uint8_t *p = w + (size_t)b * bs;
        const uint8_t *y[4];
        __m512i isum[4];
        #pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            y[c] = Q8K_QS(xq + c * st + (size_t)b * Q8K_BYTES);
            isum[c] = _mm512_setzero_si512();
        }
        const __m512i S = _mm512_broadcast_i64x4(iq2_scales(p + (T == QB_TYPE_IQ2_XS ? 66 : 74)));
        __m128i f[2] = {_mm_setzero_si128(), _mm_setzero_si128()};
        if (T == QB_TYPE_IQ2_XS) {
            f[0] = _mm256_cvtepi16_epi8(iq2xs_signs(p + 2));
            f[1] = _mm256_cvtepi16_epi8(iq2xs_signs(p + 34));
        }
        __m256i ix[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
        if (T == QB_TYPE_IQ2_S) {
            ix[0] = iq2s_index(p, 0);
            ix[1] = iq2s_index(p, 1);
        }
        #pragma GCC unroll 4
        for (int s = 0; s < 8; s += 2) {
            const __m512i sc = _mm512_shuffle_epi8(S, _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16((short)(0x0100 + 0x0202 * s))),
                                                                         _mm256_set1_epi16((short)(0x0100 + 0x0202 * (s + 1))), 1));
            const __m512i u = T == QB_TYPE_IQ2_S ? _mm512_inserti64x4(_mm512_castsi256_si512(points_w(qb_iq2s_grid, ix, s)), points_w(qb_iq2s_grid, ix, s + 1), 1)
                                                 : _mm512_inserti64x4(_mm512_castsi256_si512(iq2_points(T, p, s)), iq2_points(T, p, s + 1), 1);
            uint64_t bits;
            if (T == QB_TYPE_IQ2_XS)
                bits = (s & 2) ? (uint64_t)_mm_extract_epi64(f[s / 4], 1) : (uint64_t)_mm_cvtsi128_si64(f[s / 4]);
            else
                memcpy(&bits, p + 34 + 4 * s, sizeof bits);
            const __mmask64 m = _cvtu64_mask64(bits);
            #pragma GCC unroll 8
            for (int c = 0; c < nc; c++) {
                const __m512i yv = _mm512_loadu_si512(y[c] + 32 * s);
                isum[c] = dp_s16(isum[c], _mm512_maddubs_epi16(u, _mm512_mask_sub_epi8(yv, m, _mm512_setzero_si512(), yv)), sc, vnni);
            }
        }
        const float d = f16(rd16(p));
        #pragma GCC unroll 8
        for (int c = 0; c < nc; c++)
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[c]), _mm512_set1_ps(d * Q8K_D(xq + c * st + (size_t)b * Q8K_BYTES)), acc[c]);
    }
    #pragma GCC unroll 8
    for (int c = 0; c < nc; c++) out[c] = 0.125f * _mm512_reduce_add_ps(acc[c]);
}
#define IQB512_BODY(n, w, x, st, NC, out, T, BS, vnni) iqb_body512(n, w, x, st, NC, out, T, BS, vnni)

/* IQ2_XS, IQ2_S, IQ1_M: the 256-bit whole-block bodies of qdot_iq_block.h (signs through mask
 * registers; VNNI: vpdpwssd on ymm). */
#define IQB_BODY(n, w, x, st, NC, out, T, BS, vnni) iqb_body(n, w, x, st, NC, out, T, BS, vnni)
QDOT_BOTH(iq2_xs, IQB512_BODY, QB_TYPE_IQ2_XS, 74)
QDOT_BOTH(iq2_s, IQB512_BODY, QB_TYPE_IQ2_S, 82)
QDOT_BOTH(iq1_s, IQ_BODY, QB_TYPE_IQ1_S, 50)
QDOT_BOTH(iq1_m, IQB_BODY, QB_TYPE_IQ1_M, 56)
