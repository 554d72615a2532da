/* synth_model.c — helper for scripts/bench.sh: makes the GGUF models the benchmarks run on
 * and measures what the machine can do, so `make bench` needs no downloads.
 *
 *   synth_model --to-f32 IN.gguf OUT.gguf
 *       copy a GGUF with every F16/BF16 tensor widened to F32 and every metadata key copied
 *       (tokenizer arrays included; general.file_type becomes 0 = ALL_F32).
 *   synth_model --llama OUT.gguf [--type f16|f32] [--seed S] [--layers 22] [--dim 2048]
 *               [--ffn 5632] [--heads 32] [--kv-heads 4] [--vocab 32000] [--ctx 2048]
 *       a Llama with random weights (approximately normal, sigma 0.02; norms 1), untied
 *       output and a minimal SentencePiece-style "llama" vocabulary that both quantbench and
 *       llama.cpp load. Defaults are the shapes of TinyLlama-1.1B.
 *   synth_model --membw [--mib 1024] [--threads 2] [--reps 3]
 *       STREAM-like read bandwidth: sum an array with T threads, best of R; prints GB/s.
 *   synth_model --weight-bytes FILE.gguf
 *       bytes of all tensors, and bytes one generated token reads (every tensor but
 *       token_embd, of which it reads one row): "total_bytes per_token_bytes".
 *
 * Progress and notes go to stderr; the one-line results of --membw and --weight-bytes go to
 * stdout for the script to capture. Exit status 0 on success, 1 on failure. */
