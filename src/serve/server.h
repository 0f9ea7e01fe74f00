/*
 * `sonde serve`: the state of one server process, shared by its parts. The API's handlers
 * (src/api) read and change the instrumentations' definitions through the calls below, and
 * their data through the aggregator (agg/agg.h, s->agg), which the collector (the local agent)
 * and the ingest endpoint feed; a tick thread expires slots, reaps idle instrumentations and
 * saves persisted data once a minute.
 *
 * Locking: the server's reader-writer lock guards the instrumentations' definitions (the list,
 * next ids, the definitions file) and nothing else; the calls below take it themselves and
 * hand out copies. Data has its own locks, per instrumentation, inside the aggregator: a frame
 * of any size on one instrumentation never holds up requests on another, and no request waits
 * for a frame to be merged. Lock order: the server's lock, then the aggregator's. Counters are
 * atomics, outside any lock.
 */
#ifndef SN_SERVE_SERVER_H
#define SN_SERVE_SERVER_H

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "agent/definition.h"
#include "agg/agg.h"
#include "core/clock.h"
#include "agg/dataset.h"
#include "http/httpd.h"
#include "serve/tenants.h"
#include "store/store.h"
#include "trace/ingest.h"
#include "trace/span_store.h"

struct sn_span_metrics;
struct sn_tail;
struct sn_recorder;
struct sn_triggers;
struct sn_relay;
struct sn_rec_drain;
struct sn_live_rec;
struct sn_sampling_cfg;

#define SN_SCOPE_MAX      64
#define SN_TENANT_QUOTA   10     /* live instrumentations per tenant (CA) */
#define SN_IDLE_MAX_MAX   604800 /* a week */
#define SN_DEFAULT_IDLE   3600
#define SN_DEFAULT_RETAIN 600

/* One instrumentation as the server keeps it. */
struct sn_instn {
    char scope[SN_SCOPE_MAX]; /* "" for the operator's (global) scope, else the tenant */
    uint64_t id;
    char key[SN_SCOPE_MAX + 24]; /* "N" or "tenant/N": frame ids and data file names */
    json_t *predicate;           /* as given (an object); the kernel's adds the tenant scope */
    json_t *decomposition;       /* array of field names */
    const struct sn_metric_def *metric;
    const struct sn_catalog_field *keyf, *numf; /* discrete and numeric decompositions */
    enum sn_arity arity;
    uint32_t granularity, retention, idle_max;
    bool persist;
    int64_t crtime_ms;
    _Atomic int64_t last_access; /* seconds; CA's idle reaping */
    struct sn_dataset *ds;       /* a reference, for its immutable options (sn_ds_opts()) and the
                                  * start-up load; its data is read and fed through s->agg only.
                                  * NULL in copies (sn_server_get()) */
};

struct sn_collector;
struct sn_fleet;
struct sn_link_opts;
struct sn_bus;
struct sn_bus_sub;
struct sn_http;

/* Counters for /metrics; each an atomic, bumped where it happens. What happens to frames in
 * the aggregator is counted there (sn_agg_counters()). */
struct sn_counters {
    _Atomic uint64_t frames_local;       /* frames added, from the local agent */
    _Atomic uint64_t frames_invalid;     /* ingest frames refused as malformed */
    _Atomic uint64_t frames_mismatch;    /* ingest bodies refused for a frame of another arity
                                          * (frames dropped so: the aggregator's count) */
    _Atomic uint64_t reaped;             /* instrumentations deleted for idleness */
    _Atomic uint64_t renders, render_ns; /* heatmap images and the time drawing them */
    _Atomic uint64_t raw_requests, raw_ns;
    _Atomic uint64_t long_polls;    /* value requests that waited, each counted once */
    _Atomic uint64_t save_failures; /* writes of the definitions that failed */
    /* spans (api/trace.c) */
    struct sn_span_ingest_counters span_in; /* OTLP and Zipkin ingest (trace/ingest.h) */
    _Atomic uint64_t span_store_errors;     /* kept spans the span store could not take */
};

