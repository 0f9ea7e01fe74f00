/*
 * The CTF trace writer (writer.h). Each CPU stages its events as a struct rec_head followed by
 * the encoded payload, in one growable buffer with an index {ts, offset}; a flush sorts the
 * index by (ts, offset), which is stable since offsets grow in insertion order, and cuts the
 * events into packets.
 */
#include "ctf/writer.h"

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

#include "core/file.h"
#include "core/grow.h"
#include "ctf/packet.h"

struct rec_head { /* in host order, copied in and out with memcpy (no alignment needed) */
    uint64_t ts;
    uint32_t id;
    int32_t pid, tid;
    uint32_t len; /* payload bytes that follow */
};
#define REC_HEAD sizeof(struct rec_head)

struct ix {
    uint64_t ts;
    size_t off;
};

struct cpu_state {
    uint8_t *stage;
    size_t stage_len, stage_cap;
    struct ix *ix;
    size_t nix, ix_cap;
    bool unsorted;              /* an event was staged before an earlier-staged one's time */
    int fd;                     /* the temporary stream file, -1 before the first packet */
    uint64_t last_end;          /* timestamp_end of the last packet written */
    uint64_t discarded;         /* free-running */
    uint64_t discarded_written; /* as of the last packet */
};

struct sn_ctf_writer {
    char kdir[PATH_MAX - 64]; /* dir/kernel (room left for the file names) */
    struct sn_ctf_env env;
    struct sn_ctf_writer_opts o;
    uint64_t *seq; /* opts.packet_seq or own_seq */
    uint64_t *own_seq;
    struct cpu_state *cpu;
    uint8_t *pkt; /* one packet being built */
    size_t pkt_cap;
    uint64_t max_ts; /* latest event time seen on any CPU */
    uint64_t events, bytes;
};

static void path_of(const struct sn_ctf_writer *w, unsigned cpu, bool tmp, char *p, size_t n)
{
    if (tmp)
        snprintf(p, n, "%s/.chan_%u.tmp", w->kdir, cpu);
    else
        snprintf(p, n, "%s/chan_%u", w->kdir, cpu);
}

static void free_writer(struct sn_ctf_writer *w)
{
    for (unsigned c = 0; w->cpu && c < w->o.ncpus; c++) {
        free(w->cpu[c].stage);
        free(w->cpu[c].ix);
        if (w->cpu[c].fd >= 0)
            close(w->cpu[c].fd);
    }
    free(w->cpu);
    free(w->own_seq);
    free(w->pkt);
    free(w);
}

int sn_ctf_writer_open(struct sn_ctf_writer **out, const char *dir, const struct sn_ctf_env *env,
                       const struct sn_ctf_writer_opts *opts)
{
    *out = NULL;
    if (!dir || !env || !opts || !opts->classes || opts->ncpus == 0 ||
        opts->ncpus > SN_CTF_MAX_CPUS)
        return -EINVAL;
    struct sn_ctf_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->env = *env;
    w->o = *opts;
    if (!w->o.max_packet)
        w->o.max_packet = SN_CTF_MAX_PACKET;
    if (!w->o.max_packet_ns)
        w->o.max_packet_ns = SN_CTF_MAX_PACKET_NS;
    if ((size_t)snprintf(w->kdir, sizeof(w->kdir), "%s/kernel", dir) >= sizeof(w->kdir)) {
        free(w);
        return -ENAMETOOLONG;
    }
    w->cpu = calloc(w->o.ncpus, sizeof(*w->cpu));
    w->seq = opts->packet_seq;
    if (!w->seq)
        w->seq = w->own_seq = calloc(w->o.ncpus, sizeof(*w->own_seq));
    w->pkt_cap = w->o.max_packet + SN_CTF_PACKET_HEADER;
    w->pkt = malloc(w->pkt_cap);
    if (!w->cpu || !w->seq || !w->pkt) {
        free_writer(w);
        return -ENOMEM;
    }
    for (unsigned c = 0; c < w->o.ncpus; c++)
        w->cpu[c].fd = -1;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        int rc = -errno;
        free_writer(w);
        return rc;
    }
    if (mkdir(w->kdir, 0755) < 0) {
        int rc = -errno;
        free_writer(w);
        return rc;
    }
    *out = w;
    return 0;
}

