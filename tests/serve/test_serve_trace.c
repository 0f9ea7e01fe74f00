/*
 * Spans over HTTP against real `sonde serve --no-agent` processes (src/api/trace.c): OTLP/HTTP
 * (POST /v1/traces) and Zipkin v2 (POST /api/v2/spans) ingest, Zipkin's query API, the
 * trace.spans metric, the span-only listeners, tenants, a restart, retention.
 *
 * Covered (../shared/ref/tracing.md §1.2, §1.3, §2.3):
 *   - round trips, exact: OTLP protobuf, OTLP JSON, Zipkin JSON, Zipkin proto3, each plain,
 *     gzipped and chunked (no Content-Length), read back through /api/v2/trace/{id} and
 *     compared as JSON with what Zipkin's writer must give (ids, parentId, name, kind, µs
 *     times, endpoints, tags, annotations); the OTLP reply in the request's encoding; a 64-bit
 *     trace id found by 16 and by 32 hex digits; Content-Type parameters; fractional µs;
 *   - bad input of every kind, with status and exact message, and nothing of a refused
 *     request stored (its trace ids 404, /api/v2/services exactly the good services, once a
 *     later request is visible); a 1 MB attribute refuses that span only (partialSuccess);
 *   - the query API: filters (service, span name, remote service, annotationQuery, min/max
 *     duration, endTs/lookback), newest first, limit (by trace timestamp), spans longer than
 *     2^32 µs, Zipkin's error messages; trace/{id}; traceMany; names; /zipkin/ base path;
 *   - trace.spans instrumentations: exact counts per key and latency bucket, per second a span
 *     ended in, predicates on status and kind, host from host.name, refused spans not counted,
 *     late and timestamp-less spans, a PNG heatmap, running again after a restart;
 *   - the base of trace.spans: instrumentations created after the spans (by service, by name
 *     of ERROR spans, a persist-data one by host of CLIENT spans) answer for them exactly: raw
 *     values, heatmap pixels, history older than their memory at the raw and 1-minute tiers,
 *     a predicate on a 200-byte name; 1000 requests around a create counted once; all again
 *     after a restart, and an instrumentation created after it; /metrics counts the base;
 *   - --otlp-listen / --zipkin-listen answer the span routes only (everything else 404);
 *   - concurrent ingest stores each acknowledged request exactly once; with --trace-queue 1
 *     a full queue answers 503 + Retry-After: 1 and stores nothing of that request;
 *   - with a tenants file the span routes need the operator's token (401 / 403 otherwise);
 *   - spans and their indexes survive SIGTERM (also right after a burst) and a restart;
 *   - --trace-retention under a minute is a usage error (exit 2); a trace older than the
 *     retention goes; a server without spans answers empty lists.
 *
 * The requests are built by hand here (protobuf with sn_pbw_*, JSON as text), not with the
 * server's encoders, so that what is checked is the wire format. Ingest is asynchronous: a
 * trace is polled for (bounded: 50 tries, 100 ms apart). Searches that find nothing run at
 * the end of their server's cases (a sanitized server has died of them).
 *
 * Usage: test_serve_trace SONDE [CASE-FILTER].
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "http.h"
#include "t.h"
#include "trace/pb.h"

static const char *sonde;

#define POLL_TRIES 50
#define POLL_MS    100

/* ---- requests -------------------------------------------------------------------------------- */

enum framing { PLAIN, GZIP, CHUNKED };
static const char *const framing_name[] = {"plain", "gzip", "chunked"};

