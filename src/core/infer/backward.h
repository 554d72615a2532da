/* backward.h — the backward of each operation the forward pass runs (llama.c), fp32, for
 * training (learned rounding, fine-tuning, distillation): given what the forward saw and
 * the loss's gradient with respect to the operation's output, each function ADDS the
 * gradients of its inputs and parameters into the buffers given (several uses of one tensor
 * accumulate; callers zero them first). A NULL gradient buffer is not computed. Those that
 * need working memory return false when it cannot be had, before adding anything. Rows are
 * tokens of one sequence, row-major; OpenMP over rows, output rows, or fixed blocks of rows of
 * one head, each output element written by one work unit in one order of sums, so results do
 * not depend on the thread count. Checked against central finite differences of an
 * independent double-precision forward on small shapes (tests/unit/test-backward.c). */
#ifndef QB_BACKWARD_H
#define QB_BACKWARD_H

#include "../model/model.h"
#include "kernels.h"

/* C (m × n, rows ldc apart) = A·B, or += when accumulate, with the kernels' gemm_f32 (A's
 * element (r, p) at a[r·ars + p·acs], B row-major, rows ldb apart); with parallel, in blocks
 * of C over OpenMP threads. Blocks cut C, never the sum over p, so the result is the same
 * bits with any thread count. The training pass's products go through it. */
void qb_product_f32(int m, int n, int k, const float *a, size_t ars, size_t acs, const float *b, size_t ldb, float *c,
                    size_t ldc, bool accumulate, bool parallel);

/* y = x·Wᵀ with x (T, n), W (m, n), dy (T, m): dx (T, n) += dy·W, dw (m, n) += dyᵀ·x. */
void qb_bw_linear(const float *x, const float *w, const float *dy, int T, int n, int m, float *dx, float *dw);

/* y = x ⊙ w / √(mean(x²) + eps) over each row of x (T, n), as the forward's RMSNorm (a Gemma
 * norm stores w − 1: pass the effective w, the gradient is the same): dx (T, n), dw (n). */
bool qb_bw_rmsnorm(const float *x, const float *w, const float *dy, int T, int n, float eps, float *dx, float *dw);

/* h = act(g) ⊙ u elementwise over n values (SiLU or GELU-tanh, as the forward's glu): dg, du. */
void qb_bw_glu(qb_glu_act act, const float *g, const float *u, const float *dh, size_t n, float *dg, float *du);

/* The gradient of RoPE's rotation, in place: g (T, n_heads·head_dim) holds the gradient with
 * respect to the rotated vectors and becomes the one with respect to the vectors before it
 * (the rotation's transpose: rotation by −θ). cs, sn (T, head_dim/2): the cos/sin of each
 * position's angles, as the forward's tables hold them; layout: which elements pair up. */
void qb_bw_rope(float *g, int T, int n_heads, int head_dim, const float *cs, const float *sn, qb_rope_layout layout);

/* Causal self-attention of one sequence of T tokens, grouped-query: query head h reads KV head
 * h / (n_heads / n_kv_heads). Scores z = scale·q·k, capped to softcap·tanh(z / softcap) when
 * softcap > 0, masked to keys j <= i (and i − j < window when window > 0), softmax, times v. */
typedef struct {
    int T;
    int n_heads, n_kv_heads, head_dim;
    float scale;
    float softcap; /* 0: none */
    int window;    /* 0: every earlier position */
} qb_attn_shape;

/* The forward: q (T, n_heads·hd), k, v (T, n_kv_heads·hd) → out (T, n_heads·hd); p (n_heads,
 * T, T) receives the probabilities (0 above the diagonal and outside the window), which the
 * backward takes. The same arithmetic as the forward pass's attention up to summation order
 * (blocks of query rows as matrix products, kernels.h gemm_f32). False: no memory for the
 * keys' transposed copy (nothing written). */
bool qb_attn_forward(const qb_attn_shape *a, const float *q, const float *k, const float *v, float *p, float *out);
/* Its backward: dq (T, n_heads·hd), dk, dv (T, n_kv_heads·hd) += from dout (T, n_heads·hd);
 * p as the forward wrote it. Working memory: about (n_heads·T + 2·n_kv_heads·hd)·T floats. */
bool qb_bw_attention(const qb_attn_shape *a, const float *q, const float *k, const float *v, const float *p,
                     const float *dout, float *dq, float *dk, float *dv);
/* Both with the kernels of table kt (qb_kernels_for) rather than this CPU's: how the tests run
 * every instruction set's kernels through the whole attention. */
bool qb_attn_forward_with(const qb_kernel_table *kt, const qb_attn_shape *a, const float *q, const float *k,
                          const float *v, float *p, float *out);
bool qb_bw_attention_with(const qb_kernel_table *kt, const qb_attn_shape *a, const float *q, const float *k,
                          const float *v, const float *p, const float *dout, float *dq, float *dk, float *dv);

/* Mean cross-entropy of logits (T, V) against targets (a target < 0 is not counted): returns
 * the loss; dlogits (T, V, may be NULL) receives (softmax − one-hot) / (counted rows), rows not
 * counted get 0. Written, not added. */
double qb_bw_cross_entropy(const float *logits, const int32_t *targets, int T, int V, float *dlogits);

/* Distillation loss τ²·mean_t KL(softmax(teacher_t/τ) ‖ softmax(student_t/τ)) over T rows of V
 * logits (Hinton et al.'s scaling, so gradients keep their size across τ) into *loss;
 * dstudent (T, V, may be NULL) receives its gradient τ·(q − p)/T. Written, not added. */
bool qb_bw_distill_kl(const float *teacher, const float *student, int T, int V, float tau, float *dstudent,
                      double *loss);

#endif
