/*
 * The operations behind a heatmap cell, from the recorder's rings (rec/cell_events.h).
 *
 * For each session that records system calls and that the caller may see, the whole ring is
 * copied through a consumer of its own (sn_recorder_peek()) and, under the recorder's lock, only
 * the system call records that can belong to the cell are kept: exits in the cell's time, and
 * entries at most `hi` before its start. They are sorted by (tid, ts) and paired: an exit
 * closes its tid's last entry of the same call number (a tid does one call at a time; a
 * thread may change CPU between the two, which is why the CPUs are merged first). The pairs
 * whose latency is in [lo, hi) and whose key matches count; the first `max` by exit time are
 * decoded into events. The session whose ring covers the most of the cell wins; sessions are few.
 */
#include "rec/cell_events.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/stat.h>

#include "agent/catalog.h"
#include "agent/names.h"
#include "bpf/slots.h"
#include "core/grow.h"
#include "rec/recorder.h"
#include "rec/ring.h"
#include "rec/session.h"

#define SYS_EXECVE   59 /* x86-64 */
#define SYS_EXECVEAT 322

static const char *const known[] = {"execname", "pid",       "syscall",  "errno",
                                    "ppid",     "pexecname", "hostname", "container"};

int sn_cell_field_known(const char *field)
{
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(field, known[i]) == 0)
            return 1;
    return 0;
}

const char *sn_cell_state_name(enum sn_cell_state s)
{
    switch (s) {
    case SN_CELL_NONE:
        return "none";
    case SN_CELL_NOT_COVERING:
        return "not-covering";
    case SN_CELL_PARTIAL:
        return "partial";
    case SN_CELL_COVERED:
        return "covered";
    case SN_CELL_UNSUPPORTED:
        return "unsupported";
    }
    return "none";
}

/* A system call record of the window: where it is in the snapshot. */
struct cand {
    uint64_t ts;
    int32_t tid;
    uint16_t cpu;
    uint8_t exit;
    uint32_t k; /* its record's index in the CPU's part */
};

/* A tid's comm seen in a sched record. */
struct tcomm {
    int32_t tid;
    bool exec; /* from an execve's path, not a sched record */
    uint64_t ts;
    char comm[SN_REC_COMM_LEN];
};

/* A matching operation: its entry and exit candidates. */
struct match {
    uint64_t exit_ts;
    uint32_t entry, exit; /* into cands */
};

struct ctx {
    const struct sn_cell_query *q;
    int64_t off; /* CLOCK_REALTIME - CLOCK_MONOTONIC, ns */
    struct sn_cell_result *best;
    int err;
};

static int cmp_cand(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->tid != y->tid)
        return x->tid < y->tid ? -1 : 1;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return (int)x->exit - (int)y->exit; /* an entry before an exit of the same ns */
}

static int cmp_tcomm(const void *a, const void *b)
{
    const struct tcomm *x = a, *y = b;
    if (x->tid != y->tid)
        return x->tid < y->tid ? -1 : 1;
    return x->ts < y->ts ? -1 : x->ts > y->ts;
}

static int cmp_match(const void *a, const void *b)
{
    const struct match *x = a, *y = b;
    return x->exit_ts < y->exit_ts ? -1 : x->exit_ts > y->exit_ts;
}

/* The first line of a /proc file into buf (its newline cut); 0 or -1. */
static int read_line(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    char *s = fgets(buf, (int)len, f);
    fclose(f);
    if (!s)
        return -1;
    buf[strcspn(buf, "\n")] = 0;
    return 0;
}

/* The comm the ring says tid had at ts: its last exec (the program's name) or sched record
 * at or before ts, else its first sched record after ts; NULL when the ring says nothing. */
static const char *ring_comm(const struct tcomm *tc, size_t ntc, int32_t tid, uint64_t ts)
{
    size_t lo = 0, hi = ntc;
    while (lo < hi) { /* the first entry after (tid, ts) */
        size_t mid = (lo + hi) / 2;
        if (tc[mid].tid < tid || (tc[mid].tid == tid && tc[mid].ts <= ts))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo > 0 && tc[lo - 1].tid == tid)
        return tc[lo - 1].comm;
    if (lo < ntc && tc[lo].tid == tid && !tc[lo].exec)
        return tc[lo].comm;
    return NULL;
}

