/* calib.c — calibration runs: token windows through the forward pass, per-channel absmax,
 * Σx², Σ|x| and (optionally) XᵀX per capture point, gathered by the infer observer. */
#include "calib.h"
#include "../tokenizer/tokenizer.h"
#include "kernels.h"
#include "../util/mapfile.h"
#include "../util/sha256.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

qb_status qb_calib_windows(qb_ctx *ctx, const int32_t *tokens, int n_tokens, int n_ctx, int max_windows, int32_t bos,
                           int32_t **out, int *n_windows)
{
    *out = NULL;
    *n_windows = 0;
    if (n_ctx <= 1) return qb_fail(ctx, QB_ERR_ARG, "calibration window of %d tokens: need at least 2", n_ctx);
    if (max_windows < 0) return qb_fail(ctx, QB_ERR_ARG, "calibration: %d samples asked", max_windows);
    int nw = n_tokens / n_ctx;
    if (nw < 1)
        return qb_fail(ctx, QB_ERR_ARG, "calibration text has %d tokens, shorter than one %d-token window", n_tokens,
                       n_ctx);
    if (max_windows > 0 && nw > max_windows) nw = max_windows;
    int32_t *w = malloc((size_t)nw * n_ctx * sizeof *w);
    if (!w) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory for %d calibration windows", nw);
    memcpy(w, tokens, (size_t)nw * n_ctx * sizeof *w);
    if (bos >= 0)
        for (int i = 0; i < nw; i++) w[(size_t)i * n_ctx] = bos;
    *out = w;
    *n_windows = nw;
    return QB_OK;
}

typedef struct {
    qb_calib *c;
    bool hessian;
    float *xt;     /* (width, n_tokens) transposed scratch */
    size_t xt_cap;
    bool nomem;
} capture;

/* XᵀX upper triangle += over the rows of x (n × w), through the vector dot kernel on a
 * transposed f32 copy, each window's partial sums added into the double accumulator. */
static void add_xtx(capture *cp, double *h, const float *x, int n, int w)
{
    size_t need = (size_t)n * w;
    if (need > cp->xt_cap) {
        float *p = realloc(cp->xt, need * sizeof *p);
        if (!p) {
            cp->nomem = true;
            return;
        }
        cp->xt = p;
        cp->xt_cap = need;
    }
    float *xt = cp->xt;
    for (int t = 0; t < n; t++)
        for (int i = 0; i < w; i++) xt[(size_t)i * n + t] = x[(size_t)t * w + i];
    const qb_kernel_table *k = qb_kernels();
    /* 4 × 4 register tiles of dot products over the upper triangle of blocks */
    int nb = (w + 3) / 4;
#pragma omp parallel for schedule(dynamic, 2)
    for (int bi = 0; bi < nb; bi++) {
        int i = bi * 4, nr = w - i < 4 ? w - i : 4;
        float y[16];
        for (int j = i; j < w; j += 4) {
            int nc = w - j < 4 ? w - j : 4;
            k->tile_f32(n, xt + (size_t)i * n, (size_t)n, nr, xt + (size_t)j * n, (size_t)n, nc, y, 4);
            for (int c = 0; c < nc; c++)
                for (int r = 0; r < nr; r++)
                    if (j + c >= i + r) h[(size_t)(i + r) * w + j + c] += (double)y[c * 4 + r];
        }
    }
}

static void observer(void *ud, int layer, qb_obs_point pt, float *x, int n, int width)
{
    capture *cp = ud;
    qb_calib *c = cp->c;
    if (pt >= QB_OBS_OUTPUT_IN || layer >= c->n_layers) return;
    qb_calib_stat *s = &c->stat[layer * QB_OBS_COUNT + pt];
    if (s->width != width || !s->absmax) return; /* not captured */
    for (int t = 0; t < n; t++) {
        const float *r = x + (size_t)t * width;
        for (int i = 0; i < width; i++) {
            float a = fabsf(r[i]);
            if (a > s->absmax[i]) s->absmax[i] = a;
            s->sumsq[i] += (double)r[i] * r[i];
            s->sumabs[i] += a;
        }
    }
    s->n += n;
    if (s->xtx) add_xtx(cp, s->xtx, x, n, width);
}

static int point_width(const qb_model *m, qb_obs_point pt)
{
    const qb_config *c = &m->cfg;
    switch (pt) {
    case QB_OBS_ATTN_IN:
    case QB_OBS_FFN_IN: return c->dim;
    case QB_OBS_ATTN_OUT: return c->n_heads * c->head_dim;
    case QB_OBS_FFN_DOWN_IN: return c->hidden_dim;
    default: return 0;
    }
}

