/*
 * The store (store/store.h) on real LMDB files in a temporary directory (removed at the end):
 * open, close and reopen; named values; slots merged at every tier and read back equal, for
 * every arity; rollups over simulated hours against a plain model's merge (counts add,
 * histograms merge; a point-scope metric's rollups hold the histogram of its per-slot values);
 * the rollup key cap; retention; dropping an instrumentation; the size cap; map growth; a
 * damaged record (a byte changed through liblmdb itself); and the writer following a real
 * aggregator. The store decides "now" only through sn_store_flush(st, now), so every test runs
 * on simulated time.
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agg/agg.h"
#include "agg/dataset.h"
#include "core/clock.h"
#include "core/hist.h"
#include "store/store.h"
#include "t.h"
#include "wire/frame.h"

#define DAY 86400
#define T0  ((int64_t)1700006400) /* a day's start (UTC), so that every period aligns */

static const char *const HOSTS[] = {"h0", "h1", "h2"};

/* ---- The temporary directory --------------------------------------------------------- */

static char root[512];
static int ndirs;

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void new_dir(char *out, size_t len)
{
    snprintf(out, len, "%s/s%d", root, ndirs++);
}

static struct sn_store *open_store(const char *dir, const struct sn_store_opts *base)
{
    struct sn_store_opts o = {0};
    struct sn_store *st = NULL;
    char why[256] = "";
    if (base)
        o = *base;
    o.dir = dir;
    if (!o.tiers.keep[SN_TIER_RAW]) {
        o.tiers.keep[SN_TIER_RAW] = 30 * DAY;
        o.tiers.keep[SN_TIER_1M] = 90 * DAY;
        o.tiers.keep[SN_TIER_1H] = 365 * DAY;
        o.tiers.keep[SN_TIER_1D] = 3650 * DAY;
    }
    int rc = sn_store_open(&o, &st, why, sizeof(why));
    if (rc)
        t_note("sn_store_open: %d %s", rc, why);
    T_EQ(rc, 0);
    return st;
}

static void inst_set(struct sn_store *st, const char *key, uint8_t arity, bool point, bool persist,
                     uint32_t g, uint32_t retention)
{
    struct sn_store_inst in = {arity, point, persist, g, retention};
    T_EQ(sn_store_inst_set(st, key, &in), 0);
}

/* ---- Slots and a plain model ------------------------------------------------------------ */

static uint64_t rnd(uint64_t n)
{
    return t_rand() % n;
}

/* Adds one entry {key, count, hist of count samples around v} to s (as a frame adds). */
static void add_entry(struct sn_ds_slot *s, uint8_t arity, const char *key, uint64_t count,
                      uint64_t v)
{
    struct sn_ds_entry e = {(char *)key, count, NULL};
    struct sn_ds_slot one = {.t = s->t, .count = count};
    struct sn_hist *h = NULL;
    if (arity >= SN_WIRE_NUMERIC) {
        h = sn_hist_create();
        for (uint64_t i = 0; i < count; i++)
            sn_hist_insert_u64(h, v / 2 + rnd(v + 1), 1); /* latency-like: spread over buckets */
        one.total = h;
    }
    if (arity == SN_WIRE_DISCRETE || arity == SN_WIRE_NUMERIC_BY_KEY) {
        e.hist = arity == SN_WIRE_NUMERIC_BY_KEY ? h : NULL;
        one.n = 1;
        one.e = &e;
    }
    T_EQ(sn_ds_slot_add(s, &one), 0);
    sn_hist_destroy(h);
}

/* A slot at t of arity with up to nkeys keys "k0".. (random counts), reported by the first
 * nsrc of HOSTS. Owned: sn_ds_slot_fini(). */
static void make_slot(struct sn_ds_slot *s, int64_t t, uint8_t arity, int nkeys, uint32_t nsrc)
{
    memset(s, 0, sizeof(*s));
    s->t = t;
    if (arity == SN_WIRE_SCALAR) {
        s->count = 1 + rnd(1000);
    } else if (arity == SN_WIRE_NUMERIC) {
        add_entry(s, arity, "", 1 + rnd(20), 10 + rnd(100000));
    } else {
        for (int k = 0; k < nkeys; k++) {
            if (k && rnd(4) == 0)
                continue; /* not every key in every slot */
            char key[16];
            snprintf(key, sizeof(key), "k%d", k);
            add_entry(s, arity, key, 1 + rnd(30), 10 + rnd(100000));
        }
    }
    s->over_cap = rnd(3);
    s->map_full = rnd(2);
    s->src = malloc(nsrc * sizeof(*s->src));
    for (uint32_t i = 0; i < nsrc; i++)
        s->src[i] = i;
    s->nsrc = nsrc;
}

/* model += a rolled-up point slot's values: each key's (or the scalar's) value becomes one
 * sample of its histogram, and the counts add the values. */
static void model_add_values(struct sn_ds_slot *m, const struct sn_ds_slot *s, uint8_t arity)
{
    if (arity == SN_WIRE_SCALAR) {
        if (!m->total)
            m->total = sn_hist_create();
        sn_hist_insert_u64(m->total, s->count, 1);
        m->count += s->count;
    } else {
        for (size_t i = 0; i < s->n; i++) {
            struct sn_hist *h = sn_hist_create();
            sn_hist_insert_u64(h, s->e[i].count, 1);
            struct sn_ds_entry e = {s->e[i].key, s->e[i].count, h};
            struct sn_ds_slot one = {.count = s->e[i].count, .n = 1, .e = &e};
            sn_ds_slot_add(m, &one);
            sn_hist_destroy(h);
        }
    }
    m->over_cap += s->over_cap;
    m->map_full += s->map_full;
}

static uint32_t model_nsrc(uint32_t a, uint32_t b)
{
    return a > b ? a : b; /* sources are always a prefix of HOSTS here */
}

static bool hist_eq(const struct sn_hist *a, const struct sn_hist *b)
{
    if (!a || !b)
        return (a ? sn_hist_count(a) : 0) == (b ? sn_hist_count(b) : 0);
    return sn_hist_equal(a, b);
}

/* Whether got equals want: counts, drops, entries (keys, counts, histograms), the total
 * histogram where the arity has one, the number of sources. */
static bool slot_eq(const struct sn_ds_slot *got, const struct sn_ds_slot *want, uint8_t arity,
                    bool values)
{
    bool ok = true;
    ok &= T_EQ(got->t, want->t);
    ok &= T_EQU(got->count, want->count);
    ok &= T_EQU(got->over_cap, want->over_cap);
    ok &= T_EQU(got->map_full, want->map_full);
    ok &= T_EQU(got->n, want->n);
    ok &= T_EQU(got->nsrc, want->nsrc);
    for (size_t i = 0; ok && i < got->n && i < want->n; i++) {
        ok &= T_STR(got->e[i].key, want->e[i].key);
        ok &= T_EQU(got->e[i].count, want->e[i].count);
        ok &= T_OK(hist_eq(got->e[i].hist, want->e[i].hist));
    }
    if (arity >= SN_WIRE_NUMERIC || values)
        ok &= T_OK(hist_eq(got->total, want->total));
    return ok;
}

