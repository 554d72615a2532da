/* test-backward.c — every backward of backward.h against central finite differences of an
 * independent forward written here in double precision (not the library's), on small shapes
 * with awkward sizes: linear, RMSNorm (dx and dw), the SiLU and GELU-tanh gates, RoPE in both
 * pair layouts, grouped-query causal attention (plain, soft-capped, sliding window; the
 * library's forward against this one too), cross-entropy with an ignored target, and the
 * distillation KL at two temperatures. For an op y = f(θ) the loss is L = Σ r ⊙ y with a fixed
 * random r, so the analytic gradient is the backward of dy = r; it must agree with
 * (L(θ + h) − L(θ − h)) / 2h to 1e-4 relative (‖g − g_fd‖ / ‖g_fd‖). The attention also at the
 * sizes of real heads, across its blocks: against its derivatives written out in double, every
 * instruction set's kernels against the scalar ones, and the same bits at any thread count. */
#include "testutil.h"
#include "core/infer/backward.h"

#include <math.h>
#include <omp.h>

#define TOL 1e-4

static uint64_t seed = 0x5eed;

static double rnd(void) /* uniform in [-1, 1) */
{
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(seed >> 11) / 4503599627370496.0 - 1.0;
}

static float *rand_vec(size_t n, double scale)
{
    float *v = malloc(n * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++) v[i] = (float)(scale * rnd());
    return v;
}

/* A forward in double of parameters theta (n floats) given a context, returning Σ r ⊙ y. */
typedef double (*loss_fn)(const float *theta, const void *ctx);

/* Central differences of f at theta over all n entries against the analytic gradient g. */
static void check_grad(const char *what, loss_fn f, float *theta, size_t n, const void *ctx, const float *g)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        const float keep = theta[i];
        const double h = 1e-3 * fmax(1.0, fabs((double)keep));
        theta[i] = (float)(keep + h);
        const double hp = (double)theta[i] - keep; /* the step as stored */
        const double lp = f(theta, ctx);
        theta[i] = (float)(keep - h);
        const double hm = keep - (double)theta[i];
        const double lm = f(theta, ctx);
        theta[i] = keep;
        const double fd = (lp - lm) / (hp + hm);
        num += (g[i] - fd) * (g[i] - fd);
        den += fd * fd;
    }
    const double rel = sqrt(num / (den > 0 ? den : 1));
    print_message("%-36s relative error %.2e over %zu values\n", what, rel, n);
    if (!(rel < TOL)) fail_msg("%s: gradient off by %.3e (relative)", what, rel);
}

/* ---- linear ----------------------------------------------------------------------------- */

typedef struct {
    const float *x, *w, *r;
    int T, n, m;
} lin_ctx;

static double lin_loss(const lin_ctx *c, const float *x, const float *w)
{
    double L = 0;
    for (int t = 0; t < c->T; t++)
        for (int i = 0; i < c->m; i++) {
            double y = 0;
            for (int j = 0; j < c->n; j++) y += (double)x[t * c->n + j] * w[i * c->n + j];
            L += c->r[t * c->m + i] * y;
        }
    return L;
}
static double lin_dx(const float *x, const void *p) { return lin_loss(p, x, ((const lin_ctx *)p)->w); }
static double lin_dw(const float *w, const void *p) { return lin_loss(p, ((const lin_ctx *)p)->x, w); }

static void test_linear(void **state)
{
    (void)state;
    const int T = 5, n = 13, m = 7;
    float *x = rand_vec((size_t)T * n, 1), *w = rand_vec((size_t)m * n, 0.5), *r = rand_vec((size_t)T * m, 1);
    float *dx = calloc((size_t)T * n, sizeof *dx), *dw = calloc((size_t)m * n, sizeof *dw);
    qb_bw_linear(x, w, r, T, n, m, dx, dw);
    lin_ctx c = {x, w, r, T, n, m};
    check_grad("linear dx", lin_dx, x, (size_t)T * n, &c, dx);
    check_grad("linear dw", lin_dw, w, (size_t)m * n, &c, dw);
    /* gradients add to what the buffers hold */
    qb_bw_linear(x, w, r, T, n, m, dx, NULL);
    float *dx1 = calloc((size_t)T * n, sizeof *dx1);
    qb_bw_linear(x, w, r, T, n, m, dx1, NULL);
    for (int i = 0; i < T * n; i++) assert_float_equal(dx[i], 2 * dx1[i], 1e-5f * (1 + fabsf(dx[i])));
    free(x), free(w), free(r), free(dx), free(dw), free(dx1);
}

