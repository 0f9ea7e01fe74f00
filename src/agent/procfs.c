/*
 * /proc and cgroup v2 text parsers; see procfs.h. Positions are offsets or pointers within
 * buf[0..len) and every read checks against the end first; len == 0 is handled before any
 * pointer arithmetic (buf may then be NULL).
 */
#include <errno.h>
#include <string.h>

#include "agent/procfs.h"

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The end of line p (its '\n', or end). */
static const char *eol_of(const char *p, const char *end)
{
    const char *n = memchr(p, '\n', (size_t)(end - p));
    return n ? n : end;
}

/* Whether a field ends at p: a space, a newline or the end. */
static bool field_end(const char *p, const char *end)
{
    return p == end || *p == ' ' || *p == '\n';
}

/* The decimal number at *pp (digits only, at least one, below 2^64), which must end a field;
 * advances *pp past it. */
static bool parse_u64(const char **pp, const char *end, uint64_t *out)
{
    const char *p = *pp;
    uint64_t v = 0;

    if (p == end || !is_digit(*p))
        return false;
    for (; p < end && is_digit(*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (!field_end(p, end))
        return false;
    *pp = p;
    *out = v;
    return true;
}

static const char *skip_spaces(const char *p, const char *end)
{
    while (p < end && *p == ' ')
        p++;
    return p;
}

/* ---- flat-keyed files ---------------------------------------------------------------------- */

int sn_procfs_find_u64(const char *buf, size_t len, const char *key, uint64_t *out)
{
    size_t kl = key ? strlen(key) : 0;

    if (kl == 0 || strpbrk(key, " \n"))
        return -EINVAL;
    if (len == 0)
        return -ENOENT;
    for (const char *p = buf, *end = buf + len; p < end;) {
        const char *eol = eol_of(p, end);
        if ((size_t)(eol - p) > kl && memcmp(p, key, kl) == 0 && p[kl] == ' ') {
            const char *q = skip_spaces(p + kl, eol);
            uint64_t v;
            if (!parse_u64(&q, eol, &v) || skip_spaces(q, eol) != eol)
                return -EINVAL;
            *out = v;
            return 0;
        }
        if (eol == end)
            break;
        p = eol + 1;
    }
    return -ENOENT;
}

int sn_procfs_vmstat_pgmajfault(const char *buf, size_t len, uint64_t *out)
{
    return sn_procfs_find_u64(buf, len, "pgmajfault", out);
}

int sn_procfs_cg_cpu_stat(const char *buf, size_t len, struct sn_procfs_cg_cpu *out)
{
    struct sn_procfs_cg_cpu c;
    int rc;

    if ((rc = sn_procfs_find_u64(buf, len, "usage_usec", &c.usage_usec)) < 0 ||
        (rc = sn_procfs_find_u64(buf, len, "user_usec", &c.user_usec)) < 0 ||
        (rc = sn_procfs_find_u64(buf, len, "system_usec", &c.system_usec)) < 0)
        return rc;
    *out = c;
    return 0;
}

int sn_procfs_cg_populated(const char *buf, size_t len, bool *populated)
{
    uint64_t v;
    int rc = sn_procfs_find_u64(buf, len, "populated", &v);

    if (rc < 0)
        return rc;
    *populated = v != 0;
    return 0;
}

/* ---- /proc/stat ---------------------------------------------------------------------------- */

int sn_procfs_stat_cpu(const char *buf, size_t len, struct sn_procfs_cpu *out)
{
    if (len == 0)
        return -ENOENT;
    for (const char *p = buf, *end = buf + len; p < end;) {
        const char *eol = eol_of(p, end);
        if (eol - p > 3 && memcmp(p, "cpu", 3) == 0 && p[3] == ' ') {
            uint64_t v[7];
            const char *q = p + 3;
            for (int i = 0; i < 7; i++) { /* q is at a space, or the line ends */
                if (q == eol)
                    return -EINVAL; /* a field is missing */
                q = skip_spaces(q, eol);
                if (!parse_u64(&q, eol, &v[i]))
                    return -EINVAL;
            }
            *out = (struct sn_procfs_cpu){v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
            return 0;
        }
        if (eol == end)
            break;
        p = eol + 1;
    }
    return -ENOENT;
}

/* ---- /proc/<pid>/stat ---------------------------------------------------------------------- */

int sn_procfs_pid_stat(const char *buf, size_t len, struct sn_procfs_pid_stat *out)
{
    struct sn_procfs_pid_stat st = {0};
    const char *p = NULL, *end;

    if (len == 0)
        return -EINVAL;
    end = buf + len;
    for (const char *q = end; q > buf; q--) /* the last ')': comm may hold ')' */
        if (q[-1] == ')') {
            p = q;
            break;
        }
    if (!p)
        return -EINVAL;
    /* after the comm: field 3 (state) first; majflt is 12, starttime 22, rss 24 */
    for (int field = 3; field <= 24; field++) {
        if (p == end || *p != ' ')
            return -EINVAL; /* the line ends early */
        p = skip_spaces(p, end);
        if (field_end(p, end))
            return -EINVAL;
        if (field == 12 || field == 22 || field == 24) {
            uint64_t *v = field == 12 ? &st.majflt : field == 22 ? &st.starttime : &st.rss;
            if (!parse_u64(&p, end, v))
                return -EINVAL;
        } else {
            while (!field_end(p, end))
                p++;
        }
    }
    *out = st;
    return 0;
}

/* ---- /proc/net/dev ------------------------------------------------------------------------- */

void sn_procfs_netdev_begin(struct sn_procfs_netdev_iter *it, const char *buf, size_t len)
{
    const char *nl;

    it->buf = buf;
    it->len = len;
    it->pos = len;
    it->skipped = 0;
    if (len == 0)
        return;
    nl = memchr(buf, '\n', len); /* two header lines */
    if (nl)
        nl = memchr(nl + 1, '\n', len - (size_t)(nl + 1 - buf));
    if (nl)
        it->pos = (size_t)(nl + 1 - buf);
}

/* What dev_valid_name() allows but for ':', which cannot occur: the name ends at the first. */
static bool name_byte_ok(char c)
{
    return c != '\0' && c != '/' && c != ' ' && !(c >= '\t' && c <= '\r');
}

/* One interface line, p..eol (without its '\n'). */
static bool netdev_line(const char *p, const char *eol, struct sn_procfs_netdev *out)
{
    struct sn_procfs_netdev n;
    const char *colon;
    uint64_t v[10];

    p = skip_spaces(p, eol);
    colon = memchr(p, ':', (size_t)(eol - p));
    if (!colon || colon == p || colon - p >= SN_PROCFS_IFNAMSIZ)
        return false;
    for (const char *c = p; c < colon; c++)
        if (!name_byte_ok(*c))
            return false;
    memset(&n, 0, sizeof(n));
    memcpy(n.name, p, (size_t)(colon - p));
    p = colon + 1;
    for (int i = 0; i < 10; i++) { /* after the first, p is at a space, or the line ends */
        if (i > 0 && p == eol)
            return false; /* a field is missing */
        p = skip_spaces(p, eol);
        if (!parse_u64(&p, eol, &v[i]))
            return false;
    }
    n.rx_bytes = v[0];
    n.rx_packets = v[1];
    n.tx_bytes = v[8];
    n.tx_packets = v[9];
    *out = n;
    return true;
}

int sn_procfs_netdev_next(struct sn_procfs_netdev_iter *it, struct sn_procfs_netdev *out)
{
    while (it->pos < it->len) {
        const char *p = it->buf + it->pos, *end = it->buf + it->len;
        const char *eol = eol_of(p, end);
        it->pos = eol == end ? it->len : (size_t)(eol + 1 - it->buf);
        if (netdev_line(p, eol, out))
            return 1;
        it->skipped++;
    }
    return 0;
}
