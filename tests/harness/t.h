/*
 * Sonde's test harness: a few typed assertions that print both values on failure, named test
 * cases, TAP-style lines, and a closing line "N passed, N failed" (", N skipped" when some
 * were skipped). The process exits non-zero if any case failed.
 *
 *   static void test_merge(void) { T_EQ(sn_hist_count(h), 3); }
 *   int main(int argc, char **argv) { t_init(argc, argv); t_run("merge", test_merge);
 *                                     return t_done(); }
 *
 * A failed assertion marks the current case failed and carries on (so one run shows every
 * failure); T_REQUIRE stops the case. t_skip("why") marks it skipped. Each binary is one CTest
 * test (tests/CMakeLists.txt).
 */
#ifndef SN_TESTS_T_H
#define SN_TESTS_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void t_init(int argc, char **argv);
void t_run(const char *name, void (*fn)(void));
void t_skip(const char *why);
int t_done(void);

/* Returns false (and reports) on failure. */
bool t_check(const char *file, int line, const char *expr, bool ok);
bool t_check_i64(const char *file, int line, const char *expr, int64_t a, int64_t b);
bool t_check_u64(const char *file, int line, const char *expr, uint64_t a, uint64_t b);
bool t_check_dbits(const char *file, int line, const char *expr, double a, double b);
bool t_check_near(const char *file, int line, const char *expr, double a, double b, double tol);
bool t_check_str(const char *file, int line, const char *expr, const char *a, const char *b);
bool t_check_mem(const char *file, int line, const char *expr, const void *a, const void *b,
                 size_t n);
/* Prints the last max bytes (at most 8192) of the file at path on stderr, from its first whole
 * line, framed "---- tail of PATH ----" (a server's log, for a test that failed); who prefixes
 * the line saying that the file is missing. */
void t_print_tail(const char *who, const char *path, size_t max);
/* printf-style note attached to the next failure report of the current case */
void t_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define T_OK(x)         t_check(__FILE__, __LINE__, #x, (x))
#define T_EQ(a, b)      t_check_i64(__FILE__, __LINE__, #a " == " #b, (int64_t)(a), (int64_t)(b))
#define T_EQU(a, b)     t_check_u64(__FILE__, __LINE__, #a " == " #b, (uint64_t)(a), (uint64_t)(b))
#define T_DEQ(a, b)     t_check_dbits(__FILE__, __LINE__, #a " === " #b, (a), (b))
#define T_NEAR(a, b, t) t_check_near(__FILE__, __LINE__, #a " ~= " #b, (a), (b), (t))
#define T_STR(a, b)     t_check_str(__FILE__, __LINE__, #a " == " #b, (a), (b))
#define T_MEM(a, b, n)  t_check_mem(__FILE__, __LINE__, #a " == " #b, (a), (b), (n))
#define T_REQUIRE(x)                                                                               \
    do {                                                                                           \
        if (!T_OK(x))                                                                              \
            return;                                                                                \
    } while (0)

/* Deterministic PRNG for tests (xorshift64*); seed with t_seed(). */
void t_seed(uint64_t s);
uint64_t t_rand(void);
/* uniform double in [0,1) */
double t_rand01(void);

/* Makes the calling thread a real-time (SCHED_FIFO) task with 1 ns timer slack, so that its
 * sleeps end as close to the deadline as the machine allows; for latency tests. Returns 0,
 * or a negative errno (needs root). */
int t_realtime(void);

/* Sleeps ns nanoseconds (nanosleep) and returns how long the call took as this process saw it
 * (CLOCK_MONOTONIC around it): an upper bound on the system call's latency that a kernel
 * probe measures, so tests can hold in-kernel histograms to what the workload observed. */
int64_t t_timed_sleep(long ns);

/* Renames the process "snt-<pid>" (its comm, what execname predicates see) so that kernel
 * tests filtering by execname cannot count another run of the same test. Returns 0 or -errno. */
int t_unique_comm(void);

/* Runs the shell command cmd with input on its standard input (NULL: /dev/null), its standard
 * output into out[outlen] and its standard error into err[errlen] (both NUL-terminated,
 * truncated when longer). Returns its exit code, or -1 when it could not run or was killed. */
int t_capture(const char *cmd, const char *input, char *out, size_t outlen, char *err,
              size_t errlen);

/* Directory for test artefacts (tests/out under the build tree); created on demand. */
const char *t_outdir(void);

/* A full disk: fills the filesystem of dir with the file dir/filler until it refuses a byte
 * more (the full-disk cases, on a small tmpfs); t_unfill_disk() removes it. Returns 0 or
 * -errno. */
int t_fill_disk(const char *dir);
int t_unfill_disk(const char *dir);

#endif
