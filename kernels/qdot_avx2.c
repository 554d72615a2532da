/* qdot_avx2.c — AVX2 dot products of packed quantized weight rows with 8-bit activation rows
 * (Q8_0 / Q8_1 / Q8_K), and the activation quantizers. Built with -mavx2 -mfma -mf16c; only
 * called when cpuid says the CPU has them. The spec is qdot_ref.c: integer parts are exact,
 * only the float summation order differs; the quantizers write the reference's bytes.
 *
 * A 256-bit register holds 32 weights in the element order of the activation row, so
 * activations are plain loads. Products are vpmaddubsw (unsigned × signed bytes to int16
 * pair sums) then vpmaddwd: by ones for the 32-element formats (scaled in float per block),
 * by the sub-block scales for the 256-element formats (so a super-block sums in int32 and
 * meets its float scale once). Signed weights use the sign trick (|w| times y negated where
 * w < 0; y is never -128). Offsets (Q3_K's 4, Q6_K's 32) and mins use Q8_K's bsums.
 * nc (1..4) activation rows share each unpacked weight register: the bodies are
 * always_inline with nc a compile-time constant, instantiated per nc by the entry points. */
#include "kernels.h"
#include "blocks.h"
#include "unaligned.h"

#include <immintrin.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

AI float f16(uint16_t h) { return _cvtsh_ss(h); }

AI __m256i loadu(const uint8_t *p) { return _mm256_loadu_si256((const __m256i *)p); }

static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

static inline int hsum_i32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 1)));
}

/* 16 bytes of nibbles as 32 values in element order: low nibbles, then high nibbles. */
AI __m256i nibbles(const uint8_t *p)
{
    const __m128i t = _mm_loadu_si128((const __m128i *)p);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(15));
}

/* Byte e = 0xFF where bit e of bits is set, else 0. */
AI __m256i bytes_from_bits(uint32_t bits)
{
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits),
                                               _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL, 0x0303030303030303LL));
    const __m256i sel = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    return _mm256_cmpeq_epi8(_mm256_and_si256(spread, sel), sel);
}

AI __m256i iq4nl_table(void)
{
    return _mm256_broadcastsi128_si256(_mm_setr_epi8(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113));
}

/* Sums of four u8*s8 products per int32 lane (u*s pair sums fit int16 for every caller). */
AI __m256i dp_u8s8(__m256i u, __m256i s) { return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)); }

/* ---- 32-element blocks: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL --------------------------- */

enum { T_Q4_0, T_Q4_1, T_Q5_0, T_Q5_1, T_Q8_0, T_IQ4_NL };

#define LBS(T) ((T) == T_Q4_0 || (T) == T_IQ4_NL ? 18 : (T) == T_Q4_1 ? 20 : (T) == T_Q5_0 ? 22 : (T) == T_Q5_1 ? 24 : 34)
#define LMIN(T) ((T) == T_Q4_1 || (T) == T_Q5_1)

/* One weight block as 32 bytes in element order: signed values for Q4_0, Q5_0, Q8_0,
 * IQ4_NL; unsigned codes for Q4_1, Q5_1. */
AI __m256i lweights(const uint8_t *p, const int T)
{
    switch (T) {
    case T_Q8_0:
        return loadu(p + 2);
    case T_Q4_0:
        return _mm256_sub_epi8(nibbles(p + 2), _mm256_set1_epi8(8));
    case T_IQ4_NL:
        return _mm256_shuffle_epi8(iq4nl_table(), nibbles(p + 2));
    case T_Q4_1:
        return nibbles(p + 4);
    case T_Q5_0: /* code - 16 = nibble with the top four bits set where the fifth bit is clear */
        return _mm256_or_si256(nibbles(p + 6), _mm256_andnot_si256(bytes_from_bits(rd32(p + 2)), _mm256_set1_epi8((char)0xF0)));
    default: /* T_Q5_1 */
        return _mm256_or_si256(nibbles(p + 8), _mm256_and_si256(bytes_from_bits(rd32(p + 4)), _mm256_set1_epi8(16)));
    }
}

