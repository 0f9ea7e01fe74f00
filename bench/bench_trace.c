/*
 * The span store's benchmarks (make bench-trace): the tracing issue's Speed figures, each
 * measured for Sonde and for its baseline in the same run, on the same data, printed with the
 * goal it is held to and the ratio. Speed is reported, never asserted (the exit status does
 * not depend on it).
 *
 * The data, two profiles (TRACE_DATA), both OTLP/HTTP protobuf requests of 500 spans (traces of
 * 10 spans over 8 services, 20 attributes a span, resource and scope as an SDK sends them, ~1 %
 * errors with an exception event), made with sn_otlp_encode() before any clock starts:
 *   heavy   (the default) heavier than the issue's: older semantic-convention keys with long
 *           values (full URLs with a random 64-bit hex ref, browser user agents on every span,
 *           a query string in http.target) and three ids of high cardinality on every span
 *           (session, a random UUID request id, a user): ~900 B of raw OTLP a span. It stands
 *           for services that put their own ids and URLs in spans, the hard case for the store.
 *   issue   shaped as the issue states it: 20 attributes a span under OpenTelemetry's stable
 *           HTTP semantic conventions (span_attrs_issue(): what the HTTP instrumentations of a
 *           typical service record, plus a user id and thread and code attributes), values of
 *           realistic cardinality. Its raw size is what those keys make (printed: ~760 B a
 *           span, above the issue's ~500 B, since the conventions' keys alone are ~15 B each);
 *           nothing in it was chosen to meet a goal.
 * `make bench-trace` runs both, heavy first.
 *
 *   ingest  the requests, decoded and stored. Timed: sn_otlp_decode() +
 *           sn_span_store_put() of each request on this thread, as an HTTP worker does, and
 *           sn_span_store_sync() at the end; the CPU of the whole process (getrusage: this
 *           thread and the store's writer) -> spans per CPU-second. Decode, put (sort, blocks,
 *           zstd, index entries) and the writer are also given apart (thread CPU clocks).
 *           Baseline: the floor any store of these requests pays: each request body as one
 *           LMDB value (key: a sequence number) in an environment opened the same way
 *           (sn_env_open, sn_env_write), committed in groups as large as the store's own
 *           commits were in the same run (so both pay as many syncs).
 *           Anchor: the OpenTelemetry Collector's published ~12k spans/s per core (OTLP,
 *           20 attributes a span; docs/performance.md of v0.1.3, ../shared/ref/tracing.md §4).
 *           What if: the first fifth of the requests into a store opened with .level = 3 (the
 *           default is 1: what a costlier zstd level would buy).
 *   size    the environment's pages in use (its last page + 1 less the free list: only the span
 *           databases are in it; mdb_stat(), which sn_span_store_stats().used_bytes sums, leaves
 *           out MDB_DUPSORT sub-databases and is printed beside it) / spans, vs the raw protobuf
 *           bytes a span, the baseline's pages a span and the request bodies deflated whole.
 *   query   a trace by id (sn_span_store_trace) for random ids: p50 / p99; sn_trace_find for
 *           Zipkin's GET /api/v2/traces over the hour of spans (serviceName and limit 10,
 *           then with spanName, minDuration, annotationQuery, and a tag no span has: the
 *           search that cannot stop early): p50 / p99. Baseline: a store
 *           without indexes: every block read (sn_block_decode), its traces tested with
 *           sn_trace_query_test() and the newest `limit` kept; ratio baseline / Sonde.
 *   http    `sonde serve --no-agent` (its data directory under ours), the same bodies POSTed
 *           to /v1/traces from TRACE_CLIENTS (2) threads, one connection a request: spans/s,
 *           the server's CPU (/proc/PID/stat, until it is idle again) per span, latencies.
 *
 * TRACE_SPANS (default 1,000,000; rounded to whole requests) spans start in the hour before
 * the run; TRACE_DATA: heavy (the default) or issue (above); TRACE_IDS (10,000) ids are looked up;
 * TRACE_FINDS (200) searches of each kind; TRACE_SCANS (1) baseline scans of each kind; TRACE_HTTP
 * (half the requests; 0: none) requests over HTTP. BENCH_DIR: where the data directory goes
 * (default ./build: the disk, not a tmpfs); it is removed at the end. About a minute and a half on
 * two cores a profile. The figures are CPU-time where they can be: the machine's other processes
 * are printed beside them.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <lmdb.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "bench_util.h"
#include "http.h"
#include "core/arena.h"
#include "store/env.h"
#include "trace/otlp.h"
#include "trace/query.h"
#include "trace/span.h"
#include "trace/span_block.h"
#include "trace/span_index.h"
#include "trace/span_store.h"

#define REQ_SPANS   500 /* spans a request */
#define TRACE_LEN   10  /* spans a trace */
#define NSVC        8
#define NINST       4 /* instances (pods) of each service */
#define NROUTES     10
#define SPAN_NATTRS 20
#define HOUR_NS     3600000000000ULL

/* goals (the tracing issue, Speed) and the anchor */
#define GOAL_INGEST      200000.0 /* spans per CPU-second, at least */
#define GOAL_SPAN_B      120.0
#define GOAL_TRACE_MS    1.0
#define GOAL_FIND_MS     50.0
#define OTELCOL_PER_CORE 12000.0

static _Noreturn void die(const char *what, int rc)
{
    fprintf(stderr, "bench_trace: %s: %d (%s)\n", what, rc, strerror(rc < 0 ? -rc : rc));
    exit(1);
}

/* ---- the data ------------------------------------------------------------------------------ */

/* A request's own random stream (splitmix64), so that the data is the same in every run. */
static uint64_t sm_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double sm_01(uint64_t *s)
{
    return (double)(sm_next(s) >> 11) * 0x1.0p-53;
}

static const char *svc_name[NSVC] = {"frontend", "api-gateway", "auth",      "cart",
                                     "checkout", "payment",     "inventory", "users"};
static const char *svc_lang[NSVC] = {"nodejs", "go", "java", "go", "java", "python", "go", "java"};
static const char *methods[4] = {"GET", "POST", "PUT", "DELETE"};
static const char *agents[6] = {
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "okhttp/4.12.0",
    "Go-http-client/1.1",
    "python-requests/2.32.3"};
static const char *regions[3] = {"eu-west-1", "us-east-1", "ap-southeast-2"};

static const char *nouns[NROUTES] = {"items",  "orders", "sessions", "profile", "search",
                                     "prices", "stock",  "tokens",   "carts",   "health"};
static char route[NSVC][NROUTES][48];
static char scope_name[NSVC][48];
static struct sn_span_kv res[NSVC][NINST][8];
static char res_inst[NSVC][NINST][48], res_host[NSVC][NINST][24];

