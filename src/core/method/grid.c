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
                   "q5_1, q4_k, q5_k, q6_k)",
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

static void set_nibble(uint8_t *b, bool high, int q)
{
    *b = high ? (uint8_t)((*b & 0x0F) | (q << 4)) : (uint8_t)((*b & 0xF0) | q);
}

static void set_bit(uint8_t *bytes, int bit, int on)
{
    if (on) bytes[bit / 8] |= (uint8_t)(1u << (bit % 8));
    else bytes[bit / 8] &= (uint8_t) ~(1u << (bit % 8));
}

static int code_of(float w, float a, float b, int qmax)
{
    float t = a != 0.0f ? rintf((w - b) / a) : 0.0f;
    if (!(t >= 0.0f)) t = 0.0f;
    if (t > (float)qmax) t = (float)qmax;
    return (int)t;
}

/* integer groups: header (f16 or f32 scale, optional zero) then a bit stream of codes */
static float round_int(const qb_grid *g, uint8_t *blk, int e, float w)
{
    const qb_format *f = &g->f;
    int maxq = (1 << f->bits) - 1;
    float d, z = (float)(1 << (f->bits - 1));
    size_t hdr;
    if (f->group > 0) {
        uint16_t h[2];
        memcpy(h, blk, f->asym ? 4 : 2);
        d = qb_f16_to_f32(h[0]);
        if (f->asym) z = qb_f16_to_f32(h[1]);
        hdr = f->asym ? 4 : 2;
    } else {
        float h[2];
        memcpy(h, blk, f->asym ? 8 : 4);
        d = h[0];
        if (f->asym) z = h[1];
        hdr = f->asym ? 8 : 4;
    }
    float t = d != 0.0f ? rintf(w / d) + z : z;
    if (!(t >= 0.0f)) t = 0.0f;
    if (t > (float)maxq) t = (float)maxq;
    int q = (int)t;
    uint8_t *codes = blk + hdr;
    for (int k = 0; k < f->bits; k++) set_bit(codes, e * f->bits + k, (q >> k) & 1);
    return d * ((float)q - z);
}

float qb_grid_round(const qb_grid *g, uint8_t *row, int64_t col, float w)
{
    uint8_t *blk = row + (size_t)(col / g->group) * g->gbytes;
    int e = (int)(col % g->group);
    if (g->f.kind == QB_FMT_INT) return round_int(g, blk, e, w);
    float a, b;
    int q;
    switch (g->f.type) {
    case QB_TYPE_Q8_0: {
        qb_block_q8_0 *x = (qb_block_q8_0 *)blk;
        a = qb_f16_to_f32(x->d);
        b = -128.0f * a;
        q = code_of(w, a, b, 255);
        x->qs[e] = (int8_t)(q - 128);
        return a * (float)(q - 128);
    }
    case QB_TYPE_Q4_0: {
        qb_block_q4_0 *x = (qb_block_q4_0 *)blk;
        a = qb_f16_to_f32(x->d);
        q = code_of(w, a, -8.0f * a, 15);
        set_nibble(&x->qs[e % 16], e >= 16, q);
        return a * (float)(q - 8);
    }
    case QB_TYPE_Q4_1: {
        qb_block_q4_1 *x = (qb_block_q4_1 *)blk;
        a = qb_f16_to_f32(x->d);
        b = qb_f16_to_f32(x->m);
        q = code_of(w, a, b, 15);
        set_nibble(&x->qs[e % 16], e >= 16, q);
        return a * (float)q + b;
    }
    case QB_TYPE_Q5_0: {
        qb_block_q5_0 *x = (qb_block_q5_0 *)blk;
        a = qb_f16_to_f32(x->d);
        q = code_of(w, a, -16.0f * a, 31);
        set_nibble(&x->qs[e % 16], e >= 16, q & 15);
        set_bit(x->qh, e, q >> 4);
        return a * (float)(q - 16);
    }
    case QB_TYPE_Q5_1: {
        qb_block_q5_1 *x = (qb_block_q5_1 *)blk;
        a = qb_f16_to_f32(x->d);
        b = qb_f16_to_f32(x->m);
        q = code_of(w, a, b, 31);
        set_nibble(&x->qs[e % 16], e >= 16, q & 15);
        set_bit(x->qh, e, q >> 4);
        return a * (float)q + b;
    }
    case QB_TYPE_Q4_K:
    case QB_TYPE_Q5_K: {
        bool five = g->f.type == QB_TYPE_Q5_K;
        const uint8_t *scales = five ? ((qb_block_q5_K *)blk)->scales : ((qb_block_q4_K *)blk)->scales;
        uint16_t dd = five ? ((qb_block_q5_K *)blk)->d : ((qb_block_q4_K *)blk)->d;
        uint16_t dm = five ? ((qb_block_q5_K *)blk)->dmin : ((qb_block_q4_K *)blk)->dmin;
        int sc, m;
        scale_min_k4(e / 32, scales, &sc, &m);
        a = qb_f16_to_f32(dd) * (float)sc;
        b = -(qb_f16_to_f32(dm) * (float)m);
        q = code_of(w, a, b, five ? 31 : 15);
        int chunk = e / 64, l = e % 64;
        uint8_t *qs = five ? ((qb_block_q5_K *)blk)->qs : ((qb_block_q4_K *)blk)->qs;
        set_nibble(&qs[chunk * 32 + l % 32], l >= 32, q & 15);
        if (five) set_bit(((qb_block_q5_K *)blk)->qh, (l % 32) * 8 + 2 * chunk + (l >= 32), q >> 4);
        return a * (float)q + b;
    }
    case QB_TYPE_Q6_K: {
        qb_block_q6_K *x = (qb_block_q6_K *)blk;
        int half = e / 128, r = e % 128, k = r / 32, l = r % 32;
        a = qb_f16_to_f32(x->d) * (float)x->scales[half * 8 + l / 16 + 2 * k];
        q = code_of(w, a, -32.0f * a, 63);
        set_nibble(&x->ql[half * 64 + l + (k & 1) * 32], k >= 2, q & 15);
        uint8_t *h = &x->qh[half * 32 + l];
        *h = (uint8_t)((*h & ~(3u << (2 * k))) | ((unsigned)(q >> 4) << (2 * k)));
        return a * (float)(q - 32);
    }
    default: return w; /* excluded by qb_grid_init */
    }
}
