/* quant_tq_iq3_ref.c — quantizers of TQ1_0, TQ2_0, IQ3_XXS and IQ3_S (layouts in blocks.h),
 * writing the bytes llama.cpp c392e50's quantize_tq1_0 / quantize_tq2_0 / quantize_iq3_xxs /
 * quantize_iq3_s write, with and without importance weights.
 *
 * Ternary: the block scale is the largest magnitude; each element rounds (half away from zero)
 * to -1, 0 or 1 of it. Importance weights do not change the result.
 *
 * IQ3: every group of 4 magnitudes must be one of the code book's points (levels 0..7 per
 * element, value 2 level + 1). Per sub-block of 32 the signs are taken out (IQ3_XXS keeps an
 * even number of them by flipping the least important element), then 31 (IQ3_XXS) or 19
 * (IQ3_S) candidate scales around max / 15 are tried: each element rounds to its level, a
 * group that is not a code book point is replaced by its best neighbour among the points
 * nearest to it (a table built once: for every one of the 4096 level patterns off the book,
 * the points at the two (IQ3_XXS) or three (IQ3_S) smallest distances, ordered by distance
 * then index); the candidate with the best weighted least-squares fit wins, and the groups
 * that were off the book are re-rounded at the fitted scale. The sub-block scales are then
 * stored as 4-bit multiples of the largest / 31.
 *
 * Byte identity needs ggml's arithmetic: the same float operations in the same order (no
 * fused multiply-adds: the build's -std=c11 keeps GCC from contracting, the pragma tells
 * clang), the same rounding (nearest_int's 1.5 * 2^23 trick, lroundf), the first candidate
 * kept on ties, and ggml's quirks: IQ3_S advances its qs / signs cursors only for sub-blocks
 * that are not all zero. */
#include "blocks.h"
#include "tq_iq3.h"

#include "qb_types.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#define MAXF(a, b) ((a) > (b) ? (a) : (b)) /* ggml's MAX: NaN handling as it has it */

/* Round half to even by adding 1.5 * 2^23 (|v| < 2^22). */
static inline int nearest_int(float v)
{
    const float t = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* ---- ternary ------------------------------------------------------------------------------ */

/* The block scale (largest magnitude) and its inverse. */
static float ternary_scale(const float *x, float *id)
{
    float amax = 0.0f;
    for (int j = 0; j < QB_QK_K; j++) amax = MAXF(amax, fabsf(x[j]));
    *id = amax != 0.0f ? 1.0f / amax : 0.0f;
    return amax;
}

static inline int tern(float v, float id) { return (int)lroundf(v * id) + 1; } /* 0, 1, 2 */

/* n trits of x[0], x[stride], … packed most significant first, then spread over a byte. */
static uint8_t pack_trits(const float *x, int stride, int n, int pad, float id)
{
    unsigned q = 0;
    for (int k = 0; k < n; k++) q = (uint8_t)(q * 3 + (unsigned)tern(x[k * stride], id));
    for (int k = 0; k < pad; k++) q = (uint8_t)(q * 3);
    return (uint8_t)((q * 256 + 242) / 243);
}

static void quant_tq1_0(const float *x, qb_block_tq1_0 *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++, x += QB_QK_K) {
        float id;
        y[b].d = qb_f32_to_f16(ternary_scale(x, &id));
        for (int m = 0; m < 32; m++) y[b].qs[m] = pack_trits(x + m, 32, 5, 0, id);
        for (int m = 0; m < 16; m++) y[b].qs[32 + m] = pack_trits(x + 160 + m, 16, 5, 0, id);
        for (int j = 0; j < 4; j++) y[b].qh[j] = pack_trits(x + 240 + j, 4, 4, 1, id);
    }
}

static void quant_tq2_0(const float *x, qb_block_tq2_0 *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++, x += QB_QK_K) {
        float id;
        y[b].d = qb_f32_to_f16(ternary_scale(x, &id));
        for (int h = 0; h < 2; h++)
            for (int m = 0; m < 32; m++) {
                unsigned q = 0;
                for (int l = 0; l < 4; l++) q += (unsigned)(tern(x[128 * h + 32 * l + m], id) & 3) << (2 * l);
                y[b].qs[32 * h + m] = (uint8_t)q;
            }
    }
}

/* ---- the IQ3 code book tables ---------------------------------------------------------------- */

enum { MAP_SIZE = 4096 };

