/* lqb_util.c — shared helpers of the qb module: option fields with errors naming the option,
 * formats from strings or setting tables, the progress/cancel bridge for long core calls,
 * and the sandboxed output path check. */
#include "lqb_internal.h"
#include "core/quant/format_traits.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int lqb_fail(lua_State *L, qb_status st)
{
    lqb_host *h = lqb_host_of(L);
    if (st == QB_ERR_CANCELLED) lqb_check_stop(L, 1);
    const char *m = qb_ctx_errmsg(&h->ctx);
    return luaL_error(L, "%s", m && *m ? m : qb_status_name(st));
}

/* ---- result tables ---- */

void lqb_set_int(lua_State *L, const char *k, lua_Integer v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

void lqb_set_num(lua_State *L, const char *k, double v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

void lqb_set_str(lua_State *L, const char *k, const char *v)
{
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

/* ---- options ---- */

int lqb_opt_table(lua_State *L, int arg)
{
    if (lua_isnoneornil(L, arg)) return 0;
    luaL_checktype(L, arg, LUA_TTABLE);
    return lua_absindex(L, arg);
}

static int opt_get(lua_State *L, int t, const char *key)
{
    if (!t) return LUA_TNIL;
    return lua_getfield(L, t, key);
}

static int opt_error(lua_State *L, int t, const char *key, const char *want)
{
    lua_Debug ar;
    const char *fn = "?";
    if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "n", &ar) && ar.name) fn = ar.name;
    if (!strcmp(fn, "?")) return luaL_error(L, "bad option '%s' (%s expected, got %s)", key, want, luaL_typename(L, -1));
    return luaL_error(L, "bad option '%s' to '%s' (%s expected, got %s)", key, fn, want, luaL_typename(L, -1));
    (void)t;
}

lua_Integer lqb_opt_int(lua_State *L, int t, const char *key, lua_Integer def)
{
    int ty = opt_get(L, t, key);
    if (ty == LUA_TNIL) {
        if (t) lua_pop(L, 1);
        return def;
    }
    int isint = 0;
    lua_Integer v = lua_tointegerx(L, -1, &isint);
    if (!isint || ty != LUA_TNUMBER) opt_error(L, t, key, "integer");
    lua_pop(L, 1);
    return v;
}

double lqb_opt_num(lua_State *L, int t, const char *key, double def)
{
    int ty = opt_get(L, t, key);
    if (ty == LUA_TNIL) {
        if (t) lua_pop(L, 1);
        return def;
    }
    if (ty != LUA_TNUMBER) opt_error(L, t, key, "number");
    double v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return v;
}

bool lqb_opt_bool(lua_State *L, int t, const char *key, bool def)
{
    int ty = opt_get(L, t, key);
    if (ty == LUA_TNIL) {
        if (t) lua_pop(L, 1);
        return def;
    }
    if (ty != LUA_TBOOLEAN) opt_error(L, t, key, "boolean");
    bool v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* The string stays valid while the options table holds it. */
const char *lqb_opt_str(lua_State *L, int t, const char *key, const char *def)
{
    int ty = opt_get(L, t, key);
    if (ty == LUA_TNIL) {
        if (t) lua_pop(L, 1);
        return def;
    }
    if (ty != LUA_TSTRING) opt_error(L, t, key, "string");
    const char *v = lua_tostring(L, -1);
    lua_pop(L, 1);
    return v;
}

/* ---- formats ---- */

static void parse_or_raise(lua_State *L, const char *name, qb_format *out)
{
    lqb_host *h = lqb_host_of(L);
    if (qb_format_parse(&h->ctx, name, out) != QB_OK) luaL_error(L, "%s", qb_ctx_errmsg(&h->ctx));
}

static void check_format(lua_State *L, int idx, qb_format *out, bool rule);

void lqb_check_format(lua_State *L, int idx, qb_format *out) { check_format(L, idx, out, false); }
void lqb_check_rule_format(lua_State *L, int idx, qb_format *out) { check_format(L, idx, out, true); }

/* rule: the table is a plan rule, whose method= the plan keeps (lqb_plan.c) */
static void check_format(lua_State *L, int idx, qb_format *out, bool rule)
{
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) == LUA_TSTRING) {
        parse_or_raise(L, lua_tostring(L, idx), out);
        return;
    }
    if (lua_type(L, idx) != LUA_TTABLE)
        luaL_error(L, "bad format (string like \"q4_k\" or table {bits=4, group=128} expected, got %s)",
                   luaL_typename(L, idx));
    const char *method = rule ? "rtn" : lqb_opt_str(L, idx, "method", "rtn");
    if (!strcmp(method, "gptq") || !strcmp(method, "awq"))
        luaL_error(L, "method '%s' works on a whole model: model:apply(plan, {method='%s', calib=qb.calibrate(model, "
                      "text)})", method, method);
    if (strcmp(method, "rtn") != 0)
        luaL_error(L, "method '%s' is not a weight method (known: rtn, gptq, awq; llm.int8 and smoothquant: "
                      "model:act{...})", method);
    lqb_opt_bool(L, idx, "fallback", false); /* type-checked here, used by the callers */
    if (lua_getfield(L, idx, "format") == LUA_TTABLE) { /* a nested setting: {match=, format={bits=4}} */
        lqb_check_format(L, -1, out);
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    const char *fmt = lqb_opt_str(L, idx, "format", NULL);
    lua_Integer bits = lqb_opt_int(L, idx, "bits", 0);
    bool sym = lqb_opt_bool(L, idx, "sym", true);
    char name[64];
    lua_Integer group = QB_GROUP_CHANNEL;
    int gty = opt_get(L, idx, "group");
    if (gty == LUA_TSTRING) {
        const char *g = lua_tostring(L, -1);
        if (!strcmp(g, "tensor")) group = QB_GROUP_TENSOR;
        else if (!strcmp(g, "channel")) group = QB_GROUP_CHANNEL;
        else luaL_error(L, "bad option 'group' (\"tensor\", \"channel\" or 32/64/128/256 expected, got \"%s\")", g);
    } else if (gty == LUA_TNUMBER && lua_isinteger(L, -1)) {
        group = lua_tointeger(L, -1);
    } else if (gty != LUA_TNIL) {
        opt_error(L, idx, "group", "integer or \"tensor\"/\"channel\"");
    }
    lua_pop(L, 1);
    if (fmt && (strcmp(fmt, "int") != 0 || !bits)) {
        parse_or_raise(L, fmt, out);
        return;
    }
    if (!bits) luaL_error(L, "bad format table (needs format= or bits=)");
    const char *gs = group == QB_GROUP_TENSOR ? "-tensor" : group == QB_GROUP_CHANNEL ? "-channel" : NULL;
    if (gs) snprintf(name, sizeof name, "int%lld%s-%s", (long long)bits, gs, sym ? "sym" : "asym");
    else snprintf(name, sizeof name, "int%lld-g%lld-%s", (long long)bits, (long long)group, sym ? "sym" : "asym");
    parse_or_raise(L, name, out);
}

void lqb_push_format(lua_State *L, const qb_format *f)
{
    const qb_format_traits *tr = qb_format_traits_of(f);
    char name[64];
    qb_format_name(f, name, sizeof name);
    lua_createtable(L, 0, 6);
    lua_pushstring(L, name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, tr ? tr->kind : "?");
    lua_setfield(L, -2, "kind");
    if (!tr) return;
    lua_pushinteger(L, tr->bits(f));
    lua_setfield(L, -2, "bits");
    /* granularity: the format's own group where the user chooses it (tensor / channel / size),
     * else its block */
    if (tr->block_is_group || tr->per_tensor) {
        if (f->group == QB_GROUP_TENSOR) lua_pushstring(L, "tensor");
        else if (f->group == QB_GROUP_CHANNEL) lua_pushstring(L, "channel");
        else lua_pushinteger(L, f->group);
    } else {
        lua_pushinteger(L, tr->block(f));
    }
    lua_setfield(L, -2, "group");
    if (tr->asym_option) {
        lua_pushboolean(L, !f->asym);
        lua_setfield(L, -2, "sym");
    }
}

/* ---- progress and cancel ---- */

const volatile int *lqb_cancel_ptr(lua_State *L)
{
    lqb_host *h = lqb_host_of(L);
    return &h->stop;
}

void lqb_progress_begin(lua_State *L, lqb_progress *p, const char *label, int opts_idx)
{
    lqb_host *h = lqb_host_of(L);
    lqb_check_stop(L, 1);
    h->stop = 0;
    memset(p, 0, sizeof *p);
    p->L = L;
    p->label = label;
    p->cb_ref = LUA_NOREF;
    p->err_ref = LUA_NOREF;
    if (opts_idx) {
        int ty = lua_getfield(L, opts_idx, "progress");
        if (ty == LUA_TFUNCTION) {
            p->cb_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        } else {
            if (ty != LUA_TNIL) opt_error(L, opts_idx, "progress", "function");
            lua_pop(L, 1);
        }
    }
}

/* Called by core on the Lua thread, outside parallel regions. Never raises: a Lua callback's
 * error is kept and the core call is stopped through the stop flag. */
void lqb_progress_cb(void *ud, int done, int total)
{
    lqb_progress *p = ud;
    lua_State *L = p->L;
    lqb_host *h = lqb_host_of(L);
    if ((h->cancel && *h->cancel) || (h->deadline > 0 && lqb_now() > h->deadline)) h->stop = 1;
    if (h->progress) h->progress(h->progress_ud, p->label, done, total);
    if (p->cb_ref != LUA_NOREF && !p->failed && !h->stop) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, p->cb_ref);
        lua_pushinteger(L, done);
        lua_pushinteger(L, total);
        if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
            p->failed = 1;
            p->err_ref = luaL_ref(L, LUA_REGISTRYINDEX);
            h->stop = 1;
        }
    }
}

