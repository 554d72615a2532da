/* method.c — applying RTN, GPTQ or AWQ to a model's tensors under a plan: every new
 * representation is staged first and installed only when all succeeded (see method.h and
 * method_stage.h). */
#include "method.h"
#include "method_stage.h"
#include "fold.h"
#include "grid.h"
#include "../quant/apply.h"
#include "../quant/ftype.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *qb_method_name(qb_method_kind k) { return qb_plan_method_name(k); }

qb_status qb_method_parse(qb_ctx *ctx, const char *name, qb_method *out)
{
    memset(out, 0, sizeof *out);
    out->gptq = (qb_gptq_params){.block = 128, .damp = 0.01f};
    out->awq = (qb_awq_params){.alpha = -1.0f, .n_grid = 20, .clip = true};
    qb_method_spec spec;
    qb_status st = qb_method_spec_init(ctx, name, &spec);
    if (st == QB_OK) out->kind = spec.kind;
    return st;
}

qb_status qb_method_from_spec(qb_ctx *ctx, const qb_method_spec *spec, qb_method *out)
{
    qb_status st = qb_method_parse(ctx, qb_plan_method_name(spec->kind), out);
    if (st != QB_OK) return st;
    double v;
    if (qb_method_spec_get(spec, "block", &v)) out->gptq.block = (int)v;
    if (qb_method_spec_get(spec, "damp", &v)) out->gptq.damp = v > 0 ? (float)v : -1.0f;
    if (qb_method_spec_get(spec, "act_order", &v)) out->gptq.act_order = v != 0;
    if (qb_method_spec_get(spec, "weighted", &v)) out->gptq.weighted = out->awq.weighted = out->learned.weighted = v != 0;
    if (qb_method_spec_get(spec, "alpha", &v)) out->awq.alpha = (float)v;
    if (qb_method_spec_get(spec, "grid", &v)) out->awq.n_grid = (int)v;
    if (qb_method_spec_get(spec, "clip", &v)) out->awq.clip = v != 0;
    if (qb_method_spec_get(spec, "iters", &v)) out->learned.iters = (int)v;
    if (qb_method_spec_get(spec, "lr", &v)) out->learned.lr = (float)v;
    if (qb_method_spec_get(spec, "batch", &v)) out->learned.batch = (int)v;
    if (qb_method_spec_get(spec, "scales", &v)) out->learned.scales = v != 0;
    return QB_OK;
}

bool qb_method_needs_calib(const qb_method *m)
{
    return m->kind == QB_METHOD_GPTQ || m->kind == QB_METHOD_AWQ || m->kind == QB_METHOD_LEARNED;
}

qb_status qb_method_plan(qb_ctx *ctx, const qb_model *m, const char *name, bool pure, qb_plan *out)
{
    return qb_method_plan_im(ctx, m, name, pure, false, out);
}

qb_status qb_method_plan_im(qb_ctx *ctx, const qb_model *m, const char *name, bool pure, bool has_imatrix, qb_plan *out)
{
    qb_plan_init(out);
    /* a format name first (every tensor that format), else a llama-quantize mix */
    qb_format one;
    const qb_ftype *ft = NULL;
    if (qb_format_parse(ctx, name, &one) != QB_OK && !(ft = qb_ftype_lookup(name)))
        return qb_fail(ctx, QB_ERR_ARG, "'%s' is neither a format (q4_k, int4-g128-asym, ...) nor a quantization type "
                       "(Q4_K_M, ...)", name);
    qb_mix_state mix = qb_mix_state_for_model(m);
    mix.has_imatrix = has_imatrix;
    for (int i = 0; i < m->n_tensors; i++) {
        const qb_tensor *t = &m->tensors[i];
        if (!qb_tensor_quantizable(t)) continue;
        qb_format f;
        if (ft) {
            qb_type ty;
            qb_status st = qb_ftype_tensor_type(ctx, ft, pure, &mix, t->name, t->ne[0], &ty);
            if (st != QB_OK) return st;
            f = qb_format_ggml(ty);
        } else {
            f = qb_format_fallback(&one, t->ne[0]);
        }
        qb_status st = qb_plan_add(ctx, out, t->name, &f);
        if (st != QB_OK) return st;
    }
    return QB_OK;
}