/* Products large enough for the matrix kernels (dx = dy·W, dw = dyᵀ·x through qb_matmul)
 * against the definition in double. */
static void test_linear_large(void **state)
{
    (void)state;
    const int T = 37, n = 301, m = 203;
    float *x = rand_vec((size_t)T * n, 1), *w = rand_vec((size_t)m * n, 0.5), *r = rand_vec((size_t)T * m, 1);
    float *dx = rand_vec((size_t)T * n, 1), *dw = rand_vec((size_t)m * n, 1);
    float *dx0 = malloc(sizeof(float) * T * n), *dw0 = malloc(sizeof(float) * m * n);
    memcpy(dx0, dx, sizeof(float) * T * n);
    memcpy(dw0, dw, sizeof(float) * m * n);
    qb_bw_linear(x, w, r, T, n, m, dx, dw);
    double num = 0, den = 0;
    for (int t = 0; t < T; t++)
        for (int j = 0; j < n; j++) {
            double want = dx0[t * n + j];
            for (int i = 0; i < m; i++) want += (double)r[t * m + i] * w[i * n + j];
            num += (dx[t * n + j] - want) * (dx[t * n + j] - want);
            den += want * want;
        }
    print_message("large linear dx (matrix kernels)     relative error %.2e\n", sqrt(num / den));
    assert_true(sqrt(num / den) < 1e-5);
    num = den = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double want = dw0[i * n + j];
            for (int t = 0; t < T; t++) want += (double)r[t * m + i] * x[t * n + j];
            num += (dw[i * n + j] - want) * (dw[i * n + j] - want);
            den += want * want;
        }
    print_message("large linear dw (matrix kernels)     relative error %.2e\n", sqrt(num / den));
    assert_true(sqrt(num / den) < 1e-5);
    free(x), free(w), free(r), free(dx), free(dw), free(dx0), free(dw0);
}

/* ---- RMSNorm ------------------------------------------------------------------------------ */

typedef struct {
    const float *x, *w, *r;
    int T, n;
    float eps;
} rms_ctx;

static double rms_loss(const rms_ctx *c, const float *x, const float *w)
{
    double L = 0;
    for (int t = 0; t < c->T; t++) {
        double ss = 0;
        for (int j = 0; j < c->n; j++) ss += (double)x[t * c->n + j] * x[t * c->n + j];
        const double s = 1.0 / sqrt(ss / c->n + c->eps);
        for (int j = 0; j < c->n; j++) L += c->r[t * c->n + j] * (double)w[j] * x[t * c->n + j] * s;
    }
    return L;
}
static double rms_dx(const float *x, const void *p) { return rms_loss(p, x, ((const rms_ctx *)p)->w); }
static double rms_dw(const float *w, const void *p) { return rms_loss(p, ((const rms_ctx *)p)->x, w); }

static void test_rmsnorm(void **state)
{
    (void)state;
    static const int shapes[2][2] = {{4, 19}, {3, 150}}; /* the second: dw in blocks of 64 columns */
    for (int s = 0; s < 2; s++) {
        const int T = shapes[s][0], n = shapes[s][1];
        float *x = rand_vec((size_t)T * n, 2), *w = rand_vec((size_t)n, 1), *r = rand_vec((size_t)T * n, 1);
        float *dx = calloc((size_t)T * n, sizeof *dx), *dw = calloc((size_t)n, sizeof *dw);
        for (int j = 0; j < n; j++) w[j] += 1.0f;
        assert_true(qb_bw_rmsnorm(x, w, r, T, n, 1e-5f, dx, dw));
        rms_ctx c = {x, w, r, T, n, 1e-5f};
        char what[64];
        snprintf(what, sizeof what, "rmsnorm dx (%d x %d)", T, n);
        check_grad(what, rms_dx, x, (size_t)T * n, &c, dx);
        snprintf(what, sizeof what, "rmsnorm dw (%d x %d)", T, n);
        check_grad(what, rms_dw, w, (size_t)n, &c, dw);
        free(x), free(w), free(r), free(dx), free(dw);
    }
}

