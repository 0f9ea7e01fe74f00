/*
 * libmicrohttpd glue; see server.h. One struct conn per request holds the request being
 * built, its body, and whether it is parked. Parked requests sit in a list that the "parker"
 * thread watches: it resumes each at its deadline, or all of them on sn_http_wake().
 *
 * One struct sock per connection (libmicrohttpd's socket context, from its connection
 * notifications) holds what the limits of server.h need: the client's address bucket, and
 * the connection's state, in one of three lists ordered by when it entered them:
 *   idle     no request in progress (waiting for a head): header deadline, evictable
 *   reading  a head in, its body not yet: body deadline
 *   working  the handler has it (or it is parked, or its response is being sent)
 * The accept policy (before libmicrohttpd creates the connection) applies the caps, closing
 * the oldest idle connection when the global one is reached; the "sweeper" thread applies the
 * deadlines. Both close a connection by shutdown(2) of its socket, under conn_mu, which the
 * close notification also takes: libmicrohttpd closes the descriptor only after that
 * notification, so the descriptor shut down is always still the connection's.
 *
 * libmicrohttpd cannot answer a request whose body is being received; where Sonde must refuse
 * one then (a chunked body past its limit), it writes the reply on the socket itself (nothing
 * else is being written then) and has libmicrohttpd close the connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "core/log.h"
#include "core/clock.h"
#include "http/httpd.h"

#define SWEEP_MS       250         /* how often deadlines are checked */
#define LOG_EVERY_MS   10000       /* at most one log line per refusal reason in this time */
#define TRIM_MIN_BYTES (1u << 20)  /* malloc_trim() after freeing a body this big */
#define MMAP_THRESHOLD (4u << 20)  /* bodies this big and larger get their own mapping */
#define HEAP_KEEP      (64u << 20) /* free memory an arena keeps on its top before trimming */
#define FD_SPARE       256         /* descriptors kept for everything but connections */

enum sock_state { S_IDLE, S_READING, S_WORKING, S_CLOSING };

struct ipcount {
    struct ipcount *next;  /* in its hash bucket */
    unsigned char key[17]; /* family tag, then the address (IPv6: its /64) */
    unsigned n;            /* connections open from it */
};

struct sock {
    struct sock *prev, *next; /* in the list of its state (none when S_CLOSING) */
    struct MHD_Connection *mc;
    int fd;
    enum sock_state state;
    int64_t since_ms;    /* CLOCK_MONOTONIC: when it entered its state */
    struct ipcount *ipc; /* its address' count (NULL: not counted) */
    bool bad_target;     /* the current request's target holds %00 */
    char ip[INET6_ADDRSTRLEN];
};

struct sock_list {
    struct sock *head, *tail; /* oldest first */
};

struct conn {
    struct MHD_Connection *mc;
    struct sock *sock; /* its connection's (may be NULL: untracked) */
    struct sn_req req;
    struct sn_resp resp;
    unsigned char *body;
    size_t len, cap, limit;
    size_t reserved; /* of the body budget, held until the body is freed */
    bool chunked, started, parked, was_parked;
    bool woken;        /* parked, and news came: resume at parked_ms + SN_HTTP_WAKE_MS */
    int64_t parked_ms; /* when it was last parked (CLOCK_REALTIME, as park_until_ms) */
    bool waited;       /* has been parked: counted in sn_http's npolls until completed */
    char ctype[256], version[128], auth[512], accept[256], inm[128], cenc[64];
    char *path, *method;
    struct conn *next; /* in the parked list */
};

#define IP_BUCKETS 1024

struct sn_http {
    struct MHD_Daemon *d;
    struct sn_http_opts o;
    int port;
    _Atomic bool closing; /* sn_http_stop() began: on_accept() refuses */
    pthread_t parker, sweeper;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct conn *parked; /* guarded by mu */
    bool stopping;
    int npolls; /* connections ever parked and not yet completed (guarded by mu) */
    /* connections, guarded by conn_mu */
    pthread_mutex_t conn_mu;
    pthread_cond_t sweep_cv;
    bool sweep_stop;
    struct sock_list idle, reading, working;
    unsigned nconns, nclosing;
    struct ipcount *ips[IP_BUCKETS];
    int64_t header_ms, body_ms;
    _Atomic uint64_t requests, by_class[6], nparked, too_large, bytes_out;
    _Atomic uint64_t refused[SN_HTTP_R_N], body_bytes, nconns_seen;
    _Atomic int64_t log_ms[SN_HTTP_R_N];
    _Atomic uint64_t logged[SN_HTTP_R_N];
};

