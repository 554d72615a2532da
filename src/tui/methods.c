/* methods.c — the method table (methods.h): RTN symmetric / asymmetric integer grids, NF4,
 * FP8 E4M3 / E5M2, MXFP4, llama.cpp's K-quants, legacy and IQ4 formats, and the calibration
 * methods GPTQ and AWQ on integer grids (their `job` is the core method's name). */
#include "methods.h"

#include <stdio.h>
#include <strings.h>

static bool rtn(int bits, int group, bool asym, qb_format *o)
{
    *o = (qb_format){.kind = QB_FMT_INT, .bits = bits, .group = group, .asym = asym};
    return bits >= 2 && bits <= 8;
}
static bool rtn_sym(int bits, int group, qb_format *o) { return rtn(bits, group, false, o); }
static bool rtn_asym(int bits, int group, qb_format *o) { return rtn(bits, group, true, o); }

static bool nf4(int bits, int group, qb_format *o)
{
    (void)bits;
    *o = (qb_format){.kind = QB_FMT_NF4, .group = 64, .double_quant = group == 256};
    return true;
}

static bool fp8_e4m3(int bits, int group, qb_format *o)
{
    (void)bits;
    *o = (qb_format){.kind = QB_FMT_FP8_E4M3, .bits = 8, .group = group};
    return true;
}

static bool fp8_e5m2(int bits, int group, qb_format *o)
{
    (void)bits;
    *o = (qb_format){.kind = QB_FMT_FP8_E5M2, .bits = 8, .group = group};
    return true;
}

static bool mxfp4(int bits, int group, qb_format *o)
{
    (void)bits, (void)group;
    *o = (qb_format){.kind = QB_FMT_MXFP4, .bits = 4, .group = 32};
    return true;
}

static bool kquant(int bits, int group, qb_format *o)
{
    (void)group;
    static const qb_type t[9] = {0, 0, QB_TYPE_Q2_K, QB_TYPE_Q3_K, QB_TYPE_Q4_K, QB_TYPE_Q5_K, QB_TYPE_Q6_K, 0, QB_TYPE_Q8_0};
    if (bits < 2 || bits > 8 || bits == 7) return false;
    *o = qb_format_ggml(t[bits]);
    return true;
}

static bool legacy(int bits, int group, qb_format *o)
{
    (void)group;
    qb_type t = bits == 8 ? QB_TYPE_Q8_0 : bits == 5 ? QB_TYPE_Q5_0 : bits == 4 ? QB_TYPE_Q4_0 : QB_TYPE_COUNT;
    *o = qb_format_ggml(t);
    return t != QB_TYPE_COUNT;
}

static bool legacy_asym(int bits, int group, qb_format *o)
{
    (void)group;
    qb_type t = bits == 5 ? QB_TYPE_Q5_1 : bits == 4 ? QB_TYPE_Q4_1 : QB_TYPE_COUNT;
    *o = qb_format_ggml(t);
    return t != QB_TYPE_COUNT;
}

static bool iq4(int bits, int group, qb_format *o)
{
    (void)bits;
    *o = qb_format_ggml(group == 256 ? QB_TYPE_IQ4_XS : QB_TYPE_IQ4_NL);
    return true;
}

#define GR_INT {QB_GROUP_TENSOR, QB_GROUP_CHANNEL, 128, 64, 32, -2}
static const tui_method methods[] = {
    {"RTN sym", "rtn", {8, 7, 6, 5, 4, 3, 2, 0}, GR_INT, rtn_sym, NULL},
    {"RTN asym", "rtn-asym", {8, 7, 6, 5, 4, 3, 2, 0}, GR_INT, rtn_asym, NULL},
    {"NF4", "nf4", {4, 0}, {64, 256, -2}, nf4, NULL},
    {"FP8 E4M3", "fp8-e4m3", {8, 0}, {QB_GROUP_TENSOR, QB_GROUP_CHANNEL, -2}, fp8_e4m3, NULL},
    {"FP8 E5M2", "fp8-e5m2", {8, 0}, {QB_GROUP_TENSOR, QB_GROUP_CHANNEL, -2}, fp8_e5m2, NULL},
    {"MXFP4", "mxfp4", {4, 0}, {32, -2}, mxfp4, NULL},
    {"llama.cpp K", "kquant", {8, 6, 5, 4, 3, 2, 0}, {256, -2}, kquant, NULL},
    {"llama.cpp legacy", "legacy", {8, 5, 4, 0}, {32, -2}, legacy, NULL},
    {"llama.cpp legacy asym", "legacy-asym", {5, 4, 0}, {32, -2}, legacy_asym, NULL},
    {"llama.cpp IQ4", "iq4", {4, 0}, {32, 256, -2}, iq4, NULL},
    /* calibration methods: integer asymmetric grids (GPTQ has no per-tensor grid) */
    {"GPTQ", "gptq", {8, 7, 6, 5, 4, 3, 2, 0}, {QB_GROUP_CHANNEL, 128, 64, 32, -2}, rtn_asym, "gptq"},
    {"AWQ", "awq", {8, 7, 6, 5, 4, 3, 2, 0}, {QB_GROUP_CHANNEL, 128, 64, 32, -2}, rtn_asym, "awq"},
};

const tui_method *tui_methods(int *count)
{
    *count = (int)(sizeof methods / sizeof methods[0]);
    return methods;
}

int tui_method_find(const char *name)
{
    int n;
    const tui_method *t = tui_methods(&n);
    for (int i = 0; i < n; i++)
        if (!strcasecmp(t[i].key, name) || !strcasecmp(t[i].name, name)) return i;
    return -1;
}

int tui_method_nearest_bits(int mi, int want)
{
    const int *b = methods[mi].bits;
    int best = b[0];
    for (int i = 0; b[i]; i++) {
        int d = b[i] - want, bd = best - want;
        if (d < 0) d = -d;
        if (bd < 0) bd = -bd;
        if (d < bd) best = b[i];
    }
    return best;
}

int tui_method_nearest_group(int mi, int want)
{
    const int *g = methods[mi].groups;
    for (int i = 0; g[i] != -2; i++)
        if (g[i] == want) return want;
    return g[0];
}

static int step(const int *v, int end, int cur, int dir)
{
    int n = 0, at = 0;
    while (v[n] != end) n++;
    for (int i = 0; i < n; i++)
        if (v[i] == cur) at = i;
    return v[((at + dir) % n + n) % n];
}

/* bits lists run 8 → 2, so "+1" (more bits) moves towards the front */
int tui_method_step_bits(int mi, int bits, int dir) { return step(methods[mi].bits, 0, bits, -dir); }
int tui_method_step_group(int mi, int group, int dir) { return step(methods[mi].groups, -2, group, dir); }

const char *tui_group_name(int mi, int group, char *buf, size_t cap)
{
    const tui_method *m = &methods[mi];
    if (m->format == nf4) snprintf(buf, cap, group == 256 ? "block 64, double quant" : "block 64");
    else if (m->format == kquant) snprintf(buf, cap, "super-block 256");
    else if (m->format == legacy || m->format == legacy_asym || m->format == mxfp4) snprintf(buf, cap, "block 32");
    else if (m->format == iq4) snprintf(buf, cap, group == 256 ? "IQ4_XS, super-block 256" : "IQ4_NL, block 32");
    else if (group == QB_GROUP_TENSOR) snprintf(buf, cap, "per tensor");
    else if (group == QB_GROUP_CHANNEL) snprintf(buf, cap, "per channel");
    else snprintf(buf, cap, "group %d", group);
    return buf;
}
