/*
 * The appendable live source (live_feed.h). Each stream holds its packets in arrival order in
 * an array used as a queue (head index, compacted when half is dead); a packet's offset is the
 * stream's byte count before it, so offsets grow and never repeat even after eviction.
 */
#include "live/live_feed.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "ctf/packet.h"

struct pkt {
    uint64_t offset;
    struct sn_live_index ix;
    uint8_t *bytes;
    size_t len;
};

struct stream {
    struct pkt *q;
    size_t head, n, cap; /* live packets are q[head .. n) */
    size_t bytes;        /* kept */
    uint64_t end;        /* the next packet's offset */
    uint64_t last_ts;    /* the last packet's timestamp_end */
};

struct sn_live_feed {
    pthread_mutex_t mu;
    struct sn_live_source src;
    unsigned nstreams;
    size_t max_bytes;
    struct stream *s;
    char *meta;
    size_t meta_len, meta_cap;
    uint64_t beacon;
    bool ended;
    uint64_t evicted;
};

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static unsigned f_streams(void *ctx)
{
    return ((struct sn_live_feed *)ctx)->nstreams;
}

static size_t f_metadata(void *ctx, uint64_t from, uint8_t *buf, size_t cap)
{
    struct sn_live_feed *f = ctx;
    pthread_mutex_lock(&f->mu);
    size_t n = 0;
    if (from < f->meta_len) {
        n = f->meta_len - (size_t)from;
        if (n > cap)
            n = cap;
        memcpy(buf, f->meta + from, n);
    }
    pthread_mutex_unlock(&f->mu);
    return n;
}

static enum sn_live_next f_next(void *ctx, unsigned stream, uint64_t from, struct sn_live_index *ix)
{
    struct sn_live_feed *f = ctx;
    if (stream >= f->nstreams)
        return SN_LIVE_NEXT_HUP;
    pthread_mutex_lock(&f->mu);
    struct stream *s = &f->s[stream];
    enum sn_live_next r;
    size_t i = s->head;
    while (i < s->n && s->q[i].offset < from)
        i++;
    if (i < s->n) {
        *ix = s->q[i].ix;
        r = SN_LIVE_NEXT_PACKET;
    } else {
        memset(ix, 0, sizeof(*ix));
        ix->timestamp_end = f->beacon > s->last_ts ? f->beacon : s->last_ts;
        r = f->ended        ? SN_LIVE_NEXT_HUP
            : f->beacon > 0 ? SN_LIVE_NEXT_INACTIVE
                            : SN_LIVE_NEXT_RETRY;
    }
    pthread_mutex_unlock(&f->mu);
    return r;
}

