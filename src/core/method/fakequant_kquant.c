/* fakequant_kquant.c — learnable rounding on the k-quant grids and its straight-through
 * gradients (fakequant_kquant.h). The sub-block headers are read from and written into the
 * format's own blocks (kernels/blocks.h), the codes through grid.h. */
#include "fakequant_kquant.h"
#include "grid.h"
#include "blocks.h"
#include "qb_types.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct qb_fqk {
    qb_grid g;            /* the format's code layout */
    const float *w;       /* rows × n, borrowed */
    int64_t rows, n, nsub;
    int type;
    int sub, per;         /* elements per sub-block, sub-blocks per super-block */
    int lo, hi;           /* codes c, value a·c − m */
    int smin, smax, mmax; /* the integer sub-scales' and mins' ranges */
    bool mins;
    size_t rb;            /* bytes per row */
    uint8_t *rtn;         /* the format's own quantization (rows × rb) */
    float *d, *dmin;      /* per super-block */
    int16_t *sc, *mn;     /* per sub-block: the integer scale (signed) and min */
};

/* Round to nearest, halves to even, by the 1.5·2^23 trick: the k-quant coder's round_int
 * (kernels/quant_kquants_ref.c), bit for bit for every input, so that v = 0 gives its codes. */
static inline int round_int(float v)
{
    const float t = v + 12582912.0f;
    int32_t bits;
    memcpy(&bits, &t, sizeof bits);
    return (bits & 0x007fffff) - 0x00400000;
}

bool qb_fqk_supports(const qb_format *f, int64_t n)
{
    if (f->kind != QB_FMT_GGML || n <= 0 || n % QB_QK_K) return false;
    return f->type == QB_TYPE_Q2_K || f->type == QB_TYPE_Q3_K || f->type == QB_TYPE_Q4_K || f->type == QB_TYPE_Q5_K ||
           f->type == QB_TYPE_Q6_K;
}

/* ---- sub-block headers ------------------------------------------------------------------ */

/* Q3_K's sixteen 6-bit scales (biased by 32) in their 12 bytes (blocks.h) */
static void q3_scales_get(const uint8_t p[12], int sc[16])
{
    for (int s = 0; s < 16; s++)
        sc[s] = (s < 8 ? (p[s] & 15) : (p[s - 8] >> 4)) | ((p[8 + s % 4] >> (2 * (s / 4))) & 3) << 4;
}

static void q3_scales_set(const int sc[16], uint8_t p[12])
{
    memset(p, 0, 12);
    for (int s = 0; s < 16; s++) {
        if (s < 8) p[s] = (uint8_t)(sc[s] & 15);
        else p[s - 8] = (uint8_t)(p[s - 8] | (sc[s] & 15) << 4);
        p[8 + s % 4] = (uint8_t)(p[8 + s % 4] | (sc[s] >> 4) << (2 * (s / 4)));
    }
}

/* Q4_K / Q5_K: eight 6-bit (scale, min) pairs in 12 bytes (blocks.h) */
static void k4_get(const uint8_t p[12], int sc[8], int mn[8])
{
    for (int s = 0; s < 4; s++) {
        sc[s] = p[s] & 63;
        mn[s] = p[s + 4] & 63;
        sc[s + 4] = (p[s + 8] & 15) | (p[s] >> 6) << 4;
        mn[s + 4] = (p[s + 8] >> 4) | (p[s + 4] >> 6) << 4;
    }
}

static void k4_set(const int sc[8], const int mn[8], uint8_t p[12])
{
    for (int s = 0; s < 4; s++) {
        p[s] = (uint8_t)(sc[s] | (sc[s + 4] >> 4) << 6);
        p[s + 4] = (uint8_t)(mn[s] | (mn[s + 4] >> 4) << 6);
        p[s + 8] = (uint8_t)((sc[s + 4] & 15) | (mn[s + 4] & 15) << 4);
    }
}

/* One super-block's d, dmin (0 without mins) and the integers its sub-blocks multiply them by:
 * sc[s] as the dequantizer uses it (Q3_K's unbiased), mn[s] (0 without mins). */
