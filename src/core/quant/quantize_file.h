/* quantize_file.h — llama-quantize's job: read a GGUF model, quantize its weight tensors to a
 * file type's mix (or --pure, or a plan), and write a GGUF llama.cpp runs, atomically. */
#ifndef QB_QUANTIZE_FILE_H
#define QB_QUANTIZE_FILE_H

#include "plan.h"
#include "importance.h"

typedef struct {
    const char *ftype;          /* llama-quantize type name ("Q4_K_M", "Q8_0", …) */
    bool pure;                  /* every quantizable tensor gets the base type */
    const qb_plan *plan;        /* optional: rules applied after the mix (may be NULL) */
    bool allow_requantize;      /* accept already-quantized inputs */
    void (*progress)(void *ud, int done, int total);
    void *ud;
    const volatile int *cancel; /* stop: the output file is not created or changed */
    /* optional: importance weights for the quantizers (llama-quantize --imatrix; importance.h
     * gives its rules); the mix's has_imatrix choices follow, and the recipe records the file */
    const qb_importance *imatrix;
    /* optional: informational lines (a tensor without an importance entry), calling thread,
     * once every tensor's type and importance are settled (an error comes alone) */
    void (*note)(void *ud, const char *line);
} qb_quantize_opts;

typedef struct {
    size_t bytes_in, bytes_out; /* tensor data */
    int n_tensors, n_quantized;
    int n_weighted;             /* quantized with importance weights (of a type that uses them) */
    int n_no_importance;        /* quantized while an imatrix was given that has no entry for them */
    double seconds;
} qb_quantize_result;

/* Quantize in_path into out_path by o (see qb_quantize_opts). Errors name the file or tensor:
 * an unknown type, a row that fits no block, an already-quantized input without
 * allow_requantize, an importance entry of the wrong size, a Q2_K tensor of Q2_K_S without
 * importance (llama-quantize refuses it: "very low-bit quantization"), write failures, cancel;
 * the output is then not created or changed. */
qb_status qb_quantize_gguf(qb_ctx *ctx, const char *in_path, const char *out_path, const qb_quantize_opts *o,
                           qb_quantize_result *res);

#endif
