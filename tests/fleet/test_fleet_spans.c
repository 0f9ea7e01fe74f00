/*
 * Spans in a fleet end to end ($SN_SONDE or argv[1] is the sonde binary): a 1-server JetStream
 * (support/nats.h) and real `sonde serve --nats` nodes (support/fleet_hosts.h), spans posted
 * over HTTP as exporters post them. One case, in steps that build on each other:
 *
 *   1. two nodes; a trace.spans instrumentation (by service) created on n1; spans posted to n1
 *      (OTLP protobuf and Zipkin JSON) and to n2 (OTLP protobuf);
 *   2. every trace by id from both nodes, exact: the span ids, names, services and durations
 *      posted, each span once;
 *   3. GET /api/v2/traces?serviceName= on either node lists every trace of the service,
 *      whichever node received it; /api/v2/services on either node is the union, sorted;
 *   4. the instrumentation (created on n1) counts every span, those posted to n2 too, by
 *      service, exactly, from either node;
 *   5. a third node joins: it owns part of the shards (rebuilt from the stream), so its
 *      searches fan out and merge: the same services and traces, every trace by id exact;
 *   6. n1 killed -9: n2 and n3 answer every trace, including spans posted to n3 after the kill
 *      (the shards' owners re-balanced and rebuilt from the stream within a bounded wait);
 *   7. the bus stopped: a post is refused with 503 and Retry-After.
 *
 * And nats_server_killed: a 3-server JetStream, 2 nodes; one NATS server killed -9 between
 * posts (a post refused meanwhile is sent again, as exporters do); every trace exact on both.
 *
 * And agent_relay: 3 nodes (each serves about 2/3 of the shards, so questions fan out), a
 * `sonde agent --otlp-listen --zipkin-listen` on loopback, and a single `sonde serve` without a
 * fleet (the reference) fed the same requests: bad requests answered by the agent exactly as by
 * the reference (status and body); the agent's spans readable by id and by search
 * on the nodes; the trace.spans heatmap cell of their second on a node counts them exactly;
 * dependencies, /ca/traces/longest|shortest|operations|ID and the cell's exemplars on every
 * node equal the reference's; the bus stopped: the agent answers 503 with Retry-After.
 *
 * And past: 2 nodes and an agent relay; spans posted to both nodes and to the agent before any
 * trace.spans instrumentation exists, then one (by service) created while spans keep coming to
 * n2: its raw values for the seconds before it existed are the sum of what every publisher took
 * (each node's and the agent's own past, fleet/span_past.h), and every span, before, during
 * and after the creation, counts once.
 *
 * And origin: 2 nodes and an agent relay, trace.spans decomposed by host: a cell's exemplars on
 * every node are each keyed by the host that took the span (a node's id, the agent's host).
 *
 * Every wait is bounded in count and time; what is started is stopped by its PID.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fleet/names.h"
#include "fleet_hosts.h"
#include "http.h"
#include "nats.h"
#include "t.h"
#include "trace/otlp.h"
#include "trace/span.h"

static const char *sonde;
static struct th_nats nats;
static struct th_fleet F;

#define NOTE(...)                                                                                  \
    do {                                                                                           \
        printf("# " __VA_ARGS__);                                                                  \
        printf("\n");                                                                              \
        fflush(stdout);                                                                            \
        t_note(__VA_ARGS__);                                                                       \
    } while (0)

/* NATS (nservers servers: a JetStream cluster past 1) and a fleet of nnodes nodes n1..nN, each
 * seeing all of them as members. Returns whether all of it is up (what failed is reported). */
static bool fleet_up(int nservers, int nnodes)
{
    memset(&nats, 0, sizeof(nats));
    if (!T_OK(th_nats_start(&nats, nservers, 0) == 0) ||
        !T_OK(th_fleet_init(&F, sonde, th_nats_url(&nats)) == 0))
        return false;
    NOTE("fleet in %s, NATS in %s", F.dir, nats.dir);
    for (int i = 0; i < nnodes; i++) {
        char nid[8];
        snprintf(nid, sizeof(nid), "n%d", i + 1);
        if (!T_OK(th_node_start(&F, nid, NULL, NULL) == i))
            return false;
    }
    for (int i = 0; i < nnodes; i++)
        if (!T_OK(th_node_wait_members(&F, i, nnodes, 0, 20000) >= 0))
            return false;
    return true;
}

/* ---- what is posted, and what must come back ---- */

#define MAXTR   64
#define MAXSP   4
#define SVC_A   "svc-otlp"
#define SVC_Z   "svc-zipkin"
#define SVC_B   "svc-b"
#define SVC_C   "svc-late"
#define TENTH_S 100000 /* µs */

struct xspan {
    char id[17], parent[17], name[32];
    int64_t ts_us, dur_us;
};
struct xtrace {
    char id[33], service[32];
    bool remote; /* its spans but the root call "db" at 10.0.0.7:5432 (Zipkin's remoteEndpoint) */
    int n;
    struct xspan sp[MAXSP];
};
static struct xtrace tr[MAXTR];
static int ntr;

static void hex(uint64_t v, char *out, int digits)
{
    for (int i = digits - 1; i >= 0; i--, v >>= 4)
        out[i] = "0123456789abcdef"[v & 15];
    out[digits] = '\0';
}

/* A new trace of n spans of service (root first, the others its children), ending about now. */
static struct xtrace *new_trace(const char *service, int n)
{
    struct xtrace *t = &tr[ntr++];
    int64_t now_us = th_unix_ms() * 1000;
    memset(t, 0, sizeof(*t));
    hex(t_rand() | 1, t->id, 16);
    hex(t_rand() | 1, t->id + 16, 16);
    snprintf(t->service, sizeof(t->service), "%s", service);
    t->n = n;
    for (int i = 0; i < n; i++) {
        struct xspan *s = &t->sp[i];
        hex(t_rand() | 1, s->id, 16);
        if (i)
            snprintf(s->parent, sizeof(s->parent), "%s", t->sp[0].id);
        snprintf(s->name, sizeof(s->name), "op-%d-%d", ntr, i);
        s->dur_us = (int64_t)(1000 + t_rand() % 900000); /* 1 ms .. 0.9 s */
        s->ts_us = now_us - 1000000 - (int64_t)(t_rand() % 500000);
    }
    return t;
}

static void unhex(const char *s, uint8_t *out, size_t n)
{
    sn_span_id_parse(s, strlen(s), out, n);
}

/* traces t[0..n) as one OTLP protobuf request. */
static unsigned char *otlp_body(struct xtrace *const *t, int n, size_t *len)
{
    struct sn_span sp[MAXTR * MAXSP];
    size_t k = 0;
    memset(sp, 0, sizeof(sp));
    for (int i = 0; i < n; i++)
        for (int j = 0; j < t[i]->n; j++, k++) {
            struct sn_span *s = &sp[k];
            unhex(t[i]->id, s->trace_id, 16);
            unhex(t[i]->sp[j].id, s->span_id, 8);
            if (j) {
                unhex(t[i]->sp[j].parent, s->parent_id, 8);
                s->flags |= SN_SPAN_F_PARENT;
            }
            s->kind = SN_KIND_SERVER;
            s->start_ns = (uint64_t)t[i]->sp[j].ts_us * 1000;
            s->duration_ns = (uint64_t)t[i]->sp[j].dur_us * 1000;
            s->name = t[i]->sp[j].name;
            s->service = t[i]->service;
            s->status_msg = s->trace_state = s->scope_name = s->scope_version = "";
        }
    unsigned char *out = NULL;
    if (sn_otlp_encode(sp, k, &out, len) < 0)
        return NULL;
    return out;
}

/* traces t[0..n) as one Zipkin v2 JSON request. */
static char *zipkin_body(struct xtrace *const *t, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        for (int j = 0; j < t[i]->n; j++) {
            const struct xspan *s = &t[i]->sp[j];
            json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:{s:s}}", "traceId", t[i]->id, "id",
                                  s->id, "name", s->name, "kind", "SERVER", "timestamp",
                                  (json_int_t)s->ts_us, "duration", (json_int_t)s->dur_us,
                                  "localEndpoint", "serviceName", t[i]->service);
            if (j)
                json_object_set_new(o, "parentId", json_string(s->parent));
            if (j && t[i]->remote)
                json_object_set_new(o, "remoteEndpoint",
                                    json_pack("{s:s,s:s,s:i}", "serviceName", "db", "ipv4",
                                              "10.0.0.7", "port", 5432));
            json_array_append_new(a, o);
        }
    char *text = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return text;
}

static int post(int node, const char *path, const char *ctype, const void *body, size_t len,
                char *retry_after, size_t ralen)
{
    char h[96];
    const char *hdr[] = {h, NULL};
    struct th_resp r = {0};
    snprintf(h, sizeof(h), "Content-Type: %s", ctype);
    int rc = th_request(F.n[node].port, "POST", path, hdr, body, len, 30000, &r);
    int st = rc < 0 ? rc : r.status;
    if (retry_after && !th_header(&r, "Retry-After", retry_after, ralen))
        retry_after[0] = '\0';
    if (st != 200 && st != 202)
        NOTE("POST %s to n%d: %d %.200s", path, node + 1, st, r.body ? r.body : "");
    th_resp_free(&r);
    return st;
}

