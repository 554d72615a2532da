/* gemm_q8_avx512.c — prompt-processing GEMM tile for the 32-element formats that meet Q8_0
 * activations (Q8_0, Q4_0, IQ4_NL), with AVX512-VNNI: 16 weight rows × up to 16 tokens per
 * call, one output row per 32-bit lane, every product summed in registers. The spec is
 * qdot_ref.c (same integers, same f16-rounded scales; only the float summation order differs).
 *
 * Activations are quantized once per matmul (qb_act_tile_row_bytes(n) bytes a token):
 *   i8  q[n]       the Q8_0 quants, block after block
 *   f32 d[nb]      block b's scale (the f16 value Q8_0 stores)
 *   i32 n8[nb]     −8 · Σ q over block b     (Q4_0: weights are nibbles u = w + 8)
 *   i32 n128[nb]   −128 · Σ q over block b   (Q8_0, IQ4_NL: u = w + 128)
 * The quants and scales are exactly those qb_quantize_q8_0 gives.
 *
 * Weights stay in ggml's layout; the tile transposes them on the fly, once per call for all
 * its tokens: for each block, the 16 rows' 16-byte halves are loaded four rows to a register
 * and transposed 4 × 4 in 32-bit words, so register i holds bytes 4i..4i+3 of every row
 * (unsigned u = w + K), and the scales come in one gather. A token then meets a block with 8
 * vpdpbusd whose second operand is one 32-bit word of its quants broadcast to the 16 rows
 * (embedded broadcast: no register, no shuffle), started from K·(−Σq), and one conversion,
 * multiply and fma: 11 instructions for 512 multiply-adds, with nothing summed across lanes
 * at the end. Each activation byte fetched serves 16 rows (the 2-row tile it replaces fetched
 * every activation byte per row pair, and ran at the L2's pace). VNNI is written as inline asm
 * (see qdot_avx512.c for why); dispatch.c installs these only where cpuid reports
 * AVX512-VNNI. */
#include "kernels.h"
#include "blocks.h"

#include <immintrin.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

void qb_quantize_q8_0_avx512(const float *, void *, int);

/* ---- activations ------------------------------------------------------------------------ */

void qb_quantize_act_tile_avx512(const float *x, void *vy, int n)
{
    const int nb = n / 32;
    uint8_t *q = vy;
    float *d = (float *)(q + n);
    int32_t *n8 = (int32_t *)(d + nb), *n128 = n8 + nb;
    for (int b0 = 0; b0 < nb; b0 += 8) {
        qb_block_q8_0 blk[8];
        const int cnt = nb - b0 < 8 ? nb - b0 : 8;
        qb_quantize_q8_0_avx512(x + (size_t)b0 * 32, blk, cnt * 32);
        for (int i = 0; i < cnt; i++) {
            const int b = b0 + i;
            const __m256i v = _mm256_loadu_si256((const __m256i *)blk[i].qs);
            _mm256_storeu_si256((__m256i *)(q + (size_t)b * 32), v);
            /* Σ q: widen to 16 bits, pairwise to 32, then across the register */
            const __m512i w = _mm512_madd_epi16(_mm512_cvtepi8_epi16(v), _mm512_set1_epi16(1));
            const int s = _mm512_reduce_add_epi32(w);
            d[b] = _cvtsh_ss(blk[i].d);
            n8[b] = -8 * s;
            n128[b] = -128 * s;
        }
    }
}

/* ---- weights ------------------------------------------------------------------------------ */

enum { G_Q8_0, G_Q4_0, G_IQ4_NL };
#define GBS(T) ((T) == G_Q8_0 ? 34 : 18)
#define ROWS QB_GEMM_ROWS

/* acc + Σ u·y over each 4 bytes, y the 32-bit word at p broadcast to every lane. */
AI __m512i dpbusd_b(__m512i acc, __m512i u, const uint8_t *p)
{
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(u), "m"(*(const int32_t *)p));
    return acc;
}

/* Four 16-byte rows at p + o[0..3] in the four 128-bit lanes. */
AI __m512i load4x16(const uint8_t *p, const size_t o[4])
{
    __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(p + o[0])));
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + o[1])), 1);
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + o[2])), 2);
    return _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + o[3])), 3);
}

