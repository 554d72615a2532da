/* ftype.c — llama-quantize's file types and default tensor-type mix (a fact table of
 * llama.cpp's rules for the types we support, the importance-matrix i-quant types included:
 * IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ2_M, IQ3_XXS, IQ3_XS, IQ3_S, IQ3_M, and TQ1_0 / TQ2_0). */
#include "ftype.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const qb_ftype ftypes[] = {
    {"F32", 0, QB_TYPE_F32},       {"F16", 1, QB_TYPE_F16},       {"BF16", 32, QB_TYPE_BF16},
    {"Q4_0", 2, QB_TYPE_Q4_0},     {"Q4_1", 3, QB_TYPE_Q4_1},     {"Q5_0", 8, QB_TYPE_Q5_0},
    {"Q5_1", 9, QB_TYPE_Q5_1},     {"Q8_0", 7, QB_TYPE_Q8_0},     {"Q2_K", 10, QB_TYPE_Q2_K},
    {"Q2_K_S", 21, QB_TYPE_Q2_K},  {"Q3_K_S", 11, QB_TYPE_Q3_K},  {"Q3_K_M", 12, QB_TYPE_Q3_K},
    {"Q3_K_L", 13, QB_TYPE_Q3_K},  {"Q4_K_S", 14, QB_TYPE_Q4_K},  {"Q4_K_M", 15, QB_TYPE_Q4_K},
    {"Q5_K_S", 16, QB_TYPE_Q5_K},  {"Q5_K_M", 17, QB_TYPE_Q5_K},  {"Q6_K", 18, QB_TYPE_Q6_K},
    {"IQ4_NL", 25, QB_TYPE_IQ4_NL}, {"IQ4_XS", 30, QB_TYPE_IQ4_XS},
    /* 3-bit i-quants and ternary */
    {"IQ3_XXS", 23, QB_TYPE_IQ3_XXS}, {"IQ3_XS", 22, QB_TYPE_IQ3_S}, {"IQ3_S", 26, QB_TYPE_IQ3_S},
    {"IQ3_M", 27, QB_TYPE_IQ3_S},     {"TQ1_0", 36, QB_TYPE_TQ1_0},  {"TQ2_0", 37, QB_TYPE_TQ2_0},
    /* the grid i-quants */
    {"IQ2_XXS", 19, QB_TYPE_IQ2_XXS}, {"IQ2_XS", 20, QB_TYPE_IQ2_XS}, {"IQ2_S", 28, QB_TYPE_IQ2_XS},
    {"IQ2_M", 29, QB_TYPE_IQ2_S},     {"IQ1_S", 24, QB_TYPE_IQ1_S},   {"IQ1_M", 31, QB_TYPE_IQ1_M},
    {NULL, 0, 0},
};

/* llama.cpp's aliases: "Q3_K" means Q3_K_M, "Q4_K" Q4_K_M, "Q5_K" Q5_K_M. */
const qb_ftype *qb_ftype_lookup(const char *name)
{
    static const struct { const char *alias, *target; } aliases[] = {
        {"Q3_K", "Q3_K_M"}, {"Q4_K", "Q4_K_M"}, {"Q5_K", "Q5_K_M"},
    };
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (!strcasecmp(name, aliases[i].alias)) name = aliases[i].target;
    for (const qb_ftype *f = ftypes; f->name; f++)
        if (!strcasecmp(f->name, name)) return f;
    return NULL;
}

const qb_ftype *qb_ftype_all(void) { return ftypes; }

bool qb_ftype_quantizable(const char *name, int n_dims)
{
    size_t n = strlen(name);
    /* the experts' router stays as it is (llama-quantize never quantizes ffn_gate_inp) */
    return n >= 6 && !strcmp(name + n - 6, "weight") && n_dims >= 2 && !strstr(name, "_norm.weight") &&
           !strstr(name, "ffn_gate_inp.weight");
}

qb_mix_state qb_mix_state_for_model(const qb_model *m)
{
    qb_mix_state st = {.n_layers = m->cfg.n_layers, .n_gqa = m->cfg.n_heads / m->cfg.n_kv_heads,
                       .has_output = qb_model_find_tensor(m, "output.weight") != NULL, .n_expert = m->cfg.n_experts};
    for (int i = 0; i < m->n_tensors; i++) st.n_attn_v += strstr(m->tensors[i].name, "attn_v.weight") != NULL;
    return st;
}

