/*
 * The agent in a fleet: definitions from the KV bucket, frames to JetStream through the
 * outbox, heartbeats into the members bucket (the design is in fleet/fleet_agent.h).
 *
 * Why three threads of its own beside the agent's: the agent's 1 Hz loop must never wait on
 * the network, so its sink only encodes and queues; the publisher waits on a condition for
 * new frames and sends them; the watcher blocks in kvWatcher_Next() (cnats's watcher is
 * pulled) and writes the heartbeats, whose put waits for JetStream's acknowledgement. The
 * publisher uses a JetStream context of its own on the link's connection, because the
 * acknowledgement handler is an option of the context.
 */
#include "fleet/fleet_agent.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/definition.h"
#include "core/clock.h"
#include "core/log.h"
#include "fleet/fleet_rec.h"
#include "fleet/names.h"
#include "fleet/outbox.h"
#include "fleet/span_past.h"
#include "fleet/span_relay.h"
#include "serve/span_metrics.h"
#include "wire/frame.h"

#define KEY_MAX       96   /* an instrumentation key, with NUL (agent/agent.h) */
#define WHY_MAX       256  /* a status's reason */
#define HEARTBEAT_MS  2000 /* between heartbeats */
#define STALL_MS      5000 /* no acknowledgement of the oldest held: send everything again */
#define ACK_WAIT_MS   5000 /* an asynchronous publish's acknowledgement timeout */
#define BATCH         256  /* messages copied out of the outbox per pass */
#define MAX_PENDING   8192 /* asynchronous publishes in flight */
#define WATCH_POLL_MS 100  /* kvWatcher_Next's wait: how soon the watcher sees a stop */

/* One instrumentation the definitions ask for. */
struct want {
    char kvkey[SN_FLEET_SUBJECT_MAX];
    char key[KEY_MAX];
    json_t *def;                     /* scoped to --cgroup (sn_fleet_scope_def) */
    uint32_t retention, granularity; /* the CA definition's (a trace.spans one's past) */
    int64_t crtime_ms;
};

struct want_set {
    struct want *v;
    size_t n, cap;
};

/* One instrumentation as the agent runs it (or failed to). */
struct inst {
    char key[KEY_MAX];
    json_t *def;
    bool span; /* a trace.spans one: run by the relay's span metrics, not the kernel's */
    int rc;    /* of sn_agent_enable() (sn_span_metrics_enable()): 0 running */
    char why[WHY_MAX];
    int64_t since_ms;
};

struct sn_fleet_agent {
    struct sn_agent *agent;
    struct sn_link *link;
    jsCtx *js; /* ours: its acknowledgement handler is ours */
    char host[SN_FLEET_HOST_MAX + 1];
    char *cgroup, *zone, *version;
    int64_t started_ms;
    uint32_t key_cap;

    /* spans (--otlp-listen, --zipkin-listen): the relay and its trace.spans instrumentations */
    struct sn_span_relay *relay;
    struct sn_span_past *past; /* the relay's spans' past (fleet/span_past.h) */
    struct sn_span_metrics *spanm;

    /* the flight recorder: this host's rings, fleet sessions and snapshots (fleet/fleet_rec.h) */
    struct sn_recorder *rec;
    struct sn_fleet_rec *frec;

    /* the outbox and the counters of the data path */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct sn_outbox *ob;
    uint64_t sent_upto; /* the newest seq published since the last (re)send */
    uint64_t stall_seq; /* the oldest held seq as last seen, and since when */
    int64_t stall_since_ms;
    bool resend; /* send everything held again (a reconnect, a stall) */
    bool wake;   /* new frames */
    uint64_t sent, acked, dups, errors, frames;
    int64_t last_frame;
    uint8_t *buf; /* the sink's encoding buffer (the agent's thread only) */
    size_t buflen;

    /* the statuses (written by the watcher; read by the heartbeat and the dump) */
    pthread_mutex_t st_mu;
    struct inst *insts;
    size_t ninsts, capinsts;
    uint64_t heartbeats;

    atomic_bool stop, resync, changed;
    pthread_t pub_thread, watch_thread;
    bool pub_started, watch_started;
};

