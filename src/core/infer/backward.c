/* backward.c — the backward of each forward operation (backward.h), written from the
 * derivatives, fp32 storage with double sums where a row is reduced. */
#include "backward.h"
#include "kernels.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* OpenMP only where the work outweighs starting a team (small blocks: learned rounding of
 * tiny models runs these thousands of times) */
#define PAR_MIN 65536

void qb_product_f32(int m, int n, int k, const float *a, size_t ars, size_t acs, const float *b, size_t ldb, float *c,
                    size_t ldc, bool accumulate, bool parallel)
{
    const qb_kernel_table *kt = qb_kernels();
    if (!parallel) {
        kt->gemm_f32(m, n, k, a, ars, acs, b, ldb, c, ldc, accumulate);
        return;
    }
    /* rows in multiples of the kernels' 6-row tiles, columns of their 64- and 16-wide panels;
     * smaller row blocks until each thread has a few */
    int bm = 96, bn = 128;
    const int want = 4 * omp_get_max_threads();
    while (bm > 12 && ((m + bm - 1) / bm) * ((n + bn - 1) / bn) < want) bm /= 2;
    const int nbm = (m + bm - 1) / bm, nbn = (n + bn - 1) / bn;
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (int ib = 0; ib < nbm; ib++)
        for (int jb = 0; jb < nbn; jb++) {
            const int i0 = ib * bm, j0 = jb * bn;
            kt->gemm_f32(m - i0 < bm ? m - i0 : bm, n - j0 < bn ? n - j0 : bn, k, a + (size_t)i0 * ars, ars, acs,
                         b + j0, ldb, c + (size_t)i0 * ldc + j0, ldc, accumulate);
        }
}

void qb_bw_linear(const float *x, const float *w, const float *dy, int T, int n, int m, float *dx, float *dw)
{
    const bool big = (size_t)T * n * m > (PAR_MIN << 5); /* multiply-adds */
    /* dx (T, n) += dy (T, m) · w (m, n) */
    if (dx) qb_product_f32(T, n, m, dy, (size_t)m, 1, w, (size_t)n, dx, (size_t)n, true, big);
    /* dw (m, n) += dyᵀ · x (T, n): dyᵀ read in place (its element (i, t) is dy[t·m + i]) */
    if (dw) qb_product_f32(m, n, T, dy, 1, (size_t)m, x, (size_t)n, dw, (size_t)n, true, big);
}

bool qb_bw_rmsnorm(const float *x, const float *w, const float *dy, int T, int n, float eps, float *dx, float *dw)
{
    /* y_j = w_j x_j r, r = (Σx²/n + eps)^-1/2: ∂r/∂x_k = −r³ x_k / n */
    double *r = malloc((size_t)(T > 0 ? T : 1) * sizeof *r); /* each row's r */
    if (!r) return false;
#pragma omp parallel if ((size_t)T * n > PAR_MIN)
    {
#pragma omp for schedule(static)
        for (int t = 0; t < T; t++) {
            const float *xt = x + (size_t)t * n, *dyt = dy + (size_t)t * n;
            double ss = 0, dot = 0;
            for (int j = 0; j < n; j++) ss += (double)xt[j] * xt[j];
            r[t] = 1.0 / sqrt(ss / n + eps);
            if (!dx) continue;
            for (int j = 0; j < n; j++) dot += (double)dyt[j] * w[j] * xt[j];
            const double c = r[t] * r[t] * r[t] * dot / n;
            float *dxt = dx + (size_t)t * n;
            for (int j = 0; j < n; j++) dxt[j] += (float)(r[t] * dyt[j] * w[j] - c * xt[j]);
        }
        /* dw_j = Σ_t dy_tj x_tj r_t, in order of t, 64 columns to a block */
        if (dw) {
#pragma omp for schedule(static)
            for (int j0 = 0; j0 < n; j0 += 64) {
                const int jn = n - j0 < 64 ? n - j0 : 64;
                double acc[64] = {0};
                for (int t = 0; t < T; t++) {
                    const float *xt = x + (size_t)t * n + j0, *dyt = dy + (size_t)t * n + j0;
                    for (int j = 0; j < jn; j++) acc[j] += (double)dyt[j] * xt[j] * r[t];
                }
                for (int j = 0; j < jn; j++) dw[j0 + j] += (float)acc[j];
            }
        }
    }
    free(r);
    return true;
}

void qb_bw_glu(qb_glu_act act, const float *g, const float *u, const float *dh, size_t n, float *dg, float *du)
{
    enum { CHUNK = 4096 }; /* elements per kernel call */
    const qb_kernel_table *kt = qb_kernels();
    const size_t chunks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t c = 0; c < chunks; c++) {
        const size_t i = c * CHUNK;
        kt->glu_bw(act == QB_GLU_GELU_TANH, n - i < CHUNK ? n - i : CHUNK, g + i, u + i, dh + i, dg ? dg + i : NULL,
                   du ? du + i : NULL);
    }
}

