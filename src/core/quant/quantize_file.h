/* quantize_file.h — llama-quantize's job: read a GGUF model, quantize its weight tensors to a
 * file type's mix (or --pure, or a plan), and write a GGUF llama.cpp runs, atomically. */
#ifndef QB_QUANTIZE_FILE_H
#define QB_QUANTIZE_FILE_H

#include "plan.h"

typedef struct {
    const char *ftype;          /* llama-quantize type name ("Q4_K_M", "Q8_0", …) */
    bool pure;                  /* every quantizable tensor gets the base type */
    const qb_plan *plan;        /* optional: rules applied after the mix (may be NULL) */
    bool allow_requantize;      /* accept already-quantized inputs */
    void (*progress)(void *ud, int done, int total);
    void *ud;
    const volatile int *cancel; /* stop: the output file is not created or changed */
} qb_quantize_opts;

typedef struct {
    size_t bytes_in, bytes_out; /* tensor data */
    int n_tensors, n_quantized;
    double seconds;
} qb_quantize_result;

qb_status qb_quantize_gguf(qb_ctx *ctx, const char *in_path, const char *out_path, const qb_quantize_opts *o,
                           qb_quantize_result *res);

#endif
