/*
 * Per-process activity per second (ktop.h). Each class id has a category computed once (a
 * switch, a system call exit, one of the read or write family); threads' processes and names
 * live in direct-mapped caches keyed by tid; the second's rows in an array with an
 * open-addressing index by pid, emptied when the second closes.
 */
#include "live/ktop.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"

#define NS       1000000000LL
#define TIDS     65536
#define MAX_SKIP 60 /* empty seconds emitted at most between two events */

enum { C_NONE, C_SWITCH, C_EXIT, C_READ, C_WRITE, C_WAKEUP };

struct thread {
    int32_t tid, pid; /* pid 0: not known */
    char comm[SN_REC_COMM_LEN + 1];
};

struct run {
    int32_t tid; /* -1: not known yet */
    uint64_t since;
};

struct sn_ktop {
    const struct sn_ctf_classes *cls;
    uint8_t *cat; /* [cls->n] */
    unsigned ncpu;
    int64_t offset;
    int64_t cur; /* the current second's start, wall ns; INT64_MIN: none yet */
    struct run *run;
    struct thread *th; /* [TIDS] */
    struct sn_ktop_row *rows;
    size_t n, cap;
    int32_t *ix; /* [ix_cap]: row index + 1, 0 empty */
    size_t ix_cap;
};

static const char *const reads[] = {"read",    "pread64",  "readv",   "preadv",
                                    "preadv2", "recvfrom", "recvmsg", NULL};
static const char *const writes[] = {"write",    "pwrite64", "writev",  "pwritev",
                                     "pwritev2", "sendto",   "sendmsg", NULL};

static bool in(const char *name, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(name, *list) == 0)
            return true;
    return false;
}

int sn_ktop_new(struct sn_ktop **out, const struct sn_ctf_classes *cls, unsigned ncpu,
                int64_t offset_ns)
{
    *out = NULL;
    if (!cls || ncpu == 0 || ncpu > 4096)
        return -EINVAL;
    struct sn_ktop *k = calloc(1, sizeof(*k));
    if (!k)
        return -ENOMEM;
    k->cls = cls;
    k->ncpu = ncpu;
    k->offset = offset_ns;
    k->cur = INT64_MIN;
    k->cat = calloc(cls->n ? cls->n : 1, 1);
    k->run = calloc(ncpu, sizeof(*k->run));
    k->th = calloc(TIDS, sizeof(*k->th));
    k->ix_cap = 1024;
    k->ix = calloc(k->ix_cap, sizeof(*k->ix));
    if (!k->cat || !k->run || !k->th || !k->ix) {
        sn_ktop_free(k);
        return -ENOMEM;
    }
    for (unsigned c = 0; c < ncpu; c++)
        k->run[c].tid = -1;
    for (size_t i = 0; i < cls->n; i++) {
        const char *name = cls->c[i].name;
        if (strcmp(name, "sched_switch") == 0)
            k->cat[i] = C_SWITCH;
        else if (strcmp(name, "sched_wakeup") == 0 || strcmp(name, "sched_wakeup_new") == 0)
            k->cat[i] = C_WAKEUP;
        else if (strncmp(name, "syscall_exit_", 13) == 0)
            k->cat[i] = in(name + 13, reads) ? C_READ : in(name + 13, writes) ? C_WRITE : C_EXIT;
    }
    *out = k;
    return 0;
}

void sn_ktop_free(struct sn_ktop *k)
{
    if (!k)
        return;
    free(k->cat);
    free(k->run);
    free(k->th);
    free(k->rows);
    free(k->ix);
    free(k);
}

static struct thread *thread(struct sn_ktop *k, int32_t tid)
{
    struct thread *t = &k->th[(uint32_t)tid % TIDS];
    if (t->tid != tid)
        *t = (struct thread){.tid = tid};
    return t;
}

static void learn_comm(struct sn_ktop *k, int32_t tid, const char *comm)
{
    if (tid > 0)
        snprintf(thread(k, tid)->comm, sizeof(((struct thread *)0)->comm), "%s", comm);
}

/* The row of pid this second (made when absent); NULL when memory is short. */
static struct sn_ktop_row *row(struct sn_ktop *k, int32_t pid)
{
    size_t mask = k->ix_cap - 1, h = ((uint32_t)pid * 2654435761u) & mask;
    for (; k->ix[h]; h = (h + 1) & mask)
        if (k->rows[k->ix[h] - 1].pid == pid)
            return &k->rows[k->ix[h] - 1];
    if ((k->n + 1) * 2 > k->ix_cap) { /* grow the index, then look again */
        int32_t *g = calloc(k->ix_cap * 2, sizeof(*g));
        if (!g)
            return NULL;
        free(k->ix);
        k->ix = g;
        k->ix_cap *= 2;
        mask = k->ix_cap - 1;
        for (size_t i = 0; i < k->n; i++) {
            size_t j = ((uint32_t)k->rows[i].pid * 2654435761u) & mask;
            while (k->ix[j])
                j = (j + 1) & mask;
            k->ix[j] = (int32_t)i + 1;
        }
        h = ((uint32_t)pid * 2654435761u) & mask;
        while (k->ix[h])
            h = (h + 1) & mask;
    }
    struct sn_ktop_row *g = sn_grow(k->rows, &k->cap, k->n + 1, sizeof(*g));
    if (!g)
        return NULL;
    k->rows = g;
    k->rows[k->n] = (struct sn_ktop_row){.pid = pid};
    k->ix[h] = (int32_t)++k->n;
    return &k->rows[k->n - 1];
}