void qb_bw_rope(float *g, int T, int n_heads, int head_dim, const float *cs, const float *sn, qb_rope_layout layout)
{
    const int half = head_dim / 2;
#pragma omp parallel for schedule(static) if ((size_t)T * n_heads * head_dim > PAR_MIN)
    for (int t = 0; t < T; t++) {
        const float *c = cs + (size_t)t * half, *s = sn + (size_t)t * half;
        for (int h = 0; h < n_heads; h++) {
            float *v = g + ((size_t)t * n_heads + h) * head_dim;
            for (int i = 0; i < half; i++) {
                const int a = layout == QB_ROPE_HALF ? i : 2 * i, b = layout == QB_ROPE_HALF ? i + half : 2 * i + 1;
                const float g0 = v[a], g1 = v[b];
                v[a] = g0 * c[i] + g1 * s[i];
                v[b] = -g0 * s[i] + g1 * c[i];
            }
        }
    }
}

/* ---- attention ---------------------------------------------------------------------------
 * Blockwise, as matrix products (kernels' gemm_f32) with the row operations between them
 * (attn_softmax_row, attn_dscore_row). A work unit is a block of ATT_BLOCK query rows of one
 * head (the forward; the backward's first phase: dP, dS, dQ) or of ATT_BLOCK key rows of one
 * KV head (the backward's second phase: dK, dV, summed over the group's heads in order), so
 * each output row has one writer and one order of sums whatever the thread count. A block of
 * rows i0..i1−1 reads keys first_key(i0)..i1−1 (a rectangle; what the mask hides in it is 0
 * in P and dS). Keys and values are read transposed (hd × T per KV head) where they are the
 * product's B matrix along keys. */

#define ATT_BLOCK 24

/* the first key row i attends to */
static int first_key(const qb_attn_shape *a, int i) { return a->window > 0 && i >= a->window ? i - a->window + 1 : 0; }

/* x (T, n_kv·hd) → xt: per KV head a (hd, T) matrix */
static void transpose_heads(const float *x, int T, int n_kv, int hd, float *xt)
{
#pragma omp parallel for schedule(static) if ((size_t)T * n_kv * hd > PAR_MIN)
    for (int kvh = 0; kvh < n_kv; kvh++)
        for (int t = 0; t < T; t++) {
            const float *xr = x + ((size_t)t * n_kv + kvh) * hd;
            float *col = xt + (size_t)kvh * hd * T + t;
            for (int d = 0; d < hd; d++) col[(size_t)d * T] = xr[d];
        }
}

static bool attn_big(const qb_attn_shape *a)
{
    return (size_t)a->T * a->T * a->n_heads * a->head_dim > PAR_MIN;
}

bool qb_attn_forward_with(const qb_kernel_table *kt, const qb_attn_shape *a, const float *q, const float *k,
                          const float *v, float *p, float *out)
{
    const int T = a->T, H = a->n_heads, nkv = a->n_kv_heads, hd = a->head_dim, group = H / nkv;
    const int nb = (T + ATT_BLOCK - 1) / ATT_BLOCK;
    const size_t qst = (size_t)H * hd, kst = (size_t)nkv * hd;
    if (T <= 0) return true;
    float *kt_all = malloc((size_t)nkv * hd * T * sizeof *kt_all);
    if (!kt_all) return false;
    transpose_heads(k, T, nkv, hd, kt_all);
#pragma omp parallel for collapse(2) schedule(dynamic) if (attn_big(a))
    for (int h = 0; h < H; h++)
        for (int b = 0; b < nb; b++) {
            const int i0 = b * ATT_BLOCK, i1 = i0 + ATT_BLOCK < T ? i0 + ATT_BLOCK : T, lo = first_key(a, i0);
            const int kvh = h / group;
            float *pb = p + ((size_t)h * T + i0) * T;
            /* scores of the rectangle, then each row's softmax over the keys it attends to */
            kt->gemm_f32(i1 - i0, i1 - lo, hd, q + (size_t)i0 * qst + (size_t)h * hd, qst, 1,
                         kt_all + (size_t)kvh * hd * T + lo, (size_t)T, pb + lo, (size_t)T, false);
            for (int i = i0; i < i1; i++) {
                float *pi = p + ((size_t)h * T + i) * T;
                const int li = first_key(a, i);
                kt->attn_softmax_row(i - li + 1, pi + li, a->scale, a->softcap);
                memset(pi, 0, (size_t)li * sizeof *pi);
                memset(pi + i + 1, 0, (size_t)(T - i - 1) * sizeof *pi);
            }
            kt->gemm_f32(i1 - i0, hd, i1 - lo, pb + lo, (size_t)T, 1, v + (size_t)lo * kst + (size_t)kvh * hd, kst,
                         out + (size_t)i0 * qst + (size_t)h * hd, qst, false);
        }
    free(kt_all);
    return true;
}