/* ---- staging ------------------------------------------------------------------------- */

typedef qb_staged staged;

typedef struct {
    qb_ctx *ctx;
    qb_model *m;
    const qb_plan *plan;
    const qb_plan *full; /* the whole plan (AWQ neighbours), or NULL */
    const qb_method *meth;
    const qb_calib *cal;
    const qb_method_opts *o;
    staged *st;   /* per tensor index (the caller's) */
    int done, total, own; /* progress (across calls) / tensors this call stages */
} job;

static int tensor_index(const qb_model *m, const qb_tensor *t) { return (int)(t - m->tensors); }

static const qb_format *planned(const job *J, const qb_tensor *t)
{
    if (!qb_tensor_quantizable(t)) return NULL;
    return qb_plan_lookup(J->plan, t->name);
}

static void progress(job *J)
{
    J->done++;
    if (J->o && J->o->progress) J->o->progress(J->o->ud, J->done, J->total);
}

static const volatile int *cancel_flag(const job *J) { return J->o ? J->o->cancel : NULL; }

static float *source_values(job *J, const qb_tensor *t)
{
    int64_t rows = qb_tensor_rows(t), n = t->ne[0];
    float *v = malloc((size_t)(rows * n) * sizeof *v);
    if (!v) {
        qb_fail(J->ctx, QB_ERR_NOMEM, "out of memory reading %s", t->name);
        return NULL;
    }
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r += 16) qb_tensor_source_rows(t, r, rows - r < 16 ? rows - r : 16, v + r * n);
    return v;
}

static qb_status with_tensor_name(qb_ctx *ctx, qb_status st, const qb_tensor *t)
{
    if (st == QB_OK || st == QB_ERR_CANCELLED) return st;
    char why[sizeof ctx->errmsg];
    memcpy(why, ctx->errmsg, sizeof why);
    return qb_fail(ctx, st, "tensor %s: %s", t->name, why);
}

/* Stage t as values vals in format f (RTN of vals, weighted by w when not NULL), or as f32
 * when f is NULL. */
static qb_status stage_values(job *J, const qb_tensor *t, const qb_format *f, const float *vals, const float *w)
{
    int64_t rows = qb_tensor_rows(t), n = t->ne[0];
    qb_format f32 = qb_format_ggml(QB_TYPE_F32);
    if (!f) f = &f32;
    size_t rb = qb_format_row_bytes(f, n);
    qb_status st = qb_format_check(J->ctx, f, n);
    if (st != QB_OK) return with_tensor_name(J->ctx, st, t);
    void *buf = malloc(rb * (size_t)rows);
    if (!buf) return qb_fail(J->ctx, QB_ERR_NOMEM, "out of memory quantizing %s", t->name);
    st = qb_quantize_matrix_w(J->ctx, f, vals, rows, n, buf, w, cancel_flag(J));
    if (st != QB_OK) {
        free(buf);
        return with_tensor_name(J->ctx, st, t);
    }
    staged *s = &J->st[tensor_index(J->m, t)];
    free(s->buf);
    *s = (staged){buf, rb * (size_t)rows, *f, true, false};
    return QB_OK;
}

static qb_status rtn_tensor(job *J, const qb_tensor *t)
{
    const qb_format *f = planned(J, t);
    if (!f) return QB_OK;
    const float *w = NULL; /* the importance weights RTN only: other methods choose values themselves */
    if (J->o && J->o->imatrix) {
        qb_status st = qb_importance_lookup(J->ctx, J->o->imatrix, t->name, t->ne[0], 1, J->m->cfg.n_experts, &w, NULL);
        if (st != QB_OK) return st;
    }
    float *v = source_values(J, t);
    if (!v) return QB_ERR_NOMEM;
    qb_status st = stage_values(J, t, f, v, w);
    free(v);
    if (st == QB_OK) progress(J);
    return st;
}

