/* perplexity.c — chunked perplexity and KL divergence (llama-perplexity's protocol). */
#include "eval.h"
#include "../infer/infer.h"
#include "../infer/sampler.h"
#include "../tokenizer/tokenizer.h"
#include "../util/mapfile.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

qb_status qb_eval_load_text(qb_ctx *ctx, const qb_model *m, const char *path, int32_t **tokens, int *n_tokens)
{
    *tokens = NULL;
    *n_tokens = 0;
    if (!m->tok) return qb_fail(ctx, QB_ERR_ARG, "%s: the model has no tokenizer", m->path);
    char *text;
    size_t len;
    qb_status st = qb_read_file(ctx, path, (size_t)1 << 31, &text, &len);
    if (st != QB_OK) return st;
    if (len == 0) {
        free(text);
        return qb_fail(ctx, QB_ERR_ARG, "%s: the evaluation text is empty", path);
    }
    st = qb_tokenize(ctx, m->tok, text, len, qb_tokenizer_add_bos(m->tok), tokens, n_tokens);
    free(text);
    return st;
}

/* Shared setup: chunk count and the BOS to put first. */
static qb_status plan_chunks(qb_ctx *ctx, const qb_model *m, int n_tokens, const qb_eval_opts *o, int *n_ctx,
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
static double log_prob(const float *logits, int n, int tok, double *lse_out)
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

static void chunk_tokens(const qb_model *m, const int32_t *tokens, int c, int n_ctx, int32_t *buf)
{
    memcpy(buf, tokens + (size_t)c * n_ctx, (size_t)n_ctx * sizeof *buf);
    int32_t bos = m->tok ? qb_tokenizer_bos(m->tok) : -1;
    if (bos >= 0 && (!m->tok || qb_tokenizer_add_bos(m->tok))) buf[0] = bos;
}

static void finish_ppl(qb_ppl_result *r, double nll, double nll2, long count)
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
    qb_status st = plan_chunks(ctx, m, n_tokens, o, &n_ctx, &n_chunks);
    if (st != QB_OK) return st;
    int vocab = m->cfg.vocab_size, first = n_ctx / 2;
    int n_logits = n_ctx - first;
    qb_infer *s = NULL;
    int32_t *buf = malloc((size_t)n_ctx * sizeof *buf);
    float *logits = malloc((size_t)n_logits * vocab * sizeof(float));
    if (!buf || !logits) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = qb_infer_new(ctx, m, n_ctx, n_ctx, &s)) != QB_OK) goto done;
    double t0 = now_seconds(), nll = 0, nll2 = 0;
    long count = 0;
    for (int c = 0; c < n_chunks; c++) {
        if (o && o->cancel && *o->cancel) {
            st = qb_fail(ctx, QB_ERR_CANCELLED, "perplexity cancelled after %d of %d chunks", c, n_chunks);
            goto done;
        }
        chunk_tokens(m, tokens, c, n_ctx, buf);
        if ((st = qb_infer_eval(ctx, s, buf, n_ctx, 0, logits, n_logits)) != QB_OK) goto done;
        for (int j = first; j < n_ctx - 1; j++) {
            double v = -log_prob(logits + (size_t)(j - first) * vocab, vocab, buf[j + 1], NULL);
            nll += v;
            nll2 += v * v;
            count++;
        }
        if (o && o->progress) o->progress(o->ud, c + 1, n_chunks);
    }
    finish_ppl(out, nll, nll2, count);
    out->n_chunks = n_chunks;
    out->n_ctx = n_ctx;
    out->seconds = now_seconds() - t0;
done:
    qb_infer_free(s);
    free(buf);
    free(logits);
    return st;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* KL(P_base || P_other) for one position, plus both NLLs of the actual next token. */
static double kld_row(const float *lb, const float *lo, int vocab, int next, double *nll_b, double *nll_o, bool *agree)
{
    double lse_b, lse_o;
    *nll_b = -log_prob(lb, vocab, next, &lse_b);
    *nll_o = -log_prob(lo, vocab, next, &lse_o);
    double kl = 0;
    for (int i = 0; i < vocab; i++) {
        double pb_log = lb[i] - lse_b, po_log = lo[i] - lse_o;
        kl += exp(pb_log) * (pb_log - po_log);
    }
    *agree = qb_argmax(lb, vocab) == qb_argmax(lo, vocab);
    return kl < 0 ? 0 : kl;
}

