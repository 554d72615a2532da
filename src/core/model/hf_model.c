/* hf_model.c — the loader for Hugging Face model directories: config.json, the weights as one
 * model.safetensors or shards listed by model.safetensors.index.json (or a single .safetensors
 * file named directly), HF tensor names mapped to canonical GGUF names, and tokenizer.json.
 * Every shard is mmapped; tensors point into the mappings and are never copied (except one
 * whose bytes are misaligned for its element type, which the forward pass could not read). */
#include "model.h"
#include "hf_config.h"
#include "safetensors.h"
#include "../tokenizer/tokenizer.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define INDEX_MAX_BYTES (64u << 20)
#define INDEX_NAME "model.safetensors.index.json"

/* HF name (without the "model." prefix) -> GGUF name, outside the layers. */
static const struct { const char *hf, *gguf; } top_names[] = {
    {"embed_tokens.weight", "token_embd.weight"},
    {"norm.weight", "output_norm.weight"},
};

/* HF name after "model.layers.N." -> GGUF name after "blk.N." (llama.cpp's tensor names). */
static const struct { const char *hf, *gguf; } layer_names[] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.qkv_proj.weight", "attn_qkv.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.q_norm.weight", "attn_q_norm.weight"},
    {"self_attn.k_norm.weight", "attn_k_norm.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"}, /* post_attention_norm with post-norms */
    {"pre_feedforward_layernorm.weight", "ffn_norm.weight"},
    {"post_feedforward_layernorm.weight", "post_ffw_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
    {"mlp.gate_up_proj.weight", "ffn_up.weight"}, /* Phi-3: gate rows then up rows */
    {"block_sparse_moe.gate.weight", "ffn_gate_inp.weight"},
    {"mlp.gate.weight", "ffn_gate_inp.weight"},
};

/* Experts: "<prefix>E.<suffix>" after "model.layers.N." -> "ffn_X_exps.E.weight". */
static const struct { const char *prefix, *suffix, *gguf; } expert_names[] = {
    {"block_sparse_moe.experts.", "w1.weight", "ffn_gate_exps"},
    {"block_sparse_moe.experts.", "w2.weight", "ffn_down_exps"},
    {"block_sparse_moe.experts.", "w3.weight", "ffn_up_exps"},
    {"mlp.experts.", "gate_proj.weight", "ffn_gate_exps"},
    {"mlp.experts.", "down_proj.weight", "ffn_down_exps"},
    {"mlp.experts.", "up_proj.weight", "ffn_up_exps"},
};

/* Canonical name of HF tensor hf into out; false for tensors we do not use (rotary_emb.inv_freq,
 * ...). *layer is the block number, or -1 outside the layers. post_norms: the block has norms
 * after attention and FFN (Gemma), so post_attention_layernorm is one of them. */
