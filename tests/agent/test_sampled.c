/*
 * The sampled metrics on the real host (/proc and the cgroup v2 file system; CI runs this as
 * root): a process spinning in its own cgroup shows as ~100% of a CPU in user mode and the
 * containers add up to the host's usage; a process's 64 MiB is in its cgroup's rss; page-ins of
 * a file evicted from the page cache land in the faulting process's cgroup; datagrams on lo are
 * counted in and out; the key cap sends extra containers to "other"; a reading of other metrics
 * in between (the engine enabling one) does not break a metric's differences. Children and cgroups
 * made here are removed by PID and path; every wait is bounded.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "agent/cgroup.h"
#include "agent/predicate.h"
#include "agent/sampled.h"
#include "t.h"

#define BIT(m) (1ull << (m))
#define ALL                                                                                        \
    (BIT(SN_METRIC_CPU_USAGE) | BIT(SN_METRIC_MEM_RSS) | BIT(SN_METRIC_MEM_PAGEINS) |              \
     BIT(SN_METRIC_NIC_BYTES) | BIT(SN_METRIC_NIC_PACKETS))
#define MIB (1024ull * 1024)

/* t_note, also printed as a TAP comment when SN_TEST_VERBOSE is set (to see the margins) */
#define NOTE(...)                                                                                  \
    do {                                                                                           \
        t_note(__VA_ARGS__);                                                                       \
        if (getenv("SN_TEST_VERBOSE")) {                                                           \
            printf("# ");                                                                          \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)

static bool parse_cgroup(const char *text, int64_t *out)
{
    uint64_t id;
    if (!sn_cgroup_id(text, &id))
        return false;
    *out = (int64_t)id;
    return true;
}

static const struct sn_field_def fields[] = {
    {"container", SN_FIELD_CGROUP, SN_SC_CONTAINER, parse_cgroup, NULL},
    {"nic", SN_FIELD_DISCRETE, SN_SC_DEVICE, NULL, NULL},
};

/* ---- children and cgroups, cleaned up after each case ---- */

#define MAXKIDS 4
static pid_t kids[MAXKIDS];
static char cgs[MAXKIDS][128];
static int nkids, ncgs;

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Makes <root>/snt-<pid>-<tag>; rel receives "/snt-<pid>-<tag>". A tag "a/b" makes b in a. */
static bool cg_make(const char *tag, char *rel, size_t len, uint64_t *id)
{
    char full[1024];

    if (!sn_cgroup_root() || ncgs >= MAXKIDS)
        return false;
    snprintf(rel, len, "/snt-%d-%s", (int)getpid(), tag);
    snprintf(full, sizeof(full), "%s%s", sn_cgroup_root(), rel);
    if (mkdir(full, 0755) != 0 && errno != EEXIST)
        return false;
    snprintf(cgs[ncgs++], sizeof(cgs[0]), "%s", rel);
    return sn_cgroup_id(rel, id);
}

static void cleanup(void)
{
    for (int i = 0; i < nkids; i++) {
        kill(kids[i], SIGKILL);
        waitpid(kids[i], NULL, 0);
    }
    nkids = 0;
    for (int i = ncgs - 1; i >= 0; i--) { /* children before their parents */
        char full[1024];
        snprintf(full, sizeof(full), "%s%s", sn_cgroup_root(), cgs[i]);
        for (int tries = 0; tries < 200 && rmdir(full) != 0 && errno == EBUSY; tries++)
            sleep_ms(5); /* the last task may still be leaving */
    }
    ncgs = 0;
}

/* Waits up to ms for one byte on fd. */
static bool wait_byte(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char c;
    return poll(&p, 1, ms) == 1 && read(fd, &c, 1) == 1;
}

enum work { SPIN, RSS64, PAGEIN };
static char *volatile hold;
static char pagein_file[256];

static void child(const char *rel, enum work w, int ready, int go)
{
    char full[1024], pid[32];
    int fd;

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm(60); /* whatever happens to the parent */
    snprintf(full, sizeof(full), "%s%s/cgroup.procs", sn_cgroup_root(), rel);
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    fd = open(full, O_WRONLY);
    if (fd < 0 || write(fd, pid, strlen(pid)) < 0)
        _exit(2);
    close(fd);
    if (w == SPIN) {
        volatile uint64_t x = 0;
        struct sched_param sp = {.sched_priority = 1};
        /* its CPU even on a busy host: real time (throttled to 95% by the kernel), or the
         * highest nice where that is not allowed */
        if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0)
            setpriority(PRIO_PROCESS, 0, -20);
        if (write(ready, "r", 1) != 1)
            _exit(3);
        for (;;)
            x++;
    }
    if (w == RSS64) {
        hold = malloc(64 * MIB); /* kept in a global: not a dead store to optimize away */
        if (!hold)
            _exit(4);
        memset(hold, 1, 64 * MIB);
        if (write(ready, "r", 1) != 1)
            _exit(3);
        for (;;)
            pause();
    }
    /* PAGEIN: in place, wait for the go, then fault the file in */
    if (write(ready, "r", 1) != 1 || !wait_byte(go, 20000))
        _exit(3);
    fd = open(pagein_file, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        _exit(5);
    volatile const char *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        _exit(6);
    unsigned sum = 0;
    for (off_t o = 0; o < st.st_size; o += 4096)
        sum += (unsigned char)m[o];
    (void)sum;
    if (write(ready, "d", 1) != 1)
        _exit(3);
    for (;;)
        pause();
}

/* Forks a child that joins cgroup rel and does w; returns its pid once it is in place (or -1).
 * ready_out, go_out (may be NULL) keep the pipes to it open for PAGEIN. */
static pid_t spawn(const char *rel, enum work w, int *ready_out, int *go_out)
{
    int ready[2], go[2];
    pid_t pid;

    if (nkids >= MAXKIDS || pipe(ready) != 0)
        return -1;
    if (pipe(go) != 0) {
        close(ready[0]);
        close(ready[1]);
        return -1;
    }
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        close(ready[0]);
        close(go[1]);
        child(rel, w, ready[1], go[0]);
        _exit(0);
    }
    close(ready[1]);
    close(go[0]);
    if (pid > 0)
        kids[nkids++] = pid;
    if (pid < 0 || !wait_byte(ready[0], 10000)) {
        close(ready[0]);
        close(go[1]);
        return -1;
    }
    if (ready_out)
        *ready_out = ready[0];
    else
        close(ready[0]);
    if (go_out)
        *go_out = go[1];
    else
        close(go[1]);
    return pid;
}

