/*
 * Spans in a fleet (docs/fleet.md, "Spans"): the trace store sharded by trace id over the
 * nodes, durable in JetStream like frames.
 *
 *   - Any node takes spans (OTLP, Zipkin): it publishes them, grouped by shard
 *     (sn_fleet_span_shard() of the trace id), as OTLP protobuf messages on sonde.spans.<shard>
 *     of the stream SONDE_SPANS (max age: --trace-retention), and the frames of the trace.spans
 *     instrumentations they make as this node's own source's frames (host: the node's id), each
 *     message acknowledged by JetStream before the client is answered. Nothing goes into the
 *     receiving node's span store but through a consumer of a shard it owns.
 *   - Each shard is owned by SN_FLEET_OWNERS nodes, rendezvous hashing over the live nodes of
 *     the key "spans/<shard>" (the same machinery as instrumentations). An owner consumes the
 *     shard's subject from the start of the stream (a new owner rebuilds its copy from it, then
 *     follows it) and hands each message's spans, each with its publisher as its origin (the
 *     message id's: the host of the frames they made), to the tail sampler (sn_tail_take()), which
 *     keeps them in the local span store as on a single host: its decision is a hash of the
 *     trace id, the same on every owner. A node that stops owning a shard stops consuming it;
 *     what its store holds of it stays until the store's retention removes it. One that owns
 *     it again in the same process resumes after the last message it took.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/grow.h"
#include "core/log.h"
#include "fleet/names.h"
#include "fleet/span_msg.h"
#include "serve/fleet.h"
#include "serve/fleet_int.h"
#include "serve/server.h"
#include "serve/span_metrics.h"
#include "trace/otlp.h"
#include "trace/sampling.h"
#include "trace/span_store.h"
#include "wire/frame.h"

/* ---- Where a restarted node resumes ----------------------------------------------------------
 *
 * A node's span store keeps what it took, and the store has no notion of a span kept twice: a
 * node that started again and replayed its shards from the stream's start would keep each span
 * again. So each node saves, once a second, the stream sequence of each shard as it was
 * SN_FLEET_SPANS_LAG_S seconds before (its store has written those spans by then, unless the
 * tail sampler holds a trace longer: its other owner has it), with the stream's creation time;
 * on a clean stop, where it is. Started again on the same data directory it resumes each shard
 * after that sequence (when the stream is the same one); a shard it never took starts at the
 * stream's start. The file is a hint: without it (a new data directory) everything is replayed.
 */
static void spans_path(struct sn_fleet *f, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", f->s->datadir, SN_FLEET_SPANS_FILE);
}

static void spans_load(struct sn_fleet *f)
{
    char path[600];
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;

    if (js_GetStreamInfo(&si, sn_link_js(f->link), SN_FLEET_SPANS_STREAM, NULL, &jerr) != NATS_OK)
        return;
    f->spans_created = si->Created;
    uint64_t last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    spans_path(f, path, sizeof(path));
    json_t *j = json_load_file(path, 0, NULL);
    const json_t *seq = json_object_get(j, "seq");
    if (json_integer_value(json_object_get(j, "stream")) == f->spans_created &&
        json_array_size(seq) == SN_FLEET_SPAN_SHARDS) {
        unsigned resumed = 0;
        for (unsigned i = 0; i < SN_FLEET_SPAN_SHARDS; i++) {
            json_int_t v = json_integer_value(json_array_get(seq, i));
            if (v > 0 && (uint64_t)v <= last) {
                atomic_store(&f->shards[i].last_seq, (uint64_t)v);
                resumed++;
            }
        }
        if (resumed)
            sn_log(SN_LOG_INFO, "fleet", "span shards: %u resume where this node left them",
                   resumed);
    }
    json_decref(j);
}

