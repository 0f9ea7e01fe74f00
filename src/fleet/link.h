/*
 * The link to NATS: one connection (cnats, Debian's libnats-dev) with its JetStream context,
 * made from the options every fleet command shares (`sonde agent --nats`, `sonde serve
 * --nats`, `sonde ctl`): the servers, the credentials (user and password, a token, an nkey
 * seed file or a .creds file) and TLS (a CA, a client certificate). It reconnects forever,
 * telling its owner when it goes down and comes back, and it creates what the fleet needs on
 * JetStream when missing (the frames stream and the key-value buckets, fleet/names.h), with
 * their replicas, file storage and limits, so that the first node of a new cluster sets it up
 * and the others find it.
 *
 * Thread safety: cnats's connection and JetStream context are safe from any thread; so are
 * sn_link_up() and sn_link_stats(). Open and close from one thread.
 */
#ifndef SN_FLEET_LINK_H
#define SN_FLEET_LINK_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The options, as the command line gives them (strings owned by the struct: sn_link_opts_fini). */
struct sn_link_opts {
    char *urls;      /* --nats URL[,URL...]: "nats://127.0.0.1:4222,tls://..." */
    char *user;      /* --nats-user (with --nats-password) */
    char *password;  /* --nats-password */
    char *token;     /* --nats-token */
    char *creds;     /* --nats-creds FILE: a JWT and nkey seed (.creds) */
    char *nkey_seed; /* --nats-nkey FILE: a user nkey seed (SU...) and its public key (U...),
                        one a line, as `nk -gen user -pubout` writes them */
    char *tls_ca;    /* --nats-tls-ca FILE: the CA to trust (implies TLS) */
    char *tls_cert;  /* --nats-tls-cert FILE, with --nats-tls-key FILE: a client certificate */
    char *tls_key;
    char *name;            /* the connection's name as the servers show it (default "sonde") */
    int replicas;          /* --nats-replicas N: of the stream and buckets it creates (0: as many as
                              the cluster has servers, at most 3) */
    int64_t frames_keep_s; /* how long the frames stream keeps frames (default 2 days) */
    int64_t dedup_s;       /* its duplicate window (default 180 s: the agent's buffer + 60 s) */
};

/* The options above as getopt_long entries, each with has_arg and val v: a command adds
 * SN_LINK_LONGOPTS(O_LINK) to its table and hands longopts[index].name and optarg to
 * sn_link_opt(). */
#define SN_LINK_LONGOPTS(v)                                                                        \
    {"nats", 1, NULL, (v)}, {"nats-user", 1, NULL, (v)}, {"nats-password", 1, NULL, (v)},          \
        {"nats-token", 1, NULL, (v)}, {"nats-creds", 1, NULL, (v)}, {"nats-nkey", 1, NULL, (v)},   \
        {"nats-tls-ca", 1, NULL, (v)}, {"nats-tls-cert", 1, NULL, (v)},                            \
        {"nats-tls-key", 1, NULL, (v)},                                                            \
    {                                                                                              \
        "nats-replicas", 1, NULL, (v)                                                              \
    }

/* The usage lines of the options above but --nats, for each command's --help. */
extern const char sn_link_usage[];

/* If name is one of the options above (without its value), stores value (copied) and returns
 * 1; returns 0 when name is not a link option; -EINVAL with why when value is bad (a number
 * out of range, a file that cannot be read), -ENOMEM. */
int sn_link_opt(struct sn_link_opts *o, const char *name, const char *value, char *why,
                size_t whylen);
/* sn_link_opt() for a command's option loop: a refusal is printed on stderr as "CMD: why".
 * Returns 1 (stored), 0 (not a link option) or the -errno (printed). */
int sn_link_cli_opt(struct sn_link_opts *o, const char *cmd, const char *name, const char *value);
/* Checks the whole: --nats given, a password with a user, a key with a certificate, one kind
 * of credentials. 0 or -EINVAL with why. */
int sn_link_opts_check(const struct sn_link_opts *o, char *why, size_t whylen);
void sn_link_opts_fini(struct sn_link_opts *o);