/* ---- cells ---- */

struct cells {
    int n, calls;
    struct sn_cell c[512];
};

static void on_cell(const struct sn_cell *c, void *arg)
{
    struct cells *cs = arg;
    cs->calls++;
    if (cs->n < 512)
        cs->c[cs->n++] = *c;
}

static struct sn_slot_spec spec_for(uint32_t metric, const char *pred_json, uint8_t key,
                                    uint32_t cap)
{
    struct sn_slot_spec sp = {
        .metric = metric, .key_field = key, .num_field = SN_NO_FIELD, .key_cap = cap};
    json_t *j = json_loads(pred_json, 0, NULL);
    char why[256];
    if (!j || sn_pred_compile(j, fields, 2, &sp.pred, why, sizeof(why)) != 0)
        sp.pred.n = 0;
    json_decref(j);
    sp.needs = 1u << SN_SC_CONTAINER | 1u << SN_SC_OPTYPE | 1u << SN_SC_DEVICE;
    return sp;
}

static int cells_of(struct sn_sampler *s, const struct sn_slot_spec *sp, struct cells *cs)
{
    memset(cs, 0, sizeof(*cs));
    int n = sn_sampler_cells(s, 7, sp, on_cell, cs);
    T_EQ(n, cs->calls);
    for (int i = 0; i < cs->n; i++) {
        T_EQ(cs->c[i].slot, 7);
        T_EQ(cs->c[i].ord, 0);
        T_OK(cs->c[i].count > 0); /* zero cells are not emitted */
    }
    return n;
}

/* The count of the (non-other) cell whose key is the number v; 0 when none. */
static uint64_t num_cell(const struct cells *cs, int64_t v)
{
    char key[SN_KEYLEN] = {0};
    memcpy(key, &v, sizeof(v));
    for (int i = 0; i < cs->n; i++)
        if (!cs->c[i].other && memcmp(cs->c[i].key, key, SN_KEYLEN) == 0)
            return cs->c[i].count;
    return 0;
}

