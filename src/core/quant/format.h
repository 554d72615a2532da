/* format.h — quantization storage formats as plain values: how bits are stored and what they
 * mean (the "format"), separate from how values and scales are chosen (the "method": RTN,
 * GPTQ, AWQ…). One parser/name pair and whole-matrix quantize / dequantize entry points that
 * every front end (CLI, TUI, Lua) calls; each looks up the format's row in the format table
 * (format_traits.h, one row per kind listed in format_kinds.h).
 *
 * Storage of a quantized matrix: rows of qb_format_row_bytes(f, n) bytes each, back to back,
 * every row self-contained (its scales travel with it; a per-tensor scale is repeated in each
 * row), so rows can be processed in parallel and exported row by row. */
#ifndef QB_FORMAT_H
#define QB_FORMAT_H

#include "../qb.h" /* qb_format itself, and the list of kinds: src/core/format_kinds.h */

/* Parse a format name, case-insensitive:
 *   ggml types:  "f32" "f16" "bf16" "q8_0" "q4_0" "q4_1" "q5_0" "q5_1" "q2_k" "q3_k" "q4_k"
 *                "q5_k" "q6_k" "iq4_nl" "iq4_xs" "iq3_s" "iq3_xxs" "tq2_0" "tq1_0"
 *   integer RTN: "int<bits>[-tensor|-channel|-g<32|64|128|256>][-sym|-asym]"
 *                e.g. "int4-g128-asym", "int8-channel" (defaults: per channel, symmetric)
 *   others:      "nf4", "nf4-dq", "fp8-e4m3", "fp8-e5m2" (per tensor), "fp8-e4m3-channel",
 *                "fp8-e5m2-channel", "mxfp4", and whatever other rows the table holds (each
 *                row's file, src/core/quant/format_<kind>.c, documents its grammar)
 * Errors name the bad part ("bits 9 out of range 2..8", "unknown format 'foo'"). */
qb_status qb_format_parse(qb_ctx *ctx, const char *name, qb_format *out);
/* Canonical name (the parser's spelling, lower case) into buf, truncated to cap - 1 chars:
 * "q4_k", "int4-g128-asym", "int8-channel" (granularity always written, "-sym" never),
 * "nf4-dq", "fp8-e4m3" (per tensor), "fp8-e5m2-channel", "mxfp4". Parsing it gives back an
 * equal format. */
void qb_format_name(const qb_format *f, char *buf, size_t cap);
/* A ggml-type format value. */
qb_format qb_format_ggml(qb_type t);
/* Same format (fields a kind does not use are ignored). */
bool qb_format_equal(const qb_format *a, const qb_format *b);

/* Can rows of length n be stored in f? Errors say why: QB_ERR_ARG for a format value that is
 * invalid in itself (bits out of range, an unknown group or kind) or n <= 0; QB_ERR_UNSUPPORTED
 * for a group size that does not divide the row ("int4-g128: group 128 does not divide the
 * row length 172"), a row not a multiple of the block size, or a ggml type that is not a
 * weight storage format (Q8_1, Q8_K). For ggml types, like llama-quantize, callers may fall
 * back to another type: see qb_format_fallback. */
qb_status qb_format_check(qb_ctx *ctx, const qb_format *f, int64_t n);
/* llama-quantize's fallback when rows of length n do not fit f's blocks (llama.cpp
 * src/llama-quant.cpp: Q2_K, Q3_K, IQ4_XS → IQ4_NL; Q4_K → Q5_0; Q5_K → Q5_1; Q6_K → Q8_0;
 * then F16 if n is not a multiple of 32 either), or f itself when it fits. Legacy 32-blocks
 * that do not fit give F16 (llama-quantize refuses those tensors instead). Formats of other
 * kinds have no fallback and are returned unchanged (qb_format_check says why they fail). */
qb_format qb_format_fallback(const qb_format *f, int64_t n);
/* Bytes of one row of n elements (0 when the format cannot store such rows). Layouts: ggml's
 * blocks (kernels/blocks.h), the others at the top of kernels/fmt_*_ref.c. */
size_t qb_format_row_bytes(const qb_format *f, int64_t n);
/* Bits per weight of a row of n elements, scales included (row_bytes · 8 / n; 0 when the
 * format cannot store such rows). */
double qb_format_bpw(const qb_format *f, int64_t n);

/* Quantize a rows × n row-major f32 matrix into dst (rows * row_bytes bytes), in parallel
 * over rows (OpenMP, ctx's thread count). Per-tensor formats compute the tensor-wide scale
 * first. The bytes do not depend on the thread count. cancel may be NULL; when it becomes
 * non-zero the call returns QB_ERR_CANCELLED (dst then holds a partial result). Errors: those
 * of qb_format_check, rows < 0 or NULL buffers (QB_ERR_ARG). */
qb_status qb_quantize_matrix(qb_ctx *ctx, const qb_format *f, const float *src, int64_t rows, int64_t n, void *dst,
                             const volatile int *cancel);
/* The same with importance weights w (n floats, one per column, shared by every row; NULL:
 * qb_quantize_matrix), llama-quantize --imatrix's bytes for the ggml types it weights; formats
 * of other kinds and ggml types ggml quantizes without weights (F16, Q8_0, ...) ignore w. */
qb_status qb_quantize_matrix_w(qb_ctx *ctx, const qb_format *f, const float *src, int64_t rows, int64_t n, void *dst,
                               const float *w, const volatile int *cancel);
/* Whether each row of f quantizes on its own (no per-tensor scale): then
 * qb_quantize_row_local gives, row by row, the bytes qb_quantize_matrix_w gives. */
bool qb_format_row_local(const qb_format *f);
/* One row of n values into dst as qb_quantize_matrix_w quantizes it (w: the importance, NULL:
 * none), for a format where qb_format_row_local holds and f, n pass qb_format_check. False:
 * no quantizer for this type. Thread-safe. */
bool qb_quantize_row_local(const qb_format *f, const float *src, void *dst, int64_t n, const float *w);
/* Dequantize one stored row of n elements into dst. f and n must pass qb_format_check (not
 * re-checked here). Pure and thread-safe: callers run it on many rows at once. */
void qb_dequantize_row(const qb_format *f, const void *src, float *dst, int64_t n);

#endif
