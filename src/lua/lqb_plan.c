/* lqb_plan.c — the qb.plan userdata: plans built from Lua rule lists
 * (qb.plan{ {match="*", format="q4_k"}, {match="*ffn_down*", bits=8, method="gptq", damp=0.1},
 * {"blk.0.*", "int4-g128", "awq alpha=0.5"} }), loaded from and saved to plan files, looked
 * up, printed. A plan is plain data; model:apply(plan) uses it. */
#include "lqb_internal.h"

#include <stdlib.h>
#include <string.h>

qb_plan *lqb_check_plan(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, LQB_PLAN);
}

static qb_plan *new_plan(lua_State *L)
{
    qb_plan *p = lua_newuserdatauv(L, sizeof *p, 0);
    qb_plan_init(p);
    luaL_setmetatable(L, LQB_PLAN);
    return p;
}

void lqb_push_plan(lua_State *L, qb_plan *src)
{
    qb_plan *p = new_plan(L);
    *p = *src;
    qb_plan_init(src);
}

bool lqb_opt_method(lua_State *L, int idx, qb_method_spec *out)
{
    idx = lua_absindex(L, idx);
    lqb_host *h = lqb_host_of(L);
    memset(out, 0, sizeof *out);
    if (lua_type(L, idx) != LUA_TTABLE) return false;
    const char *name = lqb_opt_str(L, idx, "method", NULL);
    if (!name) return false;
    if (qb_method_spec_parse(&h->ctx, name, out) != QB_OK) luaL_error(L, "%s", qb_ctx_errmsg(&h->ctx));
    for (int k = 0; qb_method_param_name(out->kind, k); k++) {
        const char *key = qb_method_param_name(out->kind, k);
        int ty = lua_getfield(L, idx, key);
        if (ty != LUA_TNIL) {
            double v = ty == LUA_TBOOLEAN ? (double)lua_toboolean(L, -1) : lua_tonumber(L, -1);
            if (ty != LUA_TBOOLEAN && !lua_isnumber(L, -1))
                luaL_error(L, "bad field '%s' (number or boolean expected, got %s)", key, luaL_typename(L, -1));
            if (qb_method_spec_set(&h->ctx, out, key, v) != QB_OK) luaL_error(L, "%s", qb_ctx_errmsg(&h->ctx));
        }
        lua_pop(L, 1);
    }
    return true;
}

/* Append the rule at idx ({match=, format=|bits=…, method=, parameters} or {pattern, format
 * [, method]}) to p. */
static void add_rule(lua_State *L, qb_plan *p, int idx, lua_Integer i)
{
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) != LUA_TTABLE) luaL_error(L, "bad plan rule #%I (table expected, got %s)", i, luaL_typename(L, idx));
    const char *pat = lqb_opt_str(L, idx, "match", NULL);
    qb_format f;
    qb_method_spec ms;
    lqb_opt_method(L, idx, &ms);
    if (!pat && lua_rawgeti(L, idx, 1) == LUA_TSTRING) {
        pat = lua_tostring(L, -1); /* kept alive by the rule table */
        lua_pop(L, 1);
        lua_rawgeti(L, idx, 2);
        lqb_check_format(L, -1, &f);
        lua_pop(L, 1);
        if (lua_rawgeti(L, idx, 3) == LUA_TSTRING) {
            lqb_host *h = lqb_host_of(L);
            if (qb_method_spec_parse(&h->ctx, lua_tostring(L, -1), &ms) != QB_OK)
                luaL_error(L, "bad plan rule #%I (%s)", i, qb_ctx_errmsg(&h->ctx));
        }
        lua_pop(L, 1);
    } else {
        if (!pat) {
            lua_pop(L, 1);
            luaL_error(L, "bad plan rule #%I (needs match=\"pattern\")", i);
        }
        lqb_check_rule_format(L, idx, &f);
    }
    lqb_host *h = lqb_host_of(L);
    if (qb_plan_add_rule(&h->ctx, p, pat, &f, &ms, 0) != QB_OK) luaL_error(L, "%s", qb_ctx_errmsg(&h->ctx));
}

/* Push a plan built from the rules table at idx (in the calling C function, so errors carry
 * the Lua caller's position). */
static qb_plan *build_plan(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    /* a list of rules: any other key (e.g. a map {["*"] = "q4_k"}) would be silently left out */
    const lua_Integer len = luaL_len(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > len) {
            const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1);
            luaL_error(L, "a plan is a list of rules, e.g. { {\"*\", \"q4_k\"} } or { {match=\"*\", format=\"q4_k\"} }; "
                          "key '%s' is not a rule's position", k);
        }
    }
    qb_plan *p = new_plan(L);
    for (lua_Integer i = 1, n = len; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        add_rule(L, p, -1, i);
        lua_pop(L, 1);
    }
    return p;
}

/* qb.plan([rules]) */
static int l_plan(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) {
        new_plan(L);
        return 1;
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    build_plan(L, 1);
    return 1;
}

