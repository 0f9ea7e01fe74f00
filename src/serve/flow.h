/*
 * The one data path of `sonde serve`: every source reaches the aggregator through the bus
 * (bus/bus.h), and the aggregator reaches every source through it.
 *
 *   local agent (serve/collector.c) ─┐ frames                 ┌─> aggregator (agg/agg.h)
 *   POST /ca/ingest (api/ingest.c) ──┼──> bus (in process) ───┤   adds them to datasets,
 *   a fleet's owners (serve/fleet.c)─┘                        └─> mirrors sources' statuses
 *
 *   server (create, delete, restart) ──> bus control: enable / disable ──> every source host,
 *                                        acknowledged per host (running, refused, unsupported);
 *                                        in a fleet: the definition put in (deleted from) the
 *                                        bucket the agents watch (serve/fleet.h)
 *
 * Nothing else adds frames to a dataset or tells an agent what to run; "is this source running
 * that instrumentation" is what the sources said, read from the aggregator's mirror.
 */
#ifndef SN_SERVE_FLOW_H
#define SN_SERVE_FLOW_H

#include <stdbool.h>
#include <stddef.h>

#include "agg/dataset.h"
#include "wire/frame.h"

struct sn_server;
struct sn_instn;

/* How long a create or a restart waits for the sources' acknowledgements (ms). */
#define SN_FLOW_CTL_TIMEOUT_MS 30000

/* Opens s->bus and subscribes the aggregator (s->agg) to every frame and to the sources'
 * statuses. Returns 0 or -ENOMEM. */
int sn_flow_open(struct sn_server *s);
/* Unsubscribes and closes the bus; after the sources have stopped. */
void sn_flow_close(struct sn_server *s);

/* Publishes frame f (borrowed) from a source; now is the time it is added at. Returns the
 * aggregator's outcome (enum sn_ds_added), -ENOENT (no such instrumentation) or -ENOMEM; with
 * try, -EAGAIN (nothing done) when another frame is being merged into the same dataset. fold
 * (may be NULL) receives what the key cap folded into "other". */
int sn_flow_frame(struct sn_server *s, const struct sn_wire_frame *f, int64_t now, bool try,
                  struct sn_ds_fold *fold);
/* Frames f[0..n) (borrowed, any instrumentations) published as a batch: each run of one
 * instrumentation goes to the aggregator at once (one new slot per second of it, however
 * many frames). rcs[i]: frame i's outcome, as sn_flow_frame()'s; fold over the batch. */
void sn_flow_frames(struct sn_server *s, const struct sn_wire_frame *const *f, size_t n,
                    int64_t now, bool try, int *rcs, struct sn_ds_fold *fold);

/* Spans spans[0..n) received by this server (OTLP, Zipkin: api/trace.c), counted in the base
 * and in every trace.spans instrumentation (serve/span_metrics.h): their frames published as
 * sn_flow_frames() publishes, at now (Unix seconds; the second of a span without a start).
 * Returns 0 or -ENOMEM (nothing counted). */
struct sn_span;
int sn_flow_spans(struct sn_server *s, const struct sn_span *spans, size_t n, int64_t now);

/* Stores frame f (borrowed) for a second older than memory holds (import, backfill): merged
 * into the record of the finest tier that keeps f->t (store/store.h), rolled up from there like
 * live data. now: Unix seconds. Returns 0, SN_DS_LATE (no tier keeps it), SN_DS_MISMATCH,
 * -ENOENT (no such instrumentation) or -ENOMEM. */
int sn_flow_store(struct sn_server *s, const struct sn_wire_frame *f, int64_t now);

/* Asks every source host to run in (its host-free definition, the tenant's containers in its
 * predicate) and waits for their acknowledgements. Returns 0 when none refused it (hosts
 * without BPF say "unsupported", and it stands there not running), or -EINVAL with the first
 * refusal's why ("cannot enable on this host: ...", a USDT probe it lacks, no answer in time;
 * the hosts that did start it keep running it until sn_flow_disable()); -ENOMEM. The hosts'
 * answers become their statuses of in (the aggregator's mirror). */
int sn_flow_enable(struct sn_server *s, const struct sn_instn *in, char *why, size_t whylen);
/* Asks every source host to stop running key, and waits for them. */
void sn_flow_disable(struct sn_server *s, const char *key);

/* A source's frame in a fleet: onto the bus, from which the owners' consumers take it
 * through sn_flow_frame() (serve/fleet.h). 0 once JetStream stored it; -ENOENT (no such
 * instrumentation), -EINVAL (a host name the bus cannot carry), -errno of the bus. On a single
 * host (no fleet): -ENOTSUP. */
int sn_flow_publish(struct sn_server *s, const struct sn_wire_frame *f);

/* What a source says it runs, into the bus's statuses (serve/fleet.c: agents' heartbeats):
 * sn_bus_report_status() and sn_bus_clear_status() on the server's bus. */
int sn_flow_report_status(struct sn_server *s, const char *host, const char *key, int rc,
                          const char *why);
void sn_flow_clear_status(struct sn_server *s, const char *host, const char *key);
/* Tells the aggregator again every status of key the bus holds (after its dataset was
 * replaced: sn_server_reset_data()). */
void sn_flow_resync_status(struct sn_server *s, const char *key);

#endif
