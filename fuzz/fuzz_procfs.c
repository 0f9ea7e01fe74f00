/*
 * Fuzz target: the /proc and cgroup v2 parsers of agent/procfs.h, every one of them on the same
 * bytes (so a real /proc/stat seed also drives the key lookups, a /proc/net/dev one the pid
 * stat parser, and so on). The input is copied into a buffer of exactly its size, without a
 * NUL, so ASan catches any read past len. Properties:
 *
 *   - no crash; return values are 0, -ENOENT or -EINVAL (the iterator's 1 or 0);
 *   - a parser that fails leaves its output as it was;
 *   - what a parser accepts, the code it replaced in agent/sampled.c (sscanf and strtoull on
 *     NUL terminated text; kept below as legacy_*) read the same values from: the parsers are
 *     stricter, never different (checked on inputs without NUL bytes);
 *   - net/dev names are 1..15 bytes of allowed characters, NUL padded to 16, and every line
 *     after the header is either an interface or counted in skipped;
 *   - round trips: lines the kernel's way with numbers (and a /proc/<pid>/stat comm) taken
 *     from the input, the comm holding any bytes, ')' and ' (' and newlines included, parse
 *     back to those numbers; a number one digit too long for 64 bits is rejected.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/procfs.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define POISON 0xa5

static bool poisoned(const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i] != POISON)
            return false;
    return true;
}

/* ---- the former code of agent/sampled.c, on NUL terminated text ---------------------------- */

static bool legacy_find_u64(const char *text, const char *key, uint64_t *out)
{
    size_t kl = strlen(key);

    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, key, kl) == 0 && p[kl] == ' ') {
            *out = strtoull(p + kl + 1, NULL, 10);
            return true;
        }
    return false;
}

static bool legacy_stat_cpu(const char *buf, unsigned long long v[7])
{
    return sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
                  &v[5], &v[6]) == 7;
}

static bool legacy_pid_stat(const char *buf, uint64_t *majflt, uint64_t *start, uint64_t *rss)
{
    const char *p = strrchr(buf, ')');
    char *end;

    if (!p)
        return false;
    p++;
    for (int field = 3; field <= 24; field++) {
        while (*p == ' ')
            p++;
        if (!*p)
            return false;
        if (field == 12 || field == 22 || field == 24) {
            unsigned long long v = strtoull(p, &end, 10);
            if (end == p)
                return false;
            if (field == 12)
                *majflt = v;
            else if (field == 22)
                *start = v;
            else
                *rss = v;
        }
        while (*p && *p != ' ')
            p++;
    }
    return true;
}

/* The next interface the former loop took, from *line (a cursor it keeps); modifies the text. */
static bool legacy_netdev_next(char **cursor, struct sn_procfs_netdev *out)
{
    char *line = *cursor, *next;

    for (; line; line = next) {
        unsigned long long v[10];
        char *colon;
        line++;
        next = strchr(line, '\n');
        if (next)
            *next = '\0';
        if (!(colon = strchr(line, ':')))
            continue;
        while (*line == ' ')
            line++;
        if (colon - line <= 0 || colon - line >= SN_PROCFS_IFNAMSIZ)
            continue;
        if (sscanf(colon + 1, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) != 10)
            continue;
        memset(out, 0, sizeof(*out));
        memcpy(out->name, line, (size_t)(colon - line));
        out->rx_bytes = v[0];
        out->rx_packets = v[1];
        out->tx_bytes = v[8];
        out->tx_packets = v[9];
        *cursor = next;
        return true;
    }
    *cursor = NULL;
    return false;
}

/* ---- the parsers on the input -------------------------------------------------------------- */

static void check_rc(int rc)
{
    FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -EINVAL);
}

