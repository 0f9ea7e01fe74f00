/*
 * A span publisher's own past, so that a trace.spans instrumentation created in a fleet counts
 * the spans received before it (docs/tracing.md, "The past of trace.spans"; docs/fleet.md,
 * "Spans").
 *
 * In a fleet every publisher (a `sonde serve` node that takes spans, an agent's relay) counts
 * the spans it takes in the base as a single server does (serve/span_metrics.h,
 * sn_span_metrics_take(): one built-in series keyed by service, name, kind, status and host).
 * It keeps the base here, in memory, for SN_SPAN_PAST_KEEP seconds, and puts the base's frames
 * on the bus as well (those a single server's base would take: of its last
 * SN_SPAN_PAST_RETENTION seconds), where the owners of SN_SPAN_BASE_KEY store them
 * (serve/span_base.h, "In a fleet"). When the publisher starts running a trace.spans
 * instrumentation it did not run (sn_span_past_enable()), the base's slots are taken under
 * span metrics' write lock, the instant before the instrumentation counts live
 * (sn_span_metrics_enable_fill()), re-keyed for it (sn_span_metrics_rekey()) and published as
 * this publisher's frames of it, message ids "<origin>.fill.<inst>.<t>" (a retried publish is
 * stored once). Each publisher switches from its past to live at its own instant, so each span
 * counts once across the fleet; the owner of the instrumentation adds the frames as any.
 *
 * The boundary with the fleet's stored base: a publisher fills the seconds from
 * sn_span_past_since() (the instrumentation's crtime less SN_SPAN_PAST_RETENTION) up to its
 * switch, the stored base the seconds before (serve/span_base.h). A span the base takes ends at
 * most SN_SPAN_PAST_RETENTION seconds before it is taken, so one that ended before that
 * boundary was taken before the creation, hence before every switch: it is in the stored base
 * and never counted live. Memory keeps SN_SPAN_PAST_KEEP seconds so that a publisher switching
 * up to a minute after the creation still holds the boundary's second.
 *
 * Bounds: the past covers the instrumentation's retention-time from that boundary on; a
 * publisher that restarted has no past before its start (its seconds since the boundary
 * before then are lost; those before it are in the stored base). A fill that the bus does not
 * take is logged and lost (the instrumentation counts from its creation there).
 */
#ifndef SN_FLEET_SPAN_PAST_H
#define SN_FLEET_SPAN_PAST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet/link.h"
#include "wire/frame.h"

#define SN_SPAN_PAST_RETENTION                                                                     \
    600 /* the base's memory (as serve/span_base.h's): what the bus gets */
#define SN_SPAN_PAST_KEEP (SN_SPAN_PAST_RETENTION + 60) /* seconds of the base kept here */

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

/* Keeps the base's frames among f[0..n) (id SN_SPAN_BASE_KEY); bus[i] says whether f[i] goes on
 * the bus (every frame but the base's that a single server's base would refuse as late).
 * Called by sn_span_metrics_take()'s publish callback, under span metrics' read lock: that is
 * what makes a fill exact. */
void sn_span_past_add(struct sn_span_past *p, const struct sn_wire_frame *f, size_t n, int64_t now,
                      bool *bus);

/* The first second a publisher fills for an instrumentation created at crtime_ms (Unix ms);
 * the fleet's stored base fills the seconds before it. */
int64_t sn_span_past_since(int64_t crtime_ms);

/* Runs trace.spans instrumentation key (its host-free agent definition def) on the spans taken
 * from now on, as sn_span_metrics_enable(); when it did not run here, its past (its last
 * retention seconds, aligned to granularity, from sn_span_past_since(crtime_ms) on) is filled
 * from the base first and published.
 * Returns 0, or -EINVAL with CA's message in why, -ENOMEM. */
int sn_span_past_enable(struct sn_span_past *p, const char *key, const json_t *def,
                        uint32_t key_cap, uint32_t retention, uint32_t granularity,
                        int64_t crtime_ms, char *why, size_t whylen);

#endif
