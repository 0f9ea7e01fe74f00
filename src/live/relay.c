/*
 * The live relay (relay.h): one epoll thread serving viewers from the sessions' live sources.
 * The sessions' table and their per-viewer read state are under one mutex, taken for each
 * command while its answer is built (sources copy bytes, nothing blocks) and by add/remove;
 * sockets are read and written outside it. Each viewer has a small input buffer (a request is
 * at most 36 bytes) and one answer in flight: until the answer is sent the viewer is not read.
 * The packet of each index given out is copied then (struct held), so that GET_PACKET never
 * fails because the producer evicted it in between.
 */
#include "live/relay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/grow.h"
#include "core/log.h"

#define META_CHUNK (64 * 1024)   /* metadata bytes per GET_METADATA answer */
#define OUT_KEEP   (1024 * 1024) /* an answer buffer larger than this is freed once sent */
#define IN_MAX     (SN_LIVE_CMD_HDR + SN_LIVE_CMD_MAX)
#define MAX_PACKET (16u * 1024 * 1024)

struct viewer {
    struct viewer *prev, *next; /* the relay's list (its thread's only) */
    int fd;
    uint64_t id;
    bool connected;
    uint8_t in[IN_MAX];
    size_t in_len;
    uint8_t *out;
    size_t out_len, out_off, out_cap;
};

/* The packet a viewer was last given the index of, copied at that moment: GET_PACKET serves it
 * from here, so that the source evicting it meanwhile (a producer far ahead of a slow viewer)
 * cannot fail a read the viewer was promised. A buffer over 1 MiB is freed once read to its
 * end; smaller ones are kept for the next packet (at most 1 MiB per stream then). */
struct held {
    uint64_t offset;
    uint8_t *bytes;
    size_t len, cap;
};

struct session {
    int64_t id;
    char host[SN_LIVE_HOST_NAME];
    char name[SN_LIVE_SESSION_NAME];
    uint32_t timer_us;
    const struct sn_live_source *src;
    unsigned nstreams;
    struct viewer *viewer; /* attached, or NULL */
    uint64_t *cursor;      /* [nstreams] the viewer's next offset */
    struct held *held;     /* [nstreams] the packet last indexed, copied */
    uint64_t meta_sent;
    bool drained; /* its viewer read the ended source to its end */
};

struct sn_relay {
    pthread_mutex_t mu;
    pthread_t thread;
    int lfd, efd, ep;
    uint16_t port;
    unsigned max_viewers;
    uint32_t max_packet;
    struct session **s;
    size_t ns, s_cap;
    int64_t next_id;
    uint64_t next_viewer;
    struct viewer *viewers;
    struct sn_relay_stats st;
};

static const char tag_listen, tag_stop; /* epoll data of the listener and of the stop eventfd */

/* ---- answers ---------------------------------------------------------------------------- */

/* Room for n more bytes of v's answer; NULL when memory is short. */
static uint8_t *put(struct viewer *v, size_t n)
{
    uint8_t *g = sn_grow(v->out, &v->out_cap, v->out_len + n, 1);
    if (!g)
        return NULL;
    v->out = g;
    v->out_len += n;
    return v->out + v->out_len - n;
}

static int put32(struct viewer *v, uint32_t x)
{
    uint8_t *p = put(v, 4);
    if (!p)
        return -ENOMEM;
    sn_live_be32(p, x);
    return 0;
}

static struct session *find(struct sn_relay *r, int64_t id)
{
    for (size_t i = 0; i < r->ns; i++)
        if (r->s[i]->id == id)
            return r->s[i];
    return NULL;
}

/* The session of a wire stream id, attached by v, and the stream's index (-1: metadata). */
static struct session *of_stream(struct sn_relay *r, struct viewer *v, uint64_t sid, long *idx)
{
    struct session *s = find(r, (int64_t)(sid >> 32));
    if (!s || s->viewer != v)
        return NULL;
    uint32_t low = (uint32_t)sid;
    if (low > s->nstreams)
        return NULL;
    *idx = (long)low - 1;
    return s;
}

static bool has_new_metadata(struct session *s)
{
    uint8_t b;
    return s->src->metadata(s->src->ctx, s->meta_sent, &b, 1) > 0;
}

static bool all_hup(struct session *s)
{
    struct sn_live_index ix;
    for (unsigned i = 0; i < s->nstreams; i++)
        if (s->src->next_packet(s->src->ctx, i, s->cursor[i], &ix) != SN_LIVE_NEXT_HUP)
            return false;
    return true;
}

