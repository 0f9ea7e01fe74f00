/*
 * A reader of Sonde's own CTF packets (ctf/packet.h's layout, the classes of
 * ctf/event_class.h): the inverse of live_packet.h, for `sonde trace` (which gets packets from
 * the live relay) and tools that step through a snapshot. It reads only what Sonde writes: the
 * one stream class, little-endian, byte-packed, the large event header and the {pid, tid}
 * context; the classes are parsed from the trace's metadata, as Sonde writes it (not any TSDL).
 * Every length is checked against the packet: bad bytes give -EINVAL, never a read outside them
 * (fuzz/fuzz_ctf_read.c).
 */
#ifndef SN_LIVE_CTF_READ_H
#define SN_LIVE_CTF_READ_H

#include <stddef.h>
#include <stdint.h>

#include "ctf/event_class.h"

struct sn_ctf_rd_packet {
    uint32_t cpu;
    uint64_t ts_begin, ts_end, seq, discarded;
    size_t content; /* bytes: header and events */
    size_t size;    /* bytes: the whole packet (the next one begins after it) */
};

/* Parses the header of the packet at p[len]. Returns 0, or -EINVAL (not a packet of Sonde's
 * layout, or sizes beyond len). */
int sn_ctf_rd_header(const uint8_t *p, size_t len, struct sn_ctf_rd_packet *out);

struct sn_ctf_rd_event {
    const struct sn_ctf_class *cls;
    uint64_t ts;
    int32_t pid, tid;
    const uint8_t *payload; /* in the packet */
    size_t len;
};

/* The event at *off of packet p (whose header pk describes): start with *off = 0 and *prev_ts =
 * 0. Returns 1 with *ev and *off, *prev_ts advanced; 0 at the end of the content; -EINVAL for
 * an unknown class id or an event cut by the end. */
int sn_ctf_rd_next(const struct sn_ctf_classes *cls, const uint8_t *p,
                   const struct sn_ctf_rd_packet *pk, size_t *off, uint64_t *prev_ts,
                   struct sn_ctf_rd_event *ev);

/* The value of field name of ev as an integer (U8..X64 kinds) into *v: 0, or -ENOENT. */
int sn_ctf_rd_int(const struct sn_ctf_rd_event *ev, const char *name, int64_t *v);
/* The text of field name (STRING or COMM kinds), NUL-terminated into out[cap]: 0 or -ENOENT. */
int sn_ctf_rd_str(const struct sn_ctf_rd_event *ev, const char *name, char *out, size_t cap);

/* Writes ev's fields as "name=value" separated by spaces (strings quoted, pointers in hex,
 * arrays in brackets) into out[cap], NUL-terminated and cut to fit. Returns the length. */
size_t sn_ctf_rd_format(const struct sn_ctf_rd_event *ev, char *out, size_t cap);

/* The event classes a trace's metadata declares, parsed from Sonde's own TSDL (the event
 * blocks tsdl.c writes: name, id, and fields whose declarations map back to ctf/field.h's
 * kinds), so that a reader decodes a trace without the writer's system call table (tracefs is
 * root's). names holds the field names the classes point into. */
struct sn_ctf_rd_classes {
    struct sn_ctf_classes cls;
    char *names;
};
/* Returns 0 and *out; -EINVAL when the text is not Sonde's metadata (an event block out of
 * shape, a field of an unknown declaration, ids not 0..n-1), -ENOMEM. */
int sn_ctf_rd_classes_parse(const char *meta, struct sn_ctf_rd_classes *out);
void sn_ctf_rd_classes_free(struct sn_ctf_rd_classes *c);

/* The clock's offset (wall clock - CLOCK_MONOTONIC, ns) the metadata declares (the clock
 * block's "offset = N;", in ns at Sonde's 1 GHz): 0, or -ENOENT when there is none. */
int sn_ctf_rd_clock_offset(const char *meta, int64_t *offset_ns);

#endif
