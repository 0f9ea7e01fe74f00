/*
 * Disk mode as a service of `sonde serve` (docs/recorder.md, "Disk mode"), end to end on the
 * real kernel (root and BPF, as CI runs; it fails rather than skips without them):
 *  - a disk session of 1 s chunks while a child makes N getppid calls over about 3 s: stopped,
 *    its recording lists at least 2 chunks, each chunk's archive is read by babeltrace2 without
 *    error, and together they hold exactly N syscall_exit_getppid of the child's tid (none
 *    twice, none lost); the session's JSON shows its disk {dir, chunks, bytes, lost};
 *  - a cap (max-size) leaves only the newest chunk;
 *  - bad disk specs, a taken recording name and deleting a recording still written get their
 *    409s with a message; a deleted recording is gone (404);
 *  - live and disk at once (a server with --live-listen): one drain entry, both sinks; the
 *    chunks hold exactly the child's calls;
 *  - the CLI: sonde record start --disk, record chunks (the list, then -o DIR), babeltrace2
 *    over DIR/<all chunks>/kernel as one timeline.
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "http_json.h"
#include "t.h"
#include "workload.h"

static const char *sonde;
static char out[1 << 16], err[1 << 16];

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

/* N getppid calls in rounds spread over about ms milliseconds. */
static void child_spread(long n, int rounds, int ms)
{
    for (int i = 0; i < rounds; i++) {
        T_REQUIRE(child_run(n / rounds + (i == 0 ? n % rounds : 0)) == 0);
        struct timespec ts = {0, (long)(ms / rounds) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* A request whose reply must have status want; returns the reply (JSON) or NULL. */
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

/* A 4xx whose CA error message contains what. */
static void bad(int port, const char *method, const char *path, const char *body, int want,
                const char *what)
{
    json_t *j = req(port, method, path, body, want);
    const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    if (!msg || !strstr(msg, what))
        t_note("%s %s %s: message %s, wanted \"%s\"", method, path, body ? body : "",
               msg ? msg : "(none)", what);
    T_OK(msg && strstr(msg, what));
    json_decref(j);
}

/* Fetches chunk of recording name as ustar and unpacks it with tar into dir. */
static void fetch_chunk(int port, const char *name, const char *chunk, const char *dir)
{
    char path[256], tarfile[700], cmd[1600];
    struct th_resp r;

    snprintf(path, sizeof(path), "/ca/recorder/recordings/%s/archive?chunk=%s", name, chunk);
    T_REQUIRE(th_request(port, "GET", path, NULL, NULL, 0, 30000, &r) == 0);
    T_EQ(r.status, 200);
    snprintf(tarfile, sizeof(tarfile), "%s.tar", dir);
    FILE *f = fopen(tarfile, "wb");
    T_REQUIRE(f != NULL);
    T_EQ(fwrite(r.body, 1, r.len, f), r.len);
    fclose(f);
    th_resp_free(&r);
    snprintf(cmd, sizeof(cmd), "mkdir -p %s && tar -xf %s -C %s && test -s %s/kernel/metadata", dir,
             tarfile, dir, dir);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
}

/* The child's getppid exits (ret = this process) babeltrace2 reads in dir/kernel. */
static long count_exits(const char *dir)
{
    char cmd[1400];
    snprintf(cmd, sizeof(cmd), "babeltrace2 %s/kernel > %s/text", dir, dir);
    int rc = t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err));
    if (rc != 0)
        t_note("babeltrace2: rc %d\n%s", rc, err);
    T_EQ(rc, 0);
    snprintf(cmd, sizeof(cmd),
             "grep -c -E 'syscall_exit_getppid: \\{ cpu_id = [0-9]+ \\}, \\{ pid = %d, tid = %d "
             "\\}, \\{ ret = %d \\}$' %s/text",
             (int)child, (int)child, (int)getpid(), dir);
    t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)); /* grep -c: 1 when 0 found */
    return atol(out);
}

