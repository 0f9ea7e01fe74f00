/*
 * Inside a fleet node (serve/fleet.h): the state that serve/fleet.c (membership, definitions,
 * ownership and consumers) and serve/fleet_history.c (rollups on the bus, history rebuilt
 * from the streams) share. Not for anything outside serve/fleet*.c.
 */
#ifndef SN_SERVE_FLEET_INT_H
#define SN_SERVE_FLEET_INT_H

#include <jansson.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "fleet/link.h"
#include "fleet/names.h"
#include "serve/server.h"
#include "store/record.h"

/* A node or an agent heard on the members bucket. */
struct member {
    char kind; /* 'n' node, 'a' agent */
    char name[SN_FLEET_HOST_MAX + 1];
    int64_t seen_ms; /* monotonic ms of its last heartbeat here */
    json_t *v;       /* its last heartbeat */
};

/* An instrumentation this node consumes (kept until close once made: cnats may still be in
 * its callback after an unsubscribe, so the struct outlives every subscription of it). */
/* Frames taken off the bus and not yet handed to the data path: a consumer gathers a burst
 * (every host sends its second at once) into one batch, one new slot per second of it, not one
 * per frame. It hands the batch over when it is full or SN_FLEET_BATCH_MS after its first
 * frame (serve/fleet.c: on_frame_msg()). */
#define SN_FLEET_BATCH    256
#define SN_FLEET_BATCH_MS 100
struct sn_fleet_batch {
    struct sn_wire_frame fr[SN_FLEET_BATCH];
    size_t n;
    int64_t since_ms;    /* (monotonic) when its first frame came */
    int64_t skip_before; /* frames older than memory, of seconds before this, are dropped: the
                          * store had them when the share was taken over (0: none) */
};

struct owned {
    struct sn_fleet *f;
    char key[SN_SCOPE_MAX + 24];
    natsSubscription *sub;     /* NULL while not owned */
    _Atomic uint64_t last_seq; /* the stream sequence of the last frame taken */
    _Atomic uint64_t pending;  /* frames of the stream still to come, at the last one */
    _Atomic uint64_t frames;   /* frames taken */
    _Atomic int64_t last_t;    /* the second of the last frame taken */
    _Atomic int64_t since_ms;  /* (monotonic) when this node began consuming it */
    _Atomic int64_t heard_ms;  /* (monotonic) the last message its consumer delivered */
    int64_t checked_ms;        /* (monotonic) its consumer last asked after (balancer only) */
    bool lost;                 /* its consumer is gone on the servers: restart it (balancer) */
    _Atomic bool active;
    _Atomic bool ready;       /* caught up with the stream after taking over: it answers queries */
    pthread_mutex_t batch_mu; /* batch: its consumer's callback, and whoever stops that */
    struct sn_fleet_batch batch;
};

/* Where a restarted node resumes its shards: the sequences taken SN_FLEET_SPANS_LAG_S seconds
 * before (what its span store has written by then), saved each second in the data directory. */
#define SN_FLEET_SPANS_LAG_S 10
#define SN_FLEET_SPANS_FILE  "fleet-spans.json"

/* A shard of the trace store this node consumes (fleet_spans.c); one per shard, made at open. */
struct span_shard {
    struct sn_fleet *f;
    unsigned shard;
    char key[16];                /* "spans/<shard>" */
    natsSubscription *sub;       /* NULL while not consumed (balancer's) */
    _Atomic uint64_t last_seq;   /* the stream sequence of the last message taken */
    _Atomic uint64_t pending;    /* messages still to come, at the last one */
    _Atomic uint64_t spans;      /* spans taken */
    _Atomic int64_t since_ms;    /* (monotonic) when this node began consuming it */
    _Atomic int64_t heard_ms;    /* (monotonic) the last message its consumer delivered */
    _Atomic uint64_t seq_at_sub; /* last_seq when its consumer was made */
    int64_t checked_ms;          /* its consumer last asked after (balancer only) */
    _Atomic bool lost;           /* its consumer is gone on the servers: made again */
    bool restart;                /* the link came back: its consumer made again (balancer's) */
    _Atomic bool active;
    _Atomic bool ready;   /* caught up with the stream since it took the shard: it answers */
    _Atomic bool backlog; /* its subject had messages to replay when taken: ready once they are
                           * taken, never by the quiet-second rule (fleet_spans.c) */
};

struct sn_fleet {
    struct sn_server *s;
    struct sn_link *link;
    kvStore *defs, *members;
    char id[SN_FLEET_HOST_MAX + 1], zone[64], api[128];
    int64_t started_ms;

    pthread_mutex_t mu;     /* members, owned */
    pthread_cond_t cv;      /* the balancer's wake-up: stop, a change of members or definitions */
    pthread_cond_t beat_cv; /* the heartbeat's: stop */
    struct member *m;
    size_t nm, capm;
    struct owned **own;
    size_t nown, capown;
    bool dirty;       /* ownership to recompute */
    bool resubscribe; /* the link came back: consumers restart where they were */

