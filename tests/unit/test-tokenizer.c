/* test-tokenizer.c — the tokenizers against ids other programs computed.
 *
 * Groups:
 *  - SPM: llama2.c tokenizer.bin (stories260K's tok512.bin: run.c's ids for the README
 *    prompt; the 32000-token Llama 2 tokenizer.bin against the same vocabulary as a GGUF),
 *    GGUF "llama" vocab against llama.cpp's test vectors (tokenizer-vectors: .inp strings, .out ids);
 *  - BPE: GGUF "gpt2" vocab against llama.cpp's GPT-2 vectors; qb-docs-26m's tokenizer
 *    through its GGUF and through its Hugging Face tokenizer.json against transformers' ids
 *    (fixtures/tokenizer-cases.json); speed on eval-docs.txt; several threads at once;
 *  - decoding and round trips;
 *  - bad input: every error names the file and the problem, nothing leaks or crashes. */
#include "tok_testutil.h"

#include "core/util/gguf.h"
#include "core/qb.h"
#include "core/tokenizer/tokenizer.h"

#include <jansson.h>
#include <omp.h>
#include <time.h>

/* ---- helpers ----------------------------------------------------------------------------- */

static qb_tokenizer *load_gguf_tok(const char *rel)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_gguf *g;
    if (qb_gguf_open(&ctx, qbt_model_path(rel), &g) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    qb_tokenizer *t;
    qb_status st = qb_tokenizer_from_gguf(&ctx, g, &t);
    qb_gguf_close(g); /* the tokenizer must not borrow from the file */
    if (st != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    return t;
}

static qb_tokenizer *load_llama2c_tok(const char *rel, int vocab)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_tokenizer *t;
    if (qb_tokenizer_from_llama2c(&ctx, qbt_model_path(rel), vocab, &t) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    return t;
}

static qb_tokenizer *load_hf_tok(void)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_tokenizer *t;
    if (qb_tokenizer_from_hf(&ctx, qbt_model_path("qb-docs-26m/hf/tokenizer.json"), &t) != QB_OK)
        fail_msg("%s", qb_ctx_errmsg(&ctx));
    return t;
}

static void run_vectors(const qb_tokenizer *t, const char *rel)
{
    vectors v;
    vectors_load(&v, rel);
    int bad = 0, bad_rt = 0;
    for (int i = 0; i < v.n; i++) {
        bad += !check_ids(t, v.str[i], v.len[i], false, v.ids[i], v.n_ids[i]);
        bad_rt += !round_trip(t, v.str[i], v.len[i]);
    }
    vectors_free(&v);
    assert_int_equal(bad, 0);
    assert_int_equal(bad_rt, 0);
}

/* ---- SPM ---------------------------------------------------------------------------------- */

static void test_llama2c_stories260k(void **state)
{
    (void)state;
    qb_tokenizer *t = load_llama2c_tok("stories260K/tok512.bin", 512);
    assert_int_equal(qb_tokenizer_kind(t), QB_TOK_SPM);
    assert_int_equal(qb_tokenizer_vocab_size(t), 512);
    assert_string_equal(qb_tokenizer_describe(t), "SentencePiece-style (512 tokens)");
    assert_int_equal(qb_tokenizer_bos(t), 1);
    assert_int_equal(qb_tokenizer_eos(t), 2);
    assert_true(qb_tokenizer_add_bos(t));
    static const int32_t want[] = {1, 403, 407, 261, 378}; /* stories260K/README.md */
    const char *s = "Once upon a time";
    assert_true(check_ids(t, s, strlen(s), true, want, 5));
    assert_true(check_ids(t, s, strlen(s), false, want + 1, 4));
    assert_true(check_ids(t, "", 0, true, want, 1)); /* empty text: no dummy prefix */
    assert_true(check_ids(t, "", 0, false, NULL, 0));
    assert_true(round_trip(t, s, strlen(s)));
    /* a character outside the 512-token vocabulary falls back to its bytes (+3) */
    static const int32_t snow[] = {1, 0xE2 + 3, 0x98 + 3, 0x83 + 3};
    int32_t *ids;
    int n;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    assert_int_equal(qb_tokenize(&ctx, t, "\xe2\x98\x83", 3, true, &ids, &n), QB_OK);
    assert_true(n == 5 && ids[0] == 1 && ids[2] == snow[1] && ids[3] == snow[2] && ids[4] == snow[3]);
    free(ids);
    assert_true(round_trip(t, "snow \xe2\x98\x83 man\n", 13));
    qb_tokenizer_free(t);
}

