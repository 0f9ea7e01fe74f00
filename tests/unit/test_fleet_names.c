/*
 * The fleet's names on NATS (src/fleet/names.h): every form a builder writes, every refusal
 * (-EINVAL for a bad name, -ENOSPC for a short buffer, "" left behind either way), host names
 * at and just over their limits, and the round trips of every parser through its builder.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fleet/names.h"
#include "t.h"

/* A string of n copies of c (n < 1024). */
static const char *rep(char c, size_t n)
{
    static char buf[4][1024];
    static int k;
    char *b = buf[k++ & 3];
    memset(b, c, n);
    b[n] = '\0';
    return b;
}

static void test_host_valid(void)
{
    T_OK(sn_fleet_host_valid("h"));
    T_OK(sn_fleet_host_valid("web-01.eu_west.example.com"));
    T_OK(sn_fleet_host_valid("A9-_"));
    T_OK(sn_fleet_host_valid(rep('h', SN_FLEET_HOST_MAX)));      /* at the limit */
    T_OK(!sn_fleet_host_valid(rep('h', SN_FLEET_HOST_MAX + 1))); /* one over */
    T_OK(!sn_fleet_host_valid(rep('h', 1000)));
    T_OK(!sn_fleet_host_valid(""));
    T_OK(!sn_fleet_host_valid(NULL));
    T_OK(!sn_fleet_host_valid(".h"));
    T_OK(!sn_fleet_host_valid("h."));
    T_OK(!sn_fleet_host_valid("."));
    T_OK(!sn_fleet_host_valid("a..b"));
    T_OK(!sn_fleet_host_valid("a b"));
    T_OK(!sn_fleet_host_valid("a*"));
    T_OK(!sn_fleet_host_valid("a>"));
    T_OK(!sn_fleet_host_valid("a/b"));
    T_OK(!sn_fleet_host_valid("a=b"));
    T_OK(!sn_fleet_host_valid("h\xc3\xa9"));
    T_OK(!sn_fleet_host_valid("a\tb"));
    /* 253 bytes with dots: valid; a dot at either end of it is not */
    char h[SN_FLEET_HOST_MAX + 1];
    memset(h, 'x', SN_FLEET_HOST_MAX);
    h[SN_FLEET_HOST_MAX] = '\0';
    for (size_t i = 1; i + 1 < SN_FLEET_HOST_MAX; i += 2)
        h[i] = '.';
    T_OK(sn_fleet_host_valid(h));
    h[SN_FLEET_HOST_MAX - 1] = '.';
    T_OK(!sn_fleet_host_valid(h));
}

