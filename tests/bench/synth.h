/* synth.h — what the two files of the bench helper synth_model share: the shape of a synthetic
 * model (synth_llama.c writes it as GGUF) and small helpers. Not part of libqb. */
#ifndef QB_BENCH_SYNTH_H
#define QB_BENCH_SYNTH_H

#include <stdbool.h>
#include <stdint.h>

/* One synthetic model: a Llama-family block stack with random weights. */
typedef struct {
    char arch[16];          /* GGUF general.architecture: "llama" or "qwen3moe" */
    int layers, dim, ffn;   /* ffn: dense FFN width (qwen3moe: the key only; experts use expert_ffn) */
    int heads, kv_heads;
    int head_dim;           /* 0 = dim / heads; otherwise attention.key_length / value_length */
    int vocab, ctx;
    float rope_theta, norm_eps;
    bool rope_freqs;        /* write rope_freqs.weight from the llama3 numbers below */
    float rope_factor, rope_low, rope_high;
    int rope_orig_ctx;
    int experts, experts_used, expert_ffn; /* 0 experts = dense FFN */
    int type;               /* QB_TYPE_F16 or QB_TYPE_F32 for the matrices */
    uint64_t seed;
} synth_cfg;

/* Fill c with a named shape ("tinyllama", "llama3.1-8b", "qwen3-30b-a3b"); false for an
 * unknown name. Options given after --preset change single fields. */
bool synth_preset(synth_cfg *c, const char *name);
/* The names synth_preset knows, for usage text. */
extern const char *const synth_preset_names;

/* Write the model to out (atomic: a temp file renamed when complete), one tensor at a time so
 * the whole model never sits in memory; checks the free disk space first and reports progress
 * on stderr. 0 on success, 1 on failure (message on stderr). */
int synth_llama(const char *out, const synth_cfg *c);

/* Llama 3.1 RoPE divisors (head_dim / 2 of them) as llama.cpp's convert_hf_to_gguf.py
 * computes rope_freqs for rope_type "llama3". */
void synth_llama3_rope_factors(const synth_cfg *c, float *out);

double synth_now(void);
int synth_fail(const char *fmt, const char *arg);

#endif
