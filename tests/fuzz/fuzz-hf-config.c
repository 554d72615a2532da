/* fuzz-hf-config.c — libFuzzer target for the Hugging Face config.json parser
 * (qb_hf_config_parse). On success the documented contract is checked: every size positive,
 * head_dim and kv heads set, rms_norm_eps in (0, 1), rope_theta positive and finite, rotate-half
 * RoPE. On failure the config must be left zeroed. Built and run by scripts/fuzz.sh. */
#include "core/model/hf_config.h"

#include <math.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > QB_HF_CONFIG_MAX_BYTES) return 0;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_config c;
    memset(&c, 0x5a, sizeof c);
    if (qb_hf_config_parse(&ctx, "config.json", (const char *)data, size, &c) == QB_OK) {
        if (c.dim <= 0 || c.hidden_dim <= 0 || c.n_layers <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 ||
            c.head_dim <= 0 || c.vocab_size <= 0 || c.seq_len <= 0)
            __builtin_trap();
        if (!(c.norm_eps > 0 && c.norm_eps < 1) || !(c.rope_theta > 0) || !isfinite(c.rope_theta))
            __builtin_trap();
        if (c.rope_layout != QB_ROPE_HALF) __builtin_trap();
        /* the description's numbers are in range (qb_model_bind relies on them) */
        if (c.n_experts < 0 || c.n_experts_used < 0 || c.n_experts_used > c.n_experts || c.swa_window < 0 ||
            c.swa_period < 1 || !(c.query_scale > 0) || !(c.attn_softcap >= 0) || !(c.final_softcap >= 0) ||
            !(c.embed_scale > 0) || !(c.rope_theta_swa >= 0) || c.arch < 0 || c.arch >= QB_ARCH_COUNT)
            __builtin_trap();
        if (c.rope_scaling.kind != QB_ROPE_SCALE_NONE && !(c.rope_scaling.factor >= 1)) __builtin_trap();
    } else {
        static const qb_config zero;
        if (memcmp(&c, &zero, sizeof c) != 0) __builtin_trap();
        if (!ctx.errmsg[0]) __builtin_trap(); /* every failure says why */
    }
    return 0;
}
