/*
 * The continuous consumer of recording sessions: one thread that, every period, takes a
 * snapshot of each drained session's rings through the session's own consumer (ring.h: its
 * cursors are its own, so manual snapshots and triggers are not disturbed), decodes the records
 * and hands them to the session's sinks. The live stream (live/live_rec.h) is a sink; a disk
 * writer (rec/disk_sink.h: continuous CTF files with rotation) is another, of the same drain.
 *
 * A pass, for each session: T = CLOCK_MONOTONIC now, then the snapshot (each CPU's head is read
 * after T), then for each CPU its records in time order, in chunks (events()), then pass_end(T).
 * Records not in this pass were reserved after their CPU's head was read, so their time (taken
 * by the kernel after the reservation) is later than T: T is a sound beacon, "nothing earlier
 * than T will come". Within one CPU a record of the next pass can still precede this pass's
 * last one when it interrupted it between its reservation and its clock read (rare): sinks that
 * need a stream's time to grow drop it and count it as lost.
 *
 * Thread-safety: add and remove may be called from any thread; remove waits for a pass in
 * progress, runs a last pass and ends the sinks before it returns, so the ring may be destroyed
 * right after. The sinks are called from the drain's thread only (and from remove's caller for
 * the last pass, never concurrently with the thread for the same session).
 */
#ifndef SN_REC_DRAIN_H
#define SN_REC_DRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "ctf/rec_event.h"
#include "rec/ring.h"

#define SN_REC_DRAIN_PERIOD_MS 100  /* default flush period */
#define SN_REC_DRAIN_SINKS     4    /* sinks per session */
#define SN_REC_DRAIN_CHUNK     1024 /* events handed per events() call at most */

/* Where a session's events go. Strings in the events are valid during the call only. */
struct sn_rec_sink {
    void *ctx;
    /* cpu's next events (n >= 0, sorted by ts) and lost: slots lost on cpu since the previous
     * call (overwritten before the drain read them, or torn). Returns 0 or -errno (logged; the
     * drain goes on). */
    int (*events)(void *ctx, unsigned cpu, const struct sn_rec_event *ev, size_t n, uint64_t lost);
    /* The pass is over: every event earlier than ts has been handed. */
    void (*pass_end)(void *ctx, uint64_t ts);
    /* The session ended (after its last pass): release ctx. */
    void (*end)(void *ctx);
};

struct sn_rec_drain_opts {
    uint32_t period_ms; /* 0: SN_REC_DRAIN_PERIOD_MS; at most 60000 */
    /* called on the drain's thread after each round of passes (NULL: none) */
    void (*on_round)(void *ctx);
    void *round_ctx;
};

struct sn_rec_drain;

/* Starts the thread. Returns 0 and *out, or -EINVAL (period over 60 s), -errno. */
int sn_rec_drain_start(struct sn_rec_drain **out, const struct sn_rec_drain_opts *o);

/* Drains the session whose ring is view (borrowed until sn_rec_drain_remove returns) into
 * sinks[n] (1..SN_REC_DRAIN_SINKS, copied), from the ring's heads now on. Returns an id (> 0)
 * or -EINVAL, -ENOMEM (then the sinks are not ended: the caller still owns them). */
int64_t sn_rec_drain_add(struct sn_rec_drain *d, const struct sn_rec_ring_view *view,
                         const struct sn_rec_sink *sinks, unsigned n);

/* A last pass, then ends the sinks and forgets the session. Returns 0 or -ENOENT. */
int sn_rec_drain_remove(struct sn_rec_drain *d, int64_t id);

struct sn_rec_drain_stats {
    uint64_t passes, events, lost;
};
void sn_rec_drain_stats(struct sn_rec_drain *d, struct sn_rec_drain_stats *out);

/* Removes every session (as sn_rec_drain_remove) and stops the thread. NULL is a no-op. */
void sn_rec_drain_stop(struct sn_rec_drain *d);

#endif
