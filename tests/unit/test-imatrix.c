/* test-imatrix.c — importance matrices (core/calib/imatrix.h): llama.cpp's legacy .dat and the
 * later GGUF imatrix built byte by byte here from their documented layouts and read back
 * (values, ncall, counts, datasets, the importance llama-quantize derives, lookups by our
 * per-expert names), round trips (.dat → load → save gives the same bytes; GGUF both ways),
 * every kind of malformed file refused with one line naming the file and the problem, the
 * check against a model, and the collection's bookkeeping on stories260K (the values
 * themselves are compared with llama-imatrix's in tests/cli/test-imatrix.sh). */
#include "testutil.h"
#include <math.h>

#include "core/calib/imatrix.h"

/* ---- byte builders ---------------------------------------------------------------------- */

static void f32s(qbt_bytes *b, const float *v, int n) { qbt_put(b, v, (size_t)n * 4); }

/* .dat: per entry i32 name length, name, i32 ncall, i32 nval, nval floats; then i32 last call,
 * i32 dataset length, dataset (llama.cpp c392e50 examples/imatrix/imatrix.cpp save_imatrix). */
static void dat_entry(qbt_bytes *b, const char *name, int32_t ncall, const float *v, int nval)
{
    qbt_put_i32(b, (int32_t)strlen(name));
    qbt_put(b, name, strlen(name));
    qbt_put_i32(b, ncall);
    qbt_put_i32(b, nval);
    f32s(b, v, nval);
}

static const float Q[4] = {2, 4, 6, 8}, X[6] = {4, 8, 12, 16, 20, 24};

static qbt_bytes good_dat(bool trailer)
{
    qbt_bytes b = {0};
    qbt_put_i32(&b, 2);
    dat_entry(&b, "blk.0.attn_q.weight", 2, Q, 4);
    dat_entry(&b, "blk.0.ffn_up_exps.weight", 4, X, 6); /* 2 experts of 3 columns */
    if (trailer) {
        qbt_put_i32(&b, 2);
        qbt_put_i32(&b, 8);
        qbt_put(&b, "text.txt", 8);
    }
    return b;
}

/* GGUF v3: the later llama-imatrix's layout (tools/imatrix/imatrix.cpp save_imatrix). */
typedef struct {
    const char *type;      /* general.type, NULL: absent */
    bool no_chunk_count;
    bool no_counts;        /* the attn_q entry without its counts */
    bool f16_sums;         /* the attn_q sums typed F16 */
    int64_t q_counts;      /* elements of attn_q's counts (1) */
    bool only_in_sum;      /* no entries at all, one unrelated tensor */
} gg_opts;

static void gstr(qbt_bytes *b, const char *s)
{
    qbt_put_u64(b, strlen(s));
    qbt_put(b, s, strlen(s));
}

typedef struct {
    const char *name;
    int type;
    int64_t ne0, ne1;
    const float *data;
} gg_tensor;

