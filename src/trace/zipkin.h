/*
 * Zipkin v2 spans: the decoders behind POST /api/v2/spans (JSON and proto3) and the writer the
 * Zipkin query API (GET /api/v2/trace/{id}, /api/v2/traces) answers with.
 *
 * The rules are the reference server's (openzipkin/zipkin, ../shared/ref/tracing.md §1.1),
 * made lenient where real clients are sloppy: upper-case hex ids, fractional or exponent
 * timestamps (truncated to whole microseconds and counted in b->fixed_times), tag values that
 * are numbers or booleans (kept as their text). Zipkin has no partial success: one invalid
 * span fails the whole request, and the batch is then left as it was before the call.
 *
 * Normalisations applied on the way in: names and service names lower-cased (ASCII letters
 * only), ids left-padded, a 128-bit trace id whose upper half is zero reduced to 64 bits
 * (SN_SPAN_F_ID64), an all-zero parentId dropped, negative or zero timestamp/duration absent,
 * a present duration under 1 µs rounded up to 1 µs, an empty endpoint absent, an IPv4-mapped
 * IPv6 address kept as IPv4, invalid UTF-8 in proto3 strings replaced with U+FFFD, a repeated
 * tag key keeping its first position and its last value. Tags keep the order they came in,
 * so that a span read back through the query API is the text that was posted (modulo the
 * writer's field order).
 *
 * Error paths in messages follow Zipkin's: "$[0].annotations[1]", "$[2].tags.http.path".
 */
#ifndef SN_TRACE_ZIPKIN_H
#define SN_TRACE_ZIPKIN_H

#include <stddef.h>

#include "trace/span.h"

/* Decodes a Zipkin v2 ListOfSpans (already gunzipped) into b (appending): JSON (a JSON array of
 * spans) or proto3 (zipkin.proto3.ListOfSpans). Returns 0 (an empty body or [] is 0 with
 * nothing added), or -EINVAL with Zipkin's message in why (HTTP 400): "Expected a JSON_V2
 * encoded list", "<id> should be lower-hex encoded with no prefix", "Incomplete annotation at
 * ...", "No value at ...", malformed JSON "<cause> reading List<Span> from json" (proto3:
 * "... reading List<Span> from proto3"); -E2BIG past SN_SPAN_MAX_SPANS spans (HTTP 413);
 * -ENOMEM. On any failure b holds the spans it held before the call (the arena may have
 * grown). why may be NULL (whylen 0). */
int sn_zipkin_decode_json(const void *body, size_t len, struct sn_span_batch *b, char *why,
                          size_t whylen);
int sn_zipkin_decode_proto(const void *body, size_t len, struct sn_span_batch *b, char *why,
                           size_t whylen);

/* Appends span s as Zipkin v2 JSON (V2SpanWriter's field order: traceId, parentId, id, kind,
 * name, timestamp, duration, localEndpoint, remoteEndpoint, annotations, tags, debug, shared;
 * absent fields omitted) to the growable buffer *buf (*len used, *cap allocated; grown with
 * core/grow.h, kept NUL-terminated past *len). The text is always valid JSON: invalid UTF-8 is
 * written as U+FFFD.
 *
 * A span that came over Zipkin (SN_SPAN_F_ZIPKIN) is written as it came in: tags are its
 * attributes, nothing derived. Any other span (OTLP) is mapped as §2.5 says: kind absent for
 * INTERNAL/UNSPEC, whole microseconds (a nonzero duration at least 1), attributes as string
 * tags (bytes in base64, arrays and kvlists as their JSON text), then otel.scope.name,
 * otel.scope.version, otel.status_code, error, otel.dropped_{attributes,events,links}_count
 * (these win over attributes of the same key); events as annotations; for CLIENT and PRODUCER
 * spans a remoteEndpoint from peer.service / server.address / net.peer.name,
 * network.peer.address / net.peer.ip and server.port / network.peer.port / net.peer.port.
 * Returns 0, or -ENOMEM (*buf, *len, *cap then still valid, *len unchanged). */
int sn_zipkin_span_json(const struct sn_span *s, char **buf, size_t *len, size_t *cap);

/* Encodes spans[0..n) as a proto3 ListOfSpans (tags and endpoints as sn_zipkin_span_json()
 * writes them) into *out (malloc'd, the caller frees it), *len bytes. For tests and
 * benchmarks: sn_zipkin_decode_proto() gives back equal spans. Returns 0 or -ENOMEM. */
int sn_zipkin_encode_proto(const struct sn_span *spans, size_t n, unsigned char **out, size_t *len);

#endif
