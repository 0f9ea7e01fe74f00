/*
 * The in-process bus (src/bus/bus.h): frames reach every matching subscriber, borrowed and in
 * order, and none after unsubscribing (also from inside a callback); control messages are
 * acknowledged per host with rc and why, sorted by host, addressed to one host or all; a host
 * that never answers times out within the bound, one unsubscribed while messages wait answers
 * them -ESHUTDOWN; acks and sources set per-source status, which can be queried and watched
 * (a mirror kept by a watcher equals the table while threads report); and threads publishing
 * while another subscribes and unsubscribes never reach a freed subscriber (run under ASan).
 * Every wait is bounded in count and time.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"
#include "core/clock.h"
#include "http.h" /* th_sleep_ms() */
#include "t.h"
#include "wire/frame.h"

/* ------------------------------------------------------------------------------------------
 * Frames
 */

struct seen {
    const struct sn_wire_frame *last; /* the pointer delivered */
    char log[256];                    /* ids seen, each followed by ',' */
    int calls;
    int result;              /* what the callback returns */
    struct sn_bus_sub *self; /* unsubscribe from inside the first call, when set */
};

static void on_frame(void *arg, const struct sn_wire_frame *const *f, size_t n, int *rcs, void *ctx)
{
    struct seen *s = arg;

    if (ctx)
        (*(int *)ctx)++;

    s->calls++;
    for (size_t i = 0; i < n; i++) {
        s->last = f[i];
        strncat(s->log, f[i]->id, sizeof(s->log) - strlen(s->log) - 2);
        strcat(s->log, ",");
        rcs[i] = s->result;
    }
    if (s->self) {
        sn_bus_unsubscribe(s->self);
        s->self = NULL;
    }
}

