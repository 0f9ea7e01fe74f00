/*
 * The engine in user space; see engine.h. The kernel side is src/bpf/probes.bpf.c.
 *
 * Slot bookkeeping lives here and is mirrored into the maps: a slot is written before it is
 * listed in its metric's by_metric entry, and unlisted before it is cleared, so a probe never
 * reads a half-written slot. A metric's links exist only while its list is non-empty.
 *
 * Cgroup scoping ("under" leaves, bpf/pred.h): each distinct prefix of the traced slots holds
 * one of 64 bits while some slot names it. cgroup_scope maps the id of every cgroup at or below
 * a prefix to its bits; it is computed from the cgroup2 tree (one walk of each prefix's
 * subtree) when a slot brings a new prefix, before the slot is listed, and again at every
 * collection, so that cgroups created since count within a second and removed ones (and bits
 * no slot holds any more) leave the map. Only differences are written to the kernel.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <linux/perf_event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/catalog.h"
#include "agent/cgroup.h"
#include "agent/engine.h"
#include "agent/names.h"
#include "core/grow.h"
#include "core/hist_bucket.h"
#include "core/log.h"
#include "probes.skel.h"

#define MAX_PROGS 4 /* programs per metric */
#define MAX_PG    4 /* PostgreSQL installations attached at once */
#define SAMPLE_HZ 99
#define SET_BATCH 1024 /* keyset entries read per batch when a generation's keys are emptied */
#define AGG_BATCH 4096 /* cells read (and deleted) per system call when a generation drains */
#define NDROPS    (SN_MAX_SLOTS * 2) /* a generation's drops counters */

/* A cgroup prefix that enabled slots' UNDER leaves name; its index is its cgroup_scope bit. */
struct scope {
    char *path;     /* NULL: the bit is free */
    uint32_t slots; /* enabled slots that name it */
};

/* One cgroup_scope entry. */
struct scope_ent {
    uint64_t id, bits;
};

struct scope_tab {
    struct scope_ent *v;
    size_t n, cap;
    bool oom;
};

struct sn_engine {
    struct probes_bpf *sc; /* every probe, loaded once */
    struct bpf_link *links[SN_NMETRICS][MAX_PROGS];
    bool attached[SN_NMETRICS];
    bool used[SN_MAX_SLOTS];
    uint32_t metric_of[SN_MAX_SLOTS];
    bool in_array[SN_MAX_SLOTS];     /* counts in hist_arr, not agg */
    uint64_t freed_at[SN_MAX_SLOTS]; /* stats.collections when the slot was last disabled */
    uint32_t needs_of[SN_MAX_SLOTS];
    struct sn_metric_slots lists[SN_NMETRICS];
    struct sn_slot_spec specs[SN_MAX_SLOTS]; /* usdt slots need theirs later */
    struct bpf_link **perf_links;            /* thread_samples: one per CPU */
    int *perf_fds;
    struct bpf_link *pg_links[MAX_PG * 2];        /* postgres.queries */
    struct bpf_link *usdt_links[SN_MAX_SLOTS][2]; /* usdt.probes: each slot its pair */
    struct bpf_link *offcpu_link;                 /* while a syscall slot needs cputime */
    atomic_int reaping; /* batches of uprobe links being destroyed off the loop (reap()) */
    int ncpu;
    struct sn_agg_key *keys;        /* drain scratch: SN_AGG_ENTRIES keys */
    uint64_t *values;               /* drain scratch: ncpu values */
    uint32_t *arr_keys;             /* drain scratch: SN_U64_ORDS array indexes */
    uint64_t *arr_values;           /* drain scratch: SN_U64_ORDS * ncpu values */
    struct sn_keyset_key *set_keys; /* drain scratch: SET_BATCH keyset keys */
    uint8_t *set_values;            /* drain scratch: their SET_BATCH values */
    uint64_t *batch_values;         /* drain scratch: AGG_BATCH * ncpu cell values */
    uint64_t *drop_values;          /* drain scratch: NDROPS * ncpu drops counters */
    bool baseline;                  /* collect as before: a system call or more per cell */
    bool table;                     /* cells in the table (SN_COLLECT_TABLE) */
    uint32_t cap;                   /* the table's cells per generation */
    struct sn_agg_key *cellkeys;    /* the table's keys, mapped: [2][cap] */
    uint64_t *cellcnt;              /* its counters, mapped: [2][ncpu][cap] */
    uint64_t *histtab; /* keyless histograms, mapped: [SN_ARRAY_SLOTS][2][ncpu][SN_U64_ORDS] */
    size_t cellkeys_len, cellcnt_len, histtab_len;
    bool batch_broken; /* the kernel refused a batch operation: per cell from then */
    int mounts_fd;     /* /proc/self/mountinfo, polled for changes (fs_devs) */
    struct sn_engine_stats stats;
    struct scope scopes[SN_SCOPE_BITS];
    uint64_t scope_bits[SN_MAX_SLOTS]; /* the scopes each slot holds */
    struct scope_tab scope_now;        /* cgroup_scope as written, sorted by id */
    struct scope_tab scope_next;       /* scratch of a refresh */
    bool scope_warned;                 /* cgroup_scope was full (said once) */
};

static void detach(struct sn_engine *e, uint32_t metric);

__attribute__((format(printf, 2, 0))) static int print_libbpf(enum libbpf_print_level lvl,
                                                              const char *fmt, va_list ap)
{
    char msg[512];
    if (lvl == LIBBPF_DEBUG && !sn_log_on(SN_LOG_DEBUG, "bpf"))
        return 0;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    sn_log(lvl == LIBBPF_WARN ? SN_LOG_WARN : SN_LOG_DEBUG, "bpf", "%s", msg);
    return 0;
}

static bool is_sampled(uint32_t metric)
{
    return metric >= SN_METRIC_SAMPLED_FIRST && metric < SN_NMETRICS;
}

/* CLOCK_REALTIME - CLOCK_MONOTONIC, for the kernel's subsecond field */
static void set_wall_offset(struct sn_engine *e)
{
    struct timespec r, m;
    clock_gettime(CLOCK_REALTIME, &r);
    clock_gettime(CLOCK_MONOTONIC, &m);
    e->sc->bss->wall_off = ((int64_t)r.tv_sec - m.tv_sec) * 1000000000LL + (r.tv_nsec - m.tv_nsec);
}

