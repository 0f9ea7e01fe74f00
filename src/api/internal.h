/*
 * What the API's files share: one call's context, CA's parameter parsing with its messages,
 * and the handlers route.c dispatches to.
 */
#ifndef SN_API_INTERNAL_H
#define SN_API_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "api/api.h"
#include "serve/server.h"

struct sn_call {
    struct sn_server *s;
    struct sn_req *req;
    struct sn_resp *resp;
    const char *scope; /* "" (operator) or the tenant */
    char base[128];    /* "/ca" or "/ca/customers/<tenant>" */
    uint64_t id;       /* the instrumentation in the path, if any */
};

/* 409 ECA_INVAL with a message. */
#define CA_INVAL(call, ...) sn_resp_error((call)->resp, 409, "ECA_INVAL", __VA_ARGS__)

/*
 * An integer parameter: absent gives dflt (and *given false). Otherwise it must parse as an
 * integer within [min, max], else 409 with CA's message
 *   value "<raw>" for param "<p>" not valid: not a number | value too small (min: N) | ...
 * and false is returned.
 */
bool sn_param_int(struct sn_call *c, const char *name, int64_t min, int64_t max, int64_t dflt,
                  int64_t *out, bool *given);
/* A floating-point parameter in [min, max]. */
bool sn_param_double(struct sn_call *c, const char *name, double min, double max, double dflt,
                     double *out, bool *given);
/* A boolean: "true"/"false" (and JSON booleans in a JSON body); else "not a boolean". */
bool sn_param_bool(struct sn_call *c, const char *name, bool dflt, bool *out);
/*
 * A list parameter: a JSON array (of strings or numbers) in a JSON body, a JSON string, or
 * the form's (else the query's) values, repeated or comma-separated (empty items skipped).
 * The whole value is read: more than max items, or more text than buf's len bytes (items
 * NUL-terminated), is a 409 (`value for param "<p>" not valid: at most N values` or `longer
 * than N bytes`), as is a JSON value of another kind (`not a list of strings`); false then.
 * Otherwise out[0..*n) point into buf.
 */
bool sn_param_list(struct sn_call *c, const char *name, const char **out, size_t max, char *buf,
                   size_t len, size_t *n);
/* A parameter's raw value: from the JSON body when value parameters may come from it
 * (json_ok), else the query or form. Numbers and booleans of a JSON body come back as text in
 * buf. NULL when absent. */
const char *sn_param_raw(struct sn_call *c, const char *name, char *buf, size_t len);

/* Handlers (the instrumentation, when the path names one, is c->id). */
void sn_api_describe(struct sn_call *c);
void sn_api_legacy_metrics(struct sn_call *c);
void sn_api_legacy_types(struct sn_call *c);
void sn_api_transformations(struct sn_call *c);
void sn_api_list(struct sn_call *c);
void sn_api_create(struct sn_call *c, uint64_t clone_of);
void sn_api_get(struct sn_call *c);
void sn_api_put(struct sn_call *c);
void sn_api_delete(struct sn_call *c);
void sn_api_value_index(struct sn_call *c, bool heatmap);
void sn_api_raw(struct sn_call *c);
void sn_api_heatmap(struct sn_call *c, const char *what); /* image, details, average, percentile */
/* POST ingest (live frames) and import (past seconds too, into the store: backfill). */
void sn_api_ingest(struct sn_call *c, bool import);
/* GET instrumentations/:id/export: the stored records as JSON lines of frames. */
void sn_api_export(struct sn_call *c);
void sn_api_prometheus(struct sn_call *c);
/* Dashboards (dashboards.c); name is the path's segment, unchecked. */
void sn_api_dash_list(struct sn_call *c);
void sn_api_dash_get(struct sn_call *c, const char *name);
void sn_api_dash_put(struct sn_call *c, const char *name);
void sn_api_dash_delete(struct sn_call *c, const char *name);
/* Spans (api/trace.c): OTLP/HTTP and Zipkin v2 ingest, and Zipkin v2's query API (what: the
 * path's last segment, "services", "traces", ...; the trace route's arg: its id). */
void sn_api_otlp_ingest(struct sn_call *c);
void sn_api_zipkin_ingest(struct sn_call *c);
void sn_api_zipkin_query(struct sn_call *c, const char *what);
void sn_api_zipkin_trace(struct sn_call *c, const char *id);
/* Sampling: Jaeger's GET /api/sampling?service=S; GET and PUT /ca/sampling. */
void sn_api_jaeger_sampling(struct sn_call *c);
void sn_api_sampling(struct sn_call *c, bool put);
/* dprof's questions: GET /ca/traces/longest, /shortest, /operations, and /ca/traces/:id (arg). */
void sn_api_traces(struct sn_call *c, const char *arg);
/* The exemplars of a heatmap cell of trace.spans instrumentation in: at most max spans that
 * count in it, ending in [t0, t1) (seconds) with a duration in [lo, hi] (ns), newest first, as
 * [{"traceId", "spanId", "service", "name", "key", "timestamp" (µs), "duration" (µs)}]; NULL
 * when in is no span instrumentation. */
json_t *sn_api_span_exemplars(struct sn_call *c, const struct sn_instn *in, int64_t t0, int64_t t1,
                              double lo, double hi, size_t max);
/* The flight recorder (api/recordings.c): what is the route's kind ("index", "sessions",
 * "session" (GET or DELETE), "snapshot", "snapshots", "archive", "snapshot-delete"), arg the
 * path's :name. */
void sn_api_recorder(struct sn_call *c, const char *what, const char *arg);
/* Its triggers (api/triggers.c): what is "list", "create", "fired" or "one" (GET or DELETE of
 * trigger arg). */
void sn_api_triggers(struct sn_call *c, const char *what, const char *arg);
/* The web UI's files at "/" (unless the client asks for JSON) and "/ui/...": true when the
 * request was one of them (and resp is set). Needs no token: the page asks for one. */
bool sn_api_ui(struct sn_server *s, const struct sn_req *req, struct sn_resp *resp);

/* The instrumentation's property object (CA's field order), its sources and warnings from the
 * aggregator. */
json_t *sn_api_props(struct sn_call *c, const struct sn_instn *in);

/* A copy of the instrumentation of the path (the caller's: sn_instn_free()), with its last
 * access time updated, or NULL after an empty 404. */
struct sn_instn *sn_api_instn(struct sn_call *c);

/* In a fleet, a data request for an instrumentation this node does not own, answered by an
 * owner (api/proxy.c): true when answered so (or refused: no owner, 503), false when this
 * node answers it. */
bool sn_api_proxy(struct sn_call *c);
/* The same for a request about the spans of one shard of the trace store (fleet/names.h:
 * GET /api/v2/trace/{id}): answered by an owner of the shard. */
bool sn_api_proxy_spans(struct sn_call *c, unsigned shard);
/* The request as it came, sent to the node whose API is api (with X-Sonde-Proxied: answered
 * there from what it holds), with the query parameters extra ("name=value&...", already
 * encoded; NULL: none) added, its answer into *r (sn_http_resp_free()). 0 or -errno. For the
 * searches and questions that fan out to other nodes (api/trace.c). */
struct sn_http_resp;
int sn_api_fanout(struct sn_call *c, const char *api, const char *extra, int timeout_ms,
                  struct sn_http_resp *r);

#endif
