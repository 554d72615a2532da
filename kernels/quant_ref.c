/* quant_ref.c — scalar quantization of a row of f32 into the plain float types (F32, F16,
 * BF16), the 32-element block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, IQ4_NL), and
 * qb_quant_row_ref, the dispatch over every format (the 256-element formats live in
 * quant_kquants_ref.c).
 *
 * These functions are the spec: for the same input they write exactly the bytes ggml's
 * quantize_row_*_ref writes (for IQ4_NL, ggml's quantize_iq4_nl without an importance
 * matrix, which is what llama-quantize uses), so files we write are interchangeable with
 * llama-quantize's. That needs the same float operations in the same order as ggml, the same
 * rounding (roundf for Q8, "add 0.5 (or 8.5, 16.5) and truncate" for the 4/5-bit formats)
 * and the same tie-breaking when picking a maximum (the first element of largest magnitude
 * wins). Keep it so: an "equivalent" rewrite of an expression (a*b*c as a*(b*c), x/d as
 * x*(1/d), a fused multiply-add) changes a few codes in a large tensor and breaks the
 * byte-exact tests. The project builds with -std=c11, which makes GCC keep a*b+c as two
 * roundings; clang is told the same by the pragma below. */
#include "kernels.h"
#include "blocks.h"
#include "tq_iq3.h"
#include "quant_k.h"

#include "qb_types.h"

#include <float.h>
#include <math.h>
#include <string.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

/* Magnitude below which a group counts as all zeros (ggml's GROUP_MAX_EPS). */
#define GROUP_EPS 1e-15f

/* float -> integer truncation as a C cast performs it on x86-64 (cvttss2si): toward zero,
 * with NaN and values outside int32 giving INT32_MIN. ggml stores such casts straight into
 * bytes; spelling the conversion out keeps ours defined for every input (a NaN row, a
 * subnormal scale whose inverse overflows) and equal to what ggml's build does. */
static inline int32_t trunc_i32(float v)
{
    if (v >= -2147483648.0f && v < 2147483648.0f) return (int32_t)v;
    return INT32_MIN;
}

/* The low byte of that truncation, read as a signed byte (ggml's `(int8_t)(float)`). */
static inline int trunc_s8(float v)
{
    return (int8_t)(uint8_t)trunc_i32(v);
}

/* Store an f16 value at a possibly unaligned address, little-endian. */
static inline void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* f32 -> bf16, round to nearest even; a NaN stays a NaN (quiet bit forced), as ggml does. */
static uint16_t f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

/* The element of largest magnitude in x[0..n), keeping the first one on ties (its sign
 * matters: the symmetric formats map it to the most negative code). 0 for an all-zero x. */
static float signed_absmax(const float *x, int n, float *amax_out)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        const float a = fabsf(x[j]);
        if (amax < a) {
            amax = a;
            max = x[j];
        }
    }
    if (amax_out) *amax_out = amax;
    return max;
}

/* Smallest and largest element of x[0..n) (n > 0). */
static void min_max(const float *x, int n, float *mn, float *mx)
{
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *mn = lo;
    *mx = hi;
}

/* ---- plain float rows --------------------------------------------------------------------- */

static void quant_f32(const float *x, void *dst, int64_t n)
{
    memcpy(dst, x, (size_t)n * sizeof(float));
}

static void quant_f16(const float *x, void *dst, int64_t n)
{
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) put_u16(p + 2 * i, qb_f32_to_f16(x[i]));
}

static void quant_bf16(const float *x, void *dst, int64_t n)
{
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) put_u16(p + 2 * i, f32_to_bf16(x[i]));
}

/* ---- symmetric formats: x = d * (q - bias) ------------------------------------------------ */

/* Q4_0 / Q5_0 share one recipe: the largest-magnitude element maps to code 0 (d = max / -2^k
 * with k = bits - 1), every element to trunc(x/d + bias + 0.5) capped at the top code. The
 * codes of element j and j + 16 come back in q[j] and q[j + 16]. Returns the f16 scale. */
static uint16_t symmetric_codes(const float *x, int bits, uint8_t q[QB_QK32])
{
    const int half = 1 << (bits - 1), top = (1 << bits) - 1;
    const float max = signed_absmax(x, QB_QK32, NULL);
    const float d = max / (float)-half;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const float offset = (float)half + 0.5f; /* 8.5 or 16.5: add, then truncate */
    for (int j = 0; j < QB_QK32; j++) {
        const int v = trunc_s8(x[j] * id + offset);
        q[j] = (uint8_t)(v < top ? v : top);
    }
    return qb_f32_to_f16(d);
}

