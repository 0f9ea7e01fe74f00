/*
 * The live viewer (viewer.h): requests encoded by live_proto.c, answers read whole from a
 * blocking socket with send and receive timeouts. The stream table comes from ATTACH's answer;
 * the metadata is read in chunks until NO_NEW.
 */
#include "live/viewer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/grow.h"
#include "live/live_proto.h"

#define MAX_STREAMS 4096
#define MAX_PACKET  (16u << 20)
#define MAX_META    (16u << 20)

struct vstream {
    uint64_t id;
    bool hup;
};

struct sn_live_viewer {
    int fd;
    struct vstream *s;
    unsigned ns;
    uint64_t meta_id;
    char *meta;
    size_t meta_len, meta_cap;
    uint8_t *pkt;
    size_t pkt_cap;
};

static int io(int fd, void *buf, size_t n, bool wr)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = wr ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
        if (r == 0)
            return -ECONNRESET;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int send_cmd(struct sn_live_viewer *v, const struct sn_live_cmd *c)
{
    uint8_t b[SN_LIVE_CMD_HDR + SN_LIVE_CMD_MAX];
    int n = sn_live_cmd_encode(c, b);
    return n < 0 ? n : io(v->fd, b, (size_t)n, true);
}

static int get32(struct sn_live_viewer *v, uint32_t *x)
{
    uint8_t b[4];
    int rc = io(v->fd, b, 4, false);
    if (rc == 0)
        *x = sn_live_rd32(b);
    return rc;
}

/* Reads n stream descriptions (the metadata one's id into meta_id). */
static int read_streams(struct sn_live_viewer *v, uint32_t n)
{
    uint8_t b[SN_LIVE_STREAM_LEN];
    if (n > MAX_STREAMS + 1)
        return -EPROTO;
    for (uint32_t i = 0; i < n; i++) {
        int rc = io(v->fd, b, sizeof(b), false);
        if (rc < 0)
            return rc;
        uint64_t id = sn_live_rd64(b);
        if (sn_live_rd32(b + 16)) {
            v->meta_id = id;
            continue;
        }
        struct vstream *g = realloc(v->s, (v->ns + 1) * sizeof(*g));
        if (!g)
            return -ENOMEM;
        v->s = g;
        v->s[v->ns++] = (struct vstream){.id = id};
    }
    return 0;
}

static int read_metadata(struct sn_live_viewer *v)
{
    for (int round = 0; round < 1024; round++) {
        struct sn_live_cmd c = {.cmd = SN_LIVE_GET_METADATA, .u.stream_id = v->meta_id};
        uint8_t h[12];
        int rc = send_cmd(v, &c);
        if (rc == 0)
            rc = io(v->fd, h, sizeof(h), false);
        if (rc < 0)
            return rc;
        uint64_t n = sn_live_rd64(h);
        uint32_t st = sn_live_rd32(h + 8);
        if (st == SN_LIVE_METADATA_NO_NEW)
            return 0;
        if (st != SN_LIVE_METADATA_OK || v->meta_len + n > MAX_META)
            return -EPROTO;
        char *g = sn_grow(v->meta, &v->meta_cap, v->meta_len + (size_t)n + 1, 1);
        if (!g)
            return -ENOMEM;
        v->meta = g;
        if ((rc = io(v->fd, v->meta + v->meta_len, (size_t)n, false)) < 0)
            return rc;
        v->meta_len += (size_t)n;
        v->meta[v->meta_len] = '\0';
    }
    return -EPROTO;
}

/* Finds session name (of host) in LIST_SESSIONS' answer: its id, or -ENOENT. */
static int64_t find_session(struct sn_live_viewer *v, const char *host, const char *name)
{
    uint8_t b[SN_LIVE_SESSION_LEN];
    uint32_t n = 0;
    int64_t found = -ENOENT;
    struct sn_live_cmd c = {.cmd = SN_LIVE_LIST_SESSIONS};
    int rc = send_cmd(v, &c);
    if (rc == 0)
        rc = get32(v, &n);
    if (rc < 0)
        return rc;
    if (n > 1u << 16)
        return -EPROTO;
    for (uint32_t i = 0; i < n; i++) {
        if ((rc = io(v->fd, b, sizeof(b), false)) < 0)
            return rc;
        char h[SN_LIVE_HOST_NAME + 1], s[SN_LIVE_SESSION_NAME + 1];
        snprintf(h, sizeof(h), "%.*s", SN_LIVE_HOST_NAME, (const char *)b + 20);
        snprintf(s, sizeof(s), "%.*s", SN_LIVE_SESSION_NAME,
                 (const char *)b + 20 + SN_LIVE_HOST_NAME);
        if (found < 0 && strcmp(s, name) == 0 && (!host || strcmp(h, host) == 0))
            found = (int64_t)sn_live_rd64(b);
    }
    return found;
}

