/*
 * `sonde agent --nats` end to end ($SN_SONDE or argv[1] is the sonde binary; needs root, as CI
 * runs): a real nats-server (tests/support/nats.h), the real agent processes, and this test as
 * the fleet's definitions writer (cnats on the link a node would have, fleet/link.h) and reader of
 * the frames (a core subscription, and the stream itself through an ordered consumer).
 *
 *   - a definition put into sonde_defs runs within 1 s (the agent's heartbeat says so) and its
 *     frames arrive on sonde.frames.<inst>.<host> with the message id <host>.<inst>.<t>; a
 *     delete stops it within 1 s and the kernel's links to the agent's programs are as before;
 *   - two agents (--hostname a, b), each with --cgroup over its own cgroup in which children
 *     make known numbers of getppid calls, report exactly those numbers each;
 *   - an agent started after the definitions, and one restarted, run them all within 2 s;
 *   - the broker killed for 10 s and started again: every second of the outage reaches the
 *     stream afterwards, none twice;
 *   - with --buffer-seconds 3 the same outage drops frames, counted in the heartbeat: exactly
 *     the seconds missing from the stream;
 *   - in a three-server cluster, each server killed in turn: no second lost, none twice;
 *   - an agent started while its broker is down connects when it comes, creates the stream
 *     and buckets (no node has yet) and runs what is put; SIGUSR1 dumps its state; usage
 *     errors exit 2.
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fleet/link.h"
#include "fleet/names.h"
#include "fleet_hosts.h"
#include "kernel_view.h"
#include "nats.h"
#include "t.h"
#include "wire/frame.h"

static const char *sonde;

/* A figure for the log ("# ...") that is also the note of the next failure. */
#define NOTE(...)                                                                                  \
    do {                                                                                           \
        printf("# " __VA_ARGS__);                                                                  \
        printf("\n");                                                                              \
        fflush(stdout);                                                                            \
        t_note(__VA_ARGS__);                                                                       \
    } while (0)

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- the fleet: one server, the buckets and stream made as a node makes them ---- */

static struct th_nats nats;
static struct th_fleet hosts; /* the agents' hosts (support/fleet_hosts.h) */
static struct sn_link *link_;
static kvStore *defs, *members;

static int fleet_up_n(int servers)
{
    struct sn_link_opts lo = {0};
    char why[256] = "";

    memset(&nats, 0, sizeof(nats));
    if (th_nats_start(&nats, servers, 0) != 0)
        return -1;
    lo.urls = strdup(th_nats_url(&nats));
    int rc = lo.urls ? sn_link_open(&lo, NULL, 5000, &link_, why, sizeof(why)) : -ENOMEM;
    if (rc == 0)
        rc = sn_link_ensure(link_, 10000, why, sizeof(why));
    sn_link_opts_fini(&lo);
    if (rc < 0) {
        NOTE("link: %s (%d)", why, rc);
        return -1;
    }
    defs = sn_link_kv(link_, SN_FLEET_KV_DEFS);
    members = sn_link_kv(link_, SN_FLEET_KV_MEMBERS);
    return defs && members ? 0 : -1;
}

static int fleet_up(void)
{
    return fleet_up_n(1);
}

static void fleet_down(void)
{
    th_fleet_free(&hosts); /* agents still running, the hosts' cgroups */
    sn_link_close(link_);
    link_ = NULL;
    defs = members = NULL;
    th_nats_free(&nats);
}

/* Puts instrumentation inst with the agent definition agent_json (as a node writes it). */
static int put_def(const char *inst, const char *agent_json)
{
    char key[SN_FLEET_SUBJECT_MAX], val[2048];
    uint64_t rev;
    if (sn_fleet_def_key(inst, key, sizeof(key)) < 0)
        return -1;
    snprintf(val, sizeof(val), "{\"v\":1,\"key\":\"%s\",\"def\":{},\"agent\":%s}", inst,
             agent_json);
    return kvStore_PutString(&rev, defs, key, val) == NATS_OK ? 0 : -1;
}

