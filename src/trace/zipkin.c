/*
 * Zipkin v2 spans in and out (trace/zipkin.h).
 *
 * JSON is parsed with jansson into a tree (a request is at most a few MB, and the tree lets a
 * pre-pass tell a v1 body from a v2 one before any span is judged, as Zipkin's detector does);
 * proto3 is walked with trace/pb.h. Both fill the span through the same helpers (ids, tags,
 * status), so the two encodings normalise alike. The writer is by hand, straight into the
 * caller's buffer, because the query API writes thousands of spans per answer; its escaping
 * validates UTF-8 itself, so even spans that never went through a decoder (OTLP ones) give
 * valid JSON.
 */
#include "trace/zipkin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/b64.h"
#include "core/grow.h"
#include "trace/pb.h"

#define MAX_US (UINT64_MAX / 1000) /* the largest µs time that fits in ns */

/* ---- Shared helpers ---------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p[0..n) (RFC 3629: no overlongs, no surrogates, at
 * most U+10FFFF), or 0 when p does not start one. n > 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return n >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
            return 0;
        if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f))
            return 0;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
            return 0;
        if ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))
            return 0;
        return 4;
    }
    return 0;
}

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* An IPv6 address into ep: an IPv4-mapped one (::ffff:a.b.c.d) is kept as IPv4, as Zipkin's
 * Endpoint does. */
static void set_ipv6(struct sn_span_endpoint *ep, const uint8_t a[16])
{
    if (memcmp(a, v4_mapped, 12) == 0) {
        memcpy(ep->ipv4, a + 12, 4);
        ep->has_ipv4 = true;
    } else {
        memcpy(ep->ipv6, a, 16);
        ep->has_ipv6 = true;
    }
}

/* An address literal (either family, whichever field it came in) into ep; anything else is
 * ignored, as Zipkin ignores an unparseable ip. */
static void parse_ip(const char *s, struct sn_span_endpoint *ep)
{
    uint8_t a[16];
    if (inet_pton(AF_INET, s, a) == 1) {
        memcpy(ep->ipv4, a, 4);
        ep->has_ipv4 = true;
    } else if (inet_pton(AF_INET6, s, a) == 1) {
        set_ipv6(ep, a);
    }
}

static bool endpoint_empty(const struct sn_span_endpoint *ep, const char *svc)
{
    return !(svc && *svc) && !ep->has_ipv4 && !ep->has_ipv6 && !ep->port;
}

/* ---- Decoding: what both encodings share ------------------------------------------------- */

struct dec {
    struct sn_span_batch *b;
    char *why;
    size_t whylen;
};