/* One block against nc activation rows: acc[c] += scale · dot. */
AI void legacy_block(const uint8_t *p, const uint8_t *y0, size_t st, const int nc, __m256 *acc, float *summ, const int T)
{
    const int yq = LMIN(T) ? 4 : 2;
    const float dw = f16(rd16(p));
    const __m256i v = lweights(p, T), av = LMIN(T) ? v : _mm256_sign_epi8(v, v);
    #pragma GCC unroll 8
    for (int c = 0; c < nc; c++) {
        const uint8_t *y = y0 + c * st;
        const __m256i yv = loadu(y + yq);
        const __m256i pr = dp_u8s8(av, LMIN(T) ? yv : _mm256_sign_epi8(yv, v));
        acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(dw * f16(rd16(y))), _mm256_cvtepi32_ps(pr), acc[c]);
        if (LMIN(T)) summ[c] += f16(rd16(p + 2)) * f16(rd16(y + 2));
    }
}

AI void legacy_body(int n, const uint8_t *w, const uint8_t *xq, size_t st, const int nc, float *out, const int T)
{
    const int bs = LBS(T), ys = LMIN(T) ? 36 : 34;
    const int nb = n / 32;
    /* two accumulators per row (even and odd blocks); the same for every nc, so a row's
     * result does not depend on how many rows share the call */
    __m256 acc[4], acc2[4];
    float summ[4] = {0}, summ2[4] = {0};
    #pragma GCC unroll 8
    for (int c = 0; c < nc; c++) acc[c] = acc2[c] = _mm256_setzero_ps();
    int b = 0;
    for (; b + 2 <= nb; b += 2) {
        legacy_block(w + (size_t)b * bs, xq + (size_t)b * ys, st, nc, acc, summ, T);
        legacy_block(w + (size_t)(b + 1) * bs, xq + (size_t)(b + 1) * ys, st, nc, acc2, summ2, T);
    }
    if (b < nb) legacy_block(w + (size_t)b * bs, xq + (size_t)b * ys, st, nc, acc, summ, T);
    #pragma GCC unroll 8
    for (int c = 0; c < nc; c++) out[c] = hsum(_mm256_add_ps(acc[c], acc2[c])) + (summ[c] + summ2[c]);
}

/* ---- 256-element super-blocks against Q8_K -------------------------------------------- */

#define Q8K_D(y) rdf32(y)
#define Q8K_QS(y) ((const uint8_t *)(y) + 4)
#define Q8K_BSUMS(y) ((const uint8_t *)(y) + 260)

/* Word s of the 8-word vector in each 128-bit lane of v, broadcast over that lane. */
AI __m256i word_bcast(__m256i v, int s_lo, int s_hi)
{
    const __m128i lo = _mm_set1_epi16((short)(2 * s_lo | (2 * s_lo + 1) << 8));
    const __m128i hi = _mm_set1_epi16((short)(2 * s_hi | (2 * s_hi + 1) << 8));
    return _mm256_shuffle_epi8(v, _mm256_set_m128i(hi, lo));
}

AI void final_k(__m256 *acc, __m256i isum, float d)
{
    *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d), *acc);
}

/* Bit `from` of every byte of v moved to bit `to` (other bits garbage, caller masks). */
AI __m256i move_bit(__m256i v, int from, int to)
{
    return from >= to ? _mm256_srli_epi16(v, from - to) : _mm256_slli_epi16(v, to - from);
}