void sn_fleet_spans_save(struct sn_fleet *f, bool now)
{
    int64_t ms = sn_mono_ms();
    uint64_t *cur;
    if (!now && ms - f->spans_saved_ms < 1000)
        return;
    f->spans_saved_ms = ms;
    /* the ring: this second's sequences in, the oldest (LAG_S seconds ago) out */
    unsigned at = f->spans_ring_at++ % SN_FLEET_SPANS_LAG_S;
    uint64_t old[SN_FLEET_SPAN_SHARDS];
    memcpy(old, f->spans_ring[at], sizeof(old));
    cur = f->spans_ring[at];
    for (unsigned i = 0; i < SN_FLEET_SPAN_SHARDS; i++)
        cur[i] = atomic_load(&f->shards[i].last_seq);
    const uint64_t *w = now ? cur : old;
    if (!now && f->spans_ring_at <= SN_FLEET_SPANS_LAG_S)
        return; /* not LAG_S seconds yet: the file of the last run stays */
    json_t *a = json_array();
    for (unsigned i = 0; a && i < SN_FLEET_SPAN_SHARDS; i++)
        json_array_append_new(a, json_integer((json_int_t)w[i]));
    json_t *j =
        json_pack("{s:i,s:I,s:o}", "v", 1, "stream", (json_int_t)f->spans_created, "seq", a);
    char path[600], tmp[620];
    spans_path(f, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (j && json_dump_file(j, tmp, JSON_COMPACT) == 0 && rename(tmp, path) != 0)
        unlink(tmp);
    json_decref(j);
}

int sn_fleet_spans_start(struct sn_fleet *f, char *why, size_t whylen)
{
    int64_t keep = f->spans_keep_s > 0 ? f->spans_keep_s : SN_SPAN_STORE_RETENTION;
    for (unsigned i = 0; i < SN_FLEET_SPAN_SHARDS; i++) {
        struct span_shard *sh = &f->shards[i];
        sh->f = f;
        sh->shard = i;
        sn_fleet_span_key(i, sh->key, sizeof(sh->key));
    }
    int rc = sn_link_ensure_stream(f->link, SN_FLEET_SPANS_STREAM, SN_FLEET_SPANS_ALL,
                                   keep * 1000000000LL, 0, why, whylen);
    if (rc == 0)
        spans_load(f);
    return rc;
}

/* ---- Owners: a consumer per shard ----------------------------------------------------------- */

/* The publisher that took msg's spans, named by its message id (<origin>.<nonce>.s<shard>: the
 * host of the trace.spans frames they made), in a; NULL when the id is not one (not Sonde's
 * publisher: the spans count as this node's own, sn_span.origin NULL). */
static const char *span_origin(natsMsg *msg, struct sn_arena *a)
{
    const char *id = NULL;
    char origin[SN_FLEET_HOST_MAX + 1];
    if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) != NATS_OK ||
        sn_fleet_parse_span_msg_id(id, origin, sizeof(origin), NULL, NULL, 0) < 0)
        return NULL;
    return sn_arena_strndup(a, origin, strlen(origin));
}

/* One message of sh's subject: its spans (all of sh's shard, else the message is refused:
 * forged or misrouted) to the tail sampler, which keeps them in the local store. */
static void on_span_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    struct span_shard *sh = closure;
    struct sn_fleet *f = sh->f;
    jsMsgMetaData *meta = NULL;
    bool caught_up = false;
    unsigned shard;
    (void)nc;
    (void)sub;

    if (!atomic_load(&sh->active)) {
        natsMsg_Destroy(msg);
        return;
    }
    atomic_store(&sh->heard_ms, sn_mono_ms());
    if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
        uint64_t seq = meta->Sequence.Stream;
        atomic_store(&sh->pending, meta->NumPending);
        caught_up = meta->NumPending == 0;
        jsMsgMetaData_Destroy(meta);
        /* seen: a consumer restarted behind it, or one set aside that still delivers (two
         * callbacks may run at once: the sequence is taken by one of them only) */
        uint64_t prev = atomic_load(&sh->last_seq);
        do {
            if (seq <= prev) {
                natsMsg_Destroy(msg);
                return;
            }
        } while (!atomic_compare_exchange_weak(&sh->last_seq, &prev, seq));
    }
    if (sn_fleet_parse_span_subject(natsMsg_GetSubject(msg), &shard) < 0 || shard != sh->shard) {
        atomic_fetch_add(&f->spans_foreign, 1);
    } else {
        struct sn_span_batch b = {0};
        if (sn_otlp_decode(SN_OTLP_PROTO, natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg),
                           &b, NULL, 0) < 0) {
            atomic_fetch_add(&f->spans_bad, 1);
        } else {
            bool ours = true;
            for (size_t i = 0; i < b.n && ours; i++)
                ours = sn_fleet_span_shard(b.spans[i].trace_id) == sh->shard;
            for (size_t i = 0; i < b.n && ours; i++)
                sn_fleet_span_restore(&b.spans[i], &b.arena);
            const char *origin = ours ? span_origin(msg, &b.arena) : NULL;
            for (size_t i = 0; i < b.n && origin; i++)
                b.spans[i].origin = origin;
            if (!ours) {
                atomic_fetch_add(&f->spans_foreign, 1);
            } else if (b.n && sn_tail_take(f->s->tail, &b, sn_now_ms()) == 0) {
                atomic_fetch_add(&f->spans_in, b.n);
                atomic_fetch_add(&sh->spans, b.n);
            }
        }
        sn_span_batch_fini(&b);
    }
    natsMsg_Destroy(msg);
    if (caught_up && !atomic_load(&sh->ready))
        atomic_store(&sh->ready, true);
}