static int fail(struct dec *d, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct dec *d, int rc, const char *fmt, ...)
{
    if (d->why && d->whylen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->why, d->whylen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int nomem(struct dec *d)
{
    return fail(d, -ENOMEM, "out of memory reading List<Span>");
}

/* The message Zipkin gives for an id it cannot take; the id is quoted as sent (cut short). */
static int bad_id(struct dec *d, const char *s, size_t n)
{
    return fail(d, -EINVAL, "%.*s should be lower-hex encoded with no prefix",
                (int)(n > 64 ? 64 : n), s);
}

/* s[0..n) copied into the arena, ASCII letters lower-cased when lower, invalid UTF-8 replaced
 * with U+FFFD when fix (proto3 strings; jansson has checked JSON's). *outlen gets the length. */
static char *dup_str(struct sn_arena *a, const char *s, size_t n, bool lower, bool fix,
                     size_t *outlen)
{
    size_t m = n;
    const unsigned char *p = (const unsigned char *)s;
    if (fix) {
        m = 0;
        for (size_t i = 0; i < n;) {
            size_t k = utf8_len(p + i, n - i);
            m += k ? k : 3;
            i += k ? k : 1;
        }
    }
    char *o = sn_arena_alloc(a, m + 1);
    if (!o)
        return NULL;
    if (m == n) {
        if (n)
            memcpy(o, s, n);
    } else {
        size_t j = 0;
        for (size_t i = 0; i < n;) {
            size_t k = utf8_len(p + i, n - i);
            if (k) {
                memcpy(o + j, p + i, k);
                j += k;
                i += k;
            } else {
                memcpy(o + j, "\xef\xbf\xbd", 3);
                j += 3;
                i++;
            }
        }
    }
    o[m] = '\0';
    if (lower)
        for (size_t i = 0; i < m; i++)
            if (o[i] >= 'A' && o[i] <= 'Z')
                o[i] = (char)(o[i] - 'A' + 'a');
    if (outlen)
        *outlen = m;
    return o;
}

/* A service name: lower-cased; "" (also one that starts with a NUL) is none. */
static int set_service(struct dec *d, struct sn_span_endpoint *ep, const char *s, size_t n,
                       bool fix)
{
    size_t m;
    char *v = dup_str(&d->b->arena, s, n, true, fix, &m);
    if (!v)
        return nomem(d);
    if (m > SN_SPAN_MAX_VALUE)
        return fail(d, -EINVAL, "serviceName longer than %u bytes", SN_SPAN_MAX_VALUE);
    ep->service = *v ? v : NULL;
    return 0;
}

static int set_name(struct dec *d, struct sn_span *s, const char *p, size_t n, bool fix,
                    const char *at)
{
    size_t m;
    char *v = dup_str(&d->b->arena, p, n, true, fix, &m);
    if (!v)
        return nomem(d);
    if (m > SN_SPAN_MAX_VALUE)
        return fail(d, -EINVAL, "name longer than %u bytes at %s", SN_SPAN_MAX_VALUE, at);
    s->name = v;
    return 0;
}

/* A trace id of 1..32 hex digits (either case). */
static int set_trace_hex(struct dec *d, struct sn_span *s, const char *p, size_t n)
{
    uint8_t id[16];
    if (n == 0 || n > 32 || !sn_span_id_parse(p, n, id, 16) || sn_span_id_zero(id, 16))
        return bad_id(d, p, n);
    memcpy(s->trace_id, id, 16);
    s->flags &= (uint8_t)~SN_SPAN_F_ID64;
    if (sn_span_id_zero(id, 8))
        s->flags |= SN_SPAN_F_ID64;
    return 0;
}

/* A span or parent id of 1..16 hex digits; an all-zero parent is no parent. */
static int set_id_hex(struct dec *d, struct sn_span *s, const char *p, size_t n, bool parent)
{
    uint8_t id[8];
    if (n == 0 || n > 16 || !sn_span_id_parse(p, n, id, 8))
        return bad_id(d, p, n);
    if (sn_span_id_zero(id, 8)) {
        if (!parent)
            return bad_id(d, p, n);
        return 0;
    }
    memcpy(parent ? s->parent_id : s->span_id, id, 8);
    if (parent)
        s->flags |= SN_SPAN_F_PARENT;
    return 0;
}

/* Appends tag k = v[0..vlen) to s (room for it was allocated), or, when a tag of that key (as
 * a C string) is already there, replaces its value in place: what jansson does with a repeated
 * key, so that JSON and proto3 agree and the written JSON has unique keys. */
static int add_tag(struct dec *d, struct sn_span *s, const char *k, size_t klen, const char *v,
                   size_t vlen, bool fix, const char *at)
{
    size_t kl, vl;
    char *key = dup_str(&d->b->arena, k, klen, false, fix, &kl);
    char *val = key ? dup_str(&d->b->arena, v, vlen, false, fix, &vl) : NULL;
    if (!val)
        return nomem(d);
    if (vl > SN_SPAN_MAX_VALUE || kl > SN_SPAN_MAX_VALUE)
        return fail(d, -EINVAL, "tag longer than %u bytes at %s", SN_SPAN_MAX_VALUE, at);
    struct sn_span_kv *a = NULL;
    for (uint32_t i = 0; i < s->nattrs && !a; i++)
        if (strcmp(s->attrs[i].key, key) == 0)
            a = &s->attrs[i];
    if (!a)
        a = &s->attrs[s->nattrs++];
    memset(a, 0, sizeof(*a));
    a->key = key;
    a->val = val;
    a->vlen = (uint32_t)vl;
    a->type = SN_ATTR_STRING;
    return 0;
}

/* Status from the tags, for the store's error counts (the tags stay as they are). */
static void status_from_tags(struct sn_span *s)
{
    const struct sn_span_kv *a = sn_span_attr(s->attrs, s->nattrs, "otel.status_code");
    if (a && strcmp(a->val, "OK") == 0)
        s->status = SN_STATUS_OK;
    else if (a && strcmp(a->val, "ERROR") == 0)
        s->status = SN_STATUS_ERROR;
    a = sn_span_attr(s->attrs, s->nattrs, "error");
    if (a) {
        s->status = SN_STATUS_ERROR;
        s->status_msg = a->val;
    }
}

/* The batch as it was before the call: no partial success in Zipkin. */
static int undo(struct sn_span_batch *b, size_t n0, uint64_t fixed0, int rc)
{
    b->n = n0;
    b->fixed_times = fixed0;
    return rc;
}

/* ---- JSON -------------------------------------------------------------------------------- */

/* path = at "." k, cut to fit: for every field of every span, so no snprintf(). */
static void join(char *path, size_t n, const char *at, const char *k)
{
    size_t a = strlen(at), kl = strlen(k);
    if (a > n - 2)
        a = n - 2;
    memcpy(path, at, a);
    path[a++] = '.';
    if (kl > n - 1 - a)
        kl = n - 1 - a;
    memcpy(path + a, k, kl);
    path[a + kl] = '\0';
}

/* Moshi's token names, which Zipkin's messages use. */
static const char *token(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "BEGIN_OBJECT";
    case JSON_ARRAY:
        return "BEGIN_ARRAY";
    case JSON_STRING:
        return "STRING";
    case JSON_INTEGER:
    case JSON_REAL:
        return "NUMBER";
    case JSON_TRUE:
    case JSON_FALSE:
        return "BOOLEAN";
    default:
        return "NULL";
    }
}

static int bad_type(struct dec *d, const char *want, const json_t *v, const char *at)
{
    return fail(d, -EINVAL, "Expected %s but was %s at path %s reading List<Span> from json", want,
                token(v), at);
}

/* A time or duration in µs: 1 when set, 0 when absent (null, zero, negative), < 0 on error.
 * A real (fractional or exponent notation) is truncated and counted; a positive duration under
 * 1 µs is rounded up to 1 (round_up). */
static int json_us(struct dec *d, const json_t *v, const char *at, bool round_up, uint64_t *us)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i <= 0)
            return 0;
        if ((uint64_t)i > MAX_US)
            return fail(d, -EINVAL, "%" JSON_INTEGER_FORMAT " is out of range at path %s", i, at);
        *us = (uint64_t)i;
        return 1;
    }
    if (json_is_real(v)) {
        double x = json_real_value(v);
        d->b->fixed_times++;
        if (!(x > 0))
            return 0;
        if (x >= (double)MAX_US)
            return fail(d, -EINVAL, "%.17g is out of range at path %s", x, at);
        *us = (uint64_t)x;
        if (*us == 0 && round_up)
            *us = 1;
        return *us != 0;
    }
    if (json_is_null(v))
        return 0;
    return bad_type(d, "a long", v, at);
}

static int json_endpoint(struct dec *d, const json_t *o, const char *at,
                         struct sn_span_endpoint *ep)
{
    char path[192];
    const char *k;
    size_t klen;
    json_t *v;

    if (json_is_null(o))
        return 0;
    if (!json_is_object(o))
        return bad_type(d, "BEGIN_OBJECT", o, at);
    json_object_keylen_foreach((json_t *)o, k, klen, v)
    {
        join(path, sizeof(path), at, k);
        if (json_is_null(v) || strlen(k) != klen) /* a key with a NUL is no field's */
            continue;
        if (strcmp(k, "serviceName") == 0) {
            if (!json_is_string(v))
                return bad_type(d, "a string", v, path);
            int rc = set_service(d, ep, json_string_value(v), json_string_length(v), false);
            if (rc < 0)
                return rc;
        } else if (strcmp(k, "ipv4") == 0 || strcmp(k, "ipv6") == 0) {
            if (!json_is_string(v))
                return bad_type(d, "a string", v, path);
            parse_ip(json_string_value(v), ep);
        } else if (strcmp(k, "port") == 0) {
            if (!json_is_integer(v))
                return bad_type(d, "an int", v, path);
            json_int_t p = json_integer_value(v);
            if (p > 0xffff)
                return fail(d, -EINVAL, "invalid port %" JSON_INTEGER_FORMAT " at path %s", p,
                            path);
            ep->port = p > 0 ? (uint16_t)p : 0;
        }
    }
    return 0;
}