static int del_def(const char *inst)
{
    char key[SN_FLEET_SUBJECT_MAX];
    if (sn_fleet_def_key(inst, key, sizeof(key)) < 0)
        return -1;
    return kvStore_Delete(defs, key) == NATS_OK ? 0 : -1;
}

/* The heartbeat of host (NULL when there is none). */
static json_t *heartbeat(const char *host)
{
    char key[SN_FLEET_SUBJECT_MAX];
    kvEntry *e = NULL;
    json_t *j = NULL;
    if (sn_fleet_agent_key(host, key, sizeof(key)) < 0)
        return NULL;
    if (kvStore_Get(&e, members, key) == NATS_OK && e)
        j = json_loadb(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), 0, NULL);
    kvEntry_Destroy(e);
    return j;
}

/* Whether host's heartbeat says inst runs (rc 0); with inst NULL, whether it has one. */
static bool hb_running(const char *host, const char *inst)
{
    json_t *j = heartbeat(host);
    json_t *st = inst ? json_object_get(json_object_get(j, "running"), inst) : j;
    bool ok = inst ? st && json_integer_value(json_object_get(st, "rc")) == 0 &&
                         json_is_integer(json_object_get(st, "rc"))
                   : st != NULL;
    json_decref(j);
    return ok;
}

/* Milliseconds from `from` until hb_running(host, inst) == want (polled every 10 ms), or -1
 * after limit_ms. */
static int64_t wait_hb(const char *host, const char *inst, bool want, int64_t from, int limit_ms)
{
    for (int i = 0; i < limit_ms / 10 + 1; i++) {
        if (hb_running(host, inst) == want)
            return now_ms() - from;
        sleep_ms(10);
    }
    return -1;
}

/* A heartbeat counter of host (-1: none). */
static int64_t hb_counter(const char *host, const char *name)
{
    json_t *j = heartbeat(host);
    json_t *v = json_object_get(j, name);
    int64_t n = json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
    json_decref(j);
    return n;
}

/* ---- agents: real `sonde agent --nats` processes (support/fleet_hosts.h) ---- */

struct agent {
    int i; /* its host in hosts */
    pid_t pid;
    char host[64];
    char log[384];
};

/* Starts host's agent: in a cgroup of its own (contained: --cgroup, its workloads through
 * th_host_calls()) or seeing the whole machine; the same host again after a stop. */
static int agent_start(struct agent *a, const char *host, bool contained, const char *extra_opt,
                       const char *extra_val)
{
    const char *extra[] = {extra_opt, extra_val, NULL};
    if (!hosts.live && th_fleet_init(&hosts, sonde, th_nats_url(&nats)) != 0)
        return -1;
    a->i = -1;
    for (int i = 0; i < hosts.nh; i++)
        if (strcmp(hosts.h[i].name, host) == 0)
            a->i = i;
    if (a->i < 0)
        a->i = contained ? th_host_add(&hosts, host) : th_host_add_uncontained(&hosts, host);
    if (a->i < 0 || th_host_agent_start(&hosts, a->i, extra_opt ? extra : NULL) != 0)
        return -1;
    a->pid = hosts.h[a->i].agent;
    snprintf(a->host, sizeof(a->host), "%s", host);
    snprintf(a->log, sizeof(a->log), "%s", hosts.h[a->i].log);
    return 0;
}

/* Stops the agent with sig (SIGTERM, SIGKILL), waiting up to 10 s (then SIGKILL). Returns
 * its exit status as waitpid gives it, or -1. */
static int agent_stop(struct agent *a, int sig)
{
    if (a->pid <= 0)
        return -1;
    int status = th_host_agent_stop(&hosts, a->i, sig);
    a->pid = 0;
    return status;
}

