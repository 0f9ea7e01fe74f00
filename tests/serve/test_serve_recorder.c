/*
 * The flight recorder as a service of `sonde serve` (docs/recorder.md, "Sessions and
 * snapshots"), end to end on the real kernel (root and BPF, as CI runs; it fails rather than
 * skips without them):
 *  - a syscalls session, a child making N getppid calls, a snapshot through the API, its
 *    archive unpacked by tar: babeltrace2 reads exactly N syscall_exit_getppid of the child's
 *    tid with ret = its parent; a second snapshot after M more calls holds exactly M (none of
 *    the first's events) and its per-CPU index windows start where the first's ended (or
 *    later, by what it counts as overwritten: the whole host is recorded, and it is shared);
 *    packet_seq_num starts at 0 in each stream of the first and continues in the second;
 *  - bad input of every kind (predicates too) gets its 4xx with CA's error shape and a message
 *    that says what;
 *  - the CLI round trip: sonde record start, snapshot -o DIR, list, stop;
 *  - a usdt group through the API (sdt_prog, its path in SN_SDT_PROG): each probe hit is one
 *    event with its argument.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
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

/* ---- helpers ---- */

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

/* Fetches snapshot id's archive and unpacks it with tar into dir. */
static void fetch(int port, const char *id, const char *dir)
{
    char path[256], tarfile[600], cmd[1400], ctype[64] = "";
    struct th_resp r;

    snprintf(path, sizeof(path), "/ca/recorder/snapshots/%s/archive", id);
    T_REQUIRE(th_request(port, "GET", path, NULL, NULL, 0, 30000, &r) == 0);
    T_EQ(r.status, 200);
    T_OK(th_header(&r, "Content-Type", ctype, sizeof(ctype)));
    T_STR(ctype, "application/x-tar");
    snprintf(tarfile, sizeof(tarfile), "%s.tar", dir);
    FILE *f = fopen(tarfile, "wb");
    T_REQUIRE(f != NULL);
    T_EQ(fwrite(r.body, 1, r.len, f), r.len);
    fclose(f);
    th_resp_free(&r);
    /* the listing: the index and the trace, nothing else */
    snprintf(cmd, sizeof(cmd), "tar -tf %s", tarfile);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    int chans = 0, others = 0;
    for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        if (strncmp(l, "kernel/chan_", 12) == 0 && l[12] >= '0' && l[12] <= '9')
            chans++;
        else if (strcmp(l, "kernel/") && strcmp(l, "kernel/metadata") &&
                 strcmp(l, "sonde-snapshot.json"))
            others++;
    T_OK(chans >= 1);
    T_EQ(others, 0);
    snprintf(cmd, sizeof(cmd), "mkdir -p %s && tar -xf %s -C %s", dir, tarfile, dir);
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

/* The packets of stream file path (packet.h: packet_size in bits at 56, packet_seq_num at 64):
 * their number, the first's sequence number in *first, and whether they follow each other
 * without a gap in *consecutive. -1 when the file cannot be read. */
static long packets(const char *path, uint64_t *first, bool *consecutive)
{
    FILE *f = fopen(path, "rb");
    long n = 0;
    uint64_t off = 0, prev = 0;

    *consecutive = true;
    if (!f)
        return -1;
    for (;;) {
        unsigned char h[72];
        uint64_t bits, seq;
        if (fseek(f, (long)off, SEEK_SET) != 0 || fread(h, 1, sizeof(h), f) != sizeof(h))
            break;
        memcpy(&bits, h + 56, 8);
        memcpy(&seq, h + 64, 8);
        if (n == 0)
            *first = seq;
        else if (seq != prev + 1)
            *consecutive = false;
        prev = seq;
        n++;
        if (bits == 0 || bits % 8)
            break;
        off += bits / 8;
    }
    fclose(f);
    return n;
}

static json_t *load_index(const char *dir)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/sonde-snapshot.json", dir);
    return json_load_file(path, 0, NULL);
}