static void data_init(void)
{
    for (int s = 0; s < NSVC; s++) {
        for (int r = 0; r < NROUTES; r++)
            snprintf(route[s][r], sizeof(route[s][r]), "/api/%s/%s/{id}", svc_name[s], nouns[r]);
        snprintf(scope_name[s], sizeof(scope_name[s]), "io.opentelemetry.%s.http", svc_lang[s]);
        for (int i = 0; i < NINST; i++) {
            snprintf(res_inst[s][i], sizeof(res_inst[s][i]), "%s-7d9f%04x-%c%c%c", svc_name[s],
                     0x1000 + 97 * s + i, 'a' + i, 'k' + s, 'x' - i);
            snprintf(res_host[s][i], sizeof(res_host[s][i]), "node-%02d", (s * NINST + i) % 13);
            struct sn_span_kv *a = res[s][i];
            const char *kv[8][2] = {
                {"service.name", svc_name[s]},           {"service.version", "2.14.3"},
                {"service.instance.id", res_inst[s][i]}, {"host.name", res_host[s][i]},
                {"telemetry.sdk.name", "opentelemetry"}, {"telemetry.sdk.language", svc_lang[s]},
                {"telemetry.sdk.version", "1.28.0"},     {"deployment.environment", "production"}};
            for (int k = 0; k < 8; k++)
                a[k] = (struct sn_span_kv){.key = kv[k][0],
                                           .val = kv[k][1],
                                           .vlen = (uint32_t)strlen(kv[k][1]),
                                           .type = SN_ATTR_STRING};
        }
    }
}

static void kv_str(struct sn_arena *ar, struct sn_span_kv *a, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void kv_str(struct sn_arena *ar, struct sn_span_kv *a, const char *key, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0 || n >= (int)sizeof(buf))
        n = (int)sizeof(buf) - 1;
    *a = (struct sn_span_kv){.key = key, .type = SN_ATTR_STRING, .vlen = (uint32_t)n};
    if (!(a->val = sn_arena_strndup(ar, buf, (size_t)n)))
        die("sn_arena_strndup", -ENOMEM);
}

static void kv_int(struct sn_arena *ar, struct sn_span_kv *a, const char *key, int64_t v)
{
    kv_str(ar, a, key, "%" PRId64, v);
    a->type = SN_ATTR_INT;
    a->i = v;
}

struct gen_span {
    struct sn_span s;
    int svc, callee, seq; /* its service, the one it calls (-1), its place (the sort keeps it) */
};

/* What every span of a trace carries alike (propagated as baggage): the user, the session,
 * the request id. */
struct trace_ctx {
    uint64_t user, session, u1, u2;
};

/* The 20 attributes of a span of service svc (callee: the service a CLIENT span calls). */
static void span_attrs(struct sn_arena *ar, uint64_t *rs, struct sn_span *s, int svc, int callee,
                       int rt, const char *method, int status, const struct trace_ctx *tc)
{
    struct sn_span_kv *a = sn_arena_calloc(ar, SPAN_NATTRS, sizeof(*a));
    if (!a)
        die("sn_arena_calloc", -ENOMEM);
    int peer = callee >= 0 ? callee : (int)(sm_next(rs) % NSVC);
    uint64_t user = tc->user, id = sm_next(rs) % 100000000;
    int i = 0;
    kv_str(ar, &a[i++], "http.method", "%s", method);
    kv_str(ar, &a[i++], "http.route", "%s", route[svc][rt]);
    kv_int(ar, &a[i++], "http.status_code", status);
    kv_str(ar, &a[i++], "http.scheme", "%s", sm_next(rs) % 4 ? "https" : "http");
    kv_str(ar, &a[i++], "http.target", "/api/%s/%s/%" PRIu64 "?user=u%07" PRIu64, svc_name[svc],
           nouns[rt], id, user);
    kv_str(ar, &a[i++], "http.url", "https://shop.example.com%s?id=%" PRIu64 "&ref=%016" PRIx64,
           route[svc][rt], id, sm_next(rs));
    kv_str(ar, &a[i++], "http.user_agent", "%s", agents[sm_next(rs) % 6]);
    kv_int(ar, &a[i++], "http.request_content_length", (int64_t)(sm_next(rs) % 4096));
    kv_int(ar, &a[i++], "http.response_content_length", (int64_t)(sm_next(rs) % 65536));
    kv_str(ar, &a[i++], "net.peer.name", "%s.prod.svc.cluster.local", svc_name[peer]);
    kv_int(ar, &a[i++], "net.peer.port",
           callee >= 0 ? 8080 : 30000 + (int64_t)(sm_next(rs) % 30000));
    kv_str(ar, &a[i++], "net.host.name", "%s.prod.svc.cluster.local", svc_name[svc]);
    kv_int(ar, &a[i++], "net.host.port", 8080);
    kv_str(ar, &a[i++], "net.transport", "ip_tcp");
    kv_str(ar, &a[i++], "enduser.id", "u%07" PRIu64, user);
    kv_str(ar, &a[i++], "session.id", "%016" PRIx64, tc->session);
    uint64_t u1 = tc->u1, u2 = tc->u2;
    kv_str(ar, &a[i++], "request.id", "%08x-%04x-4%03x-%04x-%012" PRIx64, (unsigned)(u1 >> 32),
           (unsigned)(u1 >> 16 & 0xffff), (unsigned)(u1 & 0xfff), (unsigned)(u2 >> 48 | 0x8000),
           (uint64_t)(u2 & 0xffffffffffffULL));
    kv_int(ar, &a[i++], "thread.id", 10 + (int64_t)(sm_next(rs) % 64));
    kv_str(ar, &a[i++], "code.function", "%s.handle%d", svc_name[svc], rt);
    if (callee >= 0)
        kv_str(ar, &a[i++], "peer.service", "%s", svc_name[callee]);
    else
        kv_str(ar, &a[i++], "cloud.region", "%s", regions[sm_next(rs) % 3]);
    s->attrs = a;
    s->nattrs = (uint32_t)i;
}

/* TRACE_DATA=issue: the 20 attributes of a span as OpenTelemetry's HTTP instrumentations of a
 * typical service record them (the stable HTTP semantic conventions: http.request.method,
 * url.path, http.route, server.address, network.peer.address, user_agent.original ...) plus
 * the few an application adds (enduser.id, thread and code attributes), with the cardinality
 * such services see: addresses from a cluster's pod IPs and a few thousand clients, paths with
 * an id in them, ephemeral ports, body sizes, a user id; no random UUIDs or hex refs, no query
 * strings. Not chosen to meet a goal: what an instrumented HTTP service's spans look like. */
