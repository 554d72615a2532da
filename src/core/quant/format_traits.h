/* format_traits.h — the format table, like ggml's type traits: one row per format kind
 * (format_kinds.h lists them; each row lives in its own src/core/quant/format_<kind>.c) with
 * everything the rest of quantbench needs to know about the kind: its name grammar, validity
 * and block geometry, storage size, the scalar quantize / dequantize row functions, the
 * kernel entries of the forward pass, how the GGUF export writes it, and the bit ladders the
 * workbench steps through. format.c's entry points, the forward pass (infer/matmul.c), stats,
 * export, AWQ, the TUI and the Lua binding read the rows; none of them switches on a kind.
 *
 * Rows are immutable static data; every hook is pure and thread-safe. A hook may assume its
 * row's kind (format.c looks the row up by f->kind before calling). */
#ifndef QB_FORMAT_TRAITS_H
#define QB_FORMAT_TRAITS_H

#include "format.h"
#include "export_repack.h"
#include "fmt.h"
#include "kernels.h"

/* The tensor-wide statistics a per-tensor format's rows are quantized with (qb_quantize_matrix
 * computes them first when the row's per_tensor hook says so). */
typedef struct {
    float min, max; /* smallest and largest value (0, 0 when there is no number) */
    float absmax;   /* max(|min|, |max|) */
} qb_tensor_range;

/* Which activations the forward pass gives a format's rows. */
typedef enum {
    QB_FMT_ACT_F32 = 0, /* f32 activations through the row's tile entries */
    QB_FMT_ACT_INT_Q8   /* first the kernel table's integer paths (int_gemv, int_tile_q8: 8-bit
                           activations, fmt.h) where the shape allows, else the tile entries */
} qb_format_act;

#define QB_FAMILY_CHOICES 8
#define QB_FAMILY_END (-2) /* terminates a family's groups */

/* A ladder the workbench steps through: one family of formats chosen by (bits, granularity),
 * e.g. "RTN asym" over int2..int8 × tensor/channel/g128/g64/g32. */
typedef struct {
    int rank;                      /* where lists show it: families are listed by rank */
    const char *name;              /* shown to the user: "RTN asym" */
    const char *key;               /* used by command lines: "rtn-asym" */
    int bits[QB_FAMILY_CHOICES];   /* offered bits, descending, 0-terminated */
    int groups[QB_FAMILY_CHOICES]; /* offered granularities (QB_GROUP_TENSOR, QB_GROUP_CHANNEL or a
                                      group / block size), QB_FAMILY_END-terminated */
    /* The format of a choice into *out; false when the pair is not offered. */
    bool (*format)(int bits, int group, qb_format *out);
    /* A granularity as text ("per channel", "group 64", "block 32", "super-block 256"). */
    void (*group_name)(int group, char *buf, size_t cap);
} qb_format_family;

