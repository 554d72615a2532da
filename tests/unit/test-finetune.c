/* test-finetune.c — fine-tuning against a teacher (core/method/finetune.h) and what it is built
 * on (core/infer/optim.h, core/util/ckpt_file.h):
 * - four steps of quantization-aware fine-tuning with distillation on stories260K follow
 *   PyTorch step for step (tests/fixtures/train/finetune, made by scripts/make-train-fixtures.py:
 *   fake quantization with the straight-through estimator, KL at temperature 2 + cross-entropy,
 *   torch.optim.AdamW with decay on matrices, warm-up + cosine, clip_grad_norm_): each step's
 *   losses, gradient norm and learning rate, and the latent weights after the last step; the
 *   same with learnable clip factors per group (tests/fixtures/train/finetune-clip);
 * - a run stopped and resumed from its checkpoint ends bit for bit where an uninterrupted one
 *   does; checkpoints of another run, torn, altered or not checkpoints at all are refused with
 *   one line and change nothing;
 * - healing trains norms only, leaves every matrix's bytes as they were and lowers the KL
 *   divergence from the teacher on held-out text;
 * - the packed result holds exactly the fake quantization the last step ran;
 * - bad input: too little text, a teacher of another vocabulary, a plan that quantizes nothing. */
#include "testutil.h"
#include "core/method/finetune.h"
#include "core/infer/optim.h"
#include "core/infer/train.h"
#include "core/eval/eval.h"
#include "core/quant/apply.h"
#include "core/quant/plan.h"
#include "core/util/ckpt_file.h"
#include "core/method/fold.h"
#include "core/method/fakequant.h"
#include "core/infer/matmul.h"

#include <jansson.h>
#include <math.h>
#include <unistd.h>


static qb_model *open_stories(void)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = NULL;
    if (qb_model_open(&ctx, qbt_model_path("stories260K/stories260K.bin"), NULL, &m) != QB_OK)
        fail_msg("%s", qb_ctx_errmsg(&ctx));
    return m;
}

/* The fixture's plan ("*attn_q.weight = int3-g32-asym", ...) applied by round-to-nearest. */
static void apply_fixture_plan(qb_model *m, json_t *ix)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    char text[1024] = "";
    json_t *rule;
    size_t i;
    json_array_foreach(json_object_get(ix, "plan"), i, rule) {
        char line[128];
        snprintf(line, sizeof line, "*%s.weight = %s\n", json_string_value(json_array_get(rule, 0)),
                 json_string_value(json_array_get(rule, 1)));
        strcat(text, line);
    }
    qb_plan plan;
    assert_int_equal(qb_plan_parse(&ctx, "fixture", text, &plan), QB_OK);
    assert_int_equal(qb_plan_apply_rtn(&ctx, m, &plan, NULL), QB_OK);
    qb_plan_free(&plan);
}

