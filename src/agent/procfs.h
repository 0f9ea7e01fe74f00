/*
 * Parsers of the /proc and cgroup v2 text the sampled metrics read (agent/sampled.c), kept
 * apart from the file I/O so that each can be fuzzed (fuzz/fuzz_procfs.c) and tested on canned
 * text. They take a buffer and its length, need no NUL terminator and never read past len,
 * allocate nothing, and write their output only when they succeed.
 *
 * The kernel prints these files with fixed formats; the parsers accept exactly those and reject
 * the rest rather than guess: a number is plain decimal digits (no sign) below 2^64 and ends
 * at a space, a newline or the end of the buffer; fields are separated by spaces; lines end at '\n'
 * (the last one may lack it). A line cut short or a field that is missing, too large or not a
 * number fails the parse. NUL bytes are ordinary bytes: never part of a number, a key or an
 * interface name.
 *
 * Return values: 0 on success; -ENOENT when the key or line looked for is absent; -EINVAL when
 * it is there but malformed (or an argument is).
 */
#ifndef SN_AGENT_PROCFS_H
#define SN_AGENT_PROCFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- flat-keyed files: "key value\n" lines (cgroup v2 cpu.stat, cgroup.events, vmstat) ---- */

/* The value of the first line that starts with key and a space ("key 123\n"): after the key,
 * one or more spaces, the number, optional trailing spaces, then the end of the line. Keys
 * that only start with key ("key_x 1") do not match. key must be non-empty and hold no space
 * or newline (else -EINVAL). -EINVAL also when the first matching line's value is malformed
 * (later lines with the same key are not looked at). */
int sn_procfs_find_u64(const char *buf, size_t len, const char *key, uint64_t *out);

/* /proc/vmstat's "pgmajfault" (major faults since boot, all processes). */
int sn_procfs_vmstat_pgmajfault(const char *buf, size_t len, uint64_t *out);

/* A cgroup v2 cpu.stat (microseconds the cgroup's tasks ran, its subtree included). The kernel
 * always prints these three, whether or not the cpu controller is enabled; all are required. */
struct sn_procfs_cg_cpu {
    uint64_t usage_usec, user_usec, system_usec;
};
int sn_procfs_cg_cpu_stat(const char *buf, size_t len, struct sn_procfs_cg_cpu *out);

/* A cgroup v2 cgroup.events' "populated" key: *populated is whether its value is nonzero (the
 * kernel prints 0 or 1: whether the cgroup or a descendant has a live process). */
int sn_procfs_cg_populated(const char *buf, size_t len, bool *populated);

/* ---- /proc/stat ---------------------------------------------------------------------------- */

/* The aggregate "cpu" line of /proc/stat (the first line whose first word is exactly "cpu",
 * not "cpu0"), in clock ticks (sysconf(_SC_CLK_TCK)) summed over all CPUs. The seven fields
 * below are required; later ones (steal, guest, guest_nice) are ignored. */
struct sn_procfs_cpu {
    uint64_t user, nice, system, idle, iowait, irq, softirq;
};
int sn_procfs_stat_cpu(const char *buf, size_t len, struct sn_procfs_cpu *out);

/* ---- /proc/<pid>/stat ---------------------------------------------------------------------- */

/* The fields of /proc/<pid>/stat the sampler uses (proc(5) numbering). The fields are counted
 * from the LAST ')' in the buffer, since comm (field 2, in parentheses) may hold any bytes,
 * spaces, parentheses and newlines included. Fields 3..24 must all be present before the end
 * of that line; the ones not returned may hold anything but spaces and newlines (some are
 * negative, field 3 is a letter). Returns 0 or -EINVAL (there is no key to be absent). */
struct sn_procfs_pid_stat {
    uint64_t majflt;    /* field 12: major faults of the process, exited threads included */
    uint64_t starttime; /* field 22: clock ticks after boot at which the process started */
    uint64_t rss;       /* field 24: resident pages */
};
int sn_procfs_pid_stat(const char *buf, size_t len, struct sn_procfs_pid_stat *out);

/* ---- /proc/net/dev ------------------------------------------------------------------------- */

#define SN_PROCFS_IFNAMSIZ 16 /* IFNAMSIZ: at most 15 bytes and a NUL */

/* One interface of /proc/net/dev: "  name: rx_bytes rx_packets errs drop fifo frame compressed
 * multicast tx_bytes tx_packets ...". name is 1..15 bytes, none of them NUL, '/', ':' or
 * white space (as the kernel's dev_valid_name() allows), NUL padded to SN_PROCFS_IFNAMSIZ;
 * the leading spaces of the line are not part of it. At least the ten fields up to tx_packets
 * are required; the later ones are ignored. The first number may follow the colon directly
 * (the kernel pads it to 8 columns, wider ones touch). */
struct sn_procfs_netdev {
    char name[SN_PROCFS_IFNAMSIZ];
    uint64_t rx_bytes, rx_packets, tx_bytes, tx_packets;
};

/* Iterator over the interfaces; its fields are private but for skipped. */
struct sn_procfs_netdev_iter {
    const char *buf;
    size_t len, pos;
    size_t skipped; /* lines after the header that were not an interface line */
};

/* Starts an iteration over the text buf[0..len), which must outlive it. The first two lines
 * are the header and are skipped whatever they hold. */
void sn_procfs_netdev_begin(struct sn_procfs_netdev_iter *it, const char *buf, size_t len);

/* Fills *out with the next interface and returns 1, or returns 0 (and leaves *out alone) when
 * there are no more lines. A malformed line is skipped (and counted in it->skipped), the
 * interfaces after it are still returned: every line after the header is either returned or
 * counted. Empty lines count as malformed; the empty "line" after a final '\n' is not one. */
int sn_procfs_netdev_next(struct sn_procfs_netdev_iter *it, struct sn_procfs_netdev *out);

#endif
