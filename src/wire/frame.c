/*
 * Binary frames; see frame.h for the layout. Encoding writes through a bounded cursor;
 * decoding reads through one that fails on the first short read, so no check can be
 * forgotten on a path.
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc32c.h"
#include "core/err.h"
#include "wire/frame.h"

#define HEADER 40

struct wcur {
    uint8_t *p, *end;
};

static void put(struct wcur *w, const void *src, size_t n)
{
    memcpy(w->p, src, n);
    w->p += n;
}

static void put_u16(struct wcur *w, uint16_t v)
{
    v = htole16(v);
    put(w, &v, 2);
}

static void put_u32(struct wcur *w, uint32_t v)
{
    v = htole32(v);
    put(w, &v, 4);
}

static void put_u64(struct wcur *w, uint64_t v)
{
    v = htole64(v);
    put(w, &v, 8);
}

static bool valid(const struct sn_wire_frame *f)
{
    uint64_t sum = 0;
    size_t idl = f->id ? strlen(f->id) : 0, hl = f->host ? strlen(f->host) : 0;

    if (idl == 0 || idl > SN_WIRE_MAX_NAME || hl == 0 || hl > SN_WIRE_MAX_NAME ||
        f->arity > SN_WIRE_NUMERIC_BY_KEY)
        return false;
    if ((f->arity == SN_WIRE_SCALAR && f->n != 0) || (f->arity == SN_WIRE_NUMERIC && f->n != 1))
        return false;
    for (size_t i = 0; i < f->n; i++) {
        const struct sn_wire_entry *e = &f->entries[i];
        bool hist = f->arity >= SN_WIRE_NUMERIC;
        if (!e->key || strlen(e->key) > SN_WIRE_MAX_KEY || (hist != (e->hist != NULL)))
            return false;
        if (f->arity == SN_WIRE_NUMERIC && e->key[0])
            return false;
        if (hist && sn_hist_count(e->hist) != e->count)
            return false;
        sum += e->count;
    }
    return f->arity == SN_WIRE_SCALAR || sum == f->total;
}

size_t sn_wire_frame_len(const struct sn_wire_frame *f)
{
    size_t n =
        HEADER + 2 + (f->id ? strlen(f->id) : 0) + 2 + (f->host ? strlen(f->host) : 0) + 4 + 4;
    for (size_t i = 0; i < f->n; i++) {
        n += 2 + (f->entries[i].key ? strlen(f->entries[i].key) : 0) + 8;
        if (f->entries[i].hist)
            n += 4 + sn_hist_encoded_len(f->entries[i].hist, SN_HIST_EXACT_WIDTHS);
    }
    return n;
}

ssize_t sn_wire_frame_encode(const struct sn_wire_frame *f, void *buf, size_t len)
{
    size_t need;
    struct wcur w = {buf, (uint8_t *)buf + len};
    uint16_t zero16 = 0;

    if (!valid(f))
        return -EINVAL;
    need = sn_wire_frame_len(f);
    if (len < need)
        return -ENOSPC;
    put(&w, "SNFR", 4);
    put(&w, &(uint8_t){SN_WIRE_VERSION}, 1);
    put(&w, &f->arity, 1);
    put(&w, &zero16, 2);
    put_u64(&w, (uint64_t)f->t);
    put_u64(&w, f->total);
    put_u64(&w, f->over_cap);
    put_u64(&w, f->map_full);
    put_u16(&w, (uint16_t)strlen(f->id));
    put(&w, f->id, strlen(f->id));
    put_u16(&w, (uint16_t)strlen(f->host));
    put(&w, f->host, strlen(f->host));
    put_u32(&w, (uint32_t)f->n);
    for (size_t i = 0; i < f->n; i++) {
        const struct sn_wire_entry *e = &f->entries[i];
        put_u16(&w, (uint16_t)strlen(e->key));
        put(&w, e->key, strlen(e->key));
        put_u64(&w, e->count);
        if (e->hist) {
            size_t hl = sn_hist_encoded_len(e->hist, SN_HIST_EXACT_WIDTHS);
            put_u32(&w, (uint32_t)hl);
            sn_hist_encode(e->hist, w.p, hl, SN_HIST_EXACT_WIDTHS);
            w.p += hl;
        }
    }
    put_u32(&w, sn_crc32c(0, buf, (size_t)(w.p - (uint8_t *)buf)));
    return (ssize_t)need;
}

struct rcur {
    const uint8_t *p, *end;
    bool short_read;
};

static bool get(struct rcur *r, void *dst, size_t n)
{
    if ((size_t)(r->end - r->p) < n) {
        r->short_read = true;
        return false;
    }
    memcpy(dst, r->p, n);
    r->p += n;
    return true;
}

static uint16_t get_u16(struct rcur *r)
{
    uint16_t v = 0;
    get(r, &v, 2);
    return le16toh(v);
}

static uint32_t get_u32(struct rcur *r)
{
    uint32_t v = 0;
    get(r, &v, 4);
    return le32toh(v);
}

static uint64_t get_u64(struct rcur *r)
{
    uint64_t v = 0;
    get(r, &v, 8);
    return le64toh(v);
}

/* A length-prefixed string of at most max bytes, NUL-terminated and owned, or NULL. */
static char *get_str(struct rcur *r, size_t max, int *rc)
{
    uint16_t n = get_u16(r);
    char *s;

    if (r->short_read)
        return NULL;
    if (n > max) {
        *rc = SN_E_CORRUPT;
        return NULL;
    }
    if ((size_t)(r->end - r->p) < n) {
        r->short_read = true;
        return NULL;
    }
    s = malloc((size_t)n + 1);
    if (!s) {
        *rc = -ENOMEM;
        return NULL;
    }
    memcpy(s, r->p, n);
    s[n] = '\0';
    r->p += n;
    if (strlen(s) != n) { /* a NUL inside a name */
        free(s);
        *rc = SN_E_CORRUPT;
        return NULL;
    }
    return s;
}

