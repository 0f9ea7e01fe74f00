/*
 * Simulated hosts and serve nodes for the fleet tests (fleet_hosts.h): cgroups, workloads,
 * agents and nodes as real processes, all stopped by PID and cleaned at the end.
 */
#include "fleet_hosts.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "t.h"

int64_t th_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- cgroups ---- */

const char *th_cgroup_root(void)
{
    static char root[256];
    static int looked;
    if (!looked) {
        FILE *m = fopen("/proc/self/mounts", "r");
        char dev[256], dir[256], type[64];
        looked = 1;
        while (m && fscanf(m, "%255s %255s %63s %*[^\n]", dev, dir, type) == 3) {
            if (strcmp(type, "cgroup2") == 0) {
                snprintf(root, sizeof(root), "%s", dir);
                break;
            }
        }
        if (m)
            fclose(m);
    }
    return root[0] ? root : NULL;
}

/* Kills (SIGKILL) what runs in cgroup full (an absolute path) and its descendants and
 * removes them, children first; bounded (depth 8). */
static void cg_remove_at(const char *full, int depth)
{
    char procs[600];
    DIR *d = depth < 8 ? opendir(full) : NULL;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_type != DT_DIR || strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char child[600];
        if (snprintf(child, sizeof(child), "%s/%s", full, de->d_name) < (int)sizeof(child))
            cg_remove_at(child, depth + 1);
    }
    if (d)
        closedir(d);
    snprintf(procs, sizeof(procs), "%s/cgroup.procs", full);
    for (int round = 0; round < 200; round++) {
        if (rmdir(full) == 0 || errno == ENOENT)
            return;
        if (errno != EBUSY)
            break;
        FILE *p = fopen(procs, "r");
        int pid;
        while (p && fscanf(p, "%d", &pid) == 1)
            if (pid > 1 && pid != getpid())
                kill(pid, SIGKILL);
        if (p)
            fclose(p);
        th_sleep_ms(10);
    }
    fprintf(stderr, "fleet_hosts: cannot remove cgroup %s: %s\n", full, strerror(errno));
}

static void cg_remove(const char *full)
{
    cg_remove_at(full, 0);
}

/* Cgroups of earlier runs (sonde-th-<pid>-*) whose process is gone: a test killed by its
 * timeout leaves them. */
static void cg_sweep(void)
{
    const char *root = th_cgroup_root();
    DIR *d = root ? opendir(root) : NULL;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        int pid;
        if (sscanf(de->d_name, "sonde-th-%d-", &pid) != 1 || pid == getpid())
            continue;
        if (kill(pid, 0) == 0 || errno != ESRCH)
            continue;
        char full[600];
        snprintf(full, sizeof(full), "%s/%s", root, de->d_name);
        cg_remove(full);
    }
    if (d)
        closedir(d);
}

/* ---- children ---- */

/* Waits up to ms for pid: its status, -1 (still there) or -2 (not a child of ours). */
static int reap(pid_t pid, int ms)
{
    int status;
    for (int i = 0; i <= ms / 10; i++) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0)
            return -2;
        th_sleep_ms(10);
    }
    return -1;
}

/* Sends sig, waits up to ms, then SIGKILL and waits. The wait status, or -1. */
static int stop_pid(pid_t pid, int sig, int ms)
{
    int status;
    if (pid <= 0)
        return -1;
    kill(pid, sig);
    int st = reap(pid, ms);
    if (st >= 0 || st == -2)
        return st >= 0 ? st : -1;
    kill(pid, SIGKILL);
    return waitpid(pid, &status, 0) == pid ? status : -1;
}

/* fork + exec of argv with stdout and stderr appended to log, stdin /dev/null, a parent-death
 * signal. The pid, or -errno. */
static pid_t spawn(const char *const *argv, const char *log)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int in = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (in >= 0)
            dup2(in, 0);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* ---- the registry: fleets freed at exit ---- */

static struct th_fleet *live[16];

static void free_all(void)
{
    for (int i = 0; i < 16; i++)
        if (live[i])
            th_fleet_free(live[i]);
}

