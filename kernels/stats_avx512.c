/* stats_avx512.c — AVX-512 versions of the analysis kernels (stats_ref.c is the spec).
 *
 * err_rows puts rows, not elements, in lanes: up to 8 rows are read 8 columns at a time, the
 * 8×8 tile is transposed in registers, and each column then updates all rows' sums at once
 * with exactly the reference's double operations in the reference's order (element i of a
 * row is added after element i − 1), so every sum is bit-identical to stats_ref.c. The sums
 * are separate mul and add (no FMA): the build's -std=c11 keeps the compiler from fusing them.
 *
 * hist_slots computes 16 slots at a time: the range tests in f32 against the f32 thresholds
 * that are equivalent to the double ones (see grid_f32), the bin in double as the reference.
 * mul_f32 multiplies 16 floats at a time (a masked tail): one IEEE rounding, as the reference. */
#include "kernels.h"

#include <immintrin.h>
#include <math.h>

#define AI static inline __attribute__((always_inline))

/* Columns c..c+7 of the 8 rows p[0..7] (cnt < 8: the first cnt columns, zeros after) as 8
 * vectors, vector j = column c + j of every row (lane r = row r). */
AI void load_cols(const float *const p[8], int c, int cnt, __m256 col[8])
{
    __m256 r[8];
    if (cnt >= 8) {
        for (int j = 0; j < 8; j++) r[j] = _mm256_loadu_ps(p[j] + c);
    } else {
        const __mmask8 m = (__mmask8)((1u << cnt) - 1);
        for (int j = 0; j < 8; j++) r[j] = _mm256_maskz_loadu_ps(m, p[j] + c);
    }
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xee);
    const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xee);
    const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xee);
    const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xee);
    col[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    col[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    col[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    col[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    col[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    col[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    col[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    col[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

typedef struct {
    __m512d sxx, see, sxy, syy, sae, maxe;
    __m256 xlo, xhi, ylo, yhi, elo, ehi;
} sums;

/* One column of every row: the reference's per-element step, lane by lane. */
AI void step(sums *s, __m256 xc, __m256 yc)
{
    const __m512d xv = _mm512_cvtps_pd(xc), yv = _mm512_cvtps_pd(yc), e = _mm512_sub_pd(xv, yv);
    const __m512d ae = _mm512_abs_pd(e);
    s->sxx = _mm512_add_pd(s->sxx, _mm512_mul_pd(xv, xv));
    s->see = _mm512_add_pd(s->see, _mm512_mul_pd(e, e));
    s->sxy = _mm512_add_pd(s->sxy, _mm512_mul_pd(xv, yv));
    s->syy = _mm512_add_pd(s->syy, _mm512_mul_pd(yv, yv));
    s->sae = _mm512_add_pd(s->sae, ae);
    s->maxe = _mm512_max_pd(ae, s->maxe); /* ae > maxe ? ae : maxe, as the reference's if */
    const __m256 ef = _mm256_sub_ps(xc, yc);
    s->xlo = _mm256_min_ps(xc, s->xlo); /* xc < lo ? xc : lo, the reference's min_f */
    s->xhi = _mm256_max_ps(xc, s->xhi);
    s->ylo = _mm256_min_ps(yc, s->ylo);
    s->yhi = _mm256_max_ps(yc, s->yhi);
    s->elo = _mm256_min_ps(ef, s->elo);
    s->ehi = _mm256_max_ps(ef, s->ehi);
}

void qb_err_rows_avx512(int n, const float *x, size_t ldx, const float *y, size_t ldy, int nr, qb_err_acc *acc)
{
    const float *px[8], *py[8];
    double d[6][8];
    float f[6][8];
    for (int r = 0; r < 8; r++) { /* rows past nr repeat row 0; their lanes are dropped */
        const int q = r < nr ? r : 0;
        px[r] = x + (size_t)q * ldx;
        py[r] = y + (size_t)q * ldy;
        const qb_err_acc *a = &acc[q];
        d[0][r] = a->sxx, d[1][r] = a->see, d[2][r] = a->sxy, d[3][r] = a->syy, d[4][r] = a->sae, d[5][r] = a->maxe;
        f[0][r] = a->xlo, f[1][r] = a->xhi, f[2][r] = a->ylo, f[3][r] = a->yhi, f[4][r] = a->elo, f[5][r] = a->ehi;
    }
    sums s = {_mm512_loadu_pd(d[0]), _mm512_loadu_pd(d[1]), _mm512_loadu_pd(d[2]), _mm512_loadu_pd(d[3]),
              _mm512_loadu_pd(d[4]), _mm512_loadu_pd(d[5]), _mm256_loadu_ps(f[0]), _mm256_loadu_ps(f[1]),
              _mm256_loadu_ps(f[2]), _mm256_loadu_ps(f[3]), _mm256_loadu_ps(f[4]), _mm256_loadu_ps(f[5])};
    int c = 0;
    for (; c + 8 <= n; c += 8) {
        __m256 xc[8], yc[8];
        load_cols(px, c, 8, xc);
        load_cols(py, c, 8, yc);
        #pragma GCC unroll 8
        for (int j = 0; j < 8; j++) step(&s, xc[j], yc[j]);
    }
    if (c < n) {
        __m256 xc[8], yc[8];
        load_cols(px, c, n - c, xc);
        load_cols(py, c, n - c, yc);
        for (int j = 0; j < n - c; j++) step(&s, xc[j], yc[j]);
    }
    _mm512_storeu_pd(d[0], s.sxx), _mm512_storeu_pd(d[1], s.see), _mm512_storeu_pd(d[2], s.sxy);
    _mm512_storeu_pd(d[3], s.syy), _mm512_storeu_pd(d[4], s.sae), _mm512_storeu_pd(d[5], s.maxe);
    _mm256_storeu_ps(f[0], s.xlo), _mm256_storeu_ps(f[1], s.xhi), _mm256_storeu_ps(f[2], s.ylo);
    _mm256_storeu_ps(f[3], s.yhi), _mm256_storeu_ps(f[4], s.elo), _mm256_storeu_ps(f[5], s.ehi);
    for (int r = 0; r < nr; r++) {
        qb_err_acc *a = &acc[r];
        a->sxx = d[0][r], a->see = d[1][r], a->sxy = d[2][r], a->syy = d[3][r], a->sae = d[4][r], a->maxe = d[5][r];
        a->xlo = f[0][r], a->xhi = f[1][r], a->ylo = f[2][r], a->yhi = f[3][r], a->elo = f[4][r], a->ehi = f[5][r];
    }
}

/* The f32 thresholds of a grid: for f32 v (as double), v < lo ⟺ v < lo_f with lo_f the
 * smallest f32 >= lo (+inf when none), and v > hi ⟺ v > hi_f with hi_f the largest f32 <= hi. */
static void grid_f32(const qb_bin_grid *g, float *lo_f, float *hi_f)
{
    float l = (float)g->lo, h = (float)g->hi;
    if ((double)l < g->lo) l = nextafterf(l, INFINITY);
    if ((double)h > g->hi) h = nextafterf(h, -INFINITY);
    *lo_f = l;
    *hi_f = h;
}

/* A grid's constants in registers. */
typedef struct {
    __m512 lo_f, hi_f;
    __m512d lo, k;
    __m512i last, over, nan;
} grid_regs;

static grid_regs grid_load(const qb_bin_grid *g)
{
    float lo_f, hi_f;
    grid_f32(g, &lo_f, &hi_f);
    return (grid_regs){_mm512_set1_ps(lo_f),         _mm512_set1_ps(hi_f),         _mm512_set1_pd(g->lo),
                       _mm512_set1_pd(g->k),         _mm512_set1_epi32(g->bins - 1), _mm512_set1_epi32(g->bins + 1),
                       _mm512_set1_epi32(g->bins + 2)};
}

/* The slots of 16 values; *in (may be NULL): the lanes inside the range (slots 1..bins). */
AI __m512i slots16(__m512 v, const grid_regs *g, __mmask16 *in)
{
    const __mmask16 lt = _mm512_cmp_ps_mask(v, g->lo_f, _CMP_LT_OQ), gt = _mm512_cmp_ps_mask(v, g->hi_f, _CMP_GT_OQ);
    const __mmask16 un = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    const __m512d t0 = _mm512_mul_pd(_mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)), g->lo), g->k);
    const __m512d t1 = _mm512_mul_pd(
        _mm512_sub_pd(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))), g->lo), g->k);
    /* NaN and out-of-int products convert to 0x80000000, which the unsigned min clamps */
    __m512i s = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvttpd_epi32(t0)), _mm512_cvttpd_epi32(t1), 1);
    s = _mm512_add_epi32(_mm512_min_epu32(s, g->last), _mm512_set1_epi32(1));
    s = _mm512_mask_mov_epi32(s, lt, _mm512_setzero_si512());
    s = _mm512_mask_mov_epi32(s, gt, g->over);
    s = _mm512_mask_mov_epi32(s, un, g->nan);
    if (in) *in = (__mmask16)~(lt | gt | un);
    return s;
}

