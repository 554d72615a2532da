/* attn_train_avx2.c — AVX2 row operations of the training attention (spec:
 * attn_train_ref.c). Softmax: the scaling and the maximum in 8 lanes, libm's expf per score
 * (and tanhf per score where soft-capped) as the reference, the sum in double lanes, each
 * probability divided in double as the reference divides. Score gradient: Σ p·dp in double
 * lanes, then the reference's arithmetic, four scores at a time. Only the order of the double
 * sums differs from the reference. */
#include "kernels.h"

#include <immintrin.h>
#include <math.h>

#define AI static inline __attribute__((always_inline))

/* Lanes i < left set (all for left >= 8 / 4), as maskload masks. */
AI __m256i tail_mask8(int left)
{
    const int m = left >= 8 ? 8 : left;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(m), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
AI __m128i tail_mask4(int left)
{
    const int m = left >= 4 ? 4 : left;
    return _mm_cmpgt_epi32(_mm_set1_epi32(m), _mm_setr_epi32(0, 1, 2, 3));
}

AI double hsum4d(__m256d v)
{
    const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

void qb_attn_softmax_row_avx2(int n, float *s, float scale, float softcap)
{
    const __m256 vs = _mm256_set1_ps(scale), ninf = _mm256_set1_ps(-INFINITY);
    __m256 mx = ninf;
    if (softcap > 0) {
        for (int j = 0; j < n; j++) s[j] = softcap * tanhf(s[j] * scale / softcap);
        for (int j = 0; j < n; j += 8) {
            const __m256i m = tail_mask8(n - j);
            mx = _mm256_max_ps(mx, _mm256_blendv_ps(ninf, _mm256_maskload_ps(s + j, m), _mm256_castsi256_ps(m)));
        }
    } else {
        for (int j = 0; j < n; j += 8) {
            const __m256i m = tail_mask8(n - j);
            const __m256 z = _mm256_mul_ps(_mm256_maskload_ps(s + j, m), vs);
            _mm256_maskstore_ps(s + j, m, z);
            mx = _mm256_max_ps(mx, _mm256_blendv_ps(ninf, z, _mm256_castsi256_ps(m)));
        }
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    const float top = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
    for (int j = 0; j < n; j++) s[j] = expf(s[j] - top);
    __m256d sum = _mm256_setzero_pd();
    for (int j = 0; j < n; j += 4) sum = _mm256_add_pd(sum, _mm256_cvtps_pd(_mm_maskload_ps(s + j, tail_mask4(n - j))));
    const __m256d tot = _mm256_set1_pd(hsum4d(sum));
    for (int j = 0; j < n; j += 4) {
        const __m128i m = tail_mask4(n - j);
        _mm_maskstore_ps(s + j, m, _mm256_cvtpd_ps(_mm256_div_pd(_mm256_cvtps_pd(_mm_maskload_ps(s + j, m)), tot)));
    }
}

void qb_attn_dscore_row_avx2(int n, const float *p, const float *dp, const float *s, float scale, float softcap,
                             float *ds)
{
    __m256d acc = _mm256_setzero_pd();
    for (int j = 0; j < n; j += 4) {
        const __m128i m = tail_mask4(n - j);
        acc = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_maskload_ps(p + j, m)), _mm256_cvtps_pd(_mm_maskload_ps(dp + j, m)), acc);
    }
    const __m256d row = _mm256_set1_pd(hsum4d(acc));
    const __m128 vs = _mm_set1_ps(scale);
    for (int j = 0; j < n; j += 4) {
        const __m128i m = tail_mask4(n - j);
        const __m128 d = _mm256_cvtpd_ps(_mm256_sub_pd(_mm256_cvtps_pd(_mm_maskload_ps(dp + j, m)), row));
        _mm_maskstore_ps(ds + j, m, _mm_mul_ps(_mm_mul_ps(_mm_maskload_ps(p + j, m), d), vs));
    }
    if (softcap > 0)
        for (int j = 0; j < n; j++) {
            const float t = tanhf(s[j] * scale / softcap);
            ds[j] *= 1.0f - t * t;
        }
}
