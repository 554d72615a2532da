/* main.c — the quantbench command: picks the subcommand (the TUI when none is given). */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("usage: quantbench [MODEL]                      open the workbench (a built-in demo without MODEL)\n"
          "       quantbench info MODEL                   hyperparameters, tokenizer, tensor table\n"
          "       quantbench generate MODEL -p TEXT [-n N] [--temp T] [--top-p P] [--top-k K] [--seed S]\n"
          "       quantbench ppl MODEL TEXTFILE [--ctx N] [--chunks N]\n"
          "       quantbench kld BASE_MODEL OTHER_MODEL TEXTFILE [--ctx N] [--chunks N]\n"
          "       quantbench kld --save-base FILE BASE_MODEL TEXTFILE [--ctx N] [--chunks N]   (llama-perplexity's --kl-divergence-base file)\n"
          "       quantbench kld --base FILE MODEL TEXTFILE [--chunks N]   (MODEL against the file, llama-perplexity's statistics)\n"
          "       quantbench bench MODEL [-p N] [-n N] [-t THREADS] [-r REPS]\n"
          "       quantbench quantize IN.gguf OUT.gguf TYPE [--pure] [--plan FILE]   (TYPE as llama-quantize: Q4_K_M, Q8_0, ...)\n"
          "       quantbench run [--out DIR] [--trusted] [--max-seconds N] RECIPE.lua [ARGS...]   (Lua recipes)\n"
          "       quantbench methods MODEL --calib FILE --eval FILE [--formats LIST] [--methods rtn,gptq,awq]\n"
          "       quantbench scan MODEL EVAL.txt [--format q4_k] [--per layer|tensor] [--layers N|A-B] [--tokens N] [--csv F] [--json F]\n"
          "       quantbench search MODEL CALIB.txt --bpw B [--candidates q3_k,q4_k,q6_k] [--plan-out F] [--out F.gguf]\n"
          "       quantbench prune MODEL TEXT SPARSITY|N:M [--formats keep,q8_0,q4_k] [--tokens N]\n"
          "       quantbench imatrix MODEL TEXT -o FILE [--ctx N] [--chunks N] [--process-output]   (llama-imatrix's .dat, or GGUF for *.gguf)\n"
          "       quantbench imatrix --in FILE [MODEL] [-o FILE] [--entries]   (read, check against MODEL, convert)\n"
          "       quantbench stats MODEL FORMAT [--tensor GLOB] [--imatrix FILE] [--plain-quant]   (error statistics per tensor;\n"
          "                importance-weighted beside them with --imatrix)\n"
          "       quantbench finetune MODEL (TYPE | --plan FILE | --heal --teacher F16_MODEL) --text FILE --out OUT.gguf\n"
          "                [--steps N] [--batch N] [--seq N] [--lr X] [--kd W] [--ce W] [--checkpoint FILE] [--resume FILE] [--eval FILE]\n"
          "                (quantization-aware fine-tuning with distillation; --heal: norms and biases only)\n"
          "       quantbench shrink MODEL TEXT [--heads F] [--ffn F] [--layers N] [--out OUT.gguf] [--eval FILE]\n"
          "                (structured pruning: shares F of every block's heads / FFN neurons and N whole blocks removed,\n"
          "                chosen by importance measured on TEXT; the shapes shrink; distil with finetune --teacher)\n"
          "       quantbench tasks MODEL --hellaswag FILE | --winogrande FILE | --multiple-choice FILE [--tasks N] [--ctx N]\n"
          "                [--plan FILE] [--per-task] [--json FILE|-]   (llama-perplexity's task accuracy)\n"
          "MODEL: a llama2.c checkpoint (with tokenizer.bin beside it or --tokenizer FILE), a GGUF file,\n"
          "       or a Hugging Face directory (config.json + safetensors + tokenizer.json).\n"
          "Options for every command: -t/--threads N, --tokenizer FILE (llama2.c).\n",
          f);
}

/* The subcommand argv names (the TUI when none). */
static int dispatch(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help"))) {
        usage(stdout);
        return 0;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        {"info", cmd_info}, {"generate", cmd_generate}, {"ppl", cmd_ppl}, {"kld", cmd_kld},
        {"bench", cmd_bench}, {"quantize", cmd_quantize}, {"tui", cmd_tui},
        {"run", cmd_run},
        {"methods", cmd_methods},
        {"scan", cmd_scan}, {"search", cmd_search}, {"prune", cmd_prune},
        {"imatrix", cmd_imatrix}, {"tasks", cmd_tasks}, {"stats", cmd_stats},
        {"finetune", cmd_finetune}, {"shrink", cmd_shrink},
    };
    if (argc >= 2)
        for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
            if (!strcmp(argv[1], cmds[i].name))
                return cli_dist_allows(cmds[i].name) ? cmds[i].fn(argc - 2, argv + 2) : 1;
    if (argc >= 2 && argv[1][0] == '-') {
        usage(stderr);
        return cli_error("unknown option '%s'", argv[1]);
    }
    /* quantbench [MODEL]: the workbench */
    return cli_dist_allows("tui") ? cmd_tui(argc - 1, argv + 1) : 1;
}

/* In an MPI build started by mpirun / srun the ranks start first and end together (cli.h). */
int main(int argc, char **argv)
{
    if (!cli_dist_start(&argc, &argv)) return 1;
    return cli_dist_end(dispatch(argc, argv));
}
