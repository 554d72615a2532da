/* test-kld-base.c — KL-divergence base files (core/eval/kld_base.h): the 16-bit row encoding
 * checked by hand, files built byte by byte from llama-perplexity's layout and read back
 * (also from unaligned memory), the byte-identical round trip, every kind of malformed file
 * refused with one line naming the file, llama-perplexity's statistics on hand-made rows
 * (KLD against a direct computation, its quantile and median rules), and on stories260K: a
 * saved base file's header and tokens, the model compared with its own file, and the
 * mismatches (vocabulary, text, context, chunks) and a cancelled save that leaves the target
 * alone. The agreement with llama-perplexity itself is tests/cli/test-kld-base.sh. */
#include "testutil.h"
#include <math.h>

#include "core/eval/kld_base.h"
#include "core/eval/kld_base_stats.h"


static int nv_of(int n_vocab) { return 2 * ((n_vocab + 1) / 2) + 4; }

/* A well-formed file: header, tokens t(i) = (7 i + 3) mod n_vocab, rows of random logits
 * encoded by qb_kld_base_encode_row (checked by hand in test_encode_row). */
static qbt_bytes build(int n_ctx, int n_vocab, int n_chunk, uint64_t seed)
{
    qbt_bytes b = {0};
    qbt_put(&b, "_logits_", 8);
    qbt_put_i32(&b, n_ctx);
    qbt_put_i32(&b, n_vocab);
    qbt_put_i32(&b, n_chunk);
    for (int i = 0; i < n_ctx * n_chunk; i++) qbt_put_i32(&b, (7 * i + 3) % n_vocab);
    int rows = n_ctx - 1 - n_ctx / 2, nv = nv_of(n_vocab);
    float *logits = malloc((size_t)n_vocab * sizeof *logits);
    uint16_t *row = malloc((size_t)nv * sizeof *row);
    for (int k = 0; k < n_chunk * rows; k++) {
        for (int i = 0; i < n_vocab; i++) logits[i] = 6 * qbt_frand(&seed);
        qb_kld_base_encode_row(logits, n_vocab, row, k % n_vocab);
        qbt_put(&b, row, (size_t)nv * 2);
    }
    free(logits);
    free(row);
    return b;
}

static qb_kld_base *open_ok(const char *name, const void *p, size_t n)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_kld_base *b = NULL;
    if (qb_kld_base_open_memory(&ctx, name, p, n, &b) != QB_OK) fail_msg("%s: %s", name, qb_ctx_errmsg(&ctx));
    return b;
}

/* The read fails with one line naming the file and containing want. */
static void open_bad(const char *name, const void *p, size_t n, const char *want)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_kld_base *b = (qb_kld_base *)1;
    qb_status st = qb_kld_base_open_memory(&ctx, name, p, n, &b);
    const char *msg = qb_ctx_errmsg(&ctx);
    if (st == QB_OK) fail_msg("%s: accepted, wanted an error with '%s'", name, want);
    assert_int_equal(st, QB_ERR_FORMAT);
    assert_null(b);
    if (strncmp(msg, name, strlen(name)) || !strstr(msg, want) || strchr(msg, '\n'))
        fail_msg("%s: message '%s', wanted the file name and '%s' on one line", name, msg, want);
}

static float row_f(const uint16_t *row, int k)
{
    float v;
    memcpy(&v, row + 2 * k, 4);
    return v;
}

static void test_encode_row(void **state)
{
    (void)state;
    /* logits 0, 1, 2, -20, 2: max 2, min -20 raised to 2 - 16 = -14 */
    const float lg[5] = {0, 1, 2, -20, 2};
    uint16_t row[10];
    memset(row, 0xff, sizeof row);
    double nll = qb_kld_base_encode_row(lg, 5, row, 1);
    double lse = 2 + log(exp(-2.0) + exp(-1.0) + 1 + exp(-22.0) + 1);
    assert_true(fabs(nll - (lse - 1)) < 1e-6);
    float scale = row_f(row, 0), mn = row_f(row, 1);
    assert_true(scale == 16.0f / 65535.f);
    assert_true(fabs(mn - (-14 - lse)) < 1e-5);
    const uint16_t *q = row + 4;
    assert_int_equal(q[2], 65535); /* the largest */
    assert_int_equal(q[4], 65535);
    assert_int_equal(q[3], 0);     /* below max - 16: reads as the minimum */
    assert_int_equal(q[0], (int)lrint(14 / (16.0 / 65535)));
    assert_int_equal(q[1], (int)lrint(15 / (16.0 / 65535)));
    assert_int_equal(q[5], 0);     /* the pad of an odd vocabulary */
    for (int i = 0; i < 5; i++)
        if (i != 3) assert_true(fabs(scale * q[i] + mn - (lg[i] - lse)) <= scale / 2 + 1e-5);
    /* all logits equal: scale 0, every q 0, min_log_prob = -log n */
    const float flat[4] = {3, 3, 3, 3};
    qb_kld_base_encode_row(flat, 4, row, 0);
    assert_true(row_f(row, 0) == 0);
    assert_true(fabs(row_f(row, 1) + log(4.0)) < 1e-6);
    for (int i = 0; i < 4; i++) assert_int_equal(row[4 + i], 0);
}

