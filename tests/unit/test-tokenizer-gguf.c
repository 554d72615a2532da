/* test-tokenizer-gguf.c — GGUF vocabularies of the newer families, against the ids llama.cpp
 * c392e50's llama_tokenize gives on the same vocabularies (checked with parse_special on and off):
 *  - tokenizer.ggml.pre "qwen2" and the names llama.cpp maps to its type (digits one by one,
 *    add_bos false), user-defined tokens matched in the text, control ones only on request;
 *  - a Gemma-style "llama" vocabulary: add_space_prefix false, byte tokens, user-defined
 *    <start_of_turn>, <end_of_turn> (control, as llama.cpp forces it), decoding without a
 *    dummy prefix to drop. */
#include "tok_testutil.h"

#define META "\xe2\x96\x81" /* U+2581 */

/* A byte-level GGUF vocabulary (byte symbols, then "12", "123", "ab") with the given pre name. */
static qb_tokenizer *bpe_gguf(const char *pre, qb_status *st, qb_ctx *ctx)
{
    const char *toks[262];
    int32_t ty[262];
    for (int b = 0; b < 256; b++) {
        toks[b] = strdup(sym(b));
        ty[b] = 1;
    }
    toks[256] = "12";
    toks[257] = "123";
    toks[258] = "ab";
    toks[259] = "<|endoftext|>";
    toks[260] = "<|im_start|>";
    toks[261] = "<tool>";
    ty[256] = ty[257] = ty[258] = 1;
    ty[259] = ty[260] = 3;
    ty[261] = 4; /* user-defined: matched in plain text */
    const char *merges[] = {"1 2", "12 3", "a b"};
    gbuf g = {0};
    kv_str(&g, "tokenizer.ggml.model", "gpt2");
    if (pre) kv_str(&g, "tokenizer.ggml.pre", pre);
    kv_arr_str(&g, "tokenizer.ggml.tokens", toks, 262);
    kv_arr_num(&g, "tokenizer.ggml.token_type", QB_GGUF_INT32, ty, 262);
    kv_arr_str(&g, "tokenizer.ggml.merges", merges, 3);
    kv_u32(&g, "tokenizer.ggml.eos_token_id", 259);
    qb_tokenizer *t = NULL;
    *st = gguf_tok(ctx, &g, &t);
    free(g.b);
    for (int b = 0; b < 256; b++) free((char *)toks[b]);
    return t;
}

static void test_gguf_qwen2(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_status st;
    static const char *const names[] = {"qwen2", "deepseek-r1-qwen", "megrez", "stablelm2"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        qb_tokenizer *t = bpe_gguf(names[k], &st, &ctx);
        assert_int_equal(st, QB_OK);
        char want_desc[128];
        snprintf(want_desc, sizeof want_desc, "byte-level BPE, pre-tokenizer %s (262 tokens, 3 merges)", names[k]);
        assert_string_equal(qb_tokenizer_describe(t), want_desc);
        assert_false(qb_tokenizer_add_bos(t)); /* llama.cpp's default for these */
        /* Qwen2 splits digits one by one: no "12"/"123" tokens; llama-bpe would take "123" */
        static const int32_t digits[] = {'1', '2', '3', '4', ' ', 258};
        assert_true(check_ids(t, "1234 ab", 7, false, digits, 6));
        /* user-defined tokens are matched in the text, control ones only when asked */
        static const int32_t user[] = {261, 258};
        assert_true(check_ids(t, "<tool>ab", 8, false, user, 2));
        static const int32_t ctl[] = {258, 259, 258};
        assert_true(check_special(t, "ab<|endoftext|>ab", ctl, 3));
        int32_t *ids;
        int n;
        assert_int_equal(qb_tokenize(&ctx, t, "ab<|endoftext|>ab", 17, false, &ids, &n), QB_OK);
        assert_true(n > 3 && ids[1] == '<'); /* plain text */
        free(ids);
        assert_true(round_trip(t, "1234 ab <tool> \xc3\xa9", 17));
        qb_tokenizer_free(t);
    }
    qb_tokenizer *t = bpe_gguf("llama-bpe", &st, &ctx);
    static const int32_t l3[] = {257, '4', ' ', 258};
    assert_true(check_ids(t, "1234 ab", 7, false, l3, 4));
    qb_tokenizer_free(t);
}

