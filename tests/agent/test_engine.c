/*
 * The user-space engine on the real kernel: enabling an instrumentation attaches the probe
 * (seen from the kernel's link table), a collection drains exactly the events of the second
 * into cells, the key cap sends extra keys to "other" and counts them (keys, not their
 * buckets: a key spread over many latency buckets is one key), and disabling the last
 * instrumentation detaches (the kernel no longer has a link to the programs).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "agent/engine.h"
#include "agent/predicate.h"
#include "core/hist.h"
#include "kernel_view.h"
#include "workload.h"
#include "t.h"

static struct sn_engine *eng;
static char comm[16];

static const struct sn_field_def fields[] = {
    {"execname", SN_FIELD_DISCRETE, SN_SC_EXECNAME, NULL, NULL},
    {"syscall", SN_FIELD_NUMERIC, SN_SC_SYSCALL, NULL, NULL},
    {"pid", SN_FIELD_NUMERIC, SN_SC_PID, NULL, NULL},
};

static struct sn_slot_spec spec_for(const char *pred_json, uint8_t key, uint8_t num, uint32_t cap)
{
    struct sn_slot_spec sp = {
        .metric = SN_METRIC_SYSCALLS, .key_field = key, .num_field = num, .key_cap = cap};
    json_t *j = json_loads(pred_json, 0, NULL);
    char why[256];
    if (!j || sn_pred_compile(j, fields, 3, &sp.pred, why, sizeof(why)) != 0)
        sp.pred.n = 0;
    json_decref(j);
    sp.needs = 1u << SN_SC_EXECNAME | 1u << SN_SC_SYSCALL | 1u << SN_SC_PID;
    return sp;
}

struct tally {
    uint64_t total, in2ms, other, keys;
    int slot;
};

static void on_cell(const struct sn_cell *c, void *arg)
{
    struct tally *t = arg;
    if (c->slot != t->slot)
        return;
    t->total += c->count;
    if (c->ord == sn_bucket_ord(sn_bucket_make(20, 6)))
        t->in2ms += c->count;
    if (c->other)
        t->other += c->count;
    else
        t->keys++;
}

static void test_open(void)
{
    int rc = sn_engine_open(&eng);
    t_note("%s (run as root)", strerror(-rc));
    T_REQUIRE(rc == 0);
    T_OK(prctl(PR_GET_NAME, comm) == 0);
    T_OK(!sn_engine_attached(eng, SN_METRIC_SYSCALLS));
    uint32_t ids[4];
    int n = sn_engine_prog_ids(eng, SN_METRIC_SYSCALLS, ids, 4);
    T_EQ(n, 2);
    T_EQ(t_kernel_links_to(ids, n), 0); /* loaded, not attached: no cost to anyone */
}

static void test_enable_collect_disable(void)
{
    char pred[256];
    struct tally t = {0};
    uint32_t ids[4];
    int n;

    T_REQUIRE(eng != NULL);
    snprintf(pred, sizeof(pred),
             "{\"and\":[{\"eq\":[\"execname\",\"%s\"]},{\"eq\":[\"syscall\",%d]}]}", comm,
             (int)SYS_clock_nanosleep);
    struct sn_slot_spec sp = spec_for(pred, SN_NO_FIELD, SN_SC_LATENCY, 100);
    T_REQUIRE(sp.pred.n > 0);
    t.slot = sn_engine_enable(eng, &sp);
    T_REQUIRE(t.slot >= 0);
    T_OK(sn_engine_attached(eng, SN_METRIC_SYSCALLS));
    n = sn_engine_prog_ids(eng, SN_METRIC_SYSCALLS, ids, 4);
    T_EQ(t_kernel_links_to(ids, n), 2);

    T_OK(t_realtime() == 0);
    uint64_t quick = 0;
    sn_engine_collect(eng, NULL, NULL, NULL); /* start a clean second */
    for (int i = 0; i < 10; i++)
        quick += t_timed_sleep(2000000) < 2100000;
    T_OK(sn_engine_collect(eng, on_cell, &t, NULL) >= 1);
    t_note("in 2 ms bucket %llu of 10; %llu seen < 2.1 ms", (unsigned long long)t.in2ms,
           (unsigned long long)quick);
    T_EQU(t.total, 10);
    T_OK(t.in2ms >= quick); /* see tests/bpf/test_bpf_syslat.c */

    T_EQ(sn_engine_disable(eng, t.slot), 0);
    T_EQ(sn_engine_disable(eng, t.slot), -ENOENT);
    T_OK(!sn_engine_attached(eng, SN_METRIC_SYSCALLS));
    T_EQ(t_kernel_links_to(ids, n), 0);
}

