/*
 * From a heatmap cell to the recorder's raw events (docs/recorder.md, "From a heatmap cell to
 * events"), end to end on the real kernel (root and BPF, as CI runs): a real `sonde serve`, an
 * instrumentation of a child's system call latency by execname, a syscalls recording session;
 * the child (a unique comm) makes 50 getppid calls before the session starts, then, in one
 * second S1 of the session, a 20 ms nanosleep and 30 getppid calls:
 *  - the details of the cell [S1, S1+1) x [20 ms, 30 ms) list the nanosleep: the child's tid,
 *    pid and comm, "nanosleep", its latency within the band, its exit in S1 and its entry one
 *    latency before; with key=COMM it is the only one (events_total 1, as the cell's count);
 *  - the cell [S1, S1+1) x [0, 10 ms) with key=COMM counts exactly what the heatmap counts
 *    there for the child and lists 20 of them in time order, getppid ones among them;
 *  - the cell of the second before the session: "recording": "not-covering", no events;
 *  - after the session stops: "recording": "none", no events;
 *  - a tenant (acme, its child in its own cgroup) sees only its own sessions' events: with only
 *    the operator's session running its cell says "none"; once it runs its own, its cell lists
 *    its child's nanosleep from its session, though the operator's reaches further back.
 *  - the session's manual snapshot after the reads (its archive, read by babeltrace2) holds
 *    exactly the nanosleep's entry and exit and the 30 getppid exits (the reads took nothing).
 */
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "agent/cgroup.h"
#include "http.h"
#include "http_json.h"
#include "t.h"
#include "workload.h"

static const char *sonde;
static char out[1 << 16], err[1 << 16];

/* ---- a child that makes fast calls or one 20 ms nanosleep on command ---- */
static pid_t child = -1;

static int child_start(void)
{
    return (child = t_cmd_child_start(20)) > 0 ? 0 : -1;
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

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Sleeps until 50 ms into the next second; returns that second. */
static int64_t next_second(void)
{
    int64_t t = now_ns(), s = t / 1000000000LL + 1;
    int64_t d = s * 1000000000LL + 50000000LL - t;
    struct timespec ts = {d / 1000000000LL, d % 1000000000LL};
    nanosleep(&ts, NULL);
    return s;
}

/* ---- helpers ---- */

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

static long long jint(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* The details of the cell at row y of second s (10 rows of 10 ms from 0 to 100 ms); extra is
 * more of the query ("&key=..."). */
static json_t *details(int port, int id, long long s, int y, const char *extra)
{
    char path[512];
    snprintf(path, sizeof(path),
             "/ca/instrumentations/%d/value/heatmap/details?start_time=%lld&duration=1&width=10&"
             "height=10&nbuckets=10&ymin=0&ymax=100000000&x=0&y=%d%s",
             id, s, y, extra ? extra : "");
    return req(port, "GET", path, NULL, 200);
}

/* The details of that cell once the heatmap counts something there (at most 15 s). */
static json_t *details_counted(int port, int id, long long s, int y, const char *extra)
{
    for (int i = 0; i < 150; i++) {
        json_t *o = details(port, id, s, y, extra);
        if (jint(o, "total") > 0)
            return o;
        json_decref(o);
        usleep(100000);
    }
    return NULL;
}

/* Snapshot id's archive, unpacked into dir (tar). */
static void fetch(int port, const char *id, const char *dir)
{
    char path[256], tarfile[700], cmd[2200];
    struct th_resp r;

    snprintf(path, sizeof(path), "/ca/recorder/snapshots/%s/archive", id);
    T_REQUIRE(th_request(port, "GET", path, NULL, NULL, 0, 30000, &r) == 0);
    T_EQ(r.status, 200);
    snprintf(tarfile, sizeof(tarfile), "%s.tar", dir);
    FILE *f = fopen(tarfile, "wb");
    T_REQUIRE(f != NULL);
    T_EQ(fwrite(r.body, 1, r.len, f), r.len);
    fclose(f);
    th_resp_free(&r);
    snprintf(cmd, sizeof(cmd), "mkdir -p %s && tar -xf %s -C %s", dir, tarfile, dir);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
}

/* Lines of babeltrace2's text of dir/kernel (written once into dir/text) for event of the
 * child's tid. */
static long child_lines(const char *dir, const char *event)
{
    char cmd[2400];
    snprintf(cmd, sizeof(cmd), "test -s %s/text || babeltrace2 %s/kernel > %s/text", dir, dir, dir);
    int rc = t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err));
    if (rc != 0)
        t_note("babeltrace2: rc %d\n%s", rc, err);
    T_EQ(rc, 0);
    snprintf(cmd, sizeof(cmd),
             "grep -c -E '%s: \\{ cpu_id = [0-9]+ \\}, \\{ pid = %d, tid = %d \\}' %s/text", event,
             (int)child, (int)child, dir);
    t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)); /* grep -c: 1 when 0 found */
    return atol(out);
}