static int json_annotations(struct dec *d, struct sn_span *s, const json_t *arr, const char *at)
{
    char path[192];
    size_t n = json_array_size(arr);

    if (json_is_null(arr))
        return 0;
    if (!json_is_array(arr))
        return bad_type(d, "BEGIN_ARRAY", arr, at);
    if (n > SN_SPAN_MAX_EVENTS)
        return fail(d, -EINVAL, "more than %u annotations at path %s", SN_SPAN_MAX_EVENTS, at);
    if (n == 0)
        return 0;
    s->events = sn_arena_calloc(&d->b->arena, n, sizeof(*s->events));
    if (!s->events)
        return nomem(d);
    for (size_t j = 0; j < n; j++) {
        const json_t *a = json_array_get(arr, j), *ts, *val;
        uint64_t us = 0;
        snprintf(path, sizeof(path), "%s[%zu]", at, j);
        if (!json_is_object(a))
            return bad_type(d, "BEGIN_OBJECT", a, path);
        ts = json_object_get(a, "timestamp");
        val = json_object_get(a, "value");
        if (ts) {
            char tpath[224];
            snprintf(tpath, sizeof(tpath), "%s.timestamp", path);
            int rc = json_us(d, ts, tpath, false, &us);
            if (rc < 0)
                return rc;
        }
        if (val && !json_is_string(val) && !json_is_null(val)) {
            char vpath[224];
            snprintf(vpath, sizeof(vpath), "%s.value", path);
            return bad_type(d, "a string", val, vpath);
        }
        if (us == 0 || !json_is_string(val))
            return fail(d, -EINVAL, "Incomplete annotation at %s", path);
        struct sn_span_event *e = &s->events[s->nevents++];
        e->t_ns = us * 1000;
        e->name = dup_str(&d->b->arena, json_string_value(val), json_string_length(val), false,
                          false, NULL);
        if (!e->name)
            return nomem(d);
        if (json_string_length(val) > SN_SPAN_MAX_VALUE)
            return fail(d, -EINVAL, "annotation longer than %u bytes at %s", SN_SPAN_MAX_VALUE,
                        path);
    }
    return 0;
}

/* The shortest text that reads back as x (Moshi gives a number tag as it was written; jansson
 * keeps only the double, so this is the nearest we can do). */
static void fmt_double(double x, char *out, size_t n)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, n, "%.*g", prec, x);
        if (strtod(out, NULL) == x)
            return;
    }
}

