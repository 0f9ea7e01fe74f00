/*
 * HTTP client and `sonde serve` launcher for the conformance tests; see http.h.
 *
 * th_request: one non-blocking socket; every wait is a poll() bounded by the exchange's
 * deadline, and every loop also has a cap on its iterations. The response is read into one
 * growing buffer; the header block is found, then the body framed by chunked encoding (decoded
 * incrementally, so the request ends at the last chunk, not at the server's close), by
 * Content-Length, or by the close of the connection.
 *
 * th_serve_start: fork + execv of the sonde binary (no shell), stdout on a pipe, a parent-death
 * signal set in the child, and a second close-on-exec pipe that reports a failed exec's errno.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "http.h"
#include "t.h"

#define SHORT_TIMEOUT_MS 10000 /* th_get, th_send */
#define START_MS         10000 /* th_serve_start, in all */
#define PROBE_MS         2000  /* one GET /ca while starting */
#define PROBE_GAP_MS     20
#define TERM_MS          5000 /* th_serve_stop: after SIGTERM, before SIGKILL */
#define KILL_MS          5000 /* after SIGKILL */
#define REAP_POLL_MS     5
#define MAX_INTERIM      16   /* 1xx responses before the final one */
#define MAX_LINE         1024 /* a chunk-size line; the server's URL line */
#define MAX_EXTRA        64   /* extra arguments of th_serve_start */
#define MAX_ITERS        (1L << 22)

double th_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void th_sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

const char *th_sonde_main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s SONDE [CASE-FILTER]\n", argv[0]);
        exit(2);
    }
    t_init(argc - 1, argv + 1);
    return argv[1];
}

/* Milliseconds left before deadline, rounded up (so that poll never spins at 0 early). */
static int left_ms(double deadline)
{
    double d = deadline - th_now_ms();
    if (d <= 0)
        return 0;
    if (d > INT_MAX)
        return INT_MAX;
    return (int)d + 1;
}

/* Waits for events on fd until deadline: 0 when ready (or in error/hangup, which the next
 * call reports), -ETIMEDOUT, or -errno. */
static int wait_fd(int fd, short events, double deadline)
{
    for (int k = 0; k < 10000; k++) {
        int ms = left_ms(deadline);
        if (ms == 0)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, ms);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
    return -ETIMEDOUT;
}

/* ---- a growing byte buffer, always NUL-terminated ------------------------------------------ */

struct buf {
    char *p;
    size_t n, cap;
};

