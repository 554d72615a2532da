/* gemm_i8_avx512.c — AVX-512 versions of the int8 GEMM tile (spec: gemm_i8_ref.c): 64 bytes
 * per step, all four weight rows × four tokens in 16 accumulators (one token: 4), masked loads for the tail
 * (masked bytes are zero activations, so they add nothing). Sign trick as in gemm_i8_avx2.c.
 * "_avx512" widens with vpmaddubsw + vpmaddwd (AVX-512BW); "_avx512vnni" multiplies the
 * unsigned codes by the signed activations with vpdpbusd directly (no saturation there, so
 * no sign trick) and takes 128 · Σx off at the end. vpdpbusd is
 * written as inline asm because the Makefile gives this file no -mavx512vnni (dispatch.c
 * installs it only where cpuid reports AVX512-VNNI). Exact: bit-identical to the reference. */
#include "kernels.h"

#include <immintrin.h>

#define AI static inline __attribute__((always_inline))

AI __m512i dp(__m512i acc, __m512i u, __m512i s, const int vnni)
{
    if (vnni) {
        __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));
        return acc;
    }
    return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
}

AI void tile(int n, const uint8_t *const ws[4], const int8_t *const xs[4], int32_t out[4][4], const int vnni,
             const int NC)
{
    __m512i a[4][4];
    #pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
        #pragma GCC unroll 4
        for (int c = 0; c < 4; c++) a[r][c] = _mm512_setzero_si512();
    const __m512i off = _mm512_set1_epi8((char)0x80), z = _mm512_setzero_si512();
    __m512i zs[4]; /* VNNI: 128 · sum of x per token, taken off at the end */
    #pragma GCC unroll 4
    for (int c = 0; c < 4; c++) zs[c] = _mm512_setzero_si512();
    for (int i = 0; i < n; i += 64) {
        __mmask64 m = n - i >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (n - i)) - 1);
        __m512i xv[4];
        #pragma GCC unroll 4
        for (int c = 0; c < NC; c++) xv[c] = _mm512_maskz_loadu_epi8(m, xs[c] + i);
        if (vnni) { /* vpdpbusd multiplies unsigned codes by signed x directly: no sign trick */
            #pragma GCC unroll 4
            for (int c = 0; c < NC; c++) zs[c] = dp(zs[c], off, xv[c], 1);
            #pragma GCC unroll 4
            for (int r = 0; r < 4; r++) {
                __m512i u = _mm512_maskz_loadu_epi8(m, ws[r] + i);
                #pragma GCC unroll 4
                for (int c = 0; c < NC; c++) a[r][c] = dp(a[r][c], u, xv[c], 1);
            }
            continue;
        }
        #pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            __m512i s = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, ws[r] + i), off);
            __m512i u = _mm512_abs_epi8(s);
            __mmask64 neg = _mm512_movepi8_mask(s);
            #pragma GCC unroll 4
            for (int c = 0; c < NC; c++) a[r][c] = dp(a[r][c], u, _mm512_mask_sub_epi8(xv[c], neg, z, xv[c]), vnni);
        }
    }
    #pragma GCC unroll 4
    for (int c = 0; c < NC; c++) {
        int32_t z = vnni ? _mm512_reduce_add_epi32(zs[c]) : 0;
        #pragma GCC unroll 4
        for (int r = 0; r < 4; r++) out[r][c] = _mm512_reduce_add_epi32(a[r][c]) - z;
    }
}

AI void gemm(int n, const uint8_t *w, size_t ldw, int nr, const int8_t *x, size_t ldx, int nc, int32_t *y, size_t ldy,
             const int vnni)
{
    const uint8_t *ws[4];
    const int8_t *xs[4];
    #pragma GCC unroll 4
    for (int r = 0; r < 4; r++) ws[r] = w + (size_t)(r < nr ? r : 0) * ldw;
    #pragma GCC unroll 4
    for (int c = 0; c < 4; c++) xs[c] = x + (size_t)(c < nc ? c : 0) * ldx;
    int32_t out[4][4];
    if (nc == 1) tile(n, ws, xs, out, vnni, 1); /* generation: one token, no wasted columns */
    else tile(n, ws, xs, out, vnni, 4);
    for (int c = 0; c < nc; c++)
        for (int r = 0; r < nr; r++) y[(size_t)c * ldy + r] = out[r][c];
}

void qb_gemm_i8_avx512(int n, const uint8_t *w, size_t ldw, int nr, const int8_t *x, size_t ldx, int nc, int32_t *y,
                       size_t ldy)
{
    gemm(n, w, ldw, nr, x, ldx, nc, y, ldy, 0);
}

void qb_gemm_i8_avx512vnni(int n, const uint8_t *w, size_t ldw, int nr, const int8_t *x, size_t ldx, int nc,
                           int32_t *y, size_t ldy)
{
    gemm(n, w, ldw, nr, x, ldx, nc, y, ldy, 1);
}
