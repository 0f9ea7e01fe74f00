/*
 * `GET /metrics`: Sonde's own counters in Prometheus' text format (version 0.0.4): frames in
 * and dropped by reason, events the agents could not count, requests by status class, long
 * polls, heatmap and raw-value times, instrumentations, and the local agent's collection.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "core/grow.h"
#include "http/httpd.h"
#include "serve/span_base.h"
#include "serve/collector.h"
#include "serve/fleet.h"
#include "trace/sampling.h"
#include "trace/span_store.h"

struct out {
    char *p;
    size_t len, cap;
};

static void emit(struct out *o, const char *name, const char *type, const char *help,
                 const char *labels, double v)
{
    char line[512];
    int n;
    if (type)
        n = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n%s%s %.17g\n", name, help,
                     name, type, name, labels ? labels : "", v);
    else
        n = snprintf(line, sizeof(line), "%s%s %.17g\n", name, labels ? labels : "", v);
    if (n < 0)
        return;
    if (o->len + (size_t)n + 1 > o->cap) {
        char *p = sn_grow(o->p, &o->cap, o->len + (size_t)n + 1, 1);
        if (!p)
            return;
        o->p = p;
    }
    memcpy(o->p + o->len, line, (size_t)n + 1);
    o->len += (size_t)n;
}

/* A table of series: one section's metrics, emitted in order. */
struct row {
    const char *name, *type, *help, *labels; /* type NULL: another series of the row above */
    double v;
};

static void emit_rows(struct out *o, const struct row *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        emit(o, r[i].name, r[i].type, r[i].help, r[i].labels, r[i].v);
}

#define C(x) ((double)atomic_load(&s->c.x))
#define A(x) ((double)ac.x) /* the aggregator's */