/* The same model's vocabulary as llama.cpp converted it: same ids on the README prompt. */
static void test_gguf_stories260k(void **state)
{
    (void)state;
    qb_tokenizer *t = load_gguf_tok("stories260K/stories260K-f32.gguf");
    static const int32_t want[] = {1, 403, 407, 261, 378};
    const char *s = "Once upon a time";
    assert_true(check_ids(t, s, strlen(s), true, want, 5));
    assert_true(round_trip(t, s, strlen(s)));
    qb_tokenizer_free(t);
}

static void test_spm_gguf_vectors(void **state)
{
    (void)state;
    qb_tokenizer *t = load_gguf_tok("tokenizer-vectors/ggml-vocab-llama-spm.gguf");
    assert_int_equal(qb_tokenizer_kind(t), QB_TOK_SPM);
    assert_int_equal(qb_tokenizer_vocab_size(t), 32000);
    assert_string_equal(qb_tokenizer_describe(t), "SentencePiece-style (32000 tokens)");
    assert_int_equal(qb_tokenizer_bos(t), 1);
    assert_int_equal(qb_tokenizer_eos(t), 2);
    assert_true(qb_tokenizer_add_bos(t));
    run_vectors(t, "tokenizer-vectors/ggml-vocab-llama-spm.gguf");
    /* the spelled-out edge cases */
    static const int32_t sp1[] = {259}, nl[] = {29871, 13};
    assert_true(check_ids(t, "", 0, false, NULL, 0));
    assert_true(check_ids(t, " ", 1, false, sp1, 1));        /* "▁▁" */
    assert_true(check_ids(t, "\n", 1, false, nl, 2));        /* "▁" then <0x0A> */
    static const int32_t bos_only[] = {1};
    assert_true(check_ids(t, "", 0, true, bos_only, 1));
    qb_tokenizer_free(t);
}

/* Two files, one vocabulary: llama2.c's tokenizer.bin (run.c's algorithm) and the GGUF (llama.cpp's)
 * must agree on every test string. The algorithms differ only where no test string goes: run.c
 * looks up byte-fallback tokens *before* merging (llama.cpp after), groups invalid UTF-8
 * differently, and, since tokenizer.bin stores '▁' as ' ', a literal U+2581 in the text is a
 * space to llama.cpp but three byte tokens to run.c (checked below). */
static void test_spm_llama2c_vs_gguf(void **state)
{
    (void)state;
    qb_tokenizer *bin = load_llama2c_tok("llama2-tokenizer/tokenizer.bin", 32000);
    qb_tokenizer *gg = load_gguf_tok("tokenizer-vectors/ggml-vocab-llama-spm.gguf");
    assert_string_equal(qb_tokenizer_describe(bin), "SentencePiece-style (32000 tokens)");
    vectors v;
    vectors_load(&v, "tokenizer-vectors/ggml-vocab-llama-spm.gguf");
    int bad = 0;
    for (int i = 0; i < v.n; i++) {
        bad += !check_ids(bin, v.str[i], v.len[i], false, v.ids[i], v.n_ids[i]);
        bad += !round_trip(bin, v.str[i], v.len[i]);
    }
    vectors_free(&v);
    assert_int_equal(bad, 0);
    /* ordinary prose, token for token, with BOS: 64 KB of eval-docs.txt */
    size_t plen;
    char *prose = qbt_slurp(qbt_data_path("eval-docs.txt"), &plen);
    if (plen > 65536) plen = 65536;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int32_t *a, *b;
    int na, nb;
    assert_int_equal(qb_tokenize(&ctx, bin, prose, plen, true, &a, &na), QB_OK);
    assert_int_equal(qb_tokenize(&ctx, gg, prose, plen, true, &b, &nb), QB_OK);
    assert_true(na > 10000);
    assert_true(ids_equal(a, na, b, nb));
    free(a);
    free(b);
    free(prose);
    /* the documented difference: a literal '▁' */
    assert_int_equal(qb_tokenize(&ctx, gg, "a\xe2\x96\x81" "b", 5, false, &a, &na), QB_OK);
    assert_int_equal(qb_tokenize(&ctx, bin, "a\xe2\x96\x81" "b", 5, false, &b, &nb), QB_OK);
    int32_t want_gg[8];
    int n_gg;
    int32_t *tmp;
    assert_int_equal(qb_tokenize(&ctx, gg, "a b", 3, false, &tmp, &n_gg), QB_OK);
    memcpy(want_gg, tmp, sizeof *tmp * (size_t)n_gg);
    free(tmp);
    assert_true(ids_equal(a, na, want_gg, n_gg)); /* llama.cpp: same as "a b" */
    bool has_bytes = false;
    for (int i = 0; i < nb; i++) has_bytes |= b[i] == 0xE2 + 3;
    assert_true(has_bytes); /* run.c: <0xE2> <0x96> <0x81> */
    free(a);
    free(b);
    qb_tokenizer_free(bin);
    qb_tokenizer_free(gg);
}