#include "core/qb.h"
#include "core/util/gguf.h"
#include "core/util/gguf_write.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int fail(const char *fmt, const char *arg)
{
    fprintf(stderr, "synth_model: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    return 1;
}

/* ---------- generic metadata copy ---------- */

/* Copy one key/value read from a GGUF into the writer through the public setters. Scalar
 * types the writer has no setter for are widened (8/16-bit) or narrowed (64-bit, f64) to the
 * nearest 32-bit type; *changed is set then so the caller can say so. Nested arrays are not
 * supported (false). */
static bool copy_kv(qb_gguf_writer *w, const qb_gguf_kv *kv, bool *changed)
{
    *changed = false;
    switch (kv->type) {
    case QB_GGUF_UINT8: case QB_GGUF_UINT16:
        *changed = true;
        /* fall through */
    case QB_GGUF_UINT32:
        return qb_gguf_set_u32(w, kv->key, (uint32_t)kv->u64);
    case QB_GGUF_INT8: case QB_GGUF_INT16:
        *changed = true;
        /* fall through */
    case QB_GGUF_INT32:
        return qb_gguf_set_i32(w, kv->key, (int32_t)kv->i64);
    case QB_GGUF_UINT64:
        *changed = true;
        return kv->u64 <= UINT32_MAX && qb_gguf_set_u32(w, kv->key, (uint32_t)kv->u64);
    case QB_GGUF_INT64:
        *changed = true;
        return kv->i64 >= INT32_MIN && kv->i64 <= INT32_MAX && qb_gguf_set_i32(w, kv->key, (int32_t)kv->i64);
    case QB_GGUF_FLOAT64:
        *changed = true;
        /* fall through */
    case QB_GGUF_FLOAT32:
        return qb_gguf_set_f32(w, kv->key, (float)kv->f64);
    case QB_GGUF_BOOL:
        return qb_gguf_set_bool(w, kv->key, kv->u64 != 0);
    case QB_GGUF_STRING:
        return qb_gguf_set_str(w, kv->key, kv->str);
    case QB_GGUF_ARRAY:
        break;
    default:
        return false;
    }
    if (kv->arr_type != QB_GGUF_STRING)
        return qb_gguf_set_arr(w, kv->key, kv->arr_type, kv->arr_data, (size_t)kv->arr_n);
    /* string array: the reader keeps (pointer, length) references; the setter wants C strings */
    char **s = calloc(kv->arr_n ? kv->arr_n : 1, sizeof *s);
    bool ok = s != NULL;
    for (uint64_t i = 0; ok && i < kv->arr_n; i++) {
        s[i] = malloc(kv->arr_str[i].len + 1);
        if (!s[i]) ok = false;
        else {
            memcpy(s[i], kv->arr_str[i].ptr, kv->arr_str[i].len);
            s[i][kv->arr_str[i].len] = '\0';
        }
    }
    ok = ok && qb_gguf_set_arr_str(w, kv->key, (const char *const *)s, (size_t)kv->arr_n);
    for (uint64_t i = 0; s && i < kv->arr_n; i++) free(s[i]);
    free(s);
    return ok;
}

/* ---------- --to-f32 ---------- */

static int to_f32(const char *in, const char *out)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_gguf *g = NULL;
    if (qb_gguf_open(&ctx, in, &g) != QB_OK) return fail("%s", qb_ctx_errmsg(&ctx));
    qb_gguf_writer *w = qb_gguf_writer_new();
    void **bufs = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *bufs);
    int rc = 1;
    if (!w || !bufs) {
        fail("%s", "out of memory");
        goto out;
    }
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const qb_gguf_kv *kv = &g->kv[i];
        bool changed = false, ok;
        if (!strcmp(kv->key, "general.file_type")) ok = qb_gguf_set_u32(w, kv->key, 0); /* ALL_F32 */
        else ok = copy_kv(w, kv, &changed);
        if (!ok) {
            fail("cannot copy metadata key %s", kv->key);
            goto out;
        }
        if (changed) fprintf(stderr, "synth_model: note: %s stored with a 32-bit type\n", kv->key);
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const qb_gguf_tensor *t = &g->tensors[i];
        int64_t nel = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        const void *data = t->data;
        int type = t->type;
        if (t->type == QB_TYPE_F16 || t->type == QB_TYPE_BF16) {
            float *f = malloc((size_t)nel * sizeof *f);
            if (!(bufs[i] = f)) {
                fail("%s", "out of memory");
                goto out;
            }
            const uint16_t *h = t->data;
            bool bf = t->type == QB_TYPE_BF16;
            #pragma omp parallel for schedule(static)
            for (int64_t k = 0; k < nel; k++) f[k] = bf ? qb_bf16_to_f32(h[k]) : qb_f16_to_f32(h[k]);
            data = f;
            type = QB_TYPE_F32;
        } else if (t->type != QB_TYPE_F32) {
            const qb_type_info *ti = qb_type_get(t->type);
            fprintf(stderr, "synth_model: note: %s kept as %s\n", t->name, ti && ti->name ? ti->name : "?");
        }
        if (!qb_gguf_add_tensor(w, t->name, type, t->n_dims, t->ne, data)) {
            fail("cannot add tensor %s", t->name);
            goto out;
        }
    }
    if (qb_gguf_write_file(&ctx, w, out, NULL) != QB_OK) {
        fail("%s", qb_ctx_errmsg(&ctx));
        goto out;
    }
    rc = 0;
out:
    for (uint64_t i = 0; bufs && i < g->n_tensors; i++) free(bufs[i]);
    free(bufs);
    qb_gguf_writer_free(w);
    qb_gguf_close(g);
    return rc;
}

/* ---------- --llama ---------- */

typedef struct {
    int layers, dim, ffn, heads, kv_heads, vocab, ctx;
    int type;       /* QB_TYPE_F16 or QB_TYPE_F32 for the matrices */
    uint64_t seed;
} synth_cfg;

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* F32 -> F16, round to nearest even: inline for the normal range, the library otherwise. */
static inline uint16_t to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t a = x & 0x7fffffffu;
    if (a < 0x38800000u || a >= 0x477ff000u) return qb_f32_to_f16(f);
    a -= 112u << 23; /* rebias the exponent from 127 to 15 */
    return (uint16_t)(((x >> 16) & 0x8000) | ((a + 0xfffu + ((a >> 13) & 1)) >> 13));
}

