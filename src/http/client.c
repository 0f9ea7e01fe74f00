/*
 * A small blocking HTTP/1.1 client (client.h): URL parsing, a connect bounded by poll(), one
 * request written whole, and the response read until it is complete (chunked or
 * Content-Length framing) or the server closes the connection. No third-party library.
 */
#include "core/clock.h"
#include "http/client.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int sn_url_parse(const char *url, struct sn_url *u)
{
    const char *p, *hend, *pstart;
    size_t hlen;

    memset(u, 0, sizeof(*u));
    if (strncasecmp(url, "http://", 7) != 0)
        return -EINVAL;
    p = url + 7;
    if (*p == '[') {
        hend = strchr(p, ']');
        if (!hend)
            return -EINVAL;
        hlen = (size_t)(hend - p - 1);
        if (hlen >= sizeof(u->host))
            return -ENAMETOOLONG;
        memcpy(u->host, p + 1, hlen);
        p = hend + 1;
    } else {
        hlen = strcspn(p, ":/?#");
        if (hlen >= sizeof(u->host))
            return -ENAMETOOLONG;
        memcpy(u->host, p, hlen);
        p += hlen;
    }
    if (u->host[0] == '\0')
        return -EINVAL;
    strcpy(u->port, "80");
    if (*p == ':') {
        size_t n = strspn(p + 1, "0123456789");
        long port;
        if (n == 0 || n > 5)
            return -EINVAL;
        port = strtol(p + 1, NULL, 10);
        if (port < 1 || port > 65535)
            return -EINVAL;
        snprintf(u->port, sizeof(u->port), "%ld", port);
        p += 1 + n;
    }
    if (*p != '\0' && *p != '/')
        return -EINVAL;
    pstart = p;
    hlen = strcspn(pstart, "?#");
    while (hlen > 0 && pstart[hlen - 1] == '/')
        hlen--;
    if (hlen >= sizeof(u->path))
        return -ENAMETOOLONG;
    memcpy(u->path, pstart, hlen);
    u->path[hlen] = '\0';
    return 0;
}

/* Waits for events on fd until the deadline; 0, or -ETIMEDOUT / -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (int tries = 0; tries < 1000000; tries++) {
        int64_t left = deadline - sn_mono_ms();
        struct pollfd pfd = {.fd = fd, .events = events};
        int n;
        if (left <= 0)
            return -ETIMEDOUT;
        n = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
    return -ETIMEDOUT;
}

static int connect_one(const struct addrinfo *ai, int64_t deadline)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    int err = 0, rc;
    socklen_t elen = sizeof(err);

    if (fd < 0)
        return -errno;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return fd;
    if (errno != EINPROGRESS) {
        rc = -errno;
        close(fd);
        return rc;
    }
    rc = wait_fd(fd, POLLOUT, deadline);
    if (rc == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
        rc = -errno;
    else if (rc == 0 && err != 0)
        rc = -err;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

static int dial(const struct sn_url *u, int64_t deadline)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    int rc = -ECONNREFUSED, fd;

    if (getaddrinfo(u->host, u->port, &hints, &res) != 0)
        return -EHOSTUNREACH;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = connect_one(ai, deadline);
        if (fd >= 0) {
            freeaddrinfo(res);
            return fd;
        }
        rc = fd;
        if (rc == -ETIMEDOUT)
            break;
    }
    freeaddrinfo(res);
    return rc;
}

static int send_all(int fd, const char *p, size_t n, int64_t deadline)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = wait_fd(fd, POLLOUT, deadline);
            if (rc < 0)
                return rc;
            continue;
        }
        return w < 0 ? -errno : -ECONNRESET;
    }
    return 0;
}

struct buf {
    char *p;
    size_t len, cap;
};

static int buf_add(struct buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *np;
        while (cap < b->len + n + 1)
            cap *= 2;
        np = realloc(b->p, cap);
        if (!np)
            return -ENOMEM;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/* Value of header name in the header block head (CRLF lines), or NULL; *vlen its length. */
static const char *find_header(const char *head, size_t hlen, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *p = memchr(head, '\n', hlen), *end = head + hlen;

    while (p && p < end) {
        const char *line = p + 1, *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            break;
        if ((size_t)(eol - line) > nlen && strncasecmp(line, name, nlen) == 0 &&
            line[nlen] == ':') {
            const char *v = line + nlen + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && isspace((unsigned char)ve[-1]))
                ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        p = eol;
    }
    return NULL;
}

/* Decodes a chunked body in raw[0..n). 1 when complete (into out), 0 when more is needed,
 * -EPROTO when malformed. */