/* ---- BPE ---------------------------------------------------------------------------------- */

static void test_bpe_gpt2_vectors(void **state)
{
    (void)state;
    qb_tokenizer *t = load_gguf_tok("tokenizer-vectors/ggml-vocab-gpt-2.gguf");
    assert_int_equal(qb_tokenizer_kind(t), QB_TOK_BPE);
    assert_int_equal(qb_tokenizer_vocab_size(t), 50257);
    assert_string_equal(qb_tokenizer_describe(t), "byte-level BPE, pre-tokenizer gpt-2 (50257 tokens, 50000 merges)");
    assert_int_equal(qb_tokenizer_bos(t), 50256);
    assert_int_equal(qb_tokenizer_eos(t), 50256);
    assert_false(qb_tokenizer_add_bos(t));
    run_vectors(t, "tokenizer-vectors/ggml-vocab-gpt-2.gguf");
    qb_tokenizer_free(t);
}

/* tokenizer-cases.json: [{"text", "ids", "ids_with_bos"}] */
static json_t *load_cases(void)
{
    json_error_t err;
    json_t *cases = json_load_file(qbt_model_path("qb-docs-26m/fixtures/tokenizer-cases.json"), 0, &err);
    if (!cases) fail_msg("tokenizer-cases.json: %s", err.text);
    assert_true(json_array_size(cases) >= 15);
    return cases;
}

static int32_t *json_ids(const json_t *a, int *n)
{
    *n = (int)json_array_size(a);
    int32_t *v = malloc(sizeof *v * (size_t)(*n + 1));
    for (int i = 0; i < *n; i++) v[i] = (int32_t)json_integer_value(json_array_get(a, (size_t)i));
    return v;
}

static void run_cases(const qb_tokenizer *t)
{
    json_t *cases = load_cases();
    size_t i;
    json_t *c;
    int bad = 0;
    json_array_foreach(cases, i, c) {
        const json_t *txt = json_object_get(c, "text");
        const char *s = json_string_value(txt);
        size_t len = json_string_length(txt);
        int n, nb;
        int32_t *ids = json_ids(json_object_get(c, "ids"), &n);
        int32_t *idsb = json_ids(json_object_get(c, "ids_with_bos"), &nb);
        bad += !check_ids(t, s, len, false, ids, n);
        bad += !check_ids(t, s, len, true, idsb, nb);
        bad += !round_trip(t, s, len);
        free(ids);
        free(idsb);
    }
    json_decref(cases);
    assert_int_equal(bad, 0);
}

static void check_qbdocs_common(const qb_tokenizer *t)
{
    assert_int_equal(qb_tokenizer_kind(t), QB_TOK_BPE);
    assert_int_equal(qb_tokenizer_vocab_size(t), 8192);
    assert_string_equal(qb_tokenizer_describe(t), "byte-level BPE, pre-tokenizer llama-bpe (8192 tokens, 7934 merges)");
    assert_int_equal(qb_tokenizer_bos(t), 0);
    assert_int_equal(qb_tokenizer_eos(t), 1);
    assert_true(qb_tokenizer_add_bos(t));
}

static void test_bpe_qbdocs_gguf(void **state)
{
    (void)state;
    qb_tokenizer *t = load_gguf_tok("qb-docs-26m/qb-docs-26m-f16.gguf");
    check_qbdocs_common(t);
    run_cases(t);
    qb_tokenizer_free(t);
}

