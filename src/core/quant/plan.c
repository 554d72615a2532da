/* plan.c — quantization plans: glob rules to (format, method, parameters); the grammar of
 * method specifications; parse (v1, v2, the workbench's "# tui methods:" snapshots), print,
 * load, save. */
#include "plan.h"
#include "../util/mapfile.h"
#include "../util/atomic_file.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- method specifications ---------------------------------------------------------- */

typedef enum { P_REAL, P_INT, P_BOOL } param_type;

typedef struct {
    const char *key;
    param_type type;
    double lo, hi;
} param_def;

static const char *const METHOD_NAMES[QB_METHOD_COUNT] = {"rtn", "gptq", "awq", "learned"};

static const param_def PARAMS[QB_METHOD_COUNT][QB_METHOD_MAX_PARAMS + 1] = {
    [QB_METHOD_RTN] = {{NULL, P_REAL, 0, 0}},
    [QB_METHOD_GPTQ] = {{"block", P_INT, 1, 65536}, {"damp", P_REAL, 0, 10}, {"act_order", P_BOOL, 0, 1},
                        {"weighted", P_BOOL, 0, 1}, {NULL, P_REAL, 0, 0}},
    [QB_METHOD_AWQ] = {{"alpha", P_REAL, 0, 1}, {"grid", P_INT, 1, 1000}, {"clip", P_BOOL, 0, 1},
                       {"weighted", P_BOOL, 0, 1}, {NULL, P_REAL, 0, 0}},
    [QB_METHOD_LEARNED] = {{"iters", P_INT, 1, 100000}, {"lr", P_REAL, 0, 1}, {"batch", P_INT, 1, 100000},
                           {"weighted", P_BOOL, 0, 1}, {"scales", P_BOOL, 0, 1}, {NULL, P_REAL, 0, 0}},
};

const char *qb_plan_method_name(qb_method_kind k)
{
    return k >= 0 && k < QB_METHOD_COUNT ? METHOD_NAMES[k] : "?";
}

const char *qb_method_param_name(qb_method_kind kind, int k)
{
    if (kind < 0 || kind >= QB_METHOD_COUNT || k < 0 || k >= QB_METHOD_MAX_PARAMS) return NULL;
    return PARAMS[kind][k].key;
}

qb_status qb_method_spec_init(qb_ctx *ctx, const char *name, qb_method_spec *out)
{
    memset(out, 0, sizeof *out);
    for (int k = 0; k < QB_METHOD_COUNT; k++)
        if (name && !strcasecmp(name, METHOD_NAMES[k])) {
            out->kind = (qb_method_kind)k;
            return QB_OK;
        }
    return qb_fail(ctx, QB_ERR_ARG, "unknown method '%s' (rtn, gptq, awq)", name ? name : "");
}

