/* hf_config.c — read a Hugging Face config.json (Llama / Mistral) into qb_config with
 * Jansson. Anything the forward pass would silently get wrong (RoPE scaling, biases, another
 * activation, pre-quantized weights) is refused with a message naming the key. */
#include "hf_config.h"
#include "../util/mapfile.h"

#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static const char *const supported_archs[] = {"LlamaForCausalLM", "MistralForCausalLM"};
static const char *const supported_model_types[] = {"llama", "mistral"};

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0) return true;
    return false;
}

/* A positive int key; absent or null gives dflt, or an error when dflt < 0 (required). */
static qb_status get_int(qb_ctx *ctx, const char *path, json_t *root, const char *key, int dflt, int *out)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (dflt < 0) return qb_fail(ctx, QB_ERR_FORMAT, "%s: missing \"%s\"", path, key);
        *out = dflt;
        return QB_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > INT_MAX)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: \"%s\" must be a positive integer", path, key);
    *out = (int)json_integer_value(v);
    return QB_OK;
}

/* A number key (integer or real); absent or null leaves *out alone. */
static qb_status get_num(qb_ctx *ctx, const char *path, json_t *obj, const char *key, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return QB_OK;
    if (!json_is_number(v)) return qb_fail(ctx, QB_ERR_FORMAT, "%s: \"%s\" must be a number", path, key);
    *out = json_number_value(v);
    return QB_OK;
}

/* A boolean key; absent or null gives dflt. */
static qb_status get_bool(qb_ctx *ctx, const char *path, json_t *root, const char *key, bool dflt, bool *out)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return QB_OK;
    }
    if (!json_is_boolean(v)) return qb_fail(ctx, QB_ERR_FORMAT, "%s: \"%s\" must be true or false", path, key);
    *out = json_is_true(v);
    return QB_OK;
}

/* "architectures": ["LlamaForCausalLM"], or failing that "model_type": "llama". */
static qb_status check_arch(qb_ctx *ctx, const char *path, json_t *root)
{
    json_t *archs = json_object_get(root, "architectures");
    if (archs && !json_is_null(archs)) {
        json_t *a0 = json_array_get(archs, 0);
        if (!json_is_array(archs) || !json_is_string(a0))
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: \"architectures\" must be a non-empty list of strings", path);
        if (!in_list(json_string_value(a0), supported_archs, sizeof supported_archs / sizeof supported_archs[0]))
            return qb_fail(ctx, QB_ERR_UNSUPPORTED,
                           "%s: architecture %.64s is not supported (LlamaForCausalLM and MistralForCausalLM are)",
                           path, json_string_value(a0));
        return QB_OK;
    }
    json_t *mt = json_object_get(root, "model_type");
    if (!json_is_string(mt))
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: no \"architectures\" or \"model_type\": cannot tell the model",
                       path);
    if (!in_list(json_string_value(mt), supported_model_types,
                 sizeof supported_model_types / sizeof supported_model_types[0]))
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: model_type %.64s is not supported (llama and mistral are)", path,
                       json_string_value(mt));
    return QB_OK;
}

/* rope_scaling (transformers 4) or rope_parameters (transformers 5): only plain RoPE for now. */
static qb_status check_rope(qb_ctx *ctx, const char *path, json_t *root, const char *key)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return QB_OK;
    if (!json_is_object(v)) return qb_fail(ctx, QB_ERR_FORMAT, "%s: \"%s\" must be an object", path, key);
    json_t *type = json_object_get(v, "rope_type");
    if (!type) type = json_object_get(v, "type");
    if (type && !json_is_string(type))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: \"%s\".rope_type must be a string", path, key);
    const char *t = type ? json_string_value(type) : json_object_get(v, "factor") ? "unnamed" : "default";
    if (strcmp(t, "default") != 0)
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: RoPE scaling '%.32s' (%s) is not supported yet", path, t, key);
    return QB_OK;
}

/* Features the Llama forward pass does not have. */
static qb_status check_features(qb_ctx *ctx, const char *path, json_t *root)
{
    json_t *act = json_object_get(root, "hidden_act");
    if (act && !json_is_null(act) && (!json_is_string(act) || strcmp(json_string_value(act), "silu") != 0))
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: hidden_act %.32s is not supported (silu is)", path,
                       json_is_string(act) ? json_string_value(act) : "(not a string)");
    static const char *const biases[] = {"attention_bias", "mlp_bias"};
    for (size_t i = 0; i < 2; i++) {
        bool b = false;
        qb_status st = get_bool(ctx, path, root, biases[i], false, &b);
        if (st != QB_OK) return st;
        if (b) return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: %s = true is not supported", path, biases[i]);
    }
    json_t *q = json_object_get(root, "quantization_config");
    if (q && !json_is_null(q)) {
        json_t *qm = json_object_get(q, "quant_method");
        return qb_fail(ctx, QB_ERR_UNSUPPORTED,
                       "%s: pre-quantized checkpoint (quantization_config, method %.32s) is not supported; "
                       "open the unquantized weights",
                       path, json_is_string(qm) ? json_string_value(qm) : "?");
    }
    return QB_OK;
}

