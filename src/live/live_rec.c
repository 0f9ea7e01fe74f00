/*
 * Live publishing of recording sessions (live_rec.h). One entry per published session, in a
 * list under the publisher's mutex; an entry is the ctx of its sink, so the drain's calls touch
 * only the entry (and its feed, which has its own lock) and never the list.
 */
#include "live/live_rec.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "ctf/tsdl.h"
#include "live/live_feed.h"
#include "live/live_packet.h"

#define LINGER_MAX 600 /* s: an ended session goes even when a viewer still holds it */

struct entry {
    struct entry *next;
    struct sn_live_rec *p;
    char name[SN_LIVE_SESSION_NAME];
    int64_t id; /* the relay's */
    struct sn_live_feed *feed;
    struct sn_live_packet_info pi; /* classes, uuid; cpu, seq and discarded set per packet */
    unsigned ncpu;
    uint64_t *seq, *discarded, *last_ts; /* [ncpu] */
    uint64_t beacon;
    uint8_t *buf;
    size_t cap;
    bool ended; /* under p->mu */
    uint64_t ended_at;
};

struct sn_live_rec {
    pthread_mutex_t mu;
    struct sn_live_rec_opts o;
    char host[SN_LIVE_HOST_NAME];
    struct entry *list;
};

static uint64_t mono_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec;
}

int sn_live_rec_new(struct sn_live_rec **out, const struct sn_live_rec_opts *o)
{
    *out = NULL;
    if (!o || !o->relay || !o->hostname)
        return -EINVAL;
    struct sn_live_rec *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->o = *o;
    if (!p->o.linger_s)
        p->o.linger_s = 10;
    snprintf(p->host, sizeof(p->host), "%s", o->hostname);
    p->o.hostname = p->host;
    pthread_mutex_init(&p->mu, NULL);
    *out = p;
    return 0;
}

static void entry_free(struct entry *e)
{
    sn_live_feed_free(e->feed);
    free(e->seq);
    free(e->discarded);
    free(e->last_ts);
    free(e->buf);
    free(e);
}

/* Unlinks and frees e (p->mu held), removing it from the relay first. */
static void retire(struct sn_live_rec *p, struct entry **link)
{
    struct entry *e = *link;
    *link = e->next;
    sn_relay_remove(p->o.relay, e->id);
    entry_free(e);
}

static int s_events(void *ctx, unsigned cpu, const struct sn_rec_event *ev, size_t n, uint64_t lost)
{
    struct entry *e = ctx;
    if (cpu >= e->ncpu)
        return -EINVAL;
    uint64_t floor = e->last_ts[cpu] > e->beacon ? e->last_ts[cpu] : e->beacon;
    size_t skip = 0;
    while (skip < n && ev[skip].ts < floor) /* sorted: the early ones are first */
        skip++;
    e->discarded[cpu] += lost + skip;
    if (skip == n)
        return 0;
    e->pi.cpu = cpu;
    e->pi.seq = e->seq[cpu];
    e->pi.discarded = e->discarded[cpu];
    ssize_t len = sn_live_packet(&e->pi, ev + skip, n - skip, &e->buf, &e->cap);
    if (len < 0)
        return (int)len;
    int rc = sn_live_feed_append(e->feed, cpu, e->buf, (size_t)len);
    if (rc == 0) {
        e->seq[cpu]++;
        e->last_ts[cpu] = ev[n - 1].ts;
    }
    return rc;
}

static void s_pass_end(void *ctx, uint64_t ts)
{
    struct entry *e = ctx;
    if (ts > e->beacon)
        e->beacon = ts;
    sn_live_feed_beacon(e->feed, ts);
}

static void s_end(void *ctx)
{
    struct entry *e = ctx;
    sn_live_feed_end(e->feed);
    pthread_mutex_lock(&e->p->mu);
    e->ended = true;
    e->ended_at = mono_s();
    pthread_mutex_unlock(&e->p->mu);
}

