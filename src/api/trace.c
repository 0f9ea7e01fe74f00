/*
 * Spans over HTTP (docs/tracing.md): OTLP/HTTP ingest (POST /v1/traces, protobuf or JSON) and
 * Zipkin v2 ingest (POST /api/v2/spans, JSON or proto3), whose decode and replies are
 * trace/ingest.c's (shared with `sonde agent`'s relay) with this server as their sink, and
 * Zipkin v2's query API (GET /api/v2/...), with the status codes and messages of Zipkin's
 * server (../shared/ref/tracing.md §1.3, §2.3), so that unmodified exporters, Zipkin's UI,
 * Grafana's Zipkin data source and scripts work against Sonde.
 *
 * The sink hands the spans to the span store's queue (trace/span_store.h): a full queue is a
 * 503 with Retry-After (nothing of the request taken; OTLP exporters and Zipkin's senders
 * retry); in a fleet, to the bus (serve/fleet_spans.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/internal.h"
#include "core/clock.h"
#include "core/grow.h"
#include "core/hist.h"
#include "fleet/names.h"
#include "http/client.h"
#include "serve/fleet.h"
#include "serve/flow.h"
#include "serve/span_metrics.h"
#include "trace/ingest.h"
#include "trace/otlp.h"
#include "trace/query.h"
#include "trace/sampling.h"
#include "trace/span_store.h"
#include "trace/zipkin.h"

#define DAY_MS 86400000LL

/* The frames of trace.spans instrumentations and of their base these spans make, into the
 * aggregator (the one data path: serve/flow.h). */
static void span_frames(struct sn_server *s, const struct sn_span_batch *b)
{
    sn_flow_spans(s, b->spans, b->n, sn_now());
}

/* A request's spans taken: refused whole (-EBUSY) while the span store's queue is full;
 * else counted in trace.spans (every span: heatmaps stay whole whatever is sampled), then
 * to the tail sampler, which stores them (or what it keeps). */
static int take(void *arg, const struct sn_span_batch *b, char *why, size_t whylen)
{
    struct sn_server *s = arg;
    /* in a fleet, onto the bus: the shards' owners store them, answered once JetStream has
     * stored every message of the request (serve/fleet_spans.c) */
    if (s->fleet)
        return sn_fleet_publish_spans(s->fleet, b, why, whylen);
    if (sn_span_store_full(s->spans))
        return -EBUSY;
    span_frames(s, b);
    return sn_tail_take(s->tail, b, sn_now_ms());
}

/* ---- Ingest: the one copy in trace/ingest.c, with this server as the sink ------------------ */

void sn_api_otlp_ingest(struct sn_call *c)
{
    struct sn_span_sink k = {take, c->s, &c->s->c.span_in};
    sn_span_ingest_otlp(&k, c->req, c->resp);
}

void sn_api_zipkin_ingest(struct sn_call *c)
{
    struct sn_span_sink k = {take, c->s, &c->s->c.span_in};
    sn_span_ingest_zipkin(&k, c->req, c->resp);
}

/* ---- Zipkin queries ------------------------------------------------------------------------ */

static void text(struct sn_call *c, int status, const char *msg)
{
    sn_resp_text(c->resp, status, "text/plain; charset=utf-8", msg);
}

struct out {
    char *p;
    size_t len, cap;
    bool oom;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->oom)
        return;
    char *p = sn_grow(o->p, &o->cap, o->len + n + 1, 1);
    if (!p) {
        o->oom = true;
        return;
    }
    o->p = p;
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

/* A JSON string (names of services and spans: escaped as JSON wants). */
static void put_jstr(struct out *o, const char *s)
{
    json_t *j = json_string(s);
    char *t = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    if (t)
        puts_(o, t);
    else
        puts_(o, "\"\"");
    free(t);
    json_decref(j);
}

static void put_trace(struct out *o, const struct sn_span_batch *t)
{
    puts_(o, "[");
    for (size_t i = 0; i < t->n && !o->oom; i++) {
        if (i)
            puts_(o, ",");
        if (sn_zipkin_span_json(&t->spans[i], &o->p, &o->len, &o->cap) < 0)
            o->oom = true;
    }
    puts_(o, "]");
}

static void reply_json(struct sn_call *c, struct out *o)
{
    if (o->oom) {
        free(o->p);
        sn_resp_empty(c->resp, 500);
        return;
    }
    sn_resp_bytes(c->resp, 200, "application/json", (unsigned char *)o->p, o->len);
}

static void names_reply(struct sn_call *c, char **names, size_t n)
{
    struct out o = {0};
    puts_(&o, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            puts_(&o, ",");
        put_jstr(&o, names[i]);
    }
    puts_(&o, "]");
    sn_span_store_strings_free(names, n);
    reply_json(c, &o);
}

/* A positive integer parameter; false (400 sent with Zipkin's message) when bad. */
static bool int_param(struct sn_call *c, const char *name, int64_t dflt, int64_t *out, bool *given)
{
    const char *v = sn_req_param(c->req, name);
    char *end;
    if (given)
        *given = v && *v;
    if (!v || !*v) {
        *out = dflt;
        return true;
    }
    long long x = strtoll(v, &end, 10);
    if (*end || end == v) {
        char msg[160];
        snprintf(msg, sizeof(msg), "%s is not a number: %.64s", name, v);
        text(c, 400, msg);
        return false;
    }
    *out = x;
    return true;
}

/* A trace id of a path or a list, normalised into id[16]: false with Zipkin's message sent. */
static bool trace_id(struct sn_call *c, const char *s, uint8_t id[16])
{
    size_t n = strlen(s);
    while (n && s[n - 1] == ' ')
        n--;
    if (n == 0 || n > 32 || sn_span_id_parse(s, n, id, 16) != n || sn_span_id_zero(id, 16)) {
        char msg[160];
        snprintf(msg, sizeof(msg), "%.*s should be lower-hex encoded with no prefix",
                 (int)(n > 64 ? 64 : n), s);
        text(c, 400, msg);
        return false;
    }
    return true;
}

