/*
 * The agent's object and its one loop; see agent.h.
 *
 * Instrumentations run in one of two sources: traced metrics in an engine slot (probe.slot),
 * sampled ones in the sampler, which is read once a second for the metrics some running
 * instrumentation needs and then asked for each instrumentation's cells. Only the agent's
 * thread touches the sources and the running list; callers' commands queue under mu and wait.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/frame_build.h"
#include "agent/probe.h"
#include "agent/sampled.h"
#include "core/clock.h"
#include "core/grow.h"
#include "core/log.h"

/* A running (or starting) instrumentation. */
struct live {
    struct sn_probe p;
    bool sampled; /* the sampler's, not the engine's */
    bool running;
};

enum cmd_kind { CMD_ENABLE, CMD_DISABLE, CMD_SYNC };

struct cmd {
    enum cmd_kind kind;
    struct sn_probe *probes; /* enable: one; sync: the set */
    size_t n;
    char key[96]; /* disable */
    int rc;
    char why[1024];
    bool done;
    struct cmd *next;
};

struct sn_agent {
    char host[256];
    uint32_t key_cap;
    struct sn_agent_sink sink;
    struct sn_engine *eng; /* NULL: no BPF here */
    struct sn_sampler *sampler;
    char no_bpf[256]; /* why eng is NULL */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* commands queued, or stop */
    pthread_cond_t done_cv; /* a command ran */
    struct cmd *queue;
    bool stop;
    struct live *live; /* the thread's */
    size_t n, cap;
    int idx_of_slot[SN_MAX_SLOTS]; /* engine slot -> index in live, or -1 */
    _Atomic uint64_t seconds, last_ns, enabled, frames;
};

static bool is_sampled(uint32_t metric)
{
    return metric >= SN_METRIC_SAMPLED_FIRST && metric < SN_NMETRICS;
}

static void index_slots(struct sn_agent *a)
{
    for (int s = 0; s < SN_MAX_SLOTS; s++)
        a->idx_of_slot[s] = -1;
    for (size_t i = 0; i < a->n; i++)
        if (a->live[i].running && !a->live[i].sampled && a->live[i].p.slot >= 0)
            a->idx_of_slot[a->live[i].p.slot] = (int)i;
    atomic_store(&a->enabled, a->n);
}

/* Starts a->live[i] in its source. Returns 0 or a negative errno with why. */
static int start(struct sn_agent *a, size_t i, char *why, size_t whylen)
{
    struct live *l = &a->live[i];
    uint32_t m = l->p.metric->metric;
    int slot;

    if (m == SN_METRIC_SPANS) { /* aggregated where spans arrive, not by an agent */
        snprintf(why, whylen, "%s", "spans are aggregated by the server that receives them");
        return -ENOTSUP;
    }
    if (l->sampled) {
        size_t same = 0, all = 0;
        for (size_t k = 0; k < a->n; k++)
            if (k != i && a->live[k].running && a->live[k].sampled) {
                all++;
                same += a->live[k].p.metric->metric == m;
            }
        if (same >= SN_SLOTS_PER_METRIC || all >= SN_MAX_SLOTS) {
            snprintf(why, whylen, "cannot enable on this host: %s",
                     "every instrumentation slot is in use");
            return -ENOSPC;
        }
        if (same == 0) { /* a first reading to differ from */
            int rc = sn_sampler_read(a->sampler, 1ull << m);
            if (rc < 0) {
                snprintf(why, whylen, "cannot enable on this host: %s", strerror(-rc));
                return rc;
            }
        }
        l->running = true;
        return 0;
    }
    if (!a->eng) {
        snprintf(why, whylen, "%s", a->no_bpf);
        return -ENOTSUP;
    }
    slot = sn_engine_enable(a->eng, &l->p.spec);
    if (slot < 0) {
        snprintf(why, whylen, "cannot enable on this host: %s",
                 slot == -ENOSPC ? "every instrumentation slot is in use" : strerror(-slot));
        return slot;
    }
    l->p.slot = slot;
    l->running = true;
    return 0;
}

static void stop_one(struct sn_agent *a, struct live *l)
{
    if (l->running && !l->sampled)
        sn_engine_disable(a->eng, l->p.slot);
    l->running = false;
    l->p.slot = -1;
}

static int reserve(struct sn_agent *a, size_t need)
{
    struct live *p = sn_grow(a->live, &a->cap, need, sizeof(*p));
    if (!p)
        return -ENOMEM;
    a->live = p;
    return 0;
}