static void fmt_why(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fmt_why(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    if (!why || !whylen)
        return;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

json_t *sn_fleet_scope_def(const json_t *def, const char *path)
{
    if (!path || !path[0])
        return json_incref((json_t *)def);
    json_t *out = json_deep_copy(def);
    json_t *pred = json_object_get(out, "predicate");
    json_t *under = json_pack("{s:[s,s]}", "under", "container", path);
    if (!out || !under) {
        json_decref(out);
        json_decref(under);
        return NULL;
    }
    json_t *both = json_is_object(pred) && json_object_size(pred) == 0 ? under
                   : pred ? json_pack("{s:[O,o]}", "and", pred, under)
                          : under;
    if (!both || json_object_set_new(out, "predicate", both) != 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* ------------------------------------------------------------------------------------------
 * The sink (the agent's thread) and the publisher
 */

static void sink_frame(void *arg, const struct sn_wire_frame *f)
{
    struct sn_fleet_agent *fa = arg;
    char subj[SN_FLEET_SUBJECT_MAX], id[SN_FLEET_SUBJECT_MAX];
    size_t len = sn_wire_frame_len(f);

    if (len > fa->buflen) {
        uint8_t *b = realloc(fa->buf, len);
        if (!b)
            goto lost;
        fa->buf = b;
        fa->buflen = len;
    }
    ssize_t n = sn_wire_frame_encode(f, fa->buf, fa->buflen);
    if (n < 0 || sn_fleet_frame_subject(f->id, fa->host, subj, sizeof(subj)) < 0 ||
        sn_fleet_msg_id(fa->host, f->id, f->t, id, sizeof(id)) < 0)
        goto lost;
    pthread_mutex_lock(&fa->mu);
    fa->frames++;
    sn_outbox_add(fa->ob, subj, id, fa->buf, (size_t)n, sn_now_ms()); /* a drop is counted */
    fa->wake = true;
    pthread_mutex_unlock(&fa->mu);
    return;
lost:
    sn_log(SN_LOG_WARN, "fleet",
           "frame of %s at %" PRId64 " cannot be sent (bad name or no "
           "memory)",
           f->id, f->t);
}

static void sink_second(void *arg, int64_t t)
{
    struct sn_fleet_agent *fa = arg;
    (void)t;
    pthread_mutex_lock(&fa->mu);
    pthread_cond_signal(&fa->cond);
    pthread_mutex_unlock(&fa->mu);
}

/* The second a message id names (its last token), or 0. */
static int64_t id_second(const char *id)
{
    const char *dot = strrchr(id, '.');
    return dot ? strtoll(dot + 1, NULL, 10) : 0;
}

/* cnats's thread: a publish acknowledged (pa) or failed (pae). */
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    struct sn_fleet_agent *fa = closure;
    const char *id = NULL;
    (void)js;

    if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) != NATS_OK)
        id = NULL;
    pthread_mutex_lock(&fa->mu);
    if (pa && id) {
        if (sn_outbox_ack_id(fa->ob, id) == 0)
            fa->acked++;
        if (pa->Duplicate)
            fa->dups++;
        int64_t t = id_second(id);
        if (t > fa->last_frame)
            fa->last_frame = t;
    } else {
        fa->errors++;
        if (pae && sn_log_on(SN_LOG_DEBUG, "fleet"))
            sn_log(SN_LOG_DEBUG, "fleet", "publish of %s failed: %s (%d)", id ? id : "?",
                   pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err), (int)pae->ErrCode);
    }
    pthread_mutex_unlock(&fa->mu);
    natsMsg_Destroy(msg);
}

struct copy {
    uint64_t seq;
    char *subject, *id;
    void *data;
    size_t len;
};

struct batch {
    struct copy v[BATCH];
    size_t n;
};

static int take(void *arg, const struct sn_outbox_msg *m)
{
    struct batch *b = arg;
    struct copy *c = &b->v[b->n];
    c->seq = m->seq;
    c->subject = strdup(m->subject);
    c->id = strdup(m->id);
    c->data = malloc(m->len ? m->len : 1);
    c->len = m->len;
    if (!c->subject || !c->id || !c->data) {
        free(c->subject);
        free(c->id);
        free(c->data);
        return 1;
    }
    memcpy(c->data, m->data, m->len);
    b->n++;
    return 0;
}

/* Publishes b's messages in order; stops at the first refusal. Returns how many went. */
static size_t publish(struct sn_fleet_agent *fa, struct batch *b)
{
    jsPubOptions po;
    size_t i;

    jsPubOptions_Init(&po);
    po.MaxWait = ACK_WAIT_MS;
    for (i = 0; i < b->n; i++) {
        natsMsg *m = NULL;
        struct copy *c = &b->v[i];
        natsStatus s = natsMsg_Create(&m, c->subject, NULL, c->data, (int)c->len);
        if (s == NATS_OK)
            s = natsMsgHeader_Set(m, "Nats-Msg-Id", c->id);
        if (s == NATS_OK)
            s = js_PublishMsgAsync(fa->js, &m, &po);
        natsMsg_Destroy(m); /* NULL when cnats took it */
        if (s != NATS_OK)
            break;
        pthread_mutex_lock(&fa->mu);
        fa->sent++;
        if (c->seq > fa->sent_upto)
            fa->sent_upto = c->seq;
        pthread_mutex_unlock(&fa->mu);
    }
    return i;
}

static void batch_free(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->v[i].subject);
        free(b->v[i].id);
        free(b->v[i].data);
    }
    b->n = 0;
}

