/*
 * A span publisher's own past, so that a trace.spans instrumentation created in a fleet counts
 * the spans received before it (docs/tracing.md, "The past of trace.spans"; docs/fleet.md,
 * "Spans").
 *
 * In a fleet every publisher (a `sonde serve` node that takes spans, an agent's relay) counts
 * the spans it takes in the base as a single server does (serve/span_metrics.h,
 * sn_span_metrics_take(): one built-in series keyed by service, name, kind, status and host),
 * but keeps it here, in memory, for SN_SPAN_PAST_RETENTION seconds: it is what this publisher
 * took, nobody else's, and it is not put on the bus. When the publisher starts running a
 * trace.spans instrumentation it did not run (sn_span_past_enable()), the base's slots are
 * taken under span metrics' write lock, the instant before the instrumentation counts live
 * (sn_span_metrics_enable_fill()), re-keyed for it (sn_span_metrics_rekey()) and published as
 * this publisher's frames of it, message ids "<origin>.fill.<inst>.<t>" (a retried publish is
 * stored once). Each publisher switches from its past to live at its own instant, so each span
 * counts once across the fleet; the owner of the instrumentation adds the frames as any.
 *
 * Bounds: the past covers the instrumentation's retention-time, at most the last
 * SN_SPAN_PAST_RETENTION seconds this process ran (a publisher that restarted has no past
 * before its start); history before the creation (a persist-data one's tiers) is not filled.
 * A fill that the bus does not take is logged and lost (the instrumentation counts from its
 * creation there).
 */
#ifndef SN_FLEET_SPAN_PAST_H
#define SN_FLEET_SPAN_PAST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet/link.h"
#include "wire/frame.h"

#define SN_SPAN_PAST_RETENTION 600 /* seconds of the base kept (as serve/span_base.h's memory) */

struct sn_span_past; /* opaque */
struct sn_span_metrics;

/* The past of the spans sm counts from now on (it turns sm's base on), published through link
 * with origin (a node's id, an agent's host) as the frames' host; key_cap: the base's distinct
 * keys a second before "other". Returns 0 or -ENOMEM. */
int sn_span_past_open(struct sn_span_metrics *sm, struct sn_link *link, const char *origin,
                      uint32_t key_cap, struct sn_span_past **out);
/* Frees (NULL is fine); nothing may use p then. */
void sn_span_past_close(struct sn_span_past *p);

/* The span metrics p counts for. */
struct sn_span_metrics *sn_span_past_metrics(struct sn_span_past *p);

/* Keeps the base's frames among f[0..n) (id SN_SPAN_BASE_KEY; the rest are ignored). Called by
 * sn_span_metrics_take()'s publish callback, under span metrics' read lock: that is what makes
 * a fill exact. */
void sn_span_past_add(struct sn_span_past *p, const struct sn_wire_frame *f, size_t n, int64_t now);

/* Runs trace.spans instrumentation key (its host-free agent definition def) on the spans taken
 * from now on, as sn_span_metrics_enable(); when it did not run here, its past (its last
 * retention seconds, aligned to granularity) is filled from the base first and published.
 * Returns 0, or -EINVAL with CA's message in why, -ENOMEM. */
int sn_span_past_enable(struct sn_span_past *p, const char *key, const json_t *def,
                        uint32_t key_cap, uint32_t retention, uint32_t granularity, char *why,
                        size_t whylen);

#endif