/* Fill one row of n values, approximately N(0, 0.02^2): the sum of four 16-bit uniforms
 * (Irwin-Hall) from one xorshift64* draw, seeded per row so rows fill in any order. */
static void fill_row(void *dst, int type, int64_t n, uint64_t seed)
{
    uint64_t s = splitmix64(seed) | 1;
    const float scale = 0.02f / 37837.23f; /* sd of the sum of four U{0..65535} = 65536/sqrt(3) */
    for (int64_t i = 0; i < n; i++) {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        uint64_t r = s * 0x2545f4914f6cdd1dull;
        int32_t z = (int32_t)((r & 0xffff) + ((r >> 16) & 0xffff) + ((r >> 32) & 0xffff) + (r >> 48)) - 131070;
        float v = (float)z * scale;
        if (type == QB_TYPE_F16) ((uint16_t *)dst)[i] = to_f16(v);
        else ((float *)dst)[i] = v;
    }
}

/* A buffer for a big tensor, backed by transparent huge pages where the kernel allows it:
 * first-touch page faults otherwise cost more than generating the numbers (in a VM). */
typedef struct {
    void *p;
    size_t len;
} big_buf;

static void *big_alloc(big_buf *b, size_t len)
{
    b->len = len ? len : 1;
    b->p = mmap(NULL, b->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b->p == MAP_FAILED) return b->p = NULL;
#ifdef MADV_HUGEPAGE
    madvise(b->p, b->len, MADV_HUGEPAGE);
#endif
    return b->p;
}

static void big_free(big_buf *b)
{
    if (b->p) munmap(b->p, b->len);
    b->p = NULL;
}

/* Allocate and fill a (rows x cols) matrix (cols = ne[0]); rows spread over OpenMP threads. */
static void *random_matrix(big_buf *b, int type, int64_t cols, int64_t rows, uint64_t seed)
{
    size_t esz = type == QB_TYPE_F16 ? 2 : 4;
    uint8_t *p = big_alloc(b, (size_t)(cols * rows) * esz);
    if (!p) return NULL;
    #pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) fill_row(p + (size_t)(r * cols) * esz, type, cols, seed ^ (uint64_t)r * 0x100000001b3ull);
    return p;
}

/* Minimal SentencePiece-style vocabulary: <unk> <s> </s>, 256 byte tokens, then fillers. */
static bool add_vocab(qb_gguf_writer *w, int n)
{
    char **tok = calloc((size_t)n, sizeof *tok);
    float *score = calloc((size_t)n, sizeof *score);
    int32_t *type = calloc((size_t)n, sizeof *type);
    bool ok = tok && score && type;
    for (int i = 0; ok && i < n; i++) {
        char piece[32];
        if (i == 0) snprintf(piece, sizeof piece, "<unk>"), type[i] = 2;          /* UNKNOWN */
        else if (i == 1) snprintf(piece, sizeof piece, "<s>"), type[i] = 3;       /* CONTROL */
        else if (i == 2) snprintf(piece, sizeof piece, "</s>"), type[i] = 3;
        else if (i < 3 + 256) snprintf(piece, sizeof piece, "<0x%02X>", i - 3), type[i] = 6; /* BYTE */
        else {
            snprintf(piece, sizeof piece, "\xe2\x96\x81tok%d", i); /* "▁tokN" */
            type[i] = 1;                                            /* NORMAL */
            score[i] = -(float)(i - 259);
        }
        ok = (tok[i] = strdup(piece)) != NULL;
    }
    ok = ok && qb_gguf_set_str(w, "tokenizer.ggml.model", "llama") &&
         qb_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tok, (size_t)n) &&
         qb_gguf_set_arr(w, "tokenizer.ggml.scores", QB_GGUF_FLOAT32, score, (size_t)n) &&
         qb_gguf_set_arr(w, "tokenizer.ggml.token_type", QB_GGUF_INT32, type, (size_t)n) &&
         qb_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 1) && qb_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 2) &&
         qb_gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", 0) &&
         qb_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    for (int i = 0; tok && i < n; i++) free(tok[i]);
    free(tok);
    free(score);
    free(type);
    return ok;
}

