/* cmd_run.c — `quantbench run RECIPE.lua [ARGS...]`: the headless recipe runner. Runs a Lua
 * recipe in a sandboxed state (or a trusted one), with a progress bar on stderr for long core
 * calls, Ctrl-C raising "cancelled" inside the recipe, and errors printed as
 * "file:line: message" plus a traceback (exit status 1; 130 when cancelled). */
#include "cli.h"
#include "lua/lqb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    fputs("usage: quantbench run [OPTIONS] RECIPE.lua [ARGS...]\n"
          "       quantbench run [OPTIONS] -e CODE [ARGS...]\n"
          "Runs a Lua recipe (examples/ has some); ARGS become the recipe's `arg` table and `...`.\n"
          "  --out DIR          folder the recipe may write into (default: the current folder)\n"
          "  --no-out           no file output at all\n"
          "  --trusted          open every Lua library (io, os, package…) and allow any path\n"
          "  --max-seconds N    stop the recipe after N seconds of wall time\n"
          "  --mem-limit MIB    memory the Lua side may hold (default 1024)\n"
          "  -t, --threads N    core threads\n",
          stderr);
}

typedef struct {
    cli_progress bar;
    const char *label;
    bool active;
} run_progress;

static void on_progress(void *ud, const char *label, int done, int total)
{
    run_progress *p = ud;
    if (!p->active || p->label != label) {
        if (p->active) cli_progress_end(&p->bar);
        cli_progress_start(&p->bar, label);
        p->label = label;
        p->active = true;
    }
    cli_progress_cb(&p->bar, done, total);
    if (done >= total) {
        cli_progress_end(&p->bar);
        p->active = false;
    }
}

int cmd_run(int argc, char **argv)
{
    const char *out = ".", *code = NULL, *recipe = NULL;
    bool trusted = false;
    double max_seconds = 0;
    long mem_mib = 1024, threads = 0;
    int i = 0;
    for (; i < argc && !recipe && !code; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (!strcmp(o, "--out")) ok = v != NULL, out = v, i++;
        else if (!strcmp(o, "--no-out")) out = NULL;
        else if (!strcmp(o, "--trusted")) trusted = true;
        else if (!strcmp(o, "--max-seconds")) ok = cli_float(o, v, 0.001, 1e9, &max_seconds), i++;
        else if (!strcmp(o, "--mem-limit")) ok = cli_int(o, v, 1, 1 << 20, &mem_mib), i++;
        else if (!strcmp(o, "-t") || !strcmp(o, "--threads")) ok = cli_int(o, v, 1, 1024, &threads), i++;
        else if (!strcmp(o, "-e")) ok = v != NULL, code = v, i++;
        else if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage();
            return 0;
        } else if (o[0] == '-' && o[1]) {
            return cli_error("run: unknown option '%s' (quantbench run --help lists them)", o);
        } else recipe = o;
        if (!ok) return v ? 1 : cli_error("run: %s needs a value", o);
    }
    if (!recipe && !code) {
        cli_error("run: no recipe given");
        usage();
        return 1;
    }
    run_progress prog = {0};
    qb_lua_opts lo = {
        .trusted = trusted,
        .write_dir = out,
        .mem_limit = (size_t)mem_mib << 20,
        .cancel = &cli_cancel,
        .max_seconds = max_seconds,
        .n_threads = (int)threads,
        .progress = on_progress,
        .progress_ud = &prog,
    };
    cli_install_sigint();
    lua_State *L = qb_lua_new(&lo);
    if (!L) return cli_error("run: cannot create the Lua state (out of memory)");
    static char err[8192];
    int st = recipe ? qb_lua_exec_file(L, recipe, argc - i, argv + i, err, sizeof err)
                    : qb_lua_exec(L, code, "=(command line)", err, sizeof err);
    if (prog.active) cli_progress_end(&prog.bar);
    qb_lua_close(L);
    fflush(stdout);
    if (st != 0) {
        fprintf(stderr, "%s\n", err);
        return cli_cancel ? 130 : 1;
    }
    return 0;
}
