/* fmt_minifloat_avx512.c — AVX-512 rows of the small float formats: FP8 E4M3 / E5M2 with a
 * row scale (spec: fmt_fp8_ref.c) and MXFP4 (spec: fmt_mxfp4_ref.c), the references' bytes
 * and bits.
 *
 * FP8: the scale and absmax as the reference (a lane maximum of magnitudes: order does not
 * matter without NaNs or negative zeros among them); each code from x / scale by the
 * reference's integer rounding of the f32 bits (normal range), rint(a·2^(bias−1+mbits)) (an
 * exact power-of-two product, subnormal range), saturation and the NaN code; decoding builds
 * the f32 bits of each code (m·2^(1−bias−mbits) below the normal range) and multiplies by the
 * scale, the reference's one product, without its per-row table of 256 ldexpf calls.
 * MXFP4: the shared exponent per block from the reference's frexpf; each E2M1 code is the
 * number of midpoints strictly below |v|, plus one at a tie with an odd midpoint (ties go to
 * the even code), the sign where the code is not zero; decoding looks the 16 values up and
 * multiplies by 2^(e−127), built from its bits. */
#include "fmt.h"
#include "blocks.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

/* max ignoring a NaN in b, as the references */
static inline float max_f(float a, float b) { return b > a ? b : a; }

AI __mmask16 tail(int64_t left) { return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1); }

/* ---- FP8 ------------------------------------------------------------------------------------ */

typedef struct {
    int mbits, bias, max_code;
    float max_val, min_normal;
} fp8_kind;

static const fp8_kind E4M3 = {3, 7, 0x7e, 448.0f, 0x1p-6f};
static const fp8_kind E5M2 = {2, 15, 0x7b, 57344.0f, 0x1p-14f};

/* encode (fmt_fp8_ref.c) of 16 values */
AI __m128i fp8_encode16(const fp8_kind *k, __m512 x)
{
    const __m512i u0 = _mm512_castps_si512(x);
    const __m512i sign = _mm512_and_si512(_mm512_srli_epi32(u0, 24), _mm512_set1_epi32(0x80));
    __m512i u = _mm512_and_si512(u0, _mm512_set1_epi32(0x7fffffff));
    const __m512 a = _mm512_castsi512_ps(u);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(u, _mm512_set1_epi32(0x7f800000));
    const __mmask16 big = _mm512_cmp_ps_mask(a, _mm512_set1_ps(k->max_val), _CMP_GE_OQ);
    const __mmask16 sub = _mm512_cmp_ps_mask(a, _mm512_set1_ps(k->min_normal), _CMP_LT_OQ);
    const int drop = 23 - k->mbits;
    const __m512i maxc = _mm512_set1_epi32(k->max_code);
    /* normal: round the mantissa to mbits bits, ties to even, then rebias */
    u = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32((1 << (drop - 1)) - 1),
                                             _mm512_and_si512(_mm512_srli_epi32(u, drop), _mm512_set1_epi32(1))));
    __m512i q = _mm512_sub_epi32(_mm512_srli_epi32(u, drop), _mm512_set1_epi32((127 - k->bias) << k->mbits));
    q = _mm512_min_epu32(q, maxc);
    /* subnormal: steps of 2^(1 - bias - mbits) */
    const __m512 steps = _mm512_roundscale_ps(_mm512_mul_ps(a, _mm512_set1_ps(ldexpf(1.0f, k->bias - 1 + k->mbits))),
                                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    q = _mm512_mask_mov_epi32(q, sub, _mm512_cvttps_epi32(steps));
    q = _mm512_mask_mov_epi32(q, big, maxc);
    q = _mm512_mask_mov_epi32(q, nan, _mm512_set1_epi32(0x7f));
    return _mm512_cvtepi32_epi8(_mm512_or_si512(q, sign));
}

