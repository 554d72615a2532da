/* gemm_q8_avx512.c — prompt-processing GEMM tile for the 32-element formats that meet Q8_0
 * activations (Q8_0, Q4_0, IQ4_NL), with AVX512-VNNI: up to 2 weight rows × 8 tokens per
 * call, every product summed in registers. The spec is qdot_ref.c (same integers, same
 * f16-rounded scales; only the float summation order differs).
 *
 * Activations are quantized once per matmul into a tile layout (qb_act_tile_row_bytes):
 * per group of 8 Q8_0 blocks (256 elements; the last group of a row padded with zero blocks)
 *   f32 dy[16]   lanes 2b and 2b+1: block b's scale (the f16 value Q8_0 stores)
 *   i32 ns[16]   lane 2b: −Σ q over block b, lane 2b+1: 0
 *   i8  q[4][64] chunk i: bytes 8b..8b+7 are block b's elements 8i..8i+7
 * (384 bytes). The quants and scales are exactly those qb_quantize_q8_0 gives.
 *
 * Weights stay in ggml's layout: for each group of 8 blocks the tile gathers, per chunk i,
 * the same 8 elements of the 8 blocks into one register (a qword transpose), once per row
 * for all the tokens of the call. Weights become unsigned bytes u = w + K (Q8_0, IQ4_NL:
 * K = 128; Q4_0: the nibble, K = 8), so one vpdpbusd per chunk gives Σ u·y in two int32
 * lanes per block, and the accumulator starts at K·(−Σy) (ns shifted left by log2 K): no sign
 * work per token. A group then costs 4 vpdpbusd, one conversion, one multiply and one fma
 * per (row, token). VNNI is written as inline asm (see qdot_avx512.c for why); dispatch.c
 * installs these only where cpuid reports AVX512-VNNI. */
#include "kernels.h"
#include "blocks.h"
#include "unaligned.h"
#include "avx512_h8.h"

#include <immintrin.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

#define GROUP_BYTES 384

/* acc + Σ u·y over each 4 bytes, y read from memory (a memory operand: no register). */
AI __m512i dpbusd_m(__m512i acc, __m512i u, const uint8_t *p)
{
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "m"(*(const __m512i_u *)p));
    return acc;
}

/* out[k * os] = sum of the 16 lanes of v[k], k < 8: a shuffle tree (25 instructions for
 * eight sums instead of eight separate reductions). */
AI void hsum8(__m512 v0, __m512 v1, __m512 v2, __m512 v3, __m512 v4, __m512 v5, __m512 v6, __m512 v7, float *out,
           size_t os)
{
    const __m512 v[8] = {v0, v1, v2, v3, v4, v5, v6, v7};
    __m512 m[4], q[2];
    for (int k = 0; k < 4; k++) /* halves folded: [v2k 8 lanes, v2k+1 8 lanes] */
        m[k] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0x44), _mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0xEE));
    for (int k = 0; k < 2; k++) /* 128-bit lane j: 4 partial sums of v[4k + j] */
        q[k] = _mm512_add_ps(_mm512_shuffle_f32x4(m[2 * k], m[2 * k + 1], 0x88), _mm512_shuffle_f32x4(m[2 * k], m[2 * k + 1], 0xDD));
    const __m512 p = _mm512_add_ps(_mm512_unpacklo_ps(q[0], q[1]), _mm512_unpackhi_ps(q[0], q[1]));
    const __m512 f = _mm512_add_ps(p, _mm512_permute_ps(p, 0x4E)); /* lane 4j: v[j], 4j+1: v[4+j] */
    float t[16];
    _mm512_storeu_ps(t, f);
    for (int j = 0; j < 4; j++) {
        out[j * os] = t[4 * j];
        out[(4 + j) * os] = t[4 * j + 1];
    }
}

void qb_quantize_q8_0_avx512(const float *, void *, int);

/* ---- activations ------------------------------------------------------------------------ */

