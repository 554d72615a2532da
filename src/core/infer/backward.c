/* backward.c — the backward of each forward operation (backward.h), written from the
 * derivatives, fp32 storage with double sums where a row is reduced. */
#include "backward.h"
#include "matmul.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* OpenMP only where the work outweighs starting a team (small blocks: learned rounding of
 * tiny models runs these thousands of times) */
#define PAR_MIN 65536

/* a (r, c) → (c, r), or NULL without memory */
static float *transpose(const float *a, int r, int c)
{
    float *t = malloc((size_t)r * c * sizeof *t);
    if (!t) return NULL;
#pragma omp parallel for schedule(static) if ((size_t)r * c > PAR_MIN)
    for (int j = 0; j < c; j++)
        for (int i = 0; i < r; i++) t[(size_t)j * r + i] = a[(size_t)i * c + j];
    return t;
}

/* y (rows, cols) += x (rows, k) · wᵀ, w (cols, k) row-major f32, through the forward pass's
 * matrix kernels; false without memory (nothing added) */
static bool add_matmul(const float *w, int cols, int k, const float *x, int rows, float *y)
{
    float *tmp = malloc((size_t)rows * cols * sizeof *tmp);
    if (!tmp) return false;
    qb_tensor t = {.n_dims = 2, .ne = {k, cols, 1, 1}, .type = QB_TYPE_F32, .data = w,
                   .nbytes = (size_t)k * cols * sizeof(float)};
    t.fmt = qb_format_ggml(QB_TYPE_F32);
    qb_matmul(&t, x, rows, tmp);
#pragma omp parallel for schedule(static) if ((size_t)rows * cols > PAR_MIN)
    for (size_t i = 0; i < (size_t)rows * cols; i++) y[i] += tmp[i];
    free(tmp);
    return true;
}

void qb_bw_linear(const float *x, const float *w, const float *dy, int T, int n, int m, float *dx, float *dw)
{
    const bool big = (size_t)T * n * m > (PAR_MIN << 5); /* multiply-adds */
    if (big) { /* as the forward's products: dx = dy·(wᵀ)ᵀ, dwᵀ... dw = dyᵀ·(xᵀ)ᵀ */
        bool done_dx = !dx, done_dw = !dw;
        if (dx) {
            float *wt = transpose(w, m, n); /* (n, m) */
            done_dx = wt && add_matmul(wt, n, m, dy, T, dx);
            free(wt);
        }
        if (dw) {
            float *dyt = transpose(dy, T, m), *xt = transpose(x, T, n); /* (m, T), (n, T) */
            done_dw = dyt && xt && add_matmul(xt, n, T, dyt, m, dw);
            free(dyt);
            free(xt);
        }
        if (done_dx) dx = NULL;
        if (done_dw) dw = NULL;
        if (!dx && !dw) return;
        /* short of memory: the loops below need none */
    }
    if (dx) {
#pragma omp parallel for schedule(static) if (big)
        for (int t = 0; t < T; t++) {
            float *dxt = dx + (size_t)t * n;
            const float *dyt = dy + (size_t)t * m;
            for (int i = 0; i < m; i++) {
                const float g = dyt[i];
                if (g == 0.0f) continue;
                const float *wi = w + (size_t)i * n;
#pragma omp simd
                for (int j = 0; j < n; j++) dxt[j] += g * wi[j];
            }
        }
    }
    if (dw) {
#pragma omp parallel for schedule(static) if (big)
        for (int i = 0; i < m; i++) {
            float *dwi = dw + (size_t)i * n;
            for (int t = 0; t < T; t++) {
                const float g = dy[(size_t)t * m + i];
                if (g == 0.0f) continue;
                const float *xt = x + (size_t)t * n;
#pragma omp simd
                for (int j = 0; j < n; j++) dwi[j] += g * xt[j];
            }
        }
    }
}

