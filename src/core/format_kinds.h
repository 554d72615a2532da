/* format_kinds.h — the rows of the format table, one line per format kind: X(ENUM, id) gives
 * the enum constant QB_FMT_<ENUM> (qb.h) and the row `qb_format_row_<id>` (a const
 * qb_format_traits defined in src/core/quant/format_<file>.c; quant/format_traits.c collects them
 * in this order). Adding a format is one file holding its row plus one line here. */
#ifndef QB_FORMAT_KINDS_H
#define QB_FORMAT_KINDS_H

#define QB_FORMAT_KINDS(X)                                                                       \
    X(GGML, ggml)         /* a ggml storage type: F32, F16, BF16, Q8_0 … Q6_K, IQ4_NL, IQ4_XS, IQ3_S, IQ3_XXS, TQ2_0, TQ1_0 */ \
    X(INT, int)           /* integer round-to-nearest grid: bits 2..8, symmetric or zero point */ \
    X(NF4, nf4)           /* 4-bit NormalFloat (QLoRA): 64-element blocks with absmax */         \
    X(FP8_E4M3, fp8_e4m3) /* 8-bit float, 4 exponent bits (max 448), saturating, scaled */       \
    X(FP8_E5M2, fp8_e5m2) /* 8-bit float, 5 exponent bits (max 57344), saturating, scaled */     \
    X(MXFP4, mxfp4)       /* OCP microscaling FP4 (E2M1), 32-element blocks, E8M0 scale */      \
    X(NVFP4, nvfp4)       /* NVIDIA FP4 (E2M1), 16-element blocks, E4M3 scale, f32 per tensor */ \
    /* a new row goes above this line */

#endif