void sn_api_prometheus(struct sn_call *c)
{
    struct sn_server *s = c->s;
    struct out o = {0};
    struct sn_http_stats hs = {0};
    struct sn_agg_counters ac;
    size_t n;

    sn_agg_counters(s->agg, &ac);

    emit(&o, "sonde_frames_total", "counter", "Frames added to a dataset, by origin.",
         "{origin=\"all\"}", A(frames_in));
    emit(&o, "sonde_frames_total", NULL, NULL, "{origin=\"local\"}", C(frames_local));
    emit(&o, "sonde_frames_dropped_total", "counter",
         "Frames not added, by reason (invalid: refused ingest bodies).", "{reason=\"invalid\"}",
         C(frames_invalid));
    emit(&o, "sonde_frames_dropped_total", NULL, NULL, "{reason=\"unknown\"}", A(frames_unknown));
    emit(&o, "sonde_frames_dropped_total", NULL, NULL, "{reason=\"late\"}", A(frames_late));
    emit(&o, "sonde_frames_dropped_total", NULL, NULL, "{reason=\"future\"}", A(frames_future));
    emit(&o, "sonde_frames_dropped_total", NULL, NULL, "{reason=\"duplicate\"}",
         A(frames_duplicate));
    emit(&o, "sonde_frames_dropped_total", NULL, NULL, "{reason=\"arity\"}",
         C(frames_mismatch) + A(frames_mismatch));
    emit(&o, "sonde_events_dropped_total", "counter",
         "Events agents could not count exactly, by reason.", "{reason=\"over_cap\"}",
         A(events_over_cap));
    emit(&o, "sonde_events_dropped_total", NULL, NULL, "{reason=\"map_full\"}", A(events_map_full));
    emit(&o, "sonde_keys_folded_total", "counter",
         "Frame keys past --key-cap whose counts went to the key \"other\".", NULL, A(keys_folded));
    emit(&o, "sonde_events_folded_total", "counter",
         "Events of those keys (also in the slot's over_cap).", NULL, A(events_folded));
    emit(&o, "sonde_instrumentations_reaped_total", "counter",
         "Instrumentations deleted after idle-max seconds without access.", NULL, C(reaped));
    emit(&o, "sonde_heatmap_renders_total", "counter", "Heatmap images served.", NULL, C(renders));
    emit(&o, "sonde_heatmap_render_seconds_total", "counter",
         "Time spent producing heatmap images (lock, columns, drawing, PNG).", NULL,
         C(render_ns) / 1e9);
    emit(&o, "sonde_raw_requests_total", "counter", "Raw value requests answered.", NULL,
         C(raw_requests));
    emit(&o, "sonde_raw_seconds_total", "counter", "Time spent answering raw value requests.", NULL,
         C(raw_ns) / 1e9);
    if (s->http)
        sn_http_stats(s->http, &hs);
    emit(&o, "sonde_http_requests_total", "counter", "HTTP requests answered, by status class.",
         "{code=\"2xx\"}", (double)hs.by_class[2]);
    emit(&o, "sonde_http_requests_total", NULL, NULL, "{code=\"3xx\"}", (double)hs.by_class[3]);
    emit(&o, "sonde_http_requests_total", NULL, NULL, "{code=\"4xx\"}", (double)hs.by_class[4]);
    emit(&o, "sonde_http_requests_total", NULL, NULL, "{code=\"5xx\"}", (double)hs.by_class[5]);
    /* counted once per request, however often it was woken and parked again (api/value.c) */
    emit(&o, "sonde_http_long_polls_total", "counter",
         "Value requests that waited for sources to report.", NULL, C(long_polls));
    emit(&o, "sonde_http_too_large_total", "counter", "Requests refused for their body size.", NULL,
         (double)hs.too_large);
    emit(&o, "sonde_http_response_bytes_total", "counter", "Response body bytes sent.", NULL,
         (double)hs.bytes_out);
    for (int i = 0; i < SN_HTTP_R_N; i++) { /* docs/operations.md: what each reason means */
        char l[64];
        snprintf(l, sizeof(l), "{reason=\"%s\"}", sn_http_refusal_name(i));
        emit(&o, "sonde_http_refused_total", i ? NULL : "counter",
             i ? NULL : "Connections and requests refused or cut by the server's limits.", l,
             (double)hs.refused[i]);
    }
    emit(&o, "sonde_http_connections", "gauge", "Open HTTP connections.", NULL,
         (double)hs.connections);
    emit(&o, "sonde_http_connections_total", "counter", "HTTP connections accepted.", NULL,
         (double)hs.accepted);
    emit(&o, "sonde_http_body_memory_bytes", "gauge",
         "Memory reserved for request bodies being received or handled.", NULL,
         (double)hs.body_bytes);
    bool unsaved;
    sn_server_state(s, &n, &unsaved);
    emit(&o, "sonde_save_failures_total", "counter",
         "Writes of the definitions that failed (e.g. a full disk).", NULL, C(save_failures));
    emit(&o, "sonde_definitions_unsaved", "gauge",
         "1 while the stored definitions are behind memory (a save is retried every second).", NULL,
         unsaved ? 1 : 0);
    if (s->store) { /* docs/operations.md: the store */
        struct sn_store_stats ss;
        sn_store_stats(s->store, &ss);
        const struct row st[] = {
            {"sonde_store_commits_total", "counter", "Per-second write transactions committed.",
             NULL, (double)ss.commits},
            {"sonde_store_commit_seconds_total", "counter", "Time spent in them.", NULL,
             (double)ss.commit_ns / 1e9},
            {"sonde_store_records_written_total", "counter", "Raw records written.", NULL,
             (double)ss.records_written},
            {"sonde_store_rollups_written_total", "counter", "Rollup records written.", NULL,
             (double)ss.rollups_written},
            {"sonde_store_bytes_written_total", "counter", "Record bytes written.", NULL,
             (double)ss.bytes_written},
            {"sonde_store_write_errors_total", "counter",
             "Write transactions that failed (ENOSPC, EIO, ...): data is kept in memory and "
             "written when writing works again.",
             NULL, (double)ss.write_errors},
            {"sonde_store_write_failing", "gauge", "1 while writes fail (errno of the last).", NULL,
             ss.last_error ? 1 : 0},
            {"sonde_store_slots_lost_total", "counter",
             "Slots memory no longer held when writing worked again.", NULL, (double)ss.slots_lost},
            {"sonde_store_records_expired_total", "counter", "Records removed by retention.", NULL,
             (double)ss.records_expired},
            {"sonde_store_records_deleted_total", "counter",
             "Records removed with their deleted instrumentation.", NULL,
             (double)ss.records_deleted},
            {"sonde_store_records_dropped_total", "counter",
             "Records removed by --store-max-bytes (oldest of the finest tier first).", NULL,
             (double)ss.records_dropped},
            {"sonde_store_records_damaged_total", "counter",
             "Records read that failed their checks (skipped).", NULL, (double)ss.records_damaged},
            {"sonde_store_map_grown_total", "counter", "Times the LMDB map grew.", NULL,
             (double)ss.map_grown},
            {"sonde_store_map_bytes", "gauge", "The LMDB map's size.", NULL, (double)ss.map_size},
            {"sonde_store_used_bytes", "gauge", "Pages the store's data uses, in bytes.", NULL,
             (double)ss.used_bytes},
            {"sonde_store_pending", "gauge", "Slots and rollups waiting to be written.", NULL,
             (double)ss.pending},
        };
        emit_rows(&o, st, sizeof(st) / sizeof(st[0]));
    }
    if (s->spans) { /* docs/tracing.md: spans */
        struct sn_span_store_stats ts;
        struct sn_tail_stats tl;
        sn_span_store_stats(s->spans, &ts);
        sn_tail_stats(s->tail, &tl);
        uint64_t base_spans, base_keys;
        sn_span_base_stats(s, &base_spans, &base_keys);
        const struct row st[] = {
            {"sonde_span_requests_total", "counter", "OTLP and Zipkin ingest requests.", NULL,
             C(span_in.requests)},
            {"sonde_span_requests_invalid_total", "counter",
             "Span requests refused as malformed (400, 413, 415): nothing of them stored.", NULL,
             C(span_in.invalid)},
            {"sonde_span_requests_busy_total", "counter",
             "Span requests refused with 503 and Retry-After: the span store's queue was full.",
             NULL, C(span_in.busy)},
            {"sonde_spans_accepted_total", "counter", "Spans accepted (before tail sampling).",
             NULL, C(span_in.accepted)},
            {"sonde_spans_rejected_total", "counter",
             "Spans refused one by one (OTLP partialSuccess).", NULL, C(span_in.rejected)},
            {"sonde_spans_written_total", "counter", "Spans written into the span store.", NULL,
             (double)ts.spans_written},
            {"sonde_span_blocks_written_total", "counter", "Blocks of spans written.", NULL,
             (double)ts.blocks_written},
            {"sonde_span_bytes_written_total", "counter", "Bytes of blocks written.", NULL,
             (double)ts.bytes_written},
            {"sonde_span_write_errors_total", "counter",
             "Span write transactions that failed (the requests wait in memory, retried).", NULL,
             (double)ts.write_errors},
            {"sonde_span_blocks_expired_total", "counter", "Blocks removed by --trace-retention.",
             NULL, (double)ts.blocks_expired},
            {"sonde_span_blocks_dropped_total", "counter", "Blocks removed by --trace-max-bytes.",
             NULL, (double)ts.blocks_dropped},
            {"sonde_span_blocks_damaged_total", "counter", "Blocks read that failed their checks.",
             NULL, (double)ts.blocks_damaged},
            {"sonde_span_queue_requests", "gauge", "Span requests waiting for the writer.", NULL,
             (double)ts.queued},
            {"sonde_span_used_bytes", "gauge", "Pages the span databases use, in bytes.", NULL,
             (double)ts.used_bytes},
            {"sonde_span_base_spans_total", "counter",
             "Spans counted in the base of trace.spans (docs/tracing.md).", NULL,
             (double)base_spans},
            {"sonde_span_base_keys", "gauge",
             "Distinct (service, name, kind, status, host) keys of the base's last second.", NULL,
             (double)base_keys},
            {"sonde_tail_traces_kept_total", "counter", "Traces the tail sampler kept, by rule.",
             "{rule=\"error\"}", (double)tl.kept_error},
            {"sonde_tail_traces_kept_total", NULL, NULL, "{rule=\"slow\"}", (double)tl.kept_slow},
            {"sonde_tail_traces_kept_total", NULL, NULL, "{rule=\"rate\"}", (double)tl.kept_rate},
            {"sonde_tail_traces_dropped_total", "counter", "Traces the tail sampler dropped.", NULL,
             (double)tl.traces_dropped},
            {"sonde_tail_spans_dropped_total", "counter", "Spans the tail sampler dropped.", NULL,
             (double)tl.spans_dropped},
            {"sonde_tail_decided_early_total", "counter",
             "Traces decided before their wait: too many spans waited.", NULL,
             (double)tl.decided_early},
            {"sonde_tail_waiting_spans", "gauge", "Spans waiting for their trace's decision.", NULL,
             (double)tl.waiting_spans},
        };
        emit_rows(&o, st, sizeof(st) / sizeof(st[0]));
    }
    emit(&o, "sonde_instrumentations", "gauge", "Live instrumentations, every scope.", NULL,
         (double)n);
    {
        /* the fleet (docs/fleet.md); zeros on a single host, so that every server has them */
        struct sn_fleet_stats fs = {0};
        if (s->fleet)
            sn_fleet_stats(s->fleet, &fs);
        const struct row st[] = {
            {"sonde_fleet_frames_total", "counter", "Frames taken from the bus.", NULL,
             (double)fs.frames},
            {"sonde_fleet_batches_total", "counter",
             "Batches the frames taken from the bus were handed to the aggregator in (a "
             "second's frames of a batch make one new slot).",
             NULL, (double)fs.batches},
            {"sonde_fleet_redelivered_total", "counter",
             "Frames the bus delivered again (a consumer restarted behind the last one taken): "
             "dropped, never counted twice.",
             NULL, (double)fs.redelivered},
            {"sonde_fleet_frames_late_total", "counter",
             "Frames older than memory, merged into the store.", NULL, (double)fs.frames_late},
            {"sonde_fleet_frames_refused_total", "counter",
             "Frames from the bus refused (counted and dropped).", "{reason=\"undecodable\"}",
             (double)fs.frames_bad},
            {"sonde_fleet_frames_refused_total", NULL, NULL, "{reason=\"foreign\"}",
             (double)fs.frames_foreign},
            {"sonde_fleet_owned", "gauge", "Instrumentations this node owns.", NULL,
             (double)fs.owned},
            {"sonde_fleet_nodes", "gauge", "Live nodes this node hears.", NULL, (double)fs.nodes},
            {"sonde_fleet_agents", "gauge", "Live agents this node hears.", NULL,
             (double)fs.agents},
            {"sonde_fleet_replays_total", "counter",
             "Instrumentations taken over, their memory rebuilt from the stream.", NULL,
             (double)fs.replays},
            {"sonde_fleet_rebuilt_frames_total", "counter",
             "Frames of the stream taken to rebuild the history of a share this node's store "
             "never held.",
             NULL, (double)fs.rebuilt},
            {"sonde_fleet_rollups_sent_total", "counter",
             "Rollup records this node put on the bus (JetStream's record of history).", NULL,
             (double)fs.rollups_sent},
            {"sonde_fleet_rollups_rebuilt_total", "counter",
             "Rollup records taken from the bus to rebuild the history of a new share.", NULL,
             (double)fs.rollups_rebuilt},
            {"sonde_fleet_consumer_restarts_total", "counter",
             "Consumers restarted where they were, after the bus came back.", NULL,
             (double)fs.restarts},
            {"sonde_fleet_consumer_pending", "gauge",
             "Frames in the stream not yet taken by this node's consumers.", NULL,
             (double)fs.pending},
            {"sonde_fleet_lag_seconds", "gauge",
             "The largest age of the newest frame taken, over owned instrumentations.", NULL,
             (double)fs.lag_s},
            {"sonde_fleet_link_down_total", "counter", "Times the NATS connection was lost.", NULL,
             (double)fs.link_down},
            {"sonde_fleet_agent_buffered_frames", "gauge",
             "Frames the live agents hold, not yet acknowledged by JetStream.", NULL,
             (double)fs.agent_buffered},
            {"sonde_fleet_agent_dropped_frames_total", "counter",
             "Frames the live agents dropped from their buffers (too old or over the cap).", NULL,
             (double)fs.agent_dropped},
            {"sonde_fleet_agent_duplicates_total", "counter",
             "Re-sent frames JetStream recognized and kept once (live agents).", NULL,
             (double)fs.agent_duplicates},
            {"sonde_fleet_spans_published_total", "counter",
             "Spans this node took over HTTP and put on the bus (acknowledged by JetStream).", NULL,
             (double)fs.spans_published},
            {"sonde_fleet_spans_taken_total", "counter",
             "Spans of the shards this node owns taken from the bus into its span store.", NULL,
             (double)fs.spans_taken},
            {"sonde_fleet_span_messages_refused_total", "counter",
             "Span messages from the bus refused (counted and dropped).",
             "{reason=\"undecodable\"}", (double)fs.span_msgs_bad},
            {"sonde_fleet_span_messages_refused_total", NULL, NULL, "{reason=\"foreign\"}",
             (double)fs.span_msgs_foreign},
            {"sonde_fleet_span_shards", "gauge",
             "Shards of the trace store this node owns and has caught up with.", NULL,
             (double)fs.span_shards},
        };
        emit_rows(&o, st, sizeof(st) / sizeof(st[0]));
    }
    {
        /* without the local agent (--no-agent, or BPF unavailable) the series are there, as
         * zeros: a dashboard or alert finds its series on every server */
        uint64_t secs = 0, last = 0, on = 0;
        if (s->collector)
            sn_collector_stats(s->collector, &secs, &last, &on);
        emit(&o, "sonde_agent_collections_total", "counter", "Seconds the local agent collected.",
             NULL, (double)secs);
        emit(&o, "sonde_agent_collection_seconds", "gauge", "How long the last collection took.",
             NULL, (double)last / 1e9);
        emit(&o, "sonde_agent_instrumentations", "gauge", "Instrumentations the local agent runs.",
             NULL, (double)on);
    }
    emit(&o, "sonde_start_time_seconds", "gauge", "When this server started (Unix time).", NULL,
         (double)s->started);
    if (!o.p) {
        sn_resp_empty(c->resp, 500);
        return;
    }
    sn_resp_bytes(c->resp, 200, "text/plain; version=0.0.4", (unsigned char *)o.p, o.len);
}
