/* quantize_file.c — GGUF in, GGUF out: copy the metadata, choose each tensor's type (mix,
 * pure or plan), quantize in parallel, record what was done, write atomically. */
#include "quantize_file.h"
#include "ftype.h"
#include "format.h"
#include "../model/gguf.h"
#include "../model/gguf_write.h"
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

/* Source rows as f32 (a new buffer the caller frees). */
static qb_status source_f32(qb_ctx *ctx, const qb_gguf_tensor *t, float **out)
{
    int64_t n = t->ne[0], rows = t->ne[1] * t->ne[2] * t->ne[3];
    float *f = malloc((size_t)(n * rows) * sizeof(float));
    if (!f) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory for tensor %s", t->name);
    size_t rb = qb_type_row_bytes(t->type, n);
    bool ok = true;
    const qb_kernel_table *k = qb_kernels();
#pragma omp parallel for schedule(static) reduction(&& : ok)
    for (int64_t r = 0; r < rows; r++) {
        const void *row = (const char *)t->data + (size_t)r * rb;
        if (t->type == QB_TYPE_F16) k->f16_to_f32((int)n, row, f + r * n); /* the common case, vectorised */
        else ok = ok && qb_dequant_row_ref(t->type, row, f + r * n, n);
    }
    if (!ok) {
        free(f);
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "tensor %s: cannot read type %d", t->name, t->type);
    }
    *out = f;
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

qb_status qb_quantize_gguf(qb_ctx *ctx, const char *in_path, const char *out_path, const qb_quantize_opts *o,
                           qb_quantize_result *res)
{
    memset(res, 0, sizeof *res);
    double t0 = now_seconds();
    const qb_ftype *ft = NULL;
    if (o->ftype && !(ft = qb_ftype_lookup(o->ftype)))
        return qb_fail(ctx, QB_ERR_ARG, "unknown quantization type '%s' (try Q4_K_M, Q8_0, Q4_0, Q6_K, ...)", o->ftype);
    if (!ft && !o->plan) return qb_fail(ctx, QB_ERR_ARG, "nothing to do: give a type or a plan");
    qb_gguf *g = NULL;
    qb_status st = qb_gguf_open(ctx, in_path, &g);
    if (st != QB_OK) return st;
    qb_gguf_writer *w = qb_gguf_writer_new();
    void **bufs = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *bufs);
    if (!w || !bufs) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (!qb_gguf_copy_kv(w, &g->kv[i])) {
            st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
            goto done;
        }
    qb_mix_state mix;
    count_layout(g, &mix);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const qb_gguf_tensor *t = &g->tensors[i];
        if (o->cancel && *o->cancel) {
            st = qb_fail(ctx, QB_ERR_CANCELLED, "%s: quantization cancelled; the file was not written", out_path);
            goto done;
        }
        qb_format fmt;
        bool keep;
        if ((st = choose(ctx, o, ft, &mix, t, &fmt, &keep)) != QB_OK) goto done;
        const void *data = t->data;
        int type = t->type;
        res->bytes_in += t->nbytes;
        if (!keep) {
            const qb_type_info *src = qb_type_get(t->type);
            if (src->blck > 1 && !o->allow_requantize) {
                st = qb_fail(ctx, QB_ERR_ARG, "tensor %s is already quantized (%s): pass --allow-requantize", t->name,
                             src->name);
                goto done;
            }
            float *f = NULL;
            if ((st = source_f32(ctx, t, &f)) != QB_OK) goto done;
            int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
            size_t bytes = qb_format_row_bytes(&fmt, t->ne[0]) * (size_t)rows;
            if (!(bufs[i] = malloc(bytes ? bytes : 1))) {
                free(f);
                st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory for tensor %s", t->name);
                goto done;
            }
            st = qb_quantize_matrix(ctx, &fmt, f, rows, t->ne[0], bufs[i], o->cancel);
            free(f);
            if (st != QB_OK) goto done;
            data = bufs[i];
            type = fmt.type;
            res->n_quantized++;
        }
        if (!qb_gguf_add_tensor(w, t->name, type, t->n_dims, t->ne, data)) {
            st = qb_fail(ctx, QB_ERR_NOMEM, "tensor %s: cannot add to the output", t->name);
            goto done;
        }
        res->bytes_out += qb_type_row_bytes((qb_type)type, t->ne[0]) * (size_t)(t->ne[1] * t->ne[2] * t->ne[3]);
        res->n_tensors++;
        if (o->progress) o->progress(o->ud, (int)i + 1, (int)g->n_tensors);
    }
    if (ft) qb_gguf_set_u32(w, "general.file_type", (uint32_t)ft->ftype);
    qb_gguf_set_u32(w, "general.quantization_version", 2);
    if (o->plan) {
        char *text = qb_plan_to_string(o->plan);
        if (text) qb_gguf_set_str(w, "quantbench.plan", text);
        free(text);
    }
    qb_gguf_set_str(w, "quantbench.quantize", o->ftype ? o->ftype : "plan");
    st = qb_gguf_write_file(ctx, w, out_path, o->cancel);
done:
    res->seconds = now_seconds() - t0;
    if (bufs)
        for (uint64_t i = 0; i < g->n_tensors; i++) free(bufs[i]);
    free(bufs);
    qb_gguf_writer_free(w);
    qb_gguf_close(g);
    return st;
}