static void test_bpe_qbdocs_hf(void **state)
{
    (void)state;
    qb_tokenizer *t = load_hf_tok();
    check_qbdocs_common(t);
    run_cases(t);
    qb_tokenizer_free(t);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* 490 KB of prose in well under a second, the HF and GGUF paths agreeing, and the round trip exact */
static void test_bpe_eval_docs(void **state)
{
    (void)state;
    size_t len;
    char *text = qbt_slurp(qbt_data_path("eval-docs.txt"), &len);
    qb_tokenizer *hf = load_hf_tok();
    qb_tokenizer *gg = load_gguf_tok("qb-docs-26m/qb-docs-26m-f16.gguf");
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int32_t *a, *b;
    int na, nb;
    double t0 = now_s();
    assert_int_equal(qb_tokenize(&ctx, hf, text, len, true, &a, &na), QB_OK);
    double dt = now_s() - t0;
    print_message("  eval-docs.txt: %zu bytes -> %d tokens in %.3f s\n", len, na, dt);
    assert_true(dt < 1.0);
    assert_true(na > 1000 && na < (int)len);
    assert_int_equal(qb_tokenize(&ctx, gg, text, len, true, &b, &nb), QB_OK);
    assert_true(ids_equal(a, na, b, nb));
    char *back = qb_detokenize(hf, a, na);
    assert_non_null(back);
    assert_int_equal(strlen(back), len);
    assert_memory_equal(back, text, len);
    free(back);
    free(a);
    free(b);
    qb_tokenizer_free(hf);
    qb_tokenizer_free(gg);
    free(text);
}

/* One tokenizer, eight threads, the same answers. */
static void test_threads(void **state)
{
    (void)state;
    size_t len;
    char *text = qbt_slurp(qbt_data_path("eval-docs.txt"), &len);
    if (len > 65536) len = 65536;
    while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80) len--; /* cut at a character */
    qb_tokenizer *toks[2] = {load_hf_tok(), load_gguf_tok("tokenizer-vectors/ggml-vocab-llama-spm.gguf")};
    for (int k = 0; k < 2; k++) {
        qb_ctx ctx;
        qb_ctx_init(&ctx);
        int32_t *ref;
        int nref;
        assert_int_equal(qb_tokenize(&ctx, toks[k], text, len, true, &ref, &nref), QB_OK);
        int bad = 0;
#pragma omp parallel for num_threads(8) reduction(+ : bad)
        for (int i = 0; i < 16; i++) {
            qb_ctx c;
            qb_ctx_init(&c);
            int32_t *ids;
            int n;
            if (qb_tokenize(&c, toks[k], text, len, true, &ids, &n) != QB_OK) {
                bad++;
                continue;
            }
            bad += !ids_equal(ids, n, ref, nref);
            free(ids);
        }
        assert_int_equal(bad, 0);
        free(ref);
        qb_tokenizer_free(toks[k]);
    }
    free(text);
}

/* ---- decoding ----------------------------------------------------------------------------- */

static void test_decode_spm(void **state)
{
    (void)state;
    qb_tokenizer *t = load_gguf_tok("tokenizer-vectors/ggml-vocab-llama-spm.gguf");
    char buf[64];
    int32_t hello = qb_tokenizer_find(t, "\xe2\x96\x81Hello", 8);
    assert_true(hello > 0);
    size_t len;
    assert_string_equal(qb_tokenizer_token_text(t, hello, &len), "\xe2\x96\x81Hello");
    assert_int_equal(len, 8);
    assert_null(qb_tokenizer_token_text(t, 32000, &len));
    /* '▁' becomes ' ', except right after BOS */
    assert_int_equal(qb_token_to_bytes(t, -1, hello, buf, sizeof buf), 6);
    assert_memory_equal(buf, " Hello", 6);
    assert_int_equal(qb_token_to_bytes(t, 1, hello, buf, sizeof buf), 5);
    assert_memory_equal(buf, "Hello", 5);
    /* byte tokens, control tokens, <unk>, ids out of range */
    assert_int_equal(qb_token_to_bytes(t, -1, 13, buf, sizeof buf), 1);
    assert_int_equal(buf[0], '\n');
    assert_int_equal(qb_token_to_bytes(t, -1, 3 + 0xE6, buf, sizeof buf), 1);
    assert_int_equal((unsigned char)buf[0], 0xE6);
    assert_int_equal(qb_token_to_bytes(t, -1, 1, buf, sizeof buf), 0);
    assert_int_equal(qb_token_to_bytes(t, -1, 2, buf, sizeof buf), 0);
    assert_int_equal(qb_token_to_bytes(t, -1, 0, buf, sizeof buf), 0);
    assert_int_equal(qb_token_to_bytes(t, -1, -5, buf, sizeof buf), 0);
    assert_int_equal(qb_token_to_bytes(t, -1, 99999, buf, sizeof buf), 0);
    /* the full length comes back even when cap is short */
    memset(buf, 'x', sizeof buf);
    assert_int_equal(qb_token_to_bytes(t, -1, hello, buf, 3), 6);
    assert_memory_equal(buf, " Hexx", 5);
    /* a whole sequence: BOS, text, EOS */
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int32_t *ids;
    int n;
    const char *s = "Hello world\n日本";
    assert_int_equal(qb_tokenize(&ctx, t, s, strlen(s), true, &ids, &n), QB_OK);
    int32_t *ids2 = malloc(sizeof *ids2 * (size_t)(n + 1));
    memcpy(ids2, ids, sizeof *ids * (size_t)n);
    ids2[n] = 2;
    char *d = qb_detokenize(t, ids2, n + 1);
    assert_string_equal(d, s);
    free(d);
    d = qb_detokenize(t, ids + 1, n - 1); /* without BOS the dummy prefix stays */
    assert_string_equal(d, " Hello world\n日本");
    free(d);
    d = qb_detokenize(t, ids, 0);
    assert_string_equal(d, "");
    free(d);
    free(ids);
    free(ids2);
    qb_tokenizer_free(t);
}