static const double *hessian(job *J, int layer, qb_obs_point pt, const qb_tensor *t)
{
    const qb_calib_stat *s = qb_calib_get(J->cal, layer, pt);
    if (!s || !s->xtx || s->width != t->ne[0]) {
        qb_fail(J->ctx, QB_ERR_ARG, "tensor %s: the calibration has no XᵀX for its input (layer %d)", t->name, layer);
        return NULL;
    }
    return s->xtx;
}

/* F32 / F16 / BF16 targets (a fallback where rows do not fit a block format) are not a
 * rounding grid: they are converted as RTN converts them. */
static bool float_format(const qb_format *f)
{
    return f->kind == QB_FMT_GGML && (f->type == QB_TYPE_F32 || f->type == QB_TYPE_F16 || f->type == QB_TYPE_BF16);
}

static qb_status gptq_tensor(job *J, const qb_tensor *t, int layer, qb_obs_point pt)
{
    const qb_format *f = planned(J, t);
    if (!f) return QB_OK;
    if (float_format(f)) return rtn_tensor(J, t);
    const double *h = hessian(J, layer, pt, t);
    if (!h) return QB_ERR_ARG;
    /* an importance matrix given to the plan weights the group scales (gptq.h: weighted) */
    qb_gptq_params p = J->meth->gptq;
    if (J->o && J->o->imatrix) {
        qb_status st = qb_importance_lookup(J->ctx, J->o->imatrix, t->name, t->ne[0], 1, J->m->cfg.n_experts,
                                            &p.importance, NULL);
        if (st != QB_OK) return st;
    }
    float *v = source_values(J, t);
    if (!v) return QB_ERR_NOMEM;
    int64_t rows = qb_tensor_rows(t), n = t->ne[0];
    size_t rb = qb_format_row_bytes(f, n);
    void *buf = malloc(rb * (size_t)rows);
    qb_status st = buf ? qb_gptq_quantize(J->ctx, f, v, rows, n, h, &p, buf, NULL, cancel_flag(J))
                       : qb_fail(J->ctx, QB_ERR_NOMEM, "out of memory quantizing %s", t->name);
    free(v);
    if (st != QB_OK) {
        free(buf);
        return with_tensor_name(J->ctx, st, t);
    }
    staged *s = &J->st[tensor_index(J->m, t)];
    free(s->buf);
    *s = (staged){buf, rb * (size_t)rows, *f, true, false};
    progress(J);
    return QB_OK;
}

/* ---- AWQ over one layer -------------------------------------------------------------- */

typedef struct {
    qb_obs_point pt;
    qb_tensor *mats[3];
    int n_mats;
} awq_group;

static qb_status stage_norm(job *J, const qb_tensor *norm, const float *s)
{
    int64_t n = norm->ne[0];
    float *v = malloc((size_t)n * sizeof *v);
    if (!v) return qb_fail(J->ctx, QB_ERR_NOMEM, "out of memory");
    qb_tensor_source_rows(norm, 0, 1, v);
    for (int64_t i = 0; i < n; i++) v[i] /= s[i];
    staged *st = &J->st[tensor_index(J->m, norm)];
    free(st->buf);
    *st = (staged){v, (size_t)n * sizeof *v, qb_format_ggml(QB_TYPE_F32), true, false};
    return QB_OK;
}

/* The importance AWQ rounds matrix t with (its input scaled by 1/s, s NULL: not scaled): the
 * plan's imatrix, else with `weighted` the calibration's mean square at the input pt; divided
 * by s² (the scaled input's mean square). *out: n floats (caller frees) or NULL for none. */
static qb_status awq_importance(job *J, int l, qb_obs_point pt, const qb_tensor *t, const float *s, float **out)
{
    *out = NULL;
    int64_t n = t->ne[0];
    const float *im = NULL;
    if (J->o && J->o->imatrix) {
        qb_status st = qb_importance_lookup(J->ctx, J->o->imatrix, t->name, n, 1, J->m->cfg.n_experts, &im, NULL);
        if (st != QB_OK) return st;
    }
    const qb_calib_stat *cs = qb_calib_get(J->cal, l, pt);
    if (!im && (!J->meth->awq.weighted || !cs || cs->width != n)) return QB_OK;
    float *w = malloc((size_t)n * sizeof *w);
    if (!w) return qb_fail(J->ctx, QB_ERR_NOMEM, "out of memory");
    if (im) memcpy(w, im, (size_t)n * sizeof *w);
    else qb_calib_mean_square(cs, w);
    for (int64_t i = 0; s && i < n; i++) w[i] /= s[i] * s[i];
    *out = w;
    return QB_OK;
}

