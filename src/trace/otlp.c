/*
 * OTLP/HTTP traces (trace/otlp.h): the protobuf and JSON decoders of ExportTraceServiceRequest,
 * the responses, and the protobuf encoder. Field numbers: ../shared/ref/tracing.md §2.6.
 *
 * The protobuf decoder is the hot path (relays and SDKs send protobuf): it walks the wire
 * bytes in place (trace/pb.h) and copies each string once into the batch's arena (from slabs
 * of it: no call per string). A span is walked once: its attributes, events and links are
 * gathered in scratch arrays kept for the request, then copied into the arena in one piece
 * when the span is kept (a body is read from memory, mostly not from the cache: each walk
 * over it costs its misses, so there is one, and the next span's bytes are prefetched). The
 * spans are not counted first: the limit is checked as they come, and a request refused
 * whole (malformed, or over the limit) is counted then, and a malformed one read again with
 * each span's fields checked before what they hold, so that the reason is what walking each
 * level first gives (its structure down to the spans, their number, then each span's fields).
 * Smaller messages (resource, events, links) count their repeated fields first. Array and
 * kvlist values are rendered as JSON text into one scratch buffer per request, then copied.
 * Protobuf lets fields come in any order (a ResourceSpans' resource after its scope_spans, a
 * scope after its spans), so each level reads its own fields before its children (a scope
 * met after spans: those spans are decoded again); a field given twice: the last one wins.
 *
 * The JSON decoder loads the body with jansson and walks the tree the same way, with a path
 * kept for the error messages. Both end in the same checks (span_done()).
 *
 * A span refused for its data is still walked to its end, so that a malformed request is
 * always refused whole whatever comes first; once refused, its strings are not copied.
 *
 * The encoder turns the JSON text of array and kvlist values back into AnyValues with a small
 * parser of that text (jansson would merge the duplicate keys a kvlist may have).
 */
#include "trace/otlp.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/b64.h"
#include "core/grow.h"
#include "trace/pb.h"

#define UNKNOWN_SERVICE "unknown_service" /* OTel's service.name when a resource has none */
#define KEYSHOW         64                /* bytes of an attribute key shown in a reason */

/* An attribute's key as reasons show it: "%.*s" with KEY(k). Formatted only when a span is
 * refused (a snprintf per attribute costs the protobuf decoder a sixth of its time). */
struct key {
    const char *p;
    size_t n;
};
#define KEY(k) (int)((k)->n < KEYSHOW ? (k)->n : KEYSHOW), (k)->p

/* ---- A growable text buffer (the JSON text of values, responses) ------------------------ */

struct buf {
    char *p;      /* malloc'd; NUL-terminated when not empty */
    size_t len;   /* bytes written */
    size_t cap;   /* bytes allocated */
    size_t limit; /* 0, or the most bytes kept: past it, over is set and nothing is added */
    bool over;    /* limit reached */
    int err;      /* -ENOMEM once memory ran short */
};

/* Room for n more bytes (and a NUL) at p + len, or NULL (err or over set). */
static char *buf_room(struct buf *t, size_t n)
{
    if (t->err || t->over)
        return NULL;
    if (t->limit && t->len + n > t->limit) {
        t->over = true;
        return NULL;
    }
    if (t->len + n + 1 > t->cap) {
        char *p = sn_grow(t->p, &t->cap, t->len + n + 1, 1);
        if (!p) {
            t->err = -ENOMEM;
            return NULL;
        }
        t->p = p;
    }
    return t->p + t->len;
}

static void buf_put(struct buf *t, const void *s, size_t n)
{
    char *p = buf_room(t, n);
    if (p) {
        if (n)
            memcpy(p, s, n);
        t->len += n;
        p[n] = '\0';
    }
}

static void buf_c(struct buf *t, char c)
{
    buf_put(t, &c, 1);
}

static void buf_s(struct buf *t, const char *s)
{
    buf_put(t, s, strlen(s));
}

static void buf_reset(struct buf *t, size_t limit)
{
    t->len = 0;
    t->limit = limit;
    t->over = false;
    if (t->p)
        t->p[0] = '\0';
}

/* Length of the valid UTF-8 sequence at s[0..n) (n > 0), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0], cp, min;
    size_t len;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2, cp = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, cp = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

#define REPLACEMENT "\xef\xbf\xbd" /* U+FFFD in UTF-8 */

/* s[0..n) with invalid UTF-8 replaced by U+FFFD; as a JSON string (quoted, escaped) when json. */
static void put_text(struct buf *t, const char *s, size_t n, bool json)
{
    size_t start = 0, i = 0;
    char tmp[8];

    if (json)
        buf_c(t, '"');
    if (!n)
        s = ""; /* may be NULL */
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        size_t l = 1;

        if (c >= 0x80) {
            l = utf8_len((const unsigned char *)s + i, n - i);
            if (l) {
                i += l;
                continue;
            }
            esc = REPLACEMENT, l = 1;
        } else if (!json || (c >= 0x20 && c != '"' && c != '\\')) {
            i++;
            continue;
        } else if (c == '"' || c == '\\') {
            tmp[0] = '\\', tmp[1] = (char)c, tmp[2] = '\0', esc = tmp;
        } else if (c == '\n') {
            esc = "\\n";
        } else if (c == '\r') {
            esc = "\\r";
        } else if (c == '\t') {
            esc = "\\t";
        } else if (c == '\b') {
            esc = "\\b";
        } else if (c == '\f') {
            esc = "\\f";
        } else {
            snprintf(tmp, sizeof(tmp), "\\u%04x", c);
            esc = tmp;
        }
        buf_put(t, s + start, i - start);
        buf_s(t, esc);
        i += l;
        start = i;
    }
    buf_put(t, s + start, n - start);
    if (json)
        buf_c(t, '"');
}

/* Decimal of v into out (room for 21 bytes and a NUL); returns its length. Two digits at a
 * time, written from the end (the protobuf decoder formats every integer attribute). */
static size_t fmt_u64(char *out, uint64_t v)
{
    static const char pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930313233"
        "34353637383940414243444546474849505152535455565758596061626364656667"
        "6869707172737475767778798081828384858687888990919293949596979899";
    size_t n = 1;
    for (uint64_t x = v; x >= 10; x /= 10)
        n++;
    char *p = out + n;
    *p = '\0';
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        *--p = pairs[2 * r + 1];
        *--p = pairs[2 * r];
    }
    if (v >= 10) {
        *--p = pairs[2 * v + 1];
        *--p = pairs[2 * v];
    } else {
        *--p = (char)('0' + v);
    }
    return n;
}

static size_t fmt_i64(char *out, int64_t v)
{
    if (v >= 0)
        return fmt_u64(out, (uint64_t)v);
    out[0] = '-';
    return 1 + fmt_u64(out + 1, -(uint64_t)v);
}

/* A double as JSON text inside an array value: "%.17g", with ".0" when that reads as an
 * integer (so the encoder's parser gives back a double); the strings NaN, +-Infinity. */
static void put_json_double(struct buf *t, double v)
{
    char s[40];

    if (isnan(v)) {
        buf_s(t, "\"NaN\"");
        return;
    }
    if (isinf(v)) {
        buf_s(t, v < 0 ? "\"-Infinity\"" : "\"Infinity\"");
        return;
    }
    int n = snprintf(s, sizeof(s), "%.17g", v);
    buf_put(t, s, (size_t)n);
    if (!strpbrk(s, ".eE"))
        buf_s(t, ".0");
}

static void put_json_bytes(struct buf *t, const void *p, size_t n)
{
    size_t m = sn_b64_encoded_len(n);
    char *o = buf_room(t, m + 2);

    if (o) {
        o[0] = '"';
        sn_b64_encode(p, n, o + 1);
        o[m + 1] = '"';
        o[m + 2] = '\0';
        t->len += m + 2;
    }
}

/* ---- Decoding: the state of one request --------------------------------------------------- */

struct dec {
    struct sn_span_batch *b;
    char *why; /* the caller's, for -EINVAL and -E2BIG */
    size_t whylen;
    bool json;
    struct buf tmp; /* JSON text of one array or kvlist value; base64 in JSON bytes */
    bool deep;      /* a value nested deeper than SN_SPAN_MAX_DEPTH was seen */
    /* where we are, for the reasons: resourceSpans[ri].scopeSpans[si].spans[pi] */
    size_t ri, si, pi;
    int lvl;           /* 0: request, 1: ResourceSpans, 2: ScopeSpans, 3: Span */
    bool rej;          /* the span (resource, scope) being decoded is refused */
    char rej_why[200]; /* the first reason */
    char path[512];    /* JSON: the path of the value being read */
    size_t plen;
    /* attribute keys copied lately (protobuf), so that spans share one copy of each: less to
     * copy here, and the span store's blocks find a key by its pointer */
    const char *kc[64];
    uint32_t kcl[64];
    /* span names copied lately (protobuf), likewise: a request repeats a service's few
     * operations, and the store and the span metrics find a name by its pointer too */
    const char *nc[256];
    uint32_t ncl[256];
    /* protobuf: a span's attributes, events and links gathered in one walk over it, then
     * copied into the arena at once (reused from span to span, freed with the request) */
    struct sn_span_kv *sattr;
    struct sn_span_event *sev;
    struct sn_span_link *slk;
    size_t sattr_cap, sev_cap, slk_cap;
    /* the arena's room strings are copied into, taken from it a slab at a time */
    char *sp, *se;
    size_t nspans; /* protobuf: spans met so far */
    bool prewalk;  /* protobuf: a malformed request read again, each message's own fields
                    * checked before what they hold (the order the reason is chosen by) */
};

/* What a resource and a scope give each of their spans. */
struct group {
    struct sn_span_kv *res;
    uint32_t nres;
    const char *service;
    const char *scope_name, *scope_version;
    bool rrej, srej; /* the resource (scope) is refused: so is each of its spans */
    char rwhy[200], swhy[200];
};

static void loc(const struct dec *d, char *out, size_t n)
{
    int lvl = d->lvl;

    out[0] = '\0';
    if (lvl >= 3)
        snprintf(out, n, "resourceSpans[%zu].scopeSpans[%zu].spans[%zu]", d->ri, d->si, d->pi);
    else if (lvl == 2)
        snprintf(out, n, "resourceSpans[%zu].scopeSpans[%zu]", d->ri, d->si);
    else if (lvl == 1)
        snprintf(out, n, "resourceSpans[%zu]", d->ri);
}

/* Sets why to where we are and the message; returns -EINVAL. */
__attribute__((format(printf, 2, 3))) static int bad(struct dec *d, const char *fmt, ...)
{
    char where[sizeof(d->path)], msg[200];
    va_list ap;

    if (!d->whylen)
        return -EINVAL;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (d->json)
        snprintf(where, sizeof(where), "%s", d->plen ? d->path : "request");
    else
        loc(d, where, sizeof(where));
    if (where[0])
        snprintf(d->why, d->whylen, "%s: %s", where, msg);
    else
        snprintf(d->why, d->whylen, "%s", msg);
    return -EINVAL;
}

/* Refuses the span (resource, scope) being decoded, keeping the first reason. */
__attribute__((format(printf, 2, 3))) static void refuse(struct dec *d, const char *fmt, ...)
{
    va_list ap;

    if (d->rej)
        return;
    d->rej = true;
    va_start(ap, fmt);
    vsnprintf(d->rej_why, sizeof(d->rej_why), fmt, ap);
    va_end(ap);
}

#define STR_SLAB (32u << 10)

/* A NUL-terminated copy of s[0..n) in the batch's arena, from the current slab when it has
 * room (no call per string), else from a new slab (or its own allocation when large). */