/* The oldest held message's seq (0: none). */
static int first_seq(void *arg, const struct sn_outbox_msg *m)
{
    *(uint64_t *)arg = m->seq;
    return 1;
}

/* The JetStream context of ours on the link's connection, made once the connection exists. */
static bool ensure_js(struct sn_fleet_agent *fa)
{
    if (fa->js)
        return true;
    natsConnection *nc = sn_link_conn(fa->link);
    jsOptions jo;
    if (!nc || jsOptions_Init(&jo) != NATS_OK)
        return false;
    jo.PublishAsync.MaxPending = MAX_PENDING;
    jo.PublishAsync.StallWait = 50;
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = fa;
    return natsConnection_JetStream(&fa->js, nc, &jo) == NATS_OK;
}

static void *pub_main(void *arg)
{
    struct sn_fleet_agent *fa = arg;
    struct batch *bp = malloc(sizeof(*bp)); /* 256 copies: not on the stack */

    if (!bp) {
        sn_log(SN_LOG_ERROR, "fleet", "publisher: out of memory");
        return NULL;
    }
    bp->n = 0;
    while (!atomic_load(&fa->stop)) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 250 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&fa->mu);
        if (!fa->wake && !fa->resend && !atomic_load(&fa->stop))
            pthread_cond_timedwait(&fa->cond, &fa->mu, &until);
        fa->wake = false;
        int64_t now = sn_now_ms();
        sn_outbox_expire(fa->ob, now);
        bool up = sn_link_up(fa->link);
        /* the oldest held unacknowledged for STALL_MS after it was sent: send all again */
        uint64_t oldest = 0;
        sn_outbox_each(fa->ob, 0, 1, first_seq, &oldest);
        if (oldest != fa->stall_seq || oldest == 0 || oldest > fa->sent_upto) {
            fa->stall_seq = oldest;
            fa->stall_since_ms = now;
        } else if (up && now - fa->stall_since_ms >= STALL_MS) {
            fa->resend = true;
            fa->stall_since_ms = now;
        }
        bool resend = up && fa->resend, ever_sent = fa->sent > 0;
        if (resend) {
            fa->resend = false;
            fa->sent_upto = 0;
        }
        if (up && ensure_js(fa))
            sn_outbox_each(fa->ob, fa->sent_upto, BATCH, take, bp);
        pthread_mutex_unlock(&fa->mu);

        /* cnats forgets what it still waited for: we resend it all (cnats 3.4.1 crashes in
         * js_PublishAsyncGetPendingList before the context's first asynchronous publish) */
        if (resend && fa->js && ever_sent) {
            natsMsgList pending = {0};
            if (js_PublishAsyncGetPendingList(&pending, fa->js) == NATS_OK)
                natsMsgList_Destroy(&pending);
        }
        if (bp->n) {
            size_t n = publish(fa, bp), want = bp->n;
            batch_free(bp);
            pthread_mutex_lock(&fa->mu);
            if (n == want) /* more may be waiting: no sleep before the next pass */
                fa->wake = true;
            pthread_mutex_unlock(&fa->mu);
            if (n < want) { /* refused (the link went down, too many in flight): a pause */
                struct timespec ts = {0, 100 * 1000000L};
                nanosleep(&ts, NULL);
            }
        }
    }
    free(bp);
    return NULL;
}

/* ------------------------------------------------------------------------------------------
 * Definitions: the wanted set and the running set
 */

static void want_clear(struct want_set *w)
{
    for (size_t i = 0; i < w->n; i++)
        json_decref(w->v[i].def);
    w->n = 0;
}

static void want_free(struct want_set *w)
{
    want_clear(w);
    free(w->v);
    w->v = NULL;
    w->cap = 0;
}

static struct want *want_find(struct want_set *w, const char *kvkey)
{
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->v[i].kvkey, kvkey) == 0)
            return &w->v[i];
    return NULL;
}

static void want_del(struct want_set *w, const char *kvkey)
{
    struct want *x = want_find(w, kvkey);
    if (!x)
        return;
    json_decref(x->def);
    *x = w->v[--w->n];
}

/* Applies one KV entry to w: a put sets, a delete or purge removes. Returns whether w
 * changed. */