static qb_status awq_layer(job *J, int l)
{
    qb_model *m = J->m;
    qb_layer_weights *L = &m->layers[l];
    const qb_config *c = &m->cfg;
    qb_tensor *all[7] = {L->wq, L->wk, L->wv, L->wo, L->w_gate, L->w_up, L->w_down};
    float *vals[7] = {0};
    float *scales[4] = {0};
    qb_status st = QB_OK;
    for (int i = 0; i < 7 && st == QB_OK; i++)
        if (!(vals[i] = source_values(J, all[i]))) st = QB_ERR_NOMEM;
    awq_group groups[4] = {
        {QB_OBS_ATTN_IN, {L->wq, L->wk, L->wv}, 3},
        {QB_OBS_ATTN_OUT, {L->wo}, 1},
        {QB_OBS_FFN_IN, {L->w_gate, L->w_up}, 2},
        {QB_OBS_FFN_DOWN_IN, {L->w_down}, 1},
    };
    const bool vo_exact = c->n_kv_heads == c->n_heads;
    for (int g = 0; g < 4 && st == QB_OK; g++) {
        awq_group *G = &groups[g];
        if (G->pt == QB_OBS_ATTN_OUT && !vo_exact) continue; /* GQA: no exact v→o fold */
        qb_awq_mat mats[3];
        int nm = 0;
        for (int k = 0; k < G->n_mats; k++) {
            const qb_format *f = planned(J, G->mats[k]);
            if (!f) continue;
            int vi = 0;
            while (all[vi] != G->mats[k]) vi++;
            mats[nm++] = (qb_awq_mat){vals[vi], qb_tensor_rows(G->mats[k]), f};
        }
        if (nm == 0) continue;
        const qb_calib_stat *cs = qb_calib_get(J->cal, l, G->pt);
        const double *h = hessian(J, l, G->pt, G->mats[0]);
        if (!cs || !h) {
            st = QB_ERR_ARG;
            break;
        }
        int64_t n = G->mats[0]->ne[0];
        float *sx = malloc((size_t)n * sizeof *sx);
        scales[g] = malloc((size_t)n * sizeof *scales[g]);
        if (!sx || !scales[g]) {
            free(sx);
            st = qb_fail(J->ctx, QB_ERR_NOMEM, "out of memory");
            break;
        }
        qb_calib_mean_abs(cs, sx);
        float alpha = 0;
        st = qb_awq_search(J->ctx, mats, nm, n, sx, h, &J->meth->awq, scales[g], &alpha, cancel_flag(J));
        free(sx);
        if (st != QB_OK) st = with_tensor_name(J->ctx, st, G->mats[0]);
        if (st == QB_OK && J->o && J->o->awq_alpha) J->o->awq_alpha[l * QB_OBS_COUNT + G->pt] = alpha;
    }
    /* fold: inputs divided by s (norms, v rows, up rows), matrices' columns multiplied */
    if (st == QB_OK) {
        int64_t dim = c->dim, hid = c->hidden_dim, qd = (int64_t)c->n_heads * c->head_dim;
        for (int g = 0; g < 4; g++) {
            float *s = scales[g];
            if (!s) continue;
            int64_t n = g == 3 ? hid : g == 1 ? qd : dim;
            for (int k = 0; k < groups[g].n_mats; k++) {
                int vi = 0;
                while (all[vi] != groups[g].mats[k]) vi++;
                int64_t rows = qb_tensor_rows(all[vi]);
                for (int64_t r = 0; r < rows; r++)
                    for (int64_t i = 0; i < n; i++) vals[vi][r * n + i] *= s[i];
            }
            if (g == 0) st = stage_norm(J, L->attn_norm, s);
            if (g == 2) st = stage_norm(J, L->ffn_norm, s);
            if (g == 1) /* v rows (n_kv_heads == n_heads here) */
                for (int64_t r = 0; r < qd; r++)
                    for (int64_t i = 0; i < dim; i++) vals[2][r * dim + i] /= s[r];
            if (g == 3)
                for (int64_t r = 0; r < hid; r++)
                    for (int64_t i = 0; i < dim; i++) vals[5][r * dim + i] /= s[r];
            if (st != QB_OK) break;
        }
    }
    /* quantize (after optional clipping); modified tensors outside the plan get the whole
     * plan's format by RTN, or stay f32 */
    for (int i = 0; i < 7 && st == QB_OK; i++) {
        const qb_format *f = planned(J, all[i]);
        int gi = i < 3 ? 0 : i == 3 ? 1 : i < 6 ? 2 : 3;
        bool changed = scales[gi] || (i == 2 && scales[1]) || (i == 5 && scales[3]);
        if (!f && !changed) continue;
        if (!f && J->full) {
            const qb_format *nf = qb_plan_lookup(J->full, all[i]->name);
            if (nf) {
                st = stage_values(J, all[i], nf, vals[i], NULL);
                continue;
            }
        }
        /* the authors skip wq and wk: their errors pass through softmax(q·kᵀ), which the
         * matrix's own output error does not see */
        if (f && J->meth->awq.clip && i >= 2) {
            int64_t n = all[i]->ne[0];
            float *ones = NULL;
            const float *s = scales[gi];
            if (!s) {
                ones = malloc((size_t)n * sizeof *ones);
                if (!ones) {
                    st = qb_fail(J->ctx, QB_ERR_NOMEM, "out of memory");
                    break;
                }
                for (int64_t k = 0; k < n; k++) ones[k] = 1.0f;
                s = ones;
            }
            const double *h = hessian(J, l, groups[gi].pt, all[i]);
            qb_awq_mat mat = {vals[i], qb_tensor_rows(all[i]), f};
            st = h ? qb_awq_clip(J->ctx, &mat, n, s, h, cancel_flag(J)) : QB_ERR_ARG;
            free(ones);
            if (st != QB_OK) break;
        }
        float *imp = NULL;
        if (f && (st = awq_importance(J, l, groups[gi].pt, all[i], scales[gi], &imp)) != QB_OK) break;
        st = stage_values(J, all[i], f, vals[i], imp);
        free(imp);
        if (st == QB_OK && f) progress(J);
    }
    for (int i = 0; i < 7; i++) free(vals[i]);
    for (int g = 0; g < 4; g++) free(scales[g]);
    return st;
}