/* ---- gated FFN activation ---------------------------------------------------------------- */

typedef struct {
    const float *g, *u, *r;
    size_t n;
    qb_glu_act act;
} glu_ctx;

static double act_of(qb_glu_act act, double x)
{
    if (act == QB_GLU_GELU_TANH) return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
    return x / (1 + exp(-x));
}

static double glu_loss(const glu_ctx *c, const float *g, const float *u)
{
    double L = 0;
    for (size_t i = 0; i < c->n; i++) L += c->r[i] * act_of(c->act, g[i]) * u[i];
    return L;
}
static double glu_dg(const float *g, const void *p) { return glu_loss(p, g, ((const glu_ctx *)p)->u); }
static double glu_du(const float *u, const void *p) { return glu_loss(p, ((const glu_ctx *)p)->g, u); }

static void test_glu(void **state)
{
    (void)state;
    const size_t n = 37;
    const qb_glu_act acts[2] = {QB_GLU_SILU, QB_GLU_GELU_TANH};
    for (int a = 0; a < 2; a++) {
        float *g = rand_vec(n, 4), *u = rand_vec(n, 1), *r = rand_vec(n, 1);
        float *dg = calloc(n, sizeof *dg), *du = calloc(n, sizeof *du);
        qb_bw_glu(acts[a], g, u, r, n, dg, du);
        glu_ctx c = {g, u, r, n, acts[a]};
        check_grad(a ? "gelu-tanh gate dg" : "silu gate dg", glu_dg, g, n, &c, dg);
        check_grad(a ? "gelu-tanh gate du" : "silu gate du", glu_du, u, n, &c, du);
        free(g), free(u), free(r), free(dg), free(du);
    }
}

/* ---- RoPE -------------------------------------------------------------------------------- */

typedef struct {
    const float *cs, *sn, *r;
    int T, H, hd;
    qb_rope_layout layout;
} rope_ctx;

static double rope_loss(const float *x, const void *p)
{
    const rope_ctx *c = p;
    const int half = c->hd / 2;
    double L = 0;
    for (int t = 0; t < c->T; t++)
        for (int h = 0; h < c->H; h++) {
            const float *v = x + ((size_t)t * c->H + h) * c->hd;
            const float *r = c->r + ((size_t)t * c->H + h) * c->hd;
            for (int i = 0; i < half; i++) {
                const int a = c->layout == QB_ROPE_HALF ? i : 2 * i, b = c->layout == QB_ROPE_HALF ? i + half : 2 * i + 1;
                const double co = c->cs[t * half + i], si = c->sn[t * half + i];
                L += r[a] * (v[a] * co - v[b] * si) + r[b] * (v[a] * si + v[b] * co);
            }
        }
    return L;
}

static void test_rope(void **state)
{
    (void)state;
    const int T = 3, H = 2, hd = 10, half = hd / 2;
    for (int layout = 0; layout < 2; layout++) {
        float *cs = malloc(sizeof(float) * T * half), *sn = malloc(sizeof(float) * T * half);
        for (int i = 0; i < T * half; i++) {
            const double ang = 3.0 * rnd();
            cs[i] = (float)cos(ang);
            sn[i] = (float)sin(ang);
        }
        float *x = rand_vec((size_t)T * H * hd, 1), *r = rand_vec((size_t)T * H * hd, 1);
        float *g = malloc(sizeof(float) * T * H * hd);
        memcpy(g, r, sizeof(float) * T * H * hd);
        qb_bw_rope(g, T, H, hd, cs, sn, (qb_rope_layout)layout);
        rope_ctx c = {cs, sn, r, T, H, hd, (qb_rope_layout)layout};
        check_grad(layout ? "rope (rotate-half pairs)" : "rope (interleaved pairs)", rope_loss, x, (size_t)T * H * hd,
                   &c, g);
        free(cs), free(sn), free(x), free(r), free(g);
    }
}

/* ---- attention --------------------------------------------------------------------------- */

typedef struct {
    qb_attn_shape a;
    const float *q, *k, *v, *r;
} attn_ctx;

