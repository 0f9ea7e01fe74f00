/*
 * The metadata text of the recorder's traces (tsdl.h): lttng-modules' layout, printed from the
 * environment and the event classes.
 */
#include "ctf/tsdl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "core/grow.h"

struct sb {
    char *s;
    size_t len, cap;
    int err;
};

__attribute__((format(printf, 2, 3))) static void out(struct sb *b, const char *fmt, ...)
{
    if (b->err)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->s ? b->s + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->err = -EINVAL;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        char *g = sn_grow(b->s, &b->cap, b->len + (size_t)n + 1, 1);
        if (!g) {
            b->err = -ENOMEM;
            return;
        }
        b->s = g;
    }
}

/* A TSDL string literal's content: '"' and '\' escaped, control bytes dropped. */
static void out_str(struct sb *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            out(b, "\\%c", c);
        else if (c >= 0x20 && c != 0x7f)
            out(b, "%c", c);
    }
}

static void out_kv(struct sb *b, const char *k, const char *v)
{
    out(b, "\t%s = \"", k);
    out_str(b, v);
    out(b, "\";\n");
}

void sn_ctf_uuid_str(const uint8_t u[16], char o[37])
{
    snprintf(o, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
             u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
             u[14], u[15]);
}

static const char *const int_decl[] = {
    [SN_CTF_U8] = "integer { size = 8; align = 8; signed = 0; encoding = none; base = 10; }",
    [SN_CTF_I32] = "integer { size = 32; align = 8; signed = 1; encoding = none; base = 10; }",
    [SN_CTF_U32] = "integer { size = 32; align = 8; signed = 0; encoding = none; base = 10; }",
    [SN_CTF_I64] = "integer { size = 64; align = 8; signed = 1; encoding = none; base = 10; }",
    [SN_CTF_U64] = "integer { size = 64; align = 8; signed = 0; encoding = none; base = 10; }",
    [SN_CTF_X64] = "integer { size = 64; align = 8; signed = 0; encoding = none; base = 16; }",
    [SN_CTF_COMM] = "integer { size = 8; align = 8; signed = 0; encoding = UTF8; base = 10; }",
    [SN_CTF_ARGS6] = "integer { size = 64; align = 8; signed = 0; encoding = none; base = 10; }",
    [SN_CTF_SEQ_I32] = "integer { size = 32; align = 8; signed = 1; encoding = none; base = 10; }",
    [SN_CTF_U16] = "integer { size = 16; align = 8; signed = 0; encoding = none; base = 10; }",
    [SN_CTF_X8] = "integer { size = 8; align = 8; signed = 0; encoding = none; base = 16; }",
    [SN_CTF_ADDR16] = "integer { size = 8; align = 8; signed = 0; encoding = none; base = 16; }",
};

static void out_event(struct sb *b, const struct sn_ctf_class *c)
{
    out(b, "event {\n\tname = \"%s\";\n\tid = %u;\n\tstream_id = 0;\n\tfields := struct {\n",
        c->name, c->id);
    for (int f = 0; f < c->nfields; f++) {
        const struct sn_ctf_field *fd = &c->fields[f];
        switch (fd->kind) {
        case SN_CTF_STRING:
            out(b, "\t\tstring { encoding = UTF8; } _%s;\n", fd->name);
            break;
        case SN_CTF_COMM:
        case SN_CTF_ADDR16:
            out(b, "\t\t%s _%s[16];\n", int_decl[fd->kind], fd->name);
            break;
        case SN_CTF_ARGS6:
            out(b, "\t\t%s _%s[6];\n", int_decl[fd->kind], fd->name);
            break;
        case SN_CTF_SEQ_I32:
            out(b, "\t\t%s _%s[ __%s_length ];\n", int_decl[fd->kind], fd->name, fd->name);
            break;
        default:
            out(b, "\t\t%s _%s;\n", int_decl[fd->kind], fd->name);
            break;
        }
    }
    out(b, "\t};\n};\n\n");
}