static const char *const refusal_names[SN_HTTP_R_N] = {
    "global_limit", "per_ip_limit", "idle_evicted", "slow_headers", "slow_body",
    "stalled",      "body_memory",  "bad_request",  "protocol",
};

const char *sn_http_refusal_name(int why)
{
    return why >= 0 && why < SN_HTTP_R_N ? refusal_names[why] : NULL;
}

/* Logs the n-th refusal for why, at most once per LOG_EVERY_MS per reason (the line says how
 * many there were since the last one). who: the client's address, or NULL. */
static void refusal_log(struct sn_http *h, int why, uint64_t n, const char *who)
{
    int64_t now = sn_mono_ms(), last = atomic_load(&h->log_ms[why]);

    if (last && now - last < LOG_EVERY_MS)
        return;
    if (!atomic_compare_exchange_strong(&h->log_ms[why], &last, now))
        return;
    uint64_t before = atomic_exchange(&h->logged[why], n);
    sn_log(SN_LOG_WARN, "http",
           "refused (%s): %" PRIu64 " since the last report, %" PRIu64 " in all%s%s",
           refusal_names[why], n - before, n, who && who[0] ? "; the last from " : "",
           who && who[0] ? who : "");
}

/* Counts a refusal; returns the count. Count before the client can see the refusal (the
 * answer or the close), so a client that reads /metrics next finds it counted. */
static uint64_t refusal_count(struct sn_http *h, int why)
{
    return atomic_fetch_add(&h->refused[why], 1) + 1;
}

/* Counts a refusal and logs it. */
static void refusal(struct sn_http *h, int why, const char *who)
{
    refusal_log(h, why, refusal_count(h, why), who);
}

/* ---- connections ------------------------------------------------------------------------- */

static void list_add(struct sock_list *l, struct sock *s)
{
    s->next = NULL;
    s->prev = l->tail;
    if (l->tail)
        l->tail->next = s;
    else
        l->head = s;
    l->tail = s;
}

static void list_del(struct sock_list *l, struct sock *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        l->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        l->tail = s->prev;
    s->prev = s->next = NULL;
}

static struct sock_list *list_of(struct sn_http *h, enum sock_state st)
{
    return st == S_IDLE      ? &h->idle
           : st == S_READING ? &h->reading
           : st == S_WORKING ? &h->working
                             : NULL;
}

/* Moves s to state st (a closing connection stays closing). conn_mu held. */
static void sock_set(struct sn_http *h, struct sock *s, enum sock_state st)
{
    if (s->state == S_CLOSING)
        return;
    list_del(list_of(h, s->state), s);
    s->state = st;
    s->since_ms = sn_mono_ms();
    list_add(list_of(h, st), s);
}

static void set_state(struct sn_http *h, struct sock *s, enum sock_state st)
{
    if (!s)
        return;
    pthread_mutex_lock(&h->conn_mu);
    sock_set(h, s, st);
    pthread_mutex_unlock(&h->conn_mu);
}

/* Closes s's connection from outside libmicrohttpd: an optional last word (a whole HTTP
 * response), then shutdown(2); libmicrohttpd sees the end of the stream and closes it.
 * conn_mu held. */
static void sock_cut(struct sn_http *h, struct sock *s, const char *reply)
{
    if (s->state == S_CLOSING)
        return;
    list_del(list_of(h, s->state), s);
    s->state = S_CLOSING;
    h->nclosing++;
    if (reply)
        (void)!send(s->fd, reply, strlen(reply), MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(s->fd, SHUT_RDWR);
}

static const char reply_408[] = "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                                "Content-Length: 0\r\n\r\n";

/* The client's address bucket: IPv4 (and IPv4-mapped IPv6) by address, IPv6 by /64. */
static bool ip_key(const struct sockaddr *sa, unsigned char key[17], char *text, size_t len)
{
    memset(key, 0, 17);
    if (!sa)
        return false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        key[0] = 4;
        memcpy(key + 1, &a->sin_addr, 4);
        if (text)
            inet_ntop(AF_INET, &a->sin_addr, text, (socklen_t)len);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
            key[0] = 4;
            memcpy(key + 1, a->sin6_addr.s6_addr + 12, 4);
            if (text)
                inet_ntop(AF_INET, a->sin6_addr.s6_addr + 12, text, (socklen_t)len);
        } else {
            key[0] = 6;
            memcpy(key + 1, a->sin6_addr.s6_addr, 8);
            if (text)
                inet_ntop(AF_INET6, &a->sin6_addr, text, (socklen_t)len);
        }
        return true;
    }
    return false;
}