/* The block of "blk.N.…" (llama.cpp parses the name when a block has experts), or -1. */
static int block_of(const char *name)
{
    int l;
    return sscanf(name, "blk.%d.", &l) == 1 ? l : -1;
}

static bool is(const qb_ftype *f, const char *name) { return !strcmp(f->name, name); }

typedef struct {
    const char *name;
    int block, index;
} named;

static int cmp_named(const void *a, const void *b)
{
    const named *x = a, *y = b;
    if (x->block != y->block) return x->block < y->block ? -1 : 1;
    return strcmp(x->name, y->name);
}

bool qb_ftype_tensor_order(const char *const *names, int n, int *order)
{
    named *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    if (!v) return false;
    for (int i = 0; i < n; i++) v[i] = (named){names[i], block_of(names[i]), i};
    qsort(v, (size_t)n, sizeof *v, cmp_named);
    for (int k = 0; k < n; k++) order[k] = v[k].index;
    free(v);
    return true;
}

/* llama.cpp's "use more bits" layers: the first and last eighth, and every third in between. */
static bool more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

/* Whether an importance matrix weights the quantizers (llama-quantize's qs.has_imatrix). */
static bool has_imatrix(const qb_mix_state *st) { return st->has_imatrix; }

static bool iq_low(const qb_ftype *f) /* the IQ2 / IQ1 file types, which have their own mix */
{
    return is(f, "IQ2_XXS") || is(f, "IQ2_XS") || is(f, "IQ2_S") || is(f, "IQ2_M") || is(f, "IQ1_S") || is(f, "IQ1_M");
}

/* llama.cpp's mix for the IQ2 / IQ1 file types (every tensor but output and token_embd). */
static qb_type mix_iq_low(const qb_ftype *f, qb_mix_state *st, const char *name, qb_type t)
{
    const bool iq2sm = is(f, "IQ2_S") || is(f, "IQ2_M");
    if (strstr(name, "attn_v.weight")) {
        t = st->n_gqa >= 4 || st->n_expert >= 4 ? QB_TYPE_Q4_K : iq2sm ? QB_TYPE_IQ3_S : QB_TYPE_Q2_K;
        st->i_attn_v++;
    } else if (st->n_expert == 8 && strstr(name, "attn_k.weight")) {
        t = QB_TYPE_Q4_K;
    } else if (strstr(name, "ffn_down")) {
        int i = st->n_expert > 1 ? block_of(name) : st->i_ffn_down++;
        if (i < st->n_layers / 8) t = iq2sm ? QB_TYPE_IQ3_S : QB_TYPE_Q2_K;
    } else if (strstr(name, "attn_output.weight")) {
        if (st->n_expert == 8) t = QB_TYPE_Q5_K;
        else if (is(f, "IQ1_S") || is(f, "IQ1_M")) t = QB_TYPE_IQ2_XXS;
        else if (iq2sm) t = QB_TYPE_IQ3_S;
    }
    return t;
}