static void quant_q4_0(const float *x, void *dst, int64_t nb)
{
    qb_block_q4_0 *y = dst;
    for (int64_t b = 0; b < nb; b++, y++, x += QB_QK32) {
        uint8_t q[QB_QK32];
        y->d = symmetric_codes(x, 4, q);
        for (int j = 0; j < 16; j++) y->qs[j] = (uint8_t)(q[j] | q[j + 16] << 4);
    }
}

/* Contract (quant_k.h). */
void qb_pack_q5_32(const uint8_t q[QB_QK32], uint8_t qs[16], uint8_t qh_out[4])
{
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((q[j] & 15) | (q[j + 16] & 15) << 4);
        qh |= (uint32_t)(q[j] >> 4 & 1) << j;
        qh |= (uint32_t)(q[j + 16] >> 4 & 1) << (j + 16);
    }
    for (int k = 0; k < 4; k++) qh_out[k] = (uint8_t)(qh >> (8 * k));
}

static void quant_q5_0(const float *x, void *dst, int64_t nb)
{
    qb_block_q5_0 *y = dst;
    for (int64_t b = 0; b < nb; b++, y++, x += QB_QK32) {
        uint8_t q[QB_QK32];
        y->d = symmetric_codes(x, 5, q);
        qb_pack_q5_32(q, y->qs, y->qh);
    }
}

/* ---- affine formats: x = d * q + m, m the block minimum ----------------------------------- */

/* Codes trunc((x - min)/d + 0.5) with d = (max - min) / top. Q4_1 caps the code at 15; Q5_1
 * does not (its codes cannot exceed 31 for finite input). Writes the f16 d and m. */
static void affine_codes(const float *x, int top, bool cap, uint8_t q[QB_QK32], uint16_t *dh,
                         uint16_t *mh)
{
    float min, max;
    min_max(x, QB_QK32, &min, &max);
    const float d = (max - min) / (float)top;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    *dh = qb_f32_to_f16(d);
    *mh = qb_f32_to_f16(min);
    for (int j = 0; j < QB_QK32; j++) {
        const float v = (x[j] - min) * id + 0.5f;
        if (cap) {
            const int c = trunc_s8(v);
            q[j] = (uint8_t)(c < top ? c : top);
        } else {
            q[j] = (uint8_t)trunc_i32(v);
        }
    }
}

static void quant_q4_1(const float *x, void *dst, int64_t nb)
{
    qb_block_q4_1 *y = dst;
    for (int64_t b = 0; b < nb; b++, y++, x += QB_QK32) {
        uint8_t q[QB_QK32];
        uint16_t d, m;
        affine_codes(x, 15, true, q, &d, &m);
        y->d = d;
        y->m = m;
        for (int j = 0; j < 16; j++) y->qs[j] = (uint8_t)(q[j] | q[j + 16] << 4);
    }
}

static void quant_q5_1(const float *x, void *dst, int64_t nb)
{
    qb_block_q5_1 *y = dst;
    for (int64_t b = 0; b < nb; b++, y++, x += QB_QK32) {
        uint8_t q[QB_QK32];
        uint16_t d, m;
        affine_codes(x, 31, false, q, &d, &m);
        y->d = d;
        y->m = m;
        qb_pack_q5_32(q, y->qs, y->qh);
    }
}

/* ---- 8-bit formats ------------------------------------------------------------------------ */

/* d = absmax / 127 and q = roundf(x / d) (halves away from zero), into qs. Returns d. */
static float q8_codes(const float *x, int8_t qs[QB_QK32])
{
    float amax = 0.0f;
    for (int j = 0; j < QB_QK32; j++) {
        const float a = fabsf(x[j]);
        amax = amax > a ? amax : a;
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < QB_QK32; j++) qs[j] = (int8_t)(uint8_t)trunc_i32(roundf(x[j] * id));
    return d;
}

static void quant_q8_0(const float *x, void *dst, int64_t nb)
{
    qb_block_q8_0 *y = dst;
    for (int64_t b = 0; b < nb; b++, y++, x += QB_QK32) y->d = qb_f32_to_f16(q8_codes(x, y->qs));
}

static void quant_q8_1(const float *x, void *dst, int64_t nb)
{
    qb_block_q8_1 *y = dst;
    for (int64_t b = 0; b < nb; b++, y++, x += QB_QK32) {
        const float d = q8_codes(x, y->qs);
        int sum = 0;
        for (int j = 0; j < QB_QK32; j++) sum += y->qs[j];
        y->d = qb_f32_to_f16(d);
        y->s = qb_f32_to_f16((float)sum * d);
    }
}

