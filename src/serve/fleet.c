/*
 * `sonde serve --nats`: the server as a node of a fleet; see fleet.h for what it does, and
 * docs/fleet.md for the names on the bus and the failure behaviour.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/grow.h"
#include "core/log.h"
#include "fleet/fleet_rec.h"
#include "fleet/names.h"
#include "fleet/span_msg.h"
#include "fleet/span_past.h"
#include "fleet/rendezvous.h"
#include "store/tiers.h"
#include "serve/fleet.h"
#include "serve/fleet_int.h"
#include "serve/flow.h"
#include "serve/instn_def.h"
#include "serve/server.h"
#include "serve/span_base.h"
#include "serve/span_metrics.h"
#include "wire/frame.h"

static void wake(struct sn_fleet *f)
{
    pthread_mutex_lock(&f->mu);
    f->dirty = true;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

/* ---- Definitions ------------------------------------------------------------------------- */

int sn_fleet_claim_id(struct sn_fleet *f, const char *scope, uint64_t *id, char *why, size_t whylen)
{
    char key[SN_FLEET_SUBJECT_MAX], num[32];
    natsStatus st = NATS_OK;

    if (sn_fleet_next_key(scope, key, sizeof(key)) < 0) {
        snprintf(why, whylen, "scope \"%.64s\" has no name on the bus", scope);
        return -EINVAL;
    }
    for (int attempt = 0; attempt < 50; attempt++) {
        kvEntry *e = NULL;
        uint64_t rev;
        st = kvStore_Get(&e, f->defs, key);
        if (st == NATS_NOT_FOUND) {
            snprintf(num, sizeof(num), "2");
            st = kvStore_CreateString(&rev, f->defs, key, num);
            if (st == NATS_OK) {
                *id = 1;
                return 0;
            }
        } else if (st == NATS_OK) {
            const char *v = kvEntry_ValueString(e);
            unsigned long long n = v ? strtoull(v, NULL, 10) : 0;
            uint64_t last = kvEntry_Revision(e);
            kvEntry_Destroy(e);
            if (n < 1)
                n = 1;
            if (n > (unsigned long long)SN_INSTN_ID_MAX) {
                snprintf(why, whylen,
                         "no instrumentation ids left in this scope (the largest is %lld)",
                         SN_INSTN_ID_MAX);
                return -EOVERFLOW;
            }
            snprintf(num, sizeof(num), "%llu", n + 1);
            st = kvStore_UpdateString(&rev, f->defs, key, num, last);
            if (st == NATS_OK) {
                *id = n;
                return 0;
            }
        }
        if (st != NATS_OK && st != NATS_NOT_FOUND && st != NATS_ERR)
            break; /* NATS_ERR: the compare-and-set lost to another node: again */
    }
    snprintf(why, whylen, "the fleet's configuration (NATS) cannot give an id: %s",
             natsStatus_GetText(st));
    return sn_link_err(st) ? sn_link_err(st) : -EIO;
}

int sn_fleet_put_def(struct sn_fleet *f, const struct sn_instn *in, char *why, size_t whylen)
{
    char key[SN_FLEET_SUBJECT_MAX];
    json_t *def = sn_instn_def_json(in), *agent = sn_instn_agent_def(f->s, in);
    json_t *v = def && agent ? json_pack("{s:i,s:s,s:O,s:O}", "v", 1, "key", in->key, "def", def,
                                         "agent", agent)
                             : NULL;
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    int rc = 0;

    json_decref(def);
    json_decref(agent);
    json_decref(v);
    if (!text) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    if (sn_fleet_def_key(in->key, key, sizeof(key)) < 0) {
        snprintf(why, whylen, "instrumentation %s has no name on the bus", in->key);
        rc = -EINVAL;
    } else {
        uint64_t rev;
        natsStatus st = kvStore_PutString(&rev, f->defs, key, text);
        if (st != NATS_OK) {
            snprintf(why, whylen, "the fleet's configuration (NATS) cannot be written: %s",
                     natsStatus_GetText(st));
            rc = sn_link_err(st) ? sn_link_err(st) : -EIO;
        }
    }
    free(text);
    return rc;
}

int sn_fleet_delete_def(struct sn_fleet *f, const char *key)
{
    char k[SN_FLEET_SUBJECT_MAX];
    if (sn_fleet_def_key(key, k, sizeof(k)) < 0)
        return -EINVAL;
    natsStatus st = kvStore_Delete(f->defs, k);
    return st == NATS_OK ? 0 : sn_link_err(st) ? sn_link_err(st) : -EIO;
}

static void base_fill(struct sn_fleet *f, const char *inst, const json_t *def);

/* One entry of the definitions bucket, as the watcher sees it. */
static void on_def(struct sn_fleet *f, kvEntry *e)
{
    char inst[SN_SCOPE_MAX + 24], why[512];
    const char *k = kvEntry_Key(e);

    if (sn_fleet_parse_def_key(k, inst, sizeof(inst)) < 0)
        return; /* next.<scope>, or junk */
    if (kvEntry_Operation(e) != kvOp_Put) {
        if (f->s->spanm && sn_span_metrics_has(f->s->spanm, inst))
            sn_span_metrics_disable(f->s->spanm, inst);
        if (sn_server_forget(f->s, inst) == 0)
            sn_log(SN_LOG_INFO, "fleet", "instrumentation %s deleted", inst);
        wake(f);
        return;
    }
    json_error_t jerr;
    json_t *v = json_loadb(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), 0, &jerr);
    const json_t *def = json_object_get(v, "def");
    const char *vk = json_string_value(json_object_get(v, "key"));
    if (!json_is_object(def) || !vk || strcmp(vk, inst) != 0) {
        atomic_fetch_add(&f->frames_bad, 1);
        sn_log(SN_LOG_WARN, "fleet", "%s: not a definition of %s: ignored", k, inst);
    } else {
        int rc = sn_server_adopt(f->s, def, why, sizeof(why));
        const json_t *agent = json_object_get(v, "agent");
        if (rc < 0) {
            sn_log(SN_LOG_WARN, "fleet", "%s: refused: %s", k, why);
        } else {
            atomic_fetch_add(&f->defs_applied, 1);
            /* trace.spans: every node counts the spans it takes (serve/fleet_spans.c), a new
             * one from its past of them (fleet/span_past.h), and from the fleet's base before
             * that past (serve/span_base.h) */
            bool spans = f->span_past && json_is_object(agent) && sn_span_metrics_handles(agent);
            if (spans &&
                sn_span_past_enable(
                    f->span_past, inst, agent, f->s->key_cap,
                    (uint32_t)json_integer_value(json_object_get(def, "retention-time")),
                    (uint32_t)json_integer_value(json_object_get(def, "granularity")),
                    json_integer_value(json_object_get(def, "crtime")), why, sizeof(why)) < 0)
                sn_log(SN_LOG_WARN, "fleet", "%s: span metrics refused: %s", k, why);
            else if (spans && rc == 1)
                base_fill(f, inst, def);
        }
    }
    json_decref(v);
    wake(f);
}

static int load_defs(struct sn_fleet *f, bool first, char *why, size_t whylen);

/* The first of key's owners by rendezvous hashing into id (f->mu held); false: none. */
static bool first_owner_locked(struct sn_fleet *f, const char *key, char *id, size_t len);

/* A trace.spans instrumentation just created (def, its key inst): on an owner of the base that
 * has caught up with it, its retention's seconds before its boundary from the fleet's base
 * (serve/span_base.h). The base's owners publish the same frames under the same message ids
 * (the bus stores one); a definition heard again later (a restart, the watcher made again)
 * is not filled again: only within SN_SPAN_PAST_KEEP - SN_SPAN_PAST_RETENTION seconds of its
 * creation. */