static unsigned ip_hash(const unsigned char key[17])
{
    uint32_t x = 2166136261u;
    for (int i = 0; i < 17; i++)
        x = (x ^ key[i]) * 16777619u;
    return x % IP_BUCKETS;
}

/* The count of key, or NULL (create: a new one at 0, NULL only without memory). conn_mu. */
static struct ipcount *ip_find(struct sn_http *h, const unsigned char key[17], bool create)
{
    unsigned b = ip_hash(key);
    for (struct ipcount *p = h->ips[b]; p; p = p->next)
        if (memcmp(p->key, key, 17) == 0)
            return p;
    if (!create)
        return NULL;
    struct ipcount *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    memcpy(p->key, key, 17);
    p->next = h->ips[b];
    h->ips[b] = p;
    return p;
}

static void ip_release(struct sn_http *h, struct ipcount *ipc)
{
    if (!ipc || --ipc->n > 0)
        return;
    for (struct ipcount **pp = &h->ips[ip_hash(ipc->key)]; *pp; pp = &(*pp)->next)
        if (*pp == ipc) {
            *pp = ipc->next;
            free(ipc);
            return;
        }
}

/* libmicrohttpd's accept policy: the caps, before the connection exists. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    struct sn_http *h = cls;
    unsigned char key[17];
    char who[INET6_ADDRSTRLEN] = "";
    int why = -1;
    (void)addrlen;

    if (atomic_load(&h->closing))
        return MHD_NO; /* stopping: no new connection (in place of MHD_quiesce_daemon()) */
    ip_key(addr, key, who, sizeof(who));
    pthread_mutex_lock(&h->conn_mu);
    struct ipcount *ipc = ip_find(h, key, false);
    if (ipc && ipc->n >= h->o.max_conns_per_ip) {
        why = SN_HTTP_R_PER_IP_LIMIT;
    } else if (h->nconns - h->nclosing >= h->o.max_conns) {
        struct sock *old = h->idle.head;
        if (old) {
            uint64_t n = refusal_count(h, SN_HTTP_R_IDLE_EVICTED);
            snprintf(who, sizeof(who), "%s", old->ip);
            sock_cut(h, old, NULL);
            pthread_mutex_unlock(&h->conn_mu);
            refusal_log(h, SN_HTTP_R_IDLE_EVICTED, n, who);
            return MHD_YES;
        }
        why = SN_HTTP_R_GLOBAL_LIMIT;
    }
    pthread_mutex_unlock(&h->conn_mu);
    if (why < 0)
        return MHD_YES;
    refusal(h, why, who);
    return MHD_NO;
}

/* libmicrohttpd's connection notifications: a struct sock per connection. */
static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode what)
{
    struct sn_http *h = cls;
    struct sock *s = *socket_context;

    if (what == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fi =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *ai =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        unsigned char key[17];
        if (!fi || !(s = calloc(1, sizeof(*s))))
            return; /* not tracked: no limits apply to it */
        s->mc = mc;
        s->fd = fi->connect_fd;
        bool keyed = ip_key(ai ? ai->client_addr : NULL, key, s->ip, sizeof(s->ip));
        pthread_mutex_lock(&h->conn_mu);
        if (keyed && (s->ipc = ip_find(h, key, true)))
            s->ipc->n++;
        h->nconns++;
        s->state = S_IDLE;
        s->since_ms = sn_mono_ms();
        list_add(&h->idle, s);
        pthread_mutex_unlock(&h->conn_mu);
        atomic_fetch_add(&h->nconns_seen, 1);
        *socket_context = s;
        return;
    }
    if (!s)
        return;
    pthread_mutex_lock(&h->conn_mu);
    if (s->state == S_CLOSING)
        h->nclosing--;
    else
        list_del(list_of(h, s->state), s);
    ip_release(h, s->ipc);
    h->nconns--;
    pthread_mutex_unlock(&h->conn_mu);
    free(s);
    *socket_context = NULL;
}

