/*
 * Conformance of `sonde serve`'s value resources (../shared/ref/joyent-ca.md §1.5, §4.1) and of
 * its ingest endpoint (Sonde's extension), against a server without the local agent
 * (--no-agent): every value comes from frames POSTed to /ca/ingest at chosen seconds, so each
 * reply can be checked exactly.
 *
 * Covered: the .../value and .../value/heatmap listings; value/raw for the four arities with
 * exact values, empty values and sums over several seconds; two hosts merging in one second
 * (counts add, histograms merge) with minreporting and nsources; point-scope metrics (a second
 * report of one host in a second is ignored, a multi-slot interval is its first slot);
 * granularity 10 (start rounded down, duration up, requested_* as asked); every combination
 * of start_time, duration and end_time and CA's interval errors; ndatapoints; the future
 * check; the long poll (data arriving while a request waits, every expected source awaited,
 * and the timeout); the timeout and other parameters' bounds; transformations; ingest bodies
 * (JSON object, array, lines, binary), frames dropped as unknown, late or future, refused
 * bodies (400, nothing applied), the /metrics counters; retention (slots expire, and frames
 * stamped ahead do not displace retained ones); a tenant's ingest addressing only its own
 * instrumentations.
 *
 * Seconds are chosen relative to the current time (inside the retention, never ahead unless
 * that is the point), and queries name their interval explicitly. Data older than 15 s never
 * makes a request wait (no source is "expected"); the cases with recent data use timeout=0
 * unless they test the long poll itself. Usage: test_serve_values SONDE [CASE-FILTER].
 */
#include <endian.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/hist.h"
#include "http.h"
#include "t.h"
#include "wire/frame.h"

static const char *sonde;
static struct th_serve srv; /* the shared server (--no-agent) */
static bool srv_up;

/* ---- small helpers ------------------------------------------------------------------------- */

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* One request with an optional bearer token and content type. */
static int http(int port, const char *tok, const char *method, const char *path, const char *ctype,
                const void *body, size_t blen, int timeout_ms, struct th_resp *r)
{
    char auth[200], ct[200];
    const char *h[3];
    int n = 0;

    if (tok) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok);
        h[n++] = auth;
    }
    if (ctype) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
        h[n++] = ct;
    }
    h[n] = NULL;
    return th_request(port, method, path, h, body, blen, timeout_ms, r);
}

/* A request whose reply is parsed as JSON (NULL when it is not JSON); *status gets the status
 * (0 on a socket error). */
static json_t *jreq(int port, const char *tok, const char *method, const char *path,
                    const char *ctype, const char *body, int *status)
{
    struct th_resp r = {0};
    json_t *j = NULL;
    int rc = http(port, tok, method, path, ctype, body, body ? strlen(body) : 0, 10000, &r);

    *status = rc == 0 ? r.status : 0;
    if (rc == 0 && r.body && r.len)
        j = json_loadb(r.body, r.len, JSON_DECODE_ANY, NULL);
    if (rc != 0)
        t_note("%s %s: request failed (%d)", method, path, rc);
    th_resp_free(&r);
    return j;
}

/* GET on the shared server, path formatted. */
__attribute__((format(printf, 2, 3))) static json_t *getf(int *status, const char *fmt, ...)
{
    char path[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    return jreq(srv.port, NULL, "GET", path, NULL, NULL, status);
}

static bool jeq_at(const char *file, int line, const char *expr, const json_t *got,
                   const char *want)
{
    json_error_t e;
    json_t *w = json_loads(want, JSON_DECODE_ANY, &e);
    bool ok = w && got && json_equal((json_t *)got, w);
    if (!ok) {
        char *g = got ? json_dumps(got, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        t_note("got %.900s; want %.900s", g ? g : "(null)", want);
        free(g);
    }
    json_decref(w);
    ok = t_check(file, line, expr, ok);
    t_note("%s", ""); /* the note was this check's */
    return ok;
}
/* got (a json_t *) equals the JSON text want (objects in any key order, arrays in order). */
#define T_JEQ(got, want) jeq_at(__FILE__, __LINE__, #got " == " #want, (got), (want))

/* An integer member, or INT64_MIN when absent or not an integer. */
static int64_t jint(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : INT64_MIN;
}

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static const char *err_code(const json_t *j)
{
    return jstr(json_object_get(j, "error"), "code");
}

static const char *err_msg(const json_t *j)
{
    return jstr(json_object_get(j, "error"), "message");
}

/* CA's 409 validation error with exactly this message. */
#define T_INVAL(st, j, msg)                                                                        \
    do {                                                                                           \
        T_EQ(st, 409);                                                                             \
        T_STR(err_code(j), "ECA_INVAL");                                                           \
        T_STR(err_msg(j), msg);                                                                    \
    } while (0)

static bool starts_with(const char *s, const char *prefix)
{
    return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Creates an instrumentation (JSON properties) under base ("/ca" or "/ca/customers/x") and
 * returns its id, or -1. */
static int create_on(int port, const char *tok, const char *base, const char *props)
{
    char path[256];
    int st;
    snprintf(path, sizeof(path), "%s/instrumentations", base);
    json_t *j = jreq(port, tok, "POST", path, "application/json", props, &st);
    const char *id = jstr(j, "id");
    int out = st == 201 && id ? atoi(id) : -1;
    if (out < 0)
        t_note("create %s: status %d", props, st);
    T_EQ(st, 201);
    json_decref(j);
    return out;
}

static int create(const char *props)
{
    return create_on(srv.port, NULL, "/ca", props);
}

/* A JSON frame, in one of 32 rotating buffers (enough for one request's body). */
static const char *fr(const char *id, const char *host, int64_t t, const char *arity,
                      const char *value)
{
    static char bufs[32][1024];
    static int next;
    char *b = bufs[next++ % 32];
    snprintf(b, sizeof(bufs[0]),
             "{\"v\":1,\"id\":\"%s\",\"host\":\"%s\",\"t\":%" PRId64
             ",\"arity\":\"%s\",\"value\":%s}",
             id, host, t, arity, value);
    return b;
}

static const char *ids(int id)
{
    static char bufs[16][16];
    static int next;
    char *b = bufs[next++ % 16];
    snprintf(b, sizeof(bufs[0]), "%d", id);
    return b;
}

#define SC "scalar"
#define DI "discrete-decomposition"
#define NU "numeric-decomposition"

/* POSTs body to base/ingest; returns the parsed reply. */
static json_t *ingest_on(int port, const char *tok, const char *base, const char *ctype,
                         const char *body, int *st)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/ingest", base);
    return jreq(port, tok, "POST", path, ctype, body, st);
}

/* Ingests body on the shared server, expecting every frame accepted. */
static void feed(const char *body, int nframes)
{
    int st;
    char want[256];
    json_t *j = ingest_on(srv.port, NULL, "/ca", "application/json", body, &st);
    T_EQ(st, 200);
    snprintf(want, sizeof(want),
             "{\"frames\":%d,\"accepted\":%d,\"unknown\":0,\"late\":0,\"future\":0,"
             "\"duplicate\":0}",
             nframes, nframes);
    T_JEQ(j, want);
    json_decref(j);
}

/* value/raw of instrumentation id with a query; expects 200 and returns the reply. */
__attribute__((format(printf, 2, 3))) static json_t *raw(int id, const char *fmt, ...)
{
    char q[512];
    int st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof(q), fmt, ap);
    va_end(ap);
    json_t *j = getf(&st, "/ca/instrumentations/%d/value/raw?%s", id, q);
    if (st != 200)
        t_note("raw %d?%s: status %d, message %s", id, q, st, err_msg(j) ? err_msg(j) : "-");
    T_EQ(st, 200);
    t_note("%s", "");
    return j;
}

/* The value of raw's reply for [start, start + duration) with timeout=0 (past data). */
static json_t *value_of(json_t **keep, int id, int64_t start, int64_t duration)
{
    *keep = raw(id, "start_time=%" PRId64 "&duration=%" PRId64 "&timeout=0", start, duration);
    return json_object_get(*keep, "value");
}

#define T_VALUE(id, start, duration, want)                                                         \
    do {                                                                                           \
        json_t *keep_;                                                                             \
        T_JEQ(value_of(&keep_, id, start, duration), want);                                        \
        json_decref(keep_);                                                                        \
    } while (0)

/* The common fields of a point (§1.5). */
static void check_point(const json_t *o, int64_t start, int64_t duration, int64_t rstart,
                        int64_t rduration)
{
    T_EQ(jint(o, "start_time"), start);
    T_EQ(jint(o, "duration"), duration);
    T_EQ(jint(o, "end_time"), start + duration);
    T_EQ(jint(o, "requested_start_time"), rstart);
    T_EQ(jint(o, "requested_duration"), rduration);
    T_EQ(jint(o, "requested_end_time"), rstart + rduration);
    T_OK(jint(o, "nsources") >= 0);
    T_OK(jint(o, "minreporting") >= 0);
    T_JEQ(json_object_get(o, "transformations"), "{}");
}

/* A series of GET /metrics on port (with token tok), e.g. `sonde_frames_total{origin="all"}`,
 * or -1 when absent. */
static double metric_on(int port, const char *tok, const char *series)
{
    struct th_resp r = {0};
    double v = -1;
    size_t n = strlen(series);

    if (http(port, tok, "GET", "/metrics", NULL, NULL, 0, 10000, &r) == 0 && r.status == 200) {
        for (const char *p = r.body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
            if (strncmp(p, series, n) == 0 && p[n] == ' ') {
                v = strtod(p + n + 1, NULL);
                break;
            }
        }
    }
    th_resp_free(&r);
    return v;
}

static double metric(const char *series)
{
    return metric_on(srv.port, NULL, series);
}

#define M_ALL       "sonde_frames_total{origin=\"all\"}"
#define M_INVALID   "sonde_frames_dropped_total{reason=\"invalid\"}"
#define M_UNKNOWN   "sonde_frames_dropped_total{reason=\"unknown\"}"
#define M_LATE      "sonde_frames_dropped_total{reason=\"late\"}"
#define M_FUTURE    "sonde_frames_dropped_total{reason=\"future\"}"
#define M_DUPLICATE "sonde_frames_dropped_total{reason=\"duplicate\"}"

#define SYSCALLS(decomp)                                                                           \
    "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":" decomp "}"

