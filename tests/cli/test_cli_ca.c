/*
 * The command line client of the CA API (`sonde create`, `list`, `raw`, `heatmap`...) end to
 * end: runs the real binary (path in argv[1]) against a `sonde serve --no-agent` of its own,
 * with data POSTed to /ca/ingest ten seconds in the past and read back with --start, and
 * checks outputs, messages and exit codes (including no server at all and usage errors).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <jansson.h>

#include "http.h"
#include "t.h"

static const char *sonde;
static struct th_serve srv;
static bool srv_up;
static char url[64];
static char out[1 << 20], err[1 << 16];
static int64_t t0; /* the second the data was ingested at */

/* Runs "sonde ARGS" with SONDE_URL pointing at the server, in UTC and the C locale (so
 * "us" for µs and "..." for the ellipsis); fills out/err; the exit code. */
static int run(const char *args)
{
    char cmd[8192];
    snprintf(cmd, sizeof(cmd), "TZ=UTC LC_ALL=C SONDE_URL=%s %s %s", url, sonde, args);
    return t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err));
}

/* t as the CLI shows a time in UTC: "2025-11-22 11:52:25 (1763812345)". */
static const char *utc(int64_t t)
{
    static char buf[64];
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), " (%" PRId64 ")", t);
    return buf;
}

static void ingest(const char *frames)
{
    struct th_resp r;
    T_EQ(th_send(srv.port, "POST", "/ca/ingest", "application/json", frames, &r), 0);
    T_EQ(r.status, 200);
    if (r.body && !strstr(r.body, "\"unknown\":0"))
        t_note("ingest reply: %s", r.body);
    th_resp_free(&r);
}

/* Creates instrumentations 1 (discrete by execname), 2 (numeric by latency), 3 (scalar) and
 * ingests one second of each at t0. */
static void test_create_list(void)
{
    char frames[1024];

    T_EQ(run("create syscall.syscalls -d execname"), 0);
    T_STR(out, "1 /ca/instrumentations/1\n");
    T_EQ(run("create syscall.syscalls --decompose latency --retention 1200"), 0);
    T_STR(out, "2 /ca/instrumentations/2\n");
    T_EQ(run("create syscall.syscalls --json"), 0);
    {
        json_t *j = json_loads(out, 0, NULL);
        T_STR(json_string_value(json_object_get(j, "id")), "3");
        T_STR(json_string_value(json_object_get(j, "value-arity")), "scalar");
        json_decref(j);
    }
    T_EQ(run("list"), 0);
    T_OK(strstr(out, "\n1      syscall.syscalls") != NULL);
    T_OK(strstr(out, "\n2      syscall.syscalls             latency ") != NULL);
    T_OK(strstr(out, " 1200 ") != NULL);
    T_EQ(run("list --token some-token-123"), 0); /* loopback without tenants: any token */
    T_EQ(run("get 2"), 0);
    T_OK(strstr(out, "retention-time   1200\n") != NULL);

    t0 = (int64_t)time(NULL) - 10;
    snprintf(frames, sizeof(frames),
             "[{\"id\":\"1\",\"host\":\"h\",\"t\":%" PRId64 ",\"arity\":\"discrete-decomposition\","
             "\"value\":{\"a\":3,\"b\":5,\"c\":1}},"
             "{\"id\":\"2\",\"host\":\"h\",\"t\":%" PRId64 ",\"arity\":\"numeric-decomposition\","
             "\"value\":[[[3000,3099],4],[[2000000,2099999],18]]},"
             "{\"id\":\"3\",\"host\":\"h\",\"t\":%" PRId64 ",\"arity\":\"scalar\",\"value\":16}]",
             t0, t0, t0);
    ingest(frames);
}

