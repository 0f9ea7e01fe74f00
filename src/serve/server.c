/*
 * The server's state: its life (open, run, close), the instrumentations' list with create,
 * change and delete, the local agent asked to run them, and the tick; see server.h. The
 * definitions file is defs_file.c's, the persisted datasets data_file.c's, the data itself the
 * aggregator's (agg/agg.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/catalog.h"
#include "api/api.h"
#include "core/err.h"
#include "core/file.h"
#include "core/grow.h"
#include "core/log.h"
#include "live/live_rec.h"
#include "live/relay.h"
#include "rec/drain.h"
#include "rec/recorder.h"
#include "serve/triggers.h"
#include "serve/collector.h"
#include "serve/fleet.h"
#include "serve/flow.h"
#include "serve/span_base.h"
#include "serve/span_metrics.h"
#include "trace/sampling.h"
#include "serve/instn_def.h"
#include "serve/server.h"
#include "serve/transform.h"

struct sn_instn *sn_server_find(struct sn_server *s, const char *scope, uint64_t id)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->insts[i]->id == id && strcmp(s->insts[i]->scope, scope) == 0)
            return s->insts[i];
    return NULL;
}

struct sn_instn *sn_server_find_key(struct sn_server *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->insts[i]->key, key) == 0)
            return s->insts[i];
    return NULL;
}

size_t sn_server_count(struct sn_server *s, const char *scope)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        n += strcmp(s->insts[i]->scope, scope) == 0;
    return n;
}

void sn_instn_free(struct sn_instn *in)
{
    if (!in)
        return;
    json_decref(in->predicate);
    json_decref(in->decomposition);
    sn_ds_destroy(in->ds);
    free(in);
}

/* A copy of in for a caller without the lock: its own JSON, no dataset. NULL: out of memory. */
static struct sn_instn *instn_copy(const struct sn_instn *in)
{
    struct sn_instn *c = malloc(sizeof(*c));
    if (!c)
        return NULL;
    *c = *in;
    atomic_store(&c->last_access, atomic_load(&in->last_access));
    c->predicate = json_deep_copy(in->predicate);
    c->decomposition = json_deep_copy(in->decomposition);
    c->ds = NULL;
    if ((in->predicate && !c->predicate) || (in->decomposition && !c->decomposition)) {
        sn_instn_free(c);
        return NULL;
    }
    return c;
}

struct sn_instn *sn_server_get(struct sn_server *s, const char *scope, uint64_t id, bool touch)
{
    struct sn_instn *c = NULL;
    pthread_rwlock_rdlock(&s->lock);
    struct sn_instn *in = sn_server_find(s, scope, id);
    if (in && touch)
        atomic_store(&in->last_access, sn_now());
    if (in)
        c = instn_copy(in);
    pthread_rwlock_unlock(&s->lock);
    return c;
}

struct sn_instn **sn_server_list(struct sn_server *s, const char *scope, size_t *n)
{
    struct sn_instn **v;
    size_t m = 0;

    pthread_rwlock_rdlock(&s->lock);
    v = malloc((s->n ? s->n : 1) * sizeof(*v));
    for (size_t i = 0; v && i < s->n; i++) {
        if (scope && strcmp(s->insts[i]->scope, scope) != 0)
            continue;
        if (!(v[m] = instn_copy(s->insts[i]))) {
            while (m > 0)
                sn_instn_free(v[--m]);
            free(v);
            v = NULL;
            break;
        }
        m++;
    }
    pthread_rwlock_unlock(&s->lock);
    *n = m;
    return v;
}

void sn_server_state(struct sn_server *s, size_t *n, bool *defs_unsaved)
{
    pthread_rwlock_rdlock(&s->lock);
    *n = s->n;
    *defs_unsaved = s->defs_unsaved;
    pthread_rwlock_unlock(&s->lock);
}

json_t *sn_instn_agent_def(const struct sn_server *s, const struct sn_instn *in)
{
    json_t *pred = json_incref(in->predicate);
    const struct sn_tenant *t = in->scope[0] ? sn_tenants_find(s->tenants, in->scope) : NULL;

    if (in->scope[0]) { /* the tenant's containers: (pred) and (container under any prefix) */
        json_t *any = json_array();
        for (size_t i = 0; t && i < t->ncgroups; i++)
            json_array_append_new(any, json_pack("{s:[s,s]}", "under", "container", t->cgroups[i]));
        json_t *scope = json_array_size(any) == 1 ? json_incref(json_array_get(any, 0))
                        : json_array_size(any) == 0
                            ? json_pack("{s:[s,s]}", "eq", "container", "/nonexistent-scope")
                            : json_pack("{s:O}", "or", any);
        json_decref(any);
        json_t *both = json_object_size(pred) ? json_pack("{s:[O,o]}", "and", pred, scope) : scope;
        json_decref(pred);
        pred = both;
    }
    return json_pack("{s:s,s:s,s:o,s:O}", "module", in->metric->module, "stat", in->metric->stat,
                     "predicate", pred, "decomposition", in->decomposition);
}