static void model_init(struct sn_ds_slot *m, int64_t t)
{
    memset(m, 0, sizeof(*m));
    m->t = t;
}

static void model_add(struct sn_ds_slot *m, const struct sn_ds_slot *s)
{
    T_EQ(sn_ds_slot_add(m, s), 0);
    m->nsrc = model_nsrc(m->nsrc, s->nsrc);
}

static void slots_free(struct sn_ds_slot **s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sn_ds_slot_unref(s[i]);
    free(s);
}

/* Reads the one record of key at tier t starting at `at` and checks it equals want. */
static void check_record(struct sn_store *st, const char *key, enum sn_tier t, int64_t at,
                         const struct sn_ds_slot *want, uint8_t arity, bool values)
{
    struct sn_ds_slot **s;
    size_t n;
    bool v;
    T_EQ(sn_store_read(st, key, t, at, at + 1, &s, &n, &v), 0);
    t_note("%s tier %s at %" PRId64, key, sn_tier_name(t), at);
    if (T_EQU(n, 1)) {
        T_EQ(v, values);
        slot_eq(s[0], want, arity, values);
        /* the sources by name: the first nsrc of HOSTS (every slot here has a prefix) */
        char **names = NULL;
        T_EQ(sn_store_source_names(st, key, s[0], &names), 0);
        for (uint32_t i = 0; names && i < s[0]->nsrc; i++) {
            bool known = false;
            for (uint32_t j = 0; j < want->nsrc && j < 3; j++)
                known |= strcmp(names[i], HOSTS[j]) == 0;
            for (uint32_t j = 0; j < i; j++)
                known &= strcmp(names[i], names[j]) != 0;
            T_OK(known);
        }
        if (names)
            sn_agg_strings_free(names, s[0]->nsrc);
    }
    slots_free(s, n);
}

static size_t count_records(struct sn_store *st, const char *key, enum sn_tier t, int64_t from,
                            int64_t to)
{
    struct sn_ds_slot **s;
    size_t n = 0;
    bool v;
    if (sn_store_read(st, key, t, from, to, &s, &n, &v) != 0)
        return SIZE_MAX;
    slots_free(s, n);
    return n;
}

/* Flushes at now with live data still arriving: a slot of instrumentation "live" (persist-data
 * false, a scalar) at now - 5 merged first, as a server always has new slots to write. */
static void flush_live(struct sn_store *st, int64_t now)
{
    struct sn_store_inst in = {SN_WIRE_SCALAR, false, false, 1, 600};
    struct sn_ds_slot s = {.t = now - 5, .count = 1};
    T_EQ(sn_store_inst_set(st, "live", &in), 0);
    T_EQ(sn_store_merge(st, "live", SN_TIER_RAW, &s, HOSTS), 0);
    T_EQ(sn_store_flush(st, now), 0);
}

/* ---- Tests ---------------------------------------------------------------------------- */

static void test_open_meta_reopen(void)
{
    char dir[600], *val = NULL;
    size_t len = 0;
    new_dir(dir, sizeof(dir));
    struct sn_store *st = open_store(dir, NULL);
    T_REQUIRE(st);
    T_EQ(sn_store_meta_get(st, "definitions", &val, &len), -ENOENT);
    T_EQ(sn_store_meta_put(st, "definitions", "{\"a\":1}", 7), 0);
    T_EQ(sn_store_meta_put(st, "empty", "", 0), 0);
    T_EQ(sn_store_meta_get(st, "definitions", &val, &len), 0);
    T_EQU(len, 7);
    T_STR(val, "{\"a\":1}");
    free(val);
    T_STR(sn_store_options(st)->dir, dir);
    sn_store_close(st);

    st = open_store(dir, NULL);
    T_REQUIRE(st);
    T_EQ(sn_store_meta_put(st, "definitions", "{\"b\":22}", 8), 0);
    T_EQ(sn_store_meta_get(st, "definitions", &val, &len), 0);
    T_STR(val, "{\"b\":22}");
    free(val);
    T_EQ(sn_store_meta_get(st, "empty", &val, &len), 0);
    T_EQU(len, 0);
    T_STR(val, "");
    free(val);
    sn_store_close(st);

    st = open_store(dir, NULL); /* a third open sees the second's value */
    T_REQUIRE(st);
    T_EQ(sn_store_meta_get(st, "definitions", &val, &len), 0);
    T_STR(val, "{\"b\":22}");
    free(val);
    sn_store_close(st);
    sn_store_close(NULL);
}