static void test_snapshots_exact(void)
{
    struct th_serve s;
    const char *extra[] = {"--no-agent", NULL};
    const long n = 2000, m = 300;
    char dir1[600], dir2[600];

    T_REQUIRE(child_start() == 0);
    T_REQUIRE(th_serve_start(sonde, extra, NULL, &s) == 0);
    json_t *j = req(s.port, "POST", "/ca/recorder/sessions",
                    "{\"name\":\"rec1\",\"events\":[\"syscalls\"],\"size-per-cpu\":\"16M\"}", 201);
    T_STR(json_string_value(json_object_get(j, "name")), "rec1");
    T_EQ(json_integer_value(json_object_get(j, "size-per-cpu")), 16 << 20);
    json_decref(j);

    T_REQUIRE(child_run(n) == 0);
    j = req(s.port, "POST", "/ca/recorder/sessions/rec1/snapshot", NULL, 201);
    T_REQUIRE(j != NULL);
    char id1[128];
    snprintf(id1, sizeof(id1), "%s", json_string_value(json_object_get(j, "id")));
    T_OK(json_integer_value(json_object_get(j, "events")) >= 2 * n);
    T_EQ(json_integer_value(json_object_get(j, "overwritten")), 0);
    T_EQ(json_integer_value(json_object_get(j, "torn")), 0);
    T_EQ(json_integer_value(json_object_get(j, "dropped")), 0);
    /* under the server's data directory */
    char want[600];
    snprintf(want, sizeof(want), "%s/snapshots/%s", s.dir, id1);
    T_STR(json_string_value(json_object_get(j, "path")), want);
    json_decref(j);

    /* the time the rings cover: some CPU holds events, none more than the session's age */
    j = req(s.port, "GET", "/ca/recorder/sessions/rec1", NULL, 200);
    double cover = 0;
    size_t k;
    json_t *cpu;
    json_array_foreach(json_object_get(j, "cpus"), k, cpu)
    {
        double c = json_real_value(json_object_get(cpu, "coverage_s"));
        T_OK(c >= 0 && c < 60);
        cover = c > cover ? c : cover;
    }
    T_OK(cover > 0);
    json_decref(j);

    T_REQUIRE(child_run(m) == 0);
    j = req(s.port, "POST", "/ca/recorder/sessions/rec1/snapshot", NULL, 201);
    char id2[128];
    snprintf(id2, sizeof(id2), "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    T_OK(strcmp(id1, id2) != 0);

    snprintf(dir1, sizeof(dir1), "%s/rec-snap1", s.dir);
    snprintf(dir2, sizeof(dir2), "%s/rec-snap2", s.dir);
    fetch(s.port, id1, dir1);
    fetch(s.port, id2, dir2);
    T_EQ(count_exits(dir1), n);
    T_EQ(count_exits(dir2), m);

    /* the index: the second's windows begin where the first's ended, CPU by CPU */
    json_t *x1 = load_index(dir1), *x2 = load_index(dir2);
    T_REQUIRE(x1 && x2);
    T_STR(json_string_value(json_object_get(x1, "session")), "rec1");
    json_t *c1 = json_object_get(x1, "cpus"), *c2 = json_object_get(x2, "cpus");
    T_REQUIRE(json_array_size(c1) > 0);
    T_EQ(json_array_size(c1), json_array_size(c2));
    for (size_t i = 0; i < json_array_size(c1); i++) {
        json_t *a = json_array_get(c1, i), *b = json_array_get(c2, i);
        json_int_t to1 = json_integer_value(json_object_get(a, "to"));
        json_int_t from2 = json_integer_value(json_object_get(b, "from"));
        T_OK(json_integer_value(json_object_get(a, "from")) <= to1);
        /* where the first ended, unless the host (all of it is recorded) wrapped the ring in
         * between: then the slots skipped are counted as overwritten */
        T_OK(from2 >= to1);
        T_OK(from2 - to1 <= json_integer_value(json_object_get(b, "overwritten")));
    }
    size_t ncpu = json_array_size(c1);
    json_decref(x1);
    json_decref(x2);

    /* packet_seq_num: from 0 in the session's first snapshot, continued in the second */
    int both = 0;
    for (size_t ci = 0; ci < ncpu; ci++) {
        char p1[700], p2[700];
        uint64_t f1 = 99, f2 = 99;
        bool c1ok, c2ok;
        snprintf(p1, sizeof(p1), "%s/kernel/chan_%zu", dir1, ci);
        snprintf(p2, sizeof(p2), "%s/kernel/chan_%zu", dir2, ci);
        long n1 = packets(p1, &f1, &c1ok), n2 = packets(p2, &f2, &c2ok);
        if (n1 <= 0 || n2 <= 0)
            continue;
        both++;
        T_EQU(f1, 0);
        T_OK(c1ok);
        T_OK(c2ok);
        T_EQU(f2, (uint64_t)n1);
    }
    T_OK(both >= 1);

    /* listed, and the session counts its snapshots */
    j = req(s.port, "GET", "/ca/recorder", NULL, 200);
    T_EQ(json_array_size(json_object_get(j, "snapshots")), 2);
    T_EQ(json_array_size(json_object_get(j, "sessions")), 1);
    T_EQ(json_integer_value(
             json_object_get(json_array_get(json_object_get(j, "sessions"), 0), "snapshots")),
         2);
    json_decref(j);

    json_decref(req(s.port, "DELETE", "/ca/recorder/sessions/rec1", NULL, 204));
    bad(s.port, "GET", "/ca/recorder/sessions/rec1", NULL, 404, "no such session");
    /* the snapshots outlive their session; deleting one removes it */
    char path[256];
    snprintf(path, sizeof(path), "/ca/recorder/snapshots/%s", id1);
    json_decref(req(s.port, "DELETE", path, NULL, 204));
    j = req(s.port, "GET", "/ca/recorder/snapshots", NULL, 200);
    T_EQ(json_array_size(j), 1);
    T_STR(json_string_value(json_array_get(j, 0)), id2);
    json_decref(j);
    T_EQ(th_serve_stop(&s), 0);
    child_stop();
}

static void test_bad_input(void)
{
    struct th_serve s;
    const char *extra[] = {"--no-agent", NULL};
    const char *P = "/ca/recorder/sessions";

    T_REQUIRE(th_serve_start(sonde, extra, NULL, &s) == 0);
    /* the body */
    bad(s.port, "POST", P, "{\"name\":", 409, "must be a JSON object");
    bad(s.port, "POST", P, "[1]", 409, "must be a JSON object");
    bad(s.port, "POST", P, "{\"name\":\"a\",\"events\":[\"sched\"],\"bogus\":{}}", 409,
        "unknown member \"bogus\"");
    /* predicates: an object the recorder's fields compile */
    bad(s.port, "POST", P, "{\"name\":\"a\",\"events\":[\"sched\"],\"predicate\":\"x\"}", 409,
        "\"predicate\" must be a predicate object");
    bad(s.port, "POST", P,
        "{\"name\":\"a\",\"events\":[\"sched\"],\"predicate\":{\"gt\":[\"latency\",5]}}", 409,
        "\"predicate\": ");
    bad(s.port, "POST", P,
        "{\"name\":\"a\",\"events\":[\"sched\"],\"predicate\":{\"eq\":[\"execname\"]}}", 409,
        "\"predicate\": ");
    /* names */
    bad(s.port, "POST", P, "{\"events\":[\"sched\"]}", 409, "\"name\" must be");
    bad(s.port, "POST", P, "{\"name\":\"\",\"events\":[\"sched\"]}", 409, "\"name\" must be");
    bad(s.port, "POST", P, "{\"name\":\"../x\",\"events\":[\"sched\"]}", 409, "\"name\" must be");
    bad(s.port, "POST", P, "{\"name\":\".x\",\"events\":[\"sched\"]}", 409, "\"name\" must be");
    bad(s.port, "POST", P, "{\"name\":7,\"events\":[\"sched\"]}", 409, "\"name\" must be");
    char body[256];
    snprintf(body, sizeof(body), "{\"name\":\"%064d\",\"events\":[\"sched\"]}", 0);
    bad(s.port, "POST", P, body, 409, "\"name\" must be");
    /* events */
    bad(s.port, "POST", P, "{\"name\":\"a\"}", 409, "\"events\" must be a non-empty list");
    bad(s.port, "POST", P, "{\"name\":\"a\",\"events\":[]}", 409, "non-empty list");
    bad(s.port, "POST", P, "{\"name\":\"a\",\"events\":\"sched\"}", 409, "non-empty list");
    bad(s.port, "POST", P, "{\"name\":\"a\",\"events\":[3]}", 409, "list of strings");
    bad(s.port, "POST", P, "{\"name\":\"a\",\"events\":[\"bogus\"]}", 409,
        "unknown event group \"bogus\"");
    /* usdt: an absolute path, a provider and a probe the file has */
    const char *usdt[] = {"usdt",           "usdt:",          "usdt:bin/x:p:q",   "usdt:/bin/x:p",
                          "usdt:/bin/x::q", "usdt:/bin/x:p:", "usdt:/bin/x:p-1:q"};
    for (int i = 0; i < 7; i++) {
        snprintf(body, sizeof(body), "{\"name\":\"a\",\"events\":[\"sched\",\"%s\"]}", usdt[i]);
        bad(s.port, "POST", P, body, 409, "must be usdt:PATH:PROVIDER:PROBE");
    }
    bad(s.port, "POST", P, "{\"name\":\"a\",\"events\":[\"usdt:/bin/true:nope:nope\"]}", 409,
        "usdt probe nope:nope in /bin/true: no such probe in the file");
    bad(s.port, "POST", P, "{\"name\":\"a\",\"events\":[\"usdt:/nonexistent/x:p:q\"]}", 409,
        "usdt probe p:q in /nonexistent/x: ");
    json_t *rec = req(s.port, "GET", "/ca/recorder", NULL, 200); /* nothing left behind */
    T_EQ(json_array_size(json_object_get(rec, "sessions")), 0);
    json_decref(rec);
    /* sizes */
    const char *sizes[] = {"3M", "32K", "2G", "abc", "", "4Q", "-4M", "0"};
    for (int i = 0; i < 8; i++) {
        snprintf(body, sizeof(body),
                 "{\"name\":\"a\",\"events\":[\"sched\"],\"size-per-cpu\":\"%s\"}", sizes[i]);
        bad(s.port, "POST", P, body, 409, "size-per-cpu");
    }
    bad(s.port, "POST", P, "{\"name\":\"a\",\"events\":[\"sched\"],\"size-per-cpu\":65536}", 409,
        "must be a string");
    /* duplicates, and the ninth session */
    for (int i = 0; i < 8; i++) {
        snprintf(body, sizeof(body),
                 "{\"name\":\"s%d\",\"events\":[\"sched\"],\"size-per-cpu\":\"64K\"}", i);
        json_decref(req(s.port, "POST", P, body, 201));
    }
    bad(s.port, "POST", P, "{\"name\":\"s3\",\"events\":[\"syscalls\"]}", 409,
        "session \"s3\" exists");
    bad(s.port, "POST", P, "{\"name\":\"s8\",\"events\":[\"sched\"]}", 409, "at most 8 sessions");
    json_t *j = req(s.port, "GET", "/ca/recorder", NULL, 200);
    T_EQ(json_array_size(json_object_get(j, "sessions")), 8);
    json_decref(j);
    /* what does not exist */
    bad(s.port, "GET", "/ca/recorder/sessions/nope", NULL, 404, "no such session \"nope\"");
    bad(s.port, "DELETE", "/ca/recorder/sessions/nope", NULL, 404, "no such session");
    bad(s.port, "POST", "/ca/recorder/sessions/nope/snapshot", NULL, 404, "no such session");
    bad(s.port, "GET", "/ca/recorder/snapshots/nope/archive", NULL, 404, "no such snapshot");
    bad(s.port, "GET", "/ca/recorder/snapshots/%2E%2E/archive", NULL, 404, "no such snapshot");
    bad(s.port, "GET", "/ca/recorder/snapshots/.s0.part/archive", NULL, 404, "no such snapshot");
    bad(s.port, "DELETE", "/ca/recorder/snapshots/%2E%2E", NULL, 404, "no such snapshot");
    /* without tenants configured there is no tenant scope (tenants: test_serve_recorder_tenant) */
    int status;
    json_decref(th_jreq(s.port, "GET", "/ca/customers/t1/recorder", NULL, &status));
    T_EQ(status, 404);
    T_EQ(th_serve_stop(&s), 0);
}

static void test_cli_round_trip(void)
{
    struct th_serve s;
    const char *extra[] = {"--no-agent", NULL};
    char cmd[2048], url[64], dir[600];

    T_REQUIRE(th_serve_start(sonde, extra, NULL, &s) == 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", s.port);
    snprintf(dir, sizeof(dir), "%s/cli-snap", s.dir);
    snprintf(cmd, sizeof(cmd),
             "%s record start cli1 --events syscalls,sched --size-per-cpu 1M "
             "--url %s",
             sonde, url);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    T_STR(out, "session cli1 started\n");
    snprintf(cmd, sizeof(cmd), "%s record snapshot cli1 -o %s --url %s", sonde, dir, url);
    int rc = t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err));
    t_note("snapshot: %s%s", out, err);
    T_EQ(rc, 0);
    T_OK(strstr(out, "snapshot cli1-") == out);
    snprintf(cmd, sizeof(cmd), "{ babeltrace2 %s/kernel | grep -c -E 'sched_switch|syscall_'; }",
             dir);
    rc = t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err));
    t_note("babeltrace2: %s%s", out, err);
    T_EQ(rc, 0);
    T_OK(atol(out) > 0);
    snprintf(cmd, sizeof(cmd), "test -s %s/sonde-snapshot.json", dir);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    /* the directory exists now: a second snapshot into it is refused before asking */
    snprintf(cmd, sizeof(cmd), "%s record snapshot cli1 -o %s --url %s", sonde, dir, url);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 2);
    T_OK(strstr(err, "exists") != NULL);
    snprintf(cmd, sizeof(cmd), "%s record list --url %s", sonde, url);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    T_OK(strstr(out, "\ncli1 ") != NULL);
    T_OK(strstr(out, "syscalls,sched") != NULL);
    T_OK(strstr(out, "  cli1-") != NULL);
    snprintf(cmd, sizeof(cmd), "%s record start x --events tcpx --url %s", sonde, url);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 1);
    T_OK(strstr(err, "unknown event group \"tcpx\"") != NULL);
    snprintf(cmd, sizeof(cmd), "%s record stop cli1 --url %s", sonde, url);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    T_STR(out, "session cli1 stopped\n");
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 1);
    T_OK(strstr(err, "no such session \"cli1\"") != NULL);
    T_EQ(th_serve_stop(&s), 0);
}