/* decode (fmt_fp8_ref.c) of 16 codes */
AI __m512 fp8_decode16(const fp8_kind *k, __m512i c)
{
    const __m512i sign = _mm512_slli_epi32(_mm512_and_si512(c, _mm512_set1_epi32(0x80)), 24);
    const __m512i mag = _mm512_and_si512(c, _mm512_set1_epi32(0x7f));
    const __m512i e = _mm512_srli_epi32(mag, k->mbits), m = _mm512_and_si512(mag, _mm512_set1_epi32((1 << k->mbits) - 1));
    __m512i bits = _mm512_or_si512(_mm512_slli_epi32(_mm512_add_epi32(e, _mm512_set1_epi32(127 - k->bias)), 23),
                                   _mm512_slli_epi32(m, 23 - k->mbits));
    const __m512 subv = _mm512_mul_ps(_mm512_cvtepi32_ps(m), _mm512_set1_ps(ldexpf(1.0f, 1 - k->bias - k->mbits)));
    bits = _mm512_mask_mov_epi32(bits, _mm512_cmpeq_epi32_mask(e, _mm512_setzero_si512()), _mm512_castps_si512(subv));
    const __m512i qnan = _mm512_castps_si512(_mm512_set1_ps(NAN));
    if (k == &E4M3) {
        bits = _mm512_mask_mov_epi32(bits, _mm512_cmpeq_epi32_mask(mag, _mm512_set1_epi32(0x7f)), qnan);
    } else {
        const __mmask16 top = _mm512_cmpeq_epi32_mask(e, _mm512_set1_epi32(31));
        const __mmask16 hasm = _mm512_test_epi32_mask(m, m);
        bits = _mm512_mask_mov_epi32(bits, top & hasm, qnan);
        bits = _mm512_mask_mov_epi32(bits, top & (__mmask16)~hasm, _mm512_set1_epi32(0x7f800000));
    }
    return _mm512_castsi512_ps(_mm512_or_si512(bits, sign));
}

/* Contract: qb_quant_row_fp8_ref's (fmt.h), the same bytes. */
void qb_quant_row_fp8_avx512(bool e5m2, const float *x, void *dst, int64_t n, float absmax)
{
    const fp8_kind *k = e5m2 ? &E5M2 : &E4M3;
    uint8_t *out = dst;
    if (absmax < 0) {
        __m512 m = _mm512_setzero_ps();
        for (int64_t i = 0; i < n; i += 16)
            m = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(tail(n - i), x + i)), m); /* |x| > m ? |x| : m */
        absmax = _mm512_reduce_max_ps(m);
    }
    float scale = absmax / k->max_val;
    if (!isfinite(scale)) scale = 0.0f;
    memcpy(out, &scale, sizeof scale);
    out += sizeof scale;
    if (scale == 0.0f) {
        memset(out, 0, (size_t)n);
        return;
    }
    const __m512 vs = _mm512_set1_ps(scale);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail(n - i);
        _mm_mask_storeu_epi8(out + i, m, fp8_encode16(k, _mm512_div_ps(_mm512_maskz_loadu_ps(m, x + i), vs)));
    }
}

/* Contract: qb_dequant_row_fp8_ref's (fmt.h), the same bits. */
void qb_dequant_row_fp8_avx512(bool e5m2, const void *src, float *y, int64_t n)
{
    const fp8_kind *k = e5m2 ? &E5M2 : &E4M3;
    const uint8_t *in = src;
    float scale;
    memcpy(&scale, in, sizeof scale);
    in += sizeof scale;
    const __m512 vs = _mm512_set1_ps(scale);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail(n - i);
        const __m512i c = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, in + i));
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(fp8_decode16(k, c), vs));
    }
}

/* ---- MXFP4 ---------------------------------------------------------------------------------- */

typedef struct QB_PACKED {
    uint8_t e;      /* E8M0 shared scale: 2^(e - 127) */
    uint8_t qs[16]; /* 32 E2M1 codes */
} mxfp4_block;
_Static_assert(sizeof(mxfp4_block) == 17, "mxfp4 block is 17 bytes (fmt_mxfp4_ref.c)");