static int dechunk(const char *raw, size_t n, struct buf *out)
{
    size_t i = 0;

    out->len = 0;
    for (;;) {
        const char *eol = memchr(raw + i, '\n', n - i);
        char *end;
        unsigned long long sz;
        if (!eol)
            return 0;
        if (!isxdigit((unsigned char)raw[i]))
            return -EPROTO;
        sz = strtoull(raw + i, &end, 16);
        if (end > eol || (*end != '\r' && *end != ';' && *end != '\n' && *end != ' '))
            return -EPROTO;
        if (sz > SN_HTTP_MAX_BODY)
            return -EMSGSIZE;
        i = (size_t)(eol - raw) + 1;
        if (sz == 0) {
            /* trailers until an empty line */
            for (;;) {
                const char *e = memchr(raw + i, '\n', n - i);
                if (!e)
                    return 0;
                if (e == raw + i || (e == raw + i + 1 && raw[i] == '\r'))
                    return 1;
                i = (size_t)(e - raw) + 1;
            }
        }
        if (n - i < sz + 2)
            return 0;
        if (buf_add(out, raw + i, (size_t)sz) < 0)
            return -ENOMEM;
        i += (size_t)sz;
        if (raw[i] == '\r' && raw[i + 1] == '\n')
            i += 2;
        else
            return -EPROTO;
    }
}

/* Looks at what was received: 1 and *r filled when the response is complete, 0 when more is
 * needed (at eof: the close ends a body without framing), <0 on error. */
static int parse(struct buf *in, bool eof, bool head_only, struct sn_http_resp *r)
{
    char *hend = in->p ? strstr(in->p, "\r\n\r\n") : NULL;
    size_t hlen, vlen;
    const char *v, *body;
    size_t blen;
    int major, minor, status;
    char sp;

    if (!hend) {
        if (in->len > SN_HTTP_MAX_HEAD)
            return -EMSGSIZE;
        return eof ? (in->len ? -EPROTO : -ECONNRESET) : 0;
    }
    hlen = (size_t)(hend - in->p) + 2;
    if (sscanf(in->p, "HTTP/%d.%d %3d%c", &major, &minor, &status, &sp) < 3 || major != 1 ||
        status < 100 || status > 999)
        return -EPROTO;
    body = hend + 4;
    blen = in->len - (size_t)(body - in->p);
    if (status >= 100 && status < 200 && status != 101) { /* interim: drop it */
        memmove(in->p, body, blen + 1);
        in->len = blen;
        return parse(in, eof, head_only, r);
    }
    r->status = status;
    r->ctype[0] = '\0';
    if ((v = find_header(in->p, hlen, "Content-Type", &vlen)) != NULL)
        snprintf(r->ctype, sizeof(r->ctype), "%.*s", (int)vlen, v);
    if (head_only || status == 204 || status == 304) {
        blen = 0;
    } else if ((v = find_header(in->p, hlen, "Transfer-Encoding", &vlen)) != NULL && vlen >= 7 &&
               strncasecmp(v + vlen - 7, "chunked", 7) == 0) {
        struct buf out = {0};
        int rc = dechunk(body, blen, &out);
        if (rc == 1) {
            if (buf_add(&out, "", 0) < 0) {
                free(out.p);
                return -ENOMEM;
            }
            r->body = out.p;
            r->len = out.len;
            return 1;
        }
        free(out.p);
        if (rc == 0 && eof)
            return -EPROTO;
        return rc;
    } else if ((v = find_header(in->p, hlen, "Content-Length", &vlen)) != NULL) {
        char *end;
        unsigned long long cl = strtoull(v, &end, 10);
        if (end == v || end != v + vlen)
            return -EPROTO;
        if (cl > SN_HTTP_MAX_BODY)
            return -EMSGSIZE;
        if (blen < cl)
            return eof ? -EPROTO : 0;
        blen = (size_t)cl;
    } else if (!eof) {
        return 0;
    }
    r->body = malloc(blen + 1);
    if (!r->body)
        return -ENOMEM;
    memcpy(r->body, body, blen);
    r->body[blen] = '\0';
    r->len = blen;
    return 1;
}

/* ---- a 2xx body handed to a sink as it comes (sn_http_request_stream) ------------------ */

#define CHUNK_LINE_MAX 1024 /* a chunk-size or trailer line longer than this is -EPROTO */

struct stream {
    sn_http_sink_fn sink;
    void *arg;
    bool on;                                 /* the head was 2xx: the body goes to sink */
    bool done;                               /* the body ended as its framing says */
    enum { F_LENGTH, F_CHUNKED, F_CLOSE } f; /* its framing */
    enum { C_SIZE, C_DATA, C_CRLF, C_TRAILER } c;
    uint64_t left; /* F_LENGTH: bytes still to come; C_DATA: of the current chunk */
    char line[CHUNK_LINE_MAX];
    size_t llen;
};

