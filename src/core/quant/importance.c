/* importance.c — llama-quantize's rules for finding a tensor's importance (importance.h). */
#include "importance.h"

#include <stdio.h>
#include <string.h>

/* "blk.N.ffn_K_exps.E.weight" (our per-expert tensors) -> "blk.N.ffn_K_exps.weight" and E. */
static bool expert_slice(const char *name, char *entry, size_t cap, int *expert)
{
    int l, e, len = 0;
    char kind[8];
    if (sscanf(name, "blk.%d.ffn_%7[a-z]_exps.%d.weight%n", &l, kind, &e, &len) != 3 || name[len] || e < 0)
        return false;
    snprintf(entry, cap, "blk.%d.ffn_%s_exps.weight", l, kind);
    *expert = e;
    return true;
}

qb_status qb_importance_lookup(qb_ctx *ctx, const qb_importance *imp, const char *name, int64_t n_cols,
                               int64_t n_mat, int n_experts, const float **w, bool *missing)
{
    *w = NULL;
    if (missing) *missing = false;
    if (!imp) return QB_OK;
    char entry[192];
    int expert = -1;
    if (!expert_slice(name, entry, sizeof entry, &expert)) snprintf(entry, sizeof entry, "%s", name);
    int64_t count = 0;
    const float *v = imp->entry(imp->src, entry, &count);
    if (!v) {
        if (missing) *missing = true;
        return QB_OK;
    }
    if (expert >= 0) n_mat = n_experts;
    if (n_mat < 1) n_mat = 1;
    if (count != n_cols * n_mat || (expert >= 0 && expert >= n_mat)) {
        if (!strcmp(name, "token_embd.weight")) return QB_OK; /* llama-quantize: unweighted, no error */
        return qb_fail(ctx, QB_ERR_FORMAT,
                       "%s: importance of %s has %lld values; the tensor needs %lld (%lld columns x %lld matrices)",
                       imp->path ? imp->path : "imatrix", name, (long long)count, (long long)(n_cols * n_mat),
                       (long long)n_cols, (long long)n_mat);
    }
    *w = expert >= 0 ? v + (size_t)expert * (size_t)n_cols : v;
    return QB_OK;
}
