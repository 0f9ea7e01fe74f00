/*
 * Fuzz target: the fleet's names (src/fleet/names.h), where every name comes off the bus from
 * anyone with credentials. Every parser and builder runs on the input (as a string up to its
 * first NUL, and the token parser on the raw bytes; the builders that take two names on the
 * parts either side of the first newline). Properties: no crash; a refusal is -EINVAL or
 * -ENOSPC and leaves "" in every output; whatever a parser accepts, its builder writes back
 * byte for byte (so one name has one spelling); whatever a builder writes is a valid NATS
 * subject or KV key (no empty token, no wildcard or space, under SN_FLEET_SUBJECT_MAX) and
 * holds a host only when sn_fleet_host_valid() agrees with a reference written here.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fleet/names.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BUF SN_FLEET_SUBJECT_MAX

/* The reference host check: 1..253 of [A-Za-z0-9._-], no dot first or last, no "..". */
static bool host_ref(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SN_FLEET_HOST_MAX || s[0] == '.' || s[n - 1] == '.' || strstr(s, ".."))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' || s[i] == '.'))
            return false;
    return true;
}

/* A subject or KV key as NATS takes it: tokens between dots non-empty, only the characters
 * the fleet writes; a '>' only as the whole last token when wild. */
static bool subject_ok(const char *s, bool wild)
{
    size_t n = strlen(s);
    if (n == 0 || n >= BUF || s[0] == '.' || s[n - 1] == '.' || strstr(s, ".."))
        return false;
    if (wild) {
        if (n < 2 || strcmp(s + n - 2, ".>") != 0)
            return false;
        n -= 2;
    }
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || strchr("-_./=", s[i])))
            return false;
    return true;
}

/* A builder's result: 0 and a valid subject, or a refusal with "" left. */
static void built(int rc, const char *out, bool wild)
{
    if (rc == 0) {
        FUZZ_CHECK(subject_ok(out, wild));
    } else {
        FUZZ_CHECK(rc == -EINVAL || rc == -ENOSPC);
        FUZZ_CHECK(out[0] == '\0');
    }
}

/* An instrumentation key as the parsers return it: "<id>" or "<tenant>/<id>", or the built-in
 * key of the base of trace.spans (SN_FLEET_SPAN_BASE). */