/* Slots merged at every tier, for every arity: read back equal, before and after a reopen. */
static void test_merge_every_tier(void)
{
    char dir[600];
    new_dir(dir, sizeof(dir));
    struct sn_store *st = open_store(dir, NULL);
    T_REQUIRE(st);
    static const char *const keys[4] = {"scalar", "discrete", "numeric", "bykey"};
    /* raw at day 0 (twice into one record: they add), 1m at day 1, 1h at day 2, 1d at day 3:
     * far enough apart that no rollup of a finer tier lands on a record merged directly */
    struct sn_ds_slot want[4][SN_NTIERS];
    const int64_t at[SN_NTIERS] = {T0 + 5, T0 + DAY + 120, T0 + 2 * DAY + 7200, T0 + 3 * DAY};
    t_seed(11);
    for (int a = 0; a < 4; a++) {
        inst_set(st, keys[a], (uint8_t)a, false, true, 1, 600);
        for (int t = 0; t < SN_NTIERS; t++) {
            model_init(&want[a][t], at[t]);
            for (int rep = 0; rep < (t == 0 ? 2 : 1); rep++) {
                struct sn_ds_slot s;
                make_slot(&s, at[t], (uint8_t)a, 5, (uint32_t)(1 + rep + (t & 1)));
                T_EQ(sn_store_merge(st, keys[a], (enum sn_tier)t, &s, HOSTS), 0);
                model_add(&want[a][t], &s);
                sn_ds_slot_fini(&s);
            }
        }
    }
    struct sn_ds_slot none = {0};
    T_EQ(sn_store_merge(st, "nobody", SN_TIER_RAW, &none, HOSTS), -ENOENT);
    T_EQ(sn_store_flush(st, T0 + 3 * DAY + 10), 0);
    for (int pass = 0; pass < 2; pass++) {
        for (int a = 0; a < 4; a++)
            for (int t = 0; t < SN_NTIERS; t++)
                check_record(st, keys[a], (enum sn_tier)t, at[t], &want[a][t], (uint8_t)a, false);
        /* the raw record also rolled up, unchanged, into day 0's 1m, 1h and 1d records */
        for (int a = 0; a < 4; a++)
            for (int t = 1; t < SN_NTIERS; t++) {
                int64_t p = sn_tier_period((enum sn_tier)t);
                struct sn_ds_slot w = want[a][0];
                w.t = at[0] / p * p;
                check_record(st, keys[a], (enum sn_tier)t, w.t, &w, (uint8_t)a, false);
            }
        int64_t t0 = 0;
        T_EQ(sn_store_oldest(st, "bykey", SN_TIER_RAW, &t0), 0);
        T_EQ(t0, at[0]);
        T_EQ(sn_store_oldest(st, "bykey", SN_TIER_1M, &t0), 0);
        T_EQ(t0, T0);
        T_EQ(sn_store_oldest(st, "nobody", SN_TIER_RAW, &t0), -ENOENT);
        T_EQ(sn_store_newest(st, "bykey", SN_TIER_RAW, &t0), 0);
        T_EQ(t0, at[0]);
        T_EQ(sn_store_newest(st, "bykey", SN_TIER_1M, &t0), 0);
        T_EQ(t0, at[1]); /* day 0's rollup and day 1's record: the newest */
        T_EQ(sn_store_newest(st, "bykey", SN_TIER_1D, &t0), 0);
        T_EQ(t0, at[3]);
        T_EQ(sn_store_newest(st, "nobody", SN_TIER_RAW, &t0), -ENOENT);
        struct sn_ds_slot **s;
        size_t n;
        bool v;
        T_EQ(sn_store_read(st, "nobody", SN_TIER_RAW, 0, INT64_MAX / 2, &s, &n, &v), -ENOENT);
        /* the whole raw range holds exactly the one record */
        T_EQU(count_records(st, "discrete", SN_TIER_RAW, 0, INT64_MAX / 2), 1);
        T_EQU(count_records(st, "discrete", SN_TIER_RAW, at[0] + 1, INT64_MAX / 2), 0);
        struct sn_store_stats ss;
        sn_store_stats(st, &ss);
        T_EQU(ss.records_damaged, 0);
        if (pass == 0) {
            T_OK(ss.commits >= 1);
            T_EQU(ss.records_written, 4 * 2); /* raw merges (twice into one record) */
            T_OK(ss.bytes_written > 0);
            T_EQU(ss.write_errors, 0);
            T_EQU(ss.pending, 0);
            sn_store_close(st); /* and again, from what the disk keeps */
            st = open_store(dir, NULL);
            T_REQUIRE(st);
        }
    }
    /* after the reopen: keys never seen (interned after the loaded ones) and a new
     * instrumentation (a new sid after the loaded ones), written, then read after another */
    inst_set(st, "discrete", SN_WIRE_DISCRETE, false, true, 1, 600);
    inst_set(st, "fresh", SN_WIRE_NUMERIC, false, true, 1, 600);
    struct sn_ds_slot more, fresh;
    make_slot(&more, at[0] + 1, SN_WIRE_DISCRETE, 12, 3);
    make_slot(&fresh, at[0] + 1, SN_WIRE_NUMERIC, 0, 2);
    T_EQ(sn_store_merge(st, "discrete", SN_TIER_RAW, &more, HOSTS), 0);
    T_EQ(sn_store_merge(st, "fresh", SN_TIER_RAW, &fresh, HOSTS), 0);
    T_EQ(sn_store_flush(st, T0 + 3 * DAY + 20), 0);
    sn_store_close(st);
    st = open_store(dir, NULL);
    T_REQUIRE(st);
    check_record(st, "discrete", SN_TIER_RAW, at[0], &want[1][0], SN_WIRE_DISCRETE, false);
    check_record(st, "discrete", SN_TIER_RAW, at[0] + 1, &more, SN_WIRE_DISCRETE, false);
    check_record(st, "fresh", SN_TIER_RAW, at[0] + 1, &fresh, SN_WIRE_NUMERIC, false);
    check_record(st, "numeric", SN_TIER_RAW, at[0], &want[2][0], SN_WIRE_NUMERIC, false);
    sn_ds_slot_fini(&more);
    sn_ds_slot_fini(&fresh);
    for (int a = 0; a < 4; a++)
        for (int t = 0; t < SN_NTIERS; t++)
            sn_ds_slot_fini(&want[a][t]);
    sn_store_close(st);
}

/* Raw slots over 3 simulated hours, flushed with now advancing: the 1m, 1h and 1d records
 * equal a plain model's merge; for point-scope metrics, the histograms of the values. */
static void test_rollups(void)
{
    char dir[600];
    new_dir(dir, sizeof(dir));
    struct sn_store *st = open_store(dir, NULL);
    T_REQUIRE(st);
    static const char *const keys[] = {"disk.lat", "syscalls", "rss", "cpu.byproc"};
    static const uint8_t arity[] = {SN_WIRE_NUMERIC_BY_KEY, SN_WIRE_DISCRETE, SN_WIRE_SCALAR,
                                    SN_WIRE_DISCRETE};
    static const bool point[] = {false, false, true, true};
    enum { NI = 4, HOURS = 3, STEP = 7 };
    struct sn_ds_slot m1[NI][HOURS * 60], m1h[NI][HOURS], m1d[NI];
    t_seed(22);
    for (int i = 0; i < NI; i++) {
        inst_set(st, keys[i], arity[i], point[i], true, 1, 600);
        for (int m = 0; m < HOURS * 60; m++)
            model_init(&m1[i][m], T0 + m * 60);
        for (int h = 0; h < HOURS; h++)
            model_init(&m1h[i][h], T0 + h * 3600);
        model_init(&m1d[i], T0);
    }
    for (int64_t t = T0; t < T0 + HOURS * 3600; t += STEP) {
        for (int i = 0; i < NI; i++) {
            struct sn_ds_slot s;
            make_slot(&s, t, arity[i], 6, (uint32_t)(1 + rnd(3)));
            T_EQ(sn_store_merge(st, keys[i], SN_TIER_RAW, &s, HOSTS), 0);
            int m = (int)((t - T0) / 60), h = (int)((t - T0) / 3600);
            if (point[i]) {
                model_add_values(&m1[i][m], &s, arity[i]);
                model_add_values(&m1h[i][h], &s, arity[i]);
                model_add_values(&m1d[i], &s, arity[i]);
                m1[i][m].nsrc = model_nsrc(m1[i][m].nsrc, s.nsrc);
                m1h[i][h].nsrc = model_nsrc(m1h[i][h].nsrc, s.nsrc);
                m1d[i].nsrc = model_nsrc(m1d[i].nsrc, s.nsrc);
            } else {
                model_add(&m1[i][m], &s);
                model_add(&m1h[i][h], &s);
                model_add(&m1d[i], &s);
            }
            sn_ds_slot_fini(&s);
        }
        if ((t - T0) % 60 < STEP) /* about once a simulated minute */
            T_EQ(sn_store_flush(st, t + 1), 0);
    }
    /* a slot past the day, so that this flush has work of its own (see test_flush_rollups) */
    struct sn_ds_slot late;
    make_slot(&late, T0 + DAY + 100, SN_WIRE_SCALAR, 0, 1);
    T_EQ(sn_store_merge(st, "rss", SN_TIER_RAW, &late, HOSTS), 0);
    sn_ds_slot_fini(&late);
    T_EQ(sn_store_flush(st, T0 + DAY + 100), 0);

    for (int i = 0; i < NI; i++) {
        T_EQU(count_records(st, keys[i], SN_TIER_1M, T0, T0 + HOURS * 3600), HOURS * 60);
        T_EQU(count_records(st, keys[i], SN_TIER_1H, T0, T0 + DAY), HOURS);
        for (int m = 0; m < HOURS * 60; m++)
            check_record(st, keys[i], SN_TIER_1M, T0 + m * 60, &m1[i][m], arity[i], point[i]);
        for (int h = 0; h < HOURS; h++)
            check_record(st, keys[i], SN_TIER_1H, T0 + h * 3600, &m1h[i][h], arity[i], point[i]);
        check_record(st, keys[i], SN_TIER_1D, T0, &m1d[i], arity[i], point[i]);
        for (int m = 0; m < HOURS * 60; m++)
            sn_ds_slot_fini(&m1[i][m]);
        for (int h = 0; h < HOURS; h++)
            sn_ds_slot_fini(&m1h[i][h]);
        sn_ds_slot_fini(&m1d[i]);
    }
    struct sn_store_stats ss;
    sn_store_stats(st, &ss);
    T_EQU(ss.rollups_written, NI * (HOURS * 60 + HOURS + 1));
    T_EQU(ss.records_damaged, 0);
    sn_store_close(st);
}

