/*
 * The bus: how frames and control messages travel between sources (agents, remote ingest) and
 * the aggregator inside one process, so that every source reaches the aggregator through one
 * path. In a fleet (docs/fleet.md) NATS JetStream carries the same three things between hosts
 * and serve/fleet.c hands them to this bus on each node:
 *
 *   what                       in process (this bus)             between hosts (NATS)
 *   frames of instrumentation  subscribers by key (or all);      stream SONDE_FRAMES, subject
 *     key K                    delivered synchronously in the    sonde.frames.<K>.<host>; an
 *                              publisher's thread, borrowed      owner's consumer publishes
 *                                                                each frame here
 *   control: enable, disable   one worker thread per host;       the definitions bucket
 *     K on host H (or all)     acks gathered with a timeout      sonde_defs, which every agent
 *                                                                watches
 *   per-source status          a table in the bus, set by acks   agents' heartbeats in
 *                              and sources, watched in order     sonde_members, reported here
 *
 * Frames. A frame subscriber names an instrumentation key (a frame's id, "tenant/N" in a
 * tenant's scope) or NULL for every frame. sn_bus_publish_frames() calls every matching
 * subscriber in the publisher's thread, in subscription order, lending it the frames (zero
 * copy: valid for the call only). Frames travel in batches of one instrumentation (a fleet's
 * consumer hands over what NATS delivered at once, an ingest body its frames), so that the
 * aggregator makes one new slot per second of a batch, not one per frame; a batch of one is
 * the single frame. Several threads may publish at once, so a callback may run in several
 * threads at once.
 *
 * Control. A control subscriber is a host (a source able to run instrumentations).
 * sn_bus_publish_control() hands the message to every subscribed host it is addressed to,
 * each in that subscriber's own thread, and waits for every acknowledgement or the timeout: a
 * host that does not answer in time gets a timed-out ack (-ETIMEDOUT), never a hang. Acks say
 * per host whether the operation was done (rc 0) or why not.
 *
 * Status. Whether a source runs an instrumentation is the source's to say, not the value
 * code's guess: each (host, key) has a status, "running since T" or "cannot run: why", which
 * acks of enable and disable set, which a source can report at any time (an agent whose probe
 * fails later), which anyone can query (sn_bus_status()) and watch (sn_bus_subscribe_status()).
 *
 * Thread safety: every function may be called from any thread, except sn_bus_close(), which
 * must come after every other call has returned. Unsubscribing waits for the subscriber's
 * calls in progress, so after sn_bus_unsubscribe() returns its callback is never called again
 * and its arg may be freed (see sn_bus_unsubscribe() for calls from inside a callback).
 *
 * Errors are negative errno values; see each function.
 */
#ifndef SN_BUS_BUS_H
#define SN_BUS_BUS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "wire/frame.h"

#define SN_BUS_MAX_HOST 255 /* a host name's bytes (longer ones are refused) */
#define SN_BUS_MAX_KEY  255 /* an instrumentation key's bytes (longer ones are refused) */
#define SN_BUS_MAX_WHY  255 /* a reason's bytes (longer ones are cut) */

struct sn_bus;     /* opaque */
struct sn_bus_sub; /* a subscription: to frames, control messages or statuses */

/* Creates an empty bus into *out. Returns 0 or -ENOMEM (*out untouched). */
int sn_bus_open(struct sn_bus **out);
/* Unsubscribes what is still subscribed (joining control threads, and waiting for those of
 * hosts that unsubscribed from their own callbacks) and frees the bus; NULL is fine. Nothing
 * else may be using the bus then, and no callback may be running but those finishing. */
void sn_bus_close(struct sn_bus *bus);

/* ------------------------------------------------------------------------------------------
 * Frames
 */

/* A frame subscriber: f[0..n) (n >= 1, one instrumentation's) are borrowed for the call; ctx
 * is the publisher's (see sn_bus_publish_frames()). It sets rcs[i], frame i's result, which
 * the publisher gets back: the aggregator's says whether the frame was added (0) or why not. */
typedef void (*sn_bus_frame_fn)(void *arg, const struct sn_wire_frame *const *f, size_t n, int *rcs,
                                void *ctx);