static void test_raw(void)
{
    char args[256];
    json_t *j;

    snprintf(args, sizeof(args), "raw 1 --start %" PRId64, t0);
    T_EQ(run(args), 0);
    T_STR(out, "b                                5\n"
               "a                                3\n"
               "c                                1\n");
    snprintf(args, sizeof(args), "raw 1 --top 2 --start %" PRId64, t0);
    T_EQ(run(args), 0);
    T_STR(out, "b                                5\n"
               "a                                3\n"
               "... and 1 more (1 event)\n");
    snprintf(args, sizeof(args), "raw 1 --top 1 --start %" PRId64, t0);
    T_EQ(run(args), 0);
    T_STR(out, "b                                5\n"
               "... and 2 more (4 events)\n");
    snprintf(args, sizeof(args), "raw 1 --top 3 --start %" PRId64, t0);
    T_EQ(run(args), 0);
    T_OK(strstr(out, "more") == NULL);
    T_EQ(run("raw 1 --top 0"), 2);
    T_STR(err, "sonde raw: --top wants a positive integer, not '0'\n");
    snprintf(args, sizeof(args), "raw 1 --start %" PRId64 " --json", t0);
    T_EQ(run(args), 0);
    j = json_loads(out, 0, NULL);
    T_EQ(json_integer_value(json_object_get(json_object_get(j, "value"), "b")), 5);
    T_EQ(json_integer_value(json_object_get(j, "start_time")), t0);
    json_decref(j);

    snprintf(args, sizeof(args), "raw 2 --start %" PRId64, t0);
    T_EQ(run(args), 0);
    /* the ranges [3000, 3099] and [2000000, 2099999] of the latency in ns */
    T_STR(out, "[3.00 us, 3.10 us)                    4  #########\n"
               "[2.00 ms, 2.10 ms)                   18  "
               "########################################\n");
    snprintf(args, sizeof(args), "raw 3 --start=%" PRId64, t0);
    T_EQ(run(args), 0);
    T_STR(out, "16\n");
    snprintf(args, sizeof(args), "raw 3 --json --start %" PRId64 " --duration 5", t0);
    T_EQ(run(args), 0);
    j = json_loads(out, 0, NULL);
    T_EQ(json_integer_value(json_object_get(j, "value")), 16);
    T_EQ(json_integer_value(json_object_get(j, "duration")), 5);
    json_decref(j);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void test_heatmap(void)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    char args[512], path[256];
    unsigned char png[64];
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "%s/cli_ca_heatmap.%d.png", t_outdir(), (int)getpid());
    snprintf(args, sizeof(args),
             "heatmap 2 -o %s --width 120 --height 40 --start %" PRId64 " --duration 5 --log", path,
             t0 - 2);
    T_EQ(run(args), 0);
    T_STR(err, "");
    f = fopen(path, "rb");
    T_REQUIRE(f != NULL);
    n = fread(png, 1, sizeof(png), f);
    fclose(f);
    unlink(path);
    T_REQUIRE(n >= 24);
    T_MEM(png, sig, 8);
    T_MEM(png + 12, "IHDR", 4);
    T_EQ(be32(png + 16), 120);
    T_EQ(be32(png + 20), 40);

    snprintf(args, sizeof(args), "heatmap 2 --json --start %" PRId64 " --duration 5 --ymax 3000000",
             t0 - 2);
    T_EQ(run(args), 0);
    json_t *j = json_loads(out, 0, NULL);
    T_OK(j != NULL);
    T_OK(json_object_get(j, "image") == NULL);
    T_EQ(json_integer_value(json_object_get(j, "ymax")), 3000000);
    T_EQ(json_integer_value(json_object_get(j, "width")), 600);
    json_decref(j);

    /* the human form: times local (UTC here), ymin and ymax in the field's unit */
    snprintf(args, sizeof(args), "heatmap 2 --start %" PRId64 " --duration 5 --ymax 3000000",
             t0 - 2);
    T_EQ(run(args), 0);
    snprintf(path, sizeof(path), "start_time             %s\n", utc(t0 - 2));
    T_OK(strncmp(out, path, strlen(path)) == 0);
    snprintf(path, sizeof(path), "\nend_time               %s\n", utc(t0 + 3));
    T_OK(strstr(out, path) != NULL);
    T_OK(strstr(out, "\nymin                   0 ns\nymax                   3.00 ms\n") != NULL);

    snprintf(args, sizeof(args), "percentile 2 -P 0.5,0.9 --start %" PRId64 " --json", t0);
    T_EQ(run(args), 0);
    j = json_loads(out, 0, NULL);
    T_EQ(json_array_size(json_object_get(j, "percentile")), 2);
    json_decref(j);
    snprintf(args, sizeof(args), "percentile 2 -P 0.5 --start %" PRId64, t0);
    T_EQ(run(args), 0);
    T_OK(strncmp(out, "p0.5 ", 5) == 0);
}

/* Percentiles are exact by default (method=exact: from the merged log-linear histograms,
 * libcircllhist's type 1), CA's rows with --rows. Instrumentation 2 holds 4 calls in
 * [3000, 3100) ns and 18 in [2000000, 2100000) ns. */
static void test_percentile(void)
{
    char args[256];
    json_t *j, *p;

    snprintf(args, sizeof(args), "percentile 2 -P 0.5,0.99 --start %" PRId64 " --json", t0);
    T_EQ(run(args), 0);
    T_STR(err, "");
    j = json_loads(out, 0, NULL);
    T_STR(json_string_value(json_object_get(j, "method")), "exact");
    p = json_object_get(j, "percentile");
    T_DEQ(json_number_value(json_array_get(p, 0)), 2036842.105263158);
    T_DEQ(json_number_value(json_array_get(p, 1)), 2094736.8421052631);
    json_decref(j);
    /* in the field's unit, in the order asked; never above the top of the data's bucket */
    snprintf(args, sizeof(args), "percentile 2 -P 0.99,0.5,0.1,1 --start %" PRId64, t0);
    T_EQ(run(args), 0);
    T_STR(err, "");
    T_STR(out, "p0.99       2.09 ms\n"
               "p0.5        2.04 ms\n"
               "p0.1        3.06 us\n"
               "p1          2.09 ms\n");

    /* CA's rows: 100 rows of 22 us up to the auto-scaled 2.2 ms put the p99 above the data */
    snprintf(args, sizeof(args), "percentile 2 -P 0.5,0.99 --start %" PRId64 " --rows", t0);
    T_EQ(run(args), 0);
    T_STR(err, "");
    T_STR(out, "p0.5        2.04 ms\n"
               "p0.99       2.11 ms\n");
    snprintf(args, sizeof(args), "percentile 2 -P 0.5 --start %" PRId64 " --rows --json", t0);
    T_EQ(run(args), 0);
    j = json_loads(out, 0, NULL);
    T_STR(json_string_value(json_object_get(j, "method")), "rows");
    T_EQ(json_integer_value(json_object_get(j, "nbuckets")), 100);
    json_decref(j);

    /* the rows' options need --rows; exact percentiles count events */
    T_EQ(run("percentile 2 -P 0.5 --nbuckets 3"), 2);
    T_STR(err, "sonde percentile: --ymin, --ymax, --nbuckets and --log shape the rows of --rows: "
               "give --rows with them\n");
    T_EQ(run("percentile 2 -P 0.5 --log"), 2);
    T_EQ(run("percentile 2 -P 0.5 --ymax 9"), 2);
    T_EQ(run("percentile 2 -P 0.5 --weights weight"), 2);
    T_STR(err, "sonde percentile: --weights weight needs --rows (exact percentiles count "
               "events)\n");
    snprintf(args, sizeof(args), "percentile 2 -P 0.5 --weights count --start %" PRId64, t0);
    T_EQ(run(args), 0);
    T_STR(out, "p0.5        2.04 ms\n");
}

