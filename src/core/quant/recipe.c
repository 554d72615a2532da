/* recipe.c — the quantbench.* metadata keys that record how a file was made (recipe.h). */
#include "recipe.h"
#include "../util/gguf.h"
#include "../util/gguf_write.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void qb_recipe_init(qb_recipe *r, const qb_plan *p)
{
    memset(r, 0, sizeof *r);
    r->plan = p;
    snprintf(r->info.version, sizeof r->info.version, "%s", QB_VERSION);
}

void qb_recipe_set_imatrix(qb_recipe *r, const qb_importance *imp)
{
    qb_recipe_info *i = &r->info;
    i->imatrix_file[0] = i->imatrix_sha256[0] = 0;
    i->imatrix_bytes = 0;
    if (!imp) return;
    snprintf(i->imatrix_file, sizeof i->imatrix_file, "%s", imp->path ? imp->path : "");
    i->imatrix_bytes = imp->bytes;
    snprintf(i->imatrix_sha256, sizeof i->imatrix_sha256, "%s", imp->sha256);
}

bool qb_recipe_put(qb_gguf_writer *w, const qb_recipe *r)
{
    const qb_recipe_info *i = &r->info;
    bool ok = qb_gguf_set_str(w, "quantbench.version", i->version[0] ? i->version : QB_VERSION);
    if (ok && r->plan) {
        char *text = qb_plan_to_string(r->plan);
        ok = text && qb_gguf_set_str(w, "quantbench.plan", text);
        free(text);
    }
    if (ok && i->type[0])
        ok = qb_gguf_set_str(w, "quantbench.quantize.type", i->type) &&
             qb_gguf_set_bool(w, "quantbench.quantize.pure", i->pure);
    if (ok && i->calib_file[0])
        ok = qb_gguf_set_str(w, "quantbench.calib.file", i->calib_file) &&
             qb_gguf_set_u64(w, "quantbench.calib.bytes", i->calib_bytes) &&
             qb_gguf_set_str(w, "quantbench.calib.sha256", i->calib_sha256) &&
             qb_gguf_set_u32(w, "quantbench.calib.windows", (uint32_t)i->calib_windows) &&
             qb_gguf_set_u32(w, "quantbench.calib.ctx", (uint32_t)i->calib_ctx);
    if (ok && i->imatrix_file[0])
        ok = qb_gguf_set_str(w, "quantbench.imatrix.file", i->imatrix_file) &&
             qb_gguf_set_u64(w, "quantbench.imatrix.bytes", i->imatrix_bytes) &&
             qb_gguf_set_str(w, "quantbench.imatrix.sha256", i->imatrix_sha256);
    return ok;
}

static void copy_str(const qb_gguf *g, const char *key, char *out, size_t cap)
{
    const char *v = qb_gguf_get_str(g, key);
    snprintf(out, cap, "%s", v ? v : "");
}

qb_status qb_recipe_get(qb_ctx *ctx, const qb_gguf *g, const char *name, qb_plan *plan, qb_recipe_info *info)
{
    memset(info, 0, sizeof *info);
    qb_plan_init(plan);
    copy_str(g, "quantbench.version", info->version, sizeof info->version);
    copy_str(g, "quantbench.quantize.type", info->type, sizeof info->type);
    info->pure = qb_gguf_get_bool(g, "quantbench.quantize.pure", false);
    copy_str(g, "quantbench.calib.file", info->calib_file, sizeof info->calib_file);
    info->calib_bytes = (uint64_t)qb_gguf_get_int(g, "quantbench.calib.bytes", 0);
    copy_str(g, "quantbench.calib.sha256", info->calib_sha256, sizeof info->calib_sha256);
    info->calib_windows = (int)qb_gguf_get_int(g, "quantbench.calib.windows", 0);
    info->calib_ctx = (int)qb_gguf_get_int(g, "quantbench.calib.ctx", 0);
    copy_str(g, "quantbench.imatrix.file", info->imatrix_file, sizeof info->imatrix_file);
    info->imatrix_bytes = (uint64_t)qb_gguf_get_int(g, "quantbench.imatrix.bytes", 0);
    copy_str(g, "quantbench.imatrix.sha256", info->imatrix_sha256, sizeof info->imatrix_sha256);
    const char *text = qb_gguf_get_str(g, "quantbench.plan");
    if (!text && !info->type[0]) return qb_fail(ctx, QB_ERR_ARG, "%s records no quantbench plan", name);
    if (!text) return QB_OK;
    char where[1100];
    snprintf(where, sizeof where, "%s:quantbench.plan", name);
    return qb_plan_parse(ctx, where, text, plan);
}
