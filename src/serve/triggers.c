/*
 * Flight-recorder triggers (serve/triggers.h): the registry, the judging of each second of an
 * instrumentation against the conditions, the rate limit and the delayed snapshots, on a
 * thread of their own fed by the aggregator's listener.
 */
#include "serve/triggers.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agg/agg.h"
#include "core/clock.h"
#include "core/log.h"
#include "fleet/fleet_rec.h"
#include "rec/recorder.h"
#include "serve/fleet.h"
#include "serve/server.h"
#include "serve/trigger_cond.h"

#define QMAX 1024 /* seconds waiting to be judged */

struct trig {
    char name[SN_RECORDER_NAME_MAX + 1];
    char session[SN_RECORDER_NAME_MAX + 1];
    uint64_t instn;
    char key[SN_SCOPE_MAX + 24]; /* the instrumentation's frame key */
    char when[SN_TCOND_TEXT + 1];
    struct sn_tcond cond;
    char match[256]; /* the key judged ("" with !by_key: the total) */
    bool by_key, any;
    uint32_t min_interval, post, g, need; /* need: consecutive slots */
    int64_t created;
    /* judging */
    int64_t last_t;  /* the last slot judged (INT64_MIN: none) */
    bool last_holds; /* whether it held */
    uint32_t streak; /* consecutive slots that held, up to last_t, since the last firing */
    bool fired_once;
    int64_t last_fire_t;
    uint64_t fires, suppressed, snapshots, failures;
    /* the snapshot to take */
    bool pending;
    int64_t due_ms; /* CLOCK_MONOTONIC */
    uint64_t entry; /* the fired entry it completes */
};

struct fired {
    uint64_t id;
    char trigger[SN_RECORDER_NAME_MAX + 1], session[SN_RECORDER_NAME_MAX + 1];
    char when[SN_TCOND_TEXT + 1], key[256];
    double value;
    int64_t second, fired_ms;
    char snapshot[128];
    enum { F_PENDING, F_TAKEN, F_FAILED } state;
    char error[128];
    json_t *hosts; /* a fleet snapshot's {expected, received, failed, missing} (owned), or NULL */
};

struct qent {
    char key[SN_SCOPE_MAX + 24];
    int64_t t;
};