void qb_calib_free(qb_calib *c)
{
    if (!c) return;
    for (int i = 0; c->stat && i < c->n_layers * QB_OBS_COUNT; i++) {
        free(c->stat[i].absmax);
        free(c->stat[i].sumsq);
        free(c->stat[i].sumabs);
        free(c->stat[i].xtx);
    }
    free(c->stat);
    free(c->expert_tokens);
    free(c->windows);
    free(c);
}

qb_status qb_calib_run(qb_ctx *ctx, const qb_model *m, const int32_t *windows, int n_windows, const qb_calib_opts *o,
                       qb_calib **out)
{
    *out = NULL;
    int n_ctx = o && o->n_ctx > 0 ? o->n_ctx : 256;
    if (n_windows < 1) return qb_fail(ctx, QB_ERR_ARG, "calibration: no windows to run");
    qb_calib *c = calloc(1, sizeof *c);
    if (!c) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    c->n_layers = m->cfg.n_layers;
    c->n_windows = n_windows;
    c->n_ctx = n_ctx;
    c->stat = calloc((size_t)c->n_layers * QB_OBS_COUNT, sizeof *c->stat);
    c->windows = malloc((size_t)n_windows * n_ctx * sizeof *c->windows);
    if (!c->stat || !c->windows) goto nomem;
    memcpy(c->windows, windows, (size_t)n_windows * n_ctx * sizeof *c->windows);
    for (int l = 0; l < c->n_layers; l++)
        for (int p = 0; p < QB_OBS_OUTPUT_IN; p++) {
            int idx = l * QB_OBS_COUNT + p;
            if (o && o->want && !o->want[idx]) continue;
            qb_calib_stat *s = &c->stat[idx];
            int w = point_width(m, (qb_obs_point)p);
            s->width = w;
            s->absmax = calloc((size_t)w, sizeof *s->absmax);
            s->sumsq = calloc((size_t)w, sizeof *s->sumsq);
            s->sumabs = calloc((size_t)w, sizeof *s->sumabs);
            if (o && o->hessian) s->xtx = calloc((size_t)w * w, sizeof *s->xtx);
            if (!s->absmax || !s->sumsq || !s->sumabs || (o && o->hessian && !s->xtx)) goto nomem;
        }
    qb_infer *inf;
    qb_status st = qb_infer_new(ctx, m, n_ctx, n_ctx, &inf);
    if (st != QB_OK) {
        qb_calib_free(c);
        return st;
    }
    capture cp = {.c = c, .hessian = o && o->hessian};
    qb_infer_set_observer(inf, observer, &cp);
    for (int w = 0; w < n_windows && st == QB_OK; w++) {
        if (o && o->cancel && *o->cancel) {
            st = qb_fail(ctx, QB_ERR_CANCELLED, "calibration cancelled");
            break;
        }
        st = qb_infer_eval(ctx, inf, windows + (size_t)w * n_ctx, n_ctx, 0, NULL, 0);
        if (st == QB_OK && cp.nomem) st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory accumulating XᵀX");
        if (st == QB_OK && o && o->progress) o->progress(o->ud, w + 1, n_windows);
    }
    const int64_t *counts = qb_infer_expert_counts(inf);
    if (st == QB_OK && counts) {
        size_t n = (size_t)c->n_layers * m->cfg.n_experts;
        if ((c->expert_tokens = malloc(n * sizeof *c->expert_tokens))) {
            memcpy(c->expert_tokens, counts, n * sizeof *c->expert_tokens);
            c->n_experts = m->cfg.n_experts;
        } else {
            st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
        }
    }
    qb_infer_free(inf);
    free(cp.xt);
    if (st != QB_OK) {
        qb_calib_free(c);
        return st;
    }
    /* mirror the upper triangles */
    for (int i = 0; i < c->n_layers * QB_OBS_COUNT; i++) {
        qb_calib_stat *s = &c->stat[i];
        if (!s->xtx) continue;
        for (int a = 0; a < s->width; a++)
            for (int b = 0; b < a; b++) s->xtx[(size_t)a * s->width + b] = s->xtx[(size_t)b * s->width + a];
    }
    c->n_tokens = (int64_t)n_windows * n_ctx;
    *out = c;
    return QB_OK;
nomem:
    qb_calib_free(c);
    return qb_fail(ctx, QB_ERR_NOMEM, "out of memory for calibration statistics");
}

