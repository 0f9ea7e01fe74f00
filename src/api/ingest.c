/*
 * Ingest (Sonde's extension, docs/api.md): `POST /ca/ingest` takes frames from agents that are
 * not on the server's bus and from other producers, in the agent's documented forms: JSON (one
 * frame object, an array of them, or JSON lines, as `sonde agent --stdout` prints) or binary (each
 * frame of wire/frame.h behind its length as a little-endian u32, the stream of wire/stream.h, as
 * `sonde agent --format binary` prints), told apart by Content-Type (application/octet-stream
 * is binary).
 *
 * A body is taken whole or not at all: it is decoded once, by wire/, into frames that are checked
 * as they come (names and keys UTF-8, a tenant's ids) and kept; the kept frames are checked
 * against their instrumentations' arities, then those same frames are published to the
 * aggregator through the bus, the path every source's frames take (serve/flow.h). Decoding and
 * checking take no lock (the arity check is a lookup per frame in the aggregator); adding locks
 * only each frame's own instrumentation, so a huge body holds up nobody but the ingests of its
 * own instrumentations. Keys past the
 * server's --key-cap go to "other", as the reply's "folded" counts. A bad frame is a 400 naming it
 * and counted; frames for unknown instrumentations (one just deleted), late ones (past the
 * retention) and ones stamped too far ahead are dropped and counted, as the reply says.
 * In a tenant's scope, frame ids are its instrumentations' ids; in the operator's, "N" is a
 * global instrumentation and "tenant/N" a tenant's.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/internal.h"
#include "core/clock.h"
#include "core/grow.h"
#include "serve/flow.h"
#include "wire/frame_json.h"
#include "wire/stream.h"

#define MAX_FRAMES 100000

struct ingest {
    struct sn_call *c;
    struct sn_wire_frame *f; /* decoded, ids scoped; owned */
    size_t n, cap;
    bool arity; /* the refusal is a frame of another arity than its instrumentation */
    char why[512];
};

static const char *arity_name(uint8_t a)
{
    static const char *const n[] = {"scalar", "discrete-decomposition", "numeric-decomposition",
                                    "numeric-decomposition (by key)"};
    return a < 4 ? n[a] : "?";
}

static void frames_free(struct ingest *g)
{
    for (size_t i = 0; i < g->n; i++)
        sn_wire_frame_fini(&g->f[i]);
    free(g->f);
    g->f = NULL;
    g->n = g->cap = 0;
}

/* Checks what needs no lock in frame f (the id's form in a tenant's scope, UTF-8 names and
 * keys), scopes its id, and keeps it: f is moved into g (the decoder frees only what is left,
 * nothing). */
static int keep(const struct sn_wire_frame *cf, void *arg)
{
    struct ingest *g = arg;
    struct sn_call *c = g->c;
    struct sn_wire_frame *f = (struct sn_wire_frame *)cf; /* the decoder's own, to take */
    size_t nth = g->n + 1, bad;

    if (c->scope[0] && strchr(f->id, '/')) { /* a tenant names its own instrumentations only */
        snprintf(g->why, sizeof(g->why), "frame %zu: id \"%.64s\" is not an instrumentation id",
                 nth, f->id);
        return -EINVAL;
    }
    bool id_ok = sn_wire_utf8_valid(f->id, strlen(f->id), &bad);
    if (!id_ok || !sn_wire_utf8_valid(f->host, strlen(f->host), &bad)) {
        snprintf(g->why, sizeof(g->why), "frame %zu: \"%s\" is not valid UTF-8 (byte %zu)", nth,
                 id_ok ? "host" : "id", bad + 1);
        return -EINVAL;
    }
    for (size_t i = 0; i < f->n; i++)
        if (!sn_wire_utf8_valid(f->entries[i].key, strlen(f->entries[i].key), &bad)) {
            snprintf(g->why, sizeof(g->why), "frame %zu: key %zu is not valid UTF-8 (byte %zu)",
                     nth, i + 1, bad + 1);
            return -EINVAL;
        }
    if (c->scope[0]) {
        char *id = malloc(strlen(c->scope) + strlen(f->id) + 2);
        if (!id)
            return -ENOMEM;
        sprintf(id, "%s/%s", c->scope, f->id);
        free(f->id);
        f->id = id;
    }
    if (g->n == g->cap) {
        struct sn_wire_frame *p = sn_grow(g->f, &g->cap, g->n + 1, sizeof(*p));
        if (!p)
            return -ENOMEM;
        g->f = p;
    }
    g->f[g->n++] = *f;
    memset(f, 0, sizeof(*f));
    return 0;
}

