/* commands.c — built-in `:` commands and the hand-off to Lua (commands.h). */
#include "tui/controllers/commands.h"
#include "tui/controllers/trainjob.h"
#include "tui/controllers/methods.h"
#include "tui/controllers/planjob.h"
#include "tui/controllers/plotfile.h"
#include "tui/controllers/script.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const tui_command_doc docs[] = {
    {"open PATH", "open another model (GGUF, llama2.c .bin, HF directory); on error the current one stays"},
    {"w PATH", "save the plan (text rules)"},
    {"load PATH", "load a plan and apply it"},
    {"export PATH.gguf", "write the model at the plan as GGUF (job; temp file + rename)"},
    {"calib FILE [SAMPLES] [CTX]", "calibrate on a text (job; XᵀX kept for GPTQ/AWQ analyses and applies)"},
    {"finetune [heal] FILE [STEPS] [LR]", "QAT with distillation of the applied plan (heal: norms only) against the full-precision model; live loss curve (job)"},
    {"imatrix FILE | off", "importance matrix (.dat / GGUF) weighting applies of ggml types, as llama-quantize --imatrix"},
    {"act smoothquant [A] | int8 [T] | off", "W8A8 SmoothQuant (needs :calib) / LLM.int8 on every block matrix (job)"},
    {"gen [PROMPT]", "generate with the base and the plan side by side"},
    {"ppl [CHUNKS] [FILE]", "perplexity and KLD of the plan against the base (job)"},
    {"select NAME", "select a tensor (blk.3.ffn_down or a full name)"},
    {"set FORMAT", "use a storage format directly (int4-g64-asym, q4_k, nf4, fp8-e4m3, mxfp4 ...)"},
    {"method NAME / bits N / group G", "change the choice (group: tensor, channel, 32, 64, 128)"},
    {"apply tensor|kind|layer|model", "apply the choice to that scope"},
    {"undo / redo", "step through plan changes"},
    {"plot PATH.svg|.png|.pdf", "export the three plots of the selection for slides"},
    {"present", "presentation mode on/off"},
    {"run FILE", "run a Lua recipe on the script thread (Ctrl-C stops it)"},
    {"help / q", "keys and commands / quit"},
    {"LUA", "anything else runs as Lua with the qb module bound to this session"},
};

const tui_command_doc *tui_commands(int *count)
{
    *count = (int)(sizeof docs / sizeof docs[0]);
    return docs;
}

void tui_search(tui_session *s, const char *text)
{
    snprintf(s->search, sizeof s->search, "%s", text);
    if (!*text) return;
    if (!tui_select_name(s, text, true)) tui_status(s, true, "no tensor matches '%s'", text);
    else tui_status(s, false, "/%s: %s", text, tui_sel(s)->name);
}

static int parse_group(const char *v, bool *ok)
{
    *ok = true;
    if (!strcmp(v, "tensor")) return QB_GROUP_TENSOR;
    if (!strcmp(v, "channel")) return QB_GROUP_CHANNEL;
    char *end;
    long g = strtol(v, &end, 10);
    if (*end || g <= 0) *ok = false;
    return (int)g;
}

