/*
 * Value intervals (src/agg/interval.h): CA's caAggrInterval as its tst.interval and
 * tst.dataset_granularity cases check it (../shared/ref/joyent-ca.md §1.5, §7): the defaults
 * per (duration, granularity), every combination of start_time, duration and end_time, the
 * four error messages, and the alignment to the granularity with the requested values kept.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "agg/interval.h"
#include "t.h"

#define NOW 1700000000 /* a multiple of 10 */

static const char *const E_EXCEED = "\"duration\" cannot exceed \"end_time\"";
static const char *const E_LATER = "\"end_time\" must be later than \"start_time\"";
static const char *const E_EQUAL = "\"start_time\" + \"duration\" must equal \"end_time\"";
static const char *const E_POSITIVE = "\"duration\" must be positive";

/* Which parameters a case gives; A for absent. */
#define A INT64_MIN

static struct sn_interval_req req(int64_t start, int64_t duration, int64_t end)
{
    struct sn_interval_req r = {0};
    if (start != A) {
        r.has_start = true;
        r.start = start;
    }
    if (duration != A) {
        r.has_duration = true;
        r.duration = duration;
    }
    if (end != A) {
        r.has_end = true;
        r.end = end;
    }
    return r;
}

/* Resolves and checks the outcome: start/duration after alignment, as resolved before it. */
static void ok(int64_t start, int64_t duration, int64_t end, int64_t dflt, int64_t now, int64_t g,
               int64_t want_start, int64_t want_duration, int64_t want_rstart,
               int64_t want_rduration)
{
    struct sn_interval_req r = req(start, duration, end);
    struct sn_interval out;
    const char *why = NULL;

    memset(&out, 0x5a, sizeof(out));
    t_note("start %lld duration %lld end %lld dflt %lld g %lld", (long long)start,
           (long long)duration, (long long)end, (long long)dflt, (long long)g);
    T_EQ(sn_interval_resolve(&r, dflt, now, g, &out, &why), 0);
    T_OK(why == NULL);
    T_EQ(out.start, want_start);
    T_EQ(out.duration, want_duration);
    T_EQ(out.req_start, want_rstart);
    T_EQ(out.req_duration, want_rduration);
}

static void err(int64_t start, int64_t duration, int64_t end, int64_t dflt, int64_t g,
                const char *want)
{
    struct sn_interval_req r = req(start, duration, end);
    struct sn_interval out;
    const char *why = NULL;

    t_note("start %lld duration %lld end %lld dflt %lld g %lld", (long long)start,
           (long long)duration, (long long)end, (long long)dflt, (long long)g);
    T_EQ(sn_interval_resolve(&r, dflt, NOW, g, &out, &why), -EINVAL);
    T_OK(why != NULL);
    if (why)
        T_STR(why, want);
}

/* tst.interval's defaults: nothing given, start = now - duration - G. */
static void test_defaults(void)
{
    ok(A, A, A, 1, NOW, 1, NOW - 2, 1, NOW - 2, 1);       /* (dur 1, G 1): now - 2 */
    ok(A, A, A, 60, NOW, 10, NOW - 70, 60, NOW - 70, 60); /* (60, 10): now - 70 */
    ok(A, A, A, 60, NOW, 1, NOW - 61, 60, NOW - 61, 60);  /* (60, 1): now - 61 */
    ok(A, A, A, 5, NOW, 5, NOW - 10, 5, NOW - 10, 5);     /* (5, 5): now - 10 */
    /* now not a multiple of G: the start is aligned down, the requested one kept */
    ok(A, A, A, 60, NOW + 7, 10, NOW - 70, 60, NOW - 63, 60);
    /* a given duration replaces the default in the same formula */
    ok(A, 30, A, 60, NOW, 1, NOW - 31, 30, NOW - 31, 30);
    ok(A, 30, A, 60, NOW, 10, NOW - 40, 30, NOW - 40, 30);
}

/* end_time only: start = end - the default duration. */
static void test_end_only(void)
{
    ok(A, A, NOW, 1, NOW, 1, NOW - 1, 1, NOW - 1, 1);
    ok(A, A, NOW, 60, NOW, 1, NOW - 60, 60, NOW - 60, 60);
    ok(A, A, NOW + 5, 60, NOW, 10, NOW - 60, 60, NOW - 55, 60);
    ok(A, A, 60, 60, NOW, 1, 0, 60, 0, 60); /* duration == end is fine: start 0 */
}