/* tid's comm at ts: the ring's, else the live thread's now, else "". */
static void comm_of(const struct tcomm *tc, size_t ntc, int32_t tid, int32_t pid, uint64_t ts,
                    char *out)
{
    const char *c = ring_comm(tc, ntc, tid, ts);
    if (c) {
        memcpy(out, c, SN_REC_COMM_LEN);
        out[SN_REC_COMM_LEN] = 0;
        return;
    }
    char path[96];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", (int)pid, (int)tid);
    if (read_line(path, out, SN_REC_COMM_LEN + 1) != 0)
        out[0] = 0;
}

/* The parent pid of pid now (/proc/PID/stat, counted from the last ')'), or -1. */
static int64_t ppid_of(int32_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (read_line(path, buf, sizeof(buf)) != 0)
        return -1;
    char *p = strrchr(buf, ')');
    long long pp;
    char st;
    return p && sscanf(p + 1, " %c %lld", &st, &pp) == 2 ? pp : -1;
}

/* What /proc and the ring say of one tid, read once per tid (the candidates are by tid). */
struct task_facts {
    int32_t tid;
    bool comm_ok, parent_ok, cg_ok;
    char comm[SN_REC_COMM_LEN + 1];
    int64_t ppid;
    char pcomm[SN_REC_COMM_LEN + 1];
    char cgroup[512];
    uint64_t cgid;
};

/* Starts f over for tid (of pid): its comm now, the rest when asked. */
static void facts_init(struct task_facts *f, const struct tcomm *tc, size_t ntc, int32_t tid,
                       int32_t pid, uint64_t ts)
{
    memset(f, 0, sizeof(*f));
    f->tid = tid;
    f->comm_ok = true;
    comm_of(tc, ntc, tid, pid, ts, f->comm);
}

static void facts_parent(struct task_facts *f, int32_t pid)
{
    char path[64];
    if (f->parent_ok)
        return;
    f->parent_ok = true;
    f->ppid = ppid_of(pid);
    f->pcomm[0] = 0;
    snprintf(path, sizeof(path), "/proc/%lld/comm", (long long)f->ppid);
    if (f->ppid < 0 || read_line(path, f->pcomm, sizeof(f->pcomm)) != 0)
        f->pcomm[0] = 0;
}

static void facts_cgroup(struct task_facts *f, int32_t pid)
{
    char path[64], buf[600], full[700];
    struct stat st;
    if (f->cg_ok)
        return;
    f->cg_ok = true;
    f->cgroup[0] = 0;
    f->cgid = 0;
    snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
    if (read_line(path, buf, sizeof(buf)) == 0 && strncmp(buf, "0::", 3) == 0) {
        snprintf(f->cgroup, sizeof(f->cgroup), "%.500s", buf + 3);
        snprintf(full, sizeof(full), "/sys/fs/cgroup%s", f->cgroup);
        if (stat(full, &st) == 0)
            f->cgid = (uint64_t)st.st_ino;
    }
}

/* The key of an operation for field (its value as the agent renders it) into out. */
static void key_of(const char *field, const struct sn_rec_event *exit, struct task_facts *f,
                   const char *hostkey, char *out, size_t len)
{
    int64_t nr = exit->u.sys.nr, ret = exit->u.sys.ret;
    out[0] = 0;
    if (strcmp(field, "execname") == 0) {
        snprintf(out, len, "%s", f->comm);
    } else if (strcmp(field, "pid") == 0) {
        snprintf(out, len, "%d", (int)exit->pid);
    } else if (strcmp(field, "syscall") == 0) {
        const char *n = sn_syscall_name(nr);
        if (n)
            snprintf(out, len, "%s", n);
        else
            snprintf(out, len, "syscall_%" PRId64, nr);
    } else if (strcmp(field, "errno") == 0) {
        int64_t e = ret < 0 && ret > -4096 ? -ret : 0;
        const char *n = e ? sn_errno_name(e) : "0";
        if (n)
            snprintf(out, len, "%s", n);
        else
            snprintf(out, len, "%" PRId64, e);
    } else if (strcmp(field, "ppid") == 0) {
        facts_parent(f, exit->pid);
        if (f->ppid >= 0)
            snprintf(out, len, "%" PRId64, f->ppid);
    } else if (strcmp(field, "pexecname") == 0) {
        facts_parent(f, exit->pid);
        snprintf(out, len, "%s", f->pcomm);
    } else if (strcmp(field, "container") == 0) {
        facts_cgroup(f, exit->pid);
        snprintf(out, len, "%.127s", f->cgroup);
    } else if (strcmp(field, "hostname") == 0) {
        snprintf(out, len, "%s", hostkey ? hostkey : "");
    }
}

