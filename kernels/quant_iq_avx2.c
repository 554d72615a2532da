/* quant_iq_avx2.c — IQ1_M's split search with 8 splits in the lanes of a register (the
 * quantizer's time sink; quant_iq.h), for the AVX2 tables' quant_row. Every lane does the
 * reference's operations on its split in the reference's order (products (w·v)·x, sums in j
 * order, no fused multiply-add), so the scores and the bytes are qb_iq1m_scores_ref's
 * exactly. Built with the AVX2 flags. */
#include "kernels.h"
#include "blocks.h"
#include "quant_iq.h"
#include "qb_types.h"

#include <immintrin.h>

void qb_iq1m_scores_avx2(const float *weight, const float *xb, const int *order, float sqx[][4], float sq2[][4])
{
    int i1s[160], i2s[160];
    int sp = 0;
    for (int i1 = 0; i1 <= 16; i1++)
        for (int i2 = i1; i2 <= 16; i2++, sp++) i1s[sp] = i1, i2s[sp] = i2;
    for (; sp < 160; sp++) i1s[sp] = i2s[sp] = 16; /* padding lanes: computed, not stored */
    const __m256 xp0 = _mm256_set1_ps(-1 + QB_IQ1_DELTA), xp1 = _mm256_set1_ps(QB_IQ1_DELTA), xp2 = _mm256_set1_ps(1 + QB_IQ1_DELTA);
    const __m256 xm0 = _mm256_set1_ps(-1 - QB_IQ1_DELTA), xm1 = _mm256_set1_ps(-QB_IQ1_DELTA), xm2 = _mm256_set1_ps(1 - QB_IQ1_DELTA);
    for (int c = 0; c < 160; c += 8) {
        const __m256i v1 = _mm256_loadu_si256((const __m256i *)(i1s + c)), v2 = _mm256_loadu_si256((const __m256i *)(i2s + c));
        __m256 a[4], b[4];
        for (int k = 0; k < 4; k++) a[k] = b[k] = _mm256_setzero_ps();
        for (int j = 0; j < 16; j++) {
            const __m256i vj = _mm256_set1_epi32(j);
            /* lanes where the split's bound is <= j (not above it) */
            const __m256 ge1 = _mm256_castsi256_ps(_mm256_xor_si256(_mm256_cmpgt_epi32(v1, vj), _mm256_set1_epi32(-1)));
            const __m256 ge2 = _mm256_castsi256_ps(_mm256_xor_si256(_mm256_cmpgt_epi32(v2, vj), _mm256_set1_epi32(-1)));
            const __m256 p = _mm256_blendv_ps(_mm256_blendv_ps(xp0, xp1, ge1), xp2, ge2);
            const __m256 m = _mm256_blendv_ps(_mm256_blendv_ps(xm0, xm1, ge1), xm2, ge2);
            const int i = order[j];
            const __m256 w = _mm256_set1_ps(weight[i]), x = _mm256_set1_ps(xb[i]);
            const __m256 wp = _mm256_mul_ps(w, p), wm = _mm256_mul_ps(w, m);
            const __m256 px = _mm256_mul_ps(wp, x), mx = _mm256_mul_ps(wm, x);
            const __m256 pp = _mm256_mul_ps(wp, p), m2 = _mm256_mul_ps(wm, m);
            a[0] = _mm256_add_ps(a[0], px), a[3] = _mm256_add_ps(a[3], mx);
            b[0] = _mm256_add_ps(b[0], pp), b[3] = _mm256_add_ps(b[3], m2);
            a[1] = _mm256_add_ps(a[1], i < 8 ? px : mx), a[2] = _mm256_add_ps(a[2], i < 8 ? mx : px);
            b[1] = _mm256_add_ps(b[1], i < 8 ? pp : m2), b[2] = _mm256_add_ps(b[2], i < 8 ? m2 : pp);
        }
        float ta[4][8], tb[4][8];
        for (int k = 0; k < 4; k++) {
            _mm256_storeu_ps(ta[k], a[k]);
            _mm256_storeu_ps(tb[k], b[k]);
        }
        for (int l = 0; l < 8 && c + l < QB_IQ1M_SPLITS; l++)
            for (int k = 0; k < 4; k++) sqx[c + l][k] = ta[k][l], sq2[c + l][k] = tb[k][l];
    }
}
