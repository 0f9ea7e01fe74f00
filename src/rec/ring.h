/*
 * Consumers of the flight recorder's rings (bpf/rec.h): each consumer (a manual snapshot, a
 * trigger, the disk writer, the live stream) keeps its own u64 cursor per CPU, so successive
 * snapshots of one consumer never repeat a record, and the kernel knows no consumer. A
 * snapshot copies each CPU's window [max(cursor, head - nslots), head), keeps the records whose
 * slots all carry their sequence number before and after the copy, counts the rest, sorts each
 * CPU's records by ts (stably) and moves the cursor to head.
 *
 * Pure: the ring is memory (the kernel's mmapped map and .bss, or a test's fake arrays).
 *
 * Counts, per CPU:
 *  - overwritten: slots written since the cursor that the ring no longer holds, plus the
 *    continuation slots at the window's start whose first slot is gone (for single-slot
 *    records, records);
 *  - torn: slots skipped because they changed under the copy or were still being written
 *    (never waited for), a record's slots with it.
 * So overwritten + torn + the slots of the records kept = head - cursor, exactly.
 */
#ifndef SN_REC_RING_H
#define SN_REC_RING_H

#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>

#include "bpf/rec.h"
#include "ctf/rec_event.h"

/* The ring as memory: slots[ncpu * nslots], heads[ncpu]; nslots a power of 2. */
struct sn_rec_ring_view {
    const struct sn_rec_slot *slots;
    const struct sn_rec_head *heads;
    unsigned ncpu;
    uint32_t nslots;
};

struct sn_rec_consumer; /* cursors, one per CPU */

/* One CPU's part of a snapshot. */
struct sn_rec_cpu_snap {
    struct sn_rec_slot *slots; /* copied slots, each record's consecutive */
    uint32_t *rec;             /* [nrec]: offsets in slots of the records, sorted by ts */
    size_t nrec;
    uint64_t from, to; /* the index window copied: [from, to) */
    uint64_t overwritten, torn;
};

struct sn_rec_snap {
    unsigned ncpu;
    struct sn_rec_cpu_snap *cpu;         /* [ncpu] */
    uint64_t records, overwritten, torn; /* sums over CPUs */
};

/* A consumer whose cursors start at the heads of view now (start_at_head), or at 0 (everything
 * still in the ring). Returns 0 or -ENOMEM/-EINVAL. */
int sn_rec_consumer_new(struct sn_rec_consumer **out, const struct sn_rec_ring_view *view,
                        int start_at_head);
void sn_rec_consumer_free(struct sn_rec_consumer *c);
uint64_t sn_rec_consumer_cursor(const struct sn_rec_consumer *c, unsigned cpu);

/* Takes a snapshot into *snap (its buffers allocated here; free with sn_rec_snap_free) and
 * moves c's cursors to the heads read. Returns 0 or -ENOMEM (c unchanged). */
int sn_rec_snapshot(struct sn_rec_consumer *c, const struct sn_rec_ring_view *view,
                    struct sn_rec_snap *snap);
void sn_rec_snap_free(struct sn_rec_snap *snap);

/* The first slot of record k of CPU cpu's part. */
static inline const struct sn_rec_slot *sn_rec_snap_record(const struct sn_rec_snap *s,
                                                           unsigned cpu, size_t k)
{
    return &s->cpu[cpu].slots[s->cpu[cpu].rec[k]];
}

/* Decodes a record (its first slot, followed by its continuations) recorded on cpu into ev; a
 * system call's string argument goes into str (ev->u.sys.str[k] points there). Returns 0, or
 * -EINVAL for a kind or shape it does not know. */
int sn_rec_slot_decode(const struct sn_rec_slot *rec, unsigned cpu, struct sn_rec_event *ev,
                       char str[SN_REC_STR_MAX]);

#endif
