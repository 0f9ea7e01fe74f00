/*
 * A private PostgreSQL 15 server for one test; see pg.h.
 *
 * Children (initdb, postgres, psql) are started with fork + execve of absolute paths, a small
 * fixed environment and no shell. When we are root, the child drops to user postgres
 * (setgroups, setgid, setuid) between fork and exec, so that pg->pid is the postmaster itself
 * rather than a runuser or su wrapping it. Each child gets a parent-death signal, so that a
 * test that crashes does not leave a server behind.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "pg.h"
#include "t.h"

#define DIR_PREFIX  "/tmp/sn-pg-"
#define START_MS    30000 /* sn_pg_start: initdb + server start, in all */
#define INITDB_MS   20000
#define EXEC_MS     30000
#define STOP_MS     10000 /* after SIGINT, before SIGKILL */
#define KILL_MS     5000  /* after SIGKILL */
#define POLL_MS     10
#define START_TRIES 3    /* a server that exits at once (port taken meanwhile) gets a new port */
#define LOG_TAIL    3000 /* bytes of a log shown on failure */
#define PATH_LEN    320

static const char *const child_env[] = {"PATH=/usr/bin:/bin", "LC_ALL=C", "LANG=C", "TZ=UTC", NULL};

const char *sn_pg_binary(void)
{
    return SN_PG_BINDIR "/postgres";
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Who children run as: user postgres when we are root, ourselves otherwise. */
struct owner {
    int drop;
    uid_t uid;
    gid_t gid;
};

static int get_owner(struct owner *o)
{
    o->drop = geteuid() == 0;
    o->uid = geteuid();
    o->gid = getegid();
    if (!o->drop)
        return 0;
    struct passwd *pw = getpwnam("postgres");
    if (!pw) {
        fprintf(stderr, "sn_pg: no user postgres (package postgresql-15; scripts/setup)\n");
        return -1;
    }
    o->uid = pw->pw_uid;
    o->gid = pw->pw_gid;
    return 0;
}

static __attribute__((noreturn)) void child_fail(const char *what)
{
    const char *parts[] = {"sn_pg child: ", what, ": ", strerror(errno), "\n"};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        if (write(2, parts[i], strlen(parts[i])) < 0)
            break;
    _exit(127);
}

/* Starts argv[0] (an absolute path) in cwd, stdin from /dev/null, stdout and stderr appended
 * to out, as o's user when o->drop, with parent-death signal deathsig. Returns the PID or -1.
 * Between fork and exec only async-signal-safe calls. */
static pid_t spawn(const char *const argv[], const char *cwd, const char *out,
                   const struct owner *o, int deathsig)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "sn_pg: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid > 0)
        return pid;

    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sched_param sp = {.sched_priority = 0}; /* no SCHED_FIFO from t_realtime() */
    sched_setscheduler(0, SCHED_OTHER, &sp);
    int in = open("/dev/null", O_RDONLY);
    if (in < 0 || dup2(in, 0) < 0)
        child_fail("/dev/null");
    if (o->drop) {
        if (setgroups(0, NULL) != 0 || setgid(o->gid) != 0 || setuid(o->uid) != 0)
            child_fail("dropping to user postgres");
    }
    /* opened after the drop: the file belongs to whoever runs the program */
    int fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
        child_fail(out);
    close_range(3, ~0U, 0);
    if (chdir(cwd) != 0)
        child_fail(cwd);
    /* after setuid, which clears it */
    if (prctl(PR_SET_PDEATHSIG, deathsig, 0, 0, 0) != 0 || getppid() != parent)
        _exit(127);
    execve(argv[0], (char *const *)argv, (char *const *)child_env);
    child_fail(argv[0]);
}

/* Waits up to ms for pid to exit. Returns 1 (exited; *status set), 0 (still running) or -1
 * (not our child). */
static int wait_ms(pid_t pid, long ms, int *status)
{
    long polls = ms / POLL_MS + 1;
    for (long k = 0; k < polls; k++) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 1;
        if (r < 0 && errno != EINTR)
            return -1;
        if (k + 1 < polls)
            sleep_ms(POLL_MS);
    }
    return 0;
}

/* SIGINT, then SIGKILL; reaps. Returns 0 once pid is gone. */
static int terminate(pid_t pid, int first_sig)
{
    int status;
    int r = wait_ms(pid, 0, &status);
    if (r != 0)
        return 0; /* exited already (now reaped), or not ours */
    kill(pid, first_sig);
    if (wait_ms(pid, STOP_MS, &status) != 0)
        return 0;
    fprintf(stderr, "sn_pg: PID %d still there %d ms after signal %d: SIGKILL\n", (int)pid, STOP_MS,
            first_sig);
    kill(pid, SIGKILL);
    if (wait_ms(pid, KILL_MS, &status) != 0)
        return 0;
    fprintf(stderr, "sn_pg: PID %d survived SIGKILL for %d ms\n", (int)pid, KILL_MS);
    return -1;
}