static void test_read(void **state)
{
    (void)state;
    qbt_bytes b = build(8, 5, 2, 11);
    assert_int_equal(b.n, 20 + 2 * 8 * 4 + 2 * 3 * nv_of(5) * 2);
    qb_kld_base *k = open_ok("good.kld", b.p, b.n);
    assert_int_equal(k->n_ctx, 8);
    assert_int_equal(k->n_vocab, 5);
    assert_int_equal(k->n_chunk, 2);
    assert_int_equal(k->rows, 3);
    assert_int_equal(k->nv, 10);
    assert_string_equal(k->path, "good.kld");
    for (int i = 0; i < 16; i++) assert_int_equal(k->tokens[i], (7 * i + 3) % 5);
    /* chunk 1, row 2 is the sixth row */
    assert_memory_equal(qb_kld_base_row(k, 1, 2), b.p + 20 + 64 + 5 * 20, 20);
    qb_kld_base_close(k);
    /* unaligned memory is copied */
    uint8_t *odd = malloc(b.n + 1);
    memcpy(odd + 1, b.p, b.n);
    k = open_ok("odd.kld", odd + 1, b.n);
    assert_int_equal(k->tokens[15], (7 * 15 + 3) % 5);
    assert_memory_equal(qb_kld_base_row(k, 1, 2), b.p + 20 + 64 + 5 * 20, 20);
    qb_kld_base_close(k);
    free(odd);
    free(b.p);
}

static void test_round_trip(void **state)
{
    (void)state;
    qbt_bytes b = build(16, 33, 3, 5);
    char *in = qbt_write_temp("kldin", b.p, b.n), *out = qbt_write_temp("kldout", "", 0);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_kld_base *k;
    assert_int_equal(qb_kld_base_open(&ctx, in, &k), QB_OK);
    assert_string_equal(k->path, in);
    assert_int_equal(qb_kld_base_write(&ctx, k, out), QB_OK);
    qb_kld_base_close(k);
    size_t n;
    char *back = qbt_slurp(out, &n);
    assert_int_equal(n, b.n);
    assert_memory_equal(back, b.p, n);
    free(back);
    /* a file that cannot be opened: one line naming it */
    assert_int_equal(qb_kld_base_open(&ctx, "/nonexistent/base.kld", &k), QB_ERR_IO);
    assert_null(k);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "/nonexistent/base.kld"));
    unlink(in);
    unlink(out);
    free(in);
    free(out);
    free(b.p);
}

static void test_bad(void **state)
{
    (void)state;
    qbt_bytes b = build(8, 5, 2, 3);
    open_bad("empty.kld", b.p, 0, "no \"_logits_\" magic");
    qbt_bytes m = {0};
    qbt_put(&m, b.p, b.n);
    memcpy(m.p, "_logitz_", 8);
    open_bad("magic.kld", m.p, m.n, "not a KL-divergence base file");
    open_bad("short.kld", b.p, 15, "truncated in the header");
    memcpy(m.p, b.p, b.n);
    int32_t v = 3;
    memcpy(m.p + 8, &v, 4);
    open_bad("ctx.kld", m.p, m.n, "context length 3 out of range");
    memcpy(m.p, b.p, b.n);
    v = 0;
    memcpy(m.p + 12, &v, 4);
    open_bad("vocab.kld", m.p, m.n, "vocabulary size 0 out of range");
    memcpy(m.p, b.p, b.n);
    v = -1;
    memcpy(m.p + 16, &v, 4);
    open_bad("chunks.kld", m.p, m.n, "chunk count -1");
    v = 1 << 30; /* a chunk count no file holds */
    memcpy(m.p + 16, &v, 4);
    open_bad("huge.kld", m.p, m.n, "truncated in the tokens");
    open_bad("tokens.kld", b.p, 20 + 40, "truncated in the tokens");
    open_bad("rows.kld", b.p, b.n - 1, "truncated in chunk 2's log-probabilities");
    open_bad("rows1.kld", b.p, 20 + 64 + 10, "truncated in chunk 1's log-probabilities");
    qbt_put(&m, "x", 1);
    memcpy(m.p, b.p, b.n);
    open_bad("trailing.kld", m.p, b.n + 1, "1 bytes after the end of the last chunk");
    v = 5;
    memcpy(m.p + 20 + 4 * 9, &v, 4);
    open_bad("token.kld", m.p, b.n, "token 9 is 5, outside the vocabulary of 5");
    memcpy(m.p, b.p, b.n);
    float f = NAN;
    memcpy(m.p + 20 + 64 + 4 * 20, &f, 4); /* chunk 2's second row */
    open_bad("nan.kld", m.p, b.n, "chunk 2, position 5: scale nan");
    memcpy(m.p, b.p, b.n);
    f = -1;
    memcpy(m.p + 20 + 64, &f, 4);
    open_bad("negative.kld", m.p, b.n, "chunk 1, position 4: scale -1");
    memcpy(m.p, b.p, b.n);
    f = INFINITY;
    memcpy(m.p + 20 + 64 + 4, &f, 4);
    open_bad("inf.kld", m.p, b.n, "minimum log-probability inf");
    free(m.p);
    free(b.p);
}

