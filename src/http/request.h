/*
 * An HTTP request and its response as the API sees them, apart from the server library
 * (http/httpd.c fills them from libmicrohttpd), so that handlers are plain functions that
 * tests and fuzz targets can call.
 *
 * Parameters come from the query string and from a url-encoded form body; the form's win when
 * both name one (CA's rule). A JSON body is parsed once into req->json. Repeated parameters
 * are kept in order (CA's `selected=a&selected=b`).
 *
 * A handler that must wait for data (CA's long poll) answers with resp->park_until_ms: the
 * server suspends the connection and calls the handler again when woken or at that time.
 */
#ifndef SN_HTTP_REQUEST_H
#define SN_HTTP_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sn_param {
    char *name, *value;
    bool form; /* from the body rather than the query string */
};

struct sn_req {
    const char *method;      /* "GET", "POST", ... */
    const char *path;        /* without the query string, percent-decoded */
    struct sn_param *params; /* query parameters, then form parameters */
    size_t nparams, capparams;
    const char *ctype;         /* Content-Type, or NULL */
    const char *api_version;   /* X-API-Version, or NULL */
    const char *auth;          /* Authorization, or NULL */
    const char *accept;        /* Accept, or NULL */
    const char *if_none_match; /* If-None-Match, or NULL */
    const char *cenc;          /* Content-Encoding, or NULL (the handler decodes the body) */
    const unsigned char *body;
    size_t body_len;
    json_t *json;     /* the body parsed as JSON, or NULL */
    bool body_parsed; /* the handler has read the body into params or json */
    bool loopback;    /* the peer is 127.0.0.0/8 or ::1 */
    bool proxied;     /* X-Sonde-Proxied: another node of the fleet sent it on (api/proxy.c) */
    int64_t t0_ms;    /* when the request arrived (CLOCK_REALTIME, ms) */
    int64_t now_ms;   /* when this call of the handler began */
    bool final;       /* the server is stopping: this call must answer (it cannot park) */
    void *state;      /* a handler's state between calls of a parked request */
    void (*state_free)(void *state);
};

struct sn_resp {
    int status;          /* 0: not answered yet */
    const char *ctype;   /* static string, or NULL for an empty body */
    unsigned char *body; /* owned (free()) */
    size_t len;
    char *location;        /* Location header (owned), or NULL */
    char *allow;           /* extra header "Allow" (owned), or NULL */
    const char *hdr[6][2]; /* more headers, {name, value}: static strings; name NULL ends */
    int64_t park_until_ms; /* > 0: not ready; call again when woken or at this time */
    char park_key[256];    /* with park_until_ms: woken only by news of this key ("": any) */
};

/* Adds a parameter (copies name and value). Returns 0 or -ENOMEM. */
int sn_req_add_param(struct sn_req *r, const char *name, const char *value, bool form);
/* Decodes an application/x-www-form-urlencoded text (a query string or a body): '+' is a
 * space, %XX a byte; pairs without '=' have an empty value. Returns 0, -EINVAL for a bad
 * escape, or -ENOMEM. */
int sn_req_parse_form(struct sn_req *r, const char *text, size_t len, bool form);
/* Percent-decodes s in place ('+' stays unless plus_space). Returns false on a bad escape or
 * an encoded NUL. */
bool sn_url_decode(char *s, bool plus_space);
/* Frees what the request owns (params, json, state). */
void sn_req_fini(struct sn_req *r);

/* The value of parameter name: the last one given in the form body, else the last in the
 * query string; NULL when absent. */
const char *sn_req_param(const struct sn_req *r, const char *name);
/* Every value of name (form values if the form names it, else the query's), each split at
 * commas, into out[0..max). Returns how many (at most max). */
size_t sn_req_params(const struct sn_req *r, const char *name, const char **out, size_t max,
                     char *buf, size_t buflen);

/*
 * What a request's head says of its body, from its headers one by one (the server checks it
 * before reading any body): Content-Length must be one decimal number (repeated, the same
 * one), Transfer-Encoding only "chunked" (RFC 9112 §6.1: Sonde knows no other coding), and not
 * both (a request smuggling vector).
 */
struct sn_framing {
    unsigned ncl;    /* Content-Length headers */
    bool cl_bad;     /* one is not a decimal number that fits 64 bits */
    bool cl_differ;  /* two disagree */
    uint64_t cl;     /* the first */
    unsigned nte;    /* Transfer-Encoding headers */
    bool te_chunked; /* exactly one, and it reads "chunked" (any case, spaces around) */
};
/* Notes one header (name and value borrowed; value NULL is ""). */
void sn_framing_add(struct sn_framing *f, const char *name, const char *value);
/* 0 when the framing is sound: no body, a body of f->cl bytes, or chunked (f->te_chunked).
 * Else the status to refuse the request with, and a reason in *why (a static string): 400
 * (a bad or contradictory Content-Length, both framings) or 501 (another transfer coding). */
int sn_framing_check(const struct sn_framing *f, const char **why);
/* Whether a raw (not yet decoded) request target holds "%00", which decoding would turn into
 * a NUL that cuts the path short. */
bool sn_target_has_nul(const char *raw);

/* Responses. Each sets status and body (replacing any earlier one). */
void sn_resp_json(struct sn_resp *resp, int status, json_t *j); /* steals j; adds a newline */
void sn_resp_empty(struct sn_resp *resp, int status);
void sn_resp_bytes(struct sn_resp *resp, int status, const char *ctype, unsigned char *body,
                   size_t len); /* steals body */
void sn_resp_text(struct sn_resp *resp, int status, const char *ctype, const char *text);
/* {"error":{"code":code,"message":printf(fmt,...)}} */
void sn_resp_error(struct sn_resp *resp, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void sn_resp_fini(struct sn_resp *resp);

#endif