static int buf_reserve(struct buf *b, size_t extra, size_t limit)
{
    if (extra > limit || b->n > limit - extra)
        return -EMSGSIZE;
    if (b->n + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + extra + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int buf_add(struct buf *b, const void *d, size_t n, size_t limit)
{
    int rc = buf_reserve(b, n, limit);
    if (rc)
        return rc;
    if (n)
        memcpy(b->p + b->n, d, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

static int buf_str(struct buf *b, const char *s)
{
    return buf_add(b, s, strlen(s), SIZE_MAX / 4);
}

/* ---- header blocks ------------------------------------------------------------------------- */

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Next header line of [*cur, end) named name (case-insensitive): its value without
 * surrounding whitespace in [*v, *v + *vlen). *cur starts after the status line. */
static bool next_header(const char **cur, const char *end, const char *name, const char **v,
                        size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *p = *cur;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        const char *next = eol ? eol + 1 : end;
        if (le > p && le[-1] == '\r')
            le--;
        if ((size_t)(le - p) > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
            const char *a = p + nlen + 1, *z = le;
            while (a < z && is_ows(*a))
                a++;
            while (z > a && is_ows(z[-1]))
                z--;
            *v = a;
            *vlen = (size_t)(z - a);
            *cur = next;
            return true;
        }
        p = next;
    }
    *cur = end;
    return false;
}

/* After the status line of head[0, n). */
static const char *headers_start(const char *head, size_t n)
{
    const char *eol = memchr(head, '\n', n);
    return eol ? eol + 1 : head + n;
}

bool th_header(const struct th_resp *r, const char *name, char *out, size_t len)
{
    if (!r || !r->head || !name || !name[0])
        return false;
    size_t n = strlen(r->head);
    const char *cur = headers_start(r->head, n), *v;
    size_t vlen;
    if (!next_header(&cur, r->head + n, name, &v, &vlen))
        return false;
    if (out && len > 0) {
        size_t c = vlen < len - 1 ? vlen : len - 1;
        memcpy(out, v, c);
        out[c] = '\0';
    }
    return true;
}

/* "HTTP/1.x NNN[ reason]\r\n": the status, or -EPROTO. */
static int parse_status(const char *h, size_t n)
{
    if (n < 14 || memcmp(h, "HTTP/1.", 7) != 0 || h[7] < '0' || h[7] > '9' || h[8] != ' ')
        return -EPROTO;
    int st = 0;
    for (int i = 9; i < 12; i++) {
        if (h[i] < '0' || h[i] > '9')
            return -EPROTO;
        st = st * 10 + (h[i] - '0');
    }
    if (st < 100 || (h[12] != ' ' && h[12] != '\r'))
        return -EPROTO;
    const char *eol = memchr(h, '\n', n);
    if (!eol || eol == h || eol[-1] != '\r')
        return -EPROTO;
    return st;
}

enum framing { F_NONE, F_LENGTH, F_CHUNKED, F_CLOSE };

/* How the body after head[0, n) is delimited (RFC 9112 6.3). */
static int body_framing(const char *head, size_t n, const char *method, int status, enum framing *f,
                        size_t *clen)
{
    const char *end = head + n, *cur, *v;
    size_t vlen;
    if (strcasecmp(method, "HEAD") == 0 || status < 200 || status == 204 || status == 304) {
        *f = F_NONE;
        return 0;
    }
    /* chunked when it is the last transfer coding */
    bool chunked = false, te = false;
    cur = headers_start(head, n);
    for (int k = 0; k < 1000 && next_header(&cur, end, "Transfer-Encoding", &v, &vlen); k++) {
        te = true;
        chunked = vlen >= 7 && strncasecmp(v + vlen - 7, "chunked", 7) == 0 &&
                  (vlen == 7 || v[vlen - 8] == ',' || is_ows(v[vlen - 8]));
    }
    if (chunked) {
        *f = F_CHUNKED;
        return 0;
    }
    if (te) { /* another coding last: read until close */
        *f = F_CLOSE;
        return 0;
    }
    bool have = false;
    size_t len = 0;
    cur = headers_start(head, n);
    for (int k = 0; k < 1000 && next_header(&cur, end, "Content-Length", &v, &vlen); k++) {
        if (vlen == 0 || vlen > 18)
            return -EPROTO;
        size_t x = 0;
        for (size_t i = 0; i < vlen; i++) {
            if (v[i] < '0' || v[i] > '9')
                return -EPROTO;
            x = x * 10 + (size_t)(v[i] - '0');
        }
        if (have && x != len)
            return -EPROTO;
        have = true;
        len = x;
    }
    if (have && len > TH_MAX_BODY)
        return -EMSGSIZE;
    *f = have ? F_LENGTH : F_CLOSE;
    *clen = len;
    return 0;
}

/* Decodes the chunks of raw[*pos, n) into out. Returns 1 after the last chunk (and trailers),
 * 0 when more input is needed (*pos at the first chunk not yet decoded), or -errno. */
static int dechunk(const char *raw, size_t n, size_t *pos, struct buf *out)
{
    for (size_t k = 0; k <= n; k++) { /* each round consumes at least 5 bytes */
        const char *line = raw + *pos;
        size_t avail = n - *pos;
        const char *eol = memmem(line, avail, "\r\n", 2);
        if (!eol)
            return avail > MAX_LINE ? -EPROTO : 0;
        size_t size = 0, i = 0, ll = (size_t)(eol - line) + 2;
        for (; line + i < eol; i++) {
            char c = line[i];
            int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (d < 0)
                break;
            if (size > TH_MAX_BODY)
                return -EMSGSIZE;
            size = size * 16 + (size_t)d;
        }
        if (i == 0)
            return -EPROTO;
        while (line + i < eol && is_ows(line[i]))
            i++;
        if (line + i < eol && line[i] != ';') /* chunk extensions are ignored */
            return -EPROTO;
        if (size > TH_MAX_BODY)
            return -EMSGSIZE;
        if (size == 0) { /* trailer fields, then an empty line */
            size_t q = *pos + ll;
            for (size_t t = 0; t <= n; t++) {
                const char *e = memmem(raw + q, n - q, "\r\n", 2);
                if (!e)
                    return n - q > TH_MAX_HEAD ? -EMSGSIZE : 0;
                if (e == raw + q) {
                    *pos = q + 2;
                    return 1;
                }
                q = (size_t)(e - raw) + 2;
            }
            return -EPROTO;
        }
        if (avail < ll + size + 2)
            return 0;
        if (line[ll + size] != '\r' || line[ll + size + 1] != '\n')
            return -EPROTO;
        int rc = buf_add(out, line + ll, size, TH_MAX_BODY);
        if (rc)
            return rc;
        *pos += ll + size + 2;
    }
    return -EPROTO;
}

/* ---- th_request ---------------------------------------------------------------------------- */

static bool has_header(const char *const *headers, const char *name)
{
    size_t nlen = strlen(name);
    for (int i = 0; headers && headers[i] && i < 1000; i++)
        if (strncasecmp(headers[i], name, nlen) == 0 && headers[i][nlen] == ':')
            return true;
    return false;
}

static int build_request(struct buf *q, int port, const char *method, const char *path,
                         const char *const *headers, const void *body, size_t blen)
{
    char line[128];
    int rc = 0;
    rc |= buf_str(q, method);
    rc |= buf_str(q, " ");
    rc |= buf_str(q, path);
    rc |= buf_str(q, " HTTP/1.1\r\n");
    if (!has_header(headers, "Host")) {
        snprintf(line, sizeof(line), "Host: 127.0.0.1:%d\r\n", port);
        rc |= buf_str(q, line);
    }
    if (!has_header(headers, "Connection"))
        rc |= buf_str(q, "Connection: close\r\n");
    bool wants_body = body || strcasecmp(method, "POST") == 0 || strcasecmp(method, "PUT") == 0 ||
                      strcasecmp(method, "PATCH") == 0;
    if (wants_body && !has_header(headers, "Content-Length") &&
        !has_header(headers, "Transfer-Encoding")) {
        snprintf(line, sizeof(line), "Content-Length: %zu\r\n", body ? blen : 0);
        rc |= buf_str(q, line);
    }
    for (int i = 0; headers && headers[i] && i < 1000; i++) {
        rc |= buf_str(q, headers[i]);
        rc |= buf_str(q, "\r\n");
    }
    rc |= buf_str(q, "\r\n");
    if (body && blen)
        rc |= buf_add(q, body, blen, SIZE_MAX / 4);
    return rc ? -ENOMEM : 0;
}

static int connect_to(int port, double deadline, int *out)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        int e = errno;
        if (e != EINPROGRESS && e != EINTR) {
            close(fd);
            return -e;
        }
        int rc = wait_fd(fd, POLLOUT, deadline);
        if (rc) {
            close(fd);
            return rc;
        }
        socklen_t sl = sizeof(e);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) != 0)
            e = errno;
        if (e) {
            close(fd);
            return -e;
        }
    }
    *out = fd;
    return 0;
}

