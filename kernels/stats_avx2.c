/* stats_avx2.c — AVX2 versions of the analysis kernels (stats_ref.c is the spec), built as
 * stats_avx512.c is: err_rows puts 4 rows in the lanes of a double vector (a 4×4 transpose
 * per 4 columns) so every row is summed in element order with the reference's operations,
 * bit for bit; hist_slots computes 8 slots at a time, range tests in f32 against equivalent
 * thresholds, the bin in double; mul_f32 multiplies 8 floats at a time. */
#include "kernels.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

/* Columns c..c+3 of rows p[0..3] (cnt < 4: the first cnt, zeros after), vector j = column
 * c + j (lane r = row r). */
AI void load_cols(const float *const p[4], int c, int cnt, __m128 col[4])
{
    __m128 r[4];
    if (cnt >= 4) {
        for (int j = 0; j < 4; j++) r[j] = _mm_loadu_ps(p[j] + c);
    } else {
        for (int j = 0; j < 4; j++) {
            float t[4] = {0};
            memcpy(t, p[j] + c, (size_t)cnt * sizeof(float));
            r[j] = _mm_loadu_ps(t);
        }
    }
    _MM_TRANSPOSE4_PS(r[0], r[1], r[2], r[3]);
    for (int j = 0; j < 4; j++) col[j] = r[j];
}

typedef struct {
    __m256d sxx, see, sxy, syy, sae, maxe;
    __m128 xlo, xhi, ylo, yhi, elo, ehi;
} sums;

AI void step(sums *s, __m128 xc, __m128 yc)
{
    const __m256d xv = _mm256_cvtps_pd(xc), yv = _mm256_cvtps_pd(yc), e = _mm256_sub_pd(xv, yv);
    const __m256d ae = _mm256_andnot_pd(_mm256_set1_pd(-0.0), e);
    s->sxx = _mm256_add_pd(s->sxx, _mm256_mul_pd(xv, xv));
    s->see = _mm256_add_pd(s->see, _mm256_mul_pd(e, e));
    s->sxy = _mm256_add_pd(s->sxy, _mm256_mul_pd(xv, yv));
    s->syy = _mm256_add_pd(s->syy, _mm256_mul_pd(yv, yv));
    s->sae = _mm256_add_pd(s->sae, ae);
    s->maxe = _mm256_max_pd(ae, s->maxe);
    const __m128 ef = _mm_sub_ps(xc, yc);
    s->xlo = _mm_min_ps(xc, s->xlo);
    s->xhi = _mm_max_ps(xc, s->xhi);
    s->ylo = _mm_min_ps(yc, s->ylo);
    s->yhi = _mm_max_ps(yc, s->yhi);
    s->elo = _mm_min_ps(ef, s->elo);
    s->ehi = _mm_max_ps(ef, s->ehi);
}

