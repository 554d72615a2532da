/* lqb.c — the embedded interpreter: a state with a capped allocator, an instruction hook for
 * cancel and time limits, the sandboxed standard libraries (or all of them when trusted), a
 * print routed to the host, a require limited to Lua source files in the recipe's folder and
 * the shipped lua/ folder, and running chunks under a traceback handler. */
#include "lqb_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MEM_LIMIT ((size_t)1 << 30)
#define HOOK_EVERY 10000

static void hook(lua_State *L, lua_Debug *ar);

double lqb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

lqb_host *lqb_host_of(lua_State *L)
{
    return *(lqb_host **)lua_getextraspace(L);
}

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    lqb_host *h = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        h->mem_used -= old;
        return NULL;
    }
    if (nsize > old && h->mem_used - old + nsize > h->mem_limit) return NULL;
    void *p = realloc(ptr, nsize);
    if (p) h->mem_used = h->mem_used - old + nsize;
    return p;
}

void lqb_check_stop(lua_State *L, int level)
{
    lqb_host *h = lqb_host_of(L);
    bool cancelled = h->cancel && *h->cancel;
    if (!cancelled && !(h->deadline > 0 && lqb_now() > h->deadline)) return;
    /* from now on the hook fires at every instruction, so a recipe that catches the error with
     * pcall gets it again as soon as it runs code outside the pcall */
    lua_sethook(L, hook, LUA_MASKCOUNT, 1);
    luaL_where(L, level);
    if (cancelled) lua_pushliteral(L, "cancelled");
    else {
        char msg[64];
        snprintf(msg, sizeof msg, "time limit of %g s exceeded", h->max_seconds);
        lua_pushstring(L, msg);
    }
    lua_concat(L, 2);
    lua_error(L);
}

static void hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lqb_check_stop(L, 0);
}

/* ---- output routing ---- */

static void stdout_line(void *ud, const char *line)
{
    (void)ud;
    fputs(line, stdout);
    fputc('\n', stdout);
    fflush(stdout);
}

void lqb_print(lua_State *L, const char *text)
{
    lqb_host *h = lqb_host_of(L);
    const char *p = text;
    for (;;) {
        const char *nl = strchr(p, '\n');
        if (!nl) {
            h->print(h->print_ud, p);
            return;
        }
        size_t n = (size_t)(nl - p);
        char stackbuf[512];
        char *line = n < sizeof stackbuf ? stackbuf : malloc(n + 1);
        if (!line) return;
        memcpy(line, p, n);
        line[n] = 0;
        h->print(h->print_ud, line);
        if (line != stackbuf) free(line);
        p = nl + 1;
    }
}

static int l_print(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1) luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    lqb_print(L, lua_tostring(L, -1));
    return 0;
}

void qb_lua_set_print(lua_State *L, void (*fn)(void *ud, const char *line), void *ud)
{
    lqb_host *h = lqb_host_of(L);
    h->print = fn ? fn : stdout_line;
    h->print_ud = fn ? ud : NULL;
}

size_t qb_lua_mem_used(lua_State *L)
{
    return lqb_host_of(L)->mem_used;
}

/* ---- sandbox ---- */

/* load(chunk [, chunkname [, mode [, env]]]) restricted to text chunks. */
static int l_load_text(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    const char *name = luaL_optstring(L, 2, "=(load)");
    if (!lua_isnoneornil(L, 3) && strcmp(luaL_checkstring(L, 3), "t") != 0)
        return luaL_argerror(L, 3, "only text chunks (mode \"t\") are allowed in the sandbox");
    int has_env = !lua_isnone(L, 4);
    if (luaL_loadbufferx(L, s, len, name, "t") != LUA_OK) {
        luaL_pushfail(L);
        lua_insert(L, -2);
        return 2;
    }
    if (has_env) {
        lua_pushvalue(L, 4);
        if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
    }
    return 1;
}

static bool readable(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return false;
    fclose(f);
    return true;
}

