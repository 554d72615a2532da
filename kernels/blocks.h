/* blocks.h — the byte layout of every ggml block format we read, one packed struct per type
 * with its size checked at compile time, and the per-format scalar dequantizers that
 * qb_dequant_row_ref dispatches to. Layout facts follow ggml's ggml-common.h (GGUF stores
 * blocks exactly like this, little-endian). Half-precision fields are raw IEEE binary16 bits
 * (convert with qb_f16_to_f32). Structs are packed (alignment 1) so a block may be read from
 * any address in a mapped file.
 *
 * Naming of the element order, used in the comments below: a "sub-block" is the group of
 * elements that shares one scale (and min); element e of a block is output position e. */
#ifndef QB_BLOCKS_H
#define QB_BLOCKS_H

#include <stdint.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "block structs read multi-byte fields natively: little-endian hosts only"
#endif

#define QB_PACKED __attribute__((packed))

#define QB_QK32 32  /* elements per block of the legacy formats and IQ4_NL */
#define QB_QK_K 256 /* elements per super-block of the K formats and IQ4_XS */

/* Q4_0: x = d * (q - 8), q in 0..15. Byte j holds element j (low nibble) and j+16 (high). */
typedef struct QB_PACKED {
    uint16_t d;      /* f16 scale */
    uint8_t qs[16];  /* nibbles */
} qb_block_q4_0;
_Static_assert(sizeof(qb_block_q4_0) == 18, "q4_0 block is 18 bytes");

/* Q4_1: x = d * q + m, q in 0..15; nibble order as Q4_0. */
typedef struct QB_PACKED {
    uint16_t d;      /* f16 scale */
    uint16_t m;      /* f16 offset (the block minimum) */
    uint8_t qs[16];
} qb_block_q4_1;
_Static_assert(sizeof(qb_block_q4_1) == 20, "q4_1 block is 20 bytes");

/* Q5_0: x = d * (q - 16), q in 0..31: low 4 bits as Q4_0, bit 4 of element e is bit e of the
 * little-endian 32-bit word qh. */
typedef struct QB_PACKED {
    uint16_t d;
    uint8_t qh[4];   /* fifth bits, one per element */
    uint8_t qs[16];
} qb_block_q5_0;
_Static_assert(sizeof(qb_block_q5_0) == 22, "q5_0 block is 22 bytes");

/* Q5_1: x = d * q + m, q in 0..31, bits as Q5_0. */
typedef struct QB_PACKED {
    uint16_t d;
    uint16_t m;
    uint8_t qh[4];
    uint8_t qs[16];
} qb_block_q5_1;
_Static_assert(sizeof(qb_block_q5_1) == 24, "q5_1 block is 24 bytes");

/* Q8_0: x = d * q, q a signed byte, element e in qs[e]. */
typedef struct QB_PACKED {
    uint16_t d;
    int8_t qs[32];
} qb_block_q8_0;
_Static_assert(sizeof(qb_block_q8_0) == 34, "q8_0 block is 34 bytes");

/* Q8_1: as Q8_0 plus s = d * (sum of the 32 q), the block sum a Q4_1 / Q5_1 dot product needs
 * for its offset term. Used for activations only (ggml has no Q8_1 dequantizer). */
typedef struct QB_PACKED {
    uint16_t d;      /* f16 scale */
    uint16_t s;      /* f16: d * sum(qs) */
    int8_t qs[32];
} qb_block_q8_1;
_Static_assert(sizeof(qb_block_q8_1) == 36, "q8_1 block is 36 bytes");

/* Q2_K: 16 sub-blocks of 16. x = (d * sc) * q - dmin * mn, q in 0..3, where scales[s] holds
 * sc (low nibble) and mn (high nibble) of sub-block s. Element e: half h = e/128, r = e%128;
 * q = (qs[32h + r%32] >> 2*(r/32)) & 3; sub-block s = e/16. */