static void keys(const char *buf, size_t len, const char *text)
{
    static const char *const names[] = {"usage_usec", "user_usec",  "system_usec",
                                        "populated",  "pgmajfault", "cpu"};
    uint64_t v;
    struct sn_procfs_cg_cpu cg;
    bool pop;
    int rc;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        memset(&v, POISON, sizeof(v));
        rc = sn_procfs_find_u64(buf, len, names[i], &v);
        check_rc(rc);
        if (rc < 0) {
            FUZZ_CHECK(poisoned(&v, sizeof(v)));
        } else if (text) {
            uint64_t old;
            FUZZ_CHECK(legacy_find_u64(text, names[i], &old) && old == v);
        }
    }
    memset(&v, POISON, sizeof(v));
    FUZZ_CHECK(sn_procfs_find_u64(buf, len, "", &v) == -EINVAL);
    FUZZ_CHECK(sn_procfs_find_u64(buf, len, "a b", &v) == -EINVAL);
    FUZZ_CHECK(poisoned(&v, sizeof(v)));

    memset(&v, POISON, sizeof(v));
    rc = sn_procfs_vmstat_pgmajfault(buf, len, &v);
    check_rc(rc);
    if (rc < 0)
        FUZZ_CHECK(poisoned(&v, sizeof(v)));

    memset(&cg, POISON, sizeof(cg));
    rc = sn_procfs_cg_cpu_stat(buf, len, &cg);
    check_rc(rc);
    if (rc < 0) {
        FUZZ_CHECK(poisoned(&cg, sizeof(cg)));
    } else {
        FUZZ_CHECK(sn_procfs_find_u64(buf, len, "user_usec", &v) == 0 && v == cg.user_usec);
        FUZZ_CHECK(sn_procfs_find_u64(buf, len, "system_usec", &v) == 0 && v == cg.system_usec);
        FUZZ_CHECK(sn_procfs_find_u64(buf, len, "usage_usec", &v) == 0 && v == cg.usage_usec);
    }

    memset(&pop, POISON, sizeof(pop));
    rc = sn_procfs_cg_populated(buf, len, &pop);
    check_rc(rc);
    if (rc < 0)
        FUZZ_CHECK(poisoned(&pop, sizeof(pop)));
    else
        FUZZ_CHECK(sn_procfs_find_u64(buf, len, "populated", &v) == 0 && pop == (v != 0));
}

static void stat_cpu(const char *buf, size_t len, const char *text)
{
    struct sn_procfs_cpu c;
    int rc;

    memset(&c, POISON, sizeof(c));
    rc = sn_procfs_stat_cpu(buf, len, &c);
    check_rc(rc);
    if (rc < 0) {
        FUZZ_CHECK(poisoned(&c, sizeof(c)));
        return;
    }
    /* the former code read only the first line */
    if (text && len > 3 && memcmp(buf, "cpu ", 4) == 0) {
        unsigned long long v[7];
        FUZZ_CHECK(legacy_stat_cpu(text, v));
        FUZZ_CHECK(v[0] == c.user && v[1] == c.nice && v[2] == c.system && v[3] == c.idle &&
                   v[4] == c.iowait && v[5] == c.irq && v[6] == c.softirq);
    }
}

static void pid_stat(const char *buf, size_t len, const char *text)
{
    struct sn_procfs_pid_stat st;
    int rc;

    memset(&st, POISON, sizeof(st));
    rc = sn_procfs_pid_stat(buf, len, &st);
    FUZZ_CHECK(rc == 0 || rc == -EINVAL);
    if (rc < 0) {
        FUZZ_CHECK(poisoned(&st, sizeof(st)));
        return;
    }
    if (text) {
        uint64_t m = 0, s = 0, r = 0;
        FUZZ_CHECK(legacy_pid_stat(text, &m, &s, &r));
        FUZZ_CHECK(m == st.majflt && s == st.starttime && r == st.rss);
    }
}

static bool name_ok(const char name[SN_PROCFS_IFNAMSIZ])
{
    size_t n = strnlen(name, SN_PROCFS_IFNAMSIZ);

    if (n == 0 || n >= SN_PROCFS_IFNAMSIZ)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strchr("/: \t\n\v\f\r", name[i]))
            return false;
    for (size_t i = n; i < SN_PROCFS_IFNAMSIZ; i++)
        if (name[i] != '\0')
            return false;
    return true;
}