static void test_inst_token(void)
{
    char out[SN_FLEET_SUBJECT_MAX], back[SN_FLEET_SUBJECT_MAX];

    T_EQ(sn_fleet_inst_token("7", out, sizeof(out)), 0);
    T_STR(out, "7");
    T_EQ(sn_fleet_inst_token("acme/7", out, sizeof(out)), 0);
    T_STR(out, "acme/7");
    T_EQ(sn_fleet_inst_token("a.b/7", out, sizeof(out)), 0);
    T_STR(out, "a=2Eb/7");
    T_EQ(sn_fleet_inst_token("../12", out, sizeof(out)), 0);
    T_STR(out, "=2E=2E/12");
    T_EQ(sn_fleet_inst_token("9007199254740991", out, sizeof(out)), 0); /* 2^53 - 1 */
    T_STR(out, "9007199254740991");
    T_EQ(sn_fleet_inst_token("A-z_0.9/1", out, sizeof(out)), 0);
    T_STR(out, "A-z_0=2E9/1");

    /* refusals, each leaving "" */
    static const char *bad[] = {"",
                                "0",
                                "07",
                                "-7",
                                "+7",
                                "7a",
                                " 7",
                                "9007199254740992", /* 2^53 */
                                "99999999999999999",
                                "/7",
                                "acme/",
                                "acme/0",
                                "acme/07",
                                "acme/7/8",
                                "a b/7",
                                "a*/7",
                                "a=2Eb/7",
                                "\xc3\xa9/7",
                                "acme.7"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        strcpy(out, "junk");
        t_note("inst \"%s\"", bad[i]);
        T_EQ(sn_fleet_inst_token(bad[i], out, sizeof(out)), -EINVAL);
        T_STR(out, "");
    }
    T_EQ(sn_fleet_inst_token(NULL, out, sizeof(out)), -EINVAL);

    /* a tenant of 64 bytes is valid, of 65 is not */
    char key[128];
    strcpy(key, rep('t', 64));
    strcat(key, "/42");
    T_EQ(sn_fleet_inst_token(key, out, sizeof(out)), 0);
    T_STR(out, key);
    strcpy(key, rep('t', 65));
    strcat(key, "/42");
    T_EQ(sn_fleet_inst_token(key, out, sizeof(out)), -EINVAL);

    /* the longest token: a tenant of 64 dots and the largest id (64 * 3 + 1 + 16 bytes) */
    strcpy(key, rep('.', 64));
    strcat(key, "/9007199254740991");
    T_EQ(sn_fleet_inst_token(key, out, sizeof(out)), 0);
    T_EQ(strlen(out), 64 * 3 + 1 + 16);
    T_EQ(sn_fleet_inst_of_token(out, strlen(out), back, sizeof(back)), 0);
    T_STR(back, key);

    /* buffers: exactly enough, one short, none */
    T_EQ(sn_fleet_inst_token("a.b/7", out, 8), 0);
    T_STR(out, "a=2Eb/7");
    strcpy(out, "junk");
    T_EQ(sn_fleet_inst_token("a.b/7", out, 7), -ENOSPC);
    T_STR(out, "");
    T_EQ(sn_fleet_inst_token("a.b/7", out, 0), -ENOSPC);
    T_EQ(sn_fleet_inst_token("a.b/7", NULL, 8), -ENOSPC);
}

static void test_inst_of_token(void)
{
    char out[SN_FLEET_SUBJECT_MAX];

    T_EQ(sn_fleet_inst_of_token("7", 1, out, sizeof(out)), 0);
    T_STR(out, "7");
    T_EQ(sn_fleet_inst_of_token("a=2Eb/7", 7, out, sizeof(out)), 0);
    T_STR(out, "a.b/7");
    T_EQ(sn_fleet_inst_of_token("a=2Eb/7.host", 7, out, sizeof(out)), 0); /* only n bytes */
    T_STR(out, "a.b/7");
    T_EQ(sn_fleet_inst_of_token("acme/12", 6, out, sizeof(out)), 0);
    T_STR(out, "acme/1");

    static const char *bad[] = {"",      "a.b/7",  "a=2eb/7", "a=2/7", "a=", "a=3Eb/7",
                                "a=2E/", "acme/x", "0",       "07",    "a/", "=2E=2E"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        strcpy(out, "junk");
        t_note("token \"%s\"", bad[i]);
        T_EQ(sn_fleet_inst_of_token(bad[i], strlen(bad[i]), out, sizeof(out)), -EINVAL);
        T_STR(out, "");
    }
    T_EQ(sn_fleet_inst_of_token("a\0/7", 4, out, sizeof(out)), -EINVAL);   /* a NUL inside */
    T_EQ(sn_fleet_inst_of_token("a=2Eb/7", 5, out, sizeof(out)), -EINVAL); /* cut short */
    T_EQ(sn_fleet_inst_of_token(NULL, 0, out, sizeof(out)), -EINVAL);
    T_EQ(sn_fleet_inst_of_token(rep('1', 600), 600, out, sizeof(out)), -EINVAL);
    T_EQ(sn_fleet_inst_of_token("a=2Eb/7", 7, out, 5), -ENOSPC); /* "a.b/7" needs 5 + NUL */
    T_STR(out, "");
    T_EQ(sn_fleet_inst_of_token("a=2Eb/7", 7, out, 5 + 1), 0);
}