static void test_key_cap(void)
{
    char pred[256];
    struct tally t = {0};
    struct sn_slot_drops drops[SN_MAX_SLOTS];
    pid_t child;

    T_REQUIRE(eng != NULL);
    snprintf(pred, sizeof(pred),
             "{\"and\":[{\"eq\":[\"execname\",\"%s\"]},{\"eq\":[\"syscall\",%d]}]}", comm,
             (int)SYS_getppid);
    struct sn_slot_spec sp = spec_for(pred, SN_SC_PID, SN_NO_FIELD, 1);
    t.slot = sn_engine_enable(eng, &sp);
    T_REQUIRE(t.slot >= 0);
    sn_engine_collect(eng, NULL, NULL, NULL);
    for (int i = 0; i < 5; i++)
        syscall(SYS_getppid);
    child = fork();
    if (child == 0) {
        for (int i = 0; i < 5; i++)
            syscall(SYS_getppid);
        _exit(0);
    }
    T_REQUIRE(child > 0);
    waitpid(child, NULL, 0);
    memset(drops, 0, sizeof(drops));
    sn_engine_collect(eng, on_cell, &t, drops);
    T_EQU(t.total, 10);
    T_EQU(t.keys, 1);  /* the cap: one key per second */
    T_EQU(t.other, 5); /* the other process's calls, counted, not lost */
    T_EQU(drops[t.slot].over_cap, 5);
    T_EQU(drops[t.slot].map_full, 0);
    T_EQ(sn_engine_disable(eng, t.slot), 0);
}

/* A discrete key and a numeric field: the cap counts keys, not (key, bucket) cells. */
#define NKIDS   4
#define NSLEEPS 10

struct by_key {
    int slot;
    pid_t pid[NKIDS];
    uint64_t count[NKIDS], other, stray, cells, other_cells;
    uint16_t other_ord; /* an ord "other" had, to see buckets kept */
    bool other_ords;    /* "other" had more than one bucket */
};

static void on_key_cell(const struct sn_cell *c, void *arg)
{
    struct by_key *b = arg;
    int64_t pid = 0;

    if (c->slot != b->slot)
        return;
    if (c->other) {
        b->other += c->count;
        b->other_ords |= b->other_cells && c->ord != b->other_ord;
        b->other_ord = c->ord;
        b->other_cells++;
        return;
    }
    b->cells++;
    memcpy(&pid, c->key, sizeof(pid));
    for (int i = 0; i < NKIDS; i++)
        if (pid == b->pid[i]) {
            b->count[i] += c->count;
            return;
        }
    b->stray += c->count;
}

/* NKIDS children at once, each making NSLEEPS nanosleeps of 20 us to 5.12 ms (a factor of 4
 * apart: distinct latency buckets even when a sleep overshoots by 3x), so that the slot's
 * cells are several times its keys. */
static void sleepy_children(pid_t *pids)
{
    for (int i = 0; i < NKIDS; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            for (int r = 0; r < NSLEEPS; r++) {
                struct timespec ts = {0, 20000L << (2 * (r % 5))};
                nanosleep(&ts, NULL);
            }
            _exit(0);
        }
    }
    for (int i = 0; i < NKIDS; i++)
        if (pids[i] > 0)
            waitpid(pids[i], NULL, 0);
}

