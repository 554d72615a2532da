/* fmt_nf4_ref.c — 4-bit NormalFloat (QLoRA, Dettmers et al. 2023) in 64-element blocks, with
 * and without double quantization of the block absmax values: the scalar spec.
 *
 * Levels: bitsandbytes' 16 NF4 values (ascending; code = index; code 7 is exactly 0). A value
 * x of a block with absmax a gets the code of the nearest level to x · (1/a), found with
 * bitsandbytes' decision thresholds (dQuantizeNF4: the midpoints between neighbouring levels,
 * "x > threshold" goes up, so an exact tie takes the lower code); x' = level[code] · a.
 *
 * Storage of one row of n elements (n a multiple of 64; little-endian, no alignment assumed):
 *   nf4:    n/64 blocks of { f32 absmax; u8 qs[32] } (36 bytes: 4.5 bits per weight).
 *   nf4-dq: f32 mean, f32 s2[ceil(nb/256)], then nb = n/64 blocks of { i8 qa; u8 qs[32] }
 *           (33 bytes). The block absmax values a_j of the row are double-quantized as the
 *           paper describes (second-level blocks of 256, mean subtracted), with a symmetric
 *           int8 grid in place of bitsandbytes' dynamic 8-bit float map:
 *               mean = Σ a_j / nb (over the row),  s2_k = max_{j in k} |a_j − mean| / 127,
 *               qa_j = round(( a_j − mean) / s2_k) in −127..127,  a'_j = mean + s2_k · qa_j.
 *           The codes of block j are then chosen with a'_j (not a_j), so what is stored is
 *           self-consistent; a'_j <= 0 stores the zero level for the whole block.
 *           About 4 + 8/64 + 32·(1 + nb/256)/n bits per weight (4.25 for n = 512).
 *   qs: two codes per byte, element 2i in the low nibble, 2i+1 in the high nibble (note:
 *   bitsandbytes packs the other way round, first element high).
 * Rows are self-contained: the double-quantization statistics are per row, not per tensor. */
#include "fmt_nf4.h"

#include <math.h>
#include <string.h>

/* max ignoring a NaN in b (fmaxf is a libm call in a hot loop without -ffast-math) */
static inline float max_f(float a, float b) { return b > a ? b : a; }

const float qb_nf4_levels[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
};

/* bitsandbytes' dQuantizeNF4 thresholds (code = number of thresholds strictly below v). */
const float qb_nf4_thresholds[15] = {
    -0.8480964004993439f, -0.6106329262256622f, -0.4599952697753906f, -0.33967943489551544f,
    -0.23460740596055984f, -0.13791173323988914f, -0.045525018125772476f, 0.03979014977812767f,
    0.1202552504837513f, 0.2035212516784668f, 0.2920137718319893f, 0.3893125355243683f,
    0.5016634166240692f, 0.6427869200706482f, 0.8614784181118011f,
};

uint8_t qb_nf4_code(float v)
{
    if (v != v) return 7;
    /* branch-free binary search over the 15 thresholds */
    int c = v > qb_nf4_thresholds[7] ? 8 : 0;
    c += v > qb_nf4_thresholds[c + 3] ? 4 : 0;
    c += v > qb_nf4_thresholds[c + 1] ? 2 : 0;
    c += v > qb_nf4_thresholds[c] ? 1 : 0;
    return (uint8_t)c;
}

size_t qb_nf4_row_bytes(bool dq, int64_t n)
{
    int64_t nb = n / QB_NF4_BLOCK;
    if (!dq) return (size_t)nb * sizeof(qb_nf4_block);
    int64_t ng = (nb + QB_NF4_DQ_GROUP - 1) / QB_NF4_DQ_GROUP;
    return sizeof(float) * (size_t)(1 + ng) + (size_t)nb * sizeof(qb_nf4dq_block);
}

static float block_absmax(const float *x)
{
    float a = 0.0f;
    for (int i = 0; i < QB_NF4_BLOCK; i++) a = max_f(a, fabsf(x[i]));
    return a;
}

static void put_block(const float *x, float a, uint8_t qs[32])
{
    if (!(a > 0.0f) || isinf(a)) {
        memset(qs, 0x77, 32); /* the zero level */
        return;
    }
    const float inv = 1.0f / a;
    for (int i = 0; i < QB_NF4_BLOCK / 2; i++)
        qs[i] = (uint8_t)(qb_nf4_code(x[2 * i] * inv) | qb_nf4_code(x[2 * i + 1] * inv) << 4);
}

