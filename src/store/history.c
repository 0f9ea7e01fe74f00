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

/* dst += src for a column of several slots; dst keeps the most sources any of them had. */
static int add_into(struct sn_ds_slot *dst, const struct sn_ds_slot *src, bool first)
{
    if (sn_ds_slot_add(dst, src) < 0)
        return -ENOMEM;
    if (first || src->nsrc > dst->nsrc) {
        uint32_t *s = malloc((src->nsrc ? src->nsrc : 1) * sizeof(*s));
        if (!s)
            return -ENOMEM;
        memcpy(s, src->src, src->nsrc * sizeof(*s));
        free(dst->src);
        dst->src = s;
        dst->nsrc = src->nsrc;
    }
    return 0;
}

int sn_history_view(struct sn_store *st, struct sn_agg *agg, const char *key,
                    const struct sn_history_pick *p, int64_t from, int64_t to,
                    struct sn_agg_view **out)
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
    if ((rc = sn_store_read(st, key, p->tier, from, to, &recs, &nrec, &values)) < 0)
        return rc;
    /* at the raw tier memory has the seconds not written yet, and wins where both have one */
    struct sn_agg_view *mv = NULL;
    const struct sn_ds_slot **mem = NULL;
    size_t nmem = 0;
    if (p->tier == SN_TIER_RAW && sn_agg_view_open(agg, key, from, to, &mv) == 0)
        nmem = sn_agg_view_slots(mv, &mem);
    int64_t g = p->gran;
    size_t i = 0, j = 0;
    while (i < nrec || j < nmem) {
        const struct sn_ds_slot *s;
        if (j < nmem && (i == nrec || mem[j]->t <= recs[i]->t)) {
            if (i < nrec && recs[i]->t == mem[j]->t)
                i++;
            s = mem[j++];
        } else {
            s = recs[i++];
        }
        int64_t c = s->t - (s->t % g + g) % g;
        if (!ncols || cols[ncols - 1]->t != c) {
            struct sn_ds_slot **a = sn_grow(cols, &capc, ncols + 1, sizeof(*a));
            struct sn_ds_slot *n = a ? sn_ds_slot_new(c) : NULL;
            if (!n) {
                cols = a ? a : cols;
                rc = -ENOMEM;
                break;
            }
            cols = a;
            cols[ncols++] = n;
            if (add_into(n, s, true) < 0) {
                rc = -ENOMEM;
                break;
            }
        } else if (o.point && !values) {
            continue; /* a snapshot's column is its first slot */
        } else if (add_into(cols[ncols - 1], s, false) < 0) {
            rc = -ENOMEM;
            break;
        }
    }
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
