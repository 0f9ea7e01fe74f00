/*
 * The flight recorder's ring (docs/recorder.md): the layout shared by the BPF writer
 * (bpf/rec.bpf.c) and the user-space consumers (rec/ring.c). Fixed-width types only.
 *
 * A session's ring is one BPF_F_MMAPABLE array map of ncpu * nslots 64-byte slots (nslots a
 * power of 2); CPU c owns elements [c*nslots, (c+1)*nslots). Slot index i is a free-running
 * u64 per CPU (heads[c].head counts the slots reserved on c) and lives in element
 * c*nslots + (i & (nslots-1)). The writer reserves n slots with an atomic add on its CPU's
 * head, writes seq = 0 into each, the payload, then each slot's own seq, the first slot's last.
 * A reader keeps a record iff every slot's seq equals sn_rec_seq(its index) before and after
 * the copy: the ring needs no lock and never waits for user space (overwrite mode).
 *
 * A record is 1..SN_REC_MAX_SLOTS consecutive slots: a first slot (struct sn_rec_slot), then
 * continuation slots (struct sn_rec_cont); seq sits at offset 0 in both.
 */
#ifndef SN_BPF_REC_H
#define SN_BPF_REC_H

#if !defined(__bpf__)
#include <linux/types.h>
#endif

#define SN_REC_SLOT_SIZE 64
#define SN_REC_MAX_SLOTS 4   /* slots in one record */
#define SN_REC_MAXCPU    256 /* heads[]: CPUs a session can record */
#define SN_REC_USDT_MAX  8   /* USDT probes of one session */
#define SN_REC_USDT_ARGS 11  /* arguments recorded per USDT hit (4 + 7 in a continuation) */
#define SN_REC_NSYS      512 /* sys_tab[]: x86-64 system call numbers covered */
#define SN_REC_CONT_LEN  56  /* payload bytes of a continuation slot */

/* What a record holds (the first slot's type). Not enum sn_rec_type of ctf/rec_event.h: that
 * is the decoded event, this the ring's encoding (rec/ring.c maps one to the other). */
enum sn_rec_kind {
    /* a[0] nr (low 32 bits, signed) | SN_REC_E_* bits, a[1..4] args 0..3; continuations: args
     * 4..5 (SN_REC_E_ARGS45), then the string argument's text in 2 slots (SN_REC_E_STR) */
    SN_RK_SYS_ENTRY = 1,
    /* a[0] nr (low 32 bits, signed) | out mask << 32 (bit k: arg k), a[1] ret, a[2..4] the out
     * args of the mask, in order */
    SN_RK_SYS_EXIT = 2,
    /* a[0] prev_tid, a[1] prev_prio, a[2] prev_state (as lttng-modules reports it), a[3]
     * next_tid, a[4] next_prio; continuation: prev_comm[16], next_comm[16] */
    SN_RK_SCHED_SWITCH = 3,
    /* a[0] tid, a[1] prio, a[2] target_cpu, a[3..4] comm[16] */
    SN_RK_SCHED_WAKEUP = 4,
    SN_RK_SCHED_WAKEUP_NEW = 5, /* as SCHED_WAKEUP */
    /* proc: a[0] tid, a[1] old_tid; 2 continuations: the filename's text (as SYS_ENTRY's string
     * argument: 110 bytes, longer ones cut with SN_REC_F_TRUNC) */
    SN_RK_PROC_EXEC = 6,
    /* a[0] parent_tid, a[1] parent_pid, a[2] child_tid, a[3] child_pid, a[4] parent_ns_inum |
     * child_ns_inum << 32; continuation: b[0..15] parent_comm, b[16..31] child_comm, b[32]
     * nr_vtids (<= 4), b[36..51] vtids[4] (s32 each) */
    SN_RK_PROC_FORK = 7,
    SN_RK_PROC_EXIT = 8, /* a[0] tid, a[1] prio, a[2] group_dead, a[3..4] comm[16] */
    /* block: a[0] dev | rwbs << 32, a[1] sector, a[2] nr_sector | bytes << 32, a[3..4] the
     * current task's comm (its tid is the header's) */
    SN_RK_BLOCK_ISSUE = 9,
    SN_RK_BLOCK_COMPLETE = 10, /* a[0] dev | rwbs << 32, a[1] sector, a[2] nr_sector, a[3] error */
    /* tcp: a[0] skaddr, a[1] sport | dport << 16 | family << 32 | oldstate << 40 | newstate <<
     * 48 (family: 8 bits), a[2] skbaddr (retransmit), a[3] err (retransmit); continuation: b[0..15]
     * saddr, b[16..31] daddr (IPv6, or IPv4 mapped ::ffff:a.b.c.d) */
    SN_RK_TCP_CONNECT = 11,    /* inet_sock_set_state SYN_SENT -> ESTABLISHED */
    SN_RK_TCP_ACCEPT = 12,     /* inet_sock_set_state SYN_RECV -> ESTABLISHED */
    SN_RK_TCP_RETRANSMIT = 13, /* tcp_retransmit_skb (newstate: the socket's state) */
    /* faults: a[0] address, a[1] ip, a[2] error_code */
    SN_RK_FAULT_USER = 14,
    SN_RK_FAULT_KERNEL = 15,
    /* usdt: a[0] probe index (the session's, 0..SN_REC_USDT_MAX-1) | nargs << 32, a[1..4] args
     * 0..3; with nargs > 4 a continuation: args 4..10 (u64 each) */
    SN_RK_USDT = 16,
    SN_RK_CONT = 0xffff, /* a continuation slot */
};