/* gzip of in[0..n) (zlib, a gzip member); malloc'd, *out_len bytes. */
static unsigned char *gzip_of(const void *in, size_t n, size_t *out_len)
{
    z_stream z = {0};
    if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    size_t cap = deflateBound(&z, (uLong)n) + 64;
    unsigned char *out = malloc(cap);
    if (!out) {
        deflateEnd(&z);
        return NULL;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    *out_len = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

/* The chunked form of in[0..n): chunks of at most 700 bytes, then the last chunk. */
static char *chunk_of(const void *in, size_t n, size_t *out_len)
{
    size_t cap = n + (n / 700 + 2) * 16 + 16, at = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    for (size_t off = 0; off < n; off += 700) {
        size_t k = n - off < 700 ? n - off : 700;
        at += (size_t)snprintf(out + at, cap - at, "%zx\r\n", k);
        memcpy(out + at, (const char *)in + off, k);
        at += k;
        memcpy(out + at, "\r\n", 2);
        at += 2;
    }
    memcpy(out + at, "0\r\n\r\n", 5);
    *out_len = at + 5;
    return out;
}

/* POST body to path with Content-Type ctype (NULL: none) and Content-Encoding cenc (NULL:
 * none), framed as f (GZIP: the body is gzipped here and sent with Content-Encoding: gzip). */
static int post(int port, const char *path, const char *ctype, const char *cenc, enum framing f,
                const void *body, size_t len, struct th_resp *r)
{
    char ct[200], ce[200];
    const char *h[4] = {NULL, NULL, NULL, NULL};
    int nh = 0;
    unsigned char *owned = NULL;
    if (ctype) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
        h[nh++] = ct;
    }
    if (f == GZIP) {
        owned = gzip_of(body, len, &len);
        if (!owned)
            return -ENOMEM;
        body = owned;
        cenc = "gzip";
    } else if (f == CHUNKED) {
        owned = (unsigned char *)chunk_of(body, len, &len);
        if (!owned)
            return -ENOMEM;
        body = owned;
        h[nh++] = "Transfer-Encoding: chunked";
    }
    if (cenc) {
        snprintf(ce, sizeof(ce), "Content-Encoding: %s", cenc);
        h[nh++] = ce;
    }
    int rc = th_request(port, "POST", path, h, body, len, 60000, r);
    free(owned);
    return rc;
}

/* GET path (printf) parsed as JSON (NULL when not JSON); *st the status; *body (when not NULL)
 * a copy of the body text. */
__attribute__((format(printf, 4, 5))) static json_t *jget(int port, int *st, char **body,
                                                          const char *fmt, ...)
{
    char path[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    struct th_resp r = {0};
    json_t *j = NULL;
    int rc = th_get(port, path, &r);
    *st = rc == 0 ? r.status : 0;
    if (rc == 0 && r.body && r.len)
        j = json_loadb(r.body, r.len, JSON_DECODE_ANY, NULL);
    if (body)
        *body = strdup(rc == 0 && r.body ? r.body : "");
    th_resp_free(&r);
    return j;
}

/* The text reply of GET path, with its status checked; NULL on a socket error. */
static char *get_text(int port, const char *path, int *st)
{
    char *b = NULL;
    json_decref(jget(port, st, &b, "%s", path));
    return b;
}

static void check_text(int port, const char *path, int want_st, const char *want_body)
{
    int st;
    char *b = get_text(port, path, &st);
    t_note("GET %s -> %d %s", path, st, b ? b : "(null)");
    T_EQ(st, want_st);
    T_STR(b, want_body);
    free(b);
}

/* A trace read back: waits until /api/v2/trace/{id} has n spans (bounded); the spans (JSON
 * array) or NULL. */
static json_t *wait_trace(int port, const char *id, size_t n)
{
    json_t *j = NULL;
    int st = 0;
    for (int i = 0; i < POLL_TRIES; i++) {
        j = jget(port, &st, NULL, "/api/v2/trace/%s", id);
        if (st == 200 && json_array_size(j) >= n)
            return j;
        json_decref(j);
        j = NULL;
        th_sleep_ms(POLL_MS);
    }
    t_note("trace %s: %d after %d tries", id, st, POLL_TRIES);
    return NULL;
}

/* The span with id among the spans of array a. */
static json_t *span_by_id(json_t *a, const char *id)
{
    size_t i;
    json_t *s;
    json_array_foreach(a, i, s)
    {
        if (json_is_string(json_object_get(s, "id")) &&
            strcmp(json_string_value(json_object_get(s, "id")), id) == 0)
            return s;
    }
    return NULL;
}

/* Each span of want (JSON text, an array) equals the span with its id in got, and got has no
 * other. */
static void check_spans(json_t *got, const char *want_text)
{
    json_error_t e;
    json_t *want = json_loads(want_text, 0, &e);
    T_REQUIRE(want != NULL);
    if (json_array_size(got) != json_array_size(want)) {
        char *all = json_dumps(got, JSON_COMPACT);
        t_note("got %zu spans, want %zu: %.6000s", json_array_size(got), json_array_size(want),
               all ? all : "(null)");
        free(all);
    }
    T_EQU(json_array_size(got), json_array_size(want));
    size_t i;
    json_t *w;
    json_array_foreach(want, i, w)
    {
        const char *id = json_string_value(json_object_get(w, "id"));
        json_t *g = span_by_id(got, id);
        char *gs = g ? json_dumps(g, JSON_SORT_KEYS) : NULL;
        char *ws = json_dumps(w, JSON_SORT_KEYS);
        t_note("span %s\n  got  %s\n  want %s", id, gs ? gs : "(none)", ws);
        T_OK(g && json_equal(g, w));
        free(gs);
        free(ws);
    }
    json_decref(want);
}

/* A status code: the trace id / service is absent. */
static void check_no_trace(int port, const char *id)
{
    int st;
    char *b = NULL;
    json_decref(jget(port, &st, &b, "/api/v2/trace/%s", id));
    t_note("trace %s: %d %s", id, st, b);
    T_EQ(st, 404);
    free(b);
}

static char *services(int port)
{
    int st;
    char *b = get_text(port, "/api/v2/services", &st);
    T_EQ(st, 200);
    return b;
}

/* ---- protobuf by hand (tracing.md §1.1, §2.6) ------------------------------------------------ */

static size_t hex_bytes(const char *hex, uint8_t *out)
{
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
    return n;
}

static void pb_id(struct sn_pbw *w, uint32_t f, const char *hex)
{
    uint8_t b[64];
    sn_pbw_bytes(w, f, b, hex_bytes(hex, b));
}

static void pb_str(struct sn_pbw *w, uint32_t f, const char *s)
{
    sn_pbw_bytes(w, f, s, strlen(s));
}

/* OTLP KeyValue field f of key with an AnyValue: string (t 's'), int ('i'), double ('d'),
 * bool ('b'). */
static void pb_kv(struct sn_pbw *w, uint32_t f, const char *key, char t, const char *s, int64_t i,
                  double d)
{
    size_t m = sn_pbw_begin(w, f);
    pb_str(w, 1, key);
    size_t a = sn_pbw_begin(w, 2);
    if (t == 's')
        pb_str(w, 1, s);
    else if (t == 'b')
        sn_pbw_varint(w, 2, (uint64_t)i);
    else if (t == 'i')
        sn_pbw_varint(w, 3, (uint64_t)i);
    else
        sn_pbw_double(w, 4, d);
    sn_pbw_end(w, a);
    sn_pbw_end(w, m);
}

/* Appends bytes as they are (a field the writer would not write). */
static void pb_raw(struct sn_pbw *w, const void *p, size_t n)
{
    if (w->len + n > w->cap) {
        uint8_t *b = realloc(w->buf, w->len + n);
        if (!b)
            abort();
        w->buf = b;
        w->cap = w->len + n;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

/* Reads a message of an integer (field 1, varint) and a text (field 2) into *num and msg: a
 * google.rpc.Status (code, message), and ExportTracePartialSuccess (rejected_spans,
 * error_message) alike. */
static bool pb_num_text(const char *body, size_t len, int64_t *num, char *msg, size_t msglen)
{
    struct sn_pb r = sn_pb_of(body, len);
    uint32_t f;
    int wt, rc;
    *num = 0;
    msg[0] = '\0';
    while ((rc = sn_pb_next(&r, &f, &wt)) == 1) {
        if (f == 1 && wt == SN_PB_VARINT) {
            uint64_t v;
            if (sn_pb_varint(&r, &v) < 0)
                return false;
            *num = (int64_t)v;
        } else if (f == 2 && wt == SN_PB_LEN) {
            const uint8_t *p;
            size_t n;
            if (sn_pb_bytes(&r, &p, &n) < 0)
                return false;
            snprintf(msg, msglen, "%.*s", (int)n, (const char *)p);
        } else if (sn_pb_skip(&r, wt) < 0)
            return false;
    }
    return rc == 0;
}

/* Reads a google.rpc.Status (protobuf) into code and msg. */
static bool pb_status(const char *body, size_t len, int64_t *code, char *msg, size_t msglen)
{
    return pb_num_text(body, len, code, msg, msglen);
}

/* Reads an ExportTraceServiceResponse (protobuf): partial_success's fields (*rejected -1
 * without one). */
static bool pb_export_resp(const char *body, size_t len, int64_t *rejected, char *msg,
                           size_t msglen)
{
    struct sn_pb r = sn_pb_of(body, len);
    uint32_t f;
    int wt, rc;
    *rejected = -1;
    msg[0] = '\0';
    while ((rc = sn_pb_next(&r, &f, &wt)) == 1) {
        if (f == 1 && wt == SN_PB_LEN) {
            const uint8_t *p;
            size_t n;
            if (sn_pb_bytes(&r, &p, &n) < 0 ||
                !pb_num_text((const char *)p, n, rejected, msg, msglen))
                return false;
        } else if (sn_pb_skip(&r, wt) < 0)
            return false;
    }
    return rc == 0;
}

/* ---- the reference traces -------------------------------------------------------------------- */

/* Unix nanoseconds of a whole second some seconds ago. */
static uint64_t recent_ns(int ago_s)
{
    return ((uint64_t)time(NULL) - (uint64_t)ago_s) * 1000000000ULL;
}

/* Ids of round trip k: trace id (32 hex), root and child span ids. */
struct ids {
    char tid[33], root[17], child[17];
};

static void ids_of(unsigned k, unsigned salt, struct ids *id)
{
    snprintf(id->tid, sizeof(id->tid), "5af7183fb1d4cf5f%08x%08x", salt, k + 1);
    snprintf(id->root, sizeof(id->root), "%08x%08x", 0x352bff9au, k + 1);
    snprintf(id->child, sizeof(id->child), "%08x%08x", 0x6b221d5bu, k + 1);
}

/*
 * The OTLP trace: service "frontend" (resource), scope "sonde-test" 1.2.3;
 *   root: SERVER "GET /api", start base+123456789 ns, 1500789 ns, attributes http.method "GET",
 *         http.status_code 200, ratio 0.25, cached true; event "cache miss" at start+1 ms;
 *         status OK;
 *   child: CLIENT "SELECT users", parent root, start base+200000000 ns, 800000 ns, attributes
 *         db.system "postgresql", peer.service "postgres", network.peer.address "10.0.0.7",
 *         server.port 5432; status ERROR "timeout".
 */
static void otlp_proto(const struct ids *id, uint64_t base, struct sn_pbw *w)
{
    memset(w, 0, sizeof(*w));
    size_t rs = sn_pbw_begin(w, 1);
    size_t res = sn_pbw_begin(w, 1);
    pb_kv(w, 1, "service.name", 's', "frontend", 0, 0);
    sn_pbw_end(w, res);
    size_t ss = sn_pbw_begin(w, 2);
    size_t sc = sn_pbw_begin(w, 1);
    pb_str(w, 1, "sonde-test");
    pb_str(w, 2, "1.2.3");
    sn_pbw_end(w, sc);

    size_t sp = sn_pbw_begin(w, 2);
    pb_id(w, 1, id->tid);
    pb_id(w, 2, id->root);
    pb_str(w, 5, "GET /api");
    sn_pbw_varint(w, 6, 2);
    sn_pbw_fixed64(w, 7, base + 123456789);
    sn_pbw_fixed64(w, 8, base + 123456789 + 1500789);
    pb_kv(w, 9, "http.method", 's', "GET", 0, 0);
    pb_kv(w, 9, "http.status_code", 'i', NULL, 200, 0);
    pb_kv(w, 9, "ratio", 'd', NULL, 0, 0.25);
    pb_kv(w, 9, "cached", 'b', NULL, 1, 0);
    size_t ev = sn_pbw_begin(w, 11);
    sn_pbw_fixed64(w, 1, base + 124456789);
    pb_str(w, 2, "cache miss");
    sn_pbw_end(w, ev);
    size_t st = sn_pbw_begin(w, 15);
    sn_pbw_varint(w, 3, 1);
    sn_pbw_end(w, st);
    sn_pbw_end(w, sp);

    sp = sn_pbw_begin(w, 2);
    pb_id(w, 1, id->tid);
    pb_id(w, 2, id->child);
    pb_id(w, 4, id->root);
    pb_str(w, 5, "SELECT users");
    sn_pbw_varint(w, 6, 3);
    sn_pbw_fixed64(w, 7, base + 200000000);
    sn_pbw_fixed64(w, 8, base + 200800000);
    pb_kv(w, 9, "db.system", 's', "postgresql", 0, 0);
    pb_kv(w, 9, "peer.service", 's', "postgres", 0, 0);
    pb_kv(w, 9, "network.peer.address", 's', "10.0.0.7", 0, 0);
    pb_kv(w, 9, "server.port", 'i', NULL, 5432, 0);
    st = sn_pbw_begin(w, 15);
    pb_str(w, 2, "timeout");
    sn_pbw_varint(w, 3, 2);
    sn_pbw_end(w, st);
    sn_pbw_end(w, sp);

    sn_pbw_end(w, ss);
    sn_pbw_end(w, rs);
}

/* The same trace in OTLP JSON (ids upper-case in the root, times as strings and numbers). */
static char *otlp_json(const struct ids *id, uint64_t base)
{
    char *s = malloc(8192), up[40];
    snprintf(up, sizeof(up), "%s", id->tid);
    for (char *p = up; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    snprintf(
        s, 8192,
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
        "{\"stringValue\":\"frontend\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"sonde-test\","
        "\"version\":\"1.2.3\"},\"spans\":["
        "{\"traceId\":\"%s\",\"spanId\":\"%s\",\"name\":\"GET /api\",\"kind\":2,"
        "\"startTimeUnixNano\":\"%" PRIu64 "\",\"endTimeUnixNano\":\"%" PRIu64 "\","
        "\"attributes\":[{\"key\":\"http.method\",\"value\":{\"stringValue\":\"GET\"}},"
        "{\"key\":\"http.status_code\",\"value\":{\"intValue\":200}},"
        "{\"key\":\"ratio\",\"value\":{\"doubleValue\":0.25}},"
        "{\"key\":\"cached\",\"value\":{\"boolValue\":true}}],"
        "\"events\":[{\"timeUnixNano\":\"%" PRIu64 "\",\"name\":\"cache miss\"}],"
        "\"status\":{\"code\":1}},"
        "{\"traceId\":\"%s\",\"spanId\":\"%s\",\"parentSpanId\":\"%s\",\"name\":\"SELECT "
        "users\",\"kind\":3,\"startTimeUnixNano\":%" PRIu64 ",\"endTimeUnixNano\":\"%" PRIu64
        "\",\"attributes\":[{\"key\":\"db.system\",\"value\":{\"stringValue\":\"postgresql\"}},"
        "{\"key\":\"peer.service\",\"value\":{\"stringValue\":\"postgres\"}},"
        "{\"key\":\"network.peer.address\",\"value\":{\"stringValue\":\"10.0.0.7\"}},"
        "{\"key\":\"server.port\",\"value\":{\"intValue\":\"5432\"}}],"
        "\"status\":{\"code\":2,\"message\":\"timeout\"}}]}]}]}",
        up, id->root, base + 123456789, base + 123456789 + 1500789, base + 124456789, id->tid,
        id->child, id->root, base + 200000000, base + 200800000);
    return s;
}

/* What Zipkin's writer gives for the OTLP trace (§2.5). */
static char *otlp_expected(const struct ids *id, uint64_t base)
{
    char *s = malloc(8192);
    uint64_t us = base / 1000;
    snprintf(
        s, 8192,
        "[{\"traceId\":\"%s\",\"id\":\"%s\",\"kind\":\"SERVER\",\"name\":\"get /api\","
        "\"timestamp\":%" PRIu64 ",\"duration\":1500,\"localEndpoint\":{\"serviceName\":"
        "\"frontend\"},\"annotations\":[{\"timestamp\":%" PRIu64 ",\"value\":\"cache miss\"}],"
        "\"tags\":{\"http.method\":\"GET\",\"http.status_code\":\"200\",\"ratio\":\"0.25\","
        "\"cached\":\"true\",\"otel.scope.name\":\"sonde-test\",\"otel.scope.version\":\"1.2.3\","
        "\"otel.status_code\":\"OK\"}},"
        "{\"traceId\":\"%s\",\"parentId\":\"%s\",\"id\":\"%s\",\"kind\":\"CLIENT\",\"name\":"
        "\"select users\",\"timestamp\":%" PRIu64 ",\"duration\":800,\"localEndpoint\":"
        "{\"serviceName\":\"frontend\"},\"remoteEndpoint\":{\"serviceName\":\"postgres\","
        "\"ipv4\":\"10.0.0.7\",\"port\":5432},\"tags\":{\"db.system\":\"postgresql\","
        "\"peer.service\":\"postgres\",\"network.peer.address\":\"10.0.0.7\",\"server.port\":"
        "\"5432\",\"otel.scope.name\":\"sonde-test\",\"otel.scope.version\":\"1.2.3\","
        "\"otel.status_code\":\"ERROR\",\"error\":\"timeout\"}}]",
        id->tid, id->root, us + 123456, us + 124456, id->tid, id->root, id->child, us + 200000);
    return s;
}

/*
 * The Zipkin trace (tracing.md §1.1's example, two spans): service "backend";
 *   root: SERVER "get /api", ts, 1431 µs, local backend 192.168.99.1:3306, remote
 *         172.19.0.2:58648, annotation "wr" at ts+10, tags http.method GET, http.path /api;
 *   child: CLIENT "query", ts+100, 800 µs, local backend, remote mysql [2001:db8::c001]:3306,
 *         tags error "boom", and debug.
 * tid may be 16 hex digits (a 64-bit trace id).
 */
static char *zipkin_json(const char *tid, const struct ids *id, uint64_t ts)
{
    char *s = malloc(4096);
    snprintf(
        s, 4096,
        "[{\"traceId\":\"%s\",\"id\":\"%s\",\"kind\":\"SERVER\",\"name\":\"get /api\","
        "\"timestamp\":%" PRIu64 ",\"duration\":1431,\"localEndpoint\":{\"serviceName\":"
        "\"backend\",\"ipv4\":\"192.168.99.1\",\"port\":3306},\"remoteEndpoint\":{\"ipv4\":"
        "\"172.19.0.2\",\"port\":58648},\"annotations\":[{\"timestamp\":%" PRIu64
        ",\"value\":\"wr\"}],\"tags\":{\"http.method\":\"GET\",\"http.path\":\"/api\"}},"
        "{\"traceId\":\"%s\",\"parentId\":\"%s\",\"id\":\"%s\",\"kind\":\"CLIENT\",\"name\":"
        "\"query\",\"timestamp\":%" PRIu64 ",\"duration\":800,\"localEndpoint\":{\"serviceName\":"
        "\"backend\"},\"remoteEndpoint\":{\"serviceName\":\"mysql\",\"ipv6\":\"2001:db8::c001\","
        "\"port\":3306},\"tags\":{\"error\":\"boom\"},\"debug\":true}]",
        tid, id->root, ts, ts + 10, tid, id->root, id->child, ts + 100);
    return s;
}

static void zpb_endpoint(struct sn_pbw *w, uint32_t f, const char *svc, const uint8_t *ip4,
                         const uint8_t *ip6, int port)
{
    size_t m = sn_pbw_begin(w, f);
    if (svc)
        pb_str(w, 1, svc);
    if (ip4)
        sn_pbw_bytes(w, 2, ip4, 4);
    if (ip6)
        sn_pbw_bytes(w, 3, ip6, 16);
    if (port)
        sn_pbw_varint(w, 4, (uint64_t)port);
    sn_pbw_end(w, m);
}

static void zpb_tag(struct sn_pbw *w, const char *k, const char *v)
{
    size_t m = sn_pbw_begin(w, 11);
    pb_str(w, 1, k);
    pb_str(w, 2, v);
    sn_pbw_end(w, m);
}

/* The Zipkin trace in proto3 (zipkin.proto's ListOfSpans). */
static void zipkin_proto(const char *tid, const struct ids *id, uint64_t ts, struct sn_pbw *w)
{
    static const uint8_t ip_local[4] = {192, 168, 99, 1}, ip_remote[4] = {172, 19, 0, 2};
    static const uint8_t ip6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0,    0,
                                    0,    0,    0,    0,    0, 0, 0xc0, 0x01};
    memset(w, 0, sizeof(*w));
    size_t sp = sn_pbw_begin(w, 1);
    pb_id(w, 1, tid);
    pb_id(w, 3, id->root);
    sn_pbw_varint(w, 4, 2);
    pb_str(w, 5, "get /api");
    sn_pbw_fixed64(w, 6, ts);
    sn_pbw_varint(w, 7, 1431);
    zpb_endpoint(w, 8, "backend", ip_local, NULL, 3306);
    zpb_endpoint(w, 9, NULL, ip_remote, NULL, 58648);
    size_t a = sn_pbw_begin(w, 10);
    sn_pbw_fixed64(w, 1, ts + 10);
    pb_str(w, 2, "wr");
    sn_pbw_end(w, a);
    zpb_tag(w, "http.method", "GET");
    zpb_tag(w, "http.path", "/api");
    sn_pbw_end(w, sp);

    sp = sn_pbw_begin(w, 1);
    pb_id(w, 1, tid);
    pb_id(w, 2, id->root);
    pb_id(w, 3, id->child);
    sn_pbw_varint(w, 4, 1);
    pb_str(w, 5, "query");
    sn_pbw_fixed64(w, 6, ts + 100);
    sn_pbw_varint(w, 7, 800);
    zpb_endpoint(w, 8, "backend", NULL, NULL, 0);
    zpb_endpoint(w, 9, "mysql", NULL, ip6, 3306);
    zpb_tag(w, "error", "boom");
    sn_pbw_varint(w, 12, 1);
    sn_pbw_end(w, sp);
}

/* ---- 1. round trips -------------------------------------------------------------------------- */

static struct th_serve srv; /* round trips and bad input */

static void check_otlp_ok(const struct th_resp *r, bool json)
{
    char ct[128] = "";
    T_EQ(r->status, 200);
    T_OK(th_header(r, "Content-Type", ct, sizeof(ct)));
    t_note("Content-Type %s, body %s", ct, r->body ? r->body : "");
    if (json) {
        T_OK(strncmp(ct, "application/json", 16) == 0);
        T_STR(r->body, "{\"partialSuccess\":{}}");
    } else {
        T_OK(strncmp(ct, "application/x-protobuf", 22) == 0);
        T_EQU(r->len, 0);
    }
}

static void test_roundtrip_otlp(void)
{
    for (int enc = 0; enc < 2; enc++) {
        for (int f = PLAIN; f <= CHUNKED; f++) {
            struct ids id;
            uint64_t base = recent_ns(30);
            ids_of((unsigned)(enc * 3 + f), 0x01, &id);
            struct th_resp r = {0};
            struct sn_pbw w = {0};
            char *js = NULL;
            t_note("OTLP %s, %s", enc ? "JSON" : "protobuf", framing_name[f]);
            if (enc == 0) {
                otlp_proto(&id, base, &w);
                T_EQ(post(srv.port, "/v1/traces", "application/x-protobuf", NULL, (enum framing)f,
                          w.buf, w.len, &r),
                     0);
            } else {
                js = otlp_json(&id, base);
                T_EQ(post(srv.port, "/v1/traces", "application/json", NULL, (enum framing)f, js,
                          strlen(js), &r),
                     0);
            }
            check_otlp_ok(&r, enc == 1);
            th_resp_free(&r);
            sn_pbw_fini(&w);
            free(js);
            json_t *got = wait_trace(srv.port, id.tid, 2);
            T_OK(got != NULL);
            char *want = otlp_expected(&id, base);
            check_spans(got, want);
            free(want);
            json_decref(got);
        }
    }
}

/* Content-Type parameters are no other type */
static void test_ctype_params(void)
{
    struct ids id;
    uint64_t base = recent_ns(30);
    ids_of(50, 0x01, &id);
    char *js = otlp_json(&id, base);
    struct th_resp r = {0};
    T_EQ(post(srv.port, "/v1/traces", "application/json; charset=utf-8", NULL, PLAIN, js,
              strlen(js), &r),
         0);
    check_otlp_ok(&r, true);
    th_resp_free(&r);
    free(js);
    json_t *got = wait_trace(srv.port, id.tid, 2);
    char *want = otlp_expected(&id, base);
    check_spans(got, want);
    free(want);
    json_decref(got);
    /* Zipkin: a fractional µs timestamp (OTel JS's) is truncated */
    const char *z = "[{\"traceId\":\"5af7183fb1d4cf5f\",\"id\":\"00000000000000f1\",\"timestamp\":"
                    "1700000000080000.5,\"duration\":12.7,\"localEndpoint\":{\"serviceName\":"
                    "\"frontend\"}}]";
    T_EQ(post(srv.port, "/api/v2/spans", "application/json; charset=utf-8", NULL, PLAIN, z,
              strlen(z), &r),
         0);
    T_EQ(r.status, 202);
    th_resp_free(&r);
    got = wait_trace(srv.port, "5af7183fb1d4cf5f", 1);
    check_spans(got, "[{\"traceId\":\"5af7183fb1d4cf5f\",\"id\":\"00000000000000f1\",\"timestamp\":"
                     "1700000000080000,\"duration\":12,\"localEndpoint\":{\"serviceName\":"
                     "\"frontend\"}}]");
    json_decref(got);
}

static void test_roundtrip_zipkin(void)
{
    for (int enc = 0; enc < 2; enc++) {
        for (int f = PLAIN; f <= CHUNKED; f++) {
            struct ids id;
            uint64_t ts = recent_ns(30) / 1000 + 777;
            ids_of((unsigned)(enc * 3 + f), 0x02, &id);
            /* the proto3 ones with a 64-bit trace id: read back as 16 hex digits */
            const char *tid = enc ? id.tid + 16 : id.tid;
            struct th_resp r = {0};
            struct sn_pbw w = {0};
            char *js = zipkin_json(tid, &id, ts);
            t_note("Zipkin %s, %s", enc ? "proto3" : "JSON", framing_name[f]);
            if (enc == 0) {
                T_EQ(post(srv.port, "/api/v2/spans", "application/json", NULL, (enum framing)f, js,
                          strlen(js), &r),
                     0);
            } else {
                zipkin_proto(tid, &id, ts, &w);
                T_EQ(post(srv.port, "/api/v2/spans", "application/x-protobuf", NULL,
                          (enum framing)f, w.buf, w.len, &r),
                     0);
            }
            t_note("reply %d %s", r.status, r.body ? r.body : "");
            T_EQ(r.status, 202);
            th_resp_free(&r);
            sn_pbw_fini(&w);
            json_t *got = wait_trace(srv.port, tid, 2);
            T_OK(got != NULL);
            check_spans(got, js);
            if (enc) { /* and under its 128-bit form, zero-padded */
                char padded[80];
                snprintf(padded, sizeof(padded), "0000000000000000%s", tid);
                json_t *again = wait_trace(srv.port, padded, 2);
                check_spans(again, js);
                json_decref(again);
            }
            free(js);
            json_decref(got);
        }
    }
}

/* ---- 2. bad input ---------------------------------------------------------------------------- */

/* A minimal OTLP span of trace tid (32 hex) and span id sid in service svc. */
static void otlp_min(struct sn_pbw *w, const char *svc, const char *tid, const char *sid,
                     const char *big_key, size_t big_len)
{
    size_t rs = sn_pbw_begin(w, 1);
    size_t res = sn_pbw_begin(w, 1);
    pb_kv(w, 1, "service.name", 's', svc, 0, 0);
    sn_pbw_end(w, res);
    size_t ss = sn_pbw_begin(w, 2);
    size_t sp = sn_pbw_begin(w, 2);
    pb_id(w, 1, tid);
    pb_id(w, 2, sid);
    pb_str(w, 5, "op");
    sn_pbw_fixed64(w, 7, recent_ns(20));
    sn_pbw_fixed64(w, 8, recent_ns(20) + 1000000);
    if (big_key) {
        char *v = malloc(big_len + 1);
        memset(v, 'v', big_len);
        v[big_len] = '\0';
        pb_kv(w, 9, big_key, 's', v, 0, 0);
        free(v);
    }
    sn_pbw_end(w, sp);
    sn_pbw_end(w, ss);
    sn_pbw_end(w, rs);
}

/* OTLP's refusal: status, and a google.rpc.Status in the encoding with code and message. */
static void check_otlp_status(const struct th_resp *r, bool json, int want_st, int64_t want_code,
                              const char *want_msg)
{
    int64_t code = -1;
    char msg[1024] = "";
    t_note("reply %d (%zu bytes) %s", r->status, r->len, json && r->body ? r->body : "");
    T_EQ(r->status, want_st);
    if (json) {
        json_t *j = r->body ? json_loads(r->body, 0, NULL) : NULL;
        code = json_integer_value(json_object_get(j, "code"));
        snprintf(msg, sizeof(msg), "%s",
                 json_string_value(json_object_get(j, "message"))
                     ? json_string_value(json_object_get(j, "message"))
                     : "(none)");
        json_decref(j);
    } else {
        T_OK(pb_status(r->body ? r->body : "", r->len, &code, msg, sizeof(msg)));
    }
    T_EQ(code, want_code);
    if (want_msg) {
        T_STR(msg, want_msg);
    } else {
        T_OK(msg[0] != '\0');
        printf("# OTLP %s -> %d {%" PRId64 ", %.200s}\n", json ? "JSON" : "protobuf", r->status,
               code, msg);
    }
}

/* Trace ids of the refused requests, checked absent at the end. */
static char refused[64][33];
static int nrefused;

static void refused_id(const char *tid)
{
    if (nrefused < 64)
        snprintf(refused[nrefused++], 33, "%s", tid);
}

static void test_bad_otlp(void)
{
    struct th_resp r = {0};
    struct sn_pbw w = {0};
    char tid[33];

    /* truncated protobuf: several cuts of a valid request */
    snprintf(tid, sizeof(tid), "badbad00000000000000000000000001");
    refused_id(tid);
    otlp_min(&w, "bad-truncated", tid, "00000000000000aa", NULL, 0);
    size_t cuts[] = {1, 2, 5, w.len / 2, w.len - 1};
    for (size_t k = 0; k < sizeof(cuts) / sizeof(cuts[0]); k++) {
        t_note("cut at %zu of %zu", cuts[k], w.len);
        T_EQ(
            post(srv.port, "/v1/traces", "application/x-protobuf", NULL, PLAIN, w.buf, cuts[k], &r),
            0);
        check_otlp_status(&r, false, 400, 3,
                          "field 1 of ExportTraceServiceRequest is truncated or malformed");
        th_resp_free(&r);
    }
    sn_pbw_fini(&w);

    /* a known field with the wrong wire type: Span.start_time_unix_nano (fixed64) as varint */
    snprintf(tid, sizeof(tid), "badbad00000000000000000000000002");
    refused_id(tid);
    size_t rs = sn_pbw_begin(&w, 1), ss = sn_pbw_begin(&w, 2), sp = sn_pbw_begin(&w, 2);
    pb_id(&w, 1, tid);
    pb_id(&w, 2, "00000000000000ab");
    sn_pbw_varint(&w, 7, 5);
    sn_pbw_end(&w, sp);
    sn_pbw_end(&w, ss);
    sn_pbw_end(&w, rs);
    T_EQ(post(srv.port, "/v1/traces", "application/x-protobuf", NULL, PLAIN, w.buf, w.len, &r), 0);
    check_otlp_status(&r, false, 400, 3,
                      "resourceSpans[0].scopeSpans[0].spans[0]: field 7 of Span has wire type 0");
    th_resp_free(&r);
    sn_pbw_fini(&w);

    /* a varint of 11 bytes (Span.kind) */
    static const uint8_t kind11[] = {0x30, 0xff, 0xff, 0xff, 0xff, 0xff,
                                     0xff, 0xff, 0xff, 0xff, 0x81, 0x00};
    snprintf(tid, sizeof(tid), "badbad00000000000000000000000003");
    refused_id(tid);
    rs = sn_pbw_begin(&w, 1), ss = sn_pbw_begin(&w, 2), sp = sn_pbw_begin(&w, 2);
    pb_id(&w, 1, tid);
    pb_id(&w, 2, "00000000000000ac");
    pb_raw(&w, kind11, sizeof(kind11));
    sn_pbw_end(&w, sp);
    sn_pbw_end(&w, ss);
    sn_pbw_end(&w, rs);
    T_EQ(post(srv.port, "/v1/traces", "application/x-protobuf", NULL, PLAIN, w.buf, w.len, &r), 0);
    check_otlp_status(&r, false, 400, 3,
                      "resourceSpans[0].scopeSpans[0].spans[0]: field 6 of Span is truncated or "
                      "malformed");
    th_resp_free(&r);
    sn_pbw_fini(&w);

    /* a 1 MB attribute value in the middle span of three: that span refused, the others kept;
     * in protobuf and in JSON */
    for (int json = 0; json < 2; json++) {
        char t1[33], t2[33], t3[33];
        snprintf(t1, sizeof(t1), "b1b1b1%026x", 1 + json * 10);
        snprintf(t2, sizeof(t2), "b1b1b1%026x", 2 + json * 10);
        snprintf(t3, sizeof(t3), "b1b1b1%026x", 3 + json * 10);
        refused_id(t2);
        if (!json) {
            otlp_min(&w, "partial", t1, "00000000000000b1", NULL, 0);
            otlp_min(&w, "bad-big-value", t2, "00000000000000b2", "big.value", 1 << 20);
            otlp_min(&w, "partial", t3, "00000000000000b3", NULL, 0);
            T_EQ(post(srv.port, "/v1/traces", "application/x-protobuf", NULL, PLAIN, w.buf, w.len,
                      &r),
                 0);
            sn_pbw_fini(&w);
        } else {
            size_t cap = (1 << 20) + 4096, at = 0;
            char *b = malloc(cap);
            uint64_t t0 = recent_ns(20);
            at += (size_t)snprintf(b + at, cap - at, "{\"resourceSpans\":[");
            const char *tids[3] = {t1, t2, t3};
            for (int i = 0; i < 3; i++) {
                at += (size_t)snprintf(
                    b + at, cap - at,
                    "%s{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{"
                    "\"stringValue\":\"%s\"}}]},\"scopeSpans\":[{\"spans\":[{\"traceId\":\"%s\","
                    "\"spanId\":\"00000000000000c%d\",\"name\":\"op\",\"startTimeUnixNano\":"
                    "\"%" PRIu64 "\",\"endTimeUnixNano\":\"%" PRIu64 "\",\"attributes\":[",
                    i ? "," : "", i == 1 ? "bad-big-value" : "partial", tids[i], i + 1, t0,
                    t0 + 1000000);
                if (i == 1) {
                    at += (size_t)snprintf(b + at, cap - at,
                                           "{\"key\":\"big.value\",\"value\":{\"stringValue\":\"");
                    memset(b + at, 'v', 1 << 20);
                    at += 1 << 20;
                    at += (size_t)snprintf(b + at, cap - at, "\"}}");
                }
                at += (size_t)snprintf(b + at, cap - at, "]}]}]}");
            }
            at += (size_t)snprintf(b + at, cap - at, "]}");
            T_EQ(post(srv.port, "/v1/traces", "application/json", NULL, PLAIN, b, at, &r), 0);
            free(b);
        }
        int64_t rejected = -1;
        char m[1024] = "";
        t_note("1 MB value (%s): %d %s", json ? "JSON" : "protobuf", r.status, json ? r.body : "");
        T_EQ(r.status, 200);
        if (json) {
            json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
            json_t *ps = json_object_get(j, "partialSuccess");
            T_STR(json_string_value(json_object_get(ps, "rejectedSpans")), "1");
            snprintf(m, sizeof(m), "%s",
                     json_string_value(json_object_get(ps, "errorMessage"))
                         ? json_string_value(json_object_get(ps, "errorMessage"))
                         : "");
            json_decref(j);
        } else {
            T_OK(pb_export_resp(r.body ? r.body : "", r.len, &rejected, m, sizeof(m)));
            T_EQ(rejected, 1);
        }
        t_note("partialSuccess message: %s", m);
        T_OK(strstr(m, "attribute \"big.value\": value of 1048576 bytes, over 65536") != NULL);
        T_OK(strstr(m, "resourceSpans[1].scopeSpans[0].spans[0]") != NULL);
        th_resp_free(&r);
        json_decref(wait_trace(srv.port, t1, 1));
        json_t *k3 = wait_trace(srv.port, t3, 1);
        T_OK(k3 != NULL);
        json_decref(k3);
    }

    /* 100k spans in one request: 413 */
    snprintf(tid, sizeof(tid), "badbad00000000000000000000000004");
    refused_id(tid);
    rs = sn_pbw_begin(&w, 1), ss = sn_pbw_begin(&w, 2);
    for (unsigned i = 0; i < 100000; i++) {
        char sid[17];
        snprintf(sid, sizeof(sid), "%016x", i + 1);
        sp = sn_pbw_begin(&w, 2);
        pb_id(&w, 1, tid);
        pb_id(&w, 2, sid);
        sn_pbw_fixed64(&w, 7, 1000);
        sn_pbw_fixed64(&w, 8, 2000);
        sn_pbw_end(&w, sp);
    }
    sn_pbw_end(&w, ss);
    sn_pbw_end(&w, rs);
    T_EQ(post(srv.port, "/v1/traces", "application/x-protobuf", NULL, PLAIN, w.buf, w.len, &r), 0);
    check_otlp_status(&r, false, 413, 3, "100000 spans, over 65536");
    th_resp_free(&r);
    sn_pbw_fini(&w);

    /* invalid ids: zero, wrong length (protobuf: the span refused, partialSuccess); non-hex and
     * wrong length in JSON */
    snprintf(tid, sizeof(tid), "badbad00000000000000000000000005");
    refused_id(tid);
    otlp_min(&w, "bad-ids", "00000000000000000000000000000000", "00000000000000ad", NULL, 0);
    otlp_min(&w, "bad-ids", tid, "0000000000000000", NULL, 0);
    otlp_min(&w, "bad-ids", "badbad000000000000000000000005", "00000000000000ae", NULL, 0);
    T_EQ(post(srv.port, "/v1/traces", "application/x-protobuf", NULL, PLAIN, w.buf, w.len, &r), 0);
    {
        int64_t rejected = -1;
        char m[512];
        T_EQ(r.status, 200);
        T_OK(pb_export_resp(r.body ? r.body : "", r.len, &rejected, m, sizeof(m)));
        t_note("ids: %s", m);
        T_EQ(rejected, 3);
        T_STR(m, "resourceSpans[0].scopeSpans[0].spans[0]: invalid trace id (zero)");
    }
    th_resp_free(&r);
    sn_pbw_fini(&w);
    /* JSON: the span refused (partialSuccess), naming why */
    static const char *const bad_json_ids[][3] = {
        {"badbad0000000000000000000000000g", "00000000000000af", "invalid trace id (not hex)"},
        {"badbad00000000000000000000000006", "0000000000000x0f", "invalid span id (not hex)"},
        {"badbad000000000000000000000006", "00000000000000af", "invalid trace id (15 bytes)"},
        {"badbad00000000000000000000000006", "00000000000000", "invalid span id (7 bytes)"},
    };
    refused_id("badbad00000000000000000000000006");
    for (size_t k = 0; k < sizeof(bad_json_ids) / sizeof(bad_json_ids[0]); k++) {
        char b[1024];
        snprintf(b, sizeof(b),
                 "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
                 "\"value\":{\"stringValue\":\"bad-ids\"}}]},\"scopeSpans\":[{\"spans\":[{"
                 "\"traceId\":\"%s\",\"spanId\":\"%s\",\"name\":\"op\",\"startTimeUnixNano\":"
                 "\"%" PRIu64 "\",\"endTimeUnixNano\":\"%" PRIu64 "\"}]}]}]}",
                 bad_json_ids[k][0], bad_json_ids[k][1], recent_ns(20), recent_ns(20) + 1000);
        T_EQ(post(srv.port, "/v1/traces", "application/json", NULL, PLAIN, b, strlen(b), &r), 0);
        t_note("JSON ids %s/%s: %d %s", bad_json_ids[k][0], bad_json_ids[k][1], r.status,
               r.body ? r.body : "");
        printf("# OTLP JSON ids %s / %s -> %d %.300s\n", bad_json_ids[k][0], bad_json_ids[k][1],
               r.status, r.body ? r.body : "");
        char want[512];
        snprintf(want, sizeof(want),
                 "{\"partialSuccess\":{\"rejectedSpans\":\"1\",\"errorMessage\":\"resourceSpans[0]."
                 "scopeSpans[0].spans[0]: %s\"}}",
                 bad_json_ids[k][2]);
        T_EQ(r.status, 200);
        T_STR(r.body, want);
        th_resp_free(&r);
    }

    /* Content-Type text/plain: the Collector's 415 */
    T_EQ(post(srv.port, "/v1/traces", "text/plain", NULL, PLAIN, "x", 1, &r), 0);
    T_EQ(r.status, 415);
    T_STR(r.body, "415 unsupported media type, supported: [application/json, "
                  "application/x-protobuf]");
    th_resp_free(&r);

    /* a corrupt gzip body */
    snprintf(tid, sizeof(tid), "badbad00000000000000000000000007");
    refused_id(tid);
    otlp_min(&w, "bad-gzip", tid, "00000000000000b7", NULL, 0);
    size_t glen;
    unsigned char *gz = gzip_of(w.buf, w.len, &glen);
    gz[glen / 2] ^= 0x55;
    gz[glen - 5] ^= 0x55; /* the CRC or the length, at least */
    T_EQ(post(srv.port, "/v1/traces", "application/x-protobuf", "gzip", PLAIN, gz, glen, &r), 0);
    check_otlp_status(&r, false, 400, 3, "the compressed body is corrupt or truncated");
    th_resp_free(&r);
    T_EQ(post(srv.port, "/v1/traces", "application/x-protobuf", "gzip", PLAIN, gz, glen / 2, &r),
         0);
    check_otlp_status(&r, false, 400, 3, "the compressed body is corrupt or truncated");
    th_resp_free(&r);
    T_EQ(post(srv.port, "/v1/traces", "application/json", "gzip", PLAIN, gz, glen, &r), 0);
    check_otlp_status(&r, true, 400, 3, "the compressed body is corrupt or truncated");
    th_resp_free(&r);
    free(gz);

    /* an unknown Content-Encoding */
    T_EQ(post(srv.port, "/v1/traces", "application/x-protobuf", "br", PLAIN, w.buf, w.len, &r), 0);
    check_otlp_status(&r, false, 400, 3, "unsupported Content-Encoding \"br\"");
    th_resp_free(&r);
    sn_pbw_fini(&w);

    /* a gzip bomb: 65 MiB of zeros in ~65 KB */
    size_t zlen = 65u << 20;
    unsigned char *zeros = calloc(1, zlen);
    gz = gzip_of(zeros, zlen, &glen);
    free(zeros);
    t_note("bomb: %zu bytes", glen);
    T_EQ(post(srv.port, "/v1/traces", "application/x-protobuf", "gzip", PLAIN, gz, glen, &r), 0);
    check_otlp_status(&r, false, 413, 3, "the request body decompresses to more than 64 MiB");
    th_resp_free(&r);
    T_EQ(post(srv.port, "/api/v2/spans", "application/json", "gzip", PLAIN, gz, glen, &r), 0);
    T_EQ(r.status, 413);
    T_STR(r.body, "the request body decompresses to more than 64 MiB");
    th_resp_free(&r);
    free(gz);

    /* an empty request: success */
    T_EQ(post(srv.port, "/v1/traces", "application/x-protobuf", NULL, PLAIN, "", 0, &r), 0);
    check_otlp_ok(&r, false);
    th_resp_free(&r);
    T_EQ(post(srv.port, "/v1/traces", "application/json", NULL, PLAIN, "{}", 2, &r), 0);
    check_otlp_ok(&r, true);
    th_resp_free(&r);
}

static void zipkin_bad(const char *ctype, const char *cenc, const void *body, size_t len,
                       int want_st, const char *want_msg)
{
    struct th_resp r = {0};
    T_EQ(post(srv.port, "/api/v2/spans", ctype, cenc, PLAIN, body, len, &r), 0);
    t_note("Zipkin %s: %d %s", ctype ? ctype : "-", r.status, r.body ? r.body : "");
    T_EQ(r.status, want_st);
    if (want_msg)
        T_STR(r.body, want_msg);
    else if (want_st != 202)
        printf("# Zipkin %s (%zu bytes) -> %d %.200s\n", ctype ? ctype : "-", len, r.status,
               r.body ? r.body : "");
    th_resp_free(&r);
}

static void test_bad_zipkin(void)
{
    char b[4096];
    struct sn_pbw w = {0};

    /* ids: zero, non-hex, wrong length (Zipkin refuses the whole request) */
    static const struct {
        const char *tid, *id, *msg;
    } ids[] = {
        {"0000000000000000", "00000000000000a1",
         "0000000000000000 should be lower-hex encoded "
         "with no prefix"},
        {"badbad0000000008", "0000000000000000",
         "0000000000000000 should be lower-hex encoded "
         "with no prefix"},
        {"badbad000000000g", "00000000000000a1",
         "badbad000000000g should be lower-hex encoded "
         "with no prefix"},
        {"badbad0000000008", "00000000000000a1a",
         "00000000000000a1a should be lower-hex encoded "
         "with no prefix"},
        {"badbad00000000000000000000000000008", "00000000000000a1",
         "badbad00000000000000000000000000008 should be lower-hex encoded with no prefix"},
    };
    refused_id("0000000000000000badbad0000000008");
    for (size_t k = 0; k < sizeof(ids) / sizeof(ids[0]); k++) {
        snprintf(b, sizeof(b),
                 "[{\"traceId\":\"badbad0000000008\",\"id\":\"00000000000000a0\",\"name\":\"ok\","
                 "\"localEndpoint\":{\"serviceName\":\"bad-zipkin\"}},"
                 "{\"traceId\":\"%s\",\"id\":\"%s\",\"localEndpoint\":{\"serviceName\":"
                 "\"bad-zipkin\"}}]",
                 ids[k].tid, ids[k].id);
        zipkin_bad("application/json", NULL, b, strlen(b), 400, ids[k].msg);
    }

    /* a 1 MB tag value: 400, in JSON and in proto3 */
    size_t cap = (1 << 20) + 512, at;
    char *big = malloc(cap);
    at = (size_t)snprintf(big, cap,
                          "[{\"traceId\":\"badbad0000000009\",\"id\":\"00000000000000a2\","
                          "\"localEndpoint\":{\"serviceName\":\"bad-zipkin\"},\"tags\":{\"big\":"
                          "\"");
    memset(big + at, 'v', 1 << 20);
    at += 1 << 20;
    at += (size_t)snprintf(big + at, cap - at, "\"}}]");
    refused_id("0000000000000000badbad0000000009");
    zipkin_bad("application/json", NULL, big, at, 400,
               "tag longer than 65536 bytes at $[0].tags.big");
    free(big);
    size_t sp = sn_pbw_begin(&w, 1);
    pb_id(&w, 1, "badbad0000000009");
    pb_id(&w, 3, "00000000000000a3");
    zpb_endpoint(&w, 8, "bad-zipkin", NULL, NULL, 0);
    big = malloc(1 << 20);
    memset(big, 'v', 1 << 20);
    size_t tg = sn_pbw_begin(&w, 11);
    pb_str(&w, 1, "big");
    sn_pbw_bytes(&w, 2, big, 1 << 20);
    sn_pbw_end(&w, tg);
    free(big);
    sn_pbw_end(&w, sp);
    zipkin_bad("application/x-protobuf", NULL, w.buf, w.len, 400,
               "tag longer than 65536 bytes at $[0].tags");

    /* truncated proto3 */
    for (size_t cut = 3; cut < w.len; cut += w.len / 4)
        zipkin_bad("application/x-protobuf", NULL, w.buf, cut, 400,
                   "Malformed list at $ reading List<Span> from proto3");
    sn_pbw_fini(&w);

    /* 100k spans: 413 */
    cap = 100000 * 80 + 16;
    big = malloc(cap);
    at = (size_t)snprintf(big, cap, "[");
    for (unsigned i = 0; i < 100000; i++)
        at += (size_t)snprintf(big + at, cap - at,
                               "%s{\"traceId\":\"badbad000000000a\",\"id\":\"%016x\"}",
                               i ? "," : "", i + 1);
    at += (size_t)snprintf(big + at, cap - at, "]");
    refused_id("0000000000000000badbad000000000a");
    zipkin_bad("application/json", NULL, big, at, 413, "more than 65536 spans in one request");
    free(big);

    /* a corrupt gzip body, an unknown Content-Encoding */
    snprintf(b, sizeof(b),
             "[{\"traceId\":\"badbad000000000b\",\"id\":\"00000000000000a4\",\"localEndpoint\":{"
             "\"serviceName\":\"bad-zipkin\"}}]");
    refused_id("0000000000000000badbad000000000b");
    size_t glen;
    unsigned char *gz = gzip_of(b, strlen(b), &glen);
    gz[glen - 6] ^= 0xff;
    zipkin_bad("application/json", "gzip", gz, glen, 400, "Cannot gunzip spans");
    zipkin_bad("application/json", "gzip", b, strlen(b), 400, "Cannot gunzip spans");
    free(gz);
    zipkin_bad("application/json", "br", b, strlen(b), 400, NULL);

    /* malformed JSON, not a list */
    zipkin_bad("application/json", NULL, "[{\"traceId\":", 12, 400,
               "unexpected token near end of file reading List<Span> from json");
    zipkin_bad("application/json", NULL, "{}", 2, 400, "Expected a JSON_V2 encoded list");

    /* empty body and []: 202, nothing stored */
    zipkin_bad("application/json", NULL, "", 0, 202, NULL);
    zipkin_bad("application/json", NULL, "[]", 2, 202, NULL);
    zipkin_bad("application/x-protobuf", NULL, "", 0, 202, NULL);
}

/* After the refusals: a good request, once visible, proves the queue has passed them; then
 * none of theirs is there, and the services are the good ones only. */
static void test_bad_nothing_stored(void)
{
    const char *good = "[{\"traceId\":\"600d00000000000000000000000000a1\",\"id\":"
                       "\"00000000000000a1\",\"localEndpoint\":{\"serviceName\":\"sentinel\"}}]";
    struct th_resp r = {0};
    T_EQ(post(srv.port, "/api/v2/spans", "application/json", NULL, PLAIN, good, strlen(good), &r),
         0);
    T_EQ(r.status, 202);
    th_resp_free(&r);
    json_decref(wait_trace(srv.port, "600d00000000000000000000000000a1", 1));
    for (int i = 0; i < nrefused; i++)
        check_no_trace(srv.port, refused[i]);
    char *s = services(srv.port);
    t_note("services %s", s);
    T_STR(s, "[\"backend\",\"frontend\",\"partial\",\"sentinel\"]");
    free(s);
}

/* ---- 3. the query API ------------------------------------------------------------------------ */

static struct th_serve qsrv;
static int64_t q_now_ms; /* "now" of the query data set */

/* Query data (µs times relative to q_now_ms):
 *   T1 alpha "get /a" SERVER -60 s, 1000 µs, tag http.path=/a, annotation "wr";
 *      child alpha "query" CLIENT -60 s+100 µs, 500 µs, remote mysql, tag error=x
 *   T2 beta  "GET /B" -120 s, 5000 µs, tag k=v
 *   T3 alpha "get /c" -2 h, 20000 µs, tag k=w
 *   T4 gamma "old"    -3 d, 100 µs
 *   T5 delta "five"   -30 s, 300 µs, 64-bit trace id
 *   T6, T7, T8 (epsilon, 30 h and more ago), T9 (OTLP, CartService, -10 min): see q_load() */
#define T1 "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
#define T2 "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"
#define T3 "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3"
#define T4 "d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4"
#define T5 "e5e5e5e5e5e5e5e5"
#define T6 "f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6"
#define T7 "07070707070707070707070707070707"
#define T8 "08080808080808080808080808080808"
#define T9 "09090909090909090909090909090909"

static void q_load(void)
{
    char *b = malloc(8192);
    int64_t n = q_now_ms * 1000;
    snprintf(
        b, 8192,
        "[{\"traceId\":\"" T1 "\",\"id\":\"00000000000001a1\",\"kind\":\"SERVER\",\"name\":"
        "\"get /a\",\"timestamp\":%" PRId64 ",\"duration\":1000,\"localEndpoint\":{"
        "\"serviceName\":\"alpha\"},\"annotations\":[{\"timestamp\":%" PRId64 ",\"value\":\"wr\"}"
        "],\"tags\":{\"http.path\":\"/a\"}},"
        "{\"traceId\":\"" T1 "\",\"parentId\":\"00000000000001a1\",\"id\":\"00000000000001a2\","
        "\"kind\":\"CLIENT\",\"name\":\"query\",\"timestamp\":%" PRId64 ",\"duration\":500,"
        "\"localEndpoint\":{\"serviceName\":\"alpha\"},\"remoteEndpoint\":{\"serviceName\":"
        "\"mysql\"},\"tags\":{\"error\":\"x\"}},"
        "{\"traceId\":\"" T2 "\",\"id\":\"00000000000002b1\",\"name\":\"GET /B\",\"timestamp\":"
        "%" PRId64 ",\"duration\":5000,\"localEndpoint\":{\"serviceName\":\"Beta\"},\"tags\":{"
        "\"k\":\"v\"}},"
        "{\"traceId\":\"" T3 "\",\"id\":\"00000000000003c1\",\"name\":\"get /c\",\"timestamp\":"
        "%" PRId64 ",\"duration\":20000,\"localEndpoint\":{\"serviceName\":\"alpha\"},\"tags\":{"
        "\"k\":\"w\"}},"
        "{\"traceId\":\"" T4 "\",\"id\":\"00000000000004d1\",\"name\":\"old\",\"timestamp\":"
        "%" PRId64 ",\"duration\":100,\"localEndpoint\":{\"serviceName\":\"gamma\"}},"
        "{\"traceId\":\"" T5 "\",\"id\":\"00000000000005e1\",\"name\":\"five\",\"timestamp\":"
        "%" PRId64 ",\"duration\":300,\"localEndpoint\":{\"serviceName\":\"delta\"}}]",
        n - 60000000, n - 60000000 + 50, n - 60000000 + 100, n - 120000000, n - (int64_t)7200000000,
        n - (int64_t)3 * 86400000000, n - 30000000);
    struct th_resp r = {0};
    T_EQ(post(qsrv.port, "/api/v2/spans", "application/json", NULL, PLAIN, b, strlen(b), &r), 0);
    T_EQ(r.status, 202);
    th_resp_free(&r);
    /* T6: one span of 2 h (over 2^32 µs), 40 h ago; T7: root 30 h 10 min ago (11 min long)
     * with a child 30 h 1 min ago; T8: root 30 h 5 min ago. T7's timestamp is its root's, older
     * than T8's, though a span of T7 is the newest of all three. */
    snprintf(
        b, 8192,
        "[{\"traceId\":\"" T6 "\",\"id\":\"00000000000006f1\",\"name\":\"long\",\"timestamp\":"
        "%" PRId64 ",\"duration\":7200000000,\"localEndpoint\":{\"serviceName\":\"epsilon\"}},"
        "{\"traceId\":\"" T7 "\",\"id\":\"0000000000000771\",\"name\":\"root\",\"timestamp\":"
        "%" PRId64 ",\"duration\":660000000,\"localEndpoint\":{\"serviceName\":\"epsilon\"}},"
        "{\"traceId\":\"" T7 "\",\"parentId\":\"0000000000000771\",\"id\":\"0000000000000772\","
        "\"name\":\"late child\",\"timestamp\":%" PRId64 ",\"duration\":1000,\"localEndpoint\":{"
        "\"serviceName\":\"epsilon\"}},"
        "{\"traceId\":\"" T8 "\",\"id\":\"0000000000000881\",\"name\":\"root\",\"timestamp\":"
        "%" PRId64 ",\"duration\":1000,\"localEndpoint\":{\"serviceName\":\"epsilon\"}}]",
        n - (int64_t)40 * 3600000000, n - (int64_t)(30 * 60 + 10) * 60000000,
        n - (int64_t)(30 * 60 + 1) * 60000000, n - (int64_t)(30 * 60 + 5) * 60000000);
    T_EQ(post(qsrv.port, "/api/v2/spans", "application/json", NULL, PLAIN, b, strlen(b), &r), 0);
    T_EQ(r.status, 202);
    th_resp_free(&r);
    free(b);
    /* T9: OTLP, service "CartService" (upper case), 10 min ago */
    struct sn_pbw w = {0};
    size_t rs = sn_pbw_begin(&w, 1), res = sn_pbw_begin(&w, 1);
    pb_kv(&w, 1, "service.name", 's', "CartService", 0, 0);
    sn_pbw_end(&w, res);
    size_t ss = sn_pbw_begin(&w, 2), sp = sn_pbw_begin(&w, 2);
    pb_id(&w, 1, T9);
    pb_id(&w, 2, "00000000000009a1");
    pb_str(&w, 5, "AddItem");
    sn_pbw_varint(&w, 6, 3);
    sn_pbw_fixed64(&w, 7, (uint64_t)(n - 600000000) * 1000);
    sn_pbw_fixed64(&w, 8, (uint64_t)(n - 600000000) * 1000 + 2000000);
    pb_kv(&w, 9, "peer.service", 's', "Redis", 0, 0);
    sn_pbw_end(&w, sp);
    sn_pbw_end(&w, ss);
    sn_pbw_end(&w, rs);
    T_EQ(post(qsrv.port, "/v1/traces", "application/x-protobuf", NULL, PLAIN, w.buf, w.len, &r), 0);
    T_EQ(r.status, 200);
    th_resp_free(&r);
    sn_pbw_fini(&w);
    json_decref(wait_trace(qsrv.port, T1, 2));
    json_decref(wait_trace(qsrv.port, T5, 1));
    json_decref(wait_trace(qsrv.port, T8, 1));
    json_decref(wait_trace(qsrv.port, T9, 1));
}

/* /api/v2/traces?q: the trace ids of the answer, in order, comma-joined, into out. */
static int traces_ids(const char *q, char *out, size_t len)
{
    int st;
    char *body = NULL;
    json_t *j = jget(qsrv.port, &st, &body, "/api/v2/traces?%s", q);
    out[0] = '\0';
    size_t i;
    json_t *t;
    json_array_foreach(j, i, t)
    {
        const char *id = json_string_value(json_object_get(json_array_get(t, 0), "traceId"));
        size_t at = strlen(out);
        snprintf(out + at, len - at, "%s%.4s", i ? "," : "", id ? id : "?");
    }
    if (st != 200)
        snprintf(out, len, "%d %s", st, body ? body : "");
    json_decref(j);
    free(body);
    return st;
}

static void check_traces(const char *q, const char *want)
{
    char got[4096];
    traces_ids(q, got, sizeof(got));
    t_note("traces?%s -> %s", q, got);
    T_STR(got, want);
}

static void test_query_traces(void)
{
    char q[512];
    check_traces("", "e5e5,a1a1,b2b2,0909,c3c3"); /* newest first, a day back */
    check_traces("serviceName=alpha", "a1a1,c3c3");
    check_traces("serviceName=ALPHA", "a1a1,c3c3");
    check_traces("serviceName=beta", "b2b2");
    check_traces("spanName=GET%20/A", "a1a1");
    check_traces("spanName=get%20/b", "b2b2");
    check_traces("serviceName=alpha&spanName=all", "a1a1,c3c3");
    check_traces("serviceName=alpha&spanName=", "a1a1,c3c3");
    check_traces("serviceName=alpha&spanName=query", "a1a1");
    check_traces("remoteServiceName=mysql", "a1a1");
    check_traces("serviceName=alpha&remoteServiceName=MYSQL", "a1a1");
    check_traces("annotationQuery=error", "a1a1");
    check_traces("annotationQuery=wr", "a1a1");
    check_traces("annotationQuery=k%3Dv", "b2b2");
    check_traces("annotationQuery=k", "b2b2,c3c3");
    check_traces("annotationQuery=http.path%3D/a%20and%20error", "a1a1");
    check_traces("minDuration=4000", "b2b2,c3c3");
    check_traces("minDuration=5000&maxDuration=5000", "b2b2");
    check_traces("minDuration=4000&maxDuration=10000", "b2b2");
    check_traces("serviceName=alpha&minDuration=600", "a1a1,c3c3");
    check_traces("serviceName=alpha&minDuration=400&maxDuration=600", "a1a1");
    snprintf(q, sizeof(q), "endTs=%" PRId64 "&lookback=60000", q_now_ms - 90000);
    check_traces(q, "b2b2");
    snprintf(q, sizeof(q), "endTs=%" PRId64 "&lookback=50000", q_now_ms);
    check_traces(q, "e5e5");
    snprintf(q, sizeof(q), "endTs=%" PRId64, q_now_ms - 3600000);
    check_traces(q, "c3c3");
    snprintf(q, sizeof(q), "lookback=%" PRId64, (int64_t)4 * 86400000);
    check_traces(q, "e5e5,a1a1,b2b2,0909,c3c3,0808,0707,f6f6,d4d4");
    /* an OTLP service named in capitals: Zipkin's lower case finds it, so does its own */
    check_traces("serviceName=cartservice", "0909");
    check_traces("serviceName=CartService", "0909");
    check_traces("remoteServiceName=redis", "0909");
    check_traces("spanName=additem", "0909");
    check_traces("limit=2", "e5e5,a1a1");
    check_traces("limit=1&serviceName=alpha", "a1a1");

    /* errors, with Zipkin's messages */
    check_text(qsrv.port, "/api/v2/traces?endTs=0", 400, "endTs <= 0");
    check_text(qsrv.port, "/api/v2/traces?endTs=-5", 400, "endTs <= 0");
    check_text(qsrv.port, "/api/v2/traces?limit=0", 400, "limit <= 0");
    check_text(qsrv.port, "/api/v2/traces?lookback=0", 400, "lookback <= 0");
    check_text(qsrv.port, "/api/v2/traces?lookback=-1", 400, "lookback <= 0");
    check_text(qsrv.port, "/api/v2/traces?minDuration=0", 400, "minDuration <= 0");
    check_text(qsrv.port, "/api/v2/traces?maxDuration=5", 400,
               "maxDuration is only valid with minDuration");
    check_text(qsrv.port, "/api/v2/traces?minDuration=10&maxDuration=5", 400,
               "maxDuration < minDuration");
}

/* Searches that find nothing (run last: a sanitized server has died of them) and the ones
 * the server gets wrong. */
static void test_query_empty(void)
{
    char q[512];
    check_traces("serviceName=nobody", "");
    check_text(qsrv.port, "/api/v2/spans?serviceName=nobody", 200, "[]");
    check_text(qsrv.port, "/api/v2/remoteServices?serviceName=beta", 200, "[]");
    check_traces("annotationQuery=k%3Dv%20and%20error", "");
    check_traces("serviceName=beta&annotationQuery=error", "");
    snprintf(q, sizeof(q), "lookback=%" PRId64 "&minDuration=4000000000&maxDuration=5000000000",
             (int64_t)2 * 86400000);
    check_traces(q, "");
}

static void test_query_limit_long(void)
{
    char q[512];
    /* the limit takes the newest traces by their timestamps (the root's), not by the newest
     * span seen: T8 (root 30 h 5 min ago) before T7 (root 30 h 10 min ago, child 30 h 1 min) */
    snprintf(q, sizeof(q), "serviceName=epsilon&endTs=%" PRId64 "&lookback=3600000&limit=1",
             q_now_ms - (int64_t)30 * 3600000);
    check_traces(q, "0808");
    snprintf(q, sizeof(q), "serviceName=epsilon&endTs=%" PRId64 "&lookback=3600000",
             q_now_ms - (int64_t)30 * 3600000);
    check_traces(q, "0808,0707");
    /* a span of 2 h (7.2e9 µs): over 2^32 µs */
    snprintf(q, sizeof(q), "lookback=%" PRId64 "&minDuration=5000000000", (int64_t)2 * 86400000);
    check_traces(q, "f6f6");
    snprintf(q, sizeof(q), "lookback=%" PRId64 "&minDuration=7200000000&maxDuration=7200000000",
             (int64_t)2 * 86400000);
    check_traces(q, "f6f6");
}

static void test_query_trace_ids(void)
{
    check_text(qsrv.port, "/api/v2/trace/0123456789abcdef0123456789abcdef", 404,
               "0123456789abcdef0123456789abcdef not found");
    check_text(qsrv.port, "/api/v2/trace/xyz", 400,
               "xyz should be lower-hex encoded with no prefix");
    check_text(qsrv.port, "/api/v2/trace/00000000000000000000000000000000", 400,
               "00000000000000000000000000000000 should be lower-hex encoded with no prefix");
    check_text(qsrv.port, "/api/v2/trace/0123456789abcdef0123456789abcdef0", 400,
               "0123456789abcdef0123456789abcdef0 should be lower-hex encoded with no prefix");
    /* the 64-bit trace: by 16 hex digits and by 32; its spans say 16 */
    int st;
    json_t *j = jget(qsrv.port, &st, NULL, "/api/v2/trace/" T5);
    T_EQ(st, 200);
    T_EQU(json_array_size(j), 1);
    T_STR(json_string_value(json_object_get(json_array_get(j, 0), "traceId")), T5);
    json_decref(j);
    j = jget(qsrv.port, &st, NULL, "/api/v2/trace/0000000000000000" T5);
    T_EQ(st, 200);
    T_EQU(json_array_size(j), 1);
    json_decref(j);
    /* a 16-hex id of a 128-bit trace's lower half is another trace */
    check_text(qsrv.port, "/api/v2/trace/a1a1a1a1a1a1a1a1", 404, "a1a1a1a1a1a1a1a1 not found");
    /* the /zipkin base path */
    j = jget(qsrv.port, &st, NULL, "/zipkin/api/v2/trace/" T1);
    T_EQ(st, 200);
    T_EQU(json_array_size(j), 2);
    json_decref(j);

    /* a trailing space is trimmed */
    j = jget(qsrv.port, &st, NULL, "/api/v2/trace/" T1 "%%20");
    T_EQ(st, 200);
    T_EQU(json_array_size(j), 2);
    json_decref(j);

    /* traceMany */
    check_text(qsrv.port, "/api/v2/traceMany?traceIds=" T5 ",0000000000000000" T5, 400,
               "redundant traceId: 0000000000000000" T5);
    check_text(qsrv.port, "/api/v2/traceMany", 400, "traceIds parameter is empty");
    check_text(qsrv.port, "/api/v2/traceMany?traceIds=", 400, "traceIds parameter is empty");
    check_text(qsrv.port, "/api/v2/traceMany?traceIds=" T1, 400,
               "Use /api/v2/trace/{traceId} endpoint to retrieve a single trace");
    check_text(qsrv.port, "/api/v2/traceMany?traceIds=" T1 "," T2 "," T1, 400,
               "redundant traceId: " T1);
    check_text(qsrv.port, "/api/v2/traceMany?traceIds=" T1 ",xyz", 400,
               "xyz should be lower-hex encoded with no prefix");
    j = jget(qsrv.port, &st, NULL, "/api/v2/traceMany?traceIds=" T1 "," T5 ",0123456789abcdef");
    T_EQ(st, 200);
    T_EQU(json_array_size(j), 2);
    bool has1 = false, has5 = false;
    size_t i;
    json_t *t;
    json_array_foreach(j, i, t)
    {
        const char *id = json_string_value(json_object_get(json_array_get(t, 0), "traceId"));
        has1 |= id && strcmp(id, T1) == 0 && json_array_size(t) == 2;
        has5 |= id && strcmp(id, T5) == 0;
    }
    T_OK(has1 && has5);
    json_decref(j);
}

static void test_query_names(void)
{
    struct th_resp r = {0};
    T_EQ(th_get(qsrv.port, "/api/v2/services", &r), 0);
    T_EQ(r.status, 200);
    T_STR(r.body, "[\"alpha\",\"beta\",\"cartservice\",\"delta\",\"epsilon\",\"gamma\"]");
    char cc[128] = "";
    T_OK(th_header(&r, "Cache-Control", cc, sizeof(cc)));
    T_STR(cc, "max-age=300, must-revalidate");
    th_resp_free(&r);
    check_text(qsrv.port, "/zipkin/api/v2/services", 200,
               "[\"alpha\",\"beta\",\"cartservice\",\"delta\",\"epsilon\",\"gamma\"]");
    check_text(qsrv.port, "/api/v2/spans?serviceName=cartservice", 200, "[\"additem\"]");
    check_text(qsrv.port, "/api/v2/remoteServices?serviceName=cartservice", 200, "[\"redis\"]");
    check_text(qsrv.port, "/api/v2/spans?serviceName=alpha", 200,
               "[\"get /a\",\"get /c\",\"query\"]");
    check_text(qsrv.port, "/api/v2/spans?serviceName=ALPHA", 200,
               "[\"get /a\",\"get /c\",\"query\"]");
    check_text(qsrv.port, "/api/v2/spans?serviceName=beta", 200, "[\"get /b\"]");
    check_text(qsrv.port, "/api/v2/spans", 400, "serviceName is required");
    check_text(qsrv.port, "/api/v2/spans?serviceName=", 400, "serviceName is required");
    check_text(qsrv.port, "/api/v2/remoteServices?serviceName=alpha", 200, "[\"mysql\"]");
    check_text(qsrv.port, "/api/v2/remoteServices", 400, "serviceName is required");
    check_text(qsrv.port, "/zipkin/api/v2/spans?serviceName=beta", 200, "[\"get /b\"]");
    check_text(qsrv.port, "/api/v2/autocompleteKeys", 200, "[]");
    check_text(qsrv.port, "/api/v2/autocompleteValues?key=http.path", 200, "[]");
    check_text(qsrv.port, "/api/v2/autocompleteValues", 400, "key is required");
}

/* ---- 4. trace.spans -------------------------------------------------------------------------- */

static int create(int port, const char *props)
{
    struct th_resp r = {0};
    int id = -1;
    T_EQ(th_send(port, "POST", "/ca/instrumentations", "application/json", props, &r), 0);
    t_note("create %s: %d %s", props, r.status, r.body ? r.body : "");
    T_EQ(r.status, 201);
    json_t *j = r.body ? json_loads(r.body, 0, NULL) : NULL;
    const char *s = json_string_value(json_object_get(j, "id"));
    if (s)
        id = atoi(s);
    json_decref(j);
    th_resp_free(&r);
    return id;
}

/* One OTLP span of service svc (on host: resource host.name, unless NULL), name, kind,
 * status, duration ns, ending at end_ns; with a 1 MB attribute (refused) when big. */
static void metric_span2(struct sn_pbw *w, const char *svc, const char *host, const char *name,
                         int kind, int status, uint64_t dur, uint64_t end_ns, unsigned n, bool big)
{
    char tid[33], sid[17];
    snprintf(tid, sizeof(tid), "7e7e7e7e%024x", n);
    snprintf(sid, sizeof(sid), "%016x", n);
    size_t rs = sn_pbw_begin(w, 1);
    size_t res = sn_pbw_begin(w, 1);
    pb_kv(w, 1, "service.name", 's', svc, 0, 0);
    if (host)
        pb_kv(w, 1, "host.name", 's', host, 0, 0);
    sn_pbw_end(w, res);
    size_t ss = sn_pbw_begin(w, 2);
    size_t sp = sn_pbw_begin(w, 2);
    pb_id(w, 1, tid);
    pb_id(w, 2, sid);
    pb_str(w, 5, name);
    sn_pbw_varint(w, 6, (uint64_t)kind);
    if (big) {
        char *v = malloc(1 << 20);
        memset(v, 'v', 1 << 20);
        size_t m = sn_pbw_begin(w, 9);
        pb_str(w, 1, "big");
        size_t a = sn_pbw_begin(w, 2);
        sn_pbw_bytes(w, 1, v, 1 << 20);
        sn_pbw_end(w, a);
        sn_pbw_end(w, m);
        free(v);
    }
    sn_pbw_fixed64(w, 7, end_ns - dur);
    sn_pbw_fixed64(w, 8, end_ns);
    if (status) {
        size_t st = sn_pbw_begin(w, 15);
        sn_pbw_varint(w, 3, (uint64_t)status);
        sn_pbw_end(w, st);
    }
    sn_pbw_end(w, sp);
    sn_pbw_end(w, ss);
    sn_pbw_end(w, rs);
}

static void metric_span(struct sn_pbw *w, const char *svc, const char *name, int status,
                        uint64_t dur, uint64_t end_ns, unsigned n)
{
    metric_span2(w, svc, NULL, name, 2, status, dur, end_ns, n, false);
}

/* raw value of instrumentation id over [start, start+dur) as sorted-key JSON text, polled until
 * it equals want (bounded). */
static void check_raw(int port, int id, int64_t start, int dur, const char *want)
{
    char *got = NULL;
    for (int i = 0; i < POLL_TRIES; i++) {
        int st;
        json_t *j =
            jget(port, &st, NULL,
                 "/ca/instrumentations/%d/value/raw?start_time=%" PRId64 "&duration=%d&timeout=0",
                 id, start, dur);
        free(got);
        got = json_dumps(json_object_get(j, "value"), JSON_SORT_KEYS | JSON_COMPACT);
        json_decref(j);
        if (got && strcmp(got, want) == 0)
            break;
        th_sleep_ms(POLL_MS);
    }
    t_note("instrumentation %d at %" PRId64 "+%d", id, start, dur);
    T_STR(got, want);
    free(got);
}

static void test_span_metrics(void)
{
    struct th_serve s;
    const char *extra[] = {"--no-agent", NULL};
    T_REQUIRE(th_serve_start(sonde, extra, NULL, &s) == 0);
    int lat = create(s.port, "{\"module\":\"trace\",\"stat\":\"spans\",\"decomposition\":["
                             "\"service\",\"latency\"]}");
    int err = create(s.port, "{\"module\":\"trace\",\"stat\":\"spans\",\"predicate\":{\"eq\":["
                             "\"status\",\"ERROR\"]},\"decomposition\":[\"name\"]}");
    T_REQUIRE(lat > 0 && err > 0);

    /* second E (3 s ago): web a OK 1.5 ms x3, web b ERROR 25 ms x2, api a UNSET 150 µs;
     * second E-1: api c ERROR 3 ms; Zipkin in E: zk q 2 ms (µs 2000) */
    int64_t e = (int64_t)time(NULL) - 3;
    uint64_t end = (uint64_t)e * 1000000000ULL + 500000000ULL;
    struct sn_pbw w = {0};
    unsigned n = 0;
    for (int i = 0; i < 3; i++)
        metric_span(&w, "web", "a", 1, 1500000, end + (uint64_t)i, ++n);
    for (int i = 0; i < 2; i++)
        metric_span(&w, "web", "b", 2, 25000000, end + 10, ++n);
    metric_span(&w, "api", "a", 0, 150000, end, ++n);
    metric_span(&w, "api", "c", 2, 3000000, end - 1000000000ULL, ++n);
    struct th_resp r = {0};
    T_EQ(post(s.port, "/v1/traces", "application/x-protobuf", NULL, PLAIN, w.buf, w.len, &r), 0);
    check_otlp_ok(&r, false);
    th_resp_free(&r);
    sn_pbw_fini(&w);
    char zb[512];
    snprintf(zb, sizeof(zb),
             "[{\"traceId\":\"7e7e7e7e7e7e7e7e\",\"id\":\"0000000000000099\",\"name\":\"q\","
             "\"timestamp\":%" PRIu64 ",\"duration\":2000,\"localEndpoint\":{\"serviceName\":"
             "\"zk\"},\"tags\":{\"error\":\"\"}}]",
             end / 1000 - 2000);
    T_EQ(post(s.port, "/api/v2/spans", "application/json", NULL, PLAIN, zb, strlen(zb), &r), 0);
    T_EQ(r.status, 202);
    th_resp_free(&r);

    check_raw(s.port, lat, e, 1,
              "{\"api\":[[[150000,159999],1]],\"web\":[[[1500000,1599999],3],[[25000000,25999999],"
              "2]],\"zk\":[[[2000000,2099999],1]]}");
    check_raw(s.port, lat, e - 1, 1, "{\"api\":[[[3000000,3099999],1]]}");
    check_raw(s.port, lat, e - 1, 2,
              "{\"api\":[[[150000,159999],1],[[3000000,3099999],1]],\"web\":[[[1500000,1599999],"
              "3],[[25000000,25999999],2]],\"zk\":[[[2000000,2099999],1]]}");
    /* a Zipkin span with an error tag is an ERROR span */
    check_raw(s.port, err, e, 1, "{\"b\":2,\"q\":1}");
    check_raw(s.port, err, e - 1, 2, "{\"b\":2,\"c\":1,\"q\":1}");
    check_raw(s.port, err, e - 5, 2, "{}");

    /* a heatmap of them: a PNG */
    char path[256];
    snprintf(path, sizeof(path),
             "/ca/instrumentations/%d/value/heatmap/image?start_time=%" PRId64
             "&duration=2&format=png",
             lat, e - 1);
    T_EQ(th_get(s.port, path, &r), 0);
    T_EQ(r.status, 200);
    char ct[64] = "";
    th_header(&r, "Content-Type", ct, sizeof(ct));
    T_STR(ct, "image/png");
    T_OK(r.len > 8 && memcmp(r.body, "\x89PNG\r\n\x1a\n", 8) == 0);
    th_resp_free(&r);
    snprintf(path, sizeof(path),
             "/ca/instrumentations/%d/value/heatmap/image?start_time=%" PRId64 "&duration=2", lat,
             e - 1);
    int st;
    json_t *j = jget(s.port, &st, NULL, "%s", path);
    T_EQ(st, 200);
    T_OK(json_string_length(json_object_get(j, "image")) > 100);
    json_decref(j);

    /* second E-3: by kind and host; a span refused (partialSuccess) is not counted */
    int cli = create(s.port, "{\"module\":\"trace\",\"stat\":\"spans\",\"predicate\":{\"eq\":["
                             "\"kind\",\"CLIENT\"]},\"decomposition\":[\"host\"]}");
    T_REQUIRE(cli > 0);
    uint64_t end3 = end - 3000000000ULL;
    metric_span2(&w, "web", "h1", "x", 3, 0, 1000000, end3, ++n, false);
    metric_span2(&w, "web", "h1", "x", 3, 0, 1000000, end3, ++n, false);
    metric_span2(&w, "web", "h2", "x", 2, 0, 1000000, end3, ++n, false);
    metric_span2(&w, "web", "h3", "x", 3, 0, 1000000, end3, ++n, false);
    metric_span2(&w, "rej", "h1", "x", 3, 2, 1000000, end3, ++n, true);
    T_EQ(post(s.port, "/v1/traces", "application/x-protobuf", NULL, PLAIN, w.buf, w.len, &r), 0);
    T_EQ(r.status, 200);
    int64_t rejected = -1;
    char m[512];
    T_OK(pb_export_resp(r.body ? r.body : "", r.len, &rejected, m, sizeof(m)));
    T_EQ(rejected, 1);
    th_resp_free(&r);
    sn_pbw_fini(&w);
    check_raw(s.port, cli, e - 3, 1, "{\"h1\":2,\"h3\":1}");
    check_raw(s.port, lat, e - 3, 1, "{\"web\":[[[1000000,1099999],4]]}");
    check_raw(s.port, err, e - 3, 1, "{}");

    /* a span that ended a minute ago counts in its second; a Zipkin span without a timestamp
     * counts in the second it arrived */
    int64_t late = (int64_t)time(NULL) - 60;
    metric_span(&w, "late", "l", 0, 7000000, (uint64_t)late * 1000000000ULL + 5, ++n);
    T_EQ(post(s.port, "/v1/traces", "application/x-protobuf", NULL, PLAIN, w.buf, w.len, &r), 0);
    check_otlp_ok(&r, false);
    th_resp_free(&r);
    sn_pbw_fini(&w);
    check_raw(s.port, lat, late, 1, "{\"late\":[[[7000000,7099999],1]]}");
    int64_t t0 = (int64_t)time(NULL);
    const char *nots = "[{\"traceId\":\"7e7e7e7e7e7e7e7f\",\"id\":\"0000000000000098\",\"name\":"
                       "\"nots\",\"duration\":3000,\"localEndpoint\":{\"serviceName\":\"nots\"}}]";
    T_EQ(post(s.port, "/api/v2/spans", "application/json", NULL, PLAIN, nots, strlen(nots), &r), 0);
    T_EQ(r.status, 202);
    th_resp_free(&r);
    int64_t t1 = (int64_t)time(NULL);
    th_sleep_ms(1100);
    check_raw(s.port, lat, t0, (int)(t1 - t0 + 1), "{\"nots\":[[[3000000,3099999],1]]}");

    /* the instrumentations run again after a restart */
    T_EQ(th_serve_stop(&s), 0);
    char dir[256];
    snprintf(dir, sizeof(dir), "%s", s.dir);
    T_REQUIRE(th_serve_start(sonde, extra, dir, &s) == 0);
    check_raw(s.port, lat, e, 1,
              "{\"api\":[[[150000,159999],1]],\"web\":[[[1500000,1599999],3],[[25000000,25999999],"
              "2]],\"zk\":[[[2000000,2099999],1]]}");
    int64_t e2 = t1 + 1; /* a second of its own: after the timestamp-less span's */
    for (int i = 0; i < 30 && (int64_t)time(NULL) <= e2; i++)
        th_sleep_ms(100);
    metric_span(&w, "after", "z", 2, 4000000, (uint64_t)e2 * 1000000000ULL + 1000, ++n);
    T_EQ(post(s.port, "/v1/traces", "application/x-protobuf", NULL, PLAIN, w.buf, w.len, &r), 0);
    check_otlp_ok(&r, false);
    th_resp_free(&r);
    sn_pbw_fini(&w);
    check_raw(s.port, lat, e2, 1, "{\"after\":[[[4000000,4099999],1]]}");
    check_raw(s.port, err, e2, 1, "{\"z\":1}");
    check_raw(s.port, cli, e2, 1, "{}");
    /* an instrumentation deleted: gone, the others go on */
    char del[64];
    snprintf(del, sizeof(del), "/ca/instrumentations/%d", cli);
    T_EQ(th_send(s.port, "DELETE", del, NULL, NULL, &r), 0);
    T_EQ(r.status, 204);
    th_resp_free(&r);
    metric_span2(&w, "gone", NULL, "y", 3, 2, 4000000, (uint64_t)e2 * 1000000000ULL + 2000, ++n,
                 false);
    T_EQ(post(s.port, "/v1/traces", "application/x-protobuf", NULL, PLAIN, w.buf, w.len, &r), 0);
    check_otlp_ok(&r, false);
    th_resp_free(&r);
    sn_pbw_fini(&w);
    check_raw(s.port, lat, e2, 1,
              "{\"after\":[[[4000000,4099999],1]],\"gone\":[[[4000000,4099999],1]]}");
    check_raw(s.port, err, e2, 1, "{\"y\":1,\"z\":1}");
    T_EQ(th_serve_stop(&s), 0);
}

/* ---- 4b. the base: trace.spans answers for the spans received before it existed ---------- */

/* One heatmap pixel's keys of instrumentation id at second t (width 10, height 30 of 30
 * buckets, ymax 30 ms: a row per ms; y from the top) as sorted-key JSON text, polled until it
 * equals want. */
static void check_pixel(int port, int id, int64_t t, int y, const char *want)
{
    char *got = NULL;
    for (int i = 0; i < POLL_TRIES; i++) {
        int st;
        json_t *j =
            jget(port, &st, NULL,
                 "/ca/instrumentations/%d/value/heatmap/details?start_time=%" PRId64
                 "&duration=1&width=10&height=30&nbuckets=30&ymax=30000000&x=5&y=%d&timeout=0",
                 id, t, y);
        free(got);
        got = json_dumps(json_object_get(j, "present"), JSON_SORT_KEYS | JSON_COMPACT);
        json_decref(j);
        if (got && strcmp(got, want) == 0)
            break;
        th_sleep_ms(POLL_MS);
    }
    t_note("instrumentation %d at %" PRId64 ", pixel row %d", id, t, y);
    T_STR(got, want);
    free(got);
}

/* One raw value of instrumentation id over [start, start+dur) with its "tier", polled until the
 * value is want. */
static void check_raw_tier(int port, int id, int64_t start, int dur, const char *want,
                           const char *tier)
{
    char *got = NULL, *gtier = NULL;
    for (int i = 0; i < POLL_TRIES * 3; i++) {
        int st;
        json_t *j =
            jget(port, &st, NULL,
                 "/ca/instrumentations/%d/value/raw?start_time=%" PRId64 "&duration=%d&timeout=0",
                 id, start, dur);
        free(got);
        free(gtier);
        got = json_dumps(json_object_get(j, "value"), JSON_SORT_KEYS | JSON_COMPACT);
        gtier = json_string_value(json_object_get(j, "tier"))
                    ? strdup(json_string_value(json_object_get(j, "tier")))
                    : NULL;
        json_decref(j);
        if (got && strcmp(got, want) == 0)
            break;
        th_sleep_ms(POLL_MS);
    }
    t_note("instrumentation %d at %" PRId64 "+%d", id, start, dur);
    T_STR(got, want);
    T_STR(gtier, tier);
    free(got);
    free(gtier);
}

enum { B_REQS = 1000 };

struct bjob {
    int port, sent, ok;
    int64_t t; /* the second every span ends in */
};

/* B_REQS requests of one span each ("cc", 1 ms), one after the other. */
static void *b_thread(void *arg)
{
    struct bjob *j = arg;
    for (int i = 0; i < B_REQS; i++) {
        struct sn_pbw w = {0};
        struct th_resp r = {0};
        metric_span(&w, "cc", "op", 0, 1000000, (uint64_t)j->t * 1000000000ULL + 7000, 5000u + i);
        if (post(j->port, "/v1/traces", "application/x-protobuf", NULL, PLAIN, w.buf, w.len, &r) ==
                0 &&
            r.status == 200)
            __atomic_add_fetch(&j->ok, 1, __ATOMIC_SEQ_CST);
        __atomic_add_fetch(&j->sent, 1, __ATOMIC_SEQ_CST);
        th_resp_free(&r);
        sn_pbw_fini(&w);
    }
    return NULL;
}

static const char *const base_e =
    "{\"api\":[[[150000,159999],1]],\"web\":[[[1500000,1599999],3],[[25000000,25999999],2]],"
    "\"zk\":[[[2000000,2099999],1]]}";

/* The past of the instrumentations by service (lat), by name of ERROR spans (err) and the
 * persist-data one by host (hist, retention 10 s) at seconds e, e - 1 and old. */
static void check_base_past(int port, int lat, int err, int hist, int64_t e, int64_t old)
{
    check_raw(port, lat, e, 1, base_e);
    check_raw(port, lat, e - 1, 1, "{\"api\":[[[3000000,3099999],1]]}");
    check_raw(port, err, e, 1, "{\"b\":2,\"q\":1}");
    check_raw(port, err, e - 1, 2, "{\"b\":2,\"c\":1,\"q\":1}");
    /* a heatmap of it: rows of 1 ms (30 - 1 - ms from the top) */
    check_pixel(port, lat, e, 29, "{\"api\":1}");
    check_pixel(port, lat, e, 28, "{\"web\":3}");
    check_pixel(port, lat, e, 27, "{\"zk\":1}");
    check_pixel(port, lat, e, 4, "{\"web\":2}");
    check_pixel(port, lat, e, 5, "{}");
    /* older than its memory (10 s), from before it existed: the base's records re-keyed,
     * at the raw tier, and at the 1-minute one (a 2-hour point ending with old's minute) */
    check_raw_tier(port, hist, old, 1, "{\"h1\":2,\"h2\":1}", "raw");
    int64_t m = old - old % 60;
    check_raw_tier(port, hist, m + 60 - 7200, 7200, "{\"h1\":2,\"h2\":1}", "1m");
}

static void test_span_base(void)
{
    struct th_serve s;
    const char *extra[] = {"--no-agent", NULL};
    T_REQUIRE(th_serve_start(sonde, extra, NULL, &s) == 0);

    /* spans with no instrumentation: second E (3 s ago) as in span_metrics; E - 1: api c
     * ERROR 3 ms; OLD (100 s ago: its minute has closed): CLIENT spans on hosts h1, h1, h2 and
     * a SERVER one on h3 */
    int64_t e = (int64_t)time(NULL) - 3, old = e - 97;
    uint64_t end = (uint64_t)e * 1000000000ULL + 500000000ULL;
    uint64_t oend = (uint64_t)old * 1000000000ULL + 1000;
    struct sn_pbw w = {0};
    unsigned n = 0;
    for (int i = 0; i < 3; i++)
        metric_span(&w, "web", "a", 1, 1500000, end + (uint64_t)i, ++n);
    for (int i = 0; i < 2; i++)
        metric_span(&w, "web", "b", 2, 25000000, end + 10, ++n);
    metric_span(&w, "api", "a", 0, 150000, end, ++n);
    metric_span(&w, "api", "c", 2, 3000000, end - 1000000000ULL, ++n);
    metric_span2(&w, "web", "h1", "x", 3, 0, 1000000, oend, ++n, false);
    metric_span2(&w, "web", "h1", "x", 3, 0, 1000000, oend, ++n, false);
    metric_span2(&w, "web", "h2", "x", 3, 0, 1000000, oend, ++n, false);
    metric_span2(&w, "web", "h3", "x", 2, 0, 1000000, oend, ++n, false);
    /* E - 2: a service name of 200 bytes (a frame's key keeps 127 of them) */
    char longsvc[201];
    memset(longsvc, 'l', 200);
    longsvc[200] = '\0';
    metric_span(&w, longsvc, "ln", 0, 5000000, end - 2000000000ULL, ++n);
    struct th_resp r = {0};
    T_EQ(post(s.port, "/v1/traces", "application/x-protobuf", NULL, PLAIN, w.buf, w.len, &r), 0);
    check_otlp_ok(&r, false);
    th_resp_free(&r);
    sn_pbw_fini(&w);
    char zb[512];
    snprintf(zb, sizeof(zb),
             "[{\"traceId\":\"7e7e7e7e7e7e7e7e\",\"id\":\"0000000000000099\",\"name\":\"q\","
             "\"timestamp\":%" PRIu64 ",\"duration\":2000,\"localEndpoint\":{\"serviceName\":"
             "\"zk\"},\"tags\":{\"error\":\"\"}}]",
             end / 1000 - 2000);
    T_EQ(post(s.port, "/api/v2/spans", "application/json", NULL, PLAIN, zb, strlen(zb), &r), 0);
    T_EQ(r.status, 202);
    th_resp_free(&r);

    /* then the instrumentations: their past is there at once */
    int lat = create(s.port, "{\"module\":\"trace\",\"stat\":\"spans\",\"decomposition\":["
                             "\"service\",\"latency\"]}");
    int err = create(s.port, "{\"module\":\"trace\",\"stat\":\"spans\",\"predicate\":{\"eq\":["
                             "\"status\",\"ERROR\"]},\"decomposition\":[\"name\"]}");
    int hist = create(s.port, "{\"module\":\"trace\",\"stat\":\"spans\",\"predicate\":{\"eq\":["
                              "\"kind\",\"CLIENT\"]},\"decomposition\":[\"host\"],"
                              "\"persist-data\":true,\"retention-time\":10}");
    T_REQUIRE(lat > 0 && err > 0 && hist > 0);
    check_base_past(s.port, lat, err, hist, e, old);
    /* a predicate on the whole long name holds (the base keeps its hash), not on its first
     * 127 bytes; its key is those 127 bytes, as live */
    char def[600], want[300];
    snprintf(def, sizeof(def),
             "{\"module\":\"trace\",\"stat\":\"spans\",\"predicate\":{\"eq\":[\"service\","
             "\"%s\"]},\"decomposition\":[\"name\"]}",
             longsvc);
    int lp = create(s.port, def);
    snprintf(def, sizeof(def),
             "{\"module\":\"trace\",\"stat\":\"spans\",\"predicate\":{\"eq\":[\"service\","
             "\"%.127s\"]},\"decomposition\":[\"name\"]}",
             longsvc);
    int lp127 = create(s.port, def);
    check_raw(s.port, lp, e - 2, 1, "{\"ln\":1}");
    check_raw(s.port, lp127, e - 2, 1, "{}");
    snprintf(want, sizeof(want), "{\"%.127s\":[[[5000000,5099999],1]]}", longsvc);
    check_raw(s.port, lat, e - 2, 1, want);
    /* not listed among the instrumentations; /metrics counts it */
    int st;
    json_t *j = jget(s.port, &st, NULL, "/ca/instrumentations");
    T_EQ(st, 200);
    T_EQU(json_array_size(j), 5);
    json_decref(j);
    char *m = get_text(s.port, "/metrics", &st);
    T_EQ(st, 200);
    T_OK(m && strstr(m, "\nsonde_span_base_spans_total 13\n") != NULL);
    free(m);

    /* spans arriving while an instrumentation is created count once: B_REQS requests of a
     * span ending in second C, one after the other, an instrumentation created among them
     * (requests answered while the create ran) */
    struct bjob bj = {.port = s.port, .t = (int64_t)time(NULL) - 2};
    pthread_t th;
    T_REQUIRE(pthread_create(&th, NULL, b_thread, &bj) == 0);
    for (int i = 0; i < 200 && __atomic_load_n(&bj.sent, __ATOMIC_SEQ_CST) < 60; i++)
        th_sleep_ms(5);
    int before = __atomic_load_n(&bj.sent, __ATOMIC_SEQ_CST);
    int cc = create(s.port, "{\"module\":\"trace\",\"stat\":\"spans\",\"predicate\":{\"eq\":["
                            "\"service\",\"cc\"]},\"decomposition\":[\"name\"]}");
    int during = __atomic_load_n(&bj.sent, __ATOMIC_SEQ_CST);
    pthread_join(th, NULL);
    t_note("created from request %d to %d of %d", before, during, B_REQS);
    /* requests before and after the create (how many were answered while it ran depends on
     * the machine's load: the count below must hold however many) */
    T_OK(before > 0 && during < B_REQS);
    /* every request answered 200 counted once (one refused with 503, its queue full, took
     * nothing) */
    t_note("%d of %d requests taken", bj.ok, B_REQS);
    T_OK(bj.ok > 0);
    char want_op[64], want_cc[96], want_kind[64];
    snprintf(want_op, sizeof(want_op), "{\"op\":%d}", bj.ok);
    snprintf(want_cc, sizeof(want_cc), "{\"cc\":[[[1000000,1099999],%d]]}", bj.ok);
    snprintf(want_kind, sizeof(want_kind), "{\"SERVER\":%d}", bj.ok);
    check_raw(s.port, cc, bj.t, 1, want_op);
    check_raw(s.port, lat, bj.t, 1, want_cc);

    /* after a restart: the instrumentations' past as before, and one created now too */
    T_EQ(th_serve_stop(&s), 0);
    char dir[256];
    snprintf(dir, sizeof(dir), "%s", s.dir);
    T_REQUIRE(th_serve_start(sonde, extra, dir, &s) == 0);
    check_base_past(s.port, lat, err, hist, e, old);
    check_raw(s.port, cc, bj.t, 1, want_op);
    int kind = create(s.port, "{\"module\":\"trace\",\"stat\":\"spans\",\"decomposition\":["
                              "\"kind\"]}");
    T_REQUIRE(kind > 0);
    check_raw(s.port, kind, e, 1, "{\"SERVER\":6,\"UNSPECIFIED\":1}");
    check_raw(s.port, kind, old, 1, "{\"CLIENT\":3,\"SERVER\":1}");
    check_raw(s.port, kind, bj.t, 1, want_kind);
    T_EQ(th_serve_stop(&s), 0);
}

/* ---- 5. the span-only listeners ------------------------------------------------------------- */

/* A free loopback port (bound then closed: another process may take it meanwhile). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static void test_span_listeners(void)
{
    int op = free_port(), zp = free_port();
    T_REQUIRE(op > 0 && zp > 0 && op != zp);
    char ol[64], zl[64];
    snprintf(ol, sizeof(ol), "127.0.0.1:%d", op);
    snprintf(zl, sizeof(zl), "127.0.0.1:%d", zp);
    const char *extra[] = {"--no-agent", "--otlp-listen", ol, "--zipkin-listen", zl, NULL};
    struct th_serve s;
    T_REQUIRE(th_serve_start(sonde, extra, NULL, &s) == 0);
    int ports[2] = {op, zp};
    for (int k = 0; k < 2; k++) {
        int p = ports[k];
        struct ids id;
        ids_of((unsigned)k, 0x05, &id);
        struct sn_pbw w = {0};
        struct th_resp r = {0};
        uint64_t base = recent_ns(10);
        otlp_proto(&id, base, &w);
        t_note("port %d (%s)", p, k ? "zipkin" : "otlp");
        T_EQ(post(p, "/v1/traces", "application/x-protobuf", NULL, PLAIN, w.buf, w.len, &r), 0);
        check_otlp_ok(&r, false);
        th_resp_free(&r);
        sn_pbw_fini(&w);
        char *js = zipkin_json(id.tid + 16, &id, base / 1000);
        T_EQ(post(p, "/api/v2/spans", "application/json", NULL, PLAIN, js, strlen(js), &r), 0);
        T_EQ(r.status, 202);
        th_resp_free(&r);
        free(js);
        json_t *t = wait_trace(p, id.tid, 2);
        T_OK(t != NULL);
        json_decref(t);
        t = wait_trace(p, id.tid + 16, 2);
        T_OK(t != NULL);
        json_decref(t);
        int st;
        char *b = get_text(p, "/api/v2/services", &st);
        T_EQ(st, 200);
        T_STR(b, "[\"backend\",\"frontend\"]");
        free(b);
        b = get_text(p, "/zipkin/api/v2/services", &st);
        T_EQ(st, 200);
        free(b);
        /* everything else: 404 */
        static const char *const others[] = {"/ca",
                                             "/",
                                             "/metrics",
                                             "/ca/instrumentations",
                                             "/ui/",
                                             "/ca/admin/status",
                                             "/api/v2/nothing"};
        for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
            T_EQ(th_get(p, others[i], &r), 0);
            t_note("GET %s on %d: %d", others[i], p, r.status);
            T_EQ(r.status, 404);
            th_resp_free(&r);
        }
        T_EQ(th_send(p, "POST", "/ca/instrumentations", "application/json",
                     "{\"module\":\"trace\",\"stat\":\"spans\"}", &r),
             0);
        T_EQ(r.status, 404);
        th_resp_free(&r);
        T_EQ(th_send(p, "POST", "/ca/ingest", "application/json", "{}", &r), 0);
        T_EQ(r.status, 404);
        th_resp_free(&r);
        T_EQ(th_send(p, "DELETE", "/ca/instrumentations/1", NULL, NULL, &r), 0);
        T_EQ(r.status, 404);
        th_resp_free(&r);
        T_EQ(th_request(p, "HEAD", "/ca", NULL, NULL, 0, 10000, &r), 0);
        T_EQ(r.status, 404);
        th_resp_free(&r);
        T_EQ(th_request(p, "OPTIONS", "/ca", NULL, NULL, 0, 10000, &r), 0);
        printf("# OPTIONS /ca on the %s port: %d\n", k ? "Zipkin" : "OTLP", r.status);
        th_resp_free(&r);
    }
    /* the main port still has it all */
    int st;
    char *b = get_text(s.port, "/api/v2/services", &st);
    T_EQ(st, 200);
    free(b);
    b = get_text(s.port, "/ca", &st);
    T_EQ(st, 200);
    free(b);
    T_EQ(th_serve_stop(&s), 0);
}

/* ---- 6. restart ------------------------------------------------------------------------------ */

static void test_restart(void)
{
    const char *extra[] = {"--no-agent", NULL};
    struct th_serve s;
    T_REQUIRE(th_serve_start(sonde, extra, NULL, &s) == 0);
    struct ids oid, zid;
    ids_of(0, 0x06, &oid);
    ids_of(1, 0x06, &zid);
    uint64_t base = recent_ns(10);
    struct sn_pbw w = {0};
    struct th_resp r = {0};
    otlp_proto(&oid, base, &w);
    T_EQ(post(s.port, "/v1/traces", "application/x-protobuf", NULL, PLAIN, w.buf, w.len, &r), 0);
    check_otlp_ok(&r, false);
    th_resp_free(&r);
    sn_pbw_fini(&w);
    char *zj = zipkin_json(zid.tid, &zid, base / 1000 + 5);
    T_EQ(post(s.port, "/api/v2/spans", "application/json", NULL, PLAIN, zj, strlen(zj), &r), 0);
    T_EQ(r.status, 202);
    th_resp_free(&r);
    json_decref(wait_trace(s.port, oid.tid, 2));
    json_decref(wait_trace(s.port, zid.tid, 2));
    /* then a burst, acknowledged but not waited for, and SIGTERM at once: acknowledged spans
     * are the server's to keep (its queue is written before it exits); one Zipkin proto3
     * trace with a 64-bit id among them */
    enum { BURST = 20 };
    for (unsigned i = 0; i < BURST; i++) {
        struct ids bid;
        ids_of(100 + i, 0x06, &bid);
        otlp_proto(&bid, base, &w);
        T_EQ(post(s.port, "/v1/traces", "application/x-protobuf", NULL, PLAIN, w.buf, w.len, &r),
             0);
        T_EQ(r.status, 200);
        th_resp_free(&r);
        sn_pbw_fini(&w);
    }
    struct ids z64;
    ids_of(3, 0x06, &z64);
    zipkin_proto(z64.tid + 16, &z64, base / 1000 + 9, &w);
    T_EQ(post(s.port, "/api/v2/spans", "application/x-protobuf", NULL, PLAIN, w.buf, w.len, &r), 0);
    T_EQ(r.status, 202);
    th_resp_free(&r);
    sn_pbw_fini(&w);
    T_EQ(th_serve_stop(&s), 0);

    char dir[256];
    snprintf(dir, sizeof(dir), "%s", s.dir);
    T_REQUIRE(th_serve_start(sonde, extra, dir, &s) == 0);
    int st;
    json_t *j = jget(s.port, &st, NULL, "/api/v2/trace/%s", oid.tid);
    T_EQ(st, 200);
    char *want = otlp_expected(&oid, base);
    check_spans(j, want);
    free(want);
    json_decref(j);
    j = jget(s.port, &st, NULL, "/api/v2/trace/%s", zid.tid);
    T_EQ(st, 200);
    check_spans(j, zj);
    json_decref(j);
    free(zj);
    for (unsigned i = 0; i < BURST; i++) {
        struct ids bid;
        ids_of(100 + i, 0x06, &bid);
        j = jget(s.port, &st, NULL, "/api/v2/trace/%s", bid.tid);
        t_note("burst trace %u: %d", i, st);
        T_EQ(st, 200);
        T_EQU(json_array_size(j), 2);
        json_decref(j);
    }
    j = jget(s.port, &st, NULL, "/api/v2/trace/%s", z64.tid + 16);
    T_EQ(st, 200);
    char *z64j = zipkin_json(z64.tid + 16, &z64, base / 1000 + 9);
    check_spans(j, z64j);
    free(z64j);
    json_decref(j);
    check_text(s.port, "/api/v2/services", 200, "[\"backend\",\"frontend\"]");
    check_text(s.port, "/api/v2/spans?serviceName=frontend", 200,
               "[\"get /api\",\"select users\"]");
    check_text(s.port, "/api/v2/spans?serviceName=backend", 200, "[\"get /api\",\"query\"]");
    check_text(s.port, "/api/v2/remoteServices?serviceName=backend", 200, "[\"mysql\"]");
    check_text(s.port, "/api/v2/remoteServices?serviceName=frontend", 200, "[\"postgres\"]");
    char got[1024];
    int qs;
    {
        /* traces_ids() asks qsrv; ask this server directly */
        json_t *t = jget(s.port, &qs, NULL, "/api/v2/traces?serviceName=backend");
        T_EQ(qs, 200);
        T_EQU(json_array_size(t), 2);
        json_decref(t);
        t = jget(s.port, &qs, NULL, "/api/v2/traces?limit=100");
        T_EQ(qs, 200);
        T_EQU(json_array_size(t), 3 + BURST);
        json_decref(t);
        t = jget(s.port, &qs, NULL, "/api/v2/traces?remoteServiceName=postgres&limit=100");
        T_EQ(qs, 200);
        T_EQU(json_array_size(t), 1 + BURST);
        json_decref(t);
    }
    (void)got;
    /* and it still takes spans */
    struct ids nid;
    ids_of(2, 0x06, &nid);
    otlp_proto(&nid, recent_ns(5), &w);
    T_EQ(post(s.port, "/v1/traces", "application/x-protobuf", NULL, PLAIN, w.buf, w.len, &r), 0);
    check_otlp_ok(&r, false);
    th_resp_free(&r);
    sn_pbw_fini(&w);
    j = wait_trace(s.port, nid.tid, 2);
    T_OK(j != NULL);
    json_decref(j);
    T_EQ(th_serve_stop(&s), 0);
}

/* ---- concurrent ingest: each request stored once; a full queue refuses whole requests ------- */

enum { C_THREADS = 4, C_REQS = 40 };

struct cjob {
    int port, t;
    bool big; /* requests of 2000 spans (a longer write) */
    int status[C_REQS];
    bool retry_after[C_REQS];
};

/* The trace of request (t, i): trace id 0c0c..tt..ii; 2 spans, or 2000 with big. */
static void c_request(const struct cjob *j, int i, struct sn_pbw *w)
{
    char tid[33], sid[17];
    snprintf(tid, sizeof(tid), "0c0c0c0c%08x%08x%08x", 0xc0u, (unsigned)j->t, (unsigned)i + 1);
    memset(w, 0, sizeof(*w));
    size_t rs = sn_pbw_begin(w, 1), res = sn_pbw_begin(w, 1);
    pb_kv(w, 1, "service.name", 's', "conc", 0, 0);
    sn_pbw_end(w, res);
    size_t ss = sn_pbw_begin(w, 2);
    int n = j->big ? 2000 : 2;
    uint64_t t0 = recent_ns(20);
    for (int k = 0; k < n; k++) {
        snprintf(sid, sizeof(sid), "%08x%08x", (unsigned)j->t + 1, (unsigned)(i * 10000 + k + 1));
        size_t sp = sn_pbw_begin(w, 2);
        pb_id(w, 1, tid);
        pb_id(w, 2, sid);
        pb_str(w, 5, "op");
        sn_pbw_fixed64(w, 7, t0);
        sn_pbw_fixed64(w, 8, t0 + 1000000);
        pb_kv(w, 9, "k", 'i', NULL, k, 0);
        sn_pbw_end(w, sp);
    }
    sn_pbw_end(w, ss);
    sn_pbw_end(w, rs);
}

static void *c_thread(void *arg)
{
    struct cjob *j = arg;
    for (int i = 0; i < C_REQS; i++) {
        struct sn_pbw w;
        struct th_resp r = {0};
        c_request(j, i, &w);
        j->status[i] = post(j->port, "/v1/traces", "application/x-protobuf", NULL, PLAIN, w.buf,
                            w.len, &r) == 0
                           ? r.status
                           : -1;
        char ra[16] = "";
        j->retry_after[i] = th_header(&r, "Retry-After", ra, sizeof(ra)) && strcmp(ra, "1") == 0;
        th_resp_free(&r);
        sn_pbw_fini(&w);
    }
    return NULL;
}

/* Runs C_THREADS x C_REQS requests at once on a server with extra arguments; then every
 * request answered 200 has its trace stored exactly once, every one answered 503 (with
 * Retry-After: 1) has none. Returns how many were refused. */
static int concurrent(const char *const *extra, bool big)
{
    struct th_serve s;
    static struct cjob jobs[C_THREADS];
    pthread_t th[C_THREADS];
    int nrefused503 = 0, ok = 0;
    if (th_serve_start(sonde, extra, NULL, &s) != 0) {
        T_OK(false);
        return -1;
    }
    for (int t = 0; t < C_THREADS; t++) {
        memset(&jobs[t], 0, sizeof(jobs[t]));
        jobs[t].port = s.port;
        jobs[t].t = t;
        jobs[t].big = big;
        pthread_create(&th[t], NULL, c_thread, &jobs[t]);
    }
    for (int t = 0; t < C_THREADS; t++)
        pthread_join(th[t], NULL);
    size_t want = big ? 2000 : 2;
    /* a last request, visible: the queue has passed the others */
    struct cjob last = {.port = s.port, .t = 99, .big = false};
    struct sn_pbw w;
    struct th_resp r = {0};
    for (int k = 0; k < POLL_TRIES; k++) { /* it may meet a full queue too */
        c_request(&last, 0, &w);
        post(s.port, "/v1/traces", "application/x-protobuf", NULL, PLAIN, w.buf, w.len, &r);
        sn_pbw_fini(&w);
        int st = r.status;
        th_resp_free(&r);
        if (st == 200)
            break;
        th_sleep_ms(POLL_MS);
    }
    json_decref(wait_trace(s.port, "0c0c0c0c000000c00000006300000001", 2));
    int dups = 0, lost = 0, stored_refused = 0;
    for (int t = 0; t < C_THREADS; t++) {
        for (int i = 0; i < C_REQS; i++) {
            char tid[33];
            int st;
            snprintf(tid, sizeof(tid), "0c0c0c0c%08x%08x%08x", 0xc0u, (unsigned)t, (unsigned)i + 1);
            json_t *j = jget(s.port, &st, NULL, "/api/v2/trace/%s", tid);
            size_t n = json_array_size(j);
            json_decref(j);
            if (jobs[t].status[i] == 200) {
                ok++;
                if (st != 200 || n < want) {
                    lost++;
                    t_note("request %d/%d: 200, then trace %s: %d, %zu spans", t, i, tid, st, n);
                } else if (n != want) {
                    dups++;
                    t_note("request %d/%d: trace %s has %zu spans, sent %zu", t, i, tid, n, want);
                }
            } else {
                T_EQ(jobs[t].status[i], 503);
                T_OK(jobs[t].retry_after[i]);
                nrefused503++;
                if (st != 404) {
                    stored_refused++;
                    t_note("request %d/%d: 503, yet trace %s: %d, %zu spans", t, i, tid, st, n);
                }
            }
        }
    }
    printf(
        "# %d x %d requests of %zu spans at once (--trace-queue %s): %d taken, %d refused (503); "
        "%d lost, %d stored more than once, %d refused yet stored\n",
        C_THREADS, C_REQS, want, extra[1] ? extra[2] : "default", ok, nrefused503, lost, dups,
        stored_refused);
    T_EQ(lost, 0);
    T_EQ(dups, 0);
    T_EQ(stored_refused, 0);
    T_EQ(th_serve_stop(&s), 0);
    return nrefused503;
}

static void test_concurrent_ingest(void)
{
    const char *extra[] = {"--no-agent", NULL};
    T_EQ(concurrent(extra, false), 0);
    T_EQ(concurrent(extra, true), 0);
}

static void test_queue_full(void)
{
    const char *extra[] = {"--no-agent", "--trace-queue", "1", NULL};
    int n503 = concurrent(extra, true);
    /* with one request of room and four senders, some meet a full queue (not guaranteed on
     * a fast writer: reported, not required) */
    printf("# --trace-queue 1: %d of %d requests refused\n", n503, C_THREADS * C_REQS);
    T_OK(n503 >= 0);
}

/* ---- with a tenants file: the span routes are the operator's ------------------------------- */

/* method path with token (NULL: none), a body of ctype; the status (0: no answer). */
static int call_as(int port, const char *token, const char *method, const char *path,
                   const char *ctype, const void *body, size_t len, char **reply)
{
    char auth[300], ct[200];
    const char *h[3] = {NULL, NULL, NULL};
    int nh = 0;
    if (token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        h[nh++] = auth;
    }
    if (ctype) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
        h[nh++] = ct;
    }
    struct th_resp r = {0};
    int st = th_request(port, method, path, h, body, len, 30000, &r) == 0 ? r.status : 0;
    if (reply)
        *reply = strdup(r.body ? r.body : "");
    th_resp_free(&r);
    return st;
}