/* Gemma as llama.cpp's converter writes it: "llama" model, add_space_prefix false, byte
 * tokens, user-defined <start_of_turn>, control <end_of_turn> (llama.cpp makes it control even
 * when the file says user-defined). */
static qb_tokenizer *gemma_gguf(qb_ctx *ctx, qb_status *st, bool space_prefix_key)
{
    enum { N = 3 + 256 + 8 };
    const char *toks[N];
    float sc[N];
    int32_t ty[N];
    static char bytes[256][8];
    toks[0] = "<pad>";
    toks[1] = "<eos>";
    toks[2] = "<bos>";
    ty[0] = ty[1] = ty[2] = 3;
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
        toks[3 + b] = bytes[b];
        ty[3 + b] = 6;
    }
    static const char *const pieces[] = {"<start_of_turn>", "<end_of_turn>", META, "a", "b", META "a", "ab", META "ab"};
    for (int i = 0; i < 8; i++) {
        toks[259 + i] = pieces[i];
        ty[259 + i] = i < 2 ? 4 : 1;
    }
    for (int i = 0; i < N; i++) sc[i] = i >= 261 ? -(float)(i - 261) : 0.0f;
    gbuf g = {0};
    kv_str(&g, "tokenizer.ggml.model", "llama");
    kv_arr_str(&g, "tokenizer.ggml.tokens", toks, N);
    kv_arr_num(&g, "tokenizer.ggml.scores", QB_GGUF_FLOAT32, sc, N);
    kv_arr_num(&g, "tokenizer.ggml.token_type", QB_GGUF_INT32, ty, N);
    kv_u32(&g, "tokenizer.ggml.bos_token_id", 2);
    kv_u32(&g, "tokenizer.ggml.eos_token_id", 1);
    if (space_prefix_key) kv_bool(&g, "tokenizer.ggml.add_space_prefix", false);
    qb_tokenizer *t = NULL;
    *st = gguf_tok(ctx, &g, &t);
    free(g.b);
    return t;
}

static void test_gguf_gemma(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_status st;
    qb_tokenizer *t = gemma_gguf(&ctx, &st, true);
    assert_int_equal(st, QB_OK);
    assert_string_equal(qb_tokenizer_describe(t), "SentencePiece-style (267 tokens, no space prefix)");
    assert_int_equal(qb_tokenizer_bos(t), 2);
    /* no dummy prefix: "ab" is "ab", " ab" is "▁ab" */
    static const int32_t ab[] = {265}, sab[] = {266}, two[] = {265, 266};
    assert_true(check_ids(t, "ab", 2, false, ab, 1));
    assert_true(check_ids(t, " ab", 3, false, sab, 1));
    assert_true(check_ids(t, "ab ab", 5, false, two, 2));
    /* bytes for what the vocabulary lacks; <start_of_turn> (user-defined) always matched,
     * <end_of_turn> only as a special token, and no space prefix after either */
    static const int32_t turn[] = {259, 265, 3 + 'x', 3 + '<', 3 + 'e'};
    int32_t *ids;
    int n;
    assert_int_equal(qb_tokenize(&ctx, t, "<start_of_turn>abx<end_of_turn>", 31, false, &ids, &n), QB_OK);
    assert_true(n > 5 && ids_equal(ids, 5, turn, 5));
    free(ids);
    static const int32_t turn_sp[] = {259, 265, 3 + 'x', 260, 266};
    assert_true(check_special(t, "<start_of_turn>abx<end_of_turn> ab", turn_sp, 5));
    /* decoding keeps a leading space after BOS (there was no dummy prefix to drop) */
    static const int32_t bos_sab[] = {2, 266};
    char *d = qb_detokenize(t, bos_sab, 2);
    assert_string_equal(d, " ab");
    free(d);
    assert_true(round_trip(t, " ab\n\xc3\xa9 <start_of_turn>", 22));
    qb_tokenizer_free(t);
    /* without the key, llama.cpp's default is a space prefix: "ab" becomes "▁ab" */
    t = gemma_gguf(&ctx, &st, false);
    assert_int_equal(st, QB_OK);
    assert_true(check_ids(t, "ab", 2, false, sab, 1));
    qb_tokenizer_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gguf_qwen2),
        cmocka_unit_test(test_gguf_gemma),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