int th_fleet_init(struct th_fleet *f, const char *sonde, const char *url)
{
    static bool registered;
    memset(f, 0, sizeof(*f));
    f->sonde = sonde;
    snprintf(f->url, sizeof(f->url), "%s", url);
    char tmpl[256];
    snprintf(tmpl, sizeof(tmpl), "%s/fleet-XXXXXX", t_outdir());
    if (!mkdtemp(tmpl)) {
        fprintf(stderr, "th_fleet_init: mkdtemp %s: %s\n", tmpl, strerror(errno));
        return -errno;
    }
    snprintf(f->dir, sizeof(f->dir), "%s", tmpl);
    if (!registered) {
        atexit(free_all);
        registered = true;
        cg_sweep();
    }
    for (int i = 0; i < 16; i++) {
        if (!live[i]) {
            live[i] = f;
            f->live = true;
            break;
        }
    }
    return 0;
}

void th_fleet_free(struct th_fleet *f)
{
    for (int i = 0; i < f->nh; i++)
        if (f->h[i].work)
            th_host_steady_stop(f, i);
    for (int i = 0; i < f->nh; i++)
        if (f->h[i].agent)
            th_host_agent_stop(f, i, SIGTERM);
    for (int i = 0; i < f->nn; i++)
        if (f->n[i].pid)
            th_node_stop(f, i, SIGTERM);
    const char *root = th_cgroup_root();
    for (int i = 0; i < f->nh && root; i++) {
        if (!f->h[i].cgroup[0])
            continue;
        char full[600];
        snprintf(full, sizeof(full), "%s%s", root, f->h[i].cgroup);
        cg_remove(full);
        f->h[i].cgroup[0] = 0;
    }
    f->nh = f->nn = 0;
    for (int i = 0; i < 16; i++)
        if (live[i] == f)
            live[i] = NULL;
    f->live = false;
}

/* ---- hosts ---- */

int th_host_add_uncontained(struct th_fleet *f, const char *name)
{
    if (f->nh >= TH_FLEET_HOSTS)
        return -ENOSPC;
    struct th_host *h = &f->h[f->nh];
    memset(h, 0, sizeof(*h));
    snprintf(h->name, sizeof(h->name), "%s", name);
    snprintf(h->log, sizeof(h->log), "%s/agent-%s.log", f->dir, name);
    return f->nh++;
}

int th_host_add(struct th_fleet *f, const char *name)
{
    const char *root = th_cgroup_root();
    if (f->nh >= TH_FLEET_HOSTS)
        return -ENOSPC;
    if (!root) {
        fprintf(stderr, "th_host_add: no cgroup v2 mounted\n");
        return -ENOENT;
    }
    struct th_host *h = &f->h[f->nh];
    memset(h, 0, sizeof(*h));
    snprintf(h->name, sizeof(h->name), "%s", name);
    snprintf(h->cgroup, sizeof(h->cgroup), "/sonde-th-%d-%s", (int)getpid(), name);
    snprintf(h->log, sizeof(h->log), "%s/agent-%s.log", f->dir, name);
    char full[600];
    snprintf(full, sizeof(full), "%s%s", root, h->cgroup);
    if (mkdir(full, 0755) != 0 && errno != EEXIST) {
        int e = errno;
        fprintf(stderr, "th_host_add: mkdir %s: %s (root?)\n", full, strerror(e));
        h->cgroup[0] = 0;
        return -e;
    }
    return f->nh++;
}

int th_host_agent_start(struct th_fleet *f, int i, const char *const *extra)
{
    struct th_host *h = &f->h[i];
    const char *argv[32];
    int n = 0;
    argv[n++] = f->sonde;
    argv[n++] = "agent";
    argv[n++] = "--nats";
    argv[n++] = f->url;
    argv[n++] = "--hostname";
    argv[n++] = h->name;
    if (h->cgroup[0]) {
        argv[n++] = "--cgroup";
        argv[n++] = h->cgroup;
    }
    for (int k = 0; extra && extra[k] && n < 31; k++)
        argv[n++] = extra[k];
    argv[n] = NULL;
    pid_t pid = spawn(argv, h->log);
    if (pid < 0)
        return (int)pid;
    h->agent = pid;
    return 0;
}

int th_host_agent_stop(struct th_fleet *f, int i, int sig)
{
    struct th_host *h = &f->h[i];
    if (!h->agent)
        return -1;
    int st = stop_pid(h->agent, sig, 10000);
    h->agent = 0;
    return st;
}