static void test_tenants(void)
{
    char file[512];
    snprintf(file, sizeof(file), "%s/trace-tenants-%d.json", t_outdir(), (int)getpid());
    FILE *f = fopen(file, "w");
    T_REQUIRE(f != NULL);
    fputs("{\"operator\":{\"token\":\"operator-token\"},\"tenants\":{\"acme\":{\"token\":"
          "\"acme-token-1\",\"cgroups\":[\"/snt-trace-acme\"]}}}",
          f);
    fclose(f);
    int op = free_port();
    char ol[64];
    snprintf(ol, sizeof(ol), "127.0.0.1:%d", op);
    const char *extra[] = {"--no-agent", "--tenants", file, "--otlp-listen", ol, NULL};
    struct th_serve s;
    T_REQUIRE(th_serve_start(sonde, extra, NULL, &s) == 0);
    int ports[2] = {s.port, op};
    for (int k = 0; k < 2; k++) {
        int p = ports[k];
        struct ids id;
        ids_of((unsigned)k, 0x08, &id);
        struct sn_pbw w;
        otlp_proto(&id, recent_ns(10), &w);
        char *js = zipkin_json(id.tid + 16, &id, recent_ns(10) / 1000);
        static const char *const tokens[] = {NULL, "wrong-token-123", "acme-token-1"};
        static const int want[] = {401, 401, 403};
        for (int t = 0; t < 3; t++) {
            t_note("port %d, token %s", p, tokens[t] ? tokens[t] : "(none)");
            T_EQ(call_as(p, tokens[t], "POST", "/v1/traces", "application/x-protobuf", w.buf, w.len,
                         NULL),
                 want[t]);
            T_EQ(call_as(p, tokens[t], "POST", "/api/v2/spans", "application/json", js, strlen(js),
                         NULL),
                 want[t]);
            T_EQ(call_as(p, tokens[t], "GET", "/api/v2/services", NULL, NULL, 0, NULL), want[t]);
            T_EQ(
                call_as(p, tokens[t], "GET", "/api/v2/trace/0123456789abcdef", NULL, NULL, 0, NULL),
                want[t]);
        }
        T_EQ(call_as(p, "operator-token", "POST", "/v1/traces", "application/x-protobuf", w.buf,
                     w.len, NULL),
             200);
        T_EQ(call_as(p, "operator-token", "POST", "/api/v2/spans", "application/json", js,
                     strlen(js), NULL),
             202);
        sn_pbw_fini(&w);
        free(js);
        char path[128], *body = NULL;
        int st = 0;
        snprintf(path, sizeof(path), "/api/v2/trace/%s", id.tid);
        for (int i = 0; i < POLL_TRIES; i++) {
            free(body);
            st = call_as(p, "operator-token", "GET", path, NULL, NULL, 0, &body);
            if (st == 200)
                break;
            th_sleep_ms(POLL_MS);
        }
        T_EQ(st, 200);
        free(body);
    }
    char *body = NULL;
    T_EQ(call_as(s.port, "operator-token", "GET", "/api/v2/services", NULL, NULL, 0, &body), 200);
    T_STR(body, "[\"backend\",\"frontend\"]");
    free(body);

    /* trace.spans has no container field: a tenant's scope has no such instrumentation (else
     * the tenant would read the operator's spans) */
    const char *def = "{\"module\":\"trace\",\"stat\":\"spans\",\"decomposition\":[\"service\"]}";
    int st = call_as(s.port, "acme-token-1", "POST", "/ca/customers/acme/instrumentations",
                     "application/json", def, strlen(def), &body);
    printf("# a tenant creating trace.spans: %d %.300s\n", st, body);
    T_EQ(st, 409);
    T_OK(body && strstr(body, "not a valid module/stat pair") != NULL);
    if (st == 201) { /* then it must see nothing of the operator's spans */
        json_t *j = json_loads(body, 0, NULL);
        const char *iid = json_string_value(json_object_get(j, "id"));
        char path[256], *raw = NULL;
        int64_t e = (int64_t)time(NULL) - 2;
        struct sn_pbw w = {0};
        metric_span(&w, "secret-service", "op", 0, 1000000, (uint64_t)e * 1000000000ULL, 77);
        T_EQ(call_as(s.port, "operator-token", "POST", "/v1/traces", "application/x-protobuf",
                     w.buf, w.len, NULL),
             200);
        sn_pbw_fini(&w);
        th_sleep_ms(500);
        snprintf(path, sizeof(path),
                 "/ca/customers/acme/instrumentations/%s/value/raw?start_time=%" PRId64
                 "&duration=1&timeout=0",
                 iid ? iid : "0", e);
        call_as(s.port, "acme-token-1", "GET", path, NULL, NULL, 0, &raw);
        printf("# the tenant's trace.spans after the operator's span: %.300s\n", raw);
        T_OK(raw && !strstr(raw, "secret-service"));
        free(raw);
        json_decref(j);
    }
    free(body);
    T_EQ(th_serve_stop(&s), 0);
}

