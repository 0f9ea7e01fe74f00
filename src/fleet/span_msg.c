/*
 * Spans on the bus (fleet/span_msg.h): the messages of SONDE_SPANS and the span metrics'
 * frames, written by any node and by agents' relays, read back by the shards' owners.
 */
#include "fleet/span_msg.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "fleet/names.h"
#include "serve/span_metrics.h"
#include "trace/otlp.h"

#define SPANS_PUBLISH_TRIES 2 /* a publish not acknowledged is sent again once (same id) */

/* ---- What OTLP cannot say: Zipkin's fields, carried in one attribute ------------------------ */

/*
 * OTLP has no place for Zipkin's endpoints (addresses, ports, the remote service), its debug
 * and shared flags, a 64-bit trace id or a span without a timestamp (sn_otlp_encode() leaves
 * them out). A span that has any of them travels with one more attribute, last, named
 * ZIPKIN_ATTR, whose value is JSON: {"f":flags,"l":ENDPOINT,"r":ENDPOINT}, an endpoint
 * {"s":service,"4":hex8,"6":hex32,"p":port} (each member only when set); the owner takes it
 * off and sets the fields back, so that Zipkin's API answers in a fleet as on a single host.
 */
#define ZIPKIN_ATTR "sonde.bus.zipkin"
#define ZIPKIN_FLAGS                                                                               \
    (SN_SPAN_F_DEBUG | SN_SPAN_F_SHARED | SN_SPAN_F_ID64 | SN_SPAN_F_ZIPKIN | SN_SPAN_F_REMOTE |   \
     SN_SPAN_F_NO_START)

static bool ep_set(const struct sn_span_endpoint *e)
{
    return e->has_ipv4 || e->has_ipv6 || e->port || (e->service && *e->service);
}

static json_t *ep_json(const struct sn_span_endpoint *e)
{
    char h[33];
    json_t *o = json_object();
    if (e->service && *e->service)
        json_object_set_new(o, "s", json_string(e->service));
    if (e->has_ipv4) {
        sn_span_id_hex(e->ipv4, 4, h);
        json_object_set_new(o, "4", json_string(h));
    }
    if (e->has_ipv6) {
        sn_span_id_hex(e->ipv6, 16, h);
        json_object_set_new(o, "6", json_string(h));
    }
    if (e->port)
        json_object_set_new(o, "p", json_integer(e->port));
    return o;
}

/* sp's Zipkin fields as ZIPKIN_ATTR's value (malloc'd), or NULL when it has none. */
static char *zipkin_text(const struct sn_span *sp)
{
    bool remote = (sp->flags & SN_SPAN_F_REMOTE) && ep_set(&sp->remote);
    if (!(sp->flags & ZIPKIN_FLAGS) && !remote && !sp->local.has_ipv4 && !sp->local.has_ipv6 &&
        !sp->local.port)
        return NULL;
    json_t *o = json_pack("{s:i}", "f", sp->flags & ZIPKIN_FLAGS);
    if (o && ep_set(&sp->local))
        json_object_set_new(o, "l", ep_json(&sp->local));
    if (o && remote)
        json_object_set_new(o, "r", ep_json(&sp->remote));
    char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return t;
}

static void ep_of(const json_t *o, struct sn_span_endpoint *e, struct sn_arena *a)
{
    const char *sv = json_string_value(json_object_get(o, "s"));
    const char *v4 = json_string_value(json_object_get(o, "4"));
    const char *v6 = json_string_value(json_object_get(o, "6"));
    json_int_t port = json_integer_value(json_object_get(o, "p"));
    memset(e, 0, sizeof(*e));
    if (sv)
        e->service = sn_arena_strndup(a, sv, strlen(sv));
    if (v4 && strlen(v4) == 8 && sn_span_id_parse(v4, 8, e->ipv4, 4) == 8)
        e->has_ipv4 = true;
    if (v6 && strlen(v6) == 32 && sn_span_id_parse(v6, 32, e->ipv6, 16) == 32)
        e->has_ipv6 = true;
    if (port > 0 && port < 65536)
        e->port = (uint16_t)port;
}