static void base_fill(struct sn_fleet *f, const char *inst, const json_t *def)
{
    char host[SN_FLEET_HOST_MAX + 1];
    int64_t crtime_ms = json_integer_value(json_object_get(def, "crtime"));
    struct sn_instn *in;

    if (!f->s->span_base || !sn_fleet_serves(f, SN_SPAN_BASE_KEY) || crtime_ms <= 0 ||
        sn_now_ms() - crtime_ms > (SN_SPAN_PAST_KEEP - SN_SPAN_PAST_RETENTION) * 1000LL ||
        !(in = calloc(1, sizeof(*in))))
        return;
    snprintf(in->key, sizeof(in->key), "%s", inst);
    in->retention = (uint32_t)json_integer_value(json_object_get(def, "retention-time"));
    in->granularity = (uint32_t)json_integer_value(json_object_get(def, "granularity"));
    pthread_mutex_lock(&f->mu);
    bool named = first_owner_locked(f, SN_SPAN_BASE_KEY, host, sizeof(host));
    pthread_mutex_unlock(&f->mu);
    if (named && in->retention > SN_SPAN_PAST_RETENTION)
        sn_span_base_fill_fleet(f->s, in, sn_span_past_since(crtime_ms), host);
    sn_instn_free(in);
}

/* A watcher's loop: each entry to fn until stop (seen every 500 ms). The watcher is made
 * again (keys: "inst.>", or NULL for every key) when f->watch_gen moves: the link came back,
 * or the members' watcher heard nothing for 3 s although this node's own heartbeat passes
 * through it each second (its consumer lived on a server that died); after, when not NULL,
 * runs once it is made again. The thread owns *w.
 *
 * A replaced watcher is not destroyed at once but kept until the loop ends (the newest
 * WATCH_RETIRED of them; older ones are destroyed then): cnats 3.4.1 frees a JetStream
 * subscription it is making again after a reconnect while kvWatcher_Destroy frees it too (a
 * heap-use-after-free that corrupted a node's heap in test_fleet_spans' server kill). */
#define WATCH_RETIRED 16
static void watch(struct sn_fleet *f, kvWatcher **w, kvStore *kv, const char *keys,
                  void (*fn)(struct sn_fleet *, kvEntry *), void (*after)(struct sn_fleet *),
                  bool silence_is_loss)
{
    unsigned gen = atomic_load(&f->watch_gen);
    int64_t heard = sn_mono_ms();
    kvWatcher *retired[WATCH_RETIRED] = {0};
    unsigned nretired = 0;

    while (!atomic_load(&f->stop)) {
        if (gen != atomic_load(&f->watch_gen)) {
            kvWatchOptions wo;
            kvWatcher *nw = NULL;
            kvWatchOptions_Init(&wo);
            natsStatus st =
                keys ? kvStore_Watch(&nw, kv, keys, &wo) : kvStore_WatchAll(&nw, kv, &wo);
            if (st != NATS_OK) {
                nats_Sleep(500); /* the bus is not back yet */
                continue;
            }
            /* not stopped either (an unsubscribe takes the same path in cnats): its pending
             * entries are bounded by the subscription's limits until it is destroyed */
            kvWatcher_Destroy(retired[nretired % WATCH_RETIRED]); /* NULL: a no-op */
            retired[nretired++ % WATCH_RETIRED] = *w;
            *w = nw;
            gen = atomic_load(&f->watch_gen);
            heard = sn_mono_ms();
            if (after)
                after(f);
        }
        kvEntry *e = NULL;
        natsStatus st = kvWatcher_Next(&e, *w, 500);
        if (st == NATS_OK) {
            heard = sn_mono_ms();
            if (e) {
                fn(f, e);
                kvEntry_Destroy(e);
            }
        } else if (st == NATS_TIMEOUT) {
            if (silence_is_loss && sn_mono_ms() - heard > 3000) {
                sn_log(SN_LOG_WARN, "fleet", "the fleet's buckets are silent: watching again");
                atomic_fetch_add(&f->watch_gen, 1);
            }
        } else if (!atomic_load(&f->stop)) { /* the watcher ended under us: again */
            atomic_fetch_add(&f->watch_gen, 1);
            nats_Sleep(200);
        }
    }
    for (unsigned i = 0; i < WATCH_RETIRED; i++)
        kvWatcher_Destroy(retired[i]);
}

/* After the definitions' watcher was made again: what was deleted meanwhile is forgotten. */
static void defs_again(struct sn_fleet *f)
{
    char why[256];
    load_defs(f, false, why, sizeof(why));
    wake(f);
}

static void *watch_defs(void *arg)
{
    struct sn_fleet *f = arg;
    watch(f, &f->wdefs, f->defs, "inst.>", on_def, defs_again, false);
    return NULL;
}

/* The bucket's definitions into the server: every one, and none of the server's that the
 * bucket lacks (deleted while this node was away). An empty bucket takes the server's own
 * (a single host's data directory becoming the fleet's first node). */
static int load_defs(struct sn_fleet *f, bool first, char *why, size_t whylen)
{
    kvKeysList keys = {0};
    natsStatus st = kvStore_Keys(&keys, f->defs, NULL);
    size_t n = 0;
    struct sn_instn **mine;

    if (st != NATS_OK && st != NATS_NOT_FOUND) {
        snprintf(why, whylen, "cannot read the fleet's definitions: %s", natsStatus_GetText(st));
        return -EIO;
    }
    mine = sn_server_list(f->s, NULL, &n);
    if (first && (st == NATS_NOT_FOUND || keys.Count == 0)) {
        for (size_t i = 0; mine && i < n; i++) {
            char w[512];
            if (sn_fleet_put_def(f, mine[i], w, sizeof(w)) < 0)
                sn_log(SN_LOG_WARN, "fleet", "instrumentation %s not uploaded: %s", mine[i]->key,
                       w);
        }
        /* the next ids: past every one in use */
        for (size_t i = 0; mine && i < n; i++) {
            char k[SN_FLEET_SUBJECT_MAX], num[32];
            uint64_t rev;
            if (sn_fleet_next_key(mine[i]->scope, k, sizeof(k)) == 0) {
                uint64_t next = 0;
                for (size_t j = 0; j < n; j++)
                    if (strcmp(mine[j]->scope, mine[i]->scope) == 0 && mine[j]->id >= next)
                        next = mine[j]->id + 1;
                snprintf(num, sizeof(num), "%" PRIu64, next);
                kvStore_PutString(&rev, f->defs, k, num);
            }
        }
        if (n)
            sn_log(SN_LOG_INFO, "fleet", "the fleet had no definitions: %zu uploaded", n);
    } else {
        for (size_t i = 0; mine && i < n; i++) {
            char k[SN_FLEET_SUBJECT_MAX];
            kvEntry *e = NULL;
            if (sn_fleet_def_key(mine[i]->key, k, sizeof(k)) < 0 ||
                kvStore_Get(&e, f->defs, k) == NATS_NOT_FOUND) {
                sn_log(SN_LOG_INFO, "fleet", "instrumentation %s is no longer in the fleet",
                       mine[i]->key);
                sn_server_forget(f->s, mine[i]->key);
            }
            kvEntry_Destroy(e);
        }
    }
    for (size_t i = 0; mine && i < n; i++)
        sn_instn_free(mine[i]);
    free(mine);
    kvKeysList_Destroy(&keys);
    return 0;
}

/* The tenants: a node started with --tenants puts them in the bucket (key "tenants"); a node
 * started without takes them from there as it opens (sn_fleet_fetch_tenants()). */