static bool add_hparams(qb_gguf_writer *w, const synth_cfg *c)
{
    char name[64];
    snprintf(name, sizeof name, "synthetic llama %dL %dd", c->layers, c->dim);
    return qb_gguf_set_str(w, "general.architecture", "llama") && qb_gguf_set_str(w, "general.name", name) &&
           qb_gguf_set_u32(w, "general.alignment", 32) &&
           qb_gguf_set_u32(w, "general.file_type", c->type == QB_TYPE_F16 ? 1 : 0) &&
           qb_gguf_set_u32(w, "llama.context_length", (uint32_t)c->ctx) &&
           qb_gguf_set_u32(w, "llama.embedding_length", (uint32_t)c->dim) &&
           qb_gguf_set_u32(w, "llama.feed_forward_length", (uint32_t)c->ffn) &&
           qb_gguf_set_u32(w, "llama.block_count", (uint32_t)c->layers) &&
           qb_gguf_set_u32(w, "llama.attention.head_count", (uint32_t)c->heads) &&
           qb_gguf_set_u32(w, "llama.attention.head_count_kv", (uint32_t)c->kv_heads) &&
           qb_gguf_set_u32(w, "llama.rope.dimension_count", (uint32_t)(c->dim / c->heads)) &&
           qb_gguf_set_f32(w, "llama.rope.freq_base", 10000.0f) &&
           qb_gguf_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f) &&
           qb_gguf_set_u32(w, "llama.vocab_size", (uint32_t)c->vocab);
}

/* The tensor list, in llama.cpp's usual order; bufs receives one buffer per tensor (the
 * first holds the ones every norm shares). */
static bool add_tensors(qb_gguf_writer *w, const synth_cfg *c, big_buf *bufs, int *nb)
{
    int64_t d = c->dim, kv = (int64_t)c->dim / c->heads * c->kv_heads, f = c->ffn, v = c->vocab;
    float *ones = big_alloc(&bufs[(*nb)++], (size_t)d * sizeof *ones);
    if (!ones) return false;
    for (int64_t i = 0; i < d; i++) ones[i] = 1.0f;
    static const char *mats[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
    for (int l = -1; l <= c->layers; l++) {
        /* l = -1: token_embd; l = layers: output_norm + output; else block l */
        char name[64];
        int nm = l < 0 || l == c->layers ? 1 : 7;
        for (int k = 0; k < nm; k++) {
            int64_t ne[2];
            if (l < 0) snprintf(name, sizeof name, "token_embd.weight"), ne[0] = d, ne[1] = v;
            else if (l == c->layers) snprintf(name, sizeof name, "output.weight"), ne[0] = d, ne[1] = v;
            else {
                snprintf(name, sizeof name, "blk.%d.%s.weight", l, mats[k]);
                ne[0] = !strcmp(mats[k], "ffn_down") ? f : d;
                ne[1] = k == 0 || k == 3 ? d : k == 1 || k == 2 ? kv : !strcmp(mats[k], "ffn_down") ? d : f;
            }
            uint64_t seed = c->seed * 1000003ull + (uint64_t)(l + 1) * 16 + (uint64_t)k;
            void *m = random_matrix(&bufs[(*nb)++], c->type, ne[0], ne[1], splitmix64(seed));
            if (!m) return false;
            if (l == c->layers && !qb_gguf_add_tensor(w, "output_norm.weight", QB_TYPE_F32, 1, &d, ones)) return false;
            if (!qb_gguf_add_tensor(w, name, c->type, 2, ne, m)) return false;
            if (l >= 0 && l < c->layers && k == 0) {
                snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
                if (!qb_gguf_add_tensor(w, name, QB_TYPE_F32, 1, &d, ones)) return false;
            }
            if (l >= 0 && l < c->layers && k == 3) {
                snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l);
                if (!qb_gguf_add_tensor(w, name, QB_TYPE_F32, 1, &d, ones)) return false;
            }
        }
    }
    return true;
}

