/*
 * Agent overhead (make bench-agent; root): the cost a traced system call pays, measured on a
 * loop of 1-byte reads from /dev/zero by this process, in the same run:
 *
 *   bare      no tracing
 *   floor     a hand-written libbpf program (src/bpf/syslat.bpf.c: tp_btf, task storage,
 *             per-CPU histogram), filtered to this process's reads in the kernel
 *   sonde     the agent's engine, syscall.syscalls with an execname predicate, decomposed by
 *             latency (1 instrumentation, then 10)
 *   bpftrace  the same question asked of bpftrace: sys_enter_read/sys_exit_read tracepoints,
 *             a thread-keyed start time and hist()
 *
 * It prints ns per read (median of 7 runs of 200,000 reads) and what tracing adds, with the
 * ratios the targets are set on (ref/overhead.md): Sonde's addition against bpftrace's and
 * against the floor's; and the CPU the per-second collection takes with 10 instrumentations.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "agent/catalog.h"
#include "agent/engine.h"
#include "agent/inst.h"
#include "agent/predicate.h"
#include "syslat.skel.h"

#define READS  200000
#define REPS   5
#define ROUNDS 5

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp);
    return v[n / 2];
}

/* How long enabling and disabling an instrumentation of each metric takes (median of 5): the
 * time the agent's loop spends on it between two collections. (Enabling a USDT metric right
 * after disabling one waits for the old uprobes to go, ~0.2 s; the rounds are spaced.) */
static void enable_latency(struct sn_engine *e)
{
    size_t n;
    const struct sn_metric_def *m = sn_catalog_all(&n);
    char host[256] = "bench";

    printf("enable / disable, ms (median of 5):\n");
    for (size_t i = 0; i < n; i++) {
        char body[256], why[256];
        double en[5], dis[5];
        struct sn_inst in;
        int ok = 0;

        if (m[i].metric == SN_METRIC_USDT)
            continue; /* needs a target; postgres.queries stands for USDT */
        snprintf(body, sizeof(body), "{\"module\":\"%s\",\"stat\":\"%s\"}", m[i].module, m[i].stat);
        json_t *j = json_loads(body, 0, NULL);
        if (sn_inst_from_json(j, "b", host, 100, &in, why, sizeof(why)) == 0)
            for (int r = 0; r < 5; r++) {
                double t0 = now_ns();
                int slot = sn_engine_enable(e, &in.spec);
                double t1 = now_ns();
                if (slot < 0)
                    break;
                sn_engine_disable(e, slot);
                en[r] = (t1 - t0) / 1e6;
                dis[r] = (now_ns() - t1) / 1e6;
                ok++;
                usleep(300000); /* a USDT detach finishes on its own thread meanwhile */
            }
        json_decref(j);
        if (ok == 5)
            printf("  %-8s %-20s %8.3f %8.3f\n", m[i].module, m[i].stat, median(en, 5),
                   median(dis, 5));
        else
            printf("  %s.%s: cannot enable here\n", m[i].module, m[i].stat);
    }
    printf("\n");
}

static double per_read(int fd)
{
    double t[REPS];
    char c;
    for (int r = 0; r < REPS; r++) {
        double t0 = now_ns();
        for (int i = 0; i < READS; i++)
            if (read(fd, &c, 1) != 1)
                abort();
        t[r] = (now_ns() - t0) / READS;
    }
    qsort(t, REPS, sizeof(t[0]), cmp);
    return t[REPS / 2];
}

/* ns per run of the program with kernel id id since stats were enabled, or -1 */
static double prog_ns(uint32_t id, uint64_t *cnt0, uint64_t *t0, bool start)
{
    struct bpf_prog_info info;
    uint32_t len = sizeof(info);
    int fd = bpf_prog_get_fd_by_id(id);
    double r = -1;

    if (fd < 0)
        return -1;
    memset(&info, 0, sizeof(info));
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) {
        if (start) {
            *cnt0 = info.run_cnt;
            *t0 = info.run_time_ns;
        } else if (info.run_cnt > *cnt0) {
            r = (double)(info.run_time_ns - *t0) / (double)(info.run_cnt - *cnt0);
        }
    }
    close(fd);
    return r;
}

/* Program body costs (kernel bpf_stats; enabled only for this pass, since the accounting
 * itself costs tens of ns per run): enter and exit of the floor and of Sonde, 1 slot. */
static void breakdown(int fd, const char *comm);

