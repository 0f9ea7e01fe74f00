/*
 * Listen addresses on the command line (cli/cli.h): `sonde serve --listen`, --otlp-listen,
 * --zipkin-listen and `sonde agent --otlp-listen`, --zipkin-listen check theirs alike, before
 * anything starts, so that a typo is a usage error rather than a failure to bind.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

bool sn_cli_listen_ok(const char *s, char *why, size_t whylen)
{
    char host[256], buf[16];
    const char *colon;
    char *end;
    long port;

    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= sizeof(host)) {
            snprintf(why, whylen, "want [IPV6]:PORT");
            return false;
        }
        snprintf(host, sizeof(host), "%.*s", (int)(rb - s - 1), s + 1);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            snprintf(why, whylen, "no port: want HOST:PORT, e.g. %s:23181", s);
            return false;
        }
        if ((size_t)(colon - s) >= sizeof(host)) {
            snprintf(why, whylen, "host too long");
            return false;
        }
        snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
    }
    port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || port < 0 || port > 65535) {
        snprintf(why, whylen, "bad port '%s' (want 0-65535; 0 picks a free one)", colon + 1);
        return false;
    }
    if (!host[0] || strcmp(host, "localhost") == 0 || inet_pton(AF_INET, host, buf) == 1 ||
        inet_pton(AF_INET6, host, buf) == 1)
        return true;
    snprintf(why, whylen, "host '%s' is not an IPv4 or IPv6 address or localhost", host);
    return false;
}

int sn_cli_live_addr(const char *s, char *addr, size_t addrlen, uint16_t *port, char *why,
                     size_t whylen)
{
    const char *colon = strrchr(s, ':'), *p = colon ? colon + 1 : s;
    char buf[16], *end;
    if (colon) {
        if ((size_t)(colon - s) >= addrlen) {
            snprintf(why, whylen, "address too long");
            return -1;
        }
        snprintf(addr, addrlen, "%.*s", (int)(colon - s), s);
    } else {
        snprintf(addr, addrlen, "127.0.0.1");
    }
    if (strcmp(addr, "localhost") == 0)
        snprintf(addr, addrlen, "127.0.0.1");
    if (inet_pton(AF_INET, addr, buf) != 1) {
        snprintf(why, whylen, "'%s' is not an IPv4 address (the relay listens on IPv4)", addr);
        return -1;
    }
    long v = strtol(p, &end, 10);
    if (end == p || *end || v < 0 || v > 65535) {
        snprintf(why, whylen, "bad port '%s' (want 0-65535; 0 picks a free one)", p);
        return -1;
    }
    *port = (uint16_t)v;
    return 0;
}
