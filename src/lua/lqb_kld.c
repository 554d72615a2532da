/* lqb_kld.c — KL-divergence base files (llama-perplexity's --kl-divergence-base) in Lua:
 * qb.kld_base_save(model, text, path [, {ctx=, chunks=, progress=}]) writes the model's
 * log-probabilities into one (inside the output folder), and model:kld(path, text [, {chunks=,
 * progress=}]) compares a model with one, giving llama-perplexity's statistics. */
#include "lqb_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/eval/kld_base.h"

/* How messages name the text argument: its path, or "the text" when it is the text itself. */
static const char *text_name(const char *s, size_t len)
{
    return len < 4096 && !memchr(s, '\n', len) && access(s, R_OK) == 0 ? s : "the text";
}

/* model:kld(base_file, text_or_path [, {ctx=, chunks=, progress=}]) → {ppl, ppl_err, ppl_base,
 * ppl_base_err, cor, ln_ratio(_err), ratio(_err), dppl(_err), kld, kld_err, kld_<quantile>,
 * dp, dp_err, dp_rms(_err), dp_<quantile>, top1, top1_err, chunks, ctx, tokens, seconds} */
int lqb_kld_with_base(lua_State *L)
{
    qb_model *m = lqb_check_model(L, 1);
    const char *path = luaL_checkstring(L, 2);
    size_t len;
    const char *text = luaL_checklstring(L, 3, &len);
    int o = lqb_opt_table(L, 4);
    int n_ctx = (int)lqb_opt_int(L, o, "ctx", 0), chunks = (int)lqb_opt_int(L, o, "chunks", 0);
    if (n_ctx < 0 || chunks < 0) return luaL_error(L, "bad option 'ctx'/'chunks' to 'kld' (must be >= 0)");
    lqb_progress pr;
    lqb_progress_begin(L, &pr, "kld", o);
    int n = 0;
    int32_t *toks = lqb_eval_tokens(L, m, 3, &n);
    qb_ctx *ctx = &lqb_host_of(L)->ctx;
    qb_kld_base *b = NULL;
    qb_kld_stats r;
    qb_status st = qb_kld_base_open(ctx, path, &b);
    if (st == QB_OK) st = qb_kld_base_check(ctx, b, m, toks, n, text_name(text, len));
    free(toks);
    if (st == QB_OK) {
        qb_eval_opts eo = {n_ctx, chunks, lqb_progress_cb, &pr, lqb_cancel_ptr(L), lqb_model_run(L, 1, false), NULL, NULL};
        st = qb_eval_kld_base(ctx, b, m, &eo, &r);
    }
    qb_kld_base_close(b);
    lqb_progress_end(L, &pr, st);
    lua_createtable(L, 0, 48);
    lqb_set_num(L, "ppl", r.ppl);
    lqb_set_num(L, "ppl_err", r.ppl_err);
    lqb_set_num(L, "ppl_base", r.ppl_base);
    lqb_set_num(L, "ppl_base_err", r.ppl_base_err);
    lqb_set_num(L, "cor", r.cor);
    lqb_set_num(L, "ln_ratio", r.ln_ratio);
    lqb_set_num(L, "ln_ratio_err", r.ln_ratio_err);
    lqb_set_num(L, "ratio", r.ratio);
    lqb_set_num(L, "ratio_err", r.ratio_err);
    lqb_set_num(L, "dppl", r.diff);
    lqb_set_num(L, "dppl_err", r.diff_err);
    lqb_set_num(L, "kld", r.kld);
    lqb_set_num(L, "kld_err", r.kld_err);
    lqb_set_num(L, "dp", r.dp);
    lqb_set_num(L, "dp_err", r.dp_err);
    lqb_set_num(L, "dp_rms", r.dp_rms);
    lqb_set_num(L, "dp_rms_err", r.dp_rms_err);
    lqb_set_num(L, "top1", 100.0 * r.same_top);
    lqb_set_num(L, "top1_err", 100.0 * r.same_top_err);
    for (int k = 0; k < QB_KLD_NQ; k++) {
        char key[32];
        snprintf(key, sizeof key, "kld_%s", qb_kld_quantiles[k].key);
        lqb_set_num(L, key, r.kld_q[k]);
        snprintf(key, sizeof key, "dp_%s", qb_kld_quantiles[k].key);
        lqb_set_num(L, key, r.dp_q[k]);
    }
    lqb_set_int(L, "chunks", r.n_chunks);
    lqb_set_int(L, "ctx", r.n_ctx);
    lqb_set_int(L, "tokens", r.n_scored);
    lqb_set_num(L, "seconds", r.seconds);
    return 1;
}

/* qb.kld_base_save(model, text_or_path, path [, {ctx=, chunks=, progress=}]) → the model's
 * perplexity {ppl, ppl_err, nll, chunks, ctx, tokens, seconds} */
static int l_kld_base_save(lua_State *L)
{
    qb_model *m = lqb_check_model(L, 1);
    luaL_checkstring(L, 2);
    const char *path = luaL_checkstring(L, 3);
    int o = lqb_opt_table(L, 4);
    int n_ctx = (int)lqb_opt_int(L, o, "ctx", 0), chunks = (int)lqb_opt_int(L, o, "chunks", 0);
    if (n_ctx < 0 || chunks < 0) return luaL_error(L, "bad option 'ctx'/'chunks' to 'kld_base_save' (must be >= 0)");
    char *full = lqb_output_path(L, path);
    lqb_progress pr;
    lqb_progress_begin(L, &pr, "kld base", o);
    int n = 0;
    int32_t *toks = lqb_eval_tokens(L, m, 2, &n);
    qb_eval_opts eo = {n_ctx, chunks, lqb_progress_cb, &pr, lqb_cancel_ptr(L), lqb_model_run(L, 1, false), NULL, NULL};
    qb_ppl_result r;
    qb_status st = qb_kld_base_save(&lqb_host_of(L)->ctx, m, toks, n, &eo, full, &r);
    free(toks);
    free(full);
    lqb_progress_end(L, &pr, st);
    lqb_push_ppl(L, &r);
    return 1;
}

void lqb_open_kld(lua_State *L)
{
    lua_pushcfunction(L, l_kld_base_save);
    lua_setfield(L, -2, "kld_base_save");
}
