/* scan_internal.h — what the exact scan (sensitivity.c) and its estimate (scan_estimate.c)
 * share: the units a scan is made of and the checks of its arguments (not public API). */
#ifndef QB_SCAN_INTERNAL_H
#define QB_SCAN_INTERNAL_H

#include "sensitivity.h"

/* One unit of a scan: the tensors (indices into the model's table) quantized together, and
 * the row the scan fills for it. */
typedef struct {
    int *tensors;
    int n;
    qb_scan_row row;
} qb_scan_unit_set;

/* Block index of a tensor called "blk.<i>.…", else -1. */
int qb_scan_layer_of(const char *name);
/* The quantizable tensors of m grouped into units as o asks (per tensor or layer, blocks or
 * layer range only); *n_units set. Caller frees units[i].tensors and units. Errors: none to
 * scan (QB_ERR_ARG), out of memory. */
qb_status qb_scan_make_units(qb_ctx *ctx, const qb_model *m, const qb_scan_opts *o, qb_scan_unit_set **out,
                             int *n_units);
/* The format value itself and o's layer range against m (QB_ERR_ARG with the message). */
qb_status qb_scan_check_args(qb_ctx *ctx, const qb_model *m, const qb_format *fmt, const qb_scan_opts *o);

#endif
