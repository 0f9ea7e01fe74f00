/*
 * Simulated hosts and serve nodes for the fleet tests and benchmarks: a whole fleet on this
 * machine, out of real processes (needs root, as CI runs it), over the NATS servers of
 * support/nats.h.
 *
 *   - a host is a cgroup v2 of its own (<cgroup2 mount>/sonde-th-<pid>-<name>), a `sonde agent
 *     --nats URL --hostname NAME --cgroup /sonde-th-<pid>-<name>` process counting only that
 *     cgroup, and workloads run inside it with known numbers of getppid calls: a burst of
 *     exactly N (th_host_calls) or a steady one (th_host_steady_start/stop: about `per_tick`
 *     calls every 5 ms until stopped, the exact number made returned at the stop);
 *   - a node is a `sonde serve --listen 127.0.0.1:0 --data DIR --nats URL --node-id ID`
 *     process, started by our own launcher (stdout and stderr to DIR.log, not the test's
 *     terminal; the port read from its first line), so that it can be killed with any signal
 *     and started again on the same data directory.
 *
 *   static struct th_fleet f;                 // static: the clean-up at exit holds &f
 *   th_fleet_init(&f, sonde, th_nats_url(&nats));
 *   int a = th_host_add(&f, "h1");            // the cgroup
 *   th_host_agent_start(&f, a, NULL);          // the agent
 *   int n = th_node_start(&f, "n1", NULL, NULL);
 *   ... th_host_calls(&f, a, NULL, 1000); f.n[n].port ...
 *   th_fleet_free(&f);                          // everything stopped, cgroups removed
 *
 * Every child gets a parent-death signal (SIGKILL), and every fleet not yet freed is freed at
 * exit (atexit), so that a case that stops early (T_REQUIRE) or a test that exits leaves no
 * process and no cgroup behind; th_fleet_init also removes the cgroups of earlier runs whose
 * process is gone (a test killed by its timeout). Processes are stopped by their PID only.
 * Every wait is bounded in count and time. Directories (data, logs) are kept under
 * t_outdir()/fleet-XXXXXX for a post-mortem.
 */
#ifndef SN_TESTS_FLEET_HOSTS_H
#define SN_TESTS_FLEET_HOSTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define TH_FLEET_HOSTS 8
#define TH_FLEET_NODES 6

struct th_host {
    char name[64];
    char cgroup[160]; /* relative to the cgroup2 mount ("/sonde-th-123-h1"); "" when none */
    pid_t agent;      /* 0 when not running */
    char log[384];    /* the agent's stdout and stderr */
    pid_t work;       /* the steady workload, 0 when none */
    int work_stop;    /* its control pipe (closed: stop) */
    int work_count;   /* where it writes the number of calls it made */
};

struct th_node {
    char id[64];
    pid_t pid;     /* 0 when not running */
    int port;      /* its API on 127.0.0.1 (kept after a stop) */
    char dir[384]; /* its data directory (kept) */
    char log[400]; /* its stdout and stderr (appended to on a restart) */
};

struct th_fleet {
    const char *sonde;
    char url[512]; /* NATS servers, as --nats takes them */
    char dir[256]; /* t_outdir()/fleet-XXXXXX */
    struct th_host h[TH_FLEET_HOSTS];
    int nh;
    struct th_node n[TH_FLEET_NODES];
    int nn;
    char token[128]; /* the operator's token when the nodes run with --tenants ("": none) */
    bool live;       /* registered for the clean-up at exit */
};

/* The cgroup2 mount point ("/sys/fs/cgroup" or "/sys/fs/cgroup/unified"), NULL when none. */
const char *th_cgroup_root(void);

/* An empty fleet over the NATS servers url (comma-separated); f must live until it is freed
 * or the process exits (static storage). 0, or -errno with a message on stderr. */
int th_fleet_init(struct th_fleet *f, const char *sonde, const char *url);
/* Stops every workload, agent (SIGTERM, then SIGKILL) and node (SIGTERM, then SIGKILL) by PID
 * and removes the hosts' cgroups and their descendants (killing what still runs in them). Safe
 * twice; f may be zeroed. */
