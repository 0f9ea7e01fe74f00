/*
 * Server benchmarks (make bench-serve): `sonde serve` measured from outside, over loopback, the
 * way browsers and agents use it. The bench starts its own servers (free ports, fresh data
 * directories under /tmp), measures, prints each figure with its median, p90 and p99 and the
 * ratio to the target, and stops every process it started by PID.
 *
 *   1. heatmap/image 600x300, duration 60 (60 one-second columns), nbuckets 100, over 60 s of
 *      realistic data (per second and key ~40 log-linear buckets spread over 1 us - 100 ms):
 *      one key (syscall latency decomposed by latency only) <= 5 ms median; eight keys (by
 *      execname and latency, decompose_all=true, so eight layers) <= 10 ms. Each over a new
 *      connection per request (a browser's poll; HTTP/1.1 with Connection: close) and over one
 *      kept-alive connection.
 *   2. value/raw of one second <= 1 ms median, same instrumentations, both connection modes.
 *   3. event to API <= 1.5 s (root): the server's own agent, a syscall.syscalls instrumentation
 *      whose predicate is a child's unique comm. At a random sub-second offset the child makes
 *      one marked system call (a 7 ms nanosleep, told apart by its latency bucket) while the
 *      bench long-polls value/raw for that second; the figure is the time from the call's
 *      return to the arrival of the reply that holds it (both CLOCK_REALTIME).
 *   4. sustained load for SERVE_SECONDS (default 300): 200 clients polling value/raw and 20
 *      fetching heatmap images, each at 1 Hz on a thread of its own with a new connection per
 *      request, half on each instrumentation, while the frames of the current second are
 *      ingested every second. Requests, errors (any non-200 or socket error), latencies, the
 *      server's CPU (utime+stime from /proc, % of one CPU) and its RSS at the end.
 *
 *   5. hostile neighbours: the median of heatmap/image (8 keys) and value/raw (8 keys), quiet and
 *      then while 1,000 slow connections (half a request head each, from 40 loopback addresses
 *      127.0.0.2-41, so that per-address connection limits do not refuse them all) are held open
 *      and a 200,000-key frame (--key-cap 100000) is ingested on a third instrumentation over
 *      and over; both figures side by side with their ratio.
 *
 *   6. history (also run by make bench-store): heatmap/image 600x300 of the last 7 days of an
 *      instrumentation with 8 keys (execname and latency, decompose_all), served from the store
 *      (a week of one frame a minute put in with POST /ca/import: the 1-hour tier answers),
 *      <= 20 ms median; beside it, its baseline: the same image of the last 60 s, from memory.
 *
 * Latencies are client-side wall times (monotonic clock) from before connect to the last body
 * byte. Next to them, the server's own handler time (its /metrics counters: lock, parameters,
 * drawing, PNG, JSON) tells transport from work. Series of part 1-2 run in interleaved rounds,
 * so the VM's drift over seconds does not favour one of them. Each part also prints where the
 * machine's CPU went meanwhile (the server, this bench, every other process, the hypervisor's
 * steal) and TCP's listen overflows: on a shared 2-CPU machine, a build next door shows there.
 *
 * Benchmarks report, never assert: the exit status is 0 whenever the bench ran, whatever the
 * figures; 1 when it could not (a server did not start, a setup request was refused).
 *
 *   bench_serve [--seconds N] [--reps N] [--events N] [--only PARTS] [SONDE]
 *   (or SERVE_SECONDS, SERVE_REPS, SERVE_EVENTS in the environment; --only 3 or --only 12
 *   runs those parts, --only 5 the hostile case; SONDE defaults to the binary of this build tree)
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <jansson.h>

#include "bench_util.h"
#include "http.h"

#ifndef SONDE_BIN
#define SONDE_BIN "build/sonde"
#endif

#define IMG_W          600
#define IMG_H          300
#define IMG_DURATION   60
#define IMG_NBUCKETS   100
#define NKEYS          8
#define BUCKETS        40 /* per second and key */
#define RAW_CLIENTS    200
#define IMG_CLIENTS    20
#define ROUNDS         5        /* parts 1-2: each series in this many interleaved chunks */
#define WARMUP         5        /* untimed requests per series and chunk */
#define MARK_NS        7000000L /* the marked system call: a 7 ms nanosleep */
/* The marked call's latency bucket starts in [MARK_LO, MARK_HI): it oversleeps on a busy
 * machine, and the child's other calls in its second take microseconds (a write) or seconds. */
#define MARK_LO        6900000
#define MARK_HI        500000000
#define REQ_TIMEOUT_MS 10000

static const char *const execnames[NKEYS] = {"nginx", "postgres", "node", "java",
                                             "redis", "sshd",     "bash", "python3"};

/* ---- time, statistics, a growing string ----------------------------------------------------- */

static void sleep_until_mono_ms(double ms)
{
    bench_sleep_until(CLOCK_MONOTONIC, (int64_t)(ms * 1e6));
}

struct stats {
    size_t n;
    double med, p90, p99, max, mean;
};

/* Sorts v. */
static struct stats stats_of(double *v, size_t n)
{
    struct stats s = {.n = n};
    double sum = 0;
    if (n == 0)
        return s;
    qsort(v, n, sizeof(*v), bench_cmp_double);
    for (size_t i = 0; i < n; i++)
        sum += v[i];
    s.med = bench_pct(v, n, 0.5);
    s.p90 = bench_pct(v, n, 0.9);
    s.p99 = bench_pct(v, n, 0.99);
    s.max = v[n - 1];
    s.mean = sum / (double)n;
    return s;
}

struct sbuf {
    char *p;
    size_t n, cap;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            abort();
        if (b->p && b->n + (size_t)n < b->cap) {
            b->n += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap <= b->n + (size_t)n)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            abort();
        b->p = p;
        b->cap = cap;
    }
}

/* ---- data: realistic latency histograms ----------------------------------------------------- */

/* One second of one key: BUCKETS distinct log-linear buckets of 1 us - 100 ms ([m*10^e,
 * (m+1)*10^e - 1], m 10..99, e 2..6: 450 buckets), drawn log-normally around 10^centre ns,
 * as [[lo,hi],n],... in ascending order. */
static void hist_json(struct sbuf *b, double centre)
{
    static const int64_t p10[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000};
    bool used[450] = {false};
    int n = 0;

    for (int tries = 0; n < BUCKETS && tries < 100000; tries++) {
        double x = centre + 0.8 * bench_xnormal();
        if (x < 3 || x >= 8)
            continue;
        int e = (int)floor(x) - 1, m = (int)(pow(10, x) / (double)p10[e]);
        m = m < 10 ? 10 : m > 99 ? 99 : m;
        int i = (e - 2) * 90 + (m - 10);
        if (!used[i]) {
            used[i] = true;
            n++;
        }
    }
    sb_printf(b, "[");
    for (int i = 0, k = 0; i < 450; i++) {
        if (!used[i])
            continue;
        int e = 2 + i / 90, m = 10 + i % 90;
        sb_printf(b, "%s[[%" PRId64 ",%" PRId64 "],%d]", k++ ? "," : "", m * p10[e],
                  (m + 1) * p10[e] - 1, 1 + (int)(bench_xrand() % 300));
    }
    sb_printf(b, "]");
}

/* The frame of second t for instrumentation id: one histogram, or one per execname. */
static void frame_json(struct sbuf *b, int id, bool by_key, int64_t t)
{
    sb_printf(b,
              "{\"v\":1,\"id\":\"%d\",\"host\":\"bench\",\"t\":%" PRId64
              ",\"arity\":\"numeric-decomposition\",\"value\":",
              id, t);
    if (!by_key) {
        hist_json(b, 5.0);
    } else {
        sb_printf(b, "{");
        for (int k = 0; k < NKEYS; k++) {
            sb_printf(b, "%s\"%s\":", k ? "," : "", execnames[k]);
            hist_json(b, 3.6 + 0.5 * k);
        }
        sb_printf(b, "}");
    }
    sb_printf(b, "}\n");
}

/* ---- requests ------------------------------------------------------------------------------- */

/* POSTs JSON frames (JSON lines) to path (/ca/ingest, /ca/import); returns the number accepted,
 * or -1 (reason on stderr). */