/* ------------------------------------------------------------------------------------------
 * The list
 */

/* A failed save of the definitions as what add and remove return: -ENOSPC when space is
 * short, else -EIO; why says which and what was asked. */
static int unsaved(int rc, const char *what, char *why, size_t whylen)
{
    snprintf(why, whylen, "%s: the definitions file cannot be written (%s); nothing was changed",
             what, strerror(-rc));
    return rc == -ENOSPC || rc == -EDQUOT ? -ENOSPC : -EIO;
}

struct sn_dataset *sn_server_new_dataset(const struct sn_server *s, const struct sn_instn *in)
{
    struct sn_ds_opts o = {
        .arity = in->arity == SN_ARITY_SCALAR     ? SN_WIRE_SCALAR
                 : in->arity == SN_ARITY_DISCRETE ? SN_WIRE_DISCRETE
                 : in->keyf                       ? SN_WIRE_NUMERIC_BY_KEY
                                                  : SN_WIRE_NUMERIC,
        .granularity = in->granularity,
        .retention = in->retention,
        .point = in->metric->point,
        .key_cap = s->key_cap,
    };
    return sn_ds_create(&o);
}

int sn_server_append(struct sn_server *s, struct sn_instn *in)
{
    if (s->n == s->cap) {
        struct sn_instn **p = sn_grow(s->insts, &s->cap, s->n + 1, sizeof(*s->insts));
        if (!p)
            return -ENOMEM;
        s->insts = p;
    }
    s->insts[s->n++] = in;
    return 0;
}

static struct sn_instn *unlink_instn(struct sn_server *s, const char *scope, uint64_t id,
                                     bool force, int *save_rc);

int sn_server_add(struct sn_server *s, struct sn_instn *in, char *why, size_t whylen)
{
    json_t *had;
    json_int_t next;
    uint64_t claimed = 0;
    int rc;

    /* in a fleet, the id is the fleet's: claimed in its bucket, never given twice */
    if (s->fleet && (rc = sn_fleet_claim_id(s->fleet, in->scope, &claimed, why, whylen)) < 0)
        return rc == -EOVERFLOW ? rc : -EIO;
    in->ds = sn_server_new_dataset(s, in);
    if (!in->ds) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    pthread_rwlock_wrlock(&s->lock);
    if (in->scope[0] && sn_server_count(s, in->scope) >= SN_TENANT_QUOTA) {
        pthread_rwlock_unlock(&s->lock);
        return -EDQUOT;
    }
    had = json_incref(json_object_get(s->next_ids, in->scope)); /* to undo */
    next = json_integer_value(had);
    in->id = claimed ? claimed : next > 0 ? (uint64_t)next : 1;
    if (in->id > (uint64_t)SN_INSTN_ID_MAX) {
        pthread_rwlock_unlock(&s->lock);
        json_decref(had);
        snprintf(why, whylen, "no instrumentation ids left in this scope (the largest is %lld)",
                 SN_INSTN_ID_MAX);
        return -EOVERFLOW;
    }
    if (in->scope[0])
        snprintf(in->key, sizeof(in->key), "%s/%" PRIu64, in->scope, in->id);
    else
        snprintf(in->key, sizeof(in->key), "%" PRIu64, in->id);
    json_object_set_new(s->next_ids, in->scope, json_integer((json_int_t)in->id + 1));
    rc = sn_server_append(s, in);
    if (rc == 0 && ((rc = sn_server_store_inst(s, in)) < 0 ||
                    (rc = sn_agg_add(s->agg, in->key, in->ds)) < 0)) {
        s->n--;
        sn_store_inst_drop(s->store, in->key);
    }
    if (rc == 0 && (rc = sn_server_save_defs(s)) < 0) {
        s->n--; /* undone: neither the instrumentation nor its id was given out */
        sn_agg_remove(s->agg, in->key);
        sn_store_inst_drop(s->store, in->key);
        rc = unsaved(rc, "cannot create the instrumentation", why, whylen);
    } else if (rc < 0) {
        snprintf(why, whylen, "out of memory");
    }
    if (rc < 0) {
        if (had)
            json_object_set(s->next_ids, in->scope, had);
        else
            json_object_del(s->next_ids, in->scope);
    }
    json_decref(had);
    pthread_rwlock_unlock(&s->lock);
    if (rc < 0)
        return rc;
    rc = sn_flow_enable(s, in, why, whylen);
    /* a source cannot run it (e.g. a USDT probe this host lacks): refuse it; a host without
     * BPF runs none of its kind, and it stands there, not running */
    if (rc < 0) {
        int src;
        /* forced: the refusal stands even when the file cannot say so yet (the tick saves
         * again; defs_unsaved) */
        if (unlink_instn(s, in->scope, in->id, true, &src) != in) /* deleted meanwhile */
            snprintf(why, whylen, "deleted while being created");
        sn_flow_disable(s, in->key); /* where it did start */
        sn_ds_destroy(in->ds);
        in->ds = NULL;
        return -EINVAL;
    }
    return 0;
}