/* Sends q; 0, or the -errno that stopped it. */
static int send_all(int fd, const struct buf *q, double deadline)
{
    size_t off = 0;
    for (long k = 0; off < q->n && k < MAX_ITERS; k++) {
        int rc = wait_fd(fd, POLLOUT, deadline);
        if (rc)
            return rc;
        ssize_t n = send(fd, q->p + off, q->n - off, MSG_NOSIGNAL);
        if (n > 0)
            off += (size_t)n;
        else if (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
    }
    return off == q->n ? 0 : -ETIMEDOUT;
}

/* Reads and parses the response on fd into r. */
static int receive(int fd, const char *method, double deadline, int send_err, struct th_resp *r)
{
    struct buf raw = {0}, body = {0};
    size_t head_len = 0, scan = 0, clen = 0, cpos = 0;
    enum framing f = F_NONE;
    int status = 0, interim = 0, rc = 0;
    bool eof = false, done = false;

    for (long k = 0; k < MAX_ITERS && !done; k++) {
        /* parse what we have */
        if (!head_len) {
            size_t from = scan > 3 ? scan - 3 : 0;
            const char *e = raw.n > from ? memmem(raw.p + from, raw.n - from, "\r\n\r\n", 4) : NULL;
            scan = raw.n;
            if (e) {
                size_t hl = (size_t)(e - raw.p) + 4;
                status = parse_status(raw.p, hl);
                if (status < 0) {
                    rc = status;
                    break;
                }
                if (status < 200 && status != 101) { /* interim: drop it, read the next */
                    if (++interim > MAX_INTERIM) {
                        rc = -EPROTO;
                        break;
                    }
                    memmove(raw.p, raw.p + hl, raw.n - hl + 1);
                    raw.n -= hl;
                    scan = 0;
                    continue;
                }
                rc = body_framing(raw.p, hl, method, status, &f, &clen);
                if (rc)
                    break;
                head_len = hl;
                cpos = hl;
            } else if (raw.n > TH_MAX_HEAD) {
                rc = -EMSGSIZE;
                break;
            }
        }
        if (head_len) {
            size_t have = raw.n - head_len;
            if (f == F_NONE) {
                done = true;
            } else if (f == F_LENGTH && have >= clen) {
                rc = buf_add(&body, raw.p + head_len, clen, TH_MAX_BODY);
                done = true;
            } else if (f == F_CHUNKED) {
                int d = dechunk(raw.p, raw.n, &cpos, &body);
                if (d < 0)
                    rc = d;
                done = d != 0;
            } else if (f == F_CLOSE && eof) {
                rc = buf_add(&body, raw.p + head_len, have, TH_MAX_BODY);
                done = true;
            } else if (f == F_CLOSE && have > TH_MAX_BODY) {
                rc = -EMSGSIZE;
            }
            if (rc)
                break;
            if (done)
                break;
        }
        if (eof) {
            rc = raw.n == 0 ? (send_err ? send_err : -ECONNRESET) : -EPROTO;
            break;
        }
        /* read more */
        rc = wait_fd(fd, POLLIN, deadline);
        if (rc)
            break;
        rc = buf_reserve(&raw, 16384, (size_t)TH_MAX_HEAD + TH_MAX_BODY + 65536);
        if (rc)
            break;
        ssize_t n = recv(fd, raw.p + raw.n, raw.cap - raw.n - 1, 0);
        if (n > 0) {
            raw.n += (size_t)n;
            raw.p[raw.n] = '\0';
        } else if (n == 0) {
            eof = true;
        } else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
            rc = -errno;
            if (rc == -ECONNRESET && raw.n == 0 && send_err)
                rc = send_err;
            break;
        }
    }
    if (!rc && !done)
        rc = -ETIMEDOUT;
    if (!rc && !body.p)
        rc = buf_add(&body, "", 0, 1); /* an empty body is "" */
    if (!rc) {
        r->head = malloc(head_len + 1);
        if (!r->head)
            rc = -ENOMEM;
    }
    if (rc) {
        free(raw.p);
        free(body.p);
        return rc;
    }
    memcpy(r->head, raw.p, head_len);
    r->head[head_len] = '\0';
    r->status = status;
    r->body = body.p;
    r->len = body.n;
    free(raw.p);
    return 0;
}

