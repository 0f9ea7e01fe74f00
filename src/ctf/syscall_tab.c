/*
 * The system call table of the CTF events (syscall_tab.h): tracefs formats when present, the
 * built-in list otherwise. The built-in list is written as the declarations a tracefs format
 * holds ("unsigned int fd; char * buf; size_t count"), so that one classifier turns both into
 * CTF kinds and directions.
 */
#include "ctf/syscall_tab.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/names.h"
#include "core/grow.h"
#include "ctf/field.h"

/* lttng-analyses' IO_SYSCALLS (open, close, dup, read, write, sync, splice families) present on
 * x86-64, and getppid, nanosleep, clock_nanosleep: the kernel's SYSCALL_DEFINE declarations. */
static const struct {
    const char *name;
    const char *decls;
} builtin[] = {
    {"read", "unsigned int fd; char * buf; size_t count"},
    {"write", "unsigned int fd; const char * buf; size_t count"},
    {"open", "const char * filename; int flags; umode_t mode"},
    {"close", "unsigned int fd"},
    {"pread64", "unsigned int fd; char * buf; size_t count; loff_t pos"},
    {"pwrite64", "unsigned int fd; const char * buf; size_t count; loff_t pos"},
    {"readv", "unsigned long fd; const struct iovec * vec; unsigned long vlen"},
    {"writev", "unsigned long fd; const struct iovec * vec; unsigned long vlen"},
    {"dup", "unsigned int fildes"},
    {"dup2", "unsigned int oldfd; unsigned int newfd"},
    {"nanosleep", "struct __kernel_timespec * rqtp; struct __kernel_timespec * rmtp"},
    {"getppid", ""},
    {"sendfile64", "int out_fd; int in_fd; loff_t * offset; size_t count"},
    {"socket", "int family; int type; int protocol"},
    {"sendto", "int fd; void * buff; size_t len; unsigned int flags; struct sockaddr * addr; "
               "int addr_len"},
    {"recvfrom", "int fd; void * ubuf; size_t size; unsigned int flags; struct sockaddr * addr; "
                 "int * addr_len"},
    {"sendmsg", "int fd; struct user_msghdr * msg; unsigned int flags"},
    {"recvmsg", "int fd; struct user_msghdr * msg; unsigned int flags"},
    {"fcntl", "unsigned int fd; unsigned int cmd; unsigned long arg"},
    {"fsync", "unsigned int fd"},
    {"fdatasync", "unsigned int fd"},
    {"openat", "int dfd; const char * filename; int flags; umode_t mode"},
    {"splice", "int fd_in; loff_t * off_in; int fd_out; loff_t * off_out; size_t len; "
               "unsigned int flags"},
    {"sync_file_range", "int fd; loff_t offset; loff_t nbytes; unsigned int flags"},
    {"dup3", "unsigned int oldfd; unsigned int newfd; int flags"},
    {"preadv", "unsigned long fd; const struct iovec * vec; unsigned long vlen; "
               "unsigned long pos_l; unsigned long pos_h"},
    {"pwritev", "unsigned long fd; const struct iovec * vec; unsigned long vlen; "
                "unsigned long pos_l; unsigned long pos_h"},
    {"recvmmsg", "int fd; struct mmsghdr * mmsg; unsigned int vlen; unsigned int flags; "
                 "struct __kernel_timespec * timeout"},
    {"sendmmsg", "int fd; struct mmsghdr * mmsg; unsigned int vlen; unsigned int flags"},
    {"sync", ""},
    {"clock_nanosleep", "const clockid_t which_clock; int flags; "
                        "const struct __kernel_timespec * rqtp; struct __kernel_timespec * rmtp"},
};

