/*
 * The agent's outbox (src/fleet/outbox.h): order, expiry by age, the byte cap dropping the
 * oldest (counted), acks by seq and by message id, a message larger than the cap, each()
 * with after and max (and acking from inside it), the statistics and their invariant
 * added == msgs + acked + dropped_age + dropped_full, and a long random run against a model.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "fleet/outbox.h"
#include "t.h"

/* Collects the seqs and ids each() visits. */
struct seen {
    size_t n;
    uint64_t seq[256];
    char id[256][32];
    int stop_at;           /* return 1 at this visit (1-based); 0: never */
    struct sn_outbox *ack; /* ack each visited message (by seq) when set */
};

static int collect(void *arg, const struct sn_outbox_msg *m)
{
    struct seen *s = arg;
    if (s->n < 256) {
        s->seq[s->n] = m->seq;
        snprintf(s->id[s->n], sizeof(s->id[0]), "%s", m->id);
    }
    s->n++;
    if (s->ack)
        T_EQ(sn_outbox_ack(s->ack, m->seq), 0);
    return s->stop_at && (int)s->n == s->stop_at ? 7 : 0;
}

static uint64_t add(struct sn_outbox *ob, const char *id, size_t len, int64_t made)
{
    char data[4096];
    memset(data, 'd', sizeof(data));
    return sn_outbox_add(ob, "sonde.frames.7.h", id, data, len, made);
}

static void check_invariant(struct sn_outbox *ob)
{
    struct sn_outbox_stats st;
    sn_outbox_stats(ob, &st);
    T_EQU(st.added, st.msgs + st.acked + st.dropped_age + st.dropped_full);
}

static void test_order(void)
{
    struct sn_outbox *ob = sn_outbox_new(NULL);
    T_REQUIRE(ob != NULL);
    char id[32];
    for (int i = 0; i < 200; i++) { /* past the ring's and the id table's first size */
        snprintf(id, sizeof(id), "h.7.%d", 1000 + i);
        T_EQU(add(ob, id, 10, 1000 + i), (uint64_t)i + 1);
    }
    struct seen s = {0};
    T_EQ(sn_outbox_each(ob, 0, 1000, collect, &s), 0);
    T_EQ(s.n, 200);
    for (size_t i = 0; i < 200 && i < s.n; i++) {
        snprintf(id, sizeof(id), "h.7.%zu", 1000 + i);
        T_EQU(s.seq[i], i + 1);
        T_STR(s.id[i], id);
    }
    check_invariant(ob);
    sn_outbox_free(ob);
    sn_outbox_free(NULL);
}

/* Checks the one message each() sees in a one-message outbox. */
static int check_msg(void *arg, const struct sn_outbox_msg *m)
{
    (void)arg;
    T_STR(m->subject, "subj.x");
    T_STR(m->id, "id-1");
    T_EQ(m->len, 7);
    T_MEM(m->data, "payload", 7);
    T_EQ(m->made_ms, 42);
    T_EQU(m->seq, 1);
    return 0;
}

static void test_message(void)
{
    struct sn_outbox *ob = sn_outbox_new(NULL);
    char payload[8] = "payload";
    T_EQU(sn_outbox_add(ob, "subj.x", "id-1", payload, 7, 42), 1);
    memset(payload, 0, sizeof(payload)); /* copied: the caller's buffer is free again */
    T_EQ(sn_outbox_each(ob, 0, 10, check_msg, NULL), 0);
    /* an empty payload is a message too */
    T_EQU(sn_outbox_add(ob, "s", "e", NULL, 0, 43), 2);
    /* no subject or no id: refused, counted */
    T_EQU(sn_outbox_add(ob, NULL, "x", "d", 1, 44), 0);
    T_EQU(sn_outbox_add(ob, "s", NULL, "d", 1, 44), 0);
    T_EQU(sn_outbox_add(ob, "s", "x", NULL, 1, 44), 0);
    struct sn_outbox_stats st;
    sn_outbox_stats(ob, &st);
    T_EQU(st.msgs, 2);
    T_EQU(st.added, 5);
    T_EQU(st.dropped_full, 3);
    check_invariant(ob);
    sn_outbox_free(ob);
}