static int json_tags(struct dec *d, struct sn_span *s, const json_t *o, const char *at)
{
    char path[256], num[32];
    const char *k;
    size_t klen;
    json_t *v;

    if (json_is_null(o))
        return 0;
    if (!json_is_object(o))
        return bad_type(d, "BEGIN_OBJECT", o, at);
    size_t n = json_object_size(o);
    if (n > SN_SPAN_MAX_ATTRS)
        return fail(d, -EINVAL, "more than %u tags at path %s", SN_SPAN_MAX_ATTRS, at);
    if (n == 0)
        return 0;
    s->attrs = sn_arena_calloc(&d->b->arena, n, sizeof(*s->attrs));
    if (!s->attrs)
        return nomem(d);
    json_object_keylen_foreach((json_t *)o, k, klen, v)
    {
        const char *val = num;
        size_t vlen;
        join(path, sizeof(path), at, k);
        switch (json_typeof(v)) {
        case JSON_STRING:
            val = json_string_value(v);
            vlen = json_string_length(v);
            break;
        case JSON_INTEGER:
            vlen =
                (size_t)snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            break;
        case JSON_REAL:
            fmt_double(json_real_value(v), num, sizeof(num));
            vlen = strlen(num);
            break;
        case JSON_TRUE:
        case JSON_FALSE:
            val = json_is_true(v) ? "true" : "false";
            vlen = strlen(val);
            break;
        case JSON_NULL:
            return fail(d, -EINVAL, "No value at %s", path);
        default:
            return bad_type(d, "a string", v, path);
        }
        int rc = add_tag(d, s, k, klen, val, vlen, false, path);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int json_kind(struct dec *d, struct sn_span *s, const json_t *v, const char *at)
{
    static const struct {
        const char *name;
        uint8_t kind;
    } kinds[] = {{"CLIENT", SN_KIND_CLIENT},
                 {"SERVER", SN_KIND_SERVER},
                 {"PRODUCER", SN_KIND_PRODUCER},
                 {"CONSUMER", SN_KIND_CONSUMER}};
    if (json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return bad_type(d, "a string", v, at);
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcasecmp(json_string_value(v), kinds[i].name) == 0) {
            s->kind = kinds[i].kind;
            return 0;
        }
    return fail(d, -EINVAL, "No enum constant zipkin2.Span.Kind.%.32s at path %s",
                json_string_value(v), at);
}

static int json_span(struct dec *d, const json_t *o, size_t idx)
{
    char at[32], path[128];
    const char *k;
    size_t klen;
    json_t *v;
    bool have_trace = false, have_id = false;
    uint64_t us;
    int rc = 0;

    snprintf(at, sizeof(at), "$[%zu]", idx);
    if (!json_is_object(o))
        return bad_type(d, "BEGIN_OBJECT", o, at);
    struct sn_span *s = sn_span_batch_add(d->b);
    if (!s)
        return nomem(d);
    s->flags = SN_SPAN_F_ZIPKIN | SN_SPAN_F_NO_START;
    json_object_keylen_foreach((json_t *)o, k, klen, v)
    {
        join(path, sizeof(path), at, k);
        if (json_is_null(v) || strlen(k) != klen) /* a key with a NUL is no field's */
            continue;
        bool is_trace = strcmp(k, "traceId") == 0, is_id = strcmp(k, "id") == 0;
        if (is_trace || is_id || strcmp(k, "parentId") == 0) {
            if (!json_is_string(v))
                return bad_type(d, "a string", v, path);
            const char *p = json_string_value(v);
            size_t n = json_string_length(v);
            if (is_trace) {
                rc = set_trace_hex(d, s, p, n);
                have_trace = true;
            } else {
                rc = set_id_hex(d, s, p, n, !is_id);
                have_id |= is_id;
            }
        } else if (strcmp(k, "kind") == 0) {
            rc = json_kind(d, s, v, path);
        } else if (strcmp(k, "name") == 0) {
            if (!json_is_string(v))
                return bad_type(d, "a string", v, path);
            rc = set_name(d, s, json_string_value(v), json_string_length(v), false, path);
        } else if (strcmp(k, "timestamp") == 0) {
            rc = json_us(d, v, path, false, &us);
            if (rc > 0) {
                s->start_ns = us * 1000;
                s->flags &= (uint8_t)~SN_SPAN_F_NO_START;
            }
        } else if (strcmp(k, "duration") == 0) {
            rc = json_us(d, v, path, true, &us);
            if (rc > 0)
                s->duration_ns = us * 1000;
        } else if (strcmp(k, "localEndpoint") == 0) {
            memset(&s->local, 0, sizeof(s->local));
            rc = json_endpoint(d, v, path, &s->local);
        } else if (strcmp(k, "remoteEndpoint") == 0) {
            memset(&s->remote, 0, sizeof(s->remote));
            rc = json_endpoint(d, v, path, &s->remote);
        } else if (strcmp(k, "annotations") == 0) {
            s->nevents = 0;
            rc = json_annotations(d, s, v, path);
        } else if (strcmp(k, "tags") == 0) {
            s->nattrs = 0;
            rc = json_tags(d, s, v, path);
        } else if (strcmp(k, "debug") == 0 || strcmp(k, "shared") == 0) {
            if (!json_is_boolean(v))
                return bad_type(d, "a boolean", v, path);
            if (json_is_true(v))
                s->flags |= k[0] == 'd' ? SN_SPAN_F_DEBUG : SN_SPAN_F_SHARED;
        }
        if (rc < 0)
            return rc;
    }
    if (!have_trace || !have_id)
        return fail(d, -EINVAL, "Missing: [%s%s%s] at path %s", have_trace ? "" : "traceId",
                    !have_trace && !have_id ? ", " : "", have_id ? "" : "id", at);
    s->service = s->local.service ? s->local.service : "";
    if (!endpoint_empty(&s->remote, s->remote.service))
        s->flags |= SN_SPAN_F_REMOTE;
    else
        memset(&s->remote, 0, sizeof(s->remote));
    status_from_tags(s);
    return 0;
}

/* A v1 span (binaryAnnotations, or annotations with an endpoint) anywhere in the list. */
static bool is_v1(const json_t *root)
{
    size_t i, j;
    const json_t *o, *a;
    json_array_foreach(root, i, o)
    {
        if (!json_is_object(o))
            continue;
        if (json_object_get(o, "binaryAnnotations"))
            return true;
        const json_t *anns = json_object_get(o, "annotations");
        json_array_foreach(anns, j,
                           a) if (json_is_object(a) && json_object_get(a, "endpoint")) return true;
    }
    return false;
}

int sn_zipkin_decode_json(const void *body, size_t len, struct sn_span_batch *b, char *why,
                          size_t whylen)
{
    struct dec d = {b, why, whylen};
    const char *p = body;
    size_t i = 0;
    json_error_t je;

    if (why && whylen)
        why[0] = '\0';
    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    if (i == len)
        return 0;
    if (p[i] != '[')
        return fail(&d, -EINVAL, "Expected a JSON_V2 encoded list");
    json_t *root = json_loadb(p, len, JSON_ALLOW_NUL, &je);
    if (!root)
        return fail(&d, -EINVAL, "%s reading List<Span> from json", je.text);
    size_t n = json_array_size(root), n0 = b->n;
    uint64_t fixed0 = b->fixed_times;
    int rc = 0;
    if (n > SN_SPAN_MAX_SPANS || b->n + n > SN_SPAN_MAX_SPANS)
        rc = fail(&d, -E2BIG, "more than %u spans in one request", SN_SPAN_MAX_SPANS);
    else if (is_v1(root))
        rc = fail(&d, -EINVAL, "Expected a JSON_V2 encoded list, but received: JSON_V1");
    for (size_t k = 0; k < n && rc == 0; k++)
        rc = json_span(&d, json_array_get(root, k), k);
    json_decref(root);
    return rc < 0 ? undo(b, n0, fixed0, rc) : 0;
}

/* ---- proto3 ------------------------------------------------------------------------------ */

static int malformed(struct dec *d, const char *what, const char *at)
{
    return fail(d, -EINVAL, "Malformed %s at %s reading List<Span> from proto3", what, at);
}

static int wrong_wire(struct dec *d, uint32_t field, int wire, const char *at)
{
    return fail(d, -EINVAL, "Wrong wire type %d for field %u at %s reading List<Span> from proto3",
                wire, field, at);
}

static int proto_endpoint(struct dec *d, const uint8_t *p, size_t n, struct sn_span_endpoint *ep,
                          const char *at)
{
    struct sn_pb r = sn_pb_of(p, n);
    uint32_t f;
    int wire, more;
    const uint8_t *v;
    size_t vlen;
    uint64_t u;

    memset(ep, 0, sizeof(*ep));
    while ((more = sn_pb_next(&r, &f, &wire)) > 0) {
        if (f >= 1 && f <= 3) {
            if (wire != SN_PB_LEN)
                return wrong_wire(d, f, wire, at);
            if (sn_pb_bytes(&r, &v, &vlen) < 0)
                return malformed(d, "endpoint", at);
            if (f == 1) {
                int rc = set_service(d, ep, (const char *)v, vlen, true);
                if (rc < 0)
                    return rc;
            } else if (vlen == 0) {
                continue;
            } else if (f == 2 && vlen == 4) {
                memcpy(ep->ipv4, v, 4);
                ep->has_ipv4 = true;
            } else if (f == 3 && vlen == 16) {
                set_ipv6(ep, v);
            } else {
                return malformed(d, f == 2 ? "ipv4" : "ipv6", at);
            }
        } else if (f == 4) {
            if (wire != SN_PB_VARINT)
                return wrong_wire(d, f, wire, at);
            if (sn_pb_varint(&r, &u) < 0)
                return malformed(d, "endpoint", at);
            int32_t port = (int32_t)(uint32_t)u;
            if (port > 0xffff)
                return fail(d, -EINVAL, "invalid port %" PRId32 " at %s", port, at);
            ep->port = port > 0 ? (uint16_t)port : 0;
        } else if (sn_pb_skip(&r, wire) < 0) {
            return malformed(d, "endpoint", at);
        }
    }
    return more < 0 ? malformed(d, "endpoint", at) : 0;
}

static int proto_annotation(struct dec *d, struct sn_span *s, const uint8_t *p, size_t n,
                            const char *at)
{
    struct sn_pb r = sn_pb_of(p, n);
    uint32_t f;
    int wire, more;
    uint64_t ts = 0;
    const uint8_t *v = NULL;
    size_t vlen = 0;

    while ((more = sn_pb_next(&r, &f, &wire)) > 0) {
        if (f == 1) {
            if (wire != SN_PB_I64)
                return wrong_wire(d, f, wire, at);
            if (sn_pb_fixed64(&r, &ts) < 0)
                return malformed(d, "annotation", at);
        } else if (f == 2) {
            if (wire != SN_PB_LEN)
                return wrong_wire(d, f, wire, at);
            if (sn_pb_bytes(&r, &v, &vlen) < 0)
                return malformed(d, "annotation", at);
        } else if (sn_pb_skip(&r, wire) < 0) {
            return malformed(d, "annotation", at);
        }
    }
    if (more < 0)
        return malformed(d, "annotation", at);
    if (ts == 0 || !v)
        return fail(d, -EINVAL, "Incomplete annotation at %s", at);
    if (ts > MAX_US)
        return fail(d, -EINVAL, "%" PRIu64 " is out of range at %s", ts, at);
    size_t m;
    struct sn_span_event *e = &s->events[s->nevents++];
    e->t_ns = ts * 1000;
    e->name = dup_str(&d->b->arena, (const char *)v, vlen, false, true, &m);
    if (!e->name)
        return nomem(d);
    if (m > SN_SPAN_MAX_VALUE)
        return fail(d, -EINVAL, "annotation longer than %u bytes at %s", SN_SPAN_MAX_VALUE, at);
    return 0;
}

static int proto_tag(struct dec *d, struct sn_span *s, const uint8_t *p, size_t n, const char *at)
{
    struct sn_pb r = sn_pb_of(p, n);
    uint32_t f;
    int wire, more;
    const uint8_t *k = (const uint8_t *)"", *v = (const uint8_t *)"";
    size_t klen = 0, vlen = 0;

    while ((more = sn_pb_next(&r, &f, &wire)) > 0) {
        if (f == 1 || f == 2) {
            if (wire != SN_PB_LEN)
                return wrong_wire(d, f, wire, at);
            if (sn_pb_bytes(&r, f == 1 ? &k : &v, f == 1 ? &klen : &vlen) < 0)
                return malformed(d, "tag", at);
        } else if (sn_pb_skip(&r, wire) < 0) {
            return malformed(d, "tag", at);
        }
    }
    if (more < 0)
        return malformed(d, "tag", at);
    return add_tag(d, s, (const char *)k, klen, (const char *)v, vlen, true, at);
}

/* Counts the repeated fields of a span (annotations, tags) to size its arrays. */
static int proto_count(const uint8_t *p, size_t n, size_t *nann, size_t *ntags)
{
    struct sn_pb r = sn_pb_of(p, n);
    uint32_t f;
    int wire, more;
    *nann = *ntags = 0;
    while ((more = sn_pb_next(&r, &f, &wire)) > 0) {
        *nann += f == 10;
        *ntags += f == 11;
        if (sn_pb_skip(&r, wire) < 0)
            return -1;
    }
    return more;
}

static int proto_span(struct dec *d, const uint8_t *p, size_t n, size_t idx)
{
    char at[32], sub[64];
    struct sn_pb r = sn_pb_of(p, n);
    uint32_t f;
    int wire, more, rc = 0;
    const uint8_t *v;
    size_t vlen, nann, ntags;
    uint64_t u;
    bool have_trace = false, have_id = false;

    snprintf(at, sizeof(at), "$[%zu]", idx);
    if (proto_count(p, n, &nann, &ntags) < 0)
        return malformed(d, "span", at);
    if (nann > SN_SPAN_MAX_EVENTS)
        return fail(d, -EINVAL, "more than %u annotations at %s", SN_SPAN_MAX_EVENTS, at);
    if (ntags > SN_SPAN_MAX_ATTRS)
        return fail(d, -EINVAL, "more than %u tags at %s", SN_SPAN_MAX_ATTRS, at);
    struct sn_span *s = sn_span_batch_add(d->b);
    if (!s)
        return nomem(d);
    s->flags = SN_SPAN_F_ZIPKIN | SN_SPAN_F_NO_START;
    if ((nann && !(s->events = sn_arena_calloc(&d->b->arena, nann, sizeof(*s->events)))) ||
        (ntags && !(s->attrs = sn_arena_calloc(&d->b->arena, ntags, sizeof(*s->attrs)))))
        return nomem(d);

    while ((more = sn_pb_next(&r, &f, &wire)) > 0) {
        int want = f == 4 || f == 7 || f == 12 || f == 13 ? SN_PB_VARINT
                   : f == 6                               ? SN_PB_I64
                   : f <= 13                              ? SN_PB_LEN
                                                          : -1;
        if (want < 0) {
            if (sn_pb_skip(&r, wire) < 0)
                return malformed(d, "span", at);
            continue;
        }
        if (wire != want)
            return wrong_wire(d, f, wire, at);
        if (want == SN_PB_VARINT ? sn_pb_varint(&r, &u) < 0
            : want == SN_PB_I64  ? sn_pb_fixed64(&r, &u) < 0
                                 : sn_pb_bytes(&r, &v, &vlen) < 0)
            return malformed(d, "span", at);
        char hex[33];
        switch (f) {
        case 1: /* trace_id: 8 or 16 bytes, big-endian */
            if (vlen == 0)
                break;
            if (vlen != 8 && vlen != 16) {
                sn_span_id_hex(v, vlen > 16 ? 16 : vlen, hex);
                return bad_id(d, hex, strlen(hex));
            }
            memset(s->trace_id, 0, 16);
            memcpy(s->trace_id + 16 - vlen, v, vlen);
            if (sn_span_id_zero(s->trace_id, 16))
                return bad_id(d, "00000000000000000000000000000000", vlen * 2);
            s->flags &= (uint8_t)~SN_SPAN_F_ID64;
            if (sn_span_id_zero(s->trace_id, 8))
                s->flags |= SN_SPAN_F_ID64;
            have_trace = true;
            break;
        case 2: /* parent_id */
        case 3: /* id */
            if (vlen == 0)
                break;
            if (vlen != 8) {
                sn_span_id_hex(v, vlen > 16 ? 16 : vlen, hex);
                return bad_id(d, hex, strlen(hex));
            }
            sn_span_id_hex(v, 8, hex);
            rc = set_id_hex(d, s, hex, 16, f == 2);
            have_id |= f == 3;
            break;
        case 4:
            s->kind = u == 1   ? SN_KIND_CLIENT
                      : u == 2 ? SN_KIND_SERVER
                      : u == 3 ? SN_KIND_PRODUCER
                      : u == 4 ? SN_KIND_CONSUMER
                               : SN_KIND_UNSPEC;
            break;
        case 5:
            rc = set_name(d, s, (const char *)v, vlen, true, at);
            break;
        case 6:
        case 7:
            if (u > MAX_US)
                return fail(d, -EINVAL, "%" PRIu64 " is out of range at %s", u, at);
            if (f == 7) {
                s->duration_ns = u * 1000;
            } else {
                s->start_ns = u * 1000;
                if (u)
                    s->flags &= (uint8_t)~SN_SPAN_F_NO_START;
                else
                    s->flags |= SN_SPAN_F_NO_START;
            }
            break;
        case 8:
        case 9:
            snprintf(sub, sizeof(sub), "%s.%s", at, f == 8 ? "localEndpoint" : "remoteEndpoint");
            rc = proto_endpoint(d, v, vlen, f == 8 ? &s->local : &s->remote, sub);
            break;
        case 10:
            snprintf(sub, sizeof(sub), "%s.annotations[%u]", at, s->nevents);
            rc = proto_annotation(d, s, v, vlen, sub);
            break;
        case 11:
            snprintf(sub, sizeof(sub), "%s.tags", at);
            rc = proto_tag(d, s, v, vlen, sub);
            break;
        case 12:
        case 13:
            if (u)
                s->flags |= f == 12 ? SN_SPAN_F_DEBUG : SN_SPAN_F_SHARED;
            else
                s->flags &= (uint8_t) ~(f == 12 ? SN_SPAN_F_DEBUG : SN_SPAN_F_SHARED);
            break;
        }
        if (rc < 0)
            return rc;
    }
    if (more < 0)
        return malformed(d, "span", at);
    if (!have_trace || !have_id)
        return fail(d, -EINVAL, "Missing: [%s%s%s] at %s", have_trace ? "" : "traceId",
                    !have_trace && !have_id ? ", " : "", have_id ? "" : "id", at);
    s->service = s->local.service ? s->local.service : "";
    if (!endpoint_empty(&s->remote, s->remote.service))
        s->flags |= SN_SPAN_F_REMOTE;
    else
        memset(&s->remote, 0, sizeof(s->remote));
    status_from_tags(s);
    return 0;
}

int sn_zipkin_decode_proto(const void *body, size_t len, struct sn_span_batch *b, char *why,
                           size_t whylen)
{
    struct dec d = {b, why, whylen};
    struct sn_pb r;
    uint32_t f;
    int wire, more;
    const uint8_t *v;
    size_t vlen, nspans = 0, n0 = b->n;
    uint64_t fixed0 = b->fixed_times;

    if (why && whylen)
        why[0] = '\0';
    if (len == 0) /* (and body may be NULL: sn_pb_of() would add 0 to it) */
        return 0;
    /* first the list's shape and size, so that a body too big is refused before any work */
    r = sn_pb_of(body, len);
    while ((more = sn_pb_next(&r, &f, &wire)) > 0) {
        if (f == 1 && wire != SN_PB_LEN)
            return wrong_wire(&d, f, wire, "$");
        if (sn_pb_skip(&r, wire) < 0)
            return malformed(&d, "list", "$");
        nspans += f == 1;
    }
    if (more < 0)
        return malformed(&d, "list", "$");
    if (nspans > SN_SPAN_MAX_SPANS || b->n + nspans > SN_SPAN_MAX_SPANS)
        return fail(&d, -E2BIG, "more than %u spans in one request", SN_SPAN_MAX_SPANS);
    r = sn_pb_of(body, len);
    for (size_t idx = 0; sn_pb_next(&r, &f, &wire) > 0;) {
        if (f != 1) {
            sn_pb_skip(&r, wire);
            continue;
        }
        sn_pb_bytes(&r, &v, &vlen);
        int rc = proto_span(&d, v, vlen, idx++);
        if (rc < 0)
            return undo(b, n0, fixed0, rc);
    }
    return 0;
}

/* ---- Output: what both writers share ----------------------------------------------------- */

/* A tag to write: key, value bytes. */
struct tag {
    const char *k, *v;
    size_t vlen;
};

/* What §2.5 adds to an OTLP span's tags (nothing for a Zipkin span): at most 7. */
struct derived {
    struct tag t[7];
    size_t n;
    char num[3][24];
};

static void derive_tags(const struct sn_span *s, struct derived *dt)
{
    static const char *const dropped[3] = {"otel.dropped_attributes_count",
                                           "otel.dropped_events_count", "otel.dropped_links_count"};
    const uint32_t counts[3] = {s->dropped_attrs, s->dropped_events, s->dropped_links};

    dt->n = 0;
    if (s->flags & SN_SPAN_F_ZIPKIN)
        return;
    if (s->scope_name && *s->scope_name)
        dt->t[dt->n++] = (struct tag){"otel.scope.name", s->scope_name, strlen(s->scope_name)};
    if (s->scope_version && *s->scope_version)
        dt->t[dt->n++] =
            (struct tag){"otel.scope.version", s->scope_version, strlen(s->scope_version)};
    if (s->status == SN_STATUS_OK || s->status == SN_STATUS_ERROR) {
        const char *c = sn_span_status_name(s->status);
        dt->t[dt->n++] = (struct tag){"otel.status_code", c, strlen(c)};
    }
    if (s->status == SN_STATUS_ERROR) {
        const char *m = s->status_msg ? s->status_msg : "";
        dt->t[dt->n++] = (struct tag){"error", m, strlen(m)};
    }
    for (int i = 0; i < 3; i++)
        if (counts[i]) {
            int w = snprintf(dt->num[i], sizeof(dt->num[i]), "%" PRIu32, counts[i]);
            dt->t[dt->n++] = (struct tag){dropped[i], dt->num[i], (size_t)w};
        }
}

static bool derived_has(const struct derived *dt, const char *key)
{
    for (size_t i = 0; i < dt->n; i++)
        if (strcmp(dt->t[i].k, key) == 0)
            return true;
    return false;
}

/* The first of keys[] that s has as a non-empty string attribute. */
static const struct sn_span_kv *first_attr(const struct sn_span *s, const char *const *keys)
{
    for (; *keys; keys++) {
        const struct sn_span_kv *a = sn_span_attr(s->attrs, s->nattrs, *keys);
        if (a && a->type == SN_ATTR_STRING && a->vlen)
            return a;
    }
    return NULL;
}

/* The local and remote endpoints to write: a Zipkin span's own; an OTLP span's service, and
 * for CLIENT and PRODUCER spans a remote endpoint from the peer attributes (§2.5). */
static void endpoints(const struct sn_span *s, struct sn_span_endpoint *local,
                      struct sn_span_endpoint *remote)
{
    static const char *const svc_keys[] = {"peer.service", "server.address", "net.peer.name", NULL};
    static const char *const ip_keys[] = {"network.peer.address", "net.peer.ip", NULL};
    static const char *const port_keys[] = {"server.port", "network.peer.port", "net.peer.port",
                                            NULL};

    *local = s->local;
    if (!local->service || !*local->service)
        local->service = s->service;
    memset(remote, 0, sizeof(*remote));
    if (s->flags & SN_SPAN_F_REMOTE) {
        *remote = s->remote;
        return;
    }
    if ((s->flags & SN_SPAN_F_ZIPKIN) || (s->kind != SN_KIND_CLIENT && s->kind != SN_KIND_PRODUCER))
        return;
    const struct sn_span_kv *a = first_attr(s, svc_keys);
    if (a)
        remote->service = a->val;
    for (const char *const *k = ip_keys; *k && !remote->has_ipv4 && !remote->has_ipv6; k++)
        if ((a = sn_span_attr(s->attrs, s->nattrs, *k)) && a->type == SN_ATTR_STRING)
            parse_ip(a->val, remote);
    for (const char *const *k = port_keys; *k && !remote->port; k++) {
        a = sn_span_attr(s->attrs, s->nattrs, *k);
        long long port = !a                          ? 0
                         : a->type == SN_ATTR_INT    ? a->i
                         : a->type == SN_ATTR_STRING ? strtoll(a->val, NULL, 10)
                                                     : 0;
        if (port > 0 && port <= 0xffff)
            remote->port = (uint16_t)port;
    }
}

/* An attribute's value as a tag's: its text, or for bytes their base64 in *tmp (malloc'd,
 * the caller frees it). -ENOMEM when that allocation fails. */
static int attr_text(const struct sn_span_kv *a, struct tag *t, char **tmp)
{
    *tmp = NULL;
    t->k = a->key;
    t->v = a->val ? a->val : "";
    t->vlen = a->val ? a->vlen : 0;
    if (a->type == SN_ATTR_BYTES) {
        *tmp = malloc(sn_b64_encoded_len(t->vlen) + 1);
        if (!*tmp)
            return -ENOMEM;
        t->vlen = sn_b64_encode(t->v, t->vlen, *tmp);
        t->v = *tmp;
    }
    return 0;
}

/* ---- Output: JSON ------------------------------------------------------------------------ */

struct out {
    char *buf;
    size_t len, cap;
    int err;
};

static char *room(struct out *o, size_t n)
{
    if (o->err)
        return NULL;
    if (n > SIZE_MAX - o->len - 1) {
        o->err = -ENOMEM;
        return NULL;
    }
    if (o->len + n + 1 > o->cap) {
        char *b = sn_grow(o->buf, &o->cap, o->len + n + 1, 1);
        if (!b) {
            o->err = -ENOMEM;
            return NULL;
        }
        o->buf = b;
    }
    return o->buf + o->len;
}

static void put(struct out *o, const char *s, size_t n)
{
    char *p = room(o, n);
    if (p) {
        memcpy(p, s, n);
        o->len += n;
    }
}

#define PUT_LIT(o, lit) put((o), (lit), sizeof(lit) - 1)

static void put_u64(struct out *o, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%" PRIu64, v);
    put(o, tmp, (size_t)n);
}

/* A JSON string: quotes, backslash and control characters escaped, invalid UTF-8 as U+FFFD,
 * ASCII letters lower-cased when lower. */
static void put_str(struct out *o, const char *s, size_t n, bool lower)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    PUT_LIT(o, "\"");
    while (i < n) {
        size_t j = i; /* a run that goes out as it is */
        while (j < n && p[j] >= 0x20 && p[j] < 0x80 && p[j] != '"' && p[j] != '\\' &&
               !(lower && p[j] >= 'A' && p[j] <= 'Z'))
            j++;
        if (j > i) {
            put(o, s + i, j - i);
            i = j;
            continue;
        }
        unsigned c = p[i];
        if (c >= 'A' && c <= 'Z') {
            char l = (char)(c - 'A' + 'a');
            put(o, &l, 1);
            i++;
        } else if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(o, e, 2);
            i++;
        } else if (c < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            switch (c) {
            case '\n':
                PUT_LIT(o, "\\n");
                break;
            case '\r':
                PUT_LIT(o, "\\r");
                break;
            case '\t':
                PUT_LIT(o, "\\t");
                break;
            case '\b':
                PUT_LIT(o, "\\b");
                break;
            case '\f':
                PUT_LIT(o, "\\f");
                break;
            default:
                put(o, e, 6);
            }
            i++;
        } else {
            size_t k = utf8_len(p + i, n - i);
            if (k) {
                put(o, s + i, k);
                i += k;
            } else {
                PUT_LIT(o, "\xef\xbf\xbd");
                i++;
            }
        }
    }
    PUT_LIT(o, "\"");
}

