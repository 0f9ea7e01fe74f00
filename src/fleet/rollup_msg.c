/*
 * A rollup record on the bus; see rollup_msg.h for the layout.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "fleet/rollup_msg.h"
#include "store/tiers.h"
#include "wire/frame.h"

#define HEAD 14 /* magic, version, tier, t */

static int put(struct sn_rec_buf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q)
            return -ENOMEM;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

static int put_u16(struct sn_rec_buf *b, uint16_t v)
{
    unsigned char x[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
    return put(b, x, 2);
}

static int put_u32(struct sn_rec_buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    return put(b, x, 4);
}

static int put_name(struct sn_rec_buf *b, const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max)
        return -EINVAL;
    int rc = put_u16(b, (uint16_t)n);
    return rc ? rc : put(b, s, n);
}

ssize_t sn_rollup_msg_encode(const struct sn_ds_slot *s, uint8_t arity, bool values, uint8_t tier,
                             int64_t t, const char *const *src_names, struct sn_rec_buf *b)
{
    unsigned char head[HEAD] = {'S', 'N', 'R', 'U', SN_ROLLUP_MSG_VERSION, tier};
    uint32_t *ids = NULL;
    size_t nids = s->n > s->nsrc ? s->n : s->nsrc;
    int rc = 0;

    b->len = 0;
    if (tier < SN_TIER_1M || tier > SN_TIER_1D)
        return -EINVAL;
    for (int i = 0; i < 8; i++)
        head[6 + i] = (unsigned char)((uint64_t)t >> (8 * i));
    if (nids && !(ids = malloc(nids * sizeof(*ids))))
        return -ENOMEM;
    for (size_t i = 0; i < nids; i++)
        ids[i] = (uint32_t)i;
    rc = put(b, head, HEAD);
    if (rc == 0)
        rc = put_u32(b, (uint32_t)s->n);
    for (size_t i = 0; rc == 0 && i < s->n; i++)
        rc = put_name(b, s->e[i].key, SN_WIRE_MAX_KEY);
    if (rc == 0)
        rc = put_u32(b, s->nsrc);
    for (uint32_t j = 0; rc == 0 && j < s->nsrc; j++)
        rc = src_names[s->src[j]] && src_names[s->src[j]][0]
                 ? put_name(b, src_names[s->src[j]], SN_WIRE_MAX_NAME)
                 : -EINVAL;
    if (rc == 0) {
        /* the record's source ids are the positions of the names written above */
        struct sn_ds_slot c = *s;
        c.src = ids;
        struct sn_rec_buf rec = {0};
        ssize_t n = sn_rec_encode(&c, arity, values, ids, ids, &rec);
        rc = n < 0 ? (int)n : put(b, rec.p, rec.len);
        sn_rec_buf_fini(&rec);
    }
    free(ids);
    if (rc < 0) {
        b->len = 0;
        return rc;
    }
    return (ssize_t)b->len;
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Reads a count and that many names (each 0..max bytes, or 1..max when nonempty) from
 * p[*at..len) into new strings. */
static int get_names(const unsigned char *p, size_t len, size_t *at, size_t max, bool nonempty,
                     char ***out, uint32_t *n)
{
    if (len - *at < 4)
        return SN_E_TRUNCATED;
    uint32_t k = rd32(p + *at);
    *at += 4;
    if (k > (len - *at) / 2) /* each takes 2 bytes at least */
        return SN_E_TRUNCATED;
    char **names = calloc(k ? k : 1, sizeof(*names));
    if (!names)
        return -ENOMEM;
    *out = names;
    *n = k;
    for (uint32_t i = 0; i < k; i++) {
        if (len - *at < 2)
            return SN_E_TRUNCATED;
        size_t l = (size_t)p[*at] | (size_t)p[*at + 1] << 8;
        *at += 2;
        if (l > max || (nonempty && l == 0))
            return SN_E_CORRUPT;
        if (len - *at < l)
            return SN_E_TRUNCATED;
        if (memchr(p + *at, '\0', l))
            return SN_E_CORRUPT;
        if (!(names[i] = malloc(l + 1)))
            return -ENOMEM;
        memcpy(names[i], p + *at, l);
        names[i][l] = '\0';
        *at += l;
    }
    return 0;
}

static void free_names(char **names, uint32_t n)
{
    for (uint32_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

int sn_rollup_msg_decode(const void *buf, size_t len, struct sn_rollup_msg *out)
{
    const unsigned char *p = buf;
    char **keys = NULL, **src = NULL;
    uint32_t nkeys = 0, nsrc = 0;
    size_t at = HEAD;
    int rc;

    memset(out, 0, sizeof(*out));
    if (len < HEAD)
        return SN_E_TRUNCATED;
    if (memcmp(p, "SNRU", 4) != 0 || p[4] != SN_ROLLUP_MSG_VERSION || p[5] < SN_TIER_1M ||
        p[5] > SN_TIER_1D)
        return SN_E_CORRUPT;
    uint64_t t = 0;
    for (int i = 0; i < 8; i++)
        t |= (uint64_t)p[6 + i] << (8 * i);
    rc = get_names(p, len, &at, SN_WIRE_MAX_KEY, false, &keys, &nkeys);
    if (rc == 0)
        rc = get_names(p, len, &at, SN_WIRE_MAX_NAME, true, &src, &nsrc);
    struct sn_rec_info info = {0};
    if (rc == 0)
        rc = sn_rec_decode(p + at, len - at, (const char *const *)keys, nkeys, &out->slot, &info);
    if (rc == 0)
        for (uint32_t j = 0; j < out->slot.nsrc; j++)
            if (out->slot.src[j] >= nsrc) { /* a source id past the names given */
                rc = SN_E_CORRUPT;
                break;
            }
    free_names(keys, nkeys);
    if (rc < 0) {
        free_names(src, nsrc);
        sn_ds_slot_fini(&out->slot);
        memset(out, 0, sizeof(*out));
        return rc;
    }
    /* the sources as the slot names them: slot.src[j] indexes out->src */
    char **named = calloc(out->slot.nsrc ? out->slot.nsrc : 1, sizeof(*named));
    if (!named) {
        free_names(src, nsrc);
        sn_ds_slot_fini(&out->slot);
        memset(out, 0, sizeof(*out));
        return -ENOMEM;
    }
    for (uint32_t j = 0; j < out->slot.nsrc; j++) {
        named[j] = src[out->slot.src[j]];
        src[out->slot.src[j]] = NULL;
        out->slot.src[j] = j;
    }
    free_names(src, nsrc);
    out->src = named;
    out->tier = p[5];
    out->t = (int64_t)t;
    out->slot.t = (int64_t)t;
    out->arity = info.arity;
    out->values = info.values;
    return 0;
}

void sn_rollup_msg_fini(struct sn_rollup_msg *m)
{
    if (!m)
        return;
    free_names(m->src, m->slot.nsrc);
    sn_ds_slot_fini(&m->slot);
    memset(m, 0, sizeof(*m));
}
