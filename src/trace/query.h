/*
 * Trace searches over the span store: Zipkin's (its QueryRequest: the filters of GET
 * /api/v2/traces with their semantics, so that Zipkin's UI, Grafana's Zipkin data source and
 * scripts get the traces Zipkin would give them), and dprof's questions (the longest and
 * shortest traces of a service in a range; a trace's spans ranked by duration).
 *
 * A search reads the service index newest first (trace/span_store.h), takes the traces of the
 * spans that could match, reads each trace whole and tests it as Zipkin does; so it costs the
 * traces it reads, bounded by SN_QUERY_MAX_READ.
 */
#ifndef SN_TRACE_QUERY_H
#define SN_TRACE_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace/span.h"
#include "trace/span_store.h"

#define SN_QUERY_MAX_READ  20000 /* traces one search reads at most */
#define SN_QUERY_MAX_TERMS 16    /* annotationQuery terms */

struct sn_trace_query {
    const char *service;     /* NULL: any */
    const char *remote;      /* remoteServiceName, NULL: any */
    const char *span_name;   /* NULL (or "", "all"): any */
    uint64_t min_us, max_us; /* minDuration, maxDuration (µs); 0: none */
    uint64_t end_ms, lookback_ms;
    uint32_t limit;
    /* annotationQuery, parsed: key=value terms (value NULL: a bare word, which matches an
     * annotation's value or a tag's key) */
    const char *key[SN_QUERY_MAX_TERMS];
    const char *value[SN_QUERY_MAX_TERMS];
    unsigned nterms;
};

/* Parses an annotationQuery ("error and http.method=GET") into q (pointing into text, which
 * it modifies). Returns 0, or -EINVAL (more than SN_QUERY_MAX_TERMS terms, an empty term). */
int sn_trace_query_terms(struct sn_trace_query *q, char *text);

/* Whether the spans of one trace match q (Zipkin's QueryRequest.test). */
bool sn_trace_query_test(const struct sn_trace_query *q, const struct sn_span *spans, size_t n);

/* The trace's timestamp as Zipkin takes it: its root's start, else its earliest (ns; 0: none). */
uint64_t sn_trace_timestamp(const struct sn_span *spans, size_t n);

/* The traces matching q, at most q->limit, newest first: *traces a new array of *n batches,
 * one trace each (free with sn_trace_list_free()). Returns 0 or -errno. */
int sn_trace_find(struct sn_span_store *ss, const struct sn_trace_query *q,
                  struct sn_span_batch **traces, size_t *n);
void sn_trace_list_free(struct sn_span_batch *traces, size_t n);

#endif