/* Whether the predicate holds for the operation (exit, latency, exit wall time). */
static bool pred_holds(const struct sn_pred *p, const struct sn_rec_event *exit, uint64_t lat,
                       int64_t wall, struct task_facts *f)
{
    static const struct sn_metric_def *m;
    struct sn_event ev;

    if (!p)
        return true;
    if (!m)
        m = sn_catalog_metric(SN_METRIC_SYSCALLS);
    memset(&ev, 0, sizeof(ev));
    facts_parent(f, exit->pid);
    facts_cgroup(f, exit->pid);
    for (size_t i = 0; m && i < m->nfields; i++) {
        const char *n = m->fields[i].def.name;
        uint8_t id = m->fields[i].def.id;
        int64_t ret = exit->u.sys.ret;
        if (id >= SN_EVENT_MAXFIELDS)
            continue;
        if (strcmp(n, "execname") == 0)
            memcpy(ev.str[id], f->comm, strnlen(f->comm, SN_PRED_STRLEN));
        else if (strcmp(n, "pexecname") == 0)
            memcpy(ev.str[id], f->pcomm, strnlen(f->pcomm, SN_PRED_STRLEN));
        else if (strcmp(n, "pid") == 0)
            ev.num[id] = exit->pid;
        else if (strcmp(n, "ppid") == 0)
            ev.num[id] = f->ppid;
        else if (strcmp(n, "syscall") == 0)
            ev.num[id] = exit->u.sys.nr;
        else if (strcmp(n, "errno") == 0)
            ev.num[id] = ret < 0 && ret > -4096 ? -ret : 0;
        else if (strcmp(n, "latency") == 0)
            ev.num[id] = (int64_t)lat;
        else if (strcmp(n, "subsecond") == 0)
            ev.num[id] = (wall % 1000000000LL) / 1000000;
        else if (strcmp(n, "container") == 0)
            ev.num[id] = (int64_t)f->cgid;
    }
    ev.cgroup = f->cgroup[0] ? f->cgroup : NULL;
    return sn_pred_eval(p, &ev);
}

/* Whether predicate p (as given) reads a field raw events cannot tell; its name in *which. */
static bool pred_unknown_field(const json_t *p, const char **which)
{
    const char *op;
    json_t *v;

    if (!json_is_object(p))
        return false;
    json_object_foreach((json_t *)p, op, v)
    {
        size_t i;
        json_t *c;
        if (strcmp(op, "and") == 0 || strcmp(op, "or") == 0) {
            json_array_foreach(v, i, c) if (pred_unknown_field(c, which)) return true;
            continue;
        }
        const char *f = json_string_value(json_array_get(v, 0));
        if (f && (strcmp(f, "psargs") == 0 || strcmp(f, "cputime") == 0)) {
            *which = f;
            return true;
        }
    }
    return false;
}

/* Since when every CPU of the ring holds every event (wall ns): a CPU whose ring wrapped from
 * its oldest record kept, one that did not from the session's start (known to the second:
 * counted from the next one). */
static int64_t covered_from(const struct sn_recorder_peek *p, int64_t off)
{
    int64_t from = (p->started + 1) * 1000000000LL;
    for (unsigned c = 0; c < p->snap->ncpu; c++) {
        const struct sn_rec_cpu_snap *cs = &p->snap->cpu[c];
        if ((cs->from > 0 || cs->overwritten > 0) && cs->nrec > 0) {
            int64_t t = (int64_t)sn_rec_snap_record(p->snap, c, 0)->ts + off;
            from = t > from ? t : from;
        }
    }
    return from;
}

