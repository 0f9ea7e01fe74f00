/*
 * The agent's span relay (`sonde agent --nats ... --otlp-listen [ADDR] --zipkin-listen
 * [ADDR]`, docs/fleet.md "Spans"): the agent listens on its host, loopback by default, for
 * OTLP/HTTP (POST /v1/traces) and Zipkin v2 (POST /api/v2/spans) as an OpenTelemetry
 * Collector in agent mode does, and relays the spans through the bus exactly as a `sonde
 * serve` node that takes them: the same decode and replies (trace/ingest.h), the same
 * messages, sharding and message ids (fleet/span_msg.h, the agent's host as origin), each
 * acknowledged by JetStream before the client is answered, 503 with Retry-After while the bus
 * is down (exporters retry). The trace.spans instrumentations the fleet runs (the agent learns
 * them from sonde_defs with its kernel ones: fleet/fleet_agent.h) make their frames here, the
 * agent's host as their source.
 *
 * Both listeners take both routes (as serve's --otlp-listen and --zipkin-listen do); every
 * other path is an empty 404. No authorization: whoever reaches the address may send spans,
 * hence loopback by default.
 */
#ifndef SN_FLEET_SPAN_RELAY_H
#define SN_FLEET_SPAN_RELAY_H

#include <stdint.h>

#include "fleet/link.h"

#define SN_SPAN_RELAY_OTLP_DEFAULT   "127.0.0.1:4318"
#define SN_SPAN_RELAY_ZIPKIN_DEFAULT "127.0.0.1:9411"

struct sn_span_relay; /* opaque */
struct sn_span_past;

struct sn_span_relay_opts {
    const char *otlp_listen;   /* NULL: no OTLP listener */
    const char *zipkin_listen; /* NULL: no Zipkin listener */
    struct sn_link *link;      /* borrowed while open */
    const char *host;          /* the agent's host: message ids' origin, frames' source */
    struct sn_span_past *past; /* the trace.spans instrumentations to run, the base's past
                                  (fleet/span_past.h; borrowed) */
};

/* Listens (0, or -errno with why: an address taken or bad). */
int sn_span_relay_start(const struct sn_span_relay_opts *o, struct sn_span_relay **out, char *why,
                        size_t whylen);

struct sn_span_relay_stats {
    uint64_t requests, invalid, busy; /* ingest requests, refused as malformed, refused (503) */
    uint64_t spans, msgs;             /* spans relayed, in so many messages */
};
void sn_span_relay_stats(struct sn_span_relay *r, struct sn_span_relay_stats *out);

/* Stops listening (requests in progress answered first) and frees; NULL is fine. */
void sn_span_relay_stop(struct sn_span_relay *r);

#endif
