/* fmt_dot_avx512.c — AVX-512 dot products of rows in the non-ggml formats (INT 2..8 bits,
 * NF4 with and without double quantization, FP8 E4M3 / E5M2, MXFP4) with f32 activations:
 * 16 weights at a time are decoded from the packed bytes into a register (never to memory)
 * and meet up to 4 activation rows with fma; up to 4 weight rows per call share each
 * activation load. The spec is dequantize (fmt_*_ref.c) then an f32 dot: every decoded weight
 * is bit-identical to the reference's (same operations in the same order), only the float
 * summation order differs.
 *
 * Decoding, 16 elements:
 *   INT b bits: the 2b bytes of the chunk are broadcast to the four 128-bit lanes; vpshufb
 *     puts the (at most two) bytes holding code i in int32 lane i, vpsrlvd and a mask leave
 *     the code; w = d · (q − z) (f16 group scale, or the f32 row scale).
 *   NF4: 8 bytes → 16 nibbles in element order → vpermps from the 16 levels in a register,
 *     times the block absmax (double-quantized: mean + s2 · qa, as the reference computes it).
 *   FP8: E5M2 is the top byte of an f16; E4M3 shifted into an f16 is its value times 2^-8
 *     (subnormals included), so the row scale is applied as 256 · scale; E4M3's NaN codes
 *     are mapped to an f16 NaN.
 *   MXFP4: low nibbles (elements 0-15) then high nibbles (16-31) → vpermps from the signed
 *     E2M1 values, times the E8M0 scale built from its bits.
 * Rows of per-row formats may end inside a chunk: the last chunk's bytes and activations are
 * loaded with masks (no read past the row). */
#include "kernels.h"
#include "fmt.h"
#include "unaligned.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

/* Which format a body is instantiated for (a compile-time constant of tile_body). */
enum { K_INT, K_NF4, K_E4M3, K_E5M2, K_MXFP4 };

/* Per-call constants of the INT decoder for b bits, and of the row layout (computed once per
 * call: divisions per segment showed in profiles). */
typedef struct {
    __m512i shuf, shift, mask;
    size_t stride, rowbytes; /* group stride (groups) and code bytes of the row */
    int hdr;                 /* header bytes of a group or of the row */
    float zsym;
} int_dec;

static int_dec int_dec_make(const qb_fmt_params *f, int n)
{
    const int bits = f->bits;
    uint8_t shuf[64];
    uint32_t shift[16];
    for (int i = 0; i < 16; i++) {
        const int bit = i * bits, o = bit / 8;
        uint8_t *s = shuf + 4 * i;
        s[0] = (uint8_t)o;
        s[1] = o + 1 < 2 * bits ? (uint8_t)(o + 1) : 0x80;
        s[2] = s[3] = 0x80;
        shift[i] = (uint32_t)(bit % 8);
    }
    int_dec d;
    d.shuf = _mm512_loadu_si512(shuf);
    d.shift = _mm512_loadu_si512(shift);
    d.mask = _mm512_set1_epi32((1 << bits) - 1);
    d.zsym = (float)(1 << (bits - 1));
    if (f->group > 0) {
        d.hdr = f->asym ? 4 : 2;
        d.stride = (size_t)d.hdr + (size_t)f->group * bits / 8;
        d.rowbytes = (size_t)(n / f->group) * d.stride;
    } else {
        d.hdr = f->asym ? 8 : 4;
        d.stride = 0;
        d.rowbytes = (size_t)d.hdr + ((size_t)n * bits + 7) / 8;
    }
    return d;
}

/* 16 codes from the nbytes (<= 16) bytes at p as floats; end: the row's end. A plain load
 * where 16 bytes stay inside the row (the extra bytes are never selected), a masked one only
 * at the row's end (measured: a masked load per chunk costs 20x). */