struct sn_server {
    pthread_rwlock_t lock;   /* the definitions: insts, n, next_ids, defs_unsaved */
    struct sn_instn **insts; /* guarded by lock */
    size_t n, cap;
    json_t *next_ids;  /* {scope: next id} (guarded by lock) */
    bool defs_unsaved; /* the definitions file is behind memory: a save that could not be
                        * undone failed (guarded by lock; the tick saves again) */
    char datadir[512];
    char uidir[512]; /* "": the UI compiled in; else serve the UI's files from this directory */
    char host[256];
    struct sn_tenants *tenants;     /* NULL: no tenants configured (loopback is open) */
    struct sn_collector *collector; /* NULL when the local agent is off */
    struct sn_xforms *xforms;       /* transformations of keys (serve/transform.h) */
    struct sn_http *http;
    struct sn_agg *agg;               /* every instrumentation's data, by key */
    struct sn_store *store;           /* the definitions and every instrumentation's history */
    struct sn_span_store *spans;      /* spans, in the store's environment */
    struct sn_span_metrics *spanm;    /* trace.spans instrumentations (serve/span_metrics.h) */
    struct sn_instn *span_base;       /* their base, not listed (serve/span_base.h); NULL: none */
    struct sn_tail *tail;             /* sampling: the tail sampler and its configuration */
    struct sn_sampling_cfg *sampling; /* the configuration (guarded by lock) */
    struct sn_http *http_otlp, *http_zipkin; /* --otlp-listen, --zipkin-listen (NULL: off) */
    struct sn_bus *bus; /* between the sources and the aggregator (serve/flow.h) */
    struct sn_bus_sub *bus_frames, *bus_status; /* the aggregator's subscriptions */
    struct sn_fleet *fleet; /* NULL: one host; else this node's part in a fleet (serve/fleet.h) */
    bool fleet_mode;        /* --nats: memory comes from the stream, not the store */
    struct sn_counters c;
    int64_t started;
    uint32_t key_cap; /* --key-cap: keys a dataset's slot keeps before "other"; 0: no cap */
    struct sn_recorder *recorder; /* the flight recorder's sessions (rec/recorder.h) */
    struct sn_triggers *triggers; /* their triggers (serve/triggers.h) */
    struct sn_relay *relay;       /* --live-listen: the live relay (live/relay.h), or NULL */
    struct sn_rec_drain *drain;   /* its drain (rec/drain.h) and publisher (live/live_rec.h) */
    struct sn_live_rec *live;
};

/* What a server is opened with (cli/cmd_serve.c parses it from the command line). */
struct sn_server_opts {
    const char *datadir;             /* the data directory; it and its data/ exist */
    const char *uidir;               /* NULL or "": the UI compiled in; else its files' directory */
    struct sn_tenants *tenants;      /* NULL: none (loopback only); the server's from open on,
                                      * even when open fails */
    uint32_t key_cap;                /* --key-cap: keys a slot keeps before "other" */
    struct sn_tiers tiers;           /* --tiers */
    uint64_t store_max_bytes;        /* --store-max-bytes: 0 none */
    uint32_t rollup_keys;            /* --rollup-keys: keys a rollup record keeps (0: default) */
    int64_t trace_retention;         /* --trace-retention (s; 0: the span store's default) */
    uint64_t trace_max_bytes;        /* --trace-max-bytes: 0 none */
    uint32_t trace_queue;            /* --trace-queue: requests waiting to be written (0: 256) */
    const char *otlp_listen;         /* --otlp-listen ADDR: OTLP/HTTP alone there (NULL: off) */
    const char *zipkin_listen;       /* --zipkin-listen ADDR: Zipkin's API alone there */
    const char *live_addr;           /* --live-listen: the live relay's IPv4 address (NULL: off) */
    uint16_t live_port;              /* its port (0: a free one, logged) */
    uint32_t live_period_ms;         /* --live-period: the drain's flush period (0: 100 ms) */
    bool agent;                      /* run the local agent */
    bool trace_self;                 /* let the local agent count this process's events */
    const struct sn_link_opts *nats; /* --nats: a node of a fleet (NULL: one host) */
    const char *node_id, *zone;      /* --node-id, --zone (a fleet's) */
    const char *advertise;           /* --advertise URL: where other nodes reach this API */
    struct sn_http_opts http;        /* listen, threads, limits (the handler is the API's) */
};

/*
 * The server's life. Open restores the definitions and persisted data of the data directory
 * (sn_server_load_defs()), starts the local agent (logging why when it cannot) and runs every
 * instrumentation there, starts the transformations and the HTTP API, and logs what it
 * serves. Returns 0 with *out, or (nothing left running, *out NULL, the final save made as at
 * a close): -EINVAL the definitions file is unreadable, -EADDRINUSE the API cannot listen,
 * -ENOMEM, or the -errno of a copy of refused definitions that cannot be kept.
 */