/* ---- learned rounding over one block ---------------------------------------------------- */

/* The importance a k-quant matrix's learning starts from (the RTN it starts at is weighted by
 * it): the plan's imatrix, else with `weighted` the calibration's mean square at the matrix's
 * input. *out: n floats (caller frees) or NULL for none. */
static qb_status learned_importance(job *J, int l, qb_obs_point pt, const qb_tensor *t, float **out)
{
    *out = NULL;
    const int64_t n = t->ne[0];
    const float *im = NULL;
    if (J->o && J->o->imatrix) {
        qb_status st = qb_importance_lookup(J->ctx, J->o->imatrix, t->name, n, 1, J->m->cfg.n_experts, &im, NULL);
        if (st != QB_OK) return st;
    }
    const qb_calib_stat *cs = qb_calib_get(J->cal, l, pt);
    if (!im && (!J->meth->learned.weighted || !cs || cs->width != n)) return QB_OK;
    float *w = malloc((size_t)n * sizeof *w);
    if (!w) return qb_fail(J->ctx, QB_ERR_NOMEM, "out of memory");
    if (im) memcpy(w, im, (size_t)n * sizeof *w);
    else qb_calib_mean_square(cs, w);
    *out = w;
    return QB_OK;
}

static qb_status learned_layer(job *J, qb_learned *lr, int l)
{
    qb_layer_weights *L = &J->m->layers[l];
    qb_tensor *mats[7] = {L->wq, L->wk, L->wv, L->wo, L->w_gate, L->w_up, L->w_down};
    static const qb_obs_point pts[7] = {QB_OBS_ATTN_IN, QB_OBS_ATTN_IN, QB_OBS_ATTN_IN, QB_OBS_ATTN_OUT,
                                        QB_OBS_FFN_IN,  QB_OBS_FFN_IN,  QB_OBS_FFN_DOWN_IN};
    const qb_format *fmts[7];
    void *bufs[7] = {0};
    float *imps[7] = {0};
    qb_status st = QB_OK;
    for (int i = 0; i < 7 && st == QB_OK; i++) {
        fmts[i] = planned(J, mats[i]);
        if (fmts[i] && !(bufs[i] = malloc(qb_format_row_bytes(fmts[i], mats[i]->ne[0]) * (size_t)qb_tensor_rows(mats[i]))))
            st = qb_fail(J->ctx, QB_ERR_NOMEM, "out of memory quantizing %s", mats[i]->name);
        if (st == QB_OK && fmts[i]) st = learned_importance(J, l, pts[i], mats[i], &imps[i]);
    }
    double l0, l1;
    if (st == QB_OK)
        st = qb_learned_block(J->ctx, lr, l, fmts, (const float *const *)imps, bufs, &l0, &l1, cancel_flag(J));
    for (int i = 0; i < 7; i++) free(imps[i]);
    for (int i = 0; i < 7; i++) {
        if (st != QB_OK || !fmts[i]) {
            free(bufs[i]);
            continue;
        }
        staged *s = &J->st[tensor_index(J->m, mats[i])];
        free(s->buf);
        *s = (staged){bufs[i], qb_format_row_bytes(fmts[i], mats[i]->ne[0]) * (size_t)qb_tensor_rows(mats[i]), *fmts[i],
                      true, false};
        progress(J);
    }
    if (st == QB_OK && J->o && J->o->learned_loss) {
        J->o->learned_loss[2 * l] = l0;
        J->o->learned_loss[2 * l + 1] = l1;
    }
    return st;
}

