/* lqb_method.c — calibration and the methods that read it: qb.calibrate(model, text) gives a
 * qb.calib userdata (per-channel activation statistics and XᵀX of every linear input), and
 * model:apply(plan, {method="gptq"|"awq"|"rtn", calib=c, …}) runs qb_plan_apply (the rules'
 * own methods, method= for those that name none). */
#include "lqb_internal.h"

#include <string.h>

#include "core/calib/calib.h"
#include "core/method/plan_apply.h"

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

/* calib:experts(layer (0-based)) → {{tokens=, share=}, …} one entry per expert (expert e at
 * index e + 1: the tokens the calibration routed to it, their share of the block's routed
 * tokens), or nil for a model without experts. */
static int c_experts(lua_State *L)
{
    lqb_calib *u = check_calib(L, 1);
    lua_Integer layer = luaL_checkinteger(L, 2);
    luaL_argcheck(L, layer >= 0 && layer < u->c->n_layers, 2, "layer out of range");
    int64_t tok;
    double share;
    if (!qb_calib_expert_share(u->c, (int)layer, 0, &tok, &share)) {
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, u->c->n_experts, 0);
    for (int e = 0; e < u->c->n_experts; e++) {
        qb_calib_expert_share(u->c, (int)layer, e, &tok, &share);
        lua_createtable(L, 0, 2);
        lqb_set_int(L, "tokens", (lua_Integer)tok);
        lqb_set_num(L, "share", share);
        lua_rawseti(L, -2, e + 1);
    }
    return 1;
}

/* A copy of p in which rules that name no method get spec (a userdata, freed by GC). */
static const qb_plan *with_method(lua_State *L, const qb_plan *p, const qb_method_spec *spec)
{
    qb_plan *cp = lua_newuserdatauv(L, sizeof *cp, 0);
    qb_plan_init(cp);
    luaL_setmetatable(L, LQB_PLAN);
    lqb_host *h = lqb_host_of(L);
    for (int k = 0; k < p->n_rules; k++) {
        const qb_plan_rule *r = &p->rules[k];
        bool plain = r->method.kind == QB_METHOD_RTN && !r->method.set;
        if (qb_plan_add_rule(&h->ctx, cp, r->pattern, &r->fmt, plain ? spec : &r->method, r->line) != QB_OK)
            luaL_error(L, "%s", qb_ctx_errmsg(&h->ctx));
    }
    return cp;
}

void lqb_apply_plan(lua_State *L, qb_model *m, const qb_plan *p, int o)
{
    lqb_host *h = lqb_host_of(L);
    qb_method_spec spec;
    if (o && lqb_opt_method(L, o, &spec)) p = with_method(L, p, &spec);
    const qb_calib *cal = NULL;
    if (o && lua_getfield(L, o, "calib") != LUA_TNIL) {
        lqb_calib *u = luaL_testudata(L, -1, LQB_CALIB);
        if (!u) luaL_error(L, "bad option 'calib' to 'apply' (qb.calib expected, got %s)", luaL_typename(L, -1));
        if (!u->c) luaL_error(L, "bad option 'calib' to 'apply' (calibration is empty)");
        if (u->m != m) luaL_error(L, "bad option 'calib' to 'apply' (it was run on another model)");
        cal = u->c;
    }
    if (o) lua_pop(L, 1);
    if (qb_plan_needs_calib(p) && !cal) {
        const char *name = "gptq";
        for (int k = 0; k < p->n_rules; k++)
            if (qb_method_spec_needs_calib(&p->rules[k].method)) name = qb_plan_method_name(p->rules[k].method.kind);
        luaL_error(L, "method '%s' needs calibration: apply(plan, {method='%s', calib=qb.calibrate(model, text)})", name,
                   name);
    }
    qb_importance imp;
    const qb_importance *im = lqb_opt_importance(L, o, "apply", &imp);
    lqb_progress pr;
    lqb_progress_begin(L, &pr, "apply", o);
    qb_plan_apply_opts ao = {.progress = lqb_progress_cb, .ud = &pr, .cancel = lqb_cancel_ptr(L), .allow_unmatched = true,
                             .imatrix = im};
    qb_status st = qb_plan_apply(&h->ctx, m, p, cal, &ao);
    lqb_progress_end(L, &pr, st);
}

void lqb_open_method(lua_State *L)
{
    static const luaL_Reg methods[] = {{"info", c_info}, {"stat", c_stat}, {"experts", c_experts}, {NULL, NULL}};
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
