/*
 * `sonde top` end to end: the real binary (path in argv[1]) against a `sonde serve --no-agent`
 * of its own, fed through POST /ca/ingest with frames for the last few seconds and the next
 * ones. Checks the plain snapshot printed when stdout is a pipe (keys by count, counts, p50 in
 * human units), then the terminal view under tmux: the header and both keys on screen, and `q`
 * ending the process; then, in an 80x10 terminal with 20 keys: exactly 10 lines with the title
 * on line 1 and the list clipped ("… N more keys"), the alternate screen, an ellipsis on a key
 * cut to fit, sorting by p99/p50/count (c 5 9 s), the filter (/ Enter, Esc), pause (p, space:
 * the time stamp freezes), help (?), a resize (SIGWINCH), the server stopped (the status says
 * it is unreachable) and started again on the same port and data directory (top carries on),
 * the instrumentation deleted, and SIGTERM bringing the shell's screen back. Every wait is
 * bounded (capture-pane polled every 100 ms). Without tmux (scripts/setup installs it) the tmux
 * cases fail.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "t.h"

static const char *sonde;
static struct th_serve srv;
static char url[64];
static char out[1 << 16], err[1 << 16];

/* Runs a shell command; fills out (its stdout) and err (its stderr); the exit code. */
static int sh(const char *cmd)
{
    return t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err));
}

/* Frames of instrumentation 1 for seconds from..to: nginx 30 at ~2 ms, redis 10 at ~100 µs. */
static void ingest(int64_t from, int64_t to)
{
    char frames[8192];
    size_t off = 0;
    struct th_resp r;

    for (int64_t t = from; t <= to && off < sizeof(frames) - 300; t++)
        off += (size_t)snprintf(frames + off, sizeof(frames) - off,
                                "{\"id\":\"1\",\"host\":\"h\",\"t\":%" PRId64
                                ",\"arity\":\"numeric-decomposition\",\"value\":"
                                "{\"nginx\":[[[2000000,2099999],30]],"
                                "\"redis\":[[[100000,109999],10]]}}\n",
                                t);
    T_EQ(th_send(srv.port, "POST", "/ca/ingest", "application/json", frames, &r), 0);
    T_EQ(r.status, 200);
    if (r.body && !strstr(r.body, "\"accepted\""))
        t_note("ingest reply: %s", r.body);
    th_resp_free(&r);
}

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void test_setup(void)
{
    char cmd[512];
    int64_t now = (int64_t)time(NULL);

    snprintf(cmd, sizeof(cmd), "%s create syscall.syscalls -d execname -d latency --url %s", sonde,
             url);
    T_EQ(sh(cmd), 0);
    T_STR(out, "1 /ca/instrumentations/1\n");
    snprintf(cmd, sizeof(cmd), "%s create syscall.syscalls -d execname --url %s", sonde, url);
    T_EQ(sh(cmd), 0);
    /* the past few seconds and the next ones (the server takes up to 10 s ahead) */
    ingest(now - 4, now + 8);
}

