/*
 * core/timespec.c: durations and points in time as people type them (`--start -7d`,
 * `--duration 1h30m`, `--tiers raw:2d,...`), every accepted form and the rejected ones, and
 * sn_duration_fmt() as the inverse of sn_duration_parse() for what it prints.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#include "core/timespec.h"
#include "t.h"

#define NOW ((int64_t)1796616000) /* 2026-12-07T04:00:00Z */

/* The duration s reads as, or -1 when it is refused (-EINVAL, *secs untouched). */
static int64_t dur(const char *s)
{
    int64_t d = -7;
    int rc = sn_duration_parse(s, &d);
    if (rc < 0) {
        T_EQ(rc, -EINVAL);
        T_EQ(d, -7);
        return -1;
    }
    return d;
}

static int64_t when(const char *s)
{
    int64_t t = -7;
    int rc = sn_time_parse(s, NOW, &t);
    if (rc < 0) {
        T_EQ(rc, -EINVAL);
        T_EQ(t, -7);
        return -1;
    }
    return t;
}

static void test_duration(void)
{
    T_EQ(dur("90"), 90); /* plain seconds */
    T_EQ(dur("1"), 1);
    T_EQ(dur("90s"), 90);
    T_EQ(dur("5m"), 300);
    T_EQ(dur("1h"), 3600);
    T_EQ(dur("2d"), 172800);
    T_EQ(dur("1w"), 604800);
    T_EQ(dur("5y"), 5 * (int64_t)SN_YEAR_SECONDS);
    T_EQ(dur("1h30m"), 5400);
    T_EQ(dur("1d1h1m1s"), 90061);
    T_EQ(dur("0h5m"), 300);
    T_EQ(dur("100y"), 100 * (int64_t)SN_YEAR_SECONDS); /* the longest */
    T_EQ(dur("36500d"), 100 * (int64_t)SN_YEAR_SECONDS);

    T_EQ(dur(""), -1);
    T_EQ(dur(NULL), -1);
    T_EQ(dur("0"), -1); /* > 0 */
    T_EQ(dur("0s"), -1);
    T_EQ(dur("1h30"), -1); /* a bare number only alone */
    T_EQ(dur("h"), -1);
    T_EQ(dur("1x"), -1);
    T_EQ(dur("1H"), -1);
    T_EQ(dur("-1h"), -1);
    T_EQ(dur("1.5h"), -1);
    T_EQ(dur(" 1h"), -1);
    T_EQ(dur("1h "), -1);
    T_EQ(dur("101y"), -1);
    T_EQ(dur("36501d"), -1);
    T_EQ(dur("99y2y"), -1);
    T_EQ(dur("99999999999999999999999s"), -1); /* no overflow */
}

static void test_time(void)
{
    T_EQ(when("now"), NOW);
    T_EQ(when("1796616000"), NOW); /* Unix seconds */
    T_EQ(when("0"), 0);
    T_EQ(when("-7d"), NOW - 7 * 86400);
    T_EQ(when("-1h30m"), NOW - 5400);
    T_EQ(when("-90"), NOW - 90);
    T_EQ(when("2026-12-01"), 1796083200);
    T_EQ(when("2026-12-01T03:00"), 1796083200 + 3 * 3600);
    T_EQ(when("2026-12-01T03:00Z"), 1796083200 + 3 * 3600);
    T_EQ(when("2026-12-01T03:00:07"), 1796083200 + 3 * 3600 + 7);
    T_EQ(when("2026-12-01T03:00:07Z"), 1796083200 + 3 * 3600 + 7);
    T_EQ(when("2026-12-01 03:00"), 1796083200 + 3 * 3600);
    T_EQ(when("1970-01-01"), 0);
    T_EQ(when("2028-02-29"), 1835395200); /* a leap day */

    T_EQ(when(""), -1);
    T_EQ(when(NULL), -1);
    T_EQ(when("yesterday"), -1);
    T_EQ(when("-"), -1);
    T_EQ(when("-0s"), -1);
    T_EQ(when("-100y"), -1); /* before 1970 */
    T_EQ(when("1e9"), -1);
    T_EQ(when("1234567890123"), -1); /* more than 12 digits */
    T_EQ(when("2026-12-1"), -1);
    T_EQ(when("2026-1-01"), -1);
    T_EQ(when("26-12-01"), -1);
    T_EQ(when("1969-12-31"), -1);
    T_EQ(when("2026-13-01"), -1);
    T_EQ(when("2026-12-32"), -1);
    T_EQ(when("2026-02-29"), -1); /* not a leap year: not March 1st */
    T_EQ(when("2026-04-31"), -1);
    T_EQ(when("2026-12-01T24:00"), -1);
    T_EQ(when("2026-12-01T03:60"), -1);
    T_EQ(when("2026-12-01T3:00"), -1);
    T_EQ(when("2026-12-01T-1:00"), -1); /* sscanf would take a sign */
    T_EQ(when("2026-12-01T03:-5"), -1);
    T_EQ(when("2026-12-01T 3:00"), -1); /* and a space */
    T_EQ(when("2026-12-+1"), -1);
    T_EQ(when("2026-12-01T03"), -1);
    T_EQ(when("2026-12-01T03:00:5"), -1);
    T_EQ(when("2026-12-01T03:00:-5"), -1);
    T_EQ(when("2026-12-01T03:00+01:00"), -1); /* UTC only */
    T_EQ(when("2026-12-01X03:00"), -1);
    T_EQ(when("2026-12-01T03:00ZZ"), -1);
}

static void test_fmt(void)
{
    static const int64_t ds[] = {
        1, 45, 60, 90, 3600, 5400, 86400, 7776000, 31536000, 2 * 31536000 + 86400, 90061};
    static const char *const want[] = {"1s", "45s", "1m", "1m30s", "1h",      "1h30m",
                                       "1d", "90d", "1y", "731d",  "1d1h1m1s"};
    char buf[32];

    for (size_t i = 0; i < sizeof(ds) / sizeof(ds[0]); i++) {
        sn_duration_fmt(buf, ds[i]);
        T_STR(buf, want[i]);
        T_EQ(dur(buf), ds[i]); /* its inverse */
    }
    sn_duration_fmt(buf, 0);
    T_STR(buf, "0s");
    sn_duration_fmt(buf, -5);
    T_STR(buf, "0s");
    sn_duration_fmt(buf, INT64_MAX); /* fits its 32 bytes */
    T_STR(buf, "106751991167300d15h30m7s");
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("duration", test_duration);
    t_run("time", test_time);
    t_run("fmt", test_fmt);
    return t_done();
}
