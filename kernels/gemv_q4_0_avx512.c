/* gemv_q4_0_avx512.c — generation (one token) for Q4_0 weight rows with AVX512-VNNI: the row
 * is read as plain 64-byte windows, straight from ggml's layout, and the token's activations
 * are laid out once per matmul to match those windows byte for byte. The spec is qdot_ref.c
 * (Q4_0 · Q8_0): the same integers and the same f16 scales, only the float summation order
 * differs.
 *
 * Why: a Q4_0 block is 18 bytes (f16 scale, 16 bytes of nibbles), so the per-block dot
 * product spends most of its instructions gathering 16-byte pieces and sign-fixing them.
 * Here 32 blocks (576 bytes) are exactly 9 windows of 64 bytes. Window r, byte j holds, when
 * it is a nibble byte of block b at offset o = 2..17 (j = 18·b + o − 64·r), the elements
 * o − 2 (low nibble) and o + 14 (high nibble) of block b; scale bytes meet activations of 0.
 * An int32 lane (4 bytes) never holds nibbles of two blocks (the 2 scale bytes sit between
 * them and 18·b is even), so after
 *     s = init + vpdpbusd(low nibbles, ylo) + vpdpbusd(high nibbles, yhi)
 * lane l of window r holds, exactly, Σ (code − 8) · q over its 8 elements of block
 * b(r, l) = (64·r + 4·l) / 18 (init = −8 · Σ q of those elements). The 32 f16 weight scales
 * of a group are gathered from its windows once (word permutes), converted and multiplied by
 * the activation scales; each window then takes its lanes' d_w · d_y with one float permute:
 * about 10 instructions per 64 bytes of weights, a third of what the per-block dot product
 * needs.
 *
 * Activation layout (qb_act_gemv_row_bytes(n): groups of 32 Q8_0 blocks, the last one padded
 * with zeros), per group 1856 bytes:
 *   f32 dy[32]               the Q8_0 scale of each block (0 past the row's end)
 *   then per window (9): i8 ylo[64], i8 yhi[64]: the activations the window's low / high
 *                            nibbles meet (0 where the byte is a scale byte or past the row's
 *                            end); i32 init[16]: −8 · Σ (ylo + yhi) over each lane's 4 bytes
 * dispatch.c installs this only where cpuid reports AVX512-VNNI. */
#include "kernels.h"
#include "blocks.h"

#include <immintrin.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

enum {
    GROUP_BLOCKS = 32,
    WINDOWS = 9,
    GROUP_ROW_BYTES = GROUP_BLOCKS * 18,
    WINDOW_ACT_BYTES = 192,
    GROUP_ACT_BYTES = GROUP_BLOCKS * 4 + WINDOWS * WINDOW_ACT_BYTES,
};
_Static_assert(GROUP_ROW_BYTES == WINDOWS * 64, "32 Q4_0 blocks are 9 windows of 64 bytes");

void qb_quantize_q8_0_avx512(const float *, void *, int);

/* Block of lane l in window r (see above). */
#define LANE_BLOCK(r, l) ((64 * (r) + 4 * (l)) / 18)
#define LROW(r)                                                                                                   \
    {LANE_BLOCK(r, 0), LANE_BLOCK(r, 1), LANE_BLOCK(r, 2),  LANE_BLOCK(r, 3),  LANE_BLOCK(r, 4),  LANE_BLOCK(r, 5),  \
     LANE_BLOCK(r, 6), LANE_BLOCK(r, 7), LANE_BLOCK(r, 8),  LANE_BLOCK(r, 9),  LANE_BLOCK(r, 10), LANE_BLOCK(r, 11), \
     LANE_BLOCK(r, 12), LANE_BLOCK(r, 13), LANE_BLOCK(r, 14), LANE_BLOCK(r, 15)}
static const int32_t lane_blocks[WINDOWS][16] = {LROW(0), LROW(1), LROW(2), LROW(3), LROW(4),
                                                 LROW(5), LROW(6), LROW(7), LROW(8)};
