/* qdot_avx512.c — AVX-512 dot products of packed quantized weight rows with 8-bit activation
 * rows (Q8_0 / Q8_1 / Q8_K), and the activation quantizers. Built with -mavx512f/bw/vl/dq;
 * only called when cpuid says the CPU has them. The spec is qdot_ref.c: integer parts are
 * exact, only the float summation order differs.
 *
 * Two variants of every dot product: "_avx512" uses AVX-512BW integer ops (vpmaddubsw +
 * vpmaddwd), "_avx512vnni" fuses each of those pairs into one AVX512-VNNI instruction
 * (vpdpbusd, vpdpwssd). The Makefile does not give this file -mavx512vnni, and GCC refuses a
 * VNNI intrinsic inside a function that also inlines into the plain variant, so the two VNNI
 * instructions are written as one-line inline asm; dispatch.c installs the VNNI variants
 * only when cpuid reports AVX512-VNNI.
 *
 * Layout tricks (the same for all nc): a 512-bit register holds 64 weights in the element
 * order of the activation row, so activations are plain loads. 32-element formats put two
 * blocks in one register and scale them with a per-lane vector of 8 block scales; the
 * 256-element formats multiply unsigned codes by activations with vpmaddubsw and apply the
 * sub-block scales to the 16-bit pair sums with vpmaddwd, so a super-block sums in int32 and
 * meets its float scale once. Offsets (Q3_K's 4, Q6_K's 32) and mins come from Q8_K's bsums.
 * Signed × signed products use the sign trick (|w| times y negated where w < 0), which needs
 * y != -128: the activation quantizers never produce -128.
 *
 * nc (1..4) activation rows share each unpacked weight register; the bodies are
 * always_inline with nc a compile-time constant, instantiated per nc by the entry points. */
#include "kernels.h"
#include "blocks.h"
#include "unaligned.h"
#include "avx512_h8.h"

#include <immintrin.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

AI float f16(uint16_t h) { return _cvtsh_ss(h); }

/* per-word shift counts for vpsrlvw, four words at a time */
#define W2 0x0002000200020002LL
#define W4 0x0004000400040004LL

/* The f16 pairs at p + k*bs and p + k*bs + 2 (k < 8; scale and min, or scale and sum) as 16
 * floats: the first of each pair in lanes 0-7, the second in lanes 8-15. Same windows as
 * load_h8. */
AI __m512 load_h16(const uint8_t *p, const int bs)
{
    const int o2 = bs >= 32 ? 4 * bs : 8 * bs - 128;
    const __m512i a0 = _mm512_loadu_si512(p), a1 = _mm512_loadu_si512(p + 64);
    const __m512i b0 = _mm512_loadu_si512(p + o2), b1 = _mm512_loadu_si512(p + o2 + 64);
    const int h = bs / 2, g = (4 * bs - o2) / 2;
    const __m512i ia = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3 * h + 1, 2 * h + 1,
                                        h + 1, 1, 0, 0, 0, 0, 3 * h, 2 * h, h, 0);
    const __m512i ib = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, g + 3 * h + 1, g + 2 * h + 1, g + h + 1,
                                        g + 1, 0, 0, 0, 0, g + 3 * h, g + 2 * h, g + h, g, 0, 0, 0, 0);
    const __m512i r = _mm512_mask_blend_epi16(0xF0F0, _mm512_permutex2var_epi16(a0, ia, a1), _mm512_permutex2var_epi16(b0, ib, b1));
    return _mm512_cvtph_ps(_mm512_castsi512_si256(r));
}

/* acc + sums of four u8*s8 products per int32 lane. BW path: u*s pair sums must fit int16
 * (true for every caller: u <= 128 with |s| <= 127, or u <= 63). */
AI __m512i dp_u8s8(__m512i acc, __m512i u, __m512i s, const int vnni)
{
    if (vnni) {
        __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "vm"(s));
        return acc;
    }
    return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
}

/* acc + sums of two i16*i16 products per int32 lane (vpmaddwd + add). */
AI __m512i dp_s16(__m512i acc, __m512i a, __m512i b, const int vnni)
{
    if (vnni) {
        __asm__("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(a), "vm"(b));
        return acc;
    }
    return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
}

/* y negated in the bytes where v is negative (the sign half of the sign trick). */
AI __m512i neg_where(__m512i y, __m512i v)
{
    return _mm512_mask_sub_epi8(y, _mm512_movepi8_mask(v), _mm512_setzero_si512(), y);
}

/* 16 bytes at p and at q as [p, p, q, q] split into nibbles: [p & 15, p >> 4, q & 15, q >> 4],
 * i.e. two 32-element blocks in element order. */
AI __m512i nibbles2(const uint8_t *p, const uint8_t *q)
{
    const __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p))),
                                         _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)q)), 1);
    const __m512i sh = _mm512_set_epi64(W4, W4, 0, 0, W4, W4, 0, 0);
    return _mm512_and_si512(_mm512_srlv_epi16(v, sh), _mm512_set1_epi8(15));
}

