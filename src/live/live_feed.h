/*
 * A live source (relay.h) fed by a producer: whole CTF packets appended per stream as they are
 * made (the src/ctf packet layout, packet.h), the trace's metadata text, and beacons. The
 * recorder's drain thread feeds one per live session each flush period; tests feed one by
 * hand. Thread-safe: one mutex, held only to copy bytes in or out, so a producer never waits
 * for a viewer.
 *
 * Each stream keeps its newest packets up to max_bytes; older ones are evicted (a slow viewer
 * loses them and sees the packet_seq_num gap, the producer never waits). A beacon at ts says
 * that nothing earlier than ts will be appended on any stream: a stream with nothing new then
 * answers INACTIVE with ts, which lets the viewer's muxer move past an idle CPU.
 */
#ifndef SN_LIVE_FEED_H
#define SN_LIVE_FEED_H

#include <stddef.h>
#include <stdint.h>

#include "live/relay.h"

#define SN_LIVE_FEED_BUFFER (8u << 20) /* bytes kept per stream by default */

struct sn_live_feed;

/* A feed of nstreams streams (1..4096) keeping max_bytes per stream (0: SN_LIVE_FEED_BUFFER).
 * NULL on bad arguments or short memory. */
struct sn_live_feed *sn_live_feed_new(unsigned nstreams, size_t max_bytes);

/* Appends text to the metadata (the viewer is told there is more). Returns 0 or -ENOMEM. */
int sn_live_feed_metadata(struct sn_live_feed *f, const char *text, size_t len);

/* Appends one whole CTF packet to stream. Returns 0; -EINVAL for a stream out of range, a
 * packet whose header is not a CTF packet of exactly len bytes, or one that begins before the
 * last beacon or the stream's previous packet's end; -EPIPE after sn_live_feed_end();
 * -ENOMEM. */
int sn_live_feed_append(struct sn_live_feed *f, unsigned stream, const uint8_t *pkt, size_t len);

/* Nothing earlier than ts will be appended (ts only grows; a smaller one is ignored). */
void sn_live_feed_beacon(struct sn_live_feed *f, uint64_t ts);

/* No more packets: streams hang up once read to their end. */
void sn_live_feed_end(struct sn_live_feed *f);

/* Packets evicted to keep within max_bytes, in all. */
uint64_t sn_live_feed_evicted(struct sn_live_feed *f);

/* The feed as a relay source (valid until sn_live_feed_free). */
const struct sn_live_source *sn_live_feed_source(struct sn_live_feed *f);

void sn_live_feed_free(struct sn_live_feed *f);

#endif