/* Pointers whose direction the const rule gets wrong (lttng's in/out table). */
static const struct {
    const char *sc, *arg;
    uint8_t dir;
} dir_fix[] = {
    {"nanosleep", "rqtp", SN_SC_IN},
    {"sendto", "buff", SN_SC_IN},
    {"sendto", "addr", SN_SC_IN},
    {"sendmsg", "msg", SN_SC_IN},
    {"sendmmsg", "mmsg", SN_SC_INOUT},
    {"recvmsg", "msg", SN_SC_INOUT},
    {"recvmmsg", "mmsg", SN_SC_INOUT},
    {"recvmmsg", "timeout", SN_SC_IN},
    {"recvfrom", "addr_len", SN_SC_INOUT},
    {"sendfile64", "offset", SN_SC_INOUT},
    {"splice", "off_in", SN_SC_INOUT},
    {"splice", "off_out", SN_SC_INOUT},
    {"accept", "upeer_addrlen", SN_SC_INOUT},
    {"accept4", "upeer_addrlen", SN_SC_INOUT},
    {"getsockname", "usockaddr_len", SN_SC_INOUT},
    {"getpeername", "usockaddr_len", SN_SC_INOUT},
    {"select", "inp", SN_SC_INOUT},
    {"select", "outp", SN_SC_INOUT},
    {"select", "exp", SN_SC_INOUT},
    {"select", "tvp", SN_SC_INOUT},
    {"poll", "ufds", SN_SC_INOUT},
    {"ppoll", "ufds", SN_SC_INOUT},
};

static const char *const str_args[] = {"filename", "pathname", "oldname", "newname"};

/* 32-bit C types; the unsigned ones among them. */
static const char *const int32_types[] = {
    "int",     "unsigned int", "unsigned",     "umode_t", "pid_t", "uid_t",
    "gid_t",   "clockid_t",    "key_serial_t", "qid_t",   "rwf_t", "mqd_t",
    "timer_t", "u32",          "__u32",        "s32",     "__s32"};
static const char *const unsigned_types[] = {"umode_t",
                                             "uid_t",
                                             "gid_t",
                                             "qid_t",
                                             "u32",
                                             "__u32",
                                             "size_t",
                                             "u64",
                                             "__u64",
                                             "aio_context_t",
                                             "cap_user_header_t"};

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}
#define IN_LIST(s, l) in_list((s), (l), sizeof(l) / sizeof((l)[0]))

/* Kind and direction of the argument `type name` of system call sc. */
static void classify(const char *sc, const char *type, struct sn_sc_arg *a)
{
    bool is_const = strncmp(type, "const ", 6) == 0;
    const char *base = is_const ? type + 6 : type;
    if (strchr(type, '*')) {
        a->kind = (strstr(type, "char") && IN_LIST(a->name, str_args)) ? SN_CTF_STRING : SN_CTF_X64;
        a->dir = is_const ? SN_SC_IN : SN_SC_OUT;
    } else {
        bool unsig = strncmp(base, "unsigned", 8) == 0 || IN_LIST(base, unsigned_types);
        if (IN_LIST(base, int32_types))
            a->kind = unsig ? SN_CTF_U32 : SN_CTF_I32;
        else
            a->kind = unsig ? SN_CTF_U64 : SN_CTF_I64;
        a->dir = SN_SC_IN;
    }
    for (size_t i = 0; i < sizeof(dir_fix) / sizeof(dir_fix[0]); i++)
        if (strcmp(dir_fix[i].sc, sc) == 0 && strcmp(dir_fix[i].arg, a->name) == 0)
            a->dir = dir_fix[i].dir;
}

/* One declaration "TYPE NAME" (s[n], spaces around allowed) into sc's next argument. */
static int add_decl(struct sn_syscall *sc, const char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    while (n > 0 && (*s == ' ' || *s == '\t'))
        s++, n--;
    size_t k = n; /* the name: the last run of identifier characters */
    while (k > 0 && (s[k - 1] == '_' || (s[k - 1] >= 'a' && s[k - 1] <= 'z') ||
                     (s[k - 1] >= 'A' && s[k - 1] <= 'Z') || (s[k - 1] >= '0' && s[k - 1] <= '9')))
        k--;
    size_t tlen = k;
    while (tlen > 0 && s[tlen - 1] == ' ')
        tlen--;
    if (k == n || tlen == 0 || n - k >= SN_SC_NAME_MAX || tlen >= 64 || sc->nargs >= 6)
        return -EINVAL;
    struct sn_sc_arg *a = &sc->args[sc->nargs++];
    memcpy(a->name, s + k, n - k);
    a->name[n - k] = '\0';
    char type[64];
    memcpy(type, s, tlen);
    type[tlen] = '\0';
    classify(sc->name, type, a);
    return 0;
}

