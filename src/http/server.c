/*
 * libmicrohttpd glue; see server.h. One struct conn per request holds the request being
 * built, its body, and whether it is parked. Parked requests sit in a list that the "parker"
 * thread watches: it resumes each at its deadline, or all of them on sn_http_wake().
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/log.h"
#include "http/server.h"

struct conn {
    struct MHD_Connection *mc;
    struct sn_req req;
    struct sn_resp resp;
    unsigned char *body;
    size_t len, cap, limit;
    bool too_large, started, parked, was_parked;
    bool waited; /* has been parked: counted in sn_http's npolls until completed */
    char ctype[256], version[128], auth[512], accept[256], inm[128];
    char *path, *method;
    struct conn *next; /* in the parked list */
};

struct sn_http {
    struct MHD_Daemon *d;
    struct sn_http_opts o;
    int port;
    pthread_t parker;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct conn *parked; /* guarded by mu */
    bool wake, stopping;
    int npolls; /* connections ever parked and not yet completed (guarded by mu) */
    _Atomic uint64_t requests, by_class[6], nparked, too_large, bytes_out;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void add_cors(struct MHD_Response *r)
{
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    MHD_add_response_header(r, "Access-Control-Allow-Headers", "Content-type");
    MHD_add_response_header(r, "Access-Control-Allow-Methods", "POST, GET, DELETE, PUT");
}

static enum MHD_Result send_resp(struct sn_http *h, struct conn *c)
{
    struct sn_resp *rs = &c->resp;
    struct MHD_Response *r;
    enum MHD_Result ok;
    int status = rs->status ? rs->status : 500;

    r = MHD_create_response_from_buffer(rs->len, rs->body, MHD_RESPMEM_MUST_FREE);
    if (!r)
        return MHD_NO;
    rs->body = NULL; /* the response owns it now */
    add_cors(r);
    if (rs->ctype)
        MHD_add_response_header(r, "Content-Type", rs->ctype);
    if (rs->location)
        MHD_add_response_header(r, "Location", rs->location);
    if (rs->allow)
        MHD_add_response_header(r, "Allow", rs->allow);
    for (size_t i = 0; i < sizeof(rs->hdr) / sizeof(rs->hdr[0]) && rs->hdr[i][0]; i++)
        MHD_add_response_header(r, rs->hdr[i][0], rs->hdr[i][1]);
    ok = MHD_queue_response(c->mc, (unsigned)status, r);
    MHD_destroy_response(r);
    atomic_fetch_add(&h->requests, 1);
    atomic_fetch_add(&h->by_class[status / 100 % 6], 1);
    atomic_fetch_add(&h->bytes_out, rs->len);
    return ok;
}

static void copy_header(struct MHD_Connection *mc, const char *name, char *out, size_t len,
                        const char **field)
{
    const char *v = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, name);
    if (!v)
        return;
    snprintf(out, len, "%s", v);
    *field = out;
}

static enum MHD_Result add_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    return sn_req_add_param(cls, key, value ? value : "", false) == 0 ? MHD_YES : MHD_NO;
}

static bool is_loopback(struct MHD_Connection *mc)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (!sa)
        return false;
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

/* The request is complete: fills in the query's parameters and the body. Returns false when
 * the body cannot be taken (the response is then set). */