/* The predicate of "create ... ARGS --json" as compact JSON, in buf. */
static const char *created_predicate(const char *args, char *buf, size_t cap)
{
    char cmd[512];
    json_t *j;
    char *p;

    buf[0] = '\0';
    snprintf(cmd, sizeof(cmd), "create syscall.syscalls --json %s", args);
    if (run(cmd) != 0) {
        t_note("%s: %s", cmd, err);
        return buf;
    }
    j = json_loads(out, 0, NULL);
    p = json_dumps(json_object_get(j, "predicate"), JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(buf, cap, "%s", p ? p : "");
    free(p);
    if ((p = (char *)json_string_value(json_object_get(j, "id"))) != NULL) {
        snprintf(cmd, sizeof(cmd), "delete %s", p);
        run(cmd);
    }
    json_decref(j);
    return buf;
}

static void test_predicates(void)
{
    char b[512];

    T_STR(created_predicate("-p '{\"eq\":[\"execname\",\"nginx\"]}'", b, sizeof(b)),
          "{\"eq\":[\"execname\",\"nginx\"]}");
    T_STR(created_predicate("-p 'execname == nginx'", b, sizeof(b)),
          "{\"eq\":[\"execname\",\"nginx\"]}");
    T_STR(created_predicate("-p 'execname!=\"a b\"'", b, sizeof(b)),
          "{\"ne\":[\"execname\",\"a b\"]}");
    T_STR(created_predicate("-p 'latency >= 1000'", b, sizeof(b)), "{\"ge\":[\"latency\",1000]}");
    T_STR(created_predicate("-p 'latency<5' -p 'latency > 2' -p 'execname = x'", b, sizeof(b)),
          "{\"and\":[{\"lt\":[\"latency\",5]},{\"gt\":[\"latency\",2]},{\"eq\":[\"execname\","
          "\"x\"]}]}");
    /* values with units go to the server as strings; it converts them (or says why not) */
    T_STR(created_predicate("-d latency -p 'latency > 1ms' -p 'latency<=2.5s'", b, sizeof(b)),
          "{\"and\":[{\"gt\":[\"latency\",\"1ms\"]},{\"le\":[\"latency\",\"2.5s\"]}]}");
    T_EQ(run("create syscall.syscalls -p 'latency > 4KiB'"), 1);
    T_STR(err,
          "sonde: value {\"gt\":[\"latency\",\"4KiB\"]} for field \"predicate\" is invalid: "
          "\"4KiB\" is a size, but field \"latency\" is a time: use ns, us (or \xc2\xb5s), ms, "
          "s, min or h\n");
    T_EQ(run("create syscall.syscalls -p 'latency >'"), 2);
    T_STR(err, "sonde create: bad predicate 'latency >': no value\n");
    T_EQ(run("create syscall.syscalls -p latency"), 2);
    T_STR(err, "sonde create: bad predicate 'latency': want JSON or FIELD OP VALUE (OP one of == "
               "!= < <= > >=)\n");
    T_EQ(run("create syscall.syscalls -p '[1]'"), 2);
}

static void test_clone_delete(void)
{
    T_EQ(run("clone 1 retention-time=1800"), 0);
    T_STR(out, "4 /ca/instrumentations/4\n");
    T_EQ(run("get 4 --json"), 0);
    T_OK(strstr(out, "\"retention-time\": 1800") != NULL);
    T_EQ(run("delete 4"), 0);
    T_STR(out, "deleted 4\n");
    T_EQ(run("get 4"), 1);
    T_STR(err, "sonde: no such instrumentation\n");
}

/* A server that is not Sonde: answers every request (up to n) with status and an HTML body,
 * in a child process; its port, or -1. */
static pid_t other_pid;
static int other_server(const char *status, int n)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 8) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) < 0)
        return -1;
    other_pid = fork();
    if (other_pid == 0) {
        for (int i = 0; i < n; i++) {
            char req[4096], resp[512];
            int c = accept(fd, NULL, NULL);
            if (c < 0)
                _exit(1);
            if (read(c, req, sizeof(req)) < 0) { /* one read holds these small requests */
                close(c);
                continue;
            }
            int len = snprintf(resp, sizeof(resp),
                               "HTTP/1.1 %s\r\nContent-Type: text/html\r\nContent-Length: 13\r\n"
                               "Connection: close\r\n\r\n<html></html>",
                               status);
            if (write(c, resp, (size_t)len) < 0)
                _exit(1);
            close(c);
        }
        _exit(0);
    }
    close(fd);
    return other_pid > 0 ? ntohs(a.sin_port) : -1;
}