static void test_chunks_exact(void)
{
    struct th_serve s;
    const char *extra[] = {"--no-agent", NULL};
    const long n = 3000;
    char want[700];

    T_REQUIRE(child_start() == 0);
    T_REQUIRE(th_serve_start(sonde, extra, NULL, &s) == 0);
    json_t *j = req(s.port, "POST", "/ca/recorder/sessions",
                    "{\"name\":\"disk1\",\"events\":[\"syscalls\"],\"size-per-cpu\":\"16M\","
                    "\"disk\":{\"chunk-seconds\":1,\"chunk-size\":\"64M\",\"max-size\":\"1G\"}}",
                    201);
    snprintf(want, sizeof(want), "%s/recordings/disk1", s.dir);
    T_STR(json_string_value(json_object_get(json_object_get(j, "disk"), "dir")), want);
    T_EQ(json_integer_value(json_object_get(json_object_get(j, "disk"), "chunks")), 0);
    json_decref(j);

    child_spread(n, 6, 3000);
    j = req(s.port, "GET", "/ca/recorder/sessions/disk1", NULL, 200);
    json_t *d = json_object_get(j, "disk");
    T_OK(json_integer_value(json_object_get(d, "chunks")) >= 1);
    T_OK(json_integer_value(json_object_get(d, "bytes")) > 0);
    T_OK(json_is_integer(json_object_get(d, "lost")));
    json_decref(j);
    /* still written: not deleted */
    bad(s.port, "DELETE", "/ca/recorder/recordings/disk1", NULL, 409, "stop it first");
    json_decref(req(s.port, "DELETE", "/ca/recorder/sessions/disk1", NULL, 204));

    /* the recording outlives its session */
    j = req(s.port, "GET", "/ca/recorder/recordings", NULL, 200);
    T_EQ(json_array_size(j), 1);
    T_STR(json_string_value(json_array_get(j, 0)), "disk1");
    json_decref(j);
    j = req(s.port, "GET", "/ca/recorder/recordings/disk1", NULL, 200);
    T_REQUIRE(j != NULL);
    T_OK(json_is_false(json_object_get(j, "recording")));
    json_t *chunks = json_object_get(j, "chunks");
    size_t nch = json_array_size(chunks);
    t_note("%zu chunks, %lld bytes, %lld lost", nch,
           (long long)json_integer_value(json_object_get(j, "bytes")),
           (long long)json_integer_value(json_object_get(j, "lost")));
    T_OK(nch >= 2);
    long total = 0;
    json_int_t prev_last = 0, sum = 0;
    for (size_t i = 0; i < nch; i++) {
        json_t *c = json_array_get(chunks, i);
        const char *cn = json_string_value(json_object_get(c, "name"));
        json_int_t first = json_integer_value(json_object_get(c, "first_ns"));
        json_int_t last = json_integer_value(json_object_get(c, "last_ns"));
        T_REQUIRE(cn != NULL);
        T_OK(first > 0 && first <= last);
        T_OK(first >= prev_last); /* one timeline: chunks follow each other */
        prev_last = last;
        sum += json_integer_value(json_object_get(c, "bytes"));
        char dir[700];
        snprintf(dir, sizeof(dir), "%s/fetched-%s", s.dir, cn);
        fetch_chunk(s.port, "disk1", cn, dir);
        long k = count_exits(dir);
        t_note("%s: %ld of the child's exits", cn, k);
        total += k;
    }
    T_EQ(sum, json_integer_value(json_object_get(j, "bytes")));
    T_EQ(total, n);
    json_decref(j);

    bad(s.port, "GET", "/ca/recorder/recordings/disk1/archive", NULL, 409, "?chunk=");
    json_decref(
        req(s.port, "GET", "/ca/recorder/recordings/disk1/archive?chunk=chunk-999999", NULL, 404));
    /* a recording's name is taken until it is deleted */
    bad(s.port, "POST", "/ca/recorder/sessions",
        "{\"name\":\"disk1\",\"events\":[\"syscalls\"],\"disk\":true}", 409, "exists");
    json_decref(req(s.port, "GET", "/ca/recorder/sessions/disk1", NULL, 404)); /* not left */
    json_decref(req(s.port, "DELETE", "/ca/recorder/recordings/disk1", NULL, 204));
    json_decref(req(s.port, "GET", "/ca/recorder/recordings/disk1", NULL, 404));
    T_EQ(th_serve_stop(&s), 0);
}