static void test_frame_subject(void)
{
    char out[SN_FLEET_SUBJECT_MAX], inst[128], host[SN_FLEET_HOST_MAX + 1];

    T_EQ(sn_fleet_frame_subject("7", "web1", out, sizeof(out)), 0);
    T_STR(out, "sonde.frames.7.web1");
    T_EQ(sn_fleet_frame_subject("a.b/7", "web1.example.com", out, sizeof(out)), 0);
    T_STR(out, "sonde.frames.a=2Eb/7.web1.example.com");
    T_EQ(sn_fleet_parse_frame_subject(out, inst, sizeof(inst), host, sizeof(host)), 0);
    T_STR(inst, "a.b/7");
    T_STR(host, "web1.example.com");

    /* the built-in key of the base of trace.spans travels as an instrumentation's */
    T_EQ(sn_fleet_frame_subject(SN_FLEET_SPAN_BASE, "n1", out, sizeof(out)), 0);
    T_STR(out, "sonde.frames.trace=2Espans.n1");
    T_EQ(sn_fleet_parse_frame_subject(out, inst, sizeof(inst), host, sizeof(host)), 0);
    T_STR(inst, "trace.spans");
    T_STR(host, "n1");
    T_EQ(sn_fleet_frame_subject("trace.span", "n1", out, sizeof(out)), -EINVAL);
    T_EQ(sn_fleet_frame_subject("trace.spans/1", "n1", out, sizeof(out)), 0); /* a tenant's */

    T_EQ(sn_fleet_frame_subject("7", "bad..host", out, sizeof(out)), -EINVAL);
    T_STR(out, "");
    T_EQ(sn_fleet_frame_subject("x", "web1", out, sizeof(out)), -EINVAL);
    T_EQ(sn_fleet_frame_subject("7", NULL, out, sizeof(out)), -EINVAL);
    T_EQ(sn_fleet_frame_subject("7", "web1", out, strlen("sonde.frames.7.web1")), -ENOSPC);
    T_STR(out, "");
    T_EQ(sn_fleet_frame_subject("7", "web1", out, strlen("sonde.frames.7.web1") + 1), 0);

    /* the longest subject fits SN_FLEET_SUBJECT_MAX */
    char key[128];
    strcpy(key, rep('.', 64));
    strcat(key, "/9007199254740991");
    T_EQ(sn_fleet_frame_subject(key, rep('h', SN_FLEET_HOST_MAX), out, sizeof(out)), 0);
    T_EQ(strlen(out), 13 + 64 * 3 + 1 + 16 + 1 + SN_FLEET_HOST_MAX);
    T_EQ(sn_fleet_parse_frame_subject(out, inst, sizeof(inst), host, sizeof(host)), 0);
    T_STR(inst, key);
    T_STR(host, rep('h', SN_FLEET_HOST_MAX));

    T_EQ(sn_fleet_frame_filter("acme/7", out, sizeof(out)), 0);
    T_STR(out, "sonde.frames.acme/7.>");
    T_EQ(sn_fleet_frame_filter("a.b/9", out, sizeof(out)), 0);
    T_STR(out, "sonde.frames.a=2Eb/9.>");
    T_EQ(sn_fleet_frame_filter("a.b/", out, sizeof(out)), -EINVAL);
    T_EQ(sn_fleet_frame_filter("7", out, strlen("sonde.frames.7.>")), -ENOSPC);

    /* parse refusals: each leaves both outputs "" */
    static const char *bad[] = {"",
                                "sonde.frames.",
                                "sonde.frames.7",
                                "sonde.frames.7.",
                                "sonde.frames..web1",
                                "sonde.frames.7.web1.",
                                "sonde.frames.7..web1",
                                "sonde.frames.7.web1..x",
                                "sonde.frames.a.b/7.web1",
                                "sonde.frames.07.web1",
                                "sonde.frames.7.>",
                                "sonde.frames.7.*",
                                "sonde.frames.*.web1",
                                "sonde.frame.7.web1",
                                "SONDE.frames.7.web1",
                                "xsonde.frames.7.web1",
                                "sonde.frames.7.we b1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        strcpy(inst, "junk");
        strcpy(host, "junk");
        t_note("subject \"%s\"", bad[i]);
        T_EQ(sn_fleet_parse_frame_subject(bad[i], inst, sizeof(inst), host, sizeof(host)), -EINVAL);
        T_STR(inst, "");
        T_STR(host, "");
    }
    T_EQ(sn_fleet_parse_frame_subject(NULL, inst, sizeof(inst), host, sizeof(host)), -EINVAL);
    /* a host over the limit */
    char subj[1024];
    snprintf(subj, sizeof(subj), "sonde.frames.7.%s", rep('h', SN_FLEET_HOST_MAX + 1));
    T_EQ(sn_fleet_parse_frame_subject(subj, inst, sizeof(inst), host, sizeof(host)), -EINVAL);
    /* outputs too small */
    T_EQ(sn_fleet_parse_frame_subject("sonde.frames.acme/7.web1", inst, 6, host, sizeof(host)),
         -ENOSPC);
    T_STR(inst, "");
    T_EQ(sn_fleet_parse_frame_subject("sonde.frames.acme/7.web1", inst, 7, host, 4), -ENOSPC);
    T_STR(inst, "");
    T_STR(host, "");
    T_EQ(sn_fleet_parse_frame_subject("sonde.frames.acme/7.web1", inst, 7, host, 5), 0);
    T_STR(inst, "acme/7");
    T_STR(host, "web1");
}