int th_request(int port, const char *method, const char *path, const char *const *headers,
               const void *body, size_t blen, int timeout_ms, struct th_resp *r)
{
    if (!r)
        return -EINVAL;
    memset(r, 0, sizeof(*r));
    if (port <= 0 || port > 65535 || !method || !method[0] || !path || timeout_ms <= 0)
        return -EINVAL;
    double t0 = th_now_ms(), deadline = t0 + timeout_ms;
    struct buf q = {0};
    int fd = -1;
    int rc = build_request(&q, port, method, path, headers, body, blen);
    if (!rc)
        rc = connect_to(port, deadline, &fd);
    if (!rc) {
        int send_err = send_all(fd, &q, deadline);
        if (send_err == -ETIMEDOUT)
            rc = send_err;
        else
            rc = receive(fd, method, deadline, send_err, r);
    }
    if (fd >= 0)
        close(fd);
    free(q.p);
    r->ms = th_now_ms() - t0;
    return rc;
}

void th_resp_free(struct th_resp *r)
{
    if (!r)
        return;
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

int th_get(int port, const char *path, struct th_resp *r)
{
    return th_request(port, "GET", path, NULL, NULL, 0, SHORT_TIMEOUT_MS, r);
}

int th_send(int port, const char *method, const char *path, const char *ctype, const char *body,
            struct th_resp *r)
{
    char ct[256];
    const char *hdrs[2] = {NULL, NULL};
    if (ctype) {
        if ((size_t)snprintf(ct, sizeof(ct), "Content-Type: %s", ctype) >= sizeof(ct)) {
            if (r)
                memset(r, 0, sizeof(*r));
            return -EINVAL;
        }
        hdrs[0] = ct;
    }
    return th_request(port, method, path, hdrs, body, body ? strlen(body) : 0, SHORT_TIMEOUT_MS, r);
}

/* ---- th_serve ------------------------------------------------------------------------------ */

/* Waits up to ms for pid to exit: 1 (reaped; *status set), 0 (still running), -1 (not ours). */
static int reap_ms(pid_t pid, long ms, int *status)
{
    /* by the clock, not by a count of sleeps: on a loaded machine sleeps overrun, and the
     * SIGKILL would come late (the count only bounds the loop) */
    double end = th_now_ms() + (double)ms;
    long polls = 4 * (ms / REAP_POLL_MS) + 2;
    for (long k = 0; k < polls; k++) {
        pid_t w = waitpid(pid, status, WNOHANG);
        if (w == pid)
            return 1;
        if (w < 0 && errno != EINTR)
            return -1;
        if (th_now_ms() >= end)
            break;
        th_sleep_ms(REAP_POLL_MS);
    }
    return 0;
}

static int exit_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

static __attribute__((noreturn)) void child_fail(int report_fd)
{
    int e = errno;
    if (write(report_fd, &e, sizeof(e)) < 0)
        _exit(127);
    _exit(127);
}

/* The data directory: dir_reuse, or a fresh t_outdir()/serve-XXXXXX; absolute. */
static int make_dir(const char *dir_reuse, char *out, size_t len)
{
    char tmpl[PATH_MAX];
    const char *base = dir_reuse ? dir_reuse : t_outdir();
    size_t n;
    if (base[0] == '/') {
        n = (size_t)snprintf(tmpl, sizeof(tmpl), "%s", base);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof(cwd)))
            return -errno;
        n = (size_t)snprintf(tmpl, sizeof(tmpl), "%s/%s", cwd, base);
    }
    if (n >= sizeof(tmpl))
        return -ENAMETOOLONG;
    if (!dir_reuse) {
        if (n + sizeof("/serve-XXXXXX") > sizeof(tmpl))
            return -ENAMETOOLONG;
        strcat(tmpl, "/serve-XXXXXX");
        n = strlen(tmpl);
        if (n >= len)
            return -ENAMETOOLONG;
        if (!mkdtemp(tmpl))
            return -errno;
    }
    if (n >= len)
        return -ENAMETOOLONG;
    memcpy(out, tmpl, n + 1);
    return 0;
}

