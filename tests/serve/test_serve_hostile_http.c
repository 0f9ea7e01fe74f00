/*
 * `sonde serve` under hostile input and load (docs/operations.md): connection floods from one
 * address and from many, clients that trickle their head or their body, bodies refused on
 * their head before a byte of them is read (401, 404, 413, 503 past the body memory), the
 * server's memory while that happens, long polls that outlive the short read deadlines, and
 * the HTTP leniencies that must be refused at once (%00, two Content-Lengths, unknown
 * transfer codings, huge chunks and lengths, garbage request lines), with every refusal
 * counted in /metrics.
 *
 * Everything runs on loopback: the floods come from 127.0.0.1 and 127.0.1.x, the probes from
 * 127.0.0.2 (all of 127/8 is this host), against servers of our own on free ports. Every wait
 * is bounded in time and every loop in count. Raw sockets, not tests/support/http.h's client:
 * these tests send what no well-behaved client would, and look at exactly when the server
 * answers and closes. Usage: test_serve_hostile_http SONDE [CASE-FILTER].
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "t.h"

#ifdef SN_SANITIZE /* the sanitizer build: ASan's quarantine keeps freed memory resident */
#define UNDER_ASAN 1
#else
#define UNDER_ASAN 0
#endif

#define PROBE_SRC       "127.0.0.2"
#define PROBE_MAX_MS    1000.0 /* every probe under a flood (the figures are printed) */
#define PROBE_MEDIAN_MS 100.0  /* their median: what the issue asks of each */
#define FLOOD_N         2000

static const char *sonde;

/* ---- time, sockets ------------------------------------------------------------------------- */

static void raise_nofile(rlim_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_max < want)
        rl.rlim_max = want; /* root may */
    if (rl.rlim_cur < want)
        rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
        rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* A non-blocking TCP socket from src (an IPv4 address of 127/8) to 127.0.0.1:port, its
 * connect started. Returns the descriptor or -errno. */
static int sock_from(const char *src, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET}, d = {.sin_family = AF_INET};
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    if (inet_pton(AF_INET, src, &a.sin_addr) != 1 ||
        bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        int e = errno ? errno : EINVAL;
        close(fd);
        return -e;
    }
    d.sin_port = htons((uint16_t)port);
    d.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&d, sizeof(d)) != 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* Waits (bounded) until fd is connected; 0 or -errno. */
static int wait_connected(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int e = 0;
    socklen_t sl = sizeof(e);
    if (poll(&p, 1, timeout_ms) != 1)
        return -ETIMEDOUT;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) != 0)
        return -errno;
    return -e;
}

/* Sends what it can of len bytes within timeout_ms (stops at an error: a server that answers
 * early closes). Returns the bytes sent. */
static size_t send_some(int fd, const void *p, size_t len, int timeout_ms)
{
    double end = th_now_ms() + timeout_ms;
    size_t off = 0;
    for (int k = 0; off < len && k < 1000000; k++) {
        ssize_t n = send(fd, (const char *)p + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            break;
        int left = (int)(end - th_now_ms());
        struct pollfd q = {.fd = fd, .events = POLLOUT};
        if (left <= 0 || poll(&q, 1, left) <= 0)
            break;
    }
    return off;
}

/* What came back on a connection. */
struct raw {
    int status;      /* of the first status line, 0 if none */
    bool eof;        /* the server closed (FIN) */
    bool reset;      /* ... or reset */
    double ms;       /* from the start of reading to the end (close or timeout) */
    double first_ms; /* to the first byte (-1: none) */
    size_t n;
    char buf[65536]; /* NUL-terminated */
};

static struct raw *raw_new(void)
{
    struct raw *r = calloc(1, sizeof(*r));
    if (!r)
        abort();
    return r;
}

/* Reads fd until the server closes it or timeout_ms passes. */
static void read_all(int fd, int timeout_ms, struct raw *r)
{
    double t0 = th_now_ms(), end = t0 + timeout_ms;
    r->first_ms = -1;
    for (int k = 0; k < 100000; k++) {
        int left = (int)(end - th_now_ms());
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) <= 0)
            break;
        ssize_t n = recv(fd, r->buf + r->n, sizeof(r->buf) - 1 - r->n, 0);
        if (n > 0) {
            if (r->first_ms < 0)
                r->first_ms = th_now_ms() - t0;
            r->n += (size_t)n;
            r->buf[r->n] = '\0';
            if (!r->status && strncmp(r->buf, "HTTP/1.", 7) == 0 && r->n >= 12)
                r->status = atoi(r->buf + 9);
            if (r->n == sizeof(r->buf) - 1)
                r->n = 0; /* keep reading to the close (the status is kept) */
            continue;
        }
        if (n == 0) {
            r->eof = true;
            break;
        }
        if (errno == EAGAIN || errno == EINTR)
            continue;
        r->reset = true;
        break;
    }
    r->ms = th_now_ms() - t0;
}

