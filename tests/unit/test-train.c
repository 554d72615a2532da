/* test-train.c — the training pass (core/infer/train.h):
 * - its forward gives the forward pass's logits (which match llama2.c and transformers) on
 *   stories260K and on every dense architecture fixture (Llama 3.1 scaling, Qwen2 biases,
 *   YaRN, Qwen3 q/k norms, Gemma 2 soft-caps / post-norms / windows, Gemma 3), and on
 *   qb-docs-26m, whose products take the parallel path;
 * - its gradients equal PyTorch autograd's on stories260K (tests/fixtures/train, made by
 *   scripts/make-train-fixtures.py: mean next-token cross-entropy over llama2.c's 32 tokens),
 *   every tensor within 1e-3 relative, and the loss within 1e-5;
 * - on the fixtures whose features stories260K lacks, directional finite differences of the
 *   loss agree with the gradient of every tensor (1e-2: a float forward);
 * - one block alone (qb_train_block_*): directional differences of a block-level loss agree
 *   with the input's and every parameter's gradient;
 * - with activation recomputation the gradients are the same bits (stories260K, Gemma 2, Qwen3)
 *   and the pass keeps less;
 * - models it cannot train yet (experts, fused matrices) are refused by name. */
#include "testutil.h"
#include "core/infer/train.h"
#include "core/infer/backward.h"
#include "core/infer/infer.h"
#include "core/model/model.h"

#include <jansson.h>
#include <math.h>

static qb_model *open_model(const char *path)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = NULL;
    if (qb_model_open(&ctx, path, NULL, &m) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    return m;
}

static int32_t *some_tokens(const qb_model *m, int T)
{
    int32_t *tok = malloc((size_t)T * sizeof *tok);
    uint32_t s = 99;
    for (int t = 0; t < T; t++) {
        s = s * 1664525u + 1013904223u;
        tok[t] = (int32_t)((s >> 8) % (uint32_t)m->cfg.vocab_size);
    }
    return tok;
}

/* The training forward against qb_infer_eval on T tokens: max |Δ| relative to the logits' scale. */
static void forward_matches(const char *path, int T)
{
    qb_model *m = open_model(path);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int32_t *tok = some_tokens(m, T);
    const size_t n = (size_t)T * m->cfg.vocab_size;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    qb_infer *inf;
    assert_int_equal(qb_infer_new(&ctx, m, T, T, &inf), QB_OK);
    assert_int_equal(qb_infer_eval(&ctx, inf, tok, T, 0, a, T), QB_OK);
    qb_infer_free(inf);
    qb_train_params *p;
    qb_train_pass *tp;
    if (qb_train_params_new(&ctx, m, true, &p) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    assert_int_equal(qb_train_pass_new(&ctx, m, T, &tp), QB_OK);
    assert_int_equal(qb_train_forward(&ctx, tp, p, tok, T, b), QB_OK);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs((double)a[i]));
    }
    print_message("%-48s training forward vs forward pass: max |diff| %.2e (logits up to %.1f)\n", path, worst, scale);
    if (!(worst <= 1e-4 * fmax(1.0, scale))) fail_msg("%s: training forward differs by %g", path, worst);
    qb_train_pass_free(tp);
    qb_train_params_free(p);
    free(a), free(b), free(tok);
    qb_model_close(m);
}

static void test_forward_matches_inference(void **state)
{
    (void)state;
    qbt_need(qbt_model_path("stories260K/stories260K.bin"));
    forward_matches(qbt_model_path("stories260K/stories260K.bin"), 24);
    const char *arch[] = {"llama31", "qwen2", "qwen2yarn", "qwen3", "gemma2", "gemma3"};
    for (size_t i = 0; i < sizeof arch / sizeof *arch; i++) {
        char dir[128];
        snprintf(dir, sizeof dir, "tests/fixtures/arch/%s", arch[i]);
        forward_matches(dir, 20);
    }
    /* products big enough for the parallel path (w transposed in groups of rows: the output
     * matrix in four), attention over two blocks of rows */
    qbt_need(qbt_model_path("qb-docs-26m/hf"));
    forward_matches(qbt_model_path("qb-docs-26m/hf"), 40);
}