qb_status qb_eval_kld(qb_ctx *ctx, const qb_model *base, const qb_model *other, const int32_t *tokens, int n_tokens,
                      const qb_eval_opts *o, qb_kld_result *out)
{
    memset(out, 0, sizeof *out);
    if (base->cfg.vocab_size != other->cfg.vocab_size)
        return qb_fail(ctx, QB_ERR_ARG, "%s and %s have different vocabularies (%d vs %d tokens)", base->path,
                       other->path, base->cfg.vocab_size, other->cfg.vocab_size);
    int n_ctx, n_chunks;
    qb_status st = plan_chunks(ctx, base, n_tokens, o, &n_ctx, &n_chunks);
    if (st != QB_OK) return st;
    int vocab = base->cfg.vocab_size, first = n_ctx / 2, n_logits = n_ctx - first;
    long max_scored = (long)n_chunks * (n_ctx - 1 - first);
    qb_infer *sb = NULL, *so = NULL;
    int32_t *buf = malloc((size_t)n_ctx * sizeof *buf);
    float *lb = malloc((size_t)n_logits * vocab * sizeof(float));
    float *lo = malloc((size_t)n_logits * vocab * sizeof(float));
    double *klds = malloc((size_t)max_scored * sizeof(double));
    if (!buf || !lb || !lo || !klds) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = qb_infer_new(ctx, base, n_ctx, n_ctx, &sb)) != QB_OK) goto done;
    if ((st = qb_infer_new(ctx, other, n_ctx, n_ctx, &so)) != QB_OK) goto done;
    double t0 = now_seconds(), nb = 0, nb2 = 0, no = 0, no2 = 0, ksum = 0, ksum2 = 0;
    long count = 0, agree = 0;
    for (int c = 0; c < n_chunks; c++) {
        if (o && o->cancel && *o->cancel) {
            st = qb_fail(ctx, QB_ERR_CANCELLED, "KL divergence cancelled after %d of %d chunks", c, n_chunks);
            goto done;
        }
        chunk_tokens(base, tokens, c, n_ctx, buf);
        if ((st = qb_infer_eval(ctx, sb, buf, n_ctx, 0, lb, n_logits)) != QB_OK) goto done;
        if ((st = qb_infer_eval(ctx, so, buf, n_ctx, 0, lo, n_logits)) != QB_OK) goto done;
        double part[6] = {0}; /* NLL base, its square, NLL other, its square, KLD, its square */
        long part_agree = 0;
        int rows = n_ctx - 1 - first;
#pragma omp parallel for reduction(+ : part[:6], part_agree) schedule(static)
        for (int j = 0; j < rows; j++) {
            double b, ot;
            bool ag;
            double k = kld_row(lb + (size_t)j * vocab, lo + (size_t)j * vocab, vocab, buf[first + j + 1], &b, &ot, &ag);
            klds[count + j] = k;
            part[0] += b;
            part[1] += b * b;
            part[2] += ot;
            part[3] += ot * ot;
            part[4] += k;
            part[5] += k * k;
            part_agree += ag;
        }
        nb += part[0];
        nb2 += part[1];
        no += part[2];
        no2 += part[3];
        ksum += part[4];
        ksum2 += part[5];
        agree += part_agree;
        count += rows;
        if (o && o->progress) o->progress(o->ud, c + 1, n_chunks);
    }
    finish_ppl(&out->base, nb, nb2, count);
    finish_ppl(&out->other, no, no2, count);
    out->base.n_chunks = out->other.n_chunks = n_chunks;
    out->base.n_ctx = out->other.n_ctx = n_ctx;
    out->dppl = out->other.ppl - out->base.ppl;
    out->kld_mean = ksum / count;
    double var = ksum2 / count - out->kld_mean * out->kld_mean;
    out->kld_err = var > 0 && count > 1 ? sqrt(var / (count - 1)) : 0;
    qsort(klds, (size_t)count, sizeof *klds, cmp_double);
    out->kld_min = klds[0];
    out->kld_max = klds[count - 1];
    out->kld_median = klds[count / 2];
    out->kld_p99 = klds[(long)floor(0.99 * (count - 1))];
    out->top1_pct = 100.0 * agree / count;
    out->base.seconds = out->other.seconds = now_seconds() - t0;
done:
    qb_infer_free(sb);
    qb_infer_free(so);
    free(buf);
    free(lb);
    free(lo);
    free(klds);
    return st;
}
