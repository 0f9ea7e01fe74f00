/*
 * The test harness; see t.h.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "t.h"

static int passed, failed, skipped, reported;
static bool case_failed, case_skipped;
static const char *case_name = "";
static char note[512];
static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static const char *only; /* run only cases whose name contains this (argv[1]) */

void t_init(int argc, char **argv)
{
    if (argc > 1 && argv[1][0] != '-')
        only = argv[1];
}

void t_run(const char *name, void (*fn)(void))
{
    if (only && !strstr(name, only))
        return;
    case_name = name;
    case_failed = case_skipped = false;
    note[0] = '\0';
    reported = 0;
    fn();
    if (case_skipped && !case_failed) {
        skipped++;
        return;
    }
    if (case_failed) {
        failed++;
        printf("not ok %d - %s\n", passed + failed + skipped, name);
    } else {
        passed++;
        printf("ok %d - %s\n", passed + failed + skipped, name);
    }
    fflush(stdout);
}

void t_skip(const char *why)
{
    case_skipped = true;
    printf("ok %d - %s # SKIP %s\n", passed + failed + skipped + 1, case_name, why);
}

int t_done(void)
{
    if (skipped)
        printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    else
        printf("%d passed, %d failed\n", passed, failed);
    if (passed + failed + skipped == 0) { /* a filter that matches nothing is a mistake */
        printf("# no test case ran%s%s\n", only ? " matching " : "", only ? only : "");
        return 1;
    }
    return failed ? 1 : 0;
}

void t_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(note, sizeof(note), fmt, ap);
    va_end(ap);
}

static bool fail(const char *file, int line, const char *expr, const char *detail)
{
    case_failed = true;
    if (++reported > 20) { /* one broken loop should not flood the log */
        if (reported == 21)
            printf("#   %s: further failures not shown\n", case_name);
        return false;
    }
    printf("#   %s:%d: %s: %s%s%s%s%s\n", file, line, case_name, expr, detail[0] ? " -- " : "",
           detail, note[0] ? " | " : "", note);
    return false;
}

bool t_check(const char *file, int line, const char *expr, bool ok)
{
    return ok ? true : fail(file, line, expr, "");
}

bool t_check_i64(const char *file, int line, const char *expr, int64_t a, int64_t b)
{
    char d[128];
    if (a == b)
        return true;
    snprintf(d, sizeof(d), "%" PRId64 " != %" PRId64, a, b);
    return fail(file, line, expr, d);
}

bool t_check_u64(const char *file, int line, const char *expr, uint64_t a, uint64_t b)
{
    char d[128];
    if (a == b)
        return true;
    snprintf(d, sizeof(d), "%" PRIu64 " != %" PRIu64, a, b);
    return fail(file, line, expr, d);
}

bool t_check_dbits(const char *file, int line, const char *expr, double a, double b)
{
    char d[160];
    uint64_t x, y;
    memcpy(&x, &a, 8);
    memcpy(&y, &b, 8);
    if (x == y)
        return true;
    snprintf(d, sizeof(d), "%.17g (%016" PRIx64 ") != %.17g (%016" PRIx64 ")", a, x, b, y);
    return fail(file, line, expr, d);
}

bool t_check_near(const char *file, int line, const char *expr, double a, double b, double tol)
{
    char d[128];
    if (a == b || (a - b <= tol && b - a <= tol))
        return true;
    snprintf(d, sizeof(d), "%.17g != %.17g (tolerance %g)", a, b, tol);
    return fail(file, line, expr, d);
}

bool t_check_str(const char *file, int line, const char *expr, const char *a, const char *b)
{
    char d[600];
    if (a && b && strcmp(a, b) == 0)
        return true;
    snprintf(d, sizeof(d), "\"%.280s\" != \"%.280s\"", a ? a : "(null)", b ? b : "(null)");
    return fail(file, line, expr, d);
}

bool t_check_mem(const char *file, int line, const char *expr, const void *a, const void *b,
                 size_t n)
{
    char d[128];
    const unsigned char *x = a, *y = b;
    if (memcmp(a, b, n) == 0)
        return true;
    for (size_t i = 0; i < n; i++) {
        if (x[i] != y[i]) {
            snprintf(d, sizeof(d), "first difference at byte %zu: %02x != %02x", i, x[i], y[i]);
            break;
        }
    }
    return fail(file, line, expr, d);
}

