/* test-arch.c — every architecture against transformers (tests/fixtures/arch/, made by
 * scripts/make-arch-fixtures.py on the device machine): the tokenizer's ids for the prompts and
 * the tokenizer test strings, fp32 logits of every prompt position within 2e-3, and 16 greedy
 * tokens; from the Hugging Face directory, from llama.cpp's GGUF conversion where c392e50 has a
 * converter, and from our own GGUF export of the Hugging Face model (read back). */
#include "testutil.h"
#include "core/model/model.h"
#include "core/infer/infer.h"
#include "core/quant/apply.h"
#include "core/tokenizer/tokenizer.h"
#include "core/eval/eval.h"

#include <jansson.h>
#include <math.h>

/* An architecture's fixture folder. */
static const char *fixture_dir(const char *name)
{
    static char dir[128];
    snprintf(dir, sizeof dir, "tests/fixtures/arch/%.64s", name);
    return dir;
}

/* llama.cpp's conversion: <name>.gguf, or the first part of it split by llama-gguf-split (the
 * fixtures whose file would be over 2 MB); false when c392e50 has no converter. */
static bool llama_cpp_gguf(const char *name, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s.gguf", fixture_dir(name), name);
    if (access(path, R_OK) == 0) return true;
    for (int n = 2; n <= 9; n++) {
        snprintf(path, cap, "%s/%s-00001-of-%05d.gguf", fixture_dir(name), name, n);
        if (access(path, R_OK) == 0) return true;
    }
    return false;
}
#define LOGIT_TOL 2e-3f

typedef struct {
    json_t *ref;
    float *logits; /* every prompt's rows, one after another */
    int vocab;
} fixture;

static void load_fixture(const char *name, fixture *f)
{
    char p[512];
    snprintf(p, sizeof p, "%s/reference.json", fixture_dir(name));
    json_error_t err;
    f->ref = json_load_file(p, 0, &err);
    if (!f->ref) fail_msg("%s: %s", p, err.text);
    f->vocab = (int)json_integer_value(json_object_get(f->ref, "vocab_size"));
    snprintf(p, sizeof p, "%s/logits.f32", fixture_dir(name));
    size_t len;
    f->logits = (float *)qbt_slurp(p, &len);
    size_t rows = 0;
    json_t *pr;
    size_t i;
    json_array_foreach(json_object_get(f->ref, "prompts"), i, pr) rows += (size_t)json_integer_value(json_object_get(pr, "n"));
    assert_int_equal(len, rows * (size_t)f->vocab * sizeof(float));
}

static int ids_of(const json_t *arr, int32_t *out, int cap)
{
    int n = 0;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) if (n < cap) out[n++] = (int32_t)json_integer_value(v);
    return n;
}

/* Logits of every prompt and the greedy continuation of prompt 0, against the fixture. */
static void check_logits(const char *what, const qb_model *m, const fixture *f)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    assert_int_equal(m->cfg.vocab_size, f->vocab);
    const float *ref = f->logits;
    json_t *pr;
    size_t pi;
    float worst = 0;
    json_array_foreach(json_object_get(f->ref, "prompts"), pi, pr) {
        int32_t ids[512];
        int n = ids_of(json_object_get(pr, "ids"), ids, 512);
        qb_infer *s;
        assert_int_equal(qb_infer_new(&ctx, m, 256, 0, &s), QB_OK);
        float *lg = malloc((size_t)n * f->vocab * sizeof(float));
        assert_non_null(lg);
        if (qb_infer_eval(&ctx, s, ids, n, 0, lg, n) != QB_OK) fail_msg("%s: %s", what, qb_ctx_errmsg(&ctx));
        for (size_t i = 0; i < (size_t)n * f->vocab; i++) {
            float d = fabsf(lg[i] - ref[i]);
            if (!(d <= worst)) worst = d;
        }
        ref += (size_t)n * f->vocab;
        free(lg);
        qb_infer_free(s);
    }
    print_message("%s: max |logit - transformers| = %.2e\n", what, (double)worst);
    if (!(worst <= LOGIT_TOL)) fail_msg("%s: logits differ from transformers by %g (tolerance %g)", what, (double)worst,
                                        (double)LOGIT_TOL);
    /* greedy: 16 tokens after prompt 0, one at a time */
    json_t *g = json_object_get(f->ref, "greedy");
    int32_t ids[600], want[64];
    int n = ids_of(json_object_get(json_array_get(json_object_get(f->ref, "prompts"), 0), "ids"), ids, 512);
    int nw = ids_of(json_object_get(g, "ids"), want, 64);
    qb_infer *s;
    assert_int_equal(qb_infer_new(&ctx, m, 256, 0, &s), QB_OK);
    float *lg = malloc((size_t)f->vocab * sizeof(float));
    assert_int_equal(qb_infer_eval(&ctx, s, ids, n, 0, lg, 1), QB_OK);
    for (int k = 0; k < nw; k++) {
        int best = 0;
        for (int v = 1; v < f->vocab; v++)
            if (lg[v] > lg[best]) best = v;
        if (best != want[k]) fail_msg("%s: greedy token %d is %d, transformers %d", what, k, best, want[k]);
        assert_int_equal(qb_infer_eval(&ctx, s, &best, 1, n + k, lg, 1), QB_OK);
    }
    free(lg);
    qb_infer_free(s);
}