/* qb.load_plan(path) */
static int l_load_plan(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    qb_plan *p = new_plan(L);
    lqb_host *h = lqb_host_of(L);
    if (qb_plan_load(&h->ctx, path, p) != QB_OK) return luaL_error(L, "%s", qb_ctx_errmsg(&h->ctx));
    return 1;
}

/* qb.parse_plan(text [, name]) */
static int l_parse_plan(lua_State *L)
{
    const char *text = luaL_checkstring(L, 1);
    const char *name = luaL_optstring(L, 2, "plan");
    qb_plan *p = new_plan(L);
    lqb_host *h = lqb_host_of(L);
    if (qb_plan_parse(&h->ctx, name, text, p) != QB_OK) return luaL_error(L, "%s", qb_ctx_errmsg(&h->ctx));
    return 1;
}

static int p_add(lua_State *L)
{
    qb_plan *p = lqb_check_plan(L, 1);
    const char *pat = luaL_checkstring(L, 2);
    qb_format f;
    luaL_checkany(L, 3);
    lqb_check_format(L, 3, &f);
    lqb_host *h = lqb_host_of(L);
    qb_method_spec ms = {0};
    if (lua_type(L, 4) == LUA_TSTRING && qb_method_spec_parse(&h->ctx, lua_tostring(L, 4), &ms) != QB_OK)
        return luaL_error(L, "%s", qb_ctx_errmsg(&h->ctx));
    if (lua_type(L, 4) == LUA_TTABLE) lqb_opt_method(L, 4, &ms);
    if (qb_plan_add_rule(&h->ctx, p, pat, &f, &ms, 0) != QB_OK) return luaL_error(L, "%s", qb_ctx_errmsg(&h->ctx));
    lua_settop(L, 1);
    return 1;
}

static int p_lookup(lua_State *L)
{
    qb_plan *p = lqb_check_plan(L, 1);
    const qb_format *f = qb_plan_lookup(p, luaL_checkstring(L, 2));
    if (!f) lua_pushnil(L);
    else {
        char name[64];
        qb_format_name(f, name, sizeof name);
        lua_pushstring(L, name);
    }
    return 1;
}

static int p_rules(lua_State *L)
{
    qb_plan *p = lqb_check_plan(L, 1);
    lua_createtable(L, p->n_rules, 0);
    for (int i = 0; i < p->n_rules; i++) {
        char name[64];
        qb_format_name(&p->rules[i].fmt, name, sizeof name);
        const qb_method_spec *ms = &p->rules[i].method;
        lua_createtable(L, 0, 4);
        lua_pushstring(L, p->rules[i].pattern);
        lua_setfield(L, -2, "match");
        lua_pushstring(L, name);
        lua_setfield(L, -2, "format");
        lua_pushstring(L, qb_plan_method_name(ms->kind));
        lua_setfield(L, -2, "method");
        for (int k = 0; qb_method_param_name(ms->kind, k); k++)
            if (ms->set & (1u << k)) {
                lua_pushnumber(L, ms->value[k]);
                lua_setfield(L, -2, qb_method_param_name(ms->kind, k));
            }
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int p_save(lua_State *L)
{
    qb_plan *p = lqb_check_plan(L, 1);
    const char *path = luaL_checkstring(L, 2);
    char *full = lqb_output_path(L, path);
    lqb_host *h = lqb_host_of(L);
    qb_status st = qb_plan_save(&h->ctx, p, full);
    free(full);
    if (st != QB_OK) return lqb_fail(L, st);
    lua_pushstring(L, path);
    return 1;
}

static int p_tostring(lua_State *L)
{
    qb_plan *p = lqb_check_plan(L, 1);
    char *s = qb_plan_to_string(p);
    if (!s) return luaL_error(L, "out of memory");
    lua_pushstring(L, s);
    free(s);
    return 1;
}

static int p_gc(lua_State *L)
{
    qb_plan_free(lqb_check_plan(L, 1));
    return 0;
}

static int p_len(lua_State *L)
{
    lua_pushinteger(L, lqb_check_plan(L, 1)->n_rules);
    return 1;
}

const qb_plan *lqb_to_plan(lua_State *L, int idx, qb_plan *tmp, bool *owned)
{
    *owned = false;
    if (lua_type(L, idx) == LUA_TTABLE) { /* a rules table becomes a plan userdata (freed by GC) */
        build_plan(L, idx);
        lua_replace(L, idx);
    }
    (void)tmp;
    return lqb_check_plan(L, idx);
}

void lqb_open_plan(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"add", p_add}, {"lookup", p_lookup}, {"rules", p_rules}, {"save", p_save}, {NULL, NULL},
    };
    static const luaL_Reg meta[] = {
        {"__gc", p_gc}, {"__tostring", p_tostring}, {"__len", p_len}, {NULL, NULL},
    };
    luaL_newmetatable(L, LQB_PLAN);
    luaL_setfuncs(L, meta, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_plan);
    lua_setfield(L, -2, "plan");
    lua_pushcfunction(L, l_load_plan);
    lua_setfield(L, -2, "load_plan");
    lua_pushcfunction(L, l_parse_plan);
    lua_setfield(L, -2, "parse_plan");
}