static void drop_held(struct session *s)
{
    for (unsigned i = 0; s->held && i < s->nstreams; i++) {
        free(s->held[i].bytes);
        s->held[i] = (struct held){0};
    }
}

static void detach(struct session *s)
{
    s->viewer = NULL;
    drop_held(s);
}

static void free_session(struct session *s)
{
    drop_held(s);
    free(s->held);
    free(s->cursor);
    free(s);
}

/* Copies the packet ix points at into the stream's held buffer. Returns 0, -ENOENT when the
 * source no longer has it, -E2BIG over max_packet, -ENOMEM. */
static int hold(struct sn_relay *r, struct session *s, unsigned i, const struct sn_live_index *ix)
{
    struct held *h = &s->held[i];
    uint64_t len = ix->packet_size / 8;
    if (len == 0 || len > r->max_packet)
        return -E2BIG;
    uint8_t *g = sn_grow(h->bytes, &h->cap, (size_t)len, 1);
    if (!g)
        return -ENOMEM;
    h->bytes = g;
    h->len = 0;
    int rc = s->src->read_packet(s->src->ctx, i, ix->offset, h->bytes, (size_t)len);
    if (rc < 0)
        return rc;
    h->offset = ix->offset;
    h->len = (size_t)len;
    return 0;
}

static int do_list(struct sn_relay *r, struct viewer *v)
{
    uint32_t n = 0;
    for (size_t i = 0; i < r->ns; i++)
        n += !r->s[i]->drained;
    if (put32(v, n) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < r->ns; i++) {
        struct session *s = r->s[i];
        if (s->drained)
            continue;
        uint8_t *p = put(v, SN_LIVE_SESSION_LEN);
        if (!p)
            return -ENOMEM;
        sn_live_put_session(p, &(struct sn_live_session_info){.id = (uint64_t)s->id,
                                                              .live_timer_us = s->timer_us,
                                                              .clients = s->viewer ? 1 : 0,
                                                              .streams = s->nstreams + 1,
                                                              .hostname = s->host,
                                                              .name = s->name});
    }
    return 0;
}

static int put_streams(struct session *s, struct viewer *v)
{
    char chan[32];
    for (unsigned i = 0; i <= s->nstreams; i++) {
        uint8_t *p = put(v, SN_LIVE_STREAM_LEN);
        if (!p)
            return -ENOMEM;
        if (i > 0)
            snprintf(chan, sizeof(chan), "chan_%u", i - 1);
        sn_live_put_stream(p, &(struct sn_live_stream_info){.id = (uint64_t)s->id << 32 | i,
                                                            .ctf_trace_id = 1,
                                                            .metadata_flag = i == 0,
                                                            .path_name = "kernel",
                                                            .channel = i == 0 ? "metadata" : chan});
    }
    return 0;
}

static int do_attach(struct sn_relay *r, struct viewer *v, const struct sn_live_cmd *c)
{
    struct session *s = find(r, (int64_t)c->u.attach.session_id);
    uint32_t status = SN_LIVE_ATTACH_OK;
    if (!s || s->drained)
        status = SN_LIVE_ATTACH_UNK;
    else if (s->viewer && s->viewer != v)
        status = SN_LIVE_ATTACH_ALREADY;
    else if (c->u.attach.seek != SN_LIVE_SEEK_BEGINNING && c->u.attach.seek != SN_LIVE_SEEK_LAST)
        status = SN_LIVE_ATTACH_SEEK_ERR;
    if (put32(v, status) < 0)
        return -ENOMEM;
    if (status != SN_LIVE_ATTACH_OK)
        return put32(v, 0);
    s->viewer = v;
    memset(s->cursor, 0, s->nstreams * sizeof(*s->cursor));
    s->meta_sent = 0;
    r->st.attached++;
    if (put32(v, s->nstreams + 1) < 0)
        return -ENOMEM;
    return put_streams(s, v);
}

static int do_metadata(struct sn_relay *r, struct viewer *v, uint64_t sid)
{
    long idx;
    struct session *s = of_stream(r, v, sid, &idx);
    uint8_t *p = put(v, 12);
    if (!p)
        return -ENOMEM;
    if (!s || idx != -1) {
        sn_live_be64(p, 0);
        sn_live_be32(p + 8, SN_LIVE_METADATA_ERR);
        return 0;
    }
    size_t at = v->out_len;
    uint8_t *d = put(v, META_CHUNK);
    if (!d)
        return -ENOMEM;
    size_t n = s->src->metadata(s->src->ctx, s->meta_sent, d, META_CHUNK);
    v->out_len = at + n;
    s->meta_sent += n;
    p = v->out + at - 12; /* put() may have moved the buffer */
    sn_live_be64(p, n);
    sn_live_be32(p + 8, n ? SN_LIVE_METADATA_OK : SN_LIVE_METADATA_NO_NEW);
    return 0;
}