/* sn_store_flush(st, now) computes the rollups whose period closed by now, even when the
 * store follows no aggregator and nothing new was merged (store.h: "Writes every dirty closed
 * slot and pending rollup now"). */
static void test_flush_rollups(void)
{
    char dir[600];
    new_dir(dir, sizeof(dir));
    struct sn_store *st = open_store(dir, NULL);
    T_REQUIRE(st);
    inst_set(st, "c", SN_WIRE_SCALAR, false, true, 1, 600);
    struct sn_ds_slot s, want;
    t_seed(33);
    make_slot(&s, T0 + 30, SN_WIRE_SCALAR, 0, 1);
    T_EQ(sn_store_merge(st, "c", SN_TIER_RAW, &s, HOSTS), 0);
    T_EQ(sn_store_flush(st, T0 + 40), 0); /* the raw record; its minute is still open */
    T_EQU(count_records(st, "c", SN_TIER_RAW, T0, T0 + 60), 1);
    T_EQU(count_records(st, "c", SN_TIER_1M, T0, T0 + 60), 0);
    T_EQ(sn_store_flush(st, T0 + 3600 + 60), 0); /* the minute and the hour closed */
    model_init(&want, T0);
    model_add(&want, &s);
    check_record(st, "c", SN_TIER_1M, T0, &want, SN_WIRE_SCALAR, false);
    check_record(st, "c", SN_TIER_1H, T0, &want, SN_WIRE_SCALAR, false);
    sn_ds_slot_fini(&want);
    sn_ds_slot_fini(&s);
    sn_store_close(st);
}

/* A rollup keeps the rollup_keys keys of largest count; the rest add up under "other". */
static void test_rollup_key_cap(void)
{
    char dir[600];
    new_dir(dir, sizeof(dir));
    struct sn_store_opts o = {.rollup_keys = 3};
    struct sn_store *st = open_store(dir, &o);
    T_REQUIRE(st);
    inst_set(st, "d", SN_WIRE_DISCRETE, false, true, 1, 600);
    inst_set(st, "n", SN_WIRE_NUMERIC_BY_KEY, false, true, 1, 600);
    /* keys k0..k7 with counts 10, 20, ..., 80 over the minute, split over 4 slots; one slot
     * has its own "other" (its agent's key cap) */
    struct sn_ds_slot sum[2];
    model_init(&sum[0], T0);
    model_init(&sum[1], T0);
    for (int i = 0; i < 2; i++) {
        uint8_t a = i ? SN_WIRE_NUMERIC_BY_KEY : SN_WIRE_DISCRETE;
        for (int j = 0; j < 4; j++) {
            struct sn_ds_slot s;
            model_init(&s, T0 + j * 10);
            for (int k = 0; k < 8; k++) {
                char key[8];
                snprintf(key, sizeof(key), "k%d", k);
                add_entry(&s, a, key, (uint64_t)(k + 1) * 10 / 4 + (j == 0 ? (k + 1) * 10 % 4 : 0),
                          1000 * (uint64_t)(k + 1));
            }
            if (j == 1)
                add_entry(&s, a, "other", 5, 7);
            s.src = malloc(sizeof(*s.src));
            s.src[0] = 0;
            s.nsrc = 1;
            T_EQ(sn_store_merge(st, i ? "n" : "d", SN_TIER_RAW, &s, HOSTS), 0);
            model_add(&sum[i], &s);
            sn_ds_slot_fini(&s);
        }
    }
    T_EQ(sn_store_flush(st, T0 + 120), 0);
    for (int i = 0; i < 2; i++) {
        struct sn_ds_slot **s;
        size_t n;
        bool v;
        T_EQ(sn_store_read(st, i ? "n" : "d", SN_TIER_1M, T0, T0 + 60, &s, &n, &v), 0);
        T_REQUIRE(n == 1);
        struct sn_ds_slot *r = s[0];
        T_EQU(r->n, 4);
        T_EQU(r->count, sum[i].count);
        static const char *const kept[4] = {"k5", "k6", "k7", "other"};
        uint64_t total = 0, want_other = 5;
        struct sn_hist *oh = sn_hist_create();
        for (int k = 0; k < 5; k++) {
            want_other += sum[i].e[k].count;
            if (sum[i].e[k].hist)
                sn_hist_merge(oh, sum[i].e[k].hist);
        }
        for (size_t k = 0; k < r->n && k < 4; k++) {
            T_STR(r->e[k].key, kept[k]);
            total += r->e[k].count;
            if (k < 3) {
                T_EQU(r->e[k].count, sum[i].e[5 + k].count);
            } else {
                T_EQU(r->e[k].count, want_other);
                if (i) {
                    sn_hist_merge(oh, sum[i].e[8].hist); /* the slot's own "other" */
                    T_OK(hist_eq(r->e[k].hist, oh));
                }
            }
        }
        T_EQU(total, sum[i].count);
        if (i)
            T_OK(hist_eq(r->total, sum[i].total));
        sn_hist_destroy(oh);
        slots_free(s, n);
        sn_ds_slot_fini(&sum[i]);
    }
    /* raw records keep every key */
    struct sn_ds_slot **s;
    size_t n;
    bool v;
    T_EQ(sn_store_read(st, "d", SN_TIER_RAW, T0, T0 + 60, &s, &n, &v), 0);
    T_EQU(n, 4);
    if (n == 4)
        T_EQU(s[0]->n, 8);
    slots_free(s, n);
    sn_store_close(st);
}

/* Records older than their tier keeps are gone after a flush at a later now; persist-data
 * false keeps the raw tier (its retention) and no rollups. */
