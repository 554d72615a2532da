/* qdot_k_avx512.c — AVX-512 dot products of the 256-element super-block formats (Q2_K … Q6_K,
 * IQ4_XS) with Q8_K activation rows, with and without AVX512-VNNI; the 32-element formats and
 * the activation quantizers are in qdot_avx512.c (its top comment explains the layout tricks),
 * the shared helpers in qdot_avx512.h. Spec: qdot_ref.c. */
#include "qdot_avx512.h"

/* ---- 256-element super-blocks against Q8_K -------------------------------------------- */

#define Q8K_D(y) rdf32(y)
#define Q8K_QS(y) ((const uint8_t *)(y) + 4)
#define Q8K_BSUMS(y) ((const uint8_t *)(y) + 260)

/* Word i of a 16-word vector v broadcast over lanes: for a register of 64 activations in
 * sub-blocks of 16 (after vpmaddubsw: 8 words each), word lane j gets scale s0 + j/8. */
AI __m512i scales16x4(__m512i v, int s0)
{
    const __m512i idx = _mm512_add_epi16(_mm512_set1_epi16((short)s0),
                                         _mm512_srli_epi16(_mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16,
                                                                            15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), 3));
    return _mm512_permutexvar_epi16(idx, v);
}

/* For sub-blocks of 32 (Q4_K, Q5_K, IQ4_XS): word lane j gets scale s0 + j/16. */
AI __m512i scales32x2(__m512i v, int s0)
{
    const __m512i idx = _mm512_add_epi16(_mm512_set1_epi16((short)s0),
                                         _mm512_srli_epi16(_mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16,
                                                                            15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), 4));
    return _mm512_permutexvar_epi16(idx, v);
}

AI __m512i bcast32(const uint8_t *p) { return _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)p)); }

AI __m512i load64(const uint8_t *p) { return _mm512_loadu_si512(p); }

AI void final_k(__m512 *acc, __m512i isum, float d)
{
    *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(d), *acc);
}

AI void store_k(const int nc, float *out, const __m512 *acc, const __m256 *accm, const int mins)
{
    #pragma GCC unroll 8
    for (int c = 0; c < nc; c++) out[c] = _mm512_reduce_add_ps(acc[c]) + (mins ? hsum256(accm[c]) : 0.0f);
}

/* Q4_K and Q5_K (five = 1): eight 6-bit (scale, min) pairs; mins through bsums. */
AI void k45_body(int n, const uint8_t *w, const uint8_t *xq, size_t st, const int nc, float *out, const int five,
                 const int vnni)
{
    const int bs = five ? 176 : 144, qs0 = five ? 48 : 16;
    __m512 acc[4];
    __m256 accm[4];
    #pragma GCC unroll 8
    for (int c = 0; c < nc; c++) {
        acc[c] = _mm512_setzero_ps();
        accm[c] = _mm256_setzero_ps();
    }
    const __m512i sh = _mm512_set_epi64(W4, W4, W4, W4, 0, 0, 0, 0), m4 = _mm512_set1_epi8(15);
    for (int b = 0; b < n / 256; b++) {
        const uint8_t *x = w + (size_t)b * bs;
        const float d = f16(rd16(x)), dmin = f16(rd16(x + 2));
        /* 12 bytes -> scales (bytes 0-7) and mins (bytes 8-15) */
        const uint32_t a0 = rd32(x + 4), a1 = rd32(x + 8), a2 = rd32(x + 12);
        const uint32_t sc_lo = a0 & 0x3f3f3f3f, sc_hi = (a2 & 0x0f0f0f0f) | ((a0 >> 2) & 0x30303030);
        const uint32_t mn_lo = a1 & 0x3f3f3f3f, mn_hi = ((a2 >> 4) & 0x0f0f0f0f) | ((a1 >> 2) & 0x30303030);
        const __m256i sm = _mm256_cvtepu8_epi16(_mm_setr_epi32((int)sc_lo, (int)sc_hi, (int)mn_lo, (int)mn_hi));
        const __m512i scw = _mm512_castsi256_si512(sm);
        /* mins duplicated per pair of bsums: words 2s, 2s+1 = mn[s] */
        const __m256i mn2 = _mm256_permutexvar_epi16(_mm256_setr_epi16(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15), sm);
        __m512i hq = _mm512_setzero_si512();
        if (five) hq = bcast32(x + 16);
        __m512i isum[4][2];
        #pragma GCC unroll 8
        for (int c = 0; c < nc; c++) isum[c][0] = isum[c][1] = _mm512_setzero_si512();
        #pragma GCC unroll 8
        for (int j = 0; j < 4; j++) { /* 64 elements: sub-blocks 2j (low nibbles), 2j+1 (high) */
            __m512i q = _mm512_and_si512(_mm512_srlv_epi16(bcast32(x + qs0 + 32 * j), sh), m4);
            if (five) {
                const __m512i bit = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << 2 * j)), _mm256_set1_epi8((char)(1 << (2 * j + 1))), 1);
                q = _mm512_mask_add_epi8(q, _mm512_test_epi8_mask(hq, bit), q, _mm512_set1_epi8(16));
            }
            const __m512i sc = scales32x2(scw, 2 * j);
            #pragma GCC unroll 8
            for (int c = 0; c < nc; c++) {
                const uint8_t *y = xq + c * st + (size_t)b * 292;
                const __m512i p = _mm512_maddubs_epi16(q, load64(Q8K_QS(y) + 64 * j));
                isum[c][j & 1] = dp_s16(isum[c][j & 1], p, sc, vnni);
            }
        }
        #pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            const uint8_t *y = xq + c * st + (size_t)b * 292;
            const float yd = Q8K_D(y);
            final_k(&acc[c], _mm512_add_epi32(isum[c][0], isum[c][1]), d * yd);
            const __m256i m = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)Q8K_BSUMS(y)), mn2);
            accm[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(m), _mm256_set1_ps(-dmin * yd), accm[c]);
        }
    }
    store_k(nc, out, acc, accm, 1);
}

