/*
 * The metric catalog; see catalog.h. CA's field names, with Linux meanings: "container" (the
 * cgroup v2 path) plays CA's zonename; pid, ppid, syscall and errno are discrete (CA treats
 * identifiers as keys) although the kernel compares them as numbers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent/catalog.h"
#include "agent/names.h"

static bool parse_int(const char *s, int64_t *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < 0)
        return false;
    *out = v;
    return true;
}

static bool parse_syscall(const char *s, int64_t *out)
{
    int64_t n = sn_syscall_number(s);
    if (n < 0)
        return parse_int(s, out);
    *out = n;
    return true;
}

static bool parse_errno(const char *s, int64_t *out)
{
    int64_t n = strcmp(s, "0") == 0 ? 0 : sn_errno_number(s);
    if (n < 0)
        return false;
    *out = n;
    return true;
}

/* A cgroup v2 path ("/system.slice/nginx.service") to its id, the inode number of its
 * directory under /sys/fs/cgroup. */
static bool parse_cgroup(const char *s, int64_t *out)
{
    char path[4096];
    struct stat st;

    if (s[0] != '/' || strstr(s, "/../") || strlen(s) > 3000)
        return false;
    snprintf(path, sizeof(path), "/sys/fs/cgroup%s", s);
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return false;
    *out = (int64_t)st.st_ino;
    return true;
}

/* Linux's REQ_OP_* numbers (include/linux/blk_types.h) */
static const char *const block_ops[] = {
    [0] = "read",    [1] = "write",        [2] = "flush",
    [3] = "discard", [5] = "secure_erase", [9] = "write_zeroes",
};

const char *sn_block_op_name(int64_t op)
{
    if (op < 0 || op >= (int64_t)(sizeof(block_ops) / sizeof(block_ops[0])))
        return NULL;
    return block_ops[op];
}

static bool parse_optype(const char *s, int64_t *out)
{
    for (size_t i = 0; i < sizeof(block_ops) / sizeof(block_ops[0]); i++)
        if (block_ops[i] && strcmp(block_ops[i], s) == 0) {
            *out = (int64_t)i;
            return true;
        }
    return false;
}

#define DISCRETE(n, id, parse, label, render)                                                      \
    {                                                                                              \
        {n, SN_FIELD_DISCRETE, id, parse, NULL}, label, "string", render                           \
    }
#define NUMERIC(n, id, label, type)                                                                \
    {                                                                                              \
        {n, SN_FIELD_NUMERIC, id, NULL, NULL}, label, type, SN_RENDER_INT                          \
    }

/* The fields many metrics share, defined once. */
#define F_HOSTNAME DISCRETE("hostname", SN_NO_FIELD, NULL, "hostname", SN_RENDER_HOST)
#define F_CONTAINER                                                                                \
    DISCRETE("container", SN_SC_CONTAINER, parse_cgroup, "container (cgroup v2 path)",             \
             SN_RENDER_CGROUP)
#define F_PID      DISCRETE("pid", SN_SC_PID, parse_int, "process identifier", SN_RENDER_INT)
#define F_EXECNAME DISCRETE("execname", SN_SC_EXECNAME, NULL, "application name", SN_RENDER_STR)
#define F_PPID     DISCRETE("ppid", SN_SC_PPID, parse_int, "parent process identifier", SN_RENDER_INT)
#define F_PEXECNAME                                                                                \
    DISCRETE("pexecname", SN_SC_PEXECNAME, NULL, "parent application name", SN_RENDER_STR)
#define F_LATENCY NUMERIC("latency", SN_SC_LATENCY, "latency", "time")

static const struct sn_catalog_field syscall_fields[] = {
    F_HOSTNAME,
    F_CONTAINER,
    F_PID,
    F_EXECNAME,
    F_PPID,
    F_PEXECNAME,
    DISCRETE("syscall", SN_SC_SYSCALL, parse_syscall, "system call", SN_RENDER_SYSCALL),
    DISCRETE("errno", SN_SC_ERRNO, parse_errno, "error code", SN_RENDER_ERRNO),
    F_LATENCY,
};

static const struct sn_catalog_field exec_fields[] = {
    F_HOSTNAME, F_CONTAINER, F_EXECNAME, F_PID, F_PPID, F_PEXECNAME,
};

static const struct sn_catalog_field fork_fields[] = {
    F_HOSTNAME, F_CONTAINER, F_EXECNAME, F_PPID, F_PID,
};

static const struct sn_catalog_field exit_fields[] = {
    F_HOSTNAME,
    F_CONTAINER,
    F_EXECNAME,
    F_PID,
    F_PPID,
    F_PEXECNAME,
    NUMERIC("walltime", SN_SC_WALLTIME, "wall time", "time"),
};

static const struct sn_catalog_field disk_fields[] = {
    F_HOSTNAME,
    DISCRETE("disk", SN_SC_DISK, NULL, "device name", SN_RENDER_STR),
    DISCRETE("optype", SN_SC_OPTYPE, parse_optype, "operation type", SN_RENDER_OPTYPE),
    F_LATENCY,
    NUMERIC("size", SN_SC_SIZE, "size", "size"),
    NUMERIC("offset", SN_SC_OFFSET, "offset", "size"),
};

static const struct sn_catalog_field runq_fields[] = {
    F_HOSTNAME,
    F_CONTAINER,
    F_EXECNAME,
    F_PID,
    NUMERIC("waittime", SN_SC_LATENCY, "time waiting for a CPU", "time"),
};

static const struct sn_metric_def metrics[] = {
    {"syscall", "System calls", "syscalls", "system calls", "syscalls", false, SN_METRIC_SYSCALLS,
     syscall_fields, sizeof(syscall_fields) / sizeof(syscall_fields[0])},
    {"unix", "OS", "proc_execs", "processes executed", "processes", false, SN_METRIC_PROC_EXECS,
     exec_fields, sizeof(exec_fields) / sizeof(exec_fields[0])},
    {"unix", "OS", "proc_forks", "processes created", "processes", false, SN_METRIC_PROC_FORKS,
     fork_fields, sizeof(fork_fields) / sizeof(fork_fields[0])},
    {"unix", "OS", "proc_exits", "processes exited", "processes", false, SN_METRIC_PROC_EXITS,
     exit_fields, sizeof(exit_fields) / sizeof(exit_fields[0])},
    {"disk", "Disk", "physio_ops", "I/O operations", "operations", false, SN_METRIC_DISK_OPS,
     disk_fields, sizeof(disk_fields) / sizeof(disk_fields[0])},
    {"cpu", "CPU", "runqueue", "runnable threads waiting", "threads", false, SN_METRIC_RUNQUEUE,
     runq_fields, sizeof(runq_fields) / sizeof(runq_fields[0])},
};

const struct sn_metric_def *sn_catalog_find(const char *module, const char *stat)
{
    for (size_t i = 0; i < sizeof(metrics) / sizeof(metrics[0]); i++)
        if (strcmp(metrics[i].module, module) == 0 && strcmp(metrics[i].stat, stat) == 0)
            return &metrics[i];
    return NULL;
}

const struct sn_catalog_field *sn_catalog_field(const struct sn_metric_def *m, const char *name)
{
    for (size_t i = 0; i < m->nfields; i++)
        if (strcmp(m->fields[i].def.name, name) == 0)
            return &m->fields[i];
    return NULL;
}

const struct sn_metric_def *sn_catalog_all(size_t *n)
{
    *n = sizeof(metrics) / sizeof(metrics[0]);
    return metrics;
}