static void dump(const char *what, const json_t *o)
{
    char *t = json_dumps(o, JSON_COMPACT);
    t_note("%s: %s", what, t ? t : "?");
    free(t);
}

static void test_cell_events(void)
{
    struct th_serve s;
    char comm[16], body[1024], key[64];

    T_REQUIRE(t_unique_comm() == 0);
    T_REQUIRE(prctl(PR_GET_NAME, comm) == 0);
    T_REQUIRE(th_serve_start(sonde, NULL, NULL, &s) == 0);
    T_REQUIRE(child_start() == 0);
    snprintf(key, sizeof(key), "&key=%s", comm);

    snprintf(body, sizeof(body),
             "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"eq\":[\"pid\","
             "\"%d\"]},\"decomposition\":[\"execname\",\"latency\"]}",
             (int)child);
    json_t *j = req(s.port, "POST", "/ca/instrumentations", body, 201);
    const char *uri = jstr(j, "uri");
    int id = strrchr(uri, '/') ? atoi(strrchr(uri, '/') + 1) : -1;
    json_decref(j);
    T_REQUIRE(id > 0);
    /* S0: 50 getppid before any session, in one second, counted (the agent attaches the
     * instrumentation's programs within a few seconds: tried again until it has) */
    int64_t s0 = 0;
    for (int try = 0; try < 6 && !s0; try++) {
        int64_t t = next_second();
        T_REQUIRE(child_run(50) == 0);
        if (now_ns() / 1000000000LL != t)
            continue;
        for (int i = 0; i < 40 && !s0; i++) {
            json_t *d = details(s.port, id, t, 9, NULL);
            if (jint(d, "total") >= 50)
                s0 = t;
            json_decref(d);
            usleep(100000);
        }
    }
    T_REQUIRE(s0 > 0);

    /* the session, then S1: one 20 ms nanosleep and 30 getppid, all in that second */
    next_second();
    json_decref(req(s.port, "POST", "/ca/recorder/sessions",
                    "{\"name\":\"rec1\",\"events\":[\"syscalls\"],\"size-per-cpu\":\"64M\"}", 201));
    next_second();
    /* (tried again when the second is not counted within 4 s: a loaded machine can make the
     * agent count a second late; rounds says how many the session saw) */
    int64_t s1 = 0;
    int rounds = 0;
    json_t *o = NULL;
    while (!o && rounds < 6) {
        s1 = next_second();
        T_REQUIRE(child_run(T_CMD_SLOW) == 0);
        T_REQUIRE(child_run(30) == 0);
        rounds++;
        if (now_ns() / 1000000000LL != s1)
            continue;
        for (int i = 0; i < 40 && !o; i++) { /* the 20 ms cell of S1 */
            json_t *d = details(s.port, id, s1, 7, NULL);
            if (jint(d, "total") > 0)
                o = d;
            else
                json_decref(d);
            usleep(100000);
        }
    }
    T_REQUIRE(o != NULL);
    dump("slow cell", o);
    T_EQ(jint(o, "bucket_ymin"), 20000000);
    T_EQ(jint(o, "bucket_ymax"), 30000000);
    T_EQ(jint(o, "total"), 1);
    json_t *rec = json_object_get(o, "recording");
    T_STR(jstr(rec, "state"), "covered");
    T_STR(jstr(rec, "session"), "rec1");
    json_t *ev = json_object_get(o, "events"), *e;
    size_t i;
    int found = 0;
    T_OK(json_array_size(ev) >= 1);
    T_EQ(jint(o, "events_total"), (long long)json_array_size(ev));
    json_array_foreach(ev, i, e)
    {
        T_OK(jint(e, "latency_ns") >= 20000000 && jint(e, "latency_ns") < 30000000);
        T_OK(jint(e, "exit_ns") >= s1 * 1000000000LL &&
             jint(e, "exit_ns") < (s1 + 1) * 1000000000LL);
        T_EQ(jint(e, "exit_ns") - jint(e, "entry_ns"), jint(e, "latency_ns"));
        if (jint(e, "tid") == child && strcmp(jstr(e, "syscall"), "nanosleep") == 0) {
            found++;
            T_EQ(jint(e, "pid"), child);
            T_STR(jstr(e, "comm"), comm);
            T_STR(jstr(e, "key"), comm);
            T_STR(jstr(e, "session"), "rec1");
            T_EQ(jint(e, "ret"), 0);
            T_EQ(jint(e, "nr"), SYS_nanosleep);
            T_EQ(json_array_size(json_object_get(e, "args")), 6);
        }
    }
    T_EQ(found, 1);
    json_decref(o);

    /* the same cell, the child's key only: the nanosleep alone */
    o = details(s.port, id, s1, 7, key);
    dump("slow cell, key", o);
    ev = json_object_get(o, "events");
    T_EQ(jint(o, "events_total"), 1);
    T_EQU(json_array_size(ev), 1);
    e = json_array_get(ev, 0);
    T_EQ(jint(e, "tid"), child);
    T_STR(jstr(e, "syscall"), "nanosleep");
    T_STR(jstr(e, "comm"), comm);
    json_decref(o);

    /* the read took nothing from the session's consumer: its snapshot holds the nanosleep */
    j = req(s.port, "POST", "/ca/recorder/sessions/rec1/snapshot", "{}", 201);
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/snap", s.dir);
    fetch(s.port, jstr(j, "id"), dir);
    json_decref(j);
    T_EQ(child_lines(dir, "syscall_entry_nanosleep"), rounds);
    T_EQ(child_lines(dir, "syscall_exit_nanosleep"), rounds);
    T_EQ(child_lines(dir, "syscall_exit_getppid"), 30 * rounds);

    /* the fast cell of S1, the child's key: what the heatmap counts, 20 listed in time order */
    o = details_counted(s.port, id, s1, 9, key);
    T_REQUIRE(o != NULL);
    dump("fast cell, key", o);
    T_EQ(jint(o, "bucket_ymin"), 0);
    T_EQ(jint(o, "bucket_ymax"), 10000000);
    long long counted = jint(json_object_get(o, "present"), comm);
    T_OK(counted >= 31);
    T_EQ(jint(o, "events_total"), counted);
    ev = json_object_get(o, "events");
    T_EQU(json_array_size(ev), 20);
    int getppid = 0;
    long long prev = 0;
    json_array_foreach(ev, i, e)
    {
        T_EQ(jint(e, "tid"), child);
        T_STR(jstr(e, "comm"), comm);
        T_OK(jint(e, "latency_ns") < 10000000);
        T_OK(jint(e, "exit_ns") >= prev);
        prev = jint(e, "exit_ns");
        if (strcmp(jstr(e, "syscall"), "getppid") == 0) {
            getppid++;
            T_EQ(jint(e, "ret"), getpid());
        }
    }
    T_OK(getppid >= 17);
    json_decref(o);

    /* a key of nobody: nothing */
    o = details(s.port, id, s1, 9, "&key=nobody-here");
    T_EQ(jint(o, "events_total"), 0);
    T_EQU(json_array_size(json_object_get(o, "events")), 0);
    json_decref(o);

    /* S0, before the session: the rings do not hold it */
    o = details_counted(s.port, id, s0, 9, NULL);
    T_REQUIRE(o != NULL);
    dump("before", o);
    T_OK(jint(o, "total") >= 50);
    rec = json_object_get(o, "recording");
    T_STR(jstr(rec, "state"), "not-covering");
    T_STR(jstr(rec, "session"), "rec1");
    T_OK(strstr(jstr(rec, "reason"), "do not hold that time") != NULL);
    T_OK(json_object_get(o, "events") == NULL);
    json_decref(o);

    /* no session: none */
    json_decref(req(s.port, "DELETE", "/ca/recorder/sessions/rec1", NULL, 204));
    o = details(s.port, id, s1, 7, NULL);
    rec = json_object_get(o, "recording");
    T_STR(jstr(rec, "state"), "none");
    T_OK(json_object_get(o, "events") == NULL);
    json_decref(o);

    child_stop();
    T_EQ(th_serve_stop(&s), 0);
}

