/* vocab_hf.c — building a byte-level BPE tokenizer from a Hugging Face tokenizer.json
 * (model.type "BPE": vocab {token: id}, merges as "a b" strings or [a, b] pairs, added_tokens,
 * a ByteLevel pre-tokenizer, alone or after Split regexes) and, when it sits beside it,
 * tokenizer_config.json (add_bos_token, bos_token, eos_token). */
#include "tok_internal.h"

#include "../util/mapfile.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RX 8

/* What the pre_tokenizer section amounts to: regexes applied in order, and ByteLevel's flags. */
typedef struct {
    const char *rx[MAX_RX];   /* borrowed from the JSON or from owned[] */
    int n;
    char *owned[MAX_RX];      /* escaped literal patterns */
    bool byte_level;
    bool prefix_space;
} pre_spec;

static const char hf_llama3_rx[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* A literal Split pattern as a regex: every non-alphanumeric ASCII byte escaped. */
static char *escape_literal(const char *s)
{
    size_t n = strlen(s);
    char *r = malloc(n * 2 + 1), *o = r;
    if (!r) return NULL;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (c < 0x80 && !alnum) *o++ = '\\';
        *o++ = *s;
    }
    *o = 0;
    return r;
}

static qb_status add_regex(qb_ctx *ctx, const char *path, pre_spec *p, const char *rx, char *owned)
{
    if (p->n == MAX_RX) {
        free(owned);
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: more than %d pre-tokenizer splits", path, MAX_RX);
    }
    p->owned[p->n] = owned;
    p->rx[p->n++] = rx;
    return QB_OK;
}

static qb_status parse_split(qb_ctx *ctx, const char *path, const json_t *pt, pre_spec *p)
{
    const json_t *pat = json_object_get(pt, "pattern");
    const char *behavior = jstr(pt, "behavior");
    if (json_is_true(json_object_get(pt, "invert")) || (behavior && strcmp(behavior, "Isolated") != 0))
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: Split pre-tokenizer with behavior '%s'%s is not supported", path,
                       behavior ? behavior : "?", json_is_true(json_object_get(pt, "invert")) ? " (inverted)" : "");
    const char *rx = jstr(pat, "Regex"), *lit = jstr(pat, "String");
    if (rx) return add_regex(ctx, path, p, rx, NULL);
    if (lit) {
        char *e = escape_literal(lit);
        if (!e) return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", path);
        return add_regex(ctx, path, p, e, e);
    }
    return qb_fail(ctx, QB_ERR_FORMAT, "%s: Split pre-tokenizer without a Regex or String pattern", path);
}

static qb_status parse_pre(qb_ctx *ctx, const char *path, const json_t *pt, pre_spec *p, int depth)
{
    if (!pt || json_is_null(pt)) return QB_OK;
    const char *type = jstr(pt, "type");
    if (!type || depth > 4) return qb_fail(ctx, QB_ERR_FORMAT, "%s: pre_tokenizer without a type", path);
    if (strcmp(type, "Sequence") == 0) {
        const json_t *list = json_object_get(pt, "pretokenizers");
        size_t i;
        const json_t *item;
        if (!json_is_array(list))
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: Sequence pre_tokenizer without a pretokenizers list", path);
        json_array_foreach(list, i, item) {
            qb_status st = parse_pre(ctx, path, item, p, depth + 1);
            if (st != QB_OK) return st;
        }
        return QB_OK;
    }
    if (strcmp(type, "Split") == 0) return parse_split(ctx, path, pt, p);
    if (strcmp(type, "ByteLevel") == 0) {
        const json_t *aps = json_object_get(pt, "add_prefix_space"), *ur = json_object_get(pt, "use_regex");
        bool prefix = aps ? json_is_true(aps) : true; /* the library's defaults */
        bool use_regex = ur ? json_is_true(ur) : true;
        if (p->byte_level) return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: two ByteLevel pre-tokenizers", path);
        if (prefix && p->n > 0)
            return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: ByteLevel add_prefix_space after a Split is not supported",
                           path);
        p->byte_level = true;
        p->prefix_space = prefix;
        return use_regex ? add_regex(ctx, path, p, tok_pretok_regex("gpt-2"), NULL) : QB_OK;
    }
    return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: pre-tokenizer '%s' is not supported (byte-level BPE only)", path,
                   type);
}

