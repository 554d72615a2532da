/* plan.c — quantization plans: glob rules to formats, parse / print / load / save. */
#include "plan.h"
#include "../util/mapfile.h"
#include "../util/atomic_file.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void qb_plan_init(qb_plan *p) { memset(p, 0, sizeof *p); }

void qb_plan_free(qb_plan *p)
{
    for (int i = 0; i < p->n_rules; i++) free(p->rules[i].pattern);
    free(p->rules);
    qb_plan_init(p);
}

qb_status qb_plan_add(qb_ctx *ctx, qb_plan *p, const char *pattern, const qb_format *fmt)
{
    if (!*pattern) return qb_fail(ctx, QB_ERR_ARG, "empty tensor pattern in plan");
    qb_plan_rule *nr = realloc(p->rules, (size_t)(p->n_rules + 1) * sizeof *nr);
    if (!nr) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    p->rules = nr;
    char *pat = strdup(pattern);
    if (!pat) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    p->rules[p->n_rules++] = (qb_plan_rule){pat, *fmt};
    return QB_OK;
}

const qb_format *qb_plan_lookup(const qb_plan *p, const char *tensor_name)
{
    for (int i = p->n_rules - 1; i >= 0; i--)
        if (fnmatch(p->rules[i].pattern, tensor_name, 0) == 0) return &p->rules[i].fmt;
    return NULL;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
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
        char *eq = strchr(s, '=');
        if (!eq) {
            st = qb_fail(ctx, QB_ERR_FORMAT, "%s:%d: expected 'PATTERN = FORMAT', got '%s'", name, line_no, s);
            break;
        }
        *eq = 0;
        char *pat = trim(s), *fmt_name = trim(eq + 1);
        qb_format f;
        if ((st = qb_format_parse(ctx, fmt_name, &f)) != QB_OK) {
            char why[sizeof ctx->errmsg];
            snprintf(why, sizeof why, "%s", ctx->errmsg);
            qb_fail(ctx, st, "%s:%d: %s", name, line_no, why);
            break;
        }
        if ((st = qb_plan_add(ctx, out, pat, &f)) != QB_OK) {
            qb_fail(ctx, st, "%s:%d: empty tensor pattern", name, line_no);
            break;
        }
    }
    free(copy);
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
    size_t cap = 64 + (size_t)p->n_rules * 160, len = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
    len += (size_t)snprintf(s + len, cap - len, "# quantbench plan v1 (last matching rule wins)\n");
    for (int i = 0; i < p->n_rules; i++) {
        char fname[64];
        qb_format_name(&p->rules[i].fmt, fname, sizeof fname);
        size_t need = strlen(p->rules[i].pattern) + strlen(fname) + 8;
        if (len + need >= cap) {
            cap = (cap + need) * 2;
            char *ns = realloc(s, cap);
            if (!ns) {
                free(s);
                return NULL;
            }
            s = ns;
        }
        len += (size_t)snprintf(s + len, cap - len, "%s = %s\n", p->rules[i].pattern, fname);
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