static bool map_name(const char *hf, bool post_norms, char *out, size_t cap, long *layer)
{
    *layer = -1;
    if (strcmp(hf, "lm_head.weight") == 0) {
        snprintf(out, cap, "output.weight");
        return true;
    }
    const char *s = strncmp(hf, "model.", 6) == 0 ? hf + 6 : hf;
    for (size_t i = 0; i < sizeof top_names / sizeof top_names[0]; i++) {
        if (strcmp(s, top_names[i].hf) == 0) {
            snprintf(out, cap, "%s", top_names[i].gguf);
            return true;
        }
    }
    if (strncmp(s, "layers.", 7) != 0 || !isdigit((unsigned char)s[7])) return false;
    char *end;
    long l = strtol(s + 7, &end, 10);
    if (*end != '.' || end - (s + 7) > 6) return false;
    const char *rest = end + 1;
    if (post_norms && strcmp(rest, "post_attention_layernorm.weight") == 0) {
        snprintf(out, cap, "blk.%ld.post_attention_norm.weight", l);
        *layer = l;
        return true;
    }
    for (size_t i = 0; i < sizeof layer_names / sizeof layer_names[0]; i++) {
        if (strcmp(rest, layer_names[i].hf) == 0) {
            snprintf(out, cap, "blk.%ld.%s", l, layer_names[i].gguf);
            *layer = l;
            return true;
        }
    }
    for (size_t i = 0; i < sizeof expert_names / sizeof expert_names[0]; i++) {
        size_t np = strlen(expert_names[i].prefix);
        if (strncmp(rest, expert_names[i].prefix, np) != 0 || !isdigit((unsigned char)rest[np])) continue;
        long e = strtol(rest + np, &end, 10);
        if (*end != '.' || end - (rest + np) > 5 || strcmp(end + 1, expert_names[i].suffix) != 0) continue;
        snprintf(out, cap, "blk.%ld.%s.%ld.weight", l, expert_names[i].gguf, e);
        *layer = l;
        return true;
    }
    return false;
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The model directory: path itself (without trailing slashes) or the folder of a file. */
static char *model_dir(const char *path)
{
    char *d = strdup(path);
    if (!d) return NULL;
    size_t n = strlen(d);
    while (n > 1 && d[n - 1] == '/') d[--n] = 0;
    if (is_dir(d)) return d;
    char *slash = strrchr(d, '/');
    if (!slash) {
        free(d);
        return strdup(".");
    }
    if (slash == d) slash[1] = 0; /* "/x.safetensors" */
    else *slash = 0;
    return d;
}

/* m->name: the directory's last component (resolved, so "." gives a real name). */
static void set_name(qb_model *m, const char *dir)
{
    char *real = realpath(dir, NULL);
    const char *d = real ? real : dir;
    const char *slash = strrchr(d, '/');
    snprintf(m->name, sizeof m->name, "%s", slash && slash[1] ? slash + 1 : d);
    free(real);
}

/* Add one parsed tensor under its canonical name gguf. */
static qb_status add_tensor(qb_ctx *ctx, qb_model *m, const char *path, const qb_st_tensor *t, const char *gguf,
                            long layer)
{
    if (layer >= m->cfg.n_layers)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: tensor '%s' belongs to layer %ld but config.json has %d layers", path,
                       t->name, layer, m->cfg.n_layers);
    if (qb_model_find_tensor(m, gguf))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: tensor '%s' (%s) appears twice in the model", path, t->name, gguf);
    if (t->type < 0)
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s (F32, F16 and BF16 are supported)",
                       path, t->name, t->dtype);
    if (t->n_dims < 1 || t->n_dims > 2)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: tensor '%s' has %d dimensions (1 or 2 expected)", path, t->name,
                       t->n_dims);
    qb_tensor *qt = qb_model_add_tensor(ctx, m, gguf);
    if (!qt) return QB_ERR_NOMEM;
    qt->n_dims = t->n_dims;
    for (int i = 0; i < t->n_dims; i++) qt->ne[i] = t->shape[t->n_dims - 1 - i]; /* [out, in] -> ne {in, out} */
    qt->type = qt->src_type = (qb_type)t->type;
    qt->nbytes = t->nbytes;
    qt->data = t->data;
    size_t es = (size_t)qb_type_get(t->type)->size;
    if ((uintptr_t)t->data % es != 0) {
        /* The format does not promise alignment; a misaligned tensor gets an aligned copy. */
        if (!(qt->owned = malloc(t->nbytes ? t->nbytes : 1)))
            return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", path);
        memcpy(qt->owned, t->data, t->nbytes);
        qt->data = qt->owned;
    }
    return QB_OK;
}

/* Every tensor the index assigns to shard must be in it. */
static qb_status check_index(qb_ctx *ctx, const char *index_path, json_t *weight_map, const char *shard,
                             const qb_st_file *f)
{
    const char *key;
    json_t *val;
    json_object_foreach(weight_map, key, val) {
        if (strcmp(json_string_value(val), shard) == 0 && !qb_safetensors_find(f, key))
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: tensor '%s' is listed in shard %s but that file does not hold it",
                           index_path, key, shard);
    }
    return QB_OK;
}

/* Map one .safetensors file and add the tensors we use. With an index (weight_map != NULL),
 * only the tensors it assigns to this shard (file name shard) are taken. */
static qb_status load_shard(qb_ctx *ctx, qb_model *m, const char *path, const char *index_path, json_t *weight_map,
                            const char *shard)
{
    qb_mapfile *map;
    qb_st_file f = {0};
    qb_status st = qb_model_add_map(ctx, m, path, &map);
    if (st != QB_OK) return st;
    if ((st = qb_safetensors_parse(ctx, path, map->data, map->size, &f)) != QB_OK) goto fail;
    for (int i = 0; i < f.n_tensors; i++) {
        const qb_st_tensor *t = &f.tensors[i];
        if (weight_map) {
            json_t *w = json_object_get(weight_map, t->name);
            if (!w || strcmp(json_string_value(w), shard) != 0) continue;
        }
        char gguf[128];
        long layer;
        if (!map_name(t->name, m->cfg.post_norms, gguf, sizeof gguf, &layer)) continue;
        if ((st = add_tensor(ctx, m, path, t, gguf, layer)) != QB_OK) goto fail;
    }
    if (weight_map && (st = check_index(ctx, index_path, weight_map, shard, &f)) != QB_OK) goto fail;
    qb_safetensors_free(&f);
    return QB_OK;
fail:
    qb_safetensors_free(&f);
    return st;
}