static int post_frames(int port, const char *path, const struct sbuf *body, double *ms)
{
    static const char *const hdrs[] = {"Content-Type: application/json", NULL};
    struct th_resp r;
    int accepted = -1;
    double t0 = bench_mono_ms();
    int rc = th_request(port, "POST", path, hdrs, body->p, body->n, 120000, &r);
    if (ms)
        *ms = bench_mono_ms() - t0;
    if (rc == 0 && r.status == 200) {
        json_t *j = json_loads(r.body, 0, NULL);
        if (json_is_integer(json_object_get(j, "accepted")))
            accepted = (int)json_integer_value(json_object_get(j, "accepted"));
        json_decref(j);
    }
    if (accepted < 0)
        fprintf(stderr, "bench_serve: %s: %s (status %d): %.300s\n", path,
                rc ? strerror(-rc) : "refused", r.status, r.body ? r.body : "");
    th_resp_free(&r);
    return accepted;
}

static int ingest(int port, const struct sbuf *body, double *ms)
{
    return post_frames(port, "/ca/ingest", body, ms);
}

/* Creates an instrumentation; returns its id, or -1 (reason on stderr). */
static int create(int port, const char *props)
{
    struct th_resp r;
    int id = -1;
    int rc = th_send(port, "POST", "/ca/instrumentations", "application/json", props, &r);
    if (rc == 0 && r.status == 201) {
        json_t *j = json_loads(r.body, 0, NULL);
        const char *s = json_string_value(json_object_get(j, "id"));
        if (s)
            id = atoi(s);
        json_decref(j);
    }
    if (id < 0)
        fprintf(stderr, "bench_serve: create %s: %s (status %d): %.300s\n", props,
                rc ? strerror(-rc) : "refused", r.status, r.body ? r.body : "");
    th_resp_free(&r);
    return id;
}

/* The server's handler counters (/metrics): heatmap renders and raw requests, and the seconds
 * spent in each. False when they cannot be read. */
struct srv_counters {
    double renders, render_s, raws, raw_s;
};

static double metric(const char *body, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, name, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return NAN;
}

static bool srv_counters(int port, struct srv_counters *c)
{
    struct th_resp r;
    bool ok = th_get(port, "/metrics", &r) == 0 && r.status == 200;
    if (ok) {
        c->renders = metric(r.body, "sonde_heatmap_renders_total");
        c->render_s = metric(r.body, "sonde_heatmap_render_seconds_total");
        c->raws = metric(r.body, "sonde_raw_requests_total");
        c->raw_s = metric(r.body, "sonde_raw_seconds_total");
        ok = !isnan(c->renders) && !isnan(c->render_s) && !isnan(c->raws) && !isnan(c->raw_s);
    }
    th_resp_free(&r);
    return ok;
}

/* A kept-alive HTTP/1.1 connection: GETs one after another on one socket (reopened once if
 * the server closed it between requests). Bodies must come with a Content-Length, which is
 * what this server sends. */
struct ka {
    int port, fd, status;
    char *buf;
    size_t cap, body_off, body_len;
    unsigned reconnects;
};

static int ka_open(struct ka *k)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)k->port)};
    struct timeval tv = {.tv_sec = REQ_TIMEOUT_MS / 1000};
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    k->fd = fd;
    return 0;
}

/* One exchange; -ECONNRESET when the server closed before answering a byte. */
static int ka_exchange(struct ka *k, const char *path)
{
    char req[2048];
    int len =
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", path, k->port);
    size_t have = 0, head = 0, clen = 0, off = 0;
    bool close_after = false;

    if (len < 0 || (size_t)len >= sizeof(req))
        return -ENAMETOOLONG;
    while (off < (size_t)len) {
        ssize_t n = send(k->fd, req + off, (size_t)len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return errno == EPIPE || errno == ECONNRESET ? -ECONNRESET : -errno;
        off += (size_t)n;
    }
    for (;;) {
        if (have + 65536 > k->cap) {
            size_t cap = k->cap ? k->cap * 2 : 1 << 20;
            while (cap < have + 65536)
                cap *= 2;
            char *p = realloc(k->buf, cap);
            if (!p)
                return -ENOMEM;
            k->buf = p;
            k->cap = cap;
        }
        ssize_t n = recv(k->fd, k->buf + have, k->cap - have - 1, 0);
        if (n == 0)
            return have ? -EPROTO : -ECONNRESET;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return -ETIMEDOUT;
            return have || errno != ECONNRESET ? -errno : -ECONNRESET;
        }
        have += (size_t)n;
        k->buf[have] = '\0';
        if (!head) {
            char *e = memmem(k->buf, have, "\r\n\r\n", 4);
            if (!e)
                continue;
            head = (size_t)(e - k->buf) + 4;
            char saved = k->buf[head];
            k->buf[head] = '\0';
            const char *cl = strcasestr(k->buf, "\r\nContent-Length:");
            close_after = strcasestr(k->buf, "\r\nConnection: close") != NULL;
            if (sscanf(k->buf, "HTTP/1.%*d %d", &k->status) != 1 || !cl)
                return -EPROTO;
            k->buf[head] = saved;
            clen = strtoull(cl + 17, NULL, 10);
        }
        if (have >= head + clen)
            break;
    }
    if (have != head + clen)
        return -EPROTO; /* nothing was pipelined: no byte may follow the body */
    k->body_off = head;
    k->body_len = clen;
    if (close_after) {
        close(k->fd);
        k->fd = -1;
    }
    return 0;
}

static int ka_get(struct ka *k, const char *path)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        bool reused = k->fd >= 0;
        int rc = reused ? 0 : ka_open(k);
        if (rc == 0)
            rc = ka_exchange(k, path);
        if (rc == 0)
            return 0;
        if (k->fd >= 0)
            close(k->fd);
        k->fd = -1;
        if (!reused || rc != -ECONNRESET)
            return rc;
        k->reconnects++;
    }
    return -ECONNRESET;
}

static void ka_close(struct ka *k)
{
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
    free(k->buf);
    k->buf = NULL;
    k->cap = 0;
}

/* ---- the result table (bench_util.h keeps it) ------------------------------------------------ */

static void fmt_val(char *out, size_t len, double v, const char *unit)
{
    if (strcmp(unit, "ms") == 0)
        snprintf(out, len, "%.3f ms", v);
    else if (strcmp(unit, "s") == 0)
        snprintf(out, len, "%.3f s", v);
    else if (strcmp(unit, "%") == 0)
        snprintf(out, len, "%.1f %%", v);
    else if (strcmp(unit, "MiB") == 0)
        snprintf(out, len, "%.1f MiB", v);
    else
        snprintf(out, len, "%.0f", v);
}

static const struct bench_table_style table_style = {"target", 52, fmt_val};

/* ---- the machine ---------------------------------------------------------------------------- */

/* A "VmRSS:"-style line of /proc/pid/status in MiB, or NAN. */
static double proc_status_mib(pid_t pid, const char *field)
{
    char path[64], line[256];
    double v = NAN;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, field, strlen(field)) == 0)
            v = strtod(line + strlen(field), NULL) / 1024.0;
    if (f)
        fclose(f);
    return v;
}

/* A TcpExt counter of /proc/net/netstat (machine-wide), or NAN. */
static double tcpext(const char *name)
{
    char head[4096], vals[4096];
    double v = NAN;
    FILE *f = fopen("/proc/net/netstat", "r");
    while (f && fgets(head, sizeof(head), f) && fgets(vals, sizeof(vals), f)) {
        if (strncmp(head, "TcpExt:", 7) != 0)
            continue;
        char *hs, *vs, *h = strtok_r(head, " \n", &hs), *x = strtok_r(vals, " \n", &vs);
        for (; h && x; h = strtok_r(NULL, " \n", &hs), x = strtok_r(NULL, " \n", &vs))
            if (strcmp(h, name) == 0)
                v = strtod(x, NULL);
    }
    if (f)
        fclose(f);
    return v;
}

/* What the machine did over a measurement: the server's CPU, this bench's, everyone else's
 * (this VM has 2 CPUs and may be shared with builds and tests), the hypervisor's steal, and
 * TCP's listen-queue overflows and SYN retransmissions (each costs a client a 1 s retry). */
