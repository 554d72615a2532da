/* fmt_int_q8_avx512.c — AVX-512 integer path of the INT formats: weight codes unpacked to
 * bytes in registers, 64 at a time (two 32-element activation blocks), times 8-bit activations
 * (fmt.h's planar layout) summed exactly in int32 lanes of 4 products, each lane starting from
 * -zero times the sum of its 4 activations (so it holds sum (code - zero) · q), then scaled per
 * block in f32. The spec is qb_int_tile_q8_ref (fmt_int_q8_ref.c):
 * the integers are the same, only the float summation order differs.
 *
 * Two variants: "_avx512" multiplies with vpmaddubsw + vpmaddwd, "_avx512vnni" with one
 * vpdpbusd. As in qdot_avx512.c, this file is built without -mavx512vnni and GCC will not
 * inline a VNNI intrinsic into the plain variant, so vpdpbusd is one line of inline asm and
 * dispatch.c installs the VNNI variant only where cpuid reports AVX512-VNNI. vpmaddubsw's
 * int16 pair sums overflow for 8-bit codes (255 · 127 · 2), so the plain variant multiplies
 * 8-bit rows as signed codes − 128 with the sign trick (|u − 128| times q negated where
 * u < 128) and uses the zero point z − 128: the same integer.
 *
 * Unpacking 32 codes of b bits (4b bytes, little-endian bit stream): 8 bits is a load; 4 bits
 * widens bytes to words and splits each into its two nibbles; 2 bits widens to dwords and
 * shifts the four crumbs into the four bytes; 3, 5, 6, 7 bits: codes 8k .. 8k+7 start at byte
 * k·b, so two 16-byte windows (at 0 and 2b) broadcast to the four 128-bit lanes, vpshufb puts
 * the two bytes holding each code in a word, vpsrlvw and a mask leave the code, vpackuswb and
 * vpermq pack the words of two blocks.
 * Near the end of a row a window that would read past it is copied to the stack first.
 *
 * Per 64 elements the activation side (bytes, two block scales, sums of 4) is loaded once per
 * token and shared by up to 4 weight rows; nr, nc and sym/asym are compile-time constants of
 * each always_inline body. With one token (generation) the products are summed times d_x over
 * a whole group and meet d_w once per group; with more tokens d_w · d_x per 64 elements (the
 * registers would not hold a second set of accumulators). */
#include "kernels.h"
#include "fmt.h"
#include "unaligned.h"

#include <immintrin.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

enum { D2, D4, D8, DG };

#ifndef PF_DIST
#define PF_DIST 1024 /* bytes ahead in each row stream: 4 interleaved rows train the hardware prefetcher less well than one */
#endif /* unpackers: 2, 4, 8 bits, and the generic one for 3, 5, 6, 7 */

/* Per-call constants: the row layout and the generic unpacker's tables. */
typedef struct {
    int bits, g;     /* g: elements per group, or n for one scale per row */
    size_t hdr, gst; /* header bytes, bytes per group (header + codes) */
    __m512i shuf, shift, mask;
} lay;

static lay lay_make(const qb_fmt_params *f, int n)
{
    lay L = {.bits = f->bits}; /* the generic unpacker's tables zero unless filled below */
    L.g = f->group > 0 ? f->group : n;
    L.hdr = f->group > 0 ? (f->asym ? 4 : 2) : (f->asym ? 8 : 4);
    L.gst = L.hdr + (size_t)L.g * (size_t)f->bits / 8;
    if (f->bits == 2 || f->bits == 4 || f->bits == 8) return L; /* tables only for the generic unpacker */
    uint8_t shuf[64];
    uint16_t shift[32];
    for (int l = 0; l < 4; l++)
        for (int j = 0; j < 8; j++) {
            const int bit = j * f->bits, o = (l & 1) * f->bits + bit / 8;
            shuf[16 * l + 2 * j] = (uint8_t)o;
            shuf[16 * l + 2 * j + 1] = (uint8_t)(o + 1);
            shift[8 * l + j] = (uint16_t)(bit % 8);
        }
    L.shuf = _mm512_loadu_si512(shuf);
    L.shift = _mm512_loadu_si512(shift);
    L.mask = _mm512_set1_epi16((short)((1 << f->bits) - 1));
    return L;
}

