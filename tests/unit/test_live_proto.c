/*
 * The live protocol's codec and request parser (src/live/live_proto.h): the wire sizes
 * babeltrace2 2.0.4 expects (16/20/339/4371/64), big-endian bytes at the documented offsets,
 * every command's request parsed, and every wrong data_size refused.
 */
#include <errno.h>
#include <string.h>

#include "live/live_proto.h"
#include "t.h"

static uint8_t buf[SN_LIVE_STREAM_LEN + 16];

static void test_sizes(void)
{
    T_EQ(SN_LIVE_CMD_HDR, 16);
    T_EQ(SN_LIVE_CONNECT_LEN, 20);
    T_EQ(SN_LIVE_SESSION_LEN, 8 + 4 + 4 + 4 + 64 + 255);
    T_EQ(SN_LIVE_SESSION_LEN, 339);
    T_EQ(SN_LIVE_STREAM_LEN, 8 + 8 + 4 + 4096 + 255);
    T_EQ(SN_LIVE_STREAM_LEN, 4371);
    T_EQ(SN_LIVE_INDEX_LEN, 64);
    static const int payload[] = {-1, 20, 0, 20, 8, 20, 8, 8, 0, 8, -1};
    for (uint32_t c = 0; c <= 10; c++)
        T_EQ(sn_live_cmd_payload(c), payload[c]);
    T_EQ(sn_live_cmd_payload(0xffffffffu), -1);
}

static void test_big_endian(void)
{
    memset(buf, 0xee, sizeof(buf));
    sn_live_put_connect(buf, 0x0102030405060708ull, 2, 4, 1);
    static const uint8_t conn[20] = {1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 1};
    T_MEM(buf, conn, 20);
    T_EQ(buf[20], 0xee);

    memset(buf, 0xee, sizeof(buf));
    sn_live_put_session(buf, &(struct sn_live_session_info){.id = 7,
                                                            .live_timer_us = 1000000,
                                                            .clients = 1,
                                                            .streams = 3,
                                                            .hostname = "vm",
                                                            .name = "rec1"});
    static const uint8_t sess[20] = {0,    0,    0, 0, 0, 0, 0, 7, 0, 0x0f,
                                     0x42, 0x40, 0, 0, 0, 1, 0, 0, 0, 3};
    T_MEM(buf, sess, 20);
    T_STR((char *)buf + 20, "vm");
    T_EQ(buf[20 + 63], 0);
    T_STR((char *)buf + 84, "rec1");
    T_EQ(buf[338], 0);
    T_EQ(buf[339], 0xee);

    /* names are cut to leave their NUL */
    char longname[400];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    sn_live_put_session(buf,
                        &(struct sn_live_session_info){.hostname = longname, .name = longname});
    T_EQ(strlen((char *)buf + 20), 63);
    T_EQ(strlen((char *)buf + 84), 254);

    memset(buf, 0xee, sizeof(buf));
    sn_live_put_stream(buf, &(struct sn_live_stream_info){.id = 0x100000001ull,
                                                          .ctf_trace_id = 1,
                                                          .metadata_flag = 1,
                                                          .path_name = "kernel",
                                                          .channel = "metadata"});
    static const uint8_t str[20] = {0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1};
    T_MEM(buf, str, 20);
    T_STR((char *)buf + 20, "kernel");
    T_STR((char *)buf + 20 + 4096, "metadata");
    T_EQ(buf[4370], 0);
    T_EQ(buf[4371], 0xee);

    memset(buf, 0xee, sizeof(buf));
    struct sn_live_index ix = {.offset = 0x1122,
                               .packet_size = 8 * 200,
                               .content_size = 8 * 190,
                               .timestamp_begin = 0x0a0b0c0d0e0f1011ull,
                               .timestamp_end = 5,
                               .events_discarded = 3,
                               .stream_id = 0,
                               .status = SN_LIVE_INDEX_INACTIVE,
                               .flags = SN_LIVE_FLAG_NEW_METADATA | SN_LIVE_FLAG_NEW_STREAM};
    sn_live_put_index(buf, &ix);
    static const uint8_t idx[64] = {
        0, 0, 0, 0, 0, 0, 0x11, 0x22, 0,    0,    0,    0,    0,    0,    0x06, 0x40,
        0, 0, 0, 0, 0, 0, 0x05, 0xf0, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11,
        0, 0, 0, 0, 0, 0, 0,    5,    0,    0,    0,    0,    0,    0,    0,    3,
        0, 0, 0, 0, 0, 0, 0,    0,    0,    0,    0,    5,    0,    0,    0,    3};
    T_MEM(buf, idx, 64);
    T_EQ(buf[64], 0xee);
    struct sn_live_index back;
    sn_live_get_index(buf, &back);
    T_OK(memcmp(&back, &ix, sizeof(ix)) == 0);
}

/* A request's bytes: header with data_size size, command cmd, then size bytes of payload. */
static size_t req(uint8_t *out, uint64_t size, uint32_t cmd, const uint8_t *payload)
{
    sn_live_be64(out, size);
    sn_live_be32(out + 8, cmd);
    sn_live_be32(out + 12, 0);
    if (size)
        memcpy(out + 16, payload, size);
    return 16 + size;
}

