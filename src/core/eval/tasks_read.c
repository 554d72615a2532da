/* tasks_read.c — readers of llama-perplexity's three task files (HellaSwag text, Winogrande
 * CSV, the binary multiple-choice file) into a qb_task_set (tasks.h). They split lines and
 * fields where llama-perplexity does, so the tasks and their text are its own; where it would
 * skip a line, crash or read garbage, they stop with an error naming the task. */
#include "tasks.h"
#include "../util/mapfile.h"

#include <stdlib.h>
#include <string.h>

const char *qb_tasks_kind_name(qb_tasks_kind kind)
{
    switch (kind) {
    case QB_TASKS_HELLASWAG: return "hellaswag";
    case QB_TASKS_WINOGRANDE: return "winogrande";
    case QB_TASKS_MC: return "multiple-choice";
    }
    return "?";
}

void qb_tasks_free(qb_task_set *s)
{
    if (!s) return;
    for (int i = 0; i < s->n; i++) {
        qb_task *t = &s->tasks[i];
        free(t->context);
        free(t->after);
        for (int j = 0; t->choices && j < t->n_choices; j++) free(t->choices[j]);
        free(t->choices);
        free(t->labels);
    }
    free(s->tasks);
    free(s->path);
    memset(s, 0, sizeof *s);
}

static char *dup_n(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

/* A new task at the end of s with n choices (zeroed); NULL when out of memory. */
static qb_task *add_task(qb_task_set *s, int *cap, int n_choices)
{
    if (s->n == *cap) {
        int nc = *cap ? 2 * *cap : 64;
        qb_task *t = realloc(s->tasks, (size_t)nc * sizeof *t);
        if (!t) return NULL;
        s->tasks = t;
        *cap = nc;
    }
    qb_task *t = &s->tasks[s->n];
    memset(t, 0, sizeof *t);
    t->choices = calloc(n_choices ? (size_t)n_choices : 1, sizeof *t->choices);
    t->labels = calloc(n_choices ? (size_t)n_choices : 1, sizeof *t->labels);
    if (!t->choices || !t->labels) {
        free(t->choices);
        free(t->labels);
        return NULL;
    }
    t->n_choices = n_choices;
    s->n++;
    return t;
}

/* ---- text files: lines as std::getline splits the prompt llama-perplexity read with -f (which
 * drops one final '\n') ---- */

typedef struct {
    const char *p;
    size_t len;
    bool terminated; /* a '\n' followed it in the prompt */
} line_t;

/* Lines of data[0..len) after dropping one final '\n'; *lines malloc'd. */
static qb_status split_lines(qb_ctx *ctx, const char *path, const char *data, size_t len, line_t **lines,
                             int *n_lines)
{
    *lines = NULL;
    *n_lines = 0;
    if (len && data[len - 1] == '\n') len--;
    int cap = 0, n = 0;
    line_t *v = NULL;
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - data) : len;
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            line_t *nv = realloc(v, (size_t)cap * sizeof *nv);
            if (!nv) {
                free(v);
                return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", path);
            }
            v = nv;
        }
        v[n++] = (line_t){data + i, e - i, nl != NULL};
        if (n == 1 << 30) {
            free(v);
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: too many lines", path);
        }
        i = e + 1;
    }
    *lines = v;
    *n_lines = n;
    return QB_OK;
}

static bool has_nul(const char *p, size_t n) { return memchr(p, 0, n) != NULL; }

/* HellaSwag's gold line: an integer 0..3 (blanks around it allowed, as std::stoi skips them
 * before and stops after; a carriage return of a CRLF file is a blank). */
static int parse_gold(const line_t *l)
{
    size_t i = 0;
    while (i < l->len && (l->p[i] == ' ' || l->p[i] == '\t')) i++;
    if (i >= l->len || l->p[i] < '0' || l->p[i] > '3') return -1;
    int g = l->p[i++] - '0';
    while (i < l->len && (l->p[i] == ' ' || l->p[i] == '\t' || l->p[i] == '\r')) i++;
    return i == l->len ? g : -1;
}

