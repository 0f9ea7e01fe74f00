/*
 * Span metrics: the trace.spans metric of the catalog (fields service, name, kind, status,
 * host, latency), answered from the spans this server receives over OTLP and Zipkin, so that
 * services show up as latency heatmaps beside the kernel's, with every CA route (raw values,
 * heatmaps with a hue per service or operation, percentiles, predicates) and the store's
 * history like any other instrumentation.
 *
 * No agent runs trace.spans: an instrumentation of it is enabled here (serve/flow.c sends it
 * nowhere else), and each request of spans becomes, for each such instrumentation, one frame
 * per second its spans ended in (a span counts in the second it ended, as a system call does),
 * from this server as the source, through the one data path (sn_flow_frames()). Spans that
 * arrive late (exporters batch for seconds) add to the seconds they belong to, as late
 * frames do. Predicates compare a span's texts by their hash (agent/catalog.h), so they hold
 * for texts of any length.
 */
#ifndef SN_SERVE_SPAN_METRICS_H
#define SN_SERVE_SPAN_METRICS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace/span.h"
#include "wire/frame.h"

struct sn_span_metrics; /* opaque */

int sn_span_metrics_open(struct sn_span_metrics **out);
void sn_span_metrics_close(struct sn_span_metrics *sm);

/* Whether definition def (a CA instrumentation object) is of a metric this module answers. */
bool sn_span_metrics_handles(const json_t *def);
/* Runs instrumentation key (its host-free definition def, borrowed) on the spans received
 * from now on (again: replaced). key_cap: distinct keys a second keeps before "other".
 * Returns 0, or -EINVAL with CA's message in why, -ENOMEM. */
int sn_span_metrics_enable(struct sn_span_metrics *sm, const char *key, const json_t *def,
                           uint32_t key_cap, char *why, size_t whylen);
void sn_span_metrics_disable(struct sn_span_metrics *sm, const char *key);
/* Whether instrumentation key runs here. */
bool sn_span_metrics_has(struct sn_span_metrics *sm, const char *key);
/* How many instrumentations run. */
size_t sn_span_metrics_count(struct sn_span_metrics *sm);

/* The frames spans[0..n) make for every instrumentation running (host: this server's name,
 * the frames' source; the host field of a span without a host.name attribute), into *out (a
 * new array of *nout frames: sn_span_metrics_frames_free()). now: Unix seconds, the second of
 * a span without a start. Returns 0 or -ENOMEM. */
int sn_span_metrics_frames(struct sn_span_metrics *sm, const struct sn_span *spans, size_t n,
                           const char *host, int64_t now, struct sn_wire_frame **out, size_t *nout);
void sn_span_metrics_frames_free(struct sn_wire_frame *f, size_t n);

/* Whether span s counts in instrumentation key (its predicate holds), with the key it counts
 * under into keybuf ("" without a discrete decomposition) and the second it counts in into
 * *t. Returns 1, 0 (it does not count), or -ENOENT (no such instrumentation). For the
 * exemplars of a heatmap cell (api/trace.c). */
int sn_span_metrics_match(struct sn_span_metrics *sm, const char *key, const struct sn_span *s,
                          const char *host, int64_t now, char *keybuf, size_t len, int64_t *t);

#endif