static void test_decode_bpe(void **state)
{
    (void)state;
    qb_tokenizer *t = load_hf_tok();
    char buf[64];
    int32_t sp = qb_tokenizer_find(t, "\xc4\xa0the", 5); /* "Ġthe" */
    assert_true(sp > 1);
    assert_int_equal(qb_token_to_bytes(t, 0, sp, buf, sizeof buf), 4); /* no SPM rule after BOS */
    assert_memory_equal(buf, " the", 4);
    assert_int_equal(qb_token_to_bytes(t, -1, 0, buf, sizeof buf), 0); /* <|begin_of_text|> */
    assert_int_equal(qb_token_to_bytes(t, -1, 1, buf, sizeof buf), 0);
    int32_t nl = qb_tokenizer_find(t, "\xc4\x8a", 2); /* "Ċ" = '\n' */
    assert_int_equal(nl, 200);
    assert_int_equal(qb_token_to_bytes(t, -1, nl, buf, sizeof buf), 1);
    assert_int_equal(buf[0], '\n');
    /* bytes that are not UTF-8 survive the round trip */
    const char raw[] = "a\xff\xfe b\x80 \xe2\x82";
    assert_true(round_trip(t, raw, sizeof raw - 1));
    int32_t eos_text[] = {0, 7823, 1636, 1};
    char *d = qb_detokenize(t, eos_text, 4);
    assert_string_equal(d, "Hello world");
    free(d);
    qb_tokenizer_free(t);
}

/* ---- bad input ---------------------------------------------------------------------------- */

static void test_bad_llama2c(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_tokenizer *t = (qb_tokenizer *)&ctx; /* must be reset to NULL on failure */
    assert_int_equal(qb_tokenizer_from_llama2c(&ctx, "/nonexistent/tok.bin", 512, &t), QB_ERR_IO);
    assert_null(t);
    assert_msg_has(&ctx, "/nonexistent/tok.bin");

    size_t len;
    char *bin = qbt_slurp(qbt_model_path("stories260K/tok512.bin"), &len);
    /* fewer entries than the model's vocabulary */
    assert_int_equal(qb_tokenizer_from_llama2c(&ctx, qbt_model_path("stories260K/tok512.bin"), 600, &t),
                     QB_ERR_FORMAT);
    assert_msg_has(&ctx, "tok512.bin");
    assert_msg_has(&ctx, "512 of the 600");
    /* cut in the middle of a token's text, and inside a record header */
    static const size_t cuts[] = {0, 2, 4, 1000, 1001, 1003, 6226};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char *p = qbt_write_temp("tokbin", bin, cuts[i]);
        assert_int_equal(qb_tokenizer_from_llama2c(&ctx, p, 512, &t), QB_ERR_FORMAT);
        assert_null(t);
        assert_msg_has(&ctx, p);
        assert_msg_has(&ctx, "truncated");
        unlink(p);
        free(p);
    }
    /* a negative text length */
    int32_t neg = -7;
    memcpy(bin + 8, &neg, 4);
    char *p = qbt_write_temp("tokbin", bin, len);
    assert_int_equal(qb_tokenizer_from_llama2c(&ctx, p, 512, &t), QB_ERR_FORMAT);
    assert_msg_has(&ctx, "negative length");
    unlink(p);
    free(p);
    free(bin);
    assert_int_equal(qb_tokenizer_from_llama2c(&ctx, qbt_model_path("stories260K/tok512.bin"), 0, &t), QB_ERR_ARG);
}

