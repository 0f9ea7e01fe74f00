/*
 * The command line client of the CA API (`sonde create`, `list`, `raw`, `heatmap`...) end to
 * end: runs the real binary (path in argv[1]) against a `sonde serve --no-agent` of its own,
 * with data POSTed to /ca/ingest ten seconds in the past and read back with --start, and
 * checks outputs, messages and exit codes (including no server at all and usage errors).
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "http.h"
#include "t.h"

static const char *sonde;
static struct th_serve srv;
static bool srv_up;
static char url[64];
static char out[1 << 20], err[1 << 16];
static int64_t t0; /* the second the data was ingested at */

/* Runs "sonde ARGS" with SONDE_URL pointing at the server; fills out/err; the exit code. */
static int run(const char *args)
{
    char cmd[8192];
    snprintf(cmd, sizeof(cmd), "SONDE_URL=%s %s %s", url, sonde, args);
    return t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err));
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
    snprintf(args, sizeof(args), "raw 1 --start %" PRId64 " --json", t0);
    T_EQ(run(args), 0);
    j = json_loads(out, 0, NULL);
    T_EQ(json_integer_value(json_object_get(json_object_get(j, "value"), "b")), 5);
    T_EQ(json_integer_value(json_object_get(j, "start_time")), t0);
    json_decref(j);

    snprintf(args, sizeof(args), "raw 2 --start %" PRId64, t0);
    T_EQ(run(args), 0);
    T_STR(out, "[3000, 3099]                          4  #########\n"
               "[2000000, 2099999]                   18  "
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

    snprintf(args, sizeof(args), "percentile 2 -P 0.5,0.9 --start %" PRId64 " --json", t0);
    T_EQ(run(args), 0);
    j = json_loads(out, 0, NULL);
    T_EQ(json_array_size(json_object_get(j, "percentile")), 2);
    json_decref(j);
    snprintf(args, sizeof(args), "percentile 2 -P 0.5 --start %" PRId64, t0);
    T_EQ(run(args), 0);
    T_OK(strncmp(out, "p0.5 ", 5) == 0);
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
    T_OK(strstr(err, "http://127.0.0.1:1") != NULL);
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

    if (argc < 2) {
        fprintf(stderr, "usage: %s SONDE_BINARY\n", argv[0]);
        return 2;
    }
    sonde = argv[1];
    t_init(argc - 1, argv + 1);
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
    t_run("clone_delete", test_clone_delete);
    t_run("errors", test_errors);
    th_serve_stop(&srv);
    return t_done();
}
