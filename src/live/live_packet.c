/*
 * In-memory CTF packets (live_packet.h): header space first, events appended with their
 * compact or extended headers, then the header written with the final length and times.
 */
#include "live/live_packet.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "core/grow.h"
#include "ctf/packet.h"

ssize_t sn_live_packet(const struct sn_live_packet_info *pi, const struct sn_rec_event *ev,
                       size_t n, uint8_t **buf, size_t *cap)
{
    if (n == 0)
        return -EINVAL;
    size_t len = SN_CTF_PACKET_HEADER;
    uint64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        const struct sn_ctf_class *c = sn_ctf_class_of(pi->classes, &ev[i]);
        if (!c || (i > 0 && ev[i].ts < prev))
            return -EINVAL;
        size_t room = 0, plen;
        for (;;) {
            uint8_t *g =
                sn_grow(*buf, cap, len + SN_CTF_HEADER_EXT + SN_CTF_EVENT_CONTEXT + room, 1);
            if (!g)
                return -ENOMEM;
            *buf = g;
            size_t at = len + SN_CTF_HEADER_EXT + SN_CTF_EVENT_CONTEXT; /* at most */
            plen = sn_ctf_encode(c, &ev[i], *buf + at, *cap - at);
            if (plen <= *cap - at)
                break;
            room = plen;
        }
        bool ext = sn_ctf_needs_extended(i == 0, c->id, ev[i].ts, prev);
        size_t h = sn_ctf_event_header(*buf + len, ext, c->id, ev[i].ts, ev[i].pid, ev[i].tid);
        /* the payload was encoded after room for the largest header: move it next to it */
        memmove(*buf + len + h, *buf + len + SN_CTF_HEADER_EXT + SN_CTF_EVENT_CONTEXT, plen);
        len += h + plen;
        prev = ev[i].ts;
    }
    struct sn_ctf_packet_info h = {.cpu = pi->cpu,
                                   .ts_begin = ev[0].ts,
                                   .ts_end = ev[n - 1].ts,
                                   .bytes = len,
                                   .seq = pi->seq,
                                   .discarded = pi->discarded};
    memcpy(h.uuid, pi->uuid, 16);
    sn_ctf_packet_header(*buf, &h);
    return (ssize_t)len;
}
