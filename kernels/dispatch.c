/* dispatch.c — choose the kernel table once from cpuid; QB_ISA=ref|avx2|avx512|avx512vnni
 * overrides (a request the CPU cannot run falls back to the best it can). "avx512vnni" is the
 * AVX-512 table with the packed-weight dot products that use AVX512-VNNI; it is the default
 * where cpuid reports VNNI, and "avx512" keeps the AVX-512BW versions. */
#include "kernels.h"

#include "fmt.h"
#include "qb_types.h"

#include <cpuid.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

float qb_dot_f32_avx2(int, const float *, const float *);
float qb_dot_f16_avx2(int, const uint16_t *, const float *);
float qb_dot_bf16_avx2(int, const uint16_t *, const float *);
void qb_tile_f32_avx2(int, const float *, size_t, int, const float *, size_t, int, float *, size_t);
void qb_tile_f16_avx2(int, const uint16_t *, size_t, int, const float *, size_t, int, float *, size_t);
void qb_f16_to_f32_avx2(int, const uint16_t *, float *);
void qb_bf16_to_f32_avx2(int, const uint16_t *, float *);
float qb_dot_f32_avx512(int, const float *, const float *);
float qb_dot_f16_avx512(int, const uint16_t *, const float *);
float qb_dot_bf16_avx512(int, const uint16_t *, const float *);
void qb_tile_f32_avx512(int, const float *, size_t, int, const float *, size_t, int, float *, size_t);
void qb_tile_f16_avx512(int, const uint16_t *, size_t, int, const float *, size_t, int, float *, size_t);
void qb_f16_to_f32_avx512(int, const uint16_t *, float *);
void qb_bf16_to_f32_avx512(int, const uint16_t *, float *);

/* attention of one head over f32 keys / values (attn_*.c) */
void qb_attn_f32_avx2(int, int, const float *, const float *, size_t, const float *, size_t, float, float *, float *);
void qb_attn_f32_avx512(int, int, const float *, const float *, size_t, const float *, size_t, float, float *, float *);
/* the training pass's f32 product, attention rows and gate (gemm_f32_*.c, attn_train_*.c, glu_*.c) */
#define TRAIN_DECLS(sfx)                                                                                              \
    void qb_gemm_f32_##sfx(int, int, int, const float *, size_t, size_t, const float *, size_t, float *, size_t, bool); \
    void qb_attn_softmax_row_##sfx(int, float *, float, float);                                                      \
    void qb_attn_dscore_row_##sfx(int, const float *, const float *, const float *, float, float, float *);           \
    void qb_glu_##sfx(bool, size_t, const float *, const float *, float *);                                           \
    void qb_glu_bw_##sfx(bool, size_t, const float *, const float *, const float *, float *, float *);
TRAIN_DECLS(avx2) TRAIN_DECLS(avx512)
#define TRAIN_MEMBERS(sfx)                                                                                            \
    .gemm_f32 = qb_gemm_f32_##sfx, .attn_softmax_row = qb_attn_softmax_row_##sfx,                                     \
    .attn_dscore_row = qb_attn_dscore_row_##sfx, .glu = qb_glu_##sfx, .glu_bw = qb_glu_bw_##sfx

/* int8 GEMM tiles (gemm_i8_*.c) */
#define GEMM_I8_DECL(sfx) void qb_gemm_i8_##sfx(int, const uint8_t *, size_t, int, const int8_t *, size_t, int, int32_t *, size_t);
GEMM_I8_DECL(avx2) GEMM_I8_DECL(avx512) GEMM_I8_DECL(avx512vnni)

