/* vocab_llama2c.c — loading llama2.c's tokenizer.bin: u32 max_token_length, then for each of
 * vocab_size ids a f32 score, an i32 length and that many bytes of text. Spaces are stored as
 * ' ', BOS/EOS as "\n<s>\n"/"\n</s>\n", ids 3..258 are the <0xNN> byte tokens. */
#include "tok_internal.h"

#include "../util/mapfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Walk the records without keeping them: the file must hold exactly n of them. */
static qb_status check_records(qb_ctx *ctx, const char *path, const char *buf, size_t size, int n)
{
    if (size < 4) return qb_fail(ctx, QB_ERR_FORMAT, "%s: truncated tokenizer.bin (%zu bytes, no header)", path, size);
    size_t pos = 4; /* the stored max_token_length is recomputed from the texts */
    for (int id = 0; id < n; id++) {
        int32_t len;
        if (size - pos < 8)
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: truncated: holds %d of the %d tokens the model needs", path, id, n);
        memcpy(&len, buf + pos + 4, 4);
        pos += 8;
        if (len < 0) return qb_fail(ctx, QB_ERR_FORMAT, "%s: token %d has negative length %d", path, id, (int)len);
        if ((size_t)len > size - pos)
            return qb_fail(ctx, QB_ERR_FORMAT, "%s: truncated in token %d of %d (text of %d bytes runs past the end)",
                           path, id, n, (int)len);
        pos += (size_t)len;
    }
    if (pos != size)
        return qb_fail(ctx, QB_ERR_FORMAT,
                       "%s: holds more than the model's %d tokens (%zu bytes left over): a tokenizer for another "
                       "vocabulary?", path, n, size - pos);
    return QB_OK;
}

qb_status qb_tokenizer_from_llama2c(qb_ctx *ctx, const char *path, int vocab_size, qb_tokenizer **out)
{
    *out = NULL;
    if (vocab_size <= 0 || vocab_size > TOK_MAX_VOCAB)
        return qb_fail(ctx, QB_ERR_ARG, "%s: vocabulary size %d out of range", path, vocab_size);
    char *buf = NULL;
    size_t size = 0;
    qb_tokenizer *t = NULL;
    qb_status st = qb_read_file(ctx, path, (size_t)1 << 30, &buf, &size);
    if (st != QB_OK) return st;
    if ((st = check_records(ctx, path, buf, size, vocab_size)) != QB_OK) goto fail;
    if ((st = tok_alloc(ctx, QB_TOK_SPM, vocab_size, true, &t)) != QB_OK) goto fail;
    size_t pos = 4;
    for (int id = 0; id < vocab_size; id++) {
        int32_t len;
        memcpy(&t->score[id], buf + pos, 4);
        memcpy(&len, buf + pos + 4, 4);
        pos += 8;
        if ((st = tok_set_text(ctx, t, id, buf + pos, (size_t)len)) != QB_OK) goto fail;
        pos += (size_t)len;
        const char *s = t->pool + t->off[id];
        if (len == 6 && memcmp(s, "<0x", 3) == 0 && s[5] == '>') t->type[id] = TOK_BYTE;
    }
    t->llama2c = true;
    t->add_space_prefix = true;
    t->add_bos = true;
    t->unk = 0;
    t->bos = vocab_size > 1 ? 1 : -1;
    t->eos = vocab_size > 2 ? 2 : -1;
    if (strcmp(t->pool + t->off[0], "<unk>") == 0) t->type[0] = TOK_UNKNOWN;
    if (t->bos >= 0) t->type[t->bos] = TOK_CONTROL;
    if (t->eos >= 0) t->type[t->eos] = TOK_CONTROL;
    if ((st = tok_finish(ctx, t)) != QB_OK) goto fail;
    snprintf(t->desc, sizeof t->desc, "SentencePiece-style (%d tokens)", vocab_size);
    free(buf);
    *out = t;
    return QB_OK;
fail:
    free(buf);
    qb_tokenizer_free(t);
    return st;
}
