/* test-scan-reuse.c — the scan engine's reuse changes no number: a pass resumed at any
 * checkpoint (infer.h, with and without the last layer trimmed) gives the logits of the whole
 * pass bit for bit; the scan's KLDs per tensor and per layer are those of evaluating each
 * variant on its own (qb_eval_kld on a view quantized the same way, and the engine with reuse
 * off), also when the memory bound leaves the cache short or empty (a note then says so); the
 * cost of a variant is below one pass with reuse and exactly one without. */
#include "testmodel.h"
#include <math.h>

#include "core/model/model.h"
#include "core/infer/infer.h"
#include "core/quant/view.h"
#include "core/quant/apply.h"
#include "core/eval/eval.h"
#include "core/eval/sensitivity.h"

#define MODEL "stories260K/stories260K.bin"

/* Every point of a whole pass of m checkpointed, then the pass resumed from each: the logits
 * must be the same bytes. */
static void check_resume(qb_model *m, bool trim)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int n;
    int32_t *toks = qbt_load_tokens(m, qbt_model_path("stories260K/ppl-sample.txt"), &n);
    const qb_config *c = &m->cfg;
    int T = 64, nl = 32, L = c->n_layers, P = qb_checkpoint_index(L, QB_STAGE_IN) + 1, V = c->vocab_size;
    assert_true(n >= T);
    qb_checkpoint *tab = calloc((size_t)P, sizeof *tab);
    for (int p = 0; p < P; p++) {
        tab[p].res = malloc((size_t)T * c->dim * sizeof(float));
        int st = p % QB_STAGE_COUNT;
        if (p < P - 1 && st == QB_STAGE_ATTN_OUT) tab[p].act = malloc((size_t)T * c->n_heads * c->head_dim * sizeof(float));
        if (p < P - 1 && st == QB_STAGE_DOWN_IN) tab[p].act = malloc((size_t)T * c->hidden_dim * sizeof(float));
    }
    float *ref = malloc((size_t)nl * V * sizeof(float)), *got = malloc((size_t)nl * V * sizeof(float));
    qb_infer *s;
    assert_int_equal(qb_infer_new(&ctx, m, T, T, &s), QB_OK);
    qb_infer_set_checkpoints(s, tab);
    assert_int_equal(qb_infer_eval(&ctx, s, toks, T, 0, ref, nl), QB_OK);
    int64_t full = qb_infer_work(s);
    assert_true(full > 0);
    qb_infer_set_checkpoints(s, NULL);
    qb_infer *r;
    assert_int_equal(qb_infer_new(&ctx, m, T, T, &r), QB_OK);
    qb_infer_set_trim(r, trim);
    for (int p = 0; p < P; p++) {
        int l = p / QB_STAGE_COUNT;
        qb_stage st = (qb_stage)(p % QB_STAGE_COUNT);
        if (l == L && st != QB_STAGE_IN) break;
        /* the capture ran untrimmed: a trimmed resume reads the last rows of what it stored */
        int skip = (l < L ? T : nl) - qb_infer_point_rows(r, l, st, T, nl);
        int aw = st == QB_STAGE_ATTN_OUT ? c->n_heads * c->head_dim : c->hidden_dim;
        qb_checkpoint cp = {tab[p].res + (size_t)skip * c->dim, tab[p].act ? tab[p].act + (size_t)skip * aw : NULL};
        memset(got, 0, (size_t)nl * V * sizeof(float));
        qb_infer_reset_work(r);
        assert_int_equal(qb_infer_resume(&ctx, r, l, st, &cp, T, got, nl), QB_OK);
        if (memcmp(ref, got, (size_t)nl * V * sizeof(float)))
            fail_msg("%s, trim %d: logits resumed at layer %d stage %d differ from the whole pass", m->path, trim, l,
                     (int)st);
        if (p > 0 || trim) assert_true(qb_infer_work(r) < full);
    }
    /* bad points */
    qb_checkpoint none = {tab[0].res, NULL};
    assert_int_equal(qb_infer_resume(&ctx, r, L + 1, QB_STAGE_IN, &none, T, got, nl), QB_ERR_ARG);
    assert_int_equal(qb_infer_resume(&ctx, r, L, QB_STAGE_FFN_IN, &none, T, got, nl), QB_ERR_ARG);
    assert_int_equal(qb_infer_resume(&ctx, r, 0, QB_STAGE_ATTN_OUT, &none, T, got, nl), QB_ERR_ARG);
    assert_int_equal(qb_infer_resume(&ctx, r, 0, QB_STAGE_IN, &none, T + 1, got, nl), QB_ERR_ARG);
    qb_infer_free(s);
    qb_infer_free(r);
    for (int p = 0; p < P; p++) {
        free(tab[p].res);
        free(tab[p].act);
    }
    free(tab);
    free(ref);
    free(got);
    free(toks);
}

