/*
 * CA predicates: validation and compilation to the kernel's postfix program; see predicate.h.
 *
 * The compiler walks the JSON tree depth first, emitting children before their operator, so
 * an and/or of k children becomes c1 c2 AND c3 AND ... ck AND. Checks run in CA's order:
 * syntax first (object, one key, known operator, array shapes), then fields and constant
 * types. The interpreter keeps its stack of results in the bits of a u64.
 *
 * "under" leaves keep their (normalized) path in the predicate's scope text, one copy per
 * distinct path; the interpreter compares it with the event's cgroup path component by
 * component, which is what the kernel's cgroup_scope bits stand for (agent/engine.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "agent/predicate.h"

static const char *const op_names[] = {
    [SN_PRED_EQ] = "eq",   [SN_PRED_NE] = "ne", [SN_PRED_LT] = "lt",
    [SN_PRED_LE] = "le",   [SN_PRED_GT] = "gt", [SN_PRED_GE] = "ge",
    [SN_PRED_AND] = "and", [SN_PRED_OR] = "or", [SN_PRED_UNDER] = "under",
};

struct compiler {
    const struct sn_field_def *fields;
    const enum sn_field_unit *units; /* [nfields], or NULL */
    size_t nfields;
    struct sn_pred *out;
    char *why;
    size_t whylen;
    size_t scope_used; /* bytes of out->scope taken */
};

static int fail(struct compiler *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct compiler *c, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, c->whylen, fmt, ap);
    va_end(ap);
    return rc;
}

static int emit(struct compiler *c, struct sn_pred_insn in)
{
    if (c->out->n >= SN_PRED_MAX_INSNS)
        return fail(c, -E2BIG, "predicate too large (at most %d terms and operators)",
                    SN_PRED_MAX_INSNS);
    c->out->insn[c->out->n++] = in;
    return 0;
}

static const struct sn_field_def *find_field(const struct compiler *c, const char *name)
{
    for (size_t i = 0; i < c->nfields; i++)
        if (strcmp(c->fields[i].name, name) == 0)
            return &c->fields[i];
    return NULL;
}

bool sn_addr_parse(const char *text, char out[16])
{
    unsigned char v4[4];

    if (inet_pton(AF_INET6, text, out) == 1)
        return true;
    if (inet_pton(AF_INET, text, v4) != 1)
        return false;
    memset(out, 0, 16);
    out[10] = out[11] = (char)0xff;
    memcpy(out + 12, v4, 4);
    return true;
}

void sn_addr_format(const char in[16], char *out, size_t len)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    char buf[INET6_ADDRSTRLEN];

    if (memcmp(in, mapped, 12) == 0)
        inet_ntop(AF_INET, in + 12, buf, sizeof(buf));
    else
        inet_ntop(AF_INET6, in, buf, sizeof(buf));
    snprintf(out, len, "%s", buf);
}

const char *sn_pred_under_path(const struct sn_pred *p, const struct sn_pred_insn *in)
{
    if (in->op != SN_PRED_UNDER || in->n < 0 || in->n >= SN_PRED_SCOPE_LEN ||
        !memchr(p->scope + in->n, '\0', (size_t)(SN_PRED_SCOPE_LEN - in->n)))
        return NULL;
    return p->scope + in->n;
}

bool sn_cgroup_under(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);

    while (n > 0 && prefix[n - 1] == '/') /* "/" is everything's prefix */
        n--;
    return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* An "under" leaf: fd must be a cgroup field and k an absolute cgroup path, which is
 * normalized and stored once in the predicate's scope text. */
