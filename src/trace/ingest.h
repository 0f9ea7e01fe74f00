/*
 * Span ingest over HTTP, the one copy of it: OTLP/HTTP's POST /v1/traces (protobuf or JSON)
 * and Zipkin v2's POST /api/v2/spans (JSON or proto3), decoded (gunzipped first, bounded after
 * decompression) and answered with the statuses and bodies of OpenTelemetry's Collector and of
 * Zipkin's server (../shared/ref/tracing.md §1.2, §1.3). Two callers: `sonde serve`'s API
 * (api/trace.c: its span store, or the fleet's bus) and `sonde agent --otlp-listen
 * --zipkin-listen` (fleet/span_relay.h: the bus), which differ only in where the decoded spans
 * go: a sink.
 *
 * A sink that cannot take a request's spans refuses it whole: 503 with Retry-After (exporters
 * retry), the sink's reason in the body; a malformed request is a 400 (413 too large, 415 an
 * unknown Content-Type for OTLP), never a 503.
 */
#ifndef SN_TRACE_INGEST_H
#define SN_TRACE_INGEST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "http/request.h"
#include "trace/span.h"

#define SN_SPAN_INGEST_BODY_MAX    (16u << 20) /* a request's body as sent */
#define SN_SPAN_INGEST_DECODED_MAX (64u << 20) /* ... after decompression (OTLP's advice) */

/* What ingest counts (the sink's owner shows them: /metrics, the agent's heartbeat). */
struct sn_span_ingest_counters {
    _Atomic uint64_t requests; /* OTLP and Zipkin ingest requests */
    _Atomic uint64_t invalid;  /* refused as malformed (400, 413, 415) */
    _Atomic uint64_t busy;     /* refused with 503: the sink could not take them */
    _Atomic uint64_t accepted; /* spans the sink took */
    _Atomic uint64_t rejected; /* spans refused one by one (OTLP partialSuccess) */
};

/* Where decoded spans go. take() returns 0 (taken: the request succeeds), -EBUSY (a queue is
 * full) or another -errno with a reason in why (503 either way); b is borrowed. */
struct sn_span_sink {
    int (*take)(void *arg, const struct sn_span_batch *b, char *why, size_t whylen);
    void *arg;
    struct sn_span_ingest_counters *count;
};

/* POST /v1/traces: req's body into sink, the answer in resp. */
void sn_span_ingest_otlp(const struct sn_span_sink *sink, const struct sn_req *req,
                         struct sn_resp *resp);
/* POST /api/v2/spans (and /zipkin/api/v2/spans): req's body into sink, the answer in resp. */
void sn_span_ingest_zipkin(const struct sn_span_sink *sink, const struct sn_req *req,
                           struct sn_resp *resp);
/* GET /v1/traces: the Collector's 405. */
void sn_span_ingest_otlp_get(struct sn_resp *resp);

#endif