/* ---- 7. retention flag ----------------------------------------------------------------------- */

static void test_retention_flag(void)
{
    char cmd[1024], out[4096], err[4096];
    snprintf(cmd, sizeof(cmd),
             "'%s' serve --no-agent --listen 127.0.0.1:0 --data '%s/trace-ret' "
             "--trace-retention 10s",
             sonde, t_outdir());
    int rc = t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err));
    t_note("stderr: %s", err);
    T_EQ(rc, 2);
    T_OK(strstr(err, "--trace-retention wants a duration of a minute at least") != NULL);
    snprintf(cmd, sizeof(cmd),
             "'%s' serve --no-agent --listen 127.0.0.1:0 --data '%s/trace-ret' "
             "--trace-retention 59s",
             sonde, t_outdir());
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 2);
    /* a minute is enough */
    const char *extra[] = {"--no-agent", "--trace-retention", "1m", NULL};
    struct th_serve s;
    T_REQUIRE(th_serve_start(sonde, extra, NULL, &s) == 0);
    /* a trace that ended 10 minutes ago goes with the maintenance after a write; a new one
     * stays */
    struct ids old, fresh;
    ids_of(0, 0x07, &old);
    ids_of(1, 0x07, &fresh);
    char *oj = zipkin_json(old.tid, &old, recent_ns(600) / 1000);
    char *fj = zipkin_json(fresh.tid, &fresh, recent_ns(5) / 1000);
    for (char *q = oj; (q = strstr(q, "\"backend\"")) != NULL;)
        memcpy(q, "\"oldserv\"", 9); /* its own service */
    struct th_resp r = {0};
    T_EQ(post(s.port, "/api/v2/spans", "application/json", NULL, PLAIN, oj, strlen(oj), &r), 0);
    T_EQ(r.status, 202);
    th_resp_free(&r);
    th_sleep_ms(1100);
    T_EQ(post(s.port, "/api/v2/spans", "application/json", NULL, PLAIN, fj, strlen(fj), &r), 0);
    T_EQ(r.status, 202);
    th_resp_free(&r);
    json_t *j = wait_trace(s.port, fresh.tid, 2);
    T_OK(j != NULL);
    json_decref(j);
    int st = 0;
    for (int i = 0; i < POLL_TRIES; i++) {
        json_decref(jget(s.port, &st, NULL, "/api/v2/trace/%s", old.tid));
        if (st == 404)
            break;
        th_sleep_ms(POLL_MS);
    }
    T_EQ(st, 404);
    char *svc = services(s.port);
    /* the old trace's service stays listed (the names index is not expired): reported only */
    printf("# services once the old trace is gone: %s\n", svc);
    free(svc);
    free(oj);
    free(fj);
    T_EQ(th_serve_stop(&s), 0);
}