struct meter {
    pid_t server;
    double wall_ms, server_s, self_s, busy_s, steal_s, overflows, synretrans;
};

static void meter_read(struct meter *m, pid_t server)
{
    m->server = server;
    m->wall_ms = bench_mono_ms();
    m->server_s = bench_proc_cpu_s(server);
    m->self_s = bench_self_cpu_s();
    bench_machine_cpu_s(&m->busy_s, &m->steal_s);
    m->overflows = tcpext("ListenOverflows");
    m->synretrans = tcpext("TCPSynRetrans");
}

/* m1 - m0, as % of one CPU: the server's (returned) and a line about the rest. */
static double meter_report(const struct meter *m0, const struct meter *m1)
{
    double wall = (m1->wall_ms - m0->wall_ms) / 1e3;
    double srv = (m1->server_s - m0->server_s) / wall * 100;
    double self = (m1->self_s - m0->self_s) / wall * 100;
    double busy = (m1->busy_s - m0->busy_s) / wall * 100;
    double steal = (m1->steal_s - m0->steal_s) / wall * 100;
    printf("  CPU over these %.1f s, %% of one CPU: server %.1f, this bench %.1f, other processes "
           "%.1f,\n  stolen by the hypervisor %.1f; TCP listen overflows %.0f, SYN retransmits "
           "%.0f (machine-wide)\n",
           wall, srv, self, busy - srv - self, steal, m1->overflows - m0->overflows,
           m1->synretrans - m0->synretrans);
    return srv;
}

/* ---- part 1-2: single requests -------------------------------------------------------------- */

enum mode { NEW_CONN, KEEP_ALIVE };

struct series {
    const char *name;
    char path[512];
    enum mode mode;
    bool image;
    const char *must; /* in every 200 body */
    double target_ms;
    double *v;
    size_t n;
    double srv_s, srv_n; /* the server's handler time and count over this series */
    struct ka k;
};

/* One GET of s; its wall time in *ms. 0, or -1 (reason on stderr). */
static int one_get(int port, struct series *s, double *ms)
{
    double t0 = bench_mono_ms();
    int rc, status;
    bool ok;

    if (s->mode == NEW_CONN) {
        struct th_resp r;
        rc = th_request(port, "GET", s->path, NULL, NULL, 0, REQ_TIMEOUT_MS, &r);
        *ms = bench_mono_ms() - t0;
        status = r.status;
        ok = rc == 0 && r.status == 200 && strstr(r.body, s->must);
        th_resp_free(&r);
    } else {
        rc = ka_get(&s->k, s->path);
        *ms = bench_mono_ms() - t0;
        status = s->k.status;
        ok = rc == 0 && s->k.status == 200 &&
             memmem(s->k.buf + s->k.body_off, s->k.body_len, s->must, strlen(s->must));
    }
    if (!ok) {
        fprintf(stderr, "bench_serve: %s: GET %s: %s, status %d\n", s->name, s->path,
                rc ? strerror(-rc) : "unexpected reply", rc ? 0 : status);
        return -1;
    }
    return 0;
}

/* Checks one image reply in full: 200, the size asked for, the keys present, a PNG. */
static bool check_image(int port, const char *path, size_t want_present)
{
    struct th_resp r;
    bool ok = false;
    if (th_get(port, path, &r) == 0 && r.status == 200) {
        json_t *j = json_loads(r.body, 0, NULL);
        const char *img = json_string_value(json_object_get(j, "image"));
        ok = img && strncmp(img, "iVBORw0KGgo", 11) == 0 && /* base64 of the PNG signature */
             json_integer_value(json_object_get(j, "width")) == IMG_W &&
             json_integer_value(json_object_get(j, "height")) == IMG_H &&
             json_array_size(json_object_get(j, "present")) == want_present;
        if (ok)
            printf("  %s: %zu bytes of JSON, PNG %zu bytes in base64, ymax %" JSON_INTEGER_FORMAT
                   ", %zu keys present\n",
                   path, r.len, strlen(img), json_integer_value(json_object_get(j, "ymax")),
                   want_present);
        json_decref(j);
    }
    if (!ok)
        fprintf(stderr, "bench_serve: GET %s: unexpected reply (status %d): %.200s\n", path,
                r.status, r.body ? r.body : "");
    th_resp_free(&r);
    return ok;
}

/* Fills [t0, t0 + IMG_DURATION) of instrumentations id1 (1 key) and id8 (8 keys). */
static int prefill(int port, int id1, int id8, int64_t t0)
{
    struct sbuf b = {0};
    for (int64_t t = t0; t < t0 + IMG_DURATION; t++) {
        frame_json(&b, id1, false, t);
        frame_json(&b, id8, true, t);
    }
    double ms;
    int n = ingest(port, &b, &ms);
    if (n == 2 * IMG_DURATION)
        printf("  ingested %d frames (%zu KiB of JSON lines) in %.1f ms\n", n, b.n / 1024, ms);
    free(b.p);
    return n == 2 * IMG_DURATION ? 0 : -1;
}

static int part_requests(const char *sonde, int reps)
{
    static const char *const extra[] = {"--no-agent", NULL};
    struct th_serve sv;
    int rc = -1;

    printf("== 1-2. heatmap images and raw values, one request at a time (%d per series)\n", reps);
    if (th_serve_start(sonde, extra, NULL, &sv) != 0)
        return -1;
    printf("  server: PID %d, port %d\n", (int)sv.pid, sv.port);
    int id1 = create(sv.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\","
                              "\"decomposition\":[\"latency\"]}");
    int id8 = create(sv.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\","
                              "\"decomposition\":[\"execname\",\"latency\"]}");
    int64_t t0 = (int64_t)time(NULL) - IMG_DURATION - 2;
    static const struct {
        const char *name;
        enum mode mode;
        bool image;
        double target_ms;
    } def[8] = {
        {"heatmap, 1 key, new connection", NEW_CONN, true, 5},
        {"heatmap, 1 key, keep-alive", KEEP_ALIVE, true, 5},
        {"heatmap, 8 keys, new connection", NEW_CONN, true, 10},
        {"heatmap, 8 keys, keep-alive", KEEP_ALIVE, true, 10},
        {"raw 1 s, 1 key, new connection", NEW_CONN, false, 1},
        {"raw 1 s, 1 key, keep-alive", KEEP_ALIVE, false, 1},
        {"raw 1 s, 8 keys, new connection", NEW_CONN, false, 1},
        {"raw 1 s, 8 keys, keep-alive", KEEP_ALIVE, false, 1},
    };
    struct series s[8];
    memset(s, 0, sizeof(s));
    for (int i = 0; i < 8; i++) {
        s[i].name = def[i].name;
        s[i].mode = def[i].mode;
        s[i].image = def[i].image;
        s[i].must = def[i].image ? "\"image\":\"" : "\"value\":";
        s[i].target_ms = def[i].target_ms;
    }
    for (int i = 0; i < 8; i++)
        s[i].k.fd = -1;
    if (id1 < 0 || id8 < 0 || prefill(sv.port, id1, id8, t0) != 0)
        goto out;
    for (int i = 0; i < 8; i++) {
        int id = i % 4 < 2 ? id1 : id8;
        if (s[i].image)
            snprintf(s[i].path, sizeof(s[i].path),
                     "/ca/instrumentations/%d/value/heatmap/image?start_time=%" PRId64
                     "&duration=%d&width=%d&height=%d&nbuckets=%d%s",
                     id, t0, IMG_DURATION, IMG_W, IMG_H, IMG_NBUCKETS,
                     id == id8 ? "&decompose_all=true" : "");
        else
            snprintf(s[i].path, sizeof(s[i].path),
                     "/ca/instrumentations/%d/value/raw?start_time=%" PRId64 "&duration=1", id,
                     t0 + IMG_DURATION / 2);
        s[i].k.port = sv.port;
        s[i].v = calloc((size_t)reps, sizeof(double));
        if (!s[i].v)
            goto out;
    }
    if (!check_image(sv.port, s[0].path, 0) || !check_image(sv.port, s[2].path, NKEYS))
        goto out;

    /* ROUNDS rounds; in each, every series in turn for its share of the repetitions */
    struct meter m0, m1;
    meter_read(&m0, sv.pid);
    for (int round = 0; round < ROUNDS; round++)
        for (int i = 0; i < 8; i++) {
            int share = reps / ROUNDS + (round < reps % ROUNDS);
            struct srv_counters a, b;
            double ms;
            for (int w = 0; w < WARMUP; w++)
                if (one_get(sv.port, &s[i], &ms) < 0)
                    goto out;
            bool counters = srv_counters(sv.port, &a);
            for (int r = 0; r < share; r++) {
                if (one_get(sv.port, &s[i], &ms) < 0)
                    goto out;
                s[i].v[s[i].n++] = ms;
            }
            if (counters && srv_counters(sv.port, &b)) {
                s[i].srv_s += s[i].image ? b.render_s - a.render_s : b.raw_s - a.raw_s;
                s[i].srv_n += s[i].image ? b.renders - a.renders : b.raws - a.raws;
            }
        }
    meter_read(&m1, sv.pid);
    printf("  %-34s %9s %9s %9s %9s %12s   target\n", "ms per request", "median", "p90", "p99",
           "max", "server mean");
    for (int i = 0; i < 8; i++) {
        struct stats st = stats_of(s[i].v, s[i].n);
        char srv[32] = "-";
        if (s[i].srv_n > 0)
            snprintf(srv, sizeof(srv), "%.3f", s[i].srv_s * 1e3 / s[i].srv_n);
        printf("  %-34s %9.3f %9.3f %9.3f %9.3f %12s   <= %g (median)\n", s[i].name, st.med, st.p90,
               st.p99, st.max, srv, s[i].target_ms);
        char name[80];
        snprintf(name, sizeof(name), "%s, median", s[i].name);
        bench_fig(name, st.med, s[i].target_ms, "ms");
        if (s[i].k.reconnects)
            printf("  (%s: the server closed the kept-alive connection %u times)\n", s[i].name,
                   s[i].k.reconnects);
    }
    printf("  (server mean: the handler's own time by the server's /metrics counters, from\n"
           "   taking the lock to the finished body; the rest is HTTP and loopback)\n");
    meter_report(&m0, &m1);
    rc = 0;
out:
    if (rc != 0)
        for (int i = 0; i < 8; i++)
            bench_fig_missing(s[i].name, s[i].target_ms, "ms", "failed");
    for (int i = 0; i < 8; i++) {
        ka_close(&s[i].k);
        free(s[i].v);
    }
    int st = th_serve_stop(&sv);
    printf("  server stopped (exit status %d)\n\n", st);
    return rc;
}

