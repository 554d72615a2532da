/* hf_config.h — a Hugging Face config.json (LlamaForCausalLM / MistralForCausalLM) turned
 * into qb_config. */
#ifndef QB_HF_CONFIG_H
#define QB_HF_CONFIG_H

#include "model.h"

#define QB_HF_CONFIG_MAX_BYTES (4u << 20)

/* Parse len bytes of config.json text (path names the file in messages) into *cfg.
 * Reads hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, vocab_size
 * (required); num_key_value_heads (default: num_attention_heads), head_dim (default:
 * hidden_size / num_attention_heads), max_position_embeddings (default 2048, capped by
 * Mistral's sliding_window when set), rms_norm_eps (default 1e-6), rope_theta at top level or
 * in "rope_parameters" (default 10000), tie_word_embeddings (default false). Sets
 * rope_layout = QB_ROPE_HALF (Hugging Face weights use rotate-half pairs).
 * Errors: QB_ERR_FORMAT for text that is not a JSON object (Jansson's line/column/text in the
 * message) or a key of the wrong type / out of range; QB_ERR_UNSUPPORTED for another
 * architecture, RoPE scaling other than "default", an activation other than silu, biases, or a
 * quantization_config. Range checks beyond "positive" are left to qb_model_bind. */
qb_status qb_hf_config_parse(qb_ctx *ctx, const char *path, const char *text, size_t len, qb_config *cfg);

/* Read the file at path (a config.json) and parse it as above. */
qb_status qb_hf_config_load(qb_ctx *ctx, const char *path, qb_config *cfg);

#endif