static void netdev(const char *buf, size_t len, char *text)
{
    struct sn_procfs_netdev_iter it;
    struct sn_procfs_netdev d, old;
    size_t got = 0, lines = 0, from = len;
    char *cursor = NULL;
    int rc;

    if (text) { /* where the former loop started: at the second '\n' */
        cursor = strchr(text, '\n');
        cursor = cursor ? strchr(cursor + 1, '\n') : NULL;
    }
    sn_procfs_netdev_begin(&it, buf, len);
    for (;;) {
        memset(&d, POISON, sizeof(d));
        rc = sn_procfs_netdev_next(&it, &d);
        FUZZ_CHECK(rc == 0 || rc == 1);
        if (rc == 0) {
            FUZZ_CHECK(poisoned(&d, sizeof(d)));
            break;
        }
        got++;
        FUZZ_CHECK(name_ok(d.name));
        if (text) { /* the former loop took it too, maybe after lines it took and we skip */
            bool found = false;
            while (!found && legacy_netdev_next(&cursor, &old))
                found = memcmp(&old, &d, sizeof(d)) == 0;
            FUZZ_CHECK(found);
        }
    }
    FUZZ_CHECK(sn_procfs_netdev_next(&it, &d) == 0); /* stays at the end */
    /* every line after the header counted once */
    for (size_t i = 0, nl = 0; i < len; i++)
        if (buf[i] == '\n' && ++nl == 2) {
            from = i + 1;
            break;
        }
    for (size_t i = from; i < len; i++)
        if (buf[i] == '\n' || i == len - 1)
            lines++;
    FUZZ_CHECK(got + it.skipped == lines);
}

/* ---- round trips --------------------------------------------------------------------------- */

/* Numbers from the input: 8 bytes at a time, wrapping, cut to a width the next byte picks, so
 * small and full-width values (UINT64_MAX included) both come up. */
struct src {
    const uint8_t *d;
    size_t n, i;
};

static uint8_t byte(struct src *s)
{
    return s->n ? s->d[s->i++ % s->n] : 0;
}

static uint64_t number(struct src *s)
{
    uint64_t v = 0;
    unsigned bits = byte(s) % 65;

    for (int i = 0; i < 8; i++)
        v = v << 8 | byte(s);
    return bits == 64 ? v : v & ((UINT64_C(1) << bits) - 1);
}