static void traces_query(struct sn_call *c)
{
    struct sn_trace_query q = {0};
    int64_t end, lookback, limit, min = 0, max = 0;
    bool min_given, max_given;
    char terms[2048];

    if (!int_param(c, "endTs", sn_now_ms(), &end, NULL) ||
        !int_param(c, "lookback", DAY_MS, &lookback, NULL) ||
        !int_param(c, "limit", 10, &limit, NULL) ||
        !int_param(c, "minDuration", 0, &min, &min_given) ||
        !int_param(c, "maxDuration", 0, &max, &max_given))
        return;
    if (end <= 0)
        return text(c, 400, "endTs <= 0");
    if (limit <= 0)
        return text(c, 400, "limit <= 0");
    if (lookback <= 0)
        return text(c, 400, "lookback <= 0");
    if (min_given && min <= 0)
        return text(c, 400, "minDuration <= 0");
    if (max_given && !min_given)
        return text(c, 400, "maxDuration is only valid with minDuration");
    if (max_given && max < min)
        return text(c, 400, "maxDuration < minDuration");
    q.service = sn_req_param(c->req, "serviceName");
    q.remote = sn_req_param(c->req, "remoteServiceName");
    q.span_name = sn_req_param(c->req, "spanName");
    if (q.service && !*q.service)
        q.service = NULL;
    if (q.remote && !*q.remote)
        q.remote = NULL;
    q.min_us = (uint64_t)min;
    q.max_us = (uint64_t)max;
    q.end_ms = (uint64_t)end;
    q.lookback_ms = (uint64_t)lookback;
    q.limit = limit > 1000 ? 1000 : (uint32_t)limit;
    const char *aq = sn_req_param(c->req, "annotationQuery");
    snprintf(terms, sizeof(terms), "%s", aq ? aq : "");
    if (sn_trace_query_terms(&q, terms) < 0)
        return text(c, 400, "annotationQuery: at most 16 terms joined by \" and \", none empty");
    struct sn_span_batch *traces;
    size_t n;
    int rc = sn_trace_find(c->s->spans, &q, &traces, &n);
    if (rc < 0)
        return sn_resp_empty(c->resp, 500);
    struct out o = {0};
    puts_(&o, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            puts_(&o, ",");
        put_trace(&o, &traces[i]);
    }
    puts_(&o, "]");
    sn_trace_list_free(traces, n);
    reply_json(c, &o);
}

static void trace_many(struct sn_call *c)
{
    const char *v = sn_req_param(c->req, "traceIds");
    char buf[8192];
    uint8_t(*ids)[16] = NULL;
    size_t n = 0, cap = 0;

    snprintf(buf, sizeof(buf), "%s", v ? v : "");
    for (char *save = NULL, *p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        while (*p == ' ')
            p++;
        if (!*p)
            continue;
        uint8_t id[16];
        if (!trace_id(c, p, id)) {
            free(ids);
            return;
        }
        for (size_t i = 0; i < n; i++)
            if (memcmp(ids[i], id, 16) == 0) {
                char msg[160];
                snprintf(msg, sizeof(msg), "redundant traceId: %.64s", p);
                free(ids);
                return text(c, 400, msg);
            }
        uint8_t(*a)[16] = sn_grow(ids, &cap, n + 1, 16);
        if (!a) {
            free(ids);
            return sn_resp_empty(c->resp, 500);
        }
        ids = a;
        memcpy(ids[n++], id, 16);
    }
    if (n == 0)
        return text(c, 400, "traceIds parameter is empty");
    if (n == 1) {
        free(ids);
        return text(c, 400, "Use /api/v2/trace/{traceId} endpoint to retrieve a single trace");
    }
    struct out o = {0};
    bool first = true;
    puts_(&o, "[");
    for (size_t i = 0; i < n; i++) {
        struct sn_span_batch t = {0};
        if (sn_span_store_trace(c->s->spans, ids[i], &t) == 0) {
            if (!first)
                puts_(&o, ",");
            first = false;
            put_trace(&o, &t);
        }
        sn_span_batch_fini(&t);
    }
    puts_(&o, "]");
    free(ids);
    reply_json(c, &o);
}

static void fleet_merge(struct sn_call *c, const char *what, bool fan);
static void zipkin_trace_local(struct sn_call *c, const char *arg, const uint8_t id[16]);

void sn_api_zipkin_trace(struct sn_call *c, const char *arg)
{
    uint8_t id[16];
    if (!trace_id(c, arg, id))
        return;
    /* in a fleet, an owner of the trace's shard answers (this node, or one it sends it to) */
    if (c->s->fleet && sn_api_proxy_spans(c, sn_fleet_span_shard(id)))
        return;
    if (c->s->fleet) {
        zipkin_trace_local(c, arg, id);
        fleet_merge(c, "trace", false);
        return;
    }
    zipkin_trace_local(c, arg, id);
}

static void zipkin_trace_local(struct sn_call *c, const char *arg, const uint8_t id[16])
{
    struct sn_span_batch t = {0};
    int rc = sn_span_store_trace(c->s->spans, id, &t);
    if (rc == -ENOENT) {
        char msg[160];
        snprintf(msg, sizeof(msg), "%.64s not found", arg);
        sn_span_batch_fini(&t);
        return text(c, 404, msg);
    }
    if (rc < 0) {
        sn_span_batch_fini(&t);
        return sn_resp_empty(c->resp, 500);
    }
    struct out o = {0};
    put_trace(&o, &t);
    sn_span_batch_fini(&t);
    reply_json(c, &o);
}

/* ---- Questions asked of each shard once, in a fleet ------------------------------------------
 *
 * A search may meet a trace twice (its two owners) and merge the copies; counts and rankings
 * cannot: dependencies, dprof's questions and a heatmap cell's exemplars count each shard of
 * the trace store once. The node asked answers for the shards it serves and asks, for the
 * others, one node serving each (the one serving most of those left, then the next), adding
 * the parameter shards=<hex mask>: a node sent that (X-Sonde-Proxied) answers for those shards
 * alone, from its store. The shards of a node that does not answer are asked of another; those
 * no node answers for are answered from what this node holds of them (a copy it kept, or
 * nothing). The answers are then merged: counts summed, histograms merged before percentiles
 * are read from them, top-N of the union. Exact when every shard has a node serving it.
 */
#define PLAN_MS    10000
#define PLAN_NODES 64
#define ALL_SHARDS UINT64_MAX

static bool keep_shard(void *arg, const uint8_t id[16])
{
    return (*(const uint64_t *)arg >> sn_fleet_span_shard(id)) & 1;
}

struct plan {
    uint64_t mine;               /* the shards this node answers for */
    bool inner;                  /* this request is one node's part of another's plan */
    struct sn_trace_filter keep; /* over mine */
    json_t *answers;             /* the other nodes' answers, as they said them */
};

/* Runs c's plan: the other nodes asked (their answers into p->answers: json_decref() it). The
 * filter of this node's own part, or NULL (every trace). */
