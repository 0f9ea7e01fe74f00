/*
 * The store's small parts, without LMDB: the tiers and their `--tiers` form (store/tiers.h),
 * interned names (store/intern.h), and rolling up (store/rollup.h): exact merges, a
 * point-scope metric's values as histograms, the union of sources, and the rollup key cap.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg/dataset.h"
#include "core/hist.h"
#include "store/intern.h"
#include "store/rollup.h"
#include "store/tiers.h"
#include "t.h"
#include "wire/frame.h"

#define DAY  86400
#define YEAR ((int64_t)365 * DAY)

/* ---- Tiers ------------------------------------------------------------------------------- */

static void test_tiers(void)
{
    struct sn_tiers t;
    char buf[128], why[256];
    T_EQ(sn_tier_period(SN_TIER_RAW), 0);
    T_EQ(sn_tier_period(SN_TIER_1M), 60);
    T_EQ(sn_tier_period(SN_TIER_1H), 3600);
    T_EQ(sn_tier_period(SN_TIER_1D), DAY);
    T_EQ(sn_tier_period(SN_NTIERS), 0);
    T_STR(sn_tier_name(SN_TIER_RAW), "raw");
    T_STR(sn_tier_name(SN_TIER_1M), "1m");
    T_STR(sn_tier_name(SN_TIER_1H), "1h");
    T_STR(sn_tier_name(SN_TIER_1D), "1d");
    sn_tiers_default(&t);
    T_EQ(t.keep[SN_TIER_RAW], 2 * DAY);
    T_EQ(t.keep[SN_TIER_1M], 90 * DAY);
    T_OK(t.keep[SN_TIER_1H] >= 5 * YEAR && t.keep[SN_TIER_1H] < 5 * YEAR + 2 * DAY);
    T_OK(t.keep[SN_TIER_1D] >= 10 * YEAR && t.keep[SN_TIER_1D] < 10 * YEAR + 3 * DAY);
    sn_tiers_fmt(&t, buf, sizeof(buf));
    T_STR(buf, "raw:2d,1m:90d,1h:5y,1d:10y");

    /* the canonical form parses back to the same tiers */
    struct sn_tiers p;
    T_EQ(sn_tiers_parse(buf, &p, why, sizeof(why)), 0);
    T_MEM(p.keep, t.keep, sizeof(t.keep));
    /* a subset, any order: the rest keep their defaults; "0" turns a tier off */
    T_EQ(sn_tiers_parse("1h:400d,raw:3d", &p, why, sizeof(why)), 0);
    T_EQ(p.keep[SN_TIER_RAW], 3 * DAY);
    T_EQ(p.keep[SN_TIER_1M], 90 * DAY);
    T_EQ(p.keep[SN_TIER_1H], 400 * DAY);
    T_EQ(p.keep[SN_TIER_1D], t.keep[SN_TIER_1D]);
    T_EQ(sn_tiers_parse("1m:0", &p, why, sizeof(why)), 0);
    T_EQ(p.keep[SN_TIER_1M], 0);
    sn_tiers_fmt(&p, buf, sizeof(buf));
    T_STR(buf, "raw:2d,1m:0,1h:5y,1d:10y");
    T_EQ(sn_tiers_parse("raw:90s,1m:1h30m,1h:1d,1d:1d", &p, why, sizeof(why)), 0);
    T_EQ(p.keep[SN_TIER_RAW], 90);
    T_EQ(p.keep[SN_TIER_1M], 5400);

    /* refused, with why, and *t unchanged */
    static const char *const bad[] = {
        "raw:0",       /* the raw tier cannot be off */
        "2m:1d",       /* no such tier */
        "raw",         /* no duration */
        "1m:soon",     /* not a duration */
        "1h:30m",      /* less than its period */
        "1d:1d,1h:2d", /* a coarser tier keeping less than a finer one */
        "raw:100d",    /* keeps more than the 1 min tier's default 90 d */
    };
    struct sn_tiers before = p;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        t_note("\"%s\"", bad[i]);
        T_EQ(sn_tiers_parse(bad[i], &p, why, sizeof(why)), -EINVAL);
        T_OK(why[0] != '\0');
        T_MEM(p.keep, before.keep, sizeof(p.keep));
    }
    T_EQ(sn_tiers_parse(NULL, &p, why, sizeof(why)), -EINVAL);
}