/* One code book as the quantizer reads it: the points' levels, which pattern is which point
 * (map[u] >= 0) or where its neighbour list starts (-1 - offset into nb; nb[offset] is the
 * count, the indices follow). */
typedef struct {
    int size;
    uint8_t lv[512][4];  /* levels 0..7 of each point's 4 elements */
    int map[MAP_SIZE];
    uint16_t *nb;
    /* per pattern off the book: its neighbours' levels element-major, lvt + lvt_off[u]: row i
     * (element i) holds the list's levels at i * stride, stride = count rounded up to 16 */
    uint8_t *lvt;
    int lvt_off[MAP_SIZE];
} iq3_book;

static iq3_book books[2];   /* [0]: IQ3_XXS (256 points), [1]: IQ3_S (512) */
/* neighbour lists: 22825 entries for IQ3_XXS's book, 28317 for IQ3_S's (counts included) */
enum { NB_CAP = 32768, LVT_CAP = 4 * (NB_CAP + 16 * MAP_SIZE) };
static uint16_t nb_store[2][NB_CAP];
static uint8_t lvt_store[2][LVT_CAP];
static pthread_once_t book_once = PTHREAD_ONCE_INIT;

static int level_of(int byte, bool xxs)
{
    if (!xxs) return (byte - 1) / 2;
    static const uint8_t v[8] = {4, 12, 20, 28, 36, 44, 52, 62};
    for (int l = 0; l < 8; l++)
        if (v[l] == byte) return l;
    return -1;
}

static void build_book(iq3_book *bk, const uint32_t *grid, int size, int nwant, uint16_t *store, uint8_t *lvt)
{
    bk->size = size;
    bk->nb = store;
    bk->lvt = lvt;
    int lvt_used = 0;
    for (int i = 0; i < MAP_SIZE; i++) bk->map[i] = -1;
    for (int k = 0; k < size; k++) {
        int u = 0;
        for (int i = 0; i < 4; i++) {
            bk->lv[k][i] = (uint8_t)level_of((int)(grid[k] >> (8 * i)) & 255, size == 256);
            u |= bk->lv[k][i] << (3 * i);
        }
        bk->map[u] = k;
    }
    int used = 0;
    int d2[512];
    for (int u = 0; u < MAP_SIZE; u++) {
        if (bk->map[u] >= 0) continue;
        for (int k = 0; k < size; k++) { /* squared distance in values 2 level + 1 */
            d2[k] = 0;
            for (int i = 0; i < 4; i++) {
                const int diff = 2 * (bk->lv[k][i] - ((u >> (3 * i)) & 7));
                d2[k] += diff * diff;
            }
        }
        if (used + 1 + size > NB_CAP) return; /* cannot happen for the two books (counted above) */
        bk->map[u] = -1 - used;
        const int start = used++;
        int lo[3] = {INT_MAX, INT_MAX, INT_MAX}; /* the nwant smallest distinct distances, ascending */
        for (int k = 0; k < size; k++) {
            int v = d2[k];
            for (int j = 0; j < nwant; j++) {
                if (v == lo[j]) break;
                if (v < lo[j]) {
                    const int t = lo[j];
                    lo[j] = v;
                    v = t;
                }
            }
        }
        for (int j = 0; j < nwant && lo[j] != INT_MAX; j++) /* by distance, then by index */
            for (int k = 0; k < size; k++)
                if (d2[k] == lo[j]) store[used++] = (uint16_t)k;
        store[start] = (uint16_t)(used - start - 1);
        const int cnt = store[start], stride = (cnt + 15) & ~15;
        if (lvt_used + 4 * stride > LVT_CAP) return; /* cannot happen (capacity counted for 16 per list) */
        bk->lvt_off[u] = lvt_used;
        memset(lvt + lvt_used, 0, (size_t)4 * stride);
        for (int j = 0; j < cnt; j++)
            for (int i = 0; i < 4; i++) lvt[lvt_used + i * stride + j] = bk->lv[store[start + 1 + j]][i];
        lvt_used += 4 * stride;
    }
}

static void build_books(void)
{
    build_book(&books[0], qb_iq3xxs_grid, 256, 2, nb_store[0], lvt_store[0]);
    build_book(&books[1], qb_iq3s_grid, 512, 3, nb_store[1], lvt_store[1]);
}