static void test_retention(void)
{
    char dir[600];
    new_dir(dir, sizeof(dir));
    struct sn_store_opts o = {.tiers.keep = {3600, 2 * 3600, 2 * DAY, 4 * DAY}};
    struct sn_store *st = open_store(dir, &o);
    T_REQUIRE(st);
    inst_set(st, "keep", SN_WIRE_SCALAR, false, true, 1, 600);   /* raw: 1 h (the tier's) */
    inst_set(st, "brief", SN_WIRE_SCALAR, false, false, 1, 600); /* raw: 600 s, no rollups */
    T_EQ(sn_store_keep(st, "keep", SN_TIER_RAW), 3600);
    T_EQ(sn_store_keep(st, "keep", SN_TIER_1M), 2 * 3600);
    T_EQ(sn_store_keep(st, "keep", SN_TIER_1D), 4 * DAY);
    T_EQ(sn_store_keep(st, "brief", SN_TIER_RAW), 600);
    T_EQ(sn_store_keep(st, "brief", SN_TIER_1M), 0);
    T_EQ(sn_store_keep(st, "brief", SN_TIER_1H), 0);
    t_seed(44);
    for (int64_t t = T0; t < T0 + 300; t++) {
        for (int i = 0; i < 2; i++) {
            struct sn_ds_slot s;
            make_slot(&s, t, SN_WIRE_SCALAR, 0, 1);
            T_EQ(sn_store_merge(st, i ? "brief" : "keep", SN_TIER_RAW, &s, HOSTS), 0);
            sn_ds_slot_fini(&s);
        }
        if (t % 60 == 59)
            T_EQ(sn_store_flush(st, t + 1), 0);
    }
    flush_live(st, T0 + 400);
    T_EQU(count_records(st, "keep", SN_TIER_RAW, T0, T0 + DAY), 300);
    T_EQU(count_records(st, "brief", SN_TIER_RAW, T0, T0 + DAY), 300);
    T_EQU(count_records(st, "keep", SN_TIER_1M, T0, T0 + DAY), 5);
    T_EQU(count_records(st, "brief", SN_TIER_1M, T0, T0 + DAY), 0);
    /* 600 s after the first 100 s: brief's first 100 records go, keep's stay */
    flush_live(st, T0 + 700);
    T_EQU(count_records(st, "brief", SN_TIER_RAW, T0, T0 + DAY), 200);
    T_EQU(count_records(st, "keep", SN_TIER_RAW, T0, T0 + DAY), 300);
    int64_t t0 = 0;
    T_EQ(sn_store_oldest(st, "brief", SN_TIER_RAW, &t0), 0);
    T_EQ(t0, T0 + 100);
    /* an hour on, keep's raw records are gone, its minutes stay; two hours on, they go */
    flush_live(st, T0 + 3600 + 150);
    T_EQU(count_records(st, "brief", SN_TIER_RAW, T0, T0 + DAY), 0);
    T_EQU(count_records(st, "keep", SN_TIER_RAW, T0, T0 + DAY), 150);
    flush_live(st, T0 + 3600 + 400);
    T_EQU(count_records(st, "keep", SN_TIER_RAW, T0, T0 + DAY), 0);
    T_EQU(count_records(st, "keep", SN_TIER_1M, T0, T0 + DAY), 5);
    T_EQU(count_records(st, "keep", SN_TIER_1H, T0, T0 + DAY), 1);
    flush_live(st, T0 + 2 * 3600 + 400);
    T_EQU(count_records(st, "keep", SN_TIER_1M, T0, T0 + DAY), 0);
    T_EQU(count_records(st, "keep", SN_TIER_1H, T0, T0 + DAY), 1);
    T_EQU(count_records(st, "brief", SN_TIER_1H, T0, T0 + DAY), 0);
    T_EQU(count_records(st, "brief", SN_TIER_1D, 0, INT64_MAX / 2), 0);
    struct sn_store_stats ss;
    sn_store_stats(st, &ss);
    T_EQU(ss.records_expired, 600 + 5 + 4); /* and 4 of live's */
    T_EQU(ss.records_dropped, 0);
    sn_store_close(st);
}

/* Retention that removes every record the store holds (its data database left empty): the
 * flush succeeds and counts them. */
static void test_retention_empties(void)
{
    char dir[600];
    new_dir(dir, sizeof(dir));
    struct sn_store *st = open_store(dir, NULL);
    T_REQUIRE(st);
    inst_set(st, "only", SN_WIRE_SCALAR, false, false, 1, 600);
    t_seed(45);
    for (int64_t t = T0; t < T0 + 100; t++) {
        struct sn_ds_slot s;
        make_slot(&s, t, SN_WIRE_SCALAR, 0, 1);
        T_EQ(sn_store_merge(st, "only", SN_TIER_RAW, &s, HOSTS), 0);
        sn_ds_slot_fini(&s);
    }
    T_EQ(sn_store_flush(st, T0 + 110), 0);
    T_EQU(count_records(st, "only", SN_TIER_RAW, 0, INT64_MAX / 2), 100);
    T_EQ(sn_store_flush(st, T0 + 10000), 0);
    T_EQU(count_records(st, "only", SN_TIER_RAW, 0, INT64_MAX / 2), 0);
    struct sn_store_stats ss;
    sn_store_stats(st, &ss);
    T_EQU(ss.records_expired, 100);
    T_EQU(ss.write_errors, 0);
    sn_store_close(st);
}

/* A dropped instrumentation's records are removed; a new one of the same key starts empty. */
static void test_drop(void)
{
    char dir[600];
    new_dir(dir, sizeof(dir));
    struct sn_store *st = open_store(dir, NULL);
    T_REQUIRE(st);
    inst_set(st, "x", SN_WIRE_DISCRETE, false, true, 1, 600);
    inst_set(st, "y", SN_WIRE_DISCRETE, false, true, 1, 600);
    t_seed(55);
    for (int64_t t = T0; t < T0 + 3000; t++)
        for (int i = 0; i < 2; i++) {
            struct sn_ds_slot s;
            make_slot(&s, t, SN_WIRE_DISCRETE, 3, 1);
            T_EQ(sn_store_merge(st, i ? "y" : "x", SN_TIER_RAW, &s, HOSTS), 0);
            sn_ds_slot_fini(&s);
        }
    T_EQ(sn_store_flush(st, T0 + 3700), 0);
    T_EQU(count_records(st, "x", SN_TIER_RAW, T0, T0 + DAY), 3000);
    T_EQU(count_records(st, "x", SN_TIER_1M, T0, T0 + DAY), 50);
    T_EQ(sn_store_inst_drop(st, "x"), 0);
    T_EQ(sn_store_inst_drop(st, "x"), -ENOENT);
    T_EQ(sn_store_inst_drop(st, "never"), -ENOENT);
    T_EQU(count_records(st, "x", SN_TIER_RAW, T0, T0 + DAY), SIZE_MAX); /* -ENOENT */
    struct sn_store_stats ss = {0};
    for (int i = 0; i < 20 && ss.records_deleted < 3000 + 50 + 1; i++) {
        T_EQ(sn_store_flush(st, T0 + 3800 + i), 0);
        sn_store_stats(st, &ss);
    }
    T_EQU(ss.records_deleted, 3000 + 50 + 1); /* raw, 1m, the first hour's 1h */
    T_EQU(count_records(st, "y", SN_TIER_RAW, T0, T0 + DAY), 3000);
    /* the same key again: empty, then only its own records */
    inst_set(st, "x", SN_WIRE_SCALAR, false, true, 1, 600);
    T_EQU(count_records(st, "x", SN_TIER_RAW, 0, INT64_MAX / 2), 0);
    T_EQU(count_records(st, "x", SN_TIER_1M, 0, INT64_MAX / 2), 0);
    struct sn_ds_slot s;
    make_slot(&s, T0 + 10, SN_WIRE_SCALAR, 0, 1);
    T_EQ(sn_store_merge(st, "x", SN_TIER_RAW, &s, HOSTS), 0);
    T_EQ(sn_store_flush(st, T0 + 4000), 0);
    check_record(st, "x", SN_TIER_RAW, T0 + 10, &s, SN_WIRE_SCALAR, false);
    T_EQU(count_records(st, "x", SN_TIER_RAW, 0, INT64_MAX / 2), 1);
    sn_ds_slot_fini(&s);
    sn_store_close(st);
    /* reopened: the new x and y are there, the dropped one's records are not */
    st = open_store(dir, NULL);
    T_REQUIRE(st);
    T_EQU(count_records(st, "x", SN_TIER_RAW, 0, INT64_MAX / 2), 1);
    T_EQU(count_records(st, "y", SN_TIER_RAW, 0, INT64_MAX / 2), 3000);
    sn_store_close(st);
}

