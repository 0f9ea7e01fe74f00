/*
 * A decoded flight-recorder record: what the recorder's ring consumers (src/rec/, from the BPF
 * slots of src/bpf/rec.h) hand to the CTF writer (src/ctf/writer.h), and what `sonde trace` and
 * the live relay print. One plain struct per event, whatever its kind: the kind-specific part is
 * a union named after the event, its members named as lttng-modules names the CTF fields
 * (docs/recorder.md, "The trace layout"), so that the mapping to CTF is one line per field.
 *
 * Pointers (strings, vtids) are borrowed: they must stay valid until sn_ctf_writer_add()
 * returns, which copies what it writes.
 */
#ifndef SN_CTF_REC_EVENT_H
#define SN_CTF_REC_EVENT_H

#include <stdint.h>

#define SN_REC_ARGS     6  /* system call arguments (x86-64) */
#define SN_REC_COMM_LEN 16 /* TASK_COMM_LEN: comm arrays, NUL-padded, not always terminated */
#define SN_REC_VTIDS    4  /* pid namespace levels kept for a fork's child */

enum sn_rec_type {
    SN_REC_SYS_ENTER = 1,    /* raw_syscalls:sys_enter: .sys.nr, .sys.args, .sys.str */
    SN_REC_SYS_EXIT,         /* raw_syscalls:sys_exit: .sys.nr, .sys.ret, .sys.args (out ones) */
    SN_REC_SCHED_SWITCH,     /* .sw */
    SN_REC_SCHED_WAKEUP,     /* .wakeup */
    SN_REC_SCHED_WAKEUP_NEW, /* .wakeup */
    SN_REC_PROC_EXEC,        /* .exec */
    SN_REC_PROC_FORK,        /* .fork */
    SN_REC_PROC_EXIT,        /* .exit */
    SN_REC_BLOCK_ISSUE,      /* .blk */
    SN_REC_BLOCK_COMPLETE,   /* .blk (bytes, tid and comm unused) */
    SN_REC_TCP_CONNECT,      /* .tcp: a connect completed (SYN_SENT -> ESTABLISHED) */
    SN_REC_TCP_ACCEPT,       /* .tcp: a passive open completed (SYN_RECV -> ESTABLISHED) */
    SN_REC_TCP_RETRANSMIT,   /* .tcp */
    SN_REC_FAULT_USER,       /* .fault */
    SN_REC_FAULT_KERNEL,     /* .fault */
    SN_REC_USDT,             /* .usdt */
};

#define SN_REC_USDT_NARGS 11 /* arguments of a USDT hit kept */

struct sn_rec_event {
    uint16_t type;  /* enum sn_rec_type */
    uint16_t cpu;   /* the CPU the event happened on: its CTF stream */
    uint32_t flags; /* reserved, 0 */
    uint64_t ts;    /* CLOCK_MONOTONIC, ns (bpf_ktime_get_ns) */
    int32_t tid;    /* the current task's pid (kernel view): CTF context _tid */
    int32_t pid;    /* its tgid: CTF context _pid */
    union {
        struct {
            int64_t nr;                   /* system call number (x86-64 table) */
            int64_t ret;                  /* exit only */
            uint64_t args[SN_REC_ARGS];   /* raw register values */
            const char *str[SN_REC_ARGS]; /* the user string of a string argument, or NULL */
        } sys;
        struct {
            char prev_comm[SN_REC_COMM_LEN];
            int32_t prev_tid;
            int32_t prev_prio; /* p->prio - 100, as lttng-modules */
            int64_t prev_state;
            char next_comm[SN_REC_COMM_LEN];
            int32_t next_tid;
            int32_t next_prio;
        } sw;
        struct {
            char comm[SN_REC_COMM_LEN];
            int32_t tid;
            int32_t prio;
            int32_t target_cpu;
        } wakeup;
        struct {
            const char *filename; /* NULL: written as "" */
            int32_t tid;
            int32_t old_tid;
        } exec;
        struct {
            char parent_comm[SN_REC_COMM_LEN];
            int32_t parent_tid;
            int32_t parent_pid;
            uint32_t parent_ns_inum;
            char child_comm[SN_REC_COMM_LEN];
            int32_t child_tid;
            int32_t child_pid;
            uint32_t child_ns_inum;
            uint8_t nr_vtids; /* <= SN_REC_VTIDS: the child's tid in each pid namespace level */
            int32_t vtids[SN_REC_VTIDS];
        } fork;
        struct {
            char comm[SN_REC_COMM_LEN];
            int32_t tid;
            int32_t prio;
            uint8_t group_dead; /* the kernel's bool (tracepoint argument since 6.16) */
        } exit;
        struct {
            uint32_t dev; /* the disk's dev_t, major << 20 | minor (the kernel's encoding) */
            uint64_t sector;
            uint32_t nr_sector;
            uint32_t bytes;             /* issue */
            int32_t tid;                /* issue: the current task's */
            int32_t error;              /* complete: 0 or a negative errno */
            uint32_t rwbs;              /* lttng-modules' RWBS_FLAG_* bits */
            char comm[SN_REC_COMM_LEN]; /* issue */
        } blk;
        struct {
            uint64_t skaddr;
            uint64_t skbaddr; /* retransmit */
            uint16_t sport, dport, family;
            int32_t oldstate, newstate;   /* TCP_* (retransmit: the socket's state, both) */
            int32_t err;                  /* retransmit: tcp_retransmit_skb's result */
            uint8_t saddr[16], daddr[16]; /* IPv6, or IPv4 mapped (::ffff:a.b.c.d) */
        } tcp;
        struct {
            uint64_t address;
            uint64_t ip;
            uint8_t error_code;
        } fault;
        struct {
            uint32_t probe; /* the session's probe index: its event class */
            uint32_t nargs;
            int64_t args[SN_REC_USDT_NARGS];
        } usdt;
    } u;
};

#endif
