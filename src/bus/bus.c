/*
 * The in-process bus; see bus.h for the contract and the NATS mapping.
 *
 * Frames: the subscribers are a list under the bus mutex. A publisher takes a snapshot of the
 * matching ones and marks each busy (a count under the mutex), then calls them without any lock,
 * then unmarks them. Unsubscribing unlinks and marks the subscription dead (no call starts
 * after that), then waits on the bus's idle condition until it is no longer busy; from inside a
 * callback it cannot wait for its own thread, so the last publisher to unmark it frees it.
 *
 * Control: each host has a thread and a queue. A publisher builds one request (its own copies
 * of the message, one slot per host addressed, in host order), queues the slots and waits on
 * the request's condition (CLOCK_MONOTONIC) for the answers or the deadline. The request is
 * reference-counted, so a host that answers after the deadline writes into a request that is
 * still there: its answer is not returned (the publisher has gone) but still sets its status.
 * Statuses are set under the request's mutex, so a late answer always wins over the timeout.
 *
 * Status: a table sorted by (key, host) under its own mutex; small (hosts x instrumentations),
 * so a linear search and memmove are fine. A change and the calls of its watchers happen under
 * note_mu, one change at a time, so watchers see changes in the order the table took them.
 *
 * Lock order: req->mu, then note_mu, then bus->mu or status_mu (never both). Frame and control
 * callbacks run under none of them; status watchers run under note_mu (and, for a change an
 * ack makes, under that request's mu).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus/bus.h"
#include "core/clock.h"
#include "core/grow.h"

struct req;

/* One host's part of a control request: queued on its host, answered once. */
struct slot {
    struct slot *next; /* in the host's queue */
    struct req *req;
    struct sn_bus_ack ack;
    bool done; /* answered (in time or late) */
};

struct req {
    atomic_uint refs; /* the publisher, and each slot still queued or being answered */
    pthread_mutex_t mu;
    pthread_cond_t answered; /* CLOCK_MONOTONIC */
    struct sn_bus_ctl m;     /* key, host and def are the request's own copies */
    size_t n, ndone;
    bool closed; /* the publisher has returned: answers only set statuses */
    struct slot *slots;
};

enum kind { FRAMES, CONTROL, STATUS };

struct sn_bus_sub {
    struct sn_bus *bus;
    struct sn_bus_sub *next;
    enum kind kind;
    atomic_bool dead;  /* unsubscribed: no call starts */
    unsigned busy;     /* frames, status: callers holding it in a snapshot (bus->mu) */
    bool free_on_idle; /* frames, status: unsubscribed from a callback; the last caller frees */
    sn_bus_frame_fn frame_fn;
    sn_bus_ctl_fn ctl_fn;
    sn_bus_status_fn status_fn;
    void *arg;
    char *key; /* frames, status: the key subscribed, NULL for all */
    /* control */
    char host[SN_BUS_MAX_HOST + 1];
    pthread_t thread;
    pthread_cond_t wake;
    struct slot *head, *tail;
    bool stop;     /* the thread ends */
    bool detached; /* unsubscribed from its own callback: the thread frees the subscription */
};

struct sn_bus {
    pthread_mutex_t mu;
    pthread_cond_t idle;              /* a frame subscription stopped being busy, or a
                                         control thread ended */
    unsigned nthreads;                /* control threads not yet ended (joined or not) */
    struct sn_bus_sub *frames, *ctls; /* frames in subscription order; ctls by host */
    struct sn_bus_sub *watchers;      /* of statuses, in subscription order */
    pthread_mutex_t note_mu;          /* a status change and its notification, one at a time */
    pthread_mutex_t status_mu;
    struct sn_bus_status *st; /* sorted by key, then host */
    size_t nst, capst;
};

/* The bus whose callback this thread is running, if any (for unsubscribing from inside). */
static _Thread_local const struct sn_bus *in_callback_of;
static _Thread_local unsigned in_callback_depth;

/* ------------------------------------------------------------------------------------------
 * Helpers
 */