/* ---- a tenant ---- */

static bool cg_path(const char *rel, char *p, size_t len)
{
    const char *root = sn_cgroup_root();
    if (!root)
        return false;
    snprintf(p, len, "%s%s", root, rel);
    return true;
}

static bool cg_move(pid_t pid, const char *rel)
{
    char p[1024], text[32];
    int n = snprintf(text, sizeof(text), "%d", (int)pid), fd;
    if (!cg_path(rel, p, sizeof(p)))
        return false;
    strncat(p, "/cgroup.procs", sizeof(p) - strlen(p) - 1);
    fd = open(p, O_WRONLY | O_CLOEXEC);
    bool ok = fd >= 0 && write(fd, text, (size_t)n) == n;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* A request with token's bearer whose reply must have status want: its JSON (or NULL). */
static json_t *areq(int port, const char *method, const char *path, const char *token,
                    const char *body, int want)
{
    char auth[128];
    const char *h[] = {auth, "Content-Type: application/json", NULL};
    struct th_resp r;
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    if (th_request(port, method, path, h, body, body ? strlen(body) : 0, 30000, &r) != 0) {
        T_OK(!"request failed");
        return NULL;
    }
    if (r.status != want)
        t_note("%s %s: %d %s", method, path, r.status, r.body ? r.body : "");
    T_EQ(r.status, want);
    json_t *j = r.body && r.len ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    th_resp_free(&r);
    return j;
}

/* acme's details of the 20 ms cell of second sec, once it counts the nanosleep (tries tenths
 * of a second). */
static json_t *acme_slow_cell(int port, int id, long long sec, const char *token, int tries)
{
    char path[512];
    snprintf(path, sizeof(path),
             "/ca/customers/acme/instrumentations/%d/value/heatmap/details?start_time=%lld&"
             "duration=1&width=10&height=10&nbuckets=10&ymin=0&ymax=100000000&x=0&y=7",
             id, sec);
    for (int i = 0; i < tries; i++) {
        json_t *o = areq(port, "GET", path, token, NULL, 200);
        if (jint(o, "total") > 0)
            return o;
        if (i == tries - 1)
            dump("acme's cell never counts", o);
        json_decref(o);
        usleep(100000);
    }
    return NULL;
}

/* A 20 ms nanosleep of the child at the start of a second, and acme's details of its cell once
 * they count it; tried again (6 times) when they do not within 4 s: the agent attaches its
 * programs a few seconds after a create, and a loaded machine can make it count a second late. */
static json_t *acme_slow(int port, int id, const char *token)
{
    json_t *o = NULL;
    for (int try = 0; try < 6 && !o; try++) {
        int64_t sec = next_second();
        if (child_run(T_CMD_SLOW) != 0)
            return NULL;
        o = acme_slow_cell(port, id, sec, token, 40);
    }
    return o;
}

static void test_tenant_sees_its_own(void)
{
    char ten[64], cg[1024], file[512], text[600], body[512];
    const char *at = "acme-token-1", *op = "operator-token";
    struct th_serve s;

    snprintf(ten, sizeof(ten), "/snt-cell-%d", (int)getpid());
    T_REQUIRE(cg_path(ten, cg, sizeof(cg)) && (mkdir(cg, 0755) == 0 || errno == EEXIST));
    snprintf(file, sizeof(file), "%s/celltenants-%d.json", t_outdir(), (int)getpid());
    snprintf(text, sizeof(text),
             "{\"operator\":{\"token\":\"%s\"},\"tenants\":{\"acme\":{\"token\":\"%s\","
             "\"cgroups\":[\"%s\"]}}}",
             op, at, ten);
    FILE *f = fopen(file, "w");
    T_REQUIRE(f != NULL);
    fputs(text, f);
    fclose(f);
    const char *extra[] = {"--tenants", file, NULL};
    T_REQUIRE(th_serve_start(sonde, extra, NULL, &s) == 0);
    T_REQUIRE(child_start() == 0);
    T_REQUIRE(cg_move(child, ten));

    json_t *j = areq(s.port, "POST", "/ca/customers/acme/instrumentations", at,
                     "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":["
                     "\"execname\",\"latency\"]}",
                     201);
    int id = atoi(jstr(j, "id"));
    json_decref(j);
    T_REQUIRE(id > 0);
    json_decref(areq(s.port, "POST", "/ca/recorder/sessions", op,
                     "{\"name\":\"oprec\",\"events\":[\"syscalls\"],\"size-per-cpu\":\"64M\"}",
                     201));
    json_t *o = acme_slow(s.port, id, at);
    T_REQUIRE(o != NULL);
    dump("acme, the operator's session only", o);
    T_STR(jstr(json_object_get(o, "recording"), "state"), "none");
    T_OK(json_object_get(o, "events") == NULL);
    json_decref(o);

    snprintf(body, sizeof(body),
             "{\"name\":\"arec\",\"events\":[\"syscalls\"],\"size-per-cpu\":\"64M\"}");
    json_decref(areq(s.port, "POST", "/ca/customers/acme/recorder/sessions", at, body, 201));
    next_second();
    o = acme_slow(s.port, id, at);
    T_REQUIRE(o != NULL);
    dump("acme, its own session", o);
    json_t *rec = json_object_get(o, "recording");
    T_STR(jstr(rec, "state"), "covered");
    T_STR(jstr(rec, "session"), "arec");
    T_EQ(jint(o, "events_total"), 1);
    json_t *e = json_array_get(json_object_get(o, "events"), 0);
    T_EQ(jint(e, "tid"), child);
    T_STR(jstr(e, "syscall"), "nanosleep");
    T_STR(jstr(e, "session"), "arec");
    json_decref(o);

    child_stop();
    T_EQ(th_serve_stop(&s), 0);
    for (int i = 0; i < 200 && rmdir(cg) != 0 && errno == EBUSY; i++)
        usleep(5000);
}

int main(int argc, char **argv)
{
    sonde = th_sonde_main(argc, argv); /* SONDE [CASE-FILTER] */
    t_run("a heatmap cell of system call latency lists the recorder's raw events",
          test_cell_events);
    t_run("a tenant sees only its own sessions' events", test_tenant_sees_its_own);
    child_stop();
    return t_done();
}
