/*
 * Spans on the bus (docs/fleet.md, "Spans"), the one copy of what goes onto SONDE_SPANS and
 * how it reads back, for both publishers (a `sonde serve` node that takes spans:
 * serve/fleet_spans.c; `sonde agent`'s relay: fleet/span_relay.h) and the shards' owners:
 *
 *   - a request's spans grouped by shard (sn_fleet_span_shard() of the trace id, their order
 *     kept), each group one OTLP protobuf ExportTraceServiceRequest on sonde.spans.<shard>
 *     with message id <origin>.<nonce>.s<shard> (fleet/names.h), acknowledged by JetStream
 *     (a try not acknowledged is sent again once with the same id: stored once);
 *   - what OTLP cannot say (Zipkin's endpoints, its debug and shared flags, a 64-bit trace id,
 *     a span without a timestamp) in one more attribute, last, that the owner takes off again
 *     (sn_fleet_span_restore());
 *   - the trace.spans frames the spans make (serve/span_metrics.h), the origin as their host,
 *     message ids <origin>.<nonce>.f<i>: span metrics are aggregated like any frames. The
 *     base's frames stay with the publisher (fleet/span_past.h: the past of an instrumentation
 *     created later).
 */
#ifndef SN_FLEET_SPAN_MSG_H
#define SN_FLEET_SPAN_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "fleet/link.h"
#include "trace/span.h"
#include "wire/frame.h"

struct sn_span_past;

/* What a send put on the bus (added to). */
struct sn_span_send_stats {
    uint64_t msgs, spans;
};

/*
 * b's spans (borrowed) onto the bus through link, message ids of origin (a node's id or an
 * agent's host) and nonce (unique per request of origin), each message acknowledged before it
 * returns; then, with past (NULL: no span metrics), the frames of the instrumentations its
 * span metrics run (host: origin, second of a span without a start: now), and the base's kept
 * in past (sn_span_metrics_take(): counted once should an instrumentation start meanwhile). 0, or
 * -errno with why: -ENOTCONN (the link is down: refused at once), -EIO/-ETIMEDOUT (the bus did not
 * store a message), -ENOMEM, -EINVAL. On a failure some messages may have been stored (a client's
 * retry is a new request: kept twice).
 */
int sn_fleet_spans_send(struct sn_link *link, const char *origin, uint64_t nonce,
                        const struct sn_span_batch *b, struct sn_span_past *past, int64_t now,
                        struct sn_span_send_stats *st, char *why, size_t whylen);

/* Puts one frame on the bus (subject sonde.frames.<inst>.<host>), message id msgid (NULL: the
 * frame's own, <host>.<inst>.<t>), and waits for JetStream to store it. 0, -EINVAL (a host
 * name or instrumentation the bus cannot carry), -ENOMEM, or -errno of the bus. */
int sn_fleet_frame_send(struct sn_link *link, const struct sn_wire_frame *fr, const char *msgid);

/* An owner's side: takes the bus's attribute off sp (the last one, when there) and sets the
 * fields it carries back (strings into a). */
void sn_fleet_span_restore(struct sn_span *sp, struct sn_arena *a);

#endif