/* Subscribes fn(arg, frame, ctx) to the frames of instrumentation key (copied; NULL: every
 * frame). Returns 0 with the subscription in *out, -EINVAL (fn NULL, key longer than
 * SN_BUS_MAX_KEY) or -ENOMEM. */
int sn_bus_subscribe_frames(struct sn_bus *bus, const char *key, sn_bus_frame_fn fn, void *arg,
                            struct sn_bus_sub **out);
/*
 * Delivers frames f[0..n) (borrowed; n >= 1; all of one instrumentation key, f[0]->id) to
 * every subscriber of that key and of every frame, in the publisher's thread, in subscription
 * order, each given ctx (may be NULL): the publisher's own, for what a subscriber tells it
 * beyond its results (e.g. ingest's reply counts what the aggregator's key cap folded).
 * rcs[i] receives the first non-zero result a subscriber gave frame i (the others are still
 * called), or 0 when each gave 0 or none matched. Returns 0; -EINVAL when a frame has no id or
 * another id than f[0]'s, or n is 0; -ENOMEM (nobody called); rcs[] is then untouched.
 */
int sn_bus_publish_frames(struct sn_bus *bus, const struct sn_wire_frame *const *f, size_t n,
                          int *rcs, void *ctx);
/* One frame: sn_bus_publish_frames() of f alone. Returns its result, or -EINVAL, -ENOMEM. */
int sn_bus_publish_frame(struct sn_bus *bus, const struct sn_wire_frame *f, void *ctx);

/* ------------------------------------------------------------------------------------------
 * Control: enable and disable, acknowledged per host
 */

enum sn_bus_op {
    SN_BUS_ENABLE = 1,  /* run key with definition def */
    SN_BUS_DISABLE = 2, /* stop running key (def is NULL) */
};

struct sn_bus_ctl {
    enum sn_bus_op op;
    const char *key;   /* the instrumentation key, as frames carry it */
    const json_t *def; /* the definition (a CA instrumentation object) for SN_BUS_ENABLE */
    const char *host;  /* the one host addressed, or NULL: every host */
};

struct sn_bus_ack {
    char host[SN_BUS_MAX_HOST + 1]; /* who answers: set by the bus before the callback */
    int rc;                         /* 0 done; a negative errno; -ETIMEDOUT: no answer in time */
    char why[SN_BUS_MAX_WHY + 1];   /* why not, for a person: "" when rc is 0 */
};

/* A control subscriber. It runs in its host's own thread; it fills ack->rc and ack->why
 * (ack->host is set already and kept; rc starts 0 and why ""; a positive rc becomes -EPROTO).
 * m and everything in it are valid for the call: the bus's own copy of the definition, shared
 * with the other hosts' threads, so never modified (json_deep_copy() it to keep it). */
typedef void (*sn_bus_ctl_fn)(void *arg, const struct sn_bus_ctl *m, struct sn_bus_ack *ack);

/* Subscribes host (copied) to control messages: starts its thread. Returns 0 with the
 * subscription in *out, -EINVAL (fn NULL, host empty or longer than SN_BUS_MAX_HOST), -EEXIST
 * (host is subscribed already), -ENOMEM, or -EAGAIN (no thread). */
int sn_bus_subscribe_control(struct sn_bus *bus, const char *host, sn_bus_ctl_fn fn, void *arg,
                             struct sn_bus_sub **out);
/*
 * Sends m (borrowed; the bus copies what it keeps) to every subscribed host it addresses and
 * waits up to timeout_ms (>= 0) for their acks. Returns 0 with *nacks the number of hosts
 * addressed and acks[0..min(*nacks, max)) their acks, sorted by host; a host that did not
 * answer in time has rc -ETIMEDOUT and why "no answer within N ms", one unsubscribed before
 * it answered -ESHUTDOWN. The acks also set each host's status of m->key (sn_bus_status()).
 * Returns -EINVAL (op unknown, key NULL or too long, def NULL for enable) or -ENOMEM, with no
 * message sent. acks may be NULL when max is 0. Waits at most timeout_ms (plus scheduling),
 * however the subscribers behave.
 */