static uint64_t sum_cells(const struct cells *cs)
{
    uint64_t t = 0;
    for (int i = 0; i < cs->n; i++)
        t += cs->c[i].count;
    return t;
}

/* /proc/stat's user+nice+system+irq+softirq, in clock ticks. */
static uint64_t host_busy_ticks(void)
{
    unsigned long long v[7] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
                   &v[5], &v[6]);
    fclose(f);
    return n == 7 ? v[0] + v[1] + v[2] + v[5] + v[6] : 0;
}

static struct sn_sampler *smp;

static void test_open(void)
{
    T_REQUIRE(sn_sampler_open(&smp) == 0);
    t_note("cgroup v2 mounted? (run as root)");
    T_REQUIRE(sn_cgroup_root() != NULL);
    /* nothing read yet: no cells for any metric */
    struct cells cs;
    for (uint32_t m = SN_METRIC_SAMPLED_FIRST; m < SN_NMETRICS; m++) {
        struct sn_slot_spec sp = spec_for(m, "{}", SN_NO_FIELD, 10);
        T_EQ(cells_of(smp, &sp, &cs), 0);
    }
}

static void cpu_body(void)
{
    char rel_a[128], rel_b[128], pred[256];
    uint64_t a, b, root;
    struct cells cs;

    T_REQUIRE(smp != NULL);
    T_REQUIRE(sn_cgroup_id("/", &root));
    T_REQUIRE(cg_make("cpua", rel_a, sizeof(rel_a), &a));
    T_REQUIRE(cg_make("cpub", rel_b, sizeof(rel_b), &b));
    T_REQUIRE(spawn(rel_a, SPIN, NULL, NULL) > 0);
    T_REQUIRE(spawn(rel_b, SPIN, NULL, NULL) > 0);
    if (t_realtime() != 0) /* read on time next to the spinners (above them) */
        setpriority(PRIO_PROCESS, 0, -20);

    T_EQ(sn_sampler_read(smp, BIT(SN_METRIC_CPU_USAGE)), 0);
    uint64_t h0 = host_busy_ticks();
    int64_t t0 = mono_ns();
    struct sn_slot_spec by_cg = spec_for(SN_METRIC_CPU_USAGE, "{}", SN_SC_CONTAINER, 100);
    T_EQ(cells_of(smp, &by_cg, &cs), 0); /* one reading: no usage yet */
    sleep_ms(500);
    /* the engine's first reading of another metric it enables: cpu keeps its baseline */
    T_EQ(sn_sampler_read(smp, BIT(SN_METRIC_NIC_BYTES)), 0);
    sleep_ms(500);
    T_EQ(sn_sampler_read(smp, BIT(SN_METRIC_CPU_USAGE)), 0);
    uint64_t h1 = host_busy_ticks();
    int64_t t1 = mono_ns();
    struct sched_param normal = {.sched_priority = 0};
    sched_setscheduler(0, SCHED_OTHER, &normal);

    /* by container: each spinner ~100% of a CPU; all containers add up to the host */
    T_OK(cells_of(smp, &by_cg, &cs) >= 2);
    uint64_t ua = num_cell(&cs, (int64_t)a), ub = num_cell(&cs, (int64_t)b);
    NOTE("a %" PRIu64 "%% b %" PRIu64 "%%", ua, ub);
    T_OK(ua >= 80 && ua <= 105);
    T_OK(ub >= 80 && ub <= 105);
    double host =
        (double)(h1 - h0) * 100.0 / (double)sysconf(_SC_CLK_TCK) / ((double)(t1 - t0) / 1e9);
    double sum = (double)sum_cells(&cs);
    NOTE("containers %.0f%% (root %" PRIu64 "%%), host %.1f%%", sum, num_cell(&cs, (int64_t)root),
         host);
    T_NEAR(sum, host, 6.0);
    for (int i = 0; i < cs.n; i++)
        T_OK(!cs.c[i].other);

    /* one container by cpumode: user, hardly any kernel */
    snprintf(pred, sizeof(pred), "{\"eq\":[\"container\",\"%s\"]}", rel_a);
    struct sn_slot_spec by_mode = spec_for(SN_METRIC_CPU_USAGE, pred, SN_SC_OPTYPE, 100);
    T_REQUIRE(by_mode.pred.n > 0);
    cells_of(smp, &by_mode, &cs);
    uint64_t user = num_cell(&cs, SN_CPUMODE_USER), kern = num_cell(&cs, SN_CPUMODE_KERNEL);
    NOTE("user %" PRIu64 "%% kernel %" PRIu64 "%%", user, kern);
    T_OK(user >= 80 && user <= 105);
    T_OK(kern <= 5);

    /* no decomposition: one cell, the sum */
    struct sn_slot_spec whole = spec_for(SN_METRIC_CPU_USAGE, pred, SN_NO_FIELD, 0);
    T_EQ(cells_of(smp, &whole, &cs), 1);
    T_NEAR((double)cs.c[0].count, (double)(user + kern), 1.0);

    /* key cap 1: the busiest container keeps its key, the rest is "other" */
    struct sn_slot_spec capped = spec_for(SN_METRIC_CPU_USAGE, "{}", SN_SC_CONTAINER, 1);
    T_EQ(cells_of(smp, &capped, &cs), 2);
    int real = 0, other = 0;
    for (int i = 0; i < cs.n; i++) {
        if (cs.c[i].other) {
            char zero[SN_KEYLEN] = {0};
            other++;
            T_MEM(cs.c[i].key, zero, SN_KEYLEN);
            T_OK(cs.c[i].count >= 80); /* at least the other spinner */
        } else {
            real++;
            T_OK(num_cell(&cs, (int64_t)a) || num_cell(&cs, (int64_t)b));
        }
    }
    T_EQ(real, 1);
    T_EQ(other, 1);
}