/* ---- listings ------------------------------------------------------------------------------ */

static void test_value_listings(void)
{
    int sc = create(SYSCALLS("[]"));
    int di = create(SYSCALLS("[\"execname\"]"));
    int nu = create(SYSCALLS("[\"latency\"]"));
    int nk = create(SYSCALLS("[\"execname\",\"latency\"]"));
    char want[1024];
    int st;
    json_t *j;
    T_REQUIRE(sc > 0 && di > 0 && nu > 0 && nk > 0);

    /* scalar and discrete: raw only; heatmap listing 404 with an empty body */
    int plain[] = {sc, di};
    for (int i = 0; i < 2; i++) {
        snprintf(want, sizeof(want),
                 "[{\"name\":\"value_raw\",\"uri\":\"/ca/instrumentations/%d/value/raw\"}]",
                 plain[i]);
        j = getf(&st, "/ca/instrumentations/%d/value", plain[i]);
        T_EQ(st, 200);
        T_JEQ(j, want);
        json_decref(j);
        j = getf(&st, "/ca/instrumentations/%d/value/", plain[i]); /* trailing slash */
        T_EQ(st, 200);
        T_JEQ(j, want);
        json_decref(j);

        static const char *const hm[] = {"heatmap", "heatmap/", "heatmap/image"};
        for (int k = 0; k < 3; k++) {
            struct th_resp r = {0};
            char path[128];
            snprintf(path, sizeof(path), "/ca/instrumentations/%d/value/%s", plain[i], hm[k]);
            T_EQ(th_get(srv.port, path, &r), 0);
            T_EQ(r.status, 404);
            T_EQ(r.len, 0);
            th_resp_free(&r);
        }
    }

    /* numeric (with and without a discrete key): raw and heatmap; the heatmap's four */
    int num[] = {nu, nk};
    for (int i = 0; i < 2; i++) {
        int id = num[i];
        snprintf(want, sizeof(want),
                 "[{\"name\":\"value_raw\",\"uri\":\"/ca/instrumentations/%d/value/raw\"},"
                 "{\"name\":\"value_heatmap\",\"uri\":\"/ca/instrumentations/%d/value/heatmap\"}]",
                 id, id);
        j = getf(&st, "/ca/instrumentations/%d/value", id);
        T_EQ(st, 200);
        T_JEQ(j, want);
        json_decref(j);
        snprintf(want, sizeof(want),
                 "[{\"name\":\"image\",\"uri\":\"/ca/instrumentations/%d/value/heatmap/image\"},"
                 "{\"name\":\"details\",\"uri\":\"/ca/instrumentations/%d/value/heatmap/details\"},"
                 "{\"name\":\"average\",\"uri\":\"/ca/instrumentations/%d/value/heatmap/average\"},"
                 "{\"name\":\"percentile\","
                 "\"uri\":\"/ca/instrumentations/%d/value/heatmap/percentile\"}]",
                 id, id, id, id);
        j = getf(&st, "/ca/instrumentations/%d/value/heatmap", id);
        T_EQ(st, 200);
        T_JEQ(j, want);
        json_decref(j);
        j = getf(&st, "/ca/instrumentations/%d/value/heatmap/", id);
        T_EQ(st, 200);
        T_JEQ(j, want);
        json_decref(j);
    }

    /* an unknown instrumentation: empty 404 for every value resource */
    const char *paths[] = {"/ca/instrumentations/9999/value", "/ca/instrumentations/9999/value/raw",
                           "/ca/instrumentations/9999/value/heatmap"};
    for (int i = 0; i < 3; i++) {
        struct th_resp r = {0};
        T_EQ(th_get(srv.port, paths[i], &r), 0);
        T_EQ(r.status, 404);
        T_EQ(r.len, 0);
        th_resp_free(&r);
    }
}

/* ---- raw values, one host -------------------------------------------------------------------- */

static void test_raw_scalar(void)
{
    int id = create(SYSCALLS("[]"));
    int64_t T = now_s() - 60;
    char body[2048];
    T_REQUIRE(id > 0);

    snprintf(body, sizeof(body), "[%s,%s,%s,%s]", fr(ids(id), "h1", T, SC, "5"),
             fr(ids(id), "h1", T + 1, SC, "7"), fr(ids(id), "h1", T + 2, SC, "100"),
             fr(ids(id), "h1", T + 4, SC, "1"));
    feed(body, 4);

    json_t *j = raw(id, "start_time=%" PRId64, T);
    T_JEQ(json_object_get(j, "value"), "5");
    check_point(j, T, 1, T, 1);
    T_EQ(jint(j, "minreporting"), 1);
    T_OK(!json_object_get(j, "delay")); /* it did not wait */
    json_decref(j);

    /* the reply on the wire: JSON with CA's trailing newline */
    struct th_resp r = {0};
    char path[256], ct[128];
    snprintf(path, sizeof(path), "/ca/instrumentations/%d/value/raw?start_time=%" PRId64, id, T);
    T_EQ(th_get(srv.port, path, &r), 0);
    T_EQ(r.status, 200);
    T_OK(th_header(&r, "Content-Type", ct, sizeof(ct)) && starts_with(ct, "application/json"));
    T_OK(r.len > 0 && r.body[r.len - 1] == '\n');
    th_resp_free(&r);

    T_VALUE(id, T + 1, 1, "7");
    T_VALUE(id, T + 3, 1, "0"); /* nothing reported: 0 */
    T_VALUE(id, T - 10, 5, "0");
    T_VALUE(id, T, 2, "12"); /* sums over several seconds */
    T_VALUE(id, T, 3, "112");
    T_VALUE(id, T, 5, "113");
    T_VALUE(id, T + 1, 4, "108");
    T_VALUE(id, T - 5, 30, "113");

    j = raw(id, "start_time=%" PRId64 "&duration=5", T);
    check_point(j, T, 5, T, 5);
    T_EQ(jint(j, "minreporting"), 0); /* T+3 had no source */
    json_decref(j);
    j = raw(id, "start_time=%" PRId64 "&duration=3", T);
    T_EQ(jint(j, "minreporting"), 1);
    json_decref(j);

    /* an interval metric: a second report of the same host in the same second adds */
    snprintf(body, sizeof(body), "%s", fr(ids(id), "h1", T, SC, "2"));
    feed(body, 1);
    T_VALUE(id, T, 1, "7");
    T_VALUE(id, T, 3, "114");
}

static void test_raw_discrete(void)
{
    int id = create(SYSCALLS("[\"execname\"]"));
    int64_t T = now_s() - 70;
    char body[2048];
    T_REQUIRE(id > 0);

    snprintf(body, sizeof(body), "[%s,%s,%s]",
             fr(ids(id), "h1", T, DI, "{\"nginx\":3,\"postgres\":1}"),
             fr(ids(id), "h1", T + 1, DI, "{\"nginx\":2,\"sh\":5}"),
             fr(ids(id), "h1", T + 3, DI, "{\"zsh\":9}"));
    feed(body, 3);

    json_t *j = raw(id, "start_time=%" PRId64, T);
    T_JEQ(json_object_get(j, "value"), "{\"nginx\":3,\"postgres\":1}");
    check_point(j, T, 1, T, 1);
    json_decref(j);
    T_VALUE(id, T + 1, 1, "{\"nginx\":2,\"sh\":5}");
    T_VALUE(id, T + 2, 1, "{}");
    T_VALUE(id, T - 30, 10, "{}");
    T_VALUE(id, T, 2, "{\"nginx\":5,\"postgres\":1,\"sh\":5}");
    T_VALUE(id, T, 4, "{\"nginx\":5,\"postgres\":1,\"sh\":5,\"zsh\":9}");
    T_VALUE(id, T + 1, 3, "{\"nginx\":2,\"sh\":5,\"zsh\":9}");
}

static void test_raw_numeric(void)
{
    int id = create(SYSCALLS("[\"latency\"]"));
    int64_t T = now_s() - 80;
    char body[2048];
    T_REQUIRE(id > 0);

    snprintf(body, sizeof(body), "[%s,%s,%s]",
             fr(ids(id), "h1", T, NU, "[[[10,10],3],[[1000,1099],2],[[2000000,2099999],1]]"),
             fr(ids(id), "h1", T + 1, NU, "[[[100,109],4],[[1000,1099],5]]"),
             fr(ids(id), "h1", T + 2, NU, "[[[5000,5099],6],[[20,20],1]]")); /* unsorted */
    feed(body, 3);

    json_t *j = raw(id, "start_time=%" PRId64, T);
    T_JEQ(json_object_get(j, "value"), "[[[10,10],3],[[1000,1099],2],[[2000000,2099999],1]]");
    check_point(j, T, 1, T, 1);
    json_decref(j);
    T_VALUE(id, T + 1, 1, "[[[100,109],4],[[1000,1099],5]]");
    T_VALUE(id, T + 2, 1, "[[[20,20],1],[[5000,5099],6]]");
    T_VALUE(id, T + 3, 1, "[]");
    T_VALUE(id, T - 20, 10, "[]");
    /* merged, sorted by lo, counts of equal ranges added */
    T_VALUE(id, T, 2, "[[[10,10],3],[[100,109],4],[[1000,1099],7],[[2000000,2099999],1]]");
    T_VALUE(id, T, 3,
            "[[[10,10],3],[[20,20],1],[[100,109],4],[[1000,1099],7],[[5000,5099],6],"
            "[[2000000,2099999],1]]");
    T_VALUE(id, T + 1, 2, "[[[20,20],1],[[100,109],4],[[1000,1099],5],[[5000,5099],6]]");
}

