/* lqb_imatrix.c — importance matrices in Lua: qb.imatrix(model, text, {ctx=, chunks=, ubatch=,
 * process_output=, progress=}) collects one as llama-imatrix does, qb.load_imatrix(path) reads
 * a .dat or GGUF imatrix; both give a qb.imatrix userdata with :save(path) (GGUF for *.gguf,
 * else .dat; into the output folder), :info(), :entries(), :entry(name), :check(model). */
#include "lqb_internal.h"

#include <stdlib.h>

#include "core/calib/imatrix.h"

#define LQB_IMATRIX "qb.imatrix"

typedef struct {
    qb_imatrix *im; /* NULL when the run failed or was cancelled */
} lqb_imatrix;

static lqb_imatrix *push_new(lua_State *L)
{
    lqb_imatrix *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->im = NULL;
    luaL_setmetatable(L, LQB_IMATRIX);
    return u;
}

qb_imatrix *lqb_check_imatrix(lua_State *L, int idx)
{
    lqb_imatrix *u = luaL_checkudata(L, idx, LQB_IMATRIX);
    if (!u->im) luaL_argerror(L, idx, "imatrix is empty (its run failed or was cancelled)");
    return u->im;
}

const qb_importance *lqb_opt_importance(lua_State *L, int o, const char *fn, qb_importance *out)
{
    if (!o || lua_getfield(L, o, "imatrix") == LUA_TNIL) {
        if (o) lua_pop(L, 1);
        return NULL;
    }
    lqb_imatrix *u = luaL_testudata(L, -1, LQB_IMATRIX);
    if (!u) luaL_error(L, "bad option 'imatrix' to '%s' (qb.imatrix expected, got %s)", fn, luaL_typename(L, -1));
    if (!u->im) luaL_error(L, "bad option 'imatrix' to '%s' (imatrix is empty)", fn);
    lua_pop(L, 1); /* the options table keeps it alive for the call */
    if (qb_imatrix_importance(&lqb_host_of(L)->ctx, u->im, out) != QB_OK) lqb_fail(L, QB_ERR_FORMAT);
    return out;
}

/* qb.imatrix(model, text_path [, opts]) */
static int l_imatrix(lua_State *L)
{
    qb_model *m = lqb_check_model(L, 1);
    const char *path = luaL_checkstring(L, 2);
    int o = lqb_opt_table(L, 3);
    qb_imatrix_opts io = {0};
    io.n_ctx = (int)lqb_opt_int(L, o, "ctx", 0);
    io.n_chunks = (int)lqb_opt_int(L, o, "chunks", 0);
    io.n_ubatch = (int)lqb_opt_int(L, o, "ubatch", 0);
    io.process_output = lqb_opt_bool(L, o, "process_output", false);
    if (io.n_ctx < 0 || io.n_chunks < 0 || io.n_ubatch < 0)
        return luaL_error(L, "bad option 'ctx'/'chunks'/'ubatch' to 'imatrix' (must be >= 0)");
    lqb_imatrix *u = push_new(L);
    lqb_progress pr;
    lqb_progress_begin(L, &pr, "imatrix", o);
    io.progress = lqb_progress_cb;
    io.ud = &pr;
    io.cancel = lqb_cancel_ptr(L);
    qb_status st = qb_imatrix_collect_file(&lqb_host_of(L)->ctx, m, path, &io, &u->im);
    lqb_progress_end(L, &pr, st);
    return 1;
}

/* qb.load_imatrix(path) */
static int l_load_imatrix(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lqb_imatrix *u = push_new(L);
    qb_status st = qb_imatrix_load(&lqb_host_of(L)->ctx, path, &u->im);
    if (st != QB_OK) return lqb_fail(L, st);
    return 1;
}

/* im:save(path) → entries written, entries left out (experts without tokens, .dat only) */
static int i_save(lua_State *L)
{
    qb_imatrix *im = lqb_check_imatrix(L, 1);
    const char *path = luaL_checkstring(L, 2);
    char *full = lqb_output_path(L, path);
    int skipped = 0;
    qb_status st = qb_imatrix_save(&lqb_host_of(L)->ctx, im, full, qb_imatrix_format_of(full), &skipped);
    free(full);
    if (st != QB_OK) return lqb_fail(L, st);
    lua_pushinteger(L, im->n_entries - skipped);
    lua_pushinteger(L, skipped);
    return 2;
}

