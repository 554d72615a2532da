/* preview.c — one matrix quantized by RTN, GPTQ, AWQ or learned rounding, with its output errors (preview.h). */
#include "preview.h"
#include "fakequant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* deq ← dequantize(quantize(w)) in format f */
static qb_status rtn_values(qb_ctx *ctx, const qb_format *f, const float *w, int64_t rows, int64_t n, float *deq,
                            const volatile int *cancel)
{
    size_t rb = qb_format_row_bytes(f, n);
    uint8_t *packed = malloc(rb * (size_t)rows);
    if (!packed) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    qb_status st = qb_quantize_matrix(ctx, f, w, rows, n, packed, cancel);
    if (st == QB_OK) {
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < rows; r++) qb_dequantize_row(f, packed + rb * (size_t)r, deq + r * n, n);
    }
    free(packed);
    return st;
}

/* AWQ on this matrix alone: scales searched, columns scaled, clipped, rounded, unscaled. */
static qb_status awq_values(qb_ctx *ctx, const qb_awq_params *p, const qb_format *f, const float *w, int64_t rows,
                            int64_t n, const qb_calib_stat *cs, float *deq, float *alpha, const volatile int *cancel)
{
    float *sx = malloc((size_t)n * sizeof *sx), *s = malloc((size_t)n * sizeof *s);
    float *ws = malloc((size_t)(rows * n) * sizeof *ws);
    qb_status st = QB_OK;
    if (!sx || !s || !ws) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
        goto done;
    }
    memcpy(ws, w, (size_t)(rows * n) * sizeof *ws);
    qb_calib_mean_abs(cs, sx);
    qb_awq_mat mat = {ws, rows, f};
    if ((st = qb_awq_search(ctx, &mat, 1, n, sx, cs->xtx, p, s, alpha, cancel)) != QB_OK) goto done;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < n; i++) ws[r * n + i] *= s[i];
    if (p->clip && (st = qb_awq_clip(ctx, &mat, n, s, cs->xtx, cancel)) != QB_OK) goto done;
    if ((st = rtn_values(ctx, f, ws, rows, n, deq, cancel)) != QB_OK) goto done;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < n; i++) deq[r * n + i] /= s[i];
done:
    free(sx);
    free(s);
    free(ws);
    return st;
}

qb_status qb_method_preview(qb_ctx *ctx, const qb_method *meth, const qb_format *f, const float *w, int64_t rows,
                            int64_t n, const qb_calib_stat *cs, float *deq, qb_method_preview_result *out,
                            const volatile int *cancel)
{
    return qb_method_preview_watch(ctx, meth, f, w, rows, n, cs, deq, out, NULL, NULL, cancel);
}

qb_status qb_method_preview_watch(qb_ctx *ctx, const qb_method *meth, const qb_format *f, const float *w,
                                  int64_t rows, int64_t n, const qb_calib_stat *cs, float *deq,
                                  qb_method_preview_result *out, qb_learned_watch watch, void *ud,
                                  const volatile int *cancel)
{
    *out = (qb_method_preview_result){NAN, NAN, NAN};
    qb_status st = qb_format_check(ctx, f, n);
    if (st != QB_OK) return st;
    if (meth->kind != QB_METHOD_RTN && (!cs || !cs->xtx || cs->width != n))
        return qb_fail(ctx, QB_ERR_ARG, "%s needs the XᵀX of the matrix's %lld-wide input",
                       qb_method_name(meth->kind), (long long)n);
    qb_ctx_apply_threads(ctx);
    switch (meth->kind) {
    case QB_METHOD_GPTQ:
        st = qb_gptq_quantize(ctx, f, w, rows, n, cs->xtx, &meth->gptq, NULL, deq, cancel);
        break;
    case QB_METHOD_AWQ: st = awq_values(ctx, &meth->awq, f, w, rows, n, cs, deq, &out->alpha, cancel); break;
    case QB_METHOD_LEARNED: { /* the matrix against its own output */
        float *imp = NULL;
        const bool weighted = meth->learned.weighted && !qb_fq_groups(f, rows, n);
        if (weighted && !(imp = malloc((size_t)n * sizeof *imp))) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
        if (weighted) qb_calib_mean_square(cs, imp); /* as the model-level method weights its start */
        st = qb_learned_matrix(ctx, &meth->learned, f, w, rows, n, cs->xtx, imp, deq, NULL, NULL, watch, ud, cancel);
        free(imp);
        break;
    }
    default: st = rtn_values(ctx, f, w, rows, n, deq, cancel); break;
    }
    if (st != QB_OK || !cs || !cs->xtx || cs->width != n) return st;
    if (cancel && *cancel) return qb_fail(ctx, QB_ERR_CANCELLED, "cancelled");
    out->out_err = qb_gptq_output_error(w, deq, rows, n, cs->xtx);
    if (meth->kind == QB_METHOD_RTN) {
        out->out_err_rtn = out->out_err;
        return QB_OK;
    }
    float *r = malloc((size_t)(rows * n) * sizeof *r);
    if (!r) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    st = rtn_values(ctx, f, w, rows, n, r, cancel);
    if (st == QB_OK) out->out_err_rtn = qb_gptq_output_error(w, r, rows, n, cs->xtx);
    free(r);
    return st;
}