static void test_expire(void)
{
    struct sn_outbox_opts o = {.max_age_ms = 1000};
    struct sn_outbox *ob = sn_outbox_new(&o);
    for (int i = 0; i < 10; i++) { /* made at 0, 100, ..., 900 */
        char id[16];
        snprintf(id, sizeof(id), "m%d", i);
        T_EQU(add(ob, id, 100, i * 100), (uint64_t)i + 1);
    }
    T_EQ(sn_outbox_expire(ob, 1000), 0); /* 1000 ms old exactly: kept */
    T_EQ(sn_outbox_expire(ob, 1001), 1); /* m0 is 1001 ms old */
    T_EQ(sn_outbox_expire(ob, 1350), 3); /* m1, m2, m3 */
    struct sn_outbox_stats st;
    sn_outbox_stats(ob, &st);
    T_EQU(st.msgs, 6);
    T_EQU(st.dropped_age, 4);
    T_EQ(st.oldest_ms, 400);
    /* a late frame (made before the others) goes when it is too old, wherever it sits */
    T_EQU(add(ob, "late", 100, 300), 11);
    T_EQ(sn_outbox_expire(ob, 1350), 1);
    struct seen s = {0};
    sn_outbox_each(ob, 0, 100, collect, &s);
    T_EQ(s.n, 6);
    T_STR(s.id[0], "m4");
    T_STR(s.id[5], "m9");
    T_EQ(sn_outbox_expire(ob, 100000), 6);
    sn_outbox_stats(ob, &st);
    T_EQU(st.msgs, 0);
    T_EQU(st.bytes, 0);
    T_EQ(st.oldest_ms, 0);
    T_EQU(st.dropped_age, 11);
    check_invariant(ob);
    /* seqs go on after the outbox emptied */
    T_EQU(add(ob, "again", 1, 100000), 12);
    sn_outbox_free(ob);

    /* the default age is 120 s */
    ob = sn_outbox_new(&(struct sn_outbox_opts){0});
    add(ob, "x", 1, 0);
    T_EQ(sn_outbox_expire(ob, 120000), 0);
    T_EQ(sn_outbox_expire(ob, 120001), 1);
    sn_outbox_free(ob);
}

static void test_byte_cap(void)
{
    /* each message costs 16 (subject) + 2 (id) + 100 = 118 bytes; the cap holds 8 */
    struct sn_outbox_opts o = {.max_bytes = 8 * 118 + 50};
    struct sn_outbox *ob = sn_outbox_new(&o);
    char id[8];
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof(id), "%02d", i);
        T_EQU(add(ob, id, 100, i), (uint64_t)i + 1);
        check_invariant(ob);
    }
    struct sn_outbox_stats st;
    sn_outbox_stats(ob, &st);
    T_EQU(st.msgs, 8);
    T_EQU(st.bytes, 8 * 118);
    T_EQU(st.dropped_full, 12);
    T_EQU(st.added, 20);
    T_EQ(st.oldest_ms, 12);
    struct seen s = {0};
    sn_outbox_each(ob, 0, 100, collect, &s);
    T_EQ(s.n, 8);
    T_STR(s.id[0], "12");
    T_STR(s.id[7], "19");
    /* a bigger one makes room by dropping as many of the oldest as it needs */
    T_EQU(add(ob, "bb", 300, 20), 21); /* 318 bytes: drops 3 (12, 13, 14) */
    sn_outbox_stats(ob, &st);
    T_EQU(st.msgs, 6);
    T_EQU(st.dropped_full, 15);
    T_EQ(st.oldest_ms, 15);
    T_EQ(sn_outbox_ack_id(ob, "12"), -ENOENT); /* dropped: gone from the id table too */
    /* a message larger than the cap on its own: dropped itself, the others kept */
    T_EQU(add(ob, "xx", 4000, 21), 0);
    sn_outbox_stats(ob, &st);
    T_EQU(st.msgs, 6);
    T_EQU(st.dropped_full, 16);
    /* exactly the cap: fits, after dropping everything else */
    T_EQU(add(ob, "ex", o.max_bytes - 18, 22), 22); /* no seq for the refused one */
    sn_outbox_stats(ob, &st);
    T_EQU(st.msgs, 1);
    T_EQU(st.bytes, o.max_bytes);
    T_EQU(st.dropped_full, 22);
    check_invariant(ob);
    sn_outbox_free(ob);
}