/* ---- part 6: history ------------------------------------------------------------------------ */

static int part_history(const char *sonde, int reps)
{
    static const char *const extra[] = {"--no-agent", NULL};
    struct th_serve sv;
    struct series s[2];
    int rc = -1;

    memset(s, 0, sizeof(s));
    s[0].k.fd = s[1].k.fd = -1;
    printf("== 6. history: a week's heatmap from the store (%d requests per series)\n", reps);
    if (th_serve_start(sonde, extra, NULL, &sv) != 0)
        return -1;
    printf("  server: PID %d, port %d\n", (int)sv.pid, sv.port);
    int id = create(sv.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\","
                             "\"decomposition\":[\"execname\",\"latency\"],"
                             "\"persist-data\":true}");
    int64_t now = (int64_t)time(NULL), week = 7 * 86400, t0 = now - IMG_DURATION - 2;
    if (id < 0)
        goto out;
    /* a week, one frame a minute, 8 keys of ~40 buckets, in bodies of 1,000 frames */
    double a = bench_mono_ms();
    int frames = 0;
    for (int64_t t = now - week - 60; t < now - 600;) {
        struct sbuf b = {0};
        for (int k = 0; k < 1000 && t < now - 600; k++, t += 60)
            frame_json(&b, id, true, t);
        int n = post_frames(sv.port, "/ca/import", &b, NULL);
        free(b.p);
        if (n < 0)
            goto out;
        frames += n;
    }
    printf("  imported %d frames (a week, one a minute, 8 keys) in %.1f s\n", frames,
           (bench_mono_ms() - a) / 1e3);
    struct sbuf b = {0}; /* and the last minute, live, for the baseline */
    for (int64_t t = t0; t < t0 + IMG_DURATION; t++)
        frame_json(&b, id, true, t);
    int n = ingest(sv.port, &b, NULL);
    free(b.p);
    if (n != IMG_DURATION)
        goto out;
    s[0].name = "heatmap, 7 days, 8 keys, store";
    s[1].name = "heatmap, 60 s, 8 keys, memory";
    for (int i = 0; i < 2; i++) {
        s[i].mode = KEEP_ALIVE;
        s[i].image = true;
        s[i].must = "\"image\":\"";
        s[i].k.port = sv.port;
        s[i].target_ms = i == 0 ? 20 : NAN;
        if (!(s[i].v = calloc((size_t)reps, sizeof(double))))
            goto out;
        snprintf(s[i].path, sizeof(s[i].path),
                 "/ca/instrumentations/%d/value/heatmap/image?start_time=%" PRId64
                 "&duration=%" PRId64 "&width=%d&height=%d&nbuckets=%d&decompose_all=true",
                 id, i == 0 ? now - week : t0, i == 0 ? week : (int64_t)IMG_DURATION, IMG_W, IMG_H,
                 IMG_NBUCKETS);
    }
    if (!check_image(sv.port, s[0].path, NKEYS) || !check_image(sv.port, s[1].path, NKEYS))
        goto out;
    struct th_resp r;
    if (th_get(sv.port, s[0].path, &r) == 0) { /* which tier and granularity answered */
        json_t *j = json_loads(r.body, 0, NULL);
        printf("  the week's image: tier %s, granularity %" JSON_INTEGER_FORMAT " s\n",
               json_string_value(json_object_get(j, "tier")),
               json_integer_value(json_object_get(j, "granularity")));
        json_decref(j);
    }
    th_resp_free(&r);
    for (int round = 0; round < ROUNDS; round++)
        for (int i = 0; i < 2; i++) {
            int share = reps / ROUNDS + (round < reps % ROUNDS);
            double ms;
            for (int w = 0; w < WARMUP; w++)
                if (one_get(sv.port, &s[i], &ms) < 0)
                    goto out;
            for (int k = 0; k < share; k++) {
                if (one_get(sv.port, &s[i], &ms) < 0)
                    goto out;
                s[i].v[s[i].n++] = ms;
            }
        }
    struct stats st0 = stats_of(s[0].v, s[0].n), st1 = stats_of(s[1].v, s[1].n);
    printf("  %-34s %9s %9s %9s\n", "ms per request (keep-alive)", "median", "p90", "p99");
    for (int i = 0; i < 2; i++) {
        struct stats st = i ? st1 : st0;
        printf("  %-34s %9.3f %9.3f %9.3f\n", s[i].name, st.med, st.p90, st.p99);
    }
    printf("  ratio: the week from the store takes %.2fx the minute from memory\n",
           st0.med / st1.med);
    bench_fig("heatmap, 7 days from the store, 8 keys, median", st0.med, 20, "ms");
    bench_fig("heatmap, 60 s from memory, 8 keys (baseline), median", st1.med, NAN, "ms");
    rc = 0;
out:
    if (rc != 0)
        bench_fig_missing("heatmap, 7 days from the store, 8 keys, median", 20, "ms", "failed");
    for (int i = 0; i < 2; i++) {
        ka_close(&s[i].k);
        free(s[i].v);
    }
    int stc = th_serve_stop(&sv);
    printf("  server stopped (exit status %d)\n\n", stc);
    return rc;
}

/* ---- part 3: event to API ------------------------------------------------------------------- */

/* The child: named comm; for each start time it reads (CLOCK_REALTIME ns; 0 ends it), waits
 * without system calls for the last 30 ms, makes the marked call (a MARK_NS nanosleep) and
 * writes back the time it returned. In the second of the marked call, its only system call
 * with a latency between MARK_LO and MARK_HI: the read that gets a start time returns at least
 * a second earlier, the wait before the spin takes a second or more, the write microseconds. */
