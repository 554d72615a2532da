/* fmt_int_q8_avx2.c — AVX2 integer path of the INT formats: the 32 codes of one activation
 * block unpacked to bytes in a register, multiplied with the block's 8-bit activations by
 * vpmaddubsw + vpmaddwd into exact int32 lanes of 4 products, minus zero times the sum of
 * those 4 activations (so a lane holds sum (code - zero) · q), then scaled by weight scale ×
 * activation scale in f32. The spec is
 * qb_int_tile_q8_ref (fmt_int_q8_ref.c); only the float summation order differs.
 *
 * vpmaddubsw's int16 pair sums would overflow for 8-bit codes (255 · 127 · 2), so 8-bit rows
 * are multiplied as signed codes − 128 with the sign trick (|u − 128| times q with its sign
 * flipped where u < 128, vpsignb) and the zero point z − 128: the same integer.
 *
 * Unpacking (4b bytes → 32 codes): 8 bits a load; 4 bits widened to words, each split into
 * its nibbles; 2 bits widened to dwords, crumbs shifted into the four bytes; 3, 5, 6, 7 bits:
 * codes 8k .. 8k+7 start at byte k·b, so two 16-byte windows (at 0 and 2b) each broadcast to
 * both lanes, vpshufb gathers the two bytes holding a code into a word, a multiply by
 * 2^(8 − shift) and a shift right by 8 leave it, vpackuswb packs. A window that would read
 * past the end of the row is copied to the stack first. */
#include "kernels.h"
#include "fmt.h"
#include "unaligned.h"

#include <immintrin.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

enum { D2, D4, D8, DG };

typedef struct {
    int bits, g;     /* g: elements per group, or n for one scale per row */
    size_t hdr, gst; /* header bytes, bytes per group (header + codes) */
    __m256i shuf, mul, mask;
} lay;

static lay lay_make(const qb_fmt_params *f, int n)
{
    lay L = {.bits = f->bits}; /* the generic unpacker's tables zero unless filled below */
    L.g = f->group > 0 ? f->group : n;
    L.hdr = f->group > 0 ? (f->asym ? 4 : 2) : (f->asym ? 8 : 4);
    L.gst = L.hdr + (size_t)L.g * (size_t)f->bits / 8;
    if (f->bits == 2 || f->bits == 4 || f->bits == 8) return L; /* tables only for the generic unpacker */
    uint8_t shuf[32];
    uint16_t mul[16];
    for (int l = 0; l < 2; l++)
        for (int j = 0; j < 8; j++) {
            const int bit = j * f->bits, o = l * f->bits + bit / 8;
            shuf[16 * l + 2 * j] = (uint8_t)o;
            shuf[16 * l + 2 * j + 1] = (uint8_t)(o + 1);
            mul[8 * l + j] = (uint16_t)(1u << (8 - bit % 8));
        }
    L.shuf = _mm256_loadu_si256((const __m256i *)shuf);
    L.mul = _mm256_loadu_si256((const __m256i *)mul);
    L.mask = _mm256_set1_epi16((short)((1 << f->bits) - 1));
    return L;
}

/* 16 codes from a window whose first code starts at bit 0 of p (and the ninth at byte b). */
AI __m256i words16(const lay *L, const uint8_t *p)
{
    const __m256i v = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p)), L->shuf);
    return _mm256_and_si256(_mm256_srli_epi16(_mm256_mullo_epi16(v, L->mul), 8), L->mask);
}

/* The 32 codes of the block at p as bytes (end: the end of the row). */
AI __m256i codes32(const lay *L, const uint8_t *p, const uint8_t *end, const int D)
{
    switch (D) {
    case D8: return _mm256_loadu_si256((const __m256i *)p);
    case D4: {
        const __m256i w = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p));
        return _mm256_and_si256(_mm256_or_si256(w, _mm256_slli_epi16(w, 4)), _mm256_set1_epi16(0x0F0F));
    }
    case D2: {
        const __m256i d = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
        const __m256i t = _mm256_or_si256(_mm256_or_si256(d, _mm256_slli_epi32(d, 6)),
                                          _mm256_or_si256(_mm256_slli_epi32(d, 12), _mm256_slli_epi32(d, 18)));
        return _mm256_and_si256(t, _mm256_set1_epi32(0x03030303));
    }
    default: {
        uint8_t tmp[48];
        const int b = L->bits;
        if (end - p < 2 * b + 16) { /* copy the block's 4b bytes (b dwords) with a masked load: no
                                       library call, which would spill every register, in the loop */
            const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(b), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            _mm256_storeu_si256((__m256i *)tmp, _mm256_maskload_epi32((const int *)p, m));
            _mm_storeu_si128((__m128i *)(tmp + 32), _mm_setzero_si128());
            p = tmp;
        }
        const __m256i lo = words16(L, p), hi = words16(L, p + 2 * b); /* codes 0-15, 16-31 */
        return _mm256_permute4x64_epi64(_mm256_packus_epi16(lo, hi), 0xD8);
    }
    }
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