static const char head[] =
    "/* CTF 1.8 */\n\n"
    "typealias integer { size = 8; align = 8; signed = false; } := uint8_t;\n"
    "typealias integer { size = 16; align = 8; signed = false; } := uint16_t;\n"
    "typealias integer { size = 32; align = 8; signed = false; } := uint32_t;\n"
    "typealias integer { size = 64; align = 8; signed = false; } := uint64_t;\n"
    "typealias integer { size = 64; align = 8; signed = false; } := unsigned long;\n"
    "typealias integer { size = 5; align = 1; signed = false; } := uint5_t;\n"
    "typealias integer { size = 27; align = 1; signed = false; } := uint27_t;\n\n";

static const char stream_part[] =
    "typealias integer {\n\tsize = 27; align = 1; signed = false;\n"
    "\tmap = clock.monotonic.value;\n} := uint27_clock_monotonic_t;\n\n"
    "typealias integer {\n\tsize = 32; align = 8; signed = false;\n"
    "\tmap = clock.monotonic.value;\n} := uint32_clock_monotonic_t;\n\n"
    "typealias integer {\n\tsize = 64; align = 8; signed = false;\n"
    "\tmap = clock.monotonic.value;\n} := uint64_clock_monotonic_t;\n\n"
    "struct packet_context {\n"
    "\tuint64_clock_monotonic_t timestamp_begin;\n"
    "\tuint64_clock_monotonic_t timestamp_end;\n"
    "\tuint64_t content_size;\n"
    "\tuint64_t packet_size;\n"
    "\tuint64_t packet_seq_num;\n"
    "\tunsigned long events_discarded;\n"
    "\tuint32_t cpu_id;\n"
    "};\n\n"
    "struct event_header_compact {\n"
    "\tenum : uint5_t { compact = 0 ... 30, extended = 31 } id;\n"
    "\tvariant <id> {\n"
    "\t\tstruct {\n\t\t\tuint27_clock_monotonic_t timestamp;\n\t\t} compact;\n"
    "\t\tstruct {\n\t\t\tuint32_t id;\n\t\t\tuint64_clock_monotonic_t timestamp;\n"
    "\t\t} extended;\n"
    "\t} v;\n"
    "} align(8);\n\n"
    "struct event_header_large {\n"
    "\tenum : uint16_t { compact = 0 ... 65534, extended = 65535 } id;\n"
    "\tvariant <id> {\n"
    "\t\tstruct {\n\t\t\tuint32_clock_monotonic_t timestamp;\n\t\t} compact;\n"
    "\t\tstruct {\n\t\t\tuint32_t id;\n\t\t\tuint64_clock_monotonic_t timestamp;\n"
    "\t\t} extended;\n"
    "\t} v;\n"
    "} align(8);\n\n"
    "stream {\n"
    "\tid = 0;\n"
    "\tevent.header := struct event_header_large;\n"
    "\tpacket.context := struct packet_context;\n"
    "\tevent.context := struct {\n"
    "\t\tinteger { size = 32; align = 8; signed = 1; encoding = none; base = 10; } _pid;\n"
    "\t\tinteger { size = 32; align = 8; signed = 1; encoding = none; base = 10; } _tid;\n"
    "\t};\n"
    "};\n\n";