static void span_attrs_issue(struct sn_arena *ar, uint64_t *rs, struct sn_span *s, int svc,
                             int callee, int rt, const char *method, int status,
                             const struct trace_ctx *tc)
{
    static const char *const short_agents[3] = {"Go-http-client/1.1", "okhttp/4.12.0",
                                                "python-requests/2.32.3"};
    struct sn_span_kv *a = sn_arena_calloc(ar, SPAN_NATTRS, sizeof(*a));
    if (!a)
        die("sn_arena_calloc", -ENOMEM);
    int srv = callee >= 0 ? callee : svc; /* the server of the request: the callee's or ours */
    uint64_t id = sm_next(rs) % 100000;
    bool body = method[0] == 'P';
    int i = 0;
    kv_str(ar, &a[i++], "http.request.method", "%s", method);
    kv_str(ar, &a[i++], "http.route", "%s", route[srv][rt]);
    kv_int(ar, &a[i++], "http.response.status_code", status);
    kv_str(ar, &a[i++], "url.scheme", "%s", svc == 0 && callee < 0 ? "https" : "http");
    kv_str(ar, &a[i++], "url.path", "/api/%s/%s/%" PRIu64, svc_name[srv], nouns[rt], id);
    kv_str(ar, &a[i++], "server.address", "%s", svc_name[srv]);
    kv_int(ar, &a[i++], "server.port", 8080);
    kv_str(ar, &a[i++], "network.protocol.version", "%s", sm_next(rs) % 5 ? "1.1" : "2");
    kv_str(ar, &a[i++], "network.peer.address", "10.0.%d.%d", (int)(sm_next(rs) % 4),
           (int)(2 + sm_next(rs) % 60));
    kv_int(ar, &a[i++], "network.peer.port",
           callee >= 0 ? 8080 : 32768 + (int64_t)(sm_next(rs) % 28000));
    if (callee >= 0)
        kv_str(ar, &a[i++], "url.full", "http://%s:8080/api/%s/%s/%" PRIu64, svc_name[callee],
               svc_name[callee], nouns[rt], id);
    else if (svc == 0) /* the frontend's clients: browsers from a few thousand addresses */
        kv_str(ar, &a[i++], "client.address", "203.0.%d.%d", (int)(tc->session % 16),
               (int)((tc->session >> 8) % 250));
    else
        kv_str(ar, &a[i++], "client.address", "10.0.%d.%d", (int)(sm_next(rs) % 4),
               (int)(2 + sm_next(rs) % 60));
    if (svc == 0 && callee < 0)
        kv_str(ar, &a[i++], "user_agent.original", "%s", agents[tc->session % 3]);
    else
        kv_str(ar, &a[i++], "user_agent.original", "%s", short_agents[svc % 3]);
    kv_int(ar, &a[i++], "http.request.body.size", body ? (int64_t)(sm_next(rs) % 2048) : 0);
    kv_int(ar, &a[i++], "http.response.body.size", (int64_t)(sm_next(rs) % 16384));
    kv_str(ar, &a[i++], "enduser.id", "u%07" PRIu64, tc->user);
    kv_int(ar, &a[i++], "thread.id", 10 + (int64_t)(sm_next(rs) % 64));
    kv_str(ar, &a[i++], "thread.name", "http-worker-%d", (int)(sm_next(rs) % 16));
    kv_str(ar, &a[i++], "code.function", "handle%d", rt);
    kv_str(ar, &a[i++], "code.namespace", "com.example.%s.%sController", svc_name[svc], nouns[rt]);
    if (callee >= 0)
        kv_str(ar, &a[i++], "peer.service", "%s", svc_name[callee]);
    else
        kv_str(ar, &a[i++], "network.transport", "tcp");
    s->attrs = a;
    s->nattrs = (uint32_t)i;
}

static bool issue_data; /* TRACE_DATA=issue */

static double lognormal(uint64_t *rs, double median, double sigma)
{
    double u = sm_01(rs), v = sm_01(rs);
    double z = sqrt(-2 * log(u > 0 ? u : 1e-300)) * cos(2 * M_PI * v);
    return median * exp(sigma * z);
}

static int cmp_gen(const void *a, const void *b)
{
    const struct gen_span *x = a, *y = b;
    if (x->svc != y->svc)
        return x->svc - y->svc;
    return x->seq - y->seq;
}

struct request {
    unsigned char *body;
    size_t len;
};

/* Request r of nreq: 50 traces of 10 spans starting in the request's slice of the hour that
 * ends at end_ns, its spans grouped by service (one ResourceSpans each, as a collector's batch
 * has them). The trace ids go to ids[r * 50 ...]. */
static void make_request(int r, int nreq, uint64_t end_ns, struct request *out, uint8_t (*ids)[16])
{
    static struct gen_span g[REQ_SPANS];
    struct sn_arena ar = {0};
    uint64_t rs = 0xC0FFEE00ULL + (uint64_t)r * 7919;
    uint64_t slice = HOUR_NS / (uint64_t)nreq, t0 = end_ns - HOUR_NS - 60000000000ULL;
    int n = 0, inst[NSVC];
    for (int s = 0; s < NSVC; s++)
        inst[s] = (int)(sm_next(&rs) % NINST);
    for (int t = 0; t < REQ_SPANS / TRACE_LEN; t++) {
        uint8_t tid[16];
        for (int k = 0; k < 16; k += 8) {
            uint64_t x = sm_next(&rs);
            memcpy(tid + k, &x, 8);
        }
        memcpy(ids[r * (REQ_SPANS / TRACE_LEN) + t], tid, 16);
        uint64_t start = t0 + (uint64_t)r * slice + (uint64_t)(sm_01(&rs) * (double)slice);
        struct trace_ctx tc = {sm_next(&rs) % 5000000, sm_next(&rs), sm_next(&rs), sm_next(&rs)};
        int first = n;
        for (int j = 0; j < TRACE_LEN; j++) {
            struct gen_span *gs = &g[n];
            struct sn_span *s = &gs->s;
            memset(gs, 0, sizeof(*gs));
            gs->seq = n++;
            memcpy(s->trace_id, tid, 16);
            uint64_t sid = sm_next(&rs) | 1;
            memcpy(s->span_id, &sid, 8);
            s->name = s->status_msg = s->trace_state = s->scope_version = "";
            int svc, callee = -1, rt = (int)(sm_next(&rs) % NROUTES);
            const struct gen_span *parent = NULL;
            uint64_t pstart, pdur;
            if (j == 0) { /* the root: the frontend's SERVER span */
                svc = sm_next(&rs) % 5 ? 0 : 1;
                s->kind = SN_KIND_SERVER;
                pstart = start;
                pdur = (uint64_t)(lognormal(&rs, 20e6, 0.9));
                s->start_ns = pstart;
                s->duration_ns = pdur;
            } else {
                if (j % 2 == 1 && j < TRACE_LEN - 1) { /* a CLIENT span of a SERVER one */
                    int p;
                    do
                        p = first + (int)(sm_next(&rs) % (uint64_t)j);
                    while (g[p].s.kind != SN_KIND_SERVER);
                    parent = &g[p];
                    svc = parent->svc;
                    do
                        callee = 1 + (int)(sm_next(&rs) % (NSVC - 1));
                    while (callee == svc);
                    s->kind = SN_KIND_CLIENT;
                } else if (j % 2 == 0) { /* the SERVER span of the CLIENT one just made */
                    parent = &g[n - 2];
                    svc = parent->callee;
                    s->kind = SN_KIND_SERVER;
                } else { /* the last: an INTERNAL span of some SERVER span */
                    int p;
                    do
                        p = first + (int)(sm_next(&rs) % (uint64_t)j);
                    while (g[p].s.kind != SN_KIND_SERVER);
                    parent = &g[p];
                    svc = parent->svc;
                    s->kind = SN_KIND_INTERNAL;
                }
                pstart = parent->s.start_ns;
                pdur = parent->s.duration_ns;
                memcpy(s->parent_id, parent->s.span_id, 8);
                s->flags |= SN_SPAN_F_PARENT;
                if (s->kind == SN_KIND_SERVER) { /* inside its client, 0.1 ms each side */
                    s->start_ns = pstart + (pdur > 200000 ? 100000 : 0);
                    s->duration_ns = pdur > 200000 ? pdur - 200000 : pdur;
                } else {
                    s->start_ns = pstart + (uint64_t)(sm_01(&rs) * 0.3 * (double)pdur);
                    s->duration_ns = (uint64_t)((0.1 + 0.6 * sm_01(&rs)) * (double)pdur);
                }
            }
            gs->svc = svc;
            gs->callee = callee;
            s->service = svc_name[svc];
            s->res = res[svc][inst[svc]];
            s->nres = 8;
            s->scope_name = scope_name[svc];
            s->scope_version = "0.53.0";
            const char *method = methods[sm_next(&rs) % 10 < 7 ? 0 : sm_next(&rs) % 4];
            uint64_t st = sm_next(&rs) % 1000;
            int status = st < 10 ? 500 : st < 40 ? 404 : st < 100 ? 201 : 200;
            if (s->kind == SN_KIND_CLIENT) {
                char nm[64];
                snprintf(nm, sizeof(nm), "%s %s", method, route[callee][rt]);
                s->name = sn_arena_strndup(&ar, nm, strlen(nm));
            } else if (s->kind == SN_KIND_INTERNAL) {
                char nm[64];
                snprintf(nm, sizeof(nm), "%s.render%d", svc_name[svc], rt % 4);
                s->name = sn_arena_strndup(&ar, nm, strlen(nm));
            } else {
                char nm[64];
                snprintf(nm, sizeof(nm), "%s %s", method, route[svc][rt]);
                s->name = sn_arena_strndup(&ar, nm, strlen(nm));
            }
            (issue_data ? span_attrs_issue : span_attrs)(&ar, &rs, s, svc, callee, rt, method,
                                                         status, &tc);
            if (status == 500) {
                s->status = SN_STATUS_ERROR;
                s->status_msg = "upstream failed";
                struct sn_span_event *e = sn_arena_calloc(&ar, 1, sizeof(*e));
                struct sn_span_kv *ea = sn_arena_calloc(&ar, 2, sizeof(*ea));
                kv_str(&ar, &ea[0], "exception.type", "java.io.IOException");
                kv_str(&ar, &ea[1], "exception.message", "connection reset by peer (%" PRIu64 ")",
                       sm_next(&rs) % 100000);
                *e = (struct sn_span_event){.t_ns = s->start_ns + s->duration_ns / 2,
                                            .name = "exception",
                                            .attrs = ea,
                                            .nattrs = 2};
                s->events = e;
                s->nevents = 1;
            }
            s->otlp_flags = 0x301;
        }
    }
    qsort(g, (size_t)n, sizeof(g[0]), cmp_gen);
    struct sn_span *spans = malloc((size_t)n * sizeof(*spans));
    if (!spans)
        die("malloc", -ENOMEM);
    for (int i = 0; i < n; i++)
        spans[i] = g[i].s;
    int rc = sn_otlp_encode(spans, (size_t)n, &out->body, &out->len);
    if (rc < 0)
        die("sn_otlp_encode", rc);
    free(spans);
    sn_arena_fini(&ar);
}