static void header_get(int type, const uint8_t *blk, float *d, float *dmin, int *sc, int *mn)
{
    *dmin = 0.0f;
    for (int s = 0; s < 16; s++) mn[s] = 0;
    switch (type) {
    case QB_TYPE_Q2_K: {
        const qb_block_q2_K *x = (const qb_block_q2_K *)blk;
        *d = qb_f16_to_f32(x->d);
        *dmin = qb_f16_to_f32(x->dmin);
        for (int s = 0; s < 16; s++) sc[s] = x->scales[s] & 15, mn[s] = x->scales[s] >> 4;
        break;
    }
    case QB_TYPE_Q3_K: {
        const qb_block_q3_K *x = (const qb_block_q3_K *)blk;
        *d = qb_f16_to_f32(x->d);
        q3_scales_get(x->scales, sc);
        for (int s = 0; s < 16; s++) sc[s] -= 32;
        break;
    }
    case QB_TYPE_Q4_K:
    case QB_TYPE_Q5_K: {
        const bool five = type == QB_TYPE_Q5_K;
        const qb_block_q4_K *x4 = (const qb_block_q4_K *)blk;
        const qb_block_q5_K *x5 = (const qb_block_q5_K *)blk;
        *d = qb_f16_to_f32(five ? x5->d : x4->d);
        *dmin = qb_f16_to_f32(five ? x5->dmin : x4->dmin);
        k4_get(five ? x5->scales : x4->scales, sc, mn);
        break;
    }
    default: { /* Q6_K */
        const qb_block_q6_K *x = (const qb_block_q6_K *)blk;
        *d = qb_f16_to_f32(x->d);
        for (int s = 0; s < 16; s++) sc[s] = x->scales[s];
        break;
    }
    }
}

/* Write the sub-blocks' integers back (header_get's convention), d and dmin unchanged. */
static void header_set(int type, uint8_t *blk, const int *sc, const int *mn)
{
    switch (type) {
    case QB_TYPE_Q2_K: {
        qb_block_q2_K *x = (qb_block_q2_K *)blk;
        for (int s = 0; s < 16; s++) x->scales[s] = (uint8_t)(sc[s] | mn[s] << 4);
        break;
    }
    case QB_TYPE_Q3_K: {
        int b[16];
        for (int s = 0; s < 16; s++) b[s] = sc[s] + 32;
        q3_scales_set(b, ((qb_block_q3_K *)blk)->scales);
        break;
    }
    case QB_TYPE_Q4_K: k4_set(sc, mn, ((qb_block_q4_K *)blk)->scales); break;
    case QB_TYPE_Q5_K: k4_set(sc, mn, ((qb_block_q5_K *)blk)->scales); break;
    default: { /* Q6_K */
        qb_block_q6_K *x = (qb_block_q6_K *)blk;
        for (int s = 0; s < 16; s++) x->scales[s] = (int8_t)sc[s];
        break;
    }
    }
}

/* ---- construction ----------------------------------------------------------------------- */

void qb_fqk_free(qb_fqk *q)
{
    if (!q) return;
    free(q->rtn);
    free(q->d);
    free(q->dmin);
    free(q->sc);
    free(q->mn);
    free(q);
}

int64_t qb_fqk_subblocks(const qb_fqk *q) { return q->nsub; }

bool qb_fqk_has_mins(const qb_fqk *q) { return q->mins; }

