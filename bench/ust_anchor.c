/*
 * bench-recorder's userspace anchor: LTTng-UST's cost per event (the "below LTTng-UST's
 * ~150 ns per userspace event", ref/overhead.md section 5), measured in the same run as the
 * recorder. `ust_anchor N CPU` pins itself to CPU, fires the tracepoint snb_anchor:tick N times
 * and prints its CPU time per iteration in ns (getrusage: user + system). bench_recorder runs
 * it with no session (the tracepoint compiled in, disabled) and under an LTTng snapshot
 * (flight-recorder) session enabling the event; the difference is what an event costs.
 * Built only where liblttng-ust-dev is installed (scripts/setup bench).
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#define LTTNG_UST_TRACEPOINT_CREATE_PROBES
#define LTTNG_UST_TRACEPOINT_DEFINE
#include "ust_anchor_tp.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: ust_anchor N CPU\n");
        return 2;
    }
    long n = atol(argv[1]);
    cpu_set_t set;
    struct rusage ru;

    CPU_ZERO(&set);
    CPU_SET(atoi(argv[2]), &set);
    if (n <= 0 || sched_setaffinity(0, sizeof(set), &set)) {
        fprintf(stderr, "ust_anchor: bad N or CPU\n");
        return 2;
    }
    for (long i = 0; i < n; i++)
        lttng_ust_tracepoint(snb_anchor, tick, (uint64_t)i, (uint64_t)i * 7);
    getrusage(RUSAGE_SELF, &ru);
    double s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
               ru.ru_stime.tv_usec / 1e6;
    printf("%.3f\n", s * 1e9 / (double)n);
    return 0;
}