/* Packed-weight dot products and activation quantizers (qdot_*.c), one set per ISA. */
#define QDOT_DECL(t, sfx) void qb_qdot_##t##_##sfx(int, const void *, const void *, size_t, int, float *);
#define QDOT_DECLS(sfx)                                                                               \
    QDOT_DECL(q4_0, sfx) QDOT_DECL(q4_1, sfx) QDOT_DECL(q5_0, sfx) QDOT_DECL(q5_1, sfx)               \
    QDOT_DECL(q8_0, sfx) QDOT_DECL(iq4_nl, sfx) QDOT_DECL(q2_K, sfx) QDOT_DECL(q3_K, sfx)             \
    QDOT_DECL(q4_K, sfx) QDOT_DECL(q5_K, sfx) QDOT_DECL(q6_K, sfx) QDOT_DECL(iq4_xs, sfx)             \
    QDOT_DECL(iq2_xxs, sfx) QDOT_DECL(iq2_xs, sfx) QDOT_DECL(iq2_s, sfx) QDOT_DECL(iq1_s, sfx)         \
    QDOT_DECL(iq1_m, sfx)                                                                             \
    void qb_quantize_q8_0_##sfx(const float *, void *, int);                                          \
    void qb_quantize_q8_1_##sfx(const float *, void *, int);                                          \
    void qb_quantize_q8_K_##sfx(const float *, void *, int);
QDOT_DECLS(ref)
QDOT_DECLS(avx2)
QDOT_DECLS(avx512)
#define QDOT_DECL_VNNI(t) QDOT_DECL(t, avx512vnni)
QDOT_DECL_VNNI(q4_0) QDOT_DECL_VNNI(q4_1) QDOT_DECL_VNNI(q5_0) QDOT_DECL_VNNI(q5_1) QDOT_DECL_VNNI(q8_0)
QDOT_DECL_VNNI(iq4_nl) QDOT_DECL_VNNI(q2_K) QDOT_DECL_VNNI(q3_K) QDOT_DECL_VNNI(q4_K) QDOT_DECL_VNNI(q5_K)
QDOT_DECL_VNNI(q6_K) QDOT_DECL_VNNI(iq4_xs)
/* Ternary and 3-bit i-quant dot products (qdot_tq_iq3_ref.c, tq_iq3_avx2.c, tq_iq3_avx512.c;
 * the VNNI table runs the AVX-512 versions). */
#define TQ_IQ3_DECLS(sfx) QDOT_DECL(tq1_0, sfx) QDOT_DECL(tq2_0, sfx) QDOT_DECL(iq3_xxs, sfx) QDOT_DECL(iq3_s, sfx)
TQ_IQ3_DECLS(ref) TQ_IQ3_DECLS(avx2) TQ_IQ3_DECLS(avx512)
#define TQ_IQ3_QDOT(sfx)                                                                              \
    [QB_TYPE_TQ1_0] = qb_qdot_tq1_0_##sfx, [QB_TYPE_TQ2_0] = qb_qdot_tq2_0_##sfx,                    \
    [QB_TYPE_IQ3_XXS] = qb_qdot_iq3_xxs_##sfx, [QB_TYPE_IQ3_S] = qb_qdot_iq3_s_##sfx
QDOT_DECL_VNNI(iq2_xxs) QDOT_DECL_VNNI(iq2_xs) QDOT_DECL_VNNI(iq2_s) QDOT_DECL_VNNI(iq1_s) QDOT_DECL_VNNI(iq1_m)
/* GEMM tiles (gemm_q8_avx512.c) */
void qb_quantize_act_tile_avx512(const float *, void *, int);
#define GEMM_DECL(t) void qb_gemm_##t##_avx512vnni(int, const void *, size_t, int, const void *, size_t, int, float *, size_t);
GEMM_DECL(q8_0) GEMM_DECL(q4_0) GEMM_DECL(iq4_nl)
/* generation (gemv_q4_0_avx512.c) */
void qb_quantize_act_gemv_q4_0_avx512(const float *, void *, int);
float qb_gemv_q4_0_avx512vnni(int, const void *, const void *);
float qb_int_gemv_avx512vnni(const struct qb_fmt_params *, int, const void *, const void *);
/* INT rows times 8-bit activations (fmt_int_q8_*.c) */
#define INT_Q8_DECL(sfx) void qb_int_tile_q8_##sfx(const struct qb_fmt_params *, int, const void *, size_t, int, const void *, size_t, int, float *, size_t);
INT_Q8_DECL(ref) INT_Q8_DECL(avx2) INT_Q8_DECL(avx512) INT_Q8_DECL(avx512vnni)

