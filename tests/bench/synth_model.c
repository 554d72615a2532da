/* synth_model.c — helper for the benchmark scripts (scripts/bench.sh, bench-8b.sh): makes the
 * GGUF models the benchmarks run on and measures what the machine can do, so `make bench` needs
 * no downloads.
 *
 *   synth_model --to-f32 IN.gguf OUT.gguf
 *       copy a GGUF with every F16/BF16 tensor widened to F32 and every metadata key copied
 *       (tokenizer arrays included; general.file_type becomes 0 = ALL_F32).
 *   synth_model --llama OUT.gguf [--preset tinyllama|llama3.1-8b|qwen3-30b-a3b] [--arch llama|qwen3moe]
 *               [--type f16|f32] [--seed S] [--layers N] [--dim N] [--ffn N] [--heads N]
 *               [--kv-heads N] [--head-dim N] [--vocab N] [--ctx N] [--rope-theta F] [--norm-eps F]
 *               [--rope-freqs llama3|none] [--rope-factor F] [--rope-low F] [--rope-high F]
 *               [--rope-orig-ctx N] [--experts N] [--experts-used N] [--expert-ffn N]
 *       a Llama-family model with random weights (approximately normal, sigma 0.02; norms 1),
 *       untied output and a minimal SentencePiece-style "llama" vocabulary that both quantbench
 *       and llama.cpp load (synth_llama.c). The preset (default tinyllama: TinyLlama-1.1B's
 *       shapes) sets every field, whatever its place on the line; the other options change one.
 *       llama3.1-8b adds rope_freqs.weight (llama3 factors); qwen3-30b-a3b writes experts as
 *       arch qwen3moe (q/k norms, expert_feed_forward_length), or with --arch llama as Mixtral-
 *       style experts llama.cpp c392e50 runs (feed_forward_length = the expert width).
 *   synth_model --membw [--mib 1024] [--threads 2] [--reps 3]
 *       STREAM-like read bandwidth: sum an array with T threads, best of R; prints GB/s.
 *   synth_model --weight-bytes FILE.gguf
 *       bytes of all tensors, and bytes one generated token reads (every tensor but
 *       token_embd, of which it reads one row, and the experts' *_exps tensors, of which it
 *       reads expert_used_count / expert_count): "total_bytes per_token_bytes".
 *   synth_model --measure OUT.txt [--timeout S] -- CMD [ARGS...]
 *       run CMD (its output left as it is), sample its /proc/PID/status every 10 ms, and write
 *       to OUT.txt "key value" lines: wall_s, exit (128+N for signal N; 124 when --timeout
 *       stopped it), hwm_kib (peak resident set: the kernel's VmHWM at exit, from wait4), and
 *       the largest sampled rss_kib (VmRSS), anon_kib (RssAnon: heap, copies) and file_kib
 *       (RssFile: pages of mapped files). Exits with CMD's status.
 *
 * Progress and notes go to stderr; the one-line results of --membw and --weight-bytes go to
 * stdout for the script to capture. Exit status 0 on success, 1 on failure. */
#include "synth.h"

#include "core/qb.h"
#include "core/util/gguf.h"
#include "core/util/gguf_write.h"

#include <errno.h>
#include <fcntl.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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
    if (qb_gguf_open(&ctx, in, &g) != QB_OK) return synth_fail("%s", qb_ctx_errmsg(&ctx));
    qb_gguf_writer *w = qb_gguf_writer_new();
    void **bufs = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *bufs);
    int rc = 1;
    if (!w || !bufs) {
        synth_fail("%s", "out of memory");
        goto out;
    }
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const qb_gguf_kv *kv = &g->kv[i];
        bool changed = false, ok;
        if (!strcmp(kv->key, "general.file_type")) ok = qb_gguf_set_u32(w, kv->key, 0); /* ALL_F32 */
        else ok = copy_kv(w, kv, &changed);
        if (!ok) {
            synth_fail("cannot copy metadata key %s", kv->key);
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
                synth_fail("%s", "out of memory");
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
            synth_fail("cannot add tensor %s", t->name);
            goto out;
        }
    }
    if (qb_gguf_write_file(&ctx, w, out, NULL) != QB_OK) {
        synth_fail("%s", qb_ctx_errmsg(&ctx));
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
    if (!p) return synth_fail("%s", "cannot allocate the bandwidth array");
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
        double t0 = synth_now();
        #pragma omp parallel num_threads(threads) reduction(+ : total)
        {
            int t = omp_get_thread_num(), nt = omp_get_num_threads();
            size_t lo = nv * (size_t)t / (size_t)nt, hi = nv * (size_t)(t + 1) / (size_t)nt;
            total += sum_block(p + lo, hi - lo);
        }
        double gbs = (double)bytes / (synth_now() - t0) / 1e9;
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
    if (qb_gguf_open(&ctx, path, &g) != QB_OK) return synth_fail("%s", qb_ctx_errmsg(&ctx));
    /* experts: one token reads expert_used_count of expert_count experts */
    const char *arch = qb_gguf_get_str(g, "general.architecture");
    char k[96];
    snprintf(k, sizeof k, "%s.expert_count", arch ? arch : "llama");
    int64_t n_exp = qb_gguf_get_int(g, k, 0);
    snprintf(k, sizeof k, "%s.expert_used_count", arch ? arch : "llama");
    int64_t n_used = qb_gguf_get_int(g, k, 0);
    uint64_t total = 0, per_tok = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const qb_gguf_tensor *t = &g->tensors[i];
        total += t->nbytes;
        if (!strcmp(t->name, "token_embd.weight")) per_tok += t->ne[1] > 0 ? t->nbytes / (uint64_t)t->ne[1] : 0;
        else if (strstr(t->name, "_exps.weight") && n_exp > 0 && n_used > 0 && n_used <= n_exp)
            per_tok += t->nbytes / (uint64_t)n_exp * (uint64_t)n_used;
        else per_tok += t->nbytes;
    }
    printf("%llu %llu\n", (unsigned long long)total, (unsigned long long)per_tok);
    qb_gguf_close(g);
    return 0;
}

