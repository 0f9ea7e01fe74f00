/*
 * The CTF event classes of the recorder's traces and the encoding of a decoded record
 * (rec_event.h) into its event's payload bytes. Names and fields are lttng-modules 2.13's for
 * x86-64 (docs/recorder.md, "The trace layout"):
 *   sched_switch, sched_wakeup, sched_wakeup_new, sched_process_exec, sched_process_fork,
 *   sched_process_exit, syscall_entry_unknown {id, args[6]}, syscall_exit_unknown {id, ret,
 *   args[6]}, then syscall_entry_<name> (the call's entry arguments) and syscall_exit_<name>
 *   (ret, then its exit arguments) for every system call of the table (syscall_tab.h).
 * then the other groups' classes: block_rq_issue, block_rq_complete (lttng-modules' names and
 * fields), net_tcp_connect, net_tcp_accept, net_tcp_retransmit_skb (Sonde's names: lttng-modules
 * has no TCP connection events), x86_exceptions_page_fault_user and _kernel (lttng-modules'),
 * and last the USDT probes a session records, usdt_<provider>_<probe> {arg0 .. argN-1}
 * (sn_ctf_classes_add_usdt()).
 * Ids are the classes' order in that list: 0..7 for the fixed ones, then 8 + 2 i (entry) and
 * 9 + 2 i (exit) for the table's i-th system call, then the other groups' (so that the system
 * calls' ids do not depend on them). A class's field list drives both its TSDL declaration
 * (tsdl.c) and its encoding here.
 */
#ifndef SN_CTF_EVENT_CLASS_H
#define SN_CTF_EVENT_CLASS_H

#include <stddef.h>
#include <stdint.h>

#include "ctf/field.h"
#include "ctf/rec_event.h"
#include "ctf/syscall_tab.h"

#define SN_CTF_CLASS_FIELDS 12
#define SN_CTF_SYSCALL_BASE 8 /* id of the first syscall_entry_<name> */

struct sn_ctf_class {
    char name[64];
    uint32_t id;
    uint8_t type;                /* enum sn_rec_type it encodes */
    const struct sn_syscall *sc; /* system call classes: the call (NULL: *_unknown) */
    uint8_t nfields;
    struct sn_ctf_field fields[SN_CTF_CLASS_FIELDS];
    int8_t argi[SN_CTF_CLASS_FIELDS]; /* system call classes: argument index (< 0: id, ret, args) */
    uint32_t probe;                   /* usdt classes: the session's probe index */
};

struct sn_ctf_classes {
    size_t n;
    struct sn_ctf_class *c;           /* c[i].id == i */
    const struct sn_syscall_tab *tab; /* borrowed: must outlive the classes */
    size_t groups;                    /* index of block_rq_issue, the first after the calls */
    size_t usdt;                      /* index of the first usdt class (== n: none) */
};

/* Builds the classes of tab (borrowed). Returns 0 or -ENOMEM. */
int sn_ctf_classes_build(struct sn_ctf_classes *cls, const struct sn_syscall_tab *tab);
void sn_ctf_classes_free(struct sn_ctf_classes *cls);

/* Adds the class of a session's USDT probe number probe (its events' u.usdt.probe):
 * usdt_<provider>_<probe> with nargs (<= SN_REC_USDT_NARGS) signed 64-bit fields arg0 ..
 * arg<nargs-1>; characters other than letters, digits and '_' become '_'. Returns 0, -EINVAL
 * (nargs too large, a probe index already added) or -ENOMEM. */
int sn_ctf_classes_add_usdt(struct sn_ctf_classes *cls, uint32_t probe, const char *provider,
                            const char *name, unsigned nargs);

/* The class of ev, or NULL when its type is unknown. */
const struct sn_ctf_class *sn_ctf_class_of(const struct sn_ctf_classes *cls,
                                           const struct sn_rec_event *ev);

/* Longest string written (a longer one is cut there): PATH_MAX - 1 bytes. */
#define SN_CTF_STR_MAX     4095
/* Longest payload of any class. */
#define SN_CTF_PAYLOAD_MAX (SN_REC_ARGS * (SN_CTF_STR_MAX + 1) + 512)

/* Writes ev's payload for class c into buf[cap]. Returns the payload's length, which may be
 * larger than cap (then buf holds the first cap bytes only: call again with a larger buffer);
 * never more than SN_CTF_PAYLOAD_MAX. */
size_t sn_ctf_encode(const struct sn_ctf_class *c, const struct sn_rec_event *ev, uint8_t *buf,
                     size_t cap);

#endif
