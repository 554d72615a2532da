/* gemm_i8_avx2.c — AVX2 version of the int8 GEMM tile (spec: gemm_i8_ref.c). 32 bytes per
 * step with the sign trick: the weight code minus 128 is a signed byte ws; |ws| (unsigned,
 * at most 128) times x negated where ws < 0 goes through vpmaddubsw, whose pair sums
 * (≤ 2 · 128 · 127) cannot saturate because activations never hold −128; vpmaddwd widens to
 * int32. Two weight rows × up to four tokens per pass keep the accumulators in registers;
 * the last n mod 32 elements are summed in scalar code. Results are exact (bit-identical to
 * the reference). */
#include "kernels.h"

#include <immintrin.h>

static inline __m256i dp(__m256i acc, __m256i aw, __m256i ws, __m256i x)
{
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(x, ws)),
                                                   _mm256_set1_epi16(1)));
}

static inline int32_t hsum(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

static int32_t tail(int i0, int n, const uint8_t *w, const int8_t *x)
{
    int32_t s = 0;
    for (int i = i0; i < n; i++) s += ((int32_t)w[i] - 128) * (int32_t)x[i];
    return s;
}

/* Rows w0, w1 (w1 may repeat w0) against four token rows (repeats allowed). */
static inline __attribute__((always_inline)) void pair(int n, const uint8_t *w0, const uint8_t *w1,
                                                       const int8_t *const xs[4], int32_t out[2][4], const int NC)
{
    __m256i a[2][4];
    #pragma GCC unroll 4
    for (int r = 0; r < 2; r++)
        #pragma GCC unroll 4
        for (int c = 0; c < 4; c++) a[r][c] = _mm256_setzero_si256();
    const __m256i off = _mm256_set1_epi8((char)0x80);
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i s0 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(w0 + i)), off);
        __m256i s1 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(w1 + i)), off);
        __m256i u0 = _mm256_abs_epi8(s0), u1 = _mm256_abs_epi8(s1);
        #pragma GCC unroll 4
        for (int c = 0; c < NC; c++) {
            __m256i xv = _mm256_loadu_si256((const __m256i *)(xs[c] + i));
            a[0][c] = dp(a[0][c], u0, s0, xv);
            a[1][c] = dp(a[1][c], u1, s1, xv);
        }
    }
    #pragma GCC unroll 4
    for (int c = 0; c < NC; c++) {
        out[0][c] = hsum(a[0][c]) + tail(i, n, w0, xs[c]);
        out[1][c] = hsum(a[1][c]) + tail(i, n, w1, xs[c]);
    }
}

void qb_gemm_i8_avx2(int n, const uint8_t *w, size_t ldw, int nr, const int8_t *x, size_t ldx, int nc, int32_t *y,
                     size_t ldy)
{
    const int8_t *xs[4];
    #pragma GCC unroll 4
    for (int c = 0; c < 4; c++) xs[c] = x + (size_t)(c < nc ? c : 0) * ldx;
    for (int r = 0; r < nr; r += 2) {
        const uint8_t *w0 = w + (size_t)r * ldw, *w1 = r + 1 < nr ? w0 + ldw : w0;
        int32_t out[2][4];
        if (nc == 1) pair(n, w0, w1, xs, out, 1);
        else pair(n, w0, w1, xs, out, 4);
        for (int c = 0; c < nc; c++) {
            y[(size_t)c * ldy + r] = out[0][c];
            if (r + 1 < nr) y[(size_t)c * ldy + r + 1] = out[1][c];
        }
    }
}
