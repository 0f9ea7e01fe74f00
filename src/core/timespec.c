/*
 * Durations and times as typed (core/timespec.h).
 */
#include "core/timespec.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MAX_DURATION ((int64_t)100 * SN_YEAR_SECONDS)

static int64_t unit_of(char c)
{
    switch (c) {
    case 's':
        return 1;
    case 'm':
        return 60;
    case 'h':
        return 3600;
    case 'd':
        return 86400;
    case 'w':
        return 7 * 86400;
    case 'y':
        return SN_YEAR_SECONDS;
    default:
        return 0;
    }
}

int sn_duration_parse(const char *s, int64_t *secs)
{
    int64_t total = 0;
    const char *p = s;

    if (!s || !*s)
        return -EINVAL;
    while (*p) {
        int64_t n = 0;
        if (!isdigit((unsigned char)*p))
            return -EINVAL;
        while (isdigit((unsigned char)*p)) {
            n = n * 10 + (*p++ - '0');
            if (n > MAX_DURATION)
                return -EINVAL;
        }
        int64_t u = 1;
        if (*p) {
            if (!(u = unit_of(*p++)))
                return -EINVAL;
        } else if (total) {
            return -EINVAL; /* a bare number is seconds, but only alone: "1h30" is a typo */
        }
        if (n > MAX_DURATION / u || (total += n * u) > MAX_DURATION)
            return -EINVAL;
    }
    if (total <= 0)
        return -EINVAL;
    *secs = total;
    return 0;
}

/* Whether s[i] for each i in the first n of at are digits (sscanf's %2d also takes " 3",
 * "-1" and "+1"). */
static bool digits_at(const char *s, const int *at, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[at[i]]))
            return false;
    return true;
}

static int parse_iso(const char *s, int64_t *t)
{
    static const int at[] = {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18};
    struct tm tm = {0};
    int y, mo, d, h = 0, mi = 0, sec = 0, used = 0;
    size_t len = strlen(s);

    if (len < 10 || !digits_at(s, at, 8) || (len > 10 && (len < 16 || !digits_at(s, at, 12))) ||
        (len > 16 && s[16] == ':' && (len < 19 || !digits_at(s, at, 14))))
        return -EINVAL;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3 || used != 10)
        return -EINVAL;
    if (len > 10) {
        if (s[10] != 'T' && s[10] != ' ')
            return -EINVAL;
        int n2 = 0;
        if (sscanf(s + 11, "%2d:%2d%n", &h, &mi, &n2) != 2 || n2 != 5)
            return -EINVAL;
        used = 16;
        if (s[used] == ':') {
            if (sscanf(s + used + 1, "%2d%n", &sec, &n2) != 1 || n2 != 2)
                return -EINVAL;
            used += 3;
        }
        if (s[used] == 'Z')
            used++;
        if ((size_t)used != len)
            return -EINVAL;
    }
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -EINVAL;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t v = timegm(&tm);
    if (v < 0 || tm.tm_mday != d || tm.tm_mon != mo - 1) /* normalized: 2026-02-31 */
        return -EINVAL;
    *t = (int64_t)v;
    return 0;
}

int sn_time_parse(const char *s, int64_t now, int64_t *t)
{
    int64_t d;

    if (!s || !*s)
        return -EINVAL;
    if (strcmp(s, "now") == 0) {
        *t = now;
        return 0;
    }
    if (s[0] == '-') {
        if (sn_duration_parse(s + 1, &d) < 0 || d > now)
            return -EINVAL;
        *t = now - d;
        return 0;
    }
    if (strchr(s, '-'))
        return parse_iso(s, t);
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            return -EINVAL;
    if (strlen(s) > 12)
        return -EINVAL;
    long long v = 0;
    sscanf(s, "%lld", &v);
    *t = v;
    return 0;
}

void sn_duration_fmt(char *buf, int64_t d)
{
    static const struct {
        int64_t u;
        char c;
    } units[] = {{SN_YEAR_SECONDS, 'y'}, {86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
    size_t off = 0;

    if (d <= 0) {
        snprintf(buf, 32, "0s");
        return;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && d; i++) {
        /* years only when they divide exactly; otherwise days say it better */
        if (units[i].c == 'y' && d % units[i].u)
            continue;
        if (d >= units[i].u) {
            off += (size_t)snprintf(buf + off, 32 - off, "%lld%c", (long long)(d / units[i].u),
                                    units[i].c);
            d %= units[i].u;
        }
    }
}