/* fs.logical_ops: which system calls are file-system operations, and where their file is */
static void fill_fs_syscalls(struct sn_engine *e)
{
    static const struct {
        const char *name;
        struct sn_fs_sys fs;
    } t[] = {
        {"read", {SN_FS_READ, SN_FSH_FD, 0, SN_FS_NOARG}},
        {"pread64", {SN_FS_READ, SN_FSH_FD, 0, 3}},
        {"readv", {SN_FS_READ, SN_FSH_FD, 0, SN_FS_NOARG}},
        {"preadv", {SN_FS_READ, SN_FSH_FD, 0, 3}},
        {"preadv2", {SN_FS_READ, SN_FSH_FD, 0, 3}},
        {"write", {SN_FS_WRITE, SN_FSH_FD, 0, SN_FS_NOARG}},
        {"pwrite64", {SN_FS_WRITE, SN_FSH_FD, 0, 3}},
        {"writev", {SN_FS_WRITE, SN_FSH_FD, 0, SN_FS_NOARG}},
        {"pwritev", {SN_FS_WRITE, SN_FSH_FD, 0, 3}},
        {"pwritev2", {SN_FS_WRITE, SN_FSH_FD, 0, 3}},
        {"open", {SN_FS_OPEN, SN_FSH_RETFD, 0, SN_FS_NOARG}},
        {"openat", {SN_FS_OPEN, SN_FSH_RETFD, 0, SN_FS_NOARG}},
        {"openat2", {SN_FS_OPEN, SN_FSH_RETFD, 0, SN_FS_NOARG}},
        {"creat", {SN_FS_OPEN, SN_FSH_RETFD, 0, SN_FS_NOARG}},
        {"close", {SN_FS_CLOSE, SN_FSH_FD, 0, SN_FS_NOARG}},
        {"fstat", {SN_FS_GETATTR, SN_FSH_FD, 0, SN_FS_NOARG}},
        {"stat", {SN_FS_GETATTR, SN_FSH_STAT, 1, SN_FS_NOARG}},
        {"lstat", {SN_FS_GETATTR, SN_FSH_STAT, 1, SN_FS_NOARG}},
        {"newfstatat", {SN_FS_GETATTR, SN_FSH_STAT, 2, SN_FS_NOARG}},
        {"statx", {SN_FS_GETATTR, SN_FSH_STATX, 4, SN_FS_NOARG}},
        {"fsync", {SN_FS_FSYNC, SN_FSH_FD, 0, SN_FS_NOARG}},
        {"fdatasync", {SN_FS_FSYNC, SN_FSH_FD, 0, SN_FS_NOARG}},
        {"lseek", {SN_FS_SEEK, SN_FSH_FD, 0, SN_FS_NOARG}},
        {"getdents", {SN_FS_READDIR, SN_FSH_FD, 0, SN_FS_NOARG}},
        {"getdents64", {SN_FS_READDIR, SN_FSH_FD, 0, SN_FS_NOARG}},
        {"ioctl", {SN_FS_IOCTL, SN_FSH_FD, 0, SN_FS_NOARG}},
    };
    int fd = bpf_map__fd(e->sc->maps.fs_sys);

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int64_t nr = sn_syscall_number(t[i].name);
        uint32_t k = (uint32_t)nr;
        if (nr >= 0 && nr < SN_FS_SYSCALLS)
            bpf_map_update_elem(fd, &k, &t[i].fs, BPF_ANY);
    }
}

/* The whole of /proc/self/mountinfo (NUL terminated, malloc'd), or NULL. */
static char *read_mounts(int fd)
{
    size_t len = 0, cap = 16384;
    char *buf = malloc(cap);
    ssize_t n;

    while (buf && (n = pread(fd, buf + len, cap - len - 1, (off_t)len)) > 0) {
        len += (size_t)n;
        if (cap - len < 4096) {
            char *b = realloc(buf, cap * 2);
            if (!b)
                break;
            buf = b;
            cap *= 2;
        }
    }
    if (buf)
        buf[len] = '\0';
    return buf;
}

/* fs_devs from /proc/self/mountinfo ("id parent maj:min root mnt opts ... - fstype ..."):
 * the file-system type of operations by path, found by the device their stat reports. Read
 * when force is set (attaching fs.logical_ops) or when the mount table changed since (the
 * kernel flags that with POLLPRI on an open mountinfo: one poll() a second, no bpf() call);
 * the baseline collection reads and writes it every second. */
static void refresh_fs_devs(struct sn_engine *e, bool force)
{
    int fd = bpf_map__fd(e->sc->maps.fs_devs);
    char *text, *save = NULL;

    if (e->mounts_fd < 0) {
        e->mounts_fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
        force = true;
    }
    if (e->mounts_fd < 0)
        return;
    if (!force && !e->baseline) {
        struct pollfd p = {.fd = e->mounts_fd, .events = POLLPRI};
        if (poll(&p, 1, 0) <= 0 || !(p.revents & (POLLPRI | POLLERR)))
            return;
    }
    text = read_mounts(e->mounts_fd);
    for (char *line = text ? strtok_r(text, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save)) {
        unsigned ma, mi;
        char name[SN_KEYLEN + 1] = {0}, val[SN_KEYLEN] = {0};
        const char *dash = strstr(line, " - ");
        if (!dash || sscanf(line, "%*s %*s %u:%u", &ma, &mi) != 2 ||
            sscanf(dash, " - %16s", name) != 1)
            continue;
        uint32_t dev = ma << 20 | (mi & 0xfffff);
        memcpy(val, name, strnlen(name, SN_KEYLEN - 1));
        bpf_map_update_elem(fd, &dev, val, BPF_ANY);
        e->stats.bpf_calls++;
    }
    free(text);
}

/*
 * Uprobe links (USDT) each wait for a grace period when destroyed, ~0.1 s here: they are
 * destroyed on a thread of their own, so that the agent's loop does not wait for them. Until
 * that thread is done, no USDT probe is attached (libbpf's USDT bookkeeping is shared, and
 * postgres.queries attached twice would count twice); old usdt links whose slot has been
 * reused by another metric count nothing (usdt_done checks the slot's metric).
 */
struct reap {
    struct sn_engine *e;
    struct bpf_link *links[MAX_PG * 2];
    int n;
};

static void *reap_main(void *arg)
{
    struct reap *r = arg;
    for (int i = 0; i < r->n; i++)
        bpf_link__destroy(r->links[i]);
    atomic_fetch_sub(&r->e->reaping, 1);
    free(r);
    return NULL;
}

/* Destroys links[0..n) (and clears them) off this thread when it can, else here. */
static void reap(struct sn_engine *e, struct bpf_link **links, int n)
{
    struct reap *r = calloc(1, sizeof(*r));
    pthread_attr_t attr;
    pthread_t t;
    int k = 0;

    for (int i = 0; i < n; i++)
        if (links[i] && r)
            r->links[k++] = links[i];
        else if (links[i])
            bpf_link__destroy(links[i]);
    for (int i = 0; i < n; i++)
        links[i] = NULL;
    if (!r || k == 0) {
        free(r);
        return;
    }
    r->e = e;
    r->n = k;
    atomic_fetch_add(&e->reaping, 1);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, reap_main, r) != 0)
        reap_main(r); /* no thread: the loop waits this once */
    pthread_attr_destroy(&attr);
}

/* Waits until every reap() is over (each takes well under a second; at most 10 s). */
static void wait_reaped(struct sn_engine *e)
{
    for (int i = 0; i < 10000 && atomic_load(&e->reaping) > 0; i++) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
}

