/*
 * Requests and responses apart from HTTP (src/http/request.h): url-encoded forms ('+' is a
 * space, %XX a byte, bad escapes and %00 refused, pairs without '='), parameter lookup (the
 * form body wins over the query string, the last value wins, lists from repeated and
 * comma-separated values), percent-decoding, and the exact bodies of JSON and error responses
 * (an error's message is made valid UTF-8 so the body stays valid JSON); the framing checks of
 * a request's head (Content-Length, Transfer-Encoding) and %00 in raw targets.
 */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http/request.h"
#include "t.h"

static int parse(struct sn_req *r, const char *text, bool form)
{
    return sn_req_parse_form(r, text, strlen(text), form);
}

/* Checks parameter i is name=value from the given source. */
static void param_is(const struct sn_req *r, size_t i, const char *name, const char *value,
                     bool form)
{
    t_note("param %zu", i);
    if (!T_OK(i < r->nparams))
        return;
    T_STR(r->params[i].name, name);
    T_STR(r->params[i].value, value);
    T_EQ(r->params[i].form, form);
}

static void test_form_basic(void)
{
    struct sn_req r = {0};

    T_EQ(parse(&r, "a=1&b=two+words&c=%41%62&d=%2b%2B", false), 0);
    T_EQ(r.nparams, 4);
    param_is(&r, 0, "a", "1", false);
    param_is(&r, 1, "b", "two words", false);
    param_is(&r, 2, "c", "Ab", false);
    param_is(&r, 3, "d", "++", false);
    sn_req_fini(&r);
    T_EQ(r.nparams, 0);
    T_OK(r.params == NULL);

    /* names decode like values; escapes of the separators are data, not separators */
    T_EQ(parse(&r, "x+y=1&%3D=%26&e=a=b&%C3%A9=%e2%82%ac", true), 0);
    T_EQ(r.nparams, 4);
    param_is(&r, 0, "x y", "1", true);
    param_is(&r, 1, "=", "&", true);
    param_is(&r, 2, "e", "a=b", true);
    param_is(&r, 3, "\xc3\xa9", "\xe2\x82\xac", true);
    sn_req_fini(&r);
}

/* Whether sn_req_parse_form(text) returns (whatever it returns) in a child process, rather
 * than crashing: so that one crash fails its case and not the whole binary. */