int sn_live_rec_sink(struct sn_live_rec *p, const char *name, unsigned ncpu,
                     const struct sn_ctf_classes *cls, struct sn_rec_sink *out, char *why,
                     size_t len)
{
    struct sn_ctf_env env;
    int rc;

    if (!name || !*name || strlen(name) >= SN_LIVE_SESSION_NAME || ncpu == 0 || !cls) {
        snprintf(why, len, "bad live session");
        return -EINVAL;
    }
    struct entry *e = calloc(1, sizeof(*e));
    if (!e)
        goto nomem;
    e->p = p;
    e->ncpu = ncpu;
    snprintf(e->name, sizeof(e->name), "%s", name);
    e->seq = calloc(ncpu, sizeof(*e->seq));
    e->discarded = calloc(ncpu, sizeof(*e->discarded));
    e->last_ts = calloc(ncpu, sizeof(*e->last_ts));
    e->feed = sn_live_feed_new(ncpu, p->o.max_bytes);
    if (!e->seq || !e->discarded || !e->last_ts || !e->feed)
        goto nomem;
    if ((rc = sn_ctf_env_host(&env, name, name)) != 0) {
        snprintf(why, len, "cannot describe the host for the trace: %s", strerror(-rc));
        entry_free(e);
        return rc;
    }
    snprintf(env.hostname, sizeof(env.hostname), "%s", p->host); /* the URL's host */
    size_t mlen;
    char *meta = sn_ctf_tsdl(&env, cls, &mlen);
    rc = meta ? sn_live_feed_metadata(e->feed, meta, mlen) : -ENOMEM;
    free(meta);
    if (rc != 0)
        goto nomem;
    e->pi.classes = cls;
    memcpy(e->pi.uuid, env.uuid, 16);

    pthread_mutex_lock(&p->mu);
    for (struct entry **l = &p->list; *l;) { /* an ended session of that name: replaced */
        if (strcmp((*l)->name, name) == 0 && (*l)->ended)
            retire(p, l);
        else
            l = &(*l)->next;
    }
    int64_t id = sn_relay_add(p->o.relay, p->host, name, p->o.period_ms * 1000u,
                              sn_live_feed_source(e->feed));
    if (id > 0) {
        e->id = id;
        e->next = p->list;
        p->list = e;
    }
    pthread_mutex_unlock(&p->mu);
    if (id < 0) {
        snprintf(why, len, "cannot publish \"%s\" live: %s", name,
                 id == -EEXIST ? "a live session of that name exists" : strerror((int)-id));
        entry_free(e);
        return (int)id;
    }
    *out = (struct sn_rec_sink){.ctx = e, .events = s_events, .pass_end = s_pass_end, .end = s_end};
    return 0;
nomem:
    snprintf(why, len, "cannot publish \"%s\" live: out of memory", name);
    entry_free(e);
    return -ENOMEM;
}

void sn_live_rec_reap(void *arg)
{
    struct sn_live_rec *p = arg;
    uint64_t now = mono_s();
    pthread_mutex_lock(&p->mu);
    for (struct entry **l = &p->list; *l;) {
        struct entry *e = *l;
        int st = e->ended ? sn_relay_state(p->o.relay, e->id) : SN_RELAY_ATTACHED;
        if (e->ended && (st == SN_RELAY_DRAINED || st < 0 ||
                         (st == SN_RELAY_IDLE && now - e->ended_at >= p->o.linger_s) ||
                         now - e->ended_at >= LINGER_MAX))
            retire(p, l);
        else
            l = &e->next;
    }
    pthread_mutex_unlock(&p->mu);
}

unsigned sn_live_rec_count(struct sn_live_rec *p)
{
    unsigned n = 0;
    pthread_mutex_lock(&p->mu);
    for (struct entry *e = p->list; e; e = e->next)
        n++;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void sn_live_rec_free(struct sn_live_rec *p)
{
    if (!p)
        return;
    while (p->list) {
        if (!p->list->ended)
            sn_log(SN_LOG_ERROR, "live", "session \"%s\" freed while its sink runs", p->list->name);
        retire(p, &p->list);
    }
    pthread_mutex_destroy(&p->mu);
    free(p);
}
