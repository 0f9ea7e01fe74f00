/*
 * logfmt logger behind sn_log(); see log.h for the format and the environment it reads.
 * Each line is formatted into a stack buffer and written with one write(2), so lines from
 * different threads never interleave.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

static enum sn_log_level threshold = SN_LOG_INFO;
static char debug_subs[256]; /* ",a,b," for SN_DEBUG=a,b; empty when unset */

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void sn_log_init(void)
{
    const char *lvl = getenv("SN_LOG_LEVEL");
    const char *subs = getenv("SN_DEBUG");

    if (lvl) {
        for (int i = 0; i <= SN_LOG_DEBUG; i++)
            if (strcasecmp(lvl, level_names[i]) == 0)
                threshold = (enum sn_log_level)i;
    }
    if (subs && *subs)
        snprintf(debug_subs, sizeof(debug_subs), ",%s,", subs);
}

bool sn_log_on(enum sn_log_level lvl, const char *sub)
{
    char key[64];

    if (lvl <= threshold)
        return true;
    if (lvl != SN_LOG_DEBUG || !debug_subs[0] || !sub)
        return false;
    snprintf(key, sizeof(key), ",%s,", sub);
    return strstr(debug_subs, key) != NULL;
}

void sn_log(enum sn_log_level lvl, const char *sub, const char *fmt, ...)
{
    char line[1024], msg[768];
    struct timespec ts;
    struct tm tm;
    va_list ap;
    int n;

    if (!sn_log_on(lvl, sub))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++) /* keep the value one quoted logfmt token */
        if (*p == '"' || *p == '\n')
            *p = '\'';
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(line, sizeof(line),
                 "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ lvl=%s sub=%s msg=\"%s\"\n",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 ts.tv_nsec / 1000000, level_names[lvl], sub ? sub : "-", msg);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line))
        n = sizeof(line) - 1;
    if (write(STDERR_FILENO, line, (size_t)n) < 0)
        return;
}
