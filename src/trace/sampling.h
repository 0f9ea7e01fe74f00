/*
 * Sampling (docs/tracing.md, "Sampling"): what services are told to sample at the head, and
 * what the server keeps of what they send (the tail).
 *
 * Head: per-service strategies in Jaeger's form (its strategies file: default_strategy,
 * service_strategies with type "probabilistic" (param: the probability) or "ratelimiting"
 * (param: traces per second)), set over the API (PUT /ca/sampling) and served as Jaeger's
 * remote-sampling endpoint serves them (GET /api/sampling?service=S), which the Jaeger and
 * OpenTelemetry SDKs' remote samplers poll.
 *
 * Tail: at ingest, after span metrics have counted every span (so heatmaps stay whole), a
 * trace's spans wait decision_wait seconds from its first span; then the trace is kept when it
 * has an error (keep_errors), or a span slower than the slow_percentile of its operation
 * (service and span name) over the last minute, and otherwise dropped with probability
 * drop_rate (decided by the trace id's hash, so that every span of a trace, and every node of a
 * fleet, decides alike). Spans of a trace decided in the last 5 minutes follow its decision
 * at once. Everything dropped is counted. Past max_spans waiting, the oldest traces are
 * decided early (counted).
 */
#ifndef SN_TRACE_SAMPLING_H
#define SN_TRACE_SAMPLING_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace/span.h"

struct sn_sampling_cfg {
    json_t *doc; /* the configuration as given (validated), Jaeger's keys and "tail" */
    bool tail;   /* the tail sampler runs */
    bool keep_errors;
    double slow_percentile; /* 0: no slow rule; else in (0, 100) */
    double drop_rate;       /* [0, 1] of the traces neither rule keeps */
    uint32_t decision_wait; /* seconds, 1..300 */
    uint64_t max_spans;     /* spans waiting at most */
};

/* Validates doc (borrowed) and fills cfg (cfg->doc a new reference). Returns 0 or -EINVAL
 * with a message naming the member ("service_strategies[1].param: a probability is in [0,
 * 1]"). A NULL doc is the default: sample everything, no tail. */
int sn_sampling_parse(const json_t *doc, struct sn_sampling_cfg *cfg, char *why, size_t len);
void sn_sampling_cfg_fini(struct sn_sampling_cfg *cfg);
/* Jaeger's strategy response for service: {"strategyType":"PROBABILISTIC",
 * "probabilisticSampling":{"samplingRate":R}} or RATE_LIMITING with maxTracesPerSecond. */
json_t *sn_sampling_strategy(const struct sn_sampling_cfg *cfg, const char *service);

/* ---- The tail sampler --------------------------------------------------------------------- */

struct sn_tail;
/* Where kept spans go (the span store's put, from the sampler's thread or the caller's). */
typedef void (*sn_tail_keep_fn)(void *arg, const struct sn_span_batch *b);

struct sn_tail_stats {
    uint64_t traces_kept, traces_dropped, spans_kept, spans_dropped;
    uint64_t kept_error, kept_slow, kept_rate; /* traces, by the rule that kept them */
    uint64_t decided_early;                    /* traces decided before their wait: full */
    uint64_t waiting_spans, waiting_traces;
};

int sn_tail_open(sn_tail_keep_fn keep, void *arg, struct sn_tail **out);
/* Decides everything waiting (kept ones go to keep), then stops. NULL is fine. */
void sn_tail_close(struct sn_tail *t);
/* Replaces the configuration (a copy is kept). With cfg->tail false, spans pass through. */
int sn_tail_configure(struct sn_tail *t, const struct sn_sampling_cfg *cfg);
/* Takes the spans of b (borrowed): with no tail sampling they go to keep at once; else each
 * waits for its trace's decision or follows it. now_ms: the time (CLOCK_REALTIME). Returns 0
 * or -ENOMEM. */
int sn_tail_take(struct sn_tail *t, const struct sn_span_batch *b, int64_t now_ms);
/* Decides the traces whose wait is over at now_ms (the sampler's thread calls it each
 * second; tests call it with a time of their own). */
void sn_tail_tick(struct sn_tail *t, int64_t now_ms);
void sn_tail_stats(struct sn_tail *t, struct sn_tail_stats *out);

#endif
