/* demo_model.h — the workbench's built-in demo, shown when no model is given: a few synthetic
 * weight matrices stored as F16, shaped like the classic quantization teaching demo and like
 * real LLM tensors. Core builds them; the TUI only shows them. */
#ifndef QB_DEMO_MODEL_H
#define QB_DEMO_MODEL_H

#include "../model/model.h"

/* A model holding only synthetic tensors (no tokenizer, no layers: it cannot generate):
 *   gauss_outliers.weight    N(0, 0.3²) with 5% of the values drawn from N(0, 0.8²)
 *   outlier_channels.weight  N(0, 0.02²) with 1% of the columns scaled ×25 (per-channel outliers)
 *   uniform.weight           U(−1, 1)
 *   heavy_tailed.weight      Student-t (ν = 3) × 0.05
 * Deterministic (fixed seed). Caller closes *out with qb_model_close. */
qb_status qb_demo_model(qb_ctx *ctx, qb_model **out);

#endif
