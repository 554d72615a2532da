/* lqb_method.c — calibration and the methods that read it: qb.calibrate(model, text) gives a
 * qb.calib userdata (per-channel activation statistics and XᵀX of every linear input), and
 * model:apply(plan, {method="gptq"|"awq"|"rtn", calib=c, …}) runs qb_model_apply_method. */
#include "lqb_internal.h"

#include <string.h>

#include "core/calib/calib.h"
#include "core/method/method.h"

#define LQB_CALIB "qb.calib"

typedef struct {
    qb_calib *c;
    const qb_model *m; /* the model it was run on (methods need calibration of the same model) */
} lqb_calib;

const struct qb_calib *lqb_opt_calib(lua_State *L, int idx, const qb_model *m, bool *given)
{
    lqb_calib *u = luaL_testudata(L, idx, LQB_CALIB);
    *given = u != NULL;
    if (!u) return NULL;
    if (!u->c) luaL_error(L, "calibration is empty (it failed or was cancelled)");
    if (u->m != m) luaL_error(L, "calibration of another model");
    return u->c;
}

static lqb_calib *check_calib(lua_State *L, int idx)
{
    lqb_calib *u = luaL_checkudata(L, idx, LQB_CALIB);
    if (!u->c) luaL_argerror(L, idx, "calibration is empty (it failed or was cancelled)");
    return u;
}

/* qb.calibrate(model, text_path [, {samples=, ctx=, hessian=, progress=}]) */
static int l_calibrate(lua_State *L)
{
    qb_model *m = lqb_check_model(L, 1);
    const char *path = luaL_checkstring(L, 2);
    int o = lqb_opt_table(L, 3);
    qb_calib_opts co = {0};
    co.n_samples = (int)lqb_opt_int(L, o, "samples", 0);
    co.n_ctx = (int)lqb_opt_int(L, o, "ctx", 0);
    co.hessian = lqb_opt_bool(L, o, "hessian", true);
    if (co.n_samples < 0 || co.n_ctx < 0) return luaL_error(L, "bad option 'samples'/'ctx' to 'calibrate' (must be >= 0)");
    lqb_calib *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->c = NULL;
    u->m = m;
    luaL_setmetatable(L, LQB_CALIB);
    lqb_progress pr;
    lqb_progress_begin(L, &pr, "calibrate", o);
    co.progress = lqb_progress_cb;
    co.ud = &pr;
    co.cancel = lqb_cancel_ptr(L);
    qb_status st = qb_calib_run_file(&lqb_host_of(L)->ctx, m, path, &co, &u->c);
    lqb_progress_end(L, &pr, st);
    return 1;
}

static int c_gc(lua_State *L)
{
    lqb_calib *u = luaL_checkudata(L, 1, LQB_CALIB);
    qb_calib_free(u->c);
    u->c = NULL;
    return 0;
}

static int c_tostring(lua_State *L)
{
    lqb_calib *u = luaL_checkudata(L, 1, LQB_CALIB);
    if (!u->c) lua_pushliteral(L, "qb.calib (empty)");
    else lua_pushfstring(L, "qb.calib: %d windows of %d tokens, %d layers", u->c->n_windows, u->c->n_ctx,
                         u->c->n_layers);
    return 1;
}

static int c_info(lua_State *L)
{
    lqb_calib *u = check_calib(L, 1);
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, u->c->n_windows);
    lua_setfield(L, -2, "windows");
    lua_pushinteger(L, u->c->n_ctx);
    lua_setfield(L, -2, "ctx");
    lua_pushinteger(L, (lua_Integer)u->c->n_tokens);
    lua_setfield(L, -2, "tokens");
    lua_pushinteger(L, u->c->n_layers);
    lua_setfield(L, -2, "layers");
    return 1;
}

static const char *point_names[] = {"attn_in", "attn_out", "ffn_in", "ffn_down_in", NULL};

