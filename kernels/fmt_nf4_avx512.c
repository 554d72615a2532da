/* fmt_nf4_avx512.c — AVX-512 quantization and dequantization of NF4 rows (layout and spec:
 * fmt_nf4_ref.c), the reference's bytes and bits.
 *
 * A block of 64 is four registers. Its absmax is a lane maximum of magnitudes (order does not
 * matter: no NaN enters, no negative zero exists among magnitudes); codes come from the
 * reference's own branch-free search over the 15 thresholds, its four steps done with
 * one-register table look-ups (NaN → the zero level, code 7), and pairs of codes are packed
 * into bytes by a multiply-add. The nf4-dq row statistics (the mean of the block absmax values
 * summed in double in block order, the second-level scales, each block's absmax code) are the
 * reference's scalar steps. Dequantizing looks the 16 levels up by code and multiplies by the
 * block's absmax, the reference's one product. */
#include "fmt_nf4.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

/* max ignoring a NaN in b, as the reference */
static inline float max_f(float a, float b) { return b > a ? b : a; }

AI float block_absmax(const float *x)
{
    __m512 m = _mm512_setzero_ps();
    for (int k = 0; k < 4; k++) m = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + 16 * k)), m);
    return _mm512_reduce_max_ps(m);
}

/* qb_nf4_code of 16 values. */
AI __m512i codes16(__m512 v, __m512 mid)
{
    const __m512i four = _mm512_set1_epi32(4), two = _mm512_set1_epi32(2), one = _mm512_set1_epi32(1);
    __m512i c = _mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(v, _mm512_permutexvar_ps(_mm512_set1_epi32(7), mid), _CMP_GT_OQ),
                                       _mm512_set1_epi32(8));
    c = _mm512_mask_add_epi32(c, _mm512_cmp_ps_mask(v, _mm512_permutexvar_ps(_mm512_add_epi32(c, _mm512_set1_epi32(3)), mid), _CMP_GT_OQ), c, four);
    c = _mm512_mask_add_epi32(c, _mm512_cmp_ps_mask(v, _mm512_permutexvar_ps(_mm512_add_epi32(c, one), mid), _CMP_GT_OQ), c, two);
    c = _mm512_mask_add_epi32(c, _mm512_cmp_ps_mask(v, _mm512_permutexvar_ps(c, mid), _CMP_GT_OQ), c, one);
    return _mm512_mask_mov_epi32(c, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_set1_epi32(7));
}

static void put_block(const float *x, float a, uint8_t qs[32], __m512 mid)
{
    if (!(a > 0.0f) || isinf(a)) {
        memset(qs, 0x77, 32); /* the zero level */
        return;
    }
    const __m512 inv = _mm512_set1_ps(1.0f / a);
    for (int k = 0; k < 4; k++) { /* element 2i in the low nibble of byte i */
        const __m128i b = _mm512_cvtepi32_epi8(codes16(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * k), inv), mid));
        const __m128i w = _mm_maddubs_epi16(b, _mm_set1_epi16(0x1001));
        _mm_storel_epi64((__m128i *)(qs + 8 * k), _mm_packus_epi16(w, w));
    }
}

static __m512 thresholds(void)
{
    float t[16];
    memcpy(t, qb_nf4_thresholds, sizeof qb_nf4_thresholds);
    t[15] = INFINITY; /* never indexed */
    return _mm512_loadu_ps(t);
}