/* Rows r0 .. r0 + nr − 1 (nr <= 4). */
static void rows4(int n, const float *x, size_t ldx, const float *y, size_t ldy, int nr, qb_err_acc *acc)
{
    const float *px[4], *py[4];
    double d[6][4];
    float f[6][4];
    for (int r = 0; r < 4; r++) {
        const int q = r < nr ? r : 0;
        px[r] = x + (size_t)q * ldx;
        py[r] = y + (size_t)q * ldy;
        const qb_err_acc *a = &acc[q];
        d[0][r] = a->sxx, d[1][r] = a->see, d[2][r] = a->sxy, d[3][r] = a->syy, d[4][r] = a->sae, d[5][r] = a->maxe;
        f[0][r] = a->xlo, f[1][r] = a->xhi, f[2][r] = a->ylo, f[3][r] = a->yhi, f[4][r] = a->elo, f[5][r] = a->ehi;
    }
    sums s = {_mm256_loadu_pd(d[0]), _mm256_loadu_pd(d[1]), _mm256_loadu_pd(d[2]), _mm256_loadu_pd(d[3]),
              _mm256_loadu_pd(d[4]), _mm256_loadu_pd(d[5]), _mm_loadu_ps(f[0]),    _mm_loadu_ps(f[1]),
              _mm_loadu_ps(f[2]),    _mm_loadu_ps(f[3]),    _mm_loadu_ps(f[4]),    _mm_loadu_ps(f[5])};
    int c = 0;
    for (; c + 4 <= n; c += 4) {
        __m128 xc[4], yc[4];
        load_cols(px, c, 4, xc);
        load_cols(py, c, 4, yc);
        #pragma GCC unroll 4
        for (int j = 0; j < 4; j++) step(&s, xc[j], yc[j]);
    }
    if (c < n) {
        __m128 xc[4], yc[4];
        load_cols(px, c, n - c, xc);
        load_cols(py, c, n - c, yc);
        for (int j = 0; j < n - c; j++) step(&s, xc[j], yc[j]);
    }
    _mm256_storeu_pd(d[0], s.sxx), _mm256_storeu_pd(d[1], s.see), _mm256_storeu_pd(d[2], s.sxy);
    _mm256_storeu_pd(d[3], s.syy), _mm256_storeu_pd(d[4], s.sae), _mm256_storeu_pd(d[5], s.maxe);
    _mm_storeu_ps(f[0], s.xlo), _mm_storeu_ps(f[1], s.xhi), _mm_storeu_ps(f[2], s.ylo);
    _mm_storeu_ps(f[3], s.yhi), _mm_storeu_ps(f[4], s.elo), _mm_storeu_ps(f[5], s.ehi);
    for (int r = 0; r < nr; r++) {
        qb_err_acc *a = &acc[r];
        a->sxx = d[0][r], a->see = d[1][r], a->sxy = d[2][r], a->syy = d[3][r], a->sae = d[4][r], a->maxe = d[5][r];
        a->xlo = f[0][r], a->xhi = f[1][r], a->ylo = f[2][r], a->yhi = f[3][r], a->elo = f[4][r], a->ehi = f[5][r];
    }
}

void qb_err_rows_avx2(int n, const float *x, size_t ldx, const float *y, size_t ldy, int nr, qb_err_acc *acc)
{
    for (int r = 0; r < nr; r += 4)
        rows4(n, x + (size_t)r * ldx, ldx, y + (size_t)r * ldy, ldy, nr - r < 4 ? nr - r : 4, acc + r);
}

/* f32 thresholds equivalent to the grid's double range tests (stats_avx512.c). */
static void grid_f32(const qb_bin_grid *g, float *lo_f, float *hi_f)
{
    float l = (float)g->lo, h = (float)g->hi;
    if ((double)l < g->lo) l = nextafterf(l, INFINITY);
    if ((double)h > g->hi) h = nextafterf(h, -INFINITY);
    *lo_f = l;
    *hi_f = h;
}

typedef struct {
    __m256 lo_f, hi_f;
    __m256d lo, k;
    __m256i last, over, nan;
} grid_regs;

static grid_regs grid_load(const qb_bin_grid *g)
{
    float lo_f, hi_f;
    grid_f32(g, &lo_f, &hi_f);
    return (grid_regs){_mm256_set1_ps(lo_f),           _mm256_set1_ps(hi_f),           _mm256_set1_pd(g->lo),
                       _mm256_set1_pd(g->k),           _mm256_set1_epi32(g->bins - 1), _mm256_set1_epi32(g->bins + 1),
                       _mm256_set1_epi32(g->bins + 2)};
}

/* Slots of the 8 values v; *in (may be NULL): all-ones lanes inside the range. */
AI __m256i slots8(__m256 v, const grid_regs *g, __m256i *in)
{
    const __m256 lt = _mm256_cmp_ps(v, g->lo_f, _CMP_LT_OQ), gt = _mm256_cmp_ps(v, g->hi_f, _CMP_GT_OQ);
    const __m256 un = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
    const __m256d t0 = _mm256_mul_pd(_mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), g->lo), g->k);
    const __m256d t1 = _mm256_mul_pd(_mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), g->lo), g->k);
    __m256i s = _mm256_set_m128i(_mm256_cvttpd_epi32(t1), _mm256_cvttpd_epi32(t0));
    s = _mm256_add_epi32(_mm256_min_epu32(s, g->last), _mm256_set1_epi32(1));
    s = _mm256_andnot_si256(_mm256_castps_si256(lt), s); /* under: slot 0 */
    s = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(s), _mm256_castsi256_ps(g->over), gt));
    s = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(s), _mm256_castsi256_ps(g->nan), un));
    if (in) *in = _mm256_castps_si256(_mm256_xor_ps(_mm256_or_ps(_mm256_or_ps(lt, gt), un), _mm256_castsi256_ps(_mm256_set1_epi32(-1))));
    return s;
}

