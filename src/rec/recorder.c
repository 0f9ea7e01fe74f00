/*
 * The host's flight recorder: sessions by name and their snapshots (manual ones, and triggers'
 * of the whole ring), from the rings to a CTF trace directory (rec/recorder.h). The only code that
 * turns a session's rings into a trace: ring.c copies and validates, ctf/writer.c encodes, this
 * file ties them to names, keeps each session's consumer and packet sequence numbers, and writes
 * the snapshot's index.
 */
#include "rec/recorder.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/file.h"
#include "ctf/writer.h"
#include "live/live_rec.h"
#include "rec/disk_sink.h"
#include "rec/drain.h"
#include "rec/ring.h"
#include "rec/session.h"

struct rec_sess {
    char name[SN_RECORDER_NAME_MAX + 1];
    unsigned groups;
    /* group usdt: its probes' specs ("PATH:PROVIDER:PROBE", owned), their parts (pointing into
     * spec copies), and the session's own event classes (the recorder's plus one per probe) */
    char *usdt_spec[SN_REC_USDT_MAX];
    char *usdt_buf[SN_REC_USDT_MAX];
    struct sn_rec_usdt usdt[SN_REC_USDT_MAX];
    size_t nusdt;
    bool cls_ok;
    struct sn_ctf_classes cls;
    uint64_t size;
    int64_t started; /* unix s */
    uint64_t snapshots;
    struct sn_rec_session *s;
    struct sn_rec_consumer *manual; /* the consumer of manual snapshots */
    uint64_t *packet_seq;           /* [ncpu]: the next packet_seq_num of each CPU's stream */
    char tenant[64];                /* its owner ("": the operator) */
    json_t *predicate;              /* NULL: none */
    struct sn_rec_drain *drain;     /* live: its drain and id there (0: not live) */
    int64_t drain_id;
    char disk[512]; /* disk mode: its chunks' directory ("": none) */
};

struct sn_recorder {
    pthread_mutex_t mu;
    char tracefs[256];
    bool classes_ok; /* tab and cls built (at the first snapshot) */
    struct sn_syscall_tab tab;
    struct sn_ctf_classes cls;
    struct rec_sess *sess[SN_RECORDER_MAX];
    struct sn_rec_drain *drain; /* live reading (set_live), or NULL */
    struct sn_live_rec *live;
};

static const struct {
    const char *name;
    unsigned bit;
} groups[] = {{"syscalls", SN_REC_G_SYSCALLS}, {"sched", SN_REC_G_SCHED},
              {"proc", SN_REC_G_PROC},         {"block", SN_REC_G_BLOCK},
              {"tcp", SN_REC_G_TCP},           {"faults", SN_REC_G_FAULTS}};

int sn_recorder_new(struct sn_recorder **out, const char *tracefs)
{
    struct sn_recorder *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    pthread_mutex_init(&r->mu, NULL);
    snprintf(r->tracefs, sizeof(r->tracefs), "%s", tracefs ? tracefs : "/sys/kernel/tracing");
    *out = r;
    return 0;
}

static void sess_free(struct rec_sess *x)
{
    if (!x)
        return;
    if (x->drain_id > 0) /* its last events to the live viewer, before the ring goes */
        sn_rec_drain_remove(x->drain, x->drain_id);
    sn_rec_consumer_free(x->manual);
    sn_rec_session_destroy(x->s);
    json_decref(x->predicate);
    free(x->packet_seq);
    for (size_t i = 0; i < x->nusdt; i++) {
        free(x->usdt_spec[i]);
        free(x->usdt_buf[i]);
    }
    if (x->cls_ok)
        sn_ctf_classes_free(&x->cls);
    free(x);
}

static int usdt_classes(struct sn_recorder *r, struct rec_sess *x, char *why, size_t len);

/* Splits "PATH:PROVIDER:PROBE" (PATH absolute; it may hold ':', the last two separate the
 * names; PROVIDER and PROBE of [A-Za-z0-9_]) into u, pointing into buf (a copy, owned by the
 * caller). Returns 0 or -EINVAL with a message in why. */