/* ---- entry point --------------------------------------------------------------------- */

static qb_status check_inputs(job *J)
{
    const qb_method *meth = J->meth;
    qb_model *m = J->m;
    if (meth->kind < 0 || meth->kind >= QB_METHOD_COUNT) return qb_fail(J->ctx, QB_ERR_ARG, "unknown method");
    if (meth->kind == QB_METHOD_AWQ &&
        (meth->awq.alpha > 1.0f || !(meth->awq.alpha == meth->awq.alpha)))
        return qb_fail(J->ctx, QB_ERR_ARG, "awq: alpha %g out of range [0, 1]", (double)meth->awq.alpha);
    if (qb_method_needs_calib(meth)) {
        if (!qb_model_blocks_plain(m))
            return qb_fail(J->ctx, QB_ERR_UNSUPPORTED, "%s: method %s needs separate q/k/v and gate/up/down "
                           "matrices in every block; this %s model has %s (rtn works)", m->path,
                           qb_method_name(meth->kind), qb_arch_get(m->cfg.arch)->gguf,
                           m->cfg.n_experts ? "experts" : "fused matrices");
        if (!J->cal) return qb_fail(J->ctx, QB_ERR_ARG, "method %s needs calibration data", qb_method_name(meth->kind));
        if (J->cal->n_layers != m->cfg.n_layers)
            return qb_fail(J->ctx, QB_ERR_ARG, "the calibration was run on a model with %d layers, not %d",
                           J->cal->n_layers, m->cfg.n_layers);
    }
    for (int i = 0; i < m->n_tensors; i++) {
        const qb_tensor *t = &m->tensors[i];
        const qb_format *f = planned(J, t);
        if (!f) continue;
        J->own++;
        qb_status st = qb_format_check(J->ctx, f, t->ne[0]);
        int layer;
        qb_obs_point pt;
        if (st == QB_OK && meth->kind == QB_METHOD_LEARNED && qb_calib_point_of(m, t, &layer, &pt) &&
            !qb_learned_supports(f, t)) {
            char fn[64];
            qb_format_name(f, fn, sizeof fn);
            return qb_fail(J->ctx, QB_ERR_UNSUPPORTED, "method learned, tensor %s: format %s is not learned (integer "
                           "groups or per channel: int4-g128, int3-g128-asym, int4-channel, ...; k-quants q2_k, q3_k, "
                           "q4_k, q5_k, q6_k on rows of whole 256-blocks)", t->name, fn);
        }
        if (st == QB_OK && meth->kind == QB_METHOD_GPTQ && !float_format(f) && qb_calib_point_of(m, t, &layer, &pt)) {
            qb_grid g;
            st = qb_grid_init(J->ctx, &g, f, t->ne[0]);
            if (st != QB_OK) {
                char why[sizeof J->ctx->errmsg];
                memcpy(why, J->ctx->errmsg, sizeof why);
                return qb_fail(J->ctx, st, "method gptq, tensor %s: %s", t->name, why);
            }
        }
        if (st != QB_OK) return with_tensor_name(J->ctx, st, t);
    }
    return QB_OK;
}