/* One exchange from src: connect, send req (len bytes; all it can), read until the close or
 * timeout_ms. Returns 0, or -errno when it could not connect. */
static int exchange(const char *src, int port, const void *req, size_t len, int timeout_ms,
                    struct raw *r)
{
    int fd = sock_from(src, port), rc;
    memset(r, 0, sizeof(*r));
    if (fd < 0)
        return fd;
    if ((rc = wait_connected(fd, 2000)) < 0) {
        close(fd);
        return rc;
    }
    send_some(fd, req, len, timeout_ms);
    read_all(fd, timeout_ms, r);
    close(fd);
    return 0;
}

/* The body of a raw response (after the head), or "". */
static const char *raw_body(const struct raw *r)
{
    const char *e = strstr(r->buf, "\r\n\r\n");
    return e ? e + 4 : "";
}

/* GET path from src (token: a bearer token, or NULL), Connection: close. */
static int get_from(const char *src, int port, const char *path, const char *token, struct raw *r)
{
    char q[1024], auth[300] = "";
    if (token)
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", token);
    int n =
        snprintf(q, sizeof(q), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sConnection: close\r\n\r\n",
                 path, auth);
    return exchange(src, port, q, (size_t)n, 5000, r);
}

/* A metric's value from /metrics (asked from 127.0.0.2), e.g.
 * "sonde_http_refused_total{reason=\"per_ip_limit\"}"; -1 when unavailable. */