/* 32 bytes at p and q as one register. */
AI __m512i load2x32(const uint8_t *p, const uint8_t *q)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)p)),
                              _mm256_loadu_si256((const __m256i *)q), 1);
}

AI __m512i iq4nl_table(void)
{
    return _mm512_broadcast_i32x4(_mm_setr_epi8(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113));
}

static inline float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* ---- 32-element blocks: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL --------------------------- */

enum { T_Q4_0, T_Q4_1, T_Q5_0, T_Q5_1, T_Q8_0, T_IQ4_NL };

/* Bytes per weight block, offset of its quants, whether they are unsigned codes with a min
 * term through Q8_1's s (Q4_1, Q5_1); the activation block size and quant offset. */
#define LBS(T) ((T) == T_Q4_0 || (T) == T_IQ4_NL ? 18 : (T) == T_Q4_1 ? 20 : (T) == T_Q5_0 ? 22 : (T) == T_Q5_1 ? 24 : 34)
#define LQS(T) ((T) == T_Q4_1 ? 4 : (T) == T_Q5_0 ? 6 : (T) == T_Q5_1 ? 8 : 2)
#define LMIN(T) ((T) == T_Q4_1 || (T) == T_Q5_1)
#define YBS(T) (LMIN(T) ? 36 : 34)
#define YQS(T) (LMIN(T) ? 4 : 2)

/* Weights as they meet activations in vpdpbusd (unsigned × signed bytes): Q4_1 / Q5_1 codes
 * as they are; every other format through the sign trick, |w| times y negated where w < 0
 * (the weight side of it is shared by the nc rows). Measured: computing Q4_0 as code·y − 8·y
 * instead (two vpdpbusd, no sign work) is no faster even for one row. */
typedef struct {
    __m512i u;     /* unsigned operand: codes or |values| */
    __mmask64 neg; /* signed formats: bytes whose value is negative */
} lweights;

/* The weights of the blocks at p and q (q may equal p), 64 bytes in element order. */
AI lweights lweights_load(const uint8_t *p, const uint8_t *q, const int T)
{
    lweights r = {_mm512_setzero_si512(), 0};
    if (T == T_Q8_0) {
        const __m512i v = load2x32(p + 2, q + 2);
        r.u = _mm512_abs_epi8(v);
        r.neg = _mm512_movepi8_mask(v);
        return r;
    }
    const __m512i n = nibbles2(p + LQS(T), q + LQS(T));
    if (T == T_Q5_0 || T == T_Q5_1) {
        const int o = T == T_Q5_0 ? 2 : 4;
        const __mmask64 h = _cvtu64_mask64((uint64_t)rd32(p + o) | (uint64_t)rd32(q + o) << 32);
        if (T == T_Q5_0) { /* code - 16: n where the fifth bit is set, else -(16 - n) */
            r.neg = _knot_mask64(h);
            r.u = _mm512_mask_sub_epi8(n, r.neg, _mm512_set1_epi8(16), n);
        } else {
            r.u = _mm512_mask_add_epi8(n, h, n, _mm512_set1_epi8(16));
        }
        return r;
    }
    if (T == T_Q4_1) {
        r.u = n;
        return r;
    }
    /* Q4_0 (n - 8) and IQ4_NL (code book): negative exactly for n < 8; |value| by table */
    const __m128i tab = T == T_Q4_0 ? _mm_setr_epi8(8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6, 7)
                                    : _mm_setr_epi8(127, 104, 83, 65, 49, 35, 22, 10, 1, 13, 25, 38, 53, 69, 89, 113);
    r.u = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(tab), n);
    r.neg = _mm512_cmplt_epu8_mask(n, _mm512_set1_epi8(8));
    return r;
}

/* Integer dot of two weight blocks with activations y: int32 lanes 0-7 belong to the first
 * block, 8-15 to the second. */
AI __m512i ldot(const lweights *w, __m512i y, const int T, const int vnni)
{
    const __m512i z = _mm512_setzero_si512();
    if (LMIN(T)) return dp_u8s8(z, w->u, y, vnni);
    return dp_u8s8(z, w->u, _mm512_mask_sub_epi8(y, w->neg, z, y), vnni);
}