static const struct sn_trace_filter *plan_run(struct sn_call *c, struct plan *p)
{
    struct sn_fleet *f = c->s->fleet;
    const char *v = sn_req_param(c->req, "shards");
    p->answers = json_array();
    p->mine = ALL_SHARDS;
    p->inner = f && c->req->proxied && v && *v;
    if (p->inner) {
        p->mine = strtoull(v, NULL, 16);
    } else if (f && (p->mine = sn_fleet_span_mask(f)) != ALL_SHARDS) {
        static __thread char api[PLAN_NODES][160];
        uint64_t mask[PLAN_NODES], left = ~p->mine;
        bool tried[PLAN_NODES] = {false};
        size_t n = sn_fleet_span_servers(f, api, mask, PLAN_NODES);
        for (size_t round = 0; round < n && left; round++) {
            size_t best = n;
            int most = 0;
            for (size_t i = 0; i < n; i++) {
                int k = tried[i] ? 0 : __builtin_popcountll(mask[i] & left);
                if (k > most) {
                    most = k;
                    best = i;
                }
            }
            if (best == n)
                break;
            tried[best] = true;
            uint64_t ask = mask[best] & left;
            char extra[40];
            snprintf(extra, sizeof(extra), "shards=%016" PRIx64, ask);
            struct sn_http_resp r = {0};
            json_t *j = NULL;
            if (sn_api_fanout(c, api[best], extra, PLAN_MS, &r) == 0 && r.status == 200)
                j = json_loadb(r.body, r.len, 0, NULL);
            sn_http_resp_free(&r);
            if (j) {
                json_array_append_new(p->answers, j);
                left &= ~ask;
            }
        }
        p->mine |= left; /* no other node answered for them: what this node holds */
    }
    p->keep = (struct sn_trace_filter){keep_shard, &p->mine};
    return p->mine == ALL_SHARDS ? NULL : &p->keep;
}

/* The trace id of an answer's JSON object (a trace summary, an exemplar) as 32 hex digits (a 64-bit
 * one left-padded), into out[33]: ordering these orders the ids' bytes, as a single host ranks
 * ties. */
static void id32(const json_t *o, char out[33])
{
    const char *id = json_string_value(json_object_get(o, "traceId"));
    size_t n = id ? strlen(id) : 0;
    if (n > 32)
        n = 32;
    memset(out, '0', 32 - n);
    memcpy(out + 32 - n, id ? id : "", n);
    out[32] = '\0';
}

/* A member of o that is a string, or "". */
static const char *str_of(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

/* ---- Dependencies ------------------------------------------------------------------------ */

/* A link of the other nodes' answers added into *l (a new one appended when new). */
static int link_add(struct sn_dep_link **l, size_t *n, size_t *cap, const json_t *o)
{
    const char *parent = json_string_value(json_object_get(o, "parent"));
    const char *child = json_string_value(json_object_get(o, "child"));
    json_int_t calls = json_integer_value(json_object_get(o, "callCount"));
    json_int_t errors = json_integer_value(json_object_get(o, "errorCount"));
    if (!parent || !child || calls < 0 || errors < 0)
        return 0;
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*l)[i].parent, parent) == 0 && strcmp((*l)[i].child, child) == 0) {
            (*l)[i].calls += (uint64_t)calls;
            (*l)[i].errors += (uint64_t)errors;
            return 0;
        }
    struct sn_dep_link *a = sn_grow(*l, cap, *n + 1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    *l = a;
    memset(&a[*n], 0, sizeof(*a));
    snprintf(a[*n].parent, sizeof(a[*n].parent), "%s", parent);
    snprintf(a[*n].child, sizeof(a[*n].child), "%s", child);
    a[*n].calls = (uint64_t)calls;
    a[*n].errors = (uint64_t)errors;
    (*n)++;
    return 0;
}

static int by_link(const void *a, const void *b)
{
    const struct sn_dep_link *x = a, *y = b;
    int c = strcmp(x->parent, y->parent);
    return c ? c : strcmp(x->child, y->child);
}

/* GET /api/v2/dependencies?endTs=&lookback= (endTs required, ms); in a fleet, each shard once
 * (the plan above), the links' counts summed */
static void dependencies(struct sn_call *c)
{
    int64_t end, lookback;
    bool given;
    if (!int_param(c, "endTs", 0, &end, &given) ||
        !int_param(c, "lookback", end > DAY_MS ? DAY_MS : end, &lookback, NULL))
        return;
    if (!given)
        return text(c, 400, "endTs is required");
    if (end <= 0)
        return text(c, 400, "endTs <= 0");
    if (lookback <= 0)
        return text(c, 400, "lookback <= 0");
    uint64_t to = (uint64_t)end * 1000,
             from = end > lookback ? (uint64_t)(end - lookback) * 1000 : 0;
    struct sn_dep_link *l;
    size_t n, cap;
    bool truncated;
    struct plan p;
    const struct sn_trace_filter *keep = plan_run(c, &p);
    if (sn_trace_dependencies(c->s->spans, keep, from, to, &l, &n, &truncated) < 0) {
        json_decref(p.answers);
        return sn_resp_empty(c->resp, 500);
    }
    cap = n;
    size_t ai, ak;
    json_t *ans, *lo;
    int rc = 0;
    json_array_foreach(p.answers, ai, ans) json_array_foreach(ans, ak, lo) if (rc == 0) rc =
        link_add(&l, &n, &cap, lo);
    json_decref(p.answers);
    if (rc < 0) {
        free(l);
        return sn_resp_empty(c->resp, 500);
    }
    if (n > 1)
        qsort(l, n, sizeof(*l), by_link);
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_pack("{s:s, s:s, s:I}", "parent", l[i].parent, "child", l[i].child,
                              "callCount", (json_int_t)l[i].calls);
        if (l[i].errors) /* Zipkin writes it only when there are some */
            json_object_set_new(o, "errorCount", json_integer((json_int_t)l[i].errors));
        json_array_append_new(a, o);
    }
    free(l);
    sn_resp_json(c->resp, 200, a);
}

static void zipkin_query_local(struct sn_call *c, const char *what)
{
    char **names;
    size_t n;
    int rc;

    if (strcmp(what, "services") == 0) {
        if ((rc = sn_span_store_services(c->s->spans, &names, &n)) < 0)
            return sn_resp_empty(c->resp, 500);
        if (n > 3) {
            c->resp->hdr[0][0] = "Cache-Control";
            c->resp->hdr[0][1] = "max-age=300, must-revalidate";
            c->resp->hdr[1][0] = NULL;
        }
        return names_reply(c, names, n);
    }
    if (strcmp(what, "spans") == 0 || strcmp(what, "remoteServices") == 0) {
        const char *svc = sn_req_param(c->req, "serviceName");
        if (!svc || !*svc)
            return text(c, 400, "serviceName is required");
        rc = sn_span_store_names(c->s->spans, svc, what[0] == 'r', &names, &n);
        if (rc == -ENOENT)
            return names_reply(c, NULL, 0);
        if (rc < 0)
            return sn_resp_empty(c->resp, 500);
        return names_reply(c, names, n);
    }
    if (strcmp(what, "traces") == 0)
        return traces_query(c);
    if (strcmp(what, "traceMany") == 0)
        return trace_many(c);
    if (strcmp(what, "dependencies") == 0)
        return dependencies(c);
    if (strcmp(what, "autocompleteKeys") == 0)
        return names_reply(c, NULL, 0); /* no tag keys are configured for autocompletion */
    if (strcmp(what, "autocompleteValues") == 0) {
        const char *key = sn_req_param(c->req, "key");
        if (!key || !*key)
            return text(c, 400, "key is required");
        return names_reply(c, NULL, 0);
    }
    sn_resp_empty(c->resp, 404);
}