/* Copies s into out[SN_BUS_MAX_*+1], cutting it. */
static void copy_cut(char *out, size_t size, const char *s)
{
    size_t n = s ? strnlen(s, size - 1) : 0;
    memcpy(out, s ? s : "", n);
    out[n] = '\0';
}

static bool name_ok(const char *s, size_t max)
{
    return s && s[0] && strnlen(s, max + 1) <= max;
}

/* ------------------------------------------------------------------------------------------
 * Snapshots: calling subscribers without a lock
 */

#define SNAP_STACK 16 /* subscribers held without an allocation */

struct snap {
    struct sn_bus_sub *stack[SNAP_STACK], **subs;
    size_t n;
    const struct sn_bus *outer; /* in_callback_of before */
};

/* Marks busy every subscriber of *list whose key is NULL or key, into sn, and notes that this
 * thread is in a callback of bus. Returns 0 or -ENOMEM (nothing marked). */
static int snap_take(struct sn_bus *bus, struct sn_bus_sub *const *list, const char *key,
                     struct snap *sn)
{
    size_t n = 0;

    sn->subs = sn->stack;
    sn->n = 0;
    pthread_mutex_lock(&bus->mu);
    for (struct sn_bus_sub *s = *list; s; s = s->next)
        n += !s->key || strcmp(s->key, key) == 0;
    if (n > SNAP_STACK && !(sn->subs = malloc(n * sizeof(*sn->subs)))) {
        pthread_mutex_unlock(&bus->mu);
        return -ENOMEM;
    }
    for (struct sn_bus_sub *s = *list; s; s = s->next)
        if (!s->key || strcmp(s->key, key) == 0) {
            s->busy++;
            sn->subs[sn->n++] = s;
        }
    pthread_mutex_unlock(&bus->mu);
    sn->outer = in_callback_of;
    in_callback_of = bus;
    in_callback_depth++;
    return 0;
}

static void free_sub(struct sn_bus_sub *s)
{
    free(s->key);
    free(s);
}

/* Unmarks what snap_take() marked, freeing what was unsubscribed from a callback meanwhile. */
static void snap_release(struct sn_bus *bus, struct snap *sn)
{
    in_callback_depth--;
    in_callback_of = in_callback_depth ? sn->outer : NULL;
    pthread_mutex_lock(&bus->mu);
    for (size_t i = 0; i < sn->n; i++) {
        struct sn_bus_sub *s = sn->subs[i];
        if (--s->busy == 0 && s->free_on_idle)
            free_sub(s);
        else if (s->busy == 0 && atomic_load(&s->dead))
            pthread_cond_broadcast(&bus->idle);
    }
    pthread_mutex_unlock(&bus->mu);
    if (sn->subs != sn->stack)
        free(sn->subs);
}

/* Appends a new subscription of kind to *list, its callback set (frame_fn or status_fn).
 * Returns 0 or -EINVAL / -ENOMEM. */
static int subscribe(struct sn_bus *bus, struct sn_bus_sub **list, enum kind kind, const char *key,
                     sn_bus_frame_fn frame_fn, sn_bus_status_fn status_fn, void *arg,
                     struct sn_bus_sub **out)
{
    struct sn_bus_sub *s, **tail;

