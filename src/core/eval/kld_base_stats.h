/* kld_base_stats.h — llama-perplexity's KL-divergence statistics, position by position (not
 * public API: kld_base_eval.c and the unit tests use it). */
#ifndef QB_KLD_BASE_STATS_H
#define QB_KLD_BASE_STATS_H

#include "kld_base.h"

/* Running sums over compared positions (llama-perplexity's kl_divergence_result). */
typedef struct {
    double sum_nll, sum_nll2, sum_nll_base, sum_nll_base2, sum_nll_nll_base;
    double sum_kld, sum_kld2, sum_p_diff, sum_p_diff2, sum_p_diff4;
    float max_p_diff;
    long n_same_top, count;
} qb_kldb_sums;

/* Compare one position: the model's n_vocab logits with the base file's row (nv uint16) for
 * next token tok; adds to *s, and gives this position's KLD and Δp. */
void qb_kldb_row(const float *logits, int n_vocab, const uint16_t *base_row, int tok, qb_kldb_sums *s, float *kld,
                 float *p_diff);
/* *to += *s */
void qb_kldb_add(qb_kldb_sums *to, const qb_kldb_sums *s);
/* The statistics from s over its count positions, whose KLD and Δp values are in klds and
 * p_diffs (sorted in place). Fills every field of out but the chunk, context, vocabulary and
 * time ones. */
void qb_kldb_finish(const qb_kldb_sums *s, float *klds, float *p_diffs, qb_kld_stats *out);

#endif
