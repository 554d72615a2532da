/* dot_avx2.c — AVX2/FMA/F16C dot products, GEMM tile and row conversions (built with -mavx2
 * -mfma -mf16c; only called when cpuid says the CPU has them). */
#include "kernels.h"

#include <immintrin.h>

static inline float hsum256(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

static inline __m256 load_bf16(const uint16_t *p)
{
    __m128i h = _mm_loadu_si128((const __m128i *)p);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

float qb_dot_f32_avx2(int n, const float *w, const float *x)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) s += w[i] * x[i];
    return s;
}

float qb_dot_f16_avx2(int n, const uint16_t *w, const float *x)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i))), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + 8))), _mm256_loadu_ps(x + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + 16))), _mm256_loadu_ps(x + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + 24))), _mm256_loadu_ps(x + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i))), _mm256_loadu_ps(x + i), a0);
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) s += _cvtsh_ss(w[i]) * x[i];
    return s;
}

float qb_dot_bf16_avx2(int n, const uint16_t *w, const float *x)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(load_bf16(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(load_bf16(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(load_bf16(w + i), _mm256_loadu_ps(x + i), a0);
    float s = hsum256(_mm256_add_ps(a0, a1));
    for (; i < n; i++) {
        union { uint32_t u; float f; } v = {.u = (uint32_t)w[i] << 16};
        s += v.f * x[i];
    }
    return s;
}

/* 4 rows x 3 columns of 8-wide accumulators fit AVX2's 16 registers; named (not an array) so
 * they stay in registers. Columns go in threes; a partial group reuses column 0's pointer. */
#define ACC3(r) __m256 a##r##0 = _mm256_setzero_ps(), a##r##1 = _mm256_setzero_ps(), a##r##2 = _mm256_setzero_ps()
#define ROW3(r, wv) do { __m256 w_ = (wv); a##r##0 = _mm256_fmadd_ps(w_, v0, a##r##0); \
    a##r##1 = _mm256_fmadd_ps(w_, v1, a##r##1); a##r##2 = _mm256_fmadd_ps(w_, v2, a##r##2); } while (0)

static inline __m256 load_f32x8(const float *p) { return _mm256_loadu_ps(p); }
static inline __m256 load_f16x8(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

/* One tile kernel and its driver per weight type WT, reading weights with LOAD (F32 as is, F16
 * converted in registers); rows not a multiple of 8 or partial row groups use DOT. */
#define DEFINE_TILE(NAME, WT, LOAD, DOT)                                                                         \
    static void NAME##_4x3(int n, const WT *w, size_t ldw, const float *x0, const float *x1, const float *x2,    \
                           int cn, float *y, size_t ldy)                                                        \
    {                                                                                                           \
        ACC3(0); ACC3(1); ACC3(2); ACC3(3);                                                                     \
        const WT *w0 = w, *w1 = w + ldw, *w2 = w + 2 * ldw, *w3 = w + 3 * ldw;                                  \
        for (int i = 0; i < n; i += 8) {                                                                        \
            __m256 v0 = _mm256_loadu_ps(x0 + i), v1 = _mm256_loadu_ps(x1 + i), v2 = _mm256_loadu_ps(x2 + i);    \
            ROW3(0, LOAD(w0 + i)); ROW3(1, LOAD(w1 + i)); ROW3(2, LOAD(w2 + i)); ROW3(3, LOAD(w3 + i));         \
        }                                                                                                       \
        __m256 acc[4][3] = {{a00, a01, a02}, {a10, a11, a12}, {a20, a21, a22}, {a30, a31, a32}};                \
        for (int c = 0; c < cn; c++)                                                                            \
            for (int r = 0; r < 4; r++) y[(size_t)c * ldy + r] = hsum256(acc[r][c]);                            \
    }                                                                                                           \
    void NAME(int n, const WT *w, size_t ldw, int nr, const float *x, size_t ldx, int nc, float *y, size_t ldy)  \
    {                                                                                                           \
        if (nr != 4 || n % 8 != 0) {                                                                            \
            for (int c = 0; c < nc; c++)                                                                        \
                for (int r = 0; r < nr; r++) y[(size_t)c * ldy + r] = DOT(n, w + (size_t)r * ldw, x + (size_t)c * ldx); \
            return;                                                                                             \
        }                                                                                                       \
        for (int c0 = 0; c0 < nc; c0 += 3) {                                                                    \
            int cn = nc - c0 < 3 ? nc - c0 : 3;                                                                 \
            const float *x0 = x + (size_t)c0 * ldx;                                                             \
            const float *x1 = cn > 1 ? x0 + ldx : x0, *x2 = cn > 2 ? x0 + 2 * ldx : x0;                         \
            NAME##_4x3(n, w, ldw, x0, x1, x2, cn, y + (size_t)c0 * ldy, ldy);                                   \
        }                                                                                                       \
    }

DEFINE_TILE(qb_tile_f32_avx2, float, load_f32x8, qb_dot_f32_avx2)
DEFINE_TILE(qb_tile_f16_avx2, uint16_t, load_f16x8, qb_dot_f16_avx2)

void qb_f16_to_f32_avx2(int n, const uint16_t *src, float *dst)
{
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = _cvtsh_ss(src[i]);
}

void qb_bf16_to_f32_avx2(int n, const uint16_t *src, float *dst)
{
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load_bf16(src + i));
    for (; i < n; i++) {
        union { uint32_t u; float f; } v = {.u = (uint32_t)src[i] << 16};
        dst[i] = v.f;
    }
}
