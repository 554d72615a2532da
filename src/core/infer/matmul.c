/* matmul.c — the forward pass's matrix multiply, one branch per storage kind:
 *   F32 / F16 / BF16: one token is a dot product per weight row; several tokens go through
 *     the kernels' register tile 4 rows at a time (F16 converted in registers).
 *   ggml block types: activations quantized once per call to the type's 8-bit format; the
 *     GEMM tile (Q8_0, Q4_0, IQ4_NL: 16 rows x 16 tokens) where the CPU has one, else each
 *     weight row meets up to 4 tokens at a time in qdot.
 *   INT with groups of whole 32-element blocks (every group size; per row when n % 32 == 0):
 *     activations quantized once per call to 8 bits (Q8_0, as for the ggml formats), then an
 *     exact integer dot per block in int_tile_q8, 4 rows x 4 tokens (the scalar table too).
 *   other non-ggml formats (INT, NF4, FP8, MXFP4, …): the tile entry their row of the format
 *     table lists for this CPU decodes the packed bytes in registers, 4 rows x 4 tokens, times
 *     f32 activations; formats whose row asks for 8-bit activations (INT) try the integer
 *     paths above first.
 * No f32 copy of a quantized weight ever exists (the scalar table's non-ggml path converts 4
 * rows at a time into a small buffer). One token (generation, memory-bound): each thread
 * streams one contiguous share of the rows (static schedule; small dynamic chunks cost a
 * third of the speed there by breaking the prefetch streams). Tiles over many tokens hand out
 * rows in small dynamic chunks: on a shared machine a thread that loses its core for a while
 * then does less of the work instead of making the others wait for it at the end. */
#include "matmul.h"
#include "kernels.h"
#include "fmt.h"
#include "../quant/format_traits.h"

#include <stdlib.h>

static const void *row_ptr(const qb_tensor *w, int64_t r)
{
    return (const char *)w->data + (size_t)r * qb_format_row_bytes(&w->fmt, w->ne[0]);
}

void qb_tensor_get_row(const qb_tensor *w, int64_t r, float *out)
{
    const qb_kernel_table *k = qb_kernels();
    int n = (int)w->ne[0];
    const void *p = row_ptr(w, r);
    switch (w->type) {
    case QB_TYPE_F16: k->f16_to_f32(n, p, out); break;
    case QB_TYPE_BF16: k->bf16_to_f32(n, p, out); break;
    case QB_TYPE_F32: for (int i = 0; i < n; i++) out[i] = ((const float *)p)[i]; break;
    default: qb_dequantize_row(&w->fmt, p, out, n); break;
    }
}

static void matvec(const qb_kernel_table *k, const qb_tensor *w, const float *x, float *y)
{
    int n = (int)w->ne[0];
    int64_t rows = w->ne[1];
    switch (w->type) {
    case QB_TYPE_F16: {
        const uint16_t *d = w->data;
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < rows; r++) y[r] = k->dot_f16(n, d + r * n, x);
        break;
    }
    case QB_TYPE_BF16: {
        const uint16_t *d = w->data;
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < rows; r++) y[r] = k->dot_bf16(n, d + r * n, x);
        break;
    }
    default: {
        const float *d = w->data;
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < rows; r++) y[r] = k->dot_f32(n, d + r * n, x);
        break;
    }
    }
}

bool qb_matmul_runs_packed(int type) { return qb_type_runs_packed(type); }

/* Several matrices that read the same activations (one or up to QB_MATMUL_MULTI_MAX: Q, K, V
 * or gate, up) run as one: their rows (or row pairs) numbered one after the other, so the
 * activations are quantized once and one parallel region covers all of them. Units of
 * matrix i are off[i] .. off[i+1]-1. */
typedef struct {
    int nw;
    int64_t off[QB_MATMUL_MULTI_MAX + 1];
} units;

static units units_of(const qb_tensor *const *ws, int nw, int per)
{
    units u = {.nw = nw};
    for (int i = 0; i < nw; i++) u.off[i + 1] = u.off[i] + (ws[i]->ne[1] + per - 1) / per;
    return u;
}

static int unit_matrix(const units *u, int64_t g)
{
    int i = 0;
    while (i + 1 < u->nw && g >= u->off[i + 1]) i++;
    return i;
}