/* A stream of binary frames (wire/stream.h). Returns the number of frames or a negative error
 * (why set). */
static int binary(const unsigned char *p, size_t len, struct ingest *g)
{
    struct sn_wire_stream r;
    struct sn_wire_frame f;
    int rc;

    sn_wire_stream_init(&r, p, len, 0, MAX_FRAMES);
    while ((rc = sn_wire_stream_next(&r, &f, g->why, sizeof(g->why))) == 1) {
        rc = keep(&f, g);
        sn_wire_frame_fini(&f); /* what keep() left: nothing once it took the frame */
        if (rc < 0)
            return rc;
    }
    if (rc == -ENOMEM || rc == -E2BIG)
        return rc;
    return rc < 0 ? -EINVAL : (int)r.nth;
}

/* The frames' arities against their instrumentations' (a lookup per frame in the aggregator).
 * Returns 0 or -EINVAL (why set). */
static int check_arity(struct ingest *g)
{
    struct sn_server *s = g->c->s;

    for (size_t i = 0; i < g->n; i++) {
        const struct sn_wire_frame *f = &g->f[i];
        int arity = sn_agg_arity(s->agg, f->id);
        if (arity >= 0 && arity != f->arity) {
            const char *id = strchr(f->id, '/') && g->c->scope[0] ? strchr(f->id, '/') + 1 : f->id;
            snprintf(g->why, sizeof(g->why),
                     "frame %zu: a %s frame for instrumentation %s, which is %s", i + 1,
                     arity_name(f->arity), id, arity_name((uint8_t)arity));
            g->arity = true;
            return -EINVAL;
        }
    }
    return 0;
}

