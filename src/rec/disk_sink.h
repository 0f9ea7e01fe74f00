/*
 * Disk mode (docs/recorder.md, "Disk mode"): a drain sink (drain.h) that writes a session's
 * events continuously as CTF traces on disk, in chunks, as LTTng's rotation does: each chunk a
 * self-contained trace (DIR/chunk-NNNNNN/kernel/{metadata, chan_N}, ctf/writer.h's layout)
 * that babeltrace2 reads alone, the chunks of a session merging into one timeline (one clock,
 * packet_seq_num continued from chunk to chunk).
 *
 * A chunk is written as a hidden DIR/.chunk-NNNNNN.part and renamed when it is closed, so a
 * reader never sees a partial one; it is closed at the first pass end after it holds
 * chunk_bytes of packets or its first event is chunk_ns old, and at the session's end. With
 * max_bytes, the oldest closed chunks are removed while the closed ones exceed it (the newest
 * is always kept). Packets are written at each pass end, so memory holds one pass of events.
 *
 * Events earlier than their CPU's last written packet (a nested interrupt's record split from
 * its neighbour by a pass, drain.h) are dropped and counted as discarded, with the slots the
 * drain lost; a chunk that fails to write (disk full) is removed, its events counted lost, and
 * the next pass starts a new one.
 */
#ifndef SN_REC_DISK_SINK_H
#define SN_REC_DISK_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "ctf/event_class.h"
#include "rec/drain.h"

#define SN_REC_DISK_CHUNK_BYTES (64ull << 20)
#define SN_REC_DISK_CHUNK_NS    (60ull * 1000000000)
/* Each closed chunk's index, DIR/chunk-NNNNNN/sonde-chunk.json: {chunk, bytes (its packets),
 * first_ns, last_ns (its earliest and latest event, CLOCK_MONOTONIC), events, lost (the
 * session's events lost so far, this chunk's close included)}. */
#define SN_REC_DISK_INDEX       "sonde-chunk.json"

struct sn_rec_disk_opts {
    const char *dir;                  /* the session's directory (created when absent) */
    const char *session;              /* its name: the traces' sonde_session */
    const struct sn_ctf_classes *cls; /* borrowed until the sink's end */
    unsigned ncpu;                    /* CPUs of the ring */
    uint64_t chunk_bytes;             /* 0: SN_REC_DISK_CHUNK_BYTES */
    uint64_t chunk_ns;                /* 0: SN_REC_DISK_CHUNK_NS */
    uint64_t max_bytes;               /* cap on the closed chunks (0: none) */
};

struct sn_rec_disk_stats {
    uint64_t chunks, removed, events, lost;
};

struct sn_rec_disk;

/* The sink (its ctx is the returned *disk, valid until the sink's end()). Returns 0, or
 * -EINVAL (bad options), -errno (the directory cannot be made); why says which. */
int sn_rec_disk_sink(const struct sn_rec_disk_opts *o, struct sn_rec_sink *out,
                     struct sn_rec_disk **disk, char *why, size_t len);

/* Counts so far: from the sink's thread (the drain's), before the sink's end(), which frees d
 * (the end logs them). */
void sn_rec_disk_stats(const struct sn_rec_disk *d, struct sn_rec_disk_stats *out);

#endif