static void test_cpu(void)
{
    cpu_body();
    cleanup();
}

static void rss_body(void)
{
    char rel[128];
    uint64_t id;
    struct cells cs;

    T_REQUIRE(smp != NULL);
    T_REQUIRE(cg_make("rss", rel, sizeof(rel), &id));
    T_REQUIRE(spawn(rel, RSS64, NULL, NULL) > 0);
    T_EQ(sn_sampler_read(smp, BIT(SN_METRIC_MEM_RSS)), 0); /* a point metric: one reading */
    struct sn_slot_spec sp = spec_for(SN_METRIC_MEM_RSS, "{}", SN_SC_CONTAINER, 1000);
    T_OK(cells_of(smp, &sp, &cs) >= 2); /* the child's cgroup and the root at least */
    uint64_t v = num_cell(&cs, (int64_t)id);
    NOTE("rss %" PRIu64 " bytes", v);
    T_OK(v >= 64 * MIB && v < 96 * MIB);
    /* pageins was not asked for: no cells */
    struct sn_slot_spec pg = spec_for(SN_METRIC_MEM_PAGEINS, "{}", SN_SC_CONTAINER, 1000);
    T_EQ(cells_of(smp, &pg, &cs), 0);
}

static void test_rss(void)
{
    rss_body();
    cleanup();
}

/* "under": a parent cgroup's predicate picks the rows of its child, by path, for cpu.usage
 * (the cgroup walk) and memory.rss (/proc/<pid>/cgroup) alike */