static int attach(struct sn_live_viewer *v, const char *host, const char *name, char *why,
                  size_t len)
{
    uint8_t b[SN_LIVE_CONNECT_LEN];
    struct sn_live_cmd c = {.cmd = SN_LIVE_CONNECT,
                            .u.connect = {.major = SN_LIVE_MAJOR,
                                          .minor = SN_LIVE_MINOR,
                                          .type = SN_LIVE_CLIENT_COMMAND}};
    int rc = send_cmd(v, &c);
    if (rc == 0)
        rc = io(v->fd, b, sizeof(b), false);
    if (rc < 0)
        return rc;
    if (sn_live_rd32(b + 8) != SN_LIVE_MAJOR) {
        snprintf(why, len, "the relay speaks live protocol %u, not %u", sn_live_rd32(b + 8),
                 SN_LIVE_MAJOR);
        return -EPROTO;
    }
    int64_t id = find_session(v, host, name);
    if (id == -ENOENT) {
        snprintf(why, len, "no live session \"%s\"%s%s on the relay", name, host ? " of host " : "",
                 host ? host : "");
        return -ENOENT;
    }
    if (id < 0)
        return (int)id;
    c = (struct sn_live_cmd){.cmd = SN_LIVE_ATTACH_SESSION,
                             .u.attach = {.session_id = (uint64_t)id, .seek = SN_LIVE_SEEK_LAST}};
    uint32_t status = 0, n = 0;
    rc = send_cmd(v, &c);
    if (rc == 0)
        rc = get32(v, &status);
    if (rc == 0)
        rc = get32(v, &n);
    if (rc < 0)
        return rc;
    if (status == SN_LIVE_ATTACH_ALREADY) {
        snprintf(why, len, "another viewer reads session \"%s\" (one at a time)", name);
        return -EBUSY;
    }
    if (status != SN_LIVE_ATTACH_OK) {
        snprintf(why, len, "session \"%s\" cannot be attached (status %u)", name, status);
        return status == SN_LIVE_ATTACH_UNK ? -ENOENT : -EPROTO;
    }
    if ((rc = read_streams(v, n)) < 0)
        return rc;
    if (v->ns == 0 || v->meta_id == 0) {
        snprintf(why, len, "session \"%s\" has no streams", name);
        return -EPROTO;
    }
    return read_metadata(v);
}

int sn_live_viewer_open(struct sn_live_viewer **out, const char *addr, uint16_t port,
                        const char *host, const char *name, char *why, size_t len)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    *out = NULL;
    snprintf(why, len, "bad answer from the relay");
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        snprintf(why, len, "'%s' is not an IPv4 address", addr);
        return -EINVAL;
    }
    struct sn_live_viewer *v = calloc(1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    v->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = 10};
    int one = 1, rc = 0;
    if (v->fd < 0 || setsockopt(v->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        setsockopt(v->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
        setsockopt(v->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
        connect(v->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        rc = -errno;
        snprintf(why, len, "cannot connect to the relay at %s:%u: %s", addr, (unsigned)port,
                 strerror(errno));
    }
    if (rc == 0)
        rc = attach(v, host, name, why, len);
    if (rc < 0) {
        if (rc == -ETIMEDOUT || rc == -ECONNRESET)
            snprintf(why, len, "the relay at %s:%u: %s", addr, (unsigned)port, strerror(-rc));
        sn_live_viewer_close(v);
        return rc;
    }
    *out = v;
    return 0;
}

const char *sn_live_viewer_metadata(const struct sn_live_viewer *v, size_t *len)
{
    *len = v->meta_len;
    return v->meta ? v->meta : "";
}

/* The next packet of stream i: 1 handed to fn, 0 nothing new (or the stream hung up), <0. */
static int next(struct sn_live_viewer *v, unsigned i, sn_live_packet_fn fn, void *ctx)
{
    uint8_t b[SN_LIVE_INDEX_LEN], h[12];
    struct sn_live_index ix;
    struct sn_live_cmd c = {.cmd = SN_LIVE_GET_NEXT_INDEX, .u.stream_id = v->s[i].id};
    int rc = send_cmd(v, &c);
    if (rc == 0)
        rc = io(v->fd, b, sizeof(b), false);
    if (rc < 0)
        return rc;
    sn_live_get_index(b, &ix);
    switch (ix.status) {
    case SN_LIVE_INDEX_OK:
        break;
    case SN_LIVE_INDEX_RETRY:
    case SN_LIVE_INDEX_INACTIVE:
        return 0;
    case SN_LIVE_INDEX_HUP:
    case SN_LIVE_INDEX_EOF:
        v->s[i].hup = true;
        return 0;
    default:
        return -EPROTO;
    }
    uint64_t n = ix.packet_size / 8;
    if (n == 0 || n > MAX_PACKET)
        return -EPROTO;
    c = (struct sn_live_cmd){
        .cmd = SN_LIVE_GET_PACKET,
        .u.get_packet = {.stream_id = v->s[i].id, .offset = ix.offset, .len = (uint32_t)n}};
    rc = send_cmd(v, &c);
    if (rc == 0)
        rc = io(v->fd, h, sizeof(h), false);
    if (rc < 0)
        return rc;
    uint32_t st = sn_live_rd32(h), got = sn_live_rd32(h + 4);
    if (st != SN_LIVE_PACKET_OK)
        return st == SN_LIVE_PACKET_RETRY ? 0 : -EPROTO;
    if (got != n)
        return -EPROTO;
    uint8_t *g = sn_grow(v->pkt, &v->pkt_cap, (size_t)n, 1);
    if (!g)
        return -ENOMEM;
    v->pkt = g;
    if ((rc = io(v->fd, v->pkt, (size_t)n, false)) < 0)
        return rc;
    rc = fn(ctx, i, v->pkt, (size_t)n);
    return rc < 0 ? rc : 1;
}

int sn_live_viewer_poll(struct sn_live_viewer *v, sn_live_packet_fn fn, void *ctx)
{
    int total = 0;
    bool open = false;
    for (unsigned i = 0; i < v->ns; i++) {
        for (int k = 0; k < 64 && !v->s[i].hup; k++) {
            int rc = next(v, i, fn, ctx);
            if (rc < 0)
                return rc;
            if (rc == 0)
                break;
            total++;
        }
        open |= !v->s[i].hup;
    }
    return total > 0 ? total : open ? 0 : -EPIPE;
}

void sn_live_viewer_close(struct sn_live_viewer *v)
{
    if (!v)
        return;
    if (v->fd >= 0)
        close(v->fd);
    free(v->s);
    free(v->meta);
    free(v->pkt);
    free(v);
}
