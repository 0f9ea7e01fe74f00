/*
 * The aggregator (src/agg/agg.h) without HTTP: the registry, ingest of frames of each arity
 * from several sources with the outcome counters, the query API (views: sums, columns as
 * integer ranges, present and biggest keys, reporting counts), per-source status and what
 * long polls expect, listeners, expiry and retention, and the locking: a view outlives a
 * delete and an expiry; frames merged while their instrumentation is deleted; a reader of one
 * instrumentation answered while another instrumentation merges a big frame.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agg/agg.h"
#include "t.h"

#define NOW 1700000000 /* a multiple of 10 */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A new aggregator with key of arity a, granularity g, retention r. */
static struct sn_agg *mk(const char *key, uint8_t a, uint32_t g, uint32_t r, bool point)
{
    struct sn_agg *agg = NULL;
    struct sn_ds_opts o = {.arity = a, .granularity = g, .retention = r, .point = point};
    T_OK(sn_agg_create(&agg) == 0);
    struct sn_dataset *ds = sn_ds_create(&o);
    T_OK(ds != NULL);
    T_EQ(sn_agg_add(agg, key, ds), 0);
    sn_ds_destroy(ds); /* the aggregator keeps its own reference */
    return agg;
}

static int add_to(struct sn_agg *agg, const char *key, uint8_t a, const char *key2,
                  struct sn_ds_opts o)
{
    (void)a;
    struct sn_dataset *ds = sn_ds_create(&o);
    int rc = ds ? sn_agg_add(agg, key2 ? key2 : key, ds) : -ENOMEM;
    sn_ds_destroy(ds);
    return rc;
}

/* A frame: id, host, second t, arity a; n entries with keys k[i] and counts c[i] (numeric:
 * each count events of value v[i]). */
struct fb {
    struct sn_wire_frame f;
    struct sn_wire_entry e[8];
};

static void frame(struct fb *b, const char *id, const char *host, int64_t t, uint8_t a, size_t n,
                  const char *const *k, const uint64_t *c, const uint64_t *v)
{
    memset(b, 0, sizeof(*b));
    b->f = (struct sn_wire_frame){
        .id = (char *)id, .host = (char *)host, .t = t, .arity = a, .entries = b->e};
    if (a == SN_WIRE_SCALAR) {
        b->f.total = c[0];
        return;
    }
    for (size_t i = 0; i < n; i++) {
        b->e[i].key = (char *)(a == SN_WIRE_NUMERIC ? "" : k[i]);
        b->e[i].count = c[i];
        if (a == SN_WIRE_NUMERIC || a == SN_WIRE_NUMERIC_BY_KEY) {
            b->e[i].hist = sn_hist_create();
            sn_hist_insert_u64(b->e[i].hist, v[i], c[i]);
        }
        b->f.total += c[i];
    }
    b->f.n = n;
}

static void frame_fini(struct fb *b)
{
    for (size_t i = 0; i < b->f.n; i++)
        sn_hist_destroy(b->e[i].hist);
}