static bool want_apply(struct sn_fleet_agent *fa, struct want_set *w, kvEntry *e)
{
    const char *kvkey = kvEntry_Key(e);
    kvOperation op = kvEntry_Operation(e);

    if (!kvkey || strlen(kvkey) >= SN_FLEET_SUBJECT_MAX)
        return false;
    if (op != kvOp_Put) {
        bool had = want_find(w, kvkey) != NULL;
        want_del(w, kvkey);
        return had;
    }
    json_error_t jerr;
    json_t *v = json_loadb(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), 0, &jerr);
    const char *key = json_string_value(json_object_get(v, "key"));
    json_t *agent = json_object_get(v, "agent");
    char parsed[KEY_MAX];
    if (!key && sn_fleet_parse_def_key(kvkey, parsed, sizeof(parsed)) == 0)
        key = parsed;
    if (!key || strlen(key) >= KEY_MAX || !json_is_object(agent)) {
        sn_log(SN_LOG_WARN, "fleet", "%s: not a definition (%s); ignored", kvkey,
               v ? "no key or agent" : jerr.text);
        json_decref(v);
        bool had = want_find(w, kvkey) != NULL;
        want_del(w, kvkey);
        return had;
    }
    /* trace.spans: no kernel to scope, and run only by an agent that relays spans */
    bool span = sn_span_metrics_handles(agent);
    if (span && !fa->relay) {
        json_decref(v);
        bool had = want_find(w, kvkey) != NULL;
        want_del(w, kvkey);
        return had;
    }
    json_t *def = span ? json_incref(agent) : sn_fleet_scope_def(agent, fa->cgroup);
    struct want *x = want_find(w, kvkey);
    if (!def) {
        json_decref(v);
        return false;
    }
    if (x && strcmp(x->key, key) == 0 && json_equal(x->def, def)) {
        json_decref(def);
        json_decref(v);
        return false;
    }
    if (!x) {
        if (w->n == w->cap) {
            size_t cap = w->cap ? w->cap * 2 : 16;
            struct want *nv = realloc(w->v, cap * sizeof(*nv));
            if (!nv) {
                json_decref(def);
                json_decref(v);
                return false;
            }
            w->v = nv;
            w->cap = cap;
        }
        x = &w->v[w->n++];
        snprintf(x->kvkey, sizeof(x->kvkey), "%s", kvkey);
    } else {
        json_decref(x->def);
    }
    snprintf(x->key, sizeof(x->key), "%s", key);
    x->def = def;
    const json_t *ca = json_object_get(v, "def");
    x->retention = (uint32_t)json_integer_value(json_object_get(ca, "retention-time"));
    x->granularity = (uint32_t)json_integer_value(json_object_get(ca, "granularity"));
    x->crtime_ms = json_integer_value(json_object_get(ca, "crtime"));
    json_decref(v);
    return true;
}

static struct inst *inst_find(struct sn_fleet_agent *fa, const char *key)
{
    for (size_t i = 0; i < fa->ninsts; i++)
        if (strcmp(fa->insts[i].key, key) == 0)
            return &fa->insts[i];
    return NULL;
}

/* Stops running in (when it runs). */
static void inst_stop(struct sn_fleet_agent *fa, const struct inst *in)
{
    if (in->rc != 0)
        return;
    if (in->span)
        sn_span_metrics_disable(fa->spanm, in->key);
    else
        sn_agent_disable(fa->agent, in->key);
}

/* Makes the running set what w asks: gone ones disabled, new and changed ones enabled (a
 * changed one disabled first), the others untouched. Returns whether anything changed. */
