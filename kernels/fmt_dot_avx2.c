/* fmt_dot_avx2.c — AVX2 dot products of rows in the non-ggml formats (INT 2..8 bits, NF4 /
 * NF4-DQ, FP8 E4M3 / E5M2, MXFP4) with f32 activations: the AVX-512 version
 * (fmt_dot_avx512.c, which explains the decoding) with 8 weights per register. AVX2 has 16
 * vector registers, so a call works through its rows two at a time (2 rows × up to 4 tokens
 * of accumulators). Every decoded weight is bit-identical to the reference's; without masked
 * byte loads, the last bytes of a row are copied through a small buffer instead of read past
 * the row's end. */
#include "kernels.h"
#include "fmt.h"
#include "unaligned.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

/* Which format a body is instantiated for (a compile-time constant of tile_body). */
enum { K_INT, K_NF4, K_E4M3, K_E5M2, K_MXFP4 };

typedef struct {
    __m256i shuf, shift, mask;
} int_dec;

static int_dec int_dec_make(int bits)
{
    uint8_t shuf[32];
    uint32_t shift[8];
    for (int i = 0; i < 8; i++) {
        const int bit = i * bits, o = bit / 8;
        uint8_t *s = shuf + 4 * i;
        s[0] = (uint8_t)o;
        s[1] = o + 1 < bits ? (uint8_t)(o + 1) : 0x80;
        s[2] = s[3] = 0x80;
        shift[i] = (uint32_t)(bit % 8);
    }
    int_dec d;
    d.shuf = _mm256_loadu_si256((const __m256i *)shuf);
    d.shift = _mm256_loadu_si256((const __m256i *)shift);
    d.mask = _mm256_set1_epi32((1 << bits) - 1);
    return d;
}

/* Up to 8 bytes at p (avail of them readable) as a little-endian word, the rest zero. */
AI uint64_t load_upto8(const uint8_t *p, int avail)
{
    uint64_t v = 0;
    if (avail >= 8) {
        memcpy(&v, p, 8);
        return v;
    }
    for (int i = 0; i < avail; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* 8 floats from a 16-entry table by 4-bit codes (int32 lanes): two 8-entry permutes and a
 * blend on bit 3. */
AI __m256 lookup16(__m256i code, __m256 lo, __m256 hi)
{
    return _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, code), _mm256_permutevar8x32_ps(hi, code),
                            _mm256_castsi256_ps(_mm256_slli_epi32(code, 28)));
}