typedef struct QB_PACKED {
    uint8_t scales[16];
    uint8_t qs[64];
    uint16_t d;      /* f16 scale of the sub-block scales */
    uint16_t dmin;   /* f16 scale of the sub-block mins */
} qb_block_q2_K;
_Static_assert(sizeof(qb_block_q2_K) == 84, "q2_K block is 84 bytes");

/* Q3_K: 16 sub-blocks of 16. x = (d * (sc - 32)) * (q - 4*!hbit), q in 0..3 laid out as in
 * Q2_K; the high bit of element e is bit (e/32) of hmask[e%32]. The sixteen 6-bit scales sc
 * are packed in 12 bytes: low 4 bits of sc[s] are scales[s] & 15 (s < 8) or scales[s-8] >> 4
 * (s >= 8); high 2 bits are (scales[8 + s%4] >> 2*(s/4)) & 3. */
typedef struct QB_PACKED {
    uint8_t hmask[32];
    uint8_t qs[64];
    uint8_t scales[12];
    uint16_t d;
} qb_block_q3_K;
_Static_assert(sizeof(qb_block_q3_K) == 110, "q3_K block is 110 bytes");

/* Q4_K: 8 sub-blocks of 32. x = (d * sc) * q - dmin * mn, q in 0..15. Chunk c = e/64 uses
 * qs[32c .. 32c+31]: its first 32 elements are the low nibbles (sub-block 2c), the next 32
 * the high nibbles (sub-block 2c+1). The eight 6-bit (sc, mn) pairs are packed in 12 bytes:
 * s < 4: sc = scales[s] & 63, mn = scales[s+4] & 63; s >= 4: sc = (scales[s+4] & 15) |
 * (scales[s-4] >> 6) << 4, mn = (scales[s+4] >> 4) | (scales[s] >> 6) << 4. */
typedef struct QB_PACKED {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];
    uint8_t qs[128];
} qb_block_q4_K;
_Static_assert(sizeof(qb_block_q4_K) == 144, "q4_K block is 144 bytes");

/* Q5_K: as Q4_K with a fifth bit: q in 0..31, bit 4 of element e is bit (e/32) of
 * qh[e%32]. */
typedef struct QB_PACKED {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];
    uint8_t qh[32];
    uint8_t qs[128];
} qb_block_q5_K;
_Static_assert(sizeof(qb_block_q5_K) == 176, "q5_K block is 176 bytes");

/* Q6_K: 16 sub-blocks of 16. x = (d * sc) * (q - 32), q in 0..63, sc a signed byte.
 * Half h = e/128, r = e%128, quarter k = r/32, l = r%32: low 4 bits come from
 * ql[64h + l + 32*(k&1)], low nibble for k < 2, high for k >= 2; bits 4-5 are
 * (qh[32h + l] >> 2k) & 3. */
typedef struct QB_PACKED {
    uint8_t ql[128];
    uint8_t qh[64];
    int8_t scales[16];
    uint16_t d;
} qb_block_q6_K;
_Static_assert(sizeof(qb_block_q6_K) == 210, "q6_K block is 210 bytes");

/* Q8_K: x = d * q with an f32 scale; bsums are for dot products only. */
typedef struct QB_PACKED {
    float d;
    int8_t qs[256];
    int16_t bsums[16];
} qb_block_q8_K;
_Static_assert(sizeof(qb_block_q8_K) == 292, "q8_K block is 292 bytes");

/* IQ4_NL: x = d * kvalues[q], q in 0..15, nibble order as Q4_0. */
typedef struct QB_PACKED {
    uint16_t d;
    uint8_t qs[16];
} qb_block_iq4_nl;
_Static_assert(sizeof(qb_block_iq4_nl) == 18, "iq4_nl block is 18 bytes");

/* IQ4_XS: 8 sub-blocks of 32, each laid out like an IQ4_NL block without its own scale:
 * x = (d * (ls - 32)) * kvalues[q]. The 6-bit ls of sub-block s: low 4 bits are
 * (scales_l[s/2] >> 4*(s%2)) & 15, high 2 bits (scales_h >> 2s) & 3. */