static void matmul_packed(const qb_kernel_table *k, const qb_tensor *const *ws, int nw, const float *x, int T,
                          float *const *ys)
{
    const int type = ws[0]->type, n = (int)ws[0]->ne[0];
    int at = qb_act_type(type);
    size_t arow = qb_type_row_bytes(at, n), wrow = qb_type_row_bytes(type, n);
    uint8_t *xq = malloc((size_t)T * arow);
    if (!xq) { /* out of memory: fall back to row-by-row dequantization, slow but correct */
        float *row = malloc((size_t)n * sizeof(float));
        for (int i = 0; i < nw; i++)
            for (int64_t r = 0; row && r < ws[i]->ne[1]; r++) {
                qb_tensor_get_row(ws[i], r, row);
                for (int t = 0; t < T; t++) ys[i][(size_t)t * ws[i]->ne[1] + r] = k->dot_f32(n, row, x + (size_t)t * n);
            }
        free(row);
        return;
    }
    void (*qdot)(int, const void *, const void *, size_t, int, float *) = k->qdot[type];
    const units u = units_of(ws, nw, 1);
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (int t = 0; t < T; t++) k->quantize_act[at](x + (size_t)t * n, xq + (size_t)t * arow, n);
#pragma omp for schedule(static)
        for (int64_t g = 0; g < u.off[nw]; g++) {
            const int i = unit_matrix(&u, g);
            const int64_t r = g - u.off[i], rows = ws[i]->ne[1];
            const uint8_t *wr = (const uint8_t *)ws[i]->data + (size_t)r * wrow;
            float out[4];
            for (int t0 = 0; t0 < T; t0 += 4) {
                int nc = T - t0 < 4 ? T - t0 : 4;
                qdot(n, wr, xq + (size_t)t0 * arow, arow, nc, out);
                for (int c = 0; c < nc; c++) ys[i][(size_t)(t0 + c) * rows + r] = out[c];
            }
        }
    }
    free(xq);
}

/* One token through the kernels' gemv (Q4_0 where the CPU has one and it beats qdot here:
 * qb_gemv_preferred): the activations laid out
 * once to match the weight rows' bytes, then one kernel call per row, each thread streaming
 * one contiguous share of the rows. False (nothing done) when there is no such kernel or no
 * memory for the activations: the caller takes the qdot path. */
static bool matmul_gemv(const qb_kernel_table *k, const qb_tensor *const *ws, int nw, const float *x,
                        float *const *ys)
{
    const int type = ws[0]->type, n = (int)ws[0]->ne[0];
    float (*gemv)(int, const void *, const void *) = k->gemv_q[type];
    if (!gemv || !k->quantize_act_gemv[type] || !qb_gemv_preferred(type)) return false;
    uint8_t *xg = malloc(qb_act_gemv_row_bytes(n));
    if (!xg) return false;
    k->quantize_act_gemv[type](x, xg, n);
    const size_t wrow = qb_type_row_bytes(type, n);
    const units u = units_of(ws, nw, 1);
#pragma omp parallel for schedule(static)
    for (int64_t g = 0; g < u.off[nw]; g++) {
        const int i = unit_matrix(&u, g);
        const int64_t r = g - u.off[i];
        ys[i][r] = gemv(n, (const uint8_t *)ws[i]->data + (size_t)r * wrow, xg);
    }
    free(xg);
    return true;
}

/* Several tokens through the kernels' GEMM tile (Q8_0, Q4_0, IQ4_NL where the CPU has one):
 * activations quantized once into the tile layout, then QB_GEMM_ROWS rows × QB_GEMM_TOKENS
 * tokens per kernel call, tokens in chunks whose activations stay in L2. False (nothing done)
 * when there is no tile, no memory for the activations or rows too far apart for the tile:
 * the caller takes the qdot path. */