/* Dropping the only instrumentation: its records, names and pending rollups are removed (each
 * database left empty), the flushes succeed and count them. */
static void test_drop_only(void)
{
    char dir[600];
    new_dir(dir, sizeof(dir));
    struct sn_store *st = open_store(dir, NULL);
    T_REQUIRE(st);
    inst_set(st, "only", SN_WIRE_DISCRETE, false, true, 1, 600);
    t_seed(56);
    for (int64_t t = T0; t < T0 + 100; t++) {
        struct sn_ds_slot s;
        make_slot(&s, t, SN_WIRE_DISCRETE, 3, 1);
        T_EQ(sn_store_merge(st, "only", SN_TIER_RAW, &s, HOSTS), 0);
        sn_ds_slot_fini(&s);
    }
    T_EQ(sn_store_flush(st, T0 + 200), 0);
    T_EQ(sn_store_inst_drop(st, "only"), 0);
    for (int i = 0; i < 3; i++)
        T_EQ(sn_store_flush(st, T0 + 210 + i), 0);
    struct sn_store_stats ss;
    sn_store_stats(st, &ss);
    T_EQU(ss.records_deleted, 100 + 2); /* raw and the two minutes' 1m records */
    sn_store_close(st);
    st = open_store(dir, NULL);
    T_REQUIRE(st);
    T_EQU(count_records(st, "only", SN_TIER_RAW, 0, INT64_MAX / 2), SIZE_MAX); /* -ENOENT */
    sn_store_close(st);
}

/* The size cap: the oldest raw records go first, counted. */
static void test_size_cap(void)
{
    char dir[600];
    new_dir(dir, sizeof(dir));
    struct sn_store_opts o = {.max_bytes = 512 << 10};
    struct sn_store *st = open_store(dir, &o);
    T_REQUIRE(st);
    inst_set(st, "big", SN_WIRE_NUMERIC_BY_KEY, false, true, 1, 600);
    t_seed(66);
    const int64_t end = T0 + 1800;
    for (int64_t t = T0; t < end; t++) {
        struct sn_ds_slot s;
        make_slot(&s, t, SN_WIRE_NUMERIC_BY_KEY, 30, 2);
        T_EQ(sn_store_merge(st, "big", SN_TIER_RAW, &s, HOSTS), 0);
        sn_ds_slot_fini(&s);
        if (t % 60 == 59)
            T_EQ(sn_store_flush(st, t + 1), 0);
    }
    flush_live(st, end + 10); /* the last minute's rollup */
    struct sn_store_stats ss;
    sn_store_stats(st, &ss);
    t_note("used %" PRIu64 " written %" PRIu64, ss.used_bytes, ss.bytes_written);
    T_OK(ss.bytes_written > 2 * o.max_bytes); /* else the test proves nothing */
    T_OK(ss.records_dropped > 0);
    T_OK(ss.used_bytes <= o.max_bytes);
    int64_t oldest = 0;
    T_EQ(sn_store_oldest(st, "big", SN_TIER_RAW, &oldest), 0);
    T_OK(oldest > T0);
    size_t n = count_records(st, "big", SN_TIER_RAW, 0, INT64_MAX / 2);
    T_EQU(n, (size_t)(end - oldest)); /* the newest are all there, nothing but the oldest went */
    T_EQU(count_records(st, "live", SN_TIER_RAW, 0, INT64_MAX / 2), 1);
    T_EQU(ss.records_dropped, (uint64_t)(oldest - T0));
    T_EQU(count_records(st, "big", SN_TIER_1M, T0, end), 30); /* rollups stay */
    sn_store_close(st);
}

/* A map of 1 MiB grows as the data needs: no error, map_grown counted, every record there. */
static void test_map_growth(void)
{
    char dir[600];
    new_dir(dir, sizeof(dir));
    struct sn_store_opts o = {.map_size = 1 << 20};
    struct sn_store *st = open_store(dir, &o);
    T_REQUIRE(st);
    inst_set(st, "big", SN_WIRE_NUMERIC_BY_KEY, false, true, 1, 600);
    t_seed(77);
    for (int64_t t = T0; t < T0 + 2400; t++) {
        struct sn_ds_slot s;
        make_slot(&s, t, SN_WIRE_NUMERIC_BY_KEY, 30, 2);
        T_EQ(sn_store_merge(st, "big", SN_TIER_RAW, &s, HOSTS), 0);
        sn_ds_slot_fini(&s);
        if (t % 300 == 299)
            T_EQ(sn_store_flush(st, t + 1), 0);
    }
    struct sn_store_stats ss;
    sn_store_stats(st, &ss);
    T_OK(ss.map_grown > 0);
    T_OK(ss.map_size > (1 << 20));
    T_OK(ss.bytes_written > (1 << 20));
    T_EQU(ss.write_errors, 0);
    T_EQU(count_records(st, "big", SN_TIER_RAW, 0, INT64_MAX / 2), 2400);
    sn_store_close(st);
    st = open_store(dir, &o); /* a file larger than the map asked for keeps its size */
    T_REQUIRE(st);
    T_EQU(count_records(st, "big", SN_TIER_RAW, 0, INT64_MAX / 2), 2400);
    sn_store_close(st);
}

/* A byte of a stored record changed behind the store's back: that record is skipped and
 * counted, the others read, by a read and by the rollup that reads it. */
