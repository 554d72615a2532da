/* testmodel.h — helpers for unit tests that run a real model: open one from the models folder
 * (failing the test, or skipping it with a message when the file is absent) and tokenize a
 * text file with the model's tokenizer. Include after testutil.h; link with libqb. */
#ifndef QB_TESTMODEL_H
#define QB_TESTMODEL_H

#include "testutil.h"
#include "core/model/model.h"
#include "core/eval/eval.h"

/* Open models/<rel> (or rel itself when it is an absolute path) with opts (NULL: defaults);
 * a failure fails the test. The caller frees
 * the model with qb_model_close. */
static inline qb_model *qbt_open_model(const char *rel, const qb_model_opts *opts)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = NULL;
    if (qb_model_open(&ctx, rel[0] == '/' ? rel : qbt_model_path(rel), opts, &m) != QB_OK)
        fail_msg("open %s: %s", rel, qb_ctx_errmsg(&ctx));
    return m;
}

/* Like qbt_open_model, but when models/<rel> does not exist the test stops as skipped (failed
 * when CI=true: qbt_need). Never returns NULL. */
static inline qb_model *qbt_open_model_or_skip(const char *rel)
{
    qbt_need(qbt_model_path(rel));
    return qbt_open_model(rel, NULL);
}

/* Tokenize the text file at path with m's tokenizer; *n receives the count. The caller frees
 * the returned array. A failure fails the test. */
static inline int32_t *qbt_load_tokens(qb_model *m, const char *path, int *n)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    int32_t *toks = NULL;
    if (qb_eval_load_text(&ctx, m, path, &toks, n) != QB_OK) fail_msg("%s: %s", path, qb_ctx_errmsg(&ctx));
    return toks;
}

#endif
