/* vocab_hf_pre.c — a tokenizer.json's "normalizer" and "pre_tokenizer" sections read into the
 * steps we run (vocab_hf.h): normalizers NFC, Prepend("▁"), Replace(" ", "▁") and Sequences of
 * them; pre-tokenizers Split (Isolated regexes; or a literal " " that a Replace(" ", "▁")
 * normalizer leaves nothing to split, as Gemma's), ByteLevel, Metaspace and Sequences of them.
 * Every other type is refused by name. */
#include "vocab_hf.h"

#include <stdlib.h>
#include <string.h>

static const char META[] = "\xe2\x96\x81"; /* U+2581 */

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

static qb_status add_regex(qb_ctx *ctx, const char *path, hf_pipeline *p, const char *rx, char *owned)
{
    if (p->n == HF_MAX_RX) {
        free(owned);
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: more than %d pre-tokenizer splits", path, HF_MAX_RX);
    }
    p->owned[p->n] = owned;
    p->rx[p->n++] = rx;
    return QB_OK;
}

static qb_status parse_split(qb_ctx *ctx, const char *path, const json_t *pt, hf_pipeline *p)
{
    const json_t *pat = json_object_get(pt, "pattern");
    const char *behavior = jstr(pt, "behavior");
    bool invert = json_is_true(json_object_get(pt, "invert"));
    const char *rx = jstr(pat, "Regex"), *lit = jstr(pat, "String");
    if (!rx && !lit)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: Split pre-tokenizer without a Regex or String pattern", path);
    bool space = lit && strcmp(lit, " ") == 0;
    if (invert || (behavior && strcmp(behavior, "Isolated") != 0)) {
        /* only fine where nothing is left to split (decided in hf_pipeline_kind) */
        if (space) {
            if (!p->n_space_other++) p->space_behavior = behavior ? behavior : "?";
        } else if (!p->bad_split) {
            p->bad_split = behavior ? behavior : "?";
            p->bad_split_inverted = invert;
        }
        return QB_OK;
    }
    p->n_space_isolated += space;
    if (rx) return add_regex(ctx, path, p, rx, NULL);
    char *e = escape_literal(lit);
    if (!e) return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", path);
    return add_regex(ctx, path, p, e, e);
}

static qb_status parse_metaspace(qb_ctx *ctx, const char *path, const json_t *pt, hf_pipeline *p)
{
    const char *rep = jstr(pt, "replacement");
    if (!rep) return qb_fail(ctx, QB_ERR_FORMAT, "%s: Metaspace pre-tokenizer without a replacement", path);
    if (strcmp(rep, META) != 0)
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: Metaspace replacement '%.16s' is not supported (only \"\xe2\x96\x81\")",
                       path, rep);
    if (p->meta != TOK_META_NONE) return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: two Metaspace pre-tokenizers", path);
    const json_t *scheme = json_object_get(pt, "prepend_scheme"), *aps = json_object_get(pt, "add_prefix_space");
    const json_t *split = json_object_get(pt, "split");
    if (scheme && !json_is_null(scheme)) {
        const char *s = json_string_value(scheme);
        p->meta = !s                         ? -1
                  : strcmp(s, "first") == 0  ? TOK_META_FIRST
                  : strcmp(s, "always") == 0 ? TOK_META_ALWAYS
                  : strcmp(s, "never") == 0  ? TOK_META_NEVER
                                             : -1;
        if (p->meta < 0)
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: Metaspace prepend_scheme is not \"first\", \"always\" or \"never\"",
                           path);
    } else { /* older files: add_prefix_space, true by default */
        if (aps && !json_is_boolean(aps))
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: Metaspace add_prefix_space is not true or false", path);
        p->meta = aps && json_is_false(aps) ? TOK_META_NEVER : TOK_META_ALWAYS;
    }
    if (split && !json_is_boolean(split))
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: Metaspace split is not true or false", path);
    p->meta_split = split ? json_is_true(split) : true;
    return QB_OK;
}

static qb_status parse_pre(qb_ctx *ctx, const char *path, const json_t *pt, hf_pipeline *p, int depth)
{
    if (!pt || json_is_null(pt)) return QB_OK;
    const char *type = jstr(pt, "type");
    if (!type) return qb_fail(ctx, QB_ERR_FORMAT, "%s: pre_tokenizer without a type", path);
    if (depth > 4) return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: pre_tokenizer Sequences nested too deep", path);
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
    if (strcmp(type, "Metaspace") == 0) return parse_metaspace(ctx, path, pt, p);
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
    return qb_fail(ctx, QB_ERR_UNSUPPORTED,
                   "%s: pre-tokenizer '%s' is not supported (Split, ByteLevel, Metaspace and Sequence are)", path, type);
}

