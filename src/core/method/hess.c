/* hess.c — blocked quadratic forms with XᵀX (see hess.h): 4 × 4 register tiles of dot
 * products (rows of d against rows of H, which are its columns: H is symmetric), H taken in
 * panels of HB rows so that a panel stays in cache while a block of RB rows of d passes. */
#include "hess.h"
#include "kernels.h"

#include <math.h>
#include <stdlib.h>

enum { RB = 32, HB = 32 };

float *qb_hess_to_f32(const double *h, int64_t n)
{
    float *hf = malloc((size_t)(n * n) * sizeof *hf);
    if (hf)
        for (int64_t i = 0; i < n * n; i++) hf[i] = (float)h[i];
    return hf;
}

double qb_hess_quad_rows(const float *hf, const float *d, int64_t rows, int64_t n)
{
    const qb_kernel_table *k = qb_kernels();
    const int64_t nblk = (rows + RB - 1) / RB;
    double *parts = malloc((size_t)nblk * sizeof *parts), tot = 0;
    if (!parts) return NAN;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t b = 0; b < nblk; b++) {
        const int64_t r0 = b * RB, r1 = r0 + RB < rows ? r0 + RB : rows;
        double part = 0;
        float y[16];
        for (int64_t j0 = 0; j0 < n; j0 += HB) {
            const int64_t j1 = j0 + HB < n ? j0 + HB : n;
            for (int64_t r = r0; r < r1; r += 4) {
                const int nr = r1 - r < 4 ? (int)(r1 - r) : 4;
                for (int64_t j = j0; j < j1; j += 4) {
                    const int nc = j1 - j < 4 ? (int)(j1 - j) : 4;
                    k->tile_f32((int)n, d + r * n, (size_t)n, nr, hf + j * n, (size_t)n, nc, y, 4);
                    for (int c = 0; c < nc; c++)
                        for (int i = 0; i < nr; i++) part += (double)y[c * 4 + i] * d[(r + i) * n + j + c];
                }
            }
        }
        parts[b] = part;
    }
    for (int64_t b = 0; b < nblk; b++) tot += parts[b]; /* same order for any thread count */
    free(parts);
    return tot;
}