static void under_body(void)
{
    char rel_u[128], rel_in[128], pred[512];
    uint64_t u, in, rss, cpu;
    struct cells cs;

    T_REQUIRE(smp != NULL);
    T_REQUIRE(cg_make("u", rel_u, sizeof(rel_u), &u));
    T_REQUIRE(cg_make("u/in", rel_in, sizeof(rel_in), &in));
    T_REQUIRE(spawn(rel_in, RSS64, NULL, NULL) > 0);
    T_REQUIRE(spawn(rel_in, SPIN, NULL, NULL) > 0);
    T_EQ(sn_sampler_read(smp, BIT(SN_METRIC_CPU_USAGE) | BIT(SN_METRIC_MEM_RSS)), 0);
    sleep_ms(300);
    T_EQ(sn_sampler_read(smp, BIT(SN_METRIC_CPU_USAGE) | BIT(SN_METRIC_MEM_RSS)), 0);

    const char *const under[] = {rel_u, rel_in};
    for (int i = 0; i < 2; i++) {
        snprintf(pred, sizeof(pred), "{\"under\":[\"container\",\"%s\"]}", under[i]);
        struct sn_slot_spec m = spec_for(SN_METRIC_MEM_RSS, pred, SN_SC_CONTAINER, 100);
        struct sn_slot_spec c = spec_for(SN_METRIC_CPU_USAGE, pred, SN_SC_CONTAINER, 100);
        T_REQUIRE(m.pred.n > 0 && c.pred.n > 0);
        T_EQ(cells_of(smp, &m, &cs), 1); /* the child cgroup's processes, nothing else */
        rss = num_cell(&cs, (int64_t)in);
        T_OK(rss >= 64 * MIB);
        T_EQ(cells_of(smp, &c, &cs), 1);
        cpu = num_cell(&cs, (int64_t)in);
        NOTE("under %s: rss %" PRIu64 ", cpu %" PRIu64 "%%", under[i], rss, cpu);
        T_OK(cpu >= 50);
    }
    /* a name that merely starts the same, and a path below that does not exist: nothing */
    snprintf(pred, sizeof(pred),
             "{\"or\":[{\"under\":[\"container\",\"%s/i\"]},"
             "{\"under\":[\"container\",\"%s/later\"]}]}",
             rel_u, rel_in);
    struct sn_slot_spec none = spec_for(SN_METRIC_MEM_RSS, pred, SN_SC_CONTAINER, 100);
    T_REQUIRE(none.pred.n > 0);
    T_EQ(cells_of(smp, &none, &cs), 0);
    none = spec_for(SN_METRIC_CPU_USAGE, pred, SN_SC_CONTAINER, 100);
    T_EQ(cells_of(smp, &none, &cs), 0);
}

static void test_under(void)
{
    under_body();
    cleanup();
}

/* A directory on a disk-backed file system (page cache eviction must be possible). */
static const char *disk_dir(void)
{
    static const char *const dirs[] = {"/tmp", "/var/tmp"};
    for (int i = 0; i < 2; i++) {
        struct statfs f;
        if (statfs(dirs[i], &f) == 0 && (unsigned long)f.f_type != 0x01021994ul /* tmpfs */ &&
            (unsigned long)f.f_type != 0x858458f6ul /* ramfs */)
            return dirs[i];
    }
    return NULL;
}

static void pagein_body(void)
{
    char rel[128];
    uint64_t id, root;
    int ready = -1, go = -1, fd;
    struct cells cs;
    const char *dir = disk_dir();
    size_t len = 8 * MIB;

    T_REQUIRE(smp != NULL);
    T_REQUIRE(sn_cgroup_id("/", &root));
    t_note("no disk-backed /tmp or /var/tmp");
    T_REQUIRE(dir != NULL);
    snprintf(pagein_file, sizeof(pagein_file), "%s/snt-%d-pagein", dir, (int)getpid());
    fd = open(pagein_file, O_RDWR | O_CREAT | O_TRUNC, 0600);
    T_REQUIRE(fd >= 0);
    char *buf = malloc(len);
    T_REQUIRE(buf != NULL);
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)(i * 7 + 1);
    bool ok = write(fd, buf, len) == (ssize_t)len && fsync(fd) == 0 &&
              posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0;
    free(buf);
    /* how much of the file is still cached (for the note on failure) */
    unsigned char vec[8 * 256];
    void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    size_t resident = 0;
    if (m != MAP_FAILED && mincore(m, len, vec) == 0)
        for (size_t i = 0; i < len / 4096; i++)
            resident += vec[i] & 1;
    if (m != MAP_FAILED)
        munmap(m, len);
    close(fd);
    T_REQUIRE(ok);

    T_OK(cg_make("pg", rel, sizeof(rel), &id));
    pid_t kid = spawn(rel, PAGEIN, &ready, &go);
    if (kid > 0) {
        struct sn_slot_spec sp = spec_for(SN_METRIC_MEM_PAGEINS, "{}", SN_SC_CONTAINER, 1000);
        T_EQ(sn_sampler_read(smp, BIT(SN_METRIC_MEM_PAGEINS)), 0);
        T_EQ(cells_of(smp, &sp, &cs), 0); /* an interval metric: one reading is a baseline */
        T_OK(write(go, "g", 1) == 1);
        T_OK(wait_byte(ready, 20000)); /* every page touched */
        T_EQ(sn_sampler_read(smp, BIT(SN_METRIC_MEM_PAGEINS)), 0);
        cells_of(smp, &sp, &cs);
        uint64_t v = num_cell(&cs, (int64_t)id), r = num_cell(&cs, (int64_t)root);
        NOTE("pageins %" PRIu64 " in the child's cgroup, %" PRIu64
             " in the root; %zu of %zu pages were cached before",
             v, r, resident, len / 4096);
        T_OK(v >= 1);
        T_OK(v <= len / 4096 + 64);
        T_OK(r < (1ull << 40)); /* the remainder is clamped, never a wrapped negative */
    }
    T_OK(kid > 0);
    if (ready >= 0)
        close(ready);
    if (go >= 0)
        close(go);
}

