/* smoothquant.c — SmoothQuant scales folded into norms / preceding linears, plain W8A8, and
 * the per-channel activation absmax they are computed from, read from a calibration
 * (calib.h; contracts in smoothquant.h). */
#include "smoothquant.h"
#include "../quant/apply.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- tensors ---------------------------------------------------------------------------- */

qb_status qb_method_set_tensor(qb_ctx *ctx, qb_tensor *t, const float *w, const qb_format *fmt)
{
    int64_t n = t->ne[0], rows = qb_tensor_rows(t);
    qb_status st = qb_format_check(ctx, fmt, n);
    if (st != QB_OK) {
        char why[sizeof ctx->errmsg];
        snprintf(why, sizeof why, "%s", ctx->errmsg);
        return qb_fail(ctx, st, "tensor %s: %s", t->name, why);
    }
    size_t rb = qb_format_row_bytes(fmt, n);
    void *dst = malloc(rb * (size_t)rows);
    if (!dst) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory storing %s", t->name);
    st = qb_quantize_matrix(ctx, fmt, w, rows, n, dst, NULL);
    if (st != QB_OK) {
        free(dst);
        return st;
    }
    free(t->owned);
    t->owned = dst;
    t->data = dst;
    t->nbytes = rb * (size_t)rows;
    t->fmt = *fmt;
    t->type = qb_format_storage_type(fmt);
    return QB_OK;
}

static float *source_matrix(qb_ctx *ctx, const qb_tensor *t)
{
    int64_t n = t->ne[0], rows = qb_tensor_rows(t);
    float *w = malloc((size_t)(n * rows) * sizeof(float));
    if (!w) {
        qb_fail(ctx, QB_ERR_NOMEM, "out of memory reading %s", t->name);
        return NULL;
    }
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r += 16) qb_tensor_source_rows(t, r, rows - r < 16 ? rows - r : 16, w + r * n);
    return w;
}

qb_status qb_w8a8_clear(qb_ctx *ctx, qb_model *m, qb_run_config *rc)
{
    qb_run_config_clear_act(rc);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        qb_layer_weights *L = &m->layers[l];
        qb_tensor *ts[] = {L->attn_norm, L->ffn_norm, L->wq, L->wk, L->wv, L->wo, L->w_gate, L->w_up, L->w_down};
        for (int i = 0; i < 9; i++) {
            qb_status st = qb_tensor_restore(ctx, ts[i]);
            if (st != QB_OK) return st;
        }
    }
    return QB_OK;
}

/* ---- smoothing -------------------------------------------------------------------------- */

/* s_j for n channels from activation absmax ax and weight absmax aw (clamped at 1e-5 as the
 * authors' code does). */
static void scales(const float *ax, const float *aw, int n, float alpha, float *s)
{
    for (int j = 0; j < n; j++) {
        float x = fmaxf(ax[j], 1e-5f), w = fmaxf(aw[j], 1e-5f);
        s[j] = powf(x, alpha) / powf(w, 1.0f - alpha);
        if (!isfinite(s[j]) || s[j] <= 0) s[j] = 1.0f;
    }
}

/* max |W[r][j]| over the rows of matrices ws (each rows[i] × n) into aw (n). */
static void col_absmax(float *const *ws, const int64_t *rows, int nw, int n, float *aw)
{
    for (int j = 0; j < n; j++) aw[j] = 0;
    for (int i = 0; i < nw; i++)
        for (int64_t r = 0; r < rows[i]; r++)
            for (int j = 0; j < n; j++) aw[j] = fmaxf(aw[j], fabsf(ws[i][(size_t)r * n + j]));
}

static void scale_cols(float *w, int64_t rows, int n, const float *s)
{
    for (int64_t r = 0; r < rows; r++)
        for (int j = 0; j < n; j++) w[(size_t)r * n + j] *= s[j];
}

enum { WQ, WK, WV, WO, WG, WU, WD, NW };

