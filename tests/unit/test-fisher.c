/* test-fisher.c — the Fisher estimate of the scan (core/eval/fisher.h):
 * - the Fisher diagonal with the text's labels equals PyTorch autograd's on stories260K
 *   (tests/fixtures/train/fisher, made by scripts/make-fisher-fixture.py): every tensor's sum
 *   within 1e-3 relative for both position sets, full diagonals of 8 tensors within 1e-3;
 * - sampled labels: the same seed gives the same diagonal, another seed a close one; the
 *   diagonal does not depend on the thread count;
 * - a deliberately damaged tensor (outliers that wreck its blocks' scales) is ranked first by
 *   the estimate, as the exact scan ranks it; the estimate is on the scale of the measured KLD;
 * - the search takes its costs from the estimate (no forward pass, kld fields NAN);
 * - the refinement measures the top units and keeps the ranking's set;
 * - the streaming pass (block by block, prices instead of F; the blocks' activations kept, or
 *   each block recomputed) gives the in-memory pass's estimates: bit for bit on an untied model (qwen2 fixture: biases), within 1e-5 where the
 *   classifier is tied to the embeddings (stories260K, gemma2: soft-caps, post-norms, scaled
 *   embeddings), with two label draws per chunk; the search from it makes the same plan;
 * - bad input: a text shorter than two chunks, a model the training pass refuses, a streaming
 *   pass with no format to price, a cost asked in a format it did not price. */
#include "testutil.h"
#include "core/eval/fisher.h"
#include "core/eval/search.h"
#include "core/quant/format.h"

#include <jansson.h>
#include <math.h>

static qb_model *open_stories(const char *path)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = NULL;
    qb_model_opts mo = {.tokenizer_path = qbt_model_path("stories260K/tok512.bin")};
    if (qb_model_open(&ctx, path, &mo, &m) != QB_OK)
        fail_msg("%s", qb_ctx_errmsg(&ctx));
    return m;
}

static double rel_diff(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t k = 0; k < n; k++) {
        const double d = (double)a[k] - b[k];
        num += d * d;
        den += (double)b[k] * b[k];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static double tensor_sum(const qb_fisher *f, const qb_tensor *t)
{
    const float *d = qb_fisher_of(f, t);
    assert_non_null(d);
    double s = 0;
    for (int64_t k = 0; k < qb_tensor_nelements(t); k++) s += d[k];
    return s;
}

static void test_matches_pytorch(void **state)
{
    (void)state;
    qbt_need(qbt_model_path("stories260K/stories260K.bin"));
    json_error_t jerr;
    json_t *ix = json_load_file("tests/fixtures/train/fisher/index.json", 0, &jerr);
    if (!ix) fail_msg("tests/fixtures/train/fisher/index.json: %s", jerr.text);
    size_t flen;
    float *ref = (float *)qbt_slurp("tests/fixtures/train/fisher/half.f32", &flen);
    qb_model *m = open_stories(qbt_model_path("stories260K/stories260K.bin"));
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    json_t *jt = json_object_get(ix, "tokens");
    const int T = (int)json_array_size(jt);
    int32_t *tok = malloc((size_t)T * sizeof *tok);
    for (int t = 0; t < T; t++) tok[t] = (int32_t)json_integer_value(json_array_get(jt, (size_t)t));
    const int n_ctx = (int)json_integer_value(json_object_get(ix, "n_ctx"));
    for (int all = 0; all < 2; all++) {
        qb_fisher_opts fo = {.n_ctx = n_ctx, .labels = QB_FISHER_DATA, .all_positions = all};
        qb_fisher *f;
        assert_int_equal(qb_fisher_compute(&ctx, m, tok, T, &fo, &f), QB_OK);
        long pos;
        int chunks;
        qb_fisher_info(f, &pos, &chunks, NULL, NULL);
        assert_int_equal(chunks, T / n_ctx);
        assert_int_equal(pos, chunks * (all ? n_ctx - 1 : n_ctx - 1 - n_ctx / 2));
        json_t *sums = json_object_get(ix, all ? "sum_all" : "sum_half"), *e;
        size_t i;
        double worst = 0;
        json_array_foreach(json_object_get(ix, "tensors"), i, e) {
            const char *name = json_string_value(json_array_get(e, 0));
            const qb_tensor *t = qb_model_find_tensor(m, name);
            assert_non_null(t);
            const double want = json_real_value(json_array_get(sums, i)), got = tensor_sum(f, t);
            worst = fmax(worst, fabs(got - want) / fabs(want));
        }
        print_message("positions %s: per-tensor sums of F within %.2e of PyTorch's\n", all ? "all" : "half", worst);
        assert_true(worst < 1e-3);
        if (!all) {
            size_t off = 0;
            json_array_foreach(json_object_get(ix, "full_half"), i, e) {
                const qb_tensor *t = qb_model_find_tensor(m, json_string_value(e));
                const size_t n = (size_t)qb_tensor_nelements(t);
                assert_true((off + n) * sizeof(float) <= flen);
                const double d = rel_diff(qb_fisher_of(f, t), ref + off, n);
                print_message("  %-26s full diagonal within %.2e\n", t->name, d);
                assert_true(d < 1e-3);
                off += n;
            }
        }
        qb_fisher_free(f);
    }
    free(tok);
    free(ref);
    json_decref(ix);
    qb_model_close(m);
}

static int32_t *text_tokens(const qb_model *m, int *n)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int32_t *tok = NULL;
    if (qb_eval_load_text(&ctx, m, qbt_model_path("stories260K/ppl-sample.txt"), &tok, n) != QB_OK)
        fail_msg("%s", qb_ctx_errmsg(&ctx));
    return tok;
}

