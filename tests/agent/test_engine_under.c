/*
 * Cgroup scoping on the real kernel: instrumentations (CA create bodies, through the catalog
 * and the engine) with "under" predicates count exactly the system calls of processes in a
 * cgroup and its descendants, including a grandchild cgroup created after they were enabled;
 * a prefix that does not exist yet matches nothing until it is created; a bit freed by one
 * instrumentation and taken by another does not carry the first one's cgroups; more than 64
 * distinct prefixes are refused; and the kernel's cgroup_scope map is empty once nothing is
 * scoped.
 *
 * The workloads are gated children (tests/support/workload.h) started before anything is
 * enabled, so that the system call they sit in is never seen, and moved into the test's
 * cgroups (<cgroup2 root>/snt-under-<pid>/...) by writing their pid to cgroup.procs; released,
 * each makes N getppid calls and exits (and maybe a call or two of its runtime's: ASan's), so
 * instrumentations that also ask for getppid count exactly N per child, and the others exactly
 * the right children, at least N each. Everything is removed at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/cgroup.h"
#include "agent/engine.h"
#include "agent/probe.h"
#include "workload.h"
#include "t.h"

#define N 40 /* getppid calls per child */

static struct sn_engine *eng;
static char base[64]; /* "/snt-under-<pid>" */

/* --- cgroups ------------------------------------------------------------------------------ */

static char made[8][128]; /* relative paths created, removed in reverse order */
static int nmade;

static bool cg_mkdir(const char *rel)
{
    char full[1024];
    snprintf(full, sizeof(full), "%s%s%s", sn_cgroup_root(), base, rel);
    if (mkdir(full, 0755) != 0 && errno != EEXIST)
        return false;
    if (nmade < 8)
        snprintf(made[nmade++], sizeof(made[0]), "%s", rel);
    return true;
}

