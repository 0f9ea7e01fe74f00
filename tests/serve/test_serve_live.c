/*
 * Live reading of a recording session (docs/recorder.md, "Live reading"), end to end: a real
 * `sonde serve --live-listen 127.0.0.1:PORT` as root (BPF; it fails rather than skips without),
 * a live syscalls session started through the API, the real babeltrace2 attached over LTTng's
 * live protocol (`-i lttng-live net://127.0.0.1:PORT/host/HOST/NAME`), a child making N
 * getppid calls after the attach:
 *  - babeltrace2's output holds exactly N syscall_entry_getppid and N syscall_exit_getppid of
 *    the child's tid (ret = its parent) within 5 s of the calls (the flush period is 100 ms;
 *    the rest is slack for a shared machine: the time it took is printed);
 *  - the session stops (DELETE): babeltrace2 reads to the end and exits 0 within 10 s, the
 *    counts unchanged;
 *  - bad input: "live" that is not a boolean, live on a server without --live-listen (409 with
 *    the reason, and no session left behind);
 *  - the CLI: `sonde record start NAME --events syscalls --live` is listed by babeltrace2's
 *    session listing, and `sonde trace --count 3` run as nobody (no root: the event classes
 *    come from the metadata) prints 3 events; stopped and started again under the same name,
 *    it is listed once;
 *  - `sonde trace NAME --pid CHILD --event 'syscall_*_getppid'` attached (the relay lists one
 *    client) prints exactly the child's N entries and N exits, each line
 *    "HH:MM:SS.NNNNNNNNN CPU COMM TID EVENT FIELDS" with the child's comm and tid, the exits
 *    with ret=PARENT, in time order; it exits 0 when the session stops; no such session, no
 *    relay and bad options are exit 1, 1 and 2 with their messages;
 *  - `sonde top --live NAME --pid CHILD` and `sonde top --trace DIR` on a snapshot of the same
 *    session: the child's rows add up to exactly N + 2 system calls (its read of the command,
 *    the N getppid, its write of the answer), 8 bytes read and 1 written.
 * Every wait is bounded; babeltrace2 is killed by its pid on a failure.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "http_json.h"
#include "t.h"
#include "workload.h"

#define N 500

static const char *sonde;
static char out[1 << 16], err[1 << 16];
static char host[256];

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* A free TCP port on 127.0.0.1 (bound and released: the server binds it next). */
static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* ---- a child that makes getppid calls on command ---- */
static pid_t child = -1;

static int child_start(void)
{
    return (child = t_cmd_child_start(0)) > 0 ? 0 : -1;
}

static int child_run(long n)
{
    return t_cmd_child_run(n);
}

static void child_stop(void)
{
    t_cmd_child_stop();
    child = -1;
}

/* ---- babeltrace2 ---- */

/* babeltrace2 on url, its stdout into outpath (fully buffered: a line-buffered viewer would
 * record one write per line it prints, a loop), its stderr into errpath. Returns its pid. */