/* KL(base ‖ model) in double from the decoded base row (tokens with log p ≤ -16 left out, as
 * llama-perplexity does). */
static double kld_direct(const float *lg, int n, const uint16_t *row)
{
    float scale = row_f(row, 0), mn = row_f(row, 1);
    double mx = lg[0], s = 0, k = 0;
    for (int i = 1; i < n; i++) mx = lg[i] > mx ? lg[i] : mx;
    for (int i = 0; i < n; i++) s += exp(lg[i] - mx);
    for (int i = 0; i < n; i++) {
        double lb = (double)scale * row[4 + i] + mn, lq = lg[i] - mx - log(s);
        if (lb > -16) k += exp(lb) * (lb - lq);
    }
    return k;
}

static void test_stats_rows(void **state)
{
    (void)state;
    enum { V = 301, N = 40 };
    uint64_t seed = 7;
    float base[V], model[V];
    uint16_t row[V + 5];
    qb_kldb_sums s = {0};
    float klds[N], dps[N];
    double nll_b = 0, nll_q = 0;
    int same = 0;
    for (int k = 0; k < N; k++) {
        int tok = (k * 37) % V, top_b = 0, top_q = 0;
        for (int i = 0; i < V; i++) {
            base[i] = 4 * qbt_frand(&seed);
            model[i] = base[i] + (k % 4 ? 0.3f : 0.0f) * qbt_frand(&seed);
            if (base[i] > base[top_b]) top_b = i;
            if (model[i] > model[top_q]) top_q = i;
        }
        nll_b += qb_kld_base_encode_row(base, V, row, tok);
        qb_kldb_row(model, V, row, tok, &s, &klds[k], &dps[k]);
        if (k % 4 == 0) /* the same logits: only the encoding's error, at most half a step per log p */
            assert_true(fabs(klds[k]) <= row_f(row, 0) / 2);
        assert_true(fabs(klds[k] - kld_direct(model, V, row)) < 1e-5);
        double mx = model[0], sum = 0;
        for (int i = 1; i < V; i++) mx = model[i] > mx ? model[i] : mx;
        for (int i = 0; i < V; i++) sum += exp(model[i] - mx);
        nll_q += mx + log(sum) - model[tok];
        same += top_b == top_q;
    }
    assert_int_equal(s.count, N);
    assert_true(fabs(s.sum_nll - nll_q) < 1e-4);
    assert_true(fabs(s.sum_nll_base - nll_b) < 0.01); /* the encoding: ≤ 1.2e-4 per row */
    assert_true(abs((int)s.n_same_top - same) <= 1);  /* ties in the 16-bit encoding may differ */
    qb_kld_stats st;
    memset(&st, 0, sizeof st);
    float kcopy[N], dcopy[N];
    memcpy(kcopy, klds, sizeof klds);
    memcpy(dcopy, dps, sizeof dps);
    qb_kldb_finish(&s, kcopy, dcopy, &st);
    assert_int_equal(st.n_scored, N);
    assert_true(fabs(st.kld - s.sum_kld / N) < 1e-12);
    assert_true(fabs(st.ppl - exp(nll_q / N)) < 1e-4 * st.ppl);
    assert_true(fabs(st.ln_ratio - (log(st.ppl) - log(st.ppl_base))) < 1e-9);
    assert_true(st.cor > 0.9 && st.cor <= 1.0 + 1e-9);
    for (int i = 1; i < N; i++) assert_true(kcopy[i - 1] <= kcopy[i] && dcopy[i - 1] <= dcopy[i]);
    assert_true(st.kld_q[0] == kcopy[N - 1] && st.kld_q[QB_KLD_NQ - 1] == kcopy[0]);
    assert_true(st.dp_q[0] == dcopy[N - 1]);
    assert_true(st.same_top == (double)s.n_same_top / N);
}