AI float f32_bits(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

AI float e8m0(uint8_t e)
{
    return e == 255 ? NAN : e == 0 ? f32_bits(0x00400000u) : f32_bits((uint32_t)e << 23);
}

typedef struct {
    const uint8_t *codes;
    int nbytes; /* code bytes readable from codes: to the row's end for INT, else the segment's */
    __m256 d, z;
} seg;

AI seg seg_get(const qb_fmt_params *f, const uint8_t *p, int n, int s, const int K)
{
    seg r;
    r.z = _mm256_setzero_ps();
    switch (K) {
    case K_INT: {
        const float zsym = (float)(1 << (f->bits - 1));
        if (f->group > 0) {
            const int cb = f->group * f->bits / 8;
            const uint8_t *h = p + (size_t)s * ((f->asym ? 4 : 2) + cb);
            r.d = _mm256_set1_ps(_cvtsh_ss(rd16(h)));
            r.z = _mm256_set1_ps(f->asym ? _cvtsh_ss(rd16(h + 2)) : zsym);
            r.codes = h + (f->asym ? 4 : 2);
            r.nbytes = (int)((size_t)(n / f->group) * (size_t)((f->asym ? 4 : 2) + cb) - (size_t)(r.codes - p));
        } else {
            r.d = _mm256_set1_ps(rdf32(p));
            r.z = _mm256_set1_ps(f->asym ? rdf32(p + 4) : zsym);
            r.codes = p + (f->asym ? 8 : 4);
            r.nbytes = (int)(((int64_t)n * f->bits + 7) / 8);
        }
        break;
    }
    case K_NF4:
        if (f->dq) {
            const int nb = n / 64, ng = (nb + 255) / 256;
            const uint8_t *b = p + 4 * (size_t)(1 + ng) + (size_t)s * 33;
            const float a = rdf32(p) + rdf32(p + 4 + 4 * (size_t)(s / 256)) * (float)(int8_t)b[0];
            r.d = _mm256_set1_ps(a > 0.0f ? a : 0.0f);
            r.codes = b + 1;
        } else {
            r.d = _mm256_set1_ps(rdf32(p + (size_t)s * 36));
            r.codes = p + (size_t)s * 36 + 4;
        }
        r.nbytes = 32;
        break;
    case K_E4M3: r.d = _mm256_set1_ps(rdf32(p) * 256.0f); r.codes = p + 4; r.nbytes = n; break;
    case K_E5M2: r.d = _mm256_set1_ps(rdf32(p)); r.codes = p + 4; r.nbytes = n; break;
    default: /* MXFP4 */
        r.d = _mm256_set1_ps(e8m0(p[(size_t)s * 17]));
        r.codes = p + (size_t)s * 17 + 1;
        r.nbytes = 16;
        break;
    }
    return r;
}

/* Weights 8k .. 8k+7 of a segment. */
AI __m256 decode8(const qb_fmt_params *f, const int_dec *id, const seg *sg, int k, const int K)
{
    switch (K) {
    case K_INT: {
        const int b = f->bits;
        const __m256i v = _mm256_set1_epi64x((long long)load_upto8(sg->codes + (size_t)k * b, sg->nbytes - k * b));
        const __m256i q = _mm256_and_si256(_mm256_srlv_epi32(_mm256_shuffle_epi8(v, id->shuf), id->shift), id->mask);
        return _mm256_mul_ps(sg->d, _mm256_sub_ps(_mm256_cvtepi32_ps(q), sg->z));
    }
    case K_NF4: {
        const __m128i w = _mm_cvtepu8_epi16(_mm_cvtsi32_si128((int)rd32(sg->codes + 4 * k)));
        const __m128i m = _mm_set1_epi16(15);
        const __m128i c = _mm_or_si128(_mm_and_si128(w, m), _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(w, 4), m), 8));
        const __m256 lo = _mm256_loadu_ps(qb_nf4_levels), hi = _mm256_loadu_ps(qb_nf4_levels + 8);
        return _mm256_mul_ps(lookup16(_mm256_cvtepu8_epi32(c), lo, hi), sg->d);
    }
    case K_E4M3:
    case K_E5M2: {
        const __m128i w = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)load_upto8(sg->codes + 8 * k, sg->nbytes - 8 * k)));
        __m128i h;
        if (K == K_E5M2) {
            h = _mm_slli_epi16(w, 8);
        } else {
            const __m128i mag = _mm_and_si128(w, _mm_set1_epi16(0x7f));
            h = _mm_or_si128(_mm_slli_epi16(mag, 7), _mm_slli_epi16(_mm_and_si128(w, _mm_set1_epi16(0x80)), 8));
            h = _mm_blendv_epi8(h, _mm_set1_epi16(0x7e00), _mm_cmpeq_epi16(mag, _mm_set1_epi16(0x7f)));
        }
        return _mm256_mul_ps(_mm256_cvtph_ps(h), sg->d);
    }
    default: { /* MXFP4: chunks 0, 1 low nibbles of bytes 0-7, 8-15; chunks 2, 3 high nibbles */
        const __m128i q = _mm_loadl_epi64((const __m128i *)(sg->codes + 8 * (k & 1)));
        const __m128i c = k < 2 ? _mm_and_si128(q, _mm_set1_epi8(15)) : _mm_and_si128(_mm_srli_epi16(q, 4), _mm_set1_epi8(15));
        const __m256 lo = _mm256_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f);
        const __m256 hi = _mm256_setr_ps(-0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f);
        return _mm256_mul_ps(lookup16(_mm256_cvtepu8_epi32(c), lo, hi), sg->d);
    }
    }
}

AI int seg_len(const qb_fmt_params *f, int n, const int K)
{
    switch (K) {
    case K_INT: return f->group > 0 ? f->group : n;
    case K_NF4: return 64;
    case K_MXFP4: return 32;
    default: return n;
    }
}

static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