/* What sh's subject holds past sequence seq, asked of the stream (its last message): 1 (a
 * backlog to replay), 0 (nothing), or -1 when the servers do not say (then *ask is cleared, so
 * that a pass of the balancer waits for the servers once, not once a shard). */
static int shard_backlog(struct sn_fleet *f, const struct span_shard *sh, uint64_t seq, bool *ask)
{
    char subj[64];
    if (!*ask || sn_fleet_span_subject(sh->shard, subj, sizeof(subj)) < 0)
        return -1;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 2000;
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    natsStatus st = js_GetLastMsg(&m, sn_link_js(f->link), SN_FLEET_SPANS_STREAM, subj, &jo, &jerr);
    if (st == NATS_NOT_FOUND)
        return 0;
    if (st != NATS_OK) {
        *ask = false;
        return -1;
    }
    int r = natsMsg_GetSequence(m) > seq;
    natsMsg_Destroy(m);
    return r;
}

/* Consumes sh's subject: after seq when seq, else from the stream's start. */
static int shard_subscribe(struct sn_fleet *f, struct span_shard *sh, uint64_t seq)
{
    char subj[64];
    jsSubOptions so;
    natsSubscription *sub = NULL;
    jsErrCode jerr = 0;

    if (sn_fleet_span_subject(sh->shard, subj, sizeof(subj)) < 0)
        return -EINVAL;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 2000; /* a cluster electing leaders: the pass is tried again, not held long */
    jsSubOptions_Init(&so);
    so.Stream = SN_FLEET_SPANS_STREAM;
    so.Ordered = true;
    if (seq) {
        so.Config.DeliverPolicy = js_DeliverByStartSequence;
        so.Config.OptStartSeq = seq + 1;
    } else {
        so.Config.DeliverPolicy = js_DeliverAll; /* the stream keeps the retention */
    }
    natsStatus st = js_Subscribe(&sub, sn_link_js(f->link), subj, on_span_msg, sh, &jo, &so, &jerr);
    if (st != NATS_OK) {
        sn_log(SN_LOG_WARN, "fleet", "span shard %u: cannot consume it: %s (%d)", sh->shard,
               natsStatus_GetText(st), (int)jerr);
        return sn_link_err(st) ? sn_link_err(st) : -EIO;
    }
    natsSubscription_SetPendingLimits(sub, -1, 256 * 1024 * 1024);
    atomic_store(&sh->seq_at_sub, seq);
    atomic_store(&sh->heard_ms, sn_mono_ms());
    atomic_store(&sh->lost, false);
    sh->sub = sub;
    return 0;
}

static void shard_unsubscribe(struct span_shard *sh)
{
    if (!sh->sub)
        return;
    natsSubscription_Unsubscribe(sh->sub);
    natsSubscription_Destroy(sh->sub);
    sh->sub = NULL;
}