/* ---- Searches in a fleet ------------------------------------------------------------------ */

/*
 * A node answers a search from its own span store, which holds the shards it owns (and what
 * it kept of shards it owned before, until their retention). When it does not serve every
 * shard, the search goes to every other live node too (X-Sonde-Proxied: each answers from its
 * own store, without sending it on) and the answers are merged. A trace lives whole in one
 * shard (sharded by trace id), so each owner of it answers about the whole trace.
 *
 *   services, spans, remoteServices   the sorted (byte order) union. Exact when every shard
 *                                     has a live owner that answered.
 *   traces                            the union by trace id, each trace's spans the union of
 *                                     its copies (equal JSON: a span kept by two owners, or
 *                                     twice by one, is written once); newest first by the
 *                                     latest start of its spans; cut at limit. Each node
 *                                     applied the filters and the limit to what it holds, so
 *                                     with every shard answered the union holds the fleet's
 *                                     matches: exact but for two things. A stale partial copy
 *                                     (a shard a node owned before) can match where the whole
 *                                     trace would not: a false match, with the whole trace's
 *                                     spans. And the order is by the latest span's start, where
 *                                     a single host orders by its index (the same for traces
 *                                     that do not overlap in time).
 *   traceMany                         the union by trace id, in the order found.
 *
 * A node that does not answer within FANOUT_MS is left out (the other owner of its shards
 * answers for them). In a fleet a node's own answers for traces, traceMany and trace/{id}
 * pass through the same merge (fan false): a span its store holds twice is written once.
 */
#define FANOUT_MS    10000
#define FANOUT_NODES 64

static bool is_names(const char *what)
{
    return !strcmp(what, "services") || !strcmp(what, "spans") || !strcmp(what, "remoteServices");
}

static int by_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The spans of a trace (a JSON array of Zipkin spans) into traces: {trace id: {span's JSON
 * text: span}}, so that equal spans are kept once. */
static void trace_add(json_t *traces, json_t *trace)
{
    size_t i;
    json_t *sp;
    json_array_foreach(trace, i, sp)
    {
        const char *id = json_string_value(json_object_get(sp, "traceId"));
        if (!id)
            continue;
        json_t *t = json_object_get(traces, id);
        if (!t) {
            t = json_object();
            json_object_set_new(traces, id, t);
        }
        char *text = json_dumps(sp, JSON_COMPACT | JSON_SORT_KEYS);
        if (text && !json_object_get(t, text))
            json_object_set(t, text, sp);
        free(text);
    }
}

struct tr {
    json_t *spans;
    int64_t newest;
};

static int by_newest(const void *a, const void *b)
{
    const struct tr *x = a, *y = b;
    return x->newest < y->newest ? 1 : x->newest > y->newest ? -1 : 0;
}

static void fleet_merge(struct sn_call *c, const char *what, bool fan)
{
    struct sn_server *s = c->s;
    bool names = is_names(what), many = !strcmp(what, "traceMany"), one = !strcmp(what, "trace");
    json_t *answers = json_array(), *local;

    if (c->resp->status != 200 || !c->resp->body ||
        !(local = json_loadb((const char *)c->resp->body, c->resp->len, 0, NULL))) {
        json_decref(answers);
        return; /* an error of the request itself: as this node says it */
    }
    json_array_append_new(answers, local);
    if (fan) {
        static __thread char apis[FANOUT_NODES][160];
        size_t n = sn_fleet_node_apis(s->fleet, apis, FANOUT_NODES);
        for (size_t i = 0; i < n; i++) {
            struct sn_http_resp r = {0};
            if (sn_api_fanout(c, apis[i], NULL, FANOUT_MS, &r) == 0 && r.status == 200) {
                json_t *j = json_loadb(r.body, r.len, 0, NULL);
                if (json_is_array(j))
                    json_array_append_new(answers, j);
                else
                    json_decref(j);
            }
            sn_http_resp_free(&r);
        }
    }
    json_t *out = json_array();
    size_t i, k;
    json_t *a, *v;
    if (names) {
        json_t *set = json_object();
        json_array_foreach(answers, i, a) json_array_foreach(a, k, v) if (json_is_string(v))
            json_object_set(set, json_string_value(v), json_true());
        size_t n = json_object_size(set), at = 0;
        const char **keys = malloc((n ? n : 1) * sizeof(*keys));
        const char *key;
        json_object_foreach(set, key, v) if (keys) keys[at++] = key;
        if (keys) {
            qsort(keys, at, sizeof(*keys), by_str);
            for (size_t j = 0; j < at; j++)
                json_array_append_new(out, json_string(keys[j]));
        }
        free(keys);
        json_decref(set);
    } else {
        json_t *traces = json_object();
        json_array_foreach(answers, i, a)
        {
            if (one)
                trace_add(traces, a);
            else
                json_array_foreach(a, k, v) trace_add(traces, v);
        }
        size_t n = json_object_size(traces), at = 0;
        struct tr *t = malloc((n ? n : 1) * sizeof(*t));
        const char *key;
        json_t *set;
        json_object_foreach(traces, key, set)
        {
            if (!t)
                break;
            t[at].spans = json_array();
            t[at].newest = 0;
            const char *sk;
            json_t *sp;
            json_object_foreach(set, sk, sp)
            {
                json_int_t ts = json_integer_value(json_object_get(sp, "timestamp"));
                if (ts > t[at].newest)
                    t[at].newest = ts;
                json_array_append(t[at].spans, sp);
            }
            at++;
        }
        if (t && !many && !one)
            qsort(t, at, sizeof(*t), by_newest);
        int64_t limit = 10;
        const char *lv = sn_req_param(c->req, "limit");
        if (lv && *lv)
            limit = strtoll(lv, NULL, 10);
        if (limit > 1000)
            limit = 1000;
        for (size_t j = 0; t && j < at; j++) {
            if (one) {
                json_decref(out);
                out = json_incref(t[j].spans);
            } else if (many || (int64_t)j < limit) {
                json_array_append(out, t[j].spans);
            }
            json_decref(t[j].spans);
        }
        free(t);
        json_decref(traces);
    }
    json_decref(answers);
    free(c->resp->body);
    c->resp->body = NULL;
    c->resp->len = 0;
    c->resp->hdr[0][0] = NULL;
    sn_resp_json(c->resp, 200, out);
}

