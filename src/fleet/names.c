/*
 * The fleet's names on NATS; see names.h. Every builder validates what it is given, and
 * every parser of a name read off the bus validates what it returns, so a subject or key that
 * passes through here is one that this file would have written itself (the fuzz target
 * fuzz/fuzz_fleet_names.c checks exactly that round trip). Nothing here allocates.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fleet/names.h"

#define TENANT_MAX 64 /* bytes of a tenant name in an instrumentation key */
#define ID_DIGITS  16 /* 9007199254740991 = 2^53 - 1: the largest id (instn_def.h) */
#define ID_MAX     "9007199254740991"
#define DOT_ESC    "=2E" /* a tenant's '.' in a subject token */

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

/* A tenant name (scope) of n bytes: 1..TENANT_MAX of [A-Za-z0-9._-]. */
static bool tenant_ok(const char *s, size_t n)
{
    if (n == 0 || n > TENANT_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!name_char(s[i]))
            return false;
    return true;
}

/* An id of n bytes in canonical decimal: 1..2^53-1, no sign, no leading zero. */
static bool id_ok(const char *s, size_t n)
{
    if (n == 0 || n > ID_DIGITS || s[0] == '0')
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return n < ID_DIGITS || memcmp(s, ID_MAX, ID_DIGITS) <= 0;
}

/* An instrumentation key of n bytes: "<id>" or "<tenant>/<id>". */
static bool inst_ok(const char *s, size_t n)
{
    if (n == sizeof(SN_FLEET_SPAN_BASE) - 1 && memcmp(s, SN_FLEET_SPAN_BASE, n) == 0)
        return true; /* built in */
    const char *slash = memchr(s, '/', n);
    if (!slash)
        return id_ok(s, n);
    size_t t = (size_t)(slash - s);
    return tenant_ok(s, t) && id_ok(slash + 1, n - t - 1);
}

static bool host_ok(const char *s, size_t n)
{
    if (n == 0 || n > SN_FLEET_HOST_MAX || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!name_char(s[i]) || (s[i] == '.' && s[i + 1] == '.'))
            return false;
    return true;
}

bool sn_fleet_host_valid(const char *host)
{
    return host && host_ok(host, strnlen(host, SN_FLEET_HOST_MAX + 1));
}

/* Appends the n bytes of s to out[*at..len), keeping it NUL-terminated; -ENOSPC when full. */
static int put(char *out, size_t len, size_t *at, const char *s, size_t n)
{
    if (*at + n >= len)
        return -ENOSPC;
    memcpy(out + *at, s, n);
    *at += n;
    out[*at] = '\0';
    return 0;
}

/* Appends the token of the n-byte name s (its dots written DOT_ESC). */
static int put_escaped(char *out, size_t len, size_t *at, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = s[i] == '.' ? put(out, len, at, DOT_ESC, 3) : put(out, len, at, s + i, 1);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Appends the token of key inst (valid: checked by the caller). */
static int put_inst(char *out, size_t len, size_t *at, const char *inst)
{
    return put_escaped(out, len, at, inst, strlen(inst));
}

static bool inst_valid(const char *inst)
{
    /* the longest key: a tenant, '/', an id */
    return inst && inst_ok(inst, strnlen(inst, TENANT_MAX + 1 + ID_DIGITS + 1));
}

/* Starts out with an empty string: every builder leaves "" in out when it fails. */
static int start(char *out, size_t len)
{
    if (!out || len == 0)
        return -ENOSPC;
    out[0] = '\0';
    return 0;
}

/* The result of a builder: on failure out is left "". */
static int done(char *out, int rc)
{
    if (rc < 0)
        out[0] = '\0';
    return rc;
}

int sn_fleet_inst_token(const char *inst, char *out, size_t len)
{
    size_t at = 0;
    int rc = start(out, len);
    if (rc < 0)
        return rc;
    if (!inst_valid(inst))
        return -EINVAL;
    return done(out, put_inst(out, len, &at, inst));
}

int sn_fleet_inst_of_token(const char *tok, size_t n, char *out, size_t len)
{
    char key[TENANT_MAX + 1 + ID_DIGITS + 1] = "";
    size_t k = 0;
    int rc = start(out, len);
    if (rc < 0)
        return rc;
    if (!tok)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        char c = tok[i];
        if (c == '=') { /* only the escape of a dot */
            if (n - i < 3 || memcmp(tok + i, DOT_ESC, 3) != 0)
                return -EINVAL;
            c = '.';
            i += 2;
        } else if (c == '.' || (!name_char(c) && c != '/')) {
            return -EINVAL;
        }
        if (k + 1 >= sizeof(key))
            return -EINVAL; /* longer than any key */
        key[k++] = c;
    }
    if (!inst_ok(key, k))
        return -EINVAL;
    size_t at = 0;
    return done(out, put(out, len, &at, key, k));
}