static void test_cap(void)
{
    struct th_serve s;
    const char *extra[] = {"--no-agent", NULL};

    T_REQUIRE(child > 0 || child_start() == 0);
    T_REQUIRE(th_serve_start(sonde, extra, NULL, &s) == 0);
    json_decref(req(s.port, "POST", "/ca/recorder/sessions",
                    "{\"name\":\"cap\",\"events\":[\"syscalls\"],\"size-per-cpu\":\"4M\","
                    "\"disk\":{\"chunk-seconds\":1,\"chunk-size\":\"64K\",\"max-size\":\"64K\"}}",
                    201));
    child_spread(30000, 6, 3000); /* about 2 MiB of events: many 64 KiB chunks */
    json_decref(req(s.port, "DELETE", "/ca/recorder/sessions/cap", NULL, 204));
    json_t *j = req(s.port, "GET", "/ca/recorder/recordings/cap", NULL, 200);
    json_t *chunks = json_object_get(j, "chunks");
    T_EQ(json_array_size(chunks), 1); /* each chunk over 64 KiB: only the newest is kept */
    json_t *c = json_array_get(chunks, 0);
    t_note("kept chunk %lld (%lld bytes)",
           (long long)json_integer_value(json_object_get(c, "chunk")),
           (long long)json_integer_value(json_object_get(c, "bytes")));
    T_OK(json_integer_value(json_object_get(c, "chunk")) >= 1);
    char dir[700];
    snprintf(dir, sizeof(dir), "%s/fetched-cap", s.dir);
    fetch_chunk(s.port, "cap", json_string_value(json_object_get(c, "name")), dir);
    count_exits(dir); /* babeltrace2 reads it without error */
    json_decref(j);
    T_EQ(th_serve_stop(&s), 0);
}