int sn_ctf_writer_add(struct sn_ctf_writer *w, unsigned cpu, const struct sn_rec_event *ev)
{
    if (cpu >= w->o.ncpus)
        return -EINVAL;
    const struct sn_ctf_class *c = sn_ctf_class_of(w->o.classes, ev);
    if (!c)
        return -EINVAL;
    struct cpu_state *s = &w->cpu[cpu];
    if (s->fd >= 0 && ev->ts < s->last_end)
        return -ERANGE;
    size_t need = s->stage_len + REC_HEAD + 512, len;
    for (;;) {
        uint8_t *g = sn_grow(s->stage, &s->stage_cap, need, 1);
        if (!g)
            return -ENOMEM;
        s->stage = g;
        size_t room = s->stage_cap - s->stage_len - REC_HEAD;
        len = sn_ctf_encode(c, ev, s->stage + s->stage_len + REC_HEAD, room);
        if (len <= room)
            break;
        need = s->stage_len + REC_HEAD + len;
    }
    struct ix *g = sn_grow(s->ix, &s->ix_cap, s->nix + 1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    s->ix = g;
    struct rec_head h = {
        .ts = ev->ts, .id = c->id, .pid = ev->pid, .tid = ev->tid, .len = (uint32_t)len};
    memcpy(s->stage + s->stage_len, &h, sizeof(h));
    if (s->nix > 0 && ev->ts < s->ix[s->nix - 1].ts)
        s->unsorted = true;
    s->ix[s->nix++] = (struct ix){.ts = ev->ts, .off = s->stage_len};
    s->stage_len += REC_HEAD + len;
    if (ev->ts > w->max_ts)
        w->max_ts = ev->ts;
    return 0;
}

void sn_ctf_writer_discarded(struct sn_ctf_writer *w, unsigned cpu, uint64_t n)
{
    if (cpu < w->o.ncpus)
        w->cpu[cpu].discarded += n;
}

static int by_ts(const void *a, const void *b)
{
    const struct ix *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return (x->off > y->off) - (x->off < y->off);
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = write(fd, p, n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Writes the packet built in w->pkt (len bytes, events from begin to end) for cpu. */
static int emit(struct sn_ctf_writer *w, unsigned cpu, size_t len, uint64_t begin, uint64_t end)
{
    struct cpu_state *s = &w->cpu[cpu];
    if (s->fd < 0) {
        char p[PATH_MAX];
        path_of(w, cpu, true, p, sizeof(p));
        s->fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (s->fd < 0)
            return -errno;
    }
    struct sn_ctf_packet_info pi = {.cpu = cpu,
                                    .ts_begin = begin,
                                    .ts_end = end,
                                    .bytes = len,
                                    .seq = w->seq[cpu]++,
                                    .discarded = s->discarded};
    memcpy(pi.uuid, w->env.uuid, 16);
    sn_ctf_packet_header(w->pkt, &pi);
    s->last_end = end;
    s->discarded_written = s->discarded;
    w->bytes += len;
    return write_all(s->fd, w->pkt, len);
}

static uint64_t mono_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

int sn_ctf_writer_flush_packet(struct sn_ctf_writer *w, unsigned cpu)
{
    if (cpu >= w->o.ncpus)
        return -EINVAL;
    struct cpu_state *s = &w->cpu[cpu];
    if (s->nix == 0) {
        if (s->discarded == s->discarded_written)
            return 0;
        uint64_t t = w->max_ts ? w->max_ts : mono_now();
        if (t < s->last_end)
            t = s->last_end;
        return emit(w, cpu, SN_CTF_PACKET_HEADER, t, t);
    }
    if (s->unsorted) /* ring consumers hand most CPUs' events in order already */
        qsort(s->ix, s->nix, sizeof(*s->ix), by_ts);
    s->unsorted = false;
    size_t len = SN_CTF_PACKET_HEADER, n = 0;
    uint64_t begin = 0, prev = 0;
    int rc = 0;
    for (size_t i = 0; i < s->nix && rc == 0; i++) {
        const uint8_t *r = s->stage + s->ix[i].off;
        struct rec_head h;
        memcpy(&h, r, sizeof(h));
        uint64_t ts = h.ts;
        size_t elen = SN_CTF_HEADER_EXT + SN_CTF_EVENT_CONTEXT + h.len; /* at most */
        if (n > 0 && (len + elen > w->o.max_packet || ts - begin >= w->o.max_packet_ns)) {
            rc = emit(w, cpu, len, begin, prev);
            len = SN_CTF_PACKET_HEADER, n = 0;
        }
        if (len + elen > w->pkt_cap) { /* one event larger than a packet: alone in its own */
            uint8_t *g = sn_grow(w->pkt, &w->pkt_cap, len + elen, 1);
            if (!g)
                return -ENOMEM;
            w->pkt = g;
        }
        if (n == 0)
            begin = ts;
        bool ext = sn_ctf_needs_extended(n == 0, h.id, ts, prev);
        len += sn_ctf_event_header(w->pkt + len, ext, h.id, ts, h.pid, h.tid);
        memcpy(w->pkt + len, r + REC_HEAD, h.len);
        len += h.len;
        prev = ts;
        n++;
        w->events++;
    }
    if (rc == 0 && n > 0)
        rc = emit(w, cpu, len, begin, prev);
    s->nix = 0;
    s->stage_len = 0;
    return rc;
}

uint64_t sn_ctf_writer_events(const struct sn_ctf_writer *w)
{
    return w->events;
}

uint64_t sn_ctf_writer_bytes(const struct sn_ctf_writer *w)
{
    return w->bytes;
}

void sn_ctf_writer_abort(struct sn_ctf_writer *w)
{
    if (!w)
        return;
    char p[PATH_MAX];
    for (unsigned c = 0; c < w->o.ncpus; c++) {
        path_of(w, c, true, p, sizeof(p));
        unlink(p);
    }
    snprintf(p, sizeof(p), "%s/.metadata", w->kdir);
    unlink(p);
    rmdir(w->kdir); /* only when empty: a finished trace stays */
    free_writer(w);
}

int sn_ctf_writer_close(struct sn_ctf_writer *w)
{
    int rc = 0;
    for (unsigned c = 0; c < w->o.ncpus && rc == 0; c++)
        rc = sn_ctf_writer_flush_packet(w, c);
    for (unsigned c = 0; c < w->o.ncpus && rc == 0; c++) {
        struct cpu_state *s = &w->cpu[c];
        if (s->fd < 0)
            continue;
        if (fsync(s->fd) < 0)
            rc = -errno;
        close(s->fd);
        s->fd = -1;
    }
    size_t mlen = 0;
    char *meta = rc == 0 ? sn_ctf_tsdl(&w->env, w->o.classes, &mlen) : NULL;
    if (rc == 0 && !meta)
        rc = -ENOMEM;
    char tmp[PATH_MAX], dst[PATH_MAX];
    if (rc == 0) {
        snprintf(tmp, sizeof(tmp), "%s/.metadata", w->kdir);
        rc = sn_file_write_atomic(tmp, meta, mlen);
    }
    free(meta);
    for (unsigned c = 0; c < w->o.ncpus && rc == 0; c++) {
        path_of(w, c, true, tmp, sizeof(tmp));
        path_of(w, c, false, dst, sizeof(dst));
        if (rename(tmp, dst) < 0 && errno != ENOENT)
            rc = -errno;
    }
    if (rc == 0) {
        snprintf(tmp, sizeof(tmp), "%s/.metadata", w->kdir);
        snprintf(dst, sizeof(dst), "%s/metadata", w->kdir);
        if (rename(tmp, dst) < 0)
            rc = -errno;
    }
    if (rc == 0)
        rc = sn_file_sync_dir(w->kdir);
    if (rc < 0) {
        sn_ctf_writer_abort(w);
        return rc;
    }
    free_writer(w);
    return 0;
}