/* The entries of the engine's key sets, from the kernel (maps of the syscall programs). */
static int keyset_entries(void)
{
    uint32_t ids[4], map_ids[32];
    int n = sn_engine_prog_ids(eng, SN_METRIC_SYSCALLS, ids, 4), count = -1, seen = 0;

    for (int i = 0; i < n && seen < 2; i++) {
        struct bpf_prog_info pi;
        uint32_t len = sizeof(pi);
        int pfd = bpf_prog_get_fd_by_id(ids[i]);
        memset(&pi, 0, sizeof(pi));
        pi.nr_map_ids = 32;
        pi.map_ids = (uint64_t)(uintptr_t)map_ids;
        if (pfd < 0 || bpf_obj_get_info_by_fd(pfd, &pi, &len) != 0) {
            if (pfd >= 0)
                close(pfd);
            continue;
        }
        close(pfd);
        for (uint32_t m = 0; m < pi.nr_map_ids && m < 32 && seen < 2; m++) {
            struct bpf_map_info mi;
            uint32_t mlen = sizeof(mi);
            int mfd = bpf_map_get_fd_by_id(map_ids[m]);
            memset(&mi, 0, sizeof(mi));
            if (mfd >= 0 && bpf_obj_get_info_by_fd(mfd, &mi, &mlen) == 0 &&
                strncmp(mi.name, "keyset", 6) == 0) { /* keyset0, keyset1: a generation each */
                struct sn_keyset_key k, *prev = NULL;
                count = count < 0 ? 0 : count;
                seen++;
                while (bpf_map_get_next_key(mfd, prev, &k) == 0) {
                    count++;
                    prev = &k;
                }
            }
            if (mfd >= 0)
                close(mfd);
        }
    }
    return count;
}

/* cap 5: more than the 4 keys, far fewer than their 15-20 (key, bucket) cells. Three rounds,
 * each its own second, so that a generation is used again: its keys of two seconds before
 * must not count against the cap. */
static void test_key_cap_counts_keys_not_buckets(void)
{
    char pred[256];

    T_REQUIRE(eng != NULL);
    snprintf(pred, sizeof(pred),
             "{\"and\":[{\"eq\":[\"execname\",\"%s\"]},{\"eq\":[\"syscall\",%d]}]}", comm,
             (int)SYS_clock_nanosleep);
    struct sn_slot_spec sp = spec_for(pred, SN_SC_PID, SN_SC_LATENCY, 5);
    T_REQUIRE(sp.pred.n > 0);
    int slot = sn_engine_enable(eng, &sp);
    T_REQUIRE(slot >= 0);
    sn_engine_collect(eng, NULL, NULL, NULL);
    for (int round = 0; round < 3; round++) {
        struct sn_slot_drops drops[SN_MAX_SLOTS];
        struct by_key b = {.slot = slot};
        sleepy_children(b.pid);
        memset(drops, 0, sizeof(drops));
        sn_engine_collect(eng, on_key_cell, &b, drops);
        t_note("round %d: %llu cells of %d keys, cap 5; other %llu", round,
               (unsigned long long)b.cells, NKIDS, (unsigned long long)b.other);
        T_OK(b.cells > 5); /* the premise: the old per-cell cap would have sent some to other */
        for (int i = 0; i < NKIDS; i++)
            T_EQU(b.count[i], NSLEEPS); /* every bucket of every key, under the key */
        T_EQU(b.other, 0);
        T_EQU(b.stray, 0);
        T_EQU(drops[slot].over_cap, 0);
        T_EQU(drops[slot].map_full, 0);
    }
    sn_engine_collect(eng, NULL, NULL, NULL); /* both generations drained */
    T_EQ(keyset_entries(), 0);
    T_EQ(sn_engine_disable(eng, slot), 0);
}

/* cap 2 of 4 keys: two keys keep all their buckets, the other two go to "other" whole (their
 * buckets kept), every event counted once, over_cap counting those sent to other. */