static void run_enable(struct sn_agent *a, struct cmd *k)
{
    k->rc = 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->live[i].p.id, k->probes[0].id) == 0) {
            snprintf(k->why, sizeof(k->why), "instrumentation %s is running already",
                     k->probes[0].id);
            k->rc = -EEXIST;
            return;
        }
    if (reserve(a, a->n + 1) < 0) {
        snprintf(k->why, sizeof(k->why), "out of memory");
        k->rc = -ENOMEM;
        return;
    }
    a->live[a->n] = (struct live){k->probes[0], is_sampled(k->probes[0].metric->metric), false};
    a->n++;
    k->rc = start(a, a->n - 1, k->why, sizeof(k->why));
    if (k->rc < 0)
        a->n--;
}

static void run_disable(struct sn_agent *a, const char *key)
{
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->live[i].p.id, key) == 0) {
            stop_one(a, &a->live[i]);
            memmove(&a->live[i], &a->live[i + 1], (a->n - i - 1) * sizeof(a->live[0]));
            a->n--;
            return;
        }
}

/* The running set becomes k->probes: unchanged ones keep their slots, in the new order. */
static void run_sync(struct sn_agent *a, struct cmd *k)
{
    struct live *next = calloc(k->n ? k->n : 1, sizeof(*next));
    size_t n = 0;

    k->rc = 0;
    if (!next) {
        snprintf(k->why, sizeof(k->why), "out of memory");
        k->rc = -ENOMEM;
        return;
    }
    for (size_t i = 0; i < k->n; i++) {
        next[i] = (struct live){k->probes[i], is_sampled(k->probes[i].metric->metric), false};
        for (size_t j = 0; j < a->n; j++)
            if (a->live[j].running && sn_probe_same(&next[i].p, &a->live[j].p)) {
                next[i].p.slot = a->live[j].p.slot;
                next[i].running = true;
                a->live[j].running = false; /* carried over */
                break;
            }
    }
    for (size_t j = 0; j < a->n; j++) /* the rest of the old set goes */
        stop_one(a, &a->live[j]);
    free(a->live);
    a->live = next;
    a->n = a->cap = k->n;
    for (size_t i = 0; i < a->n; i++) { /* then the new and changed ones start */
        char why[512];
        int rc = 0;
        if (!a->live[i].running && (rc = start(a, i, why, sizeof(why))) < 0) {
            sn_log(SN_LOG_WARN, "agent", "instrumentation %s: %s", a->live[i].p.id, why);
            if (k->rc == 0) {
                k->rc = rc;
                snprintf(k->why, sizeof(k->why), "instrumentation %s: %s", a->live[i].p.id, why);
            }
        }
        if (a->live[i].running)
            a->live[n++] = a->live[i];
    }
    a->n = n;
}

/* Runs queued commands (mu held). */
static void run_commands(struct sn_agent *a)
{
    while (a->queue) {
        struct cmd *k = a->queue;
        a->queue = k->next;
        pthread_mutex_unlock(&a->mu);
        if (k->kind == CMD_ENABLE)
            run_enable(a, k);
        else if (k->kind == CMD_DISABLE)
            run_disable(a, k->key);
        else
            run_sync(a, k);
        index_slots(a);
        pthread_mutex_lock(&a->mu);
        k->done = true;
        pthread_cond_broadcast(&a->done_cv);
    }
}

/* ------------------------------------------------------------------------------------------
 * Collection
 */

struct collect_ctx {
    struct sn_agent *a;
    struct sn_frame *frames;
};

static void on_engine_cell(const struct sn_cell *c, void *arg)
{
    struct collect_ctx *x = arg;
    int i = c->slot >= 0 && c->slot < SN_MAX_SLOTS ? x->a->idx_of_slot[c->slot] : -1;
    if (i >= 0)
        sn_frame_add(&x->frames[i], c, x->a->host);
}

static void on_sampled_cell(const struct sn_cell *c, void *arg)
{
    struct collect_ctx *x = arg; /* c->slot is the index in live */
    sn_frame_add(&x->frames[c->slot], c, x->a->host);
}

/* A key that is not UTF-8 with each byte that does not belong to a valid sequence written as
 * \xNN, so that JSON can carry it and no two keys become one unless one of them literally
 * reads \xNN. */
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

/* Replaces w's keys that are not UTF-8 by escaped copies; returns the copies to free (NULL
 * when none). -ENOMEM when out of memory. */
static int utf8_keys(struct sn_wire_frame *w, char ***esc)
{
    *esc = NULL;
    for (size_t k = 0; k < w->n; k++) {
        const char *key = w->entries[k].key;
        if (sn_wire_utf8_valid(key, strlen(key), NULL))
            continue;
        if (!*esc && !(*esc = calloc(w->n, sizeof(**esc))))
            return -ENOMEM;
        if (!((*esc)[k] = escape_key(key)))
            return -ENOMEM;
        w->entries[k].key = (*esc)[k];
    }
    return 0;
}