void lqb_progress_end(lua_State *L, lqb_progress *p, qb_status st)
{
    lqb_host *h = lqb_host_of(L);
    if (p->cb_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, p->cb_ref);
    p->cb_ref = LUA_NOREF;
    h->stop = 0;
    if (p->failed) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, p->err_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, p->err_ref);
        lua_error(L);
    }
    if (st == QB_OK) return;
    lqb_fail(L, st);
}

/* ---- sandboxed output ---- */

static bool under(const char *dir, const char *path)
{
    size_t n = strlen(dir);
    if (n == 1 && dir[0] == '/') return true;
    return strncmp(dir, path, n) == 0 && (path[n] == '/' || path[n] == 0);
}

char *lqb_output_path(lua_State *L, const char *path)
{
    lqb_host *h = lqb_host_of(L);
    if (!*path) luaL_error(L, "empty output path");
    if (h->trusted && !h->write_dir) return strdup(path);
    if (!h->write_dir)
        luaL_error(L, "%s: file output is not allowed here (no output folder; the runner's --out sets one)", path);
    if (path[0] == '/') {
        if (!h->trusted) luaL_error(L, "%s: absolute paths are not allowed (write relative to the output folder %s)",
                                    path, h->write_dir);
        return strdup(path);
    }
    for (const char *c = path; *c;) {
        const char *e = strchr(c, '/');
        size_t n = e ? (size_t)(e - c) : strlen(c);
        if (n == 2 && c[0] == '.' && c[1] == '.')
            luaL_error(L, "%s: paths may not leave the output folder %s ('..')", path, h->write_dir);
        c += n + (e ? 1 : 0);
    }
    /* create the output folder and the path's parent folders inside it */
    size_t len = strlen(h->write_dir) + strlen(path) + 2;
    char *full = malloc(len);
    if (!full) luaL_error(L, "out of memory");
    mkdir(h->write_dir, 0777);
    snprintf(full, len, "%s/%s", h->write_dir, path);
    for (char *c = full + strlen(h->write_dir) + 1; (c = strchr(c, '/')); c++) {
        *c = 0;
        mkdir(full, 0777);
        *c = '/';
    }
    /* the parent must resolve inside the folder (no symlink leading out) */
    char *slash = strrchr(full, '/');
    *slash = 0;
    char *real_parent = realpath(full, NULL);
    char *real_dir = realpath(h->write_dir, NULL);
    *slash = '/';
    int e = errno;
    bool resolved = real_parent && real_dir, ok = resolved && under(real_dir, real_parent);
    free(real_parent);
    free(real_dir);
    if (!ok) {
        luaL_where(L, 1);
        if (resolved) lua_pushfstring(L, "%s: cannot write there (it leads outside the output folder %s)", path, h->write_dir);
        else lua_pushfstring(L, "%s: cannot create its folder in %s: %s", path, h->write_dir, strerror(e));
        lua_concat(L, 2);
        free(full);
        lua_error(L);
    }
    return full;
}

/* ---- C string buffers ---- */

static int sbuf_gc(lua_State *L)
{
    lqb_sbuf *b = lua_touserdata(L, 1);
    free(b->p);
    b->p = NULL;
    return 0;
}

lqb_sbuf *lqb_sbuf_new(lua_State *L)
{
    lqb_sbuf *b = lua_newuserdatauv(L, sizeof *b, 0);
    memset(b, 0, sizeof *b);
    if (luaL_newmetatable(L, "qb.sbuf")) {
        lua_pushcfunction(L, sbuf_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return b;
}

void lqb_sbuf_add(lua_State *L, lqb_sbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) luaL_error(L, "out of memory building text");
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void lqb_sbuf_adds(lua_State *L, lqb_sbuf *b, const char *s)
{
    lqb_sbuf_add(L, b, s, strlen(s));
}

void lqb_sbuf_addf(lua_State *L, lqb_sbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        lqb_sbuf_add(L, b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) luaL_error(L, "out of memory building text");
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    lqb_sbuf_add(L, b, big, (size_t)n);
    free(big);
}