static int post_otlp(int node, struct xtrace *const *t, int n)
{
    size_t len;
    unsigned char *b = otlp_body(t, n, &len);
    int st = b ? post(node, "/v1/traces", "application/x-protobuf", b, len, NULL, 0) : -ENOMEM;
    free(b);
    return st;
}

static int post_zipkin(int node, struct xtrace *const *t, int n)
{
    char *b = zipkin_body(t, n);
    int st = b ? post(node, "/api/v2/spans", "application/json", b, strlen(b), NULL, 0) : -ENOMEM;
    free(b);
    return st;
}

static json_t *get(int node, int *status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static json_t *get(int node, int *status, const char *fmt, ...)
{
    char path[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    return th_node_jreq(&F, node, "GET", path, NULL, status);
}

/* Whether node's answer for trace t is exactly t: its spans, each once, with their ids, names,
 * service, parents and durations. why says what differs. */
static bool trace_exact(int node, const struct xtrace *t, char *why, size_t len)
{
    int st = 0;
    json_t *j = get(node, &st, "/api/v2/trace/%s", t->id);
    bool ok = st == 200 && json_is_array(j) && (int)json_array_size(j) == t->n;
    if (!ok)
        snprintf(why, len, "status %d, %zu spans of %d", st,
                 json_is_array(j) ? json_array_size(j) : 0, t->n);
    for (int i = 0; ok && i < t->n; i++) {
        const struct xspan *x = &t->sp[i];
        int found = 0;
        size_t k;
        json_t *s;
        json_array_foreach(j, k, s)
        {
            const char *id = json_string_value(json_object_get(s, "id"));
            if (!id || strcmp(id, x->id) != 0)
                continue;
            found++;
            const char *tid = json_string_value(json_object_get(s, "traceId"));
            const char *name = json_string_value(json_object_get(s, "name"));
            const char *par = json_string_value(json_object_get(s, "parentId"));
            const char *svc = json_string_value(
                json_object_get(json_object_get(s, "localEndpoint"), "serviceName"));
            int64_t dur = json_integer_value(json_object_get(s, "duration"));
            int64_t ts = json_integer_value(json_object_get(s, "timestamp"));
            if (!tid || strcmp(tid, t->id) || !name || strcmp(name, x->name) || !svc ||
                strcmp(svc, t->service) || dur != x->dur_us || ts != x->ts_us ||
                (i && (!par || strcmp(par, x->parent))) || (!i && par)) {
                snprintf(why, len,
                         "span %s differs: trace %s name %s service %s dur %" PRId64 " ts %" PRId64
                         " parent %s",
                         x->id, tid ? tid : "-", name ? name : "-", svc ? svc : "-", dur, ts,
                         par ? par : "-");
                ok = false;
            }
        }
        json_t *re = NULL;
        json_array_foreach(j, k, s) if (!strcmp(json_string_value(json_object_get(s, "id")) ?: "",
                                                x->id)) re = json_object_get(s, "remoteEndpoint");
        bool want_re = t->remote && i > 0;
        if (ok &&
            (want_re != (re != NULL) ||
             (re && (strcmp(json_string_value(json_object_get(re, "serviceName")) ?: "", "db") ||
                     strcmp(json_string_value(json_object_get(re, "ipv4")) ?: "", "10.0.0.7") ||
                     json_integer_value(json_object_get(re, "port")) != 5432)))) {
            snprintf(why, len, "span %s: remoteEndpoint %s", x->id, re ? "differs" : "missing");
            ok = false;
        }
        if (ok && found != 1) {
            snprintf(why, len, "span %s found %d times", x->id, found);
            ok = false;
        }
    }
    json_decref(j);
    return ok;
}

/* Waits (bounded: limit_ms) until every trace of tr[from..to) is exact on node. The traces not
 * exact at the end are noted; true when none. */
static bool all_exact(int node, int from, int to, int limit_ms)
{
    double end = th_now_ms() + limit_ms;
    char why[512] = "";
    int bad = -1;
    for (int round = 0; round < 400; round++) {
        bad = -1;
        for (int i = from; i < to && bad < 0; i++)
            if (!trace_exact(node, &tr[i], why, sizeof(why)))
                bad = i;
        if (bad < 0 || th_now_ms() > end)
            break;
        th_sleep_ms(200);
    }
    if (bad >= 0)
        NOTE("n%d: trace %s (%s): %s", node + 1, tr[bad].id, tr[bad].service, why);
    return bad < 0;
}

/* The trace ids /api/v2/traces gives on node for service (limit 1000) into a JSON object set. */
static json_t *search(int node, const char *service, int *status)
{
    json_t *j = get(node, status,
                    "/api/v2/traces?serviceName=%s&limit=1000&lookback=3600000&endTs=%" PRId64,
                    service, th_unix_ms() + 60000);
    json_t *set = json_object();
    size_t i;
    json_t *t;
    json_array_foreach(j, i, t)
    {
        const char *id = json_string_value(json_object_get(json_array_get(t, 0), "traceId"));
        if (id)
            json_object_set_new(set, id, json_integer((json_int_t)json_array_size(t)));
    }
    json_decref(j);
    return set;
}

/* How many traces of service node's own store gives (X-Sonde-Proxied: no fan-out), -1 when it
 * does not answer. */
static int search_local(int node, const char *service)
{
    char path[256];
    const char *hdr[] = {"X-Sonde-Proxied: 1", NULL};
    struct th_resp r = {0};
    snprintf(path, sizeof(path),
             "/api/v2/traces?serviceName=%s&limit=1000&lookback=3600000&endTs=%" PRId64, service,
             th_unix_ms() + 60000);
    int rc = th_request(F.n[node].port, "GET", path, hdr, NULL, 0, 10000, &r);
    json_t *j = rc == 0 && r.status == 200 ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    int n = json_is_array(j) ? (int)json_array_size(j) : -1;
    json_decref(j);
    th_resp_free(&r);
    return n;
}

/* How many spans node's own store holds of trace t (GET /ca/traces/{id} with X-Sonde-Proxied:
 * no proxy), -1 when it has none or does not answer. */
static int spans_local(int node, const struct xtrace *t)
{
    char path[128];
    const char *hdr[] = {"X-Sonde-Proxied: 1", NULL};
    struct th_resp r = {0};
    snprintf(path, sizeof(path), "/ca/traces/%s", t->id);
    int rc = th_request(F.n[node].port, "GET", path, hdr, NULL, 0, 10000, &r);
    json_t *j = rc == 0 && r.status == 200 ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    int n = j ? (int)json_integer_value(json_object_get(j, "spans")) : -1;
    json_decref(j);
    th_resp_free(&r);
    return n;
}

/* Whether node's search for service lists exactly the traces of that service, each whole. */
static bool search_exact(int node, const char *service, int limit_ms)
{
    double end = th_now_ms() + limit_ms;
    int want = 0, missing = -1, st = 0;
    size_t got = 0;
    for (int i = 0; i < ntr; i++)
        want += strcmp(tr[i].service, service) == 0;
    for (int round = 0; round < 200; round++) {
        json_t *set = search(node, service, &st);
        missing = -1;
        for (int i = 0; i < ntr && missing < 0; i++)
            if (strcmp(tr[i].service, service) == 0 &&
                json_integer_value(json_object_get(set, tr[i].id)) != tr[i].n)
                missing = i;
        got = json_object_size(set);
        json_decref(set);
        if ((missing < 0 && (int)got == want) || th_now_ms() > end)
            break;
        th_sleep_ms(200);
    }
    if (missing >= 0 || (int)got != want)
        NOTE("n%d: search %s: status %d, %zu traces of %d, first missing %s", node + 1, service, st,
             got, want, missing >= 0 ? tr[missing].id : "-");
    return missing < 0 && (int)got == want;
}

/* Whether node's /api/v2/services is exactly want (sorted). */
static bool services_are(int node, const char *const *want, int n, int limit_ms)
{
    double end = th_now_ms() + limit_ms;
    char got[512] = "";
    for (int round = 0; round < 200; round++) {
        int st = 0;
        json_t *j = get(node, &st, "/api/v2/services");
        bool same = st == 200 && json_is_array(j) && (int)json_array_size(j) == n;
        for (int i = 0; same && i < n; i++)
            same = strcmp(json_string_value(json_array_get(j, (size_t)i)) ?: "", want[i]) == 0;
        char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        snprintf(got, sizeof(got), "%d %s", st, text ? text : "-");
        free(text);
        json_decref(j);
        if (same)
            return true;
        if (th_now_ms() > end)
            break;
        th_sleep_ms(200);
    }
    NOTE("n%d: services %s", node + 1, got);
    return false;
}

/* The shards node serves (its status' fleet.spans.shards), -1 when no answer. */
static int shards_served(int node)
{
    json_t *st = th_node_status(&F, node);
    json_t *a = json_object_get(json_object_get(json_object_get(st, "fleet"), "spans"), "shards");
    int n = json_is_array(a) ? (int)json_array_size(a) : -1;
    json_decref(st);
    return n;
}

/* Waits until the nodes listed serve shards that cover all of them, each of want shards
 * (want < 0: any, but their union covers every shard). */
static bool wait_shards(const int *nodes, int n, int want, int limit_ms)
{
    double end = th_now_ms() + limit_ms;
    int got[TH_FLEET_NODES] = {0};
    for (int round = 0; round < 300; round++) {
        bool ok = true;
        int sum = 0;
        for (int i = 0; i < n; i++) {
            got[i] = shards_served(nodes[i]);
            sum += got[i];
            ok &= want < 0 ? got[i] > 0 : got[i] == want;
        }
        /* SN_FLEET_OWNERS of every shard: their sum is 2 x 64 once settled */
        if (ok && (want >= 0 || sum == 2 * SN_FLEET_SPAN_SHARDS))
            return true;
        if (th_now_ms() > end)
            break;
        th_sleep_ms(200);
    }
    for (int i = 0; i < n; i++)
        NOTE("n%d serves %d span shards", nodes[i] + 1, got[i]);
    return false;
}

/* The spans counted by the instrumentation id on node in [start, start + duration) (start 0:
 * the last 2 minutes), by service. */
static bool counts_in(int node, const char *id, int64_t start, int duration, const char *const *svc,
                      const int *want, int n, int limit_ms)
{
    double end = th_now_ms() + limit_ms;
    char got[512] = "";
    for (int round = 0; round < 200; round++) {
        int st = 0;
        int64_t from = start ? start : th_unix_ms() / 1000 - 120;
        json_t *j =
            get(node, &st, "/ca/instrumentations/%s/value/raw?start_time=%" PRId64 "&duration=%d",
                id, from, start ? duration : 118);
        json_t *v = json_object_get(j, "value");
        bool same = st == 200 && json_is_object(v) && (int)json_object_size(v) == n;
        for (int i = 0; same && i < n; i++)
            same = json_integer_value(json_object_get(v, svc[i])) == want[i];
        char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
        snprintf(got, sizeof(got), "%d %s", st, text ? text : "-");
        free(text);
        json_decref(j);
        if (same)
            return true;
        if (th_now_ms() > end)
            break;
        th_sleep_ms(250);
    }
    NOTE("n%d: trace.spans counts %s", node + 1, got);
    return false;
}

static bool counts_are(int node, const char *id, const char *const *svc, const int *want, int n,
                       int limit_ms)
{
    return counts_in(node, id, 0, 0, svc, want, n, limit_ms);
}

static void test_spans(void)
{
    struct xtrace *a[MAXTR];
    char id[32] = "";
    int st = 0;

    t_seed(20261207);
    T_REQUIRE(fleet_up(1, 2));
    /* with 2 nodes each owns every shard (2 owners each) */
    const int n12[] = {0, 1};
    T_REQUIRE(wait_shards(n12, 2, SN_FLEET_SPAN_SHARDS, 20000));

    /* 1. the instrumentation on n1, then spans to n1 (OTLP, Zipkin) and n2 (OTLP) */
    json_t *c = th_node_jreq(&F, 0, "POST", "/ca/instrumentations",
                             "{\"module\":\"trace\",\"stat\":\"spans\",\"decomposition\":"
                             "[\"service\"]}",
                             &st);
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(c, "id")) ?: "");
    json_decref(c);
    T_REQUIRE(st == 201 || st == 200);
    T_REQUIRE(id[0]);
    th_sleep_ms(1500); /* every node runs it (the definitions' watcher: within a second) */

    int i0 = ntr;
    for (int i = 0; i < 20; i++)
        a[i] = new_trace(SVC_A, 3);
    T_EQ(post_otlp(0, a, 10), 200);
    T_EQ(post_otlp(0, a + 10, 10), 200);
    int iz = ntr;
    for (int i = 0; i < 10; i++) {
        a[i] = new_trace(SVC_Z, 2);
        a[i]->remote = true;
        if (i % 2) /* every other one a 64-bit trace id, as Zipkin's tracers send them */
            a[i]->id[16] = '\0';
    }
    T_EQ(post_zipkin(0, a, 10), 202);
    int ib = ntr;
    for (int i = 0; i < 10; i++)
        a[i] = new_trace(SVC_B, 3);
    T_EQ(post_otlp(1, a, 10), 200);
    int iend = ntr;
    (void)iz;
    (void)ib;

    /* 2. every trace by id, exact, from both nodes */
    T_OK(all_exact(0, i0, iend, 15000));
    T_OK(all_exact(1, i0, iend, 15000));

    /* what each node put on the bus, and the shards each serves, in /metrics */
    T_EQ(th_metric(F.n[0].port, "sonde_fleet_spans_published_total"), 20 * 3 + 10 * 2);
    T_EQ(th_metric(F.n[1].port, "sonde_fleet_spans_published_total"), 10 * 3);
    T_EQ(th_metric(F.n[1].port, "sonde_fleet_span_shards"), SN_FLEET_SPAN_SHARDS);
    T_EQ(th_metric(F.n[1].port, "sonde_fleet_spans_taken_total"), 20 * 3 + 10 * 2 + 10 * 3);

    /* 3. searches and services from either node */
    T_OK(search_exact(1, SVC_A, 10000));
    T_OK(search_exact(0, SVC_B, 10000));
    T_OK(search_exact(1, SVC_Z, 10000));
    const char *svcs[] = {SVC_B, SVC_A, SVC_Z};
    T_OK(services_are(0, svcs, 3, 10000));
    T_OK(services_are(1, svcs, 3, 10000));
    /* Zipkin's remote endpoints travel the bus too: remoteServices and spans from either node */
    for (int n = 0; n < 2; n++) {
        json_t *rs = get(n, &st, "/api/v2/remoteServices?serviceName=%s", SVC_Z);
        char *text = rs ? json_dumps(rs, JSON_COMPACT) : NULL;
        NOTE("n%d remoteServices of %s: %d %s", n + 1, SVC_Z, st, text ? text : "-");
        T_STR(text ? text : "", "[\"db\"]");
        free(text);
        json_decref(rs);
        json_t *sn = get(n, &st, "/api/v2/spans?serviceName=%s", SVC_B);
        T_EQ(json_array_size(sn), 10 * 3);
        json_decref(sn);
    }

    /* 4. trace.spans (created on n1) counts the spans posted to n2 too, from either node */
    const int want[] = {30, 60, 20};
    T_OK(counts_are(0, id, svcs, want, 3, 15000));
    T_OK(counts_are(1, id, svcs, want, 3, 15000));

    /* 5. a third node: it owns part of the shards (rebuilt from the stream); its searches fan
     * out to the others and merge */
    T_REQUIRE(th_node_start(&F, "n3", NULL, NULL) == 2);
    for (int i = 0; i < 3; i++)
        T_REQUIRE(th_node_wait_members(&F, i, 3, 0, 20000) >= 0);
    const int n123[] = {0, 1, 2};
    T_OK(wait_shards(n123, 3, -1, 20000));
    int s3 = shards_served(2);
    NOTE("with 3 nodes n3 serves %d of %d span shards", s3, SN_FLEET_SPAN_SHARDS);
    T_OK(s3 > 0 && s3 < SN_FLEET_SPAN_SHARDS);
    /* its own store holds its shards' traces only: the whole is the merge of the fan-out */
    int local = search_local(2, SVC_A);
    NOTE("n3's own store holds %d of the 20 traces of %s", local, SVC_A);
    T_OK(local >= 0 && local < 20);
    T_OK(services_are(2, svcs, 3, 10000));
    T_OK(search_exact(2, SVC_A, 10000));
    T_OK(search_exact(2, SVC_Z, 10000));
    T_OK(all_exact(2, i0, iend, 15000));
    T_OK(counts_are(2, id, svcs, want, 3, 15000));

    /* 6. n1 killed -9: n2 and n3 answer every trace, and spans posted to n3 now */
    double t_kill = th_now_ms();
    T_OK(th_node_stop(&F, 0, SIGKILL) >= 0);
    int il = ntr;
    for (int i = 0; i < 8; i++)
        a[i] = new_trace(SVC_C, 2);
    T_EQ(post_otlp(2, a, 8), 200);
    T_REQUIRE(th_node_wait_members(&F, 1, 2, 0, 20000) >= 0);
    T_REQUIRE(th_node_wait_members(&F, 2, 2, 0, 20000) >= 0);
    const int n23[] = {1, 2};
    T_OK(wait_shards(n23, 2, SN_FLEET_SPAN_SHARDS, 20000));
    NOTE("n1 killed: n2 and n3 serve every shard %.0f ms after the kill", th_now_ms() - t_kill);
    T_OK(all_exact(1, i0, ntr, 20000));
    T_OK(all_exact(2, i0, ntr, 20000));
    NOTE("every trace exact on n2 and n3 %.0f ms after the kill", th_now_ms() - t_kill);
    T_OK(search_exact(1, SVC_C, 10000));
    T_OK(search_exact(2, SVC_A, 10000));
    const char *svcs4[] = {SVC_B, SVC_C, SVC_A, SVC_Z};
    T_OK(services_are(1, svcs4, 4, 10000));
    (void)il;

    /* 6b. n2 stopped and started again on its data directory: it resumes its shards where it
     * left them (fleet-spans.json), so its store keeps every span once */
    /* every node's store holds each span once (many consumers put at once) */
    for (int i = i0; i < ntr; i++) {
        int n2 = spans_local(1, &tr[i]), n3 = spans_local(2, &tr[i]);
        if (n2 > tr[i].n || n3 > tr[i].n)
            NOTE("trace %s (%s) kept more than once: n2 %d n3 %d of %d spans", tr[i].id,
                 tr[i].service, n2, n3, tr[i].n);
        T_OK(n2 <= tr[i].n && n3 <= tr[i].n);
    }
    T_OK(th_node_stop(&F, 1, SIGTERM) >= 0);
    T_REQUIRE(th_node_start(&F, "n2", NULL, NULL) == 1);
    T_REQUIRE(th_node_wait_members(&F, 1, 2, 0, 20000) >= 0);
    T_OK(wait_shards(n23, 2, SN_FLEET_SPAN_SHARDS, 20000));
    T_OK(all_exact(1, i0, ntr, 20000));
    int twice = 0, first_twice = -1;
    for (int i = i0; i < ntr; i++)
        if (spans_local(1, &tr[i]) != tr[i].n && first_twice < 0)
            first_twice = i, twice++;
        else if (spans_local(1, &tr[i]) != tr[i].n)
            twice++;
    if (twice)
        NOTE("n2 restarted: %d traces with a span count not theirs (first %s: %d of %d)", twice,
             tr[first_twice].id, spans_local(1, &tr[first_twice]), tr[first_twice].n);
    T_EQ(twice, 0);

    /* 7. the bus gone: a post is refused whole, 503 with Retry-After */
    T_OK(th_nats_stop_all(&nats) == 0);
    th_sleep_ms(500);
    a[0] = new_trace(SVC_C, 2);
    size_t len;
    unsigned char *b = otlp_body(a, 1, &len);
    char ra[16] = "";
    double t0 = th_now_ms();
    int rc = b ? post(1, "/v1/traces", "application/x-protobuf", b, len, ra, sizeof(ra)) : -1;
    free(b);
    NOTE("a post with the bus down: %d after %.0f ms, Retry-After %s", rc, th_now_ms() - t0, ra);
    T_EQ(rc, 503);
    T_STR(ra, "1");

    th_fleet_free(&F);
    th_nats_free(&nats);
}