static bool cg_move(pid_t pid, const char *rel)
{
    char full[1024], text[32];
    int fd, n;
    snprintf(full, sizeof(full), "%s%s%s/cgroup.procs", sn_cgroup_root(), base, rel);
    n = snprintf(text, sizeof(text), "%d", (int)pid);
    fd = open(full, O_WRONLY | O_CLOEXEC);
    bool ok = fd >= 0 && write(fd, text, (size_t)n) == n;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void cg_cleanup(void)
{
    char full[1024];
    for (int i = nmade - 1; i >= 0; i--) {
        snprintf(full, sizeof(full), "%s%s%s", sn_cgroup_root(), base, made[i]);
        for (int tries = 0; tries < 200 && rmdir(full) != 0 && errno == EBUSY; tries++)
            usleep(5000); /* the last task may still be leaving */
    }
    nmade = 0;
}

/* --- children ------------------------------------------------------------------------------ */

static void getppids(void *arg)
{
    (void)arg;
    for (int i = 0; i < N; i++)
        syscall(SYS_getppid);
}

#define MAXKIDS 8
static struct t_gated kids[MAXKIDS];
static int nkids;

/* A gated child, parked in cgroup rel. */
static pid_t kid(const char *rel)
{
    struct t_gated g = t_gated_start(getppids, NULL);
    if (g.pid <= 0 || nkids >= MAXKIDS)
        return -1;
    kids[nkids++] = g;
    return cg_move(g.pid, rel) ? g.pid : -1;
}

static void release(pid_t pid)
{
    for (int i = 0; i < nkids; i++)
        if (kids[i].pid == pid) {
            t_gated_release(&kids[i]);
            kids[i] = kids[--nkids];
            return;
        }
}

static void kill_kids(void)
{
    while (nkids > 0) {
        kill(kids[nkids - 1].pid, SIGKILL);
        t_gated_release(&kids[nkids - 1]);
        nkids--;
    }
}

/* --- instrumentations and their counts by pid ---------------------------------------------- */

struct by_pid {
    int64_t pid;
    uint64_t count;
};

struct counts {
    int slot;
    uint64_t total;
    int n;
    struct by_pid by[16];
};

static int enable(const char *pred)
{
    char body[2048], why[512];
    struct sn_probe in;
    snprintf(body, sizeof(body),
             "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":[\"pid\"],"
             "\"predicate\":%s}",
             pred);
    json_t *j = json_loads(body, 0, NULL);
    int rc = j ? sn_probe_compile(j, "u", "host", 1000, &in, why, sizeof(why)) : -1;
    json_decref(j);
    if (rc < 0) {
        t_note("%s: %s", body, why);
        return rc;
    }
    rc = sn_engine_enable(eng, &in.spec);
    if (rc < 0)
        t_note("enable %s: %s", body, strerror(-rc));
    return rc;
}

static void on_cell(const struct sn_cell *c, void *arg)
{
    struct counts **cs = arg;
    for (; *cs; cs++) {
        struct counts *k = *cs;
        int64_t pid;
        if (c->slot != k->slot)
            continue;
        memcpy(&pid, c->key, sizeof(pid));
        k->total += c->count;
        if (k->n < 16)
            k->by[k->n++] = (struct by_pid){pid, c->count};
    }
}

static uint64_t count_of(const struct counts *k, pid_t pid)
{
    uint64_t n = 0;
    for (int i = 0; i < k->n; i++)
        if (k->by[i].pid == pid)
            n += k->by[i].count;
    return n;
}

/* Drains one second into the counts (NULL-terminated), which start from zero. */
static void collect(struct counts **cs)
{
    for (struct counts **c = cs; *c; c++) {
        int slot = (*c)->slot;
        memset(*c, 0, sizeof(**c));
        (*c)->slot = slot;
    }
    sn_engine_collect(eng, on_cell, cs, NULL);
}

/* k counted at least N calls of each of pids[0..n), and no other process's */
static bool just(const struct counts *k, const pid_t *pids, int n)
{
    bool ok = true;
    for (int i = 0; i < n; i++)
        ok &= count_of(k, pids[i]) >= N && count_of(k, pids[i]) <= N + 8;
    for (int i = 0; i < k->n; i++) {
        bool known = false;
        for (int j = 0; j < n; j++)
            known |= k->by[i].pid == pids[j];
        ok &= known;
    }
    return ok;
}

static void dump(const char *what, const struct counts *k)
{
    t_note("%s: %llu in all", what, (unsigned long long)k->total);
    for (int i = 0; i < k->n; i++)
        t_note("  pid %lld: %llu", (long long)k->by[i].pid, (unsigned long long)k->by[i].count);
}

/* --- cases --------------------------------------------------------------------------------- */

static void test_open(void)
{
    int rc = sn_engine_open(&eng);
    t_note("%s (run as root)", strerror(-rc));
    T_REQUIRE(rc == 0);
    T_REQUIRE(sn_cgroup_root() != NULL);
    snprintf(base, sizeof(base), "/snt-under-%d", (int)getpid());
    T_REQUIRE(cg_mkdir(""));
    T_EQ(sn_engine_scoped_cgroups(eng), 0);
}

static void test_scoped_counts(void)
{
    char pa[128], pl[128], pb[128], pred[512];
    struct counts a = {0}, a2 = {0}, later = {0}, b = {0};

    T_REQUIRE(eng != NULL);
    T_REQUIRE(cg_mkdir("/a") && cg_mkdir("/b"));
    /* children first: the read each sits in began before any probe */
    pid_t in_a = kid("/a"), in_b = kid("/b"), to_x = kid(""), to_later = kid("");
    pid_t in_a2 = kid("/a"), in_b2 = kid("/b");
    T_REQUIRE(in_a > 0 && in_b > 0 && to_x > 0 && to_later > 0 && in_a2 > 0 && in_b2 > 0);

    snprintf(pa, sizeof(pa), "{\"under\":[\"container\",\"%s/a\"]}", base);
    snprintf(pl, sizeof(pl), "{\"under\":[\"container\",\"%s/later\"]}", base);
    snprintf(pb, sizeof(pb), "{\"under\":[\"container\",\"%s/b/\"]}", base);
    a.slot = enable(pa);
    /* the same prefix, behind an and: the bpf_loop interpreter rather than the one-leaf path */
    snprintf(pred, sizeof(pred), "{\"and\":[{\"eq\":[\"syscall\",\"getppid\"]},%s]}", pa);
    a2.slot = enable(pred);
    later.slot = enable(pl); /* does not exist yet: accepted, matches nothing */
    T_REQUIRE(a.slot >= 0 && a2.slot >= 0 && later.slot >= 0);
    T_EQ(sn_engine_scoped_cgroups(eng), 1); /* a */

    /* a grandchild created after enabling, with a process moved in */
    T_REQUIRE(cg_mkdir("/a/x"));
    T_REQUIRE(cg_move(to_x, "/a/x"));
    struct counts *all[] = {&a, &a2, &later, NULL};
    collect(all); /* a clean second, and the refresh that finds a/x */
    T_EQ(sn_engine_scoped_cgroups(eng), 2);
    release(in_a);
    release(in_b);
    release(to_x);
    collect(all);
    dump("under a", &a);
    T_OK(just(&a, (pid_t[]){in_a, to_x}, 2));
    T_EQU(count_of(&a, in_b), 0);
    T_EQU(count_of(&a2, in_a), N);
    T_EQU(count_of(&a2, to_x), N);
    T_EQU(a2.total, 2 * N);
    T_EQU(later.total, 0);

    /* the missing prefix appears: it counts from the next collection on */
    T_REQUIRE(cg_mkdir("/later"));
    T_REQUIRE(cg_move(to_later, "/later"));
    collect(all);
    T_EQ(sn_engine_scoped_cgroups(eng), 3);
    release(to_later);
    collect(all);
    dump("under later", &later);
    T_OK(just(&later, (pid_t[]){to_later}, 1));
    T_EQU(a.total, 0);
    T_EQU(a2.total, 0);

    /* a's bit, freed, goes to b at once (no collection between): a's cgroups lose it first */
    T_EQ(sn_engine_disable(eng, a.slot), 0);
    T_EQ(sn_engine_disable(eng, a2.slot), 0);
    snprintf(pred, sizeof(pred), "{\"and\":[{\"eq\":[\"syscall\",\"getppid\"]},%s]}", pb);
    b.slot = enable(pred);
    T_REQUIRE(b.slot >= 0);
    struct counts *just_b[] = {&b, NULL};
    collect(just_b);
    release(in_a2);
    release(in_b2);
    collect(just_b);
    dump("under b", &b);
    T_EQU(count_of(&b, in_b2), N);
    T_EQU(count_of(&b, in_a2), 0);
    T_EQU(b.total, N);

    /* nothing scoped: the map empties with the next collection */
    T_EQ(sn_engine_disable(eng, b.slot), 0);
    T_EQ(sn_engine_disable(eng, later.slot), 0);
    T_OK(sn_engine_scoped_cgroups(eng) > 0);
    sn_engine_collect(eng, NULL, NULL, NULL);
    T_EQ(sn_engine_scoped_cgroups(eng), 0);
    kill_kids();
}

/* 64 distinct prefixes at most; shared ones cost nothing; released ones are free again */
static void test_bits(void)
{
    int slots[5];
    char pred[1024];

    T_REQUIRE(eng != NULL);
    for (int s = 0; s < 5; s++) {
        size_t n = (size_t)snprintf(pred, sizeof(pred), "{\"or\":[");
        for (int i = 0; i < 16; i++)
            n += (size_t)snprintf(pred + n, sizeof(pred) - n,
                                  "%s{\"under\":[\"container\",\"%s/p%d\"]}", i ? "," : "", base,
                                  s * 16 + i);
        snprintf(pred + n, sizeof(pred) - n, "]}");
        slots[s] = enable(pred);
    }
    T_OK(slots[0] >= 0 && slots[1] >= 0 && slots[2] >= 0 && slots[3] >= 0);
    T_EQ(slots[4], -ENOSPC); /* 65 to 80 */
    snprintf(pred, sizeof(pred), "{\"under\":[\"container\",\"%s/p63\"]}", base);
    int shared = enable(pred);
    T_OK(shared >= 0);
    T_EQ(sn_engine_disable(eng, slots[0]), 0);
    snprintf(pred, sizeof(pred), "{\"under\":[\"container\",\"%s/p64\"]}", base);
    int fresh = enable(pred);
    T_OK(fresh >= 0);
    for (int s = 1; s < 4; s++)
        sn_engine_disable(eng, slots[s]);
    sn_engine_disable(eng, shared);
    sn_engine_disable(eng, fresh);
    sn_engine_collect(eng, NULL, NULL, NULL);
    T_EQ(sn_engine_scoped_cgroups(eng), 0); /* none of those exist */
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("open, and the test's cgroup", test_open);
    t_run("under: exactly a's and a/x's calls, none of b's; a later prefix counts once made",
          test_scoped_counts);
    t_run("under: at most 64 distinct prefixes, shared and freed ones", test_bits);
    kill_kids();
    cg_cleanup();
    sn_engine_close(eng);
    return t_done();
}