void sn_fleet_spans_rebalance(struct sn_fleet *f, bool resub)
{
    unsigned took = 0, left = 0, restarted = 0;
    bool retry = false, ask = true;
    if (resub) /* every consumer made again where it was, over as many passes as it takes */
        for (unsigned i = 0; i < SN_FLEET_SPAN_SHARDS; i++)
            f->shards[i].restart = atomic_load(&f->shards[i].active);
    for (unsigned i = 0; i < SN_FLEET_SPAN_SHARDS && !atomic_load(&f->stop); i++) {
        struct span_shard *sh = &f->shards[i];
        pthread_mutex_lock(&f->mu);
        bool mine = sn_fleet_owns_locked(f, sh->key);
        pthread_mutex_unlock(&f->mu);
        if (mine && !atomic_load(&sh->active)) {
            /* owned before in this process: its copy holds what came up to last_seq; ready at
             * once when nothing came after, else once the replay is taken */
            uint64_t from = atomic_load(&sh->last_seq);
            int backlog = shard_backlog(f, sh, from, &ask);
            atomic_store(&sh->backlog, backlog == 1);
            atomic_store(&sh->ready, backlog == 0);
            atomic_store(&sh->since_ms, sn_mono_ms());
            atomic_store(&sh->active, true);
            if (shard_subscribe(f, sh, from) < 0) {
                atomic_store(&sh->active, false); /* tried again at the next pass */
                retry = true;
                break; /* the servers do not answer now: the others wait for the next pass */
            }
            took++;
        } else if (mine && atomic_load(&sh->lost) && sh->sub) {
            /* its consumer's server is gone: asking the servers to delete it would wait for
             * an answer that does not come; the subscription is kept aside until close
             * (should it deliver again, what it delivers is seen already: dropped) */
            pthread_mutex_lock(&f->mu);
            natsSubscription **g =
                sn_grow(f->spans_grave, &f->spans_ngrave_cap, f->spans_ngrave + 1, sizeof(*g));
            if (g) {
                f->spans_grave = g;
                g[f->spans_ngrave++] = sh->sub;
                sh->sub = NULL;
            }
            pthread_mutex_unlock(&f->mu);
            if (sh->sub)
                shard_unsubscribe(sh);
            if (shard_subscribe(f, sh, atomic_load(&sh->last_seq)) < 0) {
                retry = true;
                break;
            }
            restarted++;
        } else if (mine && (sh->restart || !sh->sub)) {
            sh->restart = false;
            shard_unsubscribe(sh);
            if (shard_subscribe(f, sh, atomic_load(&sh->last_seq)) < 0) {
                retry = true;
                break;
            }
            restarted++;
        } else if (!mine && atomic_load(&sh->active)) {
            atomic_store(&sh->active, false);
            atomic_store(&sh->ready, false);
            shard_unsubscribe(sh);
            left++;
        }
    }
    if (took || left || restarted)
        sn_log(SN_LOG_INFO, "fleet",
               "span shards: %u taken (replaying them), %u owned elsewhere now, %u consumers "
               "made again",
               took, left, restarted);
    if (retry) { /* the next pass tries again (each failure waited for the servers' answer) */
        pthread_mutex_lock(&f->mu);
        f->dirty = true;
        pthread_mutex_unlock(&f->mu);
    }
}

/* A shard whose backlog the stream did not tell at its taking (servers electing a leader),
 * and whose consumer delivered nothing a second after it began, has nothing to replay: it is
 * ready (one with a backlog, after 10 s: what was there expired before it came). And a consumer
 * silent for 10 s is asked after (one per call, each at most every 10 s, the servers given 2 s to
 * answer): one whose server died is gone (ephemeral consumers live on one server). Then every
 * consumer silent as long is suspect (the same server held a share of them) and the balancer makes
 * each again after the last message taken: a few milliseconds each, where asking after them one by
 * one would take seconds each. */
void sn_fleet_spans_mark_ready(struct sn_fleet *f)
{
    int64_t now = sn_mono_ms();
    bool lost = false;
    for (unsigned i = 0; i < SN_FLEET_SPAN_SHARDS; i++) {
        struct span_shard *sh = &f->shards[i];
        if (atomic_load(&sh->active) && !atomic_load(&sh->ready) &&
            atomic_load(&sh->last_seq) == atomic_load(&sh->seq_at_sub) &&
            now - atomic_load(&sh->since_ms) > (atomic_load(&sh->backlog) ? 10000 : 1000))
            atomic_store(&sh->ready, true);
    }
    for (unsigned k = 0; k < SN_FLEET_SPAN_SHARDS && !lost; k++) {
        struct span_shard *sh = &f->shards[(f->spans_check_at + k) % SN_FLEET_SPAN_SHARDS];
        if (!atomic_load(&sh->active) || !sh->sub || now - atomic_load(&sh->heard_ms) < 10000 ||
            now - sh->checked_ms < 10000)
            continue;
        f->spans_check_at = sh->shard + 1;
        sh->checked_ms = now;
        jsConsumerInfo *ci = NULL;
        jsErrCode jerr = 0;
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.Wait = 2000;
        natsStatus st = natsSubscription_GetConsumerInfo(&ci, sh->sub, &jo, &jerr);
        jsConsumerInfo_Destroy(ci);
        if (st != NATS_OK && sn_link_up(f->link)) {
            unsigned n = 0;
            for (unsigned i = 0; i < SN_FLEET_SPAN_SHARDS; i++) {
                struct span_shard *o = &f->shards[i];
                if (o == sh || (atomic_load(&o->active) && o->sub &&
                                now - atomic_load(&o->heard_ms) >= 10000)) {
                    atomic_store(&o->lost, true);
                    n++;
                }
            }
            sn_log(SN_LOG_WARN, "fleet",
                   "span shard %u: its consumer is gone (%s): it and %u other silent ones made "
                   "again",
                   sh->shard, natsStatus_GetText(st), n - 1);
            lost = true;
        }
        break; /* one a call */
    }
    if (lost) {
        pthread_mutex_lock(&f->mu);
        f->dirty = true;
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
    }
}