AI __mmask16 tail_mask(int left) { return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1); }

void qb_hist_slots_avx512(int n, const float *a, const float *b, const qb_bin_grid *g, uint32_t *slot)
{
    const grid_regs gr = grid_load(g);
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        __m512 v = _mm512_maskz_loadu_ps(m, a + i);
        if (b) v = _mm512_sub_ps(v, _mm512_maskz_loadu_ps(m, b + i));
        _mm512_mask_storeu_epi32(slot + i, m, slots16(v, &gr, NULL));
    }
}

void qb_hist_slots2_avx512(int n, const float *x, const float *y, const qb_bin_grid *g, const qb_bin_grid *ge,
                           uint32_t *sxy, uint32_t *se)
{
    const grid_regs gr = grid_load(g), er = grid_load(ge);
    const __m512i stride = _mm512_set1_epi32(g->bins + 3);
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        const __m512 xv = _mm512_maskz_loadu_ps(m, x + i), yv = _mm512_maskz_loadu_ps(m, y + i);
        const __m512i j = _mm512_add_epi32(_mm512_mullo_epi32(slots16(xv, &gr, NULL), stride), slots16(yv, &gr, NULL));
        _mm512_mask_storeu_epi32(sxy + i, m, j);
        _mm512_mask_storeu_epi32(se + i, m, slots16(_mm512_sub_ps(xv, yv), &er, NULL));
    }
}

/* Buckets' current minima gathered by slot: few values pass, those go out as indices. */
int qb_map_filter_avx512(int n, const float *x, const qb_bin_grid *g, const float *bx, int32_t *idx)
{
    const grid_regs gr = grid_load(g);
    const __m512 inf = _mm512_set1_ps(INFINITY);
    const __m512i one = _mm512_set1_epi32(1);
    int k = 0;
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        __mmask16 in;
        const __m512i b = _mm512_sub_epi32(slots16(v, &gr, &in), one);
        in &= m;
        const __m512 cur = _mm512_mask_i32gather_ps(inf, in, b, bx, 4);
        unsigned pass = _mm512_mask_cmp_ps_mask(in, v, cur, _CMP_LT_OQ);
        while (pass) {
            idx[k++] = i + __builtin_ctz(pass);
            pass &= pass - 1;
        }
    }
    return k;
}

void qb_mul_f32_avx512(int n, const float *a, const float *b, float *out)
{
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
    if (i < n) {
        const __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i)));
    }
}
