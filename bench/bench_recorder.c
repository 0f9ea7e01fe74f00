/*
 * make bench-recorder (root): what recording adds to a system call. A child pinned to CPU 1
 * (CPU 0 on one CPU) makes READS 1-byte reads of /dev/zero and reports its own CPU time
 * (getrusage: user + system, which holds up on a shared machine where wall clock does not);
 * each read is 2 events (sys_enter, sys_exit). Modes, interleaved over ROUNDS rounds, medians:
 * nothing attached, empty tp_btf programs, tp_btf programs reading the clock only, and a
 * recorder session (syscalls group, every process, REC_KIB per CPU: 4096), the same with a
 * predicate that holds for every event ({"ne": ["pid", "1"]}: the kernel fills pid and runs
 * the interpreter) and scoped to the reader's cgroup (a tenant's scope: one hash lookup). The
 * reader runs in a cgroup of its own (<cgroup2>/snb-recorder-<pid>) in every mode. Printed: ns
 * per read, ns added per event, and the ratios of docs/recorder.md ("Costs").
 *
 * First version (issue 17, session 1): ftrace, perf and LTTng-UST anchors and the snapshot and
 * live figures are to come.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "agent/cgroup.h"
#include "bench_util.h"
#include "rec/session.h"
#include "rec_anchor.skel.h"

enum { BARE, EMPTY, CLOCK, REC, REC_PRED, REC_SCOPE, NMODE };
static const char *mode_name[NMODE] = {
    "nothing attached", "empty tp_btf enter+exit", "tp_btf + bpf_ktime_get_ns",
    "recorder session", "recorder + predicate",    "recorder + tenant scope",
};

static char cg_rel[64];     /* the reader's cgroup, "/snb-recorder-<pid>" */
static char cg_procs[1024]; /* its cgroup.procs */

static uint64_t ring_kib = 4096; /* REC_KIB: the session's ring per CPU */

/* ns of CPU per read in a pinned child, or -1 */
static double run_reads(long reads, int cpu)
{
    int p[2];
    double ns = -1;

    if (pipe(p))
        return -1;
    pid_t c = fork();
    if (c == 0) {
        cpu_set_t set;
        char b;
        struct rusage ru;
        int fd = open("/dev/zero", O_RDONLY);

        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (fd < 0 || sched_setaffinity(0, sizeof(set), &set))
            _exit(1);
        int cg = open(cg_procs, O_WRONLY); /* into the reader's cgroup */
        if (cg < 0 || write(cg, "0", 1) != 1)
            _exit(4);
        close(cg);
        for (long i = 0; i < reads; i++)
            if (read(fd, &b, 1) != 1)
                _exit(2);
        getrusage(RUSAGE_SELF, &ru);
        double s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                   (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
        double v = s * 1e9 / (double)reads;
        if (write(p[1], &v, sizeof(v)) != sizeof(v))
            _exit(3);
        _exit(0);
    }
    close(p[1]);
    if (c < 0 || read(p[0], &ns, sizeof(ns)) != sizeof(ns))
        ns = -1;
    close(p[0]);
    if (c > 0)
        waitpid(c, NULL, 0);
    return ns;
}

static double one(int mode, long reads, int cpu)
{
    struct rec_anchor_bpf *a = NULL;
    struct sn_rec_session *s = NULL;
    double ns = -1;

    if (mode == EMPTY || mode == CLOCK) {
        a = rec_anchor_bpf__open();
        if (!a)
            return -1;
        bpf_program__set_autoload(a->progs.empty_enter, mode == EMPTY);
        bpf_program__set_autoload(a->progs.empty_exit, mode == EMPTY);
        bpf_program__set_autoload(a->progs.clock_enter, mode == CLOCK);
        bpf_program__set_autoload(a->progs.clock_exit, mode == CLOCK);
        if (rec_anchor_bpf__load(a) || rec_anchor_bpf__attach(a))
            goto out;
    } else if (mode >= REC) {
        const char *scope[1] = {cg_rel};
        json_t *pred = mode == REC_PRED ? json_pack("{s:[s,s]}", "ne", "pid", "1") : NULL;
        struct sn_rec_session_opts o = {.groups = SN_REC_G_SYSCALLS,
                                        .size_per_cpu = ring_kib << 10,
                                        .predicate = pred,
                                        .scope = scope,
                                        .nscope = mode == REC_SCOPE};
        int rc = sn_rec_session_open(&s, &o);
        json_decref(pred);
        if (rc)
            goto out;
    }
    ns = run_reads(reads, cpu);
out:
    rec_anchor_bpf__destroy(a);
    sn_rec_session_destroy(s);
    return ns;
}

int main(void)
{
    long reads = bench_env_int("READS", 500000);
    int rounds = bench_env_int("ROUNDS", 8);
    ring_kib = (uint64_t)bench_env_int("REC_KIB", 4096);
    int cpu = sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 1 : 0;
    double v[NMODE][64], med[NMODE];

    if (rounds > 64)
        rounds = 64;
    snprintf(cg_rel, sizeof(cg_rel), "/snb-recorder-%d", (int)getpid());
    char cg_dir[512];
    snprintf(cg_dir, sizeof(cg_dir), "%s%s", sn_cgroup_root() ? sn_cgroup_root() : "/nonexistent",
             cg_rel);
    snprintf(cg_procs, sizeof(cg_procs), "%s/cgroup.procs", cg_dir);
    if (mkdir(cg_dir, 0755) != 0) {
        fprintf(stderr, "bench_recorder: mkdir %s: %s (root and cgroup v2 needed)\n", cg_dir,
                strerror(errno));
        return 1;
    }
    for (int r = 0; r < rounds; r++)
        for (int m = 0; m < NMODE; m++) {
            v[m][r] = one(m, reads, cpu);
            if (v[m][r] < 0) {
                fprintf(stderr, "bench_recorder: %s failed (root and BPF needed)\n", mode_name[m]);
                rmdir(cg_dir);
                return 1;
            }
        }
    printf("bench_recorder: %ld 1-byte reads of /dev/zero on CPU %d, medians of %d rounds "
           "(CPU time of the reader; a read = 2 events)\n",
           reads, cpu, rounds);
    for (int m = 0; m < NMODE; m++) {
        med[m] = bench_pct_sort(v[m], (size_t)rounds, 50);
        printf("  %-28s %8.1f ns/read", mode_name[m], med[m]);
        if (m > BARE)
            printf("  +%6.1f ns/event", (med[m] - med[BARE]) / 2);
        printf("\n");
    }
    double e = (med[EMPTY] - med[BARE]) / 2, c = (med[CLOCK] - med[BARE]) / 2,
           rec = (med[REC] - med[BARE]) / 2;
    printf("  recorder / empty program          %.2fx (issue's goal <= 1.5x)\n", rec / e);
    printf("  recorder / (empty program + clock) %.2fx\n", rec / c);
    printf("  a predicate adds %.1f ns/event, a tenant scope %.1f ns/event\n",
           (med[REC_PRED] - med[REC]) / 2, (med[REC_SCOPE] - med[REC]) / 2);
    rmdir(cg_dir);
    return 0;
}
