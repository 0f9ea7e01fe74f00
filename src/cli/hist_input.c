/*
 * Parser for `sonde hist` input lines; see hist_input.h for the format. The line is copied to
 * a bounded NUL-terminated buffer so strtod/strtoll can never run past it.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/hist_input.h"

#define MAX_LINE 256

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

int sn_hist_parse_line(const char *line, size_t len, struct sn_hist_sample *s, const char **why)
{
    char buf[MAX_LINE], *p, *end, *num;

    while (len > 0 && blank(line[len - 1]))
        len--;
    while (len > 0 && blank(*line)) {
        line++;
        len--;
    }
    if (len == 0 || line[0] == '#')
        return 0;
    if (len >= sizeof(buf)) {
        *why = "line too long";
        return -EINVAL;
    }
    if (memchr(line, '\0', len)) {
        *why = "NUL byte in line";
        return -EINVAL;
    }
    memcpy(buf, line, len);
    buf[len] = '\0';

    num = buf;
    for (p = buf; *p && !blank(*p); p++)
        ;
    if (*p) {
        *p++ = '\0';
        while (blank(*p))
            p++;
    }
    errno = 0;
    s->value = strtod(num, &end);
    if (end == num || *end) {
        *why = "not a number";
        return -EINVAL;
    }
    /* ERANGE: overflow gives +-HUGE_VAL (inf), underflow a subnormal or 0; both are values */
    errno = 0;
    s->ivalue = strtoll(num, &end, 10);
    s->is_int = *end == '\0' && errno == 0;
    s->count = 1;
    if (*p) {
        unsigned long long c;
        if (*p == '-' || *p == '+') {
            *why = "count must be a plain non-negative integer";
            return -EINVAL;
        }
        errno = 0;
        c = strtoull(p, &end, 10);
        if (end == p || errno) {
            *why = "count must be a plain non-negative integer";
            return -EINVAL;
        }
        while (blank(*end))
            end++;
        if (*end) {
            *why = "more than two fields";
            return -EINVAL;
        }
        s->count = c;
    }
    return 1;
}

bool sn_hist_sample_in_range(const struct sn_hist_sample *s)
{
    return isfinite(s->value) && fabs(s->value) < SN_HIST_VALUE_LIMIT;
}