/* The ids of the BPF programs process pid holds (its fds' "prog_id:" in /proc). */
static int prog_ids(pid_t pid, uint32_t *ids, int max)
{
    char dir[64], path[320], line[256];
    int n = 0;
    snprintf(dir, sizeof(dir), "/proc/%d/fdinfo", (int)pid);
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) && n < max) {
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "r");
        while (f && fgets(line, sizeof(line), f)) {
            unsigned id;
            if (sscanf(line, "prog_id: %u", &id) == 1 && n < max) {
                bool seen = false;
                for (int i = 0; i < n && !seen; i++)
                    seen = ids[i] == id;
                if (!seen)
                    ids[n++] = id;
            }
        }
        if (f)
            fclose(f);
    }
    if (d)
        closedir(d);
    return n;
}

/* The kernel's links to the programs of process pid. */
static int links_of(pid_t pid)
{
    static uint32_t ids[4096];
    int n = prog_ids(pid, ids, 4096);
    return t_kernel_links_to(ids, n);
}

/* ---- frames off the bus ---- */

struct seen {
    char host[64], inst[96];
    int64_t t;
    uint64_t total;
    int count;
};

struct frames {
    struct seen *v;
    size_t n, cap;
    int bad; /* frames whose subject, id or payload disagree */
};

static void frames_free(struct frames *fs)
{
    free(fs->v);
    memset(fs, 0, sizeof(*fs));
}

/* Adds (or counts again) the frame in m; checks subject and message id against it. */
static void frames_add(struct frames *fs, natsMsg *m)
{
    struct sn_wire_frame f;
    char subj[SN_FLEET_SUBJECT_MAX], id[SN_FLEET_SUBJECT_MAX];
    const char *hid = NULL;

    if (sn_wire_frame_decode(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &f) != 0) {
        fs->bad++;
        return;
    }
    natsMsgHeader_Get(m, "Nats-Msg-Id", &hid);
    if (sn_fleet_frame_subject(f.id, f.host, subj, sizeof(subj)) < 0 ||
        strcmp(subj, natsMsg_GetSubject(m)) != 0 ||
        sn_fleet_msg_id(f.host, f.id, f.t, id, sizeof(id)) < 0 || !hid || strcmp(hid, id) != 0) {
        if (fs->bad++ < 3)
            NOTE("frame %s/%s/%lld on %s with id %s", f.host, f.id, (long long)f.t,
                 natsMsg_GetSubject(m), hid ? hid : "(none)");
    }
    for (size_t i = 0; i < fs->n; i++) {
        struct seen *s = &fs->v[i];
        if (s->t == f.t && strcmp(s->host, f.host) == 0 && strcmp(s->inst, f.id) == 0) {
            s->count++;
            sn_wire_frame_fini(&f);
            return;
        }
    }
    if (fs->n == fs->cap) {
        size_t cap = fs->cap ? fs->cap * 2 : 256;
        struct seen *nv = realloc(fs->v, cap * sizeof(*nv));
        if (!nv) {
            sn_wire_frame_fini(&f);
            return;
        }
        fs->v = nv;
        fs->cap = cap;
    }
    struct seen *s = &fs->v[fs->n++];
    snprintf(s->host, sizeof(s->host), "%s", f.host);
    snprintf(s->inst, sizeof(s->inst), "%s", f.id);
    s->t = f.t;
    s->total = f.total;
    s->count = 1;
    sn_wire_frame_fini(&f);
}

/* Takes what sub delivers for ms milliseconds (at most 100000 messages). */
static void drain(natsSubscription *sub, struct frames *fs, int ms)
{
    int64_t end = now_ms() + ms;
    for (int i = 0; i < 100000; i++) {
        int64_t left = end - now_ms();
        natsMsg *m = NULL;
        if (left <= 0 || natsSubscription_NextMsg(&m, sub, left) != NATS_OK)
            break;
        frames_add(fs, m);
        natsMsg_Destroy(m);
    }
}

/* Reads the whole stream (an ordered consumer from the first message), until 1.5 s pass with
 * nothing new. */
static int read_stream(struct frames *fs)
{
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverAll;
    if (js_SubscribeSync(&sub, sn_link_js(link_), SN_FLEET_FRAMES_ALL, NULL, &so, NULL) != NATS_OK)
        return -1;
    for (int i = 0; i < 1000000; i++) {
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, sub, 1500) != NATS_OK)
            break;
        frames_add(fs, m);
        natsMsg_Destroy(m);
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    return 0;
}

