/*
 * The bytes of a CTF packet as lttng-modules lays them out for a kernel channel (little-endian,
 * byte-packed), declared by the metadata of tsdl.c:
 *
 *   off  size  packet header + context (84 bytes)
 *     0     4  magic 0xC1FC1FC1
 *     4    16  trace uuid
 *    20     4  stream_id (0: the one stream class)
 *    24     8  stream_instance_id (the CPU)
 *    32     8  timestamp_begin (<= the first event's ts)
 *    40     8  timestamp_end (>= the last event's ts; never 0)
 *    48     8  content_size, bits, header included
 *    56     8  packet_size, bits (== content_size: no padding)
 *    64     8  packet_seq_num (per CPU, continued across snapshots)
 *    72     8  events_discarded (free-running within the trace)
 *    80     4  cpu_id
 *
 * then events, each: the large event header, the context {i32 pid, i32 tid}, the payload.
 * Large header, compact form (6 bytes): u16 id, u32 low 32 bits of ts; extended form (14 bytes):
 * u16 65535, u32 id, u64 ts. A packet's first event is extended, and so is any event more than
 * 2^32 - 1 ns after the previous one (a reader rebuilds the compact ts from the previous one).
 */
#ifndef SN_CTF_PACKET_H
#define SN_CTF_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SN_CTF_MAGIC          0xC1FC1FC1u
#define SN_CTF_PACKET_HEADER  84 /* header + context bytes */
#define SN_CTF_EXTENDED_ID    65535
#define SN_CTF_HEADER_COMPACT 6
#define SN_CTF_HEADER_EXT     14
#define SN_CTF_EVENT_CONTEXT  8 /* i32 pid, i32 tid */

struct sn_ctf_packet_info {
    uint8_t uuid[16];
    uint32_t cpu;
    uint64_t ts_begin, ts_end;
    uint64_t bytes; /* the whole packet, header included */
    uint64_t seq;
    uint64_t discarded;
};

/* Writes the 84 bytes of header and context of packet p at out. */
void sn_ctf_packet_header(uint8_t out[SN_CTF_PACKET_HEADER], const struct sn_ctf_packet_info *p);

/* Whether an event at ts after one at prev_ts (first: the packet's first event) takes the
 * extended header. */
bool sn_ctf_needs_extended(bool first, uint32_t id, uint64_t ts, uint64_t prev_ts);

/* Writes the event header (compact or extended, as sn_ctf_needs_extended says) and the context
 * at out (room for SN_CTF_HEADER_EXT + SN_CTF_EVENT_CONTEXT bytes). Returns the bytes written. */
size_t sn_ctf_event_header(uint8_t *out, bool extended, uint32_t id, uint64_t ts, int32_t pid,
                           int32_t tid);

/* Little-endian stores. */
void sn_ctf_le16(uint8_t *p, uint16_t v);
void sn_ctf_le32(uint8_t *p, uint32_t v);
void sn_ctf_le64(uint8_t *p, uint64_t v);

#endif
