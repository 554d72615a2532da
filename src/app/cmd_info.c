/* cmd_info.c — `quantbench info MODEL [--sha256]`: hyperparameters, tokenizer kind, the recipe
 * a quantbench GGUF records (plan with methods, calibration text, version) and the tensor
 * table (with each tensor's SHA-256 when asked: replays compare by it). */
#include "cli.h"
#include "core/tokenizer/tokenizer.h"
#include "core/util/gguf.h"
#include "core/quant/recipe.h"
#include "core/util/sha256.h"

#include <stdio.h>
#include <string.h>

static void human_bytes(double b, char *out, size_t cap)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024 && i < 4) {
        b /= 1024;
        i++;
    }
    snprintf(out, cap, i ? "%.2f %s" : "%.0f %s", b, u[i]);
}

/* What quantbench recorded when it wrote the file (recipe.h). */
static void print_recipe(const qb_gguf *g)
{
    const char *plan = qb_gguf_get_str(g, "quantbench.plan");
    const char *conv = qb_gguf_get_str(g, "quantbench.export.conversions");
    qb_recipe_info ri;
    qb_plan p;
    qb_ctx scratch;
    qb_ctx_init(&scratch);
    bool have = qb_recipe_get(&scratch, g, "", &p, &ri) == QB_OK || ri.version[0];
    qb_plan_free(&p);
    if (have) printf("quantbench   version %s%s\n", ri.version[0] ? ri.version : "?", plan ? "" : " (no plan recorded)");
    if (ri.type[0]) printf("quantbench   type %s%s\n", ri.type, ri.pure ? " (pure)" : "");
    if (plan) printf("quantbench   plan:\n%s%s", plan, plan[0] && plan[strlen(plan) - 1] != '\n' ? "\n" : "");
    if (ri.calib_file[0])
        printf("quantbench   calibration %s: %llu bytes, sha256 %s, %d windows x %d tokens\n", ri.calib_file,
               (unsigned long long)ri.calib_bytes, ri.calib_sha256, ri.calib_windows, ri.calib_ctx);
    if (ri.imatrix_file[0])
        printf("quantbench   importance matrix %s: %llu bytes, sha256 %s\n", ri.imatrix_file,
               (unsigned long long)ri.imatrix_bytes, ri.imatrix_sha256);
    if (conv) printf("quantbench   written as ggml types on export:\n%s", conv);
}

int cmd_info(int argc, char **argv)
{
    const char *path = NULL, *tok = NULL;
    bool hashes = false;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) tok = argv[++i];
        else if (!strcmp(argv[i], "--sha256")) hashes = true;
        else if (argv[i][0] == '-') return cli_error("info: unknown option '%s'", argv[i]);
        else if (!path) path = argv[i];
        else return cli_error("info: unexpected argument '%s'", argv[i]);
    }
    if (!path) return cli_error("info: usage: quantbench info MODEL [--tokenizer FILE] [--sha256]");
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = cli_open_model(&ctx, path, tok, false);
    if (!m) return 1;
    const qb_config *c = &m->cfg;
    char sz[32];
    human_bytes((double)qb_model_bytes(m), sz, sizeof sz);
    printf("model        %s\n", m->path);
    const qb_gguf *g = m->gguf;
    char parts[48] = "";
    if (g && g->n_parts > 1) snprintf(parts, sizeof parts, " (split in %d files)", g->n_parts);
    printf("format       %s%s%s%s\n", qb_file_kind_name(m->kind), parts, m->name[0] ? "  name: " : "", m->name);
    printf("architecture %s\n", m->arch);
    printf("parameters   %lld (%.1fM)\n", (long long)qb_model_params(m), qb_model_params(m) / 1e6);
    printf("size         %s in memory as loaded\n", sz);
    printf("dim %d  ffn %d  layers %d  heads %d  kv_heads %d  head_dim %d  vocab %d  context %d\n", c->dim,
           c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->vocab_size, c->seq_len);
    printf("rope theta %g (%s pairs)  rms eps %g  output %s\n", c->rope_theta,
           c->rope_layout == QB_ROPE_HALF ? "rotate-half" : "interleaved", c->norm_eps,
           c->tied_output ? "tied to token_embd" : "untied");
    char desc[512];
    qb_config_describe(c, desc, sizeof desc);
    printf("block        %s\n", desc);
    if (m->tok)
        printf("tokenizer    %s  bos %d  eos %d%s\n", qb_tokenizer_describe(m->tok), qb_tokenizer_bos(m->tok),
               qb_tokenizer_eos(m->tok), qb_tokenizer_add_bos(m->tok) ? "  (adds BOS)" : "");
    if (m->gguf) print_recipe(m->gguf);
    printf("\n%-32s %-18s %-6s %-6s %12s%s\n", "tensor", "shape", "file", "now", "bytes", hashes ? "  sha256" : "");
    for (int i = 0; i < m->n_tensors; i++) {
        const qb_tensor *t = &m->tensors[i];
        char shape[40];
        if (t->n_dims <= 1) snprintf(shape, sizeof shape, "%lld", (long long)t->ne[0]);
        else snprintf(shape, sizeof shape, "%lld x %lld", (long long)t->ne[1], (long long)t->ne[0]);
        const qb_type_info *a = qb_type_get(t->src_type), *b = qb_type_get(t->type);
        char hex[65] = "";
        if (hashes) qb_sha256_hex(t->data, t->nbytes, hex);
        printf("%-32s %-18s %-6s %-6s %12zu%s%s\n", t->name, shape, a ? a->name : "?", b ? b->name : "?", t->nbytes,
               hashes ? "  " : "", hex);
    }
    qb_model_close(m);
    return 0;
}
