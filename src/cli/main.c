/*
 * sonde: the one binary. Dispatches to a subcommand (cli.h); each has its own --help.
 */
#include <stdio.h>
#include <string.h>

#include "cli/ca_conn.h"
#include "cli/cli.h"
#include "core/log.h"

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

static int cmd_version(int argc, char **argv);

static const struct command commands[] = {
    {"agent", sn_cmd_agent, "instrument this host with BPF and report frames each second"},
    {"hist", sn_cmd_hist, "build, inspect, decode and merge log-linear histograms"},
    {"serve", sn_cmd_serve, "run the agent, aggregator and Cloud Analytics API in one process"},
    {"describe", sn_cmd_describe, "list the metrics and fields a server offers"},
    {"list", sn_cmd_list, "list a server's instrumentations"},
    {"get", sn_cmd_get, "show one instrumentation"},
    {"create", sn_cmd_create, "create an instrumentation"},
    {"clone", sn_cmd_clone, "create an instrumentation from another one"},
    {"delete", sn_cmd_delete, "delete an instrumentation"},
    {"raw", sn_cmd_raw, "print an instrumentation's raw values"},
    {"heatmap", sn_cmd_heatmap, "draw an instrumentation's heatmap (PNG)"},
    {"details", sn_cmd_details, "show what one pixel of a heatmap holds"},
    {"percentile", sn_cmd_percentile, "print percentiles of an instrumentation"},
    {"top", sn_cmd_top, "watch an instrumentation's keys, counts and percentiles live"},
    {"export", sn_cmd_export, "write an instrumentation's stored history as JSON lines"},
    {"import", sn_cmd_import, "send frames of past seconds (JSON lines) to a server's store"},
    {"traces", sn_cmd_traces,
     "the longest and shortest traces, a trace's spans ranked, operations"},
    {"record", sn_cmd_record, "the flight recorder: sessions, snapshots and triggers"},
    {"trace", sn_cmd_trace, "print a live recording session's events as they come"},
    {"ctl", sn_cmd_ctl, "a fleet's status and a tail of its bus (NATS)"},
    {"version", cmd_version, "print the version"},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
    fprintf(f,
            "sonde %s: real-time latency analytics for fleets of Linux hosts\n\n"
            "usage: sonde <command> [options]\n       sonde help <command>\n\ncommands:\n",
            SN_VERSION);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].summary);
    fputs("\nRun 'sonde <command> --help' for the options of a command.\n\n", f);
    fputs(sn_cli_exit_codes, f);
}

static int cmd_version(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: sonde version\n\nPrints the version of this binary.\n");
        return SN_EXIT_OK;
    }
    printf("sonde %s\n", SN_VERSION);
    return SN_EXIT_OK;
}

static const struct command *lookup(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    const struct command *cmd;

    sn_log_init();
    if (argc < 2) {
        usage(stderr);
        return SN_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return SN_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0)
        return cmd_version(1, argv + 1);
    if (strcmp(argv[1], "help") == 0) {
        if (argc < 3) {
            usage(stdout);
            return SN_EXIT_OK;
        }
        cmd = lookup(argv[2]);
        if (!cmd) {
            fprintf(stderr, "sonde: unknown command '%s'\n", argv[2]);
            return SN_EXIT_USAGE;
        }
        char *help_argv[] = {argv[2], "--help", NULL};
        return cmd->fn(2, help_argv);
    }
    cmd = lookup(argv[1]);
    if (!cmd) {
        fprintf(stderr, "sonde: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return SN_EXIT_USAGE;
    }
    return cmd->fn(argc - 1, argv + 1);
}