static void key_ok(const char *k)
{
    if (strcmp(k, SN_FLEET_SPAN_BASE) == 0)
        return;
    const char *slash = strchr(k, '/'), *id = slash ? slash + 1 : k;
    FUZZ_CHECK(strlen(id) >= 1 && strlen(id) <= 16 && id[0] != '0');
    FUZZ_CHECK(strspn(id, "0123456789") == strlen(id));
    if (slash)
        FUZZ_CHECK(slash > k && slash - k <= 64);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    char out[BUF], back[BUF], inst[BUF], host[BUF], kind;
    int rc;

    /* the host check against the reference, and the members keys of a host */
    bool hv = sn_fleet_host_valid(s);
    FUZZ_CHECK(hv == host_ref(s));
    rc = sn_fleet_agent_key(s, out, sizeof(out));
    built(rc, out, false);
    FUZZ_CHECK((rc == 0) == hv);
    rc = sn_fleet_node_key(s, out, sizeof(out));
    built(rc, out, false);
    FUZZ_CHECK((rc == 0) == hv);

    /* the token parser on the raw bytes: accepted means written back byte for byte */
    rc = sn_fleet_inst_of_token((const char *)data, size, inst, sizeof(inst));
    if (rc == 0) {
        key_ok(inst);
        FUZZ_CHECK(sn_fleet_inst_token(inst, back, sizeof(back)) == 0);
        FUZZ_CHECK(strlen(back) == size && memcmp(back, data, size) == 0);
    } else {
        FUZZ_CHECK(rc == -EINVAL && inst[0] == '\0');
    }

    /* the input as a key: its token has no dot and maps back */
    rc = sn_fleet_inst_token(s, out, sizeof(out));
    if (rc == 0) {
        key_ok(s);
        FUZZ_CHECK(strchr(out, '.') == NULL && subject_ok(out, false));
        FUZZ_CHECK(sn_fleet_inst_of_token(out, strlen(out), back, sizeof(back)) == 0);
        FUZZ_CHECK(strcmp(back, s) == 0);
    } else {
        FUZZ_CHECK(rc == -EINVAL && out[0] == '\0');
    }
    bool iv = rc == 0;
    rc = sn_fleet_frame_filter(s, out, sizeof(out));
    built(rc, out, true);
    FUZZ_CHECK((rc == 0) == iv);
    rc = sn_fleet_def_key(s, out, sizeof(out));
    built(rc, out, false);
    FUZZ_CHECK((rc == 0) == iv);
    rc = sn_fleet_next_key(s, out, sizeof(out));
    built(rc, out, false);

    /* the flight recorder's names: accepted means the builder writes the same bytes */
    char snap[BUF];
    rc = sn_fleet_parse_traces_subject(s, snap, sizeof(snap), host, sizeof(host));
    if (rc == 0) {
        FUZZ_CHECK(sn_fleet_rec_name_valid(snap) && host_ref(host));
        FUZZ_CHECK(sn_fleet_traces_subject(snap, host, back, sizeof(back)) == 0);
        FUZZ_CHECK(strcmp(back, s) == 0);
    } else {
        FUZZ_CHECK(snap[0] == '\0' && host[0] == '\0');
    }
    rc = sn_fleet_parse_rec_key(s, snap, sizeof(snap));
    if (rc == 0) {
        FUZZ_CHECK(sn_fleet_rec_key(snap, back, sizeof(back)) == 0 && strcmp(back, s) == 0);
        FUZZ_CHECK(subject_ok(back, false));
    }
    rc = sn_fleet_rec_key(s, out, sizeof(out));
    built(rc, out, false);
    FUZZ_CHECK((rc == 0) == sn_fleet_rec_name_valid(s));

    /* the parsers: accepted means the builder writes the same bytes */
    rc = sn_fleet_parse_frame_subject(s, inst, sizeof(inst), host, sizeof(host));
    if (rc == 0) {
        key_ok(inst);
        FUZZ_CHECK(host_ref(host));
        FUZZ_CHECK(sn_fleet_frame_subject(inst, host, back, sizeof(back)) == 0);
        FUZZ_CHECK(strcmp(back, s) == 0);
    } else {
        FUZZ_CHECK(rc == -EINVAL && inst[0] == '\0' && host[0] == '\0');
    }
    rc = sn_fleet_parse_def_key(s, inst, sizeof(inst));
    if (rc == 0) {
        key_ok(inst);
        FUZZ_CHECK(sn_fleet_def_key(inst, back, sizeof(back)) == 0);
        FUZZ_CHECK(strcmp(back, s) == 0);
    } else {
        FUZZ_CHECK(rc == -EINVAL && inst[0] == '\0');
    }
    kind = 'x';
    rc = sn_fleet_parse_member_key(s, &kind, host, sizeof(host));
    if (rc == 0) {
        FUZZ_CHECK(kind == 'n' || kind == 'a');
        FUZZ_CHECK(host_ref(host));
        rc = kind == 'n' ? sn_fleet_node_key(host, back, sizeof(back))
                         : sn_fleet_agent_key(host, back, sizeof(back));
        FUZZ_CHECK(rc == 0 && strcmp(back, s) == 0);
    } else {
        FUZZ_CHECK(rc == -EINVAL && kind == '\0' && host[0] == '\0');
    }
    /* the same parsers with outputs too small by one byte: -ENOSPC, or -EINVAL as before */
    size_t hl = strlen(s) > 6 ? strlen(s) - 6 : 0;
    rc = sn_fleet_parse_member_key(s, &kind, host, hl);
    FUZZ_CHECK(rc == -EINVAL || rc == -ENOSPC);

    /* the span subject parser: accepted means written back byte for byte, in range */
    unsigned shard = 99999;
    rc = sn_fleet_parse_span_subject(s, &shard);
    if (rc == 0) {
        FUZZ_CHECK(shard < SN_FLEET_SPAN_SHARDS);
        FUZZ_CHECK(sn_fleet_span_subject(shard, back, sizeof(back)) == 0);
        FUZZ_CHECK(strcmp(back, s) == 0 && subject_ok(back, false));
    } else {
        FUZZ_CHECK(rc == -EINVAL);
    }
    /* the shard of the first 16 bytes as a trace id */
    if (size >= 16)
        FUZZ_CHECK(sn_fleet_span_shard(data) < SN_FLEET_SPAN_SHARDS);
    /* a span message id of the input as the node: valid only for a valid node id */
    rc = sn_fleet_span_msg_id(s, 42, "s1", out, sizeof(out));
    built(rc, out, false);
    FUZZ_CHECK((rc == 0) == hv);
    /* the span message id parser: accepted means the builder writes the same bytes */
    uint64_t nonce = 7;
    char part[SN_FLEET_SUBJECT_MAX];
    rc = sn_fleet_parse_span_msg_id(s, host, sizeof(host), &nonce, part, sizeof(part));
    if (rc == 0) {
        FUZZ_CHECK(host_ref(host));
        rc = sn_fleet_span_msg_id(host, nonce, part, back, sizeof(back));
        FUZZ_CHECK(strlen(s) < sizeof(back) ? rc == 0 && strcmp(back, s) == 0 : rc == -ENOSPC);
        FUZZ_CHECK(sn_fleet_parse_span_msg_id(s, host, strlen(host), NULL, NULL, 0) == -ENOSPC);
    } else {
        FUZZ_CHECK((rc == -EINVAL || rc == -ENOSPC) && host[0] == '\0' && part[0] == '\0');
    }

    /* the builders of two names: inst before the first newline, host after it */
    char *nl = strchr(s, '\n');
    if (nl) {
        *nl = '\0';
        const char *a = s, *b = nl + 1;
        bool ok = sn_fleet_inst_token(a, out, sizeof(out)) == 0 && host_ref(b);
        rc = sn_fleet_frame_subject(a, b, out, sizeof(out));
        built(rc, out, false);
        FUZZ_CHECK((rc == 0) == ok);
        if (rc == 0) {
            FUZZ_CHECK(sn_fleet_parse_frame_subject(out, inst, sizeof(inst), host, sizeof(host)) ==
                       0);
            FUZZ_CHECK(strcmp(inst, a) == 0 && strcmp(host, b) == 0);
        }
        int64_t t = (int64_t)(size * 2654435761u) - 1000;
        rc = sn_fleet_msg_id(b, a, t, out, sizeof(out));
        built(rc, out, false);
        FUZZ_CHECK((rc == 0) == (ok && t >= 0));
        /* every buffer size below the one needed is refused, never overrun */
        if (ok) {
            size_t need = strlen(SN_FLEET_FRAMES_PREFIX) + strlen(a) * 3 + strlen(b) + 2;
            for (size_t len = 0; len < need && len < 48; len++) {
                char *small = malloc(len ? len : 1);
                if (!small)
                    break;
                rc = sn_fleet_frame_subject(a, b, small, len);
                FUZZ_CHECK(rc == 0 || (rc == -ENOSPC && (len == 0 || small[0] == '\0')));
                free(small);
            }
        }
    }
    free(s);
    return 0;
}