static void test_ack(void)
{
    struct sn_outbox *ob = sn_outbox_new(NULL);
    char id[16];
    for (int i = 1; i <= 10; i++) {
        snprintf(id, sizeof(id), "id%d", i);
        T_EQU(add(ob, id, 10, i), (uint64_t)i);
    }
    T_EQ(sn_outbox_ack(ob, 3), 0);
    T_EQ(sn_outbox_ack(ob, 3), -ENOENT); /* twice */
    T_EQ(sn_outbox_ack(ob, 0), -ENOENT);
    T_EQ(sn_outbox_ack(ob, 11), -ENOENT); /* not yet given */
    T_EQ(sn_outbox_ack(ob, 1), 0);        /* the front: oldest is now 2 */
    struct sn_outbox_stats st;
    sn_outbox_stats(ob, &st);
    T_EQ(st.oldest_ms, 2);
    T_EQ(sn_outbox_ack_id(ob, "id2"), 0); /* front again, past the hole at 3 */
    sn_outbox_stats(ob, &st);
    T_EQ(st.oldest_ms, 4);
    T_EQ(sn_outbox_ack_id(ob, "id2"), -ENOENT);
    T_EQ(sn_outbox_ack_id(ob, "id3"), -ENOENT); /* acked by seq: gone by id too */
    T_EQ(sn_outbox_ack_id(ob, "nope"), -ENOENT);
    T_EQ(sn_outbox_ack_id(ob, NULL), -ENOENT);
    T_EQ(sn_outbox_ack(ob, 2), -ENOENT); /* acked by id: gone by seq too */
    T_EQ(sn_outbox_ack_id(ob, "id7"), 0);
    struct seen s = {0};
    sn_outbox_each(ob, 0, 100, collect, &s);
    T_EQ(s.n, 6);
    uint64_t want[] = {4, 5, 6, 8, 9, 10};
    for (size_t i = 0; i < 6 && i < s.n; i++)
        T_EQU(s.seq[i], want[i]);

    /* the same id twice: both held, ack_id removes the older */
    T_EQU(add(ob, "dup", 1, 100), 11);
    T_EQU(add(ob, "x", 1, 101), 12);
    T_EQU(add(ob, "dup", 1, 102), 13);
    T_EQ(sn_outbox_ack_id(ob, "dup"), 0);
    T_EQ(sn_outbox_ack(ob, 11), -ENOENT);
    T_EQ(sn_outbox_ack(ob, 13), 0);
    T_EQ(sn_outbox_ack_id(ob, "dup"), -ENOENT);
    sn_outbox_stats(ob, &st);
    T_EQU(st.acked, 6);
    T_EQU(st.msgs, 7);
    check_invariant(ob);

    /* duplicates that straddle a growth of the id table */
    struct sn_outbox *big = sn_outbox_new(NULL);
    T_EQU(add(big, "same", 1, 0), 1);
    for (int i = 0; i < 500; i++) {
        snprintf(id, sizeof(id), "g%d", i);
        add(big, id, 1, 0);
    }
    T_EQU(add(big, "same", 1, 0), 502);
    T_EQ(sn_outbox_ack_id(big, "same"), 0);
    T_EQ(sn_outbox_ack(big, 1), -ENOENT);
    T_EQ(sn_outbox_ack(big, 502), 0);
    for (int i = 0; i < 500; i++) {
        snprintf(id, sizeof(id), "g%d", i);
        T_EQ(sn_outbox_ack_id(big, id), 0);
    }
    sn_outbox_stats(big, &st);
    T_EQU(st.msgs, 0);
    T_EQU(st.acked, 502);
    sn_outbox_free(big);
    sn_outbox_free(ob);
}

/* Adds 100 messages for each visited one. */
static int add_more(void *arg, const struct sn_outbox_msg *m)
{
    T_STR(m->id, "pre");
    for (int i = 0; i < 100; i++)
        T_OK(add(arg, "more", 1, 0) > 0);
    return 0;
}

