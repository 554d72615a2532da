/* search.h — mixed precision under a size budget: choose a storage format per weight matrix so
 * that the model's KL divergence from the unquantized model is as small as possible while its
 * matrices take at most a given number of bits per weight.
 *
 * 1. Scan: every matrix × every candidate format, alone, on the search text (sensitivity.h);
 *    or, given a Fisher diagonal (fisher.h), each one's KLD estimated as ½ Σ F·ΔW² instead:
 *    no forward pass at all.
 * 2. Greedy: start from the cheapest candidate everywhere and keep taking the upgrade with the
 *    largest KLD reduction per added byte that still fits (a multiple-choice knapsack, KLDs
 *    of different matrices taken as additive).
 * 3. Refine: measure the whole mix for real, then the few swaps (one matrix up a step, another
 *    down) the scan predicts best that fit the budget, and keep a swap when the measured KLD
 *    improves; a few rounds.
 * bpw counts every quantizable matrix (token_embd and output too) as qb_quant_size_compute
 * does. The result is a qb_plan with one rule per matrix (its exact name). */
#ifndef QB_SEARCH_H
#define QB_SEARCH_H

#include "../model/model.h"
#include "../quant/plan.h"

typedef struct {
    double bpw;                   /* the budget, bits per weight over all quantizable matrices */
    const qb_format *candidates;  /* NULL: q2_k q3_k q4_k q5_k q6_k q8_0 */
    int n_candidates;
    int n_ctx;                    /* chunk length of the search evaluations (0 = 256) */
    int n_tokens;                 /* search tokens (0 = 4096) */
    int rounds;                   /* refinement rounds (0 = 2; -1 = none: the greedy mix measured
                                     only); with fisher, 0 = none and nothing measured (the kld
                                     fields are NAN) */
    const struct qb_fisher *fisher; /* NULL: scan; else the costs from this Fisher diagonal of m */
    int swaps;                    /* swaps measured per round (0 = 6) */
    /* progress (may be NULL), on the calling thread: done / total variant-chunks of the current
     * stage; it starts again from 0 for the scan and for each refinement round */
    void (*progress)(void *ud, int done, int total);
    void *ud;
    const volatile int *cancel;   /* may be NULL */
    void (*divided)(void *ud, int n); /* MPI ranks: each stage's division (qb_scan_opts) */
} qb_search_opts;

typedef struct {
    qb_plan plan;           /* one rule per matrix; owned, free with qb_search_result_free */
    double bpw;             /* of the chosen mix (≤ the budget) */
    size_t bytes;           /* the quantizable matrices in the chosen mix */
    double budget_bpw;
    double kld_predicted;   /* sum of the scanned (or estimated) single-matrix KLDs of the mix */
    double kld_greedy;      /* measured KLD of the greedy mix on the search text */
    double kld;             /* measured KLD of the returned mix on the search text */
    int n_swaps;            /* swaps the refinement kept */
    int n_variants;         /* model variants evaluated in all */
    double cost_scan;       /* mean work per variant of the options' scan, as a fraction of one full
                               forward pass (qb_kld_result.cost) */
    double cost_rounds;     /* the same for the measured rounds (each round's mix, which its swaps
                               resume from, included) */
    double seconds;
} qb_search_result;

/* Search a mix for m on tokens (the calibration / search text; evaluate the result on other
 * text). Errors: no candidate (QB_ERR_ARG), a budget below the cheapest mix of the candidates
 * (QB_ERR_ARG, saying that mix's bpw), a candidate no matrix can store, a text too short,
 * QB_ERR_CANCELLED. m is not modified. */
qb_status qb_search_mixed(qb_ctx *ctx, const qb_model *m, const int32_t *tokens, int n_tokens,
                          const qb_search_opts *opts, qb_search_result *out);
void qb_search_result_free(qb_search_result *r);

/* The candidates when none are given (q2_k q3_k q4_k q5_k q6_k q8_0) into out; their count. */
#define QB_SEARCH_MAX_DEFAULTS 8
int qb_search_default_candidates(qb_format out[QB_SEARCH_MAX_DEFAULTS]);
/* Parse a comma-separated candidate list ("q3_k,q4_k,q6_k") into a malloc'd array (caller
 * frees). Errors name the bad entry. */
qb_status qb_search_parse_candidates(qb_ctx *ctx, const char *list, qb_format **out, int *n);

/* Bits per weight over m's quantizable matrices if each had the format plan gives it (the
 * current format where the plan says nothing), after llama-quantize's fallbacks. */
double qb_plan_bpw(const qb_model *m, const qb_plan *plan);

#endif