static struct sock *sock_of(struct MHD_Connection *mc)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Called by libmicrohttpd with each request's raw target, before it is decoded: notes a %00
 * (which decoding would turn into a NUL that cuts the path short). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *mc)
{
    struct sock *s = sock_of(mc);
    (void)cls;
    if (s)
        s->bad_target = sn_target_has_nul(uri);
    return NULL;
}

/* libmicrohttpd's messages, at DEBUG (sub "mhd": SN_DEBUG=mhd shows them). Every answer it
 * makes itself (a malformed or oversized head, an unsupported version, a bad chunk...) says
 * "HTTP response code is N" here, the one place that sees all of them (some come before any
 * callback that names the connection): counted as requests and as "protocol" refusals. */
__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct sn_http *h = cls;
    char msg[512];
    const char *code;
    size_t n;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    if ((code = strstr(msg, "HTTP response code is "))) {
        unsigned status = (unsigned)strtoul(code + 22, NULL, 10);
        if (status >= 100 && status < 600) {
            atomic_fetch_add(&h->requests, 1);
            atomic_fetch_add(&h->by_class[status / 100], 1);
            refusal(h, SN_HTTP_R_PROTOCOL, NULL);
        }
    }
    if (sn_log_on(SN_LOG_DEBUG, "mhd"))
        sn_log(SN_LOG_DEBUG, "mhd", "%s", msg);
}

/* Closes connections past their deadlines, every SWEEP_MS. */
/* Cuts (408) the connections of list l, oldest first, that entered it before since_ms,
 * counting each as reason. Called and returns with conn_mu held; drops it to count. */
static void cut_late(struct sn_http *h, struct sock_list *l, int64_t since_ms,
                     enum sn_http_refusal reason)
{
    struct sock *s;

    while ((s = l->head) && s->since_ms <= since_ms) {
        char who[INET6_ADDRSTRLEN];
        snprintf(who, sizeof(who), "%s", s->ip);
        uint64_t n = refusal_count(h, reason);
        sock_cut(h, s, reply_408);
        pthread_mutex_unlock(&h->conn_mu);
        refusal_log(h, reason, n, who);
        pthread_mutex_lock(&h->conn_mu);
    }
}

static void *sweeper(void *arg)
{
    struct sn_http *h = arg;

    pthread_mutex_lock(&h->conn_mu);
    while (!h->sweep_stop) {
        int64_t now = sn_mono_ms();
        cut_late(h, &h->idle, now - h->header_ms, SN_HTTP_R_SLOW_HEADERS);
        cut_late(h, &h->reading, now - h->body_ms, SN_HTTP_R_SLOW_BODY);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += SWEEP_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&h->sweep_cv, &h->conn_mu, &ts);
    }
    pthread_mutex_unlock(&h->conn_mu);
    return NULL;
}

/* ---- requests ---------------------------------------------------------------------------- */

static void add_cors(struct MHD_Response *r)
{
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    MHD_add_response_header(r, "Access-Control-Allow-Headers", "Content-type");
    MHD_add_response_header(r, "Access-Control-Allow-Methods", "POST, GET, DELETE, PUT");
}

/* Frees the request's body and gives its reservation back. */
static void body_free(struct sn_http *h, struct conn *c)
{
    size_t cap = c->cap;
    free(c->body);
    c->body = NULL;
    c->len = c->cap = 0;
    c->req.body = NULL;
    c->req.body_len = 0;
    if (c->reserved) {
        atomic_fetch_sub(&h->body_bytes, c->reserved);
        c->reserved = 0;
    }
    if (cap >= TRIM_MIN_BYTES)
        malloc_trim(0);
}

static enum MHD_Result send_resp(struct sn_http *h, struct conn *c)
{
    struct sn_resp *rs = &c->resp;
    struct MHD_Response *r;
    enum MHD_Result ok;
    int status = rs->status ? rs->status : 500;