static void share_tenants(struct sn_fleet *f)
{
    uint64_t rev;
    if (!f->s->tenants)
        return;
    json_t *j = sn_tenants_json(f->s->tenants);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (!text || kvStore_PutString(&rev, f->defs, "tenants", text) != NATS_OK)
        sn_log(SN_LOG_WARN, "fleet", "the tenants could not be shared with the fleet");
    free(text);
    json_decref(j);
}

struct sn_tenants *sn_fleet_fetch_tenants(const struct sn_link_opts *o)
{
    struct sn_link *l = NULL;
    struct sn_tenants *t = NULL;
    kvStore *kv = NULL;
    kvEntry *e = NULL;
    char why[512];

    if (sn_link_open(o, NULL, 10000, &l, why, sizeof(why)) < 0)
        return NULL; /* sn_fleet_open() says why */
    if (js_KeyValue(&kv, sn_link_js(l), SN_FLEET_KV_DEFS) == NATS_OK &&
        kvStore_Get(&e, kv, "tenants") == NATS_OK) {
        if (sn_tenants_parse(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), &t, why, sizeof(why)) ==
            0)
            sn_log(SN_LOG_INFO, "fleet", "tenants from the fleet: %zu", t->n);
        else
            sn_log(SN_LOG_WARN, "fleet", "the fleet's tenants are refused: %s", why);
    }
    kvEntry_Destroy(e);
    kvStore_Destroy(kv);
    sn_link_close(l);
    return t;
}

/* ---- Members ------------------------------------------------------------------------------ */

static struct member *member_find(struct sn_fleet *f, char kind, const char *name)
{
    for (size_t i = 0; i < f->nm; i++)
        if (f->m[i].kind == kind && strcmp(f->m[i].name, name) == 0)
            return &f->m[i];
    return NULL;
}

/* An agent's "running" into the bus's statuses: what it runs now, and none of what it
 * stopped (prev: its heartbeat before, or NULL). Called without f->mu. */
static void mirror_agent(struct sn_fleet *f, const char *host, const json_t *prev,
                         const json_t *now)
{
    const json_t *run = json_object_get(now, "running"), *was = json_object_get(prev, "running");
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)run, key, v)
    {
        json_int_t rc = json_integer_value(json_object_get(v, "rc"));
        const char *why = json_string_value(json_object_get(v, "why"));
        const json_t *old = json_object_get(was, key);
        if (old && json_equal(old, v))
            continue;
        if (rc > 0 || rc < -4095)
            rc = -EPROTO;
        sn_flow_report_status(f->s, host, key, (int)rc, why);
    }
    json_object_foreach((json_t *)was, key, v)
    {
        if (!json_object_get(run, key))
            sn_flow_clear_status(f->s, host, key);
    }
}

static void on_member(struct sn_fleet *f, kvEntry *e)
{
    atomic_store(&f->members_heard_ms, sn_mono_ms());
    char kind, name[SN_FLEET_HOST_MAX + 1];
    json_t *v = NULL, *prev = NULL;
    bool gone = kvEntry_Operation(e) != kvOp_Put;

    if (sn_fleet_parse_member_key(kvEntry_Key(e), &kind, name, sizeof(name)) < 0)
        return;
    if (!gone) {
        v = json_loadb(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), 0, NULL);
        if (!json_is_object(v)) {
            json_decref(v);
            atomic_fetch_add(&f->frames_bad, 1);
            return;
        }
    }
    pthread_mutex_lock(&f->mu);
    struct member *m = member_find(f, kind, name);
    if (gone) {
        if (m) {
            prev = m->v;
            *m = f->m[--f->nm];
        }
    } else {
        if (!m) {
            struct member *p = sn_grow(f->m, &f->capm, f->nm + 1, sizeof(*p));
            if (p) {
                f->m = p;
                m = &f->m[f->nm++];
                memset(m, 0, sizeof(*m));
                m->kind = kind;
                snprintf(m->name, sizeof(m->name), "%s", name);
            }
        }
        if (m) {
            prev = m->v;
            m->v = json_incref(v);
            m->seen_ms = sn_mono_ms();
        }
    }
    if (kind == 'n')
        f->dirty = true;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    if (kind == 'a')
        mirror_agent(f, name, prev, v);
    if (kind == 'n' && v && strcmp(name, f->id) != 0) {
        const char *key;
        json_t *t;
        json_object_foreach(json_object_get(v, "access"), key, t)
        {
            if (json_is_integer(t))
                sn_server_touch(f->s, key, json_integer_value(t));
        }
    }
    json_decref(prev);
    json_decref(v);
}

static void *watch_members(void *arg)
{
    struct sn_fleet *f = arg;
    watch(f, &f->wmembers, f->members, NULL, on_member, NULL, true);
    return NULL;
}

/* Forgets members silent too long (nodes: their share moves; agents: they run nothing). */
static void expire_members(struct sn_fleet *f, int64_t now)
{
    /* this node's own heartbeat passes through the watcher each second: when even that was
     * not heard, the watcher is what fell silent, not the members (it is made again) */
    if (now - atomic_load(&f->members_heard_ms) > 1500)
        return;
    for (;;) {
        char name[SN_FLEET_HOST_MAX + 1];
        json_t *prev = NULL;
        char kind = 0;
        pthread_mutex_lock(&f->mu);
        for (size_t i = 0; i < f->nm; i++) {
            struct member *m = &f->m[i];
            int64_t dead = m->kind == 'n' ? SN_FLEET_NODE_DEAD_MS : SN_FLEET_AGENT_DEAD_MS;
            if (now - m->seen_ms <= dead || (m->kind == 'n' && strcmp(m->name, f->id) == 0))
                continue;
            kind = m->kind;
            snprintf(name, sizeof(name), "%s", m->name);
            prev = m->v;
            *m = f->m[--f->nm];
            f->dirty = true;
            break;
        }
        pthread_mutex_unlock(&f->mu);
        if (!kind)
            return;
        sn_log(SN_LOG_INFO, "fleet", "%s %s: silent for %d s, gone", kind == 'n' ? "node" : "agent",
               name, (kind == 'n' ? SN_FLEET_NODE_DEAD_MS : SN_FLEET_AGENT_DEAD_MS) / 1000);
        if (kind == 'a')
            mirror_agent(f, name, prev, NULL);
        json_decref(prev);
    }
}

/* ---- Owning: consumers of frames ---------------------------------------------------------- */

/* One frame off the bus for o's instrumentation (msg borrowed): checked (the subject, the
 * frame's own id and host must agree: anyone with credentials can publish) and put in b. */
void sn_fleet_take_frame(struct sn_fleet *f, struct owned *o, natsMsg *msg,
                         struct sn_fleet_batch *b)
{
    char inst[SN_SCOPE_MAX + 24], host[SN_FLEET_HOST_MAX + 1];
    struct sn_wire_frame *fr = &b->fr[b->n];

    if (sn_fleet_parse_frame_subject(natsMsg_GetSubject(msg), inst, sizeof(inst), host,
                                     sizeof(host)) < 0 ||
        strcmp(inst, o->key) != 0) {
        atomic_fetch_add(&f->frames_foreign, 1);
        return;
    }
    if (sn_wire_frame_decode(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), fr) < 0) {
        atomic_fetch_add(&f->frames_bad, 1);
        return;
    }
    if (!fr->id || !fr->host || strcmp(fr->id, inst) != 0 || strcmp(fr->host, host) != 0) {
        atomic_fetch_add(&f->frames_foreign, 1); /* a forged or misrouted frame */
        sn_wire_frame_fini(fr);
        return;
    }
    if (b->n++ == 0)
        b->since_ms = sn_mono_ms();
    if (b->n == SN_FLEET_BATCH)
        sn_fleet_take_flush(f, o, b);
}

