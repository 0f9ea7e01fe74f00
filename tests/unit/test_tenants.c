/*
 * The tenants file (src/serve/tenants.h): a valid file read in full, every invalid one refused
 * with -EINVAL and a message naming the member at fault, loading from a path, and the
 * constant-time token comparison.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "serve/tenants.h"
#include "t.h"

static int parse(const char *text, struct sn_tenants **out, char *why, size_t whylen)
{
    return sn_tenants_parse(text, strlen(text), out, why, whylen);
}

static void test_valid(void)
{
    static const char text[] =
        "{\"operator\": {\"token\": \"s3cret-operator\"},\n"
        " \"tenants\": {\"acme\": {\"token\": \"acme-token\", \"cgroups\": [\"/acme.slice\"]},\n"
        "             \"Beta_2.x-y\": {\"token\": \"beta-token-0123\",\n"
        "                            \"cgroups\": [\"/beta.slice\", \"/x/y.scope/\"],\n"
        "                            \"comment\": \"unknown members are ignored\"}}}";
    struct sn_tenants *t = NULL;
    char why[256] = "";

    T_EQ(parse(text, &t, why, sizeof(why)), 0);
    T_REQUIRE(t != NULL);
    T_STR(t->operator_token, "s3cret-operator");
    T_EQ(t->n, 2);
    const struct sn_tenant *a = sn_tenants_find(t, "acme"), *b = sn_tenants_find(t, "Beta_2.x-y");
    T_REQUIRE(a && b);
    T_STR(a->name, "acme");
    T_STR(a->token, "acme-token");
    T_EQ(a->ncgroups, 1);
    T_STR(a->cgroups[0], "/acme.slice");
    T_STR(b->token, "beta-token-0123");
    T_EQ(b->ncgroups, 2);
    T_STR(b->cgroups[0], "/beta.slice");
    T_STR(b->cgroups[1], "/x/y.scope/");
    T_OK(sn_tenants_find(t, "ACME") == NULL);
    T_OK(sn_tenants_find(t, "") == NULL);
    T_OK(sn_tenants_find(NULL, "acme") == NULL);
    sn_tenants_free(t);
    sn_tenants_free(NULL);

    /* an operator alone; tokens of exactly 8 and 256 characters; 64 cgroups; a 63-byte name */
    char tok256[257], name63[64], big[8192];
    memset(tok256, 'k', 256);
    tok256[256] = '\0';
    memset(name63, 'n', 63);
    name63[63] = '\0';
    int off = snprintf(big, sizeof(big),
                       "{\"operator\":{\"token\":\"%s\"},\"tenants\":{\"%s\":{\"token\":"
                       "\"12345678\",\"cgroups\":[",
                       tok256, name63);
    for (int i = 0; i < 64; i++)
        off += snprintf(big + off, sizeof(big) - (size_t)off, "%s\"/c%d\"", i ? "," : "", i);
    snprintf(big + off, sizeof(big) - (size_t)off, "]}}}");
    T_EQ(parse(big, &t, why, sizeof(why)), 0);
    T_REQUIRE(t != NULL);
    T_EQ(strlen(t->operator_token), 256);
    T_EQ(t->n, 1);
    T_EQ(t->t[0].ncgroups, 64);
    T_STR(t->t[0].cgroups[63], "/c63");
    T_STR(t->t[0].token, "12345678");
    sn_tenants_free(t);

    T_EQ(parse("{\"operator\":{\"token\":\"12345678\"}}", &t, why, sizeof(why)), 0);
    T_EQ(t->n, 0);
    sn_tenants_free(t);
    T_EQ(parse("{\"operator\":{\"token\":\"12345678\"},\"tenants\":{}}", &t, why, sizeof(why)), 0);
    T_EQ(t->n, 0);
    sn_tenants_free(t);
}

/* text must be refused with -EINVAL and a message containing each of the words. */
static void invalid(const char *text, const char *w1, const char *w2)
{
    struct sn_tenants *t = (struct sn_tenants *)&t; /* must be left alone */
    char why[256];

    memset(why, 0, sizeof(why));
    t_note("text: %s", text);
    T_EQ(sn_tenants_parse(text, strlen(text), &t, why, sizeof(why)), -EINVAL);
    T_OK(t == (struct sn_tenants *)&t);
    t_note("text: %s why: %s", text, why);
    T_OK(why[0] != '\0');
    if (w1) {
        t_note("text: %s why: %s (want \"%s\")", text, why, w1);
        T_OK(strstr(why, w1) != NULL);
    }
    if (w2) {
        t_note("text: %s why: %s (want \"%s\")", text, why, w2);
        T_OK(strstr(why, w2) != NULL);
    }
}