static void key_list(qb_method_kind kind, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = 0;
    for (int k = 0; PARAMS[kind][k].key && len < cap; k++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", k ? ", " : "", PARAMS[kind][k].key);
    if (!buf[0]) snprintf(buf, cap, "it takes none");
}

qb_status qb_method_spec_set(qb_ctx *ctx, qb_method_spec *s, const char *key, double v)
{
    const char *mname = qb_plan_method_name(s->kind);
    for (int k = 0; s->kind >= 0 && s->kind < QB_METHOD_COUNT && PARAMS[s->kind][k].key; k++) {
        const param_def *d = &PARAMS[s->kind][k];
        if (strcmp(d->key, key)) continue;
        if (s->set & (1u << k)) return qb_fail(ctx, QB_ERR_ARG, "%s: parameter %s given twice", mname, key);
        if (!(v >= d->lo && v <= d->hi))
            return qb_fail(ctx, QB_ERR_ARG, "%s: %s=%g out of range [%g, %g]", mname, key, v, d->lo, d->hi);
        if (d->type != P_REAL && v != floor(v))
            return qb_fail(ctx, QB_ERR_ARG, "%s: %s=%g must be %s", mname, key, v,
                           d->type == P_INT ? "an integer" : "0 or 1 (false or true)");
        s->set |= 1u << k;
        s->value[k] = v;
        return QB_OK;
    }
    char keys[128];
    key_list(s->kind, keys, sizeof keys);
    return qb_fail(ctx, QB_ERR_ARG, "%s has no parameter '%s' (%s)", mname, key, keys);
}

/* "key=value" → key and number (true/false for booleans). */
static qb_status set_pair(qb_ctx *ctx, qb_method_spec *s, char *tok)
{
    char *eq = strchr(tok, '=');
    if (!eq || eq == tok || !eq[1])
        return qb_fail(ctx, QB_ERR_ARG, "expected KEY=VALUE after the method, got '%s'", tok);
    *eq = 0;
    const char *val = eq + 1;
    double v;
    if (!strcasecmp(val, "true")) v = 1;
    else if (!strcasecmp(val, "false")) v = 0;
    else {
        char *end;
        errno = 0;
        v = strtod(val, &end);
        if (end == val || *end || errno) return qb_fail(ctx, QB_ERR_ARG, "%s=%s: not a number", tok, val);
    }
    return qb_method_spec_set(ctx, s, tok, v);
}

/* Parse whitespace-separated tokens (modified in place) into s. */
static qb_status parse_tokens(qb_ctx *ctx, char *text, qb_method_spec *s)
{
    char *save = NULL, *tok = strtok_r(text, " \t", &save);
    if (!tok) return qb_fail(ctx, QB_ERR_ARG, "empty method");
    if (strchr(tok, '='))
        return qb_fail(ctx, QB_ERR_ARG, "parameter '%s' without a method (FORMAT METHOD KEY=VALUE)", tok);
    qb_status st = qb_method_spec_init(ctx, tok, s);
    while (st == QB_OK && (tok = strtok_r(NULL, " \t", &save))) st = set_pair(ctx, s, tok);
    return st;
}

qb_status qb_method_spec_parse(qb_ctx *ctx, const char *text, qb_method_spec *out)
{
    char *copy = strdup(text ? text : "");
    if (!copy) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    qb_status st = parse_tokens(ctx, copy, out);
    free(copy);
    return st;
}

bool qb_method_spec_get(const qb_method_spec *s, const char *key, double *v)
{
    for (int k = 0; s->kind >= 0 && s->kind < QB_METHOD_COUNT && PARAMS[s->kind][k].key; k++)
        if (!strcmp(PARAMS[s->kind][k].key, key) && (s->set & (1u << k))) {
            *v = s->value[k];
            return true;
        }
    return false;
}

int qb_method_spec_format(const qb_method_spec *s, char *buf, size_t cap)
{
    int len = snprintf(buf, cap, "%s", qb_plan_method_name(s->kind));
    for (int k = 0; s->kind >= 0 && s->kind < QB_METHOD_COUNT && PARAMS[s->kind][k].key; k++)
        if (s->set & (1u << k))
            len += snprintf(buf + ((size_t)len < cap ? (size_t)len : cap), (size_t)len < cap ? cap - (size_t)len : 0,
                            " %s=%.9g", PARAMS[s->kind][k].key, s->value[k]);
    return len;
}

bool qb_method_spec_equal(const qb_method_spec *a, const qb_method_spec *b)
{
    if (a->kind != b->kind || a->set != b->set) return false;
    for (int k = 0; k < QB_METHOD_MAX_PARAMS; k++)
        if ((a->set & (1u << k)) && a->value[k] != b->value[k]) return false;
    return true;
}

bool qb_method_spec_needs_calib(const qb_method_spec *s)
{
    return s->kind == QB_METHOD_GPTQ || s->kind == QB_METHOD_AWQ || s->kind == QB_METHOD_LEARNED;
}

/* ---- plans --------------------------------------------------------------------------- */

void qb_plan_init(qb_plan *p) { memset(p, 0, sizeof *p); }

void qb_plan_free(qb_plan *p)
{
    for (int i = 0; i < p->n_rules; i++) free(p->rules[i].pattern);
    free(p->rules);
    qb_plan_init(p);
}

qb_status qb_plan_add_rule(qb_ctx *ctx, qb_plan *p, const char *pattern, const qb_format *fmt,
                           const qb_method_spec *method, int line)
{
    if (!*pattern) return qb_fail(ctx, QB_ERR_ARG, "empty tensor pattern in plan");
    qb_plan_rule *nr = realloc(p->rules, (size_t)(p->n_rules + 1) * sizeof *nr);
    if (!nr) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    p->rules = nr;
    char *pat = strdup(pattern);
    if (!pat) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    qb_plan_rule r = {.pattern = pat, .fmt = *fmt, .line = line};
    if (method) r.method = *method;
    p->rules[p->n_rules++] = r;
    return QB_OK;
}

qb_status qb_plan_add(qb_ctx *ctx, qb_plan *p, const char *pattern, const qb_format *fmt)
{
    return qb_plan_add_rule(ctx, p, pattern, fmt, NULL, 0);
}

qb_status qb_plan_copy(qb_ctx *ctx, const qb_plan *p, qb_plan *out)
{
    qb_plan_init(out);
    for (int i = 0; i < p->n_rules; i++) {
        const qb_plan_rule *r = &p->rules[i];
        qb_status st = qb_plan_add_rule(ctx, out, r->pattern, &r->fmt, &r->method, r->line);
        if (st != QB_OK) {
            qb_plan_free(out);
            return st;
        }
    }
    return QB_OK;
}

int qb_plan_lookup_rule(const qb_plan *p, const char *tensor_name)
{
    for (int i = p->n_rules - 1; i >= 0; i--)
        if (fnmatch(p->rules[i].pattern, tensor_name, 0) == 0) return i;
    return -1;
}

const qb_format *qb_plan_lookup(const qb_plan *p, const char *tensor_name)
{
    int i = qb_plan_lookup_rule(p, tensor_name);
    return i >= 0 ? &p->rules[i].fmt : NULL;
}

bool qb_plan_needs_calib(const qb_plan *p)
{
    for (int i = 0; i < p->n_rules; i++)
        if (qb_method_spec_needs_calib(&p->rules[i].method)) return true;
    return false;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

/* One "PATTERN = FORMAT [METHOD [KEY=VALUE ...]]" line (comments already cut). */
static qb_status parse_rule(qb_ctx *ctx, char *s, int line_no, qb_plan *out)
{
    char *eq = strchr(s, '=');
    if (!eq) return qb_fail(ctx, QB_ERR_FORMAT, "expected 'PATTERN = FORMAT [METHOD KEY=VALUE ...]', got '%s'", s);
    *eq = 0;
    char *pat = trim(s), *rhs = trim(eq + 1), *rest = rhs;
    while (*rest && !isspace((unsigned char)*rest)) rest++;
    if (*rest) *rest++ = 0;
    rest = trim(rest);
    qb_format f;
    qb_status st = qb_format_parse(ctx, rhs, &f);
    if (st != QB_OK) return st;
    qb_method_spec ms = {0};
    if (*rest && (st = parse_tokens(ctx, rest, &ms)) != QB_OK) return st;
    if (!*pat) return qb_fail(ctx, QB_ERR_ARG, "empty tensor pattern");
    return qb_plan_add_rule(ctx, out, pat, &f, &ms, line_no);
}

#define TUI_METHODS_TAG "# tui methods: "

/* The workbench's older snapshots: one letter per rule (r RTN, g GPTQ, a AWQ). */
static void apply_tui_methods(const char *text, qb_plan *p)
{
    const char *tag = strstr(text, TUI_METHODS_TAG);
    if (!tag) return;
    tag += sizeof TUI_METHODS_TAG - 1;
    for (int k = 0; k < p->n_rules && tag[k] && tag[k] != '\n'; k++)
        if (p->rules[k].method.kind == QB_METHOD_RTN && !p->rules[k].method.set)
            p->rules[k].method.kind = tag[k] == 'g' ? QB_METHOD_GPTQ : tag[k] == 'a' ? QB_METHOD_AWQ : QB_METHOD_RTN;
}

qb_status qb_plan_parse(qb_ctx *ctx, const char *name, const char *text, qb_plan *out)
{
    qb_plan_init(out);
    char *copy = strdup(text);
    if (!copy) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    qb_status st = QB_OK;
    int line_no = 0;
    for (char *line = copy, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        line_no++;
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char *s = trim(line);
        if (!*s) continue;
        if ((st = parse_rule(ctx, s, line_no, out)) != QB_OK) {
            char why[sizeof ctx->errmsg];
            snprintf(why, sizeof why, "%s", ctx->errmsg);
            qb_fail(ctx, st, "%s:%d: %s", name, line_no, why);
            break;
        }
    }
    free(copy);
    if (st == QB_OK) apply_tui_methods(text, out);
    if (st != QB_OK) qb_plan_free(out);
    return st;
}

qb_status qb_plan_load(qb_ctx *ctx, const char *path, qb_plan *out)
{
    char *text;
    qb_status st = qb_read_file(ctx, path, (size_t)16 << 20, &text, NULL);
    if (st != QB_OK) return st;
    st = qb_plan_parse(ctx, path, text, out);
    free(text);
    return st;
}

char *qb_plan_to_string(const qb_plan *p)
{
    size_t cap = 64 + (size_t)p->n_rules * 200, len = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
    len += (size_t)snprintf(s + len, cap - len, "# quantbench plan v2 (last matching rule wins)\n");
    for (int i = 0; i < p->n_rules; i++) {
        const qb_plan_rule *r = &p->rules[i];
        char fname[64], meth[160] = "";
        qb_format_name(&r->fmt, fname, sizeof fname);
        if (r->method.kind != QB_METHOD_RTN || r->method.set) {
            meth[0] = ' ';
            qb_method_spec_format(&r->method, meth + 1, sizeof meth - 1);
        }
        size_t need = strlen(r->pattern) + strlen(fname) + strlen(meth) + 8;
        if (len + need >= cap) {
            cap = (cap + need) * 2;
            char *ns = realloc(s, cap);
            if (!ns) {
                free(s);
                return NULL;
            }
            s = ns;
        }
        len += (size_t)snprintf(s + len, cap - len, "%s = %s%s\n", r->pattern, fname, meth);
    }
    return s;
}

qb_status qb_plan_save(qb_ctx *ctx, const qb_plan *p, const char *path)
{
    char *text = qb_plan_to_string(p);
    if (!text) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    qb_atomic_file f;
    qb_status st = qb_atomic_begin(ctx, path, &f);
    if (st == QB_OK) {
        if (qb_atomic_write(&f, text, strlen(text))) {
            st = qb_atomic_commit(ctx, &f);
        } else {
            st = qb_fail(ctx, QB_ERR_IO, "%s: write failed: %s; the file was not changed", path, strerror(errno));
            qb_atomic_abort(&f);
        }
    }
    free(text);
    return st;
}