/* Block b's f16 scale is word 9·b of the group: in the window pair (2k, 2k+1) for b in
 * [ceil(64k/9), floor((64k+63)/9)], i.e. 0-7, 8-14, 15-21, 22-28, and 29-31 in window 8. */
#define GW(k, b) ((9 * (b) - 64 * (k)) & 63)
#define GROW(k)                                                                                                   \
    {GW(k, 0),  GW(k, 1),  GW(k, 2),  GW(k, 3),  GW(k, 4),  GW(k, 5),  GW(k, 6),  GW(k, 7),  GW(k, 8),  GW(k, 9),  \
     GW(k, 10), GW(k, 11), GW(k, 12), GW(k, 13), GW(k, 14), GW(k, 15), GW(k, 16), GW(k, 17), GW(k, 18), GW(k, 19), \
     GW(k, 20), GW(k, 21), GW(k, 22), GW(k, 23), GW(k, 24), GW(k, 25), GW(k, 26), GW(k, 27), GW(k, 28), GW(k, 29), \
     GW(k, 30), GW(k, 31)}
static const uint16_t scale_words[5][32] = {GROW(0), GROW(1), GROW(2), GROW(3), GROW(4)};

size_t qb_act_gemv_row_bytes(int n) { return (size_t)((n / 32 + GROUP_BLOCKS - 1) / GROUP_BLOCKS) * GROUP_ACT_BYTES; }

/* ---- activations ------------------------------------------------------------------------ */

void qb_quantize_act_gemv_q4_0_avx512(const float *x, void *vx, int n)
{
    const int nb = n / 32, ng = (nb + GROUP_BLOCKS - 1) / GROUP_BLOCKS;
    uint8_t *out = vx;
    memset(out, 0, (size_t)ng * GROUP_ACT_BYTES);
    qb_block_q8_0 blk[GROUP_BLOCKS];
    for (int g = 0; g < ng; g++) {
        const int cnt = nb - g * GROUP_BLOCKS < GROUP_BLOCKS ? nb - g * GROUP_BLOCKS : GROUP_BLOCKS;
        qb_quantize_q8_0_avx512(x + (size_t)g * GROUP_BLOCKS * 32, blk, cnt * 32);
        uint8_t *og = out + (size_t)g * GROUP_ACT_BYTES;
        float dy[GROUP_BLOCKS] = {0};
        for (int b = 0; b < cnt; b++) dy[b] = _cvtsh_ss(blk[b].d);
        memcpy(og, dy, sizeof dy);
        for (int r = 0; r < WINDOWS; r++) {
            uint8_t *o = og + GROUP_BLOCKS * 4 + r * WINDOW_ACT_BYTES;
            int8_t *ylo = (int8_t *)o, *yhi = (int8_t *)o + 64;
            int32_t init[16] = {0};
            for (int l = 0; l < 16; l++) {
                const int b = LANE_BLOCK(r, l);
                if (b >= cnt) continue;
                int s = 0;
                for (int i = 0; i < 4; i++) {
                    const int j = 4 * l + i, off = 64 * r + j - 18 * b;
                    if (off < 2 || off >= 18) continue; /* a scale byte (of block b or b + 1) */
                    ylo[j] = blk[b].qs[off - 2];
                    yhi[j] = blk[b].qs[off + 14];
                    s += ylo[j] + yhi[j];
                }
                init[l] = -8 * s;
            }
            memcpy(o + 128, init, sizeof init);
        }
    }
}

/* ---- the row ------------------------------------------------------------------------------ */

/* acc + Σ u·y over each 4 bytes, y read from memory (VNNI as inline asm: see qdot_avx512.c). */
AI __m512i dpbusd_m(__m512i acc, __m512i u, const uint8_t *p)
{
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "m"(*(const __m512i_u *)p));
    return acc;
}

