/* normalize.c — the normalizer the tokenizers run on each stretch of text between added
 * tokens: Unicode NFC (Qwen2's tokenizer.json), then the SentencePiece-style "▁" in front and
 * ' ' -> "▁" (Llama 2 / Gemma tokenizer.json, llama.cpp's space prefix and whitespace escape);
 * and the Unicode character classes added-token matching needs. The Unicode tables are
 * libunistring's (u8_normalize, uc_is_property_*), not ours. */
#include "tok_internal.h"

#include <stdlib.h>
#include <string.h>
#include <unictype.h>
#include <uninorm.h>
#include <unistr.h>

static const char META[] = "\xe2\x96\x81"; /* U+2581, SentencePiece's space */

bool tok_cp_is_space(uint32_t cp)
{
    return uc_is_property_white_space((ucs4_t)cp);
}

bool tok_cp_is_word(uint32_t cp)
{
    ucs4_t c = (ucs4_t)cp;
    return uc_is_property_alphabetic(c) || uc_is_general_category(c, UC_CATEGORY_M) ||
           uc_is_general_category(c, UC_CATEGORY_Nd) || uc_is_general_category(c, UC_CATEGORY_Pc) ||
           uc_is_property_join_control(c);
}

static bool all_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80) return false;
    return true;
}

/* NFC of s[0..n) into a malloc'd *out: each valid UTF-8 run normalized on its own, invalid
 * bytes copied through. */
static qb_status nfc(qb_ctx *ctx, const char *s, size_t n, char **out, size_t *out_n)
{
    size_t cap = n + n / 2 + 16, o = 0;
    char *r = malloc(cap);
    if (!r) goto nomem;
    const uint8_t *p = (const uint8_t *)s, *end = p + n;
    while (p < end) {
        const uint8_t *bad = u8_check(p, (size_t)(end - p));
        size_t run = bad ? (size_t)(bad - p) : (size_t)(end - p);
        uint8_t *norm = NULL;
        size_t nl = 0;
        if (run > 0 && !(norm = u8_normalize(UNINORM_NFC, p, run, NULL, &nl))) goto nomem; /* valid input: ENOMEM */
        size_t need = o + nl + (bad ? 1 : 0);
        if (need > cap) {
            while (cap < need) cap *= 2;
            char *g = realloc(r, cap);
            if (!g) {
                free(norm);
                goto nomem;
            }
            r = g;
        }
        if (nl) memcpy(r + o, norm, nl);
        o += nl;
        free(norm);
        p += run;
        if (bad) r[o++] = (char)*p++; /* one invalid byte, as it is */
    }
    *out = r;
    *out_n = o;
    return QB_OK;
nomem:
    free(r);
    return qb_fail(ctx, QB_ERR_NOMEM, "tokenize: out of memory");
}

qb_status tok_normalize(qb_ctx *ctx, const qb_tokenizer *t, const char *s, size_t n, char **buf, const char **out,
                        size_t *out_n)
{
    *buf = NULL;
    *out = s;
    *out_n = n;
    if (t->nfc && !all_ascii(s, n)) {
        qb_status st = nfc(ctx, s, n, buf, out_n);
        if (st != QB_OK) return st;
        s = *out = *buf;
        n = *out_n;
    }
    if (!(t->norm_prepend && n > 0) && !(t->norm_spaces && memchr(s, ' ', n))) return QB_OK;
    size_t spaces = 0;
    if (t->norm_spaces)
        for (size_t i = 0; i < n; i++) spaces += s[i] == ' ';
    char *r = malloc(n + 2 * spaces + 4), *o = r;
    if (!r) {
        free(*buf);
        *buf = NULL;
        return qb_fail(ctx, QB_ERR_NOMEM, "tokenize: out of memory");
    }
    if (t->norm_prepend && n > 0) {
        memcpy(o, META, 3);
        o += 3;
    }
    for (size_t i = 0; i < n; i++) {
        if (t->norm_spaces && s[i] == ' ') {
            memcpy(o, META, 3);
            o += 3;
        } else {
            *o++ = s[i];
        }
    }
    free(*buf);
    *buf = r;
    *out = r;
    *out_n = (size_t)(o - r);
    return QB_OK;
}