/* qb_e2m1_from_f32 of 16 values */
AI __m512i e2m1_codes16(__m512 v)
{
    static const float mid[7] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
    const __m512 a = _mm512_abs_ps(v);
    const __m512i one = _mm512_set1_epi32(1);
    __m512i c = _mm512_setzero_si512();
    for (int i = 0; i < 7; i++) {
        const __m512 t = _mm512_set1_ps(mid[i]);
        c = _mm512_mask_add_epi32(c, _mm512_cmp_ps_mask(a, t, _CMP_GT_OQ), c, one);
        if (i & 1) c = _mm512_mask_add_epi32(c, _mm512_cmp_ps_mask(a, t, _CMP_EQ_OQ), c, one); /* tie: the even code */
    }
    const __mmask16 neg = _mm512_movepi32_mask(_mm512_castps_si512(v)) & _mm512_test_epi32_mask(c, c);
    return _mm512_mask_or_epi32(c, neg, c, _mm512_set1_epi32(8));
}

/* Contract: qb_quant_row_mxfp4_ref's (fmt.h), the same bytes. */
void qb_quant_row_mxfp4_avx512(const float *x, void *dst, int64_t n)
{
    mxfp4_block *blocks = dst;
    for (int64_t j = 0; j < n / QB_MXFP4_BLOCK; j++) {
        const float *xb = x + j * QB_MXFP4_BLOCK;
        const __m512 v0 = _mm512_loadu_ps(xb), v1 = _mm512_loadu_ps(xb + 16);
        const float m = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_max_ps(_mm512_abs_ps(v1), _mm512_setzero_ps())));
        int X = -127;
        if (m > 0.0f && isfinite(m)) {
            int e2;
            frexpf(m, &e2); /* m = f · 2^e2, f in [0.5, 1): floor(log2 m) = e2 − 1 */
            X = e2 - 1 - 2;
            if (X < -127) X = -127;
            if (X > 127) X = 127;
        } else if (isinf(m)) {
            X = 127;
        }
        mxfp4_block b;
        b.e = (uint8_t)(X + 127);
        const __m512 inv = _mm512_set1_ps(ldexpf(1.0f, -X));
        const __m512i lo = e2m1_codes16(_mm512_mul_ps(v0, inv)), hi = e2m1_codes16(_mm512_mul_ps(v1, inv));
        _mm_storeu_si128((__m128i *)b.qs, _mm512_cvtepi32_epi8(_mm512_or_si512(lo, _mm512_slli_epi32(hi, 4))));
        memcpy(&blocks[j], &b, sizeof b);
    }
}

/* 2^(e − 127) from its bits (e = 0: the subnormal 2^-127), NaN for 255: ldexpf(1, e − 127). */
static inline float e8m0(uint8_t e)
{
    const uint32_t bits = e == 255 ? 0x7fc00000u : e == 0 ? 0x00400000u : (uint32_t)e << 23;
    float d;
    memcpy(&d, &bits, 4);
    return d;
}

/* Contract: qb_dequant_row_mxfp4_ref's (fmt.h), the same bits. */
void qb_dequant_row_mxfp4_avx512(const void *src, float *y, int64_t n)
{
    static const float values[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                     -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};
    const __m512 table = _mm512_loadu_ps(values);
    const uint8_t *in = src;
    for (int64_t j = 0; j < n / QB_MXFP4_BLOCK; j++, in += sizeof(mxfp4_block), y += QB_MXFP4_BLOCK) {
        const __m512 d = _mm512_set1_ps(e8m0(in[0]));
        const __m128i q = _mm_loadu_si128((const __m128i *)(in + 1));
        const __m512i lo = _mm512_cvtepu8_epi32(_mm_and_si128(q, _mm_set1_epi8(15)));
        const __m512i hi = _mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(q, 4), _mm_set1_epi8(15)));
        _mm512_storeu_ps(y, _mm512_mul_ps(_mm512_permutexvar_ps(lo, table), d));
        _mm512_storeu_ps(y + 16, _mm512_mul_ps(_mm512_permutexvar_ps(hi, table), d));
    }
}
