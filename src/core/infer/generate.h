/* generate.h — text generation: feed a prompt, then sample tokens one at a time until n
 * tokens, EOS, or the context is full, streaming each token to a callback. The prompt
 * pipeline (text → tokens with the tokenizer's BOS policy → sampling loop) is
 * qb_generate_text, which the CLI, the TUI and Lua all call. */
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
    int32_t *prompt_ids;          /* qb_generate_text only: the n_prompt prompt ids as fed
                                     (BOS included when added); malloc'd, caller frees */
} qb_generate_result;

void qb_generate_defaults(qb_generate_opts *o);
/* Generate after prompt (ids including BOS if wanted). result->ids must be freed by caller. */
qb_status qb_generate(qb_ctx *ctx, const qb_model *m, const int32_t *prompt, int n_prompt,
                      const qb_generate_opts *o, qb_generate_result *result);

/* The prompt as the model reads it: text (len bytes) tokenized with the BOS policy of the
 * model's tokenizer (qb_tokenizer_add_bos: the vocabulary's add_bos metadata, true for
 * llama2.c/SentencePiece vocabularies, GGUF tokenizer.ggml.add_bos_token, HF
 * tokenizer_config.json). *ids is malloc'd (caller frees). QB_ERR_ARG when the model has no
 * tokenizer or the result is empty (an empty prompt and no BOS to start from). */
qb_status qb_generate_prompt(qb_ctx *ctx, const qb_model *m, const char *text, size_t len, int32_t **ids, int *n);

/* Continue text: qb_generate_prompt, then qb_generate. On return (success or not) free the
 * result with qb_generate_result_free; on error the ids generated so far are kept. */
qb_status qb_generate_text(qb_ctx *ctx, const qb_model *m, const char *text, size_t len, const qb_generate_opts *o,
                           qb_generate_result *result);

/* Free what a result owns (ids, prompt_ids) and clear it; a zeroed result is fine. */
void qb_generate_result_free(qb_generate_result *r);

#endif