static int do_next_index(struct sn_relay *r, struct viewer *v, uint64_t sid)
{
    long idx;
    struct session *s = of_stream(r, v, sid, &idx);
    struct sn_live_index ix = {0};
    if (!s) {
        ix.status = find(r, (int64_t)(sid >> 32)) ? SN_LIVE_INDEX_ERR : SN_LIVE_INDEX_HUP;
    } else if (idx < 0) {
        ix.status = SN_LIVE_INDEX_ERR;
    } else {
        enum sn_live_next n;
        int held = -ENOENT;
        for (int tries = 0; tries < 4 && held == -ENOENT; tries++) { /* evicted in between */
            n = s->src->next_packet(s->src->ctx, (unsigned)idx, s->cursor[idx], &ix);
            held = n == SN_LIVE_NEXT_PACKET ? hold(r, s, (unsigned)idx, &ix) : 0;
        }
        if (n == SN_LIVE_NEXT_PACKET && held < 0)
            n = held == -ENOENT ? SN_LIVE_NEXT_RETRY : 0; /* 0: ERR below */
        switch (n) {
        case SN_LIVE_NEXT_PACKET:
            ix.status = SN_LIVE_INDEX_OK;
            s->cursor[idx] = ix.offset + ix.packet_size / 8;
            if (has_new_metadata(s))
                ix.flags |= SN_LIVE_FLAG_NEW_METADATA;
            break;
        case SN_LIVE_NEXT_INACTIVE:
            ix = (struct sn_live_index){.timestamp_end = ix.timestamp_end,
                                        .status = SN_LIVE_INDEX_INACTIVE};
            break;
        case SN_LIVE_NEXT_HUP: /* hang up once every stream is read out, else idle */
            if (all_hup(s)) {
                s->drained = true;
                ix = (struct sn_live_index){.status = SN_LIVE_INDEX_HUP};
            } else {
                ix = (struct sn_live_index){.timestamp_end = ix.timestamp_end,
                                            .status = SN_LIVE_INDEX_INACTIVE};
            }
            break;
        case SN_LIVE_NEXT_RETRY:
            ix = (struct sn_live_index){.status = SN_LIVE_INDEX_RETRY};
            break;
        default:
            ix = (struct sn_live_index){.status = SN_LIVE_INDEX_ERR};
            break;
        }
    }
    uint8_t *p = put(v, SN_LIVE_INDEX_LEN);
    if (!p)
        return -ENOMEM;
    sn_live_put_index(p, &ix);
    return 0;
}

static int do_packet(struct sn_relay *r, struct viewer *v, const struct sn_live_cmd *c)
{
    long idx;
    struct session *s = of_stream(r, v, c->u.get_packet.stream_id, &idx);
    uint32_t len = c->u.get_packet.len;
    uint8_t *p = put(v, 12);
    if (!p)
        return -ENOMEM;
    uint32_t status = SN_LIVE_PACKET_ERR;
    if (s && idx >= 0 && len > 0 && len <= r->max_packet) {
        size_t at = v->out_len;
        uint8_t *d = put(v, len);
        if (!d)
            return -ENOMEM;
        struct held *h = &s->held[idx];
        uint64_t off = c->u.get_packet.offset;
        int rc = 0;
        if (h->len > 0 && off >= h->offset && off - h->offset <= h->len &&
            len <= h->len - (off - h->offset)) {
            memcpy(d, h->bytes + (off - h->offset), len);
            if (off + len == h->offset + h->len && h->cap > OUT_KEEP) { /* read to its end */
                free(h->bytes);
                *h = (struct held){0};
            }
        } else
            rc = s->src->read_packet(s->src->ctx, (unsigned)idx, off, d, len);
        if (rc == 0) {
            status = SN_LIVE_PACKET_OK;
            r->st.packets++;
            r->st.packet_bytes += len;
        } else {
            v->out_len = at;
        }
    }
    p = v->out + v->out_len - (status == SN_LIVE_PACKET_OK ? len : 0) - 12;
    sn_live_be32(p, status);
    sn_live_be32(p + 4, status == SN_LIVE_PACKET_OK ? len : 0);
    sn_live_be32(p + 8, 0);
    return 0;
}

