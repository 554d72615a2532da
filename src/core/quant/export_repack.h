/* export_repack.h — how a tensor in a format GGUF cannot store (integer grids, NF4, FP8,
 * MXFP4) is written by the GGUF export, so that any plan exports to a file llama.cpp runs:
 *   - integer grids whose groups cover whole 32-element blocks are repacked code for code
 *     into the ggml block type with the same arithmetic: symmetric 2..4 bits → Q4_0, 5 → Q5_0,
 *     6..8 → Q8_0 (x = d·(q − zero) in both); asymmetric 6..7 bits → Q8_0 the same way;
 *     asymmetric 2..4 / 5 bits → Q4_1 / Q5_1 (x = d·q + m, the offset m = −d·zero rounded to
 *     f16). Group scales are f16 already, so those repacks are exact; per-row and per-tensor
 *     scales are f32 and get rounded to f16 (relative change ≤ 2^-11);
 *   - everything else (NF4, FP8, MXFP4, 8-bit asymmetric, rows not a multiple of 32) is written
 *     as F16 of its dequantized values (F32 if a value does not fit F16).
 * The values the exported file holds are then those the model had in memory, exactly or to
 * f16 rounding: reopening it gives (nearly) the same logits. */
#ifndef QB_EXPORT_REPACK_H
#define QB_EXPORT_REPACK_H

#include "../model/model.h"

typedef enum {
    QB_EXPORT_AS_IS = 0, /* a ggml type: written unchanged */
    QB_EXPORT_EXACT,     /* repacked into `type`, every value identical */
    QB_EXPORT_ROUNDED,   /* repacked into `type`, scales or offsets rounded to f16 */
    QB_EXPORT_DEQUANT    /* dequantized values stored as `type` (F16, or F32) */
} qb_export_kind;

typedef struct {
    qb_type type;
    qb_export_kind kind;
} qb_export_target;

/* What the export writes for a tensor stored in f with rows of n elements. For kind
 * QB_EXPORT_DEQUANT the type is F16; qb_export_repack may still pick F32 when a value is
 * beyond F16's range. Pure. */
qb_export_target qb_export_target_for(const qb_format *f, int64_t n);

/* t's current bytes converted to a ggml type as qb_export_target_for(&t->fmt, t->ne[0]) says:
 * *out (caller frees) holds *nbytes bytes of type *type. Only for QB_TYPE_CUSTOM tensors
 * (QB_ERR_ARG otherwise). In parallel over rows (ctx's thread count). */
qb_status qb_export_repack(qb_ctx *ctx, const qb_tensor *t, qb_type *type, void **out, size_t *nbytes);

/* A description of what exporting m now would convert, one line per tensor not in a ggml type
 * ("blk.0.ffn_down.weight int4-g128 -> q4_0 (exact)"), in a malloc'd string the caller frees;
 * NULL when every tensor is in a ggml type (or out of memory). */
char *qb_export_describe(const qb_model *m);

#endif