static void get_block(const uint8_t qs[32], float a, float *y)
{
    for (int i = 0; i < QB_NF4_BLOCK / 2; i++) {
        y[2 * i] = qb_nf4_levels[qs[i] & 15] * a;
        y[2 * i + 1] = qb_nf4_levels[qs[i] >> 4] * a;
    }
}

static void quant_row_dq(const float *x, uint8_t *out, int64_t n)
{
    const int64_t nb = n / QB_NF4_BLOCK, ng = (nb + QB_NF4_DQ_GROUP - 1) / QB_NF4_DQ_GROUP;
    double sum = 0;
    for (int64_t j = 0; j < nb; j++) sum += block_absmax(x + j * QB_NF4_BLOCK);
    const float mean = nb > 0 ? (float)(sum / (double)nb) : 0.0f;
    memcpy(out, &mean, sizeof mean);
    uint8_t *s2p = out + sizeof(float);
    qb_nf4dq_block *blocks = (qb_nf4dq_block *)(void *)(s2p + sizeof(float) * (size_t)ng);
    for (int64_t k = 0; k < ng; k++) {
        const int64_t j0 = k * QB_NF4_DQ_GROUP, j1 = j0 + QB_NF4_DQ_GROUP < nb ? j0 + QB_NF4_DQ_GROUP : nb;
        float dev = 0.0f;
        for (int64_t j = j0; j < j1; j++) dev = max_f(dev, fabsf(block_absmax(x + j * QB_NF4_BLOCK) - mean));
        const float s2 = dev / 127.0f;
        memcpy(s2p + sizeof(float) * (size_t)k, &s2, sizeof s2);
        for (int64_t j = j0; j < j1; j++) {
            const float *xb = x + j * QB_NF4_BLOCK;
            float t = s2 > 0.0f ? rintf((block_absmax(xb) - mean) / s2) : 0.0f;
            if (!(t >= -127.0f)) t = -127.0f;
            if (t > 127.0f) t = 127.0f;
            qb_nf4dq_block b;
            b.qa = (int8_t)t;
            put_block(xb, mean + s2 * (float)b.qa, b.qs);
            memcpy(&blocks[j], &b, sizeof b);
        }
    }
}

void qb_quant_row_nf4_ref(bool dq, const float *x, void *dst, int64_t n)
{
    if (dq) {
        quant_row_dq(x, dst, n);
        return;
    }
    qb_nf4_block *blocks = dst;
    for (int64_t j = 0; j < n / QB_NF4_BLOCK; j++) {
        qb_nf4_block b;
        b.absmax = block_absmax(x + j * QB_NF4_BLOCK);
        put_block(x + j * QB_NF4_BLOCK, b.absmax, b.qs);
        memcpy(&blocks[j], &b, sizeof b);
    }
}

void qb_dequant_row_nf4_ref(bool dq, const void *src, float *y, int64_t n)
{
    const int64_t nb = n / QB_NF4_BLOCK;
    if (!dq) {
        const qb_nf4_block *blocks = src;
        for (int64_t j = 0; j < nb; j++) {
            qb_nf4_block b;
            memcpy(&b, &blocks[j], sizeof b);
            get_block(b.qs, b.absmax, y + j * QB_NF4_BLOCK);
        }
        return;
    }
    const uint8_t *in = src;
    const int64_t ng = (nb + QB_NF4_DQ_GROUP - 1) / QB_NF4_DQ_GROUP;
    float mean;
    memcpy(&mean, in, sizeof mean);
    const uint8_t *s2p = in + sizeof(float);
    const qb_nf4dq_block *blocks = (const qb_nf4dq_block *)(const void *)(s2p + sizeof(float) * (size_t)ng);
    for (int64_t j = 0; j < nb; j++) {
        float s2;
        memcpy(&s2, s2p + sizeof(float) * (size_t)(j / QB_NF4_DQ_GROUP), sizeof s2);
        qb_nf4dq_block b;
        memcpy(&b, &blocks[j], sizeof b);
        const float a = mean + s2 * (float)b.qa;
        if (a > 0.0f)
            get_block(b.qs, a, y + j * QB_NF4_BLOCK);
        else
            memset(y + j * QB_NF4_BLOCK, 0, QB_NF4_BLOCK * sizeof(float)); /* +0.0f bits */
    }
}