/* Q4_K and Q5_K (five = 1): eight 6-bit (scale, min) pairs; mins through bsums. */
AI void k45_body(int n, const uint8_t *w, const uint8_t *xq, size_t st, const int nc, float *out, const int five)
{
    const int bs = five ? 176 : 144, qs0 = five ? 48 : 16;
    __m256 acc[4], accm[4];
    #pragma GCC unroll 8
    for (int c = 0; c < nc; c++) acc[c] = accm[c] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(15);
    for (int b = 0; b < n / 256; b++) {
        const uint8_t *x = w + (size_t)b * bs;
        const float d = f16(rd16(x)), dmin = f16(rd16(x + 2));
        const uint32_t a0 = rd32(x + 4), a1 = rd32(x + 8), a2 = rd32(x + 12);
        const uint32_t sc_lo = a0 & 0x3f3f3f3f, sc_hi = (a2 & 0x0f0f0f0f) | ((a0 >> 2) & 0x30303030);
        const uint32_t mn_lo = a1 & 0x3f3f3f3f, mn_hi = ((a2 >> 4) & 0x0f0f0f0f) | ((a1 >> 2) & 0x30303030);
        const __m128i sc8 = _mm_cvtepu8_epi16(_mm_setr_epi32((int)sc_lo, (int)sc_hi, 0, 0));
        const __m128i mn8 = _mm_cvtepu8_epi16(_mm_setr_epi32((int)mn_lo, (int)mn_hi, 0, 0));
        const __m256i scw = _mm256_broadcastsi128_si256(sc8);
        const __m256i mn2 = _mm256_set_m128i(_mm_unpackhi_epi16(mn8, mn8), _mm_unpacklo_epi16(mn8, mn8));
        __m256i hb = _mm256_setzero_si256();
        if (five) hb = loadu(x + 16);
        __m256i isum[4];
        #pragma GCC unroll 8
        for (int c = 0; c < nc; c++) isum[c] = _mm256_setzero_si256();
        #pragma GCC unroll 8
        for (int j = 0; j < 4; j++) {
            const __m256i q = loadu(x + qs0 + 32 * j);
            __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            if (five) {
                const __m256i b4 = _mm256_set1_epi8(16);
                lo = _mm256_or_si256(lo, _mm256_and_si256(move_bit(hb, 2 * j, 4), b4));
                hi = _mm256_or_si256(hi, _mm256_and_si256(move_bit(hb, 2 * j + 1, 4), b4));
            }
            const __m256i sl = word_bcast(scw, 2 * j, 2 * j), sh = word_bcast(scw, 2 * j + 1, 2 * j + 1);
            #pragma GCC unroll 8
            for (int c = 0; c < nc; c++) {
                const uint8_t *y = Q8K_QS(xq + c * st + (size_t)b * 292) + 64 * j;
                const __m256i pl = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, loadu(y)), sl);
                const __m256i ph = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, loadu(y + 32)), sh);
                isum[c] = _mm256_add_epi32(isum[c], _mm256_add_epi32(pl, ph));
            }
        }
        #pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            const uint8_t *y = xq + c * st + (size_t)b * 292;
            const float yd = Q8K_D(y);
            final_k(&acc[c], isum[c], d * yd);
            const __m256i m = _mm256_madd_epi16(loadu(Q8K_BSUMS(y)), mn2);
            accm[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(m), _mm256_set1_ps(-dmin * yd), accm[c]);
        }
    }
    #pragma GCC unroll 8
    for (int c = 0; c < nc; c++) out[c] = hsum(_mm256_add_ps(acc[c], accm[c]));
}