/* Contract (tq_iq3.h). */
int qb_iq3_neighbour_ref(const uint16_t *nb, const uint8_t *lvt, const float *xv, const float *w, float scale)
{
    const int n = nb[0], stride = (n + 15) & ~15;
    float best = FLT_MAX;
    int index = nb[1];
    for (int j = 0; j < n; j++) {
        float d2 = 0;
        for (int i = 0; i < 4; i++) {
            const float diff = scale * (float)(2 * lvt[i * stride + j] + 1) - xv[i];
            d2 += w[i] * diff * diff;
        }
        if (d2 < best) {
            best = d2;
            index = nb[1 + j];
        }
    }
    return index;
}

/* The neighbour of off-book pattern u with the least weighted squared error against xv at
 * scale (search: nbf); its levels go to L. Returns its point index. */
static int best_neighbour(const iq3_book *bk, qb_iq3_nb_fn nbf, int u, const float *xv, const float *w, float scale,
                          int8_t *L)
{
    const int index = nbf(bk->nb - bk->map[u] - 1, bk->lvt + bk->lvt_off[u], xv, w, scale);
    for (int i = 0; i < 4; i++) L[i] = (int8_t)bk->lv[index][i];
    return index;
}

/* ---- IQ3 ---------------------------------------------------------------------------------------- */

/* The state ggml keeps across the sub-blocks of a row (stale values matter only for degenerate
 * sub-blocks where no candidate scale fits). */
typedef struct {
    int8_t L[32];
    bool on_grid[8];
} iq3_row_state;

/* Rounds xv (32 magnitudes) at inverse scale id into levels L, replacing groups off the book by
 * their best neighbour at scale; on[k]: group k was on the book. only_off: leave the groups
 * with on[k] set as they are. */
static void round_groups(const iq3_book *bk, qb_iq3_nb_fn nbf, const float *xv, const float *waux, float id, float scale, int8_t *L,
                         bool *on, bool only_off)
{
    for (int k = 0; k < 8; k++) {
        if (only_off && on[k]) continue;
        int u = 0;
        for (int i = 0; i < 4; i++) {
            int l = nearest_int(0.5f * (id * xv[4 * k + i] - 1));
            l = l < 0 ? 0 : l > 7 ? 7 : l;
            L[4 * k + i] = (int8_t)l;
            u |= l << (3 * i);
        }
        const int g = bk->map[u];
        if (!only_off) on[k] = g >= 0;
        if (g < 0) best_neighbour(bk, nbf, u, xv + 4 * k, waux + 4 * k, scale, L + 4 * k);
        else if (only_off)
            for (int i = 0; i < 4; i++) L[4 * k + i] = (int8_t)bk->lv[g][i];
    }
}

/* Σ w x q and Σ w q q over the sub-block for levels L (q = 2 level + 1). */
static void fit_sums(const float *w, const float *xv, const int8_t *L, float *sumqx, float *sumq2)
{
    float sx = 0, s2 = 0;
    for (int i = 0; i < 32; i++) {
        const float q = (float)(2 * L[i] + 1);
        sx += w[i] * xv[i] * q;
        s2 += w[i] * q * q;
    }
    *sumqx = sx;
    *sumq2 = s2;
}

/* One sub-block of 32: signs into signs[0..3] (IQ3_XXS: seven bits each), levels into st->L;
 * returns the fitted scale (0: all zero, *skipped set). */
