/* hf_config.c — read a Hugging Face config.json into qb_config with Jansson: the
 * architecture's row (arch.h) completed by the file's keys, in the layouts transformers 4 and
 * 5 write. Anything the forward pass would silently get wrong (an unknown RoPE scaling, MLP
 * biases, another activation, shared experts, pre-quantized weights) is refused with a
 * message naming the key. */
#include "hf_config.h"
#include "../util/mapfile.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* The architecture's row: "architectures"[0], or failing that "model_type". */
static qb_status find_arch(qb_ctx *ctx, const char *path, json_t *root, const qb_arch_info **out)
{
    json_t *archs = json_object_get(root, "architectures");
    if (archs && !json_is_null(archs)) {
        json_t *a0 = json_array_get(archs, 0);
        if (!json_is_array(archs) || !json_is_string(a0))
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: \"architectures\" must be a non-empty list of strings", path);
        if (!(*out = qb_arch_by_hf(json_string_value(a0), NULL)))
            return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: architecture %.64s is not supported (%s are)", path,
                           json_string_value(a0), qb_arch_hf_list());
        return QB_OK;
    }
    json_t *mt = json_object_get(root, "model_type");
    if (!json_is_string(mt))
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: no \"architectures\" or \"model_type\": cannot tell the model",
                       path);
    if (!(*out = qb_arch_by_hf(NULL, json_string_value(mt))))
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: model_type %.64s is not supported (%s are)", path,
                       json_string_value(mt), qb_arch_hf_list());
    return QB_OK;
}

/* One RoPE description object (rope_scaling of transformers 4, rope_parameters of 5, or one
 * layer type's entry of the latter): its base (when it has one) and scaling. */
static qb_status read_rope_obj(qb_ctx *ctx, const char *path, const char *key, json_t *v, double *theta,
                               qb_rope_scaling *rs)
{
    if (!json_is_object(v)) return qb_fail(ctx, QB_ERR_FORMAT, "%s: \"%s\" must be an object", path, key);
    qb_status st = get_num(ctx, path, v, "rope_theta", theta);
    if (st != QB_OK) return st;
    json_t *type = json_object_get(v, "rope_type");
    if (!type) type = json_object_get(v, "type");
    if (type && !json_is_string(type))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: \"%s\".rope_type must be a string", path, key);
    const char *t = type ? json_string_value(type) : json_object_get(v, "factor") ? "unnamed" : "default";
    memset(rs, 0, sizeof *rs);
    if (strcmp(t, "default") == 0) return QB_OK;
    if (strcmp(t, "linear") != 0 && strcmp(t, "llama3") != 0 && strcmp(t, "yarn") != 0)
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: RoPE scaling '%.32s' (%s) is not supported (linear, llama3 "
                       "and yarn are)", path, t, key);
    double factor = 0, lo = 1, hi = 4, orig = 8192;
    if ((st = get_num(ctx, path, v, "factor", &factor)) != QB_OK) return st;
    if (!(factor >= 1 && factor < 1e6))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: \"%s\".factor %g is out of range", path, key, factor);
    rs->factor = (float)factor;
    if (strcmp(t, "linear") == 0) {
        rs->kind = QB_ROPE_SCALE_LINEAR;
        return QB_OK;
    }
    if (strcmp(t, "yarn") == 0) {
        double bf = 32, bs = 1, af = 0;
        if ((st = get_num(ctx, path, v, "original_max_position_embeddings", &orig)) != QB_OK ||
            (st = get_num(ctx, path, v, "beta_fast", &bf)) != QB_OK || (st = get_num(ctx, path, v, "beta_slow", &bs)) != QB_OK ||
            (st = get_num(ctx, path, v, "attention_factor", &af)) != QB_OK)
            return st;
        if (bf != 32 || bs != 1 || af != 0 || json_object_get(v, "mscale") || json_object_get(v, "mscale_all_dim"))
            return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: \"%s\": YaRN with beta_fast/beta_slow/attention_factor/"
                           "mscale other than the defaults is not supported", path, key);
        if (!(orig >= 1 && orig < 1e9))
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: \"%s\".original_max_position_embeddings %g is out of range", path,
                           key, orig);
        rs->kind = QB_ROPE_SCALE_YARN;
        rs->orig_ctx = (int)orig;
        return QB_OK;
    }
    if (strcmp(t, "llama3") == 0) {
        if ((st = get_num(ctx, path, v, "low_freq_factor", &lo)) != QB_OK ||
            (st = get_num(ctx, path, v, "high_freq_factor", &hi)) != QB_OK ||
            (st = get_num(ctx, path, v, "original_max_position_embeddings", &orig)) != QB_OK)
            return st;
        if (!(lo > 0 && hi > lo && hi < 1e6 && orig >= 1 && orig < 1e9))
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: \"%s\": llama3 factors low %g / high %g / original context %g "
                           "out of range", path, key, lo, hi, orig);
        rs->kind = QB_ROPE_SCALE_LLAMA3;
        rs->low_freq_factor = (float)lo;
        rs->high_freq_factor = (float)hi;
        rs->orig_ctx = (int)orig;
    }
    return QB_OK;
}