typedef struct {
    float *w[NW];
    int64_t rows[NW];
    int n[NW];
    float *norm[2];      /* attn, ffn (dim) */
    float amax[NW];      /* activation absmax of each matrix's input after smoothing */
} layer_buf;

static void free_layer(layer_buf *b)
{
    for (int i = 0; i < NW; i++) free(b->w[i]);
    free(b->norm[0]);
    free(b->norm[1]);
}

static float vmax(const float *x, int n, const float *s)
{
    float m = 0;
    for (int j = 0; j < n; j++) m = fmaxf(m, s ? x[j] / s[j] : x[j]);
    return m;
}

/* Smooth one layer's float copies in place. */
static qb_status smooth_layer(qb_ctx *ctx, const qb_model *m, int l, layer_buf *b, const qb_calib *a,
                              const qb_smoothquant_opts *o)
{
    const qb_config *c = &m->cfg;
    int dim = c->dim, hid = c->hidden_dim, hd = c->head_dim, group = c->n_heads / c->n_kv_heads;
    int kvd = c->n_kv_heads * hd, qd = c->n_heads * hd;
    int wmax = hid > qd ? hid : qd;
    if (dim > wmax) wmax = dim;
    float *s = malloc((size_t)wmax * sizeof(float)), *aw = malloc((size_t)wmax * sizeof(float));
    float *ax = malloc((size_t)wmax * sizeof(float)), *sq = malloc((size_t)qd * sizeof(float));
    if (!s || !aw || !ax || !sq) {
        free(s), free(aw), free(ax), free(sq);
        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory smoothing layer %d", l);
    }
    /* per-channel absmax of the four inputs, from the shared calibration (checked present) */
    const float *xa = a ? qb_calib_get(a, l, QB_OBS_ATTN_IN)->absmax : NULL;
    const float *xo = a ? qb_calib_get(a, l, QB_OBS_ATTN_OUT)->absmax : NULL;
    const float *xf = a ? qb_calib_get(a, l, QB_OBS_FFN_IN)->absmax : NULL;
    const float *xd = a ? qb_calib_get(a, l, QB_OBS_FFN_DOWN_IN)->absmax : NULL;
    for (int i = 0; i < NW; i++) b->amax[i] = 0;
    if (a) {
        b->amax[WQ] = b->amax[WK] = b->amax[WV] = vmax(xa, dim, NULL);
        b->amax[WO] = vmax(xo, qd, NULL);
        b->amax[WG] = b->amax[WU] = vmax(xf, dim, NULL);
        b->amax[WD] = vmax(xd, hid, NULL);
    }
    if (o->smooth) {
        /* attn_norm → wq, wk, wv */
        col_absmax(&b->w[WQ], &b->rows[WQ], 3, dim, aw);
        scales(xa, aw, dim, o->alpha, s);
        for (int i = WQ; i <= WV; i++) scale_cols(b->w[i], b->rows[i], dim, s);
        for (int j = 0; j < dim; j++) b->norm[0][j] /= s[j];
        b->amax[WQ] = b->amax[WK] = b->amax[WV] = vmax(xa, dim, s);
        /* ffn_norm → w_gate, w_up */
        col_absmax(&b->w[WG], &b->rows[WG], 2, dim, aw);
        scales(xf, aw, dim, o->alpha, s);
        for (int i = WG; i <= WU; i++) scale_cols(b->w[i], b->rows[i], dim, s);
        for (int j = 0; j < dim; j++) b->norm[1][j] /= s[j];
        b->amax[WG] = b->amax[WU] = vmax(xf, dim, s);
    }
    if (o->smooth && o->smooth_out) {
        /* wv rows → wo columns: one scale per v channel, shared by the q heads of its group */
        col_absmax(&b->w[WO], &b->rows[WO], 1, qd, sq);
        for (int ch = 0; ch < kvd; ch++) {
            int kvh = ch / hd, i = ch % hd;
            ax[ch] = aw[ch] = 0;
            for (int h = kvh * group; h < (kvh + 1) * group; h++) {
                ax[ch] = fmaxf(ax[ch], xo[h * hd + i]);
                aw[ch] = fmaxf(aw[ch], sq[h * hd + i]);
            }
        }
        scales(ax, aw, kvd, o->alpha, s);
        for (int ch = 0; ch < kvd; ch++)
            for (int j = 0; j < dim; j++) b->w[WV][(size_t)ch * dim + j] /= s[ch];
        for (int h = 0; h < c->n_heads; h++)
            for (int i = 0; i < hd; i++) sq[h * hd + i] = s[(h / group) * hd + i];
        scale_cols(b->w[WO], b->rows[WO], qd, sq);
        b->amax[WO] = vmax(xo, qd, sq);
        /* w_up rows → w_down columns */
        col_absmax(&b->w[WD], &b->rows[WD], 1, hid, aw);
        scales(xd, aw, hid, o->alpha, s);
        for (int j = 0; j < hid; j++)
            for (int k = 0; k < dim; k++) b->w[WU][(size_t)j * dim + k] /= s[j];
        scale_cols(b->w[WD], b->rows[WD], hid, s);
        b->amax[WD] = vmax(xd, hid, s);
    }
    free(s), free(aw), free(ax), free(sq);
    return QB_OK;
}

