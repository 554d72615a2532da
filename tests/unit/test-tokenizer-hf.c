/* test-tokenizer-hf.c — the tokenizer shapes of the model families beyond Llama 2 / Llama 3:
 *  - SentencePiece-style tokenizer.json (BPE with byte_fallback) in each form transformers
 *    writes: Prepend + Replace normalizer (Llama 2, Mistral, Phi-3, Mixtral), Metaspace
 *    first / always (split) / never, Replace only with a no-op Split(" ") (Gemma); added tokens
 *    with their lstrip / rstrip / single_word / normalized flags, special ones matched only
 *    through qb_tokenize_special. Expected ids worked out from tokenizers' rules and checked
 *    against Hugging Face tokenizers 0.23.2 itself on the same files (special tokens matched,
 *    and with them left out of added_tokens for the unmatched case);
 *  - the Llama 2 vocabulary as transformers would convert it (merges from the scores) against
 *    llama.cpp's 46 vectors: ranked merges give the scored merges' ids;
 *  - byte-level BPE with the NFC normalizer and Qwen2's regex;
 *  - GGUF export of a tokenizer.json SentencePiece-style tokenizer (llama.cpp c392e50's
 *    llama_tokenize gives the same ids on the exported files);
 *  - bad input: malformed fields fail with one line naming the file and the field. */
#include "tok_testutil.h"

#include "core/util/gguf_write.h"

#include <jansson.h>

#define META "\xe2\x96\x81" /* U+2581 */

/* ---- writing tokenizer.json files ------------------------------------------------------- */

static json_t *added_tok(int id, const char *content, bool special, bool normalized, bool lstrip, bool rstrip,
                         bool single_word)
{
    return json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", id, "content", content, "single_word", single_word,
                     "lstrip", lstrip, "rstrip", rstrip, "normalized", normalized, "special", special);
}

/* The small SentencePiece-style vocabulary every variant shares (ids in the comments):
 * <unk> <s> </s> (0-2), <0x00>..<0xFF> (3-258; Gemma writes "\t" for <0x09>), then 259.. */
static const char *const spm_pieces[] = {
    META, "a", "b", "c", META "a", "ab", "bc", META "ab", "abc", META "abc", META META, /* 259-269 */
    "z", "<x>", "<m>", "ok", "o", "k", "zz",                                          /* 270-276 */
};
enum { P_META = 259, P_A, P_B, P_C, P_MA, P_AB, P_BC, P_MAB, P_ABC, P_MABC, P_MM, P_Z, P_X, P_M, P_OK, P_O, P_K, P_ZZ };
#define BYTE(b) (3 + (b))

static const char *const spm_merges[] = {
    META " a", "a b", "b c", META "a b", "ab c", META "ab c", META " " META, "a bc", META "a bc", "o k", "z z",
};

typedef enum { V_LEGACY, V_META_FIRST, V_META_ALWAYS_SPLIT, V_META_NEVER, V_GEMMA, V_COUNT } spm_variant;
static const char *const variant_name[] = {"legacy", "meta_first", "meta_always_split", "meta_never", "gemma"};