static void test_bad_specs(void)
{
    struct th_serve s;
    const char *extra[] = {"--no-agent", NULL};
    const char *p = "/ca/recorder/sessions";

    T_REQUIRE(th_serve_start(sonde, extra, NULL, &s) == 0);
    bad(s.port, "POST", p, "{\"name\":\"b\",\"events\":[\"syscalls\"],\"disk\":\"yes\"}", 409,
        "must be true or an object");
    bad(s.port, "POST", p,
        "{\"name\":\"b\",\"events\":[\"syscalls\"],\"disk\":{\"chunk-size\":\"12Q\"}}", 409,
        "\"chunk-size\" \"12Q\" must be a size from 64K to 1T");
    bad(s.port, "POST", p,
        "{\"name\":\"b\",\"events\":[\"syscalls\"],\"disk\":{\"chunk-size\":\"1K\"}}", 409,
        "must be a size from 64K");
    bad(s.port, "POST", p,
        "{\"name\":\"b\",\"events\":[\"syscalls\"],\"disk\":{\"chunk-size\":64}}", 409,
        "\"chunk-size\" must be a string");
    bad(s.port, "POST", p,
        "{\"name\":\"b\",\"events\":[\"syscalls\"],\"disk\":{\"chunk-seconds\":0}}", 409,
        "\"chunk-seconds\" must be an integer from 1 to 86400");
    bad(s.port, "POST", p,
        "{\"name\":\"b\",\"events\":[\"syscalls\"],\"disk\":{\"max-size\":\"1M\"}}", 409,
        "\"max-size\" must be at least the chunk size");
    bad(s.port, "POST", p, "{\"name\":\"b\",\"events\":[\"syscalls\"],\"disk\":{\"every\":1}}", 409,
        "unknown member \"every\"");
    /* live and disk at once needs the live relay, which this server has not */
    bad(s.port, "POST", p, "{\"name\":\"b\",\"events\":[\"syscalls\"],\"disk\":true,\"live\":true}",
        409, "live reading is off");
    /* all or nothing: neither the session nor its recording is left */
    json_decref(req(s.port, "GET", "/ca/recorder/sessions/b", NULL, 404));
    json_decref(req(s.port, "GET", "/ca/recorder/recordings/b", NULL, 404));
    bad(s.port, "GET", "/ca/recorder/recordings/nope", NULL, 404, "no such recording");
    T_EQ(th_serve_stop(&s), 0);
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

static void test_live_and_disk(void)
{
    struct th_serve s;
    char lport[32];
    int port = free_port();
    T_REQUIRE(port > 0);
    snprintf(lport, sizeof(lport), "127.0.0.1:%d", port);
    const char *extra[] = {"--no-agent", "--live-listen", lport, NULL};

    T_REQUIRE(child > 0 || child_start() == 0);
    T_REQUIRE(th_serve_start(sonde, extra, NULL, &s) == 0);
    json_t *j = req(s.port, "POST", "/ca/recorder/sessions",
                    "{\"name\":\"both\",\"events\":[\"syscalls\"],\"size-per-cpu\":\"16M\","
                    "\"live\":true,\"disk\":{\"chunk-seconds\":1}}",
                    201);
    T_OK(json_object_get(j, "disk") != NULL);
    json_decref(j);
    child_spread(800, 4, 1600);
    json_decref(req(s.port, "DELETE", "/ca/recorder/sessions/both", NULL, 204));
    j = req(s.port, "GET", "/ca/recorder/recordings/both", NULL, 200);
    json_t *chunks = json_object_get(j, "chunks");
    T_OK(json_array_size(chunks) >= 1);
    long total = 0;
    for (size_t i = 0; i < json_array_size(chunks); i++) {
        const char *cn = json_string_value(json_object_get(json_array_get(chunks, i), "name"));
        char dir[700];
        T_REQUIRE(cn != NULL);
        snprintf(dir, sizeof(dir), "%s/both-%s", s.dir, cn);
        fetch_chunk(s.port, "both", cn, dir);
        total += count_exits(dir);
    }
    T_EQ(total, 800);
    json_decref(j);
    T_EQ(th_serve_stop(&s), 0);
}

static void test_cli(void)
{
    struct th_serve s;
    const char *extra[] = {"--no-agent", NULL};
    char url[64], cmd[1600], dir[700];

    T_REQUIRE(child > 0 || child_start() == 0);
    T_REQUIRE(th_serve_start(sonde, extra, NULL, &s) == 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", s.port);
    snprintf(cmd, sizeof(cmd),
             "%s record start cli --events syscalls --disk --chunk-seconds 1 --max-size 1G "
             "--url %s",
             sonde, url);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    T_STR(out, "session cli started\n");
    child_spread(1000, 4, 2000);
    snprintf(cmd, sizeof(cmd), "%s record stop cli --url %s", sonde, url);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    snprintf(cmd, sizeof(cmd), "%s record chunks cli --url %s", sonde, url);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    t_note("%s", out);
    T_OK(strstr(out, "\nchunk-000000 ") != NULL);
    T_OK(strstr(out, "\ncli: ") != NULL);
    snprintf(dir, sizeof(dir), "%s/cli-chunks", s.dir);
    snprintf(cmd, sizeof(cmd), "%s record chunks cli -o %s --url %s", sonde, dir, url);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    T_OK(strstr(out, "/cli-chunks/chunk-000000\n") != NULL);
    /* all the chunks as one timeline: exactly the child's 1000 exits */
    snprintf(cmd, sizeof(cmd),
             "{ babeltrace2 %s/chunk-*/kernel | grep -c -E 'syscall_exit_getppid: \\{ cpu_id = "
             "[0-9]+ \\}, \\{ pid = %d, tid = %d \\}'; }",
             dir, (int)child, (int)child);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    T_EQ(atol(out), 1000);
    /* --chunk-size without --disk is a usage error */
    snprintf(cmd, sizeof(cmd), "%s record start x --events syscalls --chunk-size 1M --url %s",
             sonde, url);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 2);
    snprintf(cmd, sizeof(cmd),
             "%s record start x --events syscalls --disk --chunk-size 1Q --url %s", sonde, url);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 1);
    T_OK(strstr(err, "must be a size") != NULL);
    T_EQ(th_serve_stop(&s), 0);
}

int main(int argc, char **argv)
{
    sonde = th_sonde_main(argc, argv); /* SONDE [CASE-FILTER] */
    t_run("disk chunks of 1 s: together exactly N getppid exits", test_chunks_exact);
    t_run("a cap keeps only the newest chunks", test_cap);
    t_run("bad disk specs: each its 409 with a message", test_bad_specs);
    t_run("live and disk at once: exactly the child's calls on disk", test_live_and_disk);
    t_run("sonde record start --disk, record chunks [-o DIR]", test_cli);
    child_stop();
    return t_done();
}
