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
 * In a fleet there is no base in the store (a node's own spans are not the fleet's): each
 * publisher keeps its own base in memory and fills a new instrumentation's retention from it
 * (fleet/span_past.h).
 */
#ifndef SN_SERVE_SPAN_BASE_H
#define SN_SERVE_SPAN_BASE_H

#include <stdint.h>

#include "agg/agg.h"
#include "store/history.h"

#include "serve/span_metrics.h"

struct sn_server;
struct sn_instn;

/* Seconds the base's memory keeps (older seconds are read from its raw records). */
#define SN_SPAN_BASE_RETENTION 600

/* Starts the base (not in a fleet: fleet/span_past.h there): its dataset, its place in the store
 * (before the server drops what nobody set), its memory refilled from its raw records; spans count
 * in it from now on. Returns 0 or -ENOMEM. */
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
    int64_t now;
    struct sn_agg_view *bv, *iv; /* the snapshot */
};
void sn_span_base_fill_init(struct sn_span_base_fill *x, struct sn_server *s,
                            const struct sn_instn *in);
void sn_span_base_fill_fini(struct sn_span_base_fill *x);

/* sn_history_view() for instrumentation in, with its history before its creation from the
 * base when it is a persist-data trace.spans one. */
int sn_span_base_view(struct sn_server *s, const struct sn_instn *in,
                      const struct sn_history_pick *p, int64_t from, int64_t to,
                      struct sn_agg_view **out);

/* What /metrics shows of the base: spans counted in it, and the distinct keys of its last
 * second that closed (sonde_span_base_spans_total, sonde_span_base_keys). */
void sn_span_base_stats(struct sn_server *s, uint64_t *spans, uint64_t *keys);

#endif