static qb_status check_stats(qb_ctx *ctx, const qb_model *m, const qb_calib *a)
{
    const qb_config *c = &m->cfg;
    if (!a) return qb_fail(ctx, QB_ERR_ARG, "SmoothQuant / static activation scales need calibration statistics");
    if (a->n_layers != c->n_layers)
        return qb_fail(ctx, QB_ERR_ARG, "calibration statistics are for another model shape (%d layers, not %d)",
                       a->n_layers, c->n_layers);
    const int want[QB_OBS_OUTPUT_IN] = {[QB_OBS_ATTN_IN] = c->dim, [QB_OBS_ATTN_OUT] = c->n_heads * c->head_dim,
                                        [QB_OBS_FFN_IN] = c->dim, [QB_OBS_FFN_DOWN_IN] = c->hidden_dim};
    for (int l = 0; l < c->n_layers; l++)
        for (int p = 0; p < QB_OBS_OUTPUT_IN; p++) {
            const qb_calib_stat *st = qb_calib_get(a, l, (qb_obs_point)p);
            if (!st) return qb_fail(ctx, QB_ERR_ARG, "the calibration did not capture layer %d's inputs", l);
            if (st->width != want[p])
                return qb_fail(ctx, QB_ERR_ARG, "calibration statistics are for another model shape (layer %d: "
                               "%d channels, not %d)", l, st->width, want[p]);
        }
    return QB_OK;
}

static qb_status store_norm(qb_ctx *ctx, qb_tensor *t, const float *v, int n)
{
    float *buf = malloc((size_t)n * sizeof(float));
    if (!buf) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory storing %s", t->name);
    memcpy(buf, v, (size_t)n * sizeof(float));
    free(t->owned);
    t->owned = buf;
    t->data = buf;
    t->type = QB_TYPE_F32;
    t->fmt = qb_format_ggml(QB_TYPE_F32);
    t->nbytes = (size_t)n * sizeof(float);
    return QB_OK;
}

