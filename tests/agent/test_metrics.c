/*
 * The catalog's metrics on the real kernel, end to end through the agent's own path: a CA
 * create body (agent/probe.h) enabled in its source (the engine for traced metrics, the
 * sampler for sampled ones, as agent/agent.c does), collected into frames (agent/frame_build.h)
 * with keys rendered as text. Each case runs a workload with a known answer in a child process and
 * holds the frames to it: file-system operations by type and size, TCP connects and accepts
 * by address and port, a retransmitted SYN, thread executions and 99 Hz samples, PostgreSQL
 * queries through its USDT probes, a generic USDT probe pair (plain and semaphore-guarded),
 * psargs and subsecond, and the sampled metrics.
 *
 * Usage: test_metrics SDT_PROG [filter] (SDT_PROG: tests/support/sdt_prog).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "agent/catalog.h"
#include "agent/engine.h"
#include "agent/frame_build.h"
#include "agent/probe.h"
#include "agent/sampled.h"
#include "core/hist.h"
#include "pg.h"
#include "kernel_view.h"
#include "workload.h"
#include "t.h"

static struct sn_engine *eng;
static struct sn_sampler *sampler; /* the sampled metrics' source */
static const char *sdt_prog;
static char host[256];

/* An instrumentation enabled in the engine, and the frame its cells accumulate into across
 * collections. */
struct probe {
    struct sn_probe in;
    struct sn_frame f;
    bool sampled; /* in the sampler; in.slot is then a number of the test's, past the engine's */
};

static bool is_sampled(uint32_t metric)
{
    return metric >= SN_METRIC_SAMPLED_FIRST;
}

static bool enable(struct probe *p, const char *body)
{
    char why[512];
    json_t *j = json_loads(body, 0, NULL);
    int rc = j ? sn_probe_compile(j, "t", host, 1000, &p->in, why, sizeof(why)) : -1;

    json_decref(j);
    if (rc < 0) {
        t_note("%s: %s", body, j ? why : "bad JSON");
        return false;
    }
    p->sampled = is_sampled(p->in.metric->metric);
    if (p->sampled) {
        static int next_slot = SN_MAX_SLOTS;
        p->in.slot = next_slot++;
        sn_sampler_read(sampler, 1ull << p->in.metric->metric); /* a first reading */
    } else {
        p->in.slot = sn_engine_enable(eng, &p->in.spec);
    }
    if (p->in.slot < 0) {
        t_note("enable %s: %s", body, strerror(-p->in.slot));
        return false;
    }
    sn_frame_init(&p->f, &p->in, 0);
    p->f.engine = eng;
    return true;
}

static void disable(struct probe *p)
{
    if (p->in.slot >= 0 && !p->sampled)
        sn_engine_disable(eng, p->in.slot);
    p->in.slot = -1;
    sn_frame_fini(&p->f);
}

struct collect_arg {
    struct probe **p;
    int n;
};

static void on_cell(const struct sn_cell *c, void *arg)
{
    struct collect_arg *a = arg;
    for (int i = 0; i < a->n; i++)
        if (a->p[i]->in.slot == c->slot)
            sn_frame_add(&a->p[i]->f, c, host);
}

/* One collection into the probes' frames. */
static void collect(struct probe **p, int n)
{
    struct collect_arg a = {p, n};
    uint64_t mask = 0;
    sn_engine_collect(eng, on_cell, &a, NULL);
    for (int i = 0; i < n; i++)
        if (p[i]->sampled)
            mask |= 1ull << p[i]->in.metric->metric;
    if (mask && sn_sampler_read(sampler, mask) == 0)
        for (int i = 0; i < n; i++)
            if (p[i]->sampled)
                sn_sampler_cells(sampler, p[i]->in.slot, &p[i]->in.spec, on_cell, &a);
}

static const struct sn_frame_entry *entry(const struct probe *p, const char *key)
{
    for (size_t i = 0; i < p->f.n; i++)
        if (strcmp(p->f.entries[i].key, key) == 0)
            return &p->f.entries[i];
    return NULL;
}

static uint64_t count_of(const struct probe *p, const char *key)
{
    const struct sn_frame_entry *e = entry(p, key);
    return e ? e->count : 0;
}

static void dump(const struct probe *p)
{
    for (size_t i = 0; i < p->f.n && i < 12; i++)
        t_note("  key %s: %llu", p->f.entries[i].key, (unsigned long long)p->f.entries[i].count);
}

/* Runs fn in a child and waits for it; returns its pid (the child is reaped). */
static pid_t run_child(void (*fn)(void *), void *arg)
{
    pid_t c = fork();
    if (c == 0) {
        fn(arg);
        _exit(0);
    }
    if (c > 0)
        waitpid(c, NULL, 0);
    return c;
}