    if (key && !name_ok(key, SN_BUS_MAX_KEY))
        return -EINVAL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    if (key && !(s->key = strdup(key))) {
        free(s);
        return -ENOMEM;
    }
    s->bus = bus;
    s->kind = kind;
    s->frame_fn = frame_fn;
    s->status_fn = status_fn;
    s->arg = arg;
    atomic_init(&s->dead, false);
    pthread_mutex_lock(&bus->mu);
    for (tail = list; *tail; tail = &(*tail)->next)
        ;
    *tail = s;
    pthread_mutex_unlock(&bus->mu);
    *out = s;
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Status
 */

/* The index of (key, host), or where it would go (*found false). status_mu held. */
static size_t status_find(const struct sn_bus *bus, const char *key, const char *host, bool *found)
{
    size_t i = 0;

    *found = false;
    for (; i < bus->nst; i++) {
        int c = strcmp(bus->st[i].key, key);
        if (c == 0)
            c = strcmp(bus->st[i].host, host);
        if (c == 0)
            *found = true;
        if (c >= 0)
            break;
    }
    return i;
}

/* Calls every watcher of st->key with st. note_mu held. */
static void notify(struct sn_bus *bus, const struct sn_bus_status *st)
{
    struct snap sn;

    if (snap_take(bus, &bus->watchers, st->key, &sn) < 0)
        return; /* out of memory: the watchers miss this change */
    for (size_t i = 0; i < sn.n; i++)
        if (!atomic_load(&sn.subs[i]->dead))
            sn.subs[i]->status_fn(sn.subs[i]->arg, st);
    snap_release(bus, &sn);
}

static enum sn_bus_state state_of(int rc)
{
    return rc == 0 ? SN_BUS_RUNNING : rc == -EOPNOTSUPP ? SN_BUS_UNSUPPORTED : SN_BUS_FAILED;
}

/* Sets (key, host) by rc (state_of()) and notifies the watchers. */
static int status_set(struct sn_bus *bus, const char *host, const char *key, int rc,
                      const char *why)
{
    struct sn_bus_status *s, copy;
    bool found;
    size_t i;
    int64_t now = sn_now_ms();

    pthread_mutex_lock(&bus->note_mu);
    pthread_mutex_lock(&bus->status_mu);
    i = status_find(bus, key, host, &found);
    if (!found) {
        if (bus->nst == bus->capst) {
            struct sn_bus_status *p = sn_grow(bus->st, &bus->capst, bus->nst + 1, sizeof(*p));
            if (!p) {
                pthread_mutex_unlock(&bus->status_mu);
                pthread_mutex_unlock(&bus->note_mu);
                return -ENOMEM;
            }
            bus->st = p;
        }
        memmove(&bus->st[i + 1], &bus->st[i], (bus->nst - i) * sizeof(*bus->st));
        bus->nst++;
        s = &bus->st[i];
        memset(s, 0, sizeof(*s));
        copy_cut(s->host, sizeof(s->host), host);
        copy_cut(s->key, sizeof(s->key), key);
    }
    s = &bus->st[i];
    if (rc == 0) {
        if (!found || s->state != SN_BUS_RUNNING)
            s->since_ms = now;
        s->why[0] = '\0';
    } else {
        s->since_ms = now;
        copy_cut(s->why, sizeof(s->why), why);
    }
    s->state = state_of(rc);
    s->rc = rc;
    copy = *s;
    pthread_mutex_unlock(&bus->status_mu);
    notify(bus, &copy);
    pthread_mutex_unlock(&bus->note_mu);
    return 0;
}

int sn_bus_report_status(struct sn_bus *bus, const char *host, const char *key, int rc,
                         const char *why)
{
    if (!name_ok(host, SN_BUS_MAX_HOST) || !name_ok(key, SN_BUS_MAX_KEY) || rc > 0)
        return -EINVAL;
    return status_set(bus, host, key, rc, why);
}

size_t sn_bus_clear_status(struct sn_bus *bus, const char *host, const char *key)
{
    size_t removed = 0;

    if (!host)
        return 0;
    pthread_mutex_lock(&bus->note_mu);
    for (;;) { /* one at a time, each notified as stopped */
        struct sn_bus_status gone;
        size_t i;
        pthread_mutex_lock(&bus->status_mu);
        for (i = 0; i < bus->nst; i++)
            if (strcmp(bus->st[i].host, host) == 0 && (!key || strcmp(bus->st[i].key, key) == 0))
                break;
        if (i == bus->nst) {
            pthread_mutex_unlock(&bus->status_mu);
            break;
        }
        gone = bus->st[i];
        memmove(&bus->st[i], &bus->st[i + 1], (bus->nst - i - 1) * sizeof(*bus->st));
        bus->nst--;
        pthread_mutex_unlock(&bus->status_mu);
        gone.state = SN_BUS_STOPPED;
        gone.since_ms = sn_now_ms();
        gone.rc = 0;
        gone.why[0] = '\0';
        notify(bus, &gone);
        removed++;
    }
    pthread_mutex_unlock(&bus->note_mu);
    return removed;
}

size_t sn_bus_status(struct sn_bus *bus, const char *key, struct sn_bus_status *out, size_t max)
{
    size_t n = 0;

    pthread_mutex_lock(&bus->status_mu);
    for (size_t i = 0; i < bus->nst; i++) {
        if (key && strcmp(bus->st[i].key, key) != 0)
            continue;
        if (n < max)
            out[n] = bus->st[i];
        n++;
    }
    pthread_mutex_unlock(&bus->status_mu);
    return n;
}

int sn_bus_subscribe_status(struct sn_bus *bus, const char *key, sn_bus_status_fn fn, void *arg,
                            struct sn_bus_sub **out)
{
    struct sn_bus_sub *s;
    int rc;

