/* quantize_file.c — GGUF in, GGUF out: copy the metadata, choose each tensor's type (mix,
 * pure or plan), then write atomically, quantizing each tensor (in parallel over rows) when
 * the writer reaches it, so only one tensor's f32 copy and packed bytes exist at a time. */
#include "quantize_file.h"
#include "ftype.h"
#include "format.h"
#include "recipe.h"
#include "../util/gguf.h"
#include "../util/gguf_write.h"
#include "kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Source rows as f32 into f (n * rows floats). */
static qb_status source_f32(qb_ctx *ctx, const qb_gguf_tensor *t, float *f)
{
    int64_t n = t->ne[0], rows = t->ne[1] * t->ne[2] * t->ne[3];
    size_t rb = qb_type_row_bytes(t->type, n);
    bool ok = true;
    const qb_kernel_table *k = qb_kernels();
#pragma omp parallel for schedule(static) reduction(&& : ok)
    for (int64_t r = 0; r < rows; r++) {
        const void *row = (const char *)t->data + (size_t)r * rb;
        if (t->type == QB_TYPE_F16) k->f16_to_f32((int)n, row, f + r * n); /* the common case, vectorised */
        else ok = ok && qb_dequant_row_ref(t->type, row, f + r * n, n);
    }
    if (!ok) return qb_fail(ctx, QB_ERR_UNSUPPORTED, "tensor %s: cannot read type %d", t->name, t->type);
    return QB_OK;
}

static void count_layout(const qb_gguf *g, qb_mix_state *st)
{
    memset(st, 0, sizeof *st);
    const char *arch = qb_gguf_get_str(g, "general.architecture");
    char k[128];
    snprintf(k, sizeof k, "%s.block_count", arch ? arch : "llama");
    st->n_layers = (int)qb_gguf_get_int(g, k, 0);
    snprintf(k, sizeof k, "%s.attention.head_count", arch ? arch : "llama");
    int64_t h = qb_gguf_get_int(g, k, 1);
    snprintf(k, sizeof k, "%s.attention.head_count_kv", arch ? arch : "llama");
    int64_t kv = qb_gguf_get_int(g, k, h);
    st->n_gqa = kv > 0 ? (int)(h / kv) : 1;
    snprintf(k, sizeof k, "%s.expert_count", arch ? arch : "llama");
    int64_t ne = qb_gguf_get_int(g, k, 0);
    st->n_expert = ne > 0 && ne < 1 << 20 ? (int)ne : 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        if (strstr(g->tensors[i].name, "attn_v.weight")) st->n_attn_v++;
        if (!strcmp(g->tensors[i].name, "output.weight")) st->has_output = true;
    }
}

/* The format of one tensor, or keep = true when it is copied unchanged. */
static qb_status choose(qb_ctx *ctx, const qb_quantize_opts *o, const qb_ftype *ft, qb_mix_state *st,
                        const qb_gguf_tensor *t, qb_format *fmt, bool *keep)
{
    *keep = !qb_ftype_quantizable(t->name, t->n_dims);
    if (*keep) return QB_OK;
    qb_status s;
    if (ft) {
        qb_type ty;
        if ((s = qb_ftype_tensor_type(ctx, ft, o->pure, st, t->name, t->ne[0], &ty)) != QB_OK) return s;
        *fmt = qb_format_ggml(ty);
    } else {
        *fmt = qb_format_ggml((qb_type)t->type);
    }
    const qb_format *pf = o->plan ? qb_plan_lookup(o->plan, t->name) : NULL;
    if (pf) {
        if (pf->kind != QB_FMT_GGML) {
            char nm[64];
            qb_format_name(pf, nm, sizeof nm);
            return qb_fail(ctx, QB_ERR_UNSUPPORTED,
                           "tensor %s: format %s has no GGUF type llama.cpp can read (use a ggml type)", t->name, nm);
        }
        if ((s = qb_format_check(ctx, pf, t->ne[0])) != QB_OK) return s;
        *fmt = *pf;
    }
    *keep = fmt->type == t->type;
    return QB_OK;
}

/* The importance of tensor t (quantized to *fmt) by llama-quantize's rules (importance.h),
 * counted in res; a Q2_K tensor of Q2_K_S must have one (llama-quantize refuses it without). */
/* llama-quantize's list of the types it will not write without importance ("Missing
 * importance matrix for tensor X in a very low-bit quantization"): IQ2_XXS, IQ2_XS, IQ2_S,
 * IQ1_S, IQ1_M but for token_embd and output, and Q2_K under Q2_K_S but for token_embd. */
