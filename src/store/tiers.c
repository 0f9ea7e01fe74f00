/*
 * The store's tiers and their `--tiers` form (store/tiers.h).
 */
#include "store/tiers.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/timespec.h"

static const char *const names[SN_NTIERS] = {"raw", "1m", "1h", "1d"};
static const int64_t periods[SN_NTIERS] = {0, 60, 3600, 86400};

int64_t sn_tier_period(enum sn_tier t)
{
    return (unsigned)t < SN_NTIERS ? periods[t] : 0;
}

const char *sn_tier_name(enum sn_tier t)
{
    return (unsigned)t < SN_NTIERS ? names[t] : "?";
}

void sn_tiers_default(struct sn_tiers *t)
{
    t->keep[SN_TIER_RAW] = 2 * 86400;
    t->keep[SN_TIER_1M] = 90 * 86400;
    t->keep[SN_TIER_1H] = 5 * (int64_t)SN_YEAR_SECONDS;
    t->keep[SN_TIER_1D] = 10 * (int64_t)SN_YEAR_SECONDS;
}

int sn_tiers_parse(const char *s, struct sn_tiers *out, char *why, size_t whylen)
{
    struct sn_tiers t;
    char buf[256], *save = NULL;

    sn_tiers_default(&t);
    if (!s || strlen(s) >= sizeof(buf)) {
        snprintf(why, whylen, "expected e.g. raw:2d,1m:90d,1h:5y,1d:10y");
        return -EINVAL;
    }
    strcpy(buf, s);
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(item, ':');
        int k = -1;
        int64_t d = 0;
        if (colon)
            *colon = '\0';
        for (int i = 0; i < SN_NTIERS; i++)
            if (strcmp(item, names[i]) == 0)
                k = i;
        if (k < 0 || !colon) {
            snprintf(why, whylen, "\"%s\": expected TIER:DURATION, TIER one of raw, 1m, 1h, 1d",
                     item);
            return -EINVAL;
        }
        if (strcmp(colon + 1, "0") != 0 && sn_duration_parse(colon + 1, &d) < 0) {
            snprintf(why, whylen, "%s: \"%s\" is not a duration (e.g. 90s, 2d, 5y)", item,
                     colon + 1);
            return -EINVAL;
        }
        if (k == SN_TIER_RAW && d == 0) {
            snprintf(why, whylen, "raw: the raw tier cannot be off");
            return -EINVAL;
        }
        if (d && d < periods[k]) {
            snprintf(why, whylen, "%s: keeps less than one of its periods", item);
            return -EINVAL;
        }
        t.keep[k] = d;
    }
    for (int i = 1; i < SN_NTIERS; i++) {
        int64_t finer = 0;
        for (int j = 0; j < i; j++)
            if (t.keep[j] > finer)
                finer = t.keep[j];
        if (t.keep[i] && t.keep[i] < finer) {
            snprintf(why, whylen,
                     "%s keeps less than a finer tier: coarser tiers must keep "
                     "at least as long",
                     names[i]);
            return -EINVAL;
        }
    }
    *out = t;
    return 0;
}

void sn_tiers_fmt(const struct sn_tiers *t, char *buf, size_t len)
{
    size_t off = 0;

    buf[0] = '\0';
    for (int i = 0; i < SN_NTIERS && off < len; i++) {
        char d[32];
        if (t->keep[i])
            sn_duration_fmt(d, t->keep[i]);
        else
            strcpy(d, "0");
        off += (size_t)snprintf(buf + off, len - off, "%s%s:%s", i ? "," : "", names[i], d);
    }
}
