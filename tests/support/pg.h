/*
 * A private PostgreSQL 15 server for one test: the target of the agent tests of USDT
 * instrumentation (postgresql:query__start, ...). It listens on 127.0.0.1 and a free port only,
 * with its own data directory under /tmp, and never touches the package's default cluster.
 *
 *   struct sn_pg pg;
 *   if (sn_pg_start(&pg) != 0) ...;          // message on stderr
 *   sn_pg_exec(&pg, "SELECT 1;");            // 0: every statement ran
 *   sn_pg_stop(&pg);
 *
 * The server runs as user postgres (it refuses root) when the test runs as root, as the
 * test's user otherwise; pg.pid is the postmaster itself (an exec of sn_pg_binary()), so
 * uprobes can be attached to it and it can be signalled directly. Queries run in backends,
 * children of pg.pid: attach to the binary, not to that PID alone. If the thread that called
 * sn_pg_start() dies, the server gets SIGQUIT (parent-death signal): a crashed test leaves no
 * server behind (only its directory). Every wait is bounded in count and time.
 */
#ifndef SN_TESTS_PG_H
#define SN_TESTS_PG_H

#include <sys/types.h>

/* where Debian's postgresql-15 installs its programs */
#define SN_PG_BINDIR "/usr/lib/postgresql/15/bin"

struct sn_pg {
    pid_t pid;     /* the postmaster; 0 when not running */
    int port;      /* TCP port on 127.0.0.1 */
    char dir[256]; /* the temporary directory: data/ (the cluster), logs, the Unix socket */
};

/* Creates a fresh directory /tmp/sn-pg-XXXXXX (owned by postgres), initdb's a cluster (trust
 * authentication, user postgres) into dir/data, starts sn_pg_binary() on it with
 * listen_addresses=127.0.0.1, a free port, the Unix socket in dir and durability turned off
 * (fsync=off, ...), and waits until it accepts connections (at most ~30 s in all). The server
 * log is dir/server.log; on failure its tail is printed. Returns 0, or -1 with a message on
 * stderr (and nothing left behind: pg is then as after sn_pg_stop). */
int sn_pg_start(struct sn_pg *pg);

/* Runs `sql` with psql -X -q -w -h 127.0.0.1 -p port -U postgres -d postgres
 * -v ON_ERROR_STOP=1 -f <temp file in dir>: statements separated by ";\n" run as separate
 * queries, and the first that fails stops the script. psql's output (query results included)
 * goes to a log in dir, printed on failure, then removed. Returns psql's exit status (0: all
 * ran; 3: a statement failed), or -1 if the server is not running, psql could not run or it
 * took more than 30 s. */
int sn_pg_exec(const struct sn_pg *pg, const char *sql);

/* Stops the server by its PID (SIGINT: fast shutdown; SIGKILL if it is still there after
 * 10 s), reaps it and removes the directory. Safe to call twice, and after a failed start. */
void sn_pg_stop(struct sn_pg *pg);

/* The server binary's path (SN_PG_BINDIR "/postgres"), for attaching uprobes. */
const char *sn_pg_binary(void);

#endif
