/* fold.c — per-channel scales folded exactly into norms and linear layers, current-value
 * access and replacement of tensors, and model reset (see fold.h). */
#include "fold.h"
#include "../quant/apply.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void qb_tensor_current_rows(const qb_tensor *t, int64_t r0, int64_t nr, float *out)
{
    int64_t n = t->ne[0];
    size_t rb = qb_format_row_bytes(&t->fmt, n);
    for (int64_t r = 0; r < nr; r++)
        qb_dequantize_row(&t->fmt, (const uint8_t *)t->data + (size_t)(r0 + r) * rb, out + r * n, n);
}

void qb_tensor_install(qb_tensor *t, void *buf, size_t nbytes, const qb_format *fmt)
{
    if (t->owned != buf) free(t->owned);
    t->owned = buf;
    t->data = buf;
    t->nbytes = nbytes;
    t->fmt = *fmt;
    t->type = qb_format_storage_type(fmt);
}

qb_status qb_tensor_set_f32(qb_ctx *ctx, qb_tensor *t, const float *vals)
{
    size_t n = (size_t)qb_tensor_nelements(t);
    float *buf = malloc(n * sizeof *buf);
    if (!buf) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory changing %s", t->name);
    memcpy(buf, vals, n * sizeof *buf);
    qb_format f = qb_format_ggml(QB_TYPE_F32);
    qb_tensor_install(t, buf, n * sizeof *buf, &f);
    return QB_OK;
}

/* Current values of t, f32, malloc'd (NULL when out of memory). */
static float *current(const qb_tensor *t)
{
    int64_t rows = qb_tensor_rows(t), n = t->ne[0];
    float *v = malloc((size_t)(rows * n) * sizeof *v);
    if (!v) return NULL;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r += 16) qb_tensor_current_rows(t, r, rows - r < 16 ? rows - r : 16, v + r * n);
    return v;
}

/* new values for up to four tensors: columns scaled (col_s) or rows scaled (row_s) */
typedef struct {
    qb_tensor *t;
    const float *s;
    bool rows; /* true: row r divided by s[r]; false: column j multiplied by s[j]; norm: divided */
} edit;

static qb_status apply_edits(qb_ctx *ctx, edit *e, int n)
{
    float *vals[4] = {0};
    qb_status st = QB_OK;
    for (int i = 0; i < n && st == QB_OK; i++) {
        qb_tensor *t = e[i].t;
        if (!(vals[i] = current(t))) {
            st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory changing %s", t->name);
            break;
        }
        int64_t rows = qb_tensor_rows(t), w = t->ne[0];
        if (t->n_dims < 2) {
            for (int64_t j = 0; j < w; j++) vals[i][j] /= e[i].s[j];
            continue;
        }
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < w; j++) vals[i][r * w + j] = e[i].rows ? vals[i][r * w + j] / e[i].s[r]
                                                                            : vals[i][r * w + j] * e[i].s[j];
    }
    /* every new value is ready: now replace (cannot fail halfway except for memory, checked
     * by allocating all copies first) */
    float *bufs[4] = {0};
    for (int i = 0; i < n && st == QB_OK; i++) {
        size_t ne = (size_t)qb_tensor_nelements(e[i].t);
        if (!(bufs[i] = malloc(ne * sizeof(float)))) st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory folding scales");
    }
    for (int i = 0; i < n; i++) {
        if (st == QB_OK) {
            size_t ne = (size_t)qb_tensor_nelements(e[i].t);
            memcpy(bufs[i], vals[i], ne * sizeof(float));
            qb_format f = qb_format_ggml(QB_TYPE_F32);
            qb_tensor_install(e[i].t, bufs[i], ne * sizeof(float), &f);
        } else {
            free(bufs[i]);
        }
        free(vals[i]);
    }
    return st;
}

qb_status qb_fold_scales(qb_ctx *ctx, qb_model *m, int layer, qb_obs_point pt, const float *s)
{
    const qb_config *c = &m->cfg;
    if (layer < 0 || layer >= c->n_layers) return qb_fail(ctx, QB_ERR_ARG, "fold: layer %d out of range", layer);
    qb_layer_weights *L = &m->layers[layer];
    if (!qb_model_blocks_plain(m))
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "fold: %s has fused or expert matrices", m->path);
    int width = pt == QB_OBS_FFN_DOWN_IN ? c->hidden_dim : pt == QB_OBS_ATTN_OUT ? c->n_heads * c->head_dim : c->dim;
    for (int i = 0; i < width; i++)
        if (!(s[i] > 0.0f) || !isfinite(s[i]))
            return qb_fail(ctx, QB_ERR_ARG, "fold: scale %d of layer %d is %g (must be positive and finite)", i,
                           layer, (double)s[i]);
    edit e[4];
    int n = 0;
    float *vs = NULL;
    switch (pt) {
    case QB_OBS_ATTN_IN:
        e[n++] = (edit){L->attn_norm, s, false};
        e[n++] = (edit){L->wq, s, false};
        e[n++] = (edit){L->wk, s, false};
        e[n++] = (edit){L->wv, s, false};
        break;
    case QB_OBS_FFN_IN:
        e[n++] = (edit){L->ffn_norm, s, false};
        e[n++] = (edit){L->w_gate, s, false};
        e[n++] = (edit){L->w_up, s, false};
        break;
    case QB_OBS_FFN_DOWN_IN:
        e[n++] = (edit){L->w_up, s, true};
        e[n++] = (edit){L->w_down, s, false};
        break;
    case QB_OBS_ATTN_OUT: {
        int hd = c->head_dim, group = c->n_heads / c->n_kv_heads, kvd = c->n_kv_heads * hd;
        if (!(vs = malloc((size_t)kvd * sizeof *vs))) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
        for (int h = 0; h < c->n_heads; h++)
            for (int i = 0; i < hd; i++) {
                float v = s[h * hd + i];
                int r = (h / group) * hd + i;
                if (h % group == 0) vs[r] = v;
                else if (vs[r] != v) {
                    free(vs);
                    return qb_fail(ctx, QB_ERR_UNSUPPORTED,
                                   "fold: layer %d: v→o scales differ within a grouped-query head (not exact)", layer);
                }
            }
        e[n++] = (edit){L->wv, vs, true};
        if (L->bv) e[n++] = (edit){L->bv, vs, true}; /* the bias is part of v's rows */
        e[n++] = (edit){L->wo, s, false};
        break;
    }
    default: return qb_fail(ctx, QB_ERR_ARG, "fold: point %d has no foldable scales", (int)pt);
    }
    qb_status st = apply_edits(ctx, e, n);
    free(vs);
    return st;
}

qb_status qb_fold_reset(qb_ctx *ctx, qb_model *m)
{
    for (int i = 0; i < m->n_tensors; i++) {
        qb_tensor *t = &m->tensors[i];
        if (t->data == t->src_data) continue; /* never changed */
        qb_status st = qb_tensor_restore(ctx, t);
        if (st != QB_OK) return st;
    }
    return QB_OK;
}
