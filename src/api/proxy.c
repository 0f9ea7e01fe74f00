/*
 * In a fleet, the data of an instrumentation lives on the nodes that own it (serve/fleet.h):
 * a value request (value/raw, heatmaps, export) that reaches another node is sent on to an
 * owner, as Cloud Analytics's configuration service sent them to its aggregators, and the
 * owner's answer is the answer. The request keeps its method, path, query, credentials and
 * version; X-Sonde-Proxied marks it so that an owner that does not think it owns the
 * instrumentation (membership changing at that moment) answers from what it has instead of
 * sending it on again.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/internal.h"
#include "http/client.h"
#include "serve/fleet.h"
#include "serve/server.h"

#define PROXY_TIMEOUT_MS 75000 /* a long poll waits up to a minute at the owner */

/* resp->ctype is a static string: the owner's Content-Type as one of the API's own. */
static const char *static_ctype(const char *ct)
{
    static const char *known[] = {"application/json",          "image/png",  "application/x-ndjson",
                                  "text/plain; charset=utf-8", "text/plain", "text/html"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strncasecmp(ct, known[i], strlen(known[i])) == 0)
            return known[i];
    return ct[0] ? "application/octet-stream" : NULL;
}

/* Appends s percent-encoded (query component) to out[*at..cap). False when it does not fit. */
static bool put_enc(char *out, size_t cap, size_t *at, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' || ch == '~';
        if (*at + 4 >= cap)
            return false;
        if (plain) {
            out[(*at)++] = (char)ch;
        } else {
            out[(*at)++] = '%';
            out[(*at)++] = hex[ch >> 4];
            out[(*at)++] = hex[ch & 15];
        }
    }
    out[*at] = '\0';
    return true;
}

bool sn_api_proxy(struct sn_call *c)
{
    struct sn_server *s = c->s;
    char key[SN_SCOPE_MAX + 24], api[160], target[8192], hv[4][600];
    const char *headers[6];
    size_t at, nh = 0;
    struct sn_url u;
    struct sn_http_resp r = {0};

    if (!s->fleet)
        return false;
    if (c->scope[0])
        snprintf(key, sizeof(key), "%s/%" PRIu64, c->scope, c->id);
    else
        snprintf(key, sizeof(key), "%" PRIu64, c->id);
    if (sn_fleet_serves(s->fleet, key))
        return false;
    if (c->req->proxied) /* sent on once already: answered here */
        return false;
    if (sn_fleet_owner_api(s->fleet, key, api, sizeof(api)) < 0 || sn_url_parse(api, &u) < 0) {
        if (sn_fleet_owns(s->fleet, key)) /* catching up, and no other owner: what it has */
            return false;
        sn_resp_error(c->resp, 503, "ECA_NORESOURCE",
                      "no node of the fleet owns instrumentation %s now: try again", key);
        c->resp->hdr[0][0] = "Retry-After";
        c->resp->hdr[0][1] = "1";
        return true;
    }
    at = (size_t)snprintf(target, sizeof(target), "%s", c->req->path);
    bool first = true, fits = at < sizeof(target);
    for (size_t i = 0; fits && i < c->req->nparams; i++) {
        const struct sn_param *p = &c->req->params[i];
        if (p->form)
            continue;
        if (at + 2 >= sizeof(target)) {
            fits = false;
            break;
        }
        target[at++] = first ? '?' : '&';
        first = false;
        fits = put_enc(target, sizeof(target), &at, p->name) && at + 2 < sizeof(target);
        if (fits) {
            target[at++] = '=';
            fits = put_enc(target, sizeof(target), &at, p->value);
        }
    }
    if (!fits) {
        sn_resp_error(c->resp, 414, "ECA_INVAL", "the request is too long to send to its owner");
        return true;
    }
    if (c->req->auth)
        snprintf(hv[nh], sizeof(hv[nh]), "Authorization: %s", c->req->auth), nh++;
    if (c->req->api_version)
        snprintf(hv[nh], sizeof(hv[nh]), "X-API-Version: %s", c->req->api_version), nh++;
    if (c->req->accept)
        snprintf(hv[nh], sizeof(hv[nh]), "Accept: %s", c->req->accept), nh++;
    for (size_t i = 0; i < nh; i++)
        headers[i] = hv[i];
    headers[nh++] = "X-Sonde-Proxied: 1";
    headers[nh] = NULL;
    int rc = sn_http_request(&u, c->req->method, target, headers, NULL, 0, PROXY_TIMEOUT_MS, &r);
    if (rc < 0) {
        sn_resp_error(c->resp, 502, "ECA_NORESOURCE",
                      "the owner of instrumentation %s (%s) did not answer: %s", key, api,
                      strerror(-rc));
        return true;
    }
    sn_resp_bytes(c->resp, r.status, static_ctype(r.ctype), (unsigned char *)r.body, r.len);
    r.body = NULL;
    sn_http_resp_free(&r);
    return true;
}