AI void legacy_body(int n, const uint8_t *w, const uint8_t *xq, size_t st, const int nc, float *out,
                    const int T, const int vnni)
{
    const int bs = LBS(T), ys = YBS(T), yq = YQS(T);
    const int nb = n / 32;
    __m512 acc[4][2], accm[4];
    #pragma GCC unroll 8
    for (int c = 0; c < nc; c++) acc[c][0] = acc[c][1] = accm[c] = _mm512_setzero_ps();
    /* lane i of pair k takes block scale 2k + (i >= 8) */
    const __m512i pidx[4] = {
        _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
        _mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2),
        _mm512_set_epi32(5, 5, 5, 5, 5, 5, 5, 5, 4, 4, 4, 4, 4, 4, 4, 4),
        _mm512_set_epi32(7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6, 6, 6),
    };
    int b = 0;
    for (; b + 8 <= nb; b += 8) { /* 8 blocks: 4 registers of 2 */
        const uint8_t *wb = w + (size_t)b * bs;
        /* block scales in lanes 0-7; for Q4_1 / Q5_1 the mins in lanes 8-15 */
        const __m512 dw = LMIN(T) ? load_h16(wb, bs) : _mm512_castps256_ps512(load_h8(wb, bs));
        lweights wv[4];
        #pragma GCC unroll 8
        for (int k = 0; k < 4; k++) wv[k] = lweights_load(wb + 2 * k * bs, wb + (2 * k + 1) * bs, T);
        #pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            const uint8_t *yb = xq + c * st + (size_t)b * ys;
            /* d products in lanes 0-7; m * s in lanes 8-15 */
            const __m512 s = _mm512_mul_ps(dw, LMIN(T) ? load_h16(yb, ys) : _mm512_castps256_ps512(load_h8(yb, ys)));
            if (LMIN(T)) accm[c] = _mm512_add_ps(accm[c], s);
            #pragma GCC unroll 8
            for (int k = 0; k < 4; k++) {
                const __m512i y = load2x32(yb + 2 * k * ys + yq, yb + (2 * k + 1) * ys + yq);
                const __m512i p = ldot(&wv[k], y, T, vnni);
                acc[c][k & 1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_permutexvar_ps(pidx[k], s), acc[c][k & 1]);
            }
        }
    }
    for (; b < nb; b += 2) { /* the last 1..7 blocks, a pair at a time */
        const int two = b + 1 < nb;
        const uint8_t *p = w + (size_t)b * bs, *q = two ? p + bs : p;
        const lweights wv = lweights_load(p, q, T);
        #pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            const uint8_t *yp = xq + c * st + (size_t)b * ys, *yq2 = two ? yp + ys : yp;
            const float s0 = f16(rd16(p)) * f16(rd16(yp)), s1 = two ? f16(rd16(q)) * f16(rd16(yq2)) : 0.0f;
            const __m512 s = _mm512_insertf32x8(_mm512_set1_ps(s0), _mm256_set1_ps(s1), 1);
            const __m512i pr = ldot(&wv, load2x32(yp + yq, yq2 + yq), T, vnni);
            acc[c][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(pr), s, acc[c][0]);
            if (LMIN(T)) {
                float m = f16(rd16(p + 2)) * f16(rd16(yp + 2));
                if (two) m += f16(rd16(q + 2)) * f16(rd16(yq2 + 2));
                accm[c] = _mm512_mask_add_ps(accm[c], 0x100, accm[c], _mm512_set1_ps(m));
            }
        }
    }
    #pragma GCC unroll 8
    for (int c = 0; c < nc; c++) {
        float r = _mm512_reduce_add_ps(_mm512_add_ps(acc[c][0], acc[c][1]));
        if (LMIN(T)) r += _mm512_mask_reduce_add_ps(0xFF00, accm[c]);
        out[c] = r;
    }
}

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

/* Calls BODY(n, w, x, st, NC, out, ARGS...) with NC a constant, four rows at a time. */
#define QDOT_ENTRY(fname, BODY, ...)                                                                        \
    void fname(int n, const void *w, const void *xq, size_t st, int nc, float *out)                         \
    {                                                                                                       \
        for (int c0 = 0; c0 < nc; c0 += 4) {                                                                \
            const uint8_t *x = (const uint8_t *)xq + (size_t)c0 * st;                                       \
            switch (nc - c0) {                                                                              \
            case 1: BODY(n, w, x, st, 1, out + c0, __VA_ARGS__); break;                                     \
            case 2: BODY(n, w, x, st, 2, out + c0, __VA_ARGS__); break;                                     \
            case 3: BODY(n, w, x, st, 3, out + c0, __VA_ARGS__); break;                                     \
            default: BODY(n, w, x, st, 4, out + c0, __VA_ARGS__); break;                                    \
            }                                                                                               \
        }                                                                                                   \
    }

