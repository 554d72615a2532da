/* imatrix.h — importance matrices as llama.cpp's llama-imatrix collects and stores them: for
 * every weight matrix of the blocks, the sum of squares of each input column over the
 * calibration tokens (per expert for a 3-D expert tensor, over the tokens routed to it), which
 * quantizers use as per-column weights of the rounding error.
 *
 * Collection follows llama-imatrix (llama.cpp c392e50, examples/imatrix/imatrix.cpp): the text
 * tokenized with BOS, at least 2 × n_ctx tokens, cut into chunks of n_ctx tokens whose first
 * token becomes BOS, each run from an empty cache in batches of min(2048, n_ctx) tokens and
 * micro-batches ("calls") of min(512, batch) tokens, where the chunk length is the n_ctx asked
 * for rounded up to a multiple of 32 (llama.cpp pads its context so) and the batch is not. A call adds x² of every token to the
 * entries of the matrices it multiplies: every "blk.*" matrix (output.weight only when asked),
 * a dense matrix only in calls of at least 16 tokens (llama-imatrix's filter), the experts in
 * every call and only the tokens routed to each. An entry counts its calls (ncall) and tokens.
 *
 * Files: llama.cpp's legacy binary ".dat" (what c392e50 writes and llama-quantize reads), all
 * little-endian int32/float32:
 *     n_entries, then per entry: name_len, name bytes, ncall, nval, nval values
 *     (value = Σx² / tokens × ncall), then last_call, dataset_len, dataset bytes
 * and the later GGUF imatrix (general.type = "imatrix"; imatrix.datasets: array of strings,
 * imatrix.chunk_count, imatrix.chunk_size: u32; per entry F32 tensors "<name>.in_sum2"
 * [n_cols, n_mat] = Σx² and "<name>.counts" [1, n_mat] = tokens; "<name>.in_sum", if present,
 * is ignored). The importance a quantizer uses is what llama-quantize derives: a .dat's value
 * / ncall, a GGUF's in_sum2 / counts (1 where a matrix saw no token). */
#ifndef QB_IMATRIX_H
#define QB_IMATRIX_H

#include "../model/model.h"
#include "../quant/importance.h"

typedef struct {
    char *name;       /* llama.cpp's tensor name: "blk.3.attn_q.weight", "blk.0.ffn_up_exps.weight" */
    int n_cols;       /* values per matrix: the width of the matrix's input (ne[0]) */
    int n_mat;        /* matrices: 1, or the experts of an expert tensor */
    int32_t ncall;    /* calls it was collected over (a .dat's ncall) */
    float *sum2;      /* (n_mat, n_cols) Σx² per column; a .dat's stored values when legacy */
    float *counts;    /* (n_mat) tokens per matrix; a .dat's ncall when legacy */
    float *w;         /* (n_mat, n_cols) the importance llama-quantize derives (see the top) */
} qb_imatrix_entry;

typedef struct qb_imatrix {
    char *path;                /* the file it was read from (messages), or NULL; owned */
    int n_entries;
    qb_imatrix_entry *entries; /* in file order (a .dat written back keeps it); owned */
    int *by_name;              /* (n_entries) entry indices sorted by name, for lookups */
    bool legacy;               /* read from a .dat: sum2 holds its values, counts its ncall */
    bool dat_trailer;          /* the .dat ended with last_call and the dataset name */
    int32_t chunk_count;       /* a .dat's last_call (c392e50: calls), GGUF imatrix.chunk_count */
    int32_t chunk_size;        /* tokens per chunk (GGUF imatrix.chunk_size); 0 when unknown */
    int n_datasets;
    char **datasets;           /* the calibration texts' names; owned */
} qb_imatrix;

typedef struct {
    int n_ctx;           /* context asked for (0 = 512, llama-imatrix's default); chunks of it padded */
    int n_chunks;        /* chunks to run (0 = all the text holds) */
    int n_batch;         /* tokens per batch (0 = 2048, then at most n_ctx as asked) */
    int n_ubatch;        /* tokens per call (0 = 512, then at most the batch) */
    bool process_output; /* also collect output.weight (llama-imatrix --process-output) */
    void (*progress)(void *ud, int done, int total); /* after each chunk, calling thread */
    void *ud;
    const volatile int *cancel; /* non-zero stops after the current batch: QB_ERR_CANCELLED */
} qb_imatrix_opts;

/* Collect the importance matrix of m over tokens (a text tokenized as qb_model_tokenize_file
 * does), the protocol above; dataset names the text in the result. *out is the caller's
 * (qb_imatrix_free). Entries come in the model's order, those no call reached left out;
 * experts that received no token have counts 0 (a .dat leaves such entries out). Errors:
 * QB_ERR_ARG for a text shorter than two chunks (the message gives both numbers). */
qb_status qb_imatrix_collect(qb_ctx *ctx, const qb_model *m, const int32_t *tokens, int n_tokens, const char *dataset,
                             const qb_imatrix_opts *opts, qb_imatrix **out);
