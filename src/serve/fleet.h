/*
 * `sonde serve --nats`: the server as one node of a fleet (docs/fleet.md). The node
 *
 *   - keeps the definitions in the KV bucket sonde_defs, the fleet's one record of them: a
 *     create claims its id there (compare-and-set of next.<scope>) and puts the definition
 *     before the API answers; every node watches the bucket and holds every definition, so
 *     any node answers any definition request; agents watch the same keys (fleet/names.h);
 *   - says it is alive (node.<id> in sonde_members, once a second) and watches the other
 *     nodes and the agents: an agent's heartbeat carries what it runs, which the node mirrors
 *     into the bus's statuses (serve/flow.c), so that nsources and "running" count hosts;
 *   - owns the instrumentations that rendezvous hashing over the live nodes gives it
 *     (fleet/rendezvous.h, SN_FLEET_OWNERS of them, zone-spread): for each, one ordered
 *     JetStream consumer of sonde.frames.<inst>.> that starts at the beginning of the
 *     instrumentation's retention, so that a new owner rebuilds its memory from the stream,
 *     then follows it; each frame goes through the one data path (sn_flow_frame(), and the
 *     store for frames older than memory). A node that stops owning one drops its memory of
 *     it, and the API proxies its value requests to an owner (sn_fleet_owner_api()).
 *
 * Threads: cnats's (the watchers' and consumers' callbacks, the link's events) and the
 * node's own heartbeat thread; a mutex guards the node's tables, never held across a call
 * into the server, the aggregator or NATS.
 */
#ifndef SN_SERVE_FLEET_H
#define SN_SERVE_FLEET_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet/link.h"

#define SN_FLEET_OWNERS        2    /* nodes owning each instrumentation (fewer when fewer) */
#define SN_FLEET_NODE_BEAT_MS  1000 /* a node's heartbeat */
#define SN_FLEET_NODE_DEAD_MS  3000 /* a node silent this long is dead: its share moves */
#define SN_FLEET_AGENT_DEAD_MS 6000 /* an agent silent this long runs nothing */

struct sn_server;
struct sn_instn;
struct sn_fleet; /* opaque */
struct sn_fleet_rec;

struct sn_fleet_opts {
    const struct sn_link_opts *link;
    const char *id;   /* this node's name (default: the host name and the API's port) */
    const char *zone; /* "" or NULL: none */
    const char *api;  /* the API's URL other nodes send requests to (NULL: http://127.0.0.1:PORT) */
    int64_t spans_keep_s; /* the spans stream's max age: --trace-retention (0: the default, 7 d) */
};

/*
 * Connects, ensures the stream and buckets, loads the fleet's definitions into the server
 * (those of the local store that the bucket lacks are uploaded only when the bucket has no
 * definitions at all: a single host becoming the fleet's first node; otherwise the bucket
 * wins), and starts the watchers and the heartbeat. Called by sn_server_open() after the API
 * listens (the heartbeat says where). Returns 0 with *out, or -errno with why.
 */
int sn_fleet_open(struct sn_server *s, const struct sn_fleet_opts *o, struct sn_fleet **out,
                  char *why, size_t whylen);
/* The tenants the fleet's bucket holds (a node started with --tenants put them there), for a
 * node started without, before its API listens; NULL when there are none or the bus cannot be
 * reached (then the node is loopback-only, as a single host without --tenants). */
struct sn_tenants;
struct sn_tenants *sn_fleet_fetch_tenants(const struct sn_link_opts *o);
/* Stops consuming and watching, says goodbye (deletes node.<id>) and shuts the bus's connection
 * (sn_link_shut()): no frame, span or definition comes from the fleet after it, and what the
 * API's threads still ask of it fails as the bus being down (503) rather than touching freed
 * memory, so a server stops its sources, then its listeners, then frees. NULL and a second
 * call are fine. */
void sn_fleet_stop(struct sn_fleet *f);
/* Stops (when not yet) and frees; NULL is fine. Nothing may use f then. */
void sn_fleet_close(struct sn_fleet *f);

/* A new id for an instrumentation of scope, unique in the fleet. 0 or -errno with why. */
int sn_fleet_claim_id(struct sn_fleet *f, const char *scope, uint64_t *id, char *why,
                      size_t whylen);
/* Puts in's definition (and the agents' definition of it) into the bucket: the sources'
 * control in a fleet (sn_flow_enable()). 0 or -errno with why. */
int sn_fleet_put_def(struct sn_fleet *f, const struct sn_instn *in, char *why, size_t whylen);
/* Deletes key's definition from the bucket (sn_flow_disable()). 0 or -errno. */
int sn_fleet_delete_def(struct sn_fleet *f, const char *key);

/* Puts a frame of this node's own sources (ingest, import) on the bus, as an agent does
 * (subject, message id), and waits for JetStream to store it. 0, -EINVAL (a host name or
 * instrumentation the bus cannot carry), or -errno of the bus. */
struct sn_wire_frame;
int sn_fleet_publish_frame(struct sn_fleet *f, const struct sn_wire_frame *fr);

