/* tok_testutil.h — helpers the tokenizer tests share: ids compared and printed, round trips,
 * llama.cpp's vector files (.inp strings, .out ids), error-message checks, GPT-2's byte
 * symbols, a private directory per tokenizer.json (tokenizer_config.json beside it is the
 * test's), and a GGUF (v3, no tensors) built in memory key by key. */
#ifndef QB_TOK_TESTUTIL_H
#define QB_TOK_TESTUTIL_H

#include "testutil.h"

#include "core/qb.h"
#include "core/tokenizer/tokenizer.h"
#include "core/util/gguf.h"

#include <stdbool.h>
#include <sys/stat.h>

/* ---- ids ---- */

#define QBT_VOCAB_SEP "\n__ggml_vocab_test__\n" /* between the strings of an .inp file */

/* llama.cpp's vector files: the .inp strings and, per string, the .out ids. */
typedef struct {
    char *inp;          /* the slurped .inp, cut in place */
    char *str[64];
    size_t len[64];
    int32_t *ids[64];
    int n_ids[64];
    int n;
} vectors;

static inline void vectors_load(vectors *v, const char *gguf_rel)
{
    char rel[256];
    memset(v, 0, sizeof *v);
    snprintf(rel, sizeof rel, "%s.inp", gguf_rel);
    size_t len;
    v->inp = qbt_slurp(qbt_model_path(rel), &len);
    char *p = v->inp, *end = v->inp + len;
    while (p < end && v->n < 64) {
        char *q = strstr(p, QBT_VOCAB_SEP);
        if (!q) q = end;
        *q = 0;
        v->str[v->n] = p;
        v->len[v->n] = (size_t)(q - p);
        v->n++;
        p = q == end ? end : q + strlen(QBT_VOCAB_SEP);
    }
    snprintf(rel, sizeof rel, "%s.out", gguf_rel);
    char *out = qbt_slurp(qbt_model_path(rel), NULL);
    char *line = out;
    int n_lines = 0;
    while (*line && n_lines < v->n) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        v->ids[n_lines] = malloc(sizeof(int32_t) * (strlen(line) / 2 + 1));
        int k = 0;
        char *s = line, *e;
        for (long x = strtol(s, &e, 10); e != s; x = strtol(s, &e, 10)) {
            v->ids[n_lines][k++] = (int32_t)x;
            s = e;
        }
        v->n_ids[n_lines++] = k;
        line = nl ? nl + 1 : line + strlen(line);
    }
    free(out);
    assert_int_equal(n_lines, 46); /* the README: 46 strings, one .out line each */
    v->n = n_lines;
}

static inline void vectors_free(vectors *v)
{
    for (int i = 0; i < v->n; i++) free(v->ids[i]);
    free(v->inp);
}

static inline bool ids_equal(const int32_t *a, int na, const int32_t *b, int nb)
{
    return na == nb && (na == 0 || memcmp(a, b, sizeof *a * (size_t)na) == 0);
}

static inline void print_ids(const char *what, const int32_t *ids, int n)
{
    char buf[2048];
    size_t o = 0;
    for (int i = 0; i < n && o < sizeof buf - 16; i++) o += (size_t)snprintf(buf + o, sizeof buf - o, " %d", ids[i]);
    buf[o] = 0;
    print_message("    %s:%s\n", what, buf);
}

/* Tokenize and compare with the expected ids; prints both on a mismatch. */
static inline bool check_ids(const qb_tokenizer *t, const char *s, size_t len, bool bos, const int32_t *want, int n_want)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int32_t *ids;
    int n;
    qb_status st = qb_tokenize(&ctx, t, s, len, bos, &ids, &n);
    if (st != QB_OK) fail_msg("tokenize failed: %s", qb_ctx_errmsg(&ctx));
    bool ok = ids_equal(ids, n, want, n_want);
    if (!ok) {
        print_message("  mismatch for \"%.*s\"\n", (int)len, s);
        print_ids("want", want, n_want);
        print_ids("got ", ids, n);
    }
    free(ids);
    return ok;
}

/* detokenize(tokenize(s)) == s, with BOS for SPM (which drops the dummy prefix) */
static inline bool round_trip(const qb_tokenizer *t, const char *s, size_t len)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int32_t *ids;
    int n;
    bool spm = qb_tokenizer_kind(t) == QB_TOK_SPM;
    assert_int_equal(qb_tokenize(&ctx, t, s, len, spm, &ids, &n), QB_OK);
    char *back = qb_detokenize(t, ids, n);
    assert_non_null(back);
    bool ok = strlen(back) == len && memcmp(back, s, len) == 0;
    if (!ok) print_message("  round trip: \"%.*s\" came back as \"%s\"\n", (int)len, s, back);
    free(back);
    free(ids);
    return ok;
}

/* ---- messages, byte symbols, tokenizer.json directories ---- */

static inline void assert_msg_has(const qb_ctx *ctx, const char *needle)
{
    if (!strstr(qb_ctx_errmsg(ctx), needle))
        fail_msg("error message \"%s\" lacks \"%s\"", qb_ctx_errmsg(ctx), needle);
}