static double metric(int port, const char *token, const char *name)
{
    struct raw *r = raw_new();
    double v = -1;
    for (int attempt = 0; attempt < 5 && v < 0; attempt++) {
        if (get_from(PROBE_SRC, port, "/metrics", token, r) == 0 && r->status == 200) {
            size_t nl = strlen(name);
            for (const char *p = raw_body(r); p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
                if (strncmp(p, name, nl) == 0 && p[nl] == ' ') {
                    v = strtod(p + nl + 1, NULL);
                    break;
                }
        }
        if (v < 0)
            th_sleep_ms(100);
    }
    free(r);
    return v;
}

#define REFUSED(reason) "sonde_http_refused_total{reason=\"" reason "\"}"

/* Polls metric until it reaches at least want (bounded by ms); returns the last value. */
static double metric_reaches(int port, const char *token, const char *name, double want, int ms)
{
    double end = th_now_ms() + ms, v = -1;
    for (int k = 0; k < 1000; k++) {
        v = metric(port, token, name);
        if (v >= want || th_now_ms() > end)
            break;
        th_sleep_ms(100);
    }
    return v;
}

/* Resident memory of pid, kB (VmRSS), or -1. */
static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

/* The probe: GET /ca from 127.0.0.2, timed from connect to the whole answer; 0 and *ms when
 * it was answered 200. */
static int probe(int port, double *ms)
{
    struct raw *r = raw_new();
    double t0 = th_now_ms();
    int rc = get_from(PROBE_SRC, port, "/ca", NULL, r);
    *ms = th_now_ms() - t0;
    rc = rc ? rc : r->status == 200 ? 0 : -EPROTO;
    if (rc)
        t_note("probe: rc %d status %d after %.1f ms: %.200s", rc, r->status, *ms, r->buf);
    free(r);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* n probes, 50 ms apart: each answered; the figures printed; the worst held to PROBE_MAX_MS
 * and the median to PROBE_MEDIAN_MS. */
static void probes(int port, int n, const char *what)
{
    double ms[16];
    if (n > 16)
        n = 16;
    for (int i = 0; i < n; i++) {
        T_EQ(probe(port, &ms[i]), 0);
        printf("# probe %d %s: %.2f ms\n", i, what, ms[i]);
        th_sleep_ms(50);
    }
    qsort(ms, (size_t)n, sizeof(ms[0]), cmp_double);
    t_note("probes %s: median %.2f ms, worst %.2f ms", what, ms[n / 2], ms[n - 1]);
    T_OK(ms[n - 1] < PROBE_MAX_MS);
    t_note("probes %s: median %.2f ms, worst %.2f ms", what, ms[n / 2], ms[n - 1]);
    T_OK(ms[n / 2] < PROBE_MEDIAN_MS);
}

static int start(struct th_serve *s, const char *const *extra)
{
    int rc = th_serve_start(sonde, extra, NULL, s);
    if (rc)
        t_note("th_serve_start: %s", strerror(-rc));
    return rc;
}

/* ---- 1. connection exhaustion -------------------------------------------------------------- */

/* FLOOD_N connections from 127.0.0.1, half of them sending a head that never ends, half
 * nothing: all but --max-connections-per-ip are refused at once; a client from another address
 * is served meanwhile; the ones kept get a 408 at the header deadline and are closed. */
static void test_flood_one_address(void)
{
    struct th_serve s;
    const char *extra[] = {"--no-agent", "--header-timeout", "2", NULL};
    static int fds[FLOOD_N];
    int n = 0;
    double ms;

    T_REQUIRE(start(&s, extra) == 0);
    double t0 = th_now_ms();
    for (int i = 0; i < FLOOD_N; i++) {
        int fd = sock_from("127.0.0.1", s.port);
        if (fd < 0) {
            t_note("socket %d: %s", i, strerror(-fd));
            break;
        }
        fds[n++] = fd;
    }
    T_EQ(n, FLOOD_N);
    for (int i = 0; i < n; i += 2) /* half of them: an unfinished head */
        if (wait_connected(fds[i], 1000) == 0)
            send_some(fds[i], "GET /ca HTTP/1.1\r\n", 18, 100);
    printf("# flood: %d connections opened in %.0f ms\n", n, th_now_ms() - t0);
    probes(s.port, 7, "under the flood");
    double refused = metric_reaches(s.port, NULL, REFUSED("per_ip_limit"), FLOOD_N - 128 - 8, 5000);
    printf("# refused per_ip_limit: %.0f\n", refused);
    T_OK(refused >= FLOOD_N - 128 - 8);
    double conns = metric(s.port, NULL, "sonde_http_connections");
    T_OK(conns >= 0 && conns <= 128 + 8);

    /* the kept ones: a 408 at the header deadline (2 s), then the close */
    struct raw *r = raw_new();
    int got408 = 0, closed = 0;
    for (int i = 0; i < n && i < 200; i += 2) {
        memset(r, 0, sizeof(*r));
        read_all(fds[i], 3000, r);
        got408 += r->status == 408;
        closed += r->eof || r->reset;
    }
    printf("# of the first 100 half-sent heads: %d got a 408, %d closed\n", got408, closed);
    T_OK(closed == 100); /* refused at once, or cut at the deadline */
    T_OK(got408 >= 1);
    double slow = metric_reaches(s.port, NULL, REFUSED("slow_headers"), 100, 4000);
    printf("# refused slow_headers: %.0f\n", slow);
    T_OK(slow >= 100);
    free(r);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    T_EQ(probe(s.port, &ms), 0);
    T_EQ(th_serve_stop(&s), 0);
}

/* Idle connections from many addresses past --max-connections: each new one closes the
 * oldest idle one, so new clients still get in. */
static void test_flood_many_addresses(void)
{
    struct th_serve s;
    const char *extra[] = {"--no-agent", "--max-connections", "200", "--max-connections-per-ip",
                           "1000",       "--header-timeout",  "30",  NULL};
    static int fds[600];
    int n = 0;

    T_REQUIRE(start(&s, extra) == 0);
    for (int i = 0; i < 600; i++) {
        char src[32];
        snprintf(src, sizeof(src), "127.0.1.%d", 1 + i / 100);
        int fd = sock_from(src, s.port);
        if (fd < 0)
            break;
        fds[n++] = fd;
        if (i % 100 == 99)
            th_sleep_ms(20);
    }
    T_EQ(n, 600);
    double seen = metric_reaches(s.port, NULL, "sonde_http_connections_total", 600, 5000);
    T_OK(seen >= 600);
    probes(s.port, 7, "with 600 idle connections over a cap of 200");
    double evicted = metric(s.port, NULL, REFUSED("idle_evicted"));
    double conns = metric(s.port, NULL, "sonde_http_connections");
    printf("# idle_evicted %.0f, open connections %.0f\n", evicted, conns);
    T_OK(evicted >= 400 - 16);
    T_OK(conns >= 0 && conns <= 200 + 16);
    T_EQ(metric(s.port, NULL, REFUSED("global_limit")), 0);
    /* the oldest were the ones closed */
    struct raw *r = raw_new();
    read_all(fds[0], 1000, r);
    T_OK(r->eof || r->reset);
    free(r);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    T_EQ(th_serve_stop(&s), 0);
}

/* Connections busy receiving bodies fill --max-connections: a new one is refused (nothing
 * idle to close); the bodies that trickle get a 408 at the body deadline. */
static void test_busy_limit_and_slow_body(void)
{
    struct th_serve s;
    const char *extra[] = {"--no-agent", "--max-connections", "20", "--body-timeout", "2", NULL};
    const char head[] = "POST /ca/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n[{";
    int fds[20], n = 0;
    double ms;

    T_REQUIRE(start(&s, extra) == 0);
    th_sleep_ms(100); /* the start-up probe's connection closed */
    for (int i = 0; i < 20; i++) {
        int fd = sock_from("127.0.0.1", s.port);
        if (fd < 0 || wait_connected(fd, 1000) != 0) {
            if (fd >= 0)
                close(fd);
            break;
        }
        send_some(fd, head, sizeof(head) - 1, 500);
        th_sleep_ms(20); /* its head in before the next connects: else it is idle, and the next
                          * one would close it to make room */
        fds[n++] = fd;
    }
    T_EQ(n, 20);
    th_sleep_ms(300);
    struct raw *r = raw_new();
    T_EQ(get_from("127.0.0.3", s.port, "/ca", NULL, r), 0);
    printf("# a new client with 20 bodies arriving: status %d, %s after %.0f ms\n", r->status,
           r->eof     ? "closed"
           : r->reset ? "reset"
                      : "open",
           r->ms);
    T_EQ(r->status, 0); /* refused: closed without an answer */
    T_OK(r->eof || r->reset);
    T_OK(r->ms < 1000);
    /* the bodies: 408 at 2 s, then closed */
    int got408 = 0;
    for (int i = 0; i < n; i++) {
        memset(r, 0, sizeof(*r));
        read_all(fds[i], 4000, r);
        got408 += r->status == 408 && (r->eof || r->reset);
        close(fds[i]);
    }
    T_EQ(got408, 20);
    T_EQ(probe(s.port, &ms), 0);
    T_OK(metric(s.port, NULL, REFUSED("global_limit")) >= 1);
    T_OK(metric(s.port, NULL, REFUSED("slow_body")) >= 20);
    free(r);
    T_EQ(th_serve_stop(&s), 0);
}

/* A long poll waits 3 to 4 s with its response pending while the header and body deadlines
 * are 1 and 2 s: it is answered, not cut. */
static void test_long_poll_outlives_deadlines(void)
{
    struct th_serve s;
    const char *extra[] = {"--no-agent", "--header-timeout", "1", "--body-timeout", "2", NULL};
    struct th_resp r;
    char body[16384], path[256];
    size_t at = 0;

    T_REQUIRE(start(&s, extra) == 0);
    T_REQUIRE(th_send(s.port, "POST", "/ca/instrumentations", "application/json",
                      "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":[]}",
                      &r) == 0);
    T_EQ(r.status, 201);
    th_resp_free(&r);
    int64_t now = (int64_t)time(NULL);
    body[at++] = '[';
    for (int64_t t = now - 14; t <= now - 3; t++)
        at += (size_t)snprintf(body + at, sizeof(body) - at,
                               "%s{\"v\":1,\"id\":\"1\",\"host\":\"lp\",\"t\":%" PRId64
                               ",\"arity\":\"scalar\",\"value\":1}",
                               at > 1 ? "," : "", t);
    snprintf(body + at, sizeof(body) - at, "]");
    T_REQUIRE(th_send(s.port, "POST", "/ca/ingest", "application/json", body, &r) == 0);
    T_EQ(r.status, 200);
    th_resp_free(&r);
    int64_t T = (int64_t)time(NULL);
    /* the next second: it waits for the expected source until 2 s after that second ends */
    snprintf(path, sizeof(path),
             "/ca/instrumentations/1/value/raw?start_time=%" PRId64 "&timeout=5000", T + 1);
    T_REQUIRE(th_request(s.port, "GET", path, NULL, NULL, 0, 10000, &r) == 0);
    printf("# a long poll with deadlines of 1 and 2 s: %d after %.0f ms\n", r.status, r.ms);
    T_EQ(r.status, 200);
    T_OK(r.ms >= 2500);
    th_resp_free(&r);
    T_EQ(metric(s.port, NULL, REFUSED("slow_body")), 0);
    T_EQ(metric(s.port, NULL, REFUSED("stalled")), 0);
    T_EQ(th_serve_stop(&s), 0);
}

/* ---- 2. bodies refused on their head ------------------------------------------------------- */

static char tenants_file[512];

static const char *const with_tenants[] = {"--no-agent", "--tenants", tenants_file, NULL};

/* Sends a head announcing a 16 MiB body and 64 KiB of it, then waits for the answer: returns
 * the status (the server answered without the rest of the body), *closed when it closed. */
static int early(int port, const char *src, const char *path, const char *token, bool *closed,
                 struct raw *r)
{
    static char q[70000];
    char auth[300] = "";
    if (token)
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", token);
    int n = snprintf(q, sizeof(q),
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Type: application/json\r\n"
                     "Content-Length: 16777216\r\n\r\n",
                     path, auth);
    memset(q + n, 'x', 65536);
    *closed = false;
    if (exchange(src, port, q, (size_t)n + 65536, 3000, r) != 0)
        return -1;
    *closed = r->eof || r->reset;
    return r->status;
}

static void test_bodies_refused_on_head(void)
{
    struct th_serve s;
    struct raw *r = raw_new();
    bool closed;

    T_REQUIRE(start(&s, with_tenants) == 0);
    struct {
        const char *path, *token;
        int status;
    } cases[] = {
        {"/ca/ingest", NULL, 401},
        {"/ca/ingest", "wrong-token-123", 401},
        {"/ca/customers/acme/ingest", NULL, 401},
        {"/ca/customers/acme/ingest", "beta-token-1", 404}, /* another tenant's scope */
        {"/ca/ingest", "acme-token-1", 403},                /* a tenant on the operator's */
        {"/nope/ingest", NULL, 404},
        {"/ca/nope/ingest", "operator-token", 404},
        {"/ca/customers/acme/instrumentations/9/ingest", "acme-token-1", 404},
        {"/ca/instrumentations", "operator-token", 413}, /* 4 KiB at most there */
        {"/acme/analytics/instrumentations", NULL, 401},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int st = early(s.port, PROBE_SRC, cases[i].path, cases[i].token, &closed, r);
        t_note("POST %s (token %s): %d", cases[i].path, cases[i].token ? cases[i].token : "none",
               st);
        T_EQ(st, cases[i].status);
        T_OK(closed);
        T_OK(r->first_ms >= 0 && r->first_ms < 1000);
    }
    /* CloudAPI's code for a 401 */
    json_t *j = json_loads(raw_body(r), 0, NULL);
    T_STR(json_string_value(json_object_get(j, "code")), "InvalidCredentials");
    json_decref(j);
    T_REQUIRE(get_from(PROBE_SRC, s.port, "/acme/analytics", NULL, r) == 0);
    T_EQ(r->status, 401);
    j = json_loads(raw_body(r), 0, NULL);
    T_STR(json_string_value(json_object_get(j, "code")), "InvalidCredentials");
    json_decref(j);
    T_REQUIRE(get_from(PROBE_SRC, s.port, "/acme/analytics", "beta-token-1", r) == 0);
    T_EQ(r->status, 404);
    T_REQUIRE(get_from(PROBE_SRC, s.port, "/ca/instrumentations", "acme-token-1", r) == 0);
    T_EQ(r->status, 403);
    /* a body announced but the head alone refused: Content-Length 10^12 */
    const char big[] =
        "POST /ca/customers/acme/ingest HTTP/1.1\r\nHost: x\r\n"
        "Authorization: Bearer acme-token-1\r\nContent-Length: 1000000000000\r\n\r\n";
    T_REQUIRE(exchange(PROBE_SRC, s.port, big, sizeof(big) - 1, 3000, r) == 0);
    T_EQ(r->status, 413);
    T_OK(r->eof || r->reset);
    T_OK(r->ms < 1000);
    free(r);
    T_EQ(th_serve_stop(&s), 0);
}

/* 60 unauthenticated 16 MiB uploads at once, then authorized ones past the body memory: the
 * server's memory before, during and after. */
static void test_body_memory(void)
{
    struct th_serve s;
    enum { N = 60, NA = 12 };
    static int fds[N];
    static char q[1 << 16];
    int n = 0;

    T_REQUIRE(start(&s, with_tenants) == 0);
    long before = rss_kb(s.pid), peak = before;
    printf("# RSS before: %ld kB\n", before);
    int hn = snprintf(q, sizeof(q),
                      "POST /ca/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 16777216\r\n\r\n");
    memset(q + hn, 'x', sizeof(q) - (size_t)hn);
    for (int i = 0; i < N; i++) {
        int fd = sock_from(PROBE_SRC, s.port);
        if (fd < 0 || wait_connected(fd, 1000) != 0) {
            if (fd >= 0)
                close(fd);
            break;
        }
        fds[n++] = fd;
    }
    T_EQ(n, N);
    /* each sends its head and 1 MiB of body, as fast as the server takes it */
    for (int k = 0; k < 16; k++) {
        for (int i = 0; i < n; i++)
            send_some(fds[i], k ? q + hn : q, k ? sizeof(q) - (size_t)hn : sizeof(q), 5);
        long now = rss_kb(s.pid);
        if (now > peak)
            peak = now;
    }
    struct raw *r = raw_new();
    int n401 = 0;
    for (int i = 0; i < n; i++) {
        memset(r, 0, sizeof(*r));
        read_all(fds[i], 2000, r);
        n401 += r->status == 401;
        close(fds[i]);
    }
    long after = rss_kb(s.pid);
    printf("# 60 unauthenticated 16 MiB uploads: %d answered 401; RSS peak %ld kB, after %ld "
           "kB\n",
           n401, peak, after);
    T_EQ(n401, N);
    if (!UNDER_ASAN) {
        T_OK(peak - before < 32 * 1024);
        T_OK(after - before < 16 * 1024);
    }

    /* authorized uploads of 16 MiB (garbage: 400 once read): at most 64 MiB of them in memory,
     * the rest 503 with Retry-After at once */
    static char body[1 << 20];
    memset(body, 'x', sizeof(body));
    n = 0;
    int st[NA] = {0}, n503 = 0, n400 = 0;
    bool retry_after = false;
    for (int i = 0; i < NA; i++) {
        char head[512];
        int fd = sock_from(PROBE_SRC, s.port);
        if (fd < 0 || wait_connected(fd, 1000) != 0) {
            if (fd >= 0)
                close(fd);
            break;
        }
        int l = snprintf(head, sizeof(head),
                         "POST /ca/customers/acme/ingest HTTP/1.1\r\nHost: x\r\n"
                         "Authorization: Bearer acme-token-1\r\nContent-Type: "
                         "application/json\r\nContent-Length: 16777216\r\n"
                         "Connection: close\r\n\r\n");
        send_some(fd, head, (size_t)l, 500);
        fds[n++] = fd;
    }
    T_EQ(n, NA);
    th_sleep_ms(300);
    long peak2 = rss_kb(s.pid);
    size_t sent[NA] = {0};
    bool done[NA] = {false};
    for (int i = 0; i < n; i++) { /* answered on its head (503): no body for it */
        struct pollfd p = {.fd = fds[i], .events = POLLIN};
        done[i] = poll(&p, 1, 0) == 1;
    }
    for (int k = 0; k < 2000; k++) { /* the bodies of the others, 1 MiB at a time */
        int busy = 0;
        for (int i = 0; i < n; i++) {
            if (done[i])
                continue;
            size_t want =
                sizeof(body) < (16u << 20) - sent[i] ? sizeof(body) : (16u << 20) - sent[i];
            size_t m = send_some(fds[i], body, want, 20);
            sent[i] += m;
            if (sent[i] == 16u << 20 || (m == 0 && want > 0 && k > 1000))
                done[i] = true;
            busy += !done[i];
        }
        long now = rss_kb(s.pid);
        if (now > peak2)
            peak2 = now;
        if (!busy)
            break;
    }
    for (int i = 0; i < n; i++) {
        memset(r, 0, sizeof(*r));
        read_all(fds[i], 5000, r);
        st[i] = r->status;
        n503 += st[i] == 503;
        n400 += st[i] == 400;
        if (st[i] == 503 && strstr(r->buf, "Retry-After: 1"))
            retry_after = true;
        close(fds[i]);
    }
    th_sleep_ms(500);
    long after2 = rss_kb(s.pid);
    double refused = metric(s.port, "operator-token", REFUSED("body_memory"));
    printf("# %d authorized 16 MiB uploads: %d read whole (400), %d refused 503; body_memory "
           "%.0f; RSS peak %ld kB, after %ld kB (before all: %ld kB)\n",
           NA, n400, n503, refused, peak2, after2, before);
    T_EQ(n400 + n503, NA);
    T_OK(n400 >= 1 && n400 <= 4); /* 64 MiB / (16 MiB + 1) */
    T_OK(n503 >= NA - 4);
    T_OK(retry_after);
    T_EQ(refused, n503);
    if (!UNDER_ASAN) {
        T_OK(peak2 - before < 112 * 1024); /* 64 MiB of bodies and the decoding of one */
        T_OK(after2 - before < 24 * 1024);
    }
    T_EQ(metric(s.port, "operator-token", "sonde_http_body_memory_bytes"), 0);
    free(r);
    T_EQ(th_serve_stop(&s), 0);
}

/* ---- 3. leniency ---------------------------------------------------------------------------- */

static void test_leniency(void)
{
    struct th_serve s;
    const char *extra[] = {"--no-agent", NULL};
    struct raw *r = raw_new();

    T_REQUIRE(start(&s, extra) == 0);
    struct {
        const char *what, *req;
        int status;
    } cases[] = {
        {"%00 in a path", "GET /ca/instrumentations/1%00/value/raw HTTP/1.1\r\nHost: x\r\n\r\n",
         400},
        {"%00 in a UI path", "GET /ui/sonde.css%00.png HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"%00 in the query", "GET /ca?x=1%00 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"two Content-Lengths",
         "POST /ca/instrumentations HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
         "Content-Length: 3\r\n\r\n{}",
         400},
        {"gzip, chunked",
         "POST /ca/instrumentations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
         "2\r\n{}\r\n0\r\n\r\n",
         501},
        {"chunked and Content-Length",
         "POST /ca/instrumentations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
         "Content-Length: 2\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
         400},
        {"Content-Length 10^12",
         "POST /ca/instrumentations HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n",
         413},
        {"garbage request line", "\x01\x02 garbage\r\n\r\n", 400},
        {"no Host", "GET /ca HTTP/1.1\r\n\r\n", 400},
        {"HTTP/9.9", "GET /ca HTTP/9.9\r\nHost: x\r\n\r\n", 505},
    };
    double p4 = metric(s.port, NULL, REFUSED("protocol"));
    double b4 = metric(s.port, NULL, REFUSED("bad_request"));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        T_REQUIRE(exchange(PROBE_SRC, s.port, cases[i].req, strlen(cases[i].req), 3000, r) == 0);
        printf("# %s: %d, %s after %.1f ms\n", cases[i].what, r->status,
               r->eof     ? "closed"
               : r->reset ? "reset"
                          : "still open",
               r->ms);
        t_note("%s: %.300s", cases[i].what, r->buf);
        T_EQ(r->status, cases[i].status);
        T_OK((r->eof || r->reset) && r->ms < 1000);
    }
    /* a chunk of 2^64-1 bytes: 413 once the path's limit (4 KiB) is passed */
    static char q[8192];
    int n = snprintf(q, sizeof(q),
                     "POST /ca/instrumentations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
                     "chunked\r\n\r\nffffffffffffffff\r\n");
    memset(q + n, '{', sizeof(q) - (size_t)n);
    T_REQUIRE(exchange(PROBE_SRC, s.port, q, sizeof(q), 3000, r) == 0);
    printf("# chunk ffffffffffffffff: %d, %s after %.1f ms\n", r->status,
           r->eof     ? "closed"
           : r->reset ? "reset"
                      : "still open",
           r->ms);
    T_EQ(r->status, 413);
    T_OK((r->eof || r->reset) && r->ms < 1000);
    /* a head larger than libmicrohttpd's buffer (16 KiB): a long target (414), a long header
     * (431); neither line ends */
    static char big[48 * 1024];
    n = snprintf(big, sizeof(big), "GET /ca?x=");
    memset(big + n, 'a', sizeof(big) - (size_t)n);
    T_REQUIRE(exchange(PROBE_SRC, s.port, big, sizeof(big), 3000, r) == 0);
    printf("# a target of 48 KiB: %d, %s after %.1f ms\n", r->status,
           r->eof     ? "closed"
           : r->reset ? "reset"
                      : "still open",
           r->ms);
    T_EQ(r->status, 414);
    T_OK((r->eof || r->reset) && r->ms < 1000);
    n = snprintf(big, sizeof(big), "GET /ca HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(big + n, 'a', sizeof(big) - (size_t)n);
    T_REQUIRE(exchange(PROBE_SRC, s.port, big, sizeof(big), 3000, r) == 0);
    printf("# a header of 48 KiB: %d, %s after %.1f ms\n", r->status,
           r->eof     ? "closed"
           : r->reset ? "reset"
                      : "still open",
           r->ms);
    T_EQ(r->status, 431);
    T_OK((r->eof || r->reset) && r->ms < 1000);
    /* libmicrohttpd's own answers are counted, Sonde's too */
    double p5 = metric(s.port, NULL, REFUSED("protocol"));
    double b5 = metric(s.port, NULL, REFUSED("bad_request"));
    printf("# counted: protocol +%.0f, bad_request +%.0f\n", p5 - p4, b5 - b4);
    T_OK(b5 - b4 >= 6);
    T_OK(p5 - p4 >= 5); /* the garbage line, no Host, HTTP/9.9, 414, 431 */
    /* and the server still serves */
    T_REQUIRE(get_from(PROBE_SRC, s.port, "/ui/sonde.css", NULL, r) == 0);
    T_OK(r->status == 200 || r->status == 404);
    free(r);
    T_EQ(th_serve_stop(&s), 0);
}

/* The limits' options: bad values are usage errors (exit 2), and --help lists them. */
static void test_options(void)
{
    static const char *const bad[] = {
        "--max-connections 0",        "--max-connections-per-ip x", "--header-timeout -1",
        "--body-timeout 10s",         "--max-body-memory 12",       "--max-body-memory 64Q",
        "--max-connections 99999999",
    };
    char cmd[1024], out[8192], err[4096];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(cmd, sizeof(cmd), "timeout 5 %s serve --no-agent --listen 127.0.0.1:0 %s", sonde,
                 bad[i]);
        int rc = t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err));
        t_note("%s: %s", bad[i], err);
        T_EQ(rc, 2);
    }
    snprintf(cmd, sizeof(cmd), "%s serve --help", sonde);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    static const char *const opts[] = {"--max-connections N", "--max-connections-per-ip N",
                                       "--header-timeout S", "--body-timeout S",
                                       "--max-body-memory BYTES"};
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
        T_OK(strstr(out, opts[i]) != NULL);
}