/* ---- the baseline's store: request bodies as LMDB values ---------------------------------- */

struct raw_put {
    MDB_dbi dbi;
    bool opened;
    const struct request *reqs;
    int from, to;
};

static int raw_write(MDB_txn *txn, void *arg)
{
    struct raw_put *p = arg;
    int rc;
    if (!p->opened) {
        if ((rc = mdb_dbi_open(txn, "raw", MDB_CREATE, &p->dbi)))
            return rc;
    }
    for (int i = p->from; i < p->to; i++) {
        uint8_t kb[8];
        for (int k = 0; k < 8; k++)
            kb[k] = (uint8_t)((uint64_t)i >> (56 - 8 * k));
        MDB_val k = {8, kb}, v = {p->reqs[i].len, p->reqs[i].body};
        if ((rc = mdb_put(txn, p->dbi, &k, &v, MDB_APPEND)))
            return rc;
    }
    return 0;
}

/* Pages in use by the named databases of e (NULL-terminated names). */
static uint64_t db_bytes(struct sn_env *e, const char *const *names, uint64_t *each)
{
    MDB_txn *txn;
    uint64_t sum = 0;
    int rc = sn_env_read_begin(e, &txn);
    if (rc < 0)
        die("sn_env_read_begin", rc);
    for (int i = 0; names[i]; i++) {
        MDB_dbi dbi;
        uint64_t b = 0;
        if (mdb_dbi_open(txn, names[i], 0, &dbi) == 0)
            b = sn_env_db_bytes(txn, dbi);
        if (each)
            each[i] = b;
        sum += b;
    }
    sn_env_read_end(e, txn);
    return sum;
}

/* Pages in use in the whole environment (its last page + 1, less the free list's pages), in
 * bytes. Unlike mdb_stat() (sn_env_db_bytes) it counts the duplicates' sub-databases of
 * MDB_DUPSORT databases (ttrace). */
static uint64_t env_bytes(struct sn_env *e)
{
    MDB_txn *txn;
    MDB_envinfo info = {0};
    MDB_stat st = {0};
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t free_pages = 0;
    int rc = sn_env_read_begin(e, &txn);
    if (rc < 0)
        die("sn_env_read_begin", rc);
    mdb_env_info(mdb_txn_env(txn), &info);
    mdb_env_stat(mdb_txn_env(txn), &st);
    if (mdb_cursor_open(txn, 0, &cur) == 0) { /* FREE_DBI: txn id -> MDB_IDL (count first) */
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
            if (v.mv_size >= sizeof(size_t))
                free_pages += *(const size_t *)v.mv_data;
        mdb_cursor_close(cur);
    }
    sn_env_read_end(e, txn);
    return ((uint64_t)info.me_last_pgno + 1 - free_pages) * st.ms_psize;
}

/* The environment's last write transaction id: how many it committed. */
static uint64_t env_txnid(struct sn_env *e)
{
    MDB_txn *txn;
    MDB_envinfo info = {0};
    if (sn_env_read_begin(e, &txn) < 0)
        return 0;
    mdb_env_info(mdb_txn_env(txn), &info);
    sn_env_read_end(e, txn);
    return (uint64_t)info.me_last_txnid;
}

/* What a database of e holds, printed: entries, their keys' and values' bytes a span, and its
 * pages (leaf, branch, overflow) a span, so that a page's fill can be read (keys and values
 * over the leaf pages' bytes; LMDB adds 8 B of node header and a 2 B pointer an entry). */
static void db_fill(struct sn_env *e, const char *name, double nspans)
{
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_stat st;
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t n = 0, kb = 0, vb = 0;
    if (sn_env_read_begin(e, &txn) < 0)
        return;
    if (mdb_dbi_open(txn, name, 0, &dbi) == 0 && mdb_stat(txn, dbi, &st) == 0 &&
        mdb_cursor_open(txn, dbi, &cur) == 0) {
        for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            n++;
            kb += k.mv_size;
            vb += v.mv_size;
        }
        mdb_cursor_close(cur);
        printf("  (%s: %" PRIu64 " entries, keys %.2f B and values %.2f B a span; pages: leaf "
               "%.2f B, branch %.2f B, overflow %.2f B a span; depth %u)\n",
               name, n, (double)kb / nspans, (double)vb / nspans,
               (double)st.ms_leaf_pages * st.ms_psize / nspans,
               (double)st.ms_branch_pages * st.ms_psize / nspans,
               (double)st.ms_overflow_pages * st.ms_psize / nspans, st.ms_depth);
    }
    sn_env_read_end(e, txn);
}

/* ---- ingest ------------------------------------------------------------------------------ */

struct ingest {
    double wall, cpu, main_cpu, dec_cpu, put_cpu; /* s */
    uint64_t commits;                             /* write transactions (maintenance's too) */
    int busy;                                     /* puts refused: the queue was full */
};

