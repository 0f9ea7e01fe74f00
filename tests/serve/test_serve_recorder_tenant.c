/*
 * Recording sessions and tenants (docs/recorder.md, "Who"), end to end through `sonde serve`
 * on the real kernel (root and BPF; it fails rather than skips without them): tenants acme and
 * beta own one cgroup each, a child in each makes getppid calls.
 *  - acme's session records exactly its child's 50 calls and nothing of beta's child; a
 *    session of acme whose predicate names beta's container records nothing of it (a
 *    predicate cannot widen the scope); the operator's session records both children;
 *  - acme sees, snapshots, fetches and stops only its own sessions and snapshots: the
 *    operator's and beta's are 404 to it, and the operator's routes refuse its token; beta
 *    sees none of acme's; the operator sees them all, each with its tenant;
 *  - a bad predicate is 409 with its reason; the CLI's --tenant and --predicate;
 *  - a disk recording of acme's is acme's and the operator's to see, 404 to beta.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent/cgroup.h"
#include "http.h"
#include "t.h"
#include "workload.h"

#define N_IN  50 /* getppid calls of acme's child */
#define N_OUT 70 /* and of beta's */

static const char *sonde;
static char out[1 << 16], err[1 << 16];
static char ten[64], other[64]; /* "/snt-rten-<pid>", "/snt-rother-<pid>" */

static bool cg_path(const char *rel, char *p, size_t len)
{
    const char *root = sn_cgroup_root();
    if (!root)
        return false;
    snprintf(p, len, "%s%s", root, rel);
    return true;
}

static bool cg_mkdir(const char *rel)
{
    char p[1024];
    return cg_path(rel, p, sizeof(p)) && (mkdir(p, 0755) == 0 || errno == EEXIST);
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

static void cg_rmdir(const char *rel)
{
    char p[1024];
    if (!cg_path(rel, p, sizeof(p)))
        return;
    for (int i = 0; i < 200 && rmdir(p) != 0 && errno == EBUSY; i++)
        usleep(5000);
}

static void getppids(void *arg)
{
    int n = *(int *)arg;
    for (int i = 0; i < n; i++)
        syscall(SYS_getppid);
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
        t_note("%s %s (%s) %s: %d %s", method, path, token, body ? body : "", r.status,
               r.body ? r.body : "");
    T_EQ(r.status, want);
    json_t *j = r.body && r.len ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    th_resp_free(&r);
    return j;
}

/* Snapshots session at base (the tenant's or the operator's) and unpacks it into dir: its id
 * into id. */
static void snapshot(int port, const char *base, const char *token, const char *session,
                     const char *dir, char *id, size_t idlen)
{
    char path[256], tarfile[700], cmd[1600], auth[128];
    const char *h[] = {auth, NULL};
    struct th_resp r;

    snprintf(path, sizeof(path), "%s/recorder/sessions/%s/snapshot", base, session);
    json_t *j = areq(port, "POST", path, token, NULL, 201);
    snprintf(id, idlen, "%s", json_string_value(json_object_get(j, "id")) ?: "");
    json_decref(j);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    snprintf(path, sizeof(path), "%s/recorder/snapshots/%s/archive", base, id);
    T_REQUIRE(th_request(port, "GET", path, h, NULL, 0, 30000, &r) == 0);
    T_EQ(r.status, 200);
    snprintf(tarfile, sizeof(tarfile), "%s.tar", dir);
    FILE *f = fopen(tarfile, "wb");
    T_REQUIRE(f != NULL);
    T_EQ(fwrite(r.body, 1, r.len, f), r.len);
    fclose(f);
    th_resp_free(&r);
    snprintf(cmd, sizeof(cmd), "mkdir -p %s && tar -xf %s -C %s && babeltrace2 %s/kernel > %s/text",
             dir, tarfile, dir, dir, dir);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
}

/* Lines of dir's text of task pid matching event (an extended regex; "" any event). */
static long lines(const char *dir, pid_t pid, const char *event)
{
    char cmd[1600];
    snprintf(cmd, sizeof(cmd), "grep -c -E '%s.*\\{ pid = %d, tid = %d \\}' %s/text", event,
             (int)pid, (int)pid, dir);
    t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err));
    return atol(out);
}

