/*
 * Protocol Buffers' wire format (trace/pb.h).
 *
 * Nested messages are written with their length first, which is unknown until the content
 * is written: sn_pbw_begin() reserves one byte for it, and sn_pbw_end() moves the content
 * when the length needs more (a message of 128 bytes or more).
 */
#include "trace/pb.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"

int sn_pb_varint(struct sn_pb *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end)
            return -1;
        uint8_t b = *r->p++;
        if (shift == 63 && b > 1)
            return -1; /* past 64 bits */
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

int sn_pb_next(struct sn_pb *r, uint32_t *field, int *wire)
{
    uint64_t tag;
    if (r->p >= r->end)
        return 0;
    if (sn_pb_varint(r, &tag) < 0 || tag >> 3 == 0 || tag >> 3 > 0x1fffffff)
        return -1;
    *field = (uint32_t)(tag >> 3);
    *wire = (int)(tag & 7);
    if (*wire != SN_PB_VARINT && *wire != SN_PB_I64 && *wire != SN_PB_LEN && *wire != SN_PB_I32)
        return -1;
    return 1;
}

int sn_pb_fixed64(struct sn_pb *r, uint64_t *v)
{
    if (r->end - r->p < 8)
        return -1;
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--)
        x = x << 8 | r->p[i];
    r->p += 8;
    *v = x;
    return 0;
}

int sn_pb_fixed32(struct sn_pb *r, uint32_t *v)
{
    if (r->end - r->p < 4)
        return -1;
    *v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 |
         (uint32_t)r->p[3] << 24;
    r->p += 4;
    return 0;
}

int sn_pb_bytes(struct sn_pb *r, const uint8_t **p, size_t *len)
{
    uint64_t n;
    if (sn_pb_varint(r, &n) < 0 || n > (uint64_t)(r->end - r->p))
        return -1;
    *p = r->p;
    *len = (size_t)n;
    r->p += n;
    return 0;
}

int sn_pb_skip(struct sn_pb *r, int wire)
{
    uint64_t u64;
    uint32_t u32;
    const uint8_t *p;
    size_t n;
    switch (wire) {
    case SN_PB_VARINT:
        return sn_pb_varint(r, &u64);
    case SN_PB_I64:
        return sn_pb_fixed64(r, &u64);
    case SN_PB_I32:
        return sn_pb_fixed32(r, &u32);
    case SN_PB_LEN:
        return sn_pb_bytes(r, &p, &n);
    default:
        return -1;
    }
}

/* ---- Writing ------------------------------------------------------------------------------ */

static uint8_t *room(struct sn_pbw *w, size_t n)
{
    if (w->err)
        return NULL;
    if (w->len + n > w->cap) {
        uint8_t *b = sn_grow(w->buf, &w->cap, w->len + n, 1);
        if (!b) {
            w->err = -ENOMEM;
            return NULL;
        }
        w->buf = b;
    }
    return w->buf + w->len;
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static void put_varint(struct sn_pbw *w, uint64_t v)
{
    uint8_t *p = room(w, 10);
    if (!p)
        return;
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    w->len += n;
}

static void put_tag(struct sn_pbw *w, uint32_t field, int wire)
{
    put_varint(w, (uint64_t)field << 3 | (unsigned)wire);
}

void sn_pbw_varint(struct sn_pbw *w, uint32_t field, uint64_t v)
{
    put_tag(w, field, SN_PB_VARINT);
    put_varint(w, v);
}

void sn_pbw_fixed64(struct sn_pbw *w, uint32_t field, uint64_t v)
{
    put_tag(w, field, SN_PB_I64);
    uint8_t *p = room(w, 8);
    if (!p)
        return;
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    w->len += 8;
}

void sn_pbw_fixed32(struct sn_pbw *w, uint32_t field, uint32_t v)
{
    put_tag(w, field, SN_PB_I32);
    uint8_t *p = room(w, 4);
    if (!p)
        return;
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    w->len += 4;
}

void sn_pbw_double(struct sn_pbw *w, uint32_t field, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    sn_pbw_fixed64(w, field, u);
}

void sn_pbw_bytes(struct sn_pbw *w, uint32_t field, const void *p, size_t len)
{
    put_tag(w, field, SN_PB_LEN);
    put_varint(w, len);
    uint8_t *d = room(w, len);
    if (!d)
        return;
    if (len)
        memcpy(d, p, len);
    w->len += len;
}

void sn_pbw_string(struct sn_pbw *w, uint32_t field, const char *s)
{
    if (s && *s)
        sn_pbw_bytes(w, field, s, strlen(s));
}

size_t sn_pbw_begin(struct sn_pbw *w, uint32_t field)
{
    put_tag(w, field, SN_PB_LEN);
    uint8_t *p = room(w, 1);
    if (!p)
        return 0;
    *p = 0;
    return w->len++;
}

void sn_pbw_end(struct sn_pbw *w, size_t mark)
{
    if (w->err)
        return;
    size_t n = w->len - mark - 1, extra = varint_len(n) - 1;
    if (extra && !room(w, extra))
        return;
    if (extra)
        memmove(w->buf + mark + 1 + extra, w->buf + mark + 1, n);
    size_t i = mark;
    uint64_t v = n;
    while (v >= 0x80) {
        w->buf[i++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    w->buf[i] = (uint8_t)v;
    w->len += extra;
}

void sn_pbw_fini(struct sn_pbw *w)
{
    free(w->buf);
    memset(w, 0, sizeof(*w));
}
