/* bench_w8a8.c — the matrix multiply of one real layer in each activation mode, one thread,
 * best of R runs in thread CPU time (robust on a busy machine): qb-docs-26m's blk.2.ffn_down (1536 → 512, whose
 * inputs reach |x| ≈ 350) and blk.2.ffn_up (512 → 1536), fed the real activations the model
 * computes for the first 128 tokens of eval-docs.txt, as F16 (the file's), Q8_0 (packed, 8-bit
 * activations per 32-block), int8 weights with float activations, W8A8 dynamic, W8A8 static,
 * LLM.int8() at threshold 6 and ∞. Prints µs per call and tokens/s for T = 1 and T = 128, and
 * LLM.int8's outlier columns.
 *
 * Build (from the project root, after make):
 *   cc -std=c11 -D_GNU_SOURCE -O2 -fopenmp -Isrc -Ikernels tests/bench/bench_w8a8.c \
 *      build/libqb.a $(pkg-config --libs cairo jansson libpcre2-8 lua5.4 ncursesw readline) -lm -lpthread
 * Models from $QB_MODELS (default ../shared/models), text from $QB_DATA (../shared/data). */
#include "core/model/model.h"
#include "core/infer/infer.h"
#include "core/infer/matmul.h"
#include "core/infer/matmul_w8a8.h"
#include "core/eval/eval.h"
#include "core/quant/apply.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { T = 128, LAYER = 2 };

typedef struct {
    float *down, *up; /* T × hidden, T × dim */
} capture;

static void grab(void *ud, int layer, qb_obs_point pt, float *x, int n, int width)
{
    capture *c = ud;
    if (layer != LAYER || n != T) return;
    if (pt == QB_OBS_FFN_DOWN_IN) memcpy(c->down, x, sizeof(float) * n * width);
    if (pt == QB_OBS_FFN_IN) memcpy(c->up, x, sizeof(float) * n * width);
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: robust on a busy machine */
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

/* Time of one multiplication of nt tokens, as the forward pass makes it: W8A8 when a asks
 * for int8 activations (counting outlier columns into cnt), else qb_matmul. */
static double best_us(const qb_tensor *w, const qb_act_setting *a, qb_act_counts *cnt, const float *x, int nt, float *y,
                      int reps)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now_us();
        int calls = nt == 1 ? 32 : 1;
        for (int i = 0; i < calls; i++) {
            const float *xi = x + (size_t)(i % T) * w->ne[0] * (nt == 1);
            if (!qb_matmul_w8a8(w, a, cnt, xi, nt, y)) qb_matmul(w, xi, nt, y);
        }
        double dt = (now_us() - t0) / calls;
        if (dt < best) best = dt;
    }
    return best;
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 7;
    const char *mdir = getenv("QB_MODELS"), *ddir = getenv("QB_DATA");
    char mp[1024], dp[1024];
    snprintf(mp, sizeof mp, "%s/qb-docs-26m/qb-docs-26m-f16.gguf", mdir && *mdir ? mdir : "../shared/models");
    snprintf(dp, sizeof dp, "%s/eval-docs.txt", ddir && *ddir ? ddir : "../shared/data");
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = NULL;
    int32_t *toks = NULL;
    int nt = 0;
    if (qb_model_open(&ctx, mp, NULL, &m) != QB_OK || qb_eval_load_text(&ctx, m, dp, &toks, &nt) != QB_OK) {
        fprintf(stderr, "bench_w8a8: %s\n", qb_ctx_errmsg(&ctx));
        return 1;
    }
    capture cap = {malloc(sizeof(float) * T * m->cfg.hidden_dim), malloc(sizeof(float) * T * m->cfg.dim)};
    qb_infer *s = NULL;
    qb_infer_new(&ctx, m, T, T, &s);
    qb_infer_set_observer(s, grab, &cap);
    qb_infer_eval(&ctx, s, toks, T, 0, NULL, 0);
    qb_infer_free(s);
    omp_set_num_threads(1);
    float *y = malloc(sizeof(float) * T * m->cfg.hidden_dim);
    qb_tensor *ts[2] = {m->layers[LAYER].w_down, m->layers[LAYER].w_up};
    const float *xs[2] = {cap.down, cap.up};
    qb_format q8 = qb_format_ggml(QB_TYPE_Q8_0), i8 = {.kind = QB_FMT_INT, .bits = 8, .group = QB_GROUP_CHANNEL};
    printf("| %-16s | %-24s | %10s | %10s | %11s | %11s |\n", "tensor", "mode", "T=1 us", "T=128 us", "T=1 tok/s",
           "T=128 tok/s");
    printf("|------------------|--------------------------|------------|------------|-------------|-------------|\n");
    for (int k = 0; k < 2; k++) {
        qb_tensor *w = ts[k];
        float amax = 0;
        for (int i = 0; i < T * (int)w->ne[0]; i++) amax = fmaxf(amax, fabsf(xs[k][i]));
        struct { const char *name; const qb_format *f; int mode; float thr; } modes[] = {
            {"F16", NULL, QB_ACT_FLOAT, 0},
            {"Q8_0 (packed)", &q8, QB_ACT_FLOAT, 0},
            {"int8 weights, f32 act", &i8, QB_ACT_FLOAT, 0},
            {"W8A8 dynamic", &i8, QB_ACT_INT8, 0},
            {"W8A8 static", &i8, QB_ACT_INT8_STATIC, 0},
            {"LLM.int8 threshold inf", &i8, QB_ACT_INT8_OUTLIER, INFINITY},
            {"LLM.int8 threshold 6", &i8, QB_ACT_INT8_OUTLIER, 6.0f},
        };
        const char *only = getenv("BENCH_W8A8_ONLY"); /* a mode index, for profiling one mode */
        for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
            if (only && *only && (size_t)atoi(only) != i) continue;
            if (modes[i].f) qb_tensor_quantize(&ctx, w, modes[i].f, NULL);
            else qb_tensor_restore(&ctx, w);
            qb_act_setting as = {.mode = modes[i].mode, .scale = amax / 127.0f, .threshold = modes[i].thr};
            qb_act_counts cnt = {0, 0};
            double t1 = best_us(w, &as, &cnt, xs[k], 1, y, reps), tb = best_us(w, &as, &cnt, xs[k], T, y, reps);
            printf("| %-16s | %-24s | %10.1f | %10.1f | %11.0f | %11.0f |", strchr(w->name, '.') + 1, modes[i].name, t1,
                   tb, 1e6 / t1, T * 1e6 / tb);
            if (modes[i].mode == QB_ACT_INT8_OUTLIER)
                printf(" outlier columns %.1f%% (T=1 and T=128 calls)",
                       100.0 * (double)cnt.outlier / (double)(cnt.seen ? cnt.seen : 1));
            printf("\n");
        }
    }
    free(y), free(cap.down), free(cap.up), free(toks);
    qb_model_close(m);
    return 0;
}