static void test_key_cap_over_with_buckets(void)
{
    char pred[256];
    struct sn_slot_drops drops[SN_MAX_SLOTS];

    T_REQUIRE(eng != NULL);
    snprintf(pred, sizeof(pred),
             "{\"and\":[{\"eq\":[\"execname\",\"%s\"]},{\"eq\":[\"syscall\",%d]}]}", comm,
             (int)SYS_clock_nanosleep);
    struct sn_slot_spec sp = spec_for(pred, SN_SC_PID, SN_SC_LATENCY, 2);
    struct by_key b = {0};
    b.slot = sn_engine_enable(eng, &sp);
    T_REQUIRE(b.slot >= 0);
    sn_engine_collect(eng, NULL, NULL, NULL);
    sleepy_children(b.pid);
    memset(drops, 0, sizeof(drops));
    sn_engine_collect(eng, on_key_cell, &b, drops);
    int whole = 0, none = 0;
    for (int i = 0; i < NKIDS; i++) {
        whole += b.count[i] == NSLEEPS;
        none += b.count[i] == 0;
    }
    t_note("keys with all %d: %d, with none: %d; other %llu in %llu cells", NSLEEPS, whole, none,
           (unsigned long long)b.other, (unsigned long long)b.other_cells);
    T_EQ(whole, 2);
    T_EQ(none, 2);
    T_EQU(b.other, 2 * NSLEEPS);
    T_OK(b.other_ords); /* "other" keeps the buckets */
    T_EQU(b.stray, 0);
    T_EQU(drops[b.slot].over_cap, 2 * NSLEEPS);
    T_EQU(drops[b.slot].map_full, 0);
    T_EQ(sn_engine_disable(eng, b.slot), 0);
}

struct keyed {
    int slot;
    uint64_t true_execs, total;
};

static void on_exec_cell(const struct sn_cell *c, void *arg)
{
    struct keyed *k = arg;
    if (c->slot != k->slot)
        return;
    k->total += c->count;
    if (strncmp(c->key, "true", SN_KEYLEN) == 0)
        k->true_execs += c->count;
}

static void test_proc_execs(void)
{
    static const struct sn_field_def exec_fields[] = {
        {"ppid", SN_FIELD_NUMERIC, SN_SC_PPID, NULL, NULL}};
    struct sn_slot_spec sp = {.metric = SN_METRIC_PROC_EXECS,
                              .key_field = SN_SC_EXECNAME,
                              .num_field = SN_NO_FIELD,
                              .key_cap = 100,
                              .needs = 1u << SN_SC_EXECNAME | 1u << SN_SC_PPID};
    struct keyed k = {0};
    char pred[64], why[128];
    uint32_t ids[4];

    T_REQUIRE(eng != NULL);
    snprintf(pred, sizeof(pred), "{\"eq\":[\"ppid\",%d]}", (int)getpid());
    json_t *j = json_loads(pred, 0, NULL);
    T_REQUIRE(j && sn_pred_compile(j, exec_fields, 1, &sp.pred, why, sizeof(why)) == 0);
    json_decref(j);
    k.slot = sn_engine_enable(eng, &sp);
    T_REQUIRE(k.slot >= 0);
    T_OK(sn_engine_attached(eng, SN_METRIC_PROC_EXECS));
    T_OK(!sn_engine_attached(eng, SN_METRIC_SYSCALLS)); /* metrics attach independently */
    int n = sn_engine_prog_ids(eng, SN_METRIC_PROC_EXECS, ids, 4);
    T_EQ(n, 1);
    T_EQ(t_kernel_links_to(ids, n), 1);
    sn_engine_collect(eng, NULL, NULL, NULL);
    for (int i = 0; i < 5; i++) {
        pid_t c = fork();
        if (c == 0) {
            execl("/bin/true", "true", (char *)NULL);
            _exit(127);
        }
        waitpid(c, NULL, 0);
    }
    sn_engine_collect(eng, on_exec_cell, &k, NULL);
    T_EQU(k.true_execs, 5);
    T_EQU(k.total, 5); /* only our children: the ppid predicate */
    T_EQ(sn_engine_disable(eng, k.slot), 0);
    T_OK(!sn_engine_attached(eng, SN_METRIC_PROC_EXECS));
    T_EQ(t_kernel_links_to(ids, n), 0);
}

