/*
 * Disk mode's sink (disk_sink.h): one CTF writer (ctf/writer.h) per chunk, opened at the first
 * events after a rotation, flushed into packets at each pass end, closed and renamed into place
 * at a rotation; the packet sequence numbers are the sink's, passed to each writer.
 */
#include "rec/disk_sink.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/grow.h"
#include "core/log.h"
#include "ctf/tsdl.h"
#include "ctf/writer.h"

struct closed {
    uint64_t n, bytes;
};

struct sn_rec_disk {
    struct sn_rec_disk_opts o;
    char dir[PATH_MAX - 64], session[64];
    uint64_t *seq;     /* [ncpu] the next packet_seq_num of each CPU */
    uint64_t *floor;   /* [ncpu] the last event's time written on each CPU */
    uint64_t *pending; /* [ncpu] lost while no chunk was open */
    struct sn_ctf_writer *w;
    uint64_t n;        /* the open (or next) chunk's number */
    uint64_t first_ts; /* the open chunk's first event (0: none yet) */
    uint64_t chunk_events;
    uint64_t lo_ts, hi_ts; /* the open chunk's earliest and latest event */
    struct closed *done;
    size_t ndone, done_cap;
    uint64_t done_bytes;
    struct sn_rec_disk_stats st;
};

static void chunk_path(const struct sn_rec_disk *d, uint64_t n, bool part, char *p, size_t len)
{
    snprintf(p, len, part ? "%s/.chunk-%06" PRIu64 ".part" : "%s/chunk-%06" PRIu64, d->dir, n);
}

/* Removes a chunk directory: its kernel/ files, kernel/, itself (nothing else is there). */
static void remove_chunk(const char *path)
{
    char k[PATH_MAX], f[PATH_MAX + 256];
    snprintf(k, sizeof(k), "%s/kernel", path);
    DIR *dd = opendir(k);
    if (dd) {
        for (struct dirent *e; (e = readdir(dd));)
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(f, sizeof(f), "%s/%s", k, e->d_name);
                unlink(f);
            }
        closedir(dd);
    }
    rmdir(k);
    snprintf(f, sizeof(f), "%s/" SN_REC_DISK_INDEX, path);
    unlink(f);
    rmdir(path);
}

static int open_chunk(struct sn_rec_disk *d)
{
    char path[PATH_MAX], name[96]; /* cut to the trace_name's 63 bytes */
    struct sn_ctf_env env;
    snprintf(name, sizeof(name), "%s-chunk-%06" PRIu64, d->session, d->n);
    int rc = sn_ctf_env_host(&env, name, d->session);
    if (rc != 0)
        return rc;
    chunk_path(d, d->n, true, path, sizeof(path));
    remove_chunk(path); /* a part left by a crash */
    struct sn_ctf_writer_opts wo = {.ncpus = d->o.ncpu, .classes = d->o.cls, .packet_seq = d->seq};
    if ((rc = sn_ctf_writer_open(&d->w, path, &env, &wo)) != 0)
        return rc;
    d->first_ts = 0;
    d->chunk_events = 0;
    d->lo_ts = UINT64_MAX;
    d->hi_ts = 0;
    for (unsigned c = 0; c < d->o.ncpu; c++)
        if (d->pending[c]) {
            sn_ctf_writer_discarded(d->w, c, d->pending[c]);
            d->pending[c] = 0;
        }
    return 0;
}

/* Drops the open chunk after a failure: its events are lost. */
static void fail_chunk(struct sn_rec_disk *d, int rc)
{
    char path[PATH_MAX];
    sn_log(SN_LOG_WARN, "disk",
           "session %s: chunk %" PRIu64 " failed (%s): %" PRIu64 " events lost", d->session, d->n,
           strerror(-rc), d->chunk_events);
    sn_ctf_writer_abort(d->w);
    d->w = NULL;
    chunk_path(d, d->n, true, path, sizeof(path));
    remove_chunk(path);
    d->st.lost += d->chunk_events;
    d->n++;
}

/* The closed chunk's index, part/SN_REC_DISK_INDEX (disk_sink.h). */
static int write_index(const struct sn_rec_disk *d, const char *part, uint64_t bytes)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/" SN_REC_DISK_INDEX, part);
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    fprintf(f,
            "{\"chunk\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"first_ns\": %" PRIu64
            ", \"last_ns\": %" PRIu64 ", \"events\": %" PRIu64 ", \"lost\": %" PRIu64 "}\n",
            d->n, bytes, d->chunk_events ? d->lo_ts : 0, d->hi_ts, d->chunk_events, d->st.lost);
    int rc = ferror(f) ? -EIO : 0;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* Closes the open chunk, renames it into place, applies the cap. */
static void close_chunk(struct sn_rec_disk *d)
{
    char part[PATH_MAX], dst[PATH_MAX];
    int rc = 0;
    for (unsigned c = 0; c < d->o.ncpu && rc == 0; c++)
        rc = sn_ctf_writer_flush_packet(d->w, c);
    uint64_t bytes = sn_ctf_writer_bytes(d->w);
    if (rc != 0) {
        fail_chunk(d, rc);
        return;
    }
    rc = sn_ctf_writer_close(d->w); /* frees it, removing its files on failure */
    d->w = NULL;
    chunk_path(d, d->n, true, part, sizeof(part));
    chunk_path(d, d->n, false, dst, sizeof(dst));
    if (rc == 0)
        rc = write_index(d, part, bytes);
    if (rc == 0 && rename(part, dst) != 0)
        rc = -errno;
    if (rc != 0) {
        sn_log(SN_LOG_WARN, "disk", "session %s: chunk %" PRIu64 " not kept: %s", d->session, d->n,
               strerror(-rc));
        remove_chunk(part);
        d->st.lost += d->chunk_events;
        d->n++;
        return;
    }
    struct closed *g = sn_grow(d->done, &d->done_cap, d->ndone + 1, sizeof(*g));
    if (g) {
        d->done = g;
        d->done[d->ndone++] = (struct closed){.n = d->n, .bytes = bytes};
        d->done_bytes += bytes;
    }
    d->st.chunks++;
    d->n++;
    while (d->o.max_bytes && d->done_bytes > d->o.max_bytes && d->ndone > 1) {
        chunk_path(d, d->done[0].n, false, dst, sizeof(dst));
        remove_chunk(dst);
        d->done_bytes -= d->done[0].bytes;
        memmove(d->done, d->done + 1, (d->ndone - 1) * sizeof(*d->done));
        d->ndone--;
        d->st.removed++;
    }
}

