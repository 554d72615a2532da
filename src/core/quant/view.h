/* view.h — giving one tensor of a model view (model.h: qb_model_view_new) another format: by
 * quantizing its original values, or from bytes computed earlier. The view's other tensors and
 * its base stay as they are. Used by the sensitivity scan, the mixed-precision search, the TUI
 * and Lua. */
#ifndef QB_VIEW_H
#define QB_VIEW_H

#include "../model/model.h"

/* Give tensor i of the view format fmt, quantized from the tensor's original values (as
 * qb_tensor_quantize does, except that the base's mapped pages are left resident). The
 * previous representation the view owned is freed. Errors: not a view, i out of range or a
 * tensor that is not a weight matrix (QB_ERR_ARG), those of qb_format_check naming the
 * tensor, QB_ERR_CANCELLED (the tensor then keeps its previous representation). */
qb_status qb_view_quantize(qb_ctx *ctx, qb_model *view, int i, const qb_format *fmt, const volatile int *cancel);
/* Give tensor i of the view the bytes in buf (rows × qb_format_row_bytes(fmt, ne[0]) bytes),
 * which the view takes ownership of (freed with the view or at the next change of tensor i),
 * e.g. a representation computed once and kept by the caller as a copy. On error (those of
 * qb_view_quantize's first three, a size that does not match) buf is freed too. */
qb_status qb_view_set(qb_ctx *ctx, qb_model *view, int i, const qb_format *fmt, void *buf, size_t nbytes);

#endif
