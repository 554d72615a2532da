/* qdot_iq_block.h — generation bodies of IQ2_XS, IQ2_S and IQ1_M against Q8_K rows that
 * unpack a super-block's scales (and IQ2_XS's signs) once per block instead of once per
 * sub-block as qdot_iq_unpack.h does for IQ2_XXS and IQ1_S. Shared by qdot_iq_avx2.c and
 * qdot_iq_avx512.c (both run these 256-bit bodies; under AVX-512BW the IQ2 signs go through a
 * mask register and a masked subtract instead of vpsignb); included only by files built with
 * AVX2 (or AVX-512) flags. Needs AI, rd16, rd32, f16, Q8K_D, Q8K_QS, Q8K_BYTES and hsum8 from
 * the includer.
 *
 * Per super-block:
 *   - the 16 odd half-sub-block scales 2·ls + 1 become one int16 register, first halves in the
 *     low 128-bit lane and second halves in the high lane, so that one vpshufb per sub-block
 *     broadcasts both of its scales (pick_scale);
 *   - IQ2_XS's 7 stored sign bits get their eighth (the parity bit that makes the count of
 *     negative weights even) from a 16-entry nibble-parity table with vpshufb, 16 at a time.
 * Grid indices: the vector ports are the bottleneck and the scalar ones less so, and which
 * side should build the indices was measured per type on this AMD EPYC (Zen 5): IQ1_M (and
 * IQ2_S in the AVX-512 file) compute 16 indices at a time in int16 lanes and move them to
 * scalar registers four at a time as one 64-bit word (points_w); IQ2_XS (index = word & 511)
 * and IQ2_S in AVX2 compute them in scalar code. Either way the points are 8-byte loads put
 * together with vmovq / vpinsrq (one vpextrw per index, or reloading them from a stack
 * array, measured slower, as did vpgatherdq).
 * The integer part stays exact: u8 magnitudes (grid bytes ≤ 43, |8·g ± 1| ≤ 9) times signed
 * activations in vpmaddubsw (pair sums ≤ 2·43·127 fit int16), times the odd scales (≤ 31 or
 * ≤ 15) in vpmaddwd, summed in int32 per super-block; the spec is qdot_iq_ref.c. */
#ifndef QB_QDOT_IQ_BLOCK_H
#define QB_QDOT_IQ_BLOCK_H

#include "blocks.h"
#include "iq_grids.h"
#include "qb_types.h"
#include "qdot_iq_unpack.h"

#include <immintrin.h>

/* ---- signs: a register for vpsignb (AVX2) or a 32-bit mask of negative weights (AVX-512) */
#ifdef __AVX512BW__
typedef __mmask32 iqb_sign;
AI iqb_sign iqb_sign_bits(uint32_t bits) { return _cvtu32_mask32(bits); }
AI __m256i iqb_apply(__m256i y, iqb_sign s) { return _mm256_mask_sub_epi8(y, s, _mm256_setzero_si256(), y); }
/* acc + pair sums of a·b (int16 → int32): vpdpwssd with VNNI, else vpmaddwd + vpaddd. */
AI __m256i iqb_dp16(__m256i acc, __m256i a, __m256i b, const int vnni)
{
    if (vnni) {
        __asm__("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(a), "vm"(b));
        return acc;
    }
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
}
#else
typedef __m256i iqb_sign;
/* Bytes -1 where bit e of bits is set, else +1. */
AI iqb_sign iqb_sign_bits(uint32_t bits)
{
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits),
                                               _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL, 0x0303030303030303LL));
    const __m256i sel = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    return _mm256_or_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, sel), sel), _mm256_set1_epi8(1));
}
AI __m256i iqb_apply(__m256i y, iqb_sign s) { return _mm256_sign_epi8(y, s); }
AI __m256i iqb_dp16(__m256i acc, __m256i a, __m256i b, const int vnni)
{
    (void)vnni;
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
}
#endif

/* The odd scales of both halves of sub-block s from S (layout above) in the int16 lanes that
 * meet them after vpmaddubsw: lanes 0-7 the first half's, 8-15 the second's. */
