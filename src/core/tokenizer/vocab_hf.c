/* vocab_hf.c — building a tokenizer from a Hugging Face tokenizer.json (model.type "BPE":
 * vocab {token: id}, merges as "a b" strings or [a, b] pairs, added_tokens with their matching
 * flags; the normalizer and pre_tokenizer read by vocab_hf_pre.c decide between byte-level BPE
 * and SentencePiece-style BPE with byte fallback) and, when it sits beside it,
 * tokenizer_config.json (add_bos_token, bos_token, eos_token). */
#include "vocab_hf.h"

#include "../util/mapfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* Token texts: model.vocab, then added_tokens (special ones are control tokens, the others
 * user-defined); for SentencePiece-style, "<0xNN>" vocabulary entries are byte tokens. */
static qb_status load_vocab(qb_ctx *ctx, const char *path, qb_tok_kind kind, const json_t *vocab, const json_t *added,
                            qb_tokenizer **out)
{
    const char *key;
    const json_t *val;
    json_int_t max_id = -1;
    size_t i;
    json_object_foreach((json_t *)vocab, key, val) {
        json_int_t id = json_integer_value(val);
        if (!json_is_integer(val) || id < 0 || id >= TOK_MAX_VOCAB)
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: model.vocab entry '%.60s' has a bad id", path, key);
        if (id > max_id) max_id = id;
    }
    json_array_foreach(added, i, val) {
        json_int_t id = json_integer_value(json_object_get(val, "id"));
        if (!json_is_integer(json_object_get(val, "id")) || !jstr(val, "content") || id < 0 || id >= TOK_MAX_VOCAB)
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: added_tokens[%zu] needs an id and a content", path, i);
        if (id > max_id) max_id = id;
    }
    if (max_id < 0) return qb_fail(ctx, QB_ERR_FORMAT, "%s: model.vocab is empty", path);
    size_t listed = json_object_size(vocab) + json_array_size(added);
    if ((size_t)max_id >= 2 * listed + 1024) /* ids that sparse would only waste memory */
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: token id %lld is far beyond the %zu tokens listed", path,
                       (long long)max_id, listed);
    qb_tokenizer *t;
    qb_status st = tok_alloc(ctx, kind, (int)max_id + 1, kind == QB_TOK_SPM, &t);
    if (st != QB_OK) return st;
    for (void *it = json_object_iter((json_t *)vocab); it; it = json_object_iter_next((json_t *)vocab, it)) {
        int id = (int)json_integer_value(json_object_iter_value(it));
        const char *k = json_object_iter_key(it);
        size_t kn = json_object_iter_key_len(it);
        if ((st = tok_set_text(ctx, t, id, k, kn)) != QB_OK) goto fail;
        if (kind == QB_TOK_SPM && tok_byte_value(k, kn) >= 0) t->type[id] = TOK_BYTE;
    }
    json_array_foreach(added, i, val) {
        int id = (int)json_integer_value(json_object_get(val, "id"));
        const json_t *c = json_object_get(val, "content");
        if ((st = tok_set_text(ctx, t, id, json_string_value(c), json_string_length(c))) != QB_OK) goto fail;
        t->type[id] = json_is_true(json_object_get(val, "special")) ? TOK_CONTROL : TOK_USER;
    }
    for (int id = 0; id < t->n_vocab; id++)
        if (t->off[id] == 0) t->type[id] = TOK_UNUSED; /* a hole in the id space */
    *out = t;
    return QB_OK;
fail:
    qb_tokenizer_free(t);
    return st;
}

static qb_status load_merges(qb_ctx *ctx, const char *path, const json_t *merges, qb_tokenizer *t)
{
    size_t i;
    const json_t *m;
    if (!json_is_array(merges)) return qb_fail(ctx, QB_ERR_FORMAT, "%s: model.merges is not a list", path);
    qb_status st = tok_reserve_merges(ctx, t, json_array_size(merges));
    json_array_foreach(merges, i, m) {
        const char *a, *b;
        size_t na, nb;
        if (st != QB_OK || i >= (size_t)INT32_MAX) break;
        if (json_is_string(m)) { /* "a b" */
            const char *s = json_string_value(m), *sp = strchr(s, ' ');
            if (!sp) return qb_fail(ctx, QB_ERR_FORMAT, "%s: merges[%zu] \"%.40s\" is not \"a b\"", path, i, s);
            a = s;
            na = (size_t)(sp - s);
            b = sp + 1;
            nb = json_string_length(m) - na - 1;
        } else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
                   json_is_string(json_array_get(m, 1))) { /* ["a", "b"] */
            a = json_string_value(json_array_get(m, 0));
            na = json_string_length(json_array_get(m, 0));
            b = json_string_value(json_array_get(m, 1));
            nb = json_string_length(json_array_get(m, 1));
        } else {
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: merges[%zu] is neither \"a b\" nor [a, b]", path, i);
        }
        bool kept; /* merges naming unknown tokens are skipped */
        st = tok_add_merge_text(ctx, t, a, na, b, nb, (int32_t)i, &kept);
        t->n_merges += kept;
    }
    return st;
}