static pid_t bt2_start(const char *url, const char *outpath, const char *errpath)
{
    pid_t pid = fork();
    if (pid == 0) {
        int o = open(outpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0)
            _exit(126);
        dup2(o, 1);
        dup2(e, 2);
        execlp("babeltrace2", "babeltrace2", "-i", "lttng-live", url,
               "--params=session-not-found-action=\"end\"", (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Waits at most ms for pid; its exit status, or -1 (then it is killed). */
static int bt2_wait(pid_t pid, int ms)
{
    int st;
    for (int64_t end = now_ms() + ms; now_ms() < end; usleep(20000))
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

/* The lines of path holding event ev of tid with, if ret >= 0, "ret = RET"; *lines: all. */
static long count(const char *path, const char *ev, int tid, long ret, long *lines)
{
    char line[8192], ctx[64], r[64];
    long n = 0;
    FILE *f = fopen(path, "r");
    *lines = 0;
    if (!f)
        return 0;
    snprintf(ctx, sizeof(ctx), "tid = %d }", tid);
    snprintf(r, sizeof(r), "{ ret = %ld }", ret);
    while (fgets(line, sizeof(line), f)) {
        (*lines)++;
        if (strstr(line, ev) && strstr(line, ctx) && (ret < 0 || strstr(line, r)))
            n++;
    }
    fclose(f);
    return n;
}

static json_t *req(int port, const char *method, const char *path, const char *body, int want)
{
    int status;
    json_t *j = th_jreq(port, method, path, body, &status);
    if (status != want) {
        char *t = j ? json_dumps(j, 0) : NULL;
        t_note("%s %s %s: %d %s", method, path, body ? body : "", status, t ? t : "");
        free(t);
    }
    T_EQ(status, want);
    return j;
}

static void bad(int port, const char *body, const char *what)
{
    json_t *j = req(port, "POST", "/ca/recorder/sessions", body, 409);
    const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    if (!msg || !strstr(msg, what))
        t_note("%s: message %s, wanted \"%s\"", body, msg ? msg : "(none)", what);
    T_OK(msg && strstr(msg, what));
    json_decref(j);
}

static void test_babeltrace2_follows(void)
{
    struct th_serve s;
    char lport[16], url[512], opath[600], epath[600];
    int port = free_port();
    T_REQUIRE(port > 0);
    snprintf(lport, sizeof(lport), "127.0.0.1:%d", port);
    const char *extra[] = {"--no-agent", "--live-listen", lport, NULL};
    T_REQUIRE(th_serve_start(sonde, extra, NULL, &s) == 0);
    T_REQUIRE(child_start() == 0);

    json_decref(req(s.port, "POST", "/ca/recorder/sessions",
                    "{\"name\":\"live1\",\"events\":[\"syscalls\"],\"size-per-cpu\":\"16M\","
                    "\"live\":true}",
                    201));
    snprintf(url, sizeof(url), "net://127.0.0.1:%d/host/%s/live1", port, host);
    snprintf(opath, sizeof(opath), "%s/bt2.out", s.dir);
    snprintf(epath, sizeof(epath), "%s/bt2.err", s.dir);
    pid_t bt = bt2_start(url, opath, epath);
    T_REQUIRE(bt > 0);

    /* attached: babeltrace2 prints the host's system calls (its own among them) */
    long lines = 0;
    for (int64_t end = now_ms() + 10000; now_ms() < end && lines < 100; usleep(50000))
        count(opath, "syscall_", 0, -1, &lines);
    T_OK(lines >= 100);

    int64_t t0 = now_ms();
    T_REQUIRE(child_run(N) == 0);
    long entries = 0, exits = 0;
    int64_t took = -1;
    for (int64_t end = t0 + 5000; now_ms() < end; usleep(20000)) {
        entries = count(opath, "syscall_entry_getppid:", child, -1, &lines);
        exits = count(opath, "syscall_exit_getppid:", child, getpid(), &lines);
        if (entries >= N && exits >= N) {
            took = now_ms() - t0;
            break;
        }
    }
    printf("# %ld entries and %ld exits of the child's %d getppid calls in %lld ms (%ld lines)\n",
           entries, exits, N, (long long)took, lines);
    T_EQ(entries, N);
    T_EQ(exits, N);
    T_OK(took >= 0);

    /* the end: babeltrace2 reads the rest and exits 0 */
    int64_t t1 = now_ms();
    json_decref(req(s.port, "DELETE", "/ca/recorder/sessions/live1", NULL, 204));
    int rc = bt2_wait(bt, 10000);
    printf("# babeltrace2 exited %d, %lld ms after the stop\n", rc, (long long)(now_ms() - t1));
    if (rc != 0)
        t_print_tail("babeltrace2", epath, 4000);
    T_EQ(rc, 0);
    T_EQ(count(opath, "syscall_entry_getppid:", child, -1, &lines), N);
    T_EQ(count(opath, "syscall_exit_getppid:", child, getpid(), &lines), N);
    child_stop();
    T_EQ(th_serve_stop(&s), 0);
}

static void test_bad_input(void)
{
    struct th_serve s;
    const char *extra[] = {"--no-agent", NULL};
    T_REQUIRE(th_serve_start(sonde, extra, NULL, &s) == 0);
    bad(s.port, "{\"name\":\"l2\",\"events\":[\"syscalls\"],\"live\":\"yes\"}",
        "\"live\" must be true or false");
    bad(s.port, "{\"name\":\"l2\",\"events\":[\"syscalls\"],\"live\":true}",
        "live reading is off on this server (sonde serve --live-listen)");
    json_decref(req(s.port, "GET", "/ca/recorder/sessions/l2", NULL, 404)); /* none left */
    json_decref(req(s.port, "POST", "/ca/recorder/sessions",
                    "{\"name\":\"l2\",\"events\":[\"syscalls\"],\"live\":false}", 201));
    T_EQ(th_serve_stop(&s), 0);

    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s serve --live-listen 127.0.0.1:99999", sonde);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 2);
    T_OK(strstr(err, "--live-listen 127.0.0.1:99999: bad port") != NULL);
    snprintf(cmd, sizeof(cmd), "%s serve --live-listen ::1:5344", sonde);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 2);
    T_OK(strstr(err, "is not an IPv4 address") != NULL);
    snprintf(cmd, sizeof(cmd), "%s serve --live-period 5", sonde);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 2);
    T_OK(strstr(err, "--live-period wants milliseconds, 10-60000") != NULL);
}

/* How many times babeltrace2's listing of the relay names session name. */
static int listed(int port, const char *name)
{
    char cmd[512], needle[300];
    snprintf(cmd, sizeof(cmd), "timeout 20 babeltrace2 -i lttng-live net://127.0.0.1:%d", port);
    if (t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)) != 0) {
        t_note("listing: %s%s", out, err);
        return -1;
    }
    snprintf(needle, sizeof(needle), "/host/%s/%s ", host, name);
    int n = 0;
    for (const char *p = out; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void test_cli(void)
{
    struct th_serve s;
    char lport[16], cmd[1024], api[64];
    int port = free_port();
    T_REQUIRE(port > 0);
    snprintf(lport, sizeof(lport), "%d", port); /* PORT alone: 127.0.0.1 */
    const char *extra[] = {"--no-agent", "--live-listen", lport, "--live-period", "200", NULL};
    T_REQUIRE(th_serve_start(sonde, extra, NULL, &s) == 0);
    snprintf(api, sizeof(api), "http://127.0.0.1:%d", s.port);
    snprintf(cmd, sizeof(cmd), "%s record start cli1 --events syscalls --live --url %s", sonde,
             api);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    T_STR(out, "session cli1 started\n");
    T_EQ(listed(port, "cli1"), 1);
    T_OK(strstr(out, "timer = 200000") != NULL);
    /* sonde trace needs no root (the classes come from the metadata): as nobody, 3 events */
    snprintf(cmd, sizeof(cmd),
             "timeout 20 setpriv --reuid=65534 --regid=65534 --clear-groups %s trace cli1 "
             "--relay %d --count 3",
             sonde, port);
    int rc = t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err));
    if (rc != 0)
        t_note("sonde trace as nobody: %d %s", rc, err);
    T_EQ(rc, 0);
    int lines = 0;
    for (const char *q = out; (q = strchr(q, '\n')); q++)
        lines++;
    T_EQ(lines, 3);
    snprintf(cmd, sizeof(cmd), "%s record stop cli1 --url %s", sonde, api);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    snprintf(cmd, sizeof(cmd), "%s record start cli1 --events syscalls --live --url %s", sonde,
             api);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    T_EQ(listed(port, "cli1"), 1); /* the ended one replaced */
    snprintf(cmd, sizeof(cmd), "%s record stop cli1 --live --url %s", sonde, api);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 2); /* --live: start only */
    T_EQ(th_serve_stop(&s), 0);
}

