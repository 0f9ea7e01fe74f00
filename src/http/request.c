/*
 * Requests and responses apart from the server library; see request.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/request.h"

int sn_req_add_param(struct sn_req *r, const char *name, const char *value, bool form)
{
    if (r->nparams == r->capparams) {
        size_t cap = r->capparams ? r->capparams * 2 : 8;
        struct sn_param *p = realloc(r->params, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        r->params = p;
        r->capparams = cap;
    }
    struct sn_param *p = &r->params[r->nparams];
    p->name = strdup(name);
    p->value = strdup(value ? value : "");
    p->form = form;
    if (!p->name || !p->value) {
        free(p->name);
        free(p->value);
        return -ENOMEM;
    }
    r->nparams++;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool sn_url_decode(char *s, bool plus_space)
{
    char *o = s;
    for (; *s; s++) {
        if (*s == '%') {
            int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return false;
            *o++ = (char)(hi << 4 | lo);
            s += 2;
        } else if (*s == '+' && plus_space) {
            *o++ = ' ';
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
    return true;
}

int sn_req_parse_form(struct sn_req *r, const char *text, size_t len, bool form)
{
    char *buf = malloc(len + 1);
    int rc = 0;

    if (!buf)
        return -ENOMEM;
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (strlen(buf) != len) { /* a NUL byte inside */
        free(buf);
        return -EINVAL;
    }
    for (char *save = NULL, *pair = strtok_r(buf, "&", &save); pair && rc == 0;
         pair = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(pair, '='), none[1] = "";
        char *value = none; /* a pair without '=' has an empty value */
        if (eq) {
            *eq = '\0';
            value = eq + 1;
        }
        if (!*pair)
            continue;
        if (!sn_url_decode(pair, true) || !sn_url_decode(value, true))
            rc = -EINVAL;
        else
            rc = sn_req_add_param(r, pair, value, form);
    }
    free(buf);
    return rc;
}

/* Whether [p, p + n) equals word, ignoring case, once blanks around it are dropped. */
static bool token_is(const char *p, const char *word)
{
    size_t n = strlen(p), w = strlen(word);
    while (n && (*p == ' ' || *p == '\t')) {
        p++;
        n--;
    }
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    return n == w && strncasecmp(p, word, w) == 0;
}

void sn_framing_add(struct sn_framing *f, const char *name, const char *value)
{
    if (!value)
        value = "";
    if (strcasecmp(name, "Content-Length") == 0) {
        const char *p = value;
        uint64_t v = 0;
        bool ok = true;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p < '0' || *p > '9')
            ok = false;
        for (; *p >= '0' && *p <= '9'; p++) {
            unsigned d = (unsigned)(*p - '0');
            if (v > (UINT64_MAX - d) / 10) {
                ok = false;
                break;
            }
            v = v * 10 + d;
        }
        while (ok && (*p == ' ' || *p == '\t'))
            p++;
        if (*p)
            ok = false;
        if (!ok)
            f->cl_bad = true;
        if (f->ncl++ == 0)
            f->cl = v;
        else if (v != f->cl)
            f->cl_differ = true;
    } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
        f->nte++;
        f->te_chunked = f->nte == 1 && token_is(value, "chunked");
    }
}

int sn_framing_check(const struct sn_framing *f, const char **why)
{
    const char *w = NULL;
    int status = 0;

    if (f->cl_bad || f->cl_differ) {
        status = 400;
        w = "bad Content-Length";
    } else if (f->nte && !f->te_chunked) {
        status = 501;
        w = "the only transfer coding accepted is chunked";
    } else if (f->nte && f->ncl) {
        status = 400;
        w = "both Transfer-Encoding and Content-Length";
    }
    if (why)
        *why = w;
    return status;
}

bool sn_target_has_nul(const char *raw)
{
    return raw && strstr(raw, "%00") != NULL;
}

void sn_req_fini(struct sn_req *r)
{
    for (size_t i = 0; i < r->nparams; i++) {
        free(r->params[i].name);
        free(r->params[i].value);
    }
    free(r->params);
    r->params = NULL;
    r->nparams = r->capparams = 0;
    json_decref(r->json);
    r->json = NULL;
    if (r->state && r->state_free)
        r->state_free(r->state);
    r->state = NULL;
}

