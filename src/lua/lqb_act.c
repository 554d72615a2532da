/* lqb_act.c — the activation side of a model from Lua: model:act{…} applies W8A8 (dynamic or
 * static int8 activations), SmoothQuant, LLM.int8() and the KV-cache type in one call
 * (qb_act_apply); model:act_clear() undoes them; model:int8_outliers(layer) reads LLM.int8()'s
 * outlier-column counters. */
#include "lqb_internal.h"

#include <math.h>
#include <string.h>

#include "core/method/act_quant.h"
#include "core/method/llm_int8.h"
#include "core/method/smoothquant.h"

/* model:act{act="int8"|"int8-static", smooth=, alpha=, smooth_out=, int8_outlier=, threshold=,
 * kv="f32"|"int8"|"int4", calib=path or a qb.calib result (reused: no second calibration pass),
 * calib_ctx=, calib_windows=} */
static int l_act(lua_State *L)
{
    qb_model *m = lqb_check_model(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    qb_act_opts o;
    qb_act_opts_init(&o);
    o.act = lqb_opt_str(L, 2, "act", o.act);
    o.smooth = lqb_opt_bool(L, 2, "smooth", o.smooth);
    o.alpha = (float)lqb_opt_num(L, 2, "alpha", o.alpha);
    o.smooth_out = lqb_opt_bool(L, 2, "smooth_out", o.smooth_out);
    o.int8_outlier = lqb_opt_bool(L, 2, "int8_outlier", o.int8_outlier);
    o.threshold = (float)lqb_opt_num(L, 2, "threshold", o.threshold);
    o.kv = lqb_opt_str(L, 2, "kv", o.kv);
    lua_getfield(L, 2, "calib");
    bool given;
    o.calib = lqb_opt_calib(L, -1, m, &given);
    lua_pop(L, 1);
    if (!given) o.calib_path = lqb_opt_str(L, 2, "calib", o.calib_path);
    o.calib_ctx = (int)lqb_opt_int(L, 2, "calib_ctx", o.calib_ctx);
    o.calib_windows = (int)lqb_opt_int(L, 2, "calib_windows", o.calib_windows);
    lqb_check_stop(L, 1);
    lqb_host *h = lqb_host_of(L);
    o.cancel = h->cancel;
    qb_status st = qb_act_apply(&h->ctx, m, lqb_model_run(L, 1, true), &o);
    if (st != QB_OK) return lqb_fail(L, st);
    lua_settop(L, 1);
    return 1;
}

static int l_act_clear(lua_State *L)
{
    qb_model *m = lqb_check_model(L, 1);
    qb_status st = qb_w8a8_clear(&lqb_host_of(L)->ctx, m, lqb_model_run(L, 1, false));
    if (st != QB_OK) return lqb_fail(L, st);
    lua_settop(L, 1);
    return 1;
}

/* model:int8_outliers(layer) → {attn_in=, attn_out=, ffn_in=, ffn_down_in=} outlier column
 * fractions (nil where not in LLM.int8() mode); model:int8_outliers() resets the counters */
static int l_int8_outliers(lua_State *L)
{
    qb_model *m = lqb_check_model(L, 1);
    if (lua_isnoneornil(L, 2)) {
        qb_llm_int8_reset(lqb_model_run(L, 1, false));
        return 0;
    }
    lua_Integer l = luaL_checkinteger(L, 2);
    luaL_argcheck(L, l >= 0 && l < m->cfg.n_layers, 2, "layer out of range");
    double f[4];
    qb_llm_int8_fractions(lqb_model_run(L, 1, false), m, (int)l, f);
    static const char *names[4] = {"attn_in", "attn_out", "ffn_in", "ffn_down_in"};
    lua_createtable(L, 0, 4);
    for (int i = 0; i < 4; i++) {
        if (f[i] < 0) continue;
        lua_pushnumber(L, f[i]);
        lua_setfield(L, -2, names[i]);
    }
    return 1;
}

void lqb_open_act(lua_State *L)
{
    luaL_getmetatable(L, LQB_MODEL);
    lua_getfield(L, -1, "__index");
    lua_pushcfunction(L, l_act);
    lua_setfield(L, -2, "act");
    lua_pushcfunction(L, l_act_clear);
    lua_setfield(L, -2, "act_clear");
    lua_pushcfunction(L, l_int8_outliers);
    lua_setfield(L, -2, "int8_outliers");
    lua_pop(L, 2);
}
