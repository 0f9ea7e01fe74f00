/*
 * The CTF trace writer of the flight recorder: a directory DIR/kernel/ holding `metadata` and
 * one stream file `chan_<cpu>` per CPU that had a packet, in lttng-modules' layout (tsdl.h,
 * packet.h), which babeltrace2 and the LTTng analyses read as a kernel trace.
 *
 *   sn_ctf_writer_open(&w, dir, &env, &opts);
 *   sn_ctf_writer_add(w, cpu, &ev);        (any order: each CPU's events are sorted by ts,
 *   sn_ctf_writer_flush_packet(w, cpu);     stably, when they are flushed into packets)
 *   sn_ctf_writer_close(w);                (flushes every CPU, renames the files into place)
 *
 * Files appear whole: streams are written as hidden temporaries (kernel/.chan_N.tmp; readers
 * ignore hidden files, and any other stray file in kernel/ would break the trace), and renamed
 * into place at close, metadata last, so a reader never sees a partial trace. Packets are
 * whole, at most max_packet bytes (unless one event is larger) and within max_packet_ns from
 * their first event to their last. packet_seq_num is per CPU and continues across traces: the
 * caller keeps the counters (opts.packet_seq) from one snapshot to the next, so that a reader
 * merging them sees no gap. events_discarded starts at 0 in each trace and grows with
 * sn_ctf_writer_discarded().
 *
 * Not thread-safe: one writer, one thread.
 */
#ifndef SN_CTF_WRITER_H
#define SN_CTF_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "ctf/event_class.h"
#include "ctf/rec_event.h"
#include "ctf/tsdl.h"

#define SN_CTF_MAX_PACKET    (256 * 1024)
#define SN_CTF_MAX_PACKET_NS 1000000000ULL
#define SN_CTF_MAX_CPUS      4096

struct sn_ctf_writer_opts {
    unsigned ncpus;                       /* CPUs 0 .. ncpus-1 (<= SN_CTF_MAX_CPUS) */
    const struct sn_ctf_classes *classes; /* borrowed, until close */
    uint64_t *packet_seq;   /* [ncpus], the caller's: the next packet_seq_num of each CPU,
                               advanced as packets are written; NULL: from 0 */
    size_t max_packet;      /* 0: SN_CTF_MAX_PACKET */
    uint64_t max_packet_ns; /* 0: SN_CTF_MAX_PACKET_NS */
};

struct sn_ctf_writer;

/* Creates dir (if absent) and dir/kernel (which must not exist: -EEXIST). Returns 0 and *out,
 * or -errno (-EINVAL for bad options). */
int sn_ctf_writer_open(struct sn_ctf_writer **out, const char *dir, const struct sn_ctf_env *env,
                       const struct sn_ctf_writer_opts *opts);

/* Stages ev (copied, strings included) for CPU cpu's stream. Returns 0; -EINVAL for a cpu out
 * of range or an unknown ev->type; -ERANGE when ev->ts is before the end of the packets
 * already written for cpu (the stream's time cannot go back); -ENOMEM. */
int sn_ctf_writer_add(struct sn_ctf_writer *w, unsigned cpu, const struct sn_rec_event *ev);

/* Counts n more events lost on cpu (torn or dropped records inside the window): the next
 * packet's events_discarded grows by n. */
void sn_ctf_writer_discarded(struct sn_ctf_writer *w, unsigned cpu, uint64_t n);

/* Writes cpu's staged events as packets, sorted by ts. With none staged, writes an empty packet
 * when discarded events are pending (stamped with the latest time seen on any CPU), else
 * nothing. Returns 0 or -errno (the trace is then unusable: abort it). */
int sn_ctf_writer_flush_packet(struct sn_ctf_writer *w, unsigned cpu);

/* Events and bytes written so far (packets flushed). */
uint64_t sn_ctf_writer_events(const struct sn_ctf_writer *w);
uint64_t sn_ctf_writer_bytes(const struct sn_ctf_writer *w);

/* Flushes every CPU, puts the streams and the metadata in place, frees w. Returns 0 or -errno
 * (then the temporaries are removed, as by abort). */
int sn_ctf_writer_close(struct sn_ctf_writer *w);

/* Removes what w wrote (temporaries and dir/kernel when empty) and frees w. NULL is a no-op. */
void sn_ctf_writer_abort(struct sn_ctf_writer *w);

#endif
