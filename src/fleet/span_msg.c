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
#include "core/clock.h"
#include "core/grow.h"
#include "fleet/names.h"
#include "fleet/span_past.h"
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

/* ---- Many messages, acknowledged together ----------------------------------------------------
 *
 * A request's spans spread over most of the 64 shards: published one by one, each waiting for
 * its acknowledgement, a request of 500 spans cost 64 round trips. They go out together
 * instead: each message with a reply subject of its own under one inbox (JetStream answers a
 * publish that has a reply subject with its acknowledgement there), then the acknowledgements
 * are collected, at most ACK_WAIT_MS. What is not acknowledged (an error, no answer) is sent
 * once more the same way, with the same message ids: JetStream stores each once.
 */
#define ACK_WAIT_MS 5000

struct out_msg {
    char subj[SN_FLEET_SUBJECT_MAX], id[SN_FLEET_SUBJECT_MAX];
    unsigned char *data;
    size_t len;
    bool acked;
};

struct out_list {
    struct out_msg *v;
    size_t n, cap;
};

static struct out_msg *out_add(struct out_list *l)
{
    struct out_msg *v = sn_grow(l->v, &l->cap, l->n + 1, sizeof(*v));
    if (!v)
        return NULL;
    l->v = v;
    memset(&v[l->n], 0, sizeof(*v));
    return &v[l->n++];
}

static void out_free(struct out_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].data);
    free(l->v);
}

/* One pass: every message of l not yet acknowledged sent, their acknowledgements collected.
 * 0 when all are acknowledged, else -errno (with why). */
static int publish_pass(natsConnection *nc, struct out_list *l, char *why, size_t whylen)
{
    natsInbox *inbox = NULL;
    natsSubscription *sub = NULL;
    char filter[160], reply[192];
    size_t want = 0;
    natsStatus st = natsInbox_Create(&inbox);
    if (st == NATS_OK) {
        snprintf(filter, sizeof(filter), "%s.*", (const char *)inbox);
        st = natsConnection_SubscribeSync(&sub, nc, filter);
    }
    for (size_t i = 0; st == NATS_OK && i < l->n; i++) {
        struct out_msg *m = &l->v[i];
        natsMsg *msg = NULL;
        if (m->acked)
            continue;
        snprintf(reply, sizeof(reply), "%s.%zu", (const char *)inbox, i);
        st = natsMsg_Create(&msg, m->subj, reply, (const char *)m->data, (int)m->len);
        if (st == NATS_OK)
            st = natsMsgHeader_Set(msg, "Nats-Msg-Id", m->id);
        if (st == NATS_OK)
            st = natsConnection_PublishMsg(nc, msg);
        natsMsg_Destroy(msg);
        want += st == NATS_OK;
    }
    int64_t end = sn_mono_ms() + ACK_WAIT_MS;
    int rc = st == NATS_OK ? 0 : (sn_link_err(st) ? sn_link_err(st) : -EIO);
    if (rc < 0)
        snprintf(why, whylen, "the fleet's bus (NATS) did not take the spans: %s",
                 natsStatus_GetText(st));
    while (sub && want) {
        natsMsg *ack = NULL;
        int64_t left = end - sn_mono_ms();
        if (left <= 0 || natsSubscription_NextMsg(&ack, sub, left) != NATS_OK)
            break;
        const char *subj = natsMsg_GetSubject(ack), *dot = strrchr(subj, '.');
        size_t i = dot ? (size_t)strtoull(dot + 1, NULL, 10) : l->n;
        const char *data = natsMsg_GetData(ack);
        int dlen = natsMsg_GetDataLength(ack);
        /* {"stream":..,"seq":..} is stored; {"error":..}, or an empty status message (no
         * responders), is not */
        if (i < l->n && !l->v[i].acked && dlen > 0 && !memmem(data, (size_t)dlen, "\"error\"", 7) &&
            memmem(data, (size_t)dlen, "\"seq\"", 5)) {
            l->v[i].acked = true;
            want--;
        } else if (i < l->n && !l->v[i].acked) { /* refused: answered, not stored */
            want--;
            if (rc == 0) {
                rc = -EIO;
                snprintf(why, whylen, "the fleet's bus (NATS) did not store the spans: %.*s",
                         dlen > 200 ? 200 : dlen, dlen > 0 ? data : "no stream answered");
            }
        }
        natsMsg_Destroy(ack);
    }
    if (want && rc == 0) {
        rc = -ETIMEDOUT;
        snprintf(why, whylen, "the fleet's bus (NATS) did not acknowledge the spans in %d ms",
                 ACK_WAIT_MS);
    }
    if (sub) {
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
    }
    natsInbox_Destroy(inbox);
    for (size_t i = 0; i < l->n; i++)
        if (!l->v[i].acked)
            return rc < 0 ? rc : -EIO;
    return 0;
}