/* Maps the cell table's keys and counters into this process. */
static int map_table(struct sn_engine *e)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);

    e->cellkeys_len = ((size_t)e->cap * 2 * sizeof(struct sn_agg_key) + page - 1) / page * page;
    e->cellcnt_len =
        ((size_t)e->cap * 2 * (size_t)e->ncpu * sizeof(uint64_t) + page - 1) / page * page;
    e->cellkeys =
        mmap(NULL, e->cellkeys_len, PROT_READ, MAP_SHARED, bpf_map__fd(e->sc->maps.cellkeys), 0);
    e->cellcnt = mmap(NULL, e->cellcnt_len, PROT_READ | PROT_WRITE, MAP_SHARED,
                      bpf_map__fd(e->sc->maps.cellcnt), 0);
    e->histtab_len =
        ((size_t)SN_ARRAY_SLOTS * 2 * (size_t)e->ncpu * SN_U64_ORDS * sizeof(uint64_t) + page - 1) /
        page * page;
    e->histtab = mmap(NULL, e->histtab_len, PROT_READ | PROT_WRITE, MAP_SHARED,
                      bpf_map__fd(e->sc->maps.hist_tab), 0);
    if (e->cellkeys == MAP_FAILED || e->cellcnt == MAP_FAILED || e->histtab == MAP_FAILED) {
        int rc = -errno;
        sn_log(SN_LOG_WARN, "agent", "cannot map the cell table: %s", strerror(-rc));
        return rc;
    }
    return 0;
}

static void unmap_table(struct sn_engine *e)
{
    if (e->cellkeys && e->cellkeys != MAP_FAILED)
        munmap(e->cellkeys, e->cellkeys_len);
    if (e->cellcnt && e->cellcnt != MAP_FAILED)
        munmap(e->cellcnt, e->cellcnt_len);
    if (e->histtab && e->histtab != MAP_FAILED)
        munmap(e->histtab, e->histtab_len);
    e->cellkeys = NULL;
    e->cellcnt = NULL;
    e->histtab = NULL;
}

int sn_engine_open(struct sn_engine **out)
{
    return sn_engine_open_opts(out, NULL);
}

int sn_engine_open_opts(struct sn_engine **out, const struct sn_engine_opts *o)
{
    struct sn_engine *e = calloc(1, sizeof(*e));
    int rc;

    if (!e)
        return -ENOMEM;
    libbpf_set_print(print_libbpf);
    e->ncpu = libbpf_num_possible_cpus();
    if (e->ncpu <= 0) {
        rc = e->ncpu ? e->ncpu : -EINVAL;
        goto err_free;
    }
    e->keys = malloc(SN_AGG_ENTRIES * sizeof(*e->keys));
    e->values = malloc((size_t)e->ncpu * sizeof(*e->values));
    e->arr_keys = malloc(SN_U64_ORDS * sizeof(*e->arr_keys));
    e->arr_values = malloc((size_t)SN_U64_ORDS * (size_t)e->ncpu * sizeof(*e->arr_values));
    e->set_keys = malloc(SET_BATCH * sizeof(*e->set_keys));
    e->set_values = malloc(SET_BATCH * sizeof(*e->set_values));
    e->batch_values = malloc((size_t)AGG_BATCH * (size_t)e->ncpu * sizeof(*e->batch_values));
    e->drop_values = malloc((size_t)NDROPS * (size_t)e->ncpu * sizeof(*e->drop_values));
    e->mounts_fd = -1;
    if (!e->keys || !e->values || !e->arr_keys || !e->arr_values || !e->set_keys ||
        !e->set_values || !e->batch_values || !e->drop_values) {
        rc = -ENOMEM;
        goto err_free;
    }
    e->sc = probes_bpf__open();
    if (!e->sc) {
        rc = -errno;
        goto err_free;
    }
    e->cap =
        o && o->agg_entries && o->agg_entries < SN_AGG_ENTRIES ? o->agg_entries : SN_AGG_ENTRIES;
    bpf_map__set_max_entries(e->sc->maps.keyset0, e->cap); /* keys <= cells */
    bpf_map__set_max_entries(e->sc->maps.keyset1, e->cap);
    e->table = !o || o->collect == SN_COLLECT_TABLE;
    e->baseline = o && o->collect == SN_COLLECT_BASELINE;
    if (o)
        e->sc->rodata->self_tgid = o->exclude_tgid;
    if (e->table) { /* the hashes stay unused: one entry each */
        e->sc->rodata->use_table = 1;
        e->sc->rodata->cells_cap = e->cap;
        e->sc->rodata->ncpus = (uint32_t)e->ncpu;
        bpf_map__set_max_entries(e->sc->maps.agg0, 1);
        bpf_map__set_max_entries(e->sc->maps.agg1, 1);
        /* live keys of both generations and room for stale ones to age out */
        bpf_map__set_max_entries(e->sc->maps.cellidx, e->cap * 3);
        bpf_map__set_max_entries(e->sc->maps.cellkeys, e->cap * 2);
        bpf_map__set_max_entries(e->sc->maps.cellcnt, e->cap * 2 * (uint32_t)e->ncpu);
        bpf_map__set_max_entries(e->sc->maps.hist_arr, 1);
        bpf_map__set_max_entries(e->sc->maps.hist_tab,
                                 SN_ARRAY_SLOTS * 2 * (uint32_t)e->ncpu * SN_U64_ORDS);
    } else {
        bpf_map__set_max_entries(e->sc->maps.agg0, e->cap);
        bpf_map__set_max_entries(e->sc->maps.agg1, e->cap);
    }
    /* nothing autoattaches: links are made per metric, on demand */
    rc = probes_bpf__load(e->sc);
    if (rc < 0)
        goto err_destroy;
    if (e->table && (rc = map_table(e)) < 0)
        goto err_destroy;
    e->perf_links = calloc((size_t)e->ncpu, sizeof(*e->perf_links));
    e->perf_fds = malloc((size_t)e->ncpu * sizeof(*e->perf_fds));
    if (!e->perf_links || !e->perf_fds) {
        rc = -ENOMEM;
        goto err_destroy;
    }
    for (int c = 0; c < e->ncpu; c++)
        e->perf_fds[c] = -1;
    set_wall_offset(e);
    fill_fs_syscalls(e);
    *out = e;
    return 0;

err_destroy:
    unmap_table(e);
    probes_bpf__destroy(e->sc);
err_free:
    free(e->perf_links);
    free(e->perf_fds);
    free(e->keys);
    free(e->values);
    free(e->arr_keys);
    free(e->arr_values);
    free(e->set_keys);
    free(e->set_values);
    free(e->batch_values);
    free(e->drop_values);
    free(e);
    return rc;
}

void sn_engine_close(struct sn_engine *e)
{
    if (!e)
        return;
    for (uint32_t m = 0; m < SN_NMETRICS; m++)
        detach(e, m);
    for (int sl = 0; sl < SN_MAX_SLOTS; sl++)
        reap(e, e->usdt_links[sl], 2);
    wait_reaped(e); /* the programs must outlive their links */
    bpf_link__destroy(e->offcpu_link);
    unmap_table(e);
    probes_bpf__destroy(e->sc);
    for (int b = 0; b < SN_SCOPE_BITS; b++)
        free(e->scopes[b].path);
    free(e->scope_now.v);
    free(e->scope_next.v);
    free(e->perf_links);
    free(e->perf_fds);
    free(e->keys);
    free(e->values);
    free(e->arr_keys);
    free(e->arr_values);
    free(e->set_keys);
    free(e->set_values);
    free(e->batch_values);
    free(e->drop_values);
    if (e->mounts_fd >= 0)
        close(e->mounts_fd);
    free(e);
}

