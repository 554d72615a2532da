/* tq_iq3_simd.h — AVX2 decoders of TQ1_0 / TQ2_0 / IQ3_XXS / IQ3_S blocks (layouts in
 * blocks.h) into 32-byte registers in element order, shared by tq_iq3_avx2.c and
 * tq_iq3_avx512.c (include only from files built with AVX2 or wider flags). Ternary blocks
 * decode to the codes 0..2 (value = code - 1); IQ3 sub-blocks to unsigned grid magnitudes plus
 * 32 sign bits (tqi_bitmask turns them into a byte mask). */
#ifndef QB_TQ_IQ3_SIMD_H
#define QB_TQ_IQ3_SIMD_H

#include "blocks.h"
#include "unaligned.h"

#include <immintrin.h>

#define TQI_AI static inline __attribute__((always_inline))

TQI_AI __m256i tqi_load(const uint8_t *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* Byte e = 0xFF where bit e of bits is set, else 0. */
TQI_AI __m256i tqi_bitmask(uint32_t bits)
{
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits),
                                               _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL, 0x0303030303030303LL));
    const __m256i sel = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    return _mm256_cmpeq_epi8(_mm256_and_si256(spread, sel), sel);
}

/* ---- ternary ---------------------------------------------------------------------------- */

/* TQ2_0: the codes of elements 128h + 32l .. +31 of the block at qs. */
TQI_AI __m256i tq2_codes(const uint8_t *qs, int h, int l)
{
    return _mm256_and_si256(_mm256_srli_epi16(tqi_load(qs + 32 * h), 2 * l), _mm256_set1_epi8(3));
}

/* Bytes times 3 modulo 256. */
TQI_AI __m256i tqi_x3(__m256i q) { return _mm256_add_epi8(q, _mm256_add_epi8(q, q)); }
TQI_AI __m128i tqi_x3_128(__m128i q) { return _mm_add_epi8(q, _mm_add_epi8(q, q)); }

/* The leading trit of each byte, (b * 3) >> 8, with 16-bit high multiplies: the even byte
 * moved to the top of its word, the odd byte masked in place. */
TQI_AI __m256i tqi_top_trit(__m256i q)
{
    const __m256i three = _mm256_set1_epi16(3);
    const __m256i ev = _mm256_mulhi_epu16(_mm256_slli_epi16(q, 8), three);
    const __m256i od = _mm256_mulhi_epu16(_mm256_and_si256(q, _mm256_set1_epi16((short)0xff00)), three);
    return _mm256_or_si256(ev, _mm256_slli_epi16(od, 8));
}

/* TQ1_0: the bytes of the whole block scaled so that trit k leads (b * 3^k modulo 256), in
 * element order: p[i] covers elements 32i .. 32i + 31 (tqi_top_trit gives the codes). */
TQI_AI void tq1_scaled(const uint8_t *blk, __m256i p[8])
{
    __m256i q = tqi_load(blk); /* qs[0..31]: trit k is elements 32k + m */
    p[0] = q;
    _Pragma("GCC unroll 4") for (int k = 1; k < 5; k++) p[k] = q = tqi_x3(q);
    /* qs[32..47]: trit k is elements 160 + 16k + m, two trits per register */
    const __m256i u = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(blk + 32)));
    const __m256i u3 = tqi_x3(u), u9 = tqi_x3(u3), u27 = tqi_x3(u9), u81 = tqi_x3(u27);
    p[5] = _mm256_blend_epi32(u, u3, 0xF0);
    p[6] = _mm256_blend_epi32(u9, u27, 0xF0);
    /* qh[0..3]: trit k of qh[j] is element 240 + 4k + j */
    const __m128i w = _mm_set1_epi32((int)rd32(blk + 48)), w3 = tqi_x3_128(w), w9 = tqi_x3_128(w3),
                  w27 = tqi_x3_128(w9);
    const __m128i h = _mm_blend_epi32(_mm_blend_epi32(w, w3, 0x2), _mm_blend_epi32(w9, w27, 0x8), 0xC);
    p[7] = _mm256_inserti128_si256(u81, h, 1);
}

/* TQ1_0: the codes of the whole block, v[i] = elements 32i .. 32i + 31. */
TQI_AI void tq1_codes(const uint8_t *blk, __m256i v[8])
{
    tq1_scaled(blk, v);
    _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) v[i] = tqi_top_trit(v[i]);
}

/* ---- 3-bit i-quants ------------------------------------------------------------------------ */