AI __m256i pick_scale(__m256i S, int s) { return _mm256_shuffle_epi8(S, _mm256_set1_epi16((short)(0x0100 + 0x0202 * s))); }

/* IQ2_XS / IQ2_S: 8 bytes of two 4-bit scales each (low nibble: first half) as S. */
AI __m256i iq2_scales(const uint8_t *sc)
{
    const __m128i b = _mm_loadl_epi64((const __m128i *)sc), m = _mm_set1_epi8(15);
    const __m128i n = _mm_unpacklo_epi64(_mm_and_si128(b, m), _mm_and_si128(_mm_srli_epi16(b, 4), m));
    return _mm256_cvtepu8_epi16(_mm_or_si128(_mm_add_epi8(n, n), _mm_set1_epi8(1)));
}

/* IQ1_M: four words at sc, each four 3-bit scales in bits 0-11 (sub-block 2k: bits 0-2 and
 * 3-5, sub-block 2k + 1: bits 6-8 and 9-11), as S. Each field is moved to bits 13-15 with a
 * vpmullw by a power of two and shifted down. */
AI __m256i iq1m_scales(const uint8_t *sc)
{
    const __m256i w = _mm256_shuffle_epi8(_mm256_set1_epi64x((long long)(rd32(sc) | (uint64_t)rd32(sc + 4) << 32)),
                                          _mm256_setr_epi8(0, 1, 0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7,
                                                           0, 1, 0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7));
    const __m256i mul = _mm256_setr_epi16(1 << 13, 1 << 7, 1 << 13, 1 << 7, 1 << 13, 1 << 7, 1 << 13, 1 << 7,
                                          1 << 10, 1 << 4, 1 << 10, 1 << 4, 1 << 10, 1 << 4, 1 << 10, 1 << 4);
    const __m256i f = _mm256_srli_epi16(_mm256_mullo_epi16(w, mul), 13);
    return _mm256_or_si256(_mm256_add_epi16(f, f), _mm256_set1_epi16(1));
}

/* IQ2_XS: the 16 full sign bytes of 16 code words (9-bit index, 7 sign bits) at q, in the low
 * byte of each int16 lane. */
AI __m256i iq2xs_signs(const uint8_t *q)
{
    const __m256i v = _mm256_loadu_si256((const __m256i *)q);
    const __m256i s7 = _mm256_srli_epi16(v, 9);
    /* bits 0-3 of s7 ^ (s7 >> 4) have the parity of s7; 0x80 where it is odd */
    const __m256i par = _mm256_shuffle_epi8(_mm256_setr_epi8(0, -128, -128, 0, -128, 0, 0, -128, -128, 0, 0, -128, 0, -128, -128, 0,
                                                             0, -128, -128, 0, -128, 0, 0, -128, -128, 0, 0, -128, 0, -128, -128, 0),
                                            _mm256_xor_si256(s7, _mm256_srli_epi16(v, 13)));
    return _mm256_or_si256(s7, par);
}

/* Sign of sub-block k (0..3) of the four whose sign bytes (word lanes) are in f. */
AI iqb_sign iq2xs_sign(__m256i f, int k)
{
#ifdef __AVX512BW__
    const __m128i b = _mm256_cvtepi16_epi8(f);
    const uint64_t h = k < 2 ? (uint64_t)_mm_cvtsi128_si64(b) : (uint64_t)_mm_extract_epi64(b, 1);
    return _cvtu32_mask32((uint32_t)(h >> (32 * (k & 1))));
#else
    /* literal immediates in both arms: the sanitizer builds (-O1) do not unroll the caller's loop */
    const __m256i lane = k < 2 ? _mm256_permute4x64_epi64(f, 0x44) : _mm256_permute4x64_epi64(f, 0xEE);
    const __m256i spread = _mm256_shuffle_epi8(
        lane, (k & 1) ? _mm256_setr_epi8(8, 8, 8, 8, 8, 8, 8, 8, 10, 10, 10, 10, 10, 10, 10, 10, 12, 12, 12, 12, 12, 12, 12, 12, 14, 14, 14, 14, 14, 14, 14, 14)
                      : _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2, 4, 4, 4, 4, 4, 4, 4, 4, 6, 6, 6, 6, 6, 6, 6, 6));
    const __m256i sel = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    return _mm256_or_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, sel), sel), _mm256_set1_epi8(1));
