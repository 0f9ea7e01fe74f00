/*
 * The recorder's tcp, faults and usdt groups against the real kernel (root and BPF; CI runs it
 * as root, so it fails rather than skips when BPF cannot load), each snapshot written as CTF and
 * read back by babeltrace2 (python3-bt2, support/rec_trace.h):
 *  - tcp: C connections to a loopback listener the test opens give exactly C net_tcp_connect
 *    (sport the client's port, dport the listener's, family AF_INET, addresses ::ffff:127.0.0.1)
 *    and C net_tcp_accept (the ports the other way round) among the host's events; a child whose
 *    cgroup's incoming packets a cgroup_skb program of the test drops gets net_tcp_retransmit_skb
 *    events for its connection (at least 2 in 1.5 s: RTO 200 ms, doubling), which a session
 *    scoped to its cgroup records too, and nothing else (a TCP event is its socket's cgroup's);
 *  - faults: touching P fresh pages of an mmap gives at least P x86_exceptions_page_fault_user
 *    of the test's tid at those addresses, every page at least once, each a user write
 *    (error_code bits 2 and 4);
 *  - usdt: sdt_prog (support/sdt_prog.c, its path in SN_SDT_PROG) making H iterations gives
 *    exactly H usdt_sonde_test_work__start events with arg0 = 0 .. H-1 in order, and H of the
 *    semaphore-guarded sem__done, recorded by one session with both probes; bad probe specs
 *    are -EINVAL, a probe the binary lacks -ENOENT, both with a message; and sdt_args
 *    (support/sdt_args.c) gives H hits of a probe of 7 arguments, every value exact;
 *  - block, with no predicate nor scope: the test's 4 O_DIRECT writes of 4 KiB, each issued (its
 *    tid, 4096 bytes, a write) and completed (its sector, 8 sectors);
 *  - the group bits: a session of one group loads only that group's programs.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/stat.h>

#include "agent/cgroup.h"
#include "rec/session.h"
#include "rec_trace.h"
#include "t.h"

#define C 3  /* connections */
#define P 64 /* pages touched */
#define H 50 /* sdt_prog iterations */

static int open_session(struct sn_rec_session **s, unsigned groups, const char *pred,
                        const struct sn_rec_usdt *u, size_t nu)
{
    char why[256] = "";
    json_t *p = pred ? json_loads(pred, 0, NULL) : NULL;
    struct sn_rec_session_opts o = {.groups = groups,
                                    .size_per_cpu = 4 << 20,
                                    .predicate = p,
                                    .usdt = u,
                                    .nusdt = nu,
                                    .why = why,
                                    .whylen = sizeof(why)};
    int rc = sn_rec_session_open(s, &o);

    if (rc)
        t_note("open: %s: %s", strerror(-rc), why);
    json_decref(p);
    return rc;
}

/* Snapshot of s since c's cursors, read back through babeltrace2 into *t. */
static void read_back(struct sn_rec_session *s, struct sn_rec_consumer *c, struct t_rec_trace *t,
                      const char *const *probes, const unsigned *nargs, size_t np)
{
    struct sn_rec_snap snap;

    T_REQUIRE(sn_rec_snapshot(c, sn_rec_session_view(s), &snap) == 0);
    t_note("snapshot: %lu records, %lu overwritten", (unsigned long)snap.records,
           (unsigned long)snap.overwritten);
    T_EQ(t_rec_trace_read(&snap, t, probes, nargs, np), (long)snap.records);
    T_EQ(t->n, (size_t)snap.records);
    sn_rec_snap_free(&snap);
}

