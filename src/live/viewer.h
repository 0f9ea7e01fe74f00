/*
 * A viewer of LTTng's live protocol (live_proto.h), the client side of relay.h: connects to a
 * relay, attaches to one session by name, reads its metadata and then, poll after poll, the
 * packets of its data streams as they come. `sonde trace` reads live sessions with it; the
 * wire code (requests, indexes) is live_proto.c's, shared with the relay.
 *
 * Blocking, one thread: every read and write is bounded by a timeout (10 s), so a relay that
 * stops answering is an error, never a hang.
 */
#ifndef SN_LIVE_VIEWER_H
#define SN_LIVE_VIEWER_H

#include <stddef.h>
#include <stdint.h>

struct sn_live_viewer;

/* Connects to the relay at addr:port (IPv4) and attaches to session name of host (NULL: of any
 * host). Returns 0 and *out; -ECONNREFUSED (and other connect errors), -ENOENT (no such
 * session), -EBUSY (another viewer is attached), -EPROTO (a bad answer); why says which. */
int sn_live_viewer_open(struct sn_live_viewer **out, const char *addr, uint16_t port,
                        const char *host, const char *name, char *why, size_t len);

/* The session's metadata text read at attach (NUL-terminated) and its length. */
const char *sn_live_viewer_metadata(const struct sn_live_viewer *v, size_t *len);

/* What a poll hands over: one whole CTF packet of data stream (0-based: the CPU). */
typedef int (*sn_live_packet_fn)(void *ctx, unsigned stream, const uint8_t *pkt, size_t len);

/* Asks every stream for its new packets (at most 64 each) and hands them to fn (a negative
 * return from fn stops the poll and is returned). Returns the packets handed, 0 when none was
 * new, -EPIPE when the session has ended and every stream was read to its end, or -errno. */
int sn_live_viewer_poll(struct sn_live_viewer *v, sn_live_packet_fn fn, void *ctx);

void sn_live_viewer_close(struct sn_live_viewer *v);

#endif