static qb_status read_hellaswag(qb_ctx *ctx, const char *path, const line_t *lines, int n_lines, qb_task_set *s)
{
    if (n_lines == 0) return qb_fail(ctx, QB_ERR_FORMAT, "%s: no tasks (an empty file)", path);
    if (n_lines % 6)
        return qb_fail(ctx, QB_ERR_FORMAT,
                       "%s: task %d (line %d): incomplete, %d of its 6 lines (context, gold index, 4 endings); the file "
                       "has %d lines, not a multiple of 6",
                       path, n_lines / 6 + 1, n_lines / 6 * 6 + 1, n_lines % 6, n_lines);
    int cap = 0;
    for (int k = 0; k < n_lines / 6; k++) {
        const line_t *l = lines + 6 * k;
        for (int j = 0; j < 6; j++)
            if (has_nul(l[j].p, l[j].len))
                return qb_fail(ctx, QB_ERR_FORMAT, "%s: task %d (line %d): a NUL byte", path, k + 1, 6 * k + j + 1);
        int gold = parse_gold(&l[1]);
        if (gold < 0)
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: task %d (line %d): the gold ending index '%.*s' is not 0, 1, 2 or 3",
                           path, k + 1, 6 * k + 2, l[1].len > 40 ? 40 : (int)l[1].len, l[1].p);
        qb_task *t = add_task(s, &cap, 4);
        if (!t) return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", path);
        t->gold = gold;
        t->line = 6 * k + 1;
        t->labels[gold] = 1;
        t->context = dup_n(l[0].p, l[0].len);
        t->after = dup_n("", 0);
        for (int j = 0; j < 4; j++) t->choices[j] = dup_n(l[2 + j].p, l[2 + j].len);
        if (!t->context || !t->after || !t->choices[0] || !t->choices[1] || !t->choices[2] || !t->choices[3])
            return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", path);
    }
    return QB_OK;
}

/* Winogrande's answer field as `std::istringstream >> int` reads it: blanks, an optional sign,
 * digits; what follows is ignored. 0 when it holds no number. */
static int parse_answer(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\v' || p[i] == '\f')) i++;
    bool neg = false;
    if (i < n && (p[i] == '+' || p[i] == '-')) neg = p[i++] == '-';
    if (i >= n || p[i] < '0' || p[i] > '9') return 0;
    long v = 0;
    while (i < n && p[i] >= '0' && p[i] <= '9' && v < 1000) v = v * 10 + (p[i++] - '0');
    return neg ? 0 : v == 1 || v == 2 ? (int)v : 0;
}

