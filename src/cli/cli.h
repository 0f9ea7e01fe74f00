/*
 * The `sonde` subcommands: each is a function taking its own argv (argv[0] is the command's
 * name) and returning the process exit code. main.c dispatches to them.
 *
 * Exit codes, the same for every command (documented in `sonde --help`):
 *   0  success
 *   1  the command failed at run time (I/O error, out of memory, server error)
 *   2  usage error: unknown option, bad argument, malformed input
 */
#ifndef SN_CLI_CLI_H
#define SN_CLI_CLI_H

#define SN_EXIT_OK      0
#define SN_EXIT_FAILURE 1
#define SN_EXIT_USAGE   2

int sn_cmd_hist(int argc, char **argv);
int sn_cmd_agent(int argc, char **argv);
int sn_cmd_ctl(int argc, char **argv);
int sn_cmd_serve(int argc, char **argv);
/* clients of the CA API of `sonde serve` (cmd_ca.c, cmd_ca_value.c) */
int sn_cmd_describe(int argc, char **argv);
int sn_cmd_list(int argc, char **argv);
int sn_cmd_get(int argc, char **argv);
int sn_cmd_delete(int argc, char **argv);
int sn_cmd_clone(int argc, char **argv);
int sn_cmd_create(int argc, char **argv);
int sn_cmd_raw(int argc, char **argv);
int sn_cmd_heatmap(int argc, char **argv);
int sn_cmd_details(int argc, char **argv);
int sn_cmd_percentile(int argc, char **argv);
int sn_cmd_top(int argc, char **argv); /* cmd_top.c */
/* a store's history out as JSON lines, and frames for past seconds in (cmd_export.c) */
int sn_cmd_export(int argc, char **argv);
int sn_cmd_import(int argc, char **argv);
int sn_cmd_traces(int argc, char **argv); /* cmd_traces.c: dprof's questions */
int sn_cmd_record(int argc, char **argv); /* cmd_record.c: the flight recorder */
/* cmd_record_trigger.c: the flight recorder's triggers (`sonde record trigger`) */
int sn_cmd_record_trigger(int argc, char **argv);
int sn_cmd_trace(int argc, char **argv); /* cmd_trace.c: a live session's events */
/* cmd_top_trace.c: sonde top --trace DIR / --live NAME (sonde top hands those over) */
int sn_cmd_top_trace(int argc, char **argv);

/* listen_addr.c: is s "HOST:PORT", "[V6]:PORT" or ":PORT" with a numeric address or localhost
 * and a port 0-65535 (what the HTTP server accepts)? Else says why in why. */
#include <stdbool.h>
#include <stddef.h>
bool sn_cli_listen_ok(const char *s, char *why, size_t whylen);
/* listen_addr.c: `sonde serve --live-listen [ADDR:]PORT`: an IPv4 address (default 127.0.0.1,
 * "localhost" is it) into addr and the port. Returns 0, or -1 with the reason in why. */
#include <stdint.h>
int sn_cli_live_addr(const char *s, char *addr, size_t addrlen, uint16_t *port, char *why,
                     size_t whylen);

#endif
