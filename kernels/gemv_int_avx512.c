/* gemv_int_avx512.c — generation (one token) for INT rows of 4 or 8 bits (fmt_int_ref.c
 * layout) with AVX512-VNNI: the codes of a group are read as plain 64-byte chunks, and the
 * token's 8-bit activations are laid out once per matmul to match them byte for byte. The
 * spec is qb_int_tile_q8_ref (fmt_int_q8_ref.c): the same integers (codes · q − zero · Σq,
 * exact in int32 lanes), the same f16/f32 scales; only the float summation order differs.
 *
 * Why a kernel of its own: the tile (fmt_int_q8_avx512.c) serves every bit width and up to
 * 4 × 4 rows × tokens; with one token the memory stream is what counts, and for 4-bit codes
 * in groups of 128 or 256 (GPTQ/AWQ's usual output) and 8-bit codes a chunk of 64 code bytes
 * needs only a load, (a nibble split,) one or two vpdpbusd, the zero point's correction, one
 * conversion and one fma.
 *
 * Rows taken (qb_int_gemv_supported): 4 bits with groups of 128 or 256, or one scale per row
 * with n a multiple of 128; 8 bits with groups of 64, 128 or 256, or per row with n a multiple
 * of 64: a group's codes are then whole chunks.
 *
 * Activation layout (qb_int_gemv_act_bytes), per chunk of 64 code bytes:
 *   4 bits (128 elements): i8 qlo[64], i8 qhi[64]  the activations of the low / high nibbles
 *                          (element 2j, 2j + 1: the codes' bit stream puts element 2j in the
 *                          low nibble of byte j); i32 ns[16]: −Σ q over each lane's 8
 *                          elements; f32 dx[16]: the Q8_0 scale of each lane's block
 *   8 bits (64 elements):  i8 q[64]; i32 ns[16] (4 elements a lane); f32 dx[16]
 * A lane's int32 is then Σ code·q + zero · ns = Σ (code − zero) · q exactly. */
#include "kernels.h"
#include "fmt.h"
#include "unaligned.h"

#include <immintrin.h>

#define AI static inline __attribute__((always_inline))

/* acc + Σ u·y over each 4 bytes, y read from memory (VNNI as inline asm: see qdot_avx512.c). */
AI __m512i dpbusd_m(__m512i acc, __m512i u, const uint8_t *p)
{
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "m"(*(const __m512i_u *)p));
    return acc;
}

/* One chunk: 64 code bytes at w against its activations xa; zero point z and scale d_w in
 * every lane. */
AI __m512 chunk(__m512 acc, const uint8_t *w, const uint8_t *xa, __m512i z, __m512 dw, const int bits)
{
    const __m512i v = _mm512_loadu_si512(w);
    const int o_ns = bits == 4 ? 128 : 64, o_dx = bits == 4 ? 192 : 128;
    __m512i s = _mm512_mullo_epi32(z, _mm512_loadu_si512(xa + o_ns));
    if (bits == 8) {
        s = dpbusd_m(s, v, xa);
    } else {
        const __m512i m4 = _mm512_set1_epi8(15);
        s = dpbusd_m(s, _mm512_and_si512(v, m4), xa);
        s = dpbusd_m(s, _mm512_and_si512(_mm512_srli_epi16(v, 4), m4), xa + 64);
    }
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_loadu_ps(xa + o_dx)), acc);
}

/* g: elements a group (a compile-time constant for grouped rows; n for one scale a row) */
AI float body(int n, const uint8_t *w, const uint8_t *xa, const int bits, const int grouped, const int asym, const int g)
{
    const size_t hdr = grouped ? (asym ? 4 : 2) : (asym ? 8 : 4);
    const int per = bits == 4 ? 128 : 64, cpg = g / per; /* chunks a group */
    const size_t act = bits == 4 ? 256 : 192, gst = hdr + (size_t)g * bits / 8;
    __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int gi = 0; gi < n / g; gi++) {
        const uint8_t *h = w + (size_t)gi * gst;
        /* the zero point is an integer stored exactly (f16 or f32): truncation is exact */
        const float d = grouped ? _cvtsh_ss(rd16(h)) : rdf32(h);
        const int32_t zi = !asym ? 1 << (bits - 1) : (int32_t)(grouped ? _cvtsh_ss(rd16(h + 2)) : rdf32(h + 4));
        const __m512 dw = _mm512_set1_ps(d);
        const __m512i z = _mm512_set1_epi32(zi);
        const uint8_t *codes = h + hdr, *x = xa + (size_t)gi * cpg * act;
        for (int c = 0; c < cpg; c++) acc[c & 1] = chunk(acc[c & 1], codes + 64 * c, x + c * act, z, dw, bits);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1]));
}

/* Grouped rows with the group size as a constant. */
AI float grouped_body(int n, const uint8_t *w, const uint8_t *xa, const int bits, const int asym, int g)
{
    switch (g) {
    case 64: return body(n, w, xa, bits, 1, asym, 64);
    case 128: return body(n, w, xa, bits, 1, asym, 128);
    default: return body(n, w, xa, bits, 1, asym, 256);
    }
}

float qb_int_gemv_avx512vnni(const qb_fmt_params *f, int n, const void *w, const void *xg)
{
    switch ((f->bits == 8) * 4 + (f->group > 0) * 2 + (f->asym ? 1 : 0)) {
    case 0: return body(n, w, xg, 4, 0, 0, n);
    case 1: return body(n, w, xg, 4, 0, 1, n);
    case 2: return grouped_body(n, w, xg, 4, 0, f->group);
    case 3: return grouped_body(n, w, xg, 4, 1, f->group);
    case 4: return body(n, w, xg, 8, 0, 0, n);
    case 5: return body(n, w, xg, 8, 0, 1, n);
    case 6: return grouped_body(n, w, xg, 8, 0, f->group);
    default: return grouped_body(n, w, xg, 8, 1, f->group);
    }
}