static char *spm_json(spm_variant v)
{
    json_t *vocab = json_object(), *merges = json_array(), *added = json_array();
    json_object_set_new(vocab, "<unk>", json_integer(0));
    json_object_set_new(vocab, "<s>", json_integer(1));
    json_object_set_new(vocab, "</s>", json_integer(2));
    for (int b = 0; b < 256; b++) {
        char k[8];
        snprintf(k, sizeof k, "<0x%02X>", b);
        json_object_set_new(vocab, v == V_GEMMA && b == 9 ? "\t" : k, json_integer(BYTE(b)));
    }
    for (size_t i = 0; i < sizeof spm_pieces / sizeof *spm_pieces; i++)
        json_object_set_new(vocab, spm_pieces[i], json_integer(P_META + (int)i));
    for (size_t i = 0; i < sizeof spm_merges / sizeof *spm_merges; i++)
        json_array_append_new(merges, json_string(spm_merges[i]));
    json_array_append_new(added, added_tok(0, "<unk>", true, false, false, false, false));
    json_array_append_new(added, added_tok(1, "<s>", true, false, false, false, false));
    json_array_append_new(added, added_tok(2, "</s>", true, false, false, false, false));
    json_array_append_new(added, added_tok(P_X, "<x>", false, false, false, false, false));
    json_array_append_new(added, added_tok(P_M, "<m>", false, false, true, true, false));
    json_array_append_new(added, added_tok(P_OK, "ok", false, false, false, false, true));
    json_array_append_new(added, added_tok(P_ZZ, "zz", false, true, false, false, false));
    json_t *rep = json_pack("{s:s, s:{s:s}, s:s}", "type", "Replace", "pattern", "String", " ", "content", META);
    json_t *norm = json_null(), *pre = json_null();
    static const char *const scheme[] = {NULL, "first", "always", "never"};
    switch (v) {
    case V_LEGACY:
        json_decref(norm);
        norm = json_pack("{s:s, s:[{s:s, s:s}, o]}", "type", "Sequence", "normalizers", "type", "Prepend", "prepend",
                         META, rep);
        break;
    case V_GEMMA:
        json_decref(norm);
        json_decref(pre);
        norm = rep;
        pre = json_pack("{s:s, s:{s:s}, s:s, s:b}", "type", "Split", "pattern", "String", " ", "behavior",
                        "MergedWithPrevious", "invert", 0);
        break;
    default:
        json_decref(rep);
        json_decref(pre);
        pre = json_pack("{s:s, s:s, s:s, s:b}", "type", "Metaspace", "replacement", META, "prepend_scheme",
                        scheme[v], "split", v == V_META_ALWAYS_SPLIT);
        break;
    }
    json_t *model = json_pack("{s:s, s:n, s:s, s:n, s:n, s:b, s:b, s:b, s:o, s:o}", "type", "BPE", "dropout",
                              "unk_token", "<unk>", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", 1,
                              "byte_fallback", 1, "ignore_merges", 0, "vocab", vocab, "merges", merges);
    json_t *root = json_pack("{s:s, s:n, s:n, s:o, s:o, s:o, s:n, s:n, s:o}", "version", "1.0", "truncation",
                             "padding", "added_tokens", added, "normalizer", norm, "pre_tokenizer", pre,
                             "post_processor", "decoder", "model", model);
    assert_non_null(root);
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

#define QWEN2_HF_RX                                                                                                   \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|" \
    "\\s+(?!\\S)|\\s+"

/* Byte-level BPE with NFC and Qwen2's Split regex: the 256 byte symbols (id = byte), then
 * "é" (256), "ab", "Ġa", "Ġab", "å" (260); added <|endoftext|> <|im_start|> (special) and <tool>. */
static char *qwen_json(void)
{
    json_t *vocab = json_object(), *merges = json_array();
    char e_acute[8], a_ring[8], ga[8], gab[8], m[16];
    for (int b = 0; b < 256; b++) json_object_set_new(vocab, sym(b), json_integer(b));
    snprintf(e_acute, sizeof e_acute, "%s%s", sym(0xC3), sym(0xA9));
    snprintf(a_ring, sizeof a_ring, "%s%s", sym(0xC3), sym(0xA5));
    snprintf(ga, sizeof ga, "%sa", sym(0x20));
    snprintf(gab, sizeof gab, "%sab", sym(0x20));
    json_object_set_new(vocab, e_acute, json_integer(256));
    json_object_set_new(vocab, "ab", json_integer(257));
    json_object_set_new(vocab, ga, json_integer(258));
    json_object_set_new(vocab, gab, json_integer(259));
    json_object_set_new(vocab, a_ring, json_integer(260));
    snprintf(m, sizeof m, "%s %s", sym(0xC3), sym(0xA9));
    json_array_append_new(merges, json_string(m));
    json_array_append_new(merges, json_string("a b"));
    snprintf(m, sizeof m, "%s a", sym(0x20));
    json_array_append_new(merges, json_string(m));
    snprintf(m, sizeof m, "%sa b", sym(0x20));
    json_array_append_new(merges, json_string(m));
    snprintf(m, sizeof m, "%s %s", sym(0xC3), sym(0xA5));
    json_array_append_new(merges, json_string(m));
    json_t *added = json_pack("[o, o, o]", added_tok(261, "<|endoftext|>", true, false, false, false, false),
                              added_tok(262, "<|im_start|>", true, false, false, false, false),
                              added_tok(263, "<tool>", false, false, false, false, false));
    json_t *pre = json_pack("{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, {s:s, s:b, s:b, s:b}]}", "type", "Sequence",
                            "pretokenizers", "type", "Split", "pattern", "Regex", QWEN2_HF_RX, "behavior", "Isolated",
                            "invert", 0, "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 0, "use_regex", 0);
    json_t *model = json_pack("{s:s, s:n, s:n, s:n, s:n, s:b, s:b, s:b, s:o, s:o}", "type", "BPE", "dropout",
                              "unk_token", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", 0,
                              "byte_fallback", 0, "ignore_merges", 0, "vocab", vocab, "merges", merges);
    json_t *root = json_pack("{s:s, s:o, s:{s:s}, s:o, s:o}", "version", "1.0", "added_tokens", added, "normalizer",
                             "type", "NFC", "pre_tokenizer", pre, "model", model);
    assert_non_null(root);
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

static qb_tokenizer *load_json_tok(const char *json, const char *cfg, hf_dir *d)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_tokenizer *t;
    hf_dir_make(d, json, cfg);
    if (qb_tokenizer_from_hf(&ctx, d->json, &t) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    return t;
}


/* ---- Llama 2's vocabulary as transformers converts it ------------------------------------ */

/* Codepoints in s[0..n). */
static int n_chars(const char *s, size_t n)
{
    int c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

typedef struct {
    float score;
    int len_l, len_r; /* codepoints */
    int piece, l, r;  /* ids */
} merge_rec;

/* transformers' generate_merges(vocab, vocab_scores): every split of every piece into two
 * pieces, highest score first, then longer left part, then longer right part; ties keep the
 * vocabulary's order (piece, then left id, then right id). */
static int cmp_merge(const void *x, const void *y)
{
    const merge_rec *a = x, *b = y;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    if (a->len_l != b->len_l) return a->len_l > b->len_l ? -1 : 1;
    if (a->len_r != b->len_r) return a->len_r > b->len_r ? -1 : 1;
    if (a->piece != b->piece) return a->piece < b->piece ? -1 : 1;
    if (a->l != b->l) return a->l < b->l ? -1 : 1;
    return (a->r > b->r) - (a->r < b->r);
}

/* tokenizer.json of the Llama 2 GGUF vocabulary, in LlamaConverter's legacy form (ids 0-2
 * scored 0, Prepend + Replace normalizer, byte fallback, fuse_unk). Caller frees. */
static char *llama2_json(void)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_gguf *g;
    if (qb_gguf_open(&ctx, qbt_model_path("tokenizer-vectors/ggml-vocab-llama-spm.gguf"), &g) != QB_OK)
        fail_msg("%s", qb_ctx_errmsg(&ctx));
    const qb_gguf_kv *tok = qb_gguf_find(g, "tokenizer.ggml.tokens"), *sc = qb_gguf_find(g, "tokenizer.ggml.scores");
    assert_non_null(tok);
    assert_non_null(sc);
    int n = (int)tok->arr_n;
    json_t *vocab = json_object();
    for (int i = 0; i < n; i++) {
        char *k = strndup(tok->arr_str[i].ptr, tok->arr_str[i].len);
        json_object_set_new(vocab, k, json_integer(i));
        free(k);
    }
    size_t cap = 1 << 16, nm = 0;
    merge_rec *m = malloc(cap * sizeof *m);
    for (int id = 0; id < n; id++) {
        const char *s = tok->arr_str[id].ptr;
        size_t len = tok->arr_str[id].len;
        for (size_t k = 1; k < len; k++) {
            if (((unsigned char)s[k] & 0xC0) == 0x80) continue; /* split between characters */
            char *l = strndup(s, k), *r = strndup(s + k, len - k);
            json_t *jl = json_object_get(vocab, l), *jr = json_object_get(vocab, r);
            if (jl && jr) {
                if (nm == cap) m = realloc(m, (cap *= 2) * sizeof *m);
                m[nm++] = (merge_rec){.score = id < 3 ? 0.0f : (float)qb_gguf_arr_float(sc, (uint64_t)id),
                                      .len_l = n_chars(s, k), .len_r = n_chars(s + k, len - k), .piece = id,
                                      .l = (int)json_integer_value(jl), .r = (int)json_integer_value(jr)};
            }
            free(l);
            free(r);
        }
    }
    qsort(m, nm, sizeof *m, cmp_merge);
    json_t *merges = json_array();
    for (size_t i = 0; i < nm; i++)
        json_array_append_new(merges, json_pack("[s%, s%]", tok->arr_str[m[i].l].ptr, (size_t)tok->arr_str[m[i].l].len,
                                                tok->arr_str[m[i].r].ptr, (size_t)tok->arr_str[m[i].r].len));
    free(m);
    qb_gguf_close(g);
    json_t *added = json_pack("[o, o, o]", added_tok(0, "<unk>", true, false, false, false, false),
                              added_tok(1, "<s>", true, false, false, false, false),
                              added_tok(2, "</s>", true, false, false, false, false));
    json_t *root = json_pack(
        "{s:o, s:{s:s, s:[{s:s, s:s}, {s:s, s:{s:s}, s:s}]}, s:n, s:{s:s, s:s, s:b, s:b, s:o, s:o}}", "added_tokens",
        added, "normalizer", "type", "Sequence", "normalizers", "type", "Prepend", "prepend", META, "type", "Replace",
        "pattern", "String", " ", "content", META, "pre_tokenizer", "model", "type", "BPE", "unk_token", "<unk>",
        "fuse_unk", 1, "byte_fallback", 1, "vocab", vocab, "merges", merges);
    assert_non_null(root);
    char *out = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return out;
}

/* Ranked merges over transformers' merge list give llama.cpp's scored-merge ids on all 46
 * vectors, and the same ids as the GGUF on 64 KB of prose. */
static void test_hf_spm_llama2_vectors(void **state)
{
    (void)state;
    qbt_need(qbt_model_path("tokenizer-vectors/ggml-vocab-llama-spm.gguf"));
    char *json = llama2_json();
    hf_dir d;
    qb_tokenizer *t = load_json_tok(json, "{\"add_bos_token\": true, \"bos_token\": \"<s>\"}", &d);
    free(json);
    assert_int_equal(qb_tokenizer_kind(t), QB_TOK_SPM);
    assert_int_equal(qb_tokenizer_vocab_size(t), 32000);
    assert_int_equal(qb_tokenizer_bos(t), 1);
    assert_true(qb_tokenizer_add_bos(t));
    vectors v;
    vectors_load(&v, "tokenizer-vectors/ggml-vocab-llama-spm.gguf");
    int bad = 0;
    for (int i = 0; i < v.n; i++) {
        bad += !check_ids(t, v.str[i], v.len[i], false, v.ids[i], v.n_ids[i]);
        bad += !round_trip(t, v.str[i], v.len[i]);
    }
    vectors_free(&v);
    assert_int_equal(bad, 0);
    /* prose, token for token against the GGUF (llama.cpp's algorithm) */
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_gguf *g;
    qb_tokenizer *gg;
    assert_int_equal(qb_gguf_open(&ctx, qbt_model_path("tokenizer-vectors/ggml-vocab-llama-spm.gguf"), &g), QB_OK);
    assert_int_equal(qb_tokenizer_from_gguf(&ctx, g, &gg), QB_OK);
    qb_gguf_close(g);
    size_t plen;
    char *prose = qbt_slurp(qbt_data_path("eval-docs.txt"), &plen);
    if (plen > 65536) plen = 65536;
    int32_t *a, *b;
    int na, nb;
    assert_int_equal(qb_tokenize(&ctx, t, prose, plen, true, &a, &na), QB_OK);
    assert_int_equal(qb_tokenize(&ctx, gg, prose, plen, true, &b, &nb), QB_OK);
    assert_true(na > 10000);
    assert_true(ids_equal(a, na, b, nb));
    free(a);
    free(b);
    free(prose);
    qb_tokenizer_free(gg);
    qb_tokenizer_free(t);
    hf_dir_remove(&d);
}


/* ---- SentencePiece-style tokenizer.json --------------------------------------------------- */

#define B(c) BYTE((unsigned char)(c))
#define MAXI 12

typedef struct {
    const char *text;
    int32_t want[V_COUNT][MAXI]; /* per variant, -1 ends */
} spm_case;

/* Hugging Face tokenizers' ids (encode_special_tokens = True: special tokens not matched). */
static const spm_case spm_cases[] = {
    {"abc", {{P_MABC, -1}, {P_MABC, -1}, {P_MABC, -1}, {P_ABC, -1}, {P_ABC, -1}}},
    {" abc", {{P_META, P_MABC, -1}, {P_MABC, -1}, {P_MABC, -1}, {P_MABC, -1}, {P_MABC, -1}}},
    {"abc abc", {{P_MABC, P_MABC, -1}, {P_MABC, P_MABC, -1}, {P_MABC, P_MABC, -1}, {P_ABC, P_MABC, -1}, {P_ABC, P_MABC, -1}}},
    {"ab  c",
     {{P_MAB, P_MM, P_C, -1}, {P_MAB, P_MM, P_C, -1}, {P_MAB, P_META, P_META, P_C, -1}, {P_AB, P_MM, P_C, -1},
      {P_AB, P_MM, P_C, -1}}},
    {"", {{-1}, {-1}, {-1}, {-1}, {-1}}},
    {"cab", {{P_META, P_C, P_AB, -1}, {P_META, P_C, P_AB, -1}, {P_META, P_C, P_AB, -1}, {P_C, P_AB, -1}, {P_C, P_AB, -1}}},
    {"x", {{P_META, B('x'), -1}, {P_META, B('x'), -1}, {P_META, B('x'), -1}, {B('x'), -1}, {B('x'), -1}}},
    {"\xc3\xa9",
     {{P_META, B(0xC3), B(0xA9), -1}, {P_META, B(0xC3), B(0xA9), -1}, {P_META, B(0xC3), B(0xA9), -1},
      {B(0xC3), B(0xA9), -1}, {B(0xC3), B(0xA9), -1}}},
    {"a\tb", /* Gemma: "\t" is a piece of its own, with <0x09>'s id */
     {{P_MA, B('\t'), P_B, -1}, {P_MA, B('\t'), P_B, -1}, {P_MA, B('\t'), P_B, -1}, {P_A, B('\t'), P_B, -1},
      {P_A, B('\t'), P_B, -1}}},
    {"<s>abc", /* not a special token here */
     {{P_META, B('<'), B('s'), B('>'), P_ABC, -1}, {P_META, B('<'), B('s'), B('>'), P_ABC, -1},
      {P_META, B('<'), B('s'), B('>'), P_ABC, -1}, {B('<'), B('s'), B('>'), P_ABC, -1},
      {B('<'), B('s'), B('>'), P_ABC, -1}}},
    {"a<x>b", /* user-defined: matched; the stretch after it has a prefix only with Prepend / always */
     {{P_MA, P_X, P_META, P_B, -1}, {P_MA, P_X, P_B, -1}, {P_MA, P_X, P_META, P_B, -1}, {P_A, P_X, P_B, -1},
      {P_A, P_X, P_B, -1}}},
    {"<x>abc", {{P_X, P_MABC, -1}, {P_X, P_ABC, -1}, {P_X, P_MABC, -1}, {P_X, P_ABC, -1}, {P_X, P_ABC, -1}}},
    {"a <m> b", /* lstrip and rstrip swallow the spaces */
     {{P_MA, P_M, P_META, P_B, -1}, {P_MA, P_M, P_B, -1}, {P_MA, P_M, P_META, P_B, -1}, {P_A, P_M, P_B, -1},
      {P_A, P_M, P_B, -1}}},
    {"ok", {{P_OK, -1}, {P_OK, -1}, {P_OK, -1}, {P_OK, -1}, {P_OK, -1}}},
    {"look", /* single_word: not inside a word */
     {{P_META, B('l'), P_O, P_OK, -1}, {P_META, B('l'), P_O, P_OK, -1}, {P_META, B('l'), P_O, P_OK, -1},
      {B('l'), P_O, P_OK, -1}, {B('l'), P_O, P_OK, -1}}},
    {"ok!", {{P_OK, P_META, B('!'), -1}, {P_OK, B('!'), -1}, {P_OK, P_META, B('!'), -1}, {P_OK, B('!'), -1}, {P_OK, B('!'), -1}}},
    {"ok ok", {{P_OK, P_MM, P_OK, -1}, {P_OK, P_META, P_OK, -1}, {P_OK, P_META, P_OK, -1}, {P_OK, P_META, P_OK, -1},
               {P_OK, P_META, P_OK, -1}}},
    {"zz", {{P_ZZ, -1}, {P_ZZ, -1}, {P_ZZ, -1}, {P_ZZ, -1}, {P_ZZ, -1}}},
    {"a zz", /* normalized: matched as its normalized form ("▁zz" under Prepend) */
     {{P_MA, P_ZZ, -1}, {P_MA, P_META, P_ZZ, -1}, {P_MA, P_META, P_ZZ, -1}, {P_A, P_META, P_ZZ, -1},
      {P_A, P_META, P_ZZ, -1}}},
    {"azz", {{P_MA, P_ZZ, -1}, {P_MA, P_ZZ, -1}, {P_MA, P_ZZ, -1}, {P_A, P_ZZ, -1}, {P_A, P_ZZ, -1}}},
    {META "abc", {{P_META, P_MABC, -1}, {P_MABC, -1}, {P_MABC, -1}, {P_MABC, -1}, {P_MABC, -1}}},
    {"  ", {{P_MM, P_META, -1}, {P_MM, -1}, {P_META, P_META, -1}, {P_MM, -1}, {P_MM, -1}}},
    {" <x> a", {{P_MM, P_X, P_META, P_MA, -1}, {P_META, P_X, P_MA, -1}, {P_META, P_X, P_MA, -1}, {P_META, P_X, P_MA, -1},
                {P_META, P_X, P_MA, -1}}},
    {"x y", {{P_META, B('x'), P_META, B('y'), -1}, {P_META, B('x'), P_META, B('y'), -1},
             {P_META, B('x'), P_META, B('y'), -1}, {B('x'), P_META, B('y'), -1}, {B('x'), P_META, B('y'), -1}}},
};

/* Length of an id list ended by -1 (or by its capacity). */
static int want_len(const int32_t *w, int cap)
{
    int n = 0;
    while (n < cap && w[n] >= 0) n++;
    return n;
}

static void test_hf_spm_variants(void **state)
{
    (void)state;
    static const char *const desc[] = {
        "SentencePiece-style BPE, space prefix, byte fallback (277 tokens, 11 merges)",
        "SentencePiece-style BPE, Metaspace first, byte fallback (277 tokens, 11 merges)",
        "SentencePiece-style BPE, Metaspace always, byte fallback (277 tokens, 11 merges)",
        "SentencePiece-style BPE, Metaspace never, byte fallback (277 tokens, 11 merges)",
        "SentencePiece-style BPE, no space prefix, byte fallback (277 tokens, 11 merges)",
    };
    for (int v = 0; v < V_COUNT; v++) {
        char *json = spm_json((spm_variant)v);
        hf_dir d;
        qb_tokenizer *t = load_json_tok(json, NULL, &d);
        free(json);
        print_message("  variant %s\n", variant_name[v]);
        assert_int_equal(qb_tokenizer_kind(t), QB_TOK_SPM);
        assert_string_equal(qb_tokenizer_describe(t), desc[v]);
        assert_int_equal(qb_tokenizer_bos(t), 1); /* by name: no config, no template */
        assert_int_equal(qb_tokenizer_eos(t), 2);
        int bad = 0;
        for (size_t i = 0; i < sizeof spm_cases / sizeof *spm_cases; i++) {
            const spm_case *c = &spm_cases[i];
            bad += !check_ids(t, c->text, strlen(c->text), false, c->want[v], want_len(c->want[v], MAXI));
        }
        /* special tokens matched on request; the stretch after one: prefix or not */
        static const int32_t sp[V_COUNT][2] = {{1, P_MABC}, {1, P_ABC}, {1, P_MABC}, {1, P_ABC}, {1, P_ABC}};
        bad += !check_special(t, "<s>abc", sp[v], 2);
        /* byte tokens and pieces decode to bytes and spaces */
        bad += !round_trip(t, "ab c\xc3\xa9 x\ty", 10);
        assert_int_equal(bad, 0);
        qb_tokenizer_free(t);
        hf_dir_remove(&d);
    }
}

/* Decoding: the dummy prefix goes after BOS only where one was added. */
static void test_hf_spm_decode(void **state)
{
    (void)state;
    static const int32_t ids[] = {1, P_MABC, P_X, B(0xC3), B(0xA9), 2};
    static const char *const want[V_COUNT] = {"abc<x>\xc3\xa9", "abc<x>\xc3\xa9", "abc<x>\xc3\xa9", " abc<x>\xc3\xa9",
                                              " abc<x>\xc3\xa9"};
    for (int v = 0; v < V_COUNT; v++) {
        char *json = spm_json((spm_variant)v);
        hf_dir d;
        qb_tokenizer *t = load_json_tok(json, "{\"add_bos_token\": true}", &d);
        free(json);
        assert_true(qb_tokenizer_add_bos(t));
        char *s = qb_detokenize(t, ids, 6);
        assert_string_equal(s, want[v]);
        free(s);
        qb_tokenizer_free(t);
        hf_dir_remove(&d);
    }
}

/* ---- byte-level BPE with NFC (Qwen2) ------------------------------------------------------- */

static void test_hf_qwen_nfc(void **state)
{
    (void)state;
    char *json = qwen_json();
    hf_dir d;
    qb_tokenizer *t = load_json_tok(json, NULL, &d);
    free(json);
    assert_int_equal(qb_tokenizer_kind(t), QB_TOK_BPE);
    assert_string_equal(qb_tokenizer_describe(t), "byte-level BPE, pre-tokenizer qwen2, NFC (264 tokens, 5 merges)");
    assert_int_equal(qb_tokenizer_bos(t), -1);
    assert_int_equal(qb_tokenizer_eos(t), 261);
    static const struct {
        const char *text;
        int32_t want[16];
    } cases[] = {
        {"\xc3\xa9", {256, -1}},
        {"e\xcc\x81", {256, -1}}, /* e + combining acute: NFC makes it é */
        {"ab \xc3\xa9", {257, ' ', 256, -1}},
        {"Cafe\xcc\x81 ab", {'C', 'a', 'f', 256, ' ', 257, -1}},
        {"x<|endoftext|>y", {'x', '<', '|', 'e', 'n', 'd', 'o', 'f', 't', 'e', 'x', 't', '|', '>', 'y', -1}},
        {"<tool>ab", {263, 257, -1}},
        {"12345", {'1', '2', '3', '4', '5', -1}},
        {"a\xcc\x8a", {260, -1}},
        {"\xe1\xb8\x8b\xcc\xa3", {0xE1, 0xB8, 0x8D, 0xCC, 0x87, -1}}, /* ḋ + dot below: ḍ + dot above */
        {"it's AB ab", {'i', 't', '\'', 's', ' ', 'A', 'B', ' ', 257, -1}},
        {"e\xcc\x81<tool>\xcc\x81", {256, 263, 0xCC, 0x81, -1}}, /* NFC runs between added tokens */
        {"\xff" "e\xcc\x81", {0xFF, 256, -1}},                     /* invalid UTF-8 left as it is */
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        bad += !check_ids(t, cases[i].text, strlen(cases[i].text), false, cases[i].want, want_len(cases[i].want, 16));
    static const int32_t sp[] = {'x', 261, 'y'}, sp2[] = {257, 262, ' ', 257};
    bad += !check_special(t, "x<|endoftext|>y", sp, 3);
    bad += !check_special(t, "ab<|im_start|> ab", sp2, 4);
    assert_int_equal(bad, 0);
    qb_tokenizer_free(t);
    hf_dir_remove(&d);
}

/* ---- GGUF export of a tokenizer.json SentencePiece-style tokenizer ----------------------- */

static void test_hf_spm_export(void **state)
{
    (void)state;
    for (int v = 0; v < V_COUNT; v += V_GEMMA) { /* legacy (space prefix) and Gemma (none) */
        char *json = spm_json((spm_variant)v);
        hf_dir d;
        qb_tokenizer *t = load_json_tok(json, NULL, &d);
        free(json);
        qb_ctx ctx;
        qb_ctx_init(&ctx);
        qb_gguf_writer *w = qb_gguf_writer_new();
        assert_int_equal(qb_tokenizer_export_gguf(&ctx, t, w), QB_OK);
        void *buf;
        size_t len;
        assert_int_equal(qb_gguf_write_memory(&ctx, w, &buf, &len), QB_OK);
        qb_gguf_writer_free(w);
        qb_gguf *g;
        assert_int_equal(qb_gguf_open_memory(&ctx, "export.gguf", buf, len, &g), QB_OK);
        assert_string_equal(qb_gguf_get_str(g, "tokenizer.ggml.model"), "llama");
        assert_int_equal(qb_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", v != V_GEMMA), v != V_GEMMA);
        /* a piece scores minus the rank of the first merge that makes it */
        const qb_gguf_kv *sc = qb_gguf_find(g, "tokenizer.ggml.scores");
        assert_non_null(sc);
        assert_true(qb_gguf_arr_float(sc, P_MA) == 0.0 && qb_gguf_arr_float(sc, P_AB) == -1.0);
        assert_true(qb_gguf_arr_float(sc, P_ABC) == -4.0 && qb_gguf_arr_float(sc, P_MABC) == -5.0);
        assert_true(qb_gguf_arr_float(sc, P_A) < -10.0); /* below every merge */
        qb_tokenizer *back;
        assert_int_equal(qb_tokenizer_from_gguf(&ctx, g, &back), QB_OK);
        qb_gguf_close(g);
        free(buf);
        /* llama.cpp's algorithm on the exported scores: the same ids here */
        static const char *const texts[] = {"abc abc", "cab x", "a<x>b", " ab  c"};
        for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
            int32_t *a, *b;
            int na, nb;
            assert_int_equal(qb_tokenize(&ctx, t, texts[i], strlen(texts[i]), false, &a, &na), QB_OK);
            assert_int_equal(qb_tokenize(&ctx, back, texts[i], strlen(texts[i]), false, &b, &nb), QB_OK);
            if (!ids_equal(a, na, b, nb)) {
                print_ids("tokenizer.json", a, na);
                print_ids("exported GGUF ", b, nb);
                fail_msg("\"%s\" differs after export", texts[i]);
            }
            free(a);
            free(b);
        }
        qb_tokenizer_free(back);
        qb_tokenizer_free(t);
        hf_dir_remove(&d);
    }
}

/* ---- bad input ----------------------------------------------------------------------------- */

/* Replace the first occurrence of from in json by to; returns a malloc'd string. */
static char *edit(const char *json, const char *from, const char *to)
{
    const char *p = strstr(json, from);
    if (!p) fail_msg("'%s' not in the JSON", from);
    size_t a = (size_t)(p - json), nf = strlen(from), nt = strlen(to), n = strlen(json);
    char *r = malloc(n - nf + nt + 1);
    memcpy(r, json, a);
    memcpy(r + a, to, nt);
    memcpy(r + a + nt, p + nf, n - a - nf + 1);
    return r;
}

static void expect_error(const char *json, qb_status want, const char *needle)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    hf_dir d;
    hf_dir_make(&d, json, NULL);
    qb_tokenizer *t = (qb_tokenizer *)&ctx;
    qb_status st = qb_tokenizer_from_hf(&ctx, d.json, &t);
    if (st != want) fail_msg("status %d, wanted %d (%s) for needle '%s'", st, want, qb_ctx_errmsg(&ctx), needle);
    assert_null(t);
    assert_msg_has(&ctx, d.json);
    assert_msg_has(&ctx, needle);
    assert_null(strchr(qb_ctx_errmsg(&ctx), '\n')); /* one line */
    hf_dir_remove(&d);
}

static void test_bad_hf_shapes(void **state)
{
    (void)state;
    char *legacy = spm_json(V_LEGACY), *meta = spm_json(V_META_FIRST), *gemma = spm_json(V_GEMMA);
    char *qwen = qwen_json();
    static const struct {
        int base; /* 0 legacy, 1 meta, 2 gemma, 3 qwen */
        const char *from, *to;
        qb_status st;
        const char *needle;
    } cases[] = {
        {0, "\"prepend\":\"" META "\"", "\"prepend\":7", QB_ERR_FORMAT, "Prepend normalizer without a prepend"},
        {0, "\"prepend\":\"" META "\"", "\"prepend\":\"_\"", QB_ERR_UNSUPPORTED, "Prepend normalizer of '_'"},
        {0, "\"content\":\"" META "\"", "\"content\":\"_\"", QB_ERR_UNSUPPORTED, "Replace normalizer is supported only"},
        {0, "\"pattern\":{\"String\":\" \"}", "\"pattern\":3", QB_ERR_FORMAT, "Replace normalizer without a pattern"},
        {0, "\"type\":\"Sequence\"", "\"type\":\"Lowercase\"", QB_ERR_UNSUPPORTED, "normalizer 'Lowercase'"},
        {0, "\"byte_fallback\":true", "\"byte_fallback\":\"yes\"", QB_ERR_FORMAT, "model.byte_fallback is not true or false"},
        {0, "\"fuse_unk\":true", "\"fuse_unk\":1", QB_ERR_FORMAT, "model.fuse_unk"},
        {0, "\"dropout\":null", "\"dropout\":0.1", QB_ERR_UNSUPPORTED, "dropout"},
        {0, "\"dropout\":null", "\"dropout\":\"x\"", QB_ERR_FORMAT, "model.dropout is not a number"},
        {0, "\"normalized\":true", "\"normalized\":\"no\"", QB_ERR_FORMAT, "added_tokens[6].normalized"},
        {0, "\"pre_tokenizer\":null", "\"pre_tokenizer\":{\"type\":\"ByteLevel\"}", QB_ERR_UNSUPPORTED, "ByteLevel"},
        {0, "\"pre_tokenizer\":null", "\"pre_tokenizer\":{\"type\":\"Whitespace\"}", QB_ERR_UNSUPPORTED,
         "pre-tokenizer 'Whitespace'"},
        {1, "\"prepend_scheme\":\"first\"", "\"prepend_scheme\":\"sometimes\"", QB_ERR_FORMAT, "prepend_scheme"},
        {1, "\"replacement\":\"" META "\"", "\"replacement\":\"_\"", QB_ERR_UNSUPPORTED, "Metaspace replacement '_'"},
        {1, "\"replacement\":\"" META "\"", "\"replacement\":5", QB_ERR_FORMAT, "Metaspace pre-tokenizer without a replacement"},
        {1, "\"split\":false", "\"split\":\"no\"", QB_ERR_FORMAT, "Metaspace split"},
        {2, "\"String\":\" \"},\"behavior\"", "\"String\":\"x\"},\"behavior\"", QB_ERR_UNSUPPORTED,
         "Split pre-tokenizer on a SentencePiece-style"},
        {2, "\"normalizer\":{", "\"normalizer\":null,\"x\":{", QB_ERR_UNSUPPORTED, "neither a ByteLevel"},
        {3, "\"type\":\"NFC\"", "\"type\":\"NFD\"", QB_ERR_UNSUPPORTED, "normalizer 'NFD'"},
        {3, "\"normalizer\":{\"type\":\"NFC\"}", "\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},"
         "\"content\":\"" META "\"}", QB_ERR_UNSUPPORTED, "ByteLevel pre-tokenizer with"},
        {3, "\"behavior\":\"Isolated\"", "\"behavior\":\"Removed\"", QB_ERR_UNSUPPORTED, "behavior 'Removed'"},
    };
    const char *base[] = {legacy, meta, gemma, qwen};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *j = edit(base[cases[i].base], cases[i].from, cases[i].to);
        expect_error(j, cases[i].st, cases[i].needle);
        free(j);
    }
    free(legacy);
    free(meta);
    free(gemma);
    free(qwen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hf_spm_variants),
        cmocka_unit_test(test_hf_spm_decode),
        cmocka_unit_test(test_hf_qwen_nfc),
        cmocka_unit_test(test_hf_spm_export),
        cmocka_unit_test(test_bad_hf_shapes),
        cmocka_unit_test(test_hf_spm_llama2_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
