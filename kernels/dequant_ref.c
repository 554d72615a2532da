/* dequant_ref.c — scalar dequantization of a row of any supported ggml type to f32: the plain
 * float types, the 32-element "legacy" blocks (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL) and the
 * dispatch over all formats (the 256-element K formats live in dequant_kquants_ref.c).
 *
 * Exactness: every element is computed with the same float operations in the same order as
 * ggml's dequantize_row_* (f16 scales converted exactly), so results are bit-identical to
 * ggml's. The formats make this robust: an f16 scale has 11 significant bits and the factors
 * are small integers, so every product is exact in f32 and each element is rounded at most
 * once (the final "+ m" / "- min", or Q6_K's and Q8_K's last product); neither operation
 * order nor FMA contraction can change a result. Keep it so in vector versions: exact
 * equality with this file is the test. */
#include "kernels.h"
#include "blocks.h"

#include "qb_types.h"

#include <math.h>
#include <string.h>

const int8_t qb_iq4nl_values[16] = {
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
};

/* Midpoints between neighbouring entries of the code book, (book[k] + book[k + 1]) / 2 (exact
 * halves), for the vector index searches: [s][i] is midpoint i + (0, 1, 3, 7)[s], +inf past
 * the last (the four steps of a halving search; test-quantize-simd checks them against the book). */
const float qb_iq4nl_mid_at[4][16] = {
    {-115.5f, -93.5f, -74.0f, -57.0f, -42.0f, -28.5f, -16.0f, -4.5f, 7.0f, 19.0f, 31.5f, 45.5f, 61.0f, 79.0f, 101.0f, INFINITY},
    {-93.5f, -74.0f, -57.0f, -42.0f, -28.5f, -16.0f, -4.5f, 7.0f, 19.0f, 31.5f, 45.5f, 61.0f, 79.0f, 101.0f, INFINITY, INFINITY},
    {-57.0f, -42.0f, -28.5f, -16.0f, -4.5f, 7.0f, 19.0f, 31.5f, 45.5f, 61.0f, 79.0f, 101.0f, INFINITY, INFINITY, INFINITY, INFINITY},
    {-4.5f, 7.0f, 19.0f, 31.5f, 45.5f, 61.0f, 79.0f, 101.0f, INFINITY, INFINITY, INFINITY, INFINITY, INFINITY, INFINITY, INFINITY, INFINITY},
};

/* Fifth bits of a Q5 block as one little-endian word: bit e belongs to element e. */
static uint32_t load_qh(const uint8_t qh[4])
{
    return (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 |
           (uint32_t)qh[3] << 24;
}

static void dequant_f32(const void *src, float *y, int64_t n)
{
    memcpy(y, src, (size_t)n * sizeof(float));
}

static void dequant_f16(const void *src, float *y, int64_t n)
{
    const uint8_t *p = src; /* may be unaligned: read byte pairs */
    for (int64_t i = 0; i < n; i++)
        y[i] = qb_f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
}

static void dequant_bf16(const void *src, float *y, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++)
        y[i] = qb_bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
}

static void dequant_q4_0(const void *src, float *y, int64_t nb)
{
    const qb_block_q4_0 *x = src;
    for (int64_t b = 0; b < nb; b++, x++, y += QB_QK32) {
        const float d = qb_f16_to_f32(x->d);
        for (int j = 0; j < 16; j++) {
            const int lo = (x->qs[j] & 15) - 8, hi = (x->qs[j] >> 4) - 8;
            y[j] = (float)lo * d;
            y[j + 16] = (float)hi * d;
        }
    }
}

static void dequant_q4_1(const void *src, float *y, int64_t nb)
{
    const qb_block_q4_1 *x = src;
    for (int64_t b = 0; b < nb; b++, x++, y += QB_QK32) {
        const float d = qb_f16_to_f32(x->d), m = qb_f16_to_f32(x->m);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)(x->qs[j] & 15) * d + m;
            y[j + 16] = (float)(x->qs[j] >> 4) * d + m;
        }
    }
}