static qb_type mix(const qb_ftype *f, qb_mix_state *st, const char *name, int64_t ne0, qb_type t)
{
    const qb_type_info *ti = qb_type_get(t);
    if (!strcmp(name, "output.weight") || (!st->has_output && !strcmp(name, "token_embd.weight"))) {
        if (ne0 % ti->blck != 0) return QB_TYPE_Q8_0;
        if (is(f, "IQ3_XXS") || iq_low(f)) return QB_TYPE_Q5_K;
        return t != QB_TYPE_Q8_0 ? QB_TYPE_Q6_K : t;
    }
    if (!strcmp(name, "token_embd.weight")) {
        if (is(f, "IQ2_XXS") || is(f, "IQ2_XS") || is(f, "IQ1_S") || is(f, "IQ1_M")) return QB_TYPE_Q2_K;
        if (is(f, "IQ2_S") || is(f, "IQ2_M")) return QB_TYPE_IQ3_S;
        if (is(f, "IQ3_XXS")) t = QB_TYPE_IQ3_S;
        else if (is(f, "TQ1_0") || is(f, "TQ2_0")) t = QB_TYPE_Q4_K;
    } else if (iq_low(f)) {
        return mix_iq_low(f, st, name, t);
    } else if (strstr(name, "attn_v.weight")) {
        int i = st->i_attn_v++;
        if (is(f, "Q2_K")) t = st->n_gqa >= 4 ? QB_TYPE_Q4_K : QB_TYPE_Q3_K;
        else if (is(f, "Q2_K_S") && st->n_gqa >= 4) t = QB_TYPE_Q4_K;
        else if (is(f, "IQ3_XXS")) t = st->n_gqa >= 4 ? QB_TYPE_Q4_K : !has_imatrix(st) ? QB_TYPE_IQ3_S : QB_TYPE_IQ3_XXS;
        else if ((is(f, "IQ3_XS") || is(f, "IQ3_S")) && st->n_gqa >= 4) t = QB_TYPE_Q4_K;
        else if (is(f, "IQ3_M")) t = QB_TYPE_Q4_K;
        else if (is(f, "Q3_K_M")) t = i < 2 ? QB_TYPE_Q5_K : QB_TYPE_Q4_K;
        else if (is(f, "Q3_K_L")) t = QB_TYPE_Q5_K;
        else if ((is(f, "IQ4_NL") || is(f, "IQ4_XS")) && st->n_gqa >= 4) t = QB_TYPE_Q5_K;
        else if ((is(f, "Q4_K_M") || is(f, "Q5_K_M")) && more_bits(i, st->n_attn_v)) t = QB_TYPE_Q6_K;
        else if (is(f, "Q4_K_S") && i < 4) t = QB_TYPE_Q5_K;
        if (st->n_expert == 8) t = QB_TYPE_Q8_0; /* llama.cpp: "trades just ~128MB" on Mixtral */
    } else if (strstr(name, "attn_k.weight")) {
        if (st->n_expert == 8) t = QB_TYPE_Q8_0;
        else if (is(f, "IQ3_XS")) t = QB_TYPE_IQ3_XXS;
        else if (is(f, "IQ3_XXS")) t = QB_TYPE_IQ2_S;
    } else if (strstr(name, "attn_q.weight")) {
        if (is(f, "IQ3_XS")) t = QB_TYPE_IQ3_XXS;
        else if (is(f, "IQ3_XXS")) t = QB_TYPE_IQ2_S;
    } else if (strstr(name, "ffn_down")) {
        /* with experts, llama.cpp reads the block from the name; each block's expert tensors
         * are one 3-D tensor there, so per-expert tensors do not advance the counter */
        int i = st->n_expert > 1 ? block_of(name) : st->i_ffn_down++, n = st->n_layers;
        if (is(f, "Q2_K")) t = QB_TYPE_Q3_K;
        else if (is(f, "Q2_K_S")) { if (i < n / 8) t = QB_TYPE_Q4_K; }
        else if (is(f, "IQ3_XXS") && !has_imatrix(st)) t = i < n / 8 ? QB_TYPE_Q4_K : QB_TYPE_Q3_K;
        else if (is(f, "Q3_K_M")) t = i < n / 16 ? QB_TYPE_Q5_K : QB_TYPE_Q4_K;
        else if (is(f, "IQ3_M") && (i < n / 8 || (st->n_expert == 8 && more_bits(i, n)))) t = QB_TYPE_Q4_K;
        else if (is(f, "Q3_K_L")) t = QB_TYPE_Q5_K;
        else if (is(f, "Q4_K_M")) { if (more_bits(i, n)) t = QB_TYPE_Q6_K; }
        else if (i < n / 8 && (is(f, "IQ4_NL") || is(f, "IQ4_XS")) && !st->has_imatrix) t = QB_TYPE_Q5_K;
        else if (is(f, "Q5_K_M") && more_bits(i, n)) t = QB_TYPE_Q6_K;
        else if (is(f, "Q4_K_S") && i < n / 8) t = QB_TYPE_Q5_K;
        /* with an imatrix only (llama.cpp keeps the mix without one as it was): the first
         * eighth of ffn_down in the affine type, against Q4_0/Q5_0's trouble there */
        else if ((is(f, "Q4_0") || is(f, "Q5_0")) && st->has_imatrix && i < n / 8)
            t = is(f, "Q4_0") ? QB_TYPE_Q4_1 : QB_TYPE_Q5_1;
    } else if (strstr(name, "attn_output.weight")) {
        if (st->n_expert == 8) {
            if (is(f, "Q2_K") || is(f, "Q3_K_S") || is(f, "Q3_K_M") || is(f, "IQ4_NL") || is(f, "Q4_K_S") ||
                is(f, "Q4_K_M") || is(f, "IQ4_XS") || is(f, "IQ3_XS") || is(f, "IQ3_XXS") || is(f, "IQ3_S") ||
                is(f, "IQ3_M"))
                t = QB_TYPE_Q5_K;
        } else if (is(f, "Q2_K")) t = QB_TYPE_Q3_K;
        else if (is(f, "IQ3_XXS")) t = QB_TYPE_IQ3_S;
        else if (is(f, "Q3_K_M")) t = QB_TYPE_Q4_K;
        else if (is(f, "Q3_K_L")) t = QB_TYPE_Q5_K;
        else if (is(f, "IQ3_M")) t = QB_TYPE_Q4_K;
    } else if (strstr(name, "attn_qkv.weight")) { /* fused (Phi-3) */
        if (is(f, "Q3_K_M") || is(f, "Q3_K_L") || is(f, "IQ3_M")) t = QB_TYPE_Q4_K;
        else if (is(f, "Q4_K_M")) t = QB_TYPE_Q5_K;
        else if (is(f, "Q5_K_M")) t = QB_TYPE_Q6_K;
    } else if (strstr(name, "ffn_gate") || strstr(name, "ffn_up")) {
        /* IQ3_XS keeps the first and last eighth of the blocks' gate / up in IQ3_S */
        int *ctr = strstr(name, "ffn_gate") ? &st->i_ffn_gate : &st->i_ffn_up;
        int i = st->n_expert > 1 ? block_of(name) : (*ctr)++, n = st->n_layers;
        if (is(f, "IQ3_XS") && i >= n / 8 && i < 7 * n / 8) t = QB_TYPE_IQ3_XXS;
    }
    return t;
}

