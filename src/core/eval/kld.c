/* kld.c — KL divergence of one or more models' next-token distributions from a base model's
 * on the same chunks (what `llama-perplexity --kl-divergence` reports). The base runs once
 * per chunk however many models are compared, so a scan of many settings costs one base pass. */
#include "eval.h"
#include "eval_internal.h"
#include "../infer/infer.h"
#include "../infer/sampler.h"
#include "../util/dist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* KL(P_base || P_other) for one position, plus both NLLs of the actual next token. */
static double kld_row(const float *lb, const float *lo, int vocab, int next, double *nll_b, double *nll_o, bool *agree)
{
    double lse_b, lse_o;
    *nll_b = -qb_eval_log_prob(lb, vocab, next, &lse_b);
    *nll_o = -qb_eval_log_prob(lo, vocab, next, &lse_o);
    double kl = 0;
    for (int i = 0; i < vocab; i++) {
        double pb_log = lb[i] - lse_b, po_log = lo[i] - lse_o;
        kl += exp(pb_log) * (pb_log - po_log);
    }
    *agree = qb_argmax(lb, vocab) == qb_argmax(lo, vocab);
    return kl < 0 ? 0 : kl;
}

void qb_eval_kld_finish(qb_kld_result *out, qb_kld_acc *a, long count, int n_chunks, int n_ctx, double seconds)
{
    qb_eval_finish_ppl(&out->base, a->nb, a->nb2, count);
    qb_eval_finish_ppl(&out->other, a->no, a->no2, count);
    out->base.n_chunks = out->other.n_chunks = n_chunks;
    out->base.n_ctx = out->other.n_ctx = n_ctx;
    out->base.seconds = out->other.seconds = seconds;
    out->dppl = out->other.ppl - out->base.ppl;
    out->kld_mean = a->k / count;
    double var = a->k2 / count - out->kld_mean * out->kld_mean;
    out->kld_err = var > 0 && count > 1 ? sqrt(var / (count - 1)) : 0;
    qsort(a->klds, (size_t)count, sizeof *a->klds, cmp_double);
    out->kld_min = a->klds[0];
    out->kld_max = a->klds[count - 1];
    out->kld_median = a->klds[count / 2];
    out->kld_p99 = a->klds[(long)floor(0.99 * (count - 1))];
    out->top1_pct = 100.0 * a->agree / count;
}