/* ---- IQ4_NL: x = d * kvalues[q] ----------------------------------------------------------- */

/* The code book as floats (the values it compares and multiplies with). */
static const float iq4_book[16] = {
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
};

/* Nearest code book entry: find lo with book[lo] <= v < book[lo + 1] by four fixed halving
 * steps (no data-dependent branches), then take the nearer neighbour, the upper one on a
 * tie. Values at or below the first entry give 0; at or above the last entry, and NaN, 15.
 * Same answer as ggml's bisection over the sorted table. */
static inline int iq4_index(float v)
{
    if (!(v < iq4_book[15])) return 15;
    int lo = 0;
    lo += iq4_book[lo + 8] <= v ? 8 : 0;
    lo += iq4_book[lo + 4] <= v ? 4 : 0;
    lo += iq4_book[lo + 2] <= v ? 2 : 0;
    lo += iq4_book[lo + 1] <= v ? 1 : 0;
    return v - iq4_book[lo] < iq4_book[lo + 1] - v ? lo : lo + 1;
}

int qb_iq4nl_index(float v)
{
    return iq4_index(v);
}

/* Contract (blocks.h): the weighted search below with w = x^2. The search: start from the scale that maps the largest-magnitude
 * element onto the code book's extreme entry (-127), then try the fifteen inverse scales
 * (-127 + t) / max, t = -7..7, in that order. For each, the codes nearest to id * x give
 * S_qx = sum w q x and S_q2 = sum w q^2, whose ratio is the best scale for those
 * codes; a candidate is accepted if it strictly raises S_qx^2 / S_q2 over the best so far.
 * The candidates' sums do not depend on one another (only the acceptance does), so all
 * sixteen are accumulated side by side, element by element in order, and then scanned in
 * order: the same figures as one at a time, with the dependent additions overlapped. */
float qb_iq4nl_group_scale(const float *x)
{
    float w[QB_QK32];
    for (int j = 0; j < QB_QK32; j++) w[j] = x[j] * x[j];
    return qb_iq4nl_group_scale_w_ref(x, w);
}

/* Contract (quant_k.h): the search above with weights w. */
float qb_iq4nl_group_scale_w_ref(const float *x, const float *w)
{
    enum { LANES = 16 }; /* lane 0: the start; lane 8 + t: t = -7..7 */
    float amax;
    const float max = signed_absmax(x, QB_QK32, &amax);
    if (amax < GROUP_EPS) return 0.0f;
    float id[LANES];
    id[0] = 1.0f / (-max / iq4_book[0]);
    for (int t = -7; t <= 7; t++) id[8 + t] = (float)(t + qb_iq4nl_values[0]) / max;
    float sqx[LANES] = {0}, sq2[LANES] = {0};
    for (int j = 0; j < QB_QK32; j++) {
        for (int c = 0; c < LANES; c++) {
            const float q = iq4_book[iq4_index(id[c] * x[j])];
            sqx[c] += w[j] * q * x[j];
            sq2[c] += w[j] * q * q;
        }
    }
    float d = sqx[0] / sq2[0], best = d * sqx[0];
    for (int c = 1; c < LANES; c++) {
        if (sq2[c] > 0 && sqx[c] * sqx[c] > best * sq2[c]) {
            d = sqx[c] / sq2[c];
            best = d * sqx[c];
        }
    }
    return d;
}

/* Contract (quant_k.h). */
void qb_iq4nl_codes_ref(const float *x, float id, uint8_t qs[16])
{
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)(iq4_index(id * x[j]) | iq4_index(id * x[j + 16]) << 4);
}

void qb_quant_iq4_nl_with(const float *x, void *dst, int64_t nb, qb_iq4_scale_fn group_scale, qb_iq4_code_fn codes)
{
    qb_block_iq4_nl *y = dst;
    for (int64_t b = 0; b < nb; b++, y++, x += QB_QK32) {
        const float d = group_scale(x);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y->d = qb_f32_to_f16(d);
        codes(x, id, y->qs);
    }
}

static void quant_iq4_nl(const float *x, void *dst, int64_t nb)
{
    qb_quant_iq4_nl_with(x, dst, nb, qb_iq4nl_group_scale, qb_iq4nl_codes_ref);
}

/* ---- dispatch ----------------------------------------------------------------------------- */