void qb_quantize_act_tile_avx512(const float *x, void *vy, int n)
{
    const int nb = n / 32, ng = (nb + 7) / 8;
    uint8_t *y = vy;
    for (int g = 0; g < ng; g++) {
        qb_block_q8_0 blk[8];
        const int cnt = nb - g * 8 < 8 ? nb - g * 8 : 8;
        memset(blk, 0, sizeof blk);
        qb_quantize_q8_0_avx512(x + (size_t)g * 256, blk, cnt * 32);
        uint8_t *o = y + (size_t)g * GROUP_BYTES;
        float dy[16];
        int32_t ns[16];
        for (int b = 0; b < 8; b++) {
            const float d = _cvtsh_ss(blk[b].d);
            int s = 0;
            for (int j = 0; j < 32; j++) s += blk[b].qs[j];
            dy[2 * b] = dy[2 * b + 1] = d;
            ns[2 * b] = -s;
            ns[2 * b + 1] = 0;
            for (int i = 0; i < 4; i++) memcpy(o + 128 + 64 * i + 8 * b, blk[b].qs + 8 * i, 8);
        }
        memcpy(o, dy, sizeof dy);
        memcpy(o + 64, ns, sizeof ns);
    }
}

/* ---- weights ------------------------------------------------------------------------------ */

enum { G_Q8_0, G_Q4_0, G_IQ4_NL };
#define GBS(T) ((T) == G_Q8_0 ? 34 : 18)
#define GSHIFT(T) ((T) == G_Q4_0 ? 3 : 7)

/* A group of 8 weight blocks as the tile multiplies them. */
typedef struct {
    __m512i u[4]; /* chunk i: bytes 8b..8b+7 = block b's elements 8i..8i+7, as u = w + K */
    __m512 dw;    /* lanes 2b, 2b+1: block b's scale */
} wgroup;

/* Scales of 8 blocks bs bytes apart, each in two lanes. */
AI __m512 scales8(const uint8_t *p, const int bs)
{
    const __m512 d = _mm512_castps256_ps512(load_h8(p, bs));
    return _mm512_permutexvar_ps(_mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0), d);
}

AI __m512i load4x16(const uint8_t *p, const int bs)
{
    __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)p));
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + bs)), 1);
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + 2 * bs)), 2);
    return _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + 3 * bs)), 3);
}

