/* lqb_io.c — results out of a recipe: qb.write_csv / qb.write_json (atomic files, only inside
 * the output folder), qb.print_table (aligned columns through the state's print route), and
 * qb.to_json for strings. JSON is built and printed by core's writer (core/util/json_out.h). */
#include "lqb_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util/atomic_file.h"
#include "core/util/json_out.h"

/* Add name to the cols array (at cols) unless the set (at seen) has it; name on the top. */
static void add_column(lua_State *L, int cols, int seen, lua_Integer *nc)
{
    lua_pushvalue(L, -1);
    if (lua_rawget(L, seen) == LUA_TNIL) {
        lua_pushvalue(L, -2);
        lua_pushboolean(L, 1);
        lua_rawset(L, seen);
        lua_pushvalue(L, -2);
        lua_rawseti(L, cols, ++*nc);
    }
    lua_pop(L, 2);
}

/* Column keys: the explicit list at cidx, else 1..n when the rows are arrays, else the sorted
 * string keys of every row. Pushes a Lua array of keys. */
static void push_columns(lua_State *L, int rows, int cidx)
{
    if (!lua_isnoneornil(L, cidx)) {
        luaL_checktype(L, cidx, LUA_TTABLE);
        lua_pushvalue(L, cidx);
        return;
    }
    lua_newtable(L);
    int cols = lua_gettop(L);
    lua_newtable(L);
    int seen = cols + 1;
    lua_Integer nr = luaL_len(L, rows), nc = 0;
    bool strings = false;
    for (lua_Integer i = 1; i <= nr; i++) {
        if (lua_rawgeti(L, rows, i) != LUA_TTABLE) luaL_error(L, "row %I is a %s, table expected", i, luaL_typename(L, -1));
        int row = lua_gettop(L);
        lua_Integer alen = (lua_Integer)lua_rawlen(L, row);
        for (lua_Integer k = 1; k <= alen; k++) {
            lua_pushinteger(L, k);
            add_column(L, cols, seen, &nc);
        }
        lua_pushnil(L);
        while (lua_next(L, row)) {
            lua_pop(L, 1);
            if (lua_type(L, -1) == LUA_TSTRING) {
                strings = true;
                lua_pushvalue(L, -1);
                add_column(L, cols, seen, &nc);
            }
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (strings) {
        /* string keys only, sorted */
        lua_newtable(L);
        lua_Integer k = 0;
        for (lua_Integer i = 1; i <= nc; i++)
            if (lua_rawgeti(L, cols, i) == LUA_TSTRING) lua_rawseti(L, -2, ++k);
            else lua_pop(L, 1);
        lua_getglobal(L, "table");
        lua_getfield(L, -1, "sort");
        lua_pushvalue(L, -3);
        lua_call(L, 1, 0);
        lua_pop(L, 1);
        lua_remove(L, cols);
    }
}

/* Text of the value on the top (replaced by its text). */
static const char *cell_text(lua_State *L, const char *numfmt, size_t *n)
{
    int ty = lua_type(L, -1);
    if (ty == LUA_TNUMBER && !lua_isinteger(L, -1)) {
        double v = lua_tonumber(L, -1);
        char b[64];
        if (isinf(v)) snprintf(b, sizeof b, v > 0 ? "inf" : "-inf");
        else if (isnan(v)) snprintf(b, sizeof b, "nan");
        else snprintf(b, sizeof b, numfmt, v);
        lua_pop(L, 1);
        lua_pushstring(L, b);
    } else if (ty == LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushliteral(L, "");
    } else {
        luaL_tolstring(L, -1, NULL);
        lua_remove(L, -2);
    }
    return lua_tolstring(L, -1, n);
}

static void write_text_file(lua_State *L, const char *path, const char *text, size_t len)
{
    char *full = lqb_output_path(L, path);
    lqb_host *h = lqb_host_of(L);
    qb_atomic_file f;
    qb_status st = qb_atomic_begin(&h->ctx, full, &f);
    if (st == QB_OK) {
        if (!qb_atomic_write(&f, text, len)) {
            qb_atomic_abort(&f);
            st = qb_fail(&h->ctx, QB_ERR_IO, "%s: write failed", path);
        } else {
            st = qb_atomic_commit(&h->ctx, &f);
        }
    }
    free(full);
    if (st != QB_OK) lqb_fail(L, st);
}

/* qb.write_csv(path, rows [, columns]) */
static int l_write_csv(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 3);
    push_columns(L, 2, 3);
    int cols = lua_gettop(L);
    lqb_sbuf *b = lqb_sbuf_new(L);
    lua_Integer nc = luaL_len(L, cols), nr = luaL_len(L, 2);
    for (lua_Integer r = 0; r <= nr; r++) {
        if (r > 0 && lua_rawgeti(L, 2, r) != LUA_TTABLE) return luaL_error(L, "row %I is not a table", r);
        for (lua_Integer c = 1; c <= nc; c++) {
            lua_rawgeti(L, cols, c);
            if (r > 0) lua_gettable(L, -2);
            size_t n;
            const char *s = cell_text(L, "%.10g", &n);
            if (c > 1) lqb_sbuf_add(L, b, ",", 1);
            if (strpbrk(s, ",\"\n\r")) {
                lqb_sbuf_add(L, b, "\"", 1);
                for (size_t i = 0; i < n; i++) lqb_sbuf_add(L, b, s[i] == '"' ? "\"\"" : s + i, s[i] == '"' ? 2 : 1);
                lqb_sbuf_add(L, b, "\"", 1);
            } else {
                lqb_sbuf_add(L, b, s, n);
            }
            lua_pop(L, 1);
        }
        lqb_sbuf_add(L, b, "\n", 1);
        if (r > 0) lua_pop(L, 1);
    }
    write_text_file(L, path, b->p ? b->p : "", b->n);
    lua_pushvalue(L, 1);
    return 1;
}

/* Lua values as JSON go through core's writer (core/util/json_out.h): a jansson tree built
 * under a userdata that owns it, so an error half-way (a bad key, a cycle) frees it at the
 * next collection instead of leaking. */
typedef struct {
    json_t *holder; /* a one-element array whose element is the value being built */
} json_box;

static int json_box_gc(lua_State *L)
{
    json_box *b = lua_touserdata(L, 1);
    json_decref(b->holder);
    b->holder = NULL;
    return 0;
}

static json_box *json_box_new(lua_State *L)
{
    json_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->holder = NULL;
    if (luaL_newmetatable(L, "qb.json_box")) {
        lua_pushcfunction(L, json_box_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    if (!(b->holder = json_array())) luaL_error(L, "out of memory");
    return b;
}

/* Attach v (a new reference, stolen) to parent: appended when parent is an array, under key
 * otherwise. Returns v (borrowed, kept alive by parent). */
static json_t *attach(lua_State *L, json_t *parent, const char *key, json_t *v)
{
    if (!v) luaL_error(L, "write_json: out of memory");
    int rc = json_is_array(parent) ? json_array_append_new(parent, v) : json_object_set_new(parent, key, v);
    if (rc != 0 && key) luaL_error(L, "write_json: cannot write the key '%s' (not UTF-8?)", key);
    if (rc != 0) luaL_error(L, "write_json: out of memory");
    return v;
}

static void json_value(lua_State *L, int idx, int depth, json_t *parent, const char *key);

/* The table at idx: an array when it has a sequence part, else an object (keys converted to
 * strings; written sorted). */
static void json_table(lua_State *L, int idx, int depth, json_t *parent, const char *key)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    if (n > 0) {
        json_t *a = attach(L, parent, key, json_array());
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, i);
            json_value(L, -1, depth + 1, a, NULL);
            lua_pop(L, 1);
        }
        return;
    }
    json_t *o = attach(L, parent, key, json_object());
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING && lua_type(L, -2) != LUA_TNUMBER)
            luaL_error(L, "write_json: keys must be strings or numbers (got a %s)", luaL_typename(L, -2));
        lua_pushvalue(L, -2);
        const char *k = luaL_tolstring(L, -1, NULL); /* stack: key value keycopy ktext */
        json_value(L, -3, depth + 1, o, k);
        lua_pop(L, 3);
    }
}