AI void q6_K_body(int n, const uint8_t *w, const uint8_t *xq, size_t st, const int nc, float *out, const int vnni)
{
    __m512 acc[4];
    #pragma GCC unroll 8
    for (int c = 0; c < nc; c++) acc[c] = _mm512_setzero_ps();
    const __m512i sh = _mm512_set_epi64(W2, W2, W2, W2, 0, 0, 0, 0), m4 = _mm512_set1_epi8(15), m33 = _mm512_set1_epi8(0x33);
    for (int b = 0; b < n / 256; b++) {
        const uint8_t *x = w + (size_t)b * 210;
        const float d = f16(rd16(x + 208));
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(x + 192)));
        const __m512i scw = _mm512_castsi256_si512(sc16);
        const __m256i sc32 = _mm256_slli_epi16(sc16, 5); /* 32 * scale: the offset term */
        __m512i isum[4][2];
        #pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            const uint8_t *y = xq + c * st + (size_t)b * 292;
            const __m256i off = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)Q8K_BSUMS(y)), sc32);
            isum[c][0] = _mm512_zextsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), off));
            isum[c][1] = _mm512_setzero_si512();
        }
        #pragma GCC unroll 8
        for (int h = 0; h < 2; h++) { /* 128 elements: ql[64h..64h+63], qh[32h..32h+31] */
            const __m512i L = load64(x + 64 * h);
            const __m512i H = _mm512_and_si512(_mm512_srlv_epi16(bcast32(x + 128 + 32 * h), sh), m33);
            /* imm 0xE4 = C ? A : B, C = 15: low nibble from ql, bits 4-5 from qh */
            const __m512i q01 = _mm512_ternarylogic_epi32(L, _mm512_slli_epi16(H, 4), m4, 0xE4);
            const __m512i q23 = _mm512_ternarylogic_epi32(_mm512_srli_epi16(L, 4), H, m4, 0xE4);
            const __m512i sa = scales16x4(scw, 8 * h), sb = scales16x4(scw, 8 * h + 4);
            #pragma GCC unroll 8
            for (int c = 0; c < nc; c++) {
                const uint8_t *y = Q8K_QS(xq + c * st + (size_t)b * 292) + 128 * h;
                isum[c][0] = dp_s16(isum[c][0], _mm512_maddubs_epi16(q01, load64(y)), sa, vnni);
                isum[c][1] = dp_s16(isum[c][1], _mm512_maddubs_epi16(q23, load64(y + 64)), sb, vnni);
            }
        }
        #pragma GCC unroll 8
        for (int c = 0; c < nc; c++)
            final_k(&acc[c], _mm512_add_epi32(isum[c][0], isum[c][1]), d * Q8K_D(xq + c * st + (size_t)b * 292));
    }
    store_k(nc, out, acc, NULL, 0);
}