static void fill_event(const struct sn_rec_snap *snap, const struct cand *en, const struct cand *ex,
                       int64_t off, struct sn_cell_event *e)
{
    static __thread char str[SN_REC_STR_MAX];
    struct sn_rec_event a, b;

    sn_rec_slot_decode(sn_rec_snap_record(snap, ex->cpu, ex->k), ex->cpu, &b, str);
    if (sn_rec_slot_decode(sn_rec_snap_record(snap, en->cpu, en->k), en->cpu, &a, str) != 0)
        memset(&a, 0, sizeof(a));
    e->cpu = ex->cpu;
    e->tid = b.tid;
    e->pid = b.pid;
    e->nr = b.u.sys.nr;
    e->ret = b.u.sys.ret;
    e->entry_ns = (int64_t)en->ts + off;
    e->exit_ns = (int64_t)ex->ts + off;
    e->latency = ex->ts - en->ts;
    memcpy(e->args, a.u.sys.args, sizeof(e->args));
    e->path[0] = 0;
    for (int k = 0; k < SN_REC_ARGS; k++)
        if (a.u.sys.str[k]) {
            snprintf(e->path, sizeof(e->path), "%s", a.u.sys.str[k]);
            break;
        }
}

/* One session: its candidates, pairs and matches into a result of its own. */
static int one_session(struct ctx *x, const struct sn_recorder_peek *p, struct sn_cell_result *r)
{
    const struct sn_cell_query *q = x->q;
    const struct sn_rec_snap *snap = p->snap;
    int64_t m0 = q->t0 - x->off, m1 = q->t1 - x->off; /* the cell in CLOCK_MONOTONIC */
    int64_t e0 = m0 - (int64_t)(q->hi > (uint64_t)INT64_MAX / 2 ? (uint64_t)INT64_MAX / 2 : q->hi);
    struct cand *cand = NULL;
    struct tcomm *tc = NULL;
    struct match *mt = NULL;
    size_t nc = 0, cc = 0, ntc = 0, ctc = 0, nm = 0, cm = 0;
    int rc = 0;

    snprintf(r->session, sizeof(r->session), "%s", p->session);
    r->from = covered_from(p, x->off);
    for (unsigned c = 0; c < snap->ncpu && rc == 0; c++)
        for (size_t k = 0; k < snap->cpu[c].nrec && rc == 0; k++) {
            const struct sn_rec_slot *s = sn_rec_snap_record(snap, c, k);
            int64_t ts = (int64_t)s->ts;
            if (s->type == SN_RK_SCHED_SWITCH && s->nslots == 2) {
                const struct sn_rec_cont *ct = (const struct sn_rec_cont *)&s[1];
                for (int side = 0; side < 2 && rc == 0; side++) {
                    int32_t tid = (int32_t)s->a[side ? 3 : 0];
                    struct tcomm *g = sn_grow(tc, &ctc, ntc + 1, sizeof(*tc));
                    if (!g) {
                        rc = -ENOMEM;
                        break;
                    }
                    tc = g;
                    tc[ntc] = (struct tcomm){.tid = tid, .ts = s->ts};
                    memcpy(tc[ntc].comm, ct->b + (side ? SN_REC_COMM_LEN : 0), SN_REC_COMM_LEN);
                    if (tid > 0)
                        ntc++;
                }
                continue;
            }
            if (s->type != SN_RK_SYS_ENTRY && s->type != SN_RK_SYS_EXIT)
                continue;
            if (s->type == SN_RK_SYS_ENTRY && (s->a[0] & SN_REC_E_STR) &&
                ((int32_t)(uint32_t)s->a[0] == SYS_EXECVE ||
                 (int32_t)(uint32_t)s->a[0] == SYS_EXECVEAT)) {
                /* the program's name: the comm from then on (a process gone by the query,
                 * in a session without sched, is known by it) */
                static __thread char str[SN_REC_STR_MAX];
                struct sn_rec_event ev;
                const char *path = NULL;
                if (sn_rec_slot_decode(s, c, &ev, str) == 0)
                    for (int a = 0; a < SN_REC_ARGS && !path; a++)
                        path = ev.u.sys.str[a];
                struct tcomm *g = path ? sn_grow(tc, &ctc, ntc + 1, sizeof(*tc)) : NULL;
                if (path && !g) {
                    rc = -ENOMEM;
                    break;
                }
                if (g) {
                    const char *b = strrchr(path, '/');
                    tc = g;
                    tc[ntc] = (struct tcomm){.tid = (int32_t)s->tid, .exec = true, .ts = s->ts};
                    snprintf(tc[ntc].comm, sizeof(tc[ntc].comm), "%.15s", b ? b + 1 : path);
                    ntc++;
                }
            }
            if (ts >= m1 || ts < e0 || (s->type == SN_RK_SYS_EXIT && ts < m0))
                continue;
            struct cand *g = sn_grow(cand, &cc, nc + 1, sizeof(*cand));
            if (!g) {
                rc = -ENOMEM;
                break;
            }
            cand = g;
            cand[nc++] = (struct cand){.ts = s->ts,
                                       .tid = (int32_t)s->tid,
                                       .cpu = (uint16_t)c,
                                       .exit = s->type == SN_RK_SYS_EXIT,
                                       .k = (uint32_t)k};
        }
    if (rc != 0)
        goto out;
    if (nc)
        qsort(cand, nc, sizeof(*cand), cmp_cand);
    if (ntc)
        qsort(tc, ntc, sizeof(*tc), cmp_tcomm);

    char key[128];
    struct task_facts f = {0};
    size_t last = SIZE_MAX; /* the current tid's open entry */
    for (size_t i = 0; i < nc && rc == 0; i++) {
        const struct cand *c = &cand[i];
        if (i == 0 || c->tid != cand[i - 1].tid)
            last = SIZE_MAX;
        if (!c->exit) {
            last = i;
            continue;
        }
        if (last == SIZE_MAX)
            continue; /* its entry is before the window, or overwritten */
        const struct sn_rec_slot *en = sn_rec_snap_record(snap, cand[last].cpu, cand[last].k);
        const struct sn_rec_slot *ex = sn_rec_snap_record(snap, c->cpu, c->k);
        size_t open = last;
        last = SIZE_MAX;
        if ((int32_t)(uint32_t)en->a[0] != (int32_t)(uint32_t)ex->a[0])
            continue; /* not the same call: a lost record between them */
        uint64_t lat = c->ts - cand[open].ts;
        if ((int64_t)c->ts < m0 || lat < q->lo || lat >= q->hi ||
            (q->self_pid && (int32_t)ex->pid == q->self_pid))
            continue;
        if (q->key || q->pred) {
            struct sn_rec_event ev;
            memset(&ev, 0, sizeof(ev));
            ev.tid = (int32_t)ex->tid;
            ev.pid = (int32_t)ex->pid;
            ev.u.sys.nr = (int32_t)(uint32_t)ex->a[0];
            ev.u.sys.ret = (int64_t)ex->a[1];
            if (!f.comm_ok || f.tid != c->tid) {
                facts_init(&f, tc, ntc, c->tid, ev.pid, c->ts);
            } else { /* the same tid, later: an exec may have renamed it */
                const char *rcm = ring_comm(tc, ntc, c->tid, c->ts);
                if (rcm)
                    snprintf(f.comm, sizeof(f.comm), "%.16s", rcm);
            }
            if (!pred_holds(q->pred, &ev, lat, (int64_t)c->ts + x->off, &f))
                continue;
            if (q->key) {
                key_of(q->keyfield, &ev, &f, q->key, key, sizeof(key));
                if (strcmp(key, q->key) != 0)
                    continue;
            }
        }
        struct match *g = sn_grow(mt, &cm, nm + 1, sizeof(*mt));
        if (!g) {
            rc = -ENOMEM;
            break;
        }
        mt = g;
        mt[nm++] = (struct match){c->ts, (uint32_t)open, (uint32_t)i};
    }
    if (rc != 0)
        goto out;
    if (nm)
        qsort(mt, nm, sizeof(*mt), cmp_match);
    r->total = nm;
    r->n = nm < q->max ? nm : q->max;
    r->ev = calloc(r->n ? r->n : 1, sizeof(*r->ev));
    if (!r->ev) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < r->n; i++) {
        struct sn_cell_event *e = &r->ev[i];
        fill_event(snap, &cand[mt[i].entry], &cand[mt[i].exit], x->off, e);
        facts_init(&f, tc, ntc, e->tid, e->pid, cand[mt[i].exit].ts);
        memcpy(e->comm, f.comm, sizeof(e->comm));
        if (q->keyfield) {
            struct sn_rec_event ev;
            memset(&ev, 0, sizeof(ev));
            ev.tid = e->tid;
            ev.pid = e->pid;
            ev.u.sys.nr = e->nr;
            ev.u.sys.ret = e->ret;
            key_of(q->keyfield, &ev, &f, q->key, e->key, sizeof(e->key));
        }
    }
