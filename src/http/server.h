/*
 * The HTTP server: libmicrohttpd (epoll, a small thread pool) in front of one handler
 * function. It collects each request (body bounded by a size the handler's path sets), fills
 * a struct sn_req, calls the handler, and sends its struct sn_resp with CA's CORS headers.
 *
 * Long polls: a handler that answers "park until T" has its connection suspended, costing no
 * thread; sn_http_wake() (new data arrived) or the deadline resumes it and the handler is
 * called again with the same request (and its req->state).
 */
#ifndef SN_HTTP_SERVER_H
#define SN_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "http/request.h"

struct sn_http; /* opaque */

typedef void (*sn_http_fn)(void *ctx, struct sn_req *req, struct sn_resp *resp);
/* The largest body accepted on path (bytes); larger ones get 413 before the handler. */
typedef size_t (*sn_http_limit_fn)(void *ctx, const char *method, const char *path);

struct sn_http_opts {
    const char *listen; /* "127.0.0.1:23181", "[::1]:8080", ":23181" (every address) */
    int threads;        /* worker threads (0: 2) */
    sn_http_fn handler;
    sn_http_limit_fn limit;
    void *ctx;
};

/* Counters, read with sn_http_stats(). */
struct sn_http_stats {
    uint64_t requests;    /* answered */
    uint64_t by_class[6]; /* by status class: [1] 1xx ... [5] 5xx */
    uint64_t parked;      /* requests that waited (long polls) */
    uint64_t too_large;   /* 413s */
    uint64_t bytes_out;   /* response bodies */
};

/* Starts serving. Returns 0 and *out, or a negative errno (-EADDRINUSE, -EINVAL for a bad
 * listen address) with a reason logged. */
int sn_http_start(const struct sn_http_opts *o, struct sn_http **out);
/* The port actually bound (useful with port 0). */
int sn_http_port(const struct sn_http *h);
/* Resumes every parked request so that its handler looks again. Thread-safe. */
void sn_http_wake(struct sn_http *h);
void sn_http_stats(const struct sn_http *h, struct sn_http_stats *out);
/* Stops accepting, answers parked requests (their handler is called once more), and frees. */
void sn_http_stop(struct sn_http *h);

#endif
