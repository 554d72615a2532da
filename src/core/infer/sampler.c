/* sampler.c — greedy, temperature, top-k and top-p sampling with a xorshift generator. */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
    float p;
    int32_t id;
} cand;

struct qb_sampler {
    qb_sampler_params p;
    int vocab;
    uint64_t state;
    cand *cands; /* (vocab) */
};

qb_status qb_sampler_new(qb_ctx *ctx, int vocab, const qb_sampler_params *p, qb_sampler **out)
{
    *out = NULL;
    if (p->temperature < 0 || p->top_p <= 0 || p->top_p > 1 || p->top_k < 0)
        return qb_fail(ctx, QB_ERR_ARG, "bad sampling parameters (temperature %g, top-p %g, top-k %d)",
                       p->temperature, p->top_p, p->top_k);
    qb_sampler *s = calloc(1, sizeof *s);
    if (!s || !(s->cands = malloc((size_t)vocab * sizeof *s->cands))) {
        free(s);
        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    }
    s->p = *p;
    s->vocab = vocab;
    s->state = p->seed ? p->seed : 0x9e3779b97f4a7c15ull;
    *out = s;
    return QB_OK;
}

void qb_sampler_free(qb_sampler *s)
{
    if (!s) return;
    free(s->cands);
    free(s);
}

int32_t qb_argmax(const float *v, int n)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

static float next_float(qb_sampler *s)
{
    /* xorshift64*, top 24 bits → [0, 1) */
    s->state ^= s->state >> 12;
    s->state ^= s->state << 25;
    s->state ^= s->state >> 27;
    return (float)((s->state * 0x2545F4914F6CDD1Dull) >> 40) / 16777216.0f;
}

static int by_prob_desc(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    return x->p > y->p ? -1 : x->p < y->p ? 1 : (x->id > y->id) - (x->id < y->id);
}

int32_t qb_sampler_sample(qb_sampler *s, float *logits)
{
    int n = s->vocab;
    if (s->p.temperature == 0) return qb_argmax(logits, n);
    float mx = logits[qb_argmax(logits, n)];
    double sum = 0;
    for (int i = 0; i < n; i++) {
        s->cands[i].id = i;
        s->cands[i].p = expf((logits[i] - mx) / s->p.temperature);
        sum += s->cands[i].p;
    }
    for (int i = 0; i < n; i++) s->cands[i].p = (float)(s->cands[i].p / sum);
    int keep = n;
    if (s->p.top_k > 0 || s->p.top_p < 1) {
        qsort(s->cands, (size_t)n, sizeof *s->cands, by_prob_desc);
        if (s->p.top_k > 0 && s->p.top_k < keep) keep = s->p.top_k;
        if (s->p.top_p < 1) {
            double cum = 0;
            for (int i = 0; i < keep; i++) {
                cum += s->cands[i].p;
                if (cum >= s->p.top_p) {
                    keep = i + 1;
                    break;
                }
            }
        }
    }
    double total = 0;
    for (int i = 0; i < keep; i++) total += s->cands[i].p;
    double r = next_float(s) * total, acc = 0;
    for (int i = 0; i < keep; i++) {
        acc += s->cands[i].p;
        if (r < acc) return s->cands[i].id;
    }
    return s->cands[keep - 1].id;
}