static int do_new_streams(struct sn_relay *r, struct viewer *v, uint64_t id)
{
    struct session *s = find(r, (int64_t)id);
    uint32_t status = SN_LIVE_NEW_STREAMS_NO_NEW;
    if (!s || s->drained)
        status = SN_LIVE_NEW_STREAMS_HUP;
    else if (s->viewer != v)
        status = SN_LIVE_NEW_STREAMS_ERR;
    else if (all_hup(s))
        status = SN_LIVE_NEW_STREAMS_HUP, s->drained = true;
    if (put32(v, status) < 0)
        return -ENOMEM;
    return put32(v, 0);
}

static int do_detach(struct sn_relay *r, struct viewer *v, uint64_t id)
{
    struct session *s = find(r, (int64_t)id);
    if (!s || s->viewer != v)
        return put32(v, SN_LIVE_DETACH_UNK);
    detach(s);
    return put32(v, SN_LIVE_DETACH_OK);
}

/* Builds v's answer to c. Returns 0, or -EPROTO / -ENOMEM to close the viewer. */
static int answer(struct sn_relay *r, struct viewer *v, const struct sn_live_cmd *c)
{
    if (!v->connected && c->cmd != SN_LIVE_CONNECT)
        return -EPROTO;
    switch (c->cmd) {
    case SN_LIVE_CONNECT: {
        if (c->u.connect.major != SN_LIVE_MAJOR)
            return -EPROTO;
        v->connected = true;
        uint8_t *p = put(v, SN_LIVE_CONNECT_LEN);
        if (!p)
            return -ENOMEM;
        sn_live_put_connect(p, v->id, SN_LIVE_MAJOR, SN_LIVE_MINOR, c->u.connect.type);
        return 0;
    }
    case SN_LIVE_LIST_SESSIONS:
        return do_list(r, v);
    case SN_LIVE_CREATE_SESSION:
        return put32(v, SN_LIVE_CREATE_OK);
    case SN_LIVE_ATTACH_SESSION:
        return do_attach(r, v, c);
    case SN_LIVE_GET_METADATA:
        return do_metadata(r, v, c->u.stream_id);
    case SN_LIVE_GET_NEXT_INDEX:
        return do_next_index(r, v, c->u.stream_id);
    case SN_LIVE_GET_PACKET:
        return do_packet(r, v, c);
    case SN_LIVE_GET_NEW_STREAMS:
        return do_new_streams(r, v, c->u.session_id);
    case SN_LIVE_DETACH_SESSION:
        return do_detach(r, v, c->u.session_id);
    default:
        return -EPROTO;
    }
}

/* ---- the loop --------------------------------------------------------------------------- */

static void close_viewer(struct sn_relay *r, struct viewer *v)
{
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->ns; i++)
        if (r->s[i]->viewer == v)
            detach(r->s[i]);
    r->st.viewers--;
    pthread_mutex_unlock(&r->mu);
    if (v->prev)
        v->prev->next = v->next;
    else
        r->viewers = v->next;
    if (v->next)
        v->next->prev = v->prev;
    epoll_ctl(r->ep, EPOLL_CTL_DEL, v->fd, NULL);
    close(v->fd);
    free(v->out);
    free(v);
}

static void want(struct sn_relay *r, struct viewer *v, uint32_t events)
{
    struct epoll_event e = {.events = events, .data.ptr = v};
    epoll_ctl(r->ep, EPOLL_CTL_MOD, v->fd, &e);
}

/* Sends what it can of v's answer. Returns 1 when all is sent, 0 when the socket is full, -1 on
 * an error. */
static int flush_out(struct viewer *v)
{
    while (v->out_off < v->out_len) {
        ssize_t n = send(v->fd, v->out + v->out_off, v->out_len - v->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        }
        v->out_off += (size_t)n;
    }
    v->out_len = v->out_off = 0;
    if (v->out_cap > OUT_KEEP) {
        free(v->out);
        v->out = NULL;
        v->out_cap = 0;
    }
    return 1;
}

/* Answers the requests buffered in v, one at a time, while answers go out at once. Returns -1
 * when v must be closed. */