static int write_list(struct sn_engine *e, uint32_t metric)
{
    struct sn_metric_slots *l = &e->lists[metric];

    l->needs = 0;
    for (uint32_t i = 0; i < l->n; i++)
        l->needs |= e->needs_of[l->slot[i]];
    return bpf_map_update_elem(bpf_map__fd(e->sc->maps.by_metric), &metric, l, BPF_ANY) ? -errno
                                                                                        : 0;
}

/* The programs that answer a metric. */
static int metric_progs(const struct sn_engine *e, uint32_t metric, struct bpf_program **p)
{
    const struct sn_metric_def *m = sn_catalog_metric(metric);
    int n = 0;

    for (size_t i = 0; m && i < sizeof(m->progs) / sizeof(m->progs[0]) && m->progs[i]; i++)
        if ((p[n] = bpf_object__find_program_by_name(e->sc->obj, m->progs[i])))
            n++;
    return n;
}

static void detach(struct sn_engine *e, uint32_t metric)
{
    for (int i = 0; i < MAX_PROGS; i++) {
        bpf_link__destroy(e->links[metric][i]);
        e->links[metric][i] = NULL;
    }
    if (metric == SN_METRIC_THREAD_SAMPLES)
        for (int c = 0; c < e->ncpu; c++) {
            bpf_link__destroy(e->perf_links[c]);
            e->perf_links[c] = NULL;
            if (e->perf_fds[c] >= 0)
                close(e->perf_fds[c]);
            e->perf_fds[c] = -1;
        }
    if (metric == SN_METRIC_PG_QUERIES)
        reap(e, e->pg_links, MAX_PG * 2);
    e->attached[metric] = false;
}

/* cpu.thread_samples: a 99 Hz CPU-clock perf event on each online CPU, the program on each */
static int attach_samples(struct sn_engine *e)
{
    struct perf_event_attr attr = {
        .type = PERF_TYPE_SOFTWARE,
        .size = sizeof(attr),
        .config = PERF_COUNT_SW_CPU_CLOCK,
        .sample_freq = SAMPLE_HZ,
        .freq = 1,
    };
    int n = 0;

    for (int c = 0; c < e->ncpu; c++) {
        int fd = (int)syscall(SYS_perf_event_open, &attr, -1, c, -1, PERF_FLAG_FD_CLOEXEC);
        if (fd < 0) {
            if (errno == ENODEV) /* offline */
                continue;
            return -errno;
        }
        e->perf_fds[c] = fd;
        e->perf_links[c] = bpf_program__attach_perf_event(e->sc->progs.thread_sample, fd);
        if (!e->perf_links[c])
            return -errno ? -errno : -EINVAL;
        n++;
    }
    return n ? 0 : -ENODEV;
}

/* postgres.queries: query__start/query__done of every installed PostgreSQL server, in every
 * process running it (pid -1) */
static int attach_postgres(struct sn_engine *e)
{
    glob_t g;
    int n = 0, rc = -ENOENT;

    wait_reaped(e);
    if (glob("/usr/lib/postgresql/*/bin/postgres", 0, NULL, &g) != 0)
        return -ENOENT;
    for (size_t i = 0; i < g.gl_pathc && n < MAX_PG; i++) {
        struct bpf_link *a = bpf_program__attach_usdt(
            e->sc->progs.pg_query_start, -1, g.gl_pathv[i], "postgresql", "query__start", NULL);
        struct bpf_link *b =
            a ? bpf_program__attach_usdt(e->sc->progs.pg_query_done, -1, g.gl_pathv[i],
                                         "postgresql", "query__done", NULL)
              : NULL;
        if (!a || !b) {
            rc = -errno ? -errno : -EINVAL;
            sn_log(SN_LOG_WARN, "agent", "postgres.queries: cannot attach to %s: %s", g.gl_pathv[i],
                   strerror(-rc));
            bpf_link__destroy(a);
            continue;
        }
        e->pg_links[n * 2] = a;
        e->pg_links[n * 2 + 1] = b;
        n++;
    }
    globfree(&g);
    return n ? 0 : rc;
}

/* usdt.probes: this slot's own probe pair, its slot number as the cookie */
static int attach_usdt(struct sn_engine *e, uint32_t s, const struct sn_slot_spec *spec)
{
    LIBBPF_OPTS(bpf_usdt_opts, opts, .usdt_cookie = s);
    wait_reaped(e);
    e->usdt_links[s][0] = bpf_program__attach_usdt(e->sc->progs.usdt_start, -1, spec->usdt.path,
                                                   spec->usdt.provider, spec->usdt.start, &opts);
    if (e->usdt_links[s][0])
        e->usdt_links[s][1] = bpf_program__attach_usdt(e->sc->progs.usdt_done, -1, spec->usdt.path,
                                                       spec->usdt.provider, spec->usdt.done, &opts);
    if (!e->usdt_links[s][0] || !e->usdt_links[s][1]) {
        int rc = -errno ? -errno : -EINVAL;
        for (int i = 0; i < 2; i++) {
            bpf_link__destroy(e->usdt_links[s][i]);
            e->usdt_links[s][i] = NULL;
        }
        return rc;
    }
    return 0;
}

/* Attaches the metric's programs, all or none. */
static int attach(struct sn_engine *e, uint32_t metric)
{
    struct bpf_program *p[MAX_PROGS];
    int n = metric_progs(e, metric, p);

    if (e->attached[metric] || is_sampled(metric) || metric == SN_METRIC_USDT)
        return 0;
    if (metric == SN_METRIC_THREAD_SAMPLES || metric == SN_METRIC_PG_QUERIES) {
        int rc = metric == SN_METRIC_PG_QUERIES ? attach_postgres(e) : attach_samples(e);
        if (rc < 0) {
            detach(e, metric);
            return rc;
        }
        e->attached[metric] = true;
        return 0;
    }
    if (metric == SN_METRIC_FS_OPS)
        refresh_fs_devs(e, true);
    for (int i = 0; i < n; i++) {
        e->links[metric][i] = bpf_program__attach(p[i]);
        if (!e->links[metric][i]) {
            int rc = -errno;
            detach(e, metric);
            return rc ? rc : -EINVAL;
        }
    }
    e->attached[metric] = true;
    return 0;
}

/* syscall cputime needs the off-CPU accounting of offcpu_switch: attached while some
 * syscall slot reads the field */
static int update_cputime(struct sn_engine *e)
{
    bool want = e->lists[SN_METRIC_SYSCALLS].needs & (1u << SN_SC_CPUTIME);

    if (want && !e->offcpu_link) {
        e->offcpu_link = bpf_program__attach(e->sc->progs.offcpu_switch);
        if (!e->offcpu_link)
            return -errno ? -errno : -EINVAL;
    } else if (!want && e->offcpu_link) {
        bpf_link__destroy(e->offcpu_link);
        e->offcpu_link = NULL;
    }
    e->sc->bss->want_cputime = want;
    return 0;
}

/* --- cgroup scoping ------------------------------------------------------------------------ */

static void scope_release(struct sn_engine *e, uint64_t bits)
{
    for (int b = 0; b < SN_SCOPE_BITS; b++)
        if ((bits >> b & 1) && e->scopes[b].slots && --e->scopes[b].slots == 0) {
            free(e->scopes[b].path);
            e->scopes[b].path = NULL;
        }
}

