/* cmd_generate.c — `quantbench generate MODEL -p TEXT`: stream a continuation to stdout and
 * report prompt / generation tokens per second on stderr. Ctrl-C stops generation. The
 * prompt goes through core's pipeline (qb_generate_text): BOS as the tokenizer says, the
 * same tokens the TUI and Lua feed for the same text. */
#include "cli.h"
#include "cli_act.h"
#include "core/infer/generate.h"
#include "core/tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const qb_model *m;
} stream_state;

static bool print_token(void *ud, int32_t prev, int32_t id)
{
    stream_state *s = ud;
    char buf[256];
    size_t n = qb_token_to_bytes(s->m->tok, prev, id, buf, sizeof buf);
    fwrite(buf, 1, n < sizeof buf ? n : sizeof buf, stdout);
    fflush(stdout);
    return true;
}

int cmd_generate(int argc, char **argv)
{
    const char *path = NULL, *tok = NULL, *prompt = NULL;
    long n = 64, threads = 0, top_k = 0, seed = 1;
    double temp = 0, top_p = 1;
    bool echo = true, no_mmap = false;
    cli_act act;
    cli_act_init(&act);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        int r = cli_act_option(&act, "generate", argc, argv, &i);
        if (r) {
            if (r < 0) return 1;
            continue;
        }
        if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) prompt = v, i++, ok = v != NULL;
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) ok = cli_int(a, v, 0, 1 << 20, &n), i++;
        else if (!strcmp(a, "--temp")) ok = cli_float(a, v, 0, 100, &temp), i++;
        else if (!strcmp(a, "--top-p")) ok = cli_float(a, v, 1e-6, 1, &top_p), i++;
        else if (!strcmp(a, "--top-k")) ok = cli_int(a, v, 0, 1 << 24, &top_k), i++;
        else if (!strcmp(a, "--seed")) ok = cli_int(a, v, 0, 0x7fffffffL, &seed), i++;
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) ok = cli_int(a, v, 1, 1024, &threads), i++;
        else if (!strcmp(a, "--tokenizer")) tok = v, i++, ok = v != NULL;
        else if (!strcmp(a, "--no-echo")) echo = false;
        else if (!strcmp(a, "--no-mmap")) no_mmap = true;
        else if (a[0] == '-') return cli_error("generate: unknown option '%s'", a);
        else if (!path) path = a;
        else return cli_error("generate: unexpected argument '%s'", a);
        if (!ok) return v ? 1 : cli_error("generate: %s needs a value", a);
    }
    if (!path) return cli_error("generate: usage: quantbench generate MODEL -p TEXT [-n N] [--temp T] [--top-p P] [--seed S] [--no-mmap]");
    if (!prompt) prompt = "";
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    if (threads) ctx.n_threads = (int)threads;
    qb_model *m = cli_open_model(&ctx, path, tok, no_mmap);
    if (!m) return 1;
    int rc = 1;
    if (!cli_act_apply(&ctx, m, &act)) {
        qb_model_close(m);
        return 1;
    }
    stream_state ss = {m};
    qb_generate_opts o;
    qb_generate_defaults(&o);
    o.n_predict = (int)n;
    o.sampling = (qb_sampler_params){(float)temp, (int)top_k, (float)top_p, (uint64_t)seed};
    o.on_token = print_token;
    o.ud = &ss;
    o.cancel = &cli_cancel;
    o.run = act.run;
    cli_install_sigint();
    if (echo) { /* the prompt as typed; the continuation streams after it */
        fputs(prompt, stdout);
        fflush(stdout);
    }
    qb_generate_result r;
    qb_status st = qb_generate_text(&ctx, m, prompt, strlen(prompt), &o, &r);
    fputc('\n', stdout);
    fflush(stdout);
    if (st != QB_OK && st != QB_ERR_CANCELLED) {
        cli_error("%s", qb_ctx_errmsg(&ctx));
    } else {
        fprintf(stderr, "prompt: %d tokens, %.1f t/s | generated: %d tokens, %.1f t/s%s\n", r.n_prompt,
                r.prompt_seconds > 0 ? r.n_prompt / r.prompt_seconds : 0, r.n_generated,
                r.gen_seconds > 0 ? r.n_generated / r.gen_seconds : 0,
                st == QB_ERR_CANCELLED ? " (cancelled)" : r.hit_eos ? " (end of text)" : "");
        rc = st == QB_OK ? 0 : 130;
    }
    qb_generate_result_free(&r);
    cli_act_free(&act);
    qb_model_close(m);
    return rc;
}