/* Q2_K (three = 0) and Q3_K (three = 1): 2-bit codes in the same order; Q3_K adds a high bit
 * (code + 4) and subtracts 4 * sum(scale * bsum); Q2_K subtracts the mins via bsums. */
AI void k23_body(int n, const uint8_t *w, const uint8_t *xq, size_t st, const int nc, float *out, const int three,
                 const int vnni)
{
    const int bs = three ? 110 : 84, qs0 = three ? 32 : 16;
    __m512 acc[4];
    __m256 accm[4];
    #pragma GCC unroll 8
    for (int c = 0; c < nc; c++) {
        acc[c] = _mm512_setzero_ps();
        accm[c] = _mm256_setzero_ps();
    }
    const __m512i sh01 = _mm512_set_epi64(W2, W2, W2, W2, 0, 0, 0, 0), m3 = _mm512_set1_epi8(3);
    for (int b = 0; b < n / 256; b++) {
        const uint8_t *x = w + (size_t)b * bs;
        float d, dmin = 0.0f;
        __m256i sc16, mn16 = _mm256_setzero_si256();
        if (three) {
            d = f16(rd16(x + 108));
            const uint32_t a = rd32(x + 96), bb = rd32(x + 100), cc = rd32(x + 104);
            const __m128i lo = _mm_setr_epi32((int)(a & 0x0f0f0f0f), (int)(bb & 0x0f0f0f0f), (int)((a >> 4) & 0x0f0f0f0f),
                                              (int)((bb >> 4) & 0x0f0f0f0f));
            const __m128i hi = _mm_setr_epi32((int)(cc & 0x03030303), (int)((cc >> 2) & 0x03030303),
                                              (int)((cc >> 4) & 0x03030303), (int)((cc >> 6) & 0x03030303));
            const __m128i s = _mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi16(hi, 4)), _mm_set1_epi8(32));
            sc16 = _mm256_cvtepi8_epi16(s);
        } else {
            d = f16(rd16(x + 80));
            dmin = f16(rd16(x + 82));
            const __m128i s = _mm_loadu_si128((const __m128i *)x);
            sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(s, _mm_set1_epi8(15)));
            mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), _mm_set1_epi8(15)));
        }
        const __m512i scw = _mm512_castsi256_si512(sc16);
        const __m256i sc4 = _mm256_slli_epi16(sc16, 2);
        __m512i isum[4][2];
        #pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            isum[c][0] = isum[c][1] = _mm512_setzero_si512();
            if (three) {
                const uint8_t *y = xq + c * st + (size_t)b * 292;
                const __m256i off = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)Q8K_BSUMS(y)), sc4);
                isum[c][0] = _mm512_zextsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), off));
            }
        }
        __m512i hm = _mm512_setzero_si512();
        if (three) hm = bcast32(x);
        #pragma GCC unroll 8
        for (int h = 0; h < 2; h++) {
            const __m512i v = _mm512_srlv_epi16(bcast32(x + qs0 + 32 * h), sh01);
            __m512i q[2] = {_mm512_and_si512(v, m3), _mm512_and_si512(_mm512_srli_epi16(v, 4), m3)};
            #pragma GCC unroll 8
            for (int p = 0; p < 2; p++) {
                if (three) { /* element 128h + 64p + l: high bit (4h + 2p + l/32) of hmask[l % 32] */
                    const int bit = 4 * h + 2 * p;
                    const __m512i sel = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << bit)), _mm256_set1_epi8((char)(1 << (bit + 1))), 1);
                    q[p] = _mm512_mask_add_epi8(q[p], _mm512_test_epi8_mask(hm, sel), q[p], _mm512_set1_epi8(4));
                }
                const __m512i sc = scales16x4(scw, 8 * h + 4 * p);
                #pragma GCC unroll 8
                for (int c = 0; c < nc; c++) {
                    const uint8_t *y = Q8K_QS(xq + c * st + (size_t)b * 292) + 128 * h + 64 * p;
                    isum[c][p] = dp_s16(isum[c][p], _mm512_maddubs_epi16(q[p], load64(y)), sc, vnni);
                }
            }
        }
        #pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            const uint8_t *y = xq + c * st + (size_t)b * 292;
            const float yd = Q8K_D(y);
            final_k(&acc[c], _mm512_add_epi32(isum[c][0], isum[c][1]), d * yd);
            if (!three) {
                const __m256i m = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)Q8K_BSUMS(y)), mn16);
                accm[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(m), _mm256_set1_ps(-dmin * yd), accm[c]);
            }
        }
    }
    store_k(nc, out, acc, accm, !three);
}

