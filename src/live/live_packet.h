/*
 * One CPU's events as one CTF packet in memory, for a live feed (live_feed.h): the same
 * bytes the trace writer puts in a stream file (ctf/packet.h's header and event headers,
 * ctf/event_class.h's payloads), built without a file. The recorder's live drain and the live
 * tests and bench make their packets with it.
 */
#ifndef SN_LIVE_PACKET_H
#define SN_LIVE_PACKET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ctf/event_class.h"
#include "ctf/rec_event.h"

struct sn_live_packet_info {
    const struct sn_ctf_classes *classes;
    uint8_t uuid[16]; /* the trace's */
    unsigned cpu;
    uint64_t seq;       /* packet_seq_num */
    uint64_t discarded; /* events_discarded, free-running */
};

/* Encodes ev[n] (n >= 1, sorted by ts) into *buf (grown with sn_grow; *cap its size). Returns
 * the packet's length, or -EINVAL (n == 0, events out of order, an unknown type), -ENOMEM. */
ssize_t sn_live_packet(const struct sn_live_packet_info *pi, const struct sn_rec_event *ev,
                       size_t n, uint8_t **buf, size_t *cap);

#endif
