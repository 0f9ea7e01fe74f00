/*
 * System calls as the recorder's CTF events describe them: number -> name, and each argument's
 * name, CTF kind and direction (entry, exit or both), the way lttng-modules 2.13 names them
 * (`syscall_entry_read {fd, count}`, `syscall_exit_read {ret, buf}`). Both come from the
 * kernel's SYSCALL_DEFINE, so the names of the tracefs formats
 * (/sys/kernel/tracing/events/syscalls/sys_enter_<name>/format) are lttng's names.
 *
 * Kinds: int-like C types (int, unsigned int, umode_t, pid_t, ...) are 32 bits, pointers 64 bits
 * shown in hex, the rest 64 bits; `filename`, `pathname`, `oldname` and `newname` are strings.
 * Directions approximate lttng's generated in/out table: scalars and const pointers at entry,
 * other pointers at exit, and a short hand list of exceptions (read-in buffers like nanosleep's
 * rqtp, in-out ones like recvfrom's addr_len).
 *
 * The table is read from tracefs when it is there (every system call the kernel has), and falls
 * back to a built-in list for the rest: the ~30 system calls of lttng-analyses' IO_SYSCALLS plus
 * getppid, nanosleep and clock_nanosleep. Tests use the built-in list only (no tracefs needed).
 */
#ifndef SN_CTF_SYSCALL_TAB_H
#define SN_CTF_SYSCALL_TAB_H

#include <stddef.h>
#include <stdint.h>

#define SN_SC_NAME_MAX 32

enum sn_sc_dir { SN_SC_IN = 1, SN_SC_OUT = 2, SN_SC_INOUT = 3 };

struct sn_sc_arg {
    char name[SN_SC_NAME_MAX];
    uint8_t kind; /* enum sn_ctf_kind (field.h) */
    uint8_t dir;  /* enum sn_sc_dir */
};

struct sn_syscall {
    int64_t nr;                /* x86-64 number */
    char name[SN_SC_NAME_MAX]; /* lttng's name: "read", "sendfile64" */
    uint8_t nargs;             /* <= 6 */
    struct sn_sc_arg args[6];  /* in the call's order: args[i] is register argument i */
};

/* Sorted by nr, numbers unique. */
struct sn_syscall_tab {
    size_t n;
    struct sn_syscall *sc;
};

/* Fills t. tracefs: the tracing directory ("/sys/kernel/tracing"), or NULL for the built-in list
 * only; when it is given but unreadable, the built-in list alone is loaded (no error). A format
 * that does not parse is skipped. Returns 0, or -ENOMEM (t is then empty). */
int sn_syscall_tab_load(struct sn_syscall_tab *t, const char *tracefs);
void sn_syscall_tab_free(struct sn_syscall_tab *t);

/* The entry for nr, or NULL (written as syscall_entry_unknown / syscall_exit_unknown). */
const struct sn_syscall *sn_syscall_tab_find(const struct sn_syscall_tab *t, int64_t nr);

/* Parses a tracefs format file (text[len], not NUL-terminated) of the system call name:
 * the fields after __syscall_nr. Fills sc (nr included, from the name). Returns 0, -EINVAL when
 * text is not such a format, -ENOENT when name has no number on this architecture. */
int sn_syscall_parse_format(const char *name, const char *text, size_t len, struct sn_syscall *sc);

#endif