static int serve(struct sn_relay *r, struct viewer *v)
{
    for (;;) {
        if (v->out_len > 0) {
            int f = flush_out(v);
            if (f < 0)
                return -1;
            if (f == 0) {
                want(r, v, EPOLLOUT);
                return 0;
            }
        }
        struct sn_live_cmd c;
        int n = sn_live_cmd_parse(v->in, v->in_len, &c);
        if (n < 0) {
            sn_log(SN_LOG_WARN, "live", "viewer %llu: bad request, closed",
                   (unsigned long long)v->id);
            return -1;
        }
        if (n == 0) {
            want(r, v, EPOLLIN);
            return 0;
        }
        memmove(v->in, v->in + n, v->in_len - (size_t)n);
        v->in_len -= (size_t)n;
        pthread_mutex_lock(&r->mu);
        int rc = answer(r, v, &c);
        if (rc == 0)
            r->st.commands++;
        pthread_mutex_unlock(&r->mu);
        if (rc < 0) {
            sn_log(SN_LOG_WARN, "live", "viewer %llu: command %u refused (%s), closed",
                   (unsigned long long)v->id, c.cmd, strerror(-rc));
            return -1;
        }
    }
}

static void on_readable(struct sn_relay *r, struct viewer *v)
{
    if (v->out_len > 0) /* still sending: read later */
        return;
    for (;;) {
        if (v->in_len == sizeof(v->in))
            break;
        ssize_t n = recv(v->fd, v->in + v->in_len, sizeof(v->in) - v->in_len, 0);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)) {
            close_viewer(r, v);
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        v->in_len += (size_t)n;
        if (sn_live_cmd_parse(v->in, v->in_len, &(struct sn_live_cmd){0}) != 0)
            break; /* a whole request, or a bad one */
    }
    if (serve(r, v) < 0) {
        pthread_mutex_lock(&r->mu);
        r->st.refused++;
        pthread_mutex_unlock(&r->mu);
        close_viewer(r, v);
    }
}

static void on_accept(struct sn_relay *r)
{
    for (;;) {
        int fd = accept4(r->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        pthread_mutex_lock(&r->mu);
        bool full = r->st.viewers >= r->max_viewers;
        if (full)
            r->st.refused++;
        pthread_mutex_unlock(&r->mu);
        struct viewer *v = full ? NULL : calloc(1, sizeof(*v));
        if (!v) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        v->fd = fd;
        v->id = ++r->next_viewer;
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = v};
        if (epoll_ctl(r->ep, EPOLL_CTL_ADD, fd, &e) < 0) {
            close(fd);
            free(v);
            continue;
        }
        v->next = r->viewers;
        if (v->next)
            v->next->prev = v;
        r->viewers = v;
        pthread_mutex_lock(&r->mu);
        r->st.viewers++;
        pthread_mutex_unlock(&r->mu);
    }
}