/* GPT-2's bytes_to_unicode, written out independently of the library. */
static inline void byte_symbol(int b, char *out)
{
    int cp = b;
    if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)) {
        int k = 0;
        for (int c = 0; c < b; c++) k += !((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE);
        cp = 256 + k;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

/* A directory of its own for each tokenizer.json, so tokenizer_config.json beside it is ours. */
typedef struct {
    char dir[256];
    char json[300];
    char cfg[300];
} hf_dir;

static inline void hf_dir_make(hf_dir *d, const char *json, const char *cfg)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(d->dir, sizeof d->dir, "%s/qbtest-hf-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(d->dir));
    snprintf(d->json, sizeof d->json, "%s/tokenizer.json", d->dir);
    snprintf(d->cfg, sizeof d->cfg, "%s/tokenizer_config.json", d->dir);
    FILE *f = fopen(d->json, "wb");
    fputs(json, f);
    fclose(f);
    if (cfg) {
        f = fopen(d->cfg, "wb");
        fputs(cfg, f);
        fclose(f);
    }
}

static inline void hf_dir_remove(hf_dir *d)
{
    unlink(d->json);
    unlink(d->cfg);
    rmdir(d->dir);
}

/* GPT-2's byte symbol of b as a string, in one of 8 rotating static buffers. */
static inline const char *sym(int b)
{
    static char buf[8][4];
    static int k;
    char *o = buf[k++ & 7];
    byte_symbol(b, o);
    return o;
}

/* Tokenize with special tokens matched (qb_tokenize_special) and compare. */
static inline bool check_special(const qb_tokenizer *t, const char *s, const int32_t *want, int n_want)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int32_t *ids;
    int n;
    if (qb_tokenize_special(&ctx, t, s, strlen(s), false, &ids, &n) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    bool ok = ids_equal(ids, n, want, n_want);
    if (!ok) {
        print_message("  mismatch (special tokens matched) for \"%s\"\n", s);
        print_ids("want", want, n_want);
        print_ids("got ", ids, n);
    }
    free(ids);
    return ok;
}

/* ---- a GGUF built in memory ---- */

typedef struct {
    char *b;
    size_t n, cap;
    uint64_t n_kv;
} gbuf;

static inline void gb_put(gbuf *g, const void *p, size_t n)
{
    if (g->n + n > g->cap) {
        g->cap = (g->n + n) * 2 + 256;
        g->b = realloc(g->b, g->cap);
    }
    memcpy(g->b + g->n, p, n);
    g->n += n;
}
static inline void gb_u32(gbuf *g, uint32_t v) { gb_put(g, &v, 4); }
static inline void gb_u64(gbuf *g, uint64_t v) { gb_put(g, &v, 8); }
static inline void gb_str(gbuf *g, const char *s)
{
    gb_u64(g, strlen(s));
    gb_put(g, s, strlen(s));
}
static inline void gb_key(gbuf *g, const char *k, uint32_t type)
{
    gb_str(g, k);
    gb_u32(g, type);
    g->n_kv++;
}
static inline void kv_str(gbuf *g, const char *k, const char *v)
{
    gb_key(g, k, QB_GGUF_STRING);
    gb_str(g, v);
}
static inline void kv_u32(gbuf *g, const char *k, uint32_t v)
{
    gb_key(g, k, QB_GGUF_UINT32);
    gb_u32(g, v);
}
static inline void kv_arr_str(gbuf *g, const char *k, const char *const *v, int n)
{
    gb_key(g, k, QB_GGUF_ARRAY);
    gb_u32(g, QB_GGUF_STRING);
    gb_u64(g, (uint64_t)n);
    for (int i = 0; i < n; i++) gb_str(g, v[i]);
}
static inline void kv_arr_num(gbuf *g, const char *k, uint32_t type, const void *v, int n)
{
    gb_key(g, k, QB_GGUF_ARRAY);
    gb_u32(g, type);
    gb_u64(g, (uint64_t)n);
    gb_put(g, v, 4 * (size_t)n);
}

/* Open the keys written so far as a GGUF and build a tokenizer from it. */
static inline qb_status gguf_tok(qb_ctx *ctx, const gbuf *body, qb_tokenizer **t)
{
    gbuf f = {0};
    gb_put(&f, "GGUF", 4);
    gb_u32(&f, 3);
    gb_u64(&f, 0);
    gb_u64(&f, body->n_kv);
    gb_put(&f, body->b, body->n);
    qb_gguf *g;
    qb_status st = qb_gguf_open_memory(ctx, "mem.gguf", f.b, f.n, &g);
    if (st == QB_OK) {
        st = qb_tokenizer_from_gguf(ctx, g, t);
        qb_gguf_close(g);
    }
    free(f.b);
    return st;
}

static inline void kv_bool(gbuf *g, const char *k, bool v)
{
    uint8_t b = v;
    gb_key(g, k, QB_GGUF_BOOL);
    gb_put(g, &b, 1);
}

#endif
