/* qdot_iq_avx512.c — AVX-512 dot products of the grid i-quants (IQ2_XXS, IQ2_XS, IQ2_S,
 * IQ1_S, IQ1_M) with Q8_K activation rows, with and without AVX512-VNNI (vpdpwssd for the
 * scale step). Built with the AVX-512 flags; the spec is qdot_iq_ref.c (integer parts exact,
 * only the float summation order differs).
 *
 * Two sub-blocks (64 weights) per register: magnitudes (grid bytes; for IQ1, |8·g ± 1|) and a
 * 64-bit mask of negative weights, which negates the activation bytes (masked subtract);
 * vpmaddubsw gives int16 pair sums, multiplied by the four half sub-blocks' odd scales into
 * int32 (vpmaddwd, or vpdpwssd with VNNI). nc (1..4) activation rows share each unpacked pair. */
#include "qdot_avx512.h"
#include "iq_grids.h"
#include "qb_types.h"

#define Q8K_D(y) rdf32(y)
#define Q8K_QS(y) ((const uint8_t *)(y) + 4)
#define Q8K_BYTES 292

AI __m512i points8(const uint64_t *grid, const int idx[8])
{
    return _mm512_set_epi64((long long)grid[idx[7]], (long long)grid[idx[6]], (long long)grid[idx[5]], (long long)grid[idx[4]],
                            (long long)grid[idx[3]], (long long)grid[idx[2]], (long long)grid[idx[1]], (long long)grid[idx[0]]);
}

/* int16 lanes: quarter k (16 bytes of weights) gets ls[k]. */
AI __m512i quarters16(const int ls[4])
{
    const long long r = 0x0001000100010001LL;
    return _mm512_set_epi64(ls[3] * r, ls[3] * r, ls[2] * r, ls[2] * r, ls[1] * r, ls[1] * r, ls[0] * r, ls[0] * r);
}

AI long long shift8(unsigned neg) { return neg ? -1LL : 0x0101010101010101LL; }

/* IQ1 weights 8·g + shift (g bytes -1, 0, 1; shift bytes ±1 per group of 8): the magnitudes
 * into *u, the negative ones into *m. 8·g by a 16-bit shift, the bits that cross into the
 * next byte masked off. */
AI void iq1_weights(__m512i g, __m512i shift, __m512i *u, __mmask64 *m)
{
    const __m512i g8 = _mm512_and_si512(_mm512_slli_epi16(g, 3), _mm512_set1_epi8((char)0xf8));
    const __m512i w = _mm512_add_epi8(g8, shift);
    *u = _mm512_abs_epi8(w);
    *m = _mm512_movepi8_mask(w);
}

/* Sub-blocks s, s + 1 of block p of type T: magnitudes, negative-weight mask, the four half
 * sub-blocks' scales. */
AI void unpack2(const int T, const uint8_t *p, int s, __m512i *u, __mmask64 *m, __m512i *sc)
{
    int idx[8], ls[4];
    switch (T) {
    case QB_TYPE_IQ2_XXS: {
        uint64_t signs = 0;
        for (int h = 0; h < 2; h++) {
            const uint32_t w0 = rd32(p + 2 + 8 * (s + h)), w1 = rd32(p + 6 + 8 * (s + h));
            for (int l = 0; l < 4; l++) {
                idx[4 * h + l] = (w0 >> 8 * l) & 255;
                signs |= (uint64_t)qb_iq2_signs[(w1 >> 7 * l) & 127] << (8 * (4 * h + l));
            }
            ls[2 * h] = ls[2 * h + 1] = 2 * (int)(w1 >> 28) + 1;
        }
        *u = points8(qb_iq2xxs_grid, idx);
        *m = signs;
        break;
    }
    case QB_TYPE_IQ2_XS: {
        uint64_t signs = 0;
        for (int k = 0; k < 8; k++) {
            const int v = rd16(p + 2 + 8 * s + 2 * k);
            idx[k] = v & 511;
            signs |= (uint64_t)qb_iq2_signs[v >> 9] << (8 * k);
        }
        for (int h = 0; h < 2; h++) {
            ls[2 * h] = 2 * (p[66 + s + h] & 15) + 1;
            ls[2 * h + 1] = 2 * (p[66 + s + h] >> 4) + 1;
        }
        *u = points8(qb_iq2xs_grid, idx);
        *m = signs;
        break;
    }
    case QB_TYPE_IQ2_S:
        for (int k = 0; k < 8; k++) idx[k] = p[2 + 4 * s + k] | ((p[66 + s + k / 4] >> (2 * (k % 4))) & 3) << 8;
        for (int h = 0; h < 2; h++) {
            ls[2 * h] = 2 * (p[74 + s + h] & 15) + 1;
            ls[2 * h + 1] = 2 * (p[74 + s + h] >> 4) + 1;
        }
        *u = points8(qb_iq2s_grid, idx);
        *m = rd32(p + 34 + 4 * s) | (uint64_t)rd32(p + 38 + 4 * s) << 32;
        break;
    case QB_TYPE_IQ1_S: {
        long long sh[2];
        for (int h = 0; h < 2; h++) {
            const unsigned q = rd16(p + 34 + 2 * (s + h));
            for (int l = 0; l < 4; l++) idx[4 * h + l] = p[2 + 4 * (s + h) + l] | ((q >> 3 * l) & 7) << 8;
            ls[2 * h] = ls[2 * h + 1] = 2 * (int)((q >> 12) & 7) + 1;
            sh[h] = shift8(q & 0x8000);
        }
        iq1_weights(points8(qb_iq1s_grid, idx), _mm512_set_epi64(sh[1], sh[1], sh[1], sh[1], sh[0], sh[0], sh[0], sh[0]), u, m);
        break;
    }
    default: { /* IQ1_M */
        long long sh[8];
        for (int k = 0; k < 8; k++) {
            const unsigned nib = p[32 + 2 * s + k / 2] >> (4 * (k % 2));
            idx[k] = p[4 * s + k] | (nib & 7) << 8;
            sh[k] = shift8(nib & 8);
        }
        const unsigned sc16 = rd16(p + 48 + 2 * (s / 2)); /* s even: both sub-blocks in one word */
        for (int q = 0; q < 4; q++) ls[q] = 2 * (int)((sc16 >> (3 * q)) & 7) + 1;
        iq1_weights(points8(qb_iq1s_grid, idx), _mm512_set_epi64(sh[7], sh[6], sh[5], sh[4], sh[3], sh[2], sh[1], sh[0]), u, m);
        break;
    }
    }
    *sc = quarters16(ls);
}

AI float block_d(const int T, const uint8_t *p)
{
    if (T == QB_TYPE_IQ1_M) return f16(qb_iq1m_scale_bits((const qb_block_iq1_m *)p));
    return f16(rd16(p));
}

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
            __m512i u, sc;
            __mmask64 m;
            unpack2(T, p, s, &u, &m, &sc);
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
QDOT_BOTH(iq2_xs, IQ_BODY, QB_TYPE_IQ2_XS, 74)
QDOT_BOTH(iq2_s, IQ_BODY, QB_TYPE_IQ2_S, 82)
QDOT_BOTH(iq1_s, IQ_BODY, QB_TYPE_IQ1_S, 50)
QDOT_BOTH(iq1_m, IQ_BODY, QB_TYPE_IQ1_M, 56)