static qb_status parse_norm(qb_ctx *ctx, const char *path, const json_t *nz, hf_pipeline *p, int depth)
{
    if (!nz || json_is_null(nz)) return QB_OK;
    const char *type = jstr(nz, "type");
    if (!type) return qb_fail(ctx, QB_ERR_FORMAT, "%s: normalizer without a type", path);
    if (depth > 4) return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: normalizer Sequences nested too deep", path);
    if (strcmp(type, "Sequence") == 0) {
        const json_t *list = json_object_get(nz, "normalizers");
        size_t i;
        const json_t *item;
        if (!json_is_array(list))
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: Sequence normalizer without a normalizers list", path);
        json_array_foreach(list, i, item) {
            qb_status st = parse_norm(ctx, path, item, p, depth + 1);
            if (st != QB_OK) return st;
        }
        return QB_OK;
    }
    if (strcmp(type, "NFC") == 0) {
        p->nfc = true;
        return QB_OK;
    }
    if (strcmp(type, "Prepend") == 0) {
        const char *s = jstr(nz, "prepend");
        if (!s) return qb_fail(ctx, QB_ERR_FORMAT, "%s: Prepend normalizer without a prepend string", path);
        if (strcmp(s, META) != 0)
            return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: Prepend normalizer of '%.16s' is not supported (only \"%s\")",
                           path, s, META);
        p->prepend = true;
        return QB_OK;
    }
    if (strcmp(type, "Replace") == 0) {
        const char *from = jstr(json_object_get(nz, "pattern"), "String"), *to = jstr(nz, "content");
        if (!json_is_object(json_object_get(nz, "pattern")) || !to)
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: Replace normalizer without a pattern and a content", path);
        if (!from || strcmp(from, " ") != 0 || strcmp(to, META) != 0)
            return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: Replace normalizer is supported only as \" \" -> \"%s\"", path,
                           META);
        p->replace_spaces = true;
        return QB_OK;
    }
    return qb_fail(ctx, QB_ERR_UNSUPPORTED,
                   "%s: normalizer '%s' is not supported (NFC, Prepend, Replace and Sequence are)", path, type);
}

qb_status hf_pipeline_parse(qb_ctx *ctx, const char *path, const json_t *root, hf_pipeline *p)
{
    memset(p, 0, sizeof *p);
    qb_status st = parse_norm(ctx, path, json_object_get(root, "normalizer"), p, 0);
    if (st == QB_OK) st = parse_pre(ctx, path, json_object_get(root, "pre_tokenizer"), p, 0);
    return st;
}

void hf_pipeline_free(hf_pipeline *p)
{
    for (int i = 0; i < p->n; i++) free(p->owned[i]);
    p->n = 0;
}

qb_status hf_pipeline_kind(qb_ctx *ctx, const char *path, const hf_pipeline *p, qb_tok_kind *kind)
{
    bool sp_style = p->replace_spaces || p->meta != TOK_META_NONE;
    if (p->byte_level && (sp_style || p->prepend))
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: a ByteLevel pre-tokenizer with \"\xe2\x96\x81\" for spaces is not supported",
                       path);
    if (p->byte_level) {
        if (p->bad_split || p->n_space_other > 0) {
            const char *b = p->bad_split ? p->bad_split : p->space_behavior;
            return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: Split pre-tokenizer with behavior '%s'%s is not supported", path,
                           b, p->bad_split && p->bad_split_inverted ? " (inverted)" : "");
        }
        *kind = QB_TOK_BPE;
        return QB_OK;
    }
    if (!sp_style)
        return qb_fail(ctx, QB_ERR_UNSUPPORTED,
                       "%s: neither a ByteLevel pre-tokenizer nor SentencePiece-style \"\xe2\x96\x81\" for spaces "
                       "(byte-level BPE and SentencePiece-style BPE are supported)",
                       path);
    /* spaces are "▁" before any Split runs: a Split on " " finds nothing; others would */
    if (p->bad_split || p->n > p->n_space_isolated ||
        (p->n_space_isolated + p->n_space_other > 0 && !p->replace_spaces))
        return qb_fail(ctx, QB_ERR_UNSUPPORTED,
                       "%s: a Split pre-tokenizer on a SentencePiece-style tokenizer is not supported (only Split(\" \") "
                       "after a Replace(\" \", \"\xe2\x96\x81\") normalizer)",
                       path);
    if (p->prepend && !p->replace_spaces && p->meta == TOK_META_NONE)
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: a Prepend normalizer without Replace is not supported", path);
    *kind = QB_TOK_SPM;
    return QB_OK;
}

const char *hf_pipeline_label(const hf_pipeline *p)
{
    if (p->n == 0) return "none";
    const char *name = p->n == 1 ? tok_pretok_name(p->rx[0]) : NULL;
    return name ? name : "custom regex";
}