void sn_api_zipkin_query(struct sn_call *c, const char *what)
{
    struct sn_fleet *f = c->s->fleet;
    zipkin_query_local(c, what);
    if (!f || c->resp->status != 200)
        return;
    bool fan = !c->req->proxied && !sn_fleet_serves_all_spans(f);
    if (is_names(what) ? fan : !strcmp(what, "traces") || !strcmp(what, "traceMany"))
        fleet_merge(c, what, fan);
}

/* ---- Exemplars of heatmap cells --------------------------------------------------------- */

#define EXEMPLAR_READS 256 /* traces one cell's exemplars read at most */

struct exemplars {
    struct sn_server *s;
    const char *inst;
    int64_t t0, t1;
    double lo, hi;
    size_t max, reads;
    json_t *out;
    const struct sn_trace_filter *keep; /* NULL: every trace */
};

static bool on_exemplar(void *arg, const struct sn_span_ref *r)
{
    struct exemplars *x = arg;
    if (x->keep && !x->keep->keep(x->keep->arg, r->trace_id))
        return true;
    uint64_t end_s = (r->start_us + r->duration_us) / 1000000;
    double d_lo = (double)r->duration_us * 1000, d_hi = d_lo + 1000; /* the index has µs */
    bool saturated = r->duration_us >= UINT32_MAX; /* the index's limit: read the span */
    if (!saturated &&
        ((int64_t)end_s < x->t0 - 1 || (int64_t)end_s > x->t1 || d_lo > x->hi || d_hi < x->lo))
        return true;
    if (x->reads++ >= EXEMPLAR_READS)
        return false;
    struct sn_span_batch t = {0};
    if (sn_span_store_trace(x->s->spans, r->trace_id, &t) < 0) {
        sn_span_batch_fini(&t);
        return true;
    }
    for (size_t i = 0; i < t.n && json_array_size(x->out) < x->max; i++) {
        const struct sn_span *sp = &t.spans[i];
        char key[256], id[33], sid[17];
        int64_t sec;
        if (sp->start_ns / 1000 != r->start_us || strcasecmp(sp->service, r->service) != 0 ||
            (double)sp->duration_ns < x->lo || (double)sp->duration_ns > x->hi)
            continue;
        /* the host its frames had: the publisher's in a fleet, this server's on its own */
        if (sn_span_metrics_match(x->s->spanm, x->inst, sp, sp->origin ? sp->origin : x->s->host,
                                  sn_now(), key, sizeof(key), &sec) != 1 ||
            sec < x->t0 || sec >= x->t1)
            continue;
        if (sp->flags & SN_SPAN_F_ID64) /* Zipkin's 64-bit ids come back as sent */
            sn_span_id_hex(sp->trace_id + 8, 8, id);
        else
            sn_span_id_hex(sp->trace_id, 16, id);
        sn_span_id_hex(sp->span_id, 8, sid);
        json_array_append_new(x->out,
                              json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "traceId", id,
                                        "spanId", sid, "service", sp->service, "name", sp->name,
                                        "key", key, "timestamp", (json_int_t)(sp->start_ns / 1000),
                                        "duration", (json_int_t)(sp->duration_ns / 1000)));
    }
    sn_span_batch_fini(&t);
    return json_array_size(x->out) < x->max;
}

/* The exemplars this node's store holds of the traces keep keeps (NULL: all), a new array. */
static json_t *exemplars_local(struct sn_server *s, const char *inst, int64_t t0, int64_t t1,
                               double lo, double hi, size_t max, const struct sn_trace_filter *keep)
{
    struct exemplars x = {s, inst, t0, t1, lo, hi, max, 0, json_array(), keep};
    if (!x.out)
        return NULL;
    /* spans ending in [t0, t1) with a duration up to hi started after t0 - hi */
    uint64_t to_us = (uint64_t)t1 * 1000000, back = (uint64_t)(hi / 1000) + 1000000;
    uint64_t from_us = (uint64_t)t0 * 1000000 > back ? (uint64_t)t0 * 1000000 - back : 0;
    sn_span_store_scan(s->spans, NULL, from_us, to_us, on_exemplar, &x);
    return x.out;
}

static int by_exemplar(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    json_int_t tx = json_integer_value(json_object_get(x, "timestamp"));
    json_int_t ty = json_integer_value(json_object_get(y, "timestamp"));
    if (tx != ty)
        return tx < ty ? 1 : -1;
    char ix[33], iy[33];
    id32(x, ix);
    id32(y, iy);
    int c = strcmp(ix, iy);
    return c ? c : strcmp(str_of(x, "spanId"), str_of(y, "spanId"));
}

/* In a fleet, a cell's exemplars from each shard once (the plan above, asked with GET
 * /ca/traces/exemplars, a plan's part only): every node's, each span once, newest first, cut at
 * max. */
json_t *sn_api_span_exemplars(struct sn_call *c, const struct sn_instn *in, int64_t t0, int64_t t1,
                              double lo, double hi, size_t max)
{
    struct sn_server *s = c->s;
    if (!s->spans || !s->spanm || !sn_span_metrics_has(s->spanm, in->key))
        return NULL;
    if (!s->fleet)
        return exemplars_local(s, in->key, t0, t1, lo, hi, max, NULL);
    struct sn_req r = {.method = "GET",
                       .path = "/ca/traces/exemplars",
                       .auth = c->req->auth,
                       .api_version = c->req->api_version};
    char v[5][40];
    snprintf(v[0], sizeof(v[0]), "%" PRId64, t0);
    snprintf(v[1], sizeof(v[1]), "%" PRId64, t1);
    snprintf(v[2], sizeof(v[2]), "%.17g", lo);
    snprintf(v[3], sizeof(v[3]), "%.17g", hi);
    snprintf(v[4], sizeof(v[4]), "%zu", max);
    if (sn_req_add_param(&r, "inst", in->key, false) < 0 ||
        sn_req_add_param(&r, "t0", v[0], false) < 0 ||
        sn_req_add_param(&r, "t1", v[1], false) < 0 ||
        sn_req_add_param(&r, "lo", v[2], false) < 0 ||
        sn_req_add_param(&r, "hi", v[3], false) < 0 ||
        sn_req_add_param(&r, "max", v[4], false) < 0) {
        sn_req_fini(&r);
        return NULL;
    }
    struct sn_call c2 = *c;
    c2.req = &r;
    struct plan p;
    const struct sn_trace_filter *keep = plan_run(&c2, &p);
    sn_req_fini(&r);
    json_t *out = exemplars_local(s, in->key, t0, t1, lo, hi, max, keep);
    if (!out || !json_array_size(p.answers)) {
        json_decref(p.answers);
        return out;
    }
    /* every node's, each span once */
    json_t *seen = json_object(), *all = json_array();
    size_t ai, ak;
    json_t *ans, *e;
    json_array_append(p.answers, out);
    json_decref(out);
    json_array_foreach(p.answers, ai, ans) json_array_foreach(ans, ak, e)
    {
        char key[80];
        snprintf(key, sizeof(key), "%.40s/%.20s", str_of(e, "traceId"), str_of(e, "spanId"));
        if (json_is_object(e) && !json_object_get(seen, key)) {
            json_object_set_new(seen, key, json_true());
            json_array_append(all, e);
        }
    }
    size_t m = json_array_size(all);
    json_t **sorted = malloc((m ? m : 1) * sizeof(*sorted));
    out = json_array();
    for (size_t i = 0; sorted && i < m; i++)
        sorted[i] = json_array_get(all, i);
    if (sorted)
        qsort(sorted, m, sizeof(*sorted), by_exemplar);
    for (size_t i = 0; sorted && i < m && i < max; i++)
        json_array_append(out, sorted[i]);
    free(sorted);
    json_decref(all);
    json_decref(seen);
    json_decref(p.answers);
    return out;
}

