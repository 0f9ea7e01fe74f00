/*
 * make bench-recorder (root): what recording adds to a system call. A child pinned to CPU 1
 * (CPU 0 on one CPU) makes READS 1-byte reads of /dev/zero and reports its own CPU time
 * (getrusage: user + system, which holds up on a shared machine where wall clock does not);
 * each read is 2 events (sys_enter, sys_exit). Modes, interleaved over ROUNDS rounds, medians:
 * nothing attached, empty tp_btf programs, tp_btf programs reading the clock only, and a
 * recorder session (syscalls group, every process, REC_KIB per CPU: 4096), the same with a
 * predicate that holds for every event ({"ne": ["pid", "1"]}: the kernel fills pid and runs
 * the interpreter) and scoped to the reader's cgroup (a tenant's scope: one hash lookup). The
 * reader runs in a cgroup of its own (<cgroup2>/snb-recorder-<pid>) in every mode.
 *
 * The anchors of the issue, recording the same events (every system call's entry and exit, as
 * the session does) in the same run:
 *  - ftrace's ring buffer: an instance of its own (<tracefs>/instances/snb-recorder-<pid>,
 *    REC_KIB per CPU, overwrite mode, tracefs mounted for the run if it was not) with
 *    raw_syscalls enabled;
 *  - perf's ring buffer in flight-recorder mode: `perf record --overwrite -e
 *    raw_syscalls:sys_enter,raw_syscalls:sys_exit -C CPU -m REC_KIB`;
 *  - `perf trace -e read -C CPU` (a consumer formatting every event: about 100x the others, so
 *    it runs READS / 25 reads);
 *  - LTTng-UST's userspace event in a snapshot (flight-recorder) session (ust_anchor.c: UST_EVENTS
 *    events, 10M, fired on the same CPU; its own lttng-sessiond, or the one running, and a
 *    session snb-recorder-<pid>), against the same loop with the event disabled;
 * where perf and LTTng are installed (`scripts/setup bench`); otherwise their rows say so.
 * Printed: ns per read, ns added per event, and the ratios of docs/recorder.md ("Costs").
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <libgen.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "agent/cgroup.h"
#include "bench_util.h"
#include "rec/session.h"
#include "rec_anchor.skel.h"

enum { BARE, EMPTY, CLOCK, REC, REC_PRED, REC_SCOPE, FTRACE, PERF_REC, PERF_TRACE, NMODE };
static const char *mode_name[NMODE] = {
    "nothing attached",           "empty tp_btf enter+exit", "tp_btf + bpf_ktime_get_ns",
    "recorder session",           "recorder + predicate",    "recorder + tenant scope",
    "ftrace ring (raw_syscalls)", "perf record --overwrite", "perf trace -e read",
};

#define TRACEFS "/sys/kernel/tracing"
static char ftrace_inst[128]; /* TRACEFS/instances/snb-recorder-<pid> */
static int tracefs_mounted;   /* mounted by this run: unmounted at its end */
static char perf_out[64];     /* perf's output file, "/tmp/snb-recorder-<pid>.perf" */

static char ust_bin[PATH_MAX]; /* ust_anchor, beside this program */
static char ust_session[64];   /* "snb-recorder-<pid>" */
static char ust_dir[64];       /* its snapshot output, /tmp/snb-recorder-<pid>.lttng */
static pid_t sessiond = -1;    /* the lttng-sessiond this run started (-1: none) */

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

static int write_file(const char *dir, const char *name, const char *v)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_TRUNC);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, v, strlen(v));
    int e = n == (ssize_t)strlen(v) ? 0 : -errno;
    close(fd);
    return e;
}

/* An ftrace instance of its own recording raw_syscalls into rings of REC_KIB per CPU (overwrite
 * mode, ftrace's default); on = 0 removes it. */
