/* apply.c — quantizing a loaded model's tensors in memory, plans and llama-quantize mixes on
 * models, and the model's size at its current plan. */
#include "apply.h"
#include "ftype.h"
#include "../util/mapfile.h"

#include <fnmatch.h>
#include <stdio.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdlib.h>
#include <string.h>

bool qb_tensor_quantizable(const qb_tensor *t)
{
    return qb_ftype_quantizable(t->name, t->n_dims);
}

static void replace(qb_tensor *t, void *buf, size_t nbytes, const qb_format *fmt)
{
    free(t->owned);
    t->owned = buf;
    t->data = buf ? buf : t->src_data;
    t->nbytes = nbytes;
    t->fmt = *fmt;
    t->type = qb_format_storage_type(fmt);
}

qb_status qb_tensor_restore(qb_ctx *ctx, qb_tensor *t)
{
    qb_format f = qb_format_ggml(t->src_type);
    replace(t, NULL, t->src_nbytes, &f);
    /* norms and types without a packed kernel run as F32, as at load */
    if (t->n_dims < 2) return qb_tensor_to_f32(ctx, t);
    return QB_OK;
}

qb_status qb_tensor_quantize_source(qb_ctx *ctx, const qb_tensor *t, const qb_format *fmt, const volatile int *cancel,
                                    void **out, size_t *nbytes)
{
    *out = NULL;
    *nbytes = 0;
    qb_status st = qb_format_check(ctx, fmt, t->ne[0]);
    if (st != QB_OK) {
        char why[sizeof ctx->errmsg];
        snprintf(why, sizeof why, "%s", ctx->errmsg);
        return qb_fail(ctx, st, "tensor %s: %s", t->name, why);
    }
    int64_t n = t->ne[0], rows = qb_tensor_rows(t);
    size_t size = qb_format_row_bytes(fmt, n) * (size_t)rows;
    float *src = malloc((size_t)(n * rows) * sizeof(float));
    void *dst = malloc(size);
    if (!src || !dst) {
        free(src);
        free(dst);
        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory quantizing %s", t->name);
    }
    qb_ctx_apply_threads(ctx);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r += 16) qb_tensor_source_rows(t, r, rows - r < 16 ? rows - r : 16, src + r * n);
    st = qb_quantize_matrix(ctx, fmt, src, rows, n, dst, cancel);
    free(src);
    if (st != QB_OK) {
        free(dst);
        return st;
    }
    *out = dst;
    *nbytes = size;
    return QB_OK;
}

qb_status qb_tensor_quantize(qb_ctx *ctx, qb_tensor *t, const qb_format *fmt, const volatile int *cancel)
{
    if (qb_format_storage_type(fmt) == t->src_type) return qb_tensor_restore(ctx, t);
    void *dst = NULL;
    size_t nbytes = 0;
    qb_status st = qb_tensor_quantize_source(ctx, t, fmt, cancel, &dst, &nbytes);
    if (st != QB_OK) return st;
    replace(t, dst, nbytes, fmt);
    if (!t->src_owned) qb_mapfile_release(t->src_data, t->src_nbytes); /* resident memory follows the packed size */
    return QB_OK;
}

qb_status qb_plan_apply_rtn(qb_ctx *ctx, qb_model *m, const qb_plan *p, const qb_apply_opts *o)
{
    for (int k = 0; k < p->n_rules; k++)
        if (p->rules[k].method.kind != QB_METHOD_RTN)
            return qb_fail(ctx, QB_ERR_ARG, "plan rule %d '%s' uses %s: apply it with qb_plan_apply", k + 1,
                           p->rules[k].pattern, qb_plan_method_name(p->rules[k].method.kind));
    int total = 0, done = 0;
    for (int i = 0; i < m->n_tensors; i++) total += qb_tensor_quantizable(&m->tensors[i]);
    for (int i = 0; i < m->n_tensors; i++) {
        qb_tensor *t = &m->tensors[i];
        if (!qb_tensor_quantizable(t)) continue;
        if (o && o->cancel && *o->cancel) return qb_fail(ctx, QB_ERR_CANCELLED, "quantization cancelled");
        const qb_format *f = qb_plan_lookup(p, t->name);
        if (f && !qb_format_equal(f, &t->fmt)) {
            qb_status st = qb_tensor_quantize(ctx, t, f, o ? o->cancel : NULL);
            if (st != QB_OK) return st;
        }
        if (o && o->progress) o->progress(o->ud, ++done, total);
    }
#ifdef __GLIBC__
    malloc_trim(0); /* hand the f32 scratch back to the system: memory should show the packed size */
#endif
    return QB_OK;
}