static void test_snapshot(void)
{
    char cmd[512];
    const char *ng, *rd;

    snprintf(cmd, sizeof(cmd), "LC_ALL=C.UTF-8 %s top 1 --url %s --iterations 2", sonde, url);
    T_EQ(sh(cmd), 0);
    T_OK(strchr(out, '\033') == NULL); /* no escapes on a pipe */
    T_OK(starts(out, "sonde top: 1 syscall.syscalls by execname, latency |"));
    T_OK(strstr(out, "total 40 | 2 keys") != NULL);
    ng = strstr(out, "\nnginx ");
    rd = strstr(out, "\nredis ");
    T_OK(ng && rd && ng < rd);
    if (ng && rd) {
        T_OK(starts(ng, "\nnginx            30    2.05 ms    2.10 ms  |"));
        T_OK(strstr(rd, " 10 ") != NULL && strstr(rd, " 105 \xc2\xb5s") != NULL);
    }
    /* two snapshots: two headers */
    T_OK(strstr(out + 1, "\n\nsonde top: ") != NULL);
    if (!ng || !rd || !strstr(ng, "2.05 ms"))
        t_note("output:\n%s", out);

    snprintf(cmd, sizeof(cmd), "%s top 1 --url %s --iterations 1 --ascii --window 2", sonde, url);
    T_EQ(sh(cmd), 0);
    T_OK(strstr(out, "(2 s) | total 80 |") != NULL);
    T_OK(strstr(out, " 105 us") != NULL);
    T_OK(strstr(out, "\nnginx            60    2.05 ms    2.10 ms  | #|\n") != NULL);
    T_OK(strstr(out, "\nredis            20     105 us     110 us  |# |\n") != NULL);

    /* discrete only: counts */
    snprintf(cmd, sizeof(cmd), "%s top 2 --url %s --iterations 1", sonde, url);
    T_EQ(sh(cmd), 0);
    T_OK(strstr(out, "| 0 keys") != NULL);

    /* errors and usage */
    snprintf(cmd, sizeof(cmd), "%s top 9 --url %s --iterations 1", sonde, url);
    T_EQ(sh(cmd), 1);
    T_STR(err, "sonde: no such instrumentation\n");
    snprintf(cmd, sizeof(cmd), "%s top --url %s", sonde, url);
    T_EQ(sh(cmd), 2);
    snprintf(cmd, sizeof(cmd), "%s top 1 --iterations 0 --url %s", sonde, url);
    T_EQ(sh(cmd), 2);
    snprintf(cmd, sizeof(cmd), "%s top 1 --bogus --url %s", sonde, url);
    T_EQ(sh(cmd), 2);
    snprintf(cmd, sizeof(cmd), "%s top 1 --url http://127.0.0.1:1 --iterations 1", sonde);
    T_EQ(sh(cmd), 1);
}

static void test_tmux(void)
{
    char session[64], sock[300], cmd[2048];
    bool gone = false;

    t_note("tmux is not installed (scripts/setup installs it)");
    T_REQUIRE(sh("command -v tmux") == 0); /* a terminal test must run, not skip */
    ingest((int64_t)time(NULL), (int64_t)time(NULL) + 8);
    snprintf(session, sizeof(session), "snt-top-%d", (int)getpid());
    /* a server of our own on a socket of our own, without the user's configuration */
    snprintf(sock, sizeof(sock), "%s/%s.sock", t_outdir(), session);
    snprintf(cmd, sizeof(cmd),
             "tmux -f /dev/null -S %s new-session -d -s %s -x 100 -y 30 'LC_ALL=C.UTF-8 %s top 1 "
             "--url %s' "
             "&& tmux -S %s set-option -t %s remain-on-exit off",
             sock, session, sonde, url, sock, session);
    T_EQ(sh(cmd), 0);
    usleep(2500 * 1000);
    snprintf(cmd, sizeof(cmd), "tmux -S %s capture-pane -p -t %s", sock, session);
    T_EQ(sh(cmd), 0);
    T_OK(strstr(out, "sonde top: 1 syscall.syscalls by execname, latency") != NULL);
    T_OK(strstr(out, "nginx") != NULL && strstr(out, "redis") != NULL);
    T_OK(strstr(out, "2 keys") != NULL);
    if (!strstr(out, "redis"))
        t_note("screen:\n%s", out);

    snprintf(cmd, sizeof(cmd), "tmux -S %s send-keys -t %s q", sock, session);
    T_EQ(sh(cmd), 0);
    for (int i = 0; i < 30 && !gone; i++) {
        usleep(100 * 1000);
        snprintf(cmd, sizeof(cmd),
                 "tmux -S %s has-session -t %s 2>/dev/null && "
                 "tmux -S %s display-message -p -t %s '#{pane_dead}' | grep -qx 0",
                 sock, session, sock, session);
        gone = sh(cmd) != 0;
    }
    T_OK(gone);

    snprintf(cmd, sizeof(cmd), "tmux -S %s kill-server 2>/dev/null; true", sock);
    sh(cmd);
    unlink(sock);
}

/* ---- the terminal view under tmux, instrumentation 3 with more keys than rows ----------- */