static void event_child(int rfd, int wfd, const char *comm)
{
    prctl(PR_SET_NAME, comm, 0, 0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    for (;;) {
        int64_t start = 0;
        if (read(rfd, &start, sizeof(start)) != (ssize_t)sizeof(start) || start <= 0)
            _exit(0);
        bench_sleep_until(CLOCK_REALTIME, start - 30000000);
        while (bench_real_ns() < start) /* the vDSO's clock: no system call */
            ;
        struct timespec mark = {.tv_sec = 0, .tv_nsec = MARK_NS};
        nanosleep(&mark, NULL);
        int64_t t = bench_real_ns();
        if (write(wfd, &t, sizeof(t)) != (ssize_t)sizeof(t))
            _exit(1);
    }
}

/* How many marked calls a raw reply of a latency-decomposed instrumentation holds (0: none,
 * -1: not such a reply). */
static int marked_in(const char *body)
{
    json_t *j = json_loads(body, 0, NULL);
    json_t *v = json_object_get(j, "value");
    int n = json_is_array(v) ? 0 : -1;
    for (size_t i = 0; n >= 0 && i < json_array_size(v); i++) {
        json_int_t lo =
            json_integer_value(json_array_get(json_array_get(json_array_get(v, i), 0), 0));
        if (lo >= MARK_LO && lo < MARK_HI)
            n += (int)json_integer_value(json_array_get(json_array_get(v, i), 1));
    }
    json_decref(j);
    return n;
}

/* Long-polls second sec; *at is when the reply arrived (CLOCK_REALTIME ns). Marked calls in
 * it, or -1. */
static int poll_second(int port, int id, int64_t sec, int64_t *at)
{
    char path[256];
    struct th_resp r;
    snprintf(path, sizeof(path),
             "/ca/instrumentations/%d/value/raw?start_time=%" PRId64 "&duration=1&timeout=5000", id,
             sec);
    int rc = th_request(port, "GET", path, NULL, NULL, 0, 8000, &r);
    *at = bench_real_ns();
    int n = rc == 0 && r.status == 200 ? marked_in(r.body) : -1;
    if (n < 0)
        fprintf(stderr, "bench_serve: GET %s: %s (status %d): %.200s\n", path,
                rc ? strerror(-rc) : "unexpected reply", r.status, r.body ? r.body : "");
    th_resp_free(&r);
    return n;
}

static int part_event(const char *sonde, int nev)
{
    struct th_serve sv;
    int p2c[2], c2p[2], rc = -1;
    char comm[16], props[256];
    double *lat = calloc((size_t)nev, sizeof(double));
    int got = 0, early = 0, missed = 0, later = 0;

    printf("== 3. event to API: the server's own agent, %d marked system calls\n", nev);
    if (!lat)
        return -1;
    if (geteuid() != 0) {
        printf("  skipped: the agent needs root (BPF)\n\n");
        bench_fig_missing("event to API, median", 1.5, "s", "needs root");
        bench_fig_missing("event to API, max", 1.5, "s", "needs root");
        free(lat);
        return 0;
    }
    if (th_serve_start(sonde, NULL, NULL, &sv) != 0) {
        free(lat);
        return -1;
    }
    printf("  server: PID %d, port %d (with its agent)\n", (int)sv.pid, sv.port);
    if (pipe2(p2c, O_CLOEXEC) != 0 || pipe2(c2p, O_CLOEXEC) != 0) {
        th_serve_stop(&sv);
        free(lat);
        return -1;
    }
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) {
        snprintf(comm, sizeof(comm), "sbev-%d", (int)getpid());
        close(p2c[1]);
        close(c2p[0]);
        event_child(p2c[0], c2p[1], comm);
        _exit(0);
    }
    close(p2c[0]);
    close(c2p[1]);
    if (child < 0)
        goto out;
    snprintf(comm, sizeof(comm), "sbev-%d", (int)child);
    snprintf(props, sizeof(props),
             "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"eq\":[\"execname\","
             "\"%s\"]},\"decomposition\":[\"latency\"]}",
             comm);
    int id = create(sv.port, props);
    if (id < 0)
        goto out;
    printf("  instrumentation %d: syscall.syscalls where execname == \"%s\", by latency; the\n"
           "  marked call is a %.0f ms nanosleep\n",
           id, comm, MARK_NS / 1e6);
    sleep(1); /* the child's comm is set, the probes are in */
    struct meter m0, m1;
    meter_read(&m0, sv.pid);
    for (int attempt = 0; got < nev && attempt < 2 * nev + 2; attempt++) {
        int64_t sec = bench_real_ns() / 1000000000LL + 2;
        int64_t target =
            sec * 1000000000LL + (int64_t)(bench_xrand01() * 1e9); /* the call returns */
        int64_t start = target - MARK_NS, t = 0, at;
        if (write(p2c[1], &start, sizeof(start)) != (ssize_t)sizeof(start))
            goto out;
        int n = poll_second(sv.port, id, sec, &at); /* parked until that second is reported */
        struct pollfd pf = {.fd = c2p[0], .events = POLLIN};
        if (poll(&pf, 1, 5000) != 1 || read(c2p[0], &t, sizeof(t)) != (ssize_t)sizeof(t))
            goto out;
        int64_t tsec = t / 1000000000LL;
        const char *where = "its second";
        if (n < 0)
            goto out;
        if (n == 0 || tsec != sec) {
            /* returned in another second than planned, or counted in a neighbouring one */
            n = 0;
            for (int d = 0; d < 3 && n == 0; d++) {
                int64_t s2 = tsec + (d == 0 ? 0 : d == 1 ? 1 : -1);
                if (s2 == sec && tsec == sec)
                    continue;
                if ((n = poll_second(sv.port, id, s2, &at)) < 0)
                    goto out;
                where = d == 0 ? "its second" : d == 1 ? "the next second" : "the second before";
                if (n > 0 && d == 2)
                    early++;
                if (n > 0 && d == 1)
                    later++;
            }
        }
        double s_lat = (double)(at - t) / 1e9;
        printf("  call at %" PRId64 ".%03d: %s", tsec, (int)(t / 1000000 % 1000),
               n > 0 ? "" : "not seen in its second or either neighbour\n");
        if (n > 0 && strcmp(where, "the second before") == 0) {
            printf("counted in %s (drained after the boundary): not timed\n", where);
        } else if (n > 0) {
            printf("reply %.3f s later%s%s\n", s_lat, strcmp(where, "its second") ? ", in " : "",
                   strcmp(where, "its second") ? where : "");
            lat[got++] = s_lat;
        } else {
            missed++;
        }
        if (missed >= 3 && got == 0) {
            printf("  no marked call seen in 3 tries: is the agent running? (server's stderr)\n");
            break;
        }
    }
    meter_read(&m1, sv.pid);
    meter_report(&m0, &m1);
    if (got) {
        struct stats st = stats_of(lat, (size_t)got);
        printf("  event to API over %d calls: median %.3f s, p90 %.3f s, max %.3f s\n", got, st.med,
               st.p90, st.max);
        bench_fig("event to API, median", st.med, 1.5, "s");
        bench_fig("event to API, max", st.max, 1.5, "s");
    }
    if (missed || early || later)
        printf("  %d not seen, %d counted in the second before, %d in the next\n", missed, early,
               later);
    rc = got ? 0 : -1;
out:
    if (rc != 0 && !got) {
        bench_fig_missing("event to API, median", 1.5, "s", "failed");
        bench_fig_missing("event to API, max", 1.5, "s", "failed");
    }
    close(p2c[1]); /* EOF: the child exits */
    close(c2p[0]);
    if (child > 0) {
        int status;
        for (int k = 0; k < 100 && waitpid(child, &status, WNOHANG) == 0; k++)
            usleep(10000);
        if (waitpid(child, &status, WNOHANG) == 0) {
            kill(child, SIGKILL);
            waitpid(child, &status, 0);
        }
    }
    int st = th_serve_stop(&sv);
    printf("  server stopped (exit status %d)\n\n", st);
    free(lat);
    return rc;
}

/* ---- part 4: sustained load ----------------------------------------------------------------- */

struct client {
    pthread_t th;
    int port;
    char path[512];
    const char *must;
    double first_ms, end_ms; /* monotonic: first request, and no request from then on */
    double *lat;
    size_t n, cap;
    uint64_t requests, errors, skipped_ticks;
    int last_err; /* -errno or the HTTP status of the last error */
};