/* n − i (< 8) floats of p into a zero-padded vector. */
static __m256 load_part(const float *p, int cnt)
{
    float t[8] = {0};
    memcpy(t, p, (size_t)cnt * sizeof(float));
    return _mm256_loadu_ps(t);
}

static void store_part(uint32_t *p, __m256i v, int cnt)
{
    uint32_t t[8];
    _mm256_storeu_si256((__m256i *)t, v);
    memcpy(p, t, (size_t)cnt * sizeof(uint32_t));
}

void qb_hist_slots_avx2(int n, const float *a, const float *b, const qb_bin_grid *g, uint32_t *slot)
{
    const grid_regs gr = grid_load(g);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(a + i);
        if (b) v = _mm256_sub_ps(v, _mm256_loadu_ps(b + i));
        _mm256_storeu_si256((__m256i *)(slot + i), slots8(v, &gr, NULL));
    }
    if (i < n) {
        __m256 v = load_part(a + i, n - i);
        if (b) v = _mm256_sub_ps(v, load_part(b + i, n - i));
        store_part(slot + i, slots8(v, &gr, NULL), n - i);
    }
}

void qb_hist_slots2_avx2(int n, const float *x, const float *y, const qb_bin_grid *g, const qb_bin_grid *ge,
                         uint32_t *sxy, uint32_t *se)
{
    const grid_regs gr = grid_load(g), er = grid_load(ge);
    const __m256i stride = _mm256_set1_epi32(g->bins + 3);
    for (int i = 0; i < n; i += 8) {
        const int cnt = n - i < 8 ? n - i : 8;
        const __m256 xv = cnt == 8 ? _mm256_loadu_ps(x + i) : load_part(x + i, cnt);
        const __m256 yv = cnt == 8 ? _mm256_loadu_ps(y + i) : load_part(y + i, cnt);
        const __m256i j = _mm256_add_epi32(_mm256_mullo_epi32(slots8(xv, &gr, NULL), stride), slots8(yv, &gr, NULL));
        const __m256i e = slots8(_mm256_sub_ps(xv, yv), &er, NULL);
        if (cnt == 8) {
            _mm256_storeu_si256((__m256i *)(sxy + i), j);
            _mm256_storeu_si256((__m256i *)(se + i), e);
        } else {
            store_part(sxy + i, j, cnt);
            store_part(se + i, e, cnt);
        }
    }
}

int qb_map_filter_avx2(int n, const float *x, const qb_bin_grid *g, const float *bx, int32_t *idx)
{
    const grid_regs gr = grid_load(g);
    const __m256 inf = _mm256_set1_ps(INFINITY);
    int k = 0;
    for (int i = 0; i < n; i += 8) {
        const int cnt = n - i < 8 ? n - i : 8;
        const __m256 v = cnt == 8 ? _mm256_loadu_ps(x + i) : load_part(x + i, cnt);
        __m256i in;
        const __m256i b = _mm256_sub_epi32(slots8(v, &gr, &in), _mm256_set1_epi32(1));
        const __m256 cur = _mm256_mask_i32gather_ps(inf, bx, b, _mm256_castsi256_ps(in), 4);
        unsigned pass = (unsigned)_mm256_movemask_ps(_mm256_and_ps(_mm256_cmp_ps(v, cur, _CMP_LT_OQ), _mm256_castsi256_ps(in)));
        pass &= (1u << cnt) - 1;
        while (pass) {
            idx[k++] = i + __builtin_ctz(pass);
            pass &= pass - 1;
        }
    }
    return k;
}

void qb_mul_f32_avx2(int n, const float *a, const float *b, float *out)
{
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    for (; i < n; i++) out[i] = a[i] * b[i];
}
