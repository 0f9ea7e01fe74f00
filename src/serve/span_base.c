/*
 * The base of trace.spans (serve/span_base.h).
 */
#include "serve/span_base.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/catalog.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/grow.h"
#include "core/log.h"
#include "fleet/names.h"
#include "serve/fleet.h"
#include "serve/flow.h"
#include "serve/server.h"
#include "serve/span_metrics.h"

/* the fleet carries the base under its name (fleet/names.h) */
_Static_assert(sizeof(SN_FLEET_SPAN_BASE) == sizeof(SN_SPAN_BASE_KEY), "the base's key on the bus");

int sn_span_base_open(struct sn_server *s)
{
    struct sn_instn *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    snprintf(b->key, sizeof(b->key), "%s", SN_SPAN_BASE_KEY);
    b->metric = sn_catalog_find("trace", "spans");
    b->keyf = sn_catalog_field(b->metric, "service"); /* numeric by key: any discrete field */
    b->numf = sn_catalog_field(b->metric, "latency");
    b->arity = SN_ARITY_NUMERIC;
    b->granularity = 1;
    b->retention = SN_SPAN_BASE_RETENTION;
    b->persist = true;
    b->crtime_ms = sn_now_ms();
    if (!b->metric || !b->keyf || !b->numf || !(b->ds = sn_server_new_dataset(s, b)) ||
        sn_server_store_inst(s, b) < 0) {
        sn_instn_free(b);
        return -ENOMEM;
    }
    /* in a fleet its memory comes from the stream (its owners'), and the publishers count the
     * spans (fleet/span_past.h) */
    if (!s->fleet_mode)
        sn_server_load_data(s, b, false); /* its memory as before the restart */
    if (sn_agg_add(s->agg, b->key, b->ds) < 0) {
        sn_instn_free(b);
        return -ENOMEM;
    }
    s->span_base = b;
    if (!s->fleet_mode)
        sn_span_metrics_base_on(s->spanm);
    return 0;
}

void sn_span_base_close(struct sn_server *s)
{
    sn_instn_free(s->span_base);
    s->span_base = NULL;
}

/* ---- Filling an instrumentation's memory --------------------------------------------------- */

static int64_t align_down(int64_t t, int64_t g)
{
    return t - ((t % g) + g) % g;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The seconds the base's memory holds for sure at now (its retention); older ones are final in
 * the store (a span that late is refused as late). */
static int64_t mem_start(int64_t now)
{
    return now - SN_SPAN_BASE_RETENTION + 1;
}

static int64_t fill_from(const struct sn_span_base_fill *x)
{
    int64_t g = x->in->granularity ? x->in->granularity : 1;
    return align_down(x->now - (int64_t)x->in->retention, g);
}

/* The end of what the fill covers (exclusive): everything up to the base's future on a single
 * server, the fleet's boundary there. */
static int64_t fill_to(const struct sn_span_base_fill *x)
{
    int64_t to = x->now + SN_DS_MAX_FUTURE + 1;
    return x->until < to ? x->until : to;
}

/* Under span metrics' write lock: references, no copies. */
static void fill_snap(void *arg)
{
    struct sn_span_base_fill *x = arg;
    struct sn_server *s = x->s;
    x->now = sn_now();
    int64_t from = fill_from(x), to = fill_to(x), m = mem_start(x->now);
    int64_t lo = from > m ? from : m, hi = to > m ? to : m; /* memory's part */
    if (sn_agg_view_open(s->agg, SN_SPAN_BASE_KEY, lo, hi, &x->bv) < 0 ||
        sn_agg_view_open(s->agg, x->in->key, from, to, &x->iv) < 0) {
        sn_agg_view_close(x->bv);
        x->bv = NULL;
    }
}

/* The fill's frames into *out, *nout (r: the instrumentation to re-key for; NULL: the one
 * running in span metrics). Returns 0 or -errno. */
static int fill_frames(struct sn_span_base_fill *x, const struct sn_span_rekey *r,
                       struct sn_wire_frame **out, size_t *nout)
{
    struct sn_server *s = x->s;
    const struct sn_instn *in = x->in;
    int64_t g = in->granularity ? in->granularity : 1, from = fill_from(x), m = mem_start(x->now);
    int64_t to = fill_to(x), older = to < m ? to : m;
    const struct sn_ds_slot **mem, **is;
    struct sn_ds_slot **recs = NULL;
    struct sn_wire_frame *f = NULL;
    int64_t *have = NULL;
    size_t nrec = 0, nf = 0, capf = 0;
    bool values;
    int rc = 0;

    if (!x->bv) {
        rc = -ENOMEM;
        goto out;
    }
    /* the seconds older than the base's memory: from its records */
    if (from < older && (rc = sn_store_read(s->store, SN_SPAN_BASE_KEY, SN_TIER_RAW, from, older,
                                            &recs, &nrec, &values)) < 0) {
        if (rc != -ENOENT)
            goto out;
        rc = 0;
    }
    size_t nmem = sn_agg_view_slots(x->bv, &mem), ni = x->iv ? sn_agg_view_slots(x->iv, &is) : 0;
    /* the slots it held (its own records, restored at a restart) are its own */
    if (ni && !(have = malloc(ni * sizeof(*have)))) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < ni; i++)
        have[i] = align_down(is[i]->t, g);
    if (ni)
        qsort(have, ni, sizeof(*have), cmp_i64);
    for (size_t i = 0; i < nrec + nmem; i++) {
        const struct sn_ds_slot *b = i < nrec ? recs[i] : mem[i - nrec];
        int64_t t = align_down(b->t, g);
        if (b->t >= to || (ni && bsearch(&t, have, ni, sizeof(*have), cmp_i64)))
            continue;
        struct sn_wire_frame *a = sn_grow(f, &capf, nf + 1, sizeof(*a));
        if (!a) {
            rc = -ENOMEM;
            goto out;
        }
        f = a;
        rc = r ? sn_span_metrics_rekey(r, b, x->host, &f[nf], NULL)
               : sn_span_metrics_rekey_key(s->spanm, in->key, b, x->host, &f[nf], NULL);
        if (rc < 0)
            goto out;
        if (f[nf].total || f[nf].over_cap)
            nf++;
        else
            sn_wire_frame_fini(&f[nf]);
    }
out:
    for (size_t i = 0; i < nrec; i++)
        sn_ds_slot_unref(recs[i]);
    free(recs);
    free(have);
    if (rc < 0) {
        sn_span_metrics_frames_free(f, nf);
        f = NULL;
        nf = 0;
    }
    *out = f;
    *nout = nf;
    return rc;
}