static void test_frames(void)
{
    struct sn_bus *bus;
    struct seen all = {0}, one = {.result = 7}, two = {.result = -3};
    struct sn_bus_sub *sa, *s1, *s2;
    struct sn_wire_frame f1 = {.id = "1", .host = "h", .t = 5, .arity = SN_WIRE_SCALAR};
    struct sn_wire_frame f2 = {.id = "acme/2", .host = "h", .t = 5, .arity = SN_WIRE_SCALAR};

    T_EQ(sn_bus_open(&bus), 0);
    /* no subscriber: 0 */
    T_EQ(sn_bus_publish_frame(bus, &f1, NULL), 0);
    T_EQ(sn_bus_subscribe_frames(bus, NULL, on_frame, &all, &sa), 0);
    T_EQ(sn_bus_subscribe_frames(bus, "1", on_frame, &one, &s1), 0);
    T_EQ(sn_bus_subscribe_frames(bus, "acme/2", on_frame, &two, &s2), 0);

    T_EQ(sn_bus_publish_frame(bus, &f1, NULL), 7); /* all returns 0, then one's 7 */
    T_EQ(sn_bus_publish_frame(bus, &f2, NULL), -3);
    T_EQ(sn_bus_publish_frame(bus, &f1, NULL), 7);
    T_STR(all.log, "1,acme/2,1,");
    T_STR(one.log, "1,1,");
    T_STR(two.log, "acme/2,");
    T_OK(one.last == &f1 && two.last == &f2); /* borrowed, not copied */
    int told = 0; /* the publisher's context reaches every subscriber called */
    T_EQ(sn_bus_publish_frame(bus, &f2, &told), -3);
    T_EQ(told, 2);

    /* a batch: one call per subscriber, every frame's result */
    struct sn_wire_frame f1b = f1, f1c = f1;
    f1b.host = "h2";
    f1c.host = "h3";
    const struct sn_wire_frame *batch[] = {&f1, &f1b, &f1c};
    int rcs[3] = {1, 1, 1};
    T_EQ(sn_bus_publish_frames(bus, batch, 3, rcs, NULL), 0);
    T_EQ(rcs[0], 7);
    T_EQ(rcs[2], 7);
    T_EQ(one.calls, 3);
    T_EQ(all.calls, 5);
    T_STR(one.log, "1,1,1,1,1,");
    T_OK(one.last == &f1c);
    /* frames of two instrumentations are two batches: refused, nobody called, rcs untouched */
    const struct sn_wire_frame *mixed[] = {&f1, &f2};
    rcs[0] = 99;
    T_EQ(sn_bus_publish_frames(bus, mixed, 2, rcs, NULL), -EINVAL);
    T_EQ(sn_bus_publish_frames(bus, mixed, 0, rcs, NULL), -EINVAL);
    T_EQ(rcs[0], 99);
    T_EQ(one.calls, 3);
    strcpy(one.log, "1,1,");
    strcpy(all.log, "1,acme/2,1,");
    all.calls = 4;
    one.calls = 2;

    /* not after unsubscribing */
    sn_bus_unsubscribe(s1);
    T_EQ(sn_bus_publish_frame(bus, &f1, NULL), 0);
    T_EQ(one.calls, 2);
    T_EQ(all.calls, 5);

    /* unsubscribing from inside its own callback */
    struct seen selfish = {0};
    struct sn_bus_sub *ss;
    T_EQ(sn_bus_subscribe_frames(bus, NULL, on_frame, &selfish, &ss), 0);
    selfish.self = ss;
    sn_bus_publish_frame(bus, &f1, NULL);
    sn_bus_publish_frame(bus, &f1, NULL);
    T_EQ(selfish.calls, 1);
    T_EQ(all.calls, 7);

    /* refusals */
    struct sn_bus_sub *x = NULL;
    char longkey[300];
    memset(longkey, 'k', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    T_EQ(sn_bus_subscribe_frames(bus, NULL, NULL, NULL, &x), -EINVAL);
    T_EQ(sn_bus_subscribe_frames(bus, longkey, on_frame, &all, &x), -EINVAL);
    T_EQ(sn_bus_subscribe_frames(bus, "", on_frame, &all, &x), -EINVAL);
    T_OK(x == NULL);
    struct sn_wire_frame noid = {.host = "h"};
    T_EQ(sn_bus_publish_frame(bus, &noid, NULL), -EINVAL);

    sn_bus_unsubscribe(NULL);
    sn_bus_close(bus); /* unsubscribes sa and s2 */
    sn_bus_close(NULL);
}

/* ------------------------------------------------------------------------------------------
 * Control
 */

struct host {
    int rc;
    const char *why;
    atomic_int calls;
    enum sn_bus_op op;
    char key[64];
    char def[128];      /* the definition seen, as compact JSON */
    const json_t *defp; /* its pointer */
    atomic_int hold;    /* nonzero: wait until it is zero (bounded: 10 s) */
    atomic_int in_call;
    struct sn_bus_sub *self; /* unsubscribe from inside the next call, when set */
};

static void on_ctl(void *arg, const struct sn_bus_ctl *m, struct sn_bus_ack *ack)
{
    struct host *h = arg;
    int64_t until = sn_mono_ms() + 10000;

    atomic_store(&h->in_call, 1);
    h->calls++;
    h->op = m->op;
    snprintf(h->key, sizeof(h->key), "%s", m->key);
    h->defp = m->def;
    h->def[0] = '\0';
    if (m->def) {
        char *text = json_dumps(m->def, JSON_COMPACT);
        snprintf(h->def, sizeof(h->def), "%s", text ? text : "?");
        free(text);
    }
    while (atomic_load(&h->hold) && sn_mono_ms() < until)
        th_sleep_ms(2);
    if (h->self) {
        sn_bus_unsubscribe(h->self);
        h->self = NULL;
    }
    ack->rc = h->rc;
    if (h->why)
        snprintf(ack->why, sizeof(ack->why), "%s", h->why);
    atomic_store(&h->in_call, 0);
}

static const struct sn_bus_status *find_status(const struct sn_bus_status *st, size_t n,
                                               const char *host, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(st[i].host, host) == 0 && strcmp(st[i].key, key) == 0)
            return &st[i];
    return NULL;
}