static natsSubscription *subscribe(const char *subject)
{
    natsSubscription *sub = NULL;
    if (natsConnection_SubscribeSync(&sub, sn_link_conn(link_), subject) != NATS_OK)
        return NULL;
    natsConnection_Flush(sn_link_conn(link_));
    return sub;
}

static void unsubscribe(natsSubscription *sub)
{
    if (!sub)
        return;
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
}

/* ---- the cases ---- */

#define SYSCALLS_BY_NAME                                                                           \
    "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{},\"decomposition\":"            \
    "[\"syscall\"]}"
#define GETPPIDS                                                                                   \
    "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"eq\":[\"syscall\","            \
    "\"getppid\"]},\"decomposition\":[]}"

static void test_enable_frames_delete(void)
{
    struct agent a = {0};
    T_REQUIRE(fleet_up() == 0);
    T_REQUIRE(agent_start(&a, "a", false, NULL, NULL) == 0);
    int64_t t0 = now_ms();
    int64_t up = wait_hb("a", NULL, true, t0, 15000);
    NOTE("agent's first heartbeat %lld ms after its start", (long long)up);
    T_REQUIRE(up >= 0);
    int links0 = links_of(a.pid);
    NOTE("links to the agent's programs before: %d", links0);

    natsSubscription *sub = subscribe("sonde.frames.>");
    T_REQUIRE(sub != NULL);
    t0 = now_ms();
    T_REQUIRE(put_def("7", SYSCALLS_BY_NAME) == 0);
    int64_t on = wait_hb("a", "7", true, t0, 3000);
    NOTE("7 running %lld ms after the put", (long long)on);
    T_OK(on >= 0 && on <= 1000);
    T_OK(links_of(a.pid) > links0);
    /* a tenant's, with a dot in the tenant's name: its subject token is "ac=2Eme/3" */
    t0 = now_ms();
    T_REQUIRE(put_def("ac.me/3", SYSCALLS_BY_NAME) == 0);
    on = wait_hb("a", "ac.me/3", true, t0, 3000);
    T_OK(on >= 0 && on <= 1000);

    struct frames fs = {0};
    drain(sub, &fs, 2500);
    unsubscribe(sub);
    int n7 = 0, n3 = 0;
    for (size_t i = 0; i < fs.n; i++) {
        n7 += strcmp(fs.v[i].inst, "7") == 0 && strcmp(fs.v[i].host, "a") == 0;
        n3 += strcmp(fs.v[i].inst, "ac.me/3") == 0 && strcmp(fs.v[i].host, "a") == 0;
        T_EQ(fs.v[i].count, 1);
    }
    NOTE("frames in 2.5 s: %d of 7, %d of ac.me/3", n7, n3);
    T_OK(n7 >= 2 && n3 >= 2);
    T_EQ(fs.bad, 0);
    frames_free(&fs);

    /* a changed definition runs changed; then both deleted: detached within 1 s */
    T_REQUIRE(put_def("7", GETPPIDS) == 0);
    sleep_ms(300);
    T_OK(hb_running("a", "7"));
    t0 = now_ms();
    T_REQUIRE(del_def("7") == 0 && del_def("ac.me/3") == 0);
    int64_t off = wait_hb("a", "7", false, t0, 3000);
    int64_t off3 = wait_hb("a", "ac.me/3", false, t0, 3000);
    NOTE("stopped %lld ms (7), %lld ms (ac.me/3) after the deletes", (long long)off,
         (long long)off3);
    T_OK(off >= 0 && off <= 1000 && off3 >= 0 && off3 <= 1000);
    int links1 = -1;
    for (int i = 0; i < 100 && (links1 = links_of(a.pid)) != links0; i++)
        sleep_ms(10);
    NOTE("links after the deletes: %d (before %d)", links1, links0);
    T_EQ(links1, links0);
    T_EQ(agent_stop(&a, SIGTERM), 0);
    fleet_down();
}