qb_status qb_ftype_apply(qb_ctx *ctx, qb_model *m, const char *ftype, bool pure, const qb_apply_opts *o)
{
    const qb_ftype *ft = qb_ftype_lookup(ftype);
    if (!ft) return qb_fail(ctx, QB_ERR_ARG, "unknown quantization type '%s' (try Q4_K_M, Q8_0, Q4_0, Q6_K, ...)", ftype);
    qb_mix_state mix = qb_mix_state_for_model(m);
    /* choose every type first (the mix counts tensors in llama-quantize's order), then quantize. The
       slices "blk.N.ffn_X_exps.E.weight" of one expert tensor are one 3-D tensor to
       llama-quantize: the mix sees (and counts) the first, the others take its type. */
    qb_plan plan;
    qb_plan_init(&plan);
    qb_status st = QB_OK;
    const char *group = NULL; /* the last expert slice the mix saw, and its type */
    size_t group_len = 0;
    qb_type group_ty = QB_TYPE_F32;
    int *order = malloc((size_t)(m->n_tensors > 0 ? m->n_tensors : 1) * sizeof *order);
    const char **names = malloc((size_t)(m->n_tensors > 0 ? m->n_tensors : 1) * sizeof *names);
    for (int i = 0; names && i < m->n_tensors; i++) names[i] = m->tensors[i].name;
    if (!order || !names || !qb_ftype_tensor_order(names, m->n_tensors, order))
        st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    for (int k = 0; k < m->n_tensors && st == QB_OK; k++) { /* llama-quantize's order */
        const qb_tensor *t = &m->tensors[order[k]];
        if (!qb_tensor_quantizable(t)) continue;
        qb_type ty;
        const char *x = strstr(t->name, "_exps.");
        size_t len = x ? (size_t)(x - t->name) + 6 : 0;
        if (x && group && len == group_len && !strncmp(t->name, group, len)) ty = group_ty;
        else if ((st = qb_ftype_tensor_type(ctx, ft, pure, &mix, t->name, t->ne[0], &ty)) != QB_OK) break;
        if (x) group = t->name, group_len = len, group_ty = ty;
        qb_format f = qb_format_ggml(ty);
        st = qb_plan_add(ctx, &plan, t->name, &f);
    }
    free(order);
    free(names);
    if (st == QB_OK) st = qb_plan_apply_rtn(ctx, m, &plan, o);
    qb_plan_free(&plan);
    return st;
}

int qb_plan_unmatched(const qb_plan *p, const qb_model *m, int from, char *msg, size_t cap)
{
    for (int k = from < 0 ? 0 : from; k < p->n_rules; k++) {
        const char *pat = p->rules[k].pattern;
        bool any = false, changeable = false;
        for (int i = 0; i < m->n_tensors && !changeable; i++)
            if (fnmatch(pat, m->tensors[i].name, 0) == 0) {
                any = true;
                changeable = qb_tensor_quantizable(&m->tensors[i]);
            }
        if (changeable) continue;
        if (msg && cap)
            snprintf(msg, cap, "plan rule %d '%s' matches %s", k + 1, pat,
                     any ? "only tensors a plan does not change (norms)" : "no tensor");
        return k;
    }
    return -1;
}

void qb_quant_size_compute(const qb_model *m, qb_model_size *out)
{
    memset(out, 0, sizeof *out);
    double qbits = 0, qweights = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const qb_tensor *t = &m->tensors[i];
        int64_t ne = qb_tensor_nelements(t);
        out->bytes += t->nbytes;
        out->params += ne;
        out->bytes_f32 += (size_t)ne * 4;
        out->bytes_f16 += (size_t)ne * (qb_tensor_quantizable(t) ? 2 : 4);
        if (qb_tensor_quantizable(t)) {
            qbits += 8.0 * (double)t->nbytes;
            qweights += (double)ne;
        }
    }
    out->bpw = qweights > 0 ? qbits / qweights : 0;
    /* a Llama's weights are almost all in its matrices: params × bpw / 8 */
    static const double params[3] = {6.74e9, 13.0e9, 68.98e9};
    for (int k = 0; k < 3; k++) out->proj_gib[k] = params[k] * out->bpw / 8.0 / (1024.0 * 1024.0 * 1024.0);
}