/* Where a layer's norms hold scales an earlier AWQ folded (and this apply does not stage new
 * norms), restoring them is only right when every matrix of that layer is re-staged from its
 * originals: the fold reached all seven (columns, and v/up rows), so a matrix left as it is
 * would keep scales whose inverse the restored norm no longer applies. A layer none of whose
 * matrices is staged keeps its fold (consistent as it is). Sets restore_norm[l]. */
static qb_status check_folds_covered(qb_ctx *ctx, const qb_model *m, const staged *st, bool *restore_norm)
{
    for (int l = 0; l < m->cfg.n_layers; l++) restore_norm[l] = false;
    /* AWQ folds only into plain blocks; fused qkv / gate-up and experts have none of the seven
     * (their norms may differ from the source only by a conversion to F32) */
    if (!qb_model_blocks_plain(m)) return QB_OK;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const qb_layer_weights *L = &m->layers[l];
        restore_norm[l] = false;
        if (L->attn_norm->data == L->attn_norm->src_data && L->ffn_norm->data == L->ffn_norm->src_data) continue;
        if (st[tensor_index(m, L->attn_norm)].set || st[tensor_index(m, L->ffn_norm)].set) continue;
        const qb_tensor *mats[7] = {L->wq, L->wk, L->wv, L->wo, L->w_gate, L->w_up, L->w_down};
        int n_set = 0;
        for (int i = 0; i < 7; i++) n_set += st[tensor_index(m, mats[i])].set;
        if (n_set == 0) continue;
        for (int i = 0; i < 7; i++)
            if (!st[tensor_index(m, mats[i])].set)
                return qb_fail(ctx, QB_ERR_ARG,
                               "layer %d holds folded scales (AWQ) that %s depends on, and the plan leaves %s as it "
                               "is: apply to every matrix of that layer, or reset the model first",
                               l, mats[i]->name, mats[i]->name);
        restore_norm[l] = true;
    }
    return QB_OK;
}