static void test_cgroups_per_host(void)
{
    struct agent a = {0}, b = {0};

    NOTE("cgroup v2 mounted? (run as root)");
    T_REQUIRE(fleet_up() == 0);
    T_REQUIRE(agent_start(&a, "a", true, NULL, NULL) == 0);
    T_REQUIRE(agent_start(&b, "b", true, NULL, NULL) == 0);
    T_REQUIRE(th_host_subgroup(&hosts, b.i, "inner") == 0);
    T_REQUIRE(put_def("5", GETPPIDS) == 0);
    int64_t t0 = now_ms();
    T_REQUIRE(wait_hb("a", "5", true, t0, 15000) >= 0);
    T_REQUIRE(wait_hb("b", "5", true, t0, 15000) >= 0);
    json_t *hb = heartbeat("b");
    T_STR(json_string_value(json_object_get(hb, "cgroup")), hosts.h[b.i].cgroup);
    json_decref(hb);

    natsSubscription *sub = subscribe("sonde.frames.5.>");
    T_REQUIRE(sub != NULL);
    /* b's workload in a descendant of its cgroup: descendants count too */
    T_EQ(th_host_calls(&hosts, a.i, NULL, 1500), 0);
    T_EQ(th_host_calls(&hosts, b.i, "inner", 2500), 0);
    struct frames fs = {0};
    drain(sub, &fs, 3500); /* the seconds of the calls, and two more */
    unsubscribe(sub);
    uint64_t sa = 0, sb = 0;
    for (size_t i = 0; i < fs.n; i++) {
        sa += strcmp(fs.v[i].host, "a") == 0 ? fs.v[i].total : 0;
        sb += strcmp(fs.v[i].host, "b") == 0 ? fs.v[i].total : 0;
    }
    NOTE("getppid calls: a %llu, b %llu", (unsigned long long)sa, (unsigned long long)sb);
    T_EQU(sa, 1500);
    T_EQU(sb, 2500);
    T_EQ(fs.bad, 0);
    frames_free(&fs);
    T_EQ(agent_stop(&a, SIGTERM), 0);
    T_EQ(agent_stop(&b, SIGTERM), 0);
    fleet_down();
}

static void test_late_start_and_restart(void)
{
    struct agent a = {0};
    T_REQUIRE(fleet_up() == 0);
    T_REQUIRE(put_def("1", SYSCALLS_BY_NAME) == 0);
    T_REQUIRE(put_def("2", GETPPIDS) == 0);
    T_REQUIRE(put_def("acme/3", GETPPIDS) == 0);
    T_REQUIRE(del_def("2") == 0); /* a deleted one stays deleted */
    int64_t t0 = now_ms();
    T_REQUIRE(agent_start(&a, "late", false, NULL, NULL) == 0);
    int64_t c1 = wait_hb("late", "1", true, t0, 10000);
    int64_t c3 = wait_hb("late", "acme/3", true, t0, 10000);
    int64_t ready = hb_counter("late", "started_ms") - t0;
    NOTE("late start: running all %lld ms after the start (%lld ms after its sources loaded)",
         (long long)(c1 > c3 ? c1 : c3), (long long)((c1 > c3 ? c1 : c3) - ready));
    T_OK(c1 >= 0 && c3 >= 0);
    T_OK(c1 - ready <= 2000 && c3 - ready <= 2000);
    T_OK(!hb_running("late", "2"));

    /* killed, a definition changes meanwhile, started again */
    T_OK(agent_stop(&a, SIGKILL) != -1);
    T_REQUIRE(put_def("2", GETPPIDS) == 0);
    T_REQUIRE(del_def("1") == 0);
    t0 = now_ms();
    T_REQUIRE(agent_start(&a, "late", false, NULL, NULL) == 0);
    int64_t c2 = wait_hb("late", "2", true, t0, 10000);
    int64_t g1 = wait_hb("late", "1", false, now_ms(), 3000);
    ready = hb_counter("late", "started_ms") - t0;
    NOTE("restart: 2 running %lld ms after the start (%lld ms after its sources loaded); 1 gone",
         (long long)c2, (long long)(c2 - ready));
    T_OK(c2 >= 0 && c2 - ready <= 2000 && g1 >= 0);
    T_OK(hb_running("late", "acme/3"));
    T_EQ(agent_stop(&a, SIGTERM), 0);
    fleet_down();
}