    if (!fn)
        return -EINVAL;
    pthread_mutex_lock(&bus->note_mu); /* no change is missed between the link and the caller */
    rc = subscribe(bus, &bus->watchers, STATUS, key, NULL, fn, arg, &s);
    if (rc == 0)
        *out = s;
    pthread_mutex_unlock(&bus->note_mu);
    return rc;
}

/* What an ack says about its host's status of the request's key. req->mu held. */
static void status_of_ack(struct sn_bus *bus, const struct sn_bus_ctl *m,
                          const struct sn_bus_ack *ack)
{
    if (m->op == SN_BUS_ENABLE)
        status_set(bus, ack->host, m->key, ack->rc, ack->why); /* -ENOMEM: the status is stale */
    else if (m->op == SN_BUS_DISABLE && ack->rc == 0)
        sn_bus_clear_status(bus, ack->host, m->key);
}

/* ------------------------------------------------------------------------------------------
 * Open and close
 */

int sn_bus_open(struct sn_bus **out)
{
    struct sn_bus *bus = calloc(1, sizeof(*bus));

    if (!bus)
        return -ENOMEM;
    if (pthread_mutex_init(&bus->mu, NULL) != 0)
        goto err_free;
    if (pthread_cond_init(&bus->idle, NULL) != 0)
        goto err_mu;
    if (pthread_mutex_init(&bus->status_mu, NULL) != 0)
        goto err_idle;
    if (pthread_mutex_init(&bus->note_mu, NULL) != 0)
        goto err_status;
    *out = bus;
    return 0;
err_status:
    pthread_mutex_destroy(&bus->status_mu);
err_idle:
    pthread_cond_destroy(&bus->idle);
err_mu:
    pthread_mutex_destroy(&bus->mu);
err_free:
    free(bus);
    return -ENOMEM;
}

void sn_bus_close(struct sn_bus *bus)
{
    if (!bus)
        return;
    while (bus->frames)
        sn_bus_unsubscribe(bus->frames);
    while (bus->ctls)
        sn_bus_unsubscribe(bus->ctls);
    while (bus->watchers)
        sn_bus_unsubscribe(bus->watchers);
    pthread_mutex_lock(&bus->mu); /* threads of hosts unsubscribed from their own callbacks */
    while (bus->nthreads)
        pthread_cond_wait(&bus->idle, &bus->mu);
    pthread_mutex_unlock(&bus->mu);
    free(bus->st);
    pthread_mutex_destroy(&bus->note_mu);
    pthread_mutex_destroy(&bus->status_mu);
    pthread_cond_destroy(&bus->idle);
    pthread_mutex_destroy(&bus->mu);
    free(bus);
}

/* ------------------------------------------------------------------------------------------
 * Frames
 */

int sn_bus_subscribe_frames(struct sn_bus *bus, const char *key, sn_bus_frame_fn fn, void *arg,
                            struct sn_bus_sub **out)
{
    struct sn_bus_sub *s;
    int rc;