static void test_raw_numeric_by_key(void)
{
    int id = create(SYSCALLS("[\"execname\",\"latency\"]"));
    int64_t T = now_s() - 90;
    char body[2048];
    T_REQUIRE(id > 0);

    snprintf(body, sizeof(body), "[%s,%s]",
             fr(ids(id), "h1", T, NU,
                "{\"nginx\":[[[2000000,2099999],18],[[2100000,2199999],2]],\"sh\":[[[10,10],1]]}"),
             fr(ids(id), "h1", T + 1, NU,
                "{\"nginx\":[[[1000,1099],4],[[2000000,2099999],1]],\"zsh\":[[[100,109],7]]}"));
    feed(body, 2);

    json_t *j = raw(id, "start_time=%" PRId64, T);
    T_JEQ(json_object_get(j, "value"),
          "{\"nginx\":[[[2000000,2099999],18],[[2100000,2199999],2]],\"sh\":[[[10,10],1]]}");
    check_point(j, T, 1, T, 1);
    json_decref(j);
    T_VALUE(id, T + 2, 1, "{}");
    T_VALUE(id, T - 40, 10, "{}");
    T_VALUE(id, T, 2,
            "{\"nginx\":[[[1000,1099],4],[[2000000,2099999],19],[[2100000,2199999],2]],"
            "\"sh\":[[[10,10],1]],\"zsh\":[[[100,109],7]]}");
}

/* ---- two sources ------------------------------------------------------------------------------
 */

static void test_two_sources_merge(void)
{
    int sc = create(SYSCALLS("[]"));
    int di = create(SYSCALLS("[\"execname\"]"));
    int nu = create(SYSCALLS("[\"latency\"]"));
    int nk = create(SYSCALLS("[\"execname\",\"latency\"]"));
    int64_t T = now_s() - 100;
    char body[4096];
    json_t *j;
    T_REQUIRE(sc > 0 && di > 0 && nu > 0 && nk > 0);

    snprintf(body, sizeof(body), "[%s,%s,%s,%s,%s,%s,%s,%s,%s]", fr(ids(sc), "web1", T, SC, "3"),
             fr(ids(sc), "web2", T, SC, "4"), fr(ids(sc), "web1", T + 1, SC, "5"),
             fr(ids(di), "web1", T, DI, "{\"x\":1,\"y\":2}"),
             fr(ids(di), "web2", T, DI, "{\"y\":3,\"z\":4}"),
             fr(ids(nu), "web1", T, NU, "[[[10,10],1],[[1000,1099],2]]"),
             fr(ids(nu), "web2", T, NU, "[[[100,109],3],[[1000,1099],4]]"),
             fr(ids(nk), "web1", T, NU, "{\"k\":[[[10,10],1]]}"),
             fr(ids(nk), "web2", T, NU, "{\"k\":[[[20,20],2]],\"j\":[[[10,10],5]]}"));
    feed(body, 9);

    j = raw(sc, "start_time=%" PRId64, T);
    T_JEQ(json_object_get(j, "value"), "7");
    T_EQ(jint(j, "minreporting"), 2);
    json_decref(j);
    j = raw(sc, "start_time=%" PRId64 "&duration=2", T);
    T_JEQ(json_object_get(j, "value"), "12");
    T_EQ(jint(j, "minreporting"), 1); /* only web1 reported at T+1 */
    json_decref(j);
    j = raw(sc, "start_time=%" PRId64 "&duration=3", T);
    T_EQ(jint(j, "minreporting"), 0); /* nobody at T+2 */
    json_decref(j);

    j = raw(di, "start_time=%" PRId64, T);
    T_JEQ(json_object_get(j, "value"), "{\"x\":1,\"y\":5,\"z\":4}");
    T_EQ(jint(j, "minreporting"), 2);
    json_decref(j);
    j = raw(nu, "start_time=%" PRId64, T);
    T_JEQ(json_object_get(j, "value"), "[[[10,10],1],[[100,109],3],[[1000,1099],6]]");
    T_EQ(jint(j, "minreporting"), 2);
    json_decref(j);
    j = raw(nk, "start_time=%" PRId64, T);
    T_JEQ(json_object_get(j, "value"), "{\"k\":[[[10,10],1],[[20,20],2]],\"j\":[[[10,10],5]]}");
    T_EQ(jint(j, "minreporting"), 2);
    json_decref(j);

    /* sources reporting now: nsources counts both (recent data: timeout=0 never waits) */
    int64_t R = now_s() - 6;
    snprintf(body, sizeof(body), "[%s,%s]", fr(ids(sc), "web1", R, SC, "10"),
             fr(ids(sc), "web2", R, SC, "20"));
    feed(body, 2);
    j = raw(sc, "start_time=%" PRId64 "&timeout=0", R);
    T_JEQ(json_object_get(j, "value"), "30");
    T_EQ(jint(j, "minreporting"), 2);
    T_EQ(jint(j, "nsources"), 2);
    json_decref(j);
    int st;
    j = getf(&st, "/ca/instrumentations/%d", sc);
    T_EQ(st, 200);
    T_EQ(jint(j, "nsources"), 2);
    json_decref(j);
}

/* ---- point scope ------------------------------------------------------------------------------
 */

static void test_point_scope(void)
{
    int id = create("{\"module\":\"memory\",\"stat\":\"rss\"}");
    int64_t T = now_s() - 110;
    char body[2048];
    int st;
    json_t *j;
    T_REQUIRE(id > 0);

    j = getf(&st, "/ca/instrumentations/%d", id);
    T_STR(jstr(j, "value-scope"), "point");
    T_STR(jstr(j, "value-arity"), "scalar");
    json_decref(j);

    double dup0 = metric(M_DUPLICATE);
    snprintf(body, sizeof(body), "[%s,%s,%s,%s]", fr(ids(id), "a", T, SC, "100"),
             fr(ids(id), "b", T, SC, "50"), fr(ids(id), "a", T + 1, SC, "200"),
             fr(ids(id), "a", T + 3, SC, "400"));
    feed(body, 4);

    /* a second report of host a for T: ignored */
    j = ingest_on(srv.port, NULL, "/ca", "application/json", fr(ids(id), "a", T, SC, "999"), &st);
    T_EQ(st, 200);
    T_JEQ(j, "{\"frames\":1,\"accepted\":0,\"unknown\":0,\"late\":0,\"future\":0,\"duplicate\":1}");
    json_decref(j);
    /* the same within one body: the first counts */
    snprintf(body, sizeof(body), "[%s,%s]", fr(ids(id), "c", T + 2, SC, "7"),
             fr(ids(id), "c", T + 2, SC, "8"));
    j = ingest_on(srv.port, NULL, "/ca", "application/json", body, &st);
    T_EQ(st, 200);
    T_JEQ(j, "{\"frames\":2,\"accepted\":1,\"unknown\":0,\"late\":0,\"future\":0,\"duplicate\":1}");
    json_decref(j);
    T_EQ(metric(M_DUPLICATE) - dup0, 2);

    j = raw(id, "start_time=%" PRId64, T);
    T_JEQ(json_object_get(j, "value"), "150"); /* two sources still add */
    T_EQ(jint(j, "minreporting"), 2);
    json_decref(j);
    T_VALUE(id, T + 1, 1, "200");
    T_VALUE(id, T + 2, 1, "7");
    /* a multi-slot interval is its first slot, not a sum */
    T_VALUE(id, T, 2, "150");
    T_VALUE(id, T, 4, "150");
    T_VALUE(id, T + 1, 3, "200");
    T_VALUE(id, T + 2, 2, "7");
    T_VALUE(id, T - 1, 3, "0"); /* the first slot is empty */
    j = raw(id, "start_time=%" PRId64 "&duration=4", T);
    check_point(j, T, 4, T, 4);
    json_decref(j);
}

/* ---- granularity ------------------------------------------------------------------------------
 */

static void test_granularity_10(void)
{
    int id = create("{\"module\":\"syscall\",\"stat\":\"syscalls\",\"granularity\":10}");
    int64_t B = (now_s() - 200) / 10 * 10; /* a multiple of 10 */
    char body[2048];
    int st;
    json_t *j;
    T_REQUIRE(id > 0);

    j = getf(&st, "/ca/instrumentations/%d", id);
    T_EQ(jint(j, "granularity"), 10);
    json_decref(j);

    snprintf(body, sizeof(body), "[%s,%s,%s,%s,%s]", fr(ids(id), "h", B + 3, SC, "1"),
             fr(ids(id), "h", B + 7, SC, "2"), fr(ids(id), "h", B + 12, SC, "4"),
             fr(ids(id), "h", B + 19, SC, "8"), fr(ids(id), "h", B + 25, SC, "16"));
    feed(body, 5);

    /* CA's examples, (12339,10)->(12330,10), (12345,1)->(12340,10), (12345,12)->(12340,20),
     * with B standing for 12330 and 12340 */
    j = raw(id, "start_time=%" PRId64 "&duration=10", B + 9);
    check_point(j, B, 10, B + 9, 10);
    T_JEQ(json_object_get(j, "value"), "3");
    T_EQ(jint(j, "minreporting"), 1);
    json_decref(j);
    j = raw(id, "start_time=%" PRId64 "&duration=1", B + 5);
    check_point(j, B, 10, B + 5, 1);
    T_JEQ(json_object_get(j, "value"), "3");
    json_decref(j);
    j = raw(id, "start_time=%" PRId64 "&duration=12", B + 5);
    check_point(j, B, 20, B + 5, 12);
    T_JEQ(json_object_get(j, "value"), "15");
    T_EQ(jint(j, "minreporting"), 1);
    json_decref(j);
    j = raw(id, "start_time=%" PRId64, B + 10); /* already aligned; default duration 1 */
    check_point(j, B + 10, 10, B + 10, 1);
    T_JEQ(json_object_get(j, "value"), "12");
    json_decref(j);
    j = raw(id, "start_time=%" PRId64 "&duration=30", B);
    check_point(j, B, 30, B, 30);
    T_JEQ(json_object_get(j, "value"), "31");
    json_decref(j);
    j = raw(id, "start_time=%" PRId64 "&duration=40", B);
    T_EQ(jint(j, "minreporting"), 0); /* B+30 is empty */
    json_decref(j);
    /* end_time alone and with duration resolve first, then align */
    j = raw(id, "end_time=%" PRId64 "&duration=12", B + 17);
    check_point(j, B, 20, B + 5, 12);
    json_decref(j);
    j = raw(id, "start_time=%" PRId64 "&end_time=%" PRId64, B + 15, B + 21);
    check_point(j, B + 10, 10, B + 15, 6);
    T_JEQ(json_object_get(j, "value"), "12");
    json_decref(j);

    /* ndatapoints: consecutive aligned points; requested_* advance by the requested duration */
    j = raw(id, "start_time=%" PRId64 "&duration=12&ndatapoints=3", B + 5);
    T_OK(json_is_array(j));
    T_EQ(json_array_size(j), 3);
    static const char *const want[] = {"15", "16", "0"};
    for (size_t k = 0; k < 3 && k < json_array_size(j); k++) {
        json_t *o = json_array_get(j, k);
        check_point(o, B + 20 * (int64_t)k, 20, B + 5 + 12 * (int64_t)k, 12);
        T_JEQ(json_object_get(o, "value"), want[k]);
    }
    json_decref(j);

    /* no interval given: start = now - duration - G, then aligned */
    int64_t n0 = now_s();
    j = raw(id, "timeout=0");
    int64_t n1 = now_s();
    int64_t rs = jint(j, "requested_start_time");
    T_OK(rs >= n0 - 11 && rs <= n1 - 11);
    T_EQ(jint(j, "requested_duration"), 1);
    T_EQ(jint(j, "requested_end_time"), rs + 1);
    T_EQ(jint(j, "start_time"), rs - rs % 10);
    T_EQ(jint(j, "duration"), 10);
    T_EQ(jint(j, "end_time"), rs - rs % 10 + 10);
    json_decref(j);
}