static void *loop(void *arg)
{
    struct sn_relay *r = arg;
    struct epoll_event ev[32];
    for (;;) {
        int n = epoll_wait(r->ep, ev, 32, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            sn_log(SN_LOG_ERROR, "live", "epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            void *p = ev[i].data.ptr;
            if (p == &tag_stop)
                return NULL;
            if (p == &tag_listen) {
                on_accept(r);
                continue;
            }
            struct viewer *v = p;
            if (ev[i].events & (EPOLLERR | EPOLLHUP)) {
                close_viewer(r, v);
            } else if (ev[i].events & EPOLLOUT) {
                if (serve(r, v) < 0)
                    close_viewer(r, v);
            } else if (ev[i].events & EPOLLIN) {
                on_readable(r, v);
            }
        }
    }
    return NULL;
}

/* ---- life ------------------------------------------------------------------------------- */

int sn_relay_start(struct sn_relay **out, const struct sn_relay_opts *opts)
{
    *out = NULL;
    struct sn_relay *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->lfd = r->efd = r->ep = -1;
    r->max_viewers = opts && opts->max_viewers ? opts->max_viewers : 64;
    r->max_packet = opts && opts->max_packet ? opts->max_packet : MAX_PACKET;
    r->next_id = 1;
    pthread_mutex_init(&r->mu, NULL);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(opts ? opts->port : 0)};
    const char *addr = opts && opts->addr ? opts->addr : "127.0.0.1";
    int rc = 0;
    if (inet_pton(AF_INET, addr, &a.sin_addr) != 1)
        rc = -EINVAL;
    if (rc == 0 && (r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
        rc = -errno;
    int one = 1;
    if (rc == 0)
        setsockopt(r->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (rc == 0 && (bind(r->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(r->lfd, 16) < 0))
        rc = -errno;
    socklen_t al = sizeof(a);
    if (rc == 0 && getsockname(r->lfd, (struct sockaddr *)&a, &al) < 0)
        rc = -errno;
    r->port = ntohs(a.sin_port);
    if (rc == 0 && ((r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
                    (r->ep = epoll_create1(EPOLL_CLOEXEC)) < 0))
        rc = -errno;
    if (rc == 0) {
        struct epoll_event el = {.events = EPOLLIN, .data.ptr = (void *)&tag_listen};
        struct epoll_event es = {.events = EPOLLIN, .data.ptr = (void *)&tag_stop};
        if (epoll_ctl(r->ep, EPOLL_CTL_ADD, r->lfd, &el) < 0 ||
            epoll_ctl(r->ep, EPOLL_CTL_ADD, r->efd, &es) < 0)
            rc = -errno;
    }
    if (rc == 0)
        rc = -pthread_create(&r->thread, NULL, loop, r);
    if (rc < 0) {
        if (r->lfd >= 0)
            close(r->lfd);
        if (r->efd >= 0)
            close(r->efd);
        if (r->ep >= 0)
            close(r->ep);
        pthread_mutex_destroy(&r->mu);
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

uint16_t sn_relay_port(const struct sn_relay *r)
{
    return r->port;
}

int64_t sn_relay_add(struct sn_relay *r, const char *hostname, const char *name,
                     uint32_t live_timer_us, const struct sn_live_source *src)
{
    if (!hostname || !name || !src || !*name || strlen(hostname) >= SN_LIVE_HOST_NAME ||
        strlen(name) >= SN_LIVE_SESSION_NAME)
        return -EINVAL;
    unsigned n = src->streams(src->ctx);
    if (n == 0 || n > 4096)
        return -EINVAL;
    struct session *s = calloc(1, sizeof(*s));
    if (!s || !(s->cursor = calloc(n, sizeof(*s->cursor))) ||
        !(s->held = calloc(n, sizeof(*s->held)))) {
        if (s)
            free(s->cursor);
        free(s);
        return -ENOMEM;
    }
    snprintf(s->host, sizeof(s->host), "%s", hostname);
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->timer_us = live_timer_us;
    s->src = src;
    s->nstreams = n;
    pthread_mutex_lock(&r->mu);
    int64_t rc = 0;
    for (size_t i = 0; i < r->ns; i++)
        if (!strcmp(r->s[i]->name, name) && !strcmp(r->s[i]->host, hostname))
            rc = -EEXIST;
    struct session **g = rc == 0 ? sn_grow(r->s, &r->s_cap, r->ns + 1, sizeof(*g)) : NULL;
    if (rc == 0 && !g)
        rc = -ENOMEM;
    if (rc == 0) {
        r->s = g;
        s->id = r->next_id++;
        r->s[r->ns++] = s;
        rc = s->id;
    }
    pthread_mutex_unlock(&r->mu);
    if (rc < 0)
        free_session(s);
    return rc;
}

int sn_relay_remove(struct sn_relay *r, int64_t id)
{
    pthread_mutex_lock(&r->mu);
    struct session *s = NULL;
    for (size_t i = 0; i < r->ns; i++)
        if (r->s[i]->id == id) {
            s = r->s[i];
            r->s[i] = r->s[--r->ns];
            break;
        }
    pthread_mutex_unlock(&r->mu);
    if (!s)
        return -ENOENT;
    free_session(s);
    return 0;
}

int sn_relay_state(struct sn_relay *r, int64_t id)
{
    pthread_mutex_lock(&r->mu);
    struct session *s = find(r, id);
    int st = !s                         ? -ENOENT
             : s->drained && !s->viewer ? SN_RELAY_DRAINED
             : s->viewer                ? SN_RELAY_ATTACHED
                                        : SN_RELAY_IDLE;
    pthread_mutex_unlock(&r->mu);
    return st;
}

void sn_relay_stats(struct sn_relay *r, struct sn_relay_stats *out)
{
    pthread_mutex_lock(&r->mu);
    *out = r->st;
    pthread_mutex_unlock(&r->mu);
}

void sn_relay_stop(struct sn_relay *r)
{
    if (!r)
        return;
    uint64_t one = 1;
    if (write(r->efd, &one, sizeof(one)) < 0)
        sn_log(SN_LOG_ERROR, "live", "relay stop: %s", strerror(errno));
    pthread_join(r->thread, NULL);
    while (r->viewers)
        close_viewer(r, r->viewers);
    close(r->lfd);
    close(r->efd);
    for (size_t i = 0; i < r->ns; i++)
        free_session(r->s[i]);
    free(r->s);
    close(r->ep);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
