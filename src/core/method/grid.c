/* grid.c — element-wise rounding onto a group's grid for the integer group formats and the
 * ggml block formats (see grid.h). A group's scales come from the format's own reference
 * quantizer run on the group's current values; an element's grid is then affine in its code,
 * value = a·q + b with q in 0..qmax, and its code is written where the format keeps it. */
#include "grid.h"
#include "fmt.h"
#include "kernels.h"
#include "blocks.h"

#include <math.h>
#include <string.h>

qb_status qb_grid_init(qb_ctx *ctx, qb_grid *g, const qb_format *f, int64_t n)
{
    qb_status st = qb_format_check(ctx, f, n);
    if (st != QB_OK) return st;
    char name[64];
    qb_format_name(f, name, sizeof name);
    memset(g, 0, sizeof *g);
    g->f = *f;
    g->n = n;
    if (f->kind == QB_FMT_INT) {
        if (f->group == QB_GROUP_TENSOR)
            return qb_fail(ctx, QB_ERR_UNSUPPORTED, "format %s: one scale per tensor has no per-group grid to round to",
                           name);
        g->group = f->group > 0 ? f->group : (int)n;
        g->gbytes = f->group > 0 ? qb_int_row_bytes(f->bits, f->group, f->asym, f->group) : qb_format_row_bytes(f, n);
        return QB_OK;
    }
    if (f->kind == QB_FMT_GGML) {
        switch (f->type) {
        case QB_TYPE_Q8_0:
        case QB_TYPE_Q4_0:
        case QB_TYPE_Q4_1:
        case QB_TYPE_Q5_0:
        case QB_TYPE_Q5_1:
        case QB_TYPE_Q2_K:
        case QB_TYPE_Q3_K:
        case QB_TYPE_Q4_K:
        case QB_TYPE_Q5_K:
        case QB_TYPE_Q6_K: {
            const qb_type_info *ti = qb_type_get(f->type);
            g->group = ti->blck;
            g->gbytes = (size_t)ti->size;
            return QB_OK;
        }
        default: break;
        }
    }
    return qb_fail(ctx, QB_ERR_UNSUPPORTED,
                   "format %s: not supported by this method (integer groups or per channel, q8_0, q4_0, q4_1, q5_0, "
                   "q5_1, q2_k, q3_k, q4_k, q5_k, q6_k)",
                   name);
}

static bool any_positive(const float *v, int n)
{
    for (int i = 0; i < n; i++)
        if (v[i] > 0.0f) return true;
    return false;
}

void qb_grid_start(const qb_grid *g, uint8_t *row, int64_t grp, const float *w, const float *imp)
{
    uint8_t *dst = row + (size_t)grp * g->gbytes;
    if (g->f.kind == QB_FMT_INT)
        qb_quant_row_int_ref(g->f.bits, g->f.group > 0 ? g->f.group : 0, g->f.asym, w, dst, g->group, NULL);
    else if (imp && any_positive(imp, g->group))
        qb_quant_row_w_ref(g->f.type, w, dst, g->group, imp);
    else
        qb_quant_row_ref(g->f.type, w, dst, g->group);
}