struct sn_triggers {
    struct sn_server *s;
    char root[600];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool running, stop;
    struct trig *tr[SN_TRIGGERS_MAX];
    struct fired fired[SN_TRIGGERS_FIRED_MAX]; /* a ring: nfired entries ending at next */
    size_t nfired, next;
    uint64_t next_id;
    struct qent q[QMAX];
    size_t qhead, qlen;
    uint64_t qlost;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- judging a second ------------------------------------------------------------------- */

/* The condition's value for one count and histogram (h NULL: none); NAN when it has none. */
static double value_of(const struct trig *x, uint64_t count, const struct sn_hist *h)
{
    switch (x->cond.kind) {
    case SN_TCOND_RATE:
        return (double)count / x->g;
    case SN_TCOND_BAND:
        if (!h)
            return NAN;
        return (double)(sn_hist_count_below(h, x->cond.hi, false) -
                        sn_hist_count_below(h, x->cond.lo, false)) /
               x->g;
    case SN_TCOND_PCT: {
        double q = x->cond.pct / 100, v = NAN;
        if (!h || sn_hist_count(h) == 0 || sn_hist_quantiles(h, &q, 1, &v, SN_QUANTILE_TYPE1) < 0)
            return NAN;
        return v;
    }
    }
    return NAN;
}

/* Whether slot t holds for x: its value in *v and the key it holds for in key. */
static bool judge(struct sn_triggers *t, const struct trig *x, int64_t sec, double *v, char *key,
                  size_t klen)
{
    const struct sn_ds_slot *sl = NULL;
    char **names = NULL;
    bool holds = false;

    *v = NAN;
    key[0] = 0;
    if (sn_agg_slot_get(t->s->agg, x->key, sec, &sl, &names) != 0 || !sl)
        return false;
    if (!x->by_key) {
        *v = value_of(x, sl->count, sl->total);
        holds = !isnan(*v) && *v > x->cond.threshold;
    } else {
        for (size_t i = 0; i < sl->n; i++) {
            const struct sn_ds_entry *e = &sl->e[i];
            if (!x->any && strcmp(e->key, x->match) != 0)
                continue;
            double ev = value_of(x, e->count, e->hist);
            if (isnan(ev) || (!isnan(*v) && ev <= *v))
                continue;
            *v = ev; /* the largest */
            snprintf(key, klen, "%s", e->key);
        }
        holds = !isnan(*v) && *v > x->cond.threshold;
    }
    sn_agg_strings_free(names, sl->nsrc);
    sn_ds_slot_unref(sl);
    return holds;
}

static struct fired *fired_find(struct sn_triggers *t, uint64_t id)
{
    for (size_t k = 0; k < t->nfired; k++) {
        struct fired *f =
            &t->fired[(t->next + SN_TRIGGERS_FIRED_MAX - 1 - k) % SN_TRIGGERS_FIRED_MAX];
        if (f->id == id)
            return f;
    }
    return NULL;
}

/* The condition held for x's slots up to sec: fire, or count it as suppressed. */
static void fire(struct sn_triggers *t, struct trig *x, int64_t sec, double v, const char *key)
{
    if (x->pending || (x->fired_once && sec < x->last_fire_t + (int64_t)x->min_interval)) {
        x->suppressed++;
        return;
    }
    x->fired_once = true;
    x->last_fire_t = sec;
    x->fires++;
    struct fired *f = &t->fired[t->next];
    json_decref(f->hosts);
    memset(f, 0, sizeof(*f));
    f->id = ++t->next_id;
    snprintf(f->trigger, sizeof(f->trigger), "%s", x->name);
    snprintf(f->session, sizeof(f->session), "%s", x->session);
    snprintf(f->when, sizeof(f->when), "%s", x->when);
    snprintf(f->key, sizeof(f->key), "%s", key);
    f->value = v;
    f->second = sec;
    f->fired_ms = sn_now_ms();
    f->state = F_PENDING;
    t->next = (t->next + 1) % SN_TRIGGERS_FIRED_MAX;
    if (t->nfired < SN_TRIGGERS_FIRED_MAX)
        t->nfired++;
    x->pending = true;
    x->entry = f->id;
    x->due_ms = mono_ms() + (int64_t)x->post * 1000;
    sn_log(SN_LOG_INFO, "trigger",
           "%s fired: %s (value %g%s%s, second %lld); snapshot of %s in %u s", x->name, x->when, v,
           key[0] ? ", key " : "", key, (long long)sec, x->session, x->post);
}

/* Slot sec of x's instrumentation got a frame. */
static void judge_second(struct sn_triggers *t, struct trig *x, int64_t sec)
{
    double v;
    char key[256];

    sec -= ((sec % x->g) + x->g) % x->g; /* the slot's start: frames come each second */
    if (x->last_t != INT64_MIN && sec < x->last_t)
        return; /* late: its run is decided */
    if (sec == x->last_t && x->last_holds)
        return; /* counted already */
    bool holds = judge(t, x, sec, &v, key, sizeof(key));
    if (sec == x->last_t) { /* more frames for it: it may hold now */
        if (!holds)
            return;
        x->last_holds = true;
        x->streak++;
    } else {
        bool next = x->last_t != INT64_MIN && sec == x->last_t + (int64_t)x->g;
        x->streak = holds ? (next && x->last_holds ? x->streak + 1 : 1) : 0;
        x->last_t = sec;
        x->last_holds = holds;
    }
    if (holds && x->streak >= x->need) {
        x->streak = 0; /* a new run of "for" seconds before it fires again */
        fire(t, x, sec, v, key);
    }
}

/* ---- the thread ------------------------------------------------------------------------- */

static void on_frame(void *arg, const char *key, int64_t sec)
{
    struct sn_triggers *t = arg;
    pthread_mutex_lock(&t->mu);
    bool watched = false;
    for (int i = 0; i < SN_TRIGGERS_MAX && !watched && !t->stop; i++)
        watched = t->tr[i] && strcmp(t->tr[i]->key, key) == 0;
    if (watched) {
        if (t->qlen == QMAX) {
            t->qlost++;
        } else {
            struct qent *e = &t->q[(t->qhead + t->qlen) % QMAX];
            snprintf(e->key, sizeof(e->key), "%s", key);
            e->t = sec;
            t->qlen++;
            pthread_cond_signal(&t->cv);
        }
    }
    pthread_mutex_unlock(&t->mu);
}

/* Takes x's pending snapshot; called with t->mu held, which it releases meanwhile. */
static void take(struct sn_triggers *t, struct trig *x)
{
    char name[SN_RECORDER_NAME_MAX + 1], session[SN_RECORDER_NAME_MAX + 1], id[128];
    struct sn_recorder_snap_info info;
    uint64_t entry = x->entry;

    snprintf(name, sizeof(name), "%s", x->name);
    snprintf(session, sizeof(session), "%s", x->session);
    x->pending = false;
    pthread_mutex_unlock(&t->mu);
    /* a fleet session: every host's ring, gathered through the bus (fleet/fleet_rec.h) */
    struct sn_fleet_rec *fr = sn_fleet_recorder(t->s->fleet);
    json_t *hosts = NULL;
    char why[256] = "";
    int rc;
    if (fr && sn_fleet_rec_is_fleet(fr, session)) {
        json_t *expected = sn_fleet_live_hosts(t->s->fleet);
        rc = sn_fleet_rec_snapshot(fr, session, expected, t->root, SN_FLEET_REC_WAIT_MS, id,
                                   sizeof(id), &hosts, why, sizeof(why));
        json_decref(expected);
    } else {
        rc = sn_recorder_snapshot_new(t->s->recorder, session, t->root, SN_RECORDER_WHOLE_RING, id,
                                      sizeof(id), &info);
    }
    pthread_mutex_lock(&t->mu);
    for (int i = 0; i < SN_TRIGGERS_MAX; i++) /* x may be gone meanwhile */
        if (t->tr[i] == x && strcmp(x->name, name) == 0) {
            if (rc == 0)
                x->snapshots++;
            else
                x->failures++;
        }
    struct fired *f = fired_find(t, entry);
    if (f) {
        json_decref(f->hosts);
        f->hosts = json_incref(hosts);
    }
    if (f && rc == 0) {
        f->state = F_TAKEN;
        snprintf(f->snapshot, sizeof(f->snapshot), "%s", id);
    } else if (f) {
        f->state = F_FAILED;
        snprintf(f->error, sizeof(f->error), "%s",
                 why[0]          ? why
                 : rc == -ENOENT ? "the session is not running"
                                 : strerror(-rc));
        if (rc == -ENODATA) /* the index names who did not answer */
            snprintf(f->snapshot, sizeof(f->snapshot), "%s", id);
    }
    json_decref(hosts);
    if (rc != 0)
        sn_log(SN_LOG_WARN, "trigger", "%s: snapshot of %s failed: %s", name, session,
               why[0] ? why : strerror(-rc));
}

static void *run(void *arg)
{
    struct sn_triggers *t = arg;

    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        while (t->qlen) {
            struct qent e = t->q[t->qhead];
            t->qhead = (t->qhead + 1) % QMAX;
            t->qlen--;
            for (int i = 0; i < SN_TRIGGERS_MAX; i++)
                if (t->tr[i] && strcmp(t->tr[i]->key, e.key) == 0)
                    judge_second(t, t->tr[i], e.t);
        }
        int64_t now = mono_ms(), due = INT64_MAX;
        struct trig *ready = NULL;
        for (int i = 0; i < SN_TRIGGERS_MAX; i++) {
            struct trig *x = t->tr[i];
            if (x && x->pending && x->due_ms <= now && !ready)
                ready = x;
            else if (x && x->pending && x->due_ms < due)
                due = x->due_ms;
        }
        if (ready) {
            take(t, ready);
            continue;
        }
        if (t->qlen)
            continue;
        if (due == INT64_MAX) {
            pthread_cond_wait(&t->cv, &t->mu);
        } else {
            struct timespec ts = {.tv_sec = (time_t)(due / 1000),
                                  .tv_nsec = (long)(due % 1000) * 1000000L};
            pthread_cond_timedwait(&t->cv, &t->mu, &ts);
        }
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

int sn_triggers_open(struct sn_server *s, const char *snap_root, struct sn_triggers **out)
{
    struct sn_triggers *t = calloc(1, sizeof(*t));
    pthread_condattr_t ca;
    int rc;

    *out = NULL;
    if (!t)
        return -ENOMEM;
    t->s = s;
    snprintf(t->root, sizeof(t->root), "%s", snap_root);
    pthread_mutex_init(&t->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);
    if ((rc = sn_agg_listen(s->agg, on_frame, t)) < 0 ||
        (rc = -pthread_create(&t->thread, NULL, run, t)) < 0) {
        /* a listener cannot be taken back: t stays, stopped, for the aggregator's life */
        t->stop = true;
        *out = t;
        return rc;
    }
    t->running = true;
    *out = t;
    return 0;
}

void sn_triggers_stop(struct sn_triggers *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    if (t->running)
        pthread_join(t->thread, NULL);
    t->running = false;
}

void sn_triggers_free(struct sn_triggers *t)
{
    if (!t)
        return;
    sn_triggers_stop(t);
    for (int i = 0; i < SN_TRIGGERS_MAX; i++)
        free(t->tr[i]);
    for (size_t i = 0; i < SN_TRIGGERS_FIRED_MAX; i++)
        json_decref(t->fired[i].hosts);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* ---- the registry ----------------------------------------------------------------------- */

static int find(const struct sn_triggers *t, const char *name)
{
    for (int i = 0; i < SN_TRIGGERS_MAX; i++)
        if (t->tr[i] && strcmp(t->tr[i]->name, name) == 0)
            return i;
    return -1;
}

int sn_triggers_add(struct sn_triggers *t, const struct sn_trigger_spec *sp, char *why, size_t len)
{
    struct trig *x;
    int rc;

    if (!sn_recorder_name_ok(sp->name)) {
        snprintf(why, len,
                 "a trigger's name must be 1 to %d of [A-Za-z0-9_.-], not starting "
                 "with '.'",
                 SN_RECORDER_NAME_MAX);
        return -EINVAL;
    }
    if (!(x = calloc(1, sizeof(*x))))
        return -ENOMEM;
    if ((rc = sn_tcond_parse(sp->when, &x->cond, why, len)) != 0)
        goto fail;
    rc = -EINVAL;
    if (sp->post > SN_TRIGGER_POST_MAX) {
        snprintf(why, len, "\"post\" is at most %d seconds", SN_TRIGGER_POST_MAX);
        goto fail;
    }
    if (sp->min_interval > SN_TRIGGER_IVAL_MAX) {
        snprintf(why, len, "\"min-interval\" is at most %d seconds", SN_TRIGGER_IVAL_MAX);
        goto fail;
    }
    if (sp->key && (!sp->key[0] || strlen(sp->key) >= sizeof(x->match))) {
        snprintf(why, len,
                 "\"key\" must be a key of the instrumentation's decomposition (1 to "
                 "255 bytes) or \"*\" (any key)");
        goto fail;
    }
    struct sn_instn *in = sn_server_get(t->s, "", sp->instn, false);
    if (!in) {
        snprintf(why, len, "no instrumentation %llu (of the operator's)",
                 (unsigned long long)sp->instn);
        rc = -ENOENT;
        goto fail;
    }
    bool numeric = in->arity == SN_ARITY_NUMERIC, keyed = in->keyf != NULL;
    snprintf(x->key, sizeof(x->key), "%s", in->key);
    x->g = in->granularity ? in->granularity : 1;
    sn_instn_free(in);
    if (x->cond.kind != SN_TCOND_RATE && !numeric) {
        snprintf(why, len,
                 "a %s needs an instrumentation with a numeric decomposition (e.g. "
                 "latency); %llu has none",
                 x->cond.kind == SN_TCOND_PCT ? "percentile" : "band",
                 (unsigned long long)sp->instn);
        goto fail;
    }
    if (sp->key && !keyed) {
        snprintf(why, len,
                 "\"key\": instrumentation %llu has no discrete decomposition (its "
                 "keys)",
                 (unsigned long long)sp->instn);
        goto fail;
    }
    json_t *sess = sn_recorder_json(t->s->recorder, sp->session ? sp->session : "");
    if (!sess) {
        snprintf(why, len, "no recording session \"%.64s\"", sp->session ? sp->session : "");
        rc = -ENOENT;
        goto fail;
    }
    json_decref(sess);
    snprintf(x->name, sizeof(x->name), "%s", sp->name);
    snprintf(x->session, sizeof(x->session), "%s", sp->session);
    snprintf(x->when, sizeof(x->when), "%s", sp->when);
    x->instn = sp->instn;
    x->by_key = sp->key != NULL;
    x->any = sp->key && strcmp(sp->key, "*") == 0;
    if (sp->key && !x->any)
        snprintf(x->match, sizeof(x->match), "%s", sp->key);
    x->min_interval = sp->min_interval;
    x->post = sp->post;
    x->need = (x->cond.for_s + x->g - 1) / x->g;
    x->created = sn_now();
    x->last_t = INT64_MIN;

    pthread_mutex_lock(&t->mu);
    int slot = -1;
    for (int i = SN_TRIGGERS_MAX - 1; i >= 0; i--)
        if (!t->tr[i])
            slot = i;
    if (find(t, sp->name) >= 0) {
        snprintf(why, len, "trigger \"%s\" exists", sp->name);
        rc = -EEXIST;
    } else if (slot < 0) {
        snprintf(why, len, "at most %d triggers", SN_TRIGGERS_MAX);
        rc = -ENOSPC;
    } else {
        t->tr[slot] = x;
        x = NULL;
        rc = 0;
    }
    pthread_mutex_unlock(&t->mu);
fail:
    free(x);
    return rc;
}

int sn_triggers_remove(struct sn_triggers *t, const char *name)
{
    pthread_mutex_lock(&t->mu);
    int i = find(t, name);
    if (i >= 0) { /* take() finds it gone */
        struct fired *f = t->tr[i]->pending ? fired_find(t, t->tr[i]->entry) : NULL;
        if (f) {
            f->state = F_FAILED;
            snprintf(f->error, sizeof(f->error), "the trigger was removed before its snapshot");
        }
        free(t->tr[i]);
        t->tr[i] = NULL;
    }
    pthread_mutex_unlock(&t->mu);
    return i >= 0 ? 0 : -ENOENT;
}

static json_t *fired_json(const struct fired *f)
{
    static const char *const states[] = {"pending", "taken", "failed"};
    json_t *j = json_pack("{s:I,s:s,s:s,s:s,s:f,s:I,s:I,s:s}", "id", (json_int_t)f->id, "trigger",
                          f->trigger, "session", f->session, "condition", f->when, "value",
                          f->value, "second", (json_int_t)f->second, "fired_ms",
                          (json_int_t)f->fired_ms, "state", states[f->state]);
    if (!j)
        return NULL;
    json_object_set_new(j, "key", f->key[0] ? json_string(f->key) : json_null());
    json_object_set_new(j, "snapshot", f->snapshot[0] ? json_string(f->snapshot) : json_null());
    if (f->hosts)
        json_object_set(j, "hosts", f->hosts);
    if (f->state == F_FAILED)
        json_object_set_new(j, "error", json_string(f->error));
    return j;
}

/* The fired entries (of trigger name, or all), oldest first. */
static json_t *fired_list(const struct sn_triggers *t, const char *name)
{
    json_t *a = json_array();
    for (size_t k = t->nfired; a && k-- > 0;) {
        const struct fired *f =
            &t->fired[(t->next + SN_TRIGGERS_FIRED_MAX - 1 - k) % SN_TRIGGERS_FIRED_MAX];
        if (!name || strcmp(f->trigger, name) == 0)
            json_array_append_new(a, fired_json(f));
    }
    return a;
}

static json_t *trig_json(const struct sn_triggers *t, const struct trig *x)
{
    json_t *j = json_pack("{s:s,s:s,s:I,s:s,s:i,s:i,s:I,s:I,s:I,s:I,s:I,s:i,s:o}", "name", x->name,
                          "session", x->session, "instrumentation", (json_int_t)x->instn, "when",
                          x->when, "min-interval", (int)x->min_interval, "post", (int)x->post,
                          "created", (json_int_t)x->created, "fires", (json_int_t)x->fires,
                          "suppressed", (json_int_t)x->suppressed, "snapshots",
                          (json_int_t)x->snapshots, "failures", (json_int_t)x->failures, "streak",
                          (int)x->streak, "fired", fired_list(t, x->name));
    if (j)
        json_object_set_new(j, "key",
                            !x->by_key ? json_null() : json_string(x->any ? "*" : x->match));
    return j;
}

json_t *sn_triggers_json(struct sn_triggers *t, const char *name)
{
    json_t *j = NULL;

    pthread_mutex_lock(&t->mu);
    if (name) {
        int i = find(t, name);
        if (i >= 0)
            j = trig_json(t, t->tr[i]);
    } else {
        j = json_array();
        for (int i = 0; j && i < SN_TRIGGERS_MAX; i++)
            if (t->tr[i])
                json_array_append_new(j, trig_json(t, t->tr[i]));
    }
    pthread_mutex_unlock(&t->mu);
    return j;
}

json_t *sn_triggers_fired_json(struct sn_triggers *t)
{
    pthread_mutex_lock(&t->mu);
    json_t *j = fired_list(t, NULL);
    pthread_mutex_unlock(&t->mu);
    return j;
}
