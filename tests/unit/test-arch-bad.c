/* test-arch-bad.c — GGUF files whose architecture description does not fit are refused with
 * one line naming the file and the field or tensor: missing or extra tensors for the
 * architecture, expert counts, windows, RoPE scaling, unknown architectures. The files are
 * tiny models written here with the GGUF writer (weights zero, no tokenizer). */
#include "testutil.h"
#include "core/model/model.h"
#include "core/util/gguf_write.h"

#define DIM 8
#define FF 16
#define HEADS 2
#define VOCAB 4

typedef struct {
    const char *arch;
    const char *drop;   /* a tensor name (suffix after "blk.0.") not to write, or NULL */
    const char *extra;  /* an extra 1-D tensor of DIM, or NULL */
    int n_expert, n_used, n_expert_tensors; /* experts: count key, used key, experts in the 3-D tensors */
    int64_t window;     /* attention.sliding_window, or -1 for none */
    const char *scaling; /* rope.scaling.type, or NULL */
    int qkv_rows;       /* rows of a fused attn_qkv (0 = separate q/k/v) */
} spec;

static void add(qb_gguf_writer *w, const char *name, int n_dims, int64_t a, int64_t b, int64_t c)
{
    int64_t ne[4] = {a, b, c, 1};
    assert_true(qb_gguf_add_tensor(w, name, QB_TYPE_F32, n_dims, ne, NULL));
}

static char *write_model(const spec *s)
{
    qb_gguf_writer *w = qb_gguf_writer_new();
    char k[128];
#define KEY(x) (snprintf(k, sizeof k, "%s.%s", s->arch, x), k)
    assert_true(qb_gguf_set_str(w, "general.architecture", s->arch));
    assert_true(qb_gguf_set_u32(w, KEY("embedding_length"), DIM));
    assert_true(qb_gguf_set_u32(w, KEY("feed_forward_length"), FF));
    assert_true(qb_gguf_set_u32(w, KEY("block_count"), 1));
    assert_true(qb_gguf_set_u32(w, KEY("attention.head_count"), HEADS));
    assert_true(qb_gguf_set_u32(w, KEY("context_length"), 64));
    if (s->n_expert) assert_true(qb_gguf_set_u32(w, KEY("expert_count"), (uint32_t)s->n_expert));
    if (s->n_used) assert_true(qb_gguf_set_u32(w, KEY("expert_used_count"), (uint32_t)s->n_used));
    if (s->window >= 0) assert_true(qb_gguf_set_u32(w, KEY("attention.sliding_window"), (uint32_t)s->window));
    if (s->scaling) assert_true(qb_gguf_set_str(w, KEY("rope.scaling.type"), s->scaling));
#undef KEY
    add(w, "token_embd.weight", 2, DIM, VOCAB, 1);
    add(w, "output_norm.weight", 1, DIM, 1, 1);
    struct { const char *name; int n_dims; int64_t a, b, c; } t[] = {
        {"attn_norm.weight", 1, DIM, 1, 1},  {"attn_q.weight", 2, DIM, DIM, 1}, {"attn_k.weight", 2, DIM, DIM, 1},
        {"attn_v.weight", 2, DIM, DIM, 1},   {"attn_output.weight", 2, DIM, DIM, 1},
        {"ffn_norm.weight", 1, DIM, 1, 1},   {"attn_q.bias", 1, DIM, 1, 1},      {"attn_k.bias", 1, DIM, 1, 1},
        {"attn_v.bias", 1, DIM, 1, 1},       {"attn_q_norm.weight", 1, DIM / HEADS, 1, 1},
        {"attn_k_norm.weight", 1, DIM / HEADS, 1, 1},
        {"post_attention_norm.weight", 1, DIM, 1, 1}, {"post_ffw_norm.weight", 1, DIM, 1, 1},
        {"ffn_gate.weight", 2, DIM, FF, 1},  {"ffn_up.weight", 2, DIM, FF, 1},   {"ffn_down.weight", 2, FF, DIM, 1},
    };
    bool bias = !strcmp(s->arch, "qwen2"), qkn = !strcmp(s->arch, "qwen3") || !strcmp(s->arch, "qwen3moe"),
         post = !strcmp(s->arch, "gemma2");
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        const char *n = t[i].name;
        if (s->drop && !strcmp(n, s->drop)) continue;
        if (strstr(n, ".bias") && !bias) continue;
        if ((strstr(n, "attn_q_norm") || strstr(n, "attn_k_norm")) && !qkn) continue;
        if (strstr(n, "post_") && !post) continue;
        if (s->qkv_rows && (!strcmp(n, "attn_q.weight") || !strcmp(n, "attn_k.weight") || !strcmp(n, "attn_v.weight")))
            continue;
        if (s->n_expert_tensors && strstr(n, "ffn_") && strcmp(n, "ffn_norm.weight")) continue;
        char full[96];
        snprintf(full, sizeof full, "blk.0.%s", n);
        add(w, full, t[i].n_dims, t[i].a, t[i].b, t[i].c);
    }
    if (s->qkv_rows) add(w, "blk.0.attn_qkv.weight", 2, DIM, s->qkv_rows, 1);
    if (s->n_expert_tensors) {
        add(w, "blk.0.ffn_gate_inp.weight", 2, DIM, s->n_expert, 1);
        add(w, "blk.0.ffn_gate_exps.weight", 3, DIM, FF, s->n_expert_tensors);
        add(w, "blk.0.ffn_up_exps.weight", 3, DIM, FF, s->n_expert_tensors);
        add(w, "blk.0.ffn_down_exps.weight", 3, FF, DIM, s->n_expert_tensors);
    }
    if (s->extra) add(w, s->extra, 1, DIM, 1, 1);
    void *buf;
    size_t len;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    assert_int_equal(qb_gguf_write_memory(&ctx, w, &buf, &len), QB_OK);
    qb_gguf_writer_free(w);
    char *path = qbt_write_temp("archbad", buf, len);
    free(buf);
    return path;
}

