/* lqb_misc.c — luaopen_qb (the module table, assembled from the parts) and the small
 * functions: formats, elapsed time, QB_* environment variables, version. */
#include "lqb_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/quant/ftype.h"
#include "core/quant/format_traits.h"

/* qb.format(name_or_setting) → {name=, kind=, bits=, group=, sym=, bpw=} (bpw at row length n,
 * default 4096) */
static int l_format(lua_State *L)
{
    qb_format f;
    luaL_checkany(L, 1);
    lqb_check_format(L, 1, &f);
    lua_Integer n = luaL_optinteger(L, 2, 4096);
    lqb_push_format(L, &f);
    lua_pushnumber(L, qb_format_bpw(&f, n));
    lua_setfield(L, -2, "bpw");
    return 1;
}

/* qb.step(setting, dir) → the next format up (dir > 0: more bits) or down (dir < 0) the bit
 * ladder that offers it, as the workbench's b/B keys step (same table, same granularity);
 * an error for a format no ladder offers */
static int l_step(lua_State *L)
{
    qb_format f, g;
    luaL_checkany(L, 1);
    lqb_check_format(L, 1, &f);
    lua_Integer dir = luaL_checkinteger(L, 2);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    if (dir == 0 || qb_format_step(&ctx, &f, dir > 0 ? 1 : -1, &g) != QB_OK)
        return luaL_error(L, "qb.step: %s", dir == 0 ? "direction must be +1 or -1" : qb_ctx_errmsg(&ctx));
    char name[64];
    qb_format_name(&g, name, sizeof name);
    lua_pushstring(L, name);
    return 1;
}

/* qb.formats() → the format names a recipe can sweep: each row of the format table's
 * representative names, in table order */
static int l_formats(lua_State *L)
{
    lua_newtable(L);
    lua_Integer n = 0;
    for (int k = 0; k < QB_FMT_KIND_COUNT; k++) {
        const qb_format_traits *tr = qb_format_traits_get(k);
        for (const char *const *s = tr->sweep; s && *s; s++) {
            lua_pushstring(L, *s);
            lua_rawseti(L, -2, ++n);
        }
    }
    return 1;
}

/* qb.ftypes() → llama-quantize's file type names ("Q4_K_M", …) */
static int l_ftypes(lua_State *L)
{
    lua_newtable(L);
    lua_Integer i = 0;
    for (const qb_ftype *f = qb_ftype_all(); f->name; f++) {
        lua_pushstring(L, f->name);
        lua_rawseti(L, -2, ++i);
    }
    return 1;
}

/* qb.methods() → the quantization methods a setting's method= may name in this build */
static int l_methods(lua_State *L)
{
    /* rtn/gptq/awq/learned: model:apply(plan, {method=, calib=}); llm.int8 and smoothquant:
     * model:act{int8_outlier=true} / model:act{act="int8", smooth=true}; qat and heal:
     * model:finetune{plan=|heal=true, teacher=, text=} */
    static const char *names[] = {"rtn", "gptq", "awq", "learned", "llm.int8", "smoothquant", "qat", "heal"};
    const int n = (int)(sizeof names / sizeof *names);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, names[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* qb.clock() → monotonic seconds (os.clock is not in the sandbox) */
static int l_clock(lua_State *L)
{
    lua_pushnumber(L, lqb_now());
    return 1;
}

/* qb.getenv(name) → value of a QB_* variable (others are not visible to recipes) */
static int l_getenv(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    if (strncmp(name, "QB_", 3) != 0 && !lqb_host_of(L)->trusted)
        return luaL_argerror(L, 1, "only QB_* variables are visible in the sandbox");
    const char *v = getenv(name);
    if (v) lua_pushstring(L, v);
    else lua_pushnil(L);
    return 1;
}

/* qb.threads([n]) → core thread count (sets it when n is given; 0 = default) */
static int l_threads(lua_State *L)
{
    lqb_host *h = lqb_host_of(L);
    if (!lua_isnoneornil(L, 1)) {
        lua_Integer n = luaL_checkinteger(L, 1);
        luaL_argcheck(L, n >= 0 && n <= 1024, 1, "0..1024 expected");
        h->ctx.n_threads = (int)n;
    }
    lua_pushinteger(L, h->ctx.n_threads);
    return 1;
}

/* qb.exit([code]) — stop the recipe here; 0 (the default) counts as success */
static int l_exit(lua_State *L)
{
    lua_Integer code = luaL_optinteger(L, 1, 0);
    lua_createtable(L, 0, 1);
    lua_pushinteger(L, code);
    lua_setfield(L, -2, "qb_exit");
    return lua_error(L);
}

/* qb.output_dir() → the folder recipes write into, or nil */
static int l_output_dir(lua_State *L)
{
    lqb_host *h = lqb_host_of(L);
    if (h->write_dir) lua_pushstring(L, h->write_dir);
    else lua_pushnil(L);
    return 1;
}

void lqb_open_misc(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"format", l_format}, {"step", l_step}, {"formats", l_formats}, {"methods", l_methods}, {"ftypes", l_ftypes}, {"clock", l_clock},
        {"getenv", l_getenv}, {"threads", l_threads}, {"output_dir", l_output_dir}, {"exit", l_exit}, {NULL, NULL},
    };
    luaL_setfuncs(L, fns, 0);
    lua_pushliteral(L, "quantbench qb module 1");
    lua_setfield(L, -2, "version");
}

int luaopen_qb(lua_State *L)
{
    lua_newtable(L);
    lqb_open_misc(L);
    lqb_open_model(L);
    lqb_open_tensor(L);
    lqb_open_plan(L);
    lqb_open_io(L);
    lqb_open_plot(L);
    lqb_open_method(L);
    lqb_open_scan(L);
    lqb_open_act(L);
    lqb_open_imatrix(L);
    lqb_open_kld(L);
    return 1;
}
