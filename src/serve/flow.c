/*
 * The one data path: the bus between the sources and the aggregator; see flow.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg/agg.h"
#include "bus/bus.h"
#include "core/log.h"
#include "serve/fleet.h"
#include "serve/flow.h"
#include "serve/span_base.h"
#include "serve/span_metrics.h"
#include "serve/server.h"

/* What a publisher of frames tells the aggregator, and hears back (the bus's ctx). */
struct frame_ctx {
    int64_t now;
    bool try;
    struct sn_ds_fold fold;
};

/* The aggregator as the bus's frame subscriber. */
static void on_frames(void *arg, const struct sn_wire_frame *const *f, size_t n, int *rcs,
                      void *ctx)
{
    struct sn_agg *a = arg;
    struct frame_ctx *x = ctx;

    sn_agg_ingest_many(a, f, n, x ? x->now : sn_now(), x && x->try, rcs, x ? &x->fold : NULL);
}

/* The aggregator's mirror of what each source says it runs. */
static void on_status(void *arg, const struct sn_bus_status *st)
{
    struct sn_server *s = arg;
    char why[SN_AGG_WHY_MAX];
    enum sn_agg_run run = SN_AGG_STOPPED;

    switch (st->state) {
    case SN_BUS_RUNNING:
        run = SN_AGG_RUNNING;
        break;
    case SN_BUS_FAILED:
        run = SN_AGG_REFUSED;
        break;
    case SN_BUS_UNSUPPORTED:
        run = SN_AGG_UNSUPPORTED;
        break;
    case SN_BUS_STOPPED:
        break;
    }
    if (run == SN_AGG_REFUSED)
        snprintf(why, sizeof(why), "not running on %.64s: %.160s", st->host, st->why);
    else
        snprintf(why, sizeof(why), "%s", st->why);
    /* -ENOENT: an instrumentation being deleted, or refused at its create */
    sn_agg_set_status(s->agg, st->key, st->host, run, st->since_ms, why);
}

int sn_flow_open(struct sn_server *s)
{
    if (sn_bus_open(&s->bus) < 0)
        return -ENOMEM;
    if (sn_bus_subscribe_frames(s->bus, NULL, on_frames, s->agg, &s->bus_frames) < 0 ||
        sn_bus_subscribe_status(s->bus, NULL, on_status, s, &s->bus_status) < 0) {
        sn_flow_close(s);
        return -ENOMEM;
    }
    return 0;
}

void sn_flow_close(struct sn_server *s)
{
    sn_bus_unsubscribe(s->bus_frames);
    sn_bus_unsubscribe(s->bus_status);
    sn_bus_close(s->bus);
    s->bus_frames = s->bus_status = NULL;
    s->bus = NULL;
}

void sn_flow_frames(struct sn_server *s, const struct sn_wire_frame *const *f, size_t n,
                    int64_t now, bool try, int *rcs, struct sn_ds_fold *fold)
{
    if (fold)
        *fold = (struct sn_ds_fold){0, 0};
    for (size_t i = 0; i < n;) { /* the bus carries one instrumentation's frames at a time */
        struct frame_ctx x = {.now = now, .try = try};
        size_t j = i + 1;
        while (f[i]->id && j < n && f[j]->id && strcmp(f[j]->id, f[i]->id) == 0)
            j++;
        int rc = sn_bus_publish_frames(s->bus, f + i, j - i, rcs + i, &x);
        for (size_t k = i; rc < 0 && k < j; k++)
            rcs[k] = rc;
        if (fold) {
            fold->keys += x.fold.keys;
            fold->events += x.fold.events;
        }
        i = j;
    }
}

int sn_flow_frame(struct sn_server *s, const struct sn_wire_frame *f, int64_t now, bool try,
                  struct sn_ds_fold *fold)
{
    int rc;
    sn_flow_frames(s, &f, 1, now, try, &rc, fold);
    return rc;
}

int sn_flow_publish(struct sn_server *s, const struct sn_wire_frame *f)
{
    if (!s->fleet)
        return -ENOTSUP;
    if (sn_agg_arity(s->agg, f->id) < 0)
        return -ENOENT;
    return sn_fleet_publish_frame(s->fleet, f);
}

int sn_flow_store(struct sn_server *s, const struct sn_wire_frame *f, int64_t now)
{
    struct sn_ds_opts o;
    int rc;

    if (sn_agg_opts(s->agg, f->id, &o) < 0)
        return -ENOENT;
    if (f->arity != o.arity)
        return SN_DS_MISMATCH;
    enum sn_tier tier = SN_NTIERS;
    for (int t = SN_TIER_RAW; t < SN_NTIERS && tier == SN_NTIERS; t++) {
        int64_t keep = sn_store_keep(s->store, f->id, (enum sn_tier)t);
        if (keep && f->t >= now - keep)
            tier = (enum sn_tier)t;
    }
    if (tier == SN_NTIERS)
        return SN_DS_LATE;
    /* the frame as a slot: a dataset of one slot, fed the frame as it would be live */
    o.retention = o.granularity;
    o.key_cap = s->key_cap;
    struct sn_dataset *ds = sn_ds_create(&o);
    if (!ds)
        return -ENOMEM;
    rc = sn_ds_add(ds, f, f->t);
    const struct sn_ds_slot *sl = sn_ds_slot_at(ds, f->t);
    if (rc == SN_DS_ADDED && sl) {
        const char *names[1] = {f->host};
        struct sn_ds_slot one = *sl;
        one.nsrc = 1;
        rc = sn_store_merge(s->store, f->id, tier, &one, names);
    } else if (rc >= 0) {
        rc = SN_DS_LATE;
    }
    sn_ds_destroy(ds);
    return rc;
}