/* GET /ca/traces/exemplars?inst=&t0=&t1=&lo=&hi=&max=&shards=: a plan's part (another node
 * asks it, X-Sonde-Proxied): the exemplars of those shards this node's store holds. */
static void exemplars_part(struct sn_call *c)
{
    struct sn_server *s = c->s;
    const char *inst = sn_req_param(c->req, "inst"), *lo = sn_req_param(c->req, "lo"),
               *hi = sn_req_param(c->req, "hi");
    int64_t t0, t1, max;
    if (!c->req->proxied || !sn_req_param(c->req, "shards")) {
        sn_resp_error(c->resp, 404, "ResourceNotFound", "no trace exemplars");
        return;
    }
    if (!inst || !lo || !hi || !sn_param_int(c, "t0", 0, INT64_MAX / 2000000, 0, &t0, NULL) ||
        !sn_param_int(c, "t1", 0, INT64_MAX / 2000000, 0, &t1, NULL) ||
        !sn_param_int(c, "max", 1, 1000, 5, &max, NULL)) {
        if (!c->resp->status)
            CA_INVAL(c, "inst, t0, t1, lo, hi and max are required");
        return;
    }
    if (!s->spans || !s->spanm || !sn_span_metrics_has(s->spanm, inst)) {
        sn_resp_json(c->resp, 200, json_array());
        return;
    }
    struct plan p;
    const struct sn_trace_filter *keep = plan_run(c, &p);
    json_decref(p.answers);
    json_t *out =
        exemplars_local(s, inst, t0, t1, strtod(lo, NULL), strtod(hi, NULL), (size_t)max, keep);
    sn_resp_json(c->resp, out ? 200 : 500, out ? out : json_array());
}

/* ---- dprof's questions (docs/tracing.md) ---------------------------------------------------- */

/* The range of a question: start_time and duration (seconds; default the last hour). */
static bool range_of(struct sn_call *c, uint64_t *from_us, uint64_t *to_us)
{
    int64_t dur, start, now = sn_now();
    if (!sn_param_int(c, "duration", 1, 10LL * 366 * 86400, 3600, &dur, NULL) ||
        !sn_param_int(c, "start_time", 0, INT64_MAX / 2000000, now - dur, &start, NULL))
        return false;
    *from_us = (uint64_t)start * 1000000;
    *to_us = (uint64_t)(start + dur) * 1000000;
    return true;
}

static json_t *summary_json(const struct sn_trace_summary *t)
{
    char id[33];
    if (t->id64)
        sn_span_id_hex(t->id + 8, 8, id);
    else
        sn_span_id_hex(t->id, 16, id);
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:i, s:i, s:i}", "traceId", id, "rootService",
                     t->root_service, "rootName", t->root_name, "timestamp",
                     (json_int_t)t->start_us, "duration", (json_int_t)t->duration_us,
                     "serviceDuration", (json_int_t)t->service_us, "spans", (int)t->spans, "errors",
                     (int)t->errors, "services", (int)t->services);
}

static int by_service_us(const json_t *x, const json_t *y)
{
    json_int_t a = json_integer_value(json_object_get(x, "serviceDuration"));
    json_int_t b = json_integer_value(json_object_get(y, "serviceDuration"));
    if (a != b)
        return a < b ? 1 : -1;
    char ix[33], iy[33];
    id32(x, ix);
    id32(y, iy);
    return strcmp(ix, iy);
}

static int by_longest(const void *a, const void *b)
{
    return by_service_us(*(json_t *const *)a, *(json_t *const *)b);
}

static int by_shortest(const void *a, const void *b)
{
    return by_service_us(*(json_t *const *)b, *(json_t *const *)a);
}

/* GET /ca/traces/longest|shortest?service=&start_time=&duration=&limit=; in a fleet, each shard
 * once (the plan above): the top of the union of each node's top */
static void extremes(struct sn_call *c, bool longest)
{
    const char *svc = sn_req_param(c->req, "service");
    uint64_t from, to;
    int64_t limit;
    if (!svc || !*svc) {
        CA_INVAL(c, "param \"service\" is required");
        return;
    }
    if (!range_of(c, &from, &to) || !sn_param_int(c, "limit", 1, 1000, 10, &limit, NULL))
        return;
    struct sn_trace_summary *t;
    size_t n;
    bool truncated;
    struct plan p;
    const struct sn_trace_filter *keep = plan_run(c, &p);
    if (sn_trace_extremes(c->s->spans, keep, svc, from, to, longest, (size_t)limit, &t, &n,
                          &truncated) < 0) {
        json_decref(p.answers);
        sn_resp_error(c->resp, 500, "EINTERNAL", "the span store cannot be read");
        return;
    }
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, summary_json(&t[i]));
    free(t);
    size_t ai, ak;
    json_t *ans, *o;
    json_array_foreach(p.answers, ai, ans)
    {
        truncated = truncated || json_is_true(json_object_get(ans, "truncated"));
        json_array_foreach(json_object_get(ans, "traces"), ak, o) if (json_is_object(o))
            json_array_append(a, o);
    }
    if (json_array_size(p.answers)) { /* ranked again, cut at limit */
        size_t m = json_array_size(a);
        json_t **v = malloc((m ? m : 1) * sizeof(*v));
        json_t *b = json_array();
        for (size_t i = 0; v && i < m; i++)
            v[i] = json_array_get(a, i);
        if (v)
            qsort(v, m, sizeof(*v), longest ? by_longest : by_shortest);
        for (size_t i = 0; v && i < m && (int64_t)i < limit; i++)
            json_array_append(b, v[i]);
        free(v);
        json_decref(a);
        a = b;
    }
    json_decref(p.answers);
    sn_resp_json(c->resp, 200,
                 json_pack("{s:s, s:I, s:I, s:o, s:b}", "service", svc, "start_time",
                           (json_int_t)(from / 1000000), "duration",
                           (json_int_t)((to - from) / 1000000), "traces", a, "truncated",
                           truncated));
}