uint64_t sn_fleet_take_flush(struct sn_fleet *f, struct owned *o, struct sn_fleet_batch *b)
{
    const struct sn_wire_frame *fp[SN_FLEET_BATCH];
    int rcs[SN_FLEET_BATCH];
    int64_t now = sn_now(), last = atomic_load(&o->last_t);
    uint64_t taken = 0;

    if (!b->n)
        return 0;
    for (size_t i = 0; i < b->n; i++)
        fp[i] = &b->fr[i];
    sn_flow_frames(f->s, fp, b->n, now, false, rcs, NULL);
    for (size_t i = 0; i < b->n; i++) {
        int rc = rcs[i];
        if (rc == SN_DS_LATE && b->fr[i].t < b->skip_before)
            continue;           /* a second the store had when this node took the share over */
        if (rc == SN_DS_LATE) { /* older than memory: to the store */
            rc = sn_flow_store(f->s, &b->fr[i], now);
            atomic_fetch_add(&f->frames_late, 1);
        }
        if (rc == SN_DS_MISMATCH || rc == -EINVAL) {
            atomic_fetch_add(&f->frames_bad, 1);
        } else {
            taken++;
            if (b->fr[i].t > last)
                last = b->fr[i].t;
        }
    }
    atomic_fetch_add(&f->frames, taken);
    atomic_fetch_add(&f->batches, 1);
    atomic_fetch_add(&o->frames, taken);
    if (last > atomic_load(&o->last_t))
        atomic_store(&o->last_t, last);
    sn_fleet_take_drop(b);
    return taken;
}

void sn_fleet_take_drop(struct sn_fleet_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        sn_wire_frame_fini(&b->fr[i]);
    b->n = 0;
    b->since_ms = 0;
}

/* A consumer's message. Frames wait in o's batch: a burst (every host sends its second at the
 * second's end) arrives over a few tens of milliseconds, and each frame finds the stream with
 * nothing more for it yet. The batch is handed over when it is full or SN_FLEET_BATCH_MS after
 * its first frame (here, or by the balancer when no message comes meanwhile), and when a
 * replay has caught up (the share answers once its memory is whole). */
static void on_frame_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    struct owned *o = closure;
    jsMsgMetaData *meta = NULL;
    bool caught_up = false, known = false;
    (void)nc;
    (void)sub;

    pthread_mutex_lock(&o->batch_mu);
    if (!atomic_load(&o->active)) { /* not ours any more: whoever owns it again replays */
        sn_fleet_take_drop(&o->batch);
        pthread_mutex_unlock(&o->batch_mu);
        natsMsg_Destroy(msg);
        return;
    }
    atomic_store(&o->heard_ms, sn_mono_ms());
    if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
        uint64_t seq = meta->Sequence.Stream;
        known = true;
        atomic_store(&o->pending, meta->NumPending);
        caught_up = meta->NumPending == 0;
        jsMsgMetaData_Destroy(meta);
        if (seq <= atomic_load(&o->last_seq)) { /* seen: a consumer restarted behind it */
            atomic_fetch_add(&o->f->redelivered, 1);
            pthread_mutex_unlock(&o->batch_mu);
            natsMsg_Destroy(msg);
            return;
        }
        atomic_store(&o->last_seq, seq);
    }
    sn_fleet_take_frame(o->f, o, msg, &o->batch);
    natsMsg_Destroy(msg);
    if (!known || (caught_up && !atomic_load(&o->ready)) ||
        sn_mono_ms() - o->batch.since_ms >= SN_FLEET_BATCH_MS)
        sn_fleet_take_flush(o->f, o, &o->batch);
    if (caught_up) /* what arrives from now on is new to the store, whatever its second */
        o->batch.skip_before = 0;
    pthread_mutex_unlock(&o->batch_mu);
    if (caught_up && !atomic_load(&o->ready)) /* the replay's last frame: it answers now */
        atomic_store(&o->ready, true);
}

/* Hands over the batches older than SN_FLEET_BATCH_MS whose consumer had no message since (the
 * balancer, every SN_FLEET_BATCH_MS / 2). */
static void flush_stale(struct sn_fleet *f)
{
    pthread_mutex_lock(&f->mu);
    size_t n = f->nown;
    pthread_mutex_unlock(&f->mu);
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&f->mu);
        struct owned *o = f->own[i];
        pthread_mutex_unlock(&f->mu);
        pthread_mutex_lock(&o->batch_mu);
        if (o->batch.n && sn_mono_ms() - o->batch.since_ms >= SN_FLEET_BATCH_MS &&
            atomic_load(&o->active))
            sn_fleet_take_flush(f, o, &o->batch);
        pthread_mutex_unlock(&o->batch_mu);
    }
}

/* After o's consumer is gone (no callback to come): what its batch holds is handed over while
 * o is ours (its sequence numbers are taken: a new consumer starts after them), else dropped. */
static void batch_end(struct sn_fleet *f, struct owned *o)
{
    pthread_mutex_lock(&o->batch_mu);
    if (atomic_load(&o->active))
        sn_fleet_take_flush(f, o, &o->batch);
    else
        sn_fleet_take_drop(&o->batch);
    pthread_mutex_unlock(&o->batch_mu);
}

/* ---- Frames from this node's own sources (POST /ca/ingest, /ca/import) ------------------ */

int sn_fleet_publish_frame(struct sn_fleet *f, const struct sn_wire_frame *fr)
{
    return sn_fleet_publish_frame_id(f, fr, NULL);
}

int sn_fleet_publish_frame_id(struct sn_fleet *f, const struct sn_wire_frame *fr, const char *msgid)
{
    return sn_fleet_frame_send(f->link, fr, msgid);
}

/* Starts consuming key's frames: from seq + 1 when seq, else from the start of its retention
 * (memory rebuilt from the stream). f->mu not held. */
static int subscribe(struct sn_fleet *f, struct owned *o, uint64_t seq, uint32_t retention,
                     int64_t *start_ns)
{
    char filter[SN_FLEET_SUBJECT_MAX];
    jsSubOptions so;
    natsSubscription *sub = NULL;
    jsErrCode jerr = 0;

    if (sn_fleet_frame_filter(o->key, filter, sizeof(filter)) < 0)
        return -EINVAL;
    jsSubOptions_Init(&so);
    so.Stream = SN_FLEET_FRAMES_STREAM;
    so.Ordered = true;
    if (seq) {
        so.Config.DeliverPolicy = js_DeliverByStartSequence;
        so.Config.OptStartSeq = seq + 1;
    } else {
        /* a second inside the retention: frames older than memory would go to the store,
         * which already holds them */
        so.Config.DeliverPolicy = js_DeliverByStartTime;
        so.Config.OptStartTime = (sn_now_ms() - ((int64_t)retention - 2) * 1000) * 1000000;
        if (start_ns)
            *start_ns = so.Config.OptStartTime;
    }
    natsStatus st =
        js_Subscribe(&sub, sn_link_js(f->link), filter, on_frame_msg, o, NULL, &so, &jerr);
    if (st != NATS_OK) {
        sn_log(SN_LOG_WARN, "fleet", "instrumentation %s: cannot consume its frames: %s (%d)",
               o->key, natsStatus_GetText(st), (int)jerr);
        return sn_link_err(st) ? sn_link_err(st) : -EIO;
    }
    natsSubscription_SetPendingLimits(sub, -1, 256 * 1024 * 1024);
    o->sub = sub;
    return 0;
}

static void unsubscribe(struct owned *o)
{
    if (!o->sub)
        return;
    natsSubscription_Unsubscribe(o->sub);
    natsSubscription_Destroy(o->sub);
    o->sub = NULL;
    batch_end(o->f, o);
}