static int f_read(void *ctx, unsigned stream, uint64_t offset, uint8_t *buf, size_t len)
{
    struct sn_live_feed *f = ctx;
    if (stream >= f->nstreams)
        return -ENOENT;
    pthread_mutex_lock(&f->mu);
    struct stream *s = &f->s[stream];
    int rc = -ENOENT;
    for (size_t i = s->head; i < s->n && s->q[i].offset <= offset; i++) {
        const struct pkt *p = &s->q[i];
        if (offset - p->offset <= p->len && len <= p->len - (offset - p->offset)) {
            memcpy(buf, p->bytes + (offset - p->offset), len);
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

struct sn_live_feed *sn_live_feed_new(unsigned nstreams, size_t max_bytes)
{
    if (nstreams == 0 || nstreams > 4096)
        return NULL;
    struct sn_live_feed *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->s = calloc(nstreams, sizeof(*f->s));
    if (!f->s) {
        free(f);
        return NULL;
    }
    pthread_mutex_init(&f->mu, NULL);
    f->nstreams = nstreams;
    f->max_bytes = max_bytes ? max_bytes : SN_LIVE_FEED_BUFFER;
    f->src = (struct sn_live_source){.ctx = f,
                                     .streams = f_streams,
                                     .metadata = f_metadata,
                                     .next_packet = f_next,
                                     .read_packet = f_read};
    return f;
}

int sn_live_feed_metadata(struct sn_live_feed *f, const char *text, size_t len)
{
    pthread_mutex_lock(&f->mu);
    int rc = 0;
    char *g = sn_grow(f->meta, &f->meta_cap, f->meta_len + len, 1);
    if (!g) {
        rc = -ENOMEM;
    } else {
        f->meta = g;
        memcpy(f->meta + f->meta_len, text, len);
        f->meta_len += len;
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static void evict(struct sn_live_feed *f, struct stream *s)
{
    while (s->bytes > f->max_bytes && s->n - s->head > 1) {
        struct pkt *p = &s->q[s->head++];
        s->bytes -= p->len;
        free(p->bytes);
        f->evicted++;
    }
    if (s->head > 0 && s->head * 2 >= s->n) {
        memmove(s->q, s->q + s->head, (s->n - s->head) * sizeof(*s->q));
        s->n -= s->head;
        s->head = 0;
    }
}

int sn_live_feed_append(struct sn_live_feed *f, unsigned stream, const uint8_t *pkt, size_t len)
{
    if (stream >= f->nstreams || len < SN_CTF_PACKET_HEADER || le32(pkt) != SN_CTF_MAGIC)
        return -EINVAL;
    uint64_t content = le64(pkt + 48), size = le64(pkt + 56);
    if (size != (uint64_t)len * 8 || content > size || content < SN_CTF_PACKET_HEADER * 8)
        return -EINVAL;
    struct sn_live_index ix = {.packet_size = size,
                               .content_size = content,
                               .timestamp_begin = le64(pkt + 32),
                               .timestamp_end = le64(pkt + 40),
                               .events_discarded = le64(pkt + 72),
                               .stream_id = le32(pkt + 20),
                               .status = SN_LIVE_INDEX_OK};
    if (ix.timestamp_end < ix.timestamp_begin)
        return -EINVAL;
    uint8_t *copy = malloc(len);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, pkt, len);
    pthread_mutex_lock(&f->mu);
    struct stream *s = &f->s[stream];
    int rc = 0;
    if (f->ended)
        rc = -EPIPE;
    else if (ix.timestamp_begin < f->beacon || ix.timestamp_begin < s->last_ts)
        rc = -EINVAL;
    if (rc == 0) {
        struct pkt *g = sn_grow(s->q, &s->cap, s->n + 1, sizeof(*g));
        if (!g) {
            rc = -ENOMEM;
        } else {
            s->q = g;
            ix.offset = s->end;
            s->q[s->n++] = (struct pkt){.offset = s->end, .ix = ix, .bytes = copy, .len = len};
            copy = NULL;
            s->end += len;
            s->bytes += len;
            s->last_ts = ix.timestamp_end;
            evict(f, s);
        }
    }
    pthread_mutex_unlock(&f->mu);
    free(copy);
    return rc;
}

void sn_live_feed_beacon(struct sn_live_feed *f, uint64_t ts)
{
    pthread_mutex_lock(&f->mu);
    if (ts > f->beacon)
        f->beacon = ts;
    pthread_mutex_unlock(&f->mu);
}

void sn_live_feed_end(struct sn_live_feed *f)
{
    pthread_mutex_lock(&f->mu);
    f->ended = true;
    pthread_mutex_unlock(&f->mu);
}

uint64_t sn_live_feed_evicted(struct sn_live_feed *f)
{
    pthread_mutex_lock(&f->mu);
    uint64_t n = f->evicted;
    pthread_mutex_unlock(&f->mu);
    return n;
}

const struct sn_live_source *sn_live_feed_source(struct sn_live_feed *f)
{
    return &f->src;
}

void sn_live_feed_free(struct sn_live_feed *f)
{
    if (!f)
        return;
    for (unsigned i = 0; i < f->nstreams; i++) {
        for (size_t j = f->s[i].head; j < f->s[i].n; j++)
            free(f->s[i].q[j].bytes);
        free(f->s[i].q);
    }
    free(f->s);
    free(f->meta);
    pthread_mutex_destroy(&f->mu);
    free(f);
}