static qb_status read_sizes(qb_ctx *ctx, const char *path, json_t *root, qb_config *c)
{
    qb_status st;
    if ((st = get_int(ctx, path, root, "hidden_size", -1, &c->dim)) != QB_OK ||
        (st = get_int(ctx, path, root, "intermediate_size", -1, &c->hidden_dim)) != QB_OK ||
        (st = get_int(ctx, path, root, "num_hidden_layers", -1, &c->n_layers)) != QB_OK ||
        (st = get_int(ctx, path, root, "num_attention_heads", -1, &c->n_heads)) != QB_OK ||
        (st = get_int(ctx, path, root, "vocab_size", -1, &c->vocab_size)) != QB_OK ||
        (st = get_int(ctx, path, root, "num_key_value_heads", c->n_heads, &c->n_kv_heads)) != QB_OK ||
        (st = get_int(ctx, path, root, "max_position_embeddings", 2048, &c->seq_len)) != QB_OK)
        return st;
    if (!json_object_get(root, "head_dim") || json_is_null(json_object_get(root, "head_dim"))) {
        if (c->dim % c->n_heads != 0)
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: hidden_size %d is not a multiple of num_attention_heads %d", path,
                           c->dim, c->n_heads);
        c->head_dim = c->dim / c->n_heads;
    } else if ((st = get_int(ctx, path, root, "head_dim", -1, &c->head_dim)) != QB_OK) {
        return st;
    }
    /* Mistral's sliding window: within it, full attention gives the same result. */
    int window = 0;
    if ((st = get_int(ctx, path, root, "sliding_window", 0, &window)) != QB_OK) return st;
    if (window > 0 && window < c->seq_len) c->seq_len = window;
    return QB_OK;
}

static qb_status read_floats(qb_ctx *ctx, const char *path, json_t *root, qb_config *c)
{
    double eps = 1e-6, theta = 10000.0;
    qb_status st;
    if ((st = get_num(ctx, path, root, "rms_norm_eps", &eps)) != QB_OK ||
        (st = get_num(ctx, path, root, "rope_theta", &theta)) != QB_OK)
        return st;
    json_t *rp = json_object_get(root, "rope_parameters");
    if (json_is_object(rp) && (st = get_num(ctx, path, rp, "rope_theta", &theta)) != QB_OK) return st;
    /* checked after the narrowing to float too: 1e-50 is positive, (float)1e-50 is 0 */
    if (!(eps > 0 && eps < 1) || !((float)eps > 0))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: rms_norm_eps %g is out of range", path, eps);
    if (!(theta > 0 && theta < 1e30) || !((float)theta > 0))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: rope_theta %g is out of range", path, theta);
    c->norm_eps = (float)eps;
    c->rope_theta = (float)theta;
    return QB_OK;
}

qb_status qb_hf_config_parse(qb_ctx *ctx, const char *path, const char *text, size_t len, qb_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    json_error_t jerr;
    qb_config c = {0};
    qb_status st;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        st = qb_fail(ctx, QB_ERR_FORMAT, "%s: not valid JSON: %s (line %d, column %d)", path, jerr.text, jerr.line,
                     jerr.column);
        goto fail;
    }
    if (!json_is_object(root)) {
        st = qb_fail(ctx, QB_ERR_FORMAT, "%s: not a JSON object", path);
        goto fail;
    }
    if ((st = check_arch(ctx, path, root)) != QB_OK || (st = check_rope(ctx, path, root, "rope_scaling")) != QB_OK ||
        (st = check_rope(ctx, path, root, "rope_parameters")) != QB_OK ||
        (st = check_features(ctx, path, root)) != QB_OK || (st = read_sizes(ctx, path, root, &c)) != QB_OK ||
        (st = read_floats(ctx, path, root, &c)) != QB_OK ||
        (st = get_bool(ctx, path, root, "tie_word_embeddings", false, &c.tied_output)) != QB_OK)
        goto fail;
    c.rope_layout = QB_ROPE_HALF;
    json_decref(root);
    *cfg = c;
    return QB_OK;
fail:
    json_decref(root);
    return st;
}

qb_status qb_hf_config_load(qb_ctx *ctx, const char *path, qb_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    qb_status st = qb_read_file(ctx, path, QB_HF_CONFIG_MAX_BYTES, &text, &len);
    if (st == QB_OK) st = qb_hf_config_parse(ctx, path, text, len, cfg);
    free(text);
    return st;
}