/* require(name): package.loaded first, then "<dir>/<name with dots as slashes>.lua" in the
 * folders of the search list (the recipe's folder, the shipped lua/ folder), text only. */
static int l_require(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, name);
    if (lua_toboolean(L, -1)) return 1;
    lua_pop(L, 1);
    for (const char *c = name; *c; c++)
        if (!(*c == '.' || *c == '_' || *c == '-' || (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') ||
              (*c >= 'A' && *c <= 'Z')))
            return luaL_error(L, "module '%s': bad module name", name);
    char rel[PATH_MAX];
    snprintf(rel, sizeof rel, "%s", name);
    for (char *c = rel; *c; c++)
        if (*c == '.') *c = '/';
    lua_getfield(L, LUA_REGISTRYINDEX, "qb.require_path");
    int n = (int)luaL_len(L, -1);
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        char path[PATH_MAX * 2];
        snprintf(path, sizeof path, "%s/%s.lua", lua_tostring(L, -1), rel);
        lua_pop(L, 1);
        if (!readable(path)) continue;
        if (luaL_loadfilex(L, path, "t") != LUA_OK) return lua_error(L);
        lua_pushstring(L, name);
        lua_pushstring(L, path);
        lua_call(L, 2, 1);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_pushboolean(L, 1);
        }
        lua_pushvalue(L, -1);
        lua_setfield(L, 2, name); /* package.loaded[name] */
        return 1;
    }
    return luaL_error(L, "module '%s' not found (searched the recipe's folder and the qb Lua folder)", name);
}

static void require_path_add(lua_State *L, const char *dir)
{
    if (!dir || !*dir) return;
    lua_getfield(L, LUA_REGISTRYINDEX, "qb.require_path");
    lua_pushstring(L, dir);
    lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
    lua_pop(L, 1);
}

static void require_path_prepend(lua_State *L, const char *dir)
{
    lua_getfield(L, LUA_REGISTRYINDEX, "qb.require_path");
    lua_Integer n = luaL_len(L, -1);
    for (lua_Integer i = n; i >= 1; i--) {
        lua_rawgeti(L, -1, i);
        lua_rawseti(L, -2, i + 1);
    }
    lua_pushstring(L, dir);
    lua_rawseti(L, -2, 1);
    lua_pop(L, 1);
}

static char *find_lib_dir(void)
{
    const char *env = getenv("QB_LUA_DIR");
    if (env && *env) return strdup(env);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return NULL;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return NULL;
    *slash = 0;
    const char *cands[] = {"../lua", "../share/quantbench/lua", "../../lua"};
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
        char p[PATH_MAX * 2];
        snprintf(p, sizeof p, "%s/%s/qb", exe, cands[i]);
        if (access(p, R_OK) == 0) {
            snprintf(p, sizeof p, "%s/%s", exe, cands[i]);
            char *r = realpath(p, NULL);
            if (r) return r;
        }
    }
    return NULL;
}

static void open_sandbox(lua_State *L)
{
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},     {LUA_TABLIBNAME, luaopen_table}, {LUA_STRLIBNAME, luaopen_string},
        {LUA_MATHLIBNAME, luaopen_math}, {LUA_UTF8LIBNAME, luaopen_utf8},
    };
    for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) {
        luaL_requiref(L, libs[i].name, libs[i].func, 1);
        lua_pop(L, 1);
    }
    lua_pushnil(L);
    lua_setglobal(L, "dofile");
    lua_pushnil(L);
    lua_setglobal(L, "loadfile");
    lua_pushcfunction(L, l_load_text);
    lua_setglobal(L, "load");
    lua_getglobal(L, LUA_STRLIBNAME);
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_require);
    lua_setglobal(L, "require");
}