/* Requests slower than SLOW_MS, by when they started (ms after the load began): bursts of
 * them at one moment point at a stall of the server or the machine, not at one request. */
#define SLOW_MS  250
#define MAX_SLOW 100000
static struct {
    pthread_mutex_t mu;
    double begin_ms, at[MAX_SLOW];
    size_t n;
} slow = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void note_slow(double t0, double ms)
{
    if (ms <= SLOW_MS)
        return;
    pthread_mutex_lock(&slow.mu);
    if (slow.n < MAX_SLOW)
        slow.at[slow.n++] = t0 - slow.begin_ms;
    pthread_mutex_unlock(&slow.mu);
}

/* Prints the slow requests grouped in bursts (starts less than 2 s apart). */
static void print_slow(void)
{
    if (!slow.n)
        return;
    qsort(slow.at, slow.n, sizeof(slow.at[0]), bench_cmp_double);
    printf("  requests over %d ms: %zu, starting at (s into the load):", SLOW_MS, slow.n);
    for (size_t i = 0, shown = 0; i < slow.n && shown < 12; shown++) {
        size_t j = i;
        while (j + 1 < slow.n && slow.at[j + 1] - slow.at[j] < 2000)
            j++;
        printf(" %.1f", slow.at[i] / 1e3);
        if (j > i)
            printf("-%.1f", slow.at[j] / 1e3);
        printf(" (%zu)", j - i + 1);
        i = j + 1;
    }
    printf("\n");
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    for (double next = c->first_ms; next < c->end_ms;) {
        sleep_until_mono_ms(next);
        struct th_resp r;
        double t0 = bench_mono_ms();
        int rc = th_request(c->port, "GET", c->path, NULL, NULL, 0, REQ_TIMEOUT_MS, &r);
        double ms = bench_mono_ms() - t0;
        c->requests++;
        note_slow(t0, ms);
        if (rc == 0 && r.status == 200 && strstr(r.body, c->must)) {
            if (c->n < c->cap)
                c->lat[c->n++] = ms;
        } else {
            c->errors++;
            c->last_err = rc ? rc : r.status;
        }
        th_resp_free(&r);
        next += 1000;
        for (double now = bench_mono_ms(); next < now; next += 1000)
            c->skipped_ticks++; /* a reply took longer than the period */
    }
    return NULL;
}

struct ingester {
    pthread_t th;
    int port, id1, id8;
    int64_t first_sec, end_ns; /* the first second to ingest; when to stop (CLOCK_REALTIME) */
    double *lat;
    size_t n, cap;
    uint64_t posts, errors;
};

/* Each second from first_sec on, 20 ms past its start, the frames of that second for both
 * instrumentations (every second in turn, none skipped: a missing second would park every live
 * poll of it for its whole timeout, as CA's long poll does). */
static void *ingester_main(void *arg)
{
    struct ingester *g = arg;
    for (int64_t sec = g->first_sec; sec * 1000000000LL < g->end_ns; sec++) {
        bench_sleep_until(CLOCK_REALTIME, sec * 1000000000LL + 20000000);
        struct sbuf b = {0};
        frame_json(&b, g->id1, false, sec);
        frame_json(&b, g->id8, true, sec);
        double ms, t0 = bench_mono_ms();
        g->posts++;
        int n = ingest(g->port, &b, &ms);
        note_slow(t0, ms);
        if (n != 2)
            g->errors++;
        else if (g->n < g->cap)
            g->lat[g->n++] = ms;
        free(b.p);
    }
    return NULL;
}

static struct stats merge_stats(struct client *c, int from, int to)
{
    size_t n = 0;
    for (int i = from; i < to; i++)
        n += c[i].n;
    double *v = malloc((n ? n : 1) * sizeof(double));
    n = 0;
    for (int i = from; i < to && v; i++) {
        memcpy(v + n, c[i].lat, c[i].n * sizeof(double));
        n += c[i].n;
    }
    struct stats st = v ? stats_of(v, n) : (struct stats){0};
    free(v);
    return st;
}