static void scale_min_k4(int j, const uint8_t *q, int *sc, int *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* the 6-bit scale of Q3_K sub-block s, still biased by 32 */
static int q3_K_scale(const uint8_t p[12], int s)
{
    const int low = s < 8 ? (p[s] & 15) : (p[s - 8] >> 4);
    return low | ((p[8 + s % 4] >> (2 * (s / 4))) & 3) << 4;
}

static void set_nibble(uint8_t *b, bool high, int q)
{
    *b = high ? (uint8_t)((*b & 0x0F) | (q << 4)) : (uint8_t)((*b & 0xF0) | q);
}

static void set_bit(uint8_t *bytes, int bit, int on)
{
    if (on) bytes[bit / 8] |= (uint8_t)(1u << (bit % 8));
    else bytes[bit / 8] &= (uint8_t) ~(1u << (bit % 8));
}

static void set_bits2(uint8_t *b, int shift, int q)
{
    *b = (uint8_t)((*b & ~(3u << shift)) | ((unsigned)q << shift));
}

static int code_of(float w, float a, float b, int qmax)
{
    float t = a != 0.0f ? rintf((w - b) / a) : 0.0f;
    if (!(t >= 0.0f)) t = 0.0f;
    if (t > (float)qmax) t = (float)qmax;
    return (int)t;
}

/* integer groups: header (f16 or f32 scale, optional zero) then a bit stream of codes */
static size_t int_header(const qb_format *f, const uint8_t *blk, float *d, float *z)
{
    *z = (float)(1 << (f->bits - 1));
    if (f->group > 0) {
        uint16_t h[2];
        memcpy(h, blk, f->asym ? 4 : 2);
        *d = qb_f16_to_f32(h[0]);
        if (f->asym) *z = qb_f16_to_f32(h[1]);
        return f->asym ? 4 : 2;
    }
    float h[2];
    memcpy(h, blk, f->asym ? 8 : 4);
    *d = h[0];
    if (f->asym) *z = h[1];
    return f->asym ? 8 : 4;
}

void qb_grid_set_code(const qb_grid *g, uint8_t *row, int64_t col, int q)
{
    uint8_t *blk = row + (size_t)(col / g->group) * g->gbytes;
    const int e = (int)(col % g->group);
    if (g->f.kind == QB_FMT_INT) {
        float d, z;
        uint8_t *codes = blk + int_header(&g->f, blk, &d, &z);
        for (int k = 0; k < g->f.bits; k++) set_bit(codes, e * g->f.bits + k, (q >> k) & 1);
        return;
    }
    switch (g->f.type) {
    case QB_TYPE_Q8_0: ((qb_block_q8_0 *)blk)->qs[e] = (int8_t)(q - 128); break;
    case QB_TYPE_Q4_0: set_nibble(&((qb_block_q4_0 *)blk)->qs[e % 16], e >= 16, q); break;
    case QB_TYPE_Q4_1: set_nibble(&((qb_block_q4_1 *)blk)->qs[e % 16], e >= 16, q); break;
    case QB_TYPE_Q5_0: {
        qb_block_q5_0 *x = (qb_block_q5_0 *)blk;
        set_nibble(&x->qs[e % 16], e >= 16, q & 15);
        set_bit(x->qh, e, q >> 4);
        break;
    }
    case QB_TYPE_Q5_1: {
        qb_block_q5_1 *x = (qb_block_q5_1 *)blk;
        set_nibble(&x->qs[e % 16], e >= 16, q & 15);
        set_bit(x->qh, e, q >> 4);
        break;
    }
    case QB_TYPE_Q2_K: /* half h = e/128, r = e%128: bits 2(r/32) of qs[32h + r%32] */
        set_bits2(&((qb_block_q2_K *)blk)->qs[32 * (e / 128) + e % 32], 2 * ((e % 128) / 32), q);
        break;
    case QB_TYPE_Q3_K: { /* the low two bits as Q2_K, the high one in hmask */
        qb_block_q3_K *x = (qb_block_q3_K *)blk;
        set_bits2(&x->qs[32 * (e / 128) + e % 32], 2 * ((e % 128) / 32), q & 3);
        set_bit(x->hmask, (e % 32) * 8 + e / 32, q >> 2);
        break;
    }
    case QB_TYPE_Q4_K:
    case QB_TYPE_Q5_K: {
        const bool five = g->f.type == QB_TYPE_Q5_K;
        const int chunk = e / 64, l = e % 64;
        uint8_t *qs = five ? ((qb_block_q5_K *)blk)->qs : ((qb_block_q4_K *)blk)->qs;
        set_nibble(&qs[chunk * 32 + l % 32], l >= 32, q & 15);
        if (five) set_bit(((qb_block_q5_K *)blk)->qh, (l % 32) * 8 + 2 * chunk + (l >= 32), q >> 4);
        break;
    }
    case QB_TYPE_Q6_K: {
        qb_block_q6_K *x = (qb_block_q6_K *)blk;
        const int half = e / 128, r = e % 128, k = r / 32, l = r % 32;
        set_nibble(&x->ql[half * 64 + l + (k & 1) * 32], k >= 2, q & 15);
        set_bits2(&x->qh[half * 32 + l], 2 * k, q >> 4);
        break;
    }
    default: break; /* excluded by qb_grid_init */
    }
}

static int get_bit(const uint8_t *bytes, int bit) { return (bytes[bit / 8] >> (bit % 8)) & 1; }

int qb_grid_get_code(const qb_grid *g, const uint8_t *row, int64_t col)
{
    const uint8_t *blk = row + (size_t)(col / g->group) * g->gbytes;
    const int e = (int)(col % g->group);
    if (g->f.kind == QB_FMT_INT) {
        float d, z;
        const uint8_t *codes = blk + int_header(&g->f, blk, &d, &z);
        int q = 0;
        for (int k = 0; k < g->f.bits; k++) q |= get_bit(codes, e * g->f.bits + k) << k;
        return q;
    }
    switch (g->f.type) {
    case QB_TYPE_Q8_0: return ((const qb_block_q8_0 *)blk)->qs[e] + 128;
    case QB_TYPE_Q4_0: return (((const qb_block_q4_0 *)blk)->qs[e % 16] >> (e >= 16 ? 4 : 0)) & 15;
    case QB_TYPE_Q4_1: return (((const qb_block_q4_1 *)blk)->qs[e % 16] >> (e >= 16 ? 4 : 0)) & 15;
    case QB_TYPE_Q5_0: {
        const qb_block_q5_0 *x = (const qb_block_q5_0 *)blk;
        return ((x->qs[e % 16] >> (e >= 16 ? 4 : 0)) & 15) | get_bit(x->qh, e) << 4;
    }
    case QB_TYPE_Q5_1: {
        const qb_block_q5_1 *x = (const qb_block_q5_1 *)blk;
        return ((x->qs[e % 16] >> (e >= 16 ? 4 : 0)) & 15) | get_bit(x->qh, e) << 4;
    }
    case QB_TYPE_Q2_K:
        return (((const qb_block_q2_K *)blk)->qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
    case QB_TYPE_Q3_K: {
        const qb_block_q3_K *x = (const qb_block_q3_K *)blk;
        return ((x->qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3) |
               get_bit(x->hmask, (e % 32) * 8 + e / 32) << 2;
    }
    case QB_TYPE_Q4_K:
    case QB_TYPE_Q5_K: {
        const bool five = g->f.type == QB_TYPE_Q5_K;
        const int chunk = e / 64, l = e % 64;
        const uint8_t *qs = five ? ((const qb_block_q5_K *)blk)->qs : ((const qb_block_q4_K *)blk)->qs;
        const int lo = (qs[chunk * 32 + l % 32] >> (l >= 32 ? 4 : 0)) & 15;
        return five ? lo | get_bit(((const qb_block_q5_K *)blk)->qh, (l % 32) * 8 + 2 * chunk + (l >= 32)) << 4 : lo;
    }
    case QB_TYPE_Q6_K: {
        const qb_block_q6_K *x = (const qb_block_q6_K *)blk;
        const int half = e / 128, r = e % 128, k = r / 32, l = r % 32;
        return ((x->ql[half * 64 + l + (k & 1) * 32] >> (k >= 2 ? 4 : 0)) & 15) |
               ((x->qh[half * 32 + l] >> (2 * k)) & 3) << 4;
    }
    default: return 0; /* excluded by qb_grid_init */
    }
}

float qb_grid_round(const qb_grid *g, uint8_t *row, int64_t col, float w)
{
    const uint8_t *blk = row + (size_t)(col / g->group) * g->gbytes;
    const int e = (int)(col % g->group);
    if (g->f.kind == QB_FMT_INT) {
        const int maxq = (1 << g->f.bits) - 1;
        float d, z;
        (void)int_header(&g->f, blk, &d, &z);
        float t = d != 0.0f ? rintf(w / d) + z : z;
        if (!(t >= 0.0f)) t = 0.0f;
        if (t > (float)maxq) t = (float)maxq;
        qb_grid_set_code(g, row, col, (int)t);
        return d * (t - z);
    }
    /* the element's grid a·q + b, q in 0..qmax, and the value q stands for, computed with the
     * dequantizer's operations (bit for bit) */
    float a, b, v;
    int q;
    switch (g->f.type) {
    case QB_TYPE_Q8_0:
        a = qb_f16_to_f32(((const qb_block_q8_0 *)blk)->d);
        q = code_of(w, a, -128.0f * a, 255);
        v = a * (float)(q - 128);
        break;
    case QB_TYPE_Q4_0:
        a = qb_f16_to_f32(((const qb_block_q4_0 *)blk)->d);
        q = code_of(w, a, -8.0f * a, 15);
        v = a * (float)(q - 8);
        break;
    case QB_TYPE_Q4_1: {
        const qb_block_q4_1 *x = (const qb_block_q4_1 *)blk;
        a = qb_f16_to_f32(x->d);
        b = qb_f16_to_f32(x->m);
        q = code_of(w, a, b, 15);
        v = a * (float)q + b;
        break;
    }
    case QB_TYPE_Q5_0:
        a = qb_f16_to_f32(((const qb_block_q5_0 *)blk)->d);
        q = code_of(w, a, -16.0f * a, 31);
        v = a * (float)(q - 16);
        break;
    case QB_TYPE_Q5_1: {
        const qb_block_q5_1 *x = (const qb_block_q5_1 *)blk;
        a = qb_f16_to_f32(x->d);
        b = qb_f16_to_f32(x->m);
        q = code_of(w, a, b, 31);
        v = a * (float)q + b;
        break;
    }
    case QB_TYPE_Q2_K: {
        const qb_block_q2_K *x = (const qb_block_q2_K *)blk;
        const int s = e / 16;
        a = qb_f16_to_f32(x->d) * (float)(x->scales[s] & 15);
        b = -(qb_f16_to_f32(x->dmin) * (float)(x->scales[s] >> 4));
        q = code_of(w, a, b, 3);
        v = a * (float)q + b;
        break;
    }
    case QB_TYPE_Q3_K: { /* a may be negative: q = rint(w/a) + 4 all the same */
        const qb_block_q3_K *x = (const qb_block_q3_K *)blk;
        a = qb_f16_to_f32(x->d) * (float)(q3_K_scale(x->scales, e / 16) - 32);
        q = code_of(w, a, -4.0f * a, 7);
        v = a * (float)(q - 4);
        break;
    }
    case QB_TYPE_Q4_K:
    case QB_TYPE_Q5_K: {
        const bool five = g->f.type == QB_TYPE_Q5_K;
        const uint8_t *scales = five ? ((const qb_block_q5_K *)blk)->scales : ((const qb_block_q4_K *)blk)->scales;
        const uint16_t dd = five ? ((const qb_block_q5_K *)blk)->d : ((const qb_block_q4_K *)blk)->d;
        const uint16_t dm = five ? ((const qb_block_q5_K *)blk)->dmin : ((const qb_block_q4_K *)blk)->dmin;
        int sc, m;
        scale_min_k4(e / 32, scales, &sc, &m);
        a = qb_f16_to_f32(dd) * (float)sc;
        b = -(qb_f16_to_f32(dm) * (float)m);
        q = code_of(w, a, b, five ? 31 : 15);
        v = a * (float)q + b;
        break;
    }
    case QB_TYPE_Q6_K: {
        const qb_block_q6_K *x = (const qb_block_q6_K *)blk;
        a = qb_f16_to_f32(x->d) * (float)x->scales[e / 16];
        q = code_of(w, a, -32.0f * a, 63);
        v = a * (float)(q - 32);
        break;
    }
    default: return w; /* excluded by qb_grid_init */
    }
    qb_grid_set_code(g, row, col, q);
    return v;
}
