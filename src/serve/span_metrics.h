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
 *
 * The base (docs/tracing.md, "The past of trace.spans"): from the server's start every span
 * also counts, whether an instrumentation exists or not, in one built-in series, key
 * SN_SPAN_BASE_KEY, numeric by key: its keys are the five discrete fields of the span at once
 * (service, name, kind, status, host: sn_span_metrics_base_fields() reads one back), its
 * histogram the latency's. The server keeps it as it keeps a persist-data instrumentation
 * (serve/span_base.h), and an instrumentation created later is answered for its past by
 * re-aggregating the base's records (sn_span_metrics_rekey()): predicate evaluated on the
 * key's fields, re-keyed to the instrumentation's decomposition.
 *
 * Counting once: sn_span_metrics_take() builds every frame of a request (the base's and every
 * instrumentation's) and publishes them while it holds the read lock, and a new
 * instrumentation's fill takes its snapshot of the base under the write lock, the instant
 * before it runs (sn_span_metrics_enable_fill()). So each request's spans are either wholly in
 * the snapshot (and not counted live in the new instrumentation), or counted live (and not in
 * the snapshot).
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
struct sn_span_rekey;   /* one instrumentation as sn_span_metrics_rekey() re-keys for it */
struct sn_ds_slot;

/* The base's key in the aggregator and the store: never an instrumentation's ("N",
 * "tenant/N"). */
#define SN_SPAN_BASE_KEY  "trace.spans"
/* The separators of the base's keys: fields by 0x1f; a field whose text was cut at
 * SN_SPAN_BASE_TEXT bytes or held a separator ('?' in its place) is followed by 0x1e and the
 * 16 hex digits of its full text's hash (agent/catalog.h), so that predicates stay exact. */
#define SN_SPAN_BASE_SEP  '\x1f'
#define SN_SPAN_BASE_HASH '\x1e'
#define SN_SPAN_BASE_TEXT 127 /* as a key of a frame: what the live frames keep of a text */

int sn_span_metrics_open(struct sn_span_metrics **out);
void sn_span_metrics_close(struct sn_span_metrics *sm);

/* Whether definition def (a CA instrumentation object) is of a metric this module answers. */
bool sn_span_metrics_handles(const json_t *def);
/* Runs instrumentation key (its host-free definition def, borrowed) on the spans received
 * from now on (again: replaced). key_cap: distinct keys a second keeps before "other".
 * Returns 0, or -EINVAL with CA's message in why, -ENOMEM. */
int sn_span_metrics_enable(struct sn_span_metrics *sm, const char *key, const json_t *def,
                           uint32_t key_cap, char *why, size_t whylen);
/* sn_span_metrics_enable(), filling the instrumentation's past first (f may be NULL): f->snap
 * (f->arg) is called once the definition compiled, with the write lock held, just before the
 * instrumentation runs (no request is between its frames and their publishing then: what the
 * base holds at that instant is exactly what will not be counted live), to take references
 * to what the fill reads (cheap: the lock holds up ingest); then, with the lock released,
 * f->fill(f->arg, r) builds and publishes the fill from them (r: a copy of the instrumentation
 * for sn_span_metrics_rekey()). Neither may call sm. */
struct sn_span_fill {
    void (*snap)(void *arg);
    void (*fill)(void *arg, const struct sn_span_rekey *r);
    void *arg;
};
int sn_span_metrics_enable_fill(struct sn_span_metrics *sm, const char *key, const json_t *def,
                                uint32_t key_cap, const struct sn_span_fill *f, char *why,
                                size_t whylen);
void sn_span_metrics_disable(struct sn_span_metrics *sm, const char *key);
/* Whether instrumentation key runs here. */
bool sn_span_metrics_has(struct sn_span_metrics *sm, const char *key);
/* How many instrumentations run. */
size_t sn_span_metrics_count(struct sn_span_metrics *sm);

/* Frees frames f[0..n) and the array (sn_span_metrics_rekey()'s, built into one). */
void sn_span_metrics_frames_free(struct sn_wire_frame *f, size_t n);

/* Counts spans from now on in the base too (sn_span_metrics_take()). */
void sn_span_metrics_base_on(struct sn_span_metrics *sm);
/* The frames spans[0..n) make for every instrumentation running (host: this server's name or
 * the publisher's, the frames' source; the host field of a span without a host.name
 * attribute; now: Unix seconds, the second of a span without a start), and with the base on
 * the base's (numeric by key, id SN_SPAN_BASE_KEY; the keys past a second's key cap are the
 * dataset's to fold into "other"), handed to publish(arg, f, nf) (borrowed for the call)
 * while the read lock is held. Returns 0, or -ENOMEM (nothing published). */
typedef void (*sn_span_publish_fn)(void *arg, const struct sn_wire_frame *f, size_t n);
int sn_span_metrics_take(struct sn_span_metrics *sm, const struct sn_span *spans, size_t n,
                         const char *host, int64_t now, sn_span_publish_fn publish, void *arg);

/* Spans counted in the base so far. */
uint64_t sn_span_metrics_base_spans(struct sn_span_metrics *sm);

/* Re-aggregates slot s of the base (its record of one second, minute, ... : t, entries) for
 * instrumentation r into *out (owned: sn_wire_frame_fini()): a frame of r's arity, id r's key,
 * host host, second s->t, holding the entries whose fields r's predicate holds for, keyed as
 * r's decomposition keys them (a predicate on latency sees each bucket's lower edge). The
 * base's "other" (keys past its cap) counts in r's "other" when r has no predicate, else not
 * at all (added to *unknown, may be NULL). Returns 0 or -ENOMEM. */
int sn_span_metrics_rekey(const struct sn_span_rekey *r, const struct sn_ds_slot *s,
                          const char *host, struct sn_wire_frame *out, uint64_t *unknown);
/* The same for the running instrumentation key: -ENOENT when it does not run here. */
int sn_span_metrics_rekey_key(struct sn_span_metrics *sm, const char *key,
                              const struct sn_ds_slot *s, const char *host,
                              struct sn_wire_frame *out, uint64_t *unknown);
/* The base's key of a span whose service, name, kind, status and host are text[0..5) (NULL:
 * "") with hashes hash[0..5) (sn_text_hash() of each), into buf. */
#define SN_SPAN_BASE_KEY_MAX (5 * (SN_SPAN_BASE_TEXT + 17) + 5)
void sn_span_metrics_base_key(const char *const text[5], const uint64_t hash[5], char *buf);
/* The fields of base key k: text[i] (a copy, NUL-terminated, at most SN_SPAN_BASE_TEXT bytes)
 * and hash[i] for service, name, kind, status and host. Returns 0, or -EINVAL (not a base
 * key: "other"). */
int sn_span_metrics_base_fields(const char *k, char text[5][SN_SPAN_BASE_TEXT + 1],
                                uint64_t hash[5]);

/* Whether span s counts in instrumentation key (its predicate holds), with the key it counts
 * under into keybuf ("" without a discrete decomposition) and the second it counts in into
 * *t. Returns 1, 0 (it does not count), or -ENOENT (no such instrumentation). For the
 * exemplars of a heatmap cell (api/trace.c). */
int sn_span_metrics_match(struct sn_span_metrics *sm, const char *key, const struct sn_span *s,
                          const char *host, int64_t now, char *keybuf, size_t len, int64_t *t);

#endif