static void test_sampled(void **state)
{
    (void)state;
    qbt_need(qbt_model_path("stories260K/stories260K.bin"));
    qb_model *m = open_stories(qbt_model_path("stories260K/stories260K.bin"));
    int n;
    int32_t *tok = text_tokens(m, &n);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_fisher *a, *b, *c;
    qb_fisher_opts fo = {.n_ctx = 64, .seed = 7};
    assert_int_equal(qb_fisher_compute(&ctx, m, tok, n, &fo, &a), QB_OK);
    ctx.n_threads = 1;
    assert_int_equal(qb_fisher_compute(&ctx, m, tok, n, &fo, &b), QB_OK);
    fo.seed = 8;
    ctx.n_threads = 0;
    assert_int_equal(qb_fisher_compute(&ctx, m, tok, n, &fo, &c), QB_OK);
    const qb_tensor *t = qb_model_find_tensor(m, "blk.2.ffn_gate.weight");
    const size_t ne = (size_t)qb_tensor_nelements(t);
    assert_true(rel_diff(qb_fisher_of(a, t), qb_fisher_of(b, t), ne) < 1e-6);
    const double sa = tensor_sum(a, t), sc = tensor_sum(c, t);
    print_message("blk.2.ffn_gate: sum of F %.4g (seed 7), %.4g (seed 8)\n", sa, sc);
    assert_true(sa != sc && fabs(sa - sc) < 0.25 * sa);
    qb_fisher_free(a);
    qb_fisher_free(b);
    qb_fisher_free(c);
    free(tok);
    qb_model_close(m);
}

/* A copy of stories260K.bin with one weight of each 32-wide block of blk.2's ffn_up (llama2.c's
 * w3) made 8 times its block's largest: q4_0's scale then follows the outlier and the block's
 * other weights round to a step of an eighth of it. The caller frees the path and unlinks it. */
static char *damaged_copy(const qb_model *m)
{
    size_t len;
    char *blob = qbt_slurp(qbt_model_path("stories260K/stories260K.bin"), &len);
    const size_t V = (size_t)m->cfg.vocab_size, D = (size_t)m->cfg.dim, H = (size_t)m->cfg.hidden_dim,
                 L = (size_t)m->cfg.n_layers, KV = (size_t)m->cfg.n_kv_heads * (D / (size_t)m->cfg.n_heads);
    const size_t w3 = V * D + L * D + L * D * D + 2 * L * KV * D + L * D * D + L * D + L * H * D + L * D * H;
    float *up = (float *)(blob + 28) + w3 + 2 * H * D;
    assert_true((size_t)((char *)(up + H * D) - blob) <= len);
    for (size_t b = 0; b < H * D / 32; b++) {
        float *x = up + b * 32, mx = 0;
        for (int k = 0; k < 32; k++) mx = fmaxf(mx, fabsf(x[k]));
        x[b % 32] = 8 * mx;
    }
    char *path = qbt_write_temp("fisher-damaged", blob, len);
    free(blob);
    return path;
}