static void test_msg_id(void)
{
    char out[SN_FLEET_SUBJECT_MAX];

    T_EQ(sn_fleet_msg_id("web1", "7", 1700000000, out, sizeof(out)), 0);
    T_STR(out, "web1.7.1700000000");
    T_EQ(sn_fleet_msg_id("web1.example.com", "a.b/7", 0, out, sizeof(out)), 0);
    T_STR(out, "web1.example.com.a=2Eb/7.0");
    T_EQ(sn_fleet_msg_id("h", "1", INT64_MAX, out, sizeof(out)), 0);
    T_STR(out, "h.1.9223372036854775807");
    T_EQ(sn_fleet_msg_id("h", "1", -1, out, sizeof(out)), -EINVAL);
    T_STR(out, "");
    T_EQ(sn_fleet_msg_id("h..x", "1", 5, out, sizeof(out)), -EINVAL);
    T_EQ(sn_fleet_msg_id("h", "01", 5, out, sizeof(out)), -EINVAL);
    T_EQ(sn_fleet_msg_id("h", "1", 5, out, strlen("h.1.5")), -ENOSPC);
    T_STR(out, "");
    T_EQ(sn_fleet_msg_id("h", "1", 5, out, strlen("h.1.5") + 1), 0);
    T_STR(out, "h.1.5");

    /* the longest id fits SN_FLEET_SUBJECT_MAX */
    char key[128];
    strcpy(key, rep('.', 64));
    strcat(key, "/9007199254740991");
    T_EQ(sn_fleet_msg_id(rep('h', SN_FLEET_HOST_MAX), key, INT64_MAX, out, sizeof(out)), 0);
    T_EQ(strlen(out), SN_FLEET_HOST_MAX + 1 + 64 * 3 + 1 + 16 + 1 + 19);
}