/* 32 codes of the generic widths at p (end: the end of the row) as words. */
AI __m512i codes32_generic(const lay *L, const uint8_t *p, const uint8_t *end)
{
    uint8_t tmp[48];
    const int b = L->bits;
    if (end - p < 2 * b + 16) { /* the second window would cross the end of the row: copy the block's
                                   4b bytes with a masked load (no library call in the hot loop) */
        _mm256_storeu_si256((__m256i *)tmp, _mm256_maskz_loadu_epi8((__mmask32)((1ull << (4 * b)) - 1), p));
        _mm_storeu_si128((__m128i *)(tmp + 32), _mm_setzero_si128());
        p = tmp;
    }
    const __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p))),
                                         _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(p + 2 * b))), 1);
    return _mm512_and_si512(_mm512_srlv_epi16(_mm512_shuffle_epi8(v, L->shuf), L->shift), L->mask);
}

/* Codes of two 32-element blocks at pa and pb as one register of 64 bytes. */
AI __m512i codes64(const lay *L, const uint8_t *pa, const uint8_t *pb, const uint8_t *end, const int D)
{
    switch (D) {
    case D8:
        if (pb == pa + 32) return _mm512_loadu_si512(pa);
        return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)pa)),
                                  _mm256_loadu_si256((const __m256i *)pb), 1);
    case D4: { /* each byte widened to a word, its high nibble moved up: (w | w << 4) & 0x0F0F */
        const __m256i raw = pb == pa + 16 ? _mm256_loadu_si256((const __m256i *)pa)
                                          : _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)pa)),
                                                                    _mm_loadu_si128((const __m128i *)pb), 1);
        const __m512i w = _mm512_cvtepu8_epi16(raw);
        return _mm512_ternarylogic_epi32(w, _mm512_slli_epi16(w, 4), _mm512_set1_epi16(0x0F0F), 0xA8); /* (a | b) & c */
    }
    case D2: { /* each byte widened to a dword, its crumbs moved to the four bytes */
        const __m128i raw = pb == pa + 8 ? _mm_loadu_si128((const __m128i *)pa)
                                         : _mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)pa), _mm_loadl_epi64((const __m128i *)pb));
        const __m512i d = _mm512_cvtepu8_epi32(raw);
        const __m512i t = _mm512_ternarylogic_epi32(d, _mm512_slli_epi32(d, 6), _mm512_slli_epi32(d, 12), 0xFE); /* a | b | c */
        return _mm512_ternarylogic_epi32(t, _mm512_slli_epi32(d, 18), _mm512_set1_epi32(0x03030303), 0xA8); /* (a | b) & c */
    }
    default: { /* words of both blocks packed to bytes in each 128-bit lane, then the qwords in order */
        const __m512i packed = _mm512_packus_epi16(codes32_generic(L, pa, end), codes32_generic(L, pb, end));
        return _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7), packed);
    }
    }
}

/* One weight row's 64 codes prepared for the multiply: VNNI and the narrow widths use them as
 * they are; the plain variant with 8-bit codes keeps |u - 128| and where u < 128. */
typedef struct {
    __m512i u;
    __mmask64 neg;
} wreg;

AI wreg wreg_make(__m512i u, const int big)
{
    wreg r;
    r.neg = 0;
    r.u = u;
    if (big) {
        const __m512i s = _mm512_xor_si512(u, _mm512_set1_epi8((char)0x80)); /* u - 128 as int8 */
        r.neg = _mm512_movepi8_mask(s);
        r.u = _mm512_abs_epi8(s);
    }
    return r;
}

/* acc + the sums of four code · q products per int32 lane. */
AI __m512i dot4(__m512i acc, const wreg *w, __m512i q, const int vnni, const int big)
{
    if (vnni) {
        __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(w->u), "vm"(q));
        return acc;
    }
    if (big) q = _mm512_mask_sub_epi8(q, w->neg, _mm512_setzero_si512(), q);
    return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(w->u, q), _mm512_set1_epi16(1)));
}