static float iq3_sub(const iq3_book *bk, qb_iq3_nb_fn nbf, bool xxs, const float *xb, const float *qw, float sigma2, iq3_row_state *st,
                     uint8_t signs[4], bool *skipped)
{
    float weight[32], waux[32], xv[32];
    if (qw)
        for (int i = 0; i < 32; i++) weight[i] = qw[i] * sqrtf(sigma2 + xb[i] * xb[i]);
    else
        for (int i = 0; i < 32; i++) weight[i] = xb[i] * xb[i];
    for (int i = 0; i < 32; i++) waux[i] = sqrtf(weight[i]);
    for (int k = 0; k < 4; k++) {
        int nflip = 0;
        unsigned s = 0;
        for (int i = 0; i < 8; i++) {
            const float v = xb[8 * k + i];
            if (v >= 0) xv[8 * k + i] = v;
            else {
                xv[8 * k + i] = -v;
                nflip++;
                s |= 1u << i;
            }
        }
        if (xxs && nflip % 2) { /* an even number of signs: flip the least important element */
            int imin = 0;
            float min = weight[8 * k] * xb[8 * k] * xb[8 * k];
            for (int i = 1; i < 8; i++) {
                const float a = weight[8 * k + i] * xb[8 * k + i] * xb[8 * k + i];
                if (a < min) {
                    min = a;
                    imin = i;
                }
            }
            xv[8 * k + imin] = -xv[8 * k + imin];
            s ^= 1u << imin;
        }
        signs[k] = (uint8_t)(xxs ? s & 127 : s);
    }
    float max = xv[0];
    for (int i = 1; i < 32; i++) max = MAXF(max, xv[i]);
    *skipped = xxs ? max < 1e-8f : !(max != 0);
    if (*skipped) {
        if (xxs) memset(st->L, 0, sizeof st->L);
        return 0;
    }
    float best = 0, scale = max / 15;
    if (!xxs)
        for (int k = 0; k < 8; k++) st->on_grid[k] = false;
    const int span = xxs ? 15 : 9;
    for (int is = -span; is <= span; is++) {
        const float id = (15 + is * 0.2f) / max;
        int8_t Laux[32];
        bool on[8];
        round_groups(bk, nbf, xv, waux, id, 1 / id, Laux, on, false);
        float sumqx, sumq2;
        fit_sums(weight, xv, Laux, &sumqx, &sumq2);
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            scale = sumqx / sumq2;
            best = scale * sumqx;
            memcpy(st->L, Laux, sizeof Laux);
            memcpy(st->on_grid, on, sizeof on);
        }
    }
    int off = 0;
    for (int k = 0; k < 8; k++) off += !st->on_grid[k];
    if (off > 0 && scale > 0) {
        /* IQ3_XXS re-rounds the groups that were off the book, IQ3_S all of them */
        bool on[8];
        memcpy(on, st->on_grid, sizeof on);
        if (!xxs) memset(on, 0, sizeof on);
        round_groups(bk, nbf, xv, waux, 1 / scale, scale, st->L, on, true);
        float sumqx, sumq2;
        fit_sums(weight, xv, st->L, &sumqx, &sumq2);
        if (sumq2 > 0) scale = sumqx / sumq2;
    }
    if (scale < 0) { /* ggml's guard: keep the scale positive, flip the signs */
        scale = -scale;
        for (int k = 0; k < 4; k++) signs[k] = (uint8_t)(xxs ? ~signs[k] & 127 : ~signs[k]);
    }
    return scale;
}

/* The point index of group k of st->L. */
static int point_of(const iq3_book *bk, const int8_t *L)
{
    int u = 0;
    for (int i = 0; i < 4; i++) u |= L[i] << (3 * i);
    return bk->map[u]; /* on the book by construction */
}

static void quant_iq3_xxs_row(qb_iq3_nb_fn nbf, const float *x, qb_block_iq3_xxs *y, int64_t nb, const float *qw, iq3_row_state *st)
{
    const iq3_book *bk = &books[0];
    for (int64_t b = 0; b < nb; b++) {
        const float *xbl = x + QB_QK_K * b;
        uint8_t q3[96];
        uint32_t sas[8];
        float scales[8], max_scale = 0, sumx2 = 0;
        memset(q3, 0, sizeof q3);
        memset(sas, 0, sizeof sas);
        for (int i = 0; i < QB_QK_K; i++) sumx2 += xbl[i] * xbl[i];
        const float sigma2 = 2 * sumx2 / QB_QK_K;
        for (int s = 0; s < 8; s++) {
            uint8_t signs[4];
            bool skipped;
            const float scale = iq3_sub(bk, nbf, true, xbl + 32 * s, qw ? qw + QB_QK_K * b + 32 * s : NULL, sigma2, st, signs, &skipped);
            if (skipped) {
                scales[s] = 0;
                continue;
            }
            for (int k = 0; k < 8; k++) q3[8 * s + k] = (uint8_t)point_of(bk, st->L + 4 * k);
            sas[s] = (uint32_t)signs[0] | (uint32_t)signs[1] << 7 | (uint32_t)signs[2] << 14 | (uint32_t)signs[3] << 21;
            scales[s] = scale;
            max_scale = MAXF(max_scale, scale);
        }
        y[b].d = 0;
        if (!(max_scale != 0)) {
            memset(y[b].qs, 0, sizeof y[b].qs);
            continue;
        }
        const float d = max_scale / 31;
        y[b].d = qb_f32_to_f16(d * 1.0125f);
        const float id = 1 / d;
        for (int s = 0; s < 8; s++) {
            int l = nearest_int(0.5f * (id * scales[s] - 1));
            l = l < 0 ? 0 : l > 15 ? 15 : l;
            sas[s] |= (uint32_t)l << 28;
        }
        memcpy(y[b].qs, q3, 64);
        memcpy(y[b].qs + 64, sas, 32);
    }
}