static int compile_under(struct compiler *c, const struct sn_field_def *fd, const json_t *k)
{
    char path[SN_PRED_SCOPE_LEN];
    const char *s = json_string_value(k), *at;
    size_t len = 0, off;

    if (fd->kind != SN_FIELD_CGROUP) {
        const char *cg = "container";
        for (size_t i = 0; i < c->nfields; i++)
            if (c->fields[i].kind == SN_FIELD_CGROUP)
                cg = c->fields[i].name;
        return fail(c, -EINVAL, "\"under\" applies only to \"%s\", not \"%s\"", cg, fd->name);
    }
    if (!s)
        return fail(c, -EINVAL, "\"under\" takes a cgroup path: its constant must be a string");
    if (s[0] != '/')
        return fail(c, -EINVAL, "\"under\" needs an absolute cgroup path, not \"%.64s\"", s);
    if (strlen(s) != json_string_length(k))
        return fail(c, -EINVAL, "cgroup path \"%.64s...\" may not contain a NUL byte", s);
    for (at = s; *at;) { /* component by component: "//" and a trailing "/" drop out */
        size_t n;
        while (*at == '/')
            at++;
        n = strcspn(at, "/");
        if (n == 0)
            break;
        if ((n == 1 && at[0] == '.') || (n == 2 && at[0] == '.' && at[1] == '.'))
            return fail(c, -EINVAL, "cgroup path \"%.64s\" may not contain \".\" or \"..\"", s);
        if (len + 1 + n >= sizeof(path))
            return fail(c, -E2BIG, "cgroup paths too long (at most %d bytes in all)",
                        SN_PRED_SCOPE_LEN - 1);
        path[len++] = '/';
        memcpy(path + len, at, n);
        len += n;
        at += n;
    }
    path[len] = '\0';
    if (len == 0) /* under "/": every cgroup */
        return emit(c, (struct sn_pred_insn){.op = SN_PRED_TRUE});
    for (off = 0; off < c->scope_used; off += strlen(c->out->scope + off) + 1)
        if (strcmp(c->out->scope + off, path) == 0)
            break;
    if (off == c->scope_used) {
        if (c->scope_used + len + 1 > SN_PRED_SCOPE_LEN)
            return fail(c, -E2BIG, "cgroup paths too long (at most %d bytes in all)",
                        SN_PRED_SCOPE_LEN - 1);
        memcpy(c->out->scope + off, path, len + 1);
        c->scope_used += len + 1;
    }
    return emit(c, (struct sn_pred_insn){.op = SN_PRED_UNDER, .field = fd->id, .n = (int64_t)off});
}

/* ------------------------------------------------------------------------------------------
 * Constants with units
 */

struct unit_def {
    const char *name;
    enum sn_field_unit kind; /* SN_UNIT_NS for times, SN_UNIT_BYTES for sizes */
    uint64_t factor;         /* in ns or bytes */
};

static const struct unit_def unit_table[] = {
    {"ns", SN_UNIT_NS, 1},
    {"us", SN_UNIT_NS, 1000},
    {"\xc2\xb5s", SN_UNIT_NS, 1000}, /* µs, MICRO SIGN */
    {"\xce\xbcs", SN_UNIT_NS, 1000}, /* μs, GREEK SMALL LETTER MU */
    {"ms", SN_UNIT_NS, 1000000},
    {"s", SN_UNIT_NS, 1000000000},
    {"min", SN_UNIT_NS, 60000000000ULL},
    {"h", SN_UNIT_NS, 3600000000000ULL},
    {"B", SN_UNIT_BYTES, 1},
    {"kB", SN_UNIT_BYTES, 1000},
    {"MB", SN_UNIT_BYTES, 1000000},
    {"GB", SN_UNIT_BYTES, 1000000000},
    {"TB", SN_UNIT_BYTES, 1000000000000ULL},
    {"KiB", SN_UNIT_BYTES, 1024},
    {"MiB", SN_UNIT_BYTES, 1024 * 1024},
    {"GiB", SN_UNIT_BYTES, 1024ULL * 1024 * 1024},
    {"TiB", SN_UNIT_BYTES, 1024ULL * 1024 * 1024 * 1024},
};