static void emit(struct sn_agent *a, const struct sn_frame *f)
{
    struct sn_wire_frame w;
    char **esc;

    if (sn_frame_wire_view(f, a->host, &w) < 0)
        return;
    if (utf8_keys(&w, &esc) == 0) {
        a->sink.frame(a->sink.arg, &w);
        atomic_fetch_add(&a->frames, 1);
    }
    for (size_t k = 0; esc && k < w.n; k++)
        free(esc[k]);
    free(esc);
    free(w.entries);
}

/* One second: every source's cells into a frame per instrumentation, to the sink. */
static void collect(struct sn_agent *a, int64_t t)
{
    struct sn_slot_drops drops[SN_MAX_SLOTS];
    struct sn_frame *frames = calloc(a->n ? a->n : 1, sizeof(*frames));
    struct collect_ctx x = {a, frames};
    int64_t t0 = sn_mono_ns();
    uint64_t mask = 0;

    for (size_t i = 0; i < a->n; i++)
        if (a->live[i].sampled)
            mask |= 1ull << a->live[i].p.metric->metric;
    if (!frames) { /* lose this second, but keep time */
        if (a->eng)
            sn_engine_collect(a->eng, NULL, NULL, NULL);
        if (mask)
            sn_sampler_read(a->sampler, mask);
        return;
    }
    for (size_t i = 0; i < a->n; i++) {
        sn_frame_init(&frames[i], &a->live[i].p, t);
        frames[i].engine = a->eng;
    }
    memset(drops, 0, sizeof(drops));
    if (a->eng)
        sn_engine_collect(a->eng, on_engine_cell, &x, drops);
    if (mask && sn_sampler_read(a->sampler, mask) == 0)
        for (size_t i = 0; i < a->n; i++)
            if (a->live[i].sampled)
                sn_sampler_cells(a->sampler, (int)i, &a->live[i].p.spec, on_sampled_cell, &x);
    for (size_t i = 0; i < a->n; i++) {
        if (!a->live[i].sampled)
            frames[i].drops = drops[a->live[i].p.slot];
        emit(a, &frames[i]);
        sn_frame_fini(&frames[i]);
    }
    free(frames);
    if (a->sink.second)
        a->sink.second(a->sink.arg, t);
    atomic_fetch_add(&a->seconds, 1);
    atomic_store(&a->last_ns, (uint64_t)(sn_mono_ns() - t0));
}