typedef struct QB_PACKED {
    uint16_t d;
    uint16_t scales_h;
    uint8_t scales_l[4];
    uint8_t qs[128];
} qb_block_iq4_xs;
_Static_assert(sizeof(qb_block_iq4_xs) == 136, "iq4_xs block is 136 bytes");

/* The non-linear 4-bit code book of IQ4_NL / IQ4_XS (a fact of the format). */
extern const int8_t qb_iq4nl_values[16];
/* Its midpoints for halving searches: [s][i] = midpoint i + (0, 1, 3, 7)[s], +inf past the last. */
extern const float qb_iq4nl_mid_at[4][16];

/* Per-format dequantizers over nb whole blocks (scalar; the spec). Each writes nb * block
 * elements to y, with the same float operations in the same order as ggml's
 * dequantize_row_*, so results are bit-identical. */
void qb_dequant_q2_K_ref(const qb_block_q2_K *x, float *y, int64_t nb);
void qb_dequant_q3_K_ref(const qb_block_q3_K *x, float *y, int64_t nb);
void qb_dequant_q4_K_ref(const qb_block_q4_K *x, float *y, int64_t nb);
void qb_dequant_q5_K_ref(const qb_block_q5_K *x, float *y, int64_t nb);
void qb_dequant_q6_K_ref(const qb_block_q6_K *x, float *y, int64_t nb);
void qb_dequant_q8_K_ref(const qb_block_q8_K *x, float *y, int64_t nb);
void qb_dequant_iq4_xs_ref(const qb_block_iq4_xs *x, float *y, int64_t nb);

/* Per-format scalar quantizers over nb whole blocks (quant_ref.c, quant_kquants_ref.c): the
 * spec that writes the bytes ggml's quantize_row_*_ref writes for the same input (for IQ4_XS,
 * ggml's quantize_iq4_xs without an importance matrix). qb_quant_row_ref dispatches to them. */
void qb_quant_q2_K_ref(const float *x, qb_block_q2_K *y, int64_t nb);
void qb_quant_q3_K_ref(const float *x, qb_block_q3_K *y, int64_t nb);
void qb_quant_q4_K_ref(const float *x, qb_block_q4_K *y, int64_t nb);
void qb_quant_q5_K_ref(const float *x, qb_block_q5_K *y, int64_t nb);
void qb_quant_q6_K_ref(const float *x, qb_block_q6_K *y, int64_t nb);
void qb_quant_q8_K_ref(const float *x, qb_block_q8_K *y, int64_t nb);
void qb_quant_iq4_xs_ref(const float *x, qb_block_iq4_xs *y, int64_t nb);

/* Helpers the IQ4_NL and IQ4_XS quantizers share (quant_ref.c). qb_iq4nl_index: the code
 * book entry nearest to v (a tie goes to the upper entry; NaN maps to 15).
 * qb_iq4nl_group_scale: the scale d that best fits the 32 values x with d * kvalues[q]
 * (weights x^2; the start max/127, then fifteen candidates near it); 0 for a group whose
 * largest magnitude is below 1e-15. */
int qb_iq4nl_index(float v);
float qb_iq4nl_group_scale(const float *x);

/* ---- ternary (TQ1_0, TQ2_0) and 3-bit i-quants (IQ3_XXS, IQ3_S): super-blocks of 256 ---- */

/* TQ1_0: x = d * (t - 1), t a trit in 0..2. Five trits per byte of qs, four per byte of qh,
 * stored as the byte ceil(v * 256 / 243) of their base-3 number v (first trit most
 * significant; qh's four trits are followed by a zero trit): trit k of byte b is
 * ((uint8_t)(b * 3^k) * 3) >> 8. Elements: qs[0..31] give e = 32k + m (trit k of qs[m]),
 * qs[32..47] give e = 160 + 16k + m (trit k of qs[32 + m]), qh[0..3] give e = 240 + 4k + j. */
typedef struct QB_PACKED {
    uint8_t qs[48];
    uint8_t qh[4];
    uint16_t d;      /* f16 */
} qb_block_tq1_0;
_Static_assert(sizeof(qb_block_tq1_0) == 54, "tq1_0 block is 54 bytes");