/* ---- Interned names ---------------------------------------------------------------------- */

static void test_intern(void)
{
    struct sn_intern t = {0};
    char name[32];
    T_EQ(sn_intern_find(&t, "a", 1), -ENOENT);
    T_OK(sn_intern_name(&t, 0) == NULL);
    T_EQ(sn_intern_add(&t, "read", 4), 0);
    T_EQ(sn_intern_add(&t, "write", 5), 1);
    T_EQ(sn_intern_add(&t, "read", 4), 0);
    T_EQ(sn_intern_add(&t, "readv", 4), 0); /* the length counts, not the NUL */
    T_EQ(sn_intern_find(&t, "write", 5), 1);
    T_EQ(sn_intern_find(&t, "writ", 4), -ENOENT);
    T_STR(sn_intern_name(&t, 1), "write");
    T_OK(sn_intern_name(&t, 2) == NULL);
    /* many: ids dense and stable across the hash's growth */
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "key-%d", i);
        T_EQ(sn_intern_add(&t, name, strlen(name)), 2 + i);
    }
    for (int i = 0; i < 5000; i += 7) {
        snprintf(name, sizeof(name), "key-%d", i);
        T_EQ(sn_intern_find(&t, name, strlen(name)), 2 + i);
        T_STR(sn_intern_name(&t, (uint32_t)(2 + i)), name);
    }
    T_EQU(t.n, 5002);
    sn_intern_fini(&t);
    T_EQU(t.n, 0);

    /* loading from disk: ids in any order, gaps NULL; a taken id or name refused */
    T_EQ(sn_intern_set(&t, 5, "five", 4), 0);
    T_EQ(sn_intern_set(&t, 2, "two", 3), 0);
    T_EQU(t.n, 6);
    T_OK(sn_intern_name(&t, 0) == NULL);
    T_OK(sn_intern_name(&t, 3) == NULL);
    T_STR(sn_intern_name(&t, 5), "five");
    T_EQ(sn_intern_set(&t, 5, "other", 5), -EEXIST);
    T_EQ(sn_intern_set(&t, 1, "two", 3), -EEXIST);
    T_EQ(sn_intern_set(&t, 0, "zero", 4), 0); /* a gap filled */
    T_EQ(sn_intern_find(&t, "zero", 4), 0);
    T_EQ(sn_intern_add(&t, "six", 3), 6); /* new ids after the highest */
    T_EQ(sn_intern_find(&t, "two", 3), 2);
    sn_intern_fini(&t);
}

/* ---- Rolling up ---------------------------------------------------------------------------- */

static struct sn_hist *hist_of(const uint64_t *v, size_t n)
{
    struct sn_hist *h = sn_hist_create();
    for (size_t i = 0; i < n; i++)
        sn_hist_insert_u64(h, v[i], 1);
    return h;
}

static void set_src(struct sn_ds_slot *s, const uint32_t *src, uint32_t n)
{
    s->src = malloc(n * sizeof(*s->src));
    memcpy(s->src, src, n * sizeof(*s->src));
    s->nsrc = n;
}

/* A discrete slot {k[i]: c[i]} (keys sorted), or numeric by key with one sample c[i] * 10 per
 * event. */
static void keyed(struct sn_ds_slot *s, uint8_t arity, const char *const *k, const uint64_t *c,
                  size_t n)
{
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < n; i++) {
        struct sn_hist *h = NULL;
        if (arity == SN_WIRE_NUMERIC_BY_KEY) {
            h = sn_hist_create();
            sn_hist_insert_u64(h, c[i] * 10, c[i]);
        }
        struct sn_ds_entry e = {(char *)k[i], c[i], h};
        struct sn_ds_slot one = {.count = c[i], .n = 1, .e = &e, .total = h};
        T_EQ(sn_ds_slot_add(s, &one), 0);
        sn_hist_destroy(h);
    }
}