#define QDOT_BOTH(name, BODY, ...)                                   \
    QDOT_ENTRY(qb_qdot_##name##_avx512, BODY, __VA_ARGS__, 0)        \
    QDOT_ENTRY(qb_qdot_##name##_avx512vnni, BODY, __VA_ARGS__, 1)

QDOT_BOTH(q4_0, legacy_body, T_Q4_0)
QDOT_BOTH(q4_1, legacy_body, T_Q4_1)
QDOT_BOTH(q5_0, legacy_body, T_Q5_0)
QDOT_BOTH(q5_1, legacy_body, T_Q5_1)
QDOT_BOTH(q8_0, legacy_body, T_Q8_0)
QDOT_BOTH(iq4_nl, legacy_body, T_IQ4_NL)
QDOT_BOTH(q2_K, k23_body, 0)
QDOT_BOTH(q3_K, k23_body, 1)
QDOT_BOTH(q4_K, k45_body, 0)
QDOT_BOTH(q5_K, k45_body, 1)
#define Q6_BODY(n, w, x, st, NC, out, dummy, vnni) q6_K_body(n, w, x, st, NC, out, vnni)
#define IQ4XS_BODY(n, w, x, st, NC, out, dummy, vnni) iq4_xs_body(n, w, x, st, NC, out, vnni)
QDOT_BOTH(q6_K, Q6_BODY, 0)
QDOT_BOTH(iq4_xs, IQ4XS_BODY, 0)

/* ---- activation quantizers (byte-identical to qdot_ref.c) ------------------------------- */

/* roundf of 16 floats: truncate, then step away from zero where the dropped part is >= 0.5
 * (exact: v - trunc(v) is representable). */
AI __m512 round_away(__m512 v)
{
    const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __mmask16 up = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    const __m512 one = _mm512_or_ps(_mm512_and_ps(v, _mm512_set1_ps(-0.0f)), _mm512_set1_ps(1.0f));
    return _mm512_mask_add_ps(t, up, t, one);
}

AI void put16(void *p, uint16_t v) { memcpy(p, &v, sizeof v); }

/* One 32-float block as Q8_0 (sum = 0) or Q8_1 (sum = 1): d = amax / 127, q = roundf(x / d). */
AI void q8_32(const float *x, uint8_t *y, const int sum)
{
    const __m512 a = _mm512_loadu_ps(x), b = _mm512_loadu_ps(x + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b)));
    const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    const __m512i qa = _mm512_cvtps_epi32(round_away(_mm512_mul_ps(a, _mm512_set1_ps(id))));
    const __m512i qb = _mm512_cvtps_epi32(round_away(_mm512_mul_ps(b, _mm512_set1_ps(id))));
    put16(y, _cvtss_sh(d, 0));
    if (sum) put16(y + 2, _cvtss_sh((float)_mm512_reduce_add_epi32(_mm512_add_epi32(qa, qb)) * d, 0));
    _mm_storeu_si128((__m128i *)(y + 2 + 2 * sum), _mm512_cvtepi32_epi8(qa));
    _mm_storeu_si128((__m128i *)(y + 18 + 2 * sum), _mm512_cvtepi32_epi8(qb));
}

void qb_quantize_q8_0_avx512(const float *x, void *vy, int n)
{
    for (int b = 0; b < n / 32; b++) q8_32(x + 32 * b, (uint8_t *)vy + 34 * b, 0);
}

void qb_quantize_q8_1_avx512(const float *x, void *vy, int n)
{
    for (int b = 0; b < n / 32; b++) q8_32(x + 32 * b, (uint8_t *)vy + 36 * b, 1);
}

/* Q8_K: scale from the first element of largest magnitude (signed), round half to even (the
 * vector conversion's default mode, as ggml's nearest_int), bsums of each 16. */
void qb_quantize_q8_K_avx512(const float *x, void *vy, int n)
{
    for (int b = 0; b < n / 256; b++, x += 256) {
        qb_block_q8_K *y = (qb_block_q8_K *)vy + b;
        __m512 m = _mm512_setzero_ps();
        for (int k = 0; k < 16; k++) m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + 16 * k)));
        const float amax = _mm512_reduce_max_ps(m);
        if (amax == 0.0f) {
            memset(y, 0, sizeof *y);
            continue;
        }
        int j = 0;
        for (int k = 0; k < 16; k++) {
            const __mmask16 e = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + 16 * k)), _mm512_set1_ps(amax), _CMP_EQ_OQ);
            if (e) {
                j = 16 * k + __builtin_ctz(e);
                break;
            }
        }
        const float iscale = -127.0f / x[j];
        for (int k = 0; k < 16; k++) {
            __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_set1_ps(iscale), _mm512_loadu_ps(x + 16 * k)));
            q = _mm512_min_epi32(q, _mm512_set1_epi32(127));
            _mm_storeu_si128((__m128i *)(y->qs + 16 * k), _mm512_cvtsepi32_epi8(q));
            y->bsums[k] = (int16_t)_mm512_reduce_add_epi32(q);
        }
        y->d = 1.0f / iscale;
    }
}