struct sn_link; /* opaque */

/* What the owner hears, from cnats's threads (never with a lock of the link held). */
struct sn_link_events {
    void (*down)(void *arg); /* the connection was lost: cnats reconnects */
    void (*up)(void *arg);   /* connected again (not called for the first connect) */
    void *arg;
};

/*
 * Connects (waiting up to timeout_ms for a first server; it then keeps reconnecting forever,
 * every 250 ms, buffering up to 8 MiB of publishes meanwhile) and gets the JetStream context.
 * timeout_ms < 0: returns at once with the link down when no server answers, and keeps trying
 * in the background (cnats's retry on failed connect), calling ev->up once connected: an
 * agent starts before its broker. ev may be NULL. Returns 0 with *out, or -EHOSTUNREACH (no server
 * answered in time), -EACCES (authentication or TLS refused), -EINVAL, -ENOMEM, with why.
 */
int sn_link_open(const struct sn_link_opts *o, const struct sn_link_events *ev, int timeout_ms,
                 struct sn_link **out, char *why, size_t whylen);
/* Creates the frames stream and the buckets when missing (an existing one is kept as it is,
 * except that a frames stream with a shorter age or duplicate window is updated). Retries for
 * up to timeout_ms while JetStream has no leader yet (a cluster just started). 0 or -errno
 * with why. */
int sn_link_ensure(struct sn_link *l, int timeout_ms, char *why, size_t whylen);
/* Another stream of the fleet's (the nodes' rollup streams): created when missing, with the
 * link's replicas, file storage, max_age_ns and per_subject messages kept per subject (0: no
 * limit); an existing one keeps its settings but a shorter age, which is raised. 0 or -errno
 * with why. */
int sn_link_ensure_stream(struct sn_link *l, const char *name, const char *subject,
                          int64_t max_age_ns, int64_t per_subject, char *why, size_t whylen);
/* sn_link_ensure_stream() with a cap on the stream's bytes (the oldest messages go first) and
 * no per-subject limit: the hosts' snapshot archives (fleet/fleet_rec.h). */
int sn_link_ensure_stream_capped(struct sn_link *l, const char *name, const char *subject,
                                 int64_t max_age_ns, int64_t max_bytes, char *why, size_t whylen);
/* The bucket (fleet/names.h: SN_FLEET_KV_DEFS, SN_FLEET_KV_MEMBERS), bound at ensure; NULL
 * before it. Owned by the link. */
kvStore *sn_link_kv(struct sn_link *l, const char *bucket);

natsConnection *sn_link_conn(struct sn_link *l);
jsCtx *sn_link_js(struct sn_link *l);
/* Whether the connection is up now. */
bool sn_link_up(struct sn_link *l);
/* The replicas of the fleet's stream and buckets (after ensure): an existing frames stream's,
 * else what this link created them with. */
int sn_link_replicas(struct sn_link *l);

struct sn_link_stats {
    uint64_t disconnects, reconnects;
    int64_t down_since_ms; /* Unix ms when it went down; 0 while up */
    char server[128];      /* the URL of the server connected to ("" when down) */
};
void sn_link_stats(struct sn_link *l, struct sn_link_stats *out);

/* Flushes (up to 2 s) and closes the connection, and returns once cnats's last callback has
 * run (or after 2 s): the link's objects stay, every call through them then fails as closed
 * (NATS_CONNECTION_CLOSED), so threads still holding the link can finish. NULL is fine; a
 * second call does nothing. */
void sn_link_shut(struct sn_link *l);
/* Shuts (when not yet) and frees; NULL is fine. Nothing may use l then. */
void sn_link_close(struct sn_link *l);

/* The cnats status as a negative errno, for callers that use cnats directly: NATS_OK -> 0,
 * NATS_TIMEOUT -> -ETIMEDOUT, NATS_NOT_FOUND -> -ENOENT, NATS_CONNECTION_CLOSED and
 * NATS_CONNECTION_DISCONNECTED -> -ENOTCONN, NATS_NO_MEMORY -> -ENOMEM, else -EIO. */
int sn_link_err(natsStatus s);

#endif