int main(int argc, char **argv)
{
    sonde = th_sonde_main(argc, argv); /* SONDE [CASE-FILTER] */
    setvbuf(stdout, NULL, _IOLBF, 0);
    raise_nofile(FLOOD_N + 512);
    snprintf(tenants_file, sizeof(tenants_file), "%s/hostile-tenants-%d.json", t_outdir(),
             (int)getpid());
    FILE *f = fopen(tenants_file, "w");
    if (!f)
        return 1;
    fputs("{\"operator\":{\"token\":\"operator-token\"},\"tenants\":{"
          "\"acme\":{\"token\":\"acme-token-1\",\"cgroups\":[\"/acme.slice\"]},"
          "\"beta\":{\"token\":\"beta-token-1\",\"cgroups\":[\"/beta.slice\"]}}}",
          f);
    fclose(f);
    t_run("options", test_options);
    t_run("flood_one_address", test_flood_one_address);
    t_run("flood_many_addresses", test_flood_many_addresses);
    t_run("busy_limit_and_slow_body", test_busy_limit_and_slow_body);
    t_run("long_poll_outlives_deadlines", test_long_poll_outlives_deadlines);
    t_run("bodies_refused_on_head", test_bodies_refused_on_head);
    t_run("body_memory", test_body_memory);
    t_run("leniency", test_leniency);
    unlink(tenants_file);
    return t_done();
}