static int publish_all(struct sn_link *link, struct out_list *l, char *why, size_t whylen)
{
    natsConnection *nc = sn_link_conn(link);
    int rc = -ENOTCONN;
    if (!nc) {
        snprintf(why, whylen, "the fleet's bus (NATS) is unreachable: retry later");
        return rc;
    }
    for (int t = 0; t < SPANS_PUBLISH_TRIES; t++)
        if ((rc = publish_pass(nc, l, why, whylen)) == 0 || !sn_link_up(link))
            break;
    return rc;
}

/* The frames of a request (sn_span_metrics_take()'s callback, its read lock held): the base's
 * kept in the past, and added to the messages with the instrumentations' (sent once the lock
 * is gone: the past is what a fill reads, the bus is not). */
struct take {
    struct sn_span_past *past;
    struct out_list *l;
    const char *origin;
    uint64_t nonce;
    int64_t now;
    size_t nf;
    int rc;
};

static void on_frames(void *arg, const struct sn_wire_frame *fr, size_t n)
{
    struct take *x = arg;
    bool *bus = malloc(n * sizeof(*bus));
    if (!bus) {
        x->rc = -ENOMEM;
        return;
    }
    sn_span_past_add(x->past, fr, n, x->now, bus);
    for (size_t i = 0; x->rc == 0 && i < n; i++) {
        char pname[24];
        if (!bus[i]) /* a base's second older than a base keeps */
            continue;
        struct out_msg *m = out_add(x->l);
        size_t len = sn_wire_frame_len(&fr[i]);
        snprintf(pname, sizeof(pname), "f%zu", x->nf++);
        if (!m || !(m->data = malloc(len))) {
            x->rc = -ENOMEM;
        } else if (!fr[i].host || !sn_fleet_host_valid(fr[i].host) ||
                   sn_fleet_frame_subject(fr[i].id, fr[i].host, m->subj, sizeof(m->subj)) < 0 ||
                   sn_fleet_span_msg_id(x->origin, x->nonce, pname, m->id, sizeof(m->id)) < 0 ||
                   sn_wire_frame_encode(&fr[i], m->data, len) < 0) {
            free(m->data); /* a name the bus cannot carry: not sent */
            x->l->n--;
        } else {
            m->len = len;
        }
    }
    free(bus);
}

int sn_fleet_spans_send(struct sn_link *link, const char *origin, uint64_t nonce,
                        const struct sn_span_batch *b, struct sn_span_past *past, int64_t now,
                        struct sn_span_send_stats *st, char *why, size_t whylen)
{
    size_t *by = b->n ? malloc(b->n * sizeof(*by)) : NULL;
    struct sn_span *part = b->n ? malloc(b->n * sizeof(*part)) : NULL;
    unsigned *shard_of = b->n ? malloc(b->n * sizeof(*shard_of)) : NULL;
    size_t count[SN_FLEET_SPAN_SHARDS] = {0}, at[SN_FLEET_SPAN_SHARDS];
    struct out_list l = {0};
    uint64_t spans = 0;
    int rc = 0;

    snprintf(why, whylen, "%s", "");
    if (!b->n)
        return 0;
    if (!sn_link_up(link)) { /* refused at once: the client retries (503) */
        free(by);
        free(part);
        free(shard_of);
        snprintf(why, whylen, "the fleet's bus (NATS) is unreachable: retry later");
        return -ENOTCONN;
    }
    if (!by || !part || !shard_of) {
        free(by);
        free(part);
        free(shard_of);
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    /* the spans by shard, in their order (a counting sort) */
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
        char pname[16];
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
        struct out_msg *m = rc == 0 ? out_add(&l) : NULL;
        if (rc < 0 || !m) {
            rc = -ENOMEM;
            snprintf(why, whylen, "out of memory");
        } else if (sn_fleet_span_subject(k, m->subj, sizeof(m->subj)) < 0 ||
                   sn_fleet_span_msg_id(origin, nonce, pname, m->id, sizeof(m->id)) < 0) {
            rc = -EINVAL;
            snprintf(why, whylen, "no name on the bus for span shard %u", k);
        } else if (sn_otlp_encode(part, count[k], &m->data, &m->len) < 0) {
            rc = -ENOMEM;
            snprintf(why, whylen, "out of memory");
        } else {
            spans += count[k];
        }
        sn_arena_fini(&ar);
    }
    free(by);
    free(part);
    free(shard_of);
    size_t span_msgs = l.n;

    /* the trace.spans frames these spans make, as the origin's (host: origin): the
     * instrumentations' onto the bus, the base's into the past (fleet/span_past.h) */
    struct take x = {past, &l, origin, nonce, now, 0, 0};
    if (rc == 0 && past &&
        sn_span_metrics_take(sn_span_past_metrics(past), b->spans, b->n, origin, now, on_frames,
                             &x) < 0)
        x.rc = -ENOMEM;
    if (rc == 0 && x.rc < 0) {
        rc = x.rc;
        snprintf(why, whylen, "out of memory");
    }
    if (rc == 0 && (rc = publish_all(link, &l, why, whylen)) == 0) {
        st->msgs += span_msgs;
        st->spans += spans;
    }
    out_free(&l);
    return rc;
}