static bool finish_request(struct conn *c)
{
    struct sn_req *r = &c->req;
    const char *ct = r->ctype ? r->ctype : "";

    if (MHD_get_connection_values(c->mc, MHD_GET_ARGUMENT_KIND, add_query, r) < 0)
        return false;
    r->body = c->body;
    r->body_len = c->len;
    if (c->len == 0)
        return true;
    if (strncasecmp(ct, "multipart/form-data", 19) == 0) {
        sn_resp_empty(&c->resp, 415);
        return false;
    }
    return true; /* the handler reads the body as it needs (JSON, form, frames) */
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct sn_http *h = cls;
    struct conn *c = *con_cls;
    (void)version;

    if (!c) { /* the headers are in */
        const char *cl;
        c = calloc(1, sizeof(*c));
        if (!c)
            return MHD_NO;
        *con_cls = c;
        c->mc = mc;
        c->path = strdup(url);
        c->method = strdup(method);
        if (!c->path || !c->method)
            return MHD_NO;
        c->req.method = c->method;
        c->req.path = c->path;
        c->req.t0_ms = now_ms();
        c->req.loopback = is_loopback(mc);
        copy_header(mc, "Content-Type", c->ctype, sizeof(c->ctype), &c->req.ctype);
        copy_header(mc, "X-API-Version", c->version, sizeof(c->version), &c->req.api_version);
        copy_header(mc, "Authorization", c->auth, sizeof(c->auth), &c->req.auth);
        copy_header(mc, "Accept", c->accept, sizeof(c->accept), &c->req.accept);
        copy_header(mc, "If-None-Match", c->inm, sizeof(c->inm), &c->req.if_none_match);
        c->limit = h->o.limit ? h->o.limit(h->o.ctx, method, url) : 4096;
        cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > c->limit)
            c->too_large = true;
        return MHD_YES;
    }
    if (*upload_data_size) { /* a piece of the body */
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (c->too_large || c->len + n > c->limit) {
            c->too_large = true;
            return MHD_YES;
        }
        if (c->len + n + 1 > c->cap) {
            size_t cap = c->cap ? c->cap : 1024;
            while (cap < c->len + n + 1)
                cap *= 2;
            unsigned char *b = realloc(c->body, cap);
            if (!b)
                return MHD_NO;
            c->body = b;
            c->cap = cap;
        }
        memcpy(c->body + c->len, upload_data, n);
        c->len += n;
        c->body[c->len] = '\0';
        return MHD_YES;
    }
    if (c->too_large) {
        atomic_fetch_add(&h->too_large, 1);
        sn_resp_error(&c->resp, 413, "ECA_INVAL", "request body is larger than %zu bytes",
                      c->limit);
        return send_resp(h, c);
    }
    if (!c->started) {
        c->started = true;
        if (!finish_request(c))
            return send_resp(h, c);
    }
    c->was_parked = false;
    /* stopping: the handler's last call, which must answer (a long poll with what it has) */
    pthread_mutex_lock(&h->mu);
    c->req.final = h->stopping;
    pthread_mutex_unlock(&h->mu);
    c->req.now_ms = now_ms();
    c->resp.park_until_ms = 0;
    h->o.handler(h->o.ctx, &c->req, &c->resp);
    if (c->resp.park_until_ms > 0 && c->resp.status == 0) {
        pthread_mutex_lock(&h->mu);
        if (h->stopping) { /* the parker is gone: nothing would resume it */
            pthread_mutex_unlock(&h->mu);
            sn_resp_error(&c->resp, 503, "ECA_NORESOURCE", "the server is stopping; try again");
            return send_resp(h, c);
        }
        if (!c->waited) {
            c->waited = true;
            h->npolls++;
        }
        atomic_fetch_add(&h->nparked, 1);
        MHD_suspend_connection(mc);
        c->parked = true;
        c->next = h->parked;
        h->parked = c;
        pthread_cond_signal(&h->cv);
        pthread_mutex_unlock(&h->mu);
        return MHD_YES;
    }
    return send_resp(h, c);
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct conn *c = *con_cls;
    struct sn_http *h = cls;
    (void)mc;
    (void)toe;
    if (!c)
        return;
    if (c->waited) { /* sn_http_stop waits for these */
        pthread_mutex_lock(&h->mu);
        h->npolls--;
        pthread_cond_broadcast(&h->cv);
        pthread_mutex_unlock(&h->mu);
    }
    sn_req_fini(&c->req);
    sn_resp_fini(&c->resp);
    free(c->body);
    free(c->path);
    free(c->method);
    free(c);
    *con_cls = NULL;
}

