/*
 * Real nats-server processes for the fleet tests: one server, or a three-server JetStream
 * cluster, on free loopback ports, each with its own store directory and log file under a fresh
 * directory of the test's out dir (t_outdir()/nats-XXXXXX). Tests kill, restart, stop and start
 * them by PID to see what the fleet does when its bus fails; nothing here is a mock.
 *
 *   struct th_nats n;
 *   if (th_nats_start(&n, 3, 0) != 0) ...;   // message on stderr, logs' paths included
 *   connect to th_nats_url(&n) ...           // "nats://127.0.0.1:P1,nats://127.0.0.1:P2,..."
 *   th_nats_kill(&n, 0, SIGKILL); th_nats_restart(&n, 0);
 *   th_nats_free(&n);
 *
 * Each server is started from its own configuration file (dir/sN.conf, kept for a post-mortem):
 * listen 127.0.0.1:P, a monitoring port (plain HTTP on 127.0.0.1), JetStream with store
 * dir/sN/, and for a cluster the cluster block (name "sonde-test", routes to the other two).
 * The flags add client authentication: a user and password, a token, or TLS with a CA of the
 * test's own and a required client certificate (made at start with Debian's openssl CLI: a CA, a
 * server certificate for IP:127.0.0.1 and a client certificate, in dir/tls/), or a user nkey
 * (an Ed25519 key made by openssl, written in the nkey encoding: no nsc or nk needed), or
 * operator mode (TH_NATS_CREDS: the server trusts an operator JWT; its MEMORY resolver holds
 * two account JWTs, the system account's and one with JetStream and no limits; a user that
 * account signed has a .creds file, n->creds. The Ed25519 keys are made by openssl and the JWTs
 * signed with `openssl pkeyutl -rawin`, no nsc; dir/operator.conf has the server's part and
 * dir/user.creds the user's. Another server's n->creds is a user the first one refuses.)
 *
 * Starting waits (bounded: TH_NATS_START_MS) until every server answers /healthz and, for a
 * cluster, until JetStream has a meta leader (/jsz): a test can create streams at once. Every
 * server gets a parent-death signal (SIGKILL) tied to the thread that started it, so a crashed
 * test leaves no server behind. Every wait is bounded in count and time.
 */
#ifndef SN_TESTS_NATS_H
#define SN_TESTS_NATS_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#define TH_NATS_MAX      3
/* th_nats_start, th_nats_start_all and th_nats_restart, in all. A whole 2.9 cluster started
 * again takes 5-25 s here before every server is healthy again (Raft elections of the meta group
 * and of each stream); a fresh cluster about 0.5 s; one server restarted 2-8 s. */
#define TH_NATS_START_MS 60000

/* Flags of th_nats_start (at most one kind of authentication). */
#define TH_NATS_USERPASS 0x1u  /* user TH_NATS_USER, password TH_NATS_PASSWORD */
#define TH_NATS_TOKEN    0x2u  /* token TH_NATS_TOKEN_VALUE */
#define TH_NATS_TLS      0x4u  /* TLS, client certificate required (n->ca, n->cert, n->key) */
#define TH_NATS_NKEY     0x8u  /* a user nkey (n->nkey: its seed and public key) */
#define TH_NATS_CREDS    0x10u /* operator mode: a user's .creds file (n->creds) */

#define TH_NATS_USER        "sonde"
#define TH_NATS_PASSWORD    "s0nde-pass"
#define TH_NATS_TOKEN_VALUE "s0nde-token"

struct th_nats_server {
    pid_t pid;        /* 0 when not running */
    int port;         /* client port on 127.0.0.1 */
    int cluster_port; /* route port (a cluster only; 0 otherwise) */
    int monitor_port; /* HTTP monitoring (/healthz, /jsz, /varz) */
    char conf[320];   /* its configuration file */
    char log[320];    /* its log file */
    char store[320];  /* its JetStream store directory */
};

struct th_nats {
    int n; /* servers: 1 or 3 */
    unsigned flags;
    char dir[256]; /* the fresh directory (absolute), kept after th_nats_free */
    char url[512]; /* th_nats_url() */
    char ca[320];  /* TLS only: the CA, the client certificate and its key (PEM files) */
    char cert[320];
    char key[320];
    char nkey[320];         /* TH_NATS_NKEY: a file with the seed (SU...) and public key (U...) */
    char nkey_pub[64];      /* that public key */
    char creds[320];        /* TH_NATS_CREDS: the user's .creds file (its JWT and nkey seed) */
    char creds_account[64]; /* the public key of the account that signed that user */
    struct th_nats_server s[TH_NATS_MAX];
};

/* Starts nservers (1, or 3 for a JetStream cluster) servers and waits until they are ready.
 * Returns 0, or -errno with a message on stderr (the servers' log paths and tails included);
 * on error nothing is left running (the directory is kept). */
int th_nats_start(struct th_nats *n, int nservers, unsigned flags);
/* The servers' client URLs, comma-separated ("tls://..." with TH_NATS_TLS). */
const char *th_nats_url(const struct th_nats *n);
/* The client URL of server i alone. */
const char *th_nats_url_of(const struct th_nats *n, int i, char *out, size_t len);
/* Sends sig to server i and, for SIGKILL/SIGTERM/SIGINT, waits (bounded) until it is gone.
 * 0 or -errno (-ECHILD: not running). */
int th_nats_kill(struct th_nats *n, int i, int sig);
/* Starts server i again (same ports, configuration and store); waits until it answers
 * /healthz (and, in a cluster, until JetStream has a meta leader again). 0 or -errno. */
int th_nats_restart(struct th_nats *n, int i);
/* Stops every running server (SIGTERM, then SIGKILL) / starts every stopped one and waits as
 * th_nats_start does. 0 or -errno. */
int th_nats_stop_all(struct th_nats *n);
int th_nats_start_all(struct th_nats *n);
/* Whether JetStream has a meta leader now, as server i's /jsz says (a single server: whether
 * JetStream is enabled and /healthz is ok). */
int th_nats_js_ready(const struct th_nats *n, int i);
/* Prints the paths (and tails) of the servers' logs on stderr: for a test that failed. */
void th_nats_dump(const struct th_nats *n);
/* Stops by PID whatever is still running; keeps the directory. n may be zeroed; safe twice. */
void th_nats_free(struct th_nats *n);

/* The sonde binary a fleet test runs: $SN_SONDE (as CTest runs it), else argv[1], which is then
 * taken out of the arguments so that the case filter follows. NULL, with a usage line on
 * stderr, when neither gives one. */
const char *th_sonde_binary(int *argc, char ***argv);

#endif
