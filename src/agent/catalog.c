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
#include "agent/cgroup.h"
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

/* A cgroup v2 path ("/system.slice/nginx.service") to its id (agent/cgroup.h). */
static bool parse_cgroup(const char *s, int64_t *out)
{
    uint64_t id;
    if (!sn_cgroup_id(s, &id))
        return false;
    *out = (int64_t)id;
    return true;
}

/* Linux's REQ_OP_* numbers (include/linux/blk_types.h) */
static const char *const block_ops[] = {
    [0] = "read",    [1] = "write",        [2] = "flush",
    [3] = "discard", [5] = "secure_erase", [9] = "write_zeroes",
};

static const char *const fs_ops[] = {
    [SN_FS_READ] = "read",   [SN_FS_WRITE] = "write",     [SN_FS_OPEN] = "open",
    [SN_FS_CLOSE] = "close", [SN_FS_GETATTR] = "getattr", [SN_FS_FSYNC] = "fsync",
    [SN_FS_SEEK] = "seek",   [SN_FS_READDIR] = "readdir", [SN_FS_IOCTL] = "ioctl",
};
static const char *const leave_reasons[] = {
    [SN_LEAVE_PREEMPTED] = "preempted", [SN_LEAVE_SLEEPING] = "sleeping",
    [SN_LEAVE_BLOCKED] = "blocked",     [SN_LEAVE_STOPPED] = "stopped",
    [SN_LEAVE_EXITED] = "exited",       [SN_LEAVE_OTHER] = "other",
};
static const char *const cpumodes[] = {[SN_CPUMODE_USER] = "user", [SN_CPUMODE_KERNEL] = "kernel"};
static const char *const directions[] = {[SN_DIR_IN] = "in", [SN_DIR_OUT] = "out"};

#define NAMES(a) a, sizeof(a) / sizeof(a[0])
static const struct {
    const char *const *names;
    size_t n;
} enums[] = {
    [SN_RENDER_OPTYPE] = {NAMES(block_ops)},    [SN_RENDER_FSOP] = {NAMES(fs_ops)},
    [SN_RENDER_LEAVE] = {NAMES(leave_reasons)}, [SN_RENDER_CPUMODE] = {NAMES(cpumodes)},
    [SN_RENDER_DIR] = {NAMES(directions)},
};

const char *sn_enum_name(enum sn_render r, int64_t v)
{
    if ((size_t)r >= sizeof(enums) / sizeof(enums[0]) || !enums[r].names || v < 0 ||
        (uint64_t)v >= enums[r].n)
        return NULL;
    return enums[r].names[v];
}

static bool parse_enum(enum sn_render r, const char *s, int64_t *out)
{
    for (size_t i = 0; i < enums[r].n; i++)
        if (enums[r].names[i] && strcmp(enums[r].names[i], s) == 0) {
            *out = (int64_t)i;
            return true;
        }
    return false;
}

static bool parse_optype(const char *s, int64_t *out)
{
    return parse_enum(SN_RENDER_OPTYPE, s, out);
}
static bool parse_fsop(const char *s, int64_t *out)
{
    return parse_enum(SN_RENDER_FSOP, s, out);
}
static bool parse_leave(const char *s, int64_t *out)
{
    return parse_enum(SN_RENDER_LEAVE, s, out);
}
static bool parse_cpumode(const char *s, int64_t *out)
{
    return parse_enum(SN_RENDER_CPUMODE, s, out);
}
static bool parse_dir(const char *s, int64_t *out)
{
    return parse_enum(SN_RENDER_DIR, s, out);
}