struct life {
    int slot;
    uint64_t total, short_lived;
    uint16_t min_ord;
};

static void on_life_cell(const struct sn_cell *c, void *arg)
{
    struct life **ls = arg; /* two slots, one drain */
    for (int i = 0; i < 2; i++) {
        if (c->slot != ls[i]->slot)
            continue;
        ls[i]->total += c->count;
        if (c->ord < ls[i]->min_ord)
            ls[i]->short_lived += c->count;
    }
}

/* forks and exits of 5 children, each living 20 ms */
static void test_proc_forks_and_exits(void)
{
    static const struct sn_field_def f[] = {{"ppid", SN_FIELD_NUMERIC, SN_SC_PPID, NULL, NULL}};
    struct sn_slot_spec forks = {.metric = SN_METRIC_PROC_FORKS,
                                 .key_field = SN_NO_FIELD,
                                 .num_field = SN_NO_FIELD,
                                 .key_cap = 100,
                                 .needs = 1u << SN_SC_PPID};
    struct sn_slot_spec exits = {.metric = SN_METRIC_PROC_EXITS,
                                 .key_field = SN_NO_FIELD,
                                 .num_field = SN_SC_WALLTIME,
                                 .key_cap = 100,
                                 .needs = 1u << SN_SC_PPID | 1u << SN_SC_WALLTIME};
    struct life lf = {0}, le = {0};
    char pred[64], why[128];

    T_REQUIRE(eng != NULL);
    snprintf(pred, sizeof(pred), "{\"eq\":[\"ppid\",%d]}", (int)getpid());
    json_t *j = json_loads(pred, 0, NULL);
    T_REQUIRE(j && sn_pred_compile(j, f, 1, &forks.pred, why, sizeof(why)) == 0);
    T_REQUIRE(sn_pred_compile(j, f, 1, &exits.pred, why, sizeof(why)) == 0);
    json_decref(j);
    lf.slot = sn_engine_enable(eng, &forks);
    le.slot = sn_engine_enable(eng, &exits);
    T_REQUIRE(lf.slot >= 0 && le.slot >= 0);
    le.min_ord = sn_ord_of_u64(20000000);
    sn_engine_collect(eng, NULL, NULL, NULL);
    for (int i = 0; i < 5; i++) {
        pid_t c = fork();
        if (c == 0) {
            struct timespec ts = {0, 20000000};
            nanosleep(&ts, NULL);
            _exit(0);
        }
        waitpid(c, NULL, 0);
    }
    struct life *both[2] = {&lf, &le};
    sn_engine_collect(eng, on_life_cell, both, NULL);
    T_EQU(lf.total, 5);
    T_EQU(le.total, 5);
    T_EQU(le.short_lived, 0); /* every child lived at least 20 ms */
    T_EQ(sn_engine_disable(eng, lf.slot), 0);
    T_EQ(sn_engine_disable(eng, le.slot), 0);
}

struct disk_tally {
    int slot;
    uint64_t total;
    char key[SN_KEYLEN + 1];
};

static void on_disk_cell(const struct sn_cell *c, void *arg)
{
    struct disk_tally *d = arg;
    if (c->slot != d->slot)
        return;
    d->total += c->count;
    memcpy(d->key, c->key, SN_KEYLEN);
}