static void test_tcp(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    struct sn_rec_session *s = NULL;
    struct sn_rec_consumer *c = NULL;
    struct t_rec_trace t;
    int lfd, cport[C], lport, conns = 0, accepts = 0, other = 0;
    const char v4[] = "0,0,0,0,0,0,0,0,0,0,255,255,127,0,0,1";
    char b[128];

    lfd = socket(AF_INET, SOCK_STREAM, 0);
    T_REQUIRE(lfd >= 0 && bind(lfd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(lfd, C) == 0);
    T_REQUIRE(getsockname(lfd, (struct sockaddr *)&a, &al) == 0);
    lport = ntohs(a.sin_port);
    T_REQUIRE(open_session(&s, SN_REC_G_TCP, NULL, NULL, 0) == 0);
    T_REQUIRE(sn_rec_consumer_new(&c, sn_rec_session_view(s), 1) == 0);
    for (int i = 0; i < C; i++) {
        struct sockaddr_in me;
        socklen_t ml = sizeof(me);
        int fd = socket(AF_INET, SOCK_STREAM, 0), afd;

        T_REQUIRE(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
        T_REQUIRE(getsockname(fd, (struct sockaddr *)&me, &ml) == 0);
        cport[i] = ntohs(me.sin_port);
        afd = accept(lfd, NULL, NULL);
        T_REQUIRE(afd >= 0);
        close(afd);
        close(fd);
    }
    close(lfd);
    read_back(s, c, &t, NULL, NULL, 0);
    for (size_t i = 0; i < t.n; i++) {
        const struct t_rec_ev *e = &t.ev[i];
        int sp = (int)t_rec_field(e, "sport", NULL), dp = (int)t_rec_field(e, "dport", NULL);
        bool ours = false;
        const char *sa = t_rec_field_str(e, "saddr", b, sizeof(b));
        bool lo = sa && strcmp(sa, v4) == 0 && t_rec_field(e, "family", NULL) == AF_INET &&
                  t_rec_field(e, "newstate", NULL) == 1;

        for (int k = 0; k < C; k++) {
            if (strcmp(e->name, "net_tcp_connect") == 0 && sp == cport[k] && dp == lport) {
                conns += lo && t_rec_field(e, "oldstate", NULL) == 2;
                ours = true;
            }
            if (strcmp(e->name, "net_tcp_accept") == 0 && sp == lport && dp == cport[k]) {
                accepts += lo && t_rec_field(e, "oldstate", NULL) == 3;
                ours = true;
            }
        }
        other += !ours;
    }
    t_note("connects %d, accepts %d, other connections' events %d", conns, accepts, other);
    T_EQ(conns, C);
    T_EQ(accepts, C);
    t_rec_trace_free(&t);
    sn_rec_consumer_free(c);
    sn_rec_session_destroy(s);
}

/* A cgroup_skb program that drops every packet (r0 = 0; exit). */
static int drop_prog(void)
{
    struct bpf_insn insn[2] = {{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0},
                               {.code = BPF_JMP | BPF_EXIT}};

    return bpf_prog_load(BPF_PROG_TYPE_CGROUP_SKB, "snt_drop", "GPL", insn, 2, NULL);
}

/* tcp_retransmit_skb: a child in a cgroup of its own connects to the test's listener, then the
 * test drops everything the cgroup receives (a cgroup_skb ingress program) and the child sends
 * a byte: no ACK reaches it, so TCP retransmits it (after its RTO, 200 ms, then doubling). */
static void test_tcp_retransmit(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    struct sn_rec_session *s = NULL;
    struct sn_rec_consumer *c = NULL;
    struct t_rec_trace t;
    char cg[512], procs[600], text[32];
    int lfd, cgfd, pfd = -1, up[2], go[2], lport, cport = 0, retrans = 0, bad = 0;
    pid_t pid;

    T_REQUIRE(sn_cgroup_root() != NULL);
    snprintf(cg, sizeof(cg), "%s/snt-recgroups-%d", sn_cgroup_root(), (int)getpid());
    T_REQUIRE(mkdir(cg, 0755) == 0);
    snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg);
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    T_REQUIRE(lfd >= 0 && bind(lfd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(lfd, 1) == 0);
    T_REQUIRE(getsockname(lfd, (struct sockaddr *)&a, &al) == 0);
    lport = ntohs(a.sin_port);
    T_REQUIRE(pipe(up) == 0 && pipe(go) == 0);
    pid = fork();
    T_REQUIRE(pid >= 0);
    if (pid == 0) { /* into the cgroup, then a socket (its cgroup is its creator's) */
        struct sockaddr_in me;
        socklen_t ml = sizeof(me);
        int fd = open(procs, O_WRONLY), n = snprintf(text, sizeof(text), "%d", (int)getpid());
        char b = 'x';

        if (fd < 0 || write(fd, text, (size_t)n) != n)
            _exit(2);
        close(fd);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
            getsockname(fd, (struct sockaddr *)&me, &ml) != 0)
            _exit(3);
        n = ntohs(me.sin_port);
        if (write(up[1], &n, sizeof(n)) != sizeof(n) || read(go[0], &b, 1) != 1)
            _exit(4);
        if (write(fd, &b, 1) != 1) /* sent, but the ACK never reaches it */
            _exit(5);
        usleep(1500000); /* RTO 200 ms, then 400, 800: at least 2 retransmissions */
        _exit(0);
    }
    close(up[1]);
    close(go[0]);
    T_OK(read(up[0], &cport, sizeof(cport)) == sizeof(cport));
    int afd = accept(lfd, NULL, NULL);
    cgfd = open(cg, O_RDONLY | O_DIRECTORY);
    pfd = drop_prog();
    T_OK(afd >= 0 && cgfd >= 0 && pfd >= 0);
    T_OK(bpf_prog_attach(pfd, cgfd, BPF_CGROUP_INET_INGRESS, 0) == 0);
    T_REQUIRE(open_session(&s, SN_REC_G_TCP, NULL, NULL, 0) == 0);
    T_REQUIRE(sn_rec_consumer_new(&c, sn_rec_session_view(s), 1) == 0);
    /* and a tenant's session, scoped to the child's cgroup: TCP events go by their socket's */
    struct sn_rec_session *ts = NULL;
    struct sn_rec_consumer *tc = NULL;
    char rel[128], why[256] = "";
    const char *scope[1] = {rel};
    snprintf(rel, sizeof(rel), "/snt-recgroups-%d", (int)getpid());
    struct sn_rec_session_opts to = {.groups = SN_REC_G_TCP,
                                     .size_per_cpu = 1 << 20,
                                     .scope = scope,
                                     .nscope = 1,
                                     .why = why,
                                     .whylen = sizeof(why)};
    T_REQUIRE(sn_rec_session_open(&ts, &to) == 0);
    T_REQUIRE(sn_rec_consumer_new(&tc, sn_rec_session_view(ts), 1) == 0);
    T_OK(write(go[1], "g", 1) == 1);
    int st = -1;
    waitpid(pid, &st, 0);
    T_OK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    read_back(s, c, &t, NULL, NULL, 0);
    for (size_t i = 0; i < t.n; i++) {
        const struct t_rec_ev *e = &t.ev[i];
        if (strcmp(e->name, "net_tcp_retransmit_skb") != 0 ||
            t_rec_field(e, "sport", NULL) != cport || t_rec_field(e, "dport", NULL) != lport)
            continue;
        retrans++;
        bad += t_rec_field(e, "state", NULL) != 1 || t_rec_field(e, "family", NULL) != AF_INET ||
               t_rec_field(e, "skbaddr", NULL) == 0 || t_rec_field(e, "err", NULL) != 0;
    }
    t_note("retransmissions of the child's connection %d (bad %d)", retrans, bad);
    T_OK(retrans >= 2);
    T_EQ(bad, 0);
    t_rec_trace_free(&t);
    /* the tenant's: the child's retransmissions, and nothing of another socket */
    int tretrans = 0, tother = 0;
    read_back(ts, tc, &t, NULL, NULL, 0);
    for (size_t i = 0; i < t.n; i++) {
        const struct t_rec_ev *e = &t.ev[i];
        if (strcmp(e->name, "net_tcp_retransmit_skb") == 0 &&
            t_rec_field(e, "sport", NULL) == cport)
            tretrans++;
        else
            tother++;
    }
    t_note("scoped: retransmissions %d, other events %d", tretrans, tother);
    T_OK(tretrans >= 2);
    T_EQ(tother, 0);
    sn_rec_consumer_free(tc);
    sn_rec_session_destroy(ts);
    bpf_prog_detach2(pfd, cgfd, BPF_CGROUP_INET_INGRESS);
    t_rec_trace_free(&t);
    sn_rec_consumer_free(c);
    sn_rec_session_destroy(s);
    close(pfd);
    close(cgfd);
    if (afd >= 0)
        close(afd);
    close(lfd);
    close(up[0]);
    close(go[1]);
    for (int tries = 0; tries < 200 && rmdir(cg) != 0 && errno == EBUSY; tries++)
        usleep(10000);
}

static void test_faults(void)
{
    struct sn_rec_session *s = NULL;
    struct sn_rec_consumer *c = NULL;
    struct t_rec_trace t;
    char pred[64];
    int hit[P] = {0}, faults = 0, not_write = 0, pages = 0;
    long pg = sysconf(_SC_PAGESIZE);
    char *m =
        mmap(NULL, (size_t)(P * pg), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    T_REQUIRE(m != MAP_FAILED);
    snprintf(pred, sizeof(pred), "{\"eq\":[\"pid\",\"%d\"]}", (int)getpid());
    T_REQUIRE(open_session(&s, SN_REC_G_FAULTS, pred, NULL, 0) == 0);
    T_REQUIRE(sn_rec_consumer_new(&c, sn_rec_session_view(s), 1) == 0);
    for (int i = 0; i < P; i++)
        ((volatile char *)m)[i * pg] = 1;
    read_back(s, c, &t, NULL, NULL, 0);
    for (size_t i = 0; i < t.n; i++) {
        const struct t_rec_ev *e = &t.ev[i];
        uint64_t addr = (uint64_t)t_rec_field(e, "address", NULL);

        if (strcmp(e->name, "x86_exceptions_page_fault_user") != 0 || e->tid != (int)getpid() ||
            addr < (uint64_t)m || addr >= (uint64_t)m + (uint64_t)(P * pg))
            continue;
        faults++;
        hit[(addr - (uint64_t)m) / (uint64_t)pg]++;
        not_write += (t_rec_field(e, "error_code", NULL) & 6) != 6;
    }
    for (int i = 0; i < P; i++)
        pages += hit[i] > 0;
    t_note("faults in the mapping %d, pages faulted %d, not a user write %d", faults, pages,
           not_write);
    T_OK(faults >= P);
    T_EQ(pages, P);
    T_EQ(not_write, 0);
    munmap(m, (size_t)(P * pg));
    t_rec_trace_free(&t);
    sn_rec_consumer_free(c);
    sn_rec_session_destroy(s);
}

static void test_usdt(void)
{
    const char *prog = getenv("SN_SDT_PROG");
    struct sn_rec_session *s = NULL;
    struct sn_rec_consumer *c = NULL;
    struct t_rec_trace t;
    const char *const probes[2] = {"sonde_test:work__start", "sonde_test:sem__done"};
    unsigned nargs[2];
    char cmd[700], out[64], err[256];
    int starts = 0, dones = 0, bad = 0;

    T_REQUIRE(prog != NULL);
    struct sn_rec_usdt u[2] = {{prog, "sonde_test", "work__start"},
                               {prog, "sonde_test", "sem__done"}};
    for (int i = 0; i < 2; i++) {
        int n = sn_rec_usdt_nargs(prog, "sonde_test", u[i].probe);
        T_EQ(n, 1);
        nargs[i] = n > 0 ? (unsigned)n : 0;
    }
    T_EQ(sn_rec_usdt_nargs(prog, "sonde_test", "nope"), -ENOENT);
    T_REQUIRE(open_session(&s, SN_REC_G_USDT, NULL, u, 2) == 0);
    T_REQUIRE(sn_rec_consumer_new(&c, sn_rec_session_view(s), 1) == 0);
    snprintf(cmd, sizeof(cmd), "%s %d 0", prog, H);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    read_back(s, c, &t, probes, nargs, 2);
    for (size_t i = 0; i < t.n; i++) {
        const struct t_rec_ev *e = &t.ev[i];
        int found = 0;
        int64_t a0 = t_rec_field(e, "arg0", &found);

        if (strcmp(e->name, "usdt_sonde_test_work__start") == 0)
            bad += !found || a0 != starts++;
        else if (strcmp(e->name, "usdt_sonde_test_sem__done") == 0)
            bad += !found || a0 != dones++;
        else
            bad++;
    }
    t_note("work__start %d, sem__done %d, bad %d", starts, dones, bad);
    T_EQ(starts, H);
    T_EQ(dones, H);
    T_EQ(bad, 0);
    t_rec_trace_free(&t);
    sn_rec_consumer_free(c);
    sn_rec_session_destroy(s);

    /* bad specs */
    struct sn_rec_usdt missing = {prog, "sonde_test", "nope"}, empty = {prog, "", "x"};
    T_EQ(open_session(&s, SN_REC_G_USDT, NULL, NULL, 0), -EINVAL);
    T_EQ(open_session(&s, SN_REC_G_SCHED, NULL, u, 1), -EINVAL);
    T_EQ(open_session(&s, SN_REC_G_USDT, NULL, &empty, 1), -EINVAL);
    T_OK(open_session(&s, SN_REC_G_USDT, NULL, &missing, 1) < 0);
    T_OK(s == NULL);
}

/* A probe of 7 arguments (support/sdt_args.c): the 3 past the fourth in the second slot. */
static void test_usdt_many(void)
{
    const char *prog = getenv("SN_SDT_ARGS");
    struct sn_rec_session *s = NULL;
    struct sn_rec_consumer *c = NULL;
    struct t_rec_trace t;
    const char *const probes[1] = {"sonde_rec:many"};
    unsigned nargs[1];
    char cmd[700], out[64], err[256];
    int hits = 0, bad = 0;

    T_REQUIRE(prog != NULL);
    struct sn_rec_usdt u = {prog, "sonde_rec", "many"};
    T_EQ(sn_rec_usdt_nargs(prog, "sonde_rec", "many"), 7);
    nargs[0] = 7;
    T_REQUIRE(open_session(&s, SN_REC_G_USDT, NULL, &u, 1) == 0);
    T_REQUIRE(sn_rec_consumer_new(&c, sn_rec_session_view(s), 1) == 0);
    snprintf(cmd, sizeof(cmd), "%s %d", prog, H);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    read_back(s, c, &t, probes, nargs, 1);
    for (size_t i = 0; i < t.n; i++) {
        const struct t_rec_ev *e = &t.ev[i];
        int64_t k = hits++;
        int64_t want[7] = {k, -k, 2 * k, k << 40, -7, 42, k + 1000000};
        char name[8];

        bad += strcmp(e->name, "usdt_sonde_rec_many") != 0;
        for (int j = 0; j < 7; j++) {
            int found = 0;
            snprintf(name, sizeof(name), "arg%d", j);
            bad += t_rec_field(e, name, &found) != want[j] || !found;
        }
    }
    t_note("hits %d, bad values %d", hits, bad);
    T_EQ(hits, H);
    T_EQ(bad, 0);
    t_rec_trace_free(&t);
    sn_rec_consumer_free(c);
    sn_rec_session_destroy(s);
}

/* block without predicate nor scope: the test's own O_DIRECT writes, each issued and completed
 * (every completion is kept then, whoever's) */
static void test_block_unscoped(void)
{
    struct sn_rec_session *s = NULL;
    struct sn_rec_consumer *c = NULL;
    struct t_rec_trace t;
    char path[600], *buf = NULL;
    uint64_t sec[4];
    int fd, issues = 0, completes = 0;

    snprintf(path, sizeof(path), "%s/rec_groups_block.%d", t_outdir(), (int)getpid());
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    T_REQUIRE(fd >= 0 && posix_memalign((void **)&buf, 4096, 4096) == 0);
    memset(buf, 'b', 4096);
    for (int i = 0; i < 4; i++)
        T_REQUIRE(write(fd, buf, 4096) == 4096);
    T_REQUIRE(fsync(fd) == 0);
    close(fd);
    fd = open(path, O_WRONLY | O_DIRECT);
    T_REQUIRE(fd >= 0);
    T_REQUIRE(open_session(&s, SN_REC_G_BLOCK, NULL, NULL, 0) == 0);
    T_REQUIRE(sn_rec_consumer_new(&c, sn_rec_session_view(s), 1) == 0);
    for (int i = 0; i < 4; i++)
        T_OK(pwrite(fd, buf, 4096, (off_t)i * 4096) == 4096);
    close(fd);
    read_back(s, c, &t, NULL, NULL, 0);
    for (size_t i = 0; i < t.n; i++) {
        const struct t_rec_ev *e = &t.ev[i];
        uint64_t x = (uint64_t)t_rec_field(e, "sector", NULL);

        if (strcmp(e->name, "block_rq_issue") == 0 && e->tid == (int)getpid() &&
            t_rec_field(e, "bytes", NULL) == 4096 && (t_rec_field(e, "rwbs", NULL) & 1) &&
            issues < 4)
            sec[issues++] = x;
        if (strcmp(e->name, "block_rq_complete") == 0)
            for (int k = 0; k < issues; k++)
                if (sec[k] == x && t_rec_field(e, "nr_sector", NULL) == 8) {
                    completes++;
                    sec[k] = UINT64_MAX;
                }
    }
    t_note("the test's issues %d, their completions %d", issues, completes);
    T_EQ(issues, 4);
    T_EQ(completes, 4);
    unlink(path);
    free(buf);
    t_rec_trace_free(&t);
    sn_rec_consumer_free(c);
    sn_rec_session_destroy(s);
}

/* Each group alone loads its programs only. */
static void test_group_progs(void)
{
    static const struct {
        unsigned g;
        int n;
    } want[] = {{SN_REC_G_PROC, 3}, {SN_REC_G_BLOCK, 3}, {SN_REC_G_TCP, 2}, {SN_REC_G_FAULTS, 2}};

    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        struct sn_rec_session *s = NULL;
        uint32_t ids[SN_REC_MAX_PROGS];

        T_REQUIRE(open_session(&s, want[i].g, NULL, NULL, 0) == 0);
        T_EQ(sn_rec_session_prog_ids(s, ids, SN_REC_MAX_PROGS), want[i].n);
        sn_rec_session_destroy(s);
    }
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("tcp: connects and accepts on loopback", test_tcp);
    t_run("tcp: retransmissions of a connection whose packets are dropped", test_tcp_retransmit);
    t_run("faults: a user fault per fresh page touched", test_faults);
    t_run("usdt: every hit with its argument, plain and semaphore probes", test_usdt);
    t_run("usdt: a probe of 7 arguments, each hit's values exact", test_usdt_many);
    t_run("block: every process's requests, issued and completed", test_block_unscoped);
    t_run("a group loads its programs only", test_group_progs);
    return t_done();
}