/* Scale and zero point of the group header at h (the f32 row header when per-row). */
AI void read_hdr(const qb_fmt_params *f, const uint8_t *h, float *d, int32_t *z)
{
    *z = 1 << (f->bits - 1);
    if (f->group > 0) {
        *d = _cvtsh_ss(rd16(h));
        if (f->asym) *z = _mm_cvtss_si32(_mm_set_ss(_cvtsh_ss(rd16(h + 2))));
    } else {
        *d = rdf32(h);
        if (f->asym) *z = _mm_cvtss_si32(_mm_set_ss(rdf32(h + 4)));
    }
}

/* The activation side of blocks k and k+1 of one token (only k when half). */
typedef struct {
    __m512i q, s; /* bytes; sums of 4 bytes per lane */
    __m512 d;     /* block scales, lanes 0-7 and 8-15 */
} areg;

AI areg areg_load(const char *a, int n, int e, int half)
{
    const int k = e / 32;
    const int8_t *q = qb_int_act_q(a);
    const float *d = qb_int_act_d(a, n);
    const int32_t *s4 = qb_int_act_s4(a, n);
    areg r;
    if (half) { /* the upper lanes hold zero bytes and sums: their products are 0 */
        r.q = _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)(q + e)));
        r.d = _mm512_set1_ps(d[k]);
        r.s = _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)(s4 + e / 4)));
    } else {
        r.q = _mm512_loadu_si512(q + e);
        r.d = _mm512_insertf32x8(_mm512_set1_ps(d[k]), _mm256_set1_ps(d[k + 1]), 1);
        r.s = _mm512_loadu_si512(s4 + e / 4);
    }
    return r;
}

/* Weight side of one row for 64 elements: codes, scale and negated zero point per lane. */
typedef struct {
    wreg w;
    __m512 d;
    __m512i nz;
} rreg;

/* The 64 elements at e of a segment (only the first 32 when half): every row's codes meet every
 * token's bytes; sums go to accg (one token) or straight to acc. */
AI void pair(const lay *L, int n, const uint8_t *const *codes, const uint8_t *const *ends, const rreg *rr, size_t offb,
             int e, int s0, const char *act, size_t ast, __m512i nzsym, __m512 (*acc)[4], __m512 *accg, const int NR,
             const int NC, const int D, const int vnni, const int A, const int big, int half)
{
    areg ar[4];
    #pragma GCC unroll 4
    for (int c = 0; c < NC; c++) {
        ar[c] = areg_load(act + (size_t)c * ast, n, s0 + e, half);
        if (!A) ar[c].s = _mm512_mullo_epi32(ar[c].s, nzsym); /* the same zero for every row */
    }
    #pragma GCC unroll 4
    for (int r = 0; r < NR; r++) {
        /* offb is 0 when half: pb is pa again, its codes meet zero bytes */
        const uint8_t *pa = codes[r] + (size_t)(e / 32) * 4 * L->bits, *pb = pa + offb;
        _mm_prefetch((const char *)pa + PF_DIST, _MM_HINT_T0);
        const wreg wr = wreg_make(codes64(L, pa, pb, ends[r], D), big);
        #pragma GCC unroll 4
        for (int c = 0; c < NC; c++) {
            const __m512i z = A ? _mm512_mullo_epi32(ar[c].s, rr[r].nz) : ar[c].s;
            const __m512i i = dot4(z, &wr, ar[c].q, vnni, big);
            if (NC == 1)
                accg[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), ar[c].d, accg[r]);
            else
                acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), _mm512_mul_ps(rr[r].d, ar[c].d), acc[r][c]);
        }
    }
}

