/*
 * The flight recorder in a fleet (docs/recorder.md, "In a fleet"): every host that reports
 * instrumentations (each `sonde agent --nats`, and each `sonde serve --nats` node, with its
 * node id as host name) runs one of these beside its recorder (rec/recorder.h, the same object
 * a single `sonde serve` uses), so that
 *
 *   sessions   a fleet session is a key rec.<name> in the bucket sonde_defs (its spec: {name,
 *              events, size-per-cpu, predicate}); each host watches "rec.>" and starts the
 *              session in its own recorder on a put, stops it on a delete (its watcher, kept
 *              across reconnects, resumes where it was: a delete made meanwhile arrives);
 *   snapshots  a node whose trigger fires publishes a request {id, session} on the core
 *              subject sonde.recorder.snap; every host holding the session takes a whole-ring
 *              snapshot (sn_recorder_snapshot_window(SN_RECORDER_WHOLE_RING)), archives it
 *              (core/tar.h: kernel/... and sonde-snapshot.json) and puts it on the stream
 *              SONDE_TRACES, subject sonde.traces.<id>.<host>, in chunks of
 *              SN_FLEET_REC_CHUNK bytes (headers Sonde-Chunk "i/n" and Sonde-Size; a host that
 *              cannot answers one message with a Sonde-Error header); the node reads
 *              sonde.traces.<id>.> until every expected host is whole or its wait is over, and
 *              unpacks each host's archive into DATA/snapshots/<id>/<host>/ beside an index
 *              naming the hosts expected, received, failed and missing.
 *
 * The stream keeps archives SN_FLEET_REC_KEEP_S seconds, at most SN_FLEET_REC_STREAM_MAX bytes
 * in all (the oldest go first; the first host to need it creates it, halving the cap until the
 * servers' JetStream storage takes it); one host's archive is at most SN_FLEET_REC_ARCHIVE_MAX
 * bytes.
 *
 * Threads: the watcher's (sessions) and cnats's delivery thread of the request subscription
 * (a host's snapshot is taken there, so requests are served one at a time); the gathering
 * runs on the caller's thread (the triggers').
 */
#ifndef SN_FLEET_FLEET_REC_H
#define SN_FLEET_FLEET_REC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet/link.h"
#include "rec/recorder.h"

#define SN_FLEET_REC_CHUNK       (512u << 10)       /* bytes of an archive per message */
#define SN_FLEET_REC_ARCHIVE_MAX ((size_t)1 << 30)  /* bytes of one host's archive */
#define SN_FLEET_REC_STREAM_MAX  ((int64_t)8 << 30) /* bytes of the stream, in all */
#define SN_FLEET_REC_STREAM_MIN                                                                    \
    ((int64_t)64 << 20)            /* ... or less, down to this, when                              \
                                      the servers' storage is smaller */
#define SN_FLEET_REC_KEEP_S  86400 /* seconds the stream keeps them */
#define SN_FLEET_REC_WAIT_MS 30000 /* the gathering's wait, default */

struct sn_fleet_rec; /* opaque */

/* Starts the watcher and the request subscription on link (borrowed, open) for recorder r
 * (borrowed; both outlive the object), this host being host (a valid fleet host name).
 * The link need not be up yet. 0 with *out, or -errno with why. */
int sn_fleet_rec_open(struct sn_link *link, struct sn_recorder *r, const char *host,
                      struct sn_fleet_rec **out, char *why, size_t whylen);
/* Stops the watcher and the subscription; a gathering under way ends at once (as if its wait
 * were over). The object stays for the threads still holding it. NULL and twice are fine. */
void sn_fleet_rec_halt(struct sn_fleet_rec *fr);
/* Halts (when not yet) and frees; the fleet sessions keep running in the recorder
 * (its owner frees it). NULL is fine. */
void sn_fleet_rec_close(struct sn_fleet_rec *fr);

/* Whether session name is a fleet session (its key is in sonde_defs as far as this host has
 * heard). */
bool sn_fleet_rec_is_fleet(struct sn_fleet_rec *fr, const char *name);

/* A fleet session from spec ({name, events, size-per-cpu, predicate}; checked as the API
 * checks a session's): started in this host's recorder first (its refusal: -EINVAL, -EEXIST,
 * -ENOSPC or the session's -errno, with why), then put as rec.<name> (the bus down: the local
 * session is stopped again, -ENOTCONN). 0 or -errno with why. */
int sn_fleet_rec_create(struct sn_fleet_rec *fr, const json_t *spec, char *why, size_t whylen);
/* Deletes fleet session name from sonde_defs (every host stops it) and stops it here. 0,
 * -ENOENT (no such fleet session), or -errno of the bus. */
int sn_fleet_rec_delete(struct sn_fleet_rec *fr, const char *name);

/* Starts a session in r from spec (the one parser of a spec, for the API and the watcher).
 * 0 or -errno with why, as sn_recorder_start_opts(). */
int sn_fleet_rec_start_spec(struct sn_recorder *r, const json_t *spec, char *why, size_t whylen);

/*
 * A fleet snapshot of session: asks every host of expected (an array of host names) for its
 * whole ring, waits up to wait_ms for their archives, and writes root/ID (ID =
 * SESSION-YYYYMMDDTHHMMSSZ-fXXXXXX, into id) holding <host>/kernel/... for each host received
 * and sonde-snapshot.json: {id, session, fleet: true, window: {of: "ring"}, tenant: null,
 * hosts: {expected, received, failed: {host: why}, missing}}. *hosts gets that "hosts" object
 * (owned; also on failure when it got that far). Returns 0 when at least one host's trace is
 * in it, -ENODATA when none came (the directory is still written, with the index alone),
 * -ENOTCONN (the bus is down: nothing written), or -errno, with why.
 */
int sn_fleet_rec_snapshot(struct sn_fleet_rec *fr, const char *session, const json_t *expected,
                          const char *root, int wait_ms, char *id, size_t idlen, json_t **hosts,
                          char *why, size_t whylen);

/* A fleet snapshot another node took, made here: its index read from the stream (the firing
 * node's "hosts"), the archives of the hosts it received gathered again (up to 10 s) into
 * root/ID, as sn_fleet_rec_snapshot() writes it. 0, -ENOENT (no such snapshot on the bus: never,
 * or older than the stream keeps), or -errno, with why. */
int sn_fleet_rec_fetch(struct sn_fleet_rec *fr, const char *id, const char *root, char *why,
                       size_t whylen);
/* The fleet snapshots the stream holds (their indexes), as a JSON array of ids (owned; empty
 * when the bus is down). */
json_t *sn_fleet_rec_list(struct sn_fleet_rec *fr);

#endif