static void test_pageins(void)
{
    pagein_body();
    cleanup();
    if (pagein_file[0])
        unlink(pagein_file);
}

/* lo's transmitted bytes from /proc/net/dev, read here independently */
static uint64_t lo_tx(void)
{
    char line[512];
    unsigned long long v[9] = {0};
    FILE *f = fopen("/proc/net/dev", "r");

    for (int i = 0; f && i < 1000 && fgets(line, sizeof(line), f); i++)
        if (sscanf(line, " lo: %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                   &v[3], &v[4], &v[5], &v[6], &v[7], &v[8]) == 9)
            break;
    if (f)
        fclose(f);
    return v[8];
}

/* Sends n datagrams of 1000 bytes to sa from fd (its own address) and drains them; returns how
 * many were sent. */
static int send_burst(int fd, const struct sockaddr_in *sa, int n)
{
    char dgram[1000], sink[2048];
    int sent = 0;

    memset(dgram, 'x', sizeof(dgram));
    for (int i = 0; i < n; i++) {
        sent += sendto(fd, dgram, sizeof(dgram), 0, (const struct sockaddr *)sa, sizeof(*sa)) ==
                (ssize_t)sizeof(dgram);
        while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0) /* at most what was sent */
            ;
    }
    return sent;
}

static void nic_body(struct sn_sampler *s, int fd)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    struct cells cs;

    T_OK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    T_OK(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
    uint64_t nic = BIT(SN_METRIC_NIC_BYTES) | BIT(SN_METRIC_NIC_PACKETS);
    struct sn_slot_spec bytes =
        spec_for(SN_METRIC_NIC_BYTES, "{\"eq\":[\"nic\",\"lo\"]}", SN_SC_OPTYPE, 10);
    struct sn_slot_spec packets =
        spec_for(SN_METRIC_NIC_PACKETS, "{\"eq\":[\"nic\",\"lo\"]}", SN_SC_OPTYPE, 10);
    T_REQUIRE(bytes.pred.n > 0 && packets.pred.n > 0);

    uint64_t tx0 = lo_tx();
    T_EQ(sn_sampler_read(s, nic), 0);
    T_EQ(cells_of(s, &bytes, &cs), 0);
    T_EQ(send_burst(fd, &sa, 100), 100);
    uint64_t tx1 = lo_tx();
    T_EQ(sn_sampler_read(s, nic), 0);
    uint64_t tx2 = lo_tx();
    cells_of(s, &bytes, &cs);
    uint64_t in = num_cell(&cs, SN_DIR_IN), out = num_cell(&cs, SN_DIR_OUT);
    NOTE("lo in %" PRIu64 " out %" PRIu64 " bytes, %" PRIu64 " around", in, out, tx2 - tx0);
    T_OK(out >= 100000);
    T_OK(in >= 100000);
    T_OK(out <= tx2 - tx0); /* a difference, not the counter (other tests may use lo too) */
    cells_of(s, &packets, &cs);
    T_OK(num_cell(&cs, SN_DIR_OUT) >= 100);
    T_OK(num_cell(&cs, SN_DIR_IN) >= 100);

    /* by interface: lo is a string key, NUL padded */
    struct sn_slot_spec by_nic = spec_for(SN_METRIC_NIC_PACKETS, "{}", SN_SC_DEVICE, 100);
    cells_of(s, &by_nic, &cs);
    char lo[SN_KEYLEN] = "lo";
    bool found = false;
    for (int i = 0; i < cs.n; i++)
        if (memcmp(cs.c[i].key, lo, SN_KEYLEN) == 0)
            found = cs.c[i].count >= 200;
    T_OK(found);

    /* a reading of other metrics in between (the engine enabling one): no nic rows in it, and
     * the next nic difference still runs from nic's last reading */
    T_EQ(sn_sampler_read(s, BIT(SN_METRIC_CPU_USAGE)), 0);
    T_EQ(cells_of(s, &bytes, &cs), 0);
    T_EQ(send_burst(fd, &sa, 10), 10);
    T_EQ(sn_sampler_read(s, nic), 0);
    uint64_t tx3 = lo_tx();
    cells_of(s, &bytes, &cs);
    out = num_cell(&cs, SN_DIR_OUT);
    NOTE("lo out %" PRIu64 " bytes after a reading without nic, %" PRIu64 " around", out,
         tx3 - tx1);
    T_OK(out >= 10000);
    T_OK(out <= tx3 - tx1); /* since nic's last reading, not its first */

    /* nic.bytes alone read in between (the engine enabling it while nic.packets runs):
     * nic.packets' interval still starts at its own last reading */
    T_EQ(send_burst(fd, &sa, 10), 10);
    T_EQ(sn_sampler_read(s, BIT(SN_METRIC_NIC_BYTES)), 0);
    T_EQ(send_burst(fd, &sa, 10), 10);
    T_EQ(sn_sampler_read(s, nic), 0);
    cells_of(s, &packets, &cs);
    NOTE("lo out %" PRIu64 " packets over both", num_cell(&cs, SN_DIR_OUT));
    T_OK(num_cell(&cs, SN_DIR_OUT) >= 20);
    cells_of(s, &bytes, &cs);
    T_OK(num_cell(&cs, SN_DIR_OUT) >= 10000);
}

static void test_nic(void)
{
    struct sn_sampler *s = NULL; /* a fresh one: its first reading is a baseline */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);

    T_OK(fd >= 0);
    T_OK(sn_sampler_open(&s) == 0);
    if (fd >= 0 && s)
        nic_body(s, fd);
    if (fd >= 0)
        close(fd);
    sn_sampler_close(s);
}

