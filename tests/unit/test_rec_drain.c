/*
 * The drain (src/rec/drain.h) on a fake ring in memory written as bpf/rec.bpf.c writes, with a
 * sink that keeps what it is handed:
 *  - only records written after the add are handed, each once, per CPU in time order, within
 *    a bounded time of a 10 ms period; pass_end's times grow;
 *  - remove runs a last pass before it returns (a 60 s period: no pass of the thread's), then
 *    ends the sink; what the ring overwrote in between is handed as lost, exactly;
 *  - two sinks of one session get the same events; stop ends a session still drained;
 *  - bad arguments: -EINVAL, an unknown id -ENOENT, a period over 60 s refused.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rec/drain.h"
#include "t.h"

#define NCPU 2

static struct sn_rec_slot *slots;
static struct sn_rec_head heads[NCPU];
static struct sn_rec_ring_view view;

static void fake_init(uint32_t nslots)
{
    free(slots);
    slots = calloc((size_t)NCPU * nslots, sizeof(*slots));
    memset(heads, 0, sizeof(heads));
    view = (struct sn_rec_ring_view){slots, heads, NCPU, nslots};
}

/* A getppid exit returning v on cpu at ts, written as the BPF writer does. */
static void put(unsigned cpu, uint64_t ts, uint64_t v)
{
    uint64_t h = __atomic_load_n(&heads[cpu].head, __ATOMIC_RELAXED);
    struct sn_rec_slot *s = &slots[(size_t)cpu * view.nslots + (h & (view.nslots - 1))];
    __atomic_store_n(&s->seq, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&heads[cpu].head, h + 1, __ATOMIC_RELEASE);
    s->type = SN_RK_SYS_EXIT;
    s->nslots = 1;
    s->flags = 0;
    s->ts = ts;
    s->tid = 100 + cpu;
    s->pid = 100;
    memset(s->a, 0, sizeof(s->a));
    s->a[0] = 110;
    s->a[1] = v;
    __atomic_store_n(&s->seq, sn_rec_seq(h), __ATOMIC_RELEASE);
}

struct got {
    pthread_mutex_t mu;
    uint64_t ret[NCPU][256];
    size_t n[NCPU];
    uint64_t lost[NCPU];
    uint64_t passes, last_pass_ts;
    int order_ok, ended;
};

static int g_events(void *ctx, unsigned cpu, const struct sn_rec_event *ev, size_t n, uint64_t lost)
{
    struct got *g = ctx;
    pthread_mutex_lock(&g->mu);
    g->lost[cpu] += lost;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && ev[i].ts < ev[i - 1].ts)
            g->order_ok = 0;
        if (ev[i].cpu != cpu || ev[i].type != SN_REC_SYS_EXIT || ev[i].u.sys.nr != 110)
            g->order_ok = 0;
        if (g->n[cpu] < 256)
            g->ret[cpu][g->n[cpu]++] = (uint64_t)ev[i].u.sys.ret;
    }
    pthread_mutex_unlock(&g->mu);
    return 0;
}

static void g_pass_end(void *ctx, uint64_t ts)
{
    struct got *g = ctx;
    pthread_mutex_lock(&g->mu);
    if (ts < g->last_pass_ts)
        g->order_ok = 0;
    g->last_pass_ts = ts;
    g->passes++;
    pthread_mutex_unlock(&g->mu);
}

static void g_end(void *ctx)
{
    struct got *g = ctx;
    pthread_mutex_lock(&g->mu);
    g->ended++;
    pthread_mutex_unlock(&g->mu);
}

static struct sn_rec_sink sink_of(struct got *g)
{
    memset(g, 0, sizeof(*g));
    pthread_mutex_init(&g->mu, NULL);
    g->order_ok = 1;
    return (struct sn_rec_sink){.ctx = g, .events = g_events, .pass_end = g_pass_end, .end = g_end};
}

static size_t total(struct got *g)
{
    pthread_mutex_lock(&g->mu);
    size_t n = g->n[0] + g->n[1];
    pthread_mutex_unlock(&g->mu);
    return n;
}