/* POST of traces t[0..n) as OTLP to node, sent again on a 503 (as exporters do: the request is
 * refused whole), every 500 ms, at most tries times. The last status. */
static int post_otlp_retry(int node, struct xtrace *const *t, int n, int tries, int *refused)
{
    int st = 0;
    for (int i = 0; i < tries; i++) {
        if ((st = post_otlp(node, t, n)) != 503)
            break;
        ++*refused;
        th_sleep_ms(500);
    }
    return st;
}

/* A 3-server JetStream (the spans stream with 3 replicas), 2 nodes: a NATS server killed -9
 * between posts; every trace, before and after, from both nodes; then the server back. */
static void test_nats_server_killed(void)
{
    struct xtrace *a[MAXTR];
    int refused = 0;

    t_seed(7);
    ntr = 0;
    T_REQUIRE(fleet_up(3, 2));
    const int n12[] = {0, 1};
    T_REQUIRE(wait_shards(n12, 2, SN_FLEET_SPAN_SHARDS, 20000));

    for (int i = 0; i < 10; i++)
        a[i] = new_trace(SVC_A, 2);
    T_EQ(post_otlp(0, a, 10), 200);
    T_OK(all_exact(1, 0, ntr, 15000));

    T_OK(th_nats_kill(&nats, 0, SIGKILL) == 0);
    double t_kill = th_now_ms();
    for (int i = 0; i < 10; i++)
        a[i] = new_trace(SVC_B, 2);
    /* a node whose server was killed is back on another within seconds, but a loaded 2-CPU
     * machine (two test suites at once) has taken 35 s: retried for up to a minute */
    T_EQ(post_otlp_retry(1, a, 5, 120, &refused), 200);
    T_EQ(post_otlp_retry(0, a + 5, 5, 120, &refused), 200);
    NOTE("a NATS server killed: posts taken %.0f ms after the kill (%d refused with 503 "
         "meanwhile)",
         th_now_ms() - t_kill, refused);
    /* the cluster elects new leaders meanwhile (its API times out now and then for tens of
     * seconds on a loaded 2-CPU machine): consumers are made again as it answers */
    T_OK(all_exact(0, 0, ntr, 60000));
    T_OK(all_exact(1, 0, ntr, 60000));
    T_OK(search_exact(0, SVC_B, 10000));
    NOTE("every trace exact on both nodes %.0f ms after the kill", th_now_ms() - t_kill);

    T_OK(th_nats_restart(&nats, 0) == 0);
    for (int i = 0; i < 5; i++)
        a[i] = new_trace(SVC_C, 2);
    T_EQ(post_otlp_retry(0, a, 5, 40, &refused), 200);
    T_OK(all_exact(1, 0, ntr, 60000));

    th_fleet_free(&F);
    th_nats_free(&nats);
}