static void test_cost(void)
{
    int64_t worst = 0, total = 0;
    int n = 0;

    T_REQUIRE(smp != NULL);
    T_EQ(sn_sampler_read(smp, ALL), 0);
    for (int i = 0; i < 20; i++) {
        int64_t t = mono_ns();
        T_EQ(sn_sampler_read(smp, ALL), 0);
        t = mono_ns() - t;
        total += t;
        worst = t > worst ? t : worst;
        n++;
    }
    DIR *d = opendir("/proc");
    int procs = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        procs += e->d_name[0] >= '1' && e->d_name[0] <= '9';
    if (d)
        closedir(d);
    printf("# sn_sampler_read(all): %.2f ms mean, %.2f ms max over %d readings (%d processes)\n",
           (double)total / n / 1e6, (double)worst / 1e6, n, procs);
    T_OK(total / n < 500000000); /* a sanity bound: far below the second between readings */
    /* every metric has rows after two full readings (cpu and rss always have some) */
    struct cells cs;
    struct sn_slot_spec sp = spec_for(SN_METRIC_MEM_RSS, "{}", SN_NO_FIELD, 0);
    T_EQ(cells_of(smp, &sp, &cs), 1);
    sp = spec_for(SN_METRIC_CPU_USAGE, "{}", SN_SC_CONTAINER, 1000);
    T_OK(cells_of(smp, &sp, &cs) >= 0);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("open", test_open);
    t_run("cpu_usage", test_cpu);
    t_run("memory_rss", test_rss);
    t_run("under", test_under);
    t_run("memory_pageins", test_pageins);
    t_run("nic", test_nic);
    t_run("cost", test_cost);
    sn_sampler_close(smp);
    return t_done();
}