void sn_fleet_span_restore(struct sn_span *sp, struct sn_arena *a)
{
    if (!sp->nattrs || strcmp(sp->attrs[sp->nattrs - 1].key, ZIPKIN_ATTR) != 0)
        return;
    const struct sn_span_kv *kv = &sp->attrs[--sp->nattrs];
    json_t *o = json_loadb(kv->val, kv->vlen, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return;
    }
    sp->flags = (uint8_t)((sp->flags & ~ZIPKIN_FLAGS) |
                          (json_integer_value(json_object_get(o, "f")) & ZIPKIN_FLAGS));
    const json_t *l = json_object_get(o, "l"), *r = json_object_get(o, "r");
    if (json_is_object(l)) {
        ep_of(l, &sp->local, a);
        if (sp->local.service)
            sp->service = sp->local.service;
    }
    if (json_is_object(r))
        ep_of(r, &sp->remote, a);
    else
        sp->flags &= (uint8_t)~SN_SPAN_F_REMOTE;
    json_decref(o);
}

/* ---- Onto the bus ---------------------------------------------------------------------------- */

int sn_fleet_frame_send(struct sn_link *link, const struct sn_wire_frame *fr, const char *msgid)
{
    char subj[SN_FLEET_SUBJECT_MAX], id[SN_FLEET_SUBJECT_MAX];
    size_t len = sn_wire_frame_len(fr);
    unsigned char *buf;
    natsMsg *m = NULL;
    jsPubAck *ack = NULL;
    jsErrCode jerr = 0;
    int rc = 0;

    if (!fr->host || !sn_fleet_host_valid(fr->host) ||
        sn_fleet_frame_subject(fr->id, fr->host, subj, sizeof(subj)) < 0 ||
        (!msgid && sn_fleet_msg_id(fr->host, fr->id, fr->t, id, sizeof(id)) < 0))
        return -EINVAL;
    if (msgid)
        snprintf(id, sizeof(id), "%s", msgid);
    if (!(buf = malloc(len)))
        return -ENOMEM;
    if (sn_wire_frame_encode(fr, buf, len) < 0) {
        free(buf);
        return -EINVAL;
    }
    natsStatus st = natsMsg_Create(&m, subj, NULL, (const char *)buf, (int)len);
    if (st == NATS_OK)
        st = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
    if (st == NATS_OK)
        st = js_PublishMsg(&ack, sn_link_js(link), m, NULL, &jerr);
    if (st != NATS_OK)
        rc = sn_link_err(st) ? sn_link_err(st) : -EIO;
    jsPubAck_Destroy(ack);
    natsMsg_Destroy(m);
    free(buf);
    return rc;
}

/* Publishes one message with its id, acknowledged by JetStream (a try not acknowledged is sent
 * again with the same id: stored once). 0 or -errno. */
static int publish(struct sn_link *link, const char *subj, const char *id, const void *data,
                   size_t len)
{
    natsStatus st = NATS_OK;
    for (int t = 0; t < SPANS_PUBLISH_TRIES; t++) {
        natsMsg *m = NULL;
        jsPubAck *ack = NULL;
        jsErrCode jerr = 0;
        st = natsMsg_Create(&m, subj, NULL, data, (int)len);
        if (st == NATS_OK)
            st = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
        if (st == NATS_OK)
            st = js_PublishMsg(&ack, sn_link_js(link), m, NULL, &jerr);
        jsPubAck_Destroy(ack);
        natsMsg_Destroy(m);
        if (st == NATS_OK)
            return 0;
        if (st != NATS_TIMEOUT && st != NATS_NO_RESPONDERS)
            break;
    }
    return sn_link_err(st) ? sn_link_err(st) : -EIO;
}

int sn_fleet_spans_send(struct sn_link *link, const char *origin, uint64_t nonce,
                        const struct sn_span_batch *b, struct sn_span_metrics *sm, int64_t now,
                        struct sn_span_send_stats *st, char *why, size_t whylen)
{
    size_t *by = b->n ? malloc(b->n * sizeof(*by)) : NULL;
    struct sn_span *part = b->n ? malloc(b->n * sizeof(*part)) : NULL;
    size_t count[SN_FLEET_SPAN_SHARDS] = {0}, at[SN_FLEET_SPAN_SHARDS];
    int rc = 0;