static bool reconcile(struct sn_fleet_agent *fa, const struct want_set *w)
{
    bool changed = false;

    for (size_t i = 0; i < fa->ninsts;) {
        struct inst *in = &fa->insts[i];
        bool wanted = false;
        for (size_t j = 0; j < w->n && !wanted; j++)
            wanted = strcmp(w->v[j].key, in->key) == 0;
        if (wanted) {
            i++;
            continue;
        }
        inst_stop(fa, in);
        sn_log(SN_LOG_INFO, "fleet", "%s disabled", in->key);
        pthread_mutex_lock(&fa->st_mu);
        json_decref(in->def);
        fa->insts[i] = fa->insts[--fa->ninsts];
        pthread_mutex_unlock(&fa->st_mu);
        changed = true;
    }
    for (size_t j = 0; j < w->n; j++) {
        const struct want *x = &w->v[j];
        struct inst *in = inst_find(fa, x->key);
        if (in && json_equal(in->def, x->def))
            continue;
        if (in)
            inst_stop(fa, in);
        char why[WHY_MAX] = "";
        bool span = sn_span_metrics_handles(x->def);
        /* a new trace.spans one: its past from the spans relayed before (fleet/span_past.h) */
        int rc =
            span && !in ? sn_span_past_enable(fa->past, x->key, x->def, fa->key_cap, x->retention,
                                              x->granularity, x->crtime_ms, why, sizeof(why))
            : span
                ? sn_span_metrics_enable(fa->spanm, x->key, x->def, fa->key_cap, why, sizeof(why))
                : sn_agent_enable(fa->agent, x->key, x->def, why, sizeof(why));
        if (rc == 0)
            sn_log(SN_LOG_INFO, "fleet", "%s enabled", x->key);
        else
            sn_log(SN_LOG_WARN, "fleet", "%s cannot run here: %s", x->key,
                   why[0] ? why : strerror(-rc));
        pthread_mutex_lock(&fa->st_mu);
        if (!in && fa->ninsts == fa->capinsts) {
            size_t cap = fa->capinsts ? fa->capinsts * 2 : 16;
            struct inst *nv = realloc(fa->insts, cap * sizeof(*nv));
            if (nv) {
                fa->insts = nv;
                fa->capinsts = cap;
            }
        }
        if (!in && fa->ninsts < fa->capinsts) {
            in = &fa->insts[fa->ninsts++];
            memset(in, 0, sizeof(*in));
            snprintf(in->key, sizeof(in->key), "%s", x->key);
        }
        if (in) {
            json_decref(in->def);
            in->def = json_incref(x->def);
            in->rc = rc;
            in->span = span;
            snprintf(in->why, sizeof(in->why), "%s", rc == 0 ? "" : why[0] ? why : strerror(-rc));
            in->since_ms = sn_now_ms();
        } else if (rc == 0 && span) {
            sn_span_metrics_disable(fa->spanm, x->key); /* no memory to track it: not run */
        } else if (rc == 0) {
            sn_agent_disable(fa->agent, x->key); /* no memory to track it: do not run it */
        }
        pthread_mutex_unlock(&fa->st_mu);
        changed = true;
    }
    return changed;
}

/* ------------------------------------------------------------------------------------------
 * Heartbeat, dump, stats
 */

void sn_fleet_agent_stats(struct sn_fleet_agent *fa, struct sn_fleet_agent_stats *out)
{
    struct sn_outbox_stats os;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&fa->mu);
    sn_outbox_stats(fa->ob, &os);
    out->sent = fa->sent;
    out->acked = fa->acked;
    out->dups = fa->dups;
    out->errors = fa->errors;
    out->frames = fa->frames;
    out->last_frame = fa->last_frame;
    pthread_mutex_unlock(&fa->mu);
    out->buffered = os.msgs;
    out->buffered_bytes = os.bytes;
    out->dropped = os.dropped_age + os.dropped_full;
    pthread_mutex_lock(&fa->st_mu);
    for (size_t i = 0; i < fa->ninsts; i++)
        out->running += fa->insts[i].rc == 0;
    out->heartbeats = fa->heartbeats;
    pthread_mutex_unlock(&fa->st_mu);
}

static json_t *heartbeat_json(struct sn_fleet_agent *fa)
{
    struct sn_fleet_agent_stats st;
    struct sn_agent_stats as;
    json_t *running = json_object();

    sn_fleet_agent_stats(fa, &st);
    sn_agent_stats(fa->agent, &as);
    pthread_mutex_lock(&fa->st_mu);
    for (size_t i = 0; i < fa->ninsts; i++) {
        const struct inst *in = &fa->insts[i];
        json_object_set_new(running, in->key,
                            json_pack("{s:i,s:s,s:I}", "rc", in->rc, "why", in->why, "since_ms",
                                      (json_int_t)in->since_ms));
    }
    pthread_mutex_unlock(&fa->st_mu);
    struct sn_span_relay_stats rs;
    sn_span_relay_stats(fa->relay, &rs);
    json_t *spans =
        fa->relay ? json_pack("{s:I,s:I,s:I,s:I,s:I}", "requests", (json_int_t)rs.requests,
                              "invalid", (json_int_t)rs.invalid, "busy", (json_int_t)rs.busy,
                              "relayed", (json_int_t)rs.spans, "messages", (json_int_t)rs.msgs)
                  : json_null();
    return json_pack(
        "{s:i,s:s,s:s,s:s,s:s,s:I,s:b,s:s,s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s,s:o}", "v", 1,
        "kind", "agent", "host", fa->host, "zone", fa->zone, "version", fa->version, "started_ms",
        (json_int_t)fa->started_ms, "bpf", as.bpf, "no_bpf_reason",
        sn_agent_no_bpf_reason(fa->agent), "running", running, "last_frame",
        (json_int_t)st.last_frame, "buffered", (json_int_t)st.buffered, "buffered_bytes",
        (json_int_t)st.buffered_bytes, "dropped", (json_int_t)st.dropped, "sent",
        (json_int_t)st.sent, "acked", (json_int_t)st.acked, "duplicates", (json_int_t)st.dups,
        "errors", (json_int_t)st.errors, "cgroup", fa->cgroup ? fa->cgroup : "", "spans", spans);
}

