/* sampler.h — choosing the next token from logits: greedy (temperature 0), or temperature
 * with top-k and top-p (nucleus) filtering, from a seeded generator so runs repeat. */
#ifndef QB_SAMPLER_H
#define QB_SAMPLER_H

#include "../qb.h"

typedef struct {
    float temperature; /* 0 = greedy */
    int top_k;         /* 0 = off */
    float top_p;       /* 1 = off */
    uint64_t seed;
} qb_sampler_params;

typedef struct qb_sampler qb_sampler;

/* Caller frees with qb_sampler_free. */
qb_status qb_sampler_new(qb_ctx *ctx, int vocab, const qb_sampler_params *p, qb_sampler **out);
void qb_sampler_free(qb_sampler *s);
/* Pick a token from vocab logits (the array is modified). */
int32_t qb_sampler_sample(qb_sampler *s, float *logits);
/* Index of the largest value (first on ties). */
int32_t qb_argmax(const float *v, int n);

#endif
