/* view.c — quantizing one tensor of a model view, or setting its bytes (view.h); the view
 * itself (copy, reset, ownership) is the model's (model/model_view.c). */
#include "view.h"
#include "apply.h"
#include "format.h"

#include <stdlib.h>

/* The view's tensor i, or NULL with the error on ctx. */
static qb_tensor *view_tensor(qb_ctx *ctx, qb_model *view, int i)
{
    if (!qb_model_is_view(view)) {
        qb_fail(ctx, QB_ERR_ARG, "not a model view");
        return NULL;
    }
    if (i < 0 || i >= view->n_tensors) {
        qb_fail(ctx, QB_ERR_ARG, "tensor index %d out of range 0..%d", i, view->n_tensors - 1);
        return NULL;
    }
    return &view->tensors[i];
}

qb_status qb_view_set(qb_ctx *ctx, qb_model *view, int i, const qb_format *fmt, void *buf, size_t nbytes)
{
    qb_tensor *t = view_tensor(ctx, view, i);
    if (!t) {
        free(buf);
        return QB_ERR_ARG;
    }
    size_t want = qb_format_row_bytes(fmt, t->ne[0]) * (size_t)qb_tensor_rows(t);
    if (!buf || want == 0 || nbytes != want) {
        free(buf);
        return qb_fail(ctx, QB_ERR_ARG, "tensor %s: %zu bytes given, the format needs %zu", t->name, nbytes, want);
    }
    return qb_model_view_put(ctx, view, i, fmt, buf, buf, nbytes);
}

qb_status qb_view_quantize(qb_ctx *ctx, qb_model *view, int i, const qb_format *fmt, const volatile int *cancel)
{
    qb_tensor *t = view_tensor(ctx, view, i);
    if (!t) return QB_ERR_ARG;
    if (!qb_tensor_quantizable(t)) return qb_fail(ctx, QB_ERR_ARG, "tensor %s is not a weight matrix", t->name);
    if (qb_format_equal(fmt, &qb_model_view_base(view)->tensors[i].fmt)) return qb_model_view_reset(ctx, view, i);
    if (qb_format_storage_type(fmt) == t->src_type) /* the original, borrowed */
        return qb_model_view_put(ctx, view, i, fmt, NULL, t->src_data, t->src_nbytes);
    void *dst = NULL;
    size_t nbytes = 0;
    qb_status st = qb_tensor_quantize_source(ctx, t, fmt, cancel, &dst, &nbytes);
    if (st != QB_OK) return st;
    return qb_model_view_put(ctx, view, i, fmt, dst, dst, nbytes);
}