static void fill_run(void *arg, const struct sn_span_rekey *r)
{
    struct sn_span_base_fill *x = arg;
    struct sn_wire_frame *f = NULL;
    size_t nf = 0;
    int rc = fill_frames(x, r, &f, &nf);
    const struct sn_wire_frame **fp = nf ? malloc(nf * sizeof(*fp)) : NULL;
    int *rcs = nf ? malloc(nf * sizeof(*rcs)) : NULL;
    if (nf && (!rcs || !fp))
        rc = -ENOMEM;
    if (rc == 0 && nf) { /* as frames of its one source: the store writes them as its own */
        for (size_t i = 0; i < nf; i++)
            fp[i] = &f[i];
        sn_flow_frames(x->s, fp, nf, x->now, false, rcs, NULL);
    }
    if (rc < 0)
        sn_log(SN_LOG_WARN, "serve",
               "instrumentation %s: its past is not filled from the spans received before: %s",
               x->in->key, sn_strerror(rc));
    free(rcs);
    free(fp);
    sn_span_metrics_frames_free(f, nf);
}

void sn_span_base_fill_init(struct sn_span_base_fill *x, struct sn_server *s,
                            const struct sn_instn *in)
{
    *x = (struct sn_span_base_fill){.s = s, .in = in, .host = s->host, .until = INT64_MAX};
    x->f = (struct sn_span_fill){fill_snap, fill_run, x};
}

void sn_span_base_fill_fini(struct sn_span_base_fill *x)
{
    sn_agg_view_close(x->bv);
    sn_agg_view_close(x->iv);
    x->bv = x->iv = NULL;
}

int sn_span_base_fill_fleet(struct sn_server *s, const struct sn_instn *in, int64_t until,
                            const char *host)
{
    struct sn_span_base_fill x = {.s = s, .in = in, .host = host, .until = until};
    struct sn_wire_frame *f = NULL;
    size_t nf = 0, sent = 0;
    int rc;

    fill_snap(&x);
    /* what in holds of these seconds is not its own past: the publishers' fill of the
     * seconds after the boundary can share a period of its granularity with them */
    sn_agg_view_close(x.iv);
    x.iv = NULL;
    rc = fill_frames(&x, NULL, &f, &nf);
    for (size_t i = 0; rc == 0 && i < nf; i++) {
        char id[SN_FLEET_HOST_MAX + sizeof(x.in->key) + 48];
        snprintf(id, sizeof(id), "%s.base.%s.%" PRId64, host, in->key, f[i].t);
        if ((rc = sn_fleet_publish_frame_id(s->fleet, &f[i], id)) == 0)
            sent++;
    }
    sn_span_base_fill_fini(&x);
    sn_span_metrics_frames_free(f, nf);
    if (rc < 0)
        sn_log(SN_LOG_WARN, "fleet",
               "instrumentation %s: its past before %" PRId64
               " is not filled from the fleet's base (%zu of %zu seconds published): %s",
               in->key, until, sent, nf, sn_strerror(rc));
    else if (sent)
        sn_log(SN_LOG_INFO, "fleet",
               "instrumentation %s: %zu seconds of its past before %" PRId64
               " published from the fleet's base",
               in->key, sent, until);
    return rc < 0 ? rc : (int)sent;
}

/* ---- History before an instrumentation existed --------------------------------------------- */

struct before {
    struct sn_server *s;
    const struct sn_instn *in;
    struct sn_ds_opts o; /* the instrumentation's dataset's */
};

/* The frames re-keyed from the base's records f[0..n), all in the period starting at t, as one
 * slot of that period (a dataset of one slot, fed them as it would be live). */
