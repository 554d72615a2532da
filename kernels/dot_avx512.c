/* dot_avx512.c — AVX-512 dot products, GEMM tile and row conversions (built with
 * -mavx512f/bw/vl/dq; only called when cpuid says the CPU has them). Tails use masks. */
#include "kernels.h"

#include <immintrin.h>

static inline __m512 load_f16(const uint16_t *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

static inline __m512 load_f16_tail(const uint16_t *p, int k)
{
    __mmask16 m = (__mmask16)((1u << k) - 1);
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}

static inline __m512 load_bf16(const uint16_t *p)
{
    __m256i h = _mm256_loadu_si256((const __m256i *)p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

static inline __m512 load_bf16_tail(const uint16_t *p, int k)
{
    __mmask16 m = (__mmask16)((1u << k) - 1);
    __m256i h = _mm256_maskz_loadu_epi16(m, p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

float qb_dot_f32_avx512(int n, const float *w, const float *x)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), _mm512_loadu_ps(x + i + 16), a1);
        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 32), _mm512_loadu_ps(x + i + 32), a2);
        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 48), _mm512_loadu_ps(x + i + 48), a3);
    }
    for (; i + 16 <= n; i += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a0);
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + i), _mm512_maskz_loadu_ps(m, x + i), a1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