static void put_cstr(struct out *o, const char *s, bool lower)
{
    put_str(o, s, strlen(s), lower);
}

static void put_key(struct out *o, bool *first, const char *key)
{
    if (!*first)
        PUT_LIT(o, ",");
    *first = false;
    PUT_LIT(o, "\"");
    put(o, key, strlen(key));
    PUT_LIT(o, "\":");
}

static void put_hex(struct out *o, const uint8_t *id, size_t n)
{
    char hex[33];
    sn_span_id_hex(id, n, hex);
    PUT_LIT(o, "\"");
    put(o, hex, 2 * n);
    PUT_LIT(o, "\"");
}

static void put_endpoint(struct out *o, bool *first, const char *key,
                         const struct sn_span_endpoint *ep)
{
    char ip[INET6_ADDRSTRLEN];
    bool f = true;

    if (endpoint_empty(ep, ep->service))
        return;
    put_key(o, first, key);
    PUT_LIT(o, "{");
    if (ep->service && *ep->service) {
        put_key(o, &f, "serviceName");
        put_cstr(o, ep->service, true);
    }
    if (ep->has_ipv4 && inet_ntop(AF_INET, ep->ipv4, ip, sizeof(ip))) {
        put_key(o, &f, "ipv4");
        put_cstr(o, ip, false);
    }
    if (ep->has_ipv6 && inet_ntop(AF_INET6, ep->ipv6, ip, sizeof(ip))) {
        put_key(o, &f, "ipv6");
        put_cstr(o, ip, false);
    }
    if (ep->port) {
        put_key(o, &f, "port");
        put_u64(o, ep->port);
    }
    PUT_LIT(o, "}");
}