static void test_acks_and_status(void)
{
    struct sn_bus *bus;
    struct host a = {0}, b = {.rc = -ENOENT, .why = "no such metric: syscall.nope"}, c = {0};
    struct sn_bus_sub *sa, *sb, *sc, *x = NULL;
    struct sn_bus_ack acks[4];
    struct sn_bus_status st[8];
    size_t n = 99;
    json_t *def = json_pack("{s:s,s:s}", "module", "syscall", "stat", "syscalls");
    int64_t t0 = sn_now_ms();

    T_EQ(sn_bus_open(&bus), 0);
    /* nobody subscribed: no ack */
    struct sn_bus_ctl en = {.op = SN_BUS_ENABLE, .key = "3", .def = def};
    T_EQ(sn_bus_publish_control(bus, &en, acks, 4, 100, &n), 0);
    T_EQ(n, 0);

    T_EQ(sn_bus_subscribe_control(bus, "web2", on_ctl, &c, &sc), 0);
    T_EQ(sn_bus_subscribe_control(bus, "web1", on_ctl, &a, &sa), 0);
    T_EQ(sn_bus_subscribe_control(bus, "db1", on_ctl, &b, &sb), 0);
    T_EQ(sn_bus_subscribe_control(bus, "web1", on_ctl, &a, &x), -EEXIST);
    T_EQ(sn_bus_subscribe_control(bus, "", on_ctl, &a, &x), -EINVAL);
    T_EQ(sn_bus_subscribe_control(bus, "h", NULL, &a, &x), -EINVAL);
    T_OK(x == NULL);

    /* enable on every host: acks sorted by host, each with its rc and why */
    T_EQ(sn_bus_publish_control(bus, &en, acks, 4, 5000, &n), 0);
    T_EQ(n, 3);
    T_STR(acks[0].host, "db1");
    T_EQ(acks[0].rc, -ENOENT);
    T_STR(acks[0].why, "no such metric: syscall.nope");
    T_STR(acks[1].host, "web1");
    T_EQ(acks[1].rc, 0);
    T_STR(acks[1].why, "");
    T_STR(acks[2].host, "web2");
    T_EQ(acks[2].rc, 0);
    T_EQ(a.calls, 1);
    T_EQ(a.op, SN_BUS_ENABLE);
    T_STR(a.key, "3");
    T_STR(a.def, "{\"module\":\"syscall\",\"stat\":\"syscalls\"}");
    T_OK(a.defp != def); /* the bus's own copy */

    /* status: running since the enable, or cannot run and why */
    T_EQ(sn_bus_status(bus, "3", st, 8), 3);
    const struct sn_bus_status *s = find_status(st, 3, "web1", "3");
    T_OK(s && s->state == SN_BUS_RUNNING && s->rc == 0 && s->why[0] == '\0');
    T_OK(s && s->since_ms >= t0 && s->since_ms <= sn_now_ms());
    int64_t since = s ? s->since_ms : 0;
    s = find_status(st, 3, "db1", "3");
    T_OK(s && s->state == SN_BUS_FAILED && s->rc == -ENOENT);
    T_STR(s ? s->why : "", "no such metric: syscall.nope");
    T_STR(st[0].host, "db1"); /* sorted by key, then host */
    T_STR(st[2].host, "web2");

    /* one host addressed; max below the count still counts them all */
    th_sleep_ms(5);
    struct sn_bus_ctl en1 = {.op = SN_BUS_ENABLE, .key = "3", .def = def, .host = "web1"};
    T_EQ(sn_bus_publish_control(bus, &en1, acks, 4, 5000, &n), 0);
    T_EQ(n, 1);
    T_STR(acks[0].host, "web1");
    T_EQ(a.calls, 2);
    T_EQ(c.calls, 1);
    T_EQ(sn_bus_status(bus, "3", st, 8), 3);
    s = find_status(st, 3, "web1", "3");
    T_OK(s && s->since_ms == since); /* running already: since is kept */
    T_EQ(sn_bus_publish_control(bus, &en, acks, 1, 5000, &n), 0);
    T_EQ(n, 3);
    T_STR(acks[0].host, "db1");
    T_EQ(sn_bus_publish_control(bus, &en, NULL, 0, 5000, &n), 0);
    T_EQ(n, 3);

    /* disable: done clears the status, refused keeps it */
    struct sn_bus_ctl dis = {.op = SN_BUS_DISABLE, .key = "3"};
    c.rc = -EBUSY;
    c.why = "busy";
    T_EQ(sn_bus_publish_control(bus, &dis, acks, 4, 5000, &n), 0);
    T_EQ(n, 3);
    T_EQ(acks[2].rc, -EBUSY);
    T_EQ(c.op, SN_BUS_DISABLE);
    T_OK(c.defp == NULL);
    T_EQ(sn_bus_status(bus, "3", st, 8), 2);
    T_OK(find_status(st, 2, "web2", "3") && find_status(st, 2, "db1", "3"));
    T_OK(!find_status(st, 2, "web1", "3"));

    /* sources report on their own; clear; query all keys */
    T_EQ(sn_bus_report_status(bus, "web1", "acme/4", -EPERM, "cannot attach: permission"), 0);
    T_EQ(sn_bus_report_status(bus, "web1", "5", 0, NULL), 0);
    T_EQ(sn_bus_report_status(bus, "web1", "5", 1, NULL), -EINVAL);
    T_EQ(sn_bus_report_status(bus, "", "5", 0, NULL), -EINVAL);
    T_EQ(sn_bus_status(bus, NULL, st, 8), 4);
    T_STR(st[0].key, "3"); /* "3" < "5" < "acme/4" */
    T_STR(st[2].key, "5");
    T_STR(st[3].key, "acme/4");
    T_EQ(st[3].state, SN_BUS_FAILED);
    T_STR(st[3].why, "cannot attach: permission");
    T_EQ(sn_bus_status(bus, NULL, NULL, 0), 4);
    T_EQ(sn_bus_clear_status(bus, "web1", NULL), 2);
    T_EQ(sn_bus_clear_status(bus, "web2", "3"), 1);
    T_EQ(sn_bus_status(bus, NULL, st, 8), 1);

    /* refusals */
    struct sn_bus_ctl bad = {.op = SN_BUS_ENABLE, .key = "3"}; /* no def */
    T_EQ(sn_bus_publish_control(bus, &bad, acks, 4, 100, &n), -EINVAL);
    bad = (struct sn_bus_ctl){.op = 9, .key = "3"};
    T_EQ(sn_bus_publish_control(bus, &bad, acks, 4, 100, &n), -EINVAL);
    bad = (struct sn_bus_ctl){.op = SN_BUS_DISABLE, .key = NULL};
    T_EQ(sn_bus_publish_control(bus, &bad, acks, 4, 100, &n), -EINVAL);
    T_EQ(sn_bus_publish_control(bus, &dis, acks, 4, -1, &n), -EINVAL);

    sn_bus_unsubscribe(sa);
    T_EQ(sn_bus_publish_control(bus, &dis, acks, 4, 5000, &n), 0);
    T_EQ(n, 2);
    json_decref(def);
    sn_bus_close(bus); /* joins sb's and sc's threads */
}