AI void q6_K_body(int n, const uint8_t *w, const uint8_t *xq, size_t st, const int nc, float *out)
{
    __m256 acc[4];
    #pragma GCC unroll 8
    for (int c = 0; c < nc; c++) acc[c] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30);
    for (int b = 0; b < n / 256; b++) {
        const uint8_t *x = w + (size_t)b * 210;
        const float d = f16(rd16(x + 208));
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(x + 192)));
        __m256i isum[4];
        #pragma GCC unroll 8
        for (int c = 0; c < nc; c++) { /* the -32 offset: -32 * sum(scale * bsum) */
            const __m256i off = _mm256_madd_epi16(loadu(Q8K_BSUMS(xq + c * st + (size_t)b * 292)), _mm256_slli_epi16(sc16, 5));
            isum[c] = _mm256_sub_epi32(_mm256_setzero_si256(), off);
        }
        #pragma GCC unroll 8
        for (int h = 0; h < 2; h++) {
            const __m256i ql0 = loadu(x + 64 * h), ql1 = loadu(x + 64 * h + 32), qh = loadu(x + 128 + 32 * h);
            const __m256i scw = h ? _mm256_permute2x128_si256(sc16, sc16, 0x11) : _mm256_permute2x128_si256(sc16, sc16, 0x00);
            const __m256i q[4] = {
                _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30)),
                _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m30)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30)),
            };
            #pragma GCC unroll 8
            for (int k = 0; k < 4; k++) { /* 32 elements: sub-blocks 8h+2k, 8h+2k+1 */
                const __m256i sc = word_bcast(scw, 2 * k, 2 * k + 1);
                #pragma GCC unroll 8
                for (int c = 0; c < nc; c++) {
                    const uint8_t *y = Q8K_QS(xq + c * st + (size_t)b * 292) + 128 * h + 32 * k;
                    isum[c] = _mm256_add_epi32(isum[c], _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], loadu(y)), sc));
                }
            }
        }
        #pragma GCC unroll 8
        for (int c = 0; c < nc; c++) final_k(&acc[c], isum[c], d * Q8K_D(xq + c * st + (size_t)b * 292));
    }
    #pragma GCC unroll 8
    for (int c = 0; c < nc; c++) out[c] = hsum(acc[c]);
}

/* Q2_K (three = 0) and Q3_K (three = 1), as in qdot_avx512.c. */
AI void k23_body(int n, const uint8_t *w, const uint8_t *xq, size_t st, const int nc, float *out, const int three)
{
    const int bs = three ? 110 : 84, qs0 = three ? 32 : 16;
    __m256 acc[4], accm[4];
    #pragma GCC unroll 8
    for (int c = 0; c < nc; c++) acc[c] = accm[c] = _mm256_setzero_ps();
    const __m256i m3 = _mm256_set1_epi8(3);
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
            sc16 = _mm256_cvtepi8_epi16(_mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi16(hi, 4)), _mm_set1_epi8(32)));
        } else {
            d = f16(rd16(x + 80));
            dmin = f16(rd16(x + 82));
            const __m128i s = _mm_loadu_si128((const __m128i *)x);
            sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(s, _mm_set1_epi8(15)));
            mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), _mm_set1_epi8(15)));
        }
        __m256i isum[4];
        #pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            isum[c] = _mm256_setzero_si256();
            if (three) {
                const __m256i off = _mm256_madd_epi16(loadu(Q8K_BSUMS(xq + c * st + (size_t)b * 292)), _mm256_slli_epi16(sc16, 2));
                isum[c] = _mm256_sub_epi32(isum[c], off);
            }
        }
        __m256i hm = _mm256_setzero_si256();
        if (three) hm = loadu(x);
        #pragma GCC unroll 8
        for (int h = 0; h < 2; h++) {
            const __m256i qv = loadu(x + qs0 + 32 * h);
            const __m256i scw = h ? _mm256_permute2x128_si256(sc16, sc16, 0x11) : _mm256_permute2x128_si256(sc16, sc16, 0x00);
            #pragma GCC unroll 8
            for (int k = 0; k < 4; k++) { /* elements 128h + 32k: sub-blocks 8h+2k, 8h+2k+1 */
                __m256i q = _mm256_and_si256(_mm256_srli_epi16(qv, 2 * k), m3);
                if (three) q = _mm256_or_si256(q, _mm256_and_si256(move_bit(hm, 4 * h + k, 2), _mm256_set1_epi8(4)));
                const __m256i sc = word_bcast(scw, 2 * k, 2 * k + 1);
                #pragma GCC unroll 8
                for (int c = 0; c < nc; c++) {
                    const uint8_t *y = Q8K_QS(xq + c * st + (size_t)b * 292) + 128 * h + 32 * k;
                    isum[c] = _mm256_add_epi32(isum[c], _mm256_madd_epi16(_mm256_maddubs_epi16(q, loadu(y)), sc));
                }
            }
        }
        #pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            const uint8_t *y = xq + c * st + (size_t)b * 292;
            const float yd = Q8K_D(y);
            final_k(&acc[c], isum[c], d * yd);
            if (!three) {
                const __m256i m = _mm256_madd_epi16(loadu(Q8K_BSUMS(y)), mn16);
                accm[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(m), _mm256_set1_ps(-dmin * yd), accm[c]);
            }
        }
    }
    #pragma GCC unroll 8
    for (int c = 0; c < nc; c++) out[c] = hsum(_mm256_add_ps(acc[c], accm[c]));
}