static int part_load(const char *sonde, int seconds)
{
    static const char *const extra[] = {"--no-agent", NULL};
    enum { NC = RAW_CLIENTS + IMG_CLIENTS };
    struct th_serve sv;
    struct client *c = calloc(NC, sizeof(*c));
    struct ingester g = {0};
    int rc = -1, started = 0;
    bool ing_started = false;

    printf("== 4. sustained load: %d raw clients and %d heatmap clients at 1 Hz for %d s,\n"
           "   a new connection per request, frames of the current second ingested each second\n",
           RAW_CLIENTS, IMG_CLIENTS, seconds);
    if (!c || th_serve_start(sonde, extra, NULL, &sv) != 0) {
        free(c);
        return -1;
    }
    printf("  server: PID %d, port %d\n", (int)sv.pid, sv.port);
    int id1 = create(sv.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\","
                              "\"decomposition\":[\"latency\"]}");
    int id8 = create(sv.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\","
                              "\"decomposition\":[\"execname\",\"latency\"]}");
    int64_t t0 = (int64_t)time(NULL) - IMG_DURATION + 1; /* up to the current second */
    if (id1 < 0 || id8 < 0 || prefill(sv.port, id1, id8, t0) != 0)
        goto out;

    double rss0 = proc_status_mib(sv.pid, "VmRSS:");
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    double begin = bench_mono_ms() + 1000, end = begin + seconds * 1000.0;
    slow.begin_ms = begin;
    slow.n = 0;
    g.port = sv.port;
    g.id1 = id1;
    g.id8 = id8;
    g.first_sec = t0 + IMG_DURATION;
    g.end_ns = bench_real_ns() + (int64_t)(seconds + 1) * 1000000000LL;
    g.cap = (size_t)seconds + 4;
    g.lat = calloc(g.cap, sizeof(double));
    if (!g.lat || pthread_create(&g.th, &attr, ingester_main, &g) != 0) {
        fprintf(stderr, "bench_serve: cannot start the ingester\n");
        goto out;
    }
    ing_started = true;
    for (int i = 0; i < NC; i++) {
        bool img = i >= RAW_CLIENTS;
        int id = i % 2 ? id8 : id1;
        c[i].port = sv.port;
        if (img)
            snprintf(c[i].path, sizeof(c[i].path),
                     "/ca/instrumentations/%d/value/heatmap/image?width=%d&height=%d&nbuckets=%d%s",
                     id, IMG_W, IMG_H, IMG_NBUCKETS, id == id8 ? "&decompose_all=true" : "");
        else
            snprintf(c[i].path, sizeof(c[i].path), "/ca/instrumentations/%d/value/raw", id);
        c[i].must = img ? "\"image\":\"" : "\"value\":";
        c[i].first_ms = begin + bench_xrand01() * 1000; /* polls at random phases, as browsers do */
        c[i].end_ms = end;
        c[i].cap = (size_t)seconds + 4;
        c[i].lat = calloc(c[i].cap, sizeof(double));
        if (!c[i].lat || pthread_create(&c[i].th, &attr, client_main, &c[i]) != 0) {
            fprintf(stderr, "bench_serve: cannot start client %d\n", i);
            goto out;
        }
        started++;
    }
    pthread_attr_destroy(&attr);
    sleep_until_mono_ms(begin);
    struct meter m0, m1;
    struct srv_counters sc0, sc1;
    meter_read(&m0, sv.pid);
    bool counters = srv_counters(sv.port, &sc0);
    for (int i = 0; i < started; i++)
        pthread_join(c[i].th, NULL);
    meter_read(&m1, sv.pid);
    counters = counters && srv_counters(sv.port, &sc1);
    started = 0;
    pthread_join(g.th, NULL);
    ing_started = false;

    uint64_t req[2] = {0}, err[2] = {0}, skipped = 0;
    int last_err[2] = {0};
    for (int i = 0; i < NC; i++) {
        int k = i >= RAW_CLIENTS;
        req[k] += c[i].requests;
        err[k] += c[i].errors;
        skipped += c[i].skipped_ticks;
        if (c[i].errors)
            last_err[k] = c[i].last_err;
    }
    /* clients alternate instrumentations: even ones 1 key, odd ones 8 keys */
    struct stats raw = merge_stats(c, 0, RAW_CLIENTS), img = merge_stats(c, RAW_CLIENTS, NC);
    double *v1 = malloc(sizeof(double) * (size_t)(seconds + 4) * IMG_CLIENTS),
           *v8 = malloc(sizeof(double) * (size_t)(seconds + 4) * IMG_CLIENTS);
    size_t n1 = 0, n8 = 0;
    for (int i = RAW_CLIENTS; i < NC && v1 && v8; i++)
        for (size_t j = 0; j < c[i].n; j++) {
            if (i % 2)
                v8[n8++] = c[i].lat[j];
            else
                v1[n1++] = c[i].lat[j];
        }
    struct stats img1 = v1 ? stats_of(v1, n1) : (struct stats){0},
                 img8 = v8 ? stats_of(v8, n8) : (struct stats){0};
    free(v1);
    free(v8);
    struct stats ing = stats_of(g.lat, g.n);
    double rss = proc_status_mib(sv.pid, "VmRSS:"), hwm = proc_status_mib(sv.pid, "VmHWM:");

    printf("  %-28s %9s %8s %9s %9s %9s %9s  ms\n", "", "requests", "errors", "median", "p90",
           "p99", "max");
    printf("  %-28s %9" PRIu64 " %8" PRIu64 " %9.3f %9.3f %9.3f %9.3f\n", "raw (1 and 8 keys)",
           req[0], err[0], raw.med, raw.p90, raw.p99, raw.max);
    printf("  %-28s %9" PRIu64 " %8" PRIu64 " %9.3f %9.3f %9.3f %9.3f\n", "heatmap (1 and 8 keys)",
           req[1], err[1], img.med, img.p90, img.p99, img.max);
    printf("  %-28s %9zu %8s %9.3f %9.3f %9.3f %9.3f\n", "  heatmap, 1 key", img1.n, "", img1.med,
           img1.p90, img1.p99, img1.max);
    printf("  %-28s %9zu %8s %9.3f %9.3f %9.3f %9.3f\n", "  heatmap, 8 keys", img8.n, "", img8.med,
           img8.p90, img8.p99, img8.max);
    printf("  %-28s %9" PRIu64 " %8" PRIu64 " %9.3f %9.3f %9.3f %9.3f\n", "ingest (2 frames)",
           g.posts, g.errors, ing.med, ing.p90, ing.p99, ing.max);
    if (err[0] || err[1])
        printf("  last errors: raw %s, heatmap %s\n",
               last_err[0] < 0 ? strerror(-last_err[0])
               : last_err[0]   ? "HTTP status"
                               : "-",
               last_err[1] < 0 ? strerror(-last_err[1])
               : last_err[1]   ? "HTTP status"
                               : "-");
    if (skipped)
        printf("  %" PRIu64 " client ticks skipped (a reply took longer than a second)\n", skipped);
    print_slow();
    double cpu = meter_report(&m0, &m1);
    printf("  server RSS %.1f MiB at the end (%.1f before the load, peak %.1f)\n", rss, rss0, hwm);
    if (counters && sc1.renders > sc0.renders && sc1.raws > sc0.raws)
        printf("  server handler mean meanwhile: heatmap %.3f ms, raw %.3f ms (the rest of the "
               "latency is\n  HTTP, loopback and waiting for a CPU)\n",
               (sc1.render_s - sc0.render_s) * 1e3 / (sc1.renders - sc0.renders),
               (sc1.raw_s - sc0.raw_s) * 1e3 / (sc1.raws - sc0.raws));
    bench_fig("load: requests", (double)(req[0] + req[1]), NAN, "");
    bench_fig("load: errors (non-200 or socket)", (double)(err[0] + err[1] + g.errors), 0, "");
    bench_fig("load: raw, median", raw.med, NAN, "ms");
    bench_fig("load: raw, p99", raw.p99, NAN, "ms");
    bench_fig("load: heatmap 1 key, median", img1.med, NAN, "ms");
    bench_fig("load: heatmap 1 key, p99", img1.p99, NAN, "ms");
    bench_fig("load: heatmap 8 keys, median", img8.med, NAN, "ms");
    bench_fig("load: heatmap 8 keys, p99", img8.p99, NAN, "ms");
    bench_fig("load: server CPU (% of one CPU)", cpu, NAN, "%");
    bench_fig("load: server RSS at the end", rss, NAN, "MiB");
    rc = 0;
out:
    if (ing_started || started) { /* a failed start: let the others finish, then stop */
        for (int i = 0; i < started; i++)
            pthread_join(c[i].th, NULL);
        if (ing_started)
            pthread_join(g.th, NULL);
    }
    if (rc != 0)
        bench_fig_missing("load: errors (non-200 or socket)", 0, "", "failed");
    for (int i = 0; i < NC; i++)
        free(c[i].lat);
    free(c);
    free(g.lat);
    int st = th_serve_stop(&sv);
    printf("  server stopped (exit status %d)\n\n", st);
    return rc;
}

/* ---- main ----------------------------------------------------------------------------------- */

/* ---- part 5: hostile neighbours ---------------------------------------------------------------
 */

#define SLOW_CONNS   1000
#define SLOW_ADDRS   40     /* 127.0.0.2 .. 127.0.0.41: 25 connections per address */
#define HOSTILE_KEYS 200000 /* keys of the big frame, ingested over and over */

/* A connection that sends half a request head and then nothing (a slow client), from
 * 127.0.0.(2 + i % SLOW_ADDRS) so that per-address limits do not refuse them all. -1 when the
 * server refused it. */
static int slow_conn(int port, int i)
{
    struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    static const char half[] = "GET /ca HTTP/1.1\r\nHost: bench\r\nX-Slow: ";

    if (fd < 0)
        return -1;
    src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(i % SLOW_ADDRS));
    dst.sin_addr.s_addr = htonl(0x7f000001u);
    dst.sin_port = htons((uint16_t)port);
    if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0 ||
        connect(fd, (struct sockaddr *)&dst, sizeof(dst)) != 0 ||
        send(fd, half, sizeof(half) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(half) - 1)) {
        close(fd);
        return -1;
    }
    return fd;
}

struct big_ingester {
    pthread_t th;
    int port;
    struct sbuf body;
    _Atomic bool stop;
    uint64_t posts, errors;
    double ms_sum;
};

/* Posts the big frame over and over until stopped. */
static void *big_ingester_main(void *arg)
{
    struct big_ingester *g = arg;
    while (!atomic_load(&g->stop)) {
        double ms;
        if (ingest(g->port, &g->body, &ms) != 1)
            g->errors++;
        g->posts++;
        g->ms_sum += ms;
    }
    return NULL;
}

/* reps GETs of s (new connections): their statistics, and the failures in *failed (a server
 * that limits connections may refuse some while the slow ones are held). -1 when none worked. */
static int measure(int port, struct series *s, int reps, struct stats *out, int *failed)
{
    double ms;
    s->n = 0;
    *failed = 0;
    struct srv_counters a, b;
    for (int w = 0; w < WARMUP; w++)
        one_get(port, s, &ms);
    bool counters = srv_counters(port, &a);
    for (int r = 0; r < reps; r++) {
        if (one_get(port, s, &ms) < 0)
            (*failed)++;
        else
            s->v[s->n++] = ms;
    }
    s->srv_s = s->srv_n = 0; /* the server's own handler time: stalls inside or outside it */
    if (counters && srv_counters(port, &b)) {
        s->srv_s = s->image ? b.render_s - a.render_s : b.raw_s - a.raw_s;
        s->srv_n = s->image ? b.renders - a.renders : b.raws - a.raws;
    }
    *out = stats_of(s->v, s->n);
    return s->n ? 0 : -1;
}

/* How many of fds[0..n) the server still holds open (not closed nor reset). */
static int still_open(const int *fds, int n)
{
    int open = 0;
    for (int i = 0; i < n; i++) {
        struct pollfd p = {.fd = fds[i], .events = POLLIN | POLLRDHUP};
        if (poll(&p, 1, 0) == 0)
            open++;
    }
    return open;
}