/* A host that never answers in time: a timed-out ack within the bound, a failed status, and
 * its late answer still sets the status. */
static void test_silent_host(void)
{
    struct sn_bus *bus;
    struct host quiet = {0}, fast = {0};
    struct sn_bus_sub *sq, *sf;
    struct sn_bus_ack acks[2];
    struct sn_bus_status st[2];
    size_t n;
    json_t *def = json_pack("{s:s}", "module", "syscall");
    struct sn_bus_ctl en = {.op = SN_BUS_ENABLE, .key = "9", .def = def};

    T_EQ(sn_bus_open(&bus), 0);
    T_EQ(sn_bus_subscribe_control(bus, "quiet", on_ctl, &quiet, &sq), 0);
    T_EQ(sn_bus_subscribe_control(bus, "fast", on_ctl, &fast, &sf), 0);
    atomic_store(&quiet.hold, 1);
    int64_t t0 = sn_mono_ms();
    T_EQ(sn_bus_publish_control(bus, &en, acks, 2, 150, &n), 0);
    int64_t took = sn_mono_ms() - t0;
    t_note("waited %lld ms for a 150 ms timeout", (long long)took);
    T_OK(took >= 140 && took < 5000); /* not the 10 s the host is held: the timeout worked */
    T_EQ(n, 2);
    T_STR(acks[0].host, "fast");
    T_EQ(acks[0].rc, 0);
    T_STR(acks[1].host, "quiet");
    T_EQ(acks[1].rc, -ETIMEDOUT);
    T_STR(acks[1].why, "no answer within 150 ms");
    T_EQ(sn_bus_status(bus, "9", st, 2), 2);
    const struct sn_bus_status *s = find_status(st, 2, "quiet", "9");
    T_OK(s && s->state == SN_BUS_FAILED && s->rc == -ETIMEDOUT);

    /* a zero timeout: whoever has not answered yet times out at once */
    t0 = sn_mono_ms();
    T_EQ(sn_bus_publish_control(
             bus,
             &(struct sn_bus_ctl){.op = SN_BUS_ENABLE, .key = "9", .def = def, .host = "quiet"},
             acks, 2, 0, &n),
         0);
    T_OK(sn_mono_ms() - t0 < 5000); /* at once, not after the host's hold (10 s) */
    T_EQ(n, 1);
    T_EQ(acks[0].rc, -ETIMEDOUT);

    /* released: the late answers set the status (bounded poll) */
    atomic_store(&quiet.hold, 0);
    bool running = false;
    for (int i = 0; i < 1000 && !running; i++) { /* 10 s at least */
        running = sn_bus_status(bus, "9", st, 2) == 2 && (s = find_status(st, 2, "quiet", "9")) &&
                  s->state == SN_BUS_RUNNING && quiet.calls == 2 && !atomic_load(&quiet.in_call);
        if (!running)
            th_sleep_ms(10);
    }
    T_OK(running);
    json_decref(def);
    sn_bus_unsubscribe(sq);
    sn_bus_unsubscribe(sf);
    sn_bus_close(bus);
}