static void test_refusals(void **state)
{
    (void)state;
    const char *arch[] = {"phi3", "mixtral", "qwen3moe"};
    const char *why[] = {"fused", "experts", "experts"};
    for (int i = 0; i < 3; i++) {
        char dir[128];
        snprintf(dir, sizeof dir, "tests/fixtures/arch/%s", arch[i]);
        qb_model *m = open_model(dir);
        qb_ctx ctx;
        qb_ctx_init(&ctx);
        qb_train_params *p = (qb_train_params *)1;
        assert_int_equal(qb_train_params_new(&ctx, m, true, &p), QB_ERR_UNSUPPORTED);
        assert_null(p);
        if (!strstr(ctx.errmsg, why[i]) || !strstr(ctx.errmsg, dir)) fail_msg("message: %s", ctx.errmsg);
        qb_train_pass *tp = (qb_train_pass *)1;
        assert_int_equal(qb_train_pass_new(&ctx, m, 8, &tp), QB_ERR_UNSUPPORTED);
        assert_null(tp);
        qb_model_close(m);
    }
}

/* the arrays of p in the fixture's order: token_embd, per layer the nine llama2.c tensors, output_norm */
static float *grad_of(const qb_train_params *g, const char *name)
{
    int l;
    char what[48];
    if (!strcmp(name, "token_embd.weight")) return g->tok_embd;
    if (!strcmp(name, "output_norm.weight")) return g->output_norm;
    if (sscanf(name, "blk.%d.%47[^.]", &l, what) != 2 || l < 0 || l >= g->n_layers) return NULL;
    const qb_train_layer *L = &g->layers[l];
    const char *names[] = {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_down", "ffn_up"};
    float *arrs[] = {L->attn_norm, L->wq, L->wk, L->wv, L->wo, L->ffn_norm, L->w_gate, L->w_down, L->w_up};
    for (int i = 0; i < 9; i++)
        if (!strcmp(what, names[i])) return arrs[i];
    return NULL;
}

static void test_gradients_match_pytorch(void **state)
{
    (void)state;
    qbt_need(qbt_model_path("stories260K/stories260K.bin"));
    json_error_t jerr;
    json_t *ix = json_load_file("tests/fixtures/train/stories260K/index.json", 0, &jerr);
    if (!ix) fail_msg("tests/fixtures/train/stories260K/index.json: %s", jerr.text);
    size_t glen;
    float *ref = (float *)qbt_slurp("tests/fixtures/train/stories260K/grads.f32", &glen);
    qb_model *m = open_model(qbt_model_path("stories260K/stories260K.bin"));
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    json_t *jt = json_object_get(ix, "tokens");
    const int T = (int)json_array_size(jt);
    int32_t *tok = malloc((size_t)T * sizeof *tok), *tgt = malloc((size_t)T * sizeof *tgt);
    for (int t = 0; t < T; t++) {
        tok[t] = (int32_t)json_integer_value(json_array_get(jt, (size_t)t));
        if (t) tgt[t - 1] = tok[t];
    }
    tgt[T - 1] = -1; /* the last position predicts nothing */
    qb_train_params *p, *g;
    qb_train_pass *tp;
    assert_int_equal(qb_train_params_new(&ctx, m, true, &p), QB_OK);
    assert_int_equal(qb_train_params_new(&ctx, m, false, &g), QB_OK);
    assert_int_equal(qb_train_pass_new(&ctx, m, T, &tp), QB_OK);
    const size_t V = (size_t)m->cfg.vocab_size;
    float *logits = malloc((size_t)T * V * sizeof *logits), *dlog = malloc((size_t)T * V * sizeof *dlog);
    assert_int_equal(qb_train_forward(&ctx, tp, p, tok, T, logits), QB_OK);
    const double loss = qb_bw_cross_entropy(logits, tgt, T, (int)V, dlog), want = json_real_value(json_object_get(ix, "loss"));
    print_message("stories260K loss %.7f, PyTorch %.7f\n", loss, want);
    assert_true(fabs(loss - want) < 1e-5 * fabs(want));
    assert_int_equal(qb_train_backward(&ctx, tp, p, dlog, g), QB_OK);
    size_t off = 0, i;
    json_t *e;
    double worst = 0;
    json_array_foreach(json_object_get(ix, "tensors"), i, e) {
        const char *name = json_string_value(json_array_get(e, 0));
        json_t *shape = json_array_get(e, 1);
        size_t n = 1;
        for (size_t k = 0; k < json_array_size(shape); k++) n *= (size_t)json_integer_value(json_array_get(shape, k));
        const float *ours = grad_of(g, name);
        if (!ours) fail_msg("no gradient for %s", name);
        assert_true((off + n) * sizeof(float) <= glen);
        double num = 0, den = 0;
        for (size_t k = 0; k < n; k++) {
            const double d = (double)ours[k] - ref[off + k];
            num += d * d;
            den += (double)ref[off + k] * ref[off + k];
        }
        const double rel = sqrt(num / (den > 0 ? den : 1));
        worst = fmax(worst, rel);
        if (!(rel <= 1e-3)) fail_msg("%s: gradient %.3e from PyTorch's (relative)", name, rel);
        off += n;
    }
    assert_int_equal(off * sizeof(float), glen);
    print_message("stories260K: %zu gradients equal PyTorch autograd's, worst %.2e relative\n", i, worst);
    /* a second backward adds the same again */
    assert_int_equal(qb_train_backward(&ctx, tp, p, dlog, g), QB_OK);
    assert_float_equal(g->output_norm[3], 2 * ref[glen / sizeof(float) - (size_t)m->cfg.dim + 3],
                       1e-3f * fabsf(ref[glen / sizeof(float) - (size_t)m->cfg.dim + 3]) + 1e-7f);
    qb_train_params_zero(g);
    assert_true(g->tok_embd[0] == 0.0f && g->output_norm[0] == 0.0f && g->layers[0].wq[0] == 0.0f);
    qb_train_pass_free(tp);
    qb_train_params_free(p);
    qb_train_params_free(g);
    free(logits), free(dlog), free(tok), free(tgt), free(ref);
    json_decref(ix);
    qb_model_close(m);
}

/* The loss of p on (tok, tgt) through the training forward. */
static double loss_of(qb_train_pass *tp, const qb_train_params *p, const int32_t *tok, const int32_t *tgt, int T,
                      int V, float *logits)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    assert_int_equal(qb_train_forward(&ctx, tp, p, tok, T, logits), QB_OK);
    return qb_bw_cross_entropy(logits, tgt, T, V, NULL);
}