/* RoPE: rope_theta and rope_scaling (transformers 4), or rope_parameters (transformers 5:
 * one object, or one per layer type as Gemma 3 writes it); Gemma 3's rope_local_base_freq. */
static qb_status read_rope(qb_ctx *ctx, const char *path, json_t *root, qb_config *c)
{
    double theta = 10000.0, theta_swa = c->arch == QB_ARCH_GEMMA3 ? 10000.0 : 0;
    qb_status st = get_num(ctx, path, root, "rope_theta", &theta);
    if (st != QB_OK) return st;
    json_t *v = json_object_get(root, "rope_scaling");
    if (v && !json_is_null(v) && (st = read_rope_obj(ctx, path, "rope_scaling", v, &theta, &c->rope_scaling)))
        return st;
    if ((st = get_num(ctx, path, root, "rope_local_base_freq", &theta_swa)) != QB_OK) return st;
    json_t *rp = json_object_get(root, "rope_parameters");
    if (rp && !json_is_null(rp)) {
        json_t *full = json_object_get(rp, "full_attention"), *slide = json_object_get(rp, "sliding_attention");
        if (full || slide) {
            qb_rope_scaling none;
            if (full && (st = read_rope_obj(ctx, path, "rope_parameters.full_attention", full, &theta,
                                            &c->rope_scaling)) != QB_OK)
                return st;
            if (slide && (st = read_rope_obj(ctx, path, "rope_parameters.sliding_attention", slide, &theta_swa,
                                             &none)) != QB_OK)
                return st;
            if (slide && none.kind != QB_ROPE_SCALE_NONE)
                return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: RoPE scaling on sliding layers is not supported", path);
        } else if ((st = read_rope_obj(ctx, path, "rope_parameters", rp, &theta, &c->rope_scaling)) != QB_OK) {
            return st;
        }
    }
    if (!(theta > 0 && theta < 1e30) || !((float)theta > 0))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: rope_theta %g is out of range", path, theta);
    if (theta_swa != 0 && (!(theta_swa > 0 && theta_swa < 1e30) || !((float)theta_swa > 0)))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: rope_local_base_freq %g is out of range", path, theta_swa);
    c->rope_theta = (float)theta;
    c->rope_theta_swa = (float)theta_swa;
    double partial = 1.0;
    if ((st = get_num(ctx, path, root, "partial_rotary_factor", &partial)) != QB_OK) return st;
    if (partial != 1.0)
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: partial_rotary_factor %g is not supported (1 is)", path, partial);
    return QB_OK;
}

/* The activation, biases and pre-quantization the description must match. */
static qb_status check_features(qb_ctx *ctx, const char *path, json_t *root, const qb_arch_info *ai, qb_config *c)
{
    json_t *act = json_object_get(root, "hidden_activation");
    if (!act || json_is_null(act)) act = json_object_get(root, "hidden_act");
    if (act && !json_is_null(act)) {
        const char *a = json_is_string(act) ? json_string_value(act) : "(not a string)";
        bool silu = strcmp(a, "silu") == 0 || strcmp(a, "swish") == 0;
        bool gelu_tanh = strcmp(a, "gelu_pytorch_tanh") == 0 || strcmp(a, "gelu_tanh") == 0;
        if (!(ai->act == QB_GLU_SILU ? silu : gelu_tanh))
            return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: hidden_act %.32s is not supported for %s (%s is)", path, a,
                           ai->hf_class, ai->act == QB_GLU_SILU ? "silu" : "gelu_pytorch_tanh");
    }
    bool b = false;
    qb_status st = get_bool(ctx, path, root, "attention_bias", ai->attn_bias, &b);
    if (st != QB_OK) return st;
    c->attn_bias = b;
    if ((st = get_bool(ctx, path, root, "mlp_bias", false, &b)) != QB_OK) return st;
    if (b) return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: mlp_bias = true is not supported", path);
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