/* The broker down for outage_s: returns the held frames' fate through the stream. */
static void outage(const char *host, const char *extra_opt, const char *extra_val, int outage_s,
                   int64_t *first_t, int64_t *down_t, int64_t *back_t, struct frames *fs,
                   int64_t *dropped)
{
    struct agent a = {0};
    T_REQUIRE(agent_start(&a, host, false, extra_opt, extra_val) == 0);
    T_REQUIRE(put_def("9", GETPPIDS) == 0);
    T_REQUIRE(wait_hb(host, "9", true, now_ms(), 15000) >= 0);
    *first_t = now_ms() / 1000;
    sleep_ms(2500);
    *down_t = now_ms() / 1000;
    T_REQUIRE(th_nats_kill(&nats, 0, SIGKILL) == 0);
    sleep_ms(outage_s * 1000);
    T_REQUIRE(th_nats_restart(&nats, 0) == 0);
    *back_t = now_ms() / 1000;
    /* the agent reconnects (250 ms), resends what it held; its heartbeat says when done */
    int64_t t0 = now_ms();
    bool drained = false;
    for (int i = 0; i < 300 && !drained; i++) {
        sleep_ms(50);
        json_t *hb = heartbeat(host);
        drained = hb && json_integer_value(json_object_get(hb, "buffered")) <= 2 &&
                  json_integer_value(json_object_get(hb, "last_frame")) >= *back_t;
        json_decref(hb);
    }
    NOTE("outage of %d s: the agent had sent what it held %lld ms after the restart", outage_s,
         (long long)(now_ms() - t0));
    T_OK(drained);
    sleep_ms(2500); /* a heartbeat with the final counters */
    *dropped = hb_counter(host, "dropped");
    T_EQ(agent_stop(&a, SIGTERM), 0);
    T_REQUIRE(read_stream(fs) == 0);
}

static void test_broker_outage_loses_nothing(void)
{
    struct frames fs = {0};
    int64_t first = 0, down = 0, back = 0, dropped = -1;
    T_REQUIRE(fleet_up() == 0);
    outage("o", NULL, NULL, 10, &first, &down, &back, &fs, &dropped);
    int missing = 0, twice = 0, during = 0;
    for (int64_t t = first; t <= back + 1; t++) {
        int c = 0;
        for (size_t i = 0; i < fs.n; i++)
            c += strcmp(fs.v[i].host, "o") == 0 && strcmp(fs.v[i].inst, "9") == 0 && fs.v[i].t == t
                     ? fs.v[i].count
                     : 0;
        missing += c == 0;
        during += c == 1 && t >= down && t < back;
        if (missing + twice < 5 && c != 1)
            NOTE("second %lld: %d frame(s)", (long long)t, c);
    }
    for (size_t i = 0; i < fs.n; i++)
        twice += fs.v[i].count > 1;
    NOTE("seconds %lld..%lld (down %lld..%lld): %d missing, %d twice, %d of the outage",
         (long long)first, (long long)back + 1, (long long)down, (long long)back, missing, twice,
         during);
    T_EQ(missing, 0);
    T_EQ(twice, 0);
    T_OK(during >= 9);
    T_EQ(dropped, 0);
    T_EQ(fs.bad, 0);
    frames_free(&fs);
    fleet_down();
}