static char *str_dup(struct dec *d, const void *s, size_t n)
{
    char *p;
    if ((size_t)(d->se - d->sp) > n) {
        p = d->sp;
        d->sp += n + 1;
    } else if (n >= STR_SLAB / 8) {
        if (!(p = sn_arena_alloc(&d->b->arena, n + 1)))
            return NULL;
    } else {
        if (!(p = sn_arena_alloc(&d->b->arena, STR_SLAB)))
            return NULL;
        d->sp = p + n + 1;
        d->se = p + STR_SLAB;
    }
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* A copy of s[0..n) in the arena into *out ("" when empty, or when the span is refused
 * already: it is not kept). Over SN_SPAN_MAX_VALUE bytes the span is refused (what says
 * which string). 0 or -ENOMEM. */
static int copy_str(struct dec *d, const void *s, size_t n, const char **out, const char *what)
{
    *out = "";
    if (n > SN_SPAN_MAX_VALUE) {
        refuse(d, "%s of %zu bytes, over %u", what, n, SN_SPAN_MAX_VALUE);
        return 0;
    }
    if (n == 0 || d->rej)
        return 0;
    char *p = str_dup(d, s, n);
    if (!p)
        return -ENOMEM;
    *out = p;
    return 0;
}

/* Whether a[0..n) equals b[0..n): eight bytes at a time (keys are short: no call). */
static inline bool bytes_eq(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    uint64_t u, v;
    if (n >= 8) {
        size_t i = 0;
        for (; i + 8 <= n; i += 8) {
            memcpy(&u, x + i, 8);
            memcpy(&v, y + i, 8);
            if (u != v)
                return false;
        }
        memcpy(&u, x + n - 8, 8); /* the tail, overlapping */
        memcpy(&v, y + n - 8, 8);
        return u == v;
    }
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return false;
    return true;
}

/* copy_str() of a key or a name, or the copy of the same string made lately: cache and
 * lens, mask + 1 slots of them. */
static int copy_cached(struct dec *d, const char **cache, uint32_t *lens, size_t mask,
                       const uint8_t *s, size_t n, const char **out, const char *what)
{
    if (n == 0 || n > 255 || d->rej)
        return copy_str(d, s, n, out, what);
    size_t slot = (n * 31u + s[0] * 7u + s[n - 1] + s[n / 2] * 13u + s[n / 4] * 5u) & mask;
    if (cache[slot] && lens[slot] == n && bytes_eq(cache[slot], s, n)) {
        *out = cache[slot];
        return 0;
    }
    int rc = copy_str(d, s, n, out, what);
    if (rc == 0 && **out) {
        cache[slot] = *out;
        lens[slot] = (uint32_t)n;
    }
    return rc;
}

/* copy_str() of an attribute key, or the copy of the same key made lately. */
static int copy_key(struct dec *d, const uint8_t *s, size_t n, const char **out)
{
    return copy_cached(d, d->kc, d->kcl, 63, s, n, out, "attribute key");
}

/* An array of n zeroed elements in the arena into *out (NULL when n is 0). */
static int alloc_array(struct dec *d, size_t n, size_t size, void **out)
{
    *out = NULL;
    if (!n)
        return 0;
    *out = sn_arena_calloc(&d->b->arena, n, size);
    return *out ? 0 : -ENOMEM;
}

/* Checks common to both encodings once an attribute's value is known. key is for reasons. */
static int attr_set_text(struct dec *d, struct sn_span_kv *a, const struct key *key,
                         const char *what)
{
    /* a->type is ARRAY or KVLIST and d->tmp holds the text */
    if (d->tmp.err)
        return d->tmp.err;
    if (d->deep) {
        refuse(d, "%s \"%.*s\": value nested deeper than %u", what, KEY(key), SN_SPAN_MAX_DEPTH);
        return 0;
    }
    if (d->tmp.over) {
        refuse(d, "%s \"%.*s\": value over %u bytes", what, KEY(key), SN_SPAN_MAX_VALUE);
        return 0;
    }
    if (!a || d->rej)
        return 0;
    char *p = str_dup(d, d->tmp.p, d->tmp.len);
    if (!p)
        return -ENOMEM;
    a->val = p;
    a->vlen = (uint32_t)d->tmp.len;
    return 0;
}

static int attr_set_int(struct dec *d, struct sn_span_kv *a, int64_t v)
{
    char s[24];
    size_t n = fmt_i64(s, v);

    a->type = SN_ATTR_INT;
    a->i = v;
    if (d->rej)
        return 0;
    char *p = str_dup(d, s, n);
    if (!p)
        return -ENOMEM;
    a->val = p;
    a->vlen = (uint32_t)n;
    return 0;
}

static int attr_set_double(struct dec *d, struct sn_span_kv *a, double v)
{
    char s[40];
    int n = snprintf(s, sizeof(s), "%.17g", v);

    a->type = SN_ATTR_DOUBLE;
    a->d = v;
    if (d->rej)
        return 0;
    char *p = str_dup(d, s, (size_t)n);
    if (!p)
        return -ENOMEM;
    a->val = p;
    a->vlen = (uint32_t)n;
    return 0;
}

static void attr_set_bool(struct sn_span_kv *a, bool v)
{
    a->type = SN_ATTR_BOOL;
    a->val = v ? "true" : "false";
    a->vlen = v ? 4 : 5;
}

/* A string or bytes value s[0..n). */
static int attr_set_str(struct dec *d, struct sn_span_kv *a, int type, const void *s, size_t n,
                        const struct key *key, const char *what)
{
    if (n > SN_SPAN_MAX_VALUE) {
        refuse(d, "%s \"%.*s\": value of %zu bytes, over %u", what, KEY(key), n, SN_SPAN_MAX_VALUE);
        return 0;
    }
    if (!a)
        return 0;
    a->type = (uint8_t)type;
    if (d->rej || n == 0)
        return 0;
    char *p = str_dup(d, s, n);
    if (!p)
        return -ENOMEM;
    a->val = p;
    a->vlen = (uint32_t)n;
    return 0;
}

static void attr_init(struct sn_span_kv *a)
{
    memset(a, 0, sizeof(*a));
    a->key = a->val = "";
    a->type = SN_ATTR_EMPTY;
}

/* The service of a resource: its service.name string, else OTel's "unknown_service". */
static const char *service_of(const struct sn_span_kv *res, uint32_t n)
{
    const struct sn_span_kv *a = sn_span_attr(res, n, "service.name");
    return a && a->type == SN_ATTR_STRING ? a->val : UNKNOWN_SERVICE;
}

#define NOT_HEX ((size_t)-1) /* a JSON id's length when it is not hex */

/* Starts a span: refused already when its resource or scope is. */
static void span_begin(struct dec *d, const struct group *g)
{
    d->rej = g->rrej || g->srej;
}

/* Ends a span: the checks common to both encodings (ids of tid_len and sid_len bytes, or
 * NOT_HEX), then keeps it (true) or refuses it (false). */
static bool span_done(struct dec *d, const struct group *g, struct sn_span *s, size_t tid_len,
                      size_t sid_len, uint64_t end)
{
    if (tid_len == NOT_HEX)
        refuse(d, "invalid trace id (not hex)");
    else if (tid_len != 16)
        refuse(d, "invalid trace id (%zu bytes)", tid_len);
    else if (sn_span_id_zero(s->trace_id, 16))
        refuse(d, "invalid trace id (zero)");
    if (sid_len == NOT_HEX)
        refuse(d, "invalid span id (not hex)");
    else if (sid_len != 8)
        refuse(d, "invalid span id (%zu bytes)", sid_len);
    else if (sn_span_id_zero(s->span_id, 8))
        refuse(d, "invalid span id (zero)");
    if (end < s->start_ns)
        refuse(d, "end before start");
    else
        s->duration_ns = end - s->start_ns;
    s->service = s->local.service = g->service;
    s->res = g->res;
    s->nres = g->nres;
    s->scope_name = g->scope_name;
    s->scope_version = g->scope_version;

    const char *why = g->rrej ? g->rwhy : g->srej ? g->swhy : d->rej ? d->rej_why : NULL;
    if (why) {
        char where[160];
        loc(d, where, sizeof(where));
        d->b->n--;
        sn_span_batch_reject(d->b, "%s: %s", where, why);
        return false;
    }
    return true;
}

/* A parent id of n bytes at p (n is 0: none). */
static void set_parent(struct dec *d, struct sn_span *s, const uint8_t *p, size_t n)
{
    s->flags &= (uint8_t)~SN_SPAN_F_PARENT;
    memset(s->parent_id, 0, 8);
    if (n == 0)
        return;
    if (n != 8) {
        refuse(d, "invalid parent span id (%zu bytes)", n);
        return;
    }
    memcpy(s->parent_id, p, 8);
    if (!sn_span_id_zero(p, 8))
        s->flags |= SN_SPAN_F_PARENT;
}

/* ---- Protobuf ----------------------------------------------------------------------------- */

/* A message's known fields: wt[f] is the wire type of field f plus one (0: unknown). */
struct msgdef {
    const char *name;
    uint32_t n;
    int8_t wt[17];
};

#define V   (SN_PB_VARINT + 1)
#define F64 (SN_PB_I64 + 1)
#define L   (SN_PB_LEN + 1)
#define F32 (SN_PB_I32 + 1)
/* Known fields by number (tracing.md §2.6). Those left out (Resource.entity_refs,
 * KeyValue.key_strindex, AnyValue.string_value_strindex: profiles only) are skipped as unknown. */
static const struct msgdef M_REQ = {"ExportTraceServiceRequest", 2, {0, L}};
static const struct msgdef M_RSPANS = {"ResourceSpans", 4, {0, L, L, L}};
static const struct msgdef M_RESOURCE = {"Resource", 3, {0, L, V}};
static const struct msgdef M_SSPANS = {"ScopeSpans", 4, {0, L, L, L}};
static const struct msgdef M_SCOPE = {"InstrumentationScope", 5, {0, L, L, L, V}};
static const struct msgdef M_SPAN = {
    "Span", 17, {0, L, L, L, L, L, V, F64, F64, L, V, L, V, L, V, L, F32}};
static const struct msgdef M_EVENT = {"Span.Event", 5, {0, F64, L, L, V}};
static const struct msgdef M_LINK = {"Span.Link", 7, {0, L, L, L, L, V, F32}};
static const struct msgdef M_STATUS = {"Status", 4, {0, 0, L, V}}; /* 1: reserved */
static const struct msgdef M_KV = {"KeyValue", 3, {0, L, L}};
static const struct msgdef M_ANY = {"AnyValue", 8, {0, L, V, V, F64, L, L, L}};
static const struct msgdef M_ARRAY = {"ArrayValue", 2, {0, L}};
static const struct msgdef M_KVLIST = {"KeyValueList", 2, {0, L}};
#undef V
#undef F64
#undef L
#undef F32

/* One field's value: u for varint and fixed ones, p[0..n) for length-delimited ones. */
struct pbval {
    uint64_t u;
    const uint8_t *p;
    size_t n;
};

/* The value of a field of wire type w at r into v: 0 or -1 (truncated, malformed). */
static inline int pb_value(struct sn_pb *r, int w, struct pbval *v)
{
    uint32_t u32;
    int rc;

    switch (w) {
    case SN_PB_VARINT:
        return sn_pb_varint(r, &v->u);
    case SN_PB_I64:
        return sn_pb_fixed64(r, &v->u);
    case SN_PB_I32:
        rc = sn_pb_fixed32(r, &u32);
        v->u = u32;
        return rc;
    default:
        return sn_pb_bytes(r, &v->p, &v->n);
    }
}

/* The next known field of a message m read by r, its value read: 1, or 0 at the end, or
 * -EINVAL (truncated, malformed, or a known field with another wire type). Unknown fields are
 * skipped. The common case (a one-byte tag of a known field, a one-byte length or varint) is
 * read here; the rest goes through trace/pb.h. */
static inline int pb_next(struct dec *d, struct sn_pb *r, const struct msgdef *m, uint32_t *f,
                          struct pbval *v)
{
    int w, rc;

    for (;;) {
        const uint8_t *q = r->p, *end = r->end;
        uint8_t t;
        if (q < end && (t = *q) < 0x80 && (t >> 3) < m->n && m->wt[t >> 3] == (t & 7) + 1 &&
            (t >> 3)) {
            *f = t >> 3;
            w = t & 7;
            r->p = ++q;
            if (w == SN_PB_LEN) { /* a length of one or two bytes, within the message */
                size_t n;
                if (q < end && *q < 0x80)
                    n = *q++;
                else if (end - q >= 2 && q[1] < 0x80)
                    n = (size_t)(q[0] & 0x7f) | (size_t)q[1] << 7, q += 2;
                else
                    n = SIZE_MAX;
                if (n <= (size_t)(end - q)) {
                    v->p = q;
                    v->n = n;
                    r->p = q + n;
                    return 1;
                }
            } else if (w == SN_PB_VARINT) {
                if (q < end && *q < 0x80) {
                    v->u = *q;
                    r->p = q + 1;
                    return 1;
                }
            } else if (w == SN_PB_I64 && end - q >= 8) {
                v->u = (uint64_t)q[0] | (uint64_t)q[1] << 8 | (uint64_t)q[2] << 16 |
                       (uint64_t)q[3] << 24 | (uint64_t)q[4] << 32 | (uint64_t)q[5] << 40 |
                       (uint64_t)q[6] << 48 | (uint64_t)q[7] << 56;
                r->p = q + 8;
                return 1;
            }
        } else {
            rc = sn_pb_next(r, f, &w);
            if (rc == 0)
                return 0;
            if (rc < 0)
                return bad(d, "malformed field tag in %s", m->name);
            if (*f >= m->n || !m->wt[*f]) {
                if (sn_pb_skip(r, w) < 0)
                    return bad(d, "field %" PRIu32 " of %s is truncated or malformed", *f, m->name);
                continue;
            }
            if (w != m->wt[*f] - 1)
                return bad(d, "field %" PRIu32 " of %s has wire type %d", *f, m->name, w);
        }
        if (pb_value(r, w, v) < 0)
            return bad(d, "field %" PRIu32 " of %s is truncated or malformed", *f, m->name);
        return 1;
    }
}

/* How many times field f occurs in the message p[0..n) (of type m), into *count. */
static int pb_count(struct dec *d, const uint8_t *p, size_t n, const struct msgdef *m, uint32_t f,
                    size_t *count)
{
    struct sn_pb r = sn_pb_of(p, n);
    struct pbval v = {0};
    uint32_t g;
    int rc;

    *count = 0;
    while ((rc = pb_next(d, &r, m, &g, &v)) > 0)
        *count += g == f;
    return rc;
}

static int pb_any(struct dec *d, const uint8_t *p, size_t n, struct sn_span_kv *a,
                  const struct key *key, const char *what);

/* Appends the JSON text of the AnyValue p[0..n) to d->tmp; depth: of arrays around it. */
static int pb_render_any(struct dec *d, const uint8_t *p, size_t n, unsigned depth);

/* Appends the JSON text of an ArrayValue (kvlist false) or KeyValueList (true) to d->tmp. */
static int pb_render_list(struct dec *d, const uint8_t *p, size_t n, bool kvlist, unsigned depth)
{
    struct sn_pb r = sn_pb_of(p, n);
    struct pbval v = {0}, kv = {0};
    uint32_t f;
    int rc;
    bool first = true;

    if (depth > SN_SPAN_MAX_DEPTH) {
        d->deep = true; /* not read further: the span is refused */
        return 0;
    }
    buf_c(&d->tmp, kvlist ? '{' : '[');
    while ((rc = pb_next(d, &r, kvlist ? &M_KVLIST : &M_ARRAY, &f, &v)) > 0) {
        if (!first)
            buf_c(&d->tmp, ',');
        first = false;
        if (!kvlist) {
            if ((rc = pb_render_any(d, v.p, v.n, depth)) < 0)
                return rc;
            continue;
        }
        struct sn_pb k = sn_pb_of(v.p, v.n);
        const uint8_t *key = NULL, *val = NULL;
        size_t klen = 0, vlen = 0;
        bool has_val = false;
        while ((rc = pb_next(d, &k, &M_KV, &f, &kv)) > 0) {
            if (f == 1)
                key = kv.p, klen = kv.n;
            else
                val = kv.p, vlen = kv.n, has_val = true;
        }
        if (rc < 0)
            return rc;
        put_text(&d->tmp, (const char *)key, klen, true);
        buf_c(&d->tmp, ':');
        if (!has_val)
            buf_s(&d->tmp, "null");
        else if ((rc = pb_render_any(d, val, vlen, depth)) < 0)
            return rc;
    }
    if (rc < 0)
        return rc;
    buf_c(&d->tmp, kvlist ? '}' : ']');
    return 0;
}

static int pb_render_any(struct dec *d, const uint8_t *p, size_t n, unsigned depth)
{
    struct sn_pb r = sn_pb_of(p, n);
    struct pbval v, last = {0};
    uint32_t f, which = 0;
    int rc;
    char s[24];
    double x;

    while ((rc = pb_next(d, &r, &M_ANY, &f, &v)) > 0)
        which = f, last = v; /* a oneof: the last one set wins */
    if (rc < 0)
        return rc;
    switch (which) {
    case 0:
        buf_s(&d->tmp, "null");
        break;
    case 1:
        put_text(&d->tmp, (const char *)last.p, last.n, true);
        break;
    case 2:
        buf_s(&d->tmp, last.u ? "true" : "false");
        break;
    case 3:
        buf_put(&d->tmp, s, fmt_i64(s, (int64_t)last.u));
        break;
    case 4:
        memcpy(&x, &last.u, sizeof(x));
        put_json_double(&d->tmp, x);
        break;
    case 5:
    case 6:
        return pb_render_list(d, last.p, last.n, which == 6, depth + 1);
    case 7:
        put_json_bytes(&d->tmp, last.p, last.n);
        break;
    }
    return 0;
}

/* A length of one or two varint bytes at p (before end): how many bytes it took, its value
 * in *len; 0 when it is longer or runs past end (read the slow way then). */
static inline size_t short_len(const uint8_t *p, const uint8_t *end, size_t *len)
{
    if (p < end && *p < 0x80) {
        *len = *p;
        return 1;
    }
    if (end - p >= 2 && p[1] < 0x80) {
        *len = (size_t)(p[0] & 0x7f) | (size_t)p[1] << 7;
        return 2;
    }
    return 0;
}

/* The AnyValue p[0..n) of attribute key into a (NULL: checked only). */
static int pb_any(struct dec *d, const uint8_t *p, size_t n, struct sn_span_kv *a,
                  const struct key *key, const char *what)
{
    struct sn_pb r = sn_pb_of(p, n);
    struct pbval v, last = {0};
    uint32_t f, which = 0;
    int rc;
    struct sn_span_kv dummy;
    double x;

    struct sn_pb q;
    size_t h, len;
    if (n >= 2 && p[0] == 0x0a && (h = short_len(p + 1, p + n, &len)) && 1 + h + len == n) {
        which = 1; /* the usual shapes read at once: a string_value alone */
        last.p = p + 1 + h;
        last.n = len;
    } else if (n >= 2 && p[0] == 0x18 &&
               (q = sn_pb_of(p + 1, n - 1), sn_pb_varint(&q, &last.u)) == 0 && q.p == q.end) {
        which = 3; /* or an int_value alone */
    } else {
        while ((rc = pb_next(d, &r, &M_ANY, &f, &v)) > 0)
            which = f, last = v;
        if (rc < 0)
            return rc;
    }
    if (!a) {
        attr_init(&dummy);
        a = &dummy;
    }
    switch (which) {
    case 1:
        return attr_set_str(d, a == &dummy ? NULL : a, SN_ATTR_STRING, last.p, last.n, key, what);
    case 2:
        attr_set_bool(a, last.u != 0);
        return 0;
    case 3:
        return attr_set_int(d, a, (int64_t)last.u);
    case 4:
        memcpy(&x, &last.u, sizeof(x));
        return attr_set_double(d, a, x);
    case 5:
    case 6:
        a->type = which == 5 ? SN_ATTR_ARRAY : SN_ATTR_KVLIST;
        buf_reset(&d->tmp, SN_SPAN_MAX_VALUE);
        d->deep = false;
        if ((rc = pb_render_list(d, last.p, last.n, which == 6, 1)) < 0)
            return rc;
        return attr_set_text(d, a == &dummy ? NULL : a, key, what);
    case 7:
        return attr_set_str(d, a == &dummy ? NULL : a, SN_ATTR_BYTES, last.p, last.n, key, what);
    }
    return 0;
}

/* The KeyValue p[0..n) into a (NULL: checked only); what names the list in reasons. */
static int pb_kv(struct dec *d, const uint8_t *p, size_t n, struct sn_span_kv *a, const char *what)
{
    struct sn_pb r = sn_pb_of(p, n);
    struct pbval v = {0};
    uint32_t f;
    int rc;
    const uint8_t *key = NULL, *val = NULL;
    size_t klen = 0, vlen = 0;
    const uint8_t *end = p + n;
    size_t h, vh;
    if (n >= 4 && p[0] == 0x0a && p[1] < 0x80 && (size_t)p[1] + 4 <= n && p[p[1] + 2] == 0x12 &&
        (vh = short_len(p + p[1] + 3, end, &vlen)) && (size_t)p[1] + 3 + vh + vlen == n) {
        /* the usual shape read at once: a key under 128 bytes, then a value */
        key = p + 2;
        klen = p[1];
        val = p + klen + 3 + vh;
    } else if (n >= 4 && p[0] == 0x0a && (h = short_len(p + 1, end, &klen)) &&
               1 + h + klen + 2 <= n && p[1 + h + klen] == 0x12 &&
               (vh = short_len(p + 2 + h + klen, end, &vlen)) && 2 + h + klen + vh + vlen == n) {
        key = p + 1 + h; /* or a longer key */
        val = key + klen + 1 + vh;
    } else {
        while ((rc = pb_next(d, &r, &M_KV, &f, &v)) > 0) {
            if (f == 1)
                key = v.p, klen = v.n;
            else
                val = v.p, vlen = v.n;
        }
        if (rc < 0)
            return rc;
    }
    struct key k = {key ? (const char *)key : "", klen};
    if (a) {
        attr_init(a);
        if ((rc = copy_key(d, key, klen, &a->key)) < 0)
            return rc;
    }
    if (!val)
        return 0;
    return pb_any(d, val, vlen, a, &k, what);
}

/* The attribute array for count KeyValues of a list (what) into *out: NULL when there are
 * none, or too many (the span is refused: they are then only checked). */
static int attrs_alloc(struct dec *d, size_t count, struct sn_span_kv **out, const char *what)
{
    *out = NULL;
    if (count > SN_SPAN_MAX_ATTRS) {
        refuse(d, "%zu %ss, over %u", count, what, SN_SPAN_MAX_ATTRS);
        return 0;
    }
    if (d->rej) /* not kept: checked only */
        return 0;
    return alloc_array(d, count, sizeof(**out), (void **)out);
}

/* Adds the KeyValue p[0..n) to attrs (NULL: check only). */
static int pb_kv_add(struct dec *d, const uint8_t *p, size_t n, struct sn_span_kv *attrs,
                     uint32_t *nattrs, const char *what)
{
    return pb_kv(d, p, n, attrs ? &attrs[(*nattrs)++] : NULL, what);
}

static int pb_event(struct dec *d, const uint8_t *p, size_t n, struct sn_span_event *ev)
{
    struct sn_pb r = sn_pb_of(p, n);
    struct pbval v = {0};
    uint32_t f;
    int rc;
    size_t count;
    struct sn_span_kv *attrs = NULL;
    uint32_t na = 0;
    const char *name = "";

    if ((rc = pb_count(d, p, n, &M_EVENT, 3, &count)) < 0)
        return rc;
    if (ev && (rc = attrs_alloc(d, count, &attrs, "event attribute")) < 0)
        return rc;
    while ((rc = pb_next(d, &r, &M_EVENT, &f, &v)) > 0) {
        switch (f) {
        case 1:
            if (ev)
                ev->t_ns = v.u;
            break;
        case 2:
            if ((rc = copy_str(d, v.p, v.n, &name, "event name")) < 0)
                return rc;
            break;
        case 3:
            if ((rc = pb_kv_add(d, v.p, v.n, attrs, &na, "event attribute")) < 0)
                return rc;
            break;
        case 4:
            if (ev)
                ev->dropped_attrs = (uint32_t)v.u;
            break;
        }
    }
    if (rc < 0)
        return rc;
    if (ev) {
        ev->name = name;
        ev->attrs = attrs;
        ev->nattrs = na;
    }
    return 0;
}

static int pb_link(struct dec *d, const uint8_t *p, size_t n, struct sn_span_link *lk)
{
    struct sn_pb r = sn_pb_of(p, n);
    struct pbval v = {0};
    uint32_t f;
    int rc;
    size_t count;
    struct sn_span_kv *attrs = NULL;
    uint32_t na = 0;
    const char *ts = "";
    struct sn_span_link tmp;

    if (!lk)
        lk = &tmp;
    memset(lk, 0, sizeof(*lk));
    if ((rc = pb_count(d, p, n, &M_LINK, 4, &count)) < 0)
        return rc;
    if (lk != &tmp && (rc = attrs_alloc(d, count, &attrs, "link attribute")) < 0)
        return rc;
    while ((rc = pb_next(d, &r, &M_LINK, &f, &v)) > 0) {
        switch (f) {
        case 1:
            memset(lk->trace_id, 0, 16);
            if (v.n == 16)
                memcpy(lk->trace_id, v.p, 16);
            else if (v.n)
                refuse(d, "invalid link trace id (%zu bytes)", v.n);
            break;
        case 2:
            memset(lk->span_id, 0, 8);
            if (v.n == 8)
                memcpy(lk->span_id, v.p, 8);
            else if (v.n)
                refuse(d, "invalid link span id (%zu bytes)", v.n);
            break;
        case 3:
            if ((rc = copy_str(d, v.p, v.n, &ts, "link trace state")) < 0)
                return rc;
            break;
        case 4:
            if ((rc = pb_kv_add(d, v.p, v.n, attrs, &na, "link attribute")) < 0)
                return rc;
            break;
        case 5:
            lk->dropped_attrs = (uint32_t)v.u;
            break;
        case 6:
            lk->flags = (uint32_t)v.u;
            break;
        }
    }
    if (rc < 0)
        return rc;
    lk->trace_state = ts;
    lk->attrs = attrs;
    lk->nattrs = na;
    return 0;
}

static int pb_status(struct dec *d, const uint8_t *p, size_t n, struct sn_span *s)
{
    struct sn_pb r = sn_pb_of(p, n);
    struct pbval v = {0};
    uint32_t f;
    int rc;

    while ((rc = pb_next(d, &r, &M_STATUS, &f, &v)) > 0) {
        if (f == 2) {
            if ((rc = copy_str(d, v.p, v.n, &s->status_msg, "status message")) < 0)
                return rc;
        } else if (v.u > SN_STATUS_ERROR) {
            refuse(d, "invalid status code %" PRId64, (int64_t)v.u);
        } else {
            s->status = (uint8_t)v.u;
        }
    }
    return rc;
}

/* Room for one more element at index i of a scratch array (*arr, *cap of size bytes each).
 * 0 or -ENOMEM. */
static int scratch_room(void **arr, size_t *cap, size_t i, size_t size)
{
    if (i < *cap)
        return 0;
    void *a = sn_grow(*arr, cap, i + 1, size);
    if (!a)
        return -ENOMEM;
    *arr = a;
    return 0;
}

/* A copy of scratch[0..n) (elements of size bytes) in the arena into *out (NULL when n is 0). */
static int scratch_keep(struct dec *d, const void *scratch, size_t n, size_t size, void **out)
{
    *out = NULL;
    if (!n)
        return 0;
    if (!(*out = sn_arena_alloc(&d->b->arena, n * size)))
        return -ENOMEM;
    memcpy(*out, scratch, n * size);
    return 0;
}

/* One walk over the span (p[0..n), within a message that ends at lim): its attributes, events and
 * links are gathered in the request's scratch arrays (as many as the limits keep), then copied into
 * the arena when the span is kept. A span over a limit is refused with the reason the limit gives,
 * as if it had been checked first (its lists are then only checked, not kept). */
static int pb_span(struct dec *d, const struct group *g, const uint8_t *p, size_t n,
                   const uint8_t *lim)
{
    struct sn_pb r = sn_pb_of(p, n);

    /* the next span's bytes asked of memory now, while this one is read (a request's body
     * is read once, and mostly not in the cache: its misses overlap this way) */
    for (size_t off = 0; off < n && (size_t)(lim - (p + n)) > off; off += 64)
        __builtin_prefetch(p + n + off);
    struct pbval v = {0};
    uint32_t f;
    int rc;
    size_t nat = 0, nev = 0, nli = 0, tid_len = 0, sid_len = 0;
    uint64_t end = 0;

    if (++d->nspans > SN_SPAN_MAX_SPANS)
        return -E2BIG; /* sn_otlp_decode() counts them all for the reason */
    if (d->prewalk) {
        struct sn_pb w = sn_pb_of(p, n);
        while ((rc = pb_next(d, &w, &M_SPAN, &f, &v)) > 0)
            ;
        if (rc < 0)
            return rc;
    }
    struct sn_span *s = sn_span_batch_add(d->b);
    if (!s)
        return -ENOMEM;
    span_begin(d, g);
    bool keep = !d->rej; /* refused with its resource or scope: its lists are checked only */
    while ((rc = pb_next(d, &r, &M_SPAN, &f, &v)) > 0) {
        switch (f) {
        case 1:
            tid_len = v.n;
            if (v.n == 16)
                memcpy(s->trace_id, v.p, 16);
            break;
        case 2:
            sid_len = v.n;
            if (v.n == 8)
                memcpy(s->span_id, v.p, 8);
            break;
        case 3:
            rc = copy_str(d, v.p, v.n, &s->trace_state, "trace state");
            break;
        case 4:
            set_parent(d, s, v.p, v.n);
            break;
        case 5:
            rc = copy_cached(d, d->nc, d->ncl, 255, v.p, v.n, &s->name, "name");
            break;
        case 6:
            if (v.u > SN_KIND_CONSUMER)
                refuse(d, "invalid kind %" PRId64, (int64_t)v.u);
            else
                s->kind = (uint8_t)v.u;
            break;
        case 7:
            s->start_ns = v.u;
            break;
        case 8:
            end = v.u;
            break;
        case 9:
            if (keep && nat < SN_SPAN_MAX_ATTRS &&
                !(rc = scratch_room((void **)&d->sattr, &d->sattr_cap, nat, sizeof(*d->sattr))))
                rc = pb_kv(d, v.p, v.n, &d->sattr[nat], "attribute");
            else if (!rc)
                rc = pb_kv(d, v.p, v.n, NULL, "attribute");
            nat++;
            break;
        case 10:
            s->dropped_attrs = (uint32_t)v.u;
            break;
        case 11:
            if (keep && nev < SN_SPAN_MAX_EVENTS &&
                !(rc = scratch_room((void **)&d->sev, &d->sev_cap, nev, sizeof(*d->sev)))) {
                memset(&d->sev[nev], 0, sizeof(*d->sev));
                rc = pb_event(d, v.p, v.n, &d->sev[nev]);
            } else if (!rc) {
                rc = pb_event(d, v.p, v.n, NULL);
            }
            nev++;
            break;
        case 12:
            s->dropped_events = (uint32_t)v.u;
            break;
        case 13:
            if (keep && nli < SN_SPAN_MAX_LINKS &&
                !(rc = scratch_room((void **)&d->slk, &d->slk_cap, nli, sizeof(*d->slk))))
                rc = pb_link(d, v.p, v.n, &d->slk[nli]);
            else if (!rc)
                rc = pb_link(d, v.p, v.n, NULL);
            nli++;
            break;
        case 14:
            s->dropped_links = (uint32_t)v.u;
            break;
        case 15:
            rc = pb_status(d, v.p, v.n, s);
            break;
        case 16:
            s->otlp_flags = (uint32_t)v.u;
            break;
        }
        if (rc < 0)
            return rc;
    }
    if (rc < 0)
        return rc;
    /* a list over its limit: the reason the span is refused, whatever else was found */
    if (keep && (nat > SN_SPAN_MAX_ATTRS || nev > SN_SPAN_MAX_EVENTS || nli > SN_SPAN_MAX_LINKS)) {
        d->rej = false;
        if (nat > SN_SPAN_MAX_ATTRS)
            refuse(d, "%zu %ss, over %u", nat, "attribute", SN_SPAN_MAX_ATTRS);
        else if (nev > SN_SPAN_MAX_EVENTS)
            refuse(d, "%zu events, over %u", nev, SN_SPAN_MAX_EVENTS);
        else
            refuse(d, "%zu links, over %u", nli, SN_SPAN_MAX_LINKS);
    }
    if (!span_done(d, g, s, tid_len, sid_len, end))
        return 0;
    s->nattrs = (uint32_t)nat;
    s->nevents = (uint32_t)nev;
    s->nlinks = (uint32_t)nli;
    if ((rc = scratch_keep(d, d->sattr, nat, sizeof(*d->sattr), (void **)&s->attrs)) < 0 ||
        (rc = scratch_keep(d, d->sev, nev, sizeof(*d->sev), (void **)&s->events)) < 0 ||
        (rc = scratch_keep(d, d->slk, nli, sizeof(*d->slk), (void **)&s->links)) < 0)
        return rc;
    return 0;
}

/* The InstrumentationScope p[0..n) into g (its strings; refused: d->rej). */
static int pb_scope(struct dec *d, struct group *g, const uint8_t *p, size_t n)
{
    struct sn_pb rs = sn_pb_of(p, n);
    struct pbval sv = {0};
    uint32_t sf;
    int rc;

    while ((rc = pb_next(d, &rs, &M_SCOPE, &sf, &sv)) > 0) {
        if (sf == 1)
            rc = copy_str(d, sv.p, sv.n, &g->scope_name, "scope name");
        else if (sf == 2)
            rc = copy_str(d, sv.p, sv.n, &g->scope_version, "scope version");
        if (rc < 0)
            return rc;
    }
    return rc;
}

/* A ScopeSpans: its scope, then its spans. One walk when the scope comes before the spans
 * (as SDKs write it); when a scope comes after a span, the spans decoded so far are taken
 * back and the message read again, the scope first (each scope given: the last one wins). */
static int pb_scope_spans(struct dec *d, struct group *g, const uint8_t *p, size_t n)
{
    struct sn_pb r = sn_pb_of(p, n);
    struct pbval v = {0};
    uint32_t f;
    int rc = 0;
    size_t n0 = d->b->n;
    uint64_t rej0 = d->b->rejected;
    bool spans = false, again = false;

    d->rej = false;
    g->scope_name = g->scope_version = "";
    g->srej = false;
    while (!d->prewalk && (rc = pb_next(d, &r, &M_SSPANS, &f, &v)) > 0) {
        if (f == 1 && spans) {
            again = true;
            break;
        }
        if (f == 1) {
            d->lvl = 2;
            if ((rc = pb_scope(d, g, v.p, v.n)) < 0)
                return rc;
            g->srej = d->rej;
            memcpy(g->swhy, d->rej_why, sizeof(g->swhy));
        } else if (f == 2) {
            if (!spans) {
                spans = true;
                d->lvl = 3;
                d->pi = 0;
            }
            if ((rc = pb_span(d, g, v.p, v.n, r.end)) < 0)
                return rc;
            d->pi++;
        }
    }
    d->lvl = 2;
    if (rc < 0 || (!again && !d->prewalk))
        return rc;

    /* a scope after spans: those spans back, and the scope read first */
    d->b->n = n0;
    d->b->rejected = rej0;
    if (!rej0)
        d->b->reject_why[0] = '\0';
    d->rej = false;
    g->scope_name = g->scope_version = "";
    r = sn_pb_of(p, n);
    while ((rc = pb_next(d, &r, &M_SSPANS, &f, &v)) > 0)
        if (f == 1 && (rc = pb_scope(d, g, v.p, v.n)) < 0)
            return rc;
    if (rc < 0)
        return rc;
    g->srej = d->rej;
    memcpy(g->swhy, d->rej_why, sizeof(g->swhy));

    r = sn_pb_of(p, n);
    d->lvl = 3;
    d->pi = 0;
    while ((rc = pb_next(d, &r, &M_SSPANS, &f, &v)) > 0) {
        if (f != 2)
            continue;
        if ((rc = pb_span(d, g, v.p, v.n, r.end)) < 0)
            return rc;
        d->pi++;
    }
    d->lvl = 2;
    return rc;
}

static int pb_resource_spans(struct dec *d, const uint8_t *p, size_t n)
{
    struct sn_pb r = sn_pb_of(p, n);
    struct pbval v = {0}, rv = {0};
    uint32_t f, rf;
    int rc;
    size_t count = 0, c;
    struct group g = {0};

    /* the resource first, wherever it is: count its attributes, then read them */
    while ((rc = pb_next(d, &r, &M_RSPANS, &f, &v)) > 0) {
        if (f != 1)
            continue;
        if ((rc = pb_count(d, v.p, v.n, &M_RESOURCE, 1, &c)) < 0)
            return rc;
        count += c;
    }
    if (rc < 0)
        return rc;
    d->rej = false;
    if ((rc = attrs_alloc(d, count, &g.res, "resource attribute")) < 0)
        return rc;
    r = sn_pb_of(p, n);
    while ((rc = pb_next(d, &r, &M_RSPANS, &f, &v)) > 0) {
        if (f != 1)
            continue;
        struct sn_pb rr = sn_pb_of(v.p, v.n);
        while ((rc = pb_next(d, &rr, &M_RESOURCE, &rf, &rv)) > 0) {
            if (rf == 1 &&
                (rc = pb_kv_add(d, rv.p, rv.n, g.res, &g.nres, "resource attribute")) < 0)
                return rc;
        }
        if (rc < 0)
            return rc;
    }
    if (rc < 0)
        return rc;
    g.rrej = d->rej;
    memcpy(g.rwhy, d->rej_why, sizeof(g.rwhy));
    g.service = service_of(g.res, g.nres);

    r = sn_pb_of(p, n);
    d->lvl = 2;
    d->si = 0;
    while ((rc = pb_next(d, &r, &M_RSPANS, &f, &v)) > 0) {
        if (f != 2)
            continue;
        if ((rc = pb_scope_spans(d, &g, v.p, v.n)) < 0)
            return rc;
        d->si++;
    }
    d->lvl = 1;
    return rc;
}

/* Counts the spans of the request (and checks the wire types down to them). */
static int pb_count_spans(struct dec *d, const uint8_t *p, size_t n, size_t *count)
{
    struct sn_pb r = sn_pb_of(p, n), rr, rs;
    struct pbval v = {0}, rv = {0}, sv = {0};
    uint32_t f, rf, sf;
    int rc;

    *count = 0;
    d->ri = 0;
    while ((rc = pb_next(d, &r, &M_REQ, &f, &v)) > 0) {
        d->lvl = 1;
        rr = sn_pb_of(v.p, v.n);
        d->si = 0;
        while ((rc = pb_next(d, &rr, &M_RSPANS, &rf, &rv)) > 0) {
            if (rf != 2)
                continue;
            d->lvl = 2;
            rs = sn_pb_of(rv.p, rv.n);
            while ((rc = pb_next(d, &rs, &M_SSPANS, &sf, &sv)) > 0)
                *count += sf == 2;
            if (rc < 0)
                return rc;
            d->lvl = 1;
            d->si++;
        }
        if (rc < 0)
            return rc;
        d->lvl = 0;
        d->ri++;
    }
    return rc;
}

static int pb_request(struct dec *d, const uint8_t *p, size_t n)
{
    struct sn_pb r = sn_pb_of(p, n);
    struct pbval v = {0};
    uint32_t f;
    int rc;

    d->ri = 0;
    while ((rc = pb_next(d, &r, &M_REQ, &f, &v)) > 0) {
        d->lvl = 1;
        if ((rc = pb_resource_spans(d, v.p, v.n)) < 0)
            return rc;
        d->lvl = 0;
        d->ri++;
    }
    return rc;
}

/* ---- JSON --------------------------------------------------------------------------------- */

/* Appends ".key" (or "key" at the start) or "[i]" to the path; returns the length to go
 * back to. */
static size_t jpush(struct dec *d, const char *key)
{
    size_t mark = d->plen;
    int n = snprintf(d->path + d->plen, sizeof(d->path) - d->plen, "%s%s", d->plen ? "." : "", key);
    if (n > 0)
        d->plen = d->plen + (size_t)n < sizeof(d->path) ? d->plen + (size_t)n : sizeof(d->path) - 1;
    return mark;
}

static size_t jpush_i(struct dec *d, size_t i)
{
    size_t mark = d->plen;
    int n = snprintf(d->path + d->plen, sizeof(d->path) - d->plen, "[%zu]", i);
    if (n > 0)
        d->plen = d->plen + (size_t)n < sizeof(d->path) ? d->plen + (size_t)n : sizeof(d->path) - 1;
    return mark;
}

static void jpop(struct dec *d, size_t mark)
{
    d->plen = mark;
    d->path[mark] = '\0';
}

/* The member camel (or snake, its original spelling) of object o: NULL when absent or null;
 * *name says which key. */
static json_t *jget(json_t *o, const char *camel, const char *snake, const char **name)
{
    json_t *v = json_object_get(o, camel);
    *name = camel;
    if (!v && snake) {
        v = json_object_get(o, snake);
        *name = snake;
    }
    return json_is_null(v) ? NULL : v;
}

/* Error about member name of the current path. */
static int jbad(struct dec *d, const char *name, const char *msg)
{
    size_t mark = jpush(d, name);
    int rc = bad(d, "%s", msg);
    jpop(d, mark);
    return rc;
}

/* Member camel/snake of o as an array (*out NULL when absent). */
static int jarray(struct dec *d, json_t *o, const char *camel, const char *snake, json_t **out,
                  const char **name)
{
    *out = jget(o, camel, snake, name);
    if (*out && !json_is_array(*out))
        return jbad(d, *name, "not an array");
    return 0;
}

static int jobject(struct dec *d, json_t *o, const char *camel, const char *snake, json_t **out,
                   const char **name)
{
    *out = jget(o, camel, snake, name);
    if (*out && !json_is_object(*out))
        return jbad(d, *name, "not an object");
    return 0;
}

static int jstring(struct dec *d, json_t *o, const char *camel, const char *snake, const char **s,
                   size_t *n)
{
    const char *name;
    json_t *v = jget(o, camel, snake, &name);

    *s = "", *n = 0;
    if (!v)
        return 0;
    if (!json_is_string(v))
        return jbad(d, name, "not a string");
    *s = json_string_value(v);
    *n = json_string_length(v);
    return 0;
}

/* A JSON integer: a number with no fraction, or a string of decimal digits (a '-' first when
 * sign). 0, or -1 when it is not one (or out of range). */
static int jint_value(json_t *v, bool sign, uint64_t *u)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (!sign && i < 0)
            return -1;
        *u = (uint64_t)i;
        return 0;
    }
    if (json_is_real(v)) {
        double r = json_real_value(v);
        if (r != floor(r))
            return -1;
        if (sign ? r < -9223372036854775808.0 || r >= 9223372036854775808.0
                 : r < 0 || r >= 18446744073709551616.0)
            return -1;
        *u = sign ? (uint64_t)(int64_t)r : (uint64_t)r;
        return 0;
    }
    if (!json_is_string(v))
        return -1;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v), i = 0;
    bool neg = sign && n && s[0] == '-';
    uint64_t x = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : sign ? (uint64_t)INT64_MAX : UINT64_MAX;

    i = neg;
    if (i == n)
        return -1;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned dg = (unsigned)(s[i] - '0');
        if (x > (lim - dg) / 10)
            return -1;
        x = x * 10 + dg;
    }
    *u = neg ? -x : x;
    return 0;
}

