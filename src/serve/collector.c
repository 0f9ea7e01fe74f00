/*
 * The local agent's thread; see collector.h. Its loop is `sonde agent`'s (cli/cmd_agent.c):
 * sleep to the next second, collect, report; here reporting means adding each frame to its
 * dataset (sn_server_ingest(), which takes the server's lock only to find the dataset and to
 * publish) and waking long polls. Keys that are not UTF-8 are escaped (\xNN per bad byte), not
 * refused as ingest refuses them: the kernel's names are whatever bytes the system has.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/engine.h"
#include "agent/frame.h"
#include "core/log.h"
#include "http/server.h"
#include "serve/collector.h"
#include "serve/server.h"
#include "wire/frame.h"

enum cmd_kind { CMD_ENABLE, CMD_DISABLE };

struct cmd {
    enum cmd_kind kind;
    struct sn_inst inst; /* enable */
    char key[96];        /* disable */
    int rc;
    char why[256];
    bool done;
    struct cmd *next;
};

struct sn_collector {
    struct sn_server *s;
    struct sn_engine *eng;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* commands queued, or stop */
    pthread_cond_t done_cv; /* a command ran */
    struct cmd *queue;
    bool stop;
    struct sn_inst *insts; /* enabled (owned by the thread) */
    size_t n, cap;
    _Atomic uint64_t seconds, last_ns, enabled;
};

/* Runs queued commands (mu held). */
static void run_commands(struct sn_collector *c)
{
    while (c->queue) {
        struct cmd *k = c->queue;
        c->queue = k->next;
        pthread_mutex_unlock(&c->mu);
        if (k->kind == CMD_ENABLE) {
            int slot = -ENOMEM;
            if (c->n == c->cap) {
                size_t cap = c->cap ? c->cap * 2 : 16;
                struct sn_inst *p = realloc(c->insts, cap * sizeof(*p));
                if (p) {
                    c->insts = p;
                    c->cap = cap;
                }
            }
            if (c->n < c->cap)
                slot = sn_engine_enable(c->eng, &k->inst.spec);
            if (slot < 0) {
                k->rc = slot;
                snprintf(k->why, sizeof(k->why), "cannot enable on this host: %s",
                         slot == -ENOSPC ? "every instrumentation slot is in use"
                                         : strerror(-slot));
            } else {
                k->inst.slot = slot;
                c->insts[c->n++] = k->inst;
                k->rc = 0;
            }
        } else {
            for (size_t i = 0; i < c->n; i++)
                if (strcmp(c->insts[i].id, k->key) == 0) {
                    sn_engine_disable(c->eng, c->insts[i].slot);
                    c->insts[i] = c->insts[--c->n];
                    break;
                }
            k->rc = 0;
        }
        atomic_store(&c->enabled, c->n);
        pthread_mutex_lock(&c->mu);
        k->done = true;
        pthread_cond_broadcast(&c->done_cv);
    }
}

struct collect_ctx {
    struct sn_collector *c;
    struct sn_frame *frames;
    int rc;
};

static void on_cell(const struct sn_cell *cell, void *arg)
{
    struct collect_ctx *x = arg;
    for (size_t i = 0; i < x->c->n; i++)
        if (x->c->insts[i].slot == cell->slot &&
            sn_frame_add(&x->frames[i], cell, x->c->s->host) < 0)
            x->rc = -ENOMEM;
}

/* A key that is not UTF-8 (a process or file name is any bytes) with each byte that does not
 * belong to a valid sequence written as \xNN, so that API replies (JSON) can carry it and no
 * two keys become one unless one of them literally reads \xNN. */
static char *escape_key(const char *k)
{
    size_t n = strlen(k), o = 0, bad;
    char *out = malloc(n * 4 + 1);

    while (out && n) {
        if (sn_wire_utf8_valid(k, n, NULL)) {
            memcpy(out + o, k, n);
            o += n;
            break;
        }
        sn_wire_utf8_valid(k, n, &bad);
        memcpy(out + o, k, bad);
        o += bad;
        o += (size_t)sprintf(out + o, "\\x%02X", (unsigned char)k[bad]);
        k += bad + 1;
        n -= bad + 1;
    }
    if (out)
        out[o] = '\0';
    return out;
}

/* Replaces w's keys that are not UTF-8 by escaped copies (escape_key()); returns the copies to
 * free (NULL when none, or when out of memory: the frame then keeps its keys and ingest's
 * rules do not apply to the local agent's frames anyway). */
static char **utf8_keys(struct sn_wire_frame *w)
{
    char **esc = NULL;

    for (size_t k = 0; k < w->n; k++) {
        const char *key = w->entries[k].key;
        if (sn_wire_utf8_valid(key, strlen(key), NULL))
            continue;
        if (!esc && !(esc = calloc(w->n, sizeof(*esc))))
            return NULL;
        if ((esc[k] = escape_key(key)))
            w->entries[k].key = esc[k];
    }
    return esc;
}

