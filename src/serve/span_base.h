/*
 * The base of trace.spans: the series every span received counts in from the server's start,
 * so that a trace.spans instrumentation created at any time answers for the past
 * (docs/tracing.md, "The past of trace.spans").
 *
 * The base is kept as a persist-data instrumentation is, under the key SN_SPAN_BASE_KEY
 * (serve/span_metrics.h: numeric by key, a key per (service, name, kind, status, host), the
 * latency's log-linear histogram; granularity 1 s): a dataset in the aggregator, fed through the
 * one data path (serve/flow.h: sn_flow_spans()), followed by the store (raw records, rollups,
 * retention, the size cap as for any instrumentation), refilled from the store at a restart. It
 * is not an instrumentation: it is not listed, cannot be deleted, and costs what one
 * instrumentation decomposed by those keys costs; its distinct keys a second are bounded by
 * the server's --key-cap (the rest in "other"), a rollup's by --rollup-keys.
 *
 * An instrumentation of trace.spans reads the base twice:
 *   - when it starts running (its creation, and each start of the server), its memory is filled
 *     for its retention-time from the base's raw records (memory's, and the store's for the
 *     seconds memory no longer holds): each second it holds nothing of is re-aggregated
 *     (serve/span_metrics.h, sn_span_metrics_rekey()) and published as a frame of it, so that
 *     the store writes it as its own. The base is read as it was the instant before the
 *     instrumentation started counting (a snapshot taken under span metrics' write lock): a
 *     request's spans count either in the fill or live, never both.
 *   - a persist-data one's history (the store's tiers) for the time before it was created is
 *     the base's records of that tier re-aggregated (sn_span_base_view()): its own records
 *     answer from its creation (rounded up to the tier's period, so that no period is half its
 *     own) on.
 * In a fleet the base is the fleet's: every publisher (a node that takes spans, an agent's
 * relay) counts the spans it takes in a base of its own, keeps its last seconds in memory and
 * puts its frames on the bus as an instrumentation's, host the publisher (fleet/span_past.h);
 * the fleet's owners of SN_SPAN_BASE_KEY take them as any owner takes an instrumentation's
 * frames (serve/fleet.c: the same consumer, replay, rebuild of history) into this dataset,
 * which the store keeps as on a single server. The trace.spans instrumentations are owned by
 * the same nodes (rendezvous hashing of SN_SPAN_BASE_KEY in place of their key), so that:
 *   - a persist-data one's history before its creation is answered by sn_span_base_view() on
 *     its owner, from the base's records there, as on a single server;
 *   - its memory is filled in two parts with one boundary, B = its crtime less
 *     SN_SPAN_BASE_RETENTION (fleet/span_past.h: sn_span_past_since()): each publisher fills
 *     [B, its switch to live) from its memory, and the base's owners fill its retention's
 *     seconds before B from the store's base (sn_span_base_fill_fleet()), published on the
 *     bus as its frames. A span the base took ended at most SN_SPAN_BASE_RETENTION seconds
 *     before it was taken, so one that ended before B was taken before the creation: it is in
 *     the stored base, never counted live, and in exactly one of the two parts.
 */
#ifndef SN_SERVE_SPAN_BASE_H
#define SN_SERVE_SPAN_BASE_H

#include <stdbool.h>
#include <stdint.h>

#include "agg/agg.h"
#include "store/history.h"

#include "serve/span_metrics.h"

struct sn_server;
struct sn_instn;

/* Seconds the base's memory keeps (older seconds are read from its raw records). */
#define SN_SPAN_BASE_RETENTION 600

/* Starts the base: its dataset, its place in the store (before the server drops what nobody
 * set), its memory refilled from its raw records; spans count in it from now on. In a fleet its
 * memory comes from the stream and its spans from the publishers (above). Returns 0 or
 * -ENOMEM. */
int sn_span_base_open(struct sn_server *s);
/* Frees what sn_span_base_open() made (after the store's last write). */
void sn_span_base_close(struct sn_server *s);

/* The fill of a new instrumentation from the base (serve/span_metrics.h, struct sn_span_fill):
 * sn_span_base_fill_init() before sn_span_metrics_enable_fill() with x->f, then
 * sn_span_base_fill_fini(). Its snapshot (under span metrics' write lock) is references to the
 * base's slots in memory and to what in's dataset holds; the fill then (lock released) adds
 * the records the store has of the base's older seconds, and publishes for every second of
 * in's retention that in's dataset held nothing of the base's slots re-aggregated, as in's
 * frames. Failures are logged. */
struct sn_span_base_fill {
    struct sn_span_fill f;
    struct sn_server *s;
    const struct sn_instn *in;
    const char *host; /* the frames' */
    int64_t until;    /* the seconds filled end before it */
    int64_t now;
    struct sn_agg_view *bv, *iv; /* the snapshot */
};
void sn_span_base_fill_init(struct sn_span_base_fill *x, struct sn_server *s,
                            const struct sn_instn *in);
void sn_span_base_fill_fini(struct sn_span_base_fill *x);

/* In a fleet, on an owner of the base: instrumentation in's seconds of its retention before
 * until (its boundary, fleet/span_past.h) from the base's records here, re-aggregated and
 * published on the bus as host's frames of in (message ids "<host>.base.<inst>.<t>": the
 * base's two owners publish alike, with the first owner as host, and the bus stores one).
 * Returns the seconds published, or -errno (logged). */
int sn_span_base_fill_fleet(struct sn_server *s, const struct sn_instn *in, int64_t until,
                            const char *host);

/* sn_history_view() for instrumentation in, with its history before its creation from the
 * base when it is a persist-data trace.spans one. */
int sn_span_base_view(struct sn_server *s, const struct sn_instn *in,
                      const struct sn_history_pick *p, int64_t from, int64_t to,
                      struct sn_agg_view **out);

/* Whether in is owned in a fleet by the owners of the base (a trace.spans instrumentation, and
 * the server has a base). */
bool sn_span_base_follows(const struct sn_server *s, const struct sn_instn *in);

/* What /metrics shows of the base: spans counted in it, and the distinct keys of its last
 * second that closed (sonde_span_base_spans_total, sonde_span_base_keys). */
void sn_span_base_stats(struct sn_server *s, uint64_t *spans, uint64_t *keys);

#endif
