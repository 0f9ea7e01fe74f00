/*
 * Checks the test-support pieces of the USDT agent tests: the private PostgreSQL of pg.h
 * (start, SQL, stop, nothing left behind) and the USDT notes that those tests attach to, in
 * sdt_prog (argv[1]) and in the postgres binary, as readelf -n reports them.
 *
 *   test_support PATH/TO/sdt_prog [case-filter]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "pg.h"
#include "t.h"

#define RUN_MS  20000 /* any helper program */
#define OUT_MAX (1 << 20)
#define POLL_MS 50

static const char *sdt_prog;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs argv (PATH searched) with stdout and stderr into out (NUL-terminated, at most cap - 1
 * bytes kept), within RUN_MS. Returns the exit status, or -1. */
static int run_capture(char *const argv[], char *out, size_t cap)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        if (in < 0 || dup2(in, 0) < 0 || dup2(p[1], 1) < 0 || dup2(p[1], 2) < 0)
            _exit(127);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    size_t len = 0;
    long long deadline = now_ms() + RUN_MS;
    for (int k = 0; k < RUN_MS / POLL_MS + 1 && now_ms() < deadline; k++) {
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        if (poll(&pfd, 1, POLL_MS) <= 0)
            continue;
        char buf[4096];
        ssize_t n = read(p[0], buf, sizeof(buf));
        if (n <= 0)
            break; /* EOF (or error) */
        size_t keep = (size_t)n < cap - 1 - len ? (size_t)n : cap - 1 - len;
        memcpy(out + len, buf, keep);
        len += keep;
    }
    out[len] = '\0';
    close(p[0]);
    int status = 0;
    pid_t r = 0;
    for (int k = 0; k < RUN_MS / POLL_MS + 1 && r == 0; k++) {
        r = waitpid(pid, &status, WNOHANG);
        if (r == 0 && now_ms() >= deadline)
            break;
        if (r == 0)
            poll(NULL, 0, POLL_MS);
    }
    if (r != pid) {
        fprintf(stderr, "%s: no exit within %d ms; killed\n", argv[0], RUN_MS);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* In readelf -n output, the stapsdt note provider:name; sets *sem to its semaphore address.
 * Returns 1 if found. */
static int find_probe(const char *notes, const char *provider, const char *name,
                      unsigned long long *sem)
{
    char want_p[128], want_n[128];
    snprintf(want_p, sizeof(want_p), "Provider: %s\n", provider);
    snprintf(want_n, sizeof(want_n), "Name: %s\n", name);
    const char *p = notes;
    for (int k = 0; k < 100000 && (p = strstr(p, want_p)); k++) {
        p += strlen(want_p);
        const char *n = p + strspn(p, " \t");
        if (strncmp(n, want_n, strlen(want_n)) != 0)
            continue;
        const char *loc = n + strlen(want_n); /* "Location: ..., Semaphore: 0x...\n" */
        const char *eol = strchr(loc, '\n');
        const char *s = strstr(loc, "Semaphore: ");
        if (!s || (eol && s > eol))
            return 0;
        *sem = strtoull(s + strlen("Semaphore: "), NULL, 16);
        return 1;
    }
    return 0;
}

static char *readelf_notes(const char *path)
{
    char *out = malloc(OUT_MAX);
    if (!out)
        return NULL;
    char *argv[] = {"readelf", "-n", (char *)path, NULL};
    int rc = run_capture(argv, out, OUT_MAX);
    if (rc != 0) {
        t_note("readelf -n %s exited %d: %.200s", path, rc, out);
        free(out);
        return NULL;
    }
    return out;
}

static long proc_uid(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long uid = -1;
    for (int k = 0; k < 100 && fgets(line, sizeof(line), f); k++)
        if (strncmp(line, "Uid:", 4) == 0) {
            uid = strtol(line + 4, NULL, 10); /* real UID */
            break;
        }
    fclose(f);
    return uid;
}

static void test_pg_lifecycle(void)
{
    struct sn_pg pg;
    T_REQUIRE(sn_pg_start(&pg) == 0);
    T_OK(pg.pid > 0);
    T_OK(pg.port > 0 && pg.port < 65536);

    /* the PID is the server binary itself, run as postgres: where uprobes attach */
    char exe[512] = "";
    char link[64];
    snprintf(link, sizeof(link), "/proc/%d/exe", (int)pg.pid);
    ssize_t n = readlink(link, exe, sizeof(exe) - 1);
    exe[n > 0 ? n : 0] = '\0';
    T_STR(exe, sn_pg_binary());
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        T_REQUIRE(pw != NULL);
        T_EQ(proc_uid(pg.pid), pw->pw_uid);
    }

    T_EQ(sn_pg_exec(&pg, "CREATE TABLE t(x int);\nINSERT INTO t VALUES (1);\n"
                         "SELECT count(*) FROM t;"),
         0);
    fprintf(stderr, "(an error from psql below is expected)\n");
    T_OK(sn_pg_exec(&pg, "SELECT * FROM no_such_table;") != 0);
    /* separate statements, and the script stops at the first error */
    T_OK(sn_pg_exec(&pg, "INSERT INTO t VALUES (2);\nSELECT no_such_column FROM t;\n"
                         "INSERT INTO t VALUES (3);") != 0);
    T_EQ(sn_pg_exec(&pg, "DO $$ BEGIN IF (SELECT count(*) FROM t) <> 2 THEN "
                         "RAISE EXCEPTION 'count is not 2'; END IF; END $$;"),
         0);

    pid_t pid = pg.pid;
    char dir[sizeof(pg.dir)];
    memcpy(dir, pg.dir, sizeof(dir));
    sn_pg_stop(&pg);
    errno = 0;
    T_EQ(kill(pid, 0), -1);
    T_EQ(errno, ESRCH);
    struct stat st;
    errno = 0;
    T_EQ(stat(dir, &st), -1);
    T_EQ(errno, ENOENT);
    T_EQ(pg.pid, 0);
    T_STR(pg.dir, "");
    sn_pg_stop(&pg); /* twice: a no-op */
    T_EQ(pg.pid, 0);
}