/* --- fs.logical_ops ------------------------------------------------------------------------ */

static char fs_path[256];

static void fs_workload(void *arg)
{
    (void)arg;
    char buf[4096];
    struct stat st;
    int fd = open(fs_path, O_RDWR | O_CREAT | O_TRUNC, 0600);

    memset(buf, 'f', sizeof(buf));
    for (int i = 0; i < 10; i++)
        if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
            _exit(1);
    for (int i = 0; i < 5; i++)
        if (pread(fd, buf, 1000, 8192) != 1000)
            _exit(1);
    fstat(fd, &st);
    fsync(fd);
    close(fd);
    stat(fs_path, &st);
}

/* The type of the file system holding path, from mountinfo, as the kernel names it. */
static void fstype_of_path(const char *path, char *out, size_t len)
{
    struct stat st;
    char line[4096];
    FILE *f = fopen("/proc/self/mountinfo", "r");

    snprintf(out, len, "?");
    if (!f || stat(path, &st) != 0) {
        if (f)
            fclose(f);
        return;
    }
    while (fgets(line, sizeof(line), f)) {
        unsigned ma, mi;
        char type[64];
        const char *dash = strstr(line, " - ");
        if (dash && sscanf(line, "%*s %*s %u:%u", &ma, &mi) == 2 && ma == major(st.st_dev) &&
            mi == minor(st.st_dev) && sscanf(dash, " - %63s", type) == 1) {
            snprintf(out, len, "%.15s", type);
            break;
        }
    }
    fclose(f);
}

static void test_fs_logical_ops(void)
{
    struct probe byop = {0}, bytype = {0}, wsize = {0}, roff = {0};
    struct probe *all[] = {&byop, &bytype, &wsize, &roff};
    char body[512], fstype[64];
    struct t_gated g;

    snprintf(fs_path, sizeof(fs_path), "/var/tmp/sonde-fs.%d", (int)getpid());
    g = t_gated_start(fs_workload, NULL);
    T_REQUIRE(g.pid > 0);
    snprintf(body, sizeof(body),
             "{\"module\":\"fs\",\"stat\":\"logical_ops\",\"decomposition\":[\"optype\"],"
             "\"predicate\":{\"eq\":[\"pid\",\"%d\"]}}",
             (int)g.pid);
    T_REQUIRE(enable(&byop, body));
    snprintf(body, sizeof(body),
             "{\"module\":\"fs\",\"stat\":\"logical_ops\",\"decomposition\":[\"fstype\"],"
             "\"predicate\":{\"eq\":[\"pid\",\"%d\"]}}",
             (int)g.pid);
    T_REQUIRE(enable(&bytype, body));
    snprintf(body, sizeof(body),
             "{\"module\":\"fs\",\"stat\":\"logical_ops\",\"decomposition\":[\"size\"],"
             "\"predicate\":{\"and\":[{\"eq\":[\"pid\",\"%d\"]},{\"eq\":[\"optype\",\"write\"]}]}}",
             (int)g.pid);
    T_REQUIRE(enable(&wsize, body));
    snprintf(body, sizeof(body),
             "{\"module\":\"fs\",\"stat\":\"logical_ops\",\"decomposition\":[\"offset\"],"
             "\"predicate\":{\"and\":[{\"eq\":[\"pid\",\"%d\"]},{\"eq\":[\"optype\",\"read\"]}]}}",
             (int)g.pid);
    T_REQUIRE(enable(&roff, body));
    collect(all, 4);
    t_gated_release(&g);
    collect(all, 4);
    fstype_of_path("/var/tmp", fstype, sizeof(fstype));
    unlink(fs_path);
    dump(&byop);
    dump(&bytype);
    T_EQU(count_of(&byop, "open"), 1);
    T_EQU(count_of(&byop, "write"), 10);
    T_EQU(count_of(&byop, "read"), 5);
    T_EQU(count_of(&byop, "fsync"), 1);
    T_EQU(count_of(&byop, "close"), 1);
    T_EQU(count_of(&byop, "getattr"), 2); /* fstat by fd, stat by path */
    /* every one of them on /var/tmp's file system, including the stat by path */
    T_EQU(count_of(&bytype, fstype), 20);
    T_EQU(bytype.f.count, 20);
    T_EQU(wsize.f.count, 10);
    T_REQUIRE(wsize.f.hist != NULL);
    T_EQU(sn_hist_bucket_count(wsize.f.hist, sn_bucket_from_double(4096)), 10);
    T_REQUIRE(roff.f.hist != NULL);
    T_EQU(sn_hist_bucket_count(roff.f.hist, sn_bucket_from_double(8192)), 5);
    for (int i = 0; i < 4; i++)
        disable(all[i]);
}