static void test_defs_keys(void)
{
    char out[SN_FLEET_SUBJECT_MAX], inst[128];

    T_EQ(sn_fleet_def_key("7", out, sizeof(out)), 0);
    T_STR(out, "inst.7");
    T_EQ(sn_fleet_def_key("a.b/7", out, sizeof(out)), 0);
    T_STR(out, "inst.a=2Eb/7");
    T_EQ(sn_fleet_parse_def_key(out, inst, sizeof(inst)), 0);
    T_STR(inst, "a.b/7");
    T_EQ(sn_fleet_def_key("a.b", out, sizeof(out)), -EINVAL);
    T_STR(out, "");
    T_EQ(sn_fleet_def_key("7", out, 6), -ENOSPC);

    T_EQ(sn_fleet_next_key("", out, sizeof(out)), 0);
    T_STR(out, "next.=");
    T_EQ(sn_fleet_next_key("acme", out, sizeof(out)), 0);
    T_STR(out, "next.acme");
    T_EQ(sn_fleet_next_key("_", out, sizeof(out)), 0); /* a tenant "_": not the global scope */
    T_STR(out, "next._");
    T_EQ(sn_fleet_next_key("a.b", out, sizeof(out)), 0);
    T_STR(out, "next.a=2Eb");
    T_EQ(sn_fleet_next_key(rep('s', 64), out, sizeof(out)), 0);
    T_EQ(strlen(out), 5 + 64);
    T_EQ(sn_fleet_next_key(rep('s', 65), out, sizeof(out)), -EINVAL);
    T_STR(out, "");
    T_EQ(sn_fleet_next_key("a/b", out, sizeof(out)), -EINVAL);
    T_EQ(sn_fleet_next_key("a b", out, sizeof(out)), -EINVAL);
    T_EQ(sn_fleet_next_key("a=b", out, sizeof(out)), -EINVAL);
    T_EQ(sn_fleet_next_key(NULL, out, sizeof(out)), -EINVAL);
    T_EQ(sn_fleet_next_key("", out, 6), -ENOSPC);
    T_EQ(sn_fleet_next_key("", out, 7), 0);

    static const char *bad[] = {"",         "inst.",        "inst.x",    "inst.a.b/7", "inst.07",
                                "inst.7.8", "inst.7 ",      "next.acme", "inst7",      "INST.7",
                                "inst..7",  "inst.a=2eb/7", "inst./7",   "inst.acme/", "node.web1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        strcpy(inst, "junk");
        t_note("key \"%s\"", bad[i]);
        T_EQ(sn_fleet_parse_def_key(bad[i], inst, sizeof(inst)), -EINVAL);
        T_STR(inst, "");
    }
    T_EQ(sn_fleet_parse_def_key(NULL, inst, sizeof(inst)), -EINVAL);
    T_EQ(sn_fleet_parse_def_key("inst.acme/7", inst, 6), -ENOSPC);
    T_EQ(sn_fleet_parse_def_key("inst.acme/7", inst, 7), 0);
    T_STR(inst, "acme/7");
}

static void test_members_keys(void)
{
    char out[SN_FLEET_SUBJECT_MAX], name[SN_FLEET_HOST_MAX + 1], kind = 'x';

    T_EQ(sn_fleet_node_key("node-1", out, sizeof(out)), 0);
    T_STR(out, "node.node-1");
    T_EQ(sn_fleet_parse_member_key(out, &kind, name, sizeof(name)), 0);
    T_EQ(kind, 'n');
    T_STR(name, "node-1");
    T_EQ(sn_fleet_agent_key("web1.example.com", out, sizeof(out)), 0);
    T_STR(out, "agent.web1.example.com");
    T_EQ(sn_fleet_parse_member_key(out, &kind, name, sizeof(name)), 0);
    T_EQ(kind, 'a');
    T_STR(name, "web1.example.com");

    T_EQ(sn_fleet_agent_key(rep('h', SN_FLEET_HOST_MAX), out, sizeof(out)), 0);
    T_EQ(sn_fleet_parse_member_key(out, &kind, name, sizeof(name)), 0);
    T_STR(name, rep('h', SN_FLEET_HOST_MAX));
    T_EQ(sn_fleet_agent_key(rep('h', SN_FLEET_HOST_MAX + 1), out, sizeof(out)), -EINVAL);
    T_STR(out, "");
    T_EQ(sn_fleet_node_key("", out, sizeof(out)), -EINVAL);
    T_EQ(sn_fleet_node_key("a..b", out, sizeof(out)), -EINVAL);
    T_EQ(sn_fleet_node_key(NULL, out, sizeof(out)), -EINVAL);
    T_EQ(sn_fleet_agent_key(".h", out, sizeof(out)), -EINVAL);
    T_EQ(sn_fleet_node_key("n", out, 6), -ENOSPC);
    T_STR(out, "");
    T_EQ(sn_fleet_node_key("n", out, 7), 0);
    T_EQ(sn_fleet_agent_key("h", out, 7), -ENOSPC);
    T_EQ(sn_fleet_agent_key("h", out, 8), 0);

    static const char *bad[] = {"",          "node.",    "agent.",   "node",    "agent",
                                "node.a..b", "agent..h", "agent.h.", "nodes.x", "Agent.h",
                                "inst.7",    "node.a b", "agent.h*", "node.a/b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        kind = 'x';
        strcpy(name, "junk");
        t_note("key \"%s\"", bad[i]);
        T_EQ(sn_fleet_parse_member_key(bad[i], &kind, name, sizeof(name)), -EINVAL);
        T_EQ(kind, '\0');
        T_STR(name, "");
    }
    char key[600];
    snprintf(key, sizeof(key), "node.%s", rep('h', SN_FLEET_HOST_MAX + 1));
    T_EQ(sn_fleet_parse_member_key(key, &kind, name, sizeof(name)), -EINVAL);
    T_EQ(sn_fleet_parse_member_key(NULL, &kind, name, sizeof(name)), -EINVAL);
    T_EQ(sn_fleet_parse_member_key("node.n", NULL, name, sizeof(name)), -EINVAL);
    kind = 'x';
    T_EQ(sn_fleet_parse_member_key("agent.web1", &kind, name, 4), -ENOSPC);
    T_EQ(kind, '\0');
    T_EQ(sn_fleet_parse_member_key("agent.web1", &kind, name, 5), 0);
    T_EQ(kind, 'a');
}

