/* recipe.h — how a quantized file was made, recorded in its GGUF metadata so it can be read
 * back (`quantbench info`) and replayed (`quantbench quantize MODEL OUT --plan FILE.gguf`):
 *
 *   quantbench.version         the quantbench that wrote the file (QB_VERSION)
 *   quantbench.plan            the plan, version 2 text: rules with methods and parameters
 *   quantbench.quantize.type   a llama-quantize type applied before the plan (and .pure), when
 *                              the plan holds only the overrides (GGUF sources)
 *   quantbench.calib.file      the calibration text methods read: its name as given,
 *   quantbench.calib.bytes     its size,
 *   quantbench.calib.sha256    its SHA-256 (64 hex digits),
 *   quantbench.calib.windows   and the windows × tokens it was cut into
 *   quantbench.calib.ctx
 *   quantbench.imatrix.file    the importance matrix that weighted the quantizers: its name
 *   quantbench.imatrix.bytes   as given, its size
 *   quantbench.imatrix.sha256  and SHA-256
 */
#ifndef QB_RECIPE_H
#define QB_RECIPE_H

#include "plan.h"
#include "importance.h"
#include "../util/gguf.h"
#include "../util/gguf_write.h"

/* The quantbench version an exported file records (quantbench.version). */
#define QB_VERSION "0.1.0"

typedef struct {
    char version[32];
    char type[64];          /* "" when none */
    bool pure;
    char calib_file[256];   /* "" when no calibration */
    uint64_t calib_bytes;
    char calib_sha256[65];
    int calib_windows, calib_ctx;
    char imatrix_file[256]; /* "" when no importance matrix */
    uint64_t imatrix_bytes;
    char imatrix_sha256[65];
} qb_recipe_info;

typedef struct {
    const qb_plan *plan;    /* borrowed; NULL: none */
    qb_recipe_info info;
} qb_recipe;

/* A recipe with plan p (may be NULL), this quantbench's version, nothing else. */
void qb_recipe_init(qb_recipe *r, const qb_plan *p);
/* Record the importance matrix imp (may be NULL: none) in r: its path, size, sha256. */
void qb_recipe_set_imatrix(qb_recipe *r, const qb_importance *imp);
/* Write r's keys (those it has) into w. False when out of memory. */
bool qb_recipe_put(qb_gguf_writer *w, const qb_recipe *r);
/* Read the recipe recorded in g (name is for messages): *plan (initialised here; caller frees
 * with qb_plan_free) from quantbench.plan (empty when absent), *info from the other keys.
 * Errors: neither a plan nor a type recorded (QB_ERR_ARG: "NAME records no quantbench
 * plan"), a plan that does not parse (name:quantbench.plan:LINE). */
qb_status qb_recipe_get(qb_ctx *ctx, const qb_gguf *g, const char *name, qb_plan *plan, qb_recipe_info *info);

#endif