/* Operations that fail: 3 opens and 2 stats of a path that does not exist and a read of a bad
 * descriptor have no file to name; a failed seek on an open file keeps its file system's. */
static void fs_failing_workload(void *arg)
{
    (void)arg;
    char buf[16];
    struct stat st;

    for (int i = 0; i < 3; i++)
        if (open("/nonexistent-sonde/x", O_RDONLY) >= 0)
            _exit(1);
    for (int i = 0; i < 2; i++)
        if (stat("/nonexistent-sonde/x", &st) == 0)
            _exit(1);
    if (read(-1, buf, 1) >= 0)
        _exit(1);
    int fd = open(fs_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || lseek(fd, -1, SEEK_SET) >= 0)
        _exit(1);
    close(fd);
}

static void test_fs_failed_ops_fstype(void)
{
    struct probe bytype = {0}, unknown = {0};
    struct probe *all[] = {&bytype, &unknown};
    char body[512], fstype[64];
    struct t_gated g;

    snprintf(fs_path, sizeof(fs_path), "/var/tmp/sonde-fsfail.%d", (int)getpid());
    g = t_gated_start(fs_failing_workload, NULL);
    T_REQUIRE(g.pid > 0);
    snprintf(body, sizeof(body),
             "{\"module\":\"fs\",\"stat\":\"logical_ops\",\"decomposition\":[\"fstype\"],"
             "\"predicate\":{\"eq\":[\"pid\",\"%d\"]}}",
             (int)g.pid);
    T_REQUIRE(enable(&bytype, body));
    snprintf(body, sizeof(body),
             "{\"module\":\"fs\",\"stat\":\"logical_ops\",\"decomposition\":[\"optype\"],"
             "\"predicate\":{\"and\":[{\"eq\":[\"pid\",\"%d\"]},{\"eq\":[\"fstype\","
             "\"" SN_FSTYPE_UNKNOWN "\"]}]}}",
             (int)g.pid);
    T_REQUIRE(enable(&unknown, body));
    collect(all, 2);
    t_gated_release(&g);
    collect(all, 2);
    fstype_of_path("/var/tmp", fstype, sizeof(fstype));
    unlink(fs_path);
    dump(&bytype);
    dump(&unknown);
    T_EQU(count_of(&bytype, ""), 0); /* never an empty key */
    T_EQU(count_of(&bytype, SN_FSTYPE_UNKNOWN), 6);
    T_EQU(count_of(&bytype, fstype), 3); /* open, the failed lseek, close */
    T_EQU(bytype.f.count, 9);
    T_EQU(count_of(&unknown, "open"), 3);
    T_EQU(count_of(&unknown, "getattr"), 2);
    T_EQU(count_of(&unknown, "read"), 1);
    T_EQU(unknown.f.count, 6);
    disable(&bytype);
    disable(&unknown);
}

/* --- tcp ----------------------------------------------------------------------------------- */

static int listener(int family, int backlog, int *port)
{
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr *a = family == AF_INET ? (struct sockaddr *)&a4 : (struct sockaddr *)&a6;
    socklen_t len = family == AF_INET ? sizeof(a4) : sizeof(a6);
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0 || bind(fd, a, len) != 0 || listen(fd, backlog) != 0 ||
        getsockname(fd, a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(family == AF_INET ? a4.sin_port : a6.sin6_port);
    return fd;
}

struct connects {
    int family, port, n;
};

static void connect_workload(void *arg)
{
    const struct connects *c = arg;
    for (int i = 0; i < c->n; i++) {
        struct sockaddr_in6 a6 = {.sin6_family = AF_INET6,
                                  .sin6_port = htons((uint16_t)c->port),
                                  .sin6_addr = IN6ADDR_LOOPBACK_INIT};
        struct sockaddr_in a4 = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)c->port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int fd = socket(c->family, SOCK_STREAM, 0);
        if (c->family == AF_INET)
            connect(fd, (struct sockaddr *)&a4, sizeof(a4));
        else
            connect(fd, (struct sockaddr *)&a6, sizeof(a6));
        close(fd);
    }
}