    snprintf(why, whylen, "%s", "");
    if (b->n && !sn_link_up(link)) { /* refused at once: the client retries (503) */
        free(by);
        free(part);
        snprintf(why, whylen, "the fleet's bus (NATS) is unreachable: retry later");
        return -ENOTCONN;
    }
    if (b->n && (!by || !part)) {
        free(by);
        free(part);
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    /* the spans by shard, in their order (a counting sort) */
    unsigned *shard_of = b->n ? malloc(b->n * sizeof(*shard_of)) : NULL;
    if (b->n && !shard_of) {
        free(by);
        free(part);
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < b->n; i++)
        count[shard_of[i] = sn_fleet_span_shard(b->spans[i].trace_id)]++;
    size_t sum = 0;
    for (unsigned k = 0; k < SN_FLEET_SPAN_SHARDS; k++) {
        at[k] = sum;
        sum += count[k];
    }
    for (size_t i = 0; i < b->n; i++)
        by[at[shard_of[i]]++] = i;
    size_t from = 0;
    for (unsigned k = 0; k < SN_FLEET_SPAN_SHARDS && rc == 0; k++) {
        if (!count[k])
            continue;
        char subj[64], id[SN_FLEET_SUBJECT_MAX], pname[16];
        unsigned char *out = NULL;
        size_t olen = 0;
        struct sn_arena ar = {0};
        for (size_t j = 0; j < count[k] && rc == 0; j++) {
            struct sn_span *sp = &part[j];
            *sp = b->spans[by[from + j]];
            char *zt = zipkin_text(sp);
            if (!zt)
                continue;
            struct sn_span_kv *kv = sn_arena_alloc(&ar, (sp->nattrs + 1) * sizeof(*kv));
            char *val = sn_arena_strndup(&ar, zt, strlen(zt));
            if (!kv || !val) {
                rc = -ENOMEM;
                snprintf(why, whylen, "out of memory");
            } else {
                if (sp->nattrs)
                    memcpy(kv, sp->attrs, sp->nattrs * sizeof(*kv));
                kv[sp->nattrs] = (struct sn_span_kv){
                    .key = ZIPKIN_ATTR, .val = val, .vlen = (uint32_t)strlen(val)};
                sp->attrs = kv;
                sp->nattrs++;
            }
            free(zt);
        }
        from += count[k];
        snprintf(pname, sizeof(pname), "s%u", k);
        if (sn_fleet_span_subject(k, subj, sizeof(subj)) < 0 ||
            sn_fleet_span_msg_id(origin, nonce, pname, id, sizeof(id)) < 0) {
            rc = -EINVAL;
            snprintf(why, whylen, "no name on the bus for span shard %u", k);
        } else if (rc < 0) {
            /* out of memory, said */
        } else if (sn_otlp_encode(part, count[k], &out, &olen) < 0) {
            rc = -ENOMEM;
            snprintf(why, whylen, "out of memory");
        } else if ((rc = publish(link, subj, id, out, olen)) < 0) {
            snprintf(why, whylen, "the fleet's bus (NATS) did not store the spans: %s",
                     strerror(-rc));
        } else {
            st->msgs++;
            st->spans += count[k];
        }
        free(out);
        sn_arena_fini(&ar);
    }
    free(by);
    free(part);
    free(shard_of);
    if (rc < 0)
        return rc;

    /* the trace.spans frames these spans make, as the origin's (host: origin) */
    struct sn_wire_frame *fr = NULL;
    size_t nf = 0;
    if (!b->n || !sm || !sn_span_metrics_count(sm))
        return 0;
    if (sn_span_metrics_frames(sm, b->spans, b->n, origin, now, &fr, &nf) < 0) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < nf && rc == 0; i++) {
        char pname[24], id[SN_FLEET_SUBJECT_MAX];
        snprintf(pname, sizeof(pname), "f%zu", i);
        if (sn_fleet_span_msg_id(origin, nonce, pname, id, sizeof(id)) < 0)
            continue;
        int prc = sn_fleet_frame_send(link, &fr[i], id);
        if (prc < 0 && prc != -EINVAL) {
            rc = prc;
            snprintf(why, whylen, "the fleet's bus (NATS) did not store the span metrics: %s",
                     strerror(-rc));
        }
    }
    sn_span_metrics_frames_free(fr, nf);
    return rc;
}
