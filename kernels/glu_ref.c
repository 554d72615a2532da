/* glu_ref.c — scalar reference of the training pass's feed-forward gate (kernels.h glu,
 * glu_bw): act(g)·u with SiLU or GELU-tanh and its derivative, libm's expf / tanhf, one
 * element at a time: the arithmetic the training pass always used. */
#include "kernels.h"

#include <math.h>

#define GELU_K 0.7978845608f
#define GELU_C 0.044715f

void qb_glu_ref(bool gelu, size_t n, const float *g, const float *u, float *h)
{
    for (size_t i = 0; i < n; i++) {
        const float x = g[i];
        const float a = gelu ? 0.5f * x * (1.0f + tanhf(GELU_K * (x + GELU_C * x * x * x))) : x / (1.0f + expf(-x));
        h[i] = a * u[i];
    }
}

void qb_glu_bw_ref(bool gelu, size_t n, const float *g, const float *u, const float *dh, float *dg, float *du)
{
    for (size_t i = 0; i < n; i++) {
        const float x = g[i];
        float a, da; /* act(x), act'(x) */
        if (gelu) {
            const float th = tanhf(GELU_K * (x + GELU_C * x * x * x));
            a = 0.5f * x * (1.0f + th);
            da = 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * GELU_K * (1.0f + 3.0f * GELU_C * x * x);
        } else {
            const float s = 1.0f / (1.0f + expf(-x));
            a = x * s;
            da = s * (1.0f + x * (1.0f - s));
        }
        if (dg) dg[i] += dh[i] * u[i] * da;
        if (du) du[i] += dh[i] * a;
    }
}