qb_status qb_smoothquant_apply(qb_ctx *ctx, qb_model *m, qb_run_config *rc, const qb_calib *a,
                               const qb_smoothquant_opts *o)
{
    const qb_config *c = &m->cfg;
    qb_format int8ch = {.kind = QB_FMT_INT, .bits = 8, .group = QB_GROUP_CHANNEL};
    const qb_format *wf = o->wfmt ? o->wfmt : &int8ch;
    if (o->smooth && !(o->alpha >= 0.0f && o->alpha <= 1.0f))
        return qb_fail(ctx, QB_ERR_ARG, "SmoothQuant alpha %g out of range [0, 1]", (double)o->alpha);
    if (o->act_mode != QB_ACT_FLOAT && o->act_mode != QB_ACT_INT8 && o->act_mode != QB_ACT_INT8_STATIC)
        return qb_fail(ctx, QB_ERR_ARG, "activation mode %d is not int8 dynamic, int8 static or float", o->act_mode);
    if (!qb_model_blocks_plain(m))
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: SmoothQuant needs separate q/k/v and gate/up/down matrices in "
                       "every block; this %s model has %s", m->path, qb_arch_get(m->cfg.arch)->gguf,
                       m->cfg.n_experts ? "experts" : "fused matrices");
    if (o->act_mode != QB_ACT_FLOAT && (!rc || rc->n_tensors != m->n_tensors))
        return qb_fail(ctx, QB_ERR_ARG, "activation quantization needs a run configuration made for this model");
    if (o->act_mode != QB_ACT_FLOAT && !qb_w8a8_format_ok(wf)) {
        char nm[64];
        qb_format_name(wf, nm, sizeof nm);
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "W8A8 needs int8 weights per channel or per tensor, not %s", nm);
    }
    if ((o->smooth || o->act_mode == QB_ACT_INT8_STATIC) && check_stats(ctx, m, a) != QB_OK) return QB_ERR_ARG;
    qb_status st = qb_format_check(ctx, wf, c->dim);
    if (st != QB_OK) return st;
    qb_ctx_apply_threads(ctx);
    for (int l = 0; l < c->n_layers; l++) {
        qb_layer_weights *L = &m->layers[l];
        qb_tensor *ts[NW] = {L->wq, L->wk, L->wv, L->wo, L->w_gate, L->w_up, L->w_down};
        layer_buf b = {0};
        st = QB_OK;
        for (int i = 0; i < NW && st == QB_OK; i++) {
            b.rows[i] = qb_tensor_rows(ts[i]);
            b.n[i] = (int)ts[i]->ne[0];
            if (!(b.w[i] = source_matrix(ctx, ts[i]))) st = QB_ERR_NOMEM;
        }
        for (int i = 0; i < 2 && st == QB_OK; i++) {
            qb_tensor *nt = i ? L->ffn_norm : L->attn_norm;
            if (!(b.norm[i] = malloc((size_t)c->dim * sizeof(float)))) st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
            else qb_tensor_source_rows(nt, 0, 1, b.norm[i]);
        }
        if (st == QB_OK) st = smooth_layer(ctx, m, l, &b, (o->smooth || o->act_mode == QB_ACT_INT8_STATIC) ? a : NULL, o);
        for (int i = 0; i < NW && st == QB_OK; i++) {
            st = qb_method_set_tensor(ctx, ts[i], b.w[i], wf);
            qb_act_setting *as = qb_run_config_act_mut(rc, m, ts[i]);
            if (as) *as = (qb_act_setting){.mode = o->act_mode, .scale = b.amax[i] > 0 ? b.amax[i] / 127.0f : 1.0f};
        }
        if (st == QB_OK && o->smooth) st = store_norm(ctx, L->attn_norm, b.norm[0], c->dim);
        if (st == QB_OK && o->smooth) st = store_norm(ctx, L->ffn_norm, b.norm[1], c->dim);
        if (st == QB_OK && !o->smooth) st = qb_tensor_restore(ctx, L->attn_norm);
        if (st == QB_OK && !o->smooth) st = qb_tensor_restore(ctx, L->ffn_norm);
        free_layer(&b);
        if (st != QB_OK) {
            qb_status keep = st;
            char why[sizeof ctx->errmsg];
            snprintf(why, sizeof why, "%s", ctx->errmsg);
            qb_w8a8_clear(ctx, m, rc); /* never leave a half-smoothed model */
            return qb_fail(ctx, keep, "%s", why);
        }
    }
    return QB_OK;
}
