/* test-prune-structured.c — structured pruning (method/prune_structured.h). The rewrite is
 * checked against the unpruned model with the removed parts' contributions zeroed (wo columns
 * of removed heads, w_down columns of removed neurons, both of a removed block): the logits must
 * agree to float rounding, which proves the rows, columns, biases, names and config were cut
 * consistently. Keeping everything is the identity; shapes, config, names and parameter counts
 * after pruning; the choice (regular head shapes, least important parts); a GGUF export reopens
 * with the same logits; the whole job on stories260K; bad input (shares out of range, irregular
 * selections, views, fused / expert / sliding-window models, a text too short) refused with a
 * message. stories260K (8 heads on 4 KV heads, FFN 172, 5 blocks) and qb-docs-26m (8 heads on 2,
 * F16). */
#include "testutil.h"
#include "testmodel.h"
#include <math.h>

#include "core/method/prune_structured.h"
#include "core/method/fold.h"
#include "core/infer/infer.h"
#include "core/quant/apply.h"

#define S260 "stories260K/stories260K.bin"
#define DOCS "qb-docs-26m/qb-docs-26m-f16.gguf"
#define NTOK 24

static void tokens(int32_t *t, int n, int vocab)
{
    unsigned s = 12345;
    t[0] = 1;
    for (int i = 1; i < n; i++) {
        s = s * 1103515245u + 12345u;
        t[i] = (int32_t)((s >> 8) % (unsigned)vocab);
    }
}

/* logits of NTOK fixed tokens (every position), malloc'd */
static float *logits_of(const qb_model *m)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int32_t t[NTOK];
    tokens(t, NTOK, m->cfg.vocab_size);
    qb_infer *s;
    assert_int_equal(qb_infer_new(&ctx, m, NTOK, NTOK, &s), QB_OK);
    float *out = malloc((size_t)NTOK * m->cfg.vocab_size * sizeof *out);
    assert_int_equal(qb_infer_eval(&ctx, s, t, NTOK, 0, out, NTOK), QB_OK);
    qb_infer_free(s);
    return out;
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double d = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (e > d) d = e;
    }
    return d;
}

/* columns j of t with !keep[j / unit] set to zero (t becomes F32) */
static void zero_columns(qb_tensor *t, const uint8_t *keep, int unit)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int64_t n = t->ne[0], rows = qb_tensor_rows(t);
    float *v = malloc((size_t)(n * rows) * sizeof *v);
    qb_tensor_current_rows(t, 0, rows, v);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < n; j++)
            if (!keep[j / unit]) v[r * n + j] = 0.0f;
    assert_int_equal(qb_tensor_set_f32(&ctx, t, v), QB_OK);
    free(v);
}

/* The reference for selection s: ref (the same model, unpruned) with the removed heads' wo
 * columns, the removed neurons' w_down columns and a removed block's wo and w_down zeroed. */
static void zero_removed(qb_model *ref, const qb_prune_selection *s)
{
    const qb_config *c = &ref->cfg;
    static const uint8_t none[4096];
    for (int l = 0; l < c->n_layers; l++) {
        qb_layer_weights *W = &ref->layers[l];
        bool k = s->keep_layer[l];
        zero_columns(W->wo, k ? s->keep_head + (size_t)l * c->n_heads : none, c->head_dim);
        zero_columns(W->w_down, k ? s->keep_neuron + (size_t)l * c->hidden_dim : none, 1);
    }
}

/* prune a fresh copy of rel by s and compare with the zeroed reference */
static void check_against_zeroed(const char *rel, const qb_prune_selection *s, double tol, qb_model **pruned_out)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = qbt_open_model(rel, NULL), *ref = qbt_open_model(rel, NULL);
    assert_int_equal(qb_prune_structured_apply(&ctx, m, s), QB_OK);
    zero_removed(ref, s);
    float *a = logits_of(m), *b = logits_of(ref);
    double d = max_diff(a, b, (size_t)NTOK * m->cfg.vocab_size);
    print_message("%s: max |logit difference| pruned vs zeroed %.3g\n", rel, d);
    assert_true(d < tol);
    free(a);
    free(b);
    qb_model_close(ref);
    if (pruned_out) *pruned_out = m;
    else qb_model_close(m);
}

