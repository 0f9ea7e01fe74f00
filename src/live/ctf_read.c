/*
 * Sonde's CTF packets read back (ctf_read.h): the header at the offsets of ctf/packet.h, each
 * event's header (compact: the time's low 32 bits, rebuilt from the previous event's; extended:
 * the full time), the context, then the payload walked field by field with the class's kinds
 * (ctf/field.h), every step bounded by the packet's content.
 */
#include "live/ctf_read.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctf/packet.h"
#include "ctf/tsdl.h"

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

int sn_ctf_rd_header(const uint8_t *p, size_t len, struct sn_ctf_rd_packet *out)
{
    if (len < SN_CTF_PACKET_HEADER || le(p, 4) != SN_CTF_MAGIC || le(p + 20, 4) != 0)
        return -EINVAL;
    uint64_t content = le(p + 48, 8), size = le(p + 56, 8);
    if (content % 8 || size % 8 || content > size || size / 8 > len ||
        content / 8 < SN_CTF_PACKET_HEADER)
        return -EINVAL;
    *out = (struct sn_ctf_rd_packet){.cpu = (uint32_t)le(p + 80, 4),
                                     .ts_begin = le(p + 32, 8),
                                     .ts_end = le(p + 40, 8),
                                     .seq = le(p + 64, 8),
                                     .discarded = le(p + 72, 8),
                                     .content = (size_t)(content / 8),
                                     .size = (size_t)(size / 8)};
    return 0;
}

/* The bytes of field f of class c at p[rem] (prev: the previous field's value, a sequence's
 * length), or -1 when they do not fit. */
static long field_len(uint8_t kind, const uint8_t *p, size_t rem, uint64_t prev)
{
    size_t n;
    switch (kind) {
    case SN_CTF_U8:
        n = 1;
        break;
    case SN_CTF_I32:
    case SN_CTF_U32:
        n = 4;
        break;
    case SN_CTF_I64:
    case SN_CTF_U64:
    case SN_CTF_X64:
        n = 8;
        break;
    case SN_CTF_STRING: {
        const uint8_t *z = memchr(p, 0, rem);
        if (!z)
            return -1;
        n = (size_t)(z - p) + 1;
        break;
    }
    case SN_CTF_COMM:
        n = SN_REC_COMM_LEN;
        break;
    case SN_CTF_ARGS6:
        n = 8 * SN_REC_ARGS;
        break;
    case SN_CTF_SEQ_I32:
        if (prev > 255)
            return -1;
        n = 4 * (size_t)prev;
        break;
    default:
        return -1;
    }
    return n <= rem ? (long)n : -1;
}

static int is_int(uint8_t kind)
{
    return kind >= SN_CTF_U8 && kind <= SN_CTF_X64;
}

static int int_bytes(uint8_t kind)
{
    return kind == SN_CTF_U8 ? 1 : kind == SN_CTF_I32 || kind == SN_CTF_U32 ? 4 : 8;
}

static int64_t int_of(uint8_t kind, const uint8_t *p)
{
    uint64_t v = le(p, int_bytes(kind));
    if (kind == SN_CTF_I32)
        return (int32_t)(uint32_t)v;
    return (int64_t)v;
}

int sn_ctf_rd_next(const struct sn_ctf_classes *cls, const uint8_t *p,
                   const struct sn_ctf_rd_packet *pk, size_t *off, uint64_t *prev_ts,
                   struct sn_ctf_rd_event *ev)
{
    size_t at = *off ? *off : SN_CTF_PACKET_HEADER, end = pk->content;
    if (at >= end)
        return 0;
    if (end - at < SN_CTF_HEADER_COMPACT + SN_CTF_EVENT_CONTEXT)
        return -EINVAL;
    uint32_t id = (uint32_t)le(p + at, 2);
    uint64_t ts;
    if (id == SN_CTF_EXTENDED_ID) {
        if (end - at < SN_CTF_HEADER_EXT + SN_CTF_EVENT_CONTEXT)
            return -EINVAL;
        id = (uint32_t)le(p + at + 2, 4);
        ts = le(p + at + 6, 8);
        at += SN_CTF_HEADER_EXT;
    } else {
        uint64_t low = le(p + at + 2, 4);
        ts = (*prev_ts & ~(uint64_t)0xffffffffu) | low;
        if (ts < *prev_ts)
            ts += 1ull << 32;
        at += SN_CTF_HEADER_COMPACT;
    }
    if (id >= cls->n)
        return -EINVAL;
    const struct sn_ctf_class *c = &cls->c[id];
    ev->cls = c;
    ev->ts = ts;
    ev->pid = (int32_t)(uint32_t)le(p + at, 4);
    ev->tid = (int32_t)(uint32_t)le(p + at + 4, 4);
    at += SN_CTF_EVENT_CONTEXT;
    ev->payload = p + at;
    uint64_t prev = 0;
    for (unsigned f = 0; f < c->nfields; f++) {
        long n = field_len(c->fields[f].kind, p + at, end - at, prev);
        if (n < 0)
            return -EINVAL;
        prev = is_int(c->fields[f].kind) ? (uint64_t)int_of(c->fields[f].kind, p + at) : 0;
        at += (size_t)n;
    }
    ev->len = (size_t)(p + at - ev->payload);
    *off = at;
    *prev_ts = ts;
    return 1;
}