/* Runs argv to completion within ms. Returns its exit status, or -1. */
static int run(const char *const argv[], const char *cwd, const char *out, const struct owner *o,
               long ms)
{
    pid_t pid = spawn(argv, cwd, out, o, SIGKILL);
    if (pid < 0)
        return -1;
    int status;
    int r = wait_ms(pid, ms, &status);
    if (r == 0) {
        fprintf(stderr, "sn_pg: %s took more than %ld ms\n", argv[0], ms);
        terminate(pid, SIGKILL);
        return -1;
    }
    if (r < 0)
        return -1;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    fprintf(stderr, "sn_pg: %s killed by signal %d\n", argv[0], WTERMSIG(status));
    return -1;
}

/* A TCP port on 127.0.0.1 that was free a moment ago, or -1. */
static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    int port = -1;
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(s);
    return port;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    if (remove(path) != 0)
        fprintf(stderr, "sn_pg: remove %s: %s\n", path, strerror(errno));
    return 0;
}

static void rm_tree(const char *dir)
{
    /* only what sn_pg_start made: never a path from a struct that was not initialised */
    if (strncmp(dir, DIR_PREFIX, strlen(DIR_PREFIX)) != 0 || strstr(dir, "/..")) {
        fprintf(stderr, "sn_pg: not removing %s (not ours)\n", dir);
        return;
    }
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* postmaster.pid says pid is accepting connections: line 1 its PID, line 8 its status. */
static int server_ready(const char *dir, pid_t pid)
{
    char path[PATH_LEN], line[128];
    snprintf(path, sizeof(path), "%s/data/postmaster.pid", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int ok = 0;
    for (int n = 1; n <= 8 && fgets(line, sizeof(line), f); n++) {
        if (n == 1 && atol(line) != (long)pid)
            break;
        if (n == 8)
            ok = strncmp(line, "ready", 5) == 0;
    }
    fclose(f);
    return ok;
}

/* Loopback only; durability off and nothing in the background: quick and quiet. */
static const char *const settings[] = {
    "listen_addresses=127.0.0.1", "fsync=off",           "synchronous_commit=off",
    "full_page_writes=off",       "autovacuum=off",      "jit=off",
    "shared_buffers=16MB",        "max_connections=20",  "huge_pages=off",
    "logging_collector=off",      "log_checkpoints=off", "log_line_prefix=%m [%p] ",
};
#define N_SETTINGS (int)(sizeof(settings) / sizeof(settings[0]))

static int start_server(struct sn_pg *pg, const struct owner *o, long long deadline)
{
    char data[PATH_LEN], log[PATH_LEN], port[16];
    snprintf(data, sizeof(data), "%s/data", pg->dir);
    snprintf(log, sizeof(log), "%s/server.log", pg->dir);
    for (int attempt = 1; attempt <= START_TRIES && now_ms() < deadline; attempt++) {
        pg->port = free_port();
        if (pg->port < 0) {
            fprintf(stderr, "sn_pg: no free port on 127.0.0.1: %s\n", strerror(errno));
            return -1;
        }
        snprintf(port, sizeof(port), "%d", pg->port);
        const char *argv[7 + 2 * N_SETTINGS + 1] = {sn_pg_binary(), "-D", data,   "-p",
                                                    port,           "-k", pg->dir};
        for (int i = 0; i < N_SETTINGS; i++) {
            argv[7 + 2 * i] = "-c";
            argv[8 + 2 * i] = settings[i];
        }
        /* SIGQUIT: immediate shutdown, which also ends the server's own children */
        pid_t pid = spawn(argv, pg->dir, log, o, SIGQUIT);
        if (pid < 0)
            return -1;
        pg->pid = pid;
        long polls = (START_MS + POLL_MS - 1) / POLL_MS;
        for (long k = 0; k < polls && now_ms() < deadline; k++) {
            if (server_ready(pg->dir, pid))
                return 0;
            int status;
            if (wait_ms(pid, 0, &status) != 0) {
                pg->pid = 0;
                fprintf(stderr, "sn_pg: postgres on port %d exited (status 0x%x)%s\n", pg->port,
                        status, attempt < START_TRIES ? "; retrying" : "");
                break;
            }
            sleep_ms(POLL_MS);
        }
        if (pg->pid > 0) {
            fprintf(stderr, "sn_pg: postgres not ready within %d ms\n", START_MS);
            return -1; /* the caller stops it */
        }
    }
    return -1;
}

int sn_pg_start(struct sn_pg *pg)
{
    long long deadline = now_ms() + START_MS;
    struct owner o;
    memset(pg, 0, sizeof(*pg));
    if (get_owner(&o) != 0)
        return -1;
    if (access(sn_pg_binary(), X_OK) != 0) {
        fprintf(stderr, "sn_pg: %s: %s (package postgresql-15; scripts/setup)\n", sn_pg_binary(),
                strerror(errno));
        return -1;
    }
    char tmpl[] = DIR_PREFIX "XXXXXX";
    if (!mkdtemp(tmpl)) {
        fprintf(stderr, "sn_pg: mkdtemp %s: %s\n", tmpl, strerror(errno));
        return -1;
    }
    snprintf(pg->dir, sizeof(pg->dir), "%s", tmpl);
    if (o.drop && chown(pg->dir, o.uid, o.gid) != 0) {
        fprintf(stderr, "sn_pg: chown %s: %s\n", pg->dir, strerror(errno));
        sn_pg_stop(pg);
        return -1;
    }

    char data[PATH_LEN], log[PATH_LEN];
    snprintf(data, sizeof(data), "%s/data", pg->dir);
    snprintf(log, sizeof(log), "%s/initdb.log", pg->dir);
    const char *initdb[] = {SN_PG_BINDIR "/initdb",
                            "-D",
                            data,
                            "-U",
                            "postgres",
                            "-A",
                            "trust",
                            "-E",
                            "UTF8",
                            "--no-locale",
                            "--no-sync",
                            "--no-instructions",
                            NULL};
    int rc = run(initdb, pg->dir, log, &o, INITDB_MS);
    if (rc != 0) {
        fprintf(stderr, "sn_pg: initdb failed (%d)\n", rc);
        t_print_tail("sn_pg", log, LOG_TAIL);
        sn_pg_stop(pg);
        return -1;
    }

    if (start_server(pg, &o, deadline) != 0) {
        snprintf(log, sizeof(log), "%s/server.log", pg->dir);
        t_print_tail("sn_pg", log, LOG_TAIL);
        sn_pg_stop(pg);
        return -1;
    }
    return 0;
}

int sn_pg_exec(const struct sn_pg *pg, const char *sql)
{
    if (pg->pid <= 0) {
        fprintf(stderr, "sn_pg_exec: server not running\n");
        return -1;
    }
    char path[PATH_LEN], log[PATH_LEN], port[16];
    snprintf(path, sizeof(path), "%s/psql-XXXXXX.sql", pg->dir);
    int fd = mkstemps(path, 4);
    if (fd < 0) {
        fprintf(stderr, "sn_pg_exec: mkstemps %s: %s\n", path, strerror(errno));
        return -1;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(path);
        return -1;
    }
    int bad = fputs(sql, f) < 0 || fputc('\n', f) < 0;
    if (fclose(f) != 0 || bad) {
        fprintf(stderr, "sn_pg_exec: writing %s failed\n", path);
        unlink(path);
        return -1;
    }
    snprintf(log, sizeof(log), "%.*s.log", (int)strlen(path) - 4, path);
    snprintf(port, sizeof(port), "%d", pg->port);

    struct owner self = {.drop = 0};
    const char *argv[] = {SN_PG_BINDIR "/psql",
                          "-X",
                          "-q",
                          "-w",
                          "-h",
                          "127.0.0.1",
                          "-p",
                          port,
                          "-U",
                          "postgres",
                          "-d",
                          "postgres",
                          "-v",
                          "ON_ERROR_STOP=1",
                          "-f",
                          path,
                          NULL};
    int rc = run(argv, pg->dir, log, &self, EXEC_MS);
    if (rc != 0) {
        fprintf(stderr, "sn_pg_exec: psql exited %d\n", rc);
        t_print_tail("sn_pg", log, LOG_TAIL);
    }
    unlink(path);
    unlink(log);
    return rc;
}

void sn_pg_stop(struct sn_pg *pg)
{
    if (pg->pid > 0) {
        if (terminate(pg->pid, SIGINT) != 0)
            fprintf(stderr, "sn_pg_stop: could not stop PID %d\n", (int)pg->pid);
        pg->pid = 0;
    }
    if (pg->dir[0]) {
        rm_tree(pg->dir);
        pg->dir[0] = '\0';
    }
    pg->port = 0;
}
