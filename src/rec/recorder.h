/*
 * The host's flight recorder (docs/recorder.md, "Sessions and snapshots"): its recording
 * sessions by name (at most SN_RECORDER_MAX), each a session (rec/session.h) with the consumer
 * of its manual snapshots (rec/ring.h). A snapshot copies the rings through that consumer, so
 * successive snapshots of a session never repeat an event, and writes
 *
 *   DIR/kernel/{metadata, chan_N}   the CTF trace (ctf/writer.h; packet_seq_num continues
 *                                   across the session's snapshots)
 *   DIR/sonde-snapshot.json         {session, tenant, window, cpus: [{cpu, overwritten,
 *                                    torn}], events, overwritten, torn, dropped} (tmp + rename)
 *
 * This is the one path from rings to trace directories: `sonde serve`'s API (api/recordings.c)
 * and its triggers (serve/triggers.c) call it. Thread-safe: one mutex around everything (a snapshot
 * of a 64 MiB ring takes tens of ms).
 */
#ifndef SN_REC_RECORDER_H
#define SN_REC_RECORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define SN_RECORDER_MAX      8            /* sessions per host */
#define SN_RECORDER_SNAPDIR  "snapshots"  /* snapshots' directory, under the server's data */
#define SN_RECORDER_DISKDIR  "recordings" /* disk mode's chunks (DIR/NAME/), under the data */
#define SN_RECORDER_NAME_MAX 63 /* a name: [A-Za-z0-9_.-], 1..63 bytes, not starting with '.' */

struct sn_recorder;

/* An empty recorder. tracefs: where the system call formats are read at the first session
 * (NULL: /sys/kernel/tracing). Returns 0 or -ENOMEM. */
int sn_recorder_new(struct sn_recorder **out, const char *tracefs);
/* Stops every session and frees r. NULL is a no-op. */
void sn_recorder_free(struct sn_recorder *r);

/* Whether name is a valid session (or snapshot id) name. */
int sn_recorder_name_ok(const char *name);

/* Parses an event group ("syscalls", "sched", "proc", "block", "tcp", "faults",
 * "usdt:PATH:PROVIDER:PROBE") into *group (SN_REC_G_*; a usdt group's probe goes to the start
 * options). Returns 0, or -EINVAL with a message in why. */
int sn_recorder_parse_group(const char *s, unsigned *group, char *why, size_t len);
/* Parses a size per CPU ("4M", "64K", "1G", "65536"): a power of 2 in [64 KiB, 1 GiB].
 * Returns 0 or -EINVAL with a message in why. */
int sn_recorder_parse_size(const char *s, uint64_t *bytes, char *why, size_t len);

/* Starts session name recording groups with size bytes per CPU. Returns 0; -EINVAL (bad
 * name), -EEXIST (the name is taken), -ENOSPC (SN_RECORDER_MAX sessions), or the session's
 * -errno (rec/session.h: -EPERM without root, ...); why says which. */
int sn_recorder_start(struct sn_recorder *r, const char *name, unsigned groups, uint64_t size,
                      char *why, size_t len);

/* What else a session may be started with (all borrowed; zero: none). */
struct sn_recorder_start_opts {
    const json_t *predicate;  /* a recording predicate (sn_rec_pred_compile()) */
    const char *tenant;       /* the tenant that owns it (NULL or "": the operator's) */
    const char *const *scope; /* the tenant's cgroup paths: only its tasks are recorded */
    size_t nscope;
    /* group usdt (SN_REC_G_USDT in groups): its probes, "PATH:PROVIDER:PROBE" (1 to
     * SN_REC_USDT_MAX; the text after "usdt:" of the event group) */
    const char *const *usdt;
    size_t nusdt;
};
/* sn_recorder_start() with o (NULL: none). -EINVAL also for a bad predicate or scope. */
int sn_recorder_start_opts(struct sn_recorder *r, const char *name, unsigned groups, uint64_t size,
                           const struct sn_recorder_start_opts *o, char *why, size_t len);
/* Stops and forgets session name: 0 or -ENOENT. */
int sn_recorder_stop(struct sn_recorder *r, const char *name);

/* The sessions as a JSON array (name == NULL), or session name's object (NULL: no such
 * session): {name, events, size-per-cpu, started (unix s), snapshots, cpus: [{cpu, head,
 * coverage_s (the time the ring holds now: newest event - oldest)}], dropped, tenant (null:
 * the operator's), predicate (when it has one)}. */
json_t *sn_recorder_json(struct sn_recorder *r, const char *name);