static void test_parse(void)
{
    uint8_t b[64], p[24] = {0};
    struct sn_live_cmd c;

    sn_live_put_connect(p, 0, 2, 15, SN_LIVE_CLIENT_COMMAND);
    size_t n = req(b, 20, SN_LIVE_CONNECT, p);
    for (size_t k = 0; k < n; k++) /* every prefix: need more */
        T_EQ(sn_live_cmd_parse(b, k, &c), 0);
    T_EQ(sn_live_cmd_parse(b, n, &c), 36);
    T_EQ(c.cmd, SN_LIVE_CONNECT);
    T_EQ(c.u.connect.major, 2);
    T_EQ(c.u.connect.minor, 15);
    T_EQ(c.u.connect.type, 1);

    sn_live_be64(p, 9);
    sn_live_be64(p + 8, 0x1234);
    sn_live_be32(p + 16, SN_LIVE_SEEK_LAST);
    T_EQ(sn_live_cmd_parse(b, req(b, 20, SN_LIVE_ATTACH_SESSION, p), &c), 36);
    T_EQU(c.u.attach.session_id, 9);
    T_EQU(c.u.attach.offset, 0x1234);
    T_EQ(c.u.attach.seek, 2);

    sn_live_be64(p, 0x100000002ull);
    sn_live_be64(p + 8, 4096);
    sn_live_be32(p + 16, 1500);
    T_EQ(sn_live_cmd_parse(b, req(b, 20, SN_LIVE_GET_PACKET, p), &c), 36);
    T_EQU(c.u.get_packet.stream_id, 0x100000002ull);
    T_EQU(c.u.get_packet.offset, 4096);
    T_EQ(c.u.get_packet.len, 1500);

    T_EQ(sn_live_cmd_parse(b, req(b, 8, SN_LIVE_GET_NEXT_INDEX, p), &c), 24);
    T_EQU(c.u.stream_id, 0x100000002ull);
    T_EQ(sn_live_cmd_parse(b, req(b, 8, SN_LIVE_GET_METADATA, p), &c), 24);
    T_EQU(c.u.stream_id, 0x100000002ull);
    T_EQ(sn_live_cmd_parse(b, req(b, 8, SN_LIVE_GET_NEW_STREAMS, p), &c), 24);
    T_EQU(c.u.session_id, 0x100000002ull);
    T_EQ(sn_live_cmd_parse(b, req(b, 8, SN_LIVE_DETACH_SESSION, p), &c), 24);
    T_EQU(c.u.session_id, 0x100000002ull);
    T_EQ(sn_live_cmd_parse(b, req(b, 0, SN_LIVE_LIST_SESSIONS, p), &c), 16);
    T_EQ(c.cmd, SN_LIVE_LIST_SESSIONS);
    T_EQ(sn_live_cmd_parse(b, req(b, 0, SN_LIVE_CREATE_SESSION, p), &c), 16);

    /* encode is parse's inverse */
    uint8_t e[SN_LIVE_CMD_HDR + SN_LIVE_CMD_MAX];
    sn_live_put_connect(p, 77, 2, 4, 1);
    n = req(b, 20, SN_LIVE_CONNECT, p);
    T_EQ(sn_live_cmd_parse(b, n, &c), 36);
    T_EQ(sn_live_cmd_encode(&c, e), 36);
    T_MEM(e, b, 36);
    T_EQ(sn_live_cmd_encode(&(struct sn_live_cmd){.cmd = 42}, e), -EINVAL);
}

/* Every command with every data_size but its own, and unknown commands, are refused from the
 * header alone (no waiting for a payload that a bad length announces). */
static void test_bad_lengths(void)
{
    uint8_t b[16];
    struct sn_live_cmd c;
    static const uint64_t sizes[] = {0, 1, 7, 8, 9, 16, 19, 20, 21, 36, 4096, 1ull << 32, ~0ull};
    for (uint32_t cmd = 1; cmd <= 9; cmd++) {
        int own = sn_live_cmd_payload(cmd);
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            if (sizes[i] == (uint64_t)own)
                continue;
            sn_live_be64(b, sizes[i]);
            sn_live_be32(b + 8, cmd);
            sn_live_be32(b + 12, 0);
            if (!T_EQ(sn_live_cmd_parse(b, 16, &c), -EPROTO))
                t_note("cmd %u size %llu", cmd, (unsigned long long)sizes[i]);
        }
    }
    static const uint32_t unknown[] = {0, 10, 11, 255, 0x01000000, 0xffffffffu};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        sn_live_be64(b, 0);
        sn_live_be32(b + 8, unknown[i]);
        T_EQ(sn_live_cmd_parse(b, 16, &c), -EPROTO);
    }
    /* a header cut short is not judged yet */
    T_EQ(sn_live_cmd_parse(b, 15, &c), 0);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("sizes", test_sizes);
    t_run("big_endian", test_big_endian);
    t_run("parse", test_parse);
    t_run("bad_lengths", test_bad_lengths);
    return t_done();
}
