/* model.h — a Llama-family model opened from a llama2.c checkpoint, a GGUF file or a Hugging
 * Face safetensors directory: hyperparameters, the tensor table (canonical GGUF names), the
 * per-layer weight bindings used by the forward pass, and the tokenizer.
 *
 * Weights stay in read-only mappings of the original files; a tensor is only copied when its
 * stored type cannot be used directly by the forward pass (F32, F16, BF16 and the packed ggml
 * types qb_matmul runs are used in place). */
#ifndef QB_MODEL_H
#define QB_MODEL_H

#include "../qb.h"
#include "../util/mapfile.h"
#include "arch.h"

struct qb_tokenizer;

typedef enum {
    QB_ROPE_INTERLEAVED = 0, /* pairs (2i, 2i+1): llama2.c, GGUF "llama" */
    QB_ROPE_HALF = 1,        /* pairs (i, i + d/2): Hugging Face "rotate_half" */
} qb_rope_layout;

typedef enum { QB_FILE_LLAMA2C, QB_FILE_GGUF, QB_FILE_SAFETENSORS } qb_file_kind;

/* RoPE frequency scaling (applied to the layers that do not slide; all of them without a
 * sliding window): none, "linear" (positions / factor), "llama3" (Llama 3.1: frequencies
 * with wavelength beyond orig_ctx / low_freq_factor divided by factor, below
 * orig_ctx / high_freq_factor kept, smoothly between), "yarn" (Peng et al. 2023: frequencies
 * interpolated by factor below the correction range of beta_fast = 32 / beta_slow = 1
 * rotations over orig_ctx, kept above, a linear ramp between; cos and sin times
 * 0.1 ln(factor) + 1). A GGUF rope_freqs.weight tensor (one divisor per frequency) takes the
 * place of the llama3 numbers. */
typedef enum { QB_ROPE_SCALE_NONE = 0, QB_ROPE_SCALE_LINEAR, QB_ROPE_SCALE_LLAMA3, QB_ROPE_SCALE_YARN } qb_rope_scale_kind;

typedef struct {
    qb_rope_scale_kind kind;
    float factor;
    float low_freq_factor, high_freq_factor;
    int orig_ctx;
} qb_rope_scaling;

typedef struct {
    int dim;           /* hidden size (embedding width) */
    int hidden_dim;    /* FFN width (dense blocks; experts: expert_hidden_dim) */
    int n_layers;
    int n_heads;
    int n_kv_heads;    /* < n_heads for grouped-query attention */
    int head_dim;      /* dim / n_heads unless the file says otherwise */
    int vocab_size;
    int seq_len;       /* maximum context the model was trained for */
    float rope_theta;
    float norm_eps;
    qb_rope_layout rope_layout;
    bool tied_output;  /* output projection shares token_embd */
    /* the block's description (arch.h gives each architecture's; the file the numbers) */
    qb_arch arch;
    qb_glu_act act;      /* gate activation of the FFN */
    bool attn_bias;      /* q, k, v biases */
    bool qk_norm;        /* RMSNorm over each head of q and k (weights of head_dim) */
    bool post_norms;     /* RMSNorm of attention / FFN outputs before each residual add */
    float embed_scale;   /* embeddings times this (Gemma: sqrt(dim)); 1 = none */
    float query_scale;   /* attention scores q·k times this (default 1/sqrt(head_dim)) */
    float attn_softcap;  /* scores -> c·tanh(scores/c) (Gemma 2); 0 = none */
    float final_softcap; /* logits -> c·tanh(logits/c) (Gemma 2); 0 = none */
    int swa_window;      /* sliding layers see the last swa_window positions (self included); 0 = none */
    int swa_period;      /* layer l slides when l % swa_period < swa_period - 1; 1 = every layer */
    float rope_theta_swa; /* RoPE base of sliding layers (Gemma 3: 10000); 0 = rope_theta */
    qb_rope_scaling rope_scaling;
    int n_experts;       /* experts per block (0 = dense FFN) */
    int n_experts_used;  /* top-k */
    int expert_hidden_dim; /* FFN width of one expert */
    bool expert_norm_topk; /* the top-k gate weights renormalised to sum 1 (Mixtral) */
} qb_config;

