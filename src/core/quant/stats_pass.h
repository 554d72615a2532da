/* stats_pass.h — what the two passes of the analysis share (stats.c: the statistics pass and
 * the entry points; stats_hist.c: the histogram and mapping pass). Private to core/quant. */
#ifndef QB_STATS_PASS_H
#define QB_STATS_PASS_H

#include "stats.h"

#include "kernels.h"

#include <stdint.h>
#include <stdlib.h>

/* The slots kernels.h's hist_slots writes: 0 under, 1..bins the bins, bins + 1 over,
 * bins + 2 NaN (not counted). */
enum { QB_SLOT_CHUNK = 1024 }; /* values per slot batch: the slot arrays stay in L1 */

/* A mapping candidate: the smallest original in one value bucket, with its dequantized value
 * and flat index (ties between equal originals go to the lower index: deterministic). */
typedef struct {
    float x, y;
    int64_t idx;
} qb_map_pt;

static inline bool qb_map_better(const qb_map_pt *a, const qb_map_pt *b) /* a precedes b */
{
    return b->idx < 0 || a->x < b->x || (a->x == b->x && a->idx < b->idx);
}

/* Where the dequantized rows come from: the packed tensor q (rows rb bytes apart, dequantized
 * into the caller's buffer on demand) or a matrix the caller has (deq); and, for the weighted
 * view, the importance scales of the columns (stats.h: s_j = sqrt(w_j / w̄)). */
typedef struct {
    const qb_format *f;
    const uint8_t *q;
    size_t rb;
    const float *deq;
    int64_t n;
    const float *scale;    /* (rows / rows_per_mat) × n scales, or NULL: unweighted */
    int64_t rows_per_mat;  /* consecutive rows sharing one row of scales */
} qb_row_source;

/* The n column scales of row r (s->scale set). */
static inline const float *qb_row_scale(const qb_row_source *s, int64_t r)
{
    return s->scale + (size_t)(r / s->rows_per_mat) * (size_t)s->n;
}

/* Rows per group a thread takes at a time (the error kernel's lanes). */
enum { QB_STATS_GROUP = QB_ERR_ROWS };

/* Rows r0 .. r0 + nr − 1 dequantized, n floats apart: in buf (QB_STATS_GROUP · n floats) or the
 * caller's matrix. */
static inline const float *qb_rows_of(const qb_row_source *s, int64_t r0, int nr, float *buf)
{
    if (s->deq) return s->deq + r0 * s->n;
    for (int i = 0; i < nr; i++) qb_dequantize_row(s->f, s->q + (size_t)(r0 + i) * s->rb, buf + (size_t)i * s->n, s->n);
    return buf;
}

/* A thread's row buffer (NULL when the rows are the caller's; *ok false when out of memory). */
static inline float *qb_row_buffer(const qb_row_source *s, int64_t rows, bool *ok)
{
    if (s->deq) return NULL;
    const int64_t nr = rows < QB_STATS_GROUP ? rows : QB_STATS_GROUP;
    float *b = malloc((size_t)(nr * s->n) * sizeof *b);
    if (!b) *ok = false;
    return b;
}

/* Ask for bytes at p ahead of use: the analysis streams the tensor from memory, and measured
 * here the hardware prefetcher alone left the kernels waiting half the time. A hint only (it
 * never faults, past the tensor's end included). */
static inline void qb_prefetch(const void *p, size_t bytes)
{
    for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch((const char *)p + o);
}

/* The histogram and mapping pass (stats_hist.c): counts of the values of x (rows × s->n),
 * of the rows of s and of their difference into a's three histograms (initialised, with
 * their grids), with s->scale the scaled difference into a->hist_werr (initialised) too,
 * and, when nmap > 1, the candidates of nmap − 1 buckets over [mlo, mhi] merged
 * into best (nmap − 1 entries, idx −1 where empty). nt threads; false when out of memory or
 * cancelled. */
bool qb_stats_hist_map(const float *x, const qb_row_source *s, int64_t rows, int nt, const volatile int *cancel,
                       qb_analysis *a, int nmap, double mlo, double mhi, qb_map_pt *best);

#endif