/* The 16 bytes at p + off[r] of rows r = 0..15 as q[i], i < 4: lane r = bytes 4i..4i+3 of
 * row r. Register k holds rows k, k+4, k+8, k+12 (lane group m: row 4m + k); two rounds of
 * unpacks then put word i of row 4m + k in lane 4m + k of q[i]. */
AI void rows16x16(const uint8_t *p, const size_t off[ROWS], __m512i q[4])
{
    __m512i z[4];
    for (int k = 0; k < 4; k++) {
        const size_t o[4] = {off[k], off[k + 4], off[k + 8], off[k + 12]};
        z[k] = load4x16(p, o);
    }
    const __m512i t0 = _mm512_unpacklo_epi32(z[0], z[1]), t1 = _mm512_unpackhi_epi32(z[0], z[1]);
    const __m512i t2 = _mm512_unpacklo_epi32(z[2], z[3]), t3 = _mm512_unpackhi_epi32(z[2], z[3]);
    q[0] = _mm512_unpacklo_epi64(t0, t2);
    q[1] = _mm512_unpackhi_epi64(t0, t2);
    q[2] = _mm512_unpacklo_epi64(t1, t3);
    q[3] = _mm512_unpackhi_epi64(t1, t3);
}

/* Block b of the 16 rows at w + off[r] as the tile multiplies it: u[i] lane r = row r's
 * elements 4i..4i+3 as unsigned bytes (w + K), dw lane r = row r's scale (gathered at the
 * offsets vo, the same as off). */
AI void wblock_load(const uint8_t *w, const size_t off[ROWS], __m512i vo, int b, __m512i u[8], __m512 *dw, const int T)
{
    const uint8_t *p = w + (size_t)b * GBS(T);
    const __m512i dd = _mm512_i32gather_epi32(vo, p, 1); /* the f16 scale in each word's low half */
    *dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dd));
    __m512i q[4];
    rows16x16(p + 2, off, q);
    if (T == G_Q8_0) {
        const __m512i k80 = _mm512_set1_epi8((char)0x80);
        __m512i h[4];
        rows16x16(p + 18, off, h);
        for (int i = 0; i < 4; i++) {
            u[i] = _mm512_xor_si512(q[i], k80);
            u[4 + i] = _mm512_xor_si512(h[i], k80);
        }
        return;
    }
    /* 4-bit: byte j holds element j (low nibble) and element j + 16 (high) */
    const __m512i m4 = _mm512_set1_epi8(15);
    for (int i = 0; i < 4; i++) {
        u[i] = _mm512_and_si512(q[i], m4);
        u[4 + i] = _mm512_and_si512(_mm512_srli_epi16(q[i], 4), m4);
    }
    if (T == G_IQ4_NL) { /* code book value + 128 */
        const __m512i tab = _mm512_broadcast_i32x4(
            _mm_setr_epi8(1, 24, 45, 63, 79, 93, 106, 118, (char)129, (char)141, (char)153, (char)166, (char)181, (char)197,
                          (char)217, (char)241));
        for (int i = 0; i < 8; i++) u[i] = _mm512_shuffle_epi8(tab, u[i]);
    }
}

/* y[c*ldy + r] = row r of w · token c for r < nr, c < C. Rows are wst bytes apart; with
 * fewer than 16 (TAIL) the missing lanes read the last row again and are not stored. */
