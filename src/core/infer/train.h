/* train.h — the training pass: the forward of one sequence over f32 parameters the caller
 * owns, keeping every activation its backward needs, and that backward, which adds the
 * gradient of every matrix, norm, bias and the embeddings from the gradient of the logits.
 * It follows the model's description as the forward pass does (llama.c: RMSNorm, both RoPE
 * pairings and scalings, grouped-query attention with soft-caps and sliding windows, q/k
 * norms, attention biases, post-norms, SiLU or GELU-tanh gates, embedding scale, final
 * soft-cap); models with experts or fused qkv / gate-up matrices are refused for now. The
 * methods that learn (learned rounding, fine-tuning, distillation) build on it: they decide
 * what the parameters hold (e.g. fake-quantized latent weights) and what the gradients update.
 * Checked against PyTorch autograd on stories260K (tests/unit/test-train.c). */
#ifndef QB_TRAIN_H
#define QB_TRAIN_H

#include "../model/model.h"

/* f32 arrays in the shapes of the model's tensors (matrices row-major, rows × ne[0]); NULL
 * where the model has no such tensor. */
typedef struct {
#define QB_TRAIN_FIELD(f) float *f;
    QB_LAYER_TENSORS(QB_TRAIN_FIELD)
#undef QB_TRAIN_FIELD
} qb_train_layer;

typedef struct {
    float *tok_embd;     /* (vocab, dim) */
    float *output_norm;  /* (dim) */
    float *output;       /* (vocab, dim); == tok_embd when the model ties them (one array) */
    qb_train_layer *layers; /* (n_layers) */
    int n_layers;
    const qb_model *model; /* whose shapes these are (borrowed) */
} qb_train_params;

/* Parameters shaped for m: with values (matrices: their original values, before any
 * quantization; norms and biases: what the model runs now) or zeroed (for gradients). *out is
 * the caller's (qb_train_params_free). Errors: a model the training pass refuses (experts,
 * fused matrices: the message names the model and why), QB_ERR_NOMEM. */
qb_status qb_train_params_new(qb_ctx *ctx, const qb_model *m, bool values, qb_train_params **out);
void qb_train_params_zero(qb_train_params *p);
/* One block's parameters alone (as qb_train_params_new makes them), into *out; release with
 * qb_train_layer_release (also zeroes it). */
qb_status qb_train_layer_init(qb_ctx *ctx, const qb_model *m, int l, bool values, qb_train_layer *out);
void qb_train_layer_release(qb_train_layer *P);
/* P, made for block `from` of m, made block l's (its values, or zeros) in place, when the two
 * blocks' arrays have the same sizes; false (P untouched) when they differ. */
bool qb_train_layer_reload(const qb_model *m, int from, int l, bool values, qb_train_layer *P);
void qb_train_params_free(qb_train_params *p);
/* A malloc'd f32 copy of one tensor as qb_train_params_new makes it (its values or zeros), or
 * NULL (no memory, or t NULL). */
float *qb_train_param_copy(const qb_tensor *t, bool values);

typedef struct qb_train_pass qb_train_pass;

/* Activations for sequences of up to max_tokens tokens of m (borrowed; outlives the pass).
 * Memory: about (12·dim + 4·hidden + n_heads·T) floats per token per layer, and up to 4 MiB
 * (or 64 rows of the widest matrix, where that is more) for the products' transposed weights. */
qb_status qb_train_pass_new(qb_ctx *ctx, const qb_model *m, int max_tokens, qb_train_pass **out);
/* The same; with recompute, activation recomputation (gradient checkpointing at block
 * boundaries): the forward keeps only each block's input and one block's activations, and the
 * backward runs each block's forward again from its input before going back through it — one
 * more forward of the blocks, the same gradients to the bit, activations of one block instead
 * of all (qb_train_acts_bytes). */
qb_status qb_train_pass_new_ex(qb_ctx *ctx, const qb_model *m, int max_tokens, bool recompute, qb_train_pass **out);
/* The bytes of the activations a pass keeps for sequences of T tokens of m (the per-token,
 * per-layer buffers above; not the fixed scratch), with or without recomputation. */
size_t qb_train_acts_bytes(const qb_model *m, int T, bool recompute);
void qb_train_pass_free(qb_train_pass *tp);

/* The forward of tokens[0..T) (positions 0..T−1, no cache) with parameters p: logits (T, vocab),
 * the activations kept in tp for qb_train_backward. Errors: T out of range, a token id out of
 * the vocabulary. */
qb_status qb_train_forward(qb_ctx *ctx, qb_train_pass *tp, const qb_train_params *p, const int32_t *tokens, int T,
                           float *logits);
/* The backward of the last qb_train_forward of tp (same p): g (shaped like p, from
 * qb_train_params_new) += the gradient of the loss whose gradient with respect to the logits is
 * dlogits (T, vocab). Errors: no forward to go back through, QB_ERR_NOMEM. */
qb_status qb_train_backward(qb_ctx *ctx, qb_train_pass *tp, const qb_train_params *p, const float *dlogits,
                            qb_train_params *g);

/* One block alone, for methods that work block by block (learned rounding): x (T, dim), the
 * residual entering block l, becomes the one leaving it, activations kept in tp. */
qb_status qb_train_block_forward(qb_ctx *ctx, qb_train_pass *tp, int l, const qb_train_layer *P, float *x, int T);
/* Its backward: dx (T, dim), the loss's gradient with respect to the block's output, becomes
 * the one with respect to its input; G += the gradients of the block's parameters. Errors:
 * the last forward of tp was not block l's — except in a pass without recomputation where
 * blocks 0, 1, … ran alone in order (each keeps its own activations) up to l or past it: any of
 * them may then go back, last first, with the head's forward and backward between. */
qb_status qb_train_block_backward(qb_ctx *ctx, qb_train_pass *tp, int l, const qb_train_layer *P, float *dx,
                                  qb_train_layer *G);

/* The head alone (output_norm, the classifier, the final soft-cap), for passes that go block by
 * block over many sequences (the streaming Fisher pass): x (T, dim), the residual after the
 * last block, gives logits (T, vocab), with what its backward needs kept in tp. */
qb_status qb_train_head_forward(qb_ctx *ctx, qb_train_pass *tp, const float *output_norm, const float *output,
                                const float *x, int T, float *logits);
/* Its backward: dx (T, dim) = the gradient with respect to x; g_output_norm, g_output (either
 * may be NULL) += the head's gradients. Errors: the last forward of tp was not the head's. */
qb_status qb_train_head_backward(qb_ctx *ctx, qb_train_pass *tp, const float *output_norm, const float *output,
                                 const float *dlogits, float *dx, float *g_output_norm, float *g_output);

#endif