AI void tile_body(const qb_fmt_params *f, int n, const uint8_t *w, size_t wst, const float *x, size_t ldx, float *y,
                  size_t ldy, const int NR, const int NC, const int K)
{
    __m256 acc[2][4];
    #pragma GCC unroll 4
    for (int r = 0; r < NR; r++)
        #pragma GCC unroll 4
        for (int c = 0; c < NC; c++) acc[r][c] = _mm256_setzero_ps();
    int_dec id;
    if (K == K_INT) id = int_dec_make(f->bits);
    const int len = seg_len(f, n, K), nseg = n / len;
    for (int s = 0; s < nseg; s++) {
        seg sg[2];
        #pragma GCC unroll 4
        for (int r = 0; r < NR; r++) sg[r] = seg_get(f, w + r * wst, n, s, K);
        const float *xs = x + (size_t)s * len;
        for (int e = 0; e < len; e += 8) {
            const int rem = len - e;
            __m256 xv[4];
            if (rem >= 8) {
                #pragma GCC unroll 4
                for (int c = 0; c < NC; c++) xv[c] = _mm256_loadu_ps(xs + c * ldx + e);
            } else {
                const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(rem), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
                #pragma GCC unroll 4
                for (int c = 0; c < NC; c++) xv[c] = _mm256_maskload_ps(xs + c * ldx + e, m);
            }
            #pragma GCC unroll 4
            for (int r = 0; r < NR; r++) {
                const __m256 wv = decode8(f, &id, &sg[r], e / 8, K);
                #pragma GCC unroll 4
                for (int c = 0; c < NC; c++) acc[r][c] = _mm256_fmadd_ps(wv, xv[c], acc[r][c]);
            }
        }
    }
    #pragma GCC unroll 4
    for (int r = 0; r < NR; r++)
        #pragma GCC unroll 4
        for (int c = 0; c < NC; c++) y[c * ldy + r] = hsum(acc[r][c]);
}

#define TILE_CASES(K)                                                                                  \
    for (int r0 = 0; r0 < nr; r0 += 2) {                                                               \
        const uint8_t *wr = (const uint8_t *)w + r0 * wst;                                             \
        float *yr = y + r0;                                                                            \
        switch ((nr - r0 >= 2 ? 4 : 0) + nc - 1) {                                                     \
        case 0: tile_body(f, n, wr, wst, x, ldx, yr, ldy, 1, 1, K); break;                             \
        case 1: tile_body(f, n, wr, wst, x, ldx, yr, ldy, 1, 2, K); break;                             \
        case 2: tile_body(f, n, wr, wst, x, ldx, yr, ldy, 1, 3, K); break;                             \
        case 3: tile_body(f, n, wr, wst, x, ldx, yr, ldy, 1, 4, K); break;                             \
        case 4: tile_body(f, n, wr, wst, x, ldx, yr, ldy, 2, 1, K); break;                             \
        case 5: tile_body(f, n, wr, wst, x, ldx, yr, ldy, 2, 2, K); break;                             \
        case 6: tile_body(f, n, wr, wst, x, ldx, yr, ldy, 2, 3, K); break;                             \
        default: tile_body(f, n, wr, wst, x, ldx, yr, ldy, 2, 4, K); break;                            \
        }                                                                                              \
    }

void qb_fmt_tile_int_avx2(const qb_fmt_params *f, int n, const void *w, size_t wst, int nr, const float *x, size_t ldx, int nc, float *y, size_t ldy) { TILE_CASES(K_INT) }
void qb_fmt_tile_nf4_avx2(const qb_fmt_params *f, int n, const void *w, size_t wst, int nr, const float *x, size_t ldx, int nc, float *y, size_t ldy) { TILE_CASES(K_NF4) }
void qb_fmt_tile_e4m3_avx2(const qb_fmt_params *f, int n, const void *w, size_t wst, int nr, const float *x, size_t ldx, int nc, float *y, size_t ldy) { TILE_CASES(K_E4M3) }
void qb_fmt_tile_e5m2_avx2(const qb_fmt_params *f, int n, const void *w, size_t wst, int nr, const float *x, size_t ldx, int nc, float *y, size_t ldy) { TILE_CASES(K_E5M2) }
void qb_fmt_tile_mxfp4_avx2(const qb_fmt_params *f, int n, const void *w, size_t wst, int nr, const float *x, size_t ldx, int nc, float *y, size_t ldy) { TILE_CASES(K_MXFP4) }