static void *loop(void *arg)
{
    struct sn_agent *a = arg;
    struct timespec next;

    clock_gettime(CLOCK_REALTIME, &next);
    next.tv_sec += 1;
    next.tv_nsec = 0;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        run_commands(a);
        if (a->stop)
            break;
        if (pthread_cond_timedwait(&a->cv, &a->mu, &next) != ETIMEDOUT)
            continue; /* a command, or stop */
        pthread_mutex_unlock(&a->mu);
        collect(a, (int64_t)next.tv_sec - 1);
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        next.tv_sec += 1;
        if (now.tv_sec >= next.tv_sec) /* fell behind (a stall): skip to the next second */
            next.tv_sec = now.tv_sec + 1;
        pthread_mutex_lock(&a->mu);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* ------------------------------------------------------------------------------------------
 * The object
 */

int sn_agent_open(const struct sn_agent_opts *o, const struct sn_agent_sink *sink,
                  struct sn_agent **out)
{
    struct sn_agent *a = calloc(1, sizeof(*a));
    int rc;

    if (!a)
        return -ENOMEM;
    if (o->host)
        snprintf(a->host, sizeof(a->host), "%s", o->host);
    else if (gethostname(a->host, sizeof(a->host)) != 0)
        snprintf(a->host, sizeof(a->host), "localhost");
    a->host[sizeof(a->host) - 1] = '\0';
    a->key_cap = o->key_cap ? o->key_cap : SN_DEFAULT_KEY_CAP;
    a->sink = *sink;
    if (sn_sampler_open(&a->sampler) < 0) {
        free(a);
        return -ENOMEM;
    }
    if (o->no_bpf) {
        snprintf(a->no_bpf, sizeof(a->no_bpf),
                 "this host cannot run BPF programs: BPF is turned off");
    } else {
        /* the agent's process is left out of its own data unless asked: its collection would
         * otherwise be a busy process in every system-call view */
        struct sn_engine_opts eo = {.agg_entries = o->agg_entries,
                                    .exclude_tgid = o->trace_self ? 0 : (uint32_t)getpid(),
                                    .collect = o->collect};
        rc = sn_engine_open_opts(&a->eng, &eo);
        if (rc < 0) {
            a->eng = NULL;
            snprintf(a->no_bpf, sizeof(a->no_bpf),
                     "this host cannot run BPF programs: %s (needs root and a kernel with BTF)",
                     strerror(-rc));
            sn_log(SN_LOG_WARN, "agent", "%s: sampled metrics only", a->no_bpf);
        }
    }
    for (int s = 0; s < SN_MAX_SLOTS; s++)
        a->idx_of_slot[s] = -1;
    pthread_mutex_init(&a->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_REALTIME);
    pthread_cond_init(&a->cv, &ca);
    pthread_cond_init(&a->done_cv, NULL);
    pthread_condattr_destroy(&ca);
    if (a->eng)
        sn_engine_collect(a->eng, NULL, NULL, NULL); /* start from an empty second */
    if (pthread_create(&a->thread, NULL, loop, a) != 0) {
        sn_engine_close(a->eng);
        sn_sampler_close(a->sampler);
        pthread_mutex_destroy(&a->mu);
        pthread_cond_destroy(&a->cv);
        pthread_cond_destroy(&a->done_cv);
        free(a);
        return -EAGAIN;
    }
    *out = a;
    return 0;
}

static int submit(struct sn_agent *a, struct cmd *k)
{
    pthread_mutex_lock(&a->mu);
    k->next = NULL;
    struct cmd **pp = &a->queue;
    while (*pp)
        pp = &(*pp)->next;
    *pp = k;
    pthread_cond_signal(&a->cv);
    while (!k->done)
        pthread_cond_wait(&a->done_cv, &a->mu);
    pthread_mutex_unlock(&a->mu);
    return k->rc;
}

/* A command and n probes (at least one) for it, zeroed: 0, or -ENOMEM with why set and both
 * *k and *p NULL. */
static int cmd_alloc(size_t n, struct cmd **k, struct sn_probe **p, char *why, size_t whylen)
{
    *k = calloc(1, sizeof(**k));
    *p = calloc(n ? n : 1, sizeof(**p));
    if (!*k || !*p) {
        free(*k);
        free(*p);
        *k = NULL;
        *p = NULL;
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

/* Unless rc < 0 (a probe did not compile), runs command k of kind with probes p[0..n) on the
 * agent's thread, why set to its refusal. Frees k and p either way; returns rc or the
 * command's rc. */
static int cmd_run(struct sn_agent *a, struct cmd *k, enum cmd_kind kind, struct sn_probe *p,
                   size_t n, int rc, char *why, size_t whylen)
{
    if (rc == 0) {
        k->kind = kind;
        k->probes = p;
        k->n = n;
        rc = submit(a, k);
        if (rc < 0)
            snprintf(why, whylen, "%s", k->why);
    }
    free(p);
    free(k);
    return rc;
}

int sn_agent_enable(struct sn_agent *a, const char *key, const json_t *def, char *why,
                    size_t whylen)
{
    struct cmd *k;
    struct sn_probe *p;
    int rc = cmd_alloc(1, &k, &p, why, whylen);

    if (rc < 0)
        return rc;
    rc = sn_probe_compile(def, key, a->host, a->key_cap, p, why, whylen);
    return cmd_run(a, k, CMD_ENABLE, p, 1, rc, why, whylen);
}

void sn_agent_disable(struct sn_agent *a, const char *key)
{
    struct cmd k = {.kind = CMD_DISABLE};
    snprintf(k.key, sizeof(k.key), "%s", key);
    submit(a, &k);
}

int sn_agent_sync(struct sn_agent *a, const struct sn_agent_def *defs, size_t n, char *why,
                  size_t whylen)
{
    struct cmd *k;
    struct sn_probe *p;
    int rc = cmd_alloc(n, &k, &p, why, whylen);

    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++) { /* all compile, or nothing changes */
        char reason[512];
        rc = sn_probe_compile(defs[i].def, defs[i].key, a->host, a->key_cap, &p[i], reason,
                              sizeof(reason));
        if (rc < 0)
            snprintf(why, whylen, "instrumentation %zu: %s", i + 1, reason);
    }
    return cmd_run(a, k, CMD_SYNC, p, n, rc, why, whylen);
}

void sn_agent_stats(const struct sn_agent *a, struct sn_agent_stats *out)
{
    out->seconds = atomic_load(&a->seconds);
    out->last_ns = atomic_load(&a->last_ns);
    out->enabled = atomic_load(&a->enabled);
    out->frames = atomic_load(&a->frames);
    out->bpf = a->eng != NULL;
}

const char *sn_agent_no_bpf_reason(const struct sn_agent *a)
{
    return a->no_bpf;
}

const char *sn_agent_host(const struct sn_agent *a)
{
    return a->host;
}

void sn_agent_close(struct sn_agent *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    a->stop = true;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->thread, NULL);
    for (size_t i = 0; i < a->n; i++)
        stop_one(a, &a->live[i]);
    sn_engine_close(a->eng);
    sn_sampler_close(a->sampler);
    free(a->live);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    pthread_cond_destroy(&a->done_cv);
    free(a);
}