qb_status qb_fqk_new(qb_ctx *ctx, const qb_format *f, const float *w, int64_t rows, int64_t n, const float *imp,
                     qb_fqk **out)
{
    *out = NULL;
    if (!qb_fqk_supports(f, n)) {
        char name[64];
        qb_format_name(f, name, sizeof name);
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "learned rounding: format %s with rows of %lld is not a k-quant "
                       "(q2_k, q3_k, q4_k, q5_k, q6_k; rows a multiple of 256)", name, (long long)n);
    }
    qb_fqk *q = calloc(1, sizeof *q);
    if (!q) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    qb_status st = qb_grid_init(ctx, &q->g, f, n);
    if (st != QB_OK) {
        free(q);
        return st;
    }
    q->w = w;
    q->rows = rows;
    q->n = n;
    q->type = f->type;
    switch (f->type) {
    case QB_TYPE_Q2_K: q->sub = 16, q->lo = 0, q->hi = 3, q->smin = 0, q->smax = 15, q->mmax = 15, q->mins = true; break;
    case QB_TYPE_Q3_K: q->sub = 16, q->lo = -4, q->hi = 3, q->smin = -32, q->smax = 31; break;
    case QB_TYPE_Q4_K: q->sub = 32, q->lo = 0, q->hi = 15, q->smin = 0, q->smax = 63, q->mmax = 63, q->mins = true; break;
    case QB_TYPE_Q5_K: q->sub = 32, q->lo = 0, q->hi = 31, q->smin = 0, q->smax = 63, q->mmax = 63, q->mins = true; break;
    default: q->sub = 16, q->lo = -32, q->hi = 31, q->smin = -128, q->smax = 127; break; /* Q6_K */
    }
    q->per = QB_QK_K / q->sub;
    q->nsub = rows * (n / q->sub);
    q->rb = qb_format_row_bytes(f, n);
    const int64_t nsb = rows * (n / QB_QK_K);
    q->rtn = malloc(q->rb * (size_t)rows);
    q->d = malloc((size_t)nsb * sizeof(float));
    q->dmin = malloc((size_t)nsb * sizeof(float));
    q->sc = malloc((size_t)q->nsub * sizeof(int16_t));
    q->mn = malloc((size_t)q->nsub * sizeof(int16_t));
    if (!q->rtn || !q->d || !q->dmin || !q->sc || !q->mn) {
        qb_fqk_free(q);
        return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    }
    if ((st = qb_quantize_matrix_w(ctx, f, w, rows, n, q->rtn, imp, NULL)) != QB_OK) {
        qb_fqk_free(q);
        return st;
    }
    const size_t bb = q->g.gbytes;
    for (int64_t b = 0; b < nsb; b++) {
        const int64_t r = b / (n / QB_QK_K), j = b % (n / QB_QK_K);
        int sc[16], mn[16];
        header_get(q->type, q->rtn + (size_t)r * q->rb + (size_t)j * bb, &q->d[b], &q->dmin[b], sc, mn);
        for (int s = 0; s < q->per; s++) {
            q->sc[b * q->per + s] = (int16_t)sc[s];
            q->mn[b * q->per + s] = (int16_t)mn[s];
        }
    }
    *out = q;
    return QB_OK;
}

/* ---- one sub-block ---------------------------------------------------------------------- */

/* Sub-block k's grid for factors phi, psi: the integers S, M the header will hold, a = d·S,
 * m = dmin·M (the dequantizer's products), and whether S and M came from inside their clamps
 * (the STE passes the factors' gradients only then). */
typedef struct {
    int S, M;
    float a, m, d, dmin;
    bool s_in, m_in;
} sub_grid;

static sub_grid grid_of(const qb_fqk *q, int64_t k, float phi, float psi)
{
    const int64_t b = k / q->per;
    sub_grid G = {.d = q->d[b], .dmin = q->dmin[b]};
    const int s0 = q->sc[k], m0 = q->mn[k];
    if (s0 != 0) { /* a scale keeps its sign and never reaches 0 */
        const float lo = s0 > 0 ? 1.0f : (float)q->smin, hi = s0 > 0 ? (float)q->smax : -1.0f;
        const float t = rintf((float)s0 * phi);
        G.s_in = t >= lo && t <= hi;
        G.S = (int)(t < lo ? lo : t > hi ? hi : t);
    }
    G.a = G.d * (float)G.S;
    G.m = 0.0f;
    if (q->mins) {
        const float t = rintf((float)m0 * psi);
        G.m_in = t >= 0.0f && t <= (float)q->mmax;
        G.M = (int)(t < 0.0f ? 0.0f : t > (float)q->mmax ? (float)q->mmax : t);
        G.m = G.dmin * (float)G.M;
    }
    return G;
}

/* the row holding element i of the matrix and its column */
static const uint8_t *rtn_row(const qb_fqk *q, int64_t i, int64_t *col)
{
    *col = i % q->n;
    return q->rtn + (size_t)(i / q->n) * q->rb;
}

