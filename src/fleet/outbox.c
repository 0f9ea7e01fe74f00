/*
 * The agent's outbox; see outbox.h.
 *
 * Messages sit in a ring of pointers indexed by seq: slot (seq - first) of the ring holds
 * message seq, or NULL once it was acked or dropped out of order (a hole). The front is
 * trimmed past holes, so the ring spans the held messages from the oldest to the newest, and
 * ack by seq, the oldest and each() from a seq are O(1) to find. A chained hash table of ids
 * gives ack_id() in O(1) on average. Both grow by doubling; the bounds (age, bytes) keep them
 * small.
 *
 * Counting: every call of sn_outbox_add() counts in added, and each added message ends in
 * exactly one of held (msgs), acked, dropped_age or dropped_full, so at any time
 * added == msgs + acked + dropped_age + dropped_full.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fleet/outbox.h"

#define DEFAULT_AGE_MS 120000
#define DEFAULT_BYTES  ((size_t)64 << 20)

struct item {
    struct sn_outbox_msg m;
    struct item *hnext; /* the next in its id chain */
    size_t cost;        /* bytes it counts against max_bytes */
    uint64_t hash;      /* of m.id */
};

struct sn_outbox {
    int64_t max_age_ms;
    size_t max_bytes;
    struct item **ring; /* cap slots (a power of two); seq s at (head + s - first) & (cap-1) */
    size_t cap, head;
    uint64_t first, next; /* seq of ring[head], and the next seq to give (first..next) held */
    struct item **ids;    /* nids chains (a power of two) */
    size_t nids;
    struct sn_outbox_stats st;
};

/* FNV-1a, 64 bits: the id hash table's (not a format: any hash would do). */
static uint64_t hash_id(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h ^ (h >> 29);
}

struct sn_outbox *sn_outbox_new(const struct sn_outbox_opts *o)
{
    struct sn_outbox *ob = calloc(1, sizeof(*ob));
    if (!ob)
        return NULL;
    ob->max_age_ms = o && o->max_age_ms > 0 ? o->max_age_ms : DEFAULT_AGE_MS;
    ob->max_bytes = o && o->max_bytes > 0 ? o->max_bytes : DEFAULT_BYTES;
    ob->cap = 64;
    ob->nids = 64;
    ob->first = ob->next = 1;
    ob->ring = calloc(ob->cap, sizeof(*ob->ring));
    ob->ids = calloc(ob->nids, sizeof(*ob->ids));
    if (!ob->ring || !ob->ids) {
        sn_outbox_free(ob);
        return NULL;
    }
    return ob;
}

static struct item **slot(struct sn_outbox *ob, uint64_t seq)
{
    return &ob->ring[(ob->head + (size_t)(seq - ob->first)) & (ob->cap - 1)];
}

void sn_outbox_free(struct sn_outbox *ob)
{
    if (!ob)
        return;
    if (ob->ring)
        for (uint64_t s = ob->first; s < ob->next; s++)
            free(*slot(ob, s));
    free(ob->ring);
    free(ob->ids);
    free(ob);
}

/* Unlinks it from its id chain. */
static void unhash(struct sn_outbox *ob, struct item *it)
{
    struct item **p = &ob->ids[it->hash & (ob->nids - 1)];
    while (*p && *p != it)
        p = &(*p)->hnext;
    if (*p)
        *p = it->hnext;
}

/* Moves the front past holes (an empty outbox restarts its ring at slot 0). */
static void trim(struct sn_outbox *ob)
{
    while (ob->first < ob->next && !*slot(ob, ob->first)) {
        ob->head = (ob->head + 1) & (ob->cap - 1);
        ob->first++;
    }
    if (ob->first == ob->next)
        ob->head = 0;
}

/* Removes message seq (held) and frees it. */
static void remove_seq(struct sn_outbox *ob, uint64_t seq)
{
    struct item **sl = slot(ob, seq), *it = *sl;
    unhash(ob, it);
    ob->st.msgs--;
    ob->st.bytes -= it->cost;
    *sl = NULL;
    free(it);
    trim(ob);
}

/* The oldest held (by its place in the queue), or NULL. */
static struct item *oldest(struct sn_outbox *ob)
{
    return ob->first < ob->next ? *slot(ob, ob->first) : NULL;
}

/* Doubles the ring so that it holds one more slot; -ENOMEM. */
static int grow_ring(struct sn_outbox *ob)
{
    size_t used = (size_t)(ob->next - ob->first);
    if (used < ob->cap)
        return 0;
    struct item **r = calloc(ob->cap * 2, sizeof(*r));
    if (!r)
        return -ENOMEM;
    for (size_t i = 0; i < used; i++)
        r[i] = ob->ring[(ob->head + i) & (ob->cap - 1)];
    free(ob->ring);
    ob->ring = r;
    ob->head = 0;
    ob->cap *= 2;
    return 0;
}

