/*
 * A span publisher's own past (fleet/span_past.h): the base's last seconds in a dataset of
 * this process, and the fill of a new trace.spans instrumentation from it.
 */
#include "fleet/span_past.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/definition.h"
#include "agg/dataset.h"
#include "core/clock.h"
#include "core/log.h"
#include "fleet/names.h"
#include "fleet/span_msg.h"
#include "serve/span_metrics.h"

struct sn_span_past {
    struct sn_span_metrics *sm;
    struct sn_link *link;
    char origin[SN_FLEET_HOST_MAX + 1];
    pthread_mutex_t mu; /* the dataset's one lock: adds and snapshots */
    struct sn_dataset *ds;
};

int sn_span_past_open(struct sn_span_metrics *sm, struct sn_link *link, const char *origin,
                      uint32_t key_cap, struct sn_span_past **out)
{
    struct sn_span_past *p = calloc(1, sizeof(*p));
    struct sn_ds_opts o = {.arity = SN_WIRE_NUMERIC_BY_KEY,
                           .granularity = 1,
                           .retention = SN_SPAN_PAST_KEEP,
                           .key_cap = key_cap ? key_cap : SN_DEFAULT_KEY_CAP};
    *out = NULL;
    if (!p || !(p->ds = sn_ds_create(&o))) {
        free(p);
        return -ENOMEM;
    }
    p->sm = sm;
    p->link = link;
    snprintf(p->origin, sizeof(p->origin), "%s", origin);
    pthread_mutex_init(&p->mu, NULL);
    sn_span_metrics_base_on(sm);
    *out = p;
    return 0;
}

void sn_span_past_close(struct sn_span_past *p)
{
    if (!p)
        return;
    sn_ds_destroy(p->ds);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int64_t sn_span_past_since(int64_t crtime_ms)
{
    return crtime_ms / 1000 - SN_SPAN_PAST_RETENTION;
}

struct sn_span_metrics *sn_span_past_metrics(struct sn_span_past *p)
{
    return p->sm;
}

void sn_span_past_add(struct sn_span_past *p, const struct sn_wire_frame *f, size_t n, int64_t now,
                      bool *bus)
{
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < n; i++) {
        bus[i] = !f[i].id || strcmp(f[i].id, SN_SPAN_BASE_KEY) != 0;
        if (bus[i])
            continue;
        int rc = sn_ds_add(p->ds, &f[i], now);
        if (rc < 0)
            sn_log(SN_LOG_WARN, "fleet",
                   "out of memory: spans of second %" PRId64
                   " are not in the past of trace.spans instrumentations created later",
                   f[i].t);
        /* onto the bus as a single server's base would take it: its memory's seconds */
        bus[i] = rc == SN_DS_ADDED && f[i].t >= now - SN_SPAN_PAST_RETENTION;
    }
    pthread_mutex_unlock(&p->mu);
}

/* One fill: the snapshot (references to the base's slots), then its frames published. */
struct fill {
    struct sn_span_past *p;
    const char *key;
    int64_t retention, granularity, since, now;
    const struct sn_ds_slot **sl; /* room for every slot, allocated before the snapshot */
    size_t n;
};

/* Under span metrics' write lock: references, no copies. */
static void fill_snap(void *arg)
{
    struct fill *x = arg;
    int64_t g = x->granularity, from = (x->now = sn_now()) - x->retention;
    from -= ((from % g) + g) % g;
    if (from < x->since) /* the fleet's stored base has the seconds before (span_base.h) */
        from = x->since;
    pthread_mutex_lock(&x->p->mu);
    x->n = sn_ds_slots_ref(x->p->ds, from, x->now + SN_DS_MAX_FUTURE + 1, x->sl);
    pthread_mutex_unlock(&x->p->mu);
}

static void fill_run(void *arg, const struct sn_span_rekey *r)
{
    struct fill *x = arg;
    size_t sent = 0;
    int rc = 0;
    for (size_t i = 0; i < x->n && rc == 0; i++) {
        struct sn_wire_frame f;
        char id[SN_FLEET_SUBJECT_MAX + 64];
        if ((rc = sn_span_metrics_rekey(r, x->sl[i], x->p->origin, &f, NULL)) < 0)
            break;
        snprintf(id, sizeof(id), "%s.fill.%s.%" PRId64, x->p->origin, x->key, x->sl[i]->t);
        if ((f.total || f.over_cap) && (rc = sn_fleet_frame_send(x->p->link, &f, id)) == 0)
            sent++;
        sn_wire_frame_fini(&f);
    }
    if (rc < 0)
        sn_log(SN_LOG_WARN, "fleet",
               "instrumentation %s: its past is not filled from the spans taken here before "
               "(%zu of %zu seconds published): %s",
               x->key, sent, x->n, strerror(-rc));
    else if (sent)
        sn_log(SN_LOG_INFO, "fleet",
               "instrumentation %s: %zu seconds of its past published from the spans taken here",
               x->key, sent);
}

int sn_span_past_enable(struct sn_span_past *p, const char *key, const json_t *def,
                        uint32_t key_cap, uint32_t retention, uint32_t granularity,
                        int64_t crtime_ms, char *why, size_t whylen)
{
    if (sn_span_metrics_has(p->sm, key)) /* it counted live here: no past to add */
        return sn_span_metrics_enable(p->sm, key, def, key_cap, why, whylen);
    struct fill x = {.p = p,
                     .key = key,
                     .retention = retention ? retention : SN_SPAN_PAST_RETENTION,
                     .granularity = granularity ? granularity : 1,
                     .since = sn_span_past_since(crtime_ms)};
    if (x.retention > SN_SPAN_PAST_KEEP)
        x.retention = SN_SPAN_PAST_KEEP;
    pthread_mutex_lock(&p->mu);
    uint32_t cap = sn_ds_nslots(p->ds);
    pthread_mutex_unlock(&p->mu);
    if (!(x.sl = calloc(cap, sizeof(*x.sl)))) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    struct sn_span_fill f = {fill_snap, fill_run, &x};
    int rc = sn_span_metrics_enable_fill(p->sm, key, def, key_cap, &f, why, whylen);
    for (size_t i = 0; i < x.n; i++)
        sn_ds_slot_unref(x.sl[i]);
    free(x.sl);
    return rc;
}
