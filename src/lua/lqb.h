/* lqb.h — the embedded Lua 5.4 interpreter with the `qb` module: what a host (the headless
 * runner `quantbench run`, the TUI's `:` command line) needs to create a sandboxed state, run
 * code in it with tracebacks, hand it a model it already has open, and receive its output.
 *
 * One lua_State belongs to one thread. The `qb` module binds only the core's public API; its
 * reference is the "Lua API" section of README.md. */
#ifndef QB_LQB_H
#define QB_LQB_H

#include <stdbool.h>
#include <stddef.h>

#include <lua.h>

#include "core/model/model.h"

typedef struct {
    bool trusted;               /* open all standard libraries (io, os, package…) */
    const char *write_dir;      /* sandboxed file output allowed only under this folder (NULL: none) */
    size_t mem_limit;           /* bytes the Lua allocator may hold (0 = default cap, 1 GiB) */
    const volatile int *cancel; /* when non-zero, the instruction hook raises a Lua error "cancelled" */
    /* Added after the first version (zero keeps the old behaviour): */
    double max_seconds;         /* wall-clock limit from qb_lua_new (0 = none): the hook raises
                                   "time limit of N s exceeded"; long core calls stop at their
                                   next progress report */
    int n_threads;              /* core threads (0 = QB_THREADS / OpenMP default) */
    /* Progress of long core calls (perplexity, KLD, apply…), from the Lua thread; may be NULL.
     * label is static text ("perplexity"); done == total marks the end. */
    void (*progress)(void *ud, const char *label, int done, int total);
    void *progress_ud;
    const char *lib_dir;        /* folder of the shipped pure-Lua helpers (lua/, holding the qb folder of .lua files)
                                   for require("qb.args"); NULL: beside the executable
                                   (../lua, ../share/quantbench/lua) or $QB_LUA_DIR */
} qb_lua_opts;

/* A state with the sandboxed libraries and `qb` loaded (global `qb` and package.loaded.qb).
 * o may be NULL (sandboxed, no file output, default memory cap). o's strings are copied.
 * NULL when out of memory. Close with qb_lua_close. */
lua_State *qb_lua_new(const qb_lua_opts *o);
/* Close the state: owned models are closed, borrowed ones are left to the host. NULL is fine. */
void qb_lua_close(lua_State *L);

/* Run code (a chunk, text only) under a message handler with traceback. 0 on success; otherwise
 * err gets "chunkname:line: message" (first line) followed by the traceback lines, truncated to
 * cap - 1 bytes, and the function returns non-zero. The stack is left as it was. */
int qb_lua_exec(lua_State *L, const char *code, const char *chunkname, char *err, size_t cap);
/* The same for a recipe file: messages name it as given ("examples/x.lua:12: …"); argv[0..argc)
 * become the global table `arg` (arg[0] = path) and the chunk's `...`. The file's folder is
 * searched first by the sandboxed require. */
int qb_lua_exec_file(lua_State *L, const char *path, int argc, char **argv, char *err, size_t cap);

/* Run one command line as an interactive console does: when code is an expression
 * ("1 + 1", "m:info()") its values are printed through the print route (tables as JSON);
 * otherwise it runs as a chunk. Errors as qb_lua_exec. */
int qb_lua_repl(lua_State *L, const char *code, const char *chunkname, char *err, size_t cap);

/* Push a model userdata. owned=false: borrowed from the host (the TUI), __gc/__close do not
 * close it, and the host must keep it open while the state may use it. */
void qb_lua_push_model(lua_State *L, qb_model *m, bool owned);

/* Route Lua's print (and qb.print_table, terminal plots) to fn (the TUI shows it in its
 * console): one call per line, without the newline. fn NULL restores stdout. */
void qb_lua_set_print(lua_State *L, void (*fn)(void *ud, const char *line), void *ud);

/* Bytes the Lua allocator holds now. */
size_t qb_lua_mem_used(lua_State *L);

#endif