/* out = head + <inst>'s token + "." + tail, for a valid inst (the caller checked the rest):
 * every subject that names an instrumentation. 0, -EINVAL, -ENOSPC (out left ""). */
static int inst_subject(const char *head, const char *inst, const char *tail, char *out, size_t len)
{
    size_t at = 0;
    int rc = start(out, len);
    if (rc < 0)
        return rc;
    if (!inst_valid(inst))
        return -EINVAL;
    if ((rc = put(out, len, &at, head, strlen(head))) < 0 ||
        (rc = put_inst(out, len, &at, inst)) < 0 || (rc = put(out, len, &at, ".", 1)) < 0 ||
        (rc = put(out, len, &at, tail, strlen(tail))) < 0)
        return done(out, rc);
    return 0;
}

int sn_fleet_frame_subject(const char *inst, const char *host, char *out, size_t len)
{
    if (!sn_fleet_host_valid(host))
        return start(out, len) < 0 ? -ENOSPC : -EINVAL;
    return inst_subject(SN_FLEET_FRAMES_PREFIX, inst, host, out, len);
}

int sn_fleet_frame_filter(const char *inst, char *out, size_t len)
{
    return inst_subject(SN_FLEET_FRAMES_PREFIX, inst, ">", out, len);
}

static bool tier_ok(const char *tier)
{
    return tier && (!strcmp(tier, "1m") || !strcmp(tier, "1h") || !strcmp(tier, "1d"));
}

int sn_fleet_rollup_subject(const char *inst, const char *tier, int64_t t, char *out, size_t len)
{
    char head[32], sec[24];
    if (!tier_ok(tier) || t < 0)
        return start(out, len) < 0 ? -ENOSPC : -EINVAL;
    snprintf(head, sizeof(head), "%s%s.", SN_FLEET_ROLLUPS_PREFIX, tier);
    snprintf(sec, sizeof(sec), "%" PRId64, t);
    return inst_subject(head, inst, sec, out, len);
}

int sn_fleet_rollup_filter(const char *inst, const char *tier, char *out, size_t len)
{
    char head[32];
    if (!tier_ok(tier))
        return start(out, len) < 0 ? -ENOSPC : -EINVAL;
    snprintf(head, sizeof(head), "%s%s.", SN_FLEET_ROLLUPS_PREFIX, tier);
    return inst_subject(head, inst, ">", out, len);
}

int sn_fleet_rollup_stream(const char *tier, char *out, size_t len)
{
    size_t at = 0;
    int rc = start(out, len);
    if (rc < 0)
        return rc;
    if (!tier_ok(tier))
        return -EINVAL;
    char up[3] = {tier[0], (char)(tier[1] - 'a' + 'A'), '\0'};
    if ((rc = put(out, len, &at, SN_FLEET_ROLLUPS_STREAM, strlen(SN_FLEET_ROLLUPS_STREAM))) < 0 ||
        (rc = put(out, len, &at, up, 2)) < 0)
        return done(out, rc);
    return 0;
}