/* Whether the form body names the parameter (then the query's values are ignored). */
static bool in_form(const struct sn_req *r, const char *name)
{
    for (size_t i = 0; i < r->nparams; i++)
        if (r->params[i].form && strcmp(r->params[i].name, name) == 0)
            return true;
    return false;
}

const char *sn_req_param(const struct sn_req *r, const char *name)
{
    bool form = in_form(r, name);
    for (size_t i = r->nparams; i-- > 0;)
        if (r->params[i].form == form && strcmp(r->params[i].name, name) == 0)
            return r->params[i].value;
    return NULL;
}

size_t sn_req_params(const struct sn_req *r, const char *name, const char **out, size_t max,
                     char *buf, size_t buflen)
{
    bool form = in_form(r, name);
    size_t n = 0, used = 0;

    for (size_t i = 0; i < r->nparams && n < max; i++) {
        if (r->params[i].form != form || strcmp(r->params[i].name, name) != 0)
            continue;
        size_t l = strlen(r->params[i].value);
        if (used + l + 1 > buflen)
            break;
        char *v = memcpy(buf + used, r->params[i].value, l + 1);
        used += l + 1;
        for (char *save = NULL, *tok = strtok_r(v, ",", &save); tok && n < max;
             tok = strtok_r(NULL, ",", &save))
            out[n++] = tok;
    }
    return n;
}

void sn_resp_fini(struct sn_resp *resp)
{
    free(resp->body);
    free(resp->location);
    free(resp->allow);
    memset(resp, 0, sizeof(*resp));
}

void sn_resp_bytes(struct sn_resp *resp, int status, const char *ctype, unsigned char *body,
                   size_t len)
{
    free(resp->body);
    resp->status = status;
    resp->ctype = ctype;
    resp->body = body;
    resp->len = len;
    resp->park_until_ms = 0;
    resp->park_key[0] = '\0';
}

void sn_resp_empty(struct sn_resp *resp, int status)
{
    sn_resp_bytes(resp, status, NULL, NULL, 0);
}

void sn_resp_text(struct sn_resp *resp, int status, const char *ctype, const char *text)
{
    size_t len = strlen(text);
    unsigned char *b = malloc(len + 1);
    if (!b) {
        sn_resp_empty(resp, 500);
        return;
    }
    memcpy(b, text, len + 1);
    sn_resp_bytes(resp, status, ctype, b, len);
}

void sn_resp_json(struct sn_resp *resp, int status, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    if (!text) {
        sn_resp_empty(resp, 500);
        return;
    }
    size_t len = strlen(text);
    char *b = realloc(text, len + 2);
    if (!b) {
        free(text);
        sn_resp_empty(resp, 500);
        return;
    }
    b[len] = '\n';
    b[len + 1] = '\0';
    sn_resp_bytes(resp, status, "application/json", (unsigned char *)b, len + 1);
}

/* Replaces every byte that is not part of valid UTF-8 with '?', so that any text (an echo of
 * a client's bad input) can go into a JSON string. */
static void utf8_sanitize(unsigned char *s)
{
    while (*s) {
        int n = *s < 0x80             ? 0
                : (*s & 0xE0) == 0xC0 ? 1
                : (*s & 0xF0) == 0xE0 ? 2
                : (*s & 0xF8) == 0xF0 ? 3
                                      : -1;
        bool ok = n >= 0 && !(*s == 0xC0 || *s == 0xC1 || *s > 0xF4);
        for (int i = 1; ok && i <= n; i++)
            ok = (s[i] & 0xC0) == 0x80;
        if (ok && n == 2)
            ok = !(s[0] == 0xE0 && s[1] < 0xA0) && !(s[0] == 0xED && s[1] >= 0xA0);
        if (ok && n == 3)
            ok = !(s[0] == 0xF0 && s[1] < 0x90) && !(s[0] == 0xF4 && s[1] >= 0x90);
        if (!ok) {
            *s++ = '?';
            continue;
        }
        s += n + 1;
    }
}

void sn_resp_error(struct sn_resp *resp, int status, const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    utf8_sanitize((unsigned char *)msg);
    sn_resp_json(resp, status, json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}