    body_free(h, c); /* the answer is final: the body is no longer needed */
    set_state(h, c->sock, S_WORKING);
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

static enum MHD_Result frame_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    (void)kind;
    sn_framing_add(cls, key, value);
    return MHD_YES;
}

/* Refuses the request from its head, before its body: answers and counts. */
static enum MHD_Result refuse_head(struct sn_http *h, struct conn *c, int status, int why,
                                   const char *msg)
{
    sn_resp_error(&c->resp, status, status == 503 ? "ECA_NORESOURCE" : "ECA_INVAL", "%s", msg);
    if (status == 503) {
        c->resp.hdr[0][0] = "Retry-After";
        c->resp.hdr[0][1] = "1";
    }
    refusal(h, why, c->sock ? c->sock->ip : NULL);
    return send_resp(h, c);
}

/* The head is in: checks its framing, has it routed and authorized (admit) when a body
 * follows, and reserves memory for that body. Returns MHD_YES with nothing queued to go on
 * reading, else the result of the refusal queued. */
static enum MHD_Result on_head(struct sn_http *h, struct conn *c)
{
    struct sn_framing f = {0};
    const char *why;
    int st;

    MHD_get_connection_values(c->mc, MHD_HEADER_KIND, frame_header, &f);
    if (c->sock && c->sock->bad_target)
        return refuse_head(h, c, 400, SN_HTTP_R_BAD_REQUEST,
                           "the request target holds an encoded NUL (%00)");
    if ((st = sn_framing_check(&f, &why)) != 0)
        return refuse_head(h, c, st, SN_HTTP_R_BAD_REQUEST, why);
    c->chunked = f.te_chunked;
    if (!c->chunked && f.cl == 0) {
        set_state(h, c->sock, S_WORKING); /* no body to wait for */
        return MHD_YES;
    }
    if (h->o.admit)
        c->limit = h->o.admit(h->o.ctx, &c->req, &c->resp);
    else
        c->limit = h->o.limit ? h->o.limit(h->o.ctx, c->method, c->path) : 4096;
    if (c->resp.status) /* refused on its head (401, 403, 404, ...) */
        return send_resp(h, c);
    if (!c->chunked && f.cl > c->limit) {
        atomic_fetch_add(&h->too_large, 1);
        sn_resp_error(&c->resp, 413, "ECA_INVAL", "request body is larger than %zu bytes",
                      c->limit);
        return send_resp(h, c);
    }
    size_t need = (c->chunked ? c->limit : (size_t)f.cl) + 1;
    uint64_t was = atomic_fetch_add(&h->body_bytes, need);
    if (was + need > h->o.max_body_memory) {
        atomic_fetch_sub(&h->body_bytes, need);
        return refuse_head(h, c, 503, SN_HTTP_R_BODY_MEMORY,
                           "request bodies in memory are at their limit; retry shortly");
    }
    c->reserved = need;
    if (!c->chunked) { /* the whole body in one allocation, no doubling */
        c->body = malloc(need);
        if (!c->body)
            return MHD_NO;
        c->cap = need;
    }
    return MHD_YES;
}

