/*
 * Flight-recorder triggers in `sonde serve` (docs/recorder.md, "Triggers"), end to end on the
 * real kernel (root and BPF, as CI runs; it fails rather than skips without them):
 *  - an instrumentation of a child's system call latency by execname, a syscalls recording
 *    session, a trigger "p99 > 10ms for 1s" on the child's key; the child makes 20 fast
 *    getppid calls, then one 30 ms nanosleep: the trigger fires (within a bounded wait), its
 *    fired entry has the condition, the key and a value of at least 30 ms, and its snapshot
 *    (the archive through the API, read by babeltrace2) holds that nanosleep's entry and exit
 *    of the child's tid, and the 20 getppid before it; a band trigger "count in [20ms, 1s) > 0"
 *    on any key fires with value 1 on the child's key;
 *  - the rate limit: a second slow nanosleep within min-interval fires nothing and is counted
 *    as suppressed; the manual snapshot's consumer lost nothing to the trigger's;
 *  - a session stopped before a trigger's snapshot is due: its entry is "failed", saying so;
 *  - bad specs: each its 409 (or 404) and a message that says what;
 *  - the CLI: sonde record trigger list, add, rm.
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

#include "http.h"
#include "http_json.h"
#include "t.h"
#include "workload.h"

static const char *sonde;
static char out[1 << 16], err[1 << 16];

/* ---- a child that makes fast calls or one slow nanosleep on command ---- */
static pid_t child = -1;

static int child_start(void)
{
    return (child = t_cmd_child_start(30)) > 0 ? 0 : -1;
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

static int create_instn(int port, const char *body)
{
    json_t *j = req(port, "POST", "/ca/instrumentations", body, 201);
    const char *uri = json_string_value(json_object_get(j, "uri"));
    const char *slash = uri ? strrchr(uri, '/') : NULL;
    int id = slash ? atoi(slash + 1) : -1;
    json_decref(j);
    return id;
}

static void fetch(int port, const char *id, const char *dir)
{
    char path[256], tarfile[600], cmd[1400];
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

/* Lines of babeltrace2's text of dir/kernel matching the extended regex re. */
static long count_lines(const char *dir, const char *re)
{
    char cmd[2000];
    snprintf(cmd, sizeof(cmd), "test -s %s/text || babeltrace2 %s/kernel > %s/text", dir, dir, dir);
    int rc = t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err));
    if (rc != 0)
        t_note("babeltrace2: rc %d\n%s", rc, err);
    T_EQ(rc, 0);
    snprintf(cmd, sizeof(cmd), "grep -c -E '%s' %s/text", re, dir);
    t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)); /* grep -c: 1 when 0 found */
    return atol(out);
}

static long child_lines(const char *dir, const char *event)
{
    char re[256];
    snprintf(re, sizeof(re), "%s: \\{ cpu_id = [0-9]+ \\}, \\{ pid = %d, tid = %d \\}", event,
             (int)child, (int)child);
    return count_lines(dir, re);
}

/* Trigger name's object, polled until pred holds for it (at most 30 s): NULL when it never
 * does. */
static json_t *wait_trigger(int port, const char *name, bool (*pred)(json_t *))
{
    char path[128];
    snprintf(path, sizeof(path), "/ca/recorder/triggers/%s", name);
    for (int i = 0; i < 300; i++) {
        int status;
        json_t *j = th_jreq(port, "GET", path, NULL, &status);
        if (status == 200 && pred(j))
            return j;
        json_decref(j);
        usleep(100000);
    }
    return NULL;
}

static bool snapshot_taken(json_t *t)
{
    json_t *f = json_array_get(json_object_get(t, "fired"), 0);
    return f && strcmp(json_string_value(json_object_get(f, "state")), "pending") != 0;
}

static bool fired_once(json_t *t)
{
    return json_integer_value(json_object_get(t, "fires")) == 1;
}

static bool one_suppressed(json_t *t)
{
    return json_integer_value(json_object_get(t, "suppressed")) >= 1;
}