/* Appends byte ch to the line being read; 1 when it ends the line, 0, or -EPROTO. */
static int line_add(struct stream *st, char ch)
{
    if (st->llen >= sizeof(st->line) - 1)
        return -EPROTO;
    st->line[st->llen++] = ch;
    st->line[st->llen] = '\0';
    return ch == '\n';
}

/* Feeds n bytes of body; 0 (more to come or done: st->done), or <0 (-EPROTO, sink's error). */
static int stream_feed(struct stream *st, const char *p, size_t n)
{
    size_t i = 0;
    int rc;

    if (st->f != F_CHUNKED) {
        size_t take = n;
        if (st->f == F_LENGTH) {
            take = st->left < n ? (size_t)st->left : n;
            st->left -= take;
            st->done = st->left == 0;
        }
        return take ? st->sink(st->arg, p, take) : 0;
    }
    while (i < n && !st->done) {
        if (st->c == C_DATA) {
            size_t take = st->left < n - i ? (size_t)st->left : n - i;
            if ((rc = st->sink(st->arg, p + i, take)) < 0)
                return rc;
            i += take;
            if ((st->left -= take) == 0) {
                st->c = C_CRLF;
                st->llen = 0;
            }
            continue;
        }
        if ((rc = line_add(st, p[i++])) < 0)
            return rc;
        if (rc == 0)
            continue;
        if (st->c == C_CRLF) { /* the CRLF after a chunk's data */
            if (strcmp(st->line, "\r\n") != 0)
                return -EPROTO;
            st->c = C_SIZE;
        } else if (st->c == C_SIZE) {
            char *end;
            unsigned long long sz;
            if (!isxdigit((unsigned char)st->line[0]))
                return -EPROTO;
            sz = strtoull(st->line, &end, 16);
            if (*end != '\r' && *end != ';' && *end != '\n' && *end != ' ')
                return -EPROTO;
            st->left = sz;
            st->c = sz ? C_DATA : C_TRAILER;
        } else { /* C_TRAILER: trailers until an empty line */
            st->done = strcmp(st->line, "\r\n") == 0 || strcmp(st->line, "\n") == 0;
        }
        st->llen = 0;
    }
    return 0;
}

/* Once in holds a whole head (interim 1xx ones dropped): when it is a 2xx with a body, sets st
 * up from its framing, fills r's status and type, feeds st what followed the head (in is
 * emptied) and returns 1; 0 when the response is to be read whole (or the head is
 * incomplete); <0 on error. */
static int stream_start(struct buf *in, bool head_only, struct stream *st, struct sn_http_resp *r)
{
    char *hend = in->p ? strstr(in->p, "\r\n\r\n") : NULL;
    int major, minor, status;
    size_t hlen, vlen, blen;
    const char *v;
    char *body;

    if (!hend)
        return 0;
    if (sscanf(in->p, "HTTP/%d.%d %3d", &major, &minor, &status) < 3 || major != 1)
        return 0; /* parse() says why */
    hlen = (size_t)(hend - in->p) + 2;
    body = hend + 4;
    blen = in->len - (size_t)(body - in->p);
    if (status >= 100 && status < 200 && status != 101) { /* interim: drop it */
        memmove(in->p, body, blen + 1);
        in->len = blen;
        return stream_start(in, head_only, st, r);
    }
    if (status < 200 || status > 299 || status == 204 || head_only)
        return 0;
    r->status = status;
    r->ctype[0] = '\0';
    if ((v = find_header(in->p, hlen, "Content-Type", &vlen)) != NULL)
        snprintf(r->ctype, sizeof(r->ctype), "%.*s", (int)vlen, v);
    st->f = F_CLOSE;
    if ((v = find_header(in->p, hlen, "Transfer-Encoding", &vlen)) != NULL && vlen >= 7 &&
        strncasecmp(v + vlen - 7, "chunked", 7) == 0) {
        st->f = F_CHUNKED;
        st->c = C_SIZE;
    } else if ((v = find_header(in->p, hlen, "Content-Length", &vlen)) != NULL) {
        char *end;
        st->left = strtoull(v, &end, 10);
        if (end == v || end != v + vlen)
            return -EPROTO;
        st->f = F_LENGTH;
        st->done = st->left == 0;
    }
    st->on = true;
    in->len = 0;
    int rc = blen ? stream_feed(st, body, blen) : 0;
    return rc < 0 ? rc : 1;
}