static struct owned *owned_get(struct sn_fleet *f, const char *key, bool make)
{
    for (size_t i = 0; i < f->nown; i++)
        if (strcmp(f->own[i]->key, key) == 0)
            return f->own[i];
    if (!make)
        return NULL;
    struct owned **p = sn_grow(f->own, &f->capown, f->nown + 1, sizeof(*p));
    struct owned *o = calloc(1, sizeof(*o));
    if (!p || !o) {
        free(o);
        if (p)
            f->own = p;
        return NULL;
    }
    f->own = p;
    o->f = f;
    pthread_mutex_init(&o->batch_mu, NULL);
    snprintf(o->key, sizeof(o->key), "%s", key);
    f->own[f->nown++] = o;
    return o;
}

/* The live nodes (this one included) as rendezvous input; ids point into f->m or f. */
static size_t live_nodes(struct sn_fleet *f, struct sn_hrw_node *out, size_t max)
{
    size_t n = 0;
    bool self = false;
    for (size_t i = 0; i < f->nm && n < max; i++) {
        if (f->m[i].kind != 'n')
            continue;
        out[n].id = f->m[i].name;
        out[n].zone = json_string_value(json_object_get(f->m[i].v, "zone"));
        self |= strcmp(f->m[i].name, f->id) == 0;
        n++;
    }
    if (!self && n < max)
        out[n++] = (struct sn_hrw_node){.id = f->id, .zone = f->zone};
    return n;
}

static bool first_owner_locked(struct sn_fleet *f, const char *key, char *id, size_t len)
{
    struct sn_hrw_node nodes[256];
    size_t idx[SN_FLEET_OWNERS];
    size_t n = live_nodes(f, nodes, 256);
    if (sn_hrw_owners(key, nodes, n, SN_FLEET_OWNERS, idx) == 0)
        return false;
    snprintf(id, len, "%s", nodes[idx[0]].id);
    return true;
}

/* The key whose owners own key: a trace.spans instrumentation's are the base's
 * (serve/span_base.h). Takes the server's lock: call without f->mu. */
static const char *owning_key(struct sn_fleet *f, const char *key)
{
    pthread_rwlock_rdlock(&f->s->lock);
    const struct sn_instn *in = sn_server_find_key(f->s, key);
    bool with_base = in && sn_span_base_follows(f->s, in);
    pthread_rwlock_unlock(&f->s->lock);
    return with_base ? SN_SPAN_BASE_KEY : key;
}

bool sn_fleet_owns_locked(struct sn_fleet *f, const char *key)
{
    struct sn_hrw_node nodes[256];
    size_t idx[SN_FLEET_OWNERS];
    size_t n = live_nodes(f, nodes, 256);
    size_t k = sn_hrw_owners(key, nodes, n, SN_FLEET_OWNERS, idx);
    for (size_t i = 0; i < k; i++)
        if (strcmp(nodes[idx[i]].id, f->id) == 0)
            return true;
    return false;
}

/* The shard of the trace store key names ("spans/<shard>"), or NULL (an instrumentation's). */
static struct span_shard *shard_of_key(struct sn_fleet *f, const char *key)
{
    char *end;
    if (strncmp(key, "spans/", 6) != 0)
        return NULL;
    unsigned long k = strtoul(key + 6, &end, 10);
    return end != key + 6 && !*end && k < SN_FLEET_SPAN_SHARDS ? &f->shards[k] : NULL;
}

bool sn_fleet_owns(struct sn_fleet *f, const char *key)
{
    struct span_shard *sh = shard_of_key(f, key);
    if (sh)
        return atomic_load(&sh->active);
    pthread_mutex_lock(&f->mu);
    struct owned *o = owned_get(f, key, false);
    bool yes = o && atomic_load(&o->active);
    pthread_mutex_unlock(&f->mu);
    return yes;
}

bool sn_fleet_serves(struct sn_fleet *f, const char *key)
{
    struct span_shard *sh = shard_of_key(f, key);
    if (sh)
        return atomic_load(&sh->active) && atomic_load(&sh->ready);
    pthread_mutex_lock(&f->mu);
    struct owned *o = owned_get(f, key, false);
    bool yes = o && atomic_load(&o->active) && atomic_load(&o->ready);
    pthread_mutex_unlock(&f->mu);
    return yes;
}

/* Whether node member m says it owns key and has caught up with it (its heartbeat). */
static bool member_serves(const struct member *m, const char *key)
{
    size_t i;
    json_t *o;
    if (strncmp(key, "spans/", 6) == 0) { /* a shard of the trace store: "spans" in its beat */
        json_int_t shard = strtoll(key + 6, NULL, 10);
        json_array_foreach(json_object_get(m->v, "spans"), i, o)
        {
            if (json_integer_value(o) == shard)
                return true;
        }
        return false;
    }
    json_array_foreach(json_object_get(m->v, "owned"), i, o)
    {
        if (json_is_object(o) && json_is_true(json_object_get(o, "ready")) &&
            strcmp(json_string_value(json_object_get(o, "key")) ?: "", key) == 0)
            return true;
    }
    return false;
}

