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
 *     for its retention-time from the base's raw records (memory's first, the store's else):
 *     each second it holds nothing of is re-aggregated (serve/span_metrics.h,
 *     sn_span_metrics_rekey()) and published as a frame of it, so that the store writes it
 *     as its own. This runs under span metrics' write lock: a request's spans count either in
 *     the fill or live, never both.
 *   - a persist-data one's history (the store's tiers) for the time before it was created is
 *     the base's records of that tier re-aggregated (sn_span_base_view()): its own records
 *     answer from its creation (rounded up to the tier's period, so that no period is half its
 *     own) on.
 * In a fleet there is no base yet (a node's own spans are not the fleet's): instrumentations
 * count from their creation.
 */
#ifndef SN_SERVE_SPAN_BASE_H
#define SN_SERVE_SPAN_BASE_H

#include <stdint.h>

#include "agg/agg.h"
#include "store/history.h"

struct sn_server;
struct sn_instn;
struct sn_span_rekey;

/* Seconds the base's memory keeps (older seconds are read from its raw records). */
#define SN_SPAN_BASE_RETENTION 600

/* Starts the base (not in a fleet): its dataset, its place in the store (before the server
 * drops what nobody set), its memory refilled from its raw records; spans count in it from
 * now on. Returns 0 or -ENOMEM. */
int sn_span_base_open(struct sn_server *s);
/* Frees what sn_span_base_open() made (after the store's last write). */
void sn_span_base_close(struct sn_server *s);

/* What sn_span_base_fill() fills: instrumentation in (borrowed) of server s. */
struct sn_span_base_fill {
    struct sn_server *s;
    const struct sn_instn *in;
};
/* The fill of sn_span_metrics_enable_fill() (arg: struct sn_span_base_fill): the seconds of
 * in's retention its dataset holds nothing of, from the base. Failures are logged. */
void sn_span_base_fill(void *arg, const struct sn_span_rekey *r);

/* sn_history_view() for instrumentation in, with its history before its creation from the
 * base when it is a persist-data trace.spans one. */
int sn_span_base_view(struct sn_server *s, const struct sn_instn *in,
                      const struct sn_history_pick *p, int64_t from, int64_t to,
                      struct sn_agg_view **out);

/* What /metrics shows of the base: spans counted in it, and the distinct keys of its last
 * second that closed (sonde_span_base_spans_total, sonde_span_base_keys). */
void sn_span_base_stats(struct sn_server *s, uint64_t *spans, uint64_t *keys);

#endif