    if (!fn)
        return -EINVAL;
    rc = subscribe(bus, &bus->frames, FRAMES, key, fn, NULL, arg, &s);
    if (rc == 0)
        *out = s;
    return rc;
}

int sn_bus_publish_frames(struct sn_bus *bus, const struct sn_wire_frame *const *f, size_t n,
                          int *rcs, void *ctx)
{
    struct snap sn;
    int one, *tmp = NULL;

    if (n == 0 || !f[0]->id)
        return -EINVAL;
    for (size_t i = 1; i < n; i++)
        if (!f[i]->id || strcmp(f[i]->id, f[0]->id) != 0)
            return -EINVAL;
    if (snap_take(bus, &bus->frames, f[0]->id, &sn) < 0)
        return -ENOMEM;
    if (sn.n > 1 && !(tmp = n > 1 ? malloc(n * sizeof(*tmp)) : &one)) {
        snap_release(bus, &sn);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        rcs[i] = 0;
    for (size_t k = 0; k < sn.n; k++) {
        if (atomic_load(&sn.subs[k]->dead))
            continue;
        if (!tmp) { /* the one subscriber answers into rcs itself */
            sn.subs[k]->frame_fn(sn.subs[k]->arg, f, n, rcs, ctx);
            continue;
        }
        for (size_t i = 0; i < n; i++)
            tmp[i] = 0;
        sn.subs[k]->frame_fn(sn.subs[k]->arg, f, n, tmp, ctx);
        for (size_t i = 0; i < n; i++)
            if (rcs[i] == 0)
                rcs[i] = tmp[i];
    }
    if (tmp != &one)
        free(tmp);
    snap_release(bus, &sn);
    return 0;
}

int sn_bus_publish_frame(struct sn_bus *bus, const struct sn_wire_frame *f, void *ctx)
{
    int rc, prc = sn_bus_publish_frames(bus, &f, 1, &rc, ctx);
    return prc < 0 ? prc : rc;
}

/* ------------------------------------------------------------------------------------------
 * Control
 */

static void req_unref(struct req *r)
{
    if (atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    free((char *)r->m.key);
    free((char *)r->m.host);
    json_decref((json_t *)r->m.def);
    free(r->slots);
    pthread_cond_destroy(&r->answered);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* Records the answer of slot sl and drops the slot's reference. */
static void answer(struct sn_bus *bus, struct slot *sl, const struct sn_bus_ack *ack)
{
    struct req *r = sl->req;

    pthread_mutex_lock(&r->mu);
    if (!r->closed)
        sl->ack = *ack;
    sl->done = true;
    r->ndone++;
    status_of_ack(bus, &r->m, ack);
    pthread_cond_signal(&r->answered);
    pthread_mutex_unlock(&r->mu);
    req_unref(r);
}

static void *control_thread(void *arg)
{
    struct sn_bus_sub *s = arg;
    struct sn_bus *bus = s->bus;
    bool detached;

    pthread_mutex_lock(&bus->mu);
    for (;;) {
        while (!s->stop && !s->head)
            pthread_cond_wait(&s->wake, &bus->mu);
        if (s->stop)
            break;
        struct slot *sl = s->head;
        s->head = sl->next;
        if (!s->head)
            s->tail = NULL;
        pthread_mutex_unlock(&bus->mu);

        struct sn_bus_ack ack = {.rc = 0};
        copy_cut(ack.host, sizeof(ack.host), s->host);
        in_callback_of = bus;
        in_callback_depth = 1;
        s->ctl_fn(s->arg, &sl->req->m, &ack);
        in_callback_depth = 0;
        in_callback_of = NULL;
        copy_cut(ack.host, sizeof(ack.host), s->host); /* the bus says who answered */
        if (ack.rc > 0)
            ack.rc = -EPROTO;
        answer(bus, sl, &ack);

        pthread_mutex_lock(&bus->mu);
    }
    detached = s->detached;
    if (detached) {
        pthread_cond_destroy(&s->wake);
        free_sub(s);
    }
    bus->nthreads--; /* the last touch of the bus: sn_bus_close() waits for it */
    pthread_cond_broadcast(&bus->idle);
    pthread_mutex_unlock(&bus->mu);
    return NULL;
}

int sn_bus_subscribe_control(struct sn_bus *bus, const char *host, sn_bus_ctl_fn fn, void *arg,
                             struct sn_bus_sub **out)
{
    struct sn_bus_sub *s, **at;
    int rc;

    if (!fn || !name_ok(host, SN_BUS_MAX_HOST))
        return -EINVAL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->bus = bus;
    s->kind = CONTROL;
    s->ctl_fn = fn;
    s->arg = arg;
    atomic_init(&s->dead, false);
    copy_cut(s->host, sizeof(s->host), host);
    if (pthread_cond_init(&s->wake, NULL) != 0) {
        free(s);
        return -ENOMEM;
    }
    pthread_mutex_lock(&bus->mu);
    for (at = &bus->ctls; *at && strcmp((*at)->host, host) < 0; at = &(*at)->next)
        ;
    if (*at && strcmp((*at)->host, host) == 0) {
        rc = -EEXIST;
    } else if (pthread_create(&s->thread, NULL, control_thread, s) != 0) {
        rc = -EAGAIN;
    } else {
        s->next = *at;
        *at = s;
        bus->nthreads++;
        rc = 0;
    }
    pthread_mutex_unlock(&bus->mu);
    if (rc < 0) {
        pthread_cond_destroy(&s->wake);
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* timeout_ms from now on CLOCK_MONOTONIC, as pthread_cond_timedwait() wants it. */
static struct timespec deadline_of(int timeout_ms)
{
    int64_t ns = sn_mono_ns() + (int64_t)timeout_ms * 1000000;
    return (struct timespec){.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
}

/* A new request holding copies of m, with no slot yet; NULL when out of memory. */
static struct req *req_new(const struct sn_bus_ctl *m)
{
    struct req *r = calloc(1, sizeof(*r));
    pthread_condattr_t ca;
    bool cond = false;

    if (!r)
        return NULL;
    if (pthread_condattr_init(&ca) == 0) {
        cond = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
               pthread_cond_init(&r->answered, &ca) == 0;
        pthread_condattr_destroy(&ca);
    }
    if (!cond) {
        free(r);
        return NULL;
    }
    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        pthread_cond_destroy(&r->answered);
        free(r);
        return NULL;
    }
    atomic_init(&r->refs, 1);
    r->m.op = m->op;
    r->m.key = strdup(m->key);
    r->m.host = m->host ? strdup(m->host) : NULL;
    r->m.def = m->def ? json_deep_copy(m->def) : NULL;
    if (!r->m.key || (m->host && !r->m.host) || (m->def && !r->m.def)) {
        req_unref(r);
        return NULL;
    }
    return r;
}

int sn_bus_publish_control(struct sn_bus *bus, const struct sn_bus_ctl *m, struct sn_bus_ack *acks,
                           size_t max, int timeout_ms, size_t *nacks)
{
    struct req *r;
    size_t n = 0;
    struct timespec deadline;

    if ((m->op != SN_BUS_ENABLE && m->op != SN_BUS_DISABLE) || !name_ok(m->key, SN_BUS_MAX_KEY) ||
        (m->op == SN_BUS_ENABLE && !m->def) || (m->host && !name_ok(m->host, SN_BUS_MAX_HOST)) ||
        timeout_ms < 0 || (max && !acks) || !nacks)
        return -EINVAL;
    r = req_new(m);
    if (!r)
        return -ENOMEM;
    deadline = deadline_of(timeout_ms);

    /* one slot per host addressed, in host order (the subscribers' order), queued on each */
    pthread_mutex_lock(&bus->mu);
    for (struct sn_bus_sub *s = bus->ctls; s; s = s->next)
        n += !m->host || strcmp(s->host, m->host) == 0;
    if (n && !(r->slots = calloc(n, sizeof(*r->slots)))) {
        pthread_mutex_unlock(&bus->mu);
        req_unref(r);
        return -ENOMEM;
    }
    r->n = n;
    n = 0;
    for (struct sn_bus_sub *s = bus->ctls; s; s = s->next) {
        if (m->host && strcmp(s->host, m->host) != 0)
            continue;
        struct slot *sl = &r->slots[n++];
        sl->req = r;
        copy_cut(sl->ack.host, sizeof(sl->ack.host), s->host);
        atomic_fetch_add(&r->refs, 1);
        if (s->tail)
            s->tail->next = sl;
        else
            s->head = sl;
        s->tail = sl;
        pthread_cond_signal(&s->wake);
    }
    pthread_mutex_unlock(&bus->mu);

    /* the answers, or the deadline */
    pthread_mutex_lock(&r->mu);
    while (r->ndone < r->n)
        if (pthread_cond_timedwait(&r->answered, &r->mu, &deadline) == ETIMEDOUT)
            break;
    for (size_t i = 0; i < r->n; i++) {
        struct slot *sl = &r->slots[i];
        if (sl->done)
            continue;
        sl->ack.rc = -ETIMEDOUT;
        snprintf(sl->ack.why, sizeof(sl->ack.why), "no answer within %d ms", timeout_ms);
        if (m->op == SN_BUS_ENABLE)
            status_set(bus, sl->ack.host, r->m.key, sl->ack.rc, sl->ack.why);
    }
    r->closed = true;
    for (size_t i = 0; i < r->n && i < max; i++)
        acks[i] = r->slots[i].ack;
    *nacks = r->n;
    pthread_mutex_unlock(&r->mu);
    req_unref(r);
    return 0;
}

size_t sn_bus_queued(struct sn_bus *bus, const char *host)
{
    size_t n = 0;

    pthread_mutex_lock(&bus->mu);
    for (struct sn_bus_sub *s = bus->ctls; s; s = s->next)
        if (strcmp(s->host, host) == 0)
            for (const struct slot *sl = s->head; sl; sl = sl->next)
                n++;
    pthread_mutex_unlock(&bus->mu);
    return n;
}

/* ------------------------------------------------------------------------------------------
 * Unsubscribing
 */

static void unlink_sub(struct sn_bus_sub **list, struct sn_bus_sub *s)
{
    for (; *list; list = &(*list)->next)
        if (*list == s) {
            *list = s->next;
            return;
        }
}

static void unsubscribe_control(struct sn_bus *bus, struct sn_bus_sub *s)
{
    struct slot *queued;
    bool self;

    pthread_mutex_lock(&bus->mu);
    unlink_sub(&bus->ctls, s);
    atomic_store(&s->dead, true);
    s->stop = true;
    queued = s->head;
    s->head = s->tail = NULL;
    self = pthread_equal(pthread_self(), s->thread);
    s->detached = self;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&bus->mu);

    while (queued) { /* answered at once, not left to time out */
        struct slot *next = queued->next;
        struct sn_bus_ack ack = {.rc = -ESHUTDOWN};
        copy_cut(ack.host, sizeof(ack.host), s->host);
        snprintf(ack.why, sizeof(ack.why), "unsubscribed before answering");
        answer(bus, queued, &ack);
        queued = next;
    }
    if (self) { /* from its own callback: the thread frees s when the callback returns */
        pthread_detach(s->thread);
        return;
    }
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->wake);
    free_sub(s);
}

void sn_bus_unsubscribe(struct sn_bus_sub *s)
{
    struct sn_bus *bus;

    if (!s)
        return;
    bus = s->bus;
    if (s->kind == CONTROL) {
        unsubscribe_control(bus, s);
        return;
    }
    pthread_mutex_lock(&bus->mu);
    unlink_sub(s->kind == FRAMES ? &bus->frames : &bus->watchers, s);
    atomic_store(&s->dead, true);
    if (in_callback_of == bus && s->busy) {
        s->free_on_idle = true; /* cannot wait for this thread's own call */
        pthread_mutex_unlock(&bus->mu);
        return;
    }
    while (s->busy)
        pthread_cond_wait(&bus->idle, &bus->mu);
    pthread_mutex_unlock(&bus->mu);
    free_sub(s);
}