/* The point at second t of s, made (empty) when missing, in order; NULL when out of memory. */
static struct sn_op_point *op_point_at(struct sn_op_series *s, int64_t t)
{
    size_t at = 0;
    while (at < s->n && s->points[at].t < t)
        at++;
    if (at < s->n && s->points[at].t == t)
        return &s->points[at];
    struct sn_op_point *p = sn_grow(s->points, &s->cap, s->n + 1, sizeof(*p));
    if (!p)
        return NULL;
    s->points = p;
    memmove(&p[at + 1], &p[at], (s->n - at) * sizeof(*p));
    memset(&p[at], 0, sizeof(*p));
    p[at].t = t;
    if (!(p[at].latency = sn_hist_create())) {
        memmove(&p[at], &p[at + 1], (s->n - at) * sizeof(*p));
        return NULL;
    }
    s->n++;
    return &p[at];
}

/* An operation of another node's answer (its points with their "latency" histograms: a plan's
 * part) added into *ops. 0 or -ENOMEM. */
static int ops_add(struct sn_op_series **ops, size_t *n, const json_t *o)
{
    const char *svc = json_string_value(json_object_get(o, "service"));
    const char *name = json_string_value(json_object_get(o, "name"));
    struct sn_op_series *s = NULL;
    if (!svc || !name)
        return 0;
    for (size_t i = 0; i < *n && !s; i++)
        if (strcmp((*ops)[i].service, svc) == 0 && strcmp((*ops)[i].name, name) == 0)
            s = &(*ops)[i];
    if (!s) {
        struct sn_op_series *a = realloc(*ops, (*n + 1) * sizeof(*a));
        if (!a)
            return -ENOMEM;
        *ops = a;
        s = &a[(*n)++];
        memset(s, 0, sizeof(*s));
        snprintf(s->service, sizeof(s->service), "%s", svc);
        snprintf(s->name, sizeof(s->name), "%s", name);
    }
    size_t k;
    json_t *pt;
    json_array_foreach(json_object_get(o, "points"), k, pt)
    {
        const char *h = json_string_value(json_object_get(pt, "latency"));
        struct sn_op_point *p = op_point_at(s, json_integer_value(json_object_get(pt, "t")));
        struct sn_hist *x = h ? sn_hist_create() : NULL;
        if (!p || (h && !x)) {
            sn_hist_destroy(x);
            return -ENOMEM;
        }
        p->count += (uint64_t)json_integer_value(json_object_get(pt, "count"));
        p->errors += (uint64_t)json_integer_value(json_object_get(pt, "errors"));
        if (x && sn_hist_decode_b64(x, h, strlen(h), 0) >= 0 && sn_hist_merge(p->latency, x) < 0) {
            sn_hist_destroy(x);
            return -ENOMEM;
        }
        sn_hist_destroy(x);
    }
    return 0;
}

static int by_op(const void *a, const void *b)
{
    const struct sn_op_series *x = a, *y = b;
    int c = strcmp(x->service, y->service);
    return c ? c : strcmp(x->name, y->name);
}

/* GET /ca/traces/operations?service=&start_time=&duration=&step=; in a fleet, each shard once
 * (the plan above): counts summed, latency histograms merged, then their percentiles */
static void operations(struct sn_call *c)
{
    const char *svc = sn_req_param(c->req, "service");
    uint64_t from, to;
    int64_t step;
    if (!range_of(c, &from, &to) || !sn_param_int(c, "step", 1, 86400, 60, &step, NULL))
        return;
    if ((to - from) / 1000000 / (uint64_t)step > 10000) {
        CA_INVAL(c, "at most 10000 steps: a larger step or a shorter duration");
        return;
    }
    struct sn_op_series *ops;
    size_t n;
    struct plan pl;
    const struct sn_trace_filter *keep = plan_run(c, &pl);
    if (sn_trace_ops(c->s->spans, keep, svc && *svc ? svc : NULL, from, to, (uint32_t)step, &ops,
                     &n) < 0) {
        json_decref(pl.answers);
        sn_resp_error(c->resp, 500, "EINTERNAL", "the span store cannot be read");
        return;
    }
    size_t ai, ak;
    json_t *ans, *op;
    int rc = 0;
    json_array_foreach(pl.answers, ai, ans)
        json_array_foreach(json_object_get(ans, "operations"), ak, op) if (rc == 0) rc =
            ops_add(&ops, &n, op);
    json_decref(pl.answers);
    if (rc < 0) {
        sn_trace_ops_free(ops, n);
        sn_resp_error(c->resp, 500, "EINTERNAL", "out of memory");
        return;
    }
    if (n > 1)
        qsort(ops, n, sizeof(*ops), by_op);
    static const double q[] = {0.5, 0.9, 0.99};
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *pts = json_array();
        uint64_t count = 0, errors = 0;
        for (size_t k = 0; k < ops[i].n; k++) {
            const struct sn_op_point *p = &ops[i].points[k];
            double v[3];
            sn_hist_quantiles(p->latency, q, 3, v, SN_QUANTILE_TYPE1);
            json_t *po =
                json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "t", (json_int_t)p->t, "count",
                          (json_int_t)p->count, "errors", (json_int_t)p->errors, "p50",
                          (json_int_t)v[0], "p90", (json_int_t)v[1], "p99", (json_int_t)v[2]);
            if (pl.inner) { /* a plan's part: the histogram too, merged by the node that asked */
                size_t hl = sn_hist_b64_len(p->latency, 0);
                char *hb = malloc(hl + 1);
                if (hb && sn_hist_encode_b64(p->latency, hb, hl + 1, 0) >= 0)
                    json_object_set_new(po, "latency", json_string(hb));
                free(hb);
            }
            json_array_append_new(pts, po);
            count += p->count;
            errors += p->errors;
        }
        json_array_append_new(a, json_pack("{s:s, s:s, s:I, s:I, s:o}", "service", ops[i].service,
                                           "name", ops[i].name, "count", (json_int_t)count,
                                           "errors", (json_int_t)errors, "points", pts));
    }
    sn_trace_ops_free(ops, n);
    sn_resp_json(c->resp, 200,
                 json_pack("{s:I, s:I, s:I, s:s, s:o}", "start_time", (json_int_t)(from / 1000000),
                           "duration", (json_int_t)((to - from) / 1000000), "step",
                           (json_int_t)step, "unit", "ns", "operations", a));
}

