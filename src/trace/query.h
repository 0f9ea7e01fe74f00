/*
 * Trace searches over the span store: Zipkin's (its QueryRequest: the filters of GET
 * /api/v2/traces with their semantics, so that Zipkin's UI, Grafana's Zipkin data source and
 * scripts get the traces Zipkin would give them), and dprof's questions (the longest and
 * shortest traces of a service in a range; a trace's spans ranked by duration).
 *
 * A search reads the service index newest first (trace/span_store.h), takes the traces of the
 * spans that could match, reads each trace whole and tests it as Zipkin does; so it costs the
 * traces it reads, bounded by SN_QUERY_MAX_READ. With annotationQuery terms, the index gives
 * only the spans whose block's tag filter holds the first term (sn_span_store_scan_tag(): a
 * chunk's filters are looked at once for all its spans), each such block is read once to see
 * whether a span of the service has the term (the filters' false positives then cost a block,
 * not its traces), and a trace is read only when the filters of its blocks hold every term
 * (sn_span_store_trace_tags()): the traces that cannot match are not read and do not count
 * in the bound.
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

/* Which traces the questions below count: those whose id keep() keeps (a fleet's node answering
 * for some shards of the trace store: api/trace.c). NULL: every trace. */
struct sn_trace_filter {
    bool (*keep)(void *arg, const uint8_t trace_id[16]);
    void *arg;
};

/* ---- dprof's questions ------------------------------------------------------------------- */

/* One trace in a list: its figures from its spans (sn_trace_summarize()), and the longest span
 * of the service it was asked for, which ranks it. */
struct sn_trace_summary {
    uint8_t id[16];
    bool id64;                      /* a 64-bit id (16 hex digits in Zipkin's form) */
    uint64_t start_us, duration_us; /* from its first start to its last end */
    uint64_t service_us;            /* its longest span of the service asked about */
    uint32_t spans, errors, services;
    char root_service[128], root_name[128]; /* its root span's (else its earliest's) */
};

/* The figures of a trace from its spans. */
void sn_trace_summarize(const struct sn_span *spans, size_t n, struct sn_trace_summary *out);

/* The longest (longest) or shortest traces of service with a span starting in
 * [from_us, to_us), ranked by their longest span of that service (the trace as the service
 * saw it: exact from the index), at most limit, with each one's figures read from the store.
 * Traces beyond SN_QUERY_MAX_TRACES in the range are not ranked (*truncated set). *out is a
 * new array (free()). Returns 0 or -errno. */
#define SN_QUERY_MAX_TRACES 2000000
int sn_trace_extremes(struct sn_span_store *ss, const struct sn_trace_filter *keep,
                      const char *service, uint64_t from_us, uint64_t to_us, bool longest,
                      size_t limit, struct sn_trace_summary **out, size_t *n, bool *truncated);

/* Span counts, errors and latency of each operation (service, span name) over time: the spans
 * of service (NULL: every service) starting in [from_us, to_us), in steps of step_s seconds. */
struct sn_op_point {
    int64_t t; /* the step's start (Unix seconds) */
    uint64_t count, errors;
    struct sn_hist *latency; /* ns (the index's µs x 1000) */
};
struct sn_op_series {
    char service[128], name[128];
    struct sn_op_point *points; /* steps with spans, oldest first */
    size_t n, cap;
};
int sn_trace_ops(struct sn_span_store *ss, const struct sn_trace_filter *keep, const char *service,
                 uint64_t from_us, uint64_t to_us, uint32_t step_s, struct sn_op_series **out,
                 size_t *n);
void sn_trace_ops_free(struct sn_op_series *ops, size_t n);

/* ---- Dependencies (Zipkin's GET /api/v2/dependencies) -------------------------------------- */

struct sn_dep_link {
    char parent[128], child[128];
    uint64_t calls, errors;
};
/* The links between services in the traces with spans starting in [from_us, to_us), as
 * Zipkin's DependencyLinker forms them: a SERVER or CONSUMER span links from the nearest
 * ancestor of another service (the caller's CLIENT or PRODUCER span, or the one sharing its
 * id), else from its remote endpoint's service; a CLIENT or PRODUCER span with a remote service
 * and no server span under it links to that (uninstrumented) service. A link's error count
 * counts the calls whose callee span has an error. At most SN_QUERY_MAX_READ traces are read
 * (the newest; *truncated says so). *out: a new array sorted by parent, child. */
int sn_trace_dependencies(struct sn_span_store *ss, const struct sn_trace_filter *keep,
                          uint64_t from_us, uint64_t to_us, struct sn_dep_link **out, size_t *n,
                          bool *truncated);

#endif