/* 30 O_DIRECT writes of 4 KiB reach disk.physio_ops, by disk */
static void test_disk_physio_ops(void)
{
    static const struct sn_field_def f[] = {{"size", SN_FIELD_NUMERIC, SN_SC_SIZE, NULL, NULL},
                                            {"optype", SN_FIELD_NUMERIC, SN_SC_OPTYPE, NULL, NULL}};
    struct sn_slot_spec sp = {.metric = SN_METRIC_DISK_OPS,
                              .key_field = SN_SC_DEVICE,
                              .num_field = SN_NO_FIELD,
                              .key_cap = 100,
                              .needs = 1u << SN_SC_DEVICE | 1u << SN_SC_SIZE | 1u << SN_SC_OPTYPE};
    struct disk_tally d = {0};
    char why[128], path[256];
    void *buf;

    T_REQUIRE(eng != NULL);
    /* writes (REQ_OP_WRITE = 1) of exactly 4096 bytes */
    json_t *j = json_loads("{\"and\":[{\"eq\":[\"size\",4096]},{\"eq\":[\"optype\",1]}]}", 0, NULL);
    T_REQUIRE(j && sn_pred_compile(j, f, 2, &sp.pred, why, sizeof(why)) == 0);
    json_decref(j);
    d.slot = sn_engine_enable(eng, &sp);
    T_REQUIRE(d.slot >= 0);
    snprintf(path, sizeof(path), "/var/tmp/sonde-direct.%d", (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT, 0600);
    T_REQUIRE(fd >= 0);
    T_REQUIRE(posix_memalign(&buf, 4096, 4096) == 0);
    memset(buf, 'x', 4096);
    sn_engine_collect(eng, NULL, NULL, NULL);
    for (int i = 0; i < 30; i++)
        T_OK(pwrite(fd, buf, 4096, (off_t)i * 4096 * 2) == 4096); /* not adjacent: no merging */
    close(fd);
    unlink(path);
    free(buf);
    sn_engine_collect(eng, on_disk_cell, &d, NULL);
    t_note("%llu writes of 4 KiB on %s", (unsigned long long)d.total, d.key);
    T_OK(d.total >= 30); /* ours, and any other 4 KiB write in that second */
    T_OK(d.key[0] != '\0');
    T_EQ(sn_engine_disable(eng, d.slot), 0);
}

/* Each of 20 sleeps ends with a wake-up and a wait for a CPU: cpu.runqueue sees them all */
static void test_cpu_runqueue(void)
{
    static const struct sn_field_def f[] = {
        {"execname", SN_FIELD_DISCRETE, SN_SC_EXECNAME, NULL, NULL}};
    struct sn_slot_spec sp = {.metric = SN_METRIC_RUNQUEUE,
                              .key_field = SN_NO_FIELD,
                              .num_field = SN_SC_LATENCY,
                              .key_cap = 100,
                              .needs = 1u << SN_SC_EXECNAME};
    struct tally t = {0};
    char pred[64], why[128];

    T_REQUIRE(eng != NULL);
    snprintf(pred, sizeof(pred), "{\"eq\":[\"execname\",\"%s\"]}", comm);
    json_t *j = json_loads(pred, 0, NULL);
    T_REQUIRE(j && sn_pred_compile(j, f, 1, &sp.pred, why, sizeof(why)) == 0);
    json_decref(j);
    t.slot = sn_engine_enable(eng, &sp);
    T_REQUIRE(t.slot >= 0);
    sn_engine_collect(eng, NULL, NULL, NULL);
    for (int i = 0; i < 20; i++)
        t_timed_sleep(1000000);
    sn_engine_collect(eng, on_cell, &t, NULL);
    t_note("%llu runqueue waits", (unsigned long long)t.total);
    T_OK(t.total >= 20 && t.total < 200); /* each sleep, and a few other waits of ours */
    T_EQ(sn_engine_disable(eng, t.slot), 0);
}

/* 20 distinct, harmless system calls, 3 times each */
static void distinct_syscalls(void *arg)
{
    static const long nrs[] = {SYS_getpid,    SYS_getppid,     SYS_getuid,      SYS_geteuid,
                               SYS_getgid,    SYS_getegid,     SYS_gettid,      SYS_getpgrp,
                               SYS_getsid,    SYS_umask,       SYS_sched_yield, SYS_getpgid,
                               SYS_getcwd,    SYS_uname,       SYS_sysinfo,     SYS_times,
                               SYS_getrusage, SYS_getpriority, SYS_getrlimit,   SYS_getgroups};
    char buf[512];
    (void)arg;
    for (int r = 0; r < 3; r++)
        for (size_t i = 0; i < sizeof(nrs) / sizeof(nrs[0]); i++)
            switch (nrs[i]) {
            case SYS_umask:
                syscall(SYS_umask, 022);
                break;
            case SYS_getcwd:
            case SYS_uname:
            case SYS_sysinfo:
            case SYS_times:
                syscall(nrs[i], buf, sizeof(buf));
                break;
            case SYS_getrusage:
            case SYS_getrlimit:
                syscall(nrs[i], 0, buf);
                break;
            case SYS_getpriority:
                syscall(nrs[i], 0, 0);
                break;
            case SYS_getgroups:
                syscall(nrs[i], 0, NULL);
                break;
            default:
                syscall(nrs[i], 0);
                break;
            }
}

struct full_tally {
    int keyed, array;
    uint64_t keyed_total, array_total, cells;
};

static void on_full_cell(const struct sn_cell *c, void *arg)
{
    struct full_tally *t = arg;
    if (c->slot == t->keyed) {
        t->keyed_total += c->count;
        t->cells++;
    } else if (c->slot == t->array) {
        t->array_total += c->count;
    }
}

/* An aggregation map too small for a second's keys: what does not fit is counted as map_full,
 * so counted + lost equals every event (which a keyless histogram, in its own array, sees). */
static void test_map_full_is_counted(void)
{
    static const struct sn_field_def f[] = {{"pid", SN_FIELD_NUMERIC, SN_SC_PID, NULL, NULL}};
    struct sn_engine_opts o = {.agg_entries = 8};
    struct sn_engine *small = NULL;
    struct sn_slot_drops drops[SN_MAX_SLOTS];
    struct full_tally t = {0};
    struct sn_slot_spec keyed = {.metric = SN_METRIC_SYSCALLS,
                                 .key_field = SN_SC_SYSCALL,
                                 .num_field = SN_NO_FIELD,
                                 .key_cap = 1000,
                                 .needs = 1u << SN_SC_PID | 1u << SN_SC_SYSCALL};
    struct sn_slot_spec array = {.metric = SN_METRIC_SYSCALLS,
                                 .key_field = SN_NO_FIELD,
                                 .num_field = SN_SC_LATENCY,
                                 .key_cap = 1000,
                                 .needs = 1u << SN_SC_PID | 1u << SN_SC_LATENCY};
    char pred[64], why[128];

    T_REQUIRE(sn_engine_open_opts(&small, &o) == 0);
    struct t_gated g = t_gated_start(distinct_syscalls, NULL);
    T_REQUIRE(g.pid > 0);
    snprintf(pred, sizeof(pred), "{\"eq\":[\"pid\",%d]}", (int)g.pid);
    json_t *j = json_loads(pred, 0, NULL);
    T_REQUIRE(j && sn_pred_compile(j, f, 1, &keyed.pred, why, sizeof(why)) == 0);
    array.pred = keyed.pred;
    json_decref(j);
    t.keyed = sn_engine_enable(small, &keyed);
    t.array = sn_engine_enable(small, &array);
    T_REQUIRE(t.keyed >= 0 && t.array >= 0 && t.array < SN_ARRAY_SLOTS);
    sn_engine_collect(small, NULL, NULL, NULL);
    t_gated_release(&g);
    memset(drops, 0, sizeof(drops));
    sn_engine_collect(small, on_full_cell, &t, drops);
    t_note("%llu counted in %llu cells, %llu lost to a full map, %llu in all",
           (unsigned long long)t.keyed_total, (unsigned long long)t.cells,
           (unsigned long long)drops[t.keyed].map_full, (unsigned long long)t.array_total);
    T_OK(t.array_total >= 60);
    T_OK(t.cells <= 8);
    T_OK(drops[t.keyed].map_full > 0);
    T_EQU(t.keyed_total + drops[t.keyed].map_full, t.array_total);
    sn_engine_close(small);
}

/* Every way of collecting (the cell table, batched hashes, the baseline) counts the same over
 * seconds that reuse both generations, "other" and over_cap included; with the table and with
 * batches an idle second makes no bpf() call. */
static void test_collect_modes(void)
{
    static const enum sn_collect_mode modes[] = {SN_COLLECT_TABLE, SN_COLLECT_BATCH,
                                                 SN_COLLECT_BASELINE};
    char pred[256];

    snprintf(pred, sizeof(pred),
             "{\"and\":[{\"eq\":[\"execname\",\"%s\"]},{\"eq\":[\"syscall\",%d]}]}", comm,
             (int)SYS_getppid);
    for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
        struct sn_engine_opts o = {.collect = modes[m]};
        struct sn_engine_stats s0, s1;
        struct sn_engine *e = NULL;
        struct sn_slot_spec sp = spec_for(pred, SN_SC_PID, SN_SC_LATENCY, 1);
        T_REQUIRE(sn_engine_open_opts(&e, &o) == 0);
        int slot = sn_engine_enable(e, &sp);
        T_REQUIRE(slot >= 0);
        sn_engine_collect(e, NULL, NULL, NULL);
        for (int round = 0; round < 4; round++) {
            struct sn_slot_drops drops[SN_MAX_SLOTS];
            struct tally t = {.slot = slot};
            for (int i = 0; i < 5; i++)
                syscall(SYS_getppid);
            pid_t child = fork();
            if (child == 0) {
                for (int i = 0; i < 7; i++)
                    syscall(SYS_getppid);
                _exit(0);
            }
            T_REQUIRE(child > 0);
            waitpid(child, NULL, 0);
            sn_engine_collect(e, on_cell, &t, drops);
            T_EQU(t.total, 12);
            T_EQU(t.other, 7); /* the cap of 1 key: the child's calls */
            T_EQU(drops[slot].over_cap, 7);
            T_EQU(drops[slot].map_full, 0);
        }
        sn_engine_stats(e, &s0);
        sn_engine_collect(e, NULL, NULL, NULL); /* a second with nothing of ours */
        sn_engine_stats(e, &s1);
        t_note("mode %d: %llu bpf() calls in %llu collections; idle: %llu", (int)modes[m],
               (unsigned long long)s0.bpf_calls, (unsigned long long)s0.collections,
               (unsigned long long)(s1.bpf_calls - s0.bpf_calls));
        if (modes[m] != SN_COLLECT_BASELINE)
            T_EQU(s1.bpf_calls - s0.bpf_calls, 0);
        else
            T_OK(s1.bpf_calls - s0.bpf_calls > 0);
        T_EQ(sn_engine_disable(e, slot), 0);
        sn_engine_close(e);
    }
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_unique_comm();
    t_run("open loads the probe without attaching it", test_open);
    t_run("enable attaches, collect drains the second, disable detaches",
          test_enable_collect_disable);
    t_run("key cap: extra keys go to other and are counted", test_key_cap);
    t_run("key cap counts keys, not their latency buckets", test_key_cap_counts_keys_not_buckets);
    t_run("key cap below the keys: extra keys go to other with their buckets",
          test_key_cap_over_with_buckets);
    t_run("unix.proc_execs: our children's execs by execname", test_proc_execs);
    t_run("unix.proc_forks and proc_exits with walltime", test_proc_forks_and_exits);
    t_run("disk.physio_ops: O_DIRECT writes by disk", test_disk_physio_ops);
    t_run("cpu.runqueue: every wake-up of ours waits, and is counted", test_cpu_runqueue);
    t_run("a full aggregation map: lost events are counted", test_map_full_is_counted);
    t_run("table, batches and baseline count the same; idle costs no bpf() call",
          test_collect_modes);
    sn_engine_close(eng);
    return t_done();
}