int sn_server_open(const struct sn_server_opts *o, struct sn_server **out);
/* The port the API listens on. */
int sn_server_port(const struct sn_server *s);
/* Runs the once-a-second tick (sn_server_tick(), saving persisted data once a minute) until
 * SIGINT or SIGTERM arrives; the caller blocked the signals of stop before open (every thread
 * then inherits the mask). Returns the signal. */
int sn_server_run(struct sn_server *s, const sigset_t *stop);
/* Writes the server's state to the log (SIGUSR1): instrumentations and who owns them,
 * sources, the store's queue, the fleet's members and consumers. */
void sn_server_dump(struct sn_server *s);
/* Stops the local agent, then the API, and makes the final save (sn_server_save_final()),
 * then frees everything; NULL is fine. Returns 0, or the final save's first -errno (logged:
 * something acknowledged may be lost, and the process should exit non-zero). */
int sn_server_close(struct sn_server *s);

/* The instrumentation of scope with id, or NULL. Call with the lock held. */
struct sn_instn *sn_server_find(struct sn_server *s, const char *scope, uint64_t id);
/* By frame id: "N" (global) or "tenant/N". */
struct sn_instn *sn_server_find_key(struct sn_server *s, const char *key);
/* Live instrumentations in scope. Lock held. */
size_t sn_server_count(struct sn_server *s, const char *scope);

/*
 * Durability: a create, change or delete is answered only once the definitions file holds it.
 * When the file cannot be written (a full disk), the change is undone in memory too and the
 * request fails, so that what a restart restores is what was acknowledged.
 */

/* Adds in with the next id of its scope (in->id), saves the definitions, and asks the local
 * agent to run it. Returns 0 (the server owns in from then on), or with why (in is then not
 * in the server, nothing changed, and in is still the caller's): -EDQUOT a tenant's quota,
 * -EOVERFLOW the scope's ids are used up (SN_INSTN_ID_MAX), -ENOSPC the definitions file
 * cannot be written for want of space (ENOSPC, EDQUOT), -EIO it cannot be written for another
 * reason, -EINVAL the local agent cannot run it, -ENOMEM. Takes the lock itself. */
int sn_server_add(struct sn_server *s, struct sn_instn *in, char *why, size_t whylen);
/* Removes and frees the instrumentation once the definitions file no longer holds it (then
 * stops the local agent's and deletes its data file). Returns 0, -ENOENT, or -ENOSPC / -EIO
 * with why when the file cannot be written (the instrumentation is kept, unchanged). Takes
 * the lock itself. */
int sn_server_remove(struct sn_server *s, const char *scope, uint64_t id, char *why, size_t whylen);

/*
 * Copies for the API, taken under the lock (which these take themselves): each is the
 * caller's (sn_instn_free()), with its own predicate and decomposition and no dataset.
 */
/* The instrumentation of scope with id; its last access set to now when touch. NULL when there
 * is none (or out of memory). */
struct sn_instn *sn_server_get(struct sn_server *s, const char *scope, uint64_t id, bool touch);
/* The instrumentations of scope (NULL: every scope), oldest first, as a new array of *n copies
 * (free() it, and each with sn_instn_free()). NULL when out of memory. */
struct sn_instn **sn_server_list(struct sn_server *s, const char *scope, size_t *n);
/* How many instrumentations there are, and whether the definitions file is behind memory. */
void sn_server_state(struct sn_server *s, size_t *n, bool *defs_unsaved);
/*
 * A change (PUT) of the instrumentation of scope with id: the properties of p (borrowed) that
 * may change (sn_instn_set_props()) are saved, then applied; *out (when not NULL) receives a
 * copy as changed. Returns 0, or with why: -ENOENT, -EINVAL (CA's message), -ENOSPC / -EIO
 * when the definitions file cannot be written (nothing changed), -ENOMEM when the dataset's
 * retention cannot change ("cannot change the retention: ...": the old properties are kept).
 */
int sn_server_change(struct sn_server *s, const char *scope, uint64_t id, const json_t *p,
                     struct sn_instn **out, char *why, size_t whylen);