static void test_resume_bit_identical(void **state)
{
    (void)state;
    qb_model *m = qbt_open_model_or_skip(MODEL);
    if (!m) return;
    check_resume(m, false);
    check_resume(m, true);
    /* packed weights (Q8_0: the GEMM tile / qdot paths) */
    qb_model *q = qbt_open_model_or_skip("stories260K/stories260K-q8_0.gguf");
    if (q) {
        check_resume(q, false);
        check_resume(q, true);
        qb_model_close(q);
    }
    /* the point that first reads each tensor */
    int l;
    qb_stage st;
    qb_infer_point_of(m, qb_model_tensor_index(m, "blk.2.attn_k.weight"), &l, &st);
    assert_true(l == 2 && st == QB_STAGE_IN);
    qb_infer_point_of(m, qb_model_tensor_index(m, "blk.3.attn_output.weight"), &l, &st);
    assert_true(l == 3 && st == QB_STAGE_ATTN_OUT);
    qb_infer_point_of(m, qb_model_tensor_index(m, "blk.1.ffn_up.weight"), &l, &st);
    assert_true(l == 1 && st == QB_STAGE_FFN_IN);
    qb_infer_point_of(m, qb_model_tensor_index(m, "blk.4.ffn_down.weight"), &l, &st);
    assert_true(l == 4 && st == QB_STAGE_DOWN_IN);
    qb_infer_point_of(m, qb_model_tensor_index(m, "output_norm.weight"), &l, &st);
    assert_true(l == m->cfg.n_layers && st == QB_STAGE_IN);
    qb_infer_point_of(m, qb_model_tensor_index(m, "token_embd.weight"), &l, &st); /* tied: read first */
    assert_true(l == 0 && st == QB_STAGE_IN);
    qb_model_close(m);
}

/* The view the scan makes for a row: its tensors (one, or all of a block) in fmt after fallback. */
static qb_model *row_view(qb_ctx *ctx, qb_model *m, const qb_scan_row *row, const qb_format *fmt)
{
    qb_model *v;
    assert_int_equal(qb_model_view_new(ctx, m, &v), QB_OK);
    for (int i = 0; i < m->n_tensors; i++) {
        const qb_tensor *t = &m->tensors[i];
        if (!qb_tensor_quantizable(t)) continue;
        int l = -1;
        bool in = row->layer >= 0 && !strchr(row->name + 4, '.') ? sscanf(t->name, "blk.%d.", &l) == 1 && l == row->layer
                                                                 : !strcmp(t->name, row->name);
        if (!in) continue;
        qb_format f = qb_format_fallback(fmt, t->ne[0]);
        assert_int_equal(qb_view_quantize(ctx, v, i, &f, NULL), QB_OK);
    }
    return v;
}

static const qb_scan_row *find_row(const qb_scan_result *r, const char *name)
{
    for (int i = 0; i < r->n_rows; i++)
        if (!strcmp(r->rows[i].name, name)) return &r->rows[i];
    fail_msg("no row %s", name);
    return NULL;
}

/* a and b the same numbers (b's KLDs from plain passes). */
static void same_kld(const char *name, const qb_kld_result *a, const qb_kld_result *b)
{
    if (a->kld_mean != b->kld_mean || a->kld_max != b->kld_max || a->kld_p99 != b->kld_p99 ||
        a->kld_median != b->kld_median || a->kld_min != b->kld_min || a->top1_pct != b->top1_pct ||
        a->other.ppl != b->other.ppl || a->kld_err != b->kld_err)
        fail_msg("%s: KLD %.17g / max %.17g / p99 %.17g vs %.17g / %.17g / %.17g", name, a->kld_mean, a->kld_max,
                 a->kld_p99, b->kld_mean, b->kld_max, b->kld_p99);
}

