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

/* The test needs path, a fixture from ../shared (QB_MODELS / QB_DATA). When it is absent the
 * test stops here as skipped (cmocka's "[  SKIPPED ]", counted as a skip by run-tests.sh), or
 * as failed when CI=true, where ../shared is always present: a missing fixture in CI is a
 * broken set-up, not a pass. Returns only when path is readable. */
#define qbt_need(path) qbt_need_at((path), __FILE__, __LINE__)
static inline void qbt_need_at(const char *path, const char *file, int line)
{
    if (access(path, R_OK) == 0) return;
    const char *ci = getenv("CI");
    if (ci && strcmp(ci, "true") == 0) {
        print_error("ERROR: %s missing (CI=true: ../shared must be present)\n", path);
        _fail(file, line);
    }
    print_message("skip: %s missing (set QB_MODELS / QB_DATA)\n", path);
    _skip(file, line);
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
/* A growing byte buffer, for tests that build a file by hand (little-endian host). */
typedef struct {
    uint8_t *p;
    size_t n, cap;
} qbt_bytes;

static inline void qbt_put(qbt_bytes *b, const void *s, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
static inline void qbt_put_i32(qbt_bytes *b, int32_t v) { qbt_put(b, &v, 4); }
static inline void qbt_put_u32(qbt_bytes *b, uint32_t v) { qbt_put(b, &v, 4); }
static inline void qbt_put_u64(qbt_bytes *b, uint64_t v) { qbt_put(b, &v, 8); }

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
