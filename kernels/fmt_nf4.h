/* fmt_nf4.h — the storage of NF4 rows shared by the scalar spec (fmt_nf4_ref.c, where the
 * layout is described) and its vector version (fmt_nf4_avx512.c): the two block structs, the
 * double quantization's group and bitsandbytes' decision thresholds. Private to the kernels;
 * the row functions themselves are declared in fmt.h. */
#ifndef QB_FMT_NF4_H
#define QB_FMT_NF4_H

#include "blocks.h"
#include "fmt.h"

#define QB_NF4_DQ_GROUP 256 /* blocks per second-level scale (nf4-dq) */

typedef struct QB_PACKED {
    float absmax;   /* the block's max |x| */
    uint8_t qs[32]; /* 64 codes */
} qb_nf4_block;
_Static_assert(sizeof(qb_nf4_block) == 36, "nf4 block is 36 bytes");

typedef struct QB_PACKED {
    int8_t qa;      /* absmax code on the row's second-level grid */
    uint8_t qs[32];
} qb_nf4dq_block;
_Static_assert(sizeof(qb_nf4dq_block) == 33, "nf4-dq block is 33 bytes");

/* bitsandbytes' dQuantizeNF4 thresholds, ascending (code = number of thresholds below v). */
extern const float qb_nf4_thresholds[15];

#endif
