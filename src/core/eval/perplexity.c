/* perplexity.c — chunked perplexity (llama-perplexity's protocol) and the chunking helpers
 * perplexity and KL divergence share. */
#include "eval.h"
#include "eval_internal.h"
#include "../infer/infer.h"
#include "../infer/sampler.h"
#include "../tokenizer/tokenizer.h"
#include "../util/mapfile.h"
#include "../util/dist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double qb_eval_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

qb_status qb_eval_load_text(qb_ctx *ctx, const qb_model *m, const char *path, int32_t **tokens, int *n_tokens)
{
    return qb_model_tokenize_file(ctx, m, path, tokens, n_tokens);
}

/* Shared setup: chunk count and the BOS to put first. */
qb_status qb_eval_plan_chunks(qb_ctx *ctx, const qb_model *m, int n_tokens, const qb_eval_opts *o, int *n_ctx,
                             int *n_chunks)
{
    *n_ctx = o && o->n_ctx > 0 ? o->n_ctx : 256;
    if (*n_ctx < 4 || *n_ctx > m->cfg.seq_len * 64)
        return qb_fail(ctx, QB_ERR_ARG, "context %d is out of range", *n_ctx);
    if (n_tokens < 2 * *n_ctx)
        return qb_fail(ctx, QB_ERR_ARG,
                       "the text has %d tokens; perplexity with a %d-token context needs at least %d (use a longer "
                       "text or a smaller --ctx)",
                       n_tokens, *n_ctx, 2 * *n_ctx);
    *n_chunks = n_tokens / *n_ctx;
    if (o && o->n_chunks > 0 && o->n_chunks < *n_chunks) *n_chunks = o->n_chunks;
    return QB_OK;
}

/* log-softmax of row at index `tok`, in double. */
double qb_eval_log_prob(const float *logits, int n, int tok, double *lse_out)
{
    float mx = logits[0];
    for (int i = 1; i < n; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0;
    for (int i = 0; i < n; i++) sum += exp((double)logits[i] - mx);
    double lse = mx + log(sum);
    if (lse_out) *lse_out = lse;
    return tok >= 0 ? logits[tok] - lse : 0;
}

void qb_eval_chunk_tokens(const qb_model *m, const int32_t *tokens, int c, int n_ctx, int32_t *buf)
{
    memcpy(buf, tokens + (size_t)c * n_ctx, (size_t)n_ctx * sizeof *buf);
    int32_t bos = m->tok ? qb_tokenizer_bos(m->tok) : -1;
    if (bos >= 0 && (!m->tok || qb_tokenizer_add_bos(m->tok))) buf[0] = bos;
}

void qb_eval_finish_ppl(qb_ppl_result *r, double nll, double nll2, long count)
{
    double mean = nll / count, mean2 = nll2 / count;
    r->nll_mean = mean;
    r->ppl = exp(mean);
    double var = mean2 - mean * mean;
    r->ppl_err = var > 0 && count > 1 ? sqrt(var / (count - 1)) * r->ppl : 0;
    r->n_scored = count;
}

qb_status qb_eval_perplexity(qb_ctx *ctx, const qb_model *m, const int32_t *tokens, int n_tokens,
                             const qb_eval_opts *o, qb_ppl_result *out)
{
    memset(out, 0, sizeof *out);
    int n_ctx, n_chunks;
    qb_status st = qb_eval_plan_chunks(ctx, m, n_tokens, o, &n_ctx, &n_chunks);
    if (st != QB_OK) return st;
    int vocab = m->cfg.vocab_size, first = n_ctx / 2;
    int n_logits = n_ctx - first, rows = n_ctx - 1 - first;
    qb_infer *s = NULL;
    int32_t *buf = malloc((size_t)n_ctx * sizeof *buf);
    float *logits = malloc((size_t)n_logits * vocab * sizeof(float));
    /* each scored token's NLL, kept so that the chunks of several ranks (dist.h) are summed in
     * the one-process order */
    double *nlls = malloc((size_t)n_chunks * rows * sizeof *nlls), t0 = qb_eval_now();
    if (!buf || !logits || !nlls) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
        goto gather;
    }
    if ((st = qb_infer_new_run(ctx, m, o ? o->run : NULL, n_ctx, n_ctx, &s)) != QB_OK) goto gather;
    int n_own = qb_dist_share(n_chunks, qb_dist_rank()), k = 0;
    if (qb_dist_size() > 1 && o && o->divided) o->divided(o->ud, n_chunks);
    for (int c = 0; c < n_chunks; c++) {
        if (!qb_dist_owns(c)) continue;
        if (o && o->cancel && *o->cancel) {
            st = qb_fail(ctx, QB_ERR_CANCELLED, "perplexity cancelled after %d of %d chunks", k, n_own);
            goto gather;
        }
        qb_eval_chunk_tokens(m, tokens, c, n_ctx, buf);
        if ((st = qb_infer_eval(ctx, s, buf, n_ctx, 0, logits, n_logits)) != QB_OK) goto gather;
        for (int j = first; j < n_ctx - 1; j++)
            nlls[(size_t)c * rows + (j - first)] =
                -qb_eval_log_prob(logits + (size_t)(j - first) * vocab, vocab, buf[j + 1], NULL);
        if (o && o->progress) o->progress(o->ud, ++k, n_own);
    }
gather:
    if ((st = qb_dist_merge(ctx, st, nlls, (size_t)rows * sizeof *nlls, n_chunks)) == QB_OK) {
        double nll = 0, nll2 = 0;
        long count = 0;
        for (long i = 0; i < (long)n_chunks * rows; i++) {
            double v = nlls[i];
            nll += v;
            nll2 += v * v;
            count++;
        }
        qb_eval_finish_ppl(out, nll, nll2, count);
        out->n_chunks = n_chunks;
        out->n_ctx = n_ctx;
        out->seconds = qb_eval_now() - t0;
    }
    qb_infer_free(s);
    free(buf);
    free(logits);
    free(nlls);
    return st;
}