int th_host_subgroup(struct th_fleet *f, int i, const char *sub)
{
    char dir[600];
    if (!f->h[i].cgroup[0] || !sub || !sub[0] || sub[0] == '/' || strstr(sub, ".."))
        return -EINVAL;
    int n = snprintf(dir, sizeof(dir), "%s%s/", th_cgroup_root(), f->h[i].cgroup);
    for (const char *p = sub; n < (int)sizeof(dir) - 1; p++) { /* each level in turn */
        if (*p == '/' || !*p) {
            dir[n] = 0;
            if (mkdir(dir, 0755) != 0 && errno != EEXIST)
                return -errno;
            if (!*p)
                return 0;
        }
        dir[n++] = *p;
    }
    return -ENAMETOOLONG;
}

/* A child in host i's cgroup (or its descendant sub, made when missing): joins it, says so on
 * ready and returns 0; the parent gets the child's pid (or -1). */
static pid_t in_cgroup(struct th_fleet *f, int i, const char *sub, int ready_w, int ready_r)
{
    char dir[600];
    snprintf(dir, sizeof(dir), "%s%s%s%s", th_cgroup_root(), f->h[i].cgroup, sub ? "/" : "",
             sub ? sub : "");
    if (sub && mkdir(dir, 0755) != 0 && errno != EEXIST)
        return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    char procs[640], me[32];
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(ready_r);
    for (int j = 0; j < f->nh; j++) { /* other workloads' pipes: their stops must reach them */
        if (f->h[j].work) {
            close(f->h[j].work_stop);
            close(f->h[j].work_count);
        }
    }
    snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
    snprintf(me, sizeof(me), "%d", (int)getpid());
    int fd = open(procs, O_WRONLY);
    if (fd < 0 || write(fd, me, strlen(me)) < 0)
        _exit(2);
    close(fd);
    if (write(ready_w, "r", 1) != 1)
        _exit(3);
    close(ready_w);
    return 0;
}

static bool wait_ready(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char c;
    return poll(&p, 1, 10000) == 1 && read(fd, &c, 1) == 1;
}

