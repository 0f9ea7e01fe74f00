/*
 * `sonde top` end to end: the real binary (path in argv[1]) against a `sonde serve --no-agent`
 * of its own, fed through POST /ca/ingest with frames for the last few seconds and the next
 * ones. Checks the plain snapshot printed when stdout is a pipe (keys by count, counts, p50 in
 * human units), then the terminal view under tmux: the header and both keys on screen, and `q`
 * ending the process. Without tmux (scripts/setup installs it) the tmux case fails.
 */
#include <inttypes.h>
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

int main(int argc, char **argv)
{
    static const char *const extra[] = {"--no-agent", NULL};

    if (argc < 2) {
        fprintf(stderr, "usage: %s SONDE_BINARY\n", argv[0]);
        return 2;
    }
    sonde = argv[1];
    t_init(argc - 1, argv + 1);
    if (th_serve_start(sonde, extra, NULL, &srv) != 0) {
        fprintf(stderr, "cannot start sonde serve\n");
        return 1;
    }
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
    t_run("setup", test_setup);
    t_run("snapshot", test_snapshot);
    t_run("tmux", test_tmux);
    th_serve_stop(&srv);
    return t_done();
}