float qb_dot_f16_avx512(int n, const uint16_t *w, const float *x)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_fmadd_ps(load_f16(w + i), _mm512_loadu_ps(x + i), a0);
        a1 = _mm512_fmadd_ps(load_f16(w + i + 16), _mm512_loadu_ps(x + i + 16), a1);
        a2 = _mm512_fmadd_ps(load_f16(w + i + 32), _mm512_loadu_ps(x + i + 32), a2);
        a3 = _mm512_fmadd_ps(load_f16(w + i + 48), _mm512_loadu_ps(x + i + 48), a3);
    }
    for (; i + 16 <= n; i += 16) a0 = _mm512_fmadd_ps(load_f16(w + i), _mm512_loadu_ps(x + i), a0);
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        a1 = _mm512_fmadd_ps(load_f16_tail(w + i, n - i), _mm512_maskz_loadu_ps(m, x + i), a1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

float qb_dot_bf16_avx512(int n, const uint16_t *w, const float *x)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm512_fmadd_ps(load_bf16(w + i), _mm512_loadu_ps(x + i), a0);
        a1 = _mm512_fmadd_ps(load_bf16(w + i + 16), _mm512_loadu_ps(x + i + 16), a1);
    }
    for (; i + 16 <= n; i += 16) a0 = _mm512_fmadd_ps(load_bf16(w + i), _mm512_loadu_ps(x + i), a0);
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        a1 = _mm512_fmadd_ps(load_bf16_tail(w + i, n - i), _mm512_maskz_loadu_ps(m, x + i), a1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

/* Accumulators are named (not an array) so they stay in registers. */
#define ACC4(r) __m512 a##r##0 = _mm512_setzero_ps(), a##r##1 = _mm512_setzero_ps(), \
                       a##r##2 = _mm512_setzero_ps(), a##r##3 = _mm512_setzero_ps()
#define ROW4(r, wv) do { __m512 w_ = (wv); a##r##0 = _mm512_fmadd_ps(w_, v0, a##r##0); \
    a##r##1 = _mm512_fmadd_ps(w_, v1, a##r##1); a##r##2 = _mm512_fmadd_ps(w_, v2, a##r##2); \
    a##r##3 = _mm512_fmadd_ps(w_, v3, a##r##3); } while (0)

static inline __m512 load_f32(const float *p) { return _mm512_loadu_ps(p); }
static inline __m512 load_f32_tail(const float *p, int k) { return _mm512_maskz_loadu_ps((__mmask16)((1u << k) - 1), p); }

/* One tile kernel and its driver per weight type WT, reading weights with LOAD / LOAD_TAIL
 * (F32 as is, F16 converted in registers) and falling back to DOT for partial row groups. */
#define DEFINE_TILE(NAME, WT, LOAD, LOAD_TAIL, DOT)                                                              \
    static void NAME##_4x4(int n, const WT *w, size_t ldw, const float *const *xc, int cn, float *y, size_t ldy) \
    {                                                                                                           \
        ACC4(0); ACC4(1); ACC4(2); ACC4(3);                                                                     \
        const WT *w0 = w, *w1 = w + ldw, *w2 = w + 2 * ldw, *w3 = w + 3 * ldw;                                  \
        int i = 0;                                                                                              \
        for (; i + 16 <= n; i += 16) {                                                                          \
            __m512 v0 = _mm512_loadu_ps(xc[0] + i), v1 = _mm512_loadu_ps(xc[1] + i);                            \
            __m512 v2 = _mm512_loadu_ps(xc[2] + i), v3 = _mm512_loadu_ps(xc[3] + i);                            \
            ROW4(0, LOAD(w0 + i)); ROW4(1, LOAD(w1 + i)); ROW4(2, LOAD(w2 + i)); ROW4(3, LOAD(w3 + i));         \
        }                                                                                                       \
        if (i < n) {                                                                                            \
            __m512 v0 = load_f32_tail(xc[0] + i, n - i), v1 = load_f32_tail(xc[1] + i, n - i);                  \
            __m512 v2 = load_f32_tail(xc[2] + i, n - i), v3 = load_f32_tail(xc[3] + i, n - i);                  \
            ROW4(0, LOAD_TAIL(w0 + i, n - i)); ROW4(1, LOAD_TAIL(w1 + i, n - i));                               \
            ROW4(2, LOAD_TAIL(w2 + i, n - i)); ROW4(3, LOAD_TAIL(w3 + i, n - i));                               \
        }                                                                                                       \
        __m512 acc[4][4] = {{a00, a01, a02, a03}, {a10, a11, a12, a13}, {a20, a21, a22, a23}, {a30, a31, a32, a33}}; \
        for (int c = 0; c < cn; c++)                                                                            \
            for (int r = 0; r < 4; r++) y[(size_t)c * ldy + r] = _mm512_reduce_add_ps(acc[r][c]);               \
    }                                                                                                           \
    void NAME(int n, const WT *w, size_t ldw, int nr, const float *x, size_t ldx, int nc, float *y, size_t ldy)  \
    {                                                                                                           \
        if (nr != 4) {                                                                                          \
            for (int c = 0; c < nc; c++)                                                                        \
                for (int r = 0; r < nr; r++) y[(size_t)c * ldy + r] = DOT(n, w + (size_t)r * ldw, x + (size_t)c * ldx); \
            return;                                                                                             \
        }                                                                                                       \
        for (int c0 = 0; c0 < nc; c0 += 4) {                                                                    \
            int cn = nc - c0 < 4 ? nc - c0 : 4;                                                                 \
            const float *xc[4];                                                                                 \
            for (int c = 0; c < 4; c++) xc[c] = x + (size_t)(c0 + (c < cn ? c : 0)) * ldx;                     \
            NAME##_4x4(n, w, ldw, xc, cn, y + (size_t)c0 * ldy, ldy);                                           \
        }                                                                                                       \
    }

/* 4 rows x 4 columns = 16 zmm accumulators; columns go in fours, a last partial group reuses
 * column 0's pointer; k tails use masks. */
DEFINE_TILE(qb_tile_f32_avx512, float, load_f32, load_f32_tail, qb_dot_f32_avx512)
DEFINE_TILE(qb_tile_f16_avx512, uint16_t, load_f16, load_f16_tail, qb_dot_f16_avx512)

void qb_f16_to_f32_avx512(int n, const uint16_t *src, float *dst)
{
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, load_f16(src + i));
    if (i < n) _mm512_mask_storeu_ps(dst + i, (__mmask16)((1u << (n - i)) - 1), load_f16_tail(src + i, n - i));
}

void qb_bf16_to_f32_avx512(int n, const uint16_t *src, float *dst)
{
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, load_bf16(src + i));
    if (i < n) _mm512_mask_storeu_ps(dst + i, (__mmask16)((1u << (n - i)) - 1), load_bf16_tail(src + i, n - i));
}