/* Member camel/snake of o as an unsigned integer up to max (*u untouched when absent). */
static int juint(struct dec *d, json_t *o, const char *camel, const char *snake, uint64_t max,
                 uint64_t *u)
{
    const char *name;
    json_t *v = jget(o, camel, snake, &name);
    uint64_t x;

    if (!v)
        return 0;
    if (jint_value(v, false, &x) < 0)
        return jbad(d, name, "not an integer");
    if (x > max)
        return jbad(d, name, "out of range");
    *u = x;
    return 0;
}

/* An enum: an integer, or one of the names names[0..n). *val is -1 when out of int32's range. */
static int jenum(struct dec *d, json_t *o, const char *key, const char *const *names, int n,
                 int64_t *val)
{
    const char *name;
    json_t *v = jget(o, key, NULL, &name);
    uint64_t x;

    if (!v)
        return 0;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        for (int i = 0; i < n; i++) {
            if (strcmp(s, names[i]) == 0) {
                *val = i;
                return 0;
            }
        }
        if (jint_value(v, true, &x) < 0)
            return jbad(d, name, "not a known enum value");
    } else if (jint_value(v, true, &x) < 0) {
        return jbad(d, name, "not an integer");
    }
    *val = (int64_t)x >= INT32_MIN && (int64_t)x <= INT32_MAX ? (int64_t)x : -1;
    return 0;
}