static qbt_bytes good_gguf(const gg_opts *o)
{
    static const float qs[4] = {1024, 2048, 3072, 4096}, qc[2] = {1024, 1024}, xs[6] = {100, 200, 300, 5, 6, 7},
                       xc[2] = {100, 0}, junk[4] = {-1, -2, -3, -4};
    gg_tensor t[6];
    int nt = 0;
    if (o->only_in_sum) {
        t[nt++] = (gg_tensor){"blk.0.attn_q.weight.in_sum", 0, 4, 1, junk};
    } else {
        t[nt++] = (gg_tensor){"blk.0.attn_q.weight.in_sum2", o->f16_sums ? 1 : 0, 4, 1, qs};
        if (!o->no_counts) t[nt++] = (gg_tensor){"blk.0.attn_q.weight.counts", 0, 1, o->q_counts ? o->q_counts : 1, qc};
        t[nt++] = (gg_tensor){"blk.0.attn_q.weight.in_sum", 0, 4, 1, junk}; /* later versions' Σx: ignored */
        t[nt++] = (gg_tensor){"blk.0.ffn_up_exps.weight.in_sum2", 0, 3, 2, xs};
        t[nt++] = (gg_tensor){"blk.0.ffn_up_exps.weight.counts", 0, 1, 2, xc};
    }
    qbt_bytes b = {0};
    qbt_put(&b, "GGUF", 4);
    qbt_put_u32(&b, 3);
    qbt_put_u64(&b, (uint64_t)nt);
    qbt_put_u64(&b, (uint64_t)(3 + (o->type != NULL) - o->no_chunk_count));
    if (o->type) {
        gstr(&b, "general.type");
        qbt_put_u32(&b, 8);
        gstr(&b, o->type);
    }
    gstr(&b, "imatrix.datasets");
    qbt_put_u32(&b, 9);
    qbt_put_u32(&b, 8);
    qbt_put_u64(&b, 2);
    gstr(&b, "a.txt");
    gstr(&b, "b.txt");
    if (!o->no_chunk_count) {
        gstr(&b, "imatrix.chunk_count");
        qbt_put_u32(&b, 4);
        qbt_put_u32(&b, 3);
    }
    gstr(&b, "imatrix.chunk_size");
    qbt_put_u32(&b, 4);
    qbt_put_u32(&b, 512);
    uint64_t off = 0;
    for (int i = 0; i < nt; i++) {
        gstr(&b, t[i].name);
        qbt_put_u32(&b, 2);
        qbt_put_u64(&b, (uint64_t)t[i].ne0);
        qbt_put_u64(&b, (uint64_t)t[i].ne1);
        qbt_put_u32(&b, (uint32_t)t[i].type);
        qbt_put_u64(&b, off);
        off += ((uint64_t)(t[i].ne0 * t[i].ne1 * (t[i].type ? 2 : 4)) + 31) / 32 * 32;
    }
    static const uint8_t zero[32];
    qbt_put(&b, zero, (32 - b.n % 32) % 32);
    for (int i = 0; i < nt; i++) {
        size_t n = (size_t)(t[i].ne0 * t[i].ne1 * (t[i].type ? 2 : 4)), start = b.n;
        if (t[i].type) qbt_put(&b, zero, n); /* F16 zeros: the type is what is wrong */
        else qbt_put(&b, t[i].data, n);
        qbt_put(&b, zero, (32 - (b.n - start) % 32) % 32);
    }
    return b;
}

/* ---- helpers ---------------------------------------------------------------------------- */

static qb_imatrix *load_ok(const char *name, const qbt_bytes *b)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_imatrix *im = NULL;
    if (qb_imatrix_load_memory(&ctx, name, b->p, b->n, &im) != QB_OK) fail_msg("%s: %s", name, qb_ctx_errmsg(&ctx));
    return im;
}

/* The load fails with one line naming the file and containing want. */
static void load_bad(const char *name, const void *p, size_t n, const char *want)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_imatrix *im = (qb_imatrix *)1;
    qb_status st = qb_imatrix_load_memory(&ctx, name, p, n, &im);
    const char *msg = qb_ctx_errmsg(&ctx);
    if (st == QB_OK) fail_msg("%s: accepted, wanted an error with '%s'", name, want);
    assert_null(im);
    if (strncmp(msg, name, strlen(name)) || !strstr(msg, want) || strchr(msg, '\n'))
        fail_msg("%s: message '%s', wanted the file name and '%s' on one line", name, msg, want);
}

static char *temp_path(const char *tag)
{
    char *p = qbt_write_temp(tag, "", 0);
    return p;
}