AI void tile_body(const qb_fmt_params *f, const lay *L, int n, const uint8_t *w, size_t wst, const char *act, size_t ast,
                  float *y, size_t ldy, const int NR, const int NC, const int D)
{
    const int big = f->bits == 8;
    const int32_t zbias = big ? 128 : 0;
    const size_t cb = (size_t)4 * L->bits;
    const int bpg = L->g / 32;
    __m256 acc[4][4];
    #pragma GCC unroll 4
    for (int r = 0; r < NR; r++)
        #pragma GCC unroll 4
        for (int c = 0; c < NC; c++) acc[r][c] = _mm256_setzero_ps();
    for (int s0 = 0; s0 < n; s0 += L->g) {
        float dw[4];
        int32_t nz[4];
        const uint8_t *codes[4], *ends[4];
        #pragma GCC unroll 4
        for (int r = 0; r < NR; r++) {
            const uint8_t *row = w + (size_t)r * wst, *h = row + (size_t)(s0 / L->g) * L->gst;
            int32_t z;
            read_hdr(f, h, &dw[r], &z);
            nz[r] = zbias - z;
            codes[r] = h + L->hdr;
            ends[r] = row + (f->group > 0 ? (size_t)(n / L->g) * L->gst : L->gst);
        }
        for (int k = 0; k < bpg; k++) {
            const int blk = s0 / 32 + k;
            __m256i q[4];
            float dx[4];
            __m256i sx[4];
            #pragma GCC unroll 4
            for (int c = 0; c < NC; c++) {
                const char *a = act + (size_t)c * ast;
                q[c] = _mm256_loadu_si256((const __m256i *)(qb_int_act_q(a) + 32 * blk));
                dx[c] = qb_int_act_d(a, n)[blk];
                sx[c] = _mm256_loadu_si256((const __m256i *)(qb_int_act_s4(a, n) + 8 * blk));
            }
            #pragma GCC unroll 4
            for (int r = 0; r < NR; r++) {
                __m256i u = codes32(L, codes[r] + (size_t)k * cb, ends[r], D);
                if (big) u = _mm256_xor_si256(u, _mm256_set1_epi8((char)0x80)); /* u - 128 as int8 */
                const __m256i au = big ? _mm256_abs_epi8(u) : u;
                #pragma GCC unroll 4
                for (int c = 0; c < NC; c++) {
                    const __m256i qs = big ? _mm256_sign_epi8(q[c], u) : q[c];
                    __m256i i = _mm256_madd_epi16(_mm256_maddubs_epi16(au, qs), _mm256_set1_epi16(1));
                    i = _mm256_add_epi32(i, _mm256_mullo_epi32(sx[c], _mm256_set1_epi32(nz[r])));
                    acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i), _mm256_set1_ps(dw[r] * dx[c]), acc[r][c]);
                }
            }
        }
    }
    #pragma GCC unroll 4
    for (int r = 0; r < NR; r++)
        #pragma GCC unroll 4
        for (int c = 0; c < NC; c++) {
            const __m256 v = acc[r][c];
            __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            y[c * ldy + r] = _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
        }
}

/* Which bodies are compiled (each an always-inline expansion; one per shape and unpacker, 64 of
 * them, took about 25 s to compile with gcc -O2 and minutes under clang with ASan):
 *   - 4 rows × 4 tokens (prompt processing) for every unpacker;
 *   - 4 rows × 1 token for every unpacker: generation, and a tail of 2 or 3 tokens;
 *   - one generic body, 1 row × 1 token with the unpacker chosen at run time, for the last rows
 *     of a matrix whose row count is not a multiple of 4. */
#define TILE_ARGS const qb_fmt_params *f, const lay *L, int n, const uint8_t *w, size_t wst, const char *act, size_t ast, \
                  float *y, size_t ldy
typedef void (*tile_fn)(TILE_ARGS);
#define T44(D) static void t44_##D(TILE_ARGS) { tile_body(f, L, n, w, wst, act, ast, y, ldy, 4, 4, D); }
#define T41(D) static void t41_##D(TILE_ARGS) { tile_body(f, L, n, w, wst, act, ast, y, ldy, 4, 1, D); }
T44(D2) T44(D4) T44(D8) T44(DG)
T41(D2) T41(D4) T41(D8) T41(DG)
static const tile_fn t44[4] = {[D2] = t44_D2, [D4] = t44_D4, [D8] = t44_D8, [DG] = t44_DG};
static const tile_fn t41[4] = {[D2] = t41_D2, [D4] = t41_D4, [D8] = t41_D8, [DG] = t41_DG};

static __attribute__((noinline)) void t11_generic(TILE_ARGS, int D)
{
    tile_body(f, L, n, w, wst, act, ast, y, ldy, 1, 1, D);
}

void qb_int_tile_q8_avx2(const qb_fmt_params *f, int n, const void *w, size_t wst, int nr, const void *act, size_t ast,
                         int nc, float *y, size_t ldy)
{
    const lay L = lay_make(f, n);
    const int D = f->bits == 2 ? D2 : f->bits == 4 ? D4 : f->bits == 8 ? D8 : DG;
    const uint8_t *wb = w;
    const char *ab = act;
    if (nr == 4 && nc == 4) {
        t44[D](f, &L, n, wb, wst, ab, ast, y, ldy);
    } else if (nr == 4) {
        for (int c = 0; c < nc; c++) t41[D](f, &L, n, wb, wst, ab + (size_t)c * ast, ast, y + (size_t)c * ldy, ldy);
    } else {
        for (int r = 0; r < nr; r++)
            for (int c = 0; c < nc; c++)
                t11_generic(f, &L, n, wb + (size_t)r * wst, wst, ab + (size_t)c * ast, ast, y + (size_t)c * ldy + r, ldy, D);
    }
}
