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
 * always_inline with nc a compile-time constant, instantiated per nc by the entry points.
 * This file: the 32-element formats and the activation quantizers; the 256-element formats
 * are in qdot_k_avx512.c, the shared helpers in qdot_avx512.h. */
#include "qdot_avx512.h"

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

/* ---- entry points --------------------------------------------------------------------- */

QDOT_BOTH(q4_0, legacy_body, T_Q4_0)
QDOT_BOTH(q4_1, legacy_body, T_Q4_1)
QDOT_BOTH(q5_0, legacy_body, T_Q5_0)
QDOT_BOTH(q5_1, legacy_body, T_Q5_1)
QDOT_BOTH(q8_0, legacy_body, T_Q8_0)
QDOT_BOTH(iq4_nl, legacy_body, T_IQ4_NL)

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