/* ---- agent_relay ---------------------------------------------------------------------------- */

/* The number after `marker` in the file at path, or 0 when not there yet. */
static int number_after(const char *path, const char *marker)
{
    FILE *fp = fopen(path, "r");
    char buf[16384];
    if (!fp)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = 0;
    fclose(fp);
    const char *u = strstr(buf, marker);
    return u ? atoi(u + strlen(marker)) : 0;
}

/* A number after marker in path within limit_ms (polled every 10 ms), or 0. */
static int wait_number(const char *path, const char *marker, int limit_ms)
{
    int v = 0;
    for (int i = 0; i < limit_ms / 10 && !(v = number_after(path, marker)); i++)
        th_sleep_ms(10);
    return v;
}

/* The reference: a single `sonde serve` without a fleet (its pid and port). */
static pid_t ref_pid;
static int ref_port;

static int ref_start(void)
{
    char dir[400], log[420];
    snprintf(dir, sizeof(dir), "%s/reference", F.dir);
    snprintf(log, sizeof(log), "%s.log", dir);
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(sonde, sonde, "serve", "--listen", "127.0.0.1:0", "--data", dir, (char *)NULL);
        _exit(127);
    }
    ref_pid = pid;
    ref_port = wait_number(log, "http://127.0.0.1:", 20000);
    for (int i = 0; i < 200 && ref_port; i++) { /* its API answers */
        struct th_resp r = {0};
        int rc = th_request(ref_port, "GET", "/ca", NULL, NULL, 0, 2000, &r);
        th_resp_free(&r);
        if (rc == 0)
            return 0;
        th_sleep_ms(50);
    }
    return -ETIMEDOUT;
}

static void ref_stop(void)
{
    if (!ref_pid)
        return;
    kill(ref_pid, SIGTERM);
    for (int i = 0; i < 100; i++) { /* 10 s, then SIGKILL */
        if (waitpid(ref_pid, NULL, WNOHANG) == ref_pid) {
            ref_pid = 0;
            return;
        }
        th_sleep_ms(100);
    }
    kill(ref_pid, SIGKILL);
    waitpid(ref_pid, NULL, 0);
    ref_pid = 0;
}

/* A POST to port (the agent's listeners, the reference): its status (Retry-After into ra). */
static int post_port(int port, const char *path, const char *ctype, const void *body, size_t len,
                     char *ra, size_t ralen)
{
    char h[96];
    const char *hdr[] = {h, NULL};
    struct th_resp r = {0};
    snprintf(h, sizeof(h), "Content-Type: %s", ctype);
    int rc = th_request(port, "POST", path, hdr, body, len, 30000, &r);
    int st = rc < 0 ? rc : r.status;
    if (ra && !th_header(&r, "Retry-After", ra, ralen))
        ra[0] = '\0';
    if (st != 200 && st != 202)
        NOTE("POST %s to port %d: %d %.200s", path, port, st, r.body ? r.body : "");
    th_resp_free(&r);
    return st;
}

/* GET path from port as JSON (NULL: no JSON), *st its status. */
static json_t *get_port(int port, const char *path, int *st)
{
    struct th_resp r = {0};
    json_t *j = NULL;
    *st = 0;
    if (th_request(port, "GET", path, NULL, NULL, 0, 30000, &r) == 0) {
        *st = r.status;
        j = r.body ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    }
    th_resp_free(&r);
    return j;
}

/* Whether node's answer to path (fleet) equals the reference's answer to ref_path, within
 * limit_ms (both asked again every 250 ms). */
