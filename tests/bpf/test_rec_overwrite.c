/*
 * The flight recorder against the real kernel (root and BPF; CI runs it as root, so it fails
 * rather than skips when BPF cannot load). A child process pinned to one CPU makes getppid
 * calls on command, passing its call number as an (ignored) first argument so that each
 * sys_enter record says which call it is:
 *  - a 64 KiB ring (1024 slots per CPU) overrun by 2 x 5000 records keeps exactly the newest
 *    1024 (calls 4488..4999) and counts exactly 8976 overwritten;
 *  - the next snapshot holds only the next batch's calls, none of the first (disjoint);
 *  - a 4 MiB ring holds exactly N syscall exits of getppid by the child's tid with ret = its
 *    parent (this process), and N entries, none torn, none overwritten;
 *  - openat's path comes whole up to 110 bytes, cut there with the truncation flag;
 *  - snapshots taken while the child writes never let a changed record through (every entry
 *    kept carries a larger call number than the one before) and the counts add up exactly;
 *  - a session loads and attaches only its groups' programs, and destroy leaves no link;
 *  - a sched session sees the child's sched_switch out of its sleep and back, and its wakeup
 *    (tid, comm, target CPU);
 *  - the big ring's snapshot, written by the CTF writer (src/ctf), is read by babeltrace2 with
 *    rc 0 and shows the same N syscall_exit_getppid events.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctf/writer.h"
#include "kernel_view.h"
#include "rec/session.h"
#include "t.h"

static char str[SN_REC_STR_MAX]; /* decoded strings */

struct cmd {
    long n;         /* getppid calls; 0: sleep 2 ms (or open path); < 0: exit */
    long base;      /* first call number */
    char path[200]; /* n == 0 and a path: openat it instead of sleeping */
};

static pid_t child = -1;
static int to_child[2], from_child[2];
static unsigned child_cpu;

static void child_main(void)
{
    struct cmd c;
    char ack = 'k';
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(child_cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0)
        _exit(2);
    prctl(PR_SET_NAME, "snt-recwork");
    if (write(from_child[1], &ack, 1) != 1)
        _exit(3);
    while (read(to_child[0], &c, sizeof(c)) == sizeof(c) && c.n >= 0) {
        if (c.n == 0 && c.path[0]) {
            syscall(SYS_openat, AT_FDCWD, c.path, O_RDONLY, 0);
        } else if (c.n == 0) {
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL);
        }
        for (long i = 0; i < c.n; i++)
            syscall(SYS_getppid, c.base + i);
        if (write(from_child[1], &ack, 1) != 1)
            _exit(4);
    }
    _exit(0);
}

static int child_start(void)
{
    char ack;

    child_cpu = sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 1 : 0;
    if (pipe(to_child) || pipe(from_child))
        return -1;
    child = fork();
    if (child == 0)
        child_main();
    return read(from_child[0], &ack, 1) == 1 ? 0 : -1;
}

/* Runs n getppid calls (n = 0: one 2 ms sleep) in the child and waits for them. */
static int child_run(long n, long base)
{
    struct cmd c = {n, base, ""};
    char ack;

    if (write(to_child[1], &c, sizeof(c)) != sizeof(c))
        return -1;
    return read(from_child[0], &ack, 1) == 1 ? 0 : -1;
}

static void child_stop(void)
{
    struct cmd c = {-1, 0, ""};

    if (child <= 0)
        return;
    if (write(to_child[1], &c, sizeof(c)) != sizeof(c))
        kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    child = -1;
}

/* A session recording the child only (a predicate on its pid), and of system calls only
 * number nr (nr >= 0: a predicate on syscall too). */
static int open_session(struct sn_rec_session **s, unsigned groups, uint64_t size, int64_t nr)
{
    char spid[24], snr[24], why[256] = "";
    json_t *p;
    int rc;

    snprintf(spid, sizeof(spid), "%d", (int)child);
    snprintf(snr, sizeof(snr), "%lld", (long long)nr);
    p = nr >= 0
            ? json_pack("{s:[{s:[s,s]},{s:[s,s]}]}", "and", "eq", "pid", spid, "eq", "syscall", snr)
            : json_pack("{s:[s,s]}", "eq", "pid", spid);
    struct sn_rec_session_opts o = {
        .groups = groups, .size_per_cpu = size, .predicate = p, .why = why, .whylen = sizeof(why)};
    rc = sn_rec_session_open(s, &o);
    json_decref(p);
    t_note("session open: %s %s (run as root on a kernel with BTF)", strerror(-rc), why);
    return rc;
}