/* Runs `sonde trace ARGS` (`sonde top ARGS` when ARGS begin with --live) in the background,
 * stdout into outpath: its pid. */
static pid_t trace_start(const char *const *args, const char *outpath)
{
    pid_t pid = fork();
    if (pid == 0) {
        const char *argv[16] = {sonde, args[0] && !strcmp(args[0], "--live") ? "top" : "trace"};
        int n = 2;
        for (; args[n - 2] && n < 15; n++)
            argv[n] = args[n - 2];
        argv[n] = NULL;
        int o = open(outpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0)
            _exit(126);
        dup2(o, 1);
        execv(sonde, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Checks the lines of `sonde trace`'s output: *entries and *exits of the child, in time
 * order, each well formed; returns the lines that are neither. */
static long check_trace(const char *path, long *entries, long *exits)
{
    char line[4096], comm[64], ev[128], rest[256];
    int hh, mm, ss, cpu, tid;
    long ns, others = 0;
    double prev = -1;
    FILE *f = fopen(path, "r");
    *entries = *exits = 0;
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        rest[0] = '\0';
        int k = sscanf(line, "%2d:%2d:%2d.%9ld %d %63s %d %127s %255[^\n]", &hh, &mm, &ss, &ns,
                       &cpu, comm, &tid, ev, rest);
        double t = hh * 3600.0 + mm * 60.0 + ss + ns / 1e9;
        char want[64];
        snprintf(want, sizeof(want), "ret=%d", (int)getpid());
        bool in_order = t >= prev || prev - t > 43000; /* midnight */
        prev = t;
        if (k >= 8 && tid == child && strcmp(comm, "test_serve_live") == 0 && in_order &&
            strcmp(ev, "syscall_entry_getppid") == 0 && k == 8)
            (*entries)++;
        else if (k == 9 && tid == child && strcmp(comm, "test_serve_live") == 0 && in_order &&
                 strcmp(ev, "syscall_exit_getppid") == 0 && strcmp(rest, want) == 0)
            (*exits)++;
        else {
            if (others++ < 3)
                t_note("an unexpected line: %s", line);
        }
    }
    fclose(f);
    return others;
}

static void test_sonde_trace(void)
{
    struct th_serve s;
    char lport[16], opath[600], cpid[16], cmd[1024];
    int port = free_port();
    T_REQUIRE(port > 0);
    snprintf(lport, sizeof(lport), "127.0.0.1:%d", port);
    const char *extra[] = {"--no-agent", "--live-listen", lport, NULL};
    T_REQUIRE(th_serve_start(sonde, extra, NULL, &s) == 0);
    T_REQUIRE(child_start() == 0);
    json_decref(req(s.port, "POST", "/ca/recorder/sessions",
                    "{\"name\":\"tr1\",\"events\":[\"syscalls\",\"sched\"],\"live\":true}", 201));
    snprintf(opath, sizeof(opath), "%s/trace.out", s.dir);
    snprintf(cpid, sizeof(cpid), "%d", (int)child);
    const char *args[] = {"tr1",     "--relay",           lport, "--pid", cpid,
                          "--event", "syscall_*_getppid", NULL};
    pid_t tr = trace_start(args, opath);
    T_REQUIRE(tr > 0);
    bool attached = false;
    for (int64_t end = now_ms() + 10000; now_ms() < end && !attached; usleep(100000))
        attached = listed(port, "tr1") == 1 && strstr(out, "1 client(s) connected");
    T_OK(attached);

    int64_t t0 = now_ms();
    T_REQUIRE(child_run(N) == 0);
    long entries = 0, exits = 0, others = 0;
    int64_t took = -1;
    for (int64_t end = t0 + 5000; now_ms() < end; usleep(20000)) {
        others = check_trace(opath, &entries, &exits);
        if (entries >= N && exits >= N) {
            took = now_ms() - t0;
            break;
        }
    }
    printf("# sonde trace: %ld entries, %ld exits of %d calls in %lld ms\n", entries, exits, N,
           (long long)took);
    T_EQ(entries, N);
    T_EQ(exits, N);
    T_EQ(others, 0);
    json_decref(req(s.port, "DELETE", "/ca/recorder/sessions/tr1", NULL, 204));
    int st = -1;
    for (int64_t end = now_ms() + 10000; now_ms() < end; usleep(20000))
        if (waitpid(tr, &st, WNOHANG) == tr)
            break;
        else
            st = -1;
    if (st == -1) {
        kill(tr, SIGKILL);
        waitpid(tr, NULL, 0);
    }
    T_OK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    T_EQ(check_trace(opath, &entries, &exits), 0);
    T_EQ(entries, N);
    T_EQ(exits, N);
    child_stop();

    snprintf(cmd, sizeof(cmd), "%s trace nosuch --relay %s", sonde, lport);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 1);
    T_OK(strstr(err, "no live session \"nosuch\" on the relay") != NULL);
    T_EQ(th_serve_stop(&s), 0);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 1);
    T_OK(strstr(err, "cannot connect to the relay at 127.0.0.1:") != NULL);
    snprintf(cmd, sizeof(cmd), "%s trace x --pid abc", sonde);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 2);
    T_OK(strstr(err, "--pid wants a number, not 'abc'") != NULL);
    snprintf(cmd, sizeof(cmd), "%s trace", sonde);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 2);
}

