/*
 * The metadata of the recorder's CTF traces: TSDL text beginning with the CTF 1.8 comment, in
 * the shape lttng-modules 2.13 prints for a kernel session (docs/recorder.md, "The trace
 * layout"): integer typealiases, the trace block (uuid, little-endian, packet header), env
 * (LTTng's keys plus sonde_*), the "monotonic" clock whose uuid is the boot id and whose offset
 * is CLOCK_REALTIME - CLOCK_MONOTONIC, the packet context, the compact and large event headers,
 * one stream class with the pid/tid context, then one event block per class (event_class.h).
 *
 * tracer_name is "lttng-modules" 2.13.0 by default: babeltrace2, Trace Compass and
 * lttng-analyses pick their kernel-trace handling from it. That is a compatibility claim, not
 * provenance; tracer_sonde writes "sonde" and Sonde's version instead, at the cost of that
 * tooling (lttng-analyses refuses the trace, Trace Compass shows a generic CTF trace).
 */
#ifndef SN_CTF_TSDL_H
#define SN_CTF_TSDL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctf/event_class.h"

struct sn_ctf_env {
    char hostname[65];       /* uname nodename */
    char kernel_release[65]; /* uname -r */
    char kernel_version[65]; /* uname -v */
    char trace_name[64];     /* the snapshot's name */
    char session[64];        /* the recording session's name: sonde_session */
    char creation[32];       /* trace_creation_datetime, "20261207T162154+0000" */
    bool tracer_sonde;       /* tracer_name "sonde" instead of "lttng-modules" */
    uint8_t uuid[16];        /* the trace's uuid: random per trace */
    char boot_id[37];        /* the clock's uuid: /proc/sys/kernel/random/boot_id */
    int64_t clock_offset_ns; /* CLOCK_REALTIME - CLOCK_MONOTONIC, ns */
};

/* Fills env from this host: uname, the boot id, a random uuid, the clock offset measured now,
 * the creation time now (UTC); trace_name and session from the arguments (cut to fit). Returns
 * 0 or -errno (the boot id or random bytes unreadable). */
int sn_ctf_env_host(struct sn_ctf_env *env, const char *trace_name, const char *session);

/* The metadata text for env and the classes: malloc'd, NUL-terminated, its length in *len.
 * NULL when memory is short. */
char *sn_ctf_tsdl(const struct sn_ctf_env *env, const struct sn_ctf_classes *cls, size_t *len);

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" of uuid into out[37]. */
void sn_ctf_uuid_str(const uint8_t uuid[16], char out[37]);

#endif