struct pub {
    struct sn_bus *bus;
    const struct sn_bus_ctl *m;
    int timeout_ms;
    struct sn_bus_ack acks[2];
    size_t n;
    int rc;
    int64_t took_ms;
    atomic_int done;
};

static void *publish_thread(void *arg)
{
    struct pub *p = arg;
    int64_t t0 = sn_mono_ms();
    p->rc = sn_bus_publish_control(p->bus, p->m, p->acks, 2, p->timeout_ms, &p->n);
    p->took_ms = sn_mono_ms() - t0;
    atomic_store(&p->done, 1);
    return NULL;
}

struct release {
    struct pub *p;
    struct host *h;
};

/* Waits (bounded) for the publisher to return, then lets the held host go. */
static void *release_thread(void *arg)
{
    struct release *r = arg;
    int64_t until = sn_mono_ms() + 10000;
    while (!atomic_load(&r->p->done) && sn_mono_ms() < until)
        th_sleep_ms(2);
    atomic_store(&r->h->hold, 0);
    return NULL;
}

/* Unsubscribing a host with messages waiting answers them -ESHUTDOWN at once; a host may
 * unsubscribe from inside its own callback. */
static void test_unsubscribe_control(void)
{
    struct sn_bus *bus;
    struct host h = {0}, selfish = {0};
    struct sn_bus_sub *sh, *ss;
    struct sn_bus_ack acks[2];
    size_t n;
    struct sn_bus_ctl dis = {.op = SN_BUS_DISABLE, .key = "1", .host = "busy"};
    struct pub p = {0};
    struct release rel = {&p, &h};
    pthread_t tp, tr;
    int64_t until;

    T_EQ(sn_bus_open(&bus), 0);
    T_EQ(sn_bus_subscribe_control(bus, "busy", on_ctl, &h, &sh), 0);
    atomic_store(&h.hold, 1);
    /* the first message holds the host's thread (it times out here) */
    T_EQ(sn_bus_publish_control(bus, &dis, acks, 2, 20, &n), 0);
    T_EQ(acks[0].rc, -ETIMEDOUT);
    /* the second waits in its queue, its publisher waiting up to 10 s */
    p = (struct pub){.bus = bus, .m = &dis, .timeout_ms = 10000};
    T_EQ(pthread_create(&tp, NULL, publish_thread, &p), 0);
    T_EQ(pthread_create(&tr, NULL, release_thread, &rel), 0);
    /* wait (bounded) until the first message is in the host's callback and the second waits in
     * its queue */
    until = sn_mono_ms() + 10000;
    while (!(atomic_load(&h.in_call) && sn_bus_queued(bus, "busy") == 1) && sn_mono_ms() < until)
        th_sleep_ms(2);
    T_OK(atomic_load(&h.in_call));
    T_EQU(sn_bus_queued(bus, "busy"), 1);
    until = sn_mono_ms() + 10000;
    sn_bus_unsubscribe(sh); /* answers it, then joins the thread once released */
    T_OK(sn_mono_ms() < until);
    pthread_join(tp, NULL);
    pthread_join(tr, NULL);
    T_EQ(p.rc, 0);
    T_EQ(p.n, 1);
    T_EQ(p.acks[0].rc, -ESHUTDOWN);
    T_STR(p.acks[0].why, "unsubscribed before answering");
    t_note("the queued message was answered after %lld ms", (long long)p.took_ms);
    T_OK(p.took_ms < 5000);
    T_EQ(h.calls, 1);

    /* from inside its own callback: it still answers that call, then is gone */
    T_EQ(sn_bus_subscribe_control(bus, "self", on_ctl, &selfish, &ss), 0);
    selfish.self = ss;
    struct sn_bus_ctl dself = {.op = SN_BUS_DISABLE, .key = "1"};
    T_EQ(sn_bus_publish_control(bus, &dself, acks, 2, 5000, &n), 0);
    T_EQ(n, 1);
    T_EQ(acks[0].rc, 0);
    T_EQ(sn_bus_publish_control(bus, &dself, acks, 2, 5000, &n), 0);
    T_EQ(n, 0);
    T_EQ(selfish.calls, 1);
    sn_bus_close(bus);
}