/* Copies the NUL-terminated name into out[len]: 0 or -ENOSPC (out left ""). */
static int copy_out(const char *name, char *out, size_t len)
{
    size_t at = 0;
    return done(out, put(out, len, &at, name, strlen(name)));
}

int sn_fleet_parse_frame_subject(const char *subj, char *inst, size_t ilen, char *host, size_t hlen)
{
    static const size_t plen = sizeof(SN_FLEET_FRAMES_PREFIX) - 1;
    int rc;
    if ((rc = start(inst, ilen)) < 0 || (rc = start(host, hlen)) < 0)
        return rc;
    if (!subj || strncmp(subj, SN_FLEET_FRAMES_PREFIX, plen) != 0)
        return -EINVAL;
    const char *tok = subj + plen, *dot = strchr(tok, '.');
    if (!dot || !sn_fleet_host_valid(dot + 1))
        return -EINVAL;
    if ((rc = sn_fleet_inst_of_token(tok, (size_t)(dot - tok), inst, ilen)) < 0)
        return rc;
    if ((rc = copy_out(dot + 1, host, hlen)) < 0)
        inst[0] = '\0';
    return rc;
}

int sn_fleet_msg_id(const char *host, const char *inst, int64_t t, char *out, size_t len)
{
    char sec[24];
    size_t at = 0;
    int rc = start(out, len);
    if (rc < 0)
        return rc;
    if (!sn_fleet_host_valid(host) || !inst_valid(inst) || t < 0)
        return -EINVAL;
    snprintf(sec, sizeof(sec), "%" PRId64, t);
    if ((rc = put(out, len, &at, host, strlen(host))) < 0 ||
        (rc = put(out, len, &at, ".", 1)) < 0 || (rc = put_inst(out, len, &at, inst)) < 0 ||
        (rc = put(out, len, &at, ".", 1)) < 0 || (rc = put(out, len, &at, sec, strlen(sec))) < 0)
        return done(out, rc);
    return 0;
}

/* out = prefix + the n bytes of name, dots escaped when esc. */
static int key_of(const char *prefix, const char *name, size_t n, bool esc, char *out, size_t len)
{
    size_t at = 0;
    int rc = put(out, len, &at, prefix, strlen(prefix));
    if (rc == 0)
        rc = esc ? put_escaped(out, len, &at, name, n) : put(out, len, &at, name, n);
    return done(out, rc);
}

/* key_of() for a name checked already (valid): out left "" and -EINVAL when it is not. */
static int checked_key(const char *prefix, const char *name, bool valid, bool esc, char *out,
                       size_t len)
{
    int rc = start(out, len);
    if (rc < 0)
        return rc;
    if (!valid)
        return -EINVAL;
    return key_of(prefix, name, strlen(name), esc, out, len);
}

int sn_fleet_def_key(const char *inst, char *out, size_t len)
{
    return checked_key("inst.", inst, inst_valid(inst), true, out, len);
}

int sn_fleet_next_key(const char *scope, char *out, size_t len)
{
    int rc = start(out, len);
    if (rc < 0)
        return rc;
    if (!scope)
        return -EINVAL;
    size_t n = strnlen(scope, TENANT_MAX + 1);
    if (n == 0)
        return key_of("next.", "=", 1, false, out, len);
    if (!tenant_ok(scope, n))
        return -EINVAL;
    return key_of("next.", scope, n, true, out, len);
}

int sn_fleet_parse_def_key(const char *key, char *inst, size_t len)
{
    int rc = start(inst, len);
    if (rc < 0)
        return rc;
    if (!key || strncmp(key, "inst.", 5) != 0)
        return -EINVAL;
    return sn_fleet_inst_of_token(key + 5, strlen(key + 5), inst, len);
}