bool qb_bw_rmsnorm(const float *x, const float *w, const float *dy, int T, int n, float eps, float *dx, float *dw)
{
    /* y_j = w_j x_j r, r = (Σx²/n + eps)^-1/2: ∂r/∂x_k = −r³ x_k / n */
    double *acc = dw ? calloc((size_t)n, sizeof *acc) : NULL;
    if (dw && !acc) return false;
    if (dx) {
#pragma omp parallel for schedule(static) if ((size_t)T * n > PAR_MIN)
        for (int t = 0; t < T; t++) {
            const float *xt = x + (size_t)t * n, *dyt = dy + (size_t)t * n;
            double ss = 0, dot = 0;
            for (int j = 0; j < n; j++) {
                ss += (double)xt[j] * xt[j];
                dot += (double)dyt[j] * w[j] * xt[j];
            }
            const double r = 1.0 / sqrt(ss / n + eps), c = r * r * r * dot / n;
            float *dxt = dx + (size_t)t * n;
            for (int j = 0; j < n; j++) dxt[j] += (float)(r * dyt[j] * w[j] - c * xt[j]);
        }
    }
    if (dw) {
        for (int t = 0; t < T; t++) {
            const float *xt = x + (size_t)t * n, *dyt = dy + (size_t)t * n;
            double ss = 0;
            for (int j = 0; j < n; j++) ss += (double)xt[j] * xt[j];
            const double r = 1.0 / sqrt(ss / n + eps);
            for (int j = 0; j < n; j++) acc[j] += (double)dyt[j] * xt[j] * r;
        }
        for (int j = 0; j < n; j++) dw[j] += (float)acc[j];
    }
    free(acc);
    return true;
}

void qb_bw_glu(qb_glu_act act, const float *g, const float *u, const float *dh, size_t n, float *dg, float *du)
{
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        const float x = g[i];
        float a, da; /* act(x), act'(x) */
        if (act == QB_GLU_GELU_TANH) {
            const float k = 0.7978845608f, th = tanhf(k * (x + 0.044715f * x * x * x));
            a = 0.5f * x * (1.0f + th);
            da = 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * k * (1.0f + 3.0f * 0.044715f * x * x);
        } else {
            const float s = 1.0f / (1.0f + expf(-x));
            a = x * s;
            da = s * (1.0f + x * (1.0f - s));
        }
        if (dg) dg[i] += dh[i] * u[i] * da;
        if (du) du[i] += dh[i] * a;
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

static bool attends(const qb_attn_shape *a, int i, int j)
{
    return j <= i && (a->window <= 0 || i - j < a->window);
}

/* The score of query row i of head h against key row j (capped), as the forward uses it. */
static float score(const qb_attn_shape *a, const float *q, const float *k, int h, int i, int j)
{
    const int hd = a->head_dim, kvh = h / (a->n_heads / a->n_kv_heads);
    const float *qi = q + ((size_t)i * a->n_heads + h) * hd, *kj = k + ((size_t)j * a->n_kv_heads + kvh) * hd;
    float z = 0;
    for (int d = 0; d < hd; d++) z += qi[d] * kj[d];
    z *= a->scale;
    return a->softcap > 0 ? a->softcap * tanhf(z / a->softcap) : z;
}

void qb_attn_forward(const qb_attn_shape *a, const float *q, const float *k, const float *v, float *p, float *out)
{
    const int T = a->T, H = a->n_heads, hd = a->head_dim, group = a->n_heads / a->n_kv_heads;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)T * T * H * hd > PAR_MIN)
    for (int h = 0; h < H; h++)
        for (int i = 0; i < T; i++) {
            float *pi = p + ((size_t)h * T + i) * T;
            float mx = -INFINITY;
            for (int j = 0; j < T; j++) {
                pi[j] = attends(a, i, j) ? score(a, q, k, h, i, j) : -INFINITY;
                if (pi[j] > mx) mx = pi[j];
            }
            double sum = 0;
            for (int j = 0; j < T; j++) {
                pi[j] = attends(a, i, j) ? expf(pi[j] - mx) : 0.0f;
                sum += pi[j];
            }
            float *oi = out + ((size_t)i * H + h) * hd;
            memset(oi, 0, (size_t)hd * sizeof *oi);
            for (int j = 0; j < T; j++) {
                pi[j] = (float)(pi[j] / sum);
                if (pi[j] == 0.0f) continue;
                const float *vj = v + ((size_t)j * a->n_kv_heads + h / group) * hd;
                for (int d = 0; d < hd; d++) oi[d] += pi[j] * vj[d];
            }
        }
}

