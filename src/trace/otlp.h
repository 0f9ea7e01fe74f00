/*
 * OTLP/HTTP traces (../shared/ref/tracing.md §2): the body of POST /v1/traces, an
 * ExportTraceServiceRequest in binary protobuf or in OTLP's JSON, decoded into spans
 * (trace/span.h); the responses the server sends back; and the encoder that relays spans over
 * the bus in the same protobuf form.
 *
 * What is refused, and how:
 *   - a malformed request (bad protobuf, a known field with the wrong wire type, bad JSON, a
 *     known JSON key holding the wrong JSON type, ...): the whole request, -EINVAL (HTTP 400),
 *     with a reason naming where ("resourceSpans[0].scopeSpans[0].spans[3]: field 7 of Span
 *     has wire type 0", "resourceSpans[0]...spans[3].startTimeUnixNano: not an integer");
 *   - more than SN_SPAN_MAX_SPANS spans: the whole request, -E2BIG (HTTP 413);
 *   - a span whose data is wrong (ids of the wrong length or zero, kind or status code out of
 *     range, end before start, a value or name over SN_SPAN_MAX_VALUE bytes, more than
 *     SN_SPAN_MAX_ATTRS attributes, SN_SPAN_MAX_EVENTS events or SN_SPAN_MAX_LINKS links,
 *     array values nested deeper than SN_SPAN_MAX_DEPTH): that span only, counted with
 *     sn_span_batch_reject() (OTLP's partialSuccess). A resource or scope that is wrong in
 *     such a way refuses every span of it.
 * Unknown protobuf fields and unknown JSON keys are skipped; proto3's explicit default values
 * are accepted; JSON takes lowerCamelCase and snake_case keys, 64-bit integers as strings or
 * numbers (numbers only up to INT64_MAX: jansson's limit), enums as integers or names.
 *
 * Array and kvlist attribute values become compact JSON text (span.h): "[1,\"a\",null]",
 * "{\"k\":true}"; doubles in it print as "%.17g" (with ".0" when that looks like an integer;
 * NaN and infinities as the strings "NaN", "Infinity", "-Infinity"), bytes as base64 strings,
 * an empty AnyValue as null; invalid UTF-8 in strings is replaced with U+FFFD.
 *
 * Thread-safety: none needed; every function works on its arguments only.
 */
#ifndef SN_TRACE_OTLP_H
#define SN_TRACE_OTLP_H

#include <stddef.h>
#include <stdint.h>

#include "trace/span.h"

enum sn_otlp_enc { SN_OTLP_PROTO, SN_OTLP_JSON };

/*
 * Decodes an ExportTraceServiceRequest body (already gunzipped; borrowed) in encoding enc and
 * appends its spans to b (strings and arrays in b's arena; the spans of one resource share one
 * resource attribute array). Returns 0 (spans refused one by one are counted in b->rejected,
 * the first reason in b->reject_why, and why is ""); -EINVAL when the request is malformed,
 * -E2BIG when it holds more than SN_SPAN_MAX_SPANS spans, both with a reason in why[whylen]
 * (NUL-terminated, truncated; why may be NULL when whylen is 0); -ENOMEM. On error nothing of
 * the request is kept: b->n, b->rejected and b->reject_why are as they were (the arena may
 * have grown; it is freed with the batch).
 */
int sn_otlp_decode(enum sn_otlp_enc enc, const void *body, size_t len, struct sn_span_batch *b,
                   char *why, size_t whylen);

/*
 * An ExportTraceServiceResponse in enc into *out (malloc'd, the caller frees it; *len bytes,
 * and for JSON a NUL after them). Full success (rejected 0 and msg NULL or ""): protobuf, an
 * empty body; JSON, {"partialSuccess":{}}. Otherwise partialSuccess with rejectedSpans (JSON:
 * a decimal string) when not 0 and errorMessage when msg is not empty, e.g.
 * {"partialSuccess":{"rejectedSpans":"2","errorMessage":"..."}}. msg is borrowed; invalid
 * UTF-8 in it is replaced with U+FFFD. Returns 0 or -ENOMEM (*out then untouched).
 */
int sn_otlp_response(enum sn_otlp_enc enc, uint64_t rejected, const char *msg, unsigned char **out,
                     size_t *len);

/*
 * A google.rpc.Status {code, message} in enc into *out (as sn_otlp_response): protobuf with
 * proto3's defaults left out; JSON always both, {"code":3,"message":"..."} (msg NULL: "").
 * Returns 0 or -ENOMEM.
 */
int sn_otlp_status(enum sn_otlp_enc enc, int code, const char *msg, unsigned char **out,
                   size_t *len);

/*
 * Encodes spans[0..n) (borrowed) as an ExportTraceServiceRequest protobuf into *out (malloc'd,
 * *len bytes; the caller frees it). Consecutive spans with equal resource attributes and
 * service share a ResourceSpans, and consecutive ones of those with the same scope share a
 * ScopeSpans, so sn_otlp_decode() of the output gives back spans[0..n) equal and in order
 * (for spans it would accept: spans decoded from OTLP). A service that the resource does not
 * name (Zipkin's) is written as a service.name resource attribute, unless it is "" or
 * "unknown_service"; Zipkin-only fields (endpoints, F_DEBUG...) are not written. An array or
 * kvlist attribute whose text is not JSON is written as a string. Returns 0 or -ENOMEM.
 */
int sn_otlp_encode(const struct sn_span *spans, size_t n, unsigned char **out, size_t *len);

#endif