static const char *pre_label(const pre_spec *p)
{
    if (p->n == 0) return "none";
    if (p->n == 1 && strcmp(p->rx[0], tok_pretok_regex("gpt-2")) == 0) return "gpt-2";
    if (p->n == 1 && (strcmp(p->rx[0], hf_llama3_rx) == 0 || strcmp(p->rx[0], tok_pretok_regex("llama-bpe")) == 0))
        return "llama-bpe";
    return "custom regex";
}

/* Token texts: model.vocab, then added_tokens (special ones are control tokens). */
static qb_status load_vocab(qb_ctx *ctx, const char *path, const json_t *vocab, const json_t *added, qb_tokenizer **out)
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
    qb_status st = tok_alloc(ctx, QB_TOK_BPE, (int)max_id + 1, false, &t);
    if (st != QB_OK) return st;
    for (void *it = json_object_iter((json_t *)vocab); it; it = json_object_iter_next((json_t *)vocab, it)) {
        int id = (int)json_integer_value(json_object_iter_value(it));
        if ((st = tok_set_text(ctx, t, id, json_object_iter_key(it), json_object_iter_key_len(it))) != QB_OK)
            goto fail;
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

static qb_status load_json(qb_ctx *ctx, const char *path, json_t **out)
{
    char *buf;
    size_t len;
    json_error_t err;
    *out = NULL;
    qb_status st = qb_read_file(ctx, path, (size_t)1 << 30, &buf, &len);
    if (st != QB_OK) return st;
    *out = json_loadb(buf, len, JSON_ALLOW_NUL, &err);
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
        st = load_json(ctx, cp, cfg);
    }
    free(cp);
    return st;
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
    const json_t *norm = json_object_get(root, "normalizer");
    if (norm && !json_is_null(norm))
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: normalizer '%s' is not supported (byte-level BPE only)", path,
                       jstr(norm, "type") ? jstr(norm, "type") : "?");
    if (jstr(*model, "continuing_subword_prefix") || jstr(*model, "end_of_word_suffix"))
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: BPE with subword prefix/suffix is not supported", path);
    return QB_OK;
}

qb_status qb_tokenizer_from_hf(qb_ctx *ctx, const char *path, qb_tokenizer **out)
{
    json_t *root = NULL, *cfg = NULL;
    qb_tokenizer *t = NULL;
    pre_spec pre = {0};
    const json_t *model;
    *out = NULL;
    qb_status st = load_json(ctx, path, &root);
    if (st != QB_OK) goto fail;
    if ((st = check_model(ctx, path, root, &model)) != QB_OK) goto fail;
    if ((st = parse_pre(ctx, path, json_object_get(root, "pre_tokenizer"), &pre, 0)) != QB_OK) goto fail;
    if (!pre.byte_level) {
        st = qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: no ByteLevel pre-tokenizer (only byte-level BPE is supported)",
                     path);
        goto fail;
    }
    const json_t *added = json_object_get(root, "added_tokens");
    if (added && !json_is_array(added)) {
        st = qb_fail(ctx, QB_ERR_FORMAT, "%s: added_tokens is not a list", path);
        goto fail;
    }
    if ((st = load_vocab(ctx, path, json_object_get(model, "vocab"), added, &t)) != QB_OK) goto fail;
    if ((st = load_config(ctx, path, &cfg)) != QB_OK) goto fail;
    if ((st = tok_finish(ctx, t)) != QB_OK) goto fail;
    set_specials(t, root, cfg);
    if ((st = load_merges(ctx, path, json_object_get(model, "merges"), t)) != QB_OK) goto fail;
    if (pre.n > 0 && (st = tok_pretok_new(ctx, pre.rx, pre.n, path, &t->pre)) != QB_OK) goto fail;
    t->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
    t->prefix_space = pre.prefix_space;
    snprintf(t->pre_name, sizeof t->pre_name, "%s", strcmp(pre_label(&pre), "llama-bpe") == 0 ? "llama-bpe" : "gpt-2");
    snprintf(t->desc, sizeof t->desc, "byte-level BPE, pre-tokenizer %s (%d tokens, %d merges)", pre_label(&pre),
             t->n_vocab, t->n_merges);
    *out = t;
    t = NULL;
fail:
    for (int i = 0; i < pre.n; i++) free(pre.owned[i]);
    qb_tokenizer_free(t);
    json_decref(cfg);
    json_decref(root);
    return st;
}