/* Resumes parked requests whose deadline passed, or all when woken. */
static void *parker(void *arg)
{
    struct sn_http *h = arg;

    pthread_mutex_lock(&h->mu);
    for (;;) {
        int64_t now = now_ms(), next = INT64_MAX;
        bool all = h->wake || h->stopping;
        h->wake = false;
        for (struct conn **pp = &h->parked; *pp;) {
            struct conn *c = *pp;
            if (all || c->resp.park_until_ms <= now) {
                *pp = c->next;
                c->parked = false;
                c->was_parked = true;
                MHD_resume_connection(c->mc);
                continue;
            }
            if (c->resp.park_until_ms < next)
                next = c->resp.park_until_ms;
            pp = &c->next;
        }
        if (h->stopping)
            break;
        if (next == INT64_MAX) {
            pthread_cond_wait(&h->cv, &h->mu);
        } else {
            struct timespec ts = {next / 1000, (long)(next % 1000) * 1000000};
            pthread_cond_timedwait(&h->cv, &h->mu, &ts);
        }
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* "host:port", "[v6]:port" or ":port" into a socket address. */
static int parse_listen(const char *s, struct sockaddr_storage *ss)
{
    char host[256];
    const char *colon;
    char *end;
    long port;

    memset(ss, 0, sizeof(*ss));
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= sizeof(host))
            return -EINVAL;
        snprintf(host, sizeof(host), "%.*s", (int)(rb - s - 1), s + 1);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= sizeof(host))
            return -EINVAL;
        snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
    }
    port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || port < 0 || port > 65535)
        return -EINVAL;
    if (!host[0]) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_any;
        a->sin6_port = htons((uint16_t)port);
        return 0;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        return 0;
    }
    if (strcmp(host, "localhost") == 0) {
        a4->sin_family = AF_INET;
        a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a4->sin_port = htons((uint16_t)port);
        return 0;
    }
    return -EINVAL;
}

int sn_http_start(const struct sn_http_opts *o, struct sn_http **out)
{
    struct sockaddr_storage ss;
    struct sn_http *h;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    int rc = parse_listen(o->listen, &ss);

    if (rc < 0) {
        sn_log(SN_LOG_ERROR, "http", "bad listen address \"%s\" (want host:port)", o->listen);
        return rc;
    }
    if (ss.ss_family == AF_INET6)
        flags |= IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&ss)->sin6_addr)
                     ? MHD_USE_DUAL_STACK
                     : MHD_USE_IPv6;
    h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    h->o = *o;
    pthread_mutex_init(&h->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_REALTIME);
    pthread_cond_init(&h->cv, &ca);
    pthread_condattr_destroy(&ca);
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE,
                            (unsigned)(o->threads > 0 ? o->threads : 2),
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
    if (!h->d) {
        rc = errno ? -errno : -EADDRINUSE;
        sn_log(SN_LOG_ERROR, "http", "cannot listen on %s: %s", o->listen, strerror(-rc));
        pthread_mutex_destroy(&h->mu);
        pthread_cond_destroy(&h->cv);
        free(h);
        return rc;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : 0;
    if (pthread_create(&h->parker, NULL, parker, h) != 0) {
        MHD_stop_daemon(h->d);
        free(h);
        return -EAGAIN;
    }
    *out = h;
    return 0;
}

int sn_http_port(const struct sn_http *h)
{
    return h->port;
}

void sn_http_wake(struct sn_http *h)
{
    pthread_mutex_lock(&h->mu);
    if (h->parked) {
        h->wake = true;
        pthread_cond_signal(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
}

void sn_http_stats(const struct sn_http *h, struct sn_http_stats *out)
{
    out->requests = atomic_load(&h->requests);
    for (int i = 0; i < 6; i++)
        out->by_class[i] = atomic_load(&h->by_class[i]);
    out->parked = atomic_load(&h->nparked);
    out->too_large = atomic_load(&h->too_large);
    out->bytes_out = atomic_load(&h->bytes_out);
}

void sn_http_stop(struct sn_http *h)
{
    if (!h)
        return;
    MHD_quiesce_daemon(h->d);
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->parker, NULL);
    /* every long poll the parker resumed gets its answer sent before the connections close
     * (bounded: 5 s) */
    int64_t until = now_ms() + 5000;
    pthread_mutex_lock(&h->mu);
    while (h->npolls > 0 && now_ms() < until) {
        struct timespec ts = {until / 1000, (long)(until % 1000) * 1000000};
        pthread_cond_timedwait(&h->cv, &h->mu, &ts);
    }
    if (h->npolls > 0)
        sn_log(SN_LOG_WARN, "http", "%d long poll(s) not answered at the stop", h->npolls);
    pthread_mutex_unlock(&h->mu);
    MHD_stop_daemon(h->d);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
}