/* A server without spans: empty answers (run last: a sanitized server has died of them). */
static void test_empty_store(void)
{
    const char *extra[] = {"--no-agent", NULL};
    struct th_serve s;
    T_REQUIRE(th_serve_start(sonde, extra, NULL, &s) == 0);
    check_text(s.port, "/api/v2/traceMany?traceIds=0000000000000001,0000000000000002", 200, "[]");
    check_text(s.port, "/api/v2/services", 200, "[]");
    check_text(s.port, "/api/v2/traces", 200, "[]");
    check_text(s.port, "/api/v2/spans?serviceName=x", 200, "[]");
    T_EQ(th_serve_stop(&s), 0);
}

int main(int argc, char **argv)
{
    sonde = th_sonde_main(argc, argv); /* SONDE [CASE-FILTER] */
    const char *extra[] = {"--no-agent", NULL};
    if (th_serve_start(sonde, extra, NULL, &srv) != 0) {
        fprintf(stderr, "cannot start %s serve\n", sonde);
        return 1;
    }
    t_run("roundtrip_otlp", test_roundtrip_otlp);
    t_run("roundtrip_zipkin", test_roundtrip_zipkin);
    t_run("ctype_params", test_ctype_params);
    t_run("bad_otlp", test_bad_otlp);
    t_run("bad_zipkin", test_bad_zipkin);
    t_run("bad_nothing_stored", test_bad_nothing_stored);
    T_EQ(th_serve_stop(&srv), 0);

    if (th_serve_start(sonde, extra, NULL, &qsrv) != 0) {
        fprintf(stderr, "cannot start %s serve\n", sonde);
        return 1;
    }
    q_now_ms = (int64_t)time(NULL) * 1000;
    q_load();
    t_run("query_traces", test_query_traces);
    t_run("query_trace_ids", test_query_trace_ids);
    t_run("query_names", test_query_names);
    t_run("query_limit_long", test_query_limit_long);
    t_run("query_empty", test_query_empty);
    T_EQ(th_serve_stop(&qsrv), 0);

    t_run("span_metrics", test_span_metrics);
    t_run("span_base", test_span_base);
    t_run("span_listeners", test_span_listeners);
    t_run("restart", test_restart);
    t_run("concurrent_ingest", test_concurrent_ingest);
    t_run("queue_full", test_queue_full);
    t_run("tenants", test_tenants);
    t_run("retention_flag", test_retention_flag);
    t_run("empty_store", test_empty_store);
    return t_done();
}