static bool has_session(json_t *index, const char *name)
{
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(index, "sessions"), i,
                       x) if (strcmp(json_string_value(json_object_get(x, "name")), name) ==
                              0) return true;
    return false;
}

static void test_tenants_record_their_own(void)
{
    char file[512], text[600], body[512], dir[700], ida[128], idb[128], idop[128], path[300];
    struct th_serve s;
    int n_in = N_IN, n_out = N_OUT;
    const char *A = "/ca/customers/acme", *B = "/ca/customers/beta";
    const char *at = "acme-token-1", *bt = "beta-token-1", *op = "operator-token";

    snprintf(ten, sizeof(ten), "/snt-rten-%d", (int)getpid());
    snprintf(other, sizeof(other), "/snt-rother-%d", (int)getpid());
    T_REQUIRE(sn_cgroup_root() != NULL);
    T_REQUIRE(cg_mkdir(ten) && cg_mkdir(other));
    snprintf(file, sizeof(file), "%s/rtenants-%d.json", t_outdir(), (int)getpid());
    snprintf(text, sizeof(text),
             "{\"operator\":{\"token\":\"%s\"},\"tenants\":{\"acme\":{\"token\":\"%s\","
             "\"cgroups\":[\"%s\"]},\"beta\":{\"token\":\"%s\",\"cgroups\":[\"%s\"]}}}",
             op, at, ten, bt, other);
    FILE *f = fopen(file, "w");
    T_REQUIRE(f != NULL);
    fputs(text, f);
    fclose(f);
    const char *extra[] = {"--tenants", file, "--no-agent", NULL};
    T_REQUIRE(th_serve_start(sonde, extra, NULL, &s) == 0);

    struct t_gated in = t_gated_start(getppids, &n_in), ou = t_gated_start(getppids, &n_out);
    T_REQUIRE(in.pid > 0 && ou.pid > 0);
    T_OK(cg_move(in.pid, ten));
    T_OK(cg_move(ou.pid, other));

    /* sessions: acme's, acme's naming beta's container, the operator's */
    snprintf(path, sizeof(path), "%s/recorder/sessions", A);
    json_t *j = areq(s.port, "POST", path, at,
                     "{\"name\":\"a1\",\"events\":[\"syscalls\"],\"size-per-cpu\":\"16M\"}", 201);
    T_STR(json_string_value(json_object_get(j, "tenant")), "acme");
    json_decref(j);
    snprintf(body, sizeof(body),
             "{\"name\":\"a2\",\"events\":[\"syscalls\"],\"size-per-cpu\":\"1M\",\"predicate\":{"
             "\"eq\":[\"container\",\"%s\"]}}",
             other);
    json_decref(areq(s.port, "POST", path, at, body, 201));
    j = areq(s.port, "POST", path, at,
             "{\"name\":\"a3\",\"events\":[\"syscalls\"],\"predicate\":{\"gt\":[\"latency\",5]}}",
             409);
    const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    t_note("a bad predicate: %s", msg ? msg : "(none)");
    T_OK(msg && strstr(msg, "\"predicate\":") && strstr(msg, "latency"));
    json_decref(j);
    json_decref(areq(s.port, "POST", path, at,
                     "{\"name\":\"a4\",\"events\":[\"syscalls\"],"
                     "\"predicate\":[1]}",
                     409));
    json_decref(areq(s.port, "POST", "/ca/recorder/sessions", op,
                     "{\"name\":\"op1\",\"events\":[\"syscalls\"],\"size-per-cpu\":\"16M\"}", 201));
    /* the operator's routes are not acme's */
    json_decref(areq(s.port, "POST", "/ca/recorder/sessions", at,
                     "{\"name\":\"x\",\"events\":[\"syscalls\"]}", 403));

    t_gated_release(&in);
    t_gated_release(&ou);

    snprintf(dir, sizeof(dir), "%s/acme-a1", s.dir);
    snapshot(s.port, A, at, "a1", dir, ida, sizeof(ida));
    T_EQ(lines(dir, in.pid, "syscall_exit_getppid"), N_IN);
    T_EQ(lines(dir, ou.pid, ""), 0);
    snprintf(dir, sizeof(dir), "%s/acme-a2", s.dir);
    snapshot(s.port, A, at, "a2", dir, idb, sizeof(idb));
    T_EQ(lines(dir, ou.pid, ""), 0);
    T_EQ(lines(dir, in.pid, ""), 0);
    snprintf(dir, sizeof(dir), "%s/op1", s.dir);
    snapshot(s.port, "/ca", op, "op1", dir, idop, sizeof(idop));
    T_EQ(lines(dir, in.pid, "syscall_exit_getppid"), N_IN);
    T_EQ(lines(dir, ou.pid, "syscall_exit_getppid"), N_OUT);

    /* what acme sees: its own sessions and snapshots */
    snprintf(path, sizeof(path), "%s/recorder", A);
    j = areq(s.port, "GET", path, at, NULL, 200);
    T_EQU(json_array_size(json_object_get(j, "sessions")), 2);
    T_OK(has_session(j, "a1") && has_session(j, "a2") && !has_session(j, "op1"));
    json_t *snaps = json_object_get(j, "snapshots");
    T_EQU(json_array_size(snaps), 2);
    for (size_t i = 0; i < json_array_size(snaps); i++)
        T_OK(strncmp(json_string_value(json_array_get(snaps, i)), "a", 1) == 0);
    json_decref(j);
    const char *hidden[][2] = {
        {"GET", "/recorder/sessions/op1"},
        {"DELETE", "/recorder/sessions/op1"},
        {"POST", "/recorder/sessions/op1/snapshot"},
    };
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s%s", A, hidden[i][1]);
        j = areq(s.port, hidden[i][0], path, at, NULL, 404);
        msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
        T_OK(msg && strstr(msg, "no such session \"op1\""));
        json_decref(j);
    }
    snprintf(path, sizeof(path), "%s/recorder/snapshots/%s/archive", A, idop);
    json_decref(areq(s.port, "GET", path, at, NULL, 404));
    snprintf(path, sizeof(path), "%s/recorder/snapshots/%s", A, idop);
    json_decref(areq(s.port, "DELETE", path, at, NULL, 404));
    /* beta sees none of acme's */
    snprintf(path, sizeof(path), "%s/recorder", B);
    j = areq(s.port, "GET", path, bt, NULL, 200);
    T_EQU(json_array_size(json_object_get(j, "sessions")), 0);
    T_EQU(json_array_size(json_object_get(j, "snapshots")), 0);
    json_decref(j);
    snprintf(path, sizeof(path), "%s/recorder/sessions/a1/snapshot", B);
    json_decref(areq(s.port, "POST", path, bt, NULL, 404));
    snprintf(path, sizeof(path), "%s/recorder/snapshots/%s/archive", B, ida);
    json_decref(areq(s.port, "GET", path, bt, NULL, 404));
    /* nor through acme's path (another tenant's scope is hidden: 404) */
    snprintf(path, sizeof(path), "%s/recorder", A);
    json_decref(areq(s.port, "GET", path, bt, NULL, 404));

    /* the operator sees everything, each session with its tenant */
    j = areq(s.port, "GET", "/ca/recorder", op, NULL, 200);
    T_EQU(json_array_size(json_object_get(j, "sessions")), 3);
    T_EQU(json_array_size(json_object_get(j, "snapshots")), 3);
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(j, "sessions"), i, x)
    {
        const char *n = json_string_value(json_object_get(x, "name"));
        json_t *tn = json_object_get(x, "tenant");
        if (strcmp(n, "op1") == 0)
            T_OK(json_is_null(tn));
        else
            T_STR(json_string_value(tn), "acme");
        if (strcmp(n, "a2") == 0)
            T_STR(json_string_value(
                      json_array_get(json_object_get(json_object_get(x, "predicate"), "eq"), 1)),
                  other);
    }
    json_decref(j);

    /* the CLI: --tenant and --predicate */
    char cmd[1400], url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", s.port);
    snprintf(cmd, sizeof(cmd),
             "%s record start c1 --events syscalls --size-per-cpu 64K --predicate "
             "'{\"eq\":[\"execname\",\"nobody-here\"]}' --tenant acme --token %s --url %s",
             sonde, at, url);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    T_STR(out, "session c1 started\n");
    snprintf(cmd, sizeof(cmd), "%s record list --tenant acme --token %s --url %s", sonde, at, url);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    T_OK(strstr(out, "\nc1 ") && strstr(out, "\na1 ") && !strstr(out, "\nop1 "));
    snprintf(cmd, sizeof(cmd),
             "%s record start c2 --events syscalls --predicate '{' --tenant acme --token %s "
             "--url %s",
             sonde, at, url);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 2);
    T_OK(strstr(err, "--predicate is not JSON") != NULL);
    snprintf(cmd, sizeof(cmd), "%s record stop op1 --tenant acme --token %s --url %s", sonde, at,
             url);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 1);
    T_OK(strstr(err, "no such session \"op1\"") != NULL);

    /* disk mode: acme's recording is acme's (and the operator's to see), not beta's */
    snprintf(path, sizeof(path), "%s/recorder/sessions", A);
    json_decref(areq(s.port, "POST", path, at,
                     "{\"name\":\"ad\",\"events\":[\"syscalls\"],\"disk\":true}", 201));
    snprintf(path, sizeof(path), "%s/recorder/recordings", A);
    j = areq(s.port, "GET", path, at, NULL, 200);
    T_EQ(json_array_size(j), 1);
    T_STR(json_string_value(json_array_get(j, 0)), "ad");
    json_decref(j);
    snprintf(path, sizeof(path), "%s/recorder/recordings", B);
    j = areq(s.port, "GET", path, bt, NULL, 200);
    T_EQ(json_array_size(j), 0);
    json_decref(j);
    snprintf(path, sizeof(path), "%s/recorder/recordings/ad", B);
    json_decref(areq(s.port, "GET", path, bt, NULL, 404));
    json_decref(areq(s.port, "DELETE", path, bt, NULL, 404));
    j = areq(s.port, "GET", "/ca/recorder/recordings/ad", op, NULL, 200);
    T_STR(json_string_value(json_object_get(j, "tenant")), "acme");
    T_OK(json_is_true(json_object_get(j, "recording")));
    json_decref(j);
    snprintf(path, sizeof(path), "%s/recorder/sessions/ad", A);
    json_decref(areq(s.port, "DELETE", path, at, NULL, 204));
    snprintf(path, sizeof(path), "%s/recorder/recordings/ad", A);
    json_decref(areq(s.port, "DELETE", path, at, NULL, 204));

    /* acme stops its own */
    snprintf(path, sizeof(path), "%s/recorder/sessions/a1", A);
    json_decref(areq(s.port, "DELETE", path, at, NULL, 204));
    snprintf(path, sizeof(path), "%s/recorder/snapshots/%s", A, ida);
    json_decref(areq(s.port, "DELETE", path, at, NULL, 204));

    T_EQ(th_serve_stop(&s), 0);
    cg_rmdir(ten);
    cg_rmdir(other);
    unlink(file);
}

int main(int argc, char **argv)
{
    sonde = th_sonde_main(argc, argv); /* SONDE [CASE-FILTER] */
    t_run("tenants record, see and snapshot only their own", test_tenants_record_their_own);
    return t_done();
}