/* A usdt group through the API: sdt_prog's work__start(i) for i < N, each an event
 * usdt_sonde_test_work__start { arg0 = i } in the snapshot, exactly once. */
static void test_usdt(void)
{
    struct th_serve s;
    const char *extra[] = {"--no-agent", NULL}, *prog = getenv("SN_SDT_PROG");
    const int n = 30;
    char body[1200], cmd[1400], dir[600];

    T_REQUIRE(prog && prog[0] == '/');
    T_REQUIRE(th_serve_start(sonde, extra, NULL, &s) == 0);
    snprintf(body, sizeof(body),
             "{\"name\":\"u1\",\"events\":[\"usdt:%s:sonde_test:work__start\"],"
             "\"size-per-cpu\":\"1M\"}",
             prog);
    json_t *j = req(s.port, "POST", "/ca/recorder/sessions", body, 201);
    char want[700];
    snprintf(want, sizeof(want), "usdt:%s:sonde_test:work__start", prog);
    T_STR(json_string_value(json_array_get(json_object_get(j, "events"), 0)), want);
    json_decref(j);

    snprintf(cmd, sizeof(cmd), "%s %d 100", prog, n);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    j = req(s.port, "POST", "/ca/recorder/sessions/u1/snapshot", NULL, 201);
    char id[128];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(j, "id")) ?: "");
    json_decref(j);
    snprintf(dir, sizeof(dir), "%s/usdt-snap", s.dir);
    fetch(s.port, id, dir);
    snprintf(cmd, sizeof(cmd),
             "{ babeltrace2 %s/kernel | sed -n 's/.*usdt_sonde_test_work__start: .*{ arg0 = "
             "\\([0-9]*\\) }$/\\1/p' | sort -n | uniq | tr '\\n' ' '; }",
             dir);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    char expect[512] = "";
    for (int i = 0; i < n; i++)
        snprintf(expect + strlen(expect), sizeof(expect) - strlen(expect), "%d ", i);
    T_STR(out, expect);
    snprintf(cmd, sizeof(cmd), "{ babeltrace2 %s/kernel | grep -c usdt_sonde_test_work__start; }",
             dir);
    t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err));
    T_EQ(atol(out), n);
    json_decref(req(s.port, "DELETE", "/ca/recorder/sessions/u1", NULL, 204));
    T_EQ(th_serve_stop(&s), 0);
}

int main(int argc, char **argv)
{
    sonde = th_sonde_main(argc, argv); /* SONDE [CASE-FILTER] */
    t_run("snapshots through the API: exactly N getppid exits, then only the next M",
          test_snapshots_exact);
    t_run("bad input: each its 4xx with a message", test_bad_input);
    t_run("sonde record start, snapshot -o, list, stop", test_cli_round_trip);
    t_run("a usdt probe through the API: each hit once, with its argument", test_usdt);
    child_stop();
    return t_done();
}