static double num(json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

static void check_close(const char *what, int step, double ours, double ref, double tol)
{
    double rel = fabs(ours - ref) / fmax(fabs(ref), 1e-12);
    print_message("step %d %-9s ours %.7f PyTorch %.7f (rel %.1e)\n", step, what, ours, ref, rel);
    if (!(rel <= tol)) fail_msg("step %d: %s %.9g vs PyTorch %.9g", step, what, ours, ref);
}

/* The latent weights against PyTorch's (file: the fixture's, in index.json's "latent" order):
 * per tensor, the update from the original values, relative to PyTorch's. */
static void compare_latent(const qb_finetune *ft, const qb_model *teacher, json_t *ix, const char *file, double tol)
{
    size_t flen;
    float *lat_ref = (float *)qbt_slurp(file, &flen);
    size_t off = 0, clip_differ = 0, clip_total = 0;
    double worst = 0;
    json_t *ent;
    size_t i;
    json_array_foreach(json_object_get(ix, "latent"), i, ent) {
        const char *name = json_string_value(json_array_get(ent, 0));
        size_t n = 0;
        const float *ours = qb_finetune_latent(ft, name, &n);
        if (!ours) fail_msg("%s does not train", name);
        float *orig = malloc(n * sizeof *orig); /* where it started: the original values, clip factors 1 */
        if (strchr(name, '#')) {
            for (size_t k = 0; k < n; k++) orig[k] = 1.0f;
        } else {
            const qb_tensor *t = qb_model_find_tensor(teacher, name);
            assert_non_null(t);
            if (t->n_dims <= 1) qb_tensor_get_row(t, 0, orig);
            else qb_tensor_source_rows(t, 0, qb_tensor_rows(t), orig);
        }
        double num2 = 0, den2 = 0;
        for (size_t k = 0; k < n; k++) {
            double d_ref = (double)lat_ref[off + k] - orig[k], d_ours = (double)ours[k] - orig[k];
            num2 += (d_ours - d_ref) * (d_ours - d_ref);
            den2 += d_ref * d_ref;
        }
        const double rel = sqrt(num2 / fmax(den2, 1e-30));
        if (strchr(name, '#')) {
            /* clip factors: a group whose factor's gradient is a near-cancelling sum over its
               weights can get the other sign from float-level differences, and Adam's first
               steps move by about ±lr whatever the gradient's size; count the groups that
               differ instead: at most 3% of them (one always allowed) by more than 1e-4 after the
               exact steps, 2e-3 at the end, when the runs have drifted */
            const bool exact = tol <= 1e-3;
            const float near = exact ? 1e-4f : 2e-3f;
            size_t differ = 0;
            for (size_t k = 0; k < n; k++) differ += fabsf(ours[k] - lat_ref[off + k]) > near;
            clip_differ += differ;
            clip_total += n;
            if (differ > 1 + n * 3 / 100)
                fail_msg("%s: %s: %zu of %zu clip factors differ from PyTorch's", file, name, differ, n);
        } else {
            worst = fmax(worst, rel);
            if (!(rel <= tol)) fail_msg("%s: %s's update differs from PyTorch's by %.3g (relative)", file, name, rel);
        }
        off += n;
        free(orig);
    }
    assert_int_equal(off * sizeof(float), flen);
    print_message("%s: latent updates, worst relative difference from PyTorch's %.2e", file, worst);
    if (clip_total)
        print_message("; clip factors: %zu of %zu differ by more than %g", clip_differ, clip_total, tol <= 1e-3 ? 1e-4 : 2e-3);
    print_message("\n");
    free(lat_ref);
}

/* A PyTorch run of the fixture in dir (index.json, latent-step2.f32, latent.f32) step by step. */
static void matches_pytorch(const char *dir)
{
    qbt_need(qbt_model_path("stories260K/stories260K.bin"));
    json_error_t jerr;
    char path[256], step2[256], last[256];
    snprintf(path, sizeof path, "%s/index.json", dir);
    snprintf(step2, sizeof step2, "%s/latent-step2.f32", dir);
    snprintf(last, sizeof last, "%s/latent.f32", dir);
    json_t *ix = json_load_file(path, 0, &jerr);
    if (!ix) fail_msg("%s: %s", path, jerr.text);
    json_t *P = json_object_get(ix, "params");
    qb_model *student = open_stories(), *teacher = open_stories();
    apply_fixture_plan(student, ix);
    qb_finetune_params p = {.steps = (int)num(P, "steps"), .batch = (int)num(P, "batch"), .seq = (int)num(P, "seq"),
                            .lr = (float)num(P, "lr"), .min_lr_ratio = (float)num(P, "min_lr_ratio"),
                            .warmup = (int)num(P, "warmup"), .clip = (float)num(P, "clip"),
                            .weight_decay = (float)num(P, "weight_decay"), .kd = (float)num(P, "kd"),
                            .ce = (float)num(P, "ce"), .tau = (float)num(P, "tau"),
                            .learn_clip = json_is_true(json_object_get(P, "learn_clip")),
                            .clip_lr = (float)num(P, "clip_lr")};
    /* the sequences, one after another: (steps, batch, seq) */
    const int S = p.steps, B = p.batch, T = p.seq;
    int32_t *seqs = malloc((size_t)S * B * T * sizeof *seqs);
    for (int s = 0; s < S; s++)
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++)
                seqs[((size_t)s * B + b) * T + t] = (int32_t)json_integer_value(
                    json_array_get(json_array_get(json_array_get(json_object_get(ix, "sequences"), s), b), t));
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_finetune *ft;
    if (qb_finetune_begin(&ctx, student, teacher, seqs, S * B * T, &p, &ft) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    const int exact = (int)num(P, "exact_steps");
    for (int s = 0; s < S; s++) {
        qb_finetune_report r;
        if (qb_finetune_step_on(&ctx, ft, seqs + (size_t)s * B * T, B, &r) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
        json_t *ref = json_array_get(json_object_get(ix, "steps"), (size_t)s);
        /* after the exact steps, a latent weight that float-level differences in the update put
           on the other side of a rounding boundary quantizes to the neighbouring level, and the
           runs drift apart slowly: 1e-2 */
        const double tol = s < exact ? 1e-5 : 1e-2;
        check_close("loss", s + 1, r.loss, num(ref, "loss"), tol);
        check_close("kd", s + 1, r.kd, num(ref, "kd"), 10 * tol);
        check_close("ce", s + 1, r.ce, num(ref, "ce"), tol);
        check_close("|grad|", s + 1, r.grad_norm, num(ref, "grad_norm"), 10 * tol);
        check_close("lr", s + 1, r.lr, num(ref, "lr"), 1e-6);
        if (s + 1 == exact) compare_latent(ft, teacher, ix, step2, 1e-3);
    }
    compare_latent(ft, teacher, ix, last, 5e-2);
    /* the packed result holds the fake quantization of the final latent values */
    size_t n;
    const float *wq_lat = qb_finetune_latent(ft, "blk.2.attn_q.weight", &n);
    float *expect = malloc(n * sizeof *expect), *got = malloc(n * sizeof *got);
    qb_tensor *tq = (qb_tensor *)qb_model_find_tensor(student, "blk.2.attn_q.weight");
    const size_t rb = qb_format_row_bytes(&tq->fmt, tq->ne[0]);
    void *packed = malloc(rb * (size_t)qb_tensor_rows(tq));
    size_t ng;
    const float *alpha = qb_finetune_latent(ft, "blk.2.attn_q.weight#alpha", &ng);
    if (alpha) { /* the format's grid for the learned range */
        const float *beta = qb_finetune_latent(ft, "blk.2.attn_q.weight#beta", &ng);
        qb_fq_forward(&tq->fmt, wq_lat, qb_tensor_rows(tq), tq->ne[0], NULL, alpha, beta, expect);
        size_t moved = 0;
        for (size_t k = 0; k < ng; k++) moved += alpha[k] != 1.0f || beta[k] != 1.0f;
        print_message("blk.2.attn_q: %zu of %zu groups' clip factors moved\n", moved, ng);
        assert_true(moved > 0);
    } else {
        assert_int_equal(qb_quantize_matrix(&ctx, &tq->fmt, wq_lat, qb_tensor_rows(tq), tq->ne[0], packed, NULL), QB_OK);
        for (int64_t r = 0; r < qb_tensor_rows(tq); r++)
            qb_dequantize_row(&tq->fmt, (uint8_t *)packed + r * rb, expect + r * tq->ne[0], tq->ne[0]);
    }
    assert_int_equal(qb_finetune_finish(&ctx, ft), QB_OK);
    qb_tensor_current_rows(tq, 0, qb_tensor_rows(tq), got);
    assert_memory_equal(expect, got, n * sizeof *got);
    char fmt[64];
    qb_format_name(&tq->fmt, fmt, sizeof fmt);
    assert_string_equal(fmt, "int3-g32-asym");
    free(packed), free(expect), free(got), free(seqs);
    qb_finetune_end(ft);
    qb_model_close(student);
    qb_model_close(teacher);
    json_decref(ix);
}

static void test_matches_pytorch(void **state)
{
    (void)state;
    matches_pytorch("tests/fixtures/train/finetune");
}

/* The same with learnable clip factors per group (fakequant.h's α, β), packed with them. */
static void test_matches_pytorch_clip(void **state)
{
    (void)state;
    matches_pytorch("tests/fixtures/train/finetune-clip");
}

/* ---- checkpoints ------------------------------------------------------------------------- */

static int32_t *sample_text(const qb_model *m, int *n)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int32_t *tok = NULL;
    assert_int_equal(qb_eval_load_text(&ctx, m, qbt_model_path("stories260K/ppl-sample.txt"), &tok, n), QB_OK);
    return tok;
}

static const qb_finetune_params RESUME_P = {.steps = 6, .batch = 2, .seq = 32, .lr = 2e-3f, .min_lr_ratio = 0.1f,
                                            .warmup = 1, .kd = 1, .ce = 0.3f, .tau = 1, .seed = 7, .learn_clip = true};

static qb_finetune *begin_quantized(qb_model **student, qb_model **teacher, const qb_finetune_params *p, bool heal)
{
    *student = open_stories();
    *teacher = open_stories();
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_plan plan;
    assert_int_equal(qb_plan_parse(&ctx, "t", "blk.* = int4-channel\nblk.*attn* = int3-g32-asym\n", &plan), QB_OK);
    assert_int_equal(qb_plan_apply_rtn(&ctx, *student, &plan, NULL), QB_OK);
    qb_plan_free(&plan);
    int n;
    int32_t *tok = sample_text(*student, &n);
    qb_finetune_params q = *p;
    q.heal = heal;
    qb_finetune *ft;
    if (qb_finetune_begin(&ctx, *student, *teacher, tok, n, &q, &ft) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    free(tok);
    return ft;
}

static void end_run(qb_finetune *ft, qb_model *a, qb_model *b)
{
    qb_finetune_end(ft);
    qb_model_close(a);
    qb_model_close(b);
}

static void steps(qb_finetune *ft, int k)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    for (int i = 0; i < k; i++)
        if (qb_finetune_step(&ctx, ft, NULL, NULL) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
}

static const char *TRAINED[] = {"blk.0.attn_q.weight", "blk.4.ffn_down.weight", "blk.3.ffn_norm.weight",
                                "output_norm.weight", "blk.1.attn_v.weight#alpha", "blk.2.ffn_up.weight#beta"};

static void test_resume_bit_for_bit(void **state)
{
    (void)state;
    qbt_need(qbt_model_path("stories260K/stories260K.bin"));
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *s1, *t1, *s2, *t2;
    qb_finetune *whole = begin_quantized(&s1, &t1, &RESUME_P, false);
    steps(whole, 6);
    char ck[] = "/tmp/qb-ft-ckpt-XXXXXX";
    int fd = mkstemp(ck);
    assert_true(fd >= 0);
    close(fd);
    qb_finetune *first = begin_quantized(&s2, &t2, &RESUME_P, false);
    steps(first, 3);
    assert_int_equal(qb_finetune_save(&ctx, first, ck), QB_OK);
    end_run(first, s2, t2);
    qb_finetune *second = begin_quantized(&s2, &t2, &RESUME_P, false);
    if (qb_finetune_resume(&ctx, second, ck) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    assert_int_equal(qb_finetune_steps_done(second), 3);
    steps(second, 3);
    for (size_t i = 0; i < sizeof TRAINED / sizeof *TRAINED; i++) {
        size_t na, nb;
        const float *a = qb_finetune_latent(whole, TRAINED[i], &na), *b = qb_finetune_latent(second, TRAINED[i], &nb);
        assert_non_null(a);
        assert_non_null(b);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, na * sizeof *a);
    }
    /* and it moved: not a comparison of two untouched copies */
    qb_train_params *orig;
    assert_int_equal(qb_train_params_new(&ctx, t1, true, &orig), QB_OK);
    size_t n;
    const float *a = qb_finetune_latent(whole, "blk.0.attn_q.weight", &n);
    assert_memory_not_equal(a, orig->layers[0].wq, n * sizeof *a);
    qb_train_params_free(orig);
    print_message("6 steps straight and 3 + checkpoint + 3: the same latent bytes\n");
    /* a run that is done refuses another step */
    assert_int_equal(qb_finetune_step(&ctx, whole, NULL, NULL), QB_ERR_ARG);
    end_run(whole, s1, t1);
    end_run(second, s2, t2);

    /* refusals, each leaving the run as it was */
    qb_finetune_params other = RESUME_P;
    other.lr = 1e-3f;
    qb_finetune *ft = begin_quantized(&s2, &t2, &other, false);
    assert_int_equal(qb_finetune_resume(&ctx, ft, ck), QB_ERR_ARG);
    print_message("another run's checkpoint: %s\n", qb_ctx_errmsg(&ctx));
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "params.lr"));
    assert_int_equal(qb_finetune_steps_done(ft), 0);
    end_run(ft, s2, t2);
    ft = begin_quantized(&s2, &t2, &RESUME_P, true); /* a healing run: other tensors train */
    assert_int_not_equal(qb_finetune_resume(&ctx, ft, ck), QB_OK);
    print_message("a healing run: %s\n", qb_ctx_errmsg(&ctx));
    end_run(ft, s2, t2);

    size_t len;
    char *bytes = qbt_slurp(ck, &len);
    ft = begin_quantized(&s2, &t2, &RESUME_P, false);
    struct {
        const char *what;
        size_t len;
        long flip; /* byte to change, -1: none */
        const char *expect;
    } bad[] = {{"torn", len - 1000, -1, "truncated"},
               {"cut in its header", 20, -1, "truncated"},
               {"one byte changed", len, (long)len / 2, "SHA-256"},
               {"not a checkpoint", 0, -1, "not a quantbench checkpoint"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *copy = malloc(len);
        memcpy(copy, bytes, len);
        if (bad[i].flip >= 0) copy[bad[i].flip] ^= 0x40;
        const char *data = bad[i].len ? copy : "hello, world\n";
        char *path = qbt_write_temp("ckpt", data, bad[i].len ? bad[i].len : 13);
        assert_int_not_equal(qb_finetune_resume(&ctx, ft, path), QB_OK);
        print_message("%-18s %s\n", bad[i].what, qb_ctx_errmsg(&ctx));
        assert_non_null(strstr(qb_ctx_errmsg(&ctx), bad[i].expect));
        assert_non_null(strstr(qb_ctx_errmsg(&ctx), path));
        assert_null(strchr(qb_ctx_errmsg(&ctx), '\n'));
        assert_int_equal(qb_finetune_steps_done(ft), 0);
        unlink(path);
        free(path);
        free(copy);
    }
    end_run(ft, s2, t2);
    free(bytes);
    unlink(ck);
}

/* The container alone: what it writes it reads back. */
static void test_ckpt_roundtrip(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    float a[3] = {1.5f, -2.0f, 1e-30f}, b[1] = {NAN};
    qb_ckpt_array arr[2] = {{.name = "x", .data = a, .count = 3}, {.name = "odd-length name", .data = b, .count = 1}};
    char path[] = "/tmp/qb-ckpt-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    assert_int_equal(qb_ckpt_write(&ctx, path, "{\"k\":1}", arr, 2), QB_OK);
    qb_ckpt *c;
    assert_int_equal(qb_ckpt_read(&ctx, path, &c), QB_OK);
    assert_string_equal(c->meta, "{\"k\":1}");
    assert_int_equal(c->n_arrays, 2);
    assert_memory_equal(qb_ckpt_find(c, "x")->data, a, sizeof a);
    assert_true(isnan(qb_ckpt_find(c, "odd-length name")->data[0]));
    assert_null(qb_ckpt_find(c, "y"));
    qb_ckpt_free(c);
    unlink(path);
}

