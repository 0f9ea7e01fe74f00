/*
 * The fleet's names on NATS: streams, subjects, key-value buckets and keys, message ids, and
 * what a valid host name is. One file so that the agent, the nodes, `sonde ctl snoop` and the
 * docs (docs/fleet.md) agree, and so that every parser of a name that comes off the bus (where
 * anyone with credentials can publish anything) is in one place, with a fuzz target.
 *
 *   frames     stream SONDE_FRAMES, subjects sonde.frames.<inst>.<host>
 *              payload: one binary frame (wire/frame.h); header Nats-Msg-Id <host>.<inst>.<t>
 *              (JetStream drops a re-send of the same second within its duplicate window)
 *   rollups    streams SONDE_ROLLUPS_1M, _1H and _1D (each keeping its tier's --tiers time),
 *              subjects sonde.rollups.<tier>.<inst>.<t>, one message kept per subject (the
 *              latest: a rollup corrected by late frames replaces it); payload: a rollup
 *              record with its names (fleet/rollup_msg.h)
 *   spans      stream SONDE_SPANS, subjects sonde.spans.<shard> (<shard> = sn_fleet_span_shard()
 *              of the trace id, 0..SN_FLEET_SPAN_SHARDS-1, decimal); payload: an OTLP
 *              ExportTraceServiceRequest (protobuf, trace/otlp.h) of spans of that shard only;
 *              header Nats-Msg-Id <node>.<nonce>.s<shard> (a request's publish retried is kept
 *              once); the shard's owners consume it (key spans/<shard>, rendezvous.h)
 *   defs       KV bucket sonde_defs:    inst.<inst>  one instrumentation (docs/fleet.md)
 *                                       next.<scope> the next id of a scope (compare-and-set)
 *   members    KV bucket sonde_members: node.<id>    a `sonde serve` node's heartbeat
 *                                       agent.<host> an agent's heartbeat, with its statuses
 *
 * <inst> is an instrumentation key as frames carry it ("7", or "acme/7" in tenant acme's
 * scope) written as one subject token: a tenant name is letters, digits, '-', '_' and '.'
 * (serve/tenants.c), and its dots are written "=2E" ("a.b/7" -> "a=2Eb/7"); '=' never occurs
 * in a tenant name and '/' is valid in subjects and KV keys, so the token maps back
 * unambiguously. One more <inst> is built in: SN_FLEET_SPAN_BASE, the base of trace.spans
 * (serve/span_base.h), whose frames and rollups travel as an instrumentation's
 * ("trace=2Espans"). <host> is a host name as
 * sn_fleet_host_valid() takes it; it may contain dots, and comes last in a subject.
 */
#ifndef SN_FLEET_NAMES_H
#define SN_FLEET_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SN_FLEET_FRAMES_STREAM  "SONDE_FRAMES"
#define SN_FLEET_FRAMES_PREFIX  "sonde.frames." /* + <inst>.<host> */
#define SN_FLEET_FRAMES_ALL     "sonde.frames.>"
#define SN_FLEET_ROLLUPS_STREAM "SONDE_ROLLUPS_" /* + 1M, 1H, 1D */
#define SN_FLEET_ROLLUPS_PREFIX "sonde.rollups." /* + <tier>.<inst>.<t> */
#define SN_FLEET_SPANS_STREAM   "SONDE_SPANS"
#define SN_FLEET_SPANS_PREFIX   "sonde.spans." /* + <shard> */
#define SN_FLEET_SPANS_ALL      "sonde.spans.>"
#define SN_FLEET_SPAN_SHARDS    64              /* shards of the trace store (part of the format) */
#define SN_FLEET_TRACES_STREAM  "SONDE_TRACES"  /* hosts' snapshot archives, chunked */
#define SN_FLEET_TRACES_PREFIX  "sonde.traces." /* + <snapshot>.<host> */
#define SN_FLEET_TRACES_ALL     "sonde.traces.>"
#define SN_FLEET_REC_SNAP       "sonde.recorder.snap" /* snapshot requests (core NATS) */
#define SN_FLEET_KV_DEFS        "sonde_defs"
#define SN_FLEET_KV_MEMBERS     "sonde_members"
#define SN_FLEET_HOST_MAX       253           /* bytes of a host name (DNS) */
#define SN_FLEET_SPAN_BASE      "trace.spans" /* serve/span_metrics.h: SN_SPAN_BASE_KEY */
#define SN_FLEET_SUBJECT_MAX    512 /* bytes of any subject, KV key or message id, with NUL */

/* True when host is a name the fleet accepts: 1..SN_FLEET_HOST_MAX bytes of [A-Za-z0-9._-],
 * not starting or ending with '.', no ".." (a subject token cannot be empty). Frames from any
 * other host are counted and dropped. */
bool sn_fleet_host_valid(const char *host);

/* The token of instrumentation key inst ("7" -> "7", "a.b/7" -> "a=2Eb/7") into out[len].
 * Returns 0, or -EINVAL when inst is not "<digits>" or "<tenant>/<digits>" with a tenant of
 * 1..64 [A-Za-z0-9._-] and an id in canonical decimal (1..2^53-1, no leading zero, as
 * serve/ writes it), nor SN_FLEET_SPAN_BASE, -ENOSPC when out is too small. Every function here
 * leaves "" in its output on failure; a parser's output too small is -ENOSPC. */
int sn_fleet_inst_token(const char *inst, char *out, size_t len);
/* The reverse: the key of token tok (its first n bytes). 0, -EINVAL, -ENOSPC. */
int sn_fleet_inst_of_token(const char *tok, size_t n, char *out, size_t len);