static void test_damaged_record(void)
{
    char dir[600];
    new_dir(dir, sizeof(dir));
    struct sn_store *st = open_store(dir, NULL);
    T_REQUIRE(st);
    inst_set(st, "d", SN_WIRE_DISCRETE, false, true, 1, 600);
    t_seed(88);
    struct sn_ds_slot want; /* the minute's rollup: every record but the damaged one */
    model_init(&want, T0);
    for (int64_t t = T0; t < T0 + 10; t++) {
        struct sn_ds_slot s;
        make_slot(&s, t, SN_WIRE_DISCRETE, 4, 1);
        T_EQ(sn_store_merge(st, "d", SN_TIER_RAW, &s, HOSTS), 0);
        if (t != T0 + 3)
            model_add(&want, &s);
        sn_ds_slot_fini(&s);
    }
    T_EQ(sn_store_flush(st, T0 + 20), 0); /* the minute not closed: its rollup pending */
    T_EQU(count_records(st, "d", SN_TIER_RAW, T0, T0 + 10), 10);
    sn_store_close(st);

    /* the fourth raw record (data keys: sid, tier, t big-endian), one byte flipped */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_val k, v;
    int changed = 0;
    T_REQUIRE(mdb_env_create(&env) == 0);
    mdb_env_set_maxdbs(env, 8);
    T_REQUIRE(mdb_env_open(env, dir, 0, 0640) == 0);
    T_REQUIRE(mdb_txn_begin(env, NULL, 0, &txn) == 0);
    T_EQ(mdb_dbi_open(txn, "data", 0, &dbi), 0);
    T_EQ(mdb_cursor_open(txn, dbi, &cur), 0);
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && !changed;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const unsigned char *kp = k.mv_data;
        int64_t t = 0;
        for (int i = 5; i < 13 && k.mv_size == 13; i++)
            t = t << 8 | kp[i];
        if (k.mv_size == 13 && kp[4] == SN_TIER_RAW && t == T0 + 3) {
            unsigned char *copy = malloc(v.mv_size);
            memcpy(copy, v.mv_data, v.mv_size);
            copy[v.mv_size / 2] ^= 0x20;
            MDB_val nv = {v.mv_size, copy};
            T_EQ(mdb_cursor_put(cur, &k, &nv, MDB_CURRENT), 0);
            free(copy);
            changed = 1;
        }
    }
    mdb_cursor_close(cur);
    T_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    T_REQUIRE(changed);

    st = open_store(dir, NULL);
    T_REQUIRE(st);
    struct sn_ds_slot **s;
    size_t n;
    bool vals;
    T_EQ(sn_store_read(st, "d", SN_TIER_RAW, T0, T0 + 10, &s, &n, &vals), 0);
    T_EQU(n, 9);
    for (size_t i = 0; i < n; i++)
        T_OK(s[i]->t != T0 + 3);
    slots_free(s, n);
    struct sn_store_stats ss;
    sn_store_stats(st, &ss);
    T_EQU(ss.records_damaged, 1);
    /* the pending rollup, computed after the reopen, skips it too (and counts it) */
    inst_set(st, "d", SN_WIRE_DISCRETE, false, true, 1, 600);
    flush_live(st, T0 + 100);
    check_record(st, "d", SN_TIER_1M, T0, &want, SN_WIRE_DISCRETE, false);
    sn_store_stats(st, &ss);
    T_EQU(ss.records_damaged, 2);
    sn_ds_slot_fini(&want);
    sn_store_close(st);
}

/* The writer following a real aggregator: frames ingested, flushed once their slot closed,
 * read back equal to the slot the aggregator holds. */
static void test_follow(void)
{
    char dir[600];
    new_dir(dir, sizeof(dir));
    struct sn_store *st = open_store(dir, NULL);
    struct sn_agg *agg = NULL;
    T_REQUIRE(st);
    T_REQUIRE(sn_agg_create(&agg) == 0);
    struct sn_ds_opts dso = {.arity = SN_WIRE_NUMERIC_BY_KEY, .granularity = 1, .retention = 600};
    struct sn_dataset *ds = sn_ds_create(&dso);
    T_REQUIRE(ds);
    T_EQ(sn_agg_add(agg, "lat", ds), 0);
    inst_set(st, "lat", SN_WIRE_NUMERIC_BY_KEY, false, true, 1, 600);
    T_EQ(sn_store_follow(st, agg), 0);

    const int64_t t = sn_now() - 100; /* the writer's own ticks may write it too: same record */
    struct sn_ds_slot want;
    model_init(&want, t);
    t_seed(99);
    for (int h = 0; h < 2; h++)
        for (int f = 0; f < 3; f++) {
            struct sn_wire_entry e[3];
            struct sn_wire_frame fr = {.id = "lat",
                                       .host = (char *)HOSTS[h],
                                       .t = t,
                                       .arity = SN_WIRE_NUMERIC_BY_KEY,
                                       .n = 3,
                                       .entries = e};
            struct sn_ds_slot one;
            model_init(&one, t);
            for (int k = 0; k < 3; k++) {
                static const char *const kn[3] = {"read", "sync", "write"};
                e[k].key = (char *)kn[k];
                e[k].count = 1 + rnd(9);
                e[k].hist = sn_hist_create();
                sn_hist_insert_u64(e[k].hist, 100 + rnd(10000), e[k].count);
                fr.total += e[k].count;
                struct sn_ds_entry de = {e[k].key, e[k].count, e[k].hist};
                struct sn_ds_slot s1 = {.count = e[k].count, .n = 1, .e = &de, .total = e[k].hist};
                sn_ds_slot_add(&one, &s1);
            }
            T_EQ(sn_agg_ingest(agg, &fr, t, NULL), SN_DS_ADDED);
            model_add(&want, &one);
            sn_ds_slot_fini(&one);
            for (int k = 0; k < 3; k++)
                sn_hist_destroy(e[k].hist);
        }
    want.nsrc = 2;
    T_EQ(sn_store_flush(st, t + 1 + SN_STORE_GRACE), 0);
    check_record(st, "lat", SN_TIER_RAW, t, &want, SN_WIRE_NUMERIC_BY_KEY, false);
    struct sn_store_stats ss;
    sn_store_stats(st, &ss);
    T_OK(ss.records_written >= 1);
    T_EQU(ss.slots_lost, 0);
    sn_store_close(st);
    /* the close's last write and a reopen change nothing */
    st = open_store(dir, NULL);
    T_REQUIRE(st);
    check_record(st, "lat", SN_TIER_RAW, t, &want, SN_WIRE_NUMERIC_BY_KEY, false);
    sn_store_close(st);
    sn_ds_slot_fini(&want);
    sn_ds_destroy(ds);
    sn_agg_destroy(agg);
}

/* The close's last write: a slot still open (this very second, a point-scope scalar) is written
 * by sn_store_close(), so a SIGTERM loses nothing memory held. */
static void test_close_writes_open_slots(void)
{
    char dir[600];
    new_dir(dir, sizeof(dir));
    struct sn_store *st = open_store(dir, NULL);
    struct sn_agg *agg = NULL;
    T_REQUIRE(st);
    T_REQUIRE(sn_agg_create(&agg) == 0);
    struct sn_ds_opts dso = {
        .arity = SN_WIRE_SCALAR, .granularity = 1, .retention = 600, .point = true};
    struct sn_dataset *ds = sn_ds_create(&dso);
    T_REQUIRE(ds);
    T_EQ(sn_agg_add(agg, "rss", ds), 0);
    inst_set(st, "rss", SN_WIRE_SCALAR, true, true, 1, 600);
    T_EQ(sn_store_follow(st, agg), 0);
    const int64_t t = sn_now();
    struct sn_wire_frame fr = {
        .id = "rss", .host = "h0", .t = t, .arity = SN_WIRE_SCALAR, .total = 4242};
    T_EQ(sn_agg_ingest(agg, &fr, t, NULL), SN_DS_ADDED);
    fr.host = "h1";
    fr.total = 1000;
    T_EQ(sn_agg_ingest(agg, &fr, t, NULL), SN_DS_ADDED);
    sn_store_close(st); /* at once: the slot has not closed */
    st = open_store(dir, NULL);
    T_REQUIRE(st);
    struct sn_ds_slot want = {.t = t, .count = 5242, .nsrc = 2};
    check_record(st, "rss", SN_TIER_RAW, t, &want, SN_WIRE_SCALAR, false);
    sn_store_close(st);
    sn_ds_destroy(ds);
    sn_agg_destroy(agg);
}

