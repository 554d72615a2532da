/* arch.c — the architecture table (arch.h): one row per architecture. Facts from the model
 * definitions in Hugging Face transformers and llama.cpp (which of them uses NEOX RoPE, which
 * converter adds 1 to Gemma's norms). */
#include "arch.h"

#include <stddef.h>
#include <string.h>

static const qb_arch_info rows[QB_ARCH_COUNT] = {
    [QB_ARCH_LLAMA] = {QB_ARCH_LLAMA, "llama", "LlamaForCausalLM", "MistralForCausalLM", "llama", "mistral",
                       QB_GLU_SILU, false, false, false, false, false, false, false, false},
    [QB_ARCH_QWEN2] = {QB_ARCH_QWEN2, "qwen2", "Qwen2ForCausalLM", NULL, "qwen2", NULL, QB_GLU_SILU, true, false,
                       false, false, false, true, false, false},
    [QB_ARCH_QWEN3] = {QB_ARCH_QWEN3, "qwen3", "Qwen3ForCausalLM", NULL, "qwen3", NULL, QB_GLU_SILU, false, true,
                       false, false, false, true, false, false},
    [QB_ARCH_QWEN3MOE] = {QB_ARCH_QWEN3MOE, "qwen3moe", "Qwen3MoeForCausalLM", NULL, "qwen3_moe", NULL,
                          QB_GLU_SILU, false, true, false, false, false, true, false, true},
    [QB_ARCH_GEMMA2] = {QB_ARCH_GEMMA2, "gemma2", "Gemma2ForCausalLM", NULL, "gemma2", NULL, QB_GLU_GELU_TANH,
                        false, false, true, true, true, true, false, false},
    [QB_ARCH_GEMMA3] = {QB_ARCH_GEMMA3, "gemma3", "Gemma3ForCausalLM", NULL, "gemma3_text", "gemma3",
                        QB_GLU_GELU_TANH, false, true, true, true, true, true, false, false},
    [QB_ARCH_PHI3] = {QB_ARCH_PHI3, "phi3", "Phi3ForCausalLM", NULL, "phi3", NULL, QB_GLU_SILU, false, false,
                      false, false, false, true, true, false},
};

/* Mixtral is the llama row with experts: its names lead to that row. */
static const struct { const char *hf, *model_type; qb_arch arch; } aliases[] = {
    {"MixtralForCausalLM", "mixtral", QB_ARCH_LLAMA},
};

const qb_arch_info *qb_arch_get(qb_arch a)
{
    return a >= 0 && a < QB_ARCH_COUNT ? &rows[a] : &rows[QB_ARCH_LLAMA];
}

static bool eq(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

const qb_arch_info *qb_arch_by_gguf(const char *name)
{
    for (int i = 0; i < QB_ARCH_COUNT; i++)
        if (eq(rows[i].gguf, name)) return &rows[i];
    if (eq(name, "mistral")) return &rows[QB_ARCH_LLAMA];
    return NULL;
}

const qb_arch_info *qb_arch_by_hf(const char *hf_class, const char *model_type)
{
    for (int i = 0; i < QB_ARCH_COUNT; i++)
        if (hf_class ? eq(rows[i].hf_class, hf_class) || eq(rows[i].hf_class2, hf_class)
                     : eq(rows[i].model_type, model_type) || eq(rows[i].model_type2, model_type))
            return &rows[i];
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (hf_class ? eq(aliases[i].hf, hf_class) : eq(aliases[i].model_type, model_type))
            return &rows[aliases[i].arch];
    return NULL;
}

const char *qb_arch_gguf_list(void)
{
    return "llama (with Mistral and Mixtral), qwen2, qwen3, qwen3moe, gemma2, gemma3, phi3";
}

const char *qb_arch_hf_list(void)
{
    return "LlamaForCausalLM, MistralForCausalLM, MixtralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, "
           "Qwen3MoeForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, Phi3ForCausalLM";
}