/* out (T, H·hd) in double, written from the definition */
static void attn_ref(const qb_attn_shape *a, const float *q, const float *k, const float *v, double *out)
{
    const int T = a->T, H = a->n_heads, hd = a->head_dim, group = H / a->n_kv_heads;
    double *p = malloc(sizeof(double) * T);
    for (int h = 0; h < H; h++)
        for (int i = 0; i < T; i++) {
            double mx = -INFINITY, sum = 0;
            for (int j = 0; j < T; j++) {
                bool on = j <= i && (a->window <= 0 || i - j < a->window);
                double z = 0;
                for (int d = 0; d < hd; d++) z += (double)q[(i * H + h) * hd + d] * k[(j * a->n_kv_heads + h / group) * hd + d];
                z *= a->scale;
                if (a->softcap > 0) z = a->softcap * tanh(z / a->softcap);
                p[j] = on ? z : -INFINITY;
                if (p[j] > mx) mx = p[j];
            }
            for (int j = 0; j < T; j++) sum += p[j] = p[j] == -INFINITY ? 0 : exp(p[j] - mx);
            for (int d = 0; d < hd; d++) {
                double o = 0;
                for (int j = 0; j < T; j++) o += p[j] / sum * v[(j * a->n_kv_heads + h / group) * hd + d];
                out[(i * H + h) * hd + d] = o;
            }
        }
    free(p);
}

static double attn_loss(const attn_ctx *c, const float *q, const float *k, const float *v)
{
    const size_t n = (size_t)c->a.T * c->a.n_heads * c->a.head_dim;
    double *out = malloc(sizeof(double) * n), L = 0;
    attn_ref(&c->a, q, k, v, out);
    for (size_t i = 0; i < n; i++) L += c->r[i] * out[i];
    free(out);
    return L;
}
static double attn_dq(const float *q, const void *p)
{
    const attn_ctx *c = p;
    return attn_loss(c, q, c->k, c->v);
}
static double attn_dk(const float *k, const void *p)
{
    const attn_ctx *c = p;
    return attn_loss(c, c->q, k, c->v);
}
static double attn_dv(const float *v, const void *p)
{
    const attn_ctx *c = p;
    return attn_loss(c, c->q, c->k, v);
}

static void test_attention(void **state)
{
    (void)state;
    const qb_attn_shape shapes[3] = {
        {.T = 6, .n_heads = 4, .n_kv_heads = 2, .head_dim = 6, .scale = 0.4f},
        {.T = 7, .n_heads = 2, .n_kv_heads = 1, .head_dim = 5, .scale = 0.5f, .softcap = 1.5f},
        {.T = 9, .n_heads = 3, .n_kv_heads = 3, .head_dim = 4, .scale = 0.5f, .window = 3},
    };
    const char *names[3] = {"attention GQA 4/2", "attention soft-capped", "attention window 3"};
    for (int s = 0; s < 3; s++) {
        const qb_attn_shape *a = &shapes[s];
        const size_t nq = (size_t)a->T * a->n_heads * a->head_dim, nk = (size_t)a->T * a->n_kv_heads * a->head_dim;
        float *q = rand_vec(nq, 1.5), *k = rand_vec(nk, 1.5), *v = rand_vec(nk, 1), *r = rand_vec(nq, 1);
        float *p = malloc(sizeof(float) * a->n_heads * a->T * a->T), *out = malloc(sizeof(float) * nq);
        double *ref = malloc(sizeof(double) * nq);
        assert_true(qb_attn_forward(a, q, k, v, p, out));
        attn_ref(a, q, k, v, ref);
        for (size_t i = 0; i < nq; i++)
            if (fabs(out[i] - ref[i]) > 1e-5 * (1 + fabs(ref[i]))) fail_msg("%s forward [%zu]: %g vs %g", names[s], i, out[i], ref[i]);
        float *dq = calloc(nq, sizeof *dq), *dk = calloc(nk, sizeof *dk), *dv = calloc(nk, sizeof *dv);
        assert_true(qb_bw_attention(a, q, k, v, p, r, dq, dk, dv));
        attn_ctx c = {*a, q, k, v, r};
        char what[64];
        snprintf(what, sizeof what, "%s dq", names[s]);
        check_grad(what, attn_dq, q, nq, &c, dq);
        snprintf(what, sizeof what, "%s dk", names[s]);
        check_grad(what, attn_dk, k, nk, &c, dk);
        snprintf(what, sizeof what, "%s dv", names[s]);
        check_grad(what, attn_dv, v, nk, &c, dv);
        free(q), free(k), free(v), free(r), free(p), free(out), free(ref), free(dq), free(dk), free(dv);
    }
}

