/* iq_gridmap.h — the search structures of the grid i-quant quantizers (iq_gridmap.c says what
 * they hold and why they match ggml's). Internal to kernels/. */
#ifndef QB_IQ_GRIDMAP_H
#define QB_IQ_GRIDMAP_H

#include <stdbool.h>
#include <stdint.h>

enum { QB_IQ_GRID_2XXS, QB_IQ_GRID_2XS, QB_IQ_GRID_2S, QB_IQ_GRID_1S, QB_IQ_GRID_COUNT };

/* codes of 8 levels in 0..3 (2 bits each) reach 4^8, but only levels 0..2 occur: 0xAAAA + 1 */
#define QB_IQ_MAP_SIZE 43692

typedef struct {
    int n;                     /* points in the grid */
    const uint64_t *points;    /* (n) point j: byte k = 2 l_k + 1 */
    const int32_t *map;        /* (QB_IQ_MAP_SIZE) code → point index (>= 0), or -(1 + o) */
    const uint16_t *neighbours; /* at o: the count c, then c point indices */
} qb_iq_gridmap;

/* The structures of grid g (QB_IQ_GRID_*), built on first call; NULL when g is out of range
 * or memory ran out. Borrowed, static, read-only, safe from any thread. */
const qb_iq_gridmap *qb_iq_gridmap_get(int g);

/* The neighbour list of a code that is not a point (map[code] < 0). */
static inline const uint16_t *qb_iq_neighbours(const qb_iq_gridmap *m, int code)
{
    return m->neighbours + (-m->map[code] - 1);
}

#endif