bool qb_attn_forward(const qb_attn_shape *a, const float *q, const float *k, const float *v, float *p, float *out)
{
    return qb_attn_forward_with(qb_kernels(), a, q, k, v, p, out);
}

bool qb_bw_attention_with(const qb_kernel_table *kt, const qb_attn_shape *a, const float *q, const float *k,
                          const float *v, const float *p, const float *dout, float *dq, float *dk, float *dv)
{
    const int T = a->T, H = a->n_heads, nkv = a->n_kv_heads, hd = a->head_dim, group = H / nkv;
    const int nb = (T + ATT_BLOCK - 1) / ATT_BLOCK;
    const size_t qst = (size_t)H * hd, kst = (size_t)nkv * hd, TT = (size_t)T * T;
    const bool capped = a->softcap > 0, need_ds = dq || dk;
    if (T <= 0) return true;
    /* vt: values transposed (dP = dO·Vᵀ); ds: (H, T, T) the scores' gradient, 0 where masked;
     * with a soft-cap, kt_all: keys transposed and per thread a block's dot products again */
    float *vt = NULL, *ds = NULL, *kt_all = NULL, *dots = NULL;
    bool ok = true;
    if (need_ds) {
        ok = (vt = malloc(kst * T * sizeof *vt)) && (ds = malloc((size_t)H * TT * sizeof *ds));
        if (ok && capped)
            ok = (kt_all = malloc(kst * T * sizeof *kt_all)) &&
                 (dots = malloc((size_t)omp_get_max_threads() * ATT_BLOCK * T * sizeof *dots));
    }
    if (!ok) {
        free(vt), free(ds), free(kt_all), free(dots);
        return false;
    }
    if (need_ds) {
        transpose_heads(v, T, nkv, hd, vt);
        if (capped) transpose_heads(k, T, nkv, hd, kt_all);
#pragma omp parallel for collapse(2) schedule(dynamic) if (attn_big(a))
        for (int h = 0; h < H; h++)
            for (int b = 0; b < nb; b++) {
                const int i0 = b * ATT_BLOCK, i1 = i0 + ATT_BLOCK < T ? i0 + ATT_BLOCK : T, lo = first_key(a, i0);
                const int kvh = h / group, w = i1 - lo;
                float *dsb = ds + (size_t)h * TT + (size_t)i0 * T;
                /* dP = dO·Vᵀ over the rectangle, in place of dS */
                kt->gemm_f32(i1 - i0, w, hd, dout + (size_t)i0 * qst + (size_t)h * hd, qst, 1,
                             vt + (size_t)kvh * hd * T + lo, (size_t)T, dsb + lo, (size_t)T, false);
                float *sb = NULL;
                if (capped) {
                    sb = dots + (size_t)omp_get_thread_num() * ATT_BLOCK * T;
                    kt->gemm_f32(i1 - i0, w, hd, q + (size_t)i0 * qst + (size_t)h * hd, qst, 1,
                                 kt_all + (size_t)kvh * hd * T + lo, (size_t)T, sb, (size_t)w, false);
                }
                for (int i = i0; i < i1; i++) {
                    const int li = first_key(a, i);
                    float *dsi = ds + (size_t)h * TT + (size_t)i * T;
                    kt->attn_dscore_row(i - li + 1, p + (size_t)h * TT + (size_t)i * T + li, dsi + li,
                                        sb ? sb + (size_t)(i - i0) * w + (li - lo) : NULL, a->scale, a->softcap, dsi + li);
                    memset(dsi, 0, (size_t)li * sizeof *dsi);
                    memset(dsi + i + 1, 0, (size_t)(T - i - 1) * sizeof *dsi);
                }
                if (dq) /* dQ += dS·K (the scale is in dS) */
                    kt->gemm_f32(i1 - i0, hd, w, dsb + lo, (size_t)T, 1, k + (size_t)lo * kst + (size_t)kvh * hd, kst,
                                 dq + (size_t)i0 * qst + (size_t)h * hd, qst, true);
            }
    }
    if (dk || dv) {
#pragma omp parallel for collapse(2) schedule(dynamic) if (attn_big(a))
        for (int kvh = 0; kvh < nkv; kvh++)
            for (int b = 0; b < nb; b++) {
                /* key rows j0..j1−1; the query rows that attend to any of them */
                const int j0 = b * ATT_BLOCK, j1 = j0 + ATT_BLOCK < T ? j0 + ATT_BLOCK : T;
                const int iend = a->window > 0 && j1 - 1 + a->window < T ? j1 - 1 + a->window : T;
                for (int h = kvh * group; h < (kvh + 1) * group; h++) {
                    const size_t at = (size_t)h * TT + (size_t)j0 * T + j0; /* (i = j0, j = j0) */
                    if (dk) /* dK += dSᵀ·Q */
                        kt->gemm_f32(j1 - j0, hd, iend - j0, ds + at, 1, (size_t)T, q + (size_t)j0 * qst + (size_t)h * hd,
                                     qst, dk + (size_t)j0 * kst + (size_t)kvh * hd, kst, true);
                    if (dv) /* dV += Pᵀ·dO */
                        kt->gemm_f32(j1 - j0, hd, iend - j0, p + at, 1, (size_t)T, dout + (size_t)j0 * qst + (size_t)h * hd,
                                     qst, dv + (size_t)j0 * kst + (size_t)kvh * hd, kst, true);
                }
            }
    }
    free(vt), free(ds), free(kt_all), free(dots);
    return true;
}

