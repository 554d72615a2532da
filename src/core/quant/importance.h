/* importance.h — per-column importance of weight matrices, as the quantizers take it
 * (llama-quantize --imatrix): the quant layer's view of an importance matrix (calib/imatrix.h
 * builds one from a file: qb_imatrix_importance) and llama-quantize's rules for using it.
 *
 * Rules (llama.cpp c392e50, src/llama-quant.cpp): a tensor's entry is looked up by its name
 * (a 3-D expert tensor's entry holds its experts' importance one after another, expert e at
 * e × n_cols); a tensor without an entry is quantized without weights (llama-quantize logs
 * it); an entry whose size is not the tensor's width × experts is an error, except for
 * token_embd.weight, which is then quantized without weights. */
#ifndef QB_IMPORTANCE_H
#define QB_IMPORTANCE_H

#include "../qb.h"

typedef struct qb_importance {
    const char *path;  /* the file it came from (messages, recipes); borrowed */
    uint64_t bytes;    /* the file's size */
    char sha256[65];   /* the file's SHA-256 in hex; "" when unknown */
    const void *src;   /* the provider's data; borrowed */
    /* The values of the entry called name (llama.cpp's tensor name), *count of them, or NULL
     * when there is none. Every value finite. Thread-safe; the values are borrowed. */
    const float *(*entry)(const void *src, const char *name, int64_t *count);
} qb_importance;

/* The weights of tensor `name` (rows of n_cols; n_mat matrices: 1, or a GGUF expert tensor's
 * ne[2]; our per-expert names "blk.N.ffn_X_exps.E.weight" take row E of llama.cpp's entry
 * "blk.N.ffn_X_exps.weight", which must hold n_experts rows) by the rules above: *w = n_mat ×
 * n_cols values (one expert's n_cols for a per-expert name), or NULL with *missing = true
 * when imp has no entry (also when imp is NULL: then *missing is false), or NULL for a
 * token_embd.weight entry of the wrong size. Errors: QB_ERR_FORMAT for an entry of the wrong
 * size ("FILE: importance of blk.0.attn_q.weight has 1024 values; the tensor needs 512 (512
 * columns x 1 matrices)"). missing may be NULL. */
qb_status qb_importance_lookup(qb_ctx *ctx, const qb_importance *imp, const char *name, int64_t n_cols,
                               int64_t n_mat, int n_experts, const float **w, bool *missing);

#endif