static void round_trips(const uint8_t *data, size_t size)
{
    struct src s = {data, size, 0};
    char line[2048];
    int n;

    /* /proc/<pid>/stat with a comm of input bytes; cut anywhere between the comm's ')' and
     * the first digit of rss, it is rejected */
    {
        struct sn_procfs_pid_stat want = {number(&s), number(&s), number(&s)}, got;
        size_t cl = byte(&s) % 65, paren, rss_at;
        n = snprintf(line, sizeof(line), "%u (", (unsigned)byte(&s) * 97 + 1);
        for (size_t i = 0; i < cl; i++)
            line[n++] = (char)byte(&s);
        paren = (size_t)n;
        n += snprintf(line + n, sizeof(line) - (size_t)n,
                      ") S 1 1 1 0 -1 4194560 7 0 %" PRIu64 " 0 3 2 0 0 20 0 1 0 %" PRIu64 " 13 ",
                      want.majflt, want.starttime);
        rss_at = (size_t)n;
        n += snprintf(line + n, sizeof(line) - (size_t)n,
                      "%" PRIu64 " 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 -100 "
                      "0 0 0 0 1 1 1 1 1 1 1 0\n",
                      want.rss);
        FUZZ_CHECK(sn_procfs_pid_stat(line, (size_t)n, &got) == 0);
        FUZZ_CHECK(memcmp(&got, &want, sizeof(got)) == 0);
        size_t cut = paren + 1 + byte(&s) % (rss_at - paren);
        memset(&got, POISON, sizeof(got));
        FUZZ_CHECK(sn_procfs_pid_stat(line, cut, &got) == -EINVAL);
        FUZZ_CHECK(poisoned(&got, sizeof(got)));
    }

    /* /proc/stat's cpu line, after other lines */
    {
        struct sn_procfs_cpu want, got;
        uint64_t extra = number(&s);
        want.user = number(&s);
        want.nice = number(&s);
        want.system = number(&s);
        want.idle = number(&s);
        want.iowait = number(&s);
        want.irq = number(&s);
        want.softirq = number(&s);
        n = snprintf(line, sizeof(line),
                     "cpu0 1 2 3 4 5 6 7 8 0 0\ncpu  %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
                     " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " 0 0\nintr 1 2\n",
                     want.user, want.nice, want.system, want.idle, want.iowait, want.irq,
                     want.softirq, extra);
        FUZZ_CHECK(sn_procfs_stat_cpu(line, (size_t)n, &got) == 0);
        FUZZ_CHECK(memcmp(&got, &want, sizeof(got)) == 0);
    }

    /* a key, and the same value with one more digit: rejected exactly when it overflows */
    {
        uint64_t want = number(&s), got;
        unsigned d = byte(&s) % 10;
        n = snprintf(line, sizeof(line), "usage_usec 1\nuser_usecs 2\nuser_usec %" PRIu64 "\n",
                     want);
        FUZZ_CHECK(sn_procfs_find_u64(line, (size_t)n, "user_usec", &got) == 0 && got == want);
        line[n - 1] = (char)('0' + d);
        bool fits = want <= (UINT64_MAX - d) / 10;
        int rc = sn_procfs_find_u64(line, (size_t)n, "user_usec", &got);
        FUZZ_CHECK(fits ? rc == 0 && got == want * 10 + d : rc == -EINVAL);
    }

    /* /proc/net/dev with names from the input */
    {
        static const char chars[] = "abcdefghijklmnopqrstuvwxyz0123456789._-@";
        struct sn_procfs_netdev want[4], got;
        struct sn_procfs_netdev_iter it;
        int k = byte(&s) % 4 + 1;
        n = snprintf(line, sizeof(line), "Inter-|   Receive |  Transmit\n face |bytes |bytes\n");
        for (int j = 0; j < k; j++) {
            size_t nl = byte(&s) % 15 + 1;
            memset(&want[j], 0, sizeof(want[j]));
            for (size_t i = 0; i < nl; i++)
                want[j].name[i] = chars[byte(&s) % (sizeof(chars) - 1)];
            want[j].rx_bytes = number(&s);
            want[j].rx_packets = number(&s);
            want[j].tx_bytes = number(&s);
            want[j].tx_packets = number(&s);
            n += snprintf(line + n, sizeof(line) - (size_t)n,
                          "%6s:%8" PRIu64 " %7" PRIu64 "    0    0    0     0          0         0 "
                          "%8" PRIu64 " %7" PRIu64 "    0    0    0     0       0          0\n",
                          want[j].name, want[j].rx_bytes, want[j].rx_packets, want[j].tx_bytes,
                          want[j].tx_packets);
        }
        sn_procfs_netdev_begin(&it, line, (size_t)n);
        for (int j = 0; j < k; j++) {
            FUZZ_CHECK(sn_procfs_netdev_next(&it, &got) == 1);
            FUZZ_CHECK(memcmp(&got, &want[j], sizeof(got)) == 0);
        }
        FUZZ_CHECK(sn_procfs_netdev_next(&it, &got) == 0 && it.skipped == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1); /* exactly the input: no NUL after it */
    char *text = memchr(data, 0, size) ? NULL : malloc(size + 1); /* for the legacy code */

    FUZZ_CHECK(buf != NULL);
    memcpy(buf, data, size);
    if (text) {
        memcpy(text, data, size);
        text[size] = '\0';
    }
    keys(buf, size, text);
    stat_cpu(buf, size, text);
    pid_stat(buf, size, text);
    netdev(buf, size, text); /* last: the legacy loop writes into text */
    round_trips(data, size);
    free(text);
    free(buf);
    return 0;
}
