/*
 * Flight-recorder triggers (docs/recorder.md, "Triggers"): a trigger names a recording session
 * (rec/recorder.h) and a condition (serve/trigger_cond.h) on one of the server's
 * instrumentations; when the condition holds for its seconds, the session's whole ring is
 * snapshotted `post` seconds later (so the seconds around the outlier are in it) under
 * DATA/snapshots, at most once per `min-interval`, and the firing is recorded in the fired
 * list with the condition, the value, the key and the snapshot's id.
 *
 * Where values come from: the aggregator's listener (agg/agg.h), told of each second of an
 * instrumentation a frame was added for. It only queues (key, second); a thread of the
 * triggers reads the second's slot (sn_agg_slot_get()), judges the conditions and takes the
 * snapshots, so neither the agent nor the ingest path ever waits for a snapshot.
 *
 * A second is judged when its first frame arrives (on one host, the whole second) and judged
 * again when more frames come for it and it did not hold yet; "for N s" counts consecutive
 * seconds (slots of the instrumentation's granularity) that held. Triggers live in memory only
 * (as sessions do), at most SN_TRIGGERS_MAX. Thread-safe.
 */
#ifndef SN_SERVE_TRIGGERS_H
#define SN_SERVE_TRIGGERS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define SN_TRIGGERS_MAX       32
#define SN_TRIGGERS_FIRED_MAX 256   /* fired entries kept (the oldest go first) */
#define SN_TRIGGER_INTERVAL   60    /* default min-interval, seconds */
#define SN_TRIGGER_POST       1     /* default post, seconds */
#define SN_TRIGGER_POST_MAX   60    /* post, at most */
#define SN_TRIGGER_IVAL_MAX   86400 /* min-interval, at most */

struct sn_server;
struct sn_triggers;

/* What a trigger is made of (borrowed). */
struct sn_trigger_spec {
    const char *name;    /* as a session's name (sn_recorder_name_ok()) */
    const char *session; /* a running session of s->recorder */
    uint64_t instn;      /* an instrumentation of the operator's scope */
    const char *when;    /* the condition's text */
    const char *key;     /* NULL: the instrumentation's total; "*": any one key; else that key
                          * of its discrete decomposition */
    uint32_t min_interval, post; /* seconds */
};

/* Triggers of server s: listens to s->agg (which must be open) and starts their thread;
 * snapshots go under snap_root. Returns 0 or -errno. */
int sn_triggers_open(struct sn_server *s, const char *snap_root, struct sn_triggers **out);
/* Stops the thread (a snapshot being taken is finished first); the listener does nothing from
 * then on. Call before s->recorder is freed. NULL is fine. */
void sn_triggers_stop(struct sn_triggers *t);
/* Frees t, after sn_triggers_stop() and once nothing can call the aggregator's listeners. */
void sn_triggers_free(struct sn_triggers *t);

/* Adds a trigger. Returns 0, or with what is wrong in why: -EINVAL (a bad name, condition, key
 * or number), -ENOENT (no such instrumentation or session), -EEXIST (the name is taken),
 * -ENOSPC (SN_TRIGGERS_MAX triggers). */
int sn_triggers_add(struct sn_triggers *t, const struct sn_trigger_spec *spec, char *why,
                    size_t len);
/* Removes trigger name (its fired entries and snapshots stay). Returns 0 or -ENOENT. */
int sn_triggers_remove(struct sn_triggers *t, const char *name);

/* The triggers as a JSON array (name NULL), or trigger name's object (NULL: none):
 * {name, session, instrumentation, when, key, min-interval, post, created, fires, suppressed,
 *  snapshots, failures, streak, fired: [entries]}. */
json_t *sn_triggers_json(struct sn_triggers *t, const char *name);
/* The fired list, oldest first: [{id, trigger, session, condition, key, value, second,
 * fired_ms, snapshot (its id, or null while pending or failed), state: "pending" | "taken" |
 * "failed", error}]. */
json_t *sn_triggers_fired_json(struct sn_triggers *t);

#endif
