/* sha256.h — SHA-256 (FIPS 180-4) of a byte string, for the recipe an export records (the
 * calibration text's digest). No linked library offers one (OpenSSL is not linked). */
#ifndef QB_SHA256_H
#define QB_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* The 32-byte digest of data[0..n). */
void qb_sha256(const void *data, size_t n, uint8_t out[32]);
/* The same as 64 lowercase hex digits and a NUL. */
void qb_sha256_hex(const void *data, size_t n, char out[65]);

#endif