static qb_status read_winogrande(qb_ctx *ctx, const char *path, const line_t *lines, int n_lines, qb_task_set *s)
{
    int cap = 0;
    for (int k = 0; k < n_lines; k++) {
        const line_t *l = &lines[k];
        if (!l->terminated) { /* llama-perplexity's loop stops at a line the stream ends in */
            s->last_dropped = true;
            break;
        }
        int task = s->n + 1;
        if (has_nul(l->p, l->len))
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: line %d (task %d): a NUL byte", path, k + 1, task);
        size_t comma[4];
        int nc = 0;
        bool quoted = false;
        for (size_t i = 0; i < l->len && nc < 4; i++) {
            if (quoted) quoted = l->p[i] != '"';
            else if (l->p[i] == ',') comma[nc++] = i;
            else if (l->p[i] == '"') quoted = true;
        }
        if (nc < 4)
            return qb_fail(ctx, QB_ERR_FORMAT,
                           "%s: line %d (task %d): %d of the 4 commas of index,sentence,choice1,choice2,answer%s", path,
                           k + 1, task, nc, quoted ? " (a quote is not closed)" : "");
        const char *ans = l->p + comma[3] + 1;
        size_t ans_len = l->len - comma[3] - 1;
        int answer = parse_answer(ans, ans_len);
        if (k == 0 && !answer) {
            size_t e = ans_len;
            while (e && (ans[e - 1] == '\r' || ans[e - 1] == ' ')) e--;
            if (e == 6 && !memcmp(ans, "answer", 6)) { /* a header line */
                s->skipped = 1;
                continue;
            }
        }
        if (!answer)
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: line %d (task %d): the answer '%.*s' is not 1 or 2", path, k + 1,
                           task, ans_len > 40 ? 40 : (int)ans_len, ans);
        /* the sentence: between the first two commas, less its quotes when it starts with one */
        size_t s0 = comma[0] + 1, s1 = comma[1];
        if (l->p[s0] == '"') s0++, s1--;
        const char *blank = memchr(l->p + s0, '_', s1 - s0);
        if (!blank) return qb_fail(ctx, QB_ERR_FORMAT, "%s: line %d (task %d): no '_' in the sentence", path, k + 1, task);
        qb_task *t = add_task(s, &cap, 2);
        if (!t) return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", path);
        t->gold = answer;
        t->labels[answer - 1] = 1;
        t->line = k + 1;
        t->context = dup_n(l->p + s0, (size_t)(blank - (l->p + s0)));
        t->after = dup_n(blank + 1, (size_t)(l->p + s1 - blank - 1));
        t->choices[0] = dup_n(l->p + comma[1] + 1, comma[2] - comma[1] - 1);
        t->choices[1] = dup_n(l->p + comma[2] + 1, comma[3] - comma[2] - 1);
        if (!t->context || !t->after || !t->choices[0] || !t->choices[1])
            return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", path);
    }
    if (s->n == 0)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: no tasks%s", path,
                       s->last_dropped ? " (llama-perplexity reads a line only when a newline follows it, and the "
                                         "file's final newline does not count)"
                                       : "");
    return QB_OK;
}

/* ---- the binary multiple-choice file ---- */

typedef struct {
    const unsigned char *p;
    size_t len, at;
} rd_t;

static bool rd_u32(rd_t *r, uint32_t *v)
{
    if (r->len - r->at < 4) return false;
    const unsigned char *b = r->p + r->at;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    r->at += 4;
    return true;
}

/* A string (u32 length + bytes) into *out (NULL: skipped). "" when a problem: set *why. */
static bool rd_str(rd_t *r, char **out, const char **why)
{
    uint32_t n;
    if (!rd_u32(r, &n)) return *why = "truncated in a string's length", false;
    if (r->len - r->at < n) return *why = "a string runs past the end of the file", false;
    if (has_nul((const char *)r->p + r->at, n)) return *why = "a string holds a NUL byte", false;
    if (out && !(*out = dup_n((const char *)r->p + r->at, n))) return *why = "out of memory", false;
    r->at += n;
    return true;
}

/* One answer list (mc1 into t when t is non-NULL, else read and dropped: mc2). */
static bool rd_answers(rd_t *r, qb_task *t, int *n_out, const char **why)
{
    uint32_t n;
    if (!rd_u32(r, &n)) return *why = "truncated in an answer count", false;
    if (n > 100) return *why = "more than 100 answers", false;
    *n_out = (int)n;
    if (t) {
        t->choices = calloc(n ? n : 1, sizeof *t->choices);
        t->labels = calloc(n ? n : 1, sizeof *t->labels);
        if (!t->choices || !t->labels) return *why = "out of memory", false;
        t->n_choices = (int)n;
    }
    for (uint32_t j = 0; j < n; j++)
        if (!rd_str(r, t ? &t->choices[j] : NULL, why)) return false;
    if (r->len - r->at < 4 * (size_t)n) return *why = "truncated in the labels", false;
    for (uint32_t j = 0; j < n; j++) {
        uint32_t v;
        rd_u32(r, &v);
        if (t) t->labels[j] = (int)(int32_t)v;
    }
    return true;
}