static void test_each(void)
{
    struct sn_outbox *ob = sn_outbox_new(NULL);
    char id[16];
    for (int i = 1; i <= 10; i++) {
        snprintf(id, sizeof(id), "id%d", i);
        add(ob, id, 10, i);
    }
    sn_outbox_ack(ob, 5);
    struct seen s = {0};
    T_EQ(sn_outbox_each(ob, 3, 100, collect, &s), 0); /* after 3: 4, 6..10 */
    T_EQ(s.n, 6);
    T_EQU(s.seq[0], 4);
    T_EQU(s.seq[1], 6);
    memset(&s, 0, sizeof(s));
    T_EQ(sn_outbox_each(ob, 3, 2, collect, &s), 0); /* at most 2: 4, 6 (the hole not counted) */
    T_EQ(s.n, 2);
    T_EQU(s.seq[1], 6);
    memset(&s, 0, sizeof(s));
    T_EQ(sn_outbox_each(ob, 10, 100, collect, &s), 0); /* after the newest: none */
    T_EQ(s.n, 0);
    T_EQ(sn_outbox_each(ob, UINT64_MAX, 100, collect, &s), 0);
    T_EQ(s.n, 0);
    T_EQ(sn_outbox_each(ob, 0, 0, collect, &s), 0); /* max 0: none */
    T_EQ(s.n, 0);
    memset(&s, 0, sizeof(s));
    s.stop_at = 3;
    T_EQ(sn_outbox_each(ob, 0, 100, collect, &s), 7); /* fn's non-zero returned at once */
    T_EQ(s.n, 3);
    T_EQU(s.seq[2], 3);
    /* fn may ack what it is given: a resend loop acking as it goes empties the outbox */
    memset(&s, 0, sizeof(s));
    s.ack = ob;
    T_EQ(sn_outbox_each(ob, 0, 100, collect, &s), 0);
    T_EQ(s.n, 9);
    struct sn_outbox_stats st;
    sn_outbox_stats(ob, &st);
    T_EQU(st.msgs, 0);
    T_EQ(sn_outbox_each(ob, 0, 100, NULL, NULL), 0);
    /* fn may add: what it adds (past the ring's first size) is not visited in that call */
    for (int i = 0; i < 5; i++)
        add(ob, "pre", 1, 0);
    T_EQ(sn_outbox_each(ob, 0, 100, add_more, ob), 0);
    sn_outbox_stats(ob, &st);
    T_EQU(st.msgs, 5 + 5 * 100);
    sn_outbox_free(ob);
}

/* A random run against a model (an array of what must be held), the invariant at every step. */
static void test_model(void)
{
    enum { STEPS = 20000, MAXN = 4096 };
    static uint64_t held[MAXN]; /* seqs held in order; 0: removed */
    static int64_t made[MAXN + 1];
    size_t nheld = 0;
    struct sn_outbox_opts o = {.max_age_ms = 5000, .max_bytes = 64 * 1024};
    struct sn_outbox *ob = sn_outbox_new(&o);
    int64_t now = 0;
    uint64_t last = 0;

    t_seed(1515);
    for (int step = 0; step < STEPS && nheld < MAXN; step++) {
        unsigned r = (unsigned)(t_rand() % 100);
        if (r < 60) {
            char id[32];
            snprintf(id, sizeof(id), "h.7.%d", step);
            uint64_t seq = add(ob, id, (size_t)(t_rand() % 2000), now);
            T_REQUIRE(seq == last + 1);
            last = seq;
            made[seq % (MAXN + 1)] = now;
            held[nheld++] = seq;
        } else if (r < 80 && nheld) {
            size_t i = (size_t)(t_rand() % nheld);
            int rc = sn_outbox_ack(ob, held[i]);
            T_OK(rc == 0 || rc == -ENOENT); /* -ENOENT: the model does not know of drops */
            held[i] = 0;
        } else if (r < 85) {
            sn_outbox_expire(ob, now);
        } else {
            now += (int64_t)(t_rand() % 200);
        }
        check_invariant(ob);
        /* compact the model to what the outbox still holds, in order */
        struct seen s = {0};
        struct sn_outbox_stats st;
        sn_outbox_stats(ob, &st);
        T_REQUIRE(st.bytes <= o.max_bytes);
        if (st.msgs <= 256) {
            sn_outbox_each(ob, 0, 1000, collect, &s);
            T_REQUIRE(s.n == st.msgs);
            for (size_t i = 1; i < s.n; i++)
                T_REQUIRE(s.seq[i - 1] < s.seq[i]);
            for (size_t i = 0; i < s.n; i++) { /* nothing acked comes back */
                bool in = false;
                for (size_t j = 0; j < nheld && !in; j++)
                    in = held[j] == s.seq[i];
                T_REQUIRE(in);
            }
            if (s.n)
                T_EQ(st.oldest_ms, made[s.seq[0] % (MAXN + 1)]);
        }
        size_t k = 0;
        for (size_t i = 0; i < nheld; i++)
            if (held[i])
                held[k++] = held[i];
        nheld = k;
    }
    sn_outbox_free(ob);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("order", test_order);
    t_run("message", test_message);
    t_run("expire", test_expire);
    t_run("byte_cap", test_byte_cap);
    t_run("ack", test_ack);
    t_run("each", test_each);
    t_run("model", test_model);
    return t_done();
}
