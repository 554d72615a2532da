/* rope.c — RoPE angle tables (rope.h). */
#include "rope.h"

#include <math.h>

void qb_rope_tables(const qb_model *m, float theta, bool scaled, int n_ctx, float *cs, float *sn)
{
    const qb_config *c = &m->cfg;
    int half = c->head_dim / 2;
    float ms = scaled ? qb_model_rope_mscale(m) : 1.0f;
    for (int i = 0; i < half; i++) {
        float freq = 1.0f / powf(theta, (float)(2 * i) / (float)c->head_dim);
        if (scaled) freq /= qb_model_rope_divisor(m, i);
        for (int p = 0; p < n_ctx; p++) {
            float val = (float)p * freq;
            cs[(size_t)p * half + i] = cosf(val) * ms;
            sn[(size_t)p * half + i] = sinf(val) * ms;
        }
    }
}