/* Doubles the id table when it has more held than chains (best effort: chains still work). */
static void grow_ids(struct sn_outbox *ob)
{
    if (ob->st.msgs < ob->nids)
        return;
    size_t n = ob->nids * 2;
    struct item **t = calloc(n, sizeof(*t));
    if (!t)
        return;
    for (size_t i = 0; i < ob->nids; i++)
        for (struct item *it = ob->ids[i], *nx; it; it = nx) {
            nx = it->hnext;
            it->hnext = t[it->hash & (n - 1)];
            t[it->hash & (n - 1)] = it;
        }
    free(ob->ids);
    ob->ids = t;
    ob->nids = n;
}

uint64_t sn_outbox_add(struct sn_outbox *ob, const char *subject, const char *id, const void *data,
                       size_t len, int64_t made_ms)
{
    if (!ob)
        return 0;
    ob->st.added++;
    if (!subject || !id || (!data && len > 0)) {
        ob->st.dropped_full++; /* nothing to send: refused like a message that cannot fit */
        return 0;
    }
    size_t ls = strlen(subject) + 1, li = strlen(id) + 1;
    size_t cost = ls - 1 + li - 1 + len;
    if (cost < len || cost > ob->max_bytes) {
        ob->st.dropped_full++;
        return 0;
    }
    struct item *it = malloc(sizeof(*it) + ls + li + len);
    if (!it || grow_ring(ob) < 0) {
        free(it);
        ob->st.dropped_full++;
        return 0;
    }
    while (ob->st.bytes + cost > ob->max_bytes) { /* the oldest go first */
        remove_seq(ob, ob->first);
        ob->st.dropped_full++;
    }
    char *p = (char *)(it + 1);
    it->m.subject = memcpy(p, subject, ls);
    it->m.id = memcpy(p + ls, id, li);
    it->m.data = p + ls + li;
    if (len)
        memcpy(it->m.data, data, len);
    it->m.len = len;
    it->m.made_ms = made_ms;
    it->m.seq = ob->next;
    it->cost = cost;
    it->hash = hash_id(id);
    if (ob->first == ob->next)
        ob->head = 0;
    *slot(ob, ob->next) = it;
    ob->next++;
    /* the newest at the end of its chain: ack_id() finds the oldest of equal ids first */
    struct item **c = &ob->ids[it->hash & (ob->nids - 1)];
    while (*c)
        c = &(*c)->hnext;
    it->hnext = NULL;
    *c = it;
    ob->st.msgs++;
    ob->st.bytes += cost;
    grow_ids(ob);
    return it->m.seq;
}

size_t sn_outbox_expire(struct sn_outbox *ob, int64_t now_ms)
{
    size_t n = 0;
    if (!ob)
        return 0;
    /* every held message, not only the front: a late frame may have been added after a newer
     * one, and what is too old goes wherever it is */
    for (uint64_t s = ob->first; s < ob->next; s++) {
        struct item *it = *slot(ob, s);
        if (it && now_ms - it->m.made_ms > ob->max_age_ms) {
            remove_seq(ob, s);
            ob->st.dropped_age++;
            n++;
            if (s < ob->first)
                s = ob->first - 1; /* trimmed past s: carry on from the new front */
        }
    }
    return n;
}

int sn_outbox_ack(struct sn_outbox *ob, uint64_t seq)
{
    if (!ob || seq < ob->first || seq >= ob->next || !*slot(ob, seq))
        return -ENOENT;
    remove_seq(ob, seq);
    ob->st.acked++;
    return 0;
}

int sn_outbox_ack_id(struct sn_outbox *ob, const char *id)
{
    if (!ob || !id)
        return -ENOENT;
    uint64_t h = hash_id(id);
    struct item *best = NULL;
    /* chains keep the order of adds, except after grow_ids() reversed them: take the least seq */
    for (struct item *it = ob->ids[h & (ob->nids - 1)]; it; it = it->hnext)
        if (it->hash == h && strcmp(it->m.id, id) == 0 && (!best || it->m.seq < best->m.seq))
            best = it;
    if (!best)
        return -ENOENT;
    remove_seq(ob, best->m.seq);
    ob->st.acked++;
    return 0;
}

int sn_outbox_each(struct sn_outbox *ob, uint64_t after, size_t max,
                   int (*fn)(void *arg, const struct sn_outbox_msg *m), void *arg)
{
    if (!ob || !fn)
        return 0;
    uint64_t end = ob->next; /* what fn adds is not visited */
    size_t seen = 0;
    if (after >= end)
        return 0;
    /* by seq, looked up afresh each time: fn may ack or add (the ring may move) */
    for (uint64_t s = after + 1; s < end && seen < max; s++) {
        if (s < ob->first)
            s = ob->first;
        if (s >= end)
            break;
        struct item *it = *slot(ob, s);
        if (!it)
            continue;
        seen++;
        int rc = fn(arg, &it->m);
        if (rc)
            return rc;
    }
    return 0;
}

void sn_outbox_stats(const struct sn_outbox *ob, struct sn_outbox_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof(*out));
    if (!ob)
        return;
    *out = ob->st;
    const struct item *it = oldest((struct sn_outbox *)ob);
    out->oldest_ms = it ? it->m.made_ms : 0;
}