/* Puts agent.<host> into the members bucket. 0 or -errno. */
static int heartbeat(struct sn_fleet_agent *fa, kvStore *kv)
{
    char key[SN_FLEET_SUBJECT_MAX];
    json_t *j = heartbeat_json(fa);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    int rc = -ENOMEM;

    json_decref(j);
    if (text && sn_fleet_agent_key(fa->host, key, sizeof(key)) == 0) {
        uint64_t rev = 0;
        rc = sn_link_err(kvStore_PutString(&rev, kv, key, text));
    }
    free(text);
    if (rc == 0) {
        pthread_mutex_lock(&fa->st_mu);
        fa->heartbeats++;
        pthread_mutex_unlock(&fa->st_mu);
    }
    return rc;
}

void sn_fleet_agent_dump(struct sn_fleet_agent *fa)
{
    struct sn_fleet_agent_stats st;
    struct sn_link_stats ls;
    struct sn_outbox_stats os;

    sn_fleet_agent_stats(fa, &st);
    sn_link_stats(fa->link, &ls);
    pthread_mutex_lock(&fa->mu);
    sn_outbox_stats(fa->ob, &os);
    pthread_mutex_unlock(&fa->mu);
    sn_log(SN_LOG_INFO, "dump",
           "agent %s zone '%s' cgroup '%s': link %s%s (disconnects %" PRIu64 ", reconnects %" PRIu64
           ")",
           fa->host, fa->zone, fa->cgroup ? fa->cgroup : "",
           sn_link_up(fa->link) ? "up to " : "down", ls.server, ls.disconnects, ls.reconnects);
    pthread_mutex_lock(&fa->st_mu);
    sn_log(SN_LOG_INFO, "dump", "%zu instrumentation(s)", fa->ninsts);
    for (size_t i = 0; i < fa->ninsts; i++) {
        const struct inst *in = &fa->insts[i];
        char *def = json_dumps(in->def, JSON_COMPACT);
        sn_log(SN_LOG_INFO, "dump", "  %s: %s since %" PRId64 "%s%s %s", in->key,
               in->rc == 0 ? "running" : "not running", in->since_ms, in->rc ? ": " : "", in->why,
               def ? def : "");
        free(def);
    }
    pthread_mutex_unlock(&fa->st_mu);
    sn_log(SN_LOG_INFO, "dump",
           "outbox: %" PRIu64 " message(s), %" PRIu64 " bytes, oldest %" PRId64
           " ms; added %" PRIu64 ", acked %" PRIu64 ", dropped %" PRIu64 " (age) %" PRIu64
           " (full)",
           os.msgs, os.bytes, os.oldest_ms ? sn_now_ms() - os.oldest_ms : 0, os.added, os.acked,
           os.dropped_age, os.dropped_full);
    sn_log(SN_LOG_INFO, "dump",
           "frames %" PRIu64 ", sent %" PRIu64 ", acked %" PRIu64 " (duplicates %" PRIu64
           "), errors %" PRIu64 ", last frame %" PRId64 ", heartbeats %" PRIu64,
           st.frames, st.sent, st.acked, st.dups, st.errors, st.last_frame, st.heartbeats);
}

