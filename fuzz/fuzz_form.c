/*
 * Fuzz target: url-encoded forms and parameter lookup (src/http/request.h). The input is a
 * query string, then optionally a '\n' and a form body. Properties: no crash; a parse
 * succeeds exactly when a plain reference decoder (below) finds no bad escape, NUL byte or
 * encoded NUL, and then yields the same parameters in the same order, each a NUL-free string of
 * the decoded bytes; sn_req_param() gives the last value of the form if the form names the
 * parameter, else of the query; sn_req_params() gives the comma-split, non-empty pieces of
 * those same values, within its bounds.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "http/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct ref {
    char *name, *value;
    size_t nlen, vlen;
};

static int hex(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes p[0..n) into out (n + 1 bytes); false on a bad escape or a (decoded) NUL. */
static bool ref_decode(const uint8_t *p, size_t n, char *out, size_t *outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\0')
            return false;
        if (p[i] == '%') {
            int hi = i + 1 < n ? hex(p[i + 1]) : -1, lo = i + 2 < n ? hex(p[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return false;
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = p[i] == '+' ? ' ' : (char)p[i];
        }
    }
    out[o] = '\0';
    *outlen = o;
    return true;
}

/* The reference parse of text[0..len): pairs split at '&', name and value at the first '=',
 * empty names skipped. Returns the number of pairs, or -1 for an invalid text. */
static long ref_parse(const uint8_t *text, size_t len, struct ref **out)
{
    struct ref *r = NULL;
    long n = 0;

    if (memchr(text, '\0', len)) {
        *out = NULL;
        return -1;
    }
    for (size_t at = 0; at <= len;) {
        const uint8_t *amp = memchr(text + at, '&', len - at);
        size_t end = amp ? (size_t)(amp - text) : len;
        const uint8_t *eq = memchr(text + at, '=', end - at);
        size_t nend = eq ? (size_t)(eq - text) : end;
        if (nend > at) { /* an empty name: skipped, escapes unchecked */
            struct ref x = {malloc(nend - at + 1), NULL, 0, 0};
            size_t vstart = eq ? nend + 1 : end;
            x.value = malloc(end - vstart + 1);
            FUZZ_CHECK(x.name && x.value);
            if (!ref_decode(text + at, nend - at, x.name, &x.nlen) ||
                !ref_decode(text + vstart, end - vstart, x.value, &x.vlen)) {
                free(x.name);
                free(x.value);
                for (long i = 0; i < n; i++) {
                    free(r[i].name);
                    free(r[i].value);
                }
                free(r);
                *out = NULL;
                return -1;
            }
            struct ref *g = realloc(r, (size_t)(n + 1) * sizeof(*r));
            FUZZ_CHECK(g);
            r = g;
            r[n++] = x;
        }
        if (!amp)
            break;
        at = end + 1;
    }
    *out = r;
    return n;
}

static void ref_free(struct ref *r, long n)
{
    for (long i = 0; i < n; i++) {
        free(r[i].name);
        free(r[i].value);
    }
    free(r);
}

/* Parses text as the query (form false) or body; checks it against the reference. */
static void parse_one(struct sn_req *req, const uint8_t *text, size_t len, bool form)
{
    struct ref *ref;
    size_t before = req->nparams;
    long n = ref_parse(text, len, &ref);
    int rc = sn_req_parse_form(req, (const char *)text, len, form);

    if (n < 0) {
        FUZZ_CHECK(rc == -EINVAL);
        /* what a failed parse added is not specified: forget it */
        for (size_t i = before; i < req->nparams; i++) {
            free(req->params[i].name);
            free(req->params[i].value);
        }
        req->nparams = before;
        return;
    }
    FUZZ_CHECK(rc == 0);
    FUZZ_CHECK(req->nparams == before + (size_t)n);
    for (long i = 0; i < n; i++) {
        const struct sn_param *p = &req->params[before + (size_t)i];
        FUZZ_CHECK(p->form == form);
        FUZZ_CHECK(strlen(p->name) == ref[i].nlen &&
                   memcmp(p->name, ref[i].name, ref[i].nlen) == 0);
        FUZZ_CHECK(strlen(p->value) == ref[i].vlen &&
                   memcmp(p->value, ref[i].value, ref[i].vlen) == 0);
        FUZZ_CHECK(p->name[0] != '\0');
    }
    ref_free(ref, n);
}

/* The expected sn_req_param(): last form value if the form names it, else the last query one. */
static const char *expect_param(const struct sn_req *r, const char *name)
{
    const char *q = NULL, *f = NULL;
    for (size_t i = 0; i < r->nparams; i++) {
        if (strcmp(r->params[i].name, name) != 0)
            continue;
        if (r->params[i].form)
            f = r->params[i].value;
        else
            q = r->params[i].value;
    }
    return f ? f : q;
}

static void lookups(const struct sn_req *r, const char *name)
{
    const char *want = expect_param(r, name), *got = sn_req_param(r, name);
    FUZZ_CHECK((want == NULL) == (got == NULL));
    FUZZ_CHECK(!want || got == want);

    /* the list: pieces of the chosen source's values, in order */
    bool form = false;
    for (size_t i = 0; i < r->nparams; i++)
        form |= r->params[i].form && strcmp(r->params[i].name, name) == 0;
    static const size_t maxes[] = {0, 1, 3, 64}, buflens[] = {0, 1, 7, 4096};
    for (size_t mi = 0; mi < 4; mi++) {
        for (size_t bi = 0; bi < 4; bi++) {
            const char *out[64];
            char *buf = malloc(buflens[bi] + 1);
            FUZZ_CHECK(buf);
            size_t n = sn_req_params(r, name, out, maxes[mi], buf, buflens[bi]);
            FUZZ_CHECK(n <= maxes[mi]);
            /* the reference: split each value at commas, skipping empty pieces, while the
             * whole value fits in what is left of the buffer */
            size_t k = 0, used = 0;
            bool stop = false;
            for (size_t i = 0; i < r->nparams && !stop && k < maxes[mi]; i++) {
                const struct sn_param *p = &r->params[i];
                if (p->form != form || strcmp(p->name, name) != 0)
                    continue;
                size_t l = strlen(p->value);
                if (used + l + 1 > buflens[bi])
                    break;
                used += l + 1;
                for (const char *s = p->value; *s && k < maxes[mi];) {
                    size_t pl = strcspn(s, ",");
                    if (pl > 0) {
                        FUZZ_CHECK(k < n);
                        FUZZ_CHECK(strlen(out[k]) == pl && memcmp(out[k], s, pl) == 0);
                        FUZZ_CHECK(out[k] >= buf && out[k] + pl < buf + buflens[bi]);
                        k++;
                    }
                    s += pl;
                    if (*s == ',')
                        s++;
                }
            }
            FUZZ_CHECK(k == n);
            free(buf);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sn_req req = {0};
    const uint8_t *nl = memchr(data, '\n', size);
    size_t qlen = nl ? (size_t)(nl - data) : size;

    parse_one(&req, data, qlen, false);
    if (nl)
        parse_one(&req, nl + 1, size - qlen - 1, true);
    for (size_t i = 0; i < req.nparams; i++) {
        FUZZ_CHECK(req.params[i].name && req.params[i].value);
        lookups(&req, req.params[i].name);
    }
    lookups(&req, "selected");
    lookups(&req, "absent-name");

    /* sn_url_decode on the input up to its first NUL: false exactly for the reference's
     * refusals, else the reference's bytes */
    char *s = malloc(size + 1), *ref = malloc(size + 1);
    FUZZ_CHECK(s && ref);
    memcpy(s, data, size);
    s[size] = '\0';
    size_t slen = strlen(s), rlen;
    bool want = ref_decode((const uint8_t *)s, slen, ref, &rlen);
    bool got = sn_url_decode(s, true);
    FUZZ_CHECK(got == want);
    if (got) {
        FUZZ_CHECK(strlen(s) == rlen && memcmp(s, ref, rlen) == 0);
    }
    free(s);
    free(ref);
    sn_req_fini(&req);
    return 0;
}