/* A hex id of nbytes bytes into out; *got: the bytes given (0: absent or empty), or NOT_HEX
 * when it is not hex of an even length. */
static int jid(struct dec *d, json_t *o, const char *camel, const char *snake, uint8_t *out,
               size_t nbytes, size_t *got)
{
    const char *s;
    size_t n;
    int rc = jstring(d, o, camel, snake, &s, &n);

    *got = 0;
    if (rc < 0 || n == 0)
        return rc;
    if (n % 2 || n > 2 * nbytes) {
        *got = n % 2 ? NOT_HEX : n / 2;
        return 0;
    }
    uint8_t tmp[16];
    if (sn_span_id_parse(s, n, tmp, n / 2) != n) {
        *got = NOT_HEX;
        return 0;
    }
    *got = n / 2;
    if (*got == nbytes)
        memcpy(out, tmp, nbytes);
    return 0;
}

static int js_any(struct dec *d, json_t *o, struct sn_span_kv *a, const struct key *key,
                  const char *what);

static int js_render_any(struct dec *d, json_t *o, unsigned depth);

/* An arrayValue or kvlistValue object (kvlist) as JSON text appended to d->tmp. */
static int js_render_list(struct dec *d, json_t *o, bool kvlist, unsigned depth)
{
    json_t *vals, *e;
    const char *name;
    size_t i;
    int rc;

    if (!json_is_object(o))
        return bad(d, "not an object");
    if ((rc = jarray(d, o, "values", NULL, &vals, &name)) < 0)
        return rc;
    if (depth > SN_SPAN_MAX_DEPTH) {
        d->deep = true;
        return 0;
    }
    buf_c(&d->tmp, kvlist ? '{' : '[');
    size_t m0 = jpush(d, "values");
    json_array_foreach(vals, i, e)
    {
        size_t m1 = jpush_i(d, i);
        if (i)
            buf_c(&d->tmp, ',');
        if (!kvlist) {
            rc = js_render_any(d, e, depth);
        } else if (!json_is_object(e)) {
            rc = bad(d, "not an object");
        } else {
            const char *k;
            size_t kn;
            json_t *val;
            if ((rc = jstring(d, e, "key", NULL, &k, &kn)) < 0 ||
                (rc = jobject(d, e, "value", NULL, &val, &name)) < 0)
                goto out;
            put_text(&d->tmp, k, kn, true);
            buf_c(&d->tmp, ':');
            if (!val) {
                buf_s(&d->tmp, "null");
            } else {
                size_t m2 = jpush(d, "value");
                rc = js_render_any(d, val, depth);
                jpop(d, m2);
            }
        }
    out:
        jpop(d, m1);
        if (rc < 0)
            return rc;
    }
    jpop(d, m0);
    buf_c(&d->tmp, kvlist ? '}' : ']');
    return 0;
}