/* Whether layer l of c uses the sliding window. */
static inline bool qb_config_layer_slides(const qb_config *c, int l)
{
    return c->swa_window > 0 && (c->swa_period <= 1 || l % c->swa_period < c->swa_period - 1);
}

typedef struct {
    char *name;        /* canonical GGUF name, e.g. "blk.3.ffn_down.weight"; owned */
    int n_dims;
    int64_t ne[4];     /* ne[0] = row length (in_features), ne[1] = rows (out_features) */
    qb_type type;      /* storage type of data (QB_TYPE_CUSTOM: see fmt) */
    qb_format fmt;     /* the current format (kind GGML with fmt.type == type for ggml types) */
    const void *data;  /* current representation: borrowed from a mapping, or == owned */
    size_t nbytes;
    void *owned;       /* heap buffer when converted on load or quantized, else NULL */
    qb_type src_type;  /* the original, as in the file: never changed, so a tensor can be */
    const void *src_data; /* re-quantized again and again from it (borrowed from a mapping) */
    size_t src_nbytes;
    void *src_owned;   /* heap copy the source lives in (a loader had to copy it), else NULL */
} qb_tensor;

typedef struct {
    qb_tensor *attn_norm; /* (dim) */
    qb_tensor *wq;        /* (n_heads*head_dim rows, dim) */
    qb_tensor *wk;        /* (n_kv_heads*head_dim rows, dim) */
    qb_tensor *wv;        /* (n_kv_heads*head_dim rows, dim) */
    qb_tensor *wo;        /* (dim rows, n_heads*head_dim) */
    qb_tensor *ffn_norm;  /* (dim) */
    qb_tensor *w_gate;    /* (hidden_dim rows, dim)  "ffn_gate", llama2.c w1 */
    qb_tensor *w_down;    /* (dim rows, hidden_dim)  "ffn_down", llama2.c w2 */
    qb_tensor *w_up;      /* (hidden_dim rows, dim)  "ffn_up",   llama2.c w3 */
    /* optional, per the description (NULL when the architecture has none) */
    qb_tensor *bq, *bk, *bv;        /* attn_q/k/v.bias */
    qb_tensor *q_norm, *k_norm;     /* attn_q_norm, attn_k_norm (head_dim) */
    qb_tensor *post_attn_norm;      /* post_attention_norm (dim) */
    qb_tensor *post_ffn_norm;       /* post_ffw_norm (dim) */
    qb_tensor *wqkv;      /* fused (q_dim + 2 kv_dim rows, dim) "attn_qkv" (Phi-3); wq/wk/wv NULL */
    qb_tensor *w_gate_up; /* fused (2 hidden_dim rows: gate then up, dim) "ffn_up" (Phi-3); w_gate/w_up NULL */
    qb_tensor *router;    /* (n_experts rows, dim) "ffn_gate_inp"; experts replace w_gate/w_up/w_down */
    qb_tensor **exp_gate, **exp_up, **exp_down; /* n_experts each: "ffn_{gate,up,down}_exps.E" */
} qb_layer_weights;

/* Every single-tensor slot of qb_layer_weights, for code that visits them all (X(field)). */
#define QB_LAYER_TENSORS(X)                                                                                   \
    X(attn_norm) X(wq) X(wk) X(wv) X(wo) X(ffn_norm) X(w_gate) X(w_down) X(w_up) X(bq) X(bk) X(bv) X(q_norm) \
    X(k_norm) X(post_attn_norm) X(post_ffn_norm) X(wqkv) X(w_gate_up) X(router)