#endif
}

/* IQ2_S: the 10-bit grid indices of groups 16h .. 16h + 15 in int16 lanes: qs bytes plus two
 * bits each of qh[4h .. 4h + 3], moved to bits 8-9 by vpmullw with 256, 64, 16, 4. (Used by
 * the AVX-512 file's 512-bit body; in the AVX2 one the scalar iq2_points measured faster.) */
AI __m256i iq2s_index(const uint8_t *p, int h)
{
    const __m128i qh = _mm_shuffle_epi8(_mm_cvtsi32_si128((int)rd32(p + 66 + 4 * h)),
                                        _mm_setr_epi8(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3));
    const __m256i hi = _mm256_and_si256(_mm256_mullo_epi16(_mm256_cvtepu8_epi16(qh), _mm256_set1_epi64x(0x0004001000400100LL)),
                                        _mm256_set1_epi16(0x300));
    return _mm256_or_si256(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(p + 2 + 16 * h))), hi);
}

/* IQ1_M: the 11-bit grid indices of groups 16h .. 16h + 15: qs bytes plus three bits each from
 * a nibble of qh[8h .. 8h + 7] (low nibble for even groups), moved by vpmullw with 256, 16. */
AI __m256i iq1m_index(const uint8_t *p, int h)
{
    const __m128i q = _mm_loadl_epi64((const __m128i *)(p + 32 + 8 * h));
    const __m256i hi = _mm256_and_si256(_mm256_mullo_epi16(_mm256_cvtepu8_epi16(_mm_unpacklo_epi8(q, q)), _mm256_set1_epi32(0x00100100)),
                                        _mm256_set1_epi16(0x700));
    return _mm256_or_si256(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(p + 16 * h))), hi);
}

/* The grid points of sub-block s from the index registers ix[2] (16 groups each): its four
 * indices leave the vector unit as one 64-bit word and are split with scalar shifts (cheaper
 * than one vpextrw each, and far cheaper in scalar ops than building them there). */
/* 64-bit lane i (0..3) of v: a literal immediate per case (at -O1 nothing unrolls the loop
 * that makes i a constant; at -O2 the switch folds away) */
AI uint64_t lane64(__m256i v, int i)
{
    switch (i & 3) {
    case 0: return (uint64_t)_mm256_extract_epi64(v, 0);
    case 1: return (uint64_t)_mm256_extract_epi64(v, 1);
    case 2: return (uint64_t)_mm256_extract_epi64(v, 2);
    default: return (uint64_t)_mm256_extract_epi64(v, 3);
    }
}

AI __m256i points_w(const uint64_t *grid, const __m256i ix[2], int s)
{
    const uint64_t a = lane64(ix[s / 4], s);
    return points4(grid, (int)(a & 0xffff), (int)(a >> 16 & 0xffff), (int)(a >> 32 & 0xffff), (int)(a >> 48));
}

/* IQ2_XS / IQ2_S sub-block s: the grid bytes (magnitudes) of its four groups. */
AI __m256i iq2_points(const int T, const uint8_t *p, int s)
{
    if (T == QB_TYPE_IQ2_S) {
        const uint8_t *qs = p + 2 + 4 * s;
        const unsigned h = p[66 + s];
        return points4(qb_iq2s_grid, qs[0] | (h << 8 & 0x300), qs[1] | (h << 6 & 0x300), qs[2] | (h << 4 & 0x300), qs[3] | (h << 2 & 0x300));
    }
    const uint8_t *q = p + 2 + 8 * s;
    return points4(qb_iq2xs_grid, rd16(q) & 511, rd16(q + 2) & 511, rd16(q + 4) & 511, rd16(q + 6) & 511);
}

/* IQ1_M sub-block s: weights 8·g ± 1 as magnitudes *u and themselves (the sign register). The
 * shift of group l is -1 where bit 3 (l even) or 7 (l odd) of qh[2s + l/2] is set. */