#define OP   "\"operator\":{\"token\":\"operator-token\"}"
#define ACME "\"acme\":{\"token\":\"acme-token\",\"cgroups\":[\"/acme.slice\"]}"

static void test_invalid(void)
{
    /* bad JSON */
    invalid("", "line", NULL);
    invalid("{", "line 1", NULL);
    invalid("{\"operator\":{\"token\":\"operator-token\"},}", "line", NULL);
    invalid("{" OP "," OP "}", "line", NULL); /* a duplicate member */
    invalid("{" OP ",\"tenants\":{" ACME "," ACME "}}", "line", NULL);
    /* not an object */
    invalid("[]", "object", NULL);
    invalid("\"operator\"", "line 1", NULL);
    invalid("{\"operator\":{\"token\":\"operator-token\"},\"tenants\":null}", "\"tenants\"", NULL);
    /* the operator */
    invalid("{\"tenants\":{}}", "\"operator\"", NULL);
    invalid("{\"operator\":\"operator-token\"}", "\"operator\"", NULL);
    invalid("{\"operator\":{}}", "operator", "\"token\"");
    invalid("{\"operator\":{\"token\":12345678}}", "operator", "\"token\"");
    invalid("{\"operator\":{\"token\":\"short\"}}", "operator", "\"token\"");
    invalid("{\"operator\":{\"token\":\"1234567\"}}", "operator", "\"token\"");
    char long_tok[400];
    snprintf(long_tok, sizeof(long_tok), "{\"operator\":{\"token\":\"%0257d\"}}", 0);
    invalid(long_tok, "operator", "\"token\"");
    /* tenants */
    invalid("{" OP ",\"tenants\":[]}", "\"tenants\"", NULL);
    invalid("{" OP ",\"tenants\":{\"acme\":5}}", "acme", NULL);
    invalid("{" OP ",\"tenants\":{\"acme\":{\"cgroups\":[\"/a\"]}}}", "acme", "\"token\"");
    invalid("{" OP ",\"tenants\":{\"acme\":{\"token\":\"short\",\"cgroups\":[\"/a\"]}}}", "acme",
            "\"token\"");
    /* duplicate tokens: the operator's, another tenant's */
    invalid("{" OP ",\"tenants\":{\"acme\":{\"token\":\"operator-token\",\"cgroups\":[\"/a\"]}}}",
            "acme", "operator");
    invalid("{" OP ",\"tenants\":{" ACME
            ",\"beta\":{\"token\":\"acme-token\",\"cgroups\":[\"/b\"]}}}",
            "beta", "acme");
    /* bad tenant names */
    invalid("{" OP ",\"tenants\":{\"ac me\":{\"token\":\"acme-token\",\"cgroups\":[\"/a\"]}}}",
            "ac me", "name");
    invalid("{" OP ",\"tenants\":{\"\":{\"token\":\"acme-token\",\"cgroups\":[\"/a\"]}}}",
            "tenant \"\"", "name");
    invalid("{" OP ",\"tenants\":{\"a/b\":{\"token\":\"acme-token\",\"cgroups\":[\"/a\"]}}}", "a/b",
            "name");
    invalid("{" OP ",\"tenants\":{\"caf\\u00e9\":{\"token\":\"acme-token\",\"cgroups\":[\"/a\"]}}}",
            "caf", "name");
    char name64[300];
    snprintf(name64, sizeof(name64),
             "{" OP ",\"tenants\":{\"%064d\":{\"token\":\"acme-token\",\"cgroups\":[\"/a\"]}}}", 0);
    invalid(name64, "0000", "name");
    /* cgroups */
    invalid("{" OP ",\"tenants\":{\"acme\":{\"token\":\"acme-token\"}}}", "acme", "\"cgroups\"");
    invalid("{" OP ",\"tenants\":{\"acme\":{\"token\":\"acme-token\",\"cgroups\":[]}}}", "acme",
            "\"cgroups\"");
    invalid("{" OP ",\"tenants\":{\"acme\":{\"token\":\"acme-token\",\"cgroups\":\"/a\"}}}", "acme",
            "\"cgroups\"");
    invalid("{" OP
            ",\"tenants\":{\"acme\":{\"token\":\"acme-token\",\"cgroups\":[\"acme.slice\"]}}}",
            "acme", "cgroups[0]");
    invalid("{" OP ",\"tenants\":{\"acme\":{\"token\":\"acme-token\",\"cgroups\":[\"/a\",\"\"]}}}",
            "acme", "cgroups[1]");
    invalid("{" OP ",\"tenants\":{\"acme\":{\"token\":\"acme-token\",\"cgroups\":[\"/a\",7]}}}",
            "acme", "cgroups[1]");
    invalid("{" OP
            ",\"tenants\":{\"acme\":{\"token\":\"acme-token\",\"cgroups\":[\"/a/../etc\"]}}}",
            "acme", "cgroups[0]");
    invalid("{" OP ",\"tenants\":{\"acme\":{\"token\":\"acme-token\",\"cgroups\":[\"/..\"]}}}",
            "acme", "cgroups[0]");
    invalid("{" OP ",\"tenants\":{\"acme\":{\"token\":\"acme-token\",\"cgroups\":[\"/a//b\"]}}}",
            "acme", "cgroups[0]");
    /* too many cgroups */
    char many[4096];
    int off = snprintf(many, sizeof(many),
                       "{" OP ",\"tenants\":{\"acme\":{\"token\":\"acme-token\",\"cgroups\":[");
    for (int i = 0; i < 65; i++)
        off += snprintf(many + off, sizeof(many) - (size_t)off, "%s\"/c%d\"", i ? "," : "", i);
    snprintf(many + off, sizeof(many) - (size_t)off, "]}}}");
    invalid(many, "acme", "\"cgroups\"");
    /* a token with a NUL inside (it would be cut short) */
    invalid("{\"operator\":{\"token\":\"abcdefgh\\u0000\"}}", NULL, NULL);
}