static void put_tag(struct out *o, bool *first, const struct tag *t)
{
    if (!*first)
        PUT_LIT(o, ",");
    *first = false;
    put_cstr(o, t->k, false);
    PUT_LIT(o, ":");
    put_str(o, t->v, t->vlen, false);
}

int sn_zipkin_span_json(const struct sn_span *s, char **buf, size_t *len, size_t *cap)
{
    struct out o = {*buf, *len, *cap, 0};
    struct sn_span_endpoint local, remote;
    struct derived dt;
    bool first = true, zipkin = s->flags & SN_SPAN_F_ZIPKIN;

    PUT_LIT(&o, "{");
    put_key(&o, &first, "traceId");
    if (s->flags & SN_SPAN_F_ID64)
        put_hex(&o, s->trace_id + 8, 8);
    else
        put_hex(&o, s->trace_id, 16);
    if (s->flags & SN_SPAN_F_PARENT) {
        put_key(&o, &first, "parentId");
        put_hex(&o, s->parent_id, 8);
    }
    put_key(&o, &first, "id");
    put_hex(&o, s->span_id, 8);
    if (s->kind >= SN_KIND_SERVER && s->kind <= SN_KIND_CONSUMER) {
        put_key(&o, &first, "kind");
        put_cstr(&o, sn_span_kind_name(s->kind), false);
    }
    if (s->name && *s->name) {
        put_key(&o, &first, "name");
        put_cstr(&o, s->name, true);
    }
    if (!(s->flags & SN_SPAN_F_NO_START) && s->start_ns / 1000) {
        put_key(&o, &first, "timestamp");
        put_u64(&o, s->start_ns / 1000);
    }
    if (s->duration_ns) {
        put_key(&o, &first, "duration");
        put_u64(&o, s->duration_ns < 1000 ? 1 : s->duration_ns / 1000);
    }
    endpoints(s, &local, &remote);
    put_endpoint(&o, &first, "localEndpoint", &local);
    put_endpoint(&o, &first, "remoteEndpoint", &remote);
    if (s->nevents) {
        put_key(&o, &first, "annotations");
        PUT_LIT(&o, "[");
        for (uint32_t i = 0; i < s->nevents; i++) {
            if (i)
                PUT_LIT(&o, ",");
            PUT_LIT(&o, "{\"timestamp\":");
            put_u64(&o, s->events[i].t_ns / 1000);
            PUT_LIT(&o, ",\"value\":");
            put_cstr(&o, s->events[i].name ? s->events[i].name : "", false);
            PUT_LIT(&o, "}");
        }
        PUT_LIT(&o, "]");
    }
    derive_tags(s, &dt);
    if (s->nattrs || dt.n) {
        bool tf = true;
        put_key(&o, &first, "tags");
        PUT_LIT(&o, "{");
        for (uint32_t i = 0; i < s->nattrs && !o.err; i++) {
            struct tag t;
            char *tmp;
            if (!zipkin && derived_has(&dt, s->attrs[i].key))
                continue;
            if (attr_text(&s->attrs[i], &t, &tmp) < 0) {
                o.err = -ENOMEM;
                break;
            }
            put_tag(&o, &tf, &t);
            free(tmp);
        }
        for (size_t i = 0; i < dt.n; i++)
            put_tag(&o, &tf, &dt.t[i]);
        PUT_LIT(&o, "}");
    }
    if (s->flags & SN_SPAN_F_DEBUG) {
        put_key(&o, &first, "debug");
        PUT_LIT(&o, "true");
    }
    if (s->flags & SN_SPAN_F_SHARED) {
        put_key(&o, &first, "shared");
        PUT_LIT(&o, "true");
    }
    PUT_LIT(&o, "}");

    *buf = o.buf;
    *cap = o.cap;
    if (o.err) {
        if (o.buf)
            o.buf[*len] = '\0';
        return o.err;
    }
    o.buf[o.len] = '\0';
    *len = o.len;
    return 0;
}