out:
    free(cand);
    free(tc);
    free(mt);
    return rc;
}

static int on_session(void *arg, const struct sn_recorder_peek *p)
{
    struct ctx *x = arg;
    struct sn_cell_result r;

    memset(&r, 0, sizeof(r));
    if (x->err)
        return 0;
    r.from = covered_from(p, x->off);
    if (x->best->state != SN_CELL_NONE && x->best->from <= r.from)
        return 0; /* one that covers at least as much was read */
    if ((x->err = one_session(x, p, &r)) != 0) {
        free(r.ev);
        return 0;
    }
    sn_cell_result_free(x->best);
    *x->best = r;
    x->best->state = SN_CELL_COVERED; /* judged at the end */
    return 0;
}

int sn_cell_events(struct sn_recorder *r, const struct sn_cell_query *q, struct sn_cell_result *out)
{
    struct timespec rt, mt;
    struct ctx x = {.q = q, .best = out};
    struct sn_cell_query qq = *q;

    memset(out, 0, sizeof(*out));
    if (q->t1 <= q->t0 || q->hi <= q->lo)
        return -EINVAL;
    if (qq.max > SN_CELL_EVENTS_MAX)
        qq.max = SN_CELL_EVENTS_MAX;
    x.q = &qq;
    if (q->key && q->keyfield && !sn_cell_field_known(q->keyfield)) {
        out->state = SN_CELL_UNSUPPORTED;
        snprintf(out->why, sizeof(out->why), "a raw event does not tell its %s", q->keyfield);
        return 0;
    }
    const char *which = NULL;
    if (q->pred_json && pred_unknown_field(q->pred_json, &which)) {
        out->state = SN_CELL_UNSUPPORTED;
        snprintf(out->why, sizeof(out->why),
                 "the predicate reads %s, which a raw event does not tell", which);
        return 0;
    }
    if (q->keyfield && !sn_cell_field_known(q->keyfield))
        qq.keyfield = NULL; /* listed without their keys */
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_MONOTONIC, &mt);
    x.off = (rt.tv_sec - mt.tv_sec) * 1000000000LL + (rt.tv_nsec - mt.tv_nsec);
    int n = sn_recorder_peek(r, q->tenant, SN_REC_G_SYSCALLS, on_session, &x);
    if (n < 0 || x.err) {
        sn_cell_result_free(out);
        return n < 0 ? n : x.err;
    }
    int64_t now = (int64_t)rt.tv_sec * 1000000000LL + rt.tv_nsec;
    if (n == 0) {
        out->state = SN_CELL_NONE;
        snprintf(out->why, sizeof(out->why), "no recording session records system calls");
    } else if (out->from >= q->t1 || q->t0 >= now) {
        out->state = SN_CELL_NOT_COVERING;
        snprintf(out->why, sizeof(out->why), "the rings of session \"%s\" do not hold that time",
                 out->session);
        free(out->ev);
        out->ev = NULL;
        out->n = 0;
        out->total = 0;
    } else if (out->from > q->t0) {
        out->state = SN_CELL_PARTIAL;
        snprintf(out->why, sizeof(out->why),
                 "the rings of session \"%s\" hold only the end of that time", out->session);
    } else {
        out->state = SN_CELL_COVERED;
    }
    return 0;
}

void sn_cell_result_free(struct sn_cell_result *res)
{
    free(res->ev);
    res->ev = NULL;
    res->n = 0;
}