/* A bos_token / eos_token value of tokenizer_config.json: a string or {"content": …}. */
static const char *config_token(const json_t *cfg, const char *key)
{
    const json_t *v = json_object_get(cfg, key);
    return json_is_string(v) ? json_string_value(v) : jstr(v, "content");
}

/* The special token a TemplateProcessing post-processor puts before a single sequence. */
static const char *template_first_special(const json_t *pp)
{
    const char *type = jstr(pp, "type");
    if (type && strcmp(type, "Sequence") == 0) {
        size_t i;
        const json_t *item;
        json_array_foreach(json_object_get(pp, "processors"), i, item) {
            const char *r = template_first_special(item);
            if (r) return r;
        }
        return NULL;
    }
    if (!type || strcmp(type, "TemplateProcessing") != 0) return NULL;
    const json_t *first = json_array_get(json_object_get(pp, "single"), 0);
    return jstr(json_object_get(first, "SpecialToken"), "id");
}

static int32_t find_name(const qb_tokenizer *t, const char *name)
{
    return name ? tok_lookup(t, name, strlen(name)) : -1;
}

static int32_t find_first(const qb_tokenizer *t, const char *const *names)
{
    for (; *names; names++) {
        int32_t id = find_name(t, *names);
        if (id >= 0) return id;
    }
    return -1;
}

/* BOS/EOS and add_bos: tokenizer_config.json first, then the post-processor's template, then
 * the usual names. cfg may be NULL. */
static void set_specials(qb_tokenizer *t, const json_t *root, const json_t *cfg)
{
    static const char *const bos_names[] = {"<|begin_of_text|>", "<s>", "<|startoftext|>", "<bos>", NULL};
    static const char *const eos_names[] = {"<|end_of_text|>", "</s>", "<|endoftext|>", "<eos>", NULL};
    const char *tmpl = template_first_special(json_object_get(root, "post_processor"));
    int32_t tmpl_id = find_name(t, tmpl);
    t->bos = find_name(t, config_token(cfg, "bos_token"));
    if (t->bos < 0) t->bos = tmpl_id;
    if (t->bos < 0) t->bos = find_first(t, bos_names);
    t->eos = find_name(t, config_token(cfg, "eos_token"));
    if (t->eos < 0) t->eos = find_first(t, eos_names);
    const json_t *ab = json_object_get(cfg, "add_bos_token");
    t->add_bos = json_is_boolean(ab) ? json_is_true(ab) : (tmpl_id >= 0 && tmpl_id == t->bos);
    t->unk = find_name(t, jstr(json_object_get(root, "model"), "unk_token"));
}

/* flags: jansson's decoding flags (besides JSON_ALLOW_NUL, always on). */
static qb_status load_json(qb_ctx *ctx, const char *path, size_t flags, json_t **out)
{
    char *buf;
    size_t len;
    json_error_t err;
    *out = NULL;
    qb_status st = qb_read_file(ctx, path, (size_t)1 << 30, &buf, &len);
    if (st != QB_OK) return st;
    *out = json_loadb(buf, len, JSON_ALLOW_NUL | flags, &err);
    free(buf);
    if (!*out)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: invalid JSON at line %d, column %d: %s", path, err.line, err.column,
                       err.text);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: not a JSON object", path);
    }
    return QB_OK;
}

/* tokenizer_config.json beside path, or NULL (and QB_OK) when there is none. */
static qb_status load_config(qb_ctx *ctx, const char *path, json_t **cfg)
{
    *cfg = NULL;
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path) + 1 : 0;
    char *cp = malloc(dl + sizeof "tokenizer_config.json");
    if (!cp) return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", path);
    memcpy(cp, path, dl);
    strcpy(cp + dl, "tokenizer_config.json");
    FILE *f = fopen(cp, "rb");
    qb_status st = QB_OK;
    if (f) {
        fclose(f);
        /* numbers as reals: transformers writes an unbounded model_max_length as the integer
         * 1000000000000000019884624838656 (int(1e30)), beyond 64 bits; nothing here reads an
         * integer from this file */
        st = load_json(ctx, cp, JSON_DECODE_INT_AS_REAL, cfg);
    }
    free(cp);
    return st;
}