/* ---- intervals ------------------------------------------------------------------------------ */

/* A scalar instrumentation with 2^k at T+k for k in 0..9, so that every interval's sum says
 * which seconds it covered. */
static int powers(int64_t T)
{
    int id = create(SYSCALLS("[]"));
    char body[4096], v[16];
    size_t at = 0;
    if (id <= 0)
        return id;
    body[at++] = '[';
    for (int k = 0; k < 10; k++) {
        snprintf(v, sizeof(v), "%d", 1 << k);
        at += (size_t)snprintf(body + at, sizeof(body) - at, "%s%s", k ? "," : "",
                               fr(ids(id), "h", T + k, SC, v));
    }
    snprintf(body + at, sizeof(body) - at, "]");
    feed(body, 10);
    return id;
}

static void test_interval_combinations(void)
{
    int64_t T = now_s() - 130;
    int id = powers(T);
    int64_t n0, n1, rs;
    int st;
    json_t *j;
    T_REQUIRE(id > 0);

    /* none: start = now - 1 - 1, duration 1 */
    n0 = now_s();
    j = raw(id, "timeout=0");
    n1 = now_s();
    rs = jint(j, "start_time");
    T_OK(rs >= n0 - 2 && rs <= n1 - 2);
    check_point(j, rs, 1, rs, 1);
    json_decref(j);
    /* duration alone: start = now - duration - 1 */
    n0 = now_s();
    j = raw(id, "duration=5&timeout=0");
    n1 = now_s();
    rs = jint(j, "start_time");
    T_OK(rs >= n0 - 6 && rs <= n1 - 6);
    check_point(j, rs, 5, rs, 5);
    json_decref(j);

    /* start_time alone: duration 1 */
    j = raw(id, "start_time=%" PRId64, T + 3);
    check_point(j, T + 3, 1, T + 3, 1);
    T_JEQ(json_object_get(j, "value"), "8");
    json_decref(j);
    /* end_time alone: start = end - 1 */
    j = raw(id, "end_time=%" PRId64, T + 5);
    check_point(j, T + 4, 1, T + 4, 1);
    T_JEQ(json_object_get(j, "value"), "16");
    json_decref(j);
    /* start_time and duration */
    j = raw(id, "start_time=%" PRId64 "&duration=3", T + 2);
    check_point(j, T + 2, 3, T + 2, 3);
    T_JEQ(json_object_get(j, "value"), "28");
    json_decref(j);
    /* start_time and end_time: duration = end - start */
    j = raw(id, "start_time=%" PRId64 "&end_time=%" PRId64, T + 1, T + 4);
    check_point(j, T + 1, 3, T + 1, 3);
    T_JEQ(json_object_get(j, "value"), "14");
    json_decref(j);
    /* duration and end_time: start = end - duration */
    j = raw(id, "duration=4&end_time=%" PRId64, T + 6);
    check_point(j, T + 2, 4, T + 2, 4);
    T_JEQ(json_object_get(j, "value"), "60");
    json_decref(j);
    /* all three, consistent */
    j = raw(id, "start_time=%" PRId64 "&duration=2&end_time=%" PRId64, T, T + 2);
    check_point(j, T, 2, T, 2);
    T_JEQ(json_object_get(j, "value"), "3");
    json_decref(j);
    /* the whole range */
    j = raw(id, "start_time=%" PRId64 "&end_time=%" PRId64, T, T + 10);
    T_JEQ(json_object_get(j, "value"), "1023");
    json_decref(j);

    /* CA's interval errors */
    j = getf(&st,
             "/ca/instrumentations/%d/value/raw?start_time=%" PRId64
             "&duration=2&end_time=%" PRId64,
             id, T, T + 3);
    T_INVAL(st, j, "\"start_time\" + \"duration\" must equal \"end_time\"");
    json_decref(j);
    j = getf(&st, "/ca/instrumentations/%d/value/raw?start_time=%" PRId64 "&end_time=%" PRId64, id,
             T + 4, T + 4);
    T_INVAL(st, j, "\"end_time\" must be later than \"start_time\"");
    json_decref(j);
    j = getf(&st, "/ca/instrumentations/%d/value/raw?start_time=%" PRId64 "&end_time=%" PRId64, id,
             T + 4, T + 2);
    T_INVAL(st, j, "\"end_time\" must be later than \"start_time\"");
    json_decref(j);
    j = getf(&st, "/ca/instrumentations/%d/value/raw?duration=10&end_time=5", id);
    T_INVAL(st, j, "\"duration\" cannot exceed \"end_time\"");
    json_decref(j);
    j = getf(&st, "/ca/instrumentations/%d/value/raw?end_time=0", id); /* default duration 1 */
    T_INVAL(st, j, "\"duration\" cannot exceed \"end_time\"");
    json_decref(j);
    /* "duration" must be positive: a duration below 1 is refused by the parameter's own bound
     * before the interval is resolved (CA's min: 1) */
    j = getf(&st, "/ca/instrumentations/%d/value/raw?start_time=%" PRId64 "&duration=0", id, T);
    T_INVAL(st, j, "value \"0\" for param \"duration\" not valid: value too small (min: 1)");
    json_decref(j);
}

static void test_ndatapoints(void)
{
    int64_t T = now_s() - 150;
    int id = powers(T);
    int st;
    json_t *j;
    T_REQUIRE(id > 0);

    j = raw(id, "start_time=%" PRId64 "&duration=2&ndatapoints=3", T);
    T_OK(json_is_array(j));
    T_EQ(json_array_size(j), 3);
    static const char *const want[] = {"3", "12", "48"};
    for (size_t k = 0; k < 3 && k < json_array_size(j); k++) {
        json_t *o = json_array_get(j, k);
        check_point(o, T + 2 * (int64_t)k, 2, T + 2 * (int64_t)k, 2);
        T_JEQ(json_object_get(o, "value"), want[k]);
        T_EQ(jint(o, "minreporting"), 1);
    }
    json_decref(j);

    /* ndatapoints=1 is still an array; absent, an object */
    j = raw(id, "start_time=%" PRId64 "&ndatapoints=1", T + 9);
    T_OK(json_is_array(j));
    T_EQ(json_array_size(j), 1);
    T_JEQ(json_object_get(json_array_get(j, 0), "value"), "512");
    check_point(json_array_get(j, 0), T + 9, 1, T + 9, 1);
    json_decref(j);
    j = raw(id, "start_time=%" PRId64, T + 9);
    T_OK(json_is_object(j));
    T_JEQ(json_object_get(j, "value"), "512");
    json_decref(j);

    /* points past the data are empty, and minreporting 0 */
    j = raw(id, "start_time=%" PRId64 "&duration=5&ndatapoints=4", T);
    T_EQ(json_array_size(j), 4);
    T_JEQ(json_object_get(json_array_get(j, 0), "value"), "31");
    T_JEQ(json_object_get(json_array_get(j, 1), "value"), "992");
    T_JEQ(json_object_get(json_array_get(j, 2), "value"), "0");
    T_EQ(jint(json_array_get(j, 2), "minreporting"), 0);
    json_decref(j);

    /* the interval parameters from a JSON body */
    char path[128], b[256];
    snprintf(path, sizeof(path), "/ca/instrumentations/%d/value/raw", id);
    snprintf(b, sizeof(b), "{\"start_time\":%" PRId64 ",\"duration\":3,\"ndatapoints\":2}", T + 1);
    j = jreq(srv.port, NULL, "GET", path, "application/json", b, &st);
    T_EQ(st, 200);
    T_EQ(json_array_size(j), 2);
    T_JEQ(json_object_get(json_array_get(j, 0), "value"), "14");
    T_JEQ(json_object_get(json_array_get(j, 1), "value"), "112");
    check_point(json_array_get(j, 1), T + 4, 3, T + 4, 3);
    json_decref(j);

    j = getf(&st, "/ca/instrumentations/%d/value/raw?start_time=%" PRId64 "&ndatapoints=0", id, T);
    T_INVAL(st, j, "value \"0\" for param \"ndatapoints\" not valid: value too small (min: 1)");
    json_decref(j);
    j = getf(&st, "/ca/instrumentations/%d/value/raw?start_time=%" PRId64 "&ndatapoints=x", id, T);
    T_INVAL(st, j, "value \"x\" for param \"ndatapoints\" not valid: not a number");
    json_decref(j);
}

static void test_future(void)
{
    int id = create(SYSCALLS("[]"));
    int64_t now = now_s();
    int st;
    json_t *j;
    T_REQUIRE(id > 0);

    j = getf(&st, "/ca/instrumentations/%d/value/raw?end_time=%" PRId64, id, now + 100);
    T_INVAL(st, j, "requested data point is too far in the future");
    json_decref(j);
    j = getf(&st, "/ca/instrumentations/%d/value/raw?start_time=%" PRId64, id, now + 60);
    T_INVAL(st, j, "requested data point is too far in the future");
    json_decref(j);
    j = getf(&st, "/ca/instrumentations/%d/value/raw?start_time=%" PRId64 "&duration=3600", id,
             now - 1800);
    T_INVAL(st, j, "requested data point is too far in the future");
    json_decref(j);
    /* the last of several points counts */
    j = getf(&st,
             "/ca/instrumentations/%d/value/raw?start_time=%" PRId64
             "&duration=10&ndatapoints=3&timeout=0",
             id, now - 25);
    T_INVAL(st, j, "requested data point is too far in the future");
    json_decref(j);
    /* with timeout=0, even the current second is beyond the request's time */
    j = getf(&st, "/ca/instrumentations/%d/value/raw?start_time=%" PRId64 "&timeout=0", id,
             now + 1);
    T_INVAL(st, j, "requested data point is too far in the future");
    json_decref(j);
    /* the last complete second is fine */
    j = getf(&st, "/ca/instrumentations/%d/value/raw?start_time=%" PRId64 "&timeout=0", id,
             now - 1);
    T_EQ(st, 200);
    T_JEQ(json_object_get(j, "value"), "0");
    json_decref(j);
}

