/*
 * A fleet node's history on the bus (serve/fleet.h, docs/fleet.md): the rollup records its
 * store writes go onto the streams SONDE_ROLLUPS_1M/1H/1D, and a share this node's store never
 * held has its history rebuilt from the frames stream and those streams (one it held until
 * some second: the seconds after it).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/grow.h"
#include "core/log.h"
#include "fleet/rollup_msg.h"
#include "serve/fleet.h"
#include "serve/fleet_int.h"
#include "store/tiers.h"

static const enum sn_tier rollup_tiers[] = {SN_TIER_1M, SN_TIER_1H, SN_TIER_1D};

/* The three rollup streams, each keeping what its tier keeps (this node's --tiers; an existing
 * stream with a shorter age is lengthened), one message per subject: the latest record of
 * each period. */
static int ensure_rollups(struct sn_fleet *f, char *why, size_t whylen)
{
    const struct sn_tiers *tiers = &sn_store_options(f->s->store)->tiers;

    for (size_t i = 0; i < 3; i++) {
        enum sn_tier t = rollup_tiers[i];
        char name[64], subj[64];
        int64_t keep_ns = (tiers->keep[t] ? tiers->keep[t] : 86400) * 1000000000LL;
        sn_fleet_rollup_stream(sn_tier_name(t), name, sizeof(name));
        snprintf(subj, sizeof(subj), "%s%s.>", SN_FLEET_ROLLUPS_PREFIX, sn_tier_name(t));
        int rc = sn_link_ensure_stream(f->link, name, subj, keep_ns, 1, why, whylen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The store wrote a rollup record: an owner puts it on the bus (asynchronously: this is the
 * store's writer thread, inside its transaction), where it replaces the period's last one. */
static void on_rollup(void *arg, const char *key, enum sn_tier tier, int64_t t,
                      const struct sn_ds_slot *s, const char *const *src_names, uint8_t arity,
                      bool values)
{
    struct sn_fleet *f = arg;
    char subj[SN_FLEET_SUBJECT_MAX];

    if (!sn_fleet_owns(f, key) ||
        sn_fleet_rollup_subject(key, sn_tier_name(tier), t, subj, sizeof(subj)) < 0)
        return;
    ssize_t n = sn_rollup_msg_encode(s, arity, values, (uint8_t)tier, t, src_names, &f->rbuf);
    if (n < 0)
        return;
    if (js_PublishAsync(sn_link_js(f->link), subj, f->rbuf.p, (int)n, NULL) == NATS_OK)
        atomic_fetch_add(&f->rollups_sent, 1);
}

/* ---- Rebuilding history from the stream -------------------------------------------------- */

/*
 * A node that takes over an instrumentation its store knows nothing of (a new node with an
 * empty data directory, or a share it never held) rebuilds its history from the frames
 * stream: every frame that arrived before the live consumer's start (until_ns, the stream's
 * arrival time) is taken as the live consumer takes frames, so each frame goes exactly once
 * into memory (when recent) or into the store, whose rollups follow. The live consumer takes
 * everything from until_ns on; the two never overlap. A node whose store holds the share up
 * to some second (it was down, or owned it once and not since) rebuilds only the seconds after
 * it, the same way. One rebuild at a time, in the node's rebuild thread, held back while the
 * store has more than REBUILD_BACKLOG slots to write.
 */
#define REBUILD_BACKLOG 20000

struct fleet_job {
    struct owned *o;
    int64_t after_t; /* INT64_MIN: the whole history; else the seconds after it */
    int64_t until_ns;
};

/* Where a rebuild's reading of a stream starts: its beginning, or (a gap after after_t) a
 * minute before after_t's end arrived (frames arrive after their second; a minute covers
 * agents' clocks and sends), the seconds the store has being dropped by their time. */
static void rebuild_start(const struct fleet_job *j, jsSubOptions *so)
{
    if (j->after_t == INT64_MIN) {
        so->Config.DeliverPolicy = js_DeliverAll;
        return;
    }
    so->Config.DeliverPolicy = js_DeliverByStartTime;
    so->Config.OptStartTime = (j->after_t + 1 - 60) * 1000000000LL;
}

/* Waits (bounded: 2 min) until the store has written what it was given: its queue stops
 * shrinking for a second (rollups of periods still open stay queued until they close). */
static void store_drained(struct sn_fleet *f)
{
    uint64_t last = UINT64_MAX;
    int still = 0;
    for (int k = 0; k < 2400 && !atomic_load(&f->stop); k++) {
        struct sn_store_stats ss;
        sn_store_stats(f->s->store, &ss);
        if (ss.pending == 0)
            return;
        still = ss.pending >= last ? still + 1 : 0;
        if (still >= 20)
            return;
        last = ss.pending;
        struct timespec d = {0, 50 * 1000000L};
        nanosleep(&d, NULL);
    }
}

/* The rollup records of o's instrumentation on the bus into the store, each replacing the
 * period's record there: after the frames (their merges recompute the rollups they touch,
 * which at the frames stream's oldest period are partial; the bus's records are whole), finer
 * tiers first. Returns how many. */
static uint64_t rebuild_rollups(struct sn_fleet *f, const struct fleet_job *j)
{
    struct owned *o = j->o;
    uint64_t n = 0;

    store_drained(f);
    for (size_t i = 0; i < 3 && !atomic_load(&f->stop) && atomic_load(&o->active); i++) {
        enum sn_tier tier = rollup_tiers[i];
        char filter[SN_FLEET_SUBJECT_MAX], stream[64];
        jsSubOptions so;
        natsSubscription *sub = NULL;
        jsErrCode jerr = 0;
        if (!sn_store_keep(f->s->store, o->key, tier) ||
            sn_fleet_rollup_filter(o->key, sn_tier_name(tier), filter, sizeof(filter)) < 0 ||
            sn_fleet_rollup_stream(sn_tier_name(tier), stream, sizeof(stream)) < 0)
            continue;
        jsSubOptions_Init(&so);
        so.Stream = stream;
        so.Ordered = true;
        rebuild_start(j, &so);
        if (js_SubscribeSync(&sub, sn_link_js(f->link), filter, NULL, &so, &jerr) != NATS_OK)
            continue;
        while (!atomic_load(&f->stop) && atomic_load(&o->active)) {
            natsMsg *m = NULL;
            jsMsgMetaData *meta = NULL;
            if (natsSubscription_NextMsg(&m, sub, 2000) != NATS_OK)
                break;
            bool last = natsMsg_GetMetaData(&meta, m) == NATS_OK && meta->NumPending == 0;
            jsMsgMetaData_Destroy(meta);
            struct sn_rollup_msg r;
            if (sn_rollup_msg_decode(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &r) ==
                    0 &&
                r.tier == tier) {
                if (sn_store_put(f->s->store, o->key, tier, &r.slot, (const char *const *)r.src) ==
                    0)
                    n++;
                sn_rollup_msg_fini(&r);
            } else {
                atomic_fetch_add(&f->frames_bad, 1);
            }
            natsMsg_Destroy(m);
            if (last)
                break;
            if (n % 1000 == 0)
                store_drained(f);
        }
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
        store_drained(f);
    }
    atomic_fetch_add(&f->rollups_rebuilt, n);
    return n;
}

static void rebuild(struct sn_fleet *f, const struct fleet_job *j)
{
    char filter[SN_FLEET_SUBJECT_MAX];
    jsSubOptions so;
    natsSubscription *sub = NULL;
    jsErrCode jerr = 0;
    uint64_t n = 0, seen = 0;
    int64_t t0 = sn_mono_ms();
    struct sn_fleet_batch *b = calloc(1, sizeof(*b)); /* the rebuild's own */

    if (!b || sn_fleet_frame_filter(j->o->key, filter, sizeof(filter)) < 0) {
        free(b);
        return;
    }
    if (j->after_t != INT64_MIN)
        b->skip_before = j->after_t + 1;
    jsSubOptions_Init(&so);
    so.Stream = SN_FLEET_FRAMES_STREAM;
    so.Ordered = true;
    rebuild_start(j, &so);
    if (js_SubscribeSync(&sub, sn_link_js(f->link), filter, NULL, &so, &jerr) != NATS_OK) {
        sn_log(SN_LOG_WARN, "fleet", "instrumentation %s: cannot read its history: %d", j->o->key,
               (int)jerr);
        free(b);
        return;
    }
    while (!atomic_load(&f->stop) && atomic_load(&j->o->active)) {
        natsMsg *m = NULL;
        jsMsgMetaData *meta = NULL;
        if (natsSubscription_NextMsg(&m, sub, 2000) != NATS_OK)
            break; /* nothing older left (or the bus is gone: the next takeover tries again) */
        bool done = false, last = false;
        if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
            done = meta->Timestamp >= j->until_ns;
            last = meta->NumPending == 0;
            jsMsgMetaData_Destroy(meta);
        }
        size_t before = b->n;
        if (!done)
            sn_fleet_take_frame(f, j->o, m, b);
        bool put = b->n > before;
        natsMsg_Destroy(m);
        int queued = 0;
        if (done || last || natsSubscription_GetPending(sub, &queued, NULL) != NATS_OK ||
            queued == 0 || b->n == SN_FLEET_BATCH - 1)
            n += sn_fleet_take_flush(f, j->o, b);
        if (done || last)
            break;
        if (put && ++seen % 1000 == 0) { /* the store writes what it was given before more */
            n += sn_fleet_take_flush(f, j->o, b);
            struct sn_store_stats ss;
            for (int k = 0; k < 600 && !atomic_load(&f->stop); k++) {
                sn_store_stats(f->s->store, &ss);
                if (ss.pending < REBUILD_BACKLOG)
                    break;
                struct timespec d = {0, 50 * 1000000L};
                nanosleep(&d, NULL);
            }
        }
    }
    n += sn_fleet_take_flush(f, j->o, b);
    free(b);
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    atomic_fetch_add(&f->rebuilt, n);
    uint64_t nr = rebuild_rollups(f, j);
    sn_log(SN_LOG_INFO, "fleet",
           "instrumentation %s: history rebuilt from %" PRIu64 " frame(s) and %" PRIu64
           " rollup record(s) of the streams in %.1f s",
           j->o->key, n, nr, (double)(sn_mono_ms() - t0) / 1000);
}

static void *rebuilder(void *arg)
{
    struct sn_fleet *f = arg;

    pthread_mutex_lock(&f->mu);
    while (!atomic_load(&f->stop)) {
        if (!f->njobs) {
            pthread_cond_wait(&f->jobs_cv, &f->mu);
            continue;
        }
        struct fleet_job j = f->jobs[0];
        memmove(&f->jobs[0], &f->jobs[1], (f->njobs - 1) * sizeof(*f->jobs));
        f->njobs--;
        pthread_mutex_unlock(&f->mu);
        rebuild(f, &j);
        pthread_mutex_lock(&f->mu);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

void sn_fleet_queue_rebuild(struct sn_fleet *f, struct owned *o, int64_t after_t, int64_t until_ns)
{
    pthread_mutex_lock(&f->mu);
    struct fleet_job *p = sn_grow(f->jobs, &f->capjobs, f->njobs + 1, sizeof(*p));
    if (p) {
        f->jobs = p;
        f->jobs[f->njobs++] = (struct fleet_job){.o = o, .after_t = after_t, .until_ns = until_ns};
        pthread_cond_signal(&f->jobs_cv);
    }
    pthread_mutex_unlock(&f->mu);
}

int sn_fleet_history_start(struct sn_fleet *f, char *why, size_t whylen)
{
    int rc = ensure_rollups(f, why, whylen);
    if (rc < 0)
        return rc;
    if (pthread_create(&f->trebuild, NULL, rebuilder, f) != 0) {
        snprintf(why, whylen, "cannot start a thread");
        return -EAGAIN;
    }
    f->trebuild_on = true;
    sn_store_on_rollup(f->s->store, on_rollup, f);
    return 0;
}

void sn_fleet_history_stop(struct sn_fleet *f)
{
    if (f->s && f->s->store)
        sn_store_on_rollup(f->s->store, NULL, NULL); /* after a tick in progress */
    pthread_mutex_lock(&f->mu);
    pthread_cond_broadcast(&f->jobs_cv);
    pthread_mutex_unlock(&f->mu);
    if (f->trebuild_on) /* it sees stop within 2 s */
        pthread_join(f->trebuild, NULL);
    f->trebuild_on = false;
}

void sn_fleet_history_fini(struct sn_fleet *f)
{
    free(f->jobs);
    f->jobs = NULL;
    sn_rec_buf_fini(&f->rbuf);
}