/* The attention's forward and gradients in double from the definition (not by differences:
 * fast enough for the sizes below): out (T, H·hd), dq, dk, dv for the output gradient r. */
static void attn_grads_double(const qb_attn_shape *a, const float *q, const float *k, const float *v, const float *r,
                              double *out, double *dq, double *dk, double *dv)
{
    const int T = a->T, H = a->n_heads, nkv = a->n_kv_heads, hd = a->head_dim, group = H / nkv;
    double *z = malloc(sizeof(double) * T), *pr = malloc(sizeof(double) * T), *dp = malloc(sizeof(double) * T);
    memset(dq, 0, sizeof(double) * T * H * hd);
    memset(dk, 0, sizeof(double) * T * nkv * hd);
    memset(dv, 0, sizeof(double) * T * nkv * hd);
    for (int h = 0; h < H; h++)
        for (int i = 0; i < T; i++) {
            const float *qi = q + ((size_t)i * H + h) * hd, *ri = r + ((size_t)i * H + h) * hd;
            double mx = -INFINITY, sum = 0, row = 0;
            for (int j = 0; j < T; j++) {
                const float *kj = k + ((size_t)j * nkv + h / group) * hd;
                double d = 0;
                for (int e = 0; e < hd; e++) d += (double)qi[e] * kj[e];
                z[j] = d * a->scale;
                const double zc = a->softcap > 0 ? a->softcap * tanh(z[j] / a->softcap) : z[j];
                pr[j] = j <= i && (a->window <= 0 || i - j < a->window) ? zc : -INFINITY;
                mx = fmax(mx, pr[j]);
            }
            for (int j = 0; j < T; j++) sum += pr[j] = pr[j] == -INFINITY ? 0 : exp(pr[j] - mx);
            for (int e = 0; e < hd; e++) out[((size_t)i * H + h) * hd + e] = 0;
            for (int j = 0; j < T; j++) {
                pr[j] /= sum;
                const float *vj = v + ((size_t)j * nkv + h / group) * hd;
                double d = 0;
                for (int e = 0; e < hd; e++) {
                    out[((size_t)i * H + h) * hd + e] += pr[j] * vj[e];
                    d += (double)ri[e] * vj[e];
                }
                dp[j] = d;
                row += pr[j] * d;
            }
            for (int j = 0; j < T; j++) {
                if (pr[j] == 0) continue;
                double dz = pr[j] * (dp[j] - row) * a->scale;
                if (a->softcap > 0) dz *= 1 - tanh(z[j] / a->softcap) * tanh(z[j] / a->softcap);
                const size_t kr = ((size_t)j * nkv + h / group) * hd;
                for (int e = 0; e < hd; e++) {
                    dq[((size_t)i * H + h) * hd + e] += dz * k[kr + e];
                    dk[kr + e] += dz * qi[e];
                    dv[kr + e] += pr[j] * ri[e];
                }
            }
        }
    free(z), free(pr), free(dp);
}

/* ‖got − want‖ / ‖want‖ over n values */
static double rel_err_f(const float *got, const float *want, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) num += ((double)got[i] - want[i]) * ((double)got[i] - want[i]), den += (double)want[i] * want[i];
    return sqrt(num / (den > 0 ? den : 1));
}
static double rel_err_d(const float *got, const double *want, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) num += (got[i] - want[i]) * (got[i] - want[i]), den += want[i] * want[i];
    return sqrt(num / (den > 0 ? den : 1));
}

/* The blockwise attention (blocks of 24 rows) at the sizes of real heads: the scalar table's
 * forward and gradients against the double ones above, every SIMD table's against the scalar
 * table's, and the dispatched table's bit for bit the same with 1, 2 and 3 threads. */