/* llama-perplexity's quantile rules on five known values: linear between neighbours at
 * fraction × (n − 1), the median the middle value (the mean of the two middle ones for an
 * even count), the uncertainties 0 for 10 values or fewer. */
static void test_stats_quantiles(void **state)
{
    (void)state;
    qb_kldb_sums s = {.count = 5, .sum_kld = 10, .sum_kld2 = 30};
    float k[5] = {4, 0, 3, 1, 2}, d[5] = {0.4f, -0.1f, 0.2f, 0.1f, 0.3f};
    qb_kld_stats st;
    memset(&st, 0, sizeof st);
    qb_kldb_finish(&s, k, d, &st);
    for (int q = 0; q < QB_KLD_NQ; q++) {
        const qb_kld_quantile *Q = &qb_kld_quantiles[q];
        double want = strcmp(Q->key, "median") ? 4.0 * Q->fraction : 2.0;
        if (fabs(st.kld_q[q] - want) > 1e-6) fail_msg("%s: %g, wanted %g", Q->label, st.kld_q[q], want);
    }
    assert_true(st.kld == 2 && st.kld_err == 0);
    assert_true(fabs(st.dp_q[6] - 0.2) < 1e-7);
    s.count = 4;
    float k4[4] = {1, 5, 2, 9}, d4[4] = {0, 0, 0, 0};
    qb_kldb_finish(&s, k4, d4, &st);
    assert_true(st.kld_q[6] == 3.5); /* (2 + 5) / 2 */
    assert_true(fabs(st.kld_q[2] - (0.03f * 5 + 0.97f * 9)) < 1e-5); /* 99%: 0.99 × 3 = 2.97 */
}

/* ---- on stories260K ------------------------------------------------------------------ */

typedef struct {
    qb_ctx ctx;
    qb_model *m;
    int32_t *toks;
    int n;
    char *path;
} fixture;

static bool setup_model(fixture *f)
{
    const char *mp = qbt_model_path("stories260K/stories260K-f32.gguf");
    const char *text = qbt_model_path("stories260K/ppl-sample.txt");
    qbt_need(mp);
    qbt_need(text);
    qb_ctx_init(&f->ctx);
    assert_int_equal(qb_model_open(&f->ctx, mp, NULL, &f->m), QB_OK);
    assert_int_equal(qb_eval_load_text(&f->ctx, f->m, text, &f->toks, &f->n), QB_OK);
    f->path = qbt_write_temp("kldbase", "old", 3);
    return true;
}

static void teardown_model(fixture *f)
{
    unlink(f->path);
    free(f->path);
    free(f->toks);
    qb_model_close(f->m);
}