void sn_api_ingest(struct sn_call *c, bool import)
{
    struct ingest g = {.c = c};
    struct sn_server *s = c->s;
    const char *ct = c->req->ctype ? c->req->ctype : "";
    bool bin = strncasecmp(ct, "application/octet-stream", 24) == 0 ||
               strncasecmp(ct, "application/x-sonde-frames", 26) == 0;
    uint64_t accepted = 0, unknown = 0, late = 0, future = 0, duplicate = 0, mismatch = 0,
             stored = 0;
    struct sn_ds_fold folded = {0, 0};
    int rc;

    /* decoded and checked whole, without the lock */
    if (bin)
        rc = binary(c->req->body, c->req->body_len, &g);
    else
        rc = sn_wire_frames_from_text((const char *)c->req->body, c->req->body_len, MAX_FRAMES,
                                      keep, &g, g.why, sizeof(g.why));
    if (rc >= 0)
        rc = check_arity(&g);
    if (rc == -ENOMEM) {
        frames_free(&g);
        sn_resp_error(c->resp, 503, "ECA_NORESOURCE", "out of memory decoding frames");
        return;
    }
    if (rc < 0) {
        /* one count per refused body, under the reason that refused it */
        atomic_fetch_add(g.arity ? &s->c.frames_mismatch : &s->c.frames_invalid, 1);
        sn_resp_error(c->resp, rc == -E2BIG ? 413 : 400, "ECA_INVAL", "%s",
                      g.why[0] ? g.why : "invalid frames");
        frames_free(&g);
        return;
    }
    /* in a fleet, onto the bus: the owners take them (answered once JetStream stored them) */
    if (s->fleet) {
        uint64_t published = 0, invalid = 0;
        int brc = 0;
        for (size_t i = 0; i < g.n && brc >= 0; i++) {
            int prc = sn_flow_publish(s, &g.f[i]);
            if (prc == 0)
                published++;
            else if (prc == -ENOENT)
                unknown++;
            else if (prc == -EINVAL)
                invalid++;
            else
                brc = prc;
        }
        size_t nf = g.n;
        frames_free(&g);
        if (brc < 0) {
            sn_resp_error(c->resp, 503, "ECA_NORESOURCE",
                          "the fleet's bus (NATS) did not store the frames: %s; %" PRIu64
                          " of %zu were stored before it failed",
                          strerror(-brc), published, nf);
            c->resp->hdr[0][0] = "Retry-After";
            c->resp->hdr[0][1] = "1";
            return;
        }
        sn_resp_json(c->resp, 200,
                     json_pack("{s:I,s:I,s:I,s:I}", "frames", (json_int_t)nf, "accepted",
                               (json_int_t)published, "unknown", (json_int_t)unknown, "invalid",
                               (json_int_t)invalid));
        return;
    }
    /* then published as one batch: each instrumentation's frames of a second make one new
     * slot, locking only that instrumentation to publish it */
    int64_t now = sn_now();
    const struct sn_wire_frame **fp = malloc((g.n ? g.n : 1) * sizeof(*fp));
    int *rcs = malloc((g.n ? g.n : 1) * sizeof(*rcs));
    if (!fp || !rcs) {
        free(fp);
        free(rcs);
        frames_free(&g);
        sn_resp_error(c->resp, 500, "ECA_NORESOURCE", "out of memory adding frames");
        return;
    }
    for (size_t i = 0; i < g.n; i++)
        fp[i] = &g.f[i];
    if (g.n)
        sn_flow_frames(s, fp, g.n, now, false, rcs, &folded);
    for (size_t i = 0; i < g.n; i++) {
        int frc = rcs[i];
        if (import && frc == SN_DS_LATE) { /* older than memory: into the store */
            if ((frc = sn_flow_store(s, &g.f[i], now)) == 0) {
                stored++;
                continue;
            }
        }
        switch (frc) {
        case SN_DS_ADDED:
            accepted++;
            break;
        case -ENOENT:
            unknown++;
            break;
        case SN_DS_LATE:
            late++;
            break;
        case SN_DS_FUTURE:
            future++;
            break;
        case SN_DS_DUPLICATE:
            duplicate++;
            break;
        case SN_DS_MISMATCH: /* recreated with another arity since the check */
            mismatch++;
            break;
        default:
            if (frc < 0)
                rc = frc;
            break;
        }
    }
    free(fp);
    free(rcs);
    size_t nframes = g.n;
    frames_free(&g);
    /* an import is answered once the store holds it */
    if (rc >= 0 && stored && sn_store_sync(s->store) < 0) {
        sn_resp_error(c->resp, 507, "ECA_IO",
                      "the store cannot be written: the %" PRIu64
                      " frames older than memory are queued and written when it can",
                      stored);
        return;
    }
    if (rc < 0) {
        sn_resp_error(c->resp, 500, "ECA_NORESOURCE", "out of memory adding frames");
        return;
    }
    json_t *reply = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "frames", (json_int_t)nframes,
                              "accepted", (json_int_t)(accepted + stored), "unknown",
                              (json_int_t)unknown, "late", (json_int_t)late, "future",
                              (json_int_t)future, "duplicate", (json_int_t)duplicate);
    if (import) /* of the accepted, those older than memory, merged into the store */
        json_object_set_new(reply, "stored", json_integer((json_int_t)stored));
    if (mismatch) /* an instrumentation recreated with another arity meanwhile */
        json_object_set_new(reply, "mismatch", json_integer((json_int_t)mismatch));
    if (folded.keys) /* the key cap */
        json_object_set_new(
            reply, "folded",
            json_pack("{s:I,s:I}", "keys", (json_int_t)folded.keys, "events",
                      (json_int_t)(folded.events > INT64_MAX ? INT64_MAX : folded.events)));
    sn_resp_json(c->resp, 200, reply);
}