static int i_info(lua_State *L)
{
    qb_imatrix *im = lqb_check_imatrix(L, 1);
    lua_createtable(L, 0, 5);
    lqb_set_int(L, "entries", im->n_entries);
    lqb_set_int(L, "chunks", im->chunk_count);
    lqb_set_int(L, "chunk_size", im->chunk_size);
    lua_pushboolean(L, im->legacy);
    lua_setfield(L, -2, "legacy");
    lua_createtable(L, im->n_datasets, 0);
    for (int i = 0; i < im->n_datasets; i++) {
        lua_pushstring(L, im->datasets[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "datasets");
    return 1;
}

/* im:entries() → the entry names in file (or model) order */
static int i_entries(lua_State *L)
{
    qb_imatrix *im = lqb_check_imatrix(L, 1);
    lua_createtable(L, im->n_entries, 0);
    for (int i = 0; i < im->n_entries; i++) {
        lua_pushstring(L, im->entries[i].name);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* im:entry(name) → {name, cols, matrices, ncall, counts={}, importance={}} or nil; importance
 * is what a quantizer weights column j of matrix e by (index e * cols + j + 1). */
static int i_entry(lua_State *L)
{
    qb_imatrix *im = lqb_check_imatrix(L, 1);
    const qb_imatrix_entry *e = qb_imatrix_find(im, luaL_checkstring(L, 2));
    if (!e) {
        lua_pushnil(L);
        return 1;
    }
    size_t n = (size_t)e->n_cols * e->n_mat;
    lqb_host *h = lqb_host_of(L);
    if (h->mem_limit && n * 16 > h->mem_limit) return luaL_error(L, "entry '%s' too large for the memory limit", e->name);
    lua_createtable(L, 0, 6);
    lqb_set_str(L, "name", e->name);
    lqb_set_int(L, "cols", e->n_cols);
    lqb_set_int(L, "matrices", e->n_mat);
    lqb_set_int(L, "ncall", e->ncall);
    lua_createtable(L, e->n_mat, 0);
    for (int j = 0; j < e->n_mat; j++) {
        lua_pushnumber(L, e->counts[j]);
        lua_rawseti(L, -2, j + 1);
    }
    lua_setfield(L, -2, "counts");
    lua_createtable(L, (int)n, 0);
    for (size_t k = 0; k < n; k++) {
        lua_pushnumber(L, e->w[k]);
        lua_rawseti(L, -2, (lua_Integer)k + 1);
    }
    lua_setfield(L, -2, "importance");
    return 1;
}

/* im:check(model): every entry names one of the model's matrices with its width (raises) */
static int i_check(lua_State *L)
{
    qb_imatrix *im = lqb_check_imatrix(L, 1);
    qb_model *m = lqb_check_model(L, 2);
    qb_status st = qb_imatrix_match(&lqb_host_of(L)->ctx, im, m);
    if (st != QB_OK) return lqb_fail(L, st);
    lua_settop(L, 1);
    return 1;
}

static int i_gc(lua_State *L)
{
    lqb_imatrix *u = luaL_checkudata(L, 1, LQB_IMATRIX);
    qb_imatrix_free(u->im);
    u->im = NULL;
    return 0;
}

static int i_tostring(lua_State *L)
{
    lqb_imatrix *u = luaL_checkudata(L, 1, LQB_IMATRIX);
    if (!u->im) lua_pushliteral(L, "qb.imatrix (empty)");
    else lua_pushfstring(L, "qb.imatrix: %d entries, %d chunks%s", u->im->n_entries, (int)u->im->chunk_count,
                         u->im->legacy ? " (legacy .dat)" : "");
    return 1;
}

void lqb_open_imatrix(lua_State *L)
{
    static const luaL_Reg methods[] = {{"save", i_save},   {"info", i_info},   {"entries", i_entries},
                                       {"entry", i_entry}, {"check", i_check}, {NULL, NULL}};
    luaL_newmetatable(L, LQB_IMATRIX);
    lua_pushcfunction(L, i_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, i_gc);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, i_tostring);
    lua_setfield(L, -2, "__tostring");
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_imatrix);
    lua_setfield(L, -2, "imatrix");
    lua_pushcfunction(L, l_load_imatrix);
    lua_setfield(L, -2, "load_imatrix");
}