static void test_tcp_connects_accepts(void)
{
    struct probe con = {0}, con6 = {0}, acc = {0}, conlat = {0};
    struct probe *all[] = {&con, &con6, &acc, &conlat};
    int port, port6, l4, l6;
    char body[512], key[16];
    struct connects w4, w6;
    struct t_gated g4, g6;

    l4 = listener(AF_INET, 64, &port);
    l6 = listener(AF_INET6, 64, &port6);
    T_REQUIRE(l4 >= 0 && l6 >= 0);
    w4 = (struct connects){AF_INET, port, 5};
    w6 = (struct connects){AF_INET6, port6, 3};
    g4 = t_gated_start(connect_workload, &w4);
    g6 = t_gated_start(connect_workload, &w6);
    T_REQUIRE(g4.pid > 0 && g6.pid > 0);
    snprintf(body, sizeof(body),
             "{\"module\":\"tcp\",\"stat\":\"connects\",\"decomposition\":[\"rport\"],"
             "\"predicate\":{\"and\":[{\"eq\":[\"pid\",\"%d\"]},{\"eq\":[\"raddr\","
             "\"127.0.0.1\"]}]}}",
             (int)g4.pid);
    T_REQUIRE(enable(&con, body));
    snprintf(body, sizeof(body),
             "{\"module\":\"tcp\",\"stat\":\"connects\",\"decomposition\":[\"raddr\"],"
             "\"predicate\":{\"eq\":[\"pid\",\"%d\"]}}",
             (int)g6.pid);
    T_REQUIRE(enable(&con6, body));
    snprintf(body, sizeof(body),
             "{\"module\":\"tcp\",\"stat\":\"accepts\",\"decomposition\":[\"raddr\"],"
             "\"predicate\":{\"or\":[{\"eq\":[\"lport\",\"%d\"]},{\"eq\":[\"lport\",\"%d\"]}]}}",
             port, port6);
    T_REQUIRE(enable(&acc, body));
    snprintf(body, sizeof(body),
             "{\"module\":\"tcp\",\"stat\":\"connects\",\"decomposition\":[\"execname\","
             "\"latency\"],\"predicate\":{\"eq\":[\"pid\",\"%d\"]}}",
             (int)g4.pid);
    T_REQUIRE(enable(&conlat, body));
    collect(all, 4);
    t_gated_release(&g4);
    t_gated_release(&g6);
    collect(all, 4);
    close(l4);
    close(l6);
    dump(&con);
    dump(&con6);
    dump(&acc);
    snprintf(key, sizeof(key), "%d", port);
    T_EQU(count_of(&con, key), 5);
    T_EQU(con.f.count, 5);
    T_EQU(count_of(&con6, "::1"), 3);
    T_EQU(count_of(&acc, "127.0.0.1"), 5);
    T_EQU(count_of(&acc, "::1"), 3);
    char comm[16] = {0};
    T_OK(prctl(PR_GET_NAME, comm) == 0);
    const struct sn_frame_entry *e = entry(&conlat, comm);
    T_REQUIRE(e != NULL && e->hist != NULL);
    T_EQU(sn_hist_count(e->hist), 5);
    T_EQU(sn_hist_count_below(e->hist, 0, true), 0); /* a handshake takes time */
    for (int i = 0; i < 4; i++)
        disable(all[i]);
}

/* A listener whose accept queue is full drops the next SYN; the client retransmits it after
 * TCP's initial timeout (1 s). */
