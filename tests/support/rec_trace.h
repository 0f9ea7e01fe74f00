/*
 * Support of the recorder's kernel tests: a snapshot written as a CTF trace (the recorder's own
 * path: ring.c's decoding, ctf/writer.c), then read back by babeltrace2's Python bindings
 * (support/ctf_events.py, SN_CTF_EVENTS_PY) into parsed lines, so that tests check what a
 * reader of the trace sees.
 */
#ifndef SN_TESTS_REC_TRACE_H
#define SN_TESTS_REC_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "ctf/event_class.h"
#include "rec/ring.h"

/* One event as babeltrace2 decodes it. */
struct t_rec_ev {
    uint64_t ts;
    int cpu, pid, tid;
    char name[64];
    char *fields; /* "k=v k=v ..." */
};

struct t_rec_trace {
    struct t_rec_ev *ev;
    size_t n;
    char dir[600]; /* the trace's directory (DIR/kernel holds it) */
};

/* Writes snap into a new directory under t_outdir() (the classes of the system call table,
 * plus those of usdt, when not NULL: probes[i] names probe i as "provider:probe", with nargs[i]
 * arguments), runs babeltrace2 on it and parses its events into *t. Returns the events written
 * (each record decoded once), or -errno / -1 (babeltrace2 failed: its error is noted). */
long t_rec_trace_read(const struct sn_rec_snap *snap, struct t_rec_trace *t,
                      const char *const *probes, const unsigned *nargs, size_t nprobes);
/* Frees *t and removes its directory. */
void t_rec_trace_free(struct t_rec_trace *t);

/* The value of field k of e, as an integer (0 when absent: *found says), or as text. */
int64_t t_rec_field(const struct t_rec_ev *e, const char *k, int *found);
const char *t_rec_field_str(const struct t_rec_ev *e, const char *k, char *buf, size_t len);

#endif