static int by_activity(const void *a, const void *b)
{
    const struct sn_ktop_row *x = a, *y = b;
    if (x->cpu_ns != y->cpu_ns)
        return x->cpu_ns < y->cpu_ns ? 1 : -1;
    if (x->syscalls != y->syscalls)
        return x->syscalls < y->syscalls ? 1 : -1;
    return (x->pid > y->pid) - (x->pid < y->pid);
}

static void close_second(struct sn_ktop *k, sn_ktop_emit emit, void *ctx)
{
    uint64_t start = (uint64_t)(k->cur - k->offset), end = start + NS; /* monotonic */
    for (unsigned c = 0; c < k->ncpu; c++) {
        struct run *r = &k->run[c];
        if (r->tid <= 0 || r->since >= end)
            continue;
        struct thread *t = &k->th[(uint32_t)r->tid % TIDS];
        if (t->tid != r->tid || t->pid <= 0)
            continue; /* its process is not known: counted at its switch-out */
        struct sn_ktop_row *w = row(k, t->pid);
        if (w)
            w->cpu_ns += end - (r->since > start ? r->since : start);
        r->since = end;
    }
    for (size_t i = 0; i < k->n; i++) {
        struct sn_ktop_row *w = &k->rows[i];
        const struct thread *t = &k->th[(uint32_t)w->pid % TIDS];
        if (t->tid == w->pid && t->comm[0])
            snprintf(w->comm, sizeof(w->comm), "%s", t->comm);
        else if (!w->comm[0])
            snprintf(w->comm, sizeof(w->comm), "?");
    }
    if (k->n > 1)
        qsort(k->rows, k->n, sizeof(*k->rows), by_activity);
    emit(ctx, k->cur, k->rows, k->n);
    k->n = 0;
    memset(k->ix, 0, k->ix_cap * sizeof(*k->ix));
    k->cur += NS;
}

void sn_ktop_advance(struct sn_ktop *k, int64_t now_ns, sn_ktop_emit emit, void *ctx)
{
    int64_t sec = now_ns - ((now_ns % NS) + NS) % NS;
    if (k->cur == INT64_MIN)
        return;
    if (sec - k->cur > MAX_SKIP * NS) {
        close_second(k, emit, ctx);
        k->cur = sec;
    }
    while (k->cur < sec)
        close_second(k, emit, ctx);
}

void sn_ktop_flush(struct sn_ktop *k, sn_ktop_emit emit, void *ctx)
{
    if (k->cur != INT64_MIN)
        close_second(k, emit, ctx);
}

/* Adds the thread's name to its row when the row has none (a process whose main thread is not
 * seen takes its first thread's). */
static void name_row(struct sn_ktop *k, struct sn_ktop_row *w, int32_t tid)
{
    const struct thread *t = &k->th[(uint32_t)tid % TIDS];
    if (!w->comm[0] && t->tid == tid && t->comm[0])
        snprintf(w->comm, sizeof(w->comm), "%s", t->comm);
}

int sn_ktop_event(struct sn_ktop *k, unsigned cpu, const struct sn_ctf_rd_event *ev,
                  sn_ktop_emit emit, void *ctx)
{
    if (cpu >= k->ncpu)
        return -EINVAL;
    int64_t wall = (int64_t)ev->ts + k->offset;
    sn_ktop_advance(k, wall, emit, ctx);
    if (k->cur == INT64_MIN)
        k->cur = wall - ((wall % NS) + NS) % NS;
    if (ev->tid > 0)
        thread(k, ev->tid)->pid = ev->pid;
    uint8_t cat = ev->cls->id < k->cls->n ? k->cat[ev->cls->id] : C_NONE;
    char comm[SN_REC_COMM_LEN + 1];
    int64_t v;
    struct sn_ktop_row *w;
    switch (cat) {
    case C_SWITCH: {
        if (!sn_ctf_rd_str(ev, "prev_comm", comm, sizeof(comm)))
            learn_comm(k, ev->tid, comm);
        int64_t next = -1;
        if (!sn_ctf_rd_int(ev, "next_tid", &next) &&
            !sn_ctf_rd_str(ev, "next_comm", comm, sizeof(comm)))
            learn_comm(k, (int32_t)next, comm);
        struct run *r = &k->run[cpu];
        uint64_t start = (uint64_t)(k->cur - k->offset), from = r->since;
        from = from > start ? from : start; /* earlier seconds are closed */
        if (r->tid == ev->tid && ev->tid > 0 && ev->pid > 0 && ev->ts > from) {
            if (!(w = row(k, ev->pid)))
                return -ENOMEM;
            w->cpu_ns += ev->ts - from;
            name_row(k, w, ev->tid);
        }
        *r = (struct run){.tid = (int32_t)next, .since = ev->ts};
        break;
    }
    case C_WAKEUP:
        if (!sn_ctf_rd_str(ev, "comm", comm, sizeof(comm)) && !sn_ctf_rd_int(ev, "tid", &v))
            learn_comm(k, (int32_t)v, comm);
        break;
    case C_EXIT:
    case C_READ:
    case C_WRITE:
        if (ev->pid <= 0)
            break;
        if (!(w = row(k, ev->pid)))
            return -ENOMEM;
        w->syscalls++;
        name_row(k, w, ev->tid);
        if (cat != C_EXIT && !sn_ctf_rd_int(ev, "ret", &v) && v > 0) {
            if (cat == C_READ)
                w->read_bytes += (uint64_t)v;
            else
                w->write_bytes += (uint64_t)v;
        }
        break;
    default:
        break;
    }
    return 0;
}