/* A truncated why buffer is still a string. */
static void test_why_truncated(void)
{
    struct sn_tenants *t = NULL;
    char why[8];
    memset(why, 'x', sizeof(why));
    T_EQ(parse("{\"operator\":{}}", &t, why, sizeof(why)), -EINVAL);
    T_OK(memchr(why, '\0', sizeof(why)) != NULL);
}

static void test_load(void)
{
    char path[256], why[256];
    struct sn_tenants *t = NULL;

    snprintf(path, sizeof(path), "%s/tenants-%d.json", t_outdir(), (int)getpid());
    FILE *f = fopen(path, "w");
    T_REQUIRE(f != NULL);
    fputs("{\"operator\":{\"token\":\"operator-token\"},\"tenants\":{" ACME "}}\n", f);
    fclose(f);
    T_EQ(sn_tenants_load(path, &t, why, sizeof(why)), 0);
    T_REQUIRE(t != NULL);
    T_EQ(t->n, 1);
    T_STR(t->t[0].token, "acme-token");
    sn_tenants_free(t);
    unlink(path);
    T_EQ(sn_tenants_load(path, &t, why, sizeof(why)), -ENOENT);
    T_OK(strstr(why, path) != NULL);
}

static void test_token_eq(void)
{
    T_OK(sn_token_eq("acme-token", "acme-token"));
    T_OK(!sn_token_eq("acme-tokem", "acme-token"));
    T_OK(!sn_token_eq("Acme-token", "acme-token"));
    T_OK(!sn_token_eq("acme-toke", "acme-token"));   /* a prefix */
    T_OK(!sn_token_eq("acme-token!", "acme-token")); /* longer */
    T_OK(!sn_token_eq("", "acme-token"));
    T_OK(!sn_token_eq("acme-token", ""));
    T_OK(sn_token_eq("", ""));
    /* a given token whose bytes past the expected length repeat its first byte */
    T_OK(!sn_token_eq("aaaa", "aaa"));
    T_OK(!sn_token_eq("aaa", "aaaa"));
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("valid", test_valid);
    t_run("invalid", test_invalid);
    t_run("why_truncated", test_why_truncated);
    t_run("load", test_load);
    t_run("token_eq", test_token_eq);
    return t_done();
}