/* The code of element i (value w, offset v) on grid G; *in: rounding landed inside lo..hi. */
static int code_of(const qb_fqk *q, const sub_grid *G, int64_t i, float w, float v, bool *in)
{
    if (G->a == 0.0f) { /* the round-to-nearest code: the value is −m whatever it is */
        int64_t col;
        const uint8_t *row = rtn_row(q, i, &col);
        *in = false;
        return qb_grid_get_code(&q->g, row, col) + q->lo;
    }
    const int u = round_int((w + G->m) / G->a + v);
    *in = u >= q->lo && u <= q->hi;
    return u < q->lo ? q->lo : u > q->hi ? q->hi : u;
}

void qb_fqk_forward(const qb_fqk *q, const float *v, const float *phi, const float *psi, float *wq)
{
    const int sub = q->sub;
#pragma omp parallel for schedule(static) if (q->rows * q->n > 65536)
    for (int64_t k = 0; k < q->nsub; k++) {
        const sub_grid G = grid_of(q, k, phi[k], q->mins ? psi[k] : 1.0f);
        for (int64_t i = k * sub; i < (k + 1) * sub; i++) {
            bool in;
            const int c = code_of(q, &G, i, q->w[i], v[i], &in);
            wq[i] = G.a * (float)c - G.m; /* the dequantizer's operations */
        }
    }
}

void qb_fqk_backward(const qb_fqk *q, const float *v, const float *phi, const float *psi, const float *dwq, float *dv,
                     float *dphi, float *dpsi)
{
    const int sub = q->sub;
#pragma omp parallel for schedule(static) if (q->rows * q->n > 65536)
    for (int64_t k = 0; k < q->nsub; k++) {
        const sub_grid G = grid_of(q, k, phi[k], q->mins ? psi[k] : 1.0f);
        /* wq = a·c − m, c = clamp(rint((w + m)/a + v)): with rint as the identity
         * ∂wq/∂v = a·in, ∂wq/∂a = c − in·(w + m)/a, ∂wq/∂m = in − 1 */
        double ga = 0, gm = 0;
        for (int64_t i = k * sub; i < (k + 1) * sub; i++) {
            const float g = dwq[i];
            if (G.a == 0.0f) {
                gm -= g;
                continue;
            }
            bool in;
            const float t = (q->w[i] + G.m) / G.a;
            const int c = code_of(q, &G, i, q->w[i], v[i], &in);
            if (dv && in) dv[i] += g * G.a;
            ga += (double)g * ((float)c - (in ? t : 0.0f));
            if (!in) gm -= g;
        }
        /* a = d·S, S = clamp(rint(sc·φ)); m = dmin·M, M = clamp(rint(mn·ψ)) */
        if (dphi && G.s_in) dphi[k] += (float)(ga * G.d * q->sc[k]);
        if (dpsi && q->mins && G.m_in) dpsi[k] += (float)(gm * G.dmin * q->mn[k]);
    }
}

void qb_fqk_pack(const qb_fqk *q, const float *v, const float *phi, const float *psi, void *dst)
{
    const int64_t per_row = q->n / QB_QK_K;
    memcpy(dst, q->rtn, q->rb * (size_t)q->rows);
#pragma omp parallel for schedule(static) if (q->rows * q->n > 65536)
    for (int64_t r = 0; r < q->rows; r++) {
        uint8_t *row = (uint8_t *)dst + (size_t)r * q->rb;
        for (int64_t j = 0; j < per_row; j++) {
            int sc[16], mn[16];
            for (int s = 0; s < q->per; s++) {
                const int64_t k = (r * per_row + j) * q->per + s;
                const sub_grid G = grid_of(q, k, phi[k], q->mins ? psi[k] : 1.0f);
                sc[s] = G.S;
                mn[s] = G.M;
                if (G.a == 0.0f) continue; /* the round-to-nearest codes stay */
                for (int e = 0; e < q->sub; e++) {
                    const int64_t col = j * QB_QK_K + s * q->sub + e, i = r * q->n + col;
                    bool in;
                    qb_grid_set_code(&q->g, row, col, code_of(q, &G, i, q->w[i], v[i], &in) - q->lo);
                }
            }
            header_set(q->type, row + (size_t)j * q->g.gbytes, sc, mn);
        }
    }
}