/* Window r (bytes cur) against its activations xa; d_lo, d_hi: d_w · d_y of blocks 0-15, 16-31. */
AI __m512 window(__m512 acc, __m512i cur, const uint8_t *xa, __m512 d_lo, __m512 d_hi, const int r)
{
    const __m512i m4 = _mm512_set1_epi8(15);
    const __m512i lo = _mm512_and_si512(cur, m4), hi = _mm512_and_si512(_mm512_srli_epi16(cur, 4), m4);
    __m512i s = _mm512_loadu_si512(xa + 128);
    s = dpbusd_m(s, lo, xa);
    s = dpbusd_m(s, hi, xa + 64);
    const __m512 d = _mm512_permutex2var_ps(d_lo, _mm512_loadu_si512(lane_blocks[r]), d_hi);
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), d, acc);
}

AI __m512i words(int k) { return _mm512_loadu_si512(scale_words[k]); }

/* One group of 32 blocks; bytes: how many of its 576 bytes exist (576 but in a row's last,
 * partial group, whose missing bytes read as zeros: scale 0, activations 0), nwin: the windows
 * they occupy (a compile-time constant where the caller can make it one, so the loops unroll). */
AI void group(__m512 acc[3], const uint8_t *w, const uint8_t *xa, const int bytes, const int nwin)
{
    __m512i v[WINDOWS];
    #pragma GCC unroll 9
    for (int r = 0; r < WINDOWS; r++) {
        if (r >= nwin) {
            v[r] = _mm512_setzero_si512();
        } else if (bytes == GROUP_ROW_BYTES) {
            v[r] = _mm512_loadu_si512(w + 64 * r);
        } else {
            const int k = bytes - 64 * r;
            const __mmask64 m = k >= 64 ? ~(__mmask64)0 : k > 0 ? ((__mmask64)1 << k) - 1 : 0;
            v[r] = _mm512_maskz_loadu_epi8(m, w + 64 * r);
        }
    }
    /* the 32 f16 scales in block order (see scale_words) */
    __m512i h = _mm512_permutex2var_epi16(v[0], words(0), v[1]);
    h = _mm512_mask_blend_epi16(0x00007F00u, h, _mm512_permutex2var_epi16(v[2], words(1), v[3]));
    h = _mm512_mask_blend_epi16(0x003F8000u, h, _mm512_permutex2var_epi16(v[4], words(2), v[5]));
    h = _mm512_mask_blend_epi16(0x1FC00000u, h, _mm512_permutex2var_epi16(v[6], words(3), v[7]));
    h = _mm512_mask_blend_epi16(0xE0000000u, h, _mm512_permutexvar_epi16(words(4), v[8]));
    const float *dy = (const float *)xa;
    const __m512 d_lo = _mm512_mul_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(h)), _mm512_loadu_ps(dy));
    const __m512 d_hi = _mm512_mul_ps(_mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1)), _mm512_loadu_ps(dy + 16));
    #pragma GCC unroll 9
    for (int r = 0; r < nwin; r++)
        acc[r % 3] = window(acc[r % 3], v[r], xa + GROUP_BLOCKS * 4 + r * WINDOW_ACT_BYTES, d_lo, d_hi, r);
}

float qb_gemv_q4_0_avx512vnni(int n, const void *vw, const void *vx)
{
    const uint8_t *w = vw, *xa = vx;
    const int nb = n / 32, nfull = nb / GROUP_BLOCKS, rest = nb % GROUP_BLOCKS;
    __m512 acc[3] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int g = 0; g < nfull; g++)
        group(acc, w + (size_t)g * GROUP_ROW_BYTES, xa + (size_t)g * GROUP_ACT_BYTES, GROUP_ROW_BYTES, WINDOWS);
    /* the last, partial group: rows of 512 + k·1024 elements (16 blocks left, 5 windows) are the
     * common case and get their own unrolled copy */
    const uint8_t *wt = w + (size_t)nfull * GROUP_ROW_BYTES, *xt = xa + (size_t)nfull * GROUP_ACT_BYTES;
    if (rest == 16)
        group(acc, wt, xt, 16 * 18, 5);
    else if (rest)
        group(acc, wt, xt, rest * 18, (rest * 18 + 63) / 64);
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), acc[2]));
}