/* A piece of the body. Returns MHD_NO to close the connection. */
static enum MHD_Result on_body(struct sn_http *h, struct conn *c, const char *data, size_t n)
{
    if (n > c->limit - c->len) { /* only a chunked body can run past its limit */
        char reply[256];
        atomic_fetch_add(&h->too_large, 1);
        atomic_fetch_add(&h->requests, 1);
        atomic_fetch_add(&h->by_class[4], 1);
        snprintf(reply, sizeof(reply),
                 "HTTP/1.1 413 Content Too Large\r\nConnection: close\r\n"
                 "Content-Length: 0\r\n\r\n");
        const union MHD_ConnectionInfo *fi =
            MHD_get_connection_info(c->mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (fi) /* this thread owns the socket, and nothing is being written on it */
            (void)!send(fi->connect_fd, reply, strlen(reply), MSG_NOSIGNAL | MSG_DONTWAIT);
        body_free(h, c);
        return MHD_NO;
    }
    if (c->len + n + 1 > c->cap) { /* chunked: grow, within the reservation */
        size_t cap = c->cap ? c->cap : 1024;
        while (cap < c->len + n + 1)
            cap *= 2;
        if (cap > c->reserved)
            cap = c->reserved;
        unsigned char *b = realloc(c->body, cap);
        if (!b)
            return MHD_NO;
        c->body = b;
        c->cap = cap;
    }
    memcpy(c->body + c->len, data, n);
    c->len += n;
    c->body[c->len] = '\0';
    return MHD_YES;
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
        c = calloc(1, sizeof(*c));
        if (!c)
            return MHD_NO;
        *con_cls = c;
        c->mc = mc;
        c->sock = sock_of(mc);
        set_state(h, c->sock, S_READING);
        c->path = strdup(url);
        c->method = strdup(method);
        if (!c->path || !c->method)
            return MHD_NO;
        c->req.method = c->method;
        c->req.path = c->path;
        c->req.t0_ms = sn_now_ms();
        c->req.loopback = is_loopback(mc);
        copy_header(mc, "Content-Type", c->ctype, sizeof(c->ctype), &c->req.ctype);
        copy_header(mc, "X-API-Version", c->version, sizeof(c->version), &c->req.api_version);
        copy_header(mc, "Authorization", c->auth, sizeof(c->auth), &c->req.auth);
        copy_header(mc, "Accept", c->accept, sizeof(c->accept), &c->req.accept);
        copy_header(mc, "If-None-Match", c->inm, sizeof(c->inm), &c->req.if_none_match);
        copy_header(mc, "Content-Encoding", c->cenc, sizeof(c->cenc), &c->req.cenc);
        c->req.proxied =
            MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "X-Sonde-Proxied") != NULL;
        return on_head(h, c);
    }
    if (*upload_data_size) { /* a piece of the body */
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        return on_body(h, c, upload_data, n);
    }
    if (!c->started) {
        c->started = true;
        set_state(h, c->sock, S_WORKING);
        if (!finish_request(c))
            return send_resp(h, c);
    }
    c->was_parked = false;
    /* stopping: the handler's last call, which must answer (a long poll with what it has) */
    pthread_mutex_lock(&h->mu);
    c->req.final = h->stopping;
    pthread_mutex_unlock(&h->mu);
    c->req.now_ms = sn_now_ms();
    c->resp.park_until_ms = 0;
    c->resp.park_key[0] = '\0';
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
        c->woken = false;
        c->parked_ms = sn_now_ms();
        c->next = h->parked;
        h->parked = c;
        pthread_cond_signal(&h->cv);
        pthread_mutex_unlock(&h->mu);
        return MHD_YES;
    }
    return send_resp(h, c);
}

/* A request ended (answered, or its connection closed). */
static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct sn_http *h = cls;
    struct conn *c = *con_cls;
    struct sock *s = sock_of(mc);

    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        set_state(h, s, S_IDLE);
    if (!c) /* answered by libmicrohttpd (counted by on_mhd_log) or abandoned */
        return;
    if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED)
        refusal(h, SN_HTTP_R_STALLED, s ? s->ip : NULL);
    if (c->waited) { /* sn_http_stop waits for these */
        pthread_mutex_lock(&h->mu);
        h->npolls--;
        pthread_cond_broadcast(&h->cv);
        pthread_mutex_unlock(&h->mu);
    }
    sn_req_fini(&c->req);
    sn_resp_fini(&c->resp);
    body_free(h, c);
    free(c->path);
    free(c->method);
    free(c);
    *con_cls = NULL;
}

/* ---- threads and lifecycle --------------------------------------------------------------- */

/* Resumes parked requests whose deadline passed or whose news came (coalesced), or all when
 * stopping. */
static void *parker(void *arg)
{
    struct sn_http *h = arg;

    pthread_mutex_lock(&h->mu);
    for (;;) {
        int64_t now = sn_now_ms(), next = INT64_MAX;
        for (struct conn **pp = &h->parked; *pp;) {
            struct conn *c = *pp;
            int64_t at = c->resp.park_until_ms;
            if (c->woken && c->parked_ms + SN_HTTP_WAKE_MS < at)
                at = c->parked_ms + SN_HTTP_WAKE_MS;
            if (h->stopping || at <= now) {
                *pp = c->next;
                c->parked = false;
                c->was_parked = true;
                MHD_resume_connection(c->mc);
                continue;
            }
            if (at < next)
                next = at;
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

/* Raises the soft limit on descriptors to what want connections need, as far as the hard
 * limit allows; returns how many connections fit. */
static unsigned fit_nofile(unsigned want)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)want + FD_SPARE;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return want;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0 && getrlimit(RLIMIT_NOFILE, &rl) != 0)
            return want;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
        return rl.rlim_cur > FD_SPARE + 16 ? (unsigned)(rl.rlim_cur - FD_SPARE) : 16;
    return want;
}