qb_status qb_eval_kld_many(qb_ctx *ctx, const qb_model *base, const qb_model *const *others, int n_others,
                           const int32_t *tokens, int n_tokens, const qb_eval_opts *o, qb_kld_result *out)
{
    memset(out, 0, (size_t)n_others * sizeof *out);
    for (int j = 0; j < n_others; j++)
        if (base->cfg.vocab_size != others[j]->cfg.vocab_size)
            return qb_fail(ctx, QB_ERR_ARG, "%s and %s have different vocabularies (%d vs %d tokens)", base->path,
                           others[j]->path, base->cfg.vocab_size, others[j]->cfg.vocab_size);
    int n_ctx, n_chunks;
    qb_status st = qb_eval_plan_chunks(ctx, base, n_tokens, o, &n_ctx, &n_chunks);
    if (st != QB_OK) return st;
    int vocab = base->cfg.vocab_size, first = n_ctx / 2, n_logits = n_ctx - first, rows = n_ctx - 1 - first;
    long max_scored = (long)n_chunks * rows, count = 0;
    qb_infer *sb = NULL, **so = calloc((size_t)n_others, sizeof *so);
    int32_t *buf = malloc((size_t)n_ctx * sizeof *buf);
    float *lb = malloc((size_t)n_logits * vocab * sizeof(float));
    float *lo = malloc((size_t)n_logits * vocab * sizeof(float));
    qb_kld_acc *accs = calloc((size_t)n_others, sizeof *accs);
    bool ok = buf && lb && lo && accs && so;
    for (int j = 0; ok && j < n_others; j++) ok = (accs[j].klds = malloc((size_t)max_scored * sizeof(double))) != NULL;
    double *parts = NULL, t0 = qb_eval_now();
    if (!ok) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
        goto gather;
    }
    /* per chunk and model: the sums of parts[] below, kept so that the chunks of several ranks
     * (dist.h) are added in the one-process order; KLDs go straight to their place in klds */
    if (!(parts = malloc((size_t)n_chunks * n_others * 7 * sizeof *parts))) {
        st = qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
        goto gather;
    }
    if ((st = qb_infer_new_run(ctx, base, o ? o->run_base : NULL, n_ctx, n_ctx, &sb)) != QB_OK) goto gather;
    for (int j = 0; j < n_others; j++)
        if ((st = qb_infer_new_run(ctx, others[j], o ? o->run : NULL, n_ctx, n_ctx, &so[j])) != QB_OK) goto gather;
    int n_own = qb_dist_share(n_chunks, qb_dist_rank()), k_own = 0;
    if (qb_dist_size() > 1 && o && o->divided) o->divided(o->ud, n_chunks);
    for (int c = 0; c < n_chunks; c++) {
        if (!qb_dist_owns(c)) continue;
        if (o && o->cancel && *o->cancel) {
            st = qb_fail(ctx, QB_ERR_CANCELLED, "KL divergence cancelled after %d of %d chunks", k_own, n_own);
            goto gather;
        }
        qb_eval_chunk_tokens(base, tokens, c, n_ctx, buf);
        if ((st = qb_infer_eval(ctx, sb, buf, n_ctx, 0, lb, n_logits)) != QB_OK) goto gather;
        for (int j = 0; j < n_others; j++) {
            if ((st = qb_infer_eval(ctx, so[j], buf, n_ctx, 0, lo, n_logits)) != QB_OK) goto gather;
            double *klds = accs[j].klds + (size_t)c * rows;
            double part[6] = {0}; /* NLL base, its square, NLL other, its square, KLD, its square */
            long part_agree = 0;
#pragma omp parallel for reduction(+ : part[:6], part_agree) schedule(static)
            for (int r = 0; r < rows; r++) {
                double b, ot;
                bool ag;
                double k = kld_row(lb + (size_t)r * vocab, lo + (size_t)r * vocab, vocab, buf[first + r + 1], &b, &ot, &ag);
                klds[r] = k;
                part[0] += b;
                part[1] += b * b;
                part[2] += ot;
                part[3] += ot * ot;
                part[4] += k;
                part[5] += k * k;
                part_agree += ag;
            }
            double *p = parts + ((size_t)c * n_others + j) * 7;
            memcpy(p, part, sizeof part);
            p[6] = (double)part_agree;
        }
        if (o && o->progress) o->progress(o->ud, ++k_own, n_own);
    }
gather:
    st = qb_dist_merge(ctx, st, parts, (size_t)n_others * 7 * sizeof *parts, n_chunks);
    for (int j = 0; st == QB_OK && j < n_others; j++)
        st = qb_dist_merge(ctx, st, accs[j].klds, (size_t)rows * sizeof(double), n_chunks);
    if (st == QB_OK) {
        for (int c = 0; c < n_chunks; c++) {
            for (int j = 0; j < n_others; j++) {
                qb_kld_acc *a = &accs[j];
                const double *p = parts + ((size_t)c * n_others + j) * 7;
                a->nb += p[0];
                a->nb2 += p[1];
                a->no += p[2];
                a->no2 += p[3];
                a->k += p[4];
                a->k2 += p[5];
                a->agree += (long)p[6];
            }
            count += rows;
        }
        for (int j = 0; j < n_others; j++) qb_eval_kld_finish(&out[j], &accs[j], count, n_chunks, n_ctx, qb_eval_now() - t0);
    }
    qb_infer_free(sb);
    for (int j = 0; so && j < n_others; j++) qb_infer_free(so[j]);
    free(so);
    for (int j = 0; accs && j < n_others; j++) free(accs[j].klds);
    free(accs);
    free(buf);
    free(lb);
    free(lo);
    free(parts);
    return st;
}

qb_status qb_eval_kld(qb_ctx *ctx, const qb_model *base, const qb_model *other, const int32_t *tokens, int n_tokens,
                      const qb_eval_opts *o, qb_kld_result *out)
{
    return qb_eval_kld_many(ctx, base, &other, 1, tokens, n_tokens, o, out);
}
