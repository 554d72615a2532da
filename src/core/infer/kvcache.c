/* kvcache.c — f32 / int8 / int4 key-value cache and the attention over it (layouts in
 * kvcache.h). The f32 path computes exactly what the forward pass always did (same
 * operations in the same order); quantized caches dequantize a block of QB_KV_GROUP keys or
 * one value row at a time into the calling thread's scratch. */
#include "kvcache.h"
#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

struct qb_kvcache {
    const qb_config *c;
    int n_ctx, type, bits, kv_dim, n_groups;
    size_t code_row;  /* bytes of codes per position (kv_dim · bits / 8) */
    float *k, *v;     /* f32: (layer, n_ctx, kv_dim) */
    uint8_t *kq, *vq; /* quantized: (layer, n_ctx, code_row) */
    float *kp;        /* (layer, n_groups, kv_dim, {scale, min}) */
    float *vp;        /* (layer, n_ctx, n_kv_heads, {scale, min}) */
    float *kres;      /* (layer, QB_KV_GROUP, kv_dim) keys of the incomplete group */
    int *filled;      /* (layer) positions held */
    float *scratch;   /* per thread: n_ctx scores, QB_KV_GROUP·head_dim keys, head_dim values */
    size_t scratch_per;
    int n_scratch;
};

qb_status qb_kv_type_parse(qb_ctx *ctx, const char *name, int *out)
{
    if (!strcmp(name, "f32")) *out = QB_KV_F32;
    else if (!strcmp(name, "int8")) *out = QB_KV_INT8;
    else if (!strcmp(name, "int4")) *out = QB_KV_INT4;
    else return qb_fail(ctx, QB_ERR_ARG, "unknown KV cache type '%s' (f32, int8, int4)", name);
    return QB_OK;
}

const char *qb_kv_type_name(int type)
{
    return type == QB_KV_F32 ? "f32" : type == QB_KV_INT8 ? "int8" : type == QB_KV_INT4 ? "int4" : "?";
}

size_t qb_kv_bytes(const qb_config *c, int n_ctx, int type)
{
    size_t L = (size_t)c->n_layers, kvd = (size_t)c->n_kv_heads * c->head_dim;
    if (type == QB_KV_F32) return 2 * L * n_ctx * kvd * sizeof(float);
    int bits = type == QB_KV_INT8 ? 8 : 4;
    size_t groups = (size_t)n_ctx / QB_KV_GROUP + 1;
    return L * (2 * (size_t)n_ctx * kvd * bits / 8 + groups * kvd * 2 * sizeof(float) +
                (size_t)n_ctx * c->n_kv_heads * 2 * sizeof(float) + QB_KV_GROUP * kvd * sizeof(float));
}

size_t qb_kv_bytes_f16(const qb_config *c, int n_ctx)
{
    return 2 * (size_t)c->n_layers * n_ctx * c->n_kv_heads * c->head_dim * 2;
}

void qb_kvcache_free(qb_kvcache *kv)
{
    if (!kv) return;
    free(kv->k);
    free(kv->v);
    free(kv->kq);
    free(kv->vq);
    free(kv->kp);
    free(kv->vp);
    free(kv->kres);
    free(kv->filled);
    free(kv->scratch);
    free(kv);
}

int qb_kvcache_type(const qb_kvcache *kv) { return kv->type; }

