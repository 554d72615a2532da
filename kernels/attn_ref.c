/* attn_ref.c — one query head's attention over an f32 key/value cache (the spec of the
 * kernels' attn_f32): scores q·k_j · scale for j < len, softmax with the maximum subtracted,
 * and the weighted sum of the value rows, in exactly the order the forward pass always used
 * (scores one key at a time, expf, sum in position order, then out += (a_j / sum) · v_j). */
#include "kernels.h"

#include <math.h>

void qb_attn_f32_ref(int hd, int len, const float *q, const float *k, size_t kst, const float *v, size_t vst,
                     float scale, float *att, float *out)
{
    float mx = -INFINITY;
    for (int j = 0; j < len; j++) {
        const float sc = qb_dot_f32_ref(hd, q, k + (size_t)j * kst) * scale;
        att[j] = sc;
        if (sc > mx) mx = sc;
    }
    float sum = 0;
    for (int j = 0; j < len; j++) {
        att[j] = expf(att[j] - mx);
        sum += att[j];
    }
    const float inv = 1.0f / sum;
    for (int i = 0; i < hd; i++) out[i] = 0.0f;
    for (int j = 0; j < len; j++) {
        const float a = att[j] * inv;
        const float *vr = v + (size_t)j * vst;
        for (int i = 0; i < hd; i++) out[i] += a * vr[i];
    }
}
