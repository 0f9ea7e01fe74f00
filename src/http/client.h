/*
 * A small blocking HTTP/1.1 client on plain sockets, for the command line client of the CA API
 * (`sonde list`, `sonde raw`...). One request per connection (Connection: close); every wait is
 * bounded by poll() against one deadline for the whole exchange. Responses are framed by
 * Transfer-Encoding: chunked, else Content-Length, else the connection's close.
 * sn_http_request_stream() hands a 2xx body to a callback as it comes (downloads of any size,
 * `sonde export`), its waits each bounded rather than the whole exchange.
 *
 *   struct sn_url u;
 *   if (sn_url_parse("http://127.0.0.1:23181", &u) < 0) ...;
 *   struct sn_http_resp r;
 *   if (sn_http_request(&u, "GET", "/ca", NULL, NULL, 0, 10000, &r) == 0) { ...;
 * sn_http_resp_free(&r); }
 */
#ifndef SN_HTTP_CLIENT_H
#define SN_HTTP_CLIENT_H

#include <stddef.h>

#define SN_HTTP_MAX_HEAD (64 * 1024)
#define SN_HTTP_MAX_BODY (256 * 1024 * 1024)

/* http://HOST[:PORT][/PATH]; HOST is a name, an IPv4 address or [IPv6]. */
struct sn_url {
    char host[256];  /* without brackets */
    char port[8];    /* "80" when absent */
    char path[1024]; /* the base path without a trailing '/' ("" when none) */
};

struct sn_http_resp {
    int status;      /* HTTP status */
    char ctype[128]; /* Content-Type ("" when absent) */
    char *body;      /* NUL-terminated (chunked decoded) */
    size_t len;      /* body length */
};

#define SN_HTTP_CONNECT_MS 5000 /* connecting takes at most this, whatever the timeout */

/* Returns 0, or -EINVAL (not http://, empty host, bad port) or -ENAMETOOLONG. */
int sn_url_parse(const char *url, struct sn_url *u);

/* One request to u's host and port for path (which should start with '/'); headers is a
 * NULL-terminated array of "Name: value" strings, or NULL. A body (may be NULL) is sent with
 * Content-Length; POST, PUT and PATCH always carry one. Returns 0 and fills *r (release with
 * sn_http_resp_free), or -errno: connect errors (-ECONNREFUSED...), -EHOSTUNREACH when the
 * name does not resolve, -ETIMEDOUT (no connection within SN_HTTP_CONNECT_MS or timeout_ms,
 * whichever is shorter, or no answer within timeout_ms), -ECONNRESET, -EPROTO (not HTTP/1.x),
 * -EMSGSIZE, -ENOMEM. */
int sn_http_request(const struct sn_url *u, const char *method, const char *path,
                    const char *const *headers, const void *body, size_t blen, int timeout_ms,
                    struct sn_http_resp *r);

/* Where a streamed body goes (sn_http_request_stream): called with each piece of the body in
 * order, chunked framing removed. Returns 0, or a negative errno that ends the request. */
typedef int (*sn_http_sink_fn)(void *arg, const void *p, size_t n);

/* sn_http_request(), but the body of a 2xx response (there is one unless HEAD, 204) goes to
 * sink as it arrives, of any size, instead of into r->body (then NULL, r->len 0); and
 * timeout_ms bounds each wait (to connect, to send, for the next bytes), not the whole
 * exchange, so a long download goes on while bytes come. Other responses are read whole into
 * *r, as by sn_http_request(). Returns 0 when the body ended as its framing says; else -errno
 * as sn_http_request() does, -EPROTO when the connection closed before the body's end (its
 * Content-Length or last chunk) after sink had what came, or sink's error. After a failure
 * that followed a 2xx head, r->status still holds that status (r->body NULL). */
int sn_http_request_stream(const struct sn_url *u, const char *method, const char *path,
                           const char *const *headers, const void *body, size_t blen,
                           int timeout_ms, sn_http_sink_fn sink, void *arg, struct sn_http_resp *r);

void sn_http_resp_free(struct sn_http_resp *r);

#endif
