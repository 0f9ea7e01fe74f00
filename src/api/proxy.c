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
#include "fleet/names.h"
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

/* The request as sent on: its path and query into target[cap], and its headers (the caller's
 * credentials, version, Accept, and X-Sonde-Proxied) into headers (hv their storage). False
 * when the request is too long to send on. */
struct fwd {
    char target[8192], hv[4][600];
    const char *headers[6];
};

static bool fwd_make(struct sn_call *c, struct fwd *w)
{
    size_t at = (size_t)snprintf(w->target, sizeof(w->target), "%s", c->req->path), nh = 0;
    bool first = true, fits = at < sizeof(w->target);
    for (size_t i = 0; fits && i < c->req->nparams; i++) {
        const struct sn_param *p = &c->req->params[i];
        if (p->form)
            continue;
        if (at + 2 >= sizeof(w->target)) {
            fits = false;
            break;
        }
        w->target[at++] = first ? '?' : '&';
        first = false;
        fits = put_enc(w->target, sizeof(w->target), &at, p->name) && at + 2 < sizeof(w->target);
        if (fits) {
            w->target[at++] = '=';
            fits = put_enc(w->target, sizeof(w->target), &at, p->value);
        }
    }
    if (!fits)
        return false;
    if (c->req->auth)
        snprintf(w->hv[nh], sizeof(w->hv[nh]), "Authorization: %s", c->req->auth), nh++;
    if (c->req->api_version)
        snprintf(w->hv[nh], sizeof(w->hv[nh]), "X-API-Version: %s", c->req->api_version), nh++;
    if (c->req->accept)
        snprintf(w->hv[nh], sizeof(w->hv[nh]), "Accept: %s", c->req->accept), nh++;
    for (size_t i = 0; i < nh; i++)
        w->headers[i] = w->hv[i];
    w->headers[nh++] = "X-Sonde-Proxied: 1";
    w->headers[nh] = NULL;
    return true;
}

/* Sends the request on to the owners of key in turn until one answers, and answers with what
 * it said (true); false when this node answers it itself (it serves key, the request was
 * proxied already, or it owns key and no other owner answered). what names key in errors. */
static bool proxy_key(struct sn_call *c, const char *key, const char *what)
{
    struct sn_server *s = c->s;
    char api[160];
    struct sn_url u;
    struct sn_http_resp r = {0};
    static __thread struct fwd w;

    if (!s->fleet)
        return false;
    if (sn_fleet_serves(s->fleet, key))
        return false;
    if (c->req->proxied) /* sent on once already: answered here */
        return false;
    if (sn_fleet_owner_api(s->fleet, key, 0, api, sizeof(api)) < 0) {
        if (sn_fleet_owns(s->fleet, key)) /* catching up, and no other owner: what it has */
            return false;
        sn_resp_error(c->resp, 503, "ECA_NORESOURCE",
                      "no node of the fleet owns %s %s now: try again", what, key);
        c->resp->hdr[0][0] = "Retry-After";
        c->resp->hdr[0][1] = "1";
        return true;
    }
    if (!fwd_make(c, &w)) {
        sn_resp_error(c->resp, 414, "ECA_INVAL", "the request is too long to send to its owner");
        return true;
    }
    /* each owner in turn until one answers: one that died a moment ago is still listed until
     * the others hear it silent (3 s) */
    int rc = -ENOENT;
    for (size_t nth = 0; rc < 0 && nth < SN_FLEET_OWNERS; nth++) {
        if (nth && sn_fleet_owner_api(s->fleet, key, nth, api, sizeof(api)) < 0)
            break;
        if (sn_url_parse(api, &u) < 0)
            continue;
        rc =
            sn_http_request(&u, c->req->method, w.target, w.headers, NULL, 0, PROXY_TIMEOUT_MS, &r);
    }
    if (rc < 0 && sn_fleet_owns(s->fleet, key)) /* an owner catching up: what it has */
        return false;
    if (rc < 0) {
        sn_resp_error(c->resp, 502, "ECA_NORESOURCE",
                      "the owners of %s %s did not answer (the last, %s: %s)", what, key, api,
                      strerror(-rc));
        return true;
    }
    sn_resp_bytes(c->resp, r.status, static_ctype(r.ctype), (unsigned char *)r.body, r.len);
    r.body = NULL;
    sn_http_resp_free(&r);
    return true;
}

bool sn_api_proxy(struct sn_call *c)
{
    char key[SN_SCOPE_MAX + 24];
    if (!c->s->fleet)
        return false;
    if (c->scope[0])
        snprintf(key, sizeof(key), "%s/%" PRIu64, c->scope, c->id);
    else
        snprintf(key, sizeof(key), "%" PRIu64, c->id);
    return proxy_key(c, key, "instrumentation");
}

bool sn_api_proxy_spans(struct sn_call *c, unsigned shard)
{
    char key[32];
    if (!c->s->fleet || sn_fleet_span_key(shard, key, sizeof(key)) < 0)
        return false;
    return proxy_key(c, key, "span shard");
}

int sn_api_fanout(struct sn_call *c, const char *api, const char *extra, int timeout_ms,
                  struct sn_http_resp *r)
{
    static __thread struct fwd w;
    struct sn_url u;
    if (!fwd_make(c, &w))
        return -E2BIG;
    if (extra) {
        size_t at = strlen(w.target);
        if (at + strlen(extra) + 2 >= sizeof(w.target))
            return -E2BIG;
        snprintf(w.target + at, sizeof(w.target) - at, "%c%s", strchr(w.target, '?') ? '&' : '?',
                 extra);
    }
    if (sn_url_parse(api, &u) < 0)
        return -EINVAL;
    return sn_http_request(&u, c->req->method, w.target, w.headers, NULL, 0, timeout_ms, r);
}