static bool matmul_tiled(const qb_kernel_table *k, const qb_tensor *const *ws, int nw, const float *x, int T,
                         float *const *ys)
{
    const int type = ws[0]->type;
    void (*gemm)(int, const void *, size_t, int, const void *, size_t, int, float *, size_t) = k->gemm_q[type];
    if (T < 2 || !gemm || !k->quantize_act_tile) return false;
    const int n = (int)ws[0]->ne[0];
    const size_t ab = qb_act_tile_row_bytes(n), wrow = qb_type_row_bytes(type, n);
    if (wrow * (QB_GEMM_ROWS - 1) >= (size_t)1 << 31) return false;
    uint8_t *xa = malloc((size_t)T * ab);
    if (!xa) return false;
    int chunk = (int)((512 * 1024) / ab) / QB_GEMM_TOKENS * QB_GEMM_TOKENS;
    if (chunk < QB_GEMM_TOKENS) chunk = QB_GEMM_TOKENS;
    const units u = units_of(ws, nw, QB_GEMM_ROWS);
#pragma omp parallel
    {
#pragma omp for schedule(static)
    for (int t = 0; t < T; t++) k->quantize_act_tile(x + (size_t)t * n, xa + (size_t)t * ab, n);
    for (int t0 = 0; t0 < T; t0 += chunk) {
        const int t1 = T - t0 < chunk ? T : t0 + chunk;
#pragma omp for schedule(dynamic, 1) nowait
        for (int64_t g = 0; g < u.off[nw]; g++) {
            const int i = unit_matrix(&u, g);
            const int64_t rows = ws[i]->ne[1], r0 = QB_GEMM_ROWS * (g - u.off[i]);
            const int nr = rows - r0 < QB_GEMM_ROWS ? (int)(rows - r0) : QB_GEMM_ROWS;
            const uint8_t *wr = (const uint8_t *)ws[i]->data + (size_t)r0 * wrow;
            for (int c0 = t0; c0 < t1; c0 += QB_GEMM_TOKENS)
                gemm(n, wr, wrow, nr, xa + (size_t)c0 * ab, ab, t1 - c0 < QB_GEMM_TOKENS ? t1 - c0 : QB_GEMM_TOKENS,
                     ys[i] + (size_t)c0 * rows + r0, (size_t)rows);
        }
    }
    }
    free(xa);
    return true;
}

/* ggml block types (one matrix, or several sharing the activations): one token through the
 * gemv where the CPU has one, several through the GEMM tile, else qdot. */
static void matmul_ggml(const qb_kernel_table *k, const qb_tensor *const *ws, int nw, const float *x, int T,
                        float *const *ys)
{
    if (T == 1 && matmul_gemv(k, ws, nw, x, ys)) return;
    if (!matmul_tiled(k, ws, nw, x, T, ys)) matmul_packed(k, ws, nw, x, T, ys);
}

/* One token of an INT format through the kernels' int_gemv (4-bit groups of 128/256, 8-bit;
 * qb_int_gemv_supported): the Q8_0 activations laid out to match the rows' code bytes, each
 * thread streaming one contiguous share of the rows. False: not taken (no kernel, shape, or
 * memory). */
static bool matmul_int_gemv(const qb_kernel_table *k, const qb_tensor *w, const qb_fmt_params *p, const float *x,
                            float *y)
{
    const int n = (int)w->ne[0];
    void (*quant)(const float *, void *, int) = k->quantize_act[QB_TYPE_Q8_0];
    if (!k->int_gemv || !quant || !qb_int_gemv_supported(p, n)) return false;
    const size_t qb8 = qb_type_row_bytes(QB_TYPE_Q8_0, n);
    uint8_t *xq = malloc(qb8 + qb_int_gemv_act_bytes(p->bits, n));
    if (!xq) return false;
    uint8_t *xg = xq + qb8;
    quant(x, xq, n);
    qb_int_gemv_act(p->bits, xq, n, xg);
    const int64_t rows = w->ne[1];
    const size_t wrow = qb_format_row_bytes(&w->fmt, n);
    const uint8_t *wd = w->data;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) y[r] = k->int_gemv(p, n, wd + (size_t)r * wrow, xg);
    free(xq);
    return true;
}

/* Row block b (4 rows) of INT weights times tokens t0 .. t1-1 (activations ab bytes apart). */
static inline void int_tile_block(const qb_kernel_table *k, const qb_fmt_params *p, int n, const uint8_t *wd,
                                  size_t wrow, int64_t rows, int64_t b, const uint8_t *xa, size_t ab, int t0, int t1,
                                  float *y)
{
    const int64_t r0 = 4 * b;
    const int nr = rows - r0 < 4 ? (int)(rows - r0) : 4;
    for (int c0 = t0; c0 < t1; c0 += 4)
        k->int_tile_q8(p, n, wd + (size_t)r0 * wrow, wrow, nr, xa + (size_t)c0 * ab, ab, t1 - c0 < 4 ? t1 - c0 : 4,
                       y + (size_t)c0 * rows + r0, (size_t)rows);
}