static void test_identity(void **state)
{
    (void)state;
    qbt_need(qbt_model_path(S260));
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = qbt_open_model(S260, NULL), *ref = qbt_open_model(S260, NULL);
    qb_prune_selection s;
    assert_int_equal(qb_prune_selection_all(&ctx, m, &s), QB_OK);
    assert_int_equal(qb_prune_structured_apply(&ctx, m, &s), QB_OK);
    assert_false(m->reshaped);
    assert_int_equal(m->n_tensors, ref->n_tensors);
    assert_int_equal(qb_model_params(m), qb_model_params(ref));
    float *a = logits_of(m), *b = logits_of(ref);
    assert_memory_equal(a, b, (size_t)NTOK * m->cfg.vocab_size * sizeof *a);
    free(a);
    free(b);
    qb_prune_selection_free(&s);
    qb_model_close(m);
    qb_model_close(ref);
}

/* stories260K: one head of each KV group, a different one in every block (4 of 8 heads left, 4 KV) */
static void test_heads_per_group(void **state)
{
    (void)state;
    qbt_need(qbt_model_path(S260));
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m0 = qbt_open_model(S260, NULL);
    qb_prune_selection s;
    assert_int_equal(qb_prune_selection_all(&ctx, m0, &s), QB_OK);
    for (int l = 0; l < 5; l++)
        for (int g = 0; g < 4; g++) s.keep_head[l * 8 + g * 2 + (l + g) % 2] = 0;
    qb_model *m;
    check_against_zeroed(S260, &s, 1e-5, &m);
    assert_int_equal(m->cfg.n_heads, 4);
    assert_int_equal(m->cfg.n_kv_heads, 4);
    assert_int_equal(m->cfg.head_dim, 8);
    assert_true(m->reshaped);
    assert_int_equal(m->layers[0].wq->ne[1], 32);
    assert_int_equal(m->layers[0].wo->ne[0], 32);
    assert_int_equal(m->layers[0].wo->ne[1], 64);
    assert_int_equal(m->layers[0].wk->ne[1], 32);
    assert_int_equal(qb_model_params(m), qb_model_params(m0) - 5 * 2 * 32 * 64);
    qb_prune_selection_free(&s);
    qb_model_close(m);
    qb_model_close(m0);
}

/* stories260K: a whole KV group (its two query heads and the KV head) goes: 6 heads on 3 */
static void test_kv_group(void **state)
{
    (void)state;
    qbt_need(qbt_model_path(S260));
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m0 = qbt_open_model(S260, NULL);
    qb_prune_selection s;
    assert_int_equal(qb_prune_selection_all(&ctx, m0, &s), QB_OK);
    for (int l = 0; l < 5; l++) {
        int g = (l * 3) % 4; /* a different group per block */
        s.keep_kv[l * 4 + g] = 0;
        s.keep_head[l * 8 + 2 * g] = s.keep_head[l * 8 + 2 * g + 1] = 0;
    }
    qb_model *m;
    check_against_zeroed(S260, &s, 1e-5, &m);
    assert_int_equal(m->cfg.n_heads, 6);
    assert_int_equal(m->cfg.n_kv_heads, 3);
    assert_int_equal(m->layers[2].wk->ne[1], 24);
    assert_int_equal(m->layers[2].wv->ne[1], 24);
    assert_int_equal(qb_model_params(m), qb_model_params(m0) - 5 * (2 * 16 * 64 + 2 * 8 * 64));
    qb_prune_selection_free(&s);
    qb_model_close(m);
    qb_model_close(m0);
}

/* stories260K: 43 of 172 neurons, a different set per block */
static void test_neurons(void **state)
{
    (void)state;
    qbt_need(qbt_model_path(S260));
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m0 = qbt_open_model(S260, NULL);
    qb_prune_selection s;
    assert_int_equal(qb_prune_selection_all(&ctx, m0, &s), QB_OK);
    for (int l = 0; l < 5; l++)
        for (int k = 0; k < 43; k++) s.keep_neuron[l * 172 + (k * 4 + l) % 172] = 0;
    qb_model *m;
    check_against_zeroed(S260, &s, 1e-5, &m);
    assert_int_equal(m->cfg.hidden_dim, 129);
    assert_int_equal(m->layers[4].w_gate->ne[1], 129);
    assert_int_equal(m->layers[4].w_up->ne[1], 129);
    assert_int_equal(m->layers[4].w_down->ne[0], 129);
    assert_int_equal(qb_model_params(m), qb_model_params(m0) - 5 * 3 * 43 * 64);
    qb_prune_selection_free(&s);
    qb_model_close(m);
    qb_model_close(m0);
}

