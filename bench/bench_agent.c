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
 *
 * Then what a keyed event costs with cells in per-CPU hashes and in the table
 * (keyed_event_cost(); `bench_agent --keyed` alone), and a busy host (busy_host(); `bench_agent
 * --busy` runs both): up to 128 threads with keys of their own, six instrumentations with
 * thousands of live cells a second, and what the agent's collection costs per second (CPU,
 * bpf() calls) the three ways the engine can collect (sn_engine_opts.collect: the table, the
 * batched hashes, and the baseline, the engine before them), in the same run.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "agent/catalog.h"
#include "agent/cgroup.h"
#include "agent/engine.h"
#include "agent/probe.h"
#include "agent/predicate.h"
#include "bench_util.h"
#include "syslat.skel.h"

#define READS  200000
#define REPS   5
#define ROUNDS 5

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
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
        struct sn_probe in;
        int ok = 0;

        if (m[i].metric == SN_METRIC_USDT)
            continue; /* needs a target; postgres.queries stands for USDT */
        snprintf(body, sizeof(body), "{\"module\":\"%s\",\"stat\":\"%s\"}", m[i].module, m[i].stat);
        json_t *j = json_loads(body, 0, NULL);
        if (sn_probe_compile(j, "b", host, 100, &in, why, sizeof(why)) == 0)
            for (int r = 0; r < 5; r++) {
                double t0 = bench_mono_ns();
                int slot = sn_engine_enable(e, &in.spec);
                double t1 = bench_mono_ns();
                if (slot < 0)
                    break;
                sn_engine_disable(e, slot);
                en[r] = (t1 - t0) / 1e6;
                dis[r] = (bench_mono_ns() - t1) / 1e6;
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
        double t0 = bench_mono_ns();
        for (int i = 0; i < READS; i++)
            if (read(fd, &c, 1) != 1)
                abort();
        t[r] = (bench_mono_ns() - t0) / READS;
    }
    qsort(t, REPS, sizeof(t[0]), bench_cmp_double);
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
    bool attached = false;
    /* "Attaching 2 probes..." is printed once the probes are in place; without it (no
     * bpftrace, or it failed) there is nothing to time, and a figure would measure nothing */
    for (int i = 0; i < 5 && out && !attached && fgets(line, sizeof(line), out); i++)
        attached = strstr(line, "Attaching") != NULL;
    if (out)
        fclose(out);
    else
        close(pipefd[0]);
    if (!attached) {
        static bool said;
        if (!said)
            fprintf(stderr, "bench_agent: bpftrace did not attach (is it installed? `make "
                            "bench-agent` installs it): no bpftrace figure\n");
        said = true;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
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

/* --- the busy host ---------------------------------------------------------------------- */

#define BUSY_PROCS   16 /* at most */
#define BUSY_THREADS 8  /* per process, each its own comm */
#define BUSY_SECONDS 4  /* collections measured per mode and round */
#define BUSY_ROUNDS  2

/* The load's own cgroup (below the cgroup2 root), which the instrumentations are scoped to
 * with "under": the load, not whatever else runs on the host, makes the cells measured. */
static char busy_cg[64];

struct busy_load {
    volatile uint64_t *calls; /* shared: system calls made, per process */
    volatile int *stop;
    int nprocs;
    pid_t pids[BUSY_PROCS];
};

struct busy_thread {
    int proc, thread;
    volatile uint64_t *calls;
    volatile int *stop;
};

/* A thread of the load: a few quick calls (reads of /dev/zero, writes to /dev/null, getppid)
 * and a sleep of 1 to 13 ms, so that its comm, its process and each system call spread over
 * tens of latency buckets every second. */
static void *busy_main(void *arg)
{
    struct busy_thread *t = arg;
    char name[16], c;
    int z = open("/dev/zero", O_RDONLY), n = open("/dev/null", O_WRONLY);
    uint64_t k = (uint64_t)(t->proc * BUSY_THREADS + t->thread);

    snprintf(name, sizeof(name), "snbusy%03d", (int)k);
    prctl(PR_SET_NAME, name);
    while (!*t->stop) {
        if (read(z, &c, 1) != 1 || write(n, &c, 1) != 1)
            break;
        getppid();
        static const long ms[] = {1, 2, 3, 5, 8, 13};
        struct timespec ts = {0, ms[k++ % 6] * 1000000L};
        nanosleep(&ts, NULL);
        __atomic_fetch_add(t->calls, 4, __ATOMIC_RELAXED);
    }
    close(z);
    close(n);
    return NULL;
}

static void busy_proc(int proc, volatile uint64_t *calls, volatile int *stop)
{
    pthread_t th[BUSY_THREADS];
    struct busy_thread a[BUSY_THREADS];

    for (int i = 0; i < BUSY_THREADS; i++) {
        a[i] = (struct busy_thread){proc, i, calls, stop};
        pthread_create(&th[i], NULL, busy_main, &a[i]);
    }
    for (int i = 0; i < BUSY_THREADS; i++)
        pthread_join(th[i], NULL);
}

static int busy_start(struct busy_load *l, int nprocs)
{
    void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return -1;
    l->calls = m;
    l->stop = (volatile int *)((char *)m + 2048);
    l->nprocs = nprocs;
    for (int p = 0; p < nprocs; p++) {
        l->pids[p] = fork();
        if (l->pids[p] == 0) {
            char path[512];
            FILE *f;
            snprintf(path, sizeof(path), "%s%s/cgroup.procs", sn_cgroup_root(), busy_cg);
            if ((f = fopen(path, "w")) != NULL) { /* before its threads: they inherit it */
                fprintf(f, "%d\n", (int)getpid());
                fclose(f);
            }
            busy_proc(p, &l->calls[p], l->stop);
            _exit(0);
        }
    }
    return 0;
}

static uint64_t busy_calls(const struct busy_load *l)
{
    uint64_t n = 0;
    for (int p = 0; p < l->nprocs; p++)
        n += __atomic_load_n(&l->calls[p], __ATOMIC_RELAXED);
    return n;
}

static void busy_stop(struct busy_load *l)
{
    *l->stop = 1;
    for (int p = 0; p < l->nprocs; p++)
        if (l->pids[p] > 0)
            waitpid(l->pids[p], NULL, 0);
    munmap((void *)l->calls, 4096);
}

/* A counter of this thread's bpf() system calls from the kernel (the syscalls:sys_enter_bpf
 * tracepoint), to check the engine's own count; -1 when tracefs has no such event. */
static int bpf_call_counter(void)
{
    struct perf_event_attr attr = {.type = PERF_TYPE_TRACEPOINT, .size = sizeof(attr)};
    struct stat st;
    char buf[32] = {0};
    FILE *f;

    if (stat("/sys/kernel/tracing/events", &st) != 0)
        mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL);
    f = fopen("/sys/kernel/tracing/events/syscalls/sys_enter_bpf/id", "r");
    if (!f || !fgets(buf, sizeof(buf), f)) {
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    attr.config = strtoull(buf, NULL, 10);
    return (int)syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

static uint64_t counter(int fd)
{
    uint64_t v = 0;
    if (fd < 0 || read(fd, &v, sizeof(v)) != sizeof(v))
        return 0;
    return v;
}

struct busy_result {
    double per_inst[8]; /* cells per collection of each instrumentation */
    double cpu_ms;      /* collection CPU per second */
    double bpf_calls;   /* per collection, the engine's count */
    double bpf_kernel;  /* per collection, the kernel's count */
    double cells;       /* per collection */
    double exit_ns;     /* the sys_exit program's run time per run (bpf_stats), or -1 */
};

static const char *busy_bodies[] = {
    "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":[\"execname\",\"latency\"]}",
    "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":[\"pid\",\"latency\"]}",
    "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":[\"syscall\",\"latency\"]}",
    "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":[\"execname\"]}",
    "{\"module\":\"fs\",\"stat\":\"logical_ops\",\"decomposition\":[\"execname\",\"latency\"]}",
    ("{\"module\":\"cpu\",\"stat\":\"thread_executions\",\"decomposition\":[\"execname\","
     "\"runtime\"]}"),
};
#define BUSY_NINST (int)(sizeof(busy_bodies) / sizeof(busy_bodies[0]))

struct busy_cells {
    int *slots;
    double *per_inst;
};

static void on_busy_cell(const struct sn_cell *c, void *arg)
{
    struct busy_cells *b = arg;
    for (int i = 0; i < 8; i++)
        if (b->slots[i] == c->slot)
            b->per_inst[i]++;
}

/* Six instrumentations, scoped to the load's cgroup (idle: a predicate nothing matches) under an
 * engine that collects
 * in the given mode; BUSY_SECONDS one-second collections, measured. */
static int busy_measure(enum sn_collect_mode mode, bool idle, struct busy_result *r)
{
    struct sn_engine_opts o = {.exclude_tgid = (uint32_t)getpid(), .collect = mode};
    struct sn_engine_stats s0, s1;
    struct sn_engine *e;
    int slots[8] = {-1, -1, -1, -1, -1, -1, -1, -1}, fd = bpf_call_counter();
    double cpu = 0;
    uint64_t k0, k1;
    char pred[128];

    if (idle)
        snprintf(pred, sizeof(pred), "{\"eq\":[\"execname\",\"no-such-comm\"]}");
    else
        snprintf(pred, sizeof(pred), "{\"under\":[\"container\",\"%s\"]}", busy_cg);

    memset(r, 0, sizeof(*r));
    if (sn_engine_open_opts(&e, &o) != 0)
        return -1;
    for (int i = 0; i < BUSY_NINST; i++) {
        char body[512], why[256];
        struct sn_probe in;
        json_t *j;
        snprintf(body, sizeof(body), "%.*s,\"predicate\":%s}", (int)strlen(busy_bodies[i]) - 1,
                 busy_bodies[i], pred);
        j = json_loads(body, 0, NULL);
        slots[i] = -1;
        if (j && sn_probe_compile(j, "b", "bench", SN_DEFAULT_KEY_CAP, &in, why, sizeof(why)) == 0)
            slots[i] = sn_engine_enable(e, &in.spec);
        else
            fprintf(stderr, "busy: %s: %s\n", body, why);
        json_decref(j);
    }
    sn_engine_collect(e, NULL, NULL, NULL);
    sleep(1);
    sn_engine_collect(e, NULL, NULL, NULL); /* both generations in use from here */
    uint32_t ids[2];
    uint64_t rc0 = 0, rt0 = 0;
    bool have_ids = sn_engine_prog_ids(e, SN_METRIC_SYSCALLS, ids, 2) == 2;
    if (have_ids)
        prog_ns(ids[1], &rc0, &rt0, true);
    sn_engine_stats(e, &s0);
    k0 = counter(fd);
    for (int s = 0; s < BUSY_SECONDS; s++) {
        sleep(1);
        struct busy_cells bc = {slots, r->per_inst};
        double c0 = bench_thread_cpu_s();
        sn_engine_collect(e, on_busy_cell, &bc, NULL);
        cpu += bench_thread_cpu_s() - c0;
    }
    k1 = counter(fd);
    sn_engine_stats(e, &s1);
    r->exit_ns = have_ids ? prog_ns(ids[1], &rc0, &rt0, false) : -1;
    r->cpu_ms = cpu * 1e3 / BUSY_SECONDS;
    r->bpf_calls = (double)(s1.bpf_calls - s0.bpf_calls) / BUSY_SECONDS;
    r->bpf_kernel = fd >= 0 ? (double)(k1 - k0) / BUSY_SECONDS : -1;
    r->cells = (double)(s1.cells - s0.cells) / BUSY_SECONDS;
    for (int i = 0; i < 8; i++)
        r->per_inst[i] /= BUSY_SECONDS;
    for (int i = 0; i < BUSY_NINST; i++)
        if (slots[i] >= 0)
            sn_engine_disable(e, slots[i]);
    sn_engine_close(e);
    if (fd >= 0)
        close(fd);
    return 0;
}

/* Makes (or removes) the load's cgroup. */
static int busy_cgroup(bool make)
{
    char path[512];
    const char *root = sn_cgroup_root();

    if (!root) {
        printf("busy host: no cgroup2 file system\n");
        return -1;
    }
    snprintf(busy_cg, sizeof(busy_cg), "/sonde-bench-busy.%d", (int)getpid());
    snprintf(path, sizeof(path), "%s%s", root, busy_cg);
    if (!make)
        return rmdir(path);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        printf("busy host: cannot make %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void busy_print(const char *mode, const struct busy_result *r)
{
    printf("  %-30s %9.0f %11.0f %9.0f %10.2f %9.3f%% %9.0f\n", mode, r->cells, r->bpf_calls,
           r->bpf_kernel, r->cpu_ms, r->cpu_ms / 10, r->exit_ns);
}

static int cmp_cpu(const void *a, const void *b)
{
    double x = ((const struct busy_result *)a)->cpu_ms, y = ((const struct busy_result *)b)->cpu_ms;
    return x < y ? -1 : x > y;
}

/* What a counted event costs with cells in per-CPU hashes and in the table: 1-byte reads of
 * /dev/zero by this process under one instrumentation keyed by syscall and latency (every
 * read an existing cell), in interleaved rounds, median ns per read. */
static void keyed_event_cost(void)
{
    static const struct sn_field_def f[] = {
        {"execname", SN_FIELD_DISCRETE, SN_SC_EXECNAME, NULL, NULL}};
    double bare[ROUNDS], m[2][ROUNDS];
    char comm[16], text[128], why[128];
    int fd = open("/dev/zero", O_RDONLY);
    struct sn_slot_spec sp = {.metric = SN_METRIC_SYSCALLS,
                              .key_field = SN_SC_SYSCALL,
                              .num_field = SN_SC_LATENCY,
                              .key_cap = 1000,
                              .needs =
                                  1u << SN_SC_EXECNAME | 1u << SN_SC_SYSCALL | 1u << SN_SC_LATENCY};

    prctl(PR_GET_NAME, comm);
    snprintf(text, sizeof(text), "{\"eq\":[\"execname\",\"%s\"]}", comm);
    json_t *j = json_loads(text, 0, NULL);
    if (fd < 0 || !j || sn_pred_compile(j, f, 1, &sp.pred, why, sizeof(why)) != 0)
        return;
    json_decref(j);
    for (int r = 0; r < ROUNDS; r++) {
        bare[r] = per_read(fd);
        for (int k = 0; k < 2; k++) {
            struct sn_engine_opts o = {.collect = k ? SN_COLLECT_TABLE : SN_COLLECT_BATCH};
            struct sn_engine *e;
            m[k][r] = 0;
            if (sn_engine_open_opts(&e, &o) != 0)
                continue;
            if (sn_engine_enable(e, &sp) >= 0) {
                reads(fd, 1000); /* its cells exist */
                m[k][r] = per_read(fd);
            }
            sn_engine_close(e);
        }
    }
    double b = median(bare, ROUNDS);
    printf("a counted event, keyed by syscall x latency (1-byte reads, median of %d rounds):\n"
           "  bare %.0f ns/read; per-CPU hashes +%.0f ns; cell table +%.0f ns\n\n",
           ROUNDS, b, median(m[0], ROUNDS) - b, median(m[1], ROUNDS) - b);
    close(fd);
}

/*
 * A busy host: threads in processes, each thread its own comm, each making system calls whose
 * latencies spread over many buckets; six instrumentations with a key per thread or process,
 * by latency. What the agent's collection costs per second, the way it collects now and the
 * baseline way (a lookup and a delete per cell: the engine before batching), in alternating
 * rounds, at two loads: 32 threads (about the host: ~11,000 bpf() calls a second the
 * baseline way) and 128; and with the six idle (predicates that match nothing).
 */
static void busy_host(void)
{
    static const int levels[] = {4, BUSY_PROCS};
    struct busy_result base[BUSY_ROUNDS], batch[BUSY_ROUNDS], now[BUSY_ROUNDS], idle_base,
        idle_batch, idle_now;
    cpu_set_t set;

    CPU_ZERO(&set);
    for (int c = 0; c < CPU_SETSIZE && c < 64; c++)
        CPU_SET(c, &set);
    sched_setaffinity(0, sizeof(set), &set);
    if (busy_cgroup(true) != 0)
        return;
    int stats = bpf_enable_stats(BPF_STATS_RUN_TIME); /* for "exit ns": sys_exit's cost */
    printf("busy host: collection per second with %d instrumentations (median of %d rounds of "
           "%d s; bpf() calls counted by the engine and by the kernel's sys_enter_bpf)\n",
           BUSY_NINST, BUSY_ROUNDS, BUSY_SECONDS);
    for (size_t v = 0; v < sizeof(levels) / sizeof(levels[0]); v++) {
        struct busy_load l;
        if (busy_start(&l, levels[v]) != 0)
            return;
        sleep(1);
        uint64_t c0 = busy_calls(&l);
        double t0 = bench_mono_ns();
        for (int r = 0; r < BUSY_ROUNDS; r++)
            for (int k = 0; k < 3; k++) { /* each round in another order */
                int m = (r + k) % 3;
                struct busy_result *out = m == 0 ? &base[r] : m == 1 ? &batch[r] : &now[r];
                if (busy_measure(m == 0   ? SN_COLLECT_BASELINE
                                 : m == 1 ? SN_COLLECT_BATCH
                                          : SN_COLLECT_TABLE,
                                 false, out) != 0) {
                    printf("busy host: cannot load the engine\n");
                    busy_stop(&l);
                    return;
                }
            }
        double rate = (double)(busy_calls(&l) - c0) / ((bench_mono_ns() - t0) / 1e9);
        busy_stop(&l);
        qsort(base, BUSY_ROUNDS, sizeof(base[0]), cmp_cpu);
        qsort(batch, BUSY_ROUNDS, sizeof(batch[0]), cmp_cpu);
        qsort(now, BUSY_ROUNDS, sizeof(now[0]), cmp_cpu);
        printf("\n%d threads in %d processes (a comm each), %.0f of their system calls/s:\n",
               levels[v] * BUSY_THREADS, levels[v], rate);
        for (int i = 0; i < BUSY_NINST; i++)
            printf("  %7.0f cells/s  %s\n", now[BUSY_ROUNDS / 2].per_inst[i], busy_bodies[i]);
        printf("  %-30s %9s %11s %9s %10s %10s %9s\n", "mode", "cells", "bpf()/coll", "(kernel)",
               "CPU ms/s", "of a core", "exit ns");
        busy_print("baseline (per cell)", &base[BUSY_ROUNDS / 2]);
        busy_print("batched + dirty flags", &batch[BUSY_ROUNDS / 2]);
        busy_print("cell table (default)", &now[BUSY_ROUNDS / 2]);
    }
    busy_measure(SN_COLLECT_BASELINE, true, &idle_base);
    busy_measure(SN_COLLECT_BATCH, true, &idle_batch);
    busy_measure(SN_COLLECT_TABLE, true, &idle_now);
    printf("\nthe same six, idle (a predicate nothing matches):\n");
    busy_print("baseline (per cell)", &idle_base);
    busy_print("batched + dirty flags", &idle_batch);
    busy_print("cell table (default)", &idle_now);
    printf("target: <= 0.5%% of a core; \"exit ns\": the sys_exit program's time per run "
           "(kernel bpf_stats, which add some ns of their own), what an event pays\n\n");
    busy_cgroup(false);
    if (stats >= 0)
        close(stats);
}

int main(int argc, char **argv)
{
    int fd = open("/dev/zero", O_RDONLY);
    char comm[16];
    double bare, floor_ns = 0, sonde1 = 0, sonde10 = 0, bpftrace = 0;
    cpu_set_t set;

    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        puts("usage: bench_agent [--keyed | --busy | --busy-profile | --help]\n"
             "  (none)          per-read overhead: bare, floor, sonde (1 and 10), bpftrace; the\n"
             "                  collection's CPU, enable latency and a breakdown; then a keyed\n"
             "                  event's cost and the busy host (make bench-agent)\n"
             "  --keyed         a keyed event's cost only\n"
             "  --busy          a keyed event's cost and the busy host\n"
             "  --busy-profile  the busy host's default collection, to profile\n"
             "needs root; see the comment at the top of bench/bench_agent.c");
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--keyed") == 0) { /* a keyed event's cost only */
        keyed_event_cost();
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--busy") == 0) { /* the busy host only */
        keyed_event_cost();
        busy_host();
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--busy-profile") == 0) { /* its batched mode, to profile */
        struct busy_load l;
        struct busy_result r;
        if (busy_cgroup(true) != 0 || busy_start(&l, BUSY_PROCS) != 0)
            return 1;
        sleep(1);
        busy_measure(SN_COLLECT_TABLE, false, &r);
        busy_stop(&l);
        busy_cgroup(false);
        busy_print("cell table (default)", &r);
        for (int i = 0; i < BUSY_NINST; i++)
            printf("  %7.0f cells/s  %s\n", r.per_inst[i], busy_bodies[i]);
        return 0;
    }
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
    if (nbt)
        printf("%-36s %10.0f %10.0f\n", "bpftrace", bpftrace, bpftrace - bare);
    else
        printf("%-36s %21s\n", "bpftrace", "not measured");
    if (nbt && bpftrace > bare && floor_ns > bare)
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
    printf("\n");
    keyed_event_cost();
    busy_host();
    return 0;
}