/* INT weights whose groups hold whole 32-element blocks (qb_int_q8_supported) through the
 * kernels' integer tile: activations quantized once per call with the Q8_0 quantizer (the
 * 8-bit activations of the ggml formats) and rearranged for the kernel, then 4 rows × up to 4
 * tokens per int_tile_q8 call. Up to 4 tokens (generation): one pass, each thread one
 * contiguous share of the rows; more: tokens in chunks whose activations stay in L2, rows in
 * small dynamic chunks. False (nothing done) when the kernels cannot take these parameters or
 * there is no memory: the caller then takes fmt_tile with f32 activations. */
static bool matmul_int_q8(const qb_kernel_table *k, const qb_tensor *w, const qb_fmt_params *p, const float *x, int T,
                          float *y)
{
    const int n = (int)w->ne[0];
    void (*quant)(const float *, void *, int) = k->quantize_act[QB_TYPE_Q8_0];
    if (!k->int_tile_q8 || !quant || !qb_int_q8_supported(p, n)) return false;
    const size_t ab = qb_int_act_row_bytes(n), qb8 = qb_type_row_bytes(QB_TYPE_Q8_0, n);
    uint8_t *xa = malloc((size_t)T * (ab + qb8));
    if (!xa) return false;
    uint8_t *xq = xa + (size_t)T * ab;
    const int64_t rows = w->ne[1], nblk = (rows + 3) / 4;
    const size_t wrow = qb_format_row_bytes(&w->fmt, n);
    const uint8_t *wd = w->data;
    int chunk = (int)((256 * 1024) / ab) & ~3;
    if (chunk < 4) chunk = 4;
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (int t = 0; t < T; t++) {
            quant(x + (size_t)t * n, xq + (size_t)t * qb8, n);
            qb_int_act_from_q8_0(n, xq + (size_t)t * qb8, xa + (size_t)t * ab);
        }
        if (T <= 4) {
#pragma omp for schedule(static)
            for (int64_t b = 0; b < nblk; b++) int_tile_block(k, p, n, wd, wrow, rows, b, xa, ab, 0, T, y);
        } else {
            for (int t0 = 0; t0 < T; t0 += chunk) {
                const int t1 = T - t0 < chunk ? T : t0 + chunk;
#pragma omp for schedule(dynamic, 4) nowait
                for (int64_t b = 0; b < nblk; b++) int_tile_block(k, p, n, wd, wrow, rows, b, xa, ab, t0, t1, y);
            }
        }
    }
    free(xa);
    return true;
}

/* Weights of a non-ggml format through its tile entry (the format table's row, chosen for
 * this kernel table): 4 rows × up to 4 tokens per call, weights decoded in registers; tokens
 * in chunks whose activations fit in L2. */
static void matmul_fmt(qb_fmt_tile_fn tile, const qb_tensor *w, const qb_fmt_params *p, const float *x, int T,
                       float *y)
{
    const int n = (int)w->ne[0];
    const int64_t rows = w->ne[1], nblk = (rows + 3) / 4;
    const size_t wrow = qb_format_row_bytes(&w->fmt, n);
    const uint8_t *wd = w->data;
    int chunk = (int)((512 * 1024 / sizeof(float)) / (size_t)n) & ~3;
    if (chunk < 4) chunk = 4;
#pragma omp parallel
    for (int t0 = 0; t0 < T; t0 += chunk) {
        const int t1 = T - t0 < chunk ? T : t0 + chunk;
#pragma omp for schedule(dynamic, 4) nowait
        for (int64_t b = 0; b < nblk; b++) {
            const int64_t r0 = 4 * b;
            const int nr = rows - r0 < 4 ? (int)(rows - r0) : 4;
            for (int c0 = t0; c0 < t1; c0 += 4)
                tile(p, n, wd + (size_t)r0 * wrow, wrow, nr, x + (size_t)c0 * n, (size_t)n, t1 - c0 < 4 ? t1 - c0 : 4,
                     y + (size_t)c0 * rows + r0, (size_t)rows);
        }
    }
}