AI void tile_body(const qb_fmt_params *f, const lay *L, int n, const uint8_t *w, size_t wst, const char *act, size_t ast,
                  float *y, size_t ldy, const int NR, const int NC, const int D, const int vnni, const int A)
{
    const int big = !vnni && f->bits == 8;
    const int32_t zbias = big ? 128 : 0;
    const __m512i nzsym = _mm512_set1_epi32(zbias - (1 << (f->bits - 1)));
    const int g32 = L->g == 32;
    /* segments: one group (or the whole row), or for groups of 32 a pair of groups */
    const int step = g32 ? 64 : L->g;
    const size_t offb = g32 ? L->gst : (size_t)4 * L->bits; /* codes of block 2 from those of block 1 */
    const uint8_t *ends[4];
    #pragma GCC unroll 4
    for (int r = 0; r < NR; r++) ends[r] = w + (size_t)r * wst + (f->group > 0 ? (size_t)(n / L->g) * L->gst : L->gst);
    __m512 acc[4][4];
    #pragma GCC unroll 4
    for (int r = 0; r < NR; r++)
        #pragma GCC unroll 4
        for (int c = 0; c < NC; c++) acc[r][c] = _mm512_setzero_ps();
    size_t gofs = 0; /* byte offset of the segment's first group in a row */
    for (int s0 = 0; s0 < n; s0 += step, gofs += (g32 ? 2 : 1) * L->gst) {
        const int seg = n - s0 < step ? n - s0 : step;
        const int two = g32 && seg == 64;
        rreg rr[4];
        const uint8_t *codes[4];
        #pragma GCC unroll 4
        for (int r = 0; r < NR; r++) {
            const uint8_t *h = w + (size_t)r * wst + gofs;
            float da, db;
            int32_t za, zb;
            read_hdr(f, h, &da, &za);
            codes[r] = h + L->hdr;
            if (two) {
                read_hdr(f, h + L->gst, &db, &zb);
                rr[r].d = _mm512_insertf32x8(_mm512_set1_ps(da), _mm256_set1_ps(db), 1);
                rr[r].nz = _mm512_inserti64x4(_mm512_set1_epi32(zbias - za), _mm256_set1_epi32(zbias - zb), 1);
            } else {
                rr[r].d = _mm512_set1_ps(da);
                rr[r].nz = _mm512_set1_epi32(zbias - za);
            }
        }
        __m512 accg[4]; /* one token: the segment's sum of isum · d_x, scaled by d_w at its end */
        #pragma GCC unroll 4
        for (int r = 0; r < NR; r++) accg[r] = _mm512_setzero_ps();
        const int full = seg & ~63; /* the half step has its own call site: a run-time choice inside
                                       the full step's loop cost the int8 4x4 tile ~13% */
        for (int e = 0; e < full; e += 64)
            pair(L, n, codes, ends, rr, offb, e, s0, act, ast, nzsym, acc, accg, NR, NC, D, vnni, A, big, 0);
        if (seg & 32) pair(L, n, codes, ends, rr, 0, full, s0, act, ast, nzsym, acc, accg, NR, NC, D, vnni, A, big, 1);
        if (NC == 1) {
            #pragma GCC unroll 4
            for (int r = 0; r < NR; r++) acc[r][0] = _mm512_fmadd_ps(accg[r], rr[r].d, acc[r][0]);
        }
    }
    #pragma GCC unroll 4
    for (int r = 0; r < NR; r++)
        #pragma GCC unroll 4
        for (int c = 0; c < NC; c++) y[c * ldy + r] = _mm512_reduce_add_ps(acc[r][c]);
}

/* Which bodies are compiled (each is an always-inline expansion; one for every combination of
 * shape, unpacker, VNNI and sym/asym, 256 of them, took over a minute to compile with gcc -O2
 * and did not finish under clang with ASan):
 *   - 4 rows × 4 tokens (prompt processing) with VNNI for every unpacker, sym and asym, and
 *     without VNNI (AVX-512 CPUs before VNNI) for 4-bit sym and asym and 8-bit sym, the INT
 *     formats the README measures (int4-g128, int4-g128-asym, int8-channel);
 *   - 4 rows × 1 token for every unpacker, sym/asym, VNNI or not: generation where int_gemv
 *     does not serve, and the other 4 × 4 tiles as four of these (the weights' codes are then
 *     unpacked once per token instead of once per tile: about 2.5 times slower);
 *   - one generic body, 1 row × 1 token with the unpacker, VNNI and sym/asym chosen at run time,
 *     for the last rows of a matrix whose row count is not a multiple of 4. */