static int ftrace_set(int on)
{
    char kib[32];
    if (!on) {
        write_file(ftrace_inst, "events/raw_syscalls/enable", "0");
        return rmdir(ftrace_inst) ? -errno : 0;
    }
    if (mkdir(ftrace_inst, 0755) && errno != EEXIST)
        return -errno;
    snprintf(kib, sizeof(kib), "%llu", (unsigned long long)ring_kib);
    int e = write_file(ftrace_inst, "buffer_size_kb", kib);
    if (!e)
        e = write_file(ftrace_inst, "options/overwrite", "1");
    if (!e)
        e = write_file(ftrace_inst, "events/raw_syscalls/enable", "1");
    return e;
}

/* perf (record or trace) on cpu, its output discarded; its pid, or -1. perf has its events
 * open within a few hundred ms of its start: the reads begin 2 s after. */
static pid_t perf_start(int trace, int cpu)
{
    char c[16], m[32];
    snprintf(c, sizeof(c), "%d", cpu);
    snprintf(m, sizeof(m), "%lluK", (unsigned long long)ring_kib);
    pid_t p = fork();
    if (p == 0) {
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
        }
        if (trace)
            execlp("perf", "perf", "trace", "-e", "read", "-C", c, "-o", perf_out, (char *)NULL);
        else
            execlp("perf", "perf", "record", "-q", "--overwrite", "-e",
                   "raw_syscalls:sys_enter,raw_syscalls:sys_exit", "-C", c, "-m", m, "-o", perf_out,
                   (char *)NULL);
        _exit(127);
    }
    if (p < 0)
        return -1;
    struct timespec d = {2, 0};
    nanosleep(&d, NULL);
    int st;
    if (waitpid(p, &st, WNOHANG) != 0) /* gone already: not installed, or it failed */
        return -1;
    return p;
}

/* SIGINT (perf's way to end), up to 10 s, then SIGKILL. Returns perf's own CPU time in ns
 * (user + system, its threads included). */
