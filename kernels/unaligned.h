/* unaligned.h — reading little-endian fields from any address of a packed block (memcpy
 * compiles to a plain load; a cast would be undefined behaviour on unaligned data). */
#ifndef QB_UNALIGNED_H
#define QB_UNALIGNED_H

#include <stdint.h>
#include <string.h>

static inline __attribute__((always_inline)) uint16_t rd16(const void *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline __attribute__((always_inline)) uint32_t rd32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline __attribute__((always_inline)) float rdf32(const void *p)
{
    float v;
    memcpy(&v, p, sizeof v);
    return v;
}

#endif
