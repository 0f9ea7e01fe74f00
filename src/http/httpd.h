/*
 * The HTTP server: libmicrohttpd (epoll, a small thread pool) in front of one handler
 * function. It collects each request (body bounded by a size the handler's path sets), fills
 * a struct sn_req, calls the handler, and sends its struct sn_resp with CA's CORS headers.
 *
 * Long polls: a handler that answers "park until T" has its connection suspended, costing no
 * thread; sn_http_wake() (new data arrived) or the deadline resumes it and the handler is
 * called again with the same request (and its req->state). A parked request names what it
 * waits for (resp->park_key, e.g. an instrumentation) and only news of that wakes it; wakes
 * are coalesced: a woken request is resumed SN_HTTP_WAKE_MS after it was parked at the
 * earliest, so that a burst of news (a thousand hosts' frames of one second) costs its handler
 * a look every few milliseconds, not one per frame.
 *
 * Hostile clients (docs/operations.md): the server keeps at most max_conns connections and
 * max_conns_per_ip per client address (IPv6: per /64). A new connection over the global cap
 * closes the connection that has been idle longest (no request in progress: not yet sent a
 * whole request head, or between keep-alive requests); with none idle it is refused. A
 * connection must send a whole request head within header_timeout_s of connecting (or of the
 * end of its previous request), and a request's body must arrive within body_timeout_s of its
 * head, else it gets a 408 and is closed. A request's head is checked (and, through admit,
 * routed and authorized) before any of its body is read: a refusal is answered at once and the
 * body never read. Bodies in memory, all requests together, stay under max_body_memory
 * (reserved from the declared Content-Length, or the path's whole limit when chunked); over it,
 * 503 with Retry-After. Each refusal is counted (sn_http_stats) and logged, at most once per
 * 10 s per reason.
 */
#ifndef SN_HTTP_HTTPD_H
#define SN_HTTP_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "http/request.h"

struct sn_http; /* opaque */

typedef void (*sn_http_fn)(void *ctx, struct sn_req *req, struct sn_resp *resp);
/* The largest body accepted on path (bytes); larger ones get 413 before the handler. */
typedef size_t (*sn_http_limit_fn)(void *ctx, const char *method, const char *path);
/* Called once for a request that announces a body, when its head is in (method, path and the
 * headers of req are set; no parameters, no body yet): returns the largest body accepted, or
 * sets resp (a refusal: 401, 403, 404, ...) to answer at once without reading the body. */
typedef size_t (*sn_http_admit_fn)(void *ctx, struct sn_req *req, struct sn_resp *resp);

#define SN_HTTP_DEFAULT_MAX_CONNS        1024
#define SN_HTTP_DEFAULT_MAX_CONNS_PER_IP 128
#define SN_HTTP_DEFAULT_HEADER_TIMEOUT_S 10
#define SN_HTTP_DEFAULT_BODY_TIMEOUT_S   60
#define SN_HTTP_DEFAULT_MAX_BODY_MEMORY  (64u << 20)

struct sn_http_opts {
    const char *listen; /* "127.0.0.1:23181", "[::1]:8080", ":23181" (every address) */
    int threads;        /* worker threads (0: 2) */
    sn_http_fn handler;
    sn_http_limit_fn limit; /* used when admit is NULL */
    sn_http_admit_fn admit; /* NULL: every head is admitted, up to limit() */
    void *ctx;
    unsigned max_conns;        /* 0: SN_HTTP_DEFAULT_MAX_CONNS */
    unsigned max_conns_per_ip; /* 0: SN_HTTP_DEFAULT_MAX_CONNS_PER_IP */
    unsigned header_timeout_s; /* 0: SN_HTTP_DEFAULT_HEADER_TIMEOUT_S */
    unsigned body_timeout_s;   /* 0: SN_HTTP_DEFAULT_BODY_TIMEOUT_S */
    size_t max_body_memory;    /* 0: SN_HTTP_DEFAULT_MAX_BODY_MEMORY */
};

/* Why a connection or a request was refused or cut (sn_http_stats().refused[]). */
enum sn_http_refusal {
    SN_HTTP_R_GLOBAL_LIMIT, /* a new connection, at max_conns with none idle */
    SN_HTTP_R_PER_IP_LIMIT, /* a new connection, its address at max_conns_per_ip */
    SN_HTTP_R_IDLE_EVICTED, /* an idle connection closed to make room for a new one */
    SN_HTTP_R_SLOW_HEADERS, /* no whole request head within header_timeout_s: 408 */
    SN_HTTP_R_SLOW_BODY,    /* no whole body within body_timeout_s of the head: 408 */
    SN_HTTP_R_STALLED,      /* no progress for the longer deadline + 1 s (libmicrohttpd) */
    SN_HTTP_R_BODY_MEMORY,  /* bodies in memory would pass max_body_memory: 503 */
    SN_HTTP_R_BAD_REQUEST,  /* refused on its head by Sonde: %00, Content-Length, Transfer-Encoding
                             */
    SN_HTTP_R_PROTOCOL,     /* answered by libmicrohttpd itself (400, 413, 414, 431, 505...) */
    SN_HTTP_R_N
};
/* "global_limit", "per_ip_limit", ... (the label of /metrics); NULL past the end. */
const char *sn_http_refusal_name(int why);

/* Counters, read with sn_http_stats(). */
struct sn_http_stats {
    uint64_t requests;    /* answered */
    uint64_t by_class[6]; /* by status class: [1] 1xx ... [5] 5xx */
    uint64_t parked;      /* requests that waited (long polls) */
    uint64_t too_large;   /* 413s */
    uint64_t bytes_out;   /* response bodies */
    uint64_t refused[SN_HTTP_R_N];
    uint64_t connections; /* open now */
    uint64_t accepted;    /* connections accepted in all */
    uint64_t body_bytes;  /* memory reserved for request bodies now */
};

/* Starts serving. Returns 0 and *out, or a negative errno (-EADDRINUSE, -EINVAL for a bad
 * listen address) with a reason logged. Raises the soft RLIMIT_NOFILE as far as the
 * connection limit needs (and lowers the limit, saying so, when the hard one is too low). */
int sn_http_start(const struct sn_http_opts *o, struct sn_http **out);
/* The port actually bound (useful with port 0). */
int sn_http_port(const struct sn_http *h);
#define SN_HTTP_WAKE_MS 10 /* a woken request's least time parked (ms) */

/* News of key (NULL: of everything): resumes the parked requests waiting for it (or for any
 * news), at the earliest SN_HTTP_WAKE_MS after each was parked, so that their handlers look
 * again. Thread-safe; cheap when nothing waits for key. */
void sn_http_wake(struct sn_http *h, const char *key);
void sn_http_stats(const struct sn_http *h, struct sn_http_stats *out);
/* Stops accepting, answers parked requests (their handler is called once more), and frees. */
void sn_http_stop(struct sn_http *h);

#endif