static int set_name(struct sn_syscall *sc, const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= SN_SC_NAME_MAX)
        return -EINVAL;
    memset(sc, 0, sizeof(*sc));
    memcpy(sc->name, name, n + 1);
    sc->nr = sn_syscall_number(name);
    if (sc->nr < 0 && n > 2 && strcmp(name + n - 2, "64") == 0) { /* sendfile64: sendfile */
        char base[SN_SC_NAME_MAX];
        memcpy(base, name, n - 2);
        base[n - 2] = '\0';
        sc->nr = sn_syscall_number(base);
    }
    return sc->nr < 0 ? -ENOENT : 0;
}

int sn_syscall_parse_format(const char *name, const char *text, size_t len, struct sn_syscall *sc)
{
    int rc = set_name(sc, name);
    if (rc < 0)
        return rc;
    bool after_nr = false;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        const char *f = p;
        while (f < eol && (*f == ' ' || *f == '\t'))
            f++;
        if ((size_t)(eol - f) > 6 && memcmp(f, "field:", 6) == 0) {
            f += 6;
            const char *semi = memchr(f, ';', (size_t)(eol - f));
            if (!semi)
                return -EINVAL;
            size_t n = (size_t)(semi - f);
            if (!after_nr) {
                after_nr = n >= 12 && memcmp(semi - 12, "__syscall_nr", 12) == 0;
            } else if ((rc = add_decl(sc, f, n)) < 0) {
                return rc;
            }
        }
        p = eol + 1;
    }
    return after_nr ? 0 : -EINVAL;
}

static int parse_builtin(size_t i, struct sn_syscall *sc)
{
    int rc = set_name(sc, builtin[i].name);
    const char *s = builtin[i].decls;
    while (rc == 0 && *s) {
        const char *semi = strchr(s, ';');
        size_t n = semi ? (size_t)(semi - s) : strlen(s);
        rc = add_decl(sc, s, n);
        s += n + (semi ? 1 : 0);
    }
    return rc;
}

static int by_nr(const void *a, const void *b)
{
    const struct sn_syscall *x = a, *y = b;
    return (x->nr > y->nr) - (x->nr < y->nr);
}

static int push(struct sn_syscall_tab *t, size_t *cap, const struct sn_syscall *sc)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->sc[i].nr == sc->nr)
            return 0; /* tracefs first: its entry stays */
    struct sn_syscall *g = sn_grow(t->sc, cap, t->n + 1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    t->sc = g;
    t->sc[t->n++] = *sc;
    return 0;
}

static void load_tracefs(struct sn_syscall_tab *t, size_t *cap, const char *tracefs, int *rc)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/events/syscalls", tracefs);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *de;
    char buf[16384];
    while (*rc == 0 && (de = readdir(d))) {
        if (strncmp(de->d_name, "sys_enter_", 10) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/events/syscalls/%s/format", tracefs, de->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        size_t len = 0;
        ssize_t r;
        while (len < sizeof(buf) && (r = read(fd, buf + len, sizeof(buf) - len)) > 0)
            len += (size_t)r;
        close(fd);
        struct sn_syscall sc;
        if (sn_syscall_parse_format(de->d_name + 10, buf, len, &sc) == 0)
            *rc = push(t, cap, &sc);
    }
    closedir(d);
}

int sn_syscall_tab_load(struct sn_syscall_tab *t, const char *tracefs)
{
    t->n = 0;
    t->sc = NULL;
    size_t cap = 0;
    int rc = 0;
    if (tracefs)
        load_tracefs(t, &cap, tracefs, &rc);
    for (size_t i = 0; rc == 0 && i < sizeof(builtin) / sizeof(builtin[0]); i++) {
        struct sn_syscall sc;
        if (parse_builtin(i, &sc) == 0)
            rc = push(t, &cap, &sc);
    }
    if (rc < 0) {
        sn_syscall_tab_free(t);
        return rc;
    }
    qsort(t->sc, t->n, sizeof(*t->sc), by_nr);
    return 0;
}

void sn_syscall_tab_free(struct sn_syscall_tab *t)
{
    free(t->sc);
    t->sc = NULL;
    t->n = 0;
}

const struct sn_syscall *sn_syscall_tab_find(const struct sn_syscall_tab *t, int64_t nr)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->sc[mid].nr < nr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < t->n && t->sc[lo].nr == nr ? &t->sc[lo] : NULL;
}
