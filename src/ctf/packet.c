/*
 * Packet headers and event headers of the recorder's CTF streams (layout in packet.h).
 */
#include "ctf/packet.h"

#include <string.h>

void sn_ctf_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

void sn_ctf_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void sn_ctf_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void sn_ctf_packet_header(uint8_t out[SN_CTF_PACKET_HEADER], const struct sn_ctf_packet_info *p)
{
    sn_ctf_le32(out + 0, SN_CTF_MAGIC);
    memcpy(out + 4, p->uuid, 16);
    sn_ctf_le32(out + 20, 0);
    sn_ctf_le64(out + 24, p->cpu);
    sn_ctf_le64(out + 32, p->ts_begin);
    sn_ctf_le64(out + 40, p->ts_end);
    sn_ctf_le64(out + 48, p->bytes * 8);
    sn_ctf_le64(out + 56, p->bytes * 8);
    sn_ctf_le64(out + 64, p->seq);
    sn_ctf_le64(out + 72, p->discarded);
    sn_ctf_le32(out + 80, p->cpu);
}

bool sn_ctf_needs_extended(bool first, uint32_t id, uint64_t ts, uint64_t prev_ts)
{
    return first || id >= SN_CTF_EXTENDED_ID || ts < prev_ts || ts - prev_ts > UINT32_MAX;
}

size_t sn_ctf_event_header(uint8_t *out, bool extended, uint32_t id, uint64_t ts, int32_t pid,
                           int32_t tid)
{
    size_t n;
    if (extended) {
        sn_ctf_le16(out, SN_CTF_EXTENDED_ID);
        sn_ctf_le32(out + 2, id);
        sn_ctf_le64(out + 6, ts);
        n = SN_CTF_HEADER_EXT;
    } else {
        sn_ctf_le16(out, (uint16_t)id);
        sn_ctf_le32(out + 2, (uint32_t)ts);
        n = SN_CTF_HEADER_COMPACT;
    }
    sn_ctf_le32(out + n, (uint32_t)pid);
    sn_ctf_le32(out + n + 4, (uint32_t)tid);
    return n + SN_CTF_EVENT_CONTEXT;
}