static void test_periodic(void)
{
    struct sn_rec_drain *d;
    struct got g;
    struct sn_rec_sink k = sink_of(&g);
    fake_init(64);
    put(0, 10, 999); /* before the add: never handed */
    T_REQUIRE(sn_rec_drain_start(&d, &(struct sn_rec_drain_opts){.period_ms = 10}) == 0);
    int64_t id = sn_rec_drain_add(d, &view, &k, 1);
    T_OK(id > 0);
    for (uint64_t v = 0; v < 5; v++)
        put(0, 100 + v, v);
    for (uint64_t v = 0; v < 3; v++)
        put(1, 200 + v, 10 + v);
    for (int i = 0; i < 200 && total(&g) < 8; i++)
        usleep(10000);
    T_EQ(total(&g), 8);
    usleep(50000); /* more passes: nothing is handed twice */
    T_EQ(total(&g), 8);
    for (size_t i = 0; i < 5; i++)
        T_EQU(g.ret[0][i], i);
    for (size_t i = 0; i < 3; i++)
        T_EQU(g.ret[1][i], 10 + i);
    T_OK(g.passes >= 3);
    T_OK(g.order_ok);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    T_OK(g.last_pass_ts <= (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec);
    struct sn_rec_drain_stats st;
    sn_rec_drain_stats(d, &st);
    T_EQU(st.events, 8);
    T_EQU(st.lost, 0);
    T_EQ(sn_rec_drain_remove(d, id), 0);
    T_EQ(g.ended, 1);
    T_EQ(sn_rec_drain_remove(d, id), -ENOENT);
    sn_rec_drain_stop(d);
}

static void test_last_pass_and_lost(void)
{
    struct sn_rec_drain *d;
    struct got g, g2;
    struct sn_rec_sink k[2] = {sink_of(&g), sink_of(&g2)};
    fake_init(8);
    T_REQUIRE(sn_rec_drain_start(&d, &(struct sn_rec_drain_opts){.period_ms = 60000}) == 0);
    int64_t id = sn_rec_drain_add(d, &view, k, 2);
    T_OK(id > 0);
    for (uint64_t v = 0; v < 20; v++) /* 8 slots: the newest 8 kept, 12 overwritten */
        put(1, 1000 + v, v);
    T_EQ(total(&g), 0); /* no pass yet */
    T_EQ(sn_rec_drain_remove(d, id), 0);
    T_EQ(g.n[1], 8);
    T_EQU(g.lost[1], 12);
    for (size_t i = 0; i < 8; i++)
        T_EQU(g.ret[1][i], 12 + i);
    T_EQ(g.ended, 1);
    T_EQ(g2.n[1], 8); /* the second sink: the same */
    T_EQU(g2.lost[1], 12);
    T_EQ(g2.ended, 1);

    /* stop ends what is still drained, after a last pass */
    struct got g3;
    struct sn_rec_sink k3 = sink_of(&g3);
    T_OK(sn_rec_drain_add(d, &view, &k3, 1) > 0);
    put(0, 5000, 77);
    sn_rec_drain_stop(d);
    T_EQ(g3.n[0], 1);
    T_EQU(g3.ret[0][0], 77);
    T_EQ(g3.ended, 1);
}

static void test_bad(void)
{
    struct sn_rec_drain *d;
    struct got g;
    struct sn_rec_sink k = sink_of(&g);
    fake_init(8);
    T_EQ(sn_rec_drain_start(&d, &(struct sn_rec_drain_opts){.period_ms = 60001}), -EINVAL);
    T_REQUIRE(sn_rec_drain_start(&d, NULL) == 0);
    T_EQ(sn_rec_drain_add(d, NULL, &k, 1), -EINVAL);
    T_EQ(sn_rec_drain_add(d, &view, &k, 0), -EINVAL);
    T_EQ(sn_rec_drain_add(d, &view, &k, SN_REC_DRAIN_SINKS + 1), -EINVAL);
    k.end = NULL;
    T_EQ(sn_rec_drain_add(d, &view, &k, 1), -EINVAL);
    T_EQ(sn_rec_drain_remove(d, 12345), -ENOENT);
    sn_rec_drain_stop(d);
    sn_rec_drain_stop(NULL);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("records after the add, each once, in order, within a bounded time", test_periodic);
    t_run("remove's last pass, lost counted exactly, two sinks, stop", test_last_pass_and_lost);
    t_run("bad arguments", test_bad);
    free(slots);
    return t_done();
}
