/* methods.h — the choices the workbench cycles through with m / b / g: every family (bit
 * ladder) of core's format table (core/quant/format_traits.h: RTN sym / asym, NF4, FP8,
 * MXFP4, llama.cpp's K-quants, legacy and IQ4, …) in core's order, then the calibration
 * methods GPTQ, AWQ and learned rounding on integer asymmetric grids. Calibration rows have a `job`: their
 * analyses and applies run core's method on the session's calibration as cancellable jobs.
 * Which bits and granularities a row offers and which format a choice is all come from core. */
#ifndef QB_TUI_METHODS_H
#define QB_TUI_METHODS_H

#include "core/quant/format_traits.h"

typedef struct {
    const char *name;            /* shown in the header: "RTN asym" */
    const char *key;             /* used by the command line: "rtn-asym" */
    const qb_format_family *fam; /* core's ladder: bits, formats, granularity names */
    const int *groups;           /* offered granularities (QB_FAMILY_END-terminated): fam's, or
                                    a calibration method's subset of them */
    /* Calibration methods: non-NULL means the choice needs calibration data (:calib) and its
     * analysis and apply run core's method of that name (qb_method_parse: "gptq", "awq"). */
    const char *job;
} tui_method;

/* The methods (static, built once) and their count. */
const tui_method *tui_methods(int *count);
/* Index of the method whose key or name is name (case-insensitive), or -1. */
int tui_method_find(const char *name);
/* The storage format of method mi at (bits, group) into *out; false when not offered. */
bool tui_method_format(int mi, int bits, int group, qb_format *out);
/* Offered bits closest to want (ties to the larger), for method mi. */
int tui_method_nearest_bits(int mi, int want);
/* Offered granularity equal to want, else the method's first one. */
int tui_method_nearest_group(int mi, int want);
/* Next / previous offered bits or granularity (wrapping). dir = +1 or -1. */
int tui_method_step_bits(int mi, int bits, int dir);
int tui_method_step_group(int mi, int group, int dir);
/* Granularity as text ("per tensor", "per channel", "group 64", "block 32", "super-block 256"). */
const char *tui_group_name(int mi, int group, char *buf, size_t cap);

#endif