/* Sums the rows of pid in `sonde top`'s output; returns the rows found. */
static int top_sums(const char *path, int pid, unsigned long *sys, unsigned long *rd,
                    unsigned long *wr)
{
    char line[512], comm[64];
    int p, rows = 0;
    double cpu;
    unsigned long a, b, c;
    FILE *f = fopen(path, "r");
    *sys = *rd = *wr = 0;
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "%d %63s %lf %lu %lu %lu", &p, comm, &cpu, &a, &b, &c) == 6 && p == pid) {
            rows++;
            *sys += a, *rd += b, *wr += c;
        }
    fclose(f);
    return rows;
}

static void test_top(void)
{
    struct th_serve s;
    char lport[16], opath[600], cpid[16], cmd[1400], snap[600], api[64];
    int port = free_port();
    T_REQUIRE(port > 0);
    snprintf(lport, sizeof(lport), "127.0.0.1:%d", port);
    const char *extra[] = {"--no-agent", "--live-listen", lport, NULL};
    T_REQUIRE(th_serve_start(sonde, extra, NULL, &s) == 0);
    snprintf(api, sizeof(api), "http://127.0.0.1:%d", s.port);
    T_REQUIRE(child_start() == 0); /* blocked in its read of a command */
    usleep(100000);
    json_decref(req(s.port, "POST", "/ca/recorder/sessions",
                    "{\"name\":\"top1\",\"events\":[\"syscalls\",\"sched\"],"
                    "\"size-per-cpu\":\"16M\",\"live\":true}",
                    201));
    snprintf(opath, sizeof(opath), "%s/top.out", s.dir);
    snprintf(cpid, sizeof(cpid), "%d", (int)child);
    const char *args[] = {"--live", "top1", "--relay", lport, "--pid", cpid, "--rows", "0", NULL};
    pid_t top = trace_start(args, opath);
    T_REQUIRE(top > 0);
    bool attached = false;
    for (int64_t end = now_ms() + 10000; now_ms() < end && !attached; usleep(100000))
        attached = listed(port, "top1") == 1 && strstr(out, "1 client(s) connected");
    T_OK(attached);
    T_REQUIRE(child_run(N) == 0);
    usleep(300000); /* the child back in its read */
    snprintf(snap, sizeof(snap), "%s/top-snap", s.dir);
    snprintf(cmd, sizeof(cmd), "%s record snapshot top1 -o %s --url %s", sonde, snap, api);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    json_decref(req(s.port, "DELETE", "/ca/recorder/sessions/top1", NULL, 204));
    int st = -1;
    for (int64_t end = now_ms() + 10000; now_ms() < end; usleep(20000))
        if (waitpid(top, &st, WNOHANG) == top)
            break;
        else
            st = -1;
    if (st == -1) {
        kill(top, SIGKILL);
        waitpid(top, NULL, 0);
    }
    T_OK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    unsigned long sys, rd, wr;
    T_OK(top_sums(opath, child, &sys, &rd, &wr) >= 1);
    T_EQU(sys, N + 2);
    T_EQU(rd, 8);
    T_EQU(wr, 1);

    snprintf(cmd, sizeof(cmd), "%s top --trace %s --pid %d --rows 0 > %s/top-trace.out", sonde,
             snap, (int)child, s.dir);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    snprintf(opath, sizeof(opath), "%s/top-trace.out", s.dir);
    T_OK(top_sums(opath, child, &sys, &rd, &wr) >= 1);
    T_EQU(sys, N + 2);
    T_EQU(rd, 8);
    T_EQU(wr, 1);
    child_stop();
    T_EQ(th_serve_stop(&s), 0);

    snprintf(cmd, sizeof(cmd), "%s top --trace %s/nosuch", sonde, s.dir);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 1);
    T_OK(strstr(err, "nosuch/metadata: No such file or directory") != NULL);
    snprintf(cmd, sizeof(cmd), "%s top --trace %s --live x", sonde, s.dir);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 2);
}

int main(int argc, char **argv)
{
    sonde = th_sonde_main(argc, argv); /* SONDE [CASE-FILTER] */
    gethostname(host, sizeof(host) - 1);
    host[63] = '\0'; /* the relay's host names are cut there */
    t_run("babeltrace2 follows a live session: exactly N getppid within 5 s, exits 0 at the end",
          test_babeltrace2_follows);
    t_run("bad input: live not a boolean, live without a relay, bad options", test_bad_input);
    t_run("sonde record start --live: listed; restarted under its name, listed once", test_cli);
    t_run("sonde trace: exactly the child's N getppid, well formed; exits 0 at the end",
          test_sonde_trace);
    t_run("sonde top --live and --trace: the child's N + 2 system calls, 8 B read, 1 B written",
          test_top);
    child_stop();
    return t_done();
}
