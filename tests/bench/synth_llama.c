/* synth_llama.c — the synthetic models of the benchmarks (synth_model --llama): GGUF files with
 * the shapes of real models (TinyLlama-1.1B, Llama-3.1-8B with its llama3 rope_freqs.weight,
 * Qwen3-30B-A3B's experts as qwen3moe or as Mixtral-style "llama"), random weights, and a
 * minimal SentencePiece-style vocabulary, that both quantbench and llama.cpp open.
 *
 * Tensors are produced while the file is written (qb_gguf_add_tensor_lazy), one at a time, so a
 * 16 GB model needs about one tensor of memory; sizes are 64-bit throughout, the free space of
 * the target's file system is checked before anything is written, and progress goes to stderr.
 * The bytes of a given shape and seed are the same on every machine (per-row seeded generator)
 * and the same as before this file existed for the shapes synth_model made then. */
#include "synth.h"

#include "core/qb.h"
#include "core/util/gguf.h"
#include "core/util/gguf_write.h"

#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

double synth_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int synth_fail(const char *fmt, const char *arg)
{
    fprintf(stderr, "synth_model: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    return 1;
}

/* ---------- shapes ---------- */

const char *const synth_preset_names = "tinyllama, llama3.1-8b, qwen3-30b-a3b";

bool synth_preset(synth_cfg *c, const char *name)
{
    /* arch, layers, dim, ffn, heads, kv_heads, head_dim, vocab, ctx, rope_theta, norm_eps,
       rope_freqs, factor, low, high, orig_ctx, experts, used, expert_ffn, type, seed */
    static const synth_cfg tiny = {"llama", 22, 2048, 5632, 32, 4, 0, 32000, 2048, 10000.0f, 1e-5f,
                                   false, 8.0f, 1.0f, 4.0f, 8192, 0, 0, 0, QB_TYPE_F16, 1};
    /* Llama-3.1-8B's config.json: rope_scaling {rope_type llama3, factor 8, low_freq_factor 1,
       high_freq_factor 4, original_max_position_embeddings 8192}, untied output */
    static const synth_cfg l3 = {"llama", 32, 4096, 14336, 32, 8, 0, 128256, 131072, 500000.0f, 1e-5f,
                                 true, 8.0f, 1.0f, 4.0f, 8192, 0, 0, 0, QB_TYPE_F16, 1};
    /* Qwen3-30B-A3B's config.json: 48 layers, head_dim 128 (q is 4096 wide on a 2048 stream),
       128 experts of 768, 8 used (renormalised), no shared expert, untied output */
    static const synth_cfg q3 = {"qwen3moe", 48, 2048, 6144, 32, 4, 128, 151936, 40960, 1000000.0f, 1e-6f,
                                 false, 8.0f, 1.0f, 4.0f, 8192, 128, 8, 768, QB_TYPE_F16, 1};
    if (!strcmp(name, "tinyllama")) *c = tiny;
    else if (!strcmp(name, "llama3.1-8b")) *c = l3;
    else if (!strcmp(name, "qwen3-30b-a3b")) *c = q3;
    else return false;
    return true;
}

static int head_dim(const synth_cfg *c) { return c->head_dim > 0 ? c->head_dim : c->dim / c->heads; }

/* The converter's float32 computation, operation for operation (torch: x / t is
 * reciprocal(t) * x, scalars are rounded to float32 first). powf here is glibc's (correctly
 * rounded); torch's vectorised pow is within 1 ulp of it. */
void synth_llama3_rope_factors(const synth_cfg *c, float *out)
{
    int hd = head_dim(c);
    const float two_pi = (float)(2.0 * M_PI);
    const float orig = (float)c->rope_orig_ctx;
    const float lo_wl = (float)((double)c->rope_orig_ctx / c->rope_low);  /* python floats, exact */
    const float hi_wl = (float)((double)c->rope_orig_ctx / c->rope_high);
    const float span = (float)((double)c->rope_high - c->rope_low);
    for (int i = 0; i < hd / 2; i++) {
        float e = (float)(2 * i) / (float)hd;              /* arange(0, dim, 2) / dim */
        float freq = 1.0f / powf(c->rope_theta, e);        /* 1.0 / (base ** e) */
        float wavelen = (1.0f / freq) * two_pi;            /* 2 * math.pi / freq */
        if (wavelen < hi_wl) out[i] = 1.0f;
        else if (wavelen > lo_wl) out[i] = c->rope_factor;
        else {
            float smooth = ((1.0f / wavelen) * orig - c->rope_low) / span;
            out[i] = 1.0f / ((1.0f - smooth) / c->rope_factor + smooth);
        }
    }
}

/* ---------- random values ---------- */

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

/* ---------- the tensor list ---------- */

typedef enum { FILL_RANDOM, FILL_ONES, FILL_ROPE } fill_kind;

typedef struct {
    char name[48];
    int type, n_dims;
    int64_t ne[3];
    fill_kind fill;
    uint64_t seed; /* FILL_RANDOM: row r is seeded with seed ^ r * 0x100000001b3 */
} tdesc;

typedef struct {
    const synth_cfg *c;
    tdesc *t;
    int n;
    float *ones;    /* max(dim, head_dim) ones: every norm */
    float *rope;    /* head_dim / 2 divisors */
    uint64_t total; /* bytes of all tensors */
    uint64_t done;
    int next_pct;   /* next progress line at this percentage */
    double t0;
} synth_state;

static uint64_t tensor_bytes(const tdesc *t)
{
    uint64_t n = (uint64_t)t->ne[0];
    for (int d = 1; d < t->n_dims; d++) n *= (uint64_t)t->ne[d];
    return n * (t->type == QB_TYPE_F16 ? 2u : 4u);
}

static void put(synth_state *s, const char *name, int type, int n_dims, int64_t ne0, int64_t ne1, int64_t ne2,
                fill_kind fill, uint64_t seed)
{
    tdesc *t = &s->t[s->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = type;
    t->n_dims = n_dims;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->ne[2] = ne2;
    t->fill = fill;
    t->seed = seed;
    s->total += tensor_bytes(t);
}

/* The tensors in llama.cpp's usual order (the norms after the matrix they follow in the
 * TinyLlama files this program always wrote, so those bytes do not change). */
static void list_tensors(synth_state *s)
{
    const synth_cfg *c = s->c;
    int64_t d = c->dim, hd = head_dim(c), q = (int64_t)c->heads * hd, kv = (int64_t)c->kv_heads * hd;
    int64_t f = c->ffn, ef = c->expert_ffn, ne = c->experts, v = c->vocab;
    bool qk_norm = !strcmp(c->arch, "qwen3moe");
    int mt = c->type;
    char n[48];
#define SEED(l, k) splitmix64(c->seed * 1000003ull + (uint64_t)((l) + 1) * 16 + (uint64_t)(k))
    if (c->rope_freqs) put(s, "rope_freqs.weight", QB_TYPE_F32, 1, hd / 2, 1, 1, FILL_ROPE, 0);
    put(s, "token_embd.weight", mt, 2, d, v, 1, FILL_RANDOM, SEED(-1, 0));
    for (int l = 0; l < c->layers; l++) {
#define NAME(what) (snprintf(n, sizeof n, "blk.%d.%s", l, what), n)
        put(s, NAME("attn_q.weight"), mt, 2, d, q, 1, FILL_RANDOM, SEED(l, 0));
        put(s, NAME("attn_norm.weight"), QB_TYPE_F32, 1, d, 1, 1, FILL_ONES, 0);
        put(s, NAME("attn_k.weight"), mt, 2, d, kv, 1, FILL_RANDOM, SEED(l, 1));
        put(s, NAME("attn_v.weight"), mt, 2, d, kv, 1, FILL_RANDOM, SEED(l, 2));
        put(s, NAME("attn_output.weight"), mt, 2, q, d, 1, FILL_RANDOM, SEED(l, 3));
        put(s, NAME("ffn_norm.weight"), QB_TYPE_F32, 1, d, 1, 1, FILL_ONES, 0);
        if (qk_norm) {
            put(s, NAME("attn_q_norm.weight"), QB_TYPE_F32, 1, hd, 1, 1, FILL_ONES, 0);
            put(s, NAME("attn_k_norm.weight"), QB_TYPE_F32, 1, hd, 1, 1, FILL_ONES, 0);
        }
        if (ne > 0) {
            /* the router stays F32, as llama.cpp's converter keeps ffn_gate_inp */
            put(s, NAME("ffn_gate_inp.weight"), QB_TYPE_F32, 2, d, ne, 1, FILL_RANDOM, SEED(l, 7));
            put(s, NAME("ffn_gate_exps.weight"), mt, 3, d, ef, ne, FILL_RANDOM, SEED(l, 4));
            put(s, NAME("ffn_up_exps.weight"), mt, 3, d, ef, ne, FILL_RANDOM, SEED(l, 5));
            put(s, NAME("ffn_down_exps.weight"), mt, 3, ef, d, ne, FILL_RANDOM, SEED(l, 6));
        } else {
            put(s, NAME("ffn_gate.weight"), mt, 2, d, f, 1, FILL_RANDOM, SEED(l, 4));
            put(s, NAME("ffn_up.weight"), mt, 2, d, f, 1, FILL_RANDOM, SEED(l, 5));
            put(s, NAME("ffn_down.weight"), mt, 2, f, d, 1, FILL_RANDOM, SEED(l, 6));
        }
#undef NAME
    }
    put(s, "output_norm.weight", QB_TYPE_F32, 1, d, 1, 1, FILL_ONES, 0);
    put(s, "output.weight", mt, 2, d, v, 1, FILL_RANDOM, SEED(c->layers, 0));
#undef SEED
}

/* Lazy producer: fill tensor index's rows (spread over OpenMP threads), report progress. */
static qb_status produce(void *ud, int index, void *dst, size_t nbytes)
{
    synth_state *s = ud;
    const tdesc *t = &s->t[index];
    int64_t cols = t->ne[0], rows = t->ne[1] * t->ne[2];
    size_t esz = t->type == QB_TYPE_F16 ? 2 : 4;
    uint8_t *p = dst;
    #pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++)
        fill_row(p + (size_t)r * (size_t)cols * esz, t->type, cols, t->seed ^ (uint64_t)r * 0x100000001b3ull);
    s->done += nbytes;
    int pct = s->total ? (int)(100 * s->done / s->total) : 100;
    if (s->total >= (1ull << 30) && pct >= s->next_pct) {
        fprintf(stderr, "synth_model: %3d%%  %.2f of %.2f GB  %.0f s\n", pct, s->done / 1e9, s->total / 1e9,
                synth_now() - s->t0);
        while (s->next_pct <= pct) s->next_pct += 5;
    }
    return QB_OK;
}

/* ---------- metadata ---------- */

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

/* The "<arch>.*" keys llama.cpp reads (the plain Llama keys in the order this program always
 * wrote them; head sizes, experts after). */
static bool add_hparams(qb_gguf_writer *w, const synth_cfg *c)
{
    const char *a = c->arch;
    bool moe_arch = !strcmp(a, "qwen3moe");
    char name[96], k[96];
    if (c->experts > 0)
        snprintf(name, sizeof name, "synthetic %s %dL %dd %dx%d experts", a, c->layers, c->dim, c->experts,
                 c->expert_ffn);
    else snprintf(name, sizeof name, "synthetic %s %dL %dd", a, c->layers, c->dim);
#define KEY(s) (snprintf(k, sizeof k, "%s.%s", a, s), k)
    /* llama.cpp's llama graph sizes experts by feed_forward_length; qwen3moe has its own key */
    int ffn = c->experts > 0 && !moe_arch ? c->expert_ffn : c->ffn;
    bool ok = qb_gguf_set_str(w, "general.architecture", a) && qb_gguf_set_str(w, "general.name", name) &&
              qb_gguf_set_u32(w, "general.alignment", 32) &&
              qb_gguf_set_u32(w, "general.file_type", c->type == QB_TYPE_F16 ? 1 : 0) &&
              qb_gguf_set_u32(w, KEY("context_length"), (uint32_t)c->ctx) &&
              qb_gguf_set_u32(w, KEY("embedding_length"), (uint32_t)c->dim) &&
              qb_gguf_set_u32(w, KEY("feed_forward_length"), (uint32_t)ffn) &&
              qb_gguf_set_u32(w, KEY("block_count"), (uint32_t)c->layers) &&
              qb_gguf_set_u32(w, KEY("attention.head_count"), (uint32_t)c->heads) &&
              qb_gguf_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)c->kv_heads) &&
              (moe_arch || qb_gguf_set_u32(w, KEY("rope.dimension_count"), (uint32_t)head_dim(c))) &&
              qb_gguf_set_f32(w, KEY("rope.freq_base"), c->rope_theta) &&
              qb_gguf_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), c->norm_eps) &&
              qb_gguf_set_u32(w, KEY("vocab_size"), (uint32_t)c->vocab);
    if (ok && head_dim(c) * c->heads != c->dim)
        ok = qb_gguf_set_u32(w, KEY("attention.key_length"), (uint32_t)head_dim(c)) &&
             qb_gguf_set_u32(w, KEY("attention.value_length"), (uint32_t)head_dim(c));
    if (ok && c->experts > 0)
        ok = qb_gguf_set_u32(w, KEY("expert_count"), (uint32_t)c->experts) &&
             qb_gguf_set_u32(w, KEY("expert_used_count"), (uint32_t)c->experts_used) &&
             (!moe_arch || qb_gguf_set_u32(w, KEY("expert_feed_forward_length"), (uint32_t)c->expert_ffn));