/* ------------------------------------------------------------------------------------------
 * The watcher's thread
 */

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void *watch_main(void *arg)
{
    struct sn_fleet_agent *fa = arg;
    struct want_set want = {0}, fresh = {0};
    kvWatcher *w = NULL;
    kvStore *defs = NULL, *members = NULL;
    bool initial = false;
    int64_t next_hb = 0, next_ensure = 0;
    char why[256];

    while (!atomic_load(&fa->stop)) {
        int64_t now = sn_mono_ms();
        if (!sn_link_up(fa->link)) {
            pause_ms(WATCH_POLL_MS);
            continue;
        }
        if (!defs || !members) {
            if (now < next_ensure) {
                pause_ms(WATCH_POLL_MS);
                continue;
            }
            /* the nodes create the stream and buckets; an agent that came first does */
            int rc = sn_link_ensure(fa->link, 5000, why, sizeof(why));
            defs = rc == 0 ? sn_link_kv(fa->link, SN_FLEET_KV_DEFS) : NULL;
            members = rc == 0 ? sn_link_kv(fa->link, SN_FLEET_KV_MEMBERS) : NULL;
            if (!defs || !members) {
                sn_log(SN_LOG_WARN, "fleet", "the fleet's buckets: %s; trying again",
                       rc < 0 ? why : "not bound");
                next_ensure = now + 1000;
                continue;
            }
        }
        if (atomic_exchange(&fa->resync, false) || !w) {
            if (w) {
                kvWatcher_Stop(w);
                kvWatcher_Destroy(w);
                w = NULL;
            }
            natsStatus s = kvStore_Watch(&w, defs, "inst.>", NULL);
            if (s != NATS_OK) {
                sn_log(SN_LOG_WARN, "fleet", "watching %s: %s; trying again", SN_FLEET_KV_DEFS,
                       natsStatus_GetText(s));
                w = NULL;
                atomic_store(&fa->resync, true);
                pause_ms(500);
                continue;
            }
            want_clear(&fresh);
            initial = true;
        }
        kvEntry *e = NULL;
        natsStatus s = kvWatcher_Next(&e, w, WATCH_POLL_MS);
        if (s == NATS_OK && e) {
            if (initial)
                want_apply(fa, &fresh, e);
            else if (want_apply(fa, &want, e) && reconcile(fa, &want))
                atomic_store(&fa->changed, true);
            kvEntry_Destroy(e);
        } else if (s == NATS_OK) { /* the whole set read: make it so */
            if (initial) {
                struct want_set t = want;
                want = fresh;
                fresh = t;
                want_clear(&fresh);
                initial = false;
                sn_log(SN_LOG_INFO, "fleet", "%zu definition(s) in %s", want.n, SN_FLEET_KV_DEFS);
                if (reconcile(fa, &want))
                    atomic_store(&fa->changed, true);
            }
        } else if (s != NATS_TIMEOUT) {
            sn_log(SN_LOG_WARN, "fleet", "the watcher of %s: %s; reading the set again",
                   SN_FLEET_KV_DEFS, natsStatus_GetText(s));
            atomic_store(&fa->resync, true);
            pause_ms(WATCH_POLL_MS);
        }
        now = sn_mono_ms();
        if (atomic_exchange(&fa->changed, false) || now >= next_hb) {
            if (heartbeat(fa, members) == 0)
                next_hb = now + HEARTBEAT_MS;
            else
                next_hb = now + 250; /* soon again: the link may just have gone */
        }
    }
    if (w) {
        kvWatcher_Stop(w);
        kvWatcher_Destroy(w);
    }
    want_free(&want);
    want_free(&fresh);
    return NULL;
}

/* ------------------------------------------------------------------------------------------
 * Link events, open, close
 */

static void on_down(void *arg)
{
    struct sn_fleet_agent *fa = arg;
    (void)fa;
    sn_log(SN_LOG_WARN, "fleet", "the link to NATS is down; buffering frames");
}

static void on_up(void *arg)
{
    struct sn_fleet_agent *fa = arg;
    sn_log(SN_LOG_INFO, "fleet", "the link to NATS is up; resending what is held");
    atomic_store(&fa->resync, true);
    atomic_store(&fa->changed, true);
    pthread_mutex_lock(&fa->mu);
    fa->resend = true;
    pthread_cond_signal(&fa->cond);
    pthread_mutex_unlock(&fa->mu);
}

void sn_fleet_agent_resync(struct sn_fleet_agent *fa)
{
    atomic_store(&fa->resync, true);
}

int sn_fleet_agent_open(const struct sn_agent_opts *ao, const struct sn_fleet_agent_opts *o,
                        struct sn_fleet_agent **out, char *why, size_t whylen)
{
    struct sn_fleet_agent *fa;
    int rc;

