/* quant_iq.h — the piece of the grid i-quant quantizers a vector path swaps in: IQ1_M's
 * exhaustive split search (its time sink: 153 splits × 16 values × 4 shift choices per 16
 * values). quant_iq_ref.c is the spec; quant_iq_avx2.c / quant_iq_avx512.c put splits in lanes
 * and write exactly the same sums (same operations per lane, in the same order). Internal to
 * kernels/. */
#ifndef QB_QUANT_IQ_H
#define QB_QUANT_IQ_H

#include <stdbool.h>
#include <stdint.h>

#define QB_IQ1M_SPLITS 153 /* (i1, i2) with 0 <= i1 <= i2 <= 16 */

/* Scores of every split of 16 sorted values (qb_iq1m_scores_ref's contract, quant_iq_ref.c). */
typedef void (*qb_iq1m_score_fn)(const float *weight, const float *xb, const int *order, float sqx[][4], float sq2[][4]);
void qb_iq1m_scores_ref(const float *weight, const float *xb, const int *order, float sqx[][4], float sq2[][4]);

/* Whether type is one of the grid i-quants (IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S, IQ1_M). */
static inline bool qb_quant_grid_iq(int type)
{
    return type == 16 || type == 17 || type == 22 || type == 19 || type == 29; /* ggml ids (qb_types.h) */
}

/* qb_quant_row_iq_ref with IQ1_M's split scores from `score` (the same bytes). */
bool qb_quant_row_iq_with(int type, const float *x, void *dst, int64_t n, const float *imatrix, qb_iq1m_score_fn score);

#endif