/* ---- long poll ------------------------------------------------------------------------------ */

/* Frames POSTed by another thread while a request waits: step i after at_ms[i] ms from the
 * thread's start. */
struct late_posts {
    int port;
    int n;
    long at_ms[4];
    char body[4][1024];
    int status[4];
    json_t *reply[4];
};

static void *late_posts_fn(void *arg)
{
    struct late_posts *p = arg;
    double t0 = th_now_ms();
    for (int i = 0; i < p->n; i++) {
        double wait = (double)p->at_ms[i] - (th_now_ms() - t0);
        if (wait > 0)
            th_sleep_ms((long)wait);
        p->reply[i] = jreq(p->port, NULL, "POST", "/ca/ingest", "application/json", p->body[i],
                           &p->status[i]);
    }
    return NULL;
}

/* A scalar instrumentation whose hosts (one or two: "lp", "lq") reported every second of
 * now-14..now-3: so many sources are "expected" for the seconds that follow. */
static int recent_sources(int nhosts)
{
    int id = create(SYSCALLS("[]"));
    int64_t now = now_s();
    char body[16384];
    size_t at = 0;
    if (id <= 0)
        return id;
    body[at++] = '[';
    for (int64_t t = now - 14; t <= now - 3; t++)
        for (int h = 0; h < nhosts; h++)
            at += (size_t)snprintf(body + at, sizeof(body) - at, "%s%s", at > 1 ? "," : "",
                                   fr(ids(id), h ? "lq" : "lp", t, SC, "1"));
    snprintf(body + at, sizeof(body) - at, "]");
    feed(body, 12 * nhosts);
    return id;
}

/* GETs path (a request that should wait) while p's frames are posted. */
static json_t *wait_with(const char *path, struct late_posts *p, double *took)
{
    pthread_t thr;
    struct th_resp r = {0};
    json_t *j = NULL;

    if (pthread_create(&thr, NULL, late_posts_fn, p) != 0) {
        T_OK(!"pthread_create");
        return NULL;
    }
    double t0 = th_now_ms();
    int rc = th_request(srv.port, "GET", path, NULL, NULL, 0, 10000, &r);
    *took = th_now_ms() - t0;
    pthread_join(thr, NULL);
    for (int i = 0; i < p->n; i++) {
        T_EQ(p->status[i], 200);
        T_EQ(jint(p->reply[i], "accepted"), 1);
        json_decref(p->reply[i]);
    }
    T_EQ(rc, 0);
    T_EQ(r.status, 200);
    if (r.body)
        j = json_loads(r.body, 0, NULL);
    th_resp_free(&r);
    return j;
}

static void test_long_poll_data_arrives(void)
{
    int id = recent_sources(1);
    T_REQUIRE(id > 0);
    int64_t T = now_s();
    struct late_posts p = {.port = srv.port, .n = 1, .at_ms = {500}};
    char path[256];
    double took;

    snprintf(p.body[0], sizeof(p.body[0]), "%s", fr(ids(id), "lp", T, SC, "42"));
    snprintf(path, sizeof(path),
             "/ca/instrumentations/%d/value/raw?start_time=%" PRId64 "&duration=1&timeout=2000", id,
             T);
    json_t *j = wait_with(path, &p, &took);
    T_JEQ(json_object_get(j, "value"), "42");
    check_point(j, T, 1, T, 1);
    T_EQ(jint(j, "minreporting"), 1);
    int64_t delay = jint(j, "delay");
    t_note("delay %" PRId64 " ms, reply after %.0f ms", delay, took);
    T_OK(delay >= 400 && delay <= 1500); /* waited for the frame, not for the timeout */
    T_OK(took >= 400 && took <= 1800);
    json_decref(j);
}

/* Two expected sources: the request waits for both, not for the first, and frames for other
 * instrumentations or other seconds do not end the wait. */
static void test_long_poll_all_sources(void)
{
    int other = create(SYSCALLS("[]"));
    int id = recent_sources(2);
    T_REQUIRE(id > 0 && other > 0);
    int64_t T = now_s();
    struct late_posts p = {.port = srv.port, .n = 4, .at_ms = {200, 400, 600, 1100}};
    char path[256];
    double took;

    snprintf(p.body[0], sizeof(p.body[0]), "%s", fr(ids(other), "lp", T, SC, "1"));
    snprintf(p.body[1], sizeof(p.body[1]), "%s", fr(ids(id), "lp", T - 1, SC, "1"));
    snprintf(p.body[2], sizeof(p.body[2]), "%s", fr(ids(id), "lp", T, SC, "5"));
    snprintf(p.body[3], sizeof(p.body[3]), "%s", fr(ids(id), "lq", T, SC, "6"));
    snprintf(path, sizeof(path),
             "/ca/instrumentations/%d/value/raw?start_time=%" PRId64 "&timeout=3000", id, T);
    json_t *j = wait_with(path, &p, &took);
    T_JEQ(json_object_get(j, "value"), "11");
    check_point(j, T, 1, T, 1);
    T_EQ(jint(j, "minreporting"), 2);
    T_EQ(jint(j, "nsources"), 2);
    int64_t delay = jint(j, "delay");
    t_note("delay %" PRId64 " ms, reply after %.0f ms", delay, took);
    T_OK(delay >= 1000 && delay <= 2000);
    T_OK(took >= 1000 && took <= 2300);
    json_decref(j);
}

static void test_long_poll_timeout(void)
{
    int id = recent_sources(1);
    T_REQUIRE(id > 0);
    int64_t T = now_s();
    struct th_resp r = {0};
    char path[256];

    snprintf(path, sizeof(path),
             "/ca/instrumentations/%d/value/raw?start_time=%" PRId64 "&timeout=2000", id, T);
    double t0 = th_now_ms();
    int rc = th_request(srv.port, "GET", path, NULL, NULL, 0, 10000, &r);
    double took = th_now_ms() - t0;
    T_EQ(rc, 0);
    T_EQ(r.status, 200);
    json_t *j = r.body ? json_loads(r.body, 0, NULL) : NULL;
    T_JEQ(json_object_get(j, "value"), "0");
    check_point(j, T, 1, T, 1);
    T_EQ(jint(j, "minreporting"), 0);
    int64_t delay = jint(j, "delay");
    t_note("delay %" PRId64 " ms, reply after %.0f ms", delay, took);
    T_OK(delay >= 2000 && delay <= 3000);
    T_OK(took >= 1950 && took <= 3500);
    json_decref(j);
    th_resp_free(&r);

    /* timeout=0: the same kind of request (a second still missing its source) answers at once,
     * without "delay" */
    snprintf(path, sizeof(path),
             "/ca/instrumentations/%d/value/raw?start_time=%" PRId64 "&timeout=0", id, now_s() - 1);
    t0 = th_now_ms();
    rc = th_request(srv.port, "GET", path, NULL, NULL, 0, 10000, &r);
    took = th_now_ms() - t0;
    T_EQ(rc, 0);
    T_EQ(r.status, 200);
    j = r.body ? json_loads(r.body, 0, NULL) : NULL;
    T_OK(j && !json_object_get(j, "delay"));
    T_OK(took < 900);
    json_decref(j);
    th_resp_free(&r);
}

/* ---- parameters ------------------------------------------------------------------------------ */