static qb_status check_bool(qb_ctx *ctx, const char *path, const json_t *model, const char *key, bool dflt, bool *out)
{
    const json_t *v = json_object_get(model, key);
    if (v && !json_is_boolean(v) && !json_is_null(v))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: model.%s is not true or false", path, key);
    *out = v && json_is_boolean(v) ? json_is_true(v) : dflt;
    return QB_OK;
}

static qb_status check_model(qb_ctx *ctx, const char *path, const json_t *root, const json_t **model)
{
    *model = json_object_get(root, "model");
    if (!json_is_object(*model)) return qb_fail(ctx, QB_ERR_FORMAT, "%s: no \"model\" object", path);
    const char *type = jstr(*model, "type");
    if (type ? strcmp(type, "BPE") != 0 : !json_object_get(*model, "merges"))
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: model type '%s' is not supported (only BPE)", path,
                       type ? type : "?");
    if (!json_is_object(json_object_get(*model, "vocab")))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: model.vocab is not an object", path);
    const char *csp = jstr(*model, "continuing_subword_prefix"), *ews = jstr(*model, "end_of_word_suffix");
    if ((csp && *csp) || (ews && *ews))
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: BPE with subword prefix/suffix is not supported", path);
    const json_t *dropout = json_object_get(*model, "dropout");
    if (dropout && !json_is_null(dropout) && !json_is_number(dropout))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: model.dropout is not a number", path);
    if (json_number_value(dropout) > 0) /* random merges: no fixed answer to reproduce */
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: BPE dropout %g is not supported", path, json_number_value(dropout));
    return QB_OK;
}

/* The added tokens to match in the text, with tokenizers' flags; a normalized one is matched
 * by its normalized content (the tokenizer's normalizer must be set up). */
static qb_status load_added(qb_ctx *ctx, const char *path, const json_t *added, qb_tokenizer *t)
{
    size_t i;
    const json_t *a;
    qb_status st = QB_OK;
    json_array_foreach(added, i, a) {
        const json_t *c = json_object_get(a, "content"), *nz = json_object_get(a, "normalized");
        bool special = json_is_true(json_object_get(a, "special"));
        uint8_t flags = (json_is_true(json_object_get(a, "lstrip")) ? TOK_ADDED_LSTRIP : 0) |
                        (json_is_true(json_object_get(a, "rstrip")) ? TOK_ADDED_RSTRIP : 0) |
                        (json_is_true(json_object_get(a, "single_word")) ? TOK_ADDED_SINGLE_WORD : 0) |
                        ((nz ? json_is_true(nz) : !special) ? TOK_ADDED_NORMALIZED : 0);
        if (nz && !json_is_boolean(nz))
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: added_tokens[%zu].normalized is not true or false", path, i);
        char *buf;
        const char *s = json_string_value(c);
        size_t n = json_string_length(c);
        if ((flags & TOK_ADDED_NORMALIZED) && (st = tok_normalize(ctx, t, s, n, &buf, &s, &n)) != QB_OK) return st;
        if (!(flags & TOK_ADDED_NORMALIZED)) buf = NULL;
        st = tok_added_add(ctx, t, (int32_t)json_integer_value(json_object_get(a, "id")), s, n, flags);
        free(buf);
        if (st != QB_OK) return st;
    }
    return tok_added_finish(ctx, t);
}

/* SentencePiece-style scores for GGUF export: a token made by merges scores minus the rank of
 * the first merge that makes it (so llama.cpp's highest-score-first merges in the same order);
 * special, byte and user tokens 0; the rest (single characters, unreachable pieces) below all. */
static void rank_scores(qb_tokenizer *t)
{
    const tok_pairmap *m = &t->merges;
    int32_t max_rank = 0;
    for (size_t i = 0; m->key && i <= m->mask; i++)
        if (m->key[i] && m->rank[i] > max_rank) max_rank = m->rank[i];
    float low = -(float)max_rank - 1.0f;
    for (int id = 0; id < t->n_vocab; id++) t->score[id] = t->type[id] == TOK_NORMAL ? low : 0.0f;
    for (size_t i = 0; m->key && i <= m->mask; i++) {
        if (!m->key[i]) continue;
        int32_t r = m->res[i];
        if (t->type[r] == TOK_NORMAL && -(float)m->rank[i] > t->score[r]) t->score[r] = -(float)m->rank[i];
    }
}