/* IQ3_XXS's sign bytes from their seven stored bits (the eighth: their parity), as bits
 * (tqi_sign8) and as eight bytes of ±1 for vpsignb (tqi_sign64), computed at compile time. */
#define TQI_PAR(i) (((i) ^ (i) >> 1 ^ (i) >> 2 ^ (i) >> 3 ^ (i) >> 4 ^ (i) >> 5 ^ (i) >> 6) & 1)
#define TQI_S8(i) ((i) | TQI_PAR(i) << 7)
#define TQI_B(i, j) ((uint64_t)((TQI_S8(i) >> (j) & 1) ? 0xFF : 0x01) << (8 * (j)))
#define TQI_S64(i) (TQI_B(i, 0) | TQI_B(i, 1) | TQI_B(i, 2) | TQI_B(i, 3) | TQI_B(i, 4) | TQI_B(i, 5) | TQI_B(i, 6) | TQI_B(i, 7))
#define TQI_R4(M, i) M(i), M(i + 1), M(i + 2), M(i + 3)
#define TQI_R16(M, i) TQI_R4(M, i), TQI_R4(M, i + 4), TQI_R4(M, i + 8), TQI_R4(M, i + 12)
#define TQI_R128(M) TQI_R16(M, 0), TQI_R16(M, 16), TQI_R16(M, 32), TQI_R16(M, 48), TQI_R16(M, 64), TQI_R16(M, 80), \
                    TQI_R16(M, 96), TQI_R16(M, 112)
static const uint8_t tqi_sign8[128] = {TQI_R128(TQI_S8)};
static const uint64_t tqi_sign64[128] = {TQI_R128(TQI_S64)};

/* IQ3 sub-block s of either type (xxs: IQ3_XXS, else IQ3_S). */
#define IQ3_SUB(xxs, blk, s, signs, scale) ((xxs) ? iq3xxs_sub(blk, s, signs, scale) : iq3s_sub(blk, s, signs, scale))

/* IQ3_XXS sub-block s of the block at blk: magnitudes, sign bits (bit e: element e is
 * negative), scale 2 ls + 1. */
TQI_AI __m256i iq3xxs_sub(const uint8_t *blk, int s, uint32_t *signs, int *scale)
{
    const uint8_t *q = blk + 2 + 8 * s;
    const uint32_t aux = rd32(blk + 2 + 64 + 4 * s);
    *signs = (uint32_t)tqi_sign8[aux & 127] | (uint32_t)tqi_sign8[aux >> 7 & 127] << 8 |
             (uint32_t)tqi_sign8[aux >> 14 & 127] << 16 | (uint32_t)tqi_sign8[aux >> 21 & 127] << 24;
    *scale = (int)(2 * (aux >> 28) + 1);
    const uint32_t *g = qb_iq3xxs_grid;
    return _mm256_setr_epi32((int)g[q[0]], (int)g[q[1]], (int)g[q[2]], (int)g[q[3]], (int)g[q[4]], (int)g[q[5]],
                             (int)g[q[6]], (int)g[q[7]]);
}

/* The ±1 bytes of IQ3_XXS sub-block s's signs (for vpsignb). */
TQI_AI __m256i iq3xxs_sign_bytes(const uint8_t *blk, int s)
{
    const uint32_t aux = rd32(blk + 2 + 64 + 4 * s);
    return _mm256_setr_epi64x((long long)tqi_sign64[aux & 127], (long long)tqi_sign64[aux >> 7 & 127],
                              (long long)tqi_sign64[aux >> 14 & 127], (long long)tqi_sign64[aux >> 21 & 127]);
}

/* IQ3_S sub-block s of the block at blk: magnitudes, sign bits, scale 2 ls + 1. */
TQI_AI __m256i iq3s_sub(const uint8_t *blk, int s, uint32_t *signs, int *scale)
{
    const qb_block_iq3_s *x = (const qb_block_iq3_s *)blk;
    const uint8_t *q = x->qs + 8 * s;
    const uint32_t h = x->qh[s];
    *signs = rd32(x->signs + 4 * s);
    *scale = 1 + 2 * ((x->scales[s / 2] >> (4 * (s % 2))) & 15);
    const uint32_t *g = qb_iq3s_grid;
#define IQ3S_G(k) (int)g[q[k] | ((h >> (k)) & 1) << 8]
    return _mm256_setr_epi32(IQ3S_G(0), IQ3S_G(1), IQ3S_G(2), IQ3S_G(3), IQ3S_G(4), IQ3S_G(5), IQ3S_G(6), IQ3S_G(7));
#undef IQ3S_G
}

#endif