/* One second: drains the kernel and adds a frame per instrumentation to its dataset. */
static void collect(struct sn_collector *c, int64_t t)
{
    struct sn_slot_drops drops[SN_MAX_SLOTS];
    struct sn_frame *frames = calloc(c->n ? c->n : 1, sizeof(*frames));
    struct collect_ctx x = {c, frames, 0};
    struct timespec t0, t1;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!frames) {
        sn_engine_collect(c->eng, NULL, NULL, NULL); /* lose this second, but keep time */
        return;
    }
    for (size_t i = 0; i < c->n; i++) {
        sn_frame_init(&frames[i], &c->insts[i], t);
        frames[i].engine = c->eng;
    }
    memset(drops, 0, sizeof(drops));
    sn_engine_collect(c->eng, on_cell, &x, drops);
    int64_t now = sn_now();
    /* each takes the server's lock itself, briefly; a frame whose dataset is busy (a big
     * ingest merging into it) waits for a second pass, so that it delays no other's */
    bool *later = calloc(c->n ? c->n : 1, sizeof(*later));
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < c->n; i++) {
            struct sn_wire_frame w;
            if (pass == 1 && (!later || !later[i])) /* without later, pass 0 blocked */
                continue;
            frames[i].drops = drops[c->insts[i].slot];
            if (sn_frame_wire_view(&frames[i], c->s->host, &w) < 0)
                continue;
            char **esc = utf8_keys(&w);
            int rc = pass == 0 && later ? sn_server_ingest_try(c->s, &w, now, NULL)
                                        : sn_server_ingest(c->s, &w, now, NULL);
            if (rc == -EAGAIN)
                later[i] = true;
            else if (rc == SN_DS_ADDED)
                atomic_fetch_add(&c->s->c.frames_local, 1);
            for (size_t k = 0; esc && k < w.n; k++)
                free(esc[k]);
            free(esc);
            free(w.entries);
        }
    free(later);
    for (size_t i = 0; i < c->n; i++)
        sn_frame_fini(&frames[i]);
    free(frames);
    if (c->s->http)
        sn_http_wake(c->s->http);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    atomic_fetch_add(&c->seconds, 1);
    atomic_store(&c->last_ns,
                 (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec)));
}

static void *loop(void *arg)
{
    struct sn_collector *c = arg;
    struct timespec next;

    clock_gettime(CLOCK_REALTIME, &next);
    next.tv_sec += 1;
    next.tv_nsec = 0;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        run_commands(c);
        if (c->stop)
            break;
        if (pthread_cond_timedwait(&c->cv, &c->mu, &next) != ETIMEDOUT)
            continue; /* a command, or stop */
        pthread_mutex_unlock(&c->mu);
        collect(c, (int64_t)next.tv_sec - 1);
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        next.tv_sec += 1;
        if (now.tv_sec >= next.tv_sec) /* fell behind (a stall): skip to the next second */
            next.tv_sec = now.tv_sec + 1;
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int sn_collector_start(struct sn_server *s, uint32_t key_cap, bool trace_self,
                       struct sn_collector **out)
{
    struct sn_collector *c = calloc(1, sizeof(*c));
    /* the whole server (API threads, this collector) is left out of its own data unless
     * asked: its collection would otherwise be a busy process in every system-call view */
    struct sn_engine_opts o = {.exclude_tgid = trace_self ? 0 : (uint32_t)getpid()};
    int rc;
    (void)key_cap;

    if (!c)
        return -ENOMEM;
    c->s = s;
    rc = sn_engine_open_opts(&c->eng, &o);
    if (rc < 0) {
        free(c);
        return rc;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_REALTIME);
    pthread_cond_init(&c->cv, &ca);
    pthread_cond_init(&c->done_cv, NULL);
    pthread_condattr_destroy(&ca);
    sn_engine_collect(c->eng, NULL, NULL, NULL); /* start from an empty second */
    if (pthread_create(&c->thread, NULL, loop, c) != 0) {
        sn_engine_close(c->eng);
        free(c);
        return -EAGAIN;
    }
    *out = c;
    return 0;
}

static int submit(struct sn_collector *c, struct cmd *k)
{
    pthread_mutex_lock(&c->mu);
    k->next = NULL;
    struct cmd **pp = &c->queue;
    while (*pp)
        pp = &(*pp)->next;
    *pp = k;
    pthread_cond_signal(&c->cv);
    while (!k->done)
        pthread_cond_wait(&c->done_cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
    return k->rc;
}

int sn_collector_enable(struct sn_collector *c, const struct sn_inst *inst, char *why,
                        size_t whylen)
{
    struct cmd *k = calloc(1, sizeof(*k));
    int rc;

    if (!k)
        return -ENOMEM;
    k->kind = CMD_ENABLE;
    k->inst = *inst;
    rc = submit(c, k);
    if (rc < 0)
        snprintf(why, whylen, "%s", k->why);
    free(k);
    return rc;
}

void sn_collector_disable(struct sn_collector *c, const char *key)
{
    struct cmd k = {.kind = CMD_DISABLE};
    snprintf(k.key, sizeof(k.key), "%s", key);
    submit(c, &k);
}

void sn_collector_stats(const struct sn_collector *c, uint64_t *seconds, uint64_t *last_ns,
                        uint64_t *enabled)
{
    *seconds = atomic_load(&c->seconds);
    *last_ns = atomic_load(&c->last_ns);
    *enabled = atomic_load(&c->enabled);
}

void sn_collector_stop(struct sn_collector *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    for (size_t i = 0; i < c->n; i++)
        sn_engine_disable(c->eng, c->insts[i].slot);
    sn_engine_close(c->eng);
    free(c->insts);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    pthread_cond_destroy(&c->done_cv);
    free(c);
}