static struct sn_ds_slot *slot_of(const struct before *b, int64_t t, int64_t period,
                                  const struct sn_wire_frame *f, size_t n)
{
    struct sn_ds_opts o = b->o;
    const struct sn_ds_slot *one = NULL;
    o.granularity = (uint32_t)period;
    o.retention = (uint32_t)period;
    o.key_cap = 0;
    struct sn_dataset *ds = sn_ds_create(&o);
    if (!ds)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (sn_ds_add(ds, &f[i], t + period - 1) < 0) {
            sn_ds_destroy(ds);
            return NULL;
        }
    size_t k = sn_ds_slots_ref(ds, t, t + 1, &one);
    sn_ds_destroy(ds);
    if (k)
        return (struct sn_ds_slot *)one; /* referenced: the caller's to unref */
    return sn_ds_slot_new(t);
}

static int before_read(void *arg, enum sn_tier tier, int64_t from, int64_t to,
                       struct sn_ds_slot ***out, size_t *n)
{
    const struct before *b = arg;
    struct sn_server *s = b->s;
    struct sn_ds_slot **recs = NULL, **res = NULL;
    struct sn_wire_frame *f = NULL;
    size_t nrec = 0, nres = 0, capr = 0, nf = 0, capf = 0;
    bool values;
    int rc;
    int64_t period =
        tier == SN_TIER_RAW ? (b->in->granularity ? b->in->granularity : 1) : sn_tier_period(tier);

    *out = NULL;
    *n = 0;
    if ((rc = sn_store_read(s->store, SN_SPAN_BASE_KEY, tier, from, to, &recs, &nrec, &values)) < 0)
        return rc == -ENOENT ? 0 : rc;
    /* a slot of the instrumentation's per period (raw: its granularity; the base's is 1 s) */
    for (size_t i = 0; i <= nrec && rc == 0; i++) {
        int64_t t = i < nrec ? align_down(recs[i]->t, period) : 0;
        if (nf && (i == nrec || t != align_down(f[0].t, period))) {
            struct sn_ds_slot *sl = slot_of(b, align_down(f[0].t, period), period, f, nf);
            struct sn_ds_slot **a = sl ? sn_grow(res, &capr, nres + 1, sizeof(*a)) : NULL;
            if (!a) {
                sn_ds_slot_unref(sl);
                rc = -ENOMEM;
                break;
            }
            res = a;
            res[nres++] = sl;
            sn_span_metrics_frames_free(f, nf);
            f = NULL;
            nf = capf = 0;
        }
        if (i == nrec)
            break;
        struct sn_wire_frame *a = sn_grow(f, &capf, nf + 1, sizeof(*a));
        if (!a) {
            rc = -ENOMEM;
            break;
        }
        f = a;
        if ((rc = sn_span_metrics_rekey_key(s->spanm, b->in->key, recs[i], s->host, &f[nf],
                                            NULL)) == 0)
            nf++;
    }
    sn_span_metrics_frames_free(f, nf);
    for (size_t i = 0; i < nrec; i++)
        sn_ds_slot_unref(recs[i]);
    free(recs);
    if (rc < 0) {
        for (size_t i = 0; i < nres; i++)
            sn_ds_slot_unref(res[i]);
        free(res);
        return rc == -ENOENT ? 0 : rc; /* -ENOENT: it no longer runs here */
    }
    *out = res;
    *n = nres;
    return 0;
}

int sn_span_base_view(struct sn_server *s, const struct sn_instn *in,
                      const struct sn_history_pick *p, int64_t from, int64_t to,
                      struct sn_agg_view **out)
{
    struct before b = {s, in, {0}};
    if (p->memory || !s->span_base || !in->persist || !in->metric ||
        in->metric->metric != SN_METRIC_SPANS || sn_agg_opts(s->agg, in->key, &b.o) < 0)
        return sn_history_view(s->store, s->agg, in->key, p, from, to, out);
    /* its own records from its creation on, rounded up to the tier's period: no period is
     * half its own */
    int64_t period =
        p->tier == SN_TIER_RAW ? (in->granularity ? in->granularity : 1) : sn_tier_period(p->tier);
    int64_t created = in->crtime_ms / 1000;
    int64_t since = align_down(created + period - 1, period);
    return sn_history_view_before(s->store, s->agg, in->key, p, from, to, since, before_read, &b,
                                  out);
}

bool sn_span_base_follows(const struct sn_server *s, const struct sn_instn *in)
{
    return s->span_base && in->metric && in->metric->metric == SN_METRIC_SPANS;
}

void sn_span_base_stats(struct sn_server *s, uint64_t *spans, uint64_t *keys)
{
    struct sn_agg_view *v = NULL;
    const struct sn_ds_slot **sl;
    int64_t now = sn_now();
    *spans = s->spanm ? sn_span_metrics_base_spans(s->spanm) : 0;
    *keys = 0;
    if (!s->span_base || sn_agg_view_open(s->agg, SN_SPAN_BASE_KEY, now - 1, now, &v) < 0)
        return;
    if (sn_agg_view_slots(v, &sl) == 1)
        *keys = sl[0]->n;
    sn_agg_view_close(v);
}