/* The same on a text file (the dataset name is the path as given); errors name the file. */
qb_status qb_imatrix_collect_file(qb_ctx *ctx, const qb_model *m, const char *path, const qb_imatrix_opts *opts,
                                  qb_imatrix **out);

/* Read an imatrix file of either format (GGUF when it starts with "GGUF", else .dat). *out
 * is the caller's (qb_imatrix_free). Any malformation (truncation, sizes, counts, names,
 * values that are not finite and non-negative, bytes past the end) is an error naming the
 * file and the problem; nothing is returned then. */
qb_status qb_imatrix_load(qb_ctx *ctx, const char *path, qb_imatrix **out);
/* The same over bytes in memory (borrowed; the fuzzer's entry); name is for messages. */
qb_status qb_imatrix_load_memory(qb_ctx *ctx, const char *name, const void *data, size_t size, qb_imatrix **out);

typedef enum { QB_IMATRIX_DAT = 0, QB_IMATRIX_GGUF } qb_imatrix_format;
/* The format a file name asks for: GGUF for "*.gguf", else .dat. */
qb_imatrix_format qb_imatrix_format_of(const char *path);

/* Write im to path in fmt (through a temp file and a rename). A .dat of a legacy imatrix is
 * its file again byte for byte; entries with a matrix that saw no token cannot be written
 * to a .dat (llama-imatrix c392e50 leaves them out too) and are skipped, their number in
 * *n_skipped (may be NULL). A GGUF of a legacy imatrix turns each value v into sums v ×
 * chunk_size over ncall × chunk_size tokens (chunk_size 512 when unknown), as llama.cpp's
 * own conversion does. */
qb_status qb_imatrix_save(qb_ctx *ctx, const qb_imatrix *im, const char *path, qb_imatrix_format fmt,
                          int *n_skipped);

/* Check im against m: every entry names a weight matrix of m, with as many values as the
 * matrix is wide (times its experts); a .dat's expert entries get their n_mat from m. The
 * error names the file and the first entry that does not fit. */
qb_status qb_imatrix_match(qb_ctx *ctx, qb_imatrix *im, const qb_model *m);

/* The entry named name (llama.cpp's name), or NULL. Borrowed from im. */
const qb_imatrix_entry *qb_imatrix_find(const qb_imatrix *im, const char *name);
/* The importance of the n_cols columns of the model tensor named tensor_name (our per-expert
 * names "blk.N.ffn_X_exps.E.weight" read row E of "blk.N.ffn_X_exps.weight"), or NULL when
 * im has no entry for it or its size does not fit n_cols. Borrowed from im. */
const float *qb_imatrix_weights(const qb_imatrix *im, const char *tensor_name, int64_t n_cols);

/* How two importance matrices differ (one of ours against llama-imatrix's, say): entries in
 * both or in one only (the first of each named), common entries whose ncall or size differs,
 * and over the common entries of equal size the largest relative difference of importance
 * |a − b| / max(|a|, |b|) (0 where both are 0), with where it is. */
typedef struct {
    int n_common, n_only_a, n_only_b, n_ncall_differ, n_size_differ;
    char only_a[160], only_b[160], ncall_differs[160], size_differs[160];
    double max_rel;   /* over all common entries */
    char worst[160];  /* the entry holding it, and the value's index there */
    int64_t worst_index;
    double *entry_rel; /* (a->n_entries) each common entry's largest, -1 for the others; owned */
} qb_imatrix_diff;
/* Compare a with b into *d (free d->entry_rel with free()); false when out of memory. */
bool qb_imatrix_compare(const qb_imatrix *a, const qb_imatrix *b, qb_imatrix_diff *d);

/* im as the quantizers take it (quant/importance.h): entries by llama.cpp's names, the
 * importance llama-quantize derives (w above), the file's path, size and SHA-256 (read from
 * im->path when set). *out borrows im: valid while im is. Errors: a value that is not finite
 * (llama-quantize refuses such a matrix; a GGUF's sums over a tiny count can overflow), the
 * file no longer readable, both naming the file. */
qb_status qb_imatrix_importance(qb_ctx *ctx, const qb_imatrix *im, qb_importance *out);

void qb_imatrix_free(qb_imatrix *im);

/* Internal to the imatrix files (imatrix.c, imatrix_collect.c, imatrix_file.c): a new empty
 * imatrix, an entry appended with zeroed arrays or a dataset name (false / NULL when out of
 * memory), and the name index and importance once the entries are final (QB_ERR_FORMAT naming
 * im->path for a name given twice). */
qb_imatrix *qb_imatrix_new(void);
qb_imatrix_entry *qb_imatrix_add(qb_imatrix *im, const char *name, size_t name_len, int n_cols, int n_mat);
bool qb_imatrix_add_dataset(qb_imatrix *im, const char *name, size_t len);
qb_status qb_imatrix_finish(qb_ctx *ctx, qb_imatrix *im);

#endif