/* Whether this host's agent runs instrumentation key (per-source status, agg/agg.h). */
bool sn_server_local(struct sn_server *s, const char *key);
/* Writes the definitions into the store (one transaction: whole or not at all) with the write
 * lock held.
 * Returns 0 or -errno; logs a failure once (and the first success after one), counts it, and
 * keeps defs_unsaved up to date. A caller that cannot undo its change leaves it to the tick. */
int sn_server_save_defs(struct sn_server *s);
/*
 * A fleet's definitions (serve/fleet.c), applied on every node as the bucket changes:
 * adopt takes a definition as sn_instn_def_json() writes it: a new instrumentation (returns
 * 1), or the changeable properties of a known one (0); -EINVAL / -ENOMEM with why. Forget
 * removes key with its data, telling no source (the bucket told them). Reset replaces key's
 * memory with an empty dataset (an owner about to rebuild it from the stream, or a node that
 * no longer owns it). Each takes the lock itself; 0 or -ENOENT, -ENOMEM.
 */
int sn_server_adopt(struct sn_server *s, const json_t *def, char *why, size_t whylen);
int sn_server_forget(struct sn_server *s, const char *key);
int sn_server_reset_data(struct sn_server *s, const char *key);
/* Idle clocks across a fleet: another node's request touched key at t (its last access
 * becomes t if later); and the keys of this node's instrumentations last accessed at or after
 * since, with when, into keys[0..max) and at[0..max) (returns how many). */
void sn_server_touch(struct sn_server *s, const char *key, int64_t t);
size_t sn_server_accessed_since(struct sn_server *s, int64_t since, char (*keys)[SN_SCOPE_MAX + 24],
                                int64_t *at, size_t max);
/* in's definition as the store and the fleet keep it (docs/formats.md). */
json_t *sn_instn_def_json(const struct sn_instn *in);
/* Frees an instrumentation that is not (or no longer) in the server. */
void sn_instn_free(struct sn_instn *in);
/* The host-free definition the local agent runs for in (owned; NULL when out of memory): its
 * predicate includes the tenant's containers. */
json_t *sn_instn_agent_def(const struct sn_server *s, const struct sn_instn *in);

/*
 * Lifecycle (cmd_serve.c). Loads the definitions file of the data directory (none is fine),
 * after removing the *.tmp files an interrupted save left (each logged). Every definition is
 * checked as the API checks a create (serve/instn_def.h), and ids, duplicates, next_id and the
 * tenant quota too; each one refused is logged with why, the file as it was is kept as
 * instrumentations.json.rejected-YYYYMMDDTHHMMSSZ (logged), and only then is the file
 * rewritten without them. Returns 0, or -EINVAL when the file is unreadable (not JSON, not
 * the expected object), or -errno when the copy cannot be kept (nothing is rewritten then).
 */
int sn_server_load_defs(struct sn_server *s);
/* Between the server's files (server.c, defs_file.c, data_file.c): a new dataset for in with
 * the server's key cap (NULL when out of memory); appends in to the list (lock held; 0 or
 * -ENOMEM); tells the store what in is (sn_store_inst_set()); fills in->ds, before it is in
 * the aggregator, with the store's raw records of its retention, and (migrate) with the
 * .snds file of an older version, which is then written into the store and left alone. */
struct sn_dataset *sn_server_new_dataset(const struct sn_server *s, const struct sn_instn *in);
int sn_server_append(struct sn_server *s, struct sn_instn *in);
int sn_server_store_inst(struct sn_server *s, const struct sn_instn *in);
void sn_server_load_data(struct sn_server *s, struct sn_instn *in, bool migrate);
/* Asks the local agent to run every instrumentation (after a restart). */
void sn_server_start_local_all(struct sn_server *s);
/* Once a second: expires slots and reaps idle instrumentations (the store writes on its own
 * thread). Takes the lock itself. */
void sn_server_tick(struct sn_server *s, int64_t now);
/* Replaces the sampling configuration (trace/sampling.h) with doc (borrowed), validated,
 * stored, and followed by the tail sampler from now on. Returns 0, -EINVAL with why, or the
 * -errno of the store. */
int sn_server_set_sampling(struct sn_server *s, const json_t *doc, char *why, size_t len);
/* The final save at shutdown: the definitions if they are behind (the store writes the data
 * as it closes). Takes the lock itself. Returns 0, or the -errno (logged): the caller exits
 * non-zero then, as something acknowledged may be lost. */
int sn_server_save_final(struct sn_server *s);

#endif