/* row dequantizers (dequant_*.c, fmt_int_*.c) */
bool qb_dequant_row_avx2(int, const void *, float *, int64_t);
bool qb_dequant_row_avx512(int, const void *, float *, int64_t);
void qb_dequant_row_int_avx2(int, int, bool, const void *, float *, int64_t);
void qb_dequant_row_int_avx512(int, int, bool, const void *, float *, int64_t);
void qb_quant_row_int_avx2(int, int, bool, const float *, void *, int64_t, const float *);
void qb_quant_row_int_avx512(int, int, bool, const float *, void *, int64_t, const float *);
void qb_quant_row_nf4_avx512(bool, const float *, void *, int64_t);
void qb_dequant_row_nf4_avx512(bool, const void *, float *, int64_t);
void qb_quant_row_fp8_avx512(bool, const float *, void *, int64_t, float);
void qb_dequant_row_fp8_avx512(bool, const void *, float *, int64_t);
void qb_quant_row_mxfp4_avx512(const float *, void *, int64_t);
void qb_dequant_row_mxfp4_avx512(const void *, float *, int64_t);
/* analysis kernels (stats_*.c) */
void qb_mul_f32_avx2(int, const float *, const float *, float *);
void qb_mul_f32_avx512(int, const float *, const float *, float *);
void qb_err_rows_avx2(int, const float *, size_t, const float *, size_t, int, qb_err_acc *);
void qb_err_rows_avx512(int, const float *, size_t, const float *, size_t, int, qb_err_acc *);
void qb_hist_slots_avx2(int, const float *, const float *, const qb_bin_grid *, uint32_t *);
void qb_hist_slots_avx512(int, const float *, const float *, const qb_bin_grid *, uint32_t *);
void qb_hist_slots2_avx2(int, const float *, const float *, const qb_bin_grid *, const qb_bin_grid *, uint32_t *,
                         uint32_t *);
void qb_hist_slots2_avx512(int, const float *, const float *, const qb_bin_grid *, const qb_bin_grid *, uint32_t *,
                           uint32_t *);
int qb_map_filter_avx2(int, const float *, const qb_bin_grid *, const float *, int32_t *);
int qb_map_filter_avx512(int, const float *, const qb_bin_grid *, const float *, int32_t *);