int sn_fleet_owner_api(struct sn_fleet *f, const char *key, size_t nth, char *out, size_t len)
{
    struct sn_hrw_node nodes[256];
    size_t idx[SN_FLEET_OWNERS], seen = 0;
    int rc = -ENOENT;
    const char *hrw = owning_key(f, key);

    pthread_mutex_lock(&f->mu);
    size_t n = live_nodes(f, nodes, 256);
    size_t k = sn_hrw_owners(hrw, nodes, n, SN_FLEET_OWNERS, idx);
    /* owners that have caught up first; then the others (they answer with what they have) */
    for (int pass = 0; pass < 2 && rc < 0; pass++)
        for (size_t i = 0; i < k && rc < 0; i++) {
            if (strcmp(nodes[idx[i]].id, f->id) == 0)
                continue;
            struct member *m = member_find(f, 'n', nodes[idx[i]].id);
            const char *api = m ? json_string_value(json_object_get(m->v, "api")) : NULL;
            if (!api || (pass == 0) != member_serves(m, key))
                continue;
            if (seen++ == nth) {
                snprintf(out, len, "%s", api);
                rc = 0;
            }
        }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

size_t sn_fleet_node_apis(struct sn_fleet *f, char (*out)[160], size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->nm && n < max; i++) {
        const char *api = json_string_value(json_object_get(f->m[i].v, "api"));
        if (f->m[i].kind != 'n' || strcmp(f->m[i].name, f->id) == 0 || !api)
            continue;
        snprintf(out[n++], 160, "%s", api);
    }
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* Makes this node's consumer of key (retention: its memory's seconds) follow ownership, by
 * rendezvous hashing of hrw (the key itself, or the base's: serve/span_base.h); resub: the
 * link came back. */
static void follow(struct sn_fleet *f, const char *key, const char *hrw, uint32_t retention,
                   bool resub)
{
    pthread_mutex_lock(&f->mu);
    bool mine = sn_fleet_owns_locked(f, hrw);
    struct owned *o = owned_get(f, key, mine);
    pthread_mutex_unlock(&f->mu);
    if (!o)
        return;
    if (mine && !atomic_load(&o->active)) {
        /* a new owner: memory from the stream alone (what it held is stale) */
        sn_server_reset_data(f->s, o->key);
        atomic_store(&o->last_seq, 0);
        atomic_store(&o->ready, false);
        atomic_store(&o->since_ms, sn_mono_ms());
        atomic_store(&o->heard_ms, sn_mono_ms());
        o->lost = false;
        atomic_store(&o->active, true);
        int64_t newest = INT64_MIN, start_ns = 0;
        bool known = sn_store_newest(f->s->store, o->key, SN_TIER_RAW, &newest) == 0;
        /* memory is replayed whole (its seconds replace the store's when written); frames
         * older than it are merged into the store, which has them up to its newest */
        pthread_mutex_lock(&o->batch_mu);
        o->batch.skip_before = known ? newest + 1 : 0;
        pthread_mutex_unlock(&o->batch_mu);
        if (subscribe(f, o, 0, retention, &start_ns) == 0) {
            /* the store's seconds end at newest: those up to the replay's start are on the
             * stream (a node that was down, or owned it before and not since) */
            bool gap = known && (newest + 1) * 1000000000LL < start_ns;
            atomic_fetch_add(&f->replays, 1);
            sn_log(SN_LOG_INFO, "fleet",
                   "instrumentation %s: owned; replaying its %" PRIu32 " s of frames%s", o->key,
                   retention,
                   !known ? ", and its history before them"
                   : gap  ? ", and the seconds its store lacks before them"
                          : "");
            if (!known || gap) /* its history, or the store's gap, from the streams */
                sn_fleet_queue_rebuild(f, o, known ? newest : INT64_MIN, start_ns);
        } else {
            atomic_store(&o->active, false); /* taken over again at the next pass */
        }
    } else if (mine && (resub || !o->sub || o->lost)) {
        /* its consumer again, from the frame after the last one taken: the link came back,
         * the consumer is gone on the servers (one of them died), or a restart failed */
        atomic_fetch_add(&f->restarts, 1);
        unsubscribe(o);
        o->lost = false;
        atomic_store(&o->heard_ms, sn_mono_ms());
        if (subscribe(f, o, atomic_load(&o->last_seq), retention, NULL) < 0)
            wake(f); /* tried again soon */
    } else if (!mine && atomic_load(&o->active)) {
        atomic_store(&o->active, false);
        atomic_store(&o->ready, false);
        unsubscribe(o);
        sn_server_reset_data(f->s, o->key);
        sn_log(SN_LOG_INFO, "fleet", "instrumentation %s: owned elsewhere now", o->key);
    }
}

/* Makes what this node consumes follow ownership: starts consumers for what it owns now
 * (its memory of each rebuilt from the stream), stops and forgets the rest. The base of
 * trace.spans (serve/span_base.h) is owned and consumed as an instrumentation. */
static void rebalance(struct sn_fleet *f)
{
    size_t n = 0;
    struct sn_instn **all = sn_server_list(f->s, NULL, &n);
    bool resub;

    pthread_mutex_lock(&f->mu);
    resub = f->resubscribe;
    f->resubscribe = false;
    pthread_mutex_unlock(&f->mu);
    sn_fleet_spans_rebalance(f, resub);
    for (size_t i = 0; all && i < n; i++)
        follow(f, all[i]->key, sn_span_base_follows(f->s, all[i]) ? SN_SPAN_BASE_KEY : all[i]->key,
               all[i]->retention, resub);
    if (f->s->span_base)
        follow(f, SN_SPAN_BASE_KEY, SN_SPAN_BASE_KEY, f->s->span_base->retention, resub);
    /* deleted instrumentations */
    pthread_mutex_lock(&f->mu);
    for (size_t j = 0; j < f->nown; j++) {
        struct owned *o = f->own[j];
        bool there = f->s->span_base && strcmp(o->key, SN_SPAN_BASE_KEY) == 0;
        for (size_t i = 0; all && i < n && !there; i++)
            there = strcmp(all[i]->key, o->key) == 0;
        if (!there && o->sub) {
            atomic_store(&o->active, false);
            natsSubscription *sub = o->sub;
            o->sub = NULL;
            pthread_mutex_unlock(&f->mu);
            natsSubscription_Unsubscribe(sub);
            natsSubscription_Destroy(sub);
            batch_end(f, o);
            pthread_mutex_lock(&f->mu);
        }
    }
    pthread_mutex_unlock(&f->mu);
    for (size_t i = 0; all && i < n; i++)
        sn_instn_free(all[i]);
    free(all);
}

/* ---- The heartbeat ------------------------------------------------------------------------ */

static void beat(struct sn_fleet *f)
{
    char key[SN_FLEET_SUBJECT_MAX];
    json_t *owned = json_array();
    uint64_t rev;

    int64_t now = sn_now();
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->nown; i++) {
        struct owned *o = f->own[i];
        if (!atomic_load(&o->active))
            continue;
        int64_t last = atomic_load(&o->last_t);
        json_array_append_new(
            owned, json_pack("{s:s,s:b,s:I,s:I,s:I,s:I}", "key", o->key, "ready",
                             atomic_load(&o->ready), "frames", (json_int_t)atomic_load(&o->frames),
                             "pending", (json_int_t)atomic_load(&o->pending), "last_frame",
                             (json_int_t)last, "lag_s", (json_int_t)(last ? now - last : -1)));
    }
    pthread_mutex_unlock(&f->mu);
    /* what was read here lately: every node's idle clocks (an owner reaps) follow every read */
    char keys[256][SN_SCOPE_MAX + 24];
    int64_t at[256];
    json_t *access = json_object();
    size_t na = sn_server_accessed_since(f->s, now - 5, keys, at, 256);
    for (size_t i = 0; i < na; i++)
        json_object_set_new(access, keys[i], json_integer(at[i]));
    json_t *v =
        json_pack("{s:i,s:s,s:s,s:s,s:s,s:s,s:I,s:o,s:o,s:o,s:I,s:I}", "v", 1, "kind", "node", "id",
                  f->id, "zone", f->zone, "api", f->api, "version", SN_VERSION, "started_ms",
                  (json_int_t)f->started_ms, "owned", owned, "spans", sn_fleet_spans_beat(f),
                  "access", access, "frames", (json_int_t)atomic_load(&f->frames), "frames_bad",
                  (json_int_t)atomic_load(&f->frames_bad));
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (text && sn_fleet_node_key(f->id, key, sizeof(key)) == 0)
        kvStore_PutString(&rev, f->members, key, text);
    free(text);
}

/* An owner whose consumer has delivered nothing a second after it began has nothing to
 * replay (an instrumentation without frames yet): it is ready. */
static void mark_ready(struct sn_fleet *f)
{
    int64_t now = sn_mono_ms();
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->nown; i++) {
        struct owned *o = f->own[i];
        if (atomic_load(&o->active) && !atomic_load(&o->ready) && atomic_load(&o->last_seq) == 0 &&
            now - atomic_load(&o->since_ms) > 1000)
            atomic_store(&o->ready, true);
    }
    pthread_mutex_unlock(&f->mu);
}

/* A consumer silent for 3 s is asked after (at most every 3 s): one whose server died is gone
 * (ephemeral consumers live on one server), and cnats does not always bring it back; the
 * balancer then restarts it from the frame after the last one taken. Busy ones are alive. */
static void check_consumers(struct sn_fleet *f)
{
    int64_t now = sn_mono_ms();
    pthread_mutex_lock(&f->mu);
    size_t n = f->nown;
    pthread_mutex_unlock(&f->mu);
    for (size_t i = 0; i < n && !atomic_load(&f->stop); i++) {
        pthread_mutex_lock(&f->mu);
        struct owned *o = f->own[i];
        pthread_mutex_unlock(&f->mu);
        if (!atomic_load(&o->active) || !o->sub || now - atomic_load(&o->heard_ms) < 3000 ||
            now - o->checked_ms < 3000)
            continue;
        o->checked_ms = now;
        jsConsumerInfo *ci = NULL;
        jsErrCode jerr = 0;
        natsStatus st = natsSubscription_GetConsumerInfo(&ci, o->sub, NULL, &jerr);
        jsConsumerInfo_Destroy(ci);
        if (st != NATS_OK) {
            sn_log(SN_LOG_WARN, "fleet", "instrumentation %s: its consumer is gone (%s): again",
                   o->key, natsStatus_GetText(st));
            o->lost = true;
            wake(f);
        }
    }
}