static const char *const spm_toks[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81", "a", "b", "\xe2\x96\x81" "a", "ab"};

static void test_bad_gguf(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_tokenizer *t;
    float sc[8] = {0, 0, 0, -1, -2, -3, -4, -5};
    int32_t ty[8] = {2, 3, 3, 1, 1, 1, 1, 1};

    gbuf g = {0};
    kv_str(&g, "tokenizer.ggml.model", "llama");
    assert_int_equal(gguf_tok(&ctx, &g, &t), QB_ERR_FORMAT);
    assert_null(t);
    assert_msg_has(&ctx, "mem.gguf");
    assert_msg_has(&ctx, "tokenizer.ggml.tokens");
    free(g.b);

    /* scores and types of the wrong length */
    memset(&g, 0, sizeof g);
    kv_str(&g, "tokenizer.ggml.model", "llama");
    kv_arr_str(&g, "tokenizer.ggml.tokens", spm_toks, 8);
    kv_arr_num(&g, "tokenizer.ggml.scores", QB_GGUF_FLOAT32, sc, 7);
    assert_int_equal(gguf_tok(&ctx, &g, &t), QB_ERR_FORMAT);
    assert_msg_has(&ctx, "tokenizer.ggml.scores has 7 entries");
    free(g.b);
    memset(&g, 0, sizeof g);
    kv_str(&g, "tokenizer.ggml.model", "llama");
    kv_arr_str(&g, "tokenizer.ggml.tokens", spm_toks, 8);
    kv_arr_num(&g, "tokenizer.ggml.scores", QB_GGUF_FLOAT32, sc, 8);
    kv_arr_num(&g, "tokenizer.ggml.token_type", QB_GGUF_INT32, ty, 5);
    assert_int_equal(gguf_tok(&ctx, &g, &t), QB_ERR_FORMAT);
    assert_msg_has(&ctx, "tokenizer.ggml.token_type has 5 entries");
    free(g.b);

    /* tokens that are not strings; unknown model; no model; gpt2 without merges */
    memset(&g, 0, sizeof g);
    kv_str(&g, "tokenizer.ggml.model", "llama");
    kv_arr_num(&g, "tokenizer.ggml.tokens", QB_GGUF_INT32, ty, 8);
    assert_int_equal(gguf_tok(&ctx, &g, &t), QB_ERR_FORMAT);
    assert_msg_has(&ctx, "not an array of strings");
    free(g.b);
    memset(&g, 0, sizeof g);
    kv_str(&g, "tokenizer.ggml.model", "bert");
    kv_arr_str(&g, "tokenizer.ggml.tokens", spm_toks, 8);
    assert_int_equal(gguf_tok(&ctx, &g, &t), QB_ERR_UNSUPPORTED);
    assert_msg_has(&ctx, "'bert'");
    free(g.b);
    memset(&g, 0, sizeof g);
    kv_arr_str(&g, "tokenizer.ggml.tokens", spm_toks, 8);
    assert_int_equal(gguf_tok(&ctx, &g, &t), QB_ERR_FORMAT);
    assert_msg_has(&ctx, "no tokenizer.ggml.model");
    free(g.b);
    memset(&g, 0, sizeof g);
    kv_str(&g, "tokenizer.ggml.model", "gpt2");
    kv_arr_str(&g, "tokenizer.ggml.tokens", spm_toks, 8);
    assert_int_equal(gguf_tok(&ctx, &g, &t), QB_ERR_FORMAT);
    assert_msg_has(&ctx, "tokenizer.ggml.merges");
    free(g.b);

    qb_tokenizer_free(t); /* NULL */
}

/* A tiny valid SPM vocabulary without byte tokens: unknown characters become <unk>. */
static void test_gguf_spm_synthetic(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_tokenizer *t;
    float sc[8] = {0, 0, 0, -1, -2, -3, -4, -5};
    int32_t ty[8] = {2, 3, 3, 1, 1, 1, 1, 1};
    gbuf g = {0};
    kv_str(&g, "tokenizer.ggml.model", "llama");
    kv_arr_str(&g, "tokenizer.ggml.tokens", spm_toks, 8);
    kv_arr_num(&g, "tokenizer.ggml.scores", QB_GGUF_FLOAT32, sc, 8);
    kv_arr_num(&g, "tokenizer.ggml.token_type", QB_GGUF_INT32, ty, 8);
    kv_u32(&g, "tokenizer.ggml.bos_token_id", 0xFFFFFFFFu); /* "none" */
    assert_int_equal(gguf_tok(&ctx, &g, &t), QB_OK);
    free(g.b);
    assert_int_equal(qb_tokenizer_bos(t), -1);
    assert_int_equal(qb_tokenizer_eos(t), 2);
    static const int32_t want[] = {6, 7, 0, 6}; /* ▁a ab <unk> ▁a (the best score merges first) */
    assert_true(check_ids(t, "aabz a", 6, false, want, 4));
    int32_t *ids;
    int n;
    assert_int_equal(qb_tokenize(&ctx, t, "a", 1, true, &ids, &n), QB_ERR_ARG); /* no BOS to add */
    assert_msg_has(&ctx, "BOS");
    assert_null(ids);
    qb_tokenizer_free(t);
}

/* A byte-level vocabulary: the 256 byte symbols, then "ab", "abc", "Ġab"; merges that name
 * unknown tokens are skipped, the rest work. */
static void test_gguf_bpe_synthetic(void **state)
{
    (void)state;
    static char sym[256][4];
    const char *toks[260];
    for (int b = 0; b < 256; b++) {
        byte_symbol(b, sym[b]);
        toks[b] = sym[b];
    }
    toks[256] = "ab";
    toks[257] = "abc";
    toks[258] = "\xc4\xa0" "ab";
    toks[259] = "<|end|>";
    int32_t ty[260];
    for (int i = 0; i < 260; i++) ty[i] = 1;
    ty[259] = 3;
    const char *merges[] = {"a b", "zz q", "ab c", "\xc4\xa0 ab", "nospace", "x abc"};
    gbuf g = {0};
    kv_str(&g, "tokenizer.ggml.model", "gpt2");
    kv_str(&g, "tokenizer.ggml.pre", "made-up");
    kv_arr_str(&g, "tokenizer.ggml.tokens", toks, 260);
    kv_arr_num(&g, "tokenizer.ggml.token_type", QB_GGUF_INT32, ty, 260);
    kv_arr_str(&g, "tokenizer.ggml.merges", merges, 6);
    kv_u32(&g, "tokenizer.ggml.eos_token_id", 259);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_tokenizer *t;
    assert_int_equal(gguf_tok(&ctx, &g, &t), QB_OK);
    free(g.b);
    assert_string_equal(qb_tokenizer_describe(t),
                        "byte-level BPE, pre-tokenizer gpt-2 (fallback for unknown 'made-up') (260 tokens, 3 merges)");
    assert_false(qb_tokenizer_add_bos(t));
    assert_int_equal(qb_tokenizer_bos(t), -1);
    /* "abc" | " abzz" (no zz token: the "zz q" merge was skipped) | " abc" (ab+c outranks Ġ+ab) */
    static const int32_t want[] = {257, 258, 'z', 'z', ' ', 257};
    assert_true(check_ids(t, "abc abzz abc", 12, false, want, 6));
    assert_true(round_trip(t, "abc abzz abc\n\x01", 14));
    char buf[8];
    assert_int_equal(qb_token_to_bytes(t, -1, 259, buf, sizeof buf), 0); /* control */
    qb_tokenizer_free(t);
}

static void test_bad_hf(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_tokenizer *t;
    assert_int_equal(qb_tokenizer_from_hf(&ctx, "/nonexistent/tokenizer.json", &t), QB_ERR_IO);
    assert_msg_has(&ctx, "/nonexistent/tokenizer.json");

    hf_dir d;
    hf_dir_make(&d, "{\n  \"model\": {\n    \"type\": \"BPE\",,\n  }\n}\n", NULL);
    assert_int_equal(qb_tokenizer_from_hf(&ctx, d.json, &t), QB_ERR_FORMAT);
    assert_null(t);
    assert_msg_has(&ctx, d.json);
    assert_msg_has(&ctx, "line 3, column");
    hf_dir_remove(&d);

    hf_dir_make(&d, "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}", NULL);
    assert_int_equal(qb_tokenizer_from_hf(&ctx, d.json, &t), QB_ERR_UNSUPPORTED);
    assert_msg_has(&ctx, "'WordPiece'");
    hf_dir_remove(&d);

    hf_dir_make(&d, "[1, 2]", NULL);
    assert_int_equal(qb_tokenizer_from_hf(&ctx, d.json, &t), QB_ERR_FORMAT);
    hf_dir_remove(&d);

    /* a Sequence normalizer without its list; a normalizer we do not run */
    hf_dir_make(&d,
                "{\"normalizer\": {\"type\": \"Sequence\"}, \"pre_tokenizer\": null,"
                " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}",
                NULL);
    assert_int_equal(qb_tokenizer_from_hf(&ctx, d.json, &t), QB_ERR_FORMAT);
    assert_msg_has(&ctx, d.json);
    assert_msg_has(&ctx, "normalizers list");
    hf_dir_remove(&d);
    hf_dir_make(&d,
                "{\"normalizer\": {\"type\": \"NFKC\"}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"},"
                " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}",
                NULL);
    assert_int_equal(qb_tokenizer_from_hf(&ctx, d.json, &t), QB_ERR_UNSUPPORTED);
    assert_msg_has(&ctx, "normalizer 'NFKC'");
    hf_dir_remove(&d);

}