static void test_small_ring_keeps_newest(void)
{
    struct sn_rec_session *s;
    struct sn_rec_consumer *c;
    struct sn_rec_snap snap;
    const long n = 5000, n2 = 300;

    T_REQUIRE(open_session(&s, SN_REC_G_SYSCALLS, 64 << 10, SYS_getppid) == 0);
    const struct sn_rec_ring_view *v = sn_rec_session_view(s);
    T_EQU(v->nslots, 1024);
    T_REQUIRE(sn_rec_consumer_new(&c, v, 1) == 0);

    T_REQUIRE(child_run(n, 0) == 0);
    T_REQUIRE(sn_rec_snapshot(c, v, &snap) == 0);
    T_EQU(snap.records, 1024);
    T_EQU(snap.overwritten, 2 * n - 1024);
    T_EQU(snap.torn, 0);
    const struct sn_rec_cpu_snap *cs = &snap.cpu[child_cpu];
    T_EQ(cs->nrec, 1024);
    for (size_t k = 0; k < cs->nrec; k++) {
        struct sn_rec_event ev;
        T_REQUIRE(
            sn_rec_slot_decode(sn_rec_snap_record(&snap, child_cpu, k), child_cpu, &ev, str) == 0);
        T_EQ(ev.u.sys.nr, SYS_getppid);
        T_EQ(ev.tid, child);
        if (k % 2 == 0) { /* entries and exits alternate: the newest 512 calls */
            T_EQ(ev.type, SN_REC_SYS_ENTER);
            T_EQU(ev.u.sys.args[0], n - 512 + (long)k / 2);
        } else {
            T_EQ(ev.type, SN_REC_SYS_EXIT);
            T_EQ(ev.u.sys.ret, getpid());
        }
    }
    sn_rec_snap_free(&snap);

    /* the next snapshot: the next batch only */
    T_REQUIRE(child_run(n2, 100000) == 0);
    T_REQUIRE(sn_rec_snapshot(c, v, &snap) == 0);
    T_EQU(snap.records, 2 * n2);
    T_EQU(snap.overwritten, 0);
    T_EQU(snap.torn, 0);
    long next = 100000;
    for (size_t k = 0; k < snap.cpu[child_cpu].nrec; k++) {
        const struct sn_rec_slot *r = sn_rec_snap_record(&snap, child_cpu, k);
        if (r->type == SN_RK_SYS_ENTRY)
            T_EQU(r->a[1], next++);
    }
    T_EQ(next, 100000 + n2);
    sn_rec_snap_free(&snap);

    struct sn_rec_session_stats st;
    T_EQ(sn_rec_session_stats(s, &st), 0);
    T_EQU(st.head[child_cpu], 2 * (n + n2));
    T_EQU(st.dropped, 0);
    sn_rec_consumer_free(c);
    sn_rec_session_destroy(s);
}

/* Writes snap as a CTF trace in dir (dir/kernel); returns the events written, or -errno. */
static long write_ctf(const struct sn_rec_snap *snap, const char *dir)
{
    struct sn_syscall_tab tab;
    struct sn_ctf_classes cls;
    struct sn_ctf_env env;
    struct sn_ctf_writer *w;
    long n = 0;
    int rc;

    if ((rc = sn_syscall_tab_load(&tab, "/sys/kernel/tracing")) != 0)
        return rc;
    if ((rc = sn_ctf_classes_build(&cls, &tab)) != 0 ||
        (rc = sn_ctf_env_host(&env, "test_rec_overwrite", "rec1")) != 0) {
        sn_syscall_tab_free(&tab);
        return rc;
    }
    struct sn_ctf_writer_opts o = {.ncpus = snap->ncpu, .classes = &cls};
    rc = sn_ctf_writer_open(&w, dir, &env, &o);
    for (unsigned cpu = 0; rc == 0 && cpu < snap->ncpu; cpu++)
        for (size_t k = 0; rc == 0 && k < snap->cpu[cpu].nrec; k++) {
            struct sn_rec_event ev;
            rc = sn_rec_slot_decode(sn_rec_snap_record(snap, cpu, k), cpu, &ev, str);
            if (rc == 0)
                rc = sn_ctf_writer_add(w, cpu, &ev);
            n++;
        }
    if (rc == 0)
        rc = sn_ctf_writer_close(w);
    else
        sn_ctf_writer_abort(w);
    sn_ctf_classes_free(&cls);
    sn_syscall_tab_free(&tab);
    return rc ? rc : n;
}