static void open_store(const char *d, int level, struct sn_env **env, struct sn_span_store **ss)
{
    struct sn_span_store_opts so = {.level = level};
    char why[256] = "";
    int rc;
    mkdir(d, 0750);
    if ((rc = sn_env_open(d, 0, env, why, sizeof(why))) < 0 ||
        (rc = sn_span_store_open(*env, &so, ss, why, sizeof(why))) < 0)
        die(why, rc);
}

/* Requests [from, to) decoded and put on this thread as an HTTP worker does, then synced; the
 * process's CPU (this thread's and the store's writer's) meanwhile. */
static void ingest_run(struct sn_env *env, struct sn_span_store *ss, const struct request *reqs,
                       int from, int to, struct ingest *o)
{
    char why[256] = "";
    int rc;
    memset(o, 0, sizeof(*o));
    uint64_t txn0 = env_txnid(env);
    double wall = bench_mono_s(), cpu = bench_self_cpu_s(), main_cpu = bench_thread_cpu_s();
    for (int r = from; r < to; r++) {
        struct sn_span_batch b = {0};
        double c0 = bench_thread_cpu_s();
        if ((rc = sn_otlp_decode(SN_OTLP_PROTO, reqs[r].body, reqs[r].len, &b, why, sizeof(why))) <
            0)
            die(why, rc);
        double c1 = bench_thread_cpu_s();
        while ((rc = sn_span_store_put(ss, &b, (uint64_t)bench_real_ns())) == -EBUSY) {
            o->busy++; /* the queue is full: what a client would retry after a 503 */
            sn_span_store_sync(ss);
        }
        if (rc < 0)
            die("sn_span_store_put", rc);
        o->dec_cpu += c1 - c0;
        o->put_cpu += bench_thread_cpu_s() - c1;
        sn_span_batch_fini(&b);
    }
    if ((rc = sn_span_store_sync(ss)) < 0)
        die("sn_span_store_sync", rc);
    o->wall = bench_mono_s() - wall;
    o->cpu = bench_self_cpu_s() - cpu;
    o->main_cpu = bench_thread_cpu_s() - main_cpu;
    o->commits = env_txnid(env) - txn0;
}

/* ---- over HTTP: POST /v1/traces to `sonde serve` ------------------------------------------- */

struct http_run {
    int port, nreq;
    const struct request *reqs;
    atomic_int next, ok, busy, failed;
    double *lat; /* ms, by request */
};

static void *http_client(void *arg)
{
    struct http_run *h = arg;
    static const char *const hdrs[] = {"Content-Type: application/x-protobuf", NULL};
    for (int r; (r = atomic_fetch_add(&h->next, 1)) < h->nreq;) {
        for (int tries = 0; tries < 100; tries++) {
            struct th_resp resp;
            int rc = th_request(h->port, "POST", "/v1/traces", hdrs, h->reqs[r].body,
                                h->reqs[r].len, 30000, &resp);
            int status = rc == 0 ? resp.status : 0;
            h->lat[r] = resp.ms;
            th_resp_free(&resp);
            if (status == 200) {
                atomic_fetch_add(&h->ok, 1);
                break;
            }
            if (status != 503 && status != 429) {
                atomic_fetch_add(&h->failed, 1);
                break;
            }
            atomic_fetch_add(&h->busy, 1); /* retried, as an exporter does */
            th_sleep_ms(20);
        }
    }
    return NULL;
}

/* The server's CPU until it has been idle for 300 ms (its writer done), at most 10 s. */
static double settle_cpu(pid_t pid)
{
    double last = bench_proc_cpu_s(pid);
    for (int i = 0; i < 100; i++) {
        th_sleep_ms(300);
        double now = bench_proc_cpu_s(pid);
        if (now - last < 0.011)
            return now;
        last = now;
    }
    return last;
}

/* ---- the baseline's search: every block read ----------------------------------------------- */

struct hit {
    uint64_t ts;
    uint8_t id[16];
};

struct scan_result {
    struct hit top[64]; /* newest first */
    size_t n;
    uint64_t spans, blocks;
};

static void keep_newest(struct scan_result *r, size_t limit, uint64_t ts, const uint8_t id[16])
{
    if (r->n == limit && ts <= r->top[r->n - 1].ts)
        return;
    size_t i = r->n < limit ? r->n++ : r->n - 1;
    while (i > 0 && r->top[i - 1].ts < ts) {
        r->top[i] = r->top[i - 1];
        i--;
    }
    r->top[i].ts = ts;
    memcpy(r->top[i].id, id, 16);
}

/* q NULL: the trace id `id` is looked for (a lookup without the trace index). */
static void scan_all(struct sn_env *e, const struct sn_trace_query *q, const uint8_t *id,
                     struct scan_result *r)
{
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_val k, v;
    struct sn_span_batch b = {0};
    int rc;
    size_t limit = q ? (q->limit < 64 ? q->limit : 64) : 1;
    memset(r, 0, sizeof(*r));
    if ((rc = sn_env_read_begin(e, &txn)) < 0)
        die("sn_env_read_begin", rc);
    if ((rc = mdb_dbi_open(txn, "tblocks", 0, &dbi)) || (rc = mdb_cursor_open(txn, dbi, &cur)))
        die("tblocks", rc);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct sn_chunk ch;
        if (v.mv_size < 16 || sn_chunk_parse((const uint8_t *)v.mv_data + 16, v.mv_size - 16, &ch))
            continue;
        for (uint32_t bi = 0; bi < ch.nblocks; bi++) {
            struct sn_chunk_block cb;
            b.n = 0;
            sn_arena_fini(&b.arena);
            if (sn_chunk_block(&ch, bi, &cb) ||
                sn_block_decode_ids(cb.blk, cb.blk_len, ch.ids + (size_t)cb.first * 16, cb.ntraces,
                                    &b))
                continue;
            r->blocks++;
            r->spans += b.n;
            /* a block holds whole traces, its spans sorted by trace */
            for (size_t i = 0, j; i < b.n; i = j) {
                for (j = i + 1; j < b.n && !memcmp(b.spans[j].trace_id, b.spans[i].trace_id, 16);
                     j++)
                    ;
                if (!q) {
                    if (!memcmp(b.spans[i].trace_id, id, 16))
                        keep_newest(r, 1, 1, id);
                } else if (sn_trace_query_test(q, &b.spans[i], j - i)) {
                    keep_newest(r, limit, sn_trace_timestamp(&b.spans[i], j - i),
                                b.spans[i].trace_id);
                }
            }
        }
    }
    mdb_cursor_close(cur);
    sn_env_read_end(e, txn);
    sn_span_batch_fini(&b);
}

/* ---- the table ----------------------------------------------------------------------------- */

static void report(const char *what, double sonde, const char *unit, double base,
                   const char *ratio_how, double goal, bool higher_better)
{
    char b[32] = "-", ratio[32] = "-", g[32] = "-", verdict[16] = "";
    if (!isnan(base)) {
        snprintf(b, sizeof(b), "%.3f", base);
        double r = ratio_how[0] == 'b' ? base / sonde : sonde / base;
        snprintf(ratio, sizeof(ratio), "%.2fx", r);
    }
    if (goal > 0) {
        snprintf(g, sizeof(g), "%s %g", higher_better ? ">=" : "<=", goal);
        bool met = higher_better ? sonde >= goal : sonde <= goal;
        snprintf(verdict, sizeof(verdict), "%s", met ? "met" : "MISSED");
    }
    printf("%-50s %12.3f %-9s %12s %8s %11s %7s\n", what, sonde, unit, b, ratio, g, verdict);
}