int sn_http_start(const struct sn_http_opts *o, struct sn_http **out)
{
    struct sockaddr_storage ss;
    struct sn_http *h;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    int rc = parse_listen(o->listen, &ss);
    unsigned threads = (unsigned)(o->threads > 0 ? o->threads : 2), hard;

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
    if (!h->o.max_conns)
        h->o.max_conns = SN_HTTP_DEFAULT_MAX_CONNS;
    if (!h->o.max_conns_per_ip)
        h->o.max_conns_per_ip = SN_HTTP_DEFAULT_MAX_CONNS_PER_IP;
    if (!h->o.header_timeout_s)
        h->o.header_timeout_s = SN_HTTP_DEFAULT_HEADER_TIMEOUT_S;
    if (!h->o.body_timeout_s)
        h->o.body_timeout_s = SN_HTTP_DEFAULT_BODY_TIMEOUT_S;
    if (!h->o.max_body_memory)
        h->o.max_body_memory = SN_HTTP_DEFAULT_MAX_BODY_MEMORY;
    h->header_ms = (int64_t)h->o.header_timeout_s * 1000;
    h->body_ms = (int64_t)h->o.body_timeout_s * 1000;
    /* libmicrohttpd's own cap, split between its threads, leaves room for connections being
     * closed to make way for new ones */
    hard = h->o.max_conns + h->o.max_conns / 4 + 4 * threads;
    unsigned fit = fit_nofile(hard);
    if (fit < hard) {
        unsigned was = h->o.max_conns;
        h->o.max_conns = fit * 4 / 5 > 8 ? fit * 4 / 5 : 8;
        hard = fit;
        sn_log(SN_LOG_WARN, "http",
               "only %u connections fit the descriptor limit (ulimit -n): serving at most %u, "
               "not %u",
               fit, h->o.max_conns, was);
    }
    if (hard < threads)
        hard = threads;
    /* libmicrohttpd's inactivity timeout (it does not run while a long poll is parked): past
     * both deadlines, so that the sweeper's 408 comes first while a head or a body is due; what
     * it closes is a request that stopped reading its response */
    unsigned stall_s = (h->o.header_timeout_s > h->o.body_timeout_s ? h->o.header_timeout_s
                                                                    : h->o.body_timeout_s) +
                       1;
    /* a body of MMAP_THRESHOLD or more gets its own mapping, returned to the system when
     * freed (glibc would otherwise raise the threshold after the first big free, and keep the
     * next big bodies in arenas that do not shrink). Smaller ones, and what a request's
     * handling takes (a batch of spans decoded, a span store's blocks: a few MiB), are reused
     * from request to request in the workers' arenas, kept up to HEAP_KEEP free: mapped
     * afresh, or trimmed at each free, each request paid page faults for zeroed pages (a
     * tenth of the server's CPU under OTLP ingest of 500-span requests). */
    mallopt(M_MMAP_THRESHOLD, (int)MMAP_THRESHOLD);
    mallopt(M_TRIM_THRESHOLD, (int)HEAP_KEEP);
    pthread_mutex_init(&h->mu, NULL);
    pthread_mutex_init(&h->conn_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_REALTIME);
    pthread_cond_init(&h->cv, &ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->sweep_cv, &ca);
    pthread_condattr_destroy(&ca);
    h->d = MHD_start_daemon(flags, 0, on_accept, h, on_request, h, MHD_OPTION_EXTERNAL_LOGGER,
                            on_mhd_log, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_NOTIFY_COMPLETED,
                            on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
                            MHD_OPTION_URI_LOG_CALLBACK, on_uri, h, MHD_OPTION_CONNECTION_LIMIT,
                            hard, MHD_OPTION_CONNECTION_TIMEOUT, stall_s,
                            MHD_OPTION_STRICT_FOR_CLIENT, (int)1, MHD_OPTION_END);
    if (!h->d) {
        rc = errno ? -errno : -EADDRINUSE;
        sn_log(SN_LOG_ERROR, "http", "cannot listen on %s: %s", o->listen, strerror(-rc));
        goto err_free;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : 0;
    if (pthread_create(&h->parker, NULL, parker, h) != 0) {
        rc = -EAGAIN;
        goto err_stop;
    }
    if (pthread_create(&h->sweeper, NULL, sweeper, h) != 0) {
        pthread_mutex_lock(&h->mu);
        h->stopping = true;
        pthread_cond_signal(&h->cv);
        pthread_mutex_unlock(&h->mu);
        pthread_join(h->parker, NULL);
        rc = -EAGAIN;
        goto err_stop;
    }
    *out = h;
    return 0;

err_stop:
    MHD_stop_daemon(h->d);
err_free:
    pthread_mutex_destroy(&h->mu);
    pthread_mutex_destroy(&h->conn_mu);
    pthread_cond_destroy(&h->cv);
    pthread_cond_destroy(&h->sweep_cv);
    free(h);
    return rc;
}

int sn_http_port(const struct sn_http *h)
{
    return h->port;
}

void sn_http_wake(struct sn_http *h, const char *key)
{
    bool any = false;

    pthread_mutex_lock(&h->mu);
    for (struct conn *c = h->parked; c; c = c->next)
        if (!c->woken && (!key || !c->resp.park_key[0] || strcmp(c->resp.park_key, key) == 0))
            c->woken = any = true;
    if (any)
        pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

void sn_http_stats(const struct sn_http *h, struct sn_http_stats *out)
{
    struct sn_http *m = (struct sn_http *)h; /* the lock only */

    out->requests = atomic_load(&h->requests);
    for (int i = 0; i < 6; i++)
        out->by_class[i] = atomic_load(&h->by_class[i]);
    out->parked = atomic_load(&h->nparked);
    out->too_large = atomic_load(&h->too_large);
    out->bytes_out = atomic_load(&h->bytes_out);
    for (int i = 0; i < SN_HTTP_R_N; i++)
        out->refused[i] = atomic_load(&h->refused[i]);
    out->body_bytes = atomic_load(&h->body_bytes);
    out->accepted = atomic_load(&h->nconns_seen);
    pthread_mutex_lock(&m->conn_mu);
    out->connections = h->nconns;
    pthread_mutex_unlock(&m->conn_mu);
}

void sn_http_stop(struct sn_http *h)
{
    if (!h)
        return;
    /* new connections are refused from now on by on_accept(). Not MHD_quiesce_daemon(): it
     * takes the listen socket out of the epoll set from this thread while the daemon's own
     * thread may do the same at its connection limit, and libmicrohttpd 0.9.75 then aborts
     * ("Failed to remove listen FD from epoll set", seen once in CI) */
    atomic_store(&h->closing, true);
    pthread_mutex_lock(&h->conn_mu);
    h->sweep_stop = true;
    pthread_cond_signal(&h->sweep_cv);
    pthread_mutex_unlock(&h->conn_mu);
    pthread_join(h->sweeper, NULL);
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->parker, NULL);
    /* every long poll the parker resumed gets its answer sent before the connections close
     * (bounded: 5 s) */
    int64_t until = sn_now_ms() + 5000;
    pthread_mutex_lock(&h->mu);
    while (h->npolls > 0 && sn_now_ms() < until) {
        struct timespec ts = {until / 1000, (long)(until % 1000) * 1000000};
        pthread_cond_timedwait(&h->cv, &h->mu, &ts);
    }
    if (h->npolls > 0)
        sn_log(SN_LOG_WARN, "http", "%d long poll(s) not answered at the stop", h->npolls);
    pthread_mutex_unlock(&h->mu);
    MHD_stop_daemon(h->d); /* closes every connection: their struct sock go */
    for (int i = 0; i < IP_BUCKETS; i++)
        while (h->ips[i]) {
            struct ipcount *p = h->ips[i];
            h->ips[i] = p->next;
            free(p);
        }
    pthread_mutex_destroy(&h->mu);
    pthread_mutex_destroy(&h->conn_mu);
    pthread_cond_destroy(&h->cv);
    pthread_cond_destroy(&h->sweep_cv);
    free(h);
}