static void test_damaged_ranked_first(void **state)
{
    (void)state;
    qbt_need(qbt_model_path("stories260K/stories260K.bin"));
    qb_model *m0 = open_stories(qbt_model_path("stories260K/stories260K.bin"));
    char *path = damaged_copy(m0);
    qb_model_close(m0);
    qb_model *m = open_stories(path);
    int n;
    int32_t *tok = text_tokens(m, &n);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_fisher *f;
    qb_fisher_opts fo = {.n_ctx = 64};
    assert_int_equal(qb_fisher_compute(&ctx, m, tok, n, &fo, &f), QB_OK);
    qb_format q4;
    assert_int_equal(qb_format_parse(&ctx, "q4_0", &q4), QB_OK);
    qb_scan_opts so = {.n_ctx = 64, .blocks_only = true};
    qb_scan_result est, exact;
    assert_int_equal(qb_scan_estimate_fisher(&ctx, m, &q4, f, &so, &est), QB_OK);
    assert_int_equal(qb_sensitivity_scan(&ctx, m, &q4, tok, n, &so, &exact), QB_OK);
    print_message("damaged blk.2.ffn_up: estimate ranks first %s (%.4g), the scan %s (KLD %.4g)\n", est.rows[0].name,
                  est.rows[0].est_err, exact.rows[0].name, exact.rows[0].kld.kld_mean);
    assert_string_equal(est.rows[0].name, "blk.2.ffn_up.weight");
    assert_string_equal(exact.rows[0].name, "blk.2.ffn_up.weight");
    /* a second-order estimate: the measured KLD within a factor of 4 of it for every unit that
       q4_0 stores (ffn_down's rows of 172 fall back to f16: both ~0); the diagonal misses most
       for the attention's queries (blk.0.attn_q: 0.0086 estimated, 0.026 measured) */
    int n_j;
    double rho, rho_rel;
    qb_scan_join_estimate(&exact, &est, &n_j, &rho, &rho_rel);
    print_message("rho %.3f over %d units\n", rho, n_j);
    assert_int_equal(n_j, est.n_rows);
    assert_true(rho > 0.8);
    for (int i = 0; i < exact.n_rows; i++)
        if (exact.rows[i].kld.kld_mean > 1e-4) {
            assert_true(exact.rows[i].est_err > exact.rows[i].kld.kld_mean / 4 &&
                        exact.rows[i].est_err < exact.rows[i].kld.kld_mean * 4);
        }
    /* the refinement: the top 3 measured, still ranked first */
    assert_int_equal(qb_scan_refine(&ctx, m, &q4, &est, 3, tok, n, &so), QB_OK);
    int refined = 0;
    for (int i = 0; i < est.n_rows; i++) refined += est.rows[i].refined;
    assert_int_equal(refined, 3);
    assert_string_equal(est.rows[0].name, "blk.2.ffn_up.weight");
    assert_true(est.rows[0].refined && est.rows[0].kld.kld_mean > 0);
    int nr;
    assert_true(qb_scan_rank_rho(&exact, &est, &nr) > 0.8);
    assert_int_equal(nr, est.n_rows);
    qb_scan_result_free(&est);
    qb_scan_result_free(&exact);
    qb_fisher_free(f);
    free(tok);
    qb_model_close(m);
    unlink(path);
    free(path);
}

