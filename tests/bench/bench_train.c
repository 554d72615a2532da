/* bench_train.c — training throughput: forward and backward of the training pass
 * (src/core/infer/train.h, every parameter's gradient) on one sequence of T tokens with a
 * next-token cross-entropy loss, N timed steps after one warm-up; prints tokens/s. The same
 * step in PyTorch is scripts/bench-train.py; scripts/bench-train.sh runs both interleaved.
 *
 *   cc -std=c11 -D_GNU_SOURCE -O2 -fopenmp -Isrc -Ikernels tests/bench/bench_train.c build/libqb.a \
 *      $(LIBS) -lm -lpthread -o build/bench_train
 *   build/bench_train MODEL [T=256] [N=5] [threads=2] */
#include "core/infer/train.h"
#include "core/infer/backward.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_train MODEL [T] [N] [threads]\n");
        return 2;
    }
    const int T = argc > 2 ? atoi(argv[2]) : 256, N = argc > 3 ? atoi(argv[3]) : 5;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    ctx.n_threads = argc > 4 ? atoi(argv[4]) : 2;
    qb_model *m;
    qb_train_params *p, *g;
    qb_train_pass *tp;
    if (qb_model_open(&ctx, argv[1], NULL, &m) != QB_OK || qb_train_params_new(&ctx, m, true, &p) != QB_OK ||
        qb_train_params_new(&ctx, m, false, &g) != QB_OK || qb_train_pass_new(&ctx, m, T, &tp) != QB_OK) {
        fprintf(stderr, "bench_train: %s\n", qb_ctx_errmsg(&ctx));
        return 1;
    }
    const int V = m->cfg.vocab_size;
    int32_t *tok = malloc(sizeof *tok * T), *tgt = malloc(sizeof *tgt * T);
    float *logits = malloc(sizeof(float) * T * V), *dlog = malloc(sizeof(float) * T * V);
    uint32_t s = 1;
    for (int t = 0; t < T; t++) { /* the token ids bench-train.py uses: (i · 2654435761) mod vocab */
        s = (uint32_t)t * 2654435761u;
        tok[t] = (int32_t)(s % (uint32_t)V);
    }
    for (int t = 0; t < T; t++) tgt[t] = t + 1 < T ? tok[t + 1] : -1;
    double loss = 0, t0 = 0;
    for (int it = 0; it <= N; it++) {
        if (it == 1) t0 = now();
        qb_train_params_zero(g);
        if (qb_train_forward(&ctx, tp, p, tok, T, logits) != QB_OK) return 1;
        loss = qb_bw_cross_entropy(logits, tgt, T, V, dlog);
        if (qb_train_backward(&ctx, tp, p, dlog, g) != QB_OK) return 1;
    }
    const double sec = now() - t0;
    printf("quantbench train step: %d tokens x %d steps, %.3f s, %.1f tokens/s, loss %.6f\n", T, N, sec, T * N / sec, loss);
    return 0;
}