char *sn_ctf_tsdl(const struct sn_ctf_env *env, const struct sn_ctf_classes *cls, size_t *len)
{
    struct sb b = {0};
    char uuid[37];
    sn_ctf_uuid_str(env->uuid, uuid);
    out(&b, "%s", head);
    out(&b,
        "trace {\n\tmajor = 1;\n\tminor = 8;\n\tuuid = \"%s\";\n\tbyte_order = le;\n"
        "\tpacket.header := struct {\n\t\tuint32_t magic;\n\t\tuint8_t  uuid[16];\n"
        "\t\tuint32_t stream_id;\n\t\tuint64_t stream_instance_id;\n\t};\n};\n\n",
        uuid);
    out(&b, "env {\n");
    out_kv(&b, "hostname", env->hostname);
    out_kv(&b, "domain", "kernel");
    out_kv(&b, "sysname", "Linux");
    out_kv(&b, "kernel_release", env->kernel_release);
    out_kv(&b, "kernel_version", env->kernel_version);
    if (env->tracer_sonde) {
        unsigned maj = 0, min = 0, pat = 0;
        sscanf(SN_VERSION, "%u.%u.%u", &maj, &min, &pat);
        out_kv(&b, "tracer_name", "sonde");
        out(&b, "\ttracer_major = %u;\n\ttracer_minor = %u;\n\ttracer_patchlevel = %u;\n", maj, min,
            pat);
    } else {
        out_kv(&b, "tracer_name", "lttng-modules");
        out(&b, "\ttracer_major = 2;\n\ttracer_minor = 13;\n\ttracer_patchlevel = 0;\n");
    }
    out_kv(&b, "trace_buffering_scheme", "global");
    out_kv(&b, "trace_name", env->trace_name);
    out_kv(&b, "trace_creation_datetime", env->creation);
    out_kv(&b, "sonde_version", SN_VERSION);
    out_kv(&b, "sonde_session", env->session);
    out(&b, "};\n\n");
    out(&b, "clock {\n\tname = \"monotonic\";\n\tuuid = \"");
    out_str(&b, env->boot_id);
    out(&b,
        "\";\n\tdescription = \"Monotonic Clock\";\n"
        "\tfreq = 1000000000; /* Frequency, in Hz */\n"
        "\t/* clock value offset from Epoch is: offset * (1/freq) */\n"
        "\toffset = %lld;\n};\n\n",
        (long long)env->clock_offset_ns);
    out(&b, "%s", stream_part);
    for (size_t i = 0; i < cls->n; i++)
        out_event(&b, &cls->c[i]);
    if (b.err) {
        free(b.s);
        return NULL;
    }
    *len = b.len;
    return b.s;
}

static void copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

int sn_ctf_env_host(struct sn_ctf_env *env, const char *trace_name, const char *session)
{
    memset(env, 0, sizeof(*env));
    struct utsname u;
    if (uname(&u) < 0)
        return -errno;
    copy(env->hostname, sizeof(env->hostname), u.nodename);
    copy(env->kernel_release, sizeof(env->kernel_release), u.release);
    copy(env->kernel_version, sizeof(env->kernel_version), u.version);
    copy(env->trace_name, sizeof(env->trace_name), trace_name);
    copy(env->session, sizeof(env->session), session);

    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, env->boot_id, 36);
    int err = errno;
    close(fd);
    if (n != 36)
        return n < 0 ? -err : -EIO;
    env->boot_id[36] = '\0';

    if (getrandom(env->uuid, sizeof(env->uuid), 0) != (ssize_t)sizeof(env->uuid))
        return -EIO;
    env->uuid[6] = (uint8_t)((env->uuid[6] & 0x0f) | 0x40); /* version 4 */
    env->uuid[8] = (uint8_t)((env->uuid[8] & 0x3f) | 0x80); /* RFC 4122 variant */

    /* the offset: REALTIME - MONOTONIC, from the closest of three reads around REALTIME */
    int64_t best = INT64_MAX;
    for (int i = 0; i < 3; i++) {
        struct timespec m0, r, m1;
        clock_gettime(CLOCK_MONOTONIC, &m0);
        clock_gettime(CLOCK_REALTIME, &r);
        clock_gettime(CLOCK_MONOTONIC, &m1);
        int64_t a = m0.tv_sec * 1000000000LL + m0.tv_nsec;
        int64_t z = m1.tv_sec * 1000000000LL + m1.tv_nsec;
        if (z - a < best) {
            best = z - a;
            env->clock_offset_ns = (r.tv_sec * 1000000000LL + r.tv_nsec) - (a + (z - a) / 2);
        }
    }
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(env->creation, sizeof(env->creation), "%Y%m%dT%H%M%S+0000", &tm);
    return 0;
}