/* PORT from "...http://HOST:PORT/..." in line, or -EPROTO. */
static int parse_port(const char *line)
{
    const char *p = strstr(line, "http://");
    if (!p)
        return -EPROTO;
    p += 7;
    const char *end = p + strcspn(p, "/ \t\r\n");
    const char *colon = NULL;
    for (const char *c = p; c < end; c++)
        if (*c == ':')
            colon = c;
    if (!colon || colon + 1 == end || end - colon > 6)
        return -EPROTO;
    long port = 0;
    for (const char *c = colon + 1; c < end; c++) {
        if (*c < '0' || *c > '9')
            return -EPROTO;
        port = port * 10 + (*c - '0');
    }
    return port >= 1 && port <= 65535 ? (int)port : -EPROTO;
}

/* The first line of fd (without its newline) into line, by single bytes (nothing past it is
 * consumed: the rest stays for s->out). 0, -ECHILD (EOF), -EPROTO (too long), -ETIMEDOUT. */
static int read_line(int fd, char *line, size_t len, double deadline)
{
    size_t n = 0;
    for (long k = 0; k < MAX_ITERS; k++) {
        int rc = wait_fd(fd, POLLIN, deadline);
        if (rc)
            return rc;
        char c;
        ssize_t got = read(fd, &c, 1);
        if (got == 0)
            return -ECHILD;
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -errno;
        }
        if (c == '\n') {
            if (n > 0 && line[n - 1] == '\r')
                n--;
            line[n] = '\0';
            return 0;
        }
        if (n + 1 >= len)
            return -EPROTO;
        line[n++] = c;
    }
    return -ETIMEDOUT;
}

