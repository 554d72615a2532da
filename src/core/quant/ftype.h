/* ftype.h — llama-quantize's file types ("Q4_K_M", "Q8_0", …) and its default mix of tensor
 * types per file type: which tensors get more bits (attn_v, ffn_down in some layers, output),
 * and the fallback when a row does not fit a block. Facts taken from llama.cpp (build 4748),
 * so `quantbench quantize IN OUT Q4_K_M` picks the same type for every tensor. */
#ifndef QB_FTYPE_H
#define QB_FTYPE_H

#include "../qb.h"
#include "../model/model.h"

typedef struct {
    const char *name;  /* "Q4_K_M" */
    int ftype;         /* llama_ftype number, written as general.file_type */
    qb_type base;      /* the default tensor type */
} qb_ftype;

/* The file type called name (case-insensitive), or NULL. Static storage. */
const qb_ftype *qb_ftype_lookup(const char *name);
/* All supported file types, NULL-name terminated (for help texts). */
const qb_ftype *qb_ftype_all(void);

/* Counters llama-quantize keeps while walking the tensors in file order. */
typedef struct {
    int n_layers;      /* block_count */
    int n_gqa;         /* heads / kv heads */
    int n_attn_v;      /* attn_v tensors in the file */
    bool has_output;   /* the file has output.weight (else token_embd doubles as output) */
    int n_expert;      /* experts per block (0 or 1: dense); 8 has llama.cpp's Mixtral rules */
    bool has_imatrix;  /* an importance matrix weights the quantizers (llama-quantize's qs.has_imatrix:
                          set by the caller whenever one is given, whether or not it has an entry
                          for every tensor); some mixes choose differently with one */
    int i_attn_v, i_ffn_down;
    int i_ffn_gate, i_ffn_up; /* counted for the IQ3_XS mix */
} qb_mix_state;

/* The state for walking m's tensors in order (counts from m's table: per-expert tensors of
 * one block count as the one 3-D tensor llama.cpp sees). */
qb_mix_state qb_mix_state_for_model(const qb_model *m);

/* The order llama-quantize walks (and writes) a model's tensors in: its loader's weight map,
 * sorted by block number ("blk.N."; other tensors count as block -1, first), then by name
 * byte for byte, so blk.9 comes before blk.10. The mixes' counters (which attn_v / ffn_down
 * get more bits) follow this order. order[k] = the index into names of the k-th; false when
 * out of memory. */
bool qb_ftype_tensor_order(const char *const *names, int n, int *order);

/* Whether llama-quantize quantizes this tensor at all (2-D+ weights, not norms, not the
 * experts' router ffn_gate_inp). */
bool qb_ftype_quantizable(const char *name, int n_dims);

/* The type of tensor `name` (row length ne0) under file type f. pure: every tensor gets the
 * base type (llama-quantize --pure). Updates st's counters. Rows that do not fit the chosen
 * type's blocks fall back as llama-quantize does (K → legacy → F16); a legacy type that does
 * not fit is an error naming the tensor ("not divisible by 32, required for Q8_0"). */
qb_status qb_ftype_tensor_type(qb_ctx *ctx, const qb_ftype *f, bool pure, qb_mix_state *st, const char *name,
                               int64_t ne0, qb_type *out);

#endif