/*
 * The program of spec as the kernel runs it: its UNDER leaves test their prefix's bit of
 * SN_SC_SCOPE. Takes the slot's hold on those prefixes (*held; *fresh: the bits no slot held
 * before). Returns 0, or -ENOSPC when more than SN_SCOPE_BITS prefixes would be in use.
 */
static int kernel_prog(struct sn_engine *e, const struct sn_slot_spec *spec,
                       struct sn_pred_prog *out, uint64_t *held, uint64_t *fresh)
{
    *held = *fresh = 0;
    out->n = spec->pred.n;
    out->pad = 0;
    memcpy(out->insn, spec->pred.insn, sizeof(out->insn));
    for (uint32_t i = 0; i < out->n; i++) {
        const char *path = sn_pred_under_path(&spec->pred, &spec->pred.insn[i]);
        int b, free_b = -1;
        if (spec->pred.insn[i].op != SN_PRED_UNDER)
            continue;
        if (!path) {
            scope_release(e, *held);
            return -EINVAL;
        }
        for (b = 0; b < SN_SCOPE_BITS; b++) {
            if (e->scopes[b].path && strcmp(e->scopes[b].path, path) == 0)
                break;
            if (!e->scopes[b].path && free_b < 0)
                free_b = b;
        }
        if (b == SN_SCOPE_BITS) {
            char *copy = free_b >= 0 ? strdup(path) : NULL;
            if (!copy) {
                if (free_b < 0)
                    sn_log(SN_LOG_WARN, "agent",
                           "cannot scope to %s: %d cgroup prefixes are in use already", path,
                           SN_SCOPE_BITS);
                scope_release(e, *held);
                return free_b < 0 ? -ENOSPC : -ENOMEM;
            }
            b = free_b;
            e->scopes[b].path = copy;
            *fresh |= 1ull << b;
        }
        if (!(*held >> b & 1)) {
            e->scopes[b].slots++;
            *held |= 1ull << b;
        }
        out->insn[i].field = SN_SC_SCOPE;
        out->insn[i].is_str = 0;
        out->insn[i].n = (int64_t)(1ull << b);
    }
    return 0;
}

/* sn_cgroup_walk()'s callback: cgroup id gets bit */
struct scope_walk {
    struct scope_tab *t;
    uint64_t bit;
};

static void scope_add(uint64_t id, void *arg)
{
    struct scope_tab *t = ((struct scope_walk *)arg)->t;

    struct scope_ent *v = sn_grow(t->v, &t->cap, t->n + 1, sizeof(*v));
    if (!v) {
        t->oom = true;
        return;
    }
    t->v = v;
    t->v[t->n++] = (struct scope_ent){id, ((struct scope_walk *)arg)->bit};
}

