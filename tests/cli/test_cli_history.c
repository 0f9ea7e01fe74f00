/*
 * History from the command line (issue 14): the value commands' --start and --duration in
 * human units, `sonde export` and `sonde import`. Runs the real binary (path in argv[1]):
 *
 * - against a `sonde serve --no-agent` of its own: the new option forms give the server the
 *   seconds they mean (its JSON reply says so), bad ones are exit 2 naming the option and the
 *   forms; export and import either round-trip (export -> import into a fresh server -> export
 *   gives the same lines) or, on a server without the store's export and import resources,
 *   fail with the server's 404 said plainly, exit 1, and no FILE left behind;
 * - against a recording listener (a plain socket in this process that keeps each request and
 *   answers what the case sets): the exact requests the CLI makes (paths, query, tenant,
 *   token, bodies split at line boundaries within 8 MiB and 50000 lines), a multi-megabyte
 *   export streamed in odd-sized chunks, downloads cut short (exit 1, no FILE), an import
 *   refused half-way, and how replies carrying "granularity" and "tier" are shown. What the
 *   server sends there is what docs/api.md says the store's server sends.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <jansson.h>

#include "http.h"
#include "t.h"

static const char *sonde;
static struct th_serve srv;
static char srv_url[64];
static char out[16 << 20], err[1 << 16];
static int64_t t0; /* the second of the frames ingested into srv */

/* Runs "sonde ARGS" against url (SONDE_URL), in UTC and the C locale; input on stdin (NULL:
 * none); fills out/err; the exit code. */
static int run_at(const char *url, const char *input, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int run_at(const char *url, const char *input, const char *fmt, ...)
{
    char args[4096], cmd[8192];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof(cmd), "TZ=UTC LC_ALL=C SONDE_URL=%s %s %s", url, sonde, args);
    return t_capture(cmd, input, out, sizeof(out), err, sizeof(err));
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The whole of a file (NUL-terminated, owned), or NULL. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *p = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (p = malloc((size_t)n + 1)) != NULL) {
        *len = fread(p, 1, (size_t)n, f);
        p[*len] = '\0';
    }
    fclose(f);
    return p;
}

/* ---- a recording listener ---------------------------------------------------------------- */

#define REC_MAX 16

struct rec {
    char line[1024]; /* the request line, without CRLF */
    char *head;      /* the whole head */
    char *body;      /* NUL-terminated */
    size_t blen;
};

/* How the listener answers a request (fd: its connection; closed after). */
typedef void (*answer_fn)(int fd, const struct rec *r, int nth);

static struct {
    int fd, port;
    char url[64];
    pthread_t th;
    atomic_bool stop;
    pthread_mutex_t mu;
    struct rec recs[REC_MAX];
    int n;            /* requests kept */
    answer_fn answer; /* set by the case, under mu */
    const char *data; /* what export answers (a case's) */
    size_t dlen;
} L = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    for (int k = 0; n > 0 && k < 1000000; k++) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return; /* the client went away: its exit code says what it made of it */
        c += w;
        n -= (size_t)w;
    }
}

static void reply(int fd, int status, const char *ctype, const char *body)
{
    char head[512];
    snprintf(head, sizeof(head),
             "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: "
             "close\r\n\r\n",
             status, ctype, strlen(body));
    send_all(fd, head, strlen(head));
    send_all(fd, body, strlen(body));
}

/* Reads one request (head, then Content-Length bytes of body) into *r; false on a failure. */
static bool read_request(int fd, struct rec *r)
{
    size_t cap = 1 << 16, len = 0, need = 0, hl = 0; /* hl: the head's length, once seen */
    char *buf = malloc(cap);

    for (int k = 0; buf && k < 100000; k++) {
        if (len + 4096 > cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb)
                break;
            buf = nb;
        }
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        char *hend = hl ? NULL : strstr(buf, "\r\n\r\n");
        if (hend) {
            const char *cl = strcasestr(buf, "\r\nContent-Length:");
            hl = (size_t)(hend - buf) + 4;
            need = hl + (cl && cl < hend ? strtoul(cl + 17, NULL, 10) : 0);
        }
        if (hl && len >= need) {
            snprintf(r->line, sizeof(r->line), "%.*s", (int)strcspn(buf, "\r"), buf);
            r->head = strndup(buf, hl - 2);
            r->blen = len - hl;
            r->body = malloc(r->blen + 1);
            if (r->body) {
                memcpy(r->body, buf + hl, r->blen);
                r->body[r->blen] = '\0';
            }
            free(buf);
            return r->head && r->body;
        }
    }
    free(buf);
    return false;
}