static int usdt_split(const char *spec, char **buf, struct sn_rec_usdt *u, char *why, size_t len)
{
    char *b = strdup(spec);
    char *probe = b ? strrchr(b, ':') : NULL, *prov = NULL;
    if (!b)
        return -ENOMEM;
    if (probe) {
        *probe++ = 0;
        prov = strrchr(b, ':');
    }
    if (prov)
        *prov++ = 0;
    bool ok = prov && b[0] == '/' && prov[0] && probe[0] &&
              strspn(prov, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") ==
                  strlen(prov) &&
              strspn(probe, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") ==
                  strlen(probe);
    if (!ok) {
        free(b);
        snprintf(why, len,
                 "event group \"usdt:%.200s\" must be usdt:PATH:PROVIDER:PROBE with an absolute "
                 "PATH and names of [A-Za-z0-9_]",
                 spec);
        return -EINVAL;
    }
    *buf = b;
    *u = (struct sn_rec_usdt){.path = b, .provider = prov, .probe = probe};
    return 0;
}

void sn_recorder_free(struct sn_recorder *r)
{
    if (!r)
        return;
    for (int i = 0; i < SN_RECORDER_MAX; i++)
        sess_free(r->sess[i]);
    if (r->classes_ok) {
        sn_ctf_classes_free(&r->cls);
        sn_syscall_tab_free(&r->tab);
    }
    pthread_mutex_destroy(&r->mu);
    free(r);
}

int sn_recorder_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > SN_RECORDER_NAME_MAX || name[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '.'))
            return 0;
    }
    return 1;
}

int sn_recorder_parse_group(const char *s, unsigned *group, char *why, size_t len)
{
    static const char avail[] =
        "available: syscalls, sched, proc, block, tcp, faults, usdt:PATH:PROVIDER:PROBE";

    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
        if (strcmp(s, groups[i].name) == 0) {
            *group = groups[i].bit;
            return 0;
        }
    /* usdt:PATH:PROVIDER:PROBE: the probe itself goes to the session in its start options */
    if (strncmp(s, "usdt", 4) == 0 && (s[4] == 0 || s[4] == ':')) {
        char *b = NULL;
        struct sn_rec_usdt u;
        int rc = usdt_split(s[4] ? s + 5 : "", &b, &u, why, len);
        free(b);
        if (rc == 0)
            *group = SN_REC_G_USDT;
        return rc;
    }
    snprintf(why, len, "unknown event group \"%.64s\" (%s)", s, avail);
    return -EINVAL;
}

int sn_recorder_parse_size(const char *s, uint64_t *bytes, char *why, size_t len)
{
    char *end;
    unsigned shift = 0;

    errno = 0;
    unsigned long long v = s[0] >= '0' && s[0] <= '9' ? strtoull(s, &end, 10) : 0;
    if (v == 0 || errno) {
        snprintf(why, len, "size-per-cpu \"%.32s\" is not a size (e.g. 4M)", s);
        return -EINVAL;
    }
    if (*end == 'K' || *end == 'k')
        shift = 10;
    else if (*end == 'M' || *end == 'm')
        shift = 20;
    else if (*end == 'G' || *end == 'g')
        shift = 30;
    if (shift)
        end++;
    if (*end == 'i' && shift)
        end++;
    if (*end == 'B' && shift)
        end++;
    if (*end || v > (1ULL << 31)) {
        snprintf(why, len, "size-per-cpu \"%.32s\" is not a size (e.g. 4M)", s);
        return -EINVAL;
    }
    v <<= shift;
    if (v < SN_REC_SIZE_MIN || v > SN_REC_SIZE_MAX || (v & (v - 1))) {
        snprintf(why, len, "size-per-cpu \"%.32s\" must be a power of 2 from 64K to 1G", s);
        return -EINVAL;
    }
    *bytes = v;
    return 0;
}

static int find(const struct sn_recorder *r, const char *name)
{
    for (int i = 0; i < SN_RECORDER_MAX; i++)
        if (r->sess[i] && strcmp(r->sess[i]->name, name) == 0)
            return i;
    return -1;
}