static double perf_stop(pid_t p)
{
    int st;
    struct rusage ru = {0};
    kill(p, SIGINT);
    for (int i = 0; i < 200; i++) {
        if (wait4(p, &st, WNOHANG, &ru) == p)
            goto done;
        struct timespec d = {0, 50 * 1000 * 1000};
        nanosleep(&d, NULL);
    }
    kill(p, SIGKILL);
    wait4(p, &st, 0, &ru);
done:
    unlink(perf_out);
    return ((double)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e9 +
           ((double)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e3;
}

/* Runs argv (stderr discarded), its first line of output into out (may be NULL). Returns its
 * exit status, or -1. */
static int run_cmd(char *const argv[], char *out, size_t len)
{
    int p[2], st;
    if (pipe(p))
        return -1;
    pid_t c = fork();
    if (c == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(p[1], 1);
        if (null >= 0)
            dup2(null, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    char buf[256];
    size_t n = 0;
    ssize_t k;
    while (c > 0 && (k = read(p[0], buf + n, sizeof(buf) - 1 - n)) > 0 && n < sizeof(buf) - 1)
        n += (size_t)k;
    buf[n] = 0;
    close(p[0]);
    if (c < 0 || waitpid(c, &st, 0) != c)
        return -1;
    if (out)
        snprintf(out, len, "%.*s", (int)strcspn(buf, "\n"), buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int lttng(const char *a, const char *b, const char *c, const char *d, const char *e)
{
    char *const argv[] = {"lttng", (char *)a, (char *)b, (char *)c, (char *)d, (char *)e, NULL};
    return run_cmd(argv, NULL, 0);
}

/* `lttng enable-event` or `disable-event` of snb_anchor:tick in the session's channel ch0 */
static int ust_event(const char *verb)
{
    char *const argv[] = {"lttng", (char *)verb,      "-u", "-s", ust_session, "-c",
                          "ch0",   "snb_anchor:tick", NULL};
    return run_cmd(argv, NULL, 0);
}

/* A snapshot session enabling snb_anchor:tick, on a session daemon (started here when none
 * answers, up to 5 s). 0, or -1 when LTTng or ust_anchor is missing or fails. */
static int ust_setup(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return -1;
    self[n] = 0;
    snprintf(ust_bin, sizeof(ust_bin), "%s/ust_anchor", dirname(self));
    snprintf(ust_session, sizeof(ust_session), "snb-recorder-%d", (int)getpid());
    snprintf(ust_dir, sizeof(ust_dir), "--output=/tmp/snb-recorder-%d.lttng", (int)getpid());
    if (access(ust_bin, X_OK) != 0)
        return -1;
    if (lttng("list", NULL, NULL, NULL, NULL) != 0) {
        sessiond = fork();
        if (sessiond == 0) {
            int null = open("/dev/null", O_RDWR);
            if (null >= 0) {
                dup2(null, 1);
                dup2(null, 2);
            }
            execlp("lttng-sessiond", "lttng-sessiond", "--no-kernel", (char *)NULL);
            _exit(127);
        }
        if (sessiond < 0)
            return -1;
        for (int i = 0; i < 50 && lttng("list", NULL, NULL, NULL, NULL) != 0; i++) {
            struct timespec d = {0, 100 * 1000 * 1000};
            nanosleep(&d, NULL);
        }
    }
    if (lttng("create", ust_session, "--snapshot", ust_dir, NULL) ||
        lttng("enable-channel", "-u", "-s", ust_session, "ch0") || ust_event("enable-event") ||
        lttng("start", ust_session, NULL, NULL, NULL))
        return -1;
    return 0;
}

static void ust_teardown(void)
{
    char rm[96];
    lttng("destroy", ust_session, NULL, NULL, NULL);
    if (sessiond > 0) {
        int st;
        kill(sessiond, SIGTERM);
        for (int i = 0; i < 100 && waitpid(sessiond, &st, WNOHANG) != sessiond; i++) {
            struct timespec d = {0, 50 * 1000 * 1000};
            nanosleep(&d, NULL);
            if (i == 99) {
                kill(sessiond, SIGKILL);
                waitpid(sessiond, &st, 0);
            }
        }
    }
    snprintf(rm, sizeof(rm), "/tmp/snb-recorder-%d.lttng", (int)getpid());
    char *const argv[] = {"rm", "-rf", rm, NULL};
    run_cmd(argv, NULL, 0);
}

/* ns of CPU per iteration of ust_anchor with the event enabled (on) or disabled, or -1 */
static double ust_run(int on, long events, int cpu)
{
    char n[32], c[16], out[64] = "";
    if (!on && ust_event("disable-event"))
        return -1;
    snprintf(n, sizeof(n), "%ld", events);
    snprintf(c, sizeof(c), "%d", cpu);
    setenv("LTTNG_UST_REGISTER_TIMEOUT", "-1", 1); /* registered (the event on) before main */
    char *const argv[] = {ust_bin, n, c, NULL};
    int rc = run_cmd(argv, out, sizeof(out));
    if (!on && ust_event("enable-event"))
        return -1;
    return rc == 0 && out[0] ? atof(out) : -1;
}

/* ns of CPU per read in a pinned child, or -1 (-2: no perf); *consumer: the CPU a consumer
 * process of the mode (perf) spent, per read */
static double one(int mode, long reads, int cpu, double *consumer)
{
    pid_t perf = -1;
    long n = mode == PERF_TRACE ? (reads / 25 > 1000 ? reads / 25 : 1000) : reads;
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
    } else if (mode == REC || mode == REC_PRED || mode == REC_SCOPE) {
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
    } else if (mode == FTRACE) {
        if (ftrace_set(1)) {
            ftrace_set(0);
            return -1;
        }
    } else if (mode == PERF_REC || mode == PERF_TRACE) {
        if ((perf = perf_start(mode == PERF_TRACE, cpu)) < 0)
            return -2; /* no perf: the row says so */
    }
    ns = run_reads(n, cpu);
    *consumer = 0;
    if (mode == FTRACE)
        ftrace_set(0);
    if (perf > 0) /* perf's whole life: its start and the 2 s before the reads included */
        *consumer = perf_stop(perf) / (double)n;
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
    long ust_events = bench_env_int("UST_EVENTS", 10000000);
    double v[NMODE][64], med[NMODE], cons[NMODE][64], ust[2][64];

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
    snprintf(ftrace_inst, sizeof(ftrace_inst), TRACEFS "/instances/snb-recorder-%d", (int)getpid());
    snprintf(perf_out, sizeof(perf_out), "/tmp/snb-recorder-%d.perf", (int)getpid());
    if (access(TRACEFS "/instances", F_OK) != 0) {
        if (mount("nodev", TRACEFS, "tracefs", 0, NULL) != 0) {
            fprintf(stderr, "bench_recorder: mount tracefs on %s: %s\n", TRACEFS, strerror(errno));
            rmdir(cg_dir);
            return 1;
        }
        tracefs_mounted = 1;
    }
    int rc = 0, noperf = 0, noust = ust_setup() != 0;
    for (int r = 0; r < rounds && !rc; r++) {
        for (int m = 0; m < NMODE && !rc; m++) {
            if (noperf && (m == PERF_REC || m == PERF_TRACE)) {
                v[m][r] = -2;
                continue;
            }
            v[m][r] = one(m, reads, cpu, &cons[m][r]);
            if (v[m][r] == -2) {
                noperf = 1;
            } else if (v[m][r] < 0) {
                fprintf(stderr, "bench_recorder: %s failed (root and BPF needed)\n", mode_name[m]);
                rc = 1;
            }
        }
        for (int k = 0; k < 2 && !noust && !rc; k++)
            if ((ust[k][r] = ust_run(k, ust_events, cpu)) < 0)
                noust = 1;
    }
    ust_teardown();
    if (tracefs_mounted)
        umount(TRACEFS);
    if (rc) {
        rmdir(cg_dir);
        return 1;
    }
    printf("bench_recorder: %ld 1-byte reads of /dev/zero on CPU %d, medians of %d rounds "
           "(CPU time of the reader; a read = 2 events)\n",
           reads, cpu, rounds);
    for (int m = 0; m < NMODE; m++) {
        if (noperf && (m == PERF_REC || m == PERF_TRACE)) {
            printf("  %-28s not measured: no perf (scripts/setup bench installs it)\n",
                   mode_name[m]);
            continue;
        }
        med[m] = bench_pct_sort(v[m], (size_t)rounds, 50);
        printf("  %-28s %8.1f ns/read", mode_name[m], med[m]);
        if (m > BARE)
            printf("  +%6.1f ns/event", (med[m] - med[BARE]) / 2);
        if (m == PERF_REC || m == PERF_TRACE)
            printf("  (perf's own CPU, its start included: %.1f ns/event)",
                   bench_pct_sort(cons[m], (size_t)rounds, 50) / 2);
        printf("\n");
    }
    double e = (med[EMPTY] - med[BARE]) / 2, c = (med[CLOCK] - med[BARE]) / 2,
           rec = (med[REC] - med[BARE]) / 2;
    printf("  recorder / empty program          %.2fx (issue's goal <= 1.5x)\n", rec / e);
    printf("  recorder / (empty program + clock) %.2fx\n", rec / c);
    printf("  a predicate adds %.1f ns/event, a tenant scope %.1f ns/event\n",
           (med[REC_PRED] - med[REC]) / 2, (med[REC_SCOPE] - med[REC]) / 2);
    printf("  recorder / ftrace ring             %.2fx\n", rec / ((med[FTRACE] - med[BARE]) / 2));
    if (!noperf) {
        printf("  recorder / perf record --overwrite %.2fx\n",
               rec / ((med[PERF_REC] - med[BARE]) / 2));
        printf("  recorder / perf trace              %.3fx\n",
               rec / ((med[PERF_TRACE] - med[BARE]) / 2));
    }
    if (noust) {
        printf("  LTTng-UST: not measured (lttng-tools, liblttng-ust-dev: scripts/setup bench)\n");
    } else {
        double off = bench_pct_sort(ust[0], (size_t)rounds, 50),
               on = bench_pct_sort(ust[1], (size_t)rounds, 50);
        printf("  LTTng-UST event, snapshot session: %.1f ns/event (%.1f enabled, %.1f disabled; "
               "%ld events a run, userspace only)\n",
               on - off, on, off, ust_events);
        printf("  recorder / LTTng-UST event         %.2fx\n", rec / (on - off));
    }
    rmdir(cg_dir);
    return 0;
}