static int build_request(struct buf *req, const struct sn_url *u, const char *method,
                         const char *path, const char *const *headers, const void *body,
                         size_t blen)
{
    char line[2048];
    bool v6 = strchr(u->host, ':') != NULL;
    bool needs_len =
        body || !strcmp(method, "POST") || !strcmp(method, "PUT") || !strcmp(method, "PATCH");
    int rc = 0;

    snprintf(line, sizeof(line), "%s %s HTTP/1.1\r\nHost: %s%s%s%s%s\r\nConnection: close\r\n",
             method, path, v6 ? "[" : "", u->host, v6 ? "]" : "", strcmp(u->port, "80") ? ":" : "",
             strcmp(u->port, "80") ? u->port : "");
    rc |= buf_add(req, line, strlen(line));
    for (size_t i = 0; headers && headers[i]; i++) {
        rc |= buf_add(req, headers[i], strlen(headers[i]));
        rc |= buf_add(req, "\r\n", 2);
    }
    if (needs_len) {
        snprintf(line, sizeof(line), "Content-Length: %zu\r\n", body ? blen : 0);
        rc |= buf_add(req, line, strlen(line));
    }
    rc |= buf_add(req, "\r\n", 2);
    if (body && blen)
        rc |= buf_add(req, body, blen);
    return rc ? -ENOMEM : 0;
}

/* One request; with st, a 2xx body streams to st's sink and timeout_ms bounds each wait. */
static int exchange(const struct sn_url *u, const char *method, const char *path,
                    const char *const *headers, const void *body, size_t blen, int timeout_ms,
                    struct stream *st, struct sn_http_resp *r)
{
    int64_t wait_ms = timeout_ms > 0 ? timeout_ms : 10000, deadline = sn_mono_ms() + wait_ms;
    struct buf req = {0}, in = {0};
    bool head_only = strcmp(method, "HEAD") == 0;
    int fd, rc;

    memset(r, 0, sizeof(*r));
    rc = build_request(&req, u, method, path, headers, body, blen);
    if (rc < 0)
        goto out;
    /* a host that is gone (a dead node on a real network drops the SYN) is given up on after
     * SN_HTTP_CONNECT_MS, not the whole timeout: the caller has another to try */
    fd = dial(u, wait_ms > SN_HTTP_CONNECT_MS ? sn_mono_ms() + SN_HTTP_CONNECT_MS : deadline);
    if (fd < 0) {
        rc = fd;
        goto out;
    }
    rc = send_all(fd, req.p, req.len, deadline);
    /* a server may answer (and close) before reading the whole request: read what it sent */
    for (;;) {
        char chunk[16384];
        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
        if (n > 0) {
            if (st)
                deadline = sn_mono_ms() + wait_ms; /* each wait bounded, not the exchange */
            if (st && st->on) {
                if ((rc = stream_feed(st, chunk, (size_t)n)) < 0 || st->done)
                    break;
                continue;
            }
            if (buf_add(&in, chunk, (size_t)n) < 0) {
                rc = -ENOMEM;
                break;
            }
            if (st && (rc = stream_start(&in, head_only, st, r)) != 0) { /* 1: streaming */
                if (rc < 0 || st->done)
                    break;
                continue;
            }
            if (in.len > (size_t)SN_HTTP_MAX_HEAD + SN_HTTP_MAX_BODY) {
                rc = -EMSGSIZE;
                break;
            }
            rc = parse(&in, false, head_only, r);
            if (rc != 0)
                break;
            continue;
        }
        if (n == 0) {
            if (st && st->on)
                rc = st->done || st->f == F_CLOSE ? 1 : -EPROTO; /* cut short */
            else
                rc = parse(&in, true, head_only, r);
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            rc = wait_fd(fd, POLLIN, deadline);
            if (rc < 0)
                break;
            continue;
        }
        rc = st && st->on ? -errno : in.len ? parse(&in, true, head_only, r) : -errno;
        if (rc == 0)
            rc = -ECONNRESET;
        break;
    }
    close(fd);
    if (rc == 1 || (st && st->on && st->done && rc == 0))
        rc = 0;
    else if (rc == 0)
        rc = -ECONNRESET;
out:
    free(req.p);
    free(in.p);
    if (rc < 0) {
        int status = st && st->on ? r->status : 0;
        sn_http_resp_free(r);
        r->status = status;
    }
    return rc;
}

int sn_http_request(const struct sn_url *u, const char *method, const char *path,
                    const char *const *headers, const void *body, size_t blen, int timeout_ms,
                    struct sn_http_resp *r)
{
    return exchange(u, method, path, headers, body, blen, timeout_ms, NULL, r);
}

int sn_http_request_stream(const struct sn_url *u, const char *method, const char *path,
                           const char *const *headers, const void *body, size_t blen,
                           int timeout_ms, sn_http_sink_fn sink, void *arg, struct sn_http_resp *r)
{
    struct stream st = {.sink = sink, .arg = arg};
    return exchange(u, method, path, headers, body, blen, timeout_ms, &st, r);
}

void sn_http_resp_free(struct sn_http_resp *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
    r->status = 0;
    r->ctype[0] = '\0';
}
