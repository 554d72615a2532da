/* arch.h — the architectures quantbench runs, one row each: how files name them (GGUF
 * general.architecture, Hugging Face "architectures" / "model_type") and the description of
 * the block the forward pass follows (norms, activation, biases, q/k norms, post-norms,
 * embedding scale, RoPE pairing in GGUF, experts). Loaders start from a row and let the file's
 * keys fill in the numbers (window, soft-caps, RoPE bases and scaling, expert counts). */
#ifndef QB_ARCH_H
#define QB_ARCH_H

#include <stdbool.h>

typedef enum {
    QB_ARCH_LLAMA = 0, /* Llama 1/2/3.x, Mistral, Mixtral (experts when the file has them) */
    QB_ARCH_QWEN2,     /* Qwen2 / Qwen2.5: biases on q, k, v */
    QB_ARCH_QWEN3,     /* Qwen3: RMSNorm per head on q and k */
    QB_ARCH_QWEN3MOE,  /* Qwen3-MoE: Qwen3 attention, experts in every block */
    QB_ARCH_GEMMA2,    /* Gemma 2: GELU-tanh, (1 + w) norms, post-norms, soft-caps, local/global */
    QB_ARCH_GEMMA3,    /* Gemma 3 (text): Gemma 2 without soft-caps, q/k norms, local RoPE base */
    QB_ARCH_PHI3,      /* Phi-3: fused qkv and gate_up matrices */
    QB_ARCH_COUNT
} qb_arch;

typedef enum { QB_GLU_SILU = 0, QB_GLU_GELU_TANH = 1 } qb_glu_act;

typedef struct {
    qb_arch arch;
    const char *gguf;          /* general.architecture */
    const char *hf_class;      /* "architectures"[0] in config.json */
    const char *hf_class2;     /* another class name for the same row, or NULL */
    const char *model_type;    /* "model_type" in config.json */
    const char *model_type2;   /* another model_type, or NULL */
    qb_glu_act act;
    bool attn_bias;            /* q, k, v have biases */
    bool qk_norm;              /* RMSNorm over each head of q and k, before RoPE */
    bool post_norms;           /* RMSNorm of the attention and FFN outputs before the residual add */
    bool embed_scale;          /* embeddings multiplied by sqrt(dim) */
    bool hf_norm_plus_one;     /* Hugging Face stores norm weights w for a multiplier 1 + w */
    bool gguf_rope_half;       /* GGUF keeps q/k rows in rotate-half order (llama.cpp NEOX RoPE) */
    bool fused;                /* q/k/v in one attn_qkv matrix, gate/up in one ffn_up */
    bool moe;                  /* every block's FFN is experts */
} qb_arch_info;

/* The row of an architecture. */
const qb_arch_info *qb_arch_get(qb_arch a);
/* The row whose GGUF name, HF class or model_type is name (NULL: not one we run). */
const qb_arch_info *qb_arch_by_gguf(const char *name);
const qb_arch_info *qb_arch_by_hf(const char *hf_class, const char *model_type);
/* The names we run, comma-separated, for messages ("llama, qwen2, ..."). */
const char *qb_arch_gguf_list(void);
const char *qb_arch_hf_list(void);

#endif