/* The bytes of field name of ev (*kind its kind, *len its length): NULL when absent. */
static const uint8_t *field(const struct sn_ctf_rd_event *ev, const char *name, uint8_t *kind,
                            size_t *len)
{
    const uint8_t *p = ev->payload;
    size_t rem = ev->len;
    uint64_t prev = 0;
    for (unsigned f = 0; f < ev->cls->nfields; f++) {
        uint8_t k = ev->cls->fields[f].kind;
        long n = field_len(k, p, rem, prev);
        if (n < 0)
            return NULL;
        if (strcmp(ev->cls->fields[f].name, name) == 0) {
            *kind = k;
            *len = (size_t)n;
            return p;
        }
        prev = is_int(k) ? (uint64_t)int_of(k, p) : 0;
        p += n;
        rem -= (size_t)n;
    }
    return NULL;
}

int sn_ctf_rd_int(const struct sn_ctf_rd_event *ev, const char *name, int64_t *v)
{
    uint8_t k;
    size_t n;
    const uint8_t *p = field(ev, name, &k, &n);
    if (!p || !is_int(k))
        return -ENOENT;
    *v = int_of(k, p);
    return 0;
}

int sn_ctf_rd_str(const struct sn_ctf_rd_event *ev, const char *name, char *out, size_t cap)
{
    uint8_t k;
    size_t n;
    const uint8_t *p = field(ev, name, &k, &n);
    if (!p || (k != SN_CTF_STRING && k != SN_CTF_COMM) || cap == 0)
        return -ENOENT;
    size_t m = strnlen((const char *)p, n);
    if (m >= cap)
        m = cap - 1;
    memcpy(out, p, m);
    out[m] = '\0';
    return 0;
}

struct out {
    char *p;
    size_t cap, len;
};

static void add(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct out *o, const char *fmt, ...)
{
    if (o->len + 1 >= o->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len = o->len + (size_t)n < o->cap ? o->len + (size_t)n : o->cap - 1;
}

/* Text as a quoted string: printable ASCII kept, the rest as \xNN. */
static void add_text(struct out *o, const uint8_t *s, size_t n)
{
    add(o, "\"");
    for (size_t i = 0; i < n && s[i]; i++) {
        if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\')
            add(o, "%c", s[i]);
        else
            add(o, "\\x%02x", s[i]);
    }
    add(o, "\"");
}

size_t sn_ctf_rd_format(const struct sn_ctf_rd_event *ev, char *buf, size_t cap)
{
    struct out o = {.p = buf, .cap = cap};
    const uint8_t *p = ev->payload;
    size_t rem = ev->len;
    uint64_t prev = 0;
    if (cap)
        buf[0] = '\0';
    for (unsigned f = 0; f < ev->cls->nfields; f++) {
        uint8_t k = ev->cls->fields[f].kind;
        long n = field_len(k, p, rem, prev);
        if (n < 0)
            break;
        add(&o, "%s%s=", f ? " " : "", ev->cls->fields[f].name);
        if (k == SN_CTF_X64)
            add(&o, "0x%" PRIx64, (uint64_t)int_of(k, p));
        else if (k == SN_CTF_U64)
            add(&o, "%" PRIu64, (uint64_t)int_of(k, p));
        else if (is_int(k))
            add(&o, "%" PRId64, int_of(k, p));
        else if (k == SN_CTF_STRING || k == SN_CTF_COMM)
            add_text(&o, p, (size_t)n);
        else { /* ARGS6 (hex), SEQ_I32 */
            add(&o, "[");
            for (long i = 0; i < n; i += k == SN_CTF_ARGS6 ? 8 : 4) {
                if (k == SN_CTF_ARGS6)
                    add(&o, "%s0x%" PRIx64, i ? "," : "", le(p + i, 8));
                else
                    add(&o, "%s%" PRId32, i ? "," : "", (int32_t)(uint32_t)le(p + i, 4));
            }
            add(&o, "]");
        }
        prev = is_int(k) ? (uint64_t)int_of(k, p) : 0;
        p += n;
        rem -= (size_t)n;
    }
    return o.len;
}

bool sn_ctf_rd_same_classes(const char *meta, const struct sn_ctf_classes *cls)
{
    struct sn_ctf_env env = {0};
    size_t len;
    char *mine = sn_ctf_tsdl(&env, cls, &len);
    const char *a = mine ? strstr(mine, "\nevent {") : NULL, *b = strstr(meta, "\nevent {");
    bool same = a && b && strcmp(a, b) == 0;
    free(mine);
    return same;
}

int sn_ctf_rd_clock_offset(const char *meta, int64_t *offset_ns)
{
    const char *c = strstr(meta, "\nclock {");
    const char *end = c ? strstr(c, "\n};") : NULL;
    const char *o = c ? strstr(c, "\n\toffset = ") : NULL;
    char *stop;
    if (!o || !end || o > end)
        return -ENOENT;
    long long v = strtoll(o + 11, &stop, 10);
    if (stop == o + 11 || *stop != ';')
        return -ENOENT;
    *offset_ns = v;
    return 0;
}