static const char small_json[] =
        "{\"added_tokens\": [{\"id\": 5, \"content\": \"<s>\", \"special\": true}],"
        " \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true},"
        " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"c\": 2, \"ab\": 3, \"abc\": 4},"
        " \"merges\": [\"a b\", [\"ab\", \"c\"], [\"q\", \"a\"], \"b zz\"]}}";

/* A small byte-level tokenizer.json, with and without tokenizer_config.json. */
static void test_hf_small(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_tokenizer *t;
    hf_dir d;
    /* a corrupt tokenizer_config.json beside a good tokenizer.json */
    hf_dir_make(&d, small_json, "{\"add_bos_token\": tru");
    assert_int_equal(qb_tokenizer_from_hf(&ctx, d.json, &t), QB_ERR_FORMAT);
    assert_msg_has(&ctx, "tokenizer_config.json");
    assert_msg_has(&ctx, "line 1");
    hf_dir_remove(&d);

    /* merges naming unknown tokens are skipped; both merge spellings work; BOS by name */
    hf_dir_make(&d, small_json, NULL);
    assert_int_equal(qb_tokenizer_from_hf(&ctx, d.json, &t), QB_OK);
    assert_string_equal(qb_tokenizer_describe(t), "byte-level BPE, pre-tokenizer gpt-2 (6 tokens, 2 merges)");
    assert_int_equal(qb_tokenizer_bos(t), 5);
    assert_false(qb_tokenizer_add_bos(t));
    static const int32_t want[] = {5, 4, 4};
    assert_true(check_ids(t, "abcabc", 6, true, want, 3));
    assert_true(check_ids(t, "abc", 3, true, want, 2));
    static const int32_t want2[] = {4, 0};
    assert_true(check_ids(t, "abca", 4, false, want2, 2));
    qb_tokenizer_free(t);
    hf_dir_remove(&d);

    /* with a config: add_bos_token and a bos_token object */
    hf_dir_make(&d, small_json, "{\"add_bos_token\": true, \"bos_token\": {\"content\": \"<s>\"}, \"eos_token\": \"c\"}");
    assert_int_equal(qb_tokenizer_from_hf(&ctx, d.json, &t), QB_OK);
    assert_true(qb_tokenizer_add_bos(t));
    assert_int_equal(qb_tokenizer_bos(t), 5);
    assert_int_equal(qb_tokenizer_eos(t), 2);
    qb_tokenizer_free(t);
    hf_dir_remove(&d);
}