static void test_attention_blocks(void **state)
{
    (void)state;
    static const int hds[] = {8, 16, 32, 64, 80, 128};
    static const int Ts[] = {1, 2, 5, 23, 24, 25, 48, 49, 67};
    static const char *isas[] = {"ref", "avx2", "avx512", "avx512vnni"};
    const int nhd = (int)(sizeof hds / sizeof *hds), nT = (int)(sizeof Ts / sizeof *Ts);
    int checked = 0;
    for (int hi = 0; hi < nhd; hi++)
        for (int ti = 0; ti < nT; ti++)
            for (int variant = 0; variant < 4; variant++) {
                const int hd = hds[hi], T = Ts[ti];
                /* GQA 4/2 plain; soft-capped 2/1; window 5 (3/3); window 30 and soft-capped (4/1) */
                static const int heads[4][2] = {{4, 2}, {2, 1}, {3, 3}, {4, 1}};
                const qb_attn_shape a = {.T = T, .n_heads = heads[variant][0], .n_kv_heads = heads[variant][1],
                                         .head_dim = hd, .scale = 1.0f / sqrtf((float)hd),
                                         .softcap = variant == 1 ? 2.0f : variant == 3 ? 4.0f : 0.0f,
                                         .window = variant == 2 ? 5 : variant == 3 ? 30 : 0};
                const size_t nq = (size_t)T * a.n_heads * hd, nk = (size_t)T * a.n_kv_heads * hd;
                const size_t np = (size_t)a.n_heads * T * T;
                float *q = rand_vec(nq, 1.5), *k = rand_vec(nk, 1.5), *v = rand_vec(nk, 1), *r = rand_vec(nq, 1);
                double *out_d = malloc(sizeof(double) * nq), *dq_d = malloc(sizeof(double) * nq);
                double *dk_d = malloc(sizeof(double) * nk), *dv_d = malloc(sizeof(double) * nk);
                attn_grads_double(&a, q, k, v, r, out_d, dq_d, dk_d, dv_d);
                float *res[4][5]; /* per table: p, out, dq, dk, dv */
                const size_t sizes[5] = {np, nq, nq, nk, nk};
                for (int t = 0; t < 4; t++) {
                    const qb_kernel_table *kt = qb_kernels_for(isas[t]);
                    if (!kt) {
                        res[t][0] = NULL;
                        continue;
                    }
                    for (int b = 0; b < 5; b++) res[t][b] = b < 2 ? malloc(sizeof(float) * sizes[b]) : calloc(sizes[b], sizeof(float));
                    assert_true(qb_attn_forward_with(kt, &a, q, k, v, res[t][0], res[t][1]));
                    assert_true(qb_bw_attention_with(kt, &a, q, k, v, res[t][0], r, res[t][2], res[t][3], res[t][4]));
                }
                const char *names[5] = {"p", "out", "dq", "dk", "dv"};
                const double *exact[5] = {NULL, out_d, dq_d, dk_d, dv_d};
                for (int b = 1; b < 5; b++) {
                    const double e = rel_err_d(res[0][b], exact[b], sizes[b]);
                    if (!(e < 2e-6))
                        fail_msg("ref attention hd=%d T=%d variant %d %s: %.3e from double", hd, T, variant, names[b], e);
                }
                for (int t = 1; t < 4; t++) {
                    if (!res[t][0]) continue;
                    for (int b = 0; b < 5; b++) {
                        const double e = rel_err_f(res[t][b], res[0][b], sizes[b]);
                        if (!(e < 2e-6))
                            fail_msg("%s attention hd=%d T=%d variant %d %s: %.3e from the reference", isas[t], hd, T,
                                     variant, names[b], e);
                    }
                    checked++;
                }
                /* thread counts: the dispatched table, bit for bit */
                float *again[5];
                for (int b = 0; b < 5; b++) again[b] = malloc(sizeof(float) * sizes[b]);
                float *first[5] = {NULL};
                const int max_threads = omp_get_max_threads();
                for (int threads = 1; threads <= 3; threads++) {
                    omp_set_num_threads(threads);
                    for (int b = 2; b < 5; b++) memset(again[b], 0, sizeof(float) * sizes[b]);
                    assert_true(qb_attn_forward(&a, q, k, v, again[0], again[1]));
                    assert_true(qb_bw_attention(&a, q, k, v, again[0], r, again[2], again[3], again[4]));
                    for (int b = 0; b < 5; b++) {
                        if (threads == 1) {
                            first[b] = malloc(sizeof(float) * sizes[b]);
                            memcpy(first[b], again[b], sizeof(float) * sizes[b]);
                        } else if (memcmp(first[b], again[b], sizeof(float) * sizes[b]) != 0)
                            fail_msg("attention hd=%d T=%d variant %d %s: %d threads differ from 1", hd, T, variant,
                                     names[b], threads);
                    }
                }
                omp_set_num_threads(max_threads);
                for (int b = 0; b < 5; b++) free(again[b]), free(first[b]);
                for (int t = 0; t < 4; t++)
                    for (int b = 0; res[t][0] && b < 5; b++) free(res[t][b]);
                free(q), free(k), free(v), free(r), free(out_d), free(dq_d), free(dk_d), free(dv_d);
            }
    print_message("blockwise attention: %d SIMD runs matched the reference\n", checked);
}