static int cmp_scope_ent(const void *a, const void *b)
{
    const struct scope_ent *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* Recomputes cgroup_scope from the cgroup2 tree and writes the kernel what changed. */
static void scope_refresh(struct sn_engine *e)
{
    struct scope_tab *now = &e->scope_now, *next = &e->scope_next;
    int fd = bpf_map__fd(e->sc->maps.cgroup_scope);
    size_t i = 0, j = 0, k = 0, n = 0;
    bool any = false;

    next->n = 0;
    next->oom = false;
    for (int b = 0; b < SN_SCOPE_BITS; b++) {
        struct scope_walk w = {next, 1ull << b};
        if (!e->scopes[b].path)
            continue;
        any = true;
        sn_cgroup_walk(e->scopes[b].path, scope_add, &w); /* -ENOENT: not yet */
    }
    if (!any && now->n == 0)
        return;
    if (next->oom) /* keep what the kernel has */
        return;
    if (next->n > 1)
        qsort(next->v, next->n, sizeof(*next->v), cmp_scope_ent);
    for (size_t m = 0; m < next->n; m++) { /* a cgroup under nested prefixes: one entry */
        if (n && next->v[n - 1].id == next->v[m].id)
            next->v[n - 1].bits |= next->v[m].bits;
        else
            next->v[n++] = next->v[m];
    }
    next->n = n;
    /* both sorted: delete what left, write what is new or changed; keep in next what the
     * kernel has */
    while (i < now->n || j < next->n) {
        if (j == next->n || (i < now->n && now->v[i].id < next->v[j].id)) {
            bpf_map_delete_elem(fd, &now->v[i++].id);
            e->stats.bpf_calls++;
            continue;
        }
        struct scope_ent x = next->v[j++];
        bool had = i < now->n && now->v[i].id == x.id, same = had && now->v[i].bits == x.bits;
        i += had;
        e->stats.bpf_calls += !same;
        if (!same && bpf_map_update_elem(fd, &x.id, &x.bits, BPF_ANY) != 0) {
            if (!e->scope_warned)
                sn_log(SN_LOG_WARN, "agent", "cgroup_scope: %s (more than %d cgroups?)",
                       strerror(errno), SN_SCOPE_ENTRIES);
            e->scope_warned = true;
            if (had)
                bpf_map_delete_elem(fd, &x.id);
            continue;
        }
        next->v[k++] = x;
    }
    next->n = k;
    struct scope_tab t = *now; /* next is what the kernel has now */
    *now = *next;
    *next = t;
}

int sn_engine_scoped_cgroups(const struct sn_engine *e)
{
    int fd = bpf_map__fd(e->sc->maps.cgroup_scope), n = 0;
    uint64_t key, *prev = NULL;

    while (bpf_map_get_next_key(fd, prev, &key) == 0) {
        n++;
        prev = &key;
    }
    return n;
}

/*
 * A free slot, preferring one that no slot has used for two collections: cells a disabled slot
 * counted before its programs saw it go wait in both generations' maps until drained (and are
 * dropped then, their slot being unused); a new instrumentation in the same slot must not
 * report them. SN_MAX_SLOTS when none is free.
 */
static uint32_t free_slot(const struct sn_engine *e)
{
    uint32_t any = SN_MAX_SLOTS;

    for (uint32_t s = 0; s < SN_MAX_SLOTS; s++) {
        if (e->used[s])
            continue;
        if (e->stats.collections >= e->freed_at[s] + 2)
            return s;
        if (any == SN_MAX_SLOTS)
            any = s;
    }
    return any;
}

/* Zeroes slot s's histograms in hist_arr (both generations), which only its drains empty:
 * what a slot before it left must not count for a new one. */
static void clear_array(struct sn_engine *e, uint32_t s)
{
    int fd = bpf_map__fd(e->sc->maps.hist_arr);
    LIBBPF_OPTS(bpf_map_batch_opts, opts);

    if (e->table) {
        memset(&e->histtab[(size_t)s * 2 * (size_t)e->ncpu * SN_U64_ORDS], 0,
               2 * (size_t)e->ncpu * SN_U64_ORDS * sizeof(uint64_t));
        for (uint32_t g = 0; g < 2; g++)
            __atomic_store_n(&e->sc->bss->arr_dirty[s * 2 + g], 0, __ATOMIC_RELAXED);
        return;
    }
    memset(e->arr_values, 0, (size_t)SN_U64_ORDS * (size_t)e->ncpu * sizeof(*e->arr_values));
    for (uint32_t g = 0; g < 2; g++) {
        uint32_t count = SN_U64_ORDS;
        for (uint32_t i = 0; i < SN_U64_ORDS; i++)
            e->arr_keys[i] = (s * 2 + g) * SN_U64_ORDS + i;
        bpf_map_update_batch(fd, e->arr_keys, e->arr_values, &count, &opts);
        __atomic_store_n(&e->sc->bss->arr_dirty[s * 2 + g], 0, __ATOMIC_RELAXED);
    }
}

int sn_engine_enable(struct sn_engine *e, const struct sn_slot_spec *spec)
{
    struct sn_slot sl = {0};
    struct sn_metric_slots *l;
    uint64_t held, fresh;
    uint32_t s;
    int rc;

    if (spec->metric >= SN_NMETRICS || is_sampled(spec->metric) || spec->pred.n == 0 ||
        spec->pred.n > SN_PRED_MAX_INSNS)
        return -EINVAL;                 /* sampled metrics are the sampler's (agent/sampled.h) */
    if (spec->metric == SN_METRIC_USDT) /* old links may carry the slot it gets as cookie */
        wait_reaped(e);
    l = &e->lists[spec->metric];
    if (l->n >= SN_SLOTS_PER_METRIC)
        return -ENOSPC;
    s = free_slot(e);
    if (s == SN_MAX_SLOTS)
        return -ENOSPC;
    sl.active = 1;
    sl.metric = spec->metric;
    sl.key_field = spec->key_field;
    sl.num_field = spec->num_field;
    sl.key_cap = spec->key_cap;
    rc = kernel_prog(e, spec, &sl.pred, &held, &fresh);
    if (rc < 0)
        return rc;
    if (fresh) /* the new prefixes' cgroups, before any probe reads the slot */
        scope_refresh(e);
    if (bpf_map_update_elem(bpf_map__fd(e->sc->maps.slots), &s, &sl, BPF_ANY)) {
        rc = -errno;
        scope_release(e, held);
        return rc;
    }
    e->used[s] = true;
    e->metric_of[s] = spec->metric;
    e->in_array[s] =
        s < SN_ARRAY_SLOTS && spec->key_field == SN_NO_FIELD && spec->num_field != SN_NO_FIELD;
    if (e->in_array[s])
        clear_array(e, s);
    e->scope_bits[s] = held;
    e->needs_of[s] = spec->needs | (held ? 1u << SN_SC_SCOPE | 1u << SN_SC_CONTAINER : 0);
    e->specs[s] = *spec;
    l->slot[l->n++] = (uint8_t)s;
    rc = write_list(e, spec->metric);
    if (rc == 0)
        rc = attach(e, spec->metric);
    if (rc == 0)
        rc = update_cputime(e);
    if (rc == 0 && spec->metric == SN_METRIC_USDT)
        rc = attach_usdt(e, s, spec);
    if (rc < 0) {
        sn_engine_disable(e, (int)s);
        return rc;
    }
    return (int)s;
}

int sn_engine_disable(struct sn_engine *e, int slot)
{
    struct sn_slot empty = {0};
    struct sn_metric_slots *l;
    uint32_t s = (uint32_t)slot, m;

    if (slot < 0 || slot >= SN_MAX_SLOTS || !e->used[s])
        return -ENOENT;
    m = e->metric_of[s];
    l = &e->lists[m];
    for (uint32_t i = 0; i < l->n; i++) {
        if (l->slot[i] == s) {
            memmove(&l->slot[i], &l->slot[i + 1], l->n - i - 1);
            l->n--;
            break;
        }
    }
    write_list(e, m);
    e->needs_of[s] = 0;
    scope_release(e, e->scope_bits[s]); /* its bits leave cgroup_scope with the next refresh */
    e->scope_bits[s] = 0;
    update_cputime(e);
    reap(e, e->usdt_links[s], 2);
    if (l->n == 0)
        detach(e, m);
    bpf_map_update_elem(bpf_map__fd(e->sc->maps.slots), &s, &empty, BPF_ANY);
    e->used[s] = false;
    e->freed_at[s] = e->stats.collections;
    return 0;
}

bool sn_engine_psargs(const struct sn_engine *e, uint64_t hash, char *out, size_t len)
{
    char text[SN_PSARGS_LEN];

    if (bpf_map_lookup_elem(bpf_map__fd(e->sc->maps.psargs_text), &hash, text) != 0)
        return false;
    text[SN_PSARGS_LEN - 1] = '\0';
    snprintf(out, len, "%s", text);
    return true;
}

bool sn_engine_attached(const struct sn_engine *e, uint32_t metric)
{
    return metric < SN_NMETRICS && e->attached[metric];
}

int sn_engine_prog_ids(const struct sn_engine *e, uint32_t metric, uint32_t *ids, int n)
{
    struct bpf_program *p[MAX_PROGS];
    int np = metric < SN_NMETRICS ? metric_progs(e, metric, p) : 0, k = 0;

    for (int i = 0; i < np && k < n; i++) {
        struct bpf_prog_info info;
        uint32_t len = sizeof(info);
        memset(&info, 0, sizeof(info));
        if (bpf_obj_get_info_by_fd(bpf_program__fd(p[i]), &info, &len) == 0)
            ids[k++] = info.id;
    }
    return k;
}

/* Slot s's histogram of generation g from hist_tab, in memory: its non-empty buckets, summed
 * over the CPUs' rows, reported and zeroed. No system call. Returns the number of cells. */
static uint32_t drain_hist_tab(struct sn_engine *e, uint32_t s, uint32_t g, sn_cell_fn fn,
                               void *arg)
{
    uint64_t *rows = &e->histtab[(size_t)(s * 2 + g) * (size_t)e->ncpu * SN_U64_ORDS];
    uint32_t cells = 0;

    for (uint32_t k = 0; k < SN_U64_ORDS; k++) {
        struct sn_cell cell = {
            .slot = (int)s,
            .ord = (uint16_t)(k == 0 ? SN_BUCKET_ORD_ZERO : SN_U64_ORD_FIRST + k - 1)};
        for (int c = 0; c < e->ncpu; c++) {
            uint64_t *v = &rows[(size_t)c * SN_U64_ORDS + k];
            if (*v) {
                cell.count += *v;
                *v = 0;
            }
        }
        if (!cell.count)
            continue;
        cells++;
        if (fn)
            fn(&cell, arg);
    }
    return cells;
}

/* Reads slot s's histogram of generation g from hist_arr in one batch, reports its non-empty
 * buckets and zeroes them. Returns the number of cells. */
static uint32_t drain_array(struct sn_engine *e, uint32_t s, uint32_t g, sn_cell_fn fn, void *arg)
{
    if (e->table)
        return drain_hist_tab(e, s, g, fn, arg);
    int fd = bpf_map__fd(e->sc->maps.hist_arr);
    uint32_t base = (s * 2 + g) * SN_U64_ORDS, cells = 0, count = SN_U64_ORDS, in = base - 1, out;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);

    for (uint32_t i = 0; i < SN_U64_ORDS; i++)
        e->arr_keys[i] = base + i;
    /* a batch resumes after the key passed as in_batch (NULL: from the start) */
    e->stats.bpf_calls++;
    if (bpf_map_lookup_batch(fd, base ? &in : NULL, &out, e->arr_keys, e->arr_values, &count,
                             &opts) != 0 &&
        errno != ENOENT)
        return 0;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t sum = 0;
        for (int c = 0; c < e->ncpu; c++)
            sum += e->arr_values[(size_t)i * (size_t)e->ncpu + (size_t)c];
        if (!sum)
            continue;
        uint32_t k = e->arr_keys[i] - base;
        struct sn_cell cell = {
            .slot = (int)s,
            .ord = (uint16_t)(k == 0 ? SN_BUCKET_ORD_ZERO : SN_U64_ORD_FIRST + k - 1)};
        cell.count = sum;
        e->arr_keys[cells++] = e->arr_keys[i]; /* keep the non-empty ones to zero below */
        if (fn)
            fn(&cell, arg);
    }
    if (cells) { /* zero only the buckets that had counts */
        memset(e->arr_values, 0, (size_t)cells * (size_t)e->ncpu * sizeof(*e->arr_values));
        count = cells;
        e->stats.bpf_calls++;
        bpf_map_update_batch(fd, e->arr_keys, e->arr_values, &count, &opts);
    }
    return cells;
}