void tui_command_run(tui_session *s, const char *line)
{
    while (isspace((unsigned char)*line)) line++;
    char cmd[32] = "";
    size_t n = 0;
    while (line[n] && !isspace((unsigned char)line[n]) && n < sizeof cmd - 1) cmd[n] = line[n], n++;
    cmd[n] = 0;
    const char *arg = line + n;
    while (isspace((unsigned char)*arg)) arg++;
    char a[1024];
    snprintf(a, sizeof a, "%s", arg);
    for (size_t k = strlen(a); k > 0 && isspace((unsigned char)a[k - 1]);) a[--k] = 0;

    if (!*cmd) return;
    if (!strcmp(cmd, "q") || !strcmp(cmd, "quit") || !strcmp(cmd, "q!")) s->quit = true;
    else if (!strcmp(cmd, "help") || !strcmp(cmd, "h")) s->help = true;
    else if (!strcmp(cmd, "open") || !strcmp(cmd, "e")) {
        if (!*a) tui_status(s, true, "open: which file? (:open PATH)");
        else tui_session_open(s, a);
    } else if (!strcmp(cmd, "w")) {
        if (!*a) tui_status(s, true, "w: which file? (:w plan.txt)");
        else tui_plan_save(s, a);
    } else if (!strcmp(cmd, "load") || !strcmp(cmd, "r")) {
        if (!*a) tui_status(s, true, "load: which file? (:load plan.txt)");
        else tui_plan_load(s, a);
    } else if (!strcmp(cmd, "export")) {
        if (!*a) tui_status(s, true, "export: which file? (:export out.gguf)");
        else tui_export(s, a);
    } else if (!strcmp(cmd, "calib")) {
        char path[1024] = "";
        int samples = 0, ctx = 0;
        if (sscanf(a, "%1023s %d %d", path, &samples, &ctx) < 1)
            tui_status(s, true, "calib: which text? (:calib FILE [SAMPLES] [CTX])");
        else tui_calibrate(s, path, samples, ctx);
    } else if (!strcmp(cmd, "imatrix")) tui_imatrix(s, a);
    else if (!strcmp(cmd, "act")) tui_act(s, a);
    else if (!strcmp(cmd, "finetune")) tui_finetune(s, a);
    else if (!strcmp(cmd, "gen")) tui_generate(s, a);
    else if (!strcmp(cmd, "ppl")) {
        char *end;
        long k = strtol(a, &end, 10);
        while (isspace((unsigned char)*end)) end++;
        if (*end) snprintf(s->eval_text, sizeof s->eval_text, "%s", end);
        tui_perplexity(s, k > 0 ? (int)k : 0);
    } else if (!strcmp(cmd, "tasks")) tui_set_tasks(s, a);
    else if (!strcmp(cmd, "select")) {
        if (!tui_select_name(s, a, true)) tui_status(s, true, "select: no tensor '%s'", a);
    } else if (!strcmp(cmd, "set")) tui_set_choice(s, NULL, 0, 0, false, a);
    else if (!strcmp(cmd, "method")) tui_set_choice(s, a, 0, 0, false, NULL);
    else if (!strcmp(cmd, "bits")) {
        int b = atoi(a);
        if (b < 2 || b > 8) tui_status(s, true, "bits: want 2..8, got '%s'", a);
        else tui_set_choice(s, NULL, b, 0, false, NULL);
    } else if (!strcmp(cmd, "group")) {
        bool ok;
        int g = parse_group(a, &ok);
        if (!ok) tui_status(s, true, "group: want tensor, channel or a size, got '%s'", a);
        else tui_set_choice(s, NULL, 0, g, true, NULL);
    } else if (!strcmp(cmd, "apply")) {
        char sc = !strcmp(a, "tensor") ? 't' : !strcmp(a, "kind") ? 'k' : !strcmp(a, "layer") ? 'l'
                : !strcmp(a, "model") ? 'm' : 0;
        if (!sc) tui_status(s, true, "apply: want tensor, kind, layer or model, got '%s'", a);
        else tui_apply(s, sc);
    } else if (!strcmp(cmd, "undo")) tui_undo(s);
    else if (!strcmp(cmd, "redo")) tui_redo(s);
    else if (!strcmp(cmd, "plot")) {
        if (!*a) tui_status(s, true, "plot: which file? (:plot plots.svg)");
        else tui_plot_export(s, a);
    } else if (!strcmp(cmd, "present")) s->present = !s->present;
    else if (!strcmp(cmd, "run")) {
        if (!*a) tui_status(s, true, "run: which recipe? (:run recipe.lua)");
        else tui_script_run_file(s, a);
    }
    else tui_script_run(s, line);
}