/* ---- healing ----------------------------------------------------------------------------- */

static double kld_on_tail(const qb_model *teacher, const qb_model *student)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int n;
    int32_t *tok = sample_text(student, &n);
    qb_eval_opts o = {.n_ctx = 64};
    qb_kld_result r;
    if (qb_eval_kld(&ctx, teacher, student, tok, n, &o, &r) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    free(tok);
    return r.kld_mean;
}

static void test_heal(void **state)
{
    (void)state;
    qbt_need(qbt_model_path("stories260K/stories260K.bin"));
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *s, *t;
    qb_finetune_params p = {.steps = 30, .batch = 2, .seq = 64, .lr = 3e-3f, .min_lr_ratio = -1, .warmup = -1, .kd = -1};
    qb_finetune *ft = begin_quantized(&s, &t, &p, true);
    assert_null(qb_finetune_latent(ft, "blk.0.attn_q.weight", &(size_t){0}));
    assert_non_null(qb_finetune_latent(ft, "blk.0.attn_norm.weight", &(size_t){0}));
    const double before = kld_on_tail(t, s);
    const qb_tensor *wq = qb_model_find_tensor(s, "blk.1.attn_v.weight");
    const size_t nb = wq->nbytes;
    void *bytes = malloc(nb);
    memcpy(bytes, wq->data, nb);
    float norm0 = ((const float *)qb_model_find_tensor(s, "blk.1.ffn_norm.weight")->data)[3];
    steps(ft, 30);
    assert_int_equal(qb_finetune_finish(&ctx, ft), QB_OK);
    const double after = kld_on_tail(t, s);
    print_message("healing (norms only, 30 steps): KLD from the teacher %.5f -> %.5f\n", before, after);
    assert_memory_equal(wq->data, bytes, nb);
    float norm1 = ((const float *)qb_model_find_tensor(s, "blk.1.ffn_norm.weight")->data)[3];
    assert_true(norm0 != norm1);
    assert_true(after < before * 0.97);
    free(bytes);
    end_run(ft, s, t);
}

