/* iq_gridmap.c — what the grid i-quant quantizers search with, built once per grid from the
 * format's own table (iq_grids.h): each point as 8 bytes 2l + 1 (l = 0, 1, 2 the level of
 * an element: IQ2 magnitudes 8, 25, 43; IQ1 values -1, 0, 1), a map from the 16-bit code of
 * 8 levels (2 bits each, levels 0..3) to the point with exactly those levels, and for every
 * code that is not a point the list of its nearest points: all points at the `want` smallest
 * squared distances (in the doubled coordinates 2l + 1), by distance, then by index. This is
 * the data ggml's iq2xs_init_impl computes (its kmap and neighbour lists; want = 2 for IQ2_XXS
 * and IQ2_XS, 1 for IQ2_S, 3 for IQ1_S / IQ1_M): the quantizers pick the same points.
 *
 * Built on first use under pthread_once and never changed after (shared, read-only). */
#include "iq_gridmap.h"
#include "iq_grids.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_D2 (8 * 6 * 6) /* levels 0..3 against 0..2 in doubled coordinates: |diff| <= 6 */

static qb_iq_gridmap maps[QB_IQ_GRID_COUNT];
static bool built_ok[QB_IQ_GRID_COUNT];
static pthread_once_t once[QB_IQ_GRID_COUNT] = {PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT};

/* The level (0, 1, 2) of a table byte: IQ2 magnitudes 8, 25, 43; IQ1 values -1, 0, 1. */
static int level_of(int grid, uint8_t v)
{
    if (grid == QB_IQ_GRID_1S) return (int)(int8_t)v + 1;
    return v == 8 ? 0 : v == 25 ? 1 : 2;
}

static bool build(int grid)
{
    static const struct { const uint64_t *table; int n, want; } g[QB_IQ_GRID_COUNT] = {
        [QB_IQ_GRID_2XXS] = {qb_iq2xxs_grid, 256, 2},
        [QB_IQ_GRID_2XS] = {qb_iq2xs_grid, 512, 2},
        [QB_IQ_GRID_2S] = {qb_iq2s_grid, 1024, 1},
        [QB_IQ_GRID_1S] = {qb_iq1s_grid, QB_IQ1S_NGRID, 3},
    };
    qb_iq_gridmap *m = &maps[grid];
    const int n = g[grid].n;
    uint64_t *pts = malloc((size_t)n * sizeof *pts);
    int32_t *map = malloc(QB_IQ_MAP_SIZE * sizeof *map);
    int *bucket_n = calloc(MAX_D2 + 1, sizeof *bucket_n), *bucket = malloc((size_t)(MAX_D2 + 1) * n * sizeof *bucket);
    size_t cap = 1 << 16, used = 0;
    uint16_t *nb = malloc(cap * sizeof *nb);
    if (!pts || !map || !bucket_n || !bucket || !nb) goto fail;
    for (int i = 0; i < QB_IQ_MAP_SIZE; i++) map[i] = -1;
    for (int j = 0; j < n; j++) {
        const uint8_t *src = (const uint8_t *)&g[grid].table[j];
        uint8_t p[8];
        int code = 0;
        for (int k = 0; k < 8; k++) {
            const int l = level_of(grid, src[k]);
            p[k] = (uint8_t)(2 * l + 1);
            code |= l << 2 * k;
        }
        memcpy(&pts[j], p, 8);
        map[code] = j;
    }
    for (int code = 0; code < QB_IQ_MAP_SIZE; code++) {
        if (map[code] >= 0) continue;
        int pos[8];
        for (int k = 0; k < 8; k++) pos[k] = 2 * ((code >> 2 * k) & 3) + 1;
        memset(bucket_n, 0, (MAX_D2 + 1) * sizeof *bucket_n);
        for (int j = 0; j < n; j++) {
            const uint8_t *p = (const uint8_t *)&pts[j];
            int d2 = 0;
            for (int k = 0; k < 8; k++) d2 += (p[k] - pos[k]) * (p[k] - pos[k]);
            bucket[(size_t)d2 * n + bucket_n[d2]++] = j;
        }
        if (used + 1 + (size_t)n > cap) {
            cap = 2 * cap + (size_t)n;
            uint16_t *t = realloc(nb, cap * sizeof *nb);
            if (!t) goto fail;
            nb = t;
        }
        const size_t start = used++;
        int levels = 0;
        for (int d2 = 0; d2 <= MAX_D2 && levels < g[grid].want; d2++) {
            if (!bucket_n[d2]) continue;
            levels++;
            for (int i = 0; i < bucket_n[d2]; i++) nb[used++] = (uint16_t)bucket[(size_t)d2 * n + i];
        }
        nb[start] = (uint16_t)(used - start - 1);
        map[code] = -(int32_t)start - 1;
    }
    free(bucket_n);
    free(bucket);
    m->n = n;
    m->points = pts;
    m->map = map;
    m->neighbours = nb;
    return true;
fail:
    free(pts);
    free(map);
    free(bucket_n);
    free(bucket);
    free(nb);
    return false;
}

static void build_2xxs(void) { built_ok[QB_IQ_GRID_2XXS] = build(QB_IQ_GRID_2XXS); }
static void build_2xs(void) { built_ok[QB_IQ_GRID_2XS] = build(QB_IQ_GRID_2XS); }
static void build_2s(void) { built_ok[QB_IQ_GRID_2S] = build(QB_IQ_GRID_2S); }
static void build_1s(void) { built_ok[QB_IQ_GRID_1S] = build(QB_IQ_GRID_1S); }

const qb_iq_gridmap *qb_iq_gridmap_get(int grid)
{
    static void (*const fn[QB_IQ_GRID_COUNT])(void) = {build_2xxs, build_2xs, build_2s, build_1s};
    if (grid < 0 || grid >= QB_IQ_GRID_COUNT) return NULL;
    pthread_once(&once[grid], fn[grid]);
    return built_ok[grid] ? &maps[grid] : NULL;
}