#undef KEY
    return ok;
}

/* ---------- the file ---------- */

static const char *check_shape(const synth_cfg *c)
{
    int hd = head_dim(c);
    if (strcmp(c->arch, "llama") && strcmp(c->arch, "qwen3moe")) return "--arch is llama or qwen3moe";
    if (c->layers < 1 || c->dim < 32 || c->dim % 32 || c->heads < 1 || c->kv_heads < 1 || c->heads % c->kv_heads)
        return "need dim a multiple of 32, kv_heads dividing heads";
    if (c->head_dim == 0 && c->dim % c->heads) return "heads must divide dim (or give --head-dim)";
    if (hd < 2 || hd % 2 || ((int64_t)c->heads * hd) % 32) return "head_dim must be even and heads * head_dim a multiple of 32";
    if (c->ffn < 32 || c->ffn % 32) return "ffn must be a multiple of 32";
    if (c->vocab < 260 || c->ctx < 1) return "vocab must be at least 260, ctx at least 1";
    if (!strcmp(c->arch, "qwen3moe") && c->experts == 0) return "qwen3moe needs --experts";
    if (c->experts < 0 || c->experts > 256 || (c->experts > 0 && (c->experts_used < 1 || c->experts_used > c->experts ||
                                                                    c->expert_ffn < 32 || c->expert_ffn % 32)))
        return "experts: 1..256, experts-used 1..experts, expert-ffn a multiple of 32";
    if (c->rope_freqs && !(c->rope_factor >= 1 && c->rope_low > 0 && c->rope_high > c->rope_low && c->rope_orig_ctx > 0))
        return "llama3 RoPE needs factor >= 1, 0 < low < high, orig-ctx > 0";
    if (!(c->rope_theta > 0) || !(c->norm_eps > 0)) return "rope-theta and norm-eps must be positive";
    return NULL;
}