/* ---- Output: proto3 ---------------------------------------------------------------------- */

static void pbw_endpoint(struct sn_pbw *w, uint32_t field, const struct sn_span_endpoint *ep)
{
    if (endpoint_empty(ep, ep->service))
        return;
    size_t m = sn_pbw_begin(w, field);
    if (ep->service && *ep->service) {
        size_t n = strlen(ep->service);
        char *low = malloc(n + 1);
        if (!low) {
            w->err = -ENOMEM;
            return;
        }
        for (size_t i = 0; i <= n; i++)
            low[i] = ep->service[i] >= 'A' && ep->service[i] <= 'Z'
                         ? (char)(ep->service[i] - 'A' + 'a')
                         : ep->service[i];
        sn_pbw_bytes(w, 1, low, n);
        free(low);
    }
    if (ep->has_ipv4)
        sn_pbw_bytes(w, 2, ep->ipv4, 4);
    if (ep->has_ipv6)
        sn_pbw_bytes(w, 3, ep->ipv6, 16);
    if (ep->port)
        sn_pbw_varint(w, 4, ep->port);
    sn_pbw_end(w, m);
}

static void pbw_tag(struct sn_pbw *w, const struct tag *t)
{
    size_t m = sn_pbw_begin(w, 11);
    sn_pbw_string(w, 1, t->k);
    if (t->vlen)
        sn_pbw_bytes(w, 2, t->v, t->vlen);
    sn_pbw_end(w, m);
}