/* Frames of spans: onto the one data path while span metrics hold their lock. */
struct span_pub {
    struct sn_server *s;
    int64_t now;
};

static void publish_spans(void *arg, const struct sn_wire_frame *f, size_t n)
{
    struct span_pub *x = arg;
    const struct sn_wire_frame **ptr = malloc(n * sizeof(*ptr));
    int *rcs = malloc(n * sizeof(*rcs));
    if (ptr && rcs) {
        for (size_t i = 0; i < n; i++)
            ptr[i] = &f[i];
        sn_flow_frames(x->s, ptr, n, x->now, false, rcs, NULL);
    }
    free(ptr);
    free(rcs);
}

int sn_flow_spans(struct sn_server *s, const struct sn_span *spans, size_t n, int64_t now)
{
    if (!n || !s->spanm)
        return 0;
    struct span_pub x = {s, now};
    return sn_span_metrics_take(s->spanm, spans, n, s->host, now, publish_spans, &x);
}

/* Sends one control message to every host; *nacks of them answered into acks[0..max). */
static int control(struct sn_server *s, enum sn_bus_op op, const char *key, const json_t *def,
                   struct sn_bus_ack *acks, size_t max, size_t *nacks)
{
    struct sn_bus_ctl m = {.op = op, .key = key, .def = def};
    return sn_bus_publish_control(s->bus, &m, acks, max, SN_FLOW_CTL_TIMEOUT_MS, nacks);
}

int sn_flow_enable(struct sn_server *s, const struct sn_instn *in, char *why, size_t whylen)
{
    struct sn_bus_ack acks[16];
    size_t n = 0;
    json_t *def;
    int rc;

    if (s->fleet) /* the agents watch the fleet's definitions; each says what it runs */
        return sn_fleet_put_def(s->fleet, in, why, whylen) < 0 ? -EIO : 0;
    def = sn_instn_agent_def(s, in);
    if (!def) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    if (sn_span_metrics_handles(def)) { /* spans: this server is their one source */
        /* its past from the base, counted once (serve/span_base.h); none in a fleet */
        struct sn_span_base_fill fill;
        sn_span_base_fill_init(&fill, s, in);
        rc = sn_span_metrics_enable_fill(s->spanm, in->key, def, s->key_cap,
                                         s->span_base ? &fill.f : NULL, why, whylen);
        sn_span_base_fill_fini(&fill);
        json_decref(def);
        if (rc == 0)
            sn_flow_report_status(s, s->host, in->key, 0, "");
        return rc == -ENOMEM ? rc : rc < 0 ? -EINVAL : 0;
    }
    rc = control(s, SN_BUS_ENABLE, in->key, def, acks, sizeof(acks) / sizeof(acks[0]), &n);
    json_decref(def);
    if (rc < 0) {
        snprintf(why, whylen, "out of memory");
        return rc;
    }
    for (size_t i = 0; i < n && i < sizeof(acks) / sizeof(acks[0]); i++) {
        if (acks[i].rc == 0 || acks[i].rc == -EOPNOTSUPP)
            continue;
        snprintf(why, whylen, "%s", acks[i].why);
        return -EINVAL;
    }
    return 0;
}

void sn_flow_disable(struct sn_server *s, const char *key)
{
    size_t n;
    if (s->fleet) {
        sn_fleet_delete_def(s->fleet, key);
        return;
    }
    if (s->spanm && sn_span_metrics_has(s->spanm, key)) {
        sn_span_metrics_disable(s->spanm, key);
        sn_flow_clear_status(s, s->host, key);
        return;
    }
    control(s, SN_BUS_DISABLE, key, NULL, NULL, 0, &n);
}

int sn_flow_report_status(struct sn_server *s, const char *host, const char *key, int rc,
                          const char *why)
{
    return sn_bus_report_status(s->bus, host, key, rc, why);
}

void sn_flow_clear_status(struct sn_server *s, const char *host, const char *key)
{
    sn_bus_clear_status(s->bus, host, key);
}

void sn_flow_resync_status(struct sn_server *s, const char *key)
{
    size_t n = sn_bus_status(s->bus, key, NULL, 0);
    struct sn_bus_status *st = n ? malloc(n * sizeof(*st)) : NULL;
    size_t now = st ? sn_bus_status(s->bus, key, st, n) : 0;
    if (now < n) /* more meanwhile: the first n copied */
        n = now;
    for (size_t i = 0; st && i < n; i++)
        on_status(s, &st[i]);
    free(st);
}
