/*
 * The agent object (src/agent/agent.h) with the real kernel, emitting to a test sink that
 * records what it is given: a syscall instrumentation counts exactly a child's system calls,
 * in frames one second apart each followed by its second; keys that are not UTF-8 arrive
 * escaped; disabling stops the frames; a sync keeps an unchanged instrumentation's slot (no
 * count of the second lost) and refuses a bad set whole; an agent without BPF still emits
 * cpu.usage and refuses traced metrics with -ENOTSUP; and the key cap reaches the kernel (2
 * keys by pid, then "other", counted in over_cap). Needs root (the no-BPF case does not).
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "t.h"
#include "workload.h"

/* What the sink was given. */
struct rec {
    char id[96], host[256];
    int64_t t;
    uint8_t arity;
    uint64_t total, over_cap;
    size_t nkeys;
    bool other;       /* a key "other" */
    uint64_t getppid; /* the count of key "getppid" */
    char keys[256];   /* the keys, space-separated (truncated) */
};

struct sink {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct rec recs[512];
    size_t n;
    int64_t seconds[64];
    size_t nsec;
    size_t frames_after_second; /* frames not followed by their second yet */
    bool wrong_second;          /* a frame's t was not the second that followed it */
};

static void on_frame(void *arg, const struct sn_wire_frame *f)
{
    struct sink *s = arg;
    pthread_mutex_lock(&s->mu);
    if (s->n < sizeof(s->recs) / sizeof(s->recs[0])) {
        struct rec *r = &s->recs[s->n++];
        memset(r, 0, sizeof(*r));
        snprintf(r->id, sizeof(r->id), "%s", f->id);
        snprintf(r->host, sizeof(r->host), "%s", f->host);
        r->t = f->t;
        r->arity = f->arity;
        r->total = f->total;
        r->over_cap = f->over_cap;
        r->nkeys = f->arity == SN_WIRE_DISCRETE || f->arity == SN_WIRE_NUMERIC_BY_KEY ? f->n : 0;
        for (size_t i = 0; i < r->nkeys; i++) {
            r->other |= strcmp(f->entries[i].key, "other") == 0;
            if (strcmp(f->entries[i].key, "getppid") == 0)
                r->getppid += f->entries[i].count;
            if (strlen(r->keys) + strlen(f->entries[i].key) + 2 < sizeof(r->keys))
                strcat(strcat(r->keys, " "), f->entries[i].key);
        }
    }
    s->frames_after_second++;
    pthread_mutex_unlock(&s->mu);
}

static void on_second(void *arg, int64_t t)
{
    struct sink *s = arg;
    pthread_mutex_lock(&s->mu);
    if (s->nsec < sizeof(s->seconds) / sizeof(s->seconds[0]))
        s->seconds[s->nsec++] = t;
    /* every frame of the second came before it, with its t */
    for (size_t i = s->n - (s->frames_after_second < s->n ? s->frames_after_second : s->n);
         i < s->n; i++)
        s->wrong_second |= s->recs[i].t != t;
    s->frames_after_second = 0;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void sink_init(struct sink *s, struct sn_agent_sink *out)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    *out = (struct sn_agent_sink){on_frame, on_second, s};
}

static void sink_fini(struct sink *s)
{
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
}

/* Waits until the agent has emitted n more seconds (at most n + 3 s). Returns whether it did. */
static bool wait_seconds(struct sink *s, size_t n)
{
    struct timespec dl;
    bool ok;

    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += (time_t)n + 3;
    pthread_mutex_lock(&s->mu);
    size_t want = s->nsec + n;
    while (s->nsec < want && pthread_cond_timedwait(&s->cv, &s->mu, &dl) == 0)
        ;
    ok = s->nsec >= want;
    pthread_mutex_unlock(&s->mu);
    return ok;
}

