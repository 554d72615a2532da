/* format_traits.c — the format table (format_traits.h): the rows of format_kinds.h in order,
 * lookups, the families (bit ladders) the rows offer and stepping through them, and the
 * helpers several rows share. */
#include "format_traits.h"

#include <stdio.h>
#include <strings.h>

#define QB_FORMAT_ROW_DECL(K, id) extern const qb_format_traits qb_format_row_##id;
QB_FORMAT_KINDS(QB_FORMAT_ROW_DECL)
#undef QB_FORMAT_ROW_DECL

static const qb_format_traits *const rows[QB_FMT_KIND_COUNT] = {
#define QB_FORMAT_ROW(K, id) [QB_FMT_##K] = &qb_format_row_##id,
    QB_FORMAT_KINDS(QB_FORMAT_ROW)
#undef QB_FORMAT_ROW
};

const qb_format_traits *qb_format_traits_get(int k)
{
    return k >= 0 && k < QB_FMT_KIND_COUNT ? rows[k] : NULL;
}

const qb_format_traits *qb_format_traits_of(const qb_format *f)
{
    return f ? qb_format_traits_get((int)f->kind) : NULL;
}

/* ---- families ---------------------------------------------------------------------------- */

int qb_format_family_count(void)
{
    int n = 0;
    for (int k = 0; k < QB_FMT_KIND_COUNT; k++) n += rows[k]->n_families;
    return n;
}

/* Family number i of all rows in (row, position) order. */
static const qb_format_family *family_raw(int i)
{
    for (int k = 0; i >= 0 && k < QB_FMT_KIND_COUNT; k++) {
        if (i < rows[k]->n_families) return &rows[k]->families[i];
        i -= rows[k]->n_families;
    }
    return NULL;
}

/* Family i by rank (ties: table order): the one with exactly i families before it. A dozen
 * families, so counting beats keeping a sorted copy. */
const qb_format_family *qb_format_family_get(int i)
{
    const int n = qb_format_family_count();
    for (int a = 0; i >= 0 && a < n; a++) {
        const qb_format_family *fa = family_raw(a);
        int before = 0;
        for (int b = 0; b < n; b++) {
            const qb_format_family *fb = family_raw(b);
            before += fb->rank < fa->rank || (fb->rank == fa->rank && b < a);
        }
        if (before == i) return fa;
    }
    return NULL;
}

int qb_format_family_find(const char *s)
{
    const int n = qb_format_family_count();
    for (int i = 0; s && i < n; i++) {
        const qb_format_family *f = qb_format_family_get(i);
        if (!strcasecmp(f->key, s) || !strcasecmp(f->name, s)) return i;
    }
    return -1;
}

int qb_format_family_nearest_bits(const qb_format_family *fam, int want)
{
    const int *b = fam->bits;
    int best = b[0];
    for (int i = 0; b[i]; i++) {
        int d = b[i] - want, bd = best - want;
        if (d < 0) d = -d;
        if (bd < 0) bd = -bd;
        if (d < bd) best = b[i];
    }
    return best;
}

int qb_format_family_nearest_group(const qb_format_family *fam, int want)
{
    for (int i = 0; fam->groups[i] != QB_FAMILY_END; i++)
        if (fam->groups[i] == want) return want;
    return fam->groups[0];
}

/* The value after cur in v (end-terminated), dir steps on, wrapping; v[0] when cur is absent. */
static int step(const int *v, int end, int cur, int dir)
{
    int n = 0, at = 0;
    while (n < QB_FAMILY_CHOICES && v[n] != end) n++;
    if (n == 0) return cur;
    for (int i = 0; i < n; i++)
        if (v[i] == cur) at = i;
    return v[((at + dir) % n + n) % n];
}

/* bits lists run high → low, so "+1" (more bits) moves towards the front */
int qb_format_family_step_bits(const qb_format_family *fam, int bits, int dir)
{
    return step(fam->bits, 0, bits, -dir);
}

int qb_format_family_step_group(const qb_format_family *fam, int group, int dir)
{
    return step(fam->groups, QB_FAMILY_END, group, dir);
}

/* Whether fam offers f: its (bits, group) when it does. */
static bool family_offers(const qb_format_family *fam, const qb_format *f, int *bits, int *group)
{
    for (int i = 0; fam->bits[i]; i++)
        for (int j = 0; fam->groups[j] != QB_FAMILY_END; j++) {
            qb_format g;
            if (fam->format(fam->bits[i], fam->groups[j], &g) && qb_format_equal(&g, f)) {
                *bits = fam->bits[i];
                *group = fam->groups[j];
                return true;
            }
        }
    return false;
}

qb_status qb_format_step(qb_ctx *ctx, const qb_format *f, int dir, qb_format *out)
{
    const int n = qb_format_family_count();
    for (int i = 0; i < n; i++) {
        const qb_format_family *fam = qb_format_family_get(i);
        int bits, group;
        if (!family_offers(fam, f, &bits, &group)) continue;
        const int nb = qb_format_family_step_bits(fam, bits, dir > 0 ? 1 : -1);
        if (!fam->format(nb, group, out)) *out = *f;
        return QB_OK;
    }
    char nm[48];
    qb_format_name(f, nm, sizeof nm);
    return qb_fail(ctx, QB_ERR_UNSUPPORTED, "%s: no bit ladder offers this format", nm);
}

/* ---- kernels, shared helpers --------------------------------------------------------------- */

bool qb_format_kernels(const qb_format *f, const qb_kernel_table *k, qb_fmt_params *p, qb_fmt_tile_fn *tile)
{
    const qb_format_traits *tr = qb_format_traits_of(f);
    if (!tr || !tr->params) return false;
    tr->params(f, p);
    *tile = qb_kernels_pick_tile(k, tr->tile);
    return true;
}

void qb_format_group_name_int(int group, char *buf, size_t cap)
{
    if (group == QB_GROUP_TENSOR) snprintf(buf, cap, "per tensor");
    else if (group == QB_GROUP_CHANNEL) snprintf(buf, cap, "per channel");
    else snprintf(buf, cap, "group %d", group);
}

qb_export_target qb_format_export_dequant(const qb_format *f, int64_t n)
{
    (void)f, (void)n;
    return (qb_export_target){QB_TYPE_F16, QB_EXPORT_DEQUANT};
}