static char tsock[300], tsess[64];
static char screen[1 << 16];

/* Frames of instrumentation 3 for seconds from..to: 20 keys; key i has 5 + 3i events at
 * 10^(2 + i%5) ns scale and 2 more ten times higher, so counts and p99s sort differently; key
 * 0's name is longer than the key column. */
static void ingest_many(int64_t from, int64_t to)
{
    static char frames[1 << 17];
    size_t off = 0;
    struct th_resp r;

    for (int64_t t = from; t <= to; t++) {
        off += (size_t)snprintf(frames + off, sizeof(frames) - off,
                                "{\"id\":\"3\",\"host\":\"h\",\"t\":%" PRId64
                                ",\"arity\":\"numeric-decomposition\",\"value\":{",
                                t);
        for (int i = 0; i < 20; i++) {
            int64_t p = 1, m = 10 + 4 * i;
            for (int e = 0; e < 2 + i % 5; e++)
                p *= 10;
            off += (size_t)snprintf(
                frames + off, sizeof(frames) - off,
                "%s\"%s%02d\":[[[%" PRId64 ",%" PRId64 "],%d],[[%" PRId64 ",%" PRId64 "],2]]",
                i ? "," : "",
                i == 0       ? "a-process-name-much-longer-than-forty-cells-of-key-column-"
                : i % 3 == 0 ? "named-"
                             : "proc",
                i, m * p, (m + 1) * p - 1, 5 + 3 * i, m * p * 10, (m + 1) * p * 10 - 1);
        }
        off += (size_t)snprintf(frames + off, sizeof(frames) - off, "}}\n");
    }
    T_EQ(th_send(srv.port, "POST", "/ca/ingest", "application/json", frames, &r), 0);
    T_EQ(r.status, 200);
    if (r.body && !strstr(r.body, "\"accepted\":"))
        t_note("ingest reply: %s", r.body);
    th_resp_free(&r);
}

/* The pane's text, into screen; 0 or the capture's exit code. */
static int capture(void)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "tmux -S %s capture-pane -p -t %s", tsock, tsess);
    int rc = sh(cmd);
    snprintf(screen, sizeof(screen), "%s", out);
    return rc;
}

static void keys(const char *k)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "tmux -S %s send-keys -t %s %s", tsock, tsess, k);
    T_EQ(sh(cmd), 0);
}

/* Waits (up to ms) until the pane shows s; true when it does. */
static bool wait_screen(const char *s, int ms)
{
    for (int i = 0; i <= ms / 100; i++) {
        if (capture() == 0 && strstr(screen, s))
            return true;
        usleep(100 * 1000);
    }
    t_note("waited for \"%s\"; screen:\n%s", s, screen);
    return false;
}

/* Waits (up to ms) until the pane no longer shows s; true when it does not. */
static bool wait_screen_gone(const char *s, int ms)
{
    for (int i = 0; i <= ms / 100; i++) {
        if (capture() == 0 && !strstr(screen, s))
            return true;
        usleep(100 * 1000);
    }
    t_note("waited for \"%s\" to go; screen:\n%s", s, screen);
    return false;
}

/* Line n (1-based) of screen into line. */
static void screen_line(int n, char *line, size_t cap)
{
    const char *p = screen;
    for (int i = 1; i < n && p; i++)
        if ((p = strchr(p, '\n')))
            p++;
    if (!p) {
        line[0] = '\0';
        return;
    }
    size_t len = strcspn(p, "\n");
    snprintf(line, cap, "%.*s", (int)(len < cap ? len : cap - 1), p);
}

static int screen_lines(void)
{
    int n = 0;
    for (const char *p = screen; *p; p++)
        n += *p == '\n';
    return n;
}

/* The first key row's key (line 4: title, status, column names, then keys). */
static void first_key(char *key, size_t cap)
{
    char line[512];
    screen_line(4, line, sizeof(line));
    snprintf(key, cap, "%.*s", (int)strcspn(line, " "), line);
}

