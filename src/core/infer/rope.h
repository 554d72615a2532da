/* rope.h — the RoPE angle tables a model's layers rotate queries and keys with, shared by the
 * forward pass (llama.c) and the training pass (train.c) so both rotate by the same floats. */
#ifndef QB_ROPE_H
#define QB_ROPE_H

#include "../model/model.h"

/* cs, sn (n_ctx, head_dim/2): cos and sin of pair i's angle at position p,
 * p · theta^(−2i/head_dim) / divisor_i (scaled: the model's RoPE scaling, divisors and YaRN's
 * magnitude factor, as full-attention layers use; unscaled: sliding layers with their own
 * base, as Gemma 3's), in float as the references compute them. */
void qb_rope_tables(const qb_model *m, float theta, bool scaled, int n_ctx, float *cs, float *sn);

#endif
