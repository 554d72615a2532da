/* model_view.h — cheap variants of a loaded model: a "view" is a qb_model whose tensor table
 * is a shallow copy of the base's (data pointers borrowed, layer bindings re-pointed into the
 * copy) so that a few tensors can be given another representation without copying or touching
 * the base. Views are what the sensitivity scan, the mixed-precision search, the TUI and Lua
 * use to compare "the model with only this tensor changed" against the model itself.
 *
 * A view borrows everything of the base it does not change (mapped weights, owned buffers,
 * tokenizer, config): the base must outlive its views and must not be re-quantized while a view
 * of it is alive. A view is usable wherever a const qb_model * is (qb_infer_new, the eval
 * functions, qb_model_size_compute, export). Free it with qb_model_view_free, never with
 * qb_model_close. */
#ifndef QB_MODEL_VIEW_H
#define QB_MODEL_VIEW_H

#include "model.h"

/* A view of base with every tensor as the base has it now. *out is the view (caller frees
 * with qb_model_view_free); it borrows base. */
qb_status qb_model_view_new(qb_ctx *ctx, const qb_model *base, qb_model **out);
/* Free a view: only the buffers the view itself allocated; the base is untouched. NULL is ok. */
void qb_model_view_free(qb_model *view);
/* Whether m was made by qb_model_view_new (false for models opened from files). */
bool qb_model_is_view(const qb_model *m);
/* The model a view borrows from (borrowed). */
const qb_model *qb_model_view_base(const qb_model *view);

/* Give tensor i of the view format fmt, quantized from the tensor's original values (as
 * qb_tensor_quantize does, except that the base's mapped pages are left resident). The
 * previous representation the view owned is freed. Errors: i out of range or a tensor that
 * is not a weight matrix (QB_ERR_ARG), those of qb_format_check naming the tensor,
 * QB_ERR_CANCELLED (the tensor then keeps its previous representation). */
qb_status qb_model_view_quantize(qb_ctx *ctx, qb_model *view, int i, const qb_format *fmt, const volatile int *cancel);
/* Give tensor i of the view the bytes in buf (rows × qb_format_row_bytes(fmt, ne[0]) bytes),
 * which the view takes ownership of (freed with the view or at the next change of tensor i),
 * e.g. a representation computed once and kept by the caller as a copy. On error buf is
 * freed too. */
qb_status qb_model_view_set(qb_ctx *ctx, qb_model *view, int i, const qb_format *fmt, void *buf, size_t nbytes);
/* Tensor i back to the base's representation (borrowed again, nothing copied). */
qb_status qb_model_view_reset(qb_ctx *ctx, qb_model *view, int i);
/* Whether tensor i of the view differs from the base's (it was quantized or set). */
bool qb_model_view_changed(const qb_model *view, int i);

/* Index of the tensor called name in m's table, or -1. */
int qb_model_tensor_index(const qb_model *m, const char *name);

#endif