    *out = NULL;
    if (o->cgroup && o->cgroup[0] && o->cgroup[0] != '/') {
        fmt_why(why, whylen, "--cgroup wants an absolute cgroup path, not \"%s\"", o->cgroup);
        return -EINVAL;
    }
    fa = calloc(1, sizeof(*fa));
    if (!fa)
        return -ENOMEM;
    pthread_mutex_init(&fa->mu, NULL);
    pthread_mutex_init(&fa->st_mu, NULL);
    pthread_cond_init(&fa->cond, NULL);
    fa->cgroup = o->cgroup && o->cgroup[0] ? strdup(o->cgroup) : NULL;
    fa->zone = strdup(o->zone ? o->zone : "");
    fa->version = strdup(o->version ? o->version : "");
    struct sn_outbox_opts obo = {.max_age_ms = o->buffer_ms, .max_bytes = o->buffer_bytes};
    fa->ob = sn_outbox_new(&obo);
    if (!fa->zone || !fa->version || (o->cgroup && o->cgroup[0] && !fa->cgroup) || !fa->ob) {
        sn_fleet_agent_close(fa);
        return -ENOMEM;
    }
    struct sn_agent_sink sink = {sink_frame, sink_second, fa};
    rc = sn_agent_open(ao, &sink, &fa->agent);
    if (rc < 0) {
        fmt_why(why, whylen, "the agent cannot start: %s", strerror(-rc));
        sn_fleet_agent_close(fa);
        return rc;
    }
    fa->started_ms = sn_now_ms(); /* its sources loaded (BPF: 0.5 s or more) */
    fa->key_cap = ao->key_cap ? ao->key_cap : SN_DEFAULT_KEY_CAP;
    snprintf(fa->host, sizeof(fa->host), "%s", sn_agent_host(fa->agent));
    if (!sn_fleet_host_valid(fa->host)) {
        fmt_why(why, whylen,
                "host name \"%s\" is not valid in a fleet (--hostname NAME: "
                "letters, digits, '.', '-', '_')",
                fa->host);
        sn_fleet_agent_close(fa);
        return -EINVAL;
    }
    struct sn_link_events ev = {on_down, on_up, fa};
    rc = sn_link_open(o->link, &ev, -1, &fa->link, why, whylen);
    if (rc < 0) {
        sn_fleet_agent_close(fa);
        return rc;
    }
    if ((rc = sn_recorder_new(&fa->rec, NULL)) < 0 ||
        (rc = sn_fleet_rec_open(fa->link, fa->rec, fa->host, &fa->frec, why, whylen)) < 0) {
        sn_fleet_agent_close(fa);
        return rc;
    }
    if (o->otlp_listen || o->zipkin_listen) {
        struct sn_span_relay_opts ro = {.otlp_listen = o->otlp_listen,
                                        .zipkin_listen = o->zipkin_listen,
                                        .link = fa->link,
                                        .host = fa->host};
        if ((rc = sn_span_metrics_open(&fa->spanm)) < 0) {
            sn_fleet_agent_close(fa);
            return rc;
        }
        if ((rc = sn_span_past_open(fa->spanm, fa->link, fa->host, fa->key_cap, &fa->past)) < 0) {
            sn_fleet_agent_close(fa);
            return rc;
        }
        ro.past = fa->past;
        if ((rc = sn_span_relay_start(&ro, &fa->relay, why, whylen)) < 0) {
            sn_fleet_agent_close(fa);
            return rc;
        }
    }
    if (pthread_create(&fa->pub_thread, NULL, pub_main, fa) == 0)
        fa->pub_started = true;
    if (fa->pub_started && pthread_create(&fa->watch_thread, NULL, watch_main, fa) == 0)
        fa->watch_started = true;
    if (!fa->watch_started) {
        fmt_why(why, whylen, "cannot start a thread");
        sn_fleet_agent_close(fa);
        return -EAGAIN;
    }
    *out = fa;
    return 0;
}

void sn_fleet_agent_close(struct sn_fleet_agent *fa)
{
    if (!fa)
        return;
    atomic_store(&fa->stop, true);
    pthread_mutex_lock(&fa->mu);
    pthread_cond_broadcast(&fa->cond);
    pthread_mutex_unlock(&fa->mu);
    if (fa->watch_started)
        pthread_join(fa->watch_thread, NULL);
    if (fa->pub_started)
        pthread_join(fa->pub_thread, NULL);
    sn_span_relay_stop(fa->relay);        /* no span taken after this */
    sn_agent_close(fa->agent);            /* no frame after this */
    if (fa->js && sn_link_up(fa->link)) { /* a last chance for what is in flight */
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 1000;
        js_PublishAsyncComplete(fa->js, &po);
    }
    sn_fleet_rec_close(fa->frec); /* before the link it uses */
    sn_link_close(fa->link);
    sn_recorder_free(fa->rec);
    if (fa->js)
        jsCtx_Destroy(fa->js);
    for (size_t i = 0; i < fa->ninsts; i++)
        json_decref(fa->insts[i].def);
    free(fa->insts);
    sn_outbox_free(fa->ob);
    sn_span_past_close(fa->past);
    sn_span_metrics_close(fa->spanm);
    free(fa->buf);
    free(fa->cgroup);
    free(fa->zone);
    free(fa->version);
    pthread_cond_destroy(&fa->cond);
    pthread_mutex_destroy(&fa->mu);
    pthread_mutex_destroy(&fa->st_mu);
    free(fa);
}