qb_status qb_kvcache_new(qb_ctx *ctx, const qb_config *c, int n_ctx, int type, qb_kvcache **out)
{
    *out = NULL;
    if (type != QB_KV_F32 && type != QB_KV_INT8 && type != QB_KV_INT4)
        return qb_fail(ctx, QB_ERR_ARG, "unknown KV cache type %d", type);
    qb_kvcache *kv = calloc(1, sizeof *kv);
    if (!kv) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    kv->c = c;
    kv->n_ctx = n_ctx;
    kv->type = type;
    kv->kv_dim = c->n_kv_heads * c->head_dim;
    kv->n_groups = n_ctx / QB_KV_GROUP + 1;
    size_t L = (size_t)c->n_layers, cells = L * n_ctx * kv->kv_dim;
    kv->filled = calloc(L, sizeof(int));
    bool ok = kv->filled != NULL;
    if (type == QB_KV_F32) {
        kv->k = calloc(cells, sizeof(float));
        kv->v = calloc(cells, sizeof(float));
        ok = ok && kv->k && kv->v;
    } else {
        kv->bits = type == QB_KV_INT8 ? 8 : 4;
        kv->code_row = (size_t)kv->kv_dim * kv->bits / 8;
        kv->kq = calloc(L * n_ctx, kv->code_row);
        kv->vq = calloc(L * n_ctx, kv->code_row);
        kv->kp = calloc(L * kv->n_groups * kv->kv_dim * 2, sizeof(float));
        kv->vp = calloc(L * n_ctx * c->n_kv_heads * 2, sizeof(float));
        kv->kres = calloc(L * QB_KV_GROUP * kv->kv_dim, sizeof(float));
        ok = ok && kv->kq && kv->vq && kv->kp && kv->vp && kv->kres;
    }
    kv->scratch_per = (size_t)n_ctx + (size_t)(QB_KV_GROUP + 1) * c->head_dim;
    if (!ok) {
        qb_kvcache_free(kv);
        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory for a %d-token %s KV cache", n_ctx, qb_kv_type_name(type));
    }
    *out = kv;
    return QB_OK;
}

qb_status qb_kvcache_reserve(qb_ctx *ctx, qb_kvcache *kv, int n_threads)
{
    if (n_threads < 1) n_threads = 1;
    if (n_threads <= kv->n_scratch) return QB_OK;
    float *s = realloc(kv->scratch, (size_t)n_threads * kv->scratch_per * sizeof(float));
    if (!s) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory for attention scratch (%d threads)", n_threads);
    kv->scratch = s;
    kv->n_scratch = n_threads;
    return QB_OK;
}

static inline void put_code(uint8_t *row, int i, int q, int bits)
{
    if (bits == 8) row[i] = (uint8_t)q;
    else row[i >> 1] = (uint8_t)(i & 1 ? (row[i >> 1] & 0x0f) | (q << 4) : (row[i >> 1] & 0xf0) | q);
}

/* Asymmetric grid of a range: scale and min (scale 0 for a constant range). */
static void grid(float mn, float mx, int bits, float *scale)
{
    *scale = (mx - mn) / (float)((1 << bits) - 1);
}

static inline int code_of(float x, float mn, float scale, int bits)
{
    if (scale <= 0) return 0;
    float q = (x - mn) / scale, hi = (float)((1 << bits) - 1);
    q = q < 0 ? 0 : q > hi ? hi : q;
    return (int)((q + 12582912.0f) - 12582912.0f); /* round half to even, no libm call */
}

/* Quantize key group g of layer l from the residual. */
static void quantize_key_group(qb_kvcache *kv, int l, int g)
{
    int d = kv->kv_dim;
    const float *res = kv->kres + (size_t)l * QB_KV_GROUP * d;
    float *par = kv->kp + ((size_t)l * kv->n_groups + g) * d * 2;
    for (int ch = 0; ch < d; ch++) {
        float mn = res[ch], mx = res[ch], sc;
        for (int j = 1; j < QB_KV_GROUP; j++) {
            mn = fminf(mn, res[(size_t)j * d + ch]);
            mx = fmaxf(mx, res[(size_t)j * d + ch]);
        }
        grid(mn, mx, kv->bits, &sc);
        par[2 * ch] = sc;
        par[2 * ch + 1] = mn;
        for (int j = 0; j < QB_KV_GROUP; j++) {
            uint8_t *row = kv->kq + ((size_t)l * kv->n_ctx + (size_t)g * QB_KV_GROUP + j) * kv->code_row;
            put_code(row, ch, code_of(res[(size_t)j * d + ch], mn, sc, kv->bits), kv->bits);
        }
    }
}

/* Keys of positions j0 .. j0+nj−1 (j0 a multiple of QB_KV_GROUP, one group) of kv head kvh:
 * returns rows `*stride` floats apart, from the cache itself or dequantized into buf. */