/* For each array a (n floats) of the parameters and its gradient ga: with a direction d, a
 * random one plus the gradient's signs (so that ga·d stays well above the differences' float
 * noise), (L(a + h·d) − L(a − h·d)) / 2h must equal ga·d. */
static void directional(const char *what, qb_train_pass *tp, const qb_train_params *p, float *a, const float *ga,
                        size_t n, const int32_t *tok, const int32_t *tgt, int T, int V, float *logits)
{
    float *keep = malloc(n * sizeof *keep), *d = malloc(n * sizeof *d);
    memcpy(keep, a, n * sizeof *keep);
    uint32_t s = 1234;
    double gd = 0, amax = 0;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        d[i] = (float)((s >> 8) / 16777216.0 - 0.5) + (ga[i] > 0 ? 1.0f : ga[i] < 0 ? -1.0f : 0.0f);
        gd += (double)ga[i] * d[i];
        amax = fmax(amax, fabs(keep[i]));
    }
    const double h = 2e-4 * fmax(amax, 0.05);
    for (size_t i = 0; i < n; i++) a[i] = keep[i] + (float)h * d[i];
    const double lp = loss_of(tp, p, tok, tgt, T, V, logits);
    for (size_t i = 0; i < n; i++) a[i] = keep[i] - (float)h * d[i];
    const double lm = loss_of(tp, p, tok, tgt, T, V, logits);
    memcpy(a, keep, n * sizeof *keep);
    const double fd = (lp - lm) / (2 * h);
    const double rel = fabs(fd - gd) / fmax(fabs(fd), 1e-3);
    print_message("  %-28s g·d %+.5e  finite difference %+.5e  (%.1e)\n", what, gd, fd, rel);
    if (!(rel < 1e-2)) fail_msg("%s: directional derivative %g, gradient says %g", what, fd, gd);
    free(keep), free(d);
}