/* The 8 blocks at p (all present). */
AI void wgroup_load(wgroup *g, const uint8_t *p, const int T)
{
    const int bs = GBS(T);
    g->dw = scales8(p, bs);
    if (T == G_Q8_0) {
        /* Z_k = blocks 2k, 2k+1 (qwords q0..q3 of each); transpose to chunks */
        __m512i z[4];
        for (int k = 0; k < 4; k++)
            z[k] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(p + 2 * k * bs + 2))),
                                      _mm256_loadu_si256((const __m256i *)(p + (2 * k + 1) * bs + 2)), 1);
        /* lo: [b0q0 b1q0 b2q0 b3q0 b0q1 b1q1 b2q1 b3q1], hi: same with q2, q3 */
        const __m512i i01 = _mm512_set_epi64(13, 9, 5, 1, 12, 8, 4, 0), i23 = _mm512_set_epi64(15, 11, 7, 3, 14, 10, 6, 2);
        const __m512i a01 = _mm512_permutex2var_epi64(z[0], i01, z[1]), b01 = _mm512_permutex2var_epi64(z[2], i01, z[3]);
        const __m512i a23 = _mm512_permutex2var_epi64(z[0], i23, z[1]), b23 = _mm512_permutex2var_epi64(z[2], i23, z[3]);
        const __m512i k80 = _mm512_set1_epi8((char)0x80);
        g->u[0] = _mm512_xor_si512(_mm512_shuffle_i64x2(a01, b01, 0x44), k80);
        g->u[1] = _mm512_xor_si512(_mm512_shuffle_i64x2(a01, b01, 0xEE), k80);
        g->u[2] = _mm512_xor_si512(_mm512_shuffle_i64x2(a23, b23, 0x44), k80);
        g->u[3] = _mm512_xor_si512(_mm512_shuffle_i64x2(a23, b23, 0xEE), k80);
        return;
    }
    /* 4-bit: A = bytes 0-7 of every block, B = bytes 8-15 */
    const __m512i lo4 = load4x16(p + 2, bs), hi4 = load4x16(p + 2 + 4 * bs, bs);
    const __m512i A = _mm512_permutex2var_epi64(lo4, _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0), hi4);
    const __m512i B = _mm512_permutex2var_epi64(lo4, _mm512_set_epi64(15, 13, 11, 9, 7, 5, 3, 1), hi4);
    const __m512i m4 = _mm512_set1_epi8(15);
    __m512i c0 = _mm512_and_si512(A, m4), c1 = _mm512_and_si512(B, m4);
    __m512i c2 = _mm512_and_si512(_mm512_srli_epi16(A, 4), m4), c3 = _mm512_and_si512(_mm512_srli_epi16(B, 4), m4);
    if (T == G_IQ4_NL) { /* code book value + 128 */
        const __m512i tab = _mm512_broadcast_i32x4(
            _mm_setr_epi8(1, 24, 45, 63, 79, 93, 106, 118, (char)129, (char)141, (char)153, (char)166, (char)181, (char)197,
                          (char)217, (char)241));
        c0 = _mm512_shuffle_epi8(tab, c0);
        c1 = _mm512_shuffle_epi8(tab, c1);
        c2 = _mm512_shuffle_epi8(tab, c2);
        c3 = _mm512_shuffle_epi8(tab, c3);
    }
    g->u[0] = c0;
    g->u[1] = c1;
    g->u[2] = c2;
    g->u[3] = c3;
}

/* The last cnt (< 8) blocks at p, padded with zero blocks (scale 0). */
AI void wgroup_load_tail(wgroup *g, const uint8_t *p, int cnt, const int T)
{
    /* masked loads, no library call: the caller's accumulators stay in registers */
    uint8_t tmp[5 * 64];
    const int len = cnt * GBS(T);
    for (int off = 0; off < 5 * 64; off += 64) {
        const int k = len - off;
        const __mmask64 m = k >= 64 ? ~(__mmask64)0 : k > 0 ? ((__mmask64)1 << k) - 1 : 0;
        _mm512_storeu_si512(tmp + off, _mm512_maskz_loadu_epi8(m, p + off));
    }
    wgroup_load(g, tmp, T);
}

/* acc[r][c] += group g of rows r · token c, for r < R, c < C. */
AI void gemm_group(__m512 acc[2][8], const wgroup *wg, const uint8_t *xa, size_t xst, int g, const int R, const int C,
                   const int T)
{
    #pragma GCC unroll 16
    for (int c = 0; c < C; c++) {
        const uint8_t *a = xa + c * xst + (size_t)g * GROUP_BYTES;
        const __m512 dy = _mm512_loadu_ps(a);
        const __m512i init = _mm512_slli_epi32(_mm512_loadu_si512(a + 64), GSHIFT(T));
        #pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m512i s = dpbusd_m(init, wg[r].u[0], a + 128);
            s = dpbusd_m(s, wg[r].u[1], a + 192);
            s = dpbusd_m(s, wg[r].u[2], a + 256);
            s = dpbusd_m(s, wg[r].u[3], a + 320);
            acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(wg[r].dw, dy), acc[r][c]);
        }
    }
}

/* y[c*ldy + r] = row r of w · token c, r < R, c < C. The full groups run in a loop without
 * calls (the accumulators stay in registers); a last partial group goes through a padded
 * copy. */