static void test_trigger_fires(void)
{
    struct th_serve s;
    char comm[16], body[1024], dir[600], manual[600], path[256], url[64], cmd[2048];

    T_REQUIRE(t_unique_comm() == 0);
    T_REQUIRE(prctl(PR_GET_NAME, comm) == 0);
    T_REQUIRE(th_serve_start(sonde, NULL, NULL, &s) == 0);
    T_REQUIRE(child_start() == 0);

    /* the child's system calls but its blocking reads of commands, by execname */
    snprintf(body, sizeof(body),
             "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"and\":[{\"eq\":["
             "\"pid\",\"%d\"]},{\"ne\":[\"syscall\",\"read\"]}]},\"decomposition\":["
             "\"execname\",\"latency\"]}",
             (int)child);
    int lat = create_instn(s.port, body);
    snprintf(body, sizeof(body),
             "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"eq\":[\"pid\","
             "\"%d\"]},\"decomposition\":[\"execname\"]}",
             (int)child);
    int names = create_instn(s.port, body);
    snprintf(body, sizeof(body),
             "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"eq\":[\"pid\","
             "\"%d\"]}}",
             (int)child);
    int scalar = create_instn(s.port, body);
    T_REQUIRE(lat > 0 && names > 0 && scalar > 0);
    json_decref(req(s.port, "POST", "/ca/recorder/sessions",
                    "{\"name\":\"rec1\",\"events\":[\"syscalls\"],\"size-per-cpu\":\"64M\"}", 201));

    /* bad specs */
    const char *P = "/ca/recorder/triggers";
    struct {
        const char *when, *extra, *what;
        int instn, status;
    } cases[] = {
        {"p0 > 1ms", "", "above 0 and below 100", lat, 409},
        {"p100 > 1ms", "", "above 0 and below 100", lat, 409},
        {"p99 > -1ms", "", "must not be negative", lat, 409},
        {"p99 > 10ms for 0s", "", "\\\"for\\\": a whole number", lat, 409},
        {"p99 > 10ms for 2.5s", "", "a whole number", lat, 409},
        {"p99 >= 10ms", "", "only \\\">\\\"", lat, 409},
        {"median > 3", "", "a condition begins with", lat, 409},
        {"p99 > 10 parsecs", "", "unexpected \\\"parsecs\\\"", lat, 409},
        {"count in [20ms, 5ms) > 1", "", "LO below HI", lat, 409},
        {"count in [5ms 20ms) > 1", "", "count in [LO, HI)", lat, 409},
        {"count > 1e9", "", "unexpected", lat, 409},
        {"p99 > 10ms", "", "no instrumentation 999", 999, 409},
        {"p99 > 10ms", "", "needs an instrumentation with a numeric decomposition", names, 409},
        {"count in [1ms, 2ms) > 1", "", "numeric decomposition", names, 409},
        {"count > 5", ",\"key\":\"x\"", "has no discrete decomposition", scalar, 409},
        {"count > 5", ",\"key\":\"\"", "\\\"key\\\" must be", names, 409},
        {"count > 5", ",\"key\":7", "\\\"key\\\" must be a string", names, 409},
        {"count > 5", ",\"post\":61", "\\\"post\\\" must be a whole number from 0 to 60", names,
         409},
        {"count > 5", ",\"min-interval\":-1", "\\\"min-interval\\\" must be", names, 409},
        {"count > 5", ",\"bogus\":1", "unknown member \\\"bogus\\\"", names, 409},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char want[128];
        snprintf(body, sizeof(body),
                 "{\"name\":\"bad\",\"session\":\"rec1\",\"instrumentation\":%d,\"when\":\"%s\"%s}",
                 cases[i].instn, cases[i].when, cases[i].extra);
        /* the message as the server words it (the cases escape quotes for the JSON above) */
        size_t k = 0;
        for (const char *p = cases[i].what; *p && k + 1 < sizeof(want); p++)
            if (*p != '\\')
                want[k++] = *p;
        want[k] = 0;
        bad(s.port, "POST", P, body, cases[i].status, want);
    }
    snprintf(
        body, sizeof(body),
        "{\"name\":\"bad\",\"session\":\"nope\",\"instrumentation\":%d,\"when\":\"p99 > 1ms\"}",
        lat);
    bad(s.port, "POST", P, body, 409, "no recording session \"nope\"");
    bad(s.port, "POST", P, "{\"name\":", 409, "must be a JSON object");
    snprintf(body, sizeof(body),
             "{\"name\":\"fired\",\"session\":\"rec1\",\"instrumentation\":%d,\"when\":\"count > "
             "1\"}",
             lat);
    bad(s.port, "POST", P, body, 409, "\"name\" must be");
    snprintf(body, sizeof(body),
             "{\"name\":\"../x\",\"session\":\"rec1\",\"instrumentation\":%d,\"when\":\"count > "
             "1\"}",
             lat);
    bad(s.port, "POST", P, body, 409, "name must be 1 to 63");
    snprintf(body, sizeof(body),
             "{\"session\":\"rec1\",\"instrumentation\":\"%d\",\"when\":\"count > 1\"}", lat);
    bad(s.port, "POST", P, body, 409, "\"name\" must be");
    snprintf(body, sizeof(body),
             "{\"name\":\"x\",\"session\":\"rec1\",\"instrumentation\":\"%d\",\"when\":\"count > "
             "1\"}",
             lat);
    bad(s.port, "POST", P, body, 409, "\"instrumentation\" must be");
    bad(s.port, "GET", "/ca/recorder/triggers/nope", NULL, 404, "no such trigger \"nope\"");
    bad(s.port, "DELETE", "/ca/recorder/triggers/nope", NULL, 404, "no such trigger");
    json_t *l = req(s.port, "GET", P, NULL, 200);
    T_EQU(json_array_size(l), 0);
    json_decref(l);

    /* the trigger */
    snprintf(body, sizeof(body),
             "{\"name\":\"slow\",\"session\":\"rec1\",\"instrumentation\":%d,\"when\":\"p99 > "
             "10ms for 1s\",\"key\":\"%s\",\"post\":1}",
             lat, comm);
    json_t *t = req(s.port, "POST", P, body, 201);
    T_STR(json_string_value(json_object_get(t, "when")), "p99 > 10ms for 1s");
    T_EQ(json_integer_value(json_object_get(t, "min-interval")), 60);
    T_EQ(json_integer_value(json_object_get(t, "post")), 1);
    T_STR(json_string_value(json_object_get(t, "key")), comm);
    json_decref(t);
    bad(s.port, "POST", P, body, 409, "trigger \"slow\" exists");
    /* a band, on any key */
    snprintf(body, sizeof(body),
             "{\"name\":\"band\",\"session\":\"rec1\",\"instrumentation\":%d,\"when\":\"count "
             "in [20ms, 1s) > 0\",\"key\":\"*\",\"post\":0}",
             lat);
    json_decref(req(s.port, "POST", P, body, 201));

    /* fast calls (p99 well under 10 ms), then one slow operation */
    T_REQUIRE(child_run(20) == 0);
    usleep(1500000); /* the fast calls' second is judged on its own */
    T_REQUIRE(child_run(T_CMD_SLOW) == 0);
    t = wait_trigger(s.port, "slow", snapshot_taken);
    T_REQUIRE(t != NULL);
    T_EQ(json_integer_value(json_object_get(t, "fires")), 1);
    T_EQ(json_integer_value(json_object_get(t, "snapshots")), 1);
    json_t *f = json_array_get(json_object_get(t, "fired"), 0);
    char *text = json_dumps(f, 0);
    t_note("fired: %s", text);
    free(text);
    T_STR(json_string_value(json_object_get(f, "state")), "taken");
    T_STR(json_string_value(json_object_get(f, "condition")), "p99 > 10ms for 1s");
    T_STR(json_string_value(json_object_get(f, "trigger")), "slow");
    T_STR(json_string_value(json_object_get(f, "session")), "rec1");
    T_STR(json_string_value(json_object_get(f, "key")), comm);
    double v = json_number_value(json_object_get(f, "value"));
    T_OK(v >= 30e6 && v < 1e9); /* the nanosleep's latency, ns (the histogram's bucket) */
    char id[128];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(f, "snapshot")));
    T_OK(strncmp(id, "rec1-", 5) == 0);
    json_decref(t);

    /* the band's: one operation in [20ms, 1s) in that second, on the child's key */
    t = wait_trigger(s.port, "band", snapshot_taken);
    T_REQUIRE(t != NULL);
    f = json_array_get(json_object_get(t, "fired"), 0);
    T_EQ(json_integer_value(json_object_get(t, "fires")), 1);
    T_STR(json_string_value(json_object_get(f, "state")), "taken");
    T_NEAR(json_number_value(json_object_get(f, "value")), 1.0, 0);
    T_STR(json_string_value(json_object_get(f, "key")), comm);
    T_STR(json_string_value(json_object_get(f, "condition")), "count in [20ms, 1s) > 0");
    json_decref(t);

    /* its snapshot: the slow nanosleep of the child's tid, and the fast calls before it */
    snprintf(dir, sizeof(dir), "%s/trig-snap", s.dir);
    fetch(s.port, id, dir);
    T_EQ(child_lines(dir, "syscall_entry_nanosleep"), 1);
    T_EQ(child_lines(dir, "syscall_exit_nanosleep"), 1);
    T_EQ(child_lines(dir, "syscall_exit_getppid"), 20);
    char idx[700];
    snprintf(idx, sizeof(idx), "%s/sonde-snapshot.json", dir);
    json_t *x = json_load_file(idx, 0, NULL);
    T_STR(json_string_value(json_object_get(json_object_get(x, "window"), "of")), "ring");
    json_decref(x);

    /* the manual snapshots' consumer lost nothing to the trigger's: right after, it holds the
     * same calls of the child */
    json_t *m = req(s.port, "POST", "/ca/recorder/sessions/rec1/snapshot", NULL, 201);
    t_note("manual snapshot: %lld events, %lld overwritten",
           (long long)json_integer_value(json_object_get(m, "events")),
           (long long)json_integer_value(json_object_get(m, "overwritten")));
    snprintf(manual, sizeof(manual), "%s/manual-snap", s.dir);
    fetch(s.port, json_string_value(json_object_get(m, "id")), manual);
    json_decref(m);
    T_EQ(child_lines(manual, "syscall_exit_getppid"), 20);
    T_EQ(child_lines(manual, "syscall_exit_nanosleep"), 1);

    /* the rate limit: another slow operation within min-interval is suppressed */
    T_REQUIRE(child_run(T_CMD_SLOW) == 0);
    t = wait_trigger(s.port, "slow", one_suppressed);
    T_REQUIRE(t != NULL);
    T_EQ(json_integer_value(json_object_get(t, "suppressed")), 1);
    T_EQ(json_integer_value(json_object_get(t, "fires")), 1);
    T_EQU(json_array_size(json_object_get(t, "fired")), 1);
    json_decref(t);
    l = req(s.port, "GET", "/ca/recorder/triggers/fired", NULL, 200);
    size_t nslow = 0;
    for (size_t i = 0; i < json_array_size(l); i++) {
        json_t *e = json_array_get(l, i);
        if (strcmp(json_string_value(json_object_get(e, "trigger")), "slow") == 0) {
            nslow++;
            T_STR(json_string_value(json_object_get(e, "snapshot")), id);
        }
    }
    T_EQU(nslow, 1);
    json_decref(l);

    /* the CLI */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", s.port);
    snprintf(cmd, sizeof(cmd), "%s record trigger list --url %s", sonde, url);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    T_OK(strstr(out, "\nslow ") != NULL);
    T_OK(strstr(out, "p99 > 10ms for 1s") != NULL);
    T_OK(strstr(out, id) != NULL);
    snprintf(cmd, sizeof(cmd),
             "%s record trigger add busy --session rec1 --instn %d --when 'count > 100000/s for "
             "2s' --min-interval 10 --post 0 --url %s",
             sonde, names, url);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    T_STR(out, "trigger busy added: snapshots rec1 when count > 100000/s for 2s\n");
    snprintf(cmd, sizeof(cmd),
             "%s record trigger add b2 --session rec1 --instn %d --when 'p99 > 1ms' --url %s",
             sonde, names, url);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 1);
    T_OK(strstr(err, "numeric decomposition") != NULL);
    snprintf(cmd, sizeof(cmd), "%s record trigger add b3 --session rec1 --url %s", sonde, url);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 2);
    snprintf(cmd, sizeof(cmd), "%s record trigger rm busy --url %s", sonde, url);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    T_STR(out, "trigger busy removed\n");
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 1);
    T_OK(strstr(err, "no such trigger \"busy\"") != NULL);

    /* a session stopped before a trigger's snapshot is due: the entry says so */
    snprintf(body, sizeof(body),
             "{\"name\":\"late\",\"session\":\"rec1\",\"instrumentation\":%d,\"when\":\"p99 > "
             "10ms\",\"key\":\"%s\",\"post\":5}",
             lat, comm);
    json_decref(req(s.port, "POST", P, body, 201));
    T_REQUIRE(child_run(T_CMD_SLOW) == 0);
    t = wait_trigger(s.port, "late", fired_once);
    T_REQUIRE(t != NULL);
    json_decref(t);
    json_decref(req(s.port, "DELETE", "/ca/recorder/sessions/rec1", NULL, 204));
    t = wait_trigger(s.port, "late", snapshot_taken);
    T_REQUIRE(t != NULL);
    f = json_array_get(json_object_get(t, "fired"), 0);
    T_STR(json_string_value(json_object_get(f, "state")), "failed");
    T_STR(json_string_value(json_object_get(f, "error")), "the session is not running");
    T_OK(json_is_null(json_object_get(f, "snapshot")));
    T_EQ(json_integer_value(json_object_get(t, "failures")), 1);
    json_decref(t);

    snprintf(path, sizeof(path), "/ca/recorder/triggers/slow");
    json_decref(req(s.port, "DELETE", path, NULL, 204));
    bad(s.port, "GET", path, NULL, 404, "no such trigger");
    /* its fired entries and snapshot stay */
    l = req(s.port, "GET", "/ca/recorder/triggers/fired", NULL, 200);
    T_OK(json_array_size(l) >= 2);
    json_decref(l);
    child_stop();
    T_EQ(th_serve_stop(&s), 0);
}

int main(int argc, char **argv)
{
    sonde = th_sonde_main(argc, argv); /* SONDE [CASE-FILTER] */
    t_run("a p99 trigger fires on a slow nanosleep, snapshots it, then is rate-limited",
          test_trigger_fires);
    child_stop();
    return t_done();
}