AI __m512 int_codes(const int_dec *d, const uint8_t *p, int nbytes, const uint8_t *end)
{
    const __m128i raw = end - p >= 16 ? _mm_loadu_si128((const __m128i *)p)
                                      : _mm_maskz_loadu_epi8((__mmask16)((1u << nbytes) - 1), p);
    const __m512i v = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(raw), d->shuf);
    return _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srlv_epi32(v, d->shift), d->mask));
}

/* 8 bytes of two nibbles each → 16 codes (low nibble first) as int32 lanes. */
AI __m512i nibbles16(const uint8_t *p)
{
    const __m128i w = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)p));
    const __m128i m = _mm_set1_epi16(15);
    const __m128i b = _mm_or_si128(_mm_and_si128(w, m), _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(w, 4), m), 8));
    return _mm512_cvtepu8_epi32(b);
}

/* 16 FP8 codes (nbytes readable) as f16-scaled floats (E4M3: value · 2^-8). */
AI __m512 fp8_16(const uint8_t *p, int nbytes, const int e5m2)
{
    const __m128i raw = nbytes >= 16 ? _mm_loadu_si128((const __m128i *)p)
                                     : _mm_maskz_loadu_epi8((__mmask16)((1u << nbytes) - 1), p);
    const __m256i w = _mm256_cvtepu8_epi16(raw);
    __m256i h;
    if (e5m2) {
        h = _mm256_slli_epi16(w, 8);
    } else {
        const __m256i mag = _mm256_and_si256(w, _mm256_set1_epi16(0x7f));
        h = _mm256_or_si256(_mm256_slli_epi16(mag, 7), _mm256_slli_epi16(_mm256_and_si256(w, _mm256_set1_epi16(0x80)), 8));
        h = _mm256_mask_mov_epi16(h, _mm256_cmpeq_epi16_mask(mag, _mm256_set1_epi16(0x7f)), _mm256_set1_epi16(0x7e00));
    }
    return _mm512_cvtph_ps(h);
}