static void kill_and_reap(pid_t pid)
{
    int status;
    kill(pid, SIGKILL);
    if (reap_ms(pid, KILL_MS, &status) == 0)
        fprintf(stderr, "th_serve: PID %d survived SIGKILL for %d ms\n", (int)pid, KILL_MS);
}

int th_serve_start(const char *sonde, const char *const *extra, const char *dir_reuse,
                   struct th_serve *s)
{
    if (!s)
        return -EINVAL;
    memset(s, 0, sizeof(*s));
    if (!sonde || !sonde[0])
        return -EINVAL;
    double deadline = th_now_ms() + START_MS;
    int rc = make_dir(dir_reuse, s->dir, sizeof(s->dir));
    if (rc) {
        fprintf(stderr, "th_serve_start: data directory: %s\n", strerror(-rc));
        return rc;
    }

    const char *argv[6 + MAX_EXTRA + 1] = {sonde,         "serve",  "--listen",
                                           "127.0.0.1:0", "--data", s->dir};
    int argc = 6;
    for (int i = 0; extra && extra[i]; i++) {
        if (i >= MAX_EXTRA) {
            fprintf(stderr, "th_serve_start: more than %d extra arguments\n", MAX_EXTRA);
            return -EINVAL;
        }
        argv[argc++] = extra[i];
    }
    argv[argc] = NULL;