static bool same_as_ref(int node, const char *path, const char *ref_path, int limit_ms)
{
    double end = th_now_ms() + limit_ms;
    char *a = NULL, *b = NULL;
    for (int round = 0; round < 400; round++) {
        int sa = 0, sb = 0;
        json_t *ja = get_port(F.n[node].port, path, &sa), *jb = get_port(ref_port, ref_path, &sb);
        bool same = sa == 200 && sb == 200 && ja && json_equal(ja, jb);
        free(a);
        free(b);
        a = ja ? json_dumps(ja, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        b = jb ? json_dumps(jb, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(ja);
        json_decref(jb);
        if (same) {
            free(a);
            free(b);
            return true;
        }
        if (th_now_ms() > end)
            break;
        th_sleep_ms(250);
    }
    NOTE("n%d %s:\n#   fleet %.600s\n#   reference %.600s", node + 1, path, a ? a : "-",
         b ? b : "-");
    free(a);
    free(b);
    return false;
}

/* Traces of services a (OTLP) and the Zipkin ones (remote calls: dependencies), every span
 * ending in second sec, starts all distinct (exemplars are ranked by start). */
static void timed(struct xtrace *t, int64_t sec, int k)
{
    for (int j = 0; j < t->n; j++) {
        t->sp[j].ts_us = sec * 1000000 + 100000 + k * 1000 + j * 10;
        t->sp[j].dur_us = 1000 + (int64_t)(t_rand() % 300000); /* ends before sec + 0.5 s */
    }
}

static void test_agent_relay(void)
{
    struct xtrace *a[MAXTR];
    int st = 0;
    char path[1024], rpath[1024], id[32] = "", rid[32] = "";

    t_seed(16);
    ntr = 0;
    T_REQUIRE(fleet_up(1, 3));
    T_REQUIRE(ref_start() == 0);
    int h = th_host_add_uncontained(&F, "ag1");
    T_REQUIRE(h >= 0);
    const char *extra[] = {"--otlp-listen", "127.0.0.1:0", "--zipkin-listen=127.0.0.1:0", NULL};
    T_REQUIRE(th_host_agent_start(&F, h, extra) == 0);
    int otlp = wait_number(F.h[h].log, "OTLP/HTTP on 127.0.0.1:0 (port ", 30000);
    int zipkin = wait_number(F.h[h].log, "Zipkin v2 on 127.0.0.1:0 (port ", 30000);
    NOTE("agent ag1: OTLP on port %d, Zipkin on port %d", otlp, zipkin);
    T_REQUIRE(otlp > 0 && zipkin > 0);
    T_REQUIRE(th_node_wait_members(&F, 0, 3, 1, 20000) >= 0);

    /* the instrumentation, in the fleet and on the reference */
    const char *def = "{\"module\":\"trace\",\"stat\":\"spans\",\"decomposition\":[\"service\","
                      "\"latency\"]}";
    json_t *c = th_node_jreq(&F, 0, "POST", "/ca/instrumentations", def, &st);
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(c, "id")) ?: "");
    json_decref(c);
    T_REQUIRE(id[0]);
    struct th_resp r = {0};
    const char *jh[] = {"Content-Type: application/json", NULL};
    T_REQUIRE(
        th_request(ref_port, "POST", "/ca/instrumentations", jh, def, strlen(def), 10000, &r) == 0);
    c = r.body ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    snprintf(rid, sizeof(rid), "%s", json_string_value(json_object_get(c, "id")) ?: "");
    json_decref(c);
    th_resp_free(&r);
    T_REQUIRE(rid[0]);
    int hosts[] = {h};
    T_REQUIRE(th_wait_running(&F, 0, id, hosts, 1, 20000) >= 0); /* the agent runs it */

    /* spans to the agent (OTLP protobuf, Zipkin JSON) and the same requests to the reference */
    int64_t sec = th_unix_ms() / 1000 - 3;
    for (int i = 0; i < 12; i++)
        timed(a[i] = new_trace(SVC_A, 3), sec, i);
    size_t len;
    unsigned char *ob = otlp_body(a, 12, &len);
    T_REQUIRE(ob != NULL);
    double t0 = th_now_ms();
    T_EQ(post_port(otlp, "/v1/traces", "application/x-protobuf", ob, len, NULL, 0), 200);
    double otlp_ms = th_now_ms() - t0;
    T_EQ(post_port(ref_port, "/v1/traces", "application/x-protobuf", ob, len, NULL, 0), 200);
    free(ob);
    for (int i = 0; i < 8; i++) {
        timed(a[i] = new_trace(SVC_Z, 2), sec, 20 + i);
        a[i]->remote = true;
    }
    char *zb = zipkin_body(a, 8);
    T_REQUIRE(zb != NULL);
    t0 = th_now_ms();
    T_EQ(post_port(zipkin, "/api/v2/spans", "application/json", zb, strlen(zb), NULL, 0), 202);
    double zipkin_ms = th_now_ms() - t0;
    T_EQ(post_port(ref_port, "/api/v2/spans", "application/json", zb, strlen(zb), NULL, 0), 202);
    free(zb);
    NOTE("the agent answered an OTLP request of 36 spans in %.1f ms, a Zipkin one of 16 in "
         "%.1f ms (each message stored by JetStream first)",
         otlp_ms, zipkin_ms);

    /* every shard served by its 2 owners (caught up), none by a single node: questions fan out */
    int total = 0;
    double until = th_now_ms() + 30000;
    for (int round = 0; round < 300; round++) {
        total = shards_served(0) + shards_served(1) + shards_served(2);
        if (total == 2 * SN_FLEET_SPAN_SHARDS || th_now_ms() > until)
            break;
        th_sleep_ms(100);
    }
    T_EQ(total, 2 * SN_FLEET_SPAN_SHARDS);
    for (int n = 0; n < 3; n++) {
        int served = shards_served(n);
        NOTE("n%d serves %d of the %d shards", n + 1, served, SN_FLEET_SPAN_SHARDS);
        T_OK(served > 0 && served < SN_FLEET_SPAN_SHARDS);
    }

    /* bad requests: the agent's answers are the reference's, status and body */
    static const struct {
        const char *path, *ctype, *body;
        int status;
    } bad[] = {
        {"/v1/traces", "application/x-protobuf", "\x0a\x05\x0a", 400},
        {"/v1/traces", "application/json", "{\"resourceSpans\":[{\"scopeSpans\":7}]}", 400},
        {"/v1/traces", "text/plain", "x", 415},
        {"/api/v2/spans", "application/json", "[{\"traceId\":\"xyz\"}]", 400},
        {"/api/v2/spans", "application/json", "not json", 400},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        struct th_resp ra = {0}, rb = {0};
        char hct[96];
        const char *hh[] = {hct, NULL};
        snprintf(hct, sizeof(hct), "Content-Type: %s", bad[k].ctype);
        int port = bad[k].path[1] == 'v' ? otlp : zipkin;
        T_OK(th_request(port, "POST", bad[k].path, hh, bad[k].body, strlen(bad[k].body), 10000,
                        &ra) == 0);
        T_OK(th_request(ref_port, "POST", bad[k].path, hh, bad[k].body, strlen(bad[k].body), 10000,
                        &rb) == 0);
        T_EQ(ra.status, bad[k].status);
        T_EQ(rb.status, bad[k].status);
        T_OK(ra.len == rb.len && (!ra.len || memcmp(ra.body, rb.body, ra.len) == 0));
        th_resp_free(&ra);
        th_resp_free(&rb);
    }
    struct th_resp rn = {0};
    T_OK(th_request(otlp, "GET", "/api/v2/services", NULL, NULL, 0, 10000, &rn) == 0);
    T_EQ(rn.status, 404); /* no queries on an agent */
    th_resp_free(&rn);
    T_OK(th_request(zipkin, "GET", "/v1/traces", NULL, NULL, 0, 10000, &rn) == 0);
    T_EQ(rn.status, 405);
    th_resp_free(&rn);

    /* readable by id and by search on every node */
    for (int n = 0; n < 3; n++)
        T_OK(all_exact(n, 0, ntr, 20000));
    T_OK(search_exact(2, SVC_A, 10000));
    T_OK(search_exact(1, SVC_Z, 10000));

    /* the cell of their second, every latency: exact counts by service, and the exemplars */
    char q[256];
    snprintf(q, sizeof(q),
             "value/heatmap/details?start_time=%" PRId64
             "&duration=1&width=10&height=10&nbuckets=1&ymin=0&ymax=1000000000&x=0&y=0",
             sec);
    for (int n = 0; n < 3; n++) {
        double end = th_now_ms() + 20000;
        json_t *d = NULL;
        for (int round = 0; round < 100; round++) {
            snprintf(path, sizeof(path), "/ca/instrumentations/%.31s/%.255s", id, q);
            d = get(n, &st, "%s", path);
            json_t *pr = json_object_get(d, "present");
            if (st == 200 && json_integer_value(json_object_get(pr, SVC_A)) == 36 &&
                json_integer_value(json_object_get(pr, SVC_Z)) == 16)
                break;
            json_decref(d);
            d = NULL;
            if (th_now_ms() > end)
                break;
            th_sleep_ms(250);
        }
        T_OK(d != NULL);
        T_EQ(json_integer_value(json_object_get(d, "total")), 52);
        T_EQ(json_array_size(json_object_get(d, "exemplars")), 5);
        json_decref(d);
        /* the exemplars as the reference's (each store writes what it took within moments:
         * asked again until they agree, a bounded wait) */
        snprintf(rpath, sizeof(rpath), "/ca/instrumentations/%.31s/%.255s", rid, q);
        bool same = false;
        end = th_now_ms() + 20000;
        for (int round = 0; round < 80 && !same; round++) {
            json_t *rd = get_port(ref_port, rpath, &st);
            d = get(n, &st, "%s", path);
            same = json_equal(json_object_get(d, "exemplars"), json_object_get(rd, "exemplars")) &&
                   json_equal(json_object_get(d, "present"), json_object_get(rd, "present"));
            if (!same && th_now_ms() > end) {
                char *x = json_dumps(json_object_get(d, "exemplars"), JSON_COMPACT);
                char *y = json_dumps(json_object_get(rd, "exemplars"), JSON_COMPACT);
                NOTE("n%d exemplars:\n#   fleet %.900s\n#   reference %.900s", n + 1, x ? x : "-",
                     y ? y : "-");
                free(x);
                free(y);
                json_t *e;
                size_t ei;
                json_array_foreach(json_object_get(rd, "exemplars"), ei, e)
                {
                    uint8_t tid[16] = {0};
                    unhex(json_string_value(json_object_get(e, "traceId")), tid, 16);
                    NOTE("reference exemplar %zu: shard %u", ei, sn_fleet_span_shard(tid));
                }
                for (int m = 0; m < 3; m++)
                    NOTE("n%d serves %d shards", m + 1, shards_served(m));
                round = 80;
            }
            json_decref(d);
            json_decref(rd);
            if (!same)
                th_sleep_ms(250);
        }
        T_OK(same);
    }

    /* dependencies and dprof's questions: each node's answer is the reference's */
    int64_t now_ms = th_unix_ms();
    snprintf(path, sizeof(path), "/api/v2/dependencies?endTs=%" PRId64 "&lookback=3600000",
             now_ms + 60000);
    for (int n = 0; n < 3; n++)
        T_OK(same_as_ref(n, path, path, 20000));
    json_t *deps = get_port(ref_port, path, &st);
    T_EQ(json_integer_value(json_object_get(json_array_get(deps, 0), "callCount")), 8);
    json_decref(deps);
    static const char *const qs[] = {
        "longest?service=svc-otlp&limit=5",    "shortest?service=svc-otlp&limit=5",
        "longest?service=svc-zipkin&limit=20", "operations?step=60",
        "operations?service=svc-zipkin",
    };
    for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
        snprintf(path, sizeof(path), "/ca/traces/%s&start_time=%" PRId64 "&duration=120", qs[k],
                 sec - 60);
        for (int n = 0; n < 3; n++)
            T_OK(same_as_ref(n, path, path, 20000));
    }
    for (int i = 0; i < ntr; i += 5) {
        snprintf(path, sizeof(path), "/ca/traces/%.32s", tr[i].id);
        for (int n = 0; n < 3; n++)
            T_OK(same_as_ref(n, path, path, 10000));
    }

    /* the bus gone: the agent refuses, 503 with Retry-After */
    T_OK(th_nats_stop_all(&nats) == 0);
    th_sleep_ms(500);
    a[0] = new_trace(SVC_C, 2);
    ob = otlp_body(a, 1, &len);
    char ra[16] = "";
    t0 = th_now_ms();
    st = ob ? post_port(otlp, "/v1/traces", "application/x-protobuf", ob, len, ra, sizeof(ra)) : -1;
    free(ob);
    NOTE("a post to the agent with the bus down: %d after %.0f ms, Retry-After %s", st,
         th_now_ms() - t0, ra);
    T_EQ(st, 503);
    T_STR(ra, "1");

    ref_stop();
    th_fleet_free(&F);
    th_nats_free(&nats);
}