static void check_ctf(const struct sn_rec_snap *snap, long n)
{
    static char out[1 << 16], err[1 << 16];
    char dir[600], cmd[2048];

    snprintf(dir, sizeof(dir), "%s/rec_overwrite.XXXXXX", t_outdir());
    T_REQUIRE(mkdtemp(dir) != NULL);
    T_EQ(write_ctf(snap, dir), (long)snap->records);
    snprintf(cmd, sizeof(cmd), "babeltrace2 --names=payload %s/kernel > %s/text", dir, dir);
    int rc = t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err));
    t_note("babeltrace2: rc %d\n%s", rc, err);
    T_EQ(rc, 0);
    snprintf(cmd, sizeof(cmd),
             "grep -c 'syscall_exit_getppid: { %u }, { %d, %d }, { ret = %d }$' %s/text", child_cpu,
             (int)child, (int)child, (int)getpid(), dir);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    T_EQ(atol(out), n);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
}

static void test_big_ring_exact(void)
{
    struct sn_rec_session *s;
    struct sn_rec_consumer *c;
    struct sn_rec_snap snap;
    const long n = 10000;
    long entries = 0, exits = 0, wrong = 0;

    T_REQUIRE(open_session(&s, SN_REC_G_SYSCALLS, 4 << 20, -1) == 0);
    const struct sn_rec_ring_view *v = sn_rec_session_view(s);
    T_REQUIRE(sn_rec_consumer_new(&c, v, 1) == 0);
    T_REQUIRE(child_run(n, 0) == 0);
    T_REQUIRE(sn_rec_snapshot(c, v, &snap) == 0);
    T_EQU(snap.overwritten, 0);
    T_EQU(snap.torn, 0);
    for (unsigned cpu = 0; cpu < snap.ncpu; cpu++)
        for (size_t k = 0; k < snap.cpu[cpu].nrec; k++) {
            struct sn_rec_event ev;
            T_REQUIRE(sn_rec_slot_decode(sn_rec_snap_record(&snap, cpu, k), cpu, &ev, str) == 0);
            if (ev.u.sys.nr != SYS_getppid)
                continue;
            if (ev.tid != child || ev.pid != child)
                wrong++;
            if (ev.type == SN_REC_SYS_ENTER)
                entries++;
            else if (ev.type == SN_REC_SYS_EXIT && ev.u.sys.ret == getpid())
                exits++;
            else
                wrong++;
        }
    T_EQ(exits, n);
    T_EQ(entries, n);
    T_EQ(wrong, 0);
    check_ctf(&snap, n);
    sn_rec_snap_free(&snap);
    sn_rec_consumer_free(c);
    sn_rec_session_destroy(s);
}

/* openat's path argument comes in the record's string slots: short, across both slots, and
 * cut at 110 bytes with the truncation flag */