/* stories260K: block 2 removed (= skipped), later blocks renumbered; and everything at once */
static void test_layer_and_all(void **state)
{
    (void)state;
    qbt_need(qbt_model_path(S260));
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m0 = qbt_open_model(S260, NULL);
    qb_prune_selection s;
    assert_int_equal(qb_prune_selection_all(&ctx, m0, &s), QB_OK);
    s.keep_layer[2] = 0;
    qb_model *m;
    check_against_zeroed(S260, &s, 1e-5, &m);
    assert_int_equal(m->cfg.n_layers, 4);
    assert_null(qb_model_find_tensor(m, "blk.4.attn_q.weight"));
    assert_non_null(qb_model_find_tensor(m, "blk.3.attn_q.weight"));
    /* the renamed block 3 holds what block 4 held */
    const qb_tensor *a = qb_model_find_tensor(m, "blk.3.ffn_down.weight"), *b = qb_model_find_tensor(m0, "blk.4.ffn_down.weight");
    assert_memory_equal(a->data, b->data, a->nbytes);
    int64_t block = 0;
    for (int i = 0; i < m0->n_tensors; i++)
        if (!strncmp(m0->tensors[i].name, "blk.2.", 6)) block += qb_tensor_nelements(&m0->tensors[i]);
    assert_int_equal(qb_model_params(m), qb_model_params(m0) - block);
    qb_model_close(m);
    /* heads (one per group), neurons and blocks 0 and 3 together */
    for (int l = 0; l < 5; l++) {
        for (int g = 0; g < 4; g++) s.keep_head[l * 8 + g * 2 + (g + l) % 2] = 0;
        for (int k = 0; k < 60; k++) s.keep_neuron[l * 172 + (k * 7 + l) % 172] = 0;
    }
    s.keep_layer[2] = 1;
    s.keep_layer[0] = s.keep_layer[3] = 0;
    check_against_zeroed(S260, &s, 1e-5, &m);
    assert_int_equal(m->cfg.n_layers, 3);
    assert_int_equal(m->cfg.n_heads, 4);
    assert_int_equal(m->cfg.hidden_dim, 112);
    /* exported and reopened: the same logits (F32 throughout) */
    char path[] = "/tmp/qb-prune-structured-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(qb_export_gguf(&ctx, m, path, NULL, NULL), QB_OK);
    qb_model *back = qbt_open_model(path, NULL);
    assert_int_equal(back->cfg.n_layers, 3);
    assert_int_equal(back->cfg.n_heads, 4);
    assert_int_equal(back->cfg.n_kv_heads, 4);
    assert_int_equal(back->cfg.hidden_dim, 112);
    assert_int_equal(back->cfg.head_dim, 8);
    float *x = logits_of(m), *y = logits_of(back);
    assert_true(max_diff(x, y, (size_t)NTOK * 512) < 1e-6);
    free(x);
    free(y);
    qb_model_close(back);
    unlink(path);
    /* the pruned tensors are their own originals: F16 and back restores the pruned values */
    qb_tensor *t = m->layers[1].w_down;
    size_t nb = t->nbytes;
    float *orig = malloc(nb);
    memcpy(orig, t->data, nb);
    qb_format f16 = qb_format_ggml(QB_TYPE_F16);
    assert_int_equal(qb_tensor_quantize(&ctx, t, &f16, NULL), QB_OK);
    assert_int_equal(qb_tensor_restore(&ctx, t), QB_OK);
    assert_memory_equal(t->data, orig, nb);
    free(orig);
    qb_model_close(m);
    qb_prune_selection_free(&s);
    qb_model_close(m0);
}

/* qb-docs-26m (F16, 8 heads on 2 KV heads): a quarter of the heads (one per group of 4) and a
 * quarter of the neurons; F16 kept, exported GGUF reopens with the new hyperparameters */