/* The tokenizer's ids for the prompts (with the family's BOS) and the test strings (without),
 * against the reference of the path the model came from. From the Hugging Face directory:
 * transformers' ids of the tokenizer.json (reference.json's tokenizer_json_ids where the
 * fixture has them — SentencePiece families, whose "ids" are SentencePiece's own — else
 * "ids"); from a GGUF: llama.cpp's tokenizer on the test strings (llama-tokenize.json, made by
 * scripts/arch-fixture-ppl.sh) where llama.cpp has the architecture, else the same. For a
 * Llama-style SentencePiece vocabulary the three disagree on leading and repeated spaces
 * (SentencePiece folds them, llama.cpp keeps each as "▁"). */
static void check_tokenizer(const char *what, const qb_model *m, const fixture *f, const json_t *llama_ids)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    assert_non_null(m->tok);
    json_t *pr;
    size_t i;
    int bad = 0, total = 0;
    json_array_foreach(json_object_get(f->ref, "prompts"), i, pr) {
        const char *text = json_string_value(json_object_get(pr, "text"));
        int32_t want[512], *got = NULL;
        const json_t *ref_ids = json_object_get(pr, "tokenizer_json_ids");
        int nw = ids_of(!llama_ids && ref_ids ? ref_ids : json_object_get(pr, "ids"), want, 512), ng = 0;
        assert_int_equal(qb_tokenize(&ctx, m->tok, text, strlen(text), qb_tokenizer_add_bos(m->tok), &got, &ng), QB_OK);
        if (ng != nw || memcmp(got, want, (size_t)nw * sizeof *got) != 0)
            fail_msg("%s: prompt %zu tokenizes to %d ids, transformers %d", what, i, ng, nw);
        free(got);
    }
    /* test strings on which the fixture's tokenizer.json and SentencePiece disagree, in a
     * fixture made before tokenizer_json_ids were recorded: no transformers reference here */
    const json_t *differs = json_object_get(f->ref, "tokenizer_json_differs");
    int unknown = 0;
    json_array_foreach(json_object_get(f->ref, "tokenizer_tests"), i, pr) {
        const char *text = json_string_value(json_object_get(pr, "text"));
        int32_t want[1024], *got = NULL;
        const json_t *ref_ids = json_object_get(pr, "tokenizer_json_ids");
        if (!llama_ids && !ref_ids && differs) {
            bool listed = false;
            size_t k;
            json_t *v;
            json_array_foreach(differs, k, v) listed = listed || json_integer_value(v) == (json_int_t)i;
            if (listed) {
                unknown++;
                continue;
            }
        }
        if (llama_ids) ref_ids = json_array_get(llama_ids, i);
        if (!ref_ids) ref_ids = json_object_get(pr, "ids");
        if (!json_is_array(ref_ids)) fail_msg("%s: no reference ids for test string %zu", what, i);
        int nw = ids_of(ref_ids, want, 1024), ng = 0;
        assert_int_equal(qb_tokenize(&ctx, m->tok, text, strlen(text), false, &got, &ng), QB_OK);
        total++;
        if (ng != nw || memcmp(got, want, (size_t)nw * sizeof *got) != 0) {
            if (bad++ < 3) print_error("%s: test string %zu (%.40s) differs: %d ids vs %d\n", what, i, text, ng, nw);
        }
        free(got);
    }
    if (unknown)
        print_message("%s: %d test strings unchecked: tokenizer.json and SentencePiece disagree there and the fixture "
                      "has no transformers ids for them (tokenizer_json_ids)\n", what, unknown);
    if (bad) fail_msg("%s: %d of %d tokenizer test strings differ from %s", what, bad, total,
                      llama_ids ? "llama.cpp" : "transformers");
}

/* Whether llama.cpp's conversion is another model than transformers': c392e50's
 * convert_hf_to_gguf.py computes rope_freqs.weight (llama3 RoPE scaling) with
 * original_max_position_embeddings from the top level of config.json (8192 when absent),
 * transformers from rope_scaling. Real checkpoints say 8192 in rope_scaling and agree; a
 * fixture that scales from a shorter context and lacks the top-level key does not, and its
 * llama.cpp GGUF is then checked against llama.cpp (tokens, perplexity) only. */
static bool converter_rope_differs(const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/config.json", fixture_dir(name));
    json_error_t err;
    json_t *c = json_load_file(p, JSON_DECODE_INT_AS_REAL, &err);
    if (!c) fail_msg("%s: %s", p, err.text);
    const json_t *rs = json_object_get(c, "rope_scaling");
    const char *type = json_string_value(json_object_get(rs, "rope_type"));
    bool differs = false;
    if (type && !strcmp(type, "llama3")) {
        const json_t *top = json_object_get(c, "original_max_position_embeddings");
        double want = json_number_value(json_object_get(rs, "original_max_position_embeddings"));
        differs = (top ? json_number_value(top) : 8192) != want;
    }
    json_decref(c);
    return differs;
}