/* "sonde.frames.<inst>.<host>" for a frame of inst from host. 0, -EINVAL, -ENOSPC. */
int sn_fleet_frame_subject(const char *inst, const char *host, char *out, size_t len);
/* "sonde.frames.<inst>.>": every host's frames of inst (a consumer's filter). 0 or -errno. */
int sn_fleet_frame_filter(const char *inst, char *out, size_t len);
/* Parses a frame subject: inst (key form, "acme/7") into inst[ilen], host into host[hlen].
 * 0, or -EINVAL when subj is not a frame subject with a valid inst and host. */
int sn_fleet_parse_frame_subject(const char *subj, char *inst, size_t ilen, char *host,
                                 size_t hlen);
/* "sonde.rollups.<tier>.<inst>.<t>": inst's rollup record of tier ("1m", "1h" or "1d") for
 * the period starting at t (>= 0). 0, -EINVAL, -ENOSPC. */
int sn_fleet_rollup_subject(const char *inst, const char *tier, int64_t t, char *out, size_t len);
/* "sonde.rollups.<tier>.<inst>.>": inst's records of tier. 0 or -errno. */
int sn_fleet_rollup_filter(const char *inst, const char *tier, char *out, size_t len);
/* The stream of tier's records: "SONDE_ROLLUPS_1M" for "1m"... 0, -EINVAL, -ENOSPC. */
int sn_fleet_rollup_stream(const char *tier, char *out, size_t len);
/* "<host>.<inst>.<t>": the message id of host's frame of inst for second t. 0 or -errno. */
int sn_fleet_msg_id(const char *host, const char *inst, int64_t t, char *out, size_t len);

/* The shard of a trace id (16 bytes, a 64-bit id left-padded with zeros): FNV-1a 64 of the 16
 * bytes, mod SN_FLEET_SPAN_SHARDS. Part of the format: every node shards alike. */
unsigned sn_fleet_span_shard(const uint8_t trace_id[16]);
/* "sonde.spans.<shard>". 0, -EINVAL (shard out of range), -ENOSPC. */
int sn_fleet_span_subject(unsigned shard, char *out, size_t len);
/* Parses a span subject into *shard (canonical decimal, in range). 0 or -EINVAL. */
int sn_fleet_parse_span_subject(const char *subj, unsigned *shard);
/* "spans/<shard>": the shard's key for ownership (rendezvous hashing). 0, -EINVAL, -ENOSPC. */
int sn_fleet_span_key(unsigned shard, char *out, size_t len);
/* "<node>.<nonce>.<part>": the message id of one part of one request a node published (nonce:
 * unique per request on that node; part: "s<shard>" or "f<i>", [A-Za-z0-9]+). 0 or -errno. */
int sn_fleet_span_msg_id(const char *node, uint64_t nonce, const char *part, char *out, size_t len);
/* Parses such a message id: its publisher (a node's id or an agent's host, as
 * sn_fleet_host_valid() takes it: it may hold dots, so the id is read from its end) into
 * origin[len], and its nonce (lower-case hex, no leading zero) and part into *nonce and
 * part[plen] (either may be NULL). 0, -EINVAL (not one: what sn_fleet_span_msg_id() would not
 * write), -ENOSPC. */
int sn_fleet_parse_span_msg_id(const char *id, char *origin, size_t len, uint64_t *nonce,
                               char *part, size_t plen);

/* KV keys of the defs bucket: "inst.<inst>" and "next.<scope>" (the scope's dots written
 * "=2E" as in <inst>; "next.=" for the global scope, whose name is "": '_' is a tenant's
 * name). 0, -EINVAL, -ENOSPC. */
int sn_fleet_def_key(const char *inst, char *out, size_t len);
int sn_fleet_next_key(const char *scope, char *out, size_t len);
/* Parses a defs key "inst.<token>" into the instrumentation key. 0 or -EINVAL (not one). */
int sn_fleet_parse_def_key(const char *key, char *inst, size_t len);

/* KV keys of the members bucket: "node.<id>" (id as sn_fleet_host_valid()) and
 * "agent.<host>". 0, -EINVAL, -ENOSPC. */
int sn_fleet_node_key(const char *id, char *out, size_t len);
int sn_fleet_agent_key(const char *host, char *out, size_t len);
/* Parses a members key: 'n' (node) or 'a' (agent) into *kind and the name into name[len].
 * 0 or -EINVAL. */
int sn_fleet_parse_member_key(const char *key, char *kind, char *name, size_t len);

/* The flight recorder in a fleet (fleet/fleet_rec.h). A fleet session's name and a fleet
 * snapshot's id: 1 to 63 bytes of [A-Za-z0-9_-] (no '.': each is one subject token). */
bool sn_fleet_rec_name_valid(const char *name);
/* rec.<name>: a fleet session's spec in sonde_defs. 0, -EINVAL or -ENAMETOOLONG. */
int sn_fleet_rec_key(const char *name, char *out, size_t len);
/* The session name of a rec.<name> key; 0 or -EINVAL. */
int sn_fleet_parse_rec_key(const char *key, char *name, size_t len);
/* sonde.traces.<snapshot>.<host>, and its filter sonde.traces.<snapshot>.> (host NULL). */
int sn_fleet_traces_subject(const char *snap, const char *host, char *out, size_t len);
/* The snapshot id and host of a traces subject; 0 or -EINVAL. */
int sn_fleet_parse_traces_subject(const char *subj, char *snap, size_t slen, char *host,
                                  size_t hlen);

#endif