void sn_wire_frame_fini(struct sn_wire_frame *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->entries[i].key);
        sn_hist_destroy(f->entries[i].hist);
    }
    free(f->entries);
    free(f->id);
    free(f->host);
    memset(f, 0, sizeof(*f));
}

bool sn_wire_frame_equal(const struct sn_wire_frame *a, const struct sn_wire_frame *b)
{
    if (strcmp(a->id, b->id) || strcmp(a->host, b->host) || a->t != b->t || a->arity != b->arity ||
        a->total != b->total || a->over_cap != b->over_cap || a->map_full != b->map_full ||
        a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        const struct sn_wire_entry *x = &a->entries[i], *y = &b->entries[i];
        if (strcmp(x->key, y->key) || x->count != y->count ||
            (x->hist != NULL) != (y->hist != NULL))
            return false;
        if (x->hist && !sn_hist_equal(x->hist, y->hist))
            return false;
    }
    return true;
}

static int decode(const uint8_t *buf, size_t len, struct sn_wire_frame *f)
{
    struct rcur r = {buf, buf + len - 4, false};
    uint8_t magic[4], version, arity;
    uint16_t reserved;
    uint32_t n, crc;
    int rc = 0;

    memcpy(&crc, buf + len - 4, 4);
    if (sn_crc32c(0, buf, len - 4) != le32toh(crc))
        return SN_E_CORRUPT;
    get(&r, magic, 4);
    get(&r, &version, 1);
    get(&r, &arity, 1);
    reserved = get_u16(&r);
    if (r.short_read)
        return SN_E_TRUNCATED;
    if (memcmp(magic, "SNFR", 4) != 0 || version != SN_WIRE_VERSION ||
        arity > SN_WIRE_NUMERIC_BY_KEY || reserved != 0)
        return SN_E_CORRUPT;
    f->arity = arity;
    f->t = (int64_t)get_u64(&r);
    f->total = get_u64(&r);
    f->over_cap = get_u64(&r);
    f->map_full = get_u64(&r);
    f->id = get_str(&r, SN_WIRE_MAX_NAME, &rc);
    if (f->id)
        f->host = get_str(&r, SN_WIRE_MAX_NAME, &rc);
    if (rc)
        return rc;
    if (r.short_read)
        return SN_E_TRUNCATED;
    n = get_u32(&r);
    if (r.short_read)
        return SN_E_TRUNCATED;
    if (n > (size_t)(r.end - r.p) / 10) /* an entry takes at least 10 bytes */
        return SN_E_CORRUPT;
    f->entries = calloc(n ? n : 1, sizeof(*f->entries));
    if (!f->entries)
        return -ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        struct sn_wire_entry *e = &f->entries[i];
        e->key = get_str(&r, SN_WIRE_MAX_KEY, &rc);
        if (!e->key)
            return rc ? rc : SN_E_TRUNCATED;
        f->n = i + 1;
        e->count = get_u64(&r);
        if (arity >= SN_WIRE_NUMERIC) {
            uint32_t hl = get_u32(&r);
            ssize_t used;
            if (r.short_read)
                return SN_E_TRUNCATED;
            if (hl > (size_t)(r.end - r.p))
                return SN_E_TRUNCATED;
            e->hist = sn_hist_create();
            if (!e->hist)
                return -ENOMEM;
            used = sn_hist_decode(e->hist, r.p, hl, SN_HIST_STRICT);
            if (used < 0)
                return used == -ENOMEM ? -ENOMEM : SN_E_CORRUPT;
            r.p += hl;
        }
        if (r.short_read)
            return SN_E_TRUNCATED;
    }
    if (r.p != r.end)
        return SN_E_TRAILING;
    return valid(f) ? 0 : SN_E_CORRUPT;
}

int sn_wire_frame_decode(const void *buf, size_t len, struct sn_wire_frame *out)
{
    int rc;

    memset(out, 0, sizeof(*out));
    if (len < HEADER + 2 + 2 + 4 + 4)
        return SN_E_TRUNCATED;
    rc = decode(buf, len, out);
    if (rc < 0)
        sn_wire_frame_fini(out);
    return rc;
}

bool sn_wire_utf8_valid(const char *str, size_t n, size_t *bad)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            break;
        }
        if (n - i < len)
            break;
        size_t k = 1;
        for (; k < len && (s[i + k] & 0xc0) == 0x80; k++)
            cp = cp << 6 | (s[i + k] & 0x3f);
        if (k < len || cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            break;
        i += len;
    }
    if (i < n && bad)
        *bad = i;
    return i == n;
}
