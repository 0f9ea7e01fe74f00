/*
 * The live relay (src/live/relay.h) and its feed (live_feed.h) through a raw TCP viewer that
 * speaks live_proto.h: CONNECT's 2.4 answer, a request before CONNECT or with a bad length
 * closing the viewer, LIST_SESSIONS' session struct, ATTACH (UNK, OK with the stream list,
 * ALREADY for a second viewer, OK again after DETACH), GET_METADATA in chunks until NO_NEW,
 * GET_NEXT_INDEX's RETRY / INACTIVE beacon / OK / HUP, GET_PACKET's bytes (whole and in pieces) and
 * its refusals, GET_NEW_STREAMS' HUP and the session leaving the list once read out; a viewer that
 * does not read its answers while others are served and the producer appends; the feed's eviction;
 * a clean stop with viewers connected. Every wait is bounded (socket timeouts).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "ctf/packet.h"
#include "live/live_feed.h"
#include "live/relay.h"
#include "t.h"

static uint16_t port;

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads exactly n bytes; returns n, 0 at the peer's close, -1 on a timeout or error. */
static ssize_t recv_n(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, (uint8_t *)buf + got, n - got, 0);
        if (r <= 0)
            return r;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static int send_cmd(int fd, struct sn_live_cmd c)
{
    uint8_t b[SN_LIVE_CMD_HDR + SN_LIVE_CMD_MAX];
    int n = sn_live_cmd_encode(&c, b);
    return send(fd, b, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -1;
}

static uint32_t recv32(int fd)
{
    uint8_t b[4] = {0xff, 0xff, 0xff, 0xff};
    recv_n(fd, b, 4);
    return sn_live_rd32(b);
}

static int connect_viewer(void)
{
    int fd = dial();
    struct sn_live_cmd c = {.cmd = SN_LIVE_CONNECT};
    c.u.connect.major = 2, c.u.connect.minor = 15, c.u.connect.type = SN_LIVE_CLIENT_COMMAND;
    uint8_t r[20];
    if (fd < 0 || send_cmd(fd, c) < 0 || recv_n(fd, r, 20) != 20) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static struct sn_live_index next_index(int fd, uint64_t sid)
{
    struct sn_live_cmd c = {.cmd = SN_LIVE_GET_NEXT_INDEX};
    c.u.stream_id = sid;
    uint8_t b[64] = {0};
    struct sn_live_index ix = {0};
    if (send_cmd(fd, c) == 0 && recv_n(fd, b, 64) == 64)
        sn_live_get_index(b, &ix);
    return ix;
}

static uint32_t attach(int fd, uint64_t id, uint32_t *n)
{
    struct sn_live_cmd c = {.cmd = SN_LIVE_ATTACH_SESSION};
    c.u.attach.session_id = id, c.u.attach.seek = SN_LIVE_SEEK_LAST;
    send_cmd(fd, c);
    uint32_t st = recv32(fd);
    *n = recv32(fd);
    return st;
}

static uint8_t streams[3][SN_LIVE_STREAM_LEN];

/* A CTF packet of len bytes (no events) on cpu, times [b, e]. */
static void make_packet(uint8_t *p, size_t len, unsigned cpu, uint64_t b, uint64_t e, uint64_t seq)
{
    memset(p, 0, len);
    struct sn_ctf_packet_info pi = {
        .cpu = cpu, .ts_begin = b, .ts_end = e, .bytes = len, .seq = seq};
    sn_ctf_packet_header(p, &pi);
}

static uint64_t ms_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void test_protocol(void)
{
    struct sn_relay *r;
    T_REQUIRE(sn_relay_start(&r, &(struct sn_relay_opts){0}) == 0);
    port = sn_relay_port(r);
    struct sn_live_feed *f = sn_live_feed_new(2, 0);
    static char meta[150000];
    for (size_t i = 0; i < sizeof(meta); i++)
        meta[i] = (char)('a' + i % 26);
    T_REQUIRE(sn_live_feed_metadata(f, meta, sizeof(meta)) == 0);
    T_EQ(sn_relay_add(r, "vm", "rec1", 1000000, sn_live_feed_source(f)), 1);

    /* CONNECT: our id, 2.4, the viewer's type */
    int a = dial();
    T_REQUIRE(a >= 0);
    struct sn_live_cmd c = {.cmd = SN_LIVE_CONNECT};
    c.u.connect.major = 2, c.u.connect.minor = 15, c.u.connect.type = 1;
    T_EQ(send_cmd(a, c), 0);
    uint8_t b[SN_LIVE_SESSION_LEN];
    T_EQ(recv_n(a, b, 20), 20);
    T_EQU(sn_live_rd64(b), 1);
    T_EQ(sn_live_rd32(b + 8), 2);
    T_EQ(sn_live_rd32(b + 12), 4);
    T_EQ(sn_live_rd32(b + 16), 1);

    /* a request before CONNECT, and a bad length: closed */
    int x = dial();
    T_EQ(send_cmd(x, (struct sn_live_cmd){.cmd = SN_LIVE_LIST_SESSIONS}), 0);
    T_EQ(recv_n(x, b, 4), 0);
    close(x);
    x = connect_viewer();
    T_REQUIRE(x >= 0);
    uint8_t bad[SN_LIVE_CMD_HDR + 9] = {0};
    sn_live_be64(bad, 9);
    sn_live_be32(bad + 8, SN_LIVE_GET_NEXT_INDEX);
    T_EQ(send(x, bad, sizeof(bad), MSG_NOSIGNAL), (ssize_t)sizeof(bad));
    T_EQ(recv_n(x, b, 4), 0);
    close(x);

    /* LIST_SESSIONS */
    T_EQ(send_cmd(a, (struct sn_live_cmd){.cmd = SN_LIVE_LIST_SESSIONS}), 0);
    T_EQ(recv32(a), 1);
    T_EQ(recv_n(a, b, SN_LIVE_SESSION_LEN), SN_LIVE_SESSION_LEN);
    T_EQU(sn_live_rd64(b), 1);
    T_EQ(sn_live_rd32(b + 8), 1000000);
    T_EQ(sn_live_rd32(b + 12), 0);
    T_EQ(sn_live_rd32(b + 16), 3);
    T_STR((char *)b + 20, "vm");
    T_STR((char *)b + 84, "rec1");

    /* CREATE_SESSION */
    T_EQ(send_cmd(a, (struct sn_live_cmd){.cmd = SN_LIVE_CREATE_SESSION}), 0);
    T_EQ(recv32(a), SN_LIVE_CREATE_OK);

    /* ATTACH: unknown, then OK with the metadata stream and two data streams */
    uint32_t n;
    T_EQ(attach(a, 9, &n), SN_LIVE_ATTACH_UNK);
    T_EQ(n, 0);
    T_EQ(attach(a, 1, &n), SN_LIVE_ATTACH_OK);
    T_REQUIRE(n == 3);
    for (int i = 0; i < 3; i++)
        T_EQ(recv_n(a, streams[i], SN_LIVE_STREAM_LEN), SN_LIVE_STREAM_LEN);
    uint64_t meta_id = sn_live_rd64(streams[0]), s0 = sn_live_rd64(streams[1]),
             s1 = sn_live_rd64(streams[2]);
    T_EQU(meta_id, 1ull << 32);
    T_EQU(s0, (1ull << 32) | 1);
    T_EQU(s1, (1ull << 32) | 2);
    T_EQ(sn_live_rd32(streams[0] + 16), 1);
    T_EQ(sn_live_rd32(streams[1] + 16), 0);
    T_EQU(sn_live_rd64(streams[2] + 8), 1);
    T_STR((char *)streams[0] + 20 + 4096, "metadata");
    T_STR((char *)streams[2] + 20 + 4096, "chan_1");

    /* a second viewer: ALREADY */
    int v2 = connect_viewer();
    T_REQUIRE(v2 >= 0);
    T_EQ(attach(v2, 1, &n), SN_LIVE_ATTACH_ALREADY);
    T_EQ(n, 0);

    /* metadata in chunks of 64 KiB until NO_NEW, the same bytes */
    static char got[sizeof(meta)];
    size_t total = 0;
    for (int i = 0; i < 10; i++) {
        c = (struct sn_live_cmd){.cmd = SN_LIVE_GET_METADATA};
        c.u.stream_id = meta_id;
        T_EQ(send_cmd(a, c), 0);
        uint8_t h[12];
        T_REQUIRE(recv_n(a, h, 12) == 12);
        uint64_t len = sn_live_rd64(h);
        uint32_t st = sn_live_rd32(h + 8);
        if (st == SN_LIVE_METADATA_NO_NEW) {
            T_EQU(len, 0);
            break;
        }
        T_EQ(st, SN_LIVE_METADATA_OK);
        T_REQUIRE(len <= 65536 && total + len <= sizeof(got));
        T_EQ(recv_n(a, got + total, len), (ssize_t)len);
        total += len;
    }
    T_EQU(total, sizeof(meta));
    T_OK(memcmp(got, meta, sizeof(meta)) == 0);

    /* indexes: RETRY before anything, INACTIVE with the beacon, ERR for the metadata stream */
    T_EQ(next_index(a, s0).status, SN_LIVE_INDEX_RETRY);
    sn_live_feed_beacon(f, 5000);
    struct sn_live_index ix = next_index(a, s0);
    T_EQ(ix.status, SN_LIVE_INDEX_INACTIVE);
    T_EQU(ix.timestamp_end, 5000);
    T_EQ(next_index(a, meta_id).status, SN_LIVE_INDEX_ERR);

    /* a packet: its index, its bytes; new metadata flagged */
    static uint8_t pkt[1000], back[1000];
    make_packet(pkt, sizeof(pkt), 0, 6000, 7000, 0);
    T_EQ(sn_live_feed_append(f, 0, pkt, sizeof(pkt)), 0);
    T_EQ(sn_live_feed_append(f, 0, pkt, sizeof(pkt) - 1), -EINVAL);
    make_packet(pkt, sizeof(pkt), 0, 4000, 7000, 0);
    T_EQ(sn_live_feed_append(f, 0, pkt, sizeof(pkt)), -EINVAL); /* before the beacon */
    make_packet(pkt, sizeof(pkt), 0, 7000, 9000, 1);
    T_EQ(sn_live_feed_append(f, 0, pkt, sizeof(pkt)), 0);
    T_EQ(sn_live_feed_metadata(f, "/* more */", 10), 0);
    ix = next_index(a, s0);
    T_EQ(ix.status, SN_LIVE_INDEX_OK);
    T_EQU(ix.offset, 0);
    T_EQU(ix.packet_size, 8000);
    T_EQU(ix.content_size, 8000);
    T_EQU(ix.timestamp_begin, 6000);
    T_EQU(ix.timestamp_end, 7000);
    T_EQ(ix.flags, SN_LIVE_FLAG_NEW_METADATA);
    ix = next_index(a, s0);
    T_EQU(ix.offset, 1000);
    T_EQU(ix.timestamp_begin, 7000);
    c = (struct sn_live_cmd){.cmd = SN_LIVE_GET_PACKET};
    c.u.get_packet.stream_id = s0, c.u.get_packet.offset = 1000, c.u.get_packet.len = 1000;
    T_EQ(send_cmd(a, c), 0);
    T_EQ(recv32(a), SN_LIVE_PACKET_OK);
    T_EQ(recv32(a), 1000);
    T_EQ(recv32(a), 0);
    T_EQ(recv_n(a, back, 1000), 1000);
    T_OK(memcmp(back, pkt, 1000) == 0);
    c.u.get_packet.offset = 1100, c.u.get_packet.len = 900; /* a piece of it */
    T_EQ(send_cmd(a, c), 0);
    T_EQ(recv32(a), SN_LIVE_PACKET_OK);
    T_EQ(recv32(a), 900);
    T_EQ(recv32(a), 0);
    T_EQ(recv_n(a, back, 900), 900);
    T_OK(memcmp(back, pkt + 100, 900) == 0);
    c.u.get_packet.len = 901; /* past its end */
    T_EQ(send_cmd(a, c), 0);
    T_EQ(recv32(a), SN_LIVE_PACKET_ERR);
    T_EQ(recv32(a), 0);
    T_EQ(recv32(a), 0);
    c.u.get_packet.offset = 2000, c.u.get_packet.len = 1; /* nothing there yet */
    T_EQ(send_cmd(a, c), 0);
    T_EQ(recv32(a), SN_LIVE_PACKET_ERR);
    T_EQ(recv32(a), 0);
    T_EQ(recv32(a), 0);
    c.u.get_packet.stream_id = meta_id, c.u.get_packet.len = 1000;
    T_EQ(send_cmd(a, c), 0);
    T_EQ(recv32(a), SN_LIVE_PACKET_ERR);
    T_EQ(recv32(a), 0);
    T_EQ(recv32(a), 0);

    /* DETACH frees the session for the other viewer; the first then gets ALREADY */
    c = (struct sn_live_cmd){.cmd = SN_LIVE_DETACH_SESSION};
    c.u.session_id = 1;
    T_EQ(send_cmd(a, c), 0);
    T_EQ(recv32(a), SN_LIVE_DETACH_OK);
    T_EQ(send_cmd(a, c), 0);
    T_EQ(recv32(a), SN_LIVE_DETACH_UNK);
    T_EQ(attach(v2, 1, &n), SN_LIVE_ATTACH_OK);
    T_EQ(n, 3);
    for (uint32_t i = 0; i < n; i++)
        T_EQ(recv_n(v2, streams[0], SN_LIVE_STREAM_LEN), SN_LIVE_STREAM_LEN);
    T_EQ(attach(a, 1, &n), SN_LIVE_ATTACH_ALREADY);

    /* v2 reads from the oldest packet kept; the end: idle while stream 0 has packets, then HUP */
    c = (struct sn_live_cmd){.cmd = SN_LIVE_GET_NEW_STREAMS};
    c.u.session_id = 1;
    T_EQ(send_cmd(v2, c), 0);
    T_EQ(recv32(v2), SN_LIVE_NEW_STREAMS_NO_NEW);
    T_EQ(recv32(v2), 0);
    sn_live_feed_end(f);
    T_EQ(sn_live_feed_append(f, 0, pkt, sizeof(pkt)), -EPIPE);
    ix = next_index(v2, s1);
    T_EQ(ix.status, SN_LIVE_INDEX_INACTIVE); /* stream 0 not read out yet */
    T_EQU(ix.timestamp_end, 5000);
    T_EQ(next_index(v2, s0).status, SN_LIVE_INDEX_OK);
    T_EQ(next_index(v2, s0).status, SN_LIVE_INDEX_OK);
    T_EQ(next_index(v2, s0).status, SN_LIVE_INDEX_HUP);
    T_EQ(send_cmd(v2, c), 0);
    T_EQ(recv32(v2), SN_LIVE_NEW_STREAMS_HUP);
    T_EQ(recv32(v2), 0);
    T_EQ(send_cmd(v2, (struct sn_live_cmd){.cmd = SN_LIVE_LIST_SESSIONS}), 0);
    T_EQ(recv32(v2), 0); /* read out: no longer listed */

    struct sn_relay_stats st;
    sn_relay_stats(r, &st);
    T_EQU(st.viewers, 2);
    T_EQU(st.attached, 2);
    T_EQU(st.refused, 2);
    T_EQU(st.packets, 2);
    T_EQU(st.packet_bytes, 1900);
    close(v2);
    sn_relay_stop(r); /* with a viewer still connected */
    close(a);
    sn_live_feed_free(f);
}

/* A viewer that asks for a large packet and never reads: the others are answered and the
 * producer appends as usual; stop is clean with it stuck. */
static void test_slow_viewer(void)
{
    struct sn_relay *r;
    T_REQUIRE(sn_relay_start(&r, &(struct sn_relay_opts){.max_viewers = 3}) == 0);
    port = sn_relay_port(r);
    struct sn_live_feed *f = sn_live_feed_new(1, 64 << 20);
    T_EQ(sn_live_feed_metadata(f, "/* CTF 1.8 */", 13), 0);
    T_EQ(sn_relay_add(r, "vm", "big", 1000000, sn_live_feed_source(f)), 1);
    size_t big = 8 << 20;
    uint8_t *pkt = malloc(big);
    T_REQUIRE(pkt != NULL);
    make_packet(pkt, big, 0, 10, 20, 0);
    T_EQ(sn_live_feed_append(f, 0, pkt, big), 0);

    int slow = connect_viewer();
    uint32_t n;
    T_REQUIRE(slow >= 0 && attach(slow, 1, &n) == SN_LIVE_ATTACH_OK);
    for (uint32_t i = 0; i < n; i++)
        T_EQ(recv_n(slow, streams[0], SN_LIVE_STREAM_LEN), SN_LIVE_STREAM_LEN);
    struct sn_live_cmd c = {.cmd = SN_LIVE_GET_PACKET};
    c.u.get_packet.stream_id = (1ull << 32) | 1, c.u.get_packet.len = (uint32_t)big;
    for (int i = 0; i < 3; i++) /* queued behind an answer it does not read */
        T_EQ(send_cmd(slow, c), 0);

    uint64_t t = ms_now();
    int other = connect_viewer();
    T_REQUIRE(other >= 0);
    T_EQ(send_cmd(other, (struct sn_live_cmd){.cmd = SN_LIVE_LIST_SESSIONS}), 0);
    T_EQ(recv32(other), 1);
    uint8_t s[SN_LIVE_SESSION_LEN];
    T_EQ(recv_n(other, s, sizeof(s)), (ssize_t)sizeof(s));
    T_EQ(sn_live_rd32(s + 12), 1); /* one client attached */
    for (int i = 0; i < 20; i++) {
        make_packet(pkt, big, 0, 20 + (uint64_t)i, 21 + (uint64_t)i, 1 + (uint64_t)i);
        T_EQ(sn_live_feed_append(f, 0, pkt, big), 0);
    }
    T_OK(ms_now() - t < 2000);
    T_EQU(sn_live_feed_evicted(f), 13); /* 64 MiB kept: the newest 8 packets */

    /* over max_viewers (3): closed at once */
    int third = connect_viewer();
    T_OK(third >= 0);
    int fourth = dial();
    uint8_t b[4];
    T_EQ(recv_n(fourth, b, 4), 0);
    close(fourth);
    struct sn_relay_stats st;
    sn_relay_stats(r, &st);
    T_EQU(st.viewers, 3);
    T_EQU(st.refused, 1);

    sn_relay_stop(r);
    close(slow);
    close(other);
    close(third);
    sn_live_feed_free(f);
    free(pkt);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("protocol", test_protocol);
    t_run("slow_viewer", test_slow_viewer);
    return t_done();
}