static void test_buffer_cap_drops_counted(void)
{
    struct frames fs = {0};
    int64_t first = 0, down = 0, back = 0, dropped = -1;
    T_REQUIRE(fleet_up() == 0);
    outage("d", "--buffer-seconds", "3", 8, &first, &down, &back, &fs, &dropped);
    int64_t lo = INT64_MAX, hi = 0, n = 0;
    for (size_t i = 0; i < fs.n; i++) {
        if (strcmp(fs.v[i].host, "d") != 0 || strcmp(fs.v[i].inst, "9") != 0)
            continue;
        lo = fs.v[i].t < lo ? fs.v[i].t : lo;
        hi = fs.v[i].t > hi ? fs.v[i].t : hi;
        n++;
        T_EQ(fs.v[i].count, 1);
    }
    int64_t missing = hi >= lo ? hi - lo + 1 - n : -1;
    NOTE("frames %lld..%lld: %lld missing; the heartbeat says %lld dropped", (long long)lo,
         (long long)hi, (long long)missing, (long long)dropped);
    T_OK(dropped >= 3);
    T_EQ(missing, dropped);
    frames_free(&fs);
    fleet_down();
}

/* A three-server JetStream cluster (replicas 3): each server killed (-9) in turn for 3 s, the
 * agent's own among them: no second lost, none counted twice. */
static void test_cluster_server_killed(void)
{
    struct agent a = {0};
    struct frames fs = {0};
    T_REQUIRE(fleet_up_n(3) == 0);
    T_REQUIRE(agent_start(&a, "c", false, NULL, NULL) == 0);
    T_REQUIRE(put_def("8", GETPPIDS) == 0);
    T_REQUIRE(wait_hb("c", "8", true, now_ms(), 15000) >= 0);
    int64_t first = now_ms() / 1000;
    sleep_ms(2500);
    int64_t down = now_ms() / 1000;
    for (int i = 0; i < 3; i++) { /* each server once, one at a time: one is the agent's */
        T_REQUIRE(th_nats_kill(&nats, i, SIGKILL) == 0);
        sleep_ms(3000);
        T_REQUIRE(th_nats_restart(&nats, i) == 0);
        sleep_ms(1000);
    }
    int64_t back = now_ms() / 1000;
    bool drained = false;
    for (int i = 0; i < 300 && !drained; i++) {
        sleep_ms(50);
        json_t *hb = heartbeat("c");
        drained = hb && json_integer_value(json_object_get(hb, "buffered")) <= 2 &&
                  json_integer_value(json_object_get(hb, "last_frame")) >= back;
        json_decref(hb);
    }
    T_OK(drained);
    T_EQ(agent_stop(&a, SIGTERM), 0);
    T_REQUIRE(read_stream(&fs) == 0);
    int missing = 0, twice = 0;
    for (int64_t t = first; t <= back; t++) {
        int c = 0;
        for (size_t i = 0; i < fs.n; i++)
            c += strcmp(fs.v[i].host, "c") == 0 && fs.v[i].t == t ? fs.v[i].count : 0;
        missing += c == 0;
        twice += c > 1;
    }
    NOTE("cluster: seconds %lld..%lld, servers killed from %lld: %d missing, %d twice",
         (long long)first, (long long)back, (long long)down, missing, twice);
    T_EQ(missing, 0);
    T_EQ(twice, 0);
    T_EQ(fs.bad, 0);
    frames_free(&fs);
    fleet_down();
}

/* The agent before its broker: started while the (fresh) server is down, it connects when the
 * server comes, creates the stream and buckets itself (no node has yet), and runs what is put;
 * SIGUSR1 writes its state to its log. */