/* Sliding-window attention: which layers slide ("layer_types", "sliding_window_pattern", the
 * architecture's pattern), and the window. */
static qb_status read_window(qb_ctx *ctx, const char *path, json_t *root, const qb_arch_info *ai, qb_config *c)
{
    bool gemma = ai->arch == QB_ARCH_GEMMA2 || ai->arch == QB_ARCH_GEMMA3;
    int window = 0;
    qb_status st = get_int(ctx, path, root, "sliding_window", gemma ? 4096 : 0, &window);
    if (st != QB_OK) return st;
    bool use = true;
    if ((st = get_bool(ctx, path, root, "use_sliding_window", ai->arch != QB_ARCH_QWEN2 &&
                       ai->arch != QB_ARCH_QWEN3 && ai->arch != QB_ARCH_QWEN3MOE, &use)) != QB_OK)
        return st;
    if (!use) window = 0;
    else if (window > 0 && (ai->arch == QB_ARCH_QWEN2 || ai->arch == QB_ARCH_QWEN3 || ai->arch == QB_ARCH_QWEN3MOE))
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: use_sliding_window = true is not supported for %s", path,
                       ai->hf_class);
    int period = ai->arch == QB_ARCH_GEMMA2 ? 2 : ai->arch == QB_ARCH_GEMMA3 ? 6 : 1;
    if ((st = get_int(ctx, path, root, "sliding_window_pattern", period, &period)) != QB_OK) return st;
    json_t *lt = json_object_get(root, "layer_types");
    if (lt && !json_is_null(lt)) {
        if (!json_is_array(lt) || (int)json_array_size(lt) != c->n_layers)
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: \"layer_types\" must list one type per layer (%d)", path,
                           c->n_layers);
        int first_full = -1, n_slide = 0;
        for (int l = 0; l < c->n_layers; l++) {
            const char *t = json_string_value(json_array_get(lt, (size_t)l));
            bool slide = t && strcmp(t, "sliding_attention") == 0;
            if (!t || (!slide && strcmp(t, "full_attention") != 0))
                return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: layer_types[%d] is %.32s (sliding_attention or "
                               "full_attention expected)", path, l, t ? t : "(not a string)");
            n_slide += slide;
            if (!slide && first_full < 0) first_full = l;
        }
        period = first_full < 0 ? 1 : first_full + 1;
        if (n_slide == 0) window = 0;
        for (int l = 0; window > 0 && l < c->n_layers; l++) {
            const char *t = json_string_value(json_array_get(lt, (size_t)l));
            bool slide = strcmp(t, "sliding_attention") == 0;
            if (slide != (period <= 1 || l % period < period - 1))
                return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: layer_types is not a repeating pattern of sliding "
                               "layers then one full layer", path);
        }
    }
    if (period < 1 || period > c->n_layers + 1)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: sliding_window_pattern %d is out of range", path, period);
    c->swa_window = window;
    c->swa_period = period;
    return QB_OK;
}

/* Gemma's query scale and soft-caps (absent keys take transformers' Gemma2Config /
 * Gemma3TextConfig defaults). */
static qb_status read_attention(qb_ctx *ctx, const char *path, json_t *root, qb_config *c)
{
    bool gemma = c->arch == QB_ARCH_GEMMA2 || c->arch == QB_ARCH_GEMMA3;
    double qpas = gemma ? 256 : c->head_dim, acap = c->arch == QB_ARCH_GEMMA2 ? 50 : 0;
    double fcap = c->arch == QB_ARCH_GEMMA2 ? 30 : 0;
    qb_status st;
    if ((st = get_num(ctx, path, root, "query_pre_attn_scalar", &qpas)) != QB_OK ||
        (st = get_num(ctx, path, root, "attn_logit_softcapping", &acap)) != QB_OK ||
        (st = get_num(ctx, path, root, "final_logit_softcapping", &fcap)) != QB_OK)
        return st;
    if (!(qpas > 0 && qpas < 1e9) || !(acap >= 0 && acap < 1e9) || !(fcap >= 0 && fcap < 1e9))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: query_pre_attn_scalar %g / soft-caps %g, %g out of range", path, qpas,
                       acap, fcap);
    c->query_scale = (float)(1.0 / sqrt(qpas));
    c->attn_softcap = (float)acap;
    c->final_softcap = (float)fcap;
    return QB_OK;
}