typedef struct qb_model {
    char *path;                 /* what the user opened; owned */
    qb_file_kind kind;
    char arch[32];              /* "llama" */
    char name[128];             /* general.name or directory name, may be empty */
    qb_config cfg;
    qb_tensor *tensors;         /* n_tensors entries; owned */
    int n_tensors;
    qb_mapfile *maps;           /* mappings that tensors point into; owned */
    int n_maps;
    void *gguf;                 /* qb_gguf handle kept open for GGUF files, else NULL */
    struct qb_tokenizer *tok;   /* owned */
    qb_tensor *tok_embd;        /* (vocab rows, dim) */
    qb_tensor *output_norm;     /* (dim) */
    qb_tensor *output;          /* (vocab rows, dim); == tok_embd when tied */
    qb_tensor *rope_freqs;      /* GGUF rope_freqs.weight (head_dim/2 divisors) or NULL */
    qb_layer_weights *layers;   /* n_layers; owned */
    qb_tensor **expert_slots;   /* storage of the layers' exp_* arrays; owned */
    bool reshaped;              /* structured pruning (method/prune_structured.h) changed the shapes:
                                   GGUF export writes cfg's over the file's hyperparameters */
} qb_model;

typedef struct {
    const char *tokenizer_path; /* llama2.c: tokenizer.bin (default: beside the checkpoint) */
    bool skip_tokenizer;        /* open weights only */
    bool no_mmap;               /* read every weight into private memory (llama.cpp's --no-mmap)
                                   instead of borrowing it from the file's mapping: costs the
                                   file's bytes in anonymous memory and the time to read them */
} qb_model_opts;

/* Open a model, detecting the kind from the path: a directory (config.json + safetensors),
 * a file starting with "GGUF", else a llama2.c checkpoint. opts may be NULL.
 * Caller closes *out with qb_model_close. */
qb_status qb_model_open(qb_ctx *ctx, const char *path, const qb_model_opts *opts, qb_model **out);
void qb_model_close(qb_model *m);

/* Per-kind loaders, used by qb_model_open; each fills m->cfg, m->tensors, m->maps and m->tok
 * (unless opts->skip_tokenizer) and leaves binding/shape checks to qb_model_bind. */
qb_status qb_model_load_llama2c(qb_ctx *ctx, qb_model *m, const qb_model_opts *opts);
qb_status qb_model_load_gguf(qb_ctx *ctx, qb_model *m, const qb_model_opts *opts);
qb_status qb_model_load_safetensors(qb_ctx *ctx, qb_model *m, const qb_model_opts *opts);

/* Resolve m->tok_embd / layers / output by name and check every shape against m->cfg. */
qb_status qb_model_bind(qb_ctx *ctx, qb_model *m);

/* The divisor of RoPE frequency i (0 .. head_dim/2 - 1) for the full-attention layers: GGUF's
 * rope_freqs tensor when the file has one, else the llama3 rule from the config's numbers (as
 * transformers' _compute_llama3_parameters and llama.cpp's converter compute it), the linear
 * factor, or 1. */
float qb_model_rope_divisor(const qb_model *m, int i);
/* The factor cos and sin are multiplied by in the full-attention layers (YaRN's attention
 * scale; 1 otherwise). */
float qb_model_rope_mscale(const qb_model *m);

/* One line saying what the description holds beyond plain Llama ("SiLU gate, q/k norms,
 * sliding window 512 on 5 of 6 layers (RoPE base 10000), ..."), into buf (truncated at cap). */
void qb_config_describe(const qb_config *c, char *buf, size_t cap);

/* Whether every block has separate q, k, v, gate, up and down matrices (no fused qkv / gate-up,
 * no experts): what the calibrated methods (GPTQ, AWQ, SmoothQuant, LLM.int8) work on. */
bool qb_model_blocks_plain(const qb_model *m);

