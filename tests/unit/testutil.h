/* testutil.h — shared helpers for the cmocka unit tests: where the reference models live
 * (QB_MODELS, default ../shared/models; QB_DATA, default ../shared/data) and small file
 * utilities. Tests run from the project root. */
#ifndef QB_TESTUTIL_H
#define QB_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

/* Path of a file under the models folder, in a static rotating buffer (8 slots). */
static inline const char *qbt_model_path(const char *rel)
{
    static char bufs[8][1024];
    static int slot;
    const char *base = getenv("QB_MODELS");
    if (!base || !*base) base = "../shared/models";
    char *b = bufs[slot++ & 7];
    snprintf(b, sizeof bufs[0], "%s/%s", base, rel);
    return b;
}

static inline const char *qbt_data_path(const char *rel)
{
    static char bufs[4][1024];
    static int slot;
    const char *base = getenv("QB_DATA");
    if (!base || !*base) base = "../shared/data";
    char *b = bufs[slot++ & 3];
    snprintf(b, sizeof bufs[0], "%s/%s", base, rel);
    return b;
}

/* Read a whole file into a malloc'd NUL-terminated buffer; fails the test if absent. */
static inline char *qbt_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open fixture %s (set QB_MODELS / QB_DATA?)", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = 0;
    fclose(f);
    if (len) *len = (size_t)n;
    return buf;
}

/* Write bytes to a fresh temp file under $TMPDIR (or /tmp); returns a malloc'd path. */
static inline char *qbt_write_temp(const char *tag, const void *data, size_t len)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = "/tmp";
    char *path = malloc(1024);
    snprintf(path, 1024, "%s/qbtest-%s-XXXXXX", tmp, tag);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
    return path;
}

/* xorshift64: deterministic pseudo-random numbers for a test, state kept by the caller. */
static inline uint64_t qbt_xorshift(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}
/* Uniform in [-1, 1). */
static inline float qbt_frand(uint64_t *state)
{
    return (float)((qbt_xorshift(state) >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

#endif