static qbt_bytes read_all(const char *path)
{
    size_t n;
    char *p = qbt_slurp(path, &n);
    return (qbt_bytes){(uint8_t *)p, n, n};
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_dat_read(void **state)
{
    (void)state;
    qbt_bytes b = good_dat(true);
    qb_imatrix *im = load_ok("good.dat", &b);
    assert_true(im->legacy);
    assert_int_equal(im->n_entries, 2);
    assert_string_equal(im->entries[0].name, "blk.0.attn_q.weight");
    assert_int_equal(im->entries[1].ncall, 4);
    assert_int_equal(im->chunk_count, 2);
    assert_int_equal(im->n_datasets, 1);
    assert_string_equal(im->datasets[0], "text.txt");
    /* llama-quantize c392e50: value / ncall */
    const float *w = qb_imatrix_weights(im, "blk.0.attn_q.weight", 4);
    assert_non_null(w);
    for (int i = 0; i < 4; i++) assert_true(w[i] == Q[i] / 2.0f);
    /* our per-expert name reads row E of llama.cpp's 3-D entry */
    w = qb_imatrix_weights(im, "blk.0.ffn_up_exps.1.weight", 3);
    assert_non_null(w);
    for (int i = 0; i < 3; i++) assert_true(w[i] == X[3 + i] / 4.0f);
    assert_null(qb_imatrix_weights(im, "blk.0.ffn_up_exps.2.weight", 3)); /* no third expert */
    assert_null(qb_imatrix_weights(im, "blk.0.attn_q.weight", 5));        /* wrong width */
    assert_null(qb_imatrix_weights(im, "blk.0.attn_k.weight", 4));        /* absent */
    assert_null(qb_imatrix_find(im, "blk.0"));
    qb_imatrix_free(im);
    free(b.p);
}

static void test_dat_round_trip(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    for (int trailer = 0; trailer < 2; trailer++) {
        qbt_bytes b = good_dat(trailer);
        qb_imatrix *im = load_ok("rt.dat", &b);
        char *out = temp_path("imatrix-rt");
        int skipped = -1;
        assert_int_equal(qb_imatrix_save(&ctx, im, out, QB_IMATRIX_DAT, &skipped), QB_OK);
        assert_int_equal(skipped, 0);
        qbt_bytes r = read_all(out);
        assert_int_equal(r.n, b.n);
        assert_memory_equal(r.p, b.p, b.n);
        unlink(out);
        free(out);
        free(r.p);
        qb_imatrix_free(im);
        free(b.p);
    }
}

static void test_gguf_read(void **state)
{
    (void)state;
    gg_opts o = {.type = "imatrix"};
    qbt_bytes b = good_gguf(&o);
    qb_imatrix *im = load_ok("good.gguf", &b);
    assert_false(im->legacy);
    assert_int_equal(im->n_entries, 2); /* in_sum is not an entry */
    assert_int_equal(im->chunk_count, 3);
    assert_int_equal(im->chunk_size, 512);
    assert_int_equal(im->n_datasets, 2);
    assert_string_equal(im->datasets[1], "b.txt");
    const qb_imatrix_entry *q = qb_imatrix_find(im, "blk.0.attn_q.weight");
    const qb_imatrix_entry *x = qb_imatrix_find(im, "blk.0.ffn_up_exps.weight");
    assert_non_null(q);
    assert_non_null(x);
    assert_int_equal(q->n_cols, 4);
    assert_int_equal(q->n_mat, 1);
    assert_int_equal(q->ncall, 2); /* ceil(1024 tokens / 512) */
    assert_int_equal(x->n_cols, 3);
    assert_int_equal(x->n_mat, 2);
    for (int i = 0; i < 4; i++) assert_true(q->w[i] == (float)(i + 1));
    /* later llama-quantize: sums / counts, 1 for an expert that saw no token */
    const float want[6] = {1, 2, 3, 1, 1, 1};
    for (int i = 0; i < 6; i++) assert_true(x->w[i] == want[i]);
    const float *w = qb_imatrix_weights(im, "blk.0.ffn_up_exps.0.weight", 3);
    assert_true(w && w[2] == 3);
    /* a GGUF written back reads the same */
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    char *out = temp_path("imatrix-gguf");
    assert_int_equal(qb_imatrix_save(&ctx, im, out, QB_IMATRIX_GGUF, NULL), QB_OK);
    qb_imatrix *back;
    assert_int_equal(qb_imatrix_load(&ctx, out, &back), QB_OK);
    assert_int_equal(back->n_entries, 2);
    assert_int_equal(back->chunk_count, 3);
    assert_int_equal(back->chunk_size, 512);
    assert_int_equal(back->n_datasets, 2);
    for (int i = 0; i < 2; i++) {
        const qb_imatrix_entry *a = &im->entries[i], *c = qb_imatrix_find(back, a->name);
        assert_non_null(c);
        assert_int_equal(c->n_mat, a->n_mat);
        assert_memory_equal(c->sum2, a->sum2, (size_t)a->n_cols * a->n_mat * 4);
        assert_memory_equal(c->counts, a->counts, (size_t)a->n_mat * 4);
    }
    /* a .dat cannot hold the expert that saw no token: that entry is left out */
    int skipped = 0;
    assert_int_equal(qb_imatrix_save(&ctx, im, out, QB_IMATRIX_DAT, &skipped), QB_OK);
    assert_int_equal(skipped, 1);
    qb_imatrix *dat;
    assert_int_equal(qb_imatrix_load(&ctx, out, &dat), QB_OK);
    assert_int_equal(dat->n_entries, 1);
    assert_int_equal(dat->entries[0].ncall, 2);
    assert_string_equal(dat->datasets[0], "b.txt"); /* the last dataset, as the later tool writes */
    for (int i = 0; i < 4; i++) assert_true(fabsf(dat->entries[0].w[i] - q->w[i]) <= 1e-6f * q->w[i]);
    qb_imatrix_free(dat);
    qb_imatrix_free(back);
    unlink(out);
    free(out);
    qb_imatrix_free(im);
    free(b.p);
}

/* A .dat made GGUF (sums v × 512 over ncall × 512 tokens) keeps the importance exactly. */
static void test_dat_to_gguf(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qbt_bytes b = good_dat(true);
    qb_imatrix *im = load_ok("conv.dat", &b);
    char *out = temp_path("imatrix-conv");
    assert_int_equal(qb_imatrix_save(&ctx, im, out, QB_IMATRIX_GGUF, NULL), QB_OK);
    qb_imatrix *g;
    assert_int_equal(qb_imatrix_load(&ctx, out, &g), QB_OK);
    assert_false(g->legacy);
    assert_int_equal(g->chunk_count, 2);
    const qb_imatrix_entry *q = qb_imatrix_find(g, "blk.0.attn_q.weight");
    assert_non_null(q);
    assert_int_equal(q->ncall, 2);
    assert_true(q->counts[0] == 1024);
    for (int i = 0; i < 4; i++) assert_true(q->w[i] == Q[i] / 2.0f);
    qb_imatrix_free(g);
    unlink(out);
    free(out);
    qb_imatrix_free(im);
    free(b.p);
}

static void test_dat_bad(void **state)
{
    (void)state;
    qbt_bytes good = good_dat(true);
    size_t end_of_entries = good.n - 16; /* last call, length, "text.txt" */
    /* cut anywhere: refused, except right after the entries (a file from before the trailer) */
    for (size_t n = 0; n < good.n; n++) {
        if (n == end_of_entries) continue;
        qb_ctx ctx;
        qb_ctx_init(&ctx);
        qb_imatrix *im = NULL;
        if (qb_imatrix_load_memory(&ctx, "cut.dat", good.p, n, &im) == QB_OK)
            fail_msg("a .dat cut to %zu of %zu bytes was accepted", n, good.n);
        assert_true(!strncmp(qb_ctx_errmsg(&ctx), "cut.dat: ", 9) && !strchr(qb_ctx_errmsg(&ctx), '\n'));
    }
    load_bad("empty.dat", "", 0, "truncated");
    load_bad("short.dat", good.p, 30, "entry count 2 does not fit in 30 bytes");
    load_bad("vals.dat", good.p, 40, "truncated in entry 'blk.0.attn_q.weight': 4 values need 16 bytes");
    const char text[] = "this is not an imatrix file at all, just some text";
    load_bad("text.dat", text, sizeof text - 1, "does not fit");
    qbt_bytes b;
#define VARIANT(file, want, ...)                                                                                       \
    do {                                                                                                               \
        b = (qbt_bytes){0};                                                                                                \
        __VA_ARGS__;                                                                                                   \
        load_bad(file, b.p, b.n, want);                                                                                \
        free(b.p);                                                                                                     \
    } while (0)
    VARIANT("name.dat", "truncated in entry 1's name", qbt_put_i32(&b, 1); qbt_put_i32(&b, 40); qbt_put(&b, "blk.0.attn_q.wei", 16));
    VARIANT("zero.dat", "no imatrix data", qbt_put_i32(&b, 0); dat_entry(&b, "x", 1, Q, 4));
    VARIANT("neglen.dat", "name length -5 out of range", qbt_put_i32(&b, 1); qbt_put_i32(&b, -5); qbt_put(&b, Q, 16));
    VARIANT("hugelen.dat", "name length 1000000 out of range", qbt_put_i32(&b, 1); qbt_put_i32(&b, 1000000); qbt_put(&b, Q, 16));
    VARIANT("newline.dat", "entry 1: control byte 0x0a in its name", qbt_put_i32(&b, 1); qbt_put_i32(&b, 3); qbt_put(&b, "a\nb", 3); qbt_put_i32(&b, 1);
            qbt_put_i32(&b, 1); f32s(&b, Q, 1));
    VARIANT("nul.dat", "control byte 0x00", qbt_put_i32(&b, 1); qbt_put_i32(&b, 3); qbt_put(&b, "a\0b", 3); qbt_put_i32(&b, 1); qbt_put_i32(&b, 1); f32s(&b, Q, 1));
    VARIANT("nval.dat", "'blk.0.attn_q.weight': 0 values", qbt_put_i32(&b, 1); dat_entry(&b, "blk.0.attn_q.weight", 1, Q, 0));
    VARIANT("ncall.dat", "ncall -1 is negative", qbt_put_i32(&b, 1); dat_entry(&b, "blk.0.attn_q.weight", -1, Q, 4));
    const float nan4[4] = {1, NAN, 1, 1}, neg4[4] = {1, 1, -2, 1};
    VARIANT("nan.dat", "value 1 is nan", qbt_put_i32(&b, 1); dat_entry(&b, "a.weight", 1, nan4, 4));
    VARIANT("neg.dat", "value 2 is -2", qbt_put_i32(&b, 1); dat_entry(&b, "a.weight", 1, neg4, 4));
    VARIANT("twice.dat", "entry 'a.weight' appears twice", qbt_put_i32(&b, 2); dat_entry(&b, "a.weight", 1, Q, 4);
            dat_entry(&b, "a.weight", 1, Q, 4));
    VARIANT("tail.dat", "3 bytes after the end", qbt_put(&b, good.p, good.n); qbt_put(&b, "xyz", 3));
    VARIANT("trailer.dat", "truncated after the entries", qbt_put(&b, good.p, end_of_entries); qbt_put_i32(&b, 2));
    VARIANT("dslen.dat", "dataset name of 99 bytes", qbt_put(&b, good.p, end_of_entries); qbt_put_i32(&b, 2); qbt_put_i32(&b, 99));
    VARIANT("dsnul.dat", "NUL byte in the dataset name", qbt_put(&b, good.p, end_of_entries); qbt_put_i32(&b, 2); qbt_put_i32(&b, 3);
            qbt_put(&b, "a\0b", 3));
    VARIANT("lastneg.dat", "chunk count -3 is negative", qbt_put(&b, good.p, end_of_entries); qbt_put_i32(&b, -3); qbt_put_i32(&b, 0));
    free(good.p);
}

static void test_gguf_bad(void **state)
{
    (void)state;
    qbt_bytes b;
#define GG(file, want, ...)                                                                                            \
    do {                                                                                                               \
        gg_opts o = {__VA_ARGS__};                                                                                     \
        b = good_gguf(&o);                                                                                             \
        load_bad(file, b.p, b.n, want);                                                                                \
        free(b.p);                                                                                                     \
    } while (0)
    GG("model.gguf", "general.type 'model', not an imatrix", .type = "model");
    GG("nocount.gguf", "imatrix.chunk_count missing", .type = "imatrix", .no_chunk_count = true);
    GG("sums.gguf", "entry 'blk.0.attn_q.weight' has sums but no counts", .type = "imatrix", .no_counts = true);
    GG("f16.gguf", "must be F32", .type = "imatrix", .f16_sums = true);
    GG("ncounts.gguf", "2 counts for 1 matrices", .type = "imatrix", .q_counts = 2);
    GG("none.gguf", "no imatrix entries", .type = "imatrix", .only_in_sum = true);
    /* without general.type it is still read (the keys say what it is) */
    gg_opts o = {0};
    b = good_gguf(&o);
    qb_imatrix *im = load_ok("untyped.gguf", &b);
    assert_int_equal(im->n_entries, 2);
    qb_imatrix_free(im);
    /* the GGUF container's own checks: cut anywhere before the last tensor's 8 qbt_bytes end (the
     * 24 bytes of padding after them are not needed) */
    for (size_t n = 4; n < b.n - 24; n += 3) load_bad("cut.gguf", b.p, n, "cut.gguf");
    free(b.p);
}

static void test_match(void **state)
{
    (void)state;
    const char *mp = qbt_model_path("stories260K/stories260K-f32.gguf");
    qbt_need(mp);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m;
    assert_int_equal(qb_model_open(&ctx, mp, NULL, &m), QB_OK);
    float v[172];
    for (int i = 0; i < 172; i++) v[i] = 1;
    struct {
        const char *name;
        int nval;
        const char *want; /* NULL: fits */
    } cases[] = {
        {"blk.0.attn_q.weight", 64, NULL},
        {"blk.4.ffn_down.weight", 172, NULL},
        {"blk.0.attn_q.weight", 63, "entry 'blk.0.attn_q.weight' has 63 values; the tensor is 64 wide"},
        {"blk.9.attn_q.weight", 64, "entry 'blk.9.attn_q.weight': the model has no weight matrix of that name"},
        {"blk.0.attn_norm.weight", 64, "no weight matrix of that name"},
        {"blk.0.ffn_up_exps.weight", 64, "entry 'blk.0.ffn_up_exps.weight': the model has no such expert tensor"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        qbt_bytes b = {0};
        qbt_put_i32(&b, 1);
        dat_entry(&b, cases[k].name, 1, v, cases[k].nval);
        qb_imatrix *im = load_ok("m.dat", &b);
        qb_status st = qb_imatrix_match(&ctx, im, m);
        if (!cases[k].want) {
            if (st != QB_OK) fail_msg("%s: %s", cases[k].name, qb_ctx_errmsg(&ctx));
        } else {
            assert_int_equal(st, QB_ERR_FORMAT);
            const char *msg = qb_ctx_errmsg(&ctx);
            if (strncmp(msg, "m.dat: ", 7) || !strstr(msg, cases[k].want) || strchr(msg, '\n'))
                fail_msg("%s: '%s', wanted '%s'", cases[k].name, msg, cases[k].want);
        }
        qb_imatrix_free(im);
        free(b.p);
    }
    qb_model_close(m);
}

/* The collection's bookkeeping: one entry per block matrix, q/k/v (and gate/up) from one
 * input, ncall = calls, tokens = chunks × ctx, llama-imatrix's 2-chunk minimum, and nothing
 * from calls under 16 tokens. */
static void test_collect(void **state)
{
    (void)state;
    const char *mp = qbt_model_path("stories260K/stories260K-f32.gguf");
    const char *text = qbt_model_path("stories260K/ppl-sample.txt");
    qbt_need(mp);
    qbt_need(text);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m;
    assert_int_equal(qb_model_open(&ctx, mp, NULL, &m), QB_OK);
    qb_imatrix *im;
    qb_imatrix_opts o = {.n_ctx = 64, .n_chunks = 3};
    assert_int_equal(qb_imatrix_collect_file(&ctx, m, text, &o, &im), QB_OK);
    assert_int_equal(im->n_entries, 7 * m->cfg.n_layers); /* output.weight only when asked */
    assert_int_equal(im->chunk_count, 3);
    assert_int_equal(im->chunk_size, 64);
    assert_string_equal(im->datasets[0], text);
    const qb_imatrix_entry *q = qb_imatrix_find(im, "blk.2.attn_q.weight"), *k = qb_imatrix_find(im, "blk.2.attn_k.weight");
    const qb_imatrix_entry *d = qb_imatrix_find(im, "blk.2.ffn_down.weight");
    assert_true(q && k && d);
    assert_int_equal(q->ncall, 3);
    assert_true(q->counts[0] == 192);
    assert_memory_equal(q->w, k->w, 64 * sizeof(float));
    assert_int_equal(d->n_cols, m->cfg.hidden_dim);
    assert_int_equal(qb_imatrix_match(&ctx, im, m), QB_OK);
    qb_imatrix_free(im);
    /* calls of 8 tokens: below llama-imatrix's 16, no dense matrix is collected */
    o = (qb_imatrix_opts){.n_ctx = 64, .n_chunks = 1, .n_ubatch = 8};
    assert_int_equal(qb_imatrix_collect_file(&ctx, m, text, &o, &im), QB_OK);
    assert_int_equal(im->n_entries, 0);
    qb_imatrix_free(im);
    /* a context that does not fit twice in the text */
    o = (qb_imatrix_opts){.n_ctx = 4096};
    assert_int_equal(qb_imatrix_collect_file(&ctx, m, text, &o, &im), QB_ERR_ARG);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "a 4096-token context needs at least 8192"));
    assert_int_equal(strncmp(qb_ctx_errmsg(&ctx), text, strlen(text)), 0);
    qb_model_close(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dat_read),  cmocka_unit_test(test_dat_round_trip), cmocka_unit_test(test_gguf_read),
        cmocka_unit_test(test_dat_to_gguf), cmocka_unit_test(test_dat_bad),      cmocka_unit_test(test_gguf_bad),
        cmocka_unit_test(test_match),     cmocka_unit_test(test_collect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