int sn_bus_publish_control(struct sn_bus *bus, const struct sn_bus_ctl *m, struct sn_bus_ack *acks,
                           size_t max, int timeout_ms, size_t *nacks);
/* The number of control messages waiting in host's queue (not the one being answered): 0 when
 * none wait or host is not subscribed. For watching a busy host (and for tests to know that a
 * message is queued). */
size_t sn_bus_queued(struct sn_bus *bus, const char *host);

/* ------------------------------------------------------------------------------------------
 * Unsubscribing
 */

/*
 * Ends a subscription of either kind; NULL is fine. s must not be used after this. No call of its
 * callback starts after this begins, and it waits for the calls in progress (a control subscriber's
 * thread is joined, so a control callback that never returns makes this wait too); control messages
 * queued for it are answered -ESHUTDOWN at once. Called from inside a callback of the same bus (its
 * own or another subscriber's) while the subscription has calls in progress, it cannot wait for the
 * calling thread's own call: it returns at once, the subscription is freed when its last call
 * in progress returns, and calls in progress in other threads may still be running then.
 */
void sn_bus_unsubscribe(struct sn_bus_sub *sub);

/* ------------------------------------------------------------------------------------------
 * Per-source status
 */

enum sn_bus_state {
    SN_BUS_STOPPED = 0,     /* only in notifications: the status was cleared (at since_ms) */
    SN_BUS_RUNNING = 1,     /* the host runs key, since since_ms */
    SN_BUS_FAILED = 2,      /* the host cannot run this key: rc, why (since since_ms) */
    SN_BUS_UNSUPPORTED = 3, /* rc -EOPNOTSUPP: the host runs nothing of the kind (e.g. no BPF) */
};

struct sn_bus_status {
    char host[SN_BUS_MAX_HOST + 1];
    char key[SN_BUS_MAX_KEY + 1];
    enum sn_bus_state state;
    int64_t since_ms; /* Unix ms: when it started running, or when it last failed */
    int rc;           /* 0 when running, else why it cannot run */
    char why[SN_BUS_MAX_WHY + 1];
};

/*
 * Records what host says about key: rc 0 "running" (since now, or since the earlier time when it
 * was running already), -EOPNOTSUPP (= -ENOTSUP, what the agent says without BPF) "unsupported",
 * another rc < 0 "cannot run" (why may be NULL), and notifies the watchers. Acks do this for the
 * hosts that answer (enable: by its rc; a timed-out enable: failed; disable done: cleared).
 * Returns 0, -EINVAL (host or key empty or too long, rc > 0) or -ENOMEM.
 */
int sn_bus_report_status(struct sn_bus *bus, const char *host, const char *key, int rc,
                         const char *why);
/* Forgets host's status of key (it no longer runs it; key NULL: every key of host), notifying
 * the watchers of each with state SN_BUS_STOPPED. Returns the number of statuses removed. */
size_t sn_bus_clear_status(struct sn_bus *bus, const char *host, const char *key);
/* Copies the statuses of key (NULL: every key), sorted by key then host, into out[0..max).
 * Returns how many there are (more than max: only max copied); out may be NULL when max is 0. */
size_t sn_bus_status(struct sn_bus *bus, const char *key, struct sn_bus_status *out, size_t max);

/* A watcher of statuses: s (borrowed for the call) is a status as it now is, or as it was with
 * state SN_BUS_STOPPED when it was cleared. Watchers are called in the thread that made the
 * change, one change at a time in the order the table took them (so a mirror stays exact), under
 * the bus's status lock: a watcher must not report or clear statuses, subscribe watchers or
 * publish control messages (it may publish frames and unsubscribe). */
typedef void (*sn_bus_status_fn)(void *arg, const struct sn_bus_status *s);
/* Subscribes fn(arg, status) to the changes of key's statuses (key copied; NULL: every key);
 * what is in the table already is not replayed (read it with sn_bus_status() after
 * subscribing). Returns 0 with the subscription in *out, -EINVAL (fn NULL, key too long) or
 * -ENOMEM. The aggregator mirrors statuses so (NATS: a watch on the KV bucket). */
int sn_bus_subscribe_status(struct sn_bus *bus, const char *key, sn_bus_status_fn fn, void *arg,
                            struct sn_bus_sub **out);

#endif