AI void iq4_xs_body(int n, const uint8_t *w, const uint8_t *xq, size_t st, const int nc, float *out)
{
    __m256 acc[4];
    #pragma GCC unroll 8
    for (int c = 0; c < nc; c++) acc[c] = _mm256_setzero_ps();
    const __m256i kv = iq4nl_table();
    for (int b = 0; b < n / 256; b++) {
        const uint8_t *x = w + (size_t)b * 136;
        const float d = f16(rd16(x));
        const uint16_t sh = rd16(x + 2);
        __m256i isum[4];
        #pragma GCC unroll 8
        for (int c = 0; c < nc; c++) isum[c] = _mm256_setzero_si256();
        #pragma GCC unroll 8
        for (int s = 0; s < 8; s++) {
            const int ls = (((x[4 + s / 2] >> (4 * (s % 2))) & 15) | ((sh >> (2 * s)) & 3) << 4) - 32;
            const __m256i v = _mm256_shuffle_epi8(kv, nibbles(x + 8 + 16 * s)), av = _mm256_sign_epi8(v, v);
            const __m256i sc = _mm256_set1_epi16((short)ls);
            #pragma GCC unroll 8
            for (int c = 0; c < nc; c++) {
                const __m256i y = loadu(Q8K_QS(xq + c * st + (size_t)b * 292) + 32 * s);
                isum[c] = _mm256_add_epi32(isum[c], _mm256_madd_epi16(_mm256_maddubs_epi16(av, _mm256_sign_epi8(y, v)), sc));
            }
        }
        #pragma GCC unroll 8
        for (int c = 0; c < nc; c++) final_k(&acc[c], isum[c], d * Q8K_D(xq + c * st + (size_t)b * 292));
    }
    #pragma GCC unroll 8
    for (int c = 0; c < nc; c++) out[c] = hsum(acc[c]);
}

/* ---- entry points --------------------------------------------------------------------- */

#define QDOT_ENTRY(fname, BODY, ...)                                                    \
    void fname(int n, const void *w, const void *xq, size_t st, int nc, float *out)     \
    {                                                                                   \
        for (int c0 = 0; c0 < nc; c0 += 4) {                                            \
            const uint8_t *x = (const uint8_t *)xq + (size_t)c0 * st;                   \
            switch (nc - c0) {                                                          \
            case 1: BODY(n, w, x, st, 1, out + c0, __VA_ARGS__); break;                 \
            case 2: BODY(n, w, x, st, 2, out + c0, __VA_ARGS__); break;                 \
            case 3: BODY(n, w, x, st, 3, out + c0, __VA_ARGS__); break;                 \
            default: BODY(n, w, x, st, 4, out + c0, __VA_ARGS__); break;                \
            }                                                                           \
        }                                                                               \
    }

#define Q6_BODY(n, w, x, st, NC, out, dummy) q6_K_body(n, w, x, st, NC, out)
#define IQ4XS_BODY(n, w, x, st, NC, out, dummy) iq4_xs_body(n, w, x, st, NC, out)
QDOT_ENTRY(qb_qdot_q4_0_avx2, legacy_body, T_Q4_0)
QDOT_ENTRY(qb_qdot_q4_1_avx2, legacy_body, T_Q4_1)
QDOT_ENTRY(qb_qdot_q5_0_avx2, legacy_body, T_Q5_0)
QDOT_ENTRY(qb_qdot_q5_1_avx2, legacy_body, T_Q5_1)
QDOT_ENTRY(qb_qdot_q8_0_avx2, legacy_body, T_Q8_0)
QDOT_ENTRY(qb_qdot_iq4_nl_avx2, legacy_body, T_IQ4_NL)
QDOT_ENTRY(qb_qdot_q2_K_avx2, k23_body, 0)
QDOT_ENTRY(qb_qdot_q3_K_avx2, k23_body, 1)
QDOT_ENTRY(qb_qdot_q4_K_avx2, k45_body, 0)
QDOT_ENTRY(qb_qdot_q5_K_avx2, k45_body, 1)
QDOT_ENTRY(qb_qdot_q6_K_avx2, Q6_BODY, 0)
QDOT_ENTRY(qb_qdot_iq4_xs_avx2, IQ4XS_BODY, 0)