void sn_fleet_spans_stop(struct sn_fleet *f)
{
    for (size_t i = 0; i < f->spans_ngrave; i++)
        natsSubscription_Destroy(f->spans_grave[i]); /* the link is closed */
    free(f->spans_grave);
    f->spans_grave = NULL;
    f->spans_ngrave = 0;
    for (unsigned i = 0; i < SN_FLEET_SPAN_SHARDS; i++) {
        atomic_store(&f->shards[i].active, false);
        natsSubscription_Destroy(f->shards[i].sub); /* the link is closed: no callback after */
        f->shards[i].sub = NULL;
    }
}

json_t *sn_fleet_spans_beat(struct sn_fleet *f)
{
    json_t *a = json_array();
    for (unsigned i = 0; a && i < SN_FLEET_SPAN_SHARDS; i++)
        if (atomic_load(&f->shards[i].active) && atomic_load(&f->shards[i].ready))
            json_array_append_new(a, json_integer(i));
    return a;
}

_Static_assert(SN_FLEET_SPAN_SHARDS == 64, "a shard mask is 64 bits");

uint64_t sn_fleet_span_mask(struct sn_fleet *f)
{
    uint64_t m = 0;
    for (unsigned i = 0; i < SN_FLEET_SPAN_SHARDS; i++)
        if (atomic_load(&f->shards[i].active) && atomic_load(&f->shards[i].ready))
            m |= 1ULL << i;
    return m;
}

size_t sn_fleet_span_servers(struct sn_fleet *f, char (*api)[160], uint64_t *mask, size_t max)
{
    size_t n = 0;
    int64_t now = sn_mono_ms();
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->nm && n < max; i++) {
        const struct member *m = &f->m[i];
        const char *url = json_string_value(json_object_get(m->v, "api"));
        if (m->kind != 'n' || strcmp(m->name, f->id) == 0 || !url ||
            now - m->seen_ms > SN_FLEET_NODE_DEAD_MS)
            continue;
        uint64_t bits = 0;
        size_t k;
        json_t *o;
        json_array_foreach(json_object_get(m->v, "spans"), k, o)
        {
            json_int_t sh = json_integer_value(o);
            if (sh >= 0 && sh < SN_FLEET_SPAN_SHARDS)
                bits |= 1ULL << sh;
        }
        if (!bits)
            continue;
        snprintf(api[n], 160, "%s", url);
        mask[n++] = bits;
    }
    pthread_mutex_unlock(&f->mu);
    return n;
}

bool sn_fleet_serves_all_spans(struct sn_fleet *f)
{
    for (unsigned i = 0; i < SN_FLEET_SPAN_SHARDS; i++)
        if (!atomic_load(&f->shards[i].active) || !atomic_load(&f->shards[i].ready))
            return false;
    return true;
}

/* ---- Any node: spans onto the bus ------------------------------------------------------------ */

int sn_fleet_publish_spans(struct sn_fleet *f, const struct sn_span_batch *b, char *why,
                           size_t whylen)
{
    uint64_t nonce = (uint64_t)f->started_ms * 1000000ULL + atomic_fetch_add(&f->span_nonce, 1);
    struct sn_span_send_stats st = {0};
    int rc =
        sn_fleet_spans_send(f->link, f->id, nonce, b, f->span_past, sn_now(), &st, why, whylen);
    atomic_fetch_add(&f->span_msgs, st.msgs);
    atomic_fetch_add(&f->spans_published, st.spans);
    return rc;
}
