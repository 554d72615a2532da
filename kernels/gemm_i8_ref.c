/* gemm_i8_ref.c — the int8 GEMM tile behind W8A8 (SmoothQuant, LLM.int8(), activation
 * quantization): the scalar spec. Weights are the int8 rows of kernels/fmt_int_ref.c (codes
 * 0..255 with zero point 128, so a weight is code − 128), activations signed int8 in
 * −127..127 (per-token or per-tensor scales applied by the caller). Sums are exact in int32
 * for rows up to 2^31 / (128 · 127) ≈ 132 000 elements. */
#include "kernels.h"

void qb_gemm_i8_ref(int n, const uint8_t *w, size_t ldw, int nr, const int8_t *x, size_t ldx, int nc, int32_t *y,
                    size_t ldy)
{
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < nc; c++) {
            const uint8_t *wr = w + (size_t)r * ldw;
            const int8_t *xc = x + (size_t)c * ldx;
            int32_t s = 0;
            for (int i = 0; i < n; i++) s += ((int32_t)wr[i] - 128) * (int32_t)xc[i];
            y[(size_t)c * ldy + r] = s;
        }
}