static void json_value(lua_State *L, int idx, int depth, json_t *parent, const char *key)
{
    idx = lua_absindex(L, idx);
    if (depth > 64) luaL_error(L, "write_json: nesting deeper than 64 (a cycle?)");
    luaL_checkstack(L, 8, "write_json");
    switch (lua_type(L, idx)) {
    case LUA_TNIL: attach(L, parent, key, json_null()); break;
    case LUA_TBOOLEAN: attach(L, parent, key, json_boolean(lua_toboolean(L, idx))); break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) attach(L, parent, key, json_integer((json_int_t)lua_tointeger(L, idx)));
        else attach(L, parent, key, qb_json_num(lua_tonumber(L, idx), NULL));
        break;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        attach(L, parent, key, qb_json_text(s, n));
        break;
    }
    case LUA_TTABLE: json_table(L, idx, depth, parent, key); break;
    default: luaL_error(L, "write_json: cannot write a %s value", luaL_typename(L, idx));
    }
}

/* The value at idx as compact JSON text, pushed as a Lua string. Reals keep 17 significant
 * digits (they read back exactly); object keys sorted. */
static void push_json(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    json_box *b = json_box_new(L);
    json_value(L, idx, 0, b->holder, NULL);
    char *text = json_dumps(json_array_get(b->holder, 0), JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!text) luaL_error(L, "write_json: out of memory");
    lua_pushstring(L, text);
    free(text);
    lua_remove(L, -2); /* the box */
}

