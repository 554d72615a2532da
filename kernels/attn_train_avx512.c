/* attn_train_avx512.c — AVX-512 row operations of the training attention (spec:
 * attn_train_ref.c). Softmax: the scaling and the maximum in 16 lanes, libm's expf per score
 * (and tanhf per score where soft-capped) as the reference, the sum in double lanes, each
 * probability divided in double as the reference divides. Score gradient: Σ p·dp in double
 * lanes, then the reference's arithmetic, eight scores at a time. Only the order of the double
 * sums differs from the reference. */
#include "kernels.h"

#include <immintrin.h>
#include <math.h>

#define AI static inline __attribute__((always_inline))

AI __mmask16 tail_mask16(int left) { return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1); }
AI __mmask8 tail_mask8(int left) { return left >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << left) - 1); }

void qb_attn_softmax_row_avx512(int n, float *s, float scale, float softcap)
{
    const __m512 vs = _mm512_set1_ps(scale);
    __m512 mx = _mm512_set1_ps(-INFINITY);
    if (softcap > 0) {
        for (int j = 0; j < n; j++) s[j] = softcap * tanhf(s[j] * scale / softcap);
        for (int j = 0; j < n; j += 16) {
            const __mmask16 m = tail_mask16(n - j);
            mx = _mm512_mask_max_ps(mx, m, mx, _mm512_maskz_loadu_ps(m, s + j));
        }
    } else {
        for (int j = 0; j < n; j += 16) {
            const __mmask16 m = tail_mask16(n - j);
            const __m512 z = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, s + j), vs);
            _mm512_mask_storeu_ps(s + j, m, z);
            mx = _mm512_mask_max_ps(mx, m, mx, z);
        }
    }
    const float top = _mm512_reduce_max_ps(mx);
    for (int j = 0; j < n; j++) s[j] = expf(s[j] - top);
    __m512d sum = _mm512_setzero_pd();
    for (int j = 0; j < n; j += 8)
        sum = _mm512_add_pd(sum, _mm512_cvtps_pd(_mm256_maskz_loadu_ps(tail_mask8(n - j), s + j)));
    const __m512d tot = _mm512_set1_pd(_mm512_reduce_add_pd(sum));
    for (int j = 0; j < n; j += 8) {
        const __mmask8 m = tail_mask8(n - j);
        const __m512d e = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, s + j));
        _mm256_mask_storeu_ps(s + j, m, _mm512_cvtpd_ps(_mm512_div_pd(e, tot)));
    }
}

void qb_attn_dscore_row_avx512(int n, const float *p, const float *dp, const float *s, float scale, float softcap,
                               float *ds)
{
    __m512d acc = _mm512_setzero_pd();
    for (int j = 0; j < n; j += 8) {
        const __mmask8 m = tail_mask8(n - j);
        acc = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, p + j)),
                              _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, dp + j)), acc);
    }
    const __m512d row = _mm512_set1_pd(_mm512_reduce_add_pd(acc));
    const __m256 vs = _mm256_set1_ps(scale);
    for (int j = 0; j < n; j += 8) {
        const __mmask8 m = tail_mask8(n - j);
        const __m256 d = _mm512_cvtpd_ps(_mm512_sub_pd(_mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, dp + j)), row));
        _mm256_mask_storeu_ps(ds + j, m, _mm256_mul_ps(_mm256_mul_ps(_mm256_maskz_loadu_ps(m, p + j), d), vs));
    }
    if (softcap > 0)
        for (int j = 0; j < n; j++) {
            const float t = tanhf(s[j] * scale / softcap);
            ds[j] *= 1.0f - t * t;
        }
}