bool qb_bw_attention(const qb_attn_shape *a, const float *q, const float *k, const float *v, const float *p,
                     const float *dout, float *dq, float *dk, float *dv)
{
    return qb_bw_attention_with(qb_kernels(), a, q, k, v, p, dout, dq, dk, dv);
}

/* log Σ exp(x_j / tau) over a row, and the softmax of x / tau into out (may be NULL): each
 * exponential taken once, in double, kept (rounded) in out and scaled by the sum's inverse */
static double log_softmax_row(const float *x, int V, float tau, float *out)
{
    float mx = -INFINITY;
    for (int j = 0; j < V; j++)
        if (x[j] > mx) mx = x[j];
    double sum = 0;
    if (out) {
        for (int j = 0; j < V; j++) {
            const double e = exp((double)(x[j] - mx) / tau);
            out[j] = (float)e;
            sum += e;
        }
        const float inv = (float)(1.0 / sum);
        for (int j = 0; j < V; j++) out[j] *= inv;
    } else
        for (int j = 0; j < V; j++) sum += exp((double)(x[j] - mx) / tau);
    return (double)mx / tau + log(sum);
}

double qb_bw_cross_entropy(const float *logits, const int32_t *targets, int T, int V, float *dlogits)
{
    int counted = 0;
    for (int t = 0; t < T; t++) counted += targets[t] >= 0 && targets[t] < V;
    double loss = 0;
#pragma omp parallel for reduction(+ : loss) schedule(static)
    for (int t = 0; t < T; t++) {
        const float *x = logits + (size_t)t * V;
        float *d = dlogits ? dlogits + (size_t)t * V : NULL;
        const bool on = targets[t] >= 0 && targets[t] < V;
        if (!on) {
            if (d) memset(d, 0, (size_t)V * sizeof *d);
            continue;
        }
        const double lse = log_softmax_row(x, V, 1.0f, d);
        loss += lse - x[targets[t]];
        if (d) {
            d[targets[t]] -= 1.0f;
            for (int j = 0; j < V; j++) d[j] /= (float)counted;
        }
    }
    return counted ? loss / counted : 0.0;
}

bool qb_bw_distill_kl(const float *teacher, const float *student, int T, int V, float tau, float *dstudent,
                      double *loss_out)
{
    float *scratch = malloc((size_t)omp_get_max_threads() * 2 * (size_t)V * sizeof *scratch);
    if (!scratch) return false;
    double loss = 0;
#pragma omp parallel reduction(+ : loss)
    {
        float *pt = scratch + (size_t)omp_get_thread_num() * 2 * V, *qs = pt + V;
#pragma omp for schedule(static)
        for (int t = 0; t < T; t++) {
            const float *xt = teacher + (size_t)t * V, *xs = student + (size_t)t * V;
            const double lt = log_softmax_row(xt, V, tau, pt), ls = log_softmax_row(xs, V, tau, qs);
            double kl = 0;
            for (int j = 0; j < V; j++)
                if (pt[j] > 0) kl += pt[j] * (((double)xt[j] / tau - lt) - ((double)xs[j] / tau - ls));
            loss += kl;
            if (dstudent)
                for (int j = 0; j < V; j++) dstudent[(size_t)t * V + j] = tau * (qs[j] - pt[j]) / (float)T;
        }
    }
    free(scratch);
    *loss_out = T ? (double)tau * tau * loss / T : 0.0;
    return true;
}