static const float *key_block(const qb_kvcache *kv, int l, int kvh, int j0, int nj, float *buf, size_t *stride)
{
    int d = kv->kv_dim, hd = kv->c->head_dim;
    if (kv->type == QB_KV_F32) {
        *stride = (size_t)d;
        return kv->k + ((size_t)l * kv->n_ctx + j0) * d + (size_t)kvh * hd;
    }
    int g = j0 / QB_KV_GROUP;
    if ((g + 1) * QB_KV_GROUP > kv->filled[l]) { /* the incomplete group: f32 residual */
        *stride = (size_t)d;
        return kv->kres + (size_t)l * QB_KV_GROUP * d + (size_t)kvh * hd;
    }
    const float *par = kv->kp + ((size_t)l * kv->n_groups + g) * d * 2 + (size_t)kvh * hd * 2;
    for (int j = 0; j < nj; j++) {
        const uint8_t *row = kv->kq + ((size_t)l * kv->n_ctx + j0 + j) * kv->code_row;
        float *o = buf + (size_t)j * hd;
        if (kv->bits == 8) {
            const uint8_t *c = row + (size_t)kvh * hd;
            for (int i = 0; i < hd; i++) o[i] = par[2 * i + 1] + (float)c[i] * par[2 * i];
        } else { /* head_dim is even, so a head starts on a byte */
            const uint8_t *c = row + (size_t)kvh * hd / 2;
            for (int i = 0; i < hd; i += 2) {
                o[i] = par[2 * i + 1] + (float)(c[i / 2] & 15) * par[2 * i];
                o[i + 1] = par[2 * i + 3] + (float)(c[i / 2] >> 4) * par[2 * i + 2];
            }
        }
    }
    *stride = (size_t)hd;
    return buf;
}

/* Value row of position j, kv head kvh. */
static const float *value_row(const qb_kvcache *kv, int l, int kvh, int j, float *buf)
{
    int d = kv->kv_dim, hd = kv->c->head_dim;
    if (kv->type == QB_KV_F32) return kv->v + ((size_t)l * kv->n_ctx + j) * d + (size_t)kvh * hd;
    const uint8_t *row = kv->vq + ((size_t)l * kv->n_ctx + j) * kv->code_row;
    const float *par = kv->vp + (((size_t)l * kv->n_ctx + j) * kv->c->n_kv_heads + kvh) * 2;
    if (kv->bits == 8) {
        const uint8_t *c = row + (size_t)kvh * hd;
        for (int i = 0; i < hd; i++) buf[i] = par[1] + (float)c[i] * par[0];
    } else {
        const uint8_t *c = row + (size_t)kvh * hd / 2;
        for (int i = 0; i < hd; i += 2) {
            buf[i] = par[1] + (float)(c[i / 2] & 15) * par[0];
            buf[i + 1] = par[1] + (float)(c[i / 2] >> 4) * par[0];
        }
    }
    return buf;
}

void qb_kvcache_store(qb_kvcache *kv, int l, int pos, int n, const float *k, const float *v)
{
    int d = kv->kv_dim, hd = kv->c->head_dim, nkv = kv->c->n_kv_heads;
    if (kv->type == QB_KV_F32) {
        memcpy(kv->k + ((size_t)l * kv->n_ctx + pos) * d, k, (size_t)n * d * sizeof(float));
        memcpy(kv->v + ((size_t)l * kv->n_ctx + pos) * d, v, (size_t)n * d * sizeof(float));
        kv->filled[l] = pos + n;
        return;
    }
    float *res = kv->kres + (size_t)l * QB_KV_GROUP * d;
    int g0 = pos / QB_KV_GROUP;
    if (pos % QB_KV_GROUP && (g0 + 1) * QB_KV_GROUP <= kv->filled[l]) {
        /* rewinding into a group already quantized: its kept positions back into the residual */
        float *buf = kv->scratch ? kv->scratch : NULL;
        for (int kvh = 0; kvh < nkv && buf; kvh++) {
            size_t st;
            const float *kb = key_block(kv, l, kvh, g0 * QB_KV_GROUP, pos % QB_KV_GROUP, buf, &st);
            for (int j = 0; j < pos % QB_KV_GROUP; j++)
                memcpy(res + (size_t)j * d + (size_t)kvh * hd, kb + j * st, (size_t)hd * sizeof(float));
        }
    }
    kv->filled[l] = pos; /* the group being written is incomplete until its last row arrives */
    for (int t = 0; t < n; t++) {
        int p = pos + t;
        const float *vr = v + (size_t)t * d;
        uint8_t *vrow = kv->vq + ((size_t)l * kv->n_ctx + p) * kv->code_row;
        float *par = kv->vp + ((size_t)l * kv->n_ctx + p) * nkv * 2;
        for (int h = 0; h < nkv; h++) {
            const float *x = vr + (size_t)h * hd;
            float mn = x[0], mx = x[0], sc;
            for (int i = 1; i < hd; i++) mn = fminf(mn, x[i]), mx = fmaxf(mx, x[i]);
            grid(mn, mx, kv->bits, &sc);
            par[2 * h] = sc;
            par[2 * h + 1] = mn;
            for (int i = 0; i < hd; i++) put_code(vrow, h * hd + i, code_of(x[i], mn, sc, kv->bits), kv->bits);
        }
        memcpy(res + (size_t)(p % QB_KV_GROUP) * d, k + (size_t)t * d, (size_t)d * sizeof(float));
        if ((p + 1) % QB_KV_GROUP == 0) quantize_key_group(kv, l, p / QB_KV_GROUP);
    }
    kv->filled[l] = pos + n;
}