static void test_rollup_add(void)
{
    /* counts add; histograms merge exactly; sources are the union */
    struct sn_ds_slot dst = {0}, a = {0}, b = {0};
    static const char *const ka[] = {"read", "write"}, *const kb[] = {"open", "read"};
    static const uint64_t ca[] = {3, 4}, cb[] = {5, 6};
    static const uint32_t sa[] = {0, 3}, sb[] = {1, 3, 7};
    keyed(&a, SN_WIRE_NUMERIC_BY_KEY, ka, ca, 2);
    keyed(&b, SN_WIRE_NUMERIC_BY_KEY, kb, cb, 2);
    a.over_cap = 2;
    b.map_full = 1;
    set_src(&a, sa, 2);
    set_src(&b, sb, 3);
    T_EQ(sn_rollup_add(&dst, &a, SN_WIRE_NUMERIC_BY_KEY, false), 0);
    T_EQ(sn_rollup_add(&dst, &b, SN_WIRE_NUMERIC_BY_KEY, false), 0);
    T_EQU(dst.count, 18);
    T_EQU(dst.over_cap, 2);
    T_EQU(dst.map_full, 1);
    T_EQU(dst.nsrc, 4);
    static const uint32_t su[] = {0, 1, 3, 7};
    if (dst.nsrc == 4)
        T_MEM(dst.src, su, sizeof(su));
    T_EQU(dst.n, 3);
    if (dst.n == 3) {
        T_STR(dst.e[0].key, "open");
        T_STR(dst.e[1].key, "read");
        T_STR(dst.e[2].key, "write");
        T_EQU(dst.e[1].count, 3 + 6);
        T_EQU(sn_hist_count(dst.e[1].hist), 9);
        T_EQU(sn_hist_bucket_count(dst.e[1].hist, sn_bucket_from_double(30)), 3);
        T_EQU(sn_hist_bucket_count(dst.e[1].hist, sn_bucket_from_double(60)), 6);
    }
    struct sn_hist *tot = sn_hist_clone(a.total);
    sn_hist_merge(tot, b.total);
    T_OK(sn_hist_equal(dst.total, tot));
    sn_hist_destroy(tot);
    /* numeric slots of a "point" metric add as histograms still (no point metric is numeric) */
    struct sn_ds_slot n1 = {0}, nsum = {0};
    uint64_t v[] = {100, 200, 200};
    n1.total = hist_of(v, 3);
    n1.count = 3;
    T_EQ(sn_rollup_add(&nsum, &n1, SN_WIRE_NUMERIC, true), 0);
    T_EQ(sn_rollup_add(&nsum, &n1, SN_WIRE_NUMERIC, true), 0);
    T_EQU(nsum.count, 6);
    T_EQU(sn_hist_count(nsum.total), 6);
    sn_ds_slot_fini(&n1);
    sn_ds_slot_fini(&nsum);
    sn_ds_slot_fini(&a);
    sn_ds_slot_fini(&b);
    sn_ds_slot_fini(&dst);
}