static int ingest(struct sn_agg *agg, const char *id, const char *host, int64_t t, uint8_t a,
                  size_t n, const char *const *k, const uint64_t *c, const uint64_t *v)
{
    struct fb b;
    frame(&b, id, host, t, a, n, k, c, v);
    int rc = sn_agg_ingest(agg, &b.f, NOW, NULL);
    frame_fini(&b);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */

static void test_registry(void)
{
    struct sn_agg *agg = mk("1", SN_WIRE_SCALAR, 1, 60, false);
    struct sn_ds_opts o = {.arity = SN_WIRE_SCALAR, .granularity = 1, .retention = 60};
    uint64_t one = 1;
    struct sn_agg_counters c;

    T_EQ(add_to(agg, "1", 0, NULL, o), -EEXIST);
    T_EQ(add_to(agg, "", 0, NULL, o), -EINVAL);
    T_EQ(add_to(agg, "acme/1", 0, NULL, o), 0);
    T_EQ(sn_agg_arity(agg, "acme/1"), SN_WIRE_SCALAR);
    T_EQ(sn_agg_arity(agg, "acme/2"), -ENOENT);
    T_EQ(ingest(agg, "2", "h", NOW, SN_WIRE_SCALAR, 0, NULL, &one, NULL), -ENOENT);
    T_EQ(ingest(agg, "acme/1", "h", NOW, SN_WIRE_SCALAR, 0, NULL, &one, NULL), SN_DS_ADDED);
    T_EQ(sn_agg_remove(agg, "acme/1"), 0);
    T_EQ(sn_agg_remove(agg, "acme/1"), -ENOENT);
    T_EQ(ingest(agg, "acme/1", "h", NOW, SN_WIRE_SCALAR, 0, NULL, &one, NULL), -ENOENT);
    sn_agg_counters(agg, &c);
    T_EQU(c.frames_in, 1);
    T_EQU(c.frames_unknown, 2);
    struct sn_agg_view *v;
    T_EQ(sn_agg_view_open(agg, "acme/1", NOW, NOW + 1, &v), -ENOENT);
    T_OK(v == NULL);
    T_EQ(sn_agg_sources_since(agg, "nope", 0), 0);
    sn_agg_destroy(agg);
}

static void test_scalar_sources(void)
{
    struct sn_agg *agg = mk("1", SN_WIRE_SCALAR, 1, 60, false);
    uint64_t c3 = 3, c4 = 4, c5 = 5;
    struct sn_agg_view *v;
    struct sn_ds_slot sum;

    T_EQ(ingest(agg, "1", "a", NOW - 2, SN_WIRE_SCALAR, 0, NULL, &c3, NULL), SN_DS_ADDED);
    T_EQ(ingest(agg, "1", "b", NOW - 2, SN_WIRE_SCALAR, 0, NULL, &c4, NULL), SN_DS_ADDED);
    T_EQ(ingest(agg, "1", "a", NOW - 1, SN_WIRE_SCALAR, 0, NULL, &c5, NULL), SN_DS_ADDED);
    T_REQUIRE(sn_agg_view_open(agg, "1", NOW - 10, NOW, &v) == 0);
    T_EQ(sn_agg_view_granularity(v), 1);
    T_EQ(sn_agg_view_nsrc(v, NOW - 2), 2);
    T_EQ(sn_agg_view_nsrc(v, NOW - 1), 1);
    T_EQ(sn_agg_view_nsrc(v, NOW - 3), 0);
    T_EQ(sn_agg_view_min_reporting(v, NOW - 2, 2), 1);
    T_EQ(sn_agg_view_min_reporting(v, NOW - 2, 1), 2);
    T_EQ(sn_agg_view_min_reporting(v, NOW - 3, 2), 0); /* a slot without reports */
    T_REQUIRE(sn_agg_view_sum(v, NOW - 2, 2, &sum) == 0);
    T_EQU(sum.count, 12);
    sn_agg_sum_fini(&sum);
    T_REQUIRE(sn_agg_view_sum(v, NOW - 5, 3, &sum) == 0); /* [NOW-5, NOW-2): nothing */
    T_EQU(sum.count, 0);
    sn_agg_sum_fini(&sum);
    sn_agg_view_close(v);
    T_EQ(sn_agg_sources_since(agg, "1", NOW - 2), 2);
    T_EQ(sn_agg_sources_since(agg, "1", NOW - 1), 1);
    sn_agg_destroy(agg);
}

static void test_discrete_keys(void)
{
    struct sn_agg *agg = mk("7", SN_WIRE_DISCRETE, 1, 60, false);
    const char *k1[] = {"read", "write"}, *k2[] = {"open", "read"}, *k3[] = {"close", "zero"};
    uint64_t c1[] = {5, 2}, c2[] = {9, 1}, c3[] = {1, 0};
    struct sn_agg_view *v;
    struct sn_ds_slot sum;
    char **keys;
    size_t n, *order;

    T_EQ(ingest(agg, "7", "a", NOW - 3, SN_WIRE_DISCRETE, 2, k1, c1, NULL), SN_DS_ADDED);
    T_EQ(ingest(agg, "7", "b", NOW - 2, SN_WIRE_DISCRETE, 2, k2, c2, NULL), SN_DS_ADDED);
    T_EQ(ingest(agg, "7", "c", NOW - 1, SN_WIRE_DISCRETE, 2, k3, c3, NULL), SN_DS_ADDED);
    T_REQUIRE(sn_agg_view_open(agg, "7", NOW - 3, NOW, &v) == 0);
    T_REQUIRE(sn_agg_view_keys(v, NOW - 3, 3, &keys, &n) == 0);
    T_EQ(n, 4); /* "zero" has no count */
    if (n == 4) {
        T_STR(keys[0], "close");
        T_STR(keys[1], "open");
        T_STR(keys[2], "read");
        T_STR(keys[3], "write");
    }
    T_REQUIRE(sn_agg_view_biggest(v, NOW - 3, 3, (const char *const *)keys, n, &order) == 0);
    T_EQ(order[0], 1); /* open 9 */
    T_EQ(order[1], 2); /* read 6 */
    T_EQ(order[2], 3); /* write 2 */
    T_EQ(order[3], 0); /* close 1 */
    free(order);
    sn_agg_strings_free(keys, n);
    T_REQUIRE(sn_agg_view_keys(v, NOW - 3, 1, &keys, &n) == 0); /* one slot */
    T_EQ(n, 2);
    sn_agg_strings_free(keys, n);
    T_REQUIRE(sn_agg_view_sum(v, NOW - 3, 2, &sum) == 0);
    T_EQ(sum.n, 3);
    if (sum.n == 3) {
        T_STR(sum.e[0].key, "open");
        T_EQU(sum.e[0].count, 9);
        T_STR(sum.e[1].key, "read");
        T_EQU(sum.e[1].count, 6);
        T_STR(sum.e[2].key, "write");
        T_EQU(sum.e[2].count, 2);
    }
    sn_agg_sum_fini(&sum);
    sn_agg_view_close(v);
    sn_agg_destroy(agg);
}

static void test_numeric_columns(void)
{
    struct sn_agg *agg = mk("3", SN_WIRE_NUMERIC, 1, 60, false);
    const char *none[] = {""};
    uint64_t c1[] = {4}, v1[] = {100}, c2[] = {2}, v2[] = {2000000};
    struct sn_agg_view *v;
    struct sn_agg_columns cols;
    struct sn_hist *total;

    T_EQ(ingest(agg, "3", "a", NOW - 2, SN_WIRE_NUMERIC, 1, none, c1, v1), SN_DS_ADDED);
    T_EQ(ingest(agg, "3", "b", NOW - 2, SN_WIRE_NUMERIC, 1, none, c2, v2), SN_DS_ADDED);
    T_EQ(ingest(agg, "3", "a", NOW - 1, SN_WIRE_NUMERIC, 1, none, c2, v2), SN_DS_ADDED);
    T_REQUIRE(sn_agg_view_open(agg, "3", NOW - 4, NOW, &v) == 0);
    T_REQUIRE(sn_agg_view_columns(v, NOW - 3, 3, NULL, 0, &cols) == 0);
    T_EQ(cols.ncols, 3);
    T_EQ(cols.nsel, 0);
    T_EQ(cols.off[1] - cols.off[0], 0); /* NOW-3: empty */
    T_EQ(cols.off[2] - cols.off[1], 2); /* NOW-2: 100 x4 and 2000000 x2 */
    T_EQ(cols.off[3] - cols.off[2], 1);
    T_EQ(cols.nr, 3);
    if (cols.nr == 3) {
        T_EQ(cols.r[0].lo, 100);
        T_EQ(cols.r[0].hi, 109);
        T_EQU(cols.r[0].count, 4);
        T_EQ(cols.r[1].lo, 2000000);
        T_EQ(cols.r[1].hi, 2099999);
        T_EQU(cols.r[1].count, 2);
        T_EQU(cols.r[2].count, 2);
    }
    sn_agg_columns_fini(&cols);
    T_REQUIRE(sn_agg_view_total(v, NOW - 4, 4, &total) == 0);
    T_EQU(sn_hist_count(total), 8);
    sn_hist_destroy(total);
    sn_agg_view_close(v);
    sn_agg_destroy(agg);
}

static void test_numeric_by_key_columns(void)
{
    struct sn_agg *agg = mk("t/4", SN_WIRE_NUMERIC_BY_KEY, 1, 60, false);
    const char *k[] = {"nginx", "sh"};
    uint64_t c[] = {3, 1}, val[] = {2000000, 100};
    const char *sel[] = {"sh", "absent"};
    struct sn_agg_view *v;
    struct sn_agg_columns cols;

    T_EQ(ingest(agg, "t/4", "a", NOW - 1, SN_WIRE_NUMERIC_BY_KEY, 2, k, c, val), SN_DS_ADDED);
    T_EQ(ingest(agg, "t/4", "b", NOW - 1, SN_WIRE_NUMERIC_BY_KEY, 1, k, c, val), SN_DS_ADDED);
    T_REQUIRE(sn_agg_view_open(agg, "t/4", NOW - 1, NOW, &v) == 0);
    T_REQUIRE(sn_agg_view_columns(v, NOW - 1, 1, sel, 2, &cols) == 0);
    /* layer 0 the total (100 x1, 2000000 x6), layer 1 "sh", layer 2 "absent" */
    T_EQ(cols.off[1] - cols.off[0], 2);
    T_EQ(cols.off[2] - cols.off[1], 1);
    T_EQ(cols.off[3] - cols.off[2], 0);
    T_EQU(cols.r[1].count, 6);
    T_EQ(cols.r[cols.off[1]].lo, 100);
    T_EQU(cols.r[cols.off[1]].count, 1);
    sn_agg_columns_fini(&cols);
    sn_agg_view_close(v);
    sn_agg_destroy(agg);
}

static void test_outcomes(void)
{
    struct sn_agg *agg = mk("p", SN_WIRE_SCALAR, 1, 60, true); /* point scope */
    uint64_t one = 1;
    struct sn_agg_counters c;
    struct sn_ds_fold fold;
    struct fb b;

    T_EQ(ingest(agg, "p", "a", NOW - 1, SN_WIRE_SCALAR, 0, NULL, &one, NULL), SN_DS_ADDED);
    T_EQ(ingest(agg, "p", "a", NOW - 1, SN_WIRE_SCALAR, 0, NULL, &one, NULL), SN_DS_DUPLICATE);
    T_EQ(ingest(agg, "p", "a", NOW - 61, SN_WIRE_SCALAR, 0, NULL, &one, NULL), SN_DS_LATE);
    T_EQ(ingest(agg, "p", "a", NOW + 11, SN_WIRE_SCALAR, 0, NULL, &one, NULL), SN_DS_FUTURE);
    const char *k[] = {"x"};
    T_EQ(ingest(agg, "p", "a", NOW, SN_WIRE_DISCRETE, 1, k, &one, NULL), SN_DS_MISMATCH);
    frame(&b, "p", "b", NOW, SN_WIRE_SCALAR, 0, NULL, &one, NULL);
    b.f.over_cap = 7;
    b.f.map_full = 2;
    T_EQ(sn_agg_ingest_try(agg, &b.f, NOW, &fold), SN_DS_ADDED);
    T_EQU(fold.keys, 0);
    sn_agg_counters(agg, &c);
    T_EQU(c.frames_in, 2);
    T_EQU(c.frames_duplicate, 1);
    T_EQU(c.frames_late, 1);
    T_EQU(c.frames_future, 1);
    T_EQU(c.frames_mismatch, 1);
    T_EQU(c.events_over_cap, 7);
    T_EQU(c.events_map_full, 2);
    sn_agg_destroy(agg);
}

static void test_status_and_expected(void)
{
    struct sn_agg *agg = mk("1", SN_WIRE_SCALAR, 1, 60, false);
    struct sn_agg_status st;
    uint32_t reported;
    uint64_t one = 1;
    char **why;
    size_t n;

    T_EQ(sn_agg_get_status(agg, "1", "here", &st), -ENOENT);
    T_EQ(sn_agg_set_status(agg, "2", "here", SN_AGG_RUNNING, 0, NULL), -ENOENT);
    /* nobody reported lately, nobody runs it: nothing to wait for */
    T_EQ(sn_agg_expected(agg, "1", NOW, NOW - 1, &reported), 0);
    T_EQ(sn_agg_set_status(agg, "1", "here", SN_AGG_RUNNING, (int64_t)NOW * 1000, NULL), 0);
    T_EQ(sn_agg_get_status(agg, "1", "here", &st), 0);
    T_EQ(st.run, SN_AGG_RUNNING);
    T_EQ(st.since_ms, (int64_t)NOW * 1000);
    T_EQ(sn_agg_sources_since(agg, "1", NOW), 1); /* running counts as a source */
    /* a slot ending after it started running: one source expected; before: none */
    T_EQ(sn_agg_expected(agg, "1", NOW, NOW, &reported), 1);
    T_EQ(reported, 0);
    T_EQ(sn_agg_expected(agg, "1", NOW, NOW - 1, &reported), 0);
    T_EQ(ingest(agg, "1", "here", NOW, SN_WIRE_SCALAR, 0, NULL, &one, NULL), SN_DS_ADDED);
    T_EQ(sn_agg_expected(agg, "1", NOW, NOW, &reported), 1);
    T_EQ(reported, 1);
    /* reports within [now - 15, now - 5] count as expected sources (CA's rule) */
    T_EQ(ingest(agg, "1", "far", NOW - 8, SN_WIRE_SCALAR, 0, NULL, &one, NULL), SN_DS_ADDED);
    T_EQ(ingest(agg, "1", "far2", NOW - 9, SN_WIRE_SCALAR, 0, NULL, &one, NULL), SN_DS_ADDED);
    T_EQ(sn_agg_expected(agg, "1", NOW, NOW, &reported), 2);
    /* why not: per source */
    T_EQ(sn_agg_set_status(agg, "1", "other", SN_AGG_REFUSED, 0, "not running on other: no probe"),
         0);
    /* a host without BPF says why too, but that is no warning of this instrumentation's */
    T_EQ(sn_agg_set_status(agg, "1", "nobpf", SN_AGG_UNSUPPORTED, 0, "no BPF here"), 0);
    T_EQ(sn_agg_get_status(agg, "1", "nobpf", &st), 0);
    T_EQ(st.run, SN_AGG_UNSUPPORTED);
    T_STR(st.why, "no BPF here");
    why = sn_agg_not_running(agg, "1", &n);
    T_REQUIRE(why != NULL);
    T_EQ(n, 1);
    if (n == 1)
        T_STR(why[0], "not running on other: no probe");
    sn_agg_strings_free(why, n);
    T_EQ(sn_agg_set_status(agg, "1", "other", SN_AGG_RUNNING, 0, NULL), 0);
    why = sn_agg_not_running(agg, "1", &n);
    T_EQ(n, 0);
    sn_agg_strings_free(why, n);
    T_OK(sn_agg_not_running(agg, "nope", &n) == NULL);
    sn_agg_destroy(agg);
}

struct heard {
    _Atomic int n;
    char last[32];
};

static void listener(void *arg, const char *key, int64_t t)
{
    struct heard *h = arg;
    (void)t;
    snprintf(h->last, sizeof(h->last), "%s", key);
    atomic_fetch_add(&h->n, 1);
}

static void test_listeners(void)
{
    struct sn_agg *agg = mk("9", SN_WIRE_SCALAR, 1, 60, false);
    struct heard h = {0};
    uint64_t one = 1;

    T_EQ(sn_agg_listen(agg, listener, &h), 0);
    T_EQ(ingest(agg, "9", "a", NOW, SN_WIRE_SCALAR, 0, NULL, &one, NULL), SN_DS_ADDED);
    T_EQ(ingest(agg, "9", "a", NOW - 100, SN_WIRE_SCALAR, 0, NULL, &one, NULL), SN_DS_LATE);
    T_EQ(ingest(agg, "8", "a", NOW, SN_WIRE_SCALAR, 0, NULL, &one, NULL), -ENOENT);
    T_EQ(atomic_load(&h.n), 1); /* only what was added */
    T_STR(h.last, "9");
    for (int i = 1; i < SN_AGG_MAX_LISTENERS; i++)
        T_EQ(sn_agg_listen(agg, listener, &h), 0);
    T_EQ(sn_agg_listen(agg, listener, &h), -ENOSPC);
    sn_agg_destroy(agg);
}

/* A view keeps its slots after the instrumentation is deleted, or the slots expire. */
static void test_view_outlives(void)
{
    struct sn_agg *agg = mk("5", SN_WIRE_DISCRETE, 1, 10, false);
    const char *k[] = {"a", "b"};
    uint64_t c[] = {1, 2};
    struct sn_agg_view *v, *w;
    struct sn_ds_slot sum;

    T_EQ(ingest(agg, "5", "h", NOW - 5, SN_WIRE_DISCRETE, 2, k, c, NULL), SN_DS_ADDED);
    T_REQUIRE(sn_agg_view_open(agg, "5", NOW - 10, NOW, &v) == 0);
    sn_agg_expire(agg, NOW + 20); /* everything older than NOW + 10 */
    T_REQUIRE(sn_agg_view_open(agg, "5", NOW - 10, NOW, &w) == 0);
    T_EQ(sn_agg_view_nsrc(w, NOW - 5), 0);
    sn_agg_view_close(w);
    T_EQ(sn_agg_remove(agg, "5"), 0);
    T_REQUIRE(sn_agg_view_sum(v, NOW - 5, 1, &sum) == 0);
    T_EQ(sum.n, 2);
    T_EQU(sum.count, 3);
    sn_agg_sum_fini(&sum);
    T_EQ(sn_agg_view_nsrc(v, NOW - 5), 1);
    sn_agg_view_close(v);
    sn_agg_destroy(agg);
}

static void test_retention_and_save(void)
{
    struct sn_agg *agg = mk("6", SN_WIRE_SCALAR, 1, 60, false);
    uint64_t one = 1;
    unsigned char *buf;
    size_t len;

    T_EQ(ingest(agg, "6", "h", NOW - 30, SN_WIRE_SCALAR, 0, NULL, &one, NULL), SN_DS_ADDED);
    T_EQ(ingest(agg, "6", "h", NOW - 1, SN_WIRE_SCALAR, 0, NULL, &one, NULL), SN_DS_ADDED);
    T_EQ(sn_agg_set_retention(agg, "6", 10, NOW), 0);
    T_EQ(sn_agg_set_retention(agg, "nope", 10, NOW), -ENOENT);
    T_EQ(ingest(agg, "6", "h", NOW - 20, SN_WIRE_SCALAR, 0, NULL, &one, NULL), SN_DS_LATE);
    T_REQUIRE(sn_agg_save(agg, "6", &buf, &len) == 0);
    struct sn_ds_opts o = {.arity = SN_WIRE_SCALAR, .granularity = 1, .retention = 60};
    struct sn_dataset *ds = sn_ds_create(&o);
    T_EQ(sn_ds_load(ds, buf, len, NOW), 0);
    T_OK(sn_ds_slot_at(ds, NOW - 1) != NULL);
    T_OK(sn_ds_slot_at(ds, NOW - 30) == NULL); /* gone with the shorter retention */
    sn_ds_destroy(ds);
    free(buf);
    sn_agg_destroy(agg);
}

/* ------------------------------------------------------------------------------------------
 * Locking
 */

/* A discrete frame of n distinct keys "k<i>" for id at t. */
struct big {
    struct sn_wire_frame f;
    struct sn_wire_entry *e;
    char *names;
};

static bool big_make(struct big *b, const char *id, int64_t t, size_t n, unsigned seed)
{
    memset(b, 0, sizeof(*b));
    b->e = calloc(n, sizeof(*b->e));
    b->names = malloc(n * 16);
    if (!b->e || !b->names)
        return false;
    for (size_t i = 0; i < n; i++) {
        char *k = b->names + i * 16;
        snprintf(k, 16, "k%u", (unsigned)((i * 2654435761u + seed) % 100000000u));
        b->e[i] = (struct sn_wire_entry){k, 1 + i % 7, NULL};
        b->f.total += b->e[i].count;
    }
    b->f = (struct sn_wire_frame){.id = (char *)id,
                                  .host = "big",
                                  .t = t,
                                  .arity = SN_WIRE_DISCRETE,
                                  .total = b->f.total,
                                  .n = n,
                                  .entries = b->e};
    return true;
}

static void big_free(struct big *b)
{
    free(b->e);
    free(b->names);
}

struct merger {
    struct sn_agg *agg;
    struct big *b;
    size_t nframes;
    _Atomic int started, done;
    int rc;
    int64_t ns; /* how long the merges took */
};

static void *merge_thread(void *arg)
{
    struct merger *m = arg;
    int64_t t0 = mono_ns();
    atomic_store(&m->started, 1);
    for (size_t i = 0; i < m->nframes; i++) {
        m->b[i].f.t = NOW - (int64_t)(i % 5);
        int rc = sn_agg_ingest(m->agg, &m->b[i].f, NOW, NULL);
        if (rc < 0 && rc != -ENOENT && m->rc == 0)
            m->rc = rc;
    }
    m->ns = mono_ns() - t0;
    atomic_store(&m->done, 1);
    return NULL;
}

/* Queries on instrumentation "B" are answered, each quickly, while "A" merges big frames. */
static void test_reader_not_blocked(void)
{
    struct sn_agg *agg = mk("A", SN_WIRE_DISCRETE, 1, 60, false);
    struct sn_ds_opts o = {.arity = SN_WIRE_DISCRETE, .granularity = 1, .retention = 60};
    const char *k[] = {"x"};
    uint64_t one = 1;
    size_t nkeys = 200000;
    bool shown = false;

    T_EQ(add_to(agg, "B", 0, NULL, o), 0);
    T_EQ(ingest(agg, "B", "h", NOW - 1, SN_WIRE_DISCRETE, 1, k, &one, NULL), SN_DS_ADDED);
    /* at most three tries, each with twice the keys: the merge must outlast a few queries */
    for (int attempt = 0; attempt < 3 && !shown; attempt++, nkeys *= 2) {
        struct big b[2];
        struct merger m = {.agg = agg, .b = b, .nframes = 2};
        pthread_t th;
        size_t during = 0;
        int64_t worst = 0;

        T_REQUIRE(big_make(&b[0], "A", NOW, nkeys, 1) && big_make(&b[1], "A", NOW, nkeys, 7));
        T_REQUIRE(pthread_create(&th, NULL, merge_thread, &m) == 0);
        while (!atomic_load(&m.started))
            ;
        for (int i = 0; i < 1000000 && !atomic_load(&m.done); i++) {
            struct sn_agg_view *v;
            struct sn_ds_slot sum;
            int64_t t0 = mono_ns();
            T_REQUIRE(sn_agg_view_open(agg, "B", NOW - 10, NOW, &v) == 0);
            T_EQ(sn_agg_view_sum(v, NOW - 1, 1, &sum), 0);
            T_EQ(sum.n, 1);
            sn_agg_sum_fini(&sum);
            sn_agg_view_close(v);
            int64_t dt = mono_ns() - t0;
            worst = dt > worst ? dt : worst;
            if (!atomic_load(&m.done)) /* answered while A was still merging */
                during++;
        }
        pthread_join(th, NULL);
        T_EQ(m.rc, 0);
        big_free(&b[0]);
        big_free(&b[1]);
        if (during >= 10) {
            shown = true;
            /* ordering: queries on B were answered while A merged, and none waited for a
             * whole merge (generous: a query is microseconds, a merge far longer) */
            t_note("%zu queries on B answered during A's merges of %lld ms (worst %lld us)", during,
                   (long long)(m.ns / 1000000), (long long)(worst / 1000));
            T_OK(worst < m.ns);
        }
    }
    T_OK(shown);
    sn_agg_destroy(agg);
}

/* Frames merged while their instrumentation is deleted: each is added or refused as unknown,
 * nothing leaks (ASan), and the data goes with the last reference. */
static void test_delete_while_merging(void)
{
    struct sn_agg *agg = mk("D", SN_WIRE_DISCRETE, 1, 60, false);
    struct big b[8];
    struct merger m = {.agg = agg, .b = b, .nframes = 8};
    pthread_t th;
    uint64_t one = 1;
    const char *k[] = {"x"};

    for (int i = 0; i < 8; i++)
        T_REQUIRE(big_make(&b[i], "D", NOW, 20000, (unsigned)i));
    T_REQUIRE(pthread_create(&th, NULL, merge_thread, &m) == 0);
    while (!atomic_load(&m.started))
        ;
    T_EQ(sn_agg_remove(agg, "D"), 0);
    pthread_join(th, NULL);
    T_EQ(m.rc, 0);
    T_EQ(ingest(agg, "D", "h", NOW, SN_WIRE_DISCRETE, 1, k, &one, NULL), -ENOENT);
    for (int i = 0; i < 8; i++)
        big_free(&b[i]);
    sn_agg_destroy(agg);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("registry", test_registry);
    t_run("scalar from several sources", test_scalar_sources);
    t_run("discrete: keys, biggest, sums", test_discrete_keys);
    t_run("numeric: columns and totals", test_numeric_columns);
    t_run("numeric by key: selected columns", test_numeric_by_key_columns);
    t_run("outcomes counted", test_outcomes);
    t_run("per-source status and long-poll expectations", test_status_and_expected);
    t_run("listeners", test_listeners);
    t_run("a view outlives delete and expiry", test_view_outlives);
    t_run("retention and save", test_retention_and_save);
    t_run("a reader of B not blocked by A's merge", test_reader_not_blocked);
    t_run("delete while merging", test_delete_while_merging);
    return t_done();
}