void th_fleet_free(struct th_fleet *f);

/* A host named name (letters, digits, '-'): its cgroup made. Its index, or -errno. */
int th_host_add(struct th_fleet *f, const char *name);
/* A host without a cgroup: its agent sees the whole machine (no --cgroup); no workloads. */
int th_host_add_uncontained(struct th_fleet *f, const char *name);
/* Starts host i's agent, with the extra arguments extra (NULL-terminated, may be NULL).
 * Does not wait for it (th_host_wait_running does). 0 or -errno. */
int th_host_agent_start(struct th_fleet *f, int i, const char *const *extra);
/* Stops host i's agent with sig, waiting up to 10 s (then SIGKILL). Its wait status, or -1. */
int th_host_agent_stop(struct th_fleet *f, int i, int sig);
/* Makes host i's descendant cgroup sub (a relative path: "inner", "a/b"). An agent sees a
 * cgroup made after it attached at its next collection (once a second): make descendants
 * before their workloads. 0 or -errno. */
int th_host_subgroup(struct th_fleet *f, int i, const char *sub);
/* Makes exactly calls getppid calls in host i's cgroup, or in its descendant sub (a relative
 * path, made when missing; NULL: the host's own), from a child that joins it first, and waits
 * for them (bounded: 60 s). 0 or -errno. */
int th_host_calls(struct th_fleet *f, int i, const char *sub, long calls);
/* Starts a steady workload in host i's cgroup: per_tick getppid calls every 5 ms. 0 or -errno. */
int th_host_steady_start(struct th_fleet *f, int i, int per_tick);
/* Stops it: the number of calls it made (all of them in the cgroup), or -1. */
int64_t th_host_steady_stop(struct th_fleet *f, int i);

/* Starts a node with id (fresh data directory f->dir/<id>-N, or dir_reuse) and the extra
 * arguments extra (NULL-terminated, may be NULL); waits (bounded: 20 s) until its /ca answers.
 * Its index, or -errno (with the tail of its log on stderr). */
int th_node_start(struct th_fleet *f, const char *id, const char *dir_reuse,
                  const char *const *extra);
/* Stops node i with sig (SIGKILL: at once, nothing written; SIGTERM: cleanly, then SIGKILL
 * after 10 s) and reaps it. Its wait status, or -1 when it was not running. */
int th_node_stop(struct th_fleet *f, int i, int sig);
/* A request to node i with a JSON body (NULL: none) and f->token (when set) as a bearer
 * token: the reply as JSON (NULL when it is not JSON), *status its status (0: no reply).
 * A 30 s bound. */
json_t *th_node_jreq(struct th_fleet *f, int i, const char *method, const char *path,
                     const char *body, int *status);
/* Node i's GET /ca/admin/status (NULL: no answer). */
json_t *th_node_status(struct th_fleet *f, int i);
/* Whether node i owns instrumentation key now (its status' "fleet" "owned"). */
bool th_node_owns(struct th_fleet *f, int i, const char *key);
/* Milliseconds until node i hears `nodes` live nodes and `agents` live agents (its status'
 * "fleet"), or -1 after limit_ms. */
int64_t th_node_wait_members(struct th_fleet *f, int i, int nodes, int agents, int limit_ms);
/* Milliseconds until every listed agent runs key (rc 0), as node i hears their heartbeats, or
 * -1 after limit_ms. hosts: indexes into f->h, n of them (n < 0: every host). */
int64_t th_wait_running(struct th_fleet *f, int node, const char *key, const int *hosts, int n,
                        int limit_ms);
/* Prints the paths and tails of the nodes' and agents' logs on stderr (a failed case). */
void th_fleet_dump(const struct th_fleet *f);

/* Wall-clock milliseconds (CLOCK_REALTIME: the seconds of frames are Unix seconds). */
int64_t th_unix_ms(void);

#endif