/* Takes the instrumentation out of the list and saves the definitions; the caller owns it
 * then. NULL when there is none, or (unless force) when the save failed: it is put back where
 * it was and *save_rc says why. */
static struct sn_instn *unlink_instn(struct sn_server *s, const char *scope, uint64_t id,
                                     bool force, int *save_rc)
{
    struct sn_instn *in = NULL;
    size_t i;

    *save_rc = 0;
    pthread_rwlock_wrlock(&s->lock);
    for (i = 0; i < s->n; i++)
        if (s->insts[i]->id == id && strcmp(s->insts[i]->scope, scope) == 0) {
            in = s->insts[i];
            memmove(&s->insts[i], &s->insts[i + 1], (s->n - i - 1) * sizeof(*s->insts));
            s->n--;
            break;
        }
    if (in && (*save_rc = sn_server_save_defs(s)) < 0 && !force) {
        memmove(&s->insts[i + 1], &s->insts[i], (s->n - i) * sizeof(*s->insts));
        s->insts[i] = in; /* the slot is there: n was one more a moment ago */
        s->n++;
        in = NULL;
    }
    if (in) {
        sn_agg_remove(s->agg, in->key); /* queries and frames at work finish with their copy */
        /* its records go in the background; a failure to unlink them is logged: they are
         * removed at the next start (the definitions no longer hold it) */
        int drc = sn_store_inst_drop(s->store, in->key);
        if (drc < 0 && drc != -ENOENT)
            sn_log(SN_LOG_WARN, "serve", "instrumentation %s: its history is not deleted yet: %s",
                   in->key, strerror(-drc));
    }
    pthread_rwlock_unlock(&s->lock);
    return in;
}

int sn_server_change(struct sn_server *s, const char *scope, uint64_t id, const json_t *p,
                     struct sn_instn **out, char *why, size_t whylen)
{
    struct sn_instn *changed = NULL;
    int rc = 0;

    if (out)
        *out = NULL;
    pthread_rwlock_wrlock(&s->lock);
    struct sn_instn *in = sn_server_find(s, scope, id);
    if (!in) {
        snprintf(why, whylen, "no such instrumentation");
        rc = -ENOENT;
        goto out;
    }
    atomic_store(&in->last_access, sn_now());
    struct sn_instn next = *in, old = *in;
    if (!sn_instn_set_props(p, &next, false, why, whylen)) {
        rc = -EINVAL;
        goto out;
    }
    /* saved before it is applied or answered: a failed save changes nothing */
    in->retention = next.retention;
    in->idle_max = next.idle_max;
    in->persist = next.persist;
    if ((rc = sn_server_save_defs(s)) < 0) {
        in->retention = old.retention;
        in->idle_max = old.idle_max;
        in->persist = old.persist;
        rc = unsaved(rc, "cannot change the instrumentation", why, whylen);
        goto out;
    }
    /* the dataset's retention changes only after the save, and is the one step that can
     * still fail (-ENOMEM), after which the old properties are saved back */
    if (next.retention != old.retention &&
        (rc = sn_agg_set_retention(s->agg, in->key, next.retention, sn_now())) < 0) {
        in->retention = old.retention;
        in->idle_max = old.idle_max;
        in->persist = old.persist;
        sn_server_save_defs(s); /* on failure the tick saves again (server.h) */
        snprintf(why, whylen, "cannot change the retention: %s", strerror(-rc));
        rc = -ENOMEM;
        goto out;
    }
    sn_server_store_inst(s, in); /* the store's tiers follow retention and persist-data */
    changed = s->fleet ? instn_copy(in) : NULL;
    if (out && !(*out = instn_copy(in))) {
        snprintf(why, whylen, "out of memory");
        rc = -ENOMEM;
    }
out:
    pthread_rwlock_unlock(&s->lock);
    /* in a fleet, the other nodes apply it from the bucket (a failure there: said, and the
     * change stands here; the next change or a restart makes them agree) */
    if (rc == 0 && s->fleet) {
        char w[512];
        if (!changed || sn_fleet_put_def(s->fleet, changed, w, sizeof(w)) < 0)
            sn_log(SN_LOG_WARN, "fleet",
                   "the change of %s%s%" PRIu64 " did not reach the fleet: %s", scope,
                   scope[0] ? "/" : "", id, changed ? w : "out of memory");
    }
    if (changed)
        sn_instn_free(changed);
    return rc;
}