static void test_bad_hf_model(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_tokenizer *t;
    hf_dir d;
    /* bad merges entries and an unsupported pre-tokenizer */
    hf_dir_make(&d,
                "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\","
                " \"vocab\": {\"a\": 0}, \"merges\": [42]}}",
                NULL);
    assert_int_equal(qb_tokenizer_from_hf(&ctx, d.json, &t), QB_ERR_FORMAT);
    assert_msg_has(&ctx, "merges[0]");
    hf_dir_remove(&d);
    hf_dir_make(&d,
                "{\"pre_tokenizer\": {\"type\": \"Whitespace\"}, \"model\": {\"type\": \"BPE\","
                " \"vocab\": {\"a\": 0}, \"merges\": []}}",
                NULL);
    assert_int_equal(qb_tokenizer_from_hf(&ctx, d.json, &t), QB_ERR_UNSUPPORTED);
    assert_msg_has(&ctx, "'Whitespace'");
    hf_dir_remove(&d);
    hf_dir_make(&d,
                "{\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\","
                " \"pattern\": {\"Regex\": \"(unclosed\"}, \"behavior\": \"Isolated\"}, {\"type\": \"ByteLevel\","
                " \"add_prefix_space\": false, \"use_regex\": false}]}, \"model\": {\"type\": \"BPE\","
                " \"vocab\": {\"a\": 0}, \"merges\": []}}",
                NULL);
    assert_int_equal(qb_tokenizer_from_hf(&ctx, d.json, &t), QB_ERR_FORMAT);
    assert_msg_has(&ctx, "regex");
    hf_dir_remove(&d);
}

/* The HF path without tokenizer_config.json: BOS and add_bos from the post-processor. */
static void test_hf_without_config(void **state)
{
    (void)state;
    size_t len;
    char *json = qbt_slurp(qbt_model_path("qb-docs-26m/hf/tokenizer.json"), &len);
    hf_dir d;
    hf_dir_make(&d, json, NULL);
    free(json);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_tokenizer *t;
    assert_int_equal(qb_tokenizer_from_hf(&ctx, d.json, &t), QB_OK);
    check_qbdocs_common(t);
    qb_tokenizer_free(t);
    hf_dir_remove(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama2c_stories260k),
        cmocka_unit_test(test_gguf_stories260k),
        cmocka_unit_test(test_spm_gguf_vectors),
        cmocka_unit_test(test_spm_llama2c_vs_gguf),
        cmocka_unit_test(test_bpe_gpt2_vectors),
        cmocka_unit_test(test_bpe_qbdocs_gguf),
        cmocka_unit_test(test_bpe_qbdocs_hf),
        cmocka_unit_test(test_bpe_eval_docs),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_decode_spm),
        cmocka_unit_test(test_decode_bpe),
        cmocka_unit_test(test_bad_llama2c),
        cmocka_unit_test(test_bad_gguf),
        cmocka_unit_test(test_gguf_spm_synthetic),
        cmocka_unit_test(test_gguf_bpe_synthetic),
        cmocka_unit_test(test_bad_hf),
        cmocka_unit_test(test_bad_hf_model),
        cmocka_unit_test(test_hf_small),
        cmocka_unit_test(test_hf_without_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