static void pbw_span(struct sn_pbw *w, const struct sn_span *s)
{
    struct sn_span_endpoint local, remote;
    struct derived dt;
    bool zipkin = s->flags & SN_SPAN_F_ZIPKIN;
    size_t m = sn_pbw_begin(w, 1);

    if (s->flags & SN_SPAN_F_ID64)
        sn_pbw_bytes(w, 1, s->trace_id + 8, 8);
    else
        sn_pbw_bytes(w, 1, s->trace_id, 16);
    if (s->flags & SN_SPAN_F_PARENT)
        sn_pbw_bytes(w, 2, s->parent_id, 8);
    sn_pbw_bytes(w, 3, s->span_id, 8);
    static const uint8_t kinds[] = {
        [SN_KIND_CLIENT] = 1, [SN_KIND_SERVER] = 2, [SN_KIND_PRODUCER] = 3, [SN_KIND_CONSUMER] = 4};
    if (s->kind < sizeof(kinds) && kinds[s->kind])
        sn_pbw_varint(w, 4, kinds[s->kind]);
    if (s->name && *s->name) {
        size_t n = strlen(s->name);
        char *low = malloc(n + 1);
        if (!low) {
            w->err = -ENOMEM;
            return;
        }
        for (size_t i = 0; i < n; i++)
            low[i] = s->name[i] >= 'A' && s->name[i] <= 'Z' ? (char)(s->name[i] - 'A' + 'a')
                                                            : s->name[i];
        sn_pbw_bytes(w, 5, low, n);
        free(low);
    }
    if (!(s->flags & SN_SPAN_F_NO_START) && s->start_ns / 1000)
        sn_pbw_fixed64(w, 6, s->start_ns / 1000);
    if (s->duration_ns)
        sn_pbw_varint(w, 7, s->duration_ns < 1000 ? 1 : s->duration_ns / 1000);
    endpoints(s, &local, &remote);
    pbw_endpoint(w, 8, &local);
    pbw_endpoint(w, 9, &remote);
    for (uint32_t i = 0; i < s->nevents; i++) {
        size_t a = sn_pbw_begin(w, 10);
        sn_pbw_fixed64(w, 1, s->events[i].t_ns / 1000);
        const char *name = s->events[i].name ? s->events[i].name : "";
        sn_pbw_bytes(w, 2, name, strlen(name)); /* even "": a value must be there */
        sn_pbw_end(w, a);
    }
    derive_tags(s, &dt);
    for (uint32_t i = 0; i < s->nattrs; i++) {
        struct tag t;
        char *tmp;
        if (!zipkin && derived_has(&dt, s->attrs[i].key))
            continue;
        if (attr_text(&s->attrs[i], &t, &tmp) < 0) {
            w->err = -ENOMEM;
            return;
        }
        pbw_tag(w, &t);
        free(tmp);
    }
    for (size_t i = 0; i < dt.n; i++)
        pbw_tag(w, &dt.t[i]);
    if (s->flags & SN_SPAN_F_DEBUG)
        sn_pbw_varint(w, 12, 1);
    if (s->flags & SN_SPAN_F_SHARED)
        sn_pbw_varint(w, 13, 1);
    sn_pbw_end(w, m);
}

int sn_zipkin_encode_proto(const struct sn_span *spans, size_t n, unsigned char **out, size_t *len)
{
    struct sn_pbw w = {0};
    for (size_t i = 0; i < n && !w.err; i++)
        pbw_span(&w, &spans[i]);
    if (w.err) {
        sn_pbw_fini(&w);
        *out = NULL;
        *len = 0;
        return -ENOMEM;
    }
    *out = w.buf;
    *len = w.len;
    return 0;
}