/* ---- bad input --------------------------------------------------------------------------- */

static void test_bad_input(void **state)
{
    (void)state;
    qbt_need(qbt_model_path("stories260K/stories260K.bin"));
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *s = open_stories(), *t = open_stories();
    qb_finetune *ft = NULL;
    qb_finetune_params p = {.steps = 2, .seq = 64, .min_lr_ratio = -1, .warmup = -1, .kd = -1};
    int32_t few[10] = {1, 5, 6, 7, 8, 9, 10, 11, 12, 13};
    /* nothing quantized: nothing for QAT to train through */
    int n;
    int32_t *tok = sample_text(s, &n);
    assert_int_equal(qb_finetune_begin(&ctx, s, t, tok, n, &p, &ft), QB_ERR_ARG);
    print_message("%s\n", qb_ctx_errmsg(&ctx));
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "quantizes nothing"));
    assert_null(ft);
    /* too little text for one window */
    p.heal = true;
    assert_int_equal(qb_finetune_begin(&ctx, s, t, few, 10, &p, &ft), QB_ERR_ARG);
    print_message("%s\n", qb_ctx_errmsg(&ctx));
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "10"));
    /* a parameter out of range */
    qb_finetune_params q = p;
    q.warmup = 5;
    assert_int_equal(qb_finetune_begin(&ctx, s, t, tok, n, &q, &ft), QB_ERR_ARG);
    print_message("%s\n", qb_ctx_errmsg(&ctx));
    /* a teacher of another vocabulary */
    const char *big = qbt_model_path("qb-docs-26m/qb-docs-26m-f16.gguf");
    if (access(big, R_OK) == 0) {
        qb_model *other;
        assert_int_equal(qb_model_open(&ctx, big, NULL, &other), QB_OK);
        assert_int_equal(qb_finetune_begin(&ctx, s, other, tok, n, &p, &ft), QB_ERR_ARG);
        print_message("%s\n", qb_ctx_errmsg(&ctx));
        assert_non_null(strstr(qb_ctx_errmsg(&ctx), "vocabulary"));
        qb_model_close(other);
    }
    free(tok);
    qb_model_close(s);
    qb_model_close(t);
}