static void expect(const spec *s, qb_status want, const char *msg)
{
    char *path = write_model(s);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = NULL;
    qb_model_opts o = {.skip_tokenizer = true};
    qb_status st = qb_model_open(&ctx, path, &o, &m);
    if (msg == NULL) {
        if (st != QB_OK) fail_msg("%s: %s", s->arch, qb_ctx_errmsg(&ctx));
        qb_model_close(m);
    } else if (st != want || !strstr(qb_ctx_errmsg(&ctx), msg) || !strstr(qb_ctx_errmsg(&ctx), path) ||
               strchr(qb_ctx_errmsg(&ctx), '\n')) {
        fail_msg("%s: got %s \"%s\", want %s with \"%s\"", s->arch, qb_status_name(st), qb_ctx_errmsg(&ctx),
                 qb_status_name(want), msg);
    }
    unlink(path);
    free(path);
}

static void test_good_files_open(void **state)
{
    (void)state;
    expect(&(spec){"llama", .window = -1}, QB_OK, NULL);
    expect(&(spec){"qwen2", .window = -1}, QB_OK, NULL);
    expect(&(spec){"qwen3", .window = -1}, QB_OK, NULL);
    expect(&(spec){"gemma2", .window = 4}, QB_OK, NULL);
    expect(&(spec){"phi3", .window = 0, .qkv_rows = 3 * DIM}, QB_OK, NULL);
    expect(&(spec){"llama", .window = -1, .n_expert = 4, .n_used = 2, .n_expert_tensors = 4}, QB_OK, NULL);
}

static void test_bad_files_refused(void **state)
{
    (void)state;
    expect(&(spec){"qwen2", .drop = "attn_q.bias", .window = -1}, QB_ERR_FORMAT, "missing tensor blk.0.attn_q.bias");
    expect(&(spec){"qwen3", .drop = "attn_k_norm.weight", .window = -1}, QB_ERR_FORMAT,
           "missing tensor blk.0.attn_k_norm.weight");
    expect(&(spec){"gemma2", .drop = "post_ffw_norm.weight", .window = 4}, QB_ERR_FORMAT,
           "missing tensor blk.0.post_ffw_norm.weight");
    expect(&(spec){"llama", .extra = "blk.0.attn_q_norm.weight", .window = -1}, QB_ERR_FORMAT,
           "tensor blk.0.attn_q_norm.weight is not part of the llama model");
    expect(&(spec){"llama", .window = -1, .n_expert = 4, .n_used = 5, .n_expert_tensors = 4}, QB_ERR_FORMAT,
           "llama.expert_count 4 / expert_used_count 5 do not fit");
    expect(&(spec){"llama", .window = -1, .n_expert = 4, .n_used = 2, .n_expert_tensors = 3}, QB_ERR_FORMAT,
           "missing tensor blk.0.ffn_gate_exps.3.weight");
    expect(&(spec){"qwen3moe", .window = -1}, QB_ERR_FORMAT, "qwen3moe model without qwen3moe.expert_count");
    expect(&(spec){"gemma2", .window = (int64_t)1 << 31}, QB_ERR_FORMAT,
           "gemma2.attention.sliding_window 2147483648 is out of range");
    expect(&(spec){"llama", .window = -1, .scaling = "longrope"}, QB_ERR_UNSUPPORTED, "RoPE scaling 'longrope'");
    expect(&(spec){"falcon", .window = -1}, QB_ERR_UNSUPPORTED, "architecture 'falcon' is not supported");
    expect(&(spec){"phi3", .window = 0, .qkv_rows = 2 * DIM}, QB_ERR_FORMAT, "tensor blk.0.attn_qkv.weight has shape");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_files_open),
        cmocka_unit_test(test_bad_files_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