/* Experts: Mixtral's num_local_experts, Qwen3-MoE's num_experts / moe_intermediate_size. */
static qb_status read_experts(qb_ctx *ctx, const char *path, json_t *root, const qb_arch_info *ai, qb_config *c)
{
    int ne = 0, nu = 0, step = 1;
    qb_status st;
    if ((st = get_int(ctx, path, root, "num_local_experts", 0, &ne)) != QB_OK) return st;
    if (ne == 0 && ai->moe && (st = get_int(ctx, path, root, "num_experts", -1, &ne)) != QB_OK) return st;
    if (ne == 0) return QB_OK;
    if ((st = get_int(ctx, path, root, "num_experts_per_tok", -1, &nu)) != QB_OK) return st;
    if (ne > 4096 || nu > ne)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: %d experts with %d per token do not fit", path, ne, nu);
    c->n_experts = ne;
    c->n_experts_used = nu;
    c->expert_hidden_dim = c->hidden_dim;
    c->expert_norm_topk = true;
    if (ai->moe) {
        if ((st = get_int(ctx, path, root, "moe_intermediate_size", -1, &c->expert_hidden_dim)) != QB_OK ||
            (st = get_bool(ctx, path, root, "norm_topk_prob", false, &c->expert_norm_topk)) != QB_OK ||
            (st = get_int(ctx, path, root, "decoder_sparse_step", 1, &step)) != QB_OK)
            return st;
        json_t *mlp_only = json_object_get(root, "mlp_only_layers");
        if (step != 1 || (json_is_array(mlp_only) && json_array_size(mlp_only) > 0))
            return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: dense layers between expert layers (decoder_sparse_step, "
                           "mlp_only_layers) are not supported", path);
        int shared = 0;
        if ((st = get_int(ctx, path, root, "shared_expert_intermediate_size", 0, &shared)) != QB_OK) return st;
        if (shared > 0) return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: shared experts are not supported", path);
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
    return QB_OK;
}

static qb_status read_eps(qb_ctx *ctx, const char *path, json_t *root, qb_config *c)
{
    double eps = 1e-6;
    qb_status st = get_num(ctx, path, root, "rms_norm_eps", &eps);
    if (st != QB_OK) return st;
    /* checked after the narrowing to float too: 1e-50 is positive, (float)1e-50 is 0 */
    if (!(eps > 0 && eps < 1) || !((float)eps > 0))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: rms_norm_eps %g is out of range", path, eps);
    c->norm_eps = (float)eps;
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
    const qb_arch_info *ai = NULL;
    if ((st = find_arch(ctx, path, root, &ai)) != QB_OK) goto fail;
    c.arch = ai->arch;
    c.act = ai->act;
    c.qk_norm = ai->qk_norm;
    c.post_norms = ai->post_norms;
    bool tie_default = ai->arch == QB_ARCH_GEMMA2 || ai->arch == QB_ARCH_GEMMA3;
    if ((st = check_features(ctx, path, root, ai, &c)) != QB_OK || (st = read_rope(ctx, path, root, &c)) != QB_OK ||
        (st = read_sizes(ctx, path, root, &c)) != QB_OK || (st = read_eps(ctx, path, root, &c)) != QB_OK ||
        (st = read_window(ctx, path, root, ai, &c)) != QB_OK || (st = read_attention(ctx, path, root, &c)) != QB_OK ||
        (st = read_experts(ctx, path, root, ai, &c)) != QB_OK ||
        (st = get_bool(ctx, path, root, "tie_word_embeddings", tie_default, &c.tied_output)) != QB_OK)
        goto fail;
    c.embed_scale = ai->embed_scale ? sqrtf((float)c.dim) : 1.0f;
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