/* TQ2_0: x = d * (q - 1), q in 0..3 (the quantizer writes 0..2). Element e = 128h + 32l + m
 * is bits 2l..2l+1 of qs[32h + m]. */
typedef struct QB_PACKED {
    uint8_t qs[64];
    uint16_t d;      /* f16 */
} qb_block_tq2_0;
_Static_assert(sizeof(qb_block_tq2_0) == 66, "tq2_0 block is 66 bytes");

/* IQ3_XXS: 8 sub-blocks of 32, each 8 groups of 4 elements. qs[0..63]: one qb_iq3xxs_grid
 * index per group (group g of sub-block s is qs[8s + g]). qs[64 + 4s ..] is the little-endian
 * word w_s of sub-block s: bits 7k..7k+6 are the signs of elements 8k..8k+7 (bit i: element
 * 8k + i negative; the eighth sign is the parity of the seven, so the count is even), bits
 * 28..31 the scale ls. x = (d * (0.5 + ls) * 0.5) * grid byte * sign. */
typedef struct QB_PACKED {
    uint16_t d;      /* f16 */
    uint8_t qs[96];
} qb_block_iq3_xxs;
_Static_assert(sizeof(qb_block_iq3_xxs) == 98, "iq3_xxs block is 98 bytes");

/* IQ3_S: 8 sub-blocks of 32, each 8 groups of 4. Group g of sub-block s uses qb_iq3s_grid
 * entry qs[8s + g] | (bit g of qh[s]) << 8; signs[4s + k] bit i negates element 8k + i of
 * the sub-block (no parity rule). Sub-blocks 2p and 2p+1 take the low and high nibble ls of
 * scales[p]: x = (d * (1 + 2 ls)) * grid byte * sign. */
typedef struct QB_PACKED {
    uint16_t d;      /* f16 */
    uint8_t qs[64];
    uint8_t qh[8];
    uint8_t signs[32];
    uint8_t scales[4];
} qb_block_iq3_s;
_Static_assert(sizeof(qb_block_iq3_s) == 110, "iq3_s block is 110 bytes");

/* The code books (iq3_grids.c): four magnitudes per entry, element 0 in the low byte. */
extern const uint32_t qb_iq3xxs_grid[256];
extern const uint32_t qb_iq3s_grid[512];

/* The sign byte of IQ3_XXS group-of-8 k from its seven stored bits (bit 7: their parity). */
static inline uint8_t qb_iq3xxs_signs(uint32_t seven)
{
    seven &= 127;
    uint32_t p = seven ^ seven >> 4;
    p ^= p >> 2;
    p ^= p >> 1;
    return (uint8_t)(seven | (p & 1) << 7);
}

/* Scalar dequantizers over nb blocks (dequant_tq_iq3_ref.c), bit-identical to ggml's
 * dequantize_row_tq1_0 / tq2_0 / iq3_xxs / iq3_s. */
void qb_dequant_tq1_0_ref(const qb_block_tq1_0 *x, float *y, int64_t nb);
void qb_dequant_tq2_0_ref(const qb_block_tq2_0 *x, float *y, int64_t nb);
void qb_dequant_iq3_xxs_ref(const qb_block_iq3_xxs *x, float *y, int64_t nb);
void qb_dequant_iq3_s_ref(const qb_block_iq3_s *x, float *y, int64_t nb);
/* ---- the grid i-quants: IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S, IQ1_M ------------------------------
 * Each group of 8 elements is one point of a lattice table (iq_grids.h) picked by an index;
 * the 2-bit formats add a sign per element, the 1-bit ones a shift ±delta per group. */

/* IQ2_XXS: 8 sub-blocks of 32, each two little-endian 32-bit words w0 = qs[4s..4s+1],
 * w1 = qs[4s+2..4s+3] (as uint32): byte l of w0 is the qb_iq2xxs_grid index of group l,
 * (w1 >> 7l) & 127 its sign pattern (qb_iq2_signs), w1 >> 28 the scale ls:
 * x = (d * (0.5 + ls) * 0.25) * grid * sign. */