static void test_rollup_point(void)
{
    /* a scalar gauge at 100, 300, 300, 900 over four slots: count the sum, the total the
     * histogram of the four values */
    struct sn_ds_slot sum = {0};
    static const uint64_t vals[] = {100, 300, 300, 900};
    for (int i = 0; i < 4; i++) {
        struct sn_ds_slot s = {.count = vals[i]};
        uint32_t src = (uint32_t)i % 2;
        set_src(&s, &src, 1);
        T_EQ(sn_rollup_add(&sum, &s, SN_WIRE_SCALAR, true), 0);
        sn_ds_slot_fini(&s);
    }
    T_EQU(sum.count, 1600);
    T_EQU(sum.nsrc, 2);
    struct sn_hist *want = hist_of(vals, 4);
    T_OK(sn_hist_equal(sum.total, want));
    sn_hist_destroy(want);
    /* rolled up again (values records add as histograms) */
    struct sn_ds_slot hour = {0};
    T_EQ(sn_rollup_add(&hour, &sum, SN_WIRE_SCALAR, false), 0);
    T_EQ(sn_rollup_add(&hour, &sum, SN_WIRE_SCALAR, false), 0);
    T_EQU(hour.count, 3200);
    T_EQU(sn_hist_count(hour.total), 8);
    sn_ds_slot_fini(&hour);
    sn_ds_slot_fini(&sum);

    /* discrete per process: each key's histogram holds one sample per slot it appeared in */
    static const char *const k1[] = {"bash", "init"}, *const k2[] = {"init"};
    static const uint64_t c1[] = {10, 50}, c2[] = {70};
    struct sn_ds_slot s1, s2, d = {0};
    keyed(&s1, SN_WIRE_DISCRETE, k1, c1, 2);
    keyed(&s2, SN_WIRE_DISCRETE, k2, c2, 1);
    T_EQ(sn_rollup_add(&d, &s1, SN_WIRE_DISCRETE, true), 0);
    T_EQ(sn_rollup_add(&d, &s2, SN_WIRE_DISCRETE, true), 0);
    T_EQU(d.count, 130);
    T_EQU(d.n, 2);
    if (d.n == 2) {
        T_STR(d.e[1].key, "init");
        T_EQU(d.e[1].count, 120);
        T_EQU(sn_hist_count(d.e[1].hist), 2);
        T_EQU(sn_hist_bucket_count(d.e[1].hist, sn_bucket_from_double(50)), 1);
        T_EQU(sn_hist_bucket_count(d.e[1].hist, sn_bucket_from_double(70)), 1);
        T_EQU(sn_hist_count(d.e[0].hist), 1);
    }
    sn_ds_slot_fini(&s1);
    sn_ds_slot_fini(&s2);
    sn_ds_slot_fini(&d);
}

static void test_rollup_cap(void)
{
    /* counts a:5 b:9 c:5 d:1 e:9 other:2; cap 2 keeps b and e; cap 3 keeps b, e and a (a tie
     * with c: the smaller key) */
    static const char *const k[] = {"a", "b", "c", "d", "e", "other"};
    static const uint64_t c[] = {5, 9, 5, 1, 9, 2};
    for (int arity = SN_WIRE_DISCRETE; arity <= SN_WIRE_NUMERIC_BY_KEY; arity += 2) {
        for (uint32_t cap = 0; cap <= 6; cap++) {
            struct sn_ds_slot s;
            keyed(&s, (uint8_t)arity, k, c, 6);
            struct sn_hist *total = s.total ? sn_hist_clone(s.total) : NULL;
            int64_t folded = sn_rollup_cap(&s, cap);
            uint64_t sum = 0;
            t_note("arity %d cap %u", arity, cap);
            int64_t want = cap == 0 || cap >= 5 ? 0 : 5 - (int64_t)cap;
            T_EQ(folded, want);
            T_EQU(s.n, (size_t)(6 - want));
            T_EQU(s.count, 31);
            for (size_t i = 0; i < s.n; i++)
                sum += s.e[i].count;
            T_EQU(sum, 31);
            T_STR(s.n ? s.e[s.n - 1].key : "", "other");
            if (cap == 3 && s.n == 4) {
                T_STR(s.e[0].key, "a");
                T_STR(s.e[1].key, "b");
                T_STR(s.e[2].key, "e");
                T_EQU(s.e[3].count, 2 + 5 + 1); /* other, c, d */
                if (arity == SN_WIRE_NUMERIC_BY_KEY) {
                    T_EQU(sn_hist_count(s.e[3].hist), 8);
                    T_EQU(sn_hist_bucket_count(s.e[3].hist, sn_bucket_from_double(50)), 5);
                }
            }
            if (total)
                T_OK(sn_hist_equal(s.total, total)); /* the total never changes */
            sn_hist_destroy(total);
            sn_ds_slot_fini(&s);
        }
    }
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("tiers", test_tiers);
    t_run("intern", test_intern);
    t_run("rollup add", test_rollup_add);
    t_run("rollup point values", test_rollup_point);
    t_run("rollup key cap", test_rollup_cap);
    return t_done();
}