/* ---- activation quantizers (byte-identical to qdot_ref.c) ------------------------------- */

/* roundf of 8 floats: truncate, then step away from zero where the dropped part is >= 0.5. */
AI __m256 round_away(__m256 v)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 up = _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_sub_ps(v, t)), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    const __m256 one = _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(1.0f));
    return _mm256_add_ps(t, _mm256_and_ps(up, one));
}

AI void put16(void *p, uint16_t v) { memcpy(p, &v, sizeof v); }

/* 32 int32 (four registers, values within int8) to 32 bytes in order. */
AI __m256i pack32(__m256i a, __m256i b, __m256i c, __m256i d)
{
    const __m256i v = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
    return _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

AI void q8_32(const float *x, uint8_t *y, const int sum)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 v[4];
    __m256 m = _mm256_setzero_ps();
    #pragma GCC unroll 8
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_loadu_ps(x + 8 * k);
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[k]));
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    const float amax = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
    const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    __m256i q[4];
    #pragma GCC unroll 8
    for (int k = 0; k < 4; k++) q[k] = _mm256_cvtps_epi32(round_away(_mm256_mul_ps(v[k], _mm256_set1_ps(id))));
    put16(y, _cvtss_sh(d, 0));
    if (sum) {
        const int s = hsum_i32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
        put16(y + 2, _cvtss_sh((float)s * d, 0));
    }
    _mm256_storeu_si256((__m256i *)(y + 2 + 2 * sum), pack32(q[0], q[1], q[2], q[3]));
}

void qb_quantize_q8_0_avx2(const float *x, void *vy, int n)
{
    for (int b = 0; b < n / 32; b++) q8_32(x + 32 * b, (uint8_t *)vy + 34 * b, 0);
}

void qb_quantize_q8_1_avx2(const float *x, void *vy, int n)
{
    for (int b = 0; b < n / 32; b++) q8_32(x + 32 * b, (uint8_t *)vy + 36 * b, 1);
}

void qb_quantize_q8_K_avx2(const float *x, void *vy, int n)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int b = 0; b < n / 256; b++, x += 256) {
        qb_block_q8_K *y = (qb_block_q8_K *)vy + b;
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < 32; k++) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        const float amax = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
        if (amax == 0.0f) {
            memset(y, 0, sizeof *y);
            continue;
        }
        int j = 0;
        for (int k = 0; k < 32; k++) {
            const __m256 e = _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k)), _mm256_set1_ps(amax), _CMP_EQ_OQ);
            const int bits = _mm256_movemask_ps(e);
            if (bits) {
                j = 8 * k + __builtin_ctz((unsigned)bits);
                break;
            }
        }
        const float iscale = -127.0f / x[j];
        for (int k = 0; k < 16; k++) { /* 16 values: one bsum */
            const __m256i lim = _mm256_set1_epi32(127);
            const __m256i a = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_set1_ps(iscale), _mm256_loadu_ps(x + 16 * k))), lim);
            const __m256i c = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_set1_ps(iscale), _mm256_loadu_ps(x + 16 * k + 8))), lim);
            const __m256i w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, c), 0xD8);
            _mm_storeu_si128((__m128i *)(y->qs + 16 * k), _mm_packs_epi16(_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1)));
            y->bsums[k] = (int16_t)hsum_i32(_mm256_add_epi32(a, c));
        }
        y->d = 1.0f / iscale;
    }
}