static void test_search_from_estimate(void **state)
{
    (void)state;
    qbt_need(qbt_model_path("stories260K/stories260K.bin"));
    qb_model *m = open_stories(qbt_model_path("stories260K/stories260K.bin"));
    int n;
    int32_t *tok = text_tokens(m, &n);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_fisher *f;
    qb_fisher_opts fo = {.n_ctx = 64};
    assert_int_equal(qb_fisher_compute(&ctx, m, tok, n, &fo, &f), QB_OK);
    qb_format *c;
    int nc;
    assert_int_equal(qb_search_parse_candidates(&ctx, "q4_0,q8_0", &c, &nc), QB_OK);
    qb_search_opts so = {.bpw = 8, .candidates = c, .n_candidates = nc, .n_ctx = 64, .fisher = f};
    qb_search_result r;
    if (qb_search_mixed(&ctx, m, tok, n, &so, &r) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    assert_true(r.bpw <= 8 && r.bpw > 7);
    assert_true(isnan(r.kld) && isnan(r.kld_greedy) && r.n_variants == 0 && r.kld_predicted > 0);
    /* the costliest matrix at q4_0 by the estimate, token_embd, is the first to get q8_0 */
    const qb_format *te = qb_plan_lookup(&r.plan, "token_embd.weight");
    assert_non_null(te);
    char name[32];
    qb_format_name(te, name, sizeof name);
    assert_string_equal(name, "q8_0");
    qb_search_result_free(&r);
    so.rounds = -1; /* the greedy mix measured */
    assert_int_equal(qb_search_mixed(&ctx, m, tok, n, &so, &r), QB_OK);
    assert_true(r.kld_greedy > 0 && r.kld == r.kld_greedy && r.n_variants == 1);
    qb_search_result_free(&r);
    free(c);
    qb_fisher_free(f);
    free(tok);
    qb_model_close(m);
}

/* Units of a and b (same units, any order) with est_err within tol relative; the largest gap. */
static double est_gap(const qb_scan_result *a, const qb_scan_result *b)
{
    assert_int_equal(a->n_rows, b->n_rows);
    double worst = 0;
    for (int i = 0; i < a->n_rows; i++) {
        int j = 0;
        while (j < b->n_rows && strcmp(a->rows[i].name, b->rows[j].name)) j++;
        assert_true(j < b->n_rows);
        assert_int_equal(a->rows[i].bytes, b->rows[j].bytes);
        assert_string_equal(a->rows[i].format, b->rows[j].format);
        const double x = a->rows[i].est_err, y = b->rows[j].est_err, r = fabs(x - y) / fmax(fabs(y), 1e-30);
        assert_true(x > 0);
        if (r > worst) worst = r;
    }
    return worst;
}

static void test_streamed_equals_in_memory(void **state)
{
    (void)state;
    qbt_need(qbt_model_path("stories260K/stories260K.bin"));
    static const char *models[] = {"stories260K", "tests/fixtures/arch/qwen2", "tests/fixtures/arch/gemma2"};
    for (int i = 0; i < 3; i++) {
        qb_model *m = i == 0 ? open_stories(qbt_model_path("stories260K/stories260K.bin")) : NULL;
        qb_ctx ctx;
        qb_ctx_init(&ctx);
        if (!m && qb_model_open(&ctx, models[i], NULL, &m) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
        int n;
        int32_t *tok = text_tokens(m, &n);
        qb_format fs[3];
        assert_int_equal(qb_format_parse(&ctx, "q4_0", &fs[0]), QB_OK);
        assert_int_equal(qb_format_parse(&ctx, "q8_0", &fs[1]), QB_OK);
        assert_int_equal(qb_format_parse(&ctx, "q4_k", &fs[2]), QB_OK); /* falls back on narrow rows */
        qb_fisher *mem, *str, *rec;
        qb_fisher_opts fo = {.n_ctx = 64, .n_tokens = 192, .samples = 2, .stream = QB_FISHER_STREAM_OFF};
        assert_int_equal(qb_fisher_compute(&ctx, m, tok, n, &fo, &mem), QB_OK);
        fo.stream = QB_FISHER_STREAM_ON;
        fo.price = fs;
        fo.n_price = 3;
        if (qb_fisher_compute(&ctx, m, tok, n, &fo, &str) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
        fo.stream = QB_FISHER_STREAM_RECOMPUTE;
        if (qb_fisher_compute(&ctx, m, tok, n, &fo, &rec) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
        fo.stream = QB_FISHER_STREAM_ON;
        assert_false(qb_fisher_streamed(mem));
        assert_true(qb_fisher_streamed(str) && qb_fisher_streamed(rec));
        /* activations of these small models are kept; recompute= runs each block again */
        assert_true(qb_fisher_forwards(mem) == 1 && qb_fisher_forwards(str) == 1 && qb_fisher_forwards(rec) == 2);
        assert_null(qb_fisher_of(str, m->output));
        long pm, ps;
        qb_fisher_info(mem, &pm, NULL, NULL, NULL);
        qb_fisher_info(str, &ps, NULL, NULL, NULL);
        assert_int_equal(pm, ps);
        const bool tied = m->output == m->tok_embd;
        for (int k = 0; k < 3; k++) {
            qb_scan_result a, b, r;
            qb_scan_opts so = {0};
            if (qb_scan_estimate_fisher(&ctx, m, &fs[k], mem, &so, &a) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
            if (qb_scan_estimate_fisher(&ctx, m, &fs[k], str, &so, &b) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
            if (qb_scan_estimate_fisher(&ctx, m, &fs[k], rec, &so, &r) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
            const double gap = est_gap(&a, &b), gap_r = est_gap(&a, &r);
            print_message("%s %s: %d units, largest relative gap %.3g, recomputing %.3g (%s)\n", models[i], a.format,
                          a.n_rows, gap, gap_r, tied ? "tied" : "untied");
            assert_true(tied ? gap < 1e-5 && gap_r < 1e-5 : gap == 0 && gap_r == 0);
            qb_scan_result_free(&a);
            qb_scan_result_free(&b);
            qb_scan_result_free(&r);
        }
        if (i == 0) { /* the search from either: the same plan */
            qb_search_opts so = {.bpw = 7.5, .candidates = fs, .n_candidates = 2, .n_ctx = 64, .fisher = mem};
            qb_search_result ra, rb;
            if (qb_search_mixed(&ctx, m, tok, n, &so, &ra) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
            so.fisher = str;
            if (qb_search_mixed(&ctx, m, tok, n, &so, &rb) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
            assert_true(ra.bpw == rb.bpw && fabs(ra.kld_predicted - rb.kld_predicted) < 1e-5 * ra.kld_predicted);
            for (int t = 0; t < m->n_tensors; t++) {
                const qb_format *x = qb_plan_lookup(&ra.plan, m->tensors[t].name),
                                *y = qb_plan_lookup(&rb.plan, m->tensors[t].name);
                assert_true((x == NULL) == (y == NULL));
                if (x) assert_true(qb_format_equal(x, y));
            }
            qb_search_result_free(&ra);
            qb_search_result_free(&rb);
            /* a format it did not price: refused, by the search's cost and the scan's estimate */
            qb_format q6;
            assert_int_equal(qb_format_parse(&ctx, "q6_k", &q6), QB_OK);
            double cost;
            assert_int_equal(qb_fisher_tensor_cost(&ctx, str, m->output, &q6, NULL, &cost), QB_ERR_ARG);
            assert_non_null(strstr(qb_ctx_errmsg(&ctx), "not priced in q6_k"));
            /* no format to price */
            fo.n_price = 0;
            qb_fisher *none = (qb_fisher *)&ctx;
            assert_int_equal(qb_fisher_compute(&ctx, m, tok, n, &fo, &none), QB_ERR_ARG);
            assert_null(none);
            assert_non_null(strstr(qb_ctx_errmsg(&ctx), "it was given none"));
        }
        qb_fisher_free(mem);
        qb_fisher_free(str);
        qb_fisher_free(rec);
        free(tok);
        qb_model_close(m);
    }
}

static void test_bad_input(void **state)
{
    (void)state;
    qbt_need(qbt_model_path("stories260K/stories260K.bin"));
    qb_model *m = open_stories(qbt_model_path("stories260K/stories260K.bin"));
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int32_t tok[40] = {1, 5, 6, 7};
    qb_fisher *f = (qb_fisher *)&ctx;
    qb_fisher_opts fo = {.n_ctx = 32};
    assert_int_equal(qb_fisher_compute(&ctx, m, tok, 40, &fo, &f), QB_ERR_ARG);
    assert_null(f);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "Fisher pass with 32-token chunks needs at least 64"));
    qb_model_close(m);
    assert_int_equal(qb_model_open(&ctx, "tests/fixtures/arch/mixtral", NULL, &m), QB_OK);
    int32_t t2[64] = {0};
    assert_int_equal(qb_fisher_compute(&ctx, m, t2, 64, &fo, &f), QB_ERR_UNSUPPORTED);
    assert_null(f);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "experts"));
    qb_model_close(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_pytorch),      cmocka_unit_test(test_sampled),
        cmocka_unit_test(test_damaged_ranked_first), cmocka_unit_test(test_search_from_estimate),
        cmocka_unit_test(test_streamed_equals_in_memory), cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