int sn_recorder_start(struct sn_recorder *r, const char *name, unsigned grp, uint64_t size,
                      char *why, size_t len)
{
    return sn_recorder_start_opts(r, name, grp, size, NULL, why, len);
}

int sn_recorder_start_opts(struct sn_recorder *r, const char *name, unsigned grp, uint64_t size,
                           const struct sn_recorder_start_opts *so, char *why, size_t len)
{
    static const struct sn_recorder_start_opts none;
    int rc, slot = -1;

    so = so ? so : &none;
    if (!sn_recorder_name_ok(name)) {
        snprintf(why, len, "session name must be 1 to %d of [A-Za-z0-9_.-], not starting with '.'",
                 SN_RECORDER_NAME_MAX);
        return -EINVAL;
    }
    pthread_mutex_lock(&r->mu);
    for (int i = SN_RECORDER_MAX - 1; i >= 0; i--)
        if (!r->sess[i])
            slot = i;
    if (find(r, name) >= 0) {
        snprintf(why, len, "session \"%s\" exists", name);
        rc = -EEXIST;
    } else if (slot < 0) {
        snprintf(why, len, "at most %d sessions per host", SN_RECORDER_MAX);
        rc = -ENOSPC;
    } else {
        struct rec_sess *x = calloc(1, sizeof(*x));
        rc = x ? 0 : -ENOMEM;
        if (rc == 0 &&
            ((so->nusdt > 0) != ((grp & SN_REC_G_USDT) != 0) || so->nusdt > SN_REC_USDT_MAX)) {
            snprintf(why, len,
                     "a session records 1 to %d usdt probes, given as usdt:PATH:PROVIDER:PROBE",
                     SN_REC_USDT_MAX);
            rc = -EINVAL;
        }
        for (size_t i = 0; rc == 0 && i < so->nusdt; i++) {
            if ((rc = usdt_split(so->usdt[i], &x->usdt_buf[i], &x->usdt[i], why, len)) == 0 &&
                !(x->usdt_spec[i] = strdup(so->usdt[i])))
                rc = -ENOMEM;
            x->nusdt += rc == 0;
        }
        if (rc == 0 && x->nusdt)
            rc = usdt_classes(r, x, why, len);
        struct sn_rec_session_opts o = {.groups = grp,
                                        .size_per_cpu = size,
                                        .predicate = so->predicate,
                                        .scope = so->scope,
                                        .nscope = so->nscope,
                                        .usdt = x ? x->usdt : NULL,
                                        .nusdt = x ? x->nusdt : 0,
                                        .why = why,
                                        .whylen = len};
        if (rc == 0 && why && len)
            why[0] = 0;
        if (rc == 0)
            rc = sn_rec_session_open(&x->s, &o);
        if (rc == 0)
            rc = sn_rec_consumer_new(&x->manual, sn_rec_session_view(x->s), 1);
        if (rc == 0 &&
            !(x->packet_seq = calloc(sn_rec_session_view(x->s)->ncpu, sizeof(*x->packet_seq))))
            rc = -ENOMEM;
        if (rc == 0) {
            snprintf(x->name, sizeof(x->name), "%s", name);
            x->groups = grp;
            x->size = size;
            x->started = (int64_t)time(NULL);
            snprintf(x->tenant, sizeof(x->tenant), "%s", so->tenant ? so->tenant : "");
            if (so->predicate && json_object_size(so->predicate))
                x->predicate = json_deep_copy(so->predicate);
            r->sess[slot] = x;
        } else {
            if (!(rc == -EINVAL && why && why[0])) /* else the session's reason */
                snprintf(why, len, "cannot start the session: %s%s", strerror(-rc),
                         rc == -EPERM ? " (the server needs CAP_BPF and CAP_PERFMON)" : "");
            sess_free(x);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int sn_recorder_stop(struct sn_recorder *r, const char *name)
{
    pthread_mutex_lock(&r->mu);
    int i = find(r, name);
    if (i >= 0) {
        sess_free(r->sess[i]);
        r->sess[i] = NULL;
    }
    pthread_mutex_unlock(&r->mu);
    return i >= 0 ? 0 : -ENOENT;
}

/* The ts of the first record at or after slot index i (forward) or at or before it (back),
 * among the SN_REC_MAX_SLOTS slots from i; 0 when none is whole there (being overwritten). */
static uint64_t slot_ts(const struct sn_rec_ring_view *v, unsigned cpu, uint64_t i, int dir)
{
    for (int k = 0; k < SN_REC_MAX_SLOTS; k++, i += (uint64_t)(int64_t)dir) {
        const struct sn_rec_slot *sl = &v->slots[(size_t)cpu * v->nslots + (i & (v->nslots - 1))];
        uint32_t seq = __atomic_load_n(&sl->seq, __ATOMIC_ACQUIRE);
        uint16_t type = __atomic_load_n(&sl->type, __ATOMIC_RELAXED);
        uint64_t ts = __atomic_load_n(&sl->ts, __ATOMIC_RELAXED);
        if (seq == sn_rec_seq(i) && type != SN_RK_CONT &&
            __atomic_load_n(&sl->seq, __ATOMIC_ACQUIRE) == seq)
            return ts;
        if (i == 0 && dir < 0)
            break;
    }
    return 0;
}

/* The time cpu's ring covers now: its newest record's ts - its oldest's (an estimate: the
 * writer goes on meanwhile). */
static uint64_t coverage_ns(const struct sn_rec_ring_view *v, unsigned cpu, uint64_t head)
{
    if (head == 0)
        return 0;
    uint64_t oldest = head > v->nslots ? head - v->nslots : 0, t0 = 0;
    /* a ring being written overwrites its oldest slots under the read: further in, then (the
     * coverage is the ring's, give or take the few slots skipped) */
    const uint64_t skip[] = {0, 64, 1024, v->nslots / 16, v->nslots / 4};
    for (size_t k = 0; k < sizeof(skip) / sizeof(skip[0]) && !t0; k++)
        if (oldest + skip[k] < head)
            t0 = slot_ts(v, cpu, oldest + skip[k], 1);
    uint64_t t1 = slot_ts(v, cpu, head - 1, -1);
    return t0 && t1 > t0 ? t1 - t0 : 0;
}

static json_t *sess_json(struct rec_sess *x)
{
    json_t *ev = json_array(), *cpus = json_array();
    struct sn_rec_session_stats st = {0};

    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
        if (x->groups & groups[i].bit)
            json_array_append_new(ev, json_string(groups[i].name));
    for (size_t i = 0; i < x->nusdt; i++) {
        char spec[PATH_MAX + 16];
        snprintf(spec, sizeof(spec), "usdt:%s", x->usdt_spec[i]);
        json_array_append_new(ev, json_string(spec));
    }
    if (sn_rec_session_stats(x->s, &st) == 0)
        for (unsigned c = 0; c < st.ncpu; c++)
            json_array_append_new(
                cpus,
                json_pack("{s:i,s:I,s:f}", "cpu", (int)c, "head", (json_int_t)st.head[c],
                          "coverage_s",
                          (double)coverage_ns(sn_rec_session_view(x->s), c, st.head[c]) / 1e9));
    json_t *j = json_pack("{s:s,s:o,s:I,s:I,s:I,s:o,s:I,s:o}", "name", x->name, "events", ev,
                          "size-per-cpu", (json_int_t)x->size, "started", (json_int_t)x->started,
                          "snapshots", (json_int_t)x->snapshots, "cpus", cpus, "dropped",
                          (json_int_t)st.dropped, "tenant",
                          x->tenant[0] ? json_string(x->tenant) : json_null());
    if (j && x->predicate)
        json_object_set(j, "predicate", x->predicate);
    if (j && x->disk[0])
        json_object_set_new(j, "disk", json_pack("{s:s}", "dir", x->disk));
    return j;
}

json_t *sn_recorder_json(struct sn_recorder *r, const char *name)
{
    json_t *j = NULL;

    pthread_mutex_lock(&r->mu);
    if (name) {
        int i = find(r, name);
        if (i >= 0)
            j = sess_json(r->sess[i]);
    } else {
        j = json_array();
        for (int i = 0; i < SN_RECORDER_MAX; i++)
            if (r->sess[i])
                json_array_append_new(j, sess_json(r->sess[i]));
    }
    pthread_mutex_unlock(&r->mu);
    return j;
}

/* Builds the event classes once (the system call formats of tracefs). */
static int classes(struct sn_recorder *r)
{
    int rc;

    if (r->classes_ok)
        return 0;
    if ((rc = sn_syscall_tab_load(&r->tab, r->tracefs)) != 0)
        return rc;
    if ((rc = sn_ctf_classes_build(&r->cls, &r->tab)) != 0) {
        sn_syscall_tab_free(&r->tab);
        return rc;
    }
    r->classes_ok = true;
    return 0;
}

/* The event classes of session x's traces: the recorder's, or a usdt session's own. */
static const struct sn_ctf_classes *cls_of(struct sn_recorder *r, struct rec_sess *x)
{
    return x->cls_ok ? &x->cls : &r->cls;
}

/* Builds x's own classes: the recorder's plus usdt_<provider>_<probe> for each probe, with the
 * arguments its note declares. 0, or -errno with why (a probe the file does not have). */
static int usdt_classes(struct sn_recorder *r, struct rec_sess *x, char *why, size_t len)
{
    int rc = classes(r);
    if (rc == 0)
        rc = sn_ctf_classes_build(&x->cls, &r->tab);
    if (rc != 0) {
        snprintf(why, len, "cannot build the event classes: %s", strerror(-rc));
        return rc;
    }
    x->cls_ok = true;
    for (size_t i = 0; i < x->nusdt; i++) {
        const struct sn_rec_usdt *u = &x->usdt[i];
        int n = sn_rec_usdt_nargs(u->path, u->provider, u->probe);
        if (n < 0) {
            snprintf(why, len, "usdt probe %s:%s in %.200s: %s", u->provider, u->probe, u->path,
                     n == -ENOENT ? "no such probe in the file" : strerror(-n));
            return n == -ENOENT ? -EINVAL : n;
        }
        if ((rc = sn_ctf_classes_add_usdt(&x->cls, (uint32_t)i, u->provider, u->probe,
                                          (unsigned)n)) != 0) {
            snprintf(why, len, "usdt probe %s:%s: %s", u->provider, u->probe, strerror(-rc));
            return rc;
        }
    }
    return 0;
}

/* Writes snap into dir/kernel; the events' ts range into *t0, *t1, their number into *n. The
 * packets' sequence numbers continue the session's manual snapshots', or start at 0 for a whole
 * ring's snapshot (which may repeat events: it is a trace of its own). Returns 0 or -errno. */
static int write_trace(struct sn_recorder *r, struct rec_sess *x, const struct sn_rec_snap *snap,
                       bool whole, const char *dir, uint64_t *t0, uint64_t *t1, uint64_t *n)
{
    static char str[SN_REC_STR_MAX]; /* under r->mu */
    struct sn_ctf_env env;
    struct sn_ctf_writer *w;
    int rc;

    if ((rc = sn_ctf_env_host(&env, x->name, x->name)) != 0)
        return rc;
    /* a copy of the sequence numbers: they advance only when the trace is whole */
    uint64_t *seq = malloc(snap->ncpu * sizeof(*seq));
    if (!seq)
        return -ENOMEM;
    if (whole)
        memset(seq, 0, snap->ncpu * sizeof(*seq));
    else
        memcpy(seq, x->packet_seq, snap->ncpu * sizeof(*seq));
    struct sn_ctf_writer_opts o = {.ncpus = snap->ncpu, .classes = cls_of(r, x), .packet_seq = seq};
    if ((rc = sn_ctf_writer_open(&w, dir, &env, &o)) != 0) {
        free(seq);
        return rc;
    }
    *t0 = UINT64_MAX;
    *t1 = *n = 0;
    for (unsigned cpu = 0; rc == 0 && cpu < snap->ncpu; cpu++) {
        for (size_t k = 0; rc == 0 && k < snap->cpu[cpu].nrec; k++) {
            struct sn_rec_event ev;
            if (sn_rec_slot_decode(sn_rec_snap_record(snap, cpu, k), cpu, &ev, str) != 0)
                continue; /* a kind this reader does not know: ring.c counts it nowhere */
            if ((rc = sn_ctf_writer_add(w, cpu, &ev)) == 0) {
                (*n)++;
                *t0 = ev.ts < *t0 ? ev.ts : *t0;
                *t1 = ev.ts > *t1 ? ev.ts : *t1;
            }
        }
        if (rc == 0 && snap->cpu[cpu].torn)
            sn_ctf_writer_discarded(w, cpu, snap->cpu[cpu].torn);
    }
    if (rc == 0)
        rc = sn_ctf_writer_close(w);
    else
        sn_ctf_writer_abort(w);
    if (rc == 0 && !whole)
        memcpy(x->packet_seq, seq, snap->ncpu * sizeof(*seq));
    free(seq);
    if (*t0 == UINT64_MAX)
        *t0 = 0;
    return rc;
}

static int write_index(const struct rec_sess *x, const struct sn_rec_snap *snap, bool whole,
                       const char *dir, uint64_t t0, uint64_t t1,
                       const struct sn_recorder_snap_info *info)
{
    char path[4200];
    json_t *cpus = json_array();

    for (unsigned c = 0; c < snap->ncpu; c++)
        json_array_append_new(cpus, json_pack("{s:i,s:I,s:I,s:I,s:I}", "cpu", (int)c, "from",
                                              (json_int_t)snap->cpu[c].from, "to",
                                              (json_int_t)snap->cpu[c].to, "overwritten",
                                              (json_int_t)snap->cpu[c].overwritten, "torn",
                                              (json_int_t)snap->cpu[c].torn));
    json_t *j =
        json_pack("{s:s,s:{s:I,s:I,s:s,s:s},s:I,s:I,s:I,s:I,s:o}", "session", x->name, "window",
                  "first_ns", (json_int_t)t0, "last_ns", (json_int_t)t1, "clock", "monotonic", "of",
                  whole ? "ring" : "since-last", "events", (json_int_t)info->events, "overwritten",
                  (json_int_t)info->overwritten, "torn", (json_int_t)info->torn, "dropped",
                  (json_int_t)info->dropped, "cpus", cpus);
    if (j)
        json_object_set_new(j, "tenant", x->tenant[0] ? json_string(x->tenant) : json_null());
    char *text = j ? json_dumps(j, JSON_INDENT(1)) : NULL;
    json_decref(j);
    if (!text)
        return -ENOMEM;
    snprintf(path, sizeof(path), "%s/sonde-snapshot.json", dir);
    int rc = sn_file_write_atomic(path, text, strlen(text));
    free(text);
    return rc;
}

/* A consumer made for one snapshot of the whole ring: cursors at 0, so each CPU's window is what
 * the ring holds; what it counts as overwritten before the window (slots lost since the session
 * started) is taken off, leaving only what was overwritten during the copy. */
static int snapshot_whole(const struct sn_rec_ring_view *v, struct sn_rec_snap *snap)
{
    struct sn_rec_consumer *c;
    int rc = sn_rec_consumer_new(&c, v, 0);
    if (rc != 0)
        return rc;
    rc = sn_rec_snapshot(c, v, snap);
    sn_rec_consumer_free(c);
    for (unsigned cpu = 0; rc == 0 && cpu < snap->ncpu; cpu++) {
        struct sn_rec_cpu_snap *cs = &snap->cpu[cpu];
        uint64_t before = cs->from < cs->overwritten ? cs->from : cs->overwritten;
        cs->overwritten -= before;
        snap->overwritten -= before;
    }
    return rc;
}

int sn_recorder_snapshot(struct sn_recorder *r, const char *name, const char *dir,
                         struct sn_recorder_snap_info *info)
{
    return sn_recorder_snapshot_window(r, name, dir, SN_RECORDER_SINCE_LAST, info);
}

int sn_recorder_snapshot_window(struct sn_recorder *r, const char *name, const char *dir,
                                enum sn_recorder_window w, struct sn_recorder_snap_info *info)
{
    struct sn_rec_snap snap;
    struct sn_rec_session_stats st;
    uint64_t t0 = 0, t1 = 0;
    bool whole = w == SN_RECORDER_WHOLE_RING;
    int rc;

    memset(info, 0, sizeof(*info));
    if (access(dir, F_OK) == 0)
        return -EEXIST;
    pthread_mutex_lock(&r->mu);
    int i = find(r, name);
    if (i < 0) {
        pthread_mutex_unlock(&r->mu);
        return -ENOENT;
    }
    struct rec_sess *x = r->sess[i];
    if ((rc = classes(r)) == 0)
        rc = whole ? snapshot_whole(sn_rec_session_view(x->s), &snap)
                   : sn_rec_snapshot(x->manual, sn_rec_session_view(x->s), &snap);
    if (rc != 0) {
        pthread_mutex_unlock(&r->mu);
        return rc;
    }
    info->overwritten = snap.overwritten;
    info->torn = snap.torn;
    if (sn_rec_session_stats(x->s, &st) == 0)
        info->dropped = st.dropped;
    rc = write_trace(r, x, &snap, whole, dir, &t0, &t1, &info->events);
    if (rc == 0)
        rc = write_index(x, &snap, whole, dir, t0, t1, info);
    if (rc == 0)
        x->snapshots++;
    sn_rec_snap_free(&snap);
    pthread_mutex_unlock(&r->mu);
    if (rc != 0)
        memset(info, 0, sizeof(*info));
    return rc;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int sn_recorder_snapshot_new(struct sn_recorder *r, const char *name, const char *root,
                             enum sn_recorder_window w, char *id, size_t idlen,
                             struct sn_recorder_snap_info *info)
{
    static _Atomic unsigned seq;
    char tmp[800], dir[800], stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    int rc;

    memset(info, 0, sizeof(*info));
    if (mkdir(root, 0700) != 0 && errno != EEXIST)
        return -errno;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    do { /* a name no other snapshot has */
        snprintf(id, idlen, "%.63s-%s-%u", name, stamp, ++seq);
        snprintf(dir, sizeof(dir), "%s/%s", root, id);
    } while (access(dir, F_OK) == 0);
    snprintf(tmp, sizeof(tmp), "%s/.%s.part", root, id); /* hidden: not listed, not served */
    rc = sn_recorder_snapshot_window(r, name, tmp, w, info);
    if (rc == 0 && rename(tmp, dir) != 0)
        rc = -errno;
    if (rc != 0) {
        rm_tree(tmp);
        memset(info, 0, sizeof(*info));
    }
    return rc;
}

int sn_recorder_snapshot_delete(const char *root, const char *id)
{
    char dir[800];
    struct stat st;

    snprintf(dir, sizeof(dir), "%s/%s", root, id);
    if (!sn_recorder_name_ok(id) || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return -ENOENT;
    rm_tree(dir);
    return 0;
}

void sn_recorder_set_live(struct sn_recorder *r, struct sn_rec_drain *d, struct sn_live_rec *pub)
{
    pthread_mutex_lock(&r->mu);
    r->drain = d;
    r->live = pub;
    pthread_mutex_unlock(&r->mu);
}

int sn_recorder_live(struct sn_recorder *r, const char *name, char *why, size_t len)
{
    struct sn_rec_sink sink;
    int rc = 0;

    pthread_mutex_lock(&r->mu);
    int i = find(r, name);
    struct rec_sess *x = i >= 0 ? r->sess[i] : NULL;
    if (!r->live || !r->drain) {
        rc = -ENOTSUP;
        snprintf(why, len, "live reading is off on this server (sonde serve --live-listen)");
    } else if (!x) {
        rc = -ENOENT;
        snprintf(why, len, "no such session \"%s\"", name);
    } else if (x->drain_id == 0 && (rc = classes(r)) != 0) {
        snprintf(why, len, "cannot build the event classes: %s", strerror(-rc));
    } else if (x->drain_id == 0) {
        const struct sn_rec_ring_view *v = sn_rec_session_view(x->s);
        if ((rc = sn_live_rec_sink(r->live, name, v->ncpu, cls_of(r, x), &sink, why, len)) == 0) {
            int64_t id = sn_rec_drain_add(r->drain, v, &sink, 1);
            if (id < 0) {
                sink.end(sink.ctx);
                rc = (int)id;
                snprintf(why, len, "cannot drain the session: %s", strerror(-rc));
            } else {
                x->drain = r->drain;
                x->drain_id = id;
            }
        }
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int sn_recorder_disk(struct sn_recorder *r, const char *name, const struct sn_recorder_disk_opts *o,
                     bool live, char *why, size_t len)
{
    struct sn_rec_sink sinks[2];
    unsigned n = 0;
    int rc = 0;

    pthread_mutex_lock(&r->mu);
    int i = find(r, name);
    struct rec_sess *x = i >= 0 ? r->sess[i] : NULL;
    if (!r->drain || (live && !r->live)) {
        rc = -ENOTSUP;
        snprintf(why, len, "%s",
                 !r->drain ? "this server has no drain for disk mode"
                           : "live reading is off on this server "
                             "(sonde serve --live-listen)");
    } else if (!x) {
        rc = -ENOENT;
        snprintf(why, len, "no such session \"%s\"", name);
    } else if (x->drain_id != 0) {
        rc = -EEXIST;
        snprintf(why, len, "session \"%s\" is already drained", name);
    } else if ((rc = classes(r)) != 0) {
        snprintf(why, len, "cannot build the event classes: %s", strerror(-rc));
    } else {
        const struct sn_rec_ring_view *v = sn_rec_session_view(x->s);
        struct sn_rec_disk_opts dopts = {.dir = o->dir,
                                         .session = name,
                                         .cls = &r->cls,
                                         .ncpu = v->ncpu,
                                         .chunk_bytes = o->chunk_bytes,
                                         .chunk_ns = o->chunk_ns,
                                         .max_bytes = o->max_bytes};
        if ((rc = sn_rec_disk_sink(&dopts, &sinks[n], NULL, why, len)) == 0)
            n++;
        if (rc == 0 && live &&
            (rc = sn_live_rec_sink(r->live, name, v->ncpu, &r->cls, &sinks[n], why, len)) == 0)
            n++;
        int64_t id = rc == 0 ? sn_rec_drain_add(r->drain, v, sinks, n) : 0;
        if (id < 0) {
            rc = (int)id;
            snprintf(why, len, "cannot drain the session: %s", strerror(-rc));
        }
        if (rc != 0)
            for (unsigned k = 0; k < n; k++)
                sinks[k].end(sinks[k].ctx);
        else {
            x->drain = r->drain;
            x->drain_id = id;
            snprintf(x->disk, sizeof(x->disk), "%s", o->dir);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int sn_recorder_peek(struct sn_recorder *r, const char *tenant, unsigned grp,
                     int (*fn)(void *arg, const struct sn_recorder_peek *p), void *arg)
{
    int n = 0, rc = 0;

    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < SN_RECORDER_MAX && rc == 0; i++) {
        struct rec_sess *x = r->sess[i];
        struct sn_rec_snap snap;
        if (!x || (x->groups & grp) != grp ||
            (tenant && tenant[0] && strcmp(tenant, x->tenant) != 0))
            continue;
        if ((rc = snapshot_whole(sn_rec_session_view(x->s), &snap)) != 0)
            break;
        struct sn_recorder_peek p = {x->name, x->tenant, x->groups, x->started, &snap};
        rc = fn(arg, &p);
        sn_rec_snap_free(&snap);
        n++;
    }
    pthread_mutex_unlock(&r->mu);
    return rc < 0 ? rc : n;
}