void t_seed(uint64_t s)
{
    rng = s ? s : 0x9e3779b97f4a7c15ULL;
}

uint64_t t_rand(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1dULL;
}

double t_rand01(void)
{
    return (double)(t_rand() >> 11) * 0x1.0p-53;
}

const char *t_outdir(void)
{
    static char dir[512];
    if (!dir[0]) {
        const char *env = getenv("SN_TEST_OUT");
        snprintf(dir, sizeof(dir), "%s", env ? env : "tests/out");
        mkdir(dir, 0755);
    }
    return dir;
}

int t_realtime(void)
{
    struct sched_param sp = {.sched_priority = 10};

    if (prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0) != 0)
        return -errno;
    if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0)
        return -errno;
    return 0;
}

int t_unique_comm(void)
{
    char name[16];
    snprintf(name, sizeof(name), "snt-%d", (int)getpid());
    return prctl(PR_SET_NAME, name, 0, 0, 0) == 0 ? 0 : -errno;
}

int64_t t_timed_sleep(long ns)
{
    struct timespec req = {ns / 1000000000L, ns % 1000000000L}, a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    nanosleep(&req, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (int64_t)(b.tv_sec - a.tv_sec) * 1000000000 + (b.tv_nsec - a.tv_nsec);
}

/* One file of the capture's, read into buf[len] and removed. */
static void slurp(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, len - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
    unlink(path);
}

int t_capture(const char *cmd, const char *input, char *out, size_t outlen, char *err,
              size_t errlen)
{
    static unsigned seq;
    char in_path[1024], err_path[1024], *full;
    size_t fl = strlen(cmd) + 2 * sizeof(in_path) + 16;
    FILE *f, *p;
    size_t n;
    int st;

    snprintf(in_path, sizeof(in_path), "%s/capture_in.%d.%u", t_outdir(), (int)getpid(), seq);
    snprintf(err_path, sizeof(err_path), "%s/capture_err.%d.%u", t_outdir(), (int)getpid(), seq++);
    if (!(f = fopen(in_path, "w")))
        return -1;
    if (input)
        fputs(input, f);
    fclose(f);
    if (!(full = malloc(fl))) {
        unlink(in_path);
        return -1;
    }
    snprintf(full, fl, "%s < %s 2> %s", cmd, in_path, err_path);
    p = popen(full, "r");
    free(full);
    if (!p) {
        unlink(in_path);
        return -1;
    }
    n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    while (fgetc(p) != EOF) /* the rest is dropped, so that the command never blocks */
        ;
    st = pclose(p);
    slurp(err_path, err, errlen);
    unlink(in_path);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int t_fill_disk(const char *dir)
{
    char path[600], block[65536];
    snprintf(path, sizeof(path), "%s/filler", dir);
    memset(block, 'x', sizeof(block));
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd < 0)
        return -errno;
    for (size_t chunk = sizeof(block); chunk > 0; chunk /= 2)
        while (write(fd, block, chunk) == (ssize_t)chunk)
            ;
    close(fd);
    return 0;
}

int t_unfill_disk(const char *dir)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/filler", dir);
    return unlink(path) == 0 ? 0 : -errno;
}

void t_print_tail(const char *who, const char *path, size_t max)
{
    char buf[8192 + 1];
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: (no %s)\n", who, path);
        return;
    }
    if (max > sizeof(buf) - 1)
        max = sizeof(buf) - 1;
    long start = 0;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        start = size > (long)max ? size - (long)max : 0;
    }
    fseek(f, start, SEEK_SET);
    size_t n = fread(buf, 1, max, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = buf;
    if (start > 0 && strchr(buf, '\n'))
        p = strchr(buf, '\n') + 1; /* from the first whole line */
    fprintf(stderr, "---- tail of %s ----\n%s%s---- end ----\n", path, p,
            n > 0 && buf[n - 1] != '\n' ? "\n" : "");
}
