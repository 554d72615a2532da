/* kvcache.h — the attention key/value cache of a run state, in f32 or quantized (int8 /
 * int4, as in KIVI, Liu et al. 2024: keys per channel, values per token), and the causal
 * GQA attention that reads it.
 *
 * Quantized layouts (asymmetric min/scale grids, codes 0..2^b−1, x' = min + code · scale):
 *   keys    per channel over groups of QB_KV_GROUP consecutive positions: one (scale, min)
 *           f32 pair per channel per group. The newest, incomplete group stays in f32 (a
 *           residual of QB_KV_GROUP rows) and is quantized when its last position arrives.
 *   values  per token and kv head: one (scale, min) f32 pair per head_dim values, quantized
 *           as they are stored.
 * int4 codes are two per byte (even element in the low nibble). The attention score scratch
 * is per thread (n_ctx floats each), not per token × head. */
#ifndef QB_KVCACHE_H
#define QB_KVCACHE_H

#include "../model/model.h"

typedef enum { QB_KV_F32 = 0, QB_KV_INT8 = 1, QB_KV_INT4 = 2 } qb_kv_type;
#define QB_KV_GROUP 32

/* "f32", "int8", "int4" → *out; other names are QB_ERR_ARG ("unknown KV cache type 'x'"). */
qb_status qb_kv_type_parse(qb_ctx *ctx, const char *name, int *out);
/* Name of a type ("f32", "int8", "int4"; "?" for others), static storage. */
const char *qb_kv_type_name(int type);
/* Bytes a cache of n_ctx positions of this type takes for model config c (codes, scales and
 * the f32 residual), and the same cache in f16 (llama.cpp's default) for comparison. */
size_t qb_kv_bytes(const qb_config *c, int n_ctx, int type);
size_t qb_kv_bytes_f16(const qb_config *c, int n_ctx);

typedef struct qb_kvcache qb_kvcache;

/* A cache for c (borrowed; must outlive it) with n_ctx positions. Free with qb_kvcache_free. */
qb_status qb_kvcache_new(qb_ctx *ctx, const qb_config *c, int n_ctx, int type, qb_kvcache **out);
void qb_kvcache_free(qb_kvcache *kv);
int qb_kvcache_type(const qb_kvcache *kv);
/* Make sure there is per-thread scratch for n_threads threads (call before an evaluation,
 * outside parallel regions). */
qb_status qb_kvcache_reserve(qb_ctx *ctx, qb_kvcache *kv, int n_threads);
/* Store the n rows of keys k and values v (n × kv_dim each, RoPE already applied) of layer at
 * positions pos..pos+n−1; the layer then holds exactly positions 0..pos+n−1. */
void qb_kvcache_store(qb_kvcache *kv, int layer, int pos, int n, const float *k, const float *v);
/* How a layer attends: scores q·k times scale, soft-capped to softcap·tanh(score/softcap)
 * when softcap > 0, over the last window positions (self included) when window > 0. */
typedef struct {
    float scale;
    float softcap;
    int window;
} qb_attn_params;

/* Causal attention of n queries (rows of q, q_stride floats apart, n_heads × head_dim each, at
 * positions pos..pos+n−1) against the layer's cache; out rows are q_stride floats apart.
 * Parallel over tokens × heads (OpenMP) with at most the threads reserved. */
void qb_kvcache_attention(qb_kvcache *kv, int layer, const float *q, size_t q_stride, int n, int pos,
                          const qb_attn_params *ap, float *out);

#endif