/* The heartbeat's thread: beats and forgets the silent, once a second, never held up by a
 * rebalance (which may take a while: a consumer per instrumentation taken over). */
static void *heartbeat(void *arg)
{
    struct sn_fleet *f = arg;

    while (!atomic_load(&f->stop)) {
        beat(f);
        expire_members(f, sn_mono_ms());
        pthread_mutex_lock(&f->mu);
        if (!atomic_load(&f->stop)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += SN_FLEET_NODE_BEAT_MS / 1000;
            pthread_cond_timedwait(&f->beat_cv, &f->mu, &ts);
        }
        pthread_mutex_unlock(&f->mu);
    }
    return NULL;
}

/* The balancer's thread: makes what this node consumes follow ownership whenever members or
 * definitions change (wake()), the link comes back, or a consumer is found behind; marks a
 * replaying owner ready once it caught up; hands over batches that waited long enough. */
static void *balancer(void *arg)
{
    struct sn_fleet *f = arg;

    while (!atomic_load(&f->stop)) {
        pthread_mutex_lock(&f->mu);
        bool dirty = f->dirty || f->resubscribe;
        f->dirty = false;
        pthread_mutex_unlock(&f->mu);
        if (dirty)
            rebalance(f);
        flush_stale(f);
        mark_ready(f);
        sn_fleet_spans_mark_ready(f);
        sn_fleet_spans_save(f, false);
        check_consumers(f);
        pthread_mutex_lock(&f->mu);
        if (!f->dirty && !f->resubscribe && !atomic_load(&f->stop)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += SN_FLEET_BATCH_MS / 2 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&f->cv, &f->mu, &ts);
        }
        pthread_mutex_unlock(&f->mu);
    }
    return NULL;
}

/* ---- Life ----------------------------------------------------------------------------------- */

static void link_down(void *arg)
{
    struct sn_fleet *f = arg;
    atomic_fetch_add(&f->link_down, 1);
    sn_log(SN_LOG_WARN, "fleet", "NATS connection lost: reconnecting");
}