void qb_matmul(const qb_tensor *w, const float *x, int T, float *y)
{
    const qb_kernel_table *k = qb_kernels();
    bool is_float = w->type == QB_TYPE_F32 || w->type == QB_TYPE_F16 || w->type == QB_TYPE_BF16;
    qb_fmt_params fp;
    qb_fmt_tile_fn tile;
    /* non-ggml formats: what their row of the format table says */
    if (w->type == QB_TYPE_CUSTOM && qb_format_kernels(&w->fmt, k, &fp, &tile)) {
        if (qb_format_traits_of(&w->fmt)->act == QB_FMT_ACT_INT_Q8) {
            if (T == 1 && matmul_int_gemv(k, w, &fp, x, y)) return; /* one token: its own kernel */
            if (matmul_int_q8(k, w, &fp, x, T, y)) return;          /* integer dot, 8-bit activations */
        }
        if (tile) {
            matmul_fmt(tile, w, &fp, x, T, y);
            return;
        }
    } else if (!is_float && qb_matmul_runs_packed(w->type)) {
        const qb_tensor *ws[1] = {w};
        float *ys[1] = {y};
        matmul_ggml(k, ws, 1, x, T, ys);
        return;
    }
    /* the scalar table's non-ggml formats other than the integer path's INT take the
     * row-dequantizing path below (the spec of fmt_tile) even for one token: 4 rows at a time
     * into a small f32 buffer, never the whole tensor */
    if (T == 1 && is_float) {
        matvec(k, w, x, y);
        return;
    }
    int n = (int)w->ne[0];
    int64_t rows = w->ne[1];
    int64_t nblk = (rows + 3) / 4;
    /* tokens in chunks whose activations fit in L2 (512 KiB): each weight row block then meets
     * a chunk from cache; weights are re-read once per chunk. F16 rows go straight into the
     * tile (converted in registers), other types through a 4-row f32 buffer. */
    int chunk = (int)((512 * 1024 / sizeof(float)) / (size_t)n) & ~3;
    if (chunk < 8) chunk = 8;
    if (chunk > T) chunk = T;
#pragma omp parallel
    {
        bool direct = w->type == QB_TYPE_F32 || w->type == QB_TYPE_F16;
        float *buf = direct ? NULL : malloc((size_t)4 * n * sizeof(float));
        for (int t0 = 0; t0 < T; t0 += chunk) {
            int tc = T - t0 < chunk ? T - t0 : chunk;
#pragma omp for schedule(dynamic, 4) nowait
            for (int64_t b = 0; b < nblk; b++) {
                int64_t r0 = b * 4;
                int nr = rows - r0 < 4 ? (int)(rows - r0) : 4;
                const float *wf;
                if (w->type == QB_TYPE_F16) {
                    k->tile_f16(n, (const uint16_t *)w->data + r0 * n, (size_t)n, nr, x + (size_t)t0 * n, (size_t)n,
                                tc, y + (size_t)t0 * rows + r0, (size_t)rows);
                    continue;
                }
                if (w->type == QB_TYPE_F32) {
                    wf = (const float *)w->data + r0 * n;
                } else {
                    for (int r = 0; r < nr; r++) qb_tensor_get_row(w, r0 + r, buf + (size_t)r * n);
                    wf = buf;
                }
                k->tile_f32(n, wf, (size_t)n, nr, x + (size_t)t0 * n, (size_t)n, tc, y + (size_t)t0 * rows + r0,
                            (size_t)rows);
            }
        }
        free(buf);
    }
}

void qb_matmul_multi(const qb_tensor *const *ws, int nw, const float *x, int T, float *const *ys)
{
    const qb_kernel_table *k = qb_kernels();
    bool fused = nw >= 1 && nw <= QB_MATMUL_MULTI_MAX;
    for (int i = 0; fused && i < nw; i++)
        fused = ws[i]->type != QB_TYPE_CUSTOM && ws[i]->type == ws[0]->type &&
                ws[i]->ne[0] == ws[0]->ne[0] && qb_matmul_runs_packed(ws[i]->type);
    if (!fused) {
        for (int i = 0; i < nw; i++) qb_matmul(ws[i], x, T, ys[i]);
        return;
    }
    matmul_ggml(k, ws, nw, x, T, ys);
}
