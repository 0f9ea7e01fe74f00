/*
 * The agent's outbox: frames published but not yet acknowledged by JetStream, and frames made
 * while the broker is unreachable, kept in order so that they can be sent again (each with its
 * message id, so that JetStream drops what it had already stored). Bounded both in age
 * (default 120 s) and in bytes (default 64 MiB): past either, the oldest go first, and every
 * drop is counted by reason, never silent. One thread uses an outbox at a time (the caller
 * locks); nothing in it blocks.
 */
#ifndef SN_FLEET_OUTBOX_H
#define SN_FLEET_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

struct sn_outbox; /* opaque */

struct sn_outbox_opts {
    int64_t max_age_ms; /* 0: 120000 */
    size_t max_bytes;   /* 0: 64 MiB; counts subject, id and payload */
};

/* One message: owned by the outbox while in it. */
struct sn_outbox_msg {
    char *subject;
    char *id; /* the Nats-Msg-Id */
    void *data;
    size_t len;
    int64_t made_ms; /* when the frame was made (its age counts from there) */
    uint64_t seq;    /* the outbox's own number, increasing: what sn_outbox_ack() names */
};

struct sn_outbox_stats {
    uint64_t msgs, bytes;               /* held now */
    uint64_t added, acked;              /* in all (added: every call of sn_outbox_add()) */
    uint64_t dropped_age, dropped_full; /* dropped: too old, over max_bytes */
    int64_t oldest_ms;                  /* made_ms of the oldest held (0: empty) */
};

/* NULL when out of memory. */
struct sn_outbox *sn_outbox_new(const struct sn_outbox_opts *o);
void sn_outbox_free(struct sn_outbox *ob);

/* Adds a message (copied), dropping the oldest as needed to fit max_bytes (a message larger
 * than max_bytes on its own is dropped itself and counted dropped_full). Returns its seq (> 0),
 * or 0 when dropped or out of memory (counted dropped_full; no seq is used up). Always
 * added == msgs + acked + dropped_age + dropped_full. */
uint64_t sn_outbox_add(struct sn_outbox *ob, const char *subject, const char *id, const void *data,
                       size_t len, int64_t made_ms);
/* Drops what is older than max_age at now_ms (counted dropped_age). Returns how many. */
size_t sn_outbox_expire(struct sn_outbox *ob, int64_t now_ms);
/* Removes the message seq (acknowledged by JetStream); 0, or -ENOENT when it is not held
 * (dropped already, or acked twice). */
int sn_outbox_ack(struct sn_outbox *ob, uint64_t seq);
/* Removes the held message whose id is id (a publish acknowledgement names the message by its
 * Nats-Msg-Id); 0 or -ENOENT. Ids are unique while held (a second add of an id held replaces
 * nothing: both are kept, and this removes the older). O(1) on average. */
int sn_outbox_ack_id(struct sn_outbox *ob, const char *id);
/* The held messages, oldest first: calls fn for each with seq > after, until fn returns
 * non-zero (returned) or max messages were visited. Messages stay held; fn may ack (any
 * message) or add (what it adds is not visited in this call). */
int sn_outbox_each(struct sn_outbox *ob, uint64_t after, size_t max,
                   int (*fn)(void *arg, const struct sn_outbox_msg *m), void *arg);
void sn_outbox_stats(const struct sn_outbox *ob, struct sn_outbox_stats *out);

#endif