static int s_events(void *ctx, unsigned cpu, const struct sn_rec_event *ev, size_t n, uint64_t lost)
{
    struct sn_rec_disk *d = ctx;
    if (cpu >= d->o.ncpu)
        return -EINVAL;
    if (n == 0 && !d->w) {
        d->pending[cpu] += lost;
        d->st.lost += lost;
        return 0;
    }
    int rc = d->w ? 0 : open_chunk(d);
    if (rc != 0) {
        d->pending[cpu] += lost;
        d->st.lost += n + lost;
        d->n++;
        return rc;
    }
    uint64_t dropped = lost;
    for (size_t i = 0; i < n; i++) {
        if (ev[i].ts < d->floor[cpu]) {
            dropped++;
            continue;
        }
        if ((rc = sn_ctf_writer_add(d->w, cpu, &ev[i])) != 0) {
            if (rc == -ENOMEM) {
                fail_chunk(d, rc);
                d->st.lost += n - i;
                return rc;
            }
            dropped++; /* an unknown type: not this chunk's */
            continue;
        }
        d->floor[cpu] = ev[i].ts;
        if (!d->first_ts)
            d->first_ts = ev[i].ts;
        d->lo_ts = ev[i].ts < d->lo_ts ? ev[i].ts : d->lo_ts;
        d->hi_ts = ev[i].ts > d->hi_ts ? ev[i].ts : d->hi_ts;
        d->chunk_events++;
        d->st.events++;
    }
    if (dropped) {
        sn_ctf_writer_discarded(d->w, cpu, dropped);
        d->st.lost += dropped;
    }
    return 0;
}

static void s_pass_end(void *ctx, uint64_t ts)
{
    struct sn_rec_disk *d = ctx;
    if (!d->w)
        return;
    for (unsigned c = 0; c < d->o.ncpu; c++) {
        int rc = sn_ctf_writer_flush_packet(d->w, c);
        if (rc != 0) {
            fail_chunk(d, rc);
            return;
        }
    }
    if (sn_ctf_writer_bytes(d->w) >= d->o.chunk_bytes ||
        (d->first_ts && ts > d->first_ts && ts - d->first_ts >= d->o.chunk_ns))
        close_chunk(d);
}

static void s_end(void *ctx)
{
    struct sn_rec_disk *d = ctx;
    if (d->w)
        close_chunk(d);
    sn_log(SN_LOG_INFO, "disk",
           "session %s: %" PRIu64 " chunks written (%" PRIu64 " removed by the cap), %" PRIu64
           " events, %" PRIu64 " lost",
           d->session, d->st.chunks, d->st.removed, d->st.events, d->st.lost);
    free(d->seq);
    free(d->floor);
    free(d->pending);
    free(d->done);
    free(d);
}

int sn_rec_disk_sink(const struct sn_rec_disk_opts *o, struct sn_rec_sink *out,
                     struct sn_rec_disk **disk, char *why, size_t len)
{
    if (!o || !o->dir || !o->session || !o->cls || o->ncpu == 0 || o->ncpu > SN_CTF_MAX_CPUS ||
        strlen(o->dir) >= PATH_MAX - 96 || strlen(o->session) >= 64) {
        snprintf(why, len, "bad disk mode options");
        return -EINVAL;
    }
    if (mkdir(o->dir, 0755) != 0 && errno != EEXIST) {
        int rc = -errno;
        snprintf(why, len, "cannot make %s: %s", o->dir, strerror(errno));
        return rc;
    }
    struct sn_rec_disk *d = calloc(1, sizeof(*d));
    if (d) {
        d->seq = calloc(o->ncpu, sizeof(*d->seq));
        d->floor = calloc(o->ncpu, sizeof(*d->floor));
        d->pending = calloc(o->ncpu, sizeof(*d->pending));
    }
    if (!d || !d->seq || !d->floor || !d->pending) {
        if (d) {
            free(d->seq);
            free(d->floor);
            free(d->pending);
        }
        free(d);
        snprintf(why, len, "out of memory");
        return -ENOMEM;
    }
    d->o = *o;
    snprintf(d->dir, sizeof(d->dir), "%s", o->dir);
    snprintf(d->session, sizeof(d->session), "%s", o->session);
    d->o.dir = d->dir;
    d->o.session = d->session;
    if (!d->o.chunk_bytes)
        d->o.chunk_bytes = SN_REC_DISK_CHUNK_BYTES;
    if (!d->o.chunk_ns)
        d->o.chunk_ns = SN_REC_DISK_CHUNK_NS;
    *out = (struct sn_rec_sink){.ctx = d, .events = s_events, .pass_end = s_pass_end, .end = s_end};
    if (disk)
        *disk = d;
    return 0;
}

void sn_rec_disk_stats(const struct sn_rec_disk *d, struct sn_rec_disk_stats *out)
{
    *out = d->st;
}
