/* quant_iq_avx512.c — IQ1_M's split search with 16 splits in the lanes of a register (the
 * quantizer's time sink; quant_iq.h), for the AVX-512 tables' quant_row. Every lane does the
 * reference's operations on its split in the reference's order (products (w·v)·x, sums in j
 * order, no fused multiply-add), so the scores and the bytes are qb_iq1m_scores_ref's
 * exactly. Built with the AVX-512 flags. */
#include "kernels.h"
#include "blocks.h"
#include "quant_iq.h"
#include "qb_types.h"

#include <immintrin.h>

void qb_iq1m_scores_avx512(const float *weight, const float *xb, const int *order, float sqx[][4], float sq2[][4])
{
    int i1s[160], i2s[160];
    int sp = 0;
    for (int i1 = 0; i1 <= 16; i1++)
        for (int i2 = i1; i2 <= 16; i2++, sp++) i1s[sp] = i1, i2s[sp] = i2;
    for (; sp < 160; sp++) i1s[sp] = i2s[sp] = 16; /* padding lanes: computed, not stored */
    const __m512 xp0 = _mm512_set1_ps(-1 + QB_IQ1_DELTA), xp1 = _mm512_set1_ps(QB_IQ1_DELTA), xp2 = _mm512_set1_ps(1 + QB_IQ1_DELTA);
    const __m512 xm0 = _mm512_set1_ps(-1 - QB_IQ1_DELTA), xm1 = _mm512_set1_ps(-QB_IQ1_DELTA), xm2 = _mm512_set1_ps(1 - QB_IQ1_DELTA);
    for (int c = 0; c < 160; c += 16) {
        const __m512i v1 = _mm512_loadu_si512(i1s + c), v2 = _mm512_loadu_si512(i2s + c);
        __m512 a[4], b[4];
        for (int k = 0; k < 4; k++) a[k] = b[k] = _mm512_setzero_ps();
        for (int j = 0; j < 16; j++) {
            const __m512i vj = _mm512_set1_epi32(j);
            const __mmask16 ge1 = _mm512_cmple_epi32_mask(v1, vj), ge2 = _mm512_cmple_epi32_mask(v2, vj);
            const __m512 p = _mm512_mask_blend_ps(ge2, _mm512_mask_blend_ps(ge1, xp0, xp1), xp2);
            const __m512 m = _mm512_mask_blend_ps(ge2, _mm512_mask_blend_ps(ge1, xm0, xm1), xm2);
            const int i = order[j];
            const __m512 w = _mm512_set1_ps(weight[i]), x = _mm512_set1_ps(xb[i]);
            const __m512 wp = _mm512_mul_ps(w, p), wm = _mm512_mul_ps(w, m);
            const __m512 px = _mm512_mul_ps(wp, x), mx = _mm512_mul_ps(wm, x);
            const __m512 pp = _mm512_mul_ps(wp, p), m2 = _mm512_mul_ps(wm, m);
            a[0] = _mm512_add_ps(a[0], px), a[3] = _mm512_add_ps(a[3], mx);
            b[0] = _mm512_add_ps(b[0], pp), b[3] = _mm512_add_ps(b[3], m2);
            a[1] = _mm512_add_ps(a[1], i < 8 ? px : mx), a[2] = _mm512_add_ps(a[2], i < 8 ? mx : px);
            b[1] = _mm512_add_ps(b[1], i < 8 ? pp : m2), b[2] = _mm512_add_ps(b[2], i < 8 ? m2 : pp);
        }
        float ta[4][16], tb[4][16];
        for (int k = 0; k < 4; k++) {
            _mm512_storeu_ps(ta[k], a[k]);
            _mm512_storeu_ps(tb[k], b[k]);
        }
        for (int l = 0; l < 16 && c + l < QB_IQ1M_SPLITS; l++)
            for (int k = 0; k < 4; k++) sqx[c + l][k] = ta[k][l], sq2[c + l][k] = tb[k][l];
    }
}