void qb_kvcache_attention(qb_kvcache *kv, int l, const float *qs, size_t q_stride, int n, int pos,
                          const qb_attn_params *ap, float *outs)
{
    const qb_config *c = kv->c;
    const qb_kernel_table *k = qb_kernels();
    int hd = c->head_dim, group = c->n_heads / c->n_kv_heads, nth = kv->n_scratch > 0 ? kv->n_scratch : 1;
    float scale = ap->scale, cap = ap->softcap;
    int window = ap->window;
    if (!kv->scratch) return; /* qb_kvcache_reserve was not called: nothing to work in */
#pragma omp parallel for collapse(2) schedule(static) num_threads(nth)
    for (int t = 0; t < n; t++)
        for (int h = 0; h < c->n_heads; h++) {
#ifdef _OPENMP
            float *att = kv->scratch + (size_t)omp_get_thread_num() * kv->scratch_per;
#else
            float *att = kv->scratch;
#endif
            float *kbuf = att + kv->n_ctx, *vbuf = kbuf + (size_t)QB_KV_GROUP * hd;
            const float *q = qs + (size_t)t * q_stride + (size_t)h * hd;
            int kvh = h / group, end = pos + t + 1, j_lo = window > 0 && end > window ? end - window : 0;
            int len = end - j_lo;
            if (kv->type == QB_KV_F32 && cap <= 0) { /* the whole head in one kernel call (spec: qb_attn_f32_ref) */
                size_t off = (size_t)l * kv->n_ctx * kv->kv_dim + (size_t)j_lo * kv->kv_dim + (size_t)kvh * hd;
                k->attn_f32(hd, len, q, kv->k + off, (size_t)kv->kv_dim, kv->v + off, (size_t)kv->kv_dim, scale, att,
                            outs + (size_t)t * q_stride + (size_t)h * hd);
                continue;
            }
            /* scores of positions j_lo..end-1 in att[0..len) (key groups start at multiples of
             * QB_KV_GROUP, so the first group may begin before j_lo) */
            float mx = -INFINITY;
            for (int j0 = j_lo - j_lo % QB_KV_GROUP; j0 < end; j0 += QB_KV_GROUP) {
                int nj = end - j0 < QB_KV_GROUP ? end - j0 : QB_KV_GROUP;
                size_t st;
                const float *kb = key_block(kv, l, kvh, j0, nj, kbuf, &st);
                for (int j = j0 < j_lo ? j_lo - j0 : 0; j < nj; j++) {
                    float sc = k->dot_f32(hd, q, kb + (size_t)j * st) * scale;
                    if (cap > 0) sc = cap * tanhf(sc / cap);
                    att[j0 + j - j_lo] = sc;
                    if (sc > mx) mx = sc;
                }
            }
            float sum = 0;
            for (int j = 0; j < len; j++) {
                att[j] = expf(att[j] - mx);
                sum += att[j];
            }
            float inv = 1.0f / sum;
            float *out = outs + (size_t)t * q_stride + (size_t)h * hd;
            memset(out, 0, (size_t)hd * sizeof(float));
            for (int j = 0; j < len; j++) {
                float a = att[j] * inv;
                const float *v = value_row(kv, l, kvh, j_lo + j, vbuf);
                for (int i = 0; i < hd; i++) out[i] += a * v[i];
            }
        }
}
