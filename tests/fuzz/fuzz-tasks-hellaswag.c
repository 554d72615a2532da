/* fuzz-tasks-hellaswag.c — libFuzzer target for llama-perplexity's HellaSwag text (six lines per task) task file reader
 * (qb_tasks_parse) and the random selection over what it accepts (fuzz_tasks.h). Built and run by
 * scripts/fuzz.sh, dictionary tasks-hellaswag.dict. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_tasks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fuzz_tasks_one(QB_TASKS_HELLASWAG, data, size); }