qb_status qb_tokenizer_from_hf(qb_ctx *ctx, const char *path, qb_tokenizer **out)
{
    json_t *root = NULL, *cfg = NULL;
    qb_tokenizer *t = NULL;
    hf_pipeline pipe = {0};
    const json_t *model;
    qb_tok_kind kind;
    bool byte_fallback, fuse_unk, ignore_merges;
    *out = NULL;
    qb_status st = load_json(ctx, path, 0, &root);
    if (st != QB_OK) goto fail;
    if ((st = check_model(ctx, path, root, &model)) != QB_OK) goto fail;
    if ((st = check_bool(ctx, path, model, "byte_fallback", false, &byte_fallback)) != QB_OK) goto fail;
    if ((st = check_bool(ctx, path, model, "fuse_unk", false, &fuse_unk)) != QB_OK) goto fail;
    if ((st = check_bool(ctx, path, model, "ignore_merges", false, &ignore_merges)) != QB_OK) goto fail;
    if ((st = hf_pipeline_parse(ctx, path, root, &pipe)) != QB_OK) goto fail;
    if ((st = hf_pipeline_kind(ctx, path, &pipe, &kind)) != QB_OK) goto fail;
    const json_t *added = json_object_get(root, "added_tokens");
    if (added && !json_is_array(added)) {
        st = qb_fail(ctx, QB_ERR_FORMAT, "%s: added_tokens is not a list", path);
        goto fail;
    }
    if ((st = load_vocab(ctx, path, kind, json_object_get(model, "vocab"), added, &t)) != QB_OK) goto fail;
    if ((st = load_config(ctx, path, &cfg)) != QB_OK) goto fail;
    if ((st = tok_finish(ctx, t)) != QB_OK) goto fail;
    set_specials(t, root, cfg);
    if ((st = load_merges(ctx, path, json_object_get(model, "merges"), t)) != QB_OK) goto fail;
    t->ignore_merges = ignore_merges;
    t->nfc = pipe.nfc;
    if (kind == QB_TOK_BPE) {
        if (pipe.n > 0 && (st = tok_pretok_new(ctx, pipe.rx, pipe.n, path, &t->pre)) != QB_OK) goto fail;
        t->prefix_space = pipe.prefix_space;
        const char *label = hf_pipeline_label(&pipe);
        snprintf(t->pre_name, sizeof t->pre_name, "%s", tok_pretok_regex(label) ? label : "gpt-2");
        snprintf(t->desc, sizeof t->desc, "byte-level BPE, pre-tokenizer %s%s (%d tokens, %d merges)", label,
                 pipe.nfc ? ", NFC" : "", t->n_vocab, t->n_merges);
    } else {
        t->norm_prepend = pipe.prepend;
        t->norm_spaces = pipe.replace_spaces;
        t->meta = pipe.meta;
        t->meta_split = pipe.meta_split;
        t->spm_ranked = true;
        t->byte_fallback = byte_fallback;
        t->fuse_unk = fuse_unk;
        t->add_space_prefix = pipe.prepend || pipe.meta == TOK_META_ALWAYS || pipe.meta == TOK_META_FIRST;
        rank_scores(t);
        static const char *const meta_name[] = {"", "never", "always", "first"};
        char prefix[40];
        if (pipe.meta != TOK_META_NONE) snprintf(prefix, sizeof prefix, "Metaspace %s", meta_name[pipe.meta]);
        else snprintf(prefix, sizeof prefix, "%s", pipe.prepend ? "space prefix" : "no space prefix");
        snprintf(t->desc, sizeof t->desc, "SentencePiece-style BPE, %s%s%s (%d tokens, %d merges)", prefix,
                 byte_fallback ? ", byte fallback" : "", pipe.nfc ? ", NFC" : "", t->n_vocab, t->n_merges);
    }
    if ((st = load_added(ctx, path, added, t)) != QB_OK) goto fail;
    *out = t;
    t = NULL;
fail:
    hf_pipeline_free(&pipe);
    qb_tokenizer_free(t);
    json_decref(cfg);
    json_decref(root);
    return st;
}