static bool parses_without_crash(const char *text)
{
    pid_t pid = fork();
    int st;
    if (pid == 0) {
        struct sn_req r = {0};
        (void)sn_req_parse_form(&r, text, strlen(text), true);
        sn_req_fini(&r);
        _exit(0);
    }
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return true; /* cannot tell: let the case run */
    if (WIFSIGNALED(st))
        t_note("sn_req_parse_form(\"%s\") died of signal %d", text, WTERMSIG(st));
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void test_form_without_equals_and_empty(void)
{
    struct sn_req r = {0};

    T_REQUIRE(parses_without_crash("flag"));
    T_EQ(parse(&r, "flag&b=2&other&c=", false), 0);
    T_EQ(r.nparams, 4);
    param_is(&r, 0, "flag", "", false);
    param_is(&r, 1, "b", "2", false);
    param_is(&r, 2, "other", "", false);
    param_is(&r, 3, "c", "", false);
    sn_req_fini(&r);

    /* empty pairs are nothing */
    T_EQ(parse(&r, "&&a=1&&", false), 0);
    T_EQ(r.nparams, 1);
    param_is(&r, 0, "a", "1", false);
    sn_req_fini(&r);
    T_EQ(parse(&r, "", false), 0);
    T_EQ(r.nparams, 0);
    sn_req_fini(&r);

    /* the length is honoured: no read past it */
    T_EQ(sn_req_parse_form(&r, "a=1&b=2", 3, false), 0);
    T_EQ(r.nparams, 1);
    param_is(&r, 0, "a", "1", false);
    sn_req_fini(&r);
}

static void test_form_bad_escapes(void)
{
    static const char *const bad[] = {
        "a=%",   "a=%4",  "a=%zz", "a=%4g", "a=%g4",    "%4=1",  "%=1",
        "a=%00", "%00=1", "a=1%",  "a=%%",  "b=1&a=%0", "a=%-1", "a=% 1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct sn_req r = {0};
        t_note("%s", bad[i]);
        T_EQ(parse(&r, bad[i], false), -EINVAL);
        sn_req_fini(&r);
    }
    /* a NUL byte inside the text */
    struct sn_req r = {0};
    T_EQ(sn_req_parse_form(&r, "a=1\0b=2", 7, false), -EINVAL);
    T_EQ(r.nparams, 0);
    sn_req_fini(&r);
    /* %01 and %ff are fine */
    T_EQ(parse(&r, "a=%01%ff", false), 0);
    T_EQ(r.nparams, 1);
    param_is(&r, 0, "a", "\x01\xff", false);
    sn_req_fini(&r);
}

static void test_url_decode(void)
{
    char s[64];

    strcpy(s, "a%20b+c");
    T_OK(sn_url_decode(s, false));
    T_STR(s, "a b+c");
    strcpy(s, "a%20b+c");
    T_OK(sn_url_decode(s, true));
    T_STR(s, "a b c");
    strcpy(s, "%2Fca%2finstrumentations");
    T_OK(sn_url_decode(s, false));
    T_STR(s, "/ca/instrumentations");
    strcpy(s, "%0a%7E");
    T_OK(sn_url_decode(s, false));
    T_STR(s, "\n~");
    strcpy(s, "");
    T_OK(sn_url_decode(s, false));
    T_STR(s, "");
    strcpy(s, "plain");
    T_OK(sn_url_decode(s, true));
    T_STR(s, "plain");

    static const char *const bad[] = {"%", "%2", "x%2", "%g0", "%0g", "%00", "a%00b", "%%20"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        t_note("%s", bad[i]);
        strcpy(s, bad[i]);
        T_OK(!sn_url_decode(s, false));
        strcpy(s, bad[i]);
        T_OK(!sn_url_decode(s, true));
    }
}

static void test_param_precedence(void)
{
    struct sn_req r = {0};

    /* the query alone: the last wins */
    T_EQ(parse(&r, "a=1&a=2&b=x", false), 0);
    T_STR(sn_req_param(&r, "a"), "2");
    T_STR(sn_req_param(&r, "b"), "x");
    T_OK(sn_req_param(&r, "c") == NULL);
    T_OK(sn_req_param(&r, "A") == NULL); /* names are case-sensitive */
    /* a form names a: its values win, the query's are ignored; b stays the query's */
    T_EQ(parse(&r, "a=3&a=4&c=", true), 0);
    T_STR(sn_req_param(&r, "a"), "4");
    T_STR(sn_req_param(&r, "b"), "x");
    T_STR(sn_req_param(&r, "c"), "");
    /* order of addition does not matter: a query value added after the form still loses */
    T_EQ(sn_req_add_param(&r, "a", "5", false), 0);
    T_STR(sn_req_param(&r, "a"), "4");
    T_EQ(sn_req_add_param(&r, "a", "6", true), 0);
    T_STR(sn_req_param(&r, "a"), "6");
    /* sn_req_add_param copies, and NULL values are empty */
    char name[] = "z", value[] = "zz";
    T_EQ(sn_req_add_param(&r, name, value, false), 0);
    name[0] = value[0] = 'q';
    T_STR(sn_req_param(&r, "z"), "zz");
    T_EQ(sn_req_add_param(&r, "n", NULL, false), 0);
    T_STR(sn_req_param(&r, "n"), "");
    sn_req_fini(&r);
}

static void test_params_lists(void)
{
    struct sn_req r = {0};
    const char *out[8];
    char buf[64];

    T_EQ(parse(&r, "selected=a&selected=b,c&other=1&selected=,d,,e,", false), 0);
    size_t n = sn_req_params(&r, "selected", out, 8, buf, sizeof(buf));
    T_EQ(n, 5);
    if (n == 5) {
        T_STR(out[0], "a");
        T_STR(out[1], "b");
        T_STR(out[2], "c");
        T_STR(out[3], "d");
        T_STR(out[4], "e");
    }
    T_EQ(sn_req_params(&r, "missing", out, 8, buf, sizeof(buf)), 0);
    /* max bounds the count */
    T_EQ(sn_req_params(&r, "selected", out, 2, buf, sizeof(buf)), 2);
    T_STR(out[0], "a");
    T_STR(out[1], "b");
    T_EQ(sn_req_params(&r, "selected", out, 0, buf, sizeof(buf)), 0);
    /* the buffer bounds it too: "a\0" fits in 2 bytes, "b,c\0" needs 4 more */
    T_EQ(sn_req_params(&r, "selected", out, 8, buf, 2), 1);
    T_STR(out[0], "a");
    T_EQ(sn_req_params(&r, "selected", out, 8, buf, 5), 1);
    T_EQ(sn_req_params(&r, "selected", out, 8, buf, 6), 3);
    T_EQ(sn_req_params(&r, "selected", out, 8, buf, 1), 0);
    /* the request is unchanged by the splitting */
    T_STR(r.params[1].value, "b,c");
    /* form values replace the query's list */
    T_EQ(parse(&r, "selected=x,y", true), 0);
    n = sn_req_params(&r, "selected", out, 8, buf, sizeof(buf));
    T_EQ(n, 2);
    if (n == 2) {
        T_STR(out[0], "x");
        T_STR(out[1], "y");
    }
    sn_req_fini(&r);
}

/* Parses resp's body as JSON (it must be, with one trailing newline). */
static json_t *body_json(const struct sn_resp *resp)
{
    json_error_t e;
    if (!T_OK(resp->body && resp->len > 0 && resp->body[resp->len - 1] == '\n'))
        return NULL;
    T_STR(resp->ctype, "application/json");
    json_t *j = json_loadb((const char *)resp->body, resp->len, 0, &e);
    T_OK(j != NULL);
    return j;
}

static void test_resp_json(void)
{
    struct sn_resp resp = {0};

    sn_resp_json(&resp, 200, json_pack("{s:i,s:[s]}", "a", 1, "b", "x"));
    T_EQ(resp.status, 200);
    T_STR(resp.ctype, "application/json");
    T_EQ(resp.len, 18);
    if (resp.len == 18)
        T_MEM(resp.body, "{\"a\":1,\"b\":[\"x\"]}\n", 18);
    /* a scalar is fine too (JSON_ENCODE_ANY) */
    sn_resp_json(&resp, 201, json_integer(7));
    T_EQ(resp.status, 201);
    T_EQ(resp.len, 2);
    T_MEM(resp.body, "7\n", 2);
    /* NULL: a 500 without a body */
    resp.park_until_ms = 99;
    sn_resp_json(&resp, 200, NULL);
    T_EQ(resp.status, 500);
    T_OK(resp.body == NULL && resp.len == 0 && resp.ctype == NULL);
    T_EQ(resp.park_until_ms, 0);
    sn_resp_fini(&resp);

    sn_resp_text(&resp, 200, "text/plain", "hello");
    T_EQ(resp.len, 5);
    T_MEM(resp.body, "hello", 5);
    sn_resp_empty(&resp, 204);
    T_EQ(resp.status, 204);
    T_OK(resp.body == NULL && resp.len == 0 && resp.ctype == NULL);
    sn_resp_fini(&resp);
    T_EQ(resp.status, 0);
}

static void error_is(int status, const char *code, const char *msg, const char *want_body)
{
    struct sn_resp resp = {0};

    sn_resp_error(&resp, status, code, "%s", msg);
    T_EQ(resp.status, status);
    T_STR(resp.ctype, "application/json");
    T_EQ(resp.len, strlen(want_body));
    if (resp.body && resp.len == strlen(want_body))
        T_MEM(resp.body, want_body, resp.len);
    json_t *j = body_json(&resp);
    json_decref(j);
    sn_resp_fini(&resp);
}

static void test_resp_error(void)
{
    struct sn_resp resp = {0};

    sn_resp_error(&resp, 409, "ECA_INVAL", "value \"%s\" for param \"%s\" not valid", "x", "width");
    T_EQ(resp.status, 409);
    static const char want[] = "{\"error\":{\"code\":\"ECA_INVAL\",\"message\":\"value \\\"x\\\" "
                               "for param \\\"width\\\" not valid\"}}\n";
    T_EQ(resp.len, sizeof(want) - 1);
    if (resp.len == sizeof(want) - 1)
        T_MEM(resp.body, want, resp.len);
    json_t *j = body_json(&resp);
    T_STR(json_string_value(json_object_get(json_object_get(j, "error"), "code")), "ECA_INVAL");
    json_decref(j);
    sn_resp_fini(&resp);

    error_is(401, "ECA_UNAUTHORIZED", "no",
             "{\"error\":{\"code\":\"ECA_UNAUTHORIZED\",\"message\":\"no\"}}\n");
    /* valid UTF-8 passes as is */
    error_is(409, "E", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
             "{\"error\":{\"code\":\"E\",\"message\":\"caf\xc3\xa9 \xe2\x82\xac "
             "\xf0\x9f\x98\x80\"}}\n");
    /* invalid UTF-8: each bad byte is '?' */
    error_is(409, "E",
             "a\xff"
             "b",
             "{\"error\":{\"code\":\"E\",\"message\":\"a?b\"}}\n");
    error_is(409, "E", "x\xc3", "{\"error\":{\"code\":\"E\",\"message\":\"x?\"}}\n");
    error_is(409, "E", "\xe2\x82", "{\"error\":{\"code\":\"E\",\"message\":\"??\"}}\n");
    error_is(409, "E", "\xc0\xaf", "{\"error\":{\"code\":\"E\",\"message\":\"??\"}}\n");
    error_is(409, "E", "\xed\xa0\x80", "{\"error\":{\"code\":\"E\",\"message\":\"???\"}}\n");
    error_is(409, "E", "\xf5\x80\x80\x80", "{\"error\":{\"code\":\"E\",\"message\":\"????\"}}\n");
    error_is(409, "E", "\xf0\x8f\xbf\xbf", "{\"error\":{\"code\":\"E\",\"message\":\"????\"}}\n");
    error_is(409, "E", "\x80z", "{\"error\":{\"code\":\"E\",\"message\":\"?z\"}}\n");
    /* control characters and quotes are escaped by the encoder */
    error_is(409, "E", "\"\n\\", "{\"error\":{\"code\":\"E\",\"message\":\"\\\"\\n\\\\\"}}\n");

    /* a long message is cut; a character split by the cut must not break the JSON */
    char big[1100];
    memset(big, 'a', sizeof(big));
    memcpy(big + 1022, "\xc3\xa9", 2);
    big[1099] = '\0';
    sn_resp_error(&resp, 409, "E", "%s", big);
    T_EQ(resp.status, 409);
    j = body_json(&resp);
    const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    T_OK(m != NULL);
    if (m) {
        T_EQ(strlen(m), 1023);
        T_EQ(m[1022], '?');
    }
    json_decref(j);
    /* replacing a body frees the earlier one (ASan would tell) */
    sn_resp_error(&resp, 400, "E", "second");
    T_EQ(resp.status, 400);
    sn_resp_fini(&resp);
}

static void test_req_fini_frees_state(void)
{
    struct sn_req r = {0};
    T_EQ(parse(&r, "a=1", false), 0);
    r.json = json_object();
    r.state = malloc(8);
    r.state_free = free;
    sn_req_fini(&r);
    T_OK(r.json == NULL && r.state == NULL && r.params == NULL && r.nparams == 0);
    sn_req_fini(&r); /* twice is fine */
}

/* The framing of a head given as "Name: value" strings (NULL-terminated); its check's status. */
static int framing(const char *const *h, struct sn_framing *f)
{
    memset(f, 0, sizeof(*f));
    for (int i = 0; h[i]; i++) {
        char name[64];
        const char *colon = strchr(h[i], ':');
        snprintf(name, sizeof(name), "%.*s", (int)(colon - h[i]), h[i]);
        sn_framing_add(f, name, colon + 1);
    }
    const char *why = "unset";
    int st = sn_framing_check(f, &why);
    T_OK(st ? why != NULL : why == NULL);
    return st;
}

static void test_framing(void)
{
    struct sn_framing f;
    static const char *const none[] = {"Host: x", NULL};
    static const char *const cl[] = {"Content-Length: 12", NULL};
    static const char *const cl_same[] = {"Content-Length: 12", "content-length:12", NULL};
    static const char *const cl_differ[] = {"Content-Length: 12", "Content-Length: 13", NULL};
    static const char *const cl_max[] = {"Content-Length: 18446744073709551615", NULL};
    static const char *const cl_over[] = {"Content-Length: 18446744073709551616", NULL};
    static const char *const cl_neg[] = {"Content-Length: -1", NULL};
    static const char *const cl_plus[] = {"Content-Length: +1", NULL};
    static const char *const cl_empty[] = {"Content-Length:", NULL};
    static const char *const cl_list[] = {"Content-Length: 1, 1", NULL};
    static const char *const cl_hex[] = {"Content-Length: 0x10", NULL};
    static const char *const te[] = {"Transfer-Encoding: Chunked ", NULL};
    static const char *const te_gzip[] = {"Transfer-Encoding: gzip, chunked", NULL};
    static const char *const te_two[] = {"Transfer-Encoding: chunked", "Transfer-Encoding: chunked",
                                         NULL};
    static const char *const te_cl[] = {"Transfer-Encoding: chunked", "Content-Length: 3", NULL};

    T_EQ(framing(none, &f), 0);
    T_EQU(f.cl, 0);
    T_OK(!f.te_chunked);
    T_EQ(framing(cl, &f), 0);
    T_EQU(f.cl, 12);
    T_EQ(framing(cl_same, &f), 0);
    T_EQU(f.cl, 12);
    T_EQ(framing(cl_differ, &f), 400);
    T_EQ(framing(cl_max, &f), 0);
    T_EQU(f.cl, UINT64_MAX);
    T_EQ(framing(cl_over, &f), 400);
    T_EQ(framing(cl_neg, &f), 400);
    T_EQ(framing(cl_plus, &f), 400);
    T_EQ(framing(cl_empty, &f), 400);
    T_EQ(framing(cl_list, &f), 400);
    T_EQ(framing(cl_hex, &f), 400);
    T_EQ(framing(te, &f), 0);
    T_OK(f.te_chunked);
    T_EQ(framing(te_gzip, &f), 501);
    T_EQ(framing(te_two, &f), 501);
    T_EQ(framing(te_cl, &f), 400);
}

static void test_target_nul(void)
{
    T_OK(sn_target_has_nul("/ca/instrumentations/1%00/value/raw"));
    T_OK(sn_target_has_nul("/ui/sonde.css%00.png"));
    T_OK(sn_target_has_nul("/ca?x=%00"));
    T_OK(!sn_target_has_nul("/ca?x=%2500"));
    T_OK(!sn_target_has_nul("/ca/instrumentations/1"));
    T_OK(!sn_target_has_nul(NULL));
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("form_basic", test_form_basic);
    t_run("form_without_equals_and_empty", test_form_without_equals_and_empty);
    t_run("form_bad_escapes", test_form_bad_escapes);
    t_run("url_decode", test_url_decode);
    t_run("param_precedence", test_param_precedence);
    t_run("params_lists", test_params_lists);
    t_run("resp_json", test_resp_json);
    t_run("resp_error", test_resp_error);
    t_run("req_fini_frees_state", test_req_fini_frees_state);
    t_run("framing", test_framing);
    t_run("target_nul", test_target_nul);
    return t_done();
}