/* Round trips over many generated keys and hosts: builder, then parser, gives the input. */
static void test_round_trips(void)
{
    static const char alpha[] = "abcXYZ019._-";
    char key[128], host[SN_FLEET_HOST_MAX + 1], tok[SN_FLEET_SUBJECT_MAX];
    char subj[SN_FLEET_SUBJECT_MAX], inst[128], h[SN_FLEET_HOST_MAX + 1], kind;

    t_seed(15);
    for (int n = 0; n < 2000; n++) {
        size_t tl = (size_t)(t_rand() % 65), hl = 1 + (size_t)(t_rand() % SN_FLEET_HOST_MAX);
        size_t at = 0;
        for (size_t i = 0; i < tl; i++)
            key[at++] = alpha[t_rand() % (sizeof(alpha) - 1)];
        if (tl)
            key[at++] = '/';
        at += (size_t)snprintf(key + at, sizeof(key) - at, "%llu",
                               (unsigned long long)(1 + t_rand() % 9007199254740991ULL));
        for (size_t i = 0; i < hl; i++)
            host[i] = alpha[t_rand() % (sizeof(alpha) - 1)];
        host[hl] = '\0';
        bool hok = sn_fleet_host_valid(host);
        t_note("key \"%s\" host \"%s\"", key, host);
        T_EQ(sn_fleet_inst_token(key, tok, sizeof(tok)), 0);
        T_OK(strchr(tok, '.') == NULL);
        T_EQ(sn_fleet_inst_of_token(tok, strlen(tok), inst, sizeof(inst)), 0);
        T_STR(inst, key);
        T_EQ(sn_fleet_def_key(key, subj, sizeof(subj)), 0);
        T_EQ(sn_fleet_parse_def_key(subj, inst, sizeof(inst)), 0);
        T_STR(inst, key);
        int rc = sn_fleet_frame_subject(key, host, subj, sizeof(subj));
        T_EQ(rc, hok ? 0 : -EINVAL);
        if (hok) {
            T_EQ(sn_fleet_parse_frame_subject(subj, inst, sizeof(inst), h, sizeof(h)), 0);
            T_STR(inst, key);
            T_STR(h, host);
            T_EQ(sn_fleet_agent_key(host, subj, sizeof(subj)), 0);
            T_EQ(sn_fleet_parse_member_key(subj, &kind, h, sizeof(h)), 0);
            T_EQ(kind, 'a');
            T_STR(h, host);
        }
    }
}

/* The span stream's names: the shard hash (its value is part of the format), subjects that
 * parse back and only those, keys and message ids. */