/* A write that fails (the file may not grow: RLIMIT_FSIZE, as a full disk would) is counted,
 * with its error; the slots stay queued and are written once writing works again. */
static void test_write_error(void)
{
    char dir[600], path[700];
    new_dir(dir, sizeof(dir));
    struct sn_store *st = open_store(dir, NULL);
    T_REQUIRE(st);
    inst_set(st, "n", SN_WIRE_NUMERIC_BY_KEY, false, true, 1, 600);
    t_seed(111);
    struct sn_ds_slot first;
    make_slot(&first, T0, SN_WIRE_NUMERIC_BY_KEY, 4, 1);
    T_EQ(sn_store_merge(st, "n", SN_TIER_RAW, &first, HOSTS), 0);
    T_EQ(sn_store_flush(st, T0 + 5), 0);
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    struct stat sb;
    T_REQUIRE(stat(path, &sb) == 0);

    struct rlimit old, lim;
    T_REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0);
    void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = (rlim_t)sb.st_size; /* no page past the file's end */
    T_REQUIRE(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    enum { N = 200 };
    struct sn_ds_slot want[N];
    for (int i = 0; i < N; i++) {
        make_slot(&want[i], T0 + 10 + i, SN_WIRE_NUMERIC_BY_KEY, 30, 1);
        T_EQ(sn_store_merge(st, "n", SN_TIER_RAW, &want[i], HOSTS), 0);
    }
    int rc1 = sn_store_flush(st, T0 + 300), rc2 = sn_store_flush(st, T0 + 301);
    struct sn_store_stats ss;
    sn_store_stats(st, &ss);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, oldsig);
    t_note("flushes: %d %d", rc1, rc2);
    T_OK(rc1 < 0);
    T_OK(rc2 < 0);
    T_EQU(ss.write_errors, 2);
    T_OK(ss.last_error < 0);
    T_OK(ss.pending >= N);
    T_EQU(count_records(st, "n", SN_TIER_RAW, T0 + 10, T0 + 10 + N), 0);
    check_record(st, "n", SN_TIER_RAW, T0, &first, SN_WIRE_NUMERIC_BY_KEY, false);

    /* room again: everything queued is written, the error cleared */
    T_EQ(sn_store_flush(st, T0 + 302), 0);
    sn_store_stats(st, &ss);
    T_EQ(ss.last_error, 0);
    T_EQU(ss.write_errors, 2);
    T_EQU(count_records(st, "n", SN_TIER_RAW, T0 + 10, T0 + 10 + N), N);
    for (int i = 0; i < N; i += 37)
        check_record(st, "n", SN_TIER_RAW, T0 + 10 + i, &want[i], SN_WIRE_NUMERIC_BY_KEY, false);
    for (int i = 0; i < N; i++)
        sn_ds_slot_fini(&want[i]);
    sn_ds_slot_fini(&first);
    sn_store_close(st);
}

/* Readers in two threads while the main thread writes (the map growing from 1 MiB): every
 * read sees whole records, oldest first, never fewer than a read before it. */
struct reader {
    struct sn_store *st;
    _Atomic int *stop;
    size_t reads, bad;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    size_t last = 0;
    for (int i = 0; i < 100000 && !atomic_load(r->stop); i++) {
        struct sn_ds_slot **s;
        size_t n;
        bool v;
        if (sn_store_read(r->st, "big", SN_TIER_RAW, 0, INT64_MAX / 2, &s, &n, &v) != 0) {
            r->bad++;
            continue;
        }
        if (n < last)
            r->bad++;
        for (size_t j = 1; j < n; j++)
            if (s[j]->t <= s[j - 1]->t || s[j]->count == 0)
                r->bad++;
        last = n;
        slots_free(s, n);
        r->reads++;
    }
    return NULL;
}

static void test_concurrent_readers(void)
{
    char dir[600];
    new_dir(dir, sizeof(dir));
    struct sn_store_opts o = {.map_size = 1 << 20};
    struct sn_store *st = open_store(dir, &o);
    T_REQUIRE(st);
    inst_set(st, "big", SN_WIRE_NUMERIC_BY_KEY, false, true, 1, 600);
    _Atomic int stop = 0;
    struct reader r[2] = {{st, &stop, 0, 0}, {st, &stop, 0, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        T_REQUIRE(pthread_create(&th[i], NULL, reader_main, &r[i]) == 0);
    t_seed(123);
    for (int64_t t = T0; t < T0 + 1500; t++) {
        struct sn_ds_slot s;
        make_slot(&s, t, SN_WIRE_NUMERIC_BY_KEY, 30, 2);
        T_EQ(sn_store_merge(st, "big", SN_TIER_RAW, &s, HOSTS), 0);
        sn_ds_slot_fini(&s);
        if (t % 50 == 49)
            T_EQ(sn_store_flush(st, t + 1), 0);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        T_OK(r[i].reads > 0);
        T_EQU(r[i].bad, 0);
    }
    struct sn_store_stats ss;
    sn_store_stats(st, &ss);
    T_OK(ss.map_grown > 0);
    T_EQU(ss.records_damaged, 0);
    T_EQU(count_records(st, "big", SN_TIER_RAW, 0, INT64_MAX / 2), 1500);
    sn_store_close(st);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    snprintf(root, sizeof(root), "%s/store-XXXXXX", t_outdir());
    if (!mkdtemp(root)) {
        perror(root);
        return 1;
    }
    t_run("open, meta, reopen", test_open_meta_reopen);
    t_run("merge at every tier, all arities, reopen", test_merge_every_tier);
    t_run("rollups over 3 hours equal the model", test_rollups);
    t_run("flush computes closed rollups without new work", test_flush_rollups);
    t_run("rollup key cap", test_rollup_key_cap);
    t_run("retention and persist-data false", test_retention);
    t_run("retention that empties the store", test_retention_empties);
    t_run("drop", test_drop);
    t_run("drop the only instrumentation", test_drop_only);
    t_run("size cap", test_size_cap);
    t_run("map growth", test_map_growth);
    t_run("damaged record", test_damaged_record);
    t_run("follow an aggregator", test_follow);
    t_run("close writes open slots", test_close_writes_open_slots);
    t_run("a failed write is counted and redone", test_write_error);
    t_run("readers while the writer writes and the map grows", test_concurrent_readers);
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return t_done();
}