static void test_path_strings(void)
{
    struct sn_rec_session *s;
    struct sn_rec_consumer *c;
    struct sn_rec_snap snap;
    char paths[3][200];
    int seen = 0, exits = 0;

    snprintf(paths[0], sizeof(paths[0]), "/nonexist");
    snprintf(paths[1], sizeof(paths[1]), "/nonexistent/%070d", 7);  /* 83 bytes */
    snprintf(paths[2], sizeof(paths[2]), "/nonexistent/%0121d", 9); /* 134 bytes */
    T_REQUIRE(open_session(&s, SN_REC_G_SYSCALLS, 1 << 20, SYS_openat) == 0);
    const struct sn_rec_ring_view *v = sn_rec_session_view(s);
    T_REQUIRE(sn_rec_consumer_new(&c, v, 1) == 0);
    for (int i = 0; i < 3; i++) {
        struct cmd cmd = {0, 0, ""};
        char ack;
        memcpy(cmd.path, paths[i], sizeof(cmd.path));
        T_REQUIRE(write(to_child[1], &cmd, sizeof(cmd)) == sizeof(cmd));
        T_REQUIRE(read(from_child[0], &ack, 1) == 1);
    }
    T_REQUIRE(sn_rec_snapshot(c, v, &snap) == 0);
    T_EQU(snap.torn + snap.overwritten, 0);
    for (size_t k = 0; k < snap.cpu[child_cpu].nrec; k++) {
        const struct sn_rec_slot *r = sn_rec_snap_record(&snap, child_cpu, k);
        struct sn_rec_event ev;
        T_REQUIRE(sn_rec_slot_decode(r, child_cpu, &ev, str) == 0);
        if (ev.type == SN_REC_SYS_EXIT) {
            T_EQ(ev.u.sys.ret, -ENOENT);
            exits++;
            continue;
        }
        T_REQUIRE(seen < 3);
        T_EQ(r->nslots, 3); /* openat has 4 arguments: the first slot and the path's 2 */
        T_EQ((int32_t)ev.u.sys.args[0], AT_FDCWD); /* an int: the low 32 bits */
        T_REQUIRE(ev.u.sys.str[1] != NULL);
        if (seen < 2) {
            T_STR(ev.u.sys.str[1], paths[seen]);
            T_EQ(r->flags & SN_REC_F_TRUNC, 0);
        } else {
            T_EQ(strlen(ev.u.sys.str[1]), 110);
            T_OK(strncmp(ev.u.sys.str[1], paths[2], 110) == 0);
            T_EQ(r->flags & SN_REC_F_TRUNC, SN_REC_F_TRUNC);
        }
        seen++;
    }
    T_EQ(seen, 3);
    T_EQ(exits, 3);
    sn_rec_snap_free(&snap);
    sn_rec_consumer_free(c);
    sn_rec_session_destroy(s);
}

static void test_snapshots_race_writer(void)
{
    struct sn_rec_session *s;
    struct sn_rec_consumer *c;
    struct cmd cmd = {200000, 0, ""};
    struct pollfd pfd = {.fd = from_child[0], .events = POLLIN};
    uint64_t kept = 0, torn = 0, overwritten = 0, snaps = 0, bad = 0;
    long last = -1;
    char ack;

    T_REQUIRE(open_session(&s, SN_REC_G_SYSCALLS, 64 << 10, SYS_getppid) == 0);
    const struct sn_rec_ring_view *v = sn_rec_session_view(s);
    T_REQUIRE(sn_rec_consumer_new(&c, v, 1) == 0);
    uint64_t head0 = v->heads[child_cpu].head;
    T_REQUIRE(write(to_child[1], &cmd, sizeof(cmd)) == sizeof(cmd));
    for (int done = 0; !done;) {
        struct sn_rec_snap snap;
        done = poll(&pfd, 1, 0) == 1; /* one last snapshot after the child's ack */
        T_REQUIRE(sn_rec_snapshot(c, v, &snap) == 0);
        const struct sn_rec_cpu_snap *cs = &snap.cpu[child_cpu];
        for (size_t k = 0; k < cs->nrec; k++) {
            const struct sn_rec_slot *r = sn_rec_snap_record(&snap, child_cpu, k);
            kept += r->nslots;
            if (r->tid != (uint32_t)child || (uint32_t)r->a[0] != SYS_getppid)
                bad++;
            if (r->type != SN_RK_SYS_ENTRY)
                continue;
            if ((long)r->a[1] <= last)
                bad++;
            last = (long)r->a[1];
        }
        torn += cs->torn;
        overwritten += cs->overwritten;
        snaps++;
        sn_rec_snap_free(&snap);
    }
    T_REQUIRE(read(from_child[0], &ack, 1) == 1);
    T_EQ(bad, 0);
    T_EQ(last, cmd.n - 1);
    T_EQU(kept + torn + overwritten, 2 * cmd.n);
    T_EQU(v->heads[child_cpu].head - head0, 2 * cmd.n);
    printf("# %llu snapshots racing the writer: %llu slots kept, %llu overwritten, %llu torn\n",
           (unsigned long long)snaps, (unsigned long long)kept, (unsigned long long)overwritten,
           (unsigned long long)torn);
    sn_rec_consumer_free(c);
    sn_rec_session_destroy(s);
}