/* ------------------------------------------------------------------------------------------
 * Watching statuses
 */

struct watch {
    char log[512]; /* "host key state rc," per change */
    int calls;
    struct sn_bus_sub *self; /* unsubscribe from inside the next call, when set */
};

static void on_status(void *arg, const struct sn_bus_status *st)
{
    struct watch *w = arg;
    static const char *const names[] = {"stopped", "running", "failed", "unsupported"};
    char one[128];

    w->calls++;
    snprintf(one, sizeof(one), "%.40s %.40s %s %d,", st->host, st->key,
             st->state <= SN_BUS_UNSUPPORTED ? names[st->state] : "?", st->rc);
    strncat(w->log, one, sizeof(w->log) - strlen(w->log) - 1);
    if (w->self) {
        sn_bus_unsubscribe(w->self);
        w->self = NULL;
    }
}

static void test_watch_status(void)
{
    struct sn_bus *bus;
    struct watch all = {0}, only5 = {0}, selfish = {0};
    struct sn_bus_sub *wa, *w5, *ws, *x = NULL;
    struct host nobpf = {.rc = -EOPNOTSUPP, .why = "no BPF on this host"};
    struct sn_bus_sub *sh;
    struct sn_bus_ack acks[2];
    struct sn_bus_status st[4];
    size_t n;
    json_t *def = json_pack("{s:s}", "module", "syscall");

    T_EQ(sn_bus_open(&bus), 0);
    T_EQ(sn_bus_report_status(bus, "web1", "4", 0, NULL), 0); /* before: not replayed */
    T_EQ(sn_bus_subscribe_status(bus, NULL, on_status, &all, &wa), 0);
    T_EQ(sn_bus_subscribe_status(bus, "5", on_status, &only5, &w5), 0);
    T_EQ(sn_bus_subscribe_status(bus, NULL, NULL, NULL, &x), -EINVAL);
    T_OK(x == NULL);

    /* in order: running, failed, running again, cleared */
    T_EQ(sn_bus_report_status(bus, "web1", "5", 0, NULL), 0);
    T_EQ(sn_bus_report_status(bus, "web1", "5", -EPERM, "cannot attach"), 0);
    T_EQ(sn_bus_report_status(bus, "web2", "6", 0, NULL), 0);
    T_EQ(sn_bus_clear_status(bus, "web1", NULL), 2);
    T_STR(all.log, "web1 5 running 0,web1 5 failed -1,web2 6 running 0,web1 4 stopped 0,"
                   "web1 5 stopped 0,");
    T_STR(only5.log, "web1 5 running 0,web1 5 failed -1,web1 5 stopped 0,");

    /* an ack of -EOPNOTSUPP: unsupported, watched too */
    T_EQ(sn_bus_subscribe_control(bus, "nobpf", on_ctl, &nobpf, &sh), 0);
    all.log[0] = '\0';
    T_EQ(sn_bus_publish_control(bus,
                                &(struct sn_bus_ctl){.op = SN_BUS_ENABLE, .key = "7", .def = def},
                                acks, 2, 5000, &n),
         0);
    T_EQ(n, 1);
    T_EQ(acks[0].rc, -EOPNOTSUPP);
    T_STR(all.log, "nobpf 7 unsupported -95,");
    T_EQ(sn_bus_status(bus, "7", st, 4), 1);
    T_EQ(st[0].state, SN_BUS_UNSUPPORTED);
    T_STR(st[0].why, "no BPF on this host");

    /* unsubscribed: no more calls; from inside its own call too */
    sn_bus_unsubscribe(w5);
    T_EQ(sn_bus_subscribe_status(bus, NULL, on_status, &selfish, &ws), 0);
    selfish.self = ws;
    int calls = only5.calls;
    T_EQ(sn_bus_report_status(bus, "web1", "5", 0, NULL), 0);
    T_EQ(sn_bus_report_status(bus, "web1", "5", -EIO, NULL), 0);
    T_EQ(only5.calls, calls);
    T_EQ(selfish.calls, 1);
    json_decref(def);
    sn_bus_close(bus); /* unsubscribes wa and sh */
}