/* What a command says on a non-numeric instrumentation, a URL that is not Sonde's, and no
 * server at all. */
static void test_what_is_wrong(void)
{
    char args[256], want[512];
    int port;

    /* 1 is decomposed by execname, 3 a scalar: no heatmaps, percentiles or details */
    T_EQ(run("heatmap 1"), 1);
    T_STR(err, "sonde: instrumentation 1 has no numeric decomposition: heatmaps need one (it is "
               "decomposed by execname)\n");
    T_EQ(run("heatmap 1 --json -o /nonexistent/x.png"), 1);
    T_STR(err, "sonde: instrumentation 1 has no numeric decomposition: heatmaps need one (it is "
               "decomposed by execname)\n");
    T_EQ(run("percentile 3 -P 0.5"), 1);
    T_STR(err, "sonde: instrumentation 3 has no numeric decomposition: percentiles need one (it "
               "has no decomposition: its value is a scalar)\n");
    T_EQ(run("details 1 --x 1 --y 1 --ymax 9 --json"), 1);
    T_STR(err, "sonde: instrumentation 1 has no numeric decomposition: heatmap details need one "
               "(it is decomposed by execname)\n");
    T_STR(out, "");
    T_EQ(run("heatmap 99"), 1);
    T_STR(err, "sonde: no such instrumentation\n");
    T_EQ(run("percentile 99 -P 0.5"), 1);
    T_STR(err, "sonde: no such instrumentation\n");

    /* Sonde, but under a path prefix it does not have */
    snprintf(args, sizeof(args), "list --url %s/prefix", url);
    T_EQ(run(args), 1);
    snprintf(want, sizeof(want),
             "sonde: %s/prefix: not a Sonde server (GET /prefix/ answers HTTP 404; one answers "
             "at %s, without the path /prefix)\n",
             url, url);
    T_STR(err, want);
    snprintf(args, sizeof(args), "raw 1 --url %s/prefix", url);
    T_EQ(run(args), 1);
    T_STR(err, want);

    /* another HTTP server: a 404 or a 501 of its own is not "no such instrumentation" */
    port = other_server("404 Not Found", 2);
    T_REQUIRE(port > 0);
    snprintf(args, sizeof(args), "get 1 --url http://127.0.0.1:%d", port);
    T_EQ(run(args), 1);
    snprintf(want, sizeof(want),
             "sonde: http://127.0.0.1:%d: not a Sonde server (GET / answers HTTP 404)\n", port);
    T_STR(err, want);
    waitpid(other_pid, NULL, 0);
    port = other_server("501 Not Implemented", 2);
    T_REQUIRE(port > 0);
    snprintf(args, sizeof(args), "create syscall.syscalls --url http://127.0.0.1:%d", port);
    T_EQ(run(args), 1);
    snprintf(want, sizeof(want),
             "sonde: http://127.0.0.1:%d: not a Sonde server (GET / answers HTTP 501)\n", port);
    T_STR(err, want);
    waitpid(other_pid, NULL, 0);
    port = other_server("200 OK", 2);
    T_REQUIRE(port > 0);
    snprintf(args, sizeof(args), "list --url http://127.0.0.1:%d", port);
    T_EQ(run(args), 1);
    snprintf(want, sizeof(want),
             "sonde: http://127.0.0.1:%d: not a Sonde server (GET / answers text/html, not "
             "JSON)\n",
             port);
    T_STR(err, want);
    waitpid(other_pid, NULL, 0);
}

static void test_errors(void)
{
    T_EQ(run("create nope.x"), 1);
    T_STR(err, "sonde: value \"nope.x\" for field \"module.stat\" is invalid: not a valid "
               "module/stat pair\n");
    T_STR(out, "");
    T_EQ(run("raw 99"), 1);
    T_STR(err, "sonde: no such instrumentation\n");
    T_EQ(run("delete 77"), 1);
    T_STR(err, "sonde: no such instrumentation\n");
    T_EQ(run("create syscall.syscalls --granularity 7"), 1);
    T_OK(strncmp(err, "sonde: ", 7) == 0);

    /* no server there: port 1 on loopback refuses */
    T_EQ(run("list --url http://127.0.0.1:1"), 1);
    T_STR(err, "sonde: cannot connect to http://127.0.0.1:1: nothing listens there (is `sonde "
               "serve` running there?)\n");
    T_EQ(run("describe --url http://[::1]:1"), 1);
    T_OK(strstr(err, "http://[::1]:1") != NULL);

    /* usage errors */
    T_EQ(run("raw"), 2);
    T_EQ(run("raw 1 --bogus"), 2);
    T_EQ(run("raw x1"), 2);
    T_EQ(run("raw 1 --start soon"), 2);
    T_EQ(run("create syscall"), 2);
    T_EQ(run("create syscall.syscalls -p '[1'"), 2);
    T_EQ(run("get"), 2);
    T_EQ(run("get 1 2"), 2);
    T_EQ(run("clone 1 noequals"), 2);
    T_EQ(run("details 2 --x 1"), 2);
    T_EQ(run("percentile 2"), 2);
    T_EQ(run("list --url ftp://x"), 2);
    T_EQ(run("heatmap 1 --x 3"), 2);
    T_EQ(run("raw 1 --start"), 2);
    T_STR(strtok(err, "\n"), "sonde raw: option '--start' wants an argument");
    T_EQ(run("list --bogus"), 2);
    T_STR(strtok(err, "\n"), "sonde list: unknown option '--bogus'");
    T_EQ(run("raw --help"), 0);
    T_OK(strstr(out, "exit codes:") != NULL);
}