static void test_view(void)
{
    char cmd[2048], line[512], key[128], stamp[512];
    const char *const stop_extra[] = {"--no-agent", "--listen", NULL, NULL};
    char listen[64], dir[256];
    int64_t now = (int64_t)time(NULL);

    T_REQUIRE(sh("command -v tmux") == 0);
    snprintf(cmd, sizeof(cmd), "%s create syscall.syscalls -d execname -d latency --url %s", sonde,
             url);
    T_EQ(sh(cmd), 0);
    T_STR(out, "3 /ca/instrumentations/3\n");
    ingest_many(now - 50, now + 9); /* in view for a minute (--window 60) */

    snprintf(tsess, sizeof(tsess), "snt-topv-%d", (int)getpid());
    snprintf(tsock, sizeof(tsock), "%s/%s.sock", t_outdir(), tsess);
    snprintf(cmd, sizeof(cmd),
             "tmux -f /dev/null -S %s new-session -d -s %s -x 80 -y 10 "
             "'echo before-top; LC_ALL=C.UTF-8 exec %s top 3 --window 60 --url %s' "
             "&& tmux -S %s set-option -t %s remain-on-exit on",
             tsock, tsess, sonde, url, tsock, tsess);
    T_EQ(sh(cmd), 0);

    /* 80x10 and 20 keys: exactly 10 lines, the title on line 1, the list clipped */
    T_OK(wait_screen("more keys", 5000));
    T_EQ(screen_lines(), 10);
    screen_line(1, line, sizeof(line));
    T_OK(starts(line, "sonde top: 3 syscall.syscalls by execname, latency |"));
    T_OK(strstr(screen, "before-top") == NULL); /* the alternate screen */
    snprintf(cmd, sizeof(cmd), "tmux -S %s display-message -p -t %s '#{alternate_on}'", tsock,
             tsess);
    T_EQ(sh(cmd), 0);
    T_STR(out, "1\n");
    screen_line(10, line, sizeof(line));
    T_OK(starts(line, "\xe2\x80\xa6 14 more keys"));
    screen_line(2, line, sizeof(line));
    T_OK(strstr(line, "sort: count") != NULL);
    first_key(key, sizeof(key));
    T_STR(key, "proc19"); /* the most events */
    /* a few seconds later the title is still on line 1 */
    sleep(2);
    T_EQ(capture(), 0);
    screen_line(1, line, sizeof(line));
    T_OK(starts(line, "sonde top: 3 "));
    T_EQ(screen_lines(), 10);

    /* the long key is cut with an ellipsis: filter on it */
    keys("/ much-longer Enter");
    T_OK(wait_screen("filter \"much-longer\": 1 of 20 keys", 3000));
    first_key(key, sizeof(key));
    T_OK(starts(key, "a-process-name-much-longer-than"));
    screen_line(4, line, sizeof(line));
    T_OK(strstr(line, "\xe2\x80\xa6 ") != NULL && strstr(line, "column-00") == NULL);
    T_OK(strstr(screen, "proc19") == NULL);
    keys("Escape");
    T_OK(wait_screen("more keys", 3000));
    T_OK(strstr(screen, "filter \"") == NULL);

    /* sort by p99: keys at 10^6 scale (i % 5 == 4) come first, the highest p99 first */
    keys("9");
    T_OK(wait_screen("sort: p99", 3000));
    first_key(key, sizeof(key));
    T_STR(key, "proc19");
    screen_line(5, line, sizeof(line));
    T_OK(starts(line, "proc14 "));
    keys("5");
    T_OK(wait_screen("sort: p50", 3000));
    keys("s");
    T_OK(wait_screen("sort: p99", 3000));
    keys("s");
    T_OK(wait_screen("sort: count", 3000));
    screen_line(5, line, sizeof(line));
    T_OK(starts(line, "named-18 ")); /* the second most events (61 a second, proc19 64) */

    /* pause: the view (its time stamp) freezes; resuming moves it again */
    keys("p");
    T_OK(wait_screen("PAUSED", 3000));
    screen_line(1, stamp, sizeof(stamp));
    usleep(2500 * 1000);
    T_EQ(capture(), 0);
    screen_line(1, line, sizeof(line));
    T_STR(line, stamp);
    keys("Space");
    for (int i = 0; i < 30 && strcmp(line, stamp) == 0; i++) {
        usleep(100 * 1000);
        capture();
        screen_line(1, line, sizeof(line));
    }
    T_OK(strcmp(line, stamp) != 0);
    T_OK(strstr(screen, "PAUSED") == NULL);

    /* help: an overlay of the keys; any key closes it */
    keys("?");
    T_OK(wait_screen("sort by p99", 3000));
    T_OK(strstr(screen, "quit") != NULL || strstr(screen, "filter keys") != NULL);
    T_EQ(screen_lines(), 10);
    keys("x");
    T_OK(wait_screen("more keys", 3000));
    T_OK(strstr(screen, "sort by p99") == NULL);

    /* a resize: drawn again at the new size */
    snprintf(cmd, sizeof(cmd), "tmux -S %s resize-window -t %s -x 100 -y 14", tsock, tsess);
    T_EQ(sh(cmd), 0);
    T_OK(wait_screen("10 more keys", 3000));
    T_EQ(screen_lines(), 14);
    screen_line(1, line, sizeof(line));
    T_OK(starts(line, "sonde top: 3 "));

    /* the server goes away: top says so and retries; back on the same port and data
     * directory, top carries on */
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", srv.port);
    T_EQ(th_serve_stop(&srv), 0);
    T_OK(wait_screen("server unreachable, retrying in", 5000));
    usleep(1500 * 1000);
    snprintf(dir, sizeof(dir), "%s", srv.dir); /* th_serve_start fills srv anew */
    {
        const char *extra[] = {stop_extra[0], stop_extra[1], listen, NULL};
        int rc = -1;
        for (int i = 0; i < 20 && rc != 0; i++) /* the port may stay taken a moment */
            if ((rc = th_serve_start(sonde, extra, dir, &srv)) != 0)
                usleep(250 * 1000);
        T_REQUIRE(rc == 0);
        T_EQ(srv.port, atoi(strchr(listen, ':') + 1));
    }
    now = (int64_t)time(NULL);
    ingest_many(now - 50, now + 9);
    T_OK(wait_screen_gone("unreachable", 8000));
    T_OK(wait_screen("more keys", 3000));
    screen_line(1, line, sizeof(line));
    T_OK(strstr(line, "| 20 keys") != NULL);

    /* the instrumentation deleted: said so, and top stays */
    snprintf(cmd, sizeof(cmd), "%s delete 3 --url %s", sonde, url);
    T_EQ(sh(cmd), 0);
    T_OK(wait_screen("instrumentation 3 is gone from the server", 5000));

    /* SIGTERM: the main screen is back, with what was there before */
    snprintf(cmd, sizeof(cmd), "tmux -S %s display-message -p -t %s '#{pane_pid}'", tsock, tsess);
    T_EQ(sh(cmd), 0);
    T_OK(kill((pid_t)atoi(out), SIGTERM) == 0);
    T_OK(wait_screen("before-top", 3000));
    snprintf(cmd, sizeof(cmd), "tmux -S %s display-message -p -t %s '#{alternate_on}'", tsock,
             tsess);
    T_EQ(sh(cmd), 0);
    T_STR(out, "0\n");

    snprintf(cmd, sizeof(cmd), "tmux -S %s kill-server 2>/dev/null; true", tsock);
    sh(cmd);
    unlink(tsock);
}

int main(int argc, char **argv)
{
    static const char *const extra[] = {"--no-agent", NULL};

    sonde = th_sonde_main(argc, argv); /* SONDE [CASE-FILTER] */
    if (th_serve_start(sonde, extra, NULL, &srv) != 0) {
        fprintf(stderr, "cannot start sonde serve\n");
        return 1;
    }
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
    t_run("setup", test_setup);
    t_run("snapshot", test_snapshot);
    t_run("tmux", test_tmux);
    t_run("view", test_view);
    th_serve_stop(&srv);
    return t_done();
}
