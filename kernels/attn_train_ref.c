/* attn_train_ref.c — scalar references of the training attention's row operations
 * (kernels.h attn_softmax_row, attn_dscore_row): the softmax of one query row's scores,
 * soft-capped or not, and the gradient of its scores from the gradient of its probabilities.
 * The products around them (scores, P·V and the backward's four) are gemm_f32. */
#include "kernels.h"

#include <math.h>

void qb_attn_softmax_row_ref(int n, float *s, float scale, float softcap)
{
    float mx = -INFINITY;
    for (int j = 0; j < n; j++) {
        float z = s[j] * scale;
        if (softcap > 0) z = softcap * tanhf(z / softcap);
        s[j] = z;
        if (z > mx) mx = z;
    }
    double sum = 0;
    for (int j = 0; j < n; j++) {
        s[j] = expf(s[j] - mx);
        sum += s[j];
    }
    for (int j = 0; j < n; j++) s[j] = (float)(s[j] / sum);
}

void qb_attn_dscore_row_ref(int n, const float *p, const float *dp, const float *s, float scale, float softcap,
                            float *ds)
{
    double row = 0; /* Σ_l p_l·dp_l */
    for (int j = 0; j < n; j++) row += (double)p[j] * dp[j];
    for (int j = 0; j < n; j++) {
        float g = p[j] * (float)(dp[j] - row) * scale;
        if (softcap > 0) { /* d(c·tanh(z/c))/dz = 1 − tanh²(z/c) */
            const float t = tanhf(s[j] * scale / softcap);
            g *= 1.0f - t * t;
        }
        ds[j] = g;
    }
}
