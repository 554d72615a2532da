/* merge.c — the pair-merging engine both encoders share: a word is a linked list of symbols;
 * a priority queue holds the adjacent pairs that can merge (best first, leftmost on ties);
 * popping a still-valid pair absorbs the right symbol into the left one and queues the two
 * new neighbour pairs. Stale entries are recognised by symbol versions. */
#include "tok_internal.h"

#include <stdlib.h>
#include <string.h>

bool tok_pair_by_rank(const qb_tokenizer *t, const tok_sym *a, const tok_sym *b, char *scratch, double *prio,
                      int32_t *id)
{
    (void)scratch;
    int32_t rank;
    if (a->id < 0 || b->id < 0 || !tok_find_merge(t, a->id, b->id, &rank, id)) return false;
    *prio = -(double)rank;
    return true;
}

qb_status tok_merger_init(qb_ctx *ctx, tok_merger *m, const qb_tokenizer *t)
{
    memset(m, 0, sizeof *m);
    m->scratch = malloc((size_t)t->max_len * 2 + 8);
    if (!m->scratch) return qb_fail(ctx, QB_ERR_NOMEM, "tokenize: out of memory");
    return QB_OK;
}

void tok_merger_free(tok_merger *m)
{
    free(m->sym);
    free(m->heap);
    free(m->scratch);
    memset(m, 0, sizeof *m);
}

qb_status tok_merger_add(qb_ctx *ctx, tok_merger *m, const char *text, uint32_t n, int32_t id)
{
    if (m->n == m->cap) {
        int cap = m->cap ? m->cap * 2 : 64;
        tok_sym *s = realloc(m->sym, (size_t)cap * sizeof *s);
        if (!s) return qb_fail(ctx, QB_ERR_NOMEM, "tokenize: out of memory");
        m->sym = s;
        m->cap = cap;
    }
    tok_sym *s = &m->sym[m->n];
    s->text = text;
    s->n = n;
    s->id = id;
    s->prev = m->n - 1;
    s->next = -1;
    s->ver = 0;
    if (m->n > 0) m->sym[m->n - 1].next = m->n;
    m->n++;
    return QB_OK;
}

/* Does a come out of the queue before b? */
static bool before(const tok_pair *a, const tok_pair *b)
{
    return a->prio > b->prio || (a->prio == b->prio && a->left < b->left);
}

static qb_status heap_push(qb_ctx *ctx, tok_merger *m, tok_pair p)
{
    if (m->hn == m->hcap) {
        int cap = m->hcap ? m->hcap * 2 : 64;
        tok_pair *h = realloc(m->heap, (size_t)cap * sizeof *h);
        if (!h) return qb_fail(ctx, QB_ERR_NOMEM, "tokenize: out of memory");
        m->heap = h;
        m->hcap = cap;
    }
    int i = m->hn++;
    while (i > 0) {
        int up = (i - 1) / 2;
        if (!before(&p, &m->heap[up])) break;
        m->heap[i] = m->heap[up];
        i = up;
    }
    m->heap[i] = p;
    return QB_OK;
}

static tok_pair heap_pop(tok_merger *m)
{
    tok_pair top = m->heap[0];
    tok_pair last = m->heap[--m->hn];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= m->hn) break;
        if (c + 1 < m->hn && before(&m->heap[c + 1], &m->heap[c])) c++;
        if (!before(&m->heap[c], &last)) break;
        m->heap[i] = m->heap[c];
        i = c;
    }
    if (m->hn > 0) m->heap[i] = last;
    return top;
}

static qb_status try_pair(qb_ctx *ctx, tok_merger *m, const qb_tokenizer *t, tok_pair_fn fn, int l, int r)
{
    if (l < 0 || r < 0) return QB_OK;
    tok_pair p;
    if (!fn(t, &m->sym[l], &m->sym[r], m->scratch, &p.prio, &p.id)) return QB_OK;
    p.left = l;
    p.right = r;
    p.vl = m->sym[l].ver;
    p.vr = m->sym[r].ver;
    return heap_push(ctx, m, p);
}

qb_status tok_merger_run(qb_ctx *ctx, tok_merger *m, const qb_tokenizer *t, tok_pair_fn fn)
{
    qb_status st = QB_OK;
    m->hn = 0;
    for (int i = 1; i < m->n; i++)
        if ((st = try_pair(ctx, m, t, fn, i - 1, i)) != QB_OK) return st;
    while (m->hn > 0) {
        tok_pair p = heap_pop(m);
        tok_sym *l = &m->sym[p.left], *r = &m->sym[p.right];
        if (l->n == 0 || r->n == 0 || l->ver != p.vl || r->ver != p.vr) continue; /* stale */
        l->n += r->n;
        l->id = p.id;
        l->text = t->pool + t->off[p.id];
        l->ver++;
        r->n = 0;
        r->ver++;
        l->next = r->next;
        if (r->next >= 0) m->sym[r->next].prev = p.left;
        if ((st = try_pair(ctx, m, t, fn, l->prev, p.left)) != QB_OK) return st;
        if ((st = try_pair(ctx, m, t, fn, p.left, l->next)) != QB_OK) return st;
    }
    return QB_OK;
}
