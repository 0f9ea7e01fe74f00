/*
 * Reading history: which tier answers a request, and a view (agg/agg.h) over it that the API
 * reads exactly as it reads memory. Memory (the aggregator's slots, the instrumentation's
 * retention) answers what it holds, as before; older data comes from the store at the finest
 * tier that keeps the request's start and whose records per answer stay within a budget;
 * a heatmap's columns then merge whole records (never interpolated: a column is k records).
 * At the raw tier the seconds not yet written come from memory.
 */
#ifndef SN_STORE_HISTORY_H
#define SN_STORE_HISTORY_H

#include <stdbool.h>
#include <stdint.h>

#include "agg/agg.h"
#include "store/store.h"

#define SN_HISTORY_MAX_RECORDS 4800 /* records one answer (a point or an image) reads at most */

struct sn_history_pick {
    bool memory;       /* memory holds the whole range: the aggregator's view, as ever */
    enum sn_tier tier; /* else this tier of the store */
    uint32_t gran;     /* seconds each slot of the view covers (the tier's period times k) */
};

/* Picks how to answer [start, start + span) for instrumentation key (granularity g, memory
 * retention mem) at time now: maxcols is the most columns an answer shows (a heatmap's width)
 * or 0 for one value per point (then gran is the tier's period). st may be NULL (no store:
 * memory). */
void sn_history_pick(struct sn_store *st, const char *key, uint32_t g, uint32_t mem, int64_t now,
                     int64_t start, int64_t span, uint32_t maxcols, struct sn_history_pick *out);

/* A view over [from, to) as picked (from aligned to p->gran). Returns 0, -ENOENT or -ENOMEM. */
int sn_history_view(struct sn_store *st, struct sn_agg *agg, const char *key,
                    const struct sn_history_pick *p, int64_t from, int64_t to,
                    struct sn_agg_view **out);

/* Reads the records of tier t starting in [from, to) that stand in for an instrumentation's own
 * (as sn_store_read(): new slots appended to *out, *n of them, oldest first). Returns 0 or a
 * negative errno. */
typedef int (*sn_history_before_fn)(void *arg, enum sn_tier t, int64_t from, int64_t to,
                                    struct sn_ds_slot ***out, size_t *n);
/* sn_history_view(), but the store's records starting before since come from before(arg, ...)
 * instead of key's own (an instrumentation answered for the time before it existed from
 * another series: serve/span_base.h); memory still wins at the raw tier. */
int sn_history_view_before(struct sn_store *st, struct sn_agg *agg, const char *key,
                           const struct sn_history_pick *p, int64_t from, int64_t to, int64_t since,
                           sn_history_before_fn before, void *arg, struct sn_agg_view **out);

#endif