/* Adapters from the typed 256-element quantizers to the table's signature. */
static void quant_q2_K(const float *x, void *y, int64_t nb) { qb_quant_q2_K_ref(x, y, nb); }
static void quant_q3_K(const float *x, void *y, int64_t nb) { qb_quant_q3_K_ref(x, y, nb); }
static void quant_q4_K(const float *x, void *y, int64_t nb) { qb_quant_q4_K_ref(x, y, nb); }
static void quant_q5_K(const float *x, void *y, int64_t nb) { qb_quant_q5_K_ref(x, y, nb); }
static void quant_q6_K(const float *x, void *y, int64_t nb) { qb_quant_q6_K_ref(x, y, nb); }
static void quant_q8_K(const float *x, void *y, int64_t nb) { qb_quant_q8_K_ref(x, y, nb); }
static void quant_iq4_xs(const float *x, void *y, int64_t nb) { qb_quant_iq4_xs_ref(x, y, nb); }
/* ternary and 3-bit i-quants without importance weights (quant_tq_iq3_ref.c) */
static void quant_tq1_0(const float *x, void *y, int64_t nb) { qb_quant_tq_iq3_ref(QB_TYPE_TQ1_0, x, y, 1, nb * QB_QK_K, NULL); }
static void quant_tq2_0(const float *x, void *y, int64_t nb) { qb_quant_tq_iq3_ref(QB_TYPE_TQ2_0, x, y, 1, nb * QB_QK_K, NULL); }
static void quant_iq3_xxs(const float *x, void *y, int64_t nb) { qb_quant_tq_iq3_ref(QB_TYPE_IQ3_XXS, x, y, 1, nb * QB_QK_K, NULL); }
static void quant_iq3_s(const float *x, void *y, int64_t nb) { qb_quant_tq_iq3_ref(QB_TYPE_IQ3_S, x, y, 1, nb * QB_QK_K, NULL); }

/* One quantizer per type id, called with the number of blocks (elements for the float
 * types, whose block is one element). NULL: not supported. */
typedef void (*quant_fn)(const float *x, void *dst, int64_t nblocks);
static const quant_fn quant_table[QB_TYPE_COUNT] = {
    [QB_TYPE_F32] = quant_f32,       [QB_TYPE_F16] = quant_f16,
    [QB_TYPE_BF16] = quant_bf16,     [QB_TYPE_Q4_0] = quant_q4_0,
    [QB_TYPE_Q4_1] = quant_q4_1,     [QB_TYPE_Q5_0] = quant_q5_0,
    [QB_TYPE_Q5_1] = quant_q5_1,     [QB_TYPE_Q8_0] = quant_q8_0,
    [QB_TYPE_Q8_1] = quant_q8_1,     [QB_TYPE_Q2_K] = quant_q2_K,
    [QB_TYPE_Q3_K] = quant_q3_K,     [QB_TYPE_Q4_K] = quant_q4_K,
    [QB_TYPE_Q5_K] = quant_q5_K,     [QB_TYPE_Q6_K] = quant_q6_K,
    [QB_TYPE_Q8_K] = quant_q8_K,     [QB_TYPE_IQ4_NL] = quant_iq4_nl,
    [QB_TYPE_IQ4_XS] = quant_iq4_xs,
    /* ternary and 3-bit i-quants */
    [QB_TYPE_TQ1_0] = quant_tq1_0,   [QB_TYPE_TQ2_0] = quant_tq2_0,
    [QB_TYPE_IQ3_XXS] = quant_iq3_xxs, [QB_TYPE_IQ3_S] = quant_iq3_s,
};

/* Contract (kernels.h): quantize n floats into `type`. Also returns false, writing nothing,
 * when n is negative or not a multiple of the type's block size. Rows are independent, so
 * a caller may quantize a matrix in one call (n = rows * row length) or row by row. */
bool qb_quant_row_ref(int type, const float *src, void *dst, int64_t n)
{
    if (type == QB_TYPE_IQ2_XXS || type == QB_TYPE_IQ2_XS || type == QB_TYPE_IQ2_S || type == QB_TYPE_IQ1_S ||
        type == QB_TYPE_IQ1_M)
        return qb_quant_row_iq_ref(type, src, dst, n, NULL);
    if (type < 0 || type >= QB_TYPE_COUNT || !quant_table[type]) return false;
    const qb_type_info *ti = qb_type_get(type);
    if (!ti || n < 0 || n % ti->blck != 0) return false;
    if (n > 0) quant_table[type](src, dst, n / ti->blck);
    return true;
}