/* Frames of id (from index from on): their count, and the sum of their getppid keys. */
static size_t frames_of(struct sink *s, const char *id, size_t from, uint64_t *getppid)
{
    size_t n = 0;
    pthread_mutex_lock(&s->mu);
    if (getppid)
        *getppid = 0;
    for (size_t i = from; i < s->n; i++)
        if (strcmp(s->recs[i].id, id) == 0) {
            n++;
            if (getppid)
                *getppid += s->recs[i].getppid;
        }
    pthread_mutex_unlock(&s->mu);
    return n;
}

static json_t *def_of(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *def_of(const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    json_t *j = json_loads(text, 0, NULL);
    if (!j)
        t_note("bad JSON in the test: %s", text);
    return j;
}

#define BY_SYSCALL                                                                                 \
    "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"eq\":[\"pid\",\"%ld\"]},"      \
    "\"decomposition\":\"syscall\"}"
#define BY_EXECNAME                                                                                \
    "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"eq\":[\"pid\",\"%ld\"]},"      \
    "\"decomposition\":\"execname\"}"

/* the gated child: a name that is not UTF-8, then 50 getppid calls */
static void fifty_getppid(void *arg)
{
    (void)arg;
    prctl(PR_SET_NAME,
          "snt\xff"
          "bad",
          0, 0, 0);
    for (int i = 0; i < 50; i++)
        syscall(SYS_getppid);
}

static void test_frames_and_disable(void)
{
    struct sink s;
    struct sn_agent_sink sk;
    struct sn_agent_opts o = {.host = "testhost"};
    struct sn_agent *a = NULL;
    struct sn_agent_stats st;
    char why[512];
    uint64_t calls;

    sink_init(&s, &sk);
    T_REQUIRE(sn_agent_open(&o, &sk, &a) == 0);
    sn_agent_stats(a, &st);
    T_REQUIRE(st.bpf);
    struct t_gated g = t_gated_start(fifty_getppid, NULL);
    T_REQUIRE(g.pid > 0);
    json_t *d1 = def_of(BY_SYSCALL, (long)g.pid), *d2 = def_of(BY_EXECNAME, (long)g.pid);
    T_EQ(sn_agent_enable(a, "calls", d1, why, sizeof(why)), 0);
    T_EQ(sn_agent_enable(a, "names", d2, why, sizeof(why)), 0);
    T_EQ(sn_agent_enable(a, "calls", d1, why, sizeof(why)), -EEXIST);
    sn_agent_stats(a, &st);
    T_EQU(st.enabled, 2);
    t_gated_release(&g);
    T_OK(wait_seconds(&s, 3));

    T_OK(frames_of(&s, "calls", 0, &calls) >= 2);
    T_EQU(calls, 50);
    pthread_mutex_lock(&s.mu);
    int64_t last = 0;
    bool escaped = false;
    for (size_t i = 0; i < s.n; i++) {
        struct rec *r = &s.recs[i];
        T_STR(r->host, "testhost");
        T_EQ(r->arity, SN_WIRE_DISCRETE);
        if (strcmp(r->id, "calls") == 0) {
            if (last)
                T_EQ(r->t, last + 1); /* one frame a second */
            last = r->t;
        } else if (strstr(r->keys, "snt\\xFFbad")) {
            escaped = true;
        }
    }
    for (size_t i = 1; i < s.nsec; i++)
        T_EQ(s.seconds[i], s.seconds[i - 1] + 1);
    pthread_mutex_unlock(&s.mu);
    T_OK(escaped); /* the child's name, its bad byte as \xFF */
    T_OK(!s.wrong_second);

    sn_agent_disable(a, "calls");
    sn_agent_disable(a, "nothing"); /* not running: nothing */
    size_t after = s.n;
    T_OK(wait_seconds(&s, 2));
    T_EQU(frames_of(&s, "calls", after, NULL), 0);
    T_OK(frames_of(&s, "names", after, NULL) >= 2);
    sn_agent_stats(a, &st);
    T_EQU(st.enabled, 1);
    T_OK(st.seconds >= 4);
    T_OK(st.frames == s.n);
    json_decref(d1);
    json_decref(d2);
    sn_agent_close(a);
    sink_fini(&s);
}

/* A child that makes 50 getppid calls at each of two gates (reads of in), telling out after
 * the first batch. */
static pid_t two_batches(int in, int out)
{
    pid_t c = fork();
    if (c == 0) {
        char b;
        for (int k = 0; k < 2; k++) {
            if (read(in, &b, 1) != 1)
                _exit(1);
            for (int i = 0; i < 50; i++)
                syscall(SYS_getppid);
            if (k == 0 && write(out, "x", 1) != 1)
                _exit(1);
        }
        _exit(0);
    }
    return c;
}

static void test_sync(void)
{
    struct sink s;
    struct sn_agent_sink sk;
    struct sn_agent_opts o = {0};
    struct sn_agent *a = NULL;
    struct sn_agent_stats st;
    char why[512], b;
    int gate[2], ack[2];
    uint64_t calls;

    sink_init(&s, &sk);
    T_REQUIRE(pipe(gate) == 0 && pipe(ack) == 0);
    T_REQUIRE(sn_agent_open(&o, &sk, &a) == 0);
    pid_t c = two_batches(gate[0], ack[1]);
    T_REQUIRE(c > 0);
    json_t *calls_def = def_of(BY_SYSCALL, (long)c),
           *cpu = def_of("{\"module\":\"cpu\",\"stat\":"
                         "\"usage\",\"decomposition\":"
                         "[\"cpumode\"]}"),
           *bad = def_of("{\"module\":\"syscall\",\"stat\":\"nope\"}");
    struct sn_agent_def one[] = {{"calls", calls_def}};
    struct sn_agent_def two[] = {{"cpu", cpu}, {"calls", calls_def}};
    struct sn_agent_def cpu_only[] = {{"cpu", cpu}};
    struct sn_agent_def broken[] = {{"cpu", cpu}, {"bad", bad}};

    T_EQ(sn_agent_sync(a, one, 1, why, sizeof(why)), 0);
    T_OK(write(gate[1], "g", 1) == 1 && read(ack[0], &b, 1) == 1); /* the first 50 */
    T_EQ(sn_agent_sync(a, two, 2, why, sizeof(why)), 0);           /* calls unchanged */
    T_OK(write(gate[1], "g", 1) == 1);                             /* the next 50 */
    waitpid(c, NULL, 0);
    T_OK(wait_seconds(&s, 2));
    T_OK(frames_of(&s, "calls", 0, &calls) >= 2);
    T_EQU(calls, 100); /* none lost: the slot and its second's counts were kept */
    T_OK(frames_of(&s, "cpu", 0, NULL) >= 1);
    sn_agent_stats(a, &st);
    T_EQU(st.enabled, 2);

    T_EQ(sn_agent_sync(a, broken, 2, why, sizeof(why)), -EINVAL);
    T_STR(why, "instrumentation 2: value \"syscall.nope\" for field \"module.stat\" is invalid: "
               "not a valid module/stat pair");
    sn_agent_stats(a, &st);
    T_EQU(st.enabled, 2); /* unchanged */

    T_EQ(sn_agent_sync(a, cpu_only, 1, why, sizeof(why)), 0);
    size_t after = s.n;
    T_OK(wait_seconds(&s, 2));
    T_EQU(frames_of(&s, "calls", after, NULL), 0);
    T_OK(frames_of(&s, "cpu", after, NULL) >= 2);
    json_decref(calls_def);
    json_decref(cpu);
    json_decref(bad);
    sn_agent_close(a);
    sink_fini(&s);
    close(gate[0]);
    close(gate[1]);
    close(ack[0]);
    close(ack[1]);
}

static void test_no_bpf(void)
{
    struct sink s;
    struct sn_agent_sink sk;
    struct sn_agent_opts o = {.no_bpf = true};
    struct sn_agent *a = NULL;
    struct sn_agent_stats st;
    char why[512];
    static const char prefix[] = "this host cannot run BPF programs: ";

    sink_init(&s, &sk);
    T_REQUIRE(sn_agent_open(&o, &sk, &a) == 0);
    sn_agent_stats(a, &st);
    T_OK(!st.bpf);
    T_OK(strncmp(sn_agent_no_bpf_reason(a), prefix, sizeof(prefix) - 1) == 0);
    json_t *cpu = def_of("{\"module\":\"cpu\",\"stat\":\"usage\",\"decomposition\":"
                         "[\"cpumode\"]}"),
           *sys = def_of("{\"module\":\"syscall\",\"stat\":\"syscalls\"}"),
           *bad = def_of("{\"module\":\"cpu\",\"stat\":\"usage\",\"decomposition\":[\"bogus\"]}");
    T_EQ(sn_agent_enable(a, "cpu", cpu, why, sizeof(why)), 0);
    T_EQ(sn_agent_enable(a, "sys", sys, why, sizeof(why)), -ENOTSUP);
    T_OK(strncmp(why, prefix, sizeof(prefix) - 1) == 0);
    T_EQ(sn_agent_enable(a, "bad", bad, why, sizeof(why)), -EINVAL);
    T_STR(why, "value \"bogus\" for field \"field\" is invalid: no such field for specified "
               "metric");
    T_OK(wait_seconds(&s, 2));
    T_OK(frames_of(&s, "cpu", 0, NULL) >= 2);
    T_EQU(frames_of(&s, "sys", 0, NULL), 0);
    pthread_mutex_lock(&s.mu);
    for (size_t i = 0; i < s.n; i++) {
        T_EQ(s.recs[i].arity, SN_WIRE_DISCRETE);
        T_OK(s.recs[i].nkeys <= 2); /* user, kernel */
    }
    pthread_mutex_unlock(&s.mu);
    json_decref(cpu);
    json_decref(sys);
    json_decref(bad);
    sn_agent_close(a);
    sink_fini(&s);
}

/* Six processes (this one's name) making system calls in the same second, by pid, with a key
 * cap of 2: at most 2 keys and "other" in a frame, over_cap counting the rest. */
static void test_key_cap(void)
{
    struct sink s;
    struct sn_agent_sink sk;
    struct sn_agent_opts o = {.key_cap = 2};
    struct sn_agent *a = NULL;
    char why[512], comm[16];

    sink_init(&s, &sk);
    T_REQUIRE(prctl(PR_GET_NAME, comm) == 0);
    T_REQUIRE(sn_agent_open(&o, &sk, &a) == 0);
    char text[256];
    snprintf(text, sizeof(text),
             "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":"
             "{\"eq\":[\"execname\",\"%s\"]},\"decomposition\":[\"pid\"]}",
             comm);
    json_t *d = json_loads(text, 0, NULL);
    T_EQ(sn_agent_enable(a, "bypid", d, why, sizeof(why)), 0);
    T_OK(t_forked_getppid(6, 200) == 0);
    T_OK(wait_seconds(&s, 2));
    uint64_t total = 0, over = 0;
    bool other = false;
    pthread_mutex_lock(&s.mu);
    for (size_t i = 0; i < s.n; i++) {
        t_note("t %lld: %llu events, over_cap %llu, keys%s", (long long)s.recs[i].t,
               (unsigned long long)s.recs[i].total, (unsigned long long)s.recs[i].over_cap,
               s.recs[i].keys);
        T_OK(s.recs[i].nkeys <= 3); /* 2 and "other" */
        total += s.recs[i].total;
        over += s.recs[i].over_cap;
        other |= s.recs[i].other;
    }
    pthread_mutex_unlock(&s.mu);
    T_OK(total >= 1200);
    T_OK(over > 0);
    T_OK(other);
    json_decref(d);
    sn_agent_close(a);
    sink_fini(&s);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_unique_comm();
    t_run("an agent without BPF emits cpu.usage and refuses traced metrics", test_no_bpf);
    if (geteuid() != 0) {
        t_note("not root: the kernel cases are skipped");
        return t_done();
    }
    t_run("frames of a child's system calls, one a second; disable stops them",
          test_frames_and_disable);
    t_run("a sync keeps unchanged instrumentations running and refuses a bad set", test_sync);
    t_run("the key cap reaches the kernel", test_key_cap);
    return t_done();
}
