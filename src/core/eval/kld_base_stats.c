/* kld_base_stats.c — the statistics llama-perplexity --kl-divergence prints, computed as it
 * computes them (c392e50 perplexity.cpp: log_softmax() against a base row, kl_divergence()'s
 * summary): per position in float where it uses float, sums in double, the per-position KLD
 * and Δp kept as float and sorted for its quantiles. */
#include "kld_base_stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void qb_kldb_row(const float *logits, int n_vocab, const uint16_t *base_row, int tok, qb_kldb_sums *s, float *kld_out,
                 float *p_diff_out)
{
    float max_logit = logits[0];
    int imax = 0;
    for (int i = 1; i < n_vocab; i++)
        if (logits[i] > max_logit) {
            max_logit = logits[i];
            imax = i;
        }
    double sum_exp = 0.0;
    for (int i = 0; i < n_vocab; i++) sum_exp += expf(logits[i] - max_logit);
    const float log_sum_exp = (float)log(sum_exp);
    float scale, min_log_prob;
    memcpy(&scale, base_row, sizeof scale);
    memcpy(&min_log_prob, base_row + 2, sizeof min_log_prob);
    const uint16_t *q = base_row + 4;

    const float nll = max_logit + log_sum_exp - logits[tok];
    s->sum_nll += nll;
    s->sum_nll2 += (double)(nll * nll);
    const float nll_base = -(scale * q[tok] + min_log_prob);
    s->sum_nll_base += nll_base;
    s->sum_nll_base2 += (double)(nll_base * nll_base);
    s->sum_nll_nll_base += (double)(nll * nll_base);

    max_logit += log_sum_exp;
    double sum = 0;
    int imax_base = -1;
    float p_log_base_max = 0;
    for (int i = 0; i < n_vocab; i++) {
        const float p_log_base = scale * q[i] + min_log_prob;
        if (i == 0 || p_log_base > p_log_base_max) {
            p_log_base_max = p_log_base;
            imax_base = i;
        }
        if (p_log_base > -16.f) {
            const float p_base = expf(p_log_base);
            sum += p_base * (p_log_base - logits[i] + max_logit);
        }
    }
    s->sum_kld += sum;
    s->sum_kld2 += sum * sum;
    s->count++;
    if (imax == imax_base) s->n_same_top++;

    const float p_base = expf(-nll_base);
    const float p = expf(-nll);
    const float p_diff = p - p_base;
    s->sum_p_diff += p_diff;
    const double p_diff2 = p_diff * p_diff;
    s->sum_p_diff2 += p_diff2;
    s->sum_p_diff4 += p_diff2 * p_diff2;
    if (fabsf(p_diff) > s->max_p_diff) s->max_p_diff = fabsf(p_diff);
    *kld_out = (float)sum;
    *p_diff_out = p_diff;
}

void qb_kldb_add(qb_kldb_sums *to, const qb_kldb_sums *s)
{
    to->sum_nll += s->sum_nll;
    to->sum_nll2 += s->sum_nll2;
    to->sum_nll_base += s->sum_nll_base;
    to->sum_nll_base2 += s->sum_nll_base2;
    to->sum_nll_nll_base += s->sum_nll_nll_base;
    to->sum_kld += s->sum_kld;
    to->sum_kld2 += s->sum_kld2;
    to->sum_p_diff += s->sum_p_diff;
    to->sum_p_diff2 += s->sum_p_diff2;
    to->sum_p_diff4 += s->sum_p_diff4;
    if (s->max_p_diff > to->max_p_diff) to->max_p_diff = s->max_p_diff;
    to->n_same_top += s->n_same_top;
    to->count += s->count;
}

/* llama-perplexity's mean and its uncertainty (0 for 10 values or fewer). */
static void mean_unc(double sum, double sum2, long count, double *mean, double *unc)
{
    *mean = *unc = 0;
    if (count < 1) return;
    double f = sum / count, df = sum2 / count - f * f;
    *mean = f;
    *unc = df > 0 && count > 10 ? sqrt(df / (count - 1)) : 0.;
}

static double covariance(double suma, double sumb, double sumab, long count)
{
    if (count < 10) return 0.0;
    double var = sumab / count - (suma / count) * (sumb / count);
    return var / (count - 1);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Its percentile (linear between neighbours, in float) and its median (the middle value, or
 * the mean of the two middle ones) of n sorted values. */
static float quantile(const float *v, size_t n, float fraction, bool median)
{
    if (median) return n % 2 == 0 ? 0.5f * (v[n / 2] + v[n / 2 - 1]) : v[n / 2];
    if (fraction <= 0) return v[0];
    if (fraction >= 1) return v[n - 1];
    float p = fraction * (float)(n - 1);
    size_t ip = (size_t)p;
    p -= (float)ip;
    return (1 - p) * v[ip] + p * v[ip + 1 < n ? ip + 1 : n - 1];
}

void qb_kldb_finish(const qb_kldb_sums *s, float *klds, float *p_diffs, qb_kld_stats *out)
{
    long n = s->count;
    double lp, lp_unc, lb, lb_unc;
    mean_unc(s->sum_nll, s->sum_nll2, n, &lp, &lp_unc);
    mean_unc(s->sum_nll_base, s->sum_nll_base2, n, &lb, &lb_unc);
    out->n_scored = n;
    out->ppl = exp(lp);
    out->ppl_err = out->ppl * lp_unc;
    out->ppl_base = exp(lb);
    out->ppl_base_err = out->ppl_base * lb_unc;
    const double cov = covariance(s->sum_nll, s->sum_nll_base, s->sum_nll_nll_base, n);
    out->cor = lp_unc > 0 && lb_unc > 0 ? cov / (lp_unc * lb_unc) : 0;
    out->ln_ratio = lp - lb;
    double v = lp_unc * lp_unc + lb_unc * lb_unc - 2.0 * cov;
    out->ln_ratio_err = v > 0 ? sqrt(v) : 0;
    out->ratio = exp(out->ln_ratio);
    out->ratio_err = out->ratio * out->ln_ratio_err;
    out->diff = out->ppl - out->ppl_base;
    v = out->ppl_err * out->ppl_err + out->ppl_base_err * out->ppl_base_err - 2.0 * out->ppl * out->ppl_base * cov;
    out->diff_err = v > 0 ? sqrt(v) : 0;
    mean_unc(s->sum_kld, s->sum_kld2, n, &out->kld, &out->kld_err);
    mean_unc(s->sum_p_diff, s->sum_p_diff2, n, &out->dp, &out->dp_err);
    double mse, mse_unc;
    mean_unc(s->sum_p_diff2, s->sum_p_diff4, n, &mse, &mse_unc);
    out->dp_rms = sqrt(mse);
    out->dp_rms_err = out->dp_rms > 0 ? 0.5 / out->dp_rms * mse_unc : 0;
    out->same_top = n ? 1.0 * s->n_same_top / n : 0;
    out->same_top_err = n > 1 ? sqrt(out->same_top * (1.0 - out->same_top) / (n - 1)) : 0;
    if (n < 1) return;
    qsort(klds, (size_t)n, sizeof *klds, cmp_float);
    qsort(p_diffs, (size_t)n, sizeof *p_diffs, cmp_float);
    for (int k = 0; k < QB_KLD_NQ; k++) {
        const qb_kld_quantile *q = &qb_kld_quantiles[k];
        bool median = !strcmp(q->key, "median");
        out->kld_q[k] = quantile(klds, (size_t)n, q->fraction, median);
        out->dp_q[k] = quantile(p_diffs, (size_t)n, q->fraction, median);
    }
}
