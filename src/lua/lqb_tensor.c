/* lqb_tensor.c — the qb.tensor userdata (a weight of an open model) and qb.analyze: error
 * statistics, histograms and the quantization staircase from core's qb_quant_analyze as Lua
 * tables (with an importance, the importance-weighted statistics too: field weighted);
 * quantizing a tensor in place and restoring it; its original values. */
#include "lqb_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/quant/apply.h"
#include "core/quant/stats.h"

static qb_tensor *check_tensor(lua_State *L, int idx)
{
    lqb_tensor *u = luaL_checkudata(L, idx, LQB_TENSOR);
    lua_getiuservalue(L, idx, 1);
    lqb_model *mu = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!mu || !mu->m) luaL_argerror(L, idx, "the tensor's model is closed");
    return u->t;
}

/* An analysis in a userdata, so an error while building the Lua tables frees it. */
static int analysis_gc(lua_State *L)
{
    qb_analysis_free(lua_touserdata(L, 1));
    return 0;
}

static qb_analysis *new_analysis(lua_State *L)
{
    qb_analysis *a = lua_newuserdatauv(L, sizeof *a, 0);
    memset(a, 0, sizeof *a);
    if (luaL_newmetatable(L, "qb.analysis_box")) {
        lua_pushcfunction(L, analysis_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return a;
}

static void push_hist(lua_State *L, const qb_histogram *h)
{
    lua_createtable(L, 0, 6);
    lqb_set_num(L, "lo", h->lo);
    lqb_set_num(L, "hi", h->hi);
    lqb_set_int(L, "bins", h->bins);
    lqb_set_int(L, "under", (lua_Integer)h->under);
    lqb_set_int(L, "over", (lua_Integer)h->over);
    lua_createtable(L, h->bins, 0);
    for (int i = 0; i < h->bins; i++) {
        lua_pushinteger(L, (lua_Integer)h->counts[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "counts");
}

static void push_floats(lua_State *L, const float *v, int n)
{
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushnumber(L, v[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

static void push_analysis(lua_State *L, const qb_analysis *a)
{
    char name[64];
    qb_format_name(&a->fmt, name, sizeof name);
    const qb_error_stats *s = &a->stats;
    lua_createtable(L, 0, 16);
    lua_pushstring(L, name);
    lua_setfield(L, -2, "format");
    lqb_set_num(L, "mse", s->mse);
    lqb_set_num(L, "rmse", s->rmse);
    lqb_set_num(L, "max_err", s->max_abs_err);
    lqb_set_num(L, "mean_abs_err", s->mean_abs_err);
    lqb_set_num(L, "sqnr", s->sqnr_db); /* +inf (math.huge) when exact */
    lqb_set_num(L, "rel_err", s->rel_err);
    lqb_set_num(L, "cosine", s->cosine);
    lqb_set_num(L, "bpw", s->bpw);
    lqb_set_int(L, "bytes_src", (lua_Integer)s->bytes_src);
    lqb_set_int(L, "bytes_quant", (lua_Integer)s->bytes_quant);
    lqb_set_int(L, "n", s->n);
    lua_createtable(L, 0, 3);
    push_hist(L, &a->hist_orig);
    lua_setfield(L, -2, "orig");
    push_hist(L, &a->hist_deq);
    lua_setfield(L, -2, "deq");
    push_hist(L, &a->hist_err);
    lua_setfield(L, -2, "err");
    lua_setfield(L, -2, "hist");
    lua_createtable(L, 0, 2);
    push_floats(L, a->map_x, a->n_map);
    lua_setfield(L, -2, "x");
    push_floats(L, a->map_y, a->n_map);
    lua_setfield(L, -2, "y");
    lua_setfield(L, -2, "map");
    if (a->weighted) { /* core's wstats: errors scaled by sqrt(w / mean w) (stats.h) */
        const qb_error_stats *w = &a->wstats;
        lua_createtable(L, 0, 8);
        lqb_set_num(L, "mse", w->mse);
        lqb_set_num(L, "rmse", w->rmse);
        lqb_set_num(L, "max_err", w->max_abs_err);
        lqb_set_num(L, "mean_abs_err", w->mean_abs_err);
        lqb_set_num(L, "sqnr", w->sqnr_db);
        lqb_set_num(L, "rel_err", w->rel_err);
        lqb_set_num(L, "cosine", w->cosine);
        push_hist(L, &a->hist_werr);
        lua_setfield(L, -2, "hist");
        lua_setfield(L, -2, "weighted");
    }
}

/* Summary of the original values (mean, std, min, max, absmax, kurtosis), in one pass. */
static void push_summary(lua_State *L, const float *v, int64_t n)
{
    double s1 = 0, mn = INFINITY, mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        s1 += v[i];
        if (v[i] < mn) mn = v[i];
        if (v[i] > mx) mx = v[i];
    }
    double mean = n ? s1 / (double)n : 0, m2 = 0, m4 = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = v[i] - mean;
        m2 += d * d;
        m4 += d * d * d * d;
    }
    m2 = n ? m2 / (double)n : 0;
    m4 = n ? m4 / (double)n : 0;
    lua_createtable(L, 0, 7);
    lqb_set_num(L, "mean", mean);
    lqb_set_num(L, "std", sqrt(m2));
    lqb_set_num(L, "min", n ? mn : 0);
    lqb_set_num(L, "max", n ? mx : 0);
    lqb_set_num(L, "absmax", n ? fmax(fabs(mn), fabs(mx)) : 0);
    lqb_set_num(L, "kurtosis", m2 > 0 ? m4 / (m2 * m2) : 0);
    lqb_set_int(L, "n", n);
}

/* fallback=true in the setting table at sidx or the options table at oidx (an index or 0):
 * ggml types that do not fit the row fall back as llama-quantize does. */
static bool want_fallback(lua_State *L, int sidx, int oidx)
{
    if (lua_type(L, sidx) == LUA_TTABLE && lqb_opt_bool(L, lua_absindex(L, sidx), "fallback", false)) return true;
    if (oidx > 0 && lua_type(L, oidx) == LUA_TTABLE) return lqb_opt_bool(L, oidx, "fallback", false);
    return false;
}

/* Setting at idx (string, table, or none = f32) and analysis options from the setting table
 * or the options table at oidx. */
static void read_setting(lua_State *L, int idx, int oidx, qb_format *f, qb_analysis_opts *ao)
{
    memset(ao, 0, sizeof *ao);
    ao->auto_range = true;
    if (lua_isnoneornil(L, idx)) *f = qb_format_ggml(QB_TYPE_F32);
    else lqb_check_format(L, idx, f);
    int t = lua_type(L, idx) == LUA_TTABLE ? lua_absindex(L, idx) : oidx;
    ao->bins = (int)lqb_opt_int(L, t, "bins", 64);
    ao->map_points = (int)lqb_opt_int(L, t, "map_points", 256);
    if (t && lua_getfield(L, t, "range") == LUA_TTABLE) {
        lua_rawgeti(L, -1, 1);
        lua_rawgeti(L, -2, 2);
        if (!lua_isnumber(L, -1) || !lua_isnumber(L, -2)) luaL_error(L, "bad option 'range' (table {lo, hi} expected)");
        ao->auto_range = false;
        ao->lo = lua_tonumber(L, -2);
        ao->hi = lua_tonumber(L, -1);
        double w = fmax(fabs(ao->lo), fabs(ao->hi));
        ao->err_lo = -w / 8;
        ao->err_hi = w / 8;
        lua_pop(L, 2);
    }
    if (t) lua_pop(L, 1);
    if (ao->bins < 1 || ao->bins > 4096) luaL_error(L, "bad option 'bins' (1..4096 expected, got %d)", ao->bins);
    if (ao->map_points < 0 || ao->map_points > 1 << 20) luaL_error(L, "bad option 'map_points' (0..1048576 expected)");
}

static int analyze(lua_State *L, const float *src, int64_t rows, int64_t n, const qb_format *f,
                   const qb_analysis_opts *ao0)
{
    lqb_host *h = lqb_host_of(L);
    qb_analysis_opts ao = *ao0;
    ao.cancel = h->cancel;
    qb_analysis *a = new_analysis(L);
    lqb_check_stop(L, 1);
    qb_status st = qb_quant_analyze(&h->ctx, f, src, rows, n, &ao, a);
    if (st != QB_OK) return lqb_fail(L, st);
    push_analysis(L, a);
    push_summary(L, src, rows * n);
    lua_setfield(L, -2, "orig");
    return 1;
}

/* The options table of a call: the setting table at sidx when it is one, else the options
 * table at oidx (0: none). */
static int opts_of(lua_State *L, int sidx, int oidx)
{
    return lua_type(L, sidx) == LUA_TTABLE ? lua_absindex(L, sidx) : oidx;
}

/* tensor:stats([setting [, {bins=, map_points=, range=, imatrix=, quantize_weighted=}]]).
 * imatrix= (a qb.imatrix): the tensor's importance found as llama-quantize finds it
 * (qb_importance_lookup; our per-expert names take their expert's row); the result then has
 * field weighted, and the quantization uses the importance unless quantize_weighted=false (as
 * model:apply{imatrix=} quantizes). A tensor without an entry: no weighted field, and
 * importance_missing = true. */
static int t_stats(lua_State *L)
{
    qb_tensor *t = check_tensor(L, 1);
    qb_format f;
    qb_analysis_opts ao;
    const int oidx = lqb_opt_table(L, 3), o = opts_of(L, 2, oidx);
    read_setting(L, 2, oidx, &f, &ao);
    int64_t n = t->ne[0], rows = qb_tensor_rows(t);
    if (want_fallback(L, 2, 3)) f = qb_format_fallback(&f, n);
    qb_importance imp;
    bool missing = false;
    if (lqb_opt_importance(L, o, "stats", &imp)) {
        lua_getiuservalue(L, 1, 1);
        const lqb_model *mu = lua_touserdata(L, -1);
        lua_pop(L, 1);
        lqb_host *h = lqb_host_of(L);
        if (qb_importance_lookup(&h->ctx, &imp, t->name, n, 1, mu->m->cfg.n_experts, &ao.importance, &missing) != QB_OK)
            return lqb_fail(L, QB_ERR_FORMAT);
        ao.quantize_weighted = lqb_opt_bool(L, o, "quantize_weighted", true);
    }
    float *src = lua_newuserdatauv(L, (size_t)(n * rows) * sizeof(float), 0);
    qb_tensor_source_rows(t, 0, rows, src);
    analyze(L, src, rows, n, &f, &ao);
    if (missing) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "importance_missing");
    }
    return 1;
}

/* importance= {w1, ..., wn} (or imp_mats × n values, with imp_mats=) of qb.analyze's options
 * table at o into a userdata pushed on the stack (kept until the call returns); NULL when
 * absent. */
static const float *opt_weights(lua_State *L, int o, int64_t n, qb_analysis_opts *ao)
{
    if (!o || lua_getfield(L, o, "importance") == LUA_TNIL) {
        if (o) lua_pop(L, 1);
        return NULL;
    }
    if (!lua_istable(L, -1)) luaL_error(L, "bad option 'importance' (array of numbers expected)");
    const int it = lua_absindex(L, -1);
    const lua_Integer mats = lqb_opt_int(L, o, "imp_mats", 1), len = luaL_len(L, it);
    if (mats < 1 || len != mats * n)
        luaL_error(L, "bad option 'importance' (%I values; the rows of %I need %I x %I)", len, (lua_Integer)n, mats,
                   (lua_Integer)n);
    float *w = lua_newuserdatauv(L, (size_t)len * sizeof *w, 0);
    for (lua_Integer i = 0; i < len; i++) {
        if (lua_rawgeti(L, it, i + 1) != LUA_TNUMBER) luaL_error(L, "bad option 'importance' (value %I is not a number)", i + 1);
        w[i] = (float)lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    lua_remove(L, it); /* the userdata stays on the stack */
    ao->importance = w;
    ao->imp_mats = mats;
    ao->quantize_weighted = lqb_opt_bool(L, o, "quantize_weighted", true);
    return w;
}

/* qb.analyze(values, setting [, {rows=, bins=, map_points=, range=, importance=, imp_mats=,
 * quantize_weighted=}]) — any Lua array; importance: per-column weights (field weighted) */
static int l_analyze(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int o = lqb_opt_table(L, 3);
    qb_format f;
    qb_analysis_opts ao;
    read_setting(L, 2, o, &f, &ao);
    lua_Integer len = luaL_len(L, 1), rows = lqb_opt_int(L, o, "rows", 1);
    if (len < 1) return luaL_argerror(L, 1, "no values");
    if (rows < 1 || len % rows) return luaL_error(L, "bad option 'rows' (%I values do not split into %I rows)", len, rows);
    opt_weights(L, o, len / rows, &ao);
    float *src = lua_newuserdatauv(L, (size_t)len * sizeof(float), 0);
    for (lua_Integer i = 0; i < len; i++) {
        if (lua_rawgeti(L, 1, i + 1) != LUA_TNUMBER)
            return luaL_error(L, "bad argument #1 to 'analyze' (value %I is a %s, number expected)", i + 1,
                              luaL_typename(L, -1));
        src[i] = (float)lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    return analyze(L, src, rows, len / rows, &f, &ao);
}

/* tensor:quantize(setting) — in place, from the original values; returns the tensor */
static int t_quantize(lua_State *L)
{
    qb_tensor *t = check_tensor(L, 1);
    qb_format f;
    if (lua_isnoneornil(L, 2)) return luaL_argerror(L, 2, "format string or setting table expected");
    lqb_check_format(L, 2, &f);
    if (want_fallback(L, 2, lqb_opt_table(L, 3))) f = qb_format_fallback(&f, t->ne[0]);
    lqb_host *h = lqb_host_of(L);
    lqb_check_stop(L, 1);
    if (!qb_tensor_quantizable(t)) return luaL_error(L, "tensor %s is not a weight matrix a plan may change", t->name);
    qb_status st = qb_tensor_quantize(&h->ctx, t, &f, h->cancel);
    if (st != QB_OK) return lqb_fail(L, st);
    lua_settop(L, 1);
    return 1;
}

static int t_restore(lua_State *L)
{
    qb_tensor *t = check_tensor(L, 1);
    lqb_host *h = lqb_host_of(L);
    qb_status st = qb_tensor_restore(&h->ctx, t);
    if (st != QB_OK) return lqb_fail(L, st);
    lua_settop(L, 1);
    return 1;
}

/* tensor:values([row0 [, nrows]]) — original values of rows as a flat array (1-based row0) */
static int t_values(lua_State *L)
{
    qb_tensor *t = check_tensor(L, 1);
    int64_t rows = qb_tensor_rows(t), n = t->ne[0];
    lua_Integer r0 = luaL_optinteger(L, 2, 1), nr = luaL_optinteger(L, 3, rows - r0 + 1);
    luaL_argcheck(L, r0 >= 1 && r0 <= rows, 2, "row out of range");
    luaL_argcheck(L, nr >= 0 && r0 - 1 + nr <= rows, 3, "row count out of range");
    float *v = lua_newuserdatauv(L, (size_t)(nr * n) * sizeof(float) + 1, 0);
    qb_tensor_source_rows(t, r0 - 1, nr, v);
    push_floats(L, v, (int)(nr * n));
    return 1;
}

static int t_info(lua_State *L)
{
    qb_tensor *t = check_tensor(L, 1);
    char fmt[64];
    qb_format_name(&t->fmt, fmt, sizeof fmt);
    const qb_type_info *src = qb_type_get(t->src_type);
    lua_createtable(L, 0, 10);
    lua_pushstring(L, t->name);
    lua_setfield(L, -2, "name");
    lua_createtable(L, t->n_dims, 0);
    for (int i = 0; i < t->n_dims; i++) {
        lua_pushinteger(L, t->ne[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "shape");
    lqb_set_int(L, "cols", t->ne[0]);
    lqb_set_int(L, "rows", qb_tensor_rows(t));
    lqb_set_int(L, "n", qb_tensor_nelements(t));
    lua_pushstring(L, fmt);
    lua_setfield(L, -2, "format");
    lua_pushstring(L, src && src->name ? src->name : "?");
    lua_setfield(L, -2, "src_type");
    lqb_set_int(L, "bytes", (lua_Integer)t->nbytes);
    lqb_set_num(L, "bpw", t->nbytes * 8.0 / (double)qb_tensor_nelements(t));
    lua_pushboolean(L, qb_tensor_quantizable(t));
    lua_setfield(L, -2, "quantizable");
    return 1;
}

static int t_tostring(lua_State *L)
{
    lqb_tensor *u = luaL_checkudata(L, 1, LQB_TENSOR);
    char fmt[64];
    qb_format_name(&u->t->fmt, fmt, sizeof fmt);
    lua_pushfstring(L, "qb.tensor %s [%I x %I] %s", u->t->name, (lua_Integer)u->t->ne[0],
                    (lua_Integer)qb_tensor_rows(u->t), fmt);
    return 1;
}

/* __index: methods first, then the fields of info() (t.name, t.rows, t.format …) */
static int t_index(lua_State *L)
{
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
    lua_pop(L, 1);
    lua_pushcfunction(L, t_info);
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    return 1;
}

void lqb_open_tensor(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"stats", t_stats},   {"quantize", t_quantize}, {"restore", t_restore},
        {"values", t_values}, {"info", t_info},         {NULL, NULL},
    };
    luaL_newmetatable(L, LQB_TENSOR);
    lua_pushcfunction(L, t_tostring);
    lua_setfield(L, -2, "__tostring");
    luaL_newlib(L, methods);
    lua_pushcclosure(L, t_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_analyze);
    lua_setfield(L, -2, "analyze");
}