AI float f32_bits(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* 2^(e-127) as the reference's ldexpf gives it (e = 0: the subnormal 2^-127; 255: NaN). */
AI float e8m0(uint8_t e)
{
    return e == 255 ? NAN : e == 0 ? f32_bits(0x00400000u) : f32_bits((uint32_t)e << 23);
}

/* The scale (and zero point) of segment s of row p, and where its codes start. Segments: INT
 * groups (or the whole row), NF4 / MXFP4 blocks, the FP8 row. */
typedef struct {
    const uint8_t *codes, *end; /* end: INT only, the end of the row */
    __m512 d, z;
} seg;

AI seg seg_get(const qb_fmt_params *f, const int_dec *id, const uint8_t *p, int n, int s, const int K)
{
    seg r;
    r.z = _mm512_setzero_ps();
    r.end = NULL;
    switch (K) {
    case K_INT: {
        r.end = p + id->rowbytes;
        if (f->group > 0) {
            const uint8_t *h = p + (size_t)s * id->stride;
            r.d = _mm512_set1_ps(_cvtsh_ss(rd16(h)));
            r.z = _mm512_set1_ps(f->asym ? _cvtsh_ss(rd16(h + 2)) : id->zsym);
            r.codes = h + id->hdr;
        } else {
            r.d = _mm512_set1_ps(rdf32(p));
            r.z = _mm512_set1_ps(f->asym ? rdf32(p + 4) : id->zsym);
            r.codes = p + id->hdr;
        }
        break;
    }
    case K_NF4:
        if (f->dq) {
            const int nb = n / 64, ng = (nb + 255) / 256;
            const uint8_t *b = p + 4 * (size_t)(1 + ng) + (size_t)s * 33;
            const float a = rdf32(p) + rdf32(p + 4 + 4 * (size_t)(s / 256)) * (float)(int8_t)b[0];
            r.d = _mm512_set1_ps(a > 0.0f ? a : 0.0f);
            r.codes = b + 1;
        } else {
            r.d = _mm512_set1_ps(rdf32(p + (size_t)s * 36));
            r.codes = p + (size_t)s * 36 + 4;
        }
        break;
    case K_E4M3: r.d = _mm512_set1_ps(rdf32(p) * 256.0f); r.codes = p + 4; break;
    case K_E5M2: r.d = _mm512_set1_ps(rdf32(p)); r.codes = p + 4; break;
    default: /* MXFP4 */
        r.d = _mm512_set1_ps(e8m0(p[(size_t)s * 17]));
        r.codes = p + (size_t)s * 17 + 1;
        break;
    }
    return r;
}

/* Weights k*16 .. k*16+15 of a segment (rem of them valid when rem < 16). */
AI __m512 decode16(const qb_fmt_params *f, const int_dec *id, const seg *sg, int k, int rem, const int K)
{
    switch (K) {
    case K_INT: {
        const int b = f->bits;
        const int nbytes = rem >= 16 ? 2 * b : (rem * b + 7) / 8;
        return _mm512_mul_ps(sg->d, _mm512_sub_ps(int_codes(id, sg->codes + (size_t)k * 2 * b, nbytes, sg->end), sg->z));
    }
    case K_NF4: {
        const __m512 lv = _mm512_loadu_ps(qb_nf4_levels);
        return _mm512_mul_ps(_mm512_permutexvar_ps(nibbles16(sg->codes + 8 * k), lv), sg->d);
    }
    case K_E4M3:
    case K_E5M2: return _mm512_mul_ps(fp8_16(sg->codes + 16 * k, rem >= 16 ? 16 : rem, K == K_E5M2), sg->d);
    default: { /* MXFP4 */
        const __m512 tab = _mm512_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f, -0.0f, -0.5f, -1.0f, -1.5f, -2.0f,
                                          -3.0f, -4.0f, -6.0f);
        const __m128i q = _mm_loadu_si128((const __m128i *)sg->codes);
        const __m128i c = k == 0 ? _mm_and_si128(q, _mm_set1_epi8(15)) : _mm_and_si128(_mm_srli_epi16(q, 4), _mm_set1_epi8(15));
        return _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_cvtepu8_epi32(c), tab), sg->d);
    }
    }
}

/* Elements per segment and segments per row. */
AI int seg_len(const qb_fmt_params *f, int n, const int K)
{
    switch (K) {
    case K_INT: return f->group > 0 ? f->group : n;
    case K_NF4: return 64;
    case K_MXFP4: return 32;
    default: return n;
    }
}

AI void tile_body(const qb_fmt_params *f, int n, const uint8_t *w, size_t wst, const float *x, size_t ldx, float *y,
                  size_t ldy, const int NR, const int NC, const int K)
{
    __m512 acc[4][4];
    #pragma GCC unroll 4
    for (int r = 0; r < NR; r++)
        #pragma GCC unroll 4
        for (int c = 0; c < NC; c++) acc[r][c] = _mm512_setzero_ps();
    int_dec id;
    if (K == K_INT) id = int_dec_make(f, n);
    const int len = seg_len(f, n, K), nseg = n / len;
    for (int s = 0; s < nseg; s++) {
        seg sg[4];
        #pragma GCC unroll 4
        for (int r = 0; r < NR; r++) sg[r] = seg_get(f, &id, w + r * wst, n, s, K);
        const float *xs = x + (size_t)s * len;
        for (int e = 0; e < len; e += 16) {
            const int rem = len - e;
            __m512 xv[4];
            if (rem >= 16) {
                #pragma GCC unroll 4
                for (int c = 0; c < NC; c++) xv[c] = _mm512_loadu_ps(xs + c * ldx + e);
            } else {
                #pragma GCC unroll 4
                for (int c = 0; c < NC; c++) xv[c] = _mm512_maskz_loadu_ps((__mmask16)((1u << rem) - 1), xs + c * ldx + e);
            }
            #pragma GCC unroll 4
            for (int r = 0; r < NR; r++) {
                const __m512 wv = decode16(f, &id, &sg[r], e / 16, rem, K);
                #pragma GCC unroll 4
                for (int c = 0; c < NC; c++) acc[r][c] = _mm512_fmadd_ps(wv, xv[c], acc[r][c]);
            }
        }
    }
    #pragma GCC unroll 4
    for (int r = 0; r < NR; r++)
        #pragma GCC unroll 4
        for (int c = 0; c < NC; c++) y[c * ldy + r] = _mm512_reduce_add_ps(acc[r][c]);
}