lua_State *qb_lua_new(const qb_lua_opts *o)
{
    qb_lua_opts def = {0};
    if (!o) o = &def;
    lqb_host *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    qb_ctx_init(&h->ctx);
    if (o->n_threads > 0) h->ctx.n_threads = o->n_threads;
    h->trusted = o->trusted;
    h->mem_limit = o->mem_limit ? o->mem_limit : DEFAULT_MEM_LIMIT;
    h->cancel = o->cancel;
    h->max_seconds = o->max_seconds;
    h->deadline = o->max_seconds > 0 ? lqb_now() + o->max_seconds : 0;
    h->print = stdout_line;
    h->progress = o->progress;
    h->progress_ud = o->progress_ud;
    if (o->write_dir) {
        h->write_dir = realpath(o->write_dir, NULL);
        if (!h->write_dir) { /* not there yet: the first write creates it */
            h->write_dir = strdup(o->write_dir);
            if (!h->write_dir) goto fail;
        }
    }
    h->lib_dir = o->lib_dir ? strdup(o->lib_dir) : find_lib_dir();
    lua_State *L = lua_newstate(capped_alloc, h);
    if (!L) goto fail;
    *(lqb_host **)lua_getextraspace(L) = h;
    lua_atpanic(L, NULL);
    lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_EVERY);
    if (o->trusted) {
        luaL_openlibs(L);
    } else {
        open_sandbox(L);
    }
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "qb.require_path");
    require_path_add(L, h->lib_dir);
    if (o->trusted && h->lib_dir) { /* the real require finds the helpers too */
        lua_getglobal(L, "package");
        lua_pushfstring(L, "%s/?.lua;", h->lib_dir);
        lua_getfield(L, -2, "path");
        lua_concat(L, 2);
        lua_setfield(L, -2, "path");
        lua_pop(L, 1);
    }
    lua_pushcfunction(L, l_print);
    lua_setglobal(L, "print");
    luaL_requiref(L, "qb", luaopen_qb, 1);
    lua_pop(L, 1);
    return L;
fail:
    free(h->write_dir);
    free(h->lib_dir);
    free(h);
    return NULL;
}

void qb_lua_close(lua_State *L)
{
    if (!L) return;
    lqb_host *h = lqb_host_of(L);
    lua_close(L);
    free(h->write_dir);
    free(h->lib_dir);
    free(h);
}

/* ---- running code ---- */

static int traceback(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TTABLE && lua_getfield(L, 1, "qb_exit") == LUA_TNUMBER) { /* qb.exit(): no traceback */
        lua_settop(L, 1);
        return 1;
    }
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

static int run_loaded(lua_State *L, int base, int nargs, char *err, size_t cap)
{
    lqb_host *h = lqb_host_of(L);
    h->deadline = h->max_seconds > 0 ? lqb_now() + h->max_seconds : 0;
    lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_EVERY);
    lua_pushcfunction(L, traceback);
    lua_insert(L, base + 1);
    int st = lua_pcall(L, nargs, 0, base + 1);
    if (st != LUA_OK && lua_type(L, -1) == LUA_TTABLE && lua_getfield(L, -1, "qb_exit") == LUA_TNUMBER) {
        int code = (int)lua_tointeger(L, -1); /* qb.exit(code): a clean stop */
        if (code != 0 && err && cap) snprintf(err, cap, "the recipe exited with status %d", code);
        lua_settop(L, base);
        return code;
    }
    if (st != LUA_OK) {
        const char *m = lua_tostring(L, -1);
        if (st == LUA_ERRMEM) m = "not enough memory (the Lua memory cap was reached)";
        if (err && cap) snprintf(err, cap, "%s", m ? m : "error");
    }
    lua_settop(L, base);
    return st;
}

static int load_failed(lua_State *L, int base, int st, char *err, size_t cap)
{
    const char *m = lua_tostring(L, -1);
    if (st == LUA_ERRMEM) m = "not enough memory (the Lua memory cap was reached)";
    if (err && cap) snprintf(err, cap, "%s", m ? m : "cannot load chunk");
    lua_settop(L, base);
    return st ? st : 1;
}