int th_host_calls(struct th_fleet *f, int i, const char *sub, long calls)
{
    int ready[2];
    if (!f->h[i].cgroup[0])
        return -EINVAL;
    if (pipe2(ready, O_CLOEXEC) != 0)
        return -errno;
    pid_t pid = in_cgroup(f, i, sub, ready[1], ready[0]);
    if (pid == 0) {
        alarm(60);
        for (long k = 0; k < calls; k++)
            syscall(SYS_getppid);
        _exit(0);
    }
    close(ready[1]);
    bool ok = pid > 0 && wait_ready(ready[0]);
    close(ready[0]);
    if (pid < 0)
        return -EAGAIN;
    int st = reap(pid, 60000);
    if (st == -1)
        st = stop_pid(pid, SIGKILL, 1000);
    if (st < 0)
        return -EIO;
    return ok && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

int th_host_steady_start(struct th_fleet *f, int i, int per_tick)
{
    struct th_host *h = &f->h[i];
    int ready[2], stop[2], count[2];
    if (h->work)
        return -EBUSY;
    if (!h->cgroup[0])
        return -EINVAL;
    if (pipe2(ready, O_CLOEXEC) != 0)
        return -errno;
    if (pipe2(stop, O_CLOEXEC) != 0 || pipe2(count, O_CLOEXEC) != 0) {
        close(ready[0]);
        close(ready[1]);
        return -EMFILE;
    }
    pid_t pid = in_cgroup(f, i, NULL, ready[1], ready[0]);
    if (pid == 0) {
        int64_t made = 0;
        close(stop[1]);
        close(count[0]);
        struct pollfd p = {.fd = stop[0], .events = POLLIN};
        for (long tick = 0; tick < 2000000; tick++) { /* at most ~3 hours */
            for (int k = 0; k < per_tick; k++)
                syscall(SYS_getppid);
            made += per_tick;
            if (poll(&p, 1, 5) != 0)
                break; /* the stop pipe closed (or a signal) */
        }
        if (write(count[1], &made, sizeof(made)) != sizeof(made))
            _exit(4);
        _exit(0);
    }
    close(ready[1]);
    close(stop[0]);
    close(count[1]);
    bool ok = pid > 0 && wait_ready(ready[0]);
    close(ready[0]);
    if (!ok) {
        if (pid > 0)
            stop_pid(pid, SIGKILL, 1000);
        close(stop[1]);
        close(count[0]);
        return -EIO;
    }
    h->work = pid;
    h->work_stop = stop[1];
    h->work_count = count[0];
    return 0;
}

int64_t th_host_steady_stop(struct th_fleet *f, int i)
{
    struct th_host *h = &f->h[i];
    int64_t made = -1;
    if (!h->work)
        return -1;
    close(h->work_stop);
    struct pollfd p = {.fd = h->work_count, .events = POLLIN};
    if (poll(&p, 1, 10000) == 1 && read(h->work_count, &made, sizeof(made)) != sizeof(made))
        made = -1;
    close(h->work_count);
    if (reap(h->work, 5000) == -1)
        stop_pid(h->work, SIGKILL, 1000);
    h->work = 0;
    return made;
}

/* ---- nodes ---- */

/* The tail (last 2 KB) of file path on stderr. */
static void tail(const char *what, const char *path)
{
    FILE *fp = fopen(path, "r");
    char buf[2049];
    fprintf(stderr, "--- %s: %s\n", what, path);
    if (!fp)
        return;
    fseek(fp, 0, SEEK_END);
    long end = ftell(fp);
    fseek(fp, end > 2048 ? end - 2048 : 0, SEEK_SET);
    size_t n = fread(buf, 1, 2048, fp);
    buf[n] = 0;
    fclose(fp);
    fprintf(stderr, "%s\n", buf);
}

/* The port of the first "http://127.0.0.1:PORT" at or after offset off of file path; 0 when
 * none yet. */
static int port_in(const char *path, long off)
{
    FILE *fp = fopen(path, "r");
    char buf[8192];
    if (!fp)
        return 0;
    fseek(fp, off, SEEK_SET);
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = 0;
    fclose(fp);
    const char *u = strstr(buf, "http://127.0.0.1:");
    return u ? atoi(u + strlen("http://127.0.0.1:")) : 0;
}

int th_node_start(struct th_fleet *f, const char *id, const char *dir_reuse,
                  const char *const *extra)
{
    int idx = -1;
    for (int i = 0; i < f->nn; i++)
        if (strcmp(f->n[i].id, id) == 0 && !f->n[i].pid)
            idx = i; /* a restart */
    if (idx < 0) {
        if (f->nn >= TH_FLEET_NODES)
            return -ENOSPC;
        idx = f->nn++;
        memset(&f->n[idx], 0, sizeof(f->n[idx]));
        snprintf(f->n[idx].id, sizeof(f->n[idx].id), "%s", id);
        snprintf(f->n[idx].log, sizeof(f->n[idx].log), "%s/node-%s.log", f->dir, id);
    }
    struct th_node *n = &f->n[idx];
    if (dir_reuse)
        snprintf(n->dir, sizeof(n->dir), "%s", dir_reuse);
    else if (!n->dir[0])
        snprintf(n->dir, sizeof(n->dir), "%s/node-%s", f->dir, id);
    struct stat sb;
    long off = stat(n->log, &sb) == 0 ? (long)sb.st_size : 0;
    const char *argv[40];
    int k = 0;
    argv[k++] = f->sonde;
    argv[k++] = "serve";
    argv[k++] = "--listen";
    argv[k++] = "127.0.0.1:0";
    argv[k++] = "--data";
    argv[k++] = n->dir;
    argv[k++] = "--nats";
    argv[k++] = f->url;
    argv[k++] = "--node-id";
    argv[k++] = n->id;
    for (int e = 0; extra && extra[e] && k < 39; e++)
        argv[k++] = extra[e];
    argv[k] = NULL;
    pid_t pid = spawn(argv, n->log);
    if (pid < 0)
        return (int)pid;
    n->pid = pid;
    n->port = 0;
    for (int i = 0; i < 2000 && !n->port; i++) { /* 20 s */
        n->port = port_in(n->log, off);
        if (!n->port) {
            if (waitpid(pid, NULL, WNOHANG) == pid) {
                n->pid = 0;
                tail("node exited before it listened", n->log);
                return -ECHILD;
            }
            th_sleep_ms(10);
        }
    }
    for (int i = 0; i < 200 && n->port; i++) {
        struct th_resp r;
        int rc = th_request(n->port, "GET", "/ca", NULL, NULL, 0, 2000, &r);
        int st = r.status;
        th_resp_free(&r);
        if (rc == 0 && st != 0) /* any answer: 401 too when the node has a tenants file */
            return idx;
        th_sleep_ms(100);
    }
    tail("node not answering", n->log);
    stop_pid(pid, SIGKILL, 1000);
    n->pid = 0;
    return -ETIMEDOUT;
}

int th_node_stop(struct th_fleet *f, int i, int sig)
{
    struct th_node *n = &f->n[i];
    if (!n->pid)
        return -1;
    int st = stop_pid(n->pid, sig, 10000);
    n->pid = 0;
    return st;
}

json_t *th_node_jreq(struct th_fleet *f, int i, const char *method, const char *path,
                     const char *body, int *status)
{
    char auth[160];
    const char *headers[3] = {NULL, NULL, NULL};
    int h = 0;
    struct th_resp r;
    json_t *j = NULL;

    *status = 0;
    if (!f->n[i].port)
        return NULL;
    if (f->token[0]) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", f->token);
        headers[h++] = auth;
    }
    if (body)
        headers[h++] = "Content-Type: application/json";
    if (th_request(f->n[i].port, method, path, headers, body, body ? strlen(body) : 0, 30000, &r) !=
        0)
        return NULL;
    *status = r.status;
    if (r.body && r.len)
        j = json_loadb(r.body, r.len, 0, NULL);
    th_resp_free(&r);
    return j;
}

