/* arch.c — the architecture table (arch.h): one row per architecture. Facts from the model
 * definitions in Hugging Face transformers and llama.cpp (which of them uses NEOX RoPE, which
 * converter adds 1 to Gemma's norms). */
#include "arch.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
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

/* The names of a column of the table (and the aliases'), comma-separated, built once. */
static void build_list(char *buf, size_t cap, bool hf)
{
    size_t n = 0;
    for (int i = 0; i < QB_ARCH_COUNT; i++) {
        const char *a = hf ? rows[i].hf_class : rows[i].gguf, *b = hf ? rows[i].hf_class2 : NULL;
        n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, "%s%s", n ? ", " : "", a);
        if (b && n < cap) n += (size_t)snprintf(buf + n, cap - n, ", %s", b);
    }
    for (size_t i = 0; hf && i < sizeof aliases / sizeof aliases[0] && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, ", %s", aliases[i].hf);
}

static char gguf_list[256], hf_list[512];
static pthread_once_t lists_once = PTHREAD_ONCE_INIT;

static void build_lists(void)
{
    build_list(gguf_list, sizeof gguf_list, false);
    build_list(hf_list, sizeof hf_list, true);
}

const char *qb_arch_gguf_list(void)
{
    pthread_once(&lists_once, build_lists);
    return gguf_list;
}

const char *qb_arch_hf_list(void)
{
    pthread_once(&lists_once, build_lists);
    return hf_list;
}
