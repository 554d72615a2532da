/* optim.c — AdamW, the warm-up + cosine schedule and global-norm clipping (optim.h). */
#include "optim.h"

#include <math.h>
#include <stdbool.h>

float qb_lr_at(const qb_adamw_cfg *c, int s)
{
    if (s < c->warmup) return c->lr * (float)(s + 1) / (float)c->warmup;
    const double lo = (double)c->lr * c->min_lr_ratio;
    const int span = c->steps - c->warmup;
    double t = span > 0 ? (double)(s - c->warmup) / span : 1.0;
    if (t > 1) t = 1;
    return (float)(lo + ((double)c->lr - lo) * 0.5 * (1.0 + cos(M_PI * t)));
}

void qb_adamw_update(const qb_adamw_cfg *c, float lr, int t, bool decay, float *p, const float *g, float *m, float *v,
                     size_t n)
{
    /* torch.optim.AdamW (single-tensor path): the scalars are Python doubles, used by the
       float kernels as floats */
    const float shrink = (float)(1.0 - (double)lr * c->weight_decay);
    const double bc1 = 1.0 - pow(c->beta1, t), bc2 = 1.0 - pow(c->beta2, t);
    const float step = (float)((double)lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    const float b1 = c->beta1, b2 = c->beta2, a1 = (float)(1.0 - c->beta1), a2 = (float)(1.0 - c->beta2);
    const float eps = c->eps;
#pragma omp parallel for schedule(static) if (n > 262144)
    for (size_t i = 0; i < n; i++) {
        if (decay) p[i] *= shrink;
        m[i] = m[i] * b1 + a1 * g[i];
        v[i] = v[i] * b2 + a2 * g[i] * g[i];
        const float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] += -step * (m[i] / denom);
    }
}

double qb_grad_norm(float *const *g, const size_t *n, int k)
{
    double total = 0;
    for (int i = 0; i < k; i++) {
        double s = 0; /* one thread: the sum's order, and so a resumed run, is always the same */
        for (size_t j = 0; j < n[i]; j++) s += (double)g[i][j] * g[i][j];
        const float norm_i = (float)sqrt(s); /* each array's norm, as a float tensor holds it */
        total += (double)norm_i * norm_i;
    }
    return sqrt(total);
}

void qb_grad_clip(float *const *g, const size_t *n, int k, double norm, float max_norm)
{
    float coef = (float)(max_norm / (norm + 1e-6));
    if (coef >= 1.0f) coef = 1.0f;
    for (int i = 0; i < k; i++)
        for (size_t j = 0; j < n[i]; j++) g[i][j] *= coef;
}