static void test_docs_gqa_f16(void **state)
{
    (void)state;
    qbt_need(qbt_model_path(DOCS));
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m0 = qbt_open_model(DOCS, NULL);
    qb_prune_selection s;
    assert_int_equal(qb_prune_selection_all(&ctx, m0, &s), QB_OK);
    for (int l = 0; l < 6; l++) {
        for (int g = 0; g < 2; g++) s.keep_head[l * 8 + g * 4 + (l + 3 * g) % 4] = 0;
        for (int k = 0; k < 384; k++) s.keep_neuron[l * 1536 + (k * 4 + l) % 1536] = 0;
    }
    qb_model *m;
    check_against_zeroed(DOCS, &s, 1e-4, &m);
    assert_int_equal(m->cfg.n_heads, 6);
    assert_int_equal(m->cfg.n_kv_heads, 2);
    assert_int_equal(m->cfg.hidden_dim, 1152);
    assert_int_equal(m->layers[0].wq->type, QB_TYPE_F16);
    assert_int_equal(m->layers[0].wo->type, QB_TYPE_F16);
    assert_int_equal(m->layers[0].w_down->type, QB_TYPE_F16);
    assert_int_equal(m->layers[0].wk->nbytes, m0->layers[0].wk->nbytes); /* both KV heads stay */
    char path[] = "/tmp/qb-prune-structured-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(qb_export_gguf(&ctx, m, path, NULL, NULL), QB_OK);
    qb_model *back = qbt_open_model(path, NULL);
    assert_int_equal(back->cfg.n_heads, 6);
    assert_int_equal(back->cfg.n_kv_heads, 2);
    assert_int_equal(back->cfg.hidden_dim, 1152);
    assert_int_equal(back->cfg.head_dim, 64);
    assert_int_equal(back->cfg.dim, 512);
    assert_int_equal(qb_model_bytes(back), qb_model_bytes(m));
    float *x = logits_of(m), *y = logits_of(back);
    assert_true(max_diff(x, y, (size_t)NTOK * 8192) == 0);
    free(x);
    free(y);
    qb_model_close(back);
    unlink(path);
    qb_prune_selection_free(&s);
    qb_model_close(m);
    qb_model_close(m0);
}

/* the choice from given importance: regular shapes, least important parts */
static void test_select(void **state)
{
    (void)state;
    qbt_need(qbt_model_path(S260));
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = qbt_open_model(S260, NULL);
    qb_prune_importance imp = {.n_layers = 5, .n_heads = 8, .hidden_dim = 172};
    imp.head = calloc(5 * 8, sizeof(double));
    imp.neuron = calloc(5 * 172, sizeof(double));
    imp.layer = calloc(5, sizeof(double));
    for (int l = 0; l < 5; l++) {
        for (int h = 0; h < 8; h++) imp.head[l * 8 + h] = 10 + h; /* group 0 (heads 0, 1) least */
        for (int i = 0; i < 172; i++) imp.neuron[l * 172 + i] = (double)((i * 37 + l) % 172);
        imp.layer[l] = 1.0 + l;
    }
    imp.layer[3] = 0.5;
    qb_prune_selection s;
    /* a quarter of 8 heads on 4 KV heads: exactly 2 = one whole group, the least important */
    qb_prune_amount a = {.heads = 0.25, .ffn = 0.25, .layers = 1};
    assert_int_equal(qb_prune_select(&ctx, m, &imp, &a, &s), QB_OK);
    int nl, nh, nkv, nf;
    qb_prune_selection_counts(&s, &nl, &nh, &nkv, &nf);
    assert_int_equal(nl, 4);
    assert_int_equal(nh, 6);
    assert_int_equal(nkv, 3);
    assert_int_equal(nf, 129);
    assert_int_equal(s.keep_layer[3], 0);
    assert_int_equal(s.keep_kv[0], 0);
    assert_int_equal(s.keep_head[0] + s.keep_head[1], 0);
    for (int l = 0; l < 5; l++)
        for (int i = 0; i < 172; i++) /* neurons with importance 0..42 go */
            assert_int_equal(s.keep_neuron[l * 172 + i], (i * 37 + l) % 172 >= 43);
    qb_prune_selection_free(&s);
    /* half: 4 groups of 1 or 2 groups of 2; the one keeping more importance. With head 2k+1
     * much more important than 2k, keeping one head per group keeps more. */
    for (int l = 0; l < 5; l++)
        for (int h = 0; h < 8; h++) imp.head[l * 8 + h] = h % 2 ? 100 + h : 1;
    a = (qb_prune_amount){.heads = 0.5};
    assert_int_equal(qb_prune_select(&ctx, m, &imp, &a, &s), QB_OK);
    qb_prune_selection_counts(&s, &nl, &nh, &nkv, &nf);
    assert_int_equal(nh, 4);
    assert_int_equal(nkv, 4);
    for (int h = 0; h < 8; h++) assert_int_equal(s.keep_head[h], h % 2);
    qb_prune_selection_free(&s);
    /* the same with the groups unequal: two whole groups keep more */
    for (int l = 0; l < 5; l++)
        for (int h = 0; h < 8; h++) imp.head[l * 8 + h] = h >= 4 ? 100 : 1;
    assert_int_equal(qb_prune_select(&ctx, m, &imp, &a, &s), QB_OK);
    qb_prune_selection_counts(&s, &nl, &nh, &nkv, &nf);
    assert_int_equal(nh, 4);
    assert_int_equal(nkv, 2);
    assert_int_equal(s.keep_kv[0] + s.keep_kv[1], 0);
    qb_prune_selection_free(&s);
    /* blocks asked without their measured influence */
    free(imp.layer);
    imp.layer = NULL;
    a = (qb_prune_amount){.layers = 1};
    assert_int_equal(qb_prune_select(&ctx, m, &imp, &a, &s), QB_ERR_ARG);
    qb_prune_importance_free(&imp);
    qb_model_close(m);
}

