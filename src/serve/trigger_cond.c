/*
 * The text of a trigger's condition (serve/trigger_cond.h): a small recursive-descent parser
 * over one line, every number checked (finite, in range) and every error worded for the API's
 * answer.
 */
#include "serve/trigger_cond.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lex {
    const char *p;
    char *why;
    size_t len;
};

static void skip(struct lex *l)
{
    while (*l->p == ' ' || *l->p == '\t')
        l->p++;
}

/* Takes the literal word w (case-sensitive) when it comes next. */
static bool take(struct lex *l, const char *w)
{
    skip(l);
    size_t n = strlen(w);
    if (strncmp(l->p, w, n) != 0)
        return false;
    l->p += n;
    return true;
}

/* A non-negative decimal number (no sign, no exponent, no hex, no inf/nan). */
static int number(struct lex *l, double *v, const char *what)
{
    skip(l);
    const char *s = l->p;
    size_t n = 0;
    bool dot = false, digit = false;
    while ((s[n] >= '0' && s[n] <= '9') || (s[n] == '.' && !dot)) {
        dot |= s[n] == '.';
        digit |= s[n] != '.';
        n++;
    }
    if (!digit || n > 40) {
        snprintf(l->why, l->len, "%s: expected a number at \"%.16s\"", what, s);
        return -EINVAL;
    }
    char buf[48];
    memcpy(buf, s, n);
    buf[n] = 0;
    *v = strtod(buf, NULL);
    if (!isfinite(*v)) {
        snprintf(l->why, l->len, "%s: \"%s\" is not a finite number", what, buf);
        return -EINVAL;
    }
    l->p = s + n;
    return 0;
}

/* A value in the instrumentation's unit, or with a time suffix (to nanoseconds). */
static int value(struct lex *l, double *v, const char *what)
{
    static const struct {
        const char *sfx;
        double mul;
    } units[] = {{"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}};
    int rc = number(l, v, what);
    if (rc != 0)
        return rc;
    const char *num_end = l->p;
    skip(l); /* "10 ms" as "10ms" */
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        size_t n = strlen(units[i].sfx);
        if (strncmp(l->p, units[i].sfx, n) != 0)
            continue;
        char next = l->p[n]; /* within the string: its first n bytes matched */
        if (!((next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z'))) {
            l->p += n;
            *v *= units[i].mul;
            num_end = NULL;
            break;
        }
    }
    if (num_end)
        l->p = num_end; /* no unit: what follows is the next token's */
    if (!isfinite(*v) || *v > 1e18) {
        snprintf(l->why, l->len, "%s: too large", what);
        return -EINVAL;
    }
    return 0;
}

static int rate(struct lex *l, double *v)
{
    int rc = number(l, v, "the rate");
    if (rc == 0 && *v > 1e15) {
        snprintf(l->why, l->len, "the rate: too large");
        rc = -EINVAL;
    }
    if (rc == 0)
        (void)take(l, "/s");
    return rc;
}

int sn_tcond_parse(const char *text, struct sn_tcond *c, char *why, size_t len)
{
    struct lex l = {.p = text ? text : "", .why = why, .len = len};
    int rc;

    memset(c, 0, sizeof(*c));
    c->for_s = 1;
    if (strlen(l.p) > SN_TCOND_TEXT) {
        snprintf(why, len, "a condition is at most %d bytes", SN_TCOND_TEXT);
        return -EINVAL;
    }
    skip(&l);
    if (*l.p == 'p' && l.p[1] >= '0' && l.p[1] <= '9') {
        l.p++;
        c->kind = SN_TCOND_PCT;
        if ((rc = number(&l, &c->pct, "the percentile")) != 0)
            return rc;
        if (!(c->pct > 0 && c->pct < 100)) {
            snprintf(why, len, "the percentile must be above 0 and below 100 (p50, p99, p99.9)");
            return -EINVAL;
        }
    } else if (take(&l, "count")) {
        c->kind = SN_TCOND_RATE;
        if (take(&l, "in")) {
            c->kind = SN_TCOND_BAND;
            if (!take(&l, "[")) {
                snprintf(why, len, "a band is written \"count in [LO, HI)\"");
                return -EINVAL;
            }
            if ((rc = value(&l, &c->lo, "the band's low end")) != 0)
                return rc;
            if (!take(&l, ",")) {
                snprintf(why, len, "a band is written \"count in [LO, HI)\"");
                return -EINVAL;
            }
            if ((rc = value(&l, &c->hi, "the band's high end")) != 0)
                return rc;
            if (!take(&l, ")")) {
                snprintf(why, len, "a band is written \"count in [LO, HI)\"");
                return -EINVAL;
            }
            if (!(c->lo < c->hi)) {
                snprintf(why, len, "the band [LO, HI) must have LO below HI");
                return -EINVAL;
            }
        }
    } else {
        snprintf(why, len,
                 "a condition begins with a percentile (p99), \"count\" or \"count in [LO, HI)\"");
        return -EINVAL;
    }
    if (!take(&l, ">")) {
        snprintf(why, len, "expected \">\" after the %s",
                 c->kind == SN_TCOND_PCT ? "percentile" : "count");
        return -EINVAL;
    }
    if (*l.p == '=') {
        snprintf(why, len, "only \">\" is taken (\"over the threshold\")");
        return -EINVAL;
    }
    skip(&l);
    if (*l.p == '-') {
        snprintf(why, len, "the threshold must not be negative");
        return -EINVAL;
    }
    rc = c->kind == SN_TCOND_PCT ? value(&l, &c->threshold, "the threshold")
                                 : rate(&l, &c->threshold);
    if (rc != 0)
        return rc;
    if (take(&l, "for")) {
        double d;
        skip(&l);
        if (*l.p == '-') {
            snprintf(why, len, "\"for\": the duration must be positive");
            return -EINVAL;
        }
        if ((rc = number(&l, &d, "\"for\"")) != 0)
            return rc;
        (void)take(&l, "s");
        if (d != floor(d) || d < 1 || d > SN_TCOND_MAX_FOR) {
            snprintf(why, len, "\"for\": a whole number of seconds from 1 to %d", SN_TCOND_MAX_FOR);
            return -EINVAL;
        }
        c->for_s = (uint32_t)d;
    }
    skip(&l);
    if (*l.p) {
        snprintf(why, len, "unexpected \"%.16s\" at the end of the condition", l.p);
        return -EINVAL;
    }
    return 0;
}