/* ---------- --measure ---------- */

/* The value of "Key:" in /proc/PID/status, in kB (-1 when absent: a zombie has none). */
static long status_kib(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

static int measure(const char *out, double timeout_s, char **cmd)
{
    FILE *f = fopen(out, "w");
    if (!f) return synth_fail("cannot write %s", out);
    fflush(NULL);
    /* a close-on-exec pipe: the parent's read returns when the exec happened (or failed), so
       sampling starts on CMD, never on the forked copy of this program */
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        fclose(f);
        return synth_fail("%s", "pipe failed");
    }
    double t0 = synth_now();
    pid_t pid = fork();
    if (pid < 0) {
        fclose(f);
        return synth_fail("%s", "fork failed");
    }
    if (pid == 0) {
        close(pfd[0]);
        execvp(cmd[0], cmd);
        int e = errno;
        fprintf(stderr, "synth_model: cannot run %s: %s\n", cmd[0], strerror(e));
        if (write(pfd[1], &e, sizeof e) < 0) _exit(127);
        _exit(127);
    }
    close(pfd[1]);
    int exec_errno = 0;
    while (read(pfd[0], &exec_errno, sizeof exec_errno) < 0 && errno == EINTR) {}
    close(pfd[0]);
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    long rss = 0, anon = 0, file = 0;
    int status = 0, stage = 0; /* timeout: 1 = SIGTERM sent, 2 = SIGKILL sent */
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    for (;;) {
        pid_t r = wait4(pid, &status, WNOHANG, &ru);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) {
            fclose(f);
            return synth_fail("%s", "wait4 failed");
        }
        FILE *s = fopen(path, "r");
        if (s) {
            size_t n = fread(buf, 1, sizeof buf - 1, s);
            buf[n] = '\0';
            fclose(s);
            long v;
            if ((v = status_kib(buf, "VmRSS:")) > rss) rss = v;
            if ((v = status_kib(buf, "RssAnon:")) > anon) anon = v;
            if ((v = status_kib(buf, "RssFile:")) > file) file = v;
        }
        double el = synth_now() - t0;
        if (timeout_s > 0 && el > timeout_s && stage == 0) kill(pid, SIGTERM), stage = 1;
        if (timeout_s > 0 && el > timeout_s + 10 && stage == 1) kill(pid, SIGKILL), stage = 2;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    double wall = synth_now() - t0;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1;
    if (stage > 0) code = 124;
    fprintf(f, "wall_s %.3f\nexit %d\nhwm_kib %ld\nrss_kib %ld\nanon_kib %ld\nfile_kib %ld\n", wall, code,
            ru.ru_maxrss, rss, anon, file);
    if (fclose(f) != 0) return synth_fail("cannot write %s", out);
    return code;
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

static bool float_arg(const char *opt, const char *v, double lo, double hi, float *out)
{
    char *end;
    double x = v ? strtod(v, &end) : 0;
    if (!v || *end || !(x >= lo && x <= hi)) {
        fprintf(stderr, "synth_model: %s needs a number in [%g, %g]\n", opt, lo, hi);
        return false;
    }
    *out = (float)x;
    return true;
}

static int usage(void)
{
    fprintf(stderr, "usage: synth_model --to-f32 IN.gguf OUT.gguf\n"
                    "       synth_model --llama OUT.gguf [--preset NAME] [--arch llama|qwen3moe] [--type f16|f32]\n"
                    "                   [--seed S] [--layers N] [--dim N] [--ffn N] [--heads N] [--kv-heads N]\n"
                    "                   [--head-dim N] [--vocab N] [--ctx N] [--rope-theta F] [--norm-eps F]\n"
                    "                   [--rope-freqs llama3|none] [--rope-factor F] [--rope-low F] [--rope-high F]\n"
                    "                   [--rope-orig-ctx N] [--experts N] [--experts-used N] [--expert-ffn N]\n"
                    "                   (presets: %s)\n"
                    "       synth_model --membw [--mib N] [--threads N] [--reps N]\n"
                    "       synth_model --weight-bytes FILE.gguf\n"
                    "       synth_model --measure OUT.txt [--timeout S] -- CMD [ARGS...]\n",
            synth_preset_names);
    return 1;
}

/* --llama OUT [options]: the preset first (wherever it stands), then the options in order. */
static int llama_main(int argc, char **argv)
{
    if (argc < 3) return usage();
    synth_cfg c;
    synth_preset(&c, "tinyllama");
    for (int i = 3; i + 1 < argc; i += 2)
        if (!strcmp(argv[i], "--preset") && !synth_preset(&c, argv[i + 1]))
            return synth_fail("unknown preset '%s' (tinyllama, llama3.1-8b, qwen3-30b-a3b)", argv[i + 1]);
    static const char *ints[] = {"--layers", "--dim", "--ffn", "--heads", "--kv-heads", "--head-dim", "--vocab",
                                 "--ctx", "--experts", "--experts-used", "--expert-ffn", "--rope-orig-ctx"};
    int *fields[] = {&c.layers, &c.dim, &c.ffn, &c.heads, &c.kv_heads, &c.head_dim, &c.vocab,
                     &c.ctx, &c.experts, &c.experts_used, &c.expert_ffn, &c.rope_orig_ctx};
    static const char *floats[] = {"--rope-theta", "--norm-eps", "--rope-factor", "--rope-low", "--rope-high"};
    float *ffields[] = {&c.rope_theta, &c.norm_eps, &c.rope_factor, &c.rope_low, &c.rope_high};
    for (int i = 3; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long x = 0;
        if (!v) return usage();
        if (!strcmp(a, "--preset")) continue;
        if (!strcmp(a, "--type")) {
            if (!strcmp(v, "f16")) c.type = QB_TYPE_F16;
            else if (!strcmp(v, "f32")) c.type = QB_TYPE_F32;
            else return synth_fail("--type is f16 or f32, not '%s'", v);
            continue;
        }
        if (!strcmp(a, "--arch")) {
            if (strcmp(v, "llama") && strcmp(v, "qwen3moe")) return synth_fail("--arch is llama or qwen3moe, not '%s'", v);
            snprintf(c.arch, sizeof c.arch, "%s", v);
            continue;
        }
        if (!strcmp(a, "--rope-freqs")) {
            if (strcmp(v, "llama3") && strcmp(v, "none")) return synth_fail("--rope-freqs is llama3 or none, not '%s'", v);
            c.rope_freqs = !strcmp(v, "llama3");
            continue;
        }
        if (!strcmp(a, "--seed")) {
            if (!int_arg(a, v, 0, 1L << 30, &x)) return 1;
            c.seed = (uint64_t)x;
            continue;
        }
        int k = 0, nk = (int)(sizeof ints / sizeof ints[0]);
        while (k < nk && strcmp(a, ints[k])) k++;
        if (k < nk) {
            if (!int_arg(a, v, k == 5 || k == 8 ? 0 : 1, 1 << 24, &x)) return 1;
            *fields[k] = (int)x;
            continue;
        }
        int nf = (int)(sizeof floats / sizeof floats[0]);
        for (k = 0; k < nf && strcmp(a, floats[k]); k++) {}
        if (k == nf) return usage();
        if (!float_arg(a, v, 1e-12, 1e12, ffields[k])) return 1;
    }
    return synth_llama(argv[2], &c);
}

int main(int argc, char **argv)
{
    if (argc < 2) return usage();
    const char *mode = argv[1];
    if (!strcmp(mode, "--to-f32")) return argc == 4 ? to_f32(argv[2], argv[3]) : usage();
    if (!strcmp(mode, "--weight-bytes")) return argc == 3 ? weight_bytes(argv[2]) : usage();
    if (!strcmp(mode, "--llama")) return llama_main(argc, argv);
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
    if (!strcmp(mode, "--measure")) {
        long tmo = 0;
        int i = 3;
        if (argc < 5) return usage();
        if (!strcmp(argv[i], "--timeout")) {
            if (!int_arg(argv[i], i + 1 < argc ? argv[i + 1] : NULL, 0, 1L << 30, &tmo)) return 1;
            i += 2;
        }
        if (i + 1 >= argc || strcmp(argv[i], "--")) return usage();
        return measure(argv[2], (double)tmo, argv + i + 1);
    }
    return usage();
}
