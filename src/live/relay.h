/*
 * The live relay: the viewer side of LTTng's relay daemon (live_proto.h), so that
 * `babeltrace2 -i lttng-live net://127.0.0.1:5344/host/HOST/SESSION` reads a recording
 * session while it runs. One thread, one epoll: it accepts viewers, answers their commands
 * from the sessions' live sources, and never blocks on a viewer (non-blocking sockets, one
 * bounded answer in flight per viewer; a viewer that does not read its answer is not read
 * from). The producers feeding the sources never wait for a viewer either: a source is read
 * under its own short lock (live_feed.h), never while a socket is written.
 *
 * A session is a live source: numbered data streams (a CPU each), the trace's metadata, and
 * packets per stream at growing byte offsets. One viewer per session at a time (a second one
 * gets ATTACH ALREADY, as relayd); an attached viewer reads each stream from its oldest packet
 * still kept. Stream ids on the wire are (session id << 32) | (1 + stream), 0 for the metadata
 * stream. When every stream of an ended source has been read to its end, GET_NEXT_INDEX
 * answers HUP, GET_NEW_STREAMS HUP, and LIST_SESSIONS stops listing the session: a viewer
 * started with --params='session-not-found-action="end"' then exits.
 */
#ifndef SN_LIVE_RELAY_H
#define SN_LIVE_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "live/live_proto.h"

enum sn_live_next {
    SN_LIVE_NEXT_PACKET = 1, /* *ix describes the packet */
    SN_LIVE_NEXT_RETRY,      /* nothing yet */
    SN_LIVE_NEXT_INACTIVE,   /* nothing yet, and nothing before ix->timestamp_end will come */
    SN_LIVE_NEXT_HUP,        /* the stream ended and everything was read; ix->timestamp_end
                                is its last time */
};

/* What a session reads from. Called from the relay's thread only, possibly while producers
 * append (the source's own locking). */
struct sn_live_source {
    void *ctx;
    /* The number of data streams (fixed for the session). */
    unsigned (*streams)(void *ctx);
    /* Copies the metadata text from byte from, at most cap bytes, into buf. Returns the bytes
     * copied (0: nothing after from). */
    size_t (*metadata)(void *ctx, uint64_t from, uint8_t *buf, size_t cap);
    /* The first packet of stream at or after byte offset from (packets evicted before a slow
     * viewer read them are skipped: a packet_seq_num gap). On SN_LIVE_NEXT_PACKET fills ix's
     * offset (bytes), packet_size and content_size (bits), timestamps, events_discarded and
     * stream_id (the CTF stream class). */
    enum sn_live_next (*next_packet)(void *ctx, unsigned stream, uint64_t from,
                                     struct sn_live_index *ix);
    /* Copies the len bytes of stream at offset into buf: a packet or a part of one (a viewer
     * may read a packet in pieces). Returns 0, or -ENOENT when they are not within one kept
     * packet (evicted, or a bad request). */
    int (*read_packet)(void *ctx, unsigned stream, uint64_t offset, uint8_t *buf, size_t len);
};

struct sn_relay_opts {
    const char *addr;     /* listen address, IPv4; NULL: 127.0.0.1 */
    uint16_t port;        /* 0: any free port (sn_relay_port() says which) */
    unsigned max_viewers; /* 0: 64; more are accepted and closed at once */
    uint32_t max_packet;  /* the largest GET_PACKET served; 0: 16 MiB */
};

struct sn_relay;

/* Listens and starts the relay's thread. Returns 0 and *out, or -errno. */
int sn_relay_start(struct sn_relay **out, const struct sn_relay_opts *opts);
uint16_t sn_relay_port(const struct sn_relay *r);

/* Adds a session (hostname and name as the URL names them, live_timer_us the flush period the
 * viewer is told); src is borrowed until sn_relay_remove() or sn_relay_stop() returns. Returns
 * its id (> 0) or -errno (-EEXIST for a name already there). */
int64_t sn_relay_add(struct sn_relay *r, const char *hostname, const char *name,
                     uint32_t live_timer_us, const struct sn_live_source *src);
/* Removes a session: once this returns the relay no longer calls its source; its viewer, if
 * any, sees the session gone. Returns 0 or -ENOENT. */
int sn_relay_remove(struct sn_relay *r, int64_t id);

/* A session's state: SN_RELAY_IDLE (no viewer), SN_RELAY_ATTACHED (a viewer reads it),
 * SN_RELAY_DRAINED (its source ended, a viewer read it to the end and left), or -ENOENT. */
enum { SN_RELAY_IDLE, SN_RELAY_ATTACHED, SN_RELAY_DRAINED };
int sn_relay_state(struct sn_relay *r, int64_t id);

struct sn_relay_stats {
    uint64_t viewers;               /* connected now */
    uint64_t attached;              /* ATTACH_SESSION answered OK, in all */
    uint64_t commands;              /* commands answered */
    uint64_t packets, packet_bytes; /* GET_PACKET answered OK (packets or pieces), bytes */
    uint64_t refused; /* connections closed for a protocol error or over max_viewers */
};
void sn_relay_stats(struct sn_relay *r, struct sn_relay_stats *out);

/* Stops the thread, closes every viewer and the listener, frees r. NULL is a no-op. */
void sn_relay_stop(struct sn_relay *r);

#endif