int sn_pred_unit_value(const char *text, enum sn_field_unit unit, int64_t *whole, bool *frac)
{
    typedef unsigned __int128 u128;
    const char *s = text;
    u128 m = 0, factor = 1, den = 1; /* the value is m * factor / den */
    size_t ndigits = 0, nsig = 0;

    if (unit == SN_UNIT_NONE)
        return -EDOM;
    while (*s == ' ')
        s++;
    for (bool point = false;; s++) {
        if (*s == '.' && !point) {
            point = true;
            continue;
        }
        if (*s < '0' || *s > '9')
            break;
        ndigits++;
        if (m == 0 && *s == '0' && !point)
            continue; /* leading zeroes */
        if (++nsig > 19)
            return -ERANGE; /* more digits than kept exact */
        m = m * 10 + (unsigned)(*s - '0');
        if (point)
            den *= 10;
    }
    if (ndigits == 0)
        return -EINVAL;
    while (*s == ' ')
        s++;
    size_t len = strlen(s);
    while (len > 0 && s[len - 1] == ' ')
        len--;
    if (len > 0) {
        const struct unit_def *u = NULL;
        for (size_t i = 0; i < sizeof(unit_table) / sizeof(*unit_table); i++)
            if (strlen(unit_table[i].name) == len && memcmp(unit_table[i].name, s, len) == 0)
                u = &unit_table[i];
        if (!u)
            return -EINVAL;
        if ((u->kind == SN_UNIT_BYTES) != (unit == SN_UNIT_BYTES))
            return -EDOM;
        factor = u->factor;
    }
    if (unit == SN_UNIT_MS) { /* a time in ns (with a unit) or ms (plain), into ms */
        if (len > 0)
            den *= 1000000;
    }
    u128 num = m * factor, q = num / den;
    if (q > (u128)INT64_MAX)
        return -ERANGE;
    *whole = (int64_t)q;
    *frac = num % den != 0;
    return 0;
}

/* The reason a string constant on numeric field fd is refused (rc from sn_pred_unit_value). */
static int unit_fail(struct compiler *c, const struct sn_field_def *fd, enum sn_field_unit unit,
                     const char *s, int rc)
{
    static const char times[] = "ns, us (or \xc2\xb5s), ms, s, min or h";
    static const char sizes[] = "B, kB, MB, GB, TB, KiB, MiB, GiB or TiB";
    const char *raw = unit == SN_UNIT_NS   ? "nanoseconds"
                      : unit == SN_UNIT_MS ? "milliseconds"
                                           : "bytes";
    bool size = unit == SN_UNIT_BYTES;

    if (unit == SN_UNIT_NONE)
        return fail(c, -EINVAL, "field \"%s\" is numeric: its constant must be a number", fd->name);
    if (rc == -ERANGE)
        return fail(c, -EINVAL, "constant \"%.64s\" for field \"%s\" out of range", s, fd->name);
    if (rc == -EDOM)
        return fail(c, -EINVAL, "\"%.64s\" is a %s, but field \"%s\" is a %s: use %s", s,
                    size ? "time" : "size", fd->name, size ? "size" : "time", size ? sizes : times);
    return fail(c, -EINVAL,
                "\"%.64s\" is not a %s for field \"%s\": use a number of %s, or a number with "
                "%s",
                s, size ? "size" : "time", fd->name, raw, size ? sizes : times);
}

