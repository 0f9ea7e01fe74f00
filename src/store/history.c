/*
 * Reading history (store/history.h).
 */
#include "store/history.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"

void sn_history_pick(struct sn_store *st, const char *key, uint32_t g, uint32_t mem, int64_t now,
                     int64_t start, int64_t span, uint32_t maxcols, struct sn_history_pick *out)
{
    *out = (struct sn_history_pick){.memory = true, .tier = SN_TIER_RAW, .gran = g ? g : 1};
    if (!st || start >= now - (int64_t)mem)
        return;
    enum sn_tier pick = SN_NTIERS, coarsest = SN_NTIERS;
    for (int t = SN_TIER_RAW; t < SN_NTIERS; t++) {
        int64_t keep = sn_store_keep(st, key, (enum sn_tier)t);
        if (!keep)
            continue;
        int64_t p = t == SN_TIER_RAW ? (int64_t)out->gran : sn_tier_period((enum sn_tier)t);
        coarsest = (enum sn_tier)t;
        if (start >= now - keep && span / p <= SN_HISTORY_MAX_RECORDS) {
            pick = (enum sn_tier)t;
            break;
        }
    }
    (void)coarsest;
    if (pick == SN_NTIERS) /* no tier keeps the start: as memory, what little there is */
        return;
    int64_t p = pick == SN_TIER_RAW ? (int64_t)out->gran : sn_tier_period(pick);
    int64_t k = 1;
    if (maxcols && span / p > maxcols)
        k = (span / p + maxcols - 1) / maxcols;
    out->memory = false;
    out->tier = pick;
    out->gran = (uint32_t)(p * k);
}

/* A column: the sum of its slots (one pass, sn_ds_slot_add_many()), with the most sources any
 * of them had (memory's and the store's name sources apart: counts are what a view gives). */
static struct sn_ds_slot *column(int64_t t, const struct sn_ds_slot *const *s, size_t n,
                                 bool first_only)
{
    struct sn_ds_slot *c = sn_ds_slot_new(t);
    const struct sn_ds_slot *most = s[0];
    if (!c)
        return NULL;
    if (first_only)
        n = 1;
    for (size_t i = 1; i < n; i++)
        if (s[i]->nsrc > most->nsrc)
            most = s[i];
    if (sn_ds_slot_add_many(c, s, n, false) < 0 ||
        (most->nsrc && !(c->src = malloc(most->nsrc * sizeof(*c->src))))) {
        sn_ds_slot_unref(c);
        return NULL;
    }
    if (most->nsrc)
        memcpy(c->src, most->src, most->nsrc * sizeof(*c->src));
    c->nsrc = most->nsrc;
    return c;
}

/* key's records of tier t in [from, to), those before since from before() when given. */
static int records(struct sn_store *st, const char *key, enum sn_tier t, int64_t from, int64_t to,
                   int64_t since, sn_history_before_fn before, void *arg, struct sn_ds_slot ***recs,
                   size_t *nrec, bool *values)
{
    int rc;
    if (!before || from >= since)
        return sn_store_read(st, key, t, from, to, recs, nrec, values);
    if ((rc = before(arg, t, from, to < since ? to : since, recs, nrec)) < 0 || to <= since)
        return rc;
    struct sn_ds_slot **own = NULL;
    size_t nown = 0;
    if ((rc = sn_store_read(st, key, t, since, to, &own, &nown, values)) < 0)
        return rc;
    struct sn_ds_slot **a = nown ? realloc(*recs, (*nrec + nown) * sizeof(*a)) : *recs;
    if (!a) {
        rc = -ENOMEM;
    } else {
        *recs = a;
        memcpy(a + *nrec, own, nown * sizeof(*a));
        *nrec += nown;
        nown = 0;
    }
    for (size_t i = 0; i < nown; i++)
        sn_ds_slot_unref(own[i]);
    free(own);
    return rc;
}

int sn_history_view(struct sn_store *st, struct sn_agg *agg, const char *key,
                    const struct sn_history_pick *p, int64_t from, int64_t to,
                    struct sn_agg_view **out)
{
    return sn_history_view_before(st, agg, key, p, from, to, 0, NULL, NULL, out);
}

int sn_history_view_before(struct sn_store *st, struct sn_agg *agg, const char *key,
                           const struct sn_history_pick *p, int64_t from, int64_t to, int64_t since,
                           sn_history_before_fn before, void *arg, struct sn_agg_view **out)
{
    struct sn_ds_opts o;
    struct sn_ds_slot **recs = NULL, **cols = NULL;
    size_t nrec = 0, ncols = 0, capc = 0;
    bool values = false;
    int rc;

    *out = NULL;
    if (p->memory)
        return sn_agg_view_open(agg, key, from, to, out);
    if (sn_agg_opts(agg, key, &o) < 0)
        return -ENOENT;
    if ((rc = records(st, key, p->tier, from, to, since, before, arg, &recs, &nrec, &values)) < 0) {
        for (size_t k = 0; k < nrec; k++)
            sn_ds_slot_unref(recs[k]);
        free(recs);
        return rc;
    }
    /* at the raw tier memory has the seconds not written yet, and wins where both have one */
    struct sn_agg_view *mv = NULL;
    const struct sn_ds_slot **mem = NULL;
    size_t nmem = 0;
    if (p->tier == SN_TIER_RAW && sn_agg_view_open(agg, key, from, to, &mv) == 0)
        nmem = sn_agg_view_slots(mv, &mem);
    int64_t g = p->gran;
    size_t i = 0, j = 0, nin = 0, capin = 0;
    const struct sn_ds_slot **in = NULL; /* the current column's slots */
    int64_t at = 0;
    /* the slots in time order (memory's where both have one), a column of each run of them
     * starting in the same multiple of g */
    for (;;) {
        const struct sn_ds_slot *s = NULL;
        if (j < nmem && (i == nrec || mem[j]->t <= recs[i]->t)) {
            if (i < nrec && recs[i]->t == mem[j]->t)
                i++;
            s = mem[j++];
        } else if (i < nrec) {
            s = recs[i++];
        }
        int64_t c = s ? s->t - (s->t % g + g) % g : 0;
        if (nin && (!s || c != at)) {
            struct sn_ds_slot **a = sn_grow(cols, &capc, ncols + 1, sizeof(*a));
            struct sn_ds_slot *col = a ? column(at, in, nin, o.point && !values) : NULL;
            cols = a ? a : cols;
            if (!col) {
                rc = -ENOMEM;
                break;
            }
            cols[ncols++] = col;
            nin = 0;
        }
        if (!s)
            break;
        const struct sn_ds_slot **b = sn_grow(in, &capin, nin + 1, sizeof(*b));
        if (!b) {
            rc = -ENOMEM;
            break;
        }
        in = b;
        in[nin++] = s;
        at = c;
    }
    free(in);
    for (size_t k = 0; k < nrec; k++)
        sn_ds_slot_unref(recs[k]);
    free(recs);
    sn_agg_view_close(mv);
    if (rc < 0) {
        for (size_t k = 0; k < ncols; k++)
            sn_ds_slot_unref(cols[k]);
        free(cols);
        return rc;
    }
    if (!cols && !(cols = malloc(sizeof(*cols))))
        return -ENOMEM;
    return sn_agg_view_adopt((uint32_t)g, o.point && !values, values, cols, ncols, out);
}
