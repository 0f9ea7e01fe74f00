/*
 * The drain's thread (drain.h): one mutex held for a whole round of passes (and by add and
 * remove), a condition variable to sleep until the next period or the stop. Records are decoded
 * into a chunk of events whose strings live in a parallel array of buffers, so a chunk handed
 * to the sinks needs no allocation per event.
 */
#include "rec/drain.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/grow.h"
#include "core/log.h"

struct dsess {
    int64_t id;
    const struct sn_rec_ring_view *view;
    struct sn_rec_consumer *cons;
    struct sn_rec_sink sink[SN_REC_DRAIN_SINKS];
    unsigned nsink;
};

struct sn_rec_drain {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    struct sn_rec_drain_opts o;
    bool stop;
    struct dsess **s;
    size_t ns, cap;
    int64_t next_id;
    struct sn_rec_event *ev;     /* [SN_REC_DRAIN_CHUNK] */
    char (*str)[SN_REC_STR_MAX]; /* [SN_REC_DRAIN_CHUNK] */
    struct sn_rec_drain_stats st;
};

static uint64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void hand(struct sn_rec_drain *d, struct dsess *x, unsigned cpu, size_t n, uint64_t lost)
{
    for (unsigned k = 0; k < x->nsink; k++) {
        int rc = x->sink[k].events(x->sink[k].ctx, cpu, d->ev, n, lost);
        if (rc < 0)
            sn_log(SN_LOG_WARN, "drain", "a sink refused %zu events of CPU %u: %s", n, cpu,
                   strerror(-rc));
    }
}

/* One pass over session x (d->mu held). */
static void pass(struct sn_rec_drain *d, struct dsess *x)
{
    struct sn_rec_snap snap;
    uint64_t t = mono_ns();
    if (sn_rec_snapshot(x->cons, x->view, &snap) != 0) {
        sn_log(SN_LOG_WARN, "drain", "snapshot: out of memory (the next pass retries)");
        return;
    }
    for (unsigned cpu = 0; cpu < snap.ncpu; cpu++) {
        const struct sn_rec_cpu_snap *c = &snap.cpu[cpu];
        uint64_t lost = c->overwritten + c->torn;
        size_t n = 0;
        for (size_t k = 0; k < c->nrec; k++) {
            if (sn_rec_slot_decode(sn_rec_snap_record(&snap, cpu, k), cpu, &d->ev[n], d->str[n]) !=
                0) {
                lost++; /* a kind this reader does not know */
                continue;
            }
            if (++n == SN_REC_DRAIN_CHUNK) {
                hand(d, x, cpu, n, lost);
                d->st.events += n;
                d->st.lost += lost;
                n = lost = 0;
            }
        }
        if (n > 0 || lost > 0)
            hand(d, x, cpu, n, lost);
        d->st.events += n;
        d->st.lost += lost;
    }
    for (unsigned k = 0; k < x->nsink; k++)
        x->sink[k].pass_end(x->sink[k].ctx, t);
    d->st.passes++;
    sn_rec_snap_free(&snap);
}

static void *loop(void *arg)
{
    struct sn_rec_drain *d = arg;
    uint64_t period = (uint64_t)d->o.period_ms * 1000000u, next = mono_ns() + period;
    pthread_mutex_lock(&d->mu);
    while (!d->stop) {
        struct timespec ts = {.tv_sec = (time_t)(next / 1000000000u),
                              .tv_nsec = (long)(next % 1000000000u)};
        int rc = pthread_cond_timedwait(&d->cv, &d->mu, &ts);
        if (d->stop)
            break;
        if (rc != ETIMEDOUT)
            continue;
        for (size_t i = 0; i < d->ns; i++)
            pass(d, d->s[i]);
        if (d->o.on_round) {
            pthread_mutex_unlock(&d->mu);
            d->o.on_round(d->o.round_ctx);
            pthread_mutex_lock(&d->mu);
        }
        uint64_t now = mono_ns();
        next += period;
        if (next <= now) /* a round longer than the period: no burst to catch up */
            next = now + period;
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

static void drain_free(struct sn_rec_drain *d)
{
    free(d->s);
    free(d->ev);
    free(d->str);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

int sn_rec_drain_start(struct sn_rec_drain **out, const struct sn_rec_drain_opts *o)
{
    *out = NULL;
    if (o && o->period_ms > 60000)
        return -EINVAL;
    struct sn_rec_drain *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    if (o)
        d->o = *o;
    if (!d->o.period_ms)
        d->o.period_ms = SN_REC_DRAIN_PERIOD_MS;
    d->next_id = 1;
    pthread_mutex_init(&d->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cv, &ca);
    pthread_condattr_destroy(&ca);
    d->ev = calloc(SN_REC_DRAIN_CHUNK, sizeof(*d->ev));
    d->str = calloc(SN_REC_DRAIN_CHUNK, sizeof(*d->str));
    if (!d->ev || !d->str) {
        drain_free(d);
        return -ENOMEM;
    }
    int rc = pthread_create(&d->thread, NULL, loop, d);
    if (rc != 0) {
        drain_free(d);
        return -rc;
    }
    *out = d;
    return 0;
}

int64_t sn_rec_drain_add(struct sn_rec_drain *d, const struct sn_rec_ring_view *view,
                         const struct sn_rec_sink *sinks, unsigned n)
{
    if (!view || !sinks || n == 0 || n > SN_REC_DRAIN_SINKS)
        return -EINVAL;
    for (unsigned k = 0; k < n; k++)
        if (!sinks[k].events || !sinks[k].pass_end || !sinks[k].end)
            return -EINVAL;
    struct dsess *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    x->view = view;
    memcpy(x->sink, sinks, n * sizeof(*sinks));
    x->nsink = n;
    int rc = sn_rec_consumer_new(&x->cons, view, 1);
    if (rc != 0) {
        free(x);
        return rc;
    }
    pthread_mutex_lock(&d->mu);
    struct dsess **g = sn_grow(d->s, &d->cap, d->ns + 1, sizeof(*g));
    int64_t id = -ENOMEM;
    if (g) {
        d->s = g;
        x->id = id = d->next_id++;
        d->s[d->ns++] = x;
    }
    pthread_mutex_unlock(&d->mu);
    if (id < 0) {
        sn_rec_consumer_free(x->cons);
        free(x);
    }
    return id;
}

/* The last pass of x and the end of its sinks (d->mu held). */
static void finish(struct sn_rec_drain *d, struct dsess *x)
{
    pass(d, x);
    for (unsigned k = 0; k < x->nsink; k++)
        x->sink[k].end(x->sink[k].ctx);
    sn_rec_consumer_free(x->cons);
    free(x);
}

int sn_rec_drain_remove(struct sn_rec_drain *d, int64_t id)
{
    int rc = -ENOENT;
    pthread_mutex_lock(&d->mu);
    for (size_t i = 0; i < d->ns; i++)
        if (d->s[i]->id == id) {
            struct dsess *x = d->s[i];
            memmove(&d->s[i], &d->s[i + 1], (d->ns - i - 1) * sizeof(*d->s));
            d->ns--;
            finish(d, x);
            rc = 0;
            break;
        }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

void sn_rec_drain_stats(struct sn_rec_drain *d, struct sn_rec_drain_stats *out)
{
    pthread_mutex_lock(&d->mu);
    *out = d->st;
    pthread_mutex_unlock(&d->mu);
}

void sn_rec_drain_stop(struct sn_rec_drain *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    d->stop = true;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->thread, NULL);
    for (size_t i = 0; i < d->ns; i++)
        finish(d, d->s[i]);
    drain_free(d);
}