#define TILE_ARGS const qb_fmt_params *f, const lay *L, int n, const uint8_t *w, size_t wst, const char *act, size_t ast, \
                  float *y, size_t ldy
typedef void (*tile_fn)(TILE_ARGS);
#define T44(D, V, A) \
    static void t44_##D##_##V##_##A(TILE_ARGS) { tile_body(f, L, n, w, wst, act, ast, y, ldy, 4, 4, D, V, A); }
#define T41(D, V, A) \
    static void t41_##D##_##V##_##A(TILE_ARGS) { tile_body(f, L, n, w, wst, act, ast, y, ldy, 4, 1, D, V, A); }
#define T41_D(D) T41(D, 0, 0) T41(D, 0, 1) T41(D, 1, 0) T41(D, 1, 1)
#define T44_D(D) T44(D, 1, 0) T44(D, 1, 1)
T44_D(D2) T44_D(D4) T44_D(D8) T44_D(DG)
T44(D4, 0, 0) T44(D4, 0, 1) T44(D8, 0, 0)
T41_D(D2) T41_D(D4) T41_D(D8) T41_D(DG)
#define R41(D, V) {t41_##D##_##V##_0, t41_##D##_##V##_1}
static const tile_fn t41[2][4][2] = { /* [vnni][unpacker][asym] */
    {R41(D2, 0), R41(D4, 0), R41(D8, 0), R41(DG, 0)},
    {R41(D2, 1), R41(D4, 1), R41(D8, 1), R41(DG, 1)},
};
#define R44(D) {t44_##D##_1_0, t44_##D##_1_1}
static const tile_fn t44[2][4][2] = { /* [vnni][unpacker][asym]; NULL: four 4 × 1 calls */
    {[D4] = {t44_D4_0_0, t44_D4_0_1}, [D8] = {t44_D8_0_0, NULL}},
    {R44(D2), R44(D4), R44(D8), R44(DG)},
};

static __attribute__((noinline)) void t11_generic(TILE_ARGS, int D, int vnni, int asym)
{
    tile_body(f, L, n, w, wst, act, ast, y, ldy, 1, 1, D, vnni, asym);
}

static void tile(const qb_fmt_params *f, int n, const void *w, size_t wst, int nr, const void *act, size_t ast, int nc,
                 float *y, size_t ldy, int vnni)
{
    const lay L = lay_make(f, n);
    const int D = f->bits == 2 ? D2 : f->bits == 4 ? D4 : f->bits == 8 ? D8 : DG, A = f->asym != 0;
    const uint8_t *wb = w;
    const char *ab = act;
    if (nr == 4 && nc == 4 && t44[vnni][D][A]) {
        t44[vnni][D][A](f, &L, n, wb, wst, ab, ast, y, ldy);
    } else if (nr == 4) {
        for (int c = 0; c < nc; c++) t41[vnni][D][A](f, &L, n, wb, wst, ab + (size_t)c * ast, ast, y + (size_t)c * ldy, ldy);
    } else {
        for (int r = 0; r < nr; r++)
            for (int c = 0; c < nc; c++)
                t11_generic(f, &L, n, wb + (size_t)r * wst, wst, ab + (size_t)c * ast, ast, y + (size_t)c * ldy + r, ldy, D,
                            vnni, A);
    }
}

void qb_int_tile_q8_avx512(const qb_fmt_params *f, int n, const void *w, size_t wst, int nr, const void *act, size_t ast,
                           int nc, float *y, size_t ldy)
{
    tile(f, n, w, wst, nr, act, ast, nc, y, ldy, 0);
}

void qb_int_tile_q8_avx512vnni(const qb_fmt_params *f, int n, const void *w, size_t wst, int nr, const void *act,
                               size_t ast, int nc, float *y, size_t ldy)
{
    tile(f, n, w, wst, nr, act, ast, nc, y, ldy, 1);
}
