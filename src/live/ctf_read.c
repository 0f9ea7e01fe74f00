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
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctf/packet.h"

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
    case SN_CTF_X8:
        n = 1;
        break;
    case SN_CTF_U16:
        n = 2;
        break;
    case SN_CTF_ADDR16:
        n = 16;
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
    return (kind >= SN_CTF_U8 && kind <= SN_CTF_X64) || kind == SN_CTF_U16 || kind == SN_CTF_X8;
}

static int int_bytes(uint8_t kind)
{
    return kind == SN_CTF_U8 || kind == SN_CTF_X8     ? 1
           : kind == SN_CTF_U16                       ? 2
           : kind == SN_CTF_I32 || kind == SN_CTF_U32 ? 4
                                                      : 8;
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
        if (k == SN_CTF_X64 || k == SN_CTF_X8)
            add(&o, "0x%" PRIx64, (uint64_t)int_of(k, p));
        else if (k == SN_CTF_U64)
            add(&o, "%" PRIu64, (uint64_t)int_of(k, p));
        else if (is_int(k))
            add(&o, "%" PRId64, int_of(k, p));
        else if (k == SN_CTF_STRING || k == SN_CTF_COMM)
            add_text(&o, p, (size_t)n);
        else if (k == SN_CTF_ADDR16) { /* an address's 16 bytes, as babeltrace2 lists them */
            add(&o, "[");
            for (long i = 0; i < n; i++)
                add(&o, "%s0x%02x", i ? "," : "", p[i]);
            add(&o, "]");
        } else { /* ARGS6 (hex), SEQ_I32 */
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

/* The kind of a field declaration d (the text before " _name"), with suffix the text after
 * the name ("", "[16]", "[6]", "[ __x_length ]"): 0 when it is not one tsdl.c writes. */
static uint8_t kind_of(const char *d, size_t dlen, const char *suffix)
{
    static const char str[] = "string { encoding = UTF8; }";
    if (dlen == sizeof(str) - 1 && memcmp(d, str, dlen) == 0)
        return *suffix ? 0 : SN_CTF_STRING;
    int size = 0, sgn = -1, base = 0;
    char enc[8] = "";
    if (sscanf(d, "integer { size = %d; align = 8; signed = %d; encoding = %7[^;]; base = %d; }",
               &size, &sgn, enc, &base) != 4)
        return 0;
    bool utf8 = strcmp(enc, "UTF8") == 0, none = strcmp(enc, "none") == 0;
    if (!utf8 && !none)
        return 0;
    if (!strcmp(suffix, "[16]"))
        return size == 8 && !sgn && utf8 && base == 10   ? SN_CTF_COMM
               : size == 8 && !sgn && none && base == 16 ? SN_CTF_ADDR16
                                                         : 0;
    if (!strcmp(suffix, "[6]"))
        return size == 64 && !sgn && none && base == 10 ? SN_CTF_ARGS6 : 0;
    if (!strncmp(suffix, "[ __", 4))
        return size == 32 && sgn == 1 && none && base == 10 ? SN_CTF_SEQ_I32 : 0;
    if (*suffix || !none)
        return 0;
    if (base == 16)
        return size == 64 && !sgn ? SN_CTF_X64 : size == 8 && !sgn ? SN_CTF_X8 : 0;
    if (base != 10)
        return 0;
    return size == 8 && !sgn    ? SN_CTF_U8
           : size == 16 && !sgn ? SN_CTF_U16
           : size == 32 && sgn  ? SN_CTF_I32
           : size == 32         ? SN_CTF_U32
           : size == 64 && sgn  ? SN_CTF_I64
           : size == 64         ? SN_CTF_U64
                                : 0;
}

void sn_ctf_rd_classes_free(struct sn_ctf_rd_classes *c)
{
    free(c->cls.c);
    free(c->names);
    memset(c, 0, sizeof(*c));
}

int sn_ctf_rd_classes_parse(const char *meta, struct sn_ctf_rd_classes *out)
{
    static const char open_ev[] = "\nevent {\n\tname = \"";
    size_t n = 0, namelen = 0;
    memset(out, 0, sizeof(*out));
    for (const char *p = meta; (p = strstr(p, open_ev)); p += sizeof(open_ev) - 1)
        n++;
    if (n == 0 || n > 1u << 16)
        return -EINVAL;
    out->cls.c = calloc(n, sizeof(*out->cls.c));
    out->names = malloc(strlen(meta) + 1); /* field names are shorter than the text */
    if (!out->cls.c || !out->names) {
        sn_ctf_rd_classes_free(out);
        return -ENOMEM;
    }
    const char *p = meta;
    for (size_t i = 0; i < n; i++) {
        const char *e = strstr(p, open_ev);
        if (!e) /* one was inside a name */
            goto bad;
        p = e + sizeof(open_ev) - 1;
        const char *q = strchr(p, '"');
        static const char fields[] = "\n\tstream_id = 0;\n\tfields := struct {\n";
        unsigned id;
        char *idend;
        if (!q || q == p || (size_t)(q - p) >= sizeof(out->cls.c[0].name) ||
            memchr(p, '\n', (size_t)(q - p)) || strncmp(q, "\";\n\tid = ", 8) != 0)
            goto bad;
        unsigned long v = strtoul(q + 8, &idend, 10);
        if (idend == q + 8 || *idend != ';' || v >= n || out->cls.c[v].name[0] ||
            strncmp(idend + 1, fields, sizeof(fields) - 1) != 0)
            goto bad;
        id = (unsigned)v;
        struct sn_ctf_class *c = &out->cls.c[id];
        memcpy(c->name, p, (size_t)(q - p));
        c->id = id;
        p = idend + 1 + sizeof(fields) - 1;
        while (strncmp(p, "\t};\n", 4) != 0) {
            const char *eol = strchr(p, '\n'), *u;
            if (!eol || strncmp(p, "\t\t", 2) || c->nfields == SN_CTF_CLASS_FIELDS)
                goto bad;
            p += 2;
            const char *semi = memchr(p, ';', (size_t)(eol - p));
            const char *lastsemi = eol - 1;
            if (!semi || *lastsemi != ';')
                goto bad;
            const char *br = memchr(p, '[', (size_t)(lastsemi - p)), *lim = br ? br : lastsemi;
            u = NULL;
            for (const char *x = p; x + 1 < lim; x++) /* the name: after the last " _" */
                if (x[0] == ' ' && x[1] == '_')
                    u = x;
            if (!u)
                goto bad;
            const char *nm = u + 2, *ne = nm;
            while (ne < lastsemi && *ne != '[')
                ne++;
            char suffix[300], decl[200];
            if ((size_t)(lastsemi - ne) >= sizeof(suffix) || (size_t)(u - p) >= sizeof(decl) ||
                ne == nm)
                goto bad;
            memcpy(suffix, ne, (size_t)(lastsemi - ne));
            suffix[lastsemi - ne] = '\0';
            memcpy(decl, p, (size_t)(u - p));
            decl[u - p] = '\0';
            uint8_t kind = kind_of(decl, (size_t)(u - p), suffix);
            if (!kind)
                goto bad;
            char *name = out->names + namelen;
            memcpy(name, nm, (size_t)(ne - nm));
            name[ne - nm] = '\0';
            namelen += (size_t)(ne - nm) + 1;
            c->fields[c->nfields].name = name;
            c->fields[c->nfields].kind = kind;
            c->argi[c->nfields] = -1;
            c->nfields++;
            p = eol + 1;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (!out->cls.c[i].name[0])
            goto bad; /* ids not 0..n-1 */
    out->cls.n = n;
    return 0;
bad:
    sn_ctf_rd_classes_free(out);
    return -EINVAL;
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