static void check_scan(qb_model *m, const int32_t *toks, int n, const char *fmt_name, qb_scan_unit per)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_format f;
    assert_int_equal(qb_format_parse(&ctx, fmt_name, &f), QB_OK);
    qb_scan_opts o = {.per = per, .n_ctx = 64, .n_tokens = 256};
    qb_scan_result r, plain, shortc, none;
    assert_int_equal(qb_sensitivity_scan(&ctx, m, &f, toks, n, &o, &r), QB_OK);
    assert_true(r.stats.cost_mean > 0.3 && r.stats.cost_mean < 1.0);
    assert_true(r.stats.cache_used > 0 && r.stats.cache_used == r.stats.cache_want);
    assert_string_equal(r.stats.note, "");
    assert_true(r.stats.n_kept == r.stats.n_points && r.stats.n_points > 0);
    o.no_reuse = true;
    assert_int_equal(qb_sensitivity_scan(&ctx, m, &f, toks, n, &o, &plain), QB_OK);
    assert_true(plain.stats.cost_mean == 1.0);
    o.no_reuse = false;
    o.cache_mb = 1; /* a bound that holds it all (test_cache_bound cuts it) */
    assert_int_equal(qb_sensitivity_scan(&ctx, m, &f, toks, n, &o, &shortc), QB_OK);
    o.cache_mb = QB_SCAN_NO_CACHE;
    assert_int_equal(qb_sensitivity_scan(&ctx, m, &f, toks, n, &o, &none), QB_OK);
    assert_int_equal(none.stats.n_kept, 0);
    assert_int_equal((long)none.stats.cache_used, 0);
    assert_non_null(strstr(none.stats.note, "recomputed"));
    assert_true(none.stats.cost_mean > r.stats.cost_mean && none.stats.cost_mean < 1.0); /* still trimmed */
    assert_int_equal(plain.n_rows, r.n_rows);
    qb_eval_opts eo = {.n_ctx = 64, .n_chunks = 4};
    for (int i = 0; i < r.n_rows; i++) {
        const qb_scan_row *w = &r.rows[i];
        same_kld(w->name, &w->kld, &find_row(&plain, w->name)->kld);
        same_kld(w->name, &w->kld, &find_row(&shortc, w->name)->kld);
        same_kld(w->name, &w->kld, &find_row(&none, w->name)->kld);
        /* the plain evaluation of its own: the same KLD at every position (the order statistics
         * are values of single positions), sums up to the order of additions */
        qb_model *v = row_view(&ctx, m, w, &f);
        qb_kld_result k;
        assert_int_equal(qb_eval_kld(&ctx, m, v, toks, n, &eo, &k), QB_OK);
        if (k.kld_max != w->kld.kld_max || k.kld_p99 != w->kld.kld_p99 || k.kld_median != w->kld.kld_median ||
            k.kld_min != w->kld.kld_min || k.top1_pct != w->kld.top1_pct)
            fail_msg("%s: scan KLD max %.17g p99 %.17g median %.17g vs a plain evaluation's %.17g %.17g %.17g", w->name,
                     w->kld.kld_max, w->kld.kld_p99, w->kld.kld_median, k.kld_max, k.kld_p99, k.kld_median);
        assert_true(fabs(k.kld_mean - w->kld.kld_mean) <= 1e-12 * k.kld_mean);
        assert_true(fabs(k.other.ppl - w->kld.other.ppl) <= 1e-12 * k.other.ppl);
        assert_true(w->kld.cost > 0 && w->kld.cost <= 1.0);
        qb_model_view_free(v);
    }
    qb_scan_result_free(&r);
    qb_scan_result_free(&plain);
    qb_scan_result_free(&shortc);
    qb_scan_result_free(&none);
}

static void test_scan_matches_plain(void **state)
{
    (void)state;
    qb_model *m = qbt_open_model_or_skip(MODEL);
    if (!m) return;
    int n;
    int32_t *toks = qbt_load_tokens(m, qbt_model_path("stories260K/ppl-sample.txt"), &n);
    check_scan(m, toks, n, "int2-channel", QB_SCAN_TENSOR);
    check_scan(m, toks, n, "q4_0", QB_SCAN_TENSOR);
    check_scan(m, toks, n, "q4_0", QB_SCAN_LAYER);
    free(toks);
    qb_model_close(m);
}

/* A short cache: the kept points are the ones that save the most, the note names the bound. */
static void test_cache_bound(void **state)
{
    (void)state;
    qb_model *m = qbt_open_model_or_skip(MODEL);
    if (!m) return;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int n;
    int32_t *toks = qbt_load_tokens(m, qbt_model_path("stories260K/ppl-sample.txt"), &n);
    qb_format f;
    assert_int_equal(qb_format_parse(&ctx, "q8_0", &f), QB_OK);
    /* 256-token chunks: the whole cache (5 layers × 4 points × 256 rows) is over 1 MiB */
    qb_scan_opts o = {.n_ctx = 256, .n_tokens = 512, .blocks_only = true};
    qb_scan_result full, cut;
    assert_int_equal(qb_sensitivity_scan(&ctx, m, &f, toks, n, &o, &full), QB_OK);
    assert_true(full.stats.cache_want > (1u << 20));
    o.cache_mb = 1;
    assert_int_equal(qb_sensitivity_scan(&ctx, m, &f, toks, n, &o, &cut), QB_OK);
    assert_true(cut.stats.cache_used <= (1u << 20) && cut.stats.cache_used > 0);
    assert_true(cut.stats.n_kept > 0 && cut.stats.n_kept < cut.stats.n_points);
    assert_non_null(strstr(cut.stats.note, "bound 1.0 MiB"));
    assert_true(cut.stats.cost_mean > full.stats.cost_mean && cut.stats.cost_mean < 1.0);
    for (int i = 0; i < full.n_rows; i++) same_kld(full.rows[i].name, &full.rows[i].kld, &find_row(&cut, full.rows[i].name)->kld);
    qb_scan_result_free(&full);
    qb_scan_result_free(&cut);
    free(toks);
    qb_model_close(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_bit_identical),
        cmocka_unit_test(test_scan_matches_plain),
        cmocka_unit_test(test_cache_bound),
    };
    return cmocka_run_group_tests_name("scan-reuse", tests, NULL, NULL);
}
