/*
 * sdt_prog: a workload with USDT probes (<sys/sdt.h>), the target of the agent tests of the
 * generic USDT instrumentation.
 *
 *   sdt_prog N USEC
 *
 * runs N iterations of
 *
 *   sonde_test:work__start(i)  sonde_test:sem__start(i)  nanosleep(USEC us)
 *   sonde_test:sem__done(i)    sonde_test:work__done(i)
 *
 * and exits 0. It prints nothing but errors (bad arguments: exit 2; a failed sleep: exit 1).
 *
 * work__start/work__done are plain probes (no semaphore: the note's semaphore address is 0).
 * sem__start/sem__done are guarded by semaphores, as `dtrace -G` generated code guards its
 * probes: each has a counter sonde_test_<name>_semaphore in section .probes whose address is in
 * the probe's note; the probe only fires while the counter is non-zero, which the kernel makes
 * it while a uprobe with that reference counter is attached (libbpf passes it for USDT probes).
 * So a test attached to sem__start sees its events, and the same binary not traced never
 * reaches them: that is what checks libbpf's semaphore handling.
 *
 * <sys/sdt.h> decides semaphores for a whole translation unit (_SDT_HAS_SEMAPHORES); to keep
 * both kinds in this one file, the probes below the marked line are expanded after
 * _SDT_SEMAPHORE is redefined to its _SDT_HAS_SEMAPHORES form (macros expand at their use).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <sys/sdt.h>

#define MAX_ITERATIONS 100000000L
#define MAX_USEC       60000000L /* one minute per sleep */
#define MAX_EINTR      1000      /* interrupted sleeps resumed, at most */

static long parse(const char *s, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 0 || v > max)
        return -1;
    return v;
}

static int sleep_us(long usec)
{
    struct timespec ts = {.tv_sec = usec / 1000000, .tv_nsec = (usec % 1000000) * 1000};
    for (int k = 0; k < MAX_EINTR; k++) {
        if (nanosleep(&ts, &ts) == 0)
            return 0;
        if (errno != EINTR) {
            perror("sdt_prog: nanosleep");
            return -1;
        }
    }
    fprintf(stderr, "sdt_prog: nanosleep interrupted %d times\n", MAX_EINTR);
    return -1;
}

/* Plain probes: semaphore address 0 in their notes. */
static void work_start(long i)
{
    DTRACE_PROBE1(sonde_test, work__start, i);
}

static void work_done(long i)
{
    DTRACE_PROBE1(sonde_test, work__done, i);
}

/* ---- from here on, probes carry a semaphore ------------------------------------------------ */
#ifndef _SDT_SEMAPHORE
#error "<sys/sdt.h> without _SDT_SEMAPHORE: update the semaphore part of sdt_prog.c"
#endif
#undef _SDT_SEMAPHORE
#define _SDT_SEMAPHORE(p, n) _SDT_ASM_1(_SDT_ASM_ADDR p##_##n##_semaphore)

/* Incremented by the kernel while a uprobe uses them as reference counter: volatile, and with
 * external linkage, so that every check reads memory. */
volatile unsigned short sonde_test_sem__start_semaphore __attribute__((section(".probes")));
volatile unsigned short sonde_test_sem__done_semaphore __attribute__((section(".probes")));

static void sem_start(long i)
{
    if (sonde_test_sem__start_semaphore)
        DTRACE_PROBE1(sonde_test, sem__start, i);
}

static void sem_done(long i)
{
    if (sonde_test_sem__done_semaphore)
        DTRACE_PROBE1(sonde_test, sem__done, i);
}

int main(int argc, char **argv)
{
    long n = argc == 3 ? parse(argv[1], MAX_ITERATIONS) : -1;
    long usec = argc == 3 ? parse(argv[2], MAX_USEC) : -1;
    if (n < 0 || usec < 0) {
        fprintf(stderr, "usage: sdt_prog N USEC   (0 <= N <= %ld, 0 <= USEC <= %ld)\n",
                MAX_ITERATIONS, MAX_USEC);
        return 2;
    }
    for (long i = 0; i < n; i++) {
        work_start(i);
        sem_start(i);
        if (sleep_us(usec) != 0)
            return 1;
        sem_done(i);
        work_done(i);
    }
    return 0;
}
