/*
 * make bench-cell (root): what listing a heatmap cell's raw events costs (rec/cell_events.h,
 * docs/recorder.md "From a heatmap cell to events"). A syscalls session of CELL_SIZE_MB per CPU
 * (default 64), its rings filled past their wrap by getppid loops pinned on each CPU; then
 * CELL_ROUNDS queries (default 8) of the cell [last full second] x [0, 10 ms) by the recorder's
 * own path, sn_cell_events(): without a key, and with an execname key (a comm per listed tid).
 * Printed: each query's wall and thread CPU time, medians, and the records the rings hold.
 * Nothing asserted.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "rec/cell_events.h"
#include "rec/recorder.h"
#include "rec/session.h"

static long env_long(const char *name, long dflt)
{
    const char *s = getenv(name);
    return s && *s ? atol(s) : dflt;
}

/* A child pinned on cpu making getppid calls for secs seconds. */
static pid_t spin(int cpu, double secs)
{
    pid_t p = fork();
    if (p == 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        sched_setaffinity(0, sizeof(set), &set);
        double end = bench_mono_s() + secs;
        while (bench_mono_s() < end)
            for (int i = 0; i < 1000; i++)
                syscall(SYS_getppid);
        _exit(0);
    }
    return p;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(void)
{
    long mb = env_long("CELL_SIZE_MB", 64), rounds = env_long("CELL_ROUNDS", 8);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    struct sn_recorder *r;
    char why[256], size[32];
    uint64_t bytes;

    if (rounds < 1 || rounds > 100)
        rounds = 8;
    snprintf(size, sizeof(size), "%ldM", mb);
    if (sn_recorder_new(&r, NULL) != 0 || sn_recorder_parse_size(size, &bytes, why, sizeof(why)))
        return fprintf(stderr, "bench_cell: %s\n", why), 1;
    if (sn_recorder_start(r, "bench", SN_REC_G_ALL, bytes, why, sizeof(why)) != 0)
        return fprintf(stderr, "bench_cell: %s (root needed)\n", why), 1;
    /* fill the rings: CELL_SPIN_S (default 5) seconds of getppid on each CPU */
    double secs = (double)env_long("CELL_SPIN_S", 5);
    pid_t kids[256];
    long n = ncpu < 256 ? ncpu : 256;
    for (long c = 0; c < n; c++)
        kids[c] = spin((int)c, secs);
    for (long c = 0; c < n; c++)
        waitpid(kids[c], NULL, 0);
    json_t *j = sn_recorder_json(r, "bench");
    char *t = json_dumps(json_object_get(j, "cpus"), JSON_COMPACT);
    printf("session: %ld MiB per CPU, %ld CPUs; rings: %s\n", mb, n, t ? t : "?");
    free(t);
    json_decref(j);

    int64_t sec = bench_real_ns() / 1000000000LL - 1; /* the last full second */
    for (int keyed = 0; keyed < 2; keyed++) {
        double wall[100], cpu[100];
        uint64_t total = 0;
        const char *state = "";
        for (long k = 0; k < rounds; k++) {
            struct sn_cell_query q = {.t0 = sec * 1000000000LL,
                                      .t1 = (sec + 1) * 1000000000LL,
                                      .lo = 0,
                                      .hi = 10000000,
                                      .keyfield = keyed ? "execname" : NULL,
                                      .key = keyed ? "bench_cell" : NULL,
                                      .max = 20};
            struct sn_cell_result res;
            double w0 = bench_mono_ms(), c0 = bench_thread_cpu_s();
            if (sn_cell_events(r, &q, &res) != 0)
                return fprintf(stderr, "bench_cell: query failed\n"), 1;
            wall[k] = bench_mono_ms() - w0;
            cpu[k] = (bench_thread_cpu_s() - c0) * 1000;
            total = res.total;
            state = sn_cell_state_name(res.state);
            sn_cell_result_free(&res);
        }
        qsort(wall, (size_t)rounds, sizeof(double), cmp);
        qsort(cpu, (size_t)rounds, sizeof(double), cmp);
        printf("%-22s %s, %llu operations in the cell: wall median %.1f ms (min %.1f, max %.1f), "
               "CPU median %.1f ms\n",
               keyed ? "key execname=bench_cell" : "no key", state, (unsigned long long)total,
               wall[rounds / 2], wall[0], wall[rounds - 1], cpu[rounds / 2]);
    }
    sn_recorder_free(r);
    return 0;
}
