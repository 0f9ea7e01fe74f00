/*
 * The live protocol's codec and request parser (live_proto.h), written from lttng-tools'
 * doc/live-reading-protocol.md: fixed-size packed big-endian structs, stored byte by byte so
 * that neither the host's byte order nor its alignment matters.
 */
#include "live/live_proto.h"

#include <errno.h>
#include <string.h>

void sn_live_be32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

void sn_live_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

uint32_t sn_live_rd32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = v << 8 | p[i];
    return v;
}

uint64_t sn_live_rd64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

int sn_live_cmd_payload(uint32_t cmd)
{
    switch (cmd) {
    case SN_LIVE_CONNECT:
    case SN_LIVE_ATTACH_SESSION:
    case SN_LIVE_GET_PACKET:
        return 20;
    case SN_LIVE_LIST_SESSIONS:
    case SN_LIVE_CREATE_SESSION:
        return 0;
    case SN_LIVE_GET_NEXT_INDEX:
    case SN_LIVE_GET_METADATA:
    case SN_LIVE_GET_NEW_STREAMS:
    case SN_LIVE_DETACH_SESSION:
        return 8;
    default:
        return -1;
    }
}

int sn_live_cmd_parse(const uint8_t *buf, size_t len, struct sn_live_cmd *out)
{
    if (len < SN_LIVE_CMD_HDR)
        return 0;
    uint64_t size = sn_live_rd64(buf);
    uint32_t cmd = sn_live_rd32(buf + 8);
    int want = sn_live_cmd_payload(cmd);
    if (want < 0 || size != (uint64_t)want)
        return -EPROTO;
    if (len < SN_LIVE_CMD_HDR + (size_t)want)
        return 0;
    memset(out, 0, sizeof(*out));
    out->cmd = cmd;
    out->version = sn_live_rd32(buf + 12);
    const uint8_t *p = buf + SN_LIVE_CMD_HDR;
    switch (cmd) {
    case SN_LIVE_CONNECT:
        out->u.connect.viewer_session_id = sn_live_rd64(p);
        out->u.connect.major = sn_live_rd32(p + 8);
        out->u.connect.minor = sn_live_rd32(p + 12);
        out->u.connect.type = sn_live_rd32(p + 16);
        break;
    case SN_LIVE_ATTACH_SESSION:
        out->u.attach.session_id = sn_live_rd64(p);
        out->u.attach.offset = sn_live_rd64(p + 8);
        out->u.attach.seek = sn_live_rd32(p + 16);
        break;
    case SN_LIVE_GET_PACKET:
        out->u.get_packet.stream_id = sn_live_rd64(p);
        out->u.get_packet.offset = sn_live_rd64(p + 8);
        out->u.get_packet.len = sn_live_rd32(p + 16);
        break;
    case SN_LIVE_GET_NEXT_INDEX:
    case SN_LIVE_GET_METADATA:
        out->u.stream_id = sn_live_rd64(p);
        break;
    case SN_LIVE_GET_NEW_STREAMS:
    case SN_LIVE_DETACH_SESSION:
        out->u.session_id = sn_live_rd64(p);
        break;
    default:
        break;
    }
    return SN_LIVE_CMD_HDR + want;
}