static bool needs_importance(const qb_ftype *ft, const qb_format *fmt, const char *name)
{
    if (fmt->kind != QB_FMT_GGML) return false;
    bool embd = !strcmp(name, "token_embd.weight"), out = !strcmp(name, "output.weight");
    switch (fmt->type) {
    case QB_TYPE_IQ2_XXS: case QB_TYPE_IQ2_XS: case QB_TYPE_IQ2_S: case QB_TYPE_IQ1_S: return true;
    case QB_TYPE_IQ1_M: return !embd && !out;
    case QB_TYPE_Q2_K: return ft && !strcmp(ft->name, "Q2_K_S") && !embd;
    default: return false;
    }
}

static qb_status importance(qb_ctx *ctx, const qb_quantize_opts *o, const qb_ftype *ft, const qb_gguf_tensor *t,
                            const qb_format *fmt, const float **w, bool *no_imp, qb_quantize_result *res)
{
    bool missing;
    qb_status st = qb_importance_lookup(ctx, o->imatrix, t->name, t->ne[0], t->ne[2] * t->ne[3], 0, w, &missing);
    if (st != QB_OK) return st;
    *no_imp = missing;
    if (missing) res->n_no_importance++; /* noted once every tensor's choice succeeded */
    if (*w && qb_quant_weighted(fmt->type)) res->n_weighted++;
    if (!*w && needs_importance(ft, fmt, t->name)) {
        char ty[32];
        snprintf(ty, sizeof ty, "%s", ft && fmt->type == QB_TYPE_Q2_K ? ft->name : qb_type_get(fmt->type)->name);
        return qb_fail(ctx, QB_ERR_ARG, "tensor %s: %s needs an importance matrix for it (--imatrix FILE): without "
                       "one a very low-bit quantization is garbage, as llama-quantize says", t->name, ty);
    }
    return QB_OK;
}

/* What the lazy tensors need at write time. */
typedef struct {
    qb_ctx *ctx;
    const qb_gguf *g;
    const qb_quantize_opts *o;
    qb_format *fmt;     /* (n_tensors) chosen format of each tensor */
    const float **imp;  /* (n_tensors) importance (ne[2] x ne[0]) or NULL */
    bool *no_imp;       /* (n_tensors) an imatrix was given without an entry for it */
    int *tensor_of;     /* (lazy index) -> tensor index */
    float *f32;         /* reused source buffer */
    size_t f32_cap;
    int done, total;
} job;

/* Convert tensor i's source to f32 into the reused buffer, quantize it into dst. */
static qb_status produce(void *ud, int index, void *dst, size_t nbytes)
{
    job *j = ud;
    const qb_gguf_tensor *t = &j->g->tensors[j->tensor_of[index]];
    (void)nbytes;
    int64_t n = t->ne[0], rows = t->ne[1] * t->ne[2] * t->ne[3];
    size_t need = (size_t)(n * rows);
    if (need > j->f32_cap) {
        free(j->f32);
        j->f32_cap = 0;
        if (!(j->f32 = malloc(need * sizeof(float)))) return qb_fail(j->ctx, QB_ERR_NOMEM, "out of memory for tensor %s", t->name);
        j->f32_cap = need;
    }
    qb_status st = source_f32(j->ctx, t, j->f32);
    const int ti = j->tensor_of[index];
    /* each matrix of a 3-D (expert) tensor with its own importance, as llama-quantize does */
    const int64_t n_mat = t->ne[2] * t->ne[3], mrows = t->ne[1];
    const size_t mbytes = qb_format_row_bytes(&j->fmt[ti], n) * (size_t)mrows;
    for (int64_t e = 0; st == QB_OK && e < n_mat; e++)
        st = qb_quantize_matrix_w(j->ctx, &j->fmt[ti], j->f32 + e * mrows * n, mrows, n, (uint8_t *)dst + e * mbytes,
                                  j->imp[ti] ? j->imp[ti] + e * n : NULL, j->o->cancel);
    if (st == QB_OK && j->o->progress) j->o->progress(j->o->ud, ++j->done, j->total);
    return st;
}

