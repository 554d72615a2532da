/* optim.h — what the training methods step their parameters with: AdamW (Loshchilov & Hutter,
 * decoupled weight decay) in the arithmetic of PyTorch's torch.optim.AdamW, a linear warm-up
 * followed by a cosine decay to a floor, and clipping of the global gradient norm as
 * torch.nn.utils.clip_grad_norm_ does it, so a run here follows a PyTorch run of the same loss
 * step for step (tests/unit/test-finetune.c checks it against PyTorch). */
#ifndef QB_OPTIM_H
#define QB_OPTIM_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    float lr;           /* peak learning rate */
    float min_lr_ratio; /* the cosine's floor as a fraction of lr (0..1) */
    int warmup;         /* steps of linear warm-up: step s < warmup runs at lr·(s+1)/warmup */
    int steps;          /* total steps; the cosine runs from step warmup to step steps */
    float beta1, beta2, eps;
    float weight_decay; /* decoupled: p ← p·(1 − lr·wd) before the Adam step (arrays that decay) */
} qb_adamw_cfg;

/* The learning rate of step s (0-based): warm-up, then lr_min + (lr − lr_min)·(1 + cos(π·t))/2
 * with t = (s − warmup)/(steps − warmup), lr_min = lr·min_lr_ratio. */
float qb_lr_at(const qb_adamw_cfg *c, int s);

/* One AdamW update of n parameters p with gradient g and moments m, v (zero before the first
 * step), for step number t (1-based: the bias corrections 1 − β^t) at learning rate lr; decay:
 * whether this array takes the weight decay. */
void qb_adamw_update(const qb_adamw_cfg *c, float lr, int t, bool decay, float *p, const float *g, float *m, float *v,
                     size_t n);

/* The global L2 norm of k gradient arrays (g[i] of n[i] floats), each array's norm taken
 * first as clip_grad_norm_ does (in double here). */
double qb_grad_norm(float *const *g, const size_t *n, int k);

/* clip_grad_norm_: every gradient times min(1, max_norm / (norm + 1e-6)) (max_norm > 0). */
void qb_grad_clip(float *const *g, const size_t *n, int k, double norm, float max_norm);

#endif