/* Our perplexity of m against llama-perplexity's on the llama.cpp GGUF (llama-perplexity.json,
 * made by scripts/arch-fixture-ppl.sh with llama.cpp c392e50): within 0.5%. */
static void check_ppl(const char *what, const qb_model *m, const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/llama-perplexity.json", fixture_dir(name));
    json_error_t err;
    json_t *j = json_load_file(p, 0, &err);
    if (!j) fail_msg("%s: %s", p, err.text);
    double want = json_number_value(json_object_get(j, "ppl"));
    int n_ctx = (int)json_integer_value(json_object_get(j, "ctx")), chunks = (int)json_integer_value(json_object_get(j, "chunks"));
    json_decref(j);
    qbt_need(qbt_data_path("eval-docs.txt"));
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int32_t *toks;
    int n;
    if (qb_eval_load_text(&ctx, m, qbt_data_path("eval-docs.txt"), &toks, &n) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    qb_eval_opts o = {.n_ctx = n_ctx, .n_chunks = chunks};
    qb_ppl_result r;
    if (qb_eval_perplexity(&ctx, m, toks, n, &o, &r) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    free(toks);
    double rel = fabs(r.ppl - want) / want;
    print_message("%s: PPL %.4f, llama-perplexity %.4f (%.3f%%)\n", what, r.ppl, want, 100 * rel);
    if (!(rel <= 0.005)) fail_msg("%s: PPL %.4f vs llama-perplexity %.4f: %.2f%% apart (tolerance 0.5%%)", what, r.ppl,
                                  want, 100 * rel);
}

static qb_model *open_or_fail(const char *path)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = NULL;
    if (qb_model_open(&ctx, path, NULL, &m) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    return m;
}

static void run_arch(const char *name)
{
    char dir[512], gguf[512];
    snprintf(dir, sizeof dir, "%s", fixture_dir(name));
    fixture f;
    load_fixture(name, &f);
    char what[600];

    /* llama.cpp's ids of the test strings, where it has the architecture */
    char p[512];
    snprintf(p, sizeof p, "%s/llama-tokenize.json", fixture_dir(name));
    json_error_t jerr;
    json_t *lt = access(p, R_OK) == 0 ? json_load_file(p, 0, &jerr) : NULL;
    if (access(p, R_OK) == 0 && !lt) fail_msg("%s: %s", p, jerr.text);
    const json_t *llama_ids = lt ? json_object_get(lt, "ids") : NULL;

    qb_model *m = open_or_fail(dir);
    snprintf(what, sizeof what, "%s (safetensors)", name);
    check_tokenizer(what, m, &f, NULL);
    check_logits(what, m, &f);

    /* our GGUF export of the Hugging Face model, read back */
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    char *out = qbt_write_temp("arch", "", 0);
    strcat(out, ".gguf");
    if (qb_export_gguf(&ctx, m, out, NULL, NULL) != QB_OK) fail_msg("export: %s", qb_ctx_errmsg(&ctx));
    qb_model *e = open_or_fail(out);
    snprintf(what, sizeof what, "%s (our GGUF)", name);
    check_tokenizer(what, e, &f, llama_ids);
    check_logits(what, e, &f);
    qb_model_close(e);
    unlink(out);
    out[strlen(out) - 5] = 0;
    unlink(out);
    free(out);
    qb_model_close(m);

    /* llama.cpp's conversion, where c392e50 has one */
    if (llama_cpp_gguf(name, gguf, sizeof gguf)) {
        qb_model *g = open_or_fail(gguf);
        snprintf(what, sizeof what, "%s (llama.cpp GGUF)", name);
        check_tokenizer(what, g, &f, llama_ids);
        if (converter_rope_differs(name))
            print_message("%s: logits not compared with transformers: the converter computed rope_freqs.weight from "
                          "another original context (see converter_rope_differs)\n", what);
        else
            check_logits(what, g, &f);
        check_ppl(what, g, name);
        qb_model_close(g);
    }
    json_decref(lt);
    json_decref(f.ref);
    free(f.logits);
}

#define ARCH_TEST(n)                                                                                                   \
    static void test_##n(void **state)                                                                                 \
    {                                                                                                                  \
        (void)state;                                                                                                   \
        run_arch(#n);                                                                                                  \
    }
ARCH_TEST(llama31)
ARCH_TEST(qwen2)
ARCH_TEST(qwen2yarn)
ARCH_TEST(qwen3)
ARCH_TEST(gemma2)
ARCH_TEST(gemma3)
ARCH_TEST(phi3)
ARCH_TEST(mixtral)
ARCH_TEST(qwen3moe)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama31), cmocka_unit_test(test_qwen2),   cmocka_unit_test(test_qwen2yarn), cmocka_unit_test(test_qwen3),
        cmocka_unit_test(test_gemma2),  cmocka_unit_test(test_gemma3),  cmocka_unit_test(test_phi3),
        cmocka_unit_test(test_mixtral), cmocka_unit_test(test_qwen3moe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
