/*
 * Sampled metrics; see sampled.h. What is read, and why that way:
 *
 *   cpu.usage       /proc/stat's "cpu" line (the host) and cpu.stat of each populated leaf
 *                   cgroup of the v2 hierarchy. Leaves are disjoint and their counters are
 *                   hierarchical, so a leaf row is exact for its subtree; the root "/" gets the
 *                   host's usage minus all leaf rows (clamped at 0), so the rows of a mode sum to
 *                   the host's. user = user + nice, kernel = system + irq + softirq on both sides
 *                   (what cgroup's rstat charges). Cells sum microseconds by key first and turn
 *                   each into percent of one CPU over the measured interval between the two
 *                   readings (CLOCK_MONOTONIC at the /proc/stat reads), rounded.
 *                   Populated is cgroup.events' "populated 1". A leaf that was read while
 *                   populated is read once more after it empties (its last partial second
 *                   stays its own), then its counters are carried unread: an empty cgroup
 *                   accrues nothing. A cgroup new since the previous reading is read even when
 *                   empty and counts from 0 (its counters started at its creation); one that only
 *                   now became a populated leaf without a counter we trust (it was an inner
 *                   cgroup) gives a baseline only. CG_MAX_DEPTH levels down, a cgroup counts as
 *                   a leaf (its counters cover its subtree).
 *   memory.rss      one pass over /proc/<pid>/stat (processes, not threads): resident pages
 *   memory.pageins  (field 24, the same get_mm_rss() as statm's second field, one file fewer) and
 *                   major faults (field 12, whole process including exited threads), grouped by
 *                   the process's v2 cgroup (/proc/<pid>/cgroup, looked up only for a process
 *                   that contributes, ids cached by path within a reading). Page-ins are per
 *                   process differences; a process not in the previous reading counts all its
 *                   faults when it started (field 22) at or after the previous pass began, else
 *                   it is a baseline; a pid whose start time changed is a new process. The root
 *                   "/" also gets /proc/vmstat's pgmajfault difference minus all process rows
 *                   (clamped at 0): faults of processes that exited, and of kernel threads.
 *   nic.*           /proc/net/dev (this network namespace): per interface and direction,
 *                   differences; a counter that went backwards (interface reset) or an interface
 *                   new since the previous reading counts from 0.
 *
 * A difference is between a source's last two readings, whatever other readings came between:
 * the agent takes a reading of just the metric it enables (agent/agent.c), which must not cost
 * the metrics already enabled their next difference. That reading is also what keeps a source
 * read again after a pause from reporting the whole pause as one interval: a caller that stops
 * reading a metric takes a fresh reading of it when it starts again (cpu.usage is a rate over
 * the measured interval and does not care). A source whose reading failed gives a baseline
 * next time. A source not read by the last reading has no rows.
 *
 * Rows of a container carry its cgroup path (text kept for the reading), which is what the
 * predicate's "under" leaves compare: the walk's path for cpu.usage, the process's
 * /proc/<pid>/cgroup for memory ("/" for a row counted in the root because its cgroup was
 * gone), "/" for the root's rows.
 *
 * Cells: rows that pass the predicate are summed by key; zero cells are never emitted (point
 * and interval metrics alike; a cpu.usage cell that rounds to 0 percent included). When a
 * decomposition has more nonzero keys than key_cap, the largest key_cap keep their key and the
 * rest are summed into the one "other" cell (the kernel keeps the first ones it sees; here all
 * rows are known at once, so keep the ones worth showing). num_field is ignored: these metrics
 * have no numeric fields, and .ord is always 0.
 *
 * Costs: per cgroup a directory read, per leaf cgroup.events, per populated leaf cpu.stat; per
 * process /proc/<pid>/stat, and /proc/<pid>/cgroup only for one with resident pages (rss asked
 * for) or new major faults, so not for kernel threads; /proc/stat, /proc/vmstat, /proc/net/dev.
 * The /proc files dominate (tens of us each; about 2 ms for 80 processes on a small VM). Tables
 * grow with what exists (processes, cgroups, interfaces), are double-buffered and reused across
 * readings; per reading only libc's directory streams and stdio (sn_cgroup_of_pid) allocate.
 * Not thread-safe.
 *
 * The text of those files is parsed by agent/procfs.c (pure functions, fuzzed); this file does
 * the I/O and the bookkeeping.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/cgroup.h"
#include "agent/predicate.h"
#include "agent/procfs.h"
#include "agent/sampled.h"
#include "core/clock.h"
#include "core/grow.h"

#define CG_MAX_DEPTH 32         /* deeper cgroups count in their ancestor at this depth */
#define FILE_MAX     (8u << 20) /* largest host file read whole (/proc/net/dev, /proc/vmstat) */

