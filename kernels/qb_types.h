/* qb_types.h — the storage types kernels and core share: ggml's tensor element type ids with
 * their block geometry and the scalar half-precision conversions. Kernels include only this
 * from the outside world (nothing from src/); core gets it through src/core/qb.h. Functions: kernels/types.c. */
#ifndef QB_TYPES_H
#define QB_TYPES_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* Tensor element types. The numbers are ggml's type ids, so GGUF files map directly. */
typedef enum {
    QB_TYPE_F32 = 0,
    QB_TYPE_F16 = 1,
    QB_TYPE_Q4_0 = 2,
    QB_TYPE_Q4_1 = 3,
    QB_TYPE_Q5_0 = 6,
    QB_TYPE_Q5_1 = 7,
    QB_TYPE_Q8_0 = 8,
    QB_TYPE_Q8_1 = 9,
    QB_TYPE_Q2_K = 10,
    QB_TYPE_Q3_K = 11,
    QB_TYPE_Q4_K = 12,
    QB_TYPE_Q5_K = 13,
    QB_TYPE_Q6_K = 14,
    QB_TYPE_Q8_K = 15,
    QB_TYPE_IQ2_XXS = 16,
    QB_TYPE_IQ2_XS = 17,
    QB_TYPE_IQ1_S = 19,
    QB_TYPE_IQ4_NL = 20,
    QB_TYPE_IQ2_S = 22,
    QB_TYPE_IQ4_XS = 23,
    QB_TYPE_IQ1_M = 29,
    QB_TYPE_BF16 = 30,
    /* ternary and 3-bit i-quants (super-blocks of 256) */
    QB_TYPE_IQ3_XXS = 18,
    QB_TYPE_IQ3_S = 21,
    QB_TYPE_TQ1_0 = 34,
    QB_TYPE_TQ2_0 = 35,
    QB_TYPE_CUSTOM = 39, /* not a ggml type: the tensor's qb_format says what the bytes are */
    QB_TYPE_COUNT = 40,  /* upper bound for tables indexed by type */
} qb_type;

/* Facts about a storage type. blck = elements per block, size = bytes per block.
 * name is NULL for ids we do not know. */
typedef struct {
    const char *name;
    int blck;
    int size;
} qb_type_info;

/* Info for type t, or NULL if t is unknown. Static storage. */
const qb_type_info *qb_type_get(int t);
/* Bytes taken by n elements of type t (n must be a multiple of the block size). */
size_t qb_type_row_bytes(qb_type t, int64_t n);
/* Type id for a name like "Q4_K" or "f16" (case-insensitive), or -1. */
int qb_type_from_name(const char *name);

/* Half-precision conversions (scalar; kernels have vector versions). */
float qb_f16_to_f32(uint16_t h);
uint16_t qb_f32_to_f16(float f);
float qb_bf16_to_f32(uint16_t h);

#endif