    struct sn_fleet_rec *rec; /* the flight recorder on the bus (fleet/fleet_rec.h) */
    struct sn_rec_buf rbuf;   /* the store's writer thread's: a rollup's message */
    struct fleet_job *jobs;   /* rebuilds to run, in order (f->mu; fleet_history.c) */
    size_t njobs, capjobs;
    pthread_cond_t jobs_cv;

    kvWatcher *wdefs, *wmembers; /* each its thread's (made again when watch_gen moves) */
    _Atomic unsigned watch_gen;
    _Atomic int64_t members_heard_ms; /* (monotonic) the members' watcher's last entry */
    pthread_t tdefs, tmembers, tbeat, tbalance, trebuild;
    bool tdefs_on, tmembers_on, tbeat_on, tbalance_on, trebuild_on;
    _Atomic bool stop;

    struct span_shard shards[SN_FLEET_SPAN_SHARDS]; /* fleet_spans.c */
    int64_t spans_keep_s;                           /* the spans stream's max age */
    int64_t spans_created; /* the spans stream's creation (ns): its identity */
    uint64_t spans_ring[SN_FLEET_SPANS_LAG_S][SN_FLEET_SPAN_SHARDS]; /* last_seq, each second */
    unsigned spans_ring_at;                                          /* (the balancer's) */
    int64_t spans_saved_ms;
    unsigned spans_check_at;        /* the next shard whose consumer is asked after (balancer's) */
    natsSubscription **spans_grave; /* lost consumers' subscriptions, destroyed at close (mu) */
    size_t spans_ngrave, spans_ngrave_cap;
    _Atomic uint64_t span_nonce; /* requests published from here */
    /* the spans taken here: the past of trace.spans instrumentations (fleet/span_past.h) */
    struct sn_span_past *span_past;
    _Atomic uint64_t spans_in, spans_bad, spans_foreign, spans_published, span_msgs;

    _Atomic uint64_t frames, batches, redelivered, frames_late, frames_bad, frames_foreign, replays,
        restarts, defs_applied, link_down, rebuilt, rollups_sent, rollups_rebuilt;
};

/* One frame off the bus for o's instrumentation (msg borrowed), checked (the bad and forged
 * are counted and dropped) and put in b, which is handed over when full (fleet.c). */
void sn_fleet_take_frame(struct sn_fleet *f, struct owned *o, natsMsg *msg,
                         struct sn_fleet_batch *b);
/* Hands b's frames to the one data path (the late ones to the store, but for those b skips),
 * counts them, and empties b. Returns how many it took. */
uint64_t sn_fleet_take_flush(struct sn_fleet *f, struct owned *o, struct sn_fleet_batch *b);
/* Empties b without handing anything over. */
void sn_fleet_take_drop(struct sn_fleet_batch *b);

/* Whether this node owns key by rendezvous hashing over the live nodes (f->mu held). */
bool sn_fleet_owns_locked(struct sn_fleet *f, const char *key);
/* Spans (fleet_spans.c): the stream ensured and the shards set up (0 or -errno with why);
 * consumers made to follow ownership (the balancer; resub: restart every consumer where it
 * was: the link came back); stop (every consumer gone: after the link closed). */
int sn_fleet_spans_start(struct sn_fleet *f, char *why, size_t whylen);
void sn_fleet_spans_rebalance(struct sn_fleet *f, bool resub);
void sn_fleet_spans_mark_ready(struct sn_fleet *f);
void sn_fleet_spans_stop(struct sn_fleet *f);
/* Saves where each shard was SN_FLEET_SPANS_LAG_S seconds ago (at most once a second; now:
 * where it is: after the consumers stopped). */
void sn_fleet_spans_save(struct sn_fleet *f, bool now);
/* The shards this node owns and has caught up with, as a heartbeat's JSON array of numbers. */
json_t *sn_fleet_spans_beat(struct sn_fleet *f);

/* History (fleet_history.c): the rollup streams ensured and the store's rollups put on the
 * bus, and the rebuild thread started (0 or -errno with why); a rebuild of o's history up to
 * until_ns (the stream's arrival time where its live consumer starts) queued: the whole of it
 * (after_t INT64_MIN: a share the store never held), or its seconds after after_t (the store's
 * newest: a node that was down since); stop (the
 * listener cleared, the thread joined: after f->stop is set) and fini (memory freed). */
int sn_fleet_history_start(struct sn_fleet *f, char *why, size_t whylen);
void sn_fleet_queue_rebuild(struct sn_fleet *f, struct owned *o, int64_t after_t, int64_t until_ns);
void sn_fleet_history_stop(struct sn_fleet *f);
void sn_fleet_history_fini(struct sn_fleet *f);

#endif