/* Tensor table helpers for loaders. */
qb_tensor *qb_model_add_tensor(qb_ctx *ctx, qb_model *m, const char *name);
qb_tensor *qb_model_find_tensor(const qb_model *m, const char *name);
qb_status qb_model_add_map(qb_ctx *ctx, qb_model *m, const char *path, qb_mapfile **out);
/* Convert a tensor the forward pass cannot use directly into F32 (owned copy). */
qb_status qb_tensor_to_f32(qb_ctx *ctx, qb_tensor *t);
/* Rows of a tensor (all dims but ne[0]). */
int64_t qb_tensor_rows(const qb_tensor *t);
/* The original values of rows [r0, r0+nr) as f32 (from src_data, any source type). */
void qb_tensor_source_rows(const qb_tensor *t, int64_t r0, int64_t nr, float *out);
/* Element count and rows. */
int64_t qb_tensor_nelements(const qb_tensor *t);

/* Whether weights of this ggml type multiply packed (with 8-bit activations) on this CPU:
 * the loaders keep such tensors mapped as they are (the forward pass runs them in place),
 * others become F32. */
bool qb_type_runs_packed(int type);

/* Tokenize a text file with m's tokenizer (with BOS when the model adds one): evaluation and
 * calibration texts. *tokens is malloc'd; caller frees. Errors name the file (no tokenizer,
 * unreadable, empty text). */
qb_status qb_model_tokenize_file(qb_ctx *ctx, const qb_model *m, const char *path, int32_t **tokens, int *n_tokens);

/* Short name of a file kind ("llama2.c", "GGUF", "safetensors"). */
const char *qb_file_kind_name(qb_file_kind k);
/* Bytes of all tensors as stored now, and parameter count. */
size_t qb_model_bytes(const qb_model *m);
int64_t qb_model_params(const qb_model *m);

/* ---- views (model_view.c) ----
 * Cheap variants of a loaded model: a "view" is a qb_model whose tensor table is a shallow copy of the base's (data pointers borrowed, layer bindings re-pointed into the
 * copy) so that a few tensors can be given another representation without copying or touching
 * the base. Views are what the sensitivity scan, the mixed-precision search, the TUI and Lua
 * use to compare "the model with only this tensor changed" against the model itself.
 *
 * A view borrows everything of the base it does not change (mapped weights, owned buffers,
 * tokenizer, config): the base must outlive its views and must not be re-quantized while a view
 * of it is alive. A view is usable wherever a const qb_model * is (qb_infer_new, the eval
 * functions, qb_quant_size_compute, export). Free it with qb_model_view_free, never with
 * qb_model_close. Quantizing a tensor of a view: quant/view.h. */

/* A view of base with every tensor as the base has it now. *out is the view (caller frees
 * with qb_model_view_free); it borrows base. */
qb_status qb_model_view_new(qb_ctx *ctx, const qb_model *base, qb_model **out);
/* Free a view: only the buffers the view itself allocated; the base is untouched. NULL is ok. */
void qb_model_view_free(qb_model *view);
/* Whether m was made by qb_model_view_new (false for models opened from files). */
bool qb_model_is_view(const qb_model *m);
/* The model a view borrows from (borrowed). */
const qb_model *qb_model_view_base(const qb_model *view);

/* Give tensor i of the view the representation data (nbytes bytes in format fmt, not checked
 * here: quant/view.h's qb_view_set and qb_view_quantize check and quantize). buf, which may
 * be NULL when data is borrowed (from the base or its mapping), is the view's to free (with
 * the view or at the next change of tensor i); on error (not a view, i out of range) buf is
 * freed and nothing changes. */
qb_status qb_model_view_put(qb_ctx *ctx, qb_model *view, int i, const qb_format *fmt, void *buf, const void *data,
                            size_t nbytes);
/* Tensor i back to the base's representation (borrowed again, nothing copied). */
qb_status qb_model_view_reset(qb_ctx *ctx, qb_model *view, int i);
/* Whether tensor i of the view differs from the base's (it was quantized or set). */
bool qb_model_view_changed(const qb_model *view, int i);

/* Index of the tensor called name in m's table, or -1. */
int qb_model_tensor_index(const qb_model *m, const char *name);

#endif