static int by_duration_desc(const void *a, const void *b)
{
    const struct sn_span *x = *(const struct sn_span *const *)a,
                         *y = *(const struct sn_span *const *)b;
    return x->duration_ns < y->duration_ns ? 1 : x->duration_ns > y->duration_ns ? -1 : 0;
}

/* GET /ca/traces/:id: the trace's figures and its spans ranked by duration (dprof's per-trace
 * question): min, avg, max, and the slowest 1 % (at least one span). */
static void trace_ranked(struct sn_call *c, const char *arg)
{
    uint8_t id[16];
    struct sn_span_batch t = {0};
    size_t n = strlen(arg);
    if (n == 0 || n > 32 || sn_span_id_parse(arg, n, id, 16) != n || sn_span_id_zero(id, 16)) {
        CA_INVAL(c, "%.64s is not a trace id (16 or 32 hex digits)", arg);
        return;
    }
    /* in a fleet, an owner of the trace's shard answers */
    if (c->s->fleet && sn_api_proxy_spans(c, sn_fleet_span_shard(id)))
        return;
    int rc = sn_span_store_trace(c->s->spans, id, &t);
    if (rc < 0) {
        sn_span_batch_fini(&t);
        if (rc == -ENOENT)
            sn_resp_error(c->resp, 404, "ResourceNotFound", "no trace %.64s", arg);
        else
            sn_resp_error(c->resp, 500, "EINTERNAL", "the span store cannot be read");
        return;
    }
    const struct sn_span **by = malloc(t.n * sizeof(*by));
    if (!by) {
        sn_span_batch_fini(&t);
        sn_resp_empty(c->resp, 500);
        return;
    }
    uint64_t sum = 0;
    for (size_t i = 0; i < t.n; i++) {
        by[i] = &t.spans[i];
        sum += t.spans[i].duration_ns / 1000;
    }
    qsort(by, t.n, sizeof(*by), by_duration_desc);
    struct sn_trace_summary sm;
    sn_trace_summarize(t.spans, t.n, &sm);
    size_t slow = (t.n + 99) / 100; /* the slowest 1 %, at least one */
    json_t *spans = json_array();
    for (size_t i = 0; i < t.n; i++) {
        char sid[17];
        sn_span_id_hex(by[i]->span_id, 8, sid);
        json_array_append_new(
            spans, json_pack("{s:i, s:s, s:s, s:s, s:I, s:I, s:b, s:b}", "rank", (int)i + 1,
                             "spanId", sid, "service", by[i]->service, "name", by[i]->name,
                             "timestamp", (json_int_t)(by[i]->start_ns / 1000), "duration",
                             (json_int_t)(by[i]->duration_ns / 1000), "error",
                             by[i]->status == SN_STATUS_ERROR ||
                                 sn_span_attr(by[i]->attrs, by[i]->nattrs, "error"),
                             "slowest1pct", i < slow));
    }
    json_t *o = summary_json(&sm);
    json_object_set_new(o, "min", json_integer((json_int_t)(by[t.n - 1]->duration_ns / 1000)));
    json_object_set_new(o, "avg", json_integer((json_int_t)(sum / t.n)));
    json_object_set_new(o, "max", json_integer((json_int_t)(by[0]->duration_ns / 1000)));
    json_object_set_new(o, "slowest", json_integer((json_int_t)slow));
    json_object_set_new(o, "ranked", spans);
    free(by);
    sn_span_batch_fini(&t);
    sn_resp_json(c->resp, 200, o);
}

void sn_api_traces(struct sn_call *c, const char *arg)
{
    if (strcmp(arg, "longest") == 0 || strcmp(arg, "shortest") == 0)
        extremes(c, arg[0] == 'l');
    else if (strcmp(arg, "operations") == 0)
        operations(c);
    else if (strcmp(arg, "exemplars") == 0)
        exemplars_part(c);
    else
        trace_ranked(c, arg);
}

/* ---- Sampling (trace/sampling.h) ------------------------------------------------------------ */

/* GET /api/sampling?service=S: Jaeger's remote-sampling answer. */
void sn_api_jaeger_sampling(struct sn_call *c)
{
    const char *v[2];
    char buf[512];
    size_t n = sn_req_params(c->req, "service", v, 2, buf, sizeof(buf));
    if (n != 1 || !*v[0])
        return text(c, 400, "'service' parameter must be provided once");
    pthread_rwlock_rdlock(&c->s->lock);
    json_t *j = sn_sampling_strategy(c->s->sampling, v[0]);
    pthread_rwlock_unlock(&c->s->lock);
    if (!j)
        return sn_resp_empty(c->resp, 500);
    sn_resp_json(c->resp, 200, j);
}

/* GET and PUT /ca/sampling: the configuration, and its replacement (a JSON body). */
void sn_api_sampling(struct sn_call *c, bool put)
{
    if (!put) {
        pthread_rwlock_rdlock(&c->s->lock);
        json_t *j = json_deep_copy(c->s->sampling->doc);
        pthread_rwlock_unlock(&c->s->lock);
        struct sn_tail_stats ts;
        sn_tail_stats(c->s->tail, &ts);
        json_t *o = json_pack(
            "{s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}}", "config",
            j ? j : json_object(), "tail", "traces_kept", (json_int_t)ts.traces_kept,
            "traces_dropped", (json_int_t)ts.traces_dropped, "spans_kept",
            (json_int_t)ts.spans_kept, "spans_dropped", (json_int_t)ts.spans_dropped, "kept_error",
            (json_int_t)ts.kept_error, "kept_slow", (json_int_t)ts.kept_slow, "kept_rate",
            (json_int_t)ts.kept_rate, "decided_early", (json_int_t)ts.decided_early,
            "waiting_spans", (json_int_t)ts.waiting_spans, "waiting_traces",
            (json_int_t)ts.waiting_traces);
        return sn_resp_json(c->resp, 200, o);
    }
    json_error_t err;
    json_t *doc = json_loadb((const char *)c->req->body, c->req->body_len, 0, &err);
    char why[256] = "";
    if (!doc) {
        CA_INVAL(c, "the body is not JSON: %s", err.text);
        return;
    }
    int rc = sn_server_set_sampling(c->s, doc, why, sizeof(why));
    json_decref(doc);
    if (rc == -EINVAL) {
        CA_INVAL(c, "%s", why);
        return;
    }
    if (rc < 0) {
        sn_resp_error(c->resp, 503, "EUNAVAILABLE", "%s", why[0] ? why : strerror(-rc));
        return;
    }
    sn_api_sampling(c, false);
}