uint64_t sn_text_hash(const char *s)
{
    uint64_t h = 14695981039346656037ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

uint64_t sn_psargs_hash(const char *s)
{
    uint64_t h = 14695981039346656037ULL;
    size_t n = strnlen(s, SN_PSARGS_LEN - 1);

    while (n > 0 && s[n - 1] == ' ')
        n--;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static bool parse_psargs(const char *s, int64_t *out)
{
    *out = (int64_t)sn_psargs_hash(s);
    return true;
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
    {                                                                                              \
        {"container", SN_FIELD_CGROUP, SN_SC_CONTAINER, parse_cgroup, NULL},                       \
            "container (cgroup v2 path)", "string", SN_RENDER_CGROUP                               \
    }
#define F_PID      DISCRETE("pid", SN_SC_PID, parse_int, "process identifier", SN_RENDER_INT)
#define F_EXECNAME DISCRETE("execname", SN_SC_EXECNAME, NULL, "application name", SN_RENDER_STR)
#define F_PPID     DISCRETE("ppid", SN_SC_PPID, parse_int, "parent process identifier", SN_RENDER_INT)
#define F_PEXECNAME                                                                                \
    DISCRETE("pexecname", SN_SC_PEXECNAME, NULL, "parent application name", SN_RENDER_STR)
#define F_PSARGS                                                                                   \
    DISCRETE("psargs", SN_SC_PSARGS, parse_psargs, "process arguments", SN_RENDER_PSARGS)
#define F_LATENCY   NUMERIC("latency", SN_SC_LATENCY, "latency", "time")
#define F_SUBSECOND NUMERIC("subsecond", SN_SC_SUBSECOND, "subsecond offset", "subsecond")
#define F_RADDR                                                                                    \
    {                                                                                              \
        {"raddr", SN_FIELD_ADDR, SN_SC_TEXT, NULL, NULL}, "remote IP address", "string",           \
            SN_RENDER_ADDR                                                                         \
    }
#define F_RPORT DISCRETE("rport", SN_SC_RPORT, parse_int, "remote TCP port", SN_RENDER_INT)
#define F_LPORT DISCRETE("lport", SN_SC_LPORT, parse_int, "local TCP port", SN_RENDER_INT)
#define F_NIC   DISCRETE("nic", SN_SC_DEVICE, NULL, "NIC name", SN_RENDER_STR)
#define F_DIRECTION                                                                                \
    DISCRETE("direction", SN_SC_OPTYPE, parse_dir, "direction (in or out)", SN_RENDER_DIR)

static const struct sn_catalog_field syscall_fields[] = {
    F_HOSTNAME,
    F_CONTAINER,
    F_PID,
    F_EXECNAME,
    F_PSARGS,
    F_PPID,
    F_PEXECNAME,
    DISCRETE("syscall", SN_SC_SYSCALL, parse_syscall, "system call", SN_RENDER_SYSCALL),
    DISCRETE("errno", SN_SC_ERRNO, parse_errno, "error code", SN_RENDER_ERRNO),
    F_SUBSECOND,
    F_LATENCY,
    NUMERIC("cputime", SN_SC_CPUTIME, "CPU time", "time"),
};

static const struct sn_catalog_field exec_fields[] = {
    F_HOSTNAME, F_CONTAINER, F_EXECNAME, F_SUBSECOND, F_PSARGS, F_PPID, F_PEXECNAME, F_PID,
};

static const struct sn_catalog_field fork_fields[] = {
    F_HOSTNAME, F_CONTAINER, F_EXECNAME, F_SUBSECOND, F_PSARGS, F_PPID, F_PID,
};

static const struct sn_catalog_field exit_fields[] = {
    F_HOSTNAME,  F_CONTAINER, F_EXECNAME,
    F_SUBSECOND, F_PSARGS,    F_PPID,
    F_PEXECNAME, F_PID,       NUMERIC("walltime", SN_SC_WALLTIME, "wall time", "time"),
};

static const struct sn_catalog_field disk_fields[] = {
    F_HOSTNAME,
    DISCRETE("disk", SN_SC_DEVICE, NULL, "device name", SN_RENDER_STR),
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

static const struct sn_catalog_field fs_fields[] = {
    F_HOSTNAME,
    F_CONTAINER,
    F_PID,
    F_EXECNAME,
    F_PSARGS,
    F_PPID,
    F_PEXECNAME,
    DISCRETE("fstype", SN_SC_TEXT, NULL, "file system type", SN_RENDER_STR),
    DISCRETE("optype", SN_SC_OPTYPE, parse_fsop, "operation type", SN_RENDER_FSOP),
    F_SUBSECOND,
    F_LATENCY,
    NUMERIC("size", SN_SC_SIZE, "size", "size"),
    NUMERIC("offset", SN_SC_OFFSET, "offset", "size"),
};

static const struct sn_catalog_field accept_fields[] = {
    F_HOSTNAME, F_CONTAINER, F_RADDR, F_RPORT, F_LPORT, F_SUBSECOND, F_LATENCY,
};

static const struct sn_catalog_field connect_fields[] = {
    F_HOSTNAME,  F_CONTAINER, F_PID,   F_EXECNAME, F_PSARGS,    F_PPID,
    F_PEXECNAME, F_RADDR,     F_RPORT, F_LPORT,    F_SUBSECOND, F_LATENCY,
};

static const struct sn_catalog_field retrans_fields[] = {
    F_HOSTNAME, F_CONTAINER, F_RADDR, F_RPORT, F_LPORT,
};

static const struct sn_catalog_field texec_fields[] = {
    F_HOSTNAME,
    F_CONTAINER,
    F_PID,
    F_EXECNAME,
    F_PSARGS,
    F_PPID,
    F_PEXECNAME,
    DISCRETE("leavereason", SN_SC_OPTYPE, parse_leave, "reason leaving CPU", SN_RENDER_LEAVE),
    F_SUBSECOND,
    NUMERIC("runtime", SN_SC_LATENCY, "time on CPU", "time"),
};

static const struct sn_catalog_field tsample_fields[] = {
    F_HOSTNAME, F_CONTAINER, F_PID, F_EXECNAME, F_PSARGS, F_PPID, F_PEXECNAME, F_SUBSECOND,
};

static const struct sn_catalog_field pg_fields[] = {
    F_HOSTNAME,  F_CONTAINER,
    F_PID,       F_EXECNAME,
    F_PSARGS,    DISCRETE("querysubstr", SN_SC_TEXT, NULL, "query (first 15 bytes)", SN_RENDER_STR),
    F_SUBSECOND, F_LATENCY,
};

/* path, provider and probe say which probes to attach (agent/inst.c): the predicate must fix
 * each with eq, and they fold to true once attached. */
static const struct sn_catalog_field usdt_fields[] = {
    F_HOSTNAME,
    F_CONTAINER,
    F_PID,
    F_EXECNAME,
    F_PSARGS,
    DISCRETE("path", SN_NO_FIELD, NULL, "binary or library", SN_RENDER_HOST),
    DISCRETE("provider", SN_NO_FIELD, NULL, "USDT provider", SN_RENDER_HOST),
    DISCRETE("probe", SN_NO_FIELD, NULL, "USDT probe pair (NAME__start, NAME__done)",
             SN_RENDER_HOST),
    NUMERIC("arg0", SN_SC_ARG0, "first argument of the start probe", "number"),
    F_SUBSECOND,
    F_LATENCY,
};

static const struct sn_catalog_field usage_fields[] = {
    F_HOSTNAME,
    F_CONTAINER,
    DISCRETE("cpumode", SN_SC_OPTYPE, parse_cpumode, "CPU mode", SN_RENDER_CPUMODE),
};

static const struct sn_catalog_field mem_fields[] = {F_HOSTNAME, F_CONTAINER};

/* trace.spans: a span's texts compare by their hash (as psargs do), whatever their length */
static bool parse_text_hash(const char *s, int64_t *out)
{
    *out = (int64_t)sn_text_hash(s);
    return true;
}
static const struct sn_catalog_field span_fields[] = {
    DISCRETE("service", SN_SPAN_F_SERVICE, parse_text_hash, "service name", SN_RENDER_STR),
    DISCRETE("name", SN_SPAN_F_NAME, parse_text_hash, "span name (operation)", SN_RENDER_STR),
    DISCRETE("kind", SN_SPAN_F_KIND, parse_text_hash, "span kind (SERVER, CLIENT, ...)",
             SN_RENDER_STR),
    DISCRETE("status", SN_SPAN_F_STATUS, parse_text_hash, "status (UNSET, OK, ERROR)",
             SN_RENDER_STR),
    DISCRETE("host", SN_SPAN_F_HOST, parse_text_hash, "host that recorded the span", SN_RENDER_STR),
    F_LATENCY,
};

static const struct sn_catalog_field nic_fields[] = {F_HOSTNAME, F_NIC, F_DIRECTION};

#define FIELDS(a) a, sizeof(a) / sizeof(a[0])
/* PROGS: the metric's BPF programs by name (catalog.h); SAMPLED: none */
/* clang-format off */
#define PROGS(...) {__VA_ARGS__}
#define SAMPLED    {NULL}
/* clang-format on */
static const struct sn_metric_def metrics[] = {
    {"syscall", "System calls", "syscalls", "system calls", "syscalls", false, SN_METRIC_SYSCALLS,
     FIELDS(syscall_fields), PROGS("sys_enter", "sys_exit")},
    {"unix", "OS", "proc_execs", "processes executed", "processes", false, SN_METRIC_PROC_EXECS,
     FIELDS(exec_fields), PROGS("proc_exec")},
    {"unix", "OS", "proc_forks", "processes created", "processes", false, SN_METRIC_PROC_FORKS,
     FIELDS(fork_fields), PROGS("proc_fork")},
    {"unix", "OS", "proc_exits", "processes exited", "processes", false, SN_METRIC_PROC_EXITS,
     FIELDS(exit_fields), PROGS("proc_exit")},
    {"disk", "Disk", "physio_ops", "I/O operations", "operations", false, SN_METRIC_DISK_OPS,
     FIELDS(disk_fields), PROGS("block_issue", "block_complete")},
    {"cpu", "CPU", "runqueue", "runnable threads waiting", "threads", false, SN_METRIC_RUNQUEUE,
     FIELDS(runq_fields), PROGS("runq_wakeup", "runq_wakeup_new", "runq_switch")},
    {"fs", "Filesystem", "logical_ops", "logical filesystem operations", "operations", false,
     SN_METRIC_FS_OPS, FIELDS(fs_fields), PROGS("fs_enter", "fs_exit")},
    {"tcp", "TCP", "accepts", "connections accepted", "connections", false, SN_METRIC_TCP_ACCEPTS,
     FIELDS(accept_fields), PROGS("tcp_accept_state")},
    {"tcp", "TCP", "connects", "connections opened", "connections", false, SN_METRIC_TCP_CONNECTS,
     FIELDS(connect_fields), PROGS("tcp_connect_state")},
    {"tcp", "TCP", "retransmits", "segments retransmitted", "segments", false,
     SN_METRIC_TCP_RETRANS, FIELDS(retrans_fields), PROGS("tcp_retransmit")},
    {"cpu", "CPU", "thread_executions", "thread executions", "operations", false,
     SN_METRIC_THREAD_EXECS, FIELDS(texec_fields), PROGS("texec_switch")},
    {"cpu", "CPU", "thread_samples", "thread samples", "samples", false, SN_METRIC_THREAD_SAMPLES,
     FIELDS(tsample_fields), PROGS("thread_sample")},
    {"postgres", "Postgres", "queries", "queries", "queries", false, SN_METRIC_PG_QUERIES,
     FIELDS(pg_fields), PROGS("pg_query_start", "pg_query_done")},
    {"usdt", "USDT", "probes", "USDT probe pairs", "operations", false, SN_METRIC_USDT,
     FIELDS(usdt_fields), PROGS("usdt_start", "usdt_done")},
    {"cpu", "CPU", "usage", "aggregated CPU usage", "percent of 1 CPU", true, SN_METRIC_CPU_USAGE,
     FIELDS(usage_fields), SAMPLED},
    {"memory", "Memory", "rss", "resident set size", "bytes", true, SN_METRIC_MEM_RSS,
     FIELDS(mem_fields), SAMPLED},
    {"memory", "Memory", "pageins", "pages paged in", "pages", false, SN_METRIC_MEM_PAGEINS,
     FIELDS(mem_fields), SAMPLED},
    {"nic", "Network interface", "bytes", "bytes sent and received", "bytes", false,
     SN_METRIC_NIC_BYTES, FIELDS(nic_fields), SAMPLED},
    {"nic", "Network interface", "packets", "packets sent and received", "packets", false,
     SN_METRIC_NIC_PACKETS, FIELDS(nic_fields), SAMPLED},
    {"trace", "Traces", "spans", "spans received (OTLP, Zipkin)", "spans", false, SN_METRIC_SPANS,
     FIELDS(span_fields), SAMPLED},
};

const struct sn_metric_def *sn_catalog_metric(uint32_t id)
{
    for (size_t i = 0; i < sizeof(metrics) / sizeof(metrics[0]); i++)
        if (metrics[i].metric == id)
            return &metrics[i];
    return NULL;
}

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