int sn_fleet_node_key(const char *id, char *out, size_t len)
{
    return checked_key("node.", id, sn_fleet_host_valid(id), false, out, len);
}

int sn_fleet_agent_key(const char *host, char *out, size_t len)
{
    return checked_key("agent.", host, sn_fleet_host_valid(host), false, out, len);
}

int sn_fleet_parse_member_key(const char *key, char *kind, char *name, size_t len)
{
    int rc = start(name, len);
    if (rc < 0)
        return rc;
    if (kind)
        *kind = '\0';
    if (!key || !kind)
        return -EINVAL;
    const char *rest;
    char k;
    if (strncmp(key, "node.", 5) == 0) {
        k = 'n';
        rest = key + 5;
    } else if (strncmp(key, "agent.", 6) == 0) {
        k = 'a';
        rest = key + 6;
    } else {
        return -EINVAL;
    }
    if (!sn_fleet_host_valid(rest))
        return -EINVAL;
    if ((rc = copy_out(rest, name, len)) == 0)
        *kind = k;
    return rc;
}

/* ---- Spans ------------------------------------------------------------------------------- */

unsigned sn_fleet_span_shard(const uint8_t trace_id[16])
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int i = 0; i < 16; i++)
        h = (h ^ trace_id[i]) * 0x100000001b3ULL;
    return (unsigned)(h % SN_FLEET_SPAN_SHARDS);
}

int sn_fleet_span_subject(unsigned shard, char *out, size_t len)
{
    int rc = start(out, len);
    if (rc < 0)
        return rc;
    if (shard >= SN_FLEET_SPAN_SHARDS)
        return -EINVAL;
    if ((size_t)snprintf(out, len, "%s%u", SN_FLEET_SPANS_PREFIX, shard) >= len)
        return done(out, -ENOSPC);
    return 0;
}

int sn_fleet_parse_span_subject(const char *subj, unsigned *shard)
{
    static const size_t plen = sizeof(SN_FLEET_SPANS_PREFIX) - 1;
    if (!subj || !shard || strncmp(subj, SN_FLEET_SPANS_PREFIX, plen) != 0)
        return -EINVAL;
    const char *d = subj + plen;
    size_t n = strlen(d);
    if (n == 0 || n > 3 || (n > 1 && d[0] == '0'))
        return -EINVAL;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (d[i] < '0' || d[i] > '9')
            return -EINVAL;
        v = v * 10 + (unsigned)(d[i] - '0');
    }
    if (v >= SN_FLEET_SPAN_SHARDS)
        return -EINVAL;
    *shard = v;
    return 0;
}

int sn_fleet_span_key(unsigned shard, char *out, size_t len)
{
    int rc = start(out, len);
    if (rc < 0)
        return rc;
    if (shard >= SN_FLEET_SPAN_SHARDS)
        return -EINVAL;
    if ((size_t)snprintf(out, len, "spans/%u", shard) >= len)
        return done(out, -ENOSPC);
    return 0;
}