static void test_tcp_retransmits(void)
{
    struct probe rt = {0};
    struct probe *all[] = {&rt};
    char body[256], key[16];
    int port, l = listener(AF_INET, 0, &port), c[4];

    T_REQUIRE(l >= 0);
    snprintf(body, sizeof(body),
             "{\"module\":\"tcp\",\"stat\":\"retransmits\",\"decomposition\":[\"rport\"],"
             "\"predicate\":{\"eq\":[\"rport\",\"%d\"]}}",
             port);
    T_REQUIRE(enable(&rt, body));
    collect(all, 1);
    for (int i = 0; i < 4; i++) { /* the first fills the queue; the others' SYNs are dropped */
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        c[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(c[i], (struct sockaddr *)&a, sizeof(a));
    }
    for (int s = 0; s < 6 && rt.f.count == 0; s++) { /* at most 6 s */
        sleep(1);
        collect(all, 1);
    }
    for (int i = 0; i < 4; i++)
        close(c[i]);
    close(l);
    snprintf(key, sizeof(key), "%d", port);
    dump(&rt);
    T_OK(count_of(&rt, key) >= 1);
    T_EQU(count_of(&rt, key), rt.f.count);
    disable(&rt);
}

/* --- cpu ------------------------------------------------------------------------------------ */

static void sleeper(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

static void test_thread_executions(void)
{
    struct probe ex = {0}, rt = {0};
    struct probe *all[] = {&ex, &rt};
    char body[512];
    struct t_gated g = t_gated_start(sleeper, NULL);

    T_REQUIRE(g.pid > 0);
    snprintf(body, sizeof(body),
             "{\"module\":\"cpu\",\"stat\":\"thread_executions\",\"decomposition\":"
             "[\"leavereason\"],\"predicate\":{\"eq\":[\"pid\",\"%d\"]}}",
             (int)g.pid);
    T_REQUIRE(enable(&ex, body));
    snprintf(body, sizeof(body),
             "{\"module\":\"cpu\",\"stat\":\"thread_executions\",\"decomposition\":"
             "[\"runtime\"],\"predicate\":{\"eq\":[\"pid\",\"%d\"]}}",
             (int)g.pid);
    T_REQUIRE(enable(&rt, body));
    collect(all, 2);
    t_gated_release(&g);
    collect(all, 2);
    dump(&ex);
    /* each sleep leaves the CPU sleeping once; the pipe read before them once more */
    T_OK(count_of(&ex, "sleeping") >= 20 && count_of(&ex, "sleeping") <= 24);
    T_OK(count_of(&ex, "exited") <= 1);
    T_REQUIRE(rt.f.hist != NULL);
    T_EQU(sn_hist_count(rt.f.hist), ex.f.count);
    T_EQU(sn_hist_count_above(rt.f.hist, 1e9, true), 0); /* no execution longer than 1 s */
    disable(&ex);
    disable(&rt);
}

static void spinner(void *arg)
{
    struct timespec t0, t;
    long ms = *(long *)arg;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do
        clock_gettime(CLOCK_MONOTONIC, &t);
    while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

static void test_thread_samples(void)
{
    struct probe mine = {0}, total = {0};
    struct probe *all[] = {&mine, &total};
    char body[512];
    long ms = 2000;
    struct t_gated g = t_gated_start(spinner, &ms);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    struct timespec t0, t1;

    T_REQUIRE(g.pid > 0);
    snprintf(body, sizeof(body),
             "{\"module\":\"cpu\",\"stat\":\"thread_samples\",\"decomposition\":"
             "[\"subsecond\"],\"predicate\":{\"eq\":[\"pid\",\"%d\"]}}",
             (int)g.pid);
    T_REQUIRE(enable(&mine, body));
    T_REQUIRE(enable(&total, "{\"module\":\"cpu\",\"stat\":\"thread_samples\"}"));
    collect(all, 2);
    sn_frame_fini(&total.f);
    sn_frame_init(&total.f, &total.in, 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    t_gated_release(&g);
    collect(all, 2);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    t_note("%llu samples of the spinner, %llu in all over %.2f s on %ld CPUs",
           (unsigned long long)mine.f.count, (unsigned long long)total.f.count, secs, ncpu);
    /* 2 s on a CPU at 99 Hz: about 198 (fewer when it shares its CPU with other work) */
    T_OK(mine.f.count >= 60 && mine.f.count <= 215);
    /* at most 99 a second per CPU (an idle CPU of a VM may be sampled less: its timer is
     * deferred while it sleeps) */
    T_OK(total.f.count >= mine.f.count && (double)total.f.count <= 1.1 * 99 * (double)ncpu * secs);
    T_REQUIRE(mine.f.hist != NULL);
    T_EQU(sn_hist_count_above(mine.f.hist, 999, false), 0); /* subsecond is ms in [0, 999] */
    T_OK(sn_hist_nbuckets(mine.f.hist) > 20);               /* and spread over the second */
    disable(&mine);
    disable(&total);
}

/* --- postgres.queries, usdt.probes ------------------------------------------------------------ */

static void test_postgres_queries(void)
{
    struct probe q = {0}, lat = {0};
    struct probe *all[] = {&q, &lat};
    struct sn_pg pg;
    char sql[2048];
    size_t at = 0;

    T_REQUIRE(sn_pg_start(&pg) == 0);
    T_REQUIRE(enable(&q, "{\"module\":\"postgres\",\"stat\":\"queries\","
                         "\"decomposition\":[\"querysubstr\"]}"));
    T_REQUIRE(enable(&lat, "{\"module\":\"postgres\",\"stat\":\"queries\","
                           "\"decomposition\":[\"latency\"],\"predicate\":"
                           "{\"eq\":[\"querysubstr\",\"SELECT pg_sleep(\"]}}"));
    collect(all, 2);
    for (int i = 0; i < 20; i++)
        at += (size_t)snprintf(sql + at, sizeof(sql) - at, "SELECT %d;\n", 1000 + i);
    for (int i = 0; i < 3; i++)
        at += (size_t)snprintf(sql + at, sizeof(sql) - at, "SELECT pg_sleep(0.01);\n");
    T_EQ(sn_pg_exec(&pg, sql), 0);
    collect(all, 2);
    sn_pg_stop(&pg);
    dump(&q);
    uint64_t selects = 0;
    for (size_t i = 0; i < q.f.n; i++)
        if (strncmp(q.f.entries[i].key, "SELECT 10", 9) == 0)
            selects += q.f.entries[i].count;
    T_EQU(selects, 20);
    T_EQU(count_of(&q, "SELECT 1000;"), 1);
    T_EQU(count_of(&q, "SELECT pg_sleep"), 3); /* the first 15 bytes */
    T_EQU(lat.f.count, 3);
    T_REQUIRE(lat.f.hist != NULL);
    T_EQU(sn_hist_count_below(lat.f.hist, 1e7, false), 0); /* each slept 10 ms */
    disable(&q);
    disable(&lat);
}

static void test_usdt_probes(void)
{
    struct probe work = {0}, sem = {0}, byarg = {0};
    struct probe *all[] = {&work, &sem, &byarg};
    char body[2048], path[PATH_MAX];

    T_REQUIRE(realpath(sdt_prog, path) != NULL && strlen(path) < 512);
    snprintf(body, sizeof(body),
             "{\"module\":\"usdt\",\"stat\":\"probes\",\"decomposition\":[\"latency\"],"
             "\"predicate\":{\"and\":[{\"eq\":[\"path\",\"%.512s\"]},{\"eq\":[\"provider\","
             "\"sonde_test\"]},{\"eq\":[\"probe\",\"work\"]}]}}",
             path);
    T_REQUIRE(enable(&work, body));
    snprintf(body, sizeof(body),
             "{\"module\":\"usdt\",\"stat\":\"probes\",\"predicate\":{\"and\":[{\"eq\":"
             "[\"path\",\"%.512s\"]},{\"eq\":[\"provider\",\"sonde_test\"]},{\"eq\":[\"probe\","
             "\"sem\"]}]}}",
             path);
    T_REQUIRE(enable(&sem, body));
    snprintf(body, sizeof(body),
             "{\"module\":\"usdt\",\"stat\":\"probes\",\"decomposition\":[\"arg0\"],"
             "\"predicate\":{\"and\":[{\"eq\":[\"path\",\"%.512s\"]},{\"eq\":[\"provider\","
             "\"sonde_test\"]},{\"eq\":[\"probe\",\"work\"]},{\"lt\":[\"arg0\",5]}]}}",
             path);
    T_REQUIRE(enable(&byarg, body));
    collect(all, 3);
    pid_t c = fork();
    if (c == 0) {
        execl(sdt_prog, sdt_prog, "10", "2000", (char *)NULL);
        _exit(127);
    }
    int st = -1;
    waitpid(c, &st, 0);
    T_EQ(st, 0);
    collect(all, 3);
    T_EQU(work.f.count, 10);
    T_REQUIRE(work.f.hist != NULL);
    T_EQU(sn_hist_count_below(work.f.hist, 2e6, false), 0); /* each pair spans a 2 ms sleep */
    T_EQU(sem.f.count, 10);                                 /* the semaphore was set */
    T_EQU(byarg.f.count, 5);                                /* i = 0..4 */
    T_REQUIRE(byarg.f.hist != NULL);
    T_EQU(sn_hist_count_above(byarg.f.hist, 4, false), 0);
    for (int i = 0; i < 3; i++)
        disable(all[i]);
    /* a pair that is not in the binary: a clear failure, nothing left attached */
    snprintf(body, sizeof(body),
             "{\"module\":\"usdt\",\"stat\":\"probes\",\"predicate\":{\"and\":[{\"eq\":"
             "[\"path\",\"%.512s\"]},{\"eq\":[\"provider\",\"sonde_test\"]},{\"eq\":[\"probe\","
             "\"nosuch\"]}]}}",
             path);
    struct probe bad = {0};
    T_OK(!enable(&bad, body));
}

/* --- psargs, subsecond, sampled metrics --------------------------------------------------- */

static void test_psargs(void)
{
    struct probe byargs = {0}, pred = {0};
    struct probe *all[] = {&byargs, &pred};

    T_REQUIRE(enable(&byargs, "{\"module\":\"unix\",\"stat\":\"proc_exits\","
                              "\"decomposition\":[\"psargs\"],\"predicate\":"
                              "{\"eq\":[\"execname\",\"sleep\"]}}"));
    T_REQUIRE(enable(&pred, "{\"module\":\"syscall\",\"stat\":\"syscalls\","
                            "\"predicate\":{\"and\":[{\"eq\":[\"psargs\",\"/bin/sleep "
                            "0.0123\"]},{\"eq\":[\"syscall\",\"clock_nanosleep\"]}]}}"));
    collect(all, 2);
    pid_t c = fork();
    if (c == 0) {
        execl("/bin/sleep", "/bin/sleep", "0.0123", (char *)NULL);
        _exit(127);
    }
    waitpid(c, NULL, 0);
    collect(all, 2);
    dump(&byargs);
    T_EQU(count_of(&byargs, "/bin/sleep 0.0123"), 1);
    T_EQU(pred.f.count, 1);
    disable(&byargs);
    disable(&pred);
}

static void sleeps_and_reads(void *arg)
{
    size_t n = 16 << 20;
    char *buf = malloc(n);
    int fd = open("/dev/zero", O_RDONLY);
    (void)arg;
    memset(buf, 1, n); /* fault it in first: the reads should cost copying, not faults */
    for (int i = 0; i < 5; i++) {
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
        if (read(fd, buf, n) != (ssize_t)n)
            _exit(1);
    }
    close(fd);
    free(buf);
}

/* cputime: a 20 ms sleep is almost all off CPU; a 16 MiB read of /dev/zero almost all on */
static void test_syscall_cputime(void)
{
    struct probe sl = {0}, rd = {0}, rdlat = {0};
    struct probe *all[] = {&sl, &rd, &rdlat};
    char body[512];
    struct t_gated g = t_gated_start(sleeps_and_reads, NULL);

    T_REQUIRE(g.pid > 0);
    snprintf(body, sizeof(body),
             "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":[\"cputime\"],"
             "\"predicate\":{\"and\":[{\"eq\":[\"pid\",\"%d\"]},{\"eq\":[\"syscall\","
             "\"clock_nanosleep\"]}]}}",
             (int)g.pid);
    T_REQUIRE(enable(&sl, body));
    snprintf(body, sizeof(body),
             "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":[\"cputime\"],"
             "\"predicate\":{\"and\":[{\"eq\":[\"pid\",\"%d\"]},{\"eq\":[\"syscall\","
             "\"read\"]},{\"eq\":[\"errno\",\"0\"]}]}}",
             (int)g.pid);
    T_REQUIRE(enable(&rd, body));
    snprintf(body, sizeof(body),
             "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":[\"latency\"],"
             "\"predicate\":{\"and\":[{\"eq\":[\"pid\",\"%d\"]},{\"eq\":[\"syscall\","
             "\"read\"]},{\"eq\":[\"errno\",\"0\"]}]}}",
             (int)g.pid);
    T_REQUIRE(enable(&rdlat, body));
    collect(all, 3);
    t_gated_release(&g);
    collect(all, 3);
    T_REQUIRE(sl.f.hist && rd.f.hist && rdlat.f.hist);
    t_note("sleep cputime mean %.0f ns; read cputime mean %.0f ns, latency mean %.0f ns",
           sn_hist_mean(sl.f.hist), sn_hist_mean(rd.f.hist), sn_hist_mean(rdlat.f.hist));
    T_EQU(sl.f.count, 5);
    T_EQU(sn_hist_count_above(sl.f.hist, 1e6, true), 0); /* each sleep: under 1 ms on CPU */
    T_OK(rd.f.count >= 5); /* ours (the pipe read may have begun before the probe) */
    T_OK(sn_hist_mean(rd.f.hist) > 0.5 * sn_hist_mean(rdlat.f.hist));
    for (int i = 0; i < 3; i++)
        disable(all[i]);
    T_OK(!sn_engine_attached(eng, SN_METRIC_SYSCALLS));
}

static void test_sampled_through_sampler(void)
{
    struct probe usage = {0}, lo = {0};
    struct probe *all[] = {&usage, &lo};
    long ms = 1100;

    T_REQUIRE(enable(&usage, "{\"module\":\"cpu\",\"stat\":\"usage\","
                             "\"decomposition\":[\"cpumode\"]}"));
    T_REQUIRE(enable(&lo, "{\"module\":\"nic\",\"stat\":\"packets\","
                          "\"decomposition\":[\"direction\"],\"predicate\":"
                          "{\"eq\":[\"nic\",\"lo\"]}}"));
    T_OK(!sn_engine_attached(eng, SN_METRIC_CPU_USAGE)); /* nothing in the kernel for these */
    run_child(spinner, &ms);
    int port, l = listener(AF_INET, 8, &port);
    struct connects w = {AF_INET, port, 3};
    run_child(connect_workload, &w);
    close(l);
    collect(all, 2);
    dump(&usage);
    dump(&lo);
    T_OK(count_of(&usage, "user") >= 50); /* the spinner's second, in percent of one CPU */
    T_OK(count_of(&lo, "out") >= 9);      /* three handshakes and closes over loopback */
    T_OK(count_of(&lo, "in") >= 9);
    disable(&usage);
    disable(&lo);
}

/* Every traced metric: enabling attaches its programs, disabling the last detaches them, as
 * the kernel's own link table says; sampled metrics never attach anything. */
static void test_attach_detach_all(void)
{
    size_t n;
    const struct sn_metric_def *m = sn_catalog_all(&n);
    char body[1024], path[PATH_MAX];

    T_REQUIRE(realpath(sdt_prog, path) != NULL && strlen(path) < 512);
    for (size_t i = 0; i < n; i++) {
        struct probe p = {0};
        uint32_t ids[4];
        int nids = sn_engine_prog_ids(eng, m[i].metric, ids, 4);
        if (m[i].metric == SN_METRIC_USDT)
            snprintf(body, sizeof(body),
                     "{\"module\":\"usdt\",\"stat\":\"probes\",\"predicate\":{\"and\":["
                     "{\"eq\":[\"path\",\"%.512s\"]},{\"eq\":[\"provider\",\"sonde_test\"]},"
                     "{\"eq\":[\"probe\",\"work\"]}]}}",
                     path);
        else
            snprintf(body, sizeof(body), "{\"module\":\"%s\",\"stat\":\"%s\"}", m[i].module,
                     m[i].stat);
        t_note("%s.%s", m[i].module, m[i].stat);
        T_EQ(t_kernel_links_to(ids, nids), 0);
        if (!T_OK(enable(&p, body)))
            continue;
        int links = t_kernel_links_to(ids, nids);
        if (m[i].metric >= SN_METRIC_SAMPLED_FIRST) {
            T_EQ(nids, 0);
            T_OK(!sn_engine_attached(eng, m[i].metric));
        } else {
            T_OK(nids >= 1);
            T_OK(links >= nids); /* thread_samples: one per CPU; postgres: per binary */
        }
        disable(&p);
        /* uprobe links go on a thread of their own: gone within a second */
        for (int w = 0; w < 100 && t_kernel_links_to(ids, nids) > 0; w++)
            usleep(10000);
        T_EQ(t_kernel_links_to(ids, nids), 0);
    }
}

static void test_bad_bodies(void)
{
    struct sn_probe in;
    char why[512];
    json_t *j = json_loads("{\"module\":\"usdt\",\"stat\":\"probes\",\"predicate\":"
                           "{\"eq\":[\"provider\",\"x\"]}}",
                           0, NULL);
    T_EQ(sn_probe_compile(j, "t", host, 10, &in, why, sizeof(why)), -EINVAL);
    T_OK(strstr(why, "usdt.probes needs the predicate") != NULL);
    json_decref(j);
    j = json_loads("{\"module\":\"tcp\",\"stat\":\"connects\",\"predicate\":"
                   "{\"eq\":[\"raddr\",\"not-an-address\"]}}",
                   0, NULL);
    T_EQ(sn_probe_compile(j, "t", host, 10, &in, why, sizeof(why)), -EINVAL);
    T_OK(strstr(why, "is not a valid raddr") != NULL);
    json_decref(j);
    j = json_loads("{\"module\":\"fs\",\"stat\":\"logical_ops\",\"predicate\":"
                   "{\"eq\":[\"optype\",\"frobnicate\"]}}",
                   0, NULL);
    T_EQ(sn_probe_compile(j, "t", host, 10, &in, why, sizeof(why)), -EINVAL);
    T_OK(strstr(why, "is not a valid optype") != NULL);
    json_decref(j);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_metrics SDT_PROG [filter]\n");
        return 2;
    }
    sdt_prog = argv[1];
    t_init(argc - 1, argv + 1);
    t_unique_comm();
    gethostname(host, sizeof(host));
    if (sn_sampler_open(&sampler) < 0)
        return 1;
    int rc = sn_engine_open(&eng);
    if (rc < 0)
        fprintf(stderr, "cannot open the engine: %s (run as root)\n", strerror(-rc));
    t_run("bad bodies for the new metrics get CA errors", test_bad_bodies);
    if (eng) {
        t_run("every traced metric attaches and detaches, in the kernel's view",
              test_attach_detach_all);
        t_run("fs.logical_ops: a workload's operations by type, size and offset",
              test_fs_logical_ops);
        t_run("fs.logical_ops: failed operations count under fstype \"(unknown)\"",
              test_fs_failed_ops_fstype);
        t_run("tcp.connects and tcp.accepts over IPv4 and IPv6 loopback",
              test_tcp_connects_accepts);
        t_run("tcp.retransmits: a SYN dropped by a full accept queue", test_tcp_retransmits);
        t_run("cpu.thread_executions: sleeps leave the CPU sleeping", test_thread_executions);
        t_run("cpu.thread_samples: 99 Hz on every CPU", test_thread_samples);
        t_run("postgres.queries: a private PostgreSQL's queries", test_postgres_queries);
        t_run("usdt.probes: a probe pair, with and without a semaphore", test_usdt_probes);
        t_run("psargs: keys and predicates on a process's arguments", test_psargs);
        t_run("syscall cputime: time on CPU within a system call", test_syscall_cputime);
        t_run("sampled metrics through the sampler", test_sampled_through_sampler);
    }
    sn_engine_close(eng);
    sn_sampler_close(sampler);
    return eng || rc == 0 ? t_done() : 1;
}
