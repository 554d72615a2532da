/* methods.h — the table of quantization methods the workbench cycles through, each with the
 * bit widths and granularities it offers and how a (bits, granularity) choice becomes a
 * storage format. Calibration methods (GPTQ, AWQ) are rows with a `job` hook: their analyses
 * and applies run core's method on the session's calibration as cancellable jobs. */
#ifndef QB_TUI_METHODS_H
#define QB_TUI_METHODS_H

#include "core/quant/format.h"

#define TUI_MAX_CHOICES 8

typedef struct {
    const char *name;  /* shown in the header: "RTN asym" */
    const char *key;   /* used by the command line: "rtn-asym" */
    int bits[TUI_MAX_CHOICES];  /* offered bit widths, descending, 0-terminated */
    int groups[TUI_MAX_CHOICES];/* offered granularities (QB_GROUP_TENSOR, QB_GROUP_CHANNEL, or a
                                   group/block size), terminated by -2 */
    /* The storage format for a choice; false when the pair is not offered. */
    bool (*format)(int bits, int group, qb_format *out);
    /* Calibration methods: non-NULL means the choice needs calibration data (:calib) and its
     * analysis and apply run core's method of that name (qb_method_parse: "gptq", "awq"). */
    const char *job;
} tui_method;

/* The methods (static table) and their count. */
const tui_method *tui_methods(int *count);
/* Index of the method whose key is name (case-insensitive), or -1. */
int tui_method_find(const char *name);
/* Offered bits closest to want (ties to the larger), for method mi. */
int tui_method_nearest_bits(int mi, int want);
/* Offered granularity equal to want, else the method's first one. */
int tui_method_nearest_group(int mi, int want);
/* Next / previous offered bits or granularity (wrapping). dir = +1 or -1. */
int tui_method_step_bits(int mi, int bits, int dir);
int tui_method_step_group(int mi, int group, int dir);
/* Granularity as text ("tensor", "channel", "group 64", "block 32", "super-block 256"). */
const char *tui_group_name(int mi, int group, char *buf, size_t cap);

#endif