/* The AnyValue member names, in the order of their field numbers. */
static const char *const any_camel[] = {"stringValue", "boolValue",   "intValue",  "doubleValue",
                                        "arrayValue",  "kvlistValue", "bytesValue"};
static const char *const any_snake[] = {"string_value", "bool_value",  "int_value",
                                        "double_value", "array_value", "kvlist_value",
                                        "bytes_value"};

/* Which member of the AnyValue o is set (1..7 as the field numbers, 0: none) into *which. */
static int js_any_which(struct dec *d, json_t *o, int *which, json_t **val, const char **name)
{
    *which = 0;
    *val = NULL;
    if (!json_is_object(o))
        return bad(d, "not an object");
    for (int i = 0; i < 7; i++) {
        const char *nm;
        json_t *v = jget(o, any_camel[i], any_snake[i], &nm);
        if (!v)
            continue;
        if (*which)
            return bad(d, "more than one value");
        *which = i + 1, *val = v, *name = nm;
    }
    return 0;
}

/* A double: a number, or a string of one (or NaN, Infinity, -Infinity). */
static int jdouble_value(json_t *v, double *x)
{
    if (json_is_number(v)) {
        *x = json_number_value(v);
        return 0;
    }
    if (!json_is_string(v))
        return -1;
    const char *s = json_string_value(v);
    if (strcmp(s, "NaN") == 0)
        *x = NAN;
    else if (strcmp(s, "Infinity") == 0)
        *x = INFINITY;
    else if (strcmp(s, "-Infinity") == 0)
        *x = -INFINITY;
    else {
        char *end;
        if (!*s || strspn(s, "0123456789+-.eE") != strlen(s))
            return -1;
        *x = strtod(s, &end);
        if (*end)
            return -1;
    }
    return 0;
}

