/* generate.h — text generation: feed a prompt, then sample tokens one at a time until n
 * tokens, EOS, or the context is full, streaming each token to a callback. */
#ifndef QB_GENERATE_H
#define QB_GENERATE_H

#include "../model/model.h"
#include "sampler.h"
#include "runcfg.h"

typedef struct {
    int n_predict;                /* tokens to generate */
    int n_ctx;                    /* 0 = model's context length */
    qb_sampler_params sampling;
    bool stop_at_eos;             /* stop at EOS (or BOS); default true in qb_generate_defaults */
    /* called for each generated token; return false to stop. May be NULL. */
    bool (*on_token)(void *ud, int32_t prev, int32_t id);
    void *ud;
    const volatile int *cancel;   /* non-zero stops generation (status QB_ERR_CANCELLED) */
    qb_run_config *run;           /* activation settings and KV type (runcfg.h); NULL = float, f32 */
} qb_generate_opts;

typedef struct {
    int n_prompt, n_generated;
    double prompt_seconds, gen_seconds;
    bool hit_eos;
    int32_t *ids;                 /* n_generated generated ids; malloc'd, caller frees */
} qb_generate_result;

void qb_generate_defaults(qb_generate_opts *o);
/* Generate after prompt (ids including BOS if wanted). result->ids must be freed by caller. */
qb_status qb_generate(qb_ctx *ctx, const qb_model *m, const int32_t *prompt, int n_prompt,
                      const qb_generate_opts *o, qb_generate_result *result);

#endif