qb_status qb_method_stage(qb_ctx *ctx, qb_model *m, const qb_plan *plan, const qb_plan *full, const qb_method *meth,
                          const qb_calib *cal, const qb_method_opts *o, qb_staged *stg, int *done, int total)
{
    job J = {.ctx = ctx, .m = m, .plan = plan, .full = full, .meth = meth, .cal = cal, .o = o, .st = stg};
    qb_status st = check_inputs(&J);
    if (st != QB_OK) return st;
    J.done = done ? *done : 0;
    J.total = total > 0 ? total : J.own;
    qb_ctx_apply_threads(ctx);
    qb_learned *lr = NULL;
    if (meth->kind == QB_METHOD_LEARNED && (st = qb_learned_begin(ctx, m, cal, &meth->learned, &lr)) != QB_OK) return st;
    for (int l = 0; l < m->cfg.n_layers && st == QB_OK; l++) {
        if (cancel_flag(&J) && *cancel_flag(&J)) {
            st = qb_fail(ctx, QB_ERR_CANCELLED, "quantization cancelled");
            break;
        }
        qb_layer_weights *L = &m->layers[l];
        if (meth->kind == QB_METHOD_AWQ) {
            st = awq_layer(&J, l);
            continue;
        }
        if (meth->kind == QB_METHOD_LEARNED) {
            st = learned_layer(&J, lr, l);
            continue;
        }
        struct {
            qb_tensor *t;
            qb_obs_point pt;
        } mats[7] = {{L->wq, QB_OBS_ATTN_IN},    {L->wk, QB_OBS_ATTN_IN},   {L->wv, QB_OBS_ATTN_IN},
                     {L->wo, QB_OBS_ATTN_OUT},   {L->w_gate, QB_OBS_FFN_IN}, {L->w_up, QB_OBS_FFN_IN},
                     {L->w_down, QB_OBS_FFN_DOWN_IN}};
        for (int i = 0; i < 7 && st == QB_OK; i++) {
            if (!mats[i].t) continue; /* experts or fused matrices instead: the loop below */
            if (cancel_flag(&J) && *cancel_flag(&J)) st = qb_fail(ctx, QB_ERR_CANCELLED, "quantization cancelled");
            else if (meth->kind == QB_METHOD_GPTQ) st = gptq_tensor(&J, mats[i].t, l, mats[i].pt);
            else st = rtn_tensor(&J, mats[i].t);
        }
    }
    /* the other quantizable tensors (embeddings, output, experts, fused matrices): RTN */
    for (int i = 0; i < m->n_tensors && st == QB_OK; i++) {
        qb_tensor *t = &m->tensors[i];
        int layer;
        qb_obs_point pt;
        if (!planned(&J, t) || qb_calib_point_of(m, t, &layer, &pt)) continue;
        if (cancel_flag(&J) && *cancel_flag(&J)) st = qb_fail(ctx, QB_ERR_CANCELLED, "quantization cancelled");
        else st = rtn_tensor(&J, t);
    }
    qb_learned_end(lr);
    if (done) *done = J.done;
    return st;
}

qb_status qb_staged_install(qb_ctx *ctx, qb_model *m, qb_staged *stg)
{
    bool *restore_norm = calloc((size_t)m->cfg.n_layers + 1, sizeof *restore_norm);
    if (!restore_norm) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    qb_status st = check_folds_covered(ctx, m, stg, restore_norm);
    if (st == QB_OK) {
        /* norms go back by a re-read of the source: it can only fail for memory, and then the
         * norm keeps its values */
        for (int l = 0; l < m->cfg.n_layers; l++)
            if (restore_norm[l]) {
                (void)qb_tensor_restore(ctx, m->layers[l].attn_norm);
                (void)qb_tensor_restore(ctx, m->layers[l].ffn_norm);
            }
        for (int i = 0; i < m->n_tensors; i++) {
            qb_tensor *t = &m->tensors[i];
            if (!stg[i].set) continue;
            if (stg[i].restore) (void)qb_tensor_restore(ctx, t);
            else qb_tensor_install(t, stg[i].buf, stg[i].nbytes, &stg[i].fmt);
            stg[i].buf = NULL;
            /* resident memory follows the packed size */
            if (t->data != t->src_data && !t->src_owned) qb_mapfile_release(t->src_data, t->src_nbytes);
        }
    }
    free(restore_norm);
    return st;
}

void qb_staged_free(const qb_model *m, qb_staged *st)
{
    for (int i = 0; st && i < m->n_tensors; i++) {
        free(st[i].buf);
        st[i].buf = NULL;
    }
}

qb_status qb_method_apply(qb_ctx *ctx, qb_model *m, const qb_plan *plan, const qb_method *meth,
                                const qb_calib *cal, const qb_method_opts *o)
{
    staged *stg = calloc((size_t)m->n_tensors, sizeof *stg);
    if (!stg) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    qb_status st = qb_method_stage(ctx, m, plan, NULL, meth, cal, o, stg, NULL, 0);
    if (st == QB_OK) st = qb_staged_install(ctx, m, stg);
    qb_staged_free(m, stg);
    free(stg);
#ifdef __GLIBC__
    malloc_trim(0);
#endif
    return st;
}
