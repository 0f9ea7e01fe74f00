/*
 * A tenant's recording scope against the real kernel (root and BPF; CI runs it as root, so it
 * fails rather than skips when BPF cannot load). The test makes <cgroup2>/snt-rectenant-<pid>
 * with two cgroups a and b, and parks a gated child in each (support/workload.h): A
 * ("snt-tenant-a", in a) and B ("snt-tenant-b", in b), pinned to one CPU, each make N getppid
 * calls, then play ping-pong over two pipes for R rounds, so that the CPU switches between
 * them directly and each wakes the other. Two sessions record them at once: the tenant's, scoped
 * to a, and the operator's, with a predicate on both pids. Then:
 *  - the tenant's ring holds none of B's system calls, and no record anywhere names B (tid,
 *    pid or comm); A's N getppid calls are all there (and B's are in the operator's ring);
 *  - the sched_switches with A on a side are the same in both rings, one for one in time
 *    order, and in the tenant's the other side (B among others) has tid, prio and comm zeroed
 *    and the record the redacted flag (the header's tid and pid too when A is the next task);
 *    at least one of them is a switch between A and B;
 *  - wakeups: A waking B keeps A in the header and zeroes the woken side; B waking A keeps A
 *    and zeroes the header;
 *  - a third session, unscoped with the predicate {"under": ["container", a]}, records A's
 *    system calls and none of B's, and keeps the switches between them whole;
 *  - bad scope paths are -EINVAL with a message.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/cgroup.h"
#include "rec/session.h"
#include "workload.h"
#include "t.h"

#define N 100 /* getppid calls per child */
#define R 300 /* ping-pong rounds */

static char base[64]; /* "/snt-rectenant-<pid>" */
static char str[SN_REC_STR_MAX];
static int ab[2], ba[2]; /* A -> B, B -> A */
static int cpu_pin;

static bool cg_path(const char *rel, char *out, size_t len)
{
    return sn_cgroup_root() &&
           (size_t)snprintf(out, len, "%s%s%s", sn_cgroup_root(), base, rel) < len;
}