static void *listener(void *arg)
{
    (void)arg;
    for (int k = 0; k < 100000 && !atomic_load(&L.stop); k++) {
        struct pollfd p = {.fd = L.fd, .events = POLLIN};
        struct timeval tv = {5, 0};
        struct rec r = {0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int c = accept(L.fd, NULL, NULL);
        if (c < 0)
            continue;
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (read_request(c, &r)) {
            pthread_mutex_lock(&L.mu);
            int nth = L.n;
            bool kept = L.n < REC_MAX;
            answer_fn fn = L.answer;
            if (kept)
                L.recs[L.n++] = r; /* the case reads them once the command is over */
            pthread_mutex_unlock(&L.mu);
            if (fn)
                fn(c, &r, nth);
            if (!kept) {
                free(r.head);
                free(r.body);
            }
        }
        close(c);
    }
    return NULL;
}

static int listener_start(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);

    L.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (L.fd < 0 || bind(L.fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(L.fd, 16) < 0 ||
        getsockname(L.fd, (struct sockaddr *)&a, &alen) < 0)
        return -errno;
    L.port = ntohs(a.sin_port);
    snprintf(L.url, sizeof(L.url), "http://127.0.0.1:%d", L.port);
    return pthread_create(&L.th, NULL, listener, NULL) ? -EAGAIN : 0;
}

/* Forgets the requests kept and sets how the next ones are answered. */
static void listener_case(answer_fn fn)
{
    pthread_mutex_lock(&L.mu);
    for (int i = 0; i < L.n; i++) {
        free(L.recs[i].head);
        free(L.recs[i].body);
    }
    memset(L.recs, 0, sizeof(L.recs));
    L.n = 0;
    L.answer = fn;
    pthread_mutex_unlock(&L.mu);
}

/* The instrumentation and `GET /ca` every value command and export ask for first. */
static bool answer_common(int fd, const struct rec *r)
{
    if (strncmp(r->line, "GET /ca/instrumentations/4 ", 27) == 0 ||
        strncmp(r->line, "GET /ca/customers/acme/instrumentations/4 ", 42) == 0) {
        reply(fd, 200, "application/json",
              "{\"id\":\"4\",\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":"
              "[\"latency\"],\"value-arity\":\"numeric-decomposition\",\"granularity\":1}");
        return true;
    }
    if (strncmp(r->line, "GET /ca ", 8) == 0) {
        reply(fd, 200, "application/json",
              "{\"metrics\":[],\"fields\":{\"latency\":{\"type\":\"t\"}},\"types\":{\"t\":"
              "{\"arity\":\"numeric\",\"unit\":\"seconds\",\"power\":-9}}}");
        return true;
    }
    return false;
}

/* export: L.data in chunks of 1 to 70000 bytes, chunked */
static void answer_export_chunked(int fd, const struct rec *r, int nth)
{
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
                               "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    size_t off = 0, n = 1;
    char sz[32];

    if (answer_common(fd, r))
        return;
    send_all(fd, head, sizeof(head) - 1);
    for (int k = 0; off < L.dlen && k < 1000000; k++) {
        n = n * 7919 % 70001 + 1;
        if (n > L.dlen - off)
            n = L.dlen - off;
        snprintf(sz, sizeof(sz), "%zx\r\n", n);
        send_all(fd, sz, strlen(sz));
        send_all(fd, L.data + off, n);
        send_all(fd, "\r\n", 2);
        off += n;
    }
    send_all(fd, "0\r\n\r\n", 5);
}

/* export: Content-Length says 1000 bytes more than L.data, which is all that comes */
static void answer_export_cut(int fd, const struct rec *r, int nth)
{
    char head[256];
    if (answer_common(fd, r))
        return;
    snprintf(head, sizeof(head),
             "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n",
             L.dlen + 1000);
    send_all(fd, head, strlen(head));
    send_all(fd, L.data, L.dlen);
}

/* export: chunks, then the connection closes without the last (0) chunk */
static void answer_export_cut_chunked(int fd, const struct rec *r, int nth)
{
    static const char head[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    char sz[32];
    if (answer_common(fd, r))
        return;
    send_all(fd, head, sizeof(head) - 1);
    snprintf(sz, sizeof(sz), "%zx\r\n", L.dlen);
    send_all(fd, sz, strlen(sz));
    send_all(fd, L.data, L.dlen);
    send_all(fd, "\r\n", 2);
}

/* The lines (frames) of a body. */
static size_t count_lines(const char *p, size_t n)
{
    size_t k = 0;
    for (const char *e = p + n; (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
        k++;
    return k;
}

/* import: every body accepted but its first frame, which is "late" */
static void answer_import(int fd, const struct rec *r, int nth)
{
    char body[256];
    size_t k = count_lines(r->body, r->blen);
    snprintf(body, sizeof(body), "{\"frames\":%zu,\"accepted\":%zu,\"unknown\":0,\"late\":1}", k,
             k - 1);
    reply(fd, 200, "application/json", body);
}

/* import: the first body accepted, the second refused as the server refuses a bad frame */
static void answer_import_refuse2(int fd, const struct rec *r, int nth)
{
    char body[256];
    size_t k = count_lines(r->body, r->blen);
    if (nth == 1) {
        reply(fd, 400, "application/json",
              "{\"code\":\"InvalidArgument\",\"message\":\"frame 2: \\\"t\\\" must be an "
              "integer\"}");
        return;
    }
    snprintf(body, sizeof(body), "{\"frames\":%zu,\"accepted\":%zu}", k, k);
    reply(fd, 200, "application/json", body);
}

/* value resources of the store's server: points carry "granularity" and "tier" */
static void answer_history(int fd, const struct rec *r, int nth)
{
    if (answer_common(fd, r))
        return;
    if (strstr(r->line, "/value/raw?"))
        reply(fd, 200, "application/json",
              "{\"value\":[[[3000,3099],4]],\"start_time\":1796000000,\"duration\":604800,"
              "\"end_time\":1796604800,\"granularity\":3600,\"tier\":\"1h\"}");
    else if (strstr(r->line, "/value/heatmap/image?"))
        reply(fd, 200, "application/json",
              "{\"start_time\":1796000000,\"duration\":604800,\"granularity\":3600,"
              "\"tier\":\"1h\",\"present\":[]}");
    else if (strstr(r->line, "/value/heatmap/details?"))
        reply(fd, 200, "application/json",
              "{\"bucket_time\":1796000000,\"bucket_ymin\":3000,\"bucket_ymax\":3100,"
              "\"total\":4,\"present\":{},\"granularity\":86400,\"tier\":\"1d\"}");
    else if (strstr(r->line, "/value/heatmap/percentile?"))
        reply(fd, 200, "application/json",
              "{\"percentile\":[3050],\"method\":\"exact\",\"granularity\":60,\"tier\":\"1m\"}");
    else
        reply(fd, 404, "application/json", "{\"message\":\"no\"}");
}

/* ---- against sonde serve: the option forms ----------------------------------------------- */

/* "sonde ARGS" against srv, ARGS a format of one string */
#define srv_run(fmt, arg) run_at(srv_url, NULL, fmt, arg)

static json_t *out_json(void)
{
    json_t *j = json_loads(out, 0, NULL);
    T_OK(j != NULL);
    return j;
}

static void test_setup(void)
{
    struct th_resp r;
    char frames[512];

    T_EQ(run_at(srv_url, NULL, "create syscall.syscalls -d latency --persist"), 0);
    T_STR(out, "1 /ca/instrumentations/1\n");
    T_EQ(run_at(srv_url, NULL, "create syscall.syscalls"), 0);
    T_STR(out, "2 /ca/instrumentations/2\n");
    t0 = (int64_t)time(NULL) - 100; /* windows that end in the future are refused */
    snprintf(frames, sizeof(frames),
             "{\"id\":\"1\",\"host\":\"h\",\"t\":%" PRId64 ",\"arity\":\"numeric-decomposition\","
             "\"value\":[[[3000,3099],4]]}\n"
             "{\"id\":\"2\",\"host\":\"h\",\"t\":%" PRId64 ",\"arity\":\"scalar\",\"value\":16}\n",
             t0, t0);
    T_EQ(th_send(srv.port, "POST", "/ca/ingest", "application/json", frames, &r), 0);
    T_EQ(r.status, 200);
    th_resp_free(&r);
}

static void test_time_forms(void)
{
    char iso[32], a[64];
    time_t tt = (time_t)t0;
    struct tm tm;
    json_t *j;

    gmtime_r(&tt, &tm);
    strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
    /* Unix seconds still work; the ISO form is the same second */
    snprintf(a, sizeof(a), "%" PRId64, t0);
    T_EQ(srv_run("raw 2 --json --start %s", a), 0);
    j = out_json();
    T_EQ(json_integer_value(json_object_get(j, "start_time")), t0);
    T_EQ(json_integer_value(json_object_get(j, "value")), 16);
    json_decref(j);
    T_EQ(srv_run("raw 2 --json --start %s", iso), 0);
    j = out_json();
    T_EQ(json_integer_value(json_object_get(j, "start_time")), t0);
    T_EQ(json_integer_value(json_object_get(j, "value")), 16);
    json_decref(j);
    iso[16] = '\0'; /* 2026-12-07T03:59 */
    T_EQ(srv_run("raw 2 --json --start %s --duration 1m", iso), 0);
    j = out_json();
    T_EQ(json_integer_value(json_object_get(j, "start_time")), t0 - tm.tm_sec);
    T_EQ(json_integer_value(json_object_get(j, "duration")), 60);
    json_decref(j);

    /* relative to now: -3m for 2m covers t0; plain seconds and units for --duration */
    T_EQ(srv_run("raw 2 --json --start=-3m --duration %s", "2m"), 0);
    j = out_json();
    T_EQ(json_integer_value(json_object_get(j, "duration")), 120);
    T_OK(json_integer_value(json_object_get(j, "start_time")) <= t0);
    T_OK(json_integer_value(json_object_get(j, "start_time")) >= t0 - 120);
    T_EQ(json_integer_value(json_object_get(j, "value")), 16);
    json_decref(j);
    snprintf(a, sizeof(a), "%" PRId64, t0 - 5);
    T_EQ(srv_run("raw 2 --json --duration 1m30s --start %s", a), 0);
    j = out_json();
    T_EQ(json_integer_value(json_object_get(j, "duration")), 90);
    json_decref(j);
    T_EQ(srv_run("raw 2 --json --duration 7 --start %s", a), 0);
    j = out_json();
    T_EQ(json_integer_value(json_object_get(j, "duration")), 7);
    T_EQ(json_integer_value(json_object_get(j, "value")), 16);
    json_decref(j);

    /* the heatmap and percentile commands take them too */
    T_EQ(srv_run("heatmap 1 --json --start -3m --duration %s", "2m"), 0);
    j = out_json();
    T_EQ(json_integer_value(json_object_get(j, "duration")), 120);
    json_decref(j);
    T_EQ(srv_run("percentile 1 -P 0.5 --start -3m --duration %s", "2m"), 0);
    T_OK(strncmp(out, "p0.5 ", 5) == 0);
    T_OK(strstr(out, " us\n") != NULL); /* the 4 calls of 3.0-3.1 us */
}

static void test_time_errors(void)
{
    T_EQ(srv_run("raw 2 --start %s", "yesterday"), 2);
    T_STR(err, "sonde raw: --start wants a time: Unix seconds, now, a time before now (-7d, "
               "-1h30m) or a UTC date (2026-12-01, 2026-12-01T03:00Z), not 'yesterday'\n");
    T_STR(out, "");
    T_EQ(srv_run("heatmap 1 --duration %s", "1h30"), 2);
    T_STR(err, "sonde heatmap: --duration wants a duration: seconds or a number and a unit (90s, "
               "5m, 1h30m, 2d, 1w; s m h d w y), not '1h30'\n");
    T_EQ(srv_run("percentile 1 -P 0.5 --duration %s", "0"), 2);
    T_OK(strncmp(err, "sonde percentile: --duration wants a duration: ", 47) == 0);
    T_EQ(srv_run("details 1 --x 1 --y 1 --ymax 9 --start %s", "2026-02-30"), 2);
    T_OK(strncmp(err, "sonde details: --start wants a time: ", 37) == 0);
    T_EQ(srv_run("raw 2 --start %s", "1.5"), 2);
    T_EQ(srv_run("raw 2 --duration %s", "-5"), 2);
    T_EQ(srv_run("raw 2 --start %s", "-200y"), 2);
    T_EQ(srv_run("raw 2 --duration %s", "101y"), 2);
}

/* create's seconds take durations too */
static void test_create_durations(void)
{
    json_t *j;
    T_EQ(srv_run("create syscall.syscalls --json --retention %s --idle-max 1h", "20m"), 0);
    j = out_json();
    T_EQ(json_integer_value(json_object_get(j, "retention-time")), 1200);
    T_EQ(json_integer_value(json_object_get(j, "idle-max")), 3600);
    json_decref(j);
    T_EQ(srv_run("create syscall.syscalls --json --retention %s", "600"), 0);
    j = out_json();
    T_EQ(json_integer_value(json_object_get(j, "retention-time")), 600);
    json_decref(j);
    T_EQ(srv_run("create syscall.syscalls --retention %s", "1h30"), 2);
    T_STR(err, "sonde create: --retention wants seconds or a duration (90s, 5m, 1h, 2d), not "
               "'1h30'\n");
    T_EQ(srv_run("create syscall.syscalls --idle-max %s", "-1m"), 2);
}

/* ---- against sonde serve: export and import ---------------------------------------------- */

/* Whether srv serves the store's export resource (the lead's server side of issue 14). */
static bool has_export(void)
{
    struct th_resp r;
    char path[256];
    bool yes;

    snprintf(path, sizeof(path),
             "/ca/instrumentations/1/export?start_time=%" PRId64 "&end_time=%" PRId64, t0 - 60,
             t0 + 1);
    if (th_get(srv.port, path, &r) != 0)
        return false;
    yes = r.status != 404 || (r.body && strstr(r.body, "nstrumentation"));
    th_resp_free(&r);
    return yes;
}

/* A server without export and import: the 404 said plainly, no file left behind. */
static void export_import_404(void)
{
    char path[512], part[600];

    snprintf(path, sizeof(path), "%s/cli_history_404.%d.jsonl", t_outdir(), (int)getpid());
    snprintf(part, sizeof(part), "%s.part", path);
    T_EQ(run_at(srv_url, NULL, "export 1 --start -1h -o %s", path), 1);
    T_STR(err, "sonde: not found\n");
    T_STR(out, "");
    T_OK(!exists(path));
    T_OK(!exists(part));
    T_EQ(run_at(srv_url, NULL, "export 1 --start -1h --end now"), 1);
    T_STR(err, "sonde: not found\n");
    T_EQ(run_at(srv_url, "{\"id\":\"1\"}\n", "import -"), 1);
    T_STR(err, "sonde: not found\n"
               "sonde import: standard input: the body of lines 1-1 was refused; before it, "
               "nothing was sent\n");
}

/* The store's server: frames imported for past seconds come back out of export as they went
 * in, and a fresh server given that export answers the same. */
static void export_import_round_trip(void)
{
    char in[4096], path[512], path2[512];
    int64_t s = t0 - 3600; /* an hour ago: history, not live */
    size_t n = 0, len1 = 0, len2 = 0;
    char *e1, *e2;
    struct th_serve b;
    static const char *const extra[] = {"--no-agent", NULL};

    for (int i = 0; i < 3; i++)
        n += (size_t)snprintf(in + n, sizeof(in) - n,
                              "{\"v\":1,\"id\":\"1\",\"host\":\"h\",\"t\":%" PRId64
                              ",\"arity\":\"numeric-decomposition\",\"value\":[[[3000,3099],%d]],"
                              "\"drops\":{\"over_cap\":0,\"map_full\":0}}\n",
                              s + i, i + 1);
    T_EQ(run_at(srv_url, in, "import -"), 0);
    T_STR(out, "accepted 3 of 3 frames (1 body), stored 3\n");
    snprintf(path, sizeof(path), "%s/cli_history_a.%d.jsonl", t_outdir(), (int)getpid());
    snprintf(path2, sizeof(path2), "%s/cli_history_b.%d.jsonl", t_outdir(), (int)getpid());
    T_EQ(run_at(srv_url, NULL, "export 1 --start %" PRId64 " --end %" PRId64 " -o %s", s - 10,
                s + 10, path),
         0);
    e1 = slurp(path, &len1);
    T_REQUIRE(e1 != NULL);
    T_OK(count_lines(e1, len1) >= 3); /* the 3 seconds (and any rollup records of them) */
    for (int i = 0; i < 3; i++) {
        char t[40];
        snprintf(t, sizeof(t), "\"t\":%" PRId64 ",", s + i);
        T_OK(strstr(e1, t) != NULL);
    }

    /* into a fresh server, the same instrumentation created first */
    T_REQUIRE(th_serve_start(sonde, extra, NULL, &b) == 0);
    char burl[64];
    snprintf(burl, sizeof(burl), "http://127.0.0.1:%d", b.port);
    T_EQ(run_at(burl, NULL, "create syscall.syscalls -d latency --persist"), 0);
    T_EQ(run_at(burl, NULL, "import %s", path), 0);
    T_STR(out, "accepted 3 of 3 frames (1 body), stored 3\n");
    T_EQ(run_at(burl, NULL, "export 1 --start %" PRId64 " --end %" PRId64 " -o %s", s - 10, s + 10,
                path2),
         0);
    e2 = slurp(path2, &len2);
    T_REQUIRE(e2 != NULL);
    T_EQ(len2, len1);
    T_STR(e2, e1);
    T_EQ(run_at(burl, NULL, "raw 1 --json --start %" PRId64 " --duration 3", s), 0);
    json_t *jb = out_json();
    T_EQ(run_at(srv_url, NULL, "raw 1 --json --start %" PRId64 " --duration 3", s), 0);
    json_t *ja = out_json();
    T_OK(json_equal(json_object_get(ja, "value"), json_object_get(jb, "value")));
    json_decref(ja);
    json_decref(jb);
    th_serve_stop(&b);
    free(e1);
    free(e2);
    unlink(path);
    unlink(path2);
}

static void test_export_import_server(void)
{
    T_EQ(run_at(srv_url, NULL, "export 9 --start -1h"), 1);
    T_STR(err, "sonde: no such instrumentation\n");
    if (has_export()) {
        export_import_round_trip();
    } else {
        fprintf(stderr, "# the server has no export and import resources yet: their 404 is "
                        "checked, not the round trip\n");
        export_import_404();
    }
}

/* ---- against the recording listener ------------------------------------------------------ */

/* n frame lines, each different, into a new buffer (owned) of *len bytes. */
static char *make_lines(size_t n, size_t *len)
{
    size_t cap = n * 200 + 1, off = 0;
    char *p = malloc(cap);
    for (size_t i = 0; p && i < n; i++)
        off += (size_t)snprintf(p + off, cap - off,
                                "{\"v\":1,\"id\":\"4\",\"host\":\"web%zu\",\"t\":%zu,\"arity\":"
                                "\"numeric-decomposition\",\"value\":[[[3000,3099],%zu]]}\n",
                                i % 7, 1796000000 + i, i + 1);
    *len = off;
    return p;
}

static void test_export_requests(void)
{
    char path[512], part[600], want[1200];
    size_t n = 30000, len, flen = 0;
    char *data = make_lines(n, &len), *got;

    T_REQUIRE(data != NULL);
    T_OK(len > 3 << 20); /* several MiB, in odd chunks */
    L.data = data;
    L.dlen = len;
    listener_case(answer_export_chunked);
    T_EQ(run_at(L.url, NULL, "export 4 --start 1796000000 --end 2026-12-07T12:00Z --token tk"), 0);
    T_STR(err, "");
    T_EQ(strlen(out), len);
    T_OK(memcmp(out, data, len) == 0);
    T_EQ(L.n, 2);
    T_STR(L.recs[0].line, "GET /ca/instrumentations/4 HTTP/1.1");
    T_STR(L.recs[1].line, "GET /ca/instrumentations/4/export?start_time=1796000000&end_time="
                          "1796644800 HTTP/1.1");
    T_OK(strstr(L.recs[1].head, "\r\nAuthorization: Bearer tk\r\n") != NULL);

    /* to a file, in a tenant's scope; --end defaults to now */
    snprintf(path, sizeof(path), "%s/cli_history_x.%d.jsonl", t_outdir(), (int)getpid());
    snprintf(part, sizeof(part), "%s.part", path);
    listener_case(answer_export_chunked);
    int64_t before = (int64_t)time(NULL);
    T_EQ(run_at(L.url, NULL, "export --tenant acme 4 --start -7d -o %s", path), 0);
    int64_t after = (int64_t)time(NULL);
    snprintf(want, sizeof(want), "%zu frames (%zu bytes) written to %s\n", n, len, path);
    T_STR(out, want);
    got = slurp(path, &flen);
    T_REQUIRE(got != NULL);
    T_EQ(flen, len);
    T_OK(memcmp(got, data, len) == 0);
    free(got);
    T_OK(!exists(part));
    unlink(path);
    T_EQ(L.n, 2);
    long long s = 0, e = 0;
    T_EQ(sscanf(L.recs[1].line,
                "GET /ca/customers/acme/instrumentations/4/export?start_time=%lld&end_time=%lld "
                "HTTP/1.1",
                &s, &e),
         2);
    T_OK(e >= before && e <= after);
    T_EQ(e - s, 7 * 86400);

    /* cut short: Content-Length not reached, or no last chunk: exit 1, no FILE */
    L.dlen = len / 2;
    listener_case(answer_export_cut);
    T_EQ(run_at(L.url, NULL, "export 4 --start 1796000000 -o %s", path), 1);
    snprintf(want, sizeof(want),
             "sonde: the download from %s was cut short (the connection closed before the "
             "end)\n",
             L.url);
    T_STR(err, want);
    T_STR(out, "");
    T_OK(!exists(path));
    T_OK(!exists(part));
    listener_case(answer_export_cut_chunked);
    T_EQ(run_at(L.url, NULL, "export 4 --start 1796000000"), 1);
    T_STR(err, want);
    T_EQ(strlen(out), len / 2); /* what came, on stdout */
    listener_case(answer_export_cut_chunked);
    T_EQ(run_at(L.url, NULL, "export 4 --start 1796000000 -o %s", path), 1);
    T_OK(!exists(path));
    T_OK(!exists(part));
    listener_case(NULL);
    free(data);
}

static void test_export_usage(void)
{
    T_EQ(run_at(L.url, NULL, "export 4"), 2);
    T_OK(strncmp(err, "sonde export: --start is required\n\nusage: sonde export ", 55) == 0);
    T_EQ(run_at(L.url, NULL, "export 4 --start -1h --end -2h"), 2);
    T_OK(strncmp(err, "sonde export: --start (", 23) == 0);
    T_OK(strstr(err, ") must be before --end (") != NULL);
    T_EQ(run_at(L.url, NULL, "export 4 --start soon"), 2);
    T_STR(err, "sonde export: --start wants a time: Unix seconds, now, a time before now (-7d, "
               "-1h30m) or a UTC date (2026-12-01, 2026-12-01T03:00Z), not 'soon'\n");
    T_EQ(run_at(L.url, NULL, "export 4 --start -1h --end 2026-13-01"), 2);
    T_OK(strncmp(err, "sonde export: --end wants a time: ", 34) == 0);
    T_EQ(run_at(L.url, NULL, "export x4 --start -1h"), 2);
    T_STR(err, "sonde export: bad instrumentation id 'x4' (want a number)\n");
    T_EQ(run_at(L.url, NULL, "export 4 5 --start -1h"), 2);
    T_EQ(run_at(L.url, NULL, "export 4 --start -1h --json"), 2);
    T_OK(strncmp(err, "sonde export: unknown option '--json'", 37) == 0);
    T_EQ(L.n, 0); /* nothing was sent */
    T_EQ(run_at(L.url, NULL, "export --help"), 0);
    T_OK(strncmp(out, "usage: sonde export [options] ID --start T", 42) == 0);
    T_EQ(run_at("http://127.0.0.1:1", NULL, "export 4 --start -1h"), 1);
    T_STR(err, "sonde: cannot connect to http://127.0.0.1:1: nothing listens there (is `sonde "
               "serve` running there?)\n");
}

static void test_import_requests(void)
{
    char path[512], want[1200];
    size_t n = 120000, len;
    char *data = make_lines(n, &len);
    FILE *f;

    T_REQUIRE(data != NULL);
    /* a blank line and an unterminated last line */
    snprintf(path, sizeof(path), "%s/cli_history_in.%d.jsonl", t_outdir(), (int)getpid());
    f = fopen(path, "wb");
    T_REQUIRE(f != NULL);
    fwrite(data, 1, len, f);
    fputs("\n  \n{\"last\":1}", f);
    fclose(f);
    listener_case(answer_import);
    T_EQ(run_at(L.url, NULL, "import --token tk %s", path), 0);
    T_STR(err, "");
    /* bodies of at most 50000 lines and 8 MiB, split between lines, every line once */
    T_EQ(L.n, 3);
    size_t off = 0, total = 0;
    for (int i = 0; i < L.n; i++) {
        const struct rec *r = &L.recs[i];
        T_STR(r->line, "POST /ca/import HTTP/1.1");
        T_OK(strstr(r->head, "\r\nAuthorization: Bearer tk\r\n") != NULL);
        T_OK(strstr(r->head, "\r\nContent-Type: application/json\r\n") != NULL);
        T_OK(r->blen <= 8u << 20);
        T_OK(count_lines(r->body, r->blen) <= 50000);
        T_OK(r->blen > 0 && r->body[r->blen - 1] == '\n');
        if (i < 2) {
            T_OK(off + r->blen <= len && memcmp(r->body, data + off, r->blen) == 0);
        } else {
            T_EQ(r->blen, len - off + 11);
            T_OK(memcmp(r->body, data + off, len - off) == 0);
            T_STR(r->body + (len - off), "{\"last\":1}\n");
        }
        off += r->blen;
        total += count_lines(r->body, r->blen);
    }
    T_EQ(total, n + 1);
    snprintf(want, sizeof(want), "accepted %zu of %zu frames (3 bodies), late 3\n", n + 1 - 3,
             n + 1);
    T_STR(out, want);

    /* lines of 5000 bytes: bodies cut at 8 MiB (1677 lines), between lines */
    char fat[600];
    snprintf(fat, sizeof(fat), "%s.fat", path);
    f = fopen(fat, "wb");
    T_REQUIRE(f != NULL);
    for (int i = 0; i < 4000; i++)
        fprintf(f, "{\"i\":%04d,\"pad\":\"%04980d\"}\n", i, 0);
    fclose(f);
    listener_case(answer_import);
    T_EQ(run_at(L.url, NULL, "import %s", fat), 0);
    unlink(fat);
    T_EQ(L.n, 3);
    T_EQ(L.recs[0].blen, 1677 * 5000);
    T_EQ(L.recs[1].blen, 1677 * 5000);
    T_EQ(L.recs[2].blen, (4000 - 2 * 1677) * 5000);
    T_OK(strncmp(L.recs[1].body, "{\"i\":1677,", 10) == 0);
    T_STR(out, "accepted 3997 of 4000 frames (3 bodies), late 3\n");

    /* --json: the counts added up; a tenant's scope */
    listener_case(answer_import);
    T_EQ(run_at(L.url, "{\"a\":1}\n{\"b\":2}\n", "import --tenant acme --json -"), 0);
    T_STR(L.recs[0].line, "POST /ca/customers/acme/import HTTP/1.1");
    T_STR(L.recs[0].body, "{\"a\":1}\n{\"b\":2}\n");
    json_t *j = json_loads(out, 0, NULL);
    T_EQ(json_integer_value(json_object_get(j, "frames")), 2);
    T_EQ(json_integer_value(json_object_get(j, "accepted")), 1);
    T_EQ(json_integer_value(json_object_get(j, "late")), 1);
    json_decref(j);

    /* the second body refused: the server's message, the lines, what went in before */
    listener_case(answer_import_refuse2);
    T_EQ(run_at(L.url, NULL, "import %s", path), 1);
    snprintf(want, sizeof(want),
             "sonde: frame 2: \"t\" must be an integer\n"
             "sonde import: %s: the body of lines 50001-100000 was refused; before it, accepted "
             "50000 of 50000 frames (1 body)\n",
             path);
    T_STR(err, want);
    T_STR(out, "");
    T_EQ(L.n, 2); /* nothing after the refused body */

    /* nothing to send; a file that is not there; a NUL byte */
    listener_case(answer_import);
    T_EQ(run_at(L.url, "\n\n", "import -"), 0);
    T_STR(out, "no frames in standard input\n");
    T_EQ(L.n, 0);
    T_EQ(run_at(L.url, NULL, "import /nonexistent/x.jsonl"), 1);
    T_STR(err, "sonde import: /nonexistent/x.jsonl: No such file or directory\n");
    f = fopen(path, "wb");
    T_REQUIRE(f != NULL);
    fwrite("{}\n{\0}\n", 1, 7, f);
    fclose(f);
    T_EQ(run_at(L.url, NULL, "import %s", path), 2);
    snprintf(want, sizeof(want), "sonde import: %s: line 2 holds a NUL byte\n", path);
    T_STR(err, want);
    T_EQ(run_at(L.url, NULL, "import"), 2);
    T_EQ(run_at(L.url, NULL, "import a b"), 2);
    T_EQ(L.n, 0);
    unlink(path);
    listener_case(NULL);
    free(data);
}

static void test_granularity_shown(void)
{
    listener_case(answer_history);
    T_EQ(run_at(L.url, NULL, "raw 4 --start -7d --duration 7d"), 0);
    T_STR(err, "");
    T_STR(out, "granularity 1h (tier 1h)\n"
               "[3.00 us, 3.10 us)                    4  "
               "########################################\n");
    T_OK(strstr(L.recs[L.n - 1].line, "&duration=604800 ") != NULL);
    T_EQ(run_at(L.url, NULL, "heatmap 4 --start -7d --duration 1w"), 0);
    T_OK(strstr(out, "\ngranularity            1h (3600)\ntier                   1h\n") != NULL);
    T_EQ(run_at(L.url, NULL, "percentile 4 -P 0.5 --start -1d --duration 1h"), 0);
    T_STR(out, "granularity 1m (tier 1m)\np0.5        3.05 us\n");
    T_EQ(run_at(L.url, NULL, "details 4 --x 3 --y 5 --ymax 1ms --start -30d --duration 30d"), 2);
    T_EQ(run_at(L.url, NULL, "details 4 --x 3 --y 5 --ymax 1000000 --start -30d --duration 30d"),
         0);
    T_STR(out, "time     2026-11-30 00:53:20 (1796000000)\n"
               "granularity 1d (tier 1d)\n"
               "range    [3.00 us, 3.10 us)\n"
               "total    4\n");
    listener_case(NULL);
}

/* Live data (memory, the raw tier) says nothing of its granularity: the instrumentation's. */
static void test_granularity_server(void)
{
    json_t *j;
    T_EQ(srv_run("raw 1 --json --start -3m --duration %s", "2m"), 0);
    j = out_json();
    bool has = json_object_get(j, "granularity") || json_object_get(j, "tier");
    json_decref(j);
    T_OK(has);
    T_EQ(srv_run("raw 1 --start -3m --duration %s", "2m"), 0);
    T_OK(strncmp(out, "[3.00 us, 3.10 us) ", 19) == 0);
}

int main(int argc, char **argv)
{
    static const char *const extra[] = {"--no-agent", NULL};
    int rc;

    sonde = th_sonde_main(argc, argv); /* SONDE [CASE-FILTER] */
    if (th_serve_start(sonde, extra, NULL, &srv) != 0) {
        fprintf(stderr, "cannot start sonde serve\n");
        return 1;
    }
    snprintf(srv_url, sizeof(srv_url), "http://127.0.0.1:%d", srv.port);
    if ((rc = listener_start()) < 0) {
        fprintf(stderr, "cannot listen: %s\n", strerror(-rc));
        return 1;
    }
    t_run("setup", test_setup);
    t_run("time forms", test_time_forms);
    t_run("time errors", test_time_errors);
    t_run("granularity from the server", test_granularity_server);
    t_run("export and import, the server", test_export_import_server);
    t_run("export requests", test_export_requests);
    t_run("export usage", test_export_usage);
    t_run("import requests", test_import_requests);
    t_run("granularity shown", test_granularity_shown);
    t_run("create durations", test_create_durations);
    atomic_store(&L.stop, true);
    pthread_join(L.th, NULL);
    close(L.fd);
    listener_case(NULL);
    th_serve_stop(&srv);
    return t_done();
}