bool qb_bw_attention(const qb_attn_shape *a, const float *q, const float *k, const float *v, const float *p,
                     const float *dout, float *dq, float *dk, float *dv)
{
    const int T = a->T, H = a->n_heads, hd = a->head_dim, group = a->n_heads / a->n_kv_heads;
    float *scratch = malloc((size_t)omp_get_max_threads() * (size_t)T * sizeof *scratch);
    if (!scratch) return false;
    /* one KV head per iteration: its query heads are the only writers of its dk / dv rows */
#pragma omp parallel if ((size_t)T * T * H * hd > PAR_MIN)
    {
        float *dz = scratch + (size_t)omp_get_thread_num() * T;
#pragma omp for schedule(static)
        for (int kvh = 0; kvh < a->n_kv_heads; kvh++) {
            for (int h = kvh * group; h < (kvh + 1) * group; h++)
                for (int i = 0; i < T; i++) {
                    const float *pi = p + ((size_t)h * T + i) * T, *doi = dout + ((size_t)i * H + h) * hd;
                    /* dp_ij = do_i·v_j; ds_ij = p_ij (dp_ij − Σ_l p_il dp_il) */
                    double row = 0;
                    for (int j = 0; j <= i; j++) {
                        dz[j] = 0;
                        if (pi[j] == 0.0f) continue;
                        const float *vj = v + ((size_t)j * a->n_kv_heads + kvh) * hd;
                        float dp = 0;
                        for (int d = 0; d < hd; d++) dp += doi[d] * vj[d];
                        dz[j] = dp;
                        row += (double)pi[j] * dp;
                        if (dv) {
                            float *dvj = dv + ((size_t)j * a->n_kv_heads + kvh) * hd;
                            for (int d = 0; d < hd; d++) dvj[d] += pi[j] * doi[d];
                        }
                    }
                    const float *qi = q + ((size_t)i * H + h) * hd;
                    float *dqi = dq ? dq + ((size_t)i * H + h) * hd : NULL;
                    for (int j = 0; j <= i; j++) {
                        if (pi[j] == 0.0f) continue;
                        float ds = pi[j] * (float)(dz[j] - row);
                        if (a->softcap > 0) { /* s = c·tanh(z/c): ds/dz = 1 − (s/c)² */
                            const float s = score(a, q, k, h, i, j) / a->softcap;
                            ds *= 1.0f - s * s;
                        }
                        ds *= a->scale;
                        const float *kj = k + ((size_t)j * a->n_kv_heads + kvh) * hd;
                        if (dqi)
                            for (int d = 0; d < hd; d++) dqi[d] += ds * kj[d];
                        if (dk) {
                            float *dkj = dk + ((size_t)j * a->n_kv_heads + kvh) * hd;
                            for (int d = 0; d < hd; d++) dkj[d] += ds * qi[d];
                        }
                    }
                }
        }
    }
    free(scratch);
    return true;
}

/* log Σ exp(x_j / tau) over a row, and the softmax of x / tau into out (may be NULL) */
static double log_softmax_row(const float *x, int V, float tau, float *out)
{
    float mx = -INFINITY;
    for (int j = 0; j < V; j++)
        if (x[j] > mx) mx = x[j];
    double sum = 0;
    for (int j = 0; j < V; j++) sum += exp((double)(x[j] - mx) / tau);
    const double lse = (double)mx / tau + log(sum);
    for (int j = 0; out && j < V; j++) out[j] = (float)exp((double)x[j] / tau - lse);
    return lse;
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