/* Requests posted to a node from a thread while the main one creates an instrumentation. */
struct poster {
    int node, n;
    unsigned char *body[32];
    size_t len[32];
    int ok;
};

static void *poster_main(void *arg)
{
    struct poster *p = arg;
    for (int i = 0; i < p->n; i++) {
        if (post(p->node, "/v1/traces", "application/x-protobuf", p->body[i], p->len[i], NULL, 0) ==
            200)
            p->ok++;
        th_sleep_ms(100);
    }
    return NULL;
}

static void test_past(void)
{
    struct xtrace *a[MAXTR];
    char id[32] = "";
    int st = 0;

    t_seed(1207);
    ntr = 0;
    T_REQUIRE(fleet_up(1, 2));
    int h = th_host_add_uncontained(&F, "ag1");
    T_REQUIRE(h >= 0);
    const char *extra[] = {"--otlp-listen", "127.0.0.1:0", NULL};
    T_REQUIRE(th_host_agent_start(&F, h, extra) == 0);
    int otlp = wait_number(F.h[h].log, "OTLP/HTTP on 127.0.0.1:0 (port ", 30000);
    T_REQUIRE(otlp > 0);
    T_REQUIRE(th_node_wait_members(&F, 0, 2, 1, 20000) >= 0);

    /* before any instrumentation: second sec to n1 (A), n2 (A, B) and the agent (A, B) */
    int64_t sec = th_unix_ms() / 1000 - 3;
    for (int i = 0; i < 10; i++)
        timed(a[i] = new_trace(SVC_A, 3), sec, i);
    T_EQ(post_otlp(0, a, 10), 200);
    for (int i = 0; i < 4; i++)
        timed(a[i] = new_trace(SVC_A, 2), sec, 10 + i);
    for (int i = 4; i < 10; i++)
        timed(a[i] = new_trace(SVC_B, 3), sec, 10 + i);
    T_EQ(post_otlp(1, a, 10), 200);
    for (int i = 0; i < 5; i++)
        timed(a[i] = new_trace(i < 3 ? SVC_A : SVC_B, 2), sec, 30 + i);
    size_t len;
    unsigned char *ob = otlp_body(a, 5, &len);
    T_REQUIRE(ob != NULL);
    T_EQ(post_port(otlp, "/v1/traces", "application/x-protobuf", ob, len, NULL, 0), 200);
    free(ob);
    /* A: 30 + 8 + 6, B: 18 + 4 */
    const int before_a = 30 + 8 + 6, before_b = 18 + 4;

    /* spans to n2 while the instrumentation is created (20 requests of a trace of 2 spans
     * of service C, 100 ms apart: before, during and after each node's switch to live) */
    static struct poster p;
    memset(&p, 0, sizeof(p));
    p.node = 1;
    p.n = 20;
    for (int i = 0; i < p.n; i++) {
        a[0] = new_trace(SVC_C, 2);
        T_REQUIRE((p.body[i] = otlp_body(a, 1, &p.len[i])) != NULL);
    }
    pthread_t th;
    T_REQUIRE(pthread_create(&th, NULL, poster_main, &p) == 0);
    th_sleep_ms(300);
    json_t *c = th_node_jreq(&F, 0, "POST", "/ca/instrumentations",
                             "{\"module\":\"trace\",\"stat\":\"spans\",\"decomposition\":"
                             "[\"service\"]}",
                             &st);
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(c, "id")) ?: "");
    json_decref(c);
    T_OK(st == 201 || st == 200);
    pthread_join(th, NULL);
    for (int i = 0; i < p.n; i++)
        free(p.body[i]);
    T_EQ(p.ok, p.n);
    T_REQUIRE(id[0]);
    int hosts[] = {h};
    T_REQUIRE(th_wait_running(&F, 0, id, hosts, 1, 20000) >= 0);

    /* after: to n1 and the agent */
    for (int i = 0; i < 3; i++)
        a[i] = new_trace(SVC_B, 2);
    T_EQ(post_otlp(0, a, 3), 200);
    for (int i = 0; i < 2; i++)
        a[i] = new_trace(SVC_A, 1);
    ob = otlp_body(a, 2, &len);
    T_REQUIRE(ob != NULL);
    T_EQ(post_port(otlp, "/v1/traces", "application/x-protobuf", ob, len, NULL, 0), 200);
    free(ob);

    /* the second before it existed: every publisher's spans, once, from either node */
    const char *svab[] = {SVC_A, SVC_B};
    const int want_sec[] = {before_a, before_b};
    for (int n = 0; n < 2; n++)
        T_OK(counts_in(n, id, sec, 1, svab, want_sec, 2, 20000));
    /* and the whole: before, during and after, once */
    const char *svcs[] = {SVC_A, SVC_B, SVC_C};
    const int want[] = {before_a + 2, before_b + 6, 2 * 20};
    for (int n = 0; n < 2; n++)
        T_OK(counts_are(n, id, svcs, want, 3, 20000));

    th_fleet_free(&F);
    th_nats_free(&nats);
}