AI void gemm_body(int n, const uint8_t *w, size_t wst, int nr, const uint8_t *xa, size_t xst, float *y, size_t ldy,
                  const int C, const int T, const bool TAIL)
{
    const int nb = n / 32;
    const size_t koff = (size_t)n + (size_t)nb * (T == G_Q4_0 ? 4 : 8); /* n8 or n128 */
    size_t off[ROWS];
    for (int r = 0; r < ROWS; r++) off[r] = (size_t)(TAIL && r >= nr ? nr - 1 : r) * wst;
    const __m512i vo = _mm512_setr_epi32((int)off[0], (int)off[1], (int)off[2], (int)off[3], (int)off[4], (int)off[5],
                                         (int)off[6], (int)off[7], (int)off[8], (int)off[9], (int)off[10], (int)off[11],
                                         (int)off[12], (int)off[13], (int)off[14], (int)off[15]);
    __m512 acc[16];
    #pragma GCC unroll 16
    for (int c = 0; c < C; c++) acc[c] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m512i u[8];
        __m512 dw;
        wblock_load(w, off, vo, b, u, &dw, T);
        #pragma GCC unroll 16
        for (int c = 0; c < C; c++) {
            const uint8_t *a = xa + c * xst;
            const uint8_t *q = a + (size_t)b * 32;
            __m512i s = _mm512_set1_epi32(((const int32_t *)(a + koff))[b]);
            #pragma GCC unroll 8
            for (int i = 0; i < 8; i++) s = dpbusd_b(s, u[i], q + 4 * i);
            const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(((const float *)(a + n))[b]));
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), scale, acc[c]);
        }
    }
    const __mmask16 keep = (__mmask16)(TAIL ? (1u << nr) - 1 : 0xFFFFu);
    #pragma GCC unroll 16
    for (int c = 0; c < C; c++) _mm512_mask_storeu_ps(y + c * ldy, keep, acc[c]);
}

AI void gemm_rows(int n, const uint8_t *w, size_t wst, int nr, const uint8_t *xa, size_t xst, float *y, size_t ldy,
                  const int C, const int T)
{
    if (nr >= ROWS) gemm_body(n, w, wst, ROWS, xa, xst, y, ldy, C, T, false);
    else gemm_body(n, w, wst, nr, xa, xst, y, ldy, C, T, true);
}

#define GEMM_ENTRY(name, T)                                                                                      \
    void qb_gemm_##name##_avx512vnni(int n, const void *w, size_t wst, int nr, const void *xa, size_t xst, int nc, \
                                     float *y, size_t ldy)                                                       \
    {                                                                                                            \
        const uint8_t *wp = w, *xp = xa;                                                                         \
        switch (nc) {                                                                                            \
        case 1: gemm_rows(n, wp, wst, nr, xp, xst, y, ldy, 1, T); break;                                         \
        case 2: gemm_rows(n, wp, wst, nr, xp, xst, y, ldy, 2, T); break;                                         \
        case 3: gemm_rows(n, wp, wst, nr, xp, xst, y, ldy, 3, T); break;                                         \
        case 4: gemm_rows(n, wp, wst, nr, xp, xst, y, ldy, 4, T); break;                                         \
        case 5: gemm_rows(n, wp, wst, nr, xp, xst, y, ldy, 5, T); break;                                         \
        case 6: gemm_rows(n, wp, wst, nr, xp, xst, y, ldy, 6, T); break;                                         \
        case 7: gemm_rows(n, wp, wst, nr, xp, xst, y, ldy, 7, T); break;                                         \
        case 8: gemm_rows(n, wp, wst, nr, xp, xst, y, ldy, 8, T); break;                                         \
        case 9: gemm_rows(n, wp, wst, nr, xp, xst, y, ldy, 9, T); break;                                         \
        case 10: gemm_rows(n, wp, wst, nr, xp, xst, y, ldy, 10, T); break;                                       \
        case 11: gemm_rows(n, wp, wst, nr, xp, xst, y, ldy, 11, T); break;                                       \
        case 12: gemm_rows(n, wp, wst, nr, xp, xst, y, ldy, 12, T); break;                                       \
        case 13: gemm_rows(n, wp, wst, nr, xp, xst, y, ldy, 13, T); break;                                       \
        case 14: gemm_rows(n, wp, wst, nr, xp, xst, y, ldy, 14, T); break;                                       \
        case 15: gemm_rows(n, wp, wst, nr, xp, xst, y, ldy, 15, T); break;                                       \
        default: gemm_rows(n, wp, wst, nr, xp, xst, y, ldy, 16, T); break;                                       \
        }                                                                                                        \
    }

GEMM_ENTRY(q8_0, G_Q8_0)
GEMM_ENTRY(q4_0, G_Q4_0)
GEMM_ENTRY(iq4_nl, G_IQ4_NL)
