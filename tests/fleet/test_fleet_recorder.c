/*
 * The flight recorder in a fleet (docs/recorder.md, "In a fleet"), end to end with real
 * processes ($SN_SONDE or argv[1] is the sonde binary; root and BPF, as CI runs): a real
 * nats-server with JetStream (support/nats.h), a real `sonde serve --nats` node and real
 * `sonde agent --nats` hosts (support/fleet_hosts.h), all on this machine (each host records
 * the same kernel, which is fine: each host's trace must be whole).
 *
 *  - a fleet session ("hosts": "all") created on node n1 runs on both nodes and the agent;
 *    a trigger "p99 > 10ms for 1s" on the latency of a child's system calls fires when the
 *    child makes a 30 ms nanosleep; the fired entry lists the hosts expected and received
 *    (all three); both nodes list the snapshot (n2 from its index on the bus) and its index
 *    says so; its archive, fetched from either node and unpacked by tar, holds one trace per
 *    host, each with the child's nanosleep entry and exit, and babeltrace2 reads the whole
 *    directory (the hosts merged) with exactly three of each;
 *  - a host killed (SIGKILL) just before a trigger fires: the entry names it as missing after
 *    the bounded wait, the others' traces are in the snapshot, and nothing crashed;
 *  - the bus killed between a firing and its snapshot: the entry fails, saying so, and every
 *    process carries on (the bus started again, the fleet comes back);
 *  - stopping the fleet session on n1 stops it on every host (n2's list says so).
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

#include "fleet_hosts.h"
#include "http.h"
#include "nats.h"
#include "t.h"
#include "workload.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SN_HAS_ASAN 1
#endif
#endif
#ifndef SN_HAS_ASAN
#define SN_HAS_ASAN 0
#endif

static const char *sonde;
static char out[1 << 16], err[1 << 16];
static struct th_nats nats;
static struct th_fleet fleet;

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

static json_t *req(int node, const char *method, const char *path, const char *body, int want)
{
    int status;
    json_t *j = th_node_jreq(&fleet, node, method, path, body, &status);
    if (status != want) {
        char *t = j ? json_dumps(j, 0) : NULL;
        t_note("%s %s %s: %d %s", method, path, body ? body : "", status, t ? t : "");
        free(t);
    }
    T_EQ(status, want);
    return j;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The archive of snapshot id from node, unpacked into dir. With curl (60 s): three whole rings
 * of 64M per CPU are more than the test client's bound on a body (TH_MAX_BODY). */
static void fetch(int node, const char *id, const char *dir)
{
    char cmd[4096];
    snprintf(cmd, sizeof(cmd),
             "rm -rf %s && mkdir -p %s && curl -sSf -m 60 -o %s.tar "
             "http://127.0.0.1:%d/ca/recorder/snapshots/%s/archive && tar -xf %s.tar -C %s",
             dir, dir, dir, fleet.n[node].port, id, dir, dir);
    int rc = t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err));
    if (rc != 0)
        t_note("%s: rc %d %s", cmd, rc, err);
    T_EQ(rc, 0);
}

/* Lines of babeltrace2's text of path (a trace, or a directory of traces) matching the
 * extended regex re; babeltrace2 must succeed. */
static long count_lines(const char *path, const char *re)
{
    char cmd[2400];
    snprintf(cmd, sizeof(cmd), "babeltrace2 %s > %s.text", path, path);
    int rc = t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err));
    if (rc != 0)
        t_note("babeltrace2 %s: rc %d\n%s", path, rc, err);
    T_EQ(rc, 0);
    snprintf(cmd, sizeof(cmd), "grep -c -E '%s' %s.text", re, path);
    t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)); /* grep -c: 1 when 0 found */
    return atol(out);
}

static long child_lines(const char *path, const char *event)
{
    char re[256];
    snprintf(re, sizeof(re), "%s: \\{ cpu_id = [0-9]+ \\}, \\{ pid = %d, tid = %d \\}", event,
             (int)child, (int)child);
    return count_lines(path, re);
}

/* Trigger name's first fired entry once it is no longer pending (bounded: limit_s), or NULL. */
static json_t *wait_fired(const char *name, int limit_s)
{
    char path[128];
    snprintf(path, sizeof(path), "/ca/recorder/triggers/%s", name);
    for (int i = 0; i < limit_s * 5; i++) {
        int status;
        json_t *j = th_node_jreq(&fleet, 0, "GET", path, NULL, &status);
        json_t *f = json_array_get(json_object_get(j, "fired"), 0);
        const char *st = json_string_value(json_object_get(f, "state"));
        if (status == 200 && st && strcmp(st, "pending") != 0) {
            json_incref(f);
            json_decref(j);
            return f;
        }
        json_decref(j);
        sleep_ms(200);
    }
    return NULL;
}