/* origin: 2 nodes and an agent relay, a trace.spans instrumentation decomposed by host; spans
 * without host.name posted to n1 and to the agent, in one second: the cell of that second
 * counts each publisher's by its name (the node's id, the agent's host), and its exemplars on
 * every node are each of the host it was posted to (the key names it), as many as asked. */
static void test_origin(void)
{
    struct xtrace *a[MAXTR];
    char id[32] = "", path[1024], want[MAXTR][64];
    int st = 0;

    t_seed(1616);
    ntr = 0;
    T_REQUIRE(fleet_up(1, 2));
    int h = th_host_add_uncontained(&F, "ag1");
    T_REQUIRE(h >= 0);
    const char *extra[] = {"--otlp-listen", "127.0.0.1:0", NULL};
    T_REQUIRE(th_host_agent_start(&F, h, extra) == 0);
    int otlp = wait_number(F.h[h].log, "OTLP/HTTP on 127.0.0.1:0 (port ", 30000);
    T_REQUIRE(otlp > 0);
    T_REQUIRE(th_node_wait_members(&F, 0, 2, 1, 20000) >= 0);
    json_t *c = th_node_jreq(&F, 0, "POST", "/ca/instrumentations",
                             "{\"module\":\"trace\",\"stat\":\"spans\",\"decomposition\":"
                             "[\"host\",\"latency\"]}",
                             &st);
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(c, "id")) ?: "");
    json_decref(c);
    T_REQUIRE(id[0]);
    int hosts[] = {h};
    T_REQUIRE(th_wait_running(&F, 0, id, hosts, 1, 20000) >= 0);

    /* 4 traces of 2 spans to n1, 3 of 2 to the agent, all in second sec */
    int64_t sec = th_unix_ms() / 1000 - 3;
    for (int i = 0; i < 4; i++)
        timed(a[i] = new_trace(SVC_A, 2), sec, i);
    T_EQ(post_otlp(0, a, 4), 200);
    for (int i = 0; i < 3; i++)
        timed(a[i] = new_trace(SVC_A, 2), sec, 10 + i);
    size_t len;
    unsigned char *ob = otlp_body(a, 3, &len);
    T_REQUIRE(ob != NULL);
    T_EQ(post_port(otlp, "/v1/traces", "application/x-protobuf", ob, len, NULL, 0), 200);
    free(ob);
    for (int i = 0; i < ntr; i++)
        snprintf(want[i], sizeof(want[i]), "%s", i < 4 ? F.n[0].id : F.h[h].name);

    char q[256];
    snprintf(q, sizeof(q),
             "value/heatmap/details?start_time=%" PRId64
             "&duration=1&width=10&height=10&nbuckets=1&ymin=0&ymax=1000000000&x=0&y=0",
             sec);
    snprintf(path, sizeof(path), "/ca/instrumentations/%.31s/%.255s", id, q);
    for (int n = 0; n < 2; n++) {
        json_t *d = NULL;
        size_t ne = 0, right = 0;
        double end = th_now_ms() + 20000;
        for (int round = 0; round < 100; round++) { /* the stores write within moments */
            d = get(n, &st, "%s", path);
            json_t *pr = json_object_get(d, "present"), *ex = json_object_get(d, "exemplars"), *e;
            size_t k;
            ne = json_array_size(ex);
            right = 0;
            json_array_foreach(ex, k, e)
            {
                const char *tid = json_string_value(json_object_get(e, "traceId"));
                const char *key = json_string_value(json_object_get(e, "key"));
                for (int i = 0; tid && key && i < ntr; i++)
                    if (strcmp(tr[i].id, tid) == 0 && strcmp(want[i], key) == 0)
                        right++;
            }
            if (st == 200 && json_integer_value(json_object_get(pr, F.n[0].id)) == 8 &&
                json_integer_value(json_object_get(pr, F.h[h].name)) == 6 && ne == 5 && right == 5)
                break;
            if (th_now_ms() > end || round == 99) {
                char *x = json_dumps(d, JSON_COMPACT);
                NOTE("n%d: %.1500s", n + 1, x ? x : "-");
                free(x);
                break;
            }
            json_decref(d);
            d = NULL;
            th_sleep_ms(250);
        }
        T_EQ(ne, 5);
        T_EQ(right, 5);
        json_decref(d);
    }
    th_fleet_free(&F);
    th_nats_free(&nats);
}

/* Requests to a node while it stops (SIGTERM): what is in flight ends (an answer or a closed
 * connection), the node exits cleanly with its API's threads still asking the fleet until its
 * listener is down (under ASan: nothing of the fleet is used after it is freed), and every
 * span it acknowledged is on the other node. */
#define HAMMER 40
struct hammer {
    int node;
    unsigned char *body[HAMMER];
    size_t len[HAMMER];
    int st[HAMMER];
    int searches;
    atomic_bool stop;
};

static void *hammer_post(void *arg)
{
    struct hammer *h = arg;
    for (int i = 0; i < HAMMER; i++) {
        h->st[i] =
            post(h->node, "/v1/traces", "application/x-protobuf", h->body[i], h->len[i], NULL, 0);
        th_sleep_ms(25);
    }
    return NULL;
}

static void *hammer_search(void *arg)
{
    struct hammer *h = arg;
    for (int i = 0; i < 400 && !atomic_load(&h->stop); i++) {
        int st = 0;
        json_decref(get(h->node, &st, "/api/v2/traces?serviceName=%s&limit=10", SVC_A));
        h->searches++;
        th_sleep_ms(10);
    }
    return NULL;
}