typedef struct qb_format_traits {
    const char *kind; /* the kind's name: "ggml", "int", "nf4", "fp8-e4m3", "fp8-e5m2", "mxfp4" */

    /* ---- names ---- */
    /* Parse s (the name lower-cased; name the user's spelling for messages) when it belongs
     * to this kind: *mine = true and QB_OK with *out set, or an error naming the bad part.
     * *mine = false (and QB_OK) when s is not this kind's. */
    qb_status (*parse)(qb_ctx *ctx, const char *name, const char *s, qb_format *out, bool *mine);
    /* Canonical name (what parse reads back) into buf (cap > 0). */
    void (*name)(const qb_format *f, char *buf, size_t cap);
    /* The kind offers symmetric and asymmetric grids (qb_format.asym means something). */
    bool asym_option;
    /* Same format (a and b of this kind; fields the kind does not use ignored). */
    bool (*equal)(const qb_format *a, const qb_format *b);

    /* ---- geometry ---- */
    /* Why the format value itself is invalid (QB_ERR_ARG with a message naming nm), or QB_OK.
     * NULL: every value of the kind is valid. */
    qb_status (*check)(qb_ctx *ctx, const qb_format *f, const char *nm);
    /* Elements a row length must be a multiple of (1 for per-row formats); 0 when f is invalid. */
    int64_t (*block)(const qb_format *f);
    /* The block is the user's group: a misfit row reads "group G does not divide the row length
     * n" rather than "row length n is not a multiple of the block size G". */
    bool block_is_group;
    /* Bytes of a row of n elements (n a positive multiple of block). */
    size_t (*row_bytes)(const qb_format *f, int64_t n);
    /* Nominal bits of one code (the ladder's "bits": 4 for Q4_K and NF4, 8 for FP8). */
    int (*bits)(const qb_format *f);
    /* Elements per independently quantized group of a row of n (AWQ searches clipping per
     * group); 0 when there is nothing to search (a float type, one scale for the tensor). */
    int64_t (*clip_group)(const qb_format *f, int64_t n);

    /* ---- quantize / dequantize (the scalar spec) ---- */
    /* Whether rows need the tensor-wide range (per-tensor scale). NULL: never. */
    bool (*per_tensor)(const qb_format *f);
    /* One row of n elements into dst; false when there is no quantizer for f. range: the
     * tensor's statistics when per_tensor says so, else NULL. */
    bool (*quant_row)(const qb_format *f, const float *x, void *dst, int64_t n, const qb_tensor_range *range);
    void (*dequant_row)(const qb_format *f, const void *src, float *dst, int64_t n);
    /* One row with importance weights w (n, one per column: llama-quantize --imatrix); false
     * as quant_row. NULL: the kind takes no importance (quant_row is used). */
    bool (*quant_row_w)(const qb_format *f, const float *x, void *dst, int64_t n, const float *w);

    /* ---- forward pass (infer/matmul.c) ---- */
    /* The kernels' parameters of f. NULL: the kind runs through the ggml type paths. */
    void (*params)(const qb_format *f, qb_fmt_params *p);
    qb_format_act act;
    /* Prompt and generation tile per ISA level (QB_ISA_*; NULL entries fall back to a lower
     * level, all NULL to dequantize + tile_f32), chosen by qb_kernels_pick_tile. */
    qb_fmt_tile_fn tile[QB_ISA_COUNT];

    /* ---- export (export_repack.c) ---- */
    /* What the GGUF export writes for rows of n elements. NULL: dequantized to F16. */
    qb_export_target (*export_target)(const qb_format *f, int64_t n);

    /* ---- front ends ---- */
    /* Representative names a sweep over formats tries (qb.formats()), NULL-terminated. */
    const char *const *sweep;
    /* the workbench's ladders */
    const qb_format_family *families;
    int n_families;
} qb_format_traits;

/* The row of f's kind, or NULL for an unknown kind. Borrowed, static. */
const qb_format_traits *qb_format_traits_of(const qb_format *f);
/* The row of kind k (0 .. QB_FMT_KIND_COUNT-1), or NULL. */
const qb_format_traits *qb_format_traits_get(int k);

/* Every family of every row, by rank: their count, and family i (NULL when out of
 * range). Borrowed, static. */
int qb_format_family_count(void);
const qb_format_family *qb_format_family_get(int i);
/* Index of the family whose key or name is s (case-insensitive), or -1. */
int qb_format_family_find(const char *s);
/* Offered bits closest to want (ties to the larger); the offered granularity equal to want,
 * else the family's first. */
int qb_format_family_nearest_bits(const qb_format_family *fam, int want);
int qb_format_family_nearest_group(const qb_format_family *fam, int want);
/* The next offered bits (dir +1: more bits, -1: fewer) or granularity (dir +1: the next in the
 * list, -1: the previous), wrapping around. */
int qb_format_family_step_bits(const qb_format_family *fam, int bits, int dir);
int qb_format_family_step_group(const qb_format_family *fam, int group, int dir);
/* The next format up (dir +1: more bits) or down (-1) the ladder of the first family that
 * offers f, keeping its granularity: QB_OK with *out; QB_ERR_UNSUPPORTED when no family
 * offers f. */
qb_status qb_format_step(qb_ctx *ctx, const qb_format *f, int dir, qb_format *out);

/* The kernel parameters and the tile entry of f for table k: false (nothing set) when f's
 * kind runs through the ggml paths; *tile NULL when there is no vector entry for k's level. */
bool qb_format_kernels(const qb_format *f, const qb_kernel_table *k, qb_fmt_params *p, qb_fmt_tile_fn *tile);

/* Shared by rows: "per tensor" / "per channel" / "group N" / "block N" granularity names, and
 * the export target for formats GGUF cannot hold (their dequantized values as F16). */
void qb_format_group_name_int(int group, char *buf, size_t cap);
qb_export_target qb_format_export_dequant(const qb_format *f, int64_t n);

#endif