static int synth_llama(const char *out, const synth_cfg *c)
{
    if (c->layers < 1 || c->dim < 32 || c->dim % 32 || c->heads < 1 || c->dim % c->heads || c->kv_heads < 1 ||
        c->heads % c->kv_heads || c->ffn < 32 || c->ffn % 32 || c->vocab < 260 || c->ctx < 1)
        return fail("%s", "bad shape: need dim and ffn multiples of 32, heads dividing dim, kv_heads dividing heads, vocab >= 260");
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_gguf_writer *w = qb_gguf_writer_new();
    int nmax = 8 * c->layers + 8, nb = 0, rc = 1;
    big_buf *bufs = calloc((size_t)nmax, sizeof *bufs);
    double t0 = now_s();
    if (!w || !bufs || !add_hparams(w, c) || !add_vocab(w, c->vocab) || !add_tensors(w, c, bufs, &nb)) {
        fail("%s", "out of memory building the model");
        goto out;
    }
    double t1 = now_s();
    if (qb_gguf_write_file(&ctx, w, out, NULL) != QB_OK) {
        fail("%s", qb_ctx_errmsg(&ctx));
        goto out;
    }
    fprintf(stderr, "synth_model: wrote %s (generate %.1f s, write %.1f s)\n", out, t1 - t0, now_s() - t1);
    rc = 0;
out:
    for (int i = 0; bufs && i < nb; i++) big_free(&bufs[i]);
    free(bufs);
    qb_gguf_writer_free(w);
    return rc;
}

/* ---------- --membw ---------- */

typedef uint64_t v2u __attribute__((vector_size(16)));

/* Sum n 16-byte vectors with four independent accumulators (SSE2 is enough to keep the
 * loads, not the adds, the limit). */
static uint64_t sum_block(const v2u *p, size_t n)
{
    v2u a = {0, 0}, b = a, c = a, d = a;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        a += p[i];
        b += p[i + 1];
        c += p[i + 2];
        d += p[i + 3];
    }
    for (; i < n; i++) a += p[i];
    a += b + c + d;
    return a[0] + a[1];
}

static int membw(long mib, int threads, int reps)
{
    size_t bytes = (size_t)mib << 20, nv = bytes / sizeof(v2u);
    v2u *p = aligned_alloc(64, nv * sizeof(v2u));
    if (!p) return fail("%s", "cannot allocate the bandwidth array");
    /* first touch by the same threads and split that read it */
    #pragma omp parallel num_threads(threads)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        size_t lo = nv * (size_t)t / (size_t)nt, hi = nv * (size_t)(t + 1) / (size_t)nt;
        for (size_t i = lo; i < hi; i++) p[i] = (v2u){i, 1};
    }
    double best = 0;
    uint64_t check = 0;
    for (int r = 0; r < reps; r++) {
        uint64_t total = 0;
        double t0 = now_s();
        #pragma omp parallel num_threads(threads) reduction(+ : total)
        {
            int t = omp_get_thread_num(), nt = omp_get_num_threads();
            size_t lo = nv * (size_t)t / (size_t)nt, hi = nv * (size_t)(t + 1) / (size_t)nt;
            total += sum_block(p + lo, hi - lo);
        }
        double gbs = (double)bytes / (now_s() - t0) / 1e9;
        if (gbs > best) best = gbs;
        check ^= total;
    }
    free(p);
    fprintf(stderr, "synth_model: read %ld MiB with %d threads, best of %d (checksum %llx)\n", mib, threads, reps,
            (unsigned long long)check);
    printf("%.2f\n", best);
    return 0;
}