static void test_pg_stop_unstarted(void)
{
    struct sn_pg pg = {0};
    sn_pg_stop(&pg);
    T_EQ(pg.pid, 0);
    T_EQ(sn_pg_exec(&pg, "SELECT 1;"), -1);
}

static void test_sdt_prog_runs(void)
{
    char out[4096];
    char *ok[] = {(char *)sdt_prog, "3", "1000", NULL};
    T_EQ(run_capture(ok, out, sizeof(out)), 0);
    T_STR(out, ""); /* silent */
    char *bad[] = {(char *)sdt_prog, "3", NULL};
    T_EQ(run_capture(bad, out, sizeof(out)), 2);
}

static void test_sdt_prog_notes(void)
{
    char *notes = readelf_notes(sdt_prog);
    T_REQUIRE(notes != NULL);
    unsigned long long sem = 1;
    if (T_OK(find_probe(notes, "sonde_test", "work__start", &sem)))
        T_EQU(sem, 0); /* plain probe */
    sem = 1;
    if (T_OK(find_probe(notes, "sonde_test", "work__done", &sem)))
        T_EQU(sem, 0);
    sem = 0;
    if (T_OK(find_probe(notes, "sonde_test", "sem__start", &sem)))
        T_OK(sem != 0); /* guarded by a semaphore */
    sem = 0;
    if (T_OK(find_probe(notes, "sonde_test", "sem__done", &sem)))
        T_OK(sem != 0);
    free(notes);
}

static void test_postgres_notes(void)
{
    char *notes = readelf_notes(sn_pg_binary());
    T_REQUIRE(notes != NULL);
    /* Debian builds PostgreSQL with --enable-dtrace: its probes are semaphore-guarded
     * (TRACE_POSTGRESQL_QUERY_START_ENABLED()), so they fire only while attached. */
    unsigned long long sem = 0;
    if (T_OK(find_probe(notes, "postgresql", "query__start", &sem)))
        T_OK(sem != 0);
    sem = 0;
    if (T_OK(find_probe(notes, "postgresql", "query__done", &sem)))
        T_OK(sem != 0);
    free(notes);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_support PATH/TO/sdt_prog [case-filter]\n");
        return 2;
    }
    sdt_prog = argv[1];
    t_init(argc - 1, argv + 1); /* argv[2], if any, is the harness's case filter */
    t_run("pg_lifecycle", test_pg_lifecycle);
    t_run("pg_stop_unstarted", test_pg_stop_unstarted);
    t_run("sdt_prog_runs", test_sdt_prog_runs);
    t_run("sdt_prog_notes", test_sdt_prog_notes);
    t_run("postgres_notes", test_postgres_notes);
    return t_done();
}
