/* generate.c — the prompt pipeline: tokenize with the tokenizer's BOS policy, process the
 * prompt in one batch, then sample token by token. */
#include "generate.h"
#include "infer.h"
#include "../tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void qb_generate_defaults(qb_generate_opts *o)
{
    memset(o, 0, sizeof *o);
    o->n_predict = 64;
    o->sampling.temperature = 0;
    o->sampling.top_p = 1;
    o->sampling.seed = 1;
    o->stop_at_eos = true;
}

qb_status qb_generate(qb_ctx *ctx, const qb_model *m, const int32_t *prompt, int n_prompt, const qb_generate_opts *o,
                      qb_generate_result *r)
{
    memset(r, 0, sizeof *r);
    if (n_prompt <= 0) return qb_fail(ctx, QB_ERR_ARG, "empty prompt: nothing to continue");
    int vocab = m->cfg.vocab_size;
    int n_ctx = o->n_ctx > 0 ? o->n_ctx : m->cfg.seq_len;
    if (n_prompt >= n_ctx)
        return qb_fail(ctx, QB_ERR_ARG, "the prompt (%d tokens) does not fit the %d-token context", n_prompt, n_ctx);
    int n_gen = o->n_predict;
    if (n_prompt + n_gen > n_ctx) n_gen = n_ctx - n_prompt;
    qb_infer *s = NULL;
    qb_sampler *smp = NULL;
    float *logits = malloc((size_t)vocab * sizeof(float));
    r->ids = malloc((size_t)(n_gen > 0 ? n_gen : 1) * sizeof(int32_t));
    qb_status st;
    if (!logits || !r->ids) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = qb_infer_new_run(ctx, m, o->run, n_prompt + n_gen, 0, &s)) != QB_OK) goto done;
    if ((st = qb_sampler_new(ctx, vocab, &o->sampling, &smp)) != QB_OK) goto done;
    double t0 = now_seconds();
    if ((st = qb_infer_eval(ctx, s, prompt, n_prompt, 0, logits, 1)) != QB_OK) goto done;
    r->n_prompt = n_prompt;
    r->prompt_seconds = now_seconds() - t0;
    /* BOS also ends a text: llama2.c models emit it between stories (run.c stops on it too) */
    int32_t eos = m->tok ? qb_tokenizer_eos(m->tok) : -1, bos = m->tok ? qb_tokenizer_bos(m->tok) : -1;
    int32_t prev = prompt[n_prompt - 1];
    t0 = now_seconds();
    for (int i = 0; i < n_gen; i++) {
        if (o->cancel && *o->cancel) {
            st = qb_fail(ctx, QB_ERR_CANCELLED, "generation cancelled");
            break;
        }
        int32_t next = qb_sampler_sample(smp, logits);
        if (o->stop_at_eos && (next == eos || next == bos)) {
            r->hit_eos = true;
            break;
        }
        r->ids[r->n_generated++] = next;
        if (o->on_token && !o->on_token(o->ud, prev, next)) break;
        prev = next;
        if (i + 1 < n_gen && (st = qb_infer_eval(ctx, s, &next, 1, n_prompt + i, logits, 1)) != QB_OK) break;
    }
    r->gen_seconds = now_seconds() - t0;
done:
    qb_infer_free(s);
    qb_sampler_free(smp);
    free(logits);
    return st;
}

qb_status qb_generate_prompt(qb_ctx *ctx, const qb_model *m, const char *text, size_t len, int32_t **ids, int *n)
{
    *ids = NULL;
    *n = 0;
    if (!m->tok) return qb_fail(ctx, QB_ERR_ARG, "%s: the model has no tokenizer", m->path);
    qb_status st = qb_tokenize(ctx, m->tok, text, len, qb_tokenizer_add_bos(m->tok), ids, n);
    if (st == QB_OK && *n == 0) {
        free(*ids);
        *ids = NULL;
        st = qb_fail(ctx, QB_ERR_ARG, "the prompt is empty and the model adds no BOS token to start from");
    }
    return st;
}

qb_status qb_generate_text(qb_ctx *ctx, const qb_model *m, const char *text, size_t len, const qb_generate_opts *o,
                           qb_generate_result *r)
{
    memset(r, 0, sizeof *r);
    int32_t *ids;
    int n;
    qb_status st = qb_generate_prompt(ctx, m, text, len, &ids, &n);
    if (st != QB_OK) return st;
    st = qb_generate(ctx, m, ids, n, o, r);
    r->prompt_ids = ids;
    r->n_prompt = n;
    return st;
}

void qb_generate_result_free(qb_generate_result *r)
{
    free(r->ids);
    free(r->prompt_ids);
    memset(r, 0, sizeof *r);
}