static void test_agent_before_broker(void)
{
    struct agent a = {0};
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    kvStore *kv = NULL;

    memset(&nats, 0, sizeof(nats));
    T_REQUIRE(th_nats_start(&nats, 1, 0) == 0);
    T_REQUIRE(th_nats_kill(&nats, 0, SIGKILL) == 0);
    T_REQUIRE(agent_start(&a, "early", false, NULL, NULL) == 0);
    sleep_ms(1500);
    T_OK(kill(a.pid, 0) == 0); /* still there, trying */
    T_REQUIRE(th_nats_restart(&nats, 0) == 0);
    int64_t t0 = now_ms();
    T_REQUIRE(natsConnection_ConnectTo(&nc, th_nats_url(&nats)) == NATS_OK);
    T_REQUIRE(natsConnection_JetStream(&js, nc, NULL) == NATS_OK);
    for (int i = 0; i < 200 && js_KeyValue(&kv, js, SN_FLEET_KV_MEMBERS) != NATS_OK; i++)
        sleep_ms(50);
    NOTE("the agent made the buckets %lld ms after the server came", (long long)(now_ms() - t0));
    T_OK(kv != NULL);
    kvStore_Destroy(kv);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    /* from here as a node would: the link finds what the agent created */
    struct sn_link_opts lo = {0};
    char why[256] = "";
    lo.urls = strdup(th_nats_url(&nats));
    T_REQUIRE(sn_link_open(&lo, NULL, 5000, &link_, why, sizeof(why)) == 0);
    sn_link_opts_fini(&lo);
    T_REQUIRE(sn_link_ensure(link_, 10000, why, sizeof(why)) == 0);
    defs = sn_link_kv(link_, SN_FLEET_KV_DEFS);
    members = sn_link_kv(link_, SN_FLEET_KV_MEMBERS);
    T_REQUIRE(defs && members);
    t0 = now_ms();
    T_REQUIRE(put_def("4", GETPPIDS) == 0);
    int64_t on = wait_hb("early", "4", true, t0, 3000);
    NOTE("4 running %lld ms after the put", (long long)on);
    T_OK(on >= 0 && on <= 1000);
    int64_t acked = 0;
    for (int i = 0; i < 50 && (acked = hb_counter("early", "acked")) < 1; i++)
        sleep_ms(100); /* frames of the next seconds, in a heartbeat of the next 2 s */
    T_OK(acked >= 1);

    T_OK(kill(a.pid, SIGUSR1) == 0);
    char text[8192] = "";
    bool dumped = false;
    for (int i = 0; i < 100 && !dumped; i++) {
        sleep_ms(20);
        FILE *f = fopen(a.log, "r");
        size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
        text[n] = 0;
        if (f)
            fclose(f);
        dumped = strstr(text, "sub=dump") && strstr(text, "4: running") && strstr(text, "outbox: ");
    }
    T_OK(dumped);
    T_EQ(agent_stop(&a, SIGTERM), 0);
    fleet_down();
}

/* Usage errors: exit 2 with the reason, before anything starts. */
static void test_usage(void)
{
    static const char *const bad[][2] = {
        {"--nats nats://127.0.0.1:1 --inst /dev/null --stdout", "one mode or the other"},
        {"--nats nats://127.0.0.1:1 --hostname 'a..b'", "--hostname"},
        {"--nats nats://127.0.0.1:1 --cgroup relative", "absolute"},
        {"--nats nats://127.0.0.1:1 --buffer-seconds 0", "--buffer-seconds"},
        {"--inst /dev/null --stdout --zone z", "need --nats"},
        {"--nats-user u --inst /dev/null --stdout", "need --nats"},
        {"--nats nats://127.0.0.1:1 --nats-user u", "password"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char cmd[512], out[256], err[1024];
        snprintf(cmd, sizeof(cmd), "%s agent %s", sonde, bad[i][0]);
        int rc = t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err));
        NOTE("%s: %d %s", bad[i][0], rc, err);
        T_EQ(rc, 2);
        T_OK(strstr(err, bad[i][1]) != NULL);
    }
}

int main(int argc, char **argv)
{
    if (!(sonde = th_sonde_binary(&argc, &argv)))
        return 2;
    t_init(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    t_run("usage", test_usage);
    t_run("enable_frames_delete", test_enable_frames_delete);
    t_run("cgroups_per_host", test_cgroups_per_host);
    t_run("late_start_and_restart", test_late_start_and_restart);
    t_run("agent_before_broker", test_agent_before_broker);
    t_run("broker_outage_loses_nothing", test_broker_outage_loses_nothing);
    t_run("buffer_cap_drops_counted", test_buffer_cap_drops_counted);
    t_run("cluster_server_killed", test_cluster_server_killed);
    return t_done();
}