/* ---- the optimizer's pieces -------------------------------------------------------------- */

static void test_schedule(void **state)
{
    (void)state;
    qb_adamw_cfg c = {.lr = 1.0f, .min_lr_ratio = 0.1f, .warmup = 4, .steps = 14};
    assert_float_equal(qb_lr_at(&c, 0), 0.25, 1e-7);
    assert_float_equal(qb_lr_at(&c, 3), 1.0, 1e-7);
    assert_float_equal(qb_lr_at(&c, 4), 1.0, 1e-7);
    assert_float_equal(qb_lr_at(&c, 9), 0.55, 1e-6); /* halfway down the cosine */
    assert_float_equal(qb_lr_at(&c, 14), 0.1, 1e-7);
    float g0[2] = {3, 0}, g1[1] = {4};
    float *g[2] = {g0, g1};
    size_t n[2] = {2, 1};
    double norm = qb_grad_norm(g, n, 2);
    assert_float_equal(norm, 5.0, 1e-9);
    qb_grad_clip(g, n, 2, norm, 1.0f);
    assert_float_equal(g0[0], 0.6, 1e-6);
    assert_float_equal(g1[0], 0.8, 1e-6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_ckpt_roundtrip),
        cmocka_unit_test(test_matches_pytorch),
        cmocka_unit_test(test_matches_pytorch_clip),
        cmocka_unit_test(test_resume_bit_for_bit),
        cmocka_unit_test(test_heal),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