qb_status qb_ftype_tensor_type(qb_ctx *ctx, const qb_ftype *f, bool pure, qb_mix_state *st, const char *name,
                               int64_t ne0, qb_type *out)
{
    qb_type t = f->base;
    const qb_type_info *ti = qb_type_get(t);
    bool quantized = ti->blck > 1;
    if (pure || !quantized) {
        if (ne0 % ti->blck != 0)
            return qb_fail(ctx, QB_ERR_UNSUPPORTED, "tensor %s: row length %lld is not divisible by %d, required for %s",
                           name, (long long)ne0, ti->blck, ti->name);
        *out = t;
        return QB_OK;
    }
    t = mix(f, st, name, ne0, t);
    ti = qb_type_get(t);
    if (!ti) /* a type this build does not know */
        return qb_fail(ctx, QB_ERR_UNSUPPORTED, "tensor %s: %s's mix wants ggml type %d, which this build does not know",
                       name, f->name, (int)t);
    if (ne0 % ti->blck != 0) {
        qb_type fb;
        switch ((int)t) {
        case QB_TYPE_Q2_K: case QB_TYPE_Q3_K: case QB_TYPE_IQ4_XS: case QB_TYPE_IQ2_XXS: case QB_TYPE_IQ2_XS:
        case QB_TYPE_IQ2_S: case QB_TYPE_IQ1_S: case QB_TYPE_IQ1_M: case QB_TYPE_IQ3_XXS: case QB_TYPE_IQ3_S:
            fb = QB_TYPE_IQ4_NL; break;
        case QB_TYPE_TQ1_0: case QB_TYPE_TQ2_0: fb = QB_TYPE_Q4_0; break;
        case QB_TYPE_Q4_K: fb = QB_TYPE_Q5_0; break;
        case QB_TYPE_Q5_K: fb = QB_TYPE_Q5_1; break;
        case QB_TYPE_Q6_K: fb = QB_TYPE_Q8_0; break;
        default:
            return qb_fail(ctx, QB_ERR_UNSUPPORTED,
                           "tensor %s: row length %lld is not divisible by %d, required for %s (unsupported tensor size)",
                           name, (long long)ne0, ti->blck, ti->name);
        }
        if (ne0 % qb_type_get(fb)->blck != 0) fb = QB_TYPE_F16;
        t = fb;
    }
    *out = t;
    return QB_OK;
}