/* ---- losses ------------------------------------------------------------------------------ */

typedef struct {
    const int32_t *targets;
    const float *teacher;
    int T, V;
    float tau;
} loss_ctx;

static double lse(const float *x, int V, double tau)
{
    double mx = -INFINITY, s = 0;
    for (int j = 0; j < V; j++) mx = fmax(mx, x[j] / tau);
    for (int j = 0; j < V; j++) s += exp(x[j] / tau - mx);
    return mx + log(s);
}

static double ce_loss(const float *logits, const void *p)
{
    const loss_ctx *c = p;
    double L = 0;
    int counted = 0;
    for (int t = 0; t < c->T; t++) {
        if (c->targets[t] < 0) continue;
        L += lse(logits + t * c->V, c->V, 1) - logits[t * c->V + c->targets[t]];
        counted++;
    }
    return L / counted;
}

static double kl_loss(const float *student, const void *p)
{
    const loss_ctx *c = p;
    double L = 0;
    for (int t = 0; t < c->T; t++) {
        const float *xt = c->teacher + t * c->V, *xs = student + t * c->V;
        const double lt = lse(xt, c->V, c->tau), ls = lse(xs, c->V, c->tau);
        for (int j = 0; j < c->V; j++) {
            const double lp = xt[j] / c->tau - lt;
            L += exp(lp) * (lp - (xs[j] / c->tau - ls));
        }
    }
    return (double)c->tau * c->tau * L / c->T;
}

static void test_losses(void **state)
{
    (void)state;
    const int T = 5, V = 23;
    float *logits = rand_vec((size_t)T * V, 4), *teacher = rand_vec((size_t)T * V, 4);
    float *d = malloc(sizeof(float) * T * V);
    const int32_t targets[5] = {3, 22, -1, 0, 7};
    loss_ctx c = {targets, teacher, T, V, 1};
    const double L = qb_bw_cross_entropy(logits, targets, T, V, d);
    assert_true(fabs(L - ce_loss(logits, &c)) < 1e-6 * fabs(L));
    for (int j = 0; j < V; j++) assert_true(d[2 * V + j] == 0.0f); /* the ignored row */
    check_grad("cross-entropy dlogits", ce_loss, logits, (size_t)T * V, &c, d);
    for (int k = 0; k < 2; k++) {
        c.tau = k ? 2.5f : 1.0f;
        double kl;
        assert_true(qb_bw_distill_kl(teacher, logits, T, V, c.tau, d, &kl));
        assert_true(fabs(kl - kl_loss(logits, &c)) < 1e-6 * fabs(kl) + 1e-9);
        check_grad(k ? "distillation KL, tau 2.5" : "distillation KL, tau 1", kl_loss, logits, (size_t)T * V, &c, d);
    }
    /* the KL of a model to itself is 0 with a zero gradient */
    double kl;
    assert_true(qb_bw_distill_kl(teacher, teacher, T, V, 1.0f, d, &kl));
    assert_true(fabs(kl) < 1e-9);
    for (int i = 0; i < T * V; i++) assert_true(fabsf(d[i]) < 1e-7f);
    free(logits), free(teacher), free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear),    cmocka_unit_test(test_linear_large), cmocka_unit_test(test_rmsnorm), cmocka_unit_test(test_glu),
        cmocka_unit_test(test_rope),      cmocka_unit_test(test_attention), cmocka_unit_test(test_attention_blocks),
        cmocka_unit_test(test_losses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