AI void gemm_body(int n, const uint8_t *w, size_t wst, const uint8_t *xa, size_t xst, float *y, size_t ldy, const int R,
                  const int C, const int T)
{
    const int nb = n / 32, nfull = nb / 8, bs = GBS(T);
    __m512 acc[2][8];
    #pragma GCC unroll 16
    for (int r = 0; r < R; r++)
        #pragma GCC unroll 16
        for (int c = 0; c < C; c++) acc[r][c] = _mm512_setzero_ps();
    wgroup wg[2];
    for (int g = 0; g < nfull; g++) {
        #pragma GCC unroll 4
        for (int r = 0; r < R; r++) wgroup_load(&wg[r], w + r * wst + (size_t)g * 8 * bs, T);
        gemm_group(acc, wg, xa, xst, g, R, C, T);
    }
    if (nb % 8) {
        #pragma GCC unroll 4
        for (int r = 0; r < R; r++) wgroup_load_tail(&wg[r], w + r * wst + (size_t)nfull * 8 * bs, nb % 8, T);
        gemm_group(acc, wg, xa, xst, nfull, R, C, T);
    }
    #pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        if (C == 8) {
            hsum8(acc[r][0], acc[r][1], acc[r][2], acc[r][3], acc[r][4], acc[r][5], acc[r][6], acc[r][7], y + r, ldy);
            continue;
        }
        #pragma GCC unroll 16
        for (int c = 0; c < C; c++) y[c * ldy + r] = _mm512_reduce_add_ps(acc[r][c]);
    }
}

#define GEMM_ENTRY(name, T)                                                                                      \
    void qb_gemm_##name##_avx512vnni(int n, const void *w, size_t wst, int nr, const void *xa, size_t xst, int nc, \
                                     float *y, size_t ldy)                                                       \
    {                                                                                                            \
        const uint8_t *wp = w, *xp = xa;                                                                         \
        switch ((nr == 2 ? 8 : 0) + nc - 1) {                                                                    \
        case 0: gemm_body(n, wp, wst, xp, xst, y, ldy, 1, 1, T); break;                                          \
        case 1: gemm_body(n, wp, wst, xp, xst, y, ldy, 1, 2, T); break;                                          \
        case 2: gemm_body(n, wp, wst, xp, xst, y, ldy, 1, 3, T); break;                                          \
        case 3: gemm_body(n, wp, wst, xp, xst, y, ldy, 1, 4, T); break;                                          \
        case 4: gemm_body(n, wp, wst, xp, xst, y, ldy, 1, 5, T); break;                                          \
        case 5: gemm_body(n, wp, wst, xp, xst, y, ldy, 1, 6, T); break;                                          \
        case 6: gemm_body(n, wp, wst, xp, xst, y, ldy, 1, 7, T); break;                                          \
        case 7: gemm_body(n, wp, wst, xp, xst, y, ldy, 1, 8, T); break;                                          \
        case 8: gemm_body(n, wp, wst, xp, xst, y, ldy, 2, 1, T); break;                                          \
        case 9: gemm_body(n, wp, wst, xp, xst, y, ldy, 2, 2, T); break;                                          \
        case 10: gemm_body(n, wp, wst, xp, xst, y, ldy, 2, 3, T); break;                                         \
        case 11: gemm_body(n, wp, wst, xp, xst, y, ldy, 2, 4, T); break;                                         \
        case 12: gemm_body(n, wp, wst, xp, xst, y, ldy, 2, 5, T); break;                                         \
        case 13: gemm_body(n, wp, wst, xp, xst, y, ldy, 2, 6, T); break;                                         \
        case 14: gemm_body(n, wp, wst, xp, xst, y, ldy, 2, 7, T); break;                                         \
        default: gemm_body(n, wp, wst, xp, xst, y, ldy, 2, 8, T); break;                                         \
        }                                                                                                        \
    }

GEMM_ENTRY(q8_0, G_Q8_0)
GEMM_ENTRY(q4_0, G_Q4_0)
GEMM_ENTRY(iq4_nl, G_IQ4_NL)