#define MIRROR_HOSTS 3
#define MIRROR_KEYS  4

struct mirror {
    pthread_mutex_t mu;
    int state[MIRROR_HOSTS][MIRROR_KEYS]; /* -1: absent */
    int rc[MIRROR_HOSTS][MIRROR_KEYS];
};

static void on_mirror(void *arg, const struct sn_bus_status *st)
{
    struct mirror *m = arg;
    int h = st->host[1] - '0', k = st->key[0] - '0';

    pthread_mutex_lock(&m->mu);
    m->state[h][k] = st->state == SN_BUS_STOPPED ? -1 : (int)st->state;
    m->rc[h][k] = st->rc;
    pthread_mutex_unlock(&m->mu);
}

struct reporter {
    struct sn_bus *bus;
    unsigned seed;
};

static void *reporter_main(void *arg)
{
    struct reporter *r = arg;
    int64_t until = sn_mono_ms() + 10000;

    for (int i = 0; i < 3000 && sn_mono_ms() < until; i++) {
        char host[4] = {'h', (char)('0' + rand_r(&r->seed) % MIRROR_HOSTS), 0, 0};
        char key[2] = {(char)('0' + rand_r(&r->seed) % MIRROR_KEYS), 0};
        int what = rand_r(&r->seed) % 4;
        if (what == 3)
            sn_bus_clear_status(r->bus, host, key);
        else
            sn_bus_report_status(r->bus, host, key,
                                 what == 0   ? 0
                                 : what == 1 ? -EIO
                                             : -EOPNOTSUPP,
                                 "why");
    }
    return NULL;
}