static void link_up(void *arg)
{
    struct sn_fleet *f = arg;
    sn_log(SN_LOG_INFO, "fleet", "NATS connection back");
    atomic_fetch_add(&f->watch_gen, 1); /* the watchers made again, from the current values */
    pthread_mutex_lock(&f->mu);
    f->resubscribe = true;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

int sn_fleet_open(struct sn_server *s, const struct sn_fleet_opts *o, struct sn_fleet **out,
                  char *why, size_t whylen)
{
    struct sn_fleet *f = calloc(1, sizeof(*f));
    int rc;

    *out = NULL;
    if (!f) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    f->s = s;
    f->started_ms = sn_now_ms();
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    pthread_cond_init(&f->jobs_cv, NULL);
    pthread_cond_init(&f->beat_cv, NULL);
    snprintf(f->zone, sizeof(f->zone), "%s", o->zone ? o->zone : "");
    if (o->api && o->api[0])
        snprintf(f->api, sizeof(f->api), "%s", o->api);
    else
        snprintf(f->api, sizeof(f->api), "http://127.0.0.1:%d", sn_server_port(s));
    if (o->id && o->id[0])
        snprintf(f->id, sizeof(f->id), "%s", o->id);
    else
        snprintf(f->id, sizeof(f->id), "%.200s-%d", s->host, sn_server_port(s));
    if (!sn_fleet_host_valid(f->id)) {
        snprintf(why, whylen, "node id \"%.64s\": letters, digits, '.', '-' and '_' only", f->id);
        rc = -EINVAL;
        goto fail;
    }
    struct sn_link_events ev = {.down = link_down, .up = link_up, .arg = f};
    /* the frames stream keeps at least the raw tier's time (a new owner rebuilds from it) */
    struct sn_link_opts lo = *o->link;
    int64_t raw_keep = sn_store_options(s->store)->tiers.keep[SN_TIER_RAW];
    if (!lo.frames_keep_s && raw_keep > 2 * 86400)
        lo.frames_keep_s = raw_keep;
    if ((rc = sn_link_open(&lo, &ev, 10000, &f->link, why, whylen)) < 0 ||
        (rc = sn_link_ensure(f->link, 15000, why, whylen)) < 0)
        goto fail;
    f->defs = sn_link_kv(f->link, SN_FLEET_KV_DEFS);
    f->members = sn_link_kv(f->link, SN_FLEET_KV_MEMBERS);
    if (!f->defs || !f->members) {
        snprintf(why, whylen, "the fleet's buckets are missing");
        rc = -EIO;
        goto fail;
    }
    share_tenants(f);
    if (s->spanm &&
        (rc = sn_span_past_open(s->spanm, f->link, f->id, s->key_cap, &f->span_past)) < 0)
        goto fail;
    s->fleet = f; /* creates from now on claim their ids in the bucket */
    if ((rc = load_defs(f, true, why, whylen)) < 0)
        goto fail;
    kvWatchOptions wo;
    kvWatchOptions_Init(&wo);
    if (kvStore_Watch(&f->wdefs, f->defs, "inst.>", &wo) != NATS_OK ||
        kvStore_WatchAll(&f->wmembers, f->members, &wo) != NATS_OK) {
        snprintf(why, whylen, "cannot watch the fleet's buckets");
        rc = -EIO;
        goto fail;
    }
    beat(f);
    atomic_store(&f->members_heard_ms, sn_mono_ms());
    f->dirty = true;
    if (!(f->tdefs_on = pthread_create(&f->tdefs, NULL, watch_defs, f) == 0) ||
        !(f->tmembers_on = pthread_create(&f->tmembers, NULL, watch_members, f) == 0)) {
        rc = -EAGAIN;
        goto fail;
    }
    if ((rc = sn_fleet_history_start(f, why, whylen)) < 0)
        goto fail;
    f->spans_keep_s = o->spans_keep_s;
    if ((rc = sn_fleet_spans_start(f, why, whylen)) < 0)
        goto fail;
    if ((rc = sn_fleet_rec_open(f->link, s->recorder, f->id, &f->rec, why, whylen)) < 0)
        goto fail;
    if (!(f->tbeat_on = pthread_create(&f->tbeat, NULL, heartbeat, f) == 0) ||
        !(f->tbalance_on = pthread_create(&f->tbalance, NULL, balancer, f) == 0)) {
        rc = -EAGAIN;
        goto fail;
    }
    sn_log(SN_LOG_INFO, "fleet", "node %s%s%s in the fleet (replicas %d), API %s", f->id,
           f->zone[0] ? ", zone " : "", f->zone, sn_link_replicas(f->link), f->api);
    *out = f;
    return 0;
fail:
    if (rc == -EAGAIN)
        snprintf(why, whylen, "cannot start a thread");
    sn_fleet_close(f);
    s->fleet = NULL;
    return rc;
}

/* Says goodbye: a delete of node.<id> published as the KV does (a header on the bucket's
 * subject), without waiting for JetStream's answer, so that a bus going away at the same
 * moment (Ctrl-C reaches every process of a demo) never holds the stop. The others move this
 * node's share at once; had it not reached them, they would see the node silent. */
static void goodbye(struct sn_fleet *f)
{
    char key[SN_FLEET_SUBJECT_MAX], subj[SN_FLEET_SUBJECT_MAX + 32];
    natsMsg *m = NULL;

    if (!f->link || !sn_link_up(f->link) || sn_fleet_node_key(f->id, key, sizeof(key)) < 0)
        return;
    snprintf(subj, sizeof(subj), "$KV.%s.%s", SN_FLEET_KV_MEMBERS, key);
    if (natsMsg_Create(&m, subj, NULL, NULL, 0) == NATS_OK &&
        natsMsgHeader_Set(m, "KV-Operation", "DEL") == NATS_OK)
        natsConnection_PublishMsg(sn_link_conn(f->link), m);
    natsMsg_Destroy(m);
    natsConnection_FlushTimeout(sn_link_conn(f->link), 500);
}

void sn_fleet_stop(struct sn_fleet *f)
{
    if (!f || atomic_exchange(&f->stop, true))
        return;
    pthread_mutex_lock(&f->mu);
    pthread_cond_broadcast(&f->cv);
    pthread_cond_broadcast(&f->jobs_cv);
    pthread_cond_broadcast(&f->beat_cv);
    pthread_mutex_unlock(&f->mu);
    /* the watchers' threads wake every 500 ms to see stop, the rebuild's every 2 s */
    if (f->tbeat_on)
        pthread_join(f->tbeat, NULL);
    if (f->tbalance_on)
        pthread_join(f->tbalance, NULL);
    sn_fleet_history_stop(f);
    if (f->tdefs_on)
        pthread_join(f->tdefs, NULL);
    if (f->tmembers_on)
        pthread_join(f->tmembers, NULL);
    for (size_t i = 0; i < f->nown; i++)
        atomic_store(&f->own[i]->active, false);
    sn_fleet_rec_halt(f->rec);
    goodbye(f);
    /* the connection closed first: consumers and watchers then go without a word to the
     * servers (which forget ephemeral consumers by themselves), so a bus that is down cannot
     * hold the stop; after it, no callback runs */
    sn_link_shut(f->link);
    sn_fleet_spans_stop(f);
    if (f->spans_created) /* a clean stop: where every shard is (the tail keeps what waits) */
        sn_fleet_spans_save(f, true);
}

void sn_fleet_close(struct sn_fleet *f)
{
    if (!f)
        return;
    sn_fleet_stop(f);
    sn_link_close(f->link);
    for (size_t i = 0; i < f->nown; i++) {
        natsSubscription_Destroy(f->own[i]->sub);
        sn_fleet_take_drop(&f->own[i]->batch); /* stopping: inactive, nothing to hand over */
        pthread_mutex_destroy(&f->own[i]->batch_mu);
        free(f->own[i]);
    }
    free(f->own);
    kvWatcher_Destroy(f->wdefs);
    kvWatcher_Destroy(f->wmembers);
    for (size_t i = 0; i < f->nm; i++)
        json_decref(f->m[i].v);
    free(f->m);
    sn_fleet_history_fini(f);
    sn_span_past_close(f->span_past);
    sn_fleet_rec_close(f->rec);
    pthread_cond_destroy(&f->jobs_cv);
    pthread_cond_destroy(&f->beat_cv);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

void sn_fleet_stats(struct sn_fleet *f, struct sn_fleet_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->frames = atomic_load(&f->frames);
    out->batches = atomic_load(&f->batches);
    out->redelivered = atomic_load(&f->redelivered);
    out->frames_late = atomic_load(&f->frames_late);
    out->frames_bad = atomic_load(&f->frames_bad);
    out->frames_foreign = atomic_load(&f->frames_foreign);
    out->replays = atomic_load(&f->replays);
    out->restarts = atomic_load(&f->restarts);
    out->rebuilt = atomic_load(&f->rebuilt);
    out->rollups_sent = atomic_load(&f->rollups_sent);
    out->rollups_rebuilt = atomic_load(&f->rollups_rebuilt);
    out->defs_applied = atomic_load(&f->defs_applied);
    out->link_down = atomic_load(&f->link_down);
    out->spans_published = atomic_load(&f->spans_published);
    out->spans_taken = atomic_load(&f->spans_in);
    out->span_msgs_bad = atomic_load(&f->spans_bad);
    out->span_msgs_foreign = atomic_load(&f->spans_foreign);
    for (unsigned i = 0; i < SN_FLEET_SPAN_SHARDS; i++)
        out->span_shards += atomic_load(&f->shards[i].active) && atomic_load(&f->shards[i].ready);
    int64_t now = sn_now();
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->nown; i++) {
        struct owned *o = f->own[i];
        if (!atomic_load(&o->active))
            continue;
        int64_t last = atomic_load(&o->last_t);
        out->owned += strcmp(o->key, SN_SPAN_BASE_KEY) != 0; /* instrumentations, not the base */
        out->pending += atomic_load(&o->pending);
        if (last && now - last > out->lag_s)
            out->lag_s = now - last;
    }
    for (size_t i = 0; i < f->nm; i++) {
        const json_t *v = f->m[i].v;
        out->nodes += f->m[i].kind == 'n';
        if (f->m[i].kind != 'a')
            continue;
        out->agents++;
        out->agent_buffered += (uint64_t)json_integer_value(json_object_get(v, "buffered"));
        out->agent_dropped += (uint64_t)json_integer_value(json_object_get(v, "dropped"));
        out->agent_duplicates += (uint64_t)json_integer_value(json_object_get(v, "duplicates"));
    }
    pthread_mutex_unlock(&f->mu);
}

json_t *sn_fleet_state(struct sn_fleet *f)
{
    json_t *owned = json_array(), *nodes = json_array(), *agents = json_array();
    int64_t now = sn_mono_ms();

    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->nown; i++)
        if (atomic_load(&f->own[i]->active))
            json_array_append_new(
                owned, json_pack("{s:s,s:I,s:I}", "key", f->own[i]->key, "stream_seq",
                                 (json_int_t)atomic_load(&f->own[i]->last_seq), "pending",
                                 (json_int_t)atomic_load(&f->own[i]->pending)));
    for (size_t i = 0; i < f->nm; i++) {
        json_t *m = json_deep_copy(f->m[i].v);
        if (!m)
            continue;
        json_object_set_new(m, "seen_ms_ago", json_integer(now - f->m[i].seen_ms));
        json_array_append_new(f->m[i].kind == 'n' ? nodes : agents, m);
    }
    pthread_mutex_unlock(&f->mu);
    json_t *spans = json_pack("{s:o,s:I,s:I,s:I,s:I,s:I}", "shards", sn_fleet_spans_beat(f),
                              "published", (json_int_t)atomic_load(&f->spans_published), "messages",
                              (json_int_t)atomic_load(&f->span_msgs), "taken",
                              (json_int_t)atomic_load(&f->spans_in), "bad",
                              (json_int_t)atomic_load(&f->spans_bad), "foreign",
                              (json_int_t)atomic_load(&f->spans_foreign));
    return json_pack("{s:s,s:s,s:b,s:o,s:o,s:o,s:o}", "id", f->id, "zone", f->zone, "connected",
                     sn_link_up(f->link), "owned", owned, "nodes", nodes, "agents", agents, "spans",
                     spans);
}

/* ---- The flight recorder ------------------------------------------------------------------ */

struct sn_fleet_rec *sn_fleet_recorder(struct sn_fleet *f)
{
    return f ? f->rec : NULL;
}

static int cmp_json_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_t *sn_fleet_live_hosts(struct sn_fleet *f)
{
    json_t *a = json_array();
    const char **v = NULL;
    size_t n = 0;

    pthread_mutex_lock(&f->mu);
    v = f->nm ? calloc(f->nm, sizeof(*v)) : NULL;
    for (size_t i = 0; v && i < f->nm; i++)
        v[n++] = f->m[i].name;
    if (n)
        qsort(v, n, sizeof(*v), cmp_json_str);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(v[i], v[i - 1]) != 0)
            json_array_append_new(a, json_string(v[i]));
    pthread_mutex_unlock(&f->mu);
    free(v);
    return a;
}