static void test_span_names(void)
{
    char out[SN_FLEET_SUBJECT_MAX];
    unsigned sh = 99;
    uint8_t id[16] = {0};

    T_STR(SN_FLEET_SPANS_STREAM, "SONDE_SPANS");
    /* FNV-1a 64 of 16 zero bytes, mod 64; and of 0..15 */
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int i = 0; i < 16; i++)
        h = (h ^ 0) * 0x100000001b3ULL;
    T_EQ(sn_fleet_span_shard(id), (unsigned)(h % 64));
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)i;
    unsigned s1 = sn_fleet_span_shard(id);
    T_OK(s1 < SN_FLEET_SPAN_SHARDS);
    T_EQ(sn_fleet_span_shard(id), s1); /* stable */
    /* the shards are spread: 4096 ids hit every shard */
    int hit[SN_FLEET_SPAN_SHARDS] = {0}, nhit = 0;
    for (int i = 0; i < 4096; i++) {
        id[15] = (uint8_t)i;
        id[14] = (uint8_t)(i >> 8);
        hit[sn_fleet_span_shard(id)]++;
    }
    for (int i = 0; i < SN_FLEET_SPAN_SHARDS; i++)
        nhit += hit[i] > 0;
    T_EQ(nhit, SN_FLEET_SPAN_SHARDS);

    T_EQ(sn_fleet_span_subject(0, out, sizeof(out)), 0);
    T_STR(out, "sonde.spans.0");
    T_EQ(sn_fleet_span_subject(63, out, sizeof(out)), 0);
    T_STR(out, "sonde.spans.63");
    T_EQ(sn_fleet_parse_span_subject(out, &sh), 0);
    T_EQ(sh, 63u);
    T_EQ(sn_fleet_span_subject(64, out, sizeof(out)), -EINVAL);
    T_STR(out, "");
    T_EQ(sn_fleet_span_subject(7, out, 10), -ENOSPC);
    T_STR(out, "");
    static const char *bad[] = {"sonde.spans.",   "sonde.spans.64",   "sonde.spans.007",
                                "sonde.spans.-1", "sonde.spans.1a",   "sonde.spans.1.2",
                                "sonde.frames.1", "sonde.spans.1000", NULL};
    for (int i = 0; bad[i]; i++)
        T_EQ(sn_fleet_parse_span_subject(bad[i], &sh), -EINVAL);
    T_EQ(sn_fleet_parse_span_subject(NULL, &sh), -EINVAL);
    for (unsigned i = 0; i < SN_FLEET_SPAN_SHARDS; i++) { /* round trip */
        T_EQ(sn_fleet_span_subject(i, out, sizeof(out)), 0);
        T_EQ(sn_fleet_parse_span_subject(out, &sh), 0);
        T_EQ(sh, i);
    }

    T_EQ(sn_fleet_span_key(5, out, sizeof(out)), 0);
    T_STR(out, "spans/5");
    T_EQ(sn_fleet_span_key(64, out, sizeof(out)), -EINVAL);

    T_EQ(sn_fleet_span_msg_id("node-a", 0x1f, "s5", out, sizeof(out)), 0);
    T_STR(out, "node-a.1f.s5");
    T_EQ(sn_fleet_span_msg_id("node-a", 2, "f12", out, sizeof(out)), 0);
    T_STR(out, "node-a.2.f12");
    T_EQ(sn_fleet_span_msg_id("bad..node", 2, "s1", out, sizeof(out)), -EINVAL);
    T_EQ(sn_fleet_span_msg_id("node-a", 2, "s.1", out, sizeof(out)), -EINVAL);
    T_EQ(sn_fleet_span_msg_id("node-a", 2, "", out, sizeof(out)), -EINVAL);
    T_STR(out, "");

    /* read back: the origin may hold dots (an agent's host), the id is read from its end */
    char part[16];
    uint64_t nonce = 0;
    T_EQ(sn_fleet_parse_span_msg_id("web-1.example.com.18c4f2e9a0b.s17", out, sizeof(out), &nonce,
                                    part, sizeof(part)),
         0);
    T_STR(out, "web-1.example.com");
    T_EQU(nonce, 0x18c4f2e9a0bULL);
    T_STR(part, "s17");
    T_EQ(sn_fleet_parse_span_msg_id("node-a.0.f2", out, sizeof(out), NULL, NULL, 0), 0);
    T_STR(out, "node-a");
    T_EQ(sn_fleet_parse_span_msg_id("node-a.0.f2", out, 6, NULL, NULL, 0), -ENOSPC);
    T_STR(out, "");
    static const char *const bad_ids[] = {
        "node-a.1f",                   /* no part */
        "node-a.1f.",                  /* an empty part */
        "node-a..s1",                  /* no nonce */
        ".1f.s1",                      /* no origin */
        "node-a.01f.s1",               /* a leading zero */
        "node-a.1F.s1",                /* upper case */
        "node-a.1g.s1",                /* not hex */
        "node-a.1f.s-1",               /* not [A-Za-z0-9] */
        "bad..node.1f.s1",             /* not a host name */
        "node.a.12345678901234567.s1", /* 17 digits */
    };
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        snprintf(out, sizeof(out), "x");
        T_EQ(sn_fleet_parse_span_msg_id(bad_ids[i], out, sizeof(out), &nonce, part, sizeof(part)),
             -EINVAL);
        T_STR(out, "");
    }
}