AI void iq1m_weights(const uint8_t *p, int s, const __m256i ix[2], __m256i *u, __m256i *sg)
{
    const __m256i g = points_w(qb_iq1s_grid, ix, s);
    const __m256i sel = _mm256_setr_epi64x(0x0808080808080808LL, (long long)0x8080808080808080ULL, 0x0808080808080808LL,
                                           (long long)0x8080808080808080ULL);
    const __m256i h = _mm256_shuffle_epi8(_mm256_set1_epi16((short)rd16(p + 32 + 2 * s)),
                                          _mm256_setr_epi64x(0, 0, 0x0101010101010101LL, 0x0101010101010101LL));
    const __m256i shift = _mm256_or_si256(_mm256_cmpeq_epi8(_mm256_and_si256(h, sel), sel), _mm256_set1_epi8(1));
    iq1_weights(g, shift, u, sg);
}

/* The dot products of one weight row with nc (1..4) Q8_K rows st bytes apart; vnni (AVX-512
 * tables only) fuses the scale step into vpdpwssd. */
AI void iqb_body(int n, const uint8_t *w, const uint8_t *xq, size_t st, const int nc, float *out, const int T, const int bs,
                 const int vnni)
{
    __m256 acc[4];
    #pragma GCC unroll 8
    for (int c = 0; c < nc; c++) acc[c] = _mm256_setzero_ps();
    for (int b = 0; b < n / 256; b++) {
        const uint8_t *p = w + (size_t)b * bs;
        const uint8_t *y[4];
        __m256i isum[4];
        #pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            y[c] = Q8K_QS(xq + c * st + (size_t)b * Q8K_BYTES);
            isum[c] = _mm256_setzero_si256();
        }
        __m256i S, f0 = _mm256_setzero_si256(), f1 = _mm256_setzero_si256(), ix[2] = {f0, f1};
        float d;
        if (T == QB_TYPE_IQ2_XS) {
            f0 = iq2xs_signs(p + 2);
            f1 = iq2xs_signs(p + 34);
            S = iq2_scales(p + 66);
            d = f16(rd16(p));
        } else if (T == QB_TYPE_IQ2_S) {
            S = iq2_scales(p + 74);
            d = f16(rd16(p));
        } else {
            ix[0] = iq1m_index(p, 0);
            ix[1] = iq1m_index(p, 1);
            S = iq1m_scales(p + 48);
            d = f16(qb_iq1m_scale_bits((const qb_block_iq1_m *)p));
        }
        #pragma GCC unroll 8
        for (int s = 0; s < 8; s++) {
            const __m256i sc = pick_scale(S, s);
            if (T == QB_TYPE_IQ1_M) {
                __m256i u, sg;
                iq1m_weights(p, s, ix, &u, &sg);
                #pragma GCC unroll 8
                for (int c = 0; c < nc; c++) {
                    const __m256i ys = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(y[c] + 32 * s)), sg);
                    isum[c] = iqb_dp16(isum[c], _mm256_maddubs_epi16(u, ys), sc, vnni);
                }
            } else {
                const __m256i u = iq2_points(T, p, s);
                const iqb_sign sg = T == QB_TYPE_IQ2_XS ? iq2xs_sign(s < 4 ? f0 : f1, s & 3) : iqb_sign_bits(rd32(p + 34 + 4 * s));
                #pragma GCC unroll 8
                for (int c = 0; c < nc; c++) {
                    const __m256i ys = iqb_apply(_mm256_loadu_si256((const __m256i *)(y[c] + 32 * s)), sg);
                    isum[c] = iqb_dp16(isum[c], _mm256_maddubs_epi16(u, ys), sc, vnni);
                }
            }
        }
        #pragma GCC unroll 8
        for (int c = 0; c < nc; c++)
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), _mm256_set1_ps(d * Q8K_D(xq + c * st + (size_t)b * Q8K_BYTES)), acc[c]);
    }
    #pragma GCC unroll 8
    for (int c = 0; c < nc; c++) out[c] = 0.125f * hsum8(acc[c]);
}

#endif