/* Read the index and load each shard it names once, in order of first mention. */
static qb_status load_index(qb_ctx *ctx, qb_model *m, const char *dir, const char *index_path)
{
    char *text = NULL, *shard_path = NULL;
    const char **shards = NULL;
    json_t *root = NULL;
    size_t len, n_shards = 0;
    json_error_t jerr;
    qb_status st = qb_read_file(ctx, index_path, INDEX_MAX_BYTES, &text, &len);
    if (st != QB_OK) goto fail;
    if (!(root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr))) {
        st = qb_fail(ctx, QB_ERR_FORMAT, "%s: not valid JSON: %s (line %d, column %d)", index_path, jerr.text,
                     jerr.line, jerr.column);
        goto fail;
    }
    json_t *wm = json_object_get(root, "weight_map");
    if (!json_is_object(wm)) {
        st = qb_fail(ctx, QB_ERR_FORMAT, "%s: no \"weight_map\" object", index_path);
        goto fail;
    }
    if (!(shards = malloc((json_object_size(wm) + 1) * sizeof *shards))) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", index_path);
        goto fail;
    }
    const char *key;
    json_t *val;
    json_object_foreach(wm, key, val) {
        const char *s = json_string_value(val);
        if (!s || !*s || strchr(s, '/') || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
            st = qb_fail(ctx, QB_ERR_FORMAT, "%s: tensor '%s' has a bad shard file name (a plain file name expected)",
                         index_path, key);
            goto fail;
        }
        size_t j = 0;
        while (j < n_shards && strcmp(shards[j], s) != 0) j++;
        if (j == n_shards) shards[n_shards++] = s;
    }
    for (size_t i = 0; i < n_shards; i++) {
        if (!(shard_path = join(dir, shards[i]))) {
            st = qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", index_path);
            goto fail;
        }
        if (!is_file(shard_path)) {
            st = qb_fail(ctx, QB_ERR_IO, "%s: shard %s is missing (no file %s)", index_path, shards[i], shard_path);
            goto fail;
        }
        if ((st = load_shard(ctx, m, shard_path, index_path, wm, shards[i])) != QB_OK) goto fail;
        free(shard_path);
        shard_path = NULL;
    }
    st = QB_OK;
fail:
    free(shard_path);
    free(shards);
    json_decref(root);
    free(text);
    return st;
}

/* Gemma keeps norm weights w for a multiplier 1 + w; the model holds the multiplier (as
 * llama.cpp's converter writes it to GGUF), an F32 copy that becomes the tensor's source. */
static qb_status norms_plus_one(qb_ctx *ctx, qb_model *m)
{
    for (int i = 0; i < m->n_tensors; i++) {
        qb_tensor *t = &m->tensors[i];
        size_t n = strlen(t->name);
        if (n < 11 || strcmp(t->name + n - 11, "norm.weight") != 0) continue;
        int64_t ne = qb_tensor_nelements(t);
        float *w = malloc((size_t)ne * sizeof *w);
        if (!w) return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", m->path);
        t->src_type = t->type;
        t->src_data = t->data;
        qb_tensor_source_rows(t, 0, 1, w); /* norms are one row */
        for (int64_t j = 0; j < ne; j++) w[j] += 1.0f;
        free(t->owned);
        t->owned = w;
        t->data = w;
        t->type = QB_TYPE_F32;
        t->nbytes = (size_t)ne * sizeof *w;
    }
    return QB_OK;
}

qb_status qb_model_load_safetensors(qb_ctx *ctx, qb_model *m, const qb_model_opts *opts)
{
    char *dir = NULL, *cfg_path = NULL, *index_path = NULL, *single_path = NULL, *tok_path = NULL;
    qb_status st;
    bool path_is_dir = is_dir(m->path);
    m->kind = QB_FILE_SAFETENSORS;
    if (!(dir = model_dir(m->path)) || !(cfg_path = join(dir, "config.json")) ||
        !(index_path = join(dir, INDEX_NAME)) || !(single_path = join(dir, "model.safetensors")) ||
        !(tok_path = join(dir, "tokenizer.json"))) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", m->path);
        goto fail;
    }
    set_name(m, dir);
    if (!is_file(cfg_path)) {
        st = qb_fail(ctx, QB_ERR_IO, "%s: no config.json in %s (a Hugging Face model needs one beside its weights)",
                     m->path, dir);
        goto fail;
    }
    if ((st = qb_hf_config_load(ctx, cfg_path, &m->cfg)) != QB_OK) goto fail;
    snprintf(m->arch, sizeof m->arch, "%s", qb_arch_get(m->cfg.arch)->gguf);

    if (!path_is_dir) st = load_shard(ctx, m, m->path, NULL, NULL, NULL);
    else if (is_file(index_path)) st = load_index(ctx, m, dir, index_path);
    else if (is_file(single_path)) st = load_shard(ctx, m, single_path, NULL, NULL, NULL);
    else st = qb_fail(ctx, QB_ERR_IO, "%s: no model.safetensors or " INDEX_NAME " in this directory", m->path);
    if (st != QB_OK) goto fail;
    if (qb_arch_get(m->cfg.arch)->hf_norm_plus_one && (st = norms_plus_one(ctx, m)) != QB_OK) goto fail;

    if (!(opts && opts->skip_tokenizer)) {
        if (!is_file(tok_path)) {
            st = qb_fail(ctx, QB_ERR_IO, "%s: no tokenizer.json in %s (open with skip_tokenizer for weights only)",
                         m->path, dir);
            goto fail;
        }
        if ((st = qb_tokenizer_from_hf(ctx, tok_path, &m->tok)) != QB_OK) goto fail;
    }
    st = QB_OK;
fail:
    free(dir);
    free(cfg_path);
    free(index_path);
    free(single_path);
    free(tok_path);
    return st;
}
