/* outlier_util.h — helpers shared by the W8A8 / SmoothQuant / LLM.int8 / KV-cache tests:
 * open a reference model (skipping when the models folder is absent), run it on fixed tokens,
 * compare logits. */
#ifndef QB_OUTLIER_UTIL_H
#define QB_OUTLIER_UTIL_H

#include "testutil.h"
#include <math.h>

#include "core/model/model.h"
#include "core/infer/infer.h"

/* The model at models/<rel>; when the file is absent the test stops as skipped (failed when
 * CI=true: qbt_need). */
static inline qb_model *ou_open(const char *rel)
{
    const char *p = qbt_model_path(rel);
    qbt_need(p);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model_opts o = {.skip_tokenizer = true};
    qb_model *m = NULL;
    if (qb_model_open(&ctx, p, &o, &m) != QB_OK) fail_msg("open %s: %s", rel, qb_ctx_errmsg(&ctx));
    return m;
}

/* n pseudo-random token ids below the vocabulary size, BOS-like id 1 first. */
static inline void ou_tokens(const qb_model *m, int32_t *t, int n)
{
    uint64_t r = 0x243F6A8885A308D3ull;
    for (int i = 0; i < n; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        t[i] = i == 0 ? 1 : (int32_t)((r >> 33) % (uint64_t)m->cfg.vocab_size);
    }
}

/* A run configuration for m (float, f32 KV); the caller frees it with qb_run_config_free. */
static inline qb_run_config *ou_run(const qb_model *m)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_run_config *rc = NULL;
    assert_int_equal(qb_run_config_new(&ctx, m, &rc), QB_OK);
    return rc;
}

/* Logits of all n positions (malloc'd; caller frees), evaluated in steps of `batch` tokens,
 * run as rc says (NULL: float activations, f32 KV cache). */
static inline float *ou_logits_run(qb_model *m, qb_run_config *rc, const int32_t *t, int n, int batch)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_infer *s = NULL;
    assert_int_equal(qb_infer_new_run(&ctx, m, rc, n, batch, &s), QB_OK);
    float *lg = malloc((size_t)n * m->cfg.vocab_size * sizeof(float));
    assert_non_null(lg);
    for (int p = 0; p < n; p += batch) {
        int k = n - p < batch ? n - p : batch;
        if (qb_infer_eval(&ctx, s, t + p, k, p, lg + (size_t)p * m->cfg.vocab_size, k) != QB_OK)
            fail_msg("eval: %s", qb_ctx_errmsg(&ctx));
    }
    qb_infer_free(s);
    return lg;
}

static inline float *ou_logits(qb_model *m, const int32_t *t, int n, int batch)
{
    return ou_logits_run(m, NULL, t, n, batch);
}

/* Largest |a − b| over n values, relative to the largest |a|. */
static inline double ou_rel_maxdiff(const float *a, const float *b, size_t n)
{
    double md = 0, ma = 0;
    for (size_t i = 0; i < n; i++) {
        md = fmax(md, fabs((double)a[i] - b[i]));
        ma = fmax(ma, fabs((double)a[i]));
    }
    return ma > 0 ? md / ma : md;
}

/* Share of positions whose argmax agrees. */
static inline double ou_top1(const float *a, const float *b, int n, int vocab)
{
    int agree = 0;
    for (int p = 0; p < n; p++) {
        int ia = 0, ib = 0;
        for (int v = 1; v < vocab; v++) {
            if (a[(size_t)p * vocab + v] > a[(size_t)p * vocab + ia]) ia = v;
            if (b[(size_t)p * vocab + v] > b[(size_t)p * vocab + ib]) ib = v;
        }
        agree += ia == ib;
    }
    return (double)agree / n;
}

#endif