struct sn_rec_drain;
struct sn_live_rec;
/* Live reading (docs/recorder.md, "Live reading"): sessions made live are drained by d into
 * sinks of pub (both borrowed; set once, before any session starts; they outlive r). pub may
 * be NULL: d then drains disk mode's sessions only. */
void sn_recorder_set_live(struct sn_recorder *r, struct sn_rec_drain *d, struct sn_live_rec *pub);
/* Publishes running session name live until it stops. Returns 0 (also when it already is),
 * -ENOENT, -ENOTSUP (no live relay: set_live was not called), or -errno; why says which. */
int sn_recorder_live(struct sn_recorder *r, const char *name, char *why, size_t len);

/* Disk mode (docs/recorder.md, "Disk mode"): what a session's chunks are (rec/disk_sink.h). */
struct sn_recorder_disk_opts {
    const char *dir;      /* its chunks' directory (the server's DATA/recordings/NAME) */
    uint64_t chunk_bytes; /* 0: the sink's defaults */
    uint64_t chunk_ns;
    uint64_t max_bytes; /* cap on the closed chunks (0: none) */
};
/* Writes running session name to disk in chunks until it stops, and publishes it live too
 * when live (one drain entry, both sinks). Needs the drain of set_live (pub may be NULL when
 * live is false). Returns 0, -ENOENT, -EEXIST (already drained: live or disk), -ENOTSUP (no
 * drain, or live without a relay), or -errno (the directory cannot be made); why says which. */
int sn_recorder_disk(struct sn_recorder *r, const char *name, const struct sn_recorder_disk_opts *o,
                     bool live, char *why, size_t len);

struct sn_recorder_snap_info {
    uint64_t events, overwritten, torn, dropped;
};

/* Snapshots session name into dir (which must not exist yet; created here). On failure dir may
 * hold part of a trace: callers write into a temporary directory and rename it. Returns 0 and
 * *info, -ENOENT (no such session), -EEXIST (dir exists) or -errno. */
int sn_recorder_snapshot(struct sn_recorder *r, const char *name, const char *dir,
                         struct sn_recorder_snap_info *info);

/* What a snapshot holds. */
enum sn_recorder_window {
    SN_RECORDER_SINCE_LAST = 0, /* what the rings hold since the session's previous such snapshot
                                 * (the session's manual consumer): never repeats an event */
    SN_RECORDER_WHOLE_RING,     /* everything the rings hold now, through a consumer made for
                                 * it: a trigger's (the seconds before it fired); it takes
                                 * nothing from the manual consumer, and may repeat events of
                                 * other snapshots; its packets count from 0 */
};

/* sn_recorder_snapshot() with window w (SN_RECORDER_SINCE_LAST: the same). */
int sn_recorder_snapshot_window(struct sn_recorder *r, const char *name, const char *dir,
                                enum sn_recorder_window w, struct sn_recorder_snap_info *info);

/* The one way snapshots are made under a root (the server's DATA/snapshots): session name's
 * window w into a new directory root/ID, with ID = NAME-YYYYMMDDTHHMMSSZ-N (into id, unique
 * under root), written as the hidden root/.ID.part and renamed, so it appears whole (and
 * removed when anything fails). root is created when absent. Returns 0, -ENOENT (no such
 * session) or -errno. */
int sn_recorder_snapshot_new(struct sn_recorder *r, const char *name, const char *root,
                             enum sn_recorder_window w, char *id, size_t idlen,
                             struct sn_recorder_snap_info *info);
/* Removes snapshot root/id (a valid name, a directory there). Returns 0 or -ENOENT. */
int sn_recorder_snapshot_delete(const char *root, const char *id);

/* A read of a session's whole ring (sn_recorder_peek()), borrowed for the call. */
struct sn_rec_snap;
struct sn_recorder_peek {
    const char *session, *tenant;   /* tenant: "" for the operator's */
    unsigned groups;                /* SN_REC_G_* */
    int64_t started;                /* unix s */
    const struct sn_rec_snap *snap; /* every record its rings hold, each CPU's by ts */
};
/* For each running session recording every group of groups that tenant may see (NULL or "":
 * the operator, every session; else that tenant's own), copies its whole ring through a
 * consumer made for the read (no other consumer loses or repeats anything) and calls fn with
 * it, under the recorder's lock (fn keeps what it needs: the copy is freed after). Returns the
 * number of sessions read, or -errno. For the heatmap cells' events (rec/cell_events.h). */
int sn_recorder_peek(struct sn_recorder *r, const char *tenant, unsigned groups,
                     int (*fn)(void *arg, const struct sn_recorder_peek *p), void *arg);

#endif
