/* json_out.c — JSON output through jansson (json_out.h). */
#include "json_out.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 when it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t k = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (k == 0 || k > n) return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    unsigned cp = k == 1 ? s[0] : k == 2 ? s[0] & 0x1Fu : k == 3 ? s[0] & 0x0Fu : s[0] & 0x07u;
    for (size_t i = 1; i < k; i++) cp = cp << 6 | (s[i] & 0x3Fu);
    static const unsigned min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0; /* overlong, surrogate */
    return k;
}

json_t *qb_json_text(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t bad = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_len(u + i, n - i);
        bad += k == 0;
        i += k ? k : 1;
    }
    if (bad == 0) return json_stringn(s, n);
    char *fix = malloc(n + 2 * bad + 1), *o = fix; /* each bad byte grows to 3 (U+FFFD) */
    if (!fix) return NULL;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_len(u + i, n - i);
        if (k) memcpy(o, s + i, k), o += k, i += k;
        else memcpy(o, "\xEF\xBF\xBD", 3), o += 3, i++;
    }
    json_t *j = json_stringn(fix, (size_t)(o - fix));
    free(fix);
    return j;
}

json_t *qb_json_num(double v, const char *fmt)
{
    if (!isfinite(v)) return json_null();
    if (fmt) {
        char buf[64];
        snprintf(buf, sizeof buf, fmt, v);
        v = strtod(buf, NULL);
    }
    return json_real(v);
}

bool qb_json_set(json_t *obj, const char *key, json_t *value)
{
    return value && json_object_set_new(obj, key, value) == 0;
}

qb_status qb_json_save(qb_ctx *ctx, const json_t *value, size_t flags, const char *path)
{
    char *text = json_dumps(value, flags);
    if (!text) return qb_fail(ctx, QB_ERR_NOMEM, "%s: out of memory writing JSON", path);
    qb_atomic_file f;
    qb_status st = qb_atomic_begin(ctx, path, &f);
    if (st == QB_OK) {
        if (qb_atomic_write(&f, text, strlen(text)) && qb_atomic_write(&f, "\n", 1)) st = qb_atomic_commit(ctx, &f);
        else {
            qb_atomic_abort(&f);
            st = qb_fail(ctx, QB_ERR_IO, "%s: write failed", path);
        }
    }
    free(text);
    return st;
}