#define NO_PATH UINT32_MAX

struct row {
    int64_t container;   /* SN_SC_CONTAINER */
    uint32_t cg;         /* its path in the reading's cg_text, or NO_PATH */
    int64_t optype;      /* SN_SC_OPTYPE: cpumode or direction */
    char dev[SN_KEYLEN]; /* SN_SC_DEVICE */
    uint64_t value;      /* usec (cpu.usage), bytes, pages, packets */
};

struct rows {
    struct row *v;
    size_t n, cap;
};

struct cg_ent {
    uint64_t id;
    uint64_t user, sys; /* usec, when has_stat */
    bool has_stat;      /* user, sys are the cgroup's counters, good as a baseline */
    bool populated;     /* when they were read */
};

struct proc_ent {
    int pid;
    uint64_t start; /* clock ticks since boot */
    uint64_t majflt;
};

struct nic_ent {
    char name[SN_KEYLEN];
    uint64_t in, out; /* received, transmitted (bytes or packets) */
};

/* nic.bytes and nic.packets keep separate baselines: the agent's first reading of one must not
 * restart the other's interval. */
struct nic_src {
    uint64_t seq; /* reading that last read it; 0 never, or it failed */
    struct nic_ent *v[2];
    size_t n[2], cap[2];
    int cur;
    struct rows rows;
};

/* A cgroup met in this /proc pass, by path, with what its processes added up to. */
struct cg_acc {
    uint64_t hash, id, rss, pageins;
    size_t off, len; /* path in acc_text */
};

struct kv {
    char key[SN_KEYLEN];
    uint64_t sum;
};

struct sn_sampler {
    uint64_t seq; /* readings taken */
    long tck, page;
    uint64_t root_id; /* 0 without cgroup v2 */

    /* cpu.usage */
    uint64_t cpu_seq; /* reading that last read it; 0 never, or it failed */
    struct cg_ent *cg[2];
    size_t ncg[2], capcg[2];
    int cgcur;
    uint64_t host_user, host_sys; /* usec */
    int64_t cpu_ns;               /* CLOCK_MONOTONIC at the /proc/stat read */
    uint64_t cpu_wall_us;         /* interval the cpu rows cover */
    struct rows cpu;

    /* memory.rss, memory.pageins */
    uint64_t pg_seq;
    struct proc_ent *pr[2];
    size_t npr[2], cappr[2];
    int prcur;
    uint64_t pg_ticks; /* CLOCK_BOOTTIME in clock ticks when the last pass began */
    uint64_t vm_majflt;
    bool vm_ok;
    struct rows rss, pageins;
    struct cg_acc *acc;
    size_t nacc, capacc;
    uint32_t *acc_slot; /* open addressing: index + 1 into acc, 0 empty */
    size_t nslot;       /* power of 2 */
    char *acc_text;
    size_t ntext, captext;

    /* nic.bytes, nic.packets */
    struct nic_src nic[2];

    /* the cgroup paths of this reading's rows, each NUL terminated */
    char *cg_text;
    size_t ncg_text, capcg_text;

    /* scratch */
    char *buf;
    size_t capbuf;
    struct kv *kv;
    size_t capkv;
};

/* Makes room for need elements in *v (capacity *cap): sn_grow() in place. */
static int grow(void *v, size_t *cap, size_t need, size_t elem)
{
    void **p = v;
    void *q = sn_grow(*p, cap, need, elem);

    if (!q)
        return -ENOMEM;
    *p = q;
    return 0;
}

/* Keeps path (len bytes) for this reading's rows: its offset in cg_text, or NO_PATH. */
static uint32_t keep_path(struct sn_sampler *s, const char *path, size_t len)
{
    size_t off = s->ncg_text;

    if (off + len + 1 >= NO_PATH || grow(&s->cg_text, &s->capcg_text, off + len + 1, 1) < 0)
        return NO_PATH;
    memcpy(s->cg_text + off, path, len);
    s->cg_text[off + len] = '\0';
    s->ncg_text += len + 1;
    return (uint32_t)off;
}