/* bytesValue: base64, standard or URL-safe, padded or not, into out (reset; raw bytes). */
static int js_bytes(struct dec *d, json_t *v, const char *name, struct buf *out)
{
    if (!json_is_string(v))
        return jbad(d, name, "not a string");
    const char *s = json_string_value(v);
    size_t n = json_string_length(v), m = (n + 3) / 4 * 4;
    char *q = malloc(m + 1);
    if (!q)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        q[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    for (size_t i = n; i < m; i++)
        q[i] = '=';
    buf_reset(out, 0);
    char *o = buf_room(out, sn_b64_decoded_max(m));
    if (!o) {
        free(q);
        return out->err;
    }
    ssize_t got = sn_b64_decode_strict(q, m, o);
    free(q);
    if (got < 0 || (n % 4 == 1))
        return jbad(d, name, "not base64");
    out->len = (size_t)got;
    return 0;
}

static int js_render_any(struct dec *d, json_t *o, unsigned depth)
{
    int which, rc;
    json_t *v;
    const char *name = "";
    char s[24];
    uint64_t u;
    double x;

    if ((rc = js_any_which(d, o, &which, &v, &name)) < 0)
        return rc;
    size_t mark = jpush(d, name);
    switch (which) {
    case 0:
        buf_s(&d->tmp, "null");
        break;
    case 1:
        if (!json_is_string(v))
            rc = bad(d, "not a string");
        else
            put_text(&d->tmp, json_string_value(v), json_string_length(v), true);
        break;
    case 2:
        if (!json_is_boolean(v))
            rc = bad(d, "not a boolean");
        else
            buf_s(&d->tmp, json_is_true(v) ? "true" : "false");
        break;
    case 3:
        if (jint_value(v, true, &u) < 0)
            rc = bad(d, "not an integer");
        else
            buf_put(&d->tmp, s, fmt_i64(s, (int64_t)u));
        break;
    case 4:
        if (jdouble_value(v, &x) < 0)
            rc = bad(d, "not a number");
        else
            put_json_double(&d->tmp, x);
        break;
    case 5:
    case 6:
        rc = js_render_list(d, v, which == 6, depth + 1);
        break;
    case 7: { /* base64 in, base64 (canonical) out */
        struct buf raw = {0};
        jpop(d, mark);
        rc = js_bytes(d, v, name, &raw);
        mark = jpush(d, name);
        if (rc == 0)
            put_json_bytes(&d->tmp, raw.p, raw.len);
        free(raw.p);
        break;
    }
    }
    jpop(d, mark);
    return rc;
}

static int js_any(struct dec *d, json_t *o, struct sn_span_kv *a, const struct key *key,
                  const char *what)
{
    int which, rc;
    json_t *v;
    const char *name = "";
    uint64_t u;
    double x;
    struct sn_span_kv dummy;
    struct sn_span_kv *out = a;

    if ((rc = js_any_which(d, o, &which, &v, &name)) < 0)
        return rc;
    if (!a) {
        attr_init(&dummy);
        a = &dummy;
    }
    switch (which) {
    case 1:
        if (!json_is_string(v))
            return jbad(d, name, "not a string");
        return attr_set_str(d, out, SN_ATTR_STRING, json_string_value(v), json_string_length(v),
                            key, what);
    case 2:
        if (!json_is_boolean(v))
            return jbad(d, name, "not a boolean");
        attr_set_bool(a, json_is_true(v));
        return 0;
    case 3:
        if (jint_value(v, true, &u) < 0)
            return jbad(d, name, "not an integer");
        return attr_set_int(d, a, (int64_t)u);
    case 4:
        if (jdouble_value(v, &x) < 0)
            return jbad(d, name, "not a number");
        return attr_set_double(d, a, x);
    case 5:
    case 6: {
        a->type = which == 5 ? SN_ATTR_ARRAY : SN_ATTR_KVLIST;
        buf_reset(&d->tmp, SN_SPAN_MAX_VALUE);
        d->deep = false;
        size_t mark = jpush(d, name);
        rc = js_render_list(d, v, which == 6, 1);
        jpop(d, mark);
        if (rc < 0)
            return rc;
        return attr_set_text(d, out, key, what);
    }
    case 7:
        if ((rc = js_bytes(d, v, name, &d->tmp)) < 0)
            return rc;
        return attr_set_str(d, out, SN_ATTR_BYTES, d->tmp.p, d->tmp.len, key, what);
    }
    return 0;
}

/* The KeyValue array member camel/snake of o into *out, *n (the span refused when too many). */
static int js_attrs(struct dec *d, json_t *o, const char *camel, const char *snake,
                    struct sn_span_kv **out, uint32_t *n, const char *what, bool keep)
{
    json_t *arr, *e, *val;
    const char *name, *vname, *k;
    size_t i, kn;
    int rc;
    struct sn_span_kv *attrs = NULL;

    *n = 0;
    if ((rc = jarray(d, o, camel, snake, &arr, &name)) < 0)
        return rc;
    if (!arr)
        return 0;
    if (keep && (rc = attrs_alloc(d, json_array_size(arr), &attrs, what)) < 0)
        return rc;
    size_t m0 = jpush(d, name);
    json_array_foreach(arr, i, e)
    {
        size_t m1 = jpush_i(d, i);
        struct sn_span_kv *a = attrs ? &attrs[(*n)++] : NULL;
        if (!json_is_object(e)) {
            rc = bad(d, "not an object");
        } else if ((rc = jstring(d, e, "key", NULL, &k, &kn)) == 0 &&
                   (rc = jobject(d, e, "value", NULL, &val, &vname)) == 0) {
            struct key kk = {k, kn};
            if (a) {
                attr_init(a);
                rc = copy_str(d, k, kn, &a->key, "attribute key");
            }
            if (rc == 0 && val) {
                size_t m2 = jpush(d, vname);
                rc = js_any(d, val, a, &kk, what);
                jpop(d, m2);
            }
        }
        jpop(d, m1);
        if (rc < 0)
            return rc;
    }
    jpop(d, m0);
    *out = attrs;
    return 0;
}

/* Member camel/snake of o, a string, copied into *out. */
static int js_str(struct dec *d, json_t *o, const char *camel, const char *snake, const char **out,
                  const char *what)
{
    const char *s;
    size_t n;
    int rc = jstring(d, o, camel, snake, &s, &n);

    if (rc < 0)
        return rc;
    return copy_str(d, s, n, out, what);
}

static int js_event(struct dec *d, json_t *o, struct sn_span_event *ev)
{
    struct sn_span_event tmp;
    uint64_t u = 0;
    int rc;

    if (!json_is_object(o))
        return bad(d, "not an object");
    if (!ev)
        ev = &tmp;
    memset(ev, 0, sizeof(*ev));
    ev->name = "";
    if ((rc = juint(d, o, "timeUnixNano", "time_unix_nano", UINT64_MAX, &ev->t_ns)) < 0 ||
        (rc = js_str(d, o, "name", NULL, &ev->name, "event name")) < 0 ||
        (rc = js_attrs(d, o, "attributes", NULL, &ev->attrs, &ev->nattrs, "event attribute",
                       ev != &tmp)) < 0 ||
        (rc = juint(d, o, "droppedAttributesCount", "dropped_attributes_count", UINT32_MAX, &u)) <
            0)
        return rc;
    ev->dropped_attrs = (uint32_t)u;
    return 0;
}

static int js_link(struct dec *d, json_t *o, struct sn_span_link *lk)
{
    struct sn_span_link tmp;
    uint64_t u = 0, fl = 0;
    size_t got;
    int rc;

    if (!json_is_object(o))
        return bad(d, "not an object");
    if (!lk)
        lk = &tmp;
    memset(lk, 0, sizeof(*lk));
    lk->trace_state = "";
    if ((rc = jid(d, o, "traceId", "trace_id", lk->trace_id, 16, &got)) < 0)
        return rc;
    if (got && got != 16)
        refuse(d, "invalid link trace id");
    if ((rc = jid(d, o, "spanId", "span_id", lk->span_id, 8, &got)) < 0)
        return rc;
    if (got && got != 8)
        refuse(d, "invalid link span id");
    if ((rc = js_str(d, o, "traceState", "trace_state", &lk->trace_state, "link trace state")) <
            0 ||
        (rc = js_attrs(d, o, "attributes", NULL, &lk->attrs, &lk->nattrs, "link attribute",
                       lk != &tmp)) < 0 ||
        (rc = juint(d, o, "droppedAttributesCount", "dropped_attributes_count", UINT32_MAX, &u)) <
            0 ||
        (rc = juint(d, o, "flags", NULL, UINT32_MAX, &fl)) < 0)
        return rc;
    lk->dropped_attrs = (uint32_t)u;
    lk->flags = (uint32_t)fl;
    return 0;
}

/* The events or links array member of span o (links when links). */
static int js_list(struct dec *d, json_t *o, const char *key, bool links, struct sn_span *s)
{
    json_t *arr, *e;
    const char *name;
    size_t i, max = links ? SN_SPAN_MAX_LINKS : SN_SPAN_MAX_EVENTS;
    int rc;
    bool keep;

    if ((rc = jarray(d, o, key, NULL, &arr, &name)) < 0 || !arr)
        return rc;
    size_t n = json_array_size(arr);
    if (n > max)
        refuse(d, "%zu %s, over %zu", n, key, max);
    else if (!d->rej && (rc = alloc_array(d, n, links ? sizeof(*s->links) : sizeof(*s->events),
                                          links ? (void **)&s->links : (void **)&s->events)) < 0)
        return rc;
    keep = links ? s->links != NULL : s->events != NULL;
    size_t m0 = jpush(d, name);
    json_array_foreach(arr, i, e)
    {
        size_t m1 = jpush_i(d, i);
        if (links)
            rc = js_link(d, e, keep ? &s->links[s->nlinks++] : NULL);
        else
            rc = js_event(d, e, keep ? &s->events[s->nevents++] : NULL);
        jpop(d, m1);
        if (rc < 0)
            return rc;
    }
    jpop(d, m0);
    return 0;
}

static const char *const kind_names[] = {"SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL",
                                         "SPAN_KIND_SERVER",      "SPAN_KIND_CLIENT",
                                         "SPAN_KIND_PRODUCER",    "SPAN_KIND_CONSUMER"};
static const char *const status_names[] = {"STATUS_CODE_UNSET", "STATUS_CODE_OK",
                                           "STATUS_CODE_ERROR"};

static int js_span(struct dec *d, const struct group *g, json_t *o)
{
    size_t tid_len = 0, sid_len = 0, pid_len = 0;
    uint64_t end = 0, u;
    int64_t e;
    uint8_t pid[8];
    json_t *st;
    const char *name;
    int rc;

    if (!json_is_object(o))
        return bad(d, "not an object");
    struct sn_span *s = sn_span_batch_add(d->b);
    if (!s)
        return -ENOMEM;
    span_begin(d, g);
    if ((rc = jid(d, o, "traceId", "trace_id", s->trace_id, 16, &tid_len)) < 0 ||
        (rc = jid(d, o, "spanId", "span_id", s->span_id, 8, &sid_len)) < 0 ||
        (rc = jid(d, o, "parentSpanId", "parent_span_id", pid, 8, &pid_len)) < 0)
        return rc;
    if (pid_len == 8)
        set_parent(d, s, pid, 8);
    else if (pid_len)
        refuse(d, "invalid parent span id");
    if ((rc = js_str(d, o, "traceState", "trace_state", &s->trace_state, "trace state")) < 0 ||
        (rc = js_str(d, o, "name", NULL, &s->name, "name")) < 0)
        return rc;
    e = 0;
    if ((rc = jenum(d, o, "kind", kind_names, 6, &e)) < 0)
        return rc;
    if (e < 0 || e > SN_KIND_CONSUMER)
        refuse(d, "invalid kind %" PRId64, e);
    else
        s->kind = (uint8_t)e;
    if ((rc = juint(d, o, "startTimeUnixNano", "start_time_unix_nano", UINT64_MAX, &s->start_ns)) <
            0 ||
        (rc = juint(d, o, "endTimeUnixNano", "end_time_unix_nano", UINT64_MAX, &end)) < 0 ||
        (rc = js_attrs(d, o, "attributes", NULL, &s->attrs, &s->nattrs, "attribute", true)) < 0)
        return rc;
    u = 0;
    if ((rc = juint(d, o, "droppedAttributesCount", "dropped_attributes_count", UINT32_MAX, &u)) <
        0)
        return rc;
    s->dropped_attrs = (uint32_t)u;
    if ((rc = js_list(d, o, "events", false, s)) < 0)
        return rc;
    u = 0;
    if ((rc = juint(d, o, "droppedEventsCount", "dropped_events_count", UINT32_MAX, &u)) < 0)
        return rc;
    s->dropped_events = (uint32_t)u;
    if ((rc = js_list(d, o, "links", true, s)) < 0)
        return rc;
    u = 0;
    if ((rc = juint(d, o, "droppedLinksCount", "dropped_links_count", UINT32_MAX, &u)) < 0)
        return rc;
    s->dropped_links = (uint32_t)u;
    if ((rc = jobject(d, o, "status", NULL, &st, &name)) < 0)
        return rc;
    if (st) {
        size_t mark = jpush(d, name);
        e = 0;
        if ((rc = js_str(d, st, "message", NULL, &s->status_msg, "status message")) < 0 ||
            (rc = jenum(d, st, "code", status_names, 3, &e)) < 0)
            return rc;
        jpop(d, mark);
        if (e < 0 || e > SN_STATUS_ERROR)
            refuse(d, "invalid status code %" PRId64, e);
        else
            s->status = (uint8_t)e;
    }
    u = 0;
    if ((rc = juint(d, o, "flags", NULL, UINT32_MAX, &u)) < 0)
        return rc;
    s->otlp_flags = (uint32_t)u;
    span_done(d, g, s, tid_len, sid_len, end);
    return 0;
}

static int js_scope_spans(struct dec *d, struct group *g, json_t *o)
{
    json_t *scope, *spans, *e;
    const char *name;
    size_t i;
    int rc;

    if (!json_is_object(o))
        return bad(d, "not an object");
    d->rej = false;
    g->scope_name = g->scope_version = "";
    if ((rc = jobject(d, o, "scope", NULL, &scope, &name)) < 0)
        return rc;
    if (scope) {
        size_t mark = jpush(d, name);
        if ((rc = js_str(d, scope, "name", NULL, &g->scope_name, "scope name")) < 0 ||
            (rc = js_str(d, scope, "version", NULL, &g->scope_version, "scope version")) < 0)
            return rc;
        jpop(d, mark);
    }
    g->srej = d->rej;
    memcpy(g->swhy, d->rej_why, sizeof(g->swhy));
    if ((rc = jarray(d, o, "spans", NULL, &spans, &name)) < 0)
        return rc;
    size_t m0 = jpush(d, name);
    d->lvl = 3;
    json_array_foreach(spans, i, e)
    {
        d->pi = i;
        size_t m1 = jpush_i(d, i);
        if ((rc = js_span(d, g, e)) < 0)
            return rc;
        jpop(d, m1);
    }
    d->lvl = 2;
    jpop(d, m0);
    return 0;
}

static int js_resource_spans(struct dec *d, json_t *o)
{
    json_t *res, *sss, *e;
    const char *name;
    size_t i;
    int rc;
    struct group g = {0};

    if (!json_is_object(o))
        return bad(d, "not an object");
    d->rej = false;
    if ((rc = jobject(d, o, "resource", NULL, &res, &name)) < 0)
        return rc;
    if (res) {
        size_t mark = jpush(d, name);
        if ((rc = js_attrs(d, res, "attributes", NULL, &g.res, &g.nres, "resource attribute",
                           true)) < 0)
            return rc;
        jpop(d, mark);
    }
    g.rrej = d->rej;
    memcpy(g.rwhy, d->rej_why, sizeof(g.rwhy));
    g.service = service_of(g.res, g.nres);
    if ((rc = jarray(d, o, "scopeSpans", "scope_spans", &sss, &name)) < 0)
        return rc;
    size_t m0 = jpush(d, name);
    d->lvl = 2;
    json_array_foreach(sss, i, e)
    {
        d->si = i;
        size_t m1 = jpush_i(d, i);
        if ((rc = js_scope_spans(d, &g, e)) < 0)
            return rc;
        jpop(d, m1);
    }
    d->lvl = 1;
    jpop(d, m0);
    return 0;
}

/* The spans of the request, counted loosely (types are checked when decoding). */
static size_t js_count(json_t *root)
{
    json_t *rss, *rs, *sss, *ss, *spans;
    const char *nm;
    size_t i, j, n = 0;

    rss = jget(root, "resourceSpans", "resource_spans", &nm);
    json_array_foreach(rss, i, rs)
    {
        sss = json_is_object(rs) ? jget(rs, "scopeSpans", "scope_spans", &nm) : NULL;
        json_array_foreach(sss, j, ss)
        {
            spans = json_is_object(ss) ? jget(ss, "spans", NULL, &nm) : NULL;
            n += json_array_size(spans);
        }
    }
    return n;
}

static int js_request(struct dec *d, const void *body, size_t len)
{
    json_error_t err;
    json_t *root = json_loadb(body, len, JSON_ALLOW_NUL, &err), *rss, *e;
    const char *name;
    size_t i, n = 0;
    int rc = 0;

    if (!root)
        return bad(d, "invalid JSON at line %d column %d: %s", err.line, err.column, err.text);
    if (!json_is_object(root)) {
        rc = bad(d, "not an object");
        goto out;
    }
    n = js_count(root);
    if (n > SN_SPAN_MAX_SPANS) {
        rc = -E2BIG;
        goto out;
    }
    if (d->b->n + n > d->b->cap) {
        struct sn_span *p = sn_grow(d->b->spans, &d->b->cap, d->b->n + n, sizeof(*p));
        if (!p) {
            rc = -ENOMEM;
            goto out;
        }
        d->b->spans = p;
    }
    if ((rc = jarray(d, root, "resourceSpans", "resource_spans", &rss, &name)) < 0)
        goto out;
    size_t m0 = jpush(d, name);
    json_array_foreach(rss, i, e)
    {
        d->ri = i;
        d->lvl = 1;
        size_t m1 = jpush_i(d, i);
        if ((rc = js_resource_spans(d, e)) < 0)
            goto out;
        jpop(d, m1);
    }
    d->lvl = 0;
    jpop(d, m0);
out:
    if (rc == -E2BIG && d->whylen)
        snprintf(d->why, d->whylen, "%zu spans, over %u", n, SN_SPAN_MAX_SPANS);
    json_decref(root);
    return rc;
}

/* ---- Decoding: the entry point ------------------------------------------------------------ */

int sn_otlp_decode(enum sn_otlp_enc enc, const void *body, size_t len, struct sn_span_batch *b,
                   char *why, size_t whylen)
{
    if (!len)
        body = ""; /* may be NULL */
    struct dec d = {.b = b, .why = why, .whylen = whylen, .json = enc == SN_OTLP_JSON};
    size_t n0 = b->n, n;
    uint64_t rej0 = b->rejected;
    int rc;

    if (whylen)
        why[0] = '\0';
    /* protobuf: room for the spans the body likely holds (~1 KiB a span of 20 attributes),
     * not grown (and copied) span by span */
    if (!d.json && b->cap < b->n + len / 1024) {
        size_t guess = len / 1024 < SN_SPAN_MAX_SPANS ? len / 1024 : SN_SPAN_MAX_SPANS;
        struct sn_span *p = sn_grow(b->spans, &b->cap, b->n + guess, sizeof(*p));
        if (p)
            b->spans = p;
    }
    if (d.json) {
        rc = js_request(&d, body, len);
    } else if ((rc = pb_request(&d, body, len)) == -EINVAL || rc == -E2BIG) {
        /* Refused whole: as if the spans had been counted first (the request's structure
         * down to them checked, then their number), which is how the reason is chosen. One
         * walk less for every request that is not refused. */
        struct dec c = {.b = b, .why = why, .whylen = whylen};
        int crc = pb_count_spans(&c, body, len, &n);
        if (crc < 0) {
            rc = crc;
        } else if (n > SN_SPAN_MAX_SPANS) {
            rc = -E2BIG;
            if (whylen)
                snprintf(why, whylen, "%zu spans, over %u", n, SN_SPAN_MAX_SPANS);
        } else if (rc == -EINVAL) { /* the first malformation as a walk per level finds it */
            b->n = n0;
            b->rejected = rej0;
            struct dec e = {.b = b, .why = why, .whylen = whylen, .prewalk = true};
            rc = pb_request(&e, body, len);
            free(e.tmp.p);
            free(e.sattr);
            free(e.sev);
            free(e.slk);
            if (rc == 0) /* cannot be: the same bytes, more checks */
                rc = -EINVAL;
        }
    }
    free(d.tmp.p);
    free(d.sattr);
    free(d.sev);
    free(d.slk);
    if (rc < 0) {
        b->n = n0;
        b->rejected = rej0;
        if (!rej0)
            b->reject_why[0] = '\0';
        if (rc == -ENOMEM && whylen)
            snprintf(why, whylen, "out of memory");
    }
    return rc;
}

/* ---- Responses ---------------------------------------------------------------------------- */

/* Hands the writer's bytes over as *out (an empty body gets a buffer too). */
static int pbw_take(struct sn_pbw *w, unsigned char **out, size_t *len)
{
    if (!w->err && !w->buf) {
        w->buf = malloc(1);
        if (!w->buf)
            w->err = -ENOMEM;
    }
    if (w->err) {
        sn_pbw_fini(w);
        return -ENOMEM;
    }
    *out = w->buf;
    *len = w->len;
    return 0;
}

static int buf_take(struct buf *t, unsigned char **out, size_t *len)
{
    if (t->err) {
        free(t->p);
        return -ENOMEM;
    }
    *out = (unsigned char *)t->p;
    *len = t->len;
    return 0;
}

/* msg with invalid UTF-8 replaced, into t (reset). */
static void clean_text(struct buf *t, const char *msg)
{
    buf_reset(t, 0);
    put_text(t, msg, strlen(msg), false);
}

int sn_otlp_response(enum sn_otlp_enc enc, uint64_t rejected, const char *msg, unsigned char **out,
                     size_t *len)
{
    bool has_msg = msg && *msg;

    if (enc == SN_OTLP_JSON) {
        struct buf t = {0};
        char num[24];
        buf_s(&t, "{\"partialSuccess\":{");
        if (rejected) {
            fmt_u64(num, rejected);
            buf_s(&t, "\"rejectedSpans\":\"");
            buf_s(&t, num);
            buf_s(&t, has_msg ? "\"," : "\"");
        }
        if (has_msg) {
            buf_s(&t, "\"errorMessage\":");
            put_text(&t, msg, strlen(msg), true);
        }
        buf_s(&t, "}}");
        return buf_take(&t, out, len);
    }

    struct sn_pbw w = {0};
    if (rejected || has_msg) {
        size_t m = sn_pbw_begin(&w, 1);
        if (rejected)
            sn_pbw_varint(&w, 1, rejected);
        if (has_msg) {
            struct buf t = {0};
            clean_text(&t, msg);
            if (t.err)
                w.err = t.err;
            sn_pbw_bytes(&w, 2, t.p, t.len);
            free(t.p);
        }
        sn_pbw_end(&w, m);
    }
    return pbw_take(&w, out, len);
}

int sn_otlp_status(enum sn_otlp_enc enc, int code, const char *msg, unsigned char **out,
                   size_t *len)
{
    if (!msg)
        msg = "";
    if (enc == SN_OTLP_JSON) {
        struct buf t = {0};
        char num[24];
        fmt_i64(num, code);
        buf_s(&t, "{\"code\":");
        buf_s(&t, num);
        buf_s(&t, ",\"message\":");
        put_text(&t, msg, strlen(msg), true);
        buf_c(&t, '}');
        return buf_take(&t, out, len);
    }

    struct sn_pbw w = {0};
    if (code)
        sn_pbw_varint(&w, 1, (uint64_t)(int64_t)code); /* int32: negative ones sign-extended */
    if (*msg) {
        struct buf t = {0};
        clean_text(&t, msg);
        if (t.err)
            w.err = t.err;
        sn_pbw_bytes(&w, 2, t.p, t.len);
        free(t.p);
    }
    return pbw_take(&w, out, len);
}

/* ---- Encoding ----------------------------------------------------------------------------- */

/* A parser of the JSON text of array and kvlist values, writing AnyValue fields. */
struct jp {
    const char *p, *end;
    struct buf *tmp; /* unescaped strings */
};

static void jp_ws(struct jp *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int hex4(const char *p, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int c = (unsigned char)p[i], x = c >= '0' && c <= '9'   ? c - '0'
                                         : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                         : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                                : -1;
        if (x < 0)
            return -1;
        *v = *v << 4 | (unsigned)x;
    }
    return 0;
}

static void put_utf8(struct buf *t, unsigned cp)
{
    char s[4];
    size_t n;

    if (cp < 0x80)
        s[0] = (char)cp, n = 1;
    else if (cp < 0x800)
        s[0] = (char)(0xc0 | cp >> 6), s[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    else if (cp < 0x10000)
        s[0] = (char)(0xe0 | cp >> 12), s[1] = (char)(0x80 | (cp >> 6 & 0x3f)),
        s[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
    else
        s[0] = (char)(0xf0 | cp >> 18), s[1] = (char)(0x80 | (cp >> 12 & 0x3f)),
        s[2] = (char)(0x80 | (cp >> 6 & 0x3f)), s[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
    buf_put(t, s, n);
}

/* A JSON string at j->p (the opening quote) unescaped into j->tmp (reset). */
static int jp_string(struct jp *j)
{
    buf_reset(j->tmp, 0);
    j->p++;
    while (j->p < j->end && *j->p != '"') {
        const char *s = j->p;
        while (j->p < j->end && *j->p != '"' && *j->p != '\\')
            j->p++;
        buf_put(j->tmp, s, (size_t)(j->p - s));
        if (j->p >= j->end || *j->p == '"')
            break;
        if (j->end - j->p < 2)
            return -1;
        char c = j->p[1];
        j->p += 2;
        switch (c) {
        case '"':
        case '\\':
        case '/':
            buf_c(j->tmp, c);
            break;
        case 'n':
            buf_c(j->tmp, '\n');
            break;
        case 'r':
            buf_c(j->tmp, '\r');
            break;
        case 't':
            buf_c(j->tmp, '\t');
            break;
        case 'b':
            buf_c(j->tmp, '\b');
            break;
        case 'f':
            buf_c(j->tmp, '\f');
            break;
        case 'u': {
            unsigned cp, lo;
            if (j->end - j->p < 4 || hex4(j->p, &cp) < 0)
                return -1;
            j->p += 4;
            if (cp >= 0xd800 && cp <= 0xdbff && j->end - j->p >= 6 && j->p[0] == '\\' &&
                j->p[1] == 'u' && hex4(j->p + 2, &lo) == 0 && lo >= 0xdc00 && lo <= 0xdfff) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                j->p += 6;
            }
            put_utf8(j->tmp, cp);
            break;
        }
        default:
            return -1;
        }
    }
    if (j->p >= j->end)
        return -1;
    j->p++;
    return j->tmp->err;
}

/* One JSON value at j->p written as the fields of an AnyValue. */
static int jp_value(struct jp *j, struct sn_pbw *w, int depth)
{
    jp_ws(j);
    if (j->p >= j->end || depth > 64)
        return -1;
    char c = *j->p;
    if (c == '[' || c == '{') {
        bool kv = c == '{';
        size_t m = sn_pbw_begin(w, kv ? 6 : 5);
        j->p++;
        jp_ws(j);
        if (j->p < j->end && *j->p == (kv ? '}' : ']')) {
            j->p++;
            sn_pbw_end(w, m);
            return 0;
        }
        for (;;) {
            size_t e = sn_pbw_begin(w, 1);
            if (kv) {
                jp_ws(j);
                if (j->p >= j->end || *j->p != '"' || jp_string(j) < 0)
                    return -1;
                if (j->tmp->len)
                    sn_pbw_bytes(w, 1, j->tmp->p, j->tmp->len);
                jp_ws(j);
                if (j->p >= j->end || *j->p++ != ':')
                    return -1;
                size_t v = sn_pbw_begin(w, 2);
                if (jp_value(j, w, depth + 1) < 0)
                    return -1;
                sn_pbw_end(w, v);
            } else if (jp_value(j, w, depth + 1) < 0) {
                return -1;
            }
            sn_pbw_end(w, e);
            jp_ws(j);
            if (j->p >= j->end)
                return -1;
            if (*j->p == ',') {
                j->p++;
                continue;
            }
            if (*j->p++ != (kv ? '}' : ']'))
                return -1;
            break;
        }
        sn_pbw_end(w, m);
        return 0;
    }
    if (c == '"') {
        if (jp_string(j) < 0)
            return -1;
        sn_pbw_bytes(w, 1, j->tmp->p, j->tmp->len);
        return 0;
    }
    static const char *const words[] = {"null", "true", "false"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(words[i]);
        if ((size_t)(j->end - j->p) >= n && memcmp(j->p, words[i], n) == 0) {
            j->p += n;
            if (i)
                sn_pbw_varint(w, 2, i == 1);
            return 0;
        }
    }
    char num[64];
    size_t n = 0;
    bool real = false;
    while (j->p + n < j->end && j->p[n] && strchr("0123456789+-.eE", j->p[n])) {
        real |= j->p[n] == '.' || j->p[n] == 'e' || j->p[n] == 'E';
        if (++n >= sizeof(num))
            return -1;
    }
    if (!n)
        return -1;
    memcpy(num, j->p, n);
    num[n] = '\0';
    j->p += n;
    char *end;
    errno = 0;
    if (!real) {
        long long i = strtoll(num, &end, 10);
        if (*end == '\0' && errno == 0) {
            sn_pbw_varint(w, 3, (uint64_t)i);
            return 0;
        }
    }
    errno = 0;
    double x = strtod(num, &end);
    if (*end)
        return -1;
    sn_pbw_double(w, 4, x);
    return 0;
}

/* The AnyValue of a as message field (2 of KeyValue). */
static void enc_value(struct sn_pbw *w, const struct sn_span_kv *a, struct buf *tmp)
{
    size_t m = sn_pbw_begin(w, 2);

    switch (a->type) {
    case SN_ATTR_STRING:
        sn_pbw_bytes(w, 1, a->val, a->vlen);
        break;
    case SN_ATTR_BOOL:
        sn_pbw_varint(w, 2, a->val && strcmp(a->val, "true") == 0);
        break;
    case SN_ATTR_INT:
        sn_pbw_varint(w, 3, (uint64_t)a->i);
        break;
    case SN_ATTR_DOUBLE:
        sn_pbw_double(w, 4, a->d);
        break;
    case SN_ATTR_BYTES:
        sn_pbw_bytes(w, 7, a->val, a->vlen);
        break;
    case SN_ATTR_ARRAY:
    case SN_ATTR_KVLIST: {
        struct jp j = {a->val, a->val + a->vlen, tmp};
        size_t len0 = w->len;
        int rc = jp_value(&j, w, 0);
        jp_ws(&j);
        bool want = a->type == SN_ATTR_KVLIST;
        /* the text must be one array (one object) and nothing after it */
        if (!w->err &&
            (rc < 0 || j.p != j.end || a->vlen == 0 || a->val[0] != (want ? '{' : '['))) {
            w->len = len0;
            sn_pbw_bytes(w, 1, a->val, a->vlen);
        }
        break;
    }
    default:
        break;
    }
    sn_pbw_end(w, m);
}

static void enc_attrs(struct sn_pbw *w, uint32_t field, const struct sn_span_kv *a, uint32_t n,
                      struct buf *tmp)
{
    for (uint32_t i = 0; i < n; i++) {
        size_t m = sn_pbw_begin(w, field);
        sn_pbw_string(w, 1, a[i].key);
        enc_value(w, &a[i], tmp);
        sn_pbw_end(w, m);
    }
}

static bool same_attrs(const struct sn_span_kv *a, uint32_t na, const struct sn_span_kv *b,
                       uint32_t nb)
{
    if (na != nb)
        return false;
    if (a == b)
        return true;
    for (uint32_t i = 0; i < na; i++) {
        if (a[i].type != b[i].type || a[i].vlen != b[i].vlen || strcmp(a[i].key, b[i].key) ||
            (a[i].vlen && memcmp(a[i].val, b[i].val, a[i].vlen)) ||
            (a[i].type == SN_ATTR_DOUBLE && memcmp(&a[i].d, &b[i].d, sizeof(a[i].d))) ||
            a[i].i != b[i].i)
            return false;
    }
    return true;
}

static bool same_resource(const struct sn_span *a, const struct sn_span *b)
{
    return strcmp(a->service, b->service) == 0 && same_attrs(a->res, a->nres, b->res, b->nres);
}

static bool same_scope(const struct sn_span *a, const struct sn_span *b)
{
    return strcmp(a->scope_name, b->scope_name) == 0 &&
           strcmp(a->scope_version, b->scope_version) == 0;
}

static void enc_span(struct sn_pbw *w, const struct sn_span *s, struct buf *tmp)
{
    size_t m = sn_pbw_begin(w, 2);

    sn_pbw_bytes(w, 1, s->trace_id, 16);
    sn_pbw_bytes(w, 2, s->span_id, 8);
    sn_pbw_string(w, 3, s->trace_state);
    if (s->flags & SN_SPAN_F_PARENT)
        sn_pbw_bytes(w, 4, s->parent_id, 8);
    sn_pbw_string(w, 5, s->name);
    if (s->kind)
        sn_pbw_varint(w, 6, s->kind);
    sn_pbw_fixed64(w, 7, s->start_ns);
    sn_pbw_fixed64(w, 8, s->start_ns + s->duration_ns);
    enc_attrs(w, 9, s->attrs, s->nattrs, tmp);
    if (s->dropped_attrs)
        sn_pbw_varint(w, 10, s->dropped_attrs);
    for (uint32_t i = 0; i < s->nevents; i++) {
        const struct sn_span_event *e = &s->events[i];
        size_t em = sn_pbw_begin(w, 11);
        sn_pbw_fixed64(w, 1, e->t_ns);
        sn_pbw_string(w, 2, e->name);
        enc_attrs(w, 3, e->attrs, e->nattrs, tmp);
        if (e->dropped_attrs)
            sn_pbw_varint(w, 4, e->dropped_attrs);
        sn_pbw_end(w, em);
    }
    if (s->dropped_events)
        sn_pbw_varint(w, 12, s->dropped_events);
    for (uint32_t i = 0; i < s->nlinks; i++) {
        const struct sn_span_link *l = &s->links[i];
        size_t lm = sn_pbw_begin(w, 13);
        sn_pbw_bytes(w, 1, l->trace_id, 16);
        sn_pbw_bytes(w, 2, l->span_id, 8);
        sn_pbw_string(w, 3, l->trace_state);
        enc_attrs(w, 4, l->attrs, l->nattrs, tmp);
        if (l->dropped_attrs)
            sn_pbw_varint(w, 5, l->dropped_attrs);
        if (l->flags)
            sn_pbw_fixed32(w, 6, l->flags);
        sn_pbw_end(w, lm);
    }
    if (s->dropped_links)
        sn_pbw_varint(w, 14, s->dropped_links);
    if ((s->status_msg && *s->status_msg) || s->status) {
        size_t sm = sn_pbw_begin(w, 15);
        sn_pbw_string(w, 2, s->status_msg);
        if (s->status)
            sn_pbw_varint(w, 3, s->status);
        sn_pbw_end(w, sm);
    }
    if (s->otlp_flags)
        sn_pbw_fixed32(w, 16, s->otlp_flags);
    sn_pbw_end(w, m);
}

int sn_otlp_encode(const struct sn_span *spans, size_t n, unsigned char **out, size_t *len)
{
    struct sn_pbw w = {0};
    struct buf tmp = {0};

    for (size_t i = 0, j; i < n; i = j) {
        const struct sn_span *s = &spans[i];
        size_t rm = sn_pbw_begin(&w, 1), m = sn_pbw_begin(&w, 1);
        enc_attrs(&w, 1, s->res, s->nres, &tmp);
        /* a service the resource does not give (Zipkin's): as service.name */
        if (strcmp(service_of(s->res, s->nres), s->service) != 0 && *s->service &&
            strcmp(s->service, UNKNOWN_SERVICE) != 0) {
            struct sn_span_kv a = {.key = "service.name",
                                   .val = s->service,
                                   .vlen = (uint32_t)strlen(s->service),
                                   .type = SN_ATTR_STRING};
            enc_attrs(&w, 1, &a, 1, &tmp);
        }
        sn_pbw_end(&w, m);
        for (j = i; j < n && same_resource(s, &spans[j]);) {
            const struct sn_span *first = &spans[j];
            size_t sm = sn_pbw_begin(&w, 2);
            if (*first->scope_name || *first->scope_version) {
                size_t cm = sn_pbw_begin(&w, 1);
                sn_pbw_string(&w, 1, first->scope_name);
                sn_pbw_string(&w, 2, first->scope_version);
                sn_pbw_end(&w, cm);
            }
            for (; j < n && same_resource(s, &spans[j]) && same_scope(first, &spans[j]); j++)
                enc_span(&w, &spans[j], &tmp);
            sn_pbw_end(&w, sm);
        }
        sn_pbw_end(&w, rm);
    }
    free(tmp.p);
    if (tmp.err)
        w.err = tmp.err;
    return pbw_take(&w, out, len);
}