bool qb_calib_expert_share(const qb_calib *c, int layer, int expert, int64_t *tokens, double *share)
{
    if (!c || !c->expert_tokens || layer < 0 || layer >= c->n_layers || expert < 0 || expert >= c->n_experts)
        return false;
    const int64_t *row = c->expert_tokens + (size_t)layer * c->n_experts;
    int64_t sum = 0;
    for (int i = 0; i < c->n_experts; i++) sum += row[i];
    *tokens = row[expert];
    *share = sum > 0 ? (double)row[expert] / (double)sum : 0.0;
    return true;
}

bool qb_calib_expert_usage(const qb_calib *c, const qb_model *m, const qb_tensor *t, int *layer, int *expert,
                           int64_t *tokens, double *share)
{
    int l, e, len = 0;
    char kind[8];
    if (!c || c->n_experts != m->cfg.n_experts ||
        sscanf(t->name, "blk.%d.ffn_%7[a-z]_exps.%d.weight%n", &l, kind, &e, &len) != 3 || t->name[len] != 0 ||
        !qb_calib_expert_share(c, l, e, tokens, share))
        return false;
    *layer = l;
    *expert = e;
    return true;
}

/* The recipe's record of the text: name, size, sha256. */
static qb_status record_text(qb_ctx *ctx, const char *path, qb_calib *c)
{
    char *text;
    size_t len;
    qb_status st = qb_read_file(ctx, path, (size_t)1 << 32, &text, &len);
    if (st != QB_OK) return st;
    snprintf(c->text_name, sizeof c->text_name, "%s", path);
    c->text_bytes = len;
    qb_sha256_hex(text, len, c->text_sha256);
    free(text);
    return QB_OK;
}

qb_status qb_calib_run_file(qb_ctx *ctx, const qb_model *m, const char *path, const qb_calib_opts *o, qb_calib **out)
{
    *out = NULL;
    if (!m->tok) return qb_fail(ctx, QB_ERR_ARG, "calibration needs the model's tokenizer");
    int32_t *tokens, *win;
    int n_tokens, nw;
    qb_status st = qb_model_tokenize_file(ctx, m, path, &tokens, &n_tokens);
    if (st != QB_OK) return st;
    int n_ctx = o && o->n_ctx > 0 ? o->n_ctx : 256;
    st = qb_calib_windows(ctx, tokens, n_tokens, n_ctx, o ? o->n_samples : 0, qb_tokenizer_bos(m->tok), &win, &nw);
    free(tokens);
    if (st != QB_OK) {
        char why[sizeof ctx->errmsg];
        memcpy(why, ctx->errmsg, sizeof why);
        return qb_fail(ctx, st, "%s: %s", path, why);
    }
    qb_calib_opts oo = o ? *o : (qb_calib_opts){0};
    oo.n_ctx = n_ctx;
    st = qb_calib_run(ctx, m, win, nw, &oo, out);
    free(win);
    if (st == QB_OK) st = record_text(ctx, path, *out);
    if (st != QB_OK && *out) {
        qb_calib_free(*out);
        *out = NULL;
    }
    return st;
}

const qb_calib_stat *qb_calib_get(const qb_calib *c, int layer, qb_obs_point pt)
{
    if (!c || layer < 0 || layer >= c->n_layers || pt < 0 || pt >= QB_OBS_OUTPUT_IN) return NULL;
    const qb_calib_stat *s = &c->stat[layer * QB_OBS_COUNT + pt];
    return s->width > 0 && s->absmax ? s : NULL;
}

void qb_calib_mean_square(const qb_calib_stat *s, float *out)
{
    for (int i = 0; i < s->width; i++) out[i] = s->n ? (float)(s->sumsq[i] / (double)s->n) : 0.0f;
}

void qb_calib_mean_abs(const qb_calib_stat *s, float *out)
{
    for (int i = 0; i < s->width; i++) out[i] = s->n ? (float)(s->sumabs[i] / (double)s->n) : 0.0f;
}

bool qb_calib_point_of(const qb_model *m, const qb_tensor *t, int *layer, qb_obs_point *pt)
{
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const qb_layer_weights *L = &m->layers[l];
        qb_obs_point p;
        if (t == L->wq || t == L->wk || t == L->wv) p = QB_OBS_ATTN_IN;
        else if (t == L->wo) p = QB_OBS_ATTN_OUT;
        else if (t == L->w_gate || t == L->w_up) p = QB_OBS_FFN_IN;
        else if (t == L->w_down) p = QB_OBS_FFN_DOWN_IN;
        else continue;
        *layer = l;
        *pt = p;
        return true;
    }
    return false;
}