/* ---------- --weight-bytes ---------- */

static int weight_bytes(const char *path)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_gguf *g = NULL;
    if (qb_gguf_open(&ctx, path, &g) != QB_OK) return fail("%s", qb_ctx_errmsg(&ctx));
    uint64_t total = 0, per_tok = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const qb_gguf_tensor *t = &g->tensors[i];
        total += t->nbytes;
        if (!strcmp(t->name, "token_embd.weight")) per_tok += t->ne[1] > 0 ? t->nbytes / (uint64_t)t->ne[1] : 0;
        else per_tok += t->nbytes;
    }
    printf("%llu %llu\n", (unsigned long long)total, (unsigned long long)per_tok);
    qb_gguf_close(g);
    return 0;
}

/* ---------- main ---------- */

static bool int_arg(const char *opt, const char *v, long lo, long hi, long *out)
{
    char *end;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || x < lo || x > hi) {
        fprintf(stderr, "synth_model: %s needs an integer in [%ld, %ld]\n", opt, lo, hi);
        return false;
    }
    *out = x;
    return true;
}

static int usage(void)
{
    fprintf(stderr, "usage: synth_model --to-f32 IN.gguf OUT.gguf\n"
                    "       synth_model --llama OUT.gguf [--type f16|f32] [--seed S] [--layers N] [--dim N]\n"
                    "                   [--ffn N] [--heads N] [--kv-heads N] [--vocab N] [--ctx N]\n"
                    "       synth_model --membw [--mib N] [--threads N] [--reps N]\n"
                    "       synth_model --weight-bytes FILE.gguf\n");
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) return usage();
    const char *mode = argv[1];
    if (!strcmp(mode, "--to-f32")) return argc == 4 ? to_f32(argv[2], argv[3]) : usage();
    if (!strcmp(mode, "--weight-bytes")) return argc == 3 ? weight_bytes(argv[2]) : usage();
    if (!strcmp(mode, "--membw")) {
        long mib = 1024, threads = 2, reps = 3;
        for (int i = 2; i < argc; i += 2) {
            const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
            bool ok = !strcmp(a, "--mib")       ? int_arg(a, v, 1, 1 << 20, &mib)
                      : !strcmp(a, "--threads") ? int_arg(a, v, 1, 1024, &threads)
                      : !strcmp(a, "--reps")    ? int_arg(a, v, 1, 1000, &reps)
                                                : (usage(), false);
            if (!ok) return 1;
        }
        return membw(mib, (int)threads, (int)reps);
    }
    if (!strcmp(mode, "--llama")) {
        if (argc < 3) return usage();
        synth_cfg c = {22, 2048, 5632, 32, 4, 32000, 2048, QB_TYPE_F16, 1};
        for (int i = 3; i < argc; i += 2) {
            const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
            long x = 0;
            bool ok = true;
            if (!strcmp(a, "--type")) {
                if (v && !strcmp(v, "f16")) c.type = QB_TYPE_F16;
                else if (v && !strcmp(v, "f32")) c.type = QB_TYPE_F32;
                else return fail("--type is f16 or f32, not '%s'", v ? v : "");
                continue;
            }
            static const char *names[] = {"--layers", "--dim", "--ffn", "--heads", "--kv-heads", "--vocab", "--ctx", "--seed"};
            int *fields[] = {&c.layers, &c.dim, &c.ffn, &c.heads, &c.kv_heads, &c.vocab, &c.ctx, NULL};
            int k = 0;
            while (k < 8 && strcmp(a, names[k])) k++;
            if (k == 8) return usage();
            ok = int_arg(a, v, k == 7 ? 0 : 1, 1 << 24, &x);
            if (!ok) return 1;
            if (fields[k]) *fields[k] = (int)x;
            else c.seed = (uint64_t)x;
        }
        return synth_llama(argv[2], &c);
    }
    return usage();
}