/* The same with message id msgid (NULL: the frame's own, <host>.<inst>.<t>): frames that are
 * not one per host and second (span metrics, made per request: serve/fleet_spans.c). */
int sn_fleet_publish_frame_id(struct sn_fleet *f, const struct sn_wire_frame *fr,
                              const char *msgid);

/*
 * Spans taken by this node (any node takes them; serve/fleet_spans.c): b's spans (borrowed),
 * grouped by shard of the trace store, each group an OTLP protobuf message on its shard's
 * subject, and the trace.spans frames they make (this node's id as their host), each stored
 * by JetStream (acknowledged) before it returns. 0, or -errno with why (-EIO, -ETIMEDOUT,
 * -ENOTCONN: the bus; -ENOMEM): the request is then refused whole (503), though some of its
 * messages may have been stored (a client's retry is a new request: those are kept twice).
 */
struct sn_span_batch;
int sn_fleet_publish_spans(struct sn_fleet *f, const struct sn_span_batch *b, char *why,
                           size_t whylen);
/* Whether this node owns every shard of the trace store and has caught up with each: it then
 * answers every span search alone. */
bool sn_fleet_serves_all_spans(struct sn_fleet *f);
/* The shards of the trace store this node serves (owns and has caught up with): bit k for
 * shard k (SN_FLEET_SPAN_SHARDS is 64). */
uint64_t sn_fleet_span_mask(struct sn_fleet *f);
/* The live nodes other than this one that serve shards, with the shards each says it serves
 * (its heartbeat's, as sn_fleet_span_mask()): at most max API URLs into api and masks into
 * mask; how many. For questions asked of each shard once (api/trace.c). */
size_t sn_fleet_span_servers(struct sn_fleet *f, char (*api)[160], uint64_t *mask, size_t max);
/* The API URLs of the live nodes other than this one, at most max, into out; how many. */
size_t sn_fleet_node_apis(struct sn_fleet *f, char (*out)[160], size_t max);

/* Whether this node owns key now. */
bool sn_fleet_owns(struct sn_fleet *f, const char *key);
/* Whether this node owns key and has caught up with its stream since it took it over (its
 * memory rebuilt): then it answers key's data requests itself. */
bool sn_fleet_serves(struct sn_fleet *f, const char *key);
/* The API base URL of the nth (from 0) owner of key other than this node, those that have
 * caught up first ("http://127.0.0.1:23181"), into out[len]; -ENOENT when there is no nth. */
int sn_fleet_owner_api(struct sn_fleet *f, const char *key, size_t nth, char *out, size_t len);
struct sn_fleet_stats {
    uint64_t frames;          /* taken from the bus into the aggregator */
    uint64_t batches;         /* the batches they were handed over in (frames / batches: size) */
    uint64_t redelivered;     /* delivered again (a consumer restarted behind): dropped */
    uint64_t frames_late;     /* older than memory: merged into the store */
    uint64_t frames_bad;      /* undecodable, or of the wrong arity */
    uint64_t frames_foreign;  /* a subject, host or id that do not agree (forged or misrouted) */
    uint64_t replays;         /* instrumentations taken over (memory rebuilt from the stream) */
    uint64_t restarts;        /* consumers restarted where they were (the link came back) */
    uint64_t rebuilt;         /* frames of the stream taken to rebuild history (a new share) */
    uint64_t rollups_sent;    /* rollup records this node put on the bus */
    uint64_t rollups_rebuilt; /* rollup records taken from the bus to rebuild history */
    uint64_t owned, nodes, agents;
    uint64_t pending; /* frames in the stream not yet taken, over owned instrumentations */
    int64_t lag_s;    /* the largest age of the newest frame taken, over owned ones */
    uint64_t defs_applied, link_down;
    uint64_t agent_buffered, agent_dropped, agent_duplicates; /* live agents' heartbeats */
    uint64_t spans_published;   /* spans this node put on the bus (any node takes spans) */
    uint64_t spans_taken;       /* spans of owned shards taken from the bus into the span store */
    uint64_t span_msgs_bad;     /* span messages refused: undecodable */
    uint64_t span_msgs_foreign; /* span messages refused: of another shard than their subject */
    uint64_t span_shards;       /* shards of the trace store this node serves */
};
void sn_fleet_stats(struct sn_fleet *f, struct sn_fleet_stats *out);
/* The node's state as JSON (owned, members, consumers), for /ca/admin/status and SIGUSR1. */
json_t *sn_fleet_state(struct sn_fleet *f);

/* The flight recorder on the bus (fleet/fleet_rec.h): this node records the fleet sessions
 * as a host named by its node id. NULL when f is. */
struct sn_fleet_rec *sn_fleet_recorder(struct sn_fleet *f);
/* The hosts a fleet snapshot asks (the live members: nodes by id and agents by host name,
 * sorted, each once), as a JSON array (owned). */
json_t *sn_fleet_live_hosts(struct sn_fleet *f);

#endif