/* Whether JSON array a is exactly the strings of want (n of them, in order). */
static bool names_are(const json_t *a, const char *const *want, size_t n)
{
    if (!json_is_array(a) || json_array_size(a) != n) {
        char *t = a ? json_dumps(a, 0) : NULL;
        t_note("hosts: %s", t ? t : "(none)");
        free(t);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (!json_is_string(json_array_get(a, i)) ||
            strcmp(json_string_value(json_array_get(a, i)), want[i]) != 0)
            return false;
    return true;
}

/* ---- the case ---- */

static void test_fleet_trigger(void)
{
    char comm[16], body[1024], dir[700], path[900];

    T_REQUIRE(t_unique_comm() == 0);
    T_REQUIRE(prctl(PR_GET_NAME, comm) == 0);
    T_REQUIRE(th_nats_start(&nats, 1, 0) == 0);
    T_REQUIRE(th_fleet_init(&fleet, sonde, th_nats_url(&nats)) == 0);
    int n = th_node_start(&fleet, "n1", NULL, NULL);
    T_REQUIRE(n == 0);
    int n2 = th_node_start(&fleet, "n2", NULL, NULL);
    T_REQUIRE(n2 == 1);
    int a = th_host_add_uncontained(&fleet, "ag1");
    T_REQUIRE(a >= 0);
    T_REQUIRE(th_host_agent_start(&fleet, a, NULL) == 0);
    T_REQUIRE(th_node_wait_members(&fleet, n, 2, 1, 30000) >= 0);
    T_REQUIRE(child_start() == 0);

    /* the child's system calls but its blocking reads of commands, by execname */
    snprintf(body, sizeof(body),
             "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"and\":[{\"eq\":["
             "\"pid\",\"%d\"]},{\"ne\":[\"syscall\",\"read\"]}]},\"decomposition\":["
             "\"execname\",\"latency\"]}",
             (int)child);
    json_t *j = req(n, "POST", "/ca/instrumentations", body, 201);
    const char *uri = json_string_value(json_object_get(j, "uri"));
    const char *slash = uri ? strrchr(uri, '/') : NULL;
    int lat = slash ? atoi(slash + 1) : -1;
    json_decref(j);
    T_REQUIRE(lat > 0);
    char key[32];
    snprintf(key, sizeof(key), "%d", lat);
    T_REQUIRE(th_wait_running(&fleet, n, key, NULL, -1, 30000) >= 0);

    /* bad fleet sessions */
    j = req(n, "POST", "/ca/recorder/sessions",
            "{\"name\":\"x\",\"events\":[\"syscalls\"],\"hosts\":\"some\"}", 409);
    json_decref(j);
    j = req(n, "POST", "/ca/recorder/sessions",
            "{\"name\":\"a.b\",\"events\":[\"syscalls\"],\"hosts\":\"all\"}", 409);
    json_decref(j);

    /* the fleet session */
    j = req(n, "POST", "/ca/recorder/sessions",
            "{\"name\":\"frec\",\"events\":[\"syscalls\"],\"size-per-cpu\":\"64M\",\"hosts\":"
            "\"all\"}",
            201);
    T_STR(json_string_value(json_object_get(j, "hosts")), "all");
    json_decref(j);
    sleep_ms(2000); /* the agent hears sonde_defs within milliseconds and starts its rings */

    snprintf(body, sizeof(body),
             "{\"name\":\"slow\",\"session\":\"frec\",\"instrumentation\":%d,\"when\":\"p99 > "
             "10ms for 1s\",\"key\":\"%s\",\"post\":1}",
             lat, comm);
    json_decref(req(n, "POST", "/ca/recorder/triggers", body, 201));
    T_REQUIRE(child_run(20) == 0);
    T_REQUIRE(child_run(T_CMD_SLOW) == 0);

    json_t *f = wait_fired("slow", 90);
    T_REQUIRE(f != NULL);
    char *text = json_dumps(f, 0);
    printf("# fired: %s\n", text ? text : "");
    free(text);
    T_STR(json_string_value(json_object_get(f, "state")), "taken");
    const char *both[] = {"ag1", "n1", "n2"};
    json_t *hosts = json_object_get(f, "hosts");
    T_OK(names_are(json_object_get(hosts, "expected"), both, 3));
    T_OK(names_are(json_object_get(hosts, "received"), both, 3));
    T_OK(names_are(json_object_get(hosts, "missing"), NULL, 0));
    T_EQ(json_object_size(json_object_get(hosts, "failed")), 0);
    const char *id = json_string_value(json_object_get(f, "snapshot"));
    T_REQUIRE(id != NULL);
    char sid[128];
    snprintf(sid, sizeof(sid), "%s", id);
    json_decref(f);

    /* listed on both nodes (n2 from the index on the bus), with its index naming the hosts */
    for (int node = 0; node < 2; node++) {
        j = req(node, "GET", "/ca/recorder/snapshots", NULL, 200);
        bool listed = false;
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) listed |= strcmp(json_string_value(v), sid) == 0;
        if (!listed) {
            char *t = json_dumps(j, 0);
            t_note("node %d lists %s", node + 1, t ? t : "(none)");
            free(t);
        }
        T_OK(listed);
        json_decref(j);
        snprintf(path, sizeof(path), "/ca/recorder/snapshots/%s", sid);
        j = req(node, "GET", path, NULL, 200);
        T_OK(names_are(json_object_get(json_object_get(j, "hosts"), "received"), both, 3));
        json_decref(j);
    }

    /* one archive from each node: a trace per host, each whole, and babeltrace2 merges them */
    for (int node = 0; node < 2; node++) {
        snprintf(dir, sizeof(dir), "%s/fsnap-n%d", fleet.dir, node + 1);
        fetch(node, sid, dir);
        for (int h = 0; h < 3; h++) {
            snprintf(path, sizeof(path), "%s/%s/kernel", dir, both[h]);
            T_EQ(child_lines(path, "syscall_entry_nanosleep"), 1);
            T_EQ(child_lines(path, "syscall_exit_nanosleep"), 1);
        }
        T_EQ(child_lines(dir, "syscall_entry_nanosleep"), 3);
        T_EQ(child_lines(dir, "syscall_exit_nanosleep"), 3);
    }

    /* a host killed just before the next trigger fires: named as missing, after the wait
     * ("slow" removed: its minute may be over, and its snapshot would come first) */
    json_decref(req(n, "DELETE", "/ca/recorder/triggers/slow", NULL, 204));
    int b = th_host_add_uncontained(&fleet, "ag2");
    T_REQUIRE(b >= 0);
    T_REQUIRE(th_host_agent_start(&fleet, b, NULL) == 0);
    T_REQUIRE(th_node_wait_members(&fleet, n, 2, 2, 30000) >= 0);
    sleep_ms(2000); /* its rings started */
    snprintf(body, sizeof(body),
             "{\"name\":\"slow2\",\"session\":\"frec\",\"instrumentation\":%d,\"when\":\"p99 > "
             "10ms for 1s\",\"key\":\"%s\",\"post\":1}",
             lat, comm);
    json_decref(req(n, "POST", "/ca/recorder/triggers", body, 201));
    T_OK(th_host_agent_stop(&fleet, b, SIGKILL) >= 0);
    T_REQUIRE(child_run(T_CMD_SLOW) == 0);
    f = wait_fired("slow2", 90);
    T_REQUIRE(f != NULL);
    text = json_dumps(f, 0);
    printf("# fired: %s\n", text ? text : "");
    free(text);
    hosts = json_object_get(f, "hosts");
    const char *all4[] = {"ag1", "ag2", "n1", "n2"}, *gone[] = {"ag2"};
    /* ag2 is still a member for 6 s after its last heartbeat: expected, and missing */
    T_OK(names_are(json_object_get(hosts, "expected"), all4, 4));
    T_OK(names_are(json_object_get(hosts, "received"), both, 3));
    T_OK(names_are(json_object_get(hosts, "missing"), gone, 1));
    T_STR(json_string_value(json_object_get(f, "state")), "taken");
    json_decref(f);
    T_OK(waitpid(fleet.n[n].pid, NULL, WNOHANG) == 0); /* the nodes still run */
    T_OK(waitpid(fleet.n[n2].pid, NULL, WNOHANG) == 0);

#if defined(__SANITIZE_ADDRESS__) || SN_HAS_ASAN
    /* not under ASan: a bus restart hits cnats 3.4.1's heap-use-after-free in
     * jsSub_deleteConsumer when a JetStream subscription (fleet.c's watchers, the spans'
     * consumers) is destroyed while cnats makes it again after the reconnect */
    printf("# the bus-down case is skipped under ASan (cnats 3.4.1, see the comment)\n");
    json_decref(req(n, "DELETE", "/ca/recorder/triggers/slow2", NULL, 204));
#else
    /* the bus down when the snapshot is due (post 5 s): the entry fails, saying so, at once */
    json_decref(req(n, "DELETE", "/ca/recorder/triggers/slow2", NULL, 204));
    snprintf(body, sizeof(body),
             "{\"name\":\"slow3\",\"session\":\"frec\",\"instrumentation\":%d,\"when\":\"p99 > "
             "10ms for 1s\",\"key\":\"%s\",\"post\":5}",
             lat, comm);
    json_decref(req(n, "POST", "/ca/recorder/triggers", body, 201));
    T_REQUIRE(child_run(T_CMD_SLOW) == 0);
    bool pending = false;
    for (int k = 0; k < 150 && !pending; k++) { /* fired, its snapshot not yet due: 30 s */
        int stt;
        json_t *t = th_node_jreq(&fleet, n, "GET", "/ca/recorder/triggers/slow3", NULL, &stt);
        pending = json_array_size(json_object_get(t, "fired")) == 1;
        json_decref(t);
        if (!pending)
            sleep_ms(200);
    }
    T_REQUIRE(pending);
    T_REQUIRE(th_nats_kill(&nats, 0, SIGKILL) == 0);
    f = wait_fired("slow3", 30);
    T_REQUIRE(f != NULL);
    text = json_dumps(f, 0);
    printf("# fired: %s\n", text ? text : "");
    free(text);
    T_STR(json_string_value(json_object_get(f, "state")), "failed");
    T_STR(json_string_value(json_object_get(f, "error")), "the fleet's bus (NATS) is down");
    T_OK(json_is_null(json_object_get(f, "snapshot")));
    json_decref(f);
    T_OK(waitpid(fleet.n[n].pid, NULL, WNOHANG) == 0);
    T_OK(waitpid(fleet.n[n2].pid, NULL, WNOHANG) == 0);
    T_OK(waitpid(fleet.h[a].agent, NULL, WNOHANG) == 0);
    T_REQUIRE(th_nats_restart(&nats, 0) == 0);
    T_REQUIRE(th_node_wait_members(&fleet, n, 2, 1, 30000) >= 0);

#endif

    /* stopped on one node: gone from every host (the other node's list: bounded, 5 s) */
    int st = 503; /* 503 while the node's link is not back yet: bounded, 20 s */
    for (int k = 0; k < 100 && st == 503; k++) {
        j = th_node_jreq(&fleet, n, "DELETE", "/ca/recorder/sessions/frec", NULL, &st);
        json_decref(j);
        if (st == 503)
            sleep_ms(200);
    }
    T_EQ(st, 204);
    j = req(n, "GET", "/ca/recorder/sessions/frec", NULL, 404);
    json_decref(j);
    st = 200;
    for (int k = 0; k < 50 && st == 200; k++) {
        j = th_node_jreq(&fleet, n2, "GET", "/ca/recorder/sessions/frec", NULL, &st);
        json_decref(j);
        if (st == 200)
            sleep_ms(100);
    }
    T_EQ(st, 404);

    /* the CLI: sonde record start --hosts all, on n2; n1 hears it; stopped from n1's CLI */
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "%s record start frec2 --events syscalls --size-per-cpu 64K --hosts all --url "
             "http://127.0.0.1:%d",
             sonde, fleet.n[n2].port);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    st = 404;
    for (int k = 0; k < 50 && st != 200; k++) {
        j = th_node_jreq(&fleet, n, "GET", "/ca/recorder/sessions/frec2", NULL, &st);
        if (st == 200)
            T_STR(json_string_value(json_object_get(j, "hosts")), "all");
        json_decref(j);
        if (st != 200)
            sleep_ms(100);
    }
    T_EQ(st, 200);
    snprintf(cmd, sizeof(cmd), "%s record stop frec2 --url http://127.0.0.1:%d", sonde,
             fleet.n[n].port);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);

    child_stop();
    th_fleet_free(&fleet);
    th_nats_free(&nats);
}

int main(int argc, char **argv)
{
    if (!(sonde = th_sonde_binary(&argc, &argv)))
        return 2;
    t_init(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    t_run("a fleet session, a trigger, one archive of every host", test_fleet_trigger);
    child_stop();
    return t_done();
}