static int compile_leaf(struct compiler *c, enum sn_pred_op op, const json_t *args)
{
    const json_t *f = json_array_get(args, 0), *k = json_array_get(args, 1);
    const struct sn_field_def *fd;
    struct sn_pred_insn in = {.op = (uint8_t)op};

    if (!json_is_array(args))
        return fail(c, -EINVAL, "predicate key does not point to an array");
    if (json_array_size(args) != 2)
        return fail(c, -EINVAL, "predicate array must have exactly 2 elements, found %zu",
                    json_array_size(args));
    if (!json_is_string(f))
        return fail(c, -EINVAL, "first element of a predicate array must be a field name");
    if (!json_is_number(k) && !json_is_string(k))
        return fail(c, -EINVAL,
                    "second element of a predicate array must be a number or a "
                    "string");
    fd = find_field(c, json_string_value(f));
    if (!fd)
        return fail(c, -ENOENT, "no such field for specified metric: %s", json_string_value(f));
    if (op == SN_PRED_UNDER)
        return compile_under(c, fd, k);
    in.field = fd->id;
    if (fd->kind == SN_FIELD_NUMERIC) {
        bool frac = false;
        if (json_is_string(k)) { /* Sonde: a number with a unit */
            enum sn_field_unit unit = c->units ? c->units[fd - c->fields] : SN_UNIT_NONE;
            int64_t n = 0;
            int rc = sn_pred_unit_value(json_string_value(k), unit, &n, &frac);
            if (rc == 0 && strlen(json_string_value(k)) != json_string_length(k))
                rc = -EINVAL; /* a NUL inside */
            if (rc < 0)
                return unit_fail(c, fd, unit, json_string_value(k), rc);
            in.n = n;
        } else if (json_is_integer(k)) {
            in.n = (int64_t)json_integer_value(k);
        } else {
            double d = floor(json_real_value(k));
            if (!(d > -9.2e18 && d < 9.2e18))
                return fail(c, -EINVAL, "constant for field \"%s\" out of range", fd->name);
            in.n = (int64_t)d;
            frac = d != json_real_value(k);
        }
        {
            if (frac) {                 /* a fraction against an integer field (n is its floor) */
                if (op == SN_PRED_EQ) { /* never equal: x < INT64_MIN is always false */
                    in.op = SN_PRED_LT;
                    in.n = INT64_MIN;
                } else if (op == SN_PRED_NE) {
                    in.op = SN_PRED_TRUE;
                } else { /* x < 2.5 <=> x <= 2, and x > 2.5 <=> x > 2 (likewise le, ge) */
                    in.op = op == SN_PRED_LT || op == SN_PRED_LE ? SN_PRED_LE : SN_PRED_GT;
                }
            }
        }
    } else {
        const char *s = json_string_value(k);
        if (!json_is_string(k))
            return fail(c, -EINVAL, "field \"%s\" is discrete: its constant must be a string",
                        fd->name);
        if (op != SN_PRED_EQ && op != SN_PRED_NE)
            return fail(c, -EINVAL, "field \"%s\" is discrete: only eq and ne apply", fd->name);
        if (fd->constant) { /* the same for every event here: fold */
            bool eq = strcmp(fd->constant, s) == 0;
            if (op == SN_PRED_EQ ? eq : !eq)
                return emit(c, (struct sn_pred_insn){.op = SN_PRED_TRUE});
            in.op = SN_PRED_LT; /* false: field 0's number is 0, never below INT64_MIN */
            in.field = 0;
            in.n = INT64_MIN;
            return emit(c, in);
        }
        if (fd->kind == SN_FIELD_ADDR) {
            if (!sn_addr_parse(s, in.s))
                return fail(c, -EINVAL, "value \"%.64s\" is not a valid %s", s, fd->name);
            in.is_str = 1;
            return emit(c, in);
        }
        if (fd->parse) { /* a name or id the kernel sees as a number */
            int64_t v;
            if (!fd->parse(s, &v))
                return fail(c, -EINVAL, "value \"%.64s\" is not a valid %s", s, fd->name);
            in.n = v;
            return emit(c, in);
        }
        in.is_str = 1;
        strncpy(in.s, s, SN_PRED_STRLEN - 1); /* Linux keeps 15 bytes of a name */
    }
    return emit(c, in);
}