static void dequant_q5_0(const void *src, float *y, int64_t nb)
{
    const qb_block_q5_0 *x = src;
    for (int64_t b = 0; b < nb; b++, x++, y += QB_QK32) {
        const float d = qb_f16_to_f32(x->d);
        const uint32_t qh = load_qh(x->qh);
        for (int j = 0; j < 16; j++) {
            const int lo = ((x->qs[j] & 15) | (int)((qh >> j) & 1) << 4) - 16;
            const int hi = ((x->qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4) - 16;
            y[j] = (float)lo * d;
            y[j + 16] = (float)hi * d;
        }
    }
}

static void dequant_q5_1(const void *src, float *y, int64_t nb)
{
    const qb_block_q5_1 *x = src;
    for (int64_t b = 0; b < nb; b++, x++, y += QB_QK32) {
        const float d = qb_f16_to_f32(x->d), m = qb_f16_to_f32(x->m);
        const uint32_t qh = load_qh(x->qh);
        for (int j = 0; j < 16; j++) {
            const int lo = (x->qs[j] & 15) | (int)((qh >> j) & 1) << 4;
            const int hi = (x->qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
            y[j] = (float)lo * d + m;
            y[j + 16] = (float)hi * d + m;
        }
    }
}

static void dequant_q8_0(const void *src, float *y, int64_t nb)
{
    const qb_block_q8_0 *x = src;
    for (int64_t b = 0; b < nb; b++, x++, y += QB_QK32) {
        const float d = qb_f16_to_f32(x->d);
        for (int j = 0; j < QB_QK32; j++) y[j] = (float)x->qs[j] * d;
    }
}

static void dequant_iq4_nl(const void *src, float *y, int64_t nb)
{
    const qb_block_iq4_nl *x = src;
    for (int64_t b = 0; b < nb; b++, x++, y += QB_QK32) {
        const float d = qb_f16_to_f32(x->d);
        for (int j = 0; j < 16; j++) {
            y[j] = d * (float)qb_iq4nl_values[x->qs[j] & 15];
            y[j + 16] = d * (float)qb_iq4nl_values[x->qs[j] >> 4];
        }
    }
}

/* Adapters from the typed K-format functions to the table's signature. */
static void dequant_q2_K(const void *s, float *y, int64_t nb) { qb_dequant_q2_K_ref(s, y, nb); }
static void dequant_q3_K(const void *s, float *y, int64_t nb) { qb_dequant_q3_K_ref(s, y, nb); }
static void dequant_q4_K(const void *s, float *y, int64_t nb) { qb_dequant_q4_K_ref(s, y, nb); }
static void dequant_q5_K(const void *s, float *y, int64_t nb) { qb_dequant_q5_K_ref(s, y, nb); }
static void dequant_q6_K(const void *s, float *y, int64_t nb) { qb_dequant_q6_K_ref(s, y, nb); }
static void dequant_q8_K(const void *s, float *y, int64_t nb) { qb_dequant_q8_K_ref(s, y, nb); }
static void dequant_iq4_xs(const void *s, float *y, int64_t nb) { qb_dequant_iq4_xs_ref(s, y, nb); }
/* ternary and 3-bit i-quants (dequant_tq_iq3_ref.c) */
static void dequant_tq1_0(const void *s, float *y, int64_t nb) { qb_dequant_tq1_0_ref(s, y, nb); }
static void dequant_tq2_0(const void *s, float *y, int64_t nb) { qb_dequant_tq2_0_ref(s, y, nb); }
static void dequant_iq3_xxs(const void *s, float *y, int64_t nb) { qb_dequant_iq3_xxs_ref(s, y, nb); }
static void dequant_iq3_s(const void *s, float *y, int64_t nb) { qb_dequant_iq3_s_ref(s, y, nb); }
static void dequant_iq2_xxs(const void *s, float *y, int64_t nb) { qb_dequant_iq2_xxs_ref(s, y, nb); }
static void dequant_iq2_xs(const void *s, float *y, int64_t nb) { qb_dequant_iq2_xs_ref(s, y, nb); }
static void dequant_iq2_s(const void *s, float *y, int64_t nb) { qb_dequant_iq2_s_ref(s, y, nb); }
static void dequant_iq1_s(const void *s, float *y, int64_t nb) { qb_dequant_iq1_s_ref(s, y, nb); }
static void dequant_iq1_m(const void *s, float *y, int64_t nb) { qb_dequant_iq1_m_ref(s, y, nb); }

/* One dequantizer per type id, called with the number of blocks (elements for the float
 * types, whose block is one element). NULL: not supported (Q8_1 has no ggml dequantizer). */
typedef void (*dequant_fn)(const void *src, float *y, int64_t nblocks);
static const dequant_fn dequant_table[QB_TYPE_COUNT] = {
    [QB_TYPE_F32] = dequant_f32,       [QB_TYPE_F16] = dequant_f16,
    [QB_TYPE_BF16] = dequant_bf16,     [QB_TYPE_Q4_0] = dequant_q4_0,
    [QB_TYPE_Q4_1] = dequant_q4_1,     [QB_TYPE_Q5_0] = dequant_q5_0,
    [QB_TYPE_Q5_1] = dequant_q5_1,     [QB_TYPE_Q8_0] = dequant_q8_0,
    [QB_TYPE_Q2_K] = dequant_q2_K,     [QB_TYPE_Q3_K] = dequant_q3_K,
    [QB_TYPE_Q4_K] = dequant_q4_K,     [QB_TYPE_Q5_K] = dequant_q5_K,
    [QB_TYPE_Q6_K] = dequant_q6_K,     [QB_TYPE_Q8_K] = dequant_q8_K,
    [QB_TYPE_IQ4_NL] = dequant_iq4_nl, [QB_TYPE_IQ4_XS] = dequant_iq4_xs,
    /* ternary and 3-bit i-quants */
    [QB_TYPE_TQ1_0] = dequant_tq1_0,   [QB_TYPE_TQ2_0] = dequant_tq2_0,
    [QB_TYPE_IQ3_XXS] = dequant_iq3_xxs, [QB_TYPE_IQ3_S] = dequant_iq3_s,
    [QB_TYPE_IQ2_XXS] = dequant_iq2_xxs, [QB_TYPE_IQ2_XS] = dequant_iq2_xs,
    [QB_TYPE_IQ2_S] = dequant_iq2_s,   [QB_TYPE_IQ1_S] = dequant_iq1_s,
    [QB_TYPE_IQ1_M] = dequant_iq1_m,
};

/* Contract (kernels.h): dequantize n elements of `type` from src to dst. Also returns false,
 * writing nothing, when n is negative or not a multiple of the type's block size. */
bool qb_dequant_row_ref(int type, const void *src, float *dst, int64_t n)
{
    if (type < 0 || type >= QB_TYPE_COUNT || !dequant_table[type]) return false;
    const qb_type_info *ti = qb_type_get(type);
    if (!ti || n < 0 || n % ti->blck != 0) return false;
    if (n > 0) dequant_table[type](src, dst, n / ti->blck);
    return true;
}