static qb_status read_mc(qb_ctx *ctx, const char *path, const char *data, size_t len, qb_task_set *s)
{
    rd_t r = {(const unsigned char *)data, len, 0};
    uint32_t n_task;
    if (!rd_u32(&r, &n_task) || n_task == 0)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: no tasks (the u32 task count is %s)", path,
                       len < 4 ? "missing" : "0");
    if ((len - 4) / 4 < n_task)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: %u tasks announced but the file (%zu bytes) cannot hold their offsets",
                       path, n_task, len);
    if (n_task > (1u << 28)) return qb_fail(ctx, QB_ERR_FORMAT, "%s: %u tasks: too many", path, n_task);
    s->tasks = calloc(n_task, sizeof *s->tasks);
    if (!s->tasks) return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", path);
    size_t pos_at = 4;
    r.at = 4 + 4 * (size_t)n_task;
    for (uint32_t k = 0; k < n_task; k++) {
        rd_t pr = {r.p, r.len, pos_at + 4 * (size_t)k};
        uint32_t off;
        rd_u32(&pr, &off);
        if (off != r.at)
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: task %u: its offset says byte %u but it starts at byte %zu", path,
                           k + 1, off, r.at);
        qb_task *t = &s->tasks[k];
        s->n = (int)k + 1;
        t->line = (int)off;
        t->gold = -1;
        const char *why = NULL;
        int n1 = 0, n2 = 0;
        if (!rd_str(&r, &t->context, &why) || !rd_answers(&r, t, &n1, &why) || !rd_answers(&r, NULL, &n2, &why))
            return qb_fail(ctx, why && !strcmp(why, "out of memory") ? QB_ERR_NOMEM : QB_ERR_FORMAT,
                           "%s: task %u (byte %u): %s", path, k + 1, off, why);
        if (!t->context[0]) return qb_fail(ctx, QB_ERR_FORMAT, "%s: task %u (byte %u): an empty question", path, k + 1, off);
        if (n1 == 0) return qb_fail(ctx, QB_ERR_FORMAT, "%s: task %u (byte %u): no answers", path, k + 1, off);
        for (int j = 0; j < n1; j++)
            if (!t->choices[j][0])
                return qb_fail(ctx, QB_ERR_FORMAT, "%s: task %u (byte %u): answer %d is empty", path, k + 1, off, j + 1);
        if (!(t->after = dup_n("", 0))) return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory", path);
    }
    if (r.at != len)
        return qb_fail(ctx, QB_ERR_FORMAT, "%s: %zu bytes follow the last task", path, len - r.at);
    return QB_OK;
}

qb_status qb_tasks_parse(qb_ctx *ctx, qb_tasks_kind kind, const char *path, const char *data, size_t len,
                         qb_task_set *out)
{
    memset(out, 0, sizeof *out);
    out->kind = kind;
    if (!(out->path = dup_n(path, strlen(path)))) return qb_fail(ctx, QB_ERR_NOMEM, "out of memory");
    qb_status st;
    if (kind == QB_TASKS_MC) {
        st = read_mc(ctx, path, data, len, out);
    } else if (kind == QB_TASKS_HELLASWAG || kind == QB_TASKS_WINOGRANDE) {
        line_t *lines;
        int n_lines;
        st = split_lines(ctx, path, data, len, &lines, &n_lines);
        if (st == QB_OK)
            st = kind == QB_TASKS_HELLASWAG ? read_hellaswag(ctx, path, lines, n_lines, out)
                                            : read_winogrande(ctx, path, lines, n_lines, out);
        free(lines);
    } else {
        st = qb_fail(ctx, QB_ERR_ARG, "%s: unknown task kind %d", path, (int)kind);
    }
    if (st != QB_OK) qb_tasks_free(out);
    else out->n_file = out->n;
    return st;
}

qb_status qb_tasks_read(qb_ctx *ctx, qb_tasks_kind kind, const char *path, qb_task_set *out)
{
    memset(out, 0, sizeof *out);
    char *data;
    size_t len;
    qb_status st = qb_read_file(ctx, path, (size_t)1 << 31, &data, &len);
    if (st != QB_OK) return st;
    st = qb_tasks_parse(ctx, kind, path, data, len, out);
    free(data);
    return st;
}