/* Every combination of the three parameters (none is test_defaults, end only above). */
static void test_combinations(void)
{
    int64_t s = NOW - 100;

    /* start only: the default duration from it */
    ok(s, A, A, 60, NOW, 1, s, 60, s, 60);
    ok(s, A, A, 1, NOW, 1, s, 1, s, 1);
    /* duration only */
    ok(A, 7, A, 60, NOW, 1, NOW - 8, 7, NOW - 8, 7);
    /* start + duration */
    ok(s, 7, A, 60, NOW, 1, s, 7, s, 7);
    /* start + end: duration = end - start */
    ok(s, A, s + 25, 60, NOW, 1, s, 25, s, 25);
    ok(s, A, s + 1, 60, NOW, 1, s, 1, s, 1);
    /* duration + end: start = end - duration */
    ok(A, 25, s, 60, NOW, 1, s - 25, 25, s - 25, 25);
    ok(A, 25, 25, 60, NOW, 1, 0, 25, 0, 25);
    /* all three, consistent */
    ok(s, 25, s + 25, 60, NOW, 1, s, 25, s, 25);
    /* all three with G: aligned like the others */
    ok(s + 3, 25, s + 28, 60, NOW, 10, s, 30, s + 3, 25);
}

/* The four messages, each from every way to reach it. */
static void test_errors(void)
{
    int64_t s = NOW - 100;

    err(A, 101, 100, 60, 1, E_EXCEED);  /* duration + end */
    err(A, A, 59, 60, 1, E_EXCEED);     /* end only, with the default */
    err(s, A, s, 60, 1, E_LATER);       /* end == start */
    err(s, A, s - 1, 60, 1, E_LATER);   /* end < start */
    err(s, 25, s + 24, 60, 1, E_EQUAL); /* inconsistent */
    err(s, 25, s + 26, 60, 1, E_EQUAL);
    err(A, 0, A, 60, 1, E_POSITIVE);
    err(A, -5, A, 60, 1, E_POSITIVE);
    err(s, 0, A, 60, 1, E_POSITIVE);
    err(s, -1, A, 60, 1, E_POSITIVE);
    err(s, 0, s, 60, 1, E_POSITIVE); /* consistent, but empty */
    err(A, A, A, 0, 1, E_POSITIVE);  /* a zero default */
    err(A, 0, 10, 60, 1, E_POSITIVE);
}

/* tst.dataset_granularity: (start, duration) normalized with G = 10, and other G. */
static void test_granularity(void)
{
    ok(12339, 10, A, 60, NOW, 10, 12330, 10, 12339, 10);
    ok(12345, 1, A, 60, NOW, 10, 12340, 10, 12345, 1);
    ok(12345, 12, A, 60, NOW, 10, 12340, 20, 12345, 12);
    ok(12340, 10, A, 60, NOW, 10, 12340, 10, 12340, 10);
    ok(12340, 20, A, 60, NOW, 10, 12340, 20, 12340, 20);
    ok(12345, 12, A, 60, NOW, 1, 12345, 12, 12345, 12); /* G 1 changes nothing */
    ok(12345, 61, A, 60, NOW, 60, 12300, 120, 12345, 61);
    ok(0, 1, A, 60, NOW, 5, 0, 5, 0, 1);
    /* start + end with G: the duration derived, then rounded up */
    ok(12345, A, 12357, 60, NOW, 10, 12340, 20, 12345, 12);
    /* a negative start (default near the epoch) still aligns down */
    ok(A, A, A, 10, 5, 10, -20, 10, -15, 10);
}

/* requested_* are the values before alignment, for every source of the interval. */
static void test_requested_preserved(void)
{
    ok(A, 13, 12358, 60, NOW, 5, 12345, 15, 12345, 13);
    ok(A, A, 12358, 13, NOW, 5, 12345, 15, 12345, 13);
    ok(12341, A, 12349, 60, NOW, 5, 12340, 10, 12341, 8);
    ok(12341, 8, 12349, 60, NOW, 5, 12340, 10, 12341, 8);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("defaults", test_defaults);
    t_run("end_only", test_end_only);
    t_run("combinations", test_combinations);
    t_run("errors", test_errors);
    t_run("granularity", test_granularity);
    t_run("requested_preserved", test_requested_preserved);
    return t_done();
}