json_t *th_node_status(struct th_fleet *f, int i)
{
    int st = 0;
    if (!f->n[i].pid)
        return NULL;
    json_t *j = th_node_jreq(f, i, "GET", "/ca/admin/status", NULL, &st);
    if (st != 200) {
        json_decref(j);
        return NULL;
    }
    return j;
}

bool th_node_owns(struct th_fleet *f, int i, const char *key)
{
    json_t *j = th_node_status(f, i);
    json_t *own = json_object_get(json_object_get(j, "fleet"), "owned");
    bool yes = false;
    size_t k;
    json_t *o;
    json_array_foreach(own, k, o)
    {
        const char *ok = json_string_value(json_object_get(o, "key"));
        yes |= ok && strcmp(ok, key) == 0;
    }
    json_decref(j);
    return yes;
}

int64_t th_node_wait_members(struct th_fleet *f, int i, int nodes, int agents, int limit_ms)
{
    int64_t t0 = th_unix_ms();
    for (int k = 0; k < limit_ms / 50 + 1; k++) {
        json_t *j = th_node_status(f, i);
        json_t *fl = json_object_get(j, "fleet");
        bool ok = fl && (int)json_array_size(json_object_get(fl, "nodes")) == nodes &&
                  (int)json_array_size(json_object_get(fl, "agents")) == agents;
        json_decref(j);
        if (ok)
            return th_unix_ms() - t0;
        th_sleep_ms(50);
    }
    return -1;
}

/* Whether the status j says host runs key (rc 0). */
static bool runs(json_t *j, const char *host, const char *key)
{
    json_t *agents = json_object_get(json_object_get(j, "fleet"), "agents");
    size_t k;
    json_t *a;
    json_array_foreach(agents, k, a)
    {
        const char *h = json_string_value(json_object_get(a, "host"));
        if (!h || strcmp(h, host) != 0)
            continue;
        json_t *rc = json_object_get(json_object_get(json_object_get(a, "running"), key), "rc");
        return json_is_integer(rc) && json_integer_value(rc) == 0;
    }
    return false;
}

int64_t th_wait_running(struct th_fleet *f, int node, const char *key, const int *hosts, int n,
                        int limit_ms)
{
    int64_t t0 = th_unix_ms();
    for (int k = 0; k < limit_ms / 50 + 1; k++) {
        json_t *j = th_node_status(f, node);
        bool all = j != NULL;
        int count = n < 0 ? f->nh : n;
        for (int i = 0; i < count && all; i++)
            all = runs(j, f->h[hosts && n >= 0 ? hosts[i] : i].name, key);
        json_decref(j);
        if (all)
            return th_unix_ms() - t0;
        th_sleep_ms(50);
    }
    return -1;
}

void th_fleet_dump(const struct th_fleet *f)
{
    for (int i = 0; i < f->nn; i++)
        tail(f->n[i].id, f->n[i].log);
    for (int i = 0; i < f->nh; i++)
        tail(f->h[i].name, f->h[i].log);
}
