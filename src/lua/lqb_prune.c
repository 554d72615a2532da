/* lqb_prune.c — structured pruning in Lua (core/method/prune_structured.h):
 * model:prune_structured{heads=F, ffn=F, layers=N, calib=path [, samples=N, ctx=N, progress=fn]}
 * removes a share F of every block's attention heads and FFN neurons and N whole blocks, chosen
 * by importance measured on the calibration text, and rewrites the model's shapes in place.
 * Returns the model and a report: {before={...}, after={...}, windows=, ctx=, blocks={...}},
 * blocks[i] for block i-1 of the unpruned model (0-based block numbers in `block`, as in the
 * tensor names). An error leaves the model as it was. */
#include "lqb_internal.h"

#include <string.h>

#include "core/infer/runcfg.h"
#include "core/method/prune_structured.h"

static void stage_progress(void *ud, const char *stage, int done, int total)
{
    (void)stage;
    lqb_progress_cb(ud, done, total);
}

/* {layers, heads, kv_heads, ffn, params, bytes} of m */
static void push_shape(lua_State *L, const qb_model *m)
{
    lua_createtable(L, 0, 6);
    lqb_set_int(L, "layers", m->cfg.n_layers);
    lqb_set_int(L, "heads", m->cfg.n_heads);
    lqb_set_int(L, "kv_heads", m->cfg.n_kv_heads);
    lqb_set_int(L, "ffn", m->cfg.hidden_dim);
    lqb_set_int(L, "params", (lua_Integer)qb_model_params(m));
    lqb_set_int(L, "bytes", (lua_Integer)qb_model_bytes(m));
}

/* an array of the indices i < n with !keep[i] (0-based values) */
static void push_removed(lua_State *L, const uint8_t *keep, int n)
{
    lua_newtable(L);
    lua_Integer k = 0;
    for (int i = 0; i < n; i++)
        if (!keep[i]) {
            lua_pushinteger(L, i);
            lua_rawseti(L, -2, ++k);
        }
}

/* share of the importance v[0..n) that !keep removes */
static double removed_share(const double *v, const uint8_t *keep, int n)
{
    double all = 0, gone = 0;
    for (int i = 0; i < n; i++) {
        all += v[i];
        if (!keep[i]) gone += v[i];
    }
    return all > 0 ? gone / all : 0;
}

static void push_blocks(lua_State *L, const qb_prune_importance *imp, const qb_prune_selection *s)
{
    int H = s->n_heads, KV = s->n_kv_heads, F = s->hidden_dim;
    lua_createtable(L, s->n_layers, 0);
    for (int l = 0; l < s->n_layers; l++) {
        const uint8_t *kn = s->keep_neuron + (size_t)l * F;
        lua_createtable(L, 0, 8);
        lqb_set_int(L, "block", l);
        lua_pushboolean(L, !s->keep_layer[l]);
        lua_setfield(L, -2, "removed");
        if (imp->layer) lqb_set_num(L, "influence", imp->layer[l]);
        if (s->keep_layer[l]) {
            push_removed(L, s->keep_head + (size_t)l * H, H);
            lua_setfield(L, -2, "heads_removed");
            push_removed(L, s->keep_kv + (size_t)l * KV, KV);
            lua_setfield(L, -2, "kv_heads_removed");
            int nr = 0;
            for (int i = 0; i < F; i++) nr += !kn[i];
            lqb_set_int(L, "neurons_removed", nr);
            lqb_set_num(L, "head_share", removed_share(imp->head + (size_t)l * H, s->keep_head + (size_t)l * H, H));
            lqb_set_num(L, "neuron_share", removed_share(imp->neuron + (size_t)l * F, kn, F));
        }
        lua_rawseti(L, -2, l + 1);
    }
}

int lqb_model_prune_structured(lua_State *L)
{
    qb_model *m = lqb_check_model(L, 1);
    int o = lqb_opt_table(L, 2);
    if (!o) return luaL_error(L, "prune_structured: give {heads=, ffn=, layers=, calib=path}");
    const char *calib = lqb_opt_str(L, o, "calib", NULL);
    if (!calib) return luaL_error(L, "prune_structured: calib= (the calibration text's path) is needed");
    lua_Integer layers = lqb_opt_int(L, o, "layers", 0), samples = lqb_opt_int(L, o, "samples", 0),
                n_ctx = lqb_opt_int(L, o, "ctx", 0);
    if (layers < 0 || layers > 1 << 20 || samples < 0 || samples > 1 << 24 || n_ctx < 0 || n_ctx > 1 << 20)
        return luaL_error(L, "bad option 'layers'/'samples'/'ctx' to 'prune_structured' (must be >= 0)");
    qb_prune_amount a = {.heads = lqb_opt_num(L, o, "heads", 0), .ffn = lqb_opt_num(L, o, "ffn", 0),
                         .layers = (int)layers};
    qb_ctx *ctx = &lqb_host_of(L)->ctx;
    if (qb_prune_amount_check(ctx, m, &a) != QB_OK) return lqb_fail(L, QB_ERR_ARG);
    /* activation settings follow the tensor table, which the rewrite renumbers: refused when
     * set, else the run configuration (its KV type) is made again for the new table */
    qb_run_config *rc = lqb_model_run(L, 1, false);
    if (qb_run_config_any_act(rc))
        return luaL_error(L, "prune_structured: the model has activation settings (m:reset() them first)");
    push_shape(L, m); /* before */
    int before = lua_gettop(L);
    lqb_progress pr;
    lqb_progress_begin(L, &pr, "prune_structured", o);
    qb_prune_structured_opts po = {.n_samples = (int)samples, .n_ctx = (int)n_ctx, .progress = stage_progress,
                                   .ud = &pr, .cancel = lqb_cancel_ptr(L)};
    qb_prune_importance imp;
    qb_prune_selection sel;
    qb_status st = qb_prune_structured(ctx, m, calib, &a, &po, &imp, &sel);
    lqb_progress_end(L, &pr, st);
    if (rc) {
        lqb_model *u = luaL_checkudata(L, 1, LQB_MODEL);
        int kv = rc->kv_type;
        qb_run_config_free(u->run);
        u->run = NULL;
        lqb_model_run(L, 1, true)->kv_type = kv;
    }
    lua_createtable(L, 0, 5);
    lua_pushvalue(L, before);
    lua_setfield(L, -2, "before");
    push_shape(L, m);
    lua_setfield(L, -2, "after");
    lqb_set_int(L, "windows", imp.n_windows);
    lqb_set_int(L, "ctx", imp.n_ctx);
    push_blocks(L, &imp, &sel);
    lua_setfield(L, -2, "blocks");
    qb_prune_importance_free(&imp);
    qb_prune_selection_free(&sel);
    lua_pushvalue(L, 1);
    lua_insert(L, -2);
    return 2;
}