AI void iq4_xs_body(int n, const uint8_t *w, const uint8_t *xq, size_t st, const int nc, float *out, const int vnni)
{
    __m512 acc[4];
    #pragma GCC unroll 8
    for (int c = 0; c < nc; c++) acc[c] = _mm512_setzero_ps();
    const __m512i kv = iq4nl_table();
    for (int b = 0; b < n / 256; b++) {
        const uint8_t *x = w + (size_t)b * 136;
        const float d = f16(rd16(x));
        /* 6-bit scales: low nibbles from scales_l, 2 high bits from scales_h; minus 32 */
        const __m128i l = _mm_cvtsi32_si128((int)rd32(x + 4)), m4 = _mm_set1_epi8(15);
        const __m128i lo = _mm_unpacklo_epi8(_mm_and_si128(l, m4), _mm_and_si128(_mm_srli_epi16(l, 4), m4));
        const __m128i hi = _mm_and_si128(_mm_srlv_epi16(_mm_set1_epi16((short)rd16(x + 2)), _mm_setr_epi16(0, 2, 4, 6, 8, 10, 12, 14)),
                                         _mm_set1_epi16(3));
        const __m128i ls = _mm_sub_epi16(_mm_or_si128(_mm_cvtepu8_epi16(lo), _mm_slli_epi16(hi, 4)), _mm_set1_epi16(32));
        const __m512i scw = _mm512_castsi128_si512(ls);
        __m512i isum[4][2];
        #pragma GCC unroll 8
        for (int c = 0; c < nc; c++) isum[c][0] = isum[c][1] = _mm512_setzero_si512();
        #pragma GCC unroll 8
        for (int j = 0; j < 4; j++) { /* sub-blocks 2j, 2j+1 */
            const __m512i v = _mm512_shuffle_epi8(kv, nibbles2(x + 8 + 32 * j, x + 24 + 32 * j));
            const __m512i av = _mm512_abs_epi8(v);
            const __m512i sc = scales32x2(scw, 2 * j);
            #pragma GCC unroll 8
            for (int c = 0; c < nc; c++) {
                const uint8_t *y = Q8K_QS(xq + c * st + (size_t)b * 292) + 64 * j;
                const __m512i p = _mm512_maddubs_epi16(av, neg_where(load64(y), v));
                isum[c][j & 1] = dp_s16(isum[c][j & 1], p, sc, vnni);
            }
        }
        #pragma GCC unroll 8
        for (int c = 0; c < nc; c++)
            final_k(&acc[c], _mm512_add_epi32(isum[c][0], isum[c][1]), d * Q8K_D(xq + c * st + (size_t)b * 292));
    }
    store_k(nc, out, acc, NULL, 0);
}


/* ---- entry points --------------------------------------------------------------------- */

QDOT_BOTH(q2_K, k23_body, 0)
QDOT_BOTH(q3_K, k23_body, 1)
QDOT_BOTH(q4_K, k45_body, 0)
QDOT_BOTH(q5_K, k45_body, 1)
#define Q6_BODY(n, w, x, st, NC, out, dummy, vnni) q6_K_body(n, w, x, st, NC, out, vnni)
#define IQ4XS_BODY(n, w, x, st, NC, out, dummy, vnni) iq4_xs_body(n, w, x, st, NC, out, vnni)
QDOT_BOTH(q6_K, Q6_BODY, 0)
QDOT_BOTH(iq4_xs, IQ4XS_BODY, 0)