static void test_recorder_names(void)
{
    char out[SN_FLEET_SUBJECT_MAX], snap[64], host[SN_FLEET_HOST_MAX + 1];

    T_OK(sn_fleet_rec_name_valid("frec"));
    T_OK(sn_fleet_rec_name_valid("a_b-9"));
    T_OK(!sn_fleet_rec_name_valid("a.b"));
    T_OK(!sn_fleet_rec_name_valid(""));
    T_OK(!sn_fleet_rec_name_valid(NULL));
    T_OK(!sn_fleet_rec_name_valid("a>"));
    T_OK(!sn_fleet_rec_name_valid(
        "1234567890123456789012345678901234567890123456789012345678901234"));
    T_EQ(sn_fleet_rec_key("frec", out, sizeof(out)), 0);
    T_STR(out, "rec.frec");
    T_EQ(sn_fleet_rec_key("a.b", out, sizeof(out)), -EINVAL);
    T_STR(out, "");
    T_EQ(sn_fleet_parse_rec_key("rec.frec", snap, sizeof(snap)), 0);
    T_STR(snap, "frec");
    T_EQ(sn_fleet_parse_rec_key("rec.a.b", snap, sizeof(snap)), -EINVAL);
    T_STR(snap, "");
    T_EQ(sn_fleet_parse_rec_key("inst.7", snap, sizeof(snap)), -EINVAL);

    T_EQ(sn_fleet_traces_subject("frec-20261207T232243Z-fe52051", "web1.example.com", out,
                                 sizeof(out)),
         0);
    T_STR(out, "sonde.traces.frec-20261207T232243Z-fe52051.web1.example.com");
    T_EQ(sn_fleet_parse_traces_subject(out, snap, sizeof(snap), host, sizeof(host)), 0);
    T_STR(snap, "frec-20261207T232243Z-fe52051");
    T_STR(host, "web1.example.com");
    T_EQ(sn_fleet_traces_subject("s1", NULL, out, sizeof(out)), 0);
    T_STR(out, "sonde.traces.s1.>");
    T_EQ(sn_fleet_traces_subject("s.1", "h", out, sizeof(out)), -EINVAL);
    T_STR(out, "");
    T_EQ(sn_fleet_traces_subject("s1", "bad..host", out, sizeof(out)), -EINVAL);
    const char *bad[] = {"sonde.traces.s1",    "sonde.traces.s1.",     "sonde.traces..h",
                         "sonde.frames.s1.h",  "sonde.traces.s1.a..b", "sonde.traces.s>.h",
                         "sonde.traces.s1.h.>"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        T_EQ(sn_fleet_parse_traces_subject(bad[i], snap, sizeof(snap), host, sizeof(host)),
             -EINVAL);
        T_STR(snap, "");
        T_STR(host, "");
    }
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("host_valid", test_host_valid);
    t_run("inst_token", test_inst_token);
    t_run("inst_of_token", test_inst_of_token);
    t_run("frame_subject", test_frame_subject);
    t_run("msg_id", test_msg_id);
    t_run("defs_keys", test_defs_keys);
    t_run("members_keys", test_members_keys);
    t_run("round_trips", test_round_trips);
    t_run("span_names", test_span_names);
    t_run("recorder_names", test_recorder_names);
    return t_done();
}