/* calib:stat(layer (0-based), point) → {width, n, absmax={}, mean_square={}, mean_abs={}} or nil */
static int c_stat(lua_State *L)
{
    lqb_calib *u = check_calib(L, 1);
    lua_Integer layer = luaL_checkinteger(L, 2);
    int pt = luaL_checkoption(L, 3, NULL, point_names);
    luaL_argcheck(L, layer >= 0 && layer < u->c->n_layers, 2, "layer out of range");
    const qb_calib_stat *s = qb_calib_get(u->c, (int)layer, (qb_obs_point)pt);
    if (!s || s->width == 0) {
        lua_pushnil(L);
        return 1;
    }
    float *tmp = lua_newuserdatauv(L, sizeof(float) * (size_t)s->width, 0);
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, s->width);
    lua_setfield(L, -2, "width");
    lua_pushinteger(L, (lua_Integer)s->n);
    lua_setfield(L, -2, "n");
    for (int k = 0; k < 3; k++) {
        if (k == 1) qb_calib_mean_square(s, tmp);
        if (k == 2) qb_calib_mean_abs(s, tmp);
        const float *v = k == 0 ? s->absmax : tmp;
        lua_createtable(L, s->width, 0);
        for (int i = 0; i < s->width; i++) {
            lua_pushnumber(L, v[i]);
            lua_rawseti(L, -2, i + 1);
        }
        lua_setfield(L, -2, k == 0 ? "absmax" : k == 1 ? "mean_square" : "mean_abs");
    }
    return 1;
}

/* Called by model:apply when opts has method= (other than plain RTN without calibration). */
int lqb_apply_method(lua_State *L, qb_model *m, const qb_plan *p, int o)
{
    lqb_host *h = lqb_host_of(L);
    const char *name = lqb_opt_str(L, o, "method", "rtn");
    qb_method meth;
    if (qb_method_parse(&h->ctx, name, &meth) != QB_OK) return luaL_error(L, "%s", qb_ctx_errmsg(&h->ctx));
    meth.gptq.block = (int)lqb_opt_int(L, o, "block", meth.gptq.block);
    meth.gptq.damp = (float)lqb_opt_num(L, o, "damp", meth.gptq.damp);
    meth.gptq.act_order = lqb_opt_bool(L, o, "act_order", false);
    meth.awq.alpha = (float)lqb_opt_num(L, o, "alpha", meth.awq.alpha);
    meth.awq.n_grid = (int)lqb_opt_int(L, o, "grid", meth.awq.n_grid);
    meth.awq.clip = lqb_opt_bool(L, o, "clip", meth.awq.clip);
    const qb_calib *cal = NULL;
    if (lua_getfield(L, o, "calib") != LUA_TNIL) {
        lqb_calib *u = luaL_testudata(L, -1, LQB_CALIB);
        if (!u) return luaL_error(L, "bad option 'calib' to 'apply' (qb.calib expected, got %s)", luaL_typename(L, -1));
        if (!u->c) return luaL_error(L, "bad option 'calib' to 'apply' (calibration is empty)");
        if (u->m != m) return luaL_error(L, "bad option 'calib' to 'apply' (it was run on another model)");
        cal = u->c;
    }
    lua_pop(L, 1);
    if (qb_method_needs_calib(&meth) && !cal)
        return luaL_error(L, "method '%s' needs calibration: apply(plan, {method='%s', calib=qb.calibrate(model, text)})",
                          name, name);
    lqb_progress pr;
    lqb_progress_begin(L, &pr, name, o);
    qb_method_opts mo = {lqb_progress_cb, &pr, lqb_cancel_ptr(L), NULL};
    qb_status st = qb_model_apply_method(&h->ctx, m, p, &meth, cal, &mo);
    lqb_progress_end(L, &pr, st);
    return 0;
}

void lqb_open_method(lua_State *L)
{
    static const luaL_Reg methods[] = {{"info", c_info}, {"stat", c_stat}, {NULL, NULL}};
    luaL_newmetatable(L, LQB_CALIB);
    lua_pushcfunction(L, c_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, c_tostring);
    lua_setfield(L, -2, "__tostring");
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_calibrate);
    lua_setfield(L, -2, "calibrate");
}
