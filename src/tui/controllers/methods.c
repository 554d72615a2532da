/* methods.c — the method list of methods.h: core's format families (the ladders of the format
 * table, in core's order) followed by the calibration methods GPTQ and AWQ on the "rtn-asym"
 * family's grids, and learned rounding (SignRound) on the same grids. Everything format-specific — bits offered, which format a choice is, what a
 * granularity is called — is asked of core. */
#include "tui/controllers/methods.h"

#include <pthread.h>
#include <strings.h>

#define MAX_METHODS 32

/* GPTQ has no per-tensor grid; AWQ searches the same grids */
static const int calib_groups[] = {QB_GROUP_CHANNEL, 128, 64, 32, QB_FAMILY_END};

static tui_method table[MAX_METHODS];
static int n_table;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void build(void)
{
    const int nf = qb_format_family_count();
    for (int i = 0; i < nf && n_table < MAX_METHODS - 3; i++) {
        const qb_format_family *f = qb_format_family_get(i);
        table[n_table++] = (tui_method){f->name, f->key, f, f->groups, NULL};
    }
    const int ra = qb_format_family_find("rtn-asym");
    if (ra < 0) return;
    const qb_format_family *f = qb_format_family_get(ra);
    table[n_table++] = (tui_method){"GPTQ", "gptq", f, calib_groups, "gptq"};
    table[n_table++] = (tui_method){"AWQ", "awq", f, calib_groups, "awq"};
    table[n_table++] = (tui_method){"Learned", "learned", f, calib_groups, "learned"};
}

const tui_method *tui_methods(int *count)
{
    pthread_once(&once, build);
    *count = n_table;
    return table;
}

int tui_method_find(const char *name)
{
    int n;
    const tui_method *t = tui_methods(&n);
    for (int i = 0; i < n; i++)
        if (!strcasecmp(t[i].key, name) || !strcasecmp(t[i].name, name)) return i;
    return -1;
}

static const tui_method *method(int mi)
{
    int n;
    const tui_method *t = tui_methods(&n);
    return &t[mi >= 0 && mi < n ? mi : 0];
}

bool tui_method_format(int mi, int bits, int group, qb_format *out)
{
    return method(mi)->fam->format(bits, group, out);
}

int tui_method_nearest_bits(int mi, int want) { return qb_format_family_nearest_bits(method(mi)->fam, want); }

int tui_method_nearest_group(int mi, int want)
{
    const int *g = method(mi)->groups;
    for (int i = 0; g[i] != QB_FAMILY_END; i++)
        if (g[i] == want) return want;
    return g[0];
}

int tui_method_step_bits(int mi, int bits, int dir) { return qb_format_family_step_bits(method(mi)->fam, bits, dir); }

int tui_method_step_group(int mi, int group, int dir)
{
    const int *g = method(mi)->groups;
    int n = 0, at = 0;
    while (g[n] != QB_FAMILY_END) n++;
    for (int i = 0; i < n; i++)
        if (g[i] == group) at = i;
    return g[((at + dir) % n + n) % n];
}

const char *tui_group_name(int mi, int group, char *buf, size_t cap)
{
    method(mi)->fam->group_name(group, buf, cap);
    return buf;
}
