/* iq_grids.h — the lattice tables of the grid i-quants (IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S,
 * IQ1_M), format data from ggml (iq_grids.c says where from). Each uint64 is one grid point:
 * 8 bytes, element j in byte j. The IQ2 grids hold unsigned magnitudes 8, 25, 43 (0x08, 0x19,
 * 0x2b); the IQ1 grid holds signed bytes -1, 0, 1. qb_iq2_signs[k] is the 8-bit sign pattern
 * of the 7-bit code k (bit 7 makes the count of negatives even). */
#ifndef QB_IQ_GRIDS_H
#define QB_IQ_GRIDS_H

#include <stdint.h>

#define QB_IQ1S_NGRID 2048

extern const uint8_t qb_iq2_signs[128];
extern const uint64_t qb_iq2_sign_bytes[128]; /* the same as bytes +1 / -1, for vpsignb */
extern const uint64_t qb_iq2xxs_grid[256];
extern const uint64_t qb_iq2xs_grid[512];
extern const uint64_t qb_iq2s_grid[1024];
extern const uint64_t qb_iq1s_grid[QB_IQ1S_NGRID];

#endif