int sn_fleet_span_msg_id(const char *node, uint64_t nonce, const char *part, char *out, size_t len)
{
    int rc = start(out, len);
    if (rc < 0)
        return rc;
    if (!sn_fleet_host_valid(node) || !part || !*part)
        return -EINVAL;
    for (const char *p = part; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            return -EINVAL;
    if ((size_t)snprintf(out, len, "%s.%" PRIx64 ".%s", node, nonce, part) >= len)
        return done(out, -ENOSPC);
    return 0;
}

/* The last '.' among s[0..n), or NULL. */
static const char *last_dot(const char *s, size_t n)
{
    while (n-- > 0)
        if (s[n] == '.')
            return s + n;
    return NULL;
}

int sn_fleet_parse_span_msg_id(const char *id, char *origin, size_t len, uint64_t *nonce,
                               char *part, size_t plen)
{
    char tmp[1];
    int rc = start(origin, len);
    if (rc < 0)
        return rc;
    if (!part) { /* the part is checked all the same */
        part = tmp;
        plen = sizeof(tmp);
    } else if ((rc = start(part, plen)) < 0) {
        return rc;
    }
    if (!id)
        return -EINVAL;
    size_t n = strlen(id);
    const char *d2 = last_dot(id, n), *d1 = d2 ? last_dot(id, (size_t)(d2 - id)) : NULL;
    if (!d1)
        return -EINVAL;
    const char *p = d2 + 1, *x = d1 + 1;
    size_t pn = n - (size_t)(p - id), xn = (size_t)(d2 - x);
    if (pn == 0 || xn == 0 || xn > 16 || (xn > 1 && x[0] == '0'))
        return -EINVAL;
    for (size_t i = 0; i < pn; i++)
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
              (p[i] >= '0' && p[i] <= '9')))
            return -EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < xn; i++) {
        int c = x[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return -EINVAL;
        v = v << 4 | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    size_t on = (size_t)(d1 - id);
    if (on == 0 || on > SN_FLEET_HOST_MAX || !host_ok(id, on))
        return -EINVAL;
    size_t at = 0;
    if ((rc = put(origin, len, &at, id, on)) < 0)
        return done(origin, rc);
    if (part != tmp) {
        at = 0;
        if ((rc = put(part, plen, &at, p, pn)) < 0) {
            origin[0] = '\0';
            return done(part, rc);
        }
    }
    if (nonce)
        *nonce = v;
    return 0;
}

/* ---- The flight recorder ------------------------------------------------------------------ */

bool sn_fleet_rec_name_valid(const char *name)
{
    size_t n = name ? strnlen(name, 64) : 0;
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '_' && name[i] != '-')
            return false;
    return true;
}

int sn_fleet_rec_key(const char *name, char *out, size_t len)
{
    return checked_key("rec.", name, sn_fleet_rec_name_valid(name), false, out, len);
}

int sn_fleet_parse_rec_key(const char *key, char *name, size_t len)
{
    int rc = start(name, len);
    if (rc < 0)
        return rc;
    if (!key || strncmp(key, "rec.", 4) != 0 || !sn_fleet_rec_name_valid(key + 4))
        return -EINVAL;
    return copy_out(key + 4, name, len);
}

int sn_fleet_traces_subject(const char *snap, const char *host, char *out, size_t len)
{
    int rc = start(out, len);
    if (rc < 0)
        return rc;
    if (!sn_fleet_rec_name_valid(snap) || (host && !sn_fleet_host_valid(host)))
        return -EINVAL;
    int n = snprintf(out, len, SN_FLEET_TRACES_PREFIX "%s.%s", snap, host ? host : ">");
    if (n < 0 || (size_t)n >= len) {
        out[0] = '\0';
        return -ENAMETOOLONG;
    }
    return 0;
}

int sn_fleet_parse_traces_subject(const char *subj, char *snap, size_t slen, char *host,
                                  size_t hlen)
{
    int rc = start(snap, slen);
    if (rc < 0 || (rc = start(host, hlen)) < 0)
        return rc;
    size_t np = strlen(SN_FLEET_TRACES_PREFIX);
    if (!subj || strncmp(subj, SN_FLEET_TRACES_PREFIX, np) != 0)
        return -EINVAL;
    const char *id = subj + np, *dot = strchr(id, '.');
    if (!dot || (size_t)(dot - id) >= slen || !sn_fleet_host_valid(dot + 1))
        return -EINVAL;
    memcpy(snap, id, (size_t)(dot - id));
    snap[dot - id] = '\0';
    if (!sn_fleet_rec_name_valid(snap)) {
        snap[0] = '\0';
        return -EINVAL;
    }
    if ((rc = copy_out(dot + 1, host, hlen)) < 0)
        snap[0] = '\0';
    return rc;
}
