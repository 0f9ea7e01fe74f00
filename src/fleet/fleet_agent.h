/*
 * The agent in a fleet (`sonde agent --nats`): one struct sn_agent (agent/agent.h) whose
 * instrumentations come from the key-value bucket sonde_defs and whose frames go to the
 * stream SONDE_FRAMES (fleet/names.h), through an outbox (fleet/outbox.h) that keeps what the
 * broker has not acknowledged, so that a broker outage shorter than the buffer loses nothing.
 *
 *   definitions  a watcher on sonde_defs "inst.>" (pushed by the server: a change is applied
 *                within milliseconds): a put enables the value's "agent" definition under its
 *                "key" (a changed one is disabled, then enabled), a delete or purge disables
 *                it. After every (re)connect a fresh watcher reads the whole set again and the
 *                running set is made equal to it, so a late start or a reconnect converges.
 *   frames       the sink encodes each frame (wire/frame.h) into the outbox, subject
 *                sonde.frames.<inst>.<host>, id <host>.<inst>.<t>; a publisher thread sends
 *                what is new with js_PublishMsgAsync while the link is up, the acknowledgement
 *                handler removes it, and after a reconnect (or 5 s without an acknowledgement
 *                of the oldest) everything held is sent again, in order: JetStream drops the
 *                seconds it had by their ids. The agent's 1 Hz thread never waits on NATS.
 *   spans        with --otlp-listen or --zipkin-listen, a relay (fleet/span_relay.h) takes
 *                spans on this host and puts them on the bus as a node does; the trace.spans
 *                definitions of sonde_defs run there (span metrics, this host as source), the
 *                others in the kernel; without a relay the agent leaves trace.spans alone.
 *   recorder     a flight recorder (rec/recorder.h) whose fleet sessions and snapshots come
 *                over the bus (fleet/fleet_rec.h): this host records what sonde_defs' rec.>
 *                keys ask and answers the nodes' snapshot requests with its archive.
 *   heartbeat    agent.<host> in sonde_members every 2 s and at once when what runs changes:
 *                version, zone, BPF, the statuses of the instrumentations and the counters.
 *
 * Threads: the agent's own (the sink: encode, add to the outbox, wake the publisher), the
 * publisher, the watcher (definitions and heartbeats), and cnats's (acknowledgements, link
 * events). One lock guards the outbox and counters, one the statuses.
 */
#ifndef SN_FLEET_FLEET_AGENT_H
#define SN_FLEET_FLEET_AGENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/agent.h"
#include "fleet/link.h"

struct sn_fleet_agent; /* opaque */

struct sn_fleet_agent_opts {
    const struct sn_link_opts *link; /* --nats and its credentials (borrowed while open) */
    const char *cgroup;        /* --cgroup PATH: count only this cgroup and its descendants (NULL:
                                  the whole host) */
    const char *zone;          /* --zone, shown in the heartbeat (NULL: "") */
    const char *version;       /* shown in the heartbeat (NULL: "") */
    int64_t buffer_ms;         /* --buffer-seconds * 1000 (0: 120 s) */
    size_t buffer_bytes;       /* --buffer-bytes (0: 64 MiB) */
    const char *otlp_listen;   /* --otlp-listen ADDR: OTLP/HTTP relayed to the bus (NULL: off;
                                  fleet/span_relay.h) */
    const char *zipkin_listen; /* --zipkin-listen ADDR: Zipkin v2 relayed to the bus (NULL: off) */
};

/*
 * Opens the agent (ao: host name, key cap, ...) and the link, without waiting for a server:
 * the agent starts before its broker and keeps trying (its frames are buffered meanwhile).
 * Returns 0 with *out; -EINVAL with why (bad options, a --cgroup that is not an absolute
 * path), -ENOMEM, or the error of sn_agent_open() / sn_link_open().
 */
int sn_fleet_agent_open(const struct sn_agent_opts *ao, const struct sn_fleet_agent_opts *o,
                        struct sn_fleet_agent **out, char *why, size_t whylen);

/* Reads the whole set of definitions again (a fresh watcher), as after a reconnect. */
void sn_fleet_agent_resync(struct sn_fleet_agent *fa);

/* Writes the state to the log (SIGUSR1): the link, every instrumentation with its status, the
 * outbox and the counters. Safe from any thread. */
void sn_fleet_agent_dump(struct sn_fleet_agent *fa);

struct sn_fleet_agent_stats {
    uint64_t sent, acked, dups, errors; /* publishes made, acknowledged, of which duplicates,
                                           refused or timed out */
    uint64_t buffered, buffered_bytes;  /* held in the outbox */
    uint64_t dropped;                   /* dropped from it (too old, over the cap) */
    uint64_t frames;                    /* frames the agent made */
    int64_t last_frame;                 /* the newest second JetStream acknowledged (0: none) */
    uint64_t running;                   /* instrumentations running */
    uint64_t heartbeats;                /* heartbeats written */
};
void sn_fleet_agent_stats(struct sn_fleet_agent *fa, struct sn_fleet_agent_stats *out);

/* Stops the threads, then the agent (no frame after), then closes the link; NULL is fine. */
void sn_fleet_agent_close(struct sn_fleet_agent *fa);

/*
 * def (a host-free agent definition) restricted to the cgroup at path and its descendants: a
 * new definition whose predicate is {"and":[<its predicate>,{"under":["container",path]}]}
 * (or the "under" alone when the predicate is empty). path NULL or "": def itself (a new
 * reference). NULL when out of memory.
 */
json_t *sn_fleet_scope_def(const json_t *def, const char *path);

#endif
