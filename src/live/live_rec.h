/*
 * Recording sessions published on the live relay (docs/recorder.md, "Live reading"): for each
 * live session a drain sink (rec/drain.h) that encodes each CPU's events into CTF packets
 * (live_packet.h, the trace writer's bytes) and appends them, with a beacon per pass, to the
 * session's live feed (live_feed.h), listed by the relay as host/NAME.
 *
 * When the session stops, its feed ends (the sink's end) but stays on the relay until its
 * viewer has read it to the end and left (babeltrace2 then exits), or, with no viewer
 * attached, for linger seconds (a viewer may still attach and read it), 10 minutes at most;
 * sn_live_rec_reap(), run after each drain round, removes what is done. A new session of the
 * same name replaces an ended one at once.
 *
 * Each stream's time only grows on the wire: an event earlier than the stream's last packet or
 * the last beacon (a nested interrupt's record split from its neighbour by a pass, drain.h) is
 * dropped and counted in the next packet's events_discarded, with the slots the drain lost.
 */
#ifndef SN_LIVE_REC_H
#define SN_LIVE_REC_H

#include <stddef.h>
#include <stdint.h>

#include "ctf/event_class.h"
#include "live/relay.h"
#include "rec/drain.h"

struct sn_live_rec_opts {
    struct sn_relay *relay; /* borrowed, outlives the publisher */
    const char *hostname;   /* the sessions' host in the URLs (cut to 63 bytes) */
    uint32_t period_ms;     /* the drain's period: the live timer the viewers are told */
    size_t max_bytes;       /* kept per stream (0: SN_LIVE_FEED_BUFFER) */
    unsigned linger_s;      /* an ended session without viewer stays listed (0: 10 s) */
};

struct sn_live_rec;

int sn_live_rec_new(struct sn_live_rec **out, const struct sn_live_rec_opts *o);

/* A sink publishing session name (ncpu streams, events of classes cls, borrowed until the
 * sink's end) on the relay from now on. Returns 0 and *out; -EEXIST when a session of that name
 * is still published, or -errno; why says which. The sink's end() ends the feed. */
int sn_live_rec_sink(struct sn_live_rec *p, const char *name, unsigned ncpu,
                     const struct sn_ctf_classes *cls, struct sn_rec_sink *out, char *why,
                     size_t len);

/* Removes the ended sessions that are done (read out, or without viewer for linger). */
void sn_live_rec_reap(void *p);

/* Sessions on the relay (live or ended, not yet removed). */
unsigned sn_live_rec_count(struct sn_live_rec *p);

/* Removes every ended session from the relay and frees p; every sink must have ended. */
void sn_live_rec_free(struct sn_live_rec *p);

#endif
