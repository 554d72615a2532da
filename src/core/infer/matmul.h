/* matmul.h — Y = X · Wᵀ for a weight tensor in any storage type the forward pass runs
 * (F32, F16, BF16 and packed ggml block types), parallel over output rows with OpenMP. */
#ifndef QB_MATMUL_H
#define QB_MATMUL_H

#include "../model/model.h"
#include "../quant/format.h"

/* x: T rows of W->ne[0] floats; y: T rows of W->ne[1] floats (y[t*rows + r]).
 * W's type is F32, F16, BF16, or a packed type for which qb_matmul_runs_packed is true. */
void qb_matmul(const qb_tensor *w, const float *x, int T, float *y);
/* ys[i] = x · ws[i]ᵀ for nw matrices that read the same x (Q, K, V; gate, up): the same
 * numbers as nw qb_matmul calls. Packed matrices of one type and row length (nw <=
 * QB_MATMUL_MULTI_MAX) share one activation quantization and one parallel region; anything
 * else runs one qb_matmul after the other. The caller owns every array. */
#define QB_MATMUL_MULTI_MAX 4
void qb_matmul_multi(const qb_tensor *const *ws, int nw, const float *x, int T, float *const *ys);
/* Whether weights of this ggml type multiply packed (with 8-bit activations) on this CPU. */
bool qb_matmul_runs_packed(int type);
/* Row r of w converted to f32 (for embeddings lookups). */
void qb_tensor_get_row(const qb_tensor *w, int64_t r, float *out);

#endif