/* SYS_ENTRY's a[0] above the number */
#define SN_REC_E_ARGS45   (1ULL << 32) /* a continuation holds args 4 and 5 */
#define SN_REC_E_STR      (1ULL << 33) /* 2 continuations hold the string argument's text */
#define SN_REC_E_STRSHIFT 40           /* bits 40..42: which argument is the string */
#define SN_REC_STR_PARTS  2
#define SN_REC_STR_MAX    (SN_REC_STR_PARTS * (SN_REC_CONT_LEN - 1) + 1) /* decoded, with NUL */

/* flags of a first slot */
#define SN_REC_F_TRUNC    0x1 /* a string was truncated */
#define SN_REC_F_USERFAIL 0x2 /* a user-memory read failed */
#define SN_REC_F_REDACTED 0x4 /* the other side of a sched event is another tenant's */

struct sn_rec_slot {
    __u32 seq;   /* sn_rec_seq(index); 0 while being written */
    __u16 type;  /* enum sn_rec_kind */
    __u8 nslots; /* 1..SN_REC_MAX_SLOTS */
    __u8 flags;  /* SN_REC_F_* */
    __u64 ts;    /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
    __u32 tid;
    __u32 pid;  /* tgid */
    __u64 a[5]; /* payload (enum sn_rec_kind) */
};

struct sn_rec_cont {
    __u32 seq;  /* sn_rec_seq(its own index) */
    __u16 type; /* SN_RK_CONT */
    __u8 part;  /* 1..nslots-1: its place in the record */
    __u8 flags;
    __u8 b[SN_REC_CONT_LEN];
};

/* SYS_ENTRY's continuations: b[0..15] = args 4 and 5 (u64 each, LE) when SN_REC_E_ARGS45; then
 * with SN_REC_E_STR two slots of text, each up to 55 bytes and a NUL (bpf_probe_read_user_str);
 * the second continues the first when the first holds 55 bytes. 110 bytes and more: cut at 110,
 * SN_REC_F_TRUNC.
 * SCHED_SWITCH's continuation: b[0..15] = prev_comm, b[16..31] = next_comm. */

/* A CPU's head, alone on its cache line (the heads are in the object's .bss, mmapped). */
struct sn_rec_head {
    __u64 head; /* slots reserved on the CPU since the session started */
    __u64 pad[7];
};

/* System call table entry (rodata, filled by user space before load from ctf/syscall_tab). */
struct sn_rec_sys {
    __u8 nargs;    /* 0..6: > 4 takes a continuation slot at entry */
    __u8 out_mask; /* bit k: arg k is an out argument, recorded at exit (at most 3) */
    __u8 str_arg;  /* 1 + the index of the (first) string argument: a path; 0: none */
    __u8 pad;
};

/* The sequence number of slot index i: (u32)(i + 1), except that 0 (which marks a slot being
 * written) is replaced by 1 when the u32 wraps. Stale content in a slot is nslots indices
 * older, never 2^32, so the two 1s cannot be confused. */
static inline __u32 sn_rec_seq(__u64 i)
{
    __u32 s = (__u32)i + 1;
    return s ? s : 1;
}

#endif