int sn_server_remove(struct sn_server *s, const char *scope, uint64_t id, char *why, size_t whylen)
{
    int save_rc;
    struct sn_instn *in;

    if (s->fleet) { /* the fleet's record first: a delete it does not hold would come back */
        char key[SN_SCOPE_MAX + 24];
        int rc;
        if (scope[0])
            snprintf(key, sizeof(key), "%s/%" PRIu64, scope, id);
        else
            snprintf(key, sizeof(key), "%" PRIu64, id);
        pthread_rwlock_rdlock(&s->lock);
        bool there = sn_server_find(s, scope, id) != NULL;
        pthread_rwlock_unlock(&s->lock);
        if (!there) {
            snprintf(why, whylen, "no such instrumentation");
            return -ENOENT;
        }
        if ((rc = sn_fleet_delete_def(s->fleet, key)) < 0) {
            snprintf(why, whylen,
                     "cannot delete the instrumentation: the fleet's configuration (NATS) "
                     "cannot be written: %s",
                     strerror(-rc));
            return -EIO;
        }
    }
    in = unlink_instn(s, scope, id, false, &save_rc);
    if (!in && s->fleet && save_rc == 0) /* the bucket's watcher forgot it first: done */
        return 0;
    if (!in && save_rc < 0)
        return unsaved(save_rc, "cannot delete the instrumentation", why, whylen);
    if (!in) {
        snprintf(why, whylen, "no such instrumentation");
        return -ENOENT;
    }
    if (!s->fleet) /* in a fleet, deleting its definition was the agents' word */
        sn_flow_disable(s, in->key);
    /* readers have copies, and queries and frames at work hold references to its data in
     * the aggregator (freed with the last of them): nobody can reach it any more */
    sn_instn_free(in);
    return 0;
}

int sn_server_forget(struct sn_server *s, const char *key)
{
    const char *slash = strchr(key, '/');
    char scope[SN_SCOPE_MAX] = "";
    int save_rc;

    if (slash && (size_t)(slash - key) < sizeof(scope))
        snprintf(scope, sizeof(scope), "%.*s", (int)(slash - key), key);
    struct sn_instn *in =
        unlink_instn(s, scope, strtoull(slash ? slash + 1 : key, NULL, 10), true, &save_rc);
    if (!in)
        return -ENOENT;
    sn_instn_free(in);
    return 0;
}

void sn_server_touch(struct sn_server *s, const char *key, int64_t t)
{
    pthread_rwlock_rdlock(&s->lock);
    struct sn_instn *in = sn_server_find_key(s, key);
    if (in) {
        int64_t was = atomic_load(&in->last_access);
        while (was < t && !atomic_compare_exchange_weak(&in->last_access, &was, t))
            ;
    }
    pthread_rwlock_unlock(&s->lock);
}

size_t sn_server_accessed_since(struct sn_server *s, int64_t since, char (*keys)[SN_SCOPE_MAX + 24],
                                int64_t *at, size_t max)
{
    size_t n = 0;
    pthread_rwlock_rdlock(&s->lock);
    for (size_t i = 0; i < s->n && n < max; i++) {
        int64_t t = atomic_load(&s->insts[i]->last_access);
        if (t >= since) {
            snprintf(keys[n], sizeof(keys[n]), "%s", s->insts[i]->key);
            at[n++] = t;
        }
    }
    pthread_rwlock_unlock(&s->lock);
    return n;
}