/* Reads a flag the kernel sets in shared memory (.bss) and clears it, in one step. */
static bool take(uint8_t *flag)
{
    return __atomic_exchange_n(flag, 0, __ATOMIC_ACQ_REL) != 0;
}

/* Reports one drained cell: key k, its per-CPU values v. */
static void report_cell(const struct sn_engine *e, const struct sn_agg_key *k, const uint64_t *v,
                        sn_cell_fn fn, void *arg)
{
    struct sn_cell c = {.slot = (int)(k->slot_gen >> 1), .ord = k->ord, .other = k->other != 0};

    for (int i = 0; i < e->ncpu; i++)
        c.count += v[i];
    memcpy(c.key, k->key, SN_KEYLEN);
    if (c.count && fn && c.slot < SN_MAX_SLOTS && e->used[c.slot]) /* not a freed slot's */
        fn(&c, arg);
}

/*
 * Generation g's cells one at a time: every key walked with get_next_key, then a lookup and a
 * delete per cell, three system calls a cell. The baseline (which also walks the current
 * generation's keys, as the one map of before held both), and the fallback of a kernel that
 * refuses batches. Returns the number of cells.
 */
static uint32_t drain_agg_per_cell(struct sn_engine *e, uint32_t g, sn_cell_fn fn, void *arg)
{
    int fd = bpf_map__fd(g ? e->sc->maps.agg1 : e->sc->maps.agg0);
    int cur = bpf_map__fd(g ? e->sc->maps.agg0 : e->sc->maps.agg1);
    struct sn_agg_key *prev = NULL, next;
    uint32_t n = 0, cells = 0;

    if (e->baseline) {
        while (e->stats.bpf_calls++, bpf_map_get_next_key(cur, prev, &next) == 0) {
            e->keys[0] = next;
            prev = &e->keys[0];
        }
        prev = NULL;
    }
    while (n < SN_AGG_ENTRIES &&
           (e->stats.bpf_calls++, bpf_map_get_next_key(fd, prev, &next) == 0)) {
        e->keys[n] = next;
        prev = &e->keys[n++];
    }
    for (uint32_t i = 0; i < n; i++) {
        e->stats.bpf_calls++;
        if (bpf_map_lookup_elem(fd, &e->keys[i], e->values) != 0)
            continue;
        e->stats.bpf_calls++;
        bpf_map_delete_elem(fd, &e->keys[i]);
        report_cell(e, &e->keys[i], e->values, fn, arg);
        cells++;
    }
    return cells;
}

/* Generation g's cells, AGG_BATCH at a time with lookup-and-delete: a system call per batch,
 * one for the last (partial) batch. Returns the number of cells. */
static uint32_t drain_agg(struct sn_engine *e, uint32_t g, sn_cell_fn fn, void *arg)
{
    int fd = bpf_map__fd(g ? e->sc->maps.agg1 : e->sc->maps.agg0);
    uint32_t in = 0, out = 0, cells = 0;
    bool first = true;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);

    if (e->baseline || e->batch_broken)
        return drain_agg_per_cell(e, g, fn, arg);
    for (;;) {
        uint32_t n = AGG_BATCH;
        int err = 0;
        e->stats.bpf_calls++;
        /* a hash map's batch resumes at the bucket out names; ENOENT: that was the last */
        if (bpf_map_lookup_and_delete_batch(fd, first ? NULL : &in, &out, e->keys, e->batch_values,
                                            &n, &opts) != 0)
            err = errno;
        for (uint32_t i = 0; i < n; i++)
            report_cell(e, &e->keys[i], &e->batch_values[(size_t)i * (size_t)e->ncpu], fn, arg);
        cells += n;
        if (err == ENOENT)
            break;
        if (err) {
            sn_log(SN_LOG_WARN, "agent",
                   "batched lookup-and-delete: %s; collecting cell by cell from now on",
                   strerror(err));
            e->batch_broken = true;
            return cells + drain_agg_per_cell(e, g, fn, arg);
        }
        in = out;
        first = false;
    }
    return cells;
}

/*
 * Generation g's cells from the table, in memory: the keys of the cells the kernel numbered,
 * each one's counts summed over the CPUs' rows; the rows zeroed, the numbering restarted and
 * the epoch bumped so that the kernel's index of keys to cells (cellidx) is stale for all of
 * them at once. No system call. Returns the number of cells.
 */
static uint32_t drain_table(struct sn_engine *e, uint32_t g, sn_cell_fn fn, void *arg)
{
    uint32_t n = __atomic_load_n(&e->sc->bss->ncells[g], __ATOMIC_ACQUIRE), cells = 0;
    const struct sn_agg_key *keys = e->cellkeys + (size_t)g * e->cap;

    if (n > e->cap)
        n = e->cap;
    for (uint32_t i = 0; i < n; i++) {
        struct sn_cell c = {
            .slot = (int)(keys[i].slot_gen >> 1), .ord = keys[i].ord, .other = keys[i].other != 0};
        for (int cpu = 0; cpu < e->ncpu; cpu++)
            c.count += e->cellcnt[((size_t)g * (size_t)e->ncpu + (size_t)cpu) * e->cap + i];
        memcpy(c.key, keys[i].key, SN_KEYLEN);
        if (c.count && fn && c.slot < SN_MAX_SLOTS && e->used[c.slot])
            fn(&c, arg);
        cells += c.count != 0;
    }
    for (int cpu = 0; cpu < e->ncpu && n; cpu++)
        memset(&e->cellcnt[((size_t)g * (size_t)e->ncpu + (size_t)cpu) * e->cap], 0,
               (size_t)n * sizeof(uint64_t));
    __atomic_store_n(&e->sc->bss->ncells[g], 0, __ATOMIC_RELEASE);
    __atomic_store_n(&e->sc->bss->epoch[g], e->sc->bss->epoch[g] + 1, __ATOMIC_RELEASE);
    return cells;
}