static int compile(struct compiler *c, const json_t *p, int depth)
{
    const char *key;
    const json_t *val;
    int op = -1, rc;

    if (depth > SN_PRED_MAX_DEPTH)
        return fail(c, -E2BIG, "predicate nested too deeply");
    if (!json_is_object(p))
        return fail(c, -EINVAL, "predicate must be an object");
    if (json_object_size(p) == 0)
        return emit(c, (struct sn_pred_insn){.op = SN_PRED_TRUE});
    if (json_object_size(p) > 1)
        return fail(c, -EINVAL, "found too many keys: %zu. expected one", json_object_size(p));
    json_object_foreach((json_t *)p, key, val)
    {
        for (int i = SN_PRED_EQ; i <= SN_PRED_UNDER; i++)
            if (strcmp(key, op_names[i]) == 0)
                op = i;
        if (op < 0)
            return fail(c, -EINVAL, "invalid key: %s", key);
        if (op != SN_PRED_AND && op != SN_PRED_OR)
            return compile_leaf(c, (enum sn_pred_op)op, val);
        if (!json_is_array(val))
            return fail(c, -EINVAL, "predicate key does not point to an array");
        if (json_array_size(val) < 2)
            return fail(c, -EINVAL, "\"%s\" needs at least 2 predicates, found %zu", key,
                        json_array_size(val));
        for (size_t i = 0; i < json_array_size(val); i++) {
            rc = compile(c, json_array_get(val, i), depth + 1);
            if (rc < 0)
                return rc;
            if (i > 0 && (rc = emit(c, (struct sn_pred_insn){.op = (uint8_t)op})) < 0)
                return rc;
        }
    }
    return 0;
}

int sn_pred_compile(const json_t *p, const struct sn_field_def *fields, size_t nfields,
                    struct sn_pred *out, char *why, size_t whylen)
{
    return sn_pred_compile_units(p, fields, NULL, nfields, out, why, whylen);
}

int sn_pred_compile_units(const json_t *p, const struct sn_field_def *fields,
                          const enum sn_field_unit *units, size_t nfields, struct sn_pred *out,
                          char *why, size_t whylen)
{
    struct compiler c = {fields, units, nfields, out, why, whylen, 0};
    int rc;

    memset(out, 0, sizeof(*out));
    if (whylen)
        why[0] = '\0';
    rc = compile(&c, p, 0);
    if (rc < 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

bool sn_pred_eval(const struct sn_pred *p, const struct sn_event *ev)
{
    uint64_t stack = 0;
    unsigned depth = 0;

    if (p->n == 0 || p->n > SN_PRED_MAX_INSNS)
        return false;
    for (uint32_t i = 0; i < p->n; i++) {
        const struct sn_pred_insn *in = &p->insn[i];
        bool r;

        if (in->op == SN_PRED_AND || in->op == SN_PRED_OR) {
            if (depth < 2)
                return false;
            bool b = stack & 1, a = (stack >> 1) & 1;
            stack >>= 2;
            depth -= 2;
            r = in->op == SN_PRED_AND ? (a && b) : (a || b);
        } else if (in->op == SN_PRED_TRUE) {
            r = true;
        } else if (in->op == SN_PRED_UNDER) {
            const char *prefix = sn_pred_under_path(p, in);
            if (!prefix)
                return false;
            r = ev->cgroup && sn_cgroup_under(ev->cgroup, prefix);
        } else if (in->field >= SN_EVENT_MAXFIELDS || in->op > SN_PRED_GE) {
            return false;
        } else if (in->is_str) {
            int cmp = memcmp(ev->str[in->field], in->s, SN_PRED_STRLEN);
            r = in->op == SN_PRED_EQ ? cmp == 0 : in->op == SN_PRED_NE ? cmp != 0 : false;
        } else {
            int64_t x = ev->num[in->field], k = in->n;
            switch (in->op) {
            case SN_PRED_EQ:
                r = x == k;
                break;
            case SN_PRED_NE:
                r = x != k;
                break;
            case SN_PRED_LT:
                r = x < k;
                break;
            case SN_PRED_LE:
                r = x <= k;
                break;
            case SN_PRED_GT:
                r = x > k;
                break;
            default:
                r = x >= k;
                break;
            }
        }
        if (depth >= SN_PRED_MAX_DEPTH)
            return false;
        stack = stack << 1 | r;
        depth++;
    }
    return depth == 1 && (stack & 1);
}