/* the whole job on stories260K: calibrate, measure (blocks too), choose, rewrite */
static void test_job(void **state)
{
    (void)state;
    const char *text = qbt_data_path("calib-docs.txt");
    qbt_need(qbt_model_path(S260));
    qbt_need(text);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = qbt_open_model(S260, NULL);
    int64_t p0 = qb_model_params(m);
    qb_prune_amount a = {.heads = 0.25, .ffn = 0.25, .layers = 1};
    qb_prune_structured_opts o = {.n_samples = 4, .n_ctx = 64};
    qb_prune_importance imp;
    qb_prune_selection sel;
    assert_int_equal(qb_prune_structured(&ctx, m, text, &a, &o, &imp, &sel), QB_OK);
    assert_int_equal(m->cfg.n_layers, 4);
    assert_int_equal(m->cfg.n_heads, 6);
    assert_int_equal(m->cfg.n_kv_heads, 3);
    assert_int_equal(m->cfg.hidden_dim, 129);
    assert_true(qb_model_params(m) < p0);
    assert_non_null(imp.layer);
    int removed = -1;
    for (int l = 0; l < 5; l++) {
        assert_true(imp.layer[l] > 0 && isfinite(imp.layer[l]));
        if (!sel.keep_layer[l]) removed = l;
    }
    for (int l = 0; l < 5; l++) assert_true(imp.layer[l] >= imp.layer[removed]);
    for (int i = 0; i < 5 * 8; i++) assert_true(imp.head[i] > 0);
    float *x = logits_of(m);
    for (int i = 0; i < NTOK * 512; i++) assert_true(isfinite(x[i]));
    free(x);
    qb_prune_importance_free(&imp);
    qb_prune_selection_free(&sel);
    qb_model_close(m);
}