/* Free bytes for an unprivileged user on the file system that will hold path, or -1. */
static int64_t free_bytes(const char *path)
{
    char *dup = strdup(path);
    if (!dup) return -1;
    struct statvfs sv;
    int rc = statvfs(dirname(dup), &sv);
    free(dup);
    return rc == 0 ? (int64_t)((uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize) : -1;
}

int synth_llama(const char *out, const synth_cfg *c)
{
    const char *bad = check_shape(c);
    if (bad) return synth_fail("bad shape: %s", bad);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    synth_state s = {.c = c, .next_pct = 5, .t0 = synth_now()};
    int max_t = 12 * c->layers + 8, rc = 1;
    int hd = head_dim(c);
    s.t = calloc((size_t)max_t, sizeof *s.t);
    s.ones = malloc((size_t)(c->dim > hd ? c->dim : hd) * sizeof *s.ones);
    s.rope = malloc((size_t)(hd / 2) * sizeof *s.rope);
    qb_gguf_writer *w = qb_gguf_writer_new();
    if (!s.t || !s.ones || !s.rope || !w || !add_hparams(w, c) || !add_vocab(w, c->vocab)) {
        synth_fail("%s", "out of memory building the model");
        goto out;
    }
    for (int i = 0; i < (c->dim > hd ? c->dim : hd); i++) s.ones[i] = 1.0f;
    if (c->rope_freqs) synth_llama3_rope_factors(c, s.rope);
    list_tensors(&s);
    for (int i = 0; i < s.n; i++) {
        const tdesc *t = &s.t[i];
        bool ok = t->fill == FILL_RANDOM
                      ? qb_gguf_add_tensor_lazy(w, t->name, t->type, t->n_dims, t->ne, produce, &s, i)
                      : qb_gguf_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->fill == FILL_ONES ? s.ones : s.rope);
        if (!ok) {
            synth_fail("cannot add tensor %s", t->name);
            goto out;
        }
    }
    /* the data plus a generous allowance for the header (vocabulary strings) */
    uint64_t need = s.total + (uint64_t)c->vocab * 64 + (64ull << 20);
    int64_t avail = free_bytes(out);
    fprintf(stderr, "synth_model: %s: %d tensors, %.3f GB of weights (%s)\n", out, s.n, s.total / 1e9,
            c->type == QB_TYPE_F16 ? "F16" : "F32");
    if (avail >= 0 && (uint64_t)avail < need) {
        fprintf(stderr, "synth_model: not enough disk for %s: %.2f GB needed, %.2f GB free\n", out, need / 1e9,
                avail / 1e9);
        goto out;
    }
    if (qb_gguf_write_file(&ctx, w, out, NULL) != QB_OK) {
        synth_fail("%s", qb_ctx_errmsg(&ctx));
        goto out;
    }
    fprintf(stderr, "synth_model: wrote %s (%.1f s)\n", out, synth_now() - s.t0);
    rc = 0;
out:
    qb_gguf_writer_free(w);
    free(s.t);
    free(s.ones);
    free(s.rope);
    return rc;
}