static char dir[512];

int main(void)
{
    const char *env_d = getenv("BENCH_DIR");
    long want = bench_env_int("TRACE_SPANS", 1000000);
    int nids = bench_env_int("TRACE_IDS", 10000), nfinds = bench_env_int("TRACE_FINDS", 200),
        nscans = bench_env_int("TRACE_SCANS", 1);
    int nreq = (int)((want + REQ_SPANS - 1) / REQ_SPANS);
    if (nreq < 4)
        nreq = 4;
    if (nids < 1)
        nids = 1;
    if (nfinds < 1)
        nfinds = 1;
    if (nscans < 1)
        nscans = 1;
    long nspans = (long)nreq * REQ_SPANS, ntraces = nspans / TRACE_LEN;
    const char *data = getenv("TRACE_DATA");
    if (data && strcmp(data, "issue") && strcmp(data, "heavy")) {
        fprintf(stderr, "bench_trace: TRACE_DATA is heavy (the default) or issue, not %s\n", data);
        return 2;
    }
    issue_data = data && !strcmp(data, "issue");
    bench_rng_seed(88172645463325252ULL);
    setvbuf(stdout, NULL, _IOLBF, 0); /* in order with the warnings on stderr */

    snprintf(dir, sizeof(dir), "%s/bench-trace-XXXXXX", env_d ? env_d : "build");
    if (!mkdtemp(dir)) {
        snprintf(dir, sizeof(dir), "/tmp/bench-trace-XXXXXX");
        if (!mkdtemp(dir))
            die("mkdtemp", -errno);
    }
    char store_dir[600], raw_dir[600];
    snprintf(store_dir, sizeof(store_dir), "%s/store", dir);
    snprintf(raw_dir, sizeof(raw_dir), "%s/raw", dir);
    mkdir(store_dir, 0750);
    mkdir(raw_dir, 0750);

    /* ---- the requests, made before any clock starts --------------------------------------- */
    double a = bench_mono_s();
    uint64_t end_ns = (uint64_t)bench_real_ns();
    data_init();
    struct request *reqs = calloc((size_t)nreq, sizeof(*reqs));
    uint8_t(*ids)[16] = malloc((size_t)ntraces * 16);
    if (!reqs || !ids)
        die("calloc", -ENOMEM);
    uint64_t req_bytes = 0;
    for (int r = 0; r < nreq; r++) {
        make_request(r, nreq, end_ns, &reqs[r], ids);
        req_bytes += reqs[r].len;
    }
    double gen_s = bench_mono_s() - a;
    printf(
        "sonde span store benchmarks (make bench-trace), TRACE_DATA=%s (%s): %ld spans in %d "
        "OTLP protobuf requests of %d spans (%d-span traces, %d services, %d attributes a span), "
        "%.0f B a request, %.1f B of raw OTLP a span; made in %.1f s; files in %s\n",
        issue_data ? "issue" : "heavy",
        issue_data ? "HTTP semantic conventions, a typical service's cardinality"
                   : "long URLs and user agents, random UUIDs and hex refs",
        nspans, nreq, REQ_SPANS, TRACE_LEN, NSVC, SPAN_NATTRS, (double)req_bytes / nreq,
        (double)req_bytes / (double)nspans, gen_s, dir);

    /* a check: the first request decodes to what was made */
    {
        struct sn_span_batch b = {0};
        char why[256] = "";
        int rc = sn_otlp_decode(SN_OTLP_PROTO, reqs[0].body, reqs[0].len, &b, why, sizeof(why));
        if (rc < 0 || b.n != REQ_SPANS || b.rejected || b.spans[0].nattrs != SPAN_NATTRS)
            fprintf(stderr,
                    "bench_trace: request 0 decodes to %zu spans (%d: %s; rejected %" PRIu64
                    " %s)\n",
                    b.n, rc, why, b.rejected, b.reject_why);
        sn_span_batch_fini(&b);
    }

    /* ---- ingest: Sonde --------------------------------------------------------------------- */
    struct sn_env *env, *renv;
    struct sn_span_store *ss;
    struct ingest in;
    char why[256] = "";
    int rc;
    open_store(store_dir, 0, &env, &ss);
    double mb0, ms0, mb1, ms1;
    bench_machine_cpu_s(&mb0, &ms0);
    ingest_run(env, ss, reqs, 0, nreq, &in);
    bench_machine_cpu_s(&mb1, &ms1);
    double wall = in.wall, cpu = in.cpu, dec_cpu = in.dec_cpu, put_cpu = in.put_cpu;
    double writer_cpu = in.cpu - in.main_cpu;
    uint64_t commits = in.commits;
    int busy = in.busy;
    struct sn_span_store_stats st;
    sn_span_store_stats(ss, &st);
    if (st.spans_written != (uint64_t)nspans)
        fprintf(stderr,
                "bench_trace: the store wrote %" PRIu64 " spans of the %ld put (%+" PRId64
                "): a request queued while the writer was writing went into that transaction "
                "and the next one too?\n",
                st.spans_written, nspans, (int64_t)(st.spans_written - (uint64_t)nspans));

    /* ---- ingest: the baseline (bodies as LMDB values, the same number of commits) ---------- */
    if ((rc = sn_env_open(raw_dir, 0, &renv, why, sizeof(why))) < 0) {
        fprintf(stderr, "bench_trace: %s\n", why);
        return 1;
    }
    /* the store's commits include its maintenance (one a second at most) */
    double ncommits = (double)commits - ceil(wall);
    int group = ncommits >= 1 ? (int)lround(nreq / ncommits) : nreq;
    if (group < 1)
        group = 1;
    struct raw_put rp = {.reqs = reqs};
    double rwall = bench_mono_s(), rcpu = bench_self_cpu_s();
    for (int r = 0; r < nreq; r += group) {
        rp.from = r;
        rp.to = r + group < nreq ? r + group : nreq;
        if ((rc = sn_env_write(renv, raw_write, &rp)) < 0)
            die("sn_env_write (raw)", rc);
        rp.opened = true;
    }
    rwall = bench_mono_s() - rwall;
    rcpu = bench_self_cpu_s() - rcpu;

    double per_cpu = (double)nspans / cpu, base_per_cpu = (double)nspans / rcpu;
    printf("%-50s %12s %-9s %12s %8s %11s %7s\n", "figure", "sonde", "unit", "baseline", "ratio",
           "goal", "");
    report("ingest: spans per CPU-second (process)", per_cpu, "spans/s", base_per_cpu, "s",
           GOAL_INGEST, true);
    report("ingest: the same vs the OTel Collector anchor", per_cpu, "spans/s", OTELCOL_PER_CORE,
           "s", 0, true);
    report("ingest: spans per second (wall, 1 client thread)", nspans / wall, "spans/s",
           nspans / rwall, "s", 0, true);
    report("ingest: CPU per span, all", cpu / nspans * 1e6, "us", rcpu / nspans * 1e6, "b", 0,
           false);
    report("ingest:   decode (sn_otlp_decode)", dec_cpu / nspans * 1e6, "us", NAN, "", 0, false);
    report("ingest:   put (sort, blocks, zstd, index)", put_cpu / nspans * 1e6, "us", NAN, "", 0,
           false);
    report("ingest:   writer thread (LMDB commits)", writer_cpu / nspans * 1e6, "us", NAN, "", 0,
           false);
    report("ingest: decode alone, spans per CPU-second", nspans / dec_cpu, "spans/s", NAN, "", 0,
           true);
    report("ingest: store alone (put + writer), spans/CPU-s", nspans / (cpu - dec_cpu), "spans/s",
           NAN, "", 0, true);
    printf("  (Sonde: %" PRIu64 " write transactions (%d requests each on average, with the "
           "maintenance's), %d puts refused while the queue was full, %.1f s wall; baseline: "
           "%d requests a transaction, %.2f s wall; anchor: OpenTelemetry Collector v0.1.3 "
           "docs/performance.md, OTLP, 1 CPU, 20 attributes a span: ~12k spans/s sustained, via "
           "../shared/ref/tracing.md section 4)\n",
           commits, ncommits >= 1 ? (int)lround(nreq / ncommits) : nreq, busy, wall, group, rwall);
    printf("  (meanwhile, during Sonde's ingest: other processes used %.1f CPU-s of the machine's "
           "%.1f (%ld CPUs x %.1f s), the hypervisor stole %.1f: a busy neighbour slows the "
           "wall-clock figures more than the CPU ones)\n",
           mb1 - mb0 - cpu, wall * (double)sysconf(_SC_NPROCESSORS_ONLN),
           sysconf(_SC_NPROCESSORS_ONLN), wall, ms1 - ms0);

    /* ---- size -------------------------------------------------------------------------------- */
    static const char *const span_dbs[] = {"tblocks", "ttrace", "tspans", "tnames", "tpairs", NULL};
    uint64_t each[5];
    uint64_t stat_used = db_bytes(env, span_dbs, each);
    uint64_t used = env_bytes(env), raw_used = env_bytes(renv); /* only these databases in each */
    double bps = (double)used / nspans;
    /* a second floor: each request body deflated whole (level 6), on every 10th request */
    uint64_t zin = 0, zout = 0;
    for (int r = 0; r < nreq; r += 10) {
        uLongf zl = compressBound((uLong)reqs[r].len);
        unsigned char *z = malloc(zl);
        if (!z || compress2(z, &zl, reqs[r].body, (uLong)reqs[r].len, 6) != Z_OK)
            die("compress2", -ENOMEM);
        zin += reqs[r].len;
        zout += zl;
        free(z);
    }
    double zbps = (double)req_bytes / nspans * (double)zout / (double)zin;
    report("size: bytes per span stored (env's pages in use)", bps, "B", (double)req_bytes / nspans,
           "b", GOAL_SPAN_B, false);
    report("size: the same vs the baseline's pages per span", bps, "B", (double)raw_used / nspans,
           "b", 0, false);
    report("size: the same vs the request deflated whole", bps, "B", zbps, "b", 0, false);
    report("size:   tblocks' chunks alone (no page slack)", (double)st.bytes_written / nspans, "B",
           NAN, "", 0, false);
    report("size:   what mdb_stat() counts (store's used_bytes)", (double)stat_used / nspans, "B",
           NAN, "", 0, false);
    printf("  (by mdb_stat: tblocks %.1f B, ttrace %.1f B, tspans %.1f B, tnames+tpairs %.2f B a "
           "span; the duplicates' sub-databases of ttrace, %.1f B a span, are not in "
           "mdb_stat's count; %" PRIu64 " blocks, %.0f B of chunk each on average (a chunk: a "
           "request's blocks, trace ids and tags' filters, 16 B prefix included) for %.1f spans; "
           "baselines: the raw protobuf bytes a span, the baseline's LMDB pages a "
           "span, zlib compress2() level 6 of whole request bodies)\n",
           (double)each[0] / nspans, (double)each[1] / nspans, (double)each[2] / nspans,
           (double)(each[3] + each[4]) / nspans, ((double)used - (double)stat_used) / nspans,
           st.blocks_written,
           st.blocks_written ? (double)st.bytes_written / (double)st.blocks_written : 0,
           st.blocks_written ? (double)st.spans_written / (double)st.blocks_written : 0);

    db_fill(env, "tblocks", (double)nspans);
    db_fill(env, "ttrace", (double)nspans);
    db_fill(env, "tspans", (double)nspans);

    /* ---- what if: the blocks compressed at zstd level 3 (sn_span_store_opts.level), on a part
     * --------
     */
    {
        int part = nreq / 5 > 20 ? nreq / 5 : (nreq < 20 ? nreq : 20);
        struct sn_env *e1;
        struct sn_span_store *s1;
        struct ingest i1;
        char d1[600];
        snprintf(d1, sizeof(d1), "%s/level3", dir);
        open_store(d1, 3, &e1, &s1);
        ingest_run(e1, s1, reqs, 0, part, &i1);
        double n1 = (double)part * REQ_SPANS;
        uint64_t u1 = env_bytes(e1);
        report("what if level 3: spans per CPU-second (process)", n1 / i1.cpu, "spans/s", per_cpu,
               "s", GOAL_INGEST, true);
        report("what if level 3:   put, CPU per span", i1.put_cpu / n1 * 1e6, "us",
               put_cpu / nspans * 1e6, "b", 0, false);
        report("what if level 3: bytes per span stored", (double)u1 / n1, "B", bps, "b",
               GOAL_SPAN_B, false);
        printf("  (the first %d requests into a store opened with .level = 3; baseline column: the "
               "store above, at the default level %d)\n",
               part, SN_SPAN_STORE_LEVEL);
        sn_span_store_close(s1);
        sn_env_close(e1);
    }

    /* ---- query: a trace by id ------------------------------------------------------------- */
    double *lat = malloc((size_t)(nids > nfinds ? nids : nfinds) * sizeof(double));
    int wrong = 0;
    for (int i = 0; i < nids; i++) {
        const uint8_t *id = ids[bench_xrand() % (uint64_t)ntraces];
        struct sn_span_batch b = {0};
        double t = bench_mono_ns();
        rc = sn_span_store_trace(ss, id, &b);
        lat[i] = (bench_mono_ns() - t) / 1e3;
        if (rc < 0 || b.n != TRACE_LEN)
            wrong++;
        sn_span_batch_fini(&b);
    }
    double tr50 = bench_pct_sort(lat, (size_t)nids, 0.5), tr99 = bench_pct(lat, (size_t)nids, 0.99);
    /* the baseline: one scan of every block for one id */
    struct scan_result sr;
    double scan_id = bench_mono_ms();
    scan_all(env, NULL, ids[ntraces / 2], &sr);
    scan_id = bench_mono_ms() - scan_id;
    report("query: a trace by id, p50", tr50 / 1e3, "ms", scan_id, "b", GOAL_TRACE_MS, false);
    report("query: a trace by id, p99", tr99 / 1e3, "ms", scan_id, "b", GOAL_TRACE_MS, false);
    if (wrong || sr.n != 1)
        fprintf(stderr,
                "bench_trace: %d lookups of %d gave other than the trace's %d spans; the scan "
                "found %zu\n",
                wrong, nids, TRACE_LEN, sr.n);

    /* ---- query: Zipkin's /api/v2/traces ----------------------------------------------------- */
    /* the status code under the key each profile's data has it */
    char aq[64], aq_what[96], absent[] = "http.status_code=599";
    snprintf(aq, sizeof(aq), "%s=500",
             issue_data ? "http.response.status_code" : "http.status_code");
    snprintf(aq_what, sizeof(aq_what), "+ annotationQuery %s", aq);
    struct {
        const char *what;
        struct sn_trace_query q;
    } kinds[5] = {
        {"serviceName=checkout limit=10", {.service = "checkout"}},
        {"+ spanName (one route)",
         {.service = "checkout", .span_name = "post /api/checkout/orders/{id}"}},
        {"+ minDuration=100ms", {.service = "checkout", .min_us = 100000}},
        {aq_what, {.service = "checkout"}},
        {"+ annotationQuery of a tag no span has", {.service = "checkout"}},
    };
    if ((rc = sn_trace_query_terms(&kinds[3].q, aq)) < 0 ||
        (rc = sn_trace_query_terms(&kinds[4].q, absent)) < 0)
        die("sn_trace_query_terms", rc);
    uint64_t end_ms = end_ns / 1000000;
    for (int k = 0; k < 5; k++) {
        struct sn_trace_query *q = &kinds[k].q;
        q->limit = 10;
        q->lookback_ms = 3600000;
        q->end_ms = end_ms;
        size_t found = 0, common = 0, scan_n = 0;
        for (int i = 0; i < nfinds; i++) {
            struct sn_span_batch *tr;
            size_t n;
            double t = bench_mono_ms();
            if ((rc = sn_trace_find(ss, q, &tr, &n)) < 0)
                die("sn_trace_find", rc);
            lat[i] = bench_mono_ms() - t;
            found = n;
            if (i == 0) { /* how much of the answer is the scan's (the newest by timestamp) */
                scan_all(env, q, NULL, &sr);
                common = 0;
                for (size_t j = 0; j < n; j++)
                    for (size_t m = 0; m < sr.n; m++)
                        if (!memcmp(tr[j].spans[0].trace_id, sr.top[m].id, 16)) {
                            common++;
                            break;
                        }
                scan_n = sr.n;
            }
            sn_trace_list_free(tr, n);
        }
        double f50 = bench_pct_sort(lat, (size_t)nfinds, 0.5),
               f99 = bench_pct(lat, (size_t)nfinds, 0.99);
        double *sl = calloc((size_t)nscans, sizeof(double));
        for (int i = 0; i < nscans; i++) {
            double t = bench_mono_ms();
            scan_all(env, q, NULL, &sr);
            sl[i] = bench_mono_ms() - t;
        }
        double s50 = bench_pct_sort(sl, (size_t)nscans, 0.5);
        free(sl);
        char what[96];
        snprintf(what, sizeof(what), "find: %s, p50", kinds[k].what);
        report(what, f50, "ms", s50, "b", GOAL_FIND_MS, false);
        snprintf(what, sizeof(what), "find: %s, p99", kinds[k].what);
        report(what, f99, "ms", s50, "b", GOAL_FIND_MS, false);
        printf("  (%zu traces found, %zu of them among the scan's %zu newest by trace timestamp; "
               "the scan read %" PRIu64 " blocks, %" PRIu64 " spans)\n",
               found, common, scan_n, sr.blocks, sr.spans);
    }

    /* ---- over HTTP: `sonde serve --no-agent`, POST /v1/traces from client threads ---------- */
    int nhttp = bench_env_int("TRACE_HTTP", nreq / 2), nclients = bench_env_int("TRACE_CLIENTS", 2);
    if (nhttp > nreq)
        nhttp = nreq;
    if (nclients < 1)
        nclients = 1;
    if (nclients > 64)
        nclients = 64;
    if (nhttp > 0) {
        static const char *const extra[] = {"--no-agent", NULL};
        struct th_serve sv;
        setenv("SN_TEST_OUT", dir, 1); /* the server's data directory: under ours */
        if (th_serve_start(SONDE_BIN, extra, NULL, &sv) != 0) {
            printf("over HTTP: not measured (the server did not start)\n");
        } else {
            struct http_run h = {.port = sv.port, .nreq = nhttp, .reqs = reqs};
            h.lat = calloc((size_t)nhttp, sizeof(double));
            pthread_t th[64];
            double idle0 = bench_proc_cpu_s(sv.pid);
            th_sleep_ms(500);
            double idle = (bench_proc_cpu_s(sv.pid) - idle0) / 0.5; /* CPU-s per s, idle */
            double c0 = bench_proc_cpu_s(sv.pid), me0 = bench_self_cpu_s(), w0 = bench_mono_s();
            double hb0, hs0, hb1, hs1;
            bench_machine_cpu_s(&hb0, &hs0);
            for (int i = 0; i < nclients; i++)
                pthread_create(&th[i], NULL, http_client, &h);
            for (int i = 0; i < nclients; i++)
                pthread_join(th[i], NULL);
            double hw = bench_mono_s() - w0, me = bench_self_cpu_s() - me0;
            double c1 = settle_cpu(sv.pid);
            double settled = bench_mono_s() - w0;
            bench_machine_cpu_s(&hb1, &hs1);
            double scpu = c1 - c0 - idle * settled;
            double hn = (double)atomic_load(&h.ok) * REQ_SPANS;
            double l50 = bench_pct_sort(h.lat, (size_t)nhttp, 0.5),
                   l99 = bench_pct(h.lat, (size_t)nhttp, 0.99);
            report("http: spans per second (wall)", hn / hw, "spans/s", NAN, "", 0, true);
            report("http: spans per server CPU-second", hn / scpu, "spans/s", per_cpu, "s",
                   GOAL_INGEST, true);
            /* the same as a cost, beside the in-process one (decode + put + writer): what the
             * server adds is HTTP, the span metrics and the base, the sink */
            report("http: server CPU per span", scpu / hn * 1e6, "us", 1e6 / per_cpu, "b", 0,
                   false);
            report("http: POST /v1/traces (500 spans), p50", l50, "ms", NAN, "", 0, false);
            report("http: POST /v1/traces (500 spans), p99", l99, "ms", NAN, "", 0, false);
            printf("  (%d requests from %d client threads, one connection each, %d answered 200, "
                   "%d 503/429 retried, %d failed; server CPU %.2f s (utime+stime from /proc, "
                   "until idle, minus %.3f CPU-s/s idle), this bench %.2f s; baseline column: "
                   "the in-process ingest above; other processes used %.1f CPU-s of the "
                   "machine's %.1f meanwhile, %.1f stolen)\n",
                   nhttp, nclients, atomic_load(&h.ok), atomic_load(&h.busy),
                   atomic_load(&h.failed), scpu, idle, me, hb1 - hb0 - (c1 - c0) - me,
                   settled * (double)sysconf(_SC_NPROCESSORS_ONLN), hs1 - hs0);
            free(h.lat);
            th_serve_stop(&sv);
        }
    }

    printf(
        "ratio: sonde / baseline for spans/s, baseline / sonde for us, B and ms: above 1, Sonde "
        "does better than its baseline. Query baseline: every block read (sn_block_decode), each "
        "trace tested (sn_trace_query_test), no index; the median of TRACE_SCANS scans, in both "
        "rows. Goals are reported, never asserted.\n");
    free(lat);
    sn_span_store_close(ss);
    sn_env_close(env);
    sn_env_close(renv);
    for (int r = 0; r < nreq; r++)
        free(reqs[r].body);
    free(reqs);
    free(ids);
    bench_rmtree(dir);
    return 0;
}