static void test_stop_under_load(void)
{
    static struct hammer h;
    pthread_t tp, ts;

    t_seed(1208);
    ntr = 0;
    memset(&h, 0, sizeof(h));
    T_REQUIRE(fleet_up(1, 2));
    h.node = 1;
    for (int i = 0; i < HAMMER; i++) {
        struct xtrace *t = new_trace(SVC_A, 2);
        T_REQUIRE((h.body[i] = otlp_body(&t, 1, &h.len[i])) != NULL);
    }
    T_REQUIRE(pthread_create(&tp, NULL, hammer_post, &h) == 0);
    T_REQUIRE(pthread_create(&ts, NULL, hammer_search, &h) == 0);
    th_sleep_ms(400);
    int ws = th_node_stop(&F, 1, SIGTERM);
    atomic_store(&h.stop, true);
    pthread_join(tp, NULL);
    pthread_join(ts, NULL);
    NOTE("n2 stopped with wait status %d; %d searches meanwhile", ws, h.searches);
    T_OK(ws >= 0 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    int acked = 0;
    for (int i = 0; i < HAMMER; i++) {
        free(h.body[i]);
        if (h.st[i] != 200)
            continue;
        acked++;
        T_OK(all_exact(0, i, i + 1, 20000));
    }
    NOTE("%d of %d requests acknowledged before the stop", acked, HAMMER);
    T_OK(acked > 0 && acked < HAMMER);
    th_fleet_free(&F);
    th_nats_free(&nats);
}

/* The same OTLP request of traces t[0..n) to port (a node, the agent) and to the reference. */
static void post_both(int port, struct xtrace *const *t, int n)
{
    size_t len;
    unsigned char *b = otlp_body(t, n, &len);
    T_REQUIRE(b != NULL);
    T_EQ(post_port(port, "/v1/traces", "application/x-protobuf", b, len, NULL, 0), 200);
    T_EQ(post_port(ref_port, "/v1/traces", "application/x-protobuf", b, len, NULL, 0), 200);
    free(b);
}

/* k traces of service of m spans each, every span ending in second sec, to port and the
 * reference (distinct starts: k0 the first's rank). */
static void post_timed(int port, const char *service, int k, int m, int64_t sec, int k0)
{
    struct xtrace *a[MAXTR];
    for (int i = 0; i < k; i++)
        timed(a[i] = new_trace(service, m), sec, k0 + i);
    post_both(port, a, k);
}

/* Creates def on node 0 of the fleet and on the reference: their ids into id and rid. */
static void create_both(const char *def, char *id, char *rid, size_t len)
{
    int st = 0;
    json_t *c = th_node_jreq(&F, 0, "POST", "/ca/instrumentations", def, &st);
    snprintf(id, len, "%s", json_string_value(json_object_get(c, "id")) ?: "");
    json_decref(c);
    struct th_resp r = {0};
    const char *jh[] = {"Content-Type: application/json", NULL};
    T_OK(th_request(ref_port, "POST", "/ca/instrumentations", jh, def, strlen(def), 10000, &r) ==
         0);
    c = r.body ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    snprintf(rid, len, "%s", json_string_value(json_object_get(c, "id")) ?: "");
    json_decref(c);
    th_resp_free(&r);
}

/* Whether every node's answer to instrumentation id's query q equals the reference's of rid,
 * but for the counts of sources (the fleet's sources are its publishers, the reference is
 * one), within limit_ms (asked again every 250 ms), and the tier that answered is want_tier. */
static bool all_as_ref(const char *id, const char *rid, const char *q, const char *want_tier,
                       int limit_ms)
{
    static const char *const src_fields[2] = {"nsources", "minreporting"};
    char path[512], rpath[512];
    bool ok = true;
    snprintf(path, sizeof(path), "/ca/instrumentations/%s/%s", id, q);
    snprintf(rpath, sizeof(rpath), "/ca/instrumentations/%s/%s", rid, q);
    for (int n = 0; n < 3; n++) {
        double end = th_now_ms() + limit_ms;
        bool same = false;
        for (int round = 0; round < 1000 && !same; round++) {
            int sa = 0, sb = 0;
            json_t *ja = get_port(F.n[n].port, path, &sa), *jb = get_port(ref_port, rpath, &sb);
            size_t k;
            json_t *e;
            for (int m = 0; m < 2; m++) {
                json_t *j = m ? jb : ja;
                for (size_t i = 0; i < 2; i++)
                    json_object_del(j, src_fields[i]);
                json_array_foreach(j, k, e)
                {
                    for (size_t i = 0; i < 2; i++)
                        json_object_del(e, src_fields[i]);
                }
            }
            json_t *first = json_is_array(jb) ? json_array_get(jb, 0) : jb;
            const char *tier = json_string_value(json_object_get(first, "tier"));
            same = sa == 200 && sb == 200 && ja && json_equal(ja, jb) && tier &&
                   strcmp(tier, want_tier) == 0;
            if (!same && th_now_ms() > end) {
                char *a = ja ? json_dumps(ja, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
                char *b = jb ? json_dumps(jb, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
                NOTE("n%d %s (tier %s wanted):\n#   fleet %.900s\n#   reference %.900s", n + 1,
                     path, want_tier, a ? a : "-", b ? b : "-");
                free(a);
                free(b);
                round = 1000;
            }
            json_decref(ja);
            json_decref(jb);
            if (!same && round < 1000)
                th_sleep_ms(250);
        }
        ok &= T_OK(same);
    }
    return ok;
}

/*
 * The fleet's base (serve/span_base.h, "In a fleet"): spans to the nodes and an agent before
 * any instrumentation, recent ones, ones older than a base keeps (600 s: refused by every
 * base, as on a single server) and ones just younger; then a persist-data trace.spans
 * instrumentation with a retention past 600 s (its memory filled by the publishers and, before
 * its boundary, by the base's owners from the stored base) and one of 10 s (its history before its
 * creation from the base's records, raw and 1-minute); every answer of every node equals a single
 * `sonde serve` fed the same requests.
 */
static void test_base(void)
{
    char x[32] = "", rx[32] = "", y[32] = "", ry[32] = "", q[256];

    t_seed(1612);
    ntr = 0;
    T_REQUIRE(fleet_up(3, 3));
    T_REQUIRE(ref_start() == 0);
    int h = th_host_add_uncontained(&F, "ag1");
    T_REQUIRE(h >= 0);
    const char *extra[] = {"--otlp-listen", "127.0.0.1:0", NULL};
    T_REQUIRE(th_host_agent_start(&F, h, extra) == 0);
    int otlp = wait_number(F.h[h].log, "OTLP/HTTP on 127.0.0.1:0 (port ", 30000);
    T_REQUIRE(otlp > 0);
    T_REQUIRE(th_node_wait_members(&F, 0, 3, 1, 20000) >= 0);

    /* before: spans that ended 596 s ago (a base takes them: they are older than the
     * boundary of an instrumentation created 5 s later, so the base's owners fill them from
     * the stored base), A and B in recent seconds, and spans that ended 640 s ago (older than a
     * base keeps: refused by the fleet's as by the reference's) */
    int64_t now0 = th_unix_ms() / 1000;
    int64_t sec_edge = now0 - 596, sec_new = now0 - 3, sec_mid = now0 - 120, sec_old = now0 - 640;
    post_timed(F.n[2].port, SVC_A, 2, 2, sec_edge, 80); /* A 4 */
    post_timed(otlp, SVC_B, 1, 3, sec_edge, 85);        /* B 3 */
    post_timed(F.n[0].port, SVC_A, 6, 3, sec_new, 0);   /* A 18 */
    post_timed(F.n[0].port, SVC_B, 4, 2, sec_mid, 10);  /* B 8 */
    post_timed(F.n[1].port, SVC_A, 5, 2, sec_mid, 20);  /* A 10 */
    post_timed(otlp, SVC_B, 4, 3, sec_new, 30);         /* B 12 */
    post_timed(F.n[0].port, SVC_A, 3, 2, sec_old, 40);  /* refused */
    post_timed(otlp, SVC_B, 2, 2, sec_old, 50);         /* refused */
    T_REQUIRE(th_unix_ms() / 1000 < sec_edge + 600);    /* the base took sec_edge */
    /* the creation 5 s after sec_edge's spans came (its boundary past them); the base's owners
     * take the frames meanwhile, and their stores write them */
    while (th_unix_ms() / 1000 < sec_edge + 601 + 1)
        th_sleep_ms(100);

    /* X: persist-data, 900 s of memory; Y: persist-data, 10 s */
    create_both("{\"module\":\"trace\",\"stat\":\"spans\",\"decomposition\":[\"service\"],"
                "\"persist-data\":true,\"retention-time\":900}",
                x, rx, sizeof(x));
    create_both("{\"module\":\"trace\",\"stat\":\"spans\",\"decomposition\":[\"service\"],"
                "\"persist-data\":true,\"retention-time\":10}",
                y, ry, sizeof(y));
    T_REQUIRE(x[0] && rx[0] && y[0] && ry[0]);
    int hosts[] = {h};
    T_REQUIRE(th_wait_running(&F, 0, x, hosts, 1, 20000) >= 0);
    T_REQUIRE(th_wait_running(&F, 0, y, hosts, 1, 20000) >= 0);

    /* after: C that ended 620 s ago (counted live where the memory holds it: X), and A in a
     * second before the creation */
    post_timed(F.n[1].port, SVC_C, 3, 2, now0 - 620, 60); /* C 6 */
    post_timed(otlp, SVC_A, 2, 1, sec_new, 70);           /* A 2 */

    /* X's memory: every second, once (the publishers' fill, the base's owners' before it, live) */
    const char *svcs[] = {SVC_A, SVC_B, SVC_C};
    const int want_x[] = {4 + 18 + 10 + 2, 3 + 8 + 12, 6};
    for (int n = 0; n < 3; n++)
        T_OK(counts_in(n, x, now0 - 660, 660, svcs, want_x, 3, 20000));
    snprintf(q, sizeof(q), "value/raw?start_time=%" PRId64 "&duration=660", now0 - 660);
    T_OK(all_as_ref(x, rx, q, "raw", 20000));
    const int want_new[] = {18 + 2, 12}, want_mid[] = {10, 8}, want_edge[] = {4, 3};
    for (int n = 0; n < 3; n++) {
        T_OK(counts_in(n, x, sec_edge, 1, svcs, want_edge, 2, 20000));
        T_OK(counts_in(n, x, sec_new, 1, svcs, want_new, 2, 20000));
        T_OK(counts_in(n, x, sec_mid, 1, svcs, want_mid, 2, 20000));
    }
    snprintf(q, sizeof(q), "value/raw?start_time=%" PRId64 "&duration=1&ndatapoints=660",
             now0 - 660);
    T_OK(all_as_ref(x, rx, q, "raw", 20000));

    /* Y's history before its creation, raw tier: the base's records (no C: the base refused it) */
    const int want_y[] = {4 + 18 + 10 + 2, 3 + 8 + 12};
    for (int n = 0; n < 3; n++)
        T_OK(counts_in(n, y, now0 - 660, 660, svcs, want_y, 2, 20000));
    snprintf(q, sizeof(q), "value/raw?start_time=%" PRId64 "&duration=1&ndatapoints=660",
             now0 - 660);
    T_OK(all_as_ref(y, ry, q, "raw", 20000));

    /* the 1-minute tier (2 hours: past the raw tier's 4,800 records): the base's rollups before
     * each one's creation, for both (the minutes close and roll up: a bounded wait) */
    int64_t m1 = (now0 / 60) * 60 + 60, m0 = m1 - 7200; /* to the end of now0's minute */
    while (th_unix_ms() / 1000 < m1 + 2)                /* at most a minute */
        th_sleep_ms(250);
    snprintf(q, sizeof(q), "value/raw?start_time=%" PRId64 "&duration=7200", m0);
    T_OK(all_as_ref(x, rx, q, "1m", 60000));
    T_OK(all_as_ref(y, ry, q, "1m", 20000));
    for (int n = 0; n < 3; n++)
        T_OK(counts_in(n, y, m0, 7200, svcs, want_y, 2, 20000));

    ref_stop();
    th_fleet_free(&F);
    th_nats_free(&nats);
}

int main(int argc, char **argv)
{
    if (!(sonde = th_sonde_binary(&argc, &argv)))
        return 2;
    t_init(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    t_run("spans", test_spans);
    t_run("nats_server_killed", test_nats_server_killed);
    t_run("agent_relay", test_agent_relay);
    t_run("past", test_past);
    t_run("origin", test_origin);
    t_run("stop_under_load", test_stop_under_load);
    t_run("base", test_base);
    return t_done();
}
