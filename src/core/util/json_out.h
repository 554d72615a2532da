/* json_out.h — the one way quantbench writes JSON: values built as jansson trees (keys in the
 * order they were added), numbers rounded to the precision a caller asks, strings made valid
 * UTF-8, dumped by jansson and written through an atomic file. Used by the scan results
 * (eval/sensitivity.c) and the Lua binding's qb.write_json / qb.to_json. */
#ifndef QB_JSON_OUT_H
#define QB_JSON_OUT_H

#include <jansson.h>

#include "../qb.h"

/* Dump flags every writer uses: keys in insertion order, reals printed with up to 15
 * significant digits, so a value rounded by qb_json_num prints as its short decimal. */
#define QB_JSON_FLAGS (JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15))

/* A JSON string of n bytes of s; bytes that are not valid UTF-8 become U+FFFD. New reference
 * (caller owns it), NULL when out of memory. */
json_t *qb_json_text(const char *s, size_t n);

/* A JSON number: v rounded as printf's fmt would print it (fmt such as "%.6f", "%.3g"; NULL
 * keeps v as it is), or null when v is NaN or infinite (JSON has neither). New reference. */
json_t *qb_json_num(double v, const char *fmt);

/* Set key of obj to a new reference (stolen, as json_object_set_new); returns false when
 * value is NULL (out of memory) or the set fails. Chains: ok &= qb_json_set(...). */
bool qb_json_set(json_t *obj, const char *key, json_t *value);

/* value dumped with flags (QB_JSON_FLAGS | JSON_INDENT(2) etc.), a newline after it, written
 * atomically to path. On failure the target is left as it was; the message names path. */
qb_status qb_json_save(qb_ctx *ctx, const json_t *value, size_t flags, const char *path);

#endif