qb_status qb_quantize_gguf(qb_ctx *ctx, const char *in_path, const char *out_path, const qb_quantize_opts *o,
                           qb_quantize_result *res)
{
    memset(res, 0, sizeof *res);
    double t0 = now_seconds();
    const qb_ftype *ft = NULL;
    if (o->ftype && !(ft = qb_ftype_lookup(o->ftype)))
        return qb_fail(ctx, QB_ERR_ARG, "unknown quantization type '%s' (try Q4_K_M, Q8_0, Q4_0, Q6_K, ...)", o->ftype);
    if (!ft && !o->plan) return qb_fail(ctx, QB_ERR_ARG, "nothing to do: give a type or a plan");
    for (int k = 0; o->plan && k < o->plan->n_rules; k++)
        if (o->plan->rules[k].method.kind != QB_METHOD_RTN)
            return qb_fail(ctx, QB_ERR_ARG, "plan rule %d '%s' uses %s: streaming quantization is RTN only (open the "
                           "model and apply the plan with qb_plan_apply)", k + 1, o->plan->rules[k].pattern,
                           qb_plan_method_name(o->plan->rules[k].method.kind));
    qb_gguf *g = NULL;
    qb_status st = qb_gguf_open(ctx, in_path, &g);
    if (st != QB_OK) return st;
    qb_gguf_writer *w = qb_gguf_writer_new();
    job j = {.ctx = ctx, .g = g, .o = o};
    size_t nt = g->n_tensors ? g->n_tensors : 1;
    j.fmt = calloc(nt, sizeof *j.fmt);
    j.tensor_of = calloc(nt, sizeof *j.tensor_of);
    j.imp = calloc(nt, sizeof *j.imp);
    j.no_imp = calloc(nt, sizeof *j.no_imp);
    if (!w || !j.fmt || !j.tensor_of || !j.imp || !j.no_imp) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (uint64_t i = 0; i < g->n_kv; i++) /* an earlier recipe is replaced by this one */
        if (strncmp(g->kv[i].key, "quantbench.", 11) && !qb_gguf_copy_kv(w, &g->kv[i])) {
            st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
            goto done;
        }
    /* decide every tensor's type first, then write, quantizing each tensor when its turn
     * comes; both in llama-quantize's order (its mix counts tensors in it, its file has it) */
    qb_mix_state mix;
    count_layout(g, &mix);
    mix.has_imatrix = o->imatrix != NULL;
    const char **names = malloc(nt * sizeof *names);
    int *order = malloc(nt * sizeof *order);
    for (uint64_t i = 0; names && i < g->n_tensors; i++) names[i] = g->tensors[i].name;
    bool ordered = names && order && qb_ftype_tensor_order(names, (int)g->n_tensors, order);
    free(names);
    if (!ordered) {
        free(order);
        st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (uint64_t k = 0; k < g->n_tensors; k++) {
        uint64_t i = (uint64_t)order[k];
        const qb_gguf_tensor *t = &g->tensors[i];
        bool keep;
        if ((st = choose(ctx, o, ft, &mix, t, &j.fmt[i], &keep)) != QB_OK) break;
        res->bytes_in += t->nbytes;
        int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
        bool ok;
        if (keep) {
            ok = qb_gguf_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data);
            res->bytes_out += t->nbytes;
        } else {
            if (qb_type_get(t->type)->blck > 1 && !o->allow_requantize) {
                st = qb_fail(ctx, QB_ERR_ARG, "tensor %s is already quantized (%s): pass --allow-requantize", t->name,
                             qb_type_get(t->type)->name);
                break;
            }
            if ((st = importance(ctx, o, ft, t, &j.fmt[i], &j.imp[i], &j.no_imp[i], res)) != QB_OK) break;
            j.tensor_of[j.total] = (int)i;
            ok = qb_gguf_add_tensor_lazy(w, t->name, j.fmt[i].type, t->n_dims, t->ne, produce, &j, j.total);
            j.total++;
            res->bytes_out += qb_format_row_bytes(&j.fmt[i], t->ne[0]) * (size_t)rows;
            res->n_quantized++;
        }
        if (!ok) {
            st = qb_fail(ctx, QB_ERR_NOMEM, "tensor %s: cannot add to the output", t->name);
            break;
        }
        res->n_tensors++;
    }
    for (int k = 0; st == QB_OK && o->imatrix && o->note && k < j.total; k++) {
        const qb_gguf_tensor *t = &g->tensors[j.tensor_of[k]];
        if (j.imp[j.tensor_of[k]] || !j.no_imp[j.tensor_of[k]]) continue;
        char line[300];
        snprintf(line, sizeof line, "%s: no importance for %s: quantized without", o->imatrix->path, t->name);
        o->note(o->ud, line);
    }
    free(order);
    if (st != QB_OK) goto done;
    if (ft) qb_gguf_set_u32(w, "general.file_type", (uint32_t)ft->ftype);
    qb_gguf_set_u32(w, "general.quantization_version", 2);
    qb_recipe rec;
    qb_recipe_init(&rec, o->plan);
    snprintf(rec.info.type, sizeof rec.info.type, "%s", o->ftype ? o->ftype : "");
    rec.info.pure = o->pure;
    qb_recipe_set_imatrix(&rec, o->imatrix);
    if (!qb_recipe_put(w, &rec)) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
        goto done;
    }
    st = qb_gguf_write_file(ctx, w, out_path, o->cancel);
    if (st == QB_ERR_CANCELLED)
        qb_fail(ctx, st, "%s: quantization cancelled; the file was not written", out_path);
done:
    res->seconds = now_seconds() - t0;
    free(j.f32);
    free(j.fmt);
    free(j.tensor_of);
    free(j.imp);
    free(j.no_imp);
    qb_gguf_writer_free(w);
    qb_gguf_close(g);
    return st;
}