static void test_model(void **state)
{
    (void)state;
    fixture f;
    setup_model(&f);
    qb_ctx *ctx = &f.ctx;
    qb_eval_opts o = {.n_ctx = 64, .n_chunks = 3};
    qb_ppl_result pr, pp;
    assert_int_equal(qb_kld_base_save(ctx, f.m, f.toks, f.n, &o, f.path, &pr), QB_OK);
    assert_int_equal(qb_eval_perplexity(ctx, f.m, f.toks, f.n, &o, &pp), QB_OK);
    assert_true(fabs(pr.ppl - pp.ppl) < 1e-4 * pp.ppl);
    assert_int_equal(pr.n_scored, 3 * 31);
    qb_kld_base *b;
    assert_int_equal(qb_kld_base_open(ctx, f.path, &b), QB_OK);
    assert_int_equal(b->n_ctx, 64);
    assert_int_equal(b->n_vocab, 512);
    assert_int_equal(b->n_chunk, 3);
    assert_memory_equal(b->tokens, f.toks, 3 * 64 * sizeof(int32_t)); /* the text, BOS first */
    assert_int_equal(qb_kld_base_check(ctx, b, f.m, f.toks, f.n, "ppl-sample.txt"), QB_OK);
    /* the model against its own file: only the encoding's error (half a step of 16/65535 per
     * log-probability at most; measured 1e-6 mean, 5e-5 largest) */
    qb_kld_stats st;
    assert_int_equal(qb_eval_kld_base(ctx, b, f.m, &(qb_eval_opts){0}, &st), QB_OK);
    assert_int_equal(st.n_scored, 93);
    assert_int_equal(st.n_chunks, 3);
    assert_true(fabs(st.kld) < 1e-5 && st.kld_q[0] < 1.25e-4 && st.kld_q[QB_KLD_NQ - 1] > -1.25e-4);
    assert_true(st.same_top == 1.0);
    assert_true(fabs(st.ppl - pp.ppl) < 1e-4 * pp.ppl);
    assert_true(fabs(st.ppl_base - st.ppl) < 1e-4 * st.ppl);
    assert_true(fabs(st.dp_q[0]) < 1e-3 && fabs(st.dp_q[QB_KLD_NQ - 1]) < 1e-3);
    /* fewer chunks than the file holds */
    assert_int_equal(qb_eval_kld_base(ctx, b, f.m, &(qb_eval_opts){.n_chunks = 2, .n_ctx = 64}, &st), QB_OK);
    assert_int_equal(st.n_scored, 62);
    /* a context other than the file's, more chunks than it holds */
    assert_int_equal(qb_eval_kld_base(ctx, b, f.m, &(qb_eval_opts){.n_ctx = 32}, &st), QB_ERR_ARG);
    assert_non_null(strstr(qb_ctx_errmsg(ctx), "made with a context of 64 tokens, not the 32 asked for"));
    assert_int_equal(strncmp(qb_ctx_errmsg(ctx), f.path, strlen(f.path)), 0);
    assert_int_equal(qb_eval_kld_base(ctx, b, f.m, &(qb_eval_opts){.n_chunks = 4}, &st), QB_ERR_ARG);
    assert_non_null(strstr(qb_ctx_errmsg(ctx), "holds 3 chunks, 4 asked for"));
    /* another text: the first token that differs is named */
    f.toks[70] = (f.toks[70] + 1) % 512;
    assert_int_equal(qb_kld_base_check(ctx, b, f.m, f.toks, f.n, "other.txt"), QB_ERR_ARG);
    assert_non_null(strstr(qb_ctx_errmsg(ctx), "token 70 (chunk 2, position 6)"));
    assert_non_null(strstr(qb_ctx_errmsg(ctx), "other.txt"));
    f.toks[70] = b->tokens[70];
    assert_int_equal(qb_kld_base_check(ctx, b, f.m, f.toks, 100, "short.txt"), QB_ERR_ARG);
    assert_non_null(strstr(qb_ctx_errmsg(ctx), "holds 192 tokens of text (3 chunks of 64), short.txt has only 100"));
    qb_kld_base_close(b);
    /* another vocabulary */
    qbt_bytes other = build(64, 100, 1, 9);
    qb_kld_base *ob = open_ok("vocab100.kld", other.p, other.n);
    assert_int_equal(qb_eval_kld_base(ctx, ob, f.m, NULL, &st), QB_ERR_ARG);
    assert_non_null(strstr(qb_ctx_errmsg(ctx), "vocab100.kld: made with a vocabulary of 100 tokens"));
    assert_non_null(strstr(qb_ctx_errmsg(ctx), "has 512"));
    qb_kld_base_close(ob);
    free(other.p);
    teardown_model(&f);
}

/* A cancelled save and one into a folder that does not exist leave nothing behind: the old
 * file keeps its bytes. */
static void test_save_fails(void **state)
{
    (void)state;
    fixture f;
    setup_model(&f);
    volatile int cancel = 1;
    qb_eval_opts o = {.n_ctx = 64, .n_chunks = 2, .cancel = &cancel};
    qb_ppl_result pr;
    assert_int_equal(qb_kld_base_save(&f.ctx, f.m, f.toks, f.n, &o, f.path, &pr), QB_ERR_CANCELLED);
    size_t n;
    char *old = qbt_slurp(f.path, &n);
    assert_int_equal(n, 3);
    assert_memory_equal(old, "old", 3);
    free(old);
    o.cancel = NULL;
    assert_int_equal(qb_kld_base_save(&f.ctx, f.m, f.toks, f.n, &o, "/nonexistent/dir/b.kld", &pr), QB_ERR_IO);
    assert_non_null(strstr(qb_ctx_errmsg(&f.ctx), "/nonexistent/dir/b.kld"));
    o.n_ctx = 4096; /* more than half the text */
    assert_int_equal(qb_kld_base_save(&f.ctx, f.m, f.toks, f.n, &o, f.path, &pr), QB_ERR_ARG);
    teardown_model(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_row),  cmocka_unit_test(test_read),           cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bad),         cmocka_unit_test(test_stats_rows),     cmocka_unit_test(test_stats_quantiles),
        cmocka_unit_test(test_model),       cmocka_unit_test(test_save_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