/*
 * Empties generation g of the key cap's bookkeeping: the keys the slots admitted (keyset<g>)
 * and every slot's count of them (nkeys, in shared memory). Nothing to do when no slot
 * admitted a key and no cell was made (dirty); else the set is drained with batched
 * lookup-and-delete. Called after the flip's grace period, when no program admits keys to g:
 * a program that still does (preempted across the flip) adds both a key and its count, which
 * the next drain of g removes together. The baseline reads both generations' sets and
 * deletes g's keys a batch at a time, as before.
 */
static void drain_keyset(struct sn_engine *e, uint32_t g, bool dirty)
{
    int fd = bpf_map__fd(g ? e->sc->maps.keyset1 : e->sc->maps.keyset0);
    int cur = bpf_map__fd(g ? e->sc->maps.keyset0 : e->sc->maps.keyset1);
    uint32_t *nk = e->sc->bss->nkeys, in = 0, out = 0;
    bool any = dirty, first = true;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);

    for (uint32_t s = 0; s < SN_MAX_SLOTS && !any; s++)
        any = __atomic_load_n(&nk[s * 2 + g], __ATOMIC_RELAXED) != 0;
    for (int m = e->baseline ? 0 : 1; m < 2 && (any || e->baseline); m++) {
        int f = m == 0 ? cur : fd;
        first = true;
        for (;;) {
            uint32_t n = SET_BATCH, done;
            int err = 0, rc;
            e->stats.bpf_calls++;
            if (e->baseline)
                rc = bpf_map_lookup_batch(f, first ? NULL : &in, &out, e->set_keys, e->set_values,
                                          &n, &opts);
            else
                rc = bpf_map_lookup_and_delete_batch(f, first ? NULL : &in, &out, e->set_keys,
                                                     e->set_values, &n, &opts);
            if (rc != 0)
                err = errno;
            done = n;
            if (e->baseline && f == fd && n) {
                e->stats.bpf_calls++;
                bpf_map_delete_batch(f, e->set_keys, &done, &opts);
            }
            if (err == ENOENT)
                break;
            if (err) { /* no batches: one key at a time */
                struct sn_keyset_key k;
                while (bpf_map_get_next_key(fd, NULL, &k) == 0 && bpf_map_delete_elem(fd, &k) == 0)
                    e->stats.bpf_calls += 2;
                break;
            }
            in = out;
            first = false;
        }
    }
    for (uint32_t s = 0; s < SN_MAX_SLOTS; s++) /* every slot: a freed one starts afresh */
        __atomic_store_n(&nk[s * 2 + g], 0, __ATOMIC_RELAXED);
}

/*
 * Generation g's drops counters into drops (may be NULL), zeroed for the next use of g. Only
 * when the kernel flagged one (drops_dirty): a batch read of the generation's counters and a
 * batch write of zeros. The baseline reads and zeroes each enabled slot's two counters.
 */
static void drain_drops(struct sn_engine *e, uint32_t g, struct sn_slot_drops *drops)
{
    int fd = bpf_map__fd(e->sc->maps.drops);
    uint32_t base = SN_DROP_IDX(g, 0, 0), in = base - 1, out, count = NDROPS;
    uint32_t *keys = e->arr_keys; /* NDROPS <= SN_U64_ORDS */
    LIBBPF_OPTS(bpf_map_batch_opts, opts);

    for (uint32_t s = 0; s < SN_MAX_SLOTS && drops; s++)
        drops[s] = (struct sn_slot_drops){0};
    if (e->baseline) {
        for (uint32_t s = 0; s < SN_MAX_SLOTS; s++) {
            if (!e->used[s])
                continue;
            for (uint32_t k = 0; k < 2; k++) {
                uint32_t di = SN_DROP_IDX(g, s, k);
                uint64_t v = 0;
                e->stats.bpf_calls += 2;
                if (bpf_map_lookup_elem(fd, &di, e->values) == 0)
                    for (int c = 0; c < e->ncpu; c++)
                        v += e->values[c];
                if (drops && k == 0)
                    drops[s].over_cap = v;
                else if (drops)
                    drops[s].map_full = v;
                memset(e->values, 0, (size_t)e->ncpu * sizeof(*e->values));
                bpf_map_update_elem(fd, &di, e->values, BPF_ANY);
            }
        }
        return;
    }
    if (!take(&e->sc->bss->drops_dirty[g]))
        return;
    e->stats.bpf_calls += 2;
    if (bpf_map_lookup_batch(fd, base ? &in : NULL, &out, keys, e->drop_values, &count, &opts) !=
            0 &&
        errno != ENOENT)
        return;
    for (uint32_t i = 0; i < count && drops; i++) {
        uint64_t v = 0;
        uint32_t s = (keys[i] - base) / 2;
        for (int c = 0; c < e->ncpu; c++)
            v += e->drop_values[(size_t)i * (size_t)e->ncpu + (size_t)c];
        if (s >= SN_MAX_SLOTS || !e->used[s])
            continue;
        if ((keys[i] - base) % 2 == 0)
            drops[s].over_cap = v;
        else
            drops[s].map_full = v;
    }
    memset(e->drop_values, 0, (size_t)count * (size_t)e->ncpu * sizeof(*e->drop_values));
    bpf_map_update_batch(fd, keys, e->drop_values, &count, &opts);
}

void sn_engine_stats(const struct sn_engine *e, struct sn_engine_stats *out)
{
    *out = e->stats;
}

int sn_engine_collect(struct sn_engine *e, sn_cell_fn fn, void *arg, struct sn_slot_drops *drops)
{
    uint32_t old = e->sc->bss->gen & 1, cells = 0;
    struct timespec t0, t;
    bool dirty;

    /* Flip, then give programs that read the old generation time to finish (microseconds).
     * The wait spins on the vDSO clock rather than sleeping, so that the agent's own
     * collection makes no system call that its syscall instrumentations would count. A
     * program preempted across the flip adds its one count to the old generation after the
     * drain; that count is reported with the next drain of that generation, never lost (the
     * flags it sets bring the next drain of that generation to it). */
    e->sc->bss->gen = old ^ 1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do
        clock_gettime(CLOCK_MONOTONIC, &t);
    while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < 200000);

    /* Cells, keys and drops of the old generation; each read only when the kernel flagged it
     * in shared memory, so that an idle second makes no system call. */
    if (e->table) {
        dirty = __atomic_load_n(&e->sc->bss->ncells[old], __ATOMIC_ACQUIRE) != 0;
        if (dirty)
            cells += drain_table(e, old, fn, arg);
    } else {
        dirty = e->baseline ? true : take(&e->sc->bss->agg_dirty[old]);
        if (dirty)
            cells += drain_agg(e, old, fn, arg);
    }
    drain_keyset(e, old, dirty);
    for (uint32_t s = 0; s < SN_ARRAY_SLOTS; s++)
        if (e->used[s] && e->in_array[s] &&
            (e->baseline || take(&e->sc->bss->arr_dirty[s * 2 + old])))
            cells += drain_array(e, s, old, fn, arg);
    drain_drops(e, old, drops);
    set_wall_offset(e);
    if (e->attached[SN_METRIC_FS_OPS])
        refresh_fs_devs(e, false);
    scope_refresh(e);
    e->stats.collections++;
    e->stats.cells += cells;
    return (int)cells;
}