typedef struct QB_PACKED {
    uint16_t d;
    uint16_t qs[32];
} qb_block_iq2_xxs;
_Static_assert(sizeof(qb_block_iq2_xxs) == 66, "iq2_xxs block is 66 bytes");

/* IQ2_XS: group g (32 of them) is qs[g]: qb_iq2xs_grid index qs & 511, sign pattern qs >> 9;
 * groups 4s..4s+1 use the scale scales[s] & 15, groups 4s+2..4s+3 scales[s] >> 4. */
typedef struct QB_PACKED {
    uint16_t d;
    uint16_t qs[32];
    uint8_t scales[8];
} qb_block_iq2_xs;
_Static_assert(sizeof(qb_block_iq2_xs) == 74, "iq2_xs block is 74 bytes");

/* IQ2_S: group g's qb_iq2s_grid index is qs[g] | ((qh[g/4] >> 2(g%4)) & 3) << 8, its signs
 * the byte qs[32 + g] (bit j: element j negative); scales as IQ2_XS. */
typedef struct QB_PACKED {
    uint16_t d;
    uint8_t qs[64];
    uint8_t qh[8];
    uint8_t scales[8];
} qb_block_iq2_s;
_Static_assert(sizeof(qb_block_iq2_s) == 82, "iq2_s block is 82 bytes");

/* IQ1_S: sub-block s (of 32) has qh[s]: bits 3l..3l+2 the high bits of group l's
 * qb_iq1s_grid index (low 8 bits qs[4s + l]), bits 12-14 the scale ls, bit 15 the sign of
 * the shift: x = (d * (2ls + 1)) * (grid + (bit15 ? -1/8 : 1/8)). */
typedef struct QB_PACKED {
    uint16_t d;
    uint8_t qs[32];
    uint16_t qh[8];
} qb_block_iq1_s;
_Static_assert(sizeof(qb_block_iq1_s) == 50, "iq1_s block is 50 bytes");

/* IQ1_M: no d field: the f16 super-block scale is the top nibbles of the four 16-bit words of
 * scales (word 0 gives bits 0-3 … word 3 bits 12-15). Sub-block s (of 32) has two scales of
 * 3 bits, (word[s/2] >> 6(s%2)) & 7 and >> 6(s%2)+3, for its halves; group l of s has index
 * qs[4s + l] | ((qh[2s + l/2] >> 4(l%2)) & 7) << 8 and shift sign bit 3 of that nibble. */
typedef struct QB_PACKED {
    uint8_t qs[32];
    uint8_t qh[16];
    uint8_t scales[8];
} qb_block_iq1_m;
_Static_assert(sizeof(qb_block_iq1_m) == 56, "iq1_m block is 56 bytes");

/* The IQ1 formats' shift of a group: grid values -1, 0, 1 plus or minus this. */
#define QB_IQ1_DELTA 0.125f

/* The f16 bits of an IQ1_M block's super-block scale. */
static inline uint16_t qb_iq1m_scale_bits(const qb_block_iq1_m *b)
{
    uint16_t w[4];
    for (int k = 0; k < 4; k++) w[k] = (uint16_t)(b->scales[2 * k] | b->scales[2 * k + 1] << 8);
    return (uint16_t)((w[0] >> 12) | ((w[1] >> 8) & 0x00f0) | ((w[2] >> 4) & 0x0f00) | (w[3] & 0xf000));
}

/* Scalar dequantizers (dequant_iq_ref.c), ggml's float operations in its order. */
void qb_dequant_iq2_xxs_ref(const qb_block_iq2_xxs *x, float *y, int64_t nb);
void qb_dequant_iq2_xs_ref(const qb_block_iq2_xs *x, float *y, int64_t nb);
void qb_dequant_iq2_s_ref(const qb_block_iq2_s *x, float *y, int64_t nb);
void qb_dequant_iq1_s_ref(const qb_block_iq1_s *x, float *y, int64_t nb);
void qb_dequant_iq1_m_ref(const qb_block_iq1_m *x, float *y, int64_t nb);

#endif