static struct sn_slot_spec spec_for_me(const char *comm)
{
    static const struct sn_field_def f[] = {
        {"execname", SN_FIELD_DISCRETE, SN_SC_EXECNAME, NULL, NULL}};
    struct sn_slot_spec sp = {.metric = SN_METRIC_SYSCALLS,
                              .key_field = SN_NO_FIELD,
                              .num_field = SN_SC_LATENCY,
                              .key_cap = 1000,
                              .needs = 1u << SN_SC_EXECNAME | 1u << SN_SC_LATENCY};
    char text[128], why[128];
    snprintf(text, sizeof(text), "{\"eq\":[\"execname\",\"%s\"]}", comm);
    json_t *j = json_loads(text, 0, NULL);
    if (!j || sn_pred_compile(j, f, 1, &sp.pred, why, sizeof(why)) != 0)
        abort();
    json_decref(j);
    return sp;
}

/* Starts bpftrace on the program; returns its pid once its probes are attached. */
static pid_t start_bpftrace(const char *comm)
{
    struct stat st;
    /* bpftrace finds tracepoints through tracefs, which this VM does not mount by default */
    if (stat("/sys/kernel/tracing/events", &st) != 0)
        mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL);
    char prog[512];
    int pipefd[2];
    pid_t pid;
    snprintf(prog, sizeof(prog),
             "tracepoint:syscalls:sys_enter_read /comm == \"%s\"/ { @s[tid] = nsecs; } "
             "tracepoint:syscalls:sys_exit_read /@s[tid]/ { @h = hist(nsecs - @s[tid]); "
             "delete(@s[tid]); }",
             comm);
    if (pipe(pipefd) != 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        execlp("bpftrace", "bpftrace", "-e", prog, (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    FILE *out = fdopen(pipefd[0], "r");
    char line[256];
    /* "Attaching 2 probes..." is printed once the probes are in place */
    for (int i = 0; i < 5 && out && fgets(line, sizeof(line), out); i++)
        if (strstr(line, "Attaching"))
            break;
    sleep(1); /* let the attach settle before timing */
    return pid;
}

static void reads(int fd, int n)
{
    char c;
    for (int i = 0; i < n; i++)
        if (read(fd, &c, 1) != 1)
            abort();
}

static void breakdown(int fd, const char *comm)
{
    int stats = bpf_enable_stats(BPF_STATS_RUN_TIME);
    uint64_t c0[2], t0[2];
    uint32_t ids[2];

    if (stats < 0) {
        printf("(no per-program breakdown: %s)\n", strerror(errno));
        return;
    }
    struct syslat_bpf *fl = syslat_bpf__open();
    if (fl) {
        fl->rodata->cfg_tgid = (uint32_t)getpid();
        fl->rodata->cfg_nr = SYS_read;
        if (syslat_bpf__load(fl) == 0 && syslat_bpf__attach(fl) == 0) {
            struct bpf_prog_info info;
            uint32_t len;
            int pfd[2] = {bpf_program__fd(fl->progs.sys_enter),
                          bpf_program__fd(fl->progs.sys_exit)};
            for (int i = 0; i < 2; i++) {
                len = sizeof(info);
                memset(&info, 0, sizeof(info));
                bpf_obj_get_info_by_fd(pfd[i], &info, &len);
                ids[i] = info.id;
                prog_ns(ids[i], &c0[i], &t0[i], true);
            }
            reads(fd, 200000);
            printf("floor programs: enter %.0f ns, exit %.0f ns per run\n",
                   prog_ns(ids[0], &c0[0], &t0[0], false), prog_ns(ids[1], &c0[1], &t0[1], false));
        }
        syslat_bpf__destroy(fl);
    }
    struct sn_engine *e;
    if (sn_engine_open(&e) == 0) {
        struct sn_slot_spec sp = spec_for_me(comm);
        int slot = sn_engine_enable(e, &sp);
        if (slot >= 0 && sn_engine_prog_ids(e, SN_METRIC_SYSCALLS, ids, 2) == 2) {
            for (int i = 0; i < 2; i++)
                prog_ns(ids[i], &c0[i], &t0[i], true);
            reads(fd, 200000);
            printf("sonde programs (1 slot): enter %.0f ns, exit %.0f ns per run\n",
                   prog_ns(ids[0], &c0[0], &t0[0], false), prog_ns(ids[1], &c0[1], &t0[1], false));
        }
        sn_engine_close(e);
    }
    close(stats);
}

int main(void)
{
    int fd = open("/dev/zero", O_RDONLY);
    char comm[16];
    double bare, floor_ns = 0, sonde1 = 0, sonde10 = 0, bpftrace = 0;
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(1, &set);
    sched_setaffinity(0, sizeof(set), &set);
    prctl(PR_GET_NAME, comm);
    if (fd < 0)
        return 1;

    /* The VM's speed drifts over seconds: measure the modes in interleaved rounds and take
     * each mode's median, so that drift does not favour whichever ran first. */
    double m_bare[ROUNDS], m_floor[ROUNDS], m_sonde1[ROUNDS], m_bt[ROUNDS];
    struct syslat_bpf *fl = syslat_bpf__open();
    struct sn_engine *e = NULL;
    struct sn_slot_spec sp = spec_for_me(comm);
    int nbt = 0;

    if (fl) {
        fl->rodata->cfg_tgid = (uint32_t)getpid();
        fl->rodata->cfg_nr = SYS_read;
        if (syslat_bpf__load(fl) != 0) {
            syslat_bpf__destroy(fl);
            fl = NULL;
        }
    }
    if (sn_engine_open(&e) != 0)
        e = NULL;
    for (int r = 0; r < ROUNDS; r++) {
        m_bare[r] = per_read(fd);
        m_floor[r] = m_sonde1[r] = 0;
        if (fl && syslat_bpf__attach(fl) == 0) {
            m_floor[r] = per_read(fd);
            syslat_bpf__detach(fl);
        }
        if (e) {
            int slot = sn_engine_enable(e, &sp);
            m_sonde1[r] = per_read(fd);
            sn_engine_disable(e, slot);
        }
        pid_t bt = start_bpftrace(comm);
        if (bt > 0) {
            m_bt[nbt++] = per_read(fd);
            kill(bt, SIGKILL);
            waitpid(bt, NULL, 0);
        }
    }
    bare = median(m_bare, ROUNDS);
    floor_ns = fl ? median(m_floor, ROUNDS) : 0;
    sonde1 = e ? median(m_sonde1, ROUNDS) : 0;
    bpftrace = nbt ? median(m_bt, nbt) : 0;
    if (fl)
        syslat_bpf__destroy(fl);

    double collect_cpu = 0;
    if (e) {
        int slots[10];
        for (int i = 0; i < 10; i++)
            slots[i] = sn_engine_enable(e, &sp);
        sonde10 = per_read(fd);
        /* per-second collection with 10 instrumentations: the thread CPU time of 20
         * collections, each after a second's worth (2,000) of traced reads */
        double cpu = 0;
        for (int s = 0; s < 20; s++) {
            struct timespec c0, c1;
            for (int i = 0; i < 2000; i++) {
                char c;
                if (read(fd, &c, 1) != 1)
                    abort();
            }
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
            sn_engine_collect(e, NULL, NULL, NULL);
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
            cpu += (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
        }
        collect_cpu = cpu / 20;
        for (int i = 0; i < 10; i++)
            sn_engine_disable(e, slots[i]);
    }

    printf(
        "agent overhead: 1-byte reads of /dev/zero, ns per read (median of %d interleaved rounds "
        "of %d x %d)\n\n",
        ROUNDS, REPS, READS);
    printf("%-36s %10s %10s\n", "mode", "ns/read", "added");
    printf("%-36s %10.0f %10s\n", "bare", bare, "-");
    printf("%-36s %10.0f %10.0f\n", "floor (hand-written libbpf)", floor_ns, floor_ns - bare);
    printf("%-36s %10.0f %10.0f\n", "sonde, 1 instrumentation", sonde1, sonde1 - bare);
    printf("%-36s %10.0f %10.0f\n", "sonde, 10 instrumentations", sonde10, sonde10 - bare);
    printf("%-36s %10.0f %10.0f\n", "bpftrace", bpftrace, bpftrace - bare);
    if (bpftrace > bare && floor_ns > bare)
        printf("\nsonde / bpftrace added: %.2fx (target <= 0.35)\n"
               "sonde / floor added:    %.2fx (target <= 1.3)\n",
               (sonde1 - bare) / (bpftrace - bare), (sonde1 - bare) / (floor_ns - bare));
    printf("collection, 10 instrumentations: %.3f ms CPU per second = %.2f%% of a CPU "
           "(target < 1%%)\n",
           collect_cpu * 1e3, collect_cpu * 100);
    printf("\n");
    if (e) {
        enable_latency(e);
        sn_engine_close(e);
    }
    breakdown(fd, comm);
    return 0;
}