static void quant_iq3_s_row(qb_iq3_nb_fn nbf, const float *x, qb_block_iq3_s *y, int64_t nb, const float *qw, iq3_row_state *st)
{
    const iq3_book *bk = &books[1];
    for (int64_t b = 0; b < nb; b++) {
        const float *xbl = x + QB_QK_K * b;
        memset(&y[b], 0, sizeof y[b]);
        uint8_t *qs = y[b].qs, *sg = y[b].signs; /* cursors: advance only past sub-blocks kept */
        float scales[8], max_scale = 0, sumx2 = 0;
        for (int i = 0; i < QB_QK_K; i++) sumx2 += xbl[i] * xbl[i];
        const float sigma2 = 2 * sumx2 / QB_QK_K;
        for (int s = 0; s < 8; s++) {
            uint8_t signs[4];
            bool skipped;
            const float scale = iq3_sub(bk, nbf, false, xbl + 32 * s, qw ? qw + QB_QK_K * b + 32 * s : NULL, sigma2, st, signs, &skipped);
            if (skipped) {
                scales[s] = 0;
                continue;
            }
            for (int k = 0; k < 8; k++) {
                const int g = point_of(bk, st->L + 4 * k);
                qs[k] = (uint8_t)(g & 255);
                y[b].qh[s] |= (uint8_t)((g >> 8) << k);
            }
            qs += 8;
            memcpy(sg, signs, 4);
            sg += 4;
            scales[s] = scale;
            max_scale = MAXF(max_scale, scale);
        }
        if (!(max_scale != 0)) continue;
        const float d = max_scale / 31;
        y[b].d = qb_f32_to_f16(d * 1.033f);
        const float id = 1 / d;
        for (int p = 0; p < 4; p++) {
            int l1 = nearest_int(0.5f * (id * scales[2 * p] - 1));
            int l2 = nearest_int(0.5f * (id * scales[2 * p + 1] - 1));
            l1 = l1 < 0 ? 0 : l1 > 15 ? 15 : l1;
            l2 = l2 < 0 ? 0 : l2 > 15 ? 15 : l2;
            y[b].scales[p] = (uint8_t)(l1 | l2 << 4);
        }
    }
}

/* Contract (tq_iq3.h). */
bool qb_quant_tq_iq3_ref(int type, const float *x, void *dst, int64_t nrows, int64_t n_per_row, const float *qw)
{
    return qb_quant_tq_iq3_with(type, x, dst, nrows, n_per_row, qw, qb_iq3_neighbour_ref);
}

/* Contract (tq_iq3.h). */
bool qb_quant_tq_iq3_with(int type, const float *x, void *dst, int64_t nrows, int64_t n_per_row, const float *qw,
                          qb_iq3_nb_fn nbf)
{
    if (nrows < 0 || n_per_row < 0 || n_per_row % QB_QK_K != 0) return false;
    if (type != QB_TYPE_TQ1_0 && type != QB_TYPE_TQ2_0 && type != QB_TYPE_IQ3_XXS && type != QB_TYPE_IQ3_S) return false;
    const int64_t nb = n_per_row / QB_QK_K;
    const size_t rb = qb_type_row_bytes((qb_type)type, n_per_row);
    if (type == QB_TYPE_IQ3_XXS || type == QB_TYPE_IQ3_S) pthread_once(&book_once, build_books);
    iq3_row_state st;
    memset(&st, 0, sizeof st);
    for (int64_t r = 0; r < nrows; r++) {
        const float *xr = x + r * n_per_row;
        uint8_t *yr = (uint8_t *)dst + (size_t)r * rb;
        switch (type) {
        case QB_TYPE_TQ1_0: quant_tq1_0(xr, (qb_block_tq1_0 *)yr, nb); break;
        case QB_TYPE_TQ2_0: quant_tq2_0(xr, (qb_block_tq2_0 *)yr, nb); break;
        case QB_TYPE_IQ3_XXS: quant_iq3_xxs_row(nbf, xr, (qb_block_iq3_xxs *)yr, nb, qw, &st); break;
        default: quant_iq3_s_row(nbf, xr, (qb_block_iq3_s *)yr, nb, qw, &st); break;
        }
    }
    return true;
}