    int out[2], report[2];
    if (pipe2(out, O_CLOEXEC) != 0)
        return -errno;
    if (pipe2(report, O_CLOEXEC) != 0) {
        rc = -errno;
        close(out[0]);
        close(out[1]);
        return rc;
    }
    fcntl(out[1], F_SETPIPE_SZ, 1 << 20); /* room for what the server prints; best effort */
    fflush(NULL);                         /* nothing buffered is written twice */
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        rc = -errno;
        close(out[0]);
        close(out[1]);
        close(report[0]);
        close(report[1]);
        fprintf(stderr, "th_serve_start: fork: %s\n", strerror(-rc));
        return rc;
    }
    if (pid == 0) { /* only async-signal-safe calls until exec */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        sigaction(SIGPIPE, &dfl, NULL);
        sigaction(SIGTERM, &dfl, NULL);
        struct sched_param sp = {.sched_priority = 0}; /* no SCHED_FIFO from t_realtime() */
        sched_setscheduler(0, SCHED_OTHER, &sp);
        int in = open("/dev/null", O_RDONLY);
        if (in < 0 || dup2(in, 0) < 0 || dup2(out[1], 1) < 0)
            child_fail(report[1]);
        if (report[1] != 3 && (dup2(report[1], 3) < 0 || fcntl(3, F_SETFD, FD_CLOEXEC) < 0))
            child_fail(report[1]);
        close_range(4, ~0U, 0);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
            child_fail(3);
        if (getppid() != parent) /* the parent died before prctl */
            _exit(127);
        execv(sonde, (char *const *)argv);
        child_fail(3);
    }
    close(out[1]);
    close(report[1]);

    /* exec failed? (the report pipe closes on a successful exec) */
    int err = 0;
    ssize_t got = -1;
    for (int k = 0; k < 1000 && wait_fd(report[0], POLLIN, deadline) == 0; k++) {
        got = read(report[0], &err, sizeof(err));
        if (got >= 0 || errno != EINTR)
            break;
    }
    close(report[0]);
    if (got == (ssize_t)sizeof(err) && err) {
        fprintf(stderr, "th_serve_start: exec %s: %s\n", sonde, strerror(err));
        int status;
        reap_ms(pid, KILL_MS, &status);
        close(out[0]);
        return -err;
    }
    s->pid = pid;

    char line[MAX_LINE];
    rc = read_line(out[0], line, sizeof(line), deadline);
    if (rc == 0) {
        rc = parse_port(line);
        if (rc < 0)
            fprintf(stderr, "th_serve_start: first line of %s is not its URL: \"%s\"\n", sonde,
                    line);
    } else if (rc == -ECHILD) {
        int status;
        if (reap_ms(pid, 1000, &status) == 1) {
            s->pid = 0;
            fprintf(stderr, "th_serve_start: %s exited (status %d) before printing its URL\n",
                    sonde, exit_code(status));
        } else {
            fprintf(stderr, "th_serve_start: %s closed its stdout before printing its URL\n",
                    sonde);
        }
    } else {
        fprintf(stderr, "th_serve_start: no URL from %s: %s\n", sonde, strerror(-rc));
    }
    if (rc > 0) {
        s->port = rc;
        rc = -ETIMEDOUT;
        for (int k = 0; k < START_MS / PROBE_GAP_MS + 1 && th_now_ms() < deadline; k++) {
            int status;
            if (reap_ms(pid, 0, &status) != 0) {
                fprintf(stderr, "th_serve_start: %s exited (status %d) before answering /ca\n",
                        sonde, exit_code(status));
                s->pid = 0;
                rc = -ECHILD;
                break;
            }
            int ms = left_ms(deadline);
            struct th_resp r;
            if (th_request(s->port, "GET", "/ca", NULL, NULL, 0, ms < PROBE_MS ? ms : PROBE_MS,
                           &r) == 0) {
                th_resp_free(&r);
                rc = 0;
                break;
            }
            th_sleep_ms(PROBE_GAP_MS);
        }
        if (rc == -ETIMEDOUT)
            fprintf(stderr, "th_serve_start: no answer to GET /ca on port %d within %d ms\n",
                    s->port, START_MS);
    }
    if (rc < 0) {
        if (s->pid > 0)
            kill_and_reap(s->pid);
        close(out[0]);
        s->pid = 0;
        s->port = 0;
        return rc;
    }
    s->out = fdopen(out[0], "r");
    if (!s->out) {
        rc = -errno;
        close(out[0]);
        kill_and_reap(s->pid);
        s->pid = 0;
        s->port = 0;
        return rc;
    }
    return 0;
}

int th_serve_stop(struct th_serve *s)
{
    if (!s || s->pid <= 0)
        return -ECHILD;
    int status = 0, r;
    kill(s->pid, SIGTERM);
    r = reap_ms(s->pid, TERM_MS, &status);
    if (r == 0) {
        fprintf(stderr, "th_serve_stop: PID %d still there %d ms after SIGTERM: SIGKILL\n",
                (int)s->pid, TERM_MS);
        kill(s->pid, SIGKILL);
        r = reap_ms(s->pid, KILL_MS, &status);
        if (r == 0) {
            fprintf(stderr, "th_serve_stop: PID %d survived SIGKILL for %d ms\n", (int)s->pid,
                    KILL_MS);
            return -ETIMEDOUT;
        }
    }
    if (s->out) {
        fclose(s->out);
        s->out = NULL;
    }
    s->pid = 0;
    s->port = 0;
    return r < 0 ? -ECHILD : exit_code(status);
}

double th_metric(int port, const char *series)
{
    struct th_resp r = {0};
    double v = -1;
    size_t n = strlen(series);

    if (th_get(port, "/metrics", &r) == 0 && r.status == 200)
        for (const char *p = r.body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
            if (strncmp(p, series, n) == 0 && p[n] == ' ') {
                v = strtod(p + n + 1, NULL);
                break;
            }
    th_resp_free(&r);
    return v;
}