static bool cg_move(pid_t pid, const char *rel)
{
    char full[1024], text[32];
    int fd, n;
    if (!cg_path(rel, full, sizeof(full) - 16))
        return false;
    strcat(full, "/cgroup.procs");
    n = snprintf(text, sizeof(text), "%d", (int)pid);
    fd = open(full, O_WRONLY | O_CLOEXEC);
    bool ok = fd >= 0 && write(fd, text, (size_t)n) == n;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void cg_rmdir(const char *rel)
{
    char full[1024];
    if (!cg_path(rel, full, sizeof(full)))
        return;
    for (int tries = 0; tries < 200 && rmdir(full) != 0 && errno == EBUSY; tries++)
        usleep(5000); /* the last task may still be leaving */
}

static void player(void *arg)
{
    int is_a = arg != NULL;
    cpu_set_t set;
    char b = 'x';

    CPU_ZERO(&set);
    CPU_SET(cpu_pin, &set);
    sched_setaffinity(0, sizeof(set), &set);
    prctl(PR_SET_NAME, is_a ? "snt-tenant-a" : "snt-tenant-b", 0, 0, 0);
    for (int i = 0; i < N; i++)
        syscall(SYS_getppid);
    for (int i = 0; i < R; i++) {
        if (is_a) {
            if (write(ab[1], &b, 1) != 1 || read(ba[0], &b, 1) != 1)
                _exit(1);
        } else {
            if (read(ab[0], &b, 1) != 1 || write(ba[1], &b, 1) != 1)
                _exit(1);
        }
    }
}

struct sw {
    uint64_t ts;
    uint8_t flags;
    struct sn_rec_event ev;
};

static int cmp_sw(const void *x, const void *y)
{
    const struct sw *a = x, *b = y;
    return (a->ts > b->ts) - (a->ts < b->ts);
}

/* The switches of snap with tid on a side, in time order (*n of them; free the array). */
static struct sw *switches_of(const struct sn_rec_snap *snap, pid_t tid, size_t *n)
{
    struct sw *v = NULL;
    size_t cap = 0;

    *n = 0;
    for (unsigned cpu = 0; cpu < snap->ncpu; cpu++)
        for (size_t k = 0; k < snap->cpu[cpu].nrec; k++) {
            const struct sn_rec_slot *r = sn_rec_snap_record(snap, cpu, k);
            struct sn_rec_event ev;
            if (sn_rec_slot_decode(r, cpu, &ev, str) != 0 || ev.type != SN_REC_SCHED_SWITCH ||
                (ev.u.sw.prev_tid != tid && ev.u.sw.next_tid != tid))
                continue;
            if (*n == cap) {
                cap = cap ? 2 * cap : 256;
                struct sw *nv = realloc(v, cap * sizeof(*v));
                if (!nv)
                    break;
                v = nv;
            }
            v[(*n)++] = (struct sw){r->ts, r->flags, ev};
        }
    if (*n > 1)
        qsort(v, *n, sizeof(*v), cmp_sw);
    return v;
}

static bool zero16(const char *s)
{
    static const char z[SN_REC_COMM_LEN];
    return memcmp(s, z, SN_REC_COMM_LEN) == 0;
}

static void test_scope(void)
{
    struct sn_rec_session *ts = NULL, *os = NULL;
    struct sn_rec_consumer *tc = NULL, *oc = NULL;
    struct sn_rec_snap tsnap, osnap;
    char scope_a[128], pred[256], why[256] = "";
    const char *scope[1] = {scope_a};
    struct t_gated ga, gb;
    pid_t a, b;

    cpu_pin = sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 1 : 0;
    T_REQUIRE(pipe(ab) == 0 && pipe(ba) == 0);
    ga = t_gated_start(player, (void *)1);
    gb = t_gated_start(player, NULL);
    a = ga.pid;
    b = gb.pid;
    T_REQUIRE(a > 0 && b > 0);
    T_REQUIRE(cg_move(a, "/a") && cg_move(b, "/b"));

    snprintf(scope_a, sizeof(scope_a), "%s/a", base);
    struct sn_rec_session_opts to = {.groups = SN_REC_G_SYSCALLS | SN_REC_G_SCHED,
                                     .size_per_cpu = 4 << 20,
                                     .scope = scope,
                                     .nscope = 1,
                                     .why = why,
                                     .whylen = sizeof(why)};
    int rc = sn_rec_session_open(&ts, &to);
    t_note("tenant session: %s %s", strerror(-rc), why);
    T_REQUIRE(rc == 0);
    T_EQ(sn_rec_session_refresh_scope(ts), 1); /* a, its one cgroup */
    snprintf(pred, sizeof(pred), "{\"or\":[{\"eq\":[\"pid\",\"%d\"]},{\"eq\":[\"pid\",\"%d\"]}]}",
             (int)a, (int)b);
    json_t *p = json_loads(pred, 0, NULL);
    struct sn_rec_session_opts oo = {.groups = SN_REC_G_SYSCALLS | SN_REC_G_SCHED,
                                     .size_per_cpu = 4 << 20,
                                     .predicate = p,
                                     .why = why,
                                     .whylen = sizeof(why)};
    rc = sn_rec_session_open(&os, &oo);
    json_decref(p);
    t_note("operator session: %s %s", strerror(-rc), why);
    T_REQUIRE(rc == 0);
    /* and a third: the operator's, with an "under" predicate on a (no scope) */
    struct sn_rec_session *us = NULL;
    struct sn_rec_consumer *uc = NULL;
    snprintf(pred, sizeof(pred), "{\"under\":[\"container\",\"%s\"]}", scope_a);
    p = json_loads(pred, 0, NULL);
    oo.predicate = p;
    rc = sn_rec_session_open(&us, &oo);
    json_decref(p);
    t_note("under session: %s %s", strerror(-rc), why);
    T_REQUIRE(rc == 0);
    T_REQUIRE(sn_rec_consumer_new(&tc, sn_rec_session_view(ts), 1) == 0);
    T_REQUIRE(sn_rec_consumer_new(&oc, sn_rec_session_view(os), 1) == 0);
    T_REQUIRE(sn_rec_consumer_new(&uc, sn_rec_session_view(us), 1) == 0);

    /* both gates first: each child waits for the other */
    T_REQUIRE(write(ga.go, "x", 1) == 1 && write(gb.go, "x", 1) == 1);
    close(ga.go);
    close(gb.go);
    int sa = -1, sb = -1;
    waitpid(a, &sa, 0);
    waitpid(b, &sb, 0);
    T_EQ(sa, 0);
    T_EQ(sb, 0);
    T_REQUIRE(sn_rec_snapshot(tc, sn_rec_session_view(ts), &tsnap) == 0);
    T_REQUIRE(sn_rec_snapshot(oc, sn_rec_session_view(os), &osnap) == 0);
    struct sn_rec_snap usnap;
    T_REQUIRE(sn_rec_snapshot(uc, sn_rec_session_view(us), &usnap) == 0);
    T_EQ(tsnap.overwritten + osnap.overwritten, 0);

    /* system calls: A's, never B's; nothing names B */
    long a_getppid = 0, b_getppid_op = 0, names_b = 0, other_sys = 0;
    long woke_b = 0, woken_by_b = 0, wake_bad = 0;
    for (unsigned cpu = 0; cpu < tsnap.ncpu; cpu++)
        for (size_t k = 0; k < tsnap.cpu[cpu].nrec; k++) {
            const struct sn_rec_slot *r = sn_rec_snap_record(&tsnap, cpu, k);
            struct sn_rec_event ev;
            T_REQUIRE(sn_rec_slot_decode(r, cpu, &ev, str) == 0);
            bool red = r->flags & SN_REC_F_REDACTED;
            names_b += ev.pid == b || ev.tid == b;
            switch (ev.type) {
            case SN_REC_SYS_ENTER:
            case SN_REC_SYS_EXIT:
                other_sys += ev.pid != a;
                a_getppid += ev.type == SN_REC_SYS_EXIT && ev.u.sys.nr == SYS_getppid;
                break;
            case SN_REC_SCHED_SWITCH:
                names_b += ev.u.sw.prev_tid == b || ev.u.sw.next_tid == b ||
                           strncmp(ev.u.sw.prev_comm, "snt-tenant-b", 16) == 0 ||
                           strncmp(ev.u.sw.next_comm, "snt-tenant-b", 16) == 0;
                break;
            case SN_REC_SCHED_WAKEUP:
            case SN_REC_SCHED_WAKEUP_NEW:
                names_b +=
                    ev.u.wakeup.tid == b || strncmp(ev.u.wakeup.comm, "snt-tenant-b", 16) == 0;
                if (ev.pid == a && ev.u.wakeup.tid == 0 && zero16(ev.u.wakeup.comm) && red)
                    woke_b++; /* A woke someone of another tenant: B */
                else if (ev.u.wakeup.tid == a && ev.pid == 0 && ev.tid == 0 && red)
                    woken_by_b++;
                else if (ev.pid != a && ev.u.wakeup.tid != a)
                    wake_bad++;
                break;
            }
        }
    for (unsigned cpu = 0; cpu < osnap.ncpu; cpu++)
        for (size_t k = 0; k < osnap.cpu[cpu].nrec; k++) {
            struct sn_rec_event ev;
            T_REQUIRE(sn_rec_slot_decode(sn_rec_snap_record(&osnap, cpu, k), cpu, &ev, str) == 0);
            b_getppid_op += ev.type == SN_REC_SYS_EXIT && ev.pid == b && ev.u.sys.nr == SYS_getppid;
        }
    /* the "under" predicate: A's calls, none of B's, nothing redacted; switches with A on a
     * side kept whole */
    long u_a_getppid = 0, u_b = 0, u_red = 0, u_sw_ab = 0;
    for (unsigned cpu = 0; cpu < usnap.ncpu; cpu++)
        for (size_t k = 0; k < usnap.cpu[cpu].nrec; k++) {
            const struct sn_rec_slot *r = sn_rec_snap_record(&usnap, cpu, k);
            struct sn_rec_event ev;
            T_REQUIRE(sn_rec_slot_decode(r, cpu, &ev, str) == 0);
            u_red += (r->flags & SN_REC_F_REDACTED) != 0;
            if (ev.type == SN_REC_SYS_EXIT || ev.type == SN_REC_SYS_ENTER) {
                u_b += ev.pid != a;
                u_a_getppid += ev.type == SN_REC_SYS_EXIT && ev.u.sys.nr == SYS_getppid;
            }
            if (ev.type == SN_REC_SCHED_SWITCH)
                u_sw_ab += (ev.u.sw.prev_tid == a && ev.u.sw.next_tid == b) ||
                           (ev.u.sw.prev_tid == b && ev.u.sw.next_tid == a);
        }
    t_note("under predicate: A's getppid %ld, others' calls %ld, redacted %ld, A-B switches %ld",
           u_a_getppid, u_b, u_red, u_sw_ab);
    T_EQ(u_a_getppid, N);
    T_EQ(u_b, 0);
    T_EQ(u_red, 0);
    T_OK(u_sw_ab >= 1);
    sn_rec_snap_free(&usnap);
    sn_rec_consumer_free(uc);
    sn_rec_session_destroy(us);

    t_note("tenant: A's getppid %ld, other sys %ld, naming B %ld; wakeups: A woke B %ld, B woke "
           "A %ld, unexplained %ld; operator: B's getppid %ld",
           a_getppid, other_sys, names_b, woke_b, woken_by_b, wake_bad, b_getppid_op);
    T_EQ(a_getppid, N);
    T_EQ(b_getppid_op, N);
    T_EQ(other_sys, 0);
    T_EQ(names_b, 0);
    T_OK(woke_b >= 1);
    T_OK(woken_by_b >= 1);
    T_EQ(wake_bad, 0);

    /* switches with A on a side: the same in both rings, the other side redacted in the
     * tenant's */
    size_t nt, no, ab_switches = 0, mismatch = 0;
    struct sw *tv = switches_of(&tsnap, a, &nt), *ov = switches_of(&osnap, a, &no);
    t_note("switches with A: tenant %zu, operator %zu", nt, no);
    T_EQ(nt, no);
    T_OK(nt >= 2);
    for (size_t i = 0; i < nt && i < no; i++) {
        const struct sn_rec_event *t = &tv[i].ev, *o = &ov[i].ev;
        bool a_prev = o->u.sw.prev_tid == a, ok;
        ab_switches += o->u.sw.prev_tid == b || o->u.sw.next_tid == b;
        ok = (tv[i].flags & SN_REC_F_REDACTED) && t->u.sw.prev_state == o->u.sw.prev_state;
        if (a_prev)
            ok = ok && t->u.sw.prev_tid == a && t->u.sw.prev_prio == o->u.sw.prev_prio &&
                 memcmp(t->u.sw.prev_comm, o->u.sw.prev_comm, 16) == 0 && t->u.sw.next_tid == 0 &&
                 t->u.sw.next_prio == 0 && zero16(t->u.sw.next_comm) && t->tid == a;
        else
            ok = ok && t->u.sw.next_tid == a && t->u.sw.next_prio == o->u.sw.next_prio &&
                 memcmp(t->u.sw.next_comm, o->u.sw.next_comm, 16) == 0 && t->u.sw.prev_tid == 0 &&
                 t->u.sw.prev_prio == 0 && zero16(t->u.sw.prev_comm) && t->tid == 0 && t->pid == 0;
        mismatch += !ok;
        if (!ok)
            fprintf(
                stderr,
                "mismatch %zu: operator %d/%d(%.16s) -> %d/%d(%.16s) state %lld; tenant flags %d "
                "tid %d pid %d: %d/%d(%.16s) -> %d/%d(%.16s) state %lld\n",
                i, o->u.sw.prev_tid, o->u.sw.prev_prio, o->u.sw.prev_comm, o->u.sw.next_tid,
                o->u.sw.next_prio, o->u.sw.next_comm, (long long)o->u.sw.prev_state, tv[i].flags,
                t->tid, t->pid, t->u.sw.prev_tid, t->u.sw.prev_prio, t->u.sw.prev_comm,
                t->u.sw.next_tid, t->u.sw.next_prio, t->u.sw.next_comm,
                (long long)t->u.sw.prev_state);
    }
    t_note("switches between A and B: %zu; mismatched %zu", ab_switches, mismatch);
    T_EQ(mismatch, 0);
    T_OK(ab_switches >= 1);
    free(tv);
    free(ov);

    sn_rec_snap_free(&tsnap);
    sn_rec_snap_free(&osnap);
    sn_rec_consumer_free(tc);
    sn_rec_consumer_free(oc);
    sn_rec_session_destroy(ts);
    sn_rec_session_destroy(os);
    close(ab[0]);
    close(ab[1]);
    close(ba[0]);
    close(ba[1]);
}

static void test_bad_scopes(void)
{
    static const char *const bad[] = {"relative/path", "/x/../y", "/x/./y", ""};
    struct sn_rec_session *s = NULL;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char why[256] = "";
        const char *scope[1] = {bad[i]};
        struct sn_rec_session_opts o = {.groups = SN_REC_G_SYSCALLS,
                                        .size_per_cpu = 64 << 10,
                                        .scope = scope,
                                        .nscope = 1,
                                        .why = why,
                                        .whylen = sizeof(why)};
        T_EQ(sn_rec_session_open(&s, &o), -EINVAL);
        T_OK(s == NULL);
        t_note("\"%s\": %s", bad[i], why);
        T_OK(strncmp(why, "bad scope path: ", 16) == 0);
    }
}

static void no_cgroups(void)
{
    T_OK(0);
}

int main(int argc, char **argv)
{
    char full[1024];

    t_init(argc, argv);
    snprintf(base, sizeof(base), "/snt-rectenant-%d", (int)getpid());
    if (!cg_path("", full, sizeof(full)) || (mkdir(full, 0755) != 0 && errno != EEXIST) ||
        !cg_path("/a", full, sizeof(full)) || mkdir(full, 0755) != 0 ||
        !cg_path("/b", full, sizeof(full)) || mkdir(full, 0755) != 0) {
        t_note("cannot make the test's cgroups under %s%s (root and cgroup v2 needed)",
               sn_cgroup_root() ? sn_cgroup_root() : "(no cgroup2)", base);
        t_run("the test's cgroups", no_cgroups);
        return t_done();
    }
    t_run("scoped to a: none of b's events, the other side of sched events redacted", test_scope);
    t_run("bad scope paths: -EINVAL with a message", test_bad_scopes);
    cg_rmdir("/a");
    cg_rmdir("/b");
    cg_rmdir("");
    return t_done();
}