/* ---- heatmap key and drawing options ----------------------------------------------------- */

static char kid[16]; /* the instrumentation by execname and latency */
static unsigned char png_buf[1 << 16];

static size_t slurp(const char *path, unsigned char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n;
    if (!f)
        return 0;
    n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

/* Runs "heatmap KID -o FILE" over the second of t0 (5 columns, 100x50, ymax 3000000) with opts;
 * the image goes to png_buf. Returns the exit code; *len is the image's size (0: none). */
static int heatmap_png(const char *opts, int64_t start, size_t *len)
{
    char args[1024], path[256];

    snprintf(path, sizeof(path), "%s/cli_ca_keys.%d.png", t_outdir(), (int)getpid());
    unlink(path);
    snprintf(args, sizeof(args),
             "heatmap %s -o %s --start %" PRId64 " --duration 5 --width 100 --height 50 "
             "--ymax 3000000 %s",
             kid, path, start, opts);
    t_note("sonde %s", args);
    int rc = run(args);
    *len = slurp(path, png_buf, sizeof(png_buf));
    unlink(path);
    return rc;
}

/* 1 when the images of options a and b are PNGs that differ, 0 when they are the same, -1
 * when one is missing. */
static int png_cmp(const char *a, const char *b)
{
    static unsigned char first[1 << 16];
    size_t na, nb;

    if (heatmap_png(a, t0 - 2, &na) != 0 || na < 8 || memcmp(png_buf, "\x89PNG", 4) != 0) {
        t_note("heatmap %s: %s", a, err);
        return -1;
    }
    memcpy(first, png_buf, na);
    if (heatmap_png(b, t0 - 2, &nb) != 0 || nb < 8 || memcmp(png_buf, "\x89PNG", 4) != 0) {
        t_note("heatmap %s: %s", b, err);
        return -1;
    }
    return na != nb || memcmp(png_buf, first, na) != 0;
}

/* Runs a command that should answer JSON; the parsed reply, or NULL. */
static json_t *run_json(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *run_json(const char *fmt, ...)
{
    char args[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    t_note("sonde %s", args);
    if (run(args) != 0) {
        t_note("%s: %s", args, err);
        return NULL;
    }
    return json_loads(out, 0, NULL);
}

/* Instrumentation KID decomposed by execname and latency, with two keys at t0: "a" (4 calls
 * of about 3 us) and "x y/z" (18 of about 2 ms; a key that needs encoding in a URL). */
static void test_keys_setup(void)
{
    char frames[1024];
    size_t n;

    T_EQ(run("create syscall.syscalls -d execname -d latency"), 0);
    T_REQUIRE(sscanf(out, "%15s /ca/instrumentations/", kid) == 1);
    snprintf(frames, sizeof(frames),
             "{\"id\":\"%s\",\"host\":\"h\",\"t\":%" PRId64 ",\"arity\":\"numeric-decomposition\","
             "\"value\":{\"a\":[[[3000,3099],4]],\"x y/z\":[[[2000000,2099999],18]]}}",
             kid, t0);
    ingest(frames);
    T_EQ(heatmap_png("", t0 - 2, &n), 0);
    T_STR(err, "");
    T_OK(n > 8 && memcmp(png_buf, "\x89PNG", 4) == 0);
}

static void test_heatmap_keys(void)
{
    unsigned char empty[1 << 16];
    size_t nempty, n;

    T_REQUIRE(kid[0] != '\0');
    /* every option reaches the server and changes the image */
    T_EQ(png_cmp("", "--selected a"), 1);
    T_EQ(png_cmp("", "--selected a --isolate"), 1);
    T_EQ(png_cmp("", "--selected 'x y/z' --isolate"), 1);
    T_EQ(png_cmp("--selected a --isolate", "--selected 'x y/z' --isolate"), 1);
    T_EQ(png_cmp("--selected a", "--selected a --exclude"), 1);
    T_EQ(png_cmp("--selected a", "--selected a --isolate"), 1);
    T_EQ(png_cmp("", "--decompose-all"), 1);
    T_EQ(png_cmp("--selected a", "--selected a --hues 0,200"), 1);
    T_EQ(png_cmp("--selected a --isolate", "--selected a --isolate --hues 200"), 1);
    T_EQ(png_cmp("", "--coloring linear"), 1);
    T_EQ(png_cmp("", "--nbuckets 3"), 1);
    T_EQ(png_cmp("", "--log"), 1);
    T_EQ(png_cmp("", "--ymin 1000000"), 1);
    T_EQ(png_cmp("", "--weights count --coloring rank"), 0); /* the defaults, given */
    /* every key present in a color of its own is selecting them all, the biggest first */
    T_EQ(png_cmp("--decompose-all", "--selected 'x y/z' --selected a"), 0);

    /* the keys as the server knows them: isolating either draws something, isolating one
     * that is not there draws what an interval without data draws */
    T_EQ(heatmap_png("", t0 - 100, &nempty), 0);
    T_REQUIRE(nempty > 8);
    memcpy(empty, png_buf, nempty);
    T_EQ(heatmap_png("", t0 - 2, &n), 0);
    T_OK(n != nempty || memcmp(png_buf, empty, n) != 0);
    T_EQ(heatmap_png("--selected nope --isolate", t0 - 2, &n), 0);
    T_OK(n == nempty && memcmp(png_buf, empty, n) == 0);
    T_EQ(heatmap_png("--selected 'x y/z' --isolate", t0 - 2, &n), 0);
    T_OK(n > 8 && (n != nempty || memcmp(png_buf, empty, n) != 0));
    T_EQ(heatmap_png("--selected a,nope --isolate", t0 - 2, &n), 0);
    T_OK(n > 8 && (n != nempty || memcmp(png_buf, empty, n) != 0));
    /* repeated and comma-separated are the same selection */
    T_EQ(png_cmp("--selected a,'x y/z' --isolate", "--selected a --selected 'x y/z' --isolate"), 0);
}

static void test_heatmap_keys_json(void)
{
    json_t *j, *p;
    char args[512];

    T_REQUIRE(kid[0] != '\0');
    /* the drawing parameters the server used */
    j = run_json("heatmap %s --json --start %" PRId64 " --duration 5 --selected 'x y/z' "
                 "--isolate --hues 300 --coloring linear --weights weight --log --nbuckets 7 "
                 "--ymin 10 --ymax 2500000",
                 kid, t0 - 2);
    T_REQUIRE(j != NULL);
    T_EQ(json_integer_value(json_object_get(j, "nbuckets")), 7);
    T_EQ(json_integer_value(json_object_get(j, "ymin")), 10);
    T_EQ(json_integer_value(json_object_get(j, "ymax")), 2500000);
    T_STR(json_string_value(json_object_get(j, "yscale")), "log");
    p = json_object_get(j, "present");
    T_EQ(json_array_size(p), 2);
    T_STR(json_string_value(json_array_get(p, 0)), "a");
    T_STR(json_string_value(json_array_get(p, 1)), "x y/z");
    T_OK(json_object_get(j, "image") == NULL);
    json_decref(j);

    /* the human form lists the present keys one a line */
    snprintf(args, sizeof(args), "heatmap %s --start %" PRId64 " --duration 5 --log", kid, t0 - 2);
    T_EQ(run(args), 0);
    T_OK(strstr(out, "\nyscale                 log\n") != NULL);
    T_OK(strstr(out, "\npresent                a\n                       x y/z\n") != NULL);
    snprintf(args, sizeof(args), "heatmap %s --start %" PRId64 " --duration 5", kid, t0 - 100);
    T_EQ(run(args), 0);
    T_OK(strstr(out, "\npresent                -\n") != NULL);

    /* details in 3 buckets of 1e6: the top one holds "x y/z", the bottom one "a" (the server
     * counts every key present, whatever the selection: these show the options accepted) */
    j = run_json("details %s --json --start %" PRId64 " --duration 5 --x 300 --y 0 --ymax 3000000 "
                 "--nbuckets 3 --selected 'x y/z' --isolate",
                 kid, t0 - 2);
    T_REQUIRE(j != NULL);
    T_EQ(json_integer_value(json_object_get(j, "bucket_ymin")), 2000000);
    T_EQ(json_integer_value(json_object_get(j, "bucket_ymax")), 3000000);
    T_EQ(json_integer_value(json_object_get(json_object_get(j, "present"), "x y/z")), 18);
    T_EQ(json_object_size(json_object_get(j, "present")), 1);
    T_EQ(json_integer_value(json_object_get(j, "total")), 18);
    json_decref(j);
    j = run_json("details %s --json --start %" PRId64
                 " --duration 5 --x 300 --y 299 --ymax 3000000 "
                 "--nbuckets 3 --selected 'x y/z' --exclude",
                 kid, t0 - 2);
    T_REQUIRE(j != NULL);
    T_EQ(json_integer_value(json_object_get(j, "bucket_ymin")), 0);
    T_EQ(json_integer_value(json_object_get(json_object_get(j, "present"), "a")), 4);
    T_EQ(json_integer_value(json_object_get(j, "total")), 4);
    json_decref(j);
    /* by weight: 4 calls of 3000 to 3099 weigh about 4 * 3050 */
    j = run_json("details %s --json --start %" PRId64
                 " --duration 5 --x 300 --y 299 --ymax 3000000 "
                 "--nbuckets 3 --weights weight",
                 kid, t0 - 2);
    T_REQUIRE(j != NULL);
    T_NEAR((double)json_integer_value(json_object_get(j, "total")), 4 * 3050, 4 * 50);
    json_decref(j);
    /* the human form; the drawing options change no count */
    snprintf(args, sizeof(args),
             "details %s --start %" PRId64 " --duration 5 --x 300 --y 0 --ymax 3000000 "
             "--nbuckets 3 --decompose-all --coloring rank --weights count --hues 1,2,3",
             kid, t0 - 2);
    T_EQ(run(args), 0);
    snprintf(args, sizeof(args),
             "time     %s\nrange    [2.00 ms, 3.00 ms)\ntotal    18\n"
             "x y/z                            18\n",
             utc(t0));
    T_STR(out, args);
    /* one row for everything: both keys; --top 1 keeps the biggest */
    snprintf(args, sizeof(args),
             "details %s --start %" PRId64 " --duration 5 --x 300 --y 0 --ymax 3000000 "
             "--nbuckets 1",
             kid, t0 - 2);
    T_EQ(run(args), 0);
    snprintf(args, sizeof(args),
             "time     %s\nrange    [0 ns, 3.00 ms)\ntotal    22\n"
             "x y/z                            18\n"
             "a                                4\n",
             utc(t0));
    T_STR(out, args);
    snprintf(args, sizeof(args),
             "details %s --start %" PRId64 " --duration 5 --x 300 --y 0 --ymax 3000000 "
             "--nbuckets 1 --top 1",
             kid, t0 - 2);
    T_EQ(run(args), 0);
    T_OK(strstr(out, "\nx y/z                            18\n... and 1 more (4 events)\n") != NULL);

    /* percentile: by count, a tenth of the calls are under 1e5; by weight, over 1e6 */
    j = run_json("percentile %s --json -P 0.1 --start %" PRId64 " --rows", kid, t0);
    T_REQUIRE(j != NULL);
    T_OK(json_number_value(json_object_get(j, "percentile")) < 100000);
    json_decref(j);
    j = run_json("percentile %s --json -P 0.1 --start %" PRId64 " --weights weight --rows", kid,
                 t0);
    T_REQUIRE(j != NULL);
    T_OK(json_number_value(json_object_get(j, "percentile")) > 1000000);
    json_decref(j);
    j = run_json("percentile %s --json -P 0.5 --start %" PRId64 " --selected 'x y/z' --isolate "
                 "--hues 9 --coloring linear --log --ymax 2500000 --nbuckets 50 --rows",
                 kid, t0);
    T_REQUIRE(j != NULL);
    T_OK(json_is_number(json_object_get(j, "percentile")));
    T_EQ(json_integer_value(json_object_get(j, "nbuckets")), 50);
    T_EQ(json_integer_value(json_object_get(j, "ymax")), 2500000);
    json_decref(j);
    snprintf(args, sizeof(args), "percentile %s -P 0.5,0.1 --start %" PRId64 " --nbuckets 2 --rows",
             kid, t0);
    T_EQ(run(args), 0);
    T_OK(strncmp(out, "p0.5        ", 12) == 0);
    T_OK(strstr(out, "\np0.1        ") != NULL);
}

static void test_heatmap_keys_errors(void)
{
    char args[512], path[256];
    FILE *f;

    T_REQUIRE(kid[0] != '\0');
    snprintf(path, sizeof(path), "%s/cli_ca_bad.%d.png", t_outdir(), (int)getpid());
    unlink(path);

    /* usage errors, caught before any request */
    snprintf(args, sizeof(args), "heatmap %s -o %s --selected a --isolate --exclude", kid, path);
    T_EQ(run(args), 2);
    T_STR(err, "sonde heatmap: give at most one of --isolate, --exclude and --decompose-all\n");
    T_STR(out, "");
    snprintf(args, sizeof(args), "details %s --x 1 --y 1 --ymax 9 --exclude --decompose-all", kid);
    T_EQ(run(args), 2);
    T_STR(err, "sonde details: give at most one of --isolate, --exclude and --decompose-all\n");
    snprintf(args, sizeof(args), "percentile %s -P 0.5 --decompose-all --isolate", kid);
    T_EQ(run(args), 2);
    snprintf(args, sizeof(args), "heatmap %s --hues red", kid);
    T_EQ(run(args), 2);
    T_STR(err, "sonde heatmap: --hues wants numbers separated by commas, not 'red'\n");
    snprintf(args, sizeof(args), "heatmap %s --selected ''", kid);
    T_EQ(run(args), 2);
    T_STR(err, "sonde heatmap: --selected wants a value\n");
    snprintf(args, sizeof(args), "heatmap %s --nbuckets many", kid);
    T_EQ(run(args), 2);
    snprintf(args, sizeof(args), "heatmap %s --weights", kid);
    T_EQ(run(args), 2);
    T_STR(strtok(err, "\n"), "sonde heatmap: option '--weights' wants an argument");
    snprintf(args, sizeof(args), "raw %s --selected a", kid);
    T_EQ(run(args), 2);
    T_STR(strtok(err, "\n"), "sonde raw: unknown option '--selected'");

    /* what the server refuses: its message, exit 1, no file */
    snprintf(args, sizeof(args), "heatmap %s -o %s --weights bogus", kid, path);
    T_EQ(run(args), 1);
    T_STR(err, "sonde: value \"bogus\" for param \"weights\" not valid: unsupported value\n");
    T_STR(out, "");
    f = fopen(path, "rb");
    T_OK(f == NULL);
    if (f)
        fclose(f);
    snprintf(args, sizeof(args), "heatmap %s --json --coloring loud", kid);
    T_EQ(run(args), 1);
    T_STR(err, "sonde: value \"loud\" for param \"coloring\" not valid: unsupported value\n");
    snprintf(args, sizeof(args), "details %s --x 1 --y 1 --ymax 9 --weights bogus", kid);
    T_EQ(run(args), 1);
    T_STR(err, "sonde: value \"bogus\" for param \"weights\" not valid: unsupported value\n");
    snprintf(args, sizeof(args), "heatmap %s --selected a --hues 400,0", kid);
    T_EQ(run(args), 1);
    T_STR(err, "sonde: invalid hue\n");
    snprintf(args, sizeof(args), "heatmap %s --selected a,b --hues 10", kid);
    T_EQ(run(args), 1);
    T_STR(err, "sonde: need 3 hues\n");
}

/* Every client command's help ends with the exit codes of `sonde --help`, the same text. */
static void test_help_exit_codes(void)
{
    static const char *const cmds[] = {"describe", "list",       "get", "create",
                                       "clone",    "delete",     "raw", "heatmap",
                                       "details",  "percentile", "top"};
    char codes[2048], args[64];
    const char *p;

    T_EQ(run("--help"), 0);
    p = strstr(out, "exit codes:\n");
    T_REQUIRE(p != NULL);
    snprintf(codes, sizeof(codes), "%s", p);
    T_OK(strstr(codes, "  0  success\n") != NULL);
    T_OK(strstr(codes, "\n  1  ") != NULL);
    T_OK(strstr(codes, "\n  2  usage error") != NULL);
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        size_t lo, lc = strlen(codes);
        t_note("sonde %s --help", cmds[i]);
        snprintf(args, sizeof(args), "%s --help", cmds[i]);
        T_EQ(run(args), 0);
        lo = strlen(out);
        /* the whole text, after a blank line */
        T_OK(lo > lc + 2 && strcmp(out + lo - lc, codes) == 0);
        T_OK(lo > lc + 2 && strncmp(out + lo - lc - 2, "\n\n", 2) == 0);
        T_STR(err, "");
        /* `sonde help CMD` and the usage on a usage error end the same way */
        snprintf(args, sizeof(args), "help %s", cmds[i]);
        T_EQ(run(args), 0);
        lo = strlen(out);
        T_OK(lo > lc && strcmp(out + lo - lc, codes) == 0);
        snprintf(args, sizeof(args), "%s --no-such-option", cmds[i]);
        T_EQ(run(args), 2);
        lo = strlen(err);
        T_OK(lo > lc && strcmp(err + lo - lc, codes) == 0);
    }
}

/* A metric whose values are bytes (nic.bytes, CA type "size"): its counts in B, KiB... */
static void test_byte_values(void)
{
    char scalar[16], bynic[16], frames[512], args[128];

    T_EQ(run("create nic.bytes"), 0);
    T_REQUIRE(sscanf(out, "%15s /ca/instrumentations/", scalar) == 1);
    T_EQ(run("create nic.bytes -d nic"), 0);
    T_REQUIRE(sscanf(out, "%15s /ca/instrumentations/", bynic) == 1);
    snprintf(frames, sizeof(frames),
             "[{\"id\":\"%s\",\"host\":\"h\",\"t\":%" PRId64
             ",\"arity\":\"scalar\",\"value\":4096},"
             "{\"id\":\"%s\",\"host\":\"h\",\"t\":%" PRId64 ",\"arity\":\"discrete-decomposition\","
             "\"value\":{\"eth0\":1536000,\"lo\":100,\"x\":1}}]",
             scalar, t0, bynic, t0);
    ingest(frames);
    snprintf(args, sizeof(args), "raw %s --start %" PRId64, scalar, t0);
    T_EQ(run(args), 0);
    T_STR(out, "4.00 KiB\n");
    snprintf(args, sizeof(args), "raw %s --start %" PRId64 " --top 1", bynic, t0);
    T_EQ(run(args), 0);
    T_STR(out, "eth0                             1.46 MiB\n"
               "... and 2 more (101 B)\n");
    snprintf(args, sizeof(args), "raw %s --start %" PRId64 " --json", bynic, t0);
    T_EQ(run(args), 0);
    T_OK(strstr(out, "\"eth0\": 1536000") != NULL);
}

static void test_describe(void)
{
    T_EQ(run("describe"), 0);
    T_OK(strstr(out, "syscall.syscalls") != NULL);
    T_OK(strstr(out, "    latency ") != NULL);
    T_EQ(run("describe --json"), 0);
    json_t *j = json_loads(out, 0, NULL);
    T_OK(json_is_array(json_object_get(j, "metrics")));
    json_decref(j);
    T_EQ(run("describe --tenant nobody"), 1); /* no tenants file: no tenant scopes */
}

int main(int argc, char **argv)
{
    static const char *const extra[] = {"--no-agent", NULL};

    sonde = th_sonde_main(argc, argv); /* SONDE [CASE-FILTER] */
    if (th_serve_start(sonde, extra, NULL, &srv) == 0) {
        srv_up = true;
        snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
    }
    if (!srv_up) {
        fprintf(stderr, "cannot start sonde serve\n");
        return 1;
    }
    t_run("describe", test_describe);
    t_run("create_list", test_create_list);
    t_run("raw", test_raw);
    t_run("heatmap", test_heatmap);
    t_run("percentile", test_percentile);
    t_run("clone_delete", test_clone_delete);
    t_run("errors", test_errors);
    t_run("what is wrong", test_what_is_wrong);
    t_run("predicates", test_predicates);
    t_run("keys_setup", test_keys_setup);
    t_run("heatmap_keys", test_heatmap_keys);
    t_run("heatmap_keys_json", test_heatmap_keys_json);
    t_run("heatmap_keys_errors", test_heatmap_keys_errors);
    t_run("help_exit_codes", test_help_exit_codes);
    t_run("byte_values", test_byte_values);
    th_serve_stop(&srv);
    return t_done();
}