int qb_lua_exec(lua_State *L, const char *code, const char *chunkname, char *err, size_t cap)
{
    int base = lua_gettop(L);
    char name[256];
    if (!chunkname) chunkname = "chunk";
    if (chunkname[0] == '=' || chunkname[0] == '@') snprintf(name, sizeof name, "%s", chunkname);
    else snprintf(name, sizeof name, "=%s", chunkname);
    int st = luaL_loadbufferx(L, code, strlen(code), name, "t");
    if (st != LUA_OK) return load_failed(L, base, st, err, cap);
    return run_loaded(L, base, 0, err, cap);
}

int qb_lua_exec_file(lua_State *L, const char *path, int argc, char **argv, char *err, size_t cap)
{
    int base = lua_gettop(L);
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (err && cap) snprintf(err, cap, "%s: cannot open: %s", path, strerror(errno));
        return 1;
    }
    fclose(f);
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    require_path_prepend(L, dir);
    if (lqb_host_of(L)->trusted && lua_getglobal(L, "package") == LUA_TTABLE) { /* the real require too */
        lua_pushfstring(L, "%s/?.lua;", dir);
        lua_getfield(L, -2, "path");
        lua_concat(L, 2);
        lua_setfield(L, -2, "path");
    }
    lua_settop(L, base);
    lua_createtable(L, argc, 1);
    lua_pushstring(L, path);
    lua_rawseti(L, -2, 0);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setglobal(L, "arg");
    int st = luaL_loadfilex(L, path, "t");
    if (st != LUA_OK) return load_failed(L, base, st, err, cap);
    for (int i = 0; i < argc; i++) lua_pushstring(L, argv[i]);
    return run_loaded(L, base, argc, err, cap);
}

/* Print every value on the stack above base (tables as JSON through qb.to_json). */
static int print_results(lua_State *L)
{
    int n = lua_gettop(L);
    lua_getglobal(L, "qb");
    int qb = lua_gettop(L);
    for (int i = 1; i <= n; i++) {
        if (lua_type(L, i) == LUA_TTABLE && lua_istable(L, qb) && lua_getfield(L, qb, "to_json") == LUA_TFUNCTION) {
            lua_pushvalue(L, i);
            if (lua_pcall(L, 1, 1, 0) != LUA_OK) { /* cycles, odd keys: fall back to tostring */
                lua_pop(L, 1);
                luaL_tolstring(L, i, NULL);
            }
        } else {
            if (lua_istable(L, qb)) lua_settop(L, qb);
            luaL_tolstring(L, i, NULL);
        }
        lqb_print(L, lua_tostring(L, -1));
        lua_settop(L, qb);
    }
    return 0;
}

int qb_lua_repl(lua_State *L, const char *code, const char *chunkname, char *err, size_t cap)
{
    int base = lua_gettop(L);
    char name[256];
    if (!chunkname) chunkname = "console";
    if (chunkname[0] == '=' || chunkname[0] == '@') snprintf(name, sizeof name, "%s", chunkname);
    else snprintf(name, sizeof name, "=%s", chunkname);
    lua_pushfstring(L, "return %s", code);
    int st = luaL_loadbufferx(L, lua_tostring(L, -1), strlen(lua_tostring(L, -1)), name, "t");
    lua_remove(L, -2);
    if (st != LUA_OK) { /* not an expression: a statement */
        lua_settop(L, base);
        return qb_lua_exec(L, code, chunkname, err, cap);
    }
    /* call the expression, then print its values, all under the traceback handler */
    lua_pushcfunction(L, print_results);
    lua_insert(L, -2);
    lqb_host *h = lqb_host_of(L);
    h->deadline = h->max_seconds > 0 ? lqb_now() + h->max_seconds : 0;
    lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_EVERY);
    lua_pushcfunction(L, traceback);
    lua_insert(L, base + 1);
    st = lua_pcall(L, 0, LUA_MULTRET, base + 1);
    if (st == LUA_OK) {
        int nres = lua_gettop(L) - (base + 2);
        st = lua_pcall(L, nres, 0, base + 1);
    }
    if (st != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        if (st == LUA_ERRMEM) msg = "not enough memory (the Lua memory cap was reached)";
        if (err && cap) snprintf(err, cap, "%s", msg ? msg : "error");
    }
    lua_settop(L, base);
    return st;
}