/* Threads reporting and clearing at once: a watcher's mirror ends equal to the table. */
static void test_mirror(void)
{
    struct sn_bus *bus;
    struct mirror m;
    struct sn_bus_sub *w;
    struct reporter r[3];
    pthread_t th[3];
    struct sn_bus_status st[MIRROR_HOSTS * MIRROR_KEYS];
    size_t n, differ = 0;

    pthread_mutex_init(&m.mu, NULL);
    memset(m.state, 0xff, sizeof(m.state));
    T_EQ(sn_bus_open(&bus), 0);
    T_EQ(sn_bus_subscribe_status(bus, NULL, on_mirror, &m, &w), 0);
    for (int i = 0; i < 3; i++) {
        r[i] = (struct reporter){bus, 7u + (unsigned)i};
        T_EQ(pthread_create(&th[i], NULL, reporter_main, &r[i]), 0);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    n = sn_bus_status(bus, NULL, st, MIRROR_HOSTS * MIRROR_KEYS);
    T_OK(n <= MIRROR_HOSTS * MIRROR_KEYS);
    int table[MIRROR_HOSTS][MIRROR_KEYS];
    memset(table, 0xff, sizeof(table));
    for (size_t i = 0; i < n; i++)
        table[st[i].host[1] - '0'][st[i].key[0] - '0'] = (int)st[i].state;
    for (int h = 0; h < MIRROR_HOSTS; h++)
        for (int k = 0; k < MIRROR_KEYS; k++)
            differ += table[h][k] != m.state[h][k];
    t_note("%zu statuses at the end", n);
    T_EQU(differ, 0);
    sn_bus_close(bus);
    pthread_mutex_destroy(&m.mu);
}

/* ------------------------------------------------------------------------------------------
 * Concurrency
 */

#define MAGIC     0x5b05b05bu
#define PUBLISHED 20000 /* frames per publishing thread */

struct victim {
    unsigned magic; /* MAGIC while subscribed; freed right after unsubscribing */
    atomic_uint calls;
};

static atomic_uint bad_calls;

static void on_victim(void *arg, const struct sn_wire_frame *const *f, size_t n, int *rcs,
                      void *ctx)
{
    struct victim *v = arg;
    if (v->magic != MAGIC)
        atomic_fetch_add(&bad_calls, 1);
    atomic_fetch_add(&v->calls, 1);
    for (size_t i = 0; i < n; i++)
        rcs[i] = 0;
}

static void on_count(void *arg, const struct sn_wire_frame *const *f, size_t n, int *rcs, void *ctx)
{
    atomic_fetch_add((atomic_uint *)arg, (unsigned)n);
    for (size_t i = 0; i < n; i++)
        rcs[i] = 0;
}

struct churn {
    struct sn_bus *bus;
    atomic_int stop;
};

static void *publisher(void *arg)
{
    struct churn *c = arg;
    struct sn_wire_frame f = {.id = "1", .host = "h", .t = 1, .arity = SN_WIRE_SCALAR};
    int64_t until = sn_mono_ms() + 20000;

    for (int i = 0; i < PUBLISHED && sn_mono_ms() < until; i++)
        sn_bus_publish_frame(c->bus, &f, NULL);
    return NULL;
}

static void test_concurrent(void)
{
    struct churn c = {0};
    pthread_t th[3];
    atomic_uint total;
    struct sn_bus_sub *keep;
    unsigned cycles = 0;

    atomic_init(&total, 0);
    atomic_init(&bad_calls, 0);
    T_EQ(sn_bus_open(&c.bus), 0);
    T_EQ(sn_bus_subscribe_frames(c.bus, "1", on_count, &total, &keep), 0);
    for (int i = 0; i < 3; i++)
        T_EQ(pthread_create(&th[i], NULL, publisher, &c), 0);
    /* subscribe and unsubscribe while they publish; each victim is freed at once */
    int64_t until = sn_mono_ms() + 3000;
    while (cycles < 2000 && sn_mono_ms() < until) {
        struct victim *v = malloc(sizeof(*v));
        struct sn_bus_sub *s;
        T_REQUIRE(v != NULL);
        v->magic = MAGIC;
        atomic_init(&v->calls, 0);
        if (sn_bus_subscribe_frames(c.bus, cycles % 2 ? NULL : "1", on_victim, v, &s) == 0) {
            if (cycles % 3 == 0)
                sched_yield();
            sn_bus_unsubscribe(s);
        }
        v->magic = 0;
        free(v);
        cycles++;
    }
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    t_note("%u subscribe/unsubscribe cycles while 3 threads published", cycles);
    T_EQ(atomic_load(&bad_calls), 0);
    T_EQ(atomic_load(&total), 3 * PUBLISHED); /* the steady subscriber got every frame */
    sn_bus_close(c.bus);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("frames reach every matching subscriber, none after unsubscribing", test_frames);
    t_run("control acks per host with rc and why; status set and queried", test_acks_and_status);
    t_run("a silent host times out within the bound; its late answer sets status",
          test_silent_host);
    t_run("unsubscribing answers waiting messages; from inside a callback too",
          test_unsubscribe_control);
    t_run("statuses watched in order; -EOPNOTSUPP is unsupported; unsubscribing watchers",
          test_watch_status);
    t_run("threads reporting at once: a watcher's mirror equals the table", test_mirror);
    t_run("publishing while subscribing and unsubscribing: no freed subscriber called",
          test_concurrent);
    return t_done();
}