int sn_server_reset_data(struct sn_server *s, const char *key)
{
    int rc = -ENOENT;

    pthread_rwlock_wrlock(&s->lock);
    struct sn_instn *in = sn_server_find_key(s, key);
    if (!in && s->span_base && strcmp(key, s->span_base->key) == 0)
        in = s->span_base; /* a fleet's base of trace.spans (serve/span_base.h) */
    if (in) {
        struct sn_dataset *ds = sn_server_new_dataset(s, in);
        rc = -ENOMEM;
        if (ds) {
            sn_agg_remove(s->agg, in->key); /* readers at work keep their reference */
            if ((rc = sn_agg_add(s->agg, in->key, ds)) == 0) {
                sn_ds_destroy(in->ds);
                in->ds = ds;
                sn_flow_resync_status(s, in->key); /* the statuses lived in the old entry */
            } else {
                sn_ds_destroy(ds);
            }
        }
    }
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

void sn_server_start_local_all(struct sn_server *s)
{
    char why[512];
    for (size_t i = 0; i < s->n; i++) /* a refusal is the sources' status of it (a warning) */
        if (sn_flow_enable(s, s->insts[i], why, sizeof(why)) < 0)
            sn_log(SN_LOG_WARN, "serve", "instrumentation %s: not running on some host: %s",
                   s->insts[i]->key, why);
}

bool sn_server_local(struct sn_server *s, const char *key)
{
    struct sn_agg_status st;
    return sn_agg_get_status(s->agg, key, s->host, &st) == 0 && st.run == SN_AGG_RUNNING;
}

/* ------------------------------------------------------------------------------------------
 * The tick: expiry, idle reaping, saving
 */

void sn_server_tick(struct sn_server *s, int64_t now)
{
    uint64_t idle[64];
    char scopes[64][SN_SCOPE_MAX], why[512];
    size_t nidle = 0;

    pthread_rwlock_wrlock(&s->lock);
    if (s->defs_unsaved) /* a change that could not be undone is still to be written */
        sn_server_save_defs(s);
    for (size_t i = 0; i < s->n; i++) {
        struct sn_instn *in = s->insts[i];
        /* in a fleet, an owner reaps (value requests reach owners; the others proxy them) */
        if (s->fleet && !sn_fleet_owns(s->fleet, in->key))
            continue;
        if (in->idle_max && now - atomic_load(&in->last_access) > (int64_t)in->idle_max &&
            nidle < 64) {
            idle[nidle] = in->id;
            snprintf(scopes[nidle++], SN_SCOPE_MAX, "%s", in->scope);
        }
    }
    pthread_rwlock_unlock(&s->lock);
    sn_agg_expire(s->agg, now);        /* each instrumentation under its own lock, briefly */
    for (size_t i = 0; i < nidle; i++) /* a failed save keeps it: reaped on a later tick */
        if (sn_server_remove(s, scopes[i], idle[i], why, sizeof(why)) == 0) {
            atomic_fetch_add(&s->c.reaped, 1);
            sn_log(SN_LOG_INFO, "serve", "instrumentation %s%s%" PRIu64 " reaped: idle", scopes[i],
                   scopes[i][0] ? "/" : "", idle[i]);
        }
}

/* ------------------------------------------------------------------------------------------
 * Life: open, run, close
 */

/* The aggregator's listener: new data wakes the parked long polls (api/value.c). */
static void wake_long_polls(void *arg, const char *key, int64_t t)
{
    struct sn_server *s = arg;
    (void)t;
    if (s->http)
        sn_http_wake(s->http, key);
}

/* Kept spans (all of them without tail sampling) into the span store. */
static void keep_spans(void *arg, const struct sn_span_batch *b)
{
    struct sn_server *s = arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (sn_span_store_put_accepted(s->spans, b,
                                   (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec) < 0)
        atomic_fetch_add(&s->c.span_store_errors, b->n);
}

/* The sampling configuration the store keeps ("sampling"; none: sample everything), and the
 * tail sampler following it. */
static int sampling_open(struct sn_server *s)
{
    char *doc = NULL, why[256] = "";
    size_t len;
    json_t *j = NULL;
    int rc;
    if (!(s->sampling = calloc(1, sizeof(*s->sampling))))
        return -ENOMEM;
    if (sn_store_meta_get(s->store, "sampling", &doc, &len) == 0)
        j = json_loadb(doc, len, 0, NULL);
    free(doc);
    if ((rc = sn_sampling_parse(j, s->sampling, why, sizeof(why))) < 0) {
        sn_log(SN_LOG_WARN, "serve",
               "the stored sampling configuration is refused (%s): "
               "sampling everything",
               why);
        rc = sn_sampling_parse(NULL, s->sampling, why, sizeof(why));
    }
    json_decref(j);
    if (rc < 0 || (rc = sn_tail_open(keep_spans, s, &s->tail)) < 0 ||
        (rc = sn_tail_configure(s->tail, s->sampling)) < 0)
        return rc;
    return 0;
}

int sn_server_set_sampling(struct sn_server *s, const json_t *doc, char *why, size_t len)
{
    struct sn_sampling_cfg cfg;
    int rc = sn_sampling_parse(doc, &cfg, why, len);
    if (rc < 0)
        return rc;
    char *text = json_dumps(cfg.doc, JSON_COMPACT);
    if (!text) {
        sn_sampling_cfg_fini(&cfg);
        return -ENOMEM;
    }
    rc = sn_store_meta_put(s->store, "sampling", text, strlen(text));
    free(text);
    if (rc < 0) {
        snprintf(why, len, "the configuration cannot be stored: %s", strerror(-rc));
        sn_sampling_cfg_fini(&cfg);
        return rc;
    }
    if ((rc = sn_tail_configure(s->tail, &cfg)) < 0) {
        sn_sampling_cfg_fini(&cfg);
        return rc;
    }
    pthread_rwlock_wrlock(&s->lock);
    sn_sampling_cfg_fini(s->sampling);
    *s->sampling = cfg;
    pthread_rwlock_unlock(&s->lock);
    return 0;
}

/* The live relay, the drain feeding it and the publisher of live sessions (--live-listen). */
static int live_open(struct sn_server *s, const struct sn_server_opts *o)
{
    struct sn_relay_opts ro = {.addr = o->live_addr, .port = o->live_port};
    int rc = sn_relay_start(&s->relay, &ro);
    if (rc < 0) {
        sn_log(SN_LOG_ERROR, "serve", "the live relay cannot listen on %s:%u: %s", o->live_addr,
               (unsigned)o->live_port, strerror(-rc));
        return rc;
    }
    uint32_t period = o->live_period_ms ? o->live_period_ms : SN_REC_DRAIN_PERIOD_MS;
    struct sn_live_rec_opts lo = {.relay = s->relay, .hostname = s->host, .period_ms = period};
    if ((rc = sn_live_rec_new(&s->live, &lo)) < 0)
        return rc;
    struct sn_rec_drain_opts dro = {
        .period_ms = period, .on_round = sn_live_rec_reap, .round_ctx = s->live};
    if ((rc = sn_rec_drain_start(&s->drain, &dro)) < 0)
        return rc;
    sn_recorder_set_live(s->recorder, s->drain, s->live);
    sn_log(SN_LOG_INFO, "serve", "live relay on %s:%u (flush period %u ms)", o->live_addr,
           (unsigned)sn_relay_port(s->relay), (unsigned)period);
    return 0;
}

int sn_server_open(const struct sn_server_opts *o, struct sn_server **out)
{
    char sdir[600];
    struct sn_server *s = calloc(1, sizeof(*s));
    pthread_rwlockattr_t la;
    int rc;

    *out = NULL;
    if (!s) {
        sn_tenants_free(o->tenants);
        return -ENOMEM;
    }
    s->tenants = o->tenants;
    snprintf(s->datadir, sizeof(s->datadir), "%s", o->datadir);
    snprintf(s->uidir, sizeof(s->uidir), "%s", o->uidir ? o->uidir : "");
    if (gethostname(s->host, sizeof(s->host)) != 0)
        snprintf(s->host, sizeof(s->host), "localhost");
    s->host[sizeof(s->host) - 1] = '\0';
    /* creates, changes and deletes must not wait behind a stream of readers */
    pthread_rwlockattr_init(&la);
    pthread_rwlockattr_setkind_np(&la, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&s->lock, &la);
    pthread_rwlockattr_destroy(&la);
    s->started = sn_now();
    s->key_cap = o->key_cap; /* ingested frames too, not only the local agent's */
    if (!(s->next_ids = json_object()) || sn_recorder_new(&s->recorder, NULL) < 0 ||
        sn_span_metrics_open(&s->spanm) < 0 || sn_agg_create(&s->agg) < 0 ||
        sn_agg_listen(s->agg, wake_long_polls, s) < 0 || sn_flow_open(s) < 0) {
        rc = -ENOMEM;
        goto fail;
    }
    snprintf(sdir, sizeof(sdir), "%s/" SN_RECORDER_SNAPDIR, s->datadir);
    if ((rc = sn_triggers_open(s, sdir, &s->triggers)) < 0)
        goto fail;
    struct sn_store_opts so = {.dir = sdir,
                               .tiers = o->tiers,
                               .max_bytes = o->store_max_bytes,
                               .rollup_keys = o->rollup_keys};
    char why[512];
    snprintf(sdir, sizeof(sdir), "%s/store", s->datadir);
    if (!so.tiers.keep[SN_TIER_RAW])
        sn_tiers_default(&so.tiers);
    if ((rc = sn_store_open(&so, &s->store, why, sizeof(why))) < 0) {
        sn_log(SN_LOG_ERROR, "serve", "%s", why);
        goto fail;
    }
    struct sn_span_store_opts spo = {.retention_s = o->trace_retention,
                                     .max_bytes = o->trace_max_bytes,
                                     .queue = o->trace_queue};
    if ((rc = sn_span_store_open(sn_store_env(s->store), &spo, &s->spans, why, sizeof(why))) < 0) {
        sn_log(SN_LOG_ERROR, "serve", "%s", why);
        goto fail;
    }
    if ((rc = sampling_open(s)) < 0)
        goto fail;
    s->fleet_mode = o->nats != NULL;
    if ((rc = sn_span_base_open(s)) < 0) /* before the store drops what nobody set */
        goto fail;
    if ((rc = sn_server_load_defs(s)) < 0)
        goto fail;
    sn_store_drop_unset(s->store); /* what it cannot drop now, it drops at the next start */
    if ((rc = sn_store_follow(s->store, s->agg)) < 0)
        goto fail;
    if (o->agent && (rc = sn_collector_start(s, o->key_cap, o->trace_self, &s->collector)) < 0) {
        sn_log(SN_LOG_WARN, "serve",
               "the local agent cannot load BPF programs (%s; needs root and a kernel with "
               "BTF): serving ingested data only",
               strerror(-rc));
        s->collector = NULL;
    }
    if (!s->fleet_mode)
        sn_server_start_local_all(s);
    else if (!s->tenants) /* before the API listens: the fleet's, when it has them */
        s->tenants = sn_fleet_fetch_tenants(o->nats);
    s->xforms = sn_xforms_start();
    struct sn_http_opts ho = o->http;
    ho.handler = sn_api_handle;
    ho.limit = sn_api_limit;
    ho.admit = sn_api_admit;
    ho.ctx = s;
    if (sn_http_start(&ho, &s->http) < 0) {
        rc = -EADDRINUSE;
        goto fail;
    }
    /* the listeners of unmodified exporters: the span routes alone */
    const char *span_listen[2] = {o->otlp_listen, o->zipkin_listen};
    struct sn_http **span_http[2] = {&s->http_otlp, &s->http_zipkin};
    for (int i = 0; i < 2; i++) {
        if (!span_listen[i])
            continue;
        struct sn_http_opts so2 = o->http;
        so2.listen = span_listen[i];
        so2.handler = sn_api_handle_spans;
        so2.admit = sn_api_admit_spans;
        so2.limit = sn_api_limit;
        so2.ctx = s;
        if (sn_http_start(&so2, span_http[i]) < 0) {
            rc = -EADDRINUSE;
            goto fail;
        }
        sn_log(SN_LOG_INFO, "serve", "%s on %s", i ? "Zipkin v2" : "OTLP/HTTP", span_listen[i]);
    }
    if (o->live_addr && (rc = live_open(s, o)) < 0)
        goto fail;
    if (!s->drain) { /* disk mode's drain, without a relay */
        struct sn_rec_drain_opts dro = {.period_ms = o->live_period_ms};
        if ((rc = sn_rec_drain_start(&s->drain, &dro)) < 0)
            goto fail;
        sn_recorder_set_live(s->recorder, s->drain, NULL);
    }
    if (o->nats) { /* after the API listens: the heartbeat says where */
        /* where other nodes reach this API: --advertise, else the address it listens on
         * (this host's name when that is every address) */
        char api[300], host[256] = "";
        const char *l = o->http.listen ? o->http.listen : "";
        const char *colon = strrchr(l, ':');
        if (colon && colon - l < (long)sizeof(host))
            snprintf(host, sizeof(host), "%.*s", (int)(colon - l), l);
        if (!host[0] || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "[::]") == 0)
            snprintf(host, sizeof(host), "%s", s->host);
        if (o->advertise)
            snprintf(api, sizeof(api), "%s", o->advertise);
        else
            snprintf(api, sizeof(api), "http://%s:%d", host, sn_http_port(s->http));
        struct sn_fleet_opts fo = {.link = o->nats,
                                   .id = o->node_id,
                                   .zone = o->zone,
                                   .api = api,
                                   .spans_keep_s = o->trace_retention};
        struct sn_fleet *f;
        if ((rc = sn_fleet_open(s, &fo, &f, why, sizeof(why))) < 0) {
            sn_log(SN_LOG_ERROR, "fleet", "%s", why);
            rc = -ENOTCONN;
            goto fail;
        }
        s->fleet = f;
    }
    sn_log(SN_LOG_INFO, "serve", "data in %s; local agent %s; %s", s->datadir,
           s->collector ? "on" : "off", s->tenants ? "tenants configured" : "loopback only");
    *out = s;
    return 0;
fail:
    if (sn_server_close(s) < 0)
        sn_log(SN_LOG_ERROR, "serve",
               "the final save failed (see above): persisted data or definitions are lost; "
               "exiting with status 1");
    return rc;
}

int sn_server_port(const struct sn_server *s)
{
    return sn_http_port(s->http);
}

void sn_server_dump(struct sn_server *s)
{
    struct sn_agg_counters ac;
    size_t n = 0;
    int64_t now = sn_now();
    struct sn_instn **list = sn_server_list(s, NULL, &n);

    sn_agg_counters(s->agg, &ac);
    sn_log(SN_LOG_INFO, "dump",
           "%zu instrumentation(s); frames in %" PRIu64 ", late %" PRIu64 ", unknown %" PRIu64
           ", mismatched %" PRIu64,
           n, ac.frames_in, ac.frames_late, ac.frames_unknown, ac.frames_mismatch);
    for (size_t i = 0; list && i < n; i++) {
        struct sn_instn *in = list[i];
        sn_log(SN_LOG_INFO, "dump",
               "instrumentation %s: %s.%s, granularity %" PRIu32 " s, retention %" PRIu32
               " s, %" PRIu32 " source(s) in its retention%s%s",
               in->key, in->metric->module, in->metric->stat, in->granularity, in->retention,
               sn_agg_sources_since(s->agg, in->key, now - (int64_t)in->retention),
               s->fleet ? (sn_fleet_owns(s->fleet, in->key) ? "; owned here" : "; owned elsewhere")
                        : "",
               in->persist ? "; persisted" : "");
        sn_instn_free(in);
    }
    free(list);
    if (s->store) {
        struct sn_store_stats ss;
        sn_store_stats(s->store, &ss);
        sn_log(SN_LOG_INFO, "dump",
               "store: %" PRIu64 " waiting to be written, %" PRIu64 " commits, %" PRIu64
               " write errors",
               ss.pending, ss.commits, ss.write_errors);
    }
    if (s->fleet) {
        json_t *st = sn_fleet_state(s->fleet);
        char *text = st ? json_dumps(st, JSON_COMPACT) : NULL;
        sn_log(SN_LOG_INFO, "dump", "fleet: %s", text ? text : "?");
        free(text);
        json_decref(st);
    }
}

int sn_server_run(struct sn_server *s, const sigset_t *stop)
{
    for (;;) {
        struct timespec one = {1, 0};
        int sig = sigtimedwait(stop, NULL, &one);
        if (sig == SIGINT || sig == SIGTERM)
            return sig;
        if (sig == SIGUSR1) {
            sn_server_dump(s);
            continue;
        }
        sn_server_tick(s, sn_now());
    }
}

int sn_server_close(struct sn_server *s)
{
    int rc;

    if (!s)
        return 0;
    /* the sources first: no frame then wakes an HTTP server being stopped */
    sn_collector_stop(s->collector);
    s->collector = NULL;
    sn_fleet_stop(s->fleet); /* the fleet's consumers are sources too */
    sn_http_stop(s->http_otlp);
    sn_http_stop(s->http_zipkin);
    sn_http_stop(s->http);
    s->http = s->http_otlp = s->http_zipkin = NULL;
    sn_triggers_stop(s->triggers); /* before the fleet and the recorder its snapshots use */
    sn_fleet_close(s->fleet);      /* no request uses it any more */
    s->fleet = NULL;
    sn_xforms_stop(s->xforms);
    s->xforms = NULL;
    sn_recorder_free(s->recorder); /* no request uses it any more: its sessions stop */
    s->recorder = NULL;
    sn_rec_drain_stop(s->drain); /* no session left in it: the recorder's stopped them */
    sn_live_rec_free(s->live);
    sn_relay_stop(s->relay);
    s->drain = NULL, s->live = NULL, s->relay = NULL;
    sn_flow_close(s);             /* nobody publishes any more */
    rc = sn_server_save_final(s); /* the caller says what a failure means */
    sn_tail_close(s->tail);       /* the traces waiting are decided: the kept ones stored */
    s->tail = NULL;
    if (s->sampling)
        sn_sampling_cfg_fini(s->sampling);
    free(s->sampling);
    int trc = sn_span_store_close(s->spans); /* what is queued is written first */
    s->spans = NULL;
    int src = sn_store_close(s->store); /* after a last write of what memory holds */
    s->store = NULL;
    if (rc == 0)
        rc = src ? src : trc;
    for (size_t i = 0; i < s->n; i++)
        sn_instn_free(s->insts[i]);
    free(s->insts);
    sn_agg_destroy(s->agg);
    sn_triggers_free(s->triggers); /* the aggregator's listener: after it */
    sn_span_base_close(s);
    sn_span_metrics_close(s->spanm);
    json_decref(s->next_ids);
    sn_tenants_free(s->tenants);
    pthread_rwlock_destroy(&s->lock);
    free(s);
    return rc;
}