static int l_to_json(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    push_json(L, 1);
    return 1;
}

/* qb.write_json(path, value) */
static int l_write_json(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    luaL_checkany(L, 2);
    lua_settop(L, 2);
    push_json(L, 2);
    lua_pushliteral(L, "\n");
    lua_concat(L, 2);
    size_t n;
    const char *text = lua_tolstring(L, -1, &n);
    write_text_file(L, path, text, n);
    lua_pushvalue(L, 1);
    return 1;
}

static size_t display_width(const char *s, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++) w += ((unsigned char)s[i] & 0xC0) != 0x80;
    return w;
}

#define MAX_COLS 256

/* qb.print_table(rows [, columns [, {title=, fmt=}]]) — aligned; numeric columns right-aligned */
static int l_print_table(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 3);
    int o = lqb_opt_table(L, 3);
    const char *numfmt = lqb_opt_str(L, o, "fmt", "%.4g");
    const char *title = lqb_opt_str(L, o, "title", NULL);
    push_columns(L, 1, 2);
    int cols = lua_gettop(L);
    lua_Integer nc = luaL_len(L, cols), nr = luaL_len(L, 1);
    if (nc > MAX_COLS) return luaL_error(L, "print_table: too many columns (%I)", nc);
    lua_createtable(L, (int)nr + 1, 0);
    int cells = lua_gettop(L);
    size_t width[MAX_COLS] = {0};
    bool left[MAX_COLS] = {0};
    for (lua_Integer r = 0; r <= nr; r++) {
        if (r > 0 && lua_rawgeti(L, 1, r) != LUA_TTABLE) return luaL_error(L, "row %I is not a table", r);
        lua_createtable(L, (int)nc, 0);
        for (lua_Integer c = 1; c <= nc; c++) {
            lua_rawgeti(L, cols, c);
            if (r > 0) lua_gettable(L, -3);
            if (r > 0 && lua_type(L, -1) == LUA_TSTRING) left[c - 1] = true;
            size_t n;
            const char *s = cell_text(L, numfmt, &n);
            size_t w = display_width(s, n);
            if (w > width[c - 1]) width[c - 1] = w;
            lua_rawseti(L, -2, c);
        }
        lua_rawseti(L, cells, r + 1);
        if (r > 0) lua_pop(L, 1);
    }
    if (title) lqb_print(L, title);
    for (lua_Integer r = 0; r <= nr; r++) {
        lqb_sbuf *b = lqb_sbuf_new(L);
        lua_rawgeti(L, cells, r + 1);
        for (lua_Integer c = 1; c <= nc; c++) {
            lua_rawgeti(L, -1, c);
            size_t n;
            const char *s = lua_tolstring(L, -1, &n);
            size_t pad = width[c - 1] - display_width(s, n);
            if (c > 1) lqb_sbuf_adds(L, b, "  ");
            bool right = !left[c - 1] && r > 0;
            for (size_t k = 0; right && k < pad; k++) lqb_sbuf_add(L, b, " ", 1);
            lqb_sbuf_add(L, b, s, n);
            for (size_t k = 0; !right && c < nc && k < pad; k++) lqb_sbuf_add(L, b, " ", 1);
            lua_pop(L, 1);
        }
        lqb_print(L, b->p ? b->p : "");
        if (r == 0) {
            b->n = 0;
            for (lua_Integer c = 1; c <= nc; c++) {
                if (c > 1) lqb_sbuf_adds(L, b, "  ");
                for (size_t k = 0; k < width[c - 1]; k++) lqb_sbuf_add(L, b, "-", 1);
            }
            lqb_print(L, b->p ? b->p : "");
        }
        lua_pop(L, 2);
    }
    return 0;
}

void lqb_open_io(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"write_csv", l_write_csv}, {"write_json", l_write_json}, {"to_json", l_to_json},
        {"print_table", l_print_table}, {NULL, NULL},
    };
    luaL_setfuncs(L, fns, 0);
}