static int add_row(struct rows *r, int64_t container, uint32_t cg, int64_t optype, const char *dev,
                   uint64_t value)
{
    if (value == 0)
        return 0;
    if (grow(&r->v, &r->cap, r->n + 1, sizeof(*r->v)) < 0)
        return -ENOMEM;
    struct row *w = &r->v[r->n++];
    memset(w, 0, sizeof(*w));
    w->container = container;
    w->cg = cg;
    w->optype = optype;
    if (dev)
        memcpy(w->dev, dev, SN_KEYLEN);
    w->value = value;
    return 0;
}

static int64_t now_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t sub0(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

/* Reads all of fd (then closes it) into *buf of capacity *cap, NUL terminated, growing it up
 * to max bytes (max <= *cap: no growth); what does not fit is left out. Returns the length or
 * -errno. */
static ssize_t read_fd(int fd, char **buf, size_t *cap, size_t max)
{
    size_t n = 0;

    if (fd < 0)
        return -errno;
    for (;;) {
        if (n + 1 >= *cap && (*cap >= max || grow(buf, cap, *cap * 2, 1) < 0))
            break; /* keep what fits */
        ssize_t r = read(fd, *buf + n, *cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return -e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    (*buf)[n] = '\0';
    return (ssize_t)n;
}

/* Reads a small file at dfd/name into buf (NUL terminated, truncated to len - 1). Returns its
 * length or -errno. */
static ssize_t read_small(int dfd, const char *name, char *buf, size_t len)
{
    size_t cap = len;
    return read_fd(openat(dfd, name, O_RDONLY | O_CLOEXEC), &buf, &cap, len);
}

/* Reads a whole file into s->buf (grown up to FILE_MAX). Returns its length or -errno. */
static ssize_t read_whole(struct sn_sampler *s, const char *path)
{
    return read_fd(open(path, O_RDONLY | O_CLOEXEC), &s->buf, &s->capbuf, FILE_MAX);
}

/* ---- cpu.usage ----------------------------------------------------------------------------- */

static int cmp_cg(const void *a, const void *b)
{
    const struct cg_ent *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

struct walk {
    struct sn_sampler *s;
    const struct cg_ent *prev;
    size_t nprev;
    bool deltas; /* the previous reading read cpu too */
    uint64_t sum_user, sum_sys;
    int err;
    char path[4096]; /* of the cgroup being visited, below the root */
    size_t plen;
    int lost; /* levels whose name did not fit in path */
};

/* One cgroup of the walk (not the root): remembers it, and for a leaf adds its rows. */
static void visit(struct walk *w, int dfd, uint64_t id, bool leaf)
{
    struct sn_sampler *s = w->s;
    struct cg_ent key = {.id = id};
    const struct cg_ent *p =
        w->nprev ? bsearch(&key, w->prev, w->nprev, sizeof(key), cmp_cg) : NULL;
    struct cg_ent e = {.id = id};
    char buf[1024];
    int cur = s->cgcur;

    if (leaf) {
        bool populated = false; /* also when cgroup.events is unreadable or odd */
        ssize_t n = read_small(dfd, "cgroup.events", buf, sizeof(buf));
        if (n > 0)
            sn_procfs_cg_populated(buf, (size_t)n, &populated);
        struct sn_procfs_cg_cpu st;
        if ((populated || !p || (p->has_stat && p->populated)) &&
            (n = read_small(dfd, "cpu.stat", buf, sizeof(buf))) > 0 &&
            sn_procfs_cg_cpu_stat(buf, (size_t)n, &st) == 0) {
            uint64_t u = st.user_usec, sy = st.system_usec;
            e.has_stat = true;
            e.populated = populated;
            e.user = u;
            e.sys = sy;
            uint64_t du = 0, ds = 0;
            if (w->deltas && p && p->has_stat) {
                du = sub0(u, p->user);
                ds = sub0(sy, p->sys);
            } else if (w->deltas && !p) { /* created since the previous reading */
                du = u;
                ds = sy;
            }
            w->sum_user += du;
            w->sum_sys += ds;
            uint32_t cg = w->lost || !(du || ds) ? NO_PATH : keep_path(s, w->path, w->plen);
            if (add_row(&s->cpu, (int64_t)id, cg, SN_CPUMODE_USER, NULL, du) < 0 ||
                add_row(&s->cpu, (int64_t)id, cg, SN_CPUMODE_KERNEL, NULL, ds) < 0)
                w->err = -ENOMEM;
        } else if (!populated && p && p->has_stat) {
            e = *p; /* empty: nothing accrues, the counters still hold */
        }
    }
    if (grow(&s->cg[cur], &s->capcg[cur], s->ncg[cur] + 1, sizeof(e)) < 0) {
        w->err = -ENOMEM;
        return;
    }
    s->cg[cur][s->ncg[cur]++] = e;
}

static bool is_dir(int dfd, const struct dirent *d)
{
    struct stat st;

    if (d->d_type == DT_DIR)
        return true;
    if (d->d_type != DT_UNKNOWN)
        return false;
    return fstatat(dfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/* Walks the cgroup open at fd (consumed), depth first; leaves are dirs without child dirs. */
static void walk_dir(struct walk *w, int fd, uint64_t id, int depth)
{
    DIR *d = fdopendir(fd);
    struct dirent *e;
    bool leaf = true;

    if (!d) {
        close(fd);
        return;
    }
    while (depth < CG_MAX_DEPTH && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || !is_dir(dirfd(d), e))
            continue;
        leaf = false;
        int cfd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cfd < 0) /* removed meanwhile */
            continue;
        size_t at = w->plen, n = strlen(e->d_name);
        bool fits = at + 1 + n < sizeof(w->path);
        if (fits) {
            w->path[at] = '/';
            memcpy(w->path + at + 1, e->d_name, n + 1);
            w->plen = at + 1 + n;
        }
        w->lost += !fits;
        walk_dir(w, cfd, (uint64_t)e->d_ino, depth + 1);
        w->lost -= !fits;
        w->plen = at;
        w->path[at] = '\0';
    }
    if (depth > 0)
        visit(w, dirfd(d), id, leaf);
    closedir(d);
}

/* /proc/stat's first line: host user and kernel time in usec. */
static int read_host_cpu(struct sn_sampler *s, uint64_t *user, uint64_t *sys)
{
    char buf[512];
    struct sn_procfs_cpu c;
    ssize_t n = read_small(AT_FDCWD, "/proc/stat", buf, sizeof(buf));

    if (n < 0)
        return (int)n;
    if (sn_procfs_stat_cpu(buf, (size_t)n, &c) < 0)
        return -EIO;
    *user = (c.user + c.nice) * 1000000 / (uint64_t)s->tck;
    *sys = (c.system + c.irq + c.softirq) * 1000000 / (uint64_t)s->tck;
    return 0;
}

static int read_cpu(struct sn_sampler *s)
{
    struct walk w = {.s = s, .deltas = s->cpu_seq != 0};
    const char *root = sn_cgroup_root();
    uint64_t hu = 0, hs = 0;
    int64_t t = sn_mono_ns();
    int rc = read_host_cpu(s, &hu, &hs);

    if (rc < 0) {
        s->cpu_seq = 0;
        return rc;
    }
    w.prev = s->cg[s->cgcur];
    w.nprev = s->ncg[s->cgcur];
    s->cgcur ^= 1;
    s->ncg[s->cgcur] = 0;
    if (root) {
        int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0)
            walk_dir(&w, fd, s->root_id, 0);
    }
    if (s->ncg[s->cgcur] > 1) /* (qsort's array may not be NULL, even when empty) */
        qsort(s->cg[s->cgcur], s->ncg[s->cgcur], sizeof(struct cg_ent), cmp_cg);
    if (w.deltas) {
        uint32_t cg = keep_path(s, "/", 1);
        s->cpu_wall_us = (uint64_t)(t - s->cpu_ns) / 1000;
        if (add_row(&s->cpu, (int64_t)s->root_id, cg, SN_CPUMODE_USER, NULL,
                    sub0(sub0(hu, s->host_user), w.sum_user)) < 0 ||
            add_row(&s->cpu, (int64_t)s->root_id, cg, SN_CPUMODE_KERNEL, NULL,
                    sub0(sub0(hs, s->host_sys), w.sum_sys)) < 0)
            w.err = -ENOMEM;
    } else {
        s->cpu.n = 0; /* a baseline: no rows yet */
    }
    s->host_user = hu;
    s->host_sys = hs;
    s->cpu_ns = t;
    s->cpu_seq = w.err ? 0 : s->seq;
    if (w.err)
        s->cpu.n = 0;
    return w.err;
}

/* ---- memory.rss, memory.pageins ------------------------------------------------------------ */

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
    return h;
}

static int rehash(struct sn_sampler *s, size_t nslot)
{
    uint32_t *t = calloc(nslot, sizeof(*t));

    if (!t)
        return -ENOMEM;
    for (size_t i = 0; i < s->nacc; i++) {
        size_t j = s->acc[i].hash & (nslot - 1);
        while (t[j])
            j = (j + 1) & (nslot - 1);
        t[j] = (uint32_t)i + 1;
    }
    free(s->acc_slot);
    s->acc_slot = t;
    s->nslot = nslot;
    return 0;
}

/* The accumulator of the cgroup at path, added (with its id) on first sight in this pass. */
static struct cg_acc *acc_of(struct sn_sampler *s, const char *path)
{
    size_t len = strlen(path), j;
    uint64_t h = fnv1a(path, len);

    if ((s->nacc + 1) * 2 > s->nslot && rehash(s, s->nslot ? s->nslot * 2 : 64) < 0)
        return NULL;
    for (j = h & (s->nslot - 1); s->acc_slot[j]; j = (j + 1) & (s->nslot - 1)) {
        struct cg_acc *a = &s->acc[s->acc_slot[j] - 1];
        if (a->hash == h && a->len == len && memcmp(s->acc_text + a->off, path, len) == 0)
            return a;
    }
    if (s->nacc >= UINT32_MAX - 1 || grow(&s->acc, &s->capacc, s->nacc + 1, sizeof(*s->acc)) < 0 ||
        grow(&s->acc_text, &s->captext, s->ntext + len, 1) < 0)
        return NULL;
    struct cg_acc *a = &s->acc[s->nacc];
    memset(a, 0, sizeof(*a));
    a->hash = h;
    a->off = s->ntext;
    a->len = len;
    memcpy(s->acc_text + s->ntext, path, len);
    s->ntext += len;
    if (!sn_cgroup_id(path, &a->id))
        a->id = s->root_id; /* gone meanwhile, or outside our view: count it in the root */
    s->acc_slot[j] = (uint32_t)++s->nacc;
    return a;
}

static void acc_reset(struct sn_sampler *s)
{
    s->nacc = 0;
    s->ntext = 0;
    if (s->acc_slot)
        memset(s->acc_slot, 0, s->nslot * sizeof(*s->acc_slot));
}

static int cmp_proc(const void *a, const void *b)
{
    const struct proc_ent *x = a, *y = b;
    return (x->pid > y->pid) - (x->pid < y->pid);
}

/* Fields of /proc/<pid>/stat we use. False when the process is gone or the line is odd. */
static bool read_proc_stat(int procfd, int pid, uint64_t *majflt, uint64_t *start, uint64_t *rss)
{
    char path[32], buf[4096];
    struct sn_procfs_pid_stat st;
    ssize_t n;

    snprintf(path, sizeof(path), "%d/stat", pid);
    if ((n = read_small(procfd, path, buf, sizeof(buf))) <= 0 ||
        sn_procfs_pid_stat(buf, (size_t)n, &st) < 0)
        return false;
    *majflt = st.majflt;
    *start = st.starttime;
    *rss = st.rss;
    return true;
}

static int read_procs(struct sn_sampler *s, bool want_rss, bool want_pg)
{
    bool deltas = want_pg && s->pg_seq != 0;
    uint64_t ticks = (uint64_t)now_ns(CLOCK_BOOTTIME) / 1000 * (uint64_t)s->tck / 1000000;
    const struct proc_ent *prev = s->pr[s->prcur];
    size_t nprev = s->npr[s->prcur];
    uint64_t sum_pg = 0;
    int cur = s->prcur ^ 1, err = 0;
    bool sorted = true;
    struct dirent *e;
    DIR *d = opendir("/proc");
    char cgpath[4096];

    s->npr[cur] = 0;
    acc_reset(s);
    if (!d) {
        s->pg_seq = 0;
        return -errno;
    }
    while (!err && (e = readdir(d))) {
        char *endp;
        long pid = strtol(e->d_name, &endp, 10);
        uint64_t majflt = 0, start = 0, rss = 0, dpg = 0;
        if (e->d_name[0] < '1' || e->d_name[0] > '9' || *endp || pid > INT_MAX)
            continue;
        if (!read_proc_stat(dirfd(d), (int)pid, &majflt, &start, &rss))
            continue; /* exited meanwhile (ENOENT, ESRCH) */
        if (want_pg) {
            struct proc_ent key = {.pid = (int)pid};
            const struct proc_ent *p =
                nprev ? bsearch(&key, prev, nprev, sizeof(key), cmp_proc) : NULL;
            if (deltas && p && p->start == start)
                dpg = sub0(majflt, p->majflt);
            else if (deltas && start >= s->pg_ticks) /* new, or a reused pid */
                dpg = majflt;
            if (grow(&s->pr[cur], &s->cappr[cur], s->npr[cur] + 1, sizeof(struct proc_ent)) < 0) {
                err = -ENOMEM;
                break;
            }
            if (s->npr[cur] && s->pr[cur][s->npr[cur] - 1].pid > (int)pid)
                sorted = false;
            s->pr[cur][s->npr[cur]++] = (struct proc_ent){(int)pid, start, majflt};
        }
        if (!(want_rss && rss) && !dpg)
            continue; /* kernel threads, idle processes: no cgroup lookup */
        if (!sn_cgroup_of_pid((int)pid, cgpath, sizeof(cgpath))) {
            if (s->root_id) /* has a v2 entry on this host: it exited */
                continue;
            snprintf(cgpath, sizeof(cgpath), "/");
        }
        struct cg_acc *a = acc_of(s, cgpath);
        if (!a) {
            err = -ENOMEM;
            break;
        }
        if (want_rss)
            a->rss += rss * (uint64_t)s->page;
        a->pageins += dpg;
        sum_pg += dpg;
    }
    closedir(d);
    if (!sorted)
        qsort(s->pr[cur], s->npr[cur], sizeof(struct proc_ent), cmp_proc);
    for (size_t i = 0; !err && i < s->nacc; i++) {
        const struct cg_acc *a = &s->acc[i];
        uint32_t cg = NO_PATH;
        if ((want_rss && a->rss) || (deltas && a->pageins))
            cg = a->id == s->root_id ? keep_path(s, "/", 1) /* also when it fell back there */
                                     : keep_path(s, s->acc_text + a->off, a->len);
        if ((want_rss && add_row(&s->rss, (int64_t)a->id, cg, 0, NULL, a->rss) < 0) ||
            (deltas && add_row(&s->pageins, (int64_t)a->id, cg, 0, NULL, a->pageins) < 0))
            err = -ENOMEM;
    }
    if (want_pg && !err) {
        uint64_t v = 0;
        ssize_t n = read_whole(s, "/proc/vmstat");
        bool ok = n > 0 && sn_procfs_vmstat_pgmajfault(s->buf, (size_t)n, &v) == 0;
        if (deltas && ok && s->vm_ok &&
            add_row(&s->pageins, (int64_t)s->root_id, keep_path(s, "/", 1), 0, NULL,
                    sub0(sub0(v, s->vm_majflt), sum_pg)) < 0)
            err = -ENOMEM;
        s->vm_ok = ok;
        s->vm_majflt = ok ? v : 0;
        s->prcur = cur;
        s->pg_ticks = ticks;
        s->pg_seq = s->seq;
    }
    if (err) {
        s->rss.n = s->pageins.n = 0;
        s->pg_seq = 0;
    }
    return err;
}

/* ---- nic.bytes, nic.packets ---------------------------------------------------------------- */

static int cmp_nic(const void *a, const void *b)
{
    return memcmp(((const struct nic_ent *)a)->name, ((const struct nic_ent *)b)->name, SN_KEYLEN);
}

/* Adds interface n's counters to the table of src being built, and its rows. */
static int nic_add(struct nic_src *src, const struct nic_ent *n)
{
    int cur = src->cur ^ 1;
    const struct nic_ent *p =
        src->n[src->cur] ? bsearch(n, src->v[src->cur], src->n[src->cur], sizeof(*n), cmp_nic)
                         : NULL;

    if (grow(&src->v[cur], &src->cap[cur], src->n[cur] + 1, sizeof(*n)) < 0)
        return -ENOMEM;
    src->v[cur][src->n[cur]++] = *n;
    if (!src->seq)
        return 0;
    /* a counter that went backwards, or a new interface: counts from 0 */
    if (add_row(&src->rows, 0, NO_PATH, SN_DIR_IN, n->name,
                p && n->in >= p->in ? n->in - p->in : n->in) < 0 ||
        add_row(&src->rows, 0, NO_PATH, SN_DIR_OUT, n->name,
                p && n->out >= p->out ? n->out - p->out : n->out) < 0)
        return -ENOMEM;
    return 0;
}

_Static_assert(SN_PROCFS_IFNAMSIZ == SN_KEYLEN, "an interface name is a key");

/* Reads /proc/net/dev for the sources in want (0 bytes, 1 packets). */
static int read_nic(struct sn_sampler *s, const bool want[2])
{
    ssize_t len = read_whole(s, "/proc/net/dev");
    struct sn_procfs_netdev_iter it;
    struct sn_procfs_netdev d;
    int err = 0;

    for (int k = 0; k < 2; k++)
        s->nic[k].n[s->nic[k].cur ^ 1] = 0;
    if (len < 0) {
        s->nic[0].seq = s->nic[1].seq = 0;
        return (int)len;
    }
    /* malformed lines are skipped, as they always were */
    sn_procfs_netdev_begin(&it, s->buf, (size_t)len);
    while (!err && sn_procfs_netdev_next(&it, &d)) {
        struct nic_ent n;
        memcpy(n.name, d.name, SN_KEYLEN);
        for (int k = 0; k < 2 && !err; k++) {
            n.in = k ? d.rx_packets : d.rx_bytes;
            n.out = k ? d.tx_packets : d.tx_bytes;
            if (want[k])
                err = nic_add(&s->nic[k], &n);
        }
    }
    for (int k = 0; k < 2; k++) {
        struct nic_src *src = &s->nic[k];
        if (!want[k])
            continue;
        src->cur ^= 1;
        if (src->n[src->cur] > 1)
            qsort(src->v[src->cur], src->n[src->cur], sizeof(struct nic_ent), cmp_nic);
        src->seq = err ? 0 : s->seq;
        if (err)
            src->rows.n = 0;
    }
    return err;
}

/* ---- the interface ------------------------------------------------------------------------- */

int sn_sampler_open(struct sn_sampler **out)
{
    struct sn_sampler *s = calloc(1, sizeof(*s));

    *out = NULL;
    if (!s)
        return -ENOMEM;
    s->tck = sysconf(_SC_CLK_TCK);
    s->page = sysconf(_SC_PAGESIZE);
    if (s->tck <= 0)
        s->tck = 100;
    if (s->page <= 0)
        s->page = 4096;
    if (!sn_cgroup_root() || !sn_cgroup_id("/", &s->root_id))
        s->root_id = 0;
    if (grow(&s->buf, &s->capbuf, 16384, 1) < 0) {
        free(s);
        return -ENOMEM;
    }
    *out = s;
    return 0;
}

void sn_sampler_close(struct sn_sampler *s)
{
    if (!s)
        return;
    for (int i = 0; i < 2; i++) {
        free(s->cg[i]);
        free(s->pr[i]);
        free(s->nic[0].v[i]);
        free(s->nic[1].v[i]);
    }
    free(s->cpu.v);
    free(s->rss.v);
    free(s->pageins.v);
    free(s->nic[0].rows.v);
    free(s->nic[1].rows.v);
    free(s->acc);
    free(s->acc_slot);
    free(s->acc_text);
    free(s->cg_text);
    free(s->buf);
    free(s->kv);
    free(s);
}

#define BIT(m) (1ull << (m))

int sn_sampler_read(struct sn_sampler *s, uint64_t mask)
{
    bool rss = mask & BIT(SN_METRIC_MEM_RSS), pg = mask & BIT(SN_METRIC_MEM_PAGEINS);
    int rc = 0, r;

    s->seq++;
    s->ncg_text = 0;
    bool nic[2] = {mask & BIT(SN_METRIC_NIC_BYTES), mask & BIT(SN_METRIC_NIC_PACKETS)};
    s->cpu.n = s->rss.n = s->pageins.n = s->nic[0].rows.n = s->nic[1].rows.n = 0;
    if (mask & BIT(SN_METRIC_CPU_USAGE) && (r = read_cpu(s)) < 0 && !rc)
        rc = r;
    if ((rss || pg) && (r = read_procs(s, rss, pg)) < 0 && !rc)
        rc = r;
    if ((nic[0] || nic[1]) && (r = read_nic(s, nic)) < 0 && !rc)
        rc = r;
    return rc;
}

static int cmp_key(const void *a, const void *b)
{
    return memcmp(((const struct kv *)a)->key, ((const struct kv *)b)->key, SN_KEYLEN);
}

static int cmp_sum_desc(const void *a, const void *b)
{
    const struct kv *x = a, *y = b;
    if (x->sum != y->sum)
        return x->sum < y->sum ? 1 : -1;
    return memcmp(x->key, y->key, SN_KEYLEN);
}

int sn_sampler_cells(struct sn_sampler *s, int slot, const struct sn_slot_spec *spec, sn_cell_fn fn,
                     void *arg)
{
    const struct rows *r;
    struct sn_event ev;
    size_t n = 0, nkeys = 0;
    uint64_t other = 0;
    int emitted = 0;
    uint8_t f = spec->key_field;

    switch (spec->metric) {
    case SN_METRIC_CPU_USAGE:
        r = &s->cpu;
        break;
    case SN_METRIC_MEM_RSS:
        r = &s->rss;
        break;
    case SN_METRIC_MEM_PAGEINS:
        r = &s->pageins;
        break;
    case SN_METRIC_NIC_BYTES:
        r = &s->nic[0].rows;
        break;
    case SN_METRIC_NIC_PACKETS:
        r = &s->nic[1].rows;
        break;
    default:
        return 0;
    }
    if (r->n == 0 || grow(&s->kv, &s->capkv, r->n, sizeof(*s->kv)) < 0)
        return 0;
    memset(&ev, 0, sizeof(ev));
    for (size_t i = 0; i < r->n; i++) {
        const struct row *w = &r->v[i];
        struct kv *k = &s->kv[n];
        ev.num[SN_SC_CONTAINER] = w->container;
        ev.cgroup = w->cg != NO_PATH ? s->cg_text + w->cg : NULL;
        ev.num[SN_SC_OPTYPE] = w->optype;
        memcpy(ev.str[SN_SC_DEVICE], w->dev, SN_KEYLEN);
        if (!sn_pred_eval(&spec->pred, &ev))
            continue;
        memset(k->key, 0, SN_KEYLEN); /* as the kernel encodes keys (bpf/probes.bpf.c) */
        if (f < SN_EV_NSTR)
            memcpy(k->key, ev.str[f], SN_KEYLEN);
        else if (f < SN_EV_NNUM)
            memcpy(k->key, &ev.num[f], sizeof(int64_t));
        k->sum = w->value;
        n++;
    }
    if (n > 1)
        qsort(s->kv, n, sizeof(*s->kv), cmp_key);
    for (size_t i = 0; i < n; i++) { /* merge equal keys */
        if (nkeys && memcmp(s->kv[nkeys - 1].key, s->kv[i].key, SN_KEYLEN) == 0)
            s->kv[nkeys - 1].sum += s->kv[i].sum;
        else
            s->kv[nkeys++] = s->kv[i];
    }
    if (f != SN_NO_FIELD && nkeys > spec->key_cap) {
        qsort(s->kv, nkeys, sizeof(*s->kv), cmp_sum_desc);
        for (size_t i = spec->key_cap; i < nkeys; i++)
            other += s->kv[i].sum;
        nkeys = spec->key_cap;
    }
    for (size_t i = 0; i <= nkeys; i++) {
        bool is_other = i == nkeys;
        uint64_t v = is_other ? other : s->kv[i].sum;
        if (spec->metric == SN_METRIC_CPU_USAGE) /* usec to percent of one CPU */
            v = s->cpu_wall_us ? (v * 100 + s->cpu_wall_us / 2) / s->cpu_wall_us : 0;
        if (v == 0)
            continue;
        struct sn_cell c = {.slot = slot, .ord = 0, .other = is_other, .count = v};
        if (!is_other)
            memcpy(c.key, s->kv[i].key, SN_KEYLEN);
        if (fn)
            fn(&c, arg);
        emitted++;
    }
    return emitted;
}
