/*
 * Tenant scoping in the kernel, end to end through `sonde serve` and its agent (needs root):
 * a tenant owns the cgroup /snt-ten-<pid> (tenants file); one child process runs in a cgroup
 * below it, another in a cgroup outside. The tenant's instrumentation counts exactly the first
 * child's system calls and never the second's, keyed by the container path; the operator's
 * instrumentation, with the same predicate, counts both. The tenant cannot widen its scope
 * with a predicate of its own on another container.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "agent/cgroup.h"
#include "http.h"
#include "t.h"
#include "workload.h"

#define N_IN  50 /* getppid calls of the tenant's child */
#define N_OUT 70 /* and of the other one */

static const char *sonde;
static char ten[64], other[64]; /* "/snt-ten-<pid>", "/snt-other-<pid>" */

static bool cg_path(const char *rel, char *out, size_t len)
{
    const char *root = sn_cgroup_root();
    if (!root)
        return false;
    snprintf(out, len, "%s%s", root, rel);
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
        usleep(5000); /* the last task may still be leaving */
}

static void getppids(void *arg)
{
    int n = *(int *)arg;
    for (int i = 0; i < n; i++)
        syscall(SYS_getppid);
}

static int create(int port, const char *path, const char *token, const char *body)
{
    char auth[128];
    const char *h[] = {auth, "Content-Type: application/json", NULL};
    struct th_resp r;
    int id = -1;
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    if (th_request(port, "POST", path, h, body, strlen(body), 10000, &r) != 0)
        return -1;
    if (r.status == 201) {
        json_t *j = json_loads(r.body, 0, NULL);
        id = atoi(json_string_value(json_object_get(j, "id")) ?: "-1");
        json_decref(j);
    } else {
        t_note("create %s: %d %s", path, r.status, r.body);
    }
    th_resp_free(&r);
    return id;
}

static json_t *raw(int port, const char *base, int id, const char *token, long start, long dur)
{
    char auth[128], path[256];
    const char *h[] = {auth, NULL};
    struct th_resp r;
    json_t *j = NULL;
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    snprintf(path, sizeof(path),
             "%s/instrumentations/%d/value/raw?start_time=%ld&duration=%ld&timeout=5000", base, id,
             start, dur);
    if (th_request(port, "GET", path, h, NULL, 0, 10000, &r) == 0 && r.status == 200) {
        json_t *root = json_loads(r.body, 0, NULL);
        j = json_incref(json_object_get(root, "value"));
        json_decref(root);
    }
    th_resp_free(&r);
    return j;
}

static void test_tenant_sees_only_its_containers(void)
{
    char file[512], text[512], ten_a[96], body[256];
    struct th_serve s;
    int n_in = N_IN, n_out = N_OUT;

    snprintf(ten, sizeof(ten), "/snt-ten-%d", (int)getpid());
    snprintf(other, sizeof(other), "/snt-other-%d", (int)getpid());
    snprintf(ten_a, sizeof(ten_a), "%s/a", ten);
    T_REQUIRE(sn_cgroup_root() != NULL);
    T_REQUIRE(cg_mkdir(ten) && cg_mkdir(ten_a) && cg_mkdir(other));

    snprintf(file, sizeof(file), "%s/tenants-%d.json", t_outdir(), (int)getpid());
    snprintf(text, sizeof(text),
             "{\"operator\":{\"token\":\"operator-token\"},\"tenants\":{\"acme\":{\"token\":"
             "\"acme-token-1\",\"cgroups\":[\"%s\"]}}}",
             ten);
    FILE *f = fopen(file, "w");
    T_REQUIRE(f != NULL);
    fputs(text, f);
    fclose(f);
    const char *extra[] = {"--tenants", file, NULL};
    T_REQUIRE(th_serve_start(sonde, extra, NULL, &s) == 0);

    /* the children sit at their gates before anything is enabled */
    struct t_gated in = t_gated_start(getppids, &n_in), out = t_gated_start(getppids, &n_out);
    T_REQUIRE(in.pid > 0 && out.pid > 0);
    T_OK(cg_move(in.pid, ten_a));
    T_OK(cg_move(out.pid, other));

    snprintf(body, sizeof(body),
             "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"eq\":[\"syscall\","
             "\"getppid\"]},\"decomposition\":[\"container\"]}");
    int tid = create(s.port, "/ca/customers/acme/instrumentations", "acme-token-1", body);
    int oid = create(s.port, "/ca/instrumentations", "operator-token", body);
    /* a tenant's own predicate on another container cannot reach outside its scope */
    snprintf(body, sizeof(body),
             "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"eq\":[\"container\","
             "\"%s\"]},\"decomposition\":[\"container\"]}",
             other);
    int sneaky = create(s.port, "/ca/customers/acme/instrumentations", "acme-token-1", body);
    T_REQUIRE(tid > 0 && oid > 0 && sneaky > 0);

    usleep(200000);
    long start = (long)time(NULL);
    t_gated_release(&in);
    t_gated_release(&out);
    usleep(100000);
    long dur = (long)time(NULL) - start + 1;

    json_t *tv = raw(s.port, "/ca/customers/acme", tid, "acme-token-1", start, dur);
    json_t *ov = raw(s.port, "/ca", oid, "operator-token", start, dur);
    json_t *sv = raw(s.port, "/ca/customers/acme", sneaky, "acme-token-1", start, dur);
    T_REQUIRE(tv && ov && sv);
    char *tt = json_dumps(tv, JSON_COMPACT), *ot = json_dumps(ov, JSON_COMPACT);
    t_note("tenant %s, operator %s", tt, ot);
    free(tt);
    free(ot);
    T_EQ(json_object_size(tv), 1);
    T_EQ(json_integer_value(json_object_get(tv, ten_a)), N_IN);
    T_EQ(json_integer_value(json_object_get(ov, ten_a)), N_IN);
    T_EQ(json_integer_value(json_object_get(ov, other)), N_OUT);
    T_EQ(json_object_size(sv), 0);
    json_decref(tv);
    json_decref(ov);
    json_decref(sv);

    T_EQ(th_serve_stop(&s), 0);
    cg_rmdir(ten_a);
    cg_rmdir(ten);
    cg_rmdir(other);
    unlink(file);
}

int main(int argc, char **argv)
{
    sonde = th_sonde_main(argc, argv); /* SONDE [CASE-FILTER] */
    t_run("tenant_sees_only_its_containers", test_tenant_sees_only_its_containers);
    return t_done();
}