static void fd_model(const char *dir)
{
    qb_model *m = open_model(dir);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    const int T = 12, V = m->cfg.vocab_size;
    int32_t *tok = some_tokens(m, T), *tgt = malloc((size_t)T * sizeof *tgt);
    for (int t = 0; t < T; t++) tgt[t] = t + 1 < T ? tok[t + 1] : -1;
    qb_train_params *p, *g;
    qb_train_pass *tp;
    assert_int_equal(qb_train_params_new(&ctx, m, true, &p), QB_OK);
    assert_int_equal(qb_train_params_new(&ctx, m, false, &g), QB_OK);
    assert_int_equal(qb_train_pass_new(&ctx, m, T, &tp), QB_OK);
    float *logits = malloc((size_t)T * V * sizeof *logits), *dlog = malloc((size_t)T * V * sizeof *dlog);
    assert_int_equal(qb_train_forward(&ctx, tp, p, tok, T, logits), QB_OK);
    qb_bw_cross_entropy(logits, tgt, T, V, dlog);
    assert_int_equal(qb_train_backward(&ctx, tp, p, dlog, g), QB_OK);
    print_message("%s:\n", dir);
    directional("token_embd", tp, p, p->tok_embd, g->tok_embd, (size_t)V * m->cfg.dim, tok, tgt, T, V, logits);
    directional("output_norm", tp, p, p->output_norm, g->output_norm, (size_t)m->cfg.dim, tok, tgt, T, V, logits);
    for (int l = 0; l < m->cfg.n_layers; l += m->cfg.n_layers > 2 ? m->cfg.n_layers - 1 : 1) {
        const qb_layer_weights *L = &m->layers[l];
#define FD_FIELD(f)                                                                                                   \
    if (p->layers[l].f) {                                                                                             \
        char w[64];                                                                                                   \
        snprintf(w, sizeof w, "blk.%d.%s", l, #f);                                                                    \
        directional(w, tp, p, p->layers[l].f, g->layers[l].f, (size_t)qb_tensor_nelements(L->f), tok, tgt, T, V,     \
                    logits);                                                                                          \
    }
        QB_LAYER_TENSORS(FD_FIELD)
#undef FD_FIELD
    }
    qb_train_pass_free(tp);
    qb_train_params_free(p);
    qb_train_params_free(g);
    free(logits), free(dlog), free(tok), free(tgt);
    qb_model_close(m);
}

static void test_finite_differences(void **state)
{
    (void)state;
    fd_model("tests/fixtures/arch/gemma2"); /* soft-caps, post-norms, GELU, windows, embedding scale */
    fd_model("tests/fixtures/arch/qwen3");  /* q/k norms */
    fd_model("tests/fixtures/arch/qwen2");  /* biases, untied output */
}

/* Gradients with activation recomputation equal those without, to the bit, on T tokens of the
 * model at path, and the pass keeps less. */
static void recompute_model(const char *path, int T)
{
    qb_model *m = open_model(path);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    const int V = m->cfg.vocab_size;
    int32_t *tok = some_tokens(m, T), *tgt = malloc((size_t)T * sizeof *tgt);
    for (int t = 0; t < T; t++) tgt[t] = t + 1 < T ? tok[t + 1] : -1;
    qb_train_params *p, *g[2];
    assert_int_equal(qb_train_params_new(&ctx, m, true, &p), QB_OK);
    float *logits = malloc((size_t)T * V * sizeof *logits), *dlog = malloc((size_t)T * V * sizeof *dlog);
    for (int r = 0; r < 2; r++) {
        qb_train_pass *tp;
        assert_int_equal(qb_train_params_new(&ctx, m, false, &g[r]), QB_OK);
        assert_int_equal(qb_train_pass_new_ex(&ctx, m, T, r == 1, &tp), QB_OK);
        assert_int_equal(qb_train_forward(&ctx, tp, p, tok, T, logits), QB_OK);
        qb_bw_cross_entropy(logits, tgt, T, V, dlog);
        assert_int_equal(qb_train_backward(&ctx, tp, p, dlog, g[r]), QB_OK);
        qb_train_pass_free(tp);
    }
    int arrays = 0;
    assert_memory_equal(g[0]->output_norm, g[1]->output_norm, (size_t)m->cfg.dim * sizeof(float));
    assert_memory_equal(g[0]->tok_embd, g[1]->tok_embd, (size_t)V * m->cfg.dim * sizeof(float));
    for (int l = 0; l < m->cfg.n_layers; l++) {
#define SAME_FIELD(f)                                                                                                 \
    if (g[0]->layers[l].f) {                                                                                          \
        assert_memory_equal(g[0]->layers[l].f, g[1]->layers[l].f,                                                     \
                            (size_t)qb_tensor_nelements(m->layers[l].f) * sizeof(float));                             \
        arrays++;                                                                                                     \
    }
        QB_LAYER_TENSORS(SAME_FIELD)
#undef SAME_FIELD
    }
    const size_t all = qb_train_acts_bytes(m, T, false), one = qb_train_acts_bytes(m, T, true);
    print_message("%s: %d block gradients identical with recomputation; activations %zu -> %zu bytes\n", path, arrays,
                  all, one);
    assert_true(one < all);
    qb_train_params_free(p);
    qb_train_params_free(g[0]);
    qb_train_params_free(g[1]);
    free(logits), free(dlog), free(tok), free(tgt);
    qb_model_close(m);
}

static void test_recompute(void **state)
{
    (void)state;
    qbt_need(qbt_model_path("stories260K/stories260K.bin"));
    recompute_model(qbt_model_path("stories260K/stories260K.bin"), 32);
    recompute_model("tests/fixtures/arch/gemma2", 12); /* post-norms, windows, soft-caps */
    recompute_model("tests/fixtures/arch/qwen3", 12);  /* q/k norms */
}

/* Σ r ⊙ (block l of x): the loss a block-wise method sees, through qb_train_block_forward. */
static double block_loss(qb_train_pass *tp, int l, const qb_train_layer *P, const float *x, const float *r, int T,
                         int dim)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    float *y = malloc(sizeof(float) * T * dim);
    memcpy(y, x, sizeof(float) * T * dim);
    assert_int_equal(qb_train_block_forward(&ctx, tp, l, P, y, T), QB_OK);
    double L = 0;
    for (int i = 0; i < T * dim; i++) L += (double)r[i] * y[i];
    free(y);
    return L;
}

