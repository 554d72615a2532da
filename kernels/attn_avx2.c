/* attn_avx2.c — AVX2 attention of one query head over an f32 key/value cache (spec:
 * attn_ref.c): scores one key at a time with 8-lane fused multiply-adds, libm's expf per
 * score summed in position order, then the weighted value rows into an output held in
 * registers (64 floats per pass). Only the float summation order (and fused multiply-adds)
 * differs from the reference. */
#include "kernels.h"

#include <immintrin.h>
#include <math.h>

#define AI static inline __attribute__((always_inline))

/* Lanes i < left set (all for left >= 8), as a maskload mask. */
AI __m256i tail_mask8(int left)
{
    const int m = left >= 8 ? 8 : left;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(m), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

AI float hsum8f(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

void qb_attn_f32_avx2(int hd, int len, const float *q, const float *k, size_t kst, const float *v, size_t vst,
                      float scale, float *att, float *out)
{
    const int nq = (hd + 7) / 8;
    for (int j = 0; j < len; j++) {
        const float *kj = k + (size_t)j * kst;
        __m256 a = _mm256_setzero_ps();
        for (int c = 0; c < nq; c++) {
            const __m256i m = tail_mask8(hd - 8 * c);
            a = _mm256_fmadd_ps(_mm256_maskload_ps(q + 8 * c, m), _mm256_maskload_ps(kj + 8 * c, m), a);
        }
        att[j] = hsum8f(a) * scale;
    }
    float mx = -INFINITY;
    for (int j = 0; j < len; j++)
        if (att[j] > mx) mx = att[j];
    float sum = 0;
    for (int j = 0; j < len; j++) {
        att[j] = expf(att[j] - mx);
        sum += att[j];
    }
    const float inv = 1.0f / sum;
    for (int c0 = 0; c0 < nq; c0 += 8) {
        const int cn = nq - c0 < 8 ? nq - c0 : 8;
        __m256 o[8];
        for (int c = 0; c < 8; c++) o[c] = _mm256_setzero_ps();
        for (int j = 0; j < len; j++) {
            const __m256 a = _mm256_set1_ps(att[j] * inv);
            const float *vr = v + (size_t)j * vst + 8 * c0;
            #pragma GCC unroll 8
            for (int c = 0; c < 8; c++)
                if (c < cn) o[c] = _mm256_fmadd_ps(a, _mm256_maskload_ps(vr + 8 * c, tail_mask8(hd - 8 * (c0 + c))), o[c]);
        }
        for (int c = 0; c < cn; c++) _mm256_maskstore_ps(out + 8 * (c0 + c), tail_mask8(hd - 8 * (c0 + c)), o[c]);
    }
}
