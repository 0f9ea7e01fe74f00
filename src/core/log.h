/*
 * Logging for Sonde's binaries: one logfmt line per event on stderr,
 *   ts=2026-11-22T10:00:00.123Z lvl=warn sub=store msg="segment bad crc" path=...
 * so logs grep well and need no parser.
 *
 * Levels ERROR < WARN < INFO < DEBUG. The threshold comes from SN_LOG_LEVEL (error, warn, info,
 * debug; default info); SN_DEBUG=sub1,sub2 turns DEBUG on for the named subsystems only.
 * sn_log_on() is a cheap check to run before building expensive arguments.
 *
 * Only binaries log: library code (core, wire, store, render) returns error codes and lets its
 * caller decide what to say.
 */
#ifndef SN_CORE_LOG_H
#define SN_CORE_LOG_H

#include <stdbool.h>

enum sn_log_level { SN_LOG_ERROR = 0, SN_LOG_WARN, SN_LOG_INFO, SN_LOG_DEBUG };

/* Reads SN_LOG_LEVEL and SN_DEBUG. Call once at start-up; without it the level is INFO. */
void sn_log_init(void);

/* True when a message at lvl for subsystem sub would be written. */
bool sn_log_on(enum sn_log_level lvl, const char *sub);

/* Writes one line if sn_log_on(lvl, sub). fmt is the msg text. Thread-safe (one write(2)). */
void sn_log(enum sn_log_level lvl, const char *sub, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