/* Contract: qb_quant_row_nf4_ref's (fmt.h), the same bytes. */
void qb_quant_row_nf4_avx512(bool dq, const float *x, void *dst, int64_t n)
{
    const __m512 mid = thresholds();
    const int64_t nb = n / QB_NF4_BLOCK;
    if (!dq) {
        qb_nf4_block *blocks = dst;
        for (int64_t j = 0; j < nb; j++) {
            qb_nf4_block b;
            b.absmax = block_absmax(x + j * QB_NF4_BLOCK);
            put_block(x + j * QB_NF4_BLOCK, b.absmax, b.qs, mid);
            memcpy(&blocks[j], &b, sizeof b);
        }
        return;
    }
    const int64_t ng = (nb + QB_NF4_DQ_GROUP - 1) / QB_NF4_DQ_GROUP;
    uint8_t *out = dst;
    double sum = 0;
    for (int64_t j = 0; j < nb; j++) sum += block_absmax(x + j * QB_NF4_BLOCK);
    const float mean = nb > 0 ? (float)(sum / (double)nb) : 0.0f;
    memcpy(out, &mean, sizeof mean);
    uint8_t *s2p = out + sizeof(float);
    qb_nf4dq_block *blocks = (qb_nf4dq_block *)(void *)(s2p + sizeof(float) * (size_t)ng);
    for (int64_t k = 0; k < ng; k++) {
        const int64_t j0 = k * QB_NF4_DQ_GROUP, j1 = j0 + QB_NF4_DQ_GROUP < nb ? j0 + QB_NF4_DQ_GROUP : nb;
        float dev = 0.0f;
        for (int64_t j = j0; j < j1; j++) dev = max_f(dev, fabsf(block_absmax(x + j * QB_NF4_BLOCK) - mean));
        const float s2 = dev / 127.0f;
        memcpy(s2p + sizeof(float) * (size_t)k, &s2, sizeof s2);
        for (int64_t j = j0; j < j1; j++) {
            const float *xb = x + j * QB_NF4_BLOCK;
            float t = s2 > 0.0f ? rintf((block_absmax(xb) - mean) / s2) : 0.0f;
            if (!(t >= -127.0f)) t = -127.0f;
            if (t > 127.0f) t = 127.0f;
            qb_nf4dq_block b;
            b.qa = (int8_t)t;
            put_block(xb, mean + s2 * (float)b.qa, b.qs, mid);
            memcpy(&blocks[j], &b, sizeof b);
        }
    }
}

/* 64 elements: level[code] · a, codes in element order (2i low nibble, 2i + 1 high). */
AI void get_block(const uint8_t *qs, float a, float *y, __m512 levels)
{
    const __m512 va = _mm512_set1_ps(a);
    for (int h = 0; h < 2; h++) {
        const __m128i q = _mm_loadu_si128((const __m128i *)(qs + 16 * h));
        const __m128i lo = _mm_and_si128(q, _mm_set1_epi8(15)), hi = _mm_and_si128(_mm_srli_epi16(q, 4), _mm_set1_epi8(15));
        const __m512i e0 = _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi)), e1 = _mm512_cvtepu8_epi32(_mm_unpackhi_epi8(lo, hi));
        _mm512_storeu_ps(y + 32 * h, _mm512_mul_ps(_mm512_permutexvar_ps(e0, levels), va));
        _mm512_storeu_ps(y + 32 * h + 16, _mm512_mul_ps(_mm512_permutexvar_ps(e1, levels), va));
    }
}

/* Contract: qb_dequant_row_nf4_ref's (fmt.h), the same bits. */
void qb_dequant_row_nf4_avx512(bool dq, const void *src, float *y, int64_t n)
{
    const __m512 levels = _mm512_loadu_ps(qb_nf4_levels);
    const int64_t nb = n / QB_NF4_BLOCK;
    if (!dq) {
        const qb_nf4_block *blocks = src;
        for (int64_t j = 0; j < nb; j++) {
            float a;
            memcpy(&a, &blocks[j].absmax, sizeof a);
            get_block(blocks[j].qs, a, y + j * QB_NF4_BLOCK, levels);
        }
        return;
    }
    const uint8_t *in = src;
    const int64_t ng = (nb + QB_NF4_DQ_GROUP - 1) / QB_NF4_DQ_GROUP;
    float mean;
    memcpy(&mean, in, sizeof mean);
    const uint8_t *s2p = in + sizeof(float);
    const qb_nf4dq_block *blocks = (const qb_nf4dq_block *)(const void *)(s2p + sizeof(float) * (size_t)ng);
    for (int64_t j = 0; j < nb; j++) {
        float s2;
        memcpy(&s2, s2p + sizeof(float) * (size_t)(j / QB_NF4_DQ_GROUP), sizeof s2);
        const float a = mean + s2 * (float)blocks[j].qa;
        if (a > 0.0f)
            get_block(blocks[j].qs, a, y + j * QB_NF4_BLOCK, levels);
        else
            memset(y + j * QB_NF4_BLOCK, 0, QB_NF4_BLOCK * sizeof(float)); /* +0.0f bits */
    }
}