/* Table members for the dot products of suffix sfx and the quantizers of suffix asfx. */
#define QDOT_MEMBERS(sfx, asfx, tsfx)                                                                 \
    .qdot = {TQ_IQ3_QDOT(tsfx),                                                                       \
             [QB_TYPE_Q4_0] = qb_qdot_q4_0_##sfx,     [QB_TYPE_Q4_1] = qb_qdot_q4_1_##sfx,            \
             [QB_TYPE_Q5_0] = qb_qdot_q5_0_##sfx,     [QB_TYPE_Q5_1] = qb_qdot_q5_1_##sfx,            \
             [QB_TYPE_Q8_0] = qb_qdot_q8_0_##sfx,     [QB_TYPE_IQ4_NL] = qb_qdot_iq4_nl_##sfx,        \
             [QB_TYPE_Q2_K] = qb_qdot_q2_K_##sfx,     [QB_TYPE_Q3_K] = qb_qdot_q3_K_##sfx,            \
             [QB_TYPE_Q4_K] = qb_qdot_q4_K_##sfx,     [QB_TYPE_Q5_K] = qb_qdot_q5_K_##sfx,            \
             [QB_TYPE_Q6_K] = qb_qdot_q6_K_##sfx,     [QB_TYPE_IQ4_XS] = qb_qdot_iq4_xs_##sfx,        \
             [QB_TYPE_IQ2_XXS] = qb_qdot_iq2_xxs_##sfx, [QB_TYPE_IQ2_XS] = qb_qdot_iq2_xs_##sfx,       \
             [QB_TYPE_IQ2_S] = qb_qdot_iq2_s_##sfx,   [QB_TYPE_IQ1_S] = qb_qdot_iq1_s_##sfx,          \
             [QB_TYPE_IQ1_M] = qb_qdot_iq1_m_##sfx},                                                  \
    .quantize_act = {[QB_TYPE_Q8_0] = qb_quantize_q8_0_##asfx, [QB_TYPE_Q8_1] = qb_quantize_q8_1_##asfx, \
                     [QB_TYPE_Q8_K] = qb_quantize_q8_K_##asfx}

static const qb_kernel_table table_ref = {
    .isa = "ref", .level = QB_ISA_REF, .dot_f32 = qb_dot_f32_ref, .dot_f16 = qb_dot_f16_ref, .dot_bf16 = qb_dot_bf16_ref,
    .tile_f32 = qb_tile_f32_ref, .tile_f16 = qb_tile_f16_ref, .f16_to_f32 = qb_f16_to_f32_row_ref, .bf16_to_f32 = qb_bf16_to_f32_row_ref,
    QDOT_MEMBERS(ref, ref, ref),
    .int_tile_q8 = qb_int_tile_q8_ref,
    .gemm_i8 = qb_gemm_i8_ref,
    .quant_row = qb_quant_row_ref,
    .quant_row_w = qb_quant_row_w_ref,
    .attn_f32 = qb_attn_f32_ref,
    TRAIN_MEMBERS(ref),
    .dequant_row = qb_dequant_row_ref,
    .dequant_int = qb_dequant_row_int_ref,
    .quant_int = qb_quant_row_int_ref,
    .quant_nf4 = qb_quant_row_nf4_ref,
    .dequant_nf4 = qb_dequant_row_nf4_ref,
    .quant_fp8 = qb_quant_row_fp8_ref,
    .dequant_fp8 = qb_dequant_row_fp8_ref,
    .quant_mxfp4 = qb_quant_row_mxfp4_ref,
    .dequant_mxfp4 = qb_dequant_row_mxfp4_ref,
    .err_rows = qb_err_rows_ref,
    .hist_slots = qb_hist_slots_ref,
    .hist_slots2 = qb_hist_slots2_ref,
    .map_filter = qb_map_filter_ref,
    .mul_f32 = qb_mul_f32_ref,
};
static const qb_kernel_table table_avx2 = {
    .isa = "avx2", .level = QB_ISA_AVX2, .dot_f32 = qb_dot_f32_avx2, .dot_f16 = qb_dot_f16_avx2, .dot_bf16 = qb_dot_bf16_avx2,
    .tile_f32 = qb_tile_f32_avx2, .tile_f16 = qb_tile_f16_avx2, .f16_to_f32 = qb_f16_to_f32_avx2, .bf16_to_f32 = qb_bf16_to_f32_avx2,
    QDOT_MEMBERS(avx2, avx2, avx2),
    .int_tile_q8 = qb_int_tile_q8_avx2,
    .gemm_i8 = qb_gemm_i8_avx2,
    .quant_row = qb_quant_row_avx2,
    .quant_row_w = qb_quant_row_w_avx2,
    .attn_f32 = qb_attn_f32_avx2,
    TRAIN_MEMBERS(avx2),
    .dequant_row = qb_dequant_row_avx2,
    .dequant_int = qb_dequant_row_int_avx2,
    .quant_int = qb_quant_row_int_avx2,
    .quant_nf4 = qb_quant_row_nf4_ref,
    .dequant_nf4 = qb_dequant_row_nf4_ref,
    .quant_fp8 = qb_quant_row_fp8_ref,
    .dequant_fp8 = qb_dequant_row_fp8_ref,
    .quant_mxfp4 = qb_quant_row_mxfp4_ref,
    .dequant_mxfp4 = qb_dequant_row_mxfp4_ref,
    .err_rows = qb_err_rows_avx2,
    .hist_slots = qb_hist_slots_avx2,
    .hist_slots2 = qb_hist_slots2_avx2,
    .map_filter = qb_map_filter_avx2,
    .mul_f32 = qb_mul_f32_avx2,
};
static const qb_kernel_table table_avx512 = {
    .isa = "avx512", .level = QB_ISA_AVX512, .dot_f32 = qb_dot_f32_avx512, .dot_f16 = qb_dot_f16_avx512, .dot_bf16 = qb_dot_bf16_avx512,
    .tile_f32 = qb_tile_f32_avx512, .tile_f16 = qb_tile_f16_avx512, .f16_to_f32 = qb_f16_to_f32_avx512, .bf16_to_f32 = qb_bf16_to_f32_avx512,
    QDOT_MEMBERS(avx512, avx512, avx512),
    .int_tile_q8 = qb_int_tile_q8_avx512,
    .gemm_i8 = qb_gemm_i8_avx512,
    .quant_row = qb_quant_row_avx512,
    .quant_row_w = qb_quant_row_w_avx512,
    .attn_f32 = qb_attn_f32_avx512,
    TRAIN_MEMBERS(avx512),
    .dequant_row = qb_dequant_row_avx512,
    .dequant_int = qb_dequant_row_int_avx512,
    .quant_int = qb_quant_row_int_avx512,
    .quant_nf4 = qb_quant_row_nf4_avx512,
    .dequant_nf4 = qb_dequant_row_nf4_avx512,
    .quant_fp8 = qb_quant_row_fp8_avx512,
    .dequant_fp8 = qb_dequant_row_fp8_avx512,
    .quant_mxfp4 = qb_quant_row_mxfp4_avx512,
    .dequant_mxfp4 = qb_dequant_row_mxfp4_avx512,
    .err_rows = qb_err_rows_avx512,
    .hist_slots = qb_hist_slots_avx512,
    .hist_slots2 = qb_hist_slots2_avx512,
    .map_filter = qb_map_filter_avx512,
    .mul_f32 = qb_mul_f32_avx512,
};
static const qb_kernel_table table_avx512vnni = {
    .isa = "avx512vnni", .level = QB_ISA_AVX512VNNI, .dot_f32 = qb_dot_f32_avx512, .dot_f16 = qb_dot_f16_avx512, .dot_bf16 = qb_dot_bf16_avx512,
    .tile_f32 = qb_tile_f32_avx512, .tile_f16 = qb_tile_f16_avx512, .f16_to_f32 = qb_f16_to_f32_avx512, .bf16_to_f32 = qb_bf16_to_f32_avx512,
    QDOT_MEMBERS(avx512vnni, avx512, avx512),
    .int_tile_q8 = qb_int_tile_q8_avx512vnni,
    .quantize_act_tile = qb_quantize_act_tile_avx512,
    .gemm_q = {[QB_TYPE_Q8_0] = qb_gemm_q8_0_avx512vnni, [QB_TYPE_Q4_0] = qb_gemm_q4_0_avx512vnni,
               [QB_TYPE_IQ4_NL] = qb_gemm_iq4_nl_avx512vnni},
    .quantize_act_gemv = {[QB_TYPE_Q4_0] = qb_quantize_act_gemv_q4_0_avx512},
    .gemv_q = {[QB_TYPE_Q4_0] = qb_gemv_q4_0_avx512vnni},
    .int_gemv = qb_int_gemv_avx512vnni,
    .gemm_i8 = qb_gemm_i8_avx512vnni,
    .quant_row = qb_quant_row_avx512,
    .quant_row_w = qb_quant_row_w_avx512,
    .attn_f32 = qb_attn_f32_avx512,
    TRAIN_MEMBERS(avx512),
    .dequant_row = qb_dequant_row_avx512,
    .dequant_int = qb_dequant_row_int_avx512,
    .quant_int = qb_quant_row_int_avx512,
    .quant_nf4 = qb_quant_row_nf4_avx512,
    .dequant_nf4 = qb_dequant_row_nf4_avx512,
    .quant_fp8 = qb_quant_row_fp8_avx512,
    .dequant_fp8 = qb_dequant_row_fp8_avx512,
    .quant_mxfp4 = qb_quant_row_mxfp4_avx512,
    .dequant_mxfp4 = qb_dequant_row_mxfp4_avx512,
    .err_rows = qb_err_rows_avx512,
    .hist_slots = qb_hist_slots_avx512,
    .hist_slots2 = qb_hist_slots2_avx512,
    .map_filter = qb_map_filter_avx512,
    .mul_f32 = qb_mul_f32_avx512,
};

/* F16C from cpuid directly: older clang's __builtin_cpu_supports does not know "f16c". */
static bool has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

static bool cpu_has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
}

static bool cpu_has_avx512(void)
{
    __builtin_cpu_init();
    return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}

static bool cpu_has_avx512vnni(void)
{
    return cpu_has_avx512() && __builtin_cpu_supports("avx512vnni");
}

const qb_kernel_table *qb_kernels_for(const char *isa)
{
    if (strcmp(isa, "ref") == 0) return &table_ref;
    if (strcmp(isa, "avx2") == 0) return cpu_has_avx2() ? &table_avx2 : NULL;
    if (strcmp(isa, "avx512") == 0) return cpu_has_avx512() ? &table_avx512 : NULL;
    if (strcmp(isa, "avx512vnni") == 0) return cpu_has_avx512vnni() ? &table_avx512vnni : NULL;
    return NULL;
}

qb_fmt_tile_fn qb_kernels_pick_tile(const qb_kernel_table *k, const qb_fmt_tile_fn per_isa[QB_ISA_COUNT])
{
    for (int l = k->level; l >= 0; l--)
        if (per_isa[l]) return per_isa[l];
    return NULL;
}

static const qb_kernel_table *chosen;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void choose(void)
{
    const char *want = getenv("QB_ISA");
    if (want && *want && (chosen = qb_kernels_for(want))) return;
    chosen = cpu_has_avx512vnni() ? &table_avx512vnni
             : cpu_has_avx512()   ? &table_avx512
             : cpu_has_avx2()     ? &table_avx2
                                  : &table_ref;
}

const qb_kernel_table *qb_kernels(void)
{
    pthread_once(&once, choose);
    return chosen;
}

/* ---- gemv or qdot for one token (measured once) ------------------------------------------- */

static bool gemv_wins = true;
static pthread_once_t gemv_once = PTHREAD_ONCE_INIT;

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Stream a 16 MiB Q4_0 matrix (beyond L2, as a model's weights are) through each kernel three
 * times, best pass each, and keep the gemv only when it is not slower: on Zen 4 it read
 * 21 GB/s against 14 for the per-block dot product, on Zen 5 13 against 20. */
static void measure_gemv(void)
{
    const char *env = getenv("QB_GEMV");
    const qb_kernel_table *k = qb_kernels();
    if (env && (!strcmp(env, "on") || !strcmp(env, "off"))) {
        gemv_wins = !strcmp(env, "on");
        return;
    }
    const int n = 4096, at = qb_act_type(QB_TYPE_Q4_0);
    const size_t rb = (size_t)n / 32 * 18, rows = ((size_t)16 << 20) / rb;
    uint8_t *w = malloc(rb * rows), *xg = malloc(qb_act_gemv_row_bytes(n)), *xq = malloc((size_t)n * 2);
    float *x = malloc((size_t)n * sizeof *x);
    if (!w || !xg || !xq || !x || !k->gemv_q[QB_TYPE_Q4_0] || at < 0 || !k->quantize_act[at]) goto done;
    for (size_t i = 0; i < rb * rows; i++) w[i] = (uint8_t)(i * 2654435761u >> 13);
    for (size_t r = 0; r < rows * (size_t)(n / 32); r++) { /* scale 1.0 (f16 0x3c00) in every block */
        w[r * 18] = 0;
        w[r * 18 + 1] = 0x3c;
    }
    for (int i = 0; i < n; i++) x[i] = (float)((i * 37) % 17) - 8.0f;
    k->quantize_act_gemv[QB_TYPE_Q4_0](x, xg, n);
    k->quantize_act[at](x, xq, n);
    double best_g = 1e9, best_q = 1e9;
    volatile float sink = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = seconds();
        for (size_t r = 0; r < rows; r++) sink += k->gemv_q[QB_TYPE_Q4_0](n, w + r * rb, xg);
        double t1 = seconds();
        for (size_t r = 0; r < rows; r++) {
            float o;
            k->qdot[QB_TYPE_Q4_0](n, w + r * rb, xq, 0, 1, &o);
            sink += o;
        }
        double t2 = seconds();
        if (t1 - t0 < best_g) best_g = t1 - t0;
        if (t2 - t1 < best_q) best_q = t2 - t1;
    }
    gemv_wins = best_g <= best_q;
done:
    free(w);
    free(xg);
    free(xq);
    free(x);
}

bool qb_gemv_preferred(int type)
{
    const qb_kernel_table *k = qb_kernels();
    if (!k->gemv_q[type] || !k->quantize_act_gemv[type]) return false;
    pthread_once(&gemv_once, measure_gemv);
    return gemv_wins;
}