#define TILE_CASES(K)                                                                                  \
    switch ((nr - 1) * 4 + nc - 1) {                                                                    \
    case 0: tile_body(f, n, w, wst, x, ldx, y, ldy, 1, 1, K); break;                                  \
    case 1: tile_body(f, n, w, wst, x, ldx, y, ldy, 1, 2, K); break;                                  \
    case 2: tile_body(f, n, w, wst, x, ldx, y, ldy, 1, 3, K); break;                                  \
    case 3: tile_body(f, n, w, wst, x, ldx, y, ldy, 1, 4, K); break;                                  \
    case 4: tile_body(f, n, w, wst, x, ldx, y, ldy, 2, 1, K); break;                                  \
    case 5: tile_body(f, n, w, wst, x, ldx, y, ldy, 2, 2, K); break;                                  \
    case 6: tile_body(f, n, w, wst, x, ldx, y, ldy, 2, 3, K); break;                                  \
    case 7: tile_body(f, n, w, wst, x, ldx, y, ldy, 2, 4, K); break;                                  \
    case 8: tile_body(f, n, w, wst, x, ldx, y, ldy, 3, 1, K); break;                                  \
    case 9: tile_body(f, n, w, wst, x, ldx, y, ldy, 3, 2, K); break;                                  \
    case 10: tile_body(f, n, w, wst, x, ldx, y, ldy, 3, 3, K); break;                                 \
    case 11: tile_body(f, n, w, wst, x, ldx, y, ldy, 3, 4, K); break;                                 \
    case 12: tile_body(f, n, w, wst, x, ldx, y, ldy, 4, 1, K); break;                                 \
    case 13: tile_body(f, n, w, wst, x, ldx, y, ldy, 4, 2, K); break;                                 \
    case 14: tile_body(f, n, w, wst, x, ldx, y, ldy, 4, 3, K); break;                                 \
    default: tile_body(f, n, w, wst, x, ldx, y, ldy, 4, 4, K); break;                                 \
    }

/* One entry per format (fmt.h) keeps each instantiation set small enough to compile quickly. */
void qb_fmt_tile_int_avx512(const qb_fmt_params *f, int n, const void *w, size_t wst, int nr, const float *x, size_t ldx, int nc, float *y, size_t ldy) { TILE_CASES(K_INT) }
void qb_fmt_tile_nf4_avx512(const qb_fmt_params *f, int n, const void *w, size_t wst, int nr, const float *x, size_t ldx, int nc, float *y, size_t ldy) { TILE_CASES(K_NF4) }
void qb_fmt_tile_e4m3_avx512(const qb_fmt_params *f, int n, const void *w, size_t wst, int nr, const float *x, size_t ldx, int nc, float *y, size_t ldy) { TILE_CASES(K_E4M3) }
void qb_fmt_tile_e5m2_avx512(const qb_fmt_params *f, int n, const void *w, size_t wst, int nr, const float *x, size_t ldx, int nc, float *y, size_t ldy) { TILE_CASES(K_E5M2) }
void qb_fmt_tile_mxfp4_avx512(const qb_fmt_params *f, int n, const void *w, size_t wst, int nr, const float *x, size_t ldx, int nc, float *y, size_t ldy) { TILE_CASES(K_MXFP4) }