/* One block alone (the API learned rounding uses): directional differences of Σ r ⊙ out
 * against the input's gradient and every parameter's, on gemma2 (post-norms) and qwen2 (biases). */
static void test_block(void **state)
{
    (void)state;
    const char *dirs[2] = {"tests/fixtures/arch/gemma2", "tests/fixtures/arch/qwen2"};
    for (int k = 0; k < 2; k++) {
        qb_model *m = open_model(dirs[k]);
        qb_ctx ctx;
        qb_ctx_init(&ctx);
        const int T = 10, dim = m->cfg.dim, l = 1;
        qb_train_params *p, *g;
        qb_train_pass *tp;
        assert_int_equal(qb_train_params_new(&ctx, m, true, &p), QB_OK);
        assert_int_equal(qb_train_params_new(&ctx, m, false, &g), QB_OK);
        assert_int_equal(qb_train_pass_new(&ctx, m, T, &tp), QB_OK);
        float *x = malloc(sizeof(float) * T * dim), *r = malloc(sizeof(float) * T * dim);
        float *y = malloc(sizeof(float) * T * dim), *dx = malloc(sizeof(float) * T * dim);
        uint32_t s = 5;
        for (int i = 0; i < T * dim; i++) {
            s = s * 1664525u + 1013904223u;
            x[i] = (float)((s >> 8) / 16777216.0 - 0.5) * 2.0f;
            s = s * 1664525u + 1013904223u;
            r[i] = (float)((s >> 8) / 16777216.0 - 0.5);
        }
        memcpy(y, x, sizeof(float) * T * dim);
        assert_int_equal(qb_train_block_backward(&ctx, tp, l, &p->layers[l], r, &g->layers[l]), QB_ERR_ARG);
        assert_int_equal(qb_train_block_forward(&ctx, tp, l, &p->layers[l], y, T), QB_OK);
        memcpy(dx, r, sizeof(float) * T * dim);
        assert_int_equal(qb_train_block_backward(&ctx, tp, l + 1, &p->layers[l + 1], dx, &g->layers[l + 1]), QB_ERR_ARG);
        assert_int_equal(qb_train_block_backward(&ctx, tp, l, &p->layers[l], dx, &g->layers[l]), QB_OK);
        print_message("%s block %d:\n", dirs[k], l);
        /* the input: direction d = random + sign(dx) */
        double gd = 0, h = 1e-3;
        float *d = malloc(sizeof(float) * T * dim), *xp = malloc(sizeof(float) * T * dim);
        for (int i = 0; i < T * dim; i++) {
            s = s * 1664525u + 1013904223u;
            d[i] = (float)((s >> 8) / 16777216.0 - 0.5) + (dx[i] > 0 ? 1.0f : -1.0f);
            gd += (double)dx[i] * d[i];
        }
        for (int i = 0; i < T * dim; i++) xp[i] = x[i] + (float)h * d[i];
        double lp = block_loss(tp, l, &p->layers[l], xp, r, T, dim);
        for (int i = 0; i < T * dim; i++) xp[i] = x[i] - (float)h * d[i];
        double lm = block_loss(tp, l, &p->layers[l], xp, r, T, dim);
        double fd = (lp - lm) / (2 * h);
        print_message("  input                        g·d %+.5e  finite difference %+.5e\n", gd, fd);
        assert_true(fabs(fd - gd) < 1e-2 * fabs(fd));
        /* every parameter of the block */
        const qb_layer_weights *Lw = &m->layers[l];
#define BLOCK_FD(f)                                                                                                   \
    if (p->layers[l].f) {                                                                                             \
        const size_t n = (size_t)qb_tensor_nelements(Lw->f);                                                          \
        float *a = p->layers[l].f, *ga = g->layers[l].f, *keep = malloc(n * sizeof *keep);                           \
        memcpy(keep, a, n * sizeof *keep);                                                                            \
        double gdf = 0, amax = 0;                                                                                     \
        float *dd = malloc(n * sizeof *dd);                                                                           \
        for (size_t i = 0; i < n; i++) {                                                                              \
            s = s * 1664525u + 1013904223u;                                                                           \
            dd[i] = (float)((s >> 8) / 16777216.0 - 0.5) + (ga[i] > 0 ? 1.0f : ga[i] < 0 ? -1.0f : 0.0f);            \
            gdf += (double)ga[i] * dd[i];                                                                             \
            amax = fmax(amax, fabs(keep[i]));                                                                         \
        }                                                                                                             \
        const double hh = 2e-4 * fmax(amax, 0.05);                                                                    \
        for (size_t i = 0; i < n; i++) a[i] = keep[i] + (float)hh * dd[i];                                            \
        const double l1 = block_loss(tp, l, &p->layers[l], x, r, T, dim);                                             \
        for (size_t i = 0; i < n; i++) a[i] = keep[i] - (float)hh * dd[i];                                            \
        const double l2 = block_loss(tp, l, &p->layers[l], x, r, T, dim);                                             \
        memcpy(a, keep, n * sizeof *keep);                                                                            \
        const double fdf = (l1 - l2) / (2 * hh);                                                                      \
        print_message("  %-28s g·d %+.5e  finite difference %+.5e\n", #f, gdf, fdf);                                 \
        if (!(fabs(fdf - gdf) < 1e-2 * fabs(fdf))) fail_msg("%s: block gradient of %s off", dirs[k], #f);             \
        free(keep);                                                                                                   \
        free(dd);                                                                                                     \
    }
        QB_LAYER_TENSORS(BLOCK_FD)
#undef BLOCK_FD
        free(x), free(r), free(y), free(dx), free(d), free(xp);
        qb_train_pass_free(tp);
        qb_train_params_free(p);
        qb_train_params_free(g);
        qb_model_close(m);
    }
}

static void test_bad_calls(void **state)
{
    (void)state;
    qbt_need(qbt_model_path("stories260K/stories260K.bin"));
    qb_model *m = open_model(qbt_model_path("stories260K/stories260K.bin"));
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_train_pass *tp;
    assert_int_equal(qb_train_pass_new(&ctx, m, 0, &tp), QB_ERR_ARG);
    assert_int_equal(qb_train_pass_new(&ctx, m, m->cfg.seq_len + 1, &tp), QB_ERR_ARG);
    assert_int_equal(qb_train_pass_new(&ctx, m, 8, &tp), QB_OK);
    qb_train_params *p, *g;
    assert_int_equal(qb_train_params_new(&ctx, m, true, &p), QB_OK);
    assert_int_equal(qb_train_params_new(&ctx, m, false, &g), QB_OK);
    float *logits = malloc(sizeof(float) * 9 * m->cfg.vocab_size);
    int32_t tok[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    assert_int_equal(qb_train_backward(&ctx, tp, p, logits, g), QB_ERR_ARG); /* no forward yet */
    assert_int_equal(qb_train_forward(&ctx, tp, p, tok, 9, logits), QB_ERR_ARG);
    assert_non_null(strstr(ctx.errmsg, "9 tokens"));
    tok[2] = m->cfg.vocab_size;
    assert_int_equal(qb_train_forward(&ctx, tp, p, tok, 4, logits), QB_ERR_ARG);
    assert_non_null(strstr(ctx.errmsg, "out of range"));
    /* blocks alone: a pass that keeps every block's activations lets any block that ran in
     * order go back (the head between is fine); one that recomputes only the last block */
    const int dim = m->cfg.dim;
    float *x = calloc((size_t)4 * dim, sizeof *x), *dx = calloc((size_t)4 * dim, sizeof *dx);
    for (int i = 0; i < 4 * dim; i++) x[i] = 0.01f * (float)(i % 7);
    assert_int_equal(qb_train_block_backward(&ctx, tp, 0, &p->layers[0], dx, &g->layers[0]), QB_ERR_ARG);
    assert_non_null(strstr(ctx.errmsg, "without its forward"));
    for (int l = 0; l < m->cfg.n_layers; l++)
        assert_int_equal(qb_train_block_forward(&ctx, tp, l, &p->layers[l], x, 4), QB_OK);
    assert_int_equal(qb_train_head_forward(&ctx, tp, p->output_norm, p->output, x, 4, logits), QB_OK);
    assert_int_equal(qb_train_head_backward(&ctx, tp, p->output_norm, p->output, logits, dx, NULL, NULL), QB_OK);
    for (int l = m->cfg.n_layers - 1; l >= 0; l--)
        assert_int_equal(qb_train_block_backward(&ctx, tp, l, &p->layers[l], dx, &g->layers[l]), QB_OK);
    qb_train_pass *rp;
    assert_int_equal(qb_train_pass_new_ex(&ctx, m, 8, true, &rp), QB_OK);
    assert_int_equal(qb_train_block_forward(&ctx, rp, 0, &p->layers[0], x, 4), QB_OK);
    assert_int_equal(qb_train_block_forward(&ctx, rp, 1, &p->layers[1], x, 4), QB_OK);
    assert_int_equal(qb_train_block_backward(&ctx, rp, 0, &p->layers[0], dx, &g->layers[0]), QB_ERR_ARG);
    assert_int_equal(qb_train_block_backward(&ctx, rp, 1, &p->layers[1], dx, &g->layers[1]), QB_OK);
    assert_int_equal(qb_train_head_backward(&ctx, rp, p->output_norm, p->output, logits, dx, NULL, NULL), QB_ERR_ARG);
    qb_train_pass_free(rp);
    free(x);
    free(dx);
    qb_train_pass_free(tp);
    qb_train_params_free(p);
    qb_train_params_free(g);
    free(logits);
    qb_model_close(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_matches_inference), cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_gradients_match_pytorch),   cmocka_unit_test(test_finite_differences),
        cmocka_unit_test(test_block),                     cmocka_unit_test(test_bad_calls),
        cmocka_unit_test(test_recompute),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