static int part_hostile(const char *sonde, int reps)
{
    static const char *const extra[] = {"--no-agent", "--key-cap", "100000", NULL};
    struct th_serve sv;
    struct big_ingester g = {0};
    int fds[SLOW_CONNS], nslow = 0, rc = -1;
    struct series s[2];
    struct stats quiet[2], busy[2];
    struct rlimit rl;

    printf("== 5. heatmap and raw values while %d slow connections and a %d-key ingest run "
           "(%d requests per series)\n",
           SLOW_CONNS, HOSTILE_KEYS, reps);
    /* the server inherits the limit: it needs a descriptor per connection */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (th_serve_start(sonde, extra, NULL, &sv) != 0)
        return -1;
    printf("  server: PID %d, port %d\n", (int)sv.pid, sv.port);
    memset(s, 0, sizeof(s));
    int id1 = create(sv.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\","
                              "\"decomposition\":[\"latency\"]}");
    int id8 = create(sv.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\","
                              "\"decomposition\":[\"execname\",\"latency\"]}");
    int big = create(sv.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\","
                              "\"decomposition\":[\"execname\",\"latency\"]}");
    int64_t t0 = (int64_t)time(NULL) - IMG_DURATION - 2;
    if (id1 < 0 || id8 < 0 || big < 0 || prefill(sv.port, id1, id8, t0) != 0)
        goto out;
    s[0].name = "heatmap, 8 keys, new connection";
    s[1].name = "raw 1 s, 8 keys, new connection";
    snprintf(s[0].path, sizeof(s[0].path),
             "/ca/instrumentations/%d/value/heatmap/image?start_time=%" PRId64
             "&duration=%d&width=%d&height=%d&nbuckets=%d&decompose_all=true",
             id8, t0, IMG_DURATION, IMG_W, IMG_H, IMG_NBUCKETS);
    snprintf(s[1].path, sizeof(s[1].path),
             "/ca/instrumentations/%d/value/raw?start_time=%" PRId64 "&duration=1", id8,
             t0 + IMG_DURATION / 2);
    for (int i = 0; i < 2; i++) {
        s[i].mode = NEW_CONN;
        s[i].image = i == 0;
        s[i].must = i == 0 ? "\"image\":\"" : "\"value\":";
        s[i].k.fd = -1;
        if (!(s[i].v = calloc((size_t)reps, sizeof(double))))
            goto out;
    }
    int qfail[2], bfail[2];
    double qsrv[2], bsrv[2]; /* the server's mean handler time, ms */
    for (int i = 0; i < 2; i++) {
        if (measure(sv.port, &s[i], reps, &quiet[i], &qfail[i]) < 0)
            goto out;
        qsrv[i] = s[i].srv_n > 0 ? s[i].srv_s * 1e3 / s[i].srv_n : NAN;
    }

    /* the big frame: numeric by key, one event per key, in the second before the prefill's */
    sb_printf(&g.body,
              "{\"v\":1,\"id\":\"%d\",\"host\":\"hostile\",\"t\":%" PRId64
              ",\"arity\":\"numeric-decomposition\",\"value\":{",
              big, t0 - 1);
    for (int k = 0; k < HOSTILE_KEYS; k++)
        sb_printf(&g.body, "%s\"k%07d\":[[[2000000,2099999],1]]", k ? "," : "", k);
    sb_printf(&g.body, "}}\n");
    g.port = sv.port;
    for (int i = 0; i < SLOW_CONNS; i++)
        if ((fds[nslow] = slow_conn(sv.port, i)) >= 0)
            nslow++;
    sleep_until_mono_ms(bench_mono_ms() + 300); /* a server that refuses some closes them by then */
    printf("  %d of %d slow connections opened, %d held open by the server (from %d loopback "
           "addresses); big frame %.1f MB\n",
           nslow, SLOW_CONNS, still_open(fds, nslow), SLOW_ADDRS, (double)g.body.n / 1e6);
    if (pthread_create(&g.th, NULL, big_ingester_main, &g) != 0)
        goto out;
    sleep_until_mono_ms(bench_mono_ms() + 200); /* the first post under way */
    int bad = 0;
    for (int i = 0; i < 2; i++) {
        bad |= measure(sv.port, &s[i], reps, &busy[i], &bfail[i]) < 0;
        bsrv[i] = s[i].srv_n > 0 ? s[i].srv_s * 1e3 / s[i].srv_n : NAN;
    }
    int held = still_open(fds, nslow);
    atomic_store(&g.stop, true);
    pthread_join(g.th, NULL);
    for (int i = 0; i < nslow; i++)
        close(fds[i]);
    nslow = 0;
    if (bad)
        goto out;
    printf("  big frame: %" PRIu64 " posts (%" PRIu64 " failed), %.0f ms each on average; "
           "%d slow connections still held at the end\n",
           g.posts, g.errors, g.posts ? g.ms_sum / (double)g.posts : 0, held);
    printf("  %-34s %12s %12s %8s %12s %12s %8s %15s\n", "ms per request", "quiet median",
           "hostile med.", "ratio", "hostile p99", "hostile max", "failed", "server mean q/h");
    for (int i = 0; i < 2; i++) {
        printf("  %-34s %12.3f %12.3f %8.2f %12.3f %12.3f %4d/%-3d %7.3f/%-7.3f\n", s[i].name,
               quiet[i].med, busy[i].med, busy[i].med / quiet[i].med, busy[i].p99, busy[i].max,
               qfail[i], bfail[i], qsrv[i], bsrv[i]);
        char name[96];
        snprintf(name, sizeof(name), "hostile: %s, median", s[i].name);
        bench_fig(name, busy[i].med, NAN, "ms");
    }
    rc = 0;
out:
    atomic_store(&g.stop, true);
    for (int i = 0; i < nslow; i++)
        close(fds[i]);
    for (int i = 0; i < 2; i++)
        free(s[i].v);
    free(g.body.p);
    int st = th_serve_stop(&sv);
    printf(
        "  (server mean: the handler's own time, quiet/hostile, by /metrics; a stall the client\n"
        "   sees but the handler does not is in the HTTP layer: a pool thread busy with the\n"
        "   big body, or a connection limit)\n");
    printf("  server stopped (exit status %d)\n\n", st);
    return rc;
}

int main(int argc, char **argv)
{
    int seconds = bench_env_int("SERVE_SECONDS", 300), reps = bench_env_int("SERVE_REPS", 200),
        events = bench_env_int("SERVE_EVENTS", 10);
    const char *sonde = SONDE_BIN, *only = "123456";
    char tmp[] = "/tmp/sonde-bench-serve-XXXXXX";

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--events") == 0 && i + 1 < argc)
            events = atoi(argv[++i]);
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else if (argv[i][0] != '-')
            sonde = argv[i];
        else {
            fprintf(stderr, "usage: bench_serve [--seconds N] [--reps N] [--events N] "
                            "[--only PARTS] [SONDE]\n");
            return 2;
        }
    }
    if (seconds < 1 || reps < ROUNDS || events < 1) {
        fprintf(stderr, "bench_serve: seconds >= 1, reps >= %d, events >= 1\n", ROUNDS);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    /* the servers' data directories: under a fresh temporary directory, removed at the end */
    if (!mkdtemp(tmp)) {
        perror("bench_serve: mkdtemp");
        return 1;
    }
    setenv("SN_TEST_OUT", tmp, 1);
    bench_rng_seed(BENCH_RNG_SEED ^ (uint64_t)getpid() << 32 ^ (uint64_t)bench_real_ns());

    printf("sonde serve benchmarks: %s over loopback, %ld CPUs\n\n", sonde,
           sysconf(_SC_NPROCESSORS_ONLN));
    int failed = 0;
    if (strchr(only, '1') || strchr(only, '2'))
        failed |= part_requests(sonde, reps) != 0;
    if (strchr(only, '3'))
        failed |= part_event(sonde, events) != 0;
    if (strchr(only, '4'))
        failed |= part_load(sonde, seconds) != 0;
    if (strchr(only, '5'))
        failed |= part_hostile(sonde, reps) != 0;
    if (strchr(only, '6'))
        failed |= part_history(sonde, reps) != 0;
    bench_fig_print(&table_style);
    bench_rmtree(tmp);
    if (failed)
        fprintf(stderr, "bench_serve: some parts could not run (see above)\n");
    return failed ? 1 : 0;
}