static void test_params(void)
{
    int64_t T = now_s() - 170;
    int id = powers(T);
    int st;
    json_t *j;
    T_REQUIRE(id > 0);

    /* timeout: 0..5000 */
    j = raw(id, "start_time=%" PRId64 "&timeout=0", T);
    T_JEQ(json_object_get(j, "value"), "1");
    json_decref(j);
    j = raw(id, "start_time=%" PRId64 "&timeout=5000", T);
    T_JEQ(json_object_get(j, "value"), "1");
    json_decref(j);
    static const struct {
        const char *q, *msg;
    } bad[] = {
        {"timeout=5001", "value \"5001\" for param \"timeout\" not valid: value too large (max: "
                         "5000)"},
        {"timeout=-1", "value \"-1\" for param \"timeout\" not valid: value too small (min: 0)"},
        {"timeout=soon", "value \"soon\" for param \"timeout\" not valid: not a number"},
        {"duration=315360001", "value \"315360001\" for param \"duration\" not valid: value "
                               "too large (max: 315360000)"},
        {"duration=0", "value \"0\" for param \"duration\" not valid: value too small (min: 1)"},
        {"duration=-3", "value \"-3\" for param \"duration\" not valid: value too small (min: 1)"},
        {"duration=long", "value \"long\" for param \"duration\" not valid: not a number"},
        {"start_time=-1", "value \"-1\" for param \"start_time\" not valid: value too small "
                          "(min: 0)"},
        {"start_time=yesterday", "value \"yesterday\" for param \"start_time\" not valid: not a "
                                 "number"},
        {"end_time=-5", "value \"-5\" for param \"end_time\" not valid: value too small (min: 0)"},
        {"end_time=later", "value \"later\" for param \"end_time\" not valid: not a number"},
        {"ndatapoints=-2", "value \"-2\" for param \"ndatapoints\" not valid: value too small "
                           "(min: 1)"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        j = getf(&st, "/ca/instrumentations/%d/value/raw?%s", id, bad[i].q);
        t_note("%s", bad[i].q);
        T_INVAL(st, j, bad[i].msg);
        json_decref(j);
    }
    /* duration's maximum itself is fine */
    j = raw(id, "start_time=%" PRId64 "&duration=3600&timeout=0", T + 10 - 3600);
    T_JEQ(json_object_get(j, "value"), "1023");
    json_decref(j);
}

static void test_transformations(void)
{
    int64_t T = now_s() - 180;
    int id = create(SYSCALLS("[\"execname\"]"));
    int st;
    json_t *j;
    T_REQUIRE(id > 0);

    /* names that do not exist, and ones that do not apply to an execname decomposition */
    j = getf(&st, "/ca/instrumentations/%d/value/raw?start_time=%" PRId64 "&transformations=bogus",
             id, T);
    T_INVAL(st, j, "transformation \"bogus\" does not exist");
    json_decref(j);
    j = getf(&st,
             "/ca/instrumentations/%d/value/raw?start_time=%" PRId64
             "&transformations=geolocate,reversedns",
             id, T);
    T_INVAL(st, j, "transformation \"geolocate\" is not allowed on this instrumentation");
    json_decref(j);
    char path[128], b[256];
    snprintf(path, sizeof(path), "/ca/instrumentations/%d/value/raw", id); /* a JSON array */
    snprintf(b, sizeof(b), "{\"start_time\":%" PRId64 ",\"transformations\":[\"reversedns\"]}", T);
    j = jreq(srv.port, NULL, "GET", path, "application/json", b, &st);
    T_INVAL(st, j, "transformation \"reversedns\" is not allowed on this instrumentation");
    json_decref(j);
    j = raw(id, "start_time=%" PRId64, T); /* none requested: an empty object */
    T_JEQ(json_object_get(j, "transformations"), "{}");
    json_decref(j);

    /* tcp.connects by raddr offers both; loopback only for reverse DNS (no traffic leaves) */
    int tcp = create("{\"module\":\"tcp\",\"stat\":\"connects\",\"decomposition\":[\"raddr\"]}");
    T_REQUIRE(tcp > 0);
    j = getf(&st, "/ca/instrumentations/%d", tcp);
    T_OK(json_object_get(json_object_get(j, "transformations"), "reversedns") != NULL);
    T_OK(json_object_get(json_object_get(j, "transformations"), "geolocate") != NULL);
    json_decref(j);
    feed(fr(ids(tcp), "h1", T, DI, "{\"127.0.0.1\":3}"), 1);
    feed(fr(ids(tcp), "h1", T + 1, DI, "{\"8.8.8.8\":2,\"10.1.2.3\":1}"), 1);
    json_t *names = NULL;
    for (int i = 0; i < 50 && !names; i++) { /* the first answer may come before the lookup */
        j = raw(tcp, "start_time=%" PRId64 "&transformations=reversedns", T);
        names = json_object_get(
            json_object_get(json_object_get(j, "transformations"), "reversedns"), "127.0.0.1");
        if (names)
            T_JEQ(names, "[\"localhost\"]");
        json_decref(j);
        if (!names)
            th_sleep_ms(100);
    }
    T_OK(names != NULL);
    j = raw(tcp, "start_time=%" PRId64 "&transformations=geolocate", T + 1);
    T_JEQ(json_object_get(json_object_get(j, "transformations"), "geolocate"),
          "{\"10.1.2.3\":{},\"8.8.8.8\":{\"country_code\":\"US\",\"country_code3\":\"USA\","
          "\"country\":\"United States\",\"continent_code\":\"NA\"}}");
    json_decref(j);
}

/* ---- ingest ------------------------------------------------------------------------------ */

static struct sn_hist *hist1(uint64_t v, uint64_t n)
{
    struct sn_hist *h = sn_hist_create();
    if (h)
        sn_hist_insert_u64(h, v, n);
    return h;
}

/* Appends f behind its little-endian u32 length; returns the new length (0 on failure). */
static size_t put_frame(unsigned char *buf, size_t cap, size_t at, const struct sn_wire_frame *f)
{
    size_t n = sn_wire_frame_len(f);
    uint32_t le = htole32((uint32_t)n);
    if (at + 4 + n > cap)
        return 0;
    memcpy(buf + at, &le, 4);
    ssize_t w = sn_wire_frame_encode(f, buf + at + 4, cap - at - 4);
    return w == (ssize_t)n ? at + 4 + n : 0;
}

static void test_ingest_forms(void)
{
    int sc = create(SYSCALLS("[]"));
    int di = create(SYSCALLS("[\"execname\"]"));
    int nu = create(SYSCALLS("[\"latency\"]"));
    int nk = create(SYSCALLS("[\"execname\",\"latency\"]"));
    int64_t T = now_s() - 190;
    char body[4096];
    int st;
    json_t *j;
    T_REQUIRE(sc > 0 && di > 0 && nu > 0 && nk > 0);
    double all0 = metric(M_ALL);

    /* one JSON object */
    j = ingest_on(srv.port, NULL, "/ca", "application/json", fr(ids(sc), "h", T, SC, "1"), &st);
    T_EQ(st, 200);
    T_JEQ(j, "{\"frames\":1,\"accepted\":1,\"unknown\":0,\"late\":0,\"future\":0,\"duplicate\":0}");
    json_decref(j);
    /* an array */
    snprintf(body, sizeof(body), "[%s,%s]", fr(ids(sc), "h", T + 1, SC, "2"),
             fr(ids(di), "h", T, DI, "{\"a\":1}"));
    j = ingest_on(srv.port, NULL, "/ca", "application/json", body, &st);
    T_EQ(st, 200);
    T_JEQ(j, "{\"frames\":2,\"accepted\":2,\"unknown\":0,\"late\":0,\"future\":0,\"duplicate\":0}");
    json_decref(j);
    /* JSON lines, with a blank line, and a pretty-printed object spanning lines */
    snprintf(body, sizeof(body),
             "%s\n%s\n\n%s\n{\n  \"id\": \"%d\",\n  \"host\": \"h\",\n"
             "  \"t\": %" PRId64 ",\n  \"arity\": \"scalar\",\n  \"value\": 16\n}\n",
             fr(ids(sc), "h", T + 2, SC, "4"), fr(ids(nu), "h", T, NU, "[[[10,10],1]]"),
             fr(ids(nk), "h", T, NU, "{\"k\":[[[1000,1099],3]]}"), sc, T + 4);
    j = ingest_on(srv.port, NULL, "/ca", "application/x-ndjson", body, &st);
    T_EQ(st, 200);
    T_JEQ(j, "{\"frames\":4,\"accepted\":4,\"unknown\":0,\"late\":0,\"future\":0,\"duplicate\":0}");
    json_decref(j);

    /* binary: every arity */
    unsigned char bin[4096];
    size_t at = 0;
    char s_sc[16], s_di[16], s_nu[16], s_nk[16];
    snprintf(s_sc, sizeof(s_sc), "%d", sc);
    snprintf(s_di, sizeof(s_di), "%d", di);
    snprintf(s_nu, sizeof(s_nu), "%d", nu);
    snprintf(s_nk, sizeof(s_nk), "%d", nk);
    struct sn_wire_entry de[] = {{"a", 2, NULL}, {"b", 3, NULL}};
    struct sn_wire_entry ne[] = {{"", 5, hist1(2000000, 5)}};
    struct sn_wire_entry ke[] = {{"k", 2, hist1(100, 2)}, {"m", 1, hist1(20, 1)}};
    struct sn_wire_frame fs[] = {
        {.id = s_sc, .host = "h", .t = T + 3, .arity = SN_WIRE_SCALAR, .total = 8},
        {.id = s_di,
         .host = "h",
         .t = T + 1,
         .arity = SN_WIRE_DISCRETE,
         .total = 5,
         .n = 2,
         .entries = de},
        {.id = s_nu,
         .host = "h",
         .t = T + 1,
         .arity = SN_WIRE_NUMERIC,
         .total = 5,
         .n = 1,
         .entries = ne},
        {.id = s_nk,
         .host = "h",
         .t = T + 1,
         .arity = SN_WIRE_NUMERIC_BY_KEY,
         .total = 3,
         .n = 2,
         .entries = ke},
    };
    for (size_t i = 0; i < 4 && (at || i == 0); i++)
        at = put_frame(bin, sizeof(bin), at, &fs[i]);
    sn_hist_destroy(ne[0].hist);
    sn_hist_destroy(ke[0].hist);
    sn_hist_destroy(ke[1].hist);
    T_REQUIRE(at > 0);
    struct th_resp r = {0};
    T_EQ(http(srv.port, NULL, "POST", "/ca/ingest", "application/octet-stream", bin, at, 10000, &r),
         0);
    T_EQ(r.status, 200);
    j = r.body ? json_loads(r.body, 0, NULL) : NULL;
    T_JEQ(j, "{\"frames\":4,\"accepted\":4,\"unknown\":0,\"late\":0,\"future\":0,\"duplicate\":0}");
    json_decref(j);
    th_resp_free(&r);

    T_EQ(metric(M_ALL) - all0, 11);
    T_VALUE(sc, T, 5, "31");
    T_VALUE(di, T, 2, "{\"a\":3,\"b\":3}");
    T_VALUE(nu, T, 2, "[[[10,10],1],[[2000000,2099999],5]]");
    T_VALUE(nk, T, 1, "{\"k\":[[[1000,1099],3]]}");
    T_VALUE(nk, T + 1, 1, "{\"k\":[[[100,109],2]],\"m\":[[[20,20],1]]}");
    T_VALUE(nk, T, 2, "{\"k\":[[[100,109],2],[[1000,1099],3]],\"m\":[[[20,20],1]]}");
}

static void test_ingest_dropped(void)
{
    int id = create(SYSCALLS("[]"));
    int64_t now = now_s();
    char body[4096];
    int st;
    json_t *j;
    T_REQUIRE(id > 0);
    double all0 = metric(M_ALL), unk0 = metric(M_UNKNOWN), late0 = metric(M_LATE),
           fut0 = metric(M_FUTURE), inv0 = metric(M_INVALID);

    snprintf(body, sizeof(body), "[%s,%s,%s,%s,%s,%s]", fr("99999", "h", now - 30, SC, "1"),
             fr(ids(id), "h", now - 700, SC, "2"), /* older than the 600 s retention */
             fr(ids(id), "h", now + 60, SC, "4"),  /* more than 10 s ahead */
             fr(ids(id), "h", now - 30, SC, "8"),  /* fine */
             fr(ids(id), "h", now + 10, SC, "16"), /* 10 s ahead: still fine */
             fr("99998", "h", now - 30, SC, "32"));
    j = ingest_on(srv.port, NULL, "/ca", "application/json", body, &st);
    T_EQ(st, 200);
    T_JEQ(j, "{\"frames\":6,\"accepted\":2,\"unknown\":2,\"late\":1,\"future\":1,\"duplicate\":0}");
    json_decref(j);
    T_VALUE(id, now - 30, 1, "8");
    T_VALUE(id, now - 700, 10, "0");
    j = ingest_on(srv.port, NULL, "/ca", "application/json", fr(ids(id), "h", now + 12, SC, "1"),
                  &st);
    T_EQ(st, 200);
    T_JEQ(j, "{\"frames\":1,\"accepted\":0,\"unknown\":0,\"late\":0,\"future\":1,\"duplicate\":0}");
    json_decref(j);

    T_EQ(metric(M_ALL) - all0, 2);
    T_EQ(metric(M_UNKNOWN) - unk0, 2);
    T_EQ(metric(M_LATE) - late0, 1);
    T_EQ(metric(M_FUTURE) - fut0, 2);
    T_EQ(metric(M_INVALID) - inv0, 0);

    /* a body of frames for a deleted instrumentation: all unknown, still 200 */
    int gone = create(SYSCALLS("[]"));
    struct th_resp r = {0};
    char path[128];
    snprintf(path, sizeof(path), "/ca/instrumentations/%d", gone);
    T_EQ(http(srv.port, NULL, "DELETE", path, NULL, NULL, 0, 10000, &r), 0);
    T_EQ(r.status, 204);
    th_resp_free(&r);
    j = ingest_on(srv.port, NULL, "/ca", "application/json", fr(ids(gone), "h", now - 30, SC, "1"),
                  &st);
    T_EQ(st, 200);
    T_JEQ(j, "{\"frames\":1,\"accepted\":0,\"unknown\":1,\"late\":0,\"future\":0,\"duplicate\":0}");
    json_decref(j);
    T_EQ(metric(M_UNKNOWN) - unk0, 3);

    /* an empty body: no frame */
    j = ingest_on(srv.port, NULL, "/ca", "application/json", "", &st);
    T_EQ(st, 200);
    T_JEQ(j, "{\"frames\":0,\"accepted\":0,\"unknown\":0,\"late\":0,\"future\":0,\"duplicate\":0}");
    json_decref(j);
}

/* A refused body: 400 ECA_INVAL whose message starts with prefix. */
static void refused(const char *ctype, const void *body, size_t len, const char *prefix)
{
    struct th_resp r = {0};
    T_EQ(http(srv.port, NULL, "POST", "/ca/ingest", ctype, body, len, 10000, &r), 0);
    T_EQ(r.status, 400);
    json_t *j = r.body ? json_loads(r.body, 0, NULL) : NULL;
    T_STR(err_code(j), "ECA_INVAL");
    if (prefix && !starts_with(err_msg(j), prefix))
        t_note("message \"%s\", want a prefix \"%s\"", err_msg(j) ? err_msg(j) : "(none)", prefix);
    T_OK(!prefix || starts_with(err_msg(j), prefix));
    json_decref(j);
    th_resp_free(&r);
}

static void test_ingest_refused(void)
{
    int sc = create(SYSCALLS("[]"));
    int nu = create(SYSCALLS("[\"latency\"]"));
    int64_t T = now_s() - 200;
    char body[4096];
    T_REQUIRE(sc > 0 && nu > 0);
    double inv0 = metric(M_INVALID), all0 = metric(M_ALL),
           ar0 = metric("sonde_frames_dropped_total{reason=\"arity\"}");

    /* malformed JSON on the second line: nothing applied, not even the first frame */
    snprintf(body, sizeof(body), "%s\n{\"id\":\"%d\",\"host\":\"h\",\"t\":\n",
             fr(ids(sc), "h", T, SC, "5"), sc);
    refused("application/json", body, strlen(body), "frame 2: ");
    /* a broken array */
    snprintf(body, sizeof(body), "[%s,{\"id\":", fr(ids(sc), "h", T, SC, "5"));
    refused("application/json", body, strlen(body), NULL);
    /* not JSON at all */
    refused("application/json", "hello", 5, "frame 1: ");
    /* a range that is not a bucket */
    snprintf(body, sizeof(body), "[%s,%s]", fr(ids(sc), "h", T, SC, "5"),
             fr(ids(nu), "h", T, NU, "[[[10,20],1]]"));
    refused("application/json", body, strlen(body), "frame 2: ");
    snprintf(body, sizeof(body), "[%s,%s]", fr(ids(sc), "h", T, SC, "5"),
             fr(ids(nu), "h", T, NU, "[[[100,110],1]]"));
    refused("application/json", body, strlen(body), "frame 2: ");
    /* a frame of the wrong arity for its instrumentation, each way */
    snprintf(body, sizeof(body), "[%s,%s]", fr(ids(sc), "h", T, SC, "5"),
             fr(ids(nu), "h", T, SC, "3"));
    refused("application/json", body, strlen(body), "frame 2: ");
    snprintf(body, sizeof(body), "[%s,%s,%s]", fr(ids(sc), "h", T, SC, "5"),
             fr(ids(nu), "h", T, NU, "[[[10,10],1]]"), fr(ids(sc), "h", T, DI, "{\"a\":1}"));
    refused("application/json", body, strlen(body), "frame 3: ");
    snprintf(body, sizeof(body), "[%s,%s]", fr(ids(sc), "h", T, SC, "5"),
             fr(ids(nu), "h", T, NU, "{\"k\":[[[10,10],1]]}"));
    refused("application/json", body, strlen(body), "frame 2: ");
    /* a negative count, a missing member */
    snprintf(body, sizeof(body), "[%s,%s]", fr(ids(sc), "h", T, SC, "5"),
             fr(ids(sc), "h", T, SC, "-1"));
    refused("application/json", body, strlen(body), "frame 2: ");
    snprintf(body, sizeof(body),
             "[%s,{\"id\":\"%d\",\"host\":\"h\",\"arity\":\"scalar\","
             "\"value\":1}]",
             fr(ids(sc), "h", T, SC, "5"), sc);
    refused("application/json", body, strlen(body), "frame 2: ");

    /* binary: a good frame, then a length that runs past the body; then a corrupt frame */
    unsigned char bin[512];
    char s_sc[16];
    snprintf(s_sc, sizeof(s_sc), "%d", sc);
    struct sn_wire_frame f = {.id = s_sc, .host = "h", .t = T, .arity = SN_WIRE_SCALAR, .total = 5};
    size_t at = put_frame(bin, sizeof(bin), 0, &f);
    T_REQUIRE(at > 0);
    uint32_t big = htole32(1000);
    memcpy(bin + at, &big, 4);
    memset(bin + at + 4, 0, 8);
    refused("application/octet-stream", bin, at + 12, "frame 2: ");
    size_t at2 = put_frame(bin, sizeof(bin), at, &f);
    T_REQUIRE(at2 > 0);
    bin[at + 4 + 20] ^= 0x01; /* inside the second frame's total: its checksum fails */
    refused("application/octet-stream", bin, at2, "frame 2: ");
    /* a binary frame of the wrong arity */
    char s_nu[16];
    snprintf(s_nu, sizeof(s_nu), "%d", nu);
    struct sn_wire_frame g = {.id = s_nu, .host = "h", .t = T, .arity = SN_WIRE_SCALAR, .total = 5};
    at2 = put_frame(bin, sizeof(bin), at, &g);
    T_REQUIRE(at2 > 0);
    refused("application/octet-stream", bin, at2, "frame 2: ");

    /* nothing was applied */
    T_VALUE(sc, T, 2, "0");
    T_VALUE(nu, T, 1, "[]");
    T_EQ(metric(M_ALL) - all0, 0);
    T_EQ(metric(M_INVALID) - inv0, 9); /* the 4 bodies of a wrong arity count under arity */
    T_EQ(metric("sonde_frames_dropped_total{reason=\"arity\"}") - ar0, 4);

    /* and the server still takes a good body */
    snprintf(body, sizeof(body), "[%s,%s]", fr(ids(sc), "h", T, SC, "5"),
             fr(ids(nu), "h", T, NU, "[[[100,109],1]]"));
    feed(body, 2);
    T_VALUE(sc, T, 2, "5");
    T_VALUE(nu, T, 1, "[[[100,109],1]]");
}

/* Data is kept for the whole retention, whatever else arrives: frames stamped up to 10 s
 * ahead (accepted) must not displace frames of the retention's oldest seconds, nor make them
 * "late". retention-time 100 keeps the oldest seconds near the edge for a few seconds only:
 * every query here is immediate. */
static void test_retention_with_frames_ahead(void)
{
    int a = create("{\"module\":\"syscall\",\"stat\":\"syscalls\",\"retention-time\":100}");
    int b = create("{\"module\":\"syscall\",\"stat\":\"syscalls\",\"retention-time\":100}");
    int64_t N = now_s();
    char old[4096], ahead[4096];
    size_t at = 0;
    int st;
    json_t *j;
    T_REQUIRE(a > 0 && b > 0);

    /* old: 1 at each of N-95..N-86 (inside the 100 s retention); ahead: N+1..N+10 */
#define BODY(buf, id, from, to)                                                                    \
    do {                                                                                           \
        at = 0;                                                                                    \
        buf[at++] = '[';                                                                           \
        for (int64_t t = (from); t <= (to); t++)                                                   \
            at += (size_t)snprintf(buf + at, sizeof(buf) - at, "%s%s", at > 1 ? "," : "",          \
                                   fr(ids(id), "h", t, SC, "1"));                                  \
        snprintf(buf + at, sizeof(buf) - at, "]");                                                 \
    } while (0)

    /* old data first, then frames ahead */
    BODY(old, a, N - 95, N - 86);
    feed(old, 10);
    BODY(ahead, a, N + 1, N + 10);
    feed(ahead, 10);
    T_VALUE(a, N - 95, 10, "10");
    j = raw(a, "start_time=%" PRId64 "&duration=10&timeout=0", N - 95);
    T_EQ(jint(j, "minreporting"), 1);
    json_decref(j);

    /* frames ahead first, then old data: none of it is late */
    BODY(ahead, b, N + 1, N + 10);
    feed(ahead, 10);
    BODY(old, b, N - 95, N - 86);
    j = ingest_on(srv.port, NULL, "/ca", "application/json", old, &st);
    T_EQ(st, 200);
    T_JEQ(j, "{\"frames\":10,\"accepted\":10,\"unknown\":0,\"late\":0,\"future\":0,"
             "\"duplicate\":0}");
    json_decref(j);
    T_VALUE(b, N - 95, 10, "10");
#undef BODY
}

/* Slots older than the retention are expired: retention-time 10, a frame 8 s old, then a few
 * seconds later it is gone, and the same second is now refused as late. */
static void test_retention_expiry(void)
{
    int id = create("{\"module\":\"syscall\",\"stat\":\"syscalls\",\"retention-time\":10}");
    int64_t N = now_s();
    int st;
    json_t *j;
    T_REQUIRE(id > 0);

    feed(fr(ids(id), "h", N - 8, SC, "3"), 1);
    T_VALUE(id, N - 8, 1, "3");
    for (int i = 0; i < 100 && now_s() < N + 4; i++) /* N-8 is then older than now - 10 */
        th_sleep_ms(100);
    th_sleep_ms(1100); /* the server's once-a-second expiry has run since */
    j = raw(id, "start_time=%" PRId64 "&timeout=0", N - 8);
    T_JEQ(json_object_get(j, "value"), "0");
    T_EQ(jint(j, "minreporting"), 0);
    json_decref(j);
    j = ingest_on(srv.port, NULL, "/ca", "application/json", fr(ids(id), "h", N - 8, SC, "3"), &st);
    T_EQ(st, 200);
    T_JEQ(j, "{\"frames\":1,\"accepted\":0,\"unknown\":0,\"late\":1,\"future\":0,\"duplicate\":0}");
    json_decref(j);
}

/* ---- tenants ------------------------------------------------------------------------------ */

static void test_tenant_ingest(void)
{
    char tpath[512];
    snprintf(tpath, sizeof(tpath), "%s/values-tenants-%d.json", t_outdir(), (int)getpid());
    FILE *tf = fopen(tpath, "w");
    T_REQUIRE(tf != NULL);
    fputs("{\"operator\":{\"token\":\"op-secret\"},\"tenants\":{"
          "\"acme\":{\"token\":\"acme-secret\",\"cgroups\":[\"/acme.slice\"]},"
          "\"beta\":{\"token\":\"beta-secret\",\"cgroups\":[\"/beta.slice\"]}}}\n",
          tf);
    fclose(tf);
    const char *extra[] = {"--no-agent", "--tenants", tpath, NULL};
    struct th_serve ts;
    T_REQUIRE(th_serve_start(sonde, extra, NULL, &ts) == 0);
    int port = ts.port;
    const char *op = "op-secret", *acme = "acme-secret", *beta = "beta-secret";
    int64_t T = now_s() - 60;
    char body[2048], path[256];
    int st;
    json_t *j;

    int g1 = create_on(port, op, "/ca", SYSCALLS("[]"));
    int g2 = create_on(port, op, "/ca", SYSCALLS("[]"));
    int a1 = create_on(port, acme, "/ca/customers/acme", SYSCALLS("[]"));
    int b1 = create_on(port, beta, "/ca/customers/beta", SYSCALLS("[]"));
    T_EQ(g1, 1);
    T_EQ(g2, 2);
    T_EQ(a1, 1); /* each customer counts from 1 */
    T_EQ(b1, 1);

#define TVAL(tok, base, id, want)                                                                  \
    do {                                                                                           \
        snprintf(path, sizeof(path),                                                               \
                 "%s/instrumentations/%d/value/raw?start_time=%" PRId64 "&timeout=0", base, id,    \
                 T);                                                                               \
        j = jreq(port, tok, "GET", path, NULL, NULL, &st);                                         \
        T_EQ(st, 200);                                                                             \
        T_JEQ(json_object_get(j, "value"), want);                                                  \
        json_decref(j);                                                                            \
    } while (0)

    /* the tenant's "1" is its own instrumentation 1 */
    j = ingest_on(port, acme, "/ca/customers/acme", "application/json", fr("1", "h", T, SC, "7"),
                  &st);
    T_EQ(st, 200);
    T_JEQ(j, "{\"frames\":1,\"accepted\":1,\"unknown\":0,\"late\":0,\"future\":0,\"duplicate\":0}");
    json_decref(j);
    TVAL(acme, "/ca/customers/acme", 1, "7");
    TVAL(op, "/ca", 1, "0");
    TVAL(beta, "/ca/customers/beta", 1, "0");

    /* an id the tenant does not have (the operator's scope has a 2): unknown */
    j = ingest_on(port, acme, "/ca/customers/acme", "application/json", fr("2", "h", T, SC, "5"),
                  &st);
    T_EQ(st, 200);
    T_JEQ(j, "{\"frames\":1,\"accepted\":0,\"unknown\":1,\"late\":0,\"future\":0,\"duplicate\":0}");
    json_decref(j);
    TVAL(op, "/ca", 2, "0");

    /* another tenant's instrumentation by its full id: refused, nothing applied */
    snprintf(body, sizeof(body), "[%s,%s]", fr("1", "h", T, SC, "100"),
             fr("beta/1", "h", T, SC, "3"));
    j = ingest_on(port, acme, "/ca/customers/acme", "application/json", body, &st);
    T_EQ(st, 400);
    T_STR(err_code(j), "ECA_INVAL");
    T_OK(starts_with(err_msg(j), "frame 2: "));
    json_decref(j);
    TVAL(beta, "/ca/customers/beta", 1, "0");
    TVAL(acme, "/ca/customers/acme", 1, "7");

    /* the tenant's token cannot use the operator's ingest or another tenant's */
    j = ingest_on(port, acme, "/ca", "application/json", fr("1", "h", T, SC, "3"), &st);
    T_EQ(st, 403);
    json_decref(j);
    j = ingest_on(port, acme, "/ca", "application/json", fr("beta/1", "h", T, SC, "3"), &st);
    T_EQ(st, 403);
    json_decref(j);
    j = ingest_on(port, beta, "/ca/customers/acme", "application/json", fr("1", "h", T, SC, "3"),
                  &st);
    T_EQ(st, 404);
    json_decref(j);
    j = ingest_on(port, NULL, "/ca/customers/acme", "application/json", fr("1", "h", T, SC, "3"),
                  &st);
    T_EQ(st, 401);
    json_decref(j);
    TVAL(op, "/ca", 1, "0");
    TVAL(acme, "/ca/customers/acme", 1, "7");
    TVAL(beta, "/ca/customers/beta", 1, "0");

    /* the operator addresses a tenant's instrumentation as "tenant/N", or in its scope as "N" */
    snprintf(body, sizeof(body), "[%s,%s]", fr("acme/1", "h", T, SC, "3"),
             fr("1", "h", T, SC, "11"));
    j = ingest_on(port, op, "/ca", "application/json", body, &st);
    T_EQ(st, 200);
    T_JEQ(j, "{\"frames\":2,\"accepted\":2,\"unknown\":0,\"late\":0,\"future\":0,\"duplicate\":0}");
    json_decref(j);
    j = ingest_on(port, op, "/ca/customers/beta", "application/json", fr("1", "h", T, SC, "13"),
                  &st);
    T_EQ(st, 200);
    T_EQ(jint(j, "accepted"), 1);
    json_decref(j);
    TVAL(acme, "/ca/customers/acme", 1, "10");
    TVAL(op, "/ca", 1, "11");
    TVAL(beta, "/ca/customers/beta", 1, "13");
    TVAL(op, "/ca/customers/acme", 1, "10");

    /* the tenant's listings name its own scope */
    snprintf(path, sizeof(path), "/ca/customers/acme/instrumentations/%d/value", a1);
    j = jreq(port, acme, "GET", path, NULL, NULL, &st);
    T_EQ(st, 200);
    T_JEQ(j,
          "[{\"name\":\"value_raw\",\"uri\":\"/ca/customers/acme/instrumentations/1/value/raw\"}]");
    json_decref(j);
    /* and another tenant does not see them */
    j = jreq(port, beta, "GET", path, NULL, NULL, &st);
    T_EQ(st, 404);
    json_decref(j);
#undef TVAL

    T_EQ(metric_on(port, op, M_ALL), 4);
    T_EQ(metric_on(port, op, M_UNKNOWN), 1);
    T_EQ(metric_on(port, op, M_INVALID), 1);
    T_EQ(th_serve_stop(&ts), 0);
    unlink(tpath);
}

int main(int argc, char **argv)
{
    sonde = th_sonde_main(argc, argv); /* SONDE [CASE-FILTER] */
    const char *extra[] = {"--no-agent", NULL};
    srv_up = th_serve_start(sonde, extra, NULL, &srv) == 0;
    if (!srv_up) {
        fprintf(stderr, "cannot start %s serve\n", sonde);
        return 1;
    }
    t_run("value_listings", test_value_listings);
    t_run("raw_scalar", test_raw_scalar);
    t_run("raw_discrete", test_raw_discrete);
    t_run("raw_numeric", test_raw_numeric);
    t_run("raw_numeric_by_key", test_raw_numeric_by_key);
    t_run("two_sources_merge", test_two_sources_merge);
    t_run("point_scope", test_point_scope);
    t_run("granularity_10", test_granularity_10);
    t_run("interval_combinations", test_interval_combinations);
    t_run("ndatapoints", test_ndatapoints);
    t_run("future", test_future);
    t_run("long_poll_data_arrives", test_long_poll_data_arrives);
    t_run("long_poll_all_sources", test_long_poll_all_sources);
    t_run("long_poll_timeout", test_long_poll_timeout);
    t_run("params", test_params);
    t_run("transformations", test_transformations);
    t_run("ingest_forms", test_ingest_forms);
    t_run("ingest_dropped", test_ingest_dropped);
    t_run("ingest_refused", test_ingest_refused);
    t_run("retention_with_frames_ahead", test_retention_with_frames_ahead);
    t_run("retention_expiry", test_retention_expiry);
    t_run("tenant_ingest", test_tenant_ingest);
    T_EQ(th_serve_stop(&srv), 0);
    return t_done();
}