static void test_groups_and_destroy(void)
{
    struct sn_rec_session *s;
    struct sn_rec_session_opts bad = {.groups = 0, .size_per_cpu = 64 << 10};
    uint32_t ids[SN_REC_MAX_PROGS];
    int n;

    T_EQ(sn_rec_session_open(&s, &bad), -EINVAL);
    bad.groups = 0x80;
    T_EQ(sn_rec_session_open(&s, &bad), -EINVAL);
    bad.groups = SN_REC_G_SCHED;
    bad.size_per_cpu = 96 << 10; /* not a power of 2 */
    T_EQ(sn_rec_session_open(&s, &bad), -EINVAL);
    bad.size_per_cpu = 32 << 10; /* too small */
    T_EQ(sn_rec_session_open(&s, &bad), -EINVAL);

    T_REQUIRE(open_session(&s, SN_REC_G_SCHED, 64 << 10, -1) == 0);
    n = sn_rec_session_prog_ids(s, ids, SN_REC_MAX_PROGS);
    T_EQ(n, 3); /* sched_switch, sched_wakeup, sched_wakeup_new: no system call program */
    T_EQ(t_kernel_links_to(ids, n), 3);

    /* the child's 2 ms sleep: it switches out (prev) and back in (next) */
    struct sn_rec_consumer *c;
    struct sn_rec_snap snap;
    int out = 0, in = 0, sleeping = 0;
    T_REQUIRE(sn_rec_consumer_new(&c, sn_rec_session_view(s), 1) == 0);
    T_REQUIRE(child_run(0, 0) == 0);
    T_REQUIRE(sn_rec_snapshot(c, sn_rec_session_view(s), &snap) == 0);
    for (size_t k = 0; k < snap.cpu[child_cpu].nrec; k++) {
        struct sn_rec_event ev;
        T_REQUIRE(
            sn_rec_slot_decode(sn_rec_snap_record(&snap, child_cpu, k), child_cpu, &ev, str) == 0);
        if (ev.type != SN_REC_SCHED_SWITCH)
            continue;
        if (ev.u.sw.prev_tid == child && memcmp(ev.u.sw.prev_comm, "snt-recwork", 12) == 0) {
            out++;
            t_note("prev_state %lld", (long long)ev.u.sw.prev_state);
            /* one state bit or none (running: a yield), as lttng-modules reports it */
            T_OK((ev.u.sw.prev_state & (ev.u.sw.prev_state - 1)) == 0);
            T_OK(ev.u.sw.prev_state <= 0x100);
            sleeping += ev.u.sw.prev_state == 1;
        }
        if (ev.u.sw.next_tid == child && memcmp(ev.u.sw.next_comm, "snt-recwork", 12) == 0)
            in++;
    }
    T_OK(out >= 1);
    T_OK(in >= 1);
    T_OK(sleeping >= 1); /* the 2 ms nanosleep: TASK_INTERRUPTIBLE */
    int woken = 0;       /* and its timer woke it: a wakeup of its tid, on whichever CPU */
    for (unsigned cpu = 0; cpu < snap.ncpu; cpu++)
        for (size_t k = 0; k < snap.cpu[cpu].nrec; k++) {
            struct sn_rec_event ev;
            T_REQUIRE(sn_rec_slot_decode(sn_rec_snap_record(&snap, cpu, k), cpu, &ev, str) == 0);
            if (ev.type == SN_REC_SCHED_WAKEUP && ev.u.wakeup.tid == child &&
                memcmp(ev.u.wakeup.comm, "snt-recwork", 12) == 0) {
                woken++;
                T_EQ(ev.u.wakeup.target_cpu, child_cpu);
            }
        }
    T_OK(woken >= 1);
    sn_rec_snap_free(&snap);
    sn_rec_consumer_free(c);

    sn_rec_session_destroy(s);
    T_EQ(t_kernel_links_to(ids, n), 0); /* a stopped session has no program attached */
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    if (child_start() != 0) {
        t_run("child", test_groups_and_destroy); /* reports the failure */
        return t_done();
    }
    t_run("small ring keeps the newest, overwritten exact, snapshots disjoint",
          test_small_ring_keeps_newest);
    t_run("big ring: exactly N getppid exits with ret = ppid, in babeltrace2 too",
          test_big_ring_exact);
    t_run("openat's path: short, in two slots, truncated", test_path_strings);
    t_run("snapshots racing the writer: nothing torn gets through", test_snapshots_race_writer);
    t_run("groups load only their programs; destroy detaches", test_groups_and_destroy);
    child_stop();
    return t_done();
}