static void test_bad_input(void **state)
{
    (void)state;
    qbt_need(qbt_model_path(S260));
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = qbt_open_model(S260, NULL);
    const qb_prune_amount bad[] = {{.heads = 1.0}, {.heads = -0.1}, {.ffn = 1.0}, {.ffn = NAN}, {.layers = 5},
                                   {.layers = -1}, {.heads = 0.95}, {.ffn = 0.999}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(qb_prune_amount_check(&ctx, m, &bad[i]), QB_ERR_ARG);
        assert_true(strlen(qb_ctx_errmsg(&ctx)) > 0 && !strchr(qb_ctx_errmsg(&ctx), '\n'));
    }
    qb_prune_amount fine = {.heads = 0.25, .ffn = 0.25, .layers = 4};
    assert_int_equal(qb_prune_amount_check(&ctx, m, &fine), QB_OK);
    /* irregular selections, model unchanged */
    int64_t p0 = qb_model_params(m);
    qb_prune_selection s;
    assert_int_equal(qb_prune_selection_all(&ctx, m, &s), QB_OK);
    s.keep_head[0] = 0; /* group 0 keeps 1 head, the others 2 */
    assert_int_equal(qb_prune_structured_apply(&ctx, m, &s), QB_ERR_ARG);
    s.keep_head[0] = 1;
    s.keep_kv[1] = 0; /* a KV head removed with its query heads kept */
    assert_int_equal(qb_prune_structured_apply(&ctx, m, &s), QB_ERR_ARG);
    s.keep_kv[1] = 1;
    s.keep_neuron[3] = 0; /* block 0 keeps 171 neurons, the others 172 */
    assert_int_equal(qb_prune_structured_apply(&ctx, m, &s), QB_ERR_ARG);
    s.keep_neuron[3] = 1;
    memset(s.keep_layer, 0, 5);
    assert_int_equal(qb_prune_structured_apply(&ctx, m, &s), QB_ERR_ARG);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "every block"));
    memset(s.keep_layer, 1, 5);
    memset(s.keep_neuron, 0, 5 * 172);
    assert_int_equal(qb_prune_structured_apply(&ctx, m, &s), QB_ERR_ARG);
    memset(s.keep_neuron, 1, 5 * 172);
    memset(s.keep_head, 0, 5 * 8);
    memset(s.keep_kv, 0, 5 * 4);
    assert_int_equal(qb_prune_structured_apply(&ctx, m, &s), QB_ERR_ARG);
    s.n_heads = 6;
    assert_int_equal(qb_prune_structured_apply(&ctx, m, &s), QB_ERR_ARG);
    assert_int_equal(qb_model_params(m), p0);
    assert_int_equal(m->cfg.n_heads, 8);
    qb_prune_selection_free(&s);
    /* a tensor held in a custom format: prune before quantizing */
    qb_format nf4;
    assert_int_equal(qb_format_parse(&ctx, "nf4", &nf4), QB_OK);
    assert_int_equal(qb_tensor_quantize(&ctx, m->layers[0].wq, &nf4, NULL), QB_OK);
    assert_int_equal(qb_prune_selection_all(&ctx, m, &s), QB_OK);
    assert_int_equal(qb_prune_structured_apply(&ctx, m, &s), QB_ERR_UNSUPPORTED);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "blk.0.attn_q.weight"));
    qb_prune_selection_free(&s);
    assert_int_equal(qb_tensor_restore(&ctx, m->layers[0].wq), QB_OK);
    /* a view */
    qb_model *v;
    assert_int_equal(qb_model_view_new(&ctx, m, &v), QB_OK);
    assert_int_equal(qb_prune_amount_check(&ctx, v, &fine), QB_ERR_UNSUPPORTED);
    assert_int_equal(qb_prune_selection_all(&ctx, m, &s), QB_OK);
    assert_int_equal(qb_prune_structured_apply(&ctx, v, &s), QB_ERR_UNSUPPORTED);
    qb_prune_selection_free(&s);
    qb_model_view_free(v);
    /* a text shorter than one window: one line naming the file */
    char path[] = "/tmp/qb-prune-short-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "Once upon a time.", 17), 17);
    close(fd);
    qb_prune_structured_opts o = {.n_ctx = 64};
    assert_int_equal(qb_prune_structured(&ctx, m, path, &fine, &o, NULL, NULL), QB_ERR_ARG);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), path));
    unlink(path);
    assert_int_equal(qb_prune_structured(&ctx, m, "/nonexistent/text.txt", &fine, &o, NULL, NULL), QB_ERR_IO);
    assert_int_equal(qb_model_params(m), p0);
    qb_model_close(m);
    /* fused matrices (Phi-3), experts (Mixtral), a sliding-window pattern (Gemma 2, blocks) */
    struct { const char *dir; qb_prune_amount a; } arch[] = {
        {"tests/fixtures/arch/phi3", {.heads = 0.25}},
        {"tests/fixtures/arch/mixtral", {.heads = 0.25}},
        {"tests/fixtures/arch/gemma2", {.layers = 1}},
    };
    for (size_t i = 0; i < sizeof arch / sizeof arch[0]; i++) {
        qb_model *am = NULL;
        assert_int_equal(qb_model_open(&ctx, arch[i].dir, NULL, &am), QB_OK);
        assert_int_equal(qb_prune_amount_check(&ctx, am, &arch[i].a), QB_ERR_UNSUPPORTED);
        print_message("%s: %s\n", arch[i].dir, qb_ctx_errmsg(&ctx));
        qb_model_close(am);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity),       cmocka_unit_test(test_heads_per_group),
        cmocka_unit_test(test_kv_group),       cmocka_unit_test(test_neurons),
        cmocka_unit_test(test_layer_and_all),  cmocka_unit_test(test_docs_gqa_f16),
        cmocka_unit_test(test_select),         cmocka_unit_test(test_job),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