int sn_live_cmd_encode(const struct sn_live_cmd *c, uint8_t *out)
{
    int want = sn_live_cmd_payload(c->cmd);
    if (want < 0)
        return -EINVAL;
    sn_live_be64(out, (uint64_t)want);
    sn_live_be32(out + 8, c->cmd);
    sn_live_be32(out + 12, c->version);
    uint8_t *p = out + SN_LIVE_CMD_HDR;
    switch (c->cmd) {
    case SN_LIVE_CONNECT:
        sn_live_put_connect(p, c->u.connect.viewer_session_id, c->u.connect.major,
                            c->u.connect.minor, c->u.connect.type);
        break;
    case SN_LIVE_ATTACH_SESSION:
        sn_live_be64(p, c->u.attach.session_id);
        sn_live_be64(p + 8, c->u.attach.offset);
        sn_live_be32(p + 16, c->u.attach.seek);
        break;
    case SN_LIVE_GET_PACKET:
        sn_live_be64(p, c->u.get_packet.stream_id);
        sn_live_be64(p + 8, c->u.get_packet.offset);
        sn_live_be32(p + 16, c->u.get_packet.len);
        break;
    case SN_LIVE_GET_NEXT_INDEX:
    case SN_LIVE_GET_METADATA:
        sn_live_be64(p, c->u.stream_id);
        break;
    case SN_LIVE_GET_NEW_STREAMS:
    case SN_LIVE_DETACH_SESSION:
        sn_live_be64(p, c->u.session_id);
        break;
    default:
        break;
    }
    return SN_LIVE_CMD_HDR + want;
}

/* Copies s into a fixed NUL-padded field of n bytes, cut to n - 1. */
static void put_name(uint8_t *out, size_t n, const char *s)
{
    memset(out, 0, n);
    if (!s)
        return;
    size_t l = strnlen(s, n - 1);
    memcpy(out, s, l);
}

void sn_live_put_session(uint8_t out[SN_LIVE_SESSION_LEN], const struct sn_live_session_info *s)
{
    sn_live_be64(out, s->id);
    sn_live_be32(out + 8, s->live_timer_us);
    sn_live_be32(out + 12, s->clients);
    sn_live_be32(out + 16, s->streams);
    put_name(out + 20, SN_LIVE_HOST_NAME, s->hostname);
    put_name(out + 20 + SN_LIVE_HOST_NAME, SN_LIVE_SESSION_NAME, s->name);
}

void sn_live_put_stream(uint8_t out[SN_LIVE_STREAM_LEN], const struct sn_live_stream_info *s)
{
    sn_live_be64(out, s->id);
    sn_live_be64(out + 8, s->ctf_trace_id);
    sn_live_be32(out + 16, s->metadata_flag);
    put_name(out + 20, SN_LIVE_PATH_NAME, s->path_name);
    put_name(out + 20 + SN_LIVE_PATH_NAME, SN_LIVE_CHANNEL_NAME, s->channel);
}

void sn_live_put_index(uint8_t out[SN_LIVE_INDEX_LEN], const struct sn_live_index *ix)
{
    sn_live_be64(out, ix->offset);
    sn_live_be64(out + 8, ix->packet_size);
    sn_live_be64(out + 16, ix->content_size);
    sn_live_be64(out + 24, ix->timestamp_begin);
    sn_live_be64(out + 32, ix->timestamp_end);
    sn_live_be64(out + 40, ix->events_discarded);
    sn_live_be64(out + 48, ix->stream_id);
    sn_live_be32(out + 56, ix->status);
    sn_live_be32(out + 60, ix->flags);
}

void sn_live_get_index(const uint8_t in[SN_LIVE_INDEX_LEN], struct sn_live_index *ix)
{
    ix->offset = sn_live_rd64(in);
    ix->packet_size = sn_live_rd64(in + 8);
    ix->content_size = sn_live_rd64(in + 16);
    ix->timestamp_begin = sn_live_rd64(in + 24);
    ix->timestamp_end = sn_live_rd64(in + 32);
    ix->events_discarded = sn_live_rd64(in + 40);
    ix->stream_id = sn_live_rd64(in + 48);
    ix->status = sn_live_rd32(in + 56);
    ix->flags = sn_live_rd32(in + 60);
}

void sn_live_put_connect(uint8_t out[SN_LIVE_CONNECT_LEN], uint64_t viewer_session_id,
                         uint32_t major, uint32_t minor, uint32_t type)
{
    sn_live_be64(out, viewer_session_id);
    sn_live_be32(out + 8, major);
    sn_live_be32(out + 12, minor);
    sn_live_be32(out + 16, type);
}
